//! The server's wall clock: the system's, or a fixed one a test sets and
//! advances. Post timestamps and the plugin's WASI clock both read it, so a
//! test sees the same time on both sides.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// `None`: the system clock. `Some`: milliseconds since the epoch.
    fixed: Option<Arc<AtomicI64>>,
}

impl Clock {
    pub fn system() -> Clock {
        Clock::default()
    }

    pub fn fixed(millis: i64) -> Clock {
        Clock {
            fixed: Some(Arc::new(AtomicI64::new(millis))),
        }
    }

    pub fn is_fixed(&self) -> bool {
        self.fixed.is_some()
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_millis(&self) -> i64 {
        match &self.fixed {
            Some(ms) => ms.load(Ordering::SeqCst),
            None => crate::store::now_millis(),
        }
    }

    /// Moves a fixed clock forward; a system clock ignores it.
    pub fn advance(&self, by: Duration) {
        if let Some(ms) = &self.fixed {
            ms.fetch_add(
                i64::try_from(by.as_millis()).unwrap_or(i64::MAX),
                Ordering::SeqCst,
            );
        }
    }
}

impl wasmtime_wasi::HostWallClock for Clock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }

    fn now(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.now_millis()).unwrap_or(0))
    }
}
