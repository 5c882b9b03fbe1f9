//! `make bench`: what an incoming webhook costs natively, in the component
//! (fresh instance per call), and over HTTP, measured in one run so the
//! ratios hold on a shared machine; and the fan-out of one post to many
//! outgoing webhooks. Prints a table; asserts nothing.

use std::time::{Duration, Instant};
use switchboard_plugin::incoming::payload::parse_incoming;
use switchboard_plugin::slack::text::{
    announcements_and_mentions, link_attachments, links_strict, translate_attachments,
};
use switchboard_plugin::split::split_post;
use switchboard_tests::{Answer, Api, CallbackServer, TestShim};

/// A realistic alert: text with a mention and a link, one attachment with fields.
fn payload() -> String {
    serde_json::json!({
        "text": "<!here> *FIRING* <https://grafana.example.com/d/abc|High error rate> on api",
        "attachments": [{
            "fallback": "High error rate", "color": "danger", "title": "api: 5xx > 5%",
            "text": "Runbook: <https://runbooks.example.com/api|api runbook>",
            "fields": [{"title": "Severity", "value": "critical", "short": true},
                       {"title": "Errors/min", "value": 1200, "short": true}]
        }]
    })
    .to_string()
}

/// Runs `f` for about `budget`, returns the mean time per call.
fn measure(budget: Duration, mut f: impl FnMut()) -> Duration {
    for _ in 0..10 {
        f();
    }
    let started = Instant::now();
    let mut n = 0u32;
    while started.elapsed() < budget {
        f();
        n += 1;
    }
    started.elapsed() / n
}

async fn measure_async<F, Fut>(budget: Duration, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for _ in 0..10 {
        f().await;
    }
    let started = Instant::now();
    let mut n = 0u32;
    while started.elapsed() < budget {
        f().await;
        n += 1;
    }
    started.elapsed() / n
}

/// `senders` webhook posts at once into a shim with `pool` slots; the wall
/// time per request. Every one must be accepted.
async fn burst(body: &str, senders: u32, pool: u32) -> Duration {
    let shim = TestShim::builder()
        .config(|c| {
            c.switchboard_settings.plugin_pool_size = pool;
            c.switchboard_settings.plugin_queue_size = 1024;
            c.switchboard_settings.plugin_queue_timeout_milliseconds = 60_000;
        })
        .start()
        .await
        .unwrap();
    let hook = Api::admin(&shim)
        .create_incoming_hook(&shim.town_square.id, serde_json::json!({}))
        .await;
    let path = format!("/hooks/{}", hook["id"].as_str().unwrap());
    let anonymous = Api::new(&shim, None);
    let started = Instant::now();
    let tasks: Vec<_> = (0..senders)
        .map(|_| {
            let (anonymous, path, body) = (anonymous.clone(), path.clone(), body.to_string());
            tokio::spawn(async move {
                anonymous
                    .post_raw(&path, Some("application/json"), body)
                    .await
                    .status
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200);
    }
    let elapsed = started.elapsed() / senders;
    shim.stop().await.unwrap();
    elapsed
}

/// The mean latency of `GET /api/v4/system/ping` while two plugin calls spin
/// in wasm (the test route) on this 2-core machine.
async fn ping_beside_spinning_calls() -> Duration {
    let shim = TestShim::builder()
        .config(|c| c.switchboard_settings.plugin_call_timeout_seconds = 6)
        .start()
        .await
        .unwrap();
    let spins: Vec<_> = (0..2)
        .map(|_| {
            let admin = Api::admin(&shim);
            tokio::spawn(async move {
                admin
                    .post_raw("/plugins/switchboard/test/spin", None, "")
                    .await
                    .status
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let anonymous = Api::new(&shim, None);
    let latency = measure_async(Duration::from_secs(3), || {
        let anonymous = anonymous.clone();
        async move {
            assert_eq!(anonymous.get("/api/v4/system/ping").await.status, 200);
        }
    })
    .await;
    for spin in spins {
        assert!(!spin.is_finished(), "measured while both calls spun");
        assert_eq!(spin.await.unwrap(), 500);
    }
    shim.stop().await.unwrap();
    latency
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_string)
        })
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let budget = Duration::from_secs(3);
    let body = payload();

    // 1. The plugin's pure core, natively: decode, translate, split.
    let native = measure(budget, || {
        let request = parse_incoming(Some("application/json"), body.as_bytes()).unwrap();
        let no_users = |_: &str| None;
        let text = links_strict(&announcements_and_mentions(&request.text, &no_users));
        let mut attachments = request.attachments;
        translate_attachments(&mut attachments, &no_users);
        link_attachments(&mut attachments);
        std::hint::black_box(
            split_post(&text, &serde_json::Map::new(), attachments, 16383, 760_000).unwrap(),
        );
    });

    // 2. The compiled component in the shim, without HTTP, and 3. over HTTP.
    let shim = TestShim::start().await.expect("run `make component` first");
    let admin = Api::admin(&shim);
    let hook = admin
        .create_incoming_hook(&shim.town_square.id, serde_json::json!({}))
        .await;
    let path = format!("/hooks/{}", hook["id"].as_str().unwrap());
    let runtime = shim.shim.runtime.clone();
    let app = shim.shim.app.clone();
    let request = || switchboard_host_shim::runtime::PluginRequest {
        method: "POST".into(),
        path: path.clone(),
        query: String::new(),
        headers: vec![switchboard_host_shim::runtime::PluginHeader {
            name: "content-type".into(),
            value: "application/json".into(),
        }],
        body: body.clone().into_bytes(),
        body_too_large: false,
        user_id: None,
        request_id: "bench".into(),
    };
    let component = measure_async(budget, || {
        let (runtime, app, request) = (runtime.clone(), app.clone(), request());
        async move {
            let response = runtime.handle_http(app, request).await.unwrap();
            assert_eq!(response.status, 200);
        }
    })
    .await;
    // A call that only reads kv: the cost of a fresh instance without the
    // fsync of a committed post.
    let get_path = format!("/api/v4/hooks/incoming/{}", hook["id"].as_str().unwrap());
    let admin_id = shim.admin.id.clone();
    let read_only = measure_async(budget, || {
        let (runtime, app) = (runtime.clone(), app.clone());
        let request = switchboard_host_shim::runtime::PluginRequest {
            method: "GET".into(),
            path: get_path.clone(),
            user_id: Some(admin_id.clone()),
            body: Vec::new(),
            ..request()
        };
        async move {
            assert_eq!(runtime.handle_http(app, request).await.unwrap().status, 200);
        }
    })
    .await;
    let anonymous = Api::new(&shim, None);
    let http = measure_async(budget, || {
        let (anonymous, path, body) = (anonymous.clone(), path.clone(), body.clone());
        async move {
            assert_eq!(
                anonymous
                    .post_raw(&path, Some("application/json"), body)
                    .await
                    .text,
                "ok"
            );
        }
    })
    .await;
    // Many senders at once: what the store's commits cost under load.
    let concurrent = {
        let senders = 16;
        let per_sender = 40;
        let started = Instant::now();
        let tasks: Vec<_> = (0..senders)
            .map(|_| {
                let (anonymous, path, body) = (anonymous.clone(), path.clone(), body.clone());
                tokio::spawn(async move {
                    for _ in 0..per_sender {
                        assert_eq!(
                            anonymous
                                .post_raw(&path, Some("application/json"), body.clone())
                                .await
                                .text,
                            "ok"
                        );
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        started.elapsed() / (senders * per_sender)
    };
    let posts = shim.posts().len();
    shim.stop().await.unwrap();
    let fan_out = fan_out().await;

    // 500 senders at once: every call past the pool's size waits in the
    // admission queue (none may be refused here), with a small pool and the
    // default one.
    let ping_beside_spins = ping_beside_spinning_calls().await;
    let queued_small = burst(&body, 500, 4).await;
    let queued_default = burst(
        &body,
        500,
        switchboard_host_shim::config::SwitchboardSettings::default().plugin_pool_size,
    )
    .await;

    println!(
        "incoming webhook, realistic alert payload ({} bytes); {posts} posts written",
        body.len()
    );
    println!("{:<48} {:>12} {:>10}", "path", "per call", "× native");
    for (name, t) in [
        ("native core (decode, translate, split)", native),
        ("component call, read only (fresh instance)", read_only),
        ("component call (fresh instance, SQLite write)", component),
        ("HTTP request to the shim (loopback)", http),
        (
            "HTTP, 16 concurrent senders (wall time / request)",
            concurrent,
        ),
        (
            "HTTP, 500 at once into 4 slots (wall / request)",
            queued_small,
        ),
        (
            "HTTP, 500 at once into 32 slots (wall / request)",
            queued_default,
        ),
        ("GET system/ping beside 2 spinning calls", ping_beside_spins),
    ] {
        println!(
            "{:<48} {:>10.1}µs {:>10.1}",
            name,
            t.as_secs_f64() * 1e6,
            t.as_secs_f64() / native.as_secs_f64()
        );
    }
    println!(
        "outgoing fan-out: one post matching {FAN_OUT_HOOKS} hooks whose receivers take 200 ms; \
         time until every response post exists (target ≤ 400 ms): best {:.0} ms, median {:.0} ms of {}",
        fan_out[0].as_secs_f64() * 1e3,
        fan_out[fan_out.len() / 2].as_secs_f64() * 1e3,
        fan_out.len()
    );
    println!(
        "peak resident memory of this process: {} MiB",
        peak_rss_kib() / 1024
    );
}

const FAN_OUT_HOOKS: usize = 50;

/// One post, `FAN_OUT_HOOKS` matching hooks, receivers answering after
/// 200 ms: from the post's 201 until all their answers are posts. Sorted runs.
async fn fan_out() -> Vec<Duration> {
    let shim = TestShim::builder()
        .config(|c| c.service_settings.allowed_untrusted_internal_connections = "127.0.0.1".into())
        .start()
        .await
        .expect("run `make component` first");
    let admin = Api::admin(&shim);
    let server = CallbackServer::start(|_| {
        Answer::json(serde_json::json!({"text": "fan-out answer"}))
            .after(Duration::from_millis(200))
    })
    .await;
    for h in 0..FAN_OUT_HOOKS {
        let reply = admin
            .post_json(
                "/api/v4/hooks/outgoing",
                &serde_json::json!({"team_id": shim.team.id, "trigger_words": ["fanout"],
                                    "callback_urls": [format!("{}/h{h}", server.url)]}),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.text);
    }
    let answers = || {
        shim.posts()
            .iter()
            .filter(|p| p.message == "fan-out answer")
            .count()
    };
    let mut runs = Vec::new();
    for run in 1..=5 {
        let started = Instant::now();
        let reply = admin
            .post_json(
                "/api/v4/posts",
                &serde_json::json!({"channel_id": shim.town_square.id, "message": "fanout now"}),
            )
            .await;
        assert_eq!(reply.status, 201);
        while answers() < run * FAN_OUT_HOOKS {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "fan-out stalled"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        runs.push(started.elapsed());
    }
    server.stop().await;
    shim.stop().await.unwrap();
    runs.sort();
    runs
}
