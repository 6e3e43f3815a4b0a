//! Memory: heap allocations per task (suite `allocs`), and `size_of` the supervisor
//! (suite `size-of`) (`cargo xtask bench`,
//! `cargo bench -p foreman-tests --bench memory -- [--quick] [--out FILE]`).
//!
//! A counting global allocator (its own binary, so that it never slows the timed suites)
//! counts every allocation:
//! - `foreman-core`: the core's own path — a `Supervisor<u64, 1024, 2, ThreadPark>` in an
//!   `Arc`, two threads doing `attach` → `next_blocking` → `complete`, the main thread doing
//!   `submit` (parking while the queue is full). Counted from the first `submit` of the
//!   measured tasks until the last one completed, with the worker threads running and warm.
//! - every dispatch implementation of the `peers` benchmark (no-op tasks, 2 workers), as the
//!   slope between two batch sizes, which cancels what starting and stopping a pool costs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::mem::size_of;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use clap::Parser;
use foreman::host::threads::ThreadPark;
use foreman::park::NoPark;
use foreman::policy::Policy;
use foreman::queue::Queue;
use foreman::Supervisor;

#[path = "support/pools.rs"]
mod pools;
#[path = "support/report.rs"]
mod report;

use pools::{Impl, Work};
use report::{Options, Records};

/// Counts allocations (`alloc`, `alloc_zeroed`, `realloc`) and forwards them to the system.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so
// `System`'s guarantees are ours; the counter is a side effect that allocates nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // Relaxed: a statistic, read after the threads that allocate were synchronized with.
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded as is (see the impl).
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // Relaxed: as in `alloc`.
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded as is (see the impl).
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Relaxed: as in `alloc`.
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded as is (see the impl).
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is (see the impl).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    // Relaxed: see `alloc`.
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// Allocations per task on the core's path (see the module docs).
fn core_path(tasks: u64) -> f64 {
    const WORKERS: usize = 2;
    let sup: Arc<Supervisor<u64, 1024, WORKERS, ThreadPark>> =
        Arc::new(Supervisor::new(Policy::DEFAULT, ThreadPark));
    let warm_up = 10_000u64;
    let wait_completed = |n: u64| {
        while (sup.snapshot().completed as u64) < n {
            thread::yield_now();
        }
    };
    // Counting starts once every worker thread runs: starting a thread allocates.
    let started = Barrier::new(WORKERS + 1);
    let counted = thread::scope(|scope| {
        for index in 0..WORKERS {
            let mut worker = sup.attach(index).expect("a vacant slot");
            let started = &started;
            scope.spawn(move || {
                started.wait();
                while let Some(job) = worker.next_blocking() {
                    std::hint::black_box(*job.task());
                    job.complete().expect("never condemned here");
                }
            });
        }
        started.wait();
        for task in 0..warm_up {
            sup.submit(task).expect("running");
        }
        wait_completed(warm_up);
        let before = allocations();
        for task in 0..tasks {
            sup.submit(task).expect("running");
        }
        wait_completed(warm_up + tasks);
        let counted = allocations() - before;
        sup.drain();
        counted
    });
    counted as f64 / tasks as f64
}

/// Allocations per task of a dispatch implementation: the slope between two batch sizes.
fn dispatch(imp: Impl, workers: usize, tasks: u64) -> f64 {
    let count = |n: u64| {
        let before = allocations();
        imp.run(workers, n, Work::NOOP);
        allocations() - before
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
