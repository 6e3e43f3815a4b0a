//! [`Pool`]: a supervisor with W Web Worker threads, driven from the page's thread.
//!
//! # Who does what
//!
//! Each part has one job and reports back to the pool rather than reaching into the others:
//!
//! - [`Shared`] (`shared.rs`): what the threads share — the supervisor, the app's handler —
//!   and what they run: the worker loop, which reports outcomes through the
//!   [`Outbox`](crate::outbox::Outbox) (`outbox.rs`), and the clock's tick, which flags hangs.
//! - [`Threads`] (`threads.rs`): the thread table — Web Workers, life locks, deaths, the
//!   after-death check.
//! - [`Feed`] (`feed.rs`): submissions that wait for room and for their task's outcome.
//! - [`Clock`] (`clock.rs`): the clock thread and the page's watch over it.
//! - The pool itself (this module): owns the page's side, and turns what the parts report —
//!   outcomes and hangs from the outbox, deaths from the thread table — into what the app
//!   sees: [`Event`]s for the sink or a task's [`Submission`], [`Notice`]s for the notice sink,
//!   replacements, and the [`Report`] of a shutdown.
//!
//! Everything on the page side happens in [`Inner::pump`], one pass at a time: the app's
//! sinks may call back into the pool (submit, drain, …) without ever meeting a borrowed
//! state.

use core::cell::{Cell, RefCell};
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::Ordering;
use core::task::{Context as TaskContext, Poll, Waker};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};
use std::sync::Arc;

use foreman_rt::host::{Event, Report};
use foreman_rt::policy::{Policy, Tick};
use foreman_rt::{
    Cancel, Context, Decision, Disposition, Run, Snapshot, SubmitError, SupervisorState,
    WorkerState,
};

use crate::callback;
use crate::clock::Clock;
use crate::entry::{self, Body};
use crate::feed::{Canceller, Control, Feed, Submission, Tagged, TaskId, TaskOptions};
use crate::heap::{self, HeapId, HeapUsage, Repair};
use crate::notice::{self, Notice};
use crate::shared::{Record, Shared};
use crate::threads::{Death, Kill, Listener, Report as ThreadReport, Signal, ThreadState, Threads};

/// Starts of one slot that may fail in a row before the pool gives the slot up.
const START_ATTEMPTS: u32 = 3;
/// The wasm page size: thread stacks are whole pages.
const PAGE: u32 = 64 * 1024;

/// How to start a [`Pool`]: how many workers, the supervisor's [`Policy`], the threads'
/// stack size.
///
/// ```ignore
/// use foreman_wasm::{Config, Policy};
/// let config = Config::new(4).with_policy(Policy::DEFAULT.with_watchdog(1_000)?);
/// assert_eq!(config.workers(), 4);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    workers: usize,
    policy: Policy,
    stack_size: u32,
    heap_limit: Option<usize>,
}

impl Config {
    /// `workers` worker threads (1 to the pool's `W`), [`Policy::DEFAULT`], 1 MiB stacks.
    pub const fn new(workers: usize) -> Config {
        Config {
            workers,
            policy: Policy::DEFAULT,
            stack_size: 1 << 20,
            heap_limit: None,
        }
    }

    /// The supervisor's policy (restarts, delivery, watchdog). With a watchdog, the pool
    /// runs a clock thread and terminates hung workers; ticks are milliseconds.
    pub const fn with_policy(mut self, policy: Policy) -> Config {
        self.policy = policy;
        self
    }

    /// The stack size of each worker thread, in bytes: a whole number of 64 KiB pages.
    ///
    /// Make it large enough for the deepest task: an overflow is not detected (wasm32 has no
    /// guard page), and a task that runs on below its stack writes over the shared heap.
    pub const fn with_stack_size(mut self, bytes: u32) -> Config {
        self.stack_size = bytes;
        self
    }

    /// Recycles a worker whose heap holds more than `bytes` after a task: between tasks (never
    /// in the middle of one), its thread leaves and a fresh one takes the slot over, as for a
    /// quota of tasks ([`Policy::with_recycling`], with or without one): an
    /// [`Event::Recycled`], not a crash, not counted against the restart intensity, no
    /// backoff.
    ///
    /// What a heap *holds*: the bytes of the blocks allocated from the worker's heap (see
    /// [`heap`](crate::heap)) and not yet freed, by whichever thread holds them
    /// ([`HeapUsage::in_use`]) — what its tasks leaked, what they keep in thread-locals or
    /// caches, and the outputs of its tasks that the page has not dropped yet (count the
    /// largest output in the limit). Checked after each task, once its outcome is recorded.
    /// Not the pages the heap took from the module's memory ([`HeapUsage::held`]), which
    /// never shrink.
    ///
    /// Once the recycled thread is proven gone, a heap still holding more than the limit is
    /// renewed: the slot gets an empty heap ([`Notice::HeapRenewed`],
    /// [`HeapStats::renewed`](crate::heap::HeapStats::renewed)), so the
    /// fresh thread starts under the limit instead of being recycled after every task. Wasm
    /// memory never shrinks: what the old heap held (the leak, and its free space) is given
    /// up for good (counted in [`HeapStats::abandoned`](crate::heap::HeapStats::abandoned)),
    /// and blocks still in use elsewhere stay valid. A heap back under the limit by then is
    /// kept, as after any recycling. (A heap an earlier pool left holding more than the limit
    /// is renewed as well, before this pool's first thread on it.)
    ///
    /// A worker is not recycled when it would leave anyway: during an abort, or a drain with
    /// nothing left queued.
    ///
    /// ```ignore
    /// // A fresh thread for any worker that keeps more than 64 MiB after a task.
    /// let config = Config::new(4).with_heap_limit(64 << 20);
    /// assert_eq!(config.heap_limit(), Some(64 << 20));
    /// ```
    pub const fn with_heap_limit(mut self, bytes: usize) -> Config {
        self.heap_limit = Some(bytes);
        self
    }

    /// The heap limit past which a worker is recycled, if any.
    pub const fn heap_limit(&self) -> Option<usize> {
        self.heap_limit
    }

    /// The number of worker threads to start.
    pub const fn workers(&self) -> usize {
        self.workers
    }

    /// The supervisor's policy.
    pub const fn policy(&self) -> Policy {
        self.policy
    }

    /// The stack size of each worker thread.
    pub const fn stack_size(&self) -> u32 {
        self.stack_size
    }
}

/// Why a pool did not start (or start again).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartError {
    /// The page is not cross-origin isolated: no shared memory.
    NotCrossOriginIsolated,
    /// The app did not install [`WorkerHeaps`](crate::WorkerHeaps) as its global allocator.
    AllocatorNotInstalled,
    /// The worker count is 0 or more than the pool's `W`.
    Workers {
        /// The count asked for.
        asked: usize,
        /// The pool's `W`.
        max: usize,
    },
    /// The stack size is not a positive multiple of 64 KiB.
    StackSize(u32),
    /// Every worker heap is taken (see [`MAX_WORKER_HEAPS`](crate::heap::MAX_WORKER_HEAPS)).
    NoHeap,
    /// A thread could not be started: what the browser said.
    Thread(String),
    /// [`Pool::reopen`]: the pool has not stopped.
    NotStopped(SupervisorState),
    /// [`Pool::reopen`]: threads of the last run are still leaving.
    ThreadsLeaving(usize),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::NotCrossOriginIsolated => f.write_str(
                "the page is not cross-origin isolated: serve it with the headers \
                 `Cross-Origin-Opener-Policy: same-origin` and \
                 `Cross-Origin-Embedder-Policy: require-corp`",
            ),
            StartError::AllocatorNotInstalled => f.write_str(
                "install foreman's allocator: `#[global_allocator] static ALLOCATOR: \
                 foreman_wasm::WorkerHeaps = foreman_wasm::WorkerHeaps;`",
            ),
            StartError::Workers { asked, max } => {
                write!(f, "a pool runs 1 to {max} workers, not {asked}")
            }
            StartError::StackSize(bytes) => write!(
                f,
                "a thread's stack size must be a positive multiple of 64 KiB, not {bytes} bytes"
            ),
            StartError::NoHeap => write!(
                f,
                "all {} worker heaps are taken by other pools",
                heap::MAX_WORKER_HEAPS
            ),
            StartError::Thread(why) => write!(f, "cannot start a thread: {why}"),
            StartError::NotStopped(state) => {
                write!(f, "the pool is {state}: drain or abort it first")
            }
            StartError::ThreadsLeaving(count) => {
                write!(f, "{count} threads of the last run are still leaving")
            }
        }
    }
}

impl std::error::Error for StartError {}

/// The app's sink of events.
type Sink<T, R, E> = Box<dyn FnMut(Event<T, R, E, String>)>;

/// The app's sink of notices.
type NoticeSink = Box<dyn FnMut(Notice)>;

/// Where a [`Stopping`]'s report lands.
struct Stop<T, const W: usize> {
    report: Option<Report<T, W>>,
    waker: Option<Waker>,
}

/// What the page tells the app, queued until no state is borrowed.
enum Out<T, R, E> {
    Event(Event<T, R, E, String>),
    Notice(Notice),
}

/// The page's side of the pool.
struct Page<T, R, E, const W: usize> {
    config: Config,
    threads: Threads,
    /// The heap leased for each slot (kept across the slot's threads).
    heaps: [Option<HeapId>; W],
    start_failures: [u32; W],
    /// The slot's thread left recycled: its replacement starts once it is proven gone.
    recycled: [bool; W],
    /// A task was submitted with a deadline of its own (hangs may be deadlines).
    deadlines: bool,
    feed: Feed<T, R, E>,
    /// Shutdown futures waiting for the pool to stop.
    stops: Vec<Rc<RefCell<Stop<T, W>>>>,
    /// The current run's stop has been settled (tasks handed back, futures resolved).
    settled: bool,
    /// The clock thread and the page's watch over it (with a watchdog in the policy).
    clock: Option<Clock>,
    /// The app dropped its [`Pool`]: finish when every thread is gone, then let go.
    dropped: Option<Rc<dyn core::any::Any>>,
}

/// The pool proper; [`Pool`] is its owner's handle.
struct Inner<T, R, E, const N: usize, const W: usize> {
    /// The pool itself, for timers that must not keep it alive.
    me: Weak<Inner<T, R, E, N, W>>,
    shared: Arc<Shared<T, R, E, N, W>>,
    /// The threads' handle on `shared` (its address is what they get).
    body: Box<Arc<dyn Body>>,
    /// The pool's zero on the shared time line.
    origin: f64,
    page: RefCell<Page<T, R, E, W>>,
    pending: RefCell<VecDeque<Out<T, R, E>>>,
    /// The app's sinks: taken out while they run (see [`Inner::deliver`]).
    sink: Cell<Option<Sink<T, R, E>>>,
    notices: RefCell<Option<NoticeSink>>,
    busy: Cell<bool>,
    again: Cell<bool>,
}

/// A supervisor with `W` Web Worker threads running a handler on tasks of type `T` from a
/// queue of `N`, owned by the page's thread (or the Web Worker that started it). See the
/// [crate docs](crate) for an example, and [`heap`](crate::heap#the-contract) for what the
/// app must install.
///
/// - [`try_submit`](Pool::try_submit) never blocks: a task the queue cannot take comes back.
///   Its outcome goes to the pool's sink as an [`Event`], on the page's thread.
/// - Outcomes reach the page in bursts: while a clock thread runs (a watchdog in the policy,
///   or a task with a deadline) and the queue holds more than `W` tasks, the page's thread is
///   woken at most once per clock period (10 ms or less) rather than once per outcome, so
///   that it takes less CPU from the workers; once the queue runs low, or without a clock,
///   at once.
/// - [`submit`](Pool::submit) waits (asynchronously) for room and resolves to the task's one
///   outcome: a [`Submission`], a `Future`.
/// - A worker that traps (a panic aborts) or hangs (with a watchdog in the policy) is killed,
///   proven dead, and replaced on the same memory; its task is retried or dead-lettered by the
///   policy. The other workers keep working.
/// - [`drain`](Pool::drain) and [`abort`](Pool::abort) resolve to the final [`Report`] once
///   every worker thread is gone (with a watchdog, the clock thread ticks on until the pool
///   is dropped); [`reopen`](Pool::reopen) starts a stopped pool again.
/// - [`Submission::cancel`] cancels a task: one not yet started never runs; a running one's
///   Web Worker is terminated and replaced, and the task ends [`Event::Cancelled`] (not
///   retried, not a crash). [`submit_with`](Pool::submit_with) gives a task a deadline for
///   each run, counted from the run's start ([`TaskOptions`]).
/// - With recycling in the policy ([`Policy::with_recycling`]), a worker thread that ran its
///   quota of tasks leaves between tasks ([`Event::Recycled`], not a crash, not counted against
///   the restart intensity) and a fresh Web Worker takes the slot over once the old one is
///   proven gone. What comes back: the old thread's Web Worker (its JavaScript realm and its
///   instance of the module, memory outside the wasm heap) and, after the after-death check,
///   its stack and thread-local block (to the shared heap, where the next threads' stacks are
///   taken from). The slot's worker heap is kept: its free blocks serve the fresh thread, and
///   blocks still held (results on the page, say) stay valid. Linear memory never shrinks
///   (wasm cannot give memory back), and a thread's thread-local destructors do not run when
///   it leaves (wasm32 has no thread-exit hook): what its thread-locals held stays allocated
///   in the slot's heap (measured: 512 bytes per thread with this crate's own state).
/// - With restart backoff in the policy ([`Policy::with_backoff`]), a crashed worker's
///   replacement starts after the delay the supervisor gives ([`Notice::BackingOff`]), on a
///   timer of the page's: no thread waits meanwhile. An abort (or escalation) sweeps the
///   waiting slot away at once: the shutdown does not wait for the delay, and the retry the
///   slot held is handed back. A drain waits for it (the replacement runs the retry).
/// - Dropping the pool aborts it: a worker running a task is condemned and its thread
///   terminated (the task's [`Event::Crashed`] says "killed: its pool was dropped"), idle
///   workers leave on their own, and queued tasks go to the sink as [`Event::HandedBack`] once
///   every thread is proven gone.
///
/// A pool is not `Send`: it belongs to the thread that started it, which must not block
/// (browsers forbid it on a page). Its tasks, outputs and errors cross threads, so they are
/// `Send`, and they may own heap data.
pub struct Pool<T, R, E, const N: usize = 256, const W: usize = 8>
where
    T: Send + 'static,
    R: Send + 'static,
    E: Send + 'static,
{
    inner: Rc<Inner<T, R, E, N, W>>,
}

impl<T, R, E, const N: usize, const W: usize> Pool<T, R, E, N, W>
where
    T: Send + 'static,
    R: Send + 'static,
    E: Send + 'static,
{
    /// Starts a pool: `config.workers()` Web Worker threads running `handler` on each task,
    /// and, with a watchdog in the policy, a clock thread. Every [`Event`] goes to `sink`,
    /// on this thread (except a [`submit`](Pool::submit)ted task's final one, which goes to
    /// its [`Submission`]).
    ///
    /// The sink may call back into the pool (submit, drain, …). A sink that panics (or
    /// throws) loses only the event it was given: the panic is reported as an uncaught error
    /// (the browser's console shows it) and the pool goes on delivering.
    ///
    /// Returns at once: tasks may be submitted right away, and run once the threads have
    /// loaded the module. A thread that fails to load is started again (up to three times in
    /// a row; see [`Notice::StartFailed`]).
    ///
    /// ```ignore
    /// let pool = Pool::<String, usize, String>::start(
    ///     Config::new(2),
    ///     |_ctx, text| Ok(text.split_whitespace().count()),
    ///     |event| web_sys::console::log_1(&format!("{event:?}").into()),
    /// )?;
    /// ```
    pub fn start<H, S>(config: Config, handler: H, sink: S) -> Result<Self, StartError>
    where
        H: Fn(&Context<'_>, &T) -> Result<R, E> + Send + Sync + 'static,
        S: FnMut(Event<T, R, E, String>) + 'static,
    {
        let isolated = js_sys::Reflect::get(&js_sys::global(), &"crossOriginIsolated".into())
            .ok()
            .and_then(|value| value.as_bool())
            .unwrap_or(false);
        if !isolated {
            return Err(StartError::NotCrossOriginIsolated);
        }
        if !heap::installed() {
            return Err(StartError::AllocatorNotInstalled);
        }
        check_workers(config.workers, W)?;
        if config.stack_size == 0 || !config.stack_size.is_multiple_of(PAGE) {
            return Err(StartError::StackSize(config.stack_size));
        }
        crate::panic::install_hook();
        let origin = entry::now();
        let shared = Shared::new(config.policy, config.heap_limit, Box::new(handler), origin);
        let body: Box<Arc<dyn Body>> = Box::new(Arc::clone(&shared) as Arc<dyn Body>);
        let inner = Rc::new_cyclic(|me: &Weak<Inner<T, R, E, N, W>>| {
            let signalled = me.clone();
            let listener: Listener = Rc::new(move |slot, id, signal| {
                if let Some(inner) = signalled.upgrade() {
                    inner.on_signal(slot, id, signal);
                }
            });
            Inner {
                me: me.clone(),
                shared,
                body,
                origin,
                page: RefCell::new(Page {
                    config,
                    threads: Threads::new(W, config.stack_size, listener),
                    heaps: [None; W],
                    start_failures: [0; W],
                    recycled: [false; W],
                    deadlines: false,
                    feed: Feed::new(),
                    stops: Vec::new(),
                    settled: false,
                    clock: None,
                    dropped: None,
                }),
                pending: RefCell::new(VecDeque::new()),
                sink: Cell::new(Some(Box::new(sink))),
                notices: RefCell::new(Some(Box::new(notice::to_console))),
                busy: Cell::new(false),
                again: Cell::new(false),
            }
        });
        // From here on, dropping `pool` cleans up whatever started.
        let pool = Pool { inner };
        pool.inner.start_clock()?;
        pool.inner.start_workers(config.workers)?;
        Ok(pool)
    }

    /// Takes the pool's [`Notice`]s (host telemetry: start failures, terminations, heap
    /// repairs, a stalled clock) instead of the browser's console, which gets them by default.
    /// May be called from inside the notice sink: the new sink takes the next notice.
    pub fn on_notice(&self, sink: impl FnMut(Notice) + 'static) {
        *self.inner.notices.borrow_mut() = Some(Box::new(sink));
    }

    /// Submits a task without blocking. Its outcome goes to the sink. A task the queue cannot
    /// take comes back: [`SubmitError::Full`] (back-pressure: try again after some outcomes)
    /// or [`SubmitError::Closed`] (the pool is shutting down or stopped).
    pub fn try_submit(&self, task: T) -> Result<(), SubmitError<T>> {
        self.inner
            .shared
            .sup
            .try_submit(Tagged::untracked(task))
            .map_err(untag)
    }

    /// Submits a task and returns a future of its one outcome: the task's final [`Event`]
    /// (completed, failed, cancelled, crashed holding the task — dead-lettered, lost or handed
    /// back — or handed back). While the queue is full the task waits, in order with other
    /// submissions; if the pool shuts down before the task was accepted, the future resolves
    /// to `Err(SubmitError::Closed(task))`.
    ///
    /// The other events of the task (a crash it is retried after, a hang) go to the sink.
    /// Dropping the future does not cancel the task (its outcome then goes to the sink);
    /// [`Submission::cancel`] does.
    pub fn submit(&self, task: T) -> Submission<T, R, E> {
        self.submit_with(task, TaskOptions::new())
    }

    /// [`submit`](Pool::submit) with [`TaskOptions`]: a deadline for each run of the task.
    ///
    /// ```ignore
    /// let submission = pool.submit_with(task, TaskOptions::new().with_deadline(500));
    /// match submission.await {
    ///     Ok(Event::Completed { output, .. }) => use_it(output),
    ///     // Each run past 500 ms was killed; after its last attempt it is dead-lettered.
    ///     other => report(other),
    /// }
    /// ```
    pub fn submit_with(&self, task: T, options: TaskOptions) -> Submission<T, R, E> {
        let inner = &self.inner;
        if let Some(deadline) = options.deadline() {
            inner.ensure_clock(deadline);
        }
        let canceller: Weak<dyn Canceller> = inner.me.clone();
        let submission = inner
            .page
            .borrow_mut()
            .feed
            .submit(task, options, canceller);
        inner.pump();
        submission
    }

    /// Graceful shutdown: no new tasks; the workers finish everything queued, then leave.
    /// Resolves to the final [`Report`] once every worker thread is gone. Idempotent; see
    /// [`Stopping`] for several pending shutdowns.
    pub fn drain(&self) -> Stopping<T, W> {
        self.inner.shared.sup.drain();
        self.inner.shutdown()
    }

    /// Immediate shutdown: no new tasks; workers leave after their current task; the tasks
    /// still queued are in the [`Report`] it resolves to once every worker thread is gone.
    pub fn abort(&self) -> Stopping<T, W> {
        self.inner.shared.sup.abort();
        self.inner.shutdown()
    }

    /// Starts a stopped pool again with `workers` worker threads. Counters keep counting.
    /// Fails unless the pool has stopped and every thread of the last run is gone.
    pub fn reopen(&self, workers: usize) -> Result<(), StartError> {
        check_workers(workers, W)?;
        let inner = &self.inner;
        {
            let page = inner.page.borrow();
            let state = inner.shared.sup.state();
            if !matches!(state, SupervisorState::Stopped(_)) {
                return Err(StartError::NotStopped(state));
            }
            if page.threads.living() > 0 {
                return Err(StartError::ThreadsLeaving(page.threads.living()));
            }
        }
        // Settles the stop (hands back what is left) if nothing did yet.
        inner.pump();
        inner
            .shared
            .sup
            .reopen()
            .map_err(|_| StartError::NotStopped(inner.shared.sup.state()))?;
        {
            let mut page = inner.page.borrow_mut();
            page.settled = false;
            page.config.workers = workers;
        }
        let started = inner.start_workers(workers);
        inner.pump();
        started
    }

    /// The supervisor's counters and worker states.
    pub fn snapshot(&self) -> Snapshot<W> {
        self.inner.shared.sup.snapshot()
    }

    /// What the page knows of each slot's thread, and the size of its heap.
    pub fn threads(&self) -> [ThreadInfo; W] {
        let page = self.inner.page.borrow();
        core::array::from_fn(|slot| ThreadInfo {
            state: page.threads.state(slot),
            heap: page.heaps[slot].map(heap::usage).unwrap_or_default(),
        })
    }

    /// The configuration the pool runs with (the worker count of its latest start).
    pub fn config(&self) -> Config {
        self.inner.page.borrow().config
    }
}

impl<T, R, E, const N: usize, const W: usize> Drop for Pool<T, R, E, N, W>
where
    T: Send + 'static,
    R: Send + 'static,
    E: Send + 'static,
{
    fn drop(&mut self) {
        let inner = &self.inner;
        inner.shared.sup.abort();
        // Release: the clock thread's Acquire sees the stop; it leaves at its next tick.
        inner.shared.clock.store(1, Ordering::Release);
        crate::park::notify_all(&inner.shared.clock);
        {
            let mut page = inner.page.borrow_mut();
            // Only a worker running a task is terminated, and only once condemned: from then
            // on it can touch neither the queue nor its task, so wherever the thread stops it
            // leaves nothing half-done. Every other thread leaves on its own (the abort wakes
            // it): an idle one may be inside a queue operation or on its way out, and one
            // still loading may be allocating its stack from the shared heap.
            // (A run that ends between `current_run` and the condemnation is refused.)
            let sup = &inner.shared.sup;
            for slot in 0..W {
                let condemned = page.threads.state(slot) == ThreadState::Running
                    && sup
                        .current_run(slot)
                        .is_some_and(|run| sup.condemn(run).is_ok());
                if condemned {
                    page.threads.terminate(slot, Kill::PoolDropped);
                }
            }
            page.clock = None;
            page.dropped = Some(Rc::clone(inner) as Rc<dyn core::any::Any>);
        }
        inner.pump();
    }
}

impl<T, R, E, const N: usize, const W: usize> fmt::Debug for Pool<T, R, E, N, W>
where
    T: Send + 'static,
    R: Send + 'static,
    E: Send + 'static,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("supervisor", &self.inner.shared.sup.state())
            .field("config", &self.inner.page.borrow().config)
            .finish()
    }
}

/// What [`Pool::threads`] says about one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadInfo {
    /// Its thread, if any.
    pub state: ThreadState,
    /// Its heap (kept across the slot's threads).
    pub heap: HeapUsage,
}

fn check_workers(workers: usize, max: usize) -> Result<(), StartError> {
    if workers == 0 || workers > max {
        return Err(StartError::Workers {
            asked: workers,
            max,
        });
    }
    Ok(())
}

fn untag<T>(err: SubmitError<Tagged<T>>) -> SubmitError<T> {
    match err {
        SubmitError::Full(tagged) => SubmitError::Full(tagged.task),
        SubmitError::Closed(tagged) => SubmitError::Closed(tagged.task),
    }
}

/// A disposition of a tagged task, untagged; and the submission it belongs to, if final
/// (its ticket then ended: the task has its outcome).
fn untag_disposition<T>(disposition: Disposition<Tagged<T>>) -> (Disposition<T>, Option<TaskId>) {
    let id = disposition.task().and_then(|tagged| {
        tagged.end();
        tagged.id
    });
    (disposition.map(|tagged| tagged.task), id)
}

/// The final event of a task the pool hands back unrun: cancelled if its submission asked
/// for that (the supervisor counts it handed back), else handed back.
fn handed_back<T, R, E>(tagged: Tagged<T>) -> (Option<TaskId>, Event<T, R, E, String>) {
    // Asked before the end: an ended ticket says it was not cancelled.
    let cancelled = tagged.is_cancelled();
    tagged.end();
    let task = tagged.task;
    let event = if cancelled {
        Event::Cancelled { worker: None, task }
    } else {
        Event::HandedBack { task }
    };
    (tagged.id, event)
}

impl<T, R, E, const N: usize, const W: usize> Inner<T, R, E, N, W>
where
    T: Send + 'static,
    R: Send + 'static,
    E: Send + 'static,
{
    /// Milliseconds since the pool started: the supervisor's clock.
    fn now(&self) -> Tick {
        entry::since(self.origin)
    }

    fn notice(&self, notice: Notice) {
        self.pending.borrow_mut().push_back(Out::Notice(notice));
    }

    /// Sends `event` to its task's [`Submission`] if it is a submitted task's final event
    /// and the submission still waits; else to the sink.
    fn event(
        &self,
        page: &mut Page<T, R, E, W>,
        id: Option<TaskId>,
        event: Event<T, R, E, String>,
    ) {
        if let Some(event) = page.feed.event(id, event) {
            self.pending.borrow_mut().push_back(Out::Event(event));
        }
    }

    /// Starts the clock thread and the page's watch over it, if the policy has a watchdog.
    fn start_clock(self: &Rc<Self>) -> Result<(), StartError> {
        match self.shared.sup.policy().watchdog() {
            Some(deadline) => self.run_clock(deadline).map_err(StartError::Thread),
            None => Ok(()),
        }
    }

    /// Makes sure a clock runs for a task with a deadline of `deadline` ms (a pool without a
    /// watchdog starts its clock at the first one). A clock that cannot start is a notice: the
    /// deadline then goes unwatched.
    fn ensure_clock(self: &Rc<Self>, deadline: Tick) {
        let running = {
            let mut page = self.page.borrow_mut();
            page.deadlines = true;
            page.clock.is_some()
        };
        if running {
            return;
        }
        if let Err(cause) = self.run_clock(deadline) {
            self.notice(Notice::ClockFailed { cause });
        }
    }

    /// Starts the clock thread (ticking often enough for `deadline`) and the page's watch.
    fn run_clock(self: &Rc<Self>, deadline: Tick) -> Result<(), String> {
        let (woken, watched) = (Rc::downgrade(self), Rc::downgrade(self));
        let clock = Clock::start(
            Arc::clone(&self.shared) as Arc<dyn Body>,
            self.origin,
            deadline,
            move || {
                if let Some(inner) = woken.upgrade() {
                    inner.pump();
                }
            },
            move || {
                if let Some(inner) = watched.upgrade() {
                    inner.watch_clock();
                }
            },
        )?;
        self.page.borrow_mut().clock = Some(clock);
        Ok(())
    }

    /// Reserves and starts `workers` slots. Fails if none could be started; a slot that
    /// could not is a [`Notice::StartFailed`].
    fn start_workers(self: &Rc<Self>, workers: usize) -> Result<(), StartError> {
        let mut failed = Vec::new();
        {
            let mut page = self.page.borrow_mut();
            page.start_failures = [0; W];
            for slot in 0..workers {
                if let Err(err) = self.shared.sup.reserve(slot) {
                    failed.push((slot, StartError::Thread(err.to_string())));
                    continue;
                }
                if let Err(err) = self.spawn(&mut page, slot) {
                    let _ = self.shared.sup.release(slot);
                    failed.push((slot, err));
                }
            }
        }
        let result = if failed.len() == workers {
            Err(failed.swap_remove(0).1)
        } else {
            for (worker, err) in failed {
                self.notice(Notice::StartFailed {
                    worker,
                    cause: err.to_string(),
                    retrying: false,
                });
            }
            Ok(())
        };
        self.pump();
        result
    }

    /// Starts the thread for `slot` (reserved, or restarting), leasing it a heap first.
    fn spawn(&self, page: &mut Page<T, R, E, W>, slot: usize) -> Result<(), StartError> {
        let heap = match page.heaps[slot] {
            Some(heap) => heap,
            None => {
                let heap = heap::lease().ok_or(StartError::NoHeap)?;
                page.heaps[slot] = Some(heap);
                // A heap an earlier pool's threads left holding more than this pool's limit
                // is renewed before its first thread here, which would be recycled at once.
                if page
                    .config
                    .heap_limit
                    .is_some_and(|limit| heap::usage(heap).in_use > limit)
                {
                    // SAFETY: a heap is leased only once its last thread is gone; this slot's
                    // first thread starts below.
                    let _ = unsafe { heap::renew(heap) };
                }
                heap
            }
        };
        page.threads
            .spawn(slot, heap, entry::address(&self.body))
            .map_err(StartError::Thread)
    }

    /// The page's side of a thread's signal.
    fn on_signal(self: &Rc<Self>, slot: usize, id: u32, signal: Signal) {
        {
            let mut page = self.page.borrow_mut();
            match page.threads.signal(slot, id, signal) {
                None | Some(ThreadReport::Wake) => {}
                Some(ThreadReport::Alive) => page.start_failures[slot] = 0,
                Some(ThreadReport::Gone(death)) => self.thread_gone(&mut page, slot, death),
                Some(ThreadReport::Zombie) => self.notice(Notice::Zombie { worker: slot }),
            }
        }
        self.pump();
    }

    /// Takes what the workers and the clock reported, in order.
    fn take_records(&self, page: &mut Page<T, R, E, W>) {
        for record in self.shared.outbox.take() {
            match record {
                Record::Completed {
                    worker,
                    task,
                    output,
                } => self.event(
                    page,
                    task.id,
                    Event::Completed {
                        worker,
                        task: task.task,
                        output,
                    },
                ),
                Record::Failed {
                    worker,
                    task,
                    error,
                } => self.event(
                    page,
                    task.id,
                    Event::Failed {
                        worker,
                        task: task.task,
                        error,
                    },
                ),
                Record::Hung { run } => self.hung(page, run),
                Record::Cancelled { worker, task } => self.event(
                    page,
                    task.id,
                    Event::Cancelled {
                        worker,
                        task: task.task,
                    },
                ),
                Record::Recycled { worker } => {
                    page.recycled[worker] = true;
                    self.pending
                        .borrow_mut()
                        .push_back(Out::Event(Event::Recycled { worker }));
                }
            }
        }
    }

    /// The watchdog flagged `run`: report it, condemn it and terminate its thread.
    fn hung(&self, page: &mut Page<T, R, E, W>, run: Run) {
        let worker = run.worker();
        self.pending
            .borrow_mut()
            .push_back(Out::Event(Event::Hung { worker, run }));
        if page.threads.state(worker) != ThreadState::Running {
            return;
        }
        // The report may be a moment old: a run that ended since (its task finished, even if
        // the worker started another) is spared — the condemnation names the run, not the
        // worker.
        match self.shared.sup.condemn(run) {
            Ok(()) => {
                page.threads.terminate(worker, Kill::Hung);
                self.notice(Notice::Terminating { worker });
            }
            Err(_) => self.notice(Notice::Spared { worker }),
        }
    }

    /// A thread of `slot` is gone for good: recover its slot, by the policy.
    fn thread_gone(&self, page: &mut Page<T, R, E, W>, slot: usize, death: Death) {
        // What it reported before it died comes first.
        self.take_records(page);
        if let Some((_, after_ms)) = death.killed {
            self.notice(Notice::Gone {
                worker: slot,
                after_ms,
            });
        }
        // A replaced heap is news however the thread ended; a kept one only after a crash.
        if matches!(death.repair, Repair::Replaced { .. }) {
            self.notice(Notice::HeapRepaired {
                worker: slot,
                repair: death.repair,
            });
        }
        let sup = &self.shared.sup;
        let recycled = core::mem::take(&mut page.recycled[slot]);
        match sup.worker_state(slot) {
            Some(WorkerState::Restarting) if recycled => {
                // It left between tasks (its quota run, or its heap past the limit): a fresh
                // thread takes the slot over, on a renewed heap if the old one holds too much.
                if let (Some(limit), Some(heap)) = (page.config.heap_limit, page.heaps[slot]) {
                    let held = heap::usage(heap).in_use;
                    if held > limit {
                        // SAFETY: the slot's thread is gone and buried (`Threads::gone`), and
                        // its replacement starts below.
                        if let Some(abandoned) = unsafe { heap::renew(heap) } {
                            self.notice(Notice::HeapRenewed {
                                worker: slot,
                                held,
                                abandoned,
                            });
                        }
                    }
                }
                if let Err(err) = self.spawn(page, slot) {
                    self.give_up(page, slot, WorkerState::Restarting, err.to_string());
                }
            }
            Some(state @ (WorkerState::Starting | WorkerState::Restarting)) => {
                let cause = self.cause(page, &death);
                self.start_failed(page, slot, state, cause);
            }
            Some(WorkerState::Vacant | WorkerState::Exited | WorkerState::Retired) | None => {}
            Some(_) => {
                // SAFETY: the thread that held worker `slot` runs no more (its life lock was
                // granted, or it never took it), and its handles die with it.
                if unsafe { sup.declare_dead(slot) }.is_err()
                    || sup.worker_state(slot) != Some(WorkerState::Crashed)
                {
                    return; // it was leaving anyway: counted out
                }
                if death.repair == Repair::Kept {
                    self.notice(Notice::HeapRepaired {
                        worker: slot,
                        repair: Repair::Kept,
                    });
                }
                // The restart intensity counts on the supervisor's clock: move it to now.
                let now = self.now();
                for run in sup.tick(now) {
                    self.hung(page, run);
                }
                let Ok(report) = sup.recover(slot) else {
                    return;
                };
                let (task, id) = match report.task {
                    Some(disposition) => {
                        let (disposition, id) = untag_disposition(disposition);
                        (Some(disposition), id)
                    }
                    None => (None, None),
                };
                let (decision, delay) = (report.decision, report.delay);
                let event = match task {
                    // Killed because it was cancelled (or it died cancelled): its end, not a
                    // crash to report.
                    Some(Disposition::Cancelled(task)) => Event::Cancelled {
                        worker: Some(slot),
                        task,
                    },
                    task => Event::Crashed {
                        worker: slot,
                        cause: self.cause(page, &death),
                        task,
                        decision,
                    },
                };
                self.event(page, id, event);
                if decision == Decision::Replace {
                    if delay > 0 {
                        self.back_off(slot, delay);
                    } else if let Err(err) = self.spawn(page, slot) {
                        self.give_up(page, slot, WorkerState::Restarting, err.to_string());
                    }
                }
            }
        }
    }

    /// Starts `slot`'s replacement after `delay` milliseconds of restart backoff, on a timer
    /// of the page's (no thread waits meanwhile). An abort or escalation meanwhile sweeps the
    /// slot away: the supervisor stops without waiting for the timer, which then finds
    /// nothing to start.
    fn back_off(&self, slot: usize, delay: Tick) {
        self.notice(Notice::BackingOff {
            worker: slot,
            delay_ms: delay,
        });
        let pool = self.me.clone();
        let due = wasm_bindgen::closure::Closure::once_into_js(move || {
            if let Some(inner) = pool.upgrade() {
                inner.backoff_over(slot);
            }
        });
        crate::threads::set_timeout(&due, i32::try_from(delay).unwrap_or(i32::MAX));
    }

    /// The restart backoff of `slot` is over: start its replacement, unless a shutdown swept
    /// the slot away meanwhile.
    fn backoff_over(self: &Rc<Self>, slot: usize) {
        {
            let mut page = self.page.borrow_mut();
            let sup = &self.shared.sup;
            if sup.worker_state(slot) == Some(WorkerState::Restarting)
                && page.threads.state(slot) == ThreadState::None
            {
                // The supervisor's clock decides when the slot is ready: bring it up to date.
                for run in sup.tick(self.now()) {
                    self.hung(&mut page, run);
                }
                if let Err(err) = self.spawn(&mut page, slot) {
                    self.give_up(&mut page, slot, WorkerState::Restarting, err.to_string());
                }
            }
        }
        self.pump();
    }

    /// Why a thread ended, in words.
    fn cause(&self, page: &Page<T, R, E, W>, death: &Death) -> String {
        if let Some(message) = &death.panic {
            return format!("panicked: {message}");
        }
        match death.killed {
            Some((Kill::Hung, _)) => {
                let watchdog = self.shared.sup.policy().watchdog();
                return match (watchdog, page.deadlines) {
                    (Some(ms), false) => {
                        format!("killed: its task hung (no heartbeat for more than {ms} ms)")
                    }
                    (Some(ms), true) => format!(
                        "killed: its task hung (no heartbeat for more than {ms} ms) or ran past \
                         its deadline"
                    ),
                    (None, _) => "killed: its task ran past its deadline".into(),
                };
            }
            Some((Kill::PoolDropped, _)) => return "killed: its pool was dropped".into(),
            Some((Kill::Cancelled, _)) => return "killed: its task was cancelled".into(),
            None => {}
        }
        match &death.message {
            Some(message) if !message.is_empty() => format!("its thread stopped: {message}"),
            _ => "its thread stopped".into(),
        }
    }

    /// A thread died before it attached to its slot: start it again, or give up.
    fn start_failed(
        &self,
        page: &mut Page<T, R, E, W>,
        slot: usize,
        state: WorkerState,
        cause: String,
    ) {
        page.start_failures[slot] += 1;
        if page.start_failures[slot] >= START_ATTEMPTS {
            let why = format!("{cause}; {START_ATTEMPTS} attempts failed");
            self.give_up(page, slot, state, why);
            return;
        }
        self.notice(Notice::StartFailed {
            worker: slot,
            cause,
            retrying: true,
        });
        if let Err(err) = self.spawn(page, slot) {
            self.give_up(page, slot, state, err.to_string());
        }
    }

    /// Gives `slot` up: no thread can be started for it.
    fn give_up(&self, page: &mut Page<T, R, E, W>, slot: usize, state: WorkerState, why: String) {
        self.notice(Notice::StartFailed {
            worker: slot,
            cause: why,
            retrying: false,
        });
        if state == WorkerState::Starting {
            let _ = self.shared.sup.release(slot);
        } else if let Ok(Some(task)) = self.shared.sup.retire(slot) {
            let (id, event) = handed_back(task);
            self.event(page, id, event);
        }
    }

    /// Submits the waiting submissions the queue takes now, in order.
    fn feed(&self, page: &mut Page<T, R, E, W>) {
        let sup = &self.shared.sup;
        for task in page.feed.feed(|tagged| sup.try_submit(tagged)) {
            // Refused, and nobody waits for it any more: the sink gets it back.
            self.pending
                .borrow_mut()
                .push_back(Out::Event(Event::HandedBack { task }));
        }
    }

    /// Once the supervisor has stopped and every thread is gone: hands back what will not
    /// run and resolves the shutdown futures; once a dropped pool has nothing left to wait
    /// for, lets go of it.
    fn settle(&self, page: &mut Page<T, R, E, W>) {
        let sup = &self.shared.sup;
        if !sup.is_stopped() || page.threads.living() > 0 {
            return;
        }
        if !page.settled {
            page.settled = true;
            let mut tasks_back = Vec::new();
            for task in sup.hand_back() {
                match task.id {
                    Some(_) => {
                        let (id, event) = handed_back(task);
                        self.event(page, id, event);
                    }
                    None => tasks_back.push(task.task),
                }
            }
            // The tasks go to the first shutdown future still held (the page's list holds
            // the other reference); with none, to the sink.
            let stops = std::mem::take(&mut page.stops);
            let mut tasks = Some(tasks_back);
            for stop in &stops {
                let held = Rc::strong_count(stop) > 1;
                let tasks = if held { tasks.take() } else { None };
                finish(stop, sup.snapshot(), tasks.unwrap_or_default());
            }
            if let Some(tasks) = tasks {
                self.hand_back_to_sink(tasks);
            }
        }
        if page.dropped.is_some() && page.threads.settled() {
            for slot in 0..W {
                if let Some(heap) = page.heaps[slot].take() {
                    heap::unlease(heap);
                }
            }
            // The last reference may be this one: the caller still holds another.
            page.dropped = None;
        }
    }

    /// Tasks nobody else will take: each goes to the sink as [`Event::HandedBack`].
    fn hand_back_to_sink(&self, tasks: Vec<T>) {
        let mut pending = self.pending.borrow_mut();
        for task in tasks {
            pending.push_back(Out::Event(Event::HandedBack { task }));
        }
    }

    /// A shutdown future; resolved at once if the pool already stopped and settled.
    fn shutdown(self: &Rc<Self>) -> Stopping<T, W> {
        let stop = Rc::new(RefCell::new(Stop {
            report: None,
            waker: None,
        }));
        {
            let mut page = self.page.borrow_mut();
            if page.settled {
                finish(&stop, self.shared.sup.snapshot(), Vec::new());
            } else {
                page.stops.push(Rc::clone(&stop));
            }
        }
        self.pump();
        Stopping {
            stop,
            pool: Rc::clone(self) as Rc<dyn HandBack<T>>,
        }
    }

    /// The clock watch: says once if the clock stopped ticking, and pumps in case a wake-up
    /// went astray.
    fn watch_clock(self: &Rc<Self>) {
        // Relaxed: a liveness counter.
        let ticks = self.shared.ticks.load(Ordering::Relaxed);
        let stalled = self
            .page
            .borrow_mut()
            .clock
            .as_mut()
            .and_then(|clock| clock.check(ticks));
        if let Some(notice) = stalled {
            self.notice(notice);
        }
        self.pump();
    }

    /// Does everything that is due on the page's side: takes the workers' reports, feeds
    /// waiting submissions, settles a stop, and tells the app — repeatedly, until nothing is
    /// left, then arms the outbox so that the next report wakes the page. Reentrant calls
    /// (from the app's sinks) return at once and make the running pass go round again.
    fn pump(self: &Rc<Self>) {
        if self.busy.replace(true) {
            self.again.set(true);
            return;
        }
        loop {
            self.again.set(false);
            {
                let mut page = self.page.borrow_mut();
                self.take_records(&mut page);
                self.feed(&mut page);
                self.settle(&mut page);
            }
            loop {
                let next = self.pending.borrow_mut().pop_front();
                match next {
                    Some(out) => self.deliver(out),
                    None => break,
                }
            }
            if !self.again.get() && self.shared.outbox.arm() {
                break;
            }
        }
        self.busy.set(false);
    }
}

impl<T, R, E, const N: usize, const W: usize> Inner<T, R, E, N, W>
where
    T: Send + 'static,
    R: Send + 'static,
    E: Send + 'static,
{
    /// Gives the app one event or notice. Its sink runs behind a JavaScript frame
    /// ([`callback::guarded`]): a sink that panics or throws loses only what it was given, and
    /// is reported. No state is borrowed meanwhile: the sink may call back into the pool,
    /// and the notice sink may replace itself ([`Pool::on_notice`]).
    fn deliver(&self, out: Out<T, R, E>) {
        match out {
            Out::Event(event) => {
                // Only `pump` takes the sink out, and it does not run twice at once.
                let Some(mut sink) = self.sink.take() else {
                    return;
                };
                callback::guarded(|| sink(event));
                self.sink.set(Some(sink));
            }
            Out::Notice(notice) => {
                let Some(mut sink) = self.notices.take() else {
                    return;
                };
                callback::guarded(|| sink(notice));
                // Unless the sink replaced itself meanwhile.
                let mut notices = self.notices.borrow_mut();
                if notices.is_none() {
                    *notices = Some(sink);
                }
            }
        }
    }
}

fn finish<T, const W: usize>(stop: &RefCell<Stop<T, W>>, snapshot: Snapshot<W>, tasks: Vec<T>) {
    let mut stop = stop.borrow_mut();
    stop.report = Some(Report {
        snapshot,
        handed_back: tasks,
    });
    if let Some(waker) = stop.waker.take() {
        waker.wake();
    }
}

impl<T, R, E, const N: usize, const W: usize> Canceller for Inner<T, R, E, N, W>
where
    T: Send + 'static,
    R: Send + 'static,
    E: Send + 'static,
{
    fn cancel(self: Rc<Self>, id: TaskId, control: &Control) -> bool {
        let certain = {
            let mut page = self.page.borrow_mut();
            if let Some(left) = page.feed.cancel_waiting(id) {
                // It never reached the queue; nobody waits for it any more: the sink's.
                if let Some(event) = left {
                    self.pending.borrow_mut().push_back(Out::Event(event));
                }
                true
            } else {
                match control.ticket.cancel() {
                    // The worker that takes it ends it without running it.
                    Cancel::Pending => true,
                    Cancel::Running(run) => match self.shared.sup.cancel(run) {
                        Ok(()) => {
                            self.kill_cancelled(&mut page, run);
                            true
                        }
                        // The run ended first: with its outcome, or a crash (whose retry
                        // finds the ticket cancelled).
                        Err(_) => false,
                    },
                    Cancel::Ended => false,
                }
            }
        };
        self.pump();
        certain
    }
}

impl<T, R, E, const N: usize, const W: usize> Inner<T, R, E, N, W>
where
    T: Send + 'static,
    R: Send + 'static,
    E: Send + 'static,
{
    /// `run` was cancelled while it ran: condemn it and terminate its thread (a thread busy in
    /// a loop cannot be told to stop). Its task may return first: the worker then ends it
    /// cancelled and goes on, and the condemnation is refused (the run ended). A run already
    /// being killed (hung) is left to that.
    fn kill_cancelled(&self, page: &mut Page<T, R, E, W>, run: Run) {
        let worker = run.worker();
        if page.threads.state(worker) != ThreadState::Running {
            return;
        }
        if self.shared.sup.condemn(run).is_ok() {
            page.threads.terminate(worker, Kill::Cancelled);
            self.notice(Notice::Terminating { worker });
        }
    }
}

/// Where the tasks of a [`Stopping`] go if it is dropped before its report is taken.
trait HandBack<T> {
    /// Gives `tasks` to the pool's sink as [`Event::HandedBack`].
    fn hand_back(self: Rc<Self>, tasks: Vec<T>);
}

impl<T, R, E, const N: usize, const W: usize> HandBack<T> for Inner<T, R, E, N, W>
where
    T: Send + 'static,
    R: Send + 'static,
    E: Send + 'static,
{
    fn hand_back(self: Rc<Self>, tasks: Vec<T>) {
        self.hand_back_to_sink(tasks);
        self.pump();
    }
}

/// A pool stopping ([`Pool::drain`] or [`Pool::abort`]): a future of the final [`Report`],
/// ready once the supervisor has stopped and every worker thread is gone.
///
/// Several shutdowns may be pending at once (a drain, then an abort): they all resolve
/// together, and the tasks handed back go to the first one started that is still held; the
/// others get the same counters and no tasks.
///
/// No task is lost with a dropped `Stopping`: if none is held when the pool stops, the tasks
/// go to the pool's sink as [`Event::HandedBack`]; and a `Stopping` dropped with its report
/// not taken (never awaited to the end) gives its tasks to the sink then. (The sink outlives
/// the pool for this: a `Stopping` keeps it.)
#[must_use = "the final report (and the tasks handed back) comes with the future: await it, \
              or the tasks go to the sink"]
pub struct Stopping<T, const W: usize> {
    stop: Rc<RefCell<Stop<T, W>>>,
    pool: Rc<dyn HandBack<T>>,
}

impl<T, const W: usize> Drop for Stopping<T, W> {
    fn drop(&mut self) {
        let unclaimed = self
            .stop
            .borrow_mut()
            .report
            .take()
            .map(|report| report.handed_back)
            .filter(|tasks| !tasks.is_empty());
        if let Some(tasks) = unclaimed {
            Rc::clone(&self.pool).hand_back(tasks);
        }
    }
}

impl<T, const W: usize> Future for Stopping<T, W> {
    type Output = Report<T, W>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Report<T, W>> {
        let mut stop = self.stop.borrow_mut();
        match stop.report.take() {
            Some(report) => Poll::Ready(report),
            None => {
                stop.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl<T, const W: usize> fmt::Debug for Stopping<T, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stopping").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    use crate::test_support::sleep;

    /// A pool of one worker whose sink counts the tasks handed back to it, its worker busy
    /// with task 0 (300 ms) and tasks 1-3 queued behind it.
    async fn three_queued_behind_a_busy_worker(
        handed_back: &Rc<Cell<u32>>,
    ) -> Pool<u32, u32, (), 8, 1> {
        let seen = Rc::clone(handed_back);
        let pool = Pool::<u32, u32, (), 8, 1>::start(
            Config::new(1),
            |_ctx, n| {
                if *n == 0 {
                    let until = entry::now() + 300.0;
                    while entry::now() < until {}
                }
                Ok(*n)
            },
            move |event| {
                if matches!(event, Event::HandedBack { .. }) {
                    seen.set(seen.get() + 1);
                }
            },
        )
        .unwrap();
        pool.on_notice(|_| {});
        for n in 0..4 {
            pool.try_submit(n).unwrap();
        }
        while pool.snapshot().workers[0].state != WorkerState::Busy {
            sleep(10).await;
        }
        pool
    }

    /// Review finding 7: `abort()` (or `drain()`) returns a `Stopping` that is a plain struct, not
    /// `#[must_use]`, so `pool.abort();` compiles without a warning. The tasks still queued are
    /// then handed back into that dropped future's report (`settle` gives them to the first
    /// `Stopping` started, dead or alive), and nobody ever sees them: not the sink, not a
    /// report. Every accepted task must end in one observable outcome.
    #[wasm_bindgen_test]
    async fn tasks_handed_back_by_an_abort_nobody_awaits_reach_the_sink() {
        let handed_back = Rc::new(Cell::new(0));
        let pool = three_queued_behind_a_busy_worker(&handed_back).await;
        // Fire and forget.
        drop(pool.abort());
        sleep(1_000).await;
        let snapshot = pool.snapshot();
        drop(pool);
        sleep(500).await;
        assert_eq!(
            snapshot.handed_back, 3,
            "the supervisor counted three tasks handed back"
        );
        assert_eq!(handed_back.get(), 3, "…and the app received them");
    }

    /// Two shutdowns: the tasks go to the first, which is held but never awaited; dropped
    /// later, it gives them to the sink.
    #[wasm_bindgen_test]
    async fn a_stopping_dropped_with_its_report_untaken_gives_its_tasks_to_the_sink() {
        let handed_back = Rc::new(Cell::new(0));
        let pool = three_queued_behind_a_busy_worker(&handed_back).await;
        let first = pool.abort();
        let report = futures_select(pool.drain(), 5_000)
            .await
            .expect("hung: drain");
        assert!(report.handed_back.is_empty(), "the first shutdown has them");
        assert_eq!(report.snapshot.handed_back, 3);
        assert_eq!(handed_back.get(), 0, "not yet at the sink");
        drop(first);
        assert_eq!(
            handed_back.get(),
            3,
            "the dropped report's tasks reach the sink"
        );
        drop(pool);
    }

    /// Review finding 11: a sink that panics traps the page's thread in the middle of
    /// `Inner::pump`, which never clears `busy` (nor the sink's `RefCell` borrow): every later
    /// pump returns at once, so nothing is delivered again — no event, no submission's outcome,
    /// no shutdown report. (The thread host documents "a sink that panics loses only the event
    /// it was given".) Here the first event's sink call panics; the page survives the trap (it
    /// happens in a message handler), and a later submission never resolves.
    #[wasm_bindgen_test]
    async fn a_sink_that_panics_loses_only_the_event_it_was_given() {
        let pool = Pool::<u32, u32, (), 8, 1>::start(
            Config::new(1),
            |_ctx, n| Ok(*n),
            |event| {
                if let Event::Completed { task: 0, .. } = event {
                    panic!("review: the app's sink has a bug");
                }
            },
        )
        .unwrap();
        pool.on_notice(|_| {});
        pool.try_submit(0).unwrap();
        // The sink panics when the page takes task 0's outcome, in a message handler.
        sleep(500).await;
        let later = pool.submit(1);
        let outcome = futures_select(later, 2_000).await;
        assert!(
            matches!(outcome, Some(Ok(Event::Completed { output: 1, .. }))),
            "a submission after the sink panicked: {outcome:?} (None: never resolved)"
        );
    }

    /// Runs of the calling thread so far: a fresh thread starts at 0.
    fn runs_on_this_thread() -> u32 {
        std::thread_local! {
            static RUNS: Cell<u32> = const { Cell::new(0) };
        }
        RUNS.with(|runs| {
            runs.set(runs.get() + 1);
            runs.get()
        })
    }

    /// Recycling (issue 12): before, `start` refused the option (`StartError::Unsupported`).
    /// With a quota of 2, a worker's third task runs on a fresh thread (its thread-locals start
    /// over), each recycling is an `Event::Recycled`, not a crash, and every task ends once.
    #[wasm_bindgen_test]
    async fn a_worker_is_replaced_by_a_fresh_thread_after_its_quota_of_tasks() {
        let recycled = Rc::new(Cell::new(0));
        let seen = Rc::clone(&recycled);
        let policy = Policy::DEFAULT.with_recycling(2).unwrap();
        let pool = Pool::<u32, u32, (), 8, 1>::start(
            Config::new(1).with_policy(policy),
            |_ctx, _n| Ok(runs_on_this_thread()),
            move |event| match event {
                Event::Recycled { worker: 0 } => seen.set(seen.get() + 1),
                // Every other event is a submission's: none reaches the sink.
                _ => seen.set(seen.get() + 1000),
            },
        )
        .unwrap();
        pool.on_notice(|_| {});
        let submissions: Vec<_> = (0..5).map(|n| pool.submit(n)).collect();
        let mut runs = Vec::new();
        for submission in submissions {
            match futures_select(submission, 10_000).await {
                Some(Ok(Event::Completed { output, .. })) => runs.push(output),
                other => panic!("hung or not completed: {other:?}"),
            }
        }
        assert_eq!(runs, [1, 2, 1, 2, 1], "each thread ran at most its quota");
        let report = futures_select(pool.drain(), 5_000)
            .await
            .expect("hung: drain");
        assert_eq!(recycled.get(), 2);
        assert_eq!(report.snapshot.recycles(), 2);
        assert_eq!(report.snapshot.crashes(), 0, "a recycling is not a crash");
        assert_eq!(report.snapshot.completed, 5);
        assert!(report.snapshot.adds_up());
    }

    /// What a task of [`leaking_pool`] saw: runs of its thread so far (a fresh thread starts
    /// at 1), and the bytes its worker's heap held when it started.
    type Seen = (u32, usize);

    /// A pool of one worker whose task `n` leaks `n` KiB of its worker's heap (a block never
    /// freed), with `config`; the sink counts recycled events, the notices are kept.
    fn leaking_pool(
        config: Config,
        recycled: &Rc<Cell<u32>>,
        notices: &Rc<RefCell<Vec<Notice>>>,
    ) -> Pool<u32, Seen, (), 8, 1> {
        let (recycled, noticed) = (Rc::clone(recycled), Rc::clone(notices));
        let pool = Pool::<u32, Seen, (), 8, 1>::start(
            config,
            |_ctx, kib| {
                let runs = runs_on_this_thread();
                let held = heap::usage(heap::current().expect("a worker heap")).in_use;
                core::mem::forget(vec![1u8; *kib as usize * 1024]);
                Ok((runs, held))
            },
            move |event| match event {
                Event::Recycled { worker: 0 } => recycled.set(recycled.get() + 1),
                other => panic!("an event not a submission's: {other:?}"),
            },
        )
        .unwrap();
        pool.on_notice(move |notice| noticed.borrow_mut().push(notice));
        pool
    }

    /// What each of `tasks` saw, submitted one after the other.
    async fn run_in_turn(pool: &Pool<u32, Seen, (), 8, 1>, tasks: &[u32]) -> Vec<Seen> {
        let mut seen = Vec::new();
        for &kib in tasks {
            match futures_select(pool.submit(kib), 10_000).await {
                Some(Ok(Event::Completed { output, .. })) => seen.push(output),
                other => panic!("task {kib}: hung or not completed: {other:?}"),
            }
        }
        seen
    }

    /// The heap renewals among `notices`: (worker, bytes held).
    fn renewals(notices: &RefCell<Vec<Notice>>) -> Vec<(usize, usize)> {
        notices
            .borrow()
            .iter()
            .filter_map(|notice| match notice {
                Notice::HeapRenewed { worker, held, .. } => Some((*worker, *held)),
                _ => None,
            })
            .collect()
    }

    const LIMIT: usize = 1 << 20;

    /// The heap limit (issue 12): before, there was none (`Config::with_heap_limit` did not
    /// exist, and a leaking worker was never recycled). A worker whose task leaks its heap past
    /// the limit is recycled after that task (an `Event::Recycled`, not a crash), and the next
    /// task runs on a fresh thread whose heap holds less than the limit (it was renewed); a
    /// heap under the limit recycles nothing.
    #[wasm_bindgen_test]
    async fn a_worker_whose_heap_passes_the_limit_is_recycled_onto_a_fresh_heap() {
        let (recycled, notices) = (Rc::new(Cell::new(0)), Rc::new(RefCell::new(Vec::new())));
        let renewed = heap::stats().renewed;
        let pool = leaking_pool(Config::new(1).with_heap_limit(LIMIT), &recycled, &notices);
        // 600 KiB leaked: under the limit, kept. Another 600 KiB: past it, recycled after it.
        let seen = run_in_turn(&pool, &[0, 600, 600, 0, 0]).await;
        let runs: Vec<u32> = seen.iter().map(|(runs, _)| *runs).collect();
        assert_eq!(runs, [1, 2, 3, 1, 2], "a fresh thread after the third task");
        assert!(
            seen[2].1 > 600 * 1024,
            "the first leak was in the heap: {seen:?}"
        );
        assert!(
            seen[3].1 < LIMIT && seen[4].1 < LIMIT,
            "the fresh thread's heap is under the limit: {seen:?}"
        );
        let renewals = renewals(&notices);
        assert_eq!(renewals.len(), 1, "{:?}", notices.borrow());
        assert!(renewals[0].0 == 0 && renewals[0].1 > LIMIT, "{renewals:?}");
        assert_eq!(heap::stats().renewed, renewed + 1);
        assert!(pool.threads()[0].heap.in_use < LIMIT);
        let report = futures_select(pool.drain(), 5_000)
            .await
            .expect("hung: drain");
        assert_eq!(recycled.get(), 1);
        let snap = report.snapshot;
        assert_eq!(
            (snap.recycles(), snap.crashes(), snap.restarts()),
            (1, 0, 0)
        );
        assert_eq!(snap.completed, 5);
        assert!(snap.adds_up(), "{snap:?}");
    }

    /// A limit never reached recycles nothing: tasks that allocate far past it but free what
    /// they allocate leave their heap under it.
    #[wasm_bindgen_test]
    async fn a_heap_limit_never_reached_recycles_nothing() {
        let (recycled, notices) = (Rc::new(Cell::new(0)), Rc::new(RefCell::new(Vec::new())));
        let (recycled_, noticed) = (Rc::clone(&recycled), Rc::clone(&notices));
        let pool = Pool::<u32, Seen, (), 8, 1>::start(
            Config::new(1).with_heap_limit(LIMIT),
            |_ctx, kib| {
                let block = vec![1u8; *kib as usize * 1024];
                Ok((runs_on_this_thread(), usize::from(block[*kib as usize])))
            },
            move |event| {
                if let Event::Recycled { .. } = event {
                    recycled_.set(recycled_.get() + 1);
                }
            },
        )
        .unwrap();
        pool.on_notice(move |notice| noticed.borrow_mut().push(notice));
        let seen = run_in_turn(&pool, &[4096; 6]).await;
        let runs: Vec<u32> = seen.iter().map(|(runs, _)| *runs).collect();
        assert_eq!(runs, [1, 2, 3, 4, 5, 6], "one thread ran them all");
        let report = futures_select(pool.drain(), 5_000)
            .await
            .expect("hung: drain");
        assert_eq!((recycled.get(), report.snapshot.recycles()), (0, 0));
        assert!(renewals(&notices).is_empty());
    }

    /// With a quota of tasks as well, whichever comes first recycles the worker: a heap
    /// under the limit is kept across a quota recycling, one past it renewed.
    #[wasm_bindgen_test]
    async fn a_heap_limit_and_a_quota_of_tasks_recycle_whichever_comes_first() {
        let (recycled, notices) = (Rc::new(Cell::new(0)), Rc::new(RefCell::new(Vec::new())));
        let policy = Policy::DEFAULT.with_recycling(3).unwrap();
        let pool = leaking_pool(
            Config::new(1).with_policy(policy).with_heap_limit(LIMIT),
            &recycled,
            &notices,
        );
        // Quota after task 3 (heap kept: 300 KiB leaked); limit after task 5 (300 + 800 KiB).
        let seen = run_in_turn(&pool, &[0, 300, 0, 0, 800, 0, 0]).await;
        let runs: Vec<u32> = seen.iter().map(|(runs, _)| *runs).collect();
        assert_eq!(runs, [1, 2, 3, 1, 2, 1, 2]);
        assert!(seen[3].1 >= 300 * 1024, "kept after the quota: {seen:?}");
        assert!(seen[5].1 < 300 * 1024, "renewed after the limit: {seen:?}");
        assert_eq!(renewals(&notices).len(), 1, "{:?}", notices.borrow());
        let report = futures_select(pool.drain(), 5_000)
            .await
            .expect("hung: drain");
        assert_eq!((recycled.get(), report.snapshot.recycles()), (2, 2));
        assert_eq!(report.snapshot.crashes(), 0);
    }

    /// A leak during a drain: a worker past the limit is recycled while tasks are queued (a
    /// fresh thread runs each), and after the last one it leaves as the drain asks, holding
    /// what it leaked (no fresh thread would only start to leave).
    #[wasm_bindgen_test]
    async fn a_leak_during_a_drain_recycles_while_tasks_are_queued() {
        let (recycled, notices) = (Rc::new(Cell::new(0)), Rc::new(RefCell::new(Vec::new())));
        let pool = leaking_pool(Config::new(1).with_heap_limit(LIMIT), &recycled, &notices);
        let submissions: Vec<_> = (0..3).map(|_| pool.submit(1200)).collect();
        let stopping = pool.drain();
        let mut seen = Vec::new();
        for submission in submissions {
            match futures_select(submission, 10_000).await {
                Some(Ok(Event::Completed { output, .. })) => seen.push(output),
                other => panic!("hung or not completed: {other:?}"),
            }
        }
        let report = futures_select(stopping, 10_000).await.expect("hung: drain");
        let runs: Vec<u32> = seen.iter().map(|(runs, _)| *runs).collect();
        assert_eq!(runs, [1, 1, 1], "each task on a fresh thread: {seen:?}");
        assert!(seen.iter().all(|(_, held)| *held < LIMIT), "{seen:?}");
        assert_eq!((recycled.get(), report.snapshot.recycles()), (2, 2));
        assert_eq!(renewals(&notices).len(), 2, "{:?}", notices.borrow());
        assert_eq!(report.snapshot.completed, 3);
        assert!(report.snapshot.adds_up());
        assert!(
            pool.threads()[0].heap.in_use > LIMIT,
            "the last thread left holding its leak, not recycled"
        );
    }

    /// A pool of one worker that panics on task 0 (at least once, 3 runs), with `backoff`.
    fn crashing_pool(
        backoff: foreman_rt::policy::Backoff,
        crashes: &Rc<RefCell<Vec<f64>>>,
        notices: &Rc<RefCell<Vec<Notice>>>,
    ) -> Pool<u32, u32, (), 8, 1> {
        let crashes = Rc::clone(crashes);
        let noticed = Rc::clone(notices);
        let pool = Pool::<u32, u32, (), 8, 1>::start(
            Config::new(1).with_policy(
                Policy::DEFAULT
                    .with_intensity(foreman_rt::policy::Intensity::new(10, 60_000).unwrap())
                    .with_backoff(backoff),
            ),
            |_ctx, n| {
                assert!(*n != 0, "task 0 always crashes its worker");
                Ok(*n)
            },
            move |event| {
                if let Event::Crashed { .. } = event {
                    crashes.borrow_mut().push(entry::now());
                }
            },
        )
        .unwrap();
        pool.on_notice(move |notice| noticed.borrow_mut().push(notice));
        pool
    }

    /// Restart backoff (issue 12): before, `start` refused the option. The replacement of a
    /// worker that crashed n times in a row starts after min(cap, initial × factor^(n−1)) ms —
    /// on a timer: the retry's next crash comes no earlier — and the task still ends once.
    #[wasm_bindgen_test]
    async fn a_crashed_workers_replacement_starts_after_a_growing_delay() {
        let crashes = Rc::new(RefCell::new(Vec::new()));
        let notices = Rc::new(RefCell::new(Vec::new()));
        let backoff = foreman_rt::policy::Backoff::new(200, 2, 1_000).unwrap();
        let pool = crashing_pool(backoff, &crashes, &notices);
        let outcome = futures_select(pool.submit(0), 10_000)
            .await
            .expect("hung: the crashing task");
        assert!(
            matches!(
                outcome,
                Ok(Event::Crashed {
                    task: Some(Disposition::DeadLettered { attempts: 3, .. }),
                    ..
                })
            ),
            "{outcome:?}"
        );
        let crashes = crashes.borrow().clone();
        assert_eq!(crashes.len(), 2, "two retried crashes at the sink");
        let delays: Vec<u32> = notices
            .borrow()
            .iter()
            .filter_map(|notice| match notice {
                Notice::BackingOff {
                    worker: 0,
                    delay_ms,
                } => Some(*delay_ms),
                _ => None,
            })
            .collect();
        assert_eq!(delays, [200, 400, 800], "one delay per crash, growing");
        // The second crash came after the first delay (the timer, then a thread's load).
        assert!(
            crashes[1] - crashes[0] >= 195.0,
            "the replacement started {} ms after the crash",
            crashes[1] - crashes[0]
        );
        // Tasks after the crashes run on the replacement.
        let later = futures_select(pool.submit(7), 5_000).await;
        assert!(matches!(
            later,
            Some(Ok(Event::Completed { output: 7, .. }))
        ));
        let report = futures_select(pool.abort(), 5_000)
            .await
            .expect("hung: abort");
        assert!(report.snapshot.adds_up());
    }

    /// An abort during a long restart backoff (60 s) resolves at once: the slot is swept, the
    /// retry it held is handed back to its submission, and the pending timer later finds
    /// nothing to start.
    #[wasm_bindgen_test]
    async fn an_abort_cuts_a_restart_backoff_short() {
        let crashes = Rc::new(RefCell::new(Vec::new()));
        let notices = Rc::new(RefCell::new(Vec::new()));
        let backoff = foreman_rt::policy::Backoff::new(60_000, 2, 60_000).unwrap();
        let pool = crashing_pool(backoff, &crashes, &notices);
        let submission = pool.submit(0);
        while crashes.borrow().is_empty() {
            sleep(10).await;
        }
        let started = entry::now();
        let report = futures_select(pool.abort(), 3_000)
            .await
            .expect("hung: an abort during a 60 s backoff");
        assert!(entry::now() - started < 3_000.0);
        assert!(report.snapshot.adds_up());
        let outcome = futures_select(submission, 1_000)
            .await
            .expect("hung: the submission of the task whose retry was swept away");
        assert!(
            matches!(outcome, Ok(Event::HandedBack { task: 0 })),
            "{outcome:?}"
        );
        assert_eq!(
            pool.threads()[0].state,
            ThreadState::None,
            "no thread started"
        );
    }

    /// What recycling gives back (measured): a recycled thread's stack and thread-local block
    /// go back to the shared heap after the after-death check, and the next threads reuse
    /// them; the slot's worker heap is kept, and its free blocks serve the next thread. So
    /// round after round of recycled threads, neither grows. (Threads recycled faster than
    /// the after-death check lets their stacks go hold several stacks at once: the tasks here
    /// are spaced by more than the check.)
    #[wasm_bindgen_test]
    async fn recycled_threads_give_their_stacks_back() {
        const ROUND: u32 = 8;
        let policy = Policy::DEFAULT.with_recycling(1).unwrap();
        let pool = Pool::<u32, u32, (), 8, 1>::start(
            Config::new(1).with_policy(policy),
            |_ctx, n| {
                // Each task allocates 256 KiB in its worker's heap and frees it.
                let block = vec![*n as u8; 256 * 1024];
                Ok(u32::from(block[1000]))
            },
            |_| {},
        )
        .unwrap();
        pool.on_notice(|_| {});
        let mut rounds = Vec::new();
        for round in 0..3 {
            for n in 0..ROUND {
                let outcome = futures_select(pool.submit(n), 5_000).await;
                assert!(
                    matches!(outcome, Some(Ok(Event::Completed { .. }))),
                    "{outcome:?}"
                );
                // Past the after-death check of the thread just recycled.
                sleep(crate::threads::AFTER_DEATH_CHECK_MS + 100).await;
            }
            let stats = heap::stats();
            let worker_heap = pool.threads()[0].heap;
            web_sys::console::log_1(
                &format!(
                    "recycling round {round}: {} recycles, shared heap {} KiB, worker heaps {} KiB, slot heap held {} KiB in use {} B",
                    pool.snapshot().recycles(),
                    stats.shared / 1024,
                    stats.workers / 1024,
                    worker_heap.held / 1024,
                    worker_heap.in_use
                )
                .into(),
            );
            rounds.push((stats.shared, worker_heap.held));
        }
        // Quota 1: every task's thread is recycled after it, the pool running.
        assert_eq!(pool.snapshot().recycles(), 3 * ROUND);
        // Eight 1 MiB stacks a round would show as 8 MiB.
        let grown = rounds[2].0.saturating_sub(rounds[1].0);
        assert!(
            grown < 2 << 20,
            "the shared heap grew by {grown} bytes over {ROUND} recycled threads"
        );
        assert_eq!(
            rounds[2].1, rounds[1].1,
            "the slot's heap is reused, not regrown"
        );
        drop(pool);
    }

    /// Spins for `ms` milliseconds.
    fn spin(ms: f64) {
        let until = entry::now() + ms;
        while entry::now() < until {}
    }

    /// Waits (bounded) until worker 0 of `pool` runs a task.
    async fn until_busy<const N: usize, const W: usize>(pool: &Pool<u32, u32, (), N, W>) {
        for _ in 0..500 {
            if pool.snapshot().workers[0].state == WorkerState::Busy {
                return;
            }
            sleep(10).await;
        }
        panic!("hung: worker 0 never became busy");
    }

    /// Tasks the handler of [`cancellable_pool`] started, one bit each (tasks 0 to 31).
    static STARTED: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

    /// A pool of one worker (queue 4) whose task `n` spins `n` × 100 ms (`u32::MAX`: forever),
    /// recording that it started; a restart intensity of 1 in a minute.
    fn cancellable_pool(policy: Policy) -> Pool<u32, u32, (), 4, 1> {
        let intensity = foreman_rt::policy::Intensity::new(1, 60_000).unwrap();
        let pool = Pool::<u32, u32, (), 4, 1>::start(
            Config::new(1).with_policy(policy.with_intensity(intensity)),
            |_ctx, n| {
                STARTED.fetch_or(1 << (*n % 32), Ordering::Relaxed);
                if *n == u32::MAX {
                    loop {
                        core::hint::spin_loop();
                    }
                }
                spin(f64::from(*n) * 100.0);
                Ok(*n)
            },
            |_| {},
        )
        .unwrap();
        pool.on_notice(|_| {});
        pool
    }

    /// Cancellation (issue 12), queued: a cancelled task never runs, and ends
    /// `Event::Cancelled { worker: None }`; one still waiting for room ends at once.
    #[wasm_bindgen_test]
    async fn a_cancelled_queued_task_never_runs() {
        STARTED.store(0, Ordering::Relaxed);
        let pool = cancellable_pool(Policy::DEFAULT);
        let busy = pool.submit(3); // 300 ms
        until_busy(&pool).await;
        let queued = pool.submit(5);
        // The queue holds 4: fill it, and one more waits for room.
        let fillers: Vec<_> = (6..10).map(|n| pool.submit(n % 2)).collect();
        let waiting = pool.submit(11);
        assert!(waiting.cancel(), "a task waiting for room ends cancelled");
        let outcome = futures_select(waiting, 100).await;
        assert!(
            matches!(
                outcome,
                Some(Ok(Event::Cancelled {
                    worker: None,
                    task: 11
                }))
            ),
            "resolved at once: {outcome:?}"
        );
        assert!(queued.cancel(), "a queued task ends cancelled");
        assert!(queued.cancel(), "cancelling again says the same");
        let outcome = futures_select(queued, 5_000).await;
        assert!(
            matches!(
                outcome,
                Some(Ok(Event::Cancelled {
                    worker: None,
                    task: 5
                }))
            ),
            "{outcome:?}"
        );
        assert!(matches!(
            futures_select(busy, 5_000).await,
            Some(Ok(Event::Completed { output: 3, .. }))
        ));
        for filler in fillers {
            assert!(matches!(
                futures_select(filler, 5_000).await,
                Some(Ok(Event::Completed { .. }))
            ));
        }
        assert_eq!(
            STARTED.load(Ordering::Relaxed) & (1 << 5 | 1 << 11),
            0,
            "never ran"
        );
        let report = futures_select(pool.drain(), 5_000)
            .await
            .expect("hung: drain");
        assert_eq!(
            report.snapshot.cancelled, 1,
            "the queued one (the waiting one never got in)"
        );
        assert!(report.snapshot.adds_up());
    }

    /// Cancellation, running: the task's Web Worker is terminated (it spins forever and would
    /// never look), the task ends `Cancelled { worker: Some(0) }`, not retried, and a fresh
    /// worker takes over. Three in a row under an intensity of one restart a minute: a
    /// cancellation's kill is not a crash, so the pool does not escalate.
    #[wasm_bindgen_test]
    async fn a_cancelled_running_task_is_killed_not_retried_and_not_counted_as_a_crash() {
        STARTED.store(0, Ordering::Relaxed);
        let pool = cancellable_pool(Policy::DEFAULT);
        for _ in 0..3 {
            let forever = pool.submit(u32::MAX);
            until_busy(&pool).await;
            assert!(forever.cancel(), "a running task ends cancelled");
            let outcome = futures_select(forever, 10_000).await;
            assert!(
                matches!(
                    outcome,
                    Some(Ok(Event::Cancelled {
                        worker: Some(0),
                        task: u32::MAX
                    }))
                ),
                "{outcome:?}"
            );
        }
        let after = futures_select(pool.submit(1), 10_000).await;
        assert!(
            matches!(after, Some(Ok(Event::Completed { output: 1, .. }))),
            "the replacement runs the next task: {after:?}"
        );
        let snapshot = pool.snapshot();
        assert_eq!(snapshot.state, SupervisorState::Running, "no escalation");
        assert_eq!(snapshot.cancelled, 3);
        assert_eq!(snapshot.completed, 1);
        assert!(snapshot.adds_up());
        let report = futures_select(pool.drain(), 5_000)
            .await
            .expect("hung: drain");
        assert!(report.snapshot.adds_up());
    }

    /// Cancelling a task that has its outcome does nothing: `false`, and its future resolves to
    /// that outcome, once.
    #[wasm_bindgen_test]
    async fn a_cancellation_after_the_outcome_is_too_late() {
        let pool = cancellable_pool(Policy::DEFAULT);
        let mut done = pool.submit(0);
        let outcome = futures_select(&mut done, 5_000).await;
        assert!(matches!(
            outcome,
            Some(Ok(Event::Completed { output: 0, .. }))
        ));
        assert!(!done.cancel(), "too late");
        let snapshot = pool.snapshot();
        assert_eq!((snapshot.completed, snapshot.cancelled), (1, 0));
        drop(pool);
    }

    /// Cancellations racing completions, on two workers: each task settles once — completed,
    /// or cancelled — and a cancellation that said `true` always ends cancelled.
    #[wasm_bindgen_test]
    async fn a_cancellation_racing_its_task_ending_gives_exactly_one_outcome() {
        const TASKS: u32 = 16;
        let at_sink = Rc::new(Cell::new(0));
        let seen = Rc::clone(&at_sink);
        let pool = Pool::<u32, u32, (), 32, 2>::start(
            Config::new(2),
            |_ctx, n| {
                spin(f64::from(n % 4) * 5.0);
                Ok(*n)
            },
            move |_| seen.set(seen.get() + 1),
        )
        .unwrap();
        pool.on_notice(|_| {});
        let mut submissions: Vec<_> = (0..TASKS).map(|n| pool.submit(n)).collect();
        let mut promised = Vec::new();
        for (n, submission) in submissions.iter().enumerate() {
            // Staggered: some before they start, some while they run, some after.
            sleep((n % 5) as i32 * 3).await;
            promised.push(submission.cancel());
        }
        let (mut completed, mut cancelled) = (0, 0);
        for (n, submission) in submissions.iter_mut().enumerate() {
            match futures_select(&mut *submission, 15_000).await {
                Some(Ok(Event::Completed { output, .. })) => {
                    assert_eq!(output, n as u32);
                    assert!(
                        !promised[n],
                        "task {n}: cancel() said true, yet it completed"
                    );
                    completed += 1;
                }
                Some(Ok(Event::Cancelled { task, .. })) => {
                    assert_eq!(task, n as u32);
                    cancelled += 1;
                }
                other => panic!("task {n}: {other:?}"),
            }
            // Once settled, a submission stays pending (its one outcome was taken).
            assert!(futures_select(&mut *submission, 1).await.is_none());
        }
        assert_eq!(completed + cancelled, TASKS);
        assert_eq!(at_sink.get(), 0, "every event was a submission's");
        let report = futures_select(pool.drain(), 10_000)
            .await
            .expect("hung: drain");
        assert_eq!(report.snapshot.cancelled, cancelled as usize);
        assert_eq!(report.snapshot.completed, completed as usize);
        assert!(report.snapshot.adds_up());
    }

    /// An abort with cancelled tasks queued: the cancelled ones end cancelled (the snapshot
    /// counts them handed back, as the supervisor handed them back), the others handed back.
    #[wasm_bindgen_test]
    async fn an_abort_with_cancelled_tasks_queued_ends_each_once() {
        STARTED.store(0, Ordering::Relaxed);
        let pool = cancellable_pool(Policy::DEFAULT);
        let busy = pool.submit(3);
        until_busy(&pool).await;
        let queued: Vec<_> = (4..7).map(|n| pool.submit(n)).collect();
        assert!(queued[1].cancel());
        let report = futures_select(pool.abort(), 5_000)
            .await
            .expect("hung: abort");
        assert!(matches!(
            futures_select(busy, 1_000).await,
            Some(Ok(Event::Completed { output: 3, .. }))
        ));
        let mut outcomes = Vec::new();
        for submission in queued {
            outcomes.push(futures_select(submission, 1_000).await);
        }
        assert!(
            matches!(outcomes[0], Some(Ok(Event::HandedBack { task: 4 }))),
            "{outcomes:?}"
        );
        assert!(
            matches!(
                outcomes[1],
                Some(Ok(Event::Cancelled {
                    worker: None,
                    task: 5
                }))
            ),
            "{outcomes:?}"
        );
        assert!(
            matches!(outcomes[2], Some(Ok(Event::HandedBack { task: 6 }))),
            "{outcomes:?}"
        );
        assert_eq!(
            STARTED.load(Ordering::Relaxed) & (0b111 << 4),
            0,
            "none ran"
        );
        assert_eq!(report.snapshot.handed_back, 3);
        assert!(report.snapshot.adds_up());
    }

    /// A cancellation while the task's worker is being replaced (it crashed, and the retry
    /// waits out a restart backoff): too late for the run that crashed (`false`), yet the retry
    /// finds its ticket cancelled and never runs: the task ends cancelled, once.
    #[wasm_bindgen_test]
    async fn a_cancellation_while_the_tasks_worker_is_replaced_stops_the_retry() {
        let backoff = foreman_rt::policy::Backoff::new(500, 2, 1_000).unwrap();
        let crashes = Rc::new(RefCell::new(Vec::new()));
        let notices = Rc::new(RefCell::new(Vec::new()));
        let pool = crashing_pool(backoff, &crashes, &notices);
        let doomed = pool.submit(0);
        while crashes.borrow().is_empty() {
            sleep(10).await;
        }
        assert_eq!(pool.snapshot().workers[0].state, WorkerState::Restarting);
        assert!(!doomed.cancel(), "its run ended (crashed): not certain");
        let outcome = futures_select(doomed, 5_000).await;
        assert!(
            matches!(
                outcome,
                Some(Ok(Event::Cancelled {
                    worker: None,
                    task: 0
                }))
            ),
            "the retry never ran: {outcome:?}"
        );
        assert_eq!(crashes.borrow().len(), 1, "no second crash");
        let snapshot = pool.snapshot();
        assert_eq!(snapshot.cancelled, 1);
        assert!(snapshot.adds_up());
        drop(pool);
    }

    /// A per-task deadline (issue 12), counted from the run's start: a task queued longer than
    /// its deadline behind a slow one still completes; a task that spins past its deadline is
    /// killed as hung, on a pool without a watchdog (the clock starts for it), and its runs end
    /// dead-lettered.
    #[wasm_bindgen_test]
    async fn a_deadline_counts_from_the_runs_start_and_kills_a_spinning_task() {
        let hangs = Rc::new(Cell::new(0));
        let seen = Rc::clone(&hangs);
        let delivery = foreman_rt::policy::Delivery::at_least_once(2).unwrap();
        let pool = Pool::<u32, u32, (), 8, 1>::start(
            Config::new(1).with_policy(Policy::DEFAULT.with_delivery(delivery)),
            |_ctx, n| {
                if *n == u32::MAX {
                    loop {
                        core::hint::spin_loop();
                    }
                }
                spin(f64::from(*n));
                Ok(*n)
            },
            move |event| {
                if matches!(event, Event::Hung { .. }) {
                    seen.set(seen.get() + 1);
                }
            },
        )
        .unwrap();
        pool.on_notice(|_| {});
        let slow = pool.submit(400);
        let patient = pool.submit_with(50, TaskOptions::new().with_deadline(300));
        assert!(matches!(
            futures_select(slow, 5_000).await,
            Some(Ok(Event::Completed { output: 400, .. }))
        ));
        assert!(
            matches!(
                futures_select(patient, 5_000).await,
                Some(Ok(Event::Completed { output: 50, .. }))
            ),
            "queued for 400 ms, ran 50 ms of its 300"
        );
        let started = entry::now();
        let spinning = pool.submit_with(u32::MAX, TaskOptions::new().with_deadline(200));
        let outcome = futures_select(spinning, 15_000).await;
        match outcome {
            Some(Ok(Event::Crashed {
                cause,
                task: Some(Disposition::DeadLettered { attempts: 2, .. }),
                ..
            })) => assert_eq!(cause, "killed: its task ran past its deadline"),
            other => panic!("{other:?}"),
        }
        assert!(
            entry::now() - started >= 400.0,
            "two runs of 200 ms at least"
        );
        assert_eq!(hangs.get(), 2, "each run reported hung");
        let after = futures_select(pool.submit(1), 10_000).await;
        assert!(matches!(
            after,
            Some(Ok(Event::Completed { output: 1, .. }))
        ));
        drop(pool);
    }

    /// `future`'s output, or `None` after `ms` milliseconds.
    async fn futures_select<F: Future>(future: F, ms: i32) -> Option<F::Output> {
        let timeout = sleep(ms);
        let mut future = core::pin::pin!(future);
        let mut timeout = core::pin::pin!(timeout);
        core::future::poll_fn(|cx| {
            if let Poll::Ready(output) = future.as_mut().poll(cx) {
                return Poll::Ready(Some(output));
            }
            if timeout.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            Poll::Pending
        })
        .await
    }
}
