//! Adversarial tests of worker recycling and restart backoff on the thread host: drains and
//! aborts while slots restart, crash loops that fill the intensity window while backing off,
//! recycling and crashes in the same run, and a sink that shuts its own pool down. Every test
//! is bounded by `within`: a hang fails with "hung: …".

use std::collections::HashMap;
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use foreman_rt::host::{threads::Pool, Event};
use foreman_rt::policy::{Backoff, Delivery, Intensity, Policy, MAX_DURATION};
use foreman_rt::{Decision, Disposition, Shutdown, SupervisorState};
use foreman_tests::within;

const LIMIT: Duration = Duration::from_secs(30);

type Events = mpsc::Receiver<Event<u32, u32, (), String>>;

/// The final outcome of each task in `events` and the report's hand-backs, by task: every
/// accepted task must have exactly one.
fn outcomes(events: &[Event<u32, u32, (), String>], handed_back: &[u32]) -> HashMap<u32, u32> {
    let mut count = HashMap::new();
    for event in events {
        let task = match event {
            Event::Completed { task, .. } | Event::Failed { task, .. } => Some(*task),
            Event::HandedBack { task } => Some(*task),
            Event::Crashed {
                task:
                    Some(
                        Disposition::Lost(task)
                        | Disposition::DeadLettered { task, .. }
                        | Disposition::HandedBack(task),
                    ),
                ..
            } => Some(*task),
            _ => None,
        };
        if let Some(task) = task {
            *count.entry(task).or_insert(0) += 1;
        }
    }
    for task in handed_back {
        *count.entry(*task).or_insert(0) += 1;
    }
    count
}

fn collect(events: &Events) -> Vec<Event<u32, u32, (), String>> {
    events.try_iter().collect()
}

/// One worker recycled after every task, a queue kept full by a blocking producer, then a
/// drain while the slot keeps restarting: every task runs exactly once.
#[test]
fn a_drain_while_a_single_recycled_slot_restarts_runs_every_task_once() {
    within(LIMIT, "drain with a recycled single worker", || {
        let (send, events) = mpsc::channel();
        let pool = Arc::new(
            Pool::<u32, u32, (), 4, 1>::start(
                Policy::DEFAULT.with_recycling(1).unwrap(),
                |_, &n| Ok(n),
                move |event| send.send(event).unwrap(),
            )
            .unwrap(),
        );
        let producer = {
            let pool = Arc::clone(&pool);
            thread::spawn(move || {
                for n in 0..200 {
                    pool.submit(n).unwrap();
                }
            })
        };
        producer.join().unwrap();
        let pool = Arc::into_inner(pool).unwrap();
        let report = pool.drain();
        let events = collect(&events);
        let outcomes = outcomes(&events, &report.handed_back);
        assert_eq!(outcomes.len(), 200);
        assert!(outcomes.values().all(|&n| n == 1), "{outcomes:?}");
        let recycled = events
            .iter()
            .filter(|e| matches!(e, Event::Recycled { .. }))
            .count();
        assert_eq!(report.snapshot.completed, 200);
        assert_eq!(report.snapshot.recycles() as usize, recycled);
        assert!(recycled >= 150, "recycled only {recycled} times");
        assert_eq!(report.snapshot.restarts(), 0);
        assert!(report.snapshot.adds_up());
        assert_eq!(
            report.snapshot.state,
            SupervisorState::Stopped(Shutdown::Drain)
        );
    });
}

/// A task that always crashes, a growing backoff, and an intensity of 3 restarts a minute: the
/// fourth crash escalates (backing off does not hold the intensity back), the delays are
/// slept (20 + 40 + 80 ms at least), and the task ends exactly once.
#[test]
fn a_crash_loop_fills_the_intensity_window_while_backing_off_and_escalates() {
    within(LIMIT, "a crash loop with backoff", || {
        let (send, events) = mpsc::channel();
        let policy = Policy::DEFAULT
            .with_intensity(Intensity::new(3, 60_000).unwrap())
            .with_delivery(Delivery::at_least_once(10).unwrap())
            .with_backoff(Backoff::new(20, 2, 1_000).unwrap());
        let started = Instant::now();
        let pool = Pool::<u32, u32, (), 4, 1>::start(
            policy,
            |_, _| -> Result<u32, ()> { panic!("always") },
            move |event| send.send(event).unwrap(),
        )
        .unwrap();
        pool.submit(1).unwrap();
        while pool.state() == SupervisorState::Running {
            thread::sleep(Duration::from_millis(1));
        }
        let report = pool.abort();
        let elapsed = started.elapsed();
        let events = collect(&events);
        let decisions: Vec<Decision> = events
            .iter()
            .filter_map(|e| match e {
                Event::Crashed { decision, .. } => Some(*decision),
                _ => None,
            })
            .collect();
        assert_eq!(
            decisions,
            [
                Decision::Replace,
                Decision::Replace,
                Decision::Replace,
                Decision::Escalate
            ]
        );
        assert!(elapsed >= Duration::from_millis(139), "after {elapsed:?}");
        let outcomes = outcomes(&events, &report.handed_back);
        assert_eq!(outcomes.get(&1), Some(&1), "{events:?} {report:?}");
        assert!(report.snapshot.adds_up());
        assert_eq!(
            report.snapshot.state,
            SupervisorState::Stopped(Shutdown::Escalation)
        );
    });
}

/// Recycling after every 2 tasks while every fifth task crashes on its first run: each task
/// completes exactly once, the crashes are restarts, the recyclings are not.
#[test]
fn recycling_and_crashes_in_the_same_run_lose_and_duplicate_nothing() {
    within(LIMIT, "recycling and crashes", || {
        let (send, events) = mpsc::channel();
        let policy = Policy::DEFAULT
            .with_intensity(Intensity::unlimited())
            .with_recycling(2)
            .unwrap()
            .with_backoff(Backoff::new(1, 2, 4).unwrap());
        let pool = Pool::<u32, u32, (), 8, 2>::start(
            policy,
            |ctx, &n| {
                if n % 5 == 0 && ctx.attempt() == 1 {
                    panic!("task {n} crashes once");
                }
                Ok(n)
            },
            move |event| send.send(event).unwrap(),
        )
        .unwrap();
        for n in 0..100 {
            pool.submit(n).unwrap();
        }
        let report = pool.drain();
        let events = collect(&events);
        let outcomes = outcomes(&events, &report.handed_back);
        assert_eq!(outcomes.len(), 100);
        assert!(outcomes.values().all(|&n| n == 1), "{outcomes:?}");
        let snap = report.snapshot;
        assert_eq!(
            (snap.completed, snap.crashes(), snap.restarts()),
            (100, 20, 20)
        );
        let recycled = events
            .iter()
            .filter(|e| matches!(e, Event::Recycled { .. }))
            .count();
        assert_eq!(snap.recycles() as usize, recycled);
        assert!(recycled > 0);
        assert!(snap.adds_up());
    });
}

/// The sink shuts its own pool down (`begin_abort`) on the crash whose replacement would sleep
/// out the longest backoff there is: the abort, then dropping the pool, return at once, and
/// the retry comes back exactly once.
#[test]
fn a_sink_that_aborts_its_pool_during_a_maximal_backoff_does_not_wait_it_out() {
    within(LIMIT, "an abort from the sink during a backoff", || {
        type P = Pool<u32, u32, (), 4, 1>;
        let shared: Arc<Mutex<Option<Arc<P>>>> = Arc::new(Mutex::new(None));
        let (send, events) = mpsc::channel();
        let in_sink = Arc::clone(&shared);
        let policy = Policy::DEFAULT
            .with_delivery(Delivery::at_least_once(3).unwrap())
            .with_backoff(Backoff::new(MAX_DURATION, 2, MAX_DURATION).unwrap());
        let pool = Arc::new(
            P::start(
                policy,
                |_, _| -> Result<u32, ()> { panic!("crash") },
                move |event| {
                    if matches!(event, Event::Crashed { .. }) {
                        let pool = in_sink.lock().unwrap().clone();
                        if let Some(pool) = pool {
                            pool.begin_abort();
                        }
                    }
                    send.send(event).unwrap();
                },
            )
            .unwrap(),
        );
        *shared.lock().unwrap() = Some(Arc::clone(&pool));
        pool.submit(7).unwrap();
        while pool.state() == SupervisorState::Running {
            thread::sleep(Duration::from_millis(1));
        }
        shared.lock().unwrap().take();
        let pool = Arc::into_inner(pool).unwrap();
        let report = pool.abort();
        let events = collect(&events);
        let outcomes = outcomes(&events, &report.handed_back);
        assert_eq!(outcomes.get(&7), Some(&1), "{events:?} {report:?}");
        assert!(report.snapshot.adds_up());
        assert_eq!(
            report.snapshot.state,
            SupervisorState::Stopped(Shutdown::Abort)
        );
    });
}

/// Dropping a pool whose only worker's replacement sleeps out the longest backoff there is
/// returns at once, and hands the retry to the sink.
#[test]
fn dropping_a_pool_during_a_maximal_backoff_hands_the_retry_back() {
    within(LIMIT, "dropping the pool during a backoff", || {
        let (send, events) = mpsc::channel();
        let policy = Policy::DEFAULT
            .with_delivery(Delivery::at_least_once(3).unwrap())
            .with_backoff(Backoff::new(MAX_DURATION, 2, MAX_DURATION).unwrap());
        let pool = Pool::<u32, u32, (), 4, 1>::start(
            policy,
            |_, _| -> Result<u32, ()> { panic!("crash") },
            move |event| send.send(event).unwrap(),
        )
        .unwrap();
        pool.submit(9).unwrap();
        let started = Instant::now();
        while pool.snapshot().crashes() == 0 {
            assert!(started.elapsed() < LIMIT, "hung: no crash");
            thread::sleep(Duration::from_millis(1));
        }
        drop(pool);
        let events = collect(&events);
        let outcomes = outcomes(&events, &[]);
        assert_eq!(outcomes.get(&9), Some(&1), "{events:?}");
    });
}

/// Run identity across recycling and backoff on the thread host: a task that condemns its own
/// run (a reentrant call into its pool) is recovered and retried after the backoff; the runs of
/// recycled and crashed workers, condemned later, are refused as ended and touch no task.
#[test]
fn runs_condemned_across_recycling_and_backoff_hit_only_their_own_task() {
    within(
        LIMIT,
        "condemning runs across recycling and backoff",
        || {
            type P = Pool<u32, u32, (), 8, 1>;
            // The task reaches its pool through a weak reference (a strong one would be a cycle).
            let shared: Arc<std::sync::OnceLock<std::sync::Weak<P>>> =
                Arc::new(std::sync::OnceLock::new());
            let runs: Arc<Mutex<Vec<foreman_rt::Run>>> = Arc::default();
            let (send, events) = mpsc::channel();
            let (in_task, seen) = (Arc::clone(&shared), Arc::clone(&runs));
            let policy = Policy::DEFAULT
                .with_intensity(Intensity::unlimited())
                .with_recycling(1)
                .unwrap()
                .with_backoff(Backoff::new(5, 2, 20).unwrap());
            let pool = Arc::new(
                P::start(
                    policy,
                    move |ctx, &n| {
                        seen.lock().unwrap().push(ctx.run());
                        if n == 3 && ctx.attempt() == 1 {
                            let pool = in_task
                                .get()
                                .and_then(std::sync::Weak::upgrade)
                                .expect("the pool");
                            pool.condemn(ctx.run()).unwrap();
                            assert!(pool.condemn(ctx.run()).is_err(), "condemned twice");
                        }
                        Ok(n)
                    },
                    move |event| send.send(event).unwrap(),
                )
                .unwrap(),
            );
            assert!(shared.set(Arc::downgrade(&pool)).is_ok());
            for n in 0..6 {
                pool.submit(n).unwrap();
            }
            let started = Instant::now();
            while pool.snapshot().completed < 6 {
                assert!(
                    started.elapsed() < LIMIT,
                    "hung: the tasks did not all complete"
                );
                thread::sleep(Duration::from_millis(1));
            }
            // Every run so far has ended: condemning any of them is refused.
            for run in runs.lock().unwrap().iter() {
                assert_eq!(
                    pool.condemn(*run),
                    Err(foreman_rt::WorkerError::RunEnded { index: 0 })
                );
            }
            let report = Arc::into_inner(pool).unwrap().drain();
            let events = collect(&events);
            let outcomes = outcomes(&events, &report.handed_back);
            assert_eq!(outcomes.len(), 6);
            assert!(outcomes.values().all(|&n| n == 1), "{outcomes:?}");
            assert!(events.iter().any(|e| matches!(
                e,
                Event::Crashed {
                    task: Some(Disposition::Retried { attempt: 2 }),
                    decision: Decision::Replace,
                    ..
                }
            )));
            let snap = report.snapshot;
            assert_eq!((snap.completed, snap.crashes()), (6, 1));
            assert!(snap.adds_up());
        },
    );
}
