//! Deliveries across real `host-shim` processes on one data directory: a
//! SIGKILL with deliveries pending loses none, nor one before a post's hook
//! ran, and two processes sharing the database never send the same
//! attempt twice. Needs the binary
//! (`cargo build -p switchboard-host-shim`; `make test` builds it).
//! On a PostgreSQL run (`SWITCHBOARD_DB=postgres`) the processes on one data
//! directory share a database of the run's test server instead of the
//! SQLite file in it.

use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard_tests::{Answer, Api, CallbackServer};

pub(crate) fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub(crate) fn binary() -> PathBuf {
    let path = workspace().join("target/debug/host-shim");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p switchboard-host-shim` (make test does)",
        path.display()
    );
    path
}

/// The at-rest key of every process of these tests: every process on one
/// database needs the same, or it cannot open what the others sealed.
const KEY: &str = "one-key-for-every-process-of-this-test";

/// One running `host-shim`; killed (SIGKILL) when dropped.
pub(crate) struct Process {
    pub(crate) child: Child,
    pub(crate) url: String,
}

impl Process {
    /// Starts the binary on `data` with its own config file and port, and
    /// waits until it answers (the first start compiles the component).
    async fn start(data: &Path, name: &str, schedule: &[u64]) -> Process {
        Process::start_with(data, name, schedule, json!({})).await
    }

    /// [`Process::start`] with more settings: each section of `more` is
    /// merged into the config's.
    pub(crate) async fn start_with(
        data: &Path,
        name: &str,
        schedule: &[u64],
        more: Value,
    ) -> Process {
        Process::start_env(data, name, schedule, more, &[]).await
    }

    /// [`Process::start_with`] with environment variables set for the process.
    pub(crate) async fn start_env(
        data: &Path,
        name: &str,
        schedule: &[u64],
        more: Value,
        env: &[(&str, &str)],
    ) -> Process {
        let port = switchboard_tests::free_port();
        let mut config = json!({
            "ServiceSettings": {
                "ListenAddress": format!("127.0.0.1:{port}"),
                "SiteURL": format!("http://127.0.0.1:{port}"),
                "AllowedUntrustedInternalConnections": "127.0.0.1",
                "OutgoingIntegrationRequestsTimeout": 2,
            },
            "DeliverySettings": {
                "RetryScheduleMilliseconds": schedule,
                "JitterPercent": 0,
            },
            "SqlSettings": {"AtRestEncryptKey": KEY},
        });
        if let Some(data_source) = postgres_for(data).await {
            config["SqlSettings"]["DriverName"] = json!("postgres");
            config["SqlSettings"]["DataSource"] = json!(data_source);
        }
        for (section, values) in more.as_object().into_iter().flatten() {
            let into = config[section.as_str()].as_object_mut();
            match (into, values.as_object()) {
                (Some(into), Some(values)) => into.extend(values.clone()),
                _ => config[section.as_str()] = values.clone(),
            }
        }
        let config_path = data.join(format!("{name}.json"));
        std::fs::create_dir_all(data).unwrap();
        std::fs::write(&config_path, config.to_string()).unwrap();
        let mut command = Command::new(binary());
        if config.get("LogSettings").is_some() {
            // The test sets the log's level itself.
            command.env_remove("RUST_LOG");
        }
        command
            .arg("--data")
            .arg(data)
            .arg("--config")
            .arg(&config_path)
            .arg("--manifest")
            .arg(workspace().join("manifest.json"))
            .envs(env.iter().copied());
        Process::spawn(command, port, &data.join(format!("{name}.log"))).await
    }

    /// Runs `command` (a `host-shim` listening on `port`) with its output in
    /// `log`, and waits until it answers (the first start compiles the
    /// component).
    pub(crate) async fn spawn(mut command: Command, port: u16, log: &Path) -> Process {
        let file = std::fs::File::create(log).unwrap();
        let child = command
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .expect("spawning host-shim");
        let mut process = Process {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        switchboard_host_shim::harness::install_tls_provider();
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let ping = client
                .get(format!("{}/api/v4/system/ping", process.url))
                .send()
                .await;
            if ping.is_ok_and(|r| r.status() == 200) {
                return process;
            }
            let exited = process.child.try_wait().unwrap();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "host-shim never answered ({exited:?}); see {}",
                log.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) fn api(&self, data: &Path) -> Api {
        let token = std::fs::read_to_string(data.join("admin-token")).unwrap();
        Api::at(&self.url, Some(token.trim()))
    }

    /// Sends SIGTERM (a stop), as systemd and `kill` do.
    pub(crate) fn terminate(&self) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(sent.success());
    }

    /// Waits up to `limit` for the process to end; its exit status.
    pub(crate) async fn exited_within(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "host-shim still running {} s after SIGTERM",
                limit.as_secs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) fn kill(mut self) {
        // SIGKILL: no shutdown code runs.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// On a PostgreSQL run, the data source of the processes on `data`: one
/// database per data directory, as SQLite's file is, made on first use and
/// kept until the run's server stops.
pub(crate) async fn postgres_for(data: &Path) -> Option<String> {
    use switchboard_host_shim::harness::{TestDatabase, TestPostgres};
    type Databases = Mutex<HashMap<PathBuf, Arc<TestDatabase>>>;
    static DATABASES: std::sync::OnceLock<Databases> = std::sync::OnceLock::new();
    if !switchboard_tests::on_postgres() {
        return None;
    }
    let data = data.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut databases = DATABASES.get_or_init(Default::default).lock().unwrap();
        if let Some(database) = databases.get(&data) {
            return Some(database.data_source.clone());
        }
        let database = TestPostgres::shared().unwrap().create_database().unwrap();
        let data_source = database.data_source.clone();
        databases.insert(data, database);
        Some(data_source)
    })
    .await
    .unwrap()
}

/// The store the processes on `data` share, opened as they open it: the
/// SQLite file in it, or on a PostgreSQL run their database.
async fn shared_store(data: &Path) -> switchboard_host_shim::store::Store {
    let mut sql = switchboard_host_shim::config::SqlSettings {
        at_rest_encrypt_key: KEY.into(),
        ..Default::default()
    };
    if let Some(data_source) = postgres_for(data).await {
        sql.driver_name = switchboard_host_shim::config::DRIVER_POSTGRES.into();
        sql.data_source = data_source;
    }
    switchboard_host_shim::store::Store::open_configured(&sql, data).unwrap()
}

pub(crate) async fn town_square(api: &Api) -> (String, String) {
    let team = api.get("/api/v4/teams/name/switchboard").await.json();
    let team_id = team["id"].as_str().unwrap().to_string();
    let channel = api
        .get(&format!(
            "/api/v4/teams/{team_id}/channels/name/town-square"
        ))
        .await
        .json();
    (team_id, channel["id"].as_str().unwrap().to_string())
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

/// Messages of the channel's posts that answer a delivery (`ok <id>`).
async fn answers(api: &Api, channel_id: &str) -> Vec<String> {
    api.channel_posts(channel_id)
        .await
        .iter()
        .filter_map(|p| p["message"].as_str())
        .filter(|m| m.starts_with("ok "))
        .map(str::to_string)
        .collect()
}

/// The restart runs post hooks again: on SQLite its own config file (which
/// has no pause) is the config; on PostgreSQL the installation's shared
/// configuration lives in the database, where the first run's pause still
/// is, so it is lifted there, as an operator would.
async fn resume_post_hooks(api: &Api) {
    if switchboard_tests::on_postgres() {
        let patched = api
            .put_json(
                "/api/v4/config/patch",
                &json!({"DeliverySettings": {"PausePostHooks": false}}),
            )
            .await;
        assert_eq!(patched.status, 200, "{}", patched.text);
    }
}

async fn wait_for_answers(api: &Api, channel_id: &str, n: usize, limit: Duration) -> Vec<String> {
    let deadline = Instant::now() + limit;
    loop {
        let found = answers(api, channel_id).await;
        if found.len() >= n {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {n} answers: {found:?}",
            found.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn answer_with_id(r: &switchboard_tests::Recorded) -> Answer {
    Answer::json(json!({"text": format!("ok {}", r.header("webhook-id").unwrap_or(""))}))
}

#[tokio::test]
async fn a_sigkill_with_twenty_deliveries_pending_loses_none() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let up = Arc::new(AtomicBool::new(false));
    let receiver_up = up.clone();
    let server = CallbackServer::start(move |r| {
        if receiver_up.load(Ordering::SeqCst) {
            answer_with_id(r)
        } else {
            Answer::raw(503, None, "")
        }
    })
    .await;
    // Many attempts 300 ms apart (two minutes of them): the deliveries stay pending while
    // the receiver is down and while the second process starts on a busy machine.
    let mut schedule = vec![300u64; 400];
    schedule[0] = 0;
    let first = Process::start(&data, "first", &schedule).await;
    let api = first.api(&data);
    let (team_id, channel_id) = town_square(&api).await;
    let hook = api
        .post_json(
            "/api/v4/hooks/outgoing",
            &json!({"team_id": team_id, "trigger_words": ["crash"], "callback_urls": [server.url.clone()]}),
        )
        .await;
    assert_eq!(hook.status, 201, "{}", hook.text);
    for i in 0..20 {
        say(&api, &channel_id, &format!("crash {i}")).await;
    }
    server.wait_for(20).await;
    first.kill();
    up.store(true, Ordering::SeqCst);

    let second = Process::start(&data, "second", &schedule).await;
    let api = second.api(&data);
    let found = wait_for_answers(&api, &channel_id, 20, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let found_later = answers(&api, &channel_id).await;
    assert_eq!(
        found_later.len(),
        20,
        "one answer per delivery: {found_later:?}"
    );
    let mut unique = found.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 20, "twenty distinct deliveries answered");
    let delivered: std::collections::HashSet<String> = server
        .requests()
        .iter()
        .filter_map(|r| r.header("webhook-id").map(str::to_string))
        .collect();
    assert_eq!(delivered.len(), 20, "no delivery was lost or invented");
    drop(second);
    server.stop().await;
}

#[tokio::test]
async fn two_processes_on_one_database_never_send_an_attempt_twice() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // (delivery id, attempt) → how often it arrived.
    let seen: Arc<Mutex<HashMap<(String, String), u32>>> = Arc::default();
    let record = seen.clone();
    let server = CallbackServer::start(move |r| {
        let id = r.header("webhook-id").unwrap_or("").to_string();
        let attempt = r.header("x-switchboard-attempt").unwrap_or("").to_string();
        let first = attempt == "1";
        *record.lock().unwrap().entry((id, attempt)).or_default() += 1;
        // The first attempt fails, so the retries are up for grabs by either process.
        if first {
            Answer::raw(503, None, "")
        } else {
            answer_with_id(r)
        }
    })
    .await;
    let schedule = [0u64, 100, 100, 100];
    let a = Process::start(&data, "a", &schedule).await;
    let b = Process::start(&data, "b", &schedule).await;
    let (api_a, api_b) = (a.api(&data), b.api(&data));
    let (team_id, channel_id) = town_square(&api_a).await;
    let hook = api_a
        .post_json(
            "/api/v4/hooks/outgoing",
            &json!({"team_id": team_id, "trigger_words": ["both"], "callback_urls": [server.url.clone()]}),
        )
        .await;
    assert_eq!(hook.status, 201, "{}", hook.text);
    for i in 0..20 {
        let api = if i % 2 == 0 { &api_a } else { &api_b };
        say(api, &channel_id, &format!("both {i}")).await;
    }
    let found = wait_for_answers(&api_a, &channel_id, 20, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(answers(&api_b, &channel_id).await.len(), 20, "{found:?}");
    let seen = seen.lock().unwrap().clone();
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "attempts sent more than once: {twice:?}");
    let ids: std::collections::HashSet<&String> = seen.keys().map(|(id, _)| id).collect();
    assert_eq!(ids.len(), 20);
    assert_eq!(seen.len(), 40, "each delivery: attempt 1 and attempt 2");
    drop((a, b));
    server.stop().await;
}

#[tokio::test]
async fn a_hooks_stats_survive_a_sigkill_and_show_in_its_list() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = Process::start(&data, "first", &[0]).await;
    let api = first.api(&data);
    let (team_id, channel_id) = town_square(&api).await;
    let hook = api.create_incoming_hook(&channel_id, json!({})).await;
    let hook_id = hook["id"].as_str().unwrap().to_string();
    for i in 0..3 {
        let sent = api
            .post_json(
                &format!("/hooks/{hook_id}"),
                &json!({"text": format!("n{i}")}),
            )
            .await;
        assert_eq!(sent.status, 200, "{}", sent.text);
    }
    // The counters are written every few seconds: wait until the store has them.
    let store = shared_store(&data).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !store
        .metric_series()
        .unwrap()
        .iter()
        .any(|s| s.key.contains(&hook_id) && s.requests == 3)
    {
        assert!(Instant::now() < deadline, "the counters were never written");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(store);
    first.kill();

    let second = Process::start(&data, "second", &[0]).await;
    let api = second.api(&data);
    let got = api
        .get(&format!("/api/v4/hooks/incoming/{hook_id}"))
        .await
        .json();
    assert_eq!(got["stats"]["requests"], 3, "{got}");
    assert_eq!(got["stats"]["posts"], 3, "{got}");
    assert!(got["stats"]["last_used_at"].as_i64().unwrap() > 0, "{got}");
    // Lists carry each hook's stats too.
    let listed = api
        .get(&format!("/api/v4/hooks/incoming?team_id={team_id}"))
        .await
        .json();
    let listed = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["id"] == hook_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(listed["stats"], got["stats"]);
}

#[tokio::test]
async fn a_sigkill_after_a_posts_commit_and_before_its_hook_ran_loses_no_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = CallbackServer::start(answer_with_id).await;
    // The first run holds post hooks (`DeliverySettings.PausePostHooks`, a
    // documented setting), so the process dies after the post's commit (its
    // 201) and before the hook enqueued anything: the window a crash hits.
    let paused = json!({"DeliverySettings": {"PausePostHooks": true}});
    let first = Process::start_with(&data, "first", &[0], paused).await;
    let api = first.api(&data);
    let (team_id, channel_id) = town_square(&api).await;
    let hook = api
        .post_json(
            "/api/v4/hooks/outgoing",
            &json!({"team_id": team_id, "trigger_words": ["owed"], "callback_urls": [server.url.clone()]}),
        )
        .await;
    assert_eq!(hook.status, 201, "{}", hook.text);
    say(&api, &channel_id, "owed one").await;
    first.kill();
    assert!(
        server.requests().is_empty(),
        "nothing was sent before the kill"
    );

    let second = Process::start(&data, "second", &[0]).await;
    let api = second.api(&data);
    resume_post_hooks(&api).await;
    let found = wait_for_answers(&api, &channel_id, 1, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "delivered once after the restart");
    let id = requests[0].header("webhook-id").unwrap();
    assert_eq!(found, [format!("ok {id}")]);
    assert!(
        requests[0].body_text().contains("owed+one")
            || requests[0].body_text().contains("owed one")
    );
    drop(second);
    server.stop().await;
}

#[tokio::test]
async fn a_command_reply_made_while_post_hooks_are_paused_is_delivered_after_a_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = CallbackServer::start(answer_with_id).await;
    // `/echo` makes an in-channel reply (the plugin's `posts.create-owing-hook`): it owes its
    // outgoing webhooks from the write that stores it, so a kill before the hook ran loses none.
    let paused = json!({"DeliverySettings": {"PausePostHooks": true}});
    let first = Process::start_with(&data, "first", &[0], paused).await;
    let api = first.api(&data);
    let (team_id, channel_id) = town_square(&api).await;
    let hook = api
        .post_json(
            "/api/v4/hooks/outgoing",
            &json!({"team_id": team_id, "trigger_words": ["echoed"], "callback_urls": [server.url.clone()]}),
        )
        .await;
    assert_eq!(hook.status, 201, "{}", hook.text);
    let reply = crate::commands::execute(&api, &channel_id, "/echo echoed words").await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    first.kill();
    assert!(
        server.requests().is_empty(),
        "nothing was sent before the kill"
    );

    let second = Process::start(&data, "second", &[0]).await;
    let api = second.api(&data);
    resume_post_hooks(&api).await;
    wait_for_answers(&api, &channel_id, 1, Duration::from_secs(60)).await;
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "delivered once after the restart");
    assert!(requests[0].body_text().contains("echoed"));
    drop(second);
    server.stop().await;
}

/// A stop's time limit in the tests below (`GracefulShutdownTimeoutSeconds`).
const GRACE_SECONDS: u64 = 10;

fn graceful() -> Value {
    json!({"SwitchboardSettings": {"GracefulShutdownTimeoutSeconds": GRACE_SECONDS}})
}

#[tokio::test]
async fn a_sigterm_during_two_hundred_webhook_posts_loses_no_acknowledged_post() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut process = Process::start_with(&data, "first", &[0], graceful()).await;
    let api = process.api(&data);
    let (_, channel_id) = town_square(&api).await;
    let hook = api.create_incoming_hook(&channel_id, json!({})).await;
    let url = format!("{}/hooks/{}", process.url, hook["id"].as_str().unwrap());

    let client = reqwest::Client::new();
    let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let posts: Vec<_> = (0..200)
        .map(|i| {
            let (client, url, answered) = (client.clone(), url.clone(), answered.clone());
            tokio::spawn(async move {
                let sent = client
                    .post(&url)
                    .json(&json!({"text": format!("stop-{i}")}))
                    .send()
                    .await;
                answered.fetch_add(1, Ordering::SeqCst);
                (i, sent.map(|r| r.status().as_u16()))
            })
        })
        .collect();
    // In the middle: some answered, most still on their way.
    let deadline = Instant::now() + Duration::from_secs(60);
    while answered.load(Ordering::SeqCst) < 10 {
        assert!(Instant::now() < deadline, "no post was answered");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    process.terminate();
    let status = process
        .exited_within(Duration::from_secs(GRACE_SECONDS + 10))
        .await;
    assert_eq!(status.code(), Some(0), "a stop exits 0");

    let mut acknowledged = Vec::new();
    for post in posts {
        match post.await.unwrap() {
            (i, Ok(200)) => acknowledged.push(format!("stop-{i}")),
            (i, Ok(status)) => {
                assert!(status < 500, "post {i} got {status} during the stop")
            }
            // Refused or cut after the signal: the client knows it was not taken.
            (_, Err(_)) => {}
        }
    }
    assert!(!acknowledged.is_empty());
    let store = shared_store(&data).await;
    let stored: std::collections::HashSet<String> = store
        .all_posts()
        .unwrap()
        .into_iter()
        .map(|p| p.message)
        .collect();
    let lost: Vec<_> = acknowledged
        .iter()
        .filter(|m| !stored.contains(*m))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged posts are not stored: {lost:?}",
        lost.len(),
        acknowledged.len()
    );
    let log = std::fs::read_to_string(data.join("first.log")).unwrap();
    assert!(log.contains("stopped"), "{log}");
}

#[tokio::test]
async fn a_websocket_is_closed_with_going_away_when_the_server_stops() {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut process = Process::start_with(&data, "first", &[0], graceful()).await;
    let token = std::fs::read_to_string(data.join("admin-token")).unwrap();
    let url = format!("{}/api/v4/websocket", process.url.replacen("http", "ws", 1));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", token.trim()).parse().unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let hello = socket.next().await.unwrap().unwrap();
    assert!(hello.to_text().unwrap().contains("\"hello\""), "{hello:?}");

    process.terminate();
    let close = loop {
        let message = tokio::time::timeout(Duration::from_secs(GRACE_SECONDS), socket.next())
            .await
            .expect("the server closed the socket in time");
        match message {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("the socket ended without a close frame: {other:?}"),
        }
    };
    let frame = close.expect("a close frame with a code");
    assert_eq!(u16::from(frame.code), 1001, "going away: {frame:?}");
    drop(socket);
    let status = process
        .exited_within(Duration::from_secs(GRACE_SECONDS + 10))
        .await;
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn a_delivery_on_the_wire_at_sigterm_is_given_back_and_sent_by_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The first attempt never gets an answer in the first run's life; every
    // later one is answered at once.
    let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let server = CallbackServer::start(move |r| {
        if seen.fetch_add(1, Ordering::SeqCst) == 0 {
            answer_with_id(r).after(Duration::from_secs(120))
        } else {
            answer_with_id(r)
        }
    })
    .await;
    // A lease far longer than the test may take: only its release lets the
    // next start send the job now.
    let settings = json!({
        "ServiceSettings": {"OutgoingIntegrationRequestsTimeout": 60},
        "DeliverySettings": {"LeaseSeconds": 900},
        "SwitchboardSettings": {"GracefulShutdownTimeoutSeconds": GRACE_SECONDS},
    });
    let mut first = Process::start_with(&data, "first", &[0], settings.clone()).await;
    let api = first.api(&data);
    let (team_id, channel_id) = town_square(&api).await;
    let hook = api
        .post_json(
            "/api/v4/hooks/outgoing",
            &json!({"team_id": team_id, "trigger_words": ["slow"], "callback_urls": [server.url.clone()]}),
        )
        .await;
    assert_eq!(hook.status, 201, "{}", hook.text);
    say(&api, &channel_id, "slow one").await;
    server.wait_for(1).await;
    first.terminate();
    let status = first
        .exited_within(Duration::from_secs(GRACE_SECONDS + 10))
        .await;
    assert_eq!(status.code(), Some(0));

    let second = Process::start_with(&data, "second", &[0], settings).await;
    let api = second.api(&data);
    let found = wait_for_answers(&api, &channel_id, 1, Duration::from_secs(60)).await;
    let log = std::fs::read_to_string(data.join("first.log")).unwrap();
    assert!(log.contains("gave back 1 leased"), "{log}");
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "sent again by the second run");
    let id = requests[0].header("webhook-id").unwrap();
    assert_eq!(
        requests[1].header("webhook-id"),
        Some(id),
        "the same delivery"
    );
    assert_eq!(found, [format!("ok {id}")]);
    drop(second);
    // The first run's attempt still waits for its answer: not `stop()`.
    drop(server);
}

/// A slash command whose receiver answers after `delay`, running: returns
/// the process, the task awaiting the command's answer and the receiver.
async fn a_slow_command_in_flight(
    data: &Path,
    delay: Duration,
    grace_seconds: u64,
) -> (
    Process,
    tokio::task::JoinHandle<switchboard_tests::Reply>,
    CallbackServer,
) {
    let server = CallbackServer::start(move |_| {
        Answer::json(json!({"response_type": "in_channel", "text": "slow answer"})).after(delay)
    })
    .await;
    let settings = json!({
        "ServiceSettings": {"OutgoingIntegrationRequestsTimeout": 120},
        "SwitchboardSettings": {"GracefulShutdownTimeoutSeconds": grace_seconds},
    });
    let process = Process::start_with(data, "first", &[0], settings).await;
    let api = process.api(data);
    let (team_id, channel_id) = town_square(&api).await;
    let command = api
        .post_json(
            "/api/v4/commands",
            &json!({"team_id": team_id, "trigger": "slow", "method": "P",
                    "url": server.url.clone(), "display_name": "Slow"}),
        )
        .await;
    assert_eq!(command.status, 201, "{}", command.text);
    let running =
        tokio::spawn(async move { crate::commands::execute(&api, &channel_id, "/slow").await });
    server.wait_for(1).await;
    (process, running, server)
}

#[tokio::test]
async fn a_request_in_flight_at_sigterm_is_answered_before_the_process_exits() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut process, running, server) =
        a_slow_command_in_flight(&data, Duration::from_secs(3), GRACE_SECONDS).await;
    process.terminate();
    let reply = running.await.unwrap();
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    assert_eq!(reply.json()["text"], "slow answer");
    let status = process
        .exited_within(Duration::from_secs(GRACE_SECONDS + 10))
        .await;
    assert_eq!(status.code(), Some(0));
    server.stop().await;
}

#[tokio::test]
async fn a_second_signal_during_the_drain_stops_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The request would hold the drain for its whole grace period (120 s).
    let (mut process, running, server) =
        a_slow_command_in_flight(&data, Duration::from_secs(100), 120).await;
    process.terminate();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(data.join("first.log"))
        .unwrap()
        .contains("stopping: no new connections")
    {
        assert!(Instant::now() < deadline, "the stop never began");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        process.child.try_wait().unwrap().is_none(),
        "still draining"
    );
    process.terminate();
    let status = process.exited_within(Duration::from_secs(20)).await;
    assert_eq!(status.code(), Some(130));
    running.abort();
    drop(server);
}

/// The value of `name` in `url`'s query.
fn query_value(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// A broad run through the real binary with `ConsoleJson` at DEBUG: no
/// secret it used reaches the log, and every request has one JSON line with
/// its id, method, route template, status and latency.
#[tokio::test]
async fn the_log_of_a_broad_run_holds_no_secret_and_a_json_line_per_request() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The command answers with a button (whose click carries a sealed
    // cookie); every other call gets a plain answer.
    let own_url: Arc<std::sync::OnceLock<String>> = Arc::default();
    let action_url = own_url.clone();
    let callbacks = CallbackServer::start(move |r| {
        if r.path == "/slash" {
            let url = format!("{}/action", action_url.get().unwrap());
            Answer::json(
                json!({"response_type": "ephemeral", "text": "Which one?", "attachments": [
                    {"actions": [{"type": "button", "name": "This", "integration": {"url": url}}]}
                ]}),
            )
        } else {
            Answer::json(json!({"text": format!("answered {}", r.path)}))
        }
    })
    .await;
    own_url.set(callbacks.url.clone()).unwrap();
    let settings = json!({
        "LogSettings": {"ConsoleLevel": "DEBUG", "ConsoleJson": true},
        "ServiceSettings": {"EnableBotAccountCreation": true},
        "SwitchboardSettings": {"GracefulShutdownTimeoutSeconds": GRACE_SECONDS},
    });
    let mut process = Process::start_with(&data, "run", &[0], settings).await;
    let admin = process.api(&data);
    let admin_token = std::fs::read_to_string(data.join("admin-token"))
        .unwrap()
        .trim()
        .to_string();
    let password = std::fs::read_to_string(data.join("admin-password"))
        .unwrap()
        .trim()
        .to_string();
    let mut secrets: Vec<(&str, String)> = vec![
        ("admin token", admin_token.clone()),
        ("admin password", password.clone()),
    ];
    let (team_id, channel_id) = town_square(&admin).await;
    let me = admin.get("/api/v4/users/me").await.json();
    let username = me["username"].as_str().unwrap().to_string();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = |path: &str| format!("{}{path}", process.url);

    // A password sign-in, its session token, and the session as a cookie.
    let login = http
        .post(url("/api/v4/users/login"))
        .json(&json!({"login_id": username, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let session = login.headers()["token"].to_str().unwrap().to_string();
    secrets.push(("session", session.clone()));
    let by_cookie = http
        .get(url("/api/v4/users/me"))
        .header("cookie", format!("MMAUTHTOKEN={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(by_cookie.status(), 200);
    let wrong = http
        .post(url("/api/v4/users/login"))
        .json(&json!({"login_id": username, "password": "a-wrong-password-42"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    secrets.push(("wrong password", "a-wrong-password-42".into()));

    // A personal access token and a bot's token, each used.
    let pat = admin
        .post_json(
            "/api/v4/users/me/tokens",
            &json!({"description": "log test"}),
        )
        .await;
    assert_eq!(pat.status, 200, "{}", pat.text);
    let pat = pat.json()["token"].as_str().unwrap().to_string();
    secrets.push(("personal access token", pat.clone()));
    assert_eq!(
        Api::at(&process.url, Some(&pat))
            .get("/api/v4/users/me")
            .await
            .status,
        200
    );
    let bot = admin
        .post_json("/api/v4/bots", &json!({"username": "logbot"}))
        .await;
    assert_eq!(bot.status, 201, "{}", bot.text);
    let bot_id = bot.json()["user_id"].as_str().unwrap().to_string();
    let bot_token = admin
        .post_json(
            &format!("/api/v4/users/{bot_id}/tokens"),
            &json!({"description": "bot"}),
        )
        .await;
    assert_eq!(bot_token.status, 200, "{}", bot_token.text);
    let bot_token = bot_token.json()["token"].as_str().unwrap().to_string();
    secrets.push(("bot token", bot_token.clone()));
    assert_eq!(
        Api::at(&process.url, Some(&bot_token))
            .get("/api/v4/users/me")
            .await
            .status,
        200
    );

    // An incoming hook: posts, and a bad one (an error envelope).
    let hook = admin.create_incoming_hook(&channel_id, json!({})).await;
    let hook_id = hook["id"].as_str().unwrap().to_string();
    secrets.push(("incoming hook id", hook_id.clone()));
    for i in 0..3 {
        let sent = admin
            .post_json(
                &format!("/hooks/{hook_id}"),
                &json!({"text": format!("log {i}")}),
            )
            .await;
        assert_eq!(sent.status, 200, "{}", sent.text);
    }
    let bad = admin
        .post_raw(
            &format!("/hooks/{hook_id}"),
            Some("application/json"),
            "{not json",
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.text);
    let bad_request_id = bad.json()["request_id"].as_str().unwrap().to_string();

    // An outgoing hook and a slash command, each calling out with its token.
    let outgoing = admin
        .post_json(
            "/api/v4/hooks/outgoing",
            &json!({"team_id": team_id, "trigger_words": ["logged"], "callback_urls": [format!("{}/out", callbacks.url)]}),
        )
        .await;
    assert_eq!(outgoing.status, 201, "{}", outgoing.text);
    secrets.push((
        "outgoing hook token",
        outgoing.json()["token"].as_str().unwrap().to_string(),
    ));
    say(&admin, &channel_id, "logged words").await;
    let command = admin
        .post_json(
            "/api/v4/commands",
            &json!({"team_id": team_id, "trigger": "logcmd", "method": "P",
                    "url": format!("{}/slash", callbacks.url), "display_name": "Log"}),
        )
        .await;
    assert_eq!(command.status, 201, "{}", command.text);
    secrets.push((
        "command token",
        command.json()["token"].as_str().unwrap().to_string(),
    ));
    // The command's ephemeral answer reaches the admin's websocket with the
    // button's cookie, which the click sends back.
    let mut socket = {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let ws = format!("{}/api/v4/websocket", process.url.replacen("http", "ws", 1));
        let mut request = ws.into_client_request().unwrap();
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {admin_token}").parse().unwrap(),
        );
        tokio_tungstenite::connect_async(request).await.unwrap().0
    };
    let ran = crate::commands::execute(&admin, &channel_id, "/logcmd now").await;
    assert_eq!(ran.status.as_u16(), 200, "{}", ran.text);
    let shown: Value = loop {
        use futures::StreamExt;
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("the ephemeral answer arrived")
            .unwrap()
            .unwrap();
        let Ok(text) = message.to_text() else {
            continue;
        };
        let Ok(event) = serde_json::from_str::<Value>(text) else {
            continue;
        };
        if event["event"] == "ephemeral_message" {
            break serde_json::from_str(event["data"]["post"].as_str().unwrap()).unwrap();
        }
    };
    drop(socket);
    let action = &shown["props"]["attachments"][0]["actions"][0];
    let cookie = action["cookie"].as_str().expect("a cookie").to_string();
    secrets.push(("action cookie", cookie.clone()));
    let clicked = admin
        .post_json(
            &format!(
                "/api/v4/posts/{}/actions/{}",
                shown["id"].as_str().unwrap(),
                action["id"].as_str().unwrap()
            ),
            &json!({"cookie": cookie}),
        )
        .await;
    assert_eq!(clicked.status, 200, "{}", clicked.text);
    let sent = callbacks.wait_for(3).await;
    assert!(
        sent.iter().any(|r| r.path == "/action"),
        "the click was sent"
    );
    for (what, token) in secrets
        .iter()
        .filter(|(w, _)| w.ends_with("hook token") || *w == "command token")
    {
        assert!(
            sent.iter().any(|r| r.body_text().contains(token.as_str())),
            "the {what} was sent to its receiver"
        );
    }

    // An OAuth app: its secret, a code and the tokens it is exchanged for.
    let callback = "https://app.example.com/callback";
    let app = admin
        .post_json(
            "/api/v4/oauth/apps",
            &json!({"name": "Logs", "description": "d", "homepage": "https://app.example.com",
                    "callback_urls": [callback], "is_trusted": true}),
        )
        .await;
    assert_eq!(app.status, 201, "{}", app.text);
    let app = app.json();
    let client_id = app["id"].as_str().unwrap().to_string();
    let client_secret = app["client_secret"].as_str().unwrap().to_string();
    secrets.push(("OAuth client secret", client_secret.clone()));
    let authorize = http
        .get(format!(
            "{}?response_type=code&client_id={client_id}&redirect_uri={}&state=st",
            url("/oauth/authorize"),
            url::form_urlencoded::byte_serialize(callback.as_bytes()).collect::<String>()
        ))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(authorize.status(), 302);
    let location = authorize.headers()["location"]
        .to_str()
        .unwrap()
        .to_string();
    let code = query_value(&location, "code").expect("a code");
    secrets.push(("OAuth code", code.clone()));
    let exchanged: Value = http
        .post(url("/oauth/access_token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &client_id),
            ("client_secret", &client_secret),
            ("redirect_uri", callback),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = exchanged["access_token"]
        .as_str()
        .expect("an access token")
        .to_string();
    secrets.push(("OAuth access token", access.clone()));
    secrets.push((
        "OAuth refresh token",
        exchanged["refresh_token"].as_str().unwrap().to_string(),
    ));
    assert_eq!(
        Api::at(&process.url, Some(&access))
            .get("/api/v4/users/me")
            .await
            .status,
        200
    );

    // The stop writes the log's last lines.
    process.terminate();
    let status = process
        .exited_within(Duration::from_secs(GRACE_SECONDS + 10))
        .await;
    assert_eq!(status.code(), Some(0));
    callbacks.stop().await;

    let log = std::fs::read_to_string(data.join("run.log")).unwrap();
    for (what, secret) in &secrets {
        assert!(secret.len() >= 8, "{what} is a real secret: {secret:?}");
        assert!(
            !log.contains(secret.as_str()),
            "the {what} is in the log:\n{log}"
        );
    }
    // The JSON lines (the rest is what the binary prints for people at start).
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["level"] == "debug"),
        "DEBUG lines are written"
    );
    let requests: Vec<&Value> = lines.iter().filter(|l| l["msg"] == "request").collect();
    assert!(requests.len() >= 20, "{} request lines", requests.len());
    for line in &requests {
        for key in [
            "timestamp",
            "level",
            "request_id",
            "method",
            "route",
            "status",
            "latency_ms",
        ] {
            assert!(!line[key].is_null(), "{key} missing: {line}");
        }
    }
    let hooks: Vec<&&Value> = requests
        .iter()
        .filter(|l| l["route"] == "/hooks/{*rest}")
        .collect();
    assert_eq!(hooks.len(), 4, "one line per hook post: {hooks:?}");
    assert_eq!(hooks.iter().filter(|l| l["status"] == 200).count(), 3);
    let bad_line = hooks
        .iter()
        .find(|l| l["request_id"] == bad_request_id.as_str())
        .expect("the error envelope's request id is the line's");
    assert_eq!(bad_line["status"], 400);
    assert_eq!(bad_line["method"], "POST");
}
