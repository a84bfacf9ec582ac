//! Lock-free counters and duration histograms that the metrics layer exports later.
//!
//! Everything here is updated on hot paths with relaxed atomics and read as a point-in-time snapshot;
//! the bucket bounds match Prometheus' exponential buckets so that registering them is a copy.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (inclusive) of the histogram buckets, in seconds: 100 µs doubling up to ~107 s.
/// A last, implicit `+Inf` bucket catches everything above.
pub const BUCKET_BOUNDS_SECONDS: [f64; 21] = [
    0.000_1, 0.000_2, 0.000_4, 0.000_8, 0.001_6, 0.003_2, 0.006_4, 0.012_8, 0.025_6, 0.051_2,
    0.102_4, 0.204_8, 0.409_6, 0.819_2, 1.638_4, 3.276_8, 6.553_6, 13.107_2, 26.214_4, 52.428_8,
    104.857_6,
];

/// A histogram of durations with fixed exponential buckets, safe to update from many threads.
#[derive(Debug)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKET_BOUNDS_SECONDS.len() + 1],
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_nanos: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let idx = BUCKET_BOUNDS_SECONDS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKET_BOUNDS_SECONDS.len());
        self.buckets[idx].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// A point-in-time copy.
    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            buckets: self
                .buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
            sum: Duration::from_nanos(self.sum_nanos.load(Ordering::Relaxed)),
            count: self.count.load(Ordering::Relaxed),
        }
    }
}

/// A copy of a [`Histogram`]: per-bucket counts (not cumulative) aligned with [`BUCKET_BOUNDS_SECONDS`]
/// plus a final `+Inf` bucket, the sum and the number of observations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// Counts per bucket, `BUCKET_BOUNDS_SECONDS.len() + 1` long.
    pub buckets: Vec<u64>,
    /// Sum of all observations.
    pub sum: Duration,
    /// Number of observations.
    pub count: u64,
}

impl HistogramSnapshot {
    /// Mean of the observations, zero when there are none.
    pub fn mean(&self) -> Duration {
        if self.count == 0 {
            Duration::ZERO
        } else {
            self.sum / u32::try_from(self.count).unwrap_or(u32::MAX)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_puts_each_observation_in_the_first_bucket_that_holds_it() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(50));
        h.observe(Duration::from_micros(100));
        h.observe(Duration::from_millis(1));
        h.observe(Duration::from_secs(1000));
        let s = h.snapshot();
        assert_eq!(s.count, 4);
        assert_eq!(s.buckets[0], 2);
        assert_eq!(s.buckets[4], 1, "1 ms lands in the 1.6 ms bucket");
        assert_eq!(
            s.buckets[BUCKET_BOUNDS_SECONDS.len()],
            1,
            "overflow lands in +Inf"
        );
        assert_eq!(
            s.sum,
            Duration::from_micros(1_001_150) + Duration::from_secs(999)
        );
    }
}
