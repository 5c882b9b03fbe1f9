//! The database's health, as `GET /api/v4/system/ping?get_server_status=true`
//! reports it: a read and a write, each a real statement.

use super::{CommitStats, Result, Store, StoreError};
use crate::args;
use std::time::Duration;

/// How long the health check waits for its write: a writer that cannot
/// commit within it (another process holding the lock, a stuck disk) is
/// what an operator needs to hear about.
pub const HEALTH_WRITE_TIMEOUT: Duration = Duration::from_secs(2);

impl Store {
    /// The writer's commit statistics, for the metrics registry.
    pub fn commit_stats(&self) -> &CommitStats {
        &self.commits
    }

    /// Reads the schema version on the readers' connection, then rewrites a
    /// row of `schema_migrations` with its own value through the writer (as
    /// Mattermost writes and deletes a row of its `Systems` table): the read
    /// shows the file can be read, the write that the writer can take the
    /// lock, write and sync within [`HEALTH_WRITE_TIMEOUT`].
    pub async fn health_check(&self) -> Result<()> {
        let version: i64 = self.conn()?.one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            args![],
            |r| r.get(0),
        )?;
        let write = self.writer.write_async(move |c| {
            c.execute(
                "UPDATE schema_migrations SET applied_at = applied_at WHERE version = ?1",
                args![version],
            )?;
            Ok(())
        });
        match tokio::time::timeout(HEALTH_WRITE_TIMEOUT, write).await {
            Ok(outcome) => outcome,
            Err(_) => Err(StoreError::Db(format!(
                "a write was not committed within {} s",
                HEALTH_WRITE_TIMEOUT.as_secs()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_database_another_process_holds_locked_is_unhealthy_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let store = Store::open(&path).unwrap();
        store.health_check().await.unwrap();

        let other = rusqlite::Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let err = store.health_check().await.unwrap_err();
        assert!(err.to_string().contains("not committed"), "{err}");
        other.execute_batch("ROLLBACK").unwrap();
        // The writer recovers once the lock is free (its stuck batch fails
        // with SQLITE_BUSY after the busy timeout at most).
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while store.health_check().await.is_err() {
            assert!(std::time::Instant::now() < deadline, "never healthy again");
        }
    }
}
