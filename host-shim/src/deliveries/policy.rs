//! When to try a delivery again: which outcomes are worth a retry, and how
//! long a receiver asked to wait (`Retry-After`); the schedule itself, with
//! its jitter, is `DeliverySettings` (`crate::config`).

use crate::egress::{EgressError, OutboundResponse};
use std::time::Duration;

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
    use crate::config::DeliverySettings;

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
