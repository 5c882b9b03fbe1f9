//! The `metrics` import's counters: one series per key (e.g. an incoming webhook), in memory,
//! with a small log-scale latency histogram so quantiles cost no per-sample storage. Changed
//! series are written to the store every few seconds (`App::flush_metrics`) and read back on
//! start, so counts survive a restart without a store write per request.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// Sub-buckets per power of two: a bucket's midpoint is within an eighth of any value in it,
/// and a series' histogram is 512 bytes.
const SUB: u32 = 4;
const BUCKETS: usize = 128;

/// What one series holds.
#[derive(Debug, Clone)]
struct Series {
    requests: u64,
    failures: u64,
    posts: u64,
    last_at: i64,
    histogram: [u32; BUCKETS],
    /// Changed since it was last written to the store.
    dirty: bool,
}

/// A series as the store keeps it; the histogram as little-endian `u32`s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSeries {
    pub key: String,
    pub requests: u64,
    pub failures: u64,
    pub posts: u64,
    pub last_at: i64,
    pub histogram: Vec<u8>,
}

/// What changed since the last flush: series to write, keys to delete.
#[derive(Debug, Default)]
pub struct Changes {
    pub changed: Vec<StoredSeries>,
    pub removed: Vec<String>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.removed.is_empty()
    }
}

/// A series' summary, as the import returns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub requests: u64,
    pub failures: u64,
    pub posts: u64,
    pub last_at: i64,
    pub p50_us: u64,
    pub p99_us: u64,
}

/// Every series, behind one lock: an add is a few integer updates.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    series: HashMap<String, Series>,
    /// Keys removed since the last flush, to delete from the store.
    removed: HashSet<String>,
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Series read back from the store on start.
    pub fn restore(&self, stored: Vec<StoredSeries>) {
        let mut inner = self.lock();
        for s in stored {
            let mut histogram = [0u32; BUCKETS];
            for (slot, bytes) in histogram.iter_mut().zip(s.histogram.chunks_exact(4)) {
                *slot = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            }
            let series = Series {
                requests: s.requests,
                failures: s.failures,
                posts: s.posts,
                last_at: s.last_at,
                histogram,
                dirty: false,
            };
            inner.series.insert(s.key, series);
        }
    }

    /// Takes what changed since the last call, marking it written.
    pub fn take_changes(&self) -> Changes {
        let mut inner = self.lock();
        let removed = inner.removed.drain().collect();
        let changed = inner
            .series
            .iter_mut()
            .filter(|(_, s)| s.dirty)
            .map(|(key, s)| {
                s.dirty = false;
                StoredSeries {
                    key: key.clone(),
                    requests: s.requests,
                    failures: s.failures,
                    posts: s.posts,
                    last_at: s.last_at,
                    histogram: s.histogram.iter().flat_map(|n| n.to_le_bytes()).collect(),
                }
            })
            .collect();
        Changes { changed, removed }
    }

    /// Puts back what a failed flush took, so the next one writes it.
    pub fn untake(&self, changes: Changes) {
        let mut inner = self.lock();
        for s in changes.changed {
            if let Some(series) = inner.series.get_mut(&s.key) {
                series.dirty = true;
            }
        }
        for key in changes.removed {
            if !inner.series.contains_key(&key) {
                inner.removed.insert(key);
            }
        }
    }

    pub fn add(&self, key: &str, failed: bool, posts: u32, latency_us: u64, now_millis: i64) {
        let mut inner = self.lock();
        let map = &mut inner.series;
        let series = match map.get_mut(key) {
            Some(series) => series,
            None => map.entry(key.to_owned()).or_insert(Series {
                requests: 0,
                failures: 0,
                posts: 0,
                last_at: 0,
                histogram: [0; BUCKETS],
                dirty: false,
            }),
        };
        series.dirty = true;
        series.requests += 1;
        series.failures += u64::from(failed);
        series.posts += u64::from(posts);
        series.last_at = series.last_at.max(now_millis);
        let slot = &mut series.histogram[bucket(latency_us)];
        *slot = slot.saturating_add(1);
    }

    pub fn get(&self, key: &str) -> Option<Summary> {
        let inner = self.lock();
        let s = inner.series.get(key)?;
        Some(Summary {
            requests: s.requests,
            failures: s.failures,
            posts: s.posts,
            last_at: s.last_at,
            p50_us: quantile(&s.histogram, 0.50),
            p99_us: quantile(&s.histogram, 0.99),
        })
    }

    pub fn remove(&self, key: &str) {
        let mut inner = self.lock();
        if inner.series.remove(key).is_some() {
            inner.removed.insert(key.to_owned());
        }
    }
}

/// Values below `SUB` get a bucket each; above, each power of two is split in `SUB`.
fn bucket(value: u64) -> usize {
    if value < u64::from(SUB) {
        return value as usize;
    }
    let exp = 63 - value.leading_zeros();
    let sub = (value >> (exp - SUB.trailing_zeros())) & u64::from(SUB - 1);
    let index = (SUB * (exp - SUB.trailing_zeros() + 1) + sub as u32) as usize;
    index.min(BUCKETS - 1)
}

/// The middle of bucket `index`'s range.
fn midpoint(index: usize) -> u64 {
    let index = index as u32;
    if index < SUB {
        return u64::from(index);
    }
    let exp = index / SUB - 1 + SUB.trailing_zeros();
    let sub = u64::from(index % SUB);
    let width = 1u64 << (exp - SUB.trailing_zeros());
    let low = (1u64 << exp) + sub * width;
    low + width / 2
}

fn quantile(histogram: &[u32; BUCKETS], q: f64) -> u64 {
    let total: u64 = histogram.iter().map(|n| u64::from(*n)).sum();
    if total == 0 {
        return 0;
    }
    // The rank of the sample at quantile q, 1-based.
    let rank = ((q * total as f64).ceil() as u64).max(1);
    let mut seen = 0;
    for (index, count) in histogram.iter().enumerate() {
        seen += u64::from(*count);
        if seen >= rank {
            return midpoint(index);
        }
    }
    midpoint(BUCKETS - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_midpoints_close() {
        let mut last = 0;
        for v in (0..100_000u64).chain([1 << 30, u64::MAX]) {
            let b = bucket(v);
            assert!(b >= last, "{v}");
            last = b;
            if v >= 4 && b < BUCKETS - 1 {
                let mid = midpoint(b) as f64;
                let err = (mid - v as f64).abs() / v as f64;
                assert!(err <= 0.125 + 1e-9, "{v}: midpoint {mid}");
            }
        }
    }

    #[test]
    fn counts_and_quantiles() {
        let m = Metrics::default();
        assert_eq!(m.get("h"), None);
        for i in 1..=100u64 {
            m.add("h", i % 10 == 0, 1, i * 1000, 5);
        }
        m.add("other", false, 0, 1, 9);
        let s = m.get("h").unwrap();
        assert_eq!(
            (s.requests, s.failures, s.posts, s.last_at),
            (100, 10, 100, 5)
        );
        let near = |got: u64, want: u64| (got as f64 - want as f64).abs() / want as f64 <= 0.125;
        assert!(near(s.p50_us, 50_000), "{}", s.p50_us);
        assert!(near(s.p99_us, 99_000), "{}", s.p99_us);
        m.remove("h");
        assert_eq!(m.get("h"), None);
        assert_eq!(m.get("other").unwrap().requests, 1);
    }

    #[test]
    fn changes_are_taken_once_and_restore_the_series() {
        let m = Metrics::default();
        for i in 1..=50u64 {
            m.add("h", false, 2, i * 100, 7);
        }
        m.add("gone", true, 0, 1, 8);
        m.remove("gone");
        let changes = m.take_changes();
        assert_eq!(changes.changed.len(), 1);
        assert_eq!(changes.removed, ["gone"]);
        assert!(m.take_changes().is_empty(), "taken once");
        // A failed flush gives them back.
        m.untake(changes);
        let changes = m.take_changes();
        assert_eq!((changes.changed.len(), changes.removed.len()), (1, 1));
        let restored = Metrics::default();
        restored.restore(changes.changed);
        assert_eq!(restored.get("h"), m.get("h"));
        assert!(restored.take_changes().is_empty(), "restored is not dirty");
    }
}
