//! `make bench`: issue 14's targets, each measured side by side with its
//! baseline in this one run (the machine is shared, so only ratios measured
//! together hold), printed as one table. Asserts correctness, never speed.
//!
//! Baselines: the same logic compiled natively (the plugin crate linked into
//! the host, `switchboard_tests::native`), and the server's own bare route
//! (`GET /api/v4/system/ping`) for end-to-end throughput.

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::response::IntoResponse;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_host_shim::app::App;
use switchboard_plugin::incoming::payload::parse_incoming;
use switchboard_plugin::slack::text::{
    announcements_and_mentions, link_attachments, links_strict, translate_attachments,
};
use switchboard_plugin::split::split_post;
use switchboard_tests::load::{self, Target};
use switchboard_tests::native::NativeHost;
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

/// One line of the table.
struct Row {
    target: &'static str,
    measure: String,
    figure: String,
    goal: String,
    /// The figure over its baseline (or its bound), as printed.
    ratio: String,
    met: Option<bool>,
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// Latencies of `n` sequential runs of `f` (after a warm-up), sorted.
async fn sample<F, Fut>(n: usize, mut f: F) -> Vec<Duration>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    for _ in 0..n / 10 + 10 {
        f().await;
    }
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        f().await;
        times.push(started.elapsed());
    }
    times.sort();
    times
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

fn mean(sorted: &[Duration]) -> Duration {
    sorted.iter().sum::<Duration>() / sorted.len() as u32
}

/// Mean time of `f` on a blocking thread (the native host's calls block).
async fn sample_blocking(n: usize, f: impl FnMut() + Send + 'static) -> Duration {
    tokio::task::spawn_blocking(move || {
        let mut f = f;
        for _ in 0..n / 10 + 10 {
            f();
        }
        let started = Instant::now();
        for _ in 0..n {
            f();
        }
        started.elapsed() / n as u32
    })
    .await
    .unwrap()
}

fn plugin_request(
    method: &str,
    path: &str,
    body: &str,
    user_id: Option<String>,
) -> switchboard_plugin::api::Request {
    switchboard_plugin::api::Request {
        method: method.into(),
        path: path.into(),
        query: String::new(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.as_bytes().to_vec(),
        body_too_large: false,
        user_id,
        request_id: "bench".into(),
    }
}

fn wasm_request(
    r: &switchboard_plugin::api::Request,
) -> switchboard_host_shim::runtime::PluginRequest {
    switchboard_host_shim::runtime::PluginRequest {
        method: r.method.clone(),
        path: r.path.clone(),
        query: r.query.clone(),
        headers: r
            .headers
            .iter()
            .map(
                |(name, value)| switchboard_host_shim::runtime::PluginHeader {
                    name: name.clone(),
                    value: value.clone(),
                },
            )
            .collect(),
        body: r.body.clone(),
        body_too_large: false,
        user_id: r.user_id.clone(),
        request_id: r.request_id.clone(),
    }
}

/// Targets 1 and 2: calls into the component without HTTP, beside the same
/// logic natively over the same host.
async fn calls(rows: &mut Vec<Row>) {
    let shim = TestShim::start().await.expect("run `make component` first");
    let app = shim.shim.app.clone();
    let runtime = shim.shim.runtime.clone();

    // 1. A trivial export in a fresh instance from the InstancePre.
    let trivial = sample(20_000, || {
        let (runtime, app) = (runtime.clone(), app.clone());
        async move { runtime.configuration_changed(app).await.unwrap() }
    })
    .await;
    let (p50, p99) = (quantile(&trivial, 0.5), quantile(&trivial, 0.99));
    rows.push(Row {
        target: "1",
        measure: "trivial export, fresh instance: p50".into(),
        figure: us(p50),
        goal: "≤ 10 µs".into(),
        ratio: format!("{:.2} × bound", p50.as_secs_f64() / 10e-6),
        met: Some(p50 <= Duration::from_micros(10)),
    });
    rows.push(Row {
        target: "1",
        measure: "trivial export, fresh instance: p99".into(),
        figure: us(p99),
        goal: "≤ 50 µs".into(),
        ratio: format!("{:.2} × bound", p99.as_secs_f64() / 50e-6),
        met: Some(p99 <= Duration::from_micros(50)),
    });

    // 2. The incoming webhook's plugin call: read-only (the hook read and
    // served, as `GET /api/v4/hooks/incoming/{id}`), and the full
    // `POST /hooks/{id}` with its committed post, each beside the same
    // request through the natively linked plugin on the same host.
    let hook = Api::admin(&shim)
        .create_incoming_hook(&shim.town_square.id, serde_json::json!({}))
        .await;
    let hook_id = hook["id"].as_str().unwrap().to_string();
    let body = payload();
    let read = plugin_request(
        "GET",
        &format!("/api/v4/hooks/incoming/{hook_id}"),
        "",
        Some(shim.admin.id.clone()),
    );
    let write = plugin_request("POST", &format!("/hooks/{hook_id}"), &body, None);
    let native = Arc::new(NativeHost { app: app.clone() });
    for (name, request, status, goal) in [
        ("read-only", read, 200, 3.0),
        ("with its SQLite write", write, 200, 2.0),
    ] {
        let wasm_times = sample(3_000, || {
            let (runtime, app, request) = (runtime.clone(), app.clone(), wasm_request(&request));
            async move {
                let response = runtime.handle_http(app, request).await.unwrap();
                assert_eq!(response.status, status);
            }
        })
        .await;
        let wasm = mean(&wasm_times);
        let native_time = sample_blocking(3_000, {
            let (native, request) = (native.clone(), request.clone());
            move || {
                let response = switchboard_plugin::routes::route(native.as_ref(), &request);
                assert_eq!(response.status, status);
            }
        })
        .await;
        let ratio = wasm.as_secs_f64() / native_time.as_secs_f64();
        rows.push(Row {
            target: "2",
            measure: format!("incoming webhook call, {name}: wasm / native"),
            figure: format!("{} / {}", us(wasm), us(native_time)),
            goal: format!("≤ {goal} × native"),
            ratio: format!("{ratio:.2} ×"),
            met: Some(ratio <= goal),
        });
    }

    // For reference: the plugin's pure core natively (decode, translate,
    // split), no host at all.
    let core = sample_blocking(20_000, move || {
        let request = parse_incoming(Some("application/json"), body.as_bytes()).unwrap();
        let no_users = |_: &str| None;
        let text = links_strict(&announcements_and_mentions(&request.text, &no_users));
        let mut attachments = request.attachments;
        translate_attachments(&mut attachments, &no_users);
        link_attachments(&mut attachments);
        std::hint::black_box(
            split_post(&text, &serde_json::Map::new(), attachments, 16383, 760_000).unwrap(),
        );
    })
    .await;
    rows.push(Row {
        target: "2",
        measure: "  (reference: the pure core natively, no host)".into(),
        figure: us(core),
        goal: String::new(),
        ratio: String::new(),
        met: None,
    });
    shim.stop().await.unwrap();
}

/// The shim binary built beside this benchmark (same profile).
fn shim_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let path = dir.join("host-shim");
    assert!(
        path.exists(),
        "{} is missing: `make bench` builds it",
        path.display()
    );
    path
}

fn workspace() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A real `host-shim` process on a data directory; killed when dropped.
struct Process {
    child: std::process::Child,
    addr: SocketAddr,
}

impl Process {
    /// Starts it and returns once it has answered a ping, with the time that took.
    async fn start(data: &std::path::Path) -> (Process, Duration) {
        let port = switchboard_tests::free_port();
        let config = serde_json::json!({
            "ServiceSettings": {
                "ListenAddress": format!("127.0.0.1:{port}"),
                "SiteURL": format!("http://127.0.0.1:{port}"),
            },
            "SwitchboardSettings": {"MaxConnections": 8192},
        });
        std::fs::create_dir_all(data).unwrap();
        let config_path = data.join("bench-config.json");
        if !config_path.exists() {
            std::fs::write(&config_path, config.to_string()).unwrap();
        }
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
        let addr: SocketAddr = config["ServiceSettings"]["ListenAddress"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let log = std::fs::File::create(data.join("bench.log")).unwrap();
        let started = Instant::now();
        let child = std::process::Command::new(shim_binary())
            .arg("--data")
            .arg(data)
            .arg("--config")
            .arg(&config_path)
            .arg("--manifest")
            .arg(workspace().join("manifest.json"))
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::from(log))
            .spawn()
            .expect("spawning host-shim");
        let process = Process { child, addr };
        let deadline = started + Duration::from_secs(120);
        loop {
            if ping_once(addr).await {
                return (process, started.elapsed());
            }
            assert!(Instant::now() < deadline, "host-shim never answered");
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
    }

    fn api(&self, data: &std::path::Path) -> Api {
        let token = std::fs::read_to_string(data.join("admin-token")).unwrap();
        Api::at(&format!("http://{}", self.addr), Some(token.trim()))
    }

    /// Resident memory now, and its peak so far, in KiB.
    fn memory_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn ping_once(addr: SocketAddr) -> bool {
    let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    let io = hyper_util::rt::TokioIo::new(stream);
    let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake(io).await else {
        return false;
    };
    tokio::spawn(conn);
    let request = hyper::Request::get("/api/v4/system/ping")
        .header("host", addr.to_string())
        .body(http_body_util::Empty::<Bytes>::new())
        .unwrap();
    sender
        .send_request(request)
        .await
        .is_ok_and(|r| r.status() == 200)
}

const CONNECTIONS: usize = 64;
const RUN: Duration = Duration::from_secs(3);

/// Webhook and ping load against one server, alternated twice; the better
/// run of each. Returns (hooks, ping).
async fn hooks_beside_ping(addr: SocketAddr, hook_path: &str) -> (load::Report, load::Report) {
    let hook = Target::post_json(hook_path, payload());
    let ping = Target::get("/api/v4/system/ping");
    let mut best: (Option<load::Report>, Option<load::Report>) = (None, None);
    for _ in 0..2 {
        let p = load::run(addr, CONNECTIONS, RUN, ping.clone()).await;
        let h = load::run(addr, CONNECTIONS, RUN, hook.clone()).await;
        assert_eq!(h.failures + p.failures, 0, "every request must succeed");
        if best
            .0
            .as_ref()
            .is_none_or(|b| h.throughput() > b.throughput())
        {
            best.0 = Some(h);
        }
        if best
            .1
            .as_ref()
            .is_none_or(|b| p.throughput() > b.throughput())
        {
            best.1 = Some(p);
        }
    }
    (best.0.unwrap(), best.1.unwrap())
}

fn throughput_rows(
    rows: &mut Vec<Row>,
    what: &str,
    hooks: &load::Report,
    ping: &load::Report,
    met: bool,
) {
    let ratio = hooks.throughput() / ping.throughput();
    rows.push(Row {
        target: "3",
        measure: format!("{what}: webhooks / ping, {CONNECTIONS} connections"),
        figure: format!("{:.0} / {:.0} req/s", hooks.throughput(), ping.throughput()),
        goal: if met {
            "≥ 0.25 × ping".into()
        } else {
            String::new()
        },
        ratio: format!("{ratio:.3} × ping"),
        met: met.then_some(ratio >= 0.25),
    });
    let p99 = hooks.quantile(0.99);
    rows.push(Row {
        target: "3",
        measure: format!("{what}: webhook latency p50 / p99"),
        figure: format!("{} / {}", ms(hooks.quantile(0.5)), ms(p99)),
        goal: if met {
            "p99 ≤ 10 ms".into()
        } else {
            String::new()
        },
        ratio: format!("{:.2} × bound", p99.as_secs_f64() / 10e-3),
        met: met.then_some(p99 <= Duration::from_millis(10)),
    });
}

/// Targets 3, 4 and 5 against real `host-shim` processes.
async fn processes(rows: &mut Vec<Row>) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    // 4. Start-up: cold (empty data directory: first-start setup and the
    // component compiled), then warm (the compiled cache), best of three.
    let (first, cold) = Process::start(&data).await;
    drop(first);
    let mut warm = Duration::MAX;
    for _ in 0..3 {
        let (p, t) = Process::start(&data).await;
        drop(p);
        warm = warm.min(t);
    }
    rows.push(Row {
        target: "4",
        measure: "start to first answer, warm (compiled cache)".into(),
        figure: ms(warm),
        goal: "≤ 150 ms".into(),
        ratio: format!("{:.2} × bound", warm.as_secs_f64() / 0.150),
        met: Some(warm <= Duration::from_millis(150)),
    });
    rows.push(Row {
        target: "4",
        measure: "start to first answer, cold (first start, compile)".into(),
        figure: ms(cold),
        goal: "reported".into(),
        ratio: String::new(),
        met: None,
    });

    let (process, _) = Process::start(&data).await;
    let api = process.api(&data);
    let team = api.get("/api/v4/teams").await.json()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let town_square = api
        .get(&format!("/api/v4/teams/{team}/channels/name/town-square"))
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let hook = api
        .create_incoming_hook(&town_square, serde_json::json!({}))
        .await;
    let hook_path = format!("/hooks/{}", hook["id"].as_str().unwrap());
    // 5. Idle memory, measured before any load.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (idle, _) = process.memory_kib();

    // 3. End to end, durable: each 200 is a committed post.
    let (hooks, ping) = hooks_beside_ping(process.addr, &hook_path).await;
    throughput_rows(rows, "process, wasm", &hooks, &ping, true);

    // 5. 1,000 webhook requests at once, the peak resident memory.
    let burst = load::run(
        process.addr,
        1_000,
        Duration::from_secs(2),
        Target::post_json(&hook_path, payload()),
    )
    .await;
    assert_eq!(burst.failures, 0, "every request must succeed");
    let (_, peak) = process.memory_kib();
    rows.push(Row {
        target: "5",
        measure: "resident memory: idle / peak under 1,000 concurrent webhooks".into(),
        figure: format!("{} / {} MiB", idle / 1024, peak / 1024),
        goal: "reported".into(),
        ratio: format!("{:.0} req/s", burst.throughput()),
        met: None,
    });
    drop(process);
}

/// Target 3's native baseline: the same server, but `POST /hooks/{id}` runs
/// the plugin crate linked natively; everything else is the shim's router.
async fn native_server(rows: &mut Vec<Row>) {
    let shim = TestShim::start().await.expect("run `make component` first");
    let hook = Api::admin(&shim)
        .create_incoming_hook(&shim.town_square.id, serde_json::json!({}))
        .await;
    let hook_path = format!("/hooks/{}", hook["id"].as_str().unwrap());
    let native = axum::Router::new()
        .route("/hooks/{id}", axum::routing::post(native_hook))
        .with_state(shim.shim.app.clone())
        .fallback_service(switchboard_host_shim::server::router(shim.shim.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let native_addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(switchboard_host_shim::server::serve_connections(
        listener,
        native,
        switchboard_host_shim::server::ConnectionLimits {
            max_connections: 8192,
            header_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
        },
        async {
            let _ = stopped.await;
        },
    ));
    let wasm_addr: SocketAddr = shim.url.trim_start_matches("http://").parse().unwrap();
    let (wasm_hooks, wasm_ping) = hooks_beside_ping(wasm_addr, &hook_path).await;
    let (native_hooks, native_ping) = hooks_beside_ping(native_addr, &hook_path).await;
    throughput_rows(rows, "in-process, wasm", &wasm_hooks, &wasm_ping, false);
    throughput_rows(
        rows,
        "in-process, native",
        &native_hooks,
        &native_ping,
        false,
    );
    rows.push(Row {
        target: "3",
        measure: "what the sandbox costs end to end: wasm / native throughput".into(),
        figure: format!(
            "{:.0} / {:.0} req/s",
            wasm_hooks.throughput(),
            native_hooks.throughput()
        ),
        goal: String::new(),
        ratio: format!(
            "{:.2} ×",
            wasm_hooks.throughput() / native_hooks.throughput()
        ),
        met: None,
    });
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    shim.stop().await.unwrap();
}

async fn native_hook(
    State(app): State<Arc<App>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> axum::response::Response {
    let request = plugin_request("POST", &format!("/hooks/{id}"), "", None);
    let request = switchboard_plugin::api::Request {
        body: body.to_vec(),
        ..request
    };
    let response = tokio::task::spawn_blocking(move || {
        switchboard_plugin::routes::route(&NativeHost { app }, &request)
    })
    .await
    .unwrap();
    (
        axum::http::StatusCode::from_u16(response.status).unwrap(),
        response.body,
    )
        .into_response()
}

/// Target 5's per-instance figure: what one pool slot holds resident once
/// an instance has run in it (slots are reset in place, not decommitted, so
/// that is what each live or warm instance costs): this process's resident
/// memory after a call has run in every slot at once (spinning in wasm until
/// its deadline), over the same before, per slot.
async fn per_instance(rows: &mut Vec<Row>) {
    let shim = TestShim::builder()
        .config(|c| {
            c.service_settings.enable_testing = true;
            c.switchboard_settings.plugin_call_timeout_seconds = 1;
        })
        .start()
        .await
        .unwrap();
    let slots = shim.shim.runtime.options().max_concurrent_calls;
    let rss = || {
        std::fs::read_to_string("/proc/self/status")
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let admin = Api::admin(&shim);
    assert_eq!(admin.get("/api/v4/hooks/incoming").await.status, 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = rss();
    let calls: Vec<_> = (0..slots)
        .map(|_| {
            let admin = admin.clone();
            tokio::spawn(async move {
                admin
                    .post_raw("/plugins/switchboard/test/spin", None, "")
                    .await
                    .status
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let live = rss();
    for call in calls {
        assert_eq!(call.await.unwrap(), 500);
    }
    let per = live.saturating_sub(before) as f64 / f64::from(slots);
    rows.push(Row {
        target: "5",
        measure: format!("resident memory per live instance ({slots} at once)"),
        figure: format!("{per:.0} KiB"),
        goal: "≤ 1 MiB".into(),
        ratio: format!("{:.2} × bound", per / 1024.0),
        met: Some(per <= 1024.0),
    });
    shim.stop().await.unwrap();
}

const FAN_OUT_HOOKS: usize = 50;

/// Target 6's stored volume: hooks (half incoming, half outgoing) and posts.
const SCALE_HOOKS: usize = 100_000;
const SCALE_POSTS: usize = 1_000_000;

/// The three calls whose cost could grow with what is stored: an incoming
/// webhook (`POST /hooks/{id}`, its post committed), a post's outgoing
/// matching (the post hook for a post whose first word no hook has), and
/// one page of a team's outgoing hooks. Means, in-process.
async fn scale_calls(shim: &TestShim, hook_id: &str) -> [Duration; 3] {
    let (app, runtime) = (shim.shim.app.clone(), shim.shim.runtime.clone());
    let webhook = plugin_request("POST", &format!("/hooks/{hook_id}"), &payload(), None);
    let mut listing = plugin_request(
        "GET",
        "/api/v4/hooks/outgoing",
        "",
        Some(shim.admin.id.clone()),
    );
    // A page smaller than the small store, so both answers hold as many hooks.
    listing.query = format!("team_id={}&per_page=5", shim.team.id);
    let post = switchboard_host_shim::store::Post {
        id: switchboard_plugin::ids::new_id(),
        create_at: 1,
        update_at: 1,
        user_id: shim.admin.id.clone(),
        channel_id: shim.town_square.id.clone(),
        message: "nothing matches this".into(),
        props: "{}".into(),
        metadata: "{}".into(),
        ..Default::default()
    };
    let mut out = [Duration::ZERO; 3];
    for (i, request) in [(0, &webhook), (2, &listing)] {
        let times = sample(2_000, || {
            let (runtime, app, request) = (runtime.clone(), app.clone(), wasm_request(request));
            async move {
                let response = runtime.handle_http(app, request).await.unwrap();
                assert_eq!(response.status, 200);
            }
        })
        .await;
        out[i] = mean(&times);
    }
    let times = sample(2_000, || {
        let (runtime, app) = (runtime.clone(), app.clone());
        let post = switchboard_host_shim::runtime::bindings_post(post.clone());
        async move { runtime.message_has_been_posted(app, post).await.unwrap() }
    })
    .await;
    out[1] = mean(&times);
    out
}

/// Target 6: [`scale_calls`] with 10 hooks stored, then again with
/// `SCALE_HOOKS` hooks (in other teams, or this team's with other trigger
/// words) and `SCALE_POSTS` posts. Flat means within 1.5 × of the small store.
async fn scale(rows: &mut Vec<Row>) {
    use switchboard_plugin::incoming::IncomingWebhook;
    use switchboard_plugin::outgoing::OutgoingWebhook;
    let shim = TestShim::start().await.expect("run `make component` first");
    let admin = Api::admin(&shim);
    let hook = admin
        .create_incoming_hook(&shim.town_square.id, serde_json::json!({}))
        .await;
    let hook_id = hook["id"].as_str().unwrap().to_string();
    for i in 0..9 {
        let reply = admin
            .post_json(
                "/api/v4/hooks/outgoing",
                &serde_json::json!({"team_id": shim.team.id, "trigger_words": [format!("w{i}")],
                                    "callback_urls": ["http://127.0.0.1:9/h"]}),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.text);
    }
    let small = scale_calls(&shim, &hook_id).await;

    // Seed the store directly, as an older version would have left it (no
    // index entries: the first lookups index it, once).
    let store = &shim.shim.app.store;
    let teams: Vec<String> = (0..100)
        .map(|_| switchboard_plugin::ids::new_id())
        .collect();
    let new_id = switchboard_plugin::ids::new_id;
    let mut entries = Vec::with_capacity(SCALE_HOOKS);
    for i in 0..SCALE_HOOKS / 2 {
        let incoming = IncomingWebhook {
            id: new_id(),
            team_id: teams[i % teams.len()].clone(),
            channel_id: new_id(),
            user_id: shim.admin.id.clone(),
            create_at: i as i64,
            update_at: i as i64,
            ..Default::default()
        };
        entries.push((
            format!("incoming_hook/{}", incoming.id),
            serde_json::to_vec(&incoming).unwrap(),
        ));
        // One in five in this team, with a trigger word of its own.
        let team = if i % 5 == 0 {
            shim.team.id.clone()
        } else {
            teams[i % teams.len()].clone()
        };
        let outgoing = OutgoingWebhook {
            id: new_id(),
            token: new_id(),
            creator_id: shim.admin.id.clone(),
            team_id: team,
            trigger_words: vec![format!("word{i}")],
            trigger_when: (i % 2) as i64,
            callback_urls: vec!["http://127.0.0.1:9/h".into()],
            create_at: i as i64,
            update_at: i as i64,
            ..Default::default()
        };
        entries.push((
            format!("outgoing_hook/{}", outgoing.id),
            serde_json::to_vec(&outgoing).unwrap(),
        ));
    }
    for chunk in entries.chunks(10_000) {
        store.kv_import(chunk.to_vec()).unwrap();
    }
    for marker in ["incoming_index/!built", "outgoing_index/!built"] {
        store.kv_delete(marker).unwrap();
    }
    let mut batch = Vec::with_capacity(50_000);
    for i in 0..SCALE_POSTS {
        batch.push(switchboard_host_shim::store::Post {
            id: new_id(),
            create_at: i as i64,
            update_at: i as i64,
            user_id: shim.admin.id.clone(),
            channel_id: shim.town_square.id.clone(),
            message: format!("seeded post {i}"),
            props: "{}".into(),
            metadata: "{}".into(),
            ..Default::default()
        });
        if batch.len() == 50_000 {
            store.import_posts(std::mem::take(&mut batch)).unwrap();
        }
    }
    store.import_posts(batch).unwrap();
    // The lookups after the upgrade index what was stored, a chunk per call
    // (once), answering from a scan meanwhile.
    let indexing = Instant::now();
    let mut lookups = 0;
    for (path, marker) in [
        ("outgoing", "outgoing_index/!built"),
        ("incoming", "incoming_index/!built"),
    ] {
        while store.kv_get(marker).unwrap().is_none() {
            let listed = admin
                .get(&format!(
                    "/api/v4/hooks/{path}?team_id={}&per_page=1",
                    shim.team.id
                ))
                .await;
            assert_eq!(listed.status, 200, "{}", listed.text);
            lookups += 1;
        }
    }
    let indexing = indexing.elapsed();
    let large = scale_calls(&shim, &hook_id).await;
    shim.stop().await.unwrap();

    for (i, name) in [
        "incoming webhook",
        "a post's outgoing matching",
        "a page of a team's outgoing hooks",
    ]
    .iter()
    .enumerate()
    {
        let ratio = large[i].as_secs_f64() / small[i].as_secs_f64();
        rows.push(Row {
            target: "6",
            measure: format!("{name}: 10 hooks / 100k hooks + 1M posts"),
            figure: format!("{} / {}", us(small[i]), us(large[i])),
            goal: "flat: ≤ 1.5 ×".into(),
            ratio: format!("{ratio:.2} ×"),
            met: Some(ratio <= 1.5),
        });
    }
    rows.push(Row {
        target: "6",
        measure: format!("  (once, after an upgrade: indexing 100k stored hooks, {lookups} calls)"),
        figure: ms(indexing),
        goal: String::new(),
        ratio: String::new(),
        met: None,
    });
}

/// Target 7: one post, `FAN_OUT_HOOKS` matching hooks, receivers answering
/// after 200 ms: from the post's 201 until all their answers are posts.
async fn fan_out(rows: &mut Vec<Row>) {
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
    let median = runs[runs.len() / 2];
    rows.push(Row {
        target: "7",
        measure: format!("fan-out: {FAN_OUT_HOOKS} hooks, 200 ms receivers, median of 5"),
        figure: ms(median),
        goal: "≤ 400 ms".into(),
        ratio: format!("{:.2} × bound", median.as_secs_f64() / 0.4),
        met: Some(median <= Duration::from_millis(400)),
    });
}

/// A native sender's request (issue 24): GitHub's push through its source at
/// `/hooks/{id}/github`, beside a Slack-format post of the same body size to the same
/// hook, both through the component with their SQLite write.
async fn sources(rows: &mut Vec<Row>) {
    let shim = TestShim::start().await.expect("run `make component` first");
    let (app, runtime) = (shim.shim.app.clone(), shim.shim.runtime.clone());
    let hook = Api::admin(&shim)
        .create_incoming_hook(&shim.town_square.id, serde_json::json!({}))
        .await;
    let hook_id = hook["id"].as_str().unwrap().to_string();
    let fixture: serde_json::Value = serde_json::from_str(include_str!(
        "../../plugin/src/sources/fixtures/github/push.json"
    ))
    .unwrap();
    let push_body = fixture["body"].to_string();
    let mut push = plugin_request(
        "POST",
        &format!("/hooks/{hook_id}/github"),
        &push_body,
        None,
    );
    push.headers.push(("x-github-event".into(), "push".into()));
    // The same number of bytes as Slack-format text.
    let filler = "x".repeat(push_body.len().saturating_sub(r#"{"text":""}"#.len()));
    let slack_body = serde_json::json!({ "text": filler }).to_string();
    let slack = plugin_request("POST", &format!("/hooks/{hook_id}"), &slack_body, None);
    let mut means = Vec::new();
    for request in [&push, &slack] {
        let times = sample(2_000, || {
            let (runtime, app, request) = (runtime.clone(), app.clone(), wasm_request(request));
            async move {
                let response = runtime.handle_http(app, request).await.unwrap();
                assert_eq!(response.status, 200);
            }
        })
        .await;
        means.push(mean(&times));
    }
    rows.push(Row {
        target: "S",
        measure: format!(
            "GitHub push via its source / Slack post, {} bytes each, wasm",
            push_body.len()
        ),
        figure: format!("{} / {}", us(means[0]), us(means[1])),
        goal: "reported".into(),
        ratio: format!("{:.2} ×", means[0].as_secs_f64() / means[1].as_secs_f64()),
        met: None,
    });
    shim.stop().await.unwrap();
}

/// Transforms (issue 25), per request through the component with its SQLite
/// write, in one run: an Uptime Kuma notification shaped by a template hook
/// and by the example component (examples/transforms, a fresh sandboxed
/// instance each call), beside the Slack-format alert to a plain hook; and
/// the component call alone (`Transforms::run`, no plugin, no post).
async fn transforms(rows: &mut Vec<Row>) {
    let shim = TestShim::builder()
        .config(|c| c.service_settings.enable_post_username_override = true)
        .start()
        .await
        .expect("run `make component` first");
    let (app, runtime) = (shim.shim.app.clone(), shim.shim.runtime.clone());
    let api = Api::admin(&shim);
    let example = workspace().join("target/wasm32-wasip2/release/uptime_kuma_transform.wasm");
    let component_id = shim
        .load_transform("uptime kuma", &example)
        .await
        .expect("run `make component` first (it builds the example transform)");
    let template = serde_json::json!({
        "when": "body.heartbeat.status in [0, 1]",
        "username": "Uptime Kuma",
        "attachments": [{
            "fallback": "{{ body.msg }}",
            "color": "{{ '#d24b4e' if body.heartbeat.status == 0 else '#3db887' }}",
            "title": "{{ body.monitor.name }} is {{ 'down' if body.heartbeat.status == 0 else 'up' }}",
            "title_link": "{{ body.monitor.url }}",
            "fields": [
                {"title": "Error", "value": "{{ body.heartbeat.msg }}", "short": false},
                {"title": "When", "value": "{{ body.heartbeat.localDateTime }} ({{ body.heartbeat.timezone }})", "short": true}
            ]
        }]
    });
    let mut hooks = Vec::new();
    for transform in [
        serde_json::json!({"template": template}),
        serde_json::json!({"component": component_id}),
        serde_json::Value::Null,
    ] {
        let extra = match transform {
            serde_json::Value::Null => serde_json::json!({}),
            t => serde_json::json!({ "transform": t }),
        };
        let hook = api.create_incoming_hook(&shim.town_square.id, extra).await;
        hooks.push(hook["id"].as_str().unwrap().to_string());
    }
    let down = include_str!("../../examples/transforms/samples/down.json");
    let call = switchboard_host_shim::transforms::Request {
        method: "POST".into(),
        path: format!("/hooks/{}", hooks[1]),
        headers: vec![("content-type".into(), "application/json".into())],
        body: down.as_bytes().to_vec(),
        ..Default::default()
    };
    // What the component makes of it, posted as it is: the same post without a transform.
    let shaped = app
        .transforms
        .run(&app, &component_id, call.clone())
        .await
        .unwrap()
        .unwrap();
    // Measured first, so a later row cannot owe its cost to the database having grown.
    let requests = [
        plugin_request("POST", &format!("/hooks/{}", hooks[2]), &shaped, None),
        plugin_request("POST", &format!("/hooks/{}", hooks[2]), &payload(), None),
        plugin_request("POST", &format!("/hooks/{}", hooks[0]), down, None),
        plugin_request("POST", &format!("/hooks/{}", hooks[1]), down, None),
    ];
    let mut means = Vec::new();
    for request in &requests {
        let before = shim.posts().len();
        let times = sample(1_000, || {
            let (runtime, app, request) = (runtime.clone(), app.clone(), wasm_request(request));
            async move {
                let response = runtime.handle_http(app, request).await.unwrap();
                assert_eq!(response.status, 200);
            }
        })
        .await;
        // Every call posted (the warm-up's too): nothing was dropped or refused.
        assert_eq!(shim.posts().len() - before, 1_000 + 1_000 / 10 + 10);
        means.push(mean(&times));
    }
    let alone = sample(1_000, || {
        let (app, call, id) = (app.clone(), call.clone(), component_id.clone());
        async move {
            assert!(app.transforms.run(&app, &id, call).await.unwrap().is_some());
        }
    })
    .await;
    let [same_post, alert, template_hook, component_hook] =
        [means[0], means[1], means[2], means[3]];
    let plain = same_post.as_secs_f64();
    rows.push(Row {
        target: "T1",
        measure: "template hook (Uptime Kuma down) / plain hook, the same post, wasm".into(),
        figure: format!("{} / {}", us(template_hook), us(same_post)),
        goal: "reported".into(),
        ratio: format!("{:.2} ×", template_hook.as_secs_f64() / plain),
        met: None,
    });
    rows.push(Row {
        target: "T1",
        measure: "  (reference: the Slack alert to the plain hook)".into(),
        figure: us(alert),
        goal: String::new(),
        ratio: format!("{:.2} ×", alert.as_secs_f64() / plain),
        met: None,
    });
    rows.push(Row {
        target: "T2",
        measure: "component hook (examples/transforms, fresh instance) / plain hook".into(),
        figure: format!("{} / {}", us(component_hook), us(same_post)),
        goal: "reported".into(),
        ratio: format!("{:.2} ×", component_hook.as_secs_f64() / plain),
        met: None,
    });
    rows.push(Row {
        target: "T3",
        measure: "the component call alone (fresh sandboxed instance), mean".into(),
        figure: us(mean(&alone)),
        goal: "reported".into(),
        ratio: format!("{:.2} × plain hook", mean(&alone).as_secs_f64() / plain),
        met: None,
    });
    shim.stop().await.unwrap();
}

/// Whether the group `name` runs: all of them, or those `SWITCHBOARD_BENCH` names
/// (comma-separated: calls, processes, native, instances, scale, fanout, sources,
/// transforms).
fn wanted(name: &str) -> bool {
    match std::env::var("SWITCHBOARD_BENCH") {
        Ok(only) if !only.trim().is_empty() => only.split(',').any(|g| g.trim() == name),
        _ => true,
    }
}

#[tokio::main]
async fn main() {
    switchboard_host_shim::harness::install_tls_provider();
    let mut rows = Vec::new();
    if wanted("calls") {
        calls(&mut rows).await;
    }
    if wanted("processes") {
        processes(&mut rows).await;
    }
    if wanted("native") {
        native_server(&mut rows).await;
    }
    if wanted("instances") {
        per_instance(&mut rows).await;
    }
    if wanted("scale") {
        scale(&mut rows).await;
    }
    if wanted("fanout") {
        fan_out(&mut rows).await;
    }
    if wanted("sources") {
        sources(&mut rows).await;
    }
    if wanted("transforms") {
        transforms(&mut rows).await;
    }
    rows.sort_by_key(|r| r.target);

    println!();
    println!(
        "Switchboard benchmarks (issue 14), {} bytes of alert payload, one run",
        payload().len()
    );
    println!(
        "{:<3} {:<64} {:>24} {:>22} {:>16} {:>4}",
        "#", "measure", "figure", "target", "ratio", "met"
    );
    for row in rows {
        println!(
            "{:<3} {:<64} {:>24} {:>22} {:>16} {:>4}",
            row.target,
            row.measure,
            row.figure,
            row.goal,
            row.ratio,
            match row.met {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "",
            }
        );
    }
}
