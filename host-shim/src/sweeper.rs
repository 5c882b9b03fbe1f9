//! Deletes the plugin's expired kv keys in the background. An expired key
//! already reads as absent; sweeping only gives the space back, so it runs
//! off the request path, on a period, in small batches: each batch is one
//! write of the group-commit writer, and the writes queued while it ran are
//! served before the next one, so webhooks never wait behind a whole sweep.

use crate::app::App;
use crate::store::{Result, Store};
use std::sync::Weak;
use std::time::Duration;

/// Most keys one batch deletes (one write, one short transaction).
pub const BATCH: u32 = 1_000;

/// How often the sweeper looks for expired keys.
pub const PERIOD: Duration = Duration::from_secs(10 * 60);

/// What one sweep did: the keys deleted by each batch, in order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Sweep {
    pub batches: Vec<usize>,
}

impl Sweep {
    pub fn deleted(&self) -> usize {
        self.batches.iter().sum()
    }
}

/// Deletes every key expired at `now`, [`BATCH`] at a time, until a batch
/// comes back short. After each batch the task yields, then awaits
/// `between(batches so far)` (tests look at what else ran meanwhile).
pub async fn sweep<F, Fut>(store: &Store, now: i64, mut between: F) -> Result<Sweep>
where
    F: FnMut(&Sweep) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut done = Sweep::default();
    loop {
        let deleted = store.kv_sweep_batch(now, BATCH).await?;
        done.batches.push(deleted);
        if deleted < BATCH as usize {
            return Ok(done);
        }
        tokio::task::yield_now().await;
        between(&done).await;
    }
}

/// Sweeps every [`PERIOD`] (the first one [`PERIOD`] after start), by the
/// server's clock, until the App is dropped.
pub async fn run(app: Weak<App>) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + PERIOD, PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(app) = app.upgrade() else { break };
        let now = app.clock.now_millis();
        match sweep(&app.store, now, |_| async {}).await {
            Ok(done) if done.deleted() > 0 => tracing::info!(
                "kv: deleted {} expired keys in {} batches",
                done.deleted(),
                done.batches.len()
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!("kv: sweeping expired keys failed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::Clock;
    use std::sync::{Arc, Mutex};

    fn store_at(dir: &std::path::Path, clock: &Clock) -> Store {
        let mut store = Store::open(&dir.join("db")).unwrap();
        store.set_clock(clock.clone());
        store
    }

    #[tokio::test]
    async fn a_sweep_deletes_expired_keys_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Clock::fixed(1_000_000);
        let store = store_at(dir.path(), &clock);
        store.kv_set_with_expiry("old/1", b"a", 60).unwrap();
        store.kv_set_with_expiry("old/2", b"b", 60).unwrap();
        store.kv_set_with_expiry("fresh", b"c", 3600).unwrap();
        store.kv_set("forever", b"d").unwrap();
        clock.advance(Duration::from_secs(61));
        let done = sweep(&store, clock.now_millis(), |_| async {})
            .await
            .unwrap();
        assert_eq!(done.batches, [2]);
        // Gone from the table itself, not only hidden.
        let rows: Vec<String> = {
            let conn = rusqlite::Connection::open(dir.path().join("db")).unwrap();
            let mut stmt = conn.prepare("SELECT key FROM kv ORDER BY key").unwrap();
            stmt.query_map([], |r| r.get(0))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap()
        };
        assert_eq!(rows, ["forever", "fresh"]);
        assert_eq!(store.kv_get("fresh").unwrap().as_deref(), Some(&b"c"[..]));
        // Nothing left to do: one empty batch.
        let again = sweep(&store, clock.now_millis(), |_| async {})
            .await
            .unwrap();
        assert_eq!(again.batches, [0]);
    }

    /// 100,000 expired keys go in batches of at most [`BATCH`], and writes
    /// made while the sweep is under way are committed between its batches:
    /// the writer is never held for the whole sweep.
    #[tokio::test]
    async fn a_large_sweep_runs_in_bounded_batches_between_other_writes() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Clock::fixed(1_000_000);
        let store = Arc::new(store_at(dir.path(), &clock));
        let expiring: Vec<String> = (0..100_000).map(|i| format!("old/{i:06}")).collect();
        for chunk in expiring.chunks(10_000) {
            let entries = chunk.iter().map(|k| (k.clone(), b"x".to_vec())).collect();
            store.kv_import_with_expiry(entries, 1).unwrap();
        }
        store.kv_set("keep", b"k").unwrap();
        clock.advance(Duration::from_secs(2));

        // Between batches, a write of someone else's (as a webhook's post
        // would be) is made, and is committed while expired rows remain.
        let between_writes = Arc::new(Mutex::new(Vec::new()));
        let db = dir.path().join("db");
        let (writes, s) = (between_writes.clone(), store.clone());
        let done = sweep(&store, clock.now_millis(), move |so_far: &Sweep| {
            let (writes, store, db) = (writes.clone(), s.clone(), db.clone());
            let batch = so_far.batches.len();
            async move {
                let key = format!("during/{batch:03}");
                store.kv_set(&key, b"w").unwrap();
                let left: i64 = rusqlite::Connection::open(db)
                    .unwrap()
                    .query_row("SELECT COUNT(*) FROM kv WHERE expire_at > 0", [], |r| {
                        r.get(0)
                    })
                    .unwrap();
                writes.lock().unwrap().push((batch, left));
            }
        })
        .await
        .unwrap();

        assert_eq!(done.deleted(), 100_000);
        assert!(done.batches.iter().all(|&n| n <= BATCH as usize));
        assert_eq!(done.batches.len(), 101, "100 full batches and a short one");
        let writes = between_writes.lock().unwrap();
        assert_eq!(writes.len(), 100, "a write committed after each full batch");
        for (batch, left) in writes.iter() {
            assert_eq!(
                *left as usize,
                100_000 - batch * BATCH as usize,
                "after batch {batch}, the rest still waits"
            );
        }
        assert_eq!(store.kv_list("during/", 0, 1000).unwrap().len(), 100);
        assert_eq!(store.kv_get("keep").unwrap().as_deref(), Some(&b"k"[..]));
    }
}
