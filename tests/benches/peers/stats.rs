//! Repeated measurements: taking them in turns, and summarising them.

use crate::report::Records;

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

/// Runs `rounds` rounds of one `measure(i)` per contender `i` in `0..contenders`, in an order
/// that rotates every round so that no contender always runs first, and returns each
/// contender's results (indexed like the contenders, in round order).
pub fn interleave<S>(
    contenders: usize,
    rounds: usize,
    mut measure: impl FnMut(usize) -> S,
) -> Vec<Vec<S>> {
    let mut samples: Vec<Vec<S>> = (0..contenders).map(|_| Vec::new()).collect();
    for round in 0..rounds {
        for k in 0..contenders {
            let i = (k + round) % contenders;
            samples[i].push(measure(i));
        }
    }
    samples
}

/// Records the median of repeated throughputs `samples` as `metric` (higher is better), and
/// their spread as `spread_pct`.
pub fn record_median(
    records: &mut Records,
    group: &str,
    implementation: &str,
    metric: &str,
    samples: &[f64],
) {
    let summary = Summary::of(samples);
    records.push(group, implementation, metric, summary.median, true);
    records.push(
        group,
        implementation,
        "spread_pct",
        summary.spread_pct,
        false,
    );
}
