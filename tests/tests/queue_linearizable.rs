//! heapless issue #583, as a regression test: a full queue of capacity 4, two threads each
//! doing pop → push a million times. Each thread holds at most one element, so every pop has
//! at least two elements to find and every push has room: an `Empty` or a `Full` would be
//! spurious. heapless's `mpmc::Queue` reports over 10^5 of them in this scenario (which is
//! why heapless 0.9.2 deprecated it); foreman's queue must report none.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Barrier;

use foreman_rt::queue::Queue;

const CYCLES: usize = 1_000_000;

#[test]
fn a_full_queue_cycled_by_two_threads_never_fails_spuriously() {
    let queue: Queue<usize, 4> = Queue::new();
    for value in 0..4 {
        queue.try_push(value).unwrap();
    }
    let spurious_empty = AtomicUsize::new(0);
    let spurious_full = AtomicUsize::new(0);
    let start = Barrier::new(2);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                start.wait();
                for _ in 0..CYCLES {
                    let value = loop {
                        match queue.try_pop() {
                            Ok(value) => break value,
                            Err(_) => spurious_empty.fetch_add(1, Ordering::Relaxed),
                        };
                    };
                    let mut value = value;
                    while let Err(err) = queue.try_push(value) {
                        spurious_full.fetch_add(1, Ordering::Relaxed);
                        value = err.into_inner();
                    }
                }
            });
        }
    });
    assert_eq!(spurious_empty.load(Ordering::Relaxed), 0, "spurious Empty");
    assert_eq!(spurious_full.load(Ordering::Relaxed), 0, "spurious Full");
    let mut values: Vec<usize> = std::iter::from_fn(|| queue.try_pop().ok()).collect();
    values.sort();
    assert_eq!(
        values,
        [0, 1, 2, 3],
        "every element still there exactly once"
    );
}
