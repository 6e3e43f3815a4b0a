//! Dispatch suite: 1M no-op tasks and 100k small (about 1 µs) tasks on 1, 2 and 4 workers,
//! through foreman's thread host and each peer (see `support/pools.rs`); tasks per second.

use std::time::{Duration, Instant};

use crate::pools::{Impl, Work};
use crate::report::{Options, Records};
use crate::stats::{interleave, record_median};

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

/// The tasks of the no-op workload (the `rss` suite runs as many).
pub fn noop_tasks(options: &Options) -> u64 {
    options.pick(200_000, 1_000_000)
}

pub fn run(options: &Options, records: &mut Records, small_task: Duration) {
    let small = calibrate(small_task);
    let ns = 1e9 * seconds_per_task(small);
    records.push("dispatch/small/task", "xorshift", "task_ns", ns, false);
    let rounds = options.pick(3, 15);
    let workloads = [
        ("noop", Work::NOOP, noop_tasks(options)),
        ("small", small, options.pick(30_000, 100_000)),
    ];
    for (workload, work, tasks) in workloads {
        for workers in [1, 2, 4] {
            let group = format!("dispatch/{workload}/{workers}w");
            let samples = interleave(Impl::ALL.len(), rounds, |i| {
                let elapsed = Impl::ALL[i].run(workers, tasks, work);
                tasks as f64 / elapsed.as_secs_f64()
            });
            for (imp, samples) in Impl::ALL.iter().zip(&samples) {
                record_median(records, &group, imp.name(), "tasks_per_s", samples);
            }
        }
    }
}
