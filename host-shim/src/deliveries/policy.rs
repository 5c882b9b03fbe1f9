//! When to try a delivery again: `DeliverySettings` in config.json, which
//! outcomes are worth a retry, and the backoff with jitter and `Retry-After`.

use crate::egress::{EgressError, OutboundResponse};
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

/// Whether an outcome is worth another attempt: no answer (connection,
/// timeout, a broken body), 408, 429 and 5xx. A refused address, a bad URL
/// and every other status are final.
pub fn retryable(result: &Result<OutboundResponse, EgressError>) -> bool {
    match result {
        Ok(r) => r.status == 408 || r.status == 429 || r.status >= 500,
        Err(EgressError::Timeout(_) | EgressError::Connect(_) | EgressError::Other(_)) => true,
        Err(EgressError::Refused(_) | EgressError::InvalidUrl(_)) => false,
    }
}

/// `Retry-After` in either of RFC 9110's forms: seconds, or an HTTP-date
/// (taken as the wait from now; a date already past asks for no wait).
pub fn retry_after(result: &Result<OutboundResponse, EgressError>) -> Option<Duration> {
    retry_after_at(result, std::time::SystemTime::now())
}

fn retry_after_at(
    result: &Result<OutboundResponse, EgressError>,
    now: std::time::SystemTime,
) -> Option<Duration> {
    let Ok(response) = result else { return None };
    let value = response
        .headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("retry-after"))
        .map(|(_, value)| value.trim())?;
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(
        status: u16,
        headers: Vec<(String, String)>,
    ) -> Result<OutboundResponse, EgressError> {
        Ok(OutboundResponse {
            status,
            headers,
            ..OutboundResponse::default()
        })
    }

    #[test]
    fn what_is_retried() {
        for code in [408, 429, 500, 502, 503, 599] {
            assert!(retryable(&status(code, vec![])), "{code}");
        }
        for code in [200, 201, 204, 301, 400, 401, 404, 410, 422] {
            assert!(!retryable(&status(code, vec![])), "{code}");
        }
        assert!(retryable(&Err(EgressError::Timeout("t".into()))));
        assert!(retryable(&Err(EgressError::Connect("c".into()))));
        assert!(!retryable(&Err(EgressError::Refused("r".into()))));
        assert!(!retryable(&Err(EgressError::InvalidUrl("u".into()))));
    }

    #[test]
    fn the_default_schedule_is_svixs_with_jitter_and_retry_after() {
        let settings = DeliverySettings::default();
        assert_eq!(settings.default_attempts(), 8);
        assert_eq!(settings.delay_before(1, None), Duration::ZERO);
        let second = settings.delay_before(2, None);
        assert!(
            (4_500..=5_500).contains(&(second.as_millis() as u64)),
            "{second:?}"
        );
        let last = settings.delay_before(8, None);
        assert!(last >= Duration::from_secs(9 * 3600), "{last:?}");
        let asked = retry_after(&status(429, vec![("Retry-After".into(), "120".into())]));
        assert_eq!(asked, Some(Duration::from_secs(120)));
        assert_eq!(settings.delay_before(2, asked), Duration::from_secs(120));
        assert_eq!(
            retry_after(&status(503, vec![("retry-after".into(), "soon".into())])),
            None
        );
    }

    #[test]
    fn retry_after_as_an_http_date_is_the_wait_until_then() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2026 07:26:00 GMT").unwrap();
        let asked = |value: &str| {
            retry_after_at(
                &status(503, vec![("retry-after".into(), value.into())]),
                now,
            )
        };
        // IMF-fixdate, and the obsolete RFC 850 and asctime forms.
        assert_eq!(
            asked("Wed, 21 Oct 2026 07:28:00 GMT"),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            asked("Wednesday, 21-Oct-26 07:28:00 GMT"),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            asked("Wed Oct 21 07:28:00 2026"),
            Some(Duration::from_secs(120))
        );
        // A date already past asks for no wait beyond the schedule's.
        assert_eq!(asked("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        let settings = DeliverySettings::default();
        assert_eq!(
            settings.delay_before(2, asked("Wed, 21 Oct 2026 07:28:00 GMT")),
            Duration::from_secs(120)
        );
    }
}
