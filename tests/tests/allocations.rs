//! Zero heap allocations per task in steady state, counted by a global allocator: on the
//! core's path (a `static` supervisor driven by two threads) and through the thread host
//! (`Pool` with a handler and a sink that allocate nothing themselves).
//!
//! One test function runs both phases in turn, so nothing else in this binary allocates
//! while a phase counts.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use foreman::host::threads::{Pool, ThreadPark};
use foreman::policy::Policy;
use foreman::Supervisor;

/// Counts allocations (and reallocations) made by any thread.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call unchanged to the system allocator; only counts them.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const WARM_UP: u64 = 10_000;
const MEASURED: u64 = 200_000;

/// Allocations made while `f` runs.
fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    f();
    ALLOCATIONS.load(Ordering::SeqCst) - before
}

static SUPERVISOR: Supervisor<u64, 1024, 2, ThreadPark> =
    Supervisor::new(Policy::DEFAULT, ThreadPark);
static SUM: AtomicUsize = AtomicUsize::new(0);

/// Submits `n` tasks and waits until the workers completed them all.
fn run_core_tasks(n: u64) {
    let target = SUPERVISOR.snapshot().completed + n as usize;
    for task in 0..n {
        SUPERVISOR.submit(task).unwrap();
    }
    while SUPERVISOR.snapshot().completed < target {
        std::thread::yield_now();
    }
}

#[test]
fn no_allocation_per_task_in_steady_state() {
    // Control: the counter sees allocations, so a zero below means something.
    assert!(allocations_during(|| drop(std::hint::black_box(vec![1u8; 64]))) >= 1);

    // Phase 1: the core's path.
    let running = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for index in 0..2 {
            let mut worker = SUPERVISOR.attach(index).unwrap();
            let running = &running;
            s.spawn(move || {
                running.fetch_add(1, Ordering::SeqCst);
                while let Some(job) = worker.next_blocking() {
                    SUM.fetch_add(*job.task() as usize, Ordering::Relaxed);
                    job.complete().unwrap();
                }
            });
        }
        // A thread allocates once as it starts: wait until both run their loop.
        while running.load(Ordering::SeqCst) < 2 {
            std::thread::yield_now();
        }
        run_core_tasks(WARM_UP); // threads started, everything touched once
        let allocations = allocations_during(|| run_core_tasks(MEASURED));
        assert_eq!(
            allocations, 0,
            "allocations on the core's path for {MEASURED} tasks"
        );
        SUPERVISOR.drain();
    });
    assert_eq!(
        SUPERVISOR.snapshot().completed,
        (WARM_UP + MEASURED) as usize
    );

    // Phase 2: the thread host.
    let pool =
        Pool::<u64, u64, (), 1024, 2>::start(Policy::DEFAULT, |_, n| Ok(n * 2), |_| {}).unwrap();
    let run_pool_tasks = |n: u64| {
        let target = pool.snapshot().completed + n as usize;
        for task in 0..n {
            pool.submit(task).unwrap();
        }
        while pool.snapshot().completed < target {
            std::thread::yield_now();
        }
    };
    // Worker threads allocate once as they start: wait until each has attached its slot.
    while pool
        .snapshot()
        .workers
        .iter()
        .any(|w| w.state == foreman::WorkerState::Starting)
    {
        std::thread::yield_now();
    }
    run_pool_tasks(WARM_UP);
    let allocations = allocations_during(|| run_pool_tasks(MEASURED));
    assert_eq!(
        allocations, 0,
        "allocations through the thread host for {MEASURED} tasks"
    );
    assert_eq!(
        pool.drain().snapshot.completed,
        (WARM_UP + MEASURED) as usize
    );
}
