//! Writes: each caller returns only after its write is committed.
//!
//! SQLite: group commit. Every write goes to one writer thread, which runs
//! all the writes waiting at that moment in one transaction and syncs once.
//!
//! PostgreSQL: a few writer threads, each running one write per transaction
//! on a pooled connection. The server groups concurrent commits into one
//! WAL flush itself, and short transactions keep row locks short, so writes
//! from several nodes do not wait on each other's batches (nor deadlock on
//! them).

use super::StoreError;
use super::postgres::Postgres;
use super::sql::Db;
use rusqlite::Connection;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, sync_channel};
use std::thread::JoinHandle;
use std::time::Instant;

/// What the writer reports of its commits (`switchboard_db_commit_*`).
/// Clones share their counts.
#[derive(Clone)]
pub struct CommitStats {
    /// Writes per transaction.
    pub batch_size: prometheus_client::metrics::histogram::Histogram,
    /// Seconds from `BEGIN` to the end of `COMMIT` (its sync included).
    pub duration: prometheus_client::metrics::histogram::Histogram,
    /// Transactions that could not begin or commit.
    pub failures: prometheus_client::metrics::counter::Counter,
}

impl Default for CommitStats {
    fn default() -> Self {
        CommitStats {
            batch_size: crate::telemetry::batch_histogram(),
            duration: crate::telemetry::latency_histogram(),
            failures: Default::default(),
        }
    }
}

/// At most this many writes share one commit; bounds the latency of the first.
const MAX_BATCH: usize = 256;

type Reply = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// Runs one write on the writer's connection; says whether it succeeded and
/// how to answer its caller once the batch's commit is known.
type Job = Box<dyn FnOnce(&Db) -> (bool, Reply) + Send>;

pub struct Writer {
    jobs: Option<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
    /// Writes queued or running, for [`Writer::flush`].
    pending: Arc<AtomicUsize>,
}

impl Writer {
    /// The SQLite writer: one thread, group commit on `conn`.
    pub fn start(conn: Connection, stats: CommitStats) -> std::io::Result<Writer> {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let pending = Arc::new(AtomicUsize::new(0));
        let done = pending.clone();
        let thread = std::thread::Builder::new()
            .name("switchboard-store-writer".into())
            .spawn(move || run(conn, queue, stats, done))?;
        Ok(Writer {
            jobs: Some(jobs),
            threads: vec![thread],
            pending,
        })
    }

    /// The PostgreSQL writer: `threads` threads, one transaction per write.
    pub fn start_postgres(
        postgres: Arc<Postgres>,
        threads: usize,
        stats: CommitStats,
    ) -> std::io::Result<Writer> {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(std::sync::Mutex::new(queue));
        let pending = Arc::new(AtomicUsize::new(0));
        let threads = (0..threads.max(1))
            .map(|i| {
                let (postgres, queue, stats, done) = (
                    postgres.clone(),
                    queue.clone(),
                    stats.clone(),
                    pending.clone(),
                );
                std::thread::Builder::new()
                    .name(format!("switchboard-store-writer-{i}"))
                    .spawn(move || run_postgres(&postgres, &queue, &stats, &done))
            })
            .collect::<std::io::Result<_>>()?;
        Ok(Writer {
            jobs: Some(jobs),
            threads,
            pending,
        })
    }

    /// Returns once every write queued before it is committed (or failed).
    pub async fn flush(&self) {
        while self.pending.load(Ordering::Acquire) > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    }

    /// Runs `f` in the writer's current transaction, atomically (a savepoint
    /// undoes it alone if it fails), and returns once that transaction is
    /// committed.
    pub fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Db) -> Result<T, StoreError> + Send + 'static,
    {
        let (answer, answered) = sync_channel::<Result<T, StoreError>>(1);
        self.submit(f, move |outcome| {
            let _ = answer.send(outcome);
        })?;
        answered.recv().map_err(|_| stopped())?
    }

    /// [`Writer::write`] for async callers: the caller's task is parked, not
    /// its thread, while the commit is made, so a request on a runtime worker
    /// needs no hop to a blocking thread to wait for its write.
    pub fn write_async<T, F>(
        &self,
        f: F,
    ) -> impl Future<Output = Result<T, StoreError>> + Send + use<T, F>
    where
        T: Send + 'static,
        F: FnOnce(&Db) -> Result<T, StoreError> + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel::<Result<T, StoreError>>();
        let submitted = self.submit(f, move |outcome| {
            let _ = answer.send(outcome);
        });
        async move {
            submitted?;
            answered.await.map_err(|_| stopped())?
        }
    }

    /// Queues `f` for the next batch; `answer` gets its result once the
    /// batch's commit is known.
    fn submit<T, F>(
        &self,
        f: F,
        answer: impl FnOnce(Result<T, StoreError>) + Send + 'static,
    ) -> Result<(), StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Db) -> Result<T, StoreError> + Send + 'static,
    {
        let done = self.pending.clone();
        let job: Job = Box::new(move |db| {
            let result = f(db);
            let ok = result.is_ok();
            let reply: Reply = Box::new(move |commit| {
                answer(commit.and(result));
                done.fetch_sub(1, Ordering::AcqRel);
            });
            (ok, reply)
        });
        let jobs = self.jobs.as_ref().ok_or_else(stopped)?;
        self.pending.fetch_add(1, Ordering::AcqRel);
        jobs.send(job).map_err(|_| {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            stopped()
        })
    }
}

/// A write dropped unrun (its transaction could not begin, the writer
/// stopped): the caller may try again.
fn stopped() -> StoreError {
    StoreError::Unavailable("the write was not committed (see the server log)".into())
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the queue ends the thread after the writes already queued.
        self.jobs.take();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn run(conn: Connection, queue: Receiver<Job>, stats: CommitStats, pending: Arc<AtomicUsize>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let size = batch.len();
        let started = Instant::now();
        let before = batch.len();
        let replies = commit_batch(&conn, batch, &stats);
        // Jobs dropped unrun (no transaction) are no longer pending.
        pending.fetch_sub(before - replies.len(), Ordering::AcqRel);
        stats.duration.observe(started.elapsed().as_secs_f64());
        stats.batch_size.observe(size as f64);
        for (reply, outcome) in replies {
            reply(outcome);
        }
    }
}

/// One transaction for the whole batch, one savepoint per write.
fn commit_batch(
    conn: &Connection,
    batch: Vec<Job>,
    stats: &CommitStats,
) -> Vec<(Reply, Result<(), StoreError>)> {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        stats.failures.inc();
        tracing::error!("store: cannot begin a transaction: {e}");
        // Dropping the jobs unrun answers each caller with an error.
        return Vec::new();
    }
    let mut replies = Vec::with_capacity(batch.len());
    for job in batch {
        let savepoint = conn.execute_batch("SAVEPOINT job");
        let (ok, reply) = job(&Db::Sqlite(conn));
        let end = if ok {
            "RELEASE job"
        } else {
            "ROLLBACK TO job; RELEASE job"
        };
        match savepoint.and_then(|_| conn.execute_batch(end)) {
            Ok(()) => replies.push((reply, Ok(()))),
            Err(e) => replies.push((reply, Err(StoreError::from(e)))),
        }
    }
    let commit = conn.execute_batch("COMMIT").map_err(StoreError::from);
    if let Err(e) = &commit {
        stats.failures.inc();
        let _ = conn.execute_batch("ROLLBACK");
        tracing::error!("store commit failed: {e}");
    }
    replies
        .into_iter()
        .map(|(reply, own)| {
            let outcome = match (&commit, own) {
                (Err(e), _) => Err(StoreError::Db(e.to_string())),
                (Ok(()), own) => own,
            };
            (reply, outcome)
        })
        .collect()
}

/// One PostgreSQL writer thread: takes the next write, runs it in a
/// transaction of its own and answers once the commit is known.
fn run_postgres(
    postgres: &Postgres,
    queue: &std::sync::Mutex<Receiver<Job>>,
    stats: &CommitStats,
    pending: &AtomicUsize,
) {
    loop {
        let next = queue.lock().unwrap_or_else(|p| p.into_inner()).recv();
        let Ok(job) = next else { return };
        let started = Instant::now();
        let session = match postgres.session() {
            Ok(session) => session,
            Err(e) => {
                stats.failures.inc();
                tracing::error!("store: cannot begin a transaction: {e}");
                drop(job);
                pending.fetch_sub(1, Ordering::AcqRel);
                continue;
            }
        };
        if let Err(e) = session.batch("BEGIN") {
            stats.failures.inc();
            tracing::error!("store: cannot begin a transaction: {e}");
            drop(job);
            pending.fetch_sub(1, Ordering::AcqRel);
            continue;
        }
        let (ok, reply) = job(&Db::Postgres(&session));
        let end = if ok { "COMMIT" } else { "ROLLBACK" };
        let outcome = session.batch(end);
        if let Err(e) = &outcome {
            stats.failures.inc();
            let _ = session.batch("ROLLBACK");
            tracing::error!("store commit failed: {e}");
        }
        stats.duration.observe(started.elapsed().as_secs_f64());
        stats.batch_size.observe(1.0);
        // A failed write answers with its own error; a failed commit with
        // the commit's.
        reply(if ok { outcome } else { Ok(()) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn job(
        sql: &'static str,
        fail_after: bool,
    ) -> (Job, std::sync::mpsc::Receiver<Result<(), StoreError>>) {
        let (answer, answered) = sync_channel(1);
        let job: Job = Box::new(move |conn| {
            let mut result = conn.batch(sql);
            if fail_after && result.is_ok() {
                result = Err(StoreError::Invalid("fails after writing".into()));
            }
            let ok = result.is_ok();
            let reply: Reply = Box::new(move |commit| {
                let _ = answer.send(commit.and(result));
            });
            (ok, reply)
        });
        (job, answered)
    }

    #[test]
    fn a_failing_write_is_undone_alone_and_the_rest_commit_together() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (v TEXT PRIMARY KEY)")
            .unwrap();
        let (a, a_done) = job("INSERT INTO t VALUES ('a')", false);
        let (b, b_done) = job("INSERT INTO t VALUES ('b')", true);
        let (c, c_done) = job("INSERT INTO t VALUES ('c')", false);
        for (reply, outcome) in commit_batch(&conn, vec![a, b, c], &CommitStats::default()) {
            reply(outcome);
        }
        assert!(a_done.recv().unwrap().is_ok());
        assert!(matches!(
            b_done.recv().unwrap(),
            Err(StoreError::Invalid(_))
        ));
        assert!(c_done.recv().unwrap().is_ok());
        let rows: Vec<String> = conn
            .prepare("SELECT v FROM t ORDER BY v")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(rows, ["a", "c"]);
    }

    #[tokio::test]
    async fn an_async_write_answers_once_committed_and_a_failed_one_with_its_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE t (v TEXT PRIMARY KEY)")
            .unwrap();
        let stats = CommitStats::default();
        let writer = Writer::start(conn, stats.clone()).unwrap();
        // Many at once, from one task: none waits on a thread for another.
        let writes: Vec<_> = (0..20)
            .map(|i| {
                writer.write_async(move |c| {
                    c.execute("INSERT INTO t VALUES (?1)", crate::args![format!("v{i}")])?;
                    Ok(i)
                })
            })
            .collect();
        let done = futures::future::join_all(writes).await;
        assert!(
            done.iter()
                .enumerate()
                .all(|(i, r)| matches!(r, Ok(n) if *n == i))
        );
        let duplicate = writer
            .write_async(|c| c.execute("INSERT INTO t VALUES ('v0')", crate::args![]))
            .await;
        assert!(matches!(duplicate, Err(StoreError::Conflict(_))));
        // Committed: another connection sees every row, and only those.
        let other = Connection::open(&path).unwrap();
        let n: i64 = other
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 20);
        // Every write was counted in a batch, and each batch timed.
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register("batch", "", stats.batch_size.clone());
        registry.register("took", "", stats.duration.clone());
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        let value = |name: &str| -> f64 {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
                .unwrap_or_else(|| panic!("{name} in {text}"))
        };
        assert_eq!(value("batch_sum"), 21.0);
        assert!(value("batch_count") >= 1.0);
        assert_eq!(value("took_count"), value("batch_count"));
        assert_eq!(stats.failures.get(), 0);
    }

    #[test]
    fn concurrent_writers_all_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(super::super::Store::open(&dir.path().join("db")).unwrap());
        let threads: Vec<_> = (0..16)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for i in 0..25 {
                        store.kv_set(&format!("k{t}-{i}"), b"v").unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(store.kv_list("k", 0, 1000).unwrap().len(), 400);
    }
}
