//! `POST /api/v4/commands/execute` with custom commands served by real
//! backends on loopback: the request, every kind of reply, `response_url`,
//! Slack signatures, and every error path.

use super::{command_for, create_command, execute, ok, shim};
use serde_json::{Value, json};
use switchboard_host_shim::store::Post;
use switchboard_tests::{Api, TestShim};
use switchboard_tests::{Backend, Recorded};

fn props(post: &Post) -> Value {
    serde_json::from_str(&post.props).unwrap()
}

fn last_post(shim: &TestShim) -> Post {
    shim.posts().pop().expect("a post")
}

/// The ephemeral posts shown to `user_id`, oldest first.
fn ephemerals(shim: &TestShim, user_id: &str) -> Vec<Value> {
    shim.events()
        .into_iter()
        .filter(|e| e.event == "ephemeral_message" && e.user_id.as_deref() == Some(user_id))
        .map(|e| serde_json::from_str(e.data["post"].as_str().unwrap()).unwrap())
        .collect()
}

#[tokio::test]
async fn post_sends_every_field_and_an_in_channel_reply_posts() {
    let shim = shim().await;
    let admin = Api::admin(&shim);
    let backend = Backend::start().await;
    let command = command_for(&admin, &shim, &backend, "P").await;
    let (bob, _) = shim.create_user("bob").unwrap();
    backend.reply_json(json!({"response_type": "in_channel", "text": "Deploying <@{}> to *staging*".replace("{}", &bob.id)}));

    let out = ok(&execute(
        &admin,
        &shim.town_square.id,
        "/Deploy staging @bob. ~town-square ~off-topic ~nowhere @nobody",
    )
    .await);
    let req = backend.last();
    assert_eq!(req.method, "POST");
    assert_eq!(req.uri(), "/slash");
    assert_eq!(
        req.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(req.header("accept"), Some("application/json"));
    assert_eq!(req.header("user-agent"), Some("Mattermost-Bot/1.1"));
    let token = command["token"].as_str().unwrap();
    assert_eq!(
        req.header("authorization"),
        Some(format!("Token {token}").as_str())
    );

    assert_eq!(req.one("token"), token);
    assert_eq!(req.one("team_id"), shim.team.id);
    assert_eq!(req.one("team_domain"), shim.team.name);
    assert_eq!(req.one("channel_id"), shim.town_square.id);
    assert_eq!(req.one("channel_name"), "town-square");
    assert_eq!(req.one("user_id"), shim.admin.id);
    assert_eq!(req.one("user_name"), shim.admin.username);
    assert_eq!(req.one("command"), "/deploy");
    assert_eq!(
        req.one("text"),
        "staging @bob. ~town-square ~off-topic ~nowhere @nobody"
    );
    assert_eq!(req.one("root_id"), "");
    assert_eq!(req.field("user_mentions"), ["bob"]);
    assert_eq!(req.field("user_mentions_ids"), [bob.id.as_str()]);
    assert_eq!(req.field("channel_mentions"), ["town-square", "off-topic"]);
    assert_eq!(req.field("channel_mentions_ids").len(), 2);
    let response_url = req.one("response_url");
    assert!(
        response_url.starts_with(&format!("{}/hooks/commands/", shim.url)),
        "{response_url}"
    );
    // Go's url.Values.Encode: keys sorted.
    let keys: Vec<String> = req.form().into_iter().map(|(k, _)| k).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);

    // The long trigger id carries the 26-character id the client gets.
    let long = base64_decode(&req.one("trigger_id"));
    let client_id = out["trigger_id"].as_str().unwrap();
    assert_eq!(client_id.len(), 26);
    assert!(
        long.starts_with(&format!("{client_id}:{}:", shim.admin.id)),
        "{long}"
    );

    let post = last_post(&shim);
    assert_eq!(post.message, "Deploying @bob to *staging*");
    assert_eq!(post.user_id, shim.admin.id);
    assert_eq!(post.channel_id, shim.town_square.id);
    assert_eq!(props(&post)["from_webhook"], "true");
    assert_eq!(out["response_type"], "in_channel");
    assert_eq!(out["text"], "Deploying @bob to *staging*");
    shim.stop().await.unwrap();
}

fn base64_decode(s: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = ALPHABET.iter().position(|&a| a == c).expect("base64") as u32;
        bits = (bits << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn get_with_a_plain_text_reply_is_ephemeral() {
    let shim = shim().await;
    let admin = Api::admin(&shim);
    let backend = Backend::start().await;
    create_command(
        &admin,
        &shim,
        json!({"method": "G", "url": format!("{}/slash?fixed=yes", backend.url)}),
    )
    .await;
    backend.reply(
        200,
        Some("text/plain; charset=utf-8"),
        "Only you can see <http://x|this>",
    );
    let before = shim.posts().len();
    let out = ok(&execute(&admin, &shim.town_square.id, "/deploy now please").await);
    let req = backend.last();
    assert_eq!(req.method, "GET");
    assert!(req.body.is_empty());
    assert!(req.uri().starts_with("/slash?fixed=yes&"), "{}", req.uri());
    assert_eq!(req.header("content-type"), None);
    assert_eq!(req.one("text"), "now please");
    assert_eq!(req.one("command"), "/deploy");
    assert_eq!(shim.posts().len(), before, "nothing stored");
    let shown = ephemerals(&shim, &shim.admin.id);
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0]["message"], "Only you can see [this](http://x)");
    assert_eq!(shown[0]["type"], "system_ephemeral");
    assert_eq!(shown[0]["channel_id"], shim.town_square.id);
    assert_eq!(out["text"], "Only you can see <http://x|this>");

    // A JSON body without the JSON content type is text too.
    backend.reply(200, Some("text/html"), r#"{"text":"raw"}"#);
    ok(&execute(&admin, &shim.town_square.id, "/deploy").await);
    assert_eq!(
        ephemerals(&shim, &shim.admin.id)[1]["message"],
        r#"{"text":"raw"}"#
    );
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn response_types_extra_responses_and_overrides() {
    let shim = TestShim::builder()
        .config(|c| {
            c.service_settings.allowed_untrusted_internal_connections = "127.0.0.1".into();
            c.service_settings.enable_post_username_override = true;
            c.service_settings.enable_post_icon_override = true;
        })
        .start()
        .await
        .unwrap();
    let admin = Api::admin(&shim);
    let backend = Backend::start().await;
    create_command(
        &admin,
        &shim,
        json!({"url": format!("{}/slash", backend.url), "username": "deploybot"}),
    )
    .await;
    let off_topic = shim
        .shim
        .app
        .store
        .channel_by_name(&shim.team.id, "off-topic")
        .unwrap();
    backend.reply_json(json!({
        "response_type": "ephemeral", "text": "main, private",
        "goto_location": "http://somewhere", "username": "ignored-for-stored",
        "extra_responses": [
            {"response_type": "in_channel", "text": "extra in channel", "icon_url": "http://icon",
             "props": {"card": "c"}, "attachments": [{"text": "att <http://y|y>", "fields": [{"title": "n", "value": 3}]}]},
            {"response_type": "in_channel", "text": "to off-topic", "channel_id": off_topic.id},
            {"response_type": "comment", "text": "never posted"},
            null
        ]
    }));
    let out = ok(&execute(&admin, &shim.town_square.id, "/deploy").await);
    assert_eq!(out["goto_location"], "http://somewhere");
    assert_eq!(out["extra_responses"].as_array().unwrap().len(), 3);

    let posts = shim.posts();
    assert_eq!(posts.len(), 2, "{posts:?}");
    let extra = &posts[0];
    assert_eq!(extra.message, "extra in channel");
    assert_eq!(extra.post_type, "slack_attachment");
    let p = props(extra);
    assert_eq!(p["override_username"], "deploybot");
    assert_eq!(p["override_icon_url"], "http://icon");
    assert_eq!(p["from_webhook"], "true");
    assert_eq!(p["card"], "c");
    assert_eq!(p["attachments"][0]["text"], "att [y](http://y)");
    assert_eq!(p["attachments"][0]["fields"][0]["value"], "3");
    assert_eq!(posts[1].channel_id, off_topic.id);

    let shown = ephemerals(&shim, &shim.admin.id);
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0]["message"], "main, private");
    assert_eq!(shown[0]["props"]["override_username"], "deploybot");

    // A channel the user is not in: that response fails, the call fails,
    // what was posted stays.
    let (alice, alice_token) = shim.create_user("alice").unwrap();
    let alice_api = Api::new(&shim, Some(&alice_token));
    backend.reply_json(json!({
        "response_type": "in_channel", "text": "posted", "extra_responses": [
            {"response_type": "in_channel", "text": "x", "channel_id": off_topic.id}
        ]
    }));
    execute(&alice_api, &shim.town_square.id, "/deploy")
        .await
        .assert_error(
            500,
            "api.command.execute_command.create_post_failed.app_error",
        );
    let last = last_post(&shim);
    assert_eq!(
        (last.message.as_str(), last.user_id.as_str()),
        ("posted", alice.id.as_str())
    );
    shim.stop().await.unwrap();
}

/// Slack's published verification, done with `ring` (not the plugin's HMAC):
/// `v0=` + hex HMAC-SHA256 of `v0:<timestamp>:<raw body>` under the signing
/// secret, with a timestamp no older than five minutes.
fn slack_verifies(secret: &str, req: &Recorded) -> bool {
    let (Some(timestamp), Some(signature)) = (
        req.header("x-slack-request-timestamp"),
        req.header("x-slack-signature"),
    ) else {
        return false;
    };
    let Ok(ts) = timestamp.parse::<i64>() else {
        return false;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    if (now - ts).abs() > 300 {
        return false;
    }
    let Some(hex_sig) = signature.strip_prefix("v0=") else {
        return false;
    };
    let Some(expected) = (0..hex_sig.len())
        .step_by(2)
        .map(|i| {
            hex_sig
                .get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
    else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut base = format!("v0:{timestamp}:").into_bytes();
    base.extend_from_slice(&req.body);
    ring::hmac::verify(&key, &base, &expected).is_ok()
}

#[tokio::test]
async fn requests_carry_slack_signatures() {
    let shim = shim().await;
    let admin = Api::admin(&shim);
    let backend = Backend::start().await;
    let post_cmd = command_for(&admin, &shim, &backend, "P").await;
    let get_cmd = create_command(
        &admin,
        &shim,
        json!({"trigger": "status-check", "method": "G", "url": format!("{}/slash", backend.url)}),
    )
    .await;
    ok(&execute(&admin, &shim.town_square.id, "/deploy to prod & more").await);
    let post_req = backend.last();
    let secret = post_cmd["signing_secret"].as_str().unwrap();
    assert!(slack_verifies(secret, &post_req));
    // Any change to the body, or the wrong secret, fails verification.
    let mut tampered = post_req.clone();
    tampered.body.push(b'x');
    assert!(!slack_verifies(secret, &tampered));
    assert!(!slack_verifies("wrong", &post_req));

    ok(&execute(&admin, &shim.town_square.id, "/status-check").await);
    let get_req = backend.last();
    assert!(slack_verifies(
        get_cmd["signing_secret"].as_str().unwrap(),
        &get_req
    ));

    // A new secret signs from then on.
    let id = post_cmd["id"].as_str().unwrap();
    let fresh = admin
        .put_json(
            &format!("/api/v4/commands/{id}/regen_signing_secret"),
            &json!({}),
        )
        .await
        .json();
    let fresh = fresh["signing_secret"].as_str().unwrap();
    assert_ne!(fresh, secret);
    ok(&execute(&admin, &shim.town_square.id, "/deploy").await);
    let req = backend.last();
    assert!(slack_verifies(fresh, &req) && !slack_verifies(secret, &req));
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn response_url_works_five_times_within_its_life() {
    let shim = shim().await;
    let admin = Api::admin(&shim);
    let backend = Backend::start().await;
    command_for(&admin, &shim, &backend, "P").await;
    backend.reply(200, Some("application/json"), r#"{"text":"working on it"}"#);
    ok(&execute(&admin, &shim.town_square.id, "/deploy").await);
    let response_url = backend.last().one("response_url");
    let path = response_url.strip_prefix(&shim.url).unwrap().to_string();
    let anonymous = Api::new(&shim, None);

    let first = anonymous
        .post_json(
            &path,
            &json!({"response_type": "in_channel", "text": "done <!here>"}),
        )
        .await;
    assert_eq!(
        (
            first.status.as_u16(),
            first.text.as_str(),
            first.content_type.as_str()
        ),
        (200, "ok", "text/plain")
    );
    let post = last_post(&shim);
    assert_eq!(post.message, "done @here");
    assert_eq!(post.user_id, shim.admin.id);
    assert_eq!(props(&post)["from_webhook"], "true");
    let text = anonymous
        .post_raw(&path, Some("text/plain"), "plain follow-up")
        .await;
    assert_eq!(text.text, "ok");
    assert_eq!(
        ephemerals(&shim, &shim.admin.id).last().unwrap()["message"],
        "plain follow-up"
    );
    anonymous
        .post_raw(&path, Some("application/json"), "{not json")
        .await
        .assert_error(400, "web.command_webhook.parse.app_error");
    for _ in 0..3 {
        assert_eq!(anonymous.post_raw(&path, None, "again").await.text, "ok");
    }
    let sixth = anonymous.post_raw(&path, None, "sixth").await;
    let body = sixth.assert_error(400, "web.command_webhook.general.app_error");
    assert!(
        body["detailed_error"]
            .as_str()
            .unwrap()
            .contains("app.command_webhook.try_use.invalid")
    );

    anonymous
        .post_raw("/hooks/commands/unknownhookid", None, "x")
        .await
        .assert_error(404, "web.command_webhook.general.app_error");
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn concurrent_follow_ups_cannot_exceed_five() {
    let shim = shim().await;
    let admin = Api::admin(&shim);
    let backend = Backend::start().await;
    command_for(&admin, &shim, &backend, "P").await;
    ok(&execute(&admin, &shim.town_square.id, "/deploy").await);
    let response_url = backend.last().one("response_url");
    let path = response_url.strip_prefix(&shim.url).unwrap().to_string();
    let anonymous = Api::new(&shim, None);
    let attempts = (0..12).map(|n| {
        let (api, path) = (anonymous.clone(), path.clone());
        async move {
            api.post_raw(
                &path,
                Some("application/json"),
                format!(r#"{{"response_type":"in_channel","text":"n{n}"}}"#),
            )
            .await
            .status
            .as_u16()
        }
    });
    let mut statuses = futures::future::join_all(attempts).await;
    statuses.sort();
    assert_eq!(
        statuses,
        [200, 200, 200, 200, 200, 400, 400, 400, 400, 400, 400, 400]
    );
    assert_eq!(shim.posts().len(), 5);
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn response_url_expires_after_thirty_minutes() {
    let shim = TestShim::builder()
        .config(|c| c.service_settings.allowed_untrusted_internal_connections = "127.0.0.1".into())
        .fixed_clock(1_800_000_000_000)
        .start()
        .await
        .unwrap();
    let admin = Api::admin(&shim);
    let backend = Backend::start().await;
    command_for(&admin, &shim, &backend, "P").await;
    ok(&execute(&admin, &shim.town_square.id, "/deploy").await);
    let response_url = backend.last().one("response_url");
    let path = response_url.strip_prefix(&shim.url).unwrap().to_string();
    let anonymous = Api::new(&shim, None);

    shim.advance_clock(std::time::Duration::from_secs(29 * 60));
    assert_eq!(anonymous.post_raw(&path, None, "in time").await.text, "ok");
    shim.advance_clock(std::time::Duration::from_secs(2 * 60));
    let body = anonymous
        .post_raw(&path, None, "late")
        .await
        .assert_error(404, "web.command_webhook.general.app_error");
    assert!(
        body["detailed_error"]
            .as_str()
            .unwrap()
            .contains("app.command_webhook.get.missing")
    );
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn every_execution_error() {
    let shim = shim().await;
    let admin = Api::admin(&shim);
    let backend = Backend::start().await;
    command_for(&admin, &shim, &backend, "P").await;
    let town = shim.town_square.id.clone();
    let run = |line: &'static str| {
        let admin = admin.clone();
        let town = town.clone();
        async move { execute(&admin, &town, line).await }
    };

    run("/")
        .await
        .assert_error(400, "api.command.execute_command.start.app_error");
    run("deploy")
        .await
        .assert_error(400, "api.command.execute_command.start.app_error");
    execute(&admin, "not-a-channel-id", "/deploy")
        .await
        .assert_error(400, "api.command.execute_command.start.app_error");
    let missing = run("/missing").await;
    let body = missing.assert_error(404, "api.command.execute_command.not_found.app_error");
    assert!(body["message"].as_str().unwrap().contains("'missing'"));
    // Longer than any trigger may be (and than a kv key): unknown, not a store error.
    execute(&admin, &town, &format!("/{}", "x".repeat(480)))
        .await
        .assert_error(404, "api.command.execute_command.not_found.app_error");

    for status in [201, 204, 400, 500] {
        backend.reply(status, Some("application/json"), "{}");
        run("/deploy")
            .await
            .assert_error(500, "api.command.execute_command.failed_resp.app_error");
    }
    backend.reply(200, Some("application/json"), r#"{"text":"a"} trailing"#);
    run("/deploy")
        .await
        .assert_error(500, "api.command.execute_command.failed.app_error");
    backend.reply(200, Some("application/json"), "");
    run("/deploy")
        .await
        .assert_error(500, "api.command.execute_command.failed.app_error");
    backend.reply(
        200,
        Some("application/json"),
        r#"{"attachments":[{"fields":[{"short":"yes"}]}]}"#,
    );
    run("/deploy")
        .await
        .assert_error(500, "api.command.execute_command.failed.app_error");
    backend.reply(
        200,
        Some("application/json"),
        r#"{"response_type":"in_channel","text":"x","type":"system_generic"}"#,
    );
    run("/deploy").await.assert_error(
        500,
        "api.command.execute_command.create_post_failed.app_error",
    );
    backend.reply(
        200,
        Some("application/json"),
        r#"{"response_type":"in_channel","text":"x","type":"unknown_type"}"#,
    );
    run("/deploy").await.assert_error(
        500,
        "api.command.execute_command.create_post_failed.app_error",
    );

    // Nothing listens on port 9 of loopback: a transport error.
    create_command(
        &admin,
        &shim,
        json!({"trigger": "dead", "url": "http://127.0.0.1:9/x"}),
    )
    .await;
    run("/dead")
        .await
        .assert_error(500, "api.command.execute_command.failed.app_error");
    // Outside the allowed internal addresses: refused by egress, same error.
    create_command(
        &admin,
        &shim,
        json!({"trigger": "internal", "url": "http://10.0.0.1/x"}),
    )
    .await;
    run("/internal")
        .await
        .assert_error(500, "api.command.execute_command.failed.app_error");

    // Posting rights in the channel are required.
    let (_, token) = shim.create_user("stranger").unwrap();
    let off_topic = shim
        .shim
        .app
        .store
        .channel_by_name(&shim.team.id, "off-topic")
        .unwrap();
    execute(&Api::new(&shim, Some(&token)), &off_topic.id, "/deploy")
        .await
        .assert_error(403, "api.context.permissions.app_error");
    Api::new(&shim, None)
        .post_json(
            "/api/v4/commands/execute",
            &json!({"channel_id": town, "command": "/deploy"}),
        )
        .await
        .assert_error(401, "api.context.session_expired.app_error");

    shim.set_config(|c| c.service_settings.site_url.clear())
        .unwrap();
    run("/deploy").await.assert_error(
        400,
        "api.command.execute_command.site_url_required.app_error",
    );
    assert_eq!(
        run("/shrug").await.status,
        200,
        "built-ins need no Site URL"
    );
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn text_starts_after_any_unicode_space() {
    let shim = shim().await;
    let admin = Api::admin(&shim);
    let backend = Backend::start().await;
    command_for(&admin, &shim, &backend, "P").await;
    for (line, text) in [
        ("/deploy\u{a0}staging", "staging"),
        ("/deploy\u{3000}東京", "東京"),
        ("/deploy\u{2003}\u{2003}x", "\u{2003}x"),
        ("/DEPLOY\tx", "x"),
        ("/deploy", ""),
    ] {
        ok(&execute(&admin, &shim.town_square.id, line).await);
        let req = backend.last();
        assert_eq!(req.one("text"), text, "{line:?}");
        assert_eq!(req.one("command"), "/deploy");
    }
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn an_in_channel_reply_fires_outgoing_webhooks_after_the_command_returns() {
    let shim = shim().await;
    let admin = Api::admin(&shim);
    let backend = Backend::start().await;
    command_for(&admin, &shim, &backend, "P").await;
    backend.reply_json(json!({"response_type": "in_channel", "text": "released v2"}));
    let callback = switchboard_tests::CallbackServer::start(|_| {
        switchboard_tests::Answer::raw(200, None, "").after(std::time::Duration::from_millis(500))
    })
    .await;
    let reply = admin
        .post_json(
            "/api/v4/hooks/outgoing",
            &json!({"team_id": shim.team.id, "trigger_words": ["released"], "callback_urls": [callback.url.clone()]}),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 201, "{}", reply.text);

    let started = std::time::Instant::now();
    ok(&execute(&admin, &shim.town_square.id, "/deploy prod").await);
    assert!(
        started.elapsed() < std::time::Duration::from_millis(500),
        "the command does not wait for the webhook's callback"
    );
    let request = callback.wait_for(1).await.remove(0);
    assert_eq!(request.field("trigger_word"), ["released"]);
    assert_eq!(request.field("text"), ["released v2"]);
    callback.stop().await;
    shim.stop().await.unwrap();
}
