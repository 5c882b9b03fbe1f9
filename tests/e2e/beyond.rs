//! Beyond Mattermost, through the compiled component: Block Kit from real senders (each
//! payload written after the sender's public source, with the Markdown and attachment a
//! client should show), Slack-formatted hooks, the `X-Switchboard-Ignored` report,
//! `?wait=true`, `Idempotency-Key`, `thread_ts` and per-hook rate limits.

use serde_json::{Value, json};
use switchboard_host_shim::store::Post;
use switchboard_tests::{Api, TestShim};

async fn post(shim: &TestShim, path: &str, body: &Value) -> (u16, String, Option<Post>) {
    let before = shim.posts().len();
    let reply = Api::new(shim, None)
        .post_raw(path, Some("application/json"), body.to_string())
        .await;
    let posts = shim.posts();
    let created = (posts.len() > before)
        .then(|| posts.last().cloned())
        .flatten();
    (reply.status.as_u16(), reply.text, created)
}

/// A fresh shim and the path of an incoming webhook on its town-square.
async fn town_square_hook() -> (TestShim, String) {
    let shim = TestShim::start().await.unwrap();
    let hook = Api::admin(&shim)
        .create_incoming_hook(&shim.town_square.id, json!({}))
        .await;
    let path = format!("/hooks/{}", hook["id"].as_str().unwrap());
    (shim, path)
}

fn props(post: &Post) -> Value {
    serde_json::from_str(&post.props).unwrap()
}

#[tokio::test]
async fn real_senders_read_as_they_do_in_slack() {
    let (shim, path) = town_square_hook().await;
    let admin_id = shim.admin.id.clone();

    // (sender, payload, message, fallback_text prop)
    let top_level = [
        (
            "Home Assistant notify.slack with data.blocks",
            json!({
                "text": "Motion in the garage",
                "blocks": [
                    {"type": "section", "text": {"type": "mrkdwn",
                        "text": "*Motion* detected in the _garage_ <https://ha.example.com/lovelace/cameras|Open cameras>"}},
                    {"type": "context", "elements": [
                        {"type": "mrkdwn", "text": "Home Assistant"},
                        {"type": "plain_text", "text": "binary_sensor.garage_motion"}
                    ]}
                ]
            }),
            "**Motion** detected in the _garage_ [Open cameras](https://ha.example.com/lovelace/cameras)\n\n\
             Home Assistant · binary\\_sensor.garage\\_motion",
            Some("Motion in the garage"),
        ),
        (
            "slack-github-action deploy summary",
            json!({
                "text": "Deploy finished",
                "blocks": [
                    {"type": "header", "text": {"type": "plain_text", "text": "Deploy #42 succeeded", "emoji": true}},
                    {"type": "section", "fields": [
                        {"type": "mrkdwn", "text": "*Repository*\n<https://github.com/acme/api|acme/api>"},
                        {"type": "mrkdwn", "text": "*Commit*\n`3f2a9c1`"}
                    ]},
                    {"type": "divider"},
                    {"type": "actions", "elements": [
                        {"type": "button", "text": {"type": "plain_text", "text": "View run"},
                         "url": "https://github.com/acme/api/actions/runs/42", "style": "primary"},
                        {"type": "button", "text": {"type": "plain_text", "text": "Roll back"},
                         "action_id": "rollback", "value": "42", "style": "danger"}
                    ]}
                ]
            }),
            "### Deploy #42 succeeded\n\n**Repository**\n[acme/api](https://github.com/acme/api)\n\
             **Commit**\n`3f2a9c1`\n\n---\n\n[View run](https://github.com/acme/api/actions/runs/42)",
            Some("Deploy finished"),
        ),
        (
            "a Workflow Builder style rich_text message",
            json!({
                "blocks": [{"type": "rich_text", "elements": [
                    {"type": "rich_text_section", "elements": [
                        {"type": "text", "text": "On call: "},
                        {"type": "user", "user_id": admin_id},
                        {"type": "text", "text": " — checklist:"}
                    ]},
                    {"type": "rich_text_list", "style": "bullet", "elements": [
                        {"type": "rich_text_section", "elements": [{"type": "text", "text": "Check dashboards"}]},
                        {"type": "rich_text_section", "elements": [
                            {"type": "text", "text": "Page the DBA", "style": {"bold": true}}
                        ]}
                    ]}
                ]}]
            }),
            "On call: @admin — checklist:\n\n- Check dashboards\n- **Page the DBA**",
            None,
        ),
        (
            "plain_text that looks like markup stays text",
            json!({
                "blocks": [{"type": "section", "text": {"type": "plain_text",
                    "text": "<!channel> *not bold* <script>alert(1)</script>"}}]
            }),
            "&lt;!channel&gt; \\*not bold\\* &lt;script&gt;alert(1)&lt;/script&gt;",
            None,
        ),
    ];
    for (sender, payload, message, fallback) in top_level {
        let (status, text, created) = post(&shim, &path, &payload).await;
        assert_eq!((status, text.as_str()), (200, "ok"), "{sender}");
        let created = created.unwrap_or_else(|| panic!("{sender}: no post"));
        assert_eq!(created.message, message, "{sender}");
        assert_eq!(
            props(&created).get("fallback_text").and_then(Value::as_str),
            fallback,
            "{sender}"
        );
    }
}

#[tokio::test]
async fn blocks_inside_attachments_fill_the_attachment() {
    let (shim, path) = town_square_hook().await;

    // Uptime Kuma's Slack provider for a monitor that went down, with its dashboard button.
    let uptime_kuma = json!({
        "text": "Uptime Kuma Alert\n[api] [🔴 Down] timeout of 48000ms exceeded",
        "username": "Uptime Kuma",
        "icon_emoji": ":robot:",
        "attachments": [{
            "color": "#e01e5a",
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "Uptime Kuma Alert"}},
                {"type": "section", "fields": [
                    {"type": "mrkdwn", "text": "*Message*\n[api] [🔴 Down] timeout of 48000ms exceeded"},
                    {"type": "mrkdwn", "text": "*Time (UTC)*\n2026-12-02 07:00:00"}
                ]},
                {"type": "actions", "elements": [{
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Visit Uptime Kuma"},
                    "value": "Uptime-Kuma",
                    "url": "https://kuma.example.com/dashboard/3"
                }]}
            ]
        }]
    });
    let (status, _, created) = post(&shim, &path, &uptime_kuma).await;
    assert_eq!(status, 200);
    let created = created.expect("a post");
    assert_eq!(
        created.message,
        "Uptime Kuma Alert\n[api] [🔴 Down] timeout of 48000ms exceeded"
    );
    assert_eq!(created.post_type, "slack_attachment");
    let a = &props(&created)["attachments"][0];
    assert_eq!(a["color"], "#e01e5a");
    assert_eq!(a["title"], "Uptime Kuma Alert");
    assert_eq!(
        a["fields"],
        json!([
            {"title": "Message", "value": "[api] [🔴 Down] timeout of 48000ms exceeded", "short": true},
            {"title": "Time (UTC)", "value": "2026-12-02 07:00:00", "short": true}
        ])
    );
    assert_eq!(
        a["text"],
        "[Visit Uptime Kuma](https://kuma.example.com/dashboard/3)"
    );
    assert!(a.get("blocks").is_none(), "blocks are rendered, not stored");

    // An attachment's own text gives way to its blocks and becomes the fallback; members
    // the sender set are kept.
    let both = json!({"attachments": [{
        "text": "legacy text",
        "title": "Own title",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "Header"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "<https://x.example.com|link> ~old~"}}
        ]
    }]});
    let (status, _, created) = post(&shim, &path, &both).await;
    assert_eq!(status, 200);
    let a = &props(&created.expect("a post"))["attachments"][0];
    assert_eq!(a["title"], "Own title");
    assert_eq!(a["fallback"], "legacy text");
    assert_eq!(
        a["text"],
        "### Header\n\n[link](https://x.example.com) ~~old~~"
    );
}

#[tokio::test]
async fn blocks_with_nothing_to_show_are_no_text() {
    let (shim, path) = town_square_hook().await;
    // Only interactive elements, which call Slack back: nothing to render.
    let body = json!({"blocks": [{"type": "actions", "elements": [
        {"type": "button", "text": {"type": "plain_text", "text": "Ack"}, "action_id": "ack"}
    ]}]});
    let (status, text, created) = post(&shim, &path, &body).await;
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("web.incoming_webhook.text.app_error"),
        "{text}"
    );
    assert!(created.is_none());
    // A `blocks` that is not an array is ignored, and the text is posted.
    let (status, _, created) = post(&shim, &path, &json!({"text": "hi", "blocks": "x"})).await;
    assert_eq!(status, 200);
    assert_eq!(created.expect("a post").message, "hi");
}

/// A Slack app's slash command answering with Block Kit, as Bolt apps do.
#[tokio::test]
async fn command_responses_with_blocks() {
    use crate::commands::{command_for, execute, ok, shim};
    let shim = shim().await;
    let admin = Api::admin(&shim);
    let backend = switchboard_tests::Backend::start().await;
    command_for(&admin, &shim, &backend, "P").await;
    backend.reply_json(json!({
        "response_type": "in_channel",
        "text": "Build status",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": "*main* is ~red~ green"},
             "accessory": {"type": "button", "text": {"type": "plain_text", "text": "Logs"},
                           "url": "https://ci.example.com/logs/7"}}
        ]
    }));
    ok(&execute(&admin, &shim.town_square.id, "/deploy status").await);
    let created = shim.posts().pop().expect("a post");
    assert_eq!(
        created.message,
        "**main** is ~~red~~ green\n[Logs](https://ci.example.com/logs/7)"
    );
    assert_eq!(props(&created)["fallback_text"], "Build status");
    shim.stop().await.unwrap();
}

/// An outgoing webhook's receiver answering with Block Kit.
#[tokio::test]
async fn outgoing_webhook_responses_with_blocks() {
    use switchboard_tests::{Answer, CallbackServer, wait_until};
    let shim = crate::commands::shim().await;
    let admin = Api::admin(&shim);
    let server = CallbackServer::start(|_| {
        Answer::json(json!({"blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "Weather"}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "_sunny_, 21°C"}]}
        ]}))
    })
    .await;
    let reply = admin
        .post_json(
            "/api/v4/hooks/outgoing",
            &json!({"team_id": shim.team.id, "trigger_words": ["weather"],
                    "callback_urls": [server.url.clone()], "display_name": "Weather"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let reply = admin
        .post_json(
            "/api/v4/posts",
            &json!({"channel_id": shim.town_square.id, "message": "weather today"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    wait_until(|| shim.posts().len() == 2).await;
    let answer = shim.posts().pop().unwrap();
    assert_eq!(answer.message, "### Weather\n\n_sunny_, 21°C");
    server.stop().await;
    shim.stop().await.unwrap();
}

/// A hook marked `slack_format` at creation converts mrkdwn; other hooks keep Markdown.
#[tokio::test]
async fn slack_formatted_hooks_convert_mrkdwn() {
    let shim = TestShim::start().await.unwrap();
    let admin = Api::admin(&shim);
    let slack = admin
        .create_incoming_hook(&shim.town_square.id, json!({"slack_format": true}))
        .await;
    assert_eq!(slack["slack_format"], true);
    let plain = admin
        .create_incoming_hook(&shim.town_square.id, json!({}))
        .await;
    assert!(plain.get("slack_format").is_none(), "{plain}");
    let body = json!({
        "text": "*Deploy* _done_ ~fast~ at <!date^1700000000^{time}|14:13> for <!here|here> in <#C024BE91L|ops> `*kept*`",
        "attachments": [{"pretext": "*pre*", "text": "~old~ <https://x.example.com|*link*>",
                         "fields": [{"title": "When", "value": "<!date^1700000000^{date}>", "short": true}]}]
    });
    let path = |hook: &Value| format!("/hooks/{}", hook["id"].as_str().unwrap());

    let (status, _, created) = post(&shim, &path(&slack), &body).await;
    assert_eq!(status, 200);
    let created = created.expect("a post");
    assert_eq!(
        created.message,
        "**Deploy** _done_ ~~fast~~ at 14:13 for @here in ~ops `*kept*`"
    );
    let a = &props(&created)["attachments"][0];
    assert_eq!(a["pretext"], "**pre**");
    assert_eq!(a["text"], "~~old~~ [*link*](https://x.example.com)");
    assert_eq!(a["fields"][0]["value"], "2023-11-14 22:13 UTC");

    let (status, _, created) = post(&shim, &path(&plain), &body).await;
    assert_eq!(status, 200);
    assert!(
        created
            .expect("a post")
            .message
            .starts_with("*Deploy* _done_ ~fast~ at "),
        "a Mattermost hook is left as sent"
    );

    // The choice is made at creation: an update without the key keeps it.
    let mut update = slack.clone();
    update.as_object_mut().unwrap().remove("slack_format");
    update["display_name"] = json!("renamed");
    let id = slack["id"].as_str().unwrap();
    let reply = admin
        .put_json(&format!("/api/v4/hooks/incoming/{id}"), &update)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["slack_format"], true);
    shim.stop().await.unwrap();
}

/// `?wait=true` answers with the posts; `Idempotency-Key` makes a retry create nothing new;
/// `thread_ts` threads like `root_id`.
#[tokio::test]
async fn a_webhook_as_a_handle() {
    let (shim, path) = town_square_hook().await;
    let anon = Api::new(&shim, None);

    let reply = anon
        .post_raw(
            &format!("{path}?wait=true"),
            Some("application/json"),
            json!({"text": "root"}).to_string(),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let posts = reply.json();
    assert_eq!(posts.as_array().map(Vec::len), Some(1), "{posts}");
    let root = &posts[0];
    assert_eq!(root["message"], "root");
    assert_eq!(root["channel_id"], shim.town_square.id);
    assert_eq!(root["props"]["from_webhook"], "true");
    let root_id = root["id"].as_str().unwrap().to_owned();
    assert_eq!(
        shim.posts().last().unwrap().id,
        root_id,
        "the id is the stored post's"
    );

    // thread_ts is Slack's root_id.
    let reply = anon
        .post_raw(
            &format!("{path}?wait=true"),
            Some("application/json"),
            json!({"text": "reply", "thread_ts": root_id}).to_string(),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()[0]["root_id"], root_id);

    // The same Idempotency-Key twice: one post, and the same answer.
    let send = |key: &'static str, text: &'static str| {
        let anon = Api::new(&shim, None);
        let path = format!("{path}?wait=true");
        async move {
            anon.send_with_headers(
                reqwest::Method::POST,
                &path,
                Some("application/json"),
                &[("Idempotency-Key", key)],
                json!({"text": text}).to_string().into_bytes(),
            )
            .await
        }
    };
    let before = shim.posts().len();
    let first = send("deploy-1234", "deployed").await;
    let retry = send("deploy-1234", "deployed").await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.json(), retry.json(), "the first answer again");
    assert_eq!(shim.posts().len(), before + 1, "one post for two requests");
    let other = send("deploy-1235", "deployed").await;
    assert_ne!(other.json()[0]["id"], first.json()[0]["id"]);
    assert_eq!(shim.posts().len(), before + 2);

    let bad = send("has space", "x").await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.text
            .contains("web.incoming_webhook.idempotency_key.app_error"),
        "{}",
        bad.text
    );
    assert_eq!(
        shim.posts().len(),
        before + 2,
        "a refused key posts nothing"
    );

    // Without wait, the answer stays Mattermost's `ok`.
    let plain = anon
        .post_raw(
            &path,
            Some("application/json"),
            json!({"text": "x"}).to_string(),
        )
        .await;
    assert_eq!(plain.text, "ok");
    shim.stop().await.unwrap();
}

/// The answer names every member the hook did not use, so a sender can see what was dropped.
#[tokio::test]
async fn the_answer_says_what_was_ignored() {
    let (shim, path) = town_square_hook().await;
    let body = json!({
        "text": "deploy",
        "unfurl_links": false,
        "mrkdwn": true,
        "attachments": [{"text": "a", "mrkdwn_in": ["text"],
                         "actions": [{"name": "Go", "integration": {"url": "http://x"}, "confirm": {"title": "sure?"}}]}],
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}},
                   {"type": "actions", "elements": [{"type": "button", "action_id": "ack",
                                                      "text": {"type": "plain_text", "text": "Ack"}}]}]
    });
    let reply = reqwest::Client::new()
        .post(format!("{}{path}", shim.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(
        reply
            .headers()
            .get("x-switchboard-ignored")
            .and_then(|v| v.to_str().ok()),
        Some(
            "unfurl_links, mrkdwn, attachments[0].mrkdwn_in, attachments[0].actions[0].confirm, \
             blocks[1].elements[0]"
        )
    );
    assert_eq!(reply.text().await.unwrap(), "ok");

    let clean = reqwest::Client::new()
        .post(format!("{}{path}", shim.url))
        .json(&json!({"text": "clean"}))
        .send()
        .await
        .unwrap();
    assert!(clean.headers().get("x-switchboard-ignored").is_none());
    shim.stop().await.unwrap();
}

/// A hook's request budget: `RateLimit-*` headers, then 429 with `Retry-After`.
#[tokio::test]
async fn per_hook_rate_limits() {
    let shim = TestShim::start().await.unwrap();
    let admin = Api::admin(&shim);
    let limited = admin
        .create_incoming_hook(&shim.town_square.id, json!({"rate_limit": 2}))
        .await;
    assert_eq!(limited["rate_limit"], 2);
    let send = |hook: &Value| {
        let url = format!("{}/hooks/{}", shim.url, hook["id"].as_str().unwrap());
        async move {
            reqwest::Client::new()
                .post(url)
                .json(&json!({"text": "tick"}))
                .send()
                .await
                .unwrap()
        }
    };
    let header = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let before = shim.posts().len();
    let first = send(&limited).await;
    assert_eq!(first.status(), 200);
    assert_eq!(header(&first, "ratelimit-limit").as_deref(), Some("2"));
    assert_eq!(header(&first, "ratelimit-remaining").as_deref(), Some("1"));
    assert_eq!(send(&limited).await.status(), 200);
    let refused = send(&limited).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(
        header(&refused, "ratelimit-remaining").as_deref(),
        Some("0")
    );
    let retry: u64 = header(&refused, "retry-after").unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    let body = refused.text().await.unwrap();
    assert!(
        body.contains("web.incoming_webhook.rate_limited.app_error"),
        "{body}"
    );
    assert_eq!(
        shim.posts().len(),
        before + 2,
        "the refused request posted nothing"
    );

    // Other hooks have no budget until the plugin setting gives them one.
    let open = admin
        .create_incoming_hook(&shim.town_square.id, json!({}))
        .await;
    let free = send(&open).await;
    assert_eq!(free.status(), 200);
    assert!(header(&free, "ratelimit-limit").is_none());
    let patch = admin
        .put_json(
            "/api/v4/config/patch",
            &json!({"PluginSettings": {"Plugins": {"switchboard": {"IncomingWebhookRateLimit": 1}}}}),
        )
        .await;
    assert_eq!(patch.status, 200, "{}", patch.text);
    assert_eq!(send(&open).await.status(), 200);
    assert_eq!(send(&open).await.status(), 429);
    shim.stop().await.unwrap();
}

/// A hook's counters: requests, posts, failures, last use and latency, in its JSON.
#[tokio::test]
async fn hooks_count_what_they_did() {
    let shim = TestShim::start().await.unwrap();
    let admin = Api::admin(&shim);
    let hook = admin
        .create_incoming_hook(&shim.town_square.id, json!({}))
        .await;
    let id = hook["id"].as_str().unwrap();
    let stats = |admin: &Api| {
        let path = format!("/api/v4/hooks/incoming/{id}");
        let admin = admin.clone();
        async move {
            let reply = admin.get(&path).await;
            assert_eq!(reply.status, 200, "{}", reply.text);
            reply.json()["stats"].clone()
        }
    };
    let fresh = stats(&admin).await;
    assert_eq!(fresh["requests"], 0);
    assert_eq!(fresh["last_used_at"], 0);

    let anon = Api::new(&shim, None);
    let path = format!("/hooks/{id}");
    for body in [
        json!({"text": "one"}),
        json!({"text": "two"}),
        json!({"text": "nowhere", "channel": "no-such-channel"}),
    ] {
        anon.post_raw(&path, Some("application/json"), body.to_string())
            .await;
    }
    // Requests to hooks that do not exist start no series.
    anon.post_raw(
        "/hooks/aaaaaaaaaaaaaaaaaaaaaaaaaa",
        Some("application/json"),
        r#"{"text":"x"}"#,
    )
    .await;
    let counted = stats(&admin).await;
    assert_eq!(counted["requests"], 3, "{counted}");
    assert_eq!(counted["posts"], 2);
    assert_eq!(counted["failures"], 1);
    assert!(counted["last_used_at"].as_i64().unwrap() > 0);
    let p50 = counted["latency_p50_ms"].as_f64().unwrap();
    let p99 = counted["latency_p99_ms"].as_f64().unwrap();
    assert!(p50 > 0.0 && p99 >= p50, "{counted}");
    shim.stop().await.unwrap();
}

/// The hook edits and deletes the posts it made, authenticated by its URL alone.
#[tokio::test]
async fn a_hook_edits_and_deletes_its_own_posts() {
    let shim = TestShim::start().await.unwrap();
    let admin = Api::admin(&shim);
    let hook = admin
        .create_incoming_hook(&shim.town_square.id, json!({}))
        .await;
    let other = admin
        .create_incoming_hook(&shim.town_square.id, json!({}))
        .await;
    let anon = Api::new(&shim, None);
    let path = |h: &Value| format!("/hooks/{}", h["id"].as_str().unwrap());
    let made = anon
        .post_raw(
            &format!("{}?wait=true", path(&hook)),
            Some("application/json"),
            json!({"text": "Deploy *started*"}).to_string(),
        )
        .await
        .json();
    let post_id = made[0]["id"].as_str().unwrap().to_owned();
    let send = |method: reqwest::Method, url: String, body: Value| {
        let anon = anon.clone();
        async move {
            anon.send(
                method,
                &url,
                Some("application/json"),
                body.to_string().into_bytes(),
            )
            .await
        }
    };
    let edit_url = format!("{}/posts/{post_id}", path(&hook));

    let edited = send(
        reqwest::Method::PATCH,
        edit_url.clone(),
        json!({"text": "Deploy <https://ci.example.com/9|finished>",
               "attachments": [{"color": "good", "text": "all green"}]}),
    )
    .await;
    assert_eq!(edited.status, 200, "{}", edited.text);
    let edited = edited.json();
    assert_eq!(edited["id"], post_id);
    assert_eq!(
        edited["message"],
        "Deploy [finished](https://ci.example.com/9)"
    );
    assert_eq!(edited["type"], "slack_attachment");
    assert_eq!(edited["props"]["attachments"][0]["text"], "all green");
    assert_eq!(
        edited["props"]["from_webhook"], "true",
        "the webhook's props stay"
    );
    let stored = shim.posts().into_iter().find(|p| p.id == post_id).unwrap();
    assert_eq!(
        stored.message,
        "Deploy [finished](https://ci.example.com/9)"
    );
    assert!(stored.edit_at > 0);
    assert!(
        shim.events().iter().any(|e| e.event == "post_edited"),
        "clients are told"
    );

    // Another hook, a post not made by a hook, and bad bodies are refused; nothing changes.
    let other_url = format!("{}/posts/{post_id}", path(&other));
    let refused = send(
        reqwest::Method::PATCH,
        other_url.clone(),
        json!({"text": "hijack"}),
    )
    .await;
    assert_eq!(refused.status, 404, "{}", refused.text);
    assert!(
        refused
            .text
            .contains("web.incoming_webhook.post_not_found.app_error")
    );
    let user_post = admin
        .post_json(
            "/api/v4/posts",
            &json!({"channel_id": shim.town_square.id, "message": "mine"}),
        )
        .await
        .json();
    let not_hooks = format!(
        "{}/posts/{}",
        path(&hook),
        user_post["id"].as_str().unwrap()
    );
    assert_eq!(
        send(
            reqwest::Method::PATCH,
            not_hooks.clone(),
            json!({"text": "x"})
        )
        .await
        .status,
        404
    );
    assert_eq!(
        send(reqwest::Method::DELETE, not_hooks, Value::Null)
            .await
            .status,
        404
    );
    let empty = send(
        reqwest::Method::PATCH,
        edit_url.clone(),
        json!({"text": ""}),
    )
    .await;
    assert_eq!(empty.status, 400);
    let stored = shim.posts().into_iter().find(|p| p.id == post_id).unwrap();
    assert_eq!(
        stored.message,
        "Deploy [finished](https://ci.example.com/9)"
    );

    // Delete: gone for readers, and a second delete finds nothing.
    assert_eq!(
        send(reqwest::Method::DELETE, other_url, Value::Null)
            .await
            .status,
        404
    );
    let deleted = send(reqwest::Method::DELETE, edit_url.clone(), Value::Null).await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    let read = admin.get(&format!("/api/v4/posts/{post_id}")).await;
    assert_eq!(read.status, 404, "{}", read.text);
    assert_eq!(
        send(reqwest::Method::DELETE, edit_url, Value::Null)
            .await
            .status,
        404
    );
    shim.stop().await.unwrap();
}
