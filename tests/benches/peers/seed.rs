//! The seed suite: the Python `multiprocessing` program (`tests/seed/seed.py`) and the same
//! design on foreman, 20k tasks on 2 workers, in paired rounds (see `stats.rs`); tasks per
//! second. Information: no target applies.
//!
//! The foreman twin does what the Python does: start the workers, submit every task, each
//! result (`worker_id * 2`) goes to a result queue (an `mpsc` channel fed by the sink), shut
//! down once everything ran (`drain`, which also joins the threads), collect and check every
//! result. Both clocks run from before the workers start until the results are collected
//! and the workers joined (the Python interpreter's own start-up is not counted).
//!
//! A second twin, `foreman-results-in-place`, does the same except that each worker checks
//! and counts its results where they are produced instead of sending them to the main
//! thread: the difference between the two is what the result queue costs.
//!
//! The like-for-like twin, `foreman-processes` (Linux), runs the seed's design on foreman's
//! process host: 2 worker *processes*, as the Python has, each a fresh `exec` of this binary,
//! tasks and results crossing through shared memory; its clock, too, runs from before the
//! worker processes start until every result is collected and every worker reaped.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;

use crossbeam_utils::CachePadded;

use foreman_rt::host::{threads::Pool, Event};
use foreman_rt::policy::Policy;

use crate::report::{Options, Records};
use crate::stats::{paired, plan, Scenario};

const TASKS: u32 = 20_000;
const WORKERS: usize = 2;
/// The twin's queue. The Python's `JoinableQueue` is unbounded; a queue that holds all 20k
/// tasks (32k) measured no faster here than this one, whose submitter sleeps until the
/// workers have taken half of it: setting up the larger queue costs what waiting saves.
const CAPACITY: usize = 1024;
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/seed/seed.py");

/// One run of the Python seed: its own timing, in seconds.
fn python() -> Result<f64, String> {
    let output = Command::new("python3")
        .arg(SCRIPT)
        .args(["--tasks", &TASKS.to_string()])
        .args(["--workers", &WORKERS.to_string()])
        .arg("--bench")
        .output()
        .map_err(|err| format!("cannot run python3: {err}"))?;
    if !output.status.success() {
        return Err(format!(
            "{SCRIPT} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let line = String::from_utf8_lossy(&output.stdout);
    let report: serde_json::Value = serde_json::from_str(line.trim())
        .map_err(|err| format!("{SCRIPT} printed {line:?}: {err}"))?;
    report["seconds"]
        .as_f64()
        .ok_or_else(|| format!("{SCRIPT} printed no seconds: {line:?}"))
}

/// One run of the foreman twin, in seconds.
fn foreman_with_result_queue() -> f64 {
    let start = Instant::now();
    let (results, collected) = mpsc::channel();
    let pool = Pool::<u32, usize, String, CAPACITY, WORKERS>::start(
        Policy::DEFAULT,
        |ctx, _task| Ok(ctx.worker() * 2),
        move |event| {
            let result = match event {
                Event::Completed { worker, output, .. } => (worker, Ok(output)),
                Event::Failed { worker, error, .. } => (worker, Err(error)),
                other => panic!("unexpected event {other:?}"),
            };
            results.send(result).expect("the collector is alive");
        },
    )
    .expect("cannot start the worker threads");
    for task in 0..TASKS {
        pool.submit(task).expect("the pool is running");
    }
    let report = pool.drain(); // drops the pool and with it the sink's sender
    let mut count = 0;
    for (worker, result) in collected {
        assert_eq!(result, Ok(worker * 2));
        count += 1;
    }
    let seconds = start.elapsed().as_secs_f64();
    assert_eq!(count, TASKS);
    assert!(report.handed_back.is_empty());
    seconds
}

/// The seed's task in a worker process: the result is twice the worker's id.
#[cfg(target_os = "linux")]
pub static SEED: foreman_rt::host::processes::Handler<u32, usize, ()> =
    foreman_rt::host::processes::Handler::new("bench-seed", |ctx, _task| Ok(ctx.worker() * 2));

/// One run of the twin on worker processes, in seconds.
#[cfg(target_os = "linux")]
fn foreman_processes() -> f64 {
    use foreman_rt::host::processes;
    let start = Instant::now();
    let (results, collected) = mpsc::channel();
    let pool = processes::Pool::<u32, usize, (), CAPACITY, WORKERS>::start(
        Policy::DEFAULT,
        &SEED,
        move |event| {
            let result = match event {
                Event::Completed { worker, output, .. } => (worker, Ok(output)),
                Event::Failed { worker, error, .. } => (worker, Err(error)),
                other => panic!("unexpected event {other:?}"),
            };
            results.send(result).expect("the collector is alive");
        },
    )
    .expect("cannot start the worker processes");
    for task in 0..TASKS {
        pool.submit(task).expect("the pool is running");
    }
    let report = pool.drain(); // every worker process ended and reaped; the sink dropped
    let mut count = 0;
    for (worker, result) in collected {
        assert_eq!(result, Ok(worker * 2));
        count += 1;
    }
    let seconds = start.elapsed().as_secs_f64();
    assert_eq!(count, TASKS);
    assert!(report.handed_back.is_empty());
    seconds
}

/// One run of the twin whose workers check and count their own results, in seconds.
fn foreman_results_in_place() -> f64 {
    let start = Instant::now();
    // One counter per worker, each on its own cache line: the workers never share one.
    let counts: Arc<[CachePadded<AtomicU32>; WORKERS]> = Arc::default();
    let sink_counts = Arc::clone(&counts);
    let pool = Pool::<u32, usize, String, CAPACITY, WORKERS>::start(
        Policy::DEFAULT,
        |ctx, _task| Ok(ctx.worker() * 2),
        move |event| match event {
            Event::Completed { worker, output, .. } => {
                assert_eq!(output, worker * 2);
                // Relaxed: only this worker writes its counter; `drain` joins the worker
                // threads, which orders every increment before the reads below.
                sink_counts[worker].fetch_add(1, Ordering::Relaxed);
            }
            other => panic!("unexpected event {other:?}"),
        },
    )
    .expect("cannot start the worker threads");
    for task in 0..TASKS {
        pool.submit(task).expect("the pool is running");
    }
    let report = pool.drain();
    let count: u32 = counts.iter().map(|c| c.load(Ordering::Relaxed)).sum();
    let seconds = start.elapsed().as_secs_f64();
    assert_eq!(count, TASKS);
    assert!(report.handed_back.is_empty());
    seconds
}

pub fn run(options: &Options, records: &mut Records) {
    // One run first: without Python there is nothing to compare with.
    if let Err(err) = python() {
        eprintln!("seed suite skipped: {err}");
        return;
    }
    let scenario = Scenario {
        groups: [format!("seed/{}k-tasks/{WORKERS}w", TASKS / 1000)],
        metrics: ["tasks_per_s"],
        higher_is_better: true,
        threads: WORKERS + 1,
    };
    let mut names = vec![
        "python-multiprocessing",
        "foreman",
        "foreman-results-in-place",
    ];
    if cfg!(target_os = "linux") {
        names.push("foreman-processes");
    }
    paired(records, &plan(options, 30), &scenario, &names, |i| {
        let seconds = match i {
            0 => python().unwrap_or_else(|err| panic!("the Python seed failed: {err}")),
            1 => foreman_with_result_queue(),
            2 => foreman_results_in_place(),
            #[cfg(target_os = "linux")]
            3 => foreman_processes(),
            _ => unreachable!("{} contenders", names.len()),
        };
        [f64::from(TASKS) / seconds]
    });
}
