//! Each outgoing webhook's recent deliveries (when, where, status, latency,
//! error), kept in kv so a failing integration can be debugged from the API.

use crate::api::ApiError;
use crate::host::Host;
use serde::{Deserialize, Serialize};

/// How many deliveries a hook keeps when the plugin setting is absent.
const DEFAULT_KEEP: usize = 50;
/// How often to retry when another delivery wrote the same log meanwhile.
const CAS_TRIES: usize = 8;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// When the request was sent, in milliseconds since the epoch.
    pub at: i64,
    /// The post that triggered it.
    pub post_id: String,
    pub trigger_word: String,
    pub url: String,
    /// The callback's HTTP status; 0 when none came back.
    pub status: u16,
    pub latency_ms: u32,
    /// Empty on success: why nothing (or not everything) was posted.
    pub error: String,
    /// Deliveries are not retried, so this is always 1; kept so a retry
    /// policy can be added without changing the log's shape.
    pub attempt: u32,
    /// Ids of the posts created from the response.
    pub posted: Vec<String>,
}

fn key(hook_id: &str) -> String {
    format!("outgoing_deliveries/{hook_id}")
}

/// `DeliveryLogSize` from the plugin's settings (manifest `settings_schema`).
fn keep(host: &dyn Host) -> usize {
    serde_json::from_str::<serde_json::Value>(&host.settings().plugin_settings)
        .ok()
        .and_then(|v| v.get("DeliveryLogSize")?.as_u64())
        .map(|n| n as usize)
        .unwrap_or(DEFAULT_KEEP)
}

/// Newest first.
pub fn recent(host: &dyn Host, hook_id: &str) -> Result<Vec<Delivery>, ApiError> {
    let bytes = host
        .kv_get(&key(hook_id))
        .map_err(|e| ApiError::host("app.plugin.kv.app_error", &e))?;
    Ok(bytes
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default())
}

/// Adds deliveries to a hook's log, dropping the oldest beyond the limit.
/// Concurrent writers are reconciled with compare-and-set.
pub fn record(host: &dyn Host, hook_id: &str, new: &[Delivery]) -> Result<(), ApiError> {
    let limit = keep(host);
    let key = key(hook_id);
    for _ in 0..CAS_TRIES {
        let current = host
            .kv_get(&key)
            .map_err(|e| ApiError::host("app.plugin.kv.app_error", &e))?;
        let mut log: Vec<Delivery> = current
            .as_deref()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or_default();
        let mut merged: Vec<Delivery> = new.iter().rev().cloned().collect();
        merged.append(&mut log);
        merged.truncate(limit);
        let bytes = serde_json::to_vec(&merged).unwrap_or_default();
        let written = host
            .kv_compare_and_set(&key, current.as_deref(), Some(&bytes))
            .map_err(|e| ApiError::host("app.plugin.kv.app_error", &e))?;
        if written {
            return Ok(());
        }
    }
    Err(ApiError::new(
        500,
        "app.plugin.kv.conflict.app_error",
        "The delivery log is too busy to update.",
    ))
}

pub fn forget(host: &dyn Host, hook_id: &str) -> Result<(), ApiError> {
    host.kv_delete(&key(hook_id))
        .map_err(|e| ApiError::host("app.plugin.kv.app_error", &e))
}
