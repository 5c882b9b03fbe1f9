//! Outgoing webhooks through the compiled component: management, matching,
//! the exact requests, concurrent delivery, responses, signatures, failures.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};
use switchboard_host_shim::store::Post;
use switchboard_tests::{Answer, Api, CallbackServer, TestShim, wait_until};

async fn shim() -> TestShim {
    TestShim::builder()
        .config(|c| c.service_settings.allowed_untrusted_internal_connections = "127.0.0.1".into())
        .start()
        .await
        .unwrap()
}

async fn create_hook(api: &Api, body: Value) -> Value {
    let reply = api.post_json("/api/v4/hooks/outgoing", &body).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.json()
}

async fn say(api: &Api, channel_id: &str, message: &str) -> Value {
    let reply = api
        .post_json(
            "/api/v4/posts",
            &json!({"channel_id": channel_id, "message": message}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.json()
}

fn props(post: &Post) -> Value {
    serde_json::from_str(&post.props).unwrap()
}

/// HMAC-SHA256 written out from RFC 2104, independent of the hmac crate the plugin uses.
pub(crate) fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner: Vec<u8> = block
        .iter()
        .map(|b| b ^ 0x36)
        .chain(message.iter().copied())
        .collect();
    let outer: Vec<u8> = block
        .iter()
        .map(|b| b ^ 0x5c)
        .chain(Sha256::digest(&inner))
        .collect();
    Sha256::digest(&outer).to_vec()
}

#[tokio::test]
async fn management_rules() {
    let shim = shim().await;
    let admin = Api::admin(&shim);
    let team = shim.team.id.clone();
    let hook = create_hook(&admin, json!({"team_id": team, "trigger_words": ["deploy"], "callback_urls": ["http://example.com/a"], "display_name": "Deployer"})).await;
    assert_eq!(hook["token"].as_str().unwrap().len(), 26);
    assert_eq!(hook["creator_id"], shim.admin.id);
    assert!(hook["signing_secret"].as_str().unwrap().len() >= 32);
    let id = hook["id"].as_str().unwrap();

    let cases = [
        (
            json!({"team_id": team, "callback_urls": ["http://x"]}),
            400,
            "api.webhook.create_outgoing.triggers.app_error",
        ),
        (
            json!({"team_id": team, "trigger_words": ["a"], "callback_urls": []}),
            400,
            "model.outgoing_hook.is_valid.callback.app_error",
        ),
        (
            json!({"team_id": team, "trigger_words": ["a"], "callback_urls": ["ftp://x"]}),
            400,
            "model.outgoing_hook.is_valid.url.app_error",
        ),
        (
            json!({"team_id": team, "trigger_words": [""], "callback_urls": ["http://x"]}),
            400,
            "model.outgoing_hook.is_valid.trigger_words.app_error",
        ),
        (
            json!({"team_id": team, "trigger_words": ["a"], "callback_urls": ["http://x"], "description": "d".repeat(501)}),
            400,
            "model.outgoing_hook.is_valid.description.app_error",
        ),
        (
            json!({"team_id": team, "trigger_words": ["a"], "callback_urls": ["http://x"], "trigger_when": 2}),
            400,
            "model.outgoing_hook.is_valid.content_type.app_error",
        ),
        (
            json!({"team_id": team, "trigger_words": ["deploy", "x"], "callback_urls": ["http://example.com/a"]}),
            500,
            "api.webhook.create_outgoing.intersect.app_error",
        ),
        (
            json!({"team_id": team, "channel_id": "x".repeat(26), "callback_urls": ["http://x"]}),
            404,
            "app.channel.get.existing.app_error",
        ),
    ];
    for (body, status, error) in cases {
        admin
            .post_json("/api/v4/hooks/outgoing", &body)
            .await
            .assert_error(status, error);
    }
    let private = admin
        .post_json(
            "/api/v4/channels",
            &json!({"team_id": team, "name": "priv", "display_name": "Priv", "type": "P"}),
        )
        .await
        .json();
    admin
        .post_json(
            "/api/v4/hooks/outgoing",
            &json!({"team_id": team, "channel_id": private["id"], "callback_urls": ["http://x"]}),
        )
        .await
        .assert_error(403, "api.outgoing_webhook.disabled.app_error");

    // Update keeps token and creator; an intersecting update is a 400.
    let other = create_hook(&admin, json!({"team_id": team, "trigger_words": ["build"], "callback_urls": ["http://example.com/a"]})).await;
    let mut change = other.clone();
    change["trigger_words"] = json!(["build", "deploy"]);
    admin
        .put_json(
            &format!("/api/v4/hooks/outgoing/{}", other["id"].as_str().unwrap()),
            &change,
        )
        .await
        .assert_error(400, "api.webhook.update_outgoing.intersect.app_error");
    change["trigger_words"] = json!(["ship"]);
    let updated = admin
        .put_json(
            &format!("/api/v4/hooks/outgoing/{}", other["id"].as_str().unwrap()),
            &change,
        )
        .await
        .json();
    assert_eq!(updated["trigger_words"], json!(["ship"]));
    assert_eq!(updated["token"], other["token"]);

    let regenerated = admin
        .post_raw(
            &format!("/api/v4/hooks/outgoing/{id}/regen_token"),
            None,
            "",
        )
        .await
        .json();
    assert_ne!(regenerated["token"], hook["token"]);
    assert_eq!(regenerated["token"].as_str().unwrap().len(), 26);

    let listed = admin
        .get(&format!(
            "/api/v4/hooks/outgoing?team_id={team}&per_page=1&page=1"
        ))
        .await
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let by_channel = admin
        .get(&format!(
            "/api/v4/hooks/outgoing?channel_id={}",
            shim.town_square.id
        ))
        .await
        .json();
    assert!(by_channel.as_array().unwrap().is_empty());
    assert_eq!(
        admin
            .delete(&format!("/api/v4/hooks/outgoing/{id}"))
            .await
            .json(),
        json!({"status": "OK"})
    );
    admin
        .get(&format!("/api/v4/hooks/outgoing/{id}"))
        .await
        .assert_error(404, "app.webhooks.get_outgoing.app_error");
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn matching_rules_and_exact_requests() {
    let shim = shim().await;
    let admin = Api::admin(&shim);
    let server = CallbackServer::start(|_| Answer::raw(200, Some("text/plain"), "")).await;
    let team = shim.team.id.clone();
    let town = shim.town_square.id.clone();
    create_hook(&admin, json!({"team_id": team, "trigger_words": ["deploy"], "callback_urls": [format!("{}/exact", server.url)]})).await;
    create_hook(&admin, json!({"team_id": team, "trigger_words": ["bu", "build"], "trigger_when": 1, "content_type": "application/json",
                               "callback_urls": [format!("{}/prefix", server.url)]})).await;
    create_hook(&admin, json!({"team_id": team, "channel_id": town, "callback_urls": [format!("{}/channel", server.url)]})).await;

    say(&admin, &town, "hello").await; // only the channel hook
    server.wait_for(1).await;
    let deploy = say(&admin, &town, "  deploy now <b> & co").await; // exact + channel
    server.wait_for(3).await;
    say(&admin, &town, "Deploy deployment").await; // case-sensitive: channel only
    server.wait_for(4).await;
    let build = say(&admin, &town, "buildx").await; // starts-with + channel
    let requests = server.wait_for(6).await;
    let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths.iter().filter(|p| **p == "/channel").count(), 4);
    assert_eq!(paths.iter().filter(|p| **p == "/exact").count(), 1);
    assert_eq!(paths.iter().filter(|p| **p == "/prefix").count(), 1);

    let exact = requests.iter().find(|r| r.path == "/exact").unwrap();
    let secs = deploy["create_at"].as_i64().unwrap() / 1000;
    let hook_token = {
        let hooks = admin
            .get(&format!("/api/v4/hooks/outgoing?team_id={team}"))
            .await
            .json();
        hooks
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["trigger_words"] == json!(["deploy"]))
            .unwrap()["token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        exact.body_text(),
        format!(
            "channel_id={town}&channel_name=town-square&file_ids=&post_id={}&team_domain=switchboard&team_id={team}&text=++deploy+now+%3Cb%3E+%26+co&timestamp={secs}&token={hook_token}&trigger_word=deploy&user_id={}&user_name=admin",
            deploy["id"].as_str().unwrap(),
            shim.admin.id
        )
    );
    assert_eq!(
        exact.header("content-type").unwrap_or(""),
        "application/x-www-form-urlencoded"
    );
    assert_eq!(exact.header("accept").unwrap_or(""), "application/json");
    assert_eq!(
        exact.header("user-agent").unwrap_or(""),
        "Mattermost-Bot/1.1"
    );

    let prefix = requests.iter().find(|r| r.path == "/prefix").unwrap();
    assert_eq!(
        prefix.header("content-type").unwrap_or(""),
        "application/json"
    );
    let body: Value = serde_json::from_slice(&prefix.body).unwrap();
    // Its own trigger word (the first in its list that matches), not another hook's.
    assert_eq!(body["trigger_word"], "bu");
    assert_eq!(body["timestamp"], build["create_at"]);
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "token",
            "team_id",
            "team_domain",
            "channel_id",
            "channel_name",
            "timestamp",
            "user_id",
            "user_name",
            "post_id",
            "text",
            "trigger_word",
            "file_ids"
        ]
    );
    let channel_only = requests.iter().find(|r| r.path == "/channel").unwrap();
    assert!(channel_only.body_text().contains("trigger_word=&"));
    server.stop().await;
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn what_does_not_fire() {
    let shim = shim().await;
    let admin = Api::admin(&shim);
    let server = CallbackServer::start(|_| Answer::json(json!({"text": "echo"}))).await;
    let team = shim.team.id.clone();
    create_hook(
        &admin,
        json!({"team_id": team, "trigger_words": ["go"], "callback_urls": [server.url.clone()]}),
    )
    .await;
    let private = admin
        .post_json(
            "/api/v4/channels",
            &json!({"team_id": team, "name": "quiet", "display_name": "Quiet", "type": "P"}),
        )
        .await
        .json();
    say(&admin, private["id"].as_str().unwrap(), "go private").await;
    let incoming = admin
        .create_incoming_hook(&shim.town_square.id, json!({}))
        .await;
    let reply = Api::new(&shim, None)
        .post_raw(
            &format!("/hooks/{}", incoming["id"].as_str().unwrap()),
            None,
            r#"{"text":"go from a webhook"}"#,
        )
        .await;
    assert_eq!(reply.text, "ok");
    // A post that fires proves the pipeline is live; the response post itself must not fire again.
    say(&admin, &shim.town_square.id, "go").await;
    server.wait_for(1).await;
    wait_until(|| shim.posts().iter().any(|p| p.message == "echo")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        server.requests().len(),
        1,
        "only the user's public post fired"
    );
    server.stop().await;
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn fifty_slow_callbacks_are_called_together() {
    let shim = shim().await;
    let admin = Api::admin(&shim);
    let server = CallbackServer::start(|_| {
        Answer::raw(200, Some("text/plain"), "").after(Duration::from_millis(200))
    })
    .await;
    for h in 0..10 {
        let urls: Vec<String> = (0..5)
            .map(|u| format!("{}/h{h}/u{u}", server.url))
            .collect();
        create_hook(
            &admin,
            json!({"team_id": shim.team.id, "trigger_words": ["page"], "callback_urls": urls}),
        )
        .await;
    }
    let started = Instant::now();
    let reply = admin
        .post_json(
            "/api/v4/posts",
            &json!({"channel_id": shim.town_square.id, "message": "page everyone"}),
        )
        .await;
    assert_eq!(reply.status, 201);
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "the post is answered before any callback returns"
    );
    let requests = server.wait_for(50).await;
    let first = requests.iter().map(|r| r.at).min().unwrap();
    let last = requests.iter().map(|r| r.at).max().unwrap();
    // In sequence the last call would start 49 × 200 ms after the first.
    assert!(
        last - first < Duration::from_millis(1000),
        "calls spread over {:?}",
        last - first
    );
    server.stop().await;
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn responses_become_posts() {
    let shim = shim().await;
    let admin = Api::admin(&shim);
    let admin_id = shim.admin.id.clone();
    let server = CallbackServer::start(move |r| {
        let text = r.body_text();
        if text.contains("text=plain") {
            Answer::json(json!({"text": format!("<!here> hi <@{admin_id}> <http://x|link>"), "username": "responder", "icon_url": "http://i/r.png",
                                 "props": {"from_webhook": "no", "custom": 1}})) 
        } else if text.contains("text=thread") {
            Answer::json(json!({"text": "in thread", "response_type": "comment"}))
        } else if text.contains("text=attach") {
            Answer::json(json!({"attachments": [null, {"text": "<http://a|A>", "fields": [{"title": "n", "value": 7}]}], "type": "custom_x"}))
        } else if text.contains("text=empty") {
            Answer::json(json!({"text": "", "username": "x"}))
        } else {
            Answer::raw(200, Some("application/json"), "")
        }
    })
    .await;
    create_hook(&admin, json!({"team_id": shim.team.id, "trigger_words": ["plain", "thread", "attach", "empty", "nothing"],
                               "callback_urls": [server.url.clone()], "display_name": "Resp", "username": "hookname"})).await;
    let town = shim.town_square.id.clone();
    let count = || shim.posts().len();

    say(&admin, &town, "plain").await;
    wait_until(|| count() == 2).await;
    let post = shim.posts().pop().unwrap();
    assert_eq!(post.message, "@here hi @admin [link](http://x)");
    assert_eq!(post.user_id, shim.admin.id);
    let p = props(&post);
    assert_eq!(p["from_webhook"], "true");
    assert_eq!(p["webhook_display_name"], "Resp");
    assert_eq!(p["custom"], 1);
    assert!(
        p.get("override_username").is_none(),
        "overrides are off by default"
    );

    let root = say(&admin, &town, "thread").await;
    wait_until(|| count() == 4).await;
    assert_eq!(
        shim.posts().pop().unwrap().root_id,
        root["id"].as_str().unwrap()
    );
    // A comment on a reply lands in the same thread.
    let reply = admin
        .post_json(
            "/api/v4/posts",
            &json!({"channel_id": town, "message": "thread again", "root_id": root["id"]}),
        )
        .await
        .json();
    wait_until(|| count() == 6).await;
    let answer = shim.posts().pop().unwrap();
    assert_eq!(answer.root_id, root["id"].as_str().unwrap());
    assert_ne!(answer.root_id, reply["id"].as_str().unwrap());

    say(&admin, &town, "attach").await;
    wait_until(|| count() == 8).await;
    let post = shim.posts().pop().unwrap();
    assert_eq!(post.post_type, "custom_x", "a given type is kept");
    let a = &props(&post)["attachments"];
    assert_eq!(
        a.as_array().unwrap().len(),
        1,
        "the null attachment is dropped"
    );
    assert_eq!(a[0]["text"], "[A](http://a)");
    assert_eq!(a[0]["fields"][0]["value"], "7");

    say(&admin, &town, "empty").await;
    say(&admin, &town, "nothing").await;
    server.wait_for(6).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(count(), 10, "an empty text and an empty body post nothing");

    shim.set_config(|c| {
        c.service_settings.enable_post_username_override = true;
        c.service_settings.enable_post_icon_override = true;
    })
    .unwrap();
    say(&admin, &town, "plain").await;
    wait_until(|| count() == 12).await;
    let p = props(&shim.posts().pop().unwrap());
    assert_eq!(p["override_username"], "responder");
    assert_eq!(p["override_icon_url"], "http://i/r.png");
    say(&admin, &town, "thread").await;
    wait_until(|| count() == 14).await;
    assert_eq!(
        props(&shim.posts().pop().unwrap())["override_username"],
        "hookname",
        "the hook's username when the response has none"
    );
    server.stop().await;
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn requests_are_signed_like_slack() {
    let shim = shim().await;
    let admin = Api::admin(&shim);
    let server = CallbackServer::start(|_| Answer::raw(200, Some("text/plain"), "")).await;
    let hook = create_hook(&admin, json!({"team_id": shim.team.id, "trigger_words": ["sign"], "callback_urls": [server.url.clone()]})).await;
    say(&admin, &shim.town_square.id, "sign me").await;
    let request = server.wait_for(1).await.remove(0);
    let timestamp = request
        .header("x-slack-request-timestamp")
        .unwrap_or("")
        .to_string();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (now - timestamp.parse::<i64>().unwrap()).abs() < 60,
        "a fresh timestamp"
    );
    let base = [b"v0:".as_slice(), timestamp.as_bytes(), b":", &request.body].concat();
    let expected = format!(
        "v0={}",
        hex::encode(hmac_sha256(
            hook["signing_secret"].as_str().unwrap().as_bytes(),
            &base
        ))
    );
    assert_eq!(request.header("x-slack-signature").unwrap_or(""), expected);
    assert!(
        request
            .body_text()
            .contains(&format!("token={}", hook["token"].as_str().unwrap())),
        "the token stays in the body"
    );
    server.stop().await;
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn failures_are_logged_and_post_nothing() {
    let shim = TestShim::builder()
        .config(|c| {
            c.service_settings.allowed_untrusted_internal_connections = "127.0.0.1".into();
            c.service_settings.outgoing_integration_requests_timeout = 1;
            // Two attempts, 50 ms apart: the retried failures settle quickly.
            c.delivery_settings.retry_schedule_milliseconds = vec![0, 50];
            c.delivery_settings.jitter_percent = 0;
        })
        .start()
        .await
        .unwrap();
    let admin = Api::admin(&shim);
    let server = CallbackServer::start(|r| match r.path.as_str() {
        "/invalid" => Answer::raw(200, Some("application/json"), "{not json"),
        "/huge" => Answer::json(json!({"text": "x".repeat(1 << 20)})),
        "/slow" => Answer::json(json!({"text": "too late"})).after(Duration::from_secs(3)),
        "/status" => Answer::raw(
            500,
            Some("application/json"),
            r#"{"text":"posted despite the 500"}"#,
        ),
        _ => Answer::raw(200, Some("text/plain"), ""),
    })
    .await;
    let urls: Vec<String> = ["/invalid", "/huge", "/slow", "/status"]
        .iter()
        .map(|p| format!("{}{p}", server.url))
        .collect();
    let mut all = urls.clone();
    all.push("http://10.0.0.1/internal".into());
    let hook = create_hook(
        &admin,
        json!({"team_id": shim.team.id, "trigger_words": ["fail"], "callback_urls": all}),
    )
    .await;
    say(&admin, &shim.town_square.id, "fail").await;
    let path = format!(
        "/api/v4/hooks/outgoing/{}/deliveries",
        hook["id"].as_str().unwrap()
    );
    let log = {
        let admin = admin.clone();
        let path = path.clone();
        let mut log = Value::Null;
        for _ in 0..500 {
            log = admin.get(&path).await.json();
            let settled = |l: &Vec<Value>| l.iter().all(|d| d["state"] != "retrying");
            if log.as_array().is_some_and(|l| l.len() == 5 && settled(l)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        log
    };
    let by_url = |suffix: &str| {
        log.as_array()
            .unwrap()
            .iter()
            .find(|d| d["url"].as_str().unwrap().ends_with(suffix))
            .unwrap()
            .clone()
    };
    assert!(
        by_url("/invalid")["error"]
            .as_str()
            .unwrap()
            .contains("invalid JSON"),
        "{log}"
    );
    assert!(
        by_url("/huge")["error"]
            .as_str()
            .unwrap()
            .contains("larger than 1 MiB"),
        "{log}"
    );
    assert!(
        by_url("/slow")["error"]
            .as_str()
            .unwrap()
            .contains("OutgoingIntegrationRequestsTimeout"),
        "{log}"
    );
    let internal = by_url("/internal");
    assert!(
        internal["error"]
            .as_str()
            .unwrap()
            .contains("AllowedUntrustedInternalConnections"),
        "{log}"
    );
    assert_eq!(internal["status"], 0);
    assert_eq!(internal["attempt"], 1, "a refused address is not retried");
    assert_eq!(internal["state"], "failed");
    assert_eq!(by_url("/slow")["attempt"], 2, "a timeout is retried");
    let status = by_url("/status");
    assert_eq!(status["status"], 500);
    assert_eq!(status["state"], "failed");
    assert_eq!(
        status["error"], "status 500 after 2 attempts",
        "a 5xx is retried, and when retries run out its body is not posted"
    );
    assert_eq!(status["posted"].as_array().unwrap().len(), 0);
    assert_eq!(status["attempt"], 2);
    let statuses: Vec<&Value> = status["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["status"])
        .collect();
    assert_eq!(statuses, [&json!(500), &json!(500)]);
    assert_eq!(by_url("/invalid")["attempt"], 1, "a 200 is final");
    let posts: Vec<String> = shim.posts().iter().map(|p| p.message.clone()).collect();
    assert_eq!(posts, ["fail"]);
    assert!(
        shim.logs()
            .iter()
            .any(|l| l.level == "warn" && l.message.contains("invalid JSON"))
    );
    assert_eq!(admin.get("/api/v4/system/ping").await.status, 200);
    server.stop().await;
    shim.stop().await.unwrap();
}
