//! `MetricsSettings`: Prometheus metrics on a listener of their own, after
//! real traffic through the compiled component; and the enhanced ping
//! (`get_server_status=true`) with the database's and the plugin's health.

use crate::commands::{command_for, execute};
use crate::websocket::Client;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use switchboard_tests::{Answer, Api, Backend, CallbackServer, TestShim, free_port};

/// A shim serving metrics on a free loopback port (returned), which may call
/// loopback receivers and tries a delivery twice, 50 ms apart.
async fn shim_with_metrics(
    extra: impl FnOnce(&mut switchboard_host_shim::config::Config),
) -> (TestShim, u16) {
    let port = free_port();
    let shim = TestShim::builder()
        .config(move |c| {
            c.metrics_settings.enable = true;
            c.metrics_settings.listen_address = format!("127.0.0.1:{port}");
            c.service_settings.allowed_untrusted_internal_connections = "127.0.0.1".into();
            c.delivery_settings.retry_schedule_milliseconds = vec![0, 50];
            c.delivery_settings.jitter_percent = 0;
            extra(c);
        })
        .start()
        .await
        .unwrap();
    (shim, port)
}

/// The metrics page, checked to be served as OpenMetrics text.
async fn scrape(port: u16) -> String {
    let reply = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let content_type = reply.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = reply.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"));
    text
}

/// The value of the sample named exactly `series` (name and labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Scrapes until `series` has a value `ok` accepts (10 s at most).
async fn scrape_until(port: u16, series: &str, ok: impl Fn(f64) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = scrape(port).await;
        if sample(&text, series).is_some_and(&ok) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{series} never reached the value wanted:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_real_traffic_by_template_and_name_no_id_or_secret() {
    let (shim, port) = shim_with_metrics(|_| {}).await;
    let admin = Api::admin(&shim);
    let (user, user_token) = shim.create_user("watcher").unwrap();

    // An incoming webhook post.
    let incoming = admin
        .create_incoming_hook(&shim.town_square.id, json!({}))
        .await;
    let incoming_id = incoming["id"].as_str().unwrap().to_string();
    let posted = admin
        .post_json(
            &format!("/hooks/{incoming_id}"),
            &json!({"text": "from a hook"}),
        )
        .await;
    assert_eq!(posted.status, 200, "{}", posted.text);

    // An outgoing webhook whose receiver always fails: two attempts, settled failed.
    let receiver = CallbackServer::start(|_| Answer::raw(500, None, "")).await;
    let outgoing = admin
        .post_json(
            "/api/v4/hooks/outgoing",
            &json!({"team_id": shim.team.id, "trigger_words": ["alarm"],
                    "callback_urls": [receiver.url.clone()]}),
        )
        .await;
    assert_eq!(outgoing.status, 201, "{}", outgoing.text);
    let outgoing = outgoing.json();
    let said = admin
        .post_json(
            "/api/v4/posts",
            &json!({"channel_id": shim.town_square.id, "message": "alarm bells"}),
        )
        .await;
    assert_eq!(said.status, 201, "{}", said.text);

    // A slash command answered by a backend.
    let backend = Backend::start().await;
    backend.reply_json(json!({"text": "deployed"}));
    let command = command_for(&admin, &shim, &backend, "P").await;
    let ran = execute(&admin, &shim.town_square.id, "/deploy now").await;
    assert_eq!(ran.status, 200, "{}", ran.text);

    // A trap in the plugin.
    let trapped = admin
        .post_raw("/plugins/switchboard/test/trap", None, "")
        .await;
    assert_eq!(trapped.status, 500, "{}", trapped.text);

    // A websocket open while the page is read.
    let socket = Client::with_header(&shim, &user_token).await;

    let text = scrape_until(
        port,
        r#"switchboard_deliveries_settled_total{result="failed"}"#,
        |n| n == 1.0,
    )
    .await;
    let has = |series: &str, ok: &dyn Fn(f64) -> bool| {
        let value = sample(&text, series);
        assert!(value.is_some_and(ok), "{series} = {value:?} in\n{text}");
    };
    has(
        r#"switchboard_http_request_duration_seconds_count{method="POST",route="/hooks/{*rest}",status="200"}"#,
        &|n| n == 1.0,
    );
    has(
        r#"switchboard_http_request_duration_seconds_count{method="POST",route="/api/v4/commands/execute",status="200"}"#,
        &|n| n == 1.0,
    );
    has(
        r#"switchboard_plugin_calls_total{export="http.handle",outcome="ok"}"#,
        &|n| n >= 3.0,
    );
    has(
        r#"switchboard_plugin_calls_total{export="http.handle",outcome="trap"}"#,
        &|n| n == 1.0,
    );
    has(
        r#"switchboard_plugin_calls_total{export="commands.execute",outcome="ok"}"#,
        &|n| n == 1.0,
    );
    has(
        r#"switchboard_plugin_calls_total{export="lifecycle.activate",outcome="ok"}"#,
        &|n| n == 1.0,
    );
    has(
        r#"switchboard_plugin_call_duration_seconds_count{export="hooks.message-has-been-posted"}"#,
        &|n| n >= 1.0,
    );
    has(
        r#"switchboard_plugin_queue_wait_seconds_count{export="http.handle"}"#,
        &|n| n >= 4.0,
    );
    has(
        r#"switchboard_delivery_attempts_total{outcome="http_error"}"#,
        &|n| n == 2.0,
    );
    has(
        "switchboard_delivery_attempt_duration_seconds_count",
        &|n| n == 2.0,
    );
    has("switchboard_deliveries_pending", &|n| n == 0.0);
    has("switchboard_deliveries_failing", &|n| n == 0.0);
    has("switchboard_deliveries_parked", &|n| n == 0.0);
    // The hook's post, and the command's answer is no webhook's.
    has("switchboard_webhook_posts_total", &|n| n == 1.0);
    has("switchboard_websocket_connections", &|n| n == 1.0);
    has("switchboard_websocket_slow_closed_total", &|n| n == 0.0);
    has("switchboard_db_commit_batch_size_count", &|n| n >= 1.0);
    has("switchboard_db_commit_duration_seconds_count", &|n| {
        n >= 1.0
    });
    has("switchboard_db_commit_failures_total", &|n| n == 0.0);
    has(
        &format!(
            r#"switchboard_build_info{{version="{}",api_version="0.3.2",plugin_version="0.1.0"}}"#,
            env!("CARGO_PKG_VERSION")
        ),
        &|n| n == 1.0,
    );

    // Nothing that names a hook, a user, a token, a secret or a path.
    let secrets: Vec<String> = [
        incoming_id.clone(),
        outgoing["id"].as_str().unwrap().to_string(),
        outgoing["token"].as_str().unwrap().to_string(),
        command["id"].as_str().unwrap().to_string(),
        command["token"].as_str().unwrap().to_string(),
        shim.admin_token.clone(),
        shim.admin.id.clone(),
        user.id.clone(),
        user_token.clone(),
        shim.team.id.clone(),
        shim.town_square.id.clone(),
        backend.url.clone(),
        receiver.url.clone(),
    ]
    .into_iter()
    .filter(|s| !s.is_empty())
    .collect();
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()), "{secret} in\n{text}");
    }

    // A closed websocket leaves the gauge.
    drop(socket);
    scrape_until(port, "switchboard_websocket_connections", |n| n == 0.0).await;
    receiver.stop().await;
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn with_metrics_disabled_nothing_listens() {
    let port = free_port();
    let shim = TestShim::builder()
        .config(move |c| {
            assert!(!c.metrics_settings.enable, "off by default");
            c.metrics_settings.listen_address = format!("127.0.0.1:{port}");
        })
        .start()
        .await
        .unwrap();
    let refused = tokio::net::TcpStream::connect(("127.0.0.1", port)).await;
    assert!(refused.is_err(), "something listens on the metrics port");
    // The API has no metrics page either.
    let reply = Api::admin(&shim).get("/metrics").await;
    assert_eq!(reply.status, 404);
    shim.stop().await.unwrap();
}

async fn ping(shim: &TestShim, query: &str) -> (u16, Value, reqwest::header::HeaderMap) {
    let reply = reqwest::get(shim.url(&format!("/api/v4/system/ping{query}")))
        .await
        .unwrap();
    let status = reply.status().as_u16();
    let headers = reply.headers().clone();
    (status, reply.json().await.unwrap(), headers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_status_reports_the_database_and_the_plugin() {
    // One plugin slot and no queue, so a call that holds the slot leaves no
    // room; calls stop after a second.
    let (shim, port) = shim_with_metrics(|c| {
        c.switchboard_settings.plugin_pool_size = 1;
        c.switchboard_settings.plugin_queue_size = 0;
        c.switchboard_settings.plugin_call_timeout_seconds = 1;
    })
    .await;

    // Without the flag the answer is as before.
    let (status, plain, _) = ping(&shim, "").await;
    assert_eq!(status, 200);
    assert_eq!(
        plain,
        json!({"status": "OK", "version": env!("CARGO_PKG_VERSION")})
    );
    let (_, not_true, _) = ping(&shim, "?get_server_status=1").await;
    assert!(not_true.get("database_status").is_none());

    let (status, full, headers) = ping(&shim, "?get_server_status=true").await;
    assert_eq!(status, 200, "{full}");
    assert_eq!(full["status"], "OK");
    assert_eq!(full["database_status"], "OK");
    assert_eq!(full["plugin_status"], "OK");
    assert_eq!(full["ActiveSearchBackend"], "database");
    assert_eq!(headers["database_status"], "OK");

    if shim.is_postgres() {
        // How the database is made unhealthy below is SQLite's own: another
        // process holding the file's write lock.
        eprintln!(
            "skipped on PostgreSQL: the unhealthy database (another process holds SQLite's write lock)"
        );
    } else {
        // Another process holds the database's write lock: unhealthy, a 500
        // unless REST semantics are asked for.
        let db = rusqlite::Connection::open(shim.data_dir().join("switchboard.db")).unwrap();
        db.execute_batch("BEGIN IMMEDIATE").unwrap();
        let (status, locked, headers) = ping(&shim, "?get_server_status=true").await;
        assert_eq!(status, 500, "{locked}");
        assert_eq!(locked["status"], "UNHEALTHY");
        assert_eq!(locked["database_status"], "UNHEALTHY");
        assert_eq!(locked["plugin_status"], "OK");
        assert_eq!(headers["status"], "UNHEALTHY");
        let (status, rest, _) =
            ping(&shim, "?get_server_status=true&use_rest_semantics=true").await;
        assert_eq!(status, 200);
        assert_eq!(rest["database_status"], "UNHEALTHY");
        db.execute_batch("ROLLBACK").unwrap();
        drop(db);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let (status, again, _) = ping(&shim, "?get_server_status=true").await;
            if status == 200 {
                assert_eq!(again["database_status"], "OK");
                break;
            }
            assert!(Instant::now() < deadline, "never healthy again: {again}");
        }
    }

    // A call spinning in the only slot: the plugin cannot take another.
    let admin = Api::admin(&shim);
    let spin = tokio::spawn({
        let admin = Api::admin(&shim);
        async move {
            admin
                .post_raw("/plugins/switchboard/test/spin", None, "")
                .await
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let busy = loop {
        let (status, busy, _) = ping(&shim, "?get_server_status=true").await;
        if busy["plugin_status"] == "UNHEALTHY" {
            assert_eq!(status, 500);
            break busy;
        }
        assert!(Instant::now() < deadline, "the slot was never taken");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(busy["database_status"], "OK");
    // A request meanwhile is refused as busy.
    admin
        .post_raw("/plugins/switchboard/test/trap", None, "")
        .await
        .assert_error(503, "app.plugin.busy.app_error");
    spin.await
        .unwrap()
        .assert_error(500, "app.plugin.call_failed.app_error");
    let (status, after, _) = ping(&shim, "?get_server_status=true").await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["plugin_status"], "OK");

    // The deadline kill and the busy refusal are counted.
    let text = scrape(port).await;
    assert_eq!(
        sample(
            &text,
            r#"switchboard_plugin_calls_total{export="http.handle",outcome="timeout"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"switchboard_plugin_calls_total{export="http.handle",outcome="busy"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        !text.contains(r#"outcome="trap""#),
        "the refused call never ran"
    );
    shim.stop().await.unwrap();
}
