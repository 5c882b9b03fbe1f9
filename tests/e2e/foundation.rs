//! The skeleton working for real: REST basics, the plugin's isolation (traps,
//! deadlines, memory), the compiled-component cache, and bad input.

use serde_json::json;
use switchboard_host_shim::harness::default_component;
use switchboard_host_shim::runtime::{Grants, Runtime, RuntimeOptions};
use switchboard_tests::{Api, TestShim};

#[tokio::test]
async fn incoming_webhook_round_trip_over_http() {
    let shim = TestShim::start().await.unwrap();
    let admin = Api::admin(&shim);
    let hook = admin
        .create_incoming_hook(&shim.town_square.id, json!({"display_name": "CI"}))
        .await;

    let anonymous = Api::new(&shim, None);
    let reply = anonymous
        .post_raw(
            &format!("/hooks/{}", hook["id"].as_str().unwrap()),
            Some("application/json"),
            r#"{"text":"Build passed"}"#,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.content_type, "text/plain");
    assert_eq!(reply.text, "ok");

    let posts = admin.channel_posts(&shim.town_square.id).await;
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0]["message"], "Build passed");
    assert_eq!(posts[0]["user_id"], shim.admin.id);
    assert_eq!(posts[0]["props"]["from_webhook"], "true");
    assert_eq!(posts[0]["props"]["webhook_display_name"], "CI");
    // The post is committed to the SQLite file, not only in memory.
    assert_eq!(shim.posts().len(), 1);
    shim.stop().await.unwrap();
}

/// Each fault fails its own call with the envelope, and the next call works.
#[tokio::test]
async fn traps_deadlines_and_memory_blow_ups_fail_alone() {
    let shim = TestShim::builder()
        .config(|c| c.switchboard_settings.plugin_call_timeout_seconds = 1)
        .start()
        .await
        .unwrap();
    let admin = Api::admin(&shim);
    let hook = admin
        .create_incoming_hook(&shim.town_square.id, json!({}))
        .await;
    let hook_path = format!("/hooks/{}", hook["id"].as_str().unwrap());
    for (fault, says) in [
        ("trap", "the plugin failed"),
        ("spin", "did not answer within 1 s"),
        ("alloc", "memory limit of 64 MiB"),
    ] {
        let reply = admin
            .post_raw(&format!("/plugins/switchboard/test/{fault}"), None, "")
            .await;
        let body = reply.assert_error(500, "app.plugin.call_failed.app_error");
        assert!(
            body["message"].as_str().unwrap().contains(says),
            "{fault}: {body}"
        );
        let next = admin
            .post_raw(&hook_path, None, format!(r#"{{"text":"after {fault}"}}"#))
            .await;
        assert_eq!(next.text, "ok", "the call after {fault}");
    }
    assert_eq!(shim.posts().len(), 3);
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn fault_routes_exist_only_when_testing_is_enabled() {
    let shim = TestShim::builder()
        .config(|c| c.service_settings.enable_testing = false)
        .start()
        .await
        .unwrap();
    let reply = Api::admin(&shim)
        .post_raw("/plugins/switchboard/test/trap", None, "")
        .await;
    reply.assert_error(404, "api.context.404.app_error");
    shim.stop().await.unwrap();
}

#[test]
fn the_second_load_uses_the_compiled_cache() {
    let cache = tempfile::tempdir().unwrap();
    let options = || RuntimeOptions {
        cache_dir: Some(cache.path().to_path_buf()),
        ..RuntimeOptions::default()
    };
    let grants = Grants {
        egress: true,
        kv: true,
    };
    let bytes = std::fs::read(default_component()).expect("run `make component` first");
    let first = Runtime::from_bytes(&bytes, grants, options()).unwrap();
    assert!(!first.loaded_from_cache);
    let second = Runtime::from_bytes(&bytes, grants, options()).unwrap();
    assert!(second.loaded_from_cache);
    // Different bytes are a different artifact, never a stale hit.
    let mut other = bytes.clone();
    other.extend_from_slice(&[0, 5, 4, b'x', b't', b'r', b'a']); // an extra, empty custom section `xtra`
    let third = Runtime::from_bytes(&other, grants, options()).unwrap();
    assert!(!third.loaded_from_cache);
    eprintln!(
        "component load: compile {:?}, from cache {:?}",
        first.load_time, second.load_time
    );
}

#[tokio::test]
async fn unknown_routes_tokens_and_bodies_get_envelopes() {
    let shim = TestShim::start().await.unwrap();
    let admin = Api::admin(&shim);
    let anonymous = Api::new(&shim, None);
    let wrong = Api::new(&shim, Some("notarealtoken"));

    admin
        .get("/api/v4/no/such/route")
        .await
        .assert_error(404, "api.context.404.app_error");
    anonymous
        .get("/api/v4/users/me")
        .await
        .assert_error(401, "api.context.session_expired.app_error");
    wrong
        .get("/api/v4/users/me")
        .await
        .assert_error(401, "api.context.session_expired.app_error");
    anonymous
        .get("/api/v4/hooks/incoming")
        .await
        .assert_error(401, "api.context.session_expired.app_error");
    admin
        .post_raw(
            "/api/v4/hooks/incoming",
            Some("application/json"),
            "{not json",
        )
        .await
        .assert_error(400, "api.context.invalid_body_param.app_error");
    admin
        .post_raw("/api/v4/posts", Some("application/json"), "[1,2]")
        .await
        .assert_error(400, "api.context.invalid_body_param.app_error");
    admin
        .get("/api/v4/posts/doesnotexist")
        .await
        .assert_error(404, "app.post.get.app_error");
    admin
        .post_raw("/hooks/unknownhookid", None, r#"{"text":"x"}"#)
        .await
        .assert_error(400, "web.incoming_webhook.general.app_error");

    let big = vec![b'a'; 300_000 + 513];
    admin
        .post_raw("/api/v4/posts", Some("application/json"), big.clone())
        .await
        .assert_error(413, "api.context.request_body_too_large.app_error");
    admin
        .post_raw(
            "/api/v4/hooks/incoming",
            Some("application/json"),
            big.clone(),
        )
        .await
        .assert_error(413, "api.context.request_body_too_large.app_error");
    admin
        .post_raw("/hooks/abc", Some("application/json"), big)
        .await
        .assert_error(413, "api.context.request_body_too_large.app_error");
    // Nothing above crashed the shim.
    assert_eq!(anonymous.get("/api/v4/system/ping").await.status, 200);
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn login_users_teams_channels_and_posts() {
    let shim = TestShim::start().await.unwrap();
    let admin = Api::admin(&shim);
    let anonymous = Api::new(&shim, None);

    let reply = admin
        .post_json(
            "/api/v4/users",
            &json!({"username": "alice", "email": "alice@example.com", "password": "secret-pw"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let alice = reply.json();
    admin
        .post_json(
            "/api/v4/users",
            &json!({"username": "alice", "email": "a2@example.com", "password": "secret-pw"}),
        )
        .await
        .assert_error(400, "app.user.save.username_exists.app_error");

    let bad = anonymous
        .post_json(
            "/api/v4/users/login",
            &json!({"login_id": "alice", "password": "wrong"}),
        )
        .await;
    bad.assert_error(401, "api.user.login.invalid_credentials_email_username");
    let http = reqwest::Client::new();
    let login = http
        .post(shim.url("/api/v4/users/login"))
        .json(&json!({"login_id": "alice", "password": "secret-pw"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let session = login.headers()["token"].to_str().unwrap().to_string();
    let alice_api = Api::new(&shim, Some(&session));
    assert_eq!(
        alice_api.get("/api/v4/users/me").await.json()["id"],
        alice["id"]
    );

    // Alice is not in the team yet: she cannot post in town-square.
    let post = json!({"channel_id": shim.town_square.id, "message": "hi"});
    alice_api
        .post_json("/api/v4/posts", &post)
        .await
        .assert_error(403, "api.context.permissions.app_error");
    let reply = admin
        .post_json(
            &format!("/api/v4/teams/{}/members", shim.team.id),
            &json!({"team_id": shim.team.id, "user_id": alice["id"]}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let reply = alice_api
        .post_json(
            &format!("/api/v4/channels/{}/members", shim.town_square.id),
            &json!({"user_id": alice["id"]}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);

    for n in 0..3 {
        let reply = alice_api
            .post_json(
                "/api/v4/posts",
                &json!({"channel_id": shim.town_square.id, "message": format!("m{n}")}),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.text);
    }
    let page = alice_api
        .get(&format!(
            "/api/v4/channels/{}/posts?page=0&per_page=2",
            shim.town_square.id
        ))
        .await
        .json();
    let order: Vec<&str> = page["order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(order.len(), 2);
    assert_eq!(page["posts"][order[0]]["message"], "m2");
    assert_eq!(page["posts"][order[1]]["message"], "m1");
    let first = alice_api
        .get(&format!("/api/v4/posts/{}", order[1]))
        .await
        .json();
    assert_eq!(first["message"], "m1");

    let reply = alice_api
        .post_json("/api/v4/channels", &json!({"team_id": shim.team.id, "name": "alice-private", "display_name": "Alice", "type": "P"}))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let private = reply.json();
    let bob = Api::new(&shim, Some(&shim.create_user("bob").unwrap().1));
    bob.get(&format!(
        "/api/v4/channels/{}",
        private["id"].as_str().unwrap()
    ))
    .await
    .assert_error(403, "api.context.permissions.app_error");
    let by_name = alice_api
        .get(&format!(
            "/api/v4/teams/{}/channels/name/alice-private",
            shim.team.id
        ))
        .await;
    assert_eq!(by_name.json()["id"], private["id"]);
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn config_patch_takes_effect_without_restart() {
    let shim = TestShim::start().await.unwrap();
    let admin = Api::admin(&shim);
    let hook = admin
        .create_incoming_hook(&shim.town_square.id, json!({}))
        .await;
    let path = format!("/hooks/{}", hook["id"].as_str().unwrap());

    let (_, token) = shim.create_user("carol").unwrap();
    Api::new(&shim, Some(&token))
        .get("/api/v4/config")
        .await
        .assert_error(403, "api.context.permissions.app_error");

    let reply = admin
        .put_json(
            "/api/v4/config/patch",
            &json!({"ServiceSettings": {"EnableIncomingWebhooks": false}}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.json()["ServiceSettings"]["EnableIncomingWebhooks"],
        false
    );
    let body = admin
        .post_raw(&path, None, r#"{"text":"x"}"#)
        .await
        .assert_error(501, "web.incoming_webhook.general.app_error");
    assert!(
        body["detailed_error"]
            .as_str()
            .unwrap()
            .contains("web.incoming_webhook.disabled.app_error"),
        "{body}"
    );

    admin
        .put_json(
            "/api/v4/config/patch",
            &json!({"ServiceSettings": {"EnableIncomingWebhooks": "no"}}),
        )
        .await
        .assert_error(400, "api.context.invalid_body_param.app_error");
    admin
        .put_json(
            "/api/v4/config/patch",
            &json!({"ServiceSettings": {"EnableIncomingWebhooks": true}}),
        )
        .await;
    assert_eq!(
        admin.post_raw(&path, None, r#"{"text":"x"}"#).await.text,
        "ok"
    );
    assert_eq!(
        admin.get("/api/v4/config").await.json()["ServiceSettings"]["EnableIncomingWebhooks"],
        true
    );
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn a_fixed_clock_rules_both_sides() {
    let start = 1_800_000_000_000;
    let shim = TestShim::builder()
        .fixed_clock(start)
        .start()
        .await
        .unwrap();
    let admin = Api::admin(&shim);
    // The plugin reads WASI's wall clock for the hook's create_at …
    let hook = admin
        .create_incoming_hook(&shim.town_square.id, json!({}))
        .await;
    assert_eq!(hook["create_at"], start);
    shim.advance_clock(std::time::Duration::from_secs(60));
    // … and the host stamps posts with the same clock.
    let path = format!("/hooks/{}", hook["id"].as_str().unwrap());
    assert_eq!(
        admin.post_raw(&path, None, r#"{"text":"tick"}"#).await.text,
        "ok"
    );
    assert_eq!(shim.posts()[0].create_at, start + 60_000);
    shim.stop().await.unwrap();
}

/// Garbage at every route: each answer is a success or an envelope, never a
/// crash, a hang or a bare 500 from the plugin.
#[tokio::test]
async fn no_request_crashes_the_shim() {
    let shim = TestShim::start().await.unwrap();
    let admin = Api::admin(&shim);
    let hook = admin
        .create_incoming_hook(&shim.town_square.id, json!({}))
        .await;
    let id = hook["id"].as_str().unwrap().to_string();
    let paths = [
        format!("/hooks/{id}"),
        "/hooks/x".to_string(),
        "/api/v4/hooks/incoming".to_string(),
        format!("/api/v4/hooks/incoming/{id}"),
        "/api/v4/hooks/outgoing".to_string(),
        format!("/api/v4/hooks/outgoing/{id}"),
        format!("/api/v4/hooks/outgoing/{id}/regen_token"),
        "/api/v4/posts".to_string(),
        "/api/v4/users".to_string(),
        "/api/v4/channels".to_string(),
        "/api/v4/config/patch".to_string(),
        "/plugins/switchboard/nothing".to_string(),
    ];
    let bodies: [&[u8]; 7] = [
        b"",
        b"\xff\xfe\x00garbage",
        b"{\"text\":",
        b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
        b"{\"text\":\"x\",\"attachments\":[{\"fields\":[{\"value\":{\"a\":[1,{\"b\":null}]}}]}],\"props\":null,\"priority\":7}",
        b"payload=%7B%22text%22",
        b"--b\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\nx",
    ];
    let types = [
        None,
        Some("application/json"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=b"),
        Some("text/plain; charset"),
    ];
    for path in &paths {
        for method in [
            reqwest::Method::POST,
            reqwest::Method::PUT,
            reqwest::Method::GET,
            reqwest::Method::DELETE,
        ] {
            for body in bodies {
                for ct in types {
                    let reply = admin.send(method.clone(), path, ct, body.to_vec()).await;
                    let status = reply.status.as_u16();
                    if status >= 400 {
                        let envelope: serde_json::Value = serde_json::from_str(&reply.text)
                            .unwrap_or_else(|_| {
                                panic!("{method} {path} {ct:?}: not an envelope: {}", reply.text)
                            });
                        assert_eq!(envelope["status_code"], status, "{method} {path}");
                        assert_ne!(
                            envelope["id"], "app.plugin.call_failed.app_error",
                            "{method} {path} {ct:?} {body:?}"
                        );
                    }
                }
            }
        }
    }
    assert_eq!(admin.get("/api/v4/system/ping").await.status, 200);
    shim.stop().await.unwrap();
}
