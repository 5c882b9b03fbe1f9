//! Outgoing OAuth connections through the compiled component: a loopback
//! token server, commands and outgoing webhooks whose URLs match a
//! connection's audience carrying its token, the cache (reused, renewed
//! before expiry, once on a 401, one fetch for many waiting requests), the
//! spec's failure rules, and the management API with its bad input.

use crate::commands::{create_command, execute, ok};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard_tests::{Answer, Api, CallbackServer, TestShim};

const SECRET: &str = "client-secret-never-shown-42";
const PASSWORD: &str = "robot-password-never-shown-7";
const BASE: &str = "/api/v4/oauth/outgoing_connections";

/// A shim with the feature on that may call loopback servers, its clock
/// fixed so tests can move past a token's expiry; webhook retries are fast.
async fn shim() -> TestShim {
    TestShim::builder()
        .config(|c| {
            c.service_settings.enable_outgoing_o_auth_connections = true;
            c.service_settings.allowed_untrusted_internal_connections = "127.0.0.1".into();
            c.delivery_settings.retry_schedule_milliseconds = vec![0, 50, 300, 300, 300];
            c.delivery_settings.jitter_percent = 0;
        })
        .fixed_clock(1_900_000_000_000)
        .start()
        .await
        .unwrap()
}

/// A token endpoint handing out `tok-1`, `tok-2`, … (lifetime `expires_in`
/// seconds), or failing with `fail`'s status while it is not 0.
struct TokenServer {
    server: CallbackServer,
    fail: Arc<AtomicU16>,
}

impl TokenServer {
    async fn start(expires_in: u64, delay: Duration) -> TokenServer {
        let issued = Arc::new(AtomicUsize::new(0));
        let fail = Arc::new(AtomicU16::new(0));
        let failing = fail.clone();
        let server = CallbackServer::start(move |_| {
            let status = failing.load(Ordering::SeqCst);
            if status != 0 {
                return Answer::raw(
                    status,
                    Some("application/json"),
                    json!({"error": "invalid_client", "error_description": "no such client"})
                        .to_string(),
                )
                .after(delay);
            }
            let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
            Answer::json(json!({
                "access_token": format!("tok-{n}"), "token_type": "bearer", "expires_in": expires_in,
            }))
            .after(delay)
        })
        .await;
        TokenServer { server, fail }
    }

    fn url(&self) -> String {
        format!("{}/token", self.server.url)
    }

    fn count(&self) -> usize {
        self.server.requests().len()
    }
}

/// A service that answers 401 to the tokens in `reject` (or to every one
/// while `reject_all`), and a command reply otherwise.
struct Service {
    server: CallbackServer,
    reject: Arc<Mutex<Vec<String>>>,
    reject_all: Arc<AtomicBool>,
}

impl Service {
    async fn start() -> Service {
        let reject: Arc<Mutex<Vec<String>>> = Arc::default();
        let reject_all = Arc::new(AtomicBool::new(false));
        let (r, all) = (reject.clone(), reject_all.clone());
        let server = CallbackServer::start(move |req| {
            let auth = req.header("authorization").unwrap_or("").to_string();
            if all.load(Ordering::SeqCst) || r.lock().unwrap().contains(&auth) {
                return Answer::raw(401, Some("text/plain"), "expired token");
            }
            Answer::json(json!({"response_type": "ephemeral", "text": "done"}))
        })
        .await;
        Service {
            server,
            reject,
            reject_all,
        }
    }

    fn auth_headers(&self) -> Vec<String> {
        self.server
            .requests()
            .iter()
            .map(|r| r.header("authorization").unwrap_or("").to_string())
            .collect()
    }
}

async fn create_connection(admin: &Api, token_url: &str, audiences: Value, extra: Value) -> Value {
    let mut body = json!({
        "name": "Service", "client_id": "switchboard", "client_secret": SECRET,
        "oauth_token_url": token_url, "grant_type": "client_credentials", "audiences": audiences,
    });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let reply = admin.post_json(BASE, &body).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.json()
}

/// A slash command `/deploy` calling `url`.
async fn command_at(admin: &Api, shim: &TestShim, url: &str) -> Value {
    create_command(admin, shim, json!({"method": "P", "url": url})).await
}

#[tokio::test]
async fn a_command_carries_the_token_which_is_reused_until_shortly_before_it_expires() {
    let shim = shim().await;
    let admin = Api::admin(&shim);
    let tokens = TokenServer::start(3600, Duration::ZERO).await;
    let service = Service::start().await;
    let connection = create_connection(
        &admin,
        &tokens.url(),
        json!([format!("{}/slash", service.server.url)]),
        json!({}),
    )
    .await;
    command_at(&admin, &shim, &format!("{}/slash", service.server.url)).await;
    let town = &shim.town_square.id;

    ok(&execute(&admin, town, "/deploy one").await);
    ok(&execute(&admin, town, "/deploy two").await);
    assert_eq!(service.auth_headers(), ["Bearer tok-1", "Bearer tok-1"]);
    assert_eq!(tokens.count(), 1, "the second call reused the cached token");
    let asked = &tokens.server.requests()[0];
    assert_eq!(asked.method, "POST");
    assert_eq!(
        asked.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(asked.one("grant_type"), "client_credentials");
    assert_eq!(asked.one("client_id"), "switchboard");
    assert_eq!(asked.one("client_secret"), SECRET);
    // The command token still travels in the form.
    assert_eq!(service.server.requests()[0].field("token").len(), 1);

    // A minute before expiry (a tenth of the life for short ones) it is renewed.
    shim.advance_clock(Duration::from_secs(3530));
    ok(&execute(&admin, town, "/deploy three").await);
    assert_eq!(tokens.count(), 1, "still fresh 70 s before expiry");
    shim.advance_clock(Duration::from_secs(20));
    ok(&execute(&admin, town, "/deploy four").await);
    assert_eq!(tokens.count(), 2, "refetched 50 s before expiry");
    assert_eq!(service.auth_headers()[3], "Bearer tok-2");

    // Editing the connection drops its token.
    let id = connection["id"].as_str().unwrap();
    let reply = admin
        .put_json(
            &format!("{BASE}/{id}"),
            &json!({"id": id, "name": "Renamed"}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    ok(&execute(&admin, town, "/deploy five").await);
    assert_eq!(tokens.count(), 3);
    assert_eq!(service.auth_headers()[4], "Bearer tok-3");

    // Nothing logged or recorded carries a token or the secret.
    let logged = format!("{:?}{:?}", shim.logs(), shim.outbound_calls());
    assert!(
        !logged.contains("tok-") && !logged.contains(SECRET),
        "{logged}"
    );

    // With the feature off, no token is fetched or sent.
    shim.set_config(|c| c.service_settings.enable_outgoing_o_auth_connections = false)
        .unwrap();
    ok(&execute(&admin, town, "/deploy six").await);
    assert!(service.auth_headers()[5].starts_with("Token "));
    assert_eq!(tokens.count(), 3);
    tokens.server.stop().await;
    service.server.stop().await;
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn a_401_from_the_service_renews_the_token_once_and_retries_once() {
    let shim = shim().await;
    let admin = Api::admin(&shim);
    let tokens = TokenServer::start(3600, Duration::ZERO).await;
    let service = Service::start().await;
    // A prefix audience covers every path of the service.
    create_connection(
        &admin,
        &tokens.url(),
        json!([format!("{}/*", service.server.url)]),
        json!({}),
    )
    .await;
    command_at(&admin, &shim, &format!("{}/slash", service.server.url)).await;
    let town = &shim.town_square.id;
    ok(&execute(&admin, town, "/deploy").await);
    assert_eq!(tokens.count(), 1);

    // The service revokes tok-1: one renewal, one retry, and the answer.
    service.reject.lock().unwrap().push("Bearer tok-1".into());
    let out = ok(&execute(&admin, town, "/deploy again").await);
    assert_eq!(out["text"], "done", "{out}");
    assert_eq!(
        service.auth_headers(),
        ["Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]
    );
    assert_eq!(tokens.count(), 2);

    // A service that refuses every token: still exactly one renewal, and its
    // 401 is the command's answer (Mattermost's error for a non-200 reply).
    service.reject_all.store(true, Ordering::SeqCst);
    let reply = execute(&admin, town, "/deploy once more").await;
    let body = reply.assert_error(500, "api.command.execute_command.failed_resp.app_error");
    assert!(body["message"].as_str().unwrap().contains("401"), "{body}");
    assert_eq!(service.auth_headers().len(), 5, "one request and one retry");
    assert_eq!(
        service.auth_headers()[3..],
        ["Bearer tok-2", "Bearer tok-3"]
    );
    assert_eq!(tokens.count(), 3, "one renewal, not a loop");
    tokens.server.stop().await;
    service.server.stop().await;
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn requests_waiting_for_a_token_share_one_fetch() {
    let shim = shim().await;
    let admin = Api::admin(&shim);
    let tokens = TokenServer::start(3600, Duration::from_millis(300)).await;
    let service = Service::start().await;
    create_connection(
        &admin,
        &tokens.url(),
        json!([format!("{}/slash", service.server.url)]),
        json!({}),
    )
    .await;
    command_at(&admin, &shim, &format!("{}/slash", service.server.url)).await;
    let town = shim.town_square.id.clone();
    let calls: Vec<_> = (0..5)
        .map(|i| {
            let (admin, town) = (admin.clone(), town.clone());
            tokio::spawn(async move { execute(&admin, &town, &format!("/deploy {i}")).await })
        })
        .collect();
    for call in calls {
        ok(&call.await.unwrap());
    }
    assert_eq!(tokens.count(), 1, "one fetch for five waiting commands");
    assert_eq!(service.auth_headers(), vec!["Bearer tok-1"; 5]);

    // A failure is shared too: five commands waiting on a slow, failing
    // endpoint ask it once (and go out without the token).
    shim.advance_clock(Duration::from_secs(3600));
    tokens.fail.store(503, Ordering::SeqCst);
    let calls: Vec<_> = (0..5)
        .map(|i| {
            let (admin, town) = (admin.clone(), town.clone());
            tokio::spawn(async move { execute(&admin, &town, &format!("/deploy {i}")).await })
        })
        .collect();
    for call in calls {
        ok(&call.await.unwrap());
    }
    assert_eq!(
        tokens.count(),
        2,
        "one failed fetch for five waiting commands"
    );
    assert!(
        service.auth_headers()[5..]
            .iter()
            .all(|h| h.starts_with("Token "))
    );
    tokens.server.stop().await;
    service.server.stop().await;
    shim.stop().await.unwrap();
}

/// The hook's delivery log once `n` entries settled.
async fn settled_log(api: &Api, hook_id: &str, n: usize) -> Vec<Value> {
    let path = format!("/api/v4/hooks/outgoing/{hook_id}/deliveries");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = api.get(&path).await.json();
        let entries = log.as_array().cloned().unwrap_or_default();
        if entries.len() == n && entries.iter().all(|d| d["state"] != "retrying") {
            return entries;
        }
        assert!(Instant::now() < deadline, "log never settled: {log}");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

async fn say(api: &Api, channel_id: &str, message: &str) {
    let reply = api
        .post_json(
            "/api/v4/posts",
            &json!({"channel_id": channel_id, "message": message}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn an_outgoing_webhook_carries_the_token_and_no_stored_delivery_holds_it() {
    let shim = shim().await;
    let admin = Api::admin(&shim);
    let tokens = TokenServer::start(3600, Duration::ZERO).await;
    let receiver = Service::start().await;
    create_connection(
        &admin,
        &tokens.url(),
        json!([format!("{}/*", receiver.server.url)]),
        json!({"grant_type": "password", "credentials_username": "robot", "credentials_password": PASSWORD}),
    )
    .await;
    let hook = admin
        .post_json(
            "/api/v4/hooks/outgoing",
            &json!({"team_id": shim.team.id, "trigger_words": ["ship"],
                    "callback_urls": [format!("{}/hook", receiver.server.url)]}),
        )
        .await
        .json();
    say(&admin, &shim.town_square.id, "ship it").await;
    let log = settled_log(&admin, hook["id"].as_str().unwrap(), 1).await;
    assert_eq!(log[0]["state"], "delivered", "{log:?}");
    assert_eq!(receiver.auth_headers(), ["Bearer tok-1"]);
    let asked = &tokens.server.requests()[0];
    assert_eq!(asked.one("grant_type"), "password");
    assert_eq!(asked.one("username"), "robot");
    assert_eq!(asked.one("password"), PASSWORD);

    // The token was added on the wire only: neither the stored job nor
    // anything else in the database has it, nor the secrets in the clear.
    let raw = shim.database_bytes().unwrap();
    assert!(contains(&raw, "/hook"), "the delivery is stored");
    assert!(!contains(&raw, "tok-1"));
    assert!(!contains(&raw, SECRET));
    assert!(!contains(&raw, PASSWORD));
    tokens.server.stop().await;
    receiver.server.stop().await;
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn a_failing_token_endpoint_fails_commands_open_and_webhooks_closed() {
    let shim = shim().await;
    let admin = Api::admin(&shim);
    let tokens = TokenServer::start(3600, Duration::ZERO).await;
    tokens.fail.store(401, Ordering::SeqCst);
    let service = Service::start().await;
    create_connection(
        &admin,
        &tokens.url(),
        json!([format!("{}/*", service.server.url)]),
        json!({}),
    )
    .await;
    let command = command_at(&admin, &shim, &format!("{}/slash", service.server.url)).await;

    // The command goes out without the token: its own `Token` header.
    let out = ok(&execute(&admin, &shim.town_square.id, "/deploy").await);
    assert_eq!(out["text"], "done");
    assert_eq!(
        service.auth_headers(),
        [format!("Token {}", command["token"].as_str().unwrap())]
    );

    // The webhook call is not sent; the delivery log says why, once (a
    // refused credential is final).
    let hook = admin
        .post_json(
            "/api/v4/hooks/outgoing",
            &json!({"team_id": shim.team.id, "trigger_words": ["ship"],
                    "callback_urls": [format!("{}/hook", service.server.url)]}),
        )
        .await
        .json();
    say(&admin, &shim.town_square.id, "ship it").await;
    let log = settled_log(&admin, hook["id"].as_str().unwrap(), 1).await;
    assert_eq!(log[0]["state"], "failed", "{log:?}");
    assert_eq!(log[0]["attempt"], 1, "{log:?}");
    let error = log[0]["error"].as_str().unwrap();
    assert!(
        error.contains("outgoing OAuth connection") && error.contains("401"),
        "{error}"
    );
    assert!(error.contains("invalid_client"), "{error}");
    assert_eq!(service.server.requests().len(), 1, "only the command's");

    // A token endpoint that is down (503) is worth retrying: every attempt
    // asks again, and once it recovers the delivery goes through.
    tokens.fail.store(503, Ordering::SeqCst);
    let before = tokens.count();
    say(&admin, &shim.town_square.id, "ship again").await;
    let hook_id = hook["id"].as_str().unwrap();
    switchboard_tests::wait_until(|| tokens.count() >= before + 2).await;
    tokens.fail.store(0, Ordering::SeqCst);
    let log = settled_log(&admin, hook_id, 2).await;
    assert_eq!(log[0]["state"], "delivered", "{log:?}");
    assert!(log[0]["attempt"].as_u64().unwrap() >= 2, "{log:?}");
    assert_eq!(service.auth_headers().last().unwrap(), "Bearer tok-1");
    tokens.server.stop().await;
    service.server.stop().await;
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn connections_are_managed_with_secrets_never_returned() {
    let shim = shim().await;
    let admin = Api::admin(&shim);
    let tokens = TokenServer::start(3600, Duration::ZERO).await;
    let created = create_connection(
        &admin,
        &tokens.url(),
        json!(["https://svc.example.com/hooks/*"]),
        json!({"grant_type": "password", "credentials_username": "robot", "credentials_password": PASSWORD}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 26);
    assert_eq!(created["creator_id"], shim.admin.id.as_str());
    assert_eq!(created["client_id"], "switchboard");
    assert_eq!(created["credentials_username"], "robot");
    assert_eq!(
        created["audiences"],
        json!(["https://svc.example.com/hooks/*"])
    );
    assert!(created.get("client_secret").is_none(), "{created}");
    assert!(created.get("credentials_password").is_none(), "{created}");

    let mut texts = Vec::new();
    let got = admin.get(&format!("{BASE}/{id}")).await;
    assert_eq!(got.status, 200, "{}", got.text);
    assert_eq!(got.json()["name"], "Service");
    texts.push(got.text);

    let second = create_connection(
        &admin,
        &tokens.url(),
        json!(["https://other.example.com/x"]),
        json!({"name": "Other"}),
    )
    .await;
    let listed = admin.get(BASE).await;
    assert_eq!(listed.status, 200);
    let mut ids: Vec<String> = vec![id.clone(), second["id"].as_str().unwrap().to_string()];
    ids.sort();
    let listed_ids: Vec<String> = listed
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed_ids, ids, "ordered by id");
    let paged = admin
        .get(&format!("{BASE}?from_id={}&limit=5", ids[0]))
        .await
        .json();
    assert_eq!(paged.as_array().unwrap().len(), 1);
    assert_eq!(paged[0]["id"], ids[1].as_str());
    let one = admin.get(&format!("{BASE}?limit=1")).await.json();
    assert_eq!(one.as_array().unwrap().len(), 1);
    let matched = admin
        .get(&format!(
            "{BASE}?audience=https://svc.example.com/hooks/deploy"
        ))
        .await;
    assert_eq!(matched.json()[0]["id"], id.as_str(), "{}", matched.text);
    let unmatched = admin
        .get(&format!("{BASE}?audience=https://nowhere.example.com/"))
        .await;
    assert_eq!(unmatched.json(), json!([]));
    texts.push(listed.text);

    // PUT patches: an empty secret keeps the stored one.
    let put = admin
        .put_json(
            &format!("{BASE}/{id}"),
            &json!({"id": id, "name": "Renamed", "client_secret": ""}),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.text);
    let put_json = put.json();
    assert_eq!(put_json["name"], "Renamed");
    assert_eq!(put_json["audiences"], created["audiences"]);
    assert!(put_json["update_at"].as_i64() > created["update_at"].as_i64());
    texts.push(put.text);
    let stored = shim.shim.app.store.outgoing_oauth_connection(&id).unwrap();
    assert_eq!(stored.client_secret, SECRET);
    assert_eq!(stored.credentials_password.as_deref(), Some(PASSWORD));

    // Validate: by id with the saved secrets, then with a wrong secret.
    let valid = admin
        .post_json(
            &format!("{BASE}/validate"),
            &json!({"id": id, "client_id": "switchboard", "oauth_token_url": tokens.url(),
                    "grant_type": "password", "credentials_username": "robot"}),
        )
        .await;
    assert_eq!(valid.status, 200, "{}", valid.text);
    assert_eq!(valid.json(), json!({"status": "OK"}));
    let asked = tokens.server.requests().pop().unwrap();
    assert_eq!(asked.one("client_secret"), SECRET);
    assert_eq!(asked.one("password"), PASSWORD);
    tokens.fail.store(401, Ordering::SeqCst);
    let refused = admin
        .post_json(
            &format!("{BASE}/validate"),
            &json!({"client_id": "x", "client_secret": "wrong", "oauth_token_url": tokens.url(),
                    "grant_type": "client_credentials"}),
        )
        .await;
    let body = refused.assert_error(
        400,
        "api.context.outgoing_oauth_connection.validate_connection_credentials.app_error",
    );
    assert!(body["message"].as_str().unwrap().contains("invalid_client"));
    texts.push(refused.text);

    for text in &texts {
        assert!(!text.contains(SECRET) && !text.contains(PASSWORD), "{text}");
    }

    let deleted = admin.delete(&format!("{BASE}/{id}")).await;
    assert_eq!(deleted.status, 200);
    assert_eq!(deleted.json(), json!({"status": "OK"}));
    admin.get(&format!("{BASE}/{id}")).await.assert_error(
        404,
        "api.context.outgoing_oauth_connection.list_connections.app_error",
    );
    admin.delete(&format!("{BASE}/{id}")).await.assert_error(
        404,
        "api.context.outgoing_oauth_connection.delete_connection.app_error",
    );
    tokens.server.stop().await;
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn bad_input_permissions_and_the_switch_get_the_spec_s_errors() {
    let shim = shim().await;
    let admin = Api::admin(&shim);
    let good = json!({
        "name": "Svc", "client_id": "c", "client_secret": "s",
        "oauth_token_url": "https://idp.example.com/token", "grant_type": "client_credentials",
        "audiences": ["https://svc.example.com/"],
    });
    let with = |patch: Value| {
        let mut body = good.clone();
        body.as_object_mut()
            .unwrap()
            .extend(patch.as_object().unwrap().clone());
        body
    };
    let prefix = "model.outgoing_oauth_connection.is_valid";
    for (patch, id) in [
        (json!({"name": ""}), format!("{prefix}.name.error")),
        (
            json!({"name": "n".repeat(65)}),
            format!("{prefix}.name.error"),
        ),
        (
            json!({"client_id": ""}),
            format!("{prefix}.client_id.error"),
        ),
        (
            json!({"client_secret": ""}),
            format!("{prefix}.client_secret.error"),
        ),
        (
            json!({"oauth_token_url": "ftp://idp/token"}),
            format!("{prefix}.oauth_token_url.error"),
        ),
        (
            json!({"grant_type": "implicit"}),
            format!("{prefix}.grant_type.error"),
        ),
        (
            json!({"grant_type": "password", "credentials_username": "u"}),
            format!("{prefix}.password_credentials.error"),
        ),
        (json!({"audiences": []}), format!("{prefix}.audience.empty")),
        (
            json!({"audiences": ["not a url"]}),
            format!("{prefix}.audience.error"),
        ),
        (
            json!({"id": "abcdefghijklmnopqrstuvwxyz"}),
            format!("{prefix}.id.error"),
        ),
    ] {
        admin
            .post_json(BASE, &with(patch.clone()))
            .await
            .assert_error(400, &id);
    }
    let reply = admin
        .post_raw(BASE, Some("application/json"), "{not json")
        .await;
    reply.assert_error(
        400,
        "api.context.outgoing_oauth_connection.create_connection.input_error",
    );
    assert!(
        shim.shim
            .app
            .store
            .outgoing_oauth_connections("", 100)
            .unwrap()
            .is_empty(),
        "nothing saved"
    );

    let created = admin.post_json(BASE, &good).await.json();
    let id = created["id"].as_str().unwrap();
    admin
        .put_json(
            &format!("{BASE}/{id}"),
            &json!({"id": "someotheridxxxxxxxxxxxxxxx", "name": "x"}),
        )
        .await
        .assert_error(400, "api.context.invalid_param.app_error");
    admin
        .send(
            reqwest::Method::PUT,
            &format!("{BASE}/{id}"),
            Some("application/json"),
            b"[".to_vec(),
        )
        .await
        .assert_error(
            400,
            "api.context.outgoing_oauth_connection.update_connection.input_error",
        );
    admin
        .put_json(
            &format!("{BASE}/{id}"),
            &json!({"id": id, "audiences": ["nope"]}),
        )
        .await
        .assert_error(400, &format!("{prefix}.audience.error"));
    let missing = "abcdefghijklmnopqrstuvwxyz";
    admin
        .put_json(&format!("{BASE}/{missing}"), &json!({"id": missing}))
        .await
        .assert_error(
            404,
            "api.context.outgoing_oauth_connection.update_connection.app_error",
        );
    admin
        .get(&format!("{BASE}/not-an-id"))
        .await
        .assert_error(400, "api.context.invalid_url_param.app_error");
    for limit in ["0", "101", "ten"] {
        admin
            .get(&format!("{BASE}?limit={limit}"))
            .await
            .assert_error(
                400,
                "api.context.outgoing_oauth_connection.list_connections.input_error",
            );
    }
    admin
        .post_raw(
            &format!("{BASE}/validate"),
            Some("application/json"),
            "nope",
        )
        .await
        .assert_error(
            400,
            "api.context.outgoing_oauth_connection.validate_connection_credentials.input_error",
        );

    // A team member may list (to see which connection a URL gets) but not
    // manage; without a team, or anonymously, nothing.
    let (_, token) = shim.create_user("author").unwrap();
    let author = Api::new(&shim, Some(&token));
    let listed = author
        .get(&format!("{BASE}?team_id={}", shim.team.id))
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert!(!listed.text.contains("\"client_secret\""));
    author
        .get(BASE)
        .await
        .assert_error(403, "api.context.permissions.app_error");
    author
        .post_json(BASE, &good)
        .await
        .assert_error(403, "api.context.permissions.app_error");
    author
        .get(&format!("{BASE}/{id}"))
        .await
        .assert_error(403, "api.context.permissions.app_error");
    author
        .delete(&format!("{BASE}/{id}"))
        .await
        .assert_error(403, "api.context.permissions.app_error");
    Api::new(&shim, None)
        .get(BASE)
        .await
        .assert_error(401, "api.context.session_expired.app_error");

    // Switched off: the permission is checked first, then 501.
    shim.set_config(|c| c.service_settings.enable_outgoing_o_auth_connections = false)
        .unwrap();
    let off = "api.context.outgoing_oauth_connection.not_available.configuration_disabled";
    admin.get(BASE).await.assert_error(501, off);
    admin.post_json(BASE, &good).await.assert_error(501, off);
    admin
        .delete(&format!("{BASE}/{id}"))
        .await
        .assert_error(501, off);
    author
        .post_json(BASE, &good)
        .await
        .assert_error(403, "api.context.permissions.app_error");
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn the_token_does_not_follow_a_redirect_to_another_host() {
    let shim = shim().await;
    let admin = Api::admin(&shim);
    let tokens = TokenServer::start(3600, Duration::ZERO).await;
    let elsewhere = Service::start().await;
    // A service that sends every request on to another port (307 keeps the
    // method and body).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let redirecting = format!("http://{}", listener.local_addr().unwrap());
    let target = format!("{}/landing", elsewhere.server.url);
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let noted = seen.clone();
    let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
        let (target, noted) = (target.clone(), noted.clone());
        async move {
            let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
            noted.lock().unwrap().push(auth.unwrap_or("").to_string());
            axum::response::Response::builder()
                .status(307)
                .header("location", target)
                .body(axum::body::Body::empty())
                .unwrap()
        }
    });
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    create_connection(
        &admin,
        &tokens.url(),
        json!([format!("{redirecting}/*")]),
        json!({}),
    )
    .await;
    command_at(&admin, &shim, &format!("{redirecting}/slash")).await;
    let out = ok(&execute(&admin, &shim.town_square.id, "/deploy").await);
    assert_eq!(out["text"], "done", "{out}");
    assert_eq!(*seen.lock().unwrap(), ["Bearer tok-1"]);
    assert_eq!(elsewhere.auth_headers(), [""], "dropped at the other host");
    server.abort();
    tokens.server.stop().await;
    elsewhere.server.stop().await;
    shim.stop().await.unwrap();
}
