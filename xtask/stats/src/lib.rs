//! The statistics of `cargo xtask bench`, shared by the benchmark binaries (which take the
//! measurements) and xtask (which judges them).
//!
//! # The method
//!
//! The machines are shared and noisy: one implementation's throughput swings by ±40–100%
//! from run to run. What holds still much better is a *paired* comparison:
//!
//! 1. Each **round** measures every implementation once, back to back, in an order that
//!    rotates from round to round ([`order`]), so load that comes and goes hits them alike.
//! 2. The ratio of two implementations is taken *within* each round ([`Rounds::ratios`]);
//!    the figure reported is the median of those per-round ratios, with a 95% interval from a
//!    percentile bootstrap ([`Estimate::bootstrap`]).
//! 3. Rounds go on until every interval that matters is narrow ([`Plan::aim`], ±10%), or the
//!    round cap or the time budget is reached ([`Plan`], [`Stop`]); the number of rounds is
//!    reported with the figures.
//! 4. A target is [`Verdict::Met`] only if the interval's lower bound clears it,
//!    [`Verdict::Missed`] only if its upper bound is below it, and [`Verdict::CannotTell`]
//!    otherwise ([`Target::judge`]).
//!
//! ```
//! use std::time::Duration;
//! use bench_stats::{run_rounds, Plan, Stop};
//!
//! // Two "implementations" under a load that changes from round to round: alone, each one's
//! // throughput swings fivefold, but within a round the first is always twice the second.
//! let mut calls = 0;
//! let plan = Plan { min_rounds: 5, max_rounds: 50, budget: Duration::from_secs(5), aim: 0.10 };
//! let rounds = run_rounds(2, &plan, true, &[(0, 1)], |i| {
//!     let load = 1.0 + (calls / 2 % 5) as f64;
//!     calls += 1;
//!     [if i == 0 { 2.0 / load } else { 1.0 / load }]
//! });
//! assert!((rounds.ratio(0, 1, 0).median - 2.0).abs() < 1e-9);
//! assert_eq!((rounds.count(), rounds.stop()), (8, Stop::Narrow)); // 5, confirmed at 8
//! assert!(rounds.value(0, 0).relative_reach() > 0.5); // the throughput alone is all over
//! ```

use std::time::{Duration, Instant};

/// The confidence of every interval: 95%.
pub const CONFIDENCE: f64 = 0.95;

/// Bootstrap resamples per interval.
pub const RESAMPLES: usize = 2000;

/// The bootstrap's seed: the same samples always give the same interval.
const SEED: u64 = 0x5eed_b007_5eed_b007;

/// A median with its 95% interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// The median of the samples.
    pub median: f64,
    /// The interval's lower bound.
    pub low: f64,
    /// The interval's upper bound.
    pub high: f64,
}

impl Estimate {
    /// A value known exactly (a deterministic count): its interval is the value itself.
    ///
    /// ```
    /// let exact = bench_stats::Estimate::exact(42.0);
    /// assert_eq!((exact.low, exact.median, exact.high), (42.0, 42.0, 42.0));
    /// ```
    pub fn exact(value: f64) -> Estimate {
        Estimate {
            median: value,
            low: value,
            high: value,
        }
    }

    /// The median of `samples` with a percentile-bootstrap interval: the median of
    /// [`RESAMPLES`] resamples (drawn with replacement, seeded) of the same size, and the
    /// 2.5th and 97.5th percentiles of those medians as the bounds.
    ///
    /// ```
    /// let samples: Vec<f64> = (1..=101).map(f64::from).collect();
    /// let estimate = bench_stats::Estimate::bootstrap(&samples);
    /// assert_eq!(estimate.median, 51.0);
    /// assert!(estimate.low < 51.0 && estimate.high > 51.0);
    /// ```
    ///
    /// # Panics
    ///
    /// If `samples` is empty or holds a value that is not finite.
    pub fn bootstrap(samples: &[f64]) -> Estimate {
        Estimate::bootstrap_seeded(samples, SEED)
    }

    fn bootstrap_seeded(samples: &[f64], seed: u64) -> Estimate {
        assert!(!samples.is_empty(), "no samples to estimate from");
        assert!(
            samples.iter().all(|s| s.is_finite()),
            "a sample is not finite: {samples:?}"
        );
        let median = median(samples);
        let n = samples.len();
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut resample = vec![0.0; n];
        let mut medians: Vec<f64> = (0..RESAMPLES)
            .map(|_| {
                for slot in resample.iter_mut() {
                    *slot = samples[rng.usize(..n)];
                }
                median_in_place(&mut resample)
            })
            .collect();
        medians.sort_by(f64::total_cmp);
        let tail = (1.0 - CONFIDENCE) / 2.0;
        Estimate {
            median,
            low: quantile(&medians, tail),
            high: quantile(&medians, 1.0 - tail),
        }
    }

    /// How far the interval reaches from the median, relative to it, on its wider side:
    /// 0.1 means the interval lies within ±10% of the median.
    ///
    /// ```
    /// let e = bench_stats::Estimate { median: 2.0, low: 1.9, high: 2.4 };
    /// assert!((e.relative_reach() - 0.2).abs() < 1e-12);
    /// ```
    pub fn relative_reach(&self) -> f64 {
        let reach = (self.median - self.low).max(self.high - self.median);
        if reach == 0.0 {
            0.0
        } else {
            reach / self.median.abs()
        }
    }
}

/// The median of `samples` (the mean of the middle two for an even count).
///
/// ```
/// assert_eq!(bench_stats::median(&[3.0, 1.0, 2.0]), 2.0);
/// assert_eq!(bench_stats::median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
/// ```
///
/// # Panics
///
/// If `samples` is empty.
pub fn median(samples: &[f64]) -> f64 {
    assert!(!samples.is_empty(), "the median of no samples");
    median_in_place(&mut samples.to_vec())
}

/// The median, reordering `values` to find it (linear time).
fn median_in_place(values: &mut [f64]) -> f64 {
    let (n, mid) = (values.len(), values.len() / 2);
    let (lower, middle, _) = values.select_nth_unstable_by(mid, f64::total_cmp);
    let middle = *middle;
    if n % 2 == 1 {
        middle
    } else {
        let below = lower.iter().copied().max_by(f64::total_cmp).expect("n ≥ 2");
        (below + middle) / 2.0
    }
}

/// The `q`-quantile (0 ≤ q ≤ 1) of `sorted`, by nearest rank.
///
/// ```
/// let sorted: Vec<f64> = (1..=100).map(f64::from).collect();
/// assert_eq!(bench_stats::quantile(&sorted, 0.99), 99.0);
/// assert_eq!(bench_stats::quantile(&sorted, 0.0), 1.0);
/// ```
///
/// # Panics
///
/// If `sorted` is empty.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    assert!(!sorted.is_empty(), "a quantile of no samples");
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The order in which round `round` measures `contenders` implementations: each one first
/// in turn, so none always runs right after the same neighbour or always first.
///
/// ```
/// let order: Vec<usize> = bench_stats::order(3, 1).collect();
/// assert_eq!(order, [1, 2, 0]);
/// ```
pub fn order(contenders: usize, round: usize) -> impl Iterator<Item = usize> {
    (0..contenders).map(move |k| (k + round) % contenders)
}

/// How many times better `ours` is than `theirs` (above 1: better), by the metric's sense.
///
/// ```
/// assert_eq!(bench_stats::advantage(30.0, 20.0, true), 1.5); // throughput
/// assert_eq!(bench_stats::advantage(20.0, 30.0, false), 1.5); // latency
/// ```
pub fn advantage(ours: f64, theirs: f64, higher_is_better: bool) -> f64 {
    if higher_is_better {
        ours / theirs
    } else {
        theirs / ours
    }
}

/// When to stop taking rounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// Never fewer rounds than this (the bootstrap needs samples to resample).
    pub min_rounds: usize,
    /// Never more rounds than this.
    pub max_rounds: usize,
    /// No new round starts after this much time (once `min_rounds` are done).
    pub budget: Duration,
    /// Narrow enough: every tracked interval within ±`aim` of its median (0.1 = ±10%).
    pub aim: f64,
}

/// Why the rounds stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Every tracked interval reached the aim.
    Narrow,
    /// The round cap was reached first.
    MaxRounds,
    /// The time budget ran out first.
    Budget,
}

impl Stop {
    /// A word for reports: `narrow`, `round cap` or `time cap`.
    ///
    /// ```
    /// assert_eq!(bench_stats::Stop::Budget.describe(), "time cap");
    /// ```
    pub fn describe(self) -> &'static str {
        match self {
            Stop::Narrow => "narrow",
            Stop::MaxRounds => "round cap",
            Stop::Budget => "time cap",
        }
    }
}

impl Plan {
    /// Whether to stop after `rounds` rounds taking `elapsed`, given whether the tracked
    /// intervals are narrow (and confirmed so: see [`run_rounds`]). The minimum comes first,
    /// then the aim, then the caps.
    ///
    /// ```
    /// use std::time::Duration;
    /// use bench_stats::{Plan, Stop};
    ///
    /// let plan = Plan { min_rounds: 10, max_rounds: 100, budget: Duration::from_secs(30), aim: 0.1 };
    /// assert_eq!(plan.stop(5, Duration::from_secs(60), true), None); // the minimum first
    /// assert_eq!(plan.stop(10, Duration::ZERO, true), Some(Stop::Narrow));
    /// assert_eq!(plan.stop(10, Duration::ZERO, false), None);
    /// assert_eq!(plan.stop(40, Duration::from_secs(31), false), Some(Stop::Budget));
    /// assert_eq!(plan.stop(100, Duration::ZERO, false), Some(Stop::MaxRounds));
    /// ```
    pub fn stop(&self, rounds: usize, elapsed: Duration, narrow: bool) -> Option<Stop> {
        if rounds < self.min_rounds {
            None
        } else if narrow {
            Some(Stop::Narrow)
        } else if rounds >= self.max_rounds {
            Some(Stop::MaxRounds)
        } else if elapsed >= self.budget {
            Some(Stop::Budget)
        } else {
            None
        }
    }
}

/// The measurements of paired rounds: `K` metrics per implementation per round.
#[derive(Debug, Clone)]
pub struct Rounds<const K: usize> {
    /// `samples[contender][round]`.
    samples: Vec<Vec<[f64; K]>>,
    higher_is_better: bool,
    stop: Stop,
    elapsed: Duration,
}

/// Between two looks at the intervals, the rounds grow by at least this factor: fewer looks
/// select fewer lucky moments (and cost fewer bootstraps).
const LOOK_GROWTH: f64 = 1.1;

/// After a look that finds the intervals narrow, the rounds grow by this factor before the
/// look that must confirm it.
const CONFIRM_GROWTH: f64 = 1.5;

/// Runs paired rounds of `contenders` implementations: each round calls `measure(i)` once for
/// every `i` in `0..contenders`, in [`order`], and gets `K` metrics (all better when higher,
/// or all better when lower: `higher_is_better`).
///
/// The stopping rule: from `plan.min_rounds` on, and then each time the rounds have grown by
/// a tenth, it looks at the bootstrap interval of the per-round ratios of every `tracked`
/// pair `(ours, theirs)` in every metric. They count as narrow once every one is within
/// ±`plan.aim` of its median at two looks in a row, the second after 50% more rounds; or the
/// caps end the rounds ([`Plan::stop`]). Stopping the first time an interval looks narrow
/// would pick intervals that are narrow by luck: in simulation (ratios spread
/// log-uniformly), the 95% intervals then held the true median ratio only 87–88% of the
/// time; with the confirming look, 91–96% (the percentile bootstrap of a median itself gives
/// 92–95% at these sample sizes).
///
/// # Panics
///
/// If there are no contenders, a tracked index is out of range, or `plan.max_rounds` is 0.
pub fn run_rounds<const K: usize>(
    contenders: usize,
    plan: &Plan,
    higher_is_better: bool,
    tracked: &[(usize, usize)],
    mut measure: impl FnMut(usize) -> [f64; K],
) -> Rounds<K> {
    let rounds = try_run_rounds(contenders, plan, higher_is_better, tracked, |i| {
        Ok::<_, std::convert::Infallible>(measure(i))
    });
    match rounds {
        Ok(rounds) => rounds,
        Err(never) => match never {},
    }
}

/// [`run_rounds`] for a measurement that can fail (a browser that went away, say): the first
/// error ends the rounds and is returned.
///
/// ```
/// use std::time::Duration;
/// use bench_stats::{try_run_rounds, Plan};
///
/// let plan = Plan { min_rounds: 3, max_rounds: 10, budget: Duration::from_secs(5), aim: 0.1 };
/// let mut calls = 0;
/// let failed = try_run_rounds(2, &plan, false, &[(0, 1)], |_| {
///     calls += 1;
///     if calls == 4 { Err("the browser closed") } else { Ok([1.0]) }
/// });
/// assert_eq!(failed.err(), Some("the browser closed"));
/// assert_eq!(calls, 4);
/// ```
///
/// # Panics
///
/// As [`run_rounds`].
pub fn try_run_rounds<const K: usize, E>(
    contenders: usize,
    plan: &Plan,
    higher_is_better: bool,
    tracked: &[(usize, usize)],
    mut measure: impl FnMut(usize) -> Result<[f64; K], E>,
) -> Result<Rounds<K>, E> {
    assert!(contenders > 0, "nothing to measure");
    assert!(plan.max_rounds > 0, "a plan of no rounds");
    assert!(
        tracked
            .iter()
            .all(|&(a, b)| a < contenders && b < contenders),
        "a tracked pair names a contender that does not exist"
    );
    let started = Instant::now();
    let mut rounds = Rounds {
        samples: vec![Vec::new(); contenders],
        higher_is_better,
        stop: Stop::MaxRounds,
        elapsed: Duration::ZERO,
    };
    let mut next_look = plan.min_rounds.max(1);
    let mut narrow_before = false;
    for round in 0.. {
        let mut results = vec![[0.0; K]; contenders];
        for i in order(contenders, round) {
            results[i] = measure(i)?;
        }
        for (samples, result) in rounds.samples.iter_mut().zip(results) {
            samples.push(result);
        }
        let count = round + 1;
        let mut confirmed = false;
        if count >= next_look {
            let narrow = rounds.widest(tracked) <= plan.aim;
            confirmed = narrow && narrow_before;
            narrow_before = narrow;
            let growth = if narrow { CONFIRM_GROWTH } else { LOOK_GROWTH };
            next_look = (count + 1).max((count as f64 * growth).ceil() as usize);
        }
        if let Some(stop) = plan.stop(count, started.elapsed(), confirmed) {
            rounds.stop = stop;
            break;
        }
    }
    rounds.elapsed = started.elapsed();
    Ok(rounds)
}

impl<const K: usize> Rounds<K> {
    /// How many rounds ran.
    pub fn count(&self) -> usize {
        self.samples[0].len()
    }

    /// Why they stopped.
    pub fn stop(&self) -> Stop {
        self.stop
    }

    /// How long they took.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// Contender `i`'s values of metric `k`, one per round.
    pub fn values(&self, i: usize, k: usize) -> Vec<f64> {
        self.samples[i].iter().map(|s| s[k]).collect()
    }

    /// The per-round advantage (see [`advantage`]) of contender `ours` over `theirs` in
    /// metric `k`.
    pub fn ratios(&self, ours: usize, theirs: usize, k: usize) -> Vec<f64> {
        self.samples[ours]
            .iter()
            .zip(&self.samples[theirs])
            .map(|(a, b)| advantage(a[k], b[k], self.higher_is_better))
            .collect()
    }

    /// The median per-round advantage of `ours` over `theirs` in metric `k`, with its interval.
    pub fn ratio(&self, ours: usize, theirs: usize, k: usize) -> Estimate {
        Estimate::bootstrap(&self.ratios(ours, theirs, k))
    }

    /// Contender `i`'s median of metric `k`, with its interval.
    pub fn value(&self, i: usize, k: usize) -> Estimate {
        Estimate::bootstrap(&self.values(i, k))
    }

    /// The widest reach of the tracked pairs' intervals, over every metric (0 if none).
    fn widest(&self, tracked: &[(usize, usize)]) -> f64 {
        tracked
            .iter()
            .flat_map(|&(a, b)| (0..K).map(move |k| self.ratio(a, b, k).relative_reach()))
            .fold(0.0, f64::max)
    }
}

/// A target on a ratio (an advantage: above 1 is better for foreman).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    /// The ratio must be at least this.
    pub at_least: f64,
    /// A lower bound at or above this, but below `at_least`, counts as parity.
    pub parity: Option<f64>,
}

/// What an interval says about a [`Target`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The interval's lower bound clears the target.
    Met,
    /// The lower bound clears the parity threshold, not the target.
    Parity,
    /// The interval's upper bound is below the target (and the lower one below parity).
    Missed,
    /// The interval straddles the target.
    CannotTell,
}

impl Verdict {
    /// A word for reports: `met`, `parity`, `missed`, `cannot tell`.
    ///
    /// ```
    /// assert_eq!(bench_stats::Verdict::CannotTell.describe(), "cannot tell");
    /// ```
    pub fn describe(self) -> &'static str {
        match self {
            Verdict::Met => "met",
            Verdict::Parity => "parity",
            Verdict::Missed => "missed",
            Verdict::CannotTell => "cannot tell",
        }
    }
}

impl Target {
    /// Judges a ratio's interval.
    ///
    /// ```
    /// use bench_stats::{Estimate, Target, Verdict};
    ///
    /// let target = Target { at_least: 1.0, parity: Some(0.95) };
    /// let judge = |low, high| target.judge(&Estimate { median: (low + high) / 2.0, low, high });
    /// assert_eq!(judge(1.02, 1.30), Verdict::Met);
    /// assert_eq!(judge(0.97, 1.10), Verdict::Parity);
    /// assert_eq!(judge(0.80, 0.99), Verdict::Missed);
    /// assert_eq!(judge(0.80, 1.20), Verdict::CannotTell);
    /// ```
    pub fn judge(&self, ratio: &Estimate) -> Verdict {
        if ratio.low >= self.at_least {
            Verdict::Met
        } else if self.parity.is_some_and(|parity| ratio.low >= parity) {
            Verdict::Parity
        } else if ratio.high < self.at_least {
            Verdict::Missed
        } else {
            Verdict::CannotTell
        }
    }

    /// Of several comparisons that must all meet the target (foreman against each peer, for
    /// "not below the fastest peer"), the one that decides the combined verdict: a missed one
    /// with the lowest upper bound if any is missed, else the one with the lowest lower bound.
    /// Its own verdict is the combined one. `None` if there are none.
    ///
    /// ```
    /// use bench_stats::{Estimate, Target, Verdict};
    ///
    /// let target = Target { at_least: 1.0, parity: None };
    /// let peers = [
    ///     Estimate { median: 1.2, low: 1.1, high: 1.3 },  // met
    ///     Estimate { median: 1.1, low: 0.9, high: 1.4 },  // cannot tell: decides
    /// ];
    /// let i = target.decisive(&peers).unwrap();
    /// assert_eq!((i, target.judge(&peers[i])), (1, Verdict::CannotTell));
    /// ```
    pub fn decisive(&self, ratios: &[Estimate]) -> Option<usize> {
        let missed = (0..ratios.len())
            .filter(|&i| self.judge(&ratios[i]) == Verdict::Missed)
            .min_by(|&a, &b| ratios[a].high.total_cmp(&ratios[b].high));
        missed
            .or_else(|| (0..ratios.len()).min_by(|&a, &b| ratios[a].low.total_cmp(&ratios[b].low)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_unsorted_samples() {
        assert_eq!(median(&[5.0]), 5.0);
        assert_eq!(median(&[9.0, 1.0, 5.0]), 5.0);
        assert_eq!(median(&[9.0, 1.0, 5.0, 3.0]), 4.0);
        assert_eq!(median(&[2.0, 2.0, 2.0, 7.0]), 2.0);
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        let sorted: Vec<f64> = (1..=2000).map(f64::from).collect();
        assert_eq!(quantile(&sorted, 0.025), 50.0);
        assert_eq!(quantile(&sorted, 0.975), 1950.0);
        assert_eq!(quantile(&sorted, 1.0), 2000.0);
        assert_eq!(quantile(&[7.0], 0.5), 7.0);
    }

    #[test]
    fn bootstrap_of_identical_samples_is_exact() {
        let e = Estimate::bootstrap(&[3.5; 20]);
        assert_eq!(e, Estimate::exact(3.5));
        assert_eq!(e.relative_reach(), 0.0);
        assert_eq!(Estimate::bootstrap(&[8.0]), Estimate::exact(8.0));
    }

    #[test]
    fn bootstrap_interval_of_known_data_brackets_the_median_like_order_statistics() {
        // 1..=101: the median is 51. The distribution-free 95% interval for a median of 101
        // samples runs between order statistics 41 and 61 (51 ± 1.96·√101/2 ≈ 51 ± 9.8); a
        // percentile bootstrap lands close to that.
        let samples: Vec<f64> = (1..=101).rev().map(f64::from).collect();
        let e = Estimate::bootstrap(&samples);
        assert_eq!(e.median, 51.0);
        assert!((39.0..=45.0).contains(&e.low), "{e:?}");
        assert!((57.0..=63.0).contains(&e.high), "{e:?}");
        // The same samples give the same interval (seeded), in any order.
        let mut shuffled = samples.clone();
        shuffled.sort_by(f64::total_cmp);
        let again = Estimate::bootstrap(&shuffled);
        assert_eq!(again.median, e.median);
        assert!((again.low - e.low).abs() <= 2.0 && (again.high - e.high).abs() <= 2.0);
        assert_eq!(Estimate::bootstrap(&samples), e);
    }

    #[test]
    fn bootstrap_interval_narrows_with_more_samples() {
        let mut rng = fastrand::Rng::with_seed(7);
        let draw = |rng: &mut fastrand::Rng, n: usize| -> Vec<f64> {
            (0..n).map(|_| 1.0 + rng.f64()).collect()
        };
        let small = Estimate::bootstrap(&draw(&mut rng, 20));
        let large = Estimate::bootstrap(&draw(&mut rng, 500));
        assert!(
            large.relative_reach() < small.relative_reach() / 2.0,
            "{small:?} {large:?}"
        );
    }

    #[test]
    fn bootstrap_intervals_cover_the_true_median_about_95_percent_of_the_time() {
        // Samples from a skewed distribution (exp(normal), i.e. log-normal, median 1): the
        // interval of each batch of 41 should contain 1 in about 95% of batches. A bootstrap
        // that resampled wrongly (too narrow, off-centre) fails this.
        let mut rng = fastrand::Rng::with_seed(2024);
        let normal = |rng: &mut fastrand::Rng| {
            // Box–Muller.
            let (u, v) = (1.0 - rng.f64(), rng.f64());
            (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        };
        let trials = 300;
        let covered = (0..trials)
            .filter(|&trial| {
                let samples: Vec<f64> = (0..41).map(|_| (0.5 * normal(&mut rng)).exp()).collect();
                let e = Estimate::bootstrap_seeded(&samples, trial);
                e.low <= 1.0 && 1.0 <= e.high
            })
            .count();
        let rate = covered as f64 / trials as f64;
        assert!((0.89..=0.99).contains(&rate), "coverage {rate}");
    }

    #[test]
    #[should_panic(expected = "not finite")]
    fn bootstrap_refuses_non_finite_samples() {
        Estimate::bootstrap(&[1.0, f64::NAN]);
    }

    #[test]
    fn verdicts_by_the_interval_bounds() {
        let strict = Target {
            at_least: 1.0,
            parity: None,
        };
        let with_parity = Target {
            at_least: 1.0,
            parity: Some(0.95),
        };
        let e = |low: f64, high: f64| Estimate {
            median: (low + high) / 2.0,
            low,
            high,
        };
        for (low, high, without, with) in [
            (1.00, 1.20, Verdict::Met, Verdict::Met),
            (1.05, 1.06, Verdict::Met, Verdict::Met),
            (0.99, 1.30, Verdict::CannotTell, Verdict::Parity),
            (0.95, 0.99, Verdict::Missed, Verdict::Parity),
            (0.94, 0.99, Verdict::Missed, Verdict::Missed),
            (0.50, 1.00, Verdict::CannotTell, Verdict::CannotTell),
            (0.50, 0.999, Verdict::Missed, Verdict::Missed),
        ] {
            assert_eq!(strict.judge(&e(low, high)), without, "[{low}, {high}]");
            assert_eq!(
                with_parity.judge(&e(low, high)),
                with,
                "[{low}, {high}] parity"
            );
        }
        // An exact value: met at the target, missed below it, never "cannot tell".
        assert_eq!(strict.judge(&Estimate::exact(1.0)), Verdict::Met);
        assert_eq!(strict.judge(&Estimate::exact(0.98)), Verdict::Missed);
    }

    #[test]
    fn the_decisive_comparison_gives_the_combined_verdict() {
        let target = Target {
            at_least: 1.0,
            parity: Some(0.95),
        };
        let e = |low: f64, high: f64| Estimate {
            median: (low + high) / 2.0,
            low,
            high,
        };
        let combined = |ratios: &[Estimate]| {
            let verdicts: Vec<Verdict> = ratios.iter().map(|r| target.judge(r)).collect();
            if verdicts.contains(&Verdict::Missed) {
                Verdict::Missed
            } else if verdicts.contains(&Verdict::CannotTell) {
                Verdict::CannotTell
            } else if verdicts.contains(&Verdict::Parity) {
                Verdict::Parity
            } else {
                Verdict::Met
            }
        };
        let cases: [&[Estimate]; 6] = [
            &[e(1.1, 1.3), e(1.05, 1.5)],
            &[e(1.1, 1.3), e(0.96, 1.5)],
            &[e(0.97, 1.3), e(0.9, 1.5)],
            &[e(1.1, 1.3), e(0.5, 0.9), e(0.6, 0.8)],
            &[e(0.2, 3.0), e(0.9, 0.99)],
            &[e(1.2, 1.4)],
        ];
        for ratios in cases {
            let i = target.decisive(ratios).unwrap();
            assert_eq!(target.judge(&ratios[i]), combined(ratios), "{ratios:?}");
        }
        assert_eq!(target.decisive(cases[3]), Some(2), "the lowest upper bound");
        assert_eq!(target.decisive(&[]), None);
    }

    fn plan(min_rounds: usize, max_rounds: usize) -> Plan {
        Plan {
            min_rounds,
            max_rounds,
            budget: Duration::from_secs(3600),
            aim: 0.10,
        }
    }

    #[test]
    fn rounds_rotate_the_order_and_pair_the_measurements() {
        let mut firsts = vec![0; 3];
        let mut calls = 0;
        let rounds = run_rounds(3, &plan(6, 6), true, &[], |i| {
            if calls % 3 == 0 {
                firsts[i] += 1;
            }
            // Contender i measures (i + 1) × the round's "load".
            let load = 1 + calls / 3;
            calls += 1;
            [((i + 1) * load) as f64]
        });
        assert_eq!(rounds.count(), 6);
        assert_eq!(firsts, [2, 2, 2], "each contender goes first equally often");
        // Paired within rounds, the load cancels: 3 / 1 exactly, every round.
        assert!(rounds.ratios(2, 0, 0).iter().all(|&r| r == 3.0));
        assert_eq!(rounds.ratio(2, 0, 0), Estimate::exact(3.0));
        assert_eq!(rounds.values(0, 0).len(), 6);
    }

    #[test]
    fn noiseless_ratios_stop_at_the_minimum() {
        // Narrow at the first look (10 rounds), confirmed at the second (15).
        let rounds = run_rounds(2, &plan(10, 500), true, &[(0, 1)], |i| [[4.0, 2.0][i]]);
        assert_eq!((rounds.count(), rounds.stop()), (15, Stop::Narrow));
        assert_eq!(rounds.ratio(0, 1, 0), Estimate::exact(2.0));
    }

    #[test]
    fn noisy_ratios_take_more_rounds_until_narrow() {
        // Per-round ratio 2 × e^(±0.5 uniform): too wide at 10 rounds, narrow well before 500.
        let mut rng = fastrand::Rng::with_seed(11);
        let rounds = run_rounds(2, &plan(10, 500), true, &[(0, 1)], |i| {
            [if i == 0 {
                2.0 * (rng.f64() - 0.5).exp()
            } else {
                1.0
            }]
        });
        assert_eq!(rounds.stop(), Stop::Narrow);
        assert!(
            rounds.count() > 10 && rounds.count() < 500,
            "{}",
            rounds.count()
        );
        let ratio = rounds.ratio(0, 1, 0);
        assert!(ratio.relative_reach() <= 0.10, "{ratio:?}");
        assert!(
            ratio.low < 2.0 && 2.0 < ratio.high,
            "{ratio:?} after {}",
            rounds.count()
        );
    }

    #[test]
    fn intervals_after_the_stopping_rule_still_cover_the_true_ratio() {
        // The rule stops on narrow intervals, which favours lucky ones; its confirming look
        // keeps the coverage near the nominal 95% (see `run_rounds`).
        let trials = 200;
        let covered = (0..trials)
            .filter(|&trial| {
                let mut rng = fastrand::Rng::with_seed(trial);
                let rounds = run_rounds(2, &plan(10, 5000), true, &[(0, 1)], |i| {
                    [if i == 0 {
                        2.0 * (rng.f64() - 0.5).exp()
                    } else {
                        1.0
                    }]
                });
                let ratio = rounds.ratio(0, 1, 0);
                rounds.stop() == Stop::Narrow && ratio.low <= 2.0 && 2.0 <= ratio.high
            })
            .count();
        let rate = covered as f64 / trials as f64;
        assert!(rate >= 0.87, "coverage {rate}");
    }

    #[test]
    fn hopeless_noise_stops_at_the_round_cap_and_untracked_pairs_do_not_count() {
        let mut rng = fastrand::Rng::with_seed(12);
        let mut wild = |i: usize| [if i == 0 { 20.0 * rng.f64() + 0.01 } else { 1.0 }];
        let capped = run_rounds(3, &plan(5, 40), true, &[(0, 1)], &mut wild);
        assert_eq!((capped.count(), capped.stop()), (40, Stop::MaxRounds));
        // Contender 0 is wild, but only (1, 2) is tracked, and that ratio is exact.
        let calm = run_rounds(3, &plan(5, 40), true, &[(1, 2)], &mut wild);
        assert_eq!((calm.count(), calm.stop()), (8, Stop::Narrow));
    }

    #[test]
    fn the_time_budget_stops_the_rounds() {
        let budget = Plan {
            budget: Duration::from_millis(30),
            ..plan(3, 1_000_000)
        };
        let mut rng = fastrand::Rng::with_seed(13);
        let rounds = run_rounds(2, &budget, true, &[(0, 1)], |i| {
            std::thread::sleep(Duration::from_millis(1));
            [if i == 0 { 10.0 * rng.f64() + 0.01 } else { 1.0 }]
        });
        assert_eq!(rounds.stop(), Stop::Budget);
        assert!(rounds.elapsed() >= Duration::from_millis(30));
        assert!(
            rounds.count() >= 3 && rounds.count() < 30,
            "{}",
            rounds.count()
        );
    }

    #[test]
    fn lower_is_better_inverts_the_ratio_and_every_metric_is_tracked() {
        // Metric 0 (latency-like) is steady; metric 1 is noisy: the rounds go on for it.
        let mut rng = fastrand::Rng::with_seed(14);
        let rounds = run_rounds(2, &plan(8, 30), false, &[(0, 1)], |i| {
            if i == 0 {
                [50.0, 100.0 * (2.0 * rng.f64()).exp()]
            } else {
                [100.0, 100.0]
            }
        });
        assert_eq!(rounds.ratio(0, 1, 0), Estimate::exact(2.0));
        assert_eq!(rounds.stop(), Stop::MaxRounds);
    }
}
