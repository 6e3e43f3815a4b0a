//! Stress: producers submitting through the thread host while workers run the tasks; every
//! task id must complete exactly once (a bitmap finds losses and duplicates) and the counters
//! must add up. One million tasks per configuration by default;
//! `FOREMAN_STRESS_TASKS=10000000` (or `cargo xtask test --long`) for ten million.

use std::sync::Arc;

use foreman_rt::host::{threads::Pool, Event};
use foreman_rt::policy::Policy;
use foreman_rt::SubmitError;
use foreman_tests::Bitmap;

fn tasks() -> usize {
    std::env::var("FOREMAN_STRESS_TASKS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000)
}

/// `producers` threads submit ids `0..tasks` between them — the even ones with the blocking
/// `submit`, the odd ones with `try_submit`, retrying with the task it hands back — into a
/// pool of `W` workers.
fn stress<const W: usize>(producers: usize) {
    let tasks = tasks();
    let completed = Arc::new(Bitmap::new(tasks));
    let pool = {
        let completed = completed.clone();
        Pool::<u32, (), (), 1024, W>::start(
            Policy::DEFAULT,
            |_, _| Ok(()),
            move |event| match event {
                Event::Completed { task, .. } => {
                    completed.set(task as usize);
                }
                other => panic!("unexpected event {other:?}"),
            },
        )
        .unwrap()
    };
    std::thread::scope(|s| {
        for p in 0..producers {
            let pool = &pool;
            s.spawn(move || {
                for id in (p..tasks).step_by(producers) {
                    let id = id as u32;
                    if p % 2 == 0 {
                        pool.submit(id).unwrap();
                    } else {
                        let mut task = id;
                        while let Err(err) = pool.try_submit(task) {
                            let SubmitError::Full(back) = err else {
                                panic!("closed while running")
                            };
                            assert_eq!(back, id, "the refused task comes back unchanged");
                            task = back;
                            std::thread::yield_now();
                        }
                    }
                }
            });
        }
    });
    let report = pool.drain();
    let snap = report.snapshot;
    assert_eq!(completed.duplicates(), 0, "duplicated tasks");
    assert_eq!(completed.missing(), Vec::<usize>::new(), "lost tasks");
    assert_eq!(
        (snap.submitted, snap.completed, snap.queued, snap.in_flight),
        (tasks, tasks, 0, 0)
    );
    assert!(report.handed_back.is_empty());
    assert!(snap.adds_up());
    assert_eq!(
        snap.workers.iter().map(|w| w.completed).sum::<usize>(),
        tasks
    );
}

#[test]
fn two_producers_two_workers() {
    stress::<2>(2);
}

#[test]
fn four_producers_four_workers() {
    stress::<4>(4);
}
