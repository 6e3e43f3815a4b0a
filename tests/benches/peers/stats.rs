//! Paired rounds (the `bench-stats` crate) and the records they become.

use bench_stats::{run_rounds, Estimate, Plan, Rounds};

use crate::report::{Options, Record, Records};

/// The implementation the targets are about.
pub const FOREMAN: &str = "foreman";

/// How many paired rounds a scenario gets (see `bench_stats::run_rounds`): until every
/// interval of foreman's ratio over another contender is within ±10% of its median
/// (confirmed), at most
/// 1000 rounds, and no new round after `seconds`; at least 10. In quick mode 3 to 5 rounds
/// within a second: enough to run every path, too few to decide anything.
pub fn plan(options: &Options, seconds: u64) -> Plan {
    Plan {
        min_rounds: options.pick(3, 10),
        max_rounds: options.pick(5, 1000),
        budget: std::time::Duration::from_secs(options.pick(1, seconds)),
        aim: 0.10,
    }
}

/// A scenario measured in paired rounds: `K` metrics per measurement, metric `k` recorded in
/// group `groups[k]`.
pub struct Scenario<const K: usize> {
    pub groups: [String; K],
    pub metrics: [&'static str; K],
    pub higher_is_better: bool,
    /// Threads running at once (producers and consumers, or workers and the submitter).
    pub threads: usize,
}

/// Runs paired rounds of the contenders `names` (`measure(i)` measures `names[i]` once) with
/// `plan`, tracking foreman's ratio over every other contender (peers, and foreman's own
/// variants). Records, for every metric, each contender's median with its interval, and
/// foreman's median ratio over each other contender with its interval. Returns the rounds,
/// for records of its own.
pub fn paired<const K: usize>(
    records: &mut Records,
    plan: &Plan,
    scenario: &Scenario<K>,
    names: &[&str],
    measure: impl FnMut(usize) -> [f64; K],
) -> Rounds<K> {
    let foreman = names
        .iter()
        .position(|&name| name == FOREMAN)
        .expect("foreman is among the contenders");
    let others: Vec<usize> = (0..names.len()).filter(|&i| i != foreman).collect();
    let tracked: Vec<(usize, usize)> = others.iter().map(|&p| (foreman, p)).collect();
    let rounds = run_rounds(
        names.len(),
        plan,
        scenario.higher_is_better,
        &tracked,
        measure,
    );
    let record = |group: &str, name: &str, metric: &str, estimate: Estimate| {
        let mut record = Record::new(group, name, metric, estimate.median, true);
        record.interval = Some([estimate.low, estimate.high]);
        record.rounds = Some(rounds.count());
        record.stop = Some(rounds.stop().describe());
        record.threads = Some(scenario.threads);
        record
    };
    for (k, (group, metric)) in scenario.groups.iter().zip(scenario.metrics).enumerate() {
        for (i, name) in names.iter().enumerate() {
            let mut value = record(group, name, metric, rounds.value(i, k));
            value.higher_is_better = scenario.higher_is_better;
            records.add(value);
        }
        for &p in &others {
            let mut ratio = record(
                group,
                FOREMAN,
                &format!("ratio:{metric}"),
                rounds.ratio(foreman, p, k),
            );
            ratio.versus = Some(names[p].to_string());
            records.add(ratio);
        }
    }
    rounds
}
