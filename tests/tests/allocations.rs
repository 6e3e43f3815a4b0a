//! Zero heap allocations per task in steady state, counted by a global allocator: on the
//! core's path (a `static` supervisor driven by two threads) and through the thread host
//! (`Pool` with a handler and a sink that allocate nothing themselves).
//!
//! One test function runs both phases in turn, so nothing else in this binary allocates
//! while a phase counts.

use foreman_rt::host::threads::{Pool, ThreadPark};
use foreman_rt::policy::Policy;
use foreman_rt::Supervisor;
use foreman_tests::{allocations_during, core_path_allocations, run_tasks, Counting};

#[global_allocator]
static GLOBAL: Counting = Counting;

const WARM_UP: u64 = 10_000;
const MEASURED: u64 = 200_000;

static SUPERVISOR: Supervisor<u64, 1024, 2, ThreadPark> =
    Supervisor::new(Policy::DEFAULT, ThreadPark);

#[test]
fn no_allocation_per_task_in_steady_state() {
    // Control: the counter sees allocations, so a zero below means something.
    assert!(allocations_during(|| drop(std::hint::black_box(vec![1u8; 64]))) >= 1);

    // Phase 1: the core's path, two worker threads.
    let allocations = core_path_allocations(&SUPERVISOR, WARM_UP, MEASURED);
    assert_eq!(
        allocations, 0,
        "allocations on the core's path for {MEASURED} tasks"
    );
    assert_eq!(
        SUPERVISOR.snapshot().completed,
        (WARM_UP + MEASURED) as usize
    );

    // Phase 2: the thread host.
    let pool =
        Pool::<u64, u64, (), 1024, 2>::start(Policy::DEFAULT, |_, n| Ok(n * 2), |_| {}).unwrap();
    let run_pool_tasks = |n: u64| {
        run_tasks(
            n,
            |task| pool.submit(task).unwrap(),
            || pool.snapshot().completed,
        )
    };
    // Worker threads allocate once as they start: wait until each has attached its slot.
    while pool
        .snapshot()
        .workers
        .iter()
        .any(|w| w.state == foreman_rt::WorkerState::Starting)
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
