//! A budget of requests per client address per minute, for routes anyone may
//! call without signing in (dynamic client registration).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);

/// Addresses tracked at most before windows that ended are dropped.
const PRUNE_AT: usize = 4096;

/// Fixed one-minute windows per address.
#[derive(Default)]
pub struct PerMinute {
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl PerMinute {
    /// Counts one request from `address`; `Err(seconds)` to wait when it is
    /// over `budget` in its current minute.
    pub fn take(&self, address: IpAddr, budget: u32) -> Result<(), u64> {
        self.take_at(address, budget, Instant::now())
    }

    fn take_at(&self, address: IpAddr, budget: u32, now: Instant) -> Result<(), u64> {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() >= PRUNE_AT {
            windows.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
        }
        let (start, used) = windows.entry(address).or_insert((now, 0));
        if now.duration_since(*start) >= WINDOW {
            (*start, *used) = (now, 0);
        }
        if *used >= budget {
            let left = WINDOW.saturating_sub(now.duration_since(*start));
            return Err(left.as_secs_f64().ceil().max(1.0) as u64);
        }
        *used += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_has_its_budget_for_a_minute() {
        let limit = PerMinute::default();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limit.take_at(a, 3, start).is_ok());
        }
        assert_eq!(
            limit.take_at(a, 3, start + Duration::from_secs(15)),
            Err(45)
        );
        assert!(limit.take_at(b, 3, start).is_ok(), "another address");
        assert!(limit.take_at(a, 3, start + WINDOW).is_ok(), "a new minute");
    }
}
