//! The host under load and hostile clients: admission to the plugin pool
//! (queue, then 503), fair scheduling beside spinning calls, HTTP timeouts
//! and the connection cap. No speed figures here: `make bench` has those.

use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use switchboard_tests::{Api, TestShim};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn hook_path(shim: &TestShim) -> String {
    let hook = Api::admin(shim)
        .create_incoming_hook(&shim.town_square.id, json!({}))
        .await;
    format!("/hooks/{}", hook["id"].as_str().unwrap())
}

/// 500 webhook posts at once against 4 slots: they queue instead of failing.
/// None is a 500; a refusal could only be a well-formed 503; every 200 is
/// stored exactly once and nothing else is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_concurrent_webhooks_queue_and_each_200_is_stored_once() {
    let shim = TestShim::builder()
        .config(|c| {
            c.switchboard_settings.plugin_pool_size = 4;
            c.switchboard_settings.plugin_queue_size = 1024;
            c.switchboard_settings.plugin_queue_timeout_milliseconds = 60_000;
        })
        .start()
        .await
        .unwrap();
    let path = shim.url(&hook_path(&shim).await);
    let http = reqwest::Client::new();
    let sends: Vec<_> = (0..500)
        .map(|i| {
            let (http, path) = (http.clone(), path.clone());
            tokio::spawn(async move {
                let reply = http
                    .post(path)
                    .header("content-type", "application/json")
                    .body(format!(r#"{{"text":"message {i}"}}"#))
                    .send()
                    .await
                    .expect("an answer");
                let status = reply.status().as_u16();
                let retry_after = reply.headers().get("retry-after").cloned();
                let body = reply.text().await.unwrap();
                (i, status, retry_after, body)
            })
        })
        .collect();
    let mut accepted = Vec::new();
    for send in sends {
        let (i, status, retry_after, body) = send.await.unwrap();
        match status {
            200 => accepted.push(format!("message {i}")),
            503 => {
                assert!(retry_after.is_some(), "503 without Retry-After: {body}");
                assert!(body.contains("app.plugin.busy.app_error"), "{body}");
            }
            other => panic!("message {i}: {other} {body}"),
        }
    }
    assert!(!accepted.is_empty());
    let mut stored: HashMap<String, usize> = HashMap::new();
    for post in shim.posts() {
        *stored.entry(post.message).or_default() += 1;
    }
    assert_eq!(
        stored.len(),
        accepted.len(),
        "only accepted posts are stored"
    );
    for message in &accepted {
        assert_eq!(stored.get(message), Some(&1), "{message} stored once");
    }
    shim.stop().await.unwrap();
}

/// With the one slot held by a spinning call, a webhook waits its queue
/// deadline and is told 503 with `Retry-After`; once the slot is free again
/// webhooks are accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_past_the_queue_deadline_is_a_503_with_retry_after() {
    let shim = TestShim::builder()
        .config(|c| {
            c.switchboard_settings.plugin_pool_size = 1;
            c.switchboard_settings.plugin_queue_size = 8;
            c.switchboard_settings.plugin_queue_timeout_milliseconds = 300;
            c.switchboard_settings.plugin_call_timeout_seconds = 6;
        })
        .start()
        .await
        .unwrap();
    let path = shim.url(&hook_path(&shim).await);
    let admin = Api::admin(&shim);
    let spin = tokio::spawn(async move {
        admin
            .post_raw("/plugins/switchboard/test/spin", None, "")
            .await
    });
    let http = reqwest::Client::new();
    let started = Instant::now();
    let refused = loop {
        let reply = http
            .post(&path)
            .body(r#"{"text":"while spinning"}"#)
            .send()
            .await
            .unwrap();
        if reply.status() == 503 {
            break reply;
        }
        // The spinning call had not taken the slot yet.
        assert_eq!(reply.status(), 200);
        assert!(started.elapsed() < Duration::from_secs(5), "never refused");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["id"], "app.plugin.busy.app_error");
    assert_eq!(body["status_code"], 503);
    assert!(!spin.is_finished(), "refused while the slot was busy");

    spin.await
        .unwrap()
        .assert_error(500, "app.plugin.call_failed.app_error");
    let after = http
        .post(&path)
        .body(r#"{"text":"after"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 200);
    shim.stop().await.unwrap();
}

/// Two calls spin in wasm until their deadline, on a two-thread runtime;
/// meanwhile ping and an incoming webhook still answer (wasm yields to the
/// executor at every epoch tick).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_and_webhooks_answer_beside_two_spinning_calls() {
    let shim = TestShim::builder()
        .config(|c| c.switchboard_settings.plugin_call_timeout_seconds = 8)
        .start()
        .await
        .unwrap();
    let path = hook_path(&shim).await;
    let spins: Vec<_> = (0..2)
        .map(|_| {
            let admin = Api::admin(&shim);
            tokio::spawn(async move {
                admin
                    .post_raw("/plugins/switchboard/test/spin", None, "")
                    .await
            })
        })
        .collect();
    // Let both calls reach their loop.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let anonymous = Api::new(&shim, None);
    let bound = Duration::from_secs(5);
    let ping = tokio::time::timeout(bound, anonymous.get("/api/v4/system/ping"))
        .await
        .expect("ping answered while the calls spin");
    assert_eq!(ping.status, 200);
    let hook = tokio::time::timeout(
        bound,
        anonymous.post_raw(&path, None, r#"{"text":"beside the spinners"}"#),
    )
    .await
    .expect("the webhook answered while the calls spin");
    assert_eq!(hook.text, "ok");
    assert!(
        spins.iter().all(|s| !s.is_finished()),
        "both answers came while the spinning calls still ran"
    );
    for spin in spins {
        let reply = spin.await.unwrap();
        let body = reply.assert_error(500, "app.plugin.call_failed.app_error");
        assert!(body["message"].as_str().unwrap().contains("did not answer"));
    }
    shim.stop().await.unwrap();
}

/// Reads until the server closes the connection (or 10 s pass: a failure).
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the server kept the connection open: {}",
        String::from_utf8_lossy(&seen)
    );
    String::from_utf8_lossy(&seen).into_owned()
}

fn authority(shim: &TestShim) -> String {
    shim.url.trim_start_matches("http://").to_string()
}

#[tokio::test]
async fn silent_idle_half_sent_and_slow_connections_are_closed() {
    let shim = TestShim::builder()
        .config(|c| {
            c.service_settings.idle_timeout = 1;
            c.service_settings.read_timeout = 1;
        })
        .start()
        .await
        .unwrap();
    let addr = authority(&shim);

    // Connects and says nothing.
    let mut silent = TcpStream::connect(&addr).await.unwrap();
    assert_eq!(read_to_close(&mut silent).await, "");

    // Sends half a header.
    let mut half = TcpStream::connect(&addr).await.unwrap();
    half.write_all(b"GET /api/v4/system/ping HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    assert_eq!(read_to_close(&mut half).await, "");

    // Asks once, then keeps the connection idle.
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    idle.write_all(b"GET /api/v4/system/ping HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut idle).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // Sends a header and a few bytes of a 100-byte body.
    let mut slow = TcpStream::connect(&addr).await.unwrap();
    slow.write_all(
        b"POST /hooks/abc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"te",
    )
    .await
    .unwrap();
    let answer = read_to_close(&mut slow).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("api.context.read_timeout.app_error"),
        "{answer}"
    );

    // The server still serves.
    assert_eq!(
        Api::new(&shim, None)
            .get("/api/v4/system/ping")
            .await
            .status,
        200
    );
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn connections_over_the_cap_are_refused_with_an_envelope() {
    let shim = TestShim::builder()
        .config(|c| c.switchboard_settings.max_connections = 2)
        .start()
        .await
        .unwrap();
    let addr = authority(&shim);
    let ping = b"GET /api/v4/system/ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let first = TcpStream::connect(&addr).await.unwrap();
    let _second = TcpStream::connect(&addr).await.unwrap();
    // Let the server take both before the third arrives.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut third = TcpStream::connect(&addr).await.unwrap();
    third.write_all(ping).await.unwrap();
    let answer = read_to_close(&mut third).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.to_lowercase().contains("retry-after: 1"), "{answer}");
    assert!(
        answer.contains("api.server.too_many_connections.app_error"),
        "{answer}"
    );

    // A closed connection frees its place.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut next = TcpStream::connect(&addr).await.unwrap();
        next.write_all(ping).await.unwrap();
        let answer = read_to_close(&mut next).await;
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the place was never freed: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shim.stop().await.unwrap();
}
