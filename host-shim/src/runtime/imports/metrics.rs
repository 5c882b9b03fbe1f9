//! `metrics`: the plugin's per-integration counters, kept in memory by `app::metrics`.

use crate::runtime::CallState;
use crate::runtime::bindings::switchboard::plugin::metrics::{Host, Sample, Summary};

/// The longest key kept: keys name integrations, never free text.
const MAX_KEY: usize = 256;

impl Host for CallState {
    async fn add(&mut self, key: String, sample: Sample) {
        if key.len() > MAX_KEY {
            return;
        }
        let now = self.app.clock.now_millis();
        self.app
            .metrics
            .add(&key, sample.failed, sample.posts, sample.latency_us, now);
    }

    async fn get(&mut self, key: String) -> Option<Summary> {
        self.app.metrics.get(&key).map(|s| Summary {
            requests: s.requests,
            failures: s.failures,
            posts: s.posts,
            last_at: s.last_at,
            p50_us: s.p50_us,
            p99_us: s.p99_us,
        })
    }

    async fn remove(&mut self, key: String) {
        self.app.metrics.remove(&key);
    }
}
