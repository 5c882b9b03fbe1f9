//! Two nodes on one PostgreSQL hear each other through the cluster bus: a
//! post made through one reaches sockets on the other, in order, each
//! connection with its own `seq`; a configuration patched on one is run by
//! the other's plugin.

use crate::websocket::Client;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use switchboard_tests::{Api, TestShim};

fn post_message(event: &Value) -> String {
    let post: Value = serde_json::from_str(event["data"]["post"].as_str().unwrap()).unwrap();
    post["message"].as_str().unwrap().to_string()
}

/// The next `posted` event's message and `seq` (skipping other events).
async fn next_post(client: &mut Client) -> (String, u64) {
    loop {
        let event = client.next_event().await.expect("a posted event");
        if event["event"] == "posted" {
            return (post_message(&event), event["seq"].as_u64().unwrap());
        }
    }
}

#[tokio::test]
async fn posts_through_one_node_reach_sockets_on_the_other_in_order() {
    let a = TestShim::builder().fresh_postgres().start().await.unwrap();
    let b = TestShim::builder().node_of(&a).start().await.unwrap();
    let (_, carol_token) = a.create_user("carol").unwrap();
    // Carol is connected to b only; the posts are made through a: by the
    // REST API and by an incoming webhook, which runs a's component.
    let mut carol_on_b = Client::with_header(&b, &carol_token).await;
    let admin_a = Api::admin(&a);
    let hook = admin_a
        .create_incoming_hook(&a.town_square.id, json!({}))
        .await;
    for i in 0..3 {
        let reply = admin_a
            .post_json(
                "/api/v4/posts",
                &json!({"channel_id": a.town_square.id, "message": format!("rest {i}")}),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.text);
    }
    let reply = admin_a
        .post_raw(
            &format!("/hooks/{}", hook["id"].as_str().unwrap()),
            Some("application/json"),
            r#"{"text":"from the hook"}"#,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(next_post(&mut carol_on_b).await);
    }
    assert_eq!(
        got,
        [
            ("rest 0".to_string(), 1),
            ("rest 1".to_string(), 2),
            ("rest 2".to_string(), 3),
            ("from the hook".to_string(), 4),
        ]
    );
    // A connection opened later numbers from its own hello.
    let mut admin_on_b = Client::with_header(&b, &b.admin_token).await;
    let reply = admin_a
        .post_json(
            "/api/v4/posts",
            &json!({"channel_id": a.town_square.id, "message": "later"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(next_post(&mut admin_on_b).await, ("later".to_string(), 1));
    assert_eq!(next_post(&mut carol_on_b).await, ("later".to_string(), 5));
    // b's event log holds what b's sockets got from a.
    let on_b: Vec<String> = b
        .events()
        .iter()
        .filter(|e| e.event == "posted")
        .map(|e| {
            serde_json::from_str::<Value>(e.data["post"].as_str().unwrap()).unwrap()["message"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        on_b,
        ["rest 0", "rest 1", "rest 2", "from the hook", "later"]
    );

    // And the other way: a post through b reaches a socket on a, once.
    let mut carol_on_a = Client::with_header(&a, &carol_token).await;
    let reply = Api::admin(&b)
        .post_json(
            "/api/v4/posts",
            &json!({"channel_id": b.town_square.id, "message": "through b"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(
        next_post(&mut carol_on_a).await,
        ("through b".to_string(), 1)
    );
    assert_eq!(
        next_post(&mut carol_on_b).await,
        ("through b".to_string(), 6)
    );
    b.stop().await.unwrap();
    a.stop().await.unwrap();
}

#[tokio::test]
async fn a_channel_joined_on_one_node_shows_its_posts_on_the_other() {
    let a = TestShim::builder().fresh_postgres().start().await.unwrap();
    let b = TestShim::builder().node_of(&a).start().await.unwrap();
    let (dave, dave_token) = a.create_user("dave").unwrap();
    let admin_a = Api::admin(&a);
    let private = admin_a
        .post_json(
            "/api/v4/channels",
            &json!({"team_id": a.team.id, "name": "ops", "display_name": "Ops", "type": "P"}),
        )
        .await
        .json();
    let channel = private["id"].as_str().unwrap().to_string();
    let mut dave_on_b = Client::with_header(&b, &dave_token).await;
    // Not a member yet: b answers (and caches) "may not read".
    let reply = admin_a
        .post_json(
            "/api/v4/posts",
            &json!({"channel_id": channel, "message": "before dave"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    // Once dave has this one, b's socket has judged the one before.
    let reply = admin_a
        .post_json(
            "/api/v4/posts",
            &json!({"channel_id": a.town_square.id, "message": "in town square"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(next_post(&mut dave_on_b).await.0, "in town square");
    // Dave is added on a (its store, as a route would); b's cached answer
    // must not hold.
    a.shim
        .app
        .store
        .add_channel_member(&channel, &dave.id)
        .unwrap();
    let reply = admin_a
        .post_json(
            "/api/v4/posts",
            &json!({"channel_id": channel, "message": "after dave"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(next_post(&mut dave_on_b).await.0, "after dave");
    b.stop().await.unwrap();
    a.stop().await.unwrap();
}

#[tokio::test]
async fn a_config_patch_on_one_node_is_run_by_the_other() {
    let a = TestShim::builder().fresh_postgres().start().await.unwrap();
    let b = TestShim::builder().node_of(&a).start().await.unwrap();
    let hook = Api::admin(&a)
        .create_incoming_hook(&a.town_square.id, json!({}))
        .await;
    let path = format!("/hooks/{}", hook["id"].as_str().unwrap());
    let send = |shim: &TestShim| {
        let api = Api::new(shim, None);
        let path = path.clone();
        async move {
            api.post_raw(&path, Some("application/json"), r#"{"text":"x"}"#)
                .await
        }
    };
    assert_eq!(send(&b).await.status, 200);
    let b_database = b.shim.app.config().sql_settings.clone();

    let reply = Api::admin(&a)
        .put_json(
            "/api/v4/config/patch",
            &json!({"ServiceSettings": {"EnableIncomingWebhooks": false}}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    // b's plugin refuses the hook once b runs the new configuration: on
    // the bus's word, or by its own read within a few seconds.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let reply = send(&b).await;
        if reply.status == 501 {
            reply.assert_error(501, "web.incoming_webhook.general.app_error");
            break;
        }
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert!(Instant::now() < deadline, "b never ran the patch");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let shown = Api::admin(&b).get("/api/v4/config").await.json();
    assert_eq!(shown["ServiceSettings"]["EnableIncomingWebhooks"], false);
    // Each node keeps its own database settings, masked in the API.
    assert_eq!(b.shim.app.config().sql_settings, b_database);
    assert_eq!(
        shown["SqlSettings"]["DataSource"],
        "********************************"
    );
    b.stop().await.unwrap();
    a.stop().await.unwrap();
}
