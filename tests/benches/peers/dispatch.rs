//! Dispatch suite: batches of no-op tasks and of small (about 1 µs) tasks on 1, 2 and 4
//! workers, through foreman's thread host and each peer (see `support/pools.rs`), in paired
//! rounds (see `stats.rs`); tasks per second. A run has `workers + 1` threads at once: the
//! workers and the submitter.
//!
//! And what a result handle costs: `dispatch/handle/1w`, no-op tasks on one worker through
//! the sink path (`foreman`) and with a handle each (`foreman-handle`,
//! `support/handles.rs`), in paired rounds.

use std::time::{Duration, Instant};

use crate::handles::foreman_handles;
use crate::pools::{Impl, Work};
use crate::report::{Options, Records};
use crate::stats::{paired, plan, Scenario};

/// The median time one thread takes to run `work`, in seconds.
fn seconds_per_task(work: Work) -> f64 {
    let runs = 2_000u64;
    let mut timings: Vec<f64> = (0..9)
        .map(|_| {
            let start = Instant::now();
            for seed in 0..runs {
                work.run(seed);
            }
            start.elapsed().as_secs_f64() / runs as f64
        })
        .collect();
    timings.sort_by(f64::total_cmp);
    timings[timings.len() / 2]
}

/// The task that takes about `target` on one thread here.
fn calibrate(target: Duration) -> Work {
    let probe = Work { iters: 1000 };
    let per_iter = seconds_per_task(probe) / f64::from(probe.iters);
    Work {
        iters: (target.as_secs_f64() / per_iter).round().max(1.0) as u32,
    }
}

pub fn run(options: &Options, records: &mut Records, small_task: Duration) {
    let small = calibrate(small_task);
    let ns = 1e9 * seconds_per_task(small);
    records.push("dispatch/small/task", "xorshift", "task_ns", ns, false);
    // (name, task, tasks per run, seconds of rounds per scenario)
    let workloads = [
        ("noop", Work::NOOP, options.pick(50_000, 200_000), 45),
        ("small", small, options.pick(10_000, 30_000), 25),
    ];
    let names = Impl::ALL.map(Impl::name);
    for (workload, work, tasks, seconds) in workloads {
        for workers in [1, 2, 4] {
            let scenario = Scenario {
                groups: [format!("dispatch/{workload}/{workers}w")],
                metrics: ["tasks_per_s"],
                higher_is_better: true,
                threads: workers + 1,
            };
            paired(records, &plan(options, seconds), &scenario, &names, |i| {
                let elapsed = Impl::ALL[i].run(workers, tasks, work);
                [tasks as f64 / elapsed.as_secs_f64()]
            });
        }
    }
    handles(options, records);
}

/// The sink path against the handle path: no-op tasks on one worker.
fn handles(options: &Options, records: &mut Records) {
    let tasks = options.pick(50_000, 200_000);
    let scenario = Scenario {
        groups: ["dispatch/handle/1w".to_string()],
        metrics: ["tasks_per_s"],
        higher_is_better: true,
        threads: 2,
    };
    let names = [Impl::Foreman.name(), "foreman-handle"];
    paired(records, &plan(options, 30), &scenario, &names, |i| {
        let elapsed = match i {
            0 => Impl::Foreman.run(1, tasks, Work::NOOP),
            _ => foreman_handles::<1, _>(tasks, move |task| Work::NOOP.run(task), || {}),
        };
        [tasks as f64 / elapsed.as_secs_f64()]
    });
}
