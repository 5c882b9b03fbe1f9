//! Transform components (issue 25): uploading, listing, reading and deleting
//! them through `/api/v4/transforms`, who may, what is refused, and that
//! hostile ones (loops, memory hogs) leave the server answering. The hook
//! tests at the end run them through the compiled plugin's dispatch.

use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use switchboard_host_shim::transforms::{Failure, Request};
use switchboard_tests::{Api, Reply, TestShim};

const BOUNDARY: &str = "switchboard-test-boundary-7d1f";

fn workspace_file(path: &str) -> Vec<u8> {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path);
    std::fs::read(&full)
        .unwrap_or_else(|e| panic!("{} ({e}): build it with `make component`", full.display()))
}

/// The hostile test component (tests/transforms/hostile).
fn hostile() -> Vec<u8> {
    workspace_file("target/wasm32-wasip2/release/switchboard_transform_hostile.wasm")
}

/// A `multipart/form-data` body with these parts, written out here so the
/// server's parser is checked against an independent writer.
fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, filename, bytes) in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match filename {
            Some(file) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\n\
                     Content-Type: application/wasm\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn upload(api: &Api, name: &str, component: &[u8]) -> Reply {
    api.send(
        Method::POST,
        "/api/v4/transforms",
        Some(&format!("multipart/form-data; boundary={BOUNDARY}")),
        multipart(&[
            ("name", None, name.as_bytes()),
            ("component", Some("t.wasm"), component),
        ]),
    )
    .await
}

/// Uploads the hostile component as an admin; its id.
async fn upload_hostile(shim: &TestShim) -> String {
    let reply = upload(&Api::admin(shim), "hostile", &hostile()).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.json()["id"].as_str().unwrap().to_string()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[tokio::test]
async fn an_upload_answers_201_and_can_be_listed_read_and_deleted() {
    let shim = TestShim::start().await.unwrap();
    let admin = Api::admin(&shim);
    let bytes = hostile();
    let reply = upload(&admin, "shape alerts", &bytes).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let created = reply.json();
    let id = created["id"].as_str().unwrap();
    assert_eq!(id.len(), 26);
    assert_eq!(created["name"], "shape alerts");
    assert_eq!(created["size"], bytes.len());
    assert_eq!(created["sha256"], sha256_hex(&bytes));
    assert!(created["create_at"].as_i64().unwrap() > 0);

    let listed = admin.get("/api/v4/transforms").await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.json(), json!([created.clone()]));
    let one = admin.get(&format!("/api/v4/transforms/{id}")).await;
    assert_eq!(one.status, 200, "{}", one.text);
    assert_eq!(one.json(), created);

    // The stored component runs.
    let app = shim.shim.app.clone();
    let request = Request {
        path: "/ok".into(),
        method: "POST".into(),
        ..Request::default()
    };
    assert!(
        app.transforms
            .run(&app, id, request.clone())
            .await
            .unwrap()
            .is_some()
    );

    let deleted = admin.delete(&format!("/api/v4/transforms/{id}")).await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    admin
        .get(&format!("/api/v4/transforms/{id}"))
        .await
        .assert_error(404, "api.transforms.get.not_found.app_error");
    admin
        .delete(&format!("/api/v4/transforms/{id}"))
        .await
        .assert_error(404, "api.transforms.get.not_found.app_error");
    assert_eq!(admin.get("/api/v4/transforms").await.json(), json!([]));
    // Deleted means gone for the runner too, compiled code included.
    assert_eq!(
        app.transforms.run(&app, id, request).await,
        Err(Failure::NotFound)
    );
    admin
        .get("/api/v4/transforms/not-an-id")
        .await
        .assert_error(400, "api.context.invalid_url_param.app_error");
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn only_system_admins_may_manage_transforms() {
    let shim = TestShim::start().await.unwrap();
    let id = upload_hostile(&shim).await;
    let (_, token) = shim.create_user("mallory").unwrap();
    let user = Api::new(&shim, Some(&token));
    let permission = "api.context.permissions.app_error";
    upload(&user, "mine", &hostile())
        .await
        .assert_error(403, permission);
    user.get("/api/v4/transforms")
        .await
        .assert_error(403, permission);
    user.get(&format!("/api/v4/transforms/{id}"))
        .await
        .assert_error(403, permission);
    user.delete(&format!("/api/v4/transforms/{id}"))
        .await
        .assert_error(403, permission);
    Api::new(&shim, None)
        .get("/api/v4/transforms")
        .await
        .assert_error(401, "api.context.session_expired.app_error");
    // Nothing was added or removed.
    let listed = Api::admin(&shim).get("/api/v4/transforms").await.json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], id.as_str());
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn uploads_that_are_not_transforms_are_refused_saying_why() {
    let shim = TestShim::builder()
        .config(|c| c.service_settings.enable_developer = true)
        .start()
        .await
        .unwrap();
    let admin = Api::admin(&shim);
    let body = upload(&admin, "text", b"hello, not wasm")
        .await
        .assert_error(400, "api.transforms.upload.not_component.app_error");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("not a WebAssembly component"),
        "{body}"
    );
    // A core module is wasm but not a component.
    upload(&admin, "core", b"\0asm\x01\0\0\0")
        .await
        .assert_error(400, "api.transforms.upload.not_component.app_error");
    // The plugin is a component of another world.
    let plugin = workspace_file("target/wasm32-wasip2/release/switchboard_plugin.wasm");
    let body = upload(&admin, "plugin", &plugin)
        .await
        .assert_error(400, "api.transforms.upload.wrong_world.app_error");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("does not export `transform`"), "{body}");
    assert!(message.contains("switchboard:plugin/http"), "{body}");
    // Missing parts.
    let ct = format!("multipart/form-data; boundary={BOUNDARY}");
    admin
        .send(
            Method::POST,
            "/api/v4/transforms",
            Some(&ct),
            multipart(&[("component", Some("t.wasm"), &hostile())]),
        )
        .await
        .assert_error(400, "api.transforms.upload.name.app_error");
    admin
        .send(
            Method::POST,
            "/api/v4/transforms",
            Some(&ct),
            multipart(&[("name", None, b"nothing")]),
        )
        .await
        .assert_error(400, "api.transforms.upload.component.app_error");
    admin
        .post_json("/api/v4/transforms", &json!({"name": "x"}))
        .await
        .assert_error(400, "api.context.invalid_body_param.app_error");
    assert_eq!(admin.get("/api/v4/transforms").await.json(), json!([]));
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn an_upload_over_the_size_cap_is_refused() {
    let bytes = hostile();
    let shim = TestShim::builder()
        .config(|c| c.transform_settings.max_component_bytes = 4096)
        .start()
        .await
        .unwrap();
    assert!(bytes.len() > 4096);
    upload(&Api::admin(&shim), "big", &bytes)
        .await
        .assert_error(413, "api.transforms.upload.too_large.app_error");
    // Larger than axum's default body limit (2 MiB) yet under ours: accepted.
    shim.set_config(|c| c.transform_settings.max_component_bytes = 3 << 20)
        .unwrap();
    let mut padded = bytes.clone();
    // A custom section (id 0, name "pad") keeps the component valid.
    let payload = vec![0u8; (5 << 19) - 4];
    let mut section = vec![0u8];
    let mut size = payload.len() + 4;
    let mut leb = Vec::new();
    loop {
        let byte = (size & 0x7f) as u8;
        size >>= 7;
        if size == 0 {
            leb.push(byte);
            break;
        }
        leb.push(byte | 0x80);
    }
    section.extend_from_slice(&leb);
    section.extend_from_slice(&[3, b'p', b'a', b'd']);
    section.extend_from_slice(&payload);
    padded.extend_from_slice(&section);
    assert!(padded.len() > 2 << 20);
    let reply = upload(&Api::admin(&shim), "padded", &padded).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.json()["size"], padded.len());
    shim.stop().await.unwrap();
}

/// `GET /api/v4/system/ping`'s time, asserted loosely: a liveness check.
async fn ping_time(api: &Api) -> Duration {
    let started = Instant::now();
    let reply = api.get("/api/v4/system/ping").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    started.elapsed()
}

/// Pings from a thread of its own with a blocking socket, so neither the
/// request nor the pause between pings depends on the server's runtime
/// (whose timers stall too when its workers are held). Each ping's start
/// and end, from `origin`.
fn ping_from_a_thread(
    url: &str,
    origin: Instant,
    pings: usize,
) -> std::thread::JoinHandle<Vec<(Duration, Duration)>> {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://").to_string();
    std::thread::spawn(move || {
        (0..pings)
            .map(|_| {
                std::thread::sleep(Duration::from_millis(40));
                let start = origin.elapsed();
                let mut socket = std::net::TcpStream::connect(&addr).unwrap();
                socket
                    .write_all(
                        b"GET /api/v4/system/ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                    )
                    .unwrap();
                let mut answer = String::new();
                socket.read_to_string(&mut answer).unwrap();
                assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
                (start, origin.elapsed())
            })
            .collect()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_keeps_answering_while_loops_and_memory_hogs_run() {
    let shim = TestShim::builder()
        .config(|c| {
            c.transform_settings.max_concurrent = 3;
            // The loops run until the wall deadline rather than their fuel
            // (the fuel bound has its own test in the shim), so the pings
            // below are answered beside them for a whole second.
            c.transform_settings.fuel = u64::MAX / 2;
        })
        .start()
        .await
        .unwrap();
    let id = upload_hostile(&shim).await;
    ping_time(&Api::new(&shim, None)).await;
    let started = Instant::now();
    let runs: Vec<_> = ["loop", "loop", "memory"]
        .into_iter()
        .map(|mode| {
            let app = shim.shim.app.clone();
            let id = id.clone();
            tokio::spawn(async move {
                let request = Request {
                    method: "POST".into(),
                    path: format!("/hooks/x/{mode}"),
                    ..Request::default()
                };
                let outcome = app.transforms.run(&app, &id, request).await;
                (outcome, started.elapsed())
            })
        })
        .collect();
    // While they run (the loops for their whole second), the server answers.
    let pings = ping_from_a_thread(&shim.url, started, 8);
    let mut outcomes = Vec::new();
    for run in runs {
        outcomes.push(run.await.unwrap());
    }
    let pings = tokio::task::spawn_blocking(move || pings.join().unwrap())
        .await
        .unwrap();
    let loops_ended = outcomes[0].1.min(outcomes[1].1);
    for (start, end) in &pings {
        assert!(
            *end < loops_ended,
            "a ping ended at {end:?}, after the loops ({loops_ended:?})"
        );
        assert!(
            *end - *start < Duration::from_millis(100),
            "a ping took {:?}",
            *end - *start
        );
    }
    for (outcome, ended) in &outcomes[..2] {
        assert_eq!(
            outcome,
            &Err(Failure::Crashed(
                "deadline: the transform did not finish within 1000 ms".into()
            ))
        );
        assert!(*ended < Duration::from_secs(5), "ended after {ended:?}");
    }
    assert_eq!(
        outcomes[2].0,
        Err(Failure::Crashed(
            "memory: the transform exceeded its memory limit of 32 MiB".into()
        ))
    );
    assert_eq!(shim.shim.app.transforms.counters().crashed, 3);
    shim.stop().await.unwrap();
}

// ---- through a hook: the plugin's hook field and dispatch, then the host's sandbox. ----

struct TransformedHook {
    shim: TestShim,
    path: String,
}

impl TransformedHook {
    async fn new() -> TransformedHook {
        let shim = TestShim::builder()
            .config(|c| {
                c.service_settings.enable_developer = true;
                // Fuel enough that a loop meets its wall deadline first, however fast the
                // machine: the pings below must overlap a loop that lasts.
                c.transform_settings.fuel = u64::MAX / 2;
            })
            .start()
            .await
            .unwrap();
        let id = upload_hostile(&shim).await;
        let hook = Api::admin(&shim)
            .create_incoming_hook(
                &shim.town_square.id,
                json!({"transform": {"component": id}}),
            )
            .await;
        let path = format!("/hooks/{}", hook["id"].as_str().unwrap());
        TransformedHook { shim, path }
    }

    async fn send(&self, mode: &str, body: Value) -> Reply {
        Api::new(&self.shim, None)
            .send_with_headers(
                Method::POST,
                &format!("{}?mode={mode}", self.path),
                Some("application/json"),
                &[("x-test", "seen")],
                body.to_string().into_bytes(),
            )
            .await
    }

    /// Expects a 422 whose `detailed_error` names one of `whats`, and no post.
    async fn fails(&self, mode: &str, whats: &[&str]) {
        let before = self.shim.posts().len();
        let reply = self.send(mode, json!({"a": 1})).await;
        let body = reply.assert_error(422, reply.json()["id"].as_str().unwrap_or(""));
        let detail = body["detailed_error"].as_str().unwrap();
        assert!(whats.iter().any(|w| detail.contains(w)), "{mode}: {body}");
        assert_eq!(self.shim.posts().len(), before, "{mode} posted");
    }
}

#[tokio::test]
async fn a_hook_with_a_component_posts_what_it_returns() {
    let hook = TransformedHook::new().await;
    let reply = hook.send("ok", json!({"k": "v"})).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let post = hook.shim.posts().pop().expect("a post");
    assert!(post.message.starts_with("POST /hooks/"), "{}", post.message);
    assert!(
        post.message
            .ends_with("?mode=ok x-test=seen body={\"k\":\"v\"}"),
        "{}",
        post.message
    );
    let before = hook.shim.posts().len();
    let dropped = hook.send("drop", json!({})).await;
    assert_eq!(dropped.status, 200, "{}", dropped.text);
    assert_eq!(hook.shim.posts().len(), before);
    hook.shim.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_whose_component_fails_answers_422_and_posts_nothing() {
    let hook = TransformedHook::new().await;
    hook.fails("err", &["refused by the test transform"]).await;
    hook.fails("trap", &["trap"]).await;
    hook.fails("text", &["invalid output"]).await;
    hook.fails("memory", &["memory"]).await;
    // A loop: the server answers pings meanwhile, and the loop ends at its deadline.
    let started = Instant::now();
    let pings = ping_from_a_thread(&hook.shim.url, started, 8);
    hook.fails("loop", &["deadline"]).await;
    let loop_ended = started.elapsed();
    assert!(loop_ended < Duration::from_secs(5));
    let pings = tokio::task::spawn_blocking(move || pings.join().unwrap())
        .await
        .unwrap();
    for (start, end) in &pings {
        assert!(*end < loop_ended, "a ping ended at {end:?}, after the loop");
        assert!(
            *end - *start < Duration::from_millis(100),
            "a ping took {:?}",
            *end - *start
        );
    }
    // Each way of failing is counted for operators under its own fixed word.
    let metrics = hook.shim.shim.app.telemetry.encode();
    for outcome in ["refused", "trap", "invalid_output", "memory", "deadline"] {
        let series = format!("switchboard_transform_runs_total{{outcome=\"{outcome}\"}} 1");
        assert!(metrics.contains(&series), "{series} in\n{metrics}");
    }
    hook.shim.stop().await.unwrap();
}
