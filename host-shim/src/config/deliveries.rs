//! `DeliverySettings`: how the delivery engine (`crate::deliveries`) retries
//! and bounds outbound deliveries, and how long it keeps them.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// `DeliverySettings` (the shim's own section of config.json).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct DeliverySettings {
    /// The wait before each attempt, in milliseconds: the first is the first
    /// attempt's (0: at once). Its length is the default number of attempts.
    /// The default is Svix's and Resend's: at once, 5 s, 5 min, 30 min, 2 h,
    /// 5 h, 10 h, 10 h.
    pub retry_schedule_milliseconds: Vec<u64>,
    /// Each wait is moved by up to this share either way, so receivers that
    /// failed together are not hit together again.
    pub jitter_percent: u32,
    /// No attempt starts this long after a delivery was enqueued.
    pub max_age_seconds: u64,
    /// Attempts in flight at once, over every destination.
    pub max_concurrent: u32,
    /// Attempts in flight at once to one host and port.
    pub max_concurrent_per_destination: u32,
    /// Plugin calls (`on-result`) the engine makes at once: answers arriving
    /// together queue here instead of taking every instance slot.
    pub max_concurrent_callbacks: u32,
    /// Deliveries not yet done; a new one beyond this is refused (and logged).
    pub max_queued: u64,
    /// Done deliveries are kept this long (for redelivery), then forgotten.
    pub retention_days: u32,
    /// How long a process owns a job it claimed; at least the request
    /// timeout plus 5 s. 0: just that.
    pub lease_seconds: u64,
    /// Times the plugin may fail on a settled delivery's result (a trap, its
    /// deadline, its memory cap; a busy pool does not count) before the
    /// engine stops calling back and parks the delivery as failed: told to
    /// the plugin once more without the answer, so its delivery log shows
    /// why, and counted in the store. Default 10: with the 2 s between
    /// tries, a plugin briefly failing (an upgrade, a loaded machine) has
    /// ~20 s to recover, while a result it fails on every time (a bug, an
    /// answer it cannot hold) stops costing a call every 2 s forever. 0: 1.
    pub max_callback_failures: u32,
    /// Holds the plugin's post hooks (outgoing webhooks) without losing
    /// any: posts are still accepted, and what their hooks owe waits in the
    /// store's outbox until this is turned off again (`PUT
    /// /api/v4/config/patch` or a restart), then runs. For maintenance on
    /// the receivers' side, or an incident; default off.
    pub pause_post_hooks: bool,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        const MIN: u64 = 60_000;
        const HOUR: u64 = 60 * MIN;
        DeliverySettings {
            retry_schedule_milliseconds: vec![
                0,
                5_000,
                5 * MIN,
                30 * MIN,
                2 * HOUR,
                5 * HOUR,
                10 * HOUR,
                10 * HOUR,
            ],
            jitter_percent: 10,
            max_age_seconds: 3 * 24 * 3600,
            max_concurrent: 256,
            max_concurrent_per_destination: 64,
            max_concurrent_callbacks: 16,
            max_queued: 10_000,
            retention_days: 7,
            lease_seconds: 0,
            max_callback_failures: 10,
            pause_post_hooks: false,
        }
    }
}

impl DeliverySettings {
    pub fn default_attempts(&self) -> u32 {
        self.retry_schedule_milliseconds.len().max(1) as u32
    }

    /// The wait before attempt `next` (2 for the first retry), jittered, and
    /// never shorter than what the receiver asked for in `Retry-After`.
    pub fn delay_before(&self, next: u32, retry_after: Option<Duration>) -> Duration {
        let schedule = &self.retry_schedule_milliseconds;
        let index = (next as usize).saturating_sub(1);
        let base = schedule
            .get(index)
            .or(schedule.last())
            .copied()
            .unwrap_or(0);
        let spread = base as f64 * f64::from(self.jitter_percent.min(100)) / 100.0;
        let jittered = base as f64 + spread * (rand::random::<f64>() * 2.0 - 1.0);
        let delay = Duration::from_millis(jittered.max(0.0) as u64);
        delay.max(retry_after.unwrap_or_default())
    }
}
