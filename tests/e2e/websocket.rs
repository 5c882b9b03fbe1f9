//! `/api/v4/websocket`: Mattermost's live events, authenticated with the
//! REST tokens; each client sees its own ephemeral replies and the posts of
//! channels it may read, nothing else.

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use switchboard_tests::{Api, TestShim};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(crate) struct Client {
    pub(crate) socket: Socket,
}

impl Client {
    pub(crate) fn url(shim: &TestShim) -> String {
        format!("{}/api/v4/websocket", shim.url.replacen("http", "ws", 1))
    }

    /// Connects with the token in the `Authorization` header and reads `hello`.
    pub(crate) async fn with_header(shim: &TestShim, token: &str) -> Client {
        let mut request = Client::url(shim).into_client_request().unwrap();
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let (socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        let mut client = Client { socket };
        let hello = client.next().await.expect("hello");
        assert_eq!(hello["event"], "hello");
        assert_eq!(hello["seq"], 0);
        client
    }

    /// Connects without credentials.
    pub(crate) async fn anonymous(shim: &TestShim) -> Client {
        let (socket, _) = tokio_tungstenite::connect_async(Client::url(shim))
            .await
            .unwrap();
        Client { socket }
    }

    pub(crate) async fn send(&mut self, value: Value) {
        self.socket
            .send(Message::Text(value.to_string().into()))
            .await
            .unwrap();
    }

    /// The next JSON message, or `None` when the connection ends or nothing
    /// comes within two seconds.
    pub(crate) async fn next(&mut self) -> Option<Value> {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(2), self.socket.next())
                .await
                .ok()??
                .ok()?;
            match message {
                Message::Text(text) => return serde_json::from_str(text.as_str()).ok(),
                Message::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// The next event, skipping replies to actions.
    pub(crate) async fn next_event(&mut self) -> Option<Value> {
        loop {
            let value = self.next().await?;
            if value.get("event").is_some() {
                return Some(value);
            }
        }
    }
}

fn post_of(event: &Value) -> Value {
    serde_json::from_str(event["data"]["post"].as_str().unwrap()).unwrap()
}

async fn execute(api: &Api, channel_id: &str, command: &str) {
    let reply = api
        .post_json(
            "/api/v4/commands/execute",
            &json!({"channel_id": channel_id, "command": command}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

#[tokio::test]
async fn an_ephemeral_reply_reaches_only_the_invoking_user() {
    let shim = TestShim::start().await.unwrap();
    let (alice, alice_token) = shim.create_user("alice").unwrap();
    let (bob, bob_token) = shim.create_user("bob").unwrap();
    let mut alice_ws = Client::with_header(&shim, &alice_token).await;

    // Bob authenticates the other way Mattermost clients do.
    let mut bob_ws = Client::anonymous(&shim).await;
    bob_ws
        .send(json!({"seq": 1, "action": "authentication_challenge", "data": {"token": bob_token}}))
        .await;
    // Mattermost's order: `hello` (seq 0) first, then the challenge's answer.
    let hello = bob_ws.next().await.unwrap();
    assert_eq!(
        (
            hello["event"].as_str(),
            hello["seq"].as_u64(),
            hello["broadcast"]["user_id"].as_str()
        ),
        (Some("hello"), Some(0), Some(bob.id.as_str()))
    );
    assert_eq!(
        bob_ws.next().await.unwrap(),
        json!({"status": "OK", "seq_reply": 1})
    );

    let alice_api = Api::new(&shim, Some(&alice_token));
    execute(&alice_api, &shim.town_square.id, "/help").await;
    execute(&alice_api, &shim.town_square.id, "/shrug").await;

    let first = alice_ws.next_event().await.unwrap();
    assert_eq!(first["event"], "ephemeral_message");
    assert_eq!(first["broadcast"]["user_id"], alice.id);
    assert_eq!(first["seq"], 1);
    let post = post_of(&first);
    assert_eq!(post["type"], "system_ephemeral");
    assert_eq!(post["user_id"], alice.id);
    assert!(post["message"].as_str().unwrap().contains("/shrug"));
    let second = alice_ws.next_event().await.unwrap();
    assert_eq!(second["event"], "posted");
    assert_eq!(second["seq"], 2);
    assert_eq!(second["data"]["channel_name"], "town-square");

    // Bob's first event is the shrug: the help text was never sent to him.
    let bobs_first = bob_ws.next_event().await.unwrap();
    assert_eq!(bobs_first["event"], "posted");
    assert_eq!(post_of(&bobs_first)["message"], r"¯\\\_(ツ)\_/¯");

    // The harness keeps the same events.
    let kept: Vec<String> = shim.events().iter().map(|e| e.event.clone()).collect();
    assert_eq!(kept, ["ephemeral_message", "posted"]);
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn posts_reach_only_those_who_may_read_the_channel() {
    let shim = TestShim::start().await.unwrap();
    let admin = Api::admin(&shim);
    let (_, token) = shim.create_user("carol").unwrap();
    let private = admin
        .post_json(
            "/api/v4/channels",
            &json!({"team_id": shim.team.id, "name": "staff", "display_name": "Staff", "type": "P"}),
        )
        .await
        .json();
    let mut carol_ws = Client::with_header(&shim, &token).await;
    let mut admin_ws = Client::with_header(&shim, &shim.admin_token).await;
    let reply = admin
        .post_json(
            "/api/v4/posts",
            &json!({"channel_id": private["id"], "message": "staff only"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    admin
        .post_json(
            "/api/v4/posts",
            &json!({"channel_id": shim.town_square.id, "message": "for everyone"}),
        )
        .await;
    assert_eq!(
        post_of(&admin_ws.next_event().await.unwrap())["message"],
        "staff only"
    );
    assert_eq!(
        post_of(&admin_ws.next_event().await.unwrap())["message"],
        "for everyone"
    );
    assert_eq!(
        post_of(&carol_ws.next_event().await.unwrap())["message"],
        "for everyone"
    );
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn unauthenticated_connections_get_nothing() {
    let shim = TestShim::start().await.unwrap();
    let mut ws = Client::anonymous(&shim).await;
    ws.send(json!({"seq": 1, "action": "user_typing", "data": {}}))
        .await;
    let reply = ws.next().await.unwrap();
    assert_eq!(reply["status"], "FAIL");
    assert_eq!(reply["seq_reply"], 1);
    assert_eq!(
        reply["error"]["id"],
        "api.web_socket_router.not_authenticated.app_error"
    );
    // Events are not delivered before authentication.
    Api::admin(&shim)
        .post_json(
            "/api/v4/posts",
            &json!({"channel_id": shim.town_square.id, "message": "hi"}),
        )
        .await;
    assert!(ws.next().await.is_none());

    // A bad token closes the connection.
    let mut ws = Client::anonymous(&shim).await;
    ws.send(json!({"seq": 1, "action": "authentication_challenge", "data": {"token": "wrong"}}))
        .await;
    assert!(ws.next().await.is_none());
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn posted_carries_mattermosts_notification_fields() {
    let shim = TestShim::start().await.unwrap();
    let (alice, alice_token) = shim.create_user("alice").unwrap();
    let (bob, bob_token) = shim.create_user("bob").unwrap();
    let mut alice_ws = Client::with_header(&shim, &alice_token).await;
    let mut bob_ws = Client::with_header(&shim, &bob_token).await;
    let reply = Api::new(&shim, Some(&alice_token))
        .post_json(
            "/api/v4/posts",
            &json!({"channel_id": shim.town_square.id, "message": "ping @bob, see `@alice`"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);

    let to_bob = bob_ws.next_event().await.unwrap();
    assert_eq!(to_bob["event"], "posted");
    let data = &to_bob["data"];
    assert_eq!(data["sender_name"], "@alice");
    assert_eq!(data["channel_display_name"], "Town Square");
    assert_eq!(data["channel_name"], "town-square");
    assert_eq!(data["channel_type"], "O");
    assert_eq!(data["team_id"], shim.team.id);
    assert_eq!(data["set_online"], true);
    // A JSON string holding only the recipient's id, as Mattermost sends it.
    assert_eq!(data["mentions"], json!([bob.id]).to_string());
    assert_eq!(post_of(&to_bob)["user_id"], alice.id);
    assert_eq!(to_bob["broadcast"]["channel_id"], shim.town_square.id);
    assert_eq!(to_bob["broadcast"]["team_id"], "");

    // The author is not mentioned (code spans are not searched), so their
    // copy has no `mentions`.
    let to_alice = alice_ws.next_event().await.unwrap();
    assert_eq!(to_alice["event"], "posted");
    assert!(to_alice["data"].get("mentions").is_none(), "{to_alice}");
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn webhook_posts_mention_their_owner_and_do_not_set_online() {
    let shim = TestShim::builder()
        .config(|c| c.service_settings.enable_post_username_override = true)
        .start()
        .await
        .unwrap();
    let admin = Api::admin(&shim);
    let hook = admin
        .create_incoming_hook(&shim.town_square.id, json!({}))
        .await;
    let mut admin_ws = Client::with_header(&shim, &shim.admin_token).await;
    let reply = Api::new(&shim, None)
        .post_json(
            &format!("/hooks/{}", hook["id"].as_str().unwrap()),
            &json!({"text": "build broke, @channel", "username": "ci-bot"}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let event = admin_ws.next_event().await.unwrap();
    assert_eq!(event["data"]["sender_name"], "ci-bot");
    assert_eq!(event["data"]["set_online"], false);
    // A webhook's post mentions even the user it posts as.
    assert_eq!(
        event["data"]["mentions"],
        json!([shim.admin.id]).to_string()
    );
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn ping_answers_pong_with_version_and_server_time() {
    let shim = TestShim::start().await.unwrap();
    let mut ws = Client::with_header(&shim, &shim.admin_token).await;
    ws.send(json!({"seq": 7, "action": "ping"})).await;
    let reply = ws.next().await.unwrap();
    assert_eq!(reply["status"], "OK", "{reply}");
    assert_eq!(reply["seq_reply"], 7);
    assert_eq!(reply["data"]["text"], "pong");
    assert_eq!(reply["data"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(reply["data"]["node_id"], "");
    assert!(reply["data"]["server_time"].as_i64().unwrap() > 1_600_000_000_000);
    // Other actions are still unknown.
    ws.send(json!({"seq": 8, "action": "no_such_action"})).await;
    let reply = ws.next().await.unwrap();
    assert_eq!(
        reply["error"]["id"],
        "api.web_socket_router.bad_action.app_error"
    );
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn unauthenticated_sockets_are_closed_after_the_deadline() {
    let shim = TestShim::builder()
        .config(|c| c.switchboard_settings.websocket_auth_timeout_seconds = 1)
        .start()
        .await
        .unwrap();
    let mut silent = Client::anonymous(&shim).await;
    let mut authenticated = Client::with_header(&shim, &shim.admin_token).await;
    // Closed within a generous bound: `next` gives up after 2 s of silence,
    // so ask twice.
    let ended = async {
        loop {
            match tokio::time::timeout(Duration::from_secs(2), silent.socket.next()).await {
                Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return true,
                Ok(Some(Ok(_))) => continue,
                Err(_) => return false,
            }
        }
    };
    let first = ended.await;
    assert!(first, "the unauthenticated socket is still open");
    // An authenticated connection outlives the deadline.
    authenticated
        .send(json!({"seq": 1, "action": "ping"}))
        .await;
    assert_eq!(authenticated.next().await.unwrap()["data"]["text"], "pong");
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn fan_out_asks_permissions_once_per_socket_and_sees_membership_changes() {
    let shim = TestShim::start().await.unwrap();
    let admin = Api::admin(&shim);
    let (carol, token) = shim.create_user("carol").unwrap();
    let private = admin
        .post_json(
            "/api/v4/channels",
            &json!({"team_id": shim.team.id, "name": "ops", "display_name": "Ops", "type": "P"}),
        )
        .await
        .json();
    let private_id = private["id"].as_str().unwrap().to_string();
    const SOCKETS: usize = 8;
    const POSTS: usize = 8;
    let mut sockets = Vec::new();
    for _ in 0..SOCKETS {
        sockets.push(Client::with_header(&shim, &token).await);
    }
    let before = shim.shim.app.permission_checks();
    for i in 0..POSTS {
        let reply = admin
            .post_json(
                "/api/v4/posts",
                &json!({"channel_id": shim.town_square.id, "message": format!("post {i}")}),
            )
            .await;
        assert_eq!(reply.status, 201);
    }
    for socket in &mut sockets {
        for i in 0..POSTS {
            assert_eq!(
                post_of(&socket.next_event().await.unwrap())["message"],
                format!("post {i}")
            );
        }
    }
    // Each post costs the REST path a few checks; without the per-socket
    // cache fan-out alone would cost SOCKETS * POSTS.
    let spent = shim.shim.app.permission_checks() - before;
    assert!(
        spent < (SOCKETS * POSTS) as u64,
        "{spent} permission checks for {POSTS} posts to {SOCKETS} sockets"
    );

    // Carol cannot see the private channel; once added, she does.
    admin
        .post_json(
            "/api/v4/posts",
            &json!({"channel_id": private_id, "message": "before"}),
        )
        .await;
    let reply = admin
        .post_json(
            &format!("/api/v4/channels/{private_id}/members"),
            &json!({"user_id": carol.id}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    admin
        .post_json(
            "/api/v4/posts",
            &json!({"channel_id": private_id, "message": "after"}),
        )
        .await;
    for socket in &mut sockets {
        assert_eq!(
            post_of(&socket.next_event().await.unwrap())["message"],
            "after"
        );
    }
    shim.stop().await.unwrap();
}
