//! Durable outbound deliveries through the compiled component: retries with
//! a stable delivery id, answers posted exactly once, Standard Webhooks
//! signatures, redelivery, a full queue, slow receivers that stall nothing,
//! and slash commands whose waiting holds no instance.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard_tests::{Answer, Api, CallbackServer, TestShim};

/// A shim that may call loopback receivers, retrying fast: up to `attempts`
/// attempts 50 ms apart, no jitter.
async fn shim(attempts: usize) -> TestShim {
    TestShim::builder()
        .config(move |c| {
            c.service_settings.allowed_untrusted_internal_connections = "127.0.0.1".into();
            let mut schedule = vec![50; attempts];
            schedule[0] = 0;
            c.delivery_settings.retry_schedule_milliseconds = schedule;
            c.delivery_settings.jitter_percent = 0;
        })
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

/// Polls `condition` every 20 ms until it holds, for up to `limit`.
async fn eventually(limit: Duration, what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The hook's delivery log once every entry settled and there are `n`.
async fn settled_log(api: &Api, hook_id: &str, n: usize) -> Vec<Value> {
    let path = format!("/api/v4/hooks/outgoing/{hook_id}/deliveries");
    let deadline = Instant::now() + Duration::from_secs(30);
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

/// HMAC-SHA256 from `ring`, independent of the shim's `hmac` crate.
fn standard_signature(secret: &str, id: &str, timestamp: &str, body: &[u8]) -> String {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
    let message = [id.as_bytes(), b".", timestamp.as_bytes(), b".", body].concat();
    format!(
        "v1,{}",
        STANDARD.encode(ring::hmac::sign(&key, &message).as_ref())
    )
}

#[tokio::test]
async fn a_receiver_failing_twice_gets_the_third_attempt_and_one_post() {
    let shim = shim(5).await;
    let admin = Api::admin(&shim);
    let seen: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let counter = seen.clone();
    let server = CallbackServer::start(move |r| {
        let id = r.header("webhook-id").unwrap_or("").to_string();
        let mut seen = counter.lock().unwrap();
        let n = seen.entry(id).or_default();
        *n += 1;
        if *n <= 2 {
            Answer::raw(503, Some("text/plain"), "busy")
        } else {
            Answer::json(json!({"text": "third time lucky"}))
        }
    })
    .await;
    let hook = create_hook(&admin, json!({"team_id": shim.team.id, "trigger_words": ["retry"], "callback_urls": [server.url.clone()]})).await;
    let hook_id = hook["id"].as_str().unwrap();
    say(&admin, &shim.town_square.id, "retry please").await;

    let log = settled_log(&admin, hook_id, 1).await;
    let requests = server.requests();
    assert_eq!(requests.len(), 3, "two 503s, then the answer");
    let ids: Vec<&str> = requests
        .iter()
        .map(|r| r.header("webhook-id").unwrap())
        .collect();
    assert_eq!(ids[0].len(), 26);
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one delivery id: {ids:?}"
    );
    let attempts: Vec<&str> = requests
        .iter()
        .map(|r| r.header("x-switchboard-attempt").unwrap())
        .collect();
    assert_eq!(attempts, ["1", "2", "3"]);
    // Every attempt is signed when it is sent, both ways.
    for r in &requests {
        let timestamp = r.header("webhook-timestamp").unwrap();
        let expected = standard_signature(
            hook["webhook_secrets"][0].as_str().unwrap(),
            ids[0],
            timestamp,
            &r.body,
        );
        assert_eq!(r.header("webhook-signature"), Some(expected.as_str()));
        assert!(r.header("x-slack-signature").unwrap().starts_with("v0="));
    }
    let answers: Vec<_> = shim
        .posts()
        .into_iter()
        .filter(|p| p.message == "third time lucky")
        .collect();
    assert_eq!(answers.len(), 1, "exactly one response post");

    let delivery = &log[0];
    assert_eq!(delivery["id"], ids[0]);
    assert_eq!(delivery["state"], "delivered");
    assert_eq!(delivery["attempt"], 3);
    assert_eq!(delivery["status"], 200);
    assert_eq!(delivery["posted"], json!([answers[0].id]));
    let tried = delivery["attempts"].as_array().unwrap();
    let statuses: Vec<i64> = tried
        .iter()
        .map(|a| a["status"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses, [503, 503, 200]);
    assert!(tried[0]["next_retry_at"].as_i64().unwrap() >= tried[0]["at"].as_i64().unwrap());
    assert_eq!(tried[2]["next_retry_at"], 0);

    // A replayed result (as after a crash between the plugin's answer and
    // the host noting it) posts nothing more: the post ids are derived.
    shim.shim.app.store.replay_delivery_result(ids[0]).unwrap();
    shim.shim.app.deliveries.wake();
    eventually(Duration::from_secs(10), "the replay is done", || {
        shim.shim.app.store.active_deliveries().unwrap() == 0
    })
    .await;
    let again = shim
        .posts()
        .into_iter()
        .filter(|p| p.message == "third time lucky")
        .count();
    assert_eq!(again, 1, "the replay created no second post");
    assert_eq!(server.requests().len(), 3, "and sent nothing");
    server.stop().await;
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn a_final_4xx_is_not_retried_and_redeliver_sends_again() {
    let shim = shim(5).await;
    let admin = Api::admin(&shim);
    let calls = Arc::new(Mutex::new(0u32));
    let count = calls.clone();
    let server = CallbackServer::start(move |_| {
        let mut n = count.lock().unwrap();
        *n += 1;
        if *n == 1 {
            Answer::raw(410, Some("text/plain"), "")
        } else {
            Answer::json(json!({"text": "redelivered"}))
        }
    })
    .await;
    let hook = create_hook(&admin, json!({"team_id": shim.team.id, "trigger_words": ["gone"], "callback_urls": [server.url.clone()]})).await;
    let hook_id = hook["id"].as_str().unwrap();
    say(&admin, &shim.town_square.id, "gone away").await;
    let log = settled_log(&admin, hook_id, 1).await;
    assert_eq!(log[0]["attempt"], 1, "410 is final");
    assert_eq!(log[0]["status"], 410);
    let first = log[0]["id"].as_str().unwrap().to_string();
    // The plugin's log says settled as soon as its callback ran; the host
    // marks the job done just after, and only a done job can be redelivered.
    eventually(Duration::from_secs(10), "the host finished the job", || {
        shim.shim.app.store.active_deliveries().unwrap() == 0
    })
    .await;

    let path = format!("/api/v4/hooks/outgoing/{hook_id}/deliveries/{first}/redeliver");
    let reply = admin.post_json(&path, &json!({})).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let second = reply.json()["delivery_id"].as_str().unwrap().to_string();
    assert_ne!(second, first);
    let log = settled_log(&admin, hook_id, 2).await;
    assert_eq!(log[0]["id"], second.as_str(), "newest first");
    assert_eq!(log[0]["state"], "delivered");
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].header("webhook-id"), Some(second.as_str()));
    assert_eq!(requests[1].body, requests[0].body, "the same request");
    assert!(shim.posts().iter().any(|p| p.message == "redelivered"));

    admin
        .post_json(
            &format!("/api/v4/hooks/outgoing/{hook_id}/deliveries/nosuchdelivery/redeliver"),
            &json!({}),
        )
        .await
        .assert_error(404, "app.webhooks.delivery.not_found.app_error");
    // Another user cannot redeliver the admin's hook.
    let (_, token) = shim.create_user("mallory").unwrap();
    let reply = Api::new(&shim, Some(&token))
        .post_json(&path, &json!({}))
        .await;
    assert_eq!(reply.status, 403, "{}", reply.text);
    server.stop().await;
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn a_hook_failing_twenty_times_is_marked_and_its_owner_told() {
    let shim = shim(1).await;
    let admin = Api::admin(&shim);
    let server = CallbackServer::start(|_| Answer::raw(500, None, "")).await;
    let hook = create_hook(&admin, json!({"team_id": shim.team.id, "trigger_words": ["down"], "callback_urls": [server.url.clone()], "display_name": "Pager"})).await;
    let hook_id = hook["id"].as_str().unwrap();
    assert_eq!(hook["failing"], false);
    for i in 0..20 {
        say(&admin, &shim.town_square.id, &format!("down {i}")).await;
    }
    settled_log(&admin, hook_id, 20).await;
    eventually(
        Duration::from_secs(10),
        "the hook is marked failing",
        || {
            shim.posts()
                .iter()
                .any(|p| p.props.contains("outgoing_webhook_failing"))
        },
    )
    .await;
    let hook = admin
        .get(&format!("/api/v4/hooks/outgoing/{hook_id}"))
        .await
        .json();
    assert_eq!(hook["failing"], true);
    let notice = shim
        .posts()
        .into_iter()
        .find(|p| p.props.contains("outgoing_webhook_failing"))
        .unwrap();
    assert!(notice.message.contains("Pager"), "{}", notice.message);
    let channel = shim.shim.app.store.channel(&notice.channel_id).unwrap();
    assert_eq!(channel.team_id, "", "a direct channel");
    assert!(
        shim.shim
            .app
            .store
            .is_channel_member(&channel.id, &shim.admin.id)
            .unwrap()
    );
    // From the server's system bot, not posing as the owner.
    let author = shim.shim.app.store.user(&notice.user_id).unwrap();
    assert_eq!(author.username, "system-bot");
    assert!(author.is_bot);
    assert!(notice.props.contains("from_bot"));
    server.stop().await;
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn a_full_queue_refuses_new_deliveries_visibly() {
    let shim = TestShim::builder()
        .config(|c| {
            c.service_settings.allowed_untrusted_internal_connections = "127.0.0.1".into();
            c.delivery_settings.max_queued = 1;
        })
        .start()
        .await
        .unwrap();
    let admin = Api::admin(&shim);
    let server = CallbackServer::start(|_| Answer::empty().after(Duration::from_secs(2))).await;
    let hook = create_hook(&admin, json!({"team_id": shim.team.id, "trigger_words": ["q"], "callback_urls": [server.url.clone()]})).await;
    let hook_id = hook["id"].as_str().unwrap();
    say(&admin, &shim.town_square.id, "q one").await;
    server.wait_for(1).await;
    say(&admin, &shim.town_square.id, "q two").await;
    let log = settled_log(&admin, hook_id, 2).await;
    let refused = log
        .iter()
        .find(|d| d["error"].as_str().unwrap().contains("queue is full"))
        .unwrap_or_else(|| panic!("no refusal in {log:?}"));
    assert_eq!(refused["state"], "failed");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("DeliverySettings.MaxQueued")
    );
    assert!(
        shim.logs()
            .iter()
            .any(|l| l.level == "error" && l.message.contains("queue is full"))
    );
    server.stop().await;
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn two_hundred_posts_to_an_eight_second_receiver_stall_nothing() {
    let shim = TestShim::builder()
        .config(|c| {
            c.service_settings.allowed_untrusted_internal_connections = "127.0.0.1".into();
            c.delivery_settings.max_concurrent_per_destination = 256;
        })
        .start()
        .await
        .unwrap();
    let admin = Api::admin(&shim);
    let server = CallbackServer::start(|_| Answer::empty().after(Duration::from_secs(8))).await;
    let hook = create_hook(&admin, json!({"team_id": shim.team.id, "trigger_words": ["slow"], "callback_urls": [server.url.clone()]})).await;
    let hook_id = hook["id"].as_str().unwrap().to_string();
    for i in 0..200 {
        say(&admin, &shim.town_square.id, &format!("slow {i}")).await;
    }
    // While 200 callbacks wait on the receiver, incoming webhooks answer.
    let incoming = admin
        .create_incoming_hook(&shim.town_square.id, json!({}))
        .await;
    let anonymous = Api::new(&shim, None);
    for i in 0..20 {
        let started = Instant::now();
        let reply = anonymous
            .post_raw(
                &format!("/hooks/{}", incoming["id"].as_str().unwrap()),
                Some("application/json"),
                format!(r#"{{"text":"incoming {i}"}}"#),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "answered at all while deliveries wait"
        );
    }
    eventually(Duration::from_secs(60), "200 callbacks arrive", || {
        server.requests().len() >= 200
    })
    .await;
    let log = settled_log(&admin, &hook_id, 50).await;
    assert!(log.iter().all(|d| d["state"] == "delivered"), "{log:?}");
    eventually(Duration::from_secs(30), "all 200 settle", || {
        shim.shim.app.store.active_deliveries().unwrap() == 0
    })
    .await;
    let done = shim.shim.app.store.deliveries_of(&hook_id).unwrap();
    assert_eq!(done.len(), 200);
    assert!(done.iter().all(|d| d.attempts.len() == 1));
    let incoming_posts = shim
        .posts()
        .iter()
        .filter(|p| p.message.starts_with("incoming "))
        .count();
    assert_eq!(incoming_posts, 20);
    server.stop().await;
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn waiting_on_a_receiver_holds_no_plugin_call() {
    // A plugin call may run 1 s; the receivers take 2 s. Were the instance
    // waiting for them, both would fail with the call's deadline.
    let shim = TestShim::builder()
        .config(|c| {
            c.service_settings.allowed_untrusted_internal_connections = "127.0.0.1".into();
            c.service_settings.outgoing_integration_requests_timeout = 5;
            c.switchboard_settings.plugin_call_timeout_seconds = 1;
        })
        .start()
        .await
        .unwrap();
    let admin = Api::admin(&shim);
    let server = CallbackServer::start(|r| {
        let text = if r.path == "/slash" {
            "the command's answer"
        } else {
            "the hook's answer"
        };
        Answer::json(json!({"response_type": "in_channel", "text": text}))
            .after(Duration::from_secs(2))
    })
    .await;
    let command = admin
        .post_json(
            "/api/v4/commands",
            &json!({"team_id": shim.team.id, "trigger": "wait", "method": "P",
                    "url": format!("{}/slash", server.url), "display_name": "Wait"}),
        )
        .await;
    assert_eq!(command.status, 201, "{}", command.text);
    let started = Instant::now();
    let reply = admin
        .post_json(
            "/api/v4/commands/execute",
            &json!({"channel_id": shim.town_square.id, "command": "/wait"}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["text"], "the command's answer");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "the user waited"
    );
    assert!(
        shim.posts()
            .iter()
            .any(|p| p.message == "the command's answer")
    );

    create_hook(&admin, json!({"team_id": shim.team.id, "trigger_words": ["hold"], "callback_urls": [format!("{}/hook", server.url)]})).await;
    say(&admin, &shim.town_square.id, "hold on").await;
    eventually(
        Duration::from_secs(10),
        "the hook's answer is posted",
        || {
            shim.posts()
                .iter()
                .any(|p| p.message == "the hook's answer")
        },
    )
    .await;
    server.stop().await;
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn during_a_secret_rotation_both_secrets_sign() {
    let shim = shim(1).await;
    let admin = Api::admin(&shim);
    let server = CallbackServer::start(|_| Answer::empty()).await;
    let hook = create_hook(&admin, json!({"team_id": shim.team.id, "trigger_words": ["rot"], "callback_urls": [server.url.clone()]})).await;
    let hook_id = hook["id"].as_str().unwrap();
    let old = hook["webhook_secrets"][0].as_str().unwrap().to_string();
    assert!(old.starts_with("whsec_"), "{old}");
    assert_eq!(STANDARD.decode(&old["whsec_".len()..]).unwrap().len(), 24);
    let rotated = admin
        .post_json(
            &format!("/api/v4/hooks/outgoing/{hook_id}/rotate_secret"),
            &json!({}),
        )
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let secrets = rotated.json()["webhook_secrets"].clone();
    assert_eq!(secrets.as_array().unwrap().len(), 2);
    assert_eq!(secrets[1], old.as_str(), "the old secret still signs");
    let new = secrets[0].as_str().unwrap().to_string();
    say(&admin, &shim.town_square.id, "rot now").await;
    let request = server.wait_for(1).await.remove(0);
    let id = request.header("webhook-id").unwrap();
    let timestamp = request.header("webhook-timestamp").unwrap();
    let header = request.header("webhook-signature").unwrap();
    let signatures: Vec<&str> = header.split(' ').collect();
    assert_eq!(
        signatures,
        [
            standard_signature(&new, id, timestamp, &request.body).as_str(),
            standard_signature(&old, id, timestamp, &request.body).as_str()
        ]
    );
    let age = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - timestamp.parse::<i64>().unwrap();
    assert!(age.abs() < 60, "a fresh timestamp");
    server.stop().await;
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn a_hook_caps_its_attempts_and_deleting_it_cancels_its_retries() {
    let shim = TestShim::builder()
        .config(|c| {
            c.service_settings.allowed_untrusted_internal_connections = "127.0.0.1".into();
            // Five attempts by default, the later ones an hour apart.
            c.delivery_settings.retry_schedule_milliseconds =
                vec![0, 50, 3_600_000, 3_600_000, 3_600_000];
            c.delivery_settings.jitter_percent = 0;
        })
        .start()
        .await
        .unwrap();
    let admin = Api::admin(&shim);
    let server = CallbackServer::start(|_| Answer::raw(503, None, "")).await;
    let capped = create_hook(&admin, json!({"team_id": shim.team.id, "trigger_words": ["cap"], "callback_urls": [format!("{}/capped", server.url)], "max_attempts": 2})).await;
    assert_eq!(capped["max_attempts"], 2);
    say(&admin, &shim.town_square.id, "cap it").await;
    let log = settled_log(&admin, capped["id"].as_str().unwrap(), 1).await;
    assert_eq!(
        log[0]["attempt"], 2,
        "the hook's cap, not the server's five"
    );
    assert_eq!(log[0]["state"], "failed");

    let doomed = create_hook(&admin, json!({"team_id": shim.team.id, "trigger_words": ["doom"], "callback_urls": [format!("{}/doomed", server.url)]})).await;
    let doomed_id = doomed["id"].as_str().unwrap();
    say(&admin, &shim.town_square.id, "doom").await;
    eventually(
        Duration::from_secs(10),
        "two attempts, then an hour's wait",
        || {
            server
                .requests()
                .iter()
                .filter(|r| r.path == "/doomed")
                .count()
                == 2
        },
    )
    .await;
    eventually(Duration::from_secs(10), "the retry is scheduled", || {
        shim.shim
            .app
            .store
            .deliveries_of(doomed_id)
            .unwrap()
            .iter()
            .any(|d| d.attempts.len() == 2)
    })
    .await;
    assert_eq!(shim.shim.app.store.active_deliveries().unwrap(), 1);
    let reply = admin
        .delete(&format!("/api/v4/hooks/outgoing/{doomed_id}"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        shim.shim.app.store.active_deliveries().unwrap(),
        0,
        "the pending retry is gone"
    );
    server.stop().await;
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn a_job_that_waited_past_its_lease_for_a_slot_is_sent_once() {
    // One request at a time to the receiver, 4 s each, and a 10 s lease
    // (timeout 5 s + 5 s): the fourth job waits 12 s for its slot, its lease
    // runs out and the engine claims it again meanwhile.
    let shim = TestShim::builder()
        .config(|c| {
            c.service_settings.allowed_untrusted_internal_connections = "127.0.0.1".into();
            c.service_settings.outgoing_integration_requests_timeout = 5;
            c.delivery_settings.max_concurrent_per_destination = 1;
        })
        .start()
        .await
        .unwrap();
    let admin = Api::admin(&shim);
    let server = CallbackServer::start(|_| Answer::empty().after(Duration::from_secs(4))).await;
    let hook = create_hook(&admin, json!({"team_id": shim.team.id, "trigger_words": ["one"], "callback_urls": [server.url.clone()]})).await;
    for i in 0..4 {
        say(&admin, &shim.town_square.id, &format!("one {i}")).await;
    }
    settled_log(&admin, hook["id"].as_str().unwrap(), 4).await;
    eventually(Duration::from_secs(30), "all four settle", || {
        shim.shim.app.store.active_deliveries().unwrap() == 0
    })
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut ids: Vec<String> = server
        .requests()
        .iter()
        .map(|r| r.header("webhook-id").unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 4, "each delivery sent once: {ids:?}");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4);
    server.stop().await;
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn retry_after_as_an_http_date_holds_the_retry_back() {
    // Retries 50 ms apart, unless the receiver asks for an hour.
    let shim = shim(3).await;
    let admin = Api::admin(&shim);
    let server = CallbackServer::start(|_| {
        let later = std::time::SystemTime::now() + Duration::from_secs(3600);
        Answer::raw(429, Some("text/plain"), "slow down")
            .header("Retry-After", &httpdate::fmt_http_date(later))
    })
    .await;
    let hook = create_hook(&admin, json!({"team_id": shim.team.id, "trigger_words": ["later"], "callback_urls": [server.url.clone()]})).await;
    let hook_id = hook["id"].as_str().unwrap();
    say(&admin, &shim.town_square.id, "later please").await;
    eventually(
        Duration::from_secs(10),
        "the first attempt is recorded",
        || {
            shim.shim
                .app
                .store
                .deliveries_of(hook_id)
                .unwrap()
                .iter()
                .any(|d| !d.attempts.is_empty())
        },
    )
    .await;
    let job = shim
        .shim
        .app
        .store
        .deliveries_of(hook_id)
        .unwrap()
        .remove(0);
    let first = &job.attempts[0];
    assert_eq!(first.status, 429);
    assert!(
        first.next_at - first.at >= 3_590_000,
        "the retry waits for the receiver's date, not 50 ms: {} ms",
        first.next_at - first.at
    );
    assert_eq!(server.requests().len(), 1);
    server.stop().await;
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn a_result_the_plugin_keeps_failing_on_is_parked_and_the_engine_moves_on() {
    let shim = TestShim::builder()
        .config(|c| {
            c.service_settings.allowed_untrusted_internal_connections = "127.0.0.1".into();
            c.delivery_settings.max_callback_failures = 3;
        })
        .start()
        .await
        .unwrap();
    let admin = Api::admin(&shim);
    // The plugin traps on every call back with this answer (a test fault,
    // only with EnableTesting), as it would on a bug it hits every time.
    let server = CallbackServer::start(|r| {
        if r.body_text().contains("poison") {
            Answer::json(json!({"text": "never posted"})).header("X-Switchboard-Test-Fault", "trap")
        } else {
            Answer::json(json!({"text": "handled"}))
        }
    })
    .await;
    let hook = create_hook(&admin, json!({"team_id": shim.team.id, "trigger_words": ["feed"], "callback_urls": [server.url.clone()]})).await;
    let hook_id = hook["id"].as_str().unwrap();
    say(&admin, &shim.town_square.id, "feed poison").await;
    let log = settled_log(&admin, hook_id, 1).await;
    let parked = &log[0];
    assert_eq!(parked["state"], "failed", "{parked}");
    let error = parked["error"].as_str().unwrap();
    assert!(
        error.contains("the plugin failed on it 3 times"),
        "the delivery log says why: {error}"
    );
    assert_eq!(parked["posted"], json!([]));
    assert_eq!(parked["status"], 200, "the receiver did answer");
    let id = parked["id"].as_str().unwrap();
    eventually(Duration::from_secs(10), "the job is parked", || {
        shim.shim.app.store.active_deliveries().unwrap() == 0
    })
    .await;
    let job = shim.shim.app.store.delivery(id).unwrap();
    assert_eq!(job.state, "done");
    assert_eq!(job.callback_failures, 3);
    assert_eq!(shim.shim.app.store.parked_deliveries().unwrap(), 1);
    assert_eq!(
        server.requests().len(),
        1,
        "the answer is not fetched again"
    );
    assert!(
        shim.logs()
            .iter()
            .any(|l| l.message.contains("the plugin failed on it 3 times")),
        "and the plugin's log"
    );

    // The engine moves on: the next delivery of the hook is handled.
    say(&admin, &shim.town_square.id, "feed more").await;
    let log = settled_log(&admin, hook_id, 2).await;
    assert_eq!(log[0]["state"], "delivered", "{log:?}");
    assert!(shim.posts().iter().any(|p| p.message == "handled"));
    assert!(!shim.posts().iter().any(|p| p.message == "never posted"));
    server.stop().await;
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn paused_post_hooks_stay_owed_and_run_once_the_pause_ends() {
    let shim = TestShim::builder()
        .config(|c| {
            c.service_settings.allowed_untrusted_internal_connections = "127.0.0.1".into();
            c.delivery_settings.pause_post_hooks = true;
        })
        .start()
        .await
        .unwrap();
    let admin = Api::admin(&shim);
    let server = CallbackServer::start(|_| Answer::empty()).await;
    create_hook(&admin, json!({"team_id": shim.team.id, "trigger_words": ["held"], "callback_urls": [server.url.clone()]})).await;
    let first = say(&admin, &shim.town_square.id, "held one").await;
    let second = say(&admin, &shim.town_square.id, "held two").await;
    // Owed from the post's own transaction.
    let owed = shim.shim.app.store.owed_post_hooks().unwrap();
    assert_eq!(
        owed,
        [
            first["id"].as_str().unwrap(),
            second["id"].as_str().unwrap()
        ]
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(server.requests().is_empty(), "held while paused");
    assert_eq!(shim.shim.app.store.owed_post_hooks().unwrap().len(), 2);

    shim.set_config(|c| c.delivery_settings.pause_post_hooks = false)
        .unwrap();
    server.wait_for(2).await;
    eventually(Duration::from_secs(10), "the outbox is empty", || {
        shim.shim.app.store.owed_post_hooks().unwrap().is_empty()
    })
    .await;
    server.stop().await;
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn five_hundred_triggering_posts_into_two_slots_all_reach_the_receiver() {
    // Two plugin slots and a queue that refuses almost at once: each post's
    // hook and each delivery's result is a background call, which waits for
    // a slot instead of being refused as busy.
    let shim = TestShim::builder()
        .config(|c| {
            c.service_settings.allowed_untrusted_internal_connections = "127.0.0.1".into();
            c.switchboard_settings.plugin_pool_size = 2;
            c.switchboard_settings.plugin_queue_size = 2;
            c.switchboard_settings.plugin_queue_timeout_milliseconds = 200;
            c.delivery_settings.max_concurrent_per_destination = 256;
        })
        .start()
        .await
        .unwrap();
    let admin = Api::admin(&shim);
    let server = CallbackServer::start(|_| Answer::empty()).await;
    create_hook(&admin, json!({"team_id": shim.team.id, "trigger_words": ["burst"], "callback_urls": [server.url.clone()]})).await;
    let channel = shim.town_square.id.clone();
    let sends = (0..500).map(|i| {
        let (admin, channel) = (admin.clone(), channel.clone());
        tokio::spawn(async move { say(&admin, &channel, &format!("burst {i}")).await })
    });
    for send in futures::future::join_all(sends).await {
        send.unwrap();
    }
    let received = || {
        server
            .requests()
            .iter()
            .map(|r| r.body_text())
            .filter_map(|body| {
                let start = body.find("burst+")? + "burst+".len();
                let number: String = body[start..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                number.parse::<u32>().ok()
            })
            .collect::<std::collections::HashSet<u32>>()
    };
    eventually(
        Duration::from_secs(300),
        "every post's delivery arrives",
        || received().len() == 500,
    )
    .await;
    eventually(
        Duration::from_secs(60),
        "and every result is handled",
        || shim.shim.app.store.active_deliveries().unwrap() == 0,
    )
    .await;
    assert_eq!(
        shim.shim.app.store.owed_post_hooks().unwrap(),
        Vec::<String>::new(),
        "no post hook left owed"
    );
    server.stop().await;
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn a_redelivery_is_signed_with_the_hooks_secrets_now() {
    let shim = shim(1).await;
    let admin = Api::admin(&shim);
    let server = CallbackServer::start(|_| Answer::empty()).await;
    let hook = create_hook(&admin, json!({"team_id": shim.team.id, "trigger_words": ["resign"], "callback_urls": [server.url.clone()]})).await;
    let hook_id = hook["id"].as_str().unwrap();
    let first_secret = hook["webhook_secrets"][0].as_str().unwrap().to_string();
    say(&admin, &shim.town_square.id, "resign please").await;
    let log = settled_log(&admin, hook_id, 1).await;
    let first = log[0]["id"].as_str().unwrap().to_string();
    eventually(Duration::from_secs(10), "the host finished the job", || {
        shim.shim.app.store.active_deliveries().unwrap() == 0
    })
    .await;
    // Two rotations: the first secret is retired, two new ones sign.
    let rotate = format!("/api/v4/hooks/outgoing/{hook_id}/rotate_secret");
    admin.post_json(&rotate, &json!({})).await;
    let rotated = admin.post_json(&rotate, &json!({})).await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let secrets: Vec<String> = rotated.json()["webhook_secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    assert!(!secrets.contains(&first_secret));

    let path = format!("/api/v4/hooks/outgoing/{hook_id}/deliveries/{first}/redeliver");
    let reply = admin.post_json(&path, &json!({})).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let second = reply.json()["delivery_id"].as_str().unwrap().to_string();
    let requests = server.wait_for(2).await;
    let again = &requests[1];
    assert_eq!(again.header("webhook-id"), Some(second.as_str()));
    assert_eq!(again.body, requests[0].body, "the same request");
    let timestamp = again.header("webhook-timestamp").unwrap();
    let signatures: Vec<&str> = again
        .header("webhook-signature")
        .unwrap()
        .split(' ')
        .collect();
    let expected: Vec<String> = secrets
        .iter()
        .map(|secret| standard_signature(secret, &second, timestamp, &again.body))
        .collect();
    assert_eq!(
        signatures, expected,
        "signed with the secrets now, not the retired one"
    );
    server.stop().await;
    shim.stop().await.unwrap();
}
