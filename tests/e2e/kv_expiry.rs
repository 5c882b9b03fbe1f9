//! Expiring kv records through the compiled component: the plugin writes its
//! `Idempotency-Key` and rate-limit records with an expiry (kv 0.3.1), they
//! read as absent once past it, and the host's sweeper deletes them in
//! bounded batches while webhooks keep being answered.

use serde_json::{Value, json};
use std::time::Duration;
use switchboard_host_shim::sweeper::{self, BATCH, Sweep};
use switchboard_tests::{Api, TestShim};

const START: i64 = 1_800_000_000_000;

async fn shim_at_a_fixed_time() -> TestShim {
    TestShim::builder()
        .fixed_clock(START)
        .start()
        .await
        .unwrap()
}

fn hook_path(hook: &Value) -> String {
    format!("/hooks/{}", hook["id"].as_str().unwrap())
}

async fn send(shim: &TestShim, path: &str, key: Option<&str>) -> Value {
    let headers: Vec<(&str, &str)> = key.map(|k| ("Idempotency-Key", k)).into_iter().collect();
    let reply = Api::new(shim, None)
        .send_with_headers(
            reqwest::Method::POST,
            &format!("{path}?wait=true"),
            Some("application/json"),
            &headers,
            json!({"text": "deployed"}).to_string().into_bytes(),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json()[0].clone()
}

#[tokio::test]
async fn idempotency_and_rate_records_expire_and_are_swept() {
    let shim = shim_at_a_fixed_time().await;
    let store = &shim.shim.app.store;
    let admin = Api::admin(&shim);
    let hook = admin
        .create_incoming_hook(&shim.town_square.id, json!({"rate_limit": 3}))
        .await;
    let path = hook_path(&hook);
    let idempotency = format!("incoming_idempotency/{}/", hook["id"].as_str().unwrap());
    let rate = format!("incoming_rate/{}", hook["id"].as_str().unwrap());

    let first = send(&shim, &path, Some("deploy-1")).await;
    assert_eq!(store.kv_list(&idempotency, 0, 10).unwrap().len(), 1);
    assert_eq!(store.kv_list(&rate, 0, 10).unwrap().len(), 1);

    // The rate record is full again (gone) one interval (20 s) later; the
    // idempotency record stays for its day.
    shim.advance_clock(Duration::from_secs(20));
    assert!(store.kv_list(&rate, 0, 10).unwrap().is_empty());
    let swept = sweeper::sweep(store, shim.shim.app.clock.now_millis(), |_| async {})
        .await
        .unwrap();
    assert_eq!(swept.batches, [1], "the rate record, deleted");
    let within = START + 24 * 3_600_000 - 1;
    shim.advance_clock(Duration::from_millis((within - START - 20_000) as u64));
    let retry = send(&shim, &path, Some("deploy-1")).await;
    assert_eq!(retry["id"], first["id"], "the same post within 24 hours");
    let swept = sweeper::sweep(store, shim.shim.app.clock.now_millis(), |_| async {})
        .await
        .unwrap();
    assert_eq!(swept.batches, [0], "nothing has expired yet");
    assert_eq!(store.kv_list(&idempotency, 0, 10).unwrap().len(), 1);

    // 24 hours after it was first seen the record reads as absent; 20 s on,
    // the sweeper deletes it and the second request's rate record, and the
    // same key makes a new post.
    shim.advance_clock(Duration::from_millis(1));
    assert!(store.kv_list(&idempotency, 0, 10).unwrap().is_empty());
    shim.advance_clock(Duration::from_millis(19_999));
    assert!(store.kv_list(&idempotency, 0, 10).unwrap().is_empty());
    let swept = sweeper::sweep(store, shim.shim.app.clock.now_millis(), |_| async {})
        .await
        .unwrap();
    assert_eq!(swept.deleted(), 2);
    let again = send(&shim, &path, Some("deploy-1")).await;
    assert_ne!(again["id"], first["id"]);
    assert_eq!(store.kv_list(&idempotency, 0, 10).unwrap().len(), 1);
    shim.stop().await.unwrap();
}

/// 100,000 expired records go in batches of at most [`BATCH`]; between any
/// two batches a webhook is posted and answered, with expired records still
/// waiting: the sweep never holds the store's writer for long.
#[tokio::test]
async fn a_sweep_of_100000_records_lets_webhooks_through_between_batches() {
    let shim = shim_at_a_fixed_time().await;
    let store = &shim.shim.app.store;
    let hook = Api::admin(&shim)
        .create_incoming_hook(&shim.town_square.id, json!({}))
        .await;
    let path = hook_path(&hook);
    let keys: Vec<String> = (0..100_000).map(|i| format!("bulk/{i:06}")).collect();
    for chunk in keys.chunks(10_000) {
        let entries = chunk.iter().map(|k| (k.clone(), b"x".to_vec())).collect();
        store.kv_import_with_expiry(entries, 60).unwrap();
    }
    shim.advance_clock(Duration::from_secs(61));
    let posts_before = shim.posts().len();

    let answered = std::sync::Mutex::new(Vec::new());
    let swept = sweeper::sweep(store, shim.shim.app.clock.now_millis(), |so_far: &Sweep| {
        let batches = so_far.batches.len();
        let (shim, path, answered) = (&shim, &path, &answered);
        async move {
            let post = send(shim, path, None).await;
            answered.lock().unwrap().push((batches, post["id"].clone()));
        }
    })
    .await
    .unwrap();

    assert_eq!(swept.deleted(), 100_000);
    assert!(swept.batches.iter().all(|&n| n <= BATCH as usize));
    assert_eq!(
        swept.batches.len(),
        101,
        "100 full batches, then an empty one"
    );
    let answered = answered.into_inner().unwrap();
    assert_eq!(
        answered.iter().map(|(b, _)| *b).collect::<Vec<_>>(),
        (1..=100).collect::<Vec<_>>(),
        "a webhook answered after each full batch, before the next"
    );
    assert_eq!(shim.posts().len(), posts_before + 100);
    shim.stop().await.unwrap();
}
