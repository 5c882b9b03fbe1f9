//! Deliveries across real `host-shim` processes on one data directory: a
//! SIGKILL with deliveries pending loses none, nor one before a post's hook
//! ran, and two processes sharing the SQLite file never send the same
//! attempt twice. Needs the binary
//! (`cargo build -p switchboard-host-shim`; `make test` builds it).

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
            // Every process on one database needs the same at-rest key, or
            // it cannot open what the others sealed (the plugin's hooks).
            "SqlSettings": {"AtRestEncryptKey": "one-key-for-every-process-of-this-test"},
        });
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
    let store = switchboard_host_shim::store::Store::open_with_key(
        &data.join("switchboard.db"),
        "one-key-for-every-process-of-this-test",
    )
    .unwrap();
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
    wait_for_answers(&api, &channel_id, 1, Duration::from_secs(60)).await;
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "delivered once after the restart");
    assert!(requests[0].body_text().contains("echoed"));
    drop(second);
    server.stop().await;
}
