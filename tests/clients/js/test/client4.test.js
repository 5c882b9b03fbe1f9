// @mattermost/client's Client4 and WebSocketClient, unmodified, against the
// shim: the REST calls a bot makes, and the websocket the web app keeps open
// (it pings at once and every 30 s, and checks event sequence numbers).
'use strict';

const {test, before, after} = require('node:test');
const assert = require('node:assert/strict');
const {Client4, WebSocketClient} = require('@mattermost/client');
const {startShim} = require('../shim');

let shim;
let client;

before(async () => {
    shim = await startShim();
    client = new Client4();
    client.setUrl(shim.url);
    client.setToken(shim.token);
});

after(async () => {
    await shim?.stop();
});

test('Client4: me, team and channel by name, my channels, posts and threads', async () => {
    const me = await client.getMe();
    assert.equal(me.username, 'admin');
    const team = await client.getTeamByName(shim.teamName);
    const channel = await client.getChannelByNameAndTeamName(shim.teamName, 'town-square');
    assert.equal(channel.team_id, team.id);
    const mine = await client.getMyChannels(team.id);
    assert.ok(mine.some((c) => c.id === channel.id));

    const root = await client.createPost({channel_id: channel.id, message: 'release notes'});
    const reply = await client.createPost({channel_id: channel.id, message: 'looks good', root_id: root.id});
    const thread = await client.getPostThread(reply.id);
    assert.deepEqual(thread.order, [reply.id, root.id]);
    assert.equal(thread.posts[root.id].message, 'release notes');
    assert.equal(thread.has_next, false);
    const posts = await client.getPosts(channel.id);
    assert.equal(posts.posts[reply.id].root_id, root.id);

    const patched = await client.patchPost({id: reply.id, message: 'looks great'});
    assert.equal(patched.message, 'looks great');
    assert.deepEqual(await client.deletePost(root.id), {status: 'OK'});
    await assert.rejects(client.getPost(reply.id), (err) => err.status_code === 404);
});

test('Client4: hooks with a total count, archive and restore, moderation', async () => {
    const team = await client.getTeamByName(shim.teamName);
    const channel = await client.createChannel({team_id: team.id, name: 'js-tests', display_name: 'JS', type: 'O'});
    await client.createIncomingWebhook({channel_id: channel.id, display_name: 'js'});
    const hooks = await client.getIncomingWebhooks(team.id, 0, 60, true);
    assert.equal(hooks.total_count, 1);
    assert.equal(hooks.incoming_webhooks[0].channel_id, channel.id);

    const moderations = await client.patchChannelModerations(channel.id, [
        {name: 'create_post', roles: {members: false}},
    ]);
    const createPost = moderations.find((m) => m.name === 'create_post');
    assert.equal(createPost.roles.members.value, false);

    assert.deepEqual(await client.deleteChannel(channel.id), {status: 'OK'});
    await assert.rejects(
        client.createPost({channel_id: channel.id, message: 'too late'}),
        (err) => err.server_error_id === 'api.post.create_post.can_not_post_to_deleted.error' && err.status_code === 400,
    );
    const restored = await client.unarchiveChannel(channel.id);
    assert.equal(restored.delete_at, 0);
});

test('WebSocketClient: authenticates, pongs, and delivers posted in sequence', async () => {
    const channel = await client.getChannelByNameAndTeamName(shim.teamName, 'town-square');
    const ws = new WebSocketClient({newWebSocketFn: (url) => new WebSocket(url)});
    const events = [];
    const logged = [];
    const originalLog = console.log;
    console.log = (...args) => {
        logged.push(args.join(' '));
    };
    try {
        const connected = new Promise((resolve) => ws.addFirstConnectListener(resolve));
        const hello = new Promise((resolve) => ws.addMessageListener((msg) => {
            events.push(msg);
            if (msg.event === 'hello') {
                resolve(msg);
            }
        }));
        ws.initialize(shim.url.replace('http', 'ws') + '/api/v4/websocket', shim.token);
        await connected;
        assert.equal((await hello).data.server_version.length > 0, true);
        const pong = await new Promise((resolve) => ws.ping(resolve));
        assert.equal(pong.status, 'OK');
        assert.equal(pong.data.text, 'pong');
        assert.equal(typeof pong.data.server_time, 'number');

        const posted = new Promise((resolve) => ws.addMessageListener((msg) => {
            if (msg.event === 'posted') {
                resolve(msg);
            }
        }));
        const post = await client.createPost({channel_id: channel.id, message: 'over the websocket'});
        const event = await posted;
        assert.equal(JSON.parse(event.data.post).id, post.id);
        assert.equal(event.data.sender_name, '@admin');
        assert.equal(event.data.channel_display_name, 'Town Square');
        assert.equal(event.seq, events.length - 1);
    } finally {
        ws.close();
        console.log = originalLog;
    }
    // The client saw every sequence number and never had to reconnect.
    assert.ok(!logged.some((line) => line.includes('missed websocket event')), logged.join('\n'));
    assert.ok(!logged.some((line) => line.includes('re-established')), logged.join('\n'));
});
