//! Per-hook rate limits on `POST /hooks/{id}` (our extension): a request budget per minute,
//! from the plugin setting `IncomingWebhookRateLimit` or the hook's own `rate_limit`.

use serde::{Deserialize, Serialize};

use crate::api::ApiError;
use crate::host::{Host, HostError};

/// A hook's budget: `limit` requests per minute, all of which may come at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub limit: u32,
}

/// What the answer tells the sender, as the IETF `RateLimit` header fields do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the whole budget is available again.
    pub reset_secs: u64,
    /// Seconds until one more request is allowed; set when refused.
    pub retry_after_secs: u64,
}

impl Verdict {
    pub fn headers(&self) -> Vec<(String, String)> {
        let mut headers = vec![
            ("RateLimit-Limit".to_owned(), self.limit.to_string()),
            ("RateLimit-Remaining".to_owned(), self.remaining.to_string()),
            ("RateLimit-Reset".to_owned(), self.reset_secs.to_string()),
        ];
        if !self.allowed {
            headers.push(("Retry-After".to_owned(), self.retry_after_secs.to_string()));
        }
        headers
    }
}

const WINDOW_MILLIS: i64 = 60_000;

/// The budget that applies: the hook's own `rate_limit` (0 turns limiting off for it), else
/// the plugin setting, else none.
pub fn budget(host: &dyn Host, hook_limit: Option<u32>) -> Option<Budget> {
    let limit = hook_limit.or_else(|| {
        serde_json::from_str::<serde_json::Value>(&host.settings().plugin_settings)
            .ok()?
            .get("IncomingWebhookRateLimit")?
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
    })?;
    (limit > 0).then_some(Budget { limit })
}

/// The generic cell rate algorithm: one stored time (when the budget is next full) per hook,
/// updated with compare-and-set so concurrent requests each take their own share.
#[derive(Serialize, Deserialize)]
struct State {
    /// The theoretical arrival time of the next request, in ms.
    tat: i64,
}

/// Takes one request from `hook_id`'s budget at `now`.
pub fn take(host: &dyn Host, hook_id: &str, budget: Budget, now: i64) -> Result<Verdict, ApiError> {
    let key = format!("incoming_rate/{hook_id}");
    let interval = (WINDOW_MILLIS / i64::from(budget.limit)).max(1);
    let capacity = interval * i64::from(budget.limit);
    let store_error = |e: HostError| ApiError::host("app.plugin.kv.app_error", &e);
    // Contended hooks retry; each lost race means another request took a share.
    for _ in 0..16 {
        let old = host.kv_get(&key).map_err(store_error)?;
        let tat = old
            .as_deref()
            .and_then(|raw| serde_json::from_slice::<State>(raw).ok())
            .map_or(now, |s| s.tat.max(now));
        let next = tat + interval;
        if next - now > capacity {
            let wait = next - capacity - now;
            return Ok(Verdict {
                allowed: false,
                limit: budget.limit,
                remaining: 0,
                reset_secs: ceil_secs(tat - now),
                retry_after_secs: ceil_secs(wait).max(1),
            });
        }
        let state = serde_json::to_vec(&State { tat: next }).unwrap_or_default();
        // Once `next` has passed the state says nothing an absent one does
        // not (the budget is full): the host drops it then.
        let ttl = ceil_secs(next - now).max(1);
        if host
            .kv_compare_and_set_with_expiry(&key, old.as_deref(), Some(&state), ttl)
            .map_err(store_error)?
        {
            let remaining = (capacity - (next - now)) / interval;
            return Ok(Verdict {
                allowed: true,
                limit: budget.limit,
                remaining: u32::try_from(remaining).unwrap_or(0),
                reset_secs: ceil_secs(next - now),
                retry_after_secs: 0,
            });
        }
    }
    Err(ApiError::new(
        503,
        "web.incoming_webhook.rate_contended.app_error",
        "Too many concurrent requests for this webhook; retry it.",
    ))
}

fn ceil_secs(millis: i64) -> u64 {
    u64::try_from((millis.max(0) + 999) / 1000).unwrap_or(0)
}

/// The refusal sent with a refused verdict's headers.
pub fn refused() -> ApiError {
    ApiError::new(
        429,
        "web.incoming_webhook.rate_limited.app_error",
        "This webhook has used its request budget; retry after the time in Retry-After.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeHost;

    #[test]
    fn a_burst_of_the_limit_then_one_per_interval() {
        let host = FakeHost::default();
        let budget = Budget { limit: 3 };
        let t0 = 1_000_000;
        let remaining: Vec<u32> = (0..3)
            .map(|_| take(&host, "h", budget, t0).unwrap())
            .inspect(|v| assert!(v.allowed))
            .map(|v| v.remaining)
            .collect();
        assert_eq!(remaining, [2, 1, 0]);
        let refused = take(&host, "h", budget, t0).unwrap();
        assert!(!refused.allowed);
        assert_eq!(
            refused.retry_after_secs, 20,
            "one interval of a 3-per-minute budget"
        );
        assert_eq!(refused.reset_secs, 60);
        assert!(
            take(&host, "other", budget, t0).unwrap().allowed,
            "budgets are per hook"
        );
        assert!(!take(&host, "h", budget, t0 + 19_999).unwrap().allowed);
        let later = take(&host, "h", budget, t0 + 20_000).unwrap();
        assert!(later.allowed);
        assert_eq!(later.remaining, 0);
        assert!(
            take(&host, "h", budget, t0 + 10 * 60_000)
                .unwrap()
                .remaining
                == 2
        );
    }

    #[test]
    fn the_state_expires_when_the_budget_is_full_again() {
        let host = FakeHost::default();
        let ttl = || host.kv_ttl.borrow().get("incoming_rate/h").copied();
        let budget = Budget { limit: 3 };
        take(&host, "h", budget, 1_000_000).unwrap();
        assert_eq!(
            ttl(),
            Some(20),
            "one request: full again one interval later"
        );
        take(&host, "h", budget, 1_000_000).unwrap();
        take(&host, "h", budget, 1_000_000).unwrap();
        assert_eq!(
            ttl(),
            Some(60),
            "the whole budget: full again a window later"
        );
        let fast = Budget { limit: 100_000 };
        take(&host, "f", fast, 1_000_000).unwrap();
        assert_eq!(
            host.kv_ttl.borrow().get("incoming_rate/f").copied(),
            Some(1),
            "never less than a second"
        );
    }

    #[test]
    fn the_hook_overrides_the_setting() {
        let host = FakeHost::default();
        assert_eq!(budget(&host, None), None);
        host.settings.borrow_mut().plugin_settings = r#"{"IncomingWebhookRateLimit": 60}"#.into();
        assert_eq!(budget(&host, None), Some(Budget { limit: 60 }));
        assert_eq!(budget(&host, Some(5)), Some(Budget { limit: 5 }));
        assert_eq!(budget(&host, Some(0)), None, "0 on the hook turns it off");
    }

    #[test]
    fn headers() {
        let v = Verdict {
            allowed: false,
            limit: 3,
            remaining: 0,
            reset_secs: 60,
            retry_after_secs: 20,
        };
        assert_eq!(
            v.headers(),
            [
                ("RateLimit-Limit".to_owned(), "3".to_owned()),
                ("RateLimit-Remaining".to_owned(), "0".to_owned()),
                ("RateLimit-Reset".to_owned(), "60".to_owned()),
                ("Retry-After".to_owned(), "20".to_owned()),
            ]
        );
    }
}
