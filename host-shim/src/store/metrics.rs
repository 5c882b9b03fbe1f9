//! The `metrics` import's series, written every few seconds from memory
//! (`app::metrics`) so per-integration counts survive a restart.

use super::{Result, Store};
use crate::app::metrics::{Changes, StoredSeries};
use crate::args;

impl Store {
    /// Every stored series, read once on start.
    pub fn metric_series(&self) -> Result<Vec<StoredSeries>> {
        let conn = self.conn()?;
        let rows = conn.rows(
            "SELECT key, requests, failures, posts, last_at, histogram FROM metric_series",
            args![],
            |r| {
                Ok(StoredSeries {
                    key: r.get(0)?,
                    requests: r.get::<_, i64>(1)?.max(0) as u64,
                    failures: r.get::<_, i64>(2)?.max(0) as u64,
                    posts: r.get::<_, i64>(3)?.max(0) as u64,
                    last_at: r.get(4)?,
                    histogram: r.get(5)?,
                })
            },
        )?;
        Ok(rows)
    }

    /// Writes what changed since the last flush, in one transaction.
    pub async fn save_metric_changes(&self, changes: &Changes) -> Result<()> {
        let changed = changes.changed.clone();
        let removed = changes.removed.clone();
        self.writer
            .write_async(move |c| {
                for s in &changed {
                    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
                    c.execute(
                    "INSERT INTO metric_series (key, requests, failures, posts, last_at, histogram)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (key) DO UPDATE SET requests = excluded.requests,
                       failures = excluded.failures, posts = excluded.posts,
                       last_at = excluded.last_at, histogram = excluded.histogram",
                    args![
                        s.key,
                        count(s.requests),
                        count(s.failures),
                        count(s.posts),
                        s.last_at,
                        s.histogram
                    ])?;
                }
                for key in &removed {
                    c.execute("DELETE FROM metric_series WHERE key = ?1", args![key])?;
                }
                Ok(())
            })
            .await
    }
}
