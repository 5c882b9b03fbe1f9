//! Interactive messages and dialogs through the compiled component, against
//! integrations on loopback: clicks that update their post, menus, clicks on
//! ephemeral posts through their cookie, dialogs opened from a command's
//! trigger id, submitted, cancelled and looked up, and every refusal.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures::StreamExt;
use serde_json::{Value, json};
use std::time::Duration;
use switchboard_host_shim::store::Post;
use switchboard_tests::{Api, Backend, Recorded, Reply, TestShim};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

async fn shim() -> TestShim {
    shim_with_clock(None).await
}

/// A shim whose egress may reach loopback integrations; a fixed clock when given.
async fn shim_with_clock(at: Option<i64>) -> TestShim {
    let mut builder = TestShim::builder().config(|c| {
        c.service_settings.allowed_untrusted_internal_connections = "127.0.0.1".into();
    });
    if let Some(at) = at {
        builder = builder.fixed_clock(at);
    }
    builder.start().await.unwrap()
}

fn props_of(post: &Post) -> Value {
    serde_json::from_str(&post.props).unwrap()
}

fn json_body(r: &Recorded) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.body_text()))
}

#[track_caller]
fn ok(reply: &Reply) -> Value {
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    reply.json()
}

/// Posts `attachments` through a new incoming webhook; returns the stored post.
async fn webhook_post(admin: &Api, shim: &TestShim, attachments: Value) -> Post {
    let hook = admin
        .create_incoming_hook(&shim.town_square.id, json!({}))
        .await;
    let reply = admin
        .post_json(
            &format!("/hooks/{}", hook["id"].as_str().unwrap()),
            &json!({"text": "Release 1.2 is ready", "attachments": attachments}),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    shim.posts().pop().unwrap()
}

fn action_id(props: &Value, n: usize) -> String {
    let id = props["attachments"][0]["actions"][n]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no action id in {props}"))
        .to_string();
    assert_eq!(id.len(), 26, "{id}");
    id
}

async fn click(api: &Api, post_id: &str, action_id: &str, body: Value) -> Reply {
    api.post_json(
        &format!("/api/v4/posts/{post_id}/actions/{action_id}"),
        &body,
    )
    .await
}

/// Events of one kind, oldest first.
fn events(shim: &TestShim, kind: &str) -> Vec<switchboard_host_shim::app::Event> {
    shim.events()
        .into_iter()
        .filter(|e| e.event == kind)
        .collect()
}

/// The posts of `kind` events (`ephemeral_message`, `post_edited`) shown to `user`.
fn event_posts(shim: &TestShim, kind: &str, user: Option<&str>) -> Vec<Value> {
    events(shim, kind)
        .into_iter()
        .filter(|e| user.is_none() || e.user_id.as_deref() == user)
        .map(|e| serde_json::from_str(e.data["post"].as_str().unwrap()).unwrap())
        .collect()
}

fn decode_trigger(signed: &str) -> String {
    String::from_utf8(STANDARD.decode(signed).unwrap()).unwrap()
}

#[tokio::test]
async fn a_button_click_updates_its_post_and_answers_privately() {
    let shim = shim().await;
    let admin = Api::admin(&shim);
    let backend = Backend::start().await;
    let post = webhook_post(
        &admin,
        &shim,
        json!([{"text": "Deploy?", "actions": [{
            "type": "button", "name": "Approve", "style": "primary",
            "integration": {"url": format!("{}/approve", backend.url), "context": {"release": "1.2"}}
        }]}]),
    )
    .await;
    let props = props_of(&post);
    assert_eq!(props["attachments"][0]["actions"][0]["style"], "primary");
    let action = action_id(&props, 0);

    backend.reply_json(json!({
        "update": {"message": "Approved", "props": {"from_webhook": "no", "attachments": [{"text": "Approved by admin"}]}},
        "ephemeral_text": "You approved <http://example.com/r|1.2>"
    }));
    let out = ok(&click(&admin, &post.id, &action, json!({})).await);
    assert_eq!(out["status"], "OK");
    let client_trigger = out["trigger_id"].as_str().unwrap();
    assert_eq!(client_trigger.len(), 26);

    let req = backend.last();
    assert_eq!(req.uri(), "/approve");
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.header("user-agent"), Some("Mattermost-Bot/1.1"));
    let sent = json_body(&req);
    assert_eq!(sent["user_id"], shim.admin.id);
    assert_eq!(sent["user_name"], shim.admin.username);
    assert_eq!(sent["channel_id"], shim.town_square.id);
    assert_eq!(sent["channel_name"], "town-square");
    assert_eq!(sent["team_id"], shim.team.id);
    assert_eq!(sent["team_domain"], shim.team.name);
    assert_eq!(sent["post_id"], post.id);
    assert_eq!(sent["type"], "button");
    assert_eq!(sent["data_source"], "");
    assert_eq!(sent["context"], json!({"release": "1.2"}));
    let long = decode_trigger(sent["trigger_id"].as_str().unwrap());
    assert!(
        long.starts_with(&format!("{client_trigger}:{}:", shim.admin.id)),
        "{long}"
    );

    // The update replaced message and props, but kept from_webhook as it was.
    let stored = ok(&admin.get(&format!("/api/v4/posts/{}", post.id)).await);
    assert_eq!(stored["message"], "Approved");
    assert_eq!(stored["props"]["from_webhook"], "true");
    assert_eq!(
        stored["props"]["attachments"][0]["text"],
        "Approved by admin"
    );
    assert!(stored["props"].get("webhook_display_name").is_none());
    let edited = event_posts(&shim, "post_edited", None);
    assert_eq!(edited.last().unwrap()["id"], post.id);
    assert_eq!(edited.last().unwrap()["message"], "Approved");

    let private = event_posts(&shim, "ephemeral_message", Some(&shim.admin.id));
    let reply = private.last().unwrap();
    assert_eq!(reply["message"], "You approved [1.2](http://example.com/r)");
    assert_eq!(reply["channel_id"], shim.town_square.id);
    assert_eq!(reply["root_id"], post.id);
    assert_eq!(reply["props"]["from_webhook"], "true");
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn menus_send_the_chosen_option_and_rest_posts_get_action_ids() {
    let shim = shim().await;
    let admin = Api::admin(&shim);
    let backend = Backend::start().await;
    let url = format!("{}/pick", backend.url);
    let created = admin
        .post_json(
            "/api/v4/posts",
            &json!({"channel_id": shim.town_square.id, "message": "Choose", "props": {"attachments": [{"actions": [
                {"type": "select", "name": "Env", "options": [{"text": "Prod", "value": "prod"}],
                 "integration": {"url": url, "context": {"step": 1}}},
                {"type": "select", "name": "Who", "data_source": "users", "integration": {"url": url}},
                {"id": "keptid", "type": "button", "name": "Kept", "disabled": true}
            ]}]}}),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.text);
    let props = created.json()["props"].clone();
    let (env, who) = (action_id(&props, 0), action_id(&props, 1));
    assert_eq!(props["attachments"][0]["actions"][2]["id"], "keptid");
    let post_id = created.json()["id"].as_str().unwrap().to_string();

    ok(&click(&admin, &post_id, &env, json!({"selected_option": "prod"})).await);
    let sent = json_body(&backend.last());
    assert_eq!(sent["type"], "select");
    assert_eq!(
        sent["context"],
        json!({"step": 1, "selected_option": "prod"})
    );
    assert_eq!(sent["data_source"], "");

    ok(&click(
        &admin,
        &post_id,
        &who,
        json!({"selected_option": shim.admin.id}),
    )
    .await);
    let sent = json_body(&backend.last());
    assert_eq!(sent["context"], json!({"selected_option": shim.admin.id}));
    assert_eq!(sent["data_source"], "users");

    // An empty answer changes nothing; the disabled button has no integration.
    let stored = ok(&admin.get(&format!("/api/v4/posts/{post_id}")).await);
    assert_eq!(stored["message"], "Choose");
    assert_eq!(stored["edit_at"], 0);
    click(&admin, &post_id, "keptid", json!({}))
        .await
        .assert_error(404, "api.post.do_action.action_id.app_error");

    // In a direct channel the team fields are empty.
    let (bob, _) = shim.create_user("bob").unwrap();
    let dm = admin
        .post_json("/api/v4/channels/direct", &json!([shim.admin.id, bob.id]))
        .await;
    assert_eq!(dm.status.as_u16(), 201, "{}", dm.text);
    let dm_id = dm.json()["id"].as_str().unwrap().to_string();
    let created = admin
        .post_json(
            "/api/v4/posts",
            &json!({"channel_id": dm_id, "message": "Direct", "props": {"attachments": [{"actions": [
                {"type": "button", "name": "Ack", "integration": {"url": url}}]}]}}),
        )
        .await;
    let direct = created.json();
    let ack = action_id(&direct["props"], 0);
    ok(&click(&admin, direct["id"].as_str().unwrap(), &ack, json!({})).await);
    let sent = json_body(&backend.last());
    assert_eq!(sent["channel_id"], dm_id);
    assert_eq!(
        (sent["team_id"].as_str(), sent["team_domain"].as_str()),
        (Some(""), Some(""))
    );
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn a_click_on_an_ephemeral_post_works_through_its_cookie() {
    let shim = shim().await;
    let admin = Api::admin(&shim);
    let backend = Backend::start().await;
    let command = super::commands::create_command(
        &admin,
        &shim,
        json!({"url": format!("{}/slash", backend.url)}),
    )
    .await;
    backend.reply_json(json!({"response_type": "ephemeral", "text": "Which one?", "attachments": [
        {"actions": [{"type": "button", "name": "This", "integration": {"url": format!("{}/this", backend.url), "context": {"n": 7}}}]}
    ]}));
    ok(&super::commands::execute(&admin, &shim.town_square.id, "/deploy").await);
    let shown = event_posts(&shim, "ephemeral_message", Some(&shim.admin.id))
        .pop()
        .unwrap();
    let post_id = shown["id"].as_str().unwrap().to_string();
    let action = action_id(&shown["props"], 0);
    let cookie = shown["props"]["attachments"][0]["actions"][0]["cookie"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!cookie.contains("this"), "the cookie is sealed: {cookie}");
    admin
        .get(&format!("/api/v4/posts/{post_id}"))
        .await
        .assert_error(404, "app.post.get.app_error");

    backend.reply_json(json!({"update": {"message": "Picked this"}, "ephemeral_text": "Noted"}));
    ok(&click(&admin, &post_id, &action, json!({"cookie": cookie})).await);
    let req = backend.last();
    assert_eq!(req.uri(), "/this");
    assert!(slack_signed(
        command["signing_secret"].as_str().unwrap(),
        &req
    ));
    let sent = json_body(&req);
    assert_eq!(sent["post_id"], post_id);
    assert_eq!(sent["channel_id"], shim.town_square.id);
    assert_eq!(sent["context"], json!({"n": 7}));
    let private = event_posts(&shim, "ephemeral_message", Some(&shim.admin.id));
    let n = private.len();
    // The ephemeral post shown again under its id with the update, then the reply.
    assert_eq!(private[n - 2]["id"], post_id);
    assert_eq!(private[n - 2]["message"], "Picked this");
    assert_eq!(private[n - 1]["message"], "Noted");

    // A cookie altered, sealed for another post, or missing is refused.
    let calls = backend.requests().len();
    let mut raw = STANDARD.decode(&cookie).unwrap();
    let last = raw.len() - 1;
    raw[last] ^= 1;
    click(
        &admin,
        &post_id,
        &action,
        json!({"cookie": STANDARD.encode(raw)}),
    )
    .await
    .assert_error(400, "api.post.do_action.action_integration.app_error");
    click(&admin, &post_id, &action, json!({"cookie": "not a cookie"}))
        .await
        .assert_error(400, "api.post.do_action.action_integration.app_error");
    click(
        &admin,
        "zzzzzzzzzzzzzzzzzzzzzzzzzz",
        &action,
        json!({"cookie": cookie}),
    )
    .await
    .assert_error(400, "api.post.do_action.action_integration.app_error");
    click(&admin, &post_id, &action, json!({}))
        .await
        .assert_error(403, "api.context.permissions.app_error");
    assert_eq!(backend.requests().len(), calls, "nothing refused was sent");
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn cookies_expire_and_do_not_open_on_another_server() {
    let start = 1_700_000_000_000;
    let shim = shim_with_clock(Some(start)).await;
    let other = self::shim().await;
    let admin = Api::admin(&shim);
    let backend = Backend::start().await;
    super::commands::create_command(
        &admin,
        &shim,
        json!({"url": format!("{}/slash", backend.url)}),
    )
    .await;
    backend.reply_json(json!({"text": "Which one?", "attachments": [
        {"actions": [{"name": "This", "integration": {"url": format!("{}/this", backend.url)}}]}
    ]}));
    ok(&super::commands::execute(&admin, &shim.town_square.id, "/deploy").await);
    let shown = event_posts(&shim, "ephemeral_message", Some(&shim.admin.id))
        .pop()
        .unwrap();
    let post_id = shown["id"].as_str().unwrap();
    let action = action_id(&shown["props"], 0);
    let cookie = shown["props"]["attachments"][0]["actions"][0]["cookie"].clone();

    // Sealed under this server's key: another server cannot open it.
    click(
        &Api::admin(&other),
        post_id,
        &action,
        json!({"cookie": cookie}),
    )
    .await
    .assert_error(400, "api.post.do_action.action_integration.app_error");
    shim.advance_clock(Duration::from_secs(25 * 60 * 60));
    let err = click(&admin, post_id, &action, json!({"cookie": cookie}))
        .await
        .assert_error(400, "api.post.do_action.action_integration.app_error");
    assert!(
        err["detailed_error"].as_str().unwrap().contains("expired"),
        "{err}"
    );
    assert_eq!(backend.requests().len(), 1, "only the command was sent");
    other.stop().await.unwrap();
    shim.stop().await.unwrap();
}

/// A command whose backend answers ephemerally; returns the signed trigger id
/// it was sent and the client form the user got.
async fn trigger_from_command(admin: &Api, shim: &TestShim, backend: &Backend) -> (String, String) {
    backend.reply_json(json!({"text": "Opening the form"}));
    let out = ok(&super::commands::execute(admin, &shim.town_square.id, "/deploy").await);
    let signed = backend.last().one("trigger_id");
    (signed, out["trigger_id"].as_str().unwrap().to_string())
}

fn deploy_dialog(backend: &Backend) -> Value {
    json!({
        "callback_id": "deploy-1", "title": "Deploy", "notify_on_cancel": true, "state": "s1",
        "elements": [
            {"display_name": "Environment", "name": "env", "type": "text", "subtype": "text"},
            {"display_name": "Service", "name": "svc", "type": "select", "data_source": "dynamic",
             "data_source_url": format!("{}/lookup", backend.url)},
            {"display_name": "Notify", "name": "notify", "type": "bool", "default": "true", "optional": true}
        ]
    })
}

async fn open_dialog(shim: &TestShim, body: &Value) -> Reply {
    // No session: an integration calls this with only the trigger id.
    Api::new(shim, None)
        .post_json("/api/v4/actions/dialogs/open", body)
        .await
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn socket(shim: &TestShim, token: &str) -> Socket {
    let mut request = format!("{}/api/v4/websocket", shim.url.replacen("http", "ws", 1))
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let hello = next_event(&mut socket, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(hello["event"], "hello");
    socket
}

/// The next event on the socket within `wait`, if any.
async fn next_event(socket: &mut Socket, wait: Duration) -> Option<Value> {
    loop {
        let message = tokio::time::timeout(wait, socket.next())
            .await
            .ok()??
            .ok()?;
        if let Ok(text) = message.to_text()
            && let Ok(value) = serde_json::from_str::<Value>(text)
        {
            return Some(value);
        }
    }
}

#[tokio::test]
async fn a_dialog_opens_from_a_command_and_is_submitted_cancelled_and_looked_up() {
    let shim = shim().await;
    let admin = Api::admin(&shim);
    let (bob, bob_token) = shim.create_user("bob").unwrap();
    let backend = Backend::start().await;
    super::commands::create_command(
        &admin,
        &shim,
        json!({"url": format!("{}/slash", backend.url)}),
    )
    .await;
    let (signed, client_id) = trigger_from_command(&admin, &shim, &backend).await;
    let mut admin_socket = socket(&shim, &shim.admin_token).await;
    let mut bob_socket = socket(&shim, &bob_token).await;

    let submit_url = format!("{}/submit", backend.url);
    let out = ok(&open_dialog(
        &shim,
        &json!({"trigger_id": signed, "url": submit_url, "dialog": deploy_dialog(&backend)}),
    )
    .await);
    assert_eq!(out, json!({"status": "OK"}));
    let event = next_event(&mut admin_socket, Duration::from_secs(5))
        .await
        .expect("open_dialog reaches its user");
    assert_eq!(event["event"], "open_dialog");
    let shown: Value = serde_json::from_str(event["data"]["dialog"].as_str().unwrap()).unwrap();
    assert_eq!(shown["trigger_id"], client_id);
    assert_eq!(shown["url"], submit_url);
    assert_eq!(shown["dialog"]["callback_id"], "deploy-1");
    assert_eq!(
        next_event(&mut bob_socket, Duration::from_millis(500)).await,
        None,
        "nobody else sees the dialog"
    );
    assert!(
        events(&shim, "open_dialog")
            .iter()
            .all(|e| e.user_id.as_deref() == Some(shim.admin.id.as_str()))
    );

    let submission = |extra: Value| {
        let mut body = json!({"url": submit_url, "callback_id": "deploy-1", "state": "s1",
            "user_id": bob.id, "channel_id": shim.town_square.id, "team_id": shim.team.id,
            "submission": {"env": "mars", "notify": true}, "cancelled": false});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    // With field errors: passed through to the client as they came.
    backend.reply_json(json!({"errors": {"env": "No such environment"}}));
    let out = ok(&admin
        .post_json("/api/v4/actions/dialogs/submit", &submission(json!({})))
        .await);
    assert_eq!(out, json!({"errors": {"env": "No such environment"}}));
    let sent = json_body(&backend.last());
    assert_eq!(backend.last().uri(), "/submit");
    assert_eq!(sent["type"], "dialog_submission");
    assert_eq!(
        sent["user_id"], shim.admin.id,
        "the session user, not the body's"
    );
    assert_eq!(sent["callback_id"], "deploy-1");
    assert_eq!(sent["state"], "s1");
    assert_eq!(sent["channel_id"], shim.town_square.id);
    assert_eq!(sent["team_id"], shim.team.id);
    assert_eq!(sent["submission"], json!({"env": "mars", "notify": true}));
    assert_eq!(sent["cancelled"], false);
    assert!(sent.get("url").is_none());

    // Clean: an empty answer is `{}`.
    let out = ok(&admin
        .post_json(
            "/api/v4/actions/dialogs/submit",
            &submission(json!({"submission": {"env": "prod"}})),
        )
        .await);
    assert_eq!(out, json!({}));
    assert_eq!(
        json_body(&backend.last())["submission"],
        json!({"env": "prod"})
    );

    // Cancelled (the dialog asked for notify_on_cancel).
    let out = ok(&admin
        .post_json(
            "/api/v4/actions/dialogs/submit",
            &submission(json!({"cancelled": true, "submission": null})),
        )
        .await);
    assert_eq!(out, json!({}));
    assert_eq!(json_body(&backend.last())["cancelled"], true);
    // A client that leaves `cancelled` out: the integration still gets it, false.
    let mut without = submission(json!({}));
    without.as_object_mut().unwrap().remove("cancelled");
    ok(&admin
        .post_json("/api/v4/actions/dialogs/submit", &without)
        .await);
    assert_eq!(json_body(&backend.last())["cancelled"], json!(false));

    // A dynamic select's lookup.
    backend.reply_json(
        json!({"items": [{"text": "API", "value": "api"}, {"text": "Web", "value": "web"}]}),
    );
    let out = ok(&admin
        .post_json(
            "/api/v4/actions/dialogs/lookup",
            &json!({"url": format!("{}/lookup", backend.url), "callback_id": "deploy-1",
                    "channel_id": shim.town_square.id, "submission": {"query": "a", "selected_field": "svc"}}),
        )
        .await);
    assert_eq!(out["items"][0], json!({"text": "API", "value": "api"}));
    assert_eq!(out["items"].as_array().unwrap().len(), 2);
    let req = backend.last();
    assert_eq!(req.uri(), "/lookup");
    assert_eq!(json_body(&req)["type"], "dialog_lookup");
    assert_eq!(json_body(&req)["cancelled"], json!(false));

    // Not a member of the channel the submission names: refused, not sent.
    let private = admin
        .post_json(
            "/api/v4/channels",
            &json!({"team_id": shim.team.id, "name": "ops", "display_name": "Ops", "type": "P"}),
        )
        .await;
    assert_eq!(private.status.as_u16(), 201, "{}", private.text);
    let sent = backend.requests().len();
    Api::new(&shim, Some(&bob_token))
        .post_json(
            "/api/v4/actions/dialogs/submit",
            &submission(json!({"channel_id": private.json()["id"]})),
        )
        .await
        .assert_error(403, "api.context.permissions.app_error");
    admin
        .post_json(
            "/api/v4/actions/dialogs/submit",
            &submission(json!({"url": ""})),
        )
        .await
        .assert_error(400, "api.context.invalid_body_param.app_error");
    admin
        .post_json(
            "/api/v4/actions/dialogs/lookup",
            &json!({"url": "ftp://x/y", "channel_id": shim.town_square.id}),
        )
        .await
        .assert_error(400, "api.context.invalid_body_param.app_error");
    assert_eq!(backend.requests().len(), sent);

    // An answer that is not JSON, or of an unknown type, is an error.
    backend.reply(200, Some("text/html"), "<html>oops</html>");
    admin
        .post_json("/api/v4/actions/dialogs/submit", &submission(json!({})))
        .await
        .assert_error(500, "app.submit_interactive_dialog.decode_json_error");
    backend.reply_json(json!({"type": "teleport"}));
    admin
        .post_json("/api/v4/actions/dialogs/submit", &submission(json!({})))
        .await
        .assert_error(400, "app.submit_interactive_dialog.invalid_response");
    backend.reply(503, None, "down");
    admin
        .post_json("/api/v4/actions/dialogs/submit", &submission(json!({})))
        .await
        .assert_error(400, "api.post.do_action.action_integration.app_error");
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn a_dialog_breaking_rules_opens_with_warnings_in_a_header_and_the_log() {
    let shim = shim().await;
    let admin = Api::admin(&shim);
    let backend = Backend::start().await;
    super::commands::create_command(
        &admin,
        &shim,
        json!({"url": format!("{}/slash", backend.url)}),
    )
    .await;
    let (signed, _) = trigger_from_command(&admin, &shim, &backend).await;
    // Mattermost opens this and logs a warning: the bool's default and the
    // duplicate name break §8.2's rules.
    let mut bad = deploy_dialog(&backend);
    bad["elements"][2]["default"] = json!("maybe");
    bad["elements"][1]["name"] = json!("env");
    let response = reqwest::Client::new()
        .post(shim.url("/api/v4/actions/dialogs/open"))
        .json(&json!({"trigger_id": signed, "url": "http://x/s", "dialog": bad}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let warnings = response
        .headers()
        .get("x-switchboard-dialog-warnings")
        .expect("the warnings header")
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"status": "OK"})
    );
    assert_eq!(
        warnings,
        "elements[1] \"env\": name is used by an earlier element; \
         elements[2] \"notify\": default must be \"\", \"true\" or \"false\""
    );
    let opened = events(&shim, "open_dialog");
    assert_eq!(opened.len(), 1, "opened anyway");
    let logged: Vec<_> = shim
        .logs()
        .into_iter()
        .filter(|line| line.message.contains("opened although it breaks 2 rule(s)"))
        .collect();
    assert_eq!(logged.len(), 1, "{:?}", shim.logs());
    assert_eq!(logged[0].level, "warn");
    assert!(
        logged[0].message.contains("\"deploy-1\""),
        "{}",
        logged[0].message
    );

    // A clean dialog gets no header.
    let (signed, _) = trigger_from_command(&admin, &shim, &backend).await;
    let response = reqwest::Client::new()
        .post(shim.url("/api/v4/actions/dialogs/open"))
        .json(
            &json!({"trigger_id": signed, "url": "http://x/s", "dialog": deploy_dialog(&backend)}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response
            .headers()
            .get("x-switchboard-dialog-warnings")
            .is_none()
    );
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn expired_and_forged_trigger_ids_are_refused() {
    let shim = shim_with_clock(Some(1_700_000_000_000)).await;
    let admin = Api::admin(&shim);
    let backend = Backend::start().await;
    super::commands::create_command(
        &admin,
        &shim,
        json!({"url": format!("{}/slash", backend.url)}),
    )
    .await;
    let (signed, _) = trigger_from_command(&admin, &shim, &backend).await;
    let open = |trigger: String| json!({"trigger_id": trigger, "url": "http://127.0.0.1:9/x", "dialog": deploy_dialog(&backend)});
    let long = decode_trigger(&signed);
    let (payload, _) = long.rsplit_once(':').unwrap();
    let forged = STANDARD.encode(format!("{payload}:{}", STANDARD.encode([7u8; 32])));
    // Someone else's user id under the real signature.
    let parts: Vec<&str> = long.split(':').collect();
    let other_user = STANDARD.encode(format!(
        "{}:{}:{}:{}",
        parts[0], "zzzzzzzzzzzzzzzzzzzzzzzzzz", parts[2], parts[3]
    ));
    let cases = [
        ("%%%".to_string(), "base64_decode_failed"),
        (STANDARD.encode("a:b:c"), "missing_data"),
        (
            STANDARD.encode(format!("{payload}:***")),
            "base64_decode_failed_signature",
        ),
        (
            STANDARD.encode(format!("{payload}:{}", STANDARD.encode([1u8; 5]))),
            "signature_decode_failed",
        ),
        (forged, "verify_signature_failed"),
        (other_user, "verify_signature_failed"),
    ];
    for (trigger, id) in cases {
        open_dialog(&shim, &open(trigger))
            .await
            .assert_error(400, &format!("interactive_message.decode_trigger_id.{id}"));
    }
    // Valid within OutgoingIntegrationRequestsTimeout (30 s), expired after.
    shim.advance_clock(Duration::from_secs(29));
    ok(&open_dialog(&shim, &open(signed.clone())).await);
    shim.advance_clock(Duration::from_secs(2));
    open_dialog(&shim, &open(signed))
        .await
        .assert_error(400, "interactive_message.decode_trigger_id.expired");
    assert_eq!(events(&shim, "open_dialog").len(), 1);
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_the_post_is_unchanged() {
    let shim = shim().await;
    let admin = Api::admin(&shim);
    let backend = Backend::start().await;
    super::commands::create_command(
        &admin,
        &shim,
        json!({"url": format!("{}/slash", backend.url)}),
    )
    .await;
    let (signed, _) = trigger_from_command(&admin, &shim, &backend).await;

    // A 10 MB dialog: over MaximumPayloadSizeBytes.
    let mut huge = deploy_dialog(&backend);
    huge["introduction_text"] = json!("x".repeat(10 << 20));
    open_dialog(
        &shim,
        &json!({"trigger_id": signed, "url": "http://x/s", "dialog": huge}),
    )
    .await
    .assert_error(413, "api.context.request_body_too_large.app_error");
    // 1000 elements.
    let mut many = deploy_dialog(&backend);
    many["elements"] = (0..1000)
        .map(|i| json!({"display_name": "F", "name": format!("f{i}"), "type": "text"}))
        .collect();
    let err = open_dialog(
        &shim,
        &json!({"trigger_id": signed, "url": "http://x/s", "dialog": many}),
    )
    .await
    .assert_error(400, "interactive_message.dialog.invalid.app_error");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("at most 100 elements"),
        "{err}"
    );
    open_dialog(
        &shim,
        &json!({"trigger_id": signed, "dialog": deploy_dialog(&backend)}),
    )
    .await
    .assert_error(400, "api.context.invalid_body_param.app_error");
    open_dialog(
        &shim,
        &json!({"trigger_id": signed, "url": "http://x/s", "dialog": "no"}),
    )
    .await
    .assert_error(400, "api.context.invalid_body_param.app_error");
    assert!(events(&shim, "open_dialog").is_empty());

    // Clicks whose integration fails leave the post as it was.
    let post = webhook_post(
        &admin,
        &shim,
        json!([{"actions": [{"type": "button", "name": "Go",
            "integration": {"url": format!("{}/go", backend.url)}}]}]),
    )
    .await;
    let action = action_id(&props_of(&post), 0);
    let before = ok(&admin.get(&format!("/api/v4/posts/{}", post.id)).await);
    for (status, body) in [
        (200, "<html>not json</html>"),
        (200, r#"{"update": {"message": "x"}} trailing"#),
        (200, r#"{"update": "x"}"#),
        (500, r#"{"update": {"message": "x"}}"#),
    ] {
        backend.reply(status, Some("application/json"), body);
        let err = click(&admin, &post.id, &action, json!({}))
            .await
            .assert_error(400, "api.post.do_action.action_integration.app_error");
        assert!(!err["detailed_error"].as_str().unwrap().is_empty(), "{err}");
    }
    // The egress policy applies: loopback refused once it is not allowed.
    shim.set_config(|c| c.service_settings.allowed_untrusted_internal_connections = String::new())
        .unwrap();
    let sent = backend.requests().len();
    let err = click(&admin, &post.id, &action, json!({}))
        .await
        .assert_error(400, "api.post.do_action.action_integration.app_error");
    assert!(
        err["detailed_error"]
            .as_str()
            .unwrap()
            .contains("AllowedUntrustedInternalConnections"),
        "{err}"
    );
    assert_eq!(backend.requests().len(), sent);
    let after = ok(&admin.get(&format!("/api/v4/posts/{}", post.id)).await);
    assert_eq!(after, before);
    assert!(events(&shim, "post_edited").is_empty());

    // Unknown action, deleted post, malformed action id.
    click(&admin, &post.id, "nosuchactionnosuchaction00", json!({}))
        .await
        .assert_error(404, "api.post.do_action.action_id.app_error");
    assert_eq!(
        admin
            .delete(&format!("/api/v4/posts/{}", post.id))
            .await
            .status
            .as_u16(),
        200
    );
    click(&admin, &post.id, &action, json!({}))
        .await
        .assert_error(403, "api.context.permissions.app_error");
    click(&admin, &post.id, "not-alnum", json!({}))
        .await
        .assert_error(404, "api.context.404.app_error");
    Api::new(&shim, None)
        .post_json(
            &format!("/api/v4/posts/{}/actions/{action}", post.id),
            &json!({}),
        )
        .await
        .assert_error(401, "api.context.session_expired.app_error");
    shim.stop().await.unwrap();
}

/// Whether `req` carries Slack's signature of its body under `secret`.
fn slack_signed(secret: &str, req: &Recorded) -> bool {
    let (Some(ts), Some(sig)) = (
        req.header("x-slack-request-timestamp"),
        req.header("x-slack-signature"),
    ) else {
        return false;
    };
    let Some(Ok(expected)) = sig.strip_prefix("v0=").map(hex::decode) else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut base = format!("v0:{ts}:").into_bytes();
    base.extend_from_slice(&req.body);
    ring::hmac::verify(&key, &base, &expected).is_ok()
}

#[tokio::test]
async fn clicks_on_a_commands_posts_are_signed_with_its_secret_and_copies_are_not() {
    let shim = shim().await;
    let admin = Api::admin(&shim);
    let backend = Backend::start().await;
    let command = super::commands::create_command(
        &admin,
        &shim,
        json!({"url": format!("{}/slash", backend.url)}),
    )
    .await;
    let secret = command["signing_secret"].as_str().unwrap();
    let buttons = json!([{"actions": [{"type": "button", "name": "Roll back",
        "integration": {"url": format!("{}/rollback", backend.url)}}]}]);
    backend.reply_json(
        json!({"response_type": "in_channel", "text": "Deployed", "attachments": buttons}),
    );
    ok(&super::commands::execute(&admin, &shim.town_square.id, "/deploy").await);
    let post = shim.posts().pop().unwrap();
    let props = props_of(&post);
    let action = action_id(&props, 0);

    backend.reply_json(
        json!({"update": {"message": "Rolled back", "props": {"attachments": buttons}}}),
    );
    ok(&click(&admin, &post.id, &action, json!({})).await);
    let req = backend.last();
    assert_eq!(req.uri(), "/rollback");
    assert!(slack_signed(secret, &req), "{:?}", req.headers);
    // The update's own button signs too: the integration chose it.
    let updated = ok(&admin.get(&format!("/api/v4/posts/{}", post.id)).await);
    let again = action_id(&updated["props"], 0);
    ok(&click(&admin, &post.id, &again, json!({})).await);
    assert!(slack_signed(secret, &backend.last()));

    // The same action, cookie and all, copied into a post of one's own: unsigned.
    let copy = admin
        .post_json(
            "/api/v4/posts",
            &json!({"channel_id": shim.town_square.id, "message": "copy", "props": props}),
        )
        .await;
    assert_eq!(copy.status.as_u16(), 201, "{}", copy.text);
    let copy = copy.json();
    ok(&click(&admin, copy["id"].as_str().unwrap(), &action, json!({})).await);
    let req = backend.last();
    assert_eq!(req.uri(), "/rollback");
    assert_eq!(req.header("x-slack-signature"), None);
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn clicks_on_an_outgoing_webhooks_answer_are_signed_as_its_deliveries_are() {
    let shim = shim().await;
    let admin = Api::admin(&shim);
    let backend = Backend::start().await;
    let hook = admin
        .post_json(
            "/api/v4/hooks/outgoing",
            &json!({"team_id": shim.team.id, "trigger_words": ["release"],
                    "callback_urls": [format!("{}/out", backend.url)], "display_name": "Releaser"}),
        )
        .await;
    assert_eq!(hook.status.as_u16(), 201, "{}", hook.text);
    let secret = hook.json()["signing_secret"].as_str().unwrap().to_string();
    backend.reply_json(json!({"text": "Release?", "attachments": [{"actions": [
        {"type": "button", "name": "Ship", "integration": {"url": format!("{}/ship", backend.url)}}]}]}));
    let said = admin
        .post_json(
            "/api/v4/posts",
            &json!({"channel_id": shim.town_square.id, "message": "release 2.0"}),
        )
        .await;
    assert_eq!(said.status.as_u16(), 201, "{}", said.text);
    switchboard_tests::wait_until(|| shim.posts().iter().any(|p| p.message == "Release?")).await;
    let answer = shim
        .posts()
        .into_iter()
        .find(|p| p.message == "Release?")
        .unwrap();
    let action = action_id(&props_of(&answer), 0);
    ok(&click(&admin, &answer.id, &action, json!({})).await);
    let req = backend.last();
    assert_eq!(req.uri(), "/ship");
    assert!(slack_signed(&secret, &req), "{:?}", req.headers);
    shim.stop().await.unwrap();
}

/// With one plugin slot and a short queue deadline, a webhook still goes
/// through while a click waits on a slow integration: the host waits, not an
/// instance (a held slot would answer the webhook 503 after 1 s, well
/// before the integration's 3 s are up).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_integration_holds_no_plugin_slot() {
    let shim = TestShim::builder()
        .config(|c| {
            c.service_settings.allowed_untrusted_internal_connections = "127.0.0.1".into();
            // Settings of their own: the harness shares one runtime (and
            // its slots) between tests with the same ones.
            c.switchboard_settings.plugin_pool_size = 1;
            c.switchboard_settings.plugin_queue_size = 3;
            c.switchboard_settings.plugin_queue_timeout_milliseconds = 1000;
        })
        .start()
        .await
        .unwrap();
    let admin = Api::admin(&shim);
    let slow = switchboard_tests::CallbackServer::start(|r| {
        if r.path == "/slow" {
            switchboard_tests::Answer::json(json!({"ephemeral_text": "finally"}))
                .after(Duration::from_secs(3))
        } else {
            switchboard_tests::Answer::empty()
        }
    })
    .await;
    let post = webhook_post(
        &admin,
        &shim,
        json!([{"actions": [{"type": "button", "name": "Slow",
            "integration": {"url": format!("{}/slow", slow.url)}}]}]),
    )
    .await;
    let action = action_id(&props_of(&post), 0);
    let clicker = admin.clone();
    let post_id = post.id.clone();
    let clicking = tokio::spawn(async move { click(&clicker, &post_id, &action, json!({})).await });
    slow.wait_for(1).await;

    let hook = admin
        .create_incoming_hook(&shim.town_square.id, json!({}))
        .await;
    let reply = admin
        .post_json(
            &format!("/hooks/{}", hook["id"].as_str().unwrap()),
            &json!({"text": "meanwhile"}),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    assert!(!clicking.is_finished(), "the click is still waiting");
    ok(&clicking.await.unwrap());
    let private = event_posts(&shim, "ephemeral_message", Some(&shim.admin.id));
    assert_eq!(private.last().unwrap()["message"], "finally");
    slow.stop().await;
    shim.stop().await.unwrap();
}
