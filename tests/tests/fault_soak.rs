//! Fault soak: tasks that panic (10% of them), workers that die over and over, and every task
//! must still end in exactly one observable outcome, with the counters adding up.
//!
//! - at-least-once: every task ends completed or dead-lettered;
//! - at-most-once: completed, failed or reported lost;
//! - exceeding the restart intensity escalates, and every task still ends somewhere
//!   (completed, crash report, or handed back);
//! - with every feature at once — result handles, cancellations racing the runs, per-task
//!   deadlines that kill spinning tasks, worker recycling and restart backoff — every handle
//!   resolves to its task's one outcome, and no final event reaches the sink.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use foreman_rt::host::threads::{Cancellation, Handles, Pool, TaskOptions};
use foreman_rt::host::Event;
use foreman_rt::policy::{Backoff, Delivery, Intensity, Policy};
use foreman_rt::{Decision, Disposition, Shutdown, SupervisorState};
use foreman_tests::{quiet_deliberate_panics, within, Bitmap, DELIBERATE};

const TASKS: u32 = 100_000;

/// Where each task ended, one bitmap per kind of outcome (each also counts the events that
/// found their task already ended there: duplicates).
struct Outcomes {
    completed: Bitmap,
    failed: Bitmap,
    dead_lettered: Bitmap,
    lost: Bitmap,
    handed_back: Bitmap,
    /// Crash reports whose decision was to escalate.
    escalations: AtomicUsize,
    unexpected: Mutex<Vec<String>>,
}

impl Outcomes {
    fn new() -> Arc<Outcomes> {
        let n = TASKS as usize;
        Arc::new(Outcomes {
            completed: Bitmap::new(n),
            failed: Bitmap::new(n),
            dead_lettered: Bitmap::new(n),
            lost: Bitmap::new(n),
            handed_back: Bitmap::new(n),
            escalations: AtomicUsize::new(0),
            unexpected: Mutex::new(Vec::new()),
        })
    }

    /// The sink: records every task's outcome.
    fn record(&self, event: Event<u32, (), String, String>) {
        match event {
            Event::Completed { task, .. } => mark(&self.completed, task),
            Event::Failed { task, .. } => mark(&self.failed, task),
            Event::Crashed { task, decision, .. } => {
                if decision == Decision::Escalate {
                    self.escalations.fetch_add(1, Ordering::Relaxed);
                }
                match task {
                    Some(Disposition::DeadLettered { task, .. }) => mark(&self.dead_lettered, task),
                    Some(Disposition::Lost(task)) => mark(&self.lost, task),
                    Some(Disposition::HandedBack(task)) => mark(&self.handed_back, task),
                    Some(Disposition::Retried { .. } | Disposition::Requeued { .. }) => {}
                    Some(other) => self.unexpected(format!("a task {other:?}")),
                    None => self.unexpected("a crash without a task".into()),
                }
            }
            Event::HandedBack { task } => mark(&self.handed_back, task),
            Event::Hung { worker, .. } => self.unexpected(format!("worker {worker} hung")),
            other => self.unexpected(format!("an event {other:?}")),
        }
    }

    fn unexpected(&self, what: String) {
        self.unexpected.lock().unwrap().push(what);
    }

    /// Every task id in exactly one outcome.
    fn assert_each_task_ended_once(&self) {
        let all = [
            &self.completed,
            &self.failed,
            &self.dead_lettered,
            &self.lost,
            &self.handed_back,
        ];
        assert_eq!(
            all.iter().map(|bitmap| bitmap.duplicates()).sum::<usize>(),
            0,
            "a task ended twice"
        );
        assert_eq!(*self.unexpected.lock().unwrap(), Vec::<String>::new());
        for id in 0..TASKS as usize {
            let ends = all.iter().filter(|bitmap| bitmap.get(id)).count();
            assert_eq!(ends, 1, "task {id} ended {ends} times");
        }
    }
}

/// Records that `task` ended in `bitmap`'s outcome (a second time counts as a duplicate).
fn mark(bitmap: &Bitmap, task: u32) {
    bitmap.set(task as usize);
}

fn soak<const W: usize>(
    policy: Policy,
    handler: fn(&foreman_rt::Context<'_>, &u32) -> Result<(), String>,
) -> (Arc<Outcomes>, foreman_rt::host::Report<u32, W>) {
    quiet_deliberate_panics();
    let outcomes = Outcomes::new();
    let sink = outcomes.clone();
    let pool =
        Pool::<u32, (), String, 256, W>::start(policy, handler, move |event| sink.record(event))
            .unwrap();
    for task in 0..TASKS {
        if let Err(err) = pool.submit(task) {
            // Only after an escalation: the task comes back to the submitter.
            mark(&outcomes.handed_back, err.into_inner());
        }
    }
    let report = pool.drain();
    for &task in &report.handed_back {
        mark(&outcomes.handed_back, task);
    }
    (outcomes, report)
}

#[test]
fn at_least_once_every_task_completes_or_is_dead_lettered() {
    let policy = Policy::DEFAULT
        .with_intensity(Intensity::unlimited())
        .with_delivery(Delivery::at_least_once(3).unwrap());
    // 10% of tasks panic: one in ten of those on every run (dead-lettered after 3), the rest
    // only on their first run (completed by the replacement's retry).
    let (outcomes, report) = soak::<4>(policy, |ctx, task| {
        if task % 100 == 0 || (task % 10 == 0 && ctx.attempt() == 1) {
            panic!("{DELIBERATE}: task {task}, run {}", ctx.attempt());
        }
        Ok(())
    });
    outcomes.assert_each_task_ended_once();
    let snap = report.snapshot;
    assert_eq!(outcomes.dead_lettered.count(), 1_000);
    assert!((0..TASKS)
        .filter(|t| t % 100 == 0)
        .all(|t| outcomes.dead_lettered.get(t as usize)));
    assert_eq!(outcomes.completed.count(), 99_000);
    assert_eq!(
        (
            snap.completed,
            snap.dead_lettered,
            snap.lost,
            snap.handed_back
        ),
        (99_000, 1_000, 0, 0)
    );
    assert_eq!(snap.crashes(), 9_000 + 1_000 * 3, "every panic was a crash");
    assert_eq!(
        snap.restarts(),
        snap.crashes(),
        "permanent workers: every crash replaced"
    );
    assert_eq!(snap.state, SupervisorState::Stopped(Shutdown::Drain));
    assert!(snap.adds_up());
}

#[test]
fn at_most_once_every_task_completes_fails_or_is_reported_lost() {
    let policy = Policy::DEFAULT
        .with_intensity(Intensity::unlimited())
        .with_delivery(Delivery::AtMostOnce);
    let (outcomes, report) = soak::<4>(policy, |_, task| match task % 20 {
        0 | 10 => panic!("{DELIBERATE}: task {task}"),
        5 => Err(format!("task {task} refuses")),
        _ => Ok(()),
    });
    outcomes.assert_each_task_ended_once();
    let snap = report.snapshot;
    assert_eq!(outcomes.lost.count(), 10_000);
    assert_eq!(outcomes.failed.count(), 5_000);
    assert_eq!(outcomes.completed.count(), 85_000);
    assert_eq!(
        (snap.completed, snap.failed, snap.lost, snap.dead_lettered),
        (85_000, 5_000, 10_000, 0)
    );
    assert_eq!(snap.crashes(), 10_000);
    assert!(snap.adds_up());
}

#[test]
fn exceeding_the_restart_intensity_escalates_and_loses_nothing() {
    // 10% of tasks always panic; at most 3 restarts per minute: the 4th crash escalates.
    let policy = Policy::DEFAULT
        .with_intensity(Intensity::new(3, 60_000).unwrap())
        .with_delivery(Delivery::at_least_once(5).unwrap());
    let (outcomes, report) = soak::<2>(policy, |_, task| {
        if task % 10 == 0 {
            panic!("{DELIBERATE}: task {task}");
        }
        Ok(())
    });
    outcomes.assert_each_task_ended_once();
    let snap = report.snapshot;
    assert_eq!(snap.state, SupervisorState::Stopped(Shutdown::Escalation));
    assert!(
        snap.crashes() >= 4,
        "escalated after the 4th crash, not before"
    );
    assert_eq!(snap.restarts(), 3, "exactly the allowed restarts happened");
    assert!(
        outcomes.handed_back.count() > 0,
        "queued tasks were handed back"
    );
    assert_eq!(
        snap.completed + snap.failed + snap.dead_lettered + snap.lost + snap.handed_back,
        snap.submitted,
        "every accepted task ended"
    );
    assert!(snap.adds_up());
    // No worker is left: retired by the escalation, exited, or (if the escalation came
    // before its thread attached) its reservation swept back to vacant.
    use foreman_rt::WorkerState::{Exited, Retired, Vacant};
    assert!(snap
        .workers
        .iter()
        .all(|w| matches!(w.state, Retired | Exited | Vacant)));
    assert_eq!(
        outcomes.escalations.load(Ordering::Relaxed),
        1,
        "one crash report escalated"
    );
}

/// Every feature at once on a pool with result handles: 20,000 tasks, one in 250 panicking on
/// its first run (rarely enough that workers live to their quota), one in a thousand spinning
/// until told to stop (heartbeating all the while) under a 30 ms deadline, one in seven
/// cancelled right after it was submitted (racing the workers: still queued, running, or
/// done), workers recycled every 50 tasks and replaced after a crash with a backoff. Each handle resolves to the one outcome its cancellation
/// allows; the sink sees only what is not final (retried crashes, hangs, recyclings); the
/// report adds up.
#[test]
fn cancellations_deadlines_recycling_and_backoff_together_end_every_task_once() {
    const TASKS: u32 = 20_000;
    const SPIN_DEADLINE_MS: u32 = 30;
    let is_spinner = |task: u32| task % 1000 == 500;
    let is_cancelled_at_once = move |task: u32| task.is_multiple_of(7) && !is_spinner(task);
    quiet_deliberate_panics();
    let report = within(
        Duration::from_secs(300),
        "the soak with every feature",
        move || {
            let policy = Policy::DEFAULT
                .with_intensity(Intensity::unlimited())
                .with_delivery(Delivery::at_least_once(3).unwrap())
                .with_recycling(50)
                .unwrap()
                .with_backoff(Backoff::new(1, 2, 4).unwrap());
            let sink_saw = Arc::new(Mutex::new(Vec::<String>::new()));
            let recycled = Arc::new(AtomicUsize::new(0));
            let (saw, recycles) = (sink_saw.clone(), recycled.clone());
            let pool = Pool::<u32, (), String, 256, 2, Handles>::start(
                policy,
                move |ctx, &task| {
                    if is_spinner(task) {
                        while !ctx.is_cancelled() {
                            ctx.heartbeat(); // a deadline is not extended by heartbeats
                            std::hint::spin_loop();
                        }
                        return Ok(()); // discarded: the run is past its deadline
                    }
                    if task.is_multiple_of(250) && ctx.attempt() == 1 {
                        panic!("{DELIBERATE}: task {task}");
                    }
                    Ok(())
                },
                move |event| match event {
                    Event::Recycled { .. } => {
                        recycles.fetch_add(1, Ordering::Relaxed);
                    }
                    Event::Hung { .. } => {}
                    Event::Crashed {
                        task: Some(Disposition::Retried { .. } | Disposition::Requeued { .. }),
                        ..
                    } => {}
                    final_event => saw.lock().unwrap().push(format!("{final_event:?}")),
                },
            )
            .unwrap();
            let mut handles = Vec::with_capacity(TASKS as usize);
            let mut cancellations = Vec::new();
            for task in 0..TASKS {
                let handle = if is_spinner(task) {
                    let options = TaskOptions::DEFAULT.with_deadline(SPIN_DEADLINE_MS);
                    pool.submit_with_options(task, options)
                } else {
                    pool.submit_with_handle(task)
                };
                let handle = handle.unwrap_or_else(|_| panic!("task {task} was refused"));
                if is_cancelled_at_once(task) {
                    cancellations.push((task, handle.cancel()));
                }
                handles.push(handle);
            }
            let mut ends = Vec::with_capacity(TASKS as usize);
            for (task, handle) in (0..TASKS).zip(handles) {
                match handle.wait_timeout(Duration::from_secs(120)) {
                    Ok(event) => ends.push((task, event)),
                    Err(_) => panic!("hung: task {task}'s handle never resolved"),
                }
            }
            let report = pool.drain();
            (ends, cancellations, sink_saw, recycled, report)
        },
    );
    let (ends, cancellations, sink_saw, recycled, report) = report;
    assert_eq!(
        *sink_saw.lock().unwrap(),
        Vec::<String>::new(),
        "final events reached the sink"
    );

    let cancellation_of = |task: u32| {
        cancellations
            .binary_search_by_key(&task, |&(t, _)| t)
            .ok()
            .map(|i| cancellations[i].1)
    };
    let (mut completed, mut dead_lettered, mut cancelled) = (0, 0, 0);
    for (task, event) in &ends {
        let task = *task;
        match (cancellation_of(task), event) {
            (
                Some(Cancellation::Unstarted),
                Event::Cancelled {
                    worker: None,
                    task: t,
                },
            ) => {
                assert_eq!(*t, task);
                cancelled += 1;
            }
            // Told while running (`Some` worker) — or its run had just crashed, and the retry
            // ended cancelled without running (`None`).
            (Some(Cancellation::Running), Event::Cancelled { task: t, .. }) => {
                assert_eq!(*t, task);
                cancelled += 1;
            }
            // A run that had just finished when the cancel came keeps its outcome.
            (
                Some(Cancellation::Running | Cancellation::Finished) | None,
                Event::Completed { task: t, .. },
            ) if !is_spinner(task) => {
                assert_eq!(*t, task);
                completed += 1;
            }
            (
                None,
                Event::Crashed {
                    task:
                        Some(Disposition::DeadLettered {
                            task: t,
                            attempts: 3,
                        }),
                    ..
                },
            ) if is_spinner(task) => {
                assert_eq!(*t, task);
                dead_lettered += 1;
            }
            (cancellation, event) => {
                panic!("task {task} (cancellation {cancellation:?}) ended as {event:?}")
            }
        }
    }
    let snap = report.snapshot;
    assert!(report.handed_back.is_empty(), "a drain hands nothing back");
    assert_eq!(
        dead_lettered, 20,
        "every spinner was killed by its deadline on each of its runs"
    );
    assert_eq!(completed + dead_lettered + cancelled, TASKS as usize);
    assert_eq!(
        (
            snap.completed,
            snap.dead_lettered,
            snap.cancelled,
            snap.failed,
            snap.lost
        ),
        (completed, dead_lettered, cancelled, 0, 0),
        "the snapshot counts what the handles received"
    );
    assert!(cancelled > 0, "some cancellations came in time");
    assert!(snap.recycles() > 0, "workers were recycled");
    assert_eq!(snap.recycles() as usize, recycled.load(Ordering::Relaxed));
    assert_eq!(snap.state, SupervisorState::Stopped(Shutdown::Drain));
    assert!(snap.adds_up());
}
