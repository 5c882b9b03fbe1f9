//! Durable outbound delivery jobs (table `deliveries`): stored before they are
//! sent, claimed with leases so processes sharing the file never work one job
//! at once, and kept after they settle so they can be redelivered.

use super::secrets::Cipher;
use super::sql::Row;
use super::{Result, Store, StoreError};
use crate::args;
use serde::{Deserialize, Serialize};

/// The request as stored; the body is its own column.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub timeout_ms: Option<u32>,
}

/// How the host signs each attempt (secrets inside: sealed at rest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StoredSigning {
    Slack(String),
    StandardWebhooks(Vec<String>),
}

/// One attempt, as the delivery log shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AttemptRow {
    pub number: u32,
    pub at: i64,
    pub status: u16,
    pub latency_ms: u32,
    pub error: String,
    pub next_at: i64,
}

/// The last attempt's outcome; a response's body is its own column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StoredOutcome {
    Response {
        status: u16,
        headers: Vec<(String, String)>,
        truncated: bool,
        elapsed_ms: u32,
    },
    /// `kind` names the egress error case (`timeout`, `connect` …).
    Error { kind: String, message: String },
}

pub const PENDING: &str = "pending";

/// Counts of deliveries by what an operator watches (`Store::delivery_gauges`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryGauges {
    pub pending: u64,
    pub failing: u64,
    pub parked: u64,
}
pub const SETTLED: &str = "settled";
pub const DONE: &str = "done";

/// A job as the engine works it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    pub id: String,
    pub group: String,
    pub request: StoredRequest,
    pub body: Vec<u8>,
    pub signing: Vec<StoredSigning>,
    pub continuation: Vec<u8>,
    pub max_attempts: u32,
    /// No attempt starts after this (ms since the epoch).
    pub deadline: i64,
    pub state: String,
    pub attempts: Vec<AttemptRow>,
    pub outcome: Option<(StoredOutcome, Vec<u8>)>,
    pub next_at: i64,
    pub redelivery_of: String,
    pub create_at: i64,
    /// How often the plugin failed on this job's settled result so far.
    pub callback_failures: u32,
}

/// Secrets at rest go through this pair only: sealed with the store's
/// at-rest key (`SqlSettings.AtRestEncryptKey`), the job's id as associated
/// data, so a value moved to another job does not open. A store opened
/// without a key (tests only) keeps them as `plain:` text.
fn seal(cipher: Option<&Cipher>, id: &str, plain: &str) -> String {
    match cipher {
        Some(cipher) => format!(
            "sealed:{}",
            hex::encode(cipher.seal(&secrets_name(id), plain.as_bytes()))
        ),
        None => format!("plain:{plain}"),
    }
}

/// See [`seal`].
fn open(cipher: Option<&Cipher>, id: &str, stored: &str) -> Result<String> {
    let unreadable = || StoreError::Db(format!("delivery {id}: its secrets cannot be opened"));
    if let Some(plain) = stored.strip_prefix("plain:") {
        return Ok(plain.to_string());
    }
    let sealed = stored
        .strip_prefix("sealed:")
        .and_then(|h| hex::decode(h).ok())
        .ok_or_else(unreadable)?;
    let cipher = cipher.ok_or_else(unreadable)?;
    String::from_utf8(cipher.open(&secrets_name(id), sealed)?).map_err(|_| unreadable())
}

fn secrets_name(id: &str) -> String {
    format!("delivery/{id}/secrets")
}

const COLUMNS: &str =
    "id, grp, request, body, secrets, continuation, max_attempts, deadline, state,
    attempts, outcome, outcome_body, next_at, redelivery_of, create_at, callback_failures";

fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::Db(format!("a stored delivery is malformed: {e}"))
}

fn from_row(r: &Row<'_>) -> Result<RawRow> {
    Ok(RawRow {
        id: r.get(0)?,
        group: r.get(1)?,
        request: r.get(2)?,
        body: r.get(3)?,
        secrets: r.get(4)?,
        continuation: r.get(5)?,
        max_attempts: r.get(6)?,
        deadline: r.get(7)?,
        state: r.get(8)?,
        attempts: r.get(9)?,
        outcome: r.get(10)?,
        outcome_body: r.get(11)?,
        next_at: r.get(12)?,
        redelivery_of: r.get(13)?,
        create_at: r.get(14)?,
        callback_failures: r.get(15)?,
    })
}

/// A row before its JSON columns are decoded (outside the SQLite callback).
struct RawRow {
    id: String,
    group: String,
    request: String,
    body: Vec<u8>,
    secrets: String,
    continuation: Vec<u8>,
    max_attempts: u32,
    deadline: i64,
    state: String,
    attempts: String,
    outcome: String,
    outcome_body: Vec<u8>,
    next_at: i64,
    redelivery_of: String,
    create_at: i64,
    callback_failures: u32,
}

impl RawRow {
    fn decode(self, cipher: Option<&Cipher>) -> Result<JobRow> {
        let signing =
            serde_json::from_str(&open(cipher, &self.id, &self.secrets)?).map_err(json_err)?;
        let outcome = if self.outcome.is_empty() {
            None
        } else {
            Some((
                serde_json::from_str(&self.outcome).map_err(json_err)?,
                self.outcome_body,
            ))
        };
        Ok(JobRow {
            id: self.id,
            group: self.group,
            request: serde_json::from_str(&self.request).map_err(json_err)?,
            body: self.body,
            signing,
            continuation: self.continuation,
            max_attempts: self.max_attempts,
            deadline: self.deadline,
            state: self.state,
            attempts: serde_json::from_str(&self.attempts).map_err(json_err)?,
            outcome,
            next_at: self.next_at,
            redelivery_of: self.redelivery_of,
            create_at: self.create_at,
            callback_failures: self.callback_failures,
        })
    }
}

/// Stores `job` with its secrets already sealed (sealing needs the store's
/// key, which the writer thread's closures do not carry).
fn insert(c: &super::sql::Db, job: &JobRow, secrets: &str) -> Result<()> {
    let request = serde_json::to_string(&job.request).map_err(json_err)?;
    c.execute(
        "INSERT INTO deliveries (id, grp, request, body, secrets, continuation, max_attempts,
             deadline, state, next_at, redelivery_of, create_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        args![
            job.id,
            job.group,
            request,
            job.body,
            secrets,
            job.continuation,
            job.max_attempts,
            job.deadline,
            PENDING,
            job.next_at,
            job.redelivery_of,
            job.create_at
        ],
    )?;
    Ok(())
}

/// What `enqueue` comes to when it does not fail outright.
#[derive(Debug, PartialEq, Eq)]
pub enum Enqueued {
    Stored,
    /// The queue holds `active` unsettled jobs; `limit` allows no more.
    Full {
        active: u64,
        limit: u64,
    },
}

impl Store {
    fn seal_signing(&self, job: &JobRow) -> Result<String> {
        let plain = serde_json::to_string(&job.signing).map_err(json_err)?;
        Ok(seal(self.cipher.as_deref(), &job.id, &plain))
    }

    /// Stores new jobs (all or none) unless the queue would pass `limit`
    /// jobs not yet done.
    pub fn enqueue_deliveries(&self, jobs: Vec<JobRow>, limit: u64) -> Result<Enqueued> {
        let sealed = jobs
            .iter()
            .map(|job| self.seal_signing(job))
            .collect::<Result<Vec<_>>>()?;
        self.writer.write(move |c| {
            let active: u64 = c.one(
                "SELECT COUNT(*) FROM deliveries WHERE state != 'done'",
                args![],
                |r| r.get(0),
            )?;
            if active + jobs.len() as u64 > limit {
                return Ok(Enqueued::Full { active, limit });
            }
            for (job, secrets) in jobs.iter().zip(&sealed) {
                let known: bool = c.one(
                    "SELECT EXISTS (SELECT 1 FROM deliveries WHERE id = ?1)",
                    args![job.id],
                    |r| r.get(0),
                )?;
                // A replayed enqueue (derived ids) adds nothing.
                if !known {
                    insert(c, job, secrets)?;
                }
            }
            Ok(Enqueued::Stored)
        })
    }

    /// Leases up to `limit` due jobs (pending ones whose attempt is due,
    /// settled ones whose callback is owed) to `owner` until `lease_until`.
    /// One statement in an immediate transaction: two processes never
    /// lease the same job at once.
    pub fn claim_deliveries(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: u32,
    ) -> Result<Vec<JobRow>> {
        let owner = owner.to_string();
        let raw = self.writer.write(move |c| {
            // On PostgreSQL several nodes claim at once: rows another node is
            // claiming right now are skipped, not waited for, and the due
            // conditions are checked again on the row as it is when locked,
            // so no job is leased to two nodes.
            let skip_locked = match c.backend() {
                super::sql::Backend::Postgres => "FOR UPDATE SKIP LOCKED",
                super::sql::Backend::Sqlite => "",
            };
            let rows = c.rows(
                &format!(
                    "UPDATE deliveries SET lease_owner = ?1, lease_until = ?2
                 WHERE id IN (SELECT id FROM deliveries
                              WHERE state IN ('pending', 'settled') AND next_at <= ?3
                                AND lease_until < ?3
                              ORDER BY next_at LIMIT ?4 {skip_locked})
                   AND state IN ('pending', 'settled') AND next_at <= ?3 AND lease_until < ?3
                 RETURNING {COLUMNS}"
                ),
                args![owner, lease_until, now, limit],
                from_row,
            )?;
            Ok(rows)
        })?;
        raw.into_iter()
            .map(|r| r.decode(self.cipher.as_deref()))
            .collect()
    }

    /// Extends a lease just before an attempt is sent, if `owner` still
    /// holds it: a job that waited for a destination slot past its lease may
    /// have been claimed again meanwhile, and must then not be sent here.
    pub fn renew_delivery_lease(
        &self,
        id: &str,
        owner: &str,
        now: i64,
        lease_until: i64,
    ) -> Result<bool> {
        let (id, owner) = (id.to_string(), owner.to_string());
        self.writer.write(move |c| {
            let changed = c.execute(
                "UPDATE deliveries SET lease_until = ?4
                 WHERE id = ?1 AND lease_owner = ?2 AND lease_until >= ?3 AND state = 'pending'",
                args![id, owner, now, lease_until],
            )?;
            Ok(changed == 1)
        })
    }

    /// Records an attempt on a job `owner` still leases: the attempts so far,
    /// the outcome, and the next state. Returns false when the lease was lost
    /// (another process owns the job now), in which case nothing is written.
    #[allow(clippy::too_many_arguments)]
    pub fn record_delivery_attempt(
        &self,
        id: &str,
        owner: &str,
        attempts: &[AttemptRow],
        outcome: &(StoredOutcome, Vec<u8>),
        state: &str,
        next_at: i64,
        lease_until: i64,
    ) -> Result<bool> {
        let attempts = serde_json::to_string(attempts).map_err(json_err)?;
        let outcome_json = serde_json::to_string(&outcome.0).map_err(json_err)?;
        let body = outcome.1.clone();
        let (id, owner, state) = (id.to_string(), owner.to_string(), state.to_string());
        self.writer.write(move |c| {
            let changed = c.execute(
                "UPDATE deliveries SET attempts = ?3, outcome = ?4, outcome_body = ?5, state = ?6,
                     next_at = ?7, lease_until = ?8,
                     lease_owner = CASE WHEN CAST(?8 AS BIGINT) = 0 THEN '' ELSE lease_owner END
                 WHERE id = ?1 AND lease_owner = ?2 AND state = 'pending'",
                args![
                    id,
                    owner,
                    attempts,
                    outcome_json,
                    body,
                    state,
                    next_at,
                    lease_until
                ],
            )?;
            Ok(changed == 1)
        })
    }

    /// The plugin has acted on a settled job: done, lease released.
    pub fn finish_delivery(&self, id: &str, owner: &str) -> Result<bool> {
        let (id, owner) = (id.to_string(), owner.to_string());
        self.writer.write(move |c| {
            let changed = c.execute(
                "UPDATE deliveries SET state = 'done', lease_owner = '', lease_until = 0
                 WHERE id = ?1 AND lease_owner = ?2 AND state = 'settled'",
                args![id, owner],
            )?;
            Ok(changed == 1)
        })
    }

    /// The plugin failed on a settled job's result: counts it, the lease
    /// kept. Returns the failures so far, or `None` when `owner` no longer
    /// holds the job.
    pub fn count_callback_failure(&self, id: &str, owner: &str) -> Result<Option<u32>> {
        let (id, owner) = (id.to_string(), owner.to_string());
        self.writer.write(move |c| {
            c.row(
                "UPDATE deliveries SET callback_failures = callback_failures + 1
                 WHERE id = ?1 AND lease_owner = ?2 AND state = 'settled'
                 RETURNING callback_failures",
                args![id, owner],
                |r| r.get(0),
            )
        })
    }

    /// Stops calling the plugin back for a settled job it keeps failing on:
    /// done, with why kept in `parked_error` (counted by
    /// [`Store::parked_deliveries`]).
    pub fn park_delivery(&self, id: &str, owner: &str, error: &str) -> Result<bool> {
        let (id, owner, error) = (id.to_string(), owner.to_string(), error.to_string());
        self.writer.write(move |c| {
            let changed = c.execute(
                "UPDATE deliveries SET state = 'done', lease_owner = '', lease_until = 0,
                     parked_error = ?3
                 WHERE id = ?1 AND lease_owner = ?2 AND state = 'settled'",
                args![id, owner, error],
            )?;
            Ok(changed == 1)
        })
    }

    /// Settled jobs whose result the plugin kept failing on, still kept.
    pub fn parked_deliveries(&self) -> Result<u64> {
        self.conn()?.one(
            "SELECT COUNT(*) FROM deliveries WHERE parked_error != ''",
            args![],
            |r| r.get(0),
        )
    }

    /// What the deliveries' gauges show, in one read: jobs pending (to send
    /// or retry), those among them with a failed attempt behind them, and
    /// parked ones.
    pub fn delivery_gauges(&self) -> Result<DeliveryGauges> {
        self.conn()?.one(
            "SELECT COUNT(*) FILTER (WHERE state = 'pending'),
                    COUNT(*) FILTER (WHERE state = 'pending' AND attempts != '[]'),
                    COUNT(*) FILTER (WHERE parked_error != '')
             FROM deliveries",
            args![],
            |r| {
                Ok(DeliveryGauges {
                    pending: r.get(0)?,
                    failing: r.get(1)?,
                    parked: r.get(2)?,
                })
            },
        )
    }

    /// Gives a job back, to be taken up again at `next_at`.
    pub fn release_delivery(&self, id: &str, owner: &str, next_at: i64) -> Result<()> {
        let (id, owner) = (id.to_string(), owner.to_string());
        self.writer.write(move |c| {
            c.execute(
                "UPDATE deliveries SET lease_owner = '', lease_until = 0, next_at = ?3
                 WHERE id = ?1 AND lease_owner = ?2",
                args![id, owner, next_at],
            )?;
            Ok(())
        })
    }

    /// Gives back every job leased by a claim of `process` (claims are
    /// named `<process>:<claim>`), due when it was: a stopping process's
    /// jobs are taken up by the next start at once. Returns how many.
    pub fn release_leases_of(&self, process: &str) -> Result<usize> {
        let process = process.to_string();
        self.writer.write(move |c| {
            c.execute(
                "UPDATE deliveries SET lease_owner = '', lease_until = 0
                 WHERE lease_owner <> '' AND substr(lease_owner, 1, length(CAST(?1 AS TEXT)) + 1) = CAST(?1 AS TEXT) || ':'",
                args![process],
            )
        })
    }

    /// A new pending job `new_id` with the request and continuation of the
    /// done job `id` of `group`, signed with `signing` when given, else as
    /// that job was.
    pub fn redeliver_delivery(
        &self,
        group: &str,
        id: &str,
        new_id: &str,
        now: i64,
        max_age_ms: i64,
        signing: Option<Vec<StoredSigning>>,
    ) -> Result<()> {
        let old = self.delivery(id)?;
        if old.group != group {
            return Err(StoreError::NotFound(format!("delivery {id}")));
        }
        if old.state != DONE {
            return Err(StoreError::Invalid(format!(
                "delivery {id} is still {}",
                old.state
            )));
        }
        let job = JobRow {
            id: new_id.to_string(),
            state: PENDING.into(),
            attempts: Vec::new(),
            outcome: None,
            next_at: now,
            deadline: now + max_age_ms,
            redelivery_of: id.to_string(),
            create_at: now,
            callback_failures: 0,
            signing: signing.unwrap_or(old.signing),
            ..old
        };
        let secrets = self.seal_signing(&job)?;
        self.writer.write(move |c| insert(c, &job, &secrets))
    }

    /// Puts a done job back to settled, as a crash between the plugin acting
    /// on its result and the host noting it leaves it: for crash tests.
    pub fn replay_delivery_result(&self, id: &str) -> Result<()> {
        let id = id.to_string();
        self.writer.write(move |c| {
            let changed = c.execute(
                "UPDATE deliveries SET state = 'settled', lease_owner = '', lease_until = 0,
                     next_at = 0 WHERE id = ?1 AND state = 'done'",
                args![id],
            )?;
            if changed == 1 {
                Ok(())
            } else {
                Err(StoreError::NotFound(format!("done delivery {id}")))
            }
        })
    }

    pub fn delivery(&self, id: &str) -> Result<JobRow> {
        let raw = self
            .conn()?
            .row(
                &format!("SELECT {COLUMNS} FROM deliveries WHERE id = ?1"),
                args![id],
                from_row,
            )?
            .ok_or_else(|| StoreError::NotFound(format!("delivery {id}")))?;
        raw.decode(self.cipher.as_deref())
    }

    /// Every job of a group, oldest first.
    pub fn deliveries_of(&self, group: &str) -> Result<Vec<JobRow>> {
        let conn = self.conn()?;
        let raw = conn.rows(
            &format!("SELECT {COLUMNS} FROM deliveries WHERE grp = ?1 ORDER BY create_at, id"),
            args![group],
            from_row,
        )?;
        drop(conn);
        raw.into_iter()
            .map(|r| r.decode(self.cipher.as_deref()))
            .collect()
    }

    /// When the next job falls due (or its lease runs out), if any is unsettled.
    pub fn next_delivery_due(&self) -> Result<Option<i64>> {
        self.conn()?.one(
            "SELECT MIN(CASE WHEN next_at > lease_until THEN next_at ELSE lease_until END) FROM deliveries
             WHERE state IN ('pending', 'settled')",
            args![],
            |r| r.get(0))
    }

    /// Drops a group's jobs that have not settled (in flight too: their
    /// attempt then finds no row and is not recorded).
    pub fn cancel_deliveries(&self, group: &str) -> Result<u32> {
        let group = group.to_string();
        self.writer.write(move |c| {
            Ok(c.execute(
                "DELETE FROM deliveries WHERE grp = ?1 AND state = 'pending'",
                args![group],
            )? as u32)
        })
    }

    /// Forgets done jobs created before `before` (they can no longer be
    /// redelivered). Returns how many.
    pub fn prune_deliveries(&self, before: i64) -> Result<usize> {
        self.writer.write(move |c| {
            c.execute(
                "DELETE FROM deliveries WHERE state = 'done' AND create_at < ?1",
                args![before],
            )
        })
    }

    /// Jobs not yet done.
    pub fn active_deliveries(&self) -> Result<u64> {
        self.conn()?.one(
            "SELECT COUNT(*) FROM deliveries WHERE state != 'done'",
            args![],
            |r| r.get(0),
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A pending job to `http://example.com/`, signed with a Slack secret
    /// (also the store suite's fixture).
    pub(crate) fn job(id: &str) -> JobRow {
        JobRow {
            id: id.into(),
            group: "hook".into(),
            request: StoredRequest {
                method: "POST".into(),
                url: "http://example.com/".into(),
                headers: vec![("Content-Type".into(), "application/json".into())],
                timeout_ms: None,
            },
            body: b"{}".to_vec(),
            signing: vec![StoredSigning::Slack("s3cret".into())],
            continuation: b"cont".to_vec(),
            max_attempts: 3,
            deadline: i64::MAX,
            state: PENDING.into(),
            attempts: Vec::new(),
            outcome: None,
            next_at: 0,
            redelivery_of: String::new(),
            create_at: 1,
            callback_failures: 0,
        }
    }

    #[test]
    fn a_process_gives_back_its_own_leases_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        store
            .enqueue_deliveries(vec![job("j1"), job("j2"), job("j3")], 10)
            .unwrap();
        assert_eq!(
            store
                .claim_deliveries("p1:x", 100, 10_000, 1)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            store
                .claim_deliveries("p1:y", 100, 10_000, 1)
                .unwrap()
                .len(),
            1
        );
        // Another process whose name starts with this one's.
        assert_eq!(
            store
                .claim_deliveries("p10:z", 100, 10_000, 1)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(store.release_leases_of("p1").unwrap(), 2);
        // Due again at once, long before the leases would have ended.
        let again = store.claim_deliveries("p2:w", 200, 10_000, 10).unwrap();
        assert_eq!(again.len(), 2);
        assert_eq!(store.release_leases_of("p1").unwrap(), 0);
    }

    #[test]
    fn claims_are_exclusive_until_the_lease_ends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        // Two stores on one file stand for two processes.
        let a = Store::open(&path).unwrap();
        let b = Store::open(&path).unwrap();
        assert_eq!(
            a.enqueue_deliveries(vec![job("j1"), job("j2")], 10)
                .unwrap(),
            Enqueued::Stored
        );
        let mine = a.claim_deliveries("a", 100, 1_000, 10).unwrap();
        assert_eq!(mine.len(), 2);
        assert!(a.renew_delivery_lease("j2", "a", 900, 1_000).unwrap());
        assert!(
            !a.renew_delivery_lease("j2", "a", 1_001, 2_000).unwrap(),
            "expired"
        );
        assert_eq!(mine[0].signing, job("j1").signing, "secrets round-trip");
        assert!(b.claim_deliveries("b", 500, 2_000, 10).unwrap().is_empty());
        // A lost lease: b takes over after it ends, and a's late write is refused.
        assert_eq!(b.claim_deliveries("b", 1_001, 5_000, 10).unwrap().len(), 2);
        let outcome = (
            StoredOutcome::Error {
                kind: "timeout".into(),
                message: "slow".into(),
            },
            Vec::new(),
        );
        assert!(
            !a.record_delivery_attempt("j1", "a", &[], &outcome, SETTLED, 0, 0)
                .unwrap()
        );
        assert!(
            b.record_delivery_attempt("j1", "b", &[], &outcome, SETTLED, 0, 5_000)
                .unwrap()
        );
        assert!(b.finish_delivery("j1", "b").unwrap());
        assert_eq!(a.delivery("j1").unwrap().state, DONE);
        assert_eq!(a.prune_deliveries(1).unwrap(), 0, "not older than that");
        assert_eq!(a.prune_deliveries(2).unwrap(), 1, "only the done one");
        assert!(a.delivery("j2").is_ok());
    }

    #[test]
    fn a_full_queue_refuses_and_secrets_are_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_with_key(&dir.path().join("db"), "test-key").unwrap();
        store.enqueue_deliveries(vec![job("j1")], 2).unwrap();
        assert_eq!(
            store
                .enqueue_deliveries(vec![job("j2"), job("j3")], 2)
                .unwrap(),
            Enqueued::Full {
                active: 1,
                limit: 2
            }
        );
        assert_eq!(store.active_deliveries().unwrap(), 1);
        let raw: String = store
            .conn()
            .unwrap()
            .one("SELECT secrets FROM deliveries", args![], |r| r.get(0))
            .unwrap();
        assert!(raw.starts_with("sealed:"), "written through seal(): {raw}");
        let secret = &job("j1").signing;
        let plain = serde_json::to_string(secret).unwrap();
        assert!(
            !raw.contains(&plain[1..plain.len() - 1]),
            "no secret in the clear"
        );
        assert_eq!(
            &store.delivery("j1").unwrap().signing,
            secret,
            "and it opens"
        );
        // A replayed enqueue adds nothing.
        assert_eq!(
            store.enqueue_deliveries(vec![job("j1")], 10).unwrap(),
            Enqueued::Stored
        );
        assert_eq!(store.active_deliveries().unwrap(), 1);
    }
}
