//! Result handles on the thread host ([`Pool::submit_with_handle`]): each handle resolves to
//! its task's one final event, exactly once, whatever ends the task (completion, failure,
//! dead-lettering, loss, a shutdown); a crash before a successful retry does not resolve it;
//! dropped handles leave their outcome to the sink or the report; waiting on a handle inside
//! the pool never hangs it.
//!
//! Every test runs under a watchdog ([`within`]) that fails it with `hung: ...` rather than
//! blocking the run.

use std::future::Future;
use std::panic;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock, Weak};
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Duration;

use foreman_rt::host::threads::{Handles, Pool, TaskHandle};
use foreman_rt::host::Event;
use foreman_rt::policy::{Delivery, Intensity, Policy};
use foreman_rt::{Disposition, SubmitError};
use foreman_tests::{channel_sink, quiet_deliberate_panics, within, DELIBERATE};

/// How long any one test may take before it counts as hung.
const LIMIT: Duration = Duration::from_secs(20);

type Ev = Event<u32, u32, String, String>;

/// The task of a final event.
fn task_of(event: &Ev) -> Option<u32> {
    match event {
        Event::Completed { task, .. } | Event::Failed { task, .. } => Some(*task),
        Event::HandedBack { task } => Some(*task),
        Event::Crashed { task, .. } => task.as_ref().and_then(Disposition::task).copied(),
        _ => None,
    }
}

/// Wakes a parked thread.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// A minimal executor: polls `future` on this thread, parking between wake-ups. Counts polls.
fn block_on<F: Future>(future: F) -> (F::Output, usize) {
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = TaskContext::from_waker(&waker);
    let mut future = pin!(future);
    let mut polls = 0;
    loop {
        polls += 1;
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return (output, polls);
        }
        thread::park();
    }
}

/// A gate that tasks wait at until it is opened.
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<bool>, std::sync::Condvar)>);

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

#[test]
fn each_kind_of_outcome_reaches_its_handle_once_and_not_the_sink() {
    quiet_deliberate_panics();
    within(LIMIT, "each kind of outcome", || {
        let (sink, events) = channel_sink();
        // At-least-once with 2 attempts: task 3 panics every time and is dead-lettered.
        let policy = Policy::DEFAULT
            .with_intensity(Intensity::unlimited())
            .with_delivery(Delivery::at_least_once(2).unwrap());
        let pool = Pool::<u32, u32, String, 8, 2, Handles>::start(
            policy,
            |_, &n| match n {
                2 => Err(format!("{n} failed")),
                3 => panic!("{DELIBERATE}: task 3"),
                _ => Ok(n * 10),
            },
            sink,
        )
        .unwrap();
        let handles: Vec<_> = (1..=3)
            .map(|n| pool.submit_with_handle(n).unwrap())
            .collect();
        let outcomes: Vec<Ev> = handles.into_iter().map(|h| h.wait().unwrap()).collect();
        assert!(matches!(
            outcomes[0],
            Event::Completed {
                task: 1,
                output: 10,
                ..
            }
        ));
        assert!(
            matches!(&outcomes[1], Event::Failed { task: 2, error, .. } if error == "2 failed")
        );
        assert!(
            matches!(
                &outcomes[2],
                Event::Crashed { task: Some(Disposition::DeadLettered { task: 3, attempts: 2 }), cause, .. }
                    if cause.contains("task 3")
            ),
            "{:?}",
            outcomes[2]
        );
        let report = pool.drain();
        assert!(report.handed_back.is_empty());
        // The sink saw only the crash before the retry: no final event of a handle's task.
        let seen: Vec<Ev> = events.try_iter().collect();
        assert!(seen.iter().all(|e| task_of(e).is_none()), "{seen:?}");
        assert_eq!(
            seen.iter()
                .filter(|e| matches!(
                    e,
                    Event::Crashed {
                        task: Some(Disposition::Retried { .. }),
                        ..
                    }
                ))
                .count(),
            1,
            "{seen:?}"
        );
    });
}

#[test]
fn a_lost_task_reaches_its_handle_with_the_cause() {
    quiet_deliberate_panics();
    within(LIMIT, "a lost task", || {
        let (sink, events) = channel_sink();
        let policy = Policy::DEFAULT
            .with_intensity(Intensity::unlimited())
            .with_delivery(Delivery::AtMostOnce);
        let pool = Pool::<u32, u32, String, 8, 1, Handles>::start(
            policy,
            |_, _| panic!("{DELIBERATE}: lost"),
            sink,
        )
        .unwrap();
        let outcome = pool.submit_with_handle(9).unwrap().wait().unwrap();
        assert!(
            matches!(&outcome, Event::Crashed { task: Some(Disposition::Lost(9)), cause, .. } if cause.contains("lost")),
            "{outcome:?}"
        );
        drop(pool);
        assert!(events.try_iter().all(|e| task_of(&e).is_none()));
    });
}

#[test]
fn a_task_that_crashes_then_succeeds_resolves_once_with_the_success() {
    quiet_deliberate_panics();
    within(LIMIT, "crash then success", || {
        let (sink, events) = channel_sink();
        let policy = Policy::DEFAULT.with_intensity(Intensity::unlimited());
        let pool = Pool::<u32, u32, String, 8, 1, Handles>::start(
            policy,
            |ctx, &n| {
                if ctx.attempt() < 3 {
                    panic!("{DELIBERATE}: attempt {}", ctx.attempt());
                }
                Ok(n + ctx.attempt())
            },
            sink,
        )
        .unwrap();
        let handle = pool.submit_with_handle(100).unwrap();
        let (outcome, _) = block_on(handle);
        assert!(
            matches!(
                outcome,
                Event::Completed {
                    task: 100,
                    output: 103,
                    ..
                }
            ),
            "{outcome:?}"
        );
        drop(pool);
        let retried = events
            .try_iter()
            .filter(|e| {
                matches!(
                    e,
                    Event::Crashed {
                        task: Some(Disposition::Retried { .. }),
                        ..
                    }
                )
            })
            .count();
        assert_eq!(retried, 2, "each crash before the retry went to the sink");
    });
}

#[test]
fn a_handle_dropped_before_or_while_its_task_runs_leaves_the_outcome_to_the_sink() {
    within(LIMIT, "dropped handles", || {
        let (sink, events) = channel_sink();
        let gate = Gate::default();
        let started = Arc::new(AtomicUsize::new(0));
        let (g, s) = (gate.clone(), Arc::clone(&started));
        let pool = Pool::<u32, u32, String, 8, 1, Handles>::start(
            Policy::DEFAULT,
            move |_, &n| {
                s.fetch_add(1, Ordering::SeqCst);
                g.wait();
                Ok(n)
            },
            sink,
        )
        .unwrap();
        let running = pool.submit_with_handle(1).unwrap();
        let queued = pool.submit_with_handle(2).unwrap();
        while started.load(Ordering::SeqCst) == 0 {
            thread::yield_now();
        }
        drop(running); // while it runs
        drop(queued); // before it runs
        gate.open();
        let report = pool.drain();
        assert!(report.handed_back.is_empty());
        let mut done: Vec<u32> = events.try_iter().filter_map(|e| task_of(&e)).collect();
        done.sort();
        assert_eq!(done, [1, 2]);
    });
}

#[test]
fn a_handle_dropped_after_its_outcome_arrived_drops_it_and_nothing_else() {
    within(LIMIT, "dropped after the outcome", || {
        let (sink, events) = channel_sink();
        let pool =
            Pool::<u32, u32, String, 8, 1, Handles>::start(Policy::DEFAULT, |_, &n| Ok(n), sink)
                .unwrap();
        let handle = pool.submit_with_handle(5).unwrap();
        while !handle.is_finished() {
            thread::yield_now();
        }
        drop(handle);
        pool.drain();
        assert_eq!(events.try_iter().filter_map(|e| task_of(&e)).count(), 0);
    });
}

#[test]
fn a_handle_can_be_waited_on_from_another_thread_and_awaited() {
    within(LIMIT, "wait from another thread, await", || {
        let gate = Gate::default();
        let g = gate.clone();
        let pool = Pool::<u32, u32, String, 8, 2, Handles>::start(
            Policy::DEFAULT,
            move |_, &n| {
                g.wait();
                Ok(n * 2)
            },
            |_| {},
        )
        .unwrap();
        let waited = pool.submit_with_handle(1).unwrap();
        let awaited = pool.submit_with_handle(2).unwrap();
        let waiter = thread::spawn(move || waited.wait());
        let awaiter = thread::spawn(move || block_on(awaited));
        thread::sleep(Duration::from_millis(20)); // both wait (or poll) before the outcome lands
        gate.open();
        assert!(matches!(
            waiter.join().unwrap(),
            Ok(Event::Completed { output: 2, .. })
        ));
        let (outcome, polls) = awaiter.join().unwrap();
        assert!(matches!(outcome, Event::Completed { output: 4, .. }));
        assert!(polls >= 1);
        pool.drain();
    });
}

#[test]
fn wait_timeout_gives_the_handle_back_and_then_the_outcome() {
    within(LIMIT, "wait_timeout", || {
        let gate = Gate::default();
        let g = gate.clone();
        let pool = Pool::<u32, u32, String, 8, 1, Handles>::start(
            Policy::DEFAULT,
            move |_, &n| {
                g.wait();
                Ok(n)
            },
            |_| {},
        )
        .unwrap();
        let handle = pool.submit_with_handle(3).unwrap();
        let handle = handle.wait_timeout(Duration::from_millis(5)).unwrap_err();
        let handle = handle.wait_timeout(Duration::ZERO).unwrap_err();
        assert!(!handle.is_finished());
        gate.open();
        let outcome = handle.wait_timeout(Duration::from_secs(15)).unwrap();
        assert!(matches!(outcome, Event::Completed { task: 3, .. }));
        pool.drain();
    });
}

type Selfish = Pool<u32, u32, String, 4, 1, Handles>;

/// A one-worker pool whose tasks can reach the pool, and whose task `0` waits on its own
/// handle (passed through `mine`) with `wait`, and task `1` with `wait_timeout`.
#[test]
fn a_task_waiting_on_its_own_handle_gets_it_back_instead_of_hanging_the_pool() {
    within(LIMIT, "a task waits on its own handle", || {
        let mine: Arc<Mutex<Option<TaskHandle<u32, u32, String>>>> = Arc::default();
        let (told, results) = mpsc::channel();
        let told = Mutex::new(told);
        let m = Arc::clone(&mine);
        let pool = Selfish::start(
            Policy::DEFAULT,
            move |_, &n| {
                let handle = loop {
                    if let Some(handle) = m.lock().unwrap().take() {
                        break handle;
                    }
                    thread::yield_now();
                };
                let back = match n {
                    0 => handle.wait().map(drop),
                    _ => handle.wait_timeout(Duration::from_millis(10)).map(drop),
                };
                // Its own outcome cannot have arrived: the handle comes back.
                told.lock().unwrap().send(back.is_err()).unwrap();
                Ok(n)
            },
            |_| {},
        )
        .unwrap();
        for n in 0..2 {
            let handle = pool.submit_with_handle(n).unwrap();
            *mine.lock().unwrap() = Some(handle);
            assert!(results.recv().unwrap(), "task {n} got its own handle back");
        }
        // The handles were dropped inside the tasks: the pool still shuts down.
        assert_eq!(pool.drain().snapshot.completed, 2);
    });
}

/// Tasks of a one-worker pool wait (inside the pool) on the handle of a task queued behind
/// them: `wait` gives the handle back at once, so the worker moves on and the queued task
/// runs; every shutdown returns.
#[test]
fn tasks_waiting_on_queued_tasks_handles_do_not_stall_any_shutdown() {
    for shutdown in ["drain", "abort", "drop"] {
        within(
            LIMIT,
            &format!("waiting on another task's handle, then {shutdown}"),
            move || {
                let me: Arc<OnceLock<Weak<Selfish>>> = Arc::default();
                let m = Arc::clone(&me);
                let gave_back = Arc::new(AtomicUsize::new(0));
                let g = Arc::clone(&gave_back);
                let (sink, events) = channel_sink();
                let pool = Arc::new(
                    Selfish::start(
                        Policy::DEFAULT,
                        move |_, &n| {
                            if n == 0 {
                                let pool = m.get().and_then(Weak::upgrade).unwrap();
                                let child = pool.submit_with_handle(1).unwrap();
                                // One worker: the child cannot run while this task waits.
                                match child.wait() {
                                    Err(child) => {
                                        g.fetch_add(1, Ordering::SeqCst);
                                        drop(child); // its outcome goes to the sink
                                    }
                                    Ok(_) => panic!("the child ran while its only worker waited"),
                                }
                            }
                            Ok(n)
                        },
                        sink,
                    )
                    .unwrap(),
                );
                me.set(Arc::downgrade(&pool)).unwrap();
                let parent = pool.submit_with_handle(0).unwrap();
                assert!(matches!(
                    parent.wait(),
                    Ok(Event::Completed { task: 0, .. })
                ));
                let pool = Arc::into_inner(pool).expect("no task holds the pool any more");
                let report = match shutdown {
                    "drain" => Some(pool.drain()),
                    "abort" => Some(pool.abort()),
                    _ => {
                        drop(pool);
                        None
                    }
                };
                assert_eq!(gave_back.load(Ordering::SeqCst), 1);
                // The child ended once: completed (sink) or handed back (report or sink).
                let sunk = events.try_iter().filter_map(|e| task_of(&e)).count();
                let reported = report.map_or(0, |r| r.handed_back.len());
                assert_eq!(sunk + reported, 1, "{shutdown}");
            },
        );
    }
}

/// Shutdowns with handles outstanding: every handle resolves, completed or handed back (with
/// its task), and no task goes to the report or the sink instead.
#[test]
fn every_shutdown_resolves_outstanding_handles() {
    for shutdown in ["drain", "abort", "drop"] {
        within(
            LIMIT,
            &format!("{shutdown} with outstanding handles"),
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
                let handles: Vec<_> = (0..10)
                    .map(|n| pool.submit_with_handle(n).unwrap())
                    .collect();
                let opener = {
                    let gate = gate.clone();
                    thread::spawn(move || {
                        thread::sleep(Duration::from_millis(20));
                        gate.open();
                    })
                };
                let report = match shutdown {
                    "drain" => Some(pool.drain()),
                    "abort" => Some(pool.abort()),
                    _ => {
                        drop(pool);
                        None
                    }
                };
                opener.join().unwrap();
                if let Some(report) = &report {
                    assert!(
                        report.handed_back.is_empty(),
                        "handed back to the handles instead"
                    );
                }
                assert_eq!(events.try_iter().filter_map(|e| task_of(&e)).count(), 0);
                let (mut completed, mut handed_back) = (Vec::new(), Vec::new());
                for handle in handles {
                    assert!(
                        handle.is_finished(),
                        "{shutdown} returned with a handle unresolved"
                    );
                    match handle.wait().unwrap() {
                        Event::Completed { task, .. } => completed.push(task),
                        Event::HandedBack { task } => handed_back.push(task),
                        other => panic!("unexpected {other:?}"),
                    }
                }
                match shutdown {
                    "drain" => assert_eq!(completed, (0..10).collect::<Vec<_>>()),
                    _ => {
                        assert!(completed.len() <= 1, "only the running task finishes");
                        let mut all = [completed, handed_back].concat();
                        all.sort();
                        assert_eq!(all, (0..10).collect::<Vec<_>>());
                    }
                }
            },
        );
    }
}

#[test]
fn an_abort_gives_dropped_handles_tasks_to_the_report() {
    within(LIMIT, "abort with dropped handles", || {
        let gate = Gate::default();
        let g = gate.clone();
        let pool = Pool::<u32, u32, String, 16, 1, Handles>::start(
            Policy::DEFAULT,
            move |_, &n| {
                g.wait();
                Ok(n)
            },
            |_| {},
        )
        .unwrap();
        for n in 0..5 {
            drop(pool.submit_with_handle(n).unwrap());
        }
        pool.begin_abort();
        gate.open();
        let report = pool.abort();
        assert_eq!(report.handed_back.len() + report.snapshot.completed, 5);
        assert!(!report.handed_back.is_empty());
    });
}

#[test]
fn submitting_with_a_handle_after_close_returns_the_task() {
    within(LIMIT, "submit after close", || {
        let pool =
            Pool::<u32, u32, String, 1, 1, Handles>::start(Policy::DEFAULT, |_, &n| Ok(n), |_| {})
                .unwrap();
        pool.begin_drain();
        assert!(matches!(
            pool.submit_with_handle(7),
            Err(SubmitError::Closed(7))
        ));
        assert!(matches!(
            pool.try_submit_with_handle(8),
            Err(SubmitError::Closed(8))
        ));
        pool.drain();
    });
}

#[test]
fn try_submit_with_a_handle_to_a_full_queue_returns_the_task() {
    within(LIMIT, "try_submit_with_handle on a full queue", || {
        let gate = Gate::default();
        let g = gate.clone();
        let pool = Pool::<u32, u32, String, 1, 1, Handles>::start(
            Policy::DEFAULT,
            move |_, &n| {
                g.wait();
                Ok(n)
            },
            |_| {},
        )
        .unwrap();
        let mut handles = Vec::new();
        let mut refused = None;
        for n in 0..3 {
            match pool.try_submit_with_handle(n) {
                Ok(handle) => handles.push(handle),
                Err(SubmitError::Full(task)) => {
                    refused = Some(task);
                    break;
                }
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert!(
            refused.is_some(),
            "a queue of 1 and one worker take at most 2"
        );
        gate.open();
        for handle in handles {
            assert!(matches!(handle.wait(), Ok(Event::Completed { .. })));
        }
        pool.drain();
    });
}

/// A task aborts its own pool (as the last owner, dropping it), with handles outstanding: the
/// shutdown cannot wait there, so the last thread out hands the queued tasks back — to their
/// handles.
#[test]
fn a_shutdown_from_inside_the_pool_resolves_outstanding_handles() {
    within(
        LIMIT,
        "an orphaned shutdown with outstanding handles",
        || {
            let owner: Arc<Mutex<Option<Selfish>>> = Arc::default();
            let o = Arc::clone(&owner);
            let (sink, events) = channel_sink();
            let pool = Selfish::start(
                Policy::DEFAULT,
                move |_, &n| {
                    if n == 0 {
                        // Take the pool from its owner and drop it here: an abort on its own
                        // thread, which starts the shutdown without waiting.
                        let pool = loop {
                            if let Some(pool) = o.lock().unwrap().take() {
                                break pool;
                            }
                            thread::yield_now();
                        };
                        drop(pool);
                    }
                    Ok(n)
                },
                sink,
            )
            .unwrap();
            let handles: Vec<_> = (0..4)
                .map(|n| pool.submit_with_handle(n).unwrap())
                .collect();
            *owner.lock().unwrap() = Some(pool);
            let mut ends = Vec::new();
            for handle in handles {
                match handle.wait().unwrap() {
                    Event::Completed { task, .. } => ends.push(("completed", task)),
                    Event::HandedBack { task } => ends.push(("handed back", task)),
                    other => panic!("unexpected {other:?}"),
                }
            }
            assert_eq!(ends[0], ("completed", 0));
            assert!(
                ends[1..].iter().all(|&(end, _)| end == "handed back"),
                "{ends:?}"
            );
            assert_eq!(events.try_iter().filter_map(|e| task_of(&e)).count(), 0);
        },
    );
}
