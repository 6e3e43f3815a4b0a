//! Memory: heap allocations per task (suite `allocs`), and `size_of` the supervisor
//! (suite `size-of`) (`cargo xtask bench`,
//! `cargo bench -p foreman-tests --bench memory -- [--quick] [--out FILE]`).
//!
//! A counting global allocator (its own binary, so that it never slows the timed suites)
//! counts every allocation:
//! - `foreman-core`: the core's own path (`foreman_tests::core_path_allocations`) — a
//!   `Supervisor<u64, 1024, 2, ThreadPark>` in a `Box`, two threads doing `attach` →
//!   `next_blocking` → `complete`, the main thread doing `submit` (parking while the queue is
//!   full). Counted from the first `submit` of the measured tasks until the last one completed,
//!   with the worker threads running and warm.
//! - every dispatch implementation of the `peers` benchmark (no-op tasks, 2 workers), as the
//!   slope between two batch sizes, which cancels what starting and stopping a pool costs.

use std::mem::size_of;
use std::process::ExitCode;

use clap::Parser;
use foreman_rt::host::threads::ThreadPark;
use foreman_rt::park::NoPark;
use foreman_rt::policy::Policy;
use foreman_rt::queue::Queue;
use foreman_rt::Supervisor;
use foreman_tests::{allocations_during, core_path_allocations, Counting};

#[path = "support/pools.rs"]
mod pools;
#[path = "support/report.rs"]
mod report;

use pools::{Impl, Work};
use report::{Options, Records};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations per task on the core's path (see the module docs).
fn core_path(tasks: u64) -> f64 {
    let sup: Box<Supervisor<u64, 1024, 2, ThreadPark>> =
        Box::new(Supervisor::new(Policy::DEFAULT, ThreadPark));
    core_path_allocations(&sup, 10_000, tasks) as f64 / tasks as f64
}

/// Allocations per task of a dispatch implementation: the slope between two batch sizes.
fn dispatch(imp: Impl, workers: usize, tasks: u64) -> f64 {
    let count = |n: u64| {
        allocations_during(|| {
            imp.run(workers, n, Work::NOOP);
        })
    };
    let (small, large) = (count(tasks), count(2 * tasks));
    (large as f64 - small as f64) / tasks as f64
}

fn sizes(records: &mut Records) {
    type Boxed = Box<dyn Fn() + Send + Sync>;
    let sizes = [
        (
            "Supervisor<u32, 16, 1, NoPark>",
            size_of::<Supervisor<u32, 16, 1, NoPark>>(),
        ),
        (
            "Supervisor<u64, 64, 2, ThreadPark>",
            size_of::<Supervisor<u64, 64, 2, ThreadPark>>(),
        ),
        (
            "Supervisor<u64, 1024, 4, ThreadPark>",
            size_of::<Supervisor<u64, 1024, 4, ThreadPark>>(),
        ),
        (
            "Supervisor<Box<dyn Fn>, 1024, 4, ThreadPark>",
            size_of::<Supervisor<Boxed, 1024, 4, ThreadPark>>(),
        ),
        ("Queue<u64, 1024>", size_of::<Queue<u64, 1024>>()),
    ];
    for (name, bytes) in sizes {
        records.push(
            &format!("memory/size-of/{name}"),
            "foreman",
            "bytes",
            bytes as f64,
            false,
        );
    }
}

fn main() -> ExitCode {
    let options = Options::parse();
    let mut records = Records::default();
    if options.wants("allocs") {
        let tasks = options.pick(50_000, 200_000);
        let group = "memory/allocs-per-task/noop-2w";
        records.push(
            group,
            "foreman-core",
            "allocs_per_task",
            core_path(tasks),
            false,
        );
        for imp in Impl::ALL {
            let per_task = dispatch(imp, 2, tasks);
            records.push(group, imp.name(), "allocs_per_task", per_task, false);
        }
    }
    if options.wants("size-of") {
        sizes(&mut records);
    }
    match records.write(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("cannot write the records: {err}");
            ExitCode::FAILURE
        }
    }
}
