//! Percentiles of a set of samples (median, p95, p99), as the report prints them.

use serde::Serialize;

/// What a set of samples looks like: count and nearest-rank percentiles.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    /// How many samples.
    pub n: usize,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Smallest sample.
    pub min: f64,
    /// Largest sample.
    pub max: f64,
}

impl Summary {
    /// Summarizes `samples` (any order); `None` when there are none or one is not finite.
    pub fn of(samples: &[f64]) -> Option<Self> {
        if samples.is_empty() || samples.iter().any(|s| !s.is_finite()) {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        Some(Self {
            n: sorted.len(),
            p50: rank(&sorted, 0.50),
            p95: rank(&sorted, 0.95),
            p99: rank(&sorted, 0.99),
            min: sorted[0],
            max: sorted[sorted.len() - 1],
        })
    }

    /// One value measured once (a count, a size): every percentile is that value.
    pub fn single(value: f64) -> Self {
        Self {
            n: 1,
            p50: value,
            p95: value,
            p99: value,
            min: value,
            max: value,
        }
    }
}

/// Nearest-rank percentile of sorted, non-empty samples.
fn rank(sorted: &[f64], q: f64) -> f64 {
    let idx = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let samples: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        let s = Summary::of(&samples).expect("samples");
        assert_eq!((s.n, s.p50, s.p95, s.p99), (100, 50.0, 95.0, 99.0));
        assert_eq!((s.min, s.max), (1.0, 100.0));
    }

    #[test]
    fn one_sample_is_every_percentile() {
        let s = Summary::of(&[7.0]).expect("a sample");
        assert_eq!((s.p50, s.p95, s.p99), (7.0, 7.0, 7.0));
    }

    #[test]
    fn no_samples_or_a_nan_give_no_summary() {
        assert!(Summary::of(&[]).is_none());
        assert!(Summary::of(&[1.0, f64::NAN]).is_none());
    }
}
