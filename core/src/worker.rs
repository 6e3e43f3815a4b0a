//! Workers: the per-worker slot and its state machine, and the [`Worker`] handle a host
//! drives.
//!
//! # The state machine
//!
//! ```text
//!  Vacant ──reserve──▶ Starting ──attach──▶ Idle ⇄ Busy ⇄ Hung ──condemn──▶ Terminating
//!    └───────────attach──────────────────────▲ │      │                         │
//!                                             │ └─next() sees shutdown─▶ Exiting ──drop──▶ Exited
//!   Restarting ──attach───────────────────────┘
//!       ▲                      Busy/Hung/Terminating ──crash / declare_dead──▶ Crashed
//!       └──────── Replace ◀── recover ◀───────────────────────────────────────────┘
//!                 Retire/Escalate ──▶ Retired
//! ```
//!
//! Each transition is one atomic step on the slot's 32-bit *state word*:
//!
//! | bits | meaning |
//! |---|---|
//! | 0–3 | the state |
//! | 4 | `HAS_TASK`: the slot's task cell holds a task (running, or kept for a retry) |
//! | 8–31 | the *generation*, bumped at every task start |
//!
//! The generation lets the watchdog's compare-and-swap from `Busy` to `Hung` fail if the
//! worker moved on to another task between the watchdog's look and its verdict.
//!
//! # Invariants
//!
//! 1. Only the thread holding a slot's [`Worker`] writes the task cell, and only while the
//!    state is `Idle` (taking a task) or its own `Busy`/`Hung` (finishing it).
//! 2. Anyone else touches the cell only after moving the state to `Recovering` from `Crashed`,
//!    and a slot only becomes `Crashed` once its worker has let go of the task: by dropping or
//!    crashing its [`Job`], by finding itself `Terminating` when it finishes, or — for a
//!    thread that died without unwinding — by the host's `unsafe`
//!    [`Supervisor::declare_dead`](crate::Supervisor::declare_dead).
//! 3. While a slot is active (every state but `Vacant`, `Exited`, `Retired`) it is counted in
//!    the supervisor's active count; the supervisor stops when a shutdown finds it at zero.

use core::fmt;
use core::mem::{ManuallyDrop, MaybeUninit};

use crate::park::Park;
use crate::policy::Tick;
use crate::queue::PopError;
use crate::supervisor::{Decision, Supervisor};
use crate::sync::{init_empty_cell, AtomicU32, AtomicUsize, Ordering, UnsafeCell};

pub(crate) const STATE_MASK: u32 = 0xF;
pub(crate) const HAS_TASK: u32 = 1 << 4;
const GEN_SHIFT: u32 = 8;

pub(crate) const VACANT: u32 = 0;
pub(crate) const STARTING: u32 = 1;
pub(crate) const IDLE: u32 = 2;
pub(crate) const BUSY: u32 = 3;
pub(crate) const HUNG: u32 = 4;
pub(crate) const TERMINATING: u32 = 5;
pub(crate) const EXITING: u32 = 6;
pub(crate) const EXITED: u32 = 7;
pub(crate) const CRASHED: u32 = 8;
pub(crate) const RECOVERING: u32 = 9;
pub(crate) const RESTARTING: u32 = 10;
pub(crate) const RETIRED: u32 = 11;

/// The state code of a state word.
#[inline(always)]
pub(crate) const fn code(word: u32) -> u32 {
    word & STATE_MASK
}

/// `word` with its state code replaced by `state` (task flag and generation kept).
#[inline(always)]
pub(crate) const fn with_code(word: u32, state: u32) -> u32 {
    (word & !STATE_MASK) | state
}

/// What a worker is doing, as the supervisor sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkerState {
    /// No worker, none expected.
    Vacant,
    /// Reserved: the host is starting a worker here.
    Starting,
    /// Attached and waiting for a task.
    Idle,
    /// Running a task.
    Busy,
    /// Running a task past the watchdog's deadline.
    Hung,
    /// Condemned as hung: the host is killing it.
    Terminating,
    /// Leaving because of a shutdown.
    Exiting,
    /// Gone after a shutdown or a normal exit.
    Exited,
    /// Crashed, not yet recovered.
    Crashed,
    /// Crashed or exited; the supervisor asked the host for a replacement.
    Restarting,
    /// Crashed or exited and will not be replaced.
    Retired,
}

impl WorkerState {
    pub(crate) const fn from_word(word: u32) -> Self {
        match code(word) {
            VACANT => WorkerState::Vacant,
            STARTING => WorkerState::Starting,
            IDLE => WorkerState::Idle,
            BUSY => WorkerState::Busy,
            HUNG => WorkerState::Hung,
            TERMINATING => WorkerState::Terminating,
            EXITING => WorkerState::Exiting,
            EXITED => WorkerState::Exited,
            CRASHED | RECOVERING => WorkerState::Crashed,
            RESTARTING => WorkerState::Restarting,
            _ => WorkerState::Retired,
        }
    }

    /// A short lowercase name, for logs and user interfaces.
    ///
    /// ```
    /// assert_eq!(foreman_rt::WorkerState::Restarting.name(), "restarting");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            WorkerState::Vacant => "vacant",
            WorkerState::Starting => "starting",
            WorkerState::Idle => "idle",
            WorkerState::Busy => "busy",
            WorkerState::Hung => "hung",
            WorkerState::Terminating => "terminating",
            WorkerState::Exiting => "exiting",
            WorkerState::Exited => "exited",
            WorkerState::Crashed => "crashed",
            WorkerState::Restarting => "restarting",
            WorkerState::Retired => "retired",
        }
    }
}

impl fmt::Display for WorkerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A task with the number of its runs that started.
pub(crate) struct Envelope<T> {
    pub(crate) task: T,
    /// Runs started so far: 0 while it waits for its first run, 1 once that started, and so
    /// on. Counted when a run starts (`Worker::step`), so a retry whose worker died before
    /// starting it is not charged.
    pub(crate) attempt: u32,
}

/// One worker's slot in the supervisor. Cache-padded by the supervisor.
pub(crate) struct Slot<T> {
    pub(crate) state: AtomicU32,
    /// The clock when the current task started or last signalled progress.
    pub(crate) heartbeat: AtomicU32,
    /// Written only by the worker (one writer), read by snapshots.
    pub(crate) completed: AtomicUsize,
    /// Written only by the worker (one writer), read by snapshots.
    pub(crate) failed: AtomicUsize,
    /// Written only by the recoverer (one at a time, under `Recovering`).
    pub(crate) crashes: AtomicU32,
    /// Written only by the recoverer or by the exiting worker.
    pub(crate) restarts: AtomicU32,
    pub(crate) task: UnsafeCell<MaybeUninit<Envelope<T>>>,
}

impl<T> Slot<T> {
    crate::sync::loom_const_fn! {
        pub(crate) fn new() -> Self {
            Slot {
                state: AtomicU32::new(VACANT),
                heartbeat: AtomicU32::new(0),
                completed: AtomicUsize::new(0),
                failed: AtomicUsize::new(0),
                crashes: AtomicU32::new(0),
                restarts: AtomicU32::new(0),
                task: UnsafeCell::new(MaybeUninit::uninit()),
            }
        }
    }

    /// Makes `place` what [`new`](Self::new) returns, without building a `T` on the stack.
    ///
    /// # Safety
    /// `place` is valid for writes and aligned. What it held is overwritten, not dropped.
    pub(crate) unsafe fn init(place: *mut Self) {
        // SAFETY: per the contract `place` is valid for writes; each field is written once
        // through a raw pointer, and no reference to the uninitialized memory is made.
        unsafe {
            (&raw mut (*place).state).write(AtomicU32::new(VACANT));
            (&raw mut (*place).heartbeat).write(AtomicU32::new(0));
            (&raw mut (*place).completed).write(AtomicUsize::new(0));
            (&raw mut (*place).failed).write(AtomicUsize::new(0));
            (&raw mut (*place).crashes).write(AtomicU32::new(0));
            (&raw mut (*place).restarts).write(AtomicU32::new(0));
            init_empty_cell(&raw mut (*place).task);
        }
    }

    /// Moves the task out of the cell.
    ///
    /// # Safety
    /// The caller owns the cell (invariants 1–2 of the module docs) and the state word says
    /// `HAS_TASK`; afterwards the caller clears `HAS_TASK` or writes the cell again.
    pub(crate) unsafe fn take(&self) -> Envelope<T> {
        // SAFETY: per the contract the cell is initialized and nobody else touches it.
        self.task.with(|cell| unsafe { (*cell).assume_init_read() })
    }

    /// Stores a task in the cell.
    ///
    /// # Safety
    /// The caller owns the cell and it holds no task (or one already moved out).
    pub(crate) unsafe fn put(&self, envelope: Envelope<T>) {
        // SAFETY: per the contract nobody else touches the cell; nothing is overwritten that
        // still needs dropping.
        self.task
            .with_mut(|cell| unsafe { (*cell).write(envelope) });
    }

    /// Counts the start of a run of the task in the cell.
    ///
    /// # Safety
    /// The caller owns the cell and it holds a task.
    unsafe fn count_run(&self) {
        // SAFETY: per the contract the cell is initialized and nobody else touches it.
        self.task.with_mut(|cell| unsafe {
            let envelope = (*cell).assume_init_mut();
            envelope.attempt = envelope.attempt.wrapping_add(1);
        });
    }

    /// The task in the cell.
    ///
    /// # Safety
    /// The caller owns the cell (or shares it only with readers) and it holds a task for as
    /// long as the reference lives.
    pub(crate) unsafe fn peek(&self) -> &Envelope<T> {
        // SAFETY: per the contract the cell is initialized and not written meanwhile.
        self.task.with(|cell| unsafe { (*cell).assume_init_ref() })
    }

    /// Bumps a single-writer counter without a read-modify-write instruction.
    #[inline(always)]
    fn bump(counter: &AtomicUsize) {
        // Relaxed load: this thread is the counter's only writer.
        let value = counter.load(Ordering::Relaxed);
        // Release: a snapshot that sees the count also sees the pop behind it.
        counter.store(value.wrapping_add(1), Ordering::Release);
    }
}

/// A handle on one worker slot: the host's end of the worker state machine.
///
/// Obtain one with [`Supervisor::attach`]; drive it with [`next_blocking`](Worker::next_blocking)
/// (a thread that may park) or [`try_next`](Worker::try_next) (a loop that polls). Dropping it ends the
/// worker: after a shutdown it exits; while the supervisor runs it is a *normal exit* and the
/// [`Restart`](crate::policy::Restart) policy decides whether a replacement is wanted (see
/// [`exit`](Worker::exit)).
///
/// ```
/// use foreman_rt::{park::NoPark, policy::Policy, Next, Supervisor};
///
/// let sup: Supervisor<u32, 4, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
/// let mut worker = sup.attach(0).unwrap();
/// sup.try_submit(20).unwrap();
/// sup.try_submit(22).unwrap();
/// sup.drain();
///
/// let mut sum = 0;
/// loop {
///     match worker.try_next() {
///         Next::Run(job) => sum += job.complete().unwrap(),
///         Next::Idle => continue, // a polling host would do other work, or sleep, here
///         Next::Exit => break,
///     }
/// }
/// assert_eq!(sum, 42);
/// drop(worker);
/// assert!(sup.is_stopped());
/// ```
pub struct Worker<'s, T, const N: usize, const W: usize, P: Park> {
    sup: &'s Supervisor<T, N, W, P>,
    index: usize,
    /// Set when this handle's job crashed or was condemned: the slot is no longer ours (a
    /// replacement may already own it).
    dead: bool,
}

/// What one step of a worker found; see [`Worker::try_next`].
enum Step {
    Started,
    Idle,
    Exit,
}

/// What [`Worker::try_next`] found.
pub enum Next<'w, T, const N: usize, const W: usize, P: Park> {
    /// A task to run.
    Run(Job<'w, T, N, W, P>),
    /// Nothing to do now: try again later (a thread host uses [`Worker::next_blocking`]).
    Idle,
    /// The worker is done: a shutdown asked it to leave, or it crashed. Drop the handle.
    Exit,
}

impl<T, const N: usize, const W: usize, P: Park> fmt::Debug for Next<'_, T, N, W, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Next::Run(_) => "Run(..)",
            Next::Idle => "Idle",
            Next::Exit => "Exit",
        })
    }
}

impl<'s, T, const N: usize, const W: usize, P: Park> Worker<'s, T, N, W, P> {
    pub(crate) fn new(sup: &'s Supervisor<T, N, W, P>, index: usize) -> Self {
        Worker {
            sup,
            index,
            dead: false,
        }
    }

    /// This worker's index, `0..W`.
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Supervisor};
    /// let sup: Supervisor<u8, 2, 3> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// assert_eq!(sup.attach(2).unwrap().index(), 2);
    /// ```
    pub fn index(&self) -> usize {
        self.index
    }

    /// The supervisor this worker belongs to.
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Supervisor, WorkerState};
    /// let sup: Supervisor<u8, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// let worker = sup.attach(0).unwrap();
    /// assert_eq!(worker.supervisor().worker_state(0), Some(WorkerState::Idle));
    /// ```
    pub fn supervisor(&self) -> &'s Supervisor<T, N, W, P> {
        self.sup
    }

    fn slot(&self) -> &'s Slot<T> {
        self.sup.slot(self.index)
    }

    /// Takes the next task, if there is one. Never blocks: for hosts that poll.
    ///
    /// A task the crashed predecessor of this worker was running comes first (its retry);
    /// then the queue. Returns [`Next::Exit`] once an abort or escalation asks workers to
    /// leave, or a drain finds the queue empty and no other worker holds a task that a crash
    /// could send back to it.
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Next, Supervisor};
    /// let sup: Supervisor<&str, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// let mut worker = sup.attach(0).unwrap();
    /// assert!(matches!(worker.try_next(), Next::Idle));
    /// sup.try_submit("hello").unwrap();
    /// match worker.try_next() {
    ///     Next::Run(job) => assert_eq!(job.complete().unwrap(), "hello"),
    ///     other => panic!("expected a task, got {other:?}"),
    /// };
    /// ```
    pub fn try_next(&mut self) -> Next<'_, T, N, W, P> {
        match self.step() {
            Step::Started => Next::Run(self.job()),
            Step::Idle => Next::Idle,
            Step::Exit => Next::Exit,
        }
    }

    /// Takes the next task, parking the thread (through the supervisor's [`Park`]) while
    /// there is none. `None` when the worker must leave: drop the handle then.
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Supervisor};
    /// let sup: Supervisor<u32, 4, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// let mut worker = sup.attach(0).unwrap();
    /// sup.try_submit(40).unwrap();
    /// sup.try_submit(2).unwrap();
    /// sup.drain();
    /// let mut sum = 0;
    /// while let Some(job) = worker.next_blocking() {
    ///     sum += job.complete().unwrap();
    /// }
    /// assert_eq!(sum, 42);
    /// ```
    pub fn next_blocking(&mut self) -> Option<Job<'_, T, N, W, P>> {
        let mut slept = false;
        loop {
            match self.step() {
                Step::Started => {
                    if slept {
                        self.sup.pass_on_work();
                    }
                    return Some(self.job());
                }
                Step::Idle => {
                    self.sup.wait_for_work();
                    slept = true;
                }
                Step::Exit => return None,
            }
        }
    }

    /// One step of the state machine: start a task in the slot, or report idle or exit.
    fn step(&mut self) -> Step {
        if self.dead {
            return Step::Exit;
        }
        let slot = self.slot();
        // Acquire: makes a retry that a recoverer left in the cell visible (its Release store).
        let word = slot.state.load(Ordering::Acquire);
        if code(word) != IDLE {
            // Exiting: nothing more to do.
            return Step::Exit;
        }
        if word & HAS_TASK == 0 {
            if self.sup.stops_workers() {
                self.begin_exit(word);
                return Step::Exit;
            }
            match self.sup.take_queued() {
                Ok(envelope) => {
                    // SAFETY: the slot is Idle without a task and this thread holds its live
                    // Worker (invariant 1): the cell is ours and empty.
                    unsafe { slot.put(envelope) };
                }
                // Draining, and a peer's task may yet crash back into the queue: stay.
                Err(PopError::Closed) if self.sup.drain_waits() => return Step::Idle,
                Err(PopError::Closed) => {
                    self.begin_exit(word);
                    return Step::Exit;
                }
                Err(PopError::Empty) => return Step::Idle,
            }
        }
        // SAFETY: the slot is Idle and this thread holds its live Worker (invariant 1): the
        // cell is ours, and it holds the task (just put there, or a retry left for us).
        unsafe { slot.count_run() };
        let generation = (word >> GEN_SHIFT).wrapping_add(1);
        // Relaxed: the heartbeat is published by the Release store of the state below.
        slot.heartbeat.store(self.sup.now(), Ordering::Relaxed);
        // Release: publishes the task in the cell and the heartbeat to the watchdog and to a
        // recoverer, which Acquire-load the state. A plain store suffices: nobody else changes
        // an Idle slot (see the module docs).
        slot.state.store(
            (generation << GEN_SHIFT) | HAS_TASK | BUSY,
            Ordering::Release,
        );
        Step::Started
    }

    /// The job for the task `step` just started.
    fn job(&mut self) -> Job<'_, T, N, W, P> {
        Job {
            sup: self.sup,
            index: self.index,
            dead: &mut self.dead,
        }
    }

    /// Ends the worker while the supervisor runs (a *normal exit*) and returns what the
    /// [`Restart`](crate::policy::Restart) policy decided: [`Decision::Replace`] means the host
    /// should attach a new worker to this slot. Dropping the handle does the same, silently.
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::{Policy, Restart}, Decision, Supervisor, WorkerState};
    ///
    /// let sup: Supervisor<u8, 2, 2> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// let (first, second) = (sup.attach(0).unwrap(), sup.attach(1).unwrap());
    /// assert_eq!(first.exit(), Decision::Replace); // permanent workers are replaced
    /// assert_eq!(sup.worker_state(0), Some(WorkerState::Restarting));
    /// # drop(second);
    /// ```
    pub fn exit(self) -> Decision {
        let this = ManuallyDrop::new(self);
        this.end()
    }

    /// Idle → Exiting, decided by `next`.
    fn begin_exit(&self, word: u32) {
        // Release: orders this worker's earlier writes before anyone who sees it leaving.
        self.slot()
            .state
            .store(with_code(word, EXITING), Ordering::Release);
    }

    /// Ends the handle: the shared body of `exit` and `drop`.
    fn end(&self) -> Decision {
        if self.dead {
            // The crash's recovery decided already.
            return Decision::Retire;
        }
        let slot = self.slot();
        // Acquire: see `next`.
        let word = slot.state.load(Ordering::Acquire);
        match code(word) {
            EXITING => {
                // Release: see `begin_exit`.
                slot.state.store(with_code(word, EXITED), Ordering::Release);
                self.sup.deactivate();
                Decision::Retire
            }
            IDLE => self.sup.end_normally(self.index, word),
            // Declared dead by the host: its recovery decides.
            _ => Decision::Retire,
        }
    }
}

impl<T, const N: usize, const W: usize, P: Park> Drop for Worker<'_, T, N, W, P> {
    fn drop(&mut self) {
        self.end();
    }
}

impl<T, const N: usize, const W: usize, P: Park> fmt::Debug for Worker<'_, T, N, W, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("index", &self.index)
            .field("state", &self.sup.worker_state(self.index))
            .finish()
    }
}

/// Why a finished task could not be recorded: the host condemned the worker as hung while it
/// ran ([`Supervisor::condemn`]). The supervisor recovers the task per its delivery policy;
/// the worker must stop (its next [`Worker::try_next`] says [`Next::Exit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Condemned;

impl fmt::Display for Condemned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the worker was condemned as hung before its task finished")
    }
}

impl core::error::Error for Condemned {}

/// A task a worker is running: the right (and the duty) to record its one outcome.
///
/// Finish it with [`complete`](Job::complete), [`fail`](Job::fail) or
/// [`crash`](Job::crash). Dropping it unfinished — a panic unwinding through the host's
/// loop, say — marks the worker crashed with the task still in its slot, for
/// [`Supervisor::recover`] to pick up: the task is never lost.
///
/// ```
/// use foreman_rt::{park::NoPark, policy::Policy, Next, Supervisor};
///
/// let sup: Supervisor<u32, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
/// sup.try_submit(6).unwrap();
/// let mut worker = sup.attach(0).unwrap();
/// let Next::Run(job) = worker.try_next() else { unreachable!() };
/// assert_eq!((*job.task(), job.attempt(), job.context().worker()), (6, 1, 0));
/// let task = job.fail().unwrap(); // an error is an outcome too; the task comes back
/// assert_eq!(task, 6);
/// assert_eq!(sup.snapshot().failed, 1);
/// ```
pub struct Job<'w, T, const N: usize, const W: usize, P: Park> {
    sup: &'w Supervisor<T, N, W, P>,
    index: usize,
    /// The worker's `dead` flag: set when this job lets go of its slot.
    dead: &'w mut bool,
}

impl<'w, T, const N: usize, const W: usize, P: Park> Job<'w, T, N, W, P> {
    fn slot(&self) -> &'w Slot<T> {
        self.sup.slot(self.index)
    }

    /// The task.
    ///
    /// A host that may kill the thread running it (a Web Worker terminated as hung) should
    /// copy what it needs out of the task at once: once the supervisor has recovered the
    /// slot, a retry may be written into the same cell while the doomed thread still runs.
    ///
    /// ```
    /// # use foreman_rt::{park::NoPark, policy::Policy, Next, Supervisor};
    /// # let sup: Supervisor<String, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// sup.try_submit("render row 7".to_string()).unwrap();
    /// # let mut worker = sup.attach(0).unwrap();
    /// # let Next::Run(job) = worker.try_next() else { unreachable!() };
    /// assert_eq!(job.task(), "render row 7");
    /// # job.complete().unwrap();
    /// ```
    pub fn task(&self) -> &T {
        // SAFETY: while a Job exists its slot is Busy, Hung or Terminating with a task, and
        // only this Job's worker writes the cell (invariants 1–2); the reference borrows the
        // Job, so it ends before the Job lets go of the task.
        unsafe { &self.slot().peek().task }
    }

    /// Which run of the task this is: 1 the first time, 2 on the first retry, …
    ///
    /// ```
    /// # use foreman_rt::{park::NoPark, policy::Policy, Next, Supervisor};
    /// # let sup: Supervisor<u8, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// # sup.try_submit(1).unwrap();
    /// # let mut worker = sup.attach(0).unwrap();
    /// # let Next::Run(job) = worker.try_next() else { unreachable!() };
    /// assert_eq!(job.attempt(), 1);
    /// # job.complete().unwrap();
    /// ```
    pub fn attempt(&self) -> u32 {
        // SAFETY: as in `task`. The run was counted when it started.
        unsafe { self.slot().peek().attempt }
    }

    /// What task code may know and do about its worker: see [`Context`].
    ///
    /// ```
    /// # use foreman_rt::{park::NoPark, policy::Policy, Next, Supervisor};
    /// # let sup: Supervisor<u8, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// # sup.try_submit(1).unwrap();
    /// # let mut worker = sup.attach(0).unwrap();
    /// # let Next::Run(job) = worker.try_next() else { unreachable!() };
    /// let ctx = job.context();
    /// assert_eq!((ctx.worker(), ctx.attempt()), (0, 1));
    /// # job.complete().unwrap();
    /// ```
    pub fn context(&self) -> Context<'w> {
        Context {
            worker: self.index,
            attempt: self.attempt(),
            slot_state: &self.slot().state,
            heartbeat: &self.slot().heartbeat,
            clock: self.sup.clock(),
        }
    }

    /// Records that the task ran to a result, and hands the task back.
    ///
    /// `Err(Condemned)` if the host condemned this worker as hung meanwhile: the supervisor
    /// then owns the task and the outcome is not recorded.
    ///
    /// ```
    /// # use foreman_rt::{park::NoPark, policy::Policy, Next, Supervisor};
    /// # let sup: Supervisor<u8, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// # sup.try_submit(9).unwrap();
    /// # let mut worker = sup.attach(0).unwrap();
    /// # let Next::Run(job) = worker.try_next() else { unreachable!() };
    /// assert_eq!(job.complete(), Ok(9));
    /// assert_eq!(sup.snapshot().completed, 1);
    /// ```
    pub fn complete(self) -> Result<T, Condemned> {
        self.finish(false)
    }

    /// Records that the task ran to an error, and hands the task back. Errors are final: the
    /// task is not retried (the host may submit it again).
    ///
    /// `Err(Condemned)` as for [`complete`](Job::complete).
    ///
    /// ```
    /// # use foreman_rt::{park::NoPark, policy::Policy, Next, Supervisor};
    /// # let sup: Supervisor<u8, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// # sup.try_submit(9).unwrap();
    /// # let mut worker = sup.attach(0).unwrap();
    /// # let Next::Run(job) = worker.try_next() else { unreachable!() };
    /// assert_eq!(job.fail(), Ok(9));
    /// ```
    pub fn fail(self) -> Result<T, Condemned> {
        self.finish(true)
    }

    /// Records the outcome (`failed` or completed). Not generic over the outcome, so both
    /// share one copy.
    pub(crate) fn finish(self, failed: bool) -> Result<T, Condemned> {
        let mut this = ManuallyDrop::new(self);
        let slot = this.slot();
        // Relaxed: only a first guess for the CAS loop.
        let mut word = slot.state.load(Ordering::Relaxed);
        loop {
            match code(word) {
                BUSY | HUNG => {
                    // SeqCst: Acquire pairs with a condemner's CAS we may race; Release orders
                    // the task's reads of the cell before anyone who sees the slot Idle; and a
                    // draining peer's re-check must see it (see `Supervisor::task_returned`).
                    match slot.state.compare_exchange_weak(
                        word,
                        with_code(word & !HAS_TASK, IDLE),
                        Ordering::SeqCst,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => break,
                        Err(current) => word = current,
                    }
                }
                _ => {
                    // Terminating (or already Crashed): let go of the task for the recoverer.
                    this.let_go();
                    return Err(Condemned);
                }
            }
        }
        // SAFETY: the CAS moved our own Busy/Hung slot to Idle: the cell still holds the task
        // and, Idle being ours (invariant 1), nobody else can reach it.
        let envelope = unsafe { slot.take() };
        Slot::<T>::bump(if failed {
            &slot.failed
        } else {
            &slot.completed
        });
        this.sup.task_returned();
        Ok(envelope.task)
    }

    /// Records that the task crashed the worker (the host caught a panic, say), recovers the
    /// task per the [`Delivery`](crate::policy::Delivery) policy and decides per the
    /// [`Restart`](crate::policy::Restart) policy and [`Intensity`](crate::policy::Intensity)
    /// whether the host must start a replacement. `now` is the host's clock.
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Decision, Disposition, Next, Supervisor};
    ///
    /// let sup: Supervisor<u8, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// sup.try_submit(1).unwrap();
    /// let mut worker = sup.attach(0).unwrap();
    /// let Next::Run(job) = worker.try_next() else { unreachable!() };
    /// let report = job.crash(0);
    /// assert_eq!(report.decision, Decision::Replace);
    /// assert!(matches!(report.task, Some(Disposition::Retried { attempt: 2 })));
    /// drop(worker);
    ///
    /// // The replacement runs the task again first.
    /// let mut replacement = sup.attach(0).unwrap();
    /// let Next::Run(job) = replacement.try_next() else { unreachable!() };
    /// assert_eq!((*job.task(), job.attempt()), (1, 2));
    /// # job.complete().unwrap();
    /// ```
    pub fn crash(self, now: Tick) -> crate::CrashReport<T> {
        let mut this = ManuallyDrop::new(self);
        *this.dead = true;
        let slot = this.slot();
        // Relaxed: a first guess for the CAS loop.
        let mut word = slot.state.load(Ordering::Relaxed);
        loop {
            // AcqRel: Release hands our use of the cell to the recovery below (same thread,
            // but the state also tells others); Acquire pairs with a racing condemner.
            match slot.state.compare_exchange_weak(
                word,
                with_code(word, RECOVERING),
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(current) => word = current,
            }
        }
        this.sup.recover_claimed(this.index, word, now)
    }

    /// Busy/Hung/Terminating → Crashed, leaving the task in the cell for a recoverer; the
    /// worker handle is dead from now on.
    fn let_go(&mut self) {
        *self.dead = true;
        let slot = self.slot();
        // Relaxed: a first guess for the CAS loop.
        let mut word = slot.state.load(Ordering::Relaxed);
        while matches!(code(word), BUSY | HUNG | TERMINATING) {
            // Release: our last reads of the cell happen before the recoverer's Acquire.
            match slot.state.compare_exchange_weak(
                word,
                with_code(word, CRASHED),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(current) => word = current,
            }
        }
    }
}

impl<T, const N: usize, const W: usize, P: Park> Drop for Job<'_, T, N, W, P> {
    /// An unfinished job means the worker crashed: the task stays in the slot, marked
    /// `Crashed`, for [`Supervisor::recover`].
    fn drop(&mut self) {
        self.let_go();
    }
}

/// What task code may know and do about the worker running it.
///
/// ```
/// use foreman_rt::{park::NoPark, policy::Policy, Next, Supervisor};
///
/// let sup: Supervisor<u32, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
/// sup.try_submit(3).unwrap();
/// let mut worker = sup.attach(0).unwrap();
/// let Next::Run(job) = worker.try_next() else { unreachable!() };
/// let ctx = job.context();
/// for _step in 0..*job.task() {
///     ctx.heartbeat(); // long task: tell the watchdog we are alive
/// }
/// # job.complete().unwrap();
/// ```
#[derive(Clone, Copy)]
pub struct Context<'j> {
    worker: usize,
    attempt: u32,
    slot_state: &'j AtomicU32,
    heartbeat: &'j AtomicU32,
    clock: &'j AtomicU32,
}

impl Context<'_> {
    /// The index of the worker running the task.
    ///
    /// ```
    /// # use foreman_rt::{park::NoPark, policy::Policy, Next, Supervisor};
    /// # let sup: Supervisor<u8, 2, 2> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// # sup.try_submit(1).unwrap();
    /// # let mut worker = sup.attach(1).unwrap();
    /// # let Next::Run(job) = worker.try_next() else { unreachable!() };
    /// assert_eq!(job.context().worker(), 1);
    /// # job.complete().unwrap();
    /// ```
    pub fn worker(&self) -> usize {
        self.worker
    }

    /// Which run of the task this is (1 the first time).
    ///
    /// ```
    /// # use foreman_rt::{park::NoPark, policy::Policy, Next, Supervisor};
    /// # let sup: Supervisor<u8, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// # sup.try_submit(1).unwrap();
    /// # let mut worker = sup.attach(0).unwrap();
    /// # let Next::Run(job) = worker.try_next() else { unreachable!() };
    /// assert_eq!(job.context().attempt(), 1);
    /// # job.complete().unwrap();
    /// ```
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Tells the watchdog the task is making progress: its deadline starts again, and a hung
    /// flag is cleared.
    ///
    /// ```
    /// # use foreman_rt::{park::NoPark, policy::Policy, Next, Supervisor};
    /// # let sup: Supervisor<u8, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// # sup.try_submit(1).unwrap();
    /// # let mut worker = sup.attach(0).unwrap();
    /// # let Next::Run(job) = worker.try_next() else { unreachable!() };
    /// job.context().heartbeat();
    /// # job.complete().unwrap();
    /// ```
    pub fn heartbeat(&self) {
        // Relaxed: the clock is advisory; the heartbeat is a single-writer word.
        self.heartbeat
            .store(self.clock.load(Ordering::Relaxed), Ordering::Relaxed);
        // Relaxed: only to see whether the watchdog flagged us.
        let word = self.slot_state.load(Ordering::Relaxed);
        if code(word) == HUNG {
            // Release: publishes the fresh heartbeat with the state. Failure is fine: a
            // condemner got there first.
            let _ = self.slot_state.compare_exchange(
                word,
                with_code(word, BUSY),
                Ordering::Release,
                Ordering::Relaxed,
            );
        }
    }
}

impl fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("worker", &self.worker)
            .field("attempt", &self.attempt)
            .finish()
    }
}
