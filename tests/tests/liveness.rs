//! Liveness of the thread host: no call sequence hangs a [`Pool`], and no accepted task is
//! lost or ends twice.
//!
//! - First, one test per way the pool used to hang or lose tasks (issue 9), each written to
//!   fail before its fix.
//! - Then the matrix: every way to shut a pool down (drain, abort, drop — from the owner's
//!   thread and from one of the pool's own workers) after every kind of fault and misuse
//!   (panics, escalation, a hung task condemned, a panicking sink, panic payloads that panic,
//!   tasks submitting into their own full pool, tasks shutting their pool down, a storm of
//!   condemnations). Each checks that every accepted task ended exactly once and that the
//!   pool's threads all ended.
//!
//! Every test runs under a watchdog ([`within`]) that fails it with `hung: ...` rather than
//! blocking the run. `FOREMAN_LIVENESS_ROUNDS` (set by `cargo xtask test --long`) repeats
//! each matrix case that many times (default 1), to shake out rarer interleavings.

use std::collections::HashMap;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex, OnceLock, Weak};
use std::thread;
use std::time::{Duration, Instant};

use foreman_rt::host::{threads::Pool, Event, Report};
use foreman_rt::policy::{Delivery, Intensity, Policy};
use foreman_rt::{
    Context, Disposition, Run, Shutdown, SubmitError, SupervisorState, WorkerError, WorkerState,
};
use foreman_tests::{quiet_deliberate_panics, within, PanicsOnDrop, DELIBERATE};

/// How long any one test may take before it counts as hung.
const LIMIT: Duration = Duration::from_secs(20);
/// Waits (yielding) until `done` holds; `what` names it in the panic if `limit` passes first.
fn wait_until(limit: Duration, what: &str, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < limit,
            "hung: waited {limit:?} for {what}"
        );
        thread::sleep(Duration::from_millis(1));
    }
}

// ----- one test per defect ----------------------------------------------------------------

/// Review finding (thread and process hosts): `condemn` named a slot, so a host acting on an
/// `Event::Hung` after the hung task had finished killed the *next* task on that worker. Now
/// a condemnation names the run the report named, and fails once that run has ended.
#[test]
fn a_late_condemnation_of_a_hang_that_ended_spares_the_next_task() {
    let (snap, events) = within(LIMIT, "a drain after a late condemnation", || {
        let go_on = Arc::new(AtomicBool::new(false));
        let (events, received) = mpsc::channel();
        let gate = Arc::clone(&go_on);
        let pool = Pool::<u32, u32, (), 4, 1>::start(
            Policy::DEFAULT.with_watchdog(20).unwrap(),
            move |ctx, &task| {
                // Both tasks wait for the gate: task 0 long enough to be reported hung.
                while !gate.load(Ordering::Relaxed) {
                    thread::sleep(Duration::from_millis(1));
                }
                if task == 1 {
                    ctx.heartbeat();
                }
                Ok(ctx.attempt())
            },
            move |event| events.send(event).unwrap(),
        )
        .unwrap();
        pool.submit(0).unwrap();
        let hung: Run = match received
            .recv_timeout(LIMIT)
            .expect("hung: no hang report for task 0")
        {
            Event::Hung { run, .. } => run,
            other => panic!("before the hang report: {other:?}"),
        };
        // The hung task ends, and the worker takes the next one, before the host acts.
        go_on.store(true, Ordering::Relaxed);
        match received
            .recv_timeout(LIMIT)
            .expect("hung: task 0 never completed")
        {
            Event::Completed { task: 0, .. } => {}
            other => panic!("task 0 completes: {other:?}"),
        }
        go_on.store(false, Ordering::Relaxed);
        pool.submit(1).unwrap();
        wait_until(LIMIT, "task 1 to start", || pool.current_run(0).is_some());
        assert_ne!(pool.current_run(0), Some(hung), "task 1 is another run");
        assert_eq!(pool.condemn(hung), Err(WorkerError::RunEnded { index: 0 }));
        go_on.store(true, Ordering::Relaxed);
        let report = pool.drain();
        (report.snapshot, received.try_iter().collect::<Vec<_>>())
    });
    assert_eq!((snap.completed, snap.crashes()), (2, 0), "{events:?}");
    assert!(
        events
            .iter()
            .all(|event| !matches!(event, Event::Crashed { .. })),
        "task 1 was not killed: {events:?}"
    );
}

/// Issue 9, defect 1: a condemned task's late end left its slot crashed, with no outcome, and
/// `drain` waited forever. Now the task gets one outcome (here: retried, then completed) and
/// a replacement thread takes the slot.
#[test]
fn a_condemned_task_ends_once_and_the_pool_drains() {
    quiet_deliberate_panics();
    let report = within(LIMIT, "drain after a condemned task returned", || {
        let release = Arc::new(AtomicBool::new(false));
        let (events, received) = mpsc::channel();
        let hung = Arc::clone(&release);
        let pool = Pool::<u32, u32, (), 4, 1>::start(
            Policy::DEFAULT.with_watchdog(20).unwrap(),
            move |ctx, &task| {
                while task == 0 && ctx.attempt() == 1 && !hung.load(Ordering::Relaxed) {
                    thread::sleep(Duration::from_millis(1));
                }
                Ok(ctx.attempt())
            },
            move |event| events.send(event).unwrap(),
        )
        .unwrap();
        pool.submit(0).unwrap();
        wait_until(LIMIT, "the hang to be reported", || {
            pool.worker_state(0) == Some(WorkerState::Hung)
        });
        pool.condemn(pool.current_run(0).expect("task 0 runs"))
            .unwrap();
        release.store(true, Ordering::Relaxed);
        pool.submit(1).unwrap();
        let report = pool.drain();
        (report.snapshot, received.try_iter().collect::<Vec<_>>())
    });
    let (snap, events) = report;
    assert_eq!(
        (
            snap.completed,
            snap.crashes(),
            snap.restarts(),
            snap.in_flight
        ),
        (2, 1, 1, 0)
    );
    assert!(snap.adds_up());
    let crashes: Vec<_> = events
        .iter()
        .filter_map(|event| match event {
            Event::Crashed { task, cause, .. } => Some((task, cause.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(crashes.len(), 1, "one crash report: {events:?}");
    assert_eq!(crashes[0].0, &Some(Disposition::Retried { attempt: 2 }));
    assert!(crashes[0].1.contains("condemned"), "{}", crashes[0].1);
    // The late outcome of the first run was discarded: task 0 completed once, by its retry.
    let completed: Vec<_> = events
        .iter()
        .filter_map(|event| match event {
            Event::Completed { task, output, .. } => Some((*task, *output)),
            _ => None,
        })
        .collect();
    assert!(completed.contains(&(0, 2)), "{completed:?}");
    assert_eq!(completed.iter().filter(|(task, _)| *task == 0).count(), 1);
}

/// Issue 9, defect 2: the watchdog slept a quarter of its deadline, and every shutdown waited
/// for it to wake up. With a one-hour deadline, draining an idle pool took 15 minutes.
#[test]
fn shutting_down_wakes_a_sleeping_watchdog_at_once() {
    let policy = Policy::DEFAULT.with_watchdog(3_600_000).unwrap();
    for path in [Path::Drain, Path::Abort, Path::Drop] {
        let what = format!("{path:?} of a pool with a one-hour watchdog");
        within(Duration::from_secs(5), &what, move || {
            let pool = Pool::<u32, (), (), 4, 1>::start(policy, |_, _| Ok(()), |_| {}).unwrap();
            pool.submit(1).unwrap();
            match path {
                Path::Drain => assert_eq!(pool.drain().snapshot.completed, 1),
                Path::Abort => drop(pool.abort()),
                _ => drop(pool),
            }
        });
    }
}

type Small = Pool<u32, (), (), 2, 1>;

/// Issue 9, defect 3a: a task calling the blocking `submit` into its own full queue, with one
/// worker, parked forever (the only consumer was the caller). Now the task gets it back.
#[test]
fn a_task_never_parks_submitting_into_its_own_full_queue() {
    let refused = within(LIMIT, "submit from a task into its own full queue", || {
        let me: Arc<OnceLock<Weak<Small>>> = Arc::default();
        let handle = Arc::clone(&me);
        let (refusals, refused) = mpsc::channel();
        let pool = Arc::new(
            Small::start(
                Policy::DEFAULT,
                move |_, &task| {
                    if task == 0 {
                        let pool = handle.get().and_then(Weak::upgrade).unwrap();
                        for child in 1..=3 {
                            if let Err(SubmitError::Full(child)) = pool.submit(child) {
                                refusals.send(child).unwrap();
                            }
                        }
                    }
                    Ok(())
                },
                |_| {},
            )
            .unwrap(),
        );
        me.set(Arc::downgrade(&pool)).unwrap();
        pool.submit(0).unwrap();
        let refused = refused.recv().unwrap();
        let pool = take_when_unique(pool);
        let report = pool.drain();
        assert_eq!(
            report.snapshot.completed, 3,
            "task 0 and the two children queued"
        );
        refused
    });
    assert_eq!(
        refused, 3,
        "the third child found the queue full and came back"
    );
}

/// Takes the pool out of its `Arc` once the tasks that upgraded a weak handle let go.
fn take_when_unique<P>(mut pool: Arc<P>) -> P {
    let started = Instant::now();
    loop {
        match Arc::try_unwrap(pool) {
            Ok(pool) => return pool,
            Err(shared) => pool = shared,
        }
        assert!(started.elapsed() < LIMIT, "hung: a task kept the pool");
        thread::sleep(Duration::from_millis(1));
    }
}

/// Issue 9, defect 3b: fan-out tasks that submit children with the blocking `submit` stalled
/// the pool once every worker waited for room. Now every node of the tree is visited: in the
/// pool, or by its parent when the queue was full.
#[test]
fn fan_out_tasks_never_stall_the_pool() {
    type Tree = Pool<u32, (), (), 2, 2>;
    const DEPTH: u32 = 10;
    let visited = within(LIMIT, "a fan-out of 2047 tasks over a queue of 2", || {
        let visited = Arc::new(AtomicUsize::new(0));
        let me: Arc<OnceLock<Weak<Tree>>> = Arc::default();
        let (handle, count) = (Arc::clone(&me), Arc::clone(&visited));
        let pool = Arc::new(
            Tree::start(
                Policy::DEFAULT,
                move |_, &depth| {
                    let pool = handle.get().and_then(Weak::upgrade).unwrap();
                    let mut here = vec![depth];
                    while let Some(depth) = here.pop() {
                        count.fetch_add(1, Ordering::Relaxed);
                        for _ in 0..2 {
                            if depth < DEPTH {
                                match pool.submit(depth + 1) {
                                    Ok(()) => {}
                                    Err(SubmitError::Full(child)) => here.push(child),
                                    Err(SubmitError::Closed(_)) => panic!("closed while running"),
                                }
                            }
                        }
                    }
                    Ok(())
                },
                |_| {},
            )
            .unwrap(),
        );
        me.set(Arc::downgrade(&pool)).unwrap();
        pool.submit(0).unwrap();
        wait_until(LIMIT, "every node to be visited", || {
            visited.load(Ordering::Relaxed) == (1 << (DEPTH + 1)) - 1
        });
        take_when_unique(pool).drain();
        visited.load(Ordering::Relaxed)
    });
    assert_eq!(visited, (1 << (DEPTH + 1)) - 1);
}

/// Issue 9, defect 3c: a task that dropped the last `Arc<Pool>` ran `Pool::drop` on a worker,
/// which waited for that same worker forever. Now the drop returns, and the tasks still
/// queued reach the sink once the last thread is out.
#[test]
fn dropping_the_last_handle_on_a_worker_does_not_wait_for_itself() {
    let ended = within(LIMIT, "dropping the pool on its own worker", || {
        let holder: Arc<Mutex<Option<Arc<Small>>>> = Arc::default();
        let dropper = Arc::clone(&holder);
        let gate = Arc::new(Barrier::new(2));
        let task_gate = Arc::clone(&gate);
        let (events, received) = mpsc::channel();
        let (gone, pool_gone) = mpsc::channel::<()>();
        let pool = Arc::new(
            Small::start(
                Policy::DEFAULT,
                move |_, &task| {
                    if task == 0 {
                        task_gate.wait(); // tasks 1 and 2 are queued behind this one
                        drop(dropper.lock().unwrap().take()); // the last handle
                    }
                    Ok(())
                },
                move |event| {
                    let _gone = &gone; // dropped with the sink, when the pool is freed
                    events.send(event).unwrap();
                },
            )
            .unwrap(),
        );
        *holder.lock().unwrap() = Some(Arc::clone(&pool));
        for task in 0..3 {
            pool.submit(task).unwrap();
        }
        drop(pool);
        gate.wait();
        // The pool's last thread frees it: the sink (and `gone`) are dropped then.
        assert_eq!(pool_gone.recv(), Err(mpsc::RecvError));
        received.try_iter().collect::<Vec<_>>()
    });
    let completed: Vec<u32> = ended
        .iter()
        .filter_map(|event| match event {
            Event::Completed { task, .. } => Some(*task),
            _ => None,
        })
        .collect();
    let handed_back: Vec<u32> = ended
        .iter()
        .filter_map(|event| match event {
            Event::HandedBack { task } => Some(*task),
            _ => None,
        })
        .collect();
    assert_eq!(completed, [0]);
    assert_eq!(handed_back, [1, 2], "the queued tasks reached the sink");
}

/// Issue 9, defect 7: a sink that panicked at shutdown with a payload that panics again when
/// dropped made `Pool::drop` panic, and every task still to hand back was lost. Now each
/// remaining task is still offered to the sink.
#[test]
fn a_sink_panic_at_drop_loses_no_other_task() {
    quiet_deliberate_panics();
    let (taken, drop_panicked) = within(LIMIT, "dropping a pool whose sink panics", || {
        let taken = Arc::new(Mutex::new(Vec::new()));
        let sink_taken = Arc::clone(&taken);
        let gate = Arc::new(Barrier::new(2));
        let task_gate = Arc::clone(&gate);
        let pool = Pool::<u32, (), (), 8, 1>::start(
            Policy::DEFAULT,
            move |_, _| {
                task_gate.wait();
                Ok(())
            },
            move |event| {
                if let Event::HandedBack { task } = event {
                    sink_taken.lock().unwrap().push(task);
                    match task {
                        1 => panic::panic_any(PanicsOnDrop),
                        3 => panic!("{DELIBERATE}: the sink refuses task 3"),
                        _ => {}
                    }
                }
            },
        )
        .unwrap();
        for task in 0..6 {
            pool.try_submit(task).unwrap();
        }
        wait_until(LIMIT, "task 0 to start", || pool.snapshot().in_flight == 1);
        pool.begin_abort();
        gate.wait();
        let dropped = panic::catch_unwind(AssertUnwindSafe(|| drop(pool)));
        let taken = taken.lock().unwrap().clone();
        (taken, dropped.is_err())
    });
    assert!(!drop_panicked, "dropping the pool panicked");
    assert_eq!(
        taken,
        [1, 2, 3, 4, 5],
        "every queued task was offered to the sink"
    );
}

// ----- the matrix -----------------------------------------------------------------------

/// How the pool is shut down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    Drain,
    Abort,
    Drop,
    /// A task drops the last `Arc<Pool>`.
    DropOnWorker,
    /// A task takes the pool and drains it.
    DrainOnWorker,
    /// A task takes the pool and aborts it.
    AbortOnWorker,
}

impl Path {
    fn on_worker(self) -> bool {
        matches!(
            self,
            Path::DropOnWorker | Path::DrainOnWorker | Path::AbortOnWorker
        )
    }
}

/// What goes wrong before the shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Nothing: tasks complete, or fail (an error is an outcome).
    None,
    /// Some tasks panic once (retried), some every time (dead-lettered).
    Panics,
    /// Every task panics, and the restart intensity allows one restart: escalation.
    Escalation,
    /// Task `HUNG` hangs; the watchdog reports it, the test condemns its worker, and the task
    /// returns (with a result that panics when dropped) while the shutdown waits.
    HangCondemned,
    /// The sink panics on every other event, sometimes with a payload that panics again.
    SinkPanics,
    /// Tasks panic with a payload that panics again when dropped.
    PanicPayloadPanics,
    /// Tasks submit children into their own small queue with the blocking `submit`.
    ReentrantSubmit,
    /// Tasks start a drain, then an abort, of their own pool.
    SelfShutdown,
    /// The test condemns every worker (and one that does not exist) over and over while tasks
    /// run: each condemned run is discarded and retried, or dead-lettered.
    CondemnStorm,
}

/// A task's result: can be made to panic when dropped.
#[derive(Debug)]
struct Output {
    panics_on_drop: bool,
}

impl Drop for Output {
    fn drop(&mut self) {
        if self.panics_on_drop {
            self.panics_on_drop = false;
            panic!("{DELIBERATE}: a result that panics when dropped");
        }
    }
}

type TestPool = Pool<u32, Output, String, 4, 2>;

/// Tasks the test submits (ids below this).
const TASKS: u32 = 40;
/// The task that hangs under `Fault::HangCondemned`.
const HUNG: u32 = 1;
/// The task that shuts the pool down from a worker (`Path::*OnWorker`).
const SHUTTER: u32 = 1_000;
/// Ids of children submitted by tasks start here.
const CHILDREN: u32 = 2_000;

/// Every task's outcomes, as the sink and the report tell them.
#[derive(Default)]
struct Ledger {
    /// Tasks the pool accepted.
    accepted: Mutex<Vec<u32>>,
    /// Each task's terminal outcomes (more than one is a bug).
    ended: Mutex<HashMap<u32, Vec<&'static str>>>,
    /// Events that make no sense here.
    unexpected: Mutex<Vec<String>>,
    /// Workers reported hung.
    hung: Mutex<Vec<Run>>,
}

impl Ledger {
    fn accept(&self, task: u32) {
        self.accepted.lock().unwrap().push(task);
    }

    fn end(&self, task: u32, how: &'static str) {
        self.ended
            .lock()
            .unwrap()
            .entry(task)
            .or_default()
            .push(how);
    }

    fn record(&self, event: &Event<u32, Output, String, String>) {
        match event {
            Event::Completed { task, .. } => self.end(*task, "completed"),
            Event::Failed { task, .. } => self.end(*task, "failed"),
            Event::Crashed { task, .. } => match task {
                Some(Disposition::DeadLettered { task, .. }) => self.end(*task, "dead-lettered"),
                Some(Disposition::Lost(task)) => self.end(*task, "lost"),
                Some(Disposition::HandedBack(task)) => self.end(*task, "handed back (crash)"),
                Some(Disposition::Retried { .. } | Disposition::Requeued { .. }) => {}
                _ => self.unexpected.lock().unwrap().push(format!("{event:?}")),
            },
            Event::HandedBack { task } => self.end(*task, "handed back (sink)"),
            Event::Hung { run, .. } => self.hung.lock().unwrap().push(*run),
            _ => self.unexpected.lock().unwrap().push(format!("{event:?}")),
        }
    }

    /// Whether every accepted task has an outcome.
    fn complete(&self) -> bool {
        let ended = self.ended.lock().unwrap();
        self.accepted
            .lock()
            .unwrap()
            .iter()
            .all(|task| ended.contains_key(task))
    }

    /// Every accepted task ended exactly once, and nothing else ended.
    fn assert_each_task_ended_once(&self, case: &str) {
        let accepted = self.accepted.lock().unwrap().clone();
        let ended = self.ended.lock().unwrap();
        for task in &accepted {
            match ended.get(task).map(Vec::as_slice) {
                Some([_]) => {}
                other => panic!("{case}: task {task} ended {other:?}"),
            }
        }
        for task in ended.keys() {
            assert!(
                accepted.contains(task),
                "{case}: task {task} ended, never accepted"
            );
        }
        assert_eq!(
            *self.unexpected.lock().unwrap(),
            Vec::<String>::new(),
            "{case}"
        );
    }
}

/// What the handler and the sink of one case share.
struct Case {
    path: Path,
    fault: Fault,
    ledger: Ledger,
    /// The pool, for tasks that use it.
    pool: OnceLock<Weak<TestPool>>,
    /// The last strong handle, for `Path::*OnWorker`: the shutter takes it.
    holder: Mutex<Option<Arc<TestPool>>>,
    /// Opened once every task is submitted: the shutter waits for it.
    gate: AtomicBool,
    /// Releases the hung task.
    release: AtomicBool,
    /// The worker running the hung task (`usize::MAX` until it starts).
    hung_worker: AtomicUsize,
    next_child: AtomicU32,
    sink_calls: AtomicUsize,
}

impl Case {
    fn pool(&self) -> Option<Arc<TestPool>> {
        self.pool.get().and_then(Weak::upgrade)
    }

    fn run(&self, ctx: &Context<'_>, task: u32) -> Result<Output, String> {
        let fine = Ok(Output {
            panics_on_drop: false,
        });
        if task == SHUTTER {
            wait_until(LIMIT, "the gate", || self.gate.load(Ordering::Acquire));
            // A retry of the shutter (its worker was condemned) finds the handle taken.
            let Some(pool) = self.holder.lock().unwrap().take() else {
                return fine;
            };
            match self.path {
                Path::DropOnWorker => drop(pool),
                Path::DrainOnWorker => self.on_worker_report(take_when_unique(pool).drain()),
                Path::AbortOnWorker => self.on_worker_report(take_when_unique(pool).abort()),
                _ => unreachable!("the shutter runs only on worker paths"),
            }
            return fine;
        }
        match self.fault {
            Fault::Panics if task.is_multiple_of(5) => {
                panic!("{DELIBERATE}: task {task} always panics")
            }
            Fault::Panics if task.is_multiple_of(3) && ctx.attempt() == 1 => {
                panic!("{DELIBERATE}: task {task} panics once")
            }
            Fault::Escalation => panic!("{DELIBERATE}: task {task}"),
            Fault::HangCondemned if task == HUNG && ctx.attempt() == 1 => {
                self.hung_worker.store(ctx.worker(), Ordering::Release);
                while !self.release.load(Ordering::Acquire) {
                    thread::sleep(Duration::from_millis(1));
                }
                return Ok(Output {
                    panics_on_drop: true, // discarded: the worker was condemned
                });
            }
            Fault::PanicPayloadPanics if task.is_multiple_of(4) && ctx.attempt() == 1 => {
                panic::panic_any(PanicsOnDrop)
            }
            Fault::ReentrantSubmit if task < TASKS / 2 => {
                if let Some(pool) = self.pool() {
                    for _ in 0..3 {
                        let child = self.next_child.fetch_add(1, Ordering::Relaxed);
                        // Accepted children are recorded before they can end.
                        self.ledger.accept(child);
                        if pool.submit(child).is_err() {
                            self.ledger.accepted.lock().unwrap().retain(|&t| t != child);
                        }
                    }
                }
            }
            Fault::SelfShutdown if task == 10 => drop(self.pool().map(|pool| pool.begin_drain())),
            Fault::SelfShutdown if task == 20 => drop(self.pool().map(|pool| pool.begin_abort())),
            _ => {}
        }
        if task % 7 == 6 {
            Err(format!("task {task} fails"))
        } else {
            fine
        }
    }

    /// A drain or abort on a worker cannot wait: its report is the snapshot of that moment,
    /// and holds no task (what is left goes to the sink).
    fn on_worker_report(&self, report: Report<u32, 2>) {
        if !report.handed_back.is_empty() || !report.snapshot.adds_up() {
            self.ledger
                .unexpected
                .lock()
                .unwrap()
                .push(format!("a report on a worker: {report:?}"));
        }
    }

    fn sink(&self, event: Event<u32, Output, String, String>) {
        self.ledger.record(&event); // first: a panicking sink has still taken the event
        if self.fault == Fault::SinkPanics {
            match self.sink_calls.fetch_add(1, Ordering::Relaxed) % 4 {
                1 => panic!("{DELIBERATE}: the sink"),
                3 => panic::panic_any(PanicsOnDrop),
                _ => {}
            }
        }
    }
}

fn policy(fault: Fault) -> Policy {
    let policy = Policy::DEFAULT.with_watchdog(20).unwrap();
    if fault == Fault::Escalation {
        policy.with_intensity(Intensity::new(1, 60_000).unwrap())
    } else {
        policy
            .with_intensity(Intensity::unlimited())
            .with_delivery(Delivery::at_least_once(3).unwrap())
    }
}

fn rounds() -> usize {
    std::env::var("FOREMAN_LIVENESS_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

/// One case: start a pool, submit `TASKS` tasks under `fault`, shut it down by `path`, and
/// check that every accepted task ended once and the pool's threads are all gone.
fn case(path: Path, fault: Fault) {
    quiet_deliberate_panics();
    for round in 0..rounds() {
        let name = format!("{path:?} after {fault:?} (round {round})");
        let case = Arc::new(Case {
            path,
            fault,
            ledger: Ledger::default(),
            pool: OnceLock::new(),
            holder: Mutex::new(None),
            gate: AtomicBool::new(false),
            release: AtomicBool::new(false),
            hung_worker: AtomicUsize::new(usize::MAX),
            next_child: AtomicU32::new(CHILDREN),
            sink_calls: AtomicUsize::new(0),
        });
        let what = format!("{name}: every task to end and the pool's threads to stop");
        let checked = Arc::clone(&case);
        within(LIMIT, &what, move || run_case(&case));
        checked.ledger.assert_each_task_ended_once(&name);
    }
}

fn run_case(case: &Arc<Case>) {
    let (path, fault) = (case.path, case.fault);
    // The sink holds `gone`: when the pool's last thread frees it, the channel closes.
    let (gone, pool_gone) = mpsc::channel::<()>();
    let (handler_case, sink_case) = (Arc::clone(case), Arc::clone(case));
    let pool = Arc::new(
        TestPool::start(
            policy(fault),
            move |ctx, &task| handler_case.run(ctx, task),
            move |event| {
                let _gone = &gone;
                sink_case.sink(event);
            },
        )
        .unwrap(),
    );
    case.pool.set(Arc::downgrade(&pool)).ok().unwrap();
    let submit = |task: u32| {
        // Accepted tasks are recorded before they can end.
        case.ledger.accept(task);
        if pool.submit(task).is_err() {
            case.ledger.accepted.lock().unwrap().retain(|&t| t != task);
        }
    };
    if path.on_worker() {
        *case.holder.lock().unwrap() = Some(Arc::clone(&pool));
        submit(SHUTTER);
    }
    if fault == Fault::HangCondemned {
        submit(HUNG);
        // (Other workers may be reported hung too: the shutter waits for its gate, and a
        // preempted task may pass the deadline on a busy machine.)
        wait_until(LIMIT, "the hung task's hang to be reported", || {
            let worker = case.hung_worker.load(Ordering::Acquire);
            worker != usize::MAX
                && case
                    .ledger
                    .hung
                    .lock()
                    .unwrap()
                    .iter()
                    .any(|run| run.worker() == worker)
        });
        let worker = case.hung_worker.load(Ordering::Acquire);
        let hung = case
            .ledger
            .hung
            .lock()
            .unwrap()
            .iter()
            .copied()
            .rfind(|run| run.worker() == worker);
        pool.condemn(hung.expect("its hang was reported")).unwrap();
        // Released while the shutdown below already waits for it.
        let releaser = Arc::clone(case);
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            releaser.release.store(true, Ordering::Release);
        });
    }
    for task in (0..TASKS).filter(|&task| fault != Fault::HangCondemned || task != HUNG) {
        submit(task);
        if fault == Fault::CondemnStorm {
            for worker in 0..=2 {
                if let Some(run) = pool.current_run(worker) {
                    let _ = pool.condemn(run); // running: condemned; ended since: an error
                }
            }
            assert_eq!(pool.current_run(2), None, "there is no worker 2");
        }
    }
    let report = match path {
        Path::Drain => Some(take_when_unique(pool).drain()),
        Path::Abort => Some(take_when_unique(pool).abort()),
        Path::Drop => {
            drop(take_when_unique(pool));
            None
        }
        Path::DropOnWorker | Path::DrainOnWorker | Path::AbortOnWorker => {
            drop(pool); // the shutter holds the last handle
            case.gate.store(true, Ordering::Release);
            None
        }
    };
    if let Some(report) = &report {
        for &task in &report.handed_back {
            case.ledger.end(task, "handed back (report)");
        }
        let snap = report.snapshot;
        assert!(snap.adds_up(), "{snap:?}");
        assert!(
            matches!(snap.state, SupervisorState::Stopped(_)),
            "{snap:?}"
        );
        assert_eq!((snap.queued, snap.in_flight), (0, 0), "{snap:?}");
        if fault == Fault::Escalation {
            assert_eq!(snap.state, SupervisorState::Stopped(Shutdown::Escalation));
        }
    }
    // Every thread of the pool ends, and the last one frees it (dropping the sink).
    assert_eq!(pool_gone.recv(), Err(mpsc::RecvError));
    assert!(case.ledger.complete(), "a task never ended");
}

macro_rules! every_path {
    ($($fault:ident: $value:expr;)*) => {$(
        mod $fault {
            use super::*;

            #[test]
            fn drain() {
                case(Path::Drain, $value);
            }

            #[test]
            fn abort() {
                case(Path::Abort, $value);
            }

            #[test]
            fn drop() {
                case(Path::Drop, $value);
            }

            #[test]
            fn drop_on_a_worker() {
                case(Path::DropOnWorker, $value);
            }

            #[test]
            fn drain_on_a_worker() {
                case(Path::DrainOnWorker, $value);
            }

            #[test]
            fn abort_on_a_worker() {
                case(Path::AbortOnWorker, $value);
            }
        }
    )*};
}

every_path! {
    no_fault: Fault::None;
    panics: Fault::Panics;
    escalation: Fault::Escalation;
    a_hung_task_condemned: Fault::HangCondemned;
    a_panicking_sink: Fault::SinkPanics;
    panic_payloads_that_panic: Fault::PanicPayloadPanics;
    tasks_submitting_into_their_own_pool: Fault::ReentrantSubmit;
    tasks_shutting_their_pool_down: Fault::SelfShutdown;
    a_storm_of_condemnations: Fault::CondemnStorm;
}
