//! Cancellation and per-task deadlines on the thread host ([`TaskHandle::cancel`],
//! [`TaskOptions::with_deadline`]), attacked: a cancel racing the task's completion, a queued
//! task cancelled behind a full pool, cancels from inside the pool (of another task, of the
//! task itself), cancels after the outcome and twice, a dropped handle of a cancelled task,
//! deadlines that heartbeats do not extend, deadlines without a policy watchdog, shutdowns with
//! cancelled tasks queued, and a deadline that applies to a retry's run. Every task ends in
//! exactly one event — to its handle, or to the sink if the handle was dropped — and the
//! snapshot adds up.
//!
//! Every test runs under a watchdog ([`within`]) that fails it with `hung: ...` rather than
//! blocking the run.

use std::panic;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use foreman_rt::host::threads::{Cancellation, Handles, Pool, TaskHandle, TaskOptions};
use foreman_rt::host::Event;
use foreman_rt::policy::{Delivery, Intensity, Policy};
use foreman_rt::Disposition;
use foreman_tests::{channel_sink, quiet_deliberate_panics, within, DELIBERATE};

/// How long any one test may take before it counts as hung.
const LIMIT: Duration = Duration::from_secs(30);

type Ev = Event<u32, u32, String, String>;
type Handle = TaskHandle<u32, u32, String>;

/// The task of a final event (one that ends the task).
fn task_of(event: &Ev) -> Option<u32> {
    match event {
        Event::Completed { task, .. } | Event::Failed { task, .. } => Some(*task),
        Event::HandedBack { task } | Event::Cancelled { task, .. } => Some(*task),
        Event::Crashed { task, .. } => task.as_ref().and_then(Disposition::task).copied(),
        _ => None,
    }
}

/// A gate that tasks wait at until it is opened.
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    fn wait(&self) {
        let mut open = self.0 .0.lock().unwrap();
        while !*open {
            open = self.0 .1.wait(open).unwrap();
        }
    }
    fn open(&self) {
        *self.0 .0.lock().unwrap() = true;
        self.0 .1.notify_all();
    }
}

/// Waits (bounded by the test's watchdog) until `condition` holds.
fn until(mut condition: impl FnMut() -> bool) {
    while !condition() {
        thread::sleep(Duration::from_millis(1));
    }
}

/// A cancel from another thread racing the task's own end, many times over: each handle
/// resolves exactly once, to `Completed` or `Cancelled` as `cancel` said (`Finished` means
/// completed; `Unstarted` means cancelled without a run), the sink gets no final event, and the
/// snapshot adds up with every task counted once.
#[test]
fn a_cancel_racing_completion_gives_exactly_one_event_to_the_handle() {
    within(LIMIT, "cancel racing completion", || {
        let (sink, events) = channel_sink();
        let pool = Pool::<u32, u32, String, 64, 2, Handles>::start(
            Policy::DEFAULT,
            |ctx, &n| {
                // Short tasks of varying length that poll for a cancellation.
                for _ in 0..(n % 7) * 50 {
                    if ctx.is_cancelled() {
                        break;
                    }
                    std::hint::spin_loop();
                }
                Ok(n)
            },
            sink,
        )
        .unwrap();
        let rounds = 2_000u32;
        let (mut completed, mut cancelled) = (0, 0);
        for n in 0..rounds {
            let handle = Arc::new(pool.submit_with_handle(n).unwrap());
            let canceller = {
                let handle = Arc::clone(&handle);
                thread::spawn(move || {
                    for _ in 0..(n % 5) * 20 {
                        std::hint::spin_loop();
                    }
                    handle.cancel()
                })
            };
            let answer = canceller.join().unwrap();
            let handle = Arc::into_inner(handle).expect("the canceller is done");
            let event = handle.wait().unwrap();
            match (&event, answer) {
                (Event::Completed { task, .. }, Cancellation::Finished | Cancellation::Running) => {
                    assert_eq!(*task, n);
                    completed += 1;
                }
                (Event::Cancelled { task, worker: None }, Cancellation::Unstarted) => {
                    assert_eq!(*task, n);
                    cancelled += 1;
                }
                (
                    Event::Cancelled {
                        task,
                        worker: Some(_),
                    },
                    Cancellation::Running,
                ) => {
                    assert_eq!(*task, n);
                    cancelled += 1;
                }
                other => panic!("task {n}: {other:?}"),
            }
        }
        let report = pool.drain();
        let snap = report.snapshot;
        assert!(snap.adds_up(), "{snap:?}");
        assert_eq!(
            (snap.completed, snap.cancelled),
            (completed, cancelled),
            "{snap:?}"
        );
        assert_eq!(completed + cancelled, rounds as usize);
        // Nothing final went to the sink: every task's one event went to its handle. (A cancel
        // that lands after the worker's last look has the run's result refused: the thread
        // then ends and is replaced, as the core counts a worker's death, but no crash event is
        // reported: the task ended cancelled.)
        let seen: Vec<Ev> = events.try_iter().collect();
        assert!(seen.iter().all(|e| task_of(e).is_none()), "{seen:?}");
        assert!(
            seen.iter().all(|e| !matches!(e, Event::Crashed { .. })),
            "{seen:?}"
        );
    });
}

/// A pool whose one worker is held and whose queue is full: queued tasks cancelled there never
/// run; they end `Cancelled` without a worker once the worker gets to them, and the task
/// submitted after them (room made by nothing: cancelled tasks still hold their places until
/// taken) runs.
#[test]
fn a_task_cancelled_while_queued_behind_a_full_pool_never_runs() {
    within(LIMIT, "cancel behind a full pool", || {
        let gate = Gate::default();
        let g = gate.clone();
        let ran = Arc::new(Mutex::new(Vec::new()));
        let r = Arc::clone(&ran);
        let pool = Pool::<u32, u32, String, 4, 1, Handles>::start(
            Policy::DEFAULT,
            move |_, &n| {
                r.lock().unwrap().push(n);
                if n == 0 {
                    g.wait();
                }
                Ok(n)
            },
            |_| {},
        )
        .unwrap();
        let first = pool.submit_with_handle(0).unwrap();
        until(|| !ran.lock().unwrap().is_empty());
        let queued: Vec<Handle> = (1..=4)
            .map(|n| pool.submit_with_handle(n).unwrap())
            .collect();
        assert!(
            pool.try_submit_with_handle(99).is_err(),
            "the queue of 4 is full"
        );
        for handle in &queued[..3] {
            assert_eq!(handle.cancel(), Cancellation::Unstarted);
        }
        gate.open();
        assert!(matches!(first.wait(), Ok(Event::Completed { task: 0, .. })));
        let ends: Vec<Ev> = queued.into_iter().map(|h| h.wait().unwrap()).collect();
        for (n, end) in (1..=3).zip(&ends) {
            assert!(
                matches!(end, Event::Cancelled { worker: None, task } if *task == n),
                "{end:?}"
            );
        }
        assert!(matches!(ends[3], Event::Completed { task: 4, .. }));
        let snap = pool.drain().snapshot;
        assert_eq!(*ran.lock().unwrap(), [0, 4], "a cancelled task ran");
        assert_eq!((snap.completed, snap.cancelled), (2, 3));
        assert!(snap.adds_up());
    });
}

type Selfish = Pool<u32, u32, String, 8, 2, Handles>;

/// Tasks cancel from inside the pool: task 1 cancels task 2 (queued behind it), task 3 cancels
/// its own handle — which says `Running`, and the task sees it at once. No call blocks, and
/// each handle gets its one event.
#[test]
fn a_task_cancels_another_task_of_its_pool_and_itself() {
    within(LIMIT, "cancel from inside the pool", || {
        let handles: Arc<Mutex<Vec<Option<Handle>>>> = Arc::default();
        let answers: Arc<Mutex<Vec<(u32, Cancellation, bool)>>> = Arc::default();
        let gate = Gate::default();
        let (h, a, g) = (Arc::clone(&handles), Arc::clone(&answers), gate.clone());
        let pool = Selfish::start(
            Policy::DEFAULT,
            move |ctx, &n| {
                g.wait();
                let target = match n {
                    1 => 2,
                    3 => 3,
                    _ => return Ok(n),
                };
                let answer = h.lock().unwrap()[target as usize]
                    .as_ref()
                    .expect("kept until the end")
                    .cancel();
                a.lock().unwrap().push((n, answer, ctx.is_cancelled()));
                Ok(n)
            },
            |_| {},
        )
        .unwrap();
        // One worker busy with task 0 until the gate opens, so that task 2 is still queued
        // when task 1 cancels it (two workers: 0 and 1 run first).
        *handles.lock().unwrap() = (0..4)
            .map(|n| Some(pool.submit_with_handle(n).unwrap()))
            .collect();
        gate.open();
        let ends: Vec<Ev> = (0..4)
            .map(|n| {
                let handle = handles.lock().unwrap()[n].take().unwrap();
                handle.wait().unwrap()
            })
            .collect();
        let answers = answers.lock().unwrap().clone();
        let of = |n: u32| answers.iter().find(|a| a.0 == n).copied();
        // Task 3 cancelled itself: its run is told at once, and it ends cancelled.
        assert_eq!(of(3), Some((3, Cancellation::Running, true)), "{answers:?}");
        assert!(
            matches!(
                ends[3],
                Event::Cancelled {
                    worker: Some(_),
                    task: 3
                }
            ),
            "{:?}",
            ends[3]
        );
        // Task 1 cancelled task 2: queued (never ran) or already running, never both.
        match (of(1), &ends[2]) {
            (Some((1, Cancellation::Unstarted, false)), Event::Cancelled { worker: None, .. }) => {}
            (
                Some((1, Cancellation::Running, false)),
                Event::Cancelled {
                    worker: Some(_), ..
                },
            ) => {}
            (
                Some((1, Cancellation::Running | Cancellation::Finished, false)),
                Event::Completed { .. },
            ) => {}
            other => panic!("{other:?}"),
        }
        assert!(matches!(ends[0], Event::Completed { task: 0, .. }));
        assert!(matches!(ends[1], Event::Completed { task: 1, .. }));
        let snap = pool.drain().snapshot;
        assert!(snap.adds_up());
        assert_eq!(snap.completed + snap.cancelled, 4);
    });
}

/// After the outcome, a cancel changes nothing (`Finished`), the outcome is still there to
/// take; twice on a queued task, both say `Unstarted` and one event comes.
#[test]
fn cancel_after_the_outcome_and_twice_changes_nothing_more() {
    within(LIMIT, "cancel after the outcome, and twice", || {
        let gate = Gate::default();
        let g = gate.clone();
        let (sink, events) = channel_sink();
        let pool = Pool::<u32, u32, String, 8, 1, Handles>::start(
            Policy::DEFAULT,
            move |_, &n| {
                g.wait();
                Ok(n * 2)
            },
            sink,
        )
        .unwrap();
        let done = pool.submit_with_handle(1).unwrap();
        let twice = pool.submit_with_handle(2).unwrap();
        assert_eq!(twice.cancel(), Cancellation::Unstarted);
        assert_eq!(twice.cancel(), Cancellation::Unstarted);
        gate.open();
        until(|| done.is_finished());
        assert_eq!(done.cancel(), Cancellation::Finished);
        assert_eq!(done.cancel(), Cancellation::Finished);
        assert!(matches!(
            done.wait(),
            Ok(Event::Completed { output: 2, .. })
        ));
        until(|| twice.is_finished());
        assert_eq!(twice.cancel(), Cancellation::Finished);
        assert!(matches!(
            twice.wait(),
            Ok(Event::Cancelled {
                worker: None,
                task: 2
            })
        ));
        let snap = pool.drain().snapshot;
        assert_eq!((snap.completed, snap.cancelled), (1, 1));
        assert!(snap.adds_up());
        assert_eq!(events.try_iter().filter_map(|e| task_of(&e)).count(), 0);
    });
}

/// A handle dropped after its task was cancelled — queued, or running — leaves the
/// `Cancelled` event to the sink, once.
#[test]
fn a_dropped_handle_of_a_cancelled_task_leaves_the_event_to_the_sink_once() {
    within(LIMIT, "dropped handles of cancelled tasks", || {
        let started = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&started);
        let (sink, events) = channel_sink();
        let pool = Pool::<u32, u32, String, 8, 1, Handles>::start(
            Policy::DEFAULT,
            move |ctx, &n| {
                if n == 0 {
                    s.store(true, Ordering::SeqCst);
                    while !ctx.is_cancelled() {
                        thread::sleep(Duration::from_millis(1));
                    }
                }
                Ok(n)
            },
            sink,
        )
        .unwrap();
        let running = pool.submit_with_handle(0).unwrap();
        let queued = pool.submit_with_handle(1).unwrap();
        until(|| started.load(Ordering::SeqCst));
        assert_eq!(queued.cancel(), Cancellation::Unstarted);
        drop(queued);
        assert_eq!(running.cancel(), Cancellation::Running);
        drop(running);
        let snap = pool.drain().snapshot;
        assert_eq!(snap.cancelled, 2);
        assert!(snap.adds_up());
        let mut ends: Vec<(Option<usize>, u32)> = events
            .try_iter()
            .filter_map(|e| match e {
                Event::Cancelled { worker, task } => Some((worker, task)),
                other if task_of(&other).is_some() => panic!("unexpected {other:?}"),
                _ => None,
            })
            .collect();
        ends.sort();
        assert_eq!(ends, [(None, 1), (Some(0), 0)]);
    });
}

/// A deadline shorter than the task: heartbeats do not extend it, and it overrides a longer
/// policy watchdog. The run is reported hung and condemned; the task sees it, returns, and —
/// one attempt allowed — is dead-lettered with the deadline as the cause. Without a deadline,
/// the same task under the same watchdog runs to its end.
#[test]
fn a_deadline_shorter_than_the_task_fires_despite_heartbeats() {
    within(LIMIT, "a deadline with heartbeats", || {
        let (sink, events) = channel_sink();
        let policy = Policy::DEFAULT
            .with_watchdog(10_000)
            .unwrap()
            .with_delivery(Delivery::at_least_once(1).unwrap());
        let pool = Pool::<u32, u32, String, 8, 1, Handles>::start(
            policy,
            |ctx, &n| {
                let start = Instant::now();
                // Heartbeats every millisecond, for 300 ms unless told to stop.
                while start.elapsed() < Duration::from_millis(300) {
                    ctx.heartbeat();
                    if ctx.is_cancelled() {
                        return Ok(0);
                    }
                    thread::sleep(Duration::from_millis(1));
                }
                Ok(n)
            },
            sink,
        )
        .unwrap();
        let started = Instant::now();
        let timed = pool
            .submit_with_options(1, TaskOptions::DEFAULT.with_deadline(30))
            .unwrap();
        match timed.wait().unwrap() {
            Event::Crashed {
                task:
                    Some(Disposition::DeadLettered {
                        task: 1,
                        attempts: 1,
                    }),
                cause,
                ..
            } => assert!(cause.contains("deadline of 30 ms"), "{cause}"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_millis(290),
            "the task ran to its end: {:?}",
            started.elapsed()
        );
        let free = pool.submit_with_handle(2).unwrap();
        assert!(matches!(
            free.wait(),
            Ok(Event::Completed { output: 2, .. })
        ));
        let snap = pool.drain().snapshot;
        assert!(snap.adds_up());
        assert_eq!((snap.completed, snap.dead_lettered), (1, 1));
        let hung = events
            .try_iter()
            .filter(|e| matches!(e, Event::Hung { .. }))
            .count();
        assert_eq!(hung, 1, "the deadline's hang is reported once");
    });
}

/// A deadline in a pool whose policy has no watchdog: its clock still runs, and the run is
/// condemned at its deadline — also when the pool sat idle first (its clock must not be stale
/// when the task starts) — while untimed tasks are never judged.
#[test]
fn a_deadline_works_without_a_policy_watchdog() {
    within(LIMIT, "a deadline without a watchdog", || {
        let (sink, events) = channel_sink();
        let pool = Pool::<u32, u32, String, 8, 1, Handles>::start(
            Policy::DEFAULT.with_delivery(Delivery::at_least_once(1).unwrap()),
            |ctx, &n| {
                let start = Instant::now();
                while start.elapsed() < Duration::from_millis(u64::from(n)) {
                    if ctx.is_cancelled() {
                        return Ok(0);
                    }
                    thread::sleep(Duration::from_millis(1));
                }
                Ok(n)
            },
            sink,
        )
        .unwrap();
        assert!(pool.snapshot().adds_up());
        // Idle for a while: a stale clock would condemn the next timed task at once.
        thread::sleep(Duration::from_millis(150));
        let quick = pool
            .submit_with_options(20, TaskOptions::DEFAULT.with_deadline(100))
            .unwrap();
        assert!(
            matches!(quick.wait(), Ok(Event::Completed { output: 20, .. })),
            "a task well within its deadline was condemned"
        );
        let slow = pool
            .submit_with_options(5_000, TaskOptions::DEFAULT.with_deadline(40))
            .unwrap();
        assert!(
            matches!(
                slow.wait(),
                Ok(Event::Crashed {
                    task: Some(Disposition::DeadLettered { task: 5_000, .. }),
                    ..
                })
            ),
            "the deadline did not fire"
        );
        // Untimed: longer than every deadline so far, never judged.
        let untimed = pool.submit_with_handle(200).unwrap();
        assert!(matches!(
            untimed.wait(),
            Ok(Event::Completed { output: 200, .. })
        ));
        let snap = pool.drain().snapshot;
        assert!(snap.adds_up());
        assert_eq!((snap.completed, snap.dead_lettered), (2, 1));
        let hung: Vec<Ev> = events
            .try_iter()
            .filter(|e| matches!(e, Event::Hung { .. }))
            .collect();
        assert_eq!(hung.len(), 1, "{hung:?}");
    });
}

/// Shutdowns with cancelled tasks still queued: a drain runs through them (each ends
/// `Cancelled`, counted cancelled); an abort hands them back (each ends `HandedBack`, counted
/// handed back). Either way every handle gets one event and the snapshot adds up.
#[test]
fn shutdowns_with_cancelled_tasks_queued_add_up() {
    for shutdown in ["drain", "abort"] {
        within(
            LIMIT,
            &format!("{shutdown} with cancelled tasks queued"),
            move || {
                let gate = Gate::default();
                let g = gate.clone();
                let (sink, events) = channel_sink();
                let pool = Pool::<u32, u32, String, 16, 1, Handles>::start(
                    Policy::DEFAULT,
                    move |_, &n| {
                        g.wait();
                        Ok(n)
                    },
                    sink,
                )
                .unwrap();
                let handles: Vec<Handle> = (0..10)
                    .map(|n| pool.submit_with_handle(n).unwrap())
                    .collect();
                until(|| pool.snapshot().in_flight == 1);
                for handle in handles.iter().skip(1).step_by(2) {
                    assert_eq!(handle.cancel(), Cancellation::Unstarted);
                }
                let report = match shutdown {
                    "drain" => {
                        pool.begin_drain();
                        gate.open();
                        pool.drain()
                    }
                    _ => {
                        pool.begin_abort();
                        gate.open();
                        pool.abort()
                    }
                };
                let snap = report.snapshot;
                assert!(snap.adds_up(), "{snap:?}");
                assert!(report.handed_back.is_empty(), "the handles took them");
                let ends: Vec<Ev> = handles.into_iter().map(|h| h.wait().unwrap()).collect();
                let count = |f: fn(&Ev) -> bool| ends.iter().filter(|e| f(e)).count();
                let completed = count(|e| matches!(e, Event::Completed { .. }));
                let cancelled = count(|e| matches!(e, Event::Cancelled { worker: None, .. }));
                let back = count(|e| matches!(e, Event::HandedBack { .. }));
                assert_eq!(completed + cancelled + back, 10, "{ends:?}");
                assert_eq!(
                    (snap.completed, snap.cancelled, snap.handed_back),
                    (completed, cancelled, back),
                    "{ends:?}"
                );
                match shutdown {
                    "drain" => assert_eq!((completed, cancelled), (5, 5)),
                    _ => assert_eq!((completed, back), (1, 9)),
                }
                assert_eq!(events.try_iter().filter_map(|e| task_of(&e)).count(), 0);
            },
        );
    }
}

/// A task submitted with a deadline crashes on its first run; its retry (a new run, on a
/// replacement thread) gets the deadline again, from its own start: the retry hangs past it
/// and is condemned, and the third run completes.
#[test]
fn a_deadline_applies_to_the_retry_after_a_crash() {
    quiet_deliberate_panics();
    within(LIMIT, "a deadline on a retry", || {
        let (sink, events) = channel_sink();
        let policy = Policy::DEFAULT
            .with_intensity(Intensity::unlimited())
            .with_delivery(Delivery::at_least_once(3).unwrap());
        let pool = Pool::<u32, u32, String, 8, 1, Handles>::start(
            policy,
            |ctx, &n| match ctx.attempt() {
                1 => panic!("{DELIBERATE}: first run"),
                2 => {
                    // Hangs until condemned (heartbeating, which does not help).
                    while !ctx.is_cancelled() {
                        ctx.heartbeat();
                        thread::sleep(Duration::from_millis(1));
                    }
                    Ok(0)
                }
                _ => Ok(n),
            },
            sink,
        )
        .unwrap();
        let handle = pool
            .submit_with_options(7, TaskOptions::DEFAULT.with_deadline(40))
            .unwrap();
        assert!(
            matches!(handle.wait(), Ok(Event::Completed { output: 7, .. })),
            "the third run completes"
        );
        let snap = pool.drain().snapshot;
        assert!(snap.adds_up());
        assert_eq!((snap.completed, snap.crashes()), (1, 2));
        let crashes: Vec<String> = events
            .try_iter()
            .filter_map(|e| match e {
                Event::Crashed {
                    cause,
                    task: Some(Disposition::Retried { .. }),
                    ..
                } => Some(cause),
                _ => None,
            })
            .collect();
        assert_eq!(crashes.len(), 2, "{crashes:?}");
        assert!(crashes[0].contains("first run"), "{crashes:?}");
        assert!(crashes[1].contains("deadline of 40 ms"), "{crashes:?}");
    });
}

/// A cancel while the task's retry waits for its replacement thread (held back by the restart
/// backoff): `cancel` finds the crashed run (`Running`, and that run has ended), the retry never
/// runs, and the handle resolves `Cancelled` without a worker; the crash before it went to the
/// sink.
#[test]
fn a_cancel_between_a_crash_and_its_retry_stops_the_retry() {
    quiet_deliberate_panics();
    within(LIMIT, "cancel before a retry", || {
        let runs = Arc::new(AtomicUsize::new(0));
        let r = Arc::clone(&runs);
        let (sink, events) = channel_sink();
        let policy = Policy::DEFAULT
            .with_intensity(Intensity::unlimited())
            .with_backoff(foreman_rt::policy::Backoff::new(300, 2, 1_000).unwrap());
        let pool = Pool::<u32, u32, String, 8, 1, Handles>::start(
            policy,
            move |_, _| {
                r.fetch_add(1, Ordering::SeqCst);
                panic!("{DELIBERATE}: first run")
            },
            sink,
        )
        .unwrap();
        let handle = pool.submit_with_handle(1).unwrap();
        match events.recv_timeout(Duration::from_secs(20)) {
            Ok(Event::Crashed {
                task: Some(Disposition::Retried { attempt: 2 }),
                ..
            }) => {}
            other => panic!("hung: no crash reported ({other:?})"),
        }
        // The replacement sleeps out 300 ms of backoff before it takes the retry.
        assert_eq!(handle.cancel(), Cancellation::Running);
        assert!(
            matches!(
                handle.wait(),
                Ok(Event::Cancelled {
                    worker: None,
                    task: 1
                })
            ),
            "the retry ended cancelled without running"
        );
        let snap = pool.drain().snapshot;
        assert!(snap.adds_up(), "{snap:?}");
        assert_eq!(runs.load(Ordering::SeqCst), 1, "the retry ran");
        assert_eq!((snap.cancelled, snap.crashes()), (1, 1));
    });
}

/// A task that cancels its own handle and then panics: the crash of a cancelled run is not a
/// crash to retry — the handle resolves `Cancelled` with the worker, nothing is retried, the
/// restart intensity is not charged (it allows no restart here), and the pool goes on.
#[test]
fn a_cancelled_run_that_panics_ends_cancelled_and_is_not_retried() {
    quiet_deliberate_panics();
    within(LIMIT, "a cancelled run that panics", || {
        let runs = Arc::new(AtomicUsize::new(0));
        let mine: Arc<OnceLock<Handle>> = Arc::default();
        let (r, m) = (Arc::clone(&runs), Arc::clone(&mine));
        let (sink, events) = channel_sink();
        let policy = Policy::DEFAULT
            .with_intensity(Intensity::new(0, 60_000).unwrap())
            .with_delivery(Delivery::at_least_once(5).unwrap());
        let pool = Pool::<u32, u32, String, 8, 1, Handles>::start(
            policy,
            move |_, &n| {
                r.fetch_add(1, Ordering::SeqCst);
                if n == 1 {
                    until(|| m.get().is_some());
                    assert_eq!(m.get().unwrap().cancel(), Cancellation::Running);
                    panic!("{DELIBERATE}: after cancelling itself");
                }
                Ok(n)
            },
            sink,
        )
        .unwrap();
        let _ = mine.set(pool.submit_with_handle(1).unwrap());
        let after = pool.submit_with_handle(2).unwrap();
        assert!(
            matches!(after.wait(), Ok(Event::Completed { output: 2, .. })),
            "the pool went on (no escalation)"
        );
        let snap = pool.drain().snapshot;
        assert!(snap.adds_up(), "{snap:?}");
        assert_eq!(runs.load(Ordering::SeqCst), 2, "task 1 was retried");
        // Its thread was replaced (a restart), but not charged: an intensity of 0 would have
        // escalated, and task 2 would have been handed back.
        assert_eq!((snap.cancelled, snap.completed, snap.restarts()), (1, 1, 1));
        let handle = Arc::into_inner(mine)
            .and_then(OnceLock::into_inner)
            .expect("the pool is gone");
        assert!(matches!(
            handle.wait(),
            Ok(Event::Cancelled {
                worker: Some(0),
                task: 1
            })
        ));
        assert_eq!(events.try_iter().filter_map(|e| task_of(&e)).count(), 0);
    });
}

/// The first task with a deadline in a pool without a watchdog, after the pool sat idle: its
/// run's start must be stamped with a clock brought up to date by the submission, not with the
/// clock of the pool's start (which would make the run look 120 ms old, past its 100 ms
/// deadline, at the watchdog's first tick). Whether the worker takes the task before the
/// watchdog thread wakes is a race: tried on twelve fresh pools (without the submission's tick,
/// one try in eight failed here).
#[test]
fn a_first_deadline_after_idling_counts_from_the_runs_start() {
    within(LIMIT, "a first deadline after idling", || {
        for round in 0..12 {
            let pool = Pool::<u32, u32, String, 8, 1, Handles>::start(
                Policy::DEFAULT.with_delivery(Delivery::at_least_once(1).unwrap()),
                |ctx, &n| {
                    let start = Instant::now();
                    while start.elapsed() < Duration::from_millis(u64::from(n)) {
                        if ctx.is_cancelled() {
                            return Ok(0);
                        }
                        thread::sleep(Duration::from_millis(1));
                    }
                    Ok(n)
                },
                |_| {},
            )
            .unwrap();
            thread::sleep(Duration::from_millis(120));
            let timed = pool
                .submit_with_options(20, TaskOptions::DEFAULT.with_deadline(100))
                .unwrap();
            assert!(
                matches!(timed.wait(), Ok(Event::Completed { output: 20, .. })),
                "round {round}: a task well within its deadline was condemned"
            );
            assert_eq!(pool.drain().snapshot.completed, 1);
        }
    });
}
