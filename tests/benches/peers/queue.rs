//! Queue suite: foreman's `Queue` against crossbeam-queue's `ArrayQueue`, heapless's
//! `mpmc::Queue` and concurrent-queue's `bounded`, at capacity 64 and 1024, with 1, 2 and 4
//! producers and as many consumers, in paired rounds (see `stats.rs`).
//!
//! Each producer pushes its share of the elements, each consumer pops its share; a thread
//! whose push finds the queue full (or pop finds it empty) backs off (spins, then yields) and
//! retries, the same for every queue. One *operation* is one push or one pop, so Mops/s counts
//! both. The clock runs from a barrier that releases every thread to the last one's end. The
//! sum of the popped values is checked, so no queue can win by losing elements.
//!
//! With P producers and P consumers, 2P threads run at once: on a machine with fewer CPUs
//! than that, the scenario measures the scheduler as much as the queue (the report marks it).

use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use concurrent_queue::ConcurrentQueue;
use crossbeam_queue::ArrayQueue;
use crossbeam_utils::Backoff;

use crate::queues::{Bounded, NAMES};
use crate::report::{Options, Records};
use crate::stats::{paired, plan, Scenario};

/// Moves `per_thread * pairs` elements through `queue` with `pairs` producers and `pairs`
/// consumers; returns the time it took.
fn transfer(queue: &impl Bounded, pairs: usize, per_thread: u64) -> Duration {
    let barrier = Barrier::new(2 * pairs + 1);
    thread::scope(|scope| {
        for producer in 0..pairs as u64 {
            let barrier = &barrier;
            scope.spawn(move || {
                barrier.wait();
                let backoff = Backoff::new();
                for i in 0..per_thread {
                    let mut value = producer * per_thread + i + 1;
                    while let Err(back) = queue.push(value) {
                        value = back;
                        backoff.snooze();
                    }
                    backoff.reset();
                }
            });
        }
        let consumers: Vec<_> = (0..pairs)
            .map(|_| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    let backoff = Backoff::new();
                    let mut sum = 0u64;
                    for _ in 0..per_thread {
                        loop {
                            if let Some(value) = queue.pop() {
                                sum += value;
                                break;
                            }
                            backoff.snooze();
                        }
                        backoff.reset();
                    }
                    sum
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let sum: u64 = consumers.into_iter().map(|c| c.join().unwrap()).sum();
        // The producers are done too: the consumers popped everything they pushed.
        let elapsed = start.elapsed();
        let n = pairs as u64 * per_thread;
        assert_eq!(sum, n * (n + 1) / 2, "elements were lost or duplicated");
        elapsed
    })
}

/// One queue under test: how to run one measurement on a fresh instance.
type Contender = fn(usize, u64) -> Duration;

/// The contenders at capacity `N`, in the order of [`NAMES`].
fn contenders<const N: usize>() -> [Contender; 4] {
    [
        |pairs, per| {
            let queue = Box::new(foreman_rt::queue::Queue::<u64, N>::new());
            transfer(&*queue, pairs, per)
        },
        |pairs, per| transfer(&ArrayQueue::new(N), pairs, per),
        |pairs, per| {
            // Deprecated since heapless 0.9.2 (spurious Full/Empty under contention, issue
            // #583); benchmarked on purpose, and the retry loop absorbs the spurious answers.
            #[allow(deprecated)]
            let queue = Box::new(heapless::mpmc::Queue::<u64, N>::new());
            transfer(&*queue, pairs, per)
        },
        |pairs, per| transfer(&ConcurrentQueue::bounded(N), pairs, per),
    ]
}

pub fn run(options: &Options, records: &mut Records) {
    let elements: u64 = options.pick(50_000, 200_000);
    for pairs in [1usize, 2, 4] {
        // Seconds of rounds per scenario: most for those that fit on two CPUs.
        let seconds = match pairs {
            1 => 60,
            2 => 40,
            _ => 10,
        };
        for (capacity, contenders) in [(64, contenders::<64>()), (1024, contenders::<1024>())] {
            let scenario = Scenario {
                groups: [format!("queue/{pairs}p{pairs}c/cap{capacity}")],
                metrics: ["mops_per_s"],
                higher_is_better: true,
                threads: 2 * pairs,
            };
            let per_thread = elements / pairs as u64;
            paired(records, &plan(options, seconds), &scenario, &NAMES, |i| {
                let elapsed = (contenders[i])(pairs, per_thread);
                let ops = 2.0 * (per_thread * pairs as u64) as f64;
                [ops / elapsed.as_secs_f64() / 1e6]
            });
        }
    }
}
