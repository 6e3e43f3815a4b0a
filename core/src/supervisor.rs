//! [`Supervisor`]: the task queue, the worker slots and the rules that tie them together.
//!
//! The supervisor composes: it submits tasks to the queue, attaches and retires workers,
//! shuts down, runs the watchdog and recovers crashed workers. The words it moves on are
//! owned elsewhere: each slot's state word by `slot` (its numbered transitions), the phase
//! word (lifecycle and active count) by `phase`, the counters and the snapshot's read by
//! `stats`, the restart window by `policy`.
//!
//! # Invariants
//!
//! 1. A task is in exactly one place: the queue, a worker slot's cell (running, or kept for
//!    its retry), or the caller's hands (refused, completed, failed, dead-lettered, lost,
//!    handed back). Every move between places is one transition of a slot or one claimed
//!    queue slot.
//! 2. No lock is held across task code; the only lock (the restart window) is taken on
//!    crashes and normal exits, never on the task path.
//! 3. The counters add up at every instant a [`Snapshot`] can observe (see `stats`).
//! 4. The phase word's active count is never below the number of active slots: a slot is
//!    counted before it leaves Vacant and counted out after it is Vacant, Exited or Retired
//!    (see `slot`), so the supervisor never stops while a worker is active.

use core::fmt;
use core::mem::MaybeUninit;

use crate::park::{NoPark, Park, Signal};
use crate::phase::{Leaving, Phase, Shutdown, SupervisorState};
use crate::policy::{Delivery, Policy, RestartWindow, Tick};
use crate::queue::{PopError, PushError, Queue};
use crate::slot::{Envelope, Run, Word, WorkerSlot, WorkerState};
use crate::stats::{self, Counters, Snapshot};
use crate::sync::{array_of, fence, loom_const_fn, AtomicU32, CachePadded, Mutex, Ordering};
use crate::worker::Worker;

/// Ticks are compared in wrapping order: `a` is after `b` if `a - b` (wrapping) is below this.
const HALF_RANGE: Tick = Tick::MAX / 2 + 1;

/// The error for a transition refused on slot `index`, which was in the `found` state.
#[cold]
fn wrong_state(index: usize, found: Word) -> WorkerError {
    WorkerError::WrongState {
        index,
        state: found.state(),
    }
}

/// Why a submission was refused. The task comes back inside: nothing is dropped.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SubmitError<T> {
    /// The queue is full: back-pressure. Retry later, or use [`Supervisor::submit`].
    Full(T),
    /// The supervisor is shutting down or stopped.
    Closed(T),
}

impl<T> SubmitError<T> {
    /// The task that was not accepted.
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, SubmitError, Supervisor};
    /// let sup: Supervisor<&str, 1, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// sup.try_submit("a").unwrap();
    /// assert_eq!(sup.try_submit("b").unwrap_err().into_inner(), "b");
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            SubmitError::Full(task) | SubmitError::Closed(task) => task,
        }
    }
}

impl<T> fmt::Debug for SubmitError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SubmitError::Full(_) => "Full(..)",
            SubmitError::Closed(_) => "Closed(..)",
        })
    }
}

impl<T> fmt::Display for SubmitError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SubmitError::Full(_) => "the task queue is full; the task was handed back",
            SubmitError::Closed(_) => "the supervisor is shutting down; the task was handed back",
        })
    }
}

impl<T> core::error::Error for SubmitError<T> {}

/// Why an operation on a worker slot was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum WorkerError {
    /// The index is not below the number of worker slots.
    NoSuchWorker {
        /// The index asked for.
        index: usize,
        /// The number of slots, `W`.
        workers: usize,
    },
    /// The slot is not in a state the operation applies to.
    WrongState {
        /// The slot.
        index: usize,
        /// Its state when the operation looked.
        state: WorkerState,
    },
    /// The supervisor is aborting, escalated or stopped: it takes no new workers.
    ShuttingDown,
    /// The run named has ended: its task finished, crashed or was killed (the worker may be
    /// running another task since).
    RunEnded {
        /// The worker the run was on.
        index: usize,
    },
    /// The slot awaits a replacement after a crash, but its restart backoff has not passed
    /// yet (see [`Backoff`](crate::policy::Backoff)): attach at `ready_at` or later, by the
    /// supervisor's clock ([`Supervisor::tick`]).
    BackingOff {
        /// The slot.
        index: usize,
        /// The first tick at which a replacement may attach.
        ready_at: Tick,
    },
}

impl fmt::Display for WorkerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkerError::NoSuchWorker { index, workers } => {
                write!(
                    f,
                    "there is no worker {index}: this supervisor has {workers} worker slots"
                )
            }
            WorkerError::WrongState { index, state } => {
                write!(
                    f,
                    "worker {index} is {state}, which this operation does not apply to"
                )
            }
            WorkerError::ShuttingDown => {
                f.write_str("the supervisor is shutting down and takes no new workers")
            }
            WorkerError::RunEnded { index } => write!(
                f,
                "the run named on worker {index} has ended: its task finished, crashed or was killed"
            ),
            WorkerError::BackingOff { index, ready_at } => write!(
                f,
                "worker {index} crashed recently: its replacement may attach at tick {ready_at} \
                 (restart backoff)"
            ),
        }
    }
}

impl core::error::Error for WorkerError {}

/// Why [`Supervisor::reopen`] was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ReopenError {
    /// Only a stopped supervisor can be reopened.
    NotStopped(SupervisorState),
    /// Tasks the shutdown left behind are still queued or held by worker slots: take them
    /// with [`Supervisor::hand_back`] first.
    TasksHeld,
}

impl fmt::Display for ReopenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReopenError::NotStopped(state) => write!(f, "the supervisor is {state}, not stopped"),
            ReopenError::TasksHeld => f.write_str(
                "the supervisor still holds tasks a shutdown left; call hand_back first",
            ),
        }
    }
}

impl core::error::Error for ReopenError {}

/// What the supervisor decided about a worker that ended.
///
/// ```
/// use foreman_rt::{park::NoPark, policy::{Policy, Restart}, Decision, Supervisor};
/// let policy = Policy::DEFAULT.with_restart(Restart::Temporary);
/// let sup: Supervisor<u8, 2, 2> = Supervisor::new(policy, NoPark);
/// let (first, second) = (sup.attach(0).unwrap(), sup.attach(1).unwrap());
/// assert_eq!(first.exit(), Decision::Retire); // temporary workers are never replaced
/// # drop(second);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Decision {
    /// Start a replacement: attach a new worker to the same slot.
    Replace,
    /// No replacement: the slot is retired (or exited).
    Retire,
    /// The restart intensity was exceeded: no replacement, and the supervisor escalated.
    Escalate,
    /// The worker was recycled after its quota of tasks
    /// ([`Policy::with_recycling`](crate::policy::Policy::with_recycling)) or at its host's
    /// request ([`Worker::recycle`](crate::Worker::recycle)): attach a fresh
    /// worker to the same slot, as for [`Replace`](Self::Replace). Not a crash: it is not
    /// counted against the restart intensity. Only [`Worker::exit`] returns it.
    Recycle,
}

/// Why [`Worker::recycle`] refused: the worker stays as it was (or leaves, as it must).
#[cfg(feature = "recycling")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum RecycleError {
    /// The worker must leave anyway, and no fresh worker would follow it: the supervisor is
    /// aborting, escalated or stopped, or draining with nothing left in its queue. Its next
    /// step says [`Next::Exit`](crate::Next::Exit).
    Leaving,
    /// This handle no longer holds its slot: its worker crashed, was condemned or declared
    /// dead, or was recycled already.
    Ended,
    /// The retry a crashed predecessor left for this worker waits in its slot: run it first
    /// (a worker recycles only between tasks, holding none).
    RetryWaiting,
}

#[cfg(feature = "recycling")]
impl fmt::Display for RecycleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecycleError::Leaving => {
                "the worker must leave: the supervisor is shutting down (or draining an empty queue)"
            }
            RecycleError::Ended => "the worker no longer holds its slot (crashed, condemned or recycled)",
            RecycleError::RetryWaiting => "a retry waits in the worker's slot: run it first",
        })
    }
}

#[cfg(feature = "recycling")]
impl core::error::Error for RecycleError {}

/// What became of the task a crashed worker was running.
///
/// An *attempt* is one run of a task; attempt `n` is its `n`-th run (1 the first time).
///
/// ```
/// use foreman_rt::{park::NoPark, policy::Policy, Disposition, Next, Supervisor};
/// let sup: Supervisor<u8, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
/// sup.try_submit(5).unwrap();
/// let mut worker = sup.attach(0).unwrap();
/// let Next::Run(job) = worker.try_next() else { unreachable!() };
/// assert_eq!(job.crash().task, Some(Disposition::Retried { attempt: 2 }));
/// # drop(worker);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Disposition<T> {
    /// Kept in the slot: the worker's replacement runs it first, as attempt `attempt`.
    Retried {
        /// The number of the attempt the retry will be (2 for the first retry).
        attempt: u32,
    },
    /// Put back into the queue (the worker is not replaced), to run as attempt `attempt`.
    Requeued {
        /// The number of the attempt the retry will be.
        attempt: u32,
    },
    /// Every allowed attempt crashed: the task is handed to the host, not run again.
    DeadLettered {
        /// The task.
        task: T,
        /// How many attempts of it started (each of them crashed).
        attempts: u32,
    },
    /// At-most-once: the task may have had effects; it is not run again.
    Lost(T),
    /// A retry was due but cannot happen (shutting down, or no room in the queue).
    HandedBack(T),
    /// The run was cancelled ([`Supervisor::cancel`]) before its worker died: the task is not
    /// run again, and the death is not charged to the restart intensity (feature
    /// `cancellation`).
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Disposition, Next, Supervisor};
    /// let sup: Supervisor<u8, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// sup.try_submit(5).unwrap();
    /// let mut worker = sup.attach(0).unwrap();
    /// let Next::Run(job) = worker.try_next() else { unreachable!() };
    /// sup.cancel(job.context().run()).unwrap();
    /// assert_eq!(job.crash().task, Some(Disposition::Cancelled(5)));
    /// assert_eq!(sup.snapshot().cancelled, 1);
    /// # drop(worker);
    /// ```
    Cancelled(T),
}

impl<T> Disposition<T> {
    /// The task, if this disposition gives it to the host (dead-lettered, lost, handed back,
    /// cancelled);
    /// `None` while a retry keeps it (retried, requeued).
    ///
    /// ```
    /// use foreman_rt::Disposition;
    /// assert_eq!(Disposition::Lost(7).task(), Some(&7));
    /// assert_eq!(Disposition::<u8>::Retried { attempt: 2 }.task(), None);
    /// ```
    pub fn task(&self) -> Option<&T> {
        match self {
            Disposition::DeadLettered { task, .. }
            | Disposition::Lost(task)
            | Disposition::HandedBack(task)
            | Disposition::Cancelled(task) => Some(task),
            Disposition::Retried { .. } | Disposition::Requeued { .. } => None,
        }
    }

    /// The same disposition of the task changed by `f`: for a host that wraps its users'
    /// tasks (with a ticket, say) and reports them unwrapped.
    ///
    /// ```
    /// use foreman_rt::Disposition;
    /// let wrapped = Disposition::DeadLettered { task: ("ticket 9", 'x'), attempts: 3 };
    /// assert_eq!(
    ///     wrapped.map(|(_ticket, task)| task),
    ///     Disposition::DeadLettered { task: 'x', attempts: 3 }
    /// );
    /// ```
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Disposition<U> {
        match self {
            Disposition::Retried { attempt } => Disposition::Retried { attempt },
            Disposition::Requeued { attempt } => Disposition::Requeued { attempt },
            Disposition::DeadLettered { task, attempts } => Disposition::DeadLettered {
                task: f(task),
                attempts,
            },
            Disposition::Lost(task) => Disposition::Lost(f(task)),
            Disposition::HandedBack(task) => Disposition::HandedBack(f(task)),
            Disposition::Cancelled(task) => Disposition::Cancelled(f(task)),
        }
    }
}

/// The outcome of recovering a crashed worker: what happened to its task, and whether the
/// host must start a replacement.
///
/// ```
/// use foreman_rt::{park::NoPark, policy::Policy, Decision, Next, Supervisor};
/// let sup: Supervisor<u8, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
/// sup.try_submit(5).unwrap();
/// let mut worker = sup.attach(0).unwrap();
/// let Next::Run(job) = worker.try_next() else { unreachable!() };
/// let report = job.crash();
/// assert_eq!((report.worker, report.decision), (0, Decision::Replace));
/// # drop(worker);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
#[must_use = "the report may hold a task (dead-lettered, lost or handed back) and may ask for a replacement worker"]
pub struct CrashReport<T> {
    /// The crashed worker's index.
    pub worker: usize,
    /// Its task, if it was running one.
    pub task: Option<Disposition<T>>,
    /// Whether to replace it.
    pub decision: Decision,
    /// With [`Decision::Replace`] and a restart [`Backoff`](crate::policy::Backoff): how many
    /// ticks (of the supervisor's clock, from the crash) the host waits before it attaches the
    /// replacement; [`Supervisor::attach`] refuses it earlier. 0 otherwise.
    pub delay: Tick,
}

/// The runs one [`Supervisor::tick`] flagged hung: an iterator of them, in increasing order of
/// their workers.
///
/// ```
/// use foreman_rt::{park::NoPark, policy::Policy, Next, Supervisor};
/// let sup: Supervisor<u8, 2, 2> = Supervisor::new(Policy::DEFAULT.with_watchdog(10).unwrap(), NoPark);
/// sup.try_submit(1).unwrap();
/// let mut worker = sup.attach(1).unwrap();
/// let Next::Run(job) = worker.try_next() else { unreachable!() };
/// let hung = sup.tick(11);
/// assert_eq!(hung.as_slice(), [job.context().run()]);
/// for run in hung {
///     assert_eq!(run.worker(), 1); // a host would condemn the run, or report it
/// }
/// # job.complete().unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct NewlyHung<const W: usize> {
    runs: [Run; W],
    /// The next one to yield.
    next: usize,
    len: usize,
}

impl<const W: usize> NewlyHung<W> {
    const fn new() -> Self {
        NewlyHung {
            runs: [Run::NONE; W],
            next: 0,
            len: 0,
        }
    }

    fn push(&mut self, run: Run) {
        // At most one entry per slot, so there is always room.
        if let Some(entry) = self.runs.get_mut(self.len) {
            *entry = run;
            self.len += 1;
        }
    }

    /// The runs not yet yielded.
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Supervisor};
    /// let sup: Supervisor<u8, 2, 2> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// assert_eq!(sup.tick(5).as_slice(), []);
    /// ```
    pub fn as_slice(&self) -> &[Run] {
        self.runs.get(self.next..self.len).unwrap_or_default()
    }

    /// Whether no run is left to yield (none was flagged, or all were yielded).
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Supervisor};
    /// let sup: Supervisor<u8, 2, 2> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// assert!(sup.tick(5).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.next == self.len
    }
}

impl<const W: usize> Iterator for NewlyHung<W> {
    type Item = Run;

    fn next(&mut self) -> Option<Run> {
        if self.next == self.len {
            return None;
        }
        let run = self.runs.get(self.next).copied();
        self.next += 1;
        run
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.len - self.next;
        (left, Some(left))
    }
}

impl<const W: usize> ExactSizeIterator for NewlyHung<W> {}

/// A supervisor: a bounded task queue of capacity `N`, `W` worker slots, and the rules for
/// crashes, restarts and shutdown. `P` is the host's [`Park`].
///
/// Allocation-free and `const`-constructible, so it can be a `static`. `N` must be a power of
/// two and `W` greater than zero, both checked at compile time. The supervisor never spawns,
/// sleeps or reads a clock: a host attaches workers ([`attach`](Self::attach)), drives them
/// ([`Worker::next_blocking`], [`Worker::try_next`]), reports crashes ([`Job::crash`](crate::Job::crash),
/// [`recover`](Self::recover)) and feeds the clock ([`tick`](Self::tick)).
///
/// ```
/// use foreman_rt::{park::NoPark, policy::Policy, Next, Supervisor, SupervisorState, Shutdown};
///
/// static SUPERVISOR: Supervisor<u32, 16, 2> = Supervisor::new(Policy::DEFAULT, NoPark);
///
/// // A polling host: one thread drives both workers in turn.
/// let mut workers = [SUPERVISOR.attach(0).unwrap(), SUPERVISOR.attach(1).unwrap()];
/// for n in 1..=10 {
///     SUPERVISOR.try_submit(n).unwrap();
/// }
/// SUPERVISOR.drain(); // no more submissions; workers finish the queue, then leave
///
/// let mut total = 0;
/// let mut running = [true, true];
/// while running.contains(&true) {
///     for (i, worker) in workers.iter_mut().enumerate() {
///         match worker.try_next() {
///             Next::Run(job) => total += job.complete().unwrap(),
///             Next::Idle => {}
///             Next::Exit => running[i] = false,
///         }
///     }
/// }
/// drop(workers);
/// assert_eq!(total, 55);
/// assert_eq!(SUPERVISOR.state(), SupervisorState::Stopped(Shutdown::Drain));
/// ```
///
/// A capacity that is not a power of two, or zero workers, do not compile:
///
/// ```compile_fail
/// use foreman_rt::{park::NoPark, policy::Policy, Supervisor};
/// static NONE: Supervisor<u32, 16, 0> = Supervisor::new(Policy::DEFAULT, NoPark);
/// ```
pub struct Supervisor<T, const N: usize, const W: usize, P: Park = NoPark> {
    queue: Queue<Envelope<T>, N>,
    /// The lifecycle phase and the active count (see `phase`). Read by every step.
    phase: CachePadded<Phase>,
    /// The host's clock as of the last `tick`: the one clock of the supervisor. Stamps task
    /// starts and heartbeats for the watchdog, and restarts for the intensity limit.
    clock: CachePadded<AtomicU32>,
    /// Idle workers sleep here; submissions wake them.
    work: CachePadded<Signal>,
    /// Submitters facing a full queue sleep here; pops wake them.
    space: CachePadded<Signal>,
    /// Idle workers of a drain sleep here while peers still hold tasks; finishes wake them.
    drained: CachePadded<Signal>,
    counters: CachePadded<Counters>,
    slots: [CachePadded<WorkerSlot<T>>; W],
    /// When the last restarts happened, for the intensity limit. Crash path only.
    restarts: Mutex<RestartWindow>,
    policy: Policy,
    park: P,
}

// SAFETY: tasks move between threads through the queue and the slots' cells, and each task
// is only ever reached by one thread at a time (invariant 1 and the cell's ownership rules in
// `slot`), so `T: Send` suffices; the host's `Park` is shared by all threads.
unsafe impl<T: Send, const N: usize, const W: usize, P: Park + Sync> Sync
    for Supervisor<T, N, W, P>
{
}
// SAFETY: as above.
unsafe impl<T: Send, const N: usize, const W: usize, P: Park + Send> Send
    for Supervisor<T, N, W, P>
{
}

impl<T, const N: usize, const W: usize, P: Park> Supervisor<T, N, W, P> {
    const CHECKED: () = {
        assert!(W > 0, "a Supervisor needs at least one worker slot");
        assert!(
            W < (1 << 24),
            "a Supervisor has fewer than 2^24 worker slots"
        );
    };

    loom_const_fn! {
        /// A running supervisor with an empty queue and every worker slot vacant.
        ///
        /// ```
        /// use foreman_rt::{park::NoPark, policy::Policy, Supervisor, SupervisorState};
        /// let sup: Supervisor<String, 64, 4> = Supervisor::new(Policy::DEFAULT, NoPark);
        /// assert_eq!(sup.state(), SupervisorState::Running);
        /// ```
        pub fn new(policy: Policy, park: P) -> Self {
            let () = Self::CHECKED;
            Supervisor {
                queue: Queue::new(),
                phase: CachePadded::new(Phase::new()),
                clock: CachePadded::new(AtomicU32::new(0)),
                work: CachePadded::new(Signal::new()),
                space: CachePadded::new(Signal::new()),
                drained: CachePadded::new(Signal::new()),
                counters: CachePadded::new(Counters::new()),
                slots: array_of![CachePadded::new(WorkerSlot::new()); W],
                restarts: Mutex::new(RestartWindow::new()),
                policy,
                park,
            }
        }
    }

    /// Builds a running supervisor, as [`new`](Self::new) returns it, directly in `place`:
    /// field by field and slot by slot, so that no supervisor-sized value (nor any task-sized
    /// one) is ever built on the stack. For supervisors too large for the stack (a big queue of
    /// big tasks), and for places that are not the heap: a shared memory mapping, a linker
    /// section.
    ///
    /// Whatever `place` held is overwritten without being dropped. The supervisor lives there
    /// until its owner drops it (`MaybeUninit::assume_init_drop`, or `assume_init` on a box),
    /// which drops the tasks still queued or held.
    ///
    /// ```
    /// use core::mem::MaybeUninit;
    /// use foreman_rt::{park::NoPark, policy::Policy, Supervisor};
    ///
    /// // 4 096 tasks of 1 KiB: a supervisor of over 4 MiB, built on the heap and nowhere else.
    /// type Big = Supervisor<[u8; 1024], 4096, 2>;
    /// let mut place: Box<MaybeUninit<Big>> = Box::new_uninit();
    /// let sup: &mut Big = Supervisor::init(&mut place, Policy::DEFAULT, NoPark);
    /// sup.try_submit([7; 1024]).unwrap();
    /// assert_eq!(sup.queued(), 1);
    /// // SAFETY: `init` initialized it.
    /// let sup: Box<Big> = unsafe { place.assume_init() };
    /// assert_eq!(sup.snapshot().submitted, 1);
    /// ```
    pub fn init(place: &mut MaybeUninit<Self>, policy: Policy, park: P) -> &mut Self {
        let () = Self::CHECKED;
        let this = place.as_mut_ptr();
        // SAFETY: `this` comes from a `&mut MaybeUninit<Self>`: valid for writes and aligned.
        // Every field is written exactly once through a raw pointer, and no reference to the
        // uninitialized memory is made. A `CachePadded<X>` starts with its `X` (crossbeam
        // guarantees it since 0.8.22; ours is `repr(transparent)`), and its padding may stay
        // uninitialized.
        unsafe {
            Queue::init(&raw mut (*this).queue);
            (&raw mut (*this).phase).write(CachePadded::new(Phase::new()));
            (&raw mut (*this).clock).write(CachePadded::new(AtomicU32::new(0)));
            (&raw mut (*this).work).write(CachePadded::new(Signal::new()));
            (&raw mut (*this).space).write(CachePadded::new(Signal::new()));
            (&raw mut (*this).drained).write(CachePadded::new(Signal::new()));
            (&raw mut (*this).counters).write(CachePadded::new(Counters::new()));
            let slots = (&raw mut (*this).slots).cast::<CachePadded<WorkerSlot<T>>>();
            for index in 0..W {
                WorkerSlot::init(slots.add(index).cast::<WorkerSlot<T>>());
            }
            (&raw mut (*this).restarts).write(Mutex::new(RestartWindow::new()));
            (&raw mut (*this).policy).write(policy);
            (&raw mut (*this).park).write(park);
            // SAFETY: every field is initialized now.
            place.assume_init_mut()
        }
    }

    /// The policy this supervisor follows.
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Supervisor};
    /// let sup: Supervisor<u8, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// assert_eq!(*sup.policy(), Policy::DEFAULT);
    /// ```
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The host's parking primitive.
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Supervisor};
    /// let sup: Supervisor<u8, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// let _park: &NoPark = sup.park();
    /// ```
    pub fn park(&self) -> &P {
        &self.park
    }

    fn slot_checked(&self, index: usize) -> Result<&WorkerSlot<T>, WorkerError> {
        self.slots
            .get(index)
            .map(|slot| &**slot)
            .ok_or(WorkerError::NoSuchWorker { index, workers: W })
    }

    // ----- submitting ---------------------------------------------------------------------

    /// Submits a task without blocking. A refused task comes back in the error:
    /// [`SubmitError::Full`] (back-pressure) or [`SubmitError::Closed`] (shutting down).
    ///
    /// Wakes one parked idle worker, if any. Safe to call from an interrupt handler on a
    /// single-core target (see the crate docs for the rule on the main loop's side).
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, SubmitError, Supervisor};
    /// let sup: Supervisor<u32, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// sup.try_submit(1).unwrap();
    /// sup.try_submit(2).unwrap();
    /// assert_eq!(sup.try_submit(3), Err(SubmitError::Full(3)));
    /// sup.abort();
    /// assert_eq!(sup.try_submit(4), Err(SubmitError::Closed(4)));
    /// ```
    pub fn try_submit(&self, task: T) -> Result<(), SubmitError<T>> {
        match self.push(Envelope::new(task)) {
            Ok(()) => {
                // The push's SeqCst tail CAS is the condition change `notify_one` needs.
                self.work.notify_one(&self.park);
                Ok(())
            }
            Err(err) => Err(self.refused(err)),
        }
    }

    /// Pushes a new task. Not inlined: the push is large, and an interrupt handler that
    /// submits should not carry a copy of it.
    #[inline(never)]
    fn push(&self, envelope: Envelope<T>) -> Result<(), PushError<Envelope<T>>> {
        self.queue.try_push(envelope)
    }

    /// Counts a refused submission and hands its task back.
    #[cold]
    fn refused(&self, err: PushError<Envelope<T>>) -> SubmitError<T> {
        Counters::bump(&self.counters.rejected);
        match err {
            PushError::Full(envelope) => SubmitError::Full(envelope.task),
            PushError::Closed(envelope) => SubmitError::Closed(envelope.task),
        }
    }

    /// Submits a task, parking the caller while the queue is full. The only error is
    /// [`SubmitError::Closed`], with the task inside.
    ///
    /// A caller that finds the queue full sleeps until the workers have taken half of it, then
    /// refills it in one go: one wake-up per `N / 2` tasks, not one per task.
    ///
    /// For hosts whose threads may block: never on a browser's main thread, and with
    /// [`NoPark`] it spins while the queue is full.
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Supervisor};
    /// let sup: Supervisor<u32, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// sup.submit(1).unwrap(); // room: returns at once
    /// sup.drain();
    /// assert_eq!(sup.submit(2).unwrap_err().into_inner(), 2);
    /// ```
    pub fn submit(&self, task: T) -> Result<(), SubmitError<T>> {
        let mut envelope = Envelope::new(task);
        loop {
            match self.queue.push_unless_nearly_full(envelope) {
                Ok(()) => {
                    self.work.notify_one(&self.park);
                    return Ok(());
                }
                Err(closed @ PushError::Closed(_)) => return Err(self.refused(closed)),
                Err(PushError::Full(back)) => {
                    envelope = back;
                    if !P::BLOCKS {
                        // Nobody would wake us: try again after a pause.
                        crate::sync::spin_loop();
                        continue;
                    }
                    let key = self.space.prepare();
                    // Sleep until the workers have taken half the queue (`take_queued` wakes
                    // us then), to refill half the queue in one go rather than one task per
                    // wake-up, in lockstep with the pops.
                    // SeqCst loads inside: the re-check half of the event-count protocol.
                    if self.queue.len() > N / 2 && !self.queue.is_closed() {
                        self.space.wait(&self.park, key);
                    } else {
                        self.space.cancel();
                        // Room is there or about to be (a pop under way): retry after a pause.
                        crate::sync::spin_loop();
                    }
                }
            }
        }
    }

    /// Pops a task for a worker, and wakes a submitter waiting for room once the queue is
    /// down to half.
    #[inline]
    pub(crate) fn take_queued(&self) -> Result<Envelope<T>, PopError> {
        let envelope = self.queue.try_pop()?;
        // The pop's SeqCst head CAS is the condition change `notify_one` needs. Only once the
        // queue is down to half: a submitter sleeps until then (see `submit`), and one that
        // went to sleep with the queue fuller is woken by a later pop, since workers keep
        // popping until the queue is empty (or a shutdown wakes everyone).
        if P::BLOCKS && self.space.has_sleepers() && self.queue.len() <= N / 2 {
            self.space.notify_one(&self.park);
        }
        Ok(envelope)
    }

    /// A worker that slept took a task: if more are queued, wake another sleeping worker
    /// (submitters wake only one while a wake-up is on its way, see `Signal::notify_one`).
    pub(crate) fn pass_on_work(&self) {
        // SeqCst loads in `is_empty`: the submitters' SeqCst tail CAS is the condition change
        // `notify_one` needs.
        if !self.queue.is_empty() {
            self.work.notify_one(&self.park);
        }
    }

    /// Parks an idle worker until there may be work or a shutdown. While draining, an idle
    /// worker waits instead for its busy peers' tasks to come back (see `drain_waits`).
    pub(crate) fn wait_for_work(&self) {
        if !P::BLOCKS {
            // Nobody would wake us: the caller looks again after a pause.
            crate::sync::spin_loop();
            return;
        }
        // SeqCst loads here, in `is_empty` and in `tasks_out`: the re-check half of the
        // event-count protocol, against the submitters' tail CAS, the shutdowns' phase CAS and
        // the finishing workers' transitions.
        let draining = self.phase.load_for_recheck().is_draining();
        let signal = if draining { &self.drained } else { &self.work };
        let key = signal.prepare();
        let nothing_to_do = match self.phase.load_for_recheck().shutdown() {
            None => !draining && self.queue.is_empty(),
            // Draining: sleep while the queue is empty and either not closed yet (the drain
            // closes it next, then wakes us) or a peer's task may still crash back into it.
            Some(Shutdown::Drain) => {
                draining && self.queue.is_empty() && (!self.queue.is_closed() || self.tasks_out())
            }
            Some(Shutdown::Abort | Shutdown::Escalation) => false,
        };
        if nothing_to_do {
            signal.wait(&self.park, key);
        } else {
            signal.cancel();
        }
    }

    // ----- workers ------------------------------------------------------------------------

    /// Reserves a vacant slot for a worker the host is about to start (a thread being
    /// spawned, a Web Worker loading). The slot counts as active, so a shutdown waits for
    /// the worker; it then [`attach`](Self::attach)es, or the host [`release`](Self::release)s
    /// the slot if the start failed.
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Supervisor, WorkerState};
    /// let sup: Supervisor<u8, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// sup.reserve(0).unwrap();
    /// assert_eq!(sup.worker_state(0), Some(WorkerState::Starting));
    /// let worker = sup.attach(0).unwrap();
    /// assert_eq!(sup.worker_state(0), Some(WorkerState::Idle));
    /// # drop(worker);
    /// ```
    pub fn reserve(&self, index: usize) -> Result<(), WorkerError> {
        let slot = self.slot_checked(index)?;
        self.claim(index, slot, false)?;
        // An abort or escalation that swept the slots meanwhile sweeps this one too.
        self.settle_start();
        Ok(())
    }

    /// Counts a vacant slot as active, then claims it: Vacant → Starting (transition 1) for a
    /// reservation, or → Idle (23) to attach.
    fn claim(&self, index: usize, slot: &WorkerSlot<T>, attach: bool) -> Result<(), WorkerError> {
        let word = slot.state.load();
        if !word.is_vacant() {
            return Err(wrong_state(index, word));
        }
        // Counted before it leaves Vacant (invariant 4).
        self.phase
            .activate()
            .map_err(|_| WorkerError::ShuttingDown)?;
        let claimed = if attach {
            slot.state.claim()
        } else {
            slot.state.reserve()
        };
        if let Err(found) = claimed {
            // Another claim took the slot since we looked.
            self.deactivate(Leaving::Undone);
            return Err(wrong_state(index, found));
        }
        Ok(())
    }

    /// Gives a reserved slot up (the worker could not be started): Starting → Vacant.
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Supervisor, WorkerState};
    /// let sup: Supervisor<u8, 2, 2> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// # let _keep = sup.attach(1).unwrap();
    /// sup.reserve(0).unwrap();
    /// sup.release(0).unwrap();
    /// assert_eq!(sup.worker_state(0), Some(WorkerState::Vacant));
    /// ```
    pub fn release(&self, index: usize) -> Result<(), WorkerError> {
        let slot = self.slot_checked(index)?;
        slot.state
            .release()
            .map_err(|found| wrong_state(index, found))?;
        self.deactivate(Leaving::Left);
        Ok(())
    }

    /// Attaches a worker to slot `index` and returns its handle. The slot must be Vacant,
    /// Starting (reserved) or Restarting (a replacement the supervisor asked for).
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Supervisor, WorkerError, WorkerState};
    /// let sup: Supervisor<u8, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// let worker = sup.attach(0).unwrap();
    /// assert_eq!(
    ///     sup.attach(0).unwrap_err(),
    ///     WorkerError::WrongState { index: 0, state: WorkerState::Idle }
    /// );
    /// assert_eq!(sup.attach(5).unwrap_err(), WorkerError::NoSuchWorker { index: 5, workers: 1 });
    /// # drop(worker);
    /// ```
    pub fn attach(&self, index: usize) -> Result<Worker<'_, T, N, W, P>, WorkerError> {
        let slot = self.slot_checked(index)?;
        let word = slot.state.load();
        if word.is_vacant() {
            self.claim(index, slot, true)?;
        } else if word.is_restarting() && self.policy.backoff().is_some() && !self.ready(slot) {
            return Err(WorkerError::BackingOff {
                index,
                ready_at: self.ready_at(slot),
            });
        } else if let Err(found) = slot.state.attach() {
            return Err(self.attach_refused(index, found));
        }
        Ok(Worker::new(self, slot, index))
    }

    /// Whether the backoff of Restarting `slot` has passed by the supervisor's clock: its
    /// "ready at" tick is not still to come within the backoff's cap. (A tick further ahead
    /// than any delay can reach is one long past, read in wrapping order.)
    fn ready(&self, slot: &WorkerSlot<T>) -> bool {
        let cap = self.policy.backoff().map_or(0, |backoff| backoff.cap());
        let wait = self.ready_at(slot).wrapping_sub(self.now());
        wait == 0 || wait > cap
    }

    /// Why `attach` was refused on slot `index`, which was in the `found` state.
    #[cold]
    fn attach_refused(&self, index: usize, found: Word) -> WorkerError {
        if self.stops_workers() {
            // An abort or escalation swept a reservation or restart away under us.
            WorkerError::ShuttingDown
        } else {
            wrong_state(index, found)
        }
    }

    /// Retires a slot whose replacement the host cannot start (Restarting → Retired) and
    /// hands back the retry it held, if any.
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Next, Supervisor, WorkerState};
    /// let sup: Supervisor<u8, 2, 2> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// # let _other = sup.attach(1).unwrap();
    /// sup.try_submit(7).unwrap();
    /// let mut worker = sup.attach(0).unwrap();
    /// let Next::Run(job) = worker.try_next() else { unreachable!() };
    /// let _report = job.crash(); // asks for a replacement, keeps the task for it
    /// drop(worker);
    /// assert_eq!(sup.retire(0), Ok(Some(7)));
    /// assert_eq!(sup.worker_state(0), Some(WorkerState::Retired));
    /// assert_eq!(sup.snapshot().handed_back, 1);
    /// ```
    pub fn retire(&self, index: usize) -> Result<Option<T>, WorkerError> {
        let slot = self.slot_checked(index)?;
        let claimed = slot
            .state
            .cancel_restart()
            .map_err(|found| wrong_state(index, found))?;
        let task = claimed.has_task().then(|| {
            // SAFETY: transition 18 made the cell ours, and the flag says it holds the retry.
            let envelope = unsafe { slot.take() };
            Counters::bump(&self.counters.handed_back);
            envelope.task
        });
        // Cannot be refused: Recovering is ours.
        let _ = slot.state.retire();
        self.deactivate(Leaving::Left);
        Ok(task)
    }

    /// A slot's state, or `None` if `index` is out of range.
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Supervisor, WorkerState};
    /// let sup: Supervisor<u8, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// assert_eq!(sup.worker_state(0), Some(WorkerState::Vacant));
    /// assert_eq!(sup.worker_state(1), None);
    /// ```
    pub fn worker_state(&self, index: usize) -> Option<WorkerState> {
        self.slots.get(index).map(|slot| slot.state.load().state())
    }

    // ----- lifecycle ----------------------------------------------------------------------

    /// The current lifecycle state.
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Supervisor, SupervisorState};
    /// let sup: Supervisor<u8, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// assert_eq!(sup.state(), SupervisorState::Running);
    /// ```
    pub fn state(&self) -> SupervisorState {
        self.phase.load().state()
    }

    /// Whether every worker has left after a shutdown.
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Supervisor};
    /// let sup: Supervisor<u8, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// assert!(!sup.is_stopped());
    /// sup.drain(); // no worker attached: stops at once
    /// assert!(sup.is_stopped());
    /// ```
    pub fn is_stopped(&self) -> bool {
        self.phase.load().is_stopped()
    }

    /// Whether a drain must keep an idle worker: the queue is closed and empty, but a peer
    /// still holds a task that a crash could put back into it.
    pub(crate) fn drain_waits(&self) -> bool {
        self.phase.load_for_recheck().is_draining() && self.tasks_out()
    }

    /// Whether any slot holds a task that may still come back to the queue.
    fn tasks_out(&self) -> bool {
        // The re-check of a drain waiter, against the transitions of finishing and recovering
        // workers (Dekker through the `drained` signal).
        self.slots
            .iter()
            .any(|slot| slot.state.load_for_recheck().task_may_return())
    }

    /// A task left a worker (finished, or its crash was recovered): wake the workers a drain
    /// keeps waiting for exactly that. Nobody waits there outside a drain, and then this
    /// costs one load.
    #[inline]
    pub(crate) fn task_returned(&self) {
        // The caller's transition (SeqCst) is the condition change `notify_all` needs.
        self.drained.notify_all(&self.park);
    }

    /// Whether workers must leave now (abort or escalation).
    #[inline]
    pub(crate) fn stops_workers(&self) -> bool {
        // A worker that reads a stale phase runs one more task, which it took from the queue
        // before the shutdown's hand-back could.
        self.phase.load().stops_workers()
    }

    /// Graceful shutdown: refuse new tasks; workers run everything queued, then leave.
    /// Returns at once (see [`wait_stopped`](Self::wait_stopped)); idempotent. A no-op after an
    /// abort or escalation, which are stronger.
    ///
    /// If no worker is left to run them (all retired), queued tasks stay for
    /// [`hand_back`](Self::hand_back) once stopped.
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Supervisor, SupervisorState};
    /// let sup: Supervisor<u8, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// let worker = sup.attach(0).unwrap();
    /// assert_eq!(sup.drain(), SupervisorState::Draining);
    /// assert_eq!(sup.drain(), SupervisorState::Draining);
    /// # drop(worker);
    /// ```
    pub fn drain(&self) -> SupervisorState {
        self.shut_down(Shutdown::Drain)
    }

    /// Immediate shutdown: refuse new tasks; workers leave after their current task; queued
    /// tasks wait for [`hand_back`](Self::hand_back). Returns at once; idempotent. Overrides a
    /// drain in progress.
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Supervisor, SupervisorState, Shutdown};
    /// let sup: Supervisor<u8, 4, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// sup.try_submit(1).unwrap();
    /// sup.try_submit(2).unwrap();
    /// assert_eq!(sup.abort(), SupervisorState::Stopped(Shutdown::Abort)); // no worker attached
    /// assert_eq!(sup.hand_back().collect::<Vec<_>>(), [1, 2]);
    /// assert!(sup.snapshot().adds_up());
    /// ```
    pub fn abort(&self) -> SupervisorState {
        self.shut_down(Shutdown::Abort)
    }

    /// Moves to the `target` shutdown unless a stronger one is under way.
    #[inline(never)]
    fn shut_down(&self, target: Shutdown) -> SupervisorState {
        if let Ok(new) = self.phase.shut_down(target) {
            self.queue.close();
            if target != Shutdown::Drain {
                self.sweep_pending_starts();
            }
            self.wake_every_waiter();
            if new.is_stopped() {
                self.phase.wake_stop_waiters(&self.park);
            }
        }
        // The state now (a sweep above may have stopped the supervisor since the change).
        self.state()
    }

    /// A slot was just made Starting or Restarting. If an abort or escalation swept the slots
    /// before that, sweep again: no start will come, and the slot must not keep the
    /// supervisor from stopping.
    fn settle_start(&self) {
        // SeqCst fence, paired with the one in `sweep_pending_starts` (Dekker): either this
        // phase load sees the shutdown, or the shutdown's sweep sees our transition.
        fence(Ordering::SeqCst);
        if self.stops_workers() {
            self.sweep_pending_starts();
        }
    }

    /// On abort or escalation, no start will be needed: reserved slots become Vacant again,
    /// Restarting slots Retired (a retry they hold waits for `hand_back`).
    fn sweep_pending_starts(&self) {
        // SeqCst fence: see `settle_start`.
        fence(Ordering::SeqCst);
        for slot in &self.slots {
            if slot.state.sweep().is_ok() {
                self.deactivate(Leaving::Left);
            }
        }
    }

    /// Counts one active slot fewer; if that stopped the supervisor, closes the queue (after
    /// an escalation from Running; otherwise it is closed already) and wakes every waiter.
    #[inline(never)]
    pub(crate) fn deactivate(&self, why: Leaving) {
        if self.phase.deactivate(why) {
            self.queue.close();
            self.wake_every_waiter();
            self.phase.wake_stop_waiters(&self.park);
        }
    }

    /// Wakes whoever waits on one of the signals (idle workers, full-queue submitters,
    /// draining workers) to re-check the phase the caller just changed with a SeqCst CAS: the
    /// condition change `notify_all` needs.
    fn wake_every_waiter(&self) {
        self.work.notify_all(&self.park);
        self.space.notify_all(&self.park);
        self.drained.notify_all(&self.park);
    }

    /// Blocks (through the supervisor's [`Park`]) until the supervisor has stopped.
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Supervisor};
    /// let sup: Supervisor<u8, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// sup.abort();
    /// sup.wait_stopped(); // returns at once: no worker was attached
    /// ```
    pub fn wait_stopped(&self) {
        self.phase.wait_stopped(&self.park);
    }

    /// After a shutdown, takes back the tasks that will not run: those still queued and
    /// retries held by retired slots. Each is counted as handed back. Yields nothing while the
    /// supervisor is running or draining with workers (the tasks are still to run).
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Supervisor};
    /// let sup: Supervisor<char, 4, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// sup.try_submit('x').unwrap();
    /// assert_eq!(sup.hand_back().count(), 0); // running: nothing to hand back
    /// sup.abort();
    /// assert_eq!(sup.hand_back().collect::<String>(), "x");
    /// ```
    pub fn hand_back(&self) -> HandBack<'_, T, N, W, P> {
        HandBack {
            sup: self,
            next_slot: 0,
        }
    }

    /// Opens a stopped supervisor again: Running, queue open, exited and retired slots
    /// vacant. Counters keep counting.
    ///
    /// Refused with [`ReopenError::TasksHeld`] while the shutdown left tasks behind (still
    /// queued after an abort, an escalation or a drain that lost its workers, or retries held
    /// by retired slots): take them with [`hand_back`](Self::hand_back) first, so that a task
    /// a shutdown gave up on never runs behind its owner's back.
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, ReopenError, Supervisor, SupervisorState};
    /// let sup: Supervisor<u8, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// assert_eq!(sup.reopen(), Err(ReopenError::NotStopped(SupervisorState::Running)));
    /// sup.try_submit(1).unwrap();
    /// sup.abort(); // no worker: stopped at once, task 1 left in the queue
    /// assert_eq!(sup.reopen(), Err(ReopenError::TasksHeld));
    /// assert_eq!(sup.hand_back().collect::<Vec<_>>(), [1]);
    /// sup.reopen().unwrap();
    /// sup.try_submit(2).unwrap();
    /// ```
    pub fn reopen(&self) -> Result<(), ReopenError> {
        let stopped = self.phase.load();
        if !stopped.is_stopped() {
            return Err(ReopenError::NotStopped(stopped.state()));
        }
        // Stopped: no worker is active, so nothing can enter the queue or a slot meanwhile
        // (the queue is closed, and only an active slot's recovery pushes past the close).
        // A hand-back that claimed a slot's task keeps its task flag set until it is done.
        if !self.queue.is_empty() || self.slots.iter().any(|slot| slot.state.load().has_task()) {
            return Err(ReopenError::TasksHeld);
        }
        for slot in &self.slots {
            // Refused for the Vacant ones, which stay.
            let _ = slot.state.reopen();
        }
        self.queue.reopen();
        self.phase
            .reopen(stopped)
            .map_err(|current| ReopenError::NotStopped(current.state()))
    }

    // ----- the watchdog and crashes -------------------------------------------------------

    /// Feeds the host's clock and runs the watchdog: a worker Busy on one task for more than
    /// the policy's deadline since its last heartbeat, or for more than the run's own deadline
    /// since it started ([`Job::set_deadline`](crate::Job::set_deadline)), is flagged
    /// [`WorkerState::Hung`].
    /// Returns the workers flagged by this call (each hang is reported once).
    ///
    /// This is the supervisor's one clock: it stamps task starts and heartbeats, and times
    /// restarts against the [`Intensity`](crate::policy::Intensity) window. A host without a
    /// watchdog ticks too if its policy limits the restart intensity.
    ///
    /// What to do about a hung worker is the host's call: wait, or
    /// [`condemn`](Self::condemn) it and kill its thread.
    ///
    /// Several threads may tick: the clock only moves forward, and a `now` behind the clock
    /// moves nothing (the watchdog then judges by the clock). A host's clock should therefore
    /// start near zero and never jump by `u32::MAX / 2` ticks or more between two ticks (see
    /// [`Tick`]).
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Next, Supervisor, WorkerState};
    /// let policy = Policy::DEFAULT.with_watchdog(100).unwrap();
    /// let sup: Supervisor<u8, 2, 1> = Supervisor::new(policy, NoPark);
    /// sup.tick(1_000);
    /// sup.try_submit(1).unwrap();
    /// let mut worker = sup.attach(0).unwrap();
    /// let Next::Run(job) = worker.try_next() else { unreachable!() };
    /// assert!(sup.tick(1_050).is_empty());
    /// assert_eq!(sup.tick(1_101).as_slice(), [job.context().run()]);
    /// assert_eq!(sup.worker_state(0), Some(WorkerState::Hung));
    /// assert!(sup.tick(1_200).is_empty()); // reported once
    /// job.complete().unwrap(); // a hung task may still finish normally
    /// ```
    pub fn tick(&self, now: Tick) -> NewlyHung<W> {
        // The clock only moves forward (in wrapping order), so several threads may tick.
        // Relaxed: the clock is advisory (heartbeat stamps); nothing is published with it.
        let mut clock = self.clock.load(Ordering::Relaxed);
        let now = loop {
            if now == clock || now.wrapping_sub(clock) >= HALF_RANGE {
                break clock; // not ahead of the clock: judge by the clock
            }
            // Relaxed: as above.
            match self
                .clock
                .compare_exchange_weak(clock, now, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => break now,
                Err(current) => clock = current,
            }
        };
        let mut hung = NewlyHung::new();
        let watchdog = self.policy.watchdog();
        // Without a watchdog nothing is judged (with the feature `deadlines`: unless a run has
        // a deadline of its own).
        #[cfg(not(feature = "deadlines"))]
        let Some(watchdog) = watchdog
        else {
            return hung;
        };
        for (index, slot) in self.slots.iter().enumerate() {
            // Acquire (in `load`): pairs with the worker's transition 4, which follows its
            // heartbeat stamp (and its start and deadline), so the heartbeat read below is this
            // task's or newer.
            let word = slot.state.load();
            if !word.is_busy() {
                continue;
            }
            // The run's own deadline counts from its start; the policy's from the last
            // heartbeat. (Relaxed: ordered by the Acquire above.)
            #[cfg(feature = "deadlines")]
            let Some((since, deadline)) = crate::slot::own_deadline(slot).or_else(|| {
                watchdog.map(|deadline| (slot.heartbeat.load(Ordering::Relaxed), deadline))
            }) else {
                continue;
            };
            #[cfg(not(feature = "deadlines"))]
            let (since, deadline) = (slot.heartbeat.load(Ordering::Relaxed), watchdog);
            // A heartbeat stamped after `now` (another thread ticked the clock further) is
            // fresh, not 4 billion ticks old.
            let age = now.wrapping_sub(since);
            if age <= deadline || age >= HALF_RANGE {
                continue;
            }
            // Refused if the worker finished or started another task meanwhile.
            if slot.state.flag_hung(word).is_ok() {
                hung.push(Run::new(index, word));
            }
        }
        hung
    }

    /// The host's clock as of the last [`tick`](Self::tick).
    pub(crate) fn now(&self) -> Tick {
        // Relaxed: see `tick`.
        self.clock.load(Ordering::Relaxed)
    }

    pub(crate) fn clock(&self) -> &AtomicU32 {
        &self.clock
    }

    /// Condemns a run — a task running on a worker, still busy or hung — before the host kills
    /// the worker's thread: from now on the worker can no longer record its task's outcome or
    /// touch the queue, so killing it cannot leave the queue half-updated. Then, once the thread
    /// is dead, [`declare_dead`](Self::declare_dead) and [`recover`](Self::recover).
    ///
    /// The host names the run it judged (from [`tick`](Self::tick), [`current_run`](Self::current_run)
    /// or the task's [`Context::run`](crate::Context::run)), not just the worker: if that run has
    /// ended — the task finished, even if the worker started another one since — the
    /// condemnation fails with [`WorkerError::RunEnded`], and the host must not kill the thread.
    /// It fails with [`WorkerError::WrongState`] if the run is already condemned.
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Condemned, Next, Supervisor};
    /// let sup: Supervisor<u8, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// sup.try_submit(1).unwrap();
    /// let mut worker = sup.attach(0).unwrap();
    /// let Next::Run(job) = worker.try_next() else { unreachable!() };
    /// sup.condemn(sup.current_run(0).unwrap()).unwrap();
    /// // Had the thread not been killed, it could not record its outcome:
    /// assert_eq!(job.complete(), Err(Condemned));
    /// let report = sup.recover(0).unwrap();
    /// assert!(report.task.is_some());
    /// # drop(worker);
    /// ```
    pub fn condemn(&self, run: Run) -> Result<(), WorkerError> {
        let index = run.worker();
        let slot = self.slot_checked(index)?;
        // Acquire (in `load`): the word is only compared; nothing is read under it.
        let mut word = slot.state.load();
        loop {
            if !run.is(word) {
                return Err(WorkerError::RunEnded { index });
            }
            match slot.state.condemn(word) {
                Ok(_) => return Ok(()),
                // The same word, refused: the run is already being killed.
                Err(found) if found == word => return Err(wrong_state(index, found)),
                // A heartbeat (Hung → Busy) or the run's end since the look: look again.
                Err(found) => word = found,
            }
        }
    }

    /// Cancels a run — a task running on a worker, busy, hung or condemned — so that its
    /// outcome is *cancelled*: from now on [`Context::is_cancelled`](crate::Context::is_cancelled)
    /// tells the task to stop, the host ends the run with [`Job::cancel`](crate::Job::cancel),
    /// and the run can no longer be recorded as completed or failed. If its worker dies
    /// instead (killed, as the Web Worker host does, or crashed), the recovery reports
    /// [`Disposition::Cancelled`]: the task is not retried, and the death is charged neither to
    /// the restart intensity nor to the backoff; the slot is replaced while the supervisor
    /// runs (whatever the restart policy).
    ///
    /// `Ok` if `run` is the worker's current run; cancelling it again is `Ok` too. Fails with
    /// [`WorkerError::RunEnded`] if that run has ended (its outcome was recorded, or it
    /// crashed: a retry is a new run), exactly like [`condemn`](Self::condemn). Decides the
    /// race with the run's end: exactly one of the two wins.
    ///
    /// What a cancelled run's `complete` or `fail` do: they are refused like a condemned
    /// run's (`Err(Condemned)`), the task stays in the slot and the worker is crashed, so
    /// [`recover`](Self::recover) reports it cancelled. A host that polls
    /// [`Job::is_cancelled`](crate::Job::is_cancelled) and calls [`Job::cancel`](crate::Job::cancel)
    /// keeps its worker; `complete`'s refusal only happens to a cancellation that lands after
    /// that check.
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Next, Supervisor, WorkerError};
    /// let sup: Supervisor<u8, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// sup.try_submit(1).unwrap();
    /// let mut worker = sup.attach(0).unwrap();
    /// let Next::Run(job) = worker.try_next() else { unreachable!() };
    /// let run = job.context().run();
    /// assert!(!job.context().is_cancelled());
    /// sup.cancel(run).unwrap();
    /// assert!(job.context().is_cancelled()); // the task polls this, and returns early
    /// assert_eq!(job.cancel(), Ok(1)); // the host ends the run as cancelled
    /// assert_eq!(sup.cancel(run), Err(WorkerError::RunEnded { index: 0 }));
    /// assert_eq!(sup.snapshot().cancelled, 1);
    /// # drop(worker);
    /// ```
    #[cfg(feature = "cancellation")]
    pub fn cancel(&self, run: Run) -> Result<(), WorkerError> {
        let index = run.worker();
        let slot = self.slot_checked(index)?;
        // Acquire (in `load`): the word is only compared; nothing is read under it.
        let mut word = slot.state.load();
        loop {
            if !run.is(word) {
                return Err(WorkerError::RunEnded { index });
            }
            match slot.state.cancel(word) {
                Ok(_) => return Ok(()),
                // A heartbeat, condemnation or the run's end since the look: look again.
                Err(found) => word = found,
            }
        }
    }

    /// The run worker `index` is on — a task started and not yet finished, crashed or
    /// killed — or `None` if it runs no task (or there is no such worker).
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Next, Supervisor};
    /// let sup: Supervisor<u8, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// sup.try_submit(1).unwrap();
    /// let mut worker = sup.attach(0).unwrap();
    /// assert_eq!(sup.current_run(0), None); // idle
    /// let Next::Run(job) = worker.try_next() else { unreachable!() };
    /// assert_eq!(sup.current_run(0), Some(job.context().run()));
    /// job.complete().unwrap();
    /// assert_eq!(sup.current_run(0), None);
    /// ```
    pub fn current_run(&self, index: usize) -> Option<Run> {
        let slot = self.slots.get(index)?;
        // Acquire (in `load`): the word is only looked at.
        let word = slot.state.load();
        word.is_running().then(|| Run::new(index, word))
    }

    /// Declares that the thread driving worker `index` is gone without unwinding — it
    /// trapped, or the host killed it — so its slot is marked Crashed for
    /// [`recover`](Self::recover). A worker that was leaving is simply counted out.
    ///
    /// # Safety
    ///
    /// The thread that held this slot's [`Worker`] (and [`Job`](crate::Job)) must never run
    /// again: it must be dead, or stopped for good, and its handles must never be used or
    /// dropped. Recovery reads the task cell, and a replacement writes it.
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Next, Supervisor};
    /// let sup: Supervisor<u8, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// sup.try_submit(1).unwrap();
    /// let mut worker = sup.attach(0).unwrap();
    /// let Next::Run(job) = worker.try_next() else { unreachable!() };
    /// // Simulate a thread that trapped mid-task: its handles are never touched again.
    /// core::mem::forget(job);
    /// core::mem::forget(worker);
    /// // SAFETY: the "thread" holding worker 0 will never run again.
    /// unsafe { sup.declare_dead(0) }.unwrap();
    /// let report = sup.recover(0).unwrap();
    /// assert!(report.task.is_some());
    /// ```
    pub unsafe fn declare_dead(&self, index: usize) -> Result<(), WorkerError> {
        let slot = self.slot_checked(index)?;
        let old = slot
            .state
            .declare_dead()
            .map_err(|found| wrong_state(index, found))?;
        if old.is_exiting() {
            // Exiting → Exited: counted out.
            self.deactivate(Leaving::Left);
        }
        Ok(())
    }

    /// Recovers a crashed worker: its task is retried, requeued, dead-lettered, reported lost
    /// or handed back per the [`Delivery`] policy, and the [`Restart`](crate::policy::Restart)
    /// policy and intensity decide whether the host must attach a replacement
    /// ([`Decision::Replace`]) or the supervisor escalates. Restarts are timed by the
    /// supervisor's clock (the last [`tick`](Self::tick)).
    ///
    /// For workers that crashed by dropping their [`Job`](crate::Job) or were declared dead;
    /// a host that catches the crash itself uses [`Job::crash`](crate::Job::crash).
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::{Delivery, Policy}, Decision, Disposition, Next, Supervisor};
    /// let policy = Policy::DEFAULT.with_delivery(Delivery::AtMostOnce);
    /// let sup: Supervisor<u8, 2, 1> = Supervisor::new(policy, NoPark);
    /// sup.try_submit(3).unwrap();
    /// let mut worker = sup.attach(0).unwrap();
    /// if let Next::Run(job) = worker.try_next() {
    ///     drop(job); // the task "panicked": the job was dropped unfinished
    /// }
    /// let report = sup.recover(0).unwrap();
    /// assert_eq!(report.task, Some(Disposition::Lost(3)));
    /// assert_eq!(report.decision, Decision::Replace);
    /// assert_eq!(sup.snapshot().lost, 1);
    /// # drop(worker);
    /// ```
    pub fn recover(&self, index: usize) -> Result<CrashReport<T>, WorkerError> {
        let slot = self.slot_checked(index)?;
        let claimed = slot
            .state
            .recover()
            .map_err(|found| wrong_state(index, found))?;
        Ok(self.recover_claimed(slot, index, claimed))
    }

    /// Recovery proper, once the caller moved `slot` (at `index`) to Recovering from
    /// `claimed`.
    #[inline(never)]
    pub(crate) fn recover_claimed(
        &self,
        slot: &WorkerSlot<T>,
        index: usize,
        claimed: Word,
    ) -> CrashReport<T> {
        slot.count_crash();
        #[cfg(feature = "cancellation")]
        if claimed.is_cancelled() && claimed.has_task() {
            return self.recover_cancelled(slot, index);
        }
        let decision = self.decide(true);
        let delay = if decision == Decision::Replace {
            self.back_off(slot)
        } else {
            0
        };
        let mut kept = false;
        let task = claimed.has_task().then(|| {
            // SAFETY: Recovering makes the cell ours, and the flag says it holds the crashed
            // worker's task.
            let envelope = unsafe { slot.take() };
            let (disposition, retry_kept) = self.dispose(slot, envelope, decision);
            kept = retry_kept;
            disposition
        });
        self.conclude(slot, decision, Some(kept));
        self.task_returned();
        CrashReport {
            worker: index,
            task,
            decision,
            delay,
        }
    }

    /// Recovery of a cancelled run (held in Recovering by the caller, with its task): the task
    /// is not retried, and the death charges neither the intensity nor the backoff. The slot is
    /// replaced while the supervisor runs, or drains with tasks left (as for a recycling).
    #[cfg(feature = "cancellation")]
    #[inline(never)]
    fn recover_cancelled(&self, slot: &WorkerSlot<T>, index: usize) -> CrashReport<T> {
        let phase = self.phase.load();
        let replace = phase.allows_restart(true) && !(phase.is_draining() && self.queue.is_empty());
        let decision = if replace {
            self.ready_now(slot);
            Decision::Replace
        } else {
            Decision::Retire
        };
        // SAFETY: Recovering makes the cell ours, and a cancelled run holds its task (the flag
        // is set only while the run's task is in the cell, and cleared when it leaves).
        let envelope = unsafe { slot.take() };
        slot.count_cancelled();
        self.conclude(slot, decision, Some(false));
        self.task_returned();
        CrashReport {
            worker: index,
            task: Some(Disposition::Cancelled(envelope.task)),
            decision,
            delay: 0,
        }
    }

    /// With a restart backoff, the delay before the replacement of `slot`'s crashed worker
    /// (held in Recovering by the caller) may attach, noted in the slot; 0 without.
    fn back_off(&self, slot: &WorkerSlot<T>) -> Tick {
        let Some(backoff) = self.policy.backoff() else {
            return 0;
        };
        #[cfg(not(feature = "backoff"))]
        let _ = (backoff, slot);
        #[cfg(feature = "backoff")]
        {
            // Relaxed: the caller holds the slot in Recovering, which orders it after the last
            // writer (see `WorkerSlot::backoff`); the transition to Restarting publishes both.
            let delay = backoff.after(slot.backoff.load(Ordering::Relaxed));
            slot.backoff.store(delay, Ordering::Relaxed);
            slot.ready_at
                .store(self.now().wrapping_add(delay), Ordering::Relaxed);
            delay
        }
        #[cfg(not(feature = "backoff"))]
        0
    }

    /// The Idle worker of `slot` leaves without a crash (recycled, or a normal exit): its
    /// replacement waits for no backoff. Its "ready at" tick becomes now, not the one an earlier
    /// crash left, which half the clock's range later would read as a time to come.
    fn ready_now(&self, slot: &WorkerSlot<T>) {
        #[cfg(feature = "backoff")]
        if self.policy.backoff().is_some() {
            // Relaxed: the caller owns the Idle slot; its transition to Restarting publishes
            // it (see `back_off`).
            slot.ready_at.store(self.now(), Ordering::Relaxed);
        }
        #[cfg(not(feature = "backoff"))]
        let _ = slot;
    }

    /// When the replacement of Restarting `slot`'s crashed worker may attach (0 without the
    /// feature `backoff`).
    fn ready_at(&self, slot: &WorkerSlot<T>) -> Tick {
        #[cfg(feature = "backoff")]
        // Relaxed: ordered by the caller's Acquire load of the word (see `back_off`).
        return slot.ready_at.load(Ordering::Relaxed);
        #[cfg(not(feature = "backoff"))]
        {
            let _ = slot;
            0
        }
    }

    /// Decides what happens to a crashed worker's task. Returns the disposition and whether
    /// the task was put back into the slot's cell for the replacement.
    fn dispose(
        &self,
        slot: &WorkerSlot<T>,
        envelope: Envelope<T>,
        decision: Decision,
    ) -> (Disposition<T>, bool) {
        // Attempts that started: a retry whose worker died before starting it is not charged,
        // nor a run the host says never started (`Job::crash_unstarted`).
        let attempts = envelope.runs;
        let max_attempts = match self.policy.delivery() {
            Delivery::AtLeastOnce { max_attempts } => max_attempts.get(),
            // At most one run: a task that never started still may have it.
            Delivery::AtMostOnce if attempts == 0 => 1,
            Delivery::AtMostOnce => {
                Counters::bump(&self.counters.lost);
                return (Disposition::Lost(envelope.task), false);
            }
        };
        if attempts >= max_attempts {
            Counters::bump(&self.counters.dead_lettered);
            return (
                Disposition::DeadLettered {
                    task: envelope.task,
                    attempts,
                },
                false,
            );
        }
        let attempt = attempts + 1;
        match decision {
            // (`decide` never recycles; a fresh worker would run the retry all the same.)
            Decision::Replace | Decision::Recycle => {
                // SAFETY: the caller holds the slot in Recovering and took the old envelope
                // out: the cell is ours and empty.
                unsafe { slot.put(envelope) };
                (Disposition::Retried { attempt }, true)
            }
            Decision::Retire if !self.stops_workers() => {
                // Counted before the push, so that a snapshot that sees the task in the queue
                // also sees this attempt ended (see `stats`).
                Counters::bump(&self.counters.requeued);
                match self.queue.push_ignoring_close(envelope) {
                    Ok(()) => {
                        self.work.notify_one(&self.park);
                        (Disposition::Requeued { attempt }, false)
                    }
                    Err(retry) => {
                        // The refusal before the hand-back: see `stats`.
                        Counters::bump(&self.counters.requeue_refused);
                        Counters::bump(&self.counters.handed_back);
                        (Disposition::HandedBack(retry.task), false)
                    }
                }
            }
            Decision::Retire | Decision::Escalate => {
                Counters::bump(&self.counters.handed_back);
                (Disposition::HandedBack(envelope.task), false)
            }
        }
    }

    /// The worker of `slot`, Idle, left while the supervisor runs (its handle was dropped):
    /// replace it per the restart policy (a retry it held stays for the replacement) or let
    /// it go.
    #[inline(never)]
    pub(crate) fn exit_running(&self, slot: &WorkerSlot<T>) -> Decision {
        self.ready_now(slot);
        let decision = self.decide(false);
        self.conclude(slot, decision, None);
        decision
    }

    /// Recycles the Idle worker of `slot` (it ran its quota of tasks, or its host asked):
    /// Idle → Restarting (transition 17), not counted against the intensity. Refused once
    /// workers must leave (abort, escalation), and during a drain once the queue is empty:
    /// the worker leaves then, and a fresh one would only attach to leave.
    #[cfg(feature = "recycling")]
    #[inline(never)]
    pub(crate) fn recycle(&self, slot: &WorkerSlot<T>) -> Result<(), RecycleError> {
        let phase = self.phase.load();
        // (`allows_restart(true)`: running or draining.) A task queued during a drain may be
        // taken by a peer meanwhile: the fresh worker then attaches and leaves, nothing worse.
        if !phase.allows_restart(true) || (phase.is_draining() && self.queue.is_empty()) {
            return Err(RecycleError::Leaving);
        }
        self.ready_now(slot);
        // Refused only if the host declared this worker dead.
        if slot.state.exit_for_replacement().is_err() {
            return Err(RecycleError::Ended);
        }
        slot.count_recycle();
        // An abort or escalation that swept the slots meanwhile sweeps this one too.
        self.settle_start();
        Ok(())
    }

    /// Carries out a `decision` about the worker of `slot` that ended: a crash being recovered
    /// (`kept`: whether its retry was put back into the cell), or a normal exit (`None`).
    /// Escalates if the intensity was exceeded; moves the slot to Restarting (13, 17), or to
    /// its end and counts it out (14, 16).
    #[inline(never)]
    fn conclude(&self, slot: &WorkerSlot<T>, decision: Decision, kept: Option<bool>) {
        if decision == Decision::Escalate {
            self.shut_down(Shutdown::Escalation);
        }
        // None can be refused: Recovering is the recoverer's, and an Idle slot is changed
        // only by its worker (see `slot`).
        let _ = match (decision == Decision::Replace, kept) {
            (true, Some(kept)) => slot.state.await_replacement(kept),
            (true, None) => slot.state.exit_for_replacement(),
            (false, Some(_)) => slot.state.retire(),
            (false, None) => slot.state.exit(),
        };
        if decision == Decision::Replace {
            slot.count_restart();
            self.settle_start();
        } else {
            self.deactivate(Leaving::Left);
        }
    }

    /// Whether an ended worker is replaced: the restart policy, the phase (no restarts during
    /// a shutdown, except crashes while draining), then the intensity limit, at the
    /// supervisor's clock.
    fn decide(&self, crashed: bool) -> Decision {
        if !self.phase.load().allows_restart(crashed) || !self.policy.restart().replaces(crashed) {
            return Decision::Retire;
        }
        if self
            .restarts
            .lock()
            .admit(self.policy.intensity(), self.now())
        {
            Decision::Replace
        } else {
            Decision::Escalate
        }
    }

    // ----- observation --------------------------------------------------------------------

    /// The counters and worker states, read without locks. See [`Snapshot`].
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Supervisor, WorkerState};
    /// let sup: Supervisor<u8, 4, 2> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// sup.try_submit(1).unwrap();
    /// let snap = sup.snapshot();
    /// assert_eq!((snap.submitted, snap.queued), (1, 1));
    /// assert_eq!(snap.workers[0].state, WorkerState::Vacant);
    /// assert!(snap.adds_up());
    /// ```
    pub fn snapshot(&self) -> Snapshot<W> {
        stats::read(&self.phase, &self.counters, &self.queue, &self.slots)
    }

    /// The number of queued tasks, as a snapshot.
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Supervisor};
    /// let sup: Supervisor<u8, 4, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// sup.try_submit(1).unwrap();
    /// assert_eq!(sup.queued(), 1);
    /// ```
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// The queue's capacity, `N`.
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Supervisor};
    /// let sup: Supervisor<u8, 4, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// assert_eq!(sup.capacity(), 4);
    /// ```
    pub const fn capacity(&self) -> usize {
        N
    }

    /// The number of worker slots, `W`.
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Supervisor};
    /// let sup: Supervisor<u8, 4, 3> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// assert_eq!(sup.workers(), 3);
    /// ```
    pub const fn workers(&self) -> usize {
        W
    }
}

impl<T, const N: usize, const W: usize, P: Park> fmt::Debug for Supervisor<T, N, W, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Supervisor")
            .field("state", &self.state())
            .field("queued", &self.queued())
            .field("capacity", &N)
            .field("workers", &W)
            .finish()
    }
}

impl<T, const N: usize, const W: usize, P: Park> Drop for Supervisor<T, N, W, P> {
    fn drop(&mut self) {
        // Retries kept in slots are not in the queue, whose own Drop handles the rest.
        for slot in &self.slots {
            if slot.state.load().has_task() {
                // SAFETY: with `&mut self` no worker handle exists (they borrow the
                // supervisor), so the flag means the cell holds a task nobody else owns.
                drop(unsafe { slot.take() });
            }
        }
    }
}

/// The iterator returned by [`Supervisor::hand_back`].
///
/// ```
/// use foreman_rt::{park::NoPark, policy::Policy, Supervisor};
/// let sup: Supervisor<u8, 4, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
/// sup.try_submit(1).unwrap();
/// sup.abort();
/// let mut back = sup.hand_back();
/// assert_eq!(back.next(), Some(1));
/// assert_eq!(back.next(), None);
/// ```
pub struct HandBack<'s, T, const N: usize, const W: usize, P: Park> {
    sup: &'s Supervisor<T, N, W, P>,
    next_slot: usize,
}

impl<T, const N: usize, const W: usize, P: Park> Iterator for HandBack<'_, T, N, W, P> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        let sup = self.sup;
        if matches!(
            sup.state(),
            SupervisorState::Running | SupervisorState::Draining
        ) {
            return None;
        }
        if let Ok(envelope) = sup.queue.try_pop() {
            Counters::bump(&sup.counters.handed_back);
            return Some(envelope.task);
        }
        while let Some(slot) = sup.slots.get(self.next_slot) {
            let word = slot.state.load();
            if word.has_leftover() && slot.state.claim_leftover(word).is_ok() {
                // SAFETY: transition 21 made the cell ours (no other hand-back claims it, and
                // `reopen` refuses while the task flag is set), and it holds the task.
                let envelope = unsafe { slot.take() };
                // Cannot be refused: the claim is ours.
                let _ = slot.state.hand_back();
                Counters::bump(&sup.counters.handed_back);
                return Some(envelope.task);
            }
            if !word.has_leftover() {
                self.next_slot += 1;
            }
            // Else another hand-back changed the word meanwhile: look at this slot again.
        }
        None
    }
}

impl<T, const N: usize, const W: usize, P: Park> fmt::Debug for HandBack<'_, T, N, W, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandBack")
            .field("next_slot", &self.next_slot)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::{Condemned, Next};

    fn watched() -> Supervisor<u8, 2, 1> {
        Supervisor::new(Policy::DEFAULT.with_watchdog(100).unwrap(), NoPark)
    }

    #[test]
    fn init_builds_what_new_builds_over_any_old_bytes() {
        extern crate std;
        use std::boxed::Box;
        type Sup = Supervisor<u64, 8, 3>;
        let policy = Policy::DEFAULT.with_watchdog(50).unwrap();
        let mut place: Box<MaybeUninit<Sup>> = Box::new_uninit();
        // SAFETY: writing bytes into a `MaybeUninit` is always allowed.
        unsafe { core::ptr::write_bytes(place.as_mut_ptr(), 0xA5, 1) };
        let built = Supervisor::init(&mut place, policy, NoPark);
        let new: Sup = Supervisor::new(policy, NoPark);
        for sup in [&*built, &new] {
            assert_eq!(sup.state(), SupervisorState::Running);
            assert_eq!(*sup.policy(), policy);
            assert_eq!(sup.now(), 0);
            for n in 0..8 {
                sup.try_submit(n).unwrap();
            }
            assert_eq!(sup.try_submit(8), Err(SubmitError::Full(8)));
            let mut worker = sup.attach(2).unwrap();
            let Next::Run(job) = worker.try_next() else {
                panic!("task 0 is queued")
            };
            assert_eq!((*job.task(), job.context().attempt()), (0, 1));
            job.complete().unwrap();
            drop(worker);
        }
        assert_eq!(built.snapshot(), new.snapshot());
        // SAFETY: `init` initialized it; dropping it drops the 7 tasks still queued.
        drop(unsafe { place.assume_init() });
    }

    #[test]
    fn a_run_that_never_started_is_not_charged() {
        use crate::policy::Delivery;
        // At least once, one attempt: a crash after the run started dead-letters the task; a
        // crash before it started (`crash_unstarted`) retries it as the same attempt.
        let policy = Policy::DEFAULT.with_delivery(Delivery::at_least_once(1).unwrap());
        let sup: Supervisor<u8, 2, 1> = Supervisor::new(policy, NoPark);
        sup.try_submit(7).unwrap();
        let mut worker = sup.attach(0).unwrap();
        let Next::Run(job) = worker.try_next() else {
            panic!("task 7 is queued")
        };
        let report = job.crash_unstarted();
        assert!(matches!(
            report.task,
            Some(Disposition::Retried { attempt: 1 })
        ));
        drop(worker);
        let mut replacement = sup.attach(0).unwrap();
        let Next::Run(job) = replacement.try_next() else {
            panic!("the retry is kept for the replacement")
        };
        assert_eq!((*job.task(), job.context().attempt()), (7, 1));
        let report = job.crash();
        assert!(matches!(
            report.task,
            Some(Disposition::DeadLettered {
                task: 7,
                attempts: 1
            })
        ));
        let snap = sup.snapshot();
        assert_eq!((snap.crashes(), snap.dead_lettered), (2, 1));
    }

    #[test]
    fn a_late_tick_neither_moves_the_clock_back_nor_flags_a_fresh_heartbeat() {
        let sup = watched();
        sup.tick(1_000);
        sup.try_submit(1).unwrap();
        let mut worker = sup.attach(0).unwrap();
        let Next::Run(job) = worker.try_next() else {
            panic!("task 1 is queued")
        };
        // Another thread's tick, computed before the one above: the heartbeat (1 000) is
        // ahead of it, so the task is fresh, and the clock stays where it was.
        assert!(sup.tick(900).is_empty());
        assert_eq!(sup.now(), 1_000);
        assert!(sup.tick(1_100).is_empty());
        assert_eq!(sup.tick(1_101).as_slice(), [job.context().run()]);
        job.complete().unwrap();
    }

    #[test]
    fn a_condemnation_hits_the_run_it_names_and_no_later_one() {
        let sup = watched();
        for task in 1..=2 {
            sup.try_submit(task).unwrap();
        }
        let mut worker = sup.attach(0).unwrap();
        let Next::Run(job) = worker.try_next() else {
            panic!("task 1 is queued")
        };
        let hung = sup.tick(1_000).next().expect("task 1 is past its deadline");
        // A heartbeat after the verdict: the same run, still condemnable.
        job.context().heartbeat();
        assert_eq!(sup.worker_state(0), Some(WorkerState::Busy));
        assert_eq!(sup.current_run(0), Some(hung));
        // The task finished before the host acted, and the worker took the next one.
        job.complete().unwrap();
        assert_eq!(sup.condemn(hung), Err(WorkerError::RunEnded { index: 0 }));
        let Next::Run(next) = worker.try_next() else {
            panic!("task 2 is queued")
        };
        assert_eq!(sup.condemn(hung), Err(WorkerError::RunEnded { index: 0 }));
        assert_eq!(
            sup.worker_state(0),
            Some(WorkerState::Busy),
            "task 2 runs on"
        );
        let current = next.context().run();
        assert_ne!(current, hung);
        sup.condemn(current).unwrap();
        let terminating = WorkerError::WrongState {
            index: 0,
            state: WorkerState::Terminating,
        };
        assert_eq!(sup.condemn(current), Err(terminating), "condemned once");
        assert_eq!(next.complete(), Err(Condemned));
        let report = sup.recover(0).unwrap();
        assert!(
            matches!(report.task, Some(Disposition::Retried { attempt: 2 })),
            "task 2 is retried: {:?}",
            report.task
        );
        drop(worker);
    }

    #[test]
    fn deadlines_hold_across_the_clock_wrapping_around() {
        let sup = watched();
        // A clock advances in steps of less than half its range: walk it to the wrap.
        sup.tick(Tick::MAX / 2);
        sup.tick(Tick::MAX - 9); // heartbeats are stamped 10 ticks before the wrap
        sup.try_submit(1).unwrap();
        let mut worker = sup.attach(0).unwrap();
        let Next::Run(job) = worker.try_next() else {
            panic!("task 1 is queued")
        };
        assert!(
            sup.tick(90).is_empty(),
            "100 ticks old: not past the deadline"
        );
        assert_eq!(sup.now(), 90, "the clock wrapped forward");
        assert_eq!(
            sup.tick(91).as_slice(),
            [job.context().run()],
            "101 ticks old"
        );
        job.complete().unwrap();
    }

    #[cfg(feature = "recycling")]
    /// Runs every task `worker` can take now, completing each; returns how many.
    fn run_all<const N: usize, const W: usize>(worker: &mut Worker<'_, u8, N, W, NoPark>) -> u32 {
        let mut ran = 0;
        while let Next::Run(job) = worker.try_next() {
            job.complete().unwrap();
            ran += 1;
        }
        ran
    }

    #[cfg(feature = "recycling")]
    #[test]
    fn a_worker_is_recycled_after_its_quota_whatever_the_restart_kind_and_intensity() {
        use crate::policy::{Intensity, Restart};
        // Temporary workers, and an intensity that escalates on the first restart: recycling
        // is neither a restart nor a crash.
        let policy = Policy::DEFAULT
            .with_restart(Restart::Temporary)
            .with_intensity(Intensity::new(0, 100).unwrap())
            .with_recycling(3)
            .unwrap();
        let sup: Supervisor<u8, 16, 1> = Supervisor::new(policy, NoPark);
        for n in 0..10 {
            sup.try_submit(n).unwrap();
        }
        let mut runs = [0; 4];
        for ran in &mut runs {
            let mut worker = sup.attach(0).unwrap();
            *ran = run_all(&mut worker);
            let snap = sup.snapshot();
            assert!(snap.adds_up(), "{snap:?}");
            if sup.queued() > 0 {
                assert!(worker.is_recycled());
                assert_eq!(worker.exit(), Decision::Recycle);
                assert_eq!(sup.worker_state(0), Some(WorkerState::Restarting));
            } else {
                // The last one ran one task and idles: not due yet.
                assert!(!worker.is_recycled());
                sup.drain();
                assert!(matches!(worker.try_next(), Next::Exit));
                assert_eq!(worker.exit(), Decision::Retire);
            }
        }
        assert_eq!(runs, [3, 3, 3, 1]);
        let snap = sup.snapshot();
        assert_eq!(
            (
                snap.completed,
                snap.recycles(),
                snap.restarts(),
                snap.crashes()
            ),
            (10, 3, 0, 0)
        );
        assert_eq!(sup.state(), SupervisorState::Stopped(Shutdown::Drain));
        assert!(snap.adds_up());
    }

    #[cfg(feature = "recycling")]
    #[test]
    fn a_drain_finishes_its_queue_with_the_workers_it_has_and_an_abort_sweeps_a_recycled_slot() {
        extern crate std;
        let policy = Policy::DEFAULT.with_recycling(1).unwrap();
        let sup: Supervisor<u8, 8, 2> = Supervisor::new(policy, NoPark);
        for n in 0..4 {
            sup.try_submit(n).unwrap();
        }
        let mut worker = sup.attach(0).unwrap();
        assert_eq!(run_all(&mut worker), 1);
        assert!(worker.is_recycled());
        drop(worker); // a host that forgets to ask still leaves the slot Restarting
        assert_eq!(sup.worker_state(0), Some(WorkerState::Restarting));
        assert_eq!(sup.drain(), SupervisorState::Draining);
        // Draining: recycled while tasks are queued, not once the queue is empty.
        for left in [2, 1, 0] {
            let mut worker = sup.attach(0).unwrap();
            assert_eq!(run_all(&mut worker), 1);
            assert_eq!(sup.queued(), left);
            assert_eq!(worker.is_recycled(), left > 0);
            if left == 0 {
                assert!(!sup.is_stopped(), "the worker has not left yet");
            }
        }
        assert!(sup.is_stopped());
        assert_eq!(sup.snapshot().recycles(), 3);

        // A recycled slot that an abort finds Restarting is swept: the supervisor stops.
        let sup: Supervisor<u8, 8, 2> = Supervisor::new(policy, NoPark);
        sup.try_submit(1).unwrap();
        sup.try_submit(2).unwrap();
        let mut worker = sup.attach(0).unwrap();
        run_all(&mut worker);
        assert_eq!(worker.exit(), Decision::Recycle);
        assert_eq!(sup.abort(), SupervisorState::Stopped(Shutdown::Abort));
        assert_eq!(sup.worker_state(0), Some(WorkerState::Retired));
        assert_eq!(sup.attach(0).unwrap_err(), WorkerError::ShuttingDown);
        assert_eq!(sup.hand_back().collect::<std::vec::Vec<_>>(), [2]);
        assert!(sup.snapshot().adds_up());
    }

    #[cfg(feature = "recycling")]
    #[test]
    fn a_recycling_the_host_asks_for_is_neither_a_crash_nor_a_restart() {
        use crate::policy::{Intensity, Restart};
        // No quota, temporary workers, and an intensity that escalates on the first restart:
        // a recycling counted as a restart (or a normal exit) would retire or escalate.
        let policy = Policy::DEFAULT
            .with_restart(Restart::Temporary)
            .with_intensity(Intensity::new(0, 100).unwrap());
        let sup: Supervisor<u8, 8, 1> = Supervisor::new(policy, NoPark);
        for n in 0..3 {
            sup.try_submit(n).unwrap();
        }
        for round in 1..=3 {
            let mut worker = sup.attach(0).unwrap();
            let Next::Run(job) = worker.try_next() else {
                panic!("round {round}: no task");
            };
            job.complete().unwrap();
            assert_eq!(worker.recycle(), Ok(()));
            assert!(worker.is_recycled());
            // Asking twice, or stepping on, changes nothing.
            assert_eq!(worker.recycle(), Err(RecycleError::Ended));
            assert!(matches!(worker.try_next(), Next::Exit));
            assert_eq!(sup.worker_state(0), Some(WorkerState::Restarting));
            assert_eq!(worker.exit(), Decision::Recycle);
            let snap = sup.snapshot();
            assert_eq!(
                (
                    snap.recycles(),
                    snap.restarts(),
                    snap.crashes(),
                    snap.workers[0].recycles
                ),
                (round, 0, 0, round)
            );
            assert!(snap.adds_up(), "{snap:?}");
        }
        assert_eq!(sup.state(), SupervisorState::Running);
        assert_eq!(sup.snapshot().completed, 3);
    }

    #[cfg(feature = "recycling")]
    #[test]
    fn a_recycling_is_refused_when_it_cannot_apply_and_the_worker_is_left_as_it_was() {
        extern crate std;
        // A retry left by a crashed predecessor waits in the slot: run it first.
        let sup: Supervisor<u8, 8, 2> = Supervisor::new(Policy::DEFAULT, NoPark);
        sup.try_submit(7).unwrap();
        let mut worker = sup.attach(0).unwrap();
        let Next::Run(job) = worker.try_next() else {
            panic!("no task")
        };
        assert_eq!(job.crash().decision, Decision::Replace);
        assert_eq!(worker.recycle(), Err(RecycleError::Ended), "crashed");
        drop(worker);
        let mut fresh = sup.attach(0).unwrap();
        assert_eq!(fresh.recycle(), Err(RecycleError::RetryWaiting));
        let Next::Run(job) = fresh.try_next() else {
            panic!("the retry was lost")
        };
        assert_eq!((*job.task(), job.context().attempt()), (7, 2));
        job.complete().unwrap();
        assert_eq!(fresh.recycle(), Ok(()));
        assert_eq!(fresh.exit(), Decision::Recycle);

        // Draining: granted while tasks are queued, refused once the queue is empty (the
        // worker leaves then: a fresh one would only attach to leave).
        let mut worker = sup.attach(0).unwrap();
        sup.try_submit(1).unwrap();
        sup.try_submit(2).unwrap();
        assert_eq!(sup.drain(), SupervisorState::Draining);
        let Next::Run(job) = worker.try_next() else {
            panic!("no task")
        };
        job.complete().unwrap();
        assert_eq!(worker.recycle(), Ok(()), "a task is still queued");
        drop(worker);
        let mut worker = sup.attach(0).unwrap();
        let Next::Run(job) = worker.try_next() else {
            panic!("no task")
        };
        job.complete().unwrap();
        assert_eq!(worker.recycle(), Err(RecycleError::Leaving));
        assert!(!worker.is_recycled());
        assert!(matches!(worker.try_next(), Next::Exit));
        assert_eq!(worker.recycle(), Err(RecycleError::Leaving), "it left");
        assert_eq!(worker.exit(), Decision::Retire);
        assert!(sup.is_stopped());
        assert_eq!(sup.snapshot().recycles(), 2);

        // Aborting: refused, queued tasks handed back, nothing swept twice.
        let sup: Supervisor<u8, 8, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
        sup.try_submit(1).unwrap();
        sup.try_submit(2).unwrap();
        let mut worker = sup.attach(0).unwrap();
        let Next::Run(job) = worker.try_next() else {
            panic!("no task")
        };
        job.complete().unwrap();
        sup.abort();
        assert_eq!(worker.recycle(), Err(RecycleError::Leaving));
        assert_eq!(worker.exit(), Decision::Retire);
        assert_eq!(sup.state(), SupervisorState::Stopped(Shutdown::Abort));
        assert_eq!(sup.hand_back().collect::<std::vec::Vec<_>>(), [2]);
        let snap = sup.snapshot();
        assert_eq!(snap.recycles(), 0);
        assert!(snap.adds_up(), "{snap:?}");
    }

    #[cfg(all(feature = "recycling", feature = "backoff"))]
    #[test]
    fn a_slot_recycled_on_request_is_not_held_back_by_an_earlier_crash_backoff() {
        use crate::policy::Backoff;
        let policy = Policy::DEFAULT.with_backoff(Backoff::new(100, 2, 1_000).unwrap());
        let sup: Supervisor<u8, 4, 1> = Supervisor::new(policy, NoPark);
        sup.try_submit(1).unwrap();
        let mut worker = sup.attach(0).unwrap();
        let Next::Run(job) = worker.try_next() else {
            panic!("no task")
        };
        let report = job.crash();
        assert_eq!((report.decision, report.delay), (Decision::Replace, 100));
        drop(worker);
        sup.tick(100);
        let mut worker = sup.attach(0).expect("its backoff passed");
        let Next::Run(job) = worker.try_next() else {
            panic!("the retry was lost")
        };
        job.complete().unwrap();
        assert_eq!(worker.recycle(), Ok(()));
        drop(worker);
        let fresh = sup.attach(0).expect("a recycled slot attaches at once");
        drop(fresh);
    }

    #[cfg(feature = "backoff")]
    #[test]
    fn a_replacement_attaches_after_a_growing_backoff_reset_by_an_outcome() {
        extern crate std;
        use crate::policy::{Backoff, Delivery, Intensity};
        let policy = Policy::DEFAULT
            .with_intensity(Intensity::unlimited())
            .with_delivery(Delivery::at_least_once(10).unwrap())
            .with_backoff(Backoff::new(10, 2, 30).unwrap());
        let sup: Supervisor<u8, 4, 1> = Supervisor::new(policy, NoPark);
        sup.tick(1_000);
        sup.try_submit(1).unwrap();
        sup.try_submit(2).unwrap();
        let mut worker = sup.attach(0).unwrap();
        let mut delays = std::vec::Vec::new();
        for _ in 0..4 {
            let Next::Run(job) = worker.try_next() else {
                panic!("a task to crash")
            };
            assert_eq!(*job.task(), 1);
            sup.tick(sup.now() + 1);
            let crashed_at = sup.now();
            let report = job.crash();
            assert_eq!(report.decision, Decision::Replace);
            delays.push(report.delay);
            drop(worker);
            let ready_at = crashed_at + report.delay;
            sup.tick(ready_at - 1);
            assert_eq!(
                sup.attach(0).unwrap_err(),
                WorkerError::BackingOff { index: 0, ready_at }
            );
            assert_eq!(sup.worker_state(0), Some(WorkerState::Restarting));
            sup.tick(ready_at);
            worker = sup.attach(0).unwrap();
        }
        assert_eq!(delays, [10, 20, 30, 30]);
        // The retry runs, to an outcome: the streak ends, and the next crash waits 10 again.
        let Next::Run(job) = worker.try_next() else {
            panic!("the retry")
        };
        assert_eq!((*job.task(), job.context().attempt()), (1, 5));
        job.fail().unwrap();
        let Next::Run(job) = worker.try_next() else {
            panic!("task 2")
        };
        assert_eq!(job.crash().delay, 10);
        drop(worker);
        let snap = sup.snapshot();
        assert_eq!((snap.crashes(), snap.restarts(), snap.failed), (5, 5, 1));
        assert!(snap.adds_up());
    }

    #[cfg(feature = "backoff")]
    #[test]
    fn backoff_leaves_the_intensity_limit_and_the_other_ways_out_as_they_were() {
        use crate::policy::{Backoff, Intensity};
        let policy = Policy::DEFAULT
            .with_intensity(Intensity::new(1, 1_000).unwrap())
            .with_backoff(Backoff::new(50, 2, 400).unwrap());
        let sup: Supervisor<u8, 4, 2> = Supervisor::new(policy, NoPark);
        let mut worker = sup.attach(0).unwrap();
        sup.try_submit(1).unwrap();
        let Next::Run(job) = worker.try_next() else {
            panic!("task 1")
        };
        let _other = sup.attach(1).unwrap();
        let report = job.crash();
        assert_eq!((report.decision, report.delay), (Decision::Replace, 50));
        drop(worker);
        // The host cannot wait: it retires the slot, getting the retry back at once.
        assert!(matches!(
            sup.attach(0),
            Err(WorkerError::BackingOff {
                index: 0,
                ready_at: 50
            })
        ));
        assert_eq!(sup.retire(0), Ok(Some(1)));
        // A second crash within the window escalates, with no delay to wait for.
        sup.try_submit(2).unwrap();
        let mut other = _other;
        let Next::Run(job) = other.try_next() else {
            panic!("task 2")
        };
        let report = job.crash();
        assert_eq!((report.decision, report.delay), (Decision::Escalate, 0));
        drop(other);
        assert_eq!(sup.state(), SupervisorState::Stopped(Shutdown::Escalation));
        assert!(sup.snapshot().adds_up());
    }

    /// Moves the clock `ticks` forward, in steps the clock accepts (less than half its range).
    #[cfg(feature = "backoff")]
    fn advance<T, const N: usize, const W: usize>(sup: &Supervisor<T, N, W, NoPark>, ticks: u64) {
        let mut left = ticks;
        while left > 0 {
            let step = left.min(u64::from(HALF_RANGE - 1));
            sup.tick(sup.now().wrapping_add(step as Tick));
            left -= step;
        }
    }

    /// One worker, recycled after every task, its replacements after crashes backing off
    /// 10, 20, 40, … up to 100 ticks; no restart limit.
    #[cfg(all(feature = "backoff", feature = "recycling"))]
    fn recycled_after_each_task_with_backoff() -> Supervisor<u8, 4, 1> {
        use crate::policy::{Backoff, Intensity};
        let policy = Policy::DEFAULT
            .with_intensity(Intensity::unlimited())
            .with_recycling(1)
            .unwrap()
            .with_backoff(Backoff::new(10, 2, 100).unwrap());
        Supervisor::new(policy, NoPark)
    }

    #[cfg(all(feature = "backoff", feature = "recycling"))]
    #[test]
    fn a_recycled_slot_is_never_held_back_by_a_backoff_long_past() {
        let sup = recycled_after_each_task_with_backoff();
        // Half the clock's range and more after the start (25 days of milliseconds) or the
        // last crash: the backoff's "ready at" tick, compared in wrapping order, must not
        // read as a time to come.
        advance(&sup, u64::from(HALF_RANGE) + 10);
        sup.try_submit(1).unwrap();
        sup.try_submit(2).unwrap();
        let mut worker = sup.attach(0).unwrap();
        let Next::Run(job) = worker.try_next() else {
            panic!("task 1")
        };
        job.complete().unwrap();
        assert!(matches!(worker.try_next(), Next::Exit));
        assert_eq!(worker.exit(), Decision::Recycle);
        let mut worker = sup
            .attach(0)
            .expect("a recycled slot's fresh worker attaches at once, whatever the clock");
        // A crash now waits its delay, then attaches; much later its replacement is recycled.
        let Next::Run(job) = worker.try_next() else {
            panic!("task 2")
        };
        assert_eq!(job.crash().delay, 10);
        drop(worker);
        advance(&sup, 10);
        let mut worker = sup.attach(0).unwrap();
        let Next::Run(job) = worker.try_next() else {
            panic!("the retry")
        };
        job.complete().unwrap();
        advance(&sup, u64::from(HALF_RANGE) + 10);
        assert!(matches!(worker.try_next(), Next::Exit));
        assert_eq!(worker.exit(), Decision::Recycle);
        let worker = sup.attach(0).expect("recycled: no backoff");
        // A normal exit is replaced at once too.
        drop(worker);
        assert_eq!(sup.worker_state(0), Some(WorkerState::Restarting));
        advance(&sup, u64::from(HALF_RANGE) + 10);
        sup.attach(0)
            .expect("a normal exit's replacement waits for no backoff");
        assert!(sup.snapshot().adds_up());
    }

    #[cfg(all(feature = "backoff", feature = "recycling"))]
    #[test]
    fn a_run_of_a_recycled_or_crashed_worker_cannot_be_condemned_on_its_successor() {
        let sup = recycled_after_each_task_with_backoff();
        for task in 1..=3 {
            sup.try_submit(task).unwrap();
        }
        let mut worker = sup.attach(0).unwrap();
        let Next::Run(job) = worker.try_next() else {
            panic!("task 1")
        };
        let first = job.context().run();
        job.complete().unwrap();
        assert!(matches!(worker.try_next(), Next::Exit));
        assert_eq!(worker.exit(), Decision::Recycle);
        // Restarting after the recycling: the old run is over.
        assert_eq!(sup.condemn(first), Err(WorkerError::RunEnded { index: 0 }));
        let mut worker = sup.attach(0).unwrap();
        let Next::Run(job) = worker.try_next() else {
            panic!("task 2")
        };
        let second = job.context().run();
        assert_ne!(first, second);
        // The fresh worker's run is not the recycled one's.
        assert_eq!(sup.condemn(first), Err(WorkerError::RunEnded { index: 0 }));
        assert_eq!(sup.current_run(0), Some(second));
        let report = job.crash();
        assert_eq!(report.delay, 10);
        drop(worker);
        // Backing off: no run to condemn, the crashed one included.
        assert_eq!(sup.current_run(0), None);
        assert_eq!(sup.condemn(second), Err(WorkerError::RunEnded { index: 0 }));
        assert!(matches!(
            sup.attach(0),
            Err(WorkerError::BackingOff { index: 0, .. })
        ));
        sup.tick(sup.now() + 10);
        let mut worker = sup.attach(0).unwrap();
        let Next::Run(job) = worker.try_next() else {
            panic!("the retry of task 2")
        };
        assert_eq!((*job.task(), job.context().attempt()), (2, 2));
        assert_eq!(sup.condemn(second), Err(WorkerError::RunEnded { index: 0 }));
        assert_eq!(sup.condemn(first), Err(WorkerError::RunEnded { index: 0 }));
        job.complete().unwrap();
        drop(worker);
        assert!(sup.snapshot().adds_up());
    }

    #[test]
    fn the_longest_watchdog_deadline_flags_a_hang_one_tick_past_it() {
        extern crate std;
        use crate::policy::MAX_DURATION;
        let sup: Supervisor<u8, 2, 1> =
            Supervisor::new(Policy::DEFAULT.with_watchdog(MAX_DURATION).unwrap(), NoPark);
        sup.tick(1_000);
        sup.try_submit(1).unwrap();
        let mut worker = sup.attach(0).unwrap();
        let Next::Run(job) = worker.try_next() else {
            panic!("task 1")
        };
        assert_eq!(sup.tick(1_000 + MAX_DURATION).count(), 0);
        assert_eq!(sup.worker_state(0), Some(WorkerState::Busy));
        let hung: std::vec::Vec<Run> = sup.tick(1_000 + MAX_DURATION + 1).collect();
        assert_eq!(hung, [job.context().run()]);
        assert_eq!(sup.worker_state(0), Some(WorkerState::Hung));
        job.complete().unwrap();
    }

    /// A supervisor whose restart intensity allows no crash at all, with a restart backoff:
    /// a crash charged to either would show (an escalation, or a delay).
    #[cfg(feature = "cancellation")]
    fn strict<const W: usize>(restart: crate::policy::Restart) -> Supervisor<u8, 4, W> {
        let mut policy = Policy::DEFAULT
            .with_restart(restart)
            .with_intensity(crate::policy::Intensity::new(0, 100).unwrap());
        #[cfg(feature = "backoff")]
        {
            policy = policy.with_backoff(crate::policy::Backoff::new(50, 2, 400).unwrap());
        }
        Supervisor::new(policy, NoPark)
    }

    #[cfg(feature = "cancellation")]
    #[test]
    fn a_cancelled_runs_death_is_reported_cancelled_and_charged_nothing() {
        use crate::policy::Restart;
        for restart in [Restart::Permanent, Restart::Transient, Restart::Temporary] {
            let sup = strict::<1>(restart);
            sup.try_submit(1).unwrap();
            sup.try_submit(2).unwrap();
            let mut worker = sup.attach(0).unwrap();
            let Next::Run(job) = worker.try_next() else {
                panic!("task 1 is queued")
            };
            sup.cancel(job.context().run()).unwrap();
            // Its late result is refused, and the worker crashed with the task in its slot.
            assert_eq!(job.complete(), Err(Condemned));
            assert!(matches!(worker.try_next(), Next::Exit));
            drop(worker);
            let report = sup.recover(0).unwrap();
            assert_eq!(report.task, Some(Disposition::Cancelled(1)), "{restart:?}");
            // Replaced at once (no backoff), whatever the restart kind, and no escalation
            // though the intensity allows no restart.
            assert_eq!((report.decision, report.delay), (Decision::Replace, 0));
            assert_eq!(sup.state(), SupervisorState::Running);
            let mut replacement = sup.attach(0).unwrap();
            let Next::Run(job) = replacement.try_next() else {
                panic!("task 2 is queued")
            };
            assert_eq!((*job.task(), job.context().attempt()), (2, 1));
            // A crash of an uncancelled run is still charged: the intensity escalates.
            let charged = job.crash();
            assert_ne!(charged.decision, Decision::Replace, "{restart:?}");
            drop(replacement);
            let snap = sup.snapshot();
            assert_eq!((snap.cancelled, snap.workers[0].cancelled), (1, 1));
            assert!(snap.adds_up());
        }
    }

    #[cfg(feature = "cancellation")]
    #[test]
    fn a_cancelled_run_ended_by_the_host_keeps_its_worker_and_ends_one_outcome() {
        let sup = strict::<2>(crate::policy::Restart::Permanent);
        for task in [1, 2, 3] {
            sup.try_submit(task).unwrap();
        }
        let mut worker = sup.attach(1).unwrap();
        let Next::Run(job) = worker.try_next() else {
            panic!("task 1 is queued")
        };
        let run = job.context().run();
        assert_eq!(sup.cancel(run), Ok(()));
        assert_eq!(sup.cancel(run), Ok(()), "idempotent");
        assert!(job.is_cancelled() && job.context().is_cancelled());
        assert_eq!(job.cancel(), Ok(1));
        assert_eq!(sup.cancel(run), Err(WorkerError::RunEnded { index: 1 }));
        // The same worker goes on; its next run is not cancelled.
        let Next::Run(job) = worker.try_next() else {
            panic!("task 2 is queued")
        };
        assert!(!job.is_cancelled() && !job.context().is_cancelled());
        // A run that was never cancelled may end cancelled too (its ticket was).
        assert_eq!(job.cancel(), Ok(2));
        let Next::Run(job) = worker.try_next() else {
            panic!("task 3 is queued")
        };
        assert_eq!(job.complete(), Ok(3));
        assert_eq!(sup.cancel(run), Err(WorkerError::RunEnded { index: 1 }));
        assert_eq!(
            sup.cancel(Run::from_parts(2, 0)),
            Err(WorkerError::NoSuchWorker {
                index: 2,
                workers: 2
            })
        );
        let snap = sup.snapshot();
        assert_eq!(
            (
                snap.cancelled,
                snap.completed,
                snap.crashes(),
                snap.restarts()
            ),
            (2, 1, 0, 0)
        );
        assert_eq!(
            (snap.workers[0].cancelled, snap.workers[1].cancelled),
            (0, 2)
        );
        assert!(snap.adds_up());
        drop(worker);
    }

    #[cfg(feature = "cancellation")]
    #[test]
    fn a_condemned_run_may_be_cancelled_and_a_cancelled_one_condemned() {
        for cancel_first in [false, true] {
            let sup = strict::<1>(crate::policy::Restart::Permanent);
            sup.try_submit(1).unwrap();
            let mut worker = sup.attach(0).unwrap();
            let Next::Run(job) = worker.try_next() else {
                panic!("task 1 is queued")
            };
            let run = job.context().run();
            if cancel_first {
                sup.cancel(run).unwrap();
                sup.condemn(run).unwrap();
            } else {
                sup.condemn(run).unwrap();
                assert!(job.is_cancelled(), "a condemned run is told to stop");
                sup.cancel(run).unwrap();
            }
            // Condemned: the host kills the worker; ending it cancelled is refused too.
            assert_eq!(job.cancel(), Err(Condemned));
            drop(worker);
            let report = sup.recover(0).unwrap();
            assert_eq!(report.task, Some(Disposition::Cancelled(1)));
            assert_eq!((report.decision, report.delay), (Decision::Replace, 0));
            assert_eq!(sup.state(), SupervisorState::Running);
        }
    }

    #[cfg(feature = "cancellation")]
    #[test]
    fn a_cancelled_runs_death_during_a_shutdown_retires_its_slot() {
        let sup = strict::<1>(crate::policy::Restart::Permanent);
        sup.try_submit(1).unwrap();
        let mut worker = sup.attach(0).unwrap();
        let Next::Run(job) = worker.try_next() else {
            panic!("task 1 is queued")
        };
        sup.cancel(job.context().run()).unwrap();
        sup.drain(); // nothing left queued: no replacement is needed
        drop(job);
        drop(worker);
        let report = sup.recover(0).unwrap();
        assert_eq!(report.task, Some(Disposition::Cancelled(1)));
        assert_eq!(report.decision, Decision::Retire);
        assert!(sup.is_stopped());
        let snap = sup.snapshot();
        assert_eq!((snap.cancelled, snap.restarts()), (1, 0));
        assert!(snap.adds_up());
    }

    #[cfg(feature = "deadlines")]
    #[test]
    fn a_runs_own_deadline_counts_from_its_start_and_overrides_the_watchdog() {
        // No policy watchdog: only the run's own deadline flags it.
        let sup: Supervisor<u8, 4, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
        for task in [1, 2, 3] {
            sup.try_submit(task).unwrap();
        }
        sup.tick(1_000);
        let mut worker = sup.attach(0).unwrap();
        let Next::Run(job) = worker.try_next() else {
            panic!("task 1 is queued")
        };
        assert!(sup.tick(5_000).is_empty(), "no deadline, no watchdog");
        job.set_deadline(4_010);
        for now in [5_001, 5_005, 5_010] {
            job.context().heartbeat(); // heartbeats do not extend it
            assert!(sup.tick(now).is_empty(), "at {now}");
        }
        assert_eq!(sup.tick(5_011).as_slice(), [job.context().run()]);
        job.complete().unwrap();
        // A new run starts without one.
        let Next::Run(job) = worker.try_next() else {
            panic!("task 2 is queued")
        };
        assert!(sup.tick(100_000).is_empty());
        job.complete().unwrap();
        drop(worker);

        // With a watchdog: a longer own deadline outlives it, a shorter one cuts it short.
        let sup = watched();
        sup.try_submit(1).unwrap();
        sup.try_submit(2).unwrap();
        let mut worker = sup.attach(0).unwrap();
        let Next::Run(job) = worker.try_next() else {
            panic!("task 1 is queued")
        };
        job.set_deadline(300);
        assert!(
            sup.tick(250).is_empty(),
            "the watchdog's 100 ticks are overridden"
        );
        assert_eq!(sup.tick(301).len(), 1);
        job.complete().unwrap();
        let Next::Run(job) = worker.try_next() else {
            panic!("task 2 is queued")
        };
        job.set_deadline(10);
        assert_eq!(sup.tick(312).as_slice(), [job.context().run()]);
        job.complete().unwrap();
        drop(worker);
    }

    #[cfg(feature = "deadlines")]
    #[test]
    fn an_own_deadline_holds_across_the_clock_wrapping_and_is_cut_to_the_longest() {
        let sup: Supervisor<u8, 4, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
        advance(&sup, u64::from(Tick::MAX - 5));
        assert_eq!(sup.now(), Tick::MAX - 5);
        sup.try_submit(1).unwrap();
        sup.try_submit(2).unwrap();
        let mut worker = sup.attach(0).unwrap();
        let Next::Run(job) = worker.try_next() else {
            panic!("task 1 is queued")
        };
        job.set_deadline(10);
        assert!(sup.tick(4).is_empty()); // 10 ticks after the start, across the wrap
        assert_eq!(sup.tick(5).len(), 1);
        job.complete().unwrap();
        let Next::Run(job) = worker.try_next() else {
            panic!("task 2 is queued")
        };
        job.set_deadline(Tick::MAX); // cut to MAX_DURATION: still a deadline, never "fresh"
        let start = sup.now();
        assert!(sup
            .tick(start.wrapping_add(crate::policy::MAX_DURATION))
            .is_empty());
        assert_eq!(
            sup.tick(start.wrapping_add(crate::policy::MAX_DURATION + 1))
                .len(),
            1
        );
        job.complete().unwrap();
        drop(worker);
    }
}
