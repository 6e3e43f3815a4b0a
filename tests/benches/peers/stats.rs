//! Summaries of repeated measurements.

/// The `q`-quantile (0 ≤ q ≤ 1) of `sorted` by nearest rank.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    assert!(!sorted.is_empty(), "no samples");
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Median and interquartile spread (as a percentage of the median) of repeated throughputs.
pub struct Summary {
    pub median: f64,
    pub spread_pct: f64,
}

impl Summary {
    pub fn of(samples: &[f64]) -> Summary {
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        let spread = quantile(&sorted, 0.75) - quantile(&sorted, 0.25);
        Summary {
            median,
            spread_pct: 100.0 * spread / median,
        }
    }
}
