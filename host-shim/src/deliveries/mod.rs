//! The host's delivery engine: jobs on the queue (`crate::queue`, stored
//! before anything is sent) are claimed with leases, sent (signed at send
//! time) with retries, and reported to the plugin's `delivery-results.on-result`
//! in a fresh instance — so no instance ever waits on a receiver. Slash
//! commands use the same sending (`send_now`), once and awaited by the host.

pub mod oauth;
pub mod policy;
pub mod sign;

use crate::app::{App, OutboundCall};
use crate::egress::{EgressError, OutboundRequest, OutboundResponse};
use crate::queue::{Report, stored_request};
use crate::runtime::Runtime;
use crate::store::deliveries::{
    AttemptRow, JobRow, PENDING, SETTLED, StoredOutcome, StoredRequest, StoredSigning,
};
use crate::store::{StoreError, now_millis};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::Semaphore;

/// The longest the engine sleeps without looking for due jobs (another
/// process may have enqueued or released some).
const POLL: Duration = Duration::from_millis(500);
/// How often done deliveries past `RetentionDays` are forgotten.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// How long a settled job waits before its callback is tried again after the
/// plugin failed on it.
const CALLBACK_RETRY: Duration = Duration::from_secs(2);

/// The engine's own state, one per running shim (`Shim::engine`); what is
/// queued is the store's, and its wake signal the `App`'s (`crate::queue`).
pub struct Engine {
    /// The plugin the engine reports results to.
    runtime: Arc<Runtime>,
    /// This process's name on the leases it takes.
    owner: String,
    in_flight: AtomicUsize,
    destinations: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Bounds the plugin calls the engine makes at once, so a burst of
    /// answers never takes every instance slot from requests.
    callbacks: std::sync::OnceLock<Arc<Semaphore>>,
    /// Outgoing OAuth connections' tokens (`oauth`), fetched at send time.
    pub tokens: oauth::Tokens,
    /// Set by [`stop`]; held while jobs are claimed, so no claim follows
    /// the release of this process's leases.
    stopped: tokio::sync::Mutex<bool>,
}

impl Engine {
    pub fn new(runtime: Arc<Runtime>) -> Engine {
        Engine {
            runtime,
            owner: format!("{}-{}", std::process::id(), crate::store::new_id()),
            in_flight: AtomicUsize::new(0),
            destinations: Mutex::new(HashMap::new()),
            callbacks: std::sync::OnceLock::new(),
            tokens: oauth::Tokens::default(),
            stopped: tokio::sync::Mutex::new(false),
        }
    }

    fn callback_slots(&self, limit: u32) -> Arc<Semaphore> {
        self.callbacks
            .get_or_init(|| Arc::new(Semaphore::new(limit.max(1) as usize)))
            .clone()
    }

    fn destination(&self, url: &str, limit: u32) -> Arc<Semaphore> {
        let key = url::Url::parse(url)
            .ok()
            .map(|u| {
                format!(
                    "{}:{}",
                    u.host_str().unwrap_or(""),
                    u.port_or_known_default().unwrap_or(0)
                )
            })
            .unwrap_or_default();
        self.destinations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key)
            .or_insert_with(|| Arc::new(Semaphore::new(limit.max(1) as usize)))
            .clone()
    }
}

/// The request as it goes on the wire for one attempt: the stored headers,
/// the delivery id (`webhook-id`, the same on every attempt), the attempt
/// number, and signatures made now.
fn wire_request(
    request: &StoredRequest,
    body: &[u8],
    signing: &[StoredSigning],
    delivery_id: &str,
    attempt: Option<u32>,
) -> OutboundRequest {
    let mut headers = request.headers.clone();
    headers.push(("webhook-id".into(), delivery_id.into()));
    if let Some(n) = attempt {
        headers.push(("X-Switchboard-Attempt".into(), n.to_string()));
    }
    headers.extend(sign::headers(
        signing,
        delivery_id,
        now_millis() / 1000,
        body,
    ));
    OutboundRequest {
        method: request.method.clone(),
        url: request.url.clone(),
        headers,
        body: body.to_vec(),
        timeout: request
            .timeout_ms
            .map(|ms| Duration::from_millis(u64::from(ms))),
    }
}

fn note(app: &App, method: &str, url: &str, result: &Result<OutboundResponse, EgressError>) {
    let (status, error, elapsed_ms) = match result {
        Ok(r) => (
            Some(r.status),
            None,
            u32::try_from(r.elapsed.as_millis()).unwrap_or(u32::MAX),
        ),
        Err(e) => (None, Some(format!("{e:?}")), 0),
    };
    app.events.outbound(OutboundCall {
        method: method.into(),
        url: url.into(),
        status,
        error,
        elapsed_ms,
    });
}

/// Sends one request now, signed now, and waits for it: a slash command's
/// call, which the user waits for (the waiting is the host's; no instance
/// is held). Not retried.
pub async fn send_now(
    app: &App,
    engine: &Engine,
    request: OutboundRequest,
    signing: &[StoredSigning],
    delivery_id: &str,
) -> Result<OutboundResponse, EgressError> {
    let stored = stored_request(&request);
    let wire = wire_request(&stored, &request.body, signing, delivery_id, None);
    let limit = app
        .config()
        .delivery_settings
        .max_concurrent_per_destination;
    let slot = engine.destination(&stored.url, limit);
    let _permit = slot.acquire_owned().await;
    let result = oauth::send(
        app,
        &engine.tokens,
        wire,
        oauth::OnTokenFailure::SendWithout,
    )
    .await;
    note(app, &stored.method, &stored.url, &result);
    result
}

fn stored_outcome(result: &Result<OutboundResponse, EgressError>) -> (StoredOutcome, Vec<u8>) {
    match result {
        Ok(r) => (
            StoredOutcome::Response {
                status: r.status,
                headers: r.headers.clone(),
                truncated: r.truncated,
                elapsed_ms: u32::try_from(r.elapsed.as_millis()).unwrap_or(u32::MAX),
            },
            r.body.clone(),
        ),
        Err(e) => {
            let (kind, message) = match e {
                EgressError::Refused(m) => ("refused", m),
                EgressError::InvalidUrl(m) => ("invalid-url", m),
                EgressError::Timeout(m) => ("timeout", m),
                EgressError::Connect(m) => ("connect", m),
                EgressError::Other(m) => ("other", m),
            };
            (
                StoredOutcome::Error {
                    kind: kind.into(),
                    message: message.clone(),
                },
                Vec::new(),
            )
        }
    }
}

fn outcome_result(outcome: &(StoredOutcome, Vec<u8>)) -> Result<OutboundResponse, EgressError> {
    match &outcome.0 {
        StoredOutcome::Response {
            status,
            headers,
            truncated,
            elapsed_ms,
        } => Ok(OutboundResponse {
            status: *status,
            headers: headers.clone(),
            body: outcome.1.clone(),
            truncated: *truncated,
            elapsed: Duration::from_millis(u64::from(*elapsed_ms)),
        }),
        StoredOutcome::Error { kind, message } => Err(match kind.as_str() {
            "refused" => EgressError::Refused(message.clone()),
            "invalid-url" => EgressError::InvalidUrl(message.clone()),
            "timeout" => EgressError::Timeout(message.clone()),
            "connect" => EgressError::Connect(message.clone()),
            _ => EgressError::Other(message.clone()),
        }),
    }
}

/// How long a claimed job stays this process's.
fn lease(app: &App) -> Duration {
    let config = app.config();
    let timeout = u64::from(
        config
            .service_settings
            .outgoing_integration_requests_timeout
            .max(1),
    );
    Duration::from_secs(config.delivery_settings.lease_seconds.max(timeout + 5))
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Runs a store call off the async threads (writes wait for a group commit).
async fn blocking<T: Send + 'static>(
    app: &Arc<App>,
    f: impl FnOnce(&App) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let app = app.clone();
    tokio::task::spawn_blocking(move || f(&app))
        .await
        .unwrap_or_else(|e| Err(StoreError::Db(format!("store task failed: {e}"))))
}

/// Works due jobs until the App is gone: at start it picks up whatever a
/// previous run left pending (and leases that ran out), so a crash loses
/// nothing.
pub async fn run(app: Weak<App>, engine: Arc<Engine>) {
    let mut pruned: Option<std::time::Instant> = None;
    loop {
        let Some(strong) = app.upgrade() else { return };
        let wake = strong.deliveries.woken();
        if pruned.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            pruned = Some(std::time::Instant::now());
            let days = i64::from(strong.config().delivery_settings.retention_days);
            let before = now_millis() - days * 24 * 3600 * 1000;
            match blocking(&strong, move |app| app.store.prune_deliveries(before)).await {
                Ok(0) => {}
                Ok(n) => tracing::info!("deliveries: forgot {n} done deliveries past retention"),
                Err(e) => tracing::warn!("deliveries: pruning failed: {e}"),
            }
        }
        let wait = claim_and_start(&strong, &engine).await;
        drop(strong);
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Stops claiming jobs and gives back every lease this process holds (jobs
/// waiting, on the wire, or with a result the plugin has not taken), so the
/// next start, or another process on the file, works them at once instead of
/// after the lease. An attempt on the wire may so be sent again, with the
/// same `webhook-id`: delivery is at least once, as after a crash.
pub async fn stop(app: &Arc<App>, engine: &Engine) {
    let mut stopped = engine.stopped.lock().await;
    *stopped = true;
    let process = engine.owner.clone();
    match blocking(app, move |app| app.store.release_leases_of(&process)).await {
        Ok(0) => {}
        Ok(n) => tracing::info!("deliveries: gave back {n} leased deliveries for the next start"),
        Err(e) => tracing::error!("deliveries: giving back this process's leases failed: {e}"),
    }
}

/// Claims what may start now and starts it; returns how long to sleep.
async fn claim_and_start(app: &Arc<App>, engine: &Arc<Engine>) -> Duration {
    let settings = app.config().delivery_settings.clone();
    let stopped = engine.stopped.lock().await;
    if *stopped {
        return POLL;
    }
    let free =
        (settings.max_concurrent as usize).saturating_sub(engine.in_flight.load(Ordering::SeqCst));
    if free > 0 {
        let now = now_millis();
        let until = now + millis(lease(app));
        // A token per claim, not per process: a task of this process holding
        // a stale claim must not pass for the one that claimed the job again.
        let token = format!("{}:{}", engine.owner, crate::store::new_id());
        let claimer = token.clone();
        match blocking(app, move |app| {
            app.store
                .claim_deliveries(&claimer, now, until, free as u32)
        })
        .await
        {
            Ok(jobs) => {
                let claimed = jobs.len();
                for job in jobs {
                    engine.in_flight.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(work(app.clone(), engine.clone(), job, token.clone()));
                }
                if claimed == free {
                    // There may be more due; look again once one finishes.
                    return POLL;
                }
            }
            Err(e) => {
                tracing::error!("deliveries: claiming jobs failed: {e}");
                return POLL;
            }
        }
    } else {
        return POLL;
    }
    drop(stopped);
    let due = app.store.next_delivery_due().ok().flatten();
    match due {
        Some(at) => {
            let ms = (at - now_millis()).clamp(5, millis(POLL));
            Duration::from_millis(ms as u64)
        }
        None => POLL,
    }
}

/// Counts a job out of the in-flight total however its task ends.
struct InFlight(Arc<App>, Arc<Engine>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.1.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.0.deliveries.wake();
    }
}

/// Works one claimed job; `token` names the claim in every write.
async fn work(app: Arc<App>, engine: Arc<Engine>, job: JobRow, token: String) {
    let _counted = InFlight(app.clone(), engine.clone());
    if job.state == SETTLED {
        // A callback owed from before (a crash, or the plugin failed on it).
        if let Some(outcome) = &job.outcome {
            let report = Report {
                id: job.id.clone(),
                group: job.group.clone(),
                continuation: job.continuation.clone(),
                attempts: job.attempts.clone(),
                outcome: outcome_result(outcome),
                settled: true,
            };
            settle(&app, &engine, report, &token).await;
        }
        return;
    }
    let settings = app.config().delivery_settings.clone();
    let slot = engine.destination(&job.request.url, settings.max_concurrent_per_destination);
    let Ok(_permit) = slot.acquire_owned().await else {
        return;
    };
    let renewed = {
        let (id, token) = (job.id.clone(), token.clone());
        let now = now_millis();
        let until = now + millis(lease(&app));
        blocking(&app, move |app| {
            app.store.renew_delivery_lease(&id, &token, now, until)
        })
        .await
    };
    if !matches!(renewed, Ok(true)) {
        // Claimed again (or cancelled) while it waited for a slot.
        return;
    }
    let number = job.attempts.len() as u32 + 1;
    let at = now_millis();
    let request = wire_request(&job.request, &job.body, &job.signing, &job.id, Some(number));
    let result = oauth::send(&app, &engine.tokens, request, oauth::OnTokenFailure::Fail).await;
    drop(_permit);
    note(&app, &job.request.method, &job.request.url, &result);

    let done_at = now_millis();
    let next_at = done_at + millis(settings.delay_before(number + 1, policy::retry_after(&result)));
    let again = policy::retryable(&result) && number < job.max_attempts && next_at <= job.deadline;
    let (status, latency_ms, error) = match &result {
        Ok(r) => (
            r.status,
            u32::try_from(r.elapsed.as_millis()).unwrap_or(u32::MAX),
            String::new(),
        ),
        Err(e) => (
            0,
            u32::try_from(done_at - at).unwrap_or(u32::MAX),
            e.to_string(),
        ),
    };
    let mut attempts = job.attempts.clone();
    attempts.push(AttemptRow {
        number,
        at,
        status,
        latency_ms,
        error,
        next_at: if again { next_at } else { 0 },
    });
    let outcome = stored_outcome(&result);
    let (state, due, lease_until) = if again {
        (PENDING, next_at, 0)
    } else {
        (SETTLED, done_at, done_at + millis(lease(&app)))
    };
    let recorded = {
        let (id, owner, attempts, outcome) = (
            job.id.clone(),
            token.clone(),
            attempts.clone(),
            outcome.clone(),
        );
        blocking(&app, move |app| {
            app.store.record_delivery_attempt(
                &id,
                &owner,
                &attempts,
                &outcome,
                state,
                due,
                lease_until,
            )
        })
        .await
    };
    match recorded {
        Ok(true) => {
            let delivered = matches!(&result, Ok(r) if (200..300).contains(&r.status));
            app.telemetry.delivery_attempt(
                attempt_outcome(&result),
                Duration::from_millis(u64::from(latency_ms)),
                (!again).then_some(delivered),
            );
        }
        Ok(false) => {
            tracing::warn!(
                "deliveries: {} was taken over by another process; this attempt is not recorded",
                job.id
            );
            return;
        }
        Err(e) => {
            tracing::error!("deliveries: recording an attempt of {} failed: {e}", job.id);
            return;
        }
    }
    let report = Report {
        id: job.id.clone(),
        group: job.group.clone(),
        continuation: job.continuation.clone(),
        attempts,
        outcome: result,
        settled: !again,
    };
    if again {
        // Only for the delivery log; the settled report is the one owed.
        if let Err(e) = report_to_plugin(&app, &engine, report).await {
            tracing::warn!("deliveries: reporting an attempt of {} failed: {e}", job.id);
        }
    } else {
        settle(&app, &engine, report, &token).await;
    }
}

/// An attempt's outcome label in `switchboard_delivery_attempts_total`.
fn attempt_outcome(result: &Result<OutboundResponse, EgressError>) -> &'static str {
    match result {
        Ok(r) if (200..300).contains(&r.status) => "delivered",
        Ok(_) => "http_error",
        Err(EgressError::Timeout(_)) => "timeout",
        Err(EgressError::Connect(_)) => "connect",
        Err(EgressError::Refused(_)) => "refused",
        Err(EgressError::InvalidUrl(_) | EgressError::Other(_)) => "error",
    }
}

/// Calls `delivery-results.on-result`, at most `MaxConcurrentCallbacks` at once.
async fn report_to_plugin(
    app: &Arc<App>,
    engine: &Engine,
    report: Report,
) -> Result<(), crate::runtime::CallError> {
    let limit = app.config().delivery_settings.max_concurrent_callbacks;
    let slots = engine.callback_slots(limit);
    let _slot = slots.acquire_owned().await;
    engine.runtime.delivery_result(app.clone(), report).await
}

/// Hands a settled job to the plugin; done once the call returns, tried
/// again later when it fails (the plugin's handling is idempotent), parked
/// after `MaxCallbackFailures` failures.
async fn settle(app: &Arc<App>, engine: &Engine, report: Report, token: &str) {
    let id = report.id.clone();
    let owner = token.to_string();
    let (group, continuation, attempts) = (
        report.group.clone(),
        report.continuation.clone(),
        report.attempts.clone(),
    );
    let failed = match report_to_plugin(app, engine, report).await {
        Ok(()) => {
            let result = blocking(app, move |app| app.store.finish_delivery(&id, &owner)).await;
            if let Err(e) = result {
                tracing::error!("deliveries: finishing a job failed: {e}");
            }
            return;
        }
        Err(e) => e,
    };
    tracing::error!("deliveries: the plugin failed on the result of {id}: {failed}");
    let counted = if matches!(failed, crate::runtime::CallError::Busy { .. }) {
        // Not the plugin failing on this result: not counted.
        None
    } else {
        let (job, claim) = (id.clone(), owner.clone());
        match blocking(app, move |app| {
            app.store.count_callback_failure(&job, &claim)
        })
        .await
        {
            Ok(n) => n,
            Err(e) => {
                tracing::error!("deliveries: counting a failed callback of {id} failed: {e}");
                None
            }
        }
    };
    let limit = app.config().delivery_settings.max_callback_failures.max(1);
    if let Some(failures) = counted
        && failures >= limit
    {
        let error = format!(
            "the answer was not handled: the plugin failed on it {failures} times, last: {failed}"
        );
        let report = Report {
            id,
            group,
            continuation,
            attempts,
            outcome: Err(EgressError::Other(error.clone())),
            settled: true,
        };
        park(app, engine, report, &owner, error).await;
        return;
    }
    let later = now_millis() + millis(CALLBACK_RETRY);
    let _ = blocking(app, move |app| {
        app.store.release_delivery(&id, &owner, later)
    })
    .await;
}

/// Stops calling back for a result the plugin keeps failing on, so the
/// engine moves on: the plugin is told once more, without the answer it
/// failed on, that the delivery failed and why (its delivery log shows it),
/// and the job is done with the reason kept and counted
/// (`Store::parked_deliveries`). Redelivery still works on it.
async fn park(app: &Arc<App>, engine: &Engine, report: Report, owner: &str, error: String) {
    let id = report.id.clone();
    if let Err(e) = report_to_plugin(app, engine, report).await {
        tracing::error!("deliveries: the plugin failed on the parked result of {id} too: {e}");
    }
    tracing::error!("deliveries: parked {id} as failed: {error}");
    let owner = owner.to_string();
    let result = blocking(app, move |app| app.store.park_delivery(&id, &owner, &error)).await;
    if let Err(e) = result {
        tracing::error!("deliveries: parking a job failed: {e}");
    }
}
