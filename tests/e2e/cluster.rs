//! Three real `host-shim` processes on one PostgreSQL database: what is
//! written through one node is read through another at once, a node killed
//! with deliveries pending loses none, 500 concurrent webhook posts spread
//! over the nodes are each stored once, a hook's rate limit and an
//! `Idempotency-Key` hold across the nodes, websocket events reach sockets
//! on every node, and a database that goes away is answered with 503s until
//! it is back. PostgreSQL only (a cluster needs a shared database): under
//! `make test` these run in the PostgreSQL pass (`SWITCHBOARD_DB=postgres`)
//! on the run's server; on a bare `cargo test` they run too, the harness
//! starting a server of its own. Needs the binary
//! (`cargo build -p switchboard-host-shim`; `make test` builds it).

use crate::processes::{Process, town_square};
use crate::websocket::Client;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use switchboard_host_shim::harness::postgres::{SERVER_ENV, bin_dir, psql};
use switchboard_host_shim::harness::{TestDatabase, TestPostgres};
use switchboard_tests::{Answer, Api, CallbackServer};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Whether this run runs the cluster tests: always, except in the SQLite
/// pass of `make test` (a run's server is named and the backend is not
/// PostgreSQL), whose PostgreSQL pass runs them.
fn cluster_run(what: &str) -> bool {
    let make_test_sqlite_pass =
        std::env::var_os(SERVER_ENV).is_some() && !switchboard_tests::on_postgres();
    if make_test_sqlite_pass {
        eprintln!("skipped in the SQLite pass (the PostgreSQL pass runs it): {what}");
    }
    !make_test_sqlite_pass
}

/// Nodes of one installation: each its own data directory, config file and
/// port; the same `DataSource` and `AtRestEncryptKey`.
struct Cluster {
    dir: tempfile::TempDir,
    nodes: Vec<Option<Process>>,
    data_source: String,
    /// The admin's token, from the node that bootstrapped.
    token: String,
    /// Kept until the nodes are gone (its drop drops the database).
    _database: Option<Arc<TestDatabase>>,
}

impl Cluster {
    /// `n` nodes on a fresh database of the run's test server.
    async fn start(n: usize, schedule: &[u64], more: Value) -> Cluster {
        let database = tokio::task::spawn_blocking(|| {
            TestPostgres::shared()
                .expect("a test PostgreSQL")
                .create_database()
                .expect("a fresh database")
        })
        .await
        .unwrap();
        let data_source = database.data_source.clone();
        Cluster::start_on(n, &data_source, Some(database), schedule, more).await
    }

    /// `n` nodes on the database `data_source` names. The first bootstraps
    /// (team, channels, admin); the others start once it answers and adopt
    /// what they find.
    async fn start_on(
        n: usize,
        data_source: &str,
        database: Option<Arc<TestDatabase>>,
        schedule: &[u64],
        more: Value,
    ) -> Cluster {
        let mut cluster = Cluster {
            dir: tempfile::tempdir().unwrap(),
            nodes: Vec::new(),
            data_source: data_source.to_string(),
            token: String::new(),
            _database: database,
        };
        let first = cluster.start_node(0, schedule, more.clone()).await;
        cluster.nodes.push(Some(first));
        cluster.token = std::fs::read_to_string(cluster.data(0).join("admin-token"))
            .unwrap()
            .trim()
            .to_string();
        let rest = (1..n).map(|i| cluster.start_node(i, schedule, more.clone()));
        let rest = futures::future::join_all(rest).await;
        cluster.nodes.extend(rest.into_iter().map(Some));
        for i in 1..n {
            assert!(
                !cluster.data(i).join("admin-token").exists(),
                "node {i} bootstrapped a second admin"
            );
        }
        cluster
    }

    fn data(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("node-{i}"))
    }

    fn start_node(
        &self,
        i: usize,
        schedule: &[u64],
        more: Value,
    ) -> impl std::future::Future<Output = Process> + use<> {
        let mut settings = json!({
            "SqlSettings": {"DriverName": "postgres", "DataSource": self.data_source},
        });
        for (section, values) in more.as_object().into_iter().flatten() {
            let into = settings[section.as_str()].as_object_mut();
            match (into, values.as_object()) {
                (Some(into), Some(values)) => into.extend(values.clone()),
                _ => settings[section.as_str()] = values.clone(),
            }
        }
        let data = self.data(i);
        let schedule = schedule.to_vec();
        async move { Process::start_with(&data, "node", &schedule, settings).await }
    }

    /// The last lines of every node's log, for a failure's message.
    fn logs(&self) -> String {
        (0..self.nodes.len())
            .map(|i| {
                let log =
                    std::fs::read_to_string(self.data(i).join("node.log")).unwrap_or_default();
                let lines: Vec<&str> = log.lines().collect();
                let tail = lines[lines.len().saturating_sub(30)..].join("\n");
                format!("--- node {i}\n{tail}")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn node(&self, i: usize) -> &Process {
        self.nodes[i].as_ref().expect("a running node")
    }

    fn api(&self, i: usize) -> Api {
        Api::at(&self.node(i).url, Some(&self.token))
    }

    /// SIGKILL: no shutdown code runs, its leases stay taken until they expire.
    fn kill(&mut self, i: usize) {
        self.nodes[i].take().expect("a running node").kill();
    }

    /// `message → how many posts have it` in `channel_id`, read from the
    /// database itself.
    async fn stored(&self, channel_id: &str, like: &str) -> HashMap<String, u64> {
        let sql = format!(
            "SELECT message || '|' || count(*) FROM posts \
             WHERE channel_id = '{channel_id}' AND message LIKE '{like}' AND delete_at = 0 \
             GROUP BY message"
        );
        let url = self.data_source.clone();
        let out = tokio::task::spawn_blocking(move || psql(&url, &sql).unwrap())
            .await
            .unwrap();
        out.lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (message, n) = l.rsplit_once('|').unwrap();
                (message.to_string(), n.parse().unwrap())
            })
            .collect()
    }
}

/// A request to node `i % 3`'s copy of `path` without awaiting it first:
/// many of them run at once.
fn post_hook(
    http: &reqwest::Client,
    base: &str,
    hook_id: &str,
    body: Value,
    headers: &[(&str, String)],
) -> impl std::future::Future<Output = (u16, Option<String>, String)> + use<> {
    let mut request = http.post(format!("{base}/hooks/{hook_id}")).json(&body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    async move {
        let response = request.send().await.expect("a webhook request");
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        (
            status,
            retry_after,
            response.text().await.unwrap_or_default(),
        )
    }
}

#[tokio::test]
async fn a_hook_made_through_one_node_serves_through_another_and_posts_read_everywhere_at_once() {
    if !cluster_run("cross-node reads") {
        return;
    }
    let cluster = Cluster::start(3, &[0], json!({})).await;
    let (a, b, c) = (cluster.api(0), cluster.api(1), cluster.api(2));
    let (_team_id, channel_id) = town_square(&a).await;
    // The other nodes adopted the first's team, channels and admin.
    assert_eq!(town_square(&c).await.1, channel_id);

    let hook = a.create_incoming_hook(&channel_id, json!({})).await;
    let hook_id = hook["id"].as_str().unwrap();
    assert_eq!(c.incoming_hook(hook_id).await["id"], hook_id);
    let sent = c
        .post_json(&format!("/hooks/{hook_id}"), &json!({"text": "through C"}))
        .await;
    assert_eq!(sent.status, 200, "{}", sent.text);
    for api in [&a, &b] {
        let posts = api.channel_posts(&channel_id).await;
        assert!(
            posts.iter().any(|p| p["message"] == "through C"),
            "a hook post made via C is not read via {}",
            api.base
        );
    }

    for i in 0..10 {
        let message = format!("via B {i}");
        let made = b
            .post_json(
                "/api/v4/posts",
                &json!({"channel_id": channel_id, "message": message}),
            )
            .await;
        assert_eq!(made.status, 201, "{}", made.text);
        let id = made.json()["id"].as_str().unwrap().to_string();
        // At once: no wait, no retry.
        let read = a.get(&format!("/api/v4/posts/{id}")).await;
        assert_eq!(read.status, 200, "post {i} made via B is not read via A");
        assert_eq!(read.json()["message"], message.as_str());
    }
    // A change made through one node is what the next read through another sees.
    let renamed = c
        .put_json(
            &format!("/api/v4/hooks/incoming/{hook_id}"),
            &json!({"id": hook_id, "channel_id": channel_id, "display_name": "renamed on C"}),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.text);
    assert_eq!(
        a.incoming_hook(hook_id).await["display_name"],
        "renamed on C"
    );
    let deleted = b.delete(&format!("/api/v4/hooks/incoming/{hook_id}")).await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    let gone = a
        .post_json(
            &format!("/hooks/{hook_id}"),
            &json!({"text": "after delete"}),
        )
        .await;
    assert_eq!(gone.status, 400, "{}", gone.text);
}

fn answer_with_id(r: &switchboard_tests::Recorded) -> Answer {
    Answer::json(json!({"text": format!("ok {}", r.header("webhook-id").unwrap_or(""))}))
}

/// Messages of the channel's posts that answer a delivery (`ok <id>`), as
/// stored: `message → count`.
async fn answers(cluster: &Cluster, channel_id: &str) -> HashMap<String, u64> {
    cluster.stored(channel_id, "ok %").await
}

#[tokio::test]
async fn a_node_killed_with_deliveries_in_flight_loses_none_the_others_send_each_once() {
    if !cluster_run("a SIGKILL with deliveries pending") {
        return;
    }
    // Until `up`, the receiver holds every request past the nodes' 2 s
    // timeout: the attempts are on the wire, their leases held by whoever sent them.
    let up = Arc::new(AtomicBool::new(false));
    let receiver_up = up.clone();
    let server = CallbackServer::start(move |r| {
        if receiver_up.load(Ordering::SeqCst) {
            answer_with_id(r)
        } else {
            Answer::empty().after(Duration::from_secs(30))
        }
    })
    .await;
    let mut schedule = vec![300u64; 400];
    schedule[0] = 0;
    // The shortest lease the engine takes (the request timeout + 5 s).
    let settings = json!({"DeliverySettings": {"LeaseSeconds": 0}});
    let mut cluster = Cluster::start(3, &schedule, settings).await;
    let a = cluster.api(0);
    let (team_id, channel_id) = town_square(&a).await;
    let hook = a
        .post_json(
            "/api/v4/hooks/outgoing",
            &json!({"team_id": team_id, "trigger_words": ["pending"], "callback_urls": [server.url.clone()]}),
        )
        .await;
    assert_eq!(hook.status, 201, "{}", hook.text);
    for i in 0..20 {
        let said = a
            .post_json(
                "/api/v4/posts",
                &json!({"channel_id": channel_id, "message": format!("pending {i}")}),
            )
            .await;
        assert_eq!(said.status, 201, "{}", said.text);
    }
    // Attempts of every delivery are on the wire; node A sent some of them.
    let started = Instant::now();
    loop {
        let ids: HashSet<String> = server
            .requests()
            .iter()
            .filter_map(|r| r.header("webhook-id").map(str::to_string))
            .collect();
        if ids.len() == 20 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "only {} deliveries attempted",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cluster.kill(0);
    up.store(true, Ordering::SeqCst);

    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let found = answers(&cluster, &channel_id).await;
        if found.len() == 20 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of 20 deliveries answered after the kill: {found:?}\n{}",
            found.len(),
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Past one more lease: nothing arrives twice later.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let found = answers(&cluster, &channel_id).await;
    assert_eq!(found.len(), 20, "{found:?}");
    assert!(
        found.values().all(|n| *n == 1),
        "an answer became posts twice: {found:?}"
    );
    let answered: Vec<String> = server
        .requests()
        .iter()
        .filter(|r| r.body_text().contains("pending"))
        .filter_map(|r| r.header("webhook-id").map(str::to_string))
        .collect();
    let distinct: HashSet<&String> = answered.iter().collect();
    assert_eq!(distinct.len(), 20, "no delivery was lost or invented");
    // Answered through the API of the nodes that lived, too.
    let b_sees = cluster
        .api(1)
        .channel_posts(&channel_id)
        .await
        .iter()
        .filter(|p| p["message"].as_str().is_some_and(|m| m.starts_with("ok ")))
        .count();
    assert_eq!(b_sees, 20);
    drop(cluster);
    server.stop().await;
}

#[tokio::test]
async fn five_hundred_concurrent_webhook_posts_over_three_nodes_are_each_stored_once() {
    if !cluster_run("500 concurrent webhook posts") {
        return;
    }
    let cluster = Cluster::start(3, &[0], json!({})).await;
    let a = cluster.api(0);
    let (_team_id, channel_id) = town_square(&a).await;
    let hook = a.create_incoming_hook(&channel_id, json!({})).await;
    let hook_id = hook["id"].as_str().unwrap().to_string();
    let http = reqwest::Client::new();
    let urls: Vec<String> = (0..3).map(|i| cluster.node(i).url.clone()).collect();
    let sends: Vec<_> = (0..500)
        .map(|i| {
            let send = post_hook(
                &http,
                &urls[i % 3],
                &hook_id,
                json!({"text": format!("burst {i:03}")}),
                &[],
            );
            tokio::spawn(send)
        })
        .collect();
    let mut ok = HashSet::new();
    let mut others = Vec::new();
    for (i, send) in sends.into_iter().enumerate() {
        let (status, retry_after, body) = send.await.unwrap();
        match status {
            200 => {
                ok.insert(format!("burst {i:03}"));
            }
            // A node's plugin pool full: retryable, and said so.
            503 => assert!(retry_after.is_some(), "503 without Retry-After: {body}"),
            _ => others.push((i, status, body)),
        }
    }
    assert!(others.is_empty(), "answers other than 200/503: {others:?}");
    assert!(!ok.is_empty());
    let stored = cluster.stored(&channel_id, "burst %").await;
    let twice: Vec<_> = stored.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "stored more than once: {twice:?}");
    let stored: HashSet<String> = stored.into_keys().collect();
    assert_eq!(
        stored,
        ok,
        "each 200 stored, nothing else ({} answered 200)",
        ok.len()
    );
}

#[tokio::test]
async fn a_hooks_rate_limit_and_an_idempotency_key_hold_across_the_nodes() {
    if !cluster_run("rate limit and Idempotency-Key across nodes") {
        return;
    }
    let cluster = Cluster::start(3, &[0], json!({})).await;
    let a = cluster.api(0);
    let (_team_id, channel_id) = town_square(&a).await;
    let http = reqwest::Client::new();
    let urls: Vec<String> = (0..3).map(|i| cluster.node(i).url.clone()).collect();

    // A budget of 5 a minute (one back every 12 s), asked for 30 times at
    // once through three nodes.
    const LIMIT: u64 = 5;
    let limited = a
        .create_incoming_hook(&channel_id, json!({"rate_limit": LIMIT}))
        .await;
    let limited_id = limited["id"].as_str().unwrap().to_string();
    let started = Instant::now();
    let sends: Vec<_> = (0..30)
        .map(|i| {
            let body = json!({"text": format!("limited {i:02}")});
            tokio::spawn(post_hook(&http, &urls[i % 3], &limited_id, body, &[]))
        })
        .collect();
    let mut statuses: HashMap<u16, u64> = HashMap::new();
    for send in sends {
        let (status, retry_after, body) = send.await.unwrap();
        if status == 429 || status == 503 {
            assert!(
                retry_after.is_some(),
                "{status} without Retry-After: {body}"
            );
        }
        *statuses.entry(status).or_default() += 1;
    }
    let elapsed = started.elapsed().as_secs();
    let ok = statuses.get(&200).copied().unwrap_or(0);
    // Budget refilled while the burst ran (slow machines): one per 12 s.
    let most = LIMIT + elapsed / 12;
    assert!(
        (1..=most).contains(&ok),
        "{ok} accepted of a budget of {LIMIT} (at most {most} after {elapsed} s): {statuses:?}"
    );
    assert_eq!(
        statuses
            .keys()
            .filter(|s| ![200, 429, 503].contains(s))
            .count(),
        0,
        "{statuses:?}"
    );
    assert!(statuses.get(&429).copied().unwrap_or(0) > 0, "{statuses:?}");
    let stored = cluster.stored(&channel_id, "limited %").await;
    assert_eq!(stored.values().sum::<u64>(), ok, "{stored:?}");

    // The same Idempotency-Key sent through all three nodes at once, three
    // times each: one post.
    let hook = a.create_incoming_hook(&channel_id, json!({})).await;
    let hook_id = hook["id"].as_str().unwrap().to_string();
    let key = ("idempotency-key", "alert-4711".to_string());
    let sends: Vec<_> = (0..9)
        .map(|i| {
            let body = json!({"text": "once only"});
            tokio::spawn(post_hook(
                &http,
                &urls[i % 3],
                &hook_id,
                body,
                std::slice::from_ref(&key),
            ))
        })
        .collect();
    let mut ok = 0;
    for send in sends {
        let (status, _, body) = send.await.unwrap();
        // 409: another request with this key is being handled (retry it).
        assert!(status == 200 || status == 409, "{status}: {body}");
        ok += u64::from(status == 200);
    }
    assert!(ok > 0);
    // And once more, one by one through each node.
    for url in &urls {
        let (status, _, body) = post_hook(
            &http,
            url,
            &hook_id,
            json!({"text": "once only"}),
            std::slice::from_ref(&key),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let stored = cluster.stored(&channel_id, "once only").await;
    assert_eq!(stored.get("once only"), Some(&1), "{stored:?}");
}

/// Connects to node `base`'s websocket with `token`; reads `hello`.
async fn socket(base: &str, token: &str) -> Client {
    let url = format!("{}/api/v4/websocket", base.replacen("http", "ws", 1));
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let mut client = Client { socket };
    let hello = client.next().await.expect("hello");
    assert_eq!(hello["event"], "hello");
    client
}

#[tokio::test]
async fn a_post_made_through_one_node_reaches_a_socket_on_another_in_order_with_seq() {
    if !cluster_run("websocket events across nodes") {
        return;
    }
    let cluster = Cluster::start(3, &[0], json!({})).await;
    let (a, b) = (cluster.api(0), cluster.api(1));
    let (_team_id, channel_id) = town_square(&a).await;
    let mut on_c = socket(&cluster.node(2).url, &cluster.token).await;
    let hook = b.create_incoming_hook(&channel_id, json!({})).await;
    let hook_id = hook["id"].as_str().unwrap();
    for i in 0..5 {
        let made = a
            .post_json(
                "/api/v4/posts",
                &json!({"channel_id": channel_id, "message": format!("live {i}")}),
            )
            .await;
        assert_eq!(made.status, 201, "{}", made.text);
        let sent = b
            .post_json(
                &format!("/hooks/{hook_id}"),
                &json!({"text": format!("hooked {i}")}),
            )
            .await;
        assert_eq!(sent.status, 200, "{}", sent.text);
    }
    let mut seen = Vec::new();
    let mut seqs = Vec::new();
    while seen.len() < 10 {
        let event = on_c
            .next_event()
            .await
            .unwrap_or_else(|| panic!("no more events on C after {seen:?}"));
        seqs.push(event["seq"].as_u64().expect("seq"));
        if event["event"] == "posted" {
            let post: Value =
                serde_json::from_str(event["data"]["post"].as_str().unwrap()).unwrap();
            seen.push(post["message"].as_str().unwrap().to_string());
        }
    }
    let expected: Vec<String> = (0..5)
        .flat_map(|i| [format!("live {i}"), format!("hooked {i}")])
        .collect();
    assert_eq!(seen, expected, "in the order they were made");
    let counted: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, counted, "seq counts the connection's events from 1");
}

/// A PostgreSQL server of a test's own, which the test stops and starts
/// again (`pg_ctl`, as the server's owner) on the same port and files; gone
/// with its handle (`postgres.sh serve`, which removes it when the pipe it
/// waits on closes).
struct OwnPostgres {
    serve: Child,
    lifeline: Option<ChildStdin>,
    dir: PathBuf,
    base_url: String,
}

impl OwnPostgres {
    fn start() -> OwnPostgres {
        let dir = tempfile::Builder::new()
            .prefix("switchboard-pg-own.")
            .tempdir()
            .unwrap()
            .keep();
        let script = crate::processes::workspace().join("host-shim/src/harness/postgres.sh");
        let mut serve = Command::new("bash")
            .arg(script)
            .arg("serve")
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let lifeline = serve.stdin.take().unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(serve.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert!(line.starts_with("postgres://"), "no server: {line}");
        OwnPostgres {
            serve,
            lifeline: Some(lifeline),
            dir,
            base_url: line.trim().to_string(),
        }
    }

    fn port(&self) -> &str {
        self.base_url.rsplit(':').next().unwrap()
    }

    fn pg_ctl(&self, args: &[&str]) {
        let pg_ctl = bin_dir().unwrap().join("pg_ctl");
        let data = self.dir.join("data");
        let mut command = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(pg_ctl);
            c
        } else {
            Command::new(pg_ctl)
        };
        let status = command
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(args)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "pg_ctl {args:?} failed");
    }

    fn stop(&self) {
        self.pg_ctl(&["-m", "fast", "-w", "-t", "60", "stop"]);
    }

    fn start_again(&self) {
        let port = format!("-p {}", self.port());
        self.pg_ctl(&["-w", "-t", "60", "-o", &port, "start"]);
    }
}

impl Drop for OwnPostgres {
    /// Closes the pipe `postgres.sh serve` waits on: it stops the server
    /// and removes its directory.
    fn drop(&mut self) {
        drop(self.lifeline.take());
        let _ = self.serve.wait();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[tokio::test]
async fn a_database_that_goes_away_is_answered_503_and_the_node_serves_again_when_it_returns() {
    if !cluster_run("the database goes away") {
        return;
    }
    let server = tokio::task::spawn_blocking(OwnPostgres::start)
        .await
        .unwrap();
    let url = format!("{}/postgres?sslmode=disable", server.base_url);
    psql(&url, "CREATE DATABASE outage").unwrap();
    let data_source = format!("{}/outage?sslmode=disable", server.base_url);
    let cluster = Cluster::start_on(1, &data_source, None, &[0], json!({})).await;
    let api = cluster.api(0);
    let (_team_id, channel_id) = town_square(&api).await;
    let hook = api.create_incoming_hook(&channel_id, json!({})).await;
    let hook_id = hook["id"].as_str().unwrap().to_string();
    let http = reqwest::Client::builder()
        // Longer than any of the store's deadlines: a hang shows as a failure.
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let base = cluster.node(0).url.clone();
    let mut acknowledged = Vec::new();
    for i in 0..5 {
        let text = format!("before {i}");
        let (status, _, body) = post_hook(&http, &base, &hook_id, json!({"text": text}), &[]).await;
        assert_eq!(status, 200, "{body}");
        acknowledged.push(text);
    }

    server.stop();
    for i in 0..5 {
        let text = format!("during {i}");
        let (status, retry_after, body) =
            post_hook(&http, &base, &hook_id, json!({"text": text}), &[]).await;
        assert_eq!(status, 503, "a webhook while the database is down: {body}");
        assert!(retry_after.is_some(), "503 without Retry-After: {body}");
        let error: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(error["status_code"], 503, "{error}");
        let read = http
            .get(format!("{base}/api/v4/channels/{channel_id}/posts"))
            .bearer_auth(&cluster.token)
            .send()
            .await
            .expect("an answer, not a hang");
        // Not 401 either: a client told its session expired signs its user out.
        assert_eq!(
            read.status().as_u16(),
            503,
            "a read while the database is down"
        );
        assert!(read.headers().contains_key("retry-after"));
    }
    let health = api.get("/api/v4/system/ping?get_server_status=true").await;
    assert_eq!(
        health.json()["database_status"],
        "UNHEALTHY",
        "{}",
        health.text
    );

    server.start_again();
    // The node finds the database again by itself: no restart.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut i = 0;
    loop {
        let text = format!("after {i}");
        let (status, _, body) = post_hook(&http, &base, &hook_id, json!({"text": text}), &[]).await;
        if status == 200 {
            acknowledged.push(text);
            break;
        }
        assert_eq!(status, 503, "{body}");
        assert!(
            Instant::now() < deadline,
            "the node never served again: {body}"
        );
        i += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for j in 0..5 {
        let text = format!("later {j}");
        let (status, _, body) = post_hook(&http, &base, &hook_id, json!({"text": text}), &[]).await;
        assert_eq!(status, 200, "{body}");
        acknowledged.push(text);
    }
    let stored = cluster.stored(&channel_id, "%").await;
    for text in &acknowledged {
        assert_eq!(
            stored.get(text),
            Some(&1),
            "{text} was acknowledged: {stored:?}"
        );
    }
    assert!(
        !stored.keys().any(|m| m.starts_with("during ")),
        "a refused request was stored: {stored:?}"
    );
    drop(cluster);
    drop(server);
}
