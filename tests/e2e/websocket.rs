//! `/api/v4/websocket`: Mattermost's live events, authenticated with the
//! REST tokens; each client sees its own ephemeral replies and the posts of
//! channels it may read, nothing else.

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use switchboard_tests::{Api, TestShim};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Client {
    socket: Socket,
}

impl Client {
    fn url(shim: &TestShim) -> String {
        format!("{}/api/v4/websocket", shim.url.replacen("http", "ws", 1))
    }

    /// Connects with the token in the `Authorization` header and reads `hello`.
    async fn with_header(shim: &TestShim, token: &str) -> Client {
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
    async fn anonymous(shim: &TestShim) -> Client {
        let (socket, _) = tokio_tungstenite::connect_async(Client::url(shim))
            .await
            .unwrap();
        Client { socket }
    }

    async fn send(&mut self, value: Value) {
        self.socket
            .send(Message::Text(value.to_string().into()))
            .await
            .unwrap();
    }

    /// The next JSON message, or `None` when the connection ends or nothing
    /// comes within two seconds.
    async fn next(&mut self) -> Option<Value> {
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
    async fn next_event(&mut self) -> Option<Value> {
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
    assert_eq!(
        bob_ws.next().await.unwrap(),
        json!({"status": "OK", "seq_reply": 1})
    );
    let hello = bob_ws.next().await.unwrap();
    assert_eq!(
        (
            hello["event"].as_str(),
            hello["broadcast"]["user_id"].as_str()
        ),
        (Some("hello"), Some(bob.id.as_str()))
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
