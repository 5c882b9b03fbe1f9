//! The bus on PostgreSQL: a message is a `cluster_events` row, announced by
//! `NOTIFY switchboard` in the transaction that writes it; each node listens
//! on a connection of its own and reads the rows after the last it saw. The
//! active configuration (`configurations`) and the first start's lock live
//! here too, on the same small runtime.

use super::{Message, Subscribers};
use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::{AsyncMessage, Client, NoTls};

/// The channel every node listens on.
const CHANNEL: &str = "switchboard";
/// The transaction lock publishers take, so that ids commit in the order
/// they are given: a listener reading `id > last` never skips a row that
/// commits later with a smaller id.
const PUBLISH_LOCK: i64 = 0x5357_4255_5331; // "SWBUS1"
/// Taken by a write of the active configuration, so two nodes never leave
/// two active rows.
const CONFIG_LOCK: i64 = 0x5357_434f_4e46; // "SWCONF"
/// The session lock a first start runs under.
const FIRST_START_LOCK: i64 = 0x5357_4649_5253; // "SWFIRS"
/// How long messages are kept for a listener that lost its connection.
/// The active configuration row: its id and document.
const ACTIVE_CONFIG: &str = "SELECT id, value FROM configurations WHERE active = 1
                             ORDER BY create_at DESC, id DESC LIMIT 1";
const KEPT: Duration = Duration::from_secs(10 * 60);
/// At most this many messages wait to be written while the database is
/// away; more are dropped (and counted in the log): websocket clients
/// resync on reconnect, config and caches have their own safety nets.
const MAX_WAITING: usize = 100_000;
/// Messages written in one transaction at most.
const BATCH: usize = 256;
/// Rows read per query when catching up.
const PAGE: i64 = 1000;
/// How long a caller on another runtime waits for a database answer.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// The bus's timings.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// The first wait before the listener reconnects; it doubles up to
    /// `reconnect_max` while the database stays away.
    pub reconnect_first: Duration,
    pub reconnect_max: Duration,
    /// The listener also reads new rows this often without a notification:
    /// a safety net, never the way messages normally arrive.
    pub poll: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            reconnect_first: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
            poll: Duration::from_secs(5),
        }
    }
}

enum Outgoing {
    Message { kind: String, payload: String },
    Flush(oneshot::Sender<()>),
}

struct Shared {
    config: tokio_postgres::Config,
    node: String,
    subscribers: Arc<Subscribers>,
    options: PgOptions,
    /// The publisher's connection, also used for the configuration; `None`
    /// until (re)connected.
    client: tokio::sync::Mutex<Option<Client>>,
    reconnects: AtomicU64,
    waiting: AtomicUsize,
}

/// The PostgreSQL bus of one node: its runtime (one thread), the publisher
/// and the listener tasks. Both end when it is dropped.
pub struct PgBus {
    runtime: Option<tokio::runtime::Runtime>,
    outgoing: mpsc::UnboundedSender<Outgoing>,
    shared: Arc<Shared>,
}

impl Drop for PgBus {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which an async caller may not do.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn connect(
    config: &tokio_postgres::Config,
) -> Result<
    (
        Client,
        tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>,
    ),
    tokio_postgres::Error,
> {
    config.connect(NoTls).await
}

/// A client whose connection is driven by a task of its own.
async fn connect_client(config: &tokio_postgres::Config) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = connect(config).await?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!("cluster: a bus connection ended: {err}");
        }
    });
    Ok(client)
}

fn now_millis() -> i64 {
    crate::store::now_millis()
}

impl PgBus {
    pub(super) fn start(
        data_source: &str,
        node: &str,
        subscribers: Arc<Subscribers>,
        options: PgOptions,
    ) -> anyhow::Result<PgBus> {
        let mut config: tokio_postgres::Config = data_source
            .parse()
            .map_err(|e| anyhow::anyhow!("SqlSettings.DataSource is not a libpq string: {e}"))?;
        config.application_name("switchboard bus");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("switchboard-bus")
            .enable_all()
            .build()?;
        let shared = Arc::new(Shared {
            config,
            node: node.to_string(),
            subscribers,
            options,
            client: tokio::sync::Mutex::new(None),
            reconnects: AtomicU64::new(0),
            waiting: AtomicUsize::new(0),
        });
        let (outgoing, queue) = mpsc::unbounded_channel();
        let bus = PgBus {
            runtime: Some(runtime),
            outgoing,
            shared: shared.clone(),
        };
        // Messages published from now on are this node's to hear: the
        // listener starts after the last row there is, and listens before
        // `start` returns.
        let (listening, ready) = std::sync::mpsc::sync_channel(1);
        let handle = bus.handle();
        handle.spawn(listen(shared.clone(), listening));
        match ready.recv_timeout(CALL_TIMEOUT) {
            Ok(Ok(())) => {}
            Ok(Err(err)) => anyhow::bail!("cluster: listening on the database failed: {err}"),
            Err(_) => anyhow::bail!("cluster: the database did not answer in time"),
        }
        handle.spawn(publish(shared, queue));
        Ok(bus)
    }

    fn handle(&self) -> tokio::runtime::Handle {
        self.runtime
            .as_ref()
            .expect("the runtime lives as long as the bus")
            .handle()
            .clone()
    }

    pub(super) fn publish(&self, kind: &str, payload: String) {
        if self.shared.waiting.load(Ordering::Relaxed) >= MAX_WAITING {
            tracing::warn!(
                "cluster: {MAX_WAITING} messages wait for the database; dropping a `{kind}` message"
            );
            return;
        }
        self.shared.waiting.fetch_add(1, Ordering::Relaxed);
        let _ = self.outgoing.send(Outgoing::Message {
            kind: kind.to_string(),
            payload,
        });
    }

    pub(super) fn flush(&self, timeout: Duration) -> bool {
        let (done, flushed) = oneshot::channel();
        if self.outgoing.send(Outgoing::Flush(done)).is_err() {
            return false;
        }
        let wait = async move { tokio::time::timeout(timeout, flushed).await };
        matches!(self.block(async move { Ok(wait.await) }), Ok(Ok(Ok(()))))
    }

    pub(super) fn reconnects(&self) -> u64 {
        self.shared.reconnects.load(Ordering::Relaxed)
    }

    /// Runs `work` on the bus's runtime and waits for it (from sync code,
    /// on any other thread; never from a subscriber).
    fn block<T: Send + 'static>(
        &self,
        work: impl Future<Output = anyhow::Result<T>> + Send + 'static,
    ) -> anyhow::Result<T> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle().spawn(async move {
            let _ = tx.send(work.await);
        });
        rx.recv_timeout(CALL_TIMEOUT)
            .map_err(|_| anyhow::anyhow!("the database did not answer in time"))?
    }

    /// Runs `work` on the bus's runtime, awaited from another runtime.
    async fn call<T: Send + 'static>(
        &self,
        work: impl Future<Output = anyhow::Result<T>> + Send + 'static,
    ) -> anyhow::Result<T> {
        let task = self.handle().spawn(work);
        tokio::time::timeout(CALL_TIMEOUT, task)
            .await
            .map_err(|_| anyhow::anyhow!("the database did not answer in time"))??
    }

    /// The active configuration document: its row id and its JSON.
    pub async fn active_config(&self) -> anyhow::Result<Option<(String, String)>> {
        let shared = self.shared.clone();
        self.call(async move {
            with_client(&shared, async |client| {
                let row = client.query_opt(ACTIVE_CONFIG, &[]).await?;
                Ok(row.map(|r| (r.get(0), r.get(1))))
            })
            .await
        })
        .await
    }

    /// Makes `value` the active configuration; returns its row id.
    pub fn save_config(&self, value: String) -> anyhow::Result<String> {
        let shared = self.shared.clone();
        self.block(async move {
            with_client(&shared, async |client| {
                let tx = client.transaction().await?;
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CONFIG_LOCK])
                    .await?;
                tx.execute(
                    "UPDATE configurations SET active = 0 WHERE active = 1",
                    &[],
                )
                .await?;
                let id = crate::store::new_id();
                tx.execute(
                    "INSERT INTO configurations (id, value, create_at, active) VALUES ($1, $2, $3, 1)",
                    &[&id, &value, &now_millis()],
                )
                .await?;
                tx.commit().await?;
                Ok(id)
            })
            .await
        })
    }

    /// The active configuration, made `value` first when there is none (the
    /// first node's file seeds the cluster's).
    pub fn adopt_config(&self, value: String) -> anyhow::Result<(String, String)> {
        let shared = self.shared.clone();
        self.block(async move {
            with_client(&shared, async |client| {
                let tx = client.transaction().await?;
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CONFIG_LOCK])
                    .await?;
                let row = tx
                    .query_opt(
                        ACTIVE_CONFIG,
                        &[],
                    )
                    .await?;
                let active = match row {
                    Some(row) => (row.get(0), row.get(1)),
                    None => {
                        let id = crate::store::new_id();
                        tx.execute(
                            "INSERT INTO configurations (id, value, create_at, active) VALUES ($1, $2, $3, 1)",
                            &[&id, &value, &now_millis()],
                        )
                        .await?;
                        (id, value)
                    }
                };
                tx.commit().await?;
                Ok(active)
            })
            .await
        })
    }

    /// Waits for the cluster's first-start lock, on a connection of its own
    /// (a session lock: held until released or the connection ends, so a
    /// node killed mid-start frees it).
    pub fn first_start_lock(&self) -> anyhow::Result<FirstStartLock> {
        let config = self.shared.config.clone();
        let client = self.block(async move {
            let client = connect_client(&config).await?;
            client
                .execute("SELECT pg_advisory_lock($1)", &[&FIRST_START_LOCK])
                .await?;
            Ok(client)
        })?;
        Ok(FirstStartLock {
            client: Some(client),
            handle: self.handle(),
        })
    }
}

/// Held while a node runs its first start (see [`PgBus::first_start_lock`]).
pub struct FirstStartLock {
    client: Option<Client>,
    handle: tokio::runtime::Handle,
}

impl Drop for FirstStartLock {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            // Unlocked explicitly; closing the connection would do it too.
            self.handle.spawn(async move {
                let _ = client
                    .execute("SELECT pg_advisory_unlock($1)", &[&FIRST_START_LOCK])
                    .await;
            });
        }
    }
}

/// Runs `work` with the shared client, connecting first when needed; a
/// failure drops the connection so that the next use makes a new one.
async fn with_client<T>(
    shared: &Shared,
    work: impl AsyncFnOnce(&mut Client) -> Result<T, tokio_postgres::Error>,
) -> anyhow::Result<T> {
    let mut slot = shared.client.lock().await;
    let client = match &mut *slot {
        Some(client) if !client.is_closed() => client,
        slot => slot.insert(connect_client(&shared.config).await?),
    };
    match work(client).await {
        Ok(value) => Ok(value),
        Err(err) => {
            *slot = None;
            Err(err.into())
        }
    }
}

/// The publisher: writes what this node publishes, in order, a batch per
/// transaction, retrying while the database is away; prunes old rows.
async fn publish(shared: Arc<Shared>, mut queue: mpsc::UnboundedReceiver<Outgoing>) {
    // (when, the last id written then): rows older than `KEPT` are pruned
    // by id, along the primary key.
    let mut written: VecDeque<(Instant, i64)> = VecDeque::new();
    let mut flushes = Vec::new();
    while let Some(first) = queue.recv().await {
        let mut batch = Vec::new();
        let mut next = Some(first);
        while let Some(item) = next.take() {
            match item {
                Outgoing::Message { kind, payload } => batch.push((kind, payload)),
                Outgoing::Flush(done) => flushes.push(done),
            }
            if batch.len() < BATCH {
                next = queue.try_recv().ok();
            }
        }
        let mut wait = shared.options.reconnect_first;
        while !batch.is_empty() {
            match write_batch(&shared, &batch).await {
                Ok(last) => {
                    shared.waiting.fetch_sub(batch.len(), Ordering::Relaxed);
                    let now = Instant::now();
                    if written.back().is_none_or(|(at, _)| now - *at > KEPT / 10) {
                        written.push_back((now, last));
                    }
                    break;
                }
                Err(err) => {
                    tracing::warn!(
                        "cluster: publishing {} messages failed (trying again in {} ms): {err}",
                        batch.len(),
                        wait.as_millis()
                    );
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(shared.options.reconnect_max);
                }
            }
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
        if let Some(&(at, id)) = written.front()
            && at.elapsed() > KEPT
        {
            written.pop_front();
            let pruned = with_client(&shared, async |client| {
                client
                    .execute("DELETE FROM cluster_events WHERE id <= $1", &[&id])
                    .await
            })
            .await;
            if let Err(err) = pruned {
                tracing::debug!("cluster: pruning old messages failed: {err}");
            }
        }
    }
}

/// One transaction: the rows, then one notification carrying the last id
/// (a listener reads every row after the last it saw, so one wake-up per
/// batch is enough); it goes out at commit, when the rows are visible.
async fn write_batch(shared: &Shared, batch: &[(String, String)]) -> anyhow::Result<i64> {
    with_client(shared, async |client| {
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PUBLISH_LOCK])
            .await?;
        let insert = tx
            .prepare(
                "INSERT INTO cluster_events (kind, payload, node, create_at)
                 VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .await?;
        let mut last = 0i64;
        let now = now_millis();
        for (kind, payload) in batch {
            let row = tx
                .query_one(&insert, &[kind, payload, &shared.node, &now])
                .await?;
            last = row.get(0);
        }
        tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &last.to_string()])
            .await?;
        tx.commit().await?;
        Ok(last)
    })
    .await
}

/// The listener: one connection of its own, `LISTEN switchboard`, rows read
/// after the last seen; on a lost connection it comes back with backoff and
/// catches up from the last id seen, so nothing published meanwhile is lost.
async fn listen(
    shared: Arc<Shared>,
    ready: std::sync::mpsc::SyncSender<Result<(), tokio_postgres::Error>>,
) {
    let mut last: Option<i64> = None;
    let mut ready = Some(ready);
    let mut wait = shared.options.reconnect_first;
    loop {
        let mut listened = false;
        let outcome = session(&shared, &mut last, &mut ready, &mut listened).await;
        if let Some(ready) = ready.take() {
            // The first connection failed: `start` reports it.
            let _ = ready.send(outcome);
            return;
        }
        if listened {
            wait = shared.options.reconnect_first;
        }
        let err = match outcome {
            Ok(()) => "the connection closed".to_string(),
            Err(err) => err.to_string(),
        };
        tracing::warn!(
            "cluster: the bus listener lost the database ({err}); reconnecting in {} ms",
            wait.as_millis()
        );
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(shared.options.reconnect_max);
        shared.reconnects.fetch_add(1, Ordering::Relaxed);
    }
}

/// One listening connection, until it is lost; `listened` is set once it
/// listens (the backoff then starts over).
async fn session(
    shared: &Shared,
    last: &mut Option<i64>,
    ready: &mut Option<std::sync::mpsc::SyncSender<Result<(), tokio_postgres::Error>>>,
    listened: &mut bool,
) -> Result<(), tokio_postgres::Error> {
    let mut config = shared.config.clone();
    // Named, so an operator (or a test) can tell it from the publisher.
    config.application_name(format!("switchboard bus listener {}", shared.node));
    let (client, mut connection) = connect(&config).await?;
    let (notified, mut notifications) = mpsc::unbounded_channel::<i64>();
    // Drives the connection and hands notifications over; ends (dropping
    // `notified`) when the connection is lost.
    let driver = tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = futures::StreamExt::next(&mut messages).await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    // An unreadable payload still means "read what is new".
                    let id = n.payload().parse().unwrap_or(i64::MAX);
                    if notified.send(id).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::debug!("cluster: the bus listener's connection failed: {err}");
                    break;
                }
            }
        }
    });
    let _stop_driver = AbortOnDrop(driver);
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    let after = match *last {
        Some(id) => id,
        None => {
            let row = client
                .query_one("SELECT COALESCE(MAX(id), 0) FROM cluster_events", &[])
                .await?;
            row.get(0)
        }
    };
    *last = Some(after);
    *listened = true;
    if let Some(ready) = ready.take() {
        let _ = ready.send(Ok(()));
    }
    catch_up(shared, &client, last).await?;
    loop {
        tokio::select! {
            id = notifications.recv() => match id {
                Some(id) if Some(id) <= *last => {}
                Some(_) => catch_up(shared, &client, last).await?,
                None => return Ok(()),
            },
            () = tokio::time::sleep(shared.options.poll) => catch_up(shared, &client, last).await?,
        }
    }
}

/// Hands every row after `last` to the subscribers, in id order, skipping
/// this node's own (it acted on them when it published them).
async fn catch_up(
    shared: &Shared,
    client: &Client,
    last: &mut Option<i64>,
) -> Result<(), tokio_postgres::Error> {
    loop {
        let after = last.unwrap_or(0);
        let rows = client
            .query(
                "SELECT id, kind, payload, node FROM cluster_events
                 WHERE id > $1 ORDER BY id LIMIT $2",
                &[&after, &PAGE],
            )
            .await?;
        let full = rows.len() as i64 == PAGE;
        for row in rows {
            let message = Message {
                id: row.get(0),
                kind: row.get(1),
                payload: row.get(2),
                node: row.get(3),
            };
            *last = Some(message.id);
            if message.node != shared.node {
                shared.subscribers.deliver(&message);
            }
        }
        if !full {
            return Ok(());
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
