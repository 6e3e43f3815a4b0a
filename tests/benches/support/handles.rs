//! The dispatch benchmarks' handle path, `foreman-handle`: not a contender of the dispatch
//! suite (see `pools.rs`), but what a result handle costs set against the sink path, `foreman`
//! (`dispatch/handle/1w` in the `peers` benchmark; instructions in the `handles` benchmark).

use std::convert::Infallible;
use std::time::{Duration, Instant};

use foreman_rt::host::threads::{Handles, Pool};
use foreman_rt::host::Event;
use foreman_rt::policy::Policy;

use crate::pools::CAPACITY;

/// foreman's `Pool` with a result handle per task: every task submitted with `submit_with_handle` into a pool of `Handles` (a
/// 16k-task queue), then every handle waited for, in submission order, while the workers run
/// the tasks. Returns the time from the first submission until the last outcome was taken.
pub fn foreman_handles<const W: usize, B>(tasks: u64, body: B, submitted: impl FnOnce()) -> Duration
where
    B: Fn(u64) -> u64 + Send + Sync + 'static,
{
    let pool = Pool::<u64, u64, Infallible, CAPACITY, W, Handles>::start(
        Policy::DEFAULT,
        move |_, &task| Ok(body(task)),
        |_event| {},
    )
    .expect("cannot start the worker threads");
    let mut handles = Vec::with_capacity(tasks as usize);
    let start = Instant::now();
    for task in 0..tasks {
        handles.push(pool.submit_with_handle(task).expect("the pool is running"));
    }
    submitted();
    for handle in handles {
        match handle.wait() {
            Ok(Event::Completed { .. }) => {}
            other => panic!("a no-op task ended otherwise: {other:?}"),
        }
    }
    let elapsed = start.elapsed();
    let report = pool.drain();
    assert_eq!(report.snapshot.completed, tasks as usize);
    elapsed
}
