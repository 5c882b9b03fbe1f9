//! The delivery queue: what a caller needs to put outbound work on it (jobs
//! in host types, checked, then stored all or none before anything is sent;
//! redelivery) and what a job comes to (`Report`). The engine (`crate::deliveries`) works it;
//! the queue knows neither the engine nor the plugin runtime.

use crate::config::DeliverySettings;
use crate::egress::{EgressError, OutboundRequest, OutboundResponse};
use crate::store::deliveries::{
    AttemptRow, Enqueued, JobRow, PENDING, StoredRequest, StoredSigning,
};
use crate::store::{Store, StoreError, now_millis, valid_id};
use std::sync::Arc;
use tokio::sync::Notify;

/// The queue's signal to whoever works it, one per `App`
/// (`App::deliveries`): jobs were added or finished, look again.
#[derive(Default)]
pub struct Queue {
    wake: Arc<Notify>,
}

/// Longest job list one `enqueue` may hand over, and longest continuation.
const MAX_JOBS: usize = 1_000;
const MAX_CONTINUATION: usize = 64 << 10;

/// Why `enqueue` refused.
#[derive(Debug)]
pub enum EnqueueError {
    /// The list, or a job in it, is not one the queue takes; nothing is stored.
    Invalid(String),
    Full {
        active: u64,
        limit: u64,
    },
    Store(StoreError),
}

/// A job as the plugin hands it over, in host types.
pub struct NewJob {
    pub id: String,
    pub group: String,
    pub request: OutboundRequest,
    pub signing: Vec<StoredSigning>,
    pub continuation: Vec<u8>,
    pub max_attempts: u32,
    pub max_age_seconds: u32,
}

/// What the plugin is told about a job.
pub struct Report {
    pub id: String,
    pub group: String,
    pub continuation: Vec<u8>,
    pub attempts: Vec<AttemptRow>,
    pub outcome: Result<OutboundResponse, EgressError>,
    pub settled: bool,
}

/// What the queue refuses before storing anything: more than `MAX_JOBS`
/// jobs, an id that is not a 26-character id, a continuation over 64 KiB.
fn check(jobs: &[NewJob]) -> Result<(), String> {
    if jobs.len() > MAX_JOBS {
        return Err(format!("at most {MAX_JOBS} jobs per call"));
    }
    for job in jobs {
        if !valid_id(&job.id) {
            return Err(format!("delivery id {:?} is not a 26-character id", job.id));
        }
        if job.continuation.len() > MAX_CONTINUATION {
            return Err("continuation longer than 64 KiB".into());
        }
    }
    Ok(())
}

/// A request as it is stored: its body apart, its timeout in milliseconds.
pub fn stored_request(r: &OutboundRequest) -> StoredRequest {
    StoredRequest {
        method: r.method.clone(),
        url: r.url.clone(),
        headers: r.headers.clone(),
        timeout_ms: r
            .timeout
            .map(|t| u32::try_from(t.as_millis()).unwrap_or(u32::MAX)),
    }
}

impl Queue {
    /// Something changed (a job was enqueued or finished): look again.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// What the engine waits on between looks.
    pub fn woken(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Checks jobs and stores them (all or none) before anything is sent,
    /// then wakes the engine. Blocking: call it off the async threads.
    pub fn enqueue(
        &self,
        store: &Store,
        settings: &DeliverySettings,
        jobs: Vec<NewJob>,
    ) -> Result<(), EnqueueError> {
        check(&jobs).map_err(EnqueueError::Invalid)?;
        let now = now_millis();
        let rows = jobs
            .into_iter()
            .map(|job| {
                let max_age_ms = if job.max_age_seconds == 0 {
                    settings.max_age_seconds.saturating_mul(1000)
                } else {
                    u64::from(job.max_age_seconds) * 1000
                };
                JobRow {
                    id: job.id,
                    group: job.group,
                    request: stored_request(&job.request),
                    body: job.request.body,
                    signing: job.signing,
                    continuation: job.continuation,
                    max_attempts: if job.max_attempts == 0 {
                        settings.default_attempts()
                    } else {
                        job.max_attempts
                    },
                    deadline: now.saturating_add(i64::try_from(max_age_ms).unwrap_or(i64::MAX)),
                    state: PENDING.into(),
                    attempts: Vec::new(),
                    outcome: None,
                    next_at: now,
                    redelivery_of: String::new(),
                    create_at: now,
                    callback_failures: 0,
                }
            })
            .collect();
        match store
            .enqueue_deliveries(rows, settings.max_queued)
            .map_err(EnqueueError::Store)?
        {
            Enqueued::Stored => {
                self.wake();
                Ok(())
            }
            Enqueued::Full { active, limit } => {
                tracing::error!(
                    "deliveries: the queue is full ({active} not done, DeliverySettings.MaxQueued {limit}); refusing new deliveries"
                );
                Err(EnqueueError::Full { active, limit })
            }
        }
    }

    /// Copies a done job as a new one, `new_id`, and wakes the engine; signed
    /// with `signing` when given (the hook's secrets now), else as the
    /// original. Blocking.
    pub fn redeliver(
        &self,
        store: &Store,
        settings: &DeliverySettings,
        group: &str,
        id: &str,
        new_id: &str,
        signing: Option<Vec<StoredSigning>>,
    ) -> Result<(), StoreError> {
        if !valid_id(new_id) {
            return Err(StoreError::Invalid(
                "the new delivery id is not a 26-character id".into(),
            ));
        }
        let max_age =
            i64::try_from(settings.max_age_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
        store.redeliver_delivery(group, id, new_id, now_millis(), max_age, signing)?;
        self.wake();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str, continuation: usize) -> NewJob {
        NewJob {
            id: id.into(),
            group: "g".into(),
            request: OutboundRequest::default(),
            signing: Vec::new(),
            continuation: vec![0; continuation],
            max_attempts: 0,
            max_age_seconds: 0,
        }
    }

    #[test]
    fn the_queue_refuses_bad_ids_long_continuations_and_long_lists() {
        let id = crate::store::new_id();
        assert_eq!(check(&[job(&id, MAX_CONTINUATION)]), Ok(()));
        assert_eq!(
            check(&[job(&id, 0), job("short", 0)]),
            Err("delivery id \"short\" is not a 26-character id".into())
        );
        assert_eq!(
            check(&[job(&id, MAX_CONTINUATION + 1)]),
            Err("continuation longer than 64 KiB".into())
        );
        let many: Vec<NewJob> = (0..=MAX_JOBS).map(|_| job(&id, 0)).collect();
        assert_eq!(check(&many), Err("at most 1000 jobs per call".into()));
        assert_eq!(check(&many[..MAX_JOBS]), Ok(()));
    }
}
