//! Transforms through the compiled component (issue 25, plugin side): template hooks
//! posting from any JSON body, `when`, `thread_key`, refusals at save, fuel, the sender's
//! path for what a template makes, the `post` context, capture and `capture_only`, and a
//! component transform the host does not know.

use reqwest::Method;
use serde_json::{Value, json};
use switchboard_host_shim::store::Post;
use switchboard_tests::{Api, Reply, TestShim, send_to_hook};

async fn shim() -> TestShim {
    TestShim::builder()
        .config(|c| {
            c.service_settings.enable_post_username_override = true;
            c.service_settings.enable_post_icon_override = true;
            c.service_settings.maximum_payload_size_bytes = 2 * 1024 * 1024;
        })
        .start()
        .await
        .unwrap()
}

async fn hook(shim: &TestShim, extra: Value) -> String {
    let hook = Api::admin(shim)
        .create_incoming_hook(&shim.town_square.id, extra)
        .await;
    hook["id"].as_str().unwrap().to_owned()
}

/// Posts `body` to `/hooks/{id}` with `headers`; the answer and `X-Switchboard-Ignored`.
async fn send(
    shim: &TestShim,
    id: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (Reply, Option<String>) {
    let mut request = reqwest::Client::new()
        .request(Method::POST, shim.url(&format!("/hooks/{id}")))
        .body(body.to_vec());
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    send_to_hook(request).await
}

const JSON: (&str, &str) = ("content-type", "application/json");
/// A template that would loop for a trillion steps.
const RUNAWAY: &str =
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}";

fn props(post: &Post) -> Value {
    serde_json::from_str(&post.props).unwrap()
}

/// A monitor's own JSON, shaped by a template: text, username and an attachment field; a
/// value holding `", "channel": "x` stays text; `when` false answers 200 and posts nothing.
#[tokio::test]
async fn a_template_posts_from_any_json_body() {
    let shim = shim().await;
    let id = hook(
        &shim,
        json!({"transform": {"template": {
            "when": "body.state != 'ok'",
            "text": "{{ body.check }} is {{ body.state | upper }} ({{ headers['x-monitor'] }})",
            "username": "{{ body.source }}",
            "attachments": [{"title": "Details", "fields": [
                {"title": "Region", "value": "{{ query.region }}", "short": true}]}]
        }}}),
    )
    .await;
    let (reply, _) = send(
        &shim,
        &format!("{id}?region=eu"),
        &[JSON, ("X-Monitor", "probe-7")],
        br#"{"check": "api", "state": "down", "source": "uptime"}"#,
    )
    .await;
    assert_eq!((reply.status.as_u16(), reply.text.as_str()), (200, "ok"));
    let post = shim.posts().pop().expect("a post");
    assert_eq!(post.message, "api is DOWN (probe-7)");
    assert_eq!(post.channel_id, shim.town_square.id);
    let props = props(&post);
    assert_eq!(props["override_username"], "uptime");
    assert_eq!(props["attachments"][0]["fields"][0]["value"], "eu");

    let evil = json!({"check": "x\", \"channel\": \"off-topic", "state": "down"});
    let (reply, _) = send(&shim, &id, &[JSON], evil.to_string().as_bytes()).await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    let post = shim.posts().pop().unwrap();
    assert_eq!(post.channel_id, shim.town_square.id);
    assert!(
        post.message.starts_with("x\", \"channel\""),
        "{}",
        post.message
    );

    let before = shim.posts().len();
    let (reply, ignored) = send(&shim, &id, &[JSON], br#"{"check":"api","state":"ok"}"#).await;
    assert_eq!((reply.status.as_u16(), reply.text.as_str()), (200, "ok"));
    assert_eq!(ignored.as_deref(), Some("transform:dropped"));
    assert_eq!(shim.posts().len(), before);
}

/// The first post with a key starts a thread; later ones with that key reply in it.
#[tokio::test]
async fn thread_key_threads_posts_about_one_thing() {
    let shim = shim().await;
    let id = hook(
        &shim,
        json!({"transform": {"template": {
            "text": "{{ body.incident }}: {{ body.status }}", "thread_key": "{{ body.incident }}"}}}),
    )
    .await;
    for (incident, status) in [("INC-1", "open"), ("INC-2", "open"), ("INC-1", "closed")] {
        let body = json!({"incident": incident, "status": status}).to_string();
        let (reply, _) = send(&shim, &id, &[JSON], body.as_bytes()).await;
        assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    }
    let posts = shim.posts();
    let first = posts.iter().find(|p| p.message == "INC-1: open").unwrap();
    let other = posts.iter().find(|p| p.message == "INC-2: open").unwrap();
    let reply = posts.iter().find(|p| p.message == "INC-1: closed").unwrap();
    assert_eq!((first.root_id.as_str(), other.root_id.as_str()), ("", ""));
    assert_eq!(reply.root_id, first.id);
}

/// Refused at save: a template that does not compile (400 naming field, line and column),
/// and a component id that is not an id; an update is checked too.
#[tokio::test]
async fn a_template_that_does_not_compile_is_refused_at_save() {
    let shim = shim().await;
    let api = Api::admin(&shim);
    let body = json!({"channel_id": shim.town_square.id, "transform": {"template": {
        "text": "ok", "attachments": [{"text": "one\n  {% if body.x %}"}]}}});
    let reply = api.post_json("/api/v4/hooks/incoming", &body).await;
    let error = reply.assert_error(400, "model.incoming_hook.transform.app_error");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("attachments[0].text") && message.contains("line 2"),
        "{message}"
    );
    assert!(message.contains("column"), "{message}");
    let body = json!({"channel_id": shim.town_square.id, "transform": {"component": "../x"}});
    api.post_json("/api/v4/hooks/incoming", &body)
        .await
        .assert_error(400, "model.incoming_hook.transform.app_error");

    let id = hook(&shim, json!({})).await;
    let mut stored = api.incoming_hook(&id).await;
    stored["transform"] = json!({"template": {"text": "{{ body.x "}});
    api.put_json(&format!("/api/v4/hooks/incoming/{id}"), &stored)
        .await
        .assert_error(400, "model.incoming_hook.transform.app_error");
    // A plain hook reads as Mattermost's: no transform members.
    let plain = api.incoming_hook(&id).await;
    assert!(plain.get("transform").is_none() && plain.get("capture_only").is_none());
}

/// A runaway template fails its request with 422 (fuel), posts nothing, and the server
/// goes on: the next request to a working hook posts.
#[tokio::test]
async fn a_runaway_template_runs_out_of_fuel() {
    let shim = shim().await;
    let runaway = hook(
        &shim,
        json!({"transform": {"template": {
            "text": RUNAWAY}}}),
    )
    .await;
    let (reply, _) = send(&shim, &runaway, &[JSON], b"{}").await;
    let error = reply.assert_error(422, "web.incoming_webhook.transform_template.app_error");
    assert!(
        error["message"].as_str().unwrap().contains("fuel"),
        "{error}"
    );
    assert!(shim.posts().is_empty());
    let fine = hook(
        &shim,
        json!({"transform": {"template": {"text": "{{ body.a }}"}}}),
    )
    .await;
    let (reply, _) = send(&shim, &fine, &[JSON], br#"{"a": "still here"}"#).await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    assert_eq!(shim.posts().pop().unwrap().message, "still here");
}

/// What a template makes takes a sender's path: a locked hook refuses another channel as it
/// would a sender's (403), and an empty text is a sender's "No text specified".
#[tokio::test]
async fn a_templates_payload_meets_a_senders_checks() {
    let shim = shim().await;
    let locked = hook(
        &shim,
        json!({"channel_locked": true, "transform": {"template": {
            "text": "hi", "channel": "{{ body.to }}"}}}),
    )
    .await;
    let (reply, _) = send(&shim, &locked, &[JSON], br#"{"to": "off-topic"}"#).await;
    let (sender, _) = send(
        &shim,
        &hook(&shim, json!({"channel_locked": true})).await,
        &[JSON],
        br#"{"text": "hi", "channel": "off-topic"}"#,
    )
    .await;
    let error = reply.assert_error(403, "web.incoming_webhook.general.app_error");
    let same = sender.assert_error(403, "web.incoming_webhook.general.app_error");
    assert_eq!(error["detailed_error"], same["detailed_error"]);
    assert!(
        error["detailed_error"]
            .as_str()
            .unwrap()
            .contains("channel_locked"),
        "{error}"
    );
    let empty = hook(
        &shim,
        json!({"transform": {"template": {"text": "{{ body.missing }}"}}}),
    )
    .await;
    let (reply, _) = send(&shim, &empty, &[JSON], b"{}").await;
    let error = reply.assert_error(400, "web.incoming_webhook.general.app_error");
    assert!(error["message"].is_string());
    assert!(shim.posts().is_empty());
}

/// `post` is what the hook's built-in source would post: a template tweaks a GitHub push.
#[tokio::test]
async fn a_template_tweaks_a_built_in_source() {
    let shim = shim().await;
    let id = hook(
        &shim,
        json!({"source": "github", "transform": {"template": {
            "when": "post",
            "text": "[{{ post.event }}] {{ post.text }}"}}}),
    )
    .await;
    let path = format!(
        "{}/../plugin/src/sources/fixtures/github/push.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let fixture: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let headers: Vec<(String, String)> = fixture["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let body = serde_json::to_vec(&fixture["body"]).unwrap();
    let (reply, _) = send(&shim, &id, &headers, &body).await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    let post = shim.posts().pop().unwrap();
    let expected = fixture["post"]["text"].as_str().unwrap();
    assert_eq!(post.message, format!("[push] {expected}"));
}

/// Every request is captured: newest first, secrets redacted, the body capped at 1 MiB,
/// with status, posts and error; `capture_only` records and posts nothing; deleting the
/// hook deletes its samples.
#[tokio::test]
async fn samples_and_capture_only() {
    let shim = shim().await;
    let api = Api::admin(&shim);
    let id = hook(&shim, json!({})).await;
    let auth = ("Authorization", "Bearer s3cret-token");
    let signature = ("X-Hub-Signature-256", "sha256=abcdef");
    send(
        &shim,
        &id,
        &[JSON, auth, signature],
        br#"{"text": "first"}"#,
    )
    .await;
    send(&shim, &id, &[JSON], br#"{"nothing": 1}"#).await;
    let big = format!(r#"{{"big": "{}"}}"#, "x".repeat(1024 * 1024 + 10));
    let (reply, _) = send(&shim, &id, &[JSON], big.as_bytes()).await;
    assert_eq!(reply.status.as_u16(), 400, "{}", reply.text);

    let reply = api
        .get(&format!("/api/v4/hooks/incoming/{id}/samples"))
        .await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    assert!(!reply.text.contains("s3cret") && !reply.text.contains("abcdef"));
    let samples = reply.json();
    let samples = samples.as_array().unwrap();
    assert_eq!(samples.len(), 3);
    assert_eq!(samples[0]["body"].as_str().unwrap().len(), 1024 * 1024);
    assert_eq!(samples[0]["body_truncated"], true);
    assert_eq!(samples[1]["status"], 400);
    assert!(samples[1]["error"].as_str().unwrap().contains("text"));
    assert_eq!(samples[2]["body"], r#"{"text": "first"}"#);
    assert_eq!(samples[2]["status"], 200);
    let post_id = samples[2]["post_ids"][0].as_str().unwrap();
    assert_eq!(shim.posts()[0].id, post_id);
    assert!(
        samples
            .iter()
            .all(|s| s["id"].as_str().is_some_and(|i| !i.is_empty()))
    );

    let capture = hook(&shim, json!({"capture_only": true})).await;
    let before = shim.posts().len();
    let (reply, ignored) = send(&shim, &capture, &[JSON], br#"{"text": "not yet"}"#).await;
    assert_eq!((reply.status.as_u16(), reply.text.as_str()), (200, "ok"));
    assert_eq!(ignored.as_deref(), Some("capture_only"));
    assert_eq!(shim.posts().len(), before);
    let samples = api
        .get(&format!("/api/v4/hooks/incoming/{capture}/samples"))
        .await
        .json();
    assert_eq!(samples[0]["body"], r#"{"text": "not yet"}"#);

    assert_eq!(
        api.delete(&format!("/api/v4/hooks/incoming/{id}"))
            .await
            .status
            .as_u16(),
        200
    );
    let left = shim
        .shim
        .app
        .store
        .kv_list(&format!("incoming_sample/{id}/"), 0, 100)
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
}

/// A component transform the host does not know fails the request with 422, posting nothing.
#[tokio::test]
async fn an_unknown_component_transform_is_the_senders_422() {
    let shim = shim().await;
    let id = hook(
        &shim,
        json!({"transform": {"component": "abcdefghijklmnopqrstuvwxyz"}}),
    )
    .await;
    let (reply, _) = send(&shim, &id, &[JSON], br#"{"text": "hi"}"#).await;
    let error = reply.assert_error(422, "web.incoming_webhook.transform_component.app_error");
    assert!(
        error["message"].as_str().unwrap().contains("no transform"),
        "{error}"
    );
    assert!(shim.posts().is_empty());
}

/// Preview by sample id and by headers and body, with the hook's transform or another:
/// posts as the REST API shows them, `dropped`, a failure as `error`; nothing is posted and
/// no thread record is written.
#[tokio::test]
async fn preview_shows_what_would_be_posted_and_posts_nothing() {
    let shim = shim().await;
    let api = Api::admin(&shim);
    let id = hook(&shim, json!({"capture_only": true})).await;
    send(
        &shim,
        &id,
        &[JSON, ("X-Env", "prod")],
        br#"{"build": 41, "ok": false}"#,
    )
    .await;
    let samples = api
        .get(&format!("/api/v4/hooks/incoming/{id}/samples"))
        .await
        .json();
    let sample_id = samples[0]["id"].as_str().unwrap().to_owned();
    let preview = format!("/api/v4/hooks/incoming/{id}/preview");
    let template = json!({"template": {"when": "not body.ok",
        "text": "Build {{ body.build }} failed on {{ headers['x-env'] }}",
        "thread_key": "{{ body.build }}"}});

    let reply = api
        .post_json(
            &preview,
            &json!({"transform": template, "sample_id": sample_id}),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    let answer = reply.json();
    assert_eq!(answer["dropped"], false);
    assert_eq!(answer["error"], Value::Null);
    assert!(answer["duration_ms"].as_f64().is_some());
    assert_eq!(answer["posts"][0]["message"], "Build 41 failed on prod");
    assert_eq!(
        answer["posts"][0]["channel_id"],
        shim.town_square.id.as_str()
    );
    assert_eq!(answer["posts"][0]["props"]["from_webhook"], "true");

    let answer = api
        .post_json(
            &preview,
            &json!({"transform": template, "headers": {"X-Env": "dev"}, "body": {"ok": true}}),
        )
        .await
        .json();
    assert_eq!(
        (answer["dropped"].clone(), answer["posts"].clone()),
        (json!(true), json!([]))
    );

    let answer = api
        .post_json(
            &preview,
            &json!({"transform": {"template": {"text": RUNAWAY}}, "body": "plain"}),
        )
        .await;
    let answer = answer.json();
    assert_eq!(answer["error"]["status_code"], 422);
    assert_eq!(
        answer["error"]["id"],
        "web.incoming_webhook.transform_template.app_error"
    );
    // A transform that does not compile is refused as at save.
    api.post_json(
        &preview,
        &json!({"transform": {"template": {"text": "{{"}}, "body": {}}),
    )
    .await
    .assert_error(400, "model.incoming_hook.transform.app_error");

    assert!(shim.posts().is_empty());
    let threads = shim
        .shim
        .app
        .store
        .kv_list("source_thread/", 0, 10)
        .unwrap();
    assert!(threads.is_empty(), "{threads:?}");
}
