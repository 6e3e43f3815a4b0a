//! The thread host: a [`Pool`] of OS threads driving a [`Supervisor`].
//!
//! - Each worker slot gets a thread; idle threads park on a futex ([`ThreadPark`]) and a
//!   submission wakes one.
//! - Task code is the pool's *handler*, `Fn(&Context, &T) -> Result<R, E>`, shared by all
//!   workers: no allocation per task. (Closures work as tasks too: make `T` a
//!   `Box<dyn Fn(&Context) -> Result<R, E> + Send + Sync>` and the handler `|ctx, f| f(ctx)`.)
//! - Every outcome goes to the pool's *sink*, `Fn(Event)`, on the worker's thread: results,
//!   errors, crashes (with the crashed task's fate), hangs, and tasks handed back at shutdown.
//! - A panic in the handler is caught (`catch_unwind`) and reported as a crash; when the
//!   supervisor asks for a replacement, a new thread takes the slot over (fresh stack, fresh
//!   thread-locals) and runs the crashed task again first (at-least-once).
//! - With a watchdog in the [`Policy`], a watchdog thread ticks the clock (milliseconds since
//!   the pool started) and reports [`Event::Hung`].
//! - A pool of [`Handles`] (its last type parameter; the default is [`NoHandles`]) gives a
//!   [`TaskHandle`] per task submitted with one ([`Pool::submit_with_handle`]): the task's
//!   final event goes to the handle instead of the sink. Through its handle a task can be
//!   cancelled ([`TaskHandle::cancel`]: a queued task never runs, a running one is told through
//!   [`Context::is_cancelled`]; either ends [`Event::Cancelled`], never retried), and given a
//!   deadline per run ([`Pool::submit_with_options`], [`TaskOptions::with_deadline`]), counted
//!   from the run's start, which the pool enforces itself — reported [`Event::Hung`], then
//!   condemned — with or without a watchdog in the policy (such a pool always has a watchdog
//!   thread, for the clock). A pool of `NoHandles` pays for none of it: its queue holds plain
//!   tasks.
//! - With restart [`Backoff`](crate::policy::Backoff), a crashed worker's replacement thread
//!   starts at once but sleeps out the delay before it attaches (a shutdown wakes it).
//! - With recycling ([`Policy::with_recycling`]), a worker thread that ran its quota of tasks
//!   reports [`Event::Recycled`] and ends; a new thread takes its slot over (fresh stack,
//!   fresh thread-locals).
//!
//! # What the pool promises, and how
//!
//! **No call sequence hangs it.** Every shutdown (`drain`, `abort`, dropping the pool) returns
//! once the tasks running at the time have returned, whatever happened before: panics, hung
//! and condemned workers, a panicking sink, tasks that use the pool themselves. The one thing
//! it cannot do is kill a thread: a task that never returns keeps its thread, and a shutdown
//! waits for it (see *Hung workers*).
//!
//! - *Shutdown wakes the watchdog at once*: it sleeps on `park_timeout`, and the shutdown
//!   unparks it.
//! - *Tasks may use their own pool.* On one of the pool's own threads (its workers, and its
//!   watchdog, where the sink may run) nothing waits for the pool's threads, because the
//!   thread waiting would be one of those waited for:
//!   - [`submit`](Pool::submit) does not park on a full queue: it hands the task back in
//!     [`SubmitError::Full`] at once, as [`try_submit`](Pool::try_submit) does. (A worker
//!     waiting for room that only workers make could wait forever, and fan-out tasks that all
//!     wait would stall the pool.) The task decides: run the child itself, keep it for later,
//!     or report it.
//!   - Dropping the pool there (the last `Arc<Pool>` held by a task, say), or calling
//!     [`drain`](Pool::drain) or [`abort`](Pool::abort) there, starts the shutdown and
//!     returns without waiting. The threads finish on their own, and the last one out hands
//!     what is left to the sink as [`Event::HandedBack`]: nothing is lost. The report of such
//!     a `drain` or `abort` is the snapshot of that moment (the pool is not stopped yet), with
//!     no tasks in it.
//!   - Between pools, a worker of one pool may wait on another pool's full queue; a cycle of
//!     pools waiting on each other is the application's to avoid (use `try_submit` there).
//!
//! **The pool owns its supervisor.** It does not lend it out: calls like `attach`, `recover`,
//! `hand_back` or `reopen` behind its back would leave slots without threads or threads
//! without slots. It offers what is safe instead: [`state`](Pool::state),
//! [`worker_state`](Pool::worker_state), [`snapshot`](Pool::snapshot),
//! [`condemn`](Pool::condemn), and shutdowns that start without waiting
//! ([`begin_drain`](Pool::begin_drain), [`begin_abort`](Pool::begin_abort)). A pool runs
//! once: after a shutdown or an escalation, start a new one (starting is cheap).
//!
//! **Hung workers.** The watchdog reports [`Event::Hung`]; the task keeps its thread. To give
//! up on it, [`condemn`](Pool::condemn) the worker: when its task returns (or panics), its
//! outcome is discarded, the task is recovered as if it had crashed — retried, dead-lettered
//! or reported lost per the [`Delivery`](crate::policy::Delivery) policy, in an
//! [`Event::Crashed`] — and a replacement thread takes the slot, per the restart policy.
//!
//! **The sink.** Each event is given to the sink once, and the sink owns it from then on. A
//! sink that panics does not take the pool down: the panic is caught (even one whose payload
//! panics again when dropped) and reported on stderr, and the event it was given goes with
//! the panic. Everything else is still delivered: the worker's bookkeeping, its replacement,
//! and every later event — at a shutdown by drop, every remaining task is still offered, one
//! event each. A sink that must not lose a task should catch its own panics. `drain` and
//! `abort` do not use the sink for what is left: it comes back in the [`Report`].
//!
//! ```
//! use foreman_rt::host::{threads::Pool, Event};
//! use foreman_rt::policy::Policy;
//! use std::sync::mpsc;
//!
//! let (events, results) = mpsc::channel();
//! let pool = Pool::<u64, _, String, 64, 2>::start(
//!     Policy::DEFAULT,
//!     |_ctx, n| if *n == 13 { Err(format!("{n} is unlucky")) } else { Ok(n * n) },
//!     move |event| events.send(event).unwrap(),
//! )?;
//! for n in 1..=20 {
//!     pool.submit(n).unwrap(); // parks while the queue is full
//! }
//! let report = pool.drain(); // waits for every worker to finish the queue
//! assert!(report.handed_back.is_empty());
//!
//! let (mut sum, mut errors) = (0, 0);
//! for event in results.try_iter() {
//!     match event {
//!         Event::Completed { output, .. } => sum += output,
//!         Event::Failed { .. } => errors += 1,
//!         other => panic!("unexpected {other:?}"),
//!     }
//! }
//! assert_eq!((sum, errors), ((1..=20).map(|n| n * n).sum::<u64>() - 169, 1));
//! assert_eq!(report.snapshot.completed + report.snapshot.failed, 20);
//! # Ok::<(), std::io::Error>(())
//! ```

use std::any::Any;
use std::boxed::Box;
use std::fmt;
use std::format;
use std::io;
use std::mem::{self, MaybeUninit};
use std::panic::{self, AssertUnwindSafe};
use std::string::{String, ToString};
use std::sync::atomic::{fence, AtomicBool, AtomicU32 as StdAtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};
use std::vec::Vec;

use super::{discard, futex, panic_message as message, stack_size, Event, Report};
#[cfg(feature = "cancellation")]
pub use handle::Cancellation;
use handle::{split, Admit, EntryKind, Resolver};
pub use handle::{Handles, Handling, NoHandles, TaskHandle, TaskOptions};

mod handle;
use crate::park::{AtomicU32, Park};
use crate::policy::{Policy, Tick};
use crate::{
    Condemned, Context, CrashReport, Decision, Disposition, Run, Snapshot, SubmitError, Supervisor,
    SupervisorState, WorkerError, WorkerState,
};

/// Parks threads on a futex (Linux, FreeBSD, Windows `WaitOnAddress`, macOS `ulock`), through
/// the `atomic-wait` crate.
///
/// ```
/// use foreman_rt::host::threads::ThreadPark;
/// use foreman_rt::park::{AtomicU32, Park};
///
/// let word = AtomicU32::new(1);
/// ThreadPark.park(&word, 0); // the word is not 0: returns at once
/// ThreadPark.unpark_all(&word);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadPark;

impl Park for ThreadPark {
    fn park(&self, word: &AtomicU32, expected: u32) {
        atomic_wait::wait(futex(word), expected);
    }

    fn unpark_one(&self, word: &AtomicU32) {
        atomic_wait::wake_one(futex(word));
    }

    fn unpark_all(&self, word: &AtomicU32) {
        atomic_wait::wake_all(futex(word));
    }
}

type Handler<T, R, E> = dyn Fn(&Context<'_>, &T) -> Result<R, E> + Send + Sync;
type Sink<T, R, E> = dyn Fn(Event<T, R, E, String>) + Send + Sync;

/// The cause given in the [`Event::Crashed`] of a condemned worker's task.
const CONDEMNED: &str = "condemned as hung; the outcome it returned late was discarded";

/// The watchdog's period in a pool of [`Handles`] whose policy has no watchdog, until a task
/// with a deadline comes: its clock must not fall far behind (a run's start is stamped with it).
#[cfg(feature = "deadlines")]
const IDLE_PERIOD: Tick = 60_000;

/// A run given a deadline of its own ([`TaskOptions::with_deadline`]).
#[cfg(feature = "deadlines")]
#[derive(Clone, Copy)]
struct OwnDeadline {
    run: Run,
    ticks: Tick,
    /// Set when the watchdog condemned the run for passing it.
    passed: bool,
}

/// What the pool's threads share.
struct Shared<T: Send, R, E, const N: usize, const W: usize, K: Handling> {
    /// Its tasks, as its kind of pool keeps them (see [`Handling`]).
    sup: Supervisor<K::Entry<T, R, E>, N, W, ThreadPark>,
    handler: Box<Handler<T, R, E>>,
    sink: Box<Sink<T, R, E>>,
    /// Worker threads, replacements included, until joined (threads that ended are dropped
    /// when the next replacement registers).
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// The watchdog thread, if any, to wake at shutdown.
    watchdog: OnceLock<Thread>,
    /// The watchdog's period, in milliseconds: a quarter of the policy's watchdog deadline,
    /// lowered to a quarter of the shortest per-task deadline submitted.
    period: StdAtomicU32,
    /// Per worker: the last run given a deadline of its own (see `tick`).
    #[cfg(feature = "deadlines")]
    deadlines: [Mutex<Option<OwnDeadline>>; W],
    /// Hangs found by a tick outside the watchdog's thread, for the watchdog to report.
    #[cfg(feature = "deadlines")]
    found_hung: Mutex<Vec<Run>>,
    /// Set when the pool was shut down on one of its own threads, which cannot wait for the
    /// others: the last thread out then hands what is left to the sink (`after_leaving`).
    orphaned: AtomicBool,
    started: Instant,
}

/// A supervisor with `W` worker threads and a queue of `N` tasks. See the [module
/// docs](self) for what it promises.
///
/// Dropping the pool aborts it: running tasks finish, queued ones go to the sink as
/// [`Event::HandedBack`], and every thread is joined (dropped on one of its own threads, it
/// does not wait: see the [module docs](self)).
///
/// The pool does not lend out its supervisor (see the [module docs](self)):
///
/// ```compile_fail
/// # use foreman_rt::{host::threads::Pool, policy::Policy};
/// let pool = Pool::<u32, (), (), 4, 1>::start(Policy::DEFAULT, |_, _| Ok(()), |_| {}).unwrap();
/// pool.supervisor().reopen(); // no such method: the pool owns its lifecycle
/// ```
pub struct Pool<
    T: Send + 'static,
    R: 'static,
    E: 'static,
    const N: usize,
    const W: usize,
    K: Handling = NoHandles,
> {
    shared: Arc<Shared<T, R, E, N, W, K>>,
    watchdog: Option<JoinHandle<()>>,
    finished: bool,
}

impl<T: Send + 'static, R: 'static, E: 'static, const N: usize, const W: usize, K: Handling>
    Pool<T, R, E, N, W, K>
{
    /// Starts `W` worker threads running `handler` on each task, and sends every [`Event`] to
    /// `sink`. With a watchdog in `policy`, also a watchdog thread (ticks are milliseconds).
    ///
    /// Fails only if a thread cannot be spawned; nothing is left running then.
    ///
    /// The supervisor is built in place on the heap ([`Supervisor::init`]), never on the
    /// caller's stack, however large the queue and the task type.
    ///
    /// ```
    /// use foreman_rt::host::threads::Pool;
    /// use foreman_rt::policy::Policy;
    ///
    /// let pool = Pool::<u32, u32, (), 16, 2>::start(Policy::DEFAULT, |_, n| Ok(n + 1), |_| {})?;
    /// pool.submit(1).unwrap();
    /// assert_eq!(pool.drain().snapshot.completed, 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn start<H, S>(policy: Policy, handler: H, sink: S) -> io::Result<Self>
    where
        H: Fn(&Context<'_>, &T) -> Result<R, E> + Send + Sync + 'static,
        S: Fn(Event<T, R, E, String>) + Send + Sync + 'static,
    {
        let shared = Shared::new(policy, Box::new(handler), Box::new(sink));
        let mut pool = Pool {
            shared,
            watchdog: None,
            finished: false,
        };
        // On an error below, dropping `pool` aborts it (sweeping the reservations of threads
        // that never started) and joins what did start: nothing is left running.
        for index in 0..W {
            // A fresh supervisor: every slot is vacant, so the reservation cannot fail.
            let _ = pool.shared.sup.reserve(index);
            Shared::spawn_worker(&pool.shared, index)?;
        }
        // A pool of `Handles` keeps the clock for its tasks' deadlines.
        if policy.watchdog().is_some() || (K::HANDLES && cfg!(feature = "deadlines")) {
            let shared = Arc::clone(&pool.shared);
            let watchdog = thread::Builder::new()
                .name("foreman-watchdog".into())
                .stack_size(Shared::<T, R, E, N, W, K>::stack_size())
                .spawn(move || shared.watch())?;
            // Registered before the pool is handed out, so every shutdown can wake it.
            let _ = pool.shared.watchdog.set(watchdog.thread().clone());
            pool.watchdog = Some(watchdog);
        }
        Ok(pool)
    }

    /// Submits a task, parking while the queue is full. After a shutdown began, the task
    /// comes back in [`SubmitError::Closed`].
    ///
    /// On one of the pool's own threads (inside a task, or in the sink) it never parks: a full
    /// queue hands the task back in [`SubmitError::Full`] at once, since the thread waiting
    /// for room would be one of those that make it (see the [module docs](self)).
    ///
    /// ```
    /// # use foreman_rt::{host::threads::Pool, policy::Policy};
    /// let pool = Pool::<u32, (), (), 4, 1>::start(Policy::DEFAULT, |_, _| Ok(()), |_| {})?;
    /// for n in 0..100 {
    ///     pool.submit(n).unwrap(); // more tasks than the queue holds: back-pressure
    /// }
    /// assert_eq!(pool.drain().snapshot.completed, 100);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// A task that fans out into its own pool gets a child back when the queue is full, and
    /// decides what to do with it; here, it visits the child itself. Nothing stalls, however
    /// small the queue:
    ///
    /// ```
    /// use foreman_rt::{host::threads::Pool, policy::Policy, SubmitError};
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::{Arc, OnceLock, Weak};
    ///
    /// type Tree = Pool<u32, (), (), 2, 2>;
    /// static VISITED: AtomicUsize = AtomicUsize::new(0);
    /// let me: Arc<OnceLock<Weak<Tree>>> = Arc::default();
    /// let handle = Arc::clone(&me);
    /// let pool = Arc::new(Tree::start(
    ///     Policy::DEFAULT,
    ///     move |_, &depth| {
    ///         let pool = handle.get().and_then(Weak::upgrade).expect("the pool is running");
    ///         let mut here = vec![depth];
    ///         while let Some(depth) = here.pop() {
    ///             VISITED.fetch_add(1, Ordering::Relaxed);
    ///             for _ in 0..2 {
    ///                 if depth < 5 {
    ///                     if let Err(SubmitError::Full(child)) = pool.submit(depth + 1) {
    ///                         here.push(child); // the queue is full: visit it here
    ///                     }
    ///                 }
    ///             }
    ///         }
    ///         Ok(())
    ///     },
    ///     |_| {},
    /// )?);
    /// me.set(Arc::downgrade(&pool)).unwrap();
    /// pool.submit(0).unwrap();
    /// while VISITED.load(Ordering::Relaxed) < 63 {
    ///     std::thread::yield_now(); // a binary tree of depth 5 has 63 nodes
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn submit(&self, task: T) -> Result<(), SubmitError<T>> {
        self.shared.submit(K::plain(task)).map_err(K::refused)
    }

    /// Submits a task without blocking; a refused task comes back in the error.
    ///
    /// ```
    /// # use foreman_rt::{host::threads::Pool, policy::Policy, SubmitError};
    /// let pool = Pool::<u32, (), (), 4, 1>::start(Policy::DEFAULT, |_, _| Ok(()), |_| {})?;
    /// match pool.try_submit(7) {
    ///     Ok(()) => {}
    ///     Err(SubmitError::Full(task)) => println!("busy, task {task} came back"),
    ///     Err(SubmitError::Closed(task)) => println!("shut down, task {task} came back"),
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_submit(&self, task: T) -> Result<(), SubmitError<T>> {
        self.shared
            .sup
            .try_submit(K::plain(task))
            .map_err(K::refused)
    }

    /// The supervisor's counters and worker states.
    ///
    /// ```
    /// # use foreman_rt::{host::threads::Pool, policy::Policy};
    /// let pool = Pool::<u32, (), (), 4, 2>::start(Policy::DEFAULT, |_, _| Ok(()), |_| {})?;
    /// assert!(pool.snapshot().adds_up());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn snapshot(&self) -> Snapshot<W> {
        self.shared.sup.snapshot()
    }

    /// Where the pool is in its lifecycle.
    ///
    /// ```
    /// # use foreman_rt::{host::threads::Pool, policy::Policy};
    /// use foreman_rt::SupervisorState;
    /// let pool = Pool::<u32, (), (), 4, 2>::start(Policy::DEFAULT, |_, _| Ok(()), |_| {})?;
    /// assert_eq!(pool.state(), SupervisorState::Running);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn state(&self) -> SupervisorState {
        self.shared.sup.state()
    }

    /// What worker `index` is doing, or `None` if there is no such worker.
    ///
    /// ```
    /// # use foreman_rt::{host::threads::Pool, policy::Policy};
    /// let pool = Pool::<u32, (), (), 4, 2>::start(Policy::DEFAULT, |_, _| Ok(()), |_| {})?;
    /// assert!(pool.worker_state(1).is_some());
    /// assert_eq!(pool.worker_state(2), None);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn worker_state(&self, index: usize) -> Option<WorkerState> {
        self.shared.sup.worker_state(index)
    }

    /// Gives up on a run — a task running on a worker, a hung one typically, named by the
    /// [`Event::Hung`] that reported it, by [`current_run`](Self::current_run) or by the task's
    /// [`Context::run`](crate::Context::run): when the task returns or panics, its outcome is discarded and the task is recovered as from a crash —
    /// retried, dead-lettered or reported lost per the delivery policy, in an
    /// [`Event::Crashed`] — and a replacement thread takes the slot per the restart policy.
    /// Threads cannot be killed: until the task returns, it keeps its thread.
    ///
    /// Fails with a [`WorkerError`] if that run has ended (its task finished first, say — even
    /// if the worker started another task since, which is left alone) or the worker does not
    /// exist; nothing changes then.
    ///
    /// ```
    /// use foreman_rt::host::{threads::Pool, Event};
    /// use foreman_rt::{policy::Policy, Disposition, WorkerState};
    /// use std::sync::mpsc;
    ///
    /// let (events, received) = mpsc::channel();
    /// let (release, released) = mpsc::channel::<()>();
    /// let released = std::sync::Mutex::new(released);
    /// let pool = Pool::<u32, (), (), 4, 1>::start(
    ///     Policy::DEFAULT.with_watchdog(20).unwrap(),
    ///     move |ctx, _| {
    ///         if ctx.attempt() == 1 {
    ///             released.lock().unwrap().recv().unwrap(); // hangs until released
    ///         }
    ///         Ok(())
    ///     },
    ///     move |event| events.send(event).unwrap(),
    /// )?;
    /// pool.submit(7).unwrap();
    /// let Event::Hung { run, .. } = received.recv().unwrap() else { panic!("not hung") };
    /// pool.condemn(run).unwrap();
    /// release.send(()).unwrap(); // the hung run returns: its outcome is discarded
    /// let report = pool.drain(); // the retry ran on a replacement thread
    /// assert_eq!((report.snapshot.completed, report.snapshot.crashes()), (1, 1));
    /// assert!(received.try_iter().any(|event| matches!(
    ///     event,
    ///     Event::Crashed { task: Some(Disposition::Retried { attempt: 2 }), .. }
    /// )));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn condemn(&self, run: Run) -> Result<(), WorkerError> {
        self.shared.sup.condemn(run)
    }

    /// The run worker `index` is on, or `None` if it runs no task: see
    /// [`Supervisor::current_run`](crate::Supervisor::current_run).
    ///
    /// ```
    /// # use foreman_rt::{host::threads::Pool, policy::Policy};
    /// let pool = Pool::<u32, (), (), 4, 1>::start(Policy::DEFAULT, |_, _| Ok(()), |_| {})?;
    /// assert_eq!(pool.current_run(0), None); // idle
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn current_run(&self, index: usize) -> Option<Run> {
        self.shared.sup.current_run(index)
    }

    /// Starts a graceful shutdown and returns at once: no more submissions; the workers run
    /// everything queued. [`drain`](Self::drain), [`abort`](Self::abort) or dropping the pool
    /// then waits for it. For a task that shuts its own pool down, or to stop submissions
    /// before waiting. Idempotent; a no-op after an abort.
    ///
    /// ```
    /// # use foreman_rt::{host::threads::Pool, policy::Policy, SubmitError, SupervisorState};
    /// let pool = Pool::<u32, (), (), 4, 1>::start(Policy::DEFAULT, |_, _| Ok(()), |_| {})?;
    /// pool.submit(1).unwrap();
    /// pool.begin_drain();
    /// assert_eq!(pool.submit(2), Err(SubmitError::Closed(2)));
    /// assert_eq!(pool.drain().snapshot.completed, 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn begin_drain(&self) -> SupervisorState {
        self.shared.sup.drain()
    }

    /// Starts an immediate shutdown and returns at once: no more submissions, and no task
    /// starts from now on; running ones finish. [`abort`](Self::abort) (or `drain`, or
    /// dropping the pool) then waits for them and takes the queued tasks back. Idempotent.
    ///
    /// ```
    /// # use foreman_rt::{host::threads::Pool, policy::Policy};
    /// # use std::sync::{Arc, Barrier};
    /// let gate = Arc::new(Barrier::new(2));
    /// let worker_gate = gate.clone();
    /// let pool = Pool::<u32, (), (), 8, 1>::start(
    ///     Policy::DEFAULT,
    ///     move |_, _| { worker_gate.wait(); Ok(()) }, // task 0 waits for the test
    ///     |_| {},
    /// )?;
    /// (0..5).for_each(|n| pool.try_submit(n).unwrap());
    /// while pool.snapshot().in_flight == 0 {} // the worker holds task 0
    /// pool.begin_abort(); // from here on no task starts (returns at once)
    /// gate.wait(); // let task 0 finish
    /// let report = pool.abort(); // waits for the worker, takes the rest back
    /// assert_eq!(report.snapshot.completed, 1);
    /// assert_eq!(report.handed_back, [1, 2, 3, 4]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn begin_abort(&self) -> SupervisorState {
        self.shared.sup.abort()
    }

    /// Graceful shutdown: stops accepting, lets the workers run everything queued, waits for
    /// every thread, and reports. Tasks that could not run (every worker retired) are in the
    /// report, not sent to the sink.
    ///
    /// Called on one of the pool's own threads, it cannot wait (see the [module docs](self)):
    /// it starts the drain and returns the snapshot of that moment; what is left at the end
    /// goes to the sink.
    ///
    /// ```
    /// # use foreman_rt::{host::threads::Pool, policy::Policy};
    /// let pool = Pool::<u32, (), (), 8, 2>::start(Policy::DEFAULT, |_, _| Ok(()), |_| {})?;
    /// (0..8).for_each(|n| pool.try_submit(n).unwrap());
    /// let report = pool.drain();
    /// assert_eq!((report.snapshot.completed, report.handed_back.len()), (8, 0));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn drain(mut self) -> Report<T, W> {
        self.shared.sup.drain();
        self.finish(Leftovers::InReport)
    }

    /// Immediate shutdown: stops accepting, lets running tasks finish, waits for every
    /// thread, and returns the queued tasks in the report.
    ///
    /// Called on one of the pool's own threads, it cannot wait (see the [module docs](self)):
    /// it starts the abort and returns the snapshot of that moment; the queued tasks go to the
    /// sink once the last thread is out.
    ///
    /// ```
    /// # use foreman_rt::{host::threads::Pool, policy::Policy};
    /// let pool = Pool::<u32, (), (), 8, 1>::start(Policy::DEFAULT, |_, _| Ok(()), |_| {})?;
    /// pool.submit(1).unwrap();
    /// let report = pool.abort();
    /// assert_eq!(report.snapshot.completed + report.handed_back.len(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn abort(mut self) -> Report<T, W> {
        self.shared.sup.abort();
        self.finish(Leftovers::InReport)
    }

    /// Waits for the supervisor to stop and every thread to end, then takes back what is left.
    /// On one of the pool's own threads, leaves that to the last thread out instead.
    fn finish(&mut self, leftovers: Leftovers) -> Report<T, W> {
        self.finished = true;
        let shared = &self.shared;
        if shared.on_own_thread() {
            shared.orphan();
            return Report {
                snapshot: shared.sup.snapshot(),
                handed_back: Vec::new(),
            };
        }
        shared.sup.wait_stopped();
        // Replacements may still be registering while the last workers leave: join until none
        // is left.
        loop {
            let threads = mem::take(
                &mut *shared
                    .threads
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner),
            );
            if threads.is_empty() {
                break;
            }
            for thread in &threads {
                // A replacement sleeping out its restart backoff sees the shutdown now.
                thread.thread().unpark();
            }
            for thread in threads {
                // A worker thread's panics are caught inside it; a join error cannot happen.
                let _ = thread.join();
            }
        }
        shared.wake_watchdog();
        if let Some(watchdog) = self.watchdog.take() {
            let _ = watchdog.join();
        }
        let mut handed_back = Vec::new();
        for entry in shared.sup.hand_back() {
            let (task, resolver) = K::into_parts(entry);
            let event = Event::HandedBack { task };
            // A task with a handle goes back to it; without one (or with one dropped), here.
            let Some(Event::HandedBack { task }) =
                Shared::<T, R, E, N, W, K>::to_handle(resolver, event)
            else {
                continue;
            };
            match leftovers {
                Leftovers::ToSink => shared.emit(Event::HandedBack { task }),
                Leftovers::InReport => handed_back.push(task),
            }
        }
        Report {
            snapshot: shared.sup.snapshot(),
            handed_back,
        }
    }
}

/// Submissions with a handle: in a pool of [`Handles`].
impl<T: Send + 'static, R: Send + 'static, E: Send + 'static, const N: usize, const W: usize>
    Pool<T, R, E, N, W, Handles>
{
    /// Submits a task as [`submit`](Pool::submit) does (parking while the queue is full, but
    /// never on one of the pool's own threads), and returns a [`TaskHandle`] to its one
    /// outcome: its final [`Event`], which goes to the handle instead of the sink. A refused
    /// task comes back in the error, and no handle is made.
    ///
    /// Costs one allocation (the handle's), which tasks submitted without a handle do not pay.
    ///
    /// ```
    /// use foreman_rt::host::{threads::{Handles, Pool}, Event};
    /// use foreman_rt::policy::Policy;
    ///
    /// let pool = Pool::<u64, u64, (), 8, 2, Handles>::start(Policy::DEFAULT, |_, n| Ok(n * n), |_| {})?;
    /// let handles: Vec<_> = (1..=4).map(|n| pool.submit_with_handle(n).unwrap()).collect();
    /// let squares: Vec<u64> = handles
    ///     .into_iter()
    ///     .map(|handle| match handle.wait() {
    ///         Ok(Event::Completed { output, .. }) => output,
    ///         other => panic!("unexpected {other:?}"),
    ///     })
    ///     .collect();
    /// assert_eq!(squares, [1, 4, 9, 16]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn submit_with_handle(&self, task: T) -> Result<TaskHandle<T, R, E>, SubmitError<T>> {
        self.submit_with_options(task, TaskOptions::DEFAULT)
    }

    /// Submits a task as [`submit_with_handle`](Pool::submit_with_handle) does, with
    /// `options` for it: a deadline for each of its runs ([`TaskOptions::with_deadline`]).
    ///
    /// ```
    /// use foreman_rt::host::{threads::{Handles, Pool, TaskOptions}, Event};
    /// use foreman_rt::policy::Policy;
    ///
    /// let pool = Pool::<u32, u32, (), 8, 2, Handles>::start(Policy::DEFAULT, |_, n| Ok(n + 1), |_| {})?;
    /// let options = TaskOptions::DEFAULT.with_deadline(60_000); // a minute per run at most
    /// let handle = pool.submit_with_options(1, options).unwrap();
    /// assert!(matches!(handle.wait(), Ok(Event::Completed { output: 2, .. })));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn submit_with_options(
        &self,
        task: T,
        options: TaskOptions,
    ) -> Result<TaskHandle<T, R, E>, SubmitError<T>> {
        let (handle, entry) = self.shared.handle(task, options);
        self.shared.submit(entry).map_err(Handles::refused)?;
        Ok(handle)
    }

    /// Submits a task without blocking, as [`try_submit`](Pool::try_submit) does, and returns
    /// a [`TaskHandle`] to its one outcome (see
    /// [`submit_with_handle`](Pool::submit_with_handle)). A refused task comes back in the
    /// error.
    ///
    /// ```
    /// # use foreman_rt::{host::{threads::{Handles, Pool}, Event}, policy::Policy, SubmitError};
    /// let pool = Pool::<u32, u32, (), 4, 1, Handles>::start(Policy::DEFAULT, |_, n| Ok(*n), |_| {})?;
    /// match pool.try_submit_with_handle(7) {
    ///     Ok(handle) => assert!(matches!(handle.wait(), Ok(Event::Completed { output: 7, .. }))),
    ///     Err(SubmitError::Full(task) | SubmitError::Closed(task)) => assert_eq!(task, 7),
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_submit_with_handle(&self, task: T) -> Result<TaskHandle<T, R, E>, SubmitError<T>> {
        self.try_submit_with_options(task, TaskOptions::DEFAULT)
    }

    /// Submits a task without blocking, as
    /// [`try_submit_with_handle`](Pool::try_submit_with_handle) does, with `options` for it
    /// (see [`submit_with_options`](Pool::submit_with_options)).
    ///
    /// ```
    /// # use foreman_rt::{host::{threads::{Handles, Pool, TaskOptions}, Event}, policy::Policy};
    /// let pool = Pool::<u32, u32, (), 4, 1, Handles>::start(Policy::DEFAULT, |_, n| Ok(*n), |_| {})?;
    /// let options = TaskOptions::DEFAULT.with_deadline(1_000);
    /// if let Ok(handle) = pool.try_submit_with_options(7, options) {
    ///     assert!(matches!(handle.wait(), Ok(Event::Completed { output: 7, .. })));
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_submit_with_options(
        &self,
        task: T,
        options: TaskOptions,
    ) -> Result<TaskHandle<T, R, E>, SubmitError<T>> {
        let (handle, entry) = self.shared.handle(task, options);
        self.shared
            .sup
            .try_submit(entry)
            .map_err(Handles::refused)?;
        Ok(handle)
    }
}

/// Where `Pool::finish` puts the tasks a shutdown leaves.
#[derive(Clone, Copy)]
enum Leftovers {
    /// `drain`, `abort`: in the report.
    InReport,
    /// Drop: to the sink, as [`Event::HandedBack`].
    ToSink,
}

impl<T: Send + 'static, R: 'static, E: 'static, const N: usize, const W: usize, K: Handling> Drop
    for Pool<T, R, E, N, W, K>
{
    fn drop(&mut self) {
        if !self.finished {
            self.shared.sup.abort();
            self.finish(Leftovers::ToSink);
        }
    }
}

impl<T: Send + 'static, R: 'static, E: 'static, const N: usize, const W: usize, K: Handling>
    fmt::Debug for Pool<T, R, E, N, W, K>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("supervisor", &self.shared.sup)
            .finish()
    }
}

impl<T: Send + 'static, R: 'static, E: 'static, const N: usize, const W: usize, K: Handling>
    Shared<T, R, E, N, W, K>
{
    /// The pool's shared state, built in place on the heap: the supervisor may be far larger
    /// than a thread's stack.
    fn new(policy: Policy, handler: Box<Handler<T, R, E>>, sink: Box<Sink<T, R, E>>) -> Arc<Self> {
        let mut shared = Arc::<Self>::new_uninit();
        let place = Arc::get_mut(&mut shared).expect("a new Arc has no other owner");
        let this = place.as_mut_ptr();
        // SAFETY: `this` points to the Arc's uninitialized, aligned and unshared value. Each
        // field is written once through a raw pointer, the supervisor in place through a
        // `MaybeUninit` view of its field (same layout), and no reference to uninitialized
        // memory is made.
        unsafe {
            Supervisor::init(
                &mut *(&raw mut (*this).sup)
                    .cast::<MaybeUninit<Supervisor<K::Entry<T, R, E>, N, W, ThreadPark>>>(),
                policy,
                ThreadPark,
            );
            (&raw mut (*this).handler).write(handler);
            (&raw mut (*this).sink).write(sink);
            (&raw mut (*this).threads).write(Mutex::new(Vec::with_capacity(W)));
            (&raw mut (*this).watchdog).write(OnceLock::new());
            (&raw mut (*this).period).write(StdAtomicU32::new(Self::first_period(policy)));
            #[cfg(feature = "deadlines")]
            (&raw mut (*this).deadlines).write(std::array::from_fn(|_| Mutex::new(None)));
            #[cfg(feature = "deadlines")]
            (&raw mut (*this).found_hung).write(Mutex::new(Vec::new()));
            (&raw mut (*this).orphaned).write(AtomicBool::new(false));
            (&raw mut (*this).started).write(Instant::now());
        }
        // SAFETY: every field was initialized above.
        unsafe { shared.assume_init() }
    }

    /// The watchdog's first period (ms): a quarter of the policy's watchdog deadline; in a pool
    /// of `Handles` without one, `IDLE_PERIOD` until a task with a deadline comes.
    fn first_period(policy: Policy) -> Tick {
        match policy.watchdog() {
            Some(deadline) => (deadline / 4).max(1),
            #[cfg(feature = "deadlines")]
            None if K::HANDLES => IDLE_PERIOD,
            None => Tick::MAX,
        }
    }

    /// The stack of a pool thread: tasks, outcomes and the events that carry them move by
    /// value on the workers' stacks, and left-over tasks on the last thread out's (the
    /// watchdog's, say).
    fn stack_size() -> usize {
        stack_size(
            mem::size_of::<T>()
                + mem::size_of::<Result<R, E>>()
                + mem::size_of::<Event<T, R, E, String>>(),
        )
    }

    /// This pool's identity for `OwnThread`.
    fn id(&self) -> *const () {
        (self as *const Self).cast()
    }

    /// Whether the current thread is one of this pool's (a worker or the watchdog).
    fn on_own_thread(&self) -> bool {
        super::OwnThread::is(self.id())
    }

    /// Milliseconds since the pool started, wrapping.
    fn now(&self) -> Tick {
        self.started.elapsed().as_millis() as Tick
    }

    /// Sends an event. A panicking sink must not take the thread's bookkeeping down with it:
    /// the panic is reported on stderr, and the event it was given goes with it (see the
    /// module docs). Inlined, its panic path out of line: a worker emits after every task,
    /// and inlined the event is built where the sink reads it, not built and then copied.
    #[inline]
    fn emit(&self, event: Event<T, R, E, String>) {
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| (self.sink)(event))) {
            sink_panicked(payload);
        }
    }

    /// Sends a task's final event to its handle, or to the sink if it has none (or the
    /// handle was dropped). Inlined: without a handle, it is `emit`.
    #[inline]
    fn deliver(&self, resolver: Option<Resolver<T, R, E>>, event: Event<T, R, E, String>) {
        match resolver {
            None => self.emit(event),
            Some(resolver) => self.resolve(resolver, event),
        }
    }

    /// Gives a task's final event to the handle of `resolver`, or to the sink if the handle
    /// was dropped. Out of line: tasks without a handle never come here.
    #[cold]
    #[inline(never)]
    fn resolve(&self, resolver: Resolver<T, R, E>, event: Event<T, R, E, String>) {
        if let Some(event) = resolver.resolve(event) {
            self.emit(event);
        }
    }

    /// Gives `event` to the handle of `resolver`, if any and not dropped; otherwise gives it
    /// back.
    fn to_handle(
        resolver: Option<Resolver<T, R, E>>,
        event: Event<T, R, E, String>,
    ) -> Option<Event<T, R, E, String>> {
        match resolver {
            None => Some(event),
            Some(resolver) => resolver.resolve(event),
        }
    }

    /// Submits an entry; on one of the pool's own threads without parking (see
    /// [`Pool::submit`]).
    #[inline]
    fn submit(&self, entry: K::Entry<T, R, E>) -> Result<(), SubmitError<K::Entry<T, R, E>>> {
        if self.on_own_thread() {
            return self.sup.try_submit(entry);
        }
        self.sup.submit(entry)
    }

    /// The shutdown was asked for on one of the pool's own threads, which cannot wait for the
    /// others: leave the end to the last thread out (`after_leaving`), or do it now if every
    /// worker has left already.
    fn orphan(&self) {
        // Relaxed, with the fence in `after_leaving` (Dekker against the last thread out's
        // SeqCst leave and fence): either it sees the flag, or we see it stopped.
        self.orphaned.store(true, Ordering::Relaxed);
        self.after_leaving();
    }

    /// Run by every pool thread on its way out (and by `orphan`): if the pool was shut down
    /// on one of its own threads and every worker has left, wake the watchdog and hand what
    /// is left to the sink. Several threads may do it: each task is handed back once.
    fn after_leaving(&self) {
        // SeqCst fence: see `orphan`.
        fence(Ordering::SeqCst);
        // Relaxed: ordered by the fence.
        if self.orphaned.load(Ordering::Relaxed) && self.sup.is_stopped() {
            self.wake_watchdog();
            for entry in self.sup.hand_back() {
                let (task, resolver) = K::into_parts(entry);
                self.deliver(resolver, Event::HandedBack { task });
            }
        }
    }

    /// Wakes the watchdog so that it sees the supervisor stopped now, not a period later.
    fn wake_watchdog(&self) {
        if let Some(watchdog) = self.watchdog.get() {
            watchdog.unpark();
        }
    }

    /// Spawns the thread for slot `index` (reserved, or Restarting) and registers it.
    fn spawn_worker(this: &Arc<Self>, index: usize) -> io::Result<()> {
        let shared = Arc::clone(this);
        let thread = thread::Builder::new()
            .name(format!("foreman-worker-{index}"))
            .stack_size(Self::stack_size())
            .spawn(move || shared.run_worker(index))?;
        let mut threads = this.threads.lock().unwrap_or_else(PoisonError::into_inner);
        // Threads that have ended (crashed workers) need no join: keep the list to the living,
        // however many replacements a long life brings.
        threads.retain(|thread| !thread.is_finished());
        threads.push(thread);
        Ok(())
    }

    /// One worker thread: its tasks, then its part of an orphaned shutdown.
    fn run_worker(self: Arc<Self>, index: usize) {
        let _own = super::OwnThread::enter(self.id());
        self.work(index);
        self.after_leaving();
    }

    /// Attaches, and runs tasks until told to leave or a crash (or condemnation) ends this
    /// worker.
    fn work(self: &Arc<Self>, index: usize) {
        // Fails only if a shutdown swept the reservation away: nothing to do then.
        let Some(mut worker) = self.attach(index) else {
            return;
        };
        while let Some(job) = worker.next_blocking() {
            let ctx = job.context();
            // Without handles, always `Run`: the match compiles away.
            match K::admit(job.task(), ctx.run()) {
                Admit::Run => {}
                #[cfg(feature = "deadlines")]
                Admit::Within(ticks) => {
                    // Registered first: the watchdog condemns the run once it passes.
                    *self.deadlines[index]
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) = Some(OwnDeadline {
                        run: ctx.run(),
                        ticks,
                        passed: false,
                    });
                    job.set_deadline(ticks);
                }
                #[cfg(feature = "cancellation")]
                Admit::Cancelled => {
                    // Cancelled by its handle before this run started: it never runs.
                    match job.cancel().map(K::into_parts) {
                        Ok((task, resolver)) => {
                            self.deliver(resolver, Event::Cancelled { worker: None, task });
                            continue;
                        }
                        Err(Condemned) => return self.condemned(index),
                    }
                }
            }
            match panic::catch_unwind(AssertUnwindSafe(|| {
                (self.handler)(&ctx, K::task(job.task()))
            })) {
                // Cancelled while it ran (or condemned): its result is discarded.
                #[cfg(feature = "cancellation")]
                Ok(result) if K::HANDLES && job.is_cancelled() => {
                    discard(result);
                    match job.cancel().map(K::into_parts) {
                        Ok((task, resolver)) => self.deliver(
                            resolver,
                            Event::Cancelled {
                                worker: Some(index),
                                task,
                            },
                        ),
                        Err(Condemned) => return self.condemned(index),
                    }
                }
                Ok(result) => match job.finish(result.is_err()).map(K::into_parts) {
                    // Without a handle (the hot path), the event is built where the sink
                    // reads it, as `emit` inlined does; with one, out of line.
                    Ok((task, None)) => self.emit(outcome(index, task, result)),
                    Ok((task, Some(resolver))) => {
                        self.resolve(resolver, outcome(index, task, result))
                    }
                    Err(Condemned) => {
                        // Condemned (or cancelled) while it ran: the late outcome is
                        // discarded, and the task waits in the slot for the recovery a crash
                        // would get.
                        discard(result);
                        return self.condemned(index);
                    }
                },
                Err(payload) => {
                    let cause = message(&*payload);
                    discard(payload);
                    // Restarts are timed by the supervisor's clock: bring it up to date.
                    self.tick();
                    let report = job.crash();
                    self.after_crash(index, cause, report);
                    return; // this thread ends; the replacement owns the slot
                }
            }
        }
        if worker.exit() == Decision::Recycle {
            // Its quota of tasks run: a fresh thread takes the slot over.
            self.emit(Event::Recycled { worker: index });
            self.replace(index);
        }
    }

    /// The run of worker `index` was condemned (or cancelled) while it ran, and has let go of
    /// its task: recovers it as from a crash, and reports it. This thread then ends.
    #[cold]
    fn condemned(self: &Arc<Self>, index: usize) {
        // Restarts are timed by the supervisor's clock: bring it up to date.
        self.tick();
        // Cannot fail: the pool lends its supervisor to nobody, and this thread is the only
        // one that recovers this slot now.
        if let Ok(report) = self.sup.recover(index) {
            let cause = self.condemned_cause(index);
            self.after_crash(index, cause, report);
        }
    }

    /// Why worker `index`'s run was condemned: it passed its own deadline, or the host
    /// condemned it (as hung, typically).
    fn condemned_cause(&self, index: usize) -> String {
        #[cfg(feature = "deadlines")]
        if let Some(OwnDeadline {
            ticks,
            passed: true,
            ..
        }) = *self.deadlines[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
        {
            // The flag is of this worker's last run with a deadline: a run condemned for it
            // is that one (a later run would have replaced the record).
            return format!(
                "past its deadline of {ticks} ms; the outcome it returned late was discarded"
            );
        }
        #[cfg(not(feature = "deadlines"))]
        let _ = index;
        CONDEMNED.to_string()
    }

    /// Attaches this thread to slot `index`. A replacement after a crash first sleeps out the
    /// restart backoff, if the policy has one (a shutdown wakes it: `Pool::finish`). `None` if
    /// a shutdown swept the slot away.
    fn attach(
        &self,
        index: usize,
    ) -> Option<crate::Worker<'_, K::Entry<T, R, E>, N, W, ThreadPark>> {
        loop {
            match self.sup.attach(index) {
                Ok(worker) => return Some(worker),
                Err(WorkerError::BackingOff { ready_at, .. }) => {
                    let wait = ready_at.wrapping_sub(self.now());
                    if wait <= crate::policy::MAX_DURATION {
                        thread::park_timeout(Duration::from_millis(u64::from(wait)));
                    }
                    // The supervisor's clock decides: bring it up to date.
                    self.tick();
                }
                Err(_) => return None,
            }
        }
    }

    /// Reports a crash (or condemnation) and starts the replacement the supervisor asked for.
    fn after_crash(
        self: &Arc<Self>,
        index: usize,
        cause: String,
        report: CrashReport<K::Entry<T, R, E>>,
    ) {
        let replace = report.decision == Decision::Replace;
        let (task, resolver) = match report.task.map(split::<K, T, R, E>) {
            Some((task, resolver)) => (Some(task), resolver),
            None => (None, None),
        };
        let event = match task {
            // A cancelled run that died (or whose result came too late): cancelled, not a
            // crash — not retried, and charged to nothing.
            Some(Disposition::Cancelled(task)) => Event::Cancelled {
                worker: Some(index),
                task,
            },
            task => Event::Crashed {
                worker: index,
                cause,
                task,
                decision: report.decision,
            },
        };
        self.deliver(resolver, event);
        if replace {
            self.replace(index);
        }
    }

    /// Starts the replacement the supervisor asked for, or retires the slot if no thread can
    /// be spawned (handing its retry back through the sink).
    fn replace(self: &Arc<Self>, index: usize) {
        if let Err(err) = Self::spawn_worker(self, index) {
            std::eprintln!("foreman: cannot start a replacement for worker {index}: {err}");
            if let Ok(Some(entry)) = self.sup.retire(index) {
                let (task, resolver) = K::into_parts(entry);
                self.deliver(resolver, Event::HandedBack { task });
            }
        }
    }

    /// The watchdog thread: ticks the clock and reports hangs every period (`self.period`,
    /// which a task's deadline may shorten: it wakes the thread) until the supervisor stops.
    /// A shutdown wakes it at once (`wake_watchdog`).
    fn watch(self: Arc<Self>) {
        let _own = super::OwnThread::enter(self.id());
        loop {
            // Relaxed: a period read late only delays one tick.
            let period = self.period.load(Ordering::Relaxed);
            thread::park_timeout(Duration::from_millis(u64::from(period)));
            if self.sup.is_stopped() {
                break;
            }
            self.tick();
        }
        self.after_leaving();
    }

    /// Feeds the supervisor's clock (milliseconds since the pool started) and reports the
    /// workers its watchdog flags hung. The watchdog thread ticks every `period`; a crash's
    /// recovery ticks first, since restarts are timed by this clock.
    fn tick(&self) {
        #[cfg(feature = "deadlines")]
        if K::HANDLES {
            // Hangs a submitter's tick found (`keep_time_for`): reported here, on a pool thread.
            let found = mem::take(
                &mut *self
                    .found_hung
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner),
            );
            for run in found {
                self.hung(run);
            }
        }
        for run in self.sup.tick(self.now()) {
            self.hung(run);
        }
    }

    /// Reports a run the watchdog flagged hung, and condemns it if it passed a deadline of its
    /// own (a task's option: the pool acts on it, as the policy's watchdog leaves the call to
    /// the application).
    fn hung(&self, run: Run) {
        let worker = run.worker();
        self.emit(Event::Hung { worker, run });
        #[cfg(feature = "deadlines")]
        if K::HANDLES {
            let passed = match &mut *self.deadlines[worker]
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
            {
                Some(own) if own.run == run => {
                    own.passed = true;
                    true
                }
                _ => false,
            };
            if passed {
                // `RunEnded`: it returned meanwhile, with its outcome.
                let _ = self.sup.condemn(run);
            }
        }
    }

    /// A pool of `Handles` about to take a task with a deadline of `ticks`: the watchdog must
    /// tick at least four times within it. If it ticked more slowly until now, its clock is
    /// brought up to date before the task can start (a run's start is stamped with it), and
    /// the watchdog woken to tick at the new pace. Hangs that tick finds are left for the
    /// watchdog to report: the caller's thread is the application's, not the sink's.
    #[cfg(feature = "deadlines")]
    fn keep_time_for(&self, ticks: Tick) {
        let period = (ticks / 4).max(1);
        // Relaxed: the clock below is what the run's start needs; the period only paces.
        if self.period.fetch_min(period, Ordering::Relaxed) > period {
            let found = self.sup.tick(self.now());
            if !found.is_empty() {
                self.found_hung
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .extend(found);
            }
            self.wake_watchdog();
        }
    }
}

impl<T: Send + 'static, R: Send + 'static, E: Send + 'static, const N: usize, const W: usize>
    Shared<T, R, E, N, W, Handles>
{
    /// A handle for `task`, and the entry that takes the task into the queue with `options`.
    fn handle(
        self: &Arc<Self>,
        task: T,
        options: TaskOptions,
    ) -> (TaskHandle<T, R, E>, handle::Entry<T, R, E>) {
        #[cfg(feature = "deadlines")]
        if let Some(ticks) = options.deadline() {
            self.keep_time_for(ticks);
        }
        TaskHandle::new(
            task,
            options,
            self.id(),
            #[cfg(feature = "cancellation")]
            {
                let runs: std::sync::Weak<dyn handle::CancelRun> = Arc::<Self>::downgrade(self);
                runs
            },
        )
    }
}

#[cfg(feature = "cancellation")]
impl<T: Send + 'static, R: 'static, E: 'static, const N: usize, const W: usize, K: Handling>
    handle::CancelRun for Shared<T, R, E, N, W, K>
{
    fn cancel_run(&self, run: Run) -> Result<(), WorkerError> {
        self.sup.cancel(run)
    }
}

/// A finished task's event.
#[inline(always)]
fn outcome<T, R, E>(worker: usize, task: T, result: Result<R, E>) -> Event<T, R, E, String> {
    match result {
        Ok(output) => Event::Completed {
            worker,
            task,
            output,
        },
        Err(error) => Event::Failed {
            worker,
            task,
            error,
        },
    }
}

/// Reports a panic of the sink on stderr, and drops its payload (see `emit`).
#[cold]
#[inline(never)]
fn sink_panicked(payload: Box<dyn Any + Send>) {
    std::eprintln!(
        "foreman: the event sink panicked ({}); the event it was given went with the panic",
        message(&*payload)
    );
    discard(payload);
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::policy::{Delivery, Intensity, Restart};
    use crate::{Disposition, WorkerState};
    use std::sync::mpsc;

    #[test]
    fn a_panicking_task_is_retried_by_a_replacement_thread() {
        let (sink, events) = mpsc::channel();
        let policy = Policy::DEFAULT.with_intensity(Intensity::unlimited());
        let pool = Pool::<u32, u32, (), 8, 1>::start(
            policy,
            |ctx, n| {
                if *n == 2 && ctx.attempt() == 1 {
                    panic!("task 2 fails its first run");
                }
                Ok(*n)
            },
            move |event| sink.send(event).unwrap(),
        )
        .unwrap();
        for n in 0..4 {
            pool.submit(n).unwrap();
        }
        let report = pool.drain();
        assert_eq!(report.snapshot.completed, 4);
        assert_eq!(report.snapshot.crashes(), 1);
        assert!(report.snapshot.adds_up());
        let crashed: Vec<_> = events
            .try_iter()
            .filter_map(|e| match e {
                Event::Crashed {
                    cause,
                    task,
                    decision,
                    ..
                } => Some((cause, task, decision)),
                _ => None,
            })
            .collect();
        assert_eq!(
            crashed,
            [(
                "task 2 fails its first run".to_string(),
                Some(Disposition::Retried { attempt: 2 }),
                Decision::Replace
            )]
        );
    }

    #[test]
    fn at_most_once_reports_the_lost_task() {
        let (sink, events) = mpsc::channel();
        let policy = Policy::DEFAULT.with_delivery(Delivery::AtMostOnce);
        let pool = Pool::<u32, (), (), 8, 2>::start(
            policy,
            |_, n| {
                if *n == 1 {
                    panic!("boom");
                }
                Ok(())
            },
            move |event| sink.send(event).unwrap(),
        )
        .unwrap();
        pool.submit(1).unwrap();
        pool.submit(2).unwrap();
        let report = pool.drain();
        assert_eq!((report.snapshot.completed, report.snapshot.lost), (1, 1));
        assert!(events.try_iter().any(|e| matches!(
            e,
            Event::Crashed {
                task: Some(Disposition::Lost(1)),
                ..
            }
        )));
    }

    #[test]
    fn exceeding_the_intensity_escalates_and_hands_tasks_back() {
        let (sink, events) = mpsc::channel();
        let policy = Policy::DEFAULT
            .with_intensity(Intensity::new(1, 60_000).unwrap())
            .with_delivery(Delivery::at_least_once(10).unwrap());
        let pool = Pool::<u32, (), (), 16, 1>::start(
            policy,
            |_, _| panic!("always"),
            move |event| sink.send(event).unwrap(),
        )
        .unwrap();
        for n in 0..5 {
            pool.try_submit(n).unwrap();
        }
        // First crash: replaced (1 restart allowed); second: escalation.
        while !matches!(pool.state(), crate::SupervisorState::Stopped(_)) {
            thread::yield_now();
        }
        let report = pool.abort();
        let snap = report.snapshot;
        assert!(matches!(
            snap.state,
            crate::SupervisorState::Stopped(crate::Shutdown::Escalation)
        ));
        assert_eq!(snap.crashes(), 2);
        assert_eq!(snap.handed_back, 5);
        assert!(snap.adds_up());
        // The task that crashed twice came back in the crash report, the rest in the report.
        assert_eq!(report.handed_back, [1, 2, 3, 4]);
        assert!(events.try_iter().any(|e| matches!(
            e,
            Event::Crashed {
                task: Some(Disposition::HandedBack(0)),
                decision: Decision::Escalate,
                ..
            }
        )));
    }

    #[test]
    fn dropping_the_pool_hands_queued_tasks_to_the_sink() {
        let (sink, events) = mpsc::channel();
        let gate = Arc::new(std::sync::Barrier::new(2));
        let worker_gate = Arc::clone(&gate);
        let pool = Pool::<u32, (), (), 8, 1>::start(
            Policy::DEFAULT,
            move |_, _| {
                worker_gate.wait();
                Ok(())
            },
            move |event| sink.send(event).unwrap(),
        )
        .unwrap();
        for n in 0..4 {
            pool.try_submit(n).unwrap();
        }
        while pool.snapshot().in_flight == 0 {
            thread::yield_now();
        }
        pool.begin_abort();
        gate.wait();
        drop(pool);
        let back: Vec<u32> = events
            .try_iter()
            .filter_map(|e| match e {
                Event::HandedBack { task } => Some(task),
                _ => None,
            })
            .collect();
        assert_eq!(back, [1, 2, 3]);
    }

    #[test]
    fn the_watchdog_reports_a_hung_task_once() {
        let (sink, events) = mpsc::channel();
        let policy = Policy::DEFAULT.with_watchdog(20).unwrap();
        let release = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let task_release = Arc::clone(&release);
        let pool = Pool::<u32, (), (), 4, 1>::start(
            policy,
            move |_, _| {
                while !task_release.load(std::sync::atomic::Ordering::Relaxed) {
                    thread::sleep(Duration::from_millis(1));
                }
                Ok(())
            },
            move |event| sink.send(event).unwrap(),
        )
        .unwrap();
        pool.submit(0).unwrap();
        while pool.worker_state(0) != Some(WorkerState::Hung) {
            thread::sleep(Duration::from_millis(1));
        }
        thread::sleep(Duration::from_millis(60)); // several more ticks: still one report
        release.store(true, std::sync::atomic::Ordering::Relaxed);
        let report = pool.drain();
        assert_eq!(report.snapshot.completed, 1);
        let hung = events
            .try_iter()
            .filter(|e| matches!(e, Event::Hung { worker: 0, .. }))
            .count();
        assert_eq!(hung, 1);
    }

    #[test]
    fn temporary_workers_are_not_replaced_and_their_retry_is_requeued() {
        let (sink, _events) = mpsc::channel();
        let policy = Policy::DEFAULT.with_restart(Restart::Temporary);
        let pool = Pool::<u32, (), (), 8, 2>::start(
            policy,
            |ctx, n| {
                if *n == 0 && ctx.attempt() == 1 {
                    panic!("first run of task 0");
                }
                Ok(())
            },
            move |event| sink.send(event).unwrap(),
        )
        .unwrap();
        pool.submit(0).unwrap();
        let report = pool.drain();
        let snap = report.snapshot;
        assert_eq!(
            (
                snap.completed,
                snap.requeued,
                snap.crashes(),
                snap.restarts()
            ),
            (1, 1, 1, 0)
        );
        assert!(snap.workers.iter().any(|w| w.state == WorkerState::Retired));
    }

    #[cfg(feature = "recycling")]
    #[test]
    fn a_recycled_worker_is_replaced_by_a_fresh_thread_between_tasks() {
        let (sink, events) = mpsc::channel();
        let policy = Policy::DEFAULT.with_recycling(3).unwrap();
        let pool = Pool::<u32, thread::ThreadId, (), 16, 1>::start(
            policy,
            |_, _| Ok(thread::current().id()),
            move |event| sink.send(event).unwrap(),
        )
        .unwrap();
        for n in 0..10 {
            pool.submit(n).unwrap();
        }
        let report = pool.drain();
        let snap = report.snapshot;
        assert_eq!(
            (
                snap.completed,
                snap.recycles(),
                snap.restarts(),
                snap.crashes()
            ),
            (10, 3, 0, 0)
        );
        assert!(snap.adds_up());
        let mut threads: Vec<thread::ThreadId> = Vec::new();
        let mut log = Vec::new();
        for event in events.try_iter() {
            match event {
                Event::Completed { output, .. } => {
                    if threads.last() != Some(&output) {
                        threads.push(output);
                    }
                    log.push('c');
                }
                Event::Recycled { worker: 0 } => log.push('R'),
                other => panic!("unexpected {other:?}"),
            }
        }
        // Three tasks per thread, each thread a new one, the recycling between.
        assert_eq!(log.iter().collect::<String>(), "cccRcccRcccRc");
        let mut distinct = threads.clone();
        distinct.sort_by_key(|id| format!("{id:?}"));
        distinct.dedup();
        assert_eq!((threads.len(), distinct.len()), (4, 4));
    }

    #[cfg(feature = "backoff")]
    #[test]
    fn a_crashed_workers_replacement_waits_out_a_growing_backoff() {
        use crate::policy::Backoff;
        let (sink, events) = mpsc::channel();
        let policy = Policy::DEFAULT
            .with_intensity(Intensity::unlimited())
            .with_delivery(Delivery::at_least_once(3).unwrap())
            .with_backoff(Backoff::new(40, 2, 1_000).unwrap());
        let pool = Pool::<u32, Instant, Instant, 4, 1>::start(
            policy,
            |ctx, _| {
                if ctx.attempt() < 3 {
                    panic!("attempt {}", ctx.attempt());
                }
                Ok(Instant::now())
            },
            move |event| sink.send((Instant::now(), event)).unwrap(),
        )
        .unwrap();
        let started = Instant::now();
        pool.submit(0).unwrap();
        let report = pool.drain();
        assert_eq!(
            (report.snapshot.completed, report.snapshot.crashes()),
            (1, 2)
        );
        let events: Vec<_> = events.try_iter().collect();
        let [(first, Event::Crashed { .. }), (second, Event::Crashed { .. }), (_, Event::Completed { output, .. })] =
            events.as_slice()
        else {
            panic!("two crashes, then the result: {events:?}")
        };
        // Lower bounds only (a slow machine makes them longer, never shorter): 40 ms after
        // the first crash, 80 after the second, less the clock's granularity (whole ms).
        assert!(
            *second - *first >= Duration::from_millis(39),
            "the second run waited {:?}",
            *second - *first
        );
        assert!(
            *output - *second >= Duration::from_millis(79),
            "the third run waited {:?}",
            *output - *second
        );
        assert!(*first >= started);
    }

    #[cfg(feature = "backoff")]
    #[test]
    fn an_abort_does_not_wait_out_a_replacements_backoff() {
        use crate::policy::Backoff;
        let (sink, events) = mpsc::channel();
        let policy = Policy::DEFAULT.with_backoff(Backoff::new(60_000, 2, 60_000).unwrap());
        let pool = Pool::<u32, (), (), 4, 1>::start(
            policy,
            |_, _| panic!("always"),
            move |event| sink.send(event).unwrap(),
        )
        .unwrap();
        pool.submit(7).unwrap();
        match events.recv_timeout(Duration::from_secs(30)) {
            Ok(Event::Crashed { .. }) => {}
            other => panic!("hung: no crash reported ({other:?})"),
        }
        assert_eq!(pool.worker_state(0), Some(WorkerState::Restarting));
        let (done, aborted) = mpsc::channel();
        let aborting = thread::spawn(move || done.send(pool.abort()).unwrap());
        let report = aborted
            .recv_timeout(Duration::from_secs(20))
            .expect("hung: the abort waited out the 60 s backoff");
        aborting.join().unwrap();
        // The retry the slot kept for its replacement comes back.
        assert_eq!(report.handed_back, [7]);
        assert!(report.snapshot.adds_up());
    }
}
