//! A snapshot taken while tasks move is honest: no task is counted twice (a crashed task
//! going back into the queue is not both queued and in flight), `queued` never exceeds the
//! capacity, and no part is negative. Each test watches a supervisor from another thread
//! while workers move tasks, and fails at the first snapshot that breaks one of these.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use foreman_rt::park::NoPark;
use foreman_rt::policy::{Delivery, Intensity, Policy, Restart};
use foreman_rt::{Next, Snapshot, Supervisor};

/// Takes snapshots until `done`, and returns the first one `honest` rejects (with why).
fn watch<const W: usize>(
    snapshot: impl Fn() -> Snapshot<W>,
    done: &AtomicBool,
    honest: impl Fn(&Snapshot<W>) -> Result<(), String>,
) -> Result<usize, String> {
    let mut taken = 0;
    // Relaxed: a stop flag; the join that follows orders everything else.
    while !done.load(Ordering::Relaxed) {
        let snap = snapshot();
        taken += 1;
        if !snap.adds_up() {
            return Err(format!("does not add up: {snap:?}"));
        }
        honest(&snap).map_err(|why| format!("{why}: {snap:?}"))?;
    }
    Ok(taken)
}

#[test]
fn a_task_going_back_into_the_queue_is_never_counted_twice() {
    const W: usize = 4;
    const ROUNDS: usize = 1_000;
    // Temporary workers are not replaced after a crash: the crashed task goes back into the
    // queue (at-least-once), where the snapshot may see it while the crash is being recorded.
    let policy = Policy::DEFAULT
        .with_restart(Restart::Temporary)
        .with_intensity(Intensity::unlimited())
        .with_delivery(Delivery::at_least_once(2).unwrap());
    let mut snapshots = 0;
    for round in 0..ROUNDS {
        let sup: Supervisor<u32, 8, W> = Supervisor::new(policy, NoPark);
        for task in 0..W as u32 {
            sup.try_submit(task).unwrap();
        }
        let done = AtomicBool::new(false);
        let start = std::sync::Barrier::new(W + 1);
        let watched = thread::scope(|s| {
            let watcher = s.spawn(|| {
                start.wait();
                // No task ever ends here: every task is queued, in flight or (briefly) in
                // the hands of the crash being recorded, and never in two places.
                watch(
                    || sup.snapshot(),
                    &done,
                    |snap| {
                        if snap.submitted > W {
                            Err(format!("{W} tasks submitted, {} counted", snap.submitted))
                        } else if snap.queued + snap.in_flight > W {
                            Err(format!(
                                "{W} tasks counted in {} places",
                                snap.queued + snap.in_flight
                            ))
                        } else {
                            Ok(())
                        }
                    },
                )
            });
            let workers: Vec<_> = (0..W)
                .map(|index| {
                    let mut worker = sup.attach(index).unwrap();
                    let start = &start;
                    s.spawn(move || {
                        start.wait();
                        if let Next::Run(job) = worker.try_next() {
                            let _requeued = job.crash();
                        }
                    })
                })
                .collect();
            for worker in workers {
                worker.join().unwrap();
            }
            done.store(true, Ordering::Relaxed);
            watcher.join().unwrap()
        });
        match watched {
            Ok(taken) => snapshots += taken,
            Err(why) => panic!("round {round}: a dishonest snapshot: {why}"),
        }
        let snap = sup.snapshot();
        assert_eq!(
            (snap.submitted, snap.queued, snap.in_flight, snap.requeued),
            (W, W, 0, W),
            "round {round}: after the crashes"
        );
    }
    assert!(snapshots > 0);
}

#[test]
fn queued_never_exceeds_the_capacity() {
    const TASKS: u32 = 100_000;
    let sup: Supervisor<u32, 1, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    let done = AtomicBool::new(false);
    let mut worker = sup.attach(0).unwrap();
    let watched = thread::scope(|s| {
        let watcher = s.spawn(|| {
            watch(
                || sup.snapshot(),
                &done,
                |snap| {
                    if snap.queued > 1 {
                        Err(format!("{} queued in a queue of 1", snap.queued))
                    } else if snap.in_flight > TASKS as usize {
                        Err(format!("a negative in_flight, {}", snap.in_flight))
                    } else {
                        Ok(())
                    }
                },
            )
        });
        s.spawn(|| {
            for task in 0..TASKS {
                let mut task = task;
                while let Err(refused) = sup.try_submit(task) {
                    task = refused.into_inner();
                    std::hint::spin_loop();
                }
            }
        });
        let mut completed = 0;
        while completed < TASKS {
            if let Next::Run(job) = worker.try_next() {
                job.complete().unwrap();
                completed += 1;
            }
        }
        done.store(true, Ordering::Relaxed);
        watcher.join().unwrap()
    });
    if let Err(why) = watched {
        panic!("a dishonest snapshot: {why}");
    }
    drop(worker);
}
