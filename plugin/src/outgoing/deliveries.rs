//! Each outgoing webhook's recent deliveries (when, where, every attempt's
//! status, latency and error, the next retry), kept in kv so a failing
//! integration can be debugged — and redelivered — from the API.

use crate::api::ApiError;
use crate::host::{Attempt, Host};
use serde::{Deserialize, Serialize};

/// How many deliveries a hook keeps when the plugin setting is absent.
const DEFAULT_KEEP: usize = 50;
/// How often to retry when another delivery wrote the same log meanwhile.
const CAS_TRIES: usize = 16;

/// `state`: the host will try again at `next_retry_at`.
pub const RETRYING: &str = "retrying";
/// `state`: answered; the answer was handled (see `error`, `posted`).
pub const DELIVERED: &str = "delivered";
/// `state`: no usable answer after the last attempt.
pub const FAILED: &str = "failed";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Delivery {
    /// The delivery id: the same on every attempt (`webhook-id`).
    pub id: String,
    /// When the first attempt was sent, in milliseconds since the epoch.
    pub at: i64,
    /// The post that triggered it.
    pub post_id: String,
    pub trigger_word: String,
    pub url: String,
    /// `retrying`, `delivered` or `failed`.
    pub state: String,
    /// The last attempt's HTTP status; 0 when none came back.
    pub status: u16,
    pub latency_ms: u32,
    /// Empty on success: why nothing (or not everything) was posted.
    pub error: String,
    /// How many attempts were made.
    pub attempt: u32,
    /// When the next attempt is due (ms since the epoch); 0 when none.
    pub next_retry_at: i64,
    pub attempts: Vec<AttemptLog>,
    /// Ids of the posts created from the response.
    pub posted: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AttemptLog {
    pub number: u32,
    pub at: i64,
    pub status: u16,
    pub latency_ms: u32,
    pub error: String,
    pub next_retry_at: i64,
}

impl From<&Attempt> for AttemptLog {
    fn from(a: &Attempt) -> Self {
        AttemptLog {
            number: a.number,
            at: a.at,
            status: a.status,
            latency_ms: a.latency_ms,
            error: a.error.clone(),
            next_retry_at: a.next_at,
        }
    }
}

/// One kv record per delivery, so concurrent deliveries of one hook never
/// contend: `outgoing_deliveries/<hook>/<first attempt's time, 16 digits>-<id>`
/// lists oldest first.
fn prefix(hook_id: &str) -> String {
    format!("outgoing_deliveries/{hook_id}/")
}

fn key(hook_id: &str, delivery: &Delivery) -> String {
    format!(
        "{}{:016}-{}",
        prefix(hook_id),
        delivery.at.max(0),
        delivery.id
    )
}

/// The most keys one hook's log is read from.
const MAX_LISTED: u32 = 10_000;

/// `DeliveryLogSize` from the plugin's settings (manifest `settings_schema`).
fn keep(host: &dyn Host) -> usize {
    serde_json::from_str::<serde_json::Value>(&host.settings().plugin_settings)
        .ok()
        .and_then(|v| v.get("DeliveryLogSize")?.as_u64())
        .map(|n| n as usize)
        .unwrap_or(DEFAULT_KEEP)
}

fn kv_error(e: crate::host::HostError) -> ApiError {
    ApiError::host("app.plugin.kv.app_error", &e)
}

/// Newest first, at most `DeliveryLogSize`.
pub fn recent(host: &dyn Host, hook_id: &str) -> Result<Vec<Delivery>, ApiError> {
    let keys = host
        .kv_list(&prefix(hook_id), 0, MAX_LISTED)
        .map_err(kv_error)?;
    let mut out = Vec::new();
    for key in keys.iter().rev().take(keep(host)) {
        if let Some(bytes) = host.kv_get(key).map_err(kv_error)?
            && let Ok(delivery) = serde_json::from_slice(&bytes)
        {
            out.push(delivery);
        }
    }
    Ok(out)
}

/// Puts a delivery's latest state in its hook's log, unless the stored entry
/// already saw more attempts (a replayed result); a new entry pushes the
/// oldest beyond `DeliveryLogSize` out.
pub fn upsert(host: &dyn Host, hook_id: &str, delivery: Delivery) -> Result<(), ApiError> {
    let key = key(hook_id, &delivery);
    let bytes = serde_json::to_vec(&delivery).unwrap_or_default();
    for _ in 0..CAS_TRIES {
        let current = host.kv_get(&key).map_err(kv_error)?;
        if let Some(old) = current
            .as_deref()
            .and_then(|b| serde_json::from_slice::<Delivery>(b).ok())
            && old.attempts.len() > delivery.attempts.len()
        {
            return Ok(());
        }
        if host
            .kv_compare_and_set(&key, current.as_deref(), Some(&bytes))
            .map_err(kv_error)?
        {
            if current.is_none() {
                trim(host, hook_id)?;
            }
            return Ok(());
        }
    }
    Err(ApiError::new(
        500,
        "app.plugin.kv.conflict.app_error",
        "The delivery log is too busy to update.",
    ))
}

/// Drops the oldest entries beyond the limit.
fn trim(host: &dyn Host, hook_id: &str) -> Result<(), ApiError> {
    let keys = host
        .kv_list(&prefix(hook_id), 0, MAX_LISTED)
        .map_err(kv_error)?;
    let excess = keys.len().saturating_sub(keep(host));
    for key in keys.iter().take(excess) {
        host.kv_delete(key).map_err(kv_error)?;
    }
    Ok(())
}

pub fn forget(host: &dyn Host, hook_id: &str) -> Result<(), ApiError> {
    loop {
        let keys = host.kv_list(&prefix(hook_id), 0, 1_000).map_err(kv_error)?;
        if keys.is_empty() {
            return Ok(());
        }
        for key in keys {
            host.kv_delete(&key).map_err(kv_error)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeHost;

    fn delivery(id: &str, at: i64, attempts: usize) -> Delivery {
        Delivery {
            id: id.into(),
            at,
            attempts: vec![AttemptLog::default(); attempts],
            ..Delivery::default()
        }
    }

    #[test]
    fn newest_first_kept_to_the_limit_and_replays_never_go_back() {
        let host = FakeHost::default();
        host.settings.borrow_mut().plugin_settings = r#"{"DeliveryLogSize": 3}"#.into();
        for i in 0..5 {
            upsert(&host, "h", delivery(&format!("d{i}"), 100 + i, 1)).unwrap();
        }
        let ids: Vec<String> = recent(&host, "h")
            .unwrap()
            .into_iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(ids, ["d4", "d3", "d2"]);
        upsert(&host, "h", delivery("d4", 104, 3)).unwrap();
        upsert(&host, "h", delivery("d4", 104, 2)).unwrap();
        assert_eq!(recent(&host, "h").unwrap()[0].attempts.len(), 3);
        assert_eq!(recent(&host, "h").unwrap().len(), 3);
        forget(&host, "h").unwrap();
        assert!(recent(&host, "h").unwrap().is_empty());
    }
}
