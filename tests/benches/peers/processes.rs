//! Processes suite (Linux): what a task costs on a worker process against a worker thread.
//! The same no-op tasks (a `u64` in, the same `u64` out, each outcome sent to a sink that
//! counts it) through foreman's thread host (`foreman`) and its process host
//! (`foreman-processes`), 1 and 2 workers, a 1024-task queue, in paired rounds (see
//! `stats.rs`); tasks per second from the first submission until the pool has drained (the
//! workers' start is not counted: a pool starts once and serves many tasks; the `seed` suite
//! counts it). Information: no target applies.
//!
//! A thread worker takes its task from the queue and runs it in place; a process worker's task
//! is handed to it through shared memory by its keeper thread in the parent, and the answer
//! comes back the same way, with a futex wake-up each way when the other side sleeps.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use foreman_rt::host::processes::Handler;
use foreman_rt::host::{processes, threads, Event};
use foreman_rt::policy::Policy;

use crate::report::{Options, Records};
use crate::stats::{paired, plan, Scenario};

const CAPACITY: usize = 1024;

/// The no-op task in a worker process.
pub static ECHO: Handler<u64, u64, ()> = Handler::new("bench-echo", |_ctx, n| Ok(*n));

/// The events of the pools here: the crash cause is the hosts' `String`.
type EchoEvent = Event<u64, u64, (), String>;

/// A sink that checks and counts completed tasks, and the count.
fn counting_sink() -> (Arc<AtomicU64>, impl Fn(EchoEvent) + Send + Sync + 'static) {
    let count = Arc::new(AtomicU64::new(0));
    let sink_count = Arc::clone(&count);
    let sink = move |event| match event {
        Event::Completed { task, output, .. } => {
            assert_eq!(task, output);
            // Relaxed: read after `drain`, which joins every thread that counts.
            sink_count.fetch_add(1, Ordering::Relaxed);
        }
        other => panic!("unexpected event {other:?}"),
    };
    (count, sink)
}

/// Tasks per second of `tasks` no-op tasks on `W` worker threads.
fn on_threads<const W: usize>(tasks: u64) -> f64 {
    let (count, sink) = counting_sink();
    let pool =
        threads::Pool::<u64, u64, (), CAPACITY, W>::start(Policy::DEFAULT, |_ctx, n| Ok(*n), sink)
            .expect("cannot start the worker threads");
    let start = Instant::now();
    for task in 0..tasks {
        pool.submit(task).expect("the pool is running");
    }
    pool.drain();
    let seconds = start.elapsed().as_secs_f64();
    assert_eq!(count.load(Ordering::Relaxed), tasks);
    tasks as f64 / seconds
}

/// Tasks per second of `tasks` no-op tasks on `W` worker processes.
fn on_processes<const W: usize>(tasks: u64) -> f64 {
    let (count, sink) = counting_sink();
    let pool = processes::Pool::<u64, u64, (), CAPACITY, W>::start(Policy::DEFAULT, &ECHO, sink)
        .expect("cannot start the worker processes");
    let start = Instant::now();
    for task in 0..tasks {
        pool.submit(task).expect("the pool is running");
    }
    pool.drain();
    let seconds = start.elapsed().as_secs_f64();
    assert_eq!(count.load(Ordering::Relaxed), tasks);
    tasks as f64 / seconds
}

/// One host's run: tasks per second of that many tasks.
type Run = fn(u64) -> f64;

pub fn run(options: &Options, records: &mut Records) {
    let tasks = options.pick(10_000, 50_000);
    let widths: [(usize, [Run; 2]); 2] = [
        (1, [on_threads::<1>, on_processes::<1>]),
        (2, [on_threads::<2>, on_processes::<2>]),
    ];
    for (workers, hosts) in widths {
        let scenario = Scenario {
            groups: [format!("processes/noop/{workers}w")],
            metrics: ["tasks_per_s"],
            higher_is_better: true,
            // The submitter, and per worker a process and (for the process host) its keeper
            // thread in the parent.
            threads: 2 * workers + 1,
        };
        let names = ["foreman", "foreman-processes"];
        paired(records, &plan(options, 15), &scenario, &names, |i| {
            [hosts[i](tasks)]
        });
    }
}
