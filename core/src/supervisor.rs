//! [`Supervisor`]: the task queue, the worker slots and the rules that tie them together.
//!
//! # The lifecycle
//!
//! ```text
//! Running ──drain──▶ Draining ──(no active worker)──▶ Stopped(Drain)
//!    │  └──────abort───▶ Aborting ──(no active worker)──▶ Stopped(Abort)
//!    └──intensity exceeded / no worker left──▶ Escalated ──▶ Stopped(Escalation)
//! Stopped ──reopen──▶ Running
//! ```
//!
//! The phase and the number of *active* worker slots share one 32-bit word, so "the last
//! worker left" and "a shutdown began" cannot pass each other: the supervisor stops exactly
//! when a shutdown phase meets zero active workers, whichever comes second. Neither shutdown
//! waits for anything: `drain` and `abort` flip the word, close the queue, wake every parked
//! thread and return. Workers leave at their next step; [`Supervisor::wait_stopped`] is for a
//! host that wants to block until they have.
//!
//! | phase bits | meaning |
//! |---|---|
//! | 0–1 | Running, Draining, Aborting, Escalated |
//! | 2 | stopped |
//! | 3–31 | active worker slots (every state but Vacant, Exited, Retired) |
//!
//! # Invariants
//!
//! 1. A task is in exactly one place: the queue, a worker slot's cell (running, or kept for
//!    its retry), or the caller's hands (refused, completed, failed, dead-lettered, lost,
//!    handed back). Every move between places is one CAS or one claimed queue slot.
//! 2. No lock is held across task code; the only lock (the restart log) is taken on crashes
//!    and normal exits, never on the task path.
//! 3. The counters add up at every instant a [`Snapshot`] can observe (see [`crate::stats`]).

use core::fmt;
use core::mem::{ManuallyDrop, MaybeUninit};

use heapless::{Deque, Vec};

use crate::park::{NoPark, Park, Signal};
use crate::policy::{Delivery, Intensity, Policy, Tick};
use crate::queue::{PopError, PushError, Queue};
use crate::stats::{Counters, Ends, Raw, Snapshot, WorkerSnapshot, COUNT_MASK};
use crate::sync::{array_of, fence, loom_const_fn, AtomicU32, CachePadded, Mutex, Ordering};
use crate::worker::{
    code, with_code, Envelope, Slot, Worker, WorkerState, BUSY, CRASHED, EXITED, EXITING, HAS_TASK,
    HUNG, IDLE, RECOVERING, RESTARTING, RETIRED, STARTING, TERMINATING, VACANT,
};

const PHASE_MASK: u32 = 0b11;
const RUNNING: u32 = 0;
const DRAINING: u32 = 1;
const ABORTING: u32 = 2;
const ESCALATED: u32 = 3;
const STOPPED: u32 = 0b100;
const ACTIVE_ONE: u32 = 0b1000;
/// Ticks are compared in wrapping order: `a` is after `b` if `a - b` (wrapping) is below this.
const HALF_RANGE: Tick = Tick::MAX / 2 + 1;

/// How a supervisor shut down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shutdown {
    /// [`Supervisor::drain`]: everything queued was run.
    Drain,
    /// [`Supervisor::abort`]: queued tasks were left for [`Supervisor::hand_back`].
    Abort,
    /// The restart intensity was exceeded, or no worker was left.
    Escalation,
}

/// Where a supervisor is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SupervisorState {
    /// Accepting and running tasks.
    Running,
    /// No longer accepting; workers finish everything queued, then leave.
    Draining,
    /// No longer accepting; workers leave after their current task.
    Aborting,
    /// The restart intensity was exceeded (or no worker was left): no longer accepting;
    /// workers leave after their current task.
    Escalated,
    /// Every worker has left.
    Stopped(Shutdown),
}

impl SupervisorState {
    const fn from_word(word: u32) -> Self {
        let shutdown = match word & PHASE_MASK {
            RUNNING => return SupervisorState::Running,
            DRAINING => Shutdown::Drain,
            ABORTING => Shutdown::Abort,
            _ => Shutdown::Escalation,
        };
        if word & STOPPED != 0 {
            return SupervisorState::Stopped(shutdown);
        }
        match shutdown {
            Shutdown::Drain => SupervisorState::Draining,
            Shutdown::Abort => SupervisorState::Aborting,
            Shutdown::Escalation => SupervisorState::Escalated,
        }
    }

    /// A short lowercase name, for logs and user interfaces.
    ///
    /// ```
    /// use foreman_rt::{Shutdown, SupervisorState};
    /// assert_eq!(SupervisorState::Stopped(Shutdown::Drain).name(), "stopped");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            SupervisorState::Running => "running",
            SupervisorState::Draining => "draining",
            SupervisorState::Aborting => "aborting",
            SupervisorState::Escalated => "escalated",
            SupervisorState::Stopped(_) => "stopped",
        }
    }
}

impl fmt::Display for SupervisorState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a submission was refused. The task comes back inside: nothing is dropped.
#[derive(Clone, Copy, PartialEq, Eq)]
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

impl<T> From<PushError<Envelope<T>>> for SubmitError<T> {
    fn from(err: PushError<Envelope<T>>) -> Self {
        match err {
            PushError::Full(envelope) => SubmitError::Full(envelope.task),
            PushError::Closed(envelope) => SubmitError::Closed(envelope.task),
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
        }
    }
}

impl core::error::Error for WorkerError {}

/// Why [`Supervisor::reopen`] was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Start a replacement: attach a new worker to the same slot.
    Replace,
    /// No replacement: the slot is retired (or exited).
    Retire,
    /// The restart intensity was exceeded: no replacement, and the supervisor escalated.
    Escalate,
}

/// What became of the task a crashed worker was running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition<T> {
    /// Kept in the slot: the worker's replacement runs it first, as run number `attempt`.
    Retried {
        /// The run number of the retry (2 for the first retry).
        attempt: u32,
    },
    /// Put back into the queue (the worker is not replaced), to run as run number `attempt`.
    Requeued {
        /// The run number of the retry.
        attempt: u32,
    },
    /// Every allowed attempt crashed: the task is handed to the host, not run again.
    DeadLettered {
        /// The task.
        task: T,
        /// How many runs of it started (each of them crashed).
        attempts: u32,
    },
    /// At-most-once: the task may have had effects; it is not run again.
    Lost(T),
    /// A retry was due but cannot happen (shutting down, or no room in the queue).
    HandedBack(T),
}

/// The outcome of recovering a crashed worker: what happened to its task, and whether the
/// host must start a replacement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "the report may hold a task (dead-lettered, lost or handed back) and may ask for a replacement worker"]
pub struct CrashReport<T> {
    /// The crashed worker's index.
    pub worker: usize,
    /// Its task, if it was running one.
    pub task: Option<Disposition<T>>,
    /// Whether to replace it.
    pub decision: Decision,
}

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
    /// Phase, stopped flag and active count (see the module docs). Read by every `next`.
    phase: CachePadded<AtomicU32>,
    /// The host's clock as of the last `tick`; stamps task starts for the watchdog.
    clock: CachePadded<AtomicU32>,
    /// Idle workers sleep here; submissions wake them.
    work: CachePadded<Signal>,
    /// Submitters facing a full queue sleep here; pops wake them.
    space: CachePadded<Signal>,
    /// Idle workers of a drain sleep here while peers still hold tasks; finishes wake them.
    drained: CachePadded<Signal>,
    counters: CachePadded<Counters>,
    slots: [CachePadded<Slot<T>>; W],
    /// When the last restarts happened, for the intensity limit. Crash path only.
    restart_log: Mutex<Deque<Tick, { Intensity::MAX_RESTARTS as usize }>>,
    policy: Policy,
    park: P,
}

// SAFETY: tasks move between threads through the queue and the slots' cells, and each task
// is only ever reached by one thread at a time (invariant 1 and the worker module's
// invariants), so `T: Send` suffices; the host's `Park` is shared by all threads.
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
                phase: CachePadded::new(AtomicU32::new(RUNNING)),
                clock: CachePadded::new(AtomicU32::new(0)),
                work: CachePadded::new(Signal::new()),
                space: CachePadded::new(Signal::new()),
                drained: CachePadded::new(Signal::new()),
                counters: CachePadded::new(Counters::new()),
                slots: array_of![CachePadded::new(Slot::new()); W],
                restart_log: Mutex::new(Deque::new()),
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
            (&raw mut (*this).phase).write(CachePadded::new(AtomicU32::new(RUNNING)));
            (&raw mut (*this).clock).write(CachePadded::new(AtomicU32::new(0)));
            (&raw mut (*this).work).write(CachePadded::new(Signal::new()));
            (&raw mut (*this).space).write(CachePadded::new(Signal::new()));
            (&raw mut (*this).drained).write(CachePadded::new(Signal::new()));
            (&raw mut (*this).counters).write(CachePadded::new(Counters::new()));
            let slots = (&raw mut (*this).slots).cast::<CachePadded<Slot<T>>>();
            for index in 0..W {
                Slot::init(slots.add(index).cast::<Slot<T>>());
            }
            (&raw mut (*this).restart_log).write(Mutex::new(Deque::new()));
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

    pub(crate) fn slot(&self, index: usize) -> &Slot<T> {
        &self.slots[index]
    }

    fn slot_checked(&self, index: usize) -> Result<&Slot<T>, WorkerError> {
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
        match self.queue.try_push(Envelope { task, attempt: 0 }) {
            Ok(()) => {
                // The push's SeqCst tail CAS is the condition change `notify_one` needs.
                self.work.notify_one(&self.park);
                Ok(())
            }
            Err(err) => {
                Counters::bump(&self.counters.rejected);
                Err(err.into())
            }
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
        let mut envelope = Envelope { task, attempt: 0 };
        loop {
            match self.queue.push_unless_nearly_full(envelope) {
                Ok(()) => {
                    self.work.notify_one(&self.park);
                    return Ok(());
                }
                Err(PushError::Closed(envelope)) => {
                    Counters::bump(&self.counters.rejected);
                    return Err(SubmitError::Closed(envelope.task));
                }
                Err(PushError::Full(back)) => {
                    envelope = back;
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
        if self.space.has_sleepers() && self.queue.len() <= N / 2 {
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
        // SeqCst loads here, in `is_empty` and in `tasks_out`: the re-check half of the
        // event-count protocol, against the submitters' tail CAS, the shutdowns' phase CAS and
        // the finishing workers' state CAS.
        let draining = self.phase.load(Ordering::SeqCst) & PHASE_MASK == DRAINING;
        let signal = if draining { &self.drained } else { &self.work };
        let key = signal.prepare();
        let nothing_to_do = match self.phase.load(Ordering::SeqCst) & PHASE_MASK {
            RUNNING => !draining && self.queue.is_empty(),
            // Draining: sleep while the queue is empty and either not closed yet (the drain
            // closes it next, then wakes us) or a peer's task may still crash back into it.
            DRAINING => {
                draining && self.queue.is_empty() && (!self.queue.is_closed() || self.tasks_out())
            }
            _ => false,
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
        self.claim_vacant(index, &CLAIM_FOR_START)?;
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
        transition(&slot.state, index, &RELEASE)?;
        self.deactivate();
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
        // Acquire: see the state a recoverer left (and the retry in the cell).
        let word = slot.state.load(Ordering::Acquire);
        let attached = if code(word) == VACANT {
            self.claim_vacant(index, &CLAIM_FOR_ATTACH).map(drop)
        } else {
            transition(&slot.state, index, &ATTACH_AWAITED).map(drop)
        };
        match attached {
            Ok(()) => Ok(Worker::new(self, index)),
            // An abort or escalation swept the reservation away under us.
            Err(WorkerError::WrongState { .. }) if self.stops_workers() => {
                Err(WorkerError::ShuttingDown)
            }
            Err(err) => Err(err),
        }
    }

    /// Vacant → Starting or Idle (`moves`), counting the slot as active; undone if the supervisor takes no
    /// workers.
    fn claim_vacant(&self, index: usize, moves: &Moves) -> Result<(), WorkerError> {
        let slot = self.slot_checked(index)?;
        let word = transition(&slot.state, index, moves)?;
        if self.activate().is_err() {
            // Release: the slot is ours (we just claimed it); hand it back as it was.
            slot.state.store(word, Ordering::Release);
            return Err(WorkerError::ShuttingDown);
        }
        Ok(())
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
    /// let _report = job.crash(0); // asks for a replacement, keeps the task for it
    /// drop(worker);
    /// assert_eq!(sup.retire(0), Ok(Some(7)));
    /// assert_eq!(sup.worker_state(0), Some(WorkerState::Retired));
    /// assert_eq!(sup.snapshot().handed_back, 1);
    /// ```
    pub fn retire(&self, index: usize) -> Result<Option<T>, WorkerError> {
        let slot = self.slot_checked(index)?;
        // Acquire: the recoverer's Release store of the retry.
        let word = transition(&slot.state, index, &RETIRE)?;
        let task = if word & HAS_TASK != 0 {
            // SAFETY: we moved the slot from Restarting to Recovering, which makes the cell
            // ours (worker invariant 2), and HAS_TASK says it holds the retry.
            let envelope = unsafe { slot.take() };
            Counters::bump(&self.counters.handed_back);
            Some(envelope.task)
        } else {
            None
        };
        // Release: ends our use of the cell.
        slot.state
            .store(with_code(word & !HAS_TASK, RETIRED), Ordering::Release);
        self.deactivate();
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
        // Acquire: a snapshot of the slot.
        self.slots
            .get(index)
            .map(|slot| WorkerState::from_word(slot.state.load(Ordering::Acquire)))
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
        // Acquire: a snapshot; what the stopping thread did before is visible.
        SupervisorState::from_word(self.phase.load(Ordering::Acquire))
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
        // Acquire: as in `state`.
        self.phase.load(Ordering::Acquire) & STOPPED != 0
    }

    /// Whether a drain must keep an idle worker: the queue is closed and empty, but a peer
    /// still holds a task that a crash could put back into it.
    pub(crate) fn drain_waits(&self) -> bool {
        // SeqCst: see `wait_for_work`.
        self.phase.load(Ordering::SeqCst) & PHASE_MASK == DRAINING && self.tasks_out()
    }

    /// Whether any slot holds a task that may still come back to the queue.
    fn tasks_out(&self) -> bool {
        self.slots.iter().any(|slot| {
            // SeqCst: the re-check of a drain waiter, against the SeqCst state changes of
            // finishing and recovering workers (Dekker through the `drained` signal).
            let state = code(slot.state.load(Ordering::SeqCst));
            matches!(state, BUSY | HUNG | TERMINATING | CRASHED | RECOVERING)
        })
    }

    /// A task left a worker (finished, or its crash was recovered): wake the workers a drain
    /// keeps waiting for exactly that. Nobody waits there outside a drain, and then this
    /// costs one load.
    #[inline]
    pub(crate) fn task_returned(&self) {
        // The caller's SeqCst state change is the condition change `notify_all` needs.
        self.drained.notify_all(&self.park);
    }

    /// Whether workers must leave now (abort or escalation).
    #[inline]
    pub(crate) fn stops_workers(&self) -> bool {
        // Acquire: as in `state`. A worker that reads a stale phase runs one more task, which
        // it took from the queue before the shutdown's hand-back could.
        matches!(
            self.phase.load(Ordering::Acquire) & PHASE_MASK,
            ABORTING | ESCALATED
        )
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
        self.shut_down(DRAINING)
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
        self.shut_down(ABORTING)
    }

    /// Moves to the `target` shutdown phase unless a stronger one is under way.
    fn shut_down(&self, target: u32) -> SupervisorState {
        // Relaxed: a first guess for the CAS loop.
        let mut word = self.phase.load(Ordering::Relaxed);
        let new = loop {
            let phase = word & PHASE_MASK;
            // Strength: Running < Draining < Aborting = Escalated.
            let stronger_already = word & STOPPED != 0
                || phase == target
                || phase == ABORTING
                || phase == ESCALATED
                || (phase == DRAINING && target == DRAINING);
            if stronger_already {
                return SupervisorState::from_word(word);
            }
            let mut new = (word & !PHASE_MASK) | target;
            if new >> 3 == 0 {
                new |= STOPPED;
            }
            // SeqCst: workers parked on the work signal re-check the phase with SeqCst loads
            // (Dekker with `notify_all` below); AcqRel for the stop waiters.
            match self
                .phase
                .compare_exchange_weak(word, new, Ordering::SeqCst, Ordering::Relaxed)
            {
                Ok(_) => break new,
                Err(current) => word = current,
            }
        };
        self.queue.close();
        if target != DRAINING {
            self.sweep_pending_starts();
        }
        self.wake_every_waiter();
        if new & STOPPED != 0 {
            self.park.unpark_all(&self.phase);
        }
        self.state()
    }

    /// A slot was just made Restarting. If an abort or escalation swept the slots before
    /// that, sweep again: no replacement will come, and the slot must not keep the
    /// supervisor from stopping.
    fn settle_restart(&self) {
        // SeqCst fence, paired with the one in `sweep_pending_starts` (Dekker): either this
        // phase load sees the shutdown, or the shutdown's sweep sees our Restarting store.
        fence(Ordering::SeqCst);
        if self.stops_workers() {
            self.sweep_pending_starts();
        }
    }

    /// On abort or escalation, no replacement will be needed: reserved slots become Vacant
    /// again, Restarting slots Retired (a retry they hold waits for `hand_back`).
    fn sweep_pending_starts(&self) {
        // SeqCst fence: see `settle_restart`.
        fence(Ordering::SeqCst);
        for (index, slot) in self.slots.iter().enumerate() {
            let swept = transition(&slot.state, index, &SWEEP);
            if swept.is_ok() {
                self.deactivate();
            }
        }
    }

    /// Counts one more active slot, unless the supervisor takes no new workers.
    fn activate(&self) -> Result<(), WorkerError> {
        // Relaxed: a first guess for the CAS loop.
        let mut word = self.phase.load(Ordering::Relaxed);
        loop {
            if word & STOPPED != 0 || matches!(word & PHASE_MASK, ABORTING | ESCALATED) {
                return Err(WorkerError::ShuttingDown);
            }
            // SeqCst: one total order with the shutdowns' CAS on the same word.
            match self.phase.compare_exchange_weak(
                word,
                word + ACTIVE_ONE,
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(current) => word = current,
            }
        }
    }

    /// Counts one active slot fewer. The last one stops a shutting-down supervisor, and
    /// escalates a running one (no worker left to run its tasks).
    pub(crate) fn deactivate(&self) {
        // Relaxed: a first guess for the CAS loop.
        let mut word = self.phase.load(Ordering::Relaxed);
        let (old, new) = loop {
            let mut new = word - ACTIVE_ONE;
            if new >> 3 == 0 {
                if new & PHASE_MASK == RUNNING {
                    new |= ESCALATED;
                }
                new |= STOPPED;
            }
            // SeqCst: as in `activate`; Release also publishes the leaving worker's writes to
            // whoever sees the supervisor stopped.
            match self
                .phase
                .compare_exchange_weak(word, new, Ordering::SeqCst, Ordering::Relaxed)
            {
                Ok(_) => break (word, new),
                Err(current) => word = current,
            }
        };
        if new & STOPPED != 0 && old & STOPPED == 0 {
            // Closing matters after an escalation from Running; otherwise it is a no-op.
            self.queue.close();
            self.wake_every_waiter();
            self.park.unpark_all(&self.phase);
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
        loop {
            // Acquire: see everything the last worker did.
            let word = self.phase.load(Ordering::Acquire);
            if word & STOPPED != 0 {
                return;
            }
            self.park.park(&self.phase, word);
        }
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
        // Acquire: see the slots as the last worker left them.
        let word = self.phase.load(Ordering::Acquire);
        if word & STOPPED == 0 {
            return Err(ReopenError::NotStopped(SupervisorState::from_word(word)));
        }
        // Stopped: no worker is active, so nothing can enter the queue or a slot meanwhile
        // (the queue is closed, and only an active slot's recovery pushes past the close).
        // Acquire: as above, per slot.
        if !self.queue.is_empty()
            || self
                .slots
                .iter()
                .any(|slot| slot.state.load(Ordering::Acquire) & HAS_TASK != 0)
        {
            return Err(ReopenError::TasksHeld);
        }
        for (index, slot) in self.slots.iter().enumerate() {
            let _ = transition(&slot.state, index, &REOPEN);
        }
        self.queue.reopen();
        // SeqCst: one total order with the CAS loops on this word; stopped means no active
        // slot, so no other thread writes it concurrently except a racing `reopen`.
        match self
            .phase
            .compare_exchange(word, RUNNING, Ordering::SeqCst, Ordering::Acquire)
        {
            Ok(_) => Ok(()),
            Err(current) => Err(ReopenError::NotStopped(SupervisorState::from_word(current))),
        }
    }

    // ----- crashes and the watchdog -------------------------------------------------------

    /// Feeds the host's clock and runs the watchdog: a worker Busy on one task for more than
    /// the policy's deadline since its last heartbeat is flagged [`WorkerState::Hung`].
    /// Returns the workers flagged by this call (each hang is reported once).
    ///
    /// What to do about a hung worker is the host's call: wait, or
    /// [`condemn`](Self::condemn) it and kill its thread.
    ///
    /// Several threads may tick: the clock only moves forward, and a `now` behind the clock
    /// moves nothing. A host's clock should therefore start near zero and never jump by
    /// `u32::MAX / 2` ticks or more between two ticks (see [`Tick`]).
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
    /// assert_eq!(sup.tick(1_101).as_slice(), [0]);
    /// assert_eq!(sup.worker_state(0), Some(WorkerState::Hung));
    /// assert!(sup.tick(1_200).is_empty()); // reported once
    /// job.complete().unwrap(); // a hung task may still finish normally
    /// ```
    pub fn tick(&self, now: Tick) -> Vec<usize, W> {
        // The clock only moves forward (in wrapping order), so several threads may tick.
        // Relaxed: the clock is advisory (heartbeat stamps); nothing is published with it.
        let mut clock = self.clock.load(Ordering::Relaxed);
        while now != clock && now.wrapping_sub(clock) < HALF_RANGE {
            // Relaxed: as above.
            match self
                .clock
                .compare_exchange_weak(clock, now, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(current) => clock = current,
            }
        }
        let mut hung = Vec::new();
        let Some(deadline) = self.policy.watchdog() else {
            return hung;
        };
        for (index, slot) in self.slots.iter().enumerate() {
            // Acquire: pairs with the worker's Release store of Busy, which follows its
            // heartbeat store, so the heartbeat read below is this task's or newer.
            let word = slot.state.load(Ordering::Acquire);
            if code(word) != BUSY {
                continue;
            }
            // Relaxed: ordered by the Acquire above.
            let heartbeat = slot.heartbeat.load(Ordering::Relaxed);
            // A heartbeat stamped after `now` (another thread ticked the clock further) is
            // fresh, not 4 billion ticks old.
            let age = now.wrapping_sub(heartbeat);
            if age <= deadline || age >= HALF_RANGE {
                continue;
            }
            // Relaxed: the flag publishes nothing. The CAS fails if the worker finished or
            // started another task meanwhile (the generation in `word` changed).
            if slot
                .state
                .compare_exchange(
                    word,
                    with_code(word, HUNG),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
            {
                // Cannot fail: at most one entry per slot.
                let _ = hung.push(index);
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

    /// Condemns a busy or hung worker before the host kills its thread: from now on the
    /// worker can no longer record its task's outcome or touch the queue, so killing it
    /// cannot leave the queue half-updated. Then, once the thread is dead,
    /// [`declare_dead`](Self::declare_dead) and [`recover`](Self::recover).
    ///
    /// Fails (and the host must not kill the thread) if the worker is no longer busy.
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Condemned, Next, Supervisor};
    /// let sup: Supervisor<u8, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// sup.try_submit(1).unwrap();
    /// let mut worker = sup.attach(0).unwrap();
    /// let Next::Run(job) = worker.try_next() else { unreachable!() };
    /// sup.condemn(0).unwrap();
    /// // Had the thread not been killed, it could not record its outcome:
    /// assert_eq!(job.complete(), Err(Condemned));
    /// let report = sup.recover(0, 0).unwrap();
    /// assert!(report.task.is_some());
    /// # drop(worker);
    /// ```
    pub fn condemn(&self, index: usize) -> Result<(), WorkerError> {
        let slot = self.slot_checked(index)?;
        transition(&slot.state, index, &CONDEMN)?;
        Ok(())
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
    /// let report = sup.recover(0, 0).unwrap();
    /// assert!(report.task.is_some());
    /// ```
    pub unsafe fn declare_dead(&self, index: usize) -> Result<(), WorkerError> {
        let slot = self.slot_checked(index)?;
        let word = transition(&slot.state, index, &DECLARE_DEAD)?;
        if code(word) == EXITING {
            self.deactivate();
        }
        Ok(())
    }

    /// Recovers a crashed worker: its task is retried, requeued, dead-lettered, reported lost
    /// or handed back per the [`Delivery`] policy, and the [`Restart`](crate::policy::Restart)
    /// policy and intensity decide whether the host must attach a replacement
    /// ([`Decision::Replace`]) or the supervisor escalates. `now` is the host's clock.
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
    /// let report = sup.recover(0, 0).unwrap();
    /// assert_eq!(report.task, Some(Disposition::Lost(3)));
    /// assert_eq!(report.decision, Decision::Replace);
    /// assert_eq!(sup.snapshot().lost, 1);
    /// # drop(worker);
    /// ```
    pub fn recover(&self, index: usize, now: Tick) -> Result<CrashReport<T>, WorkerError> {
        let slot = self.slot_checked(index)?;
        let word = transition(&slot.state, index, &RECOVER)?;
        Ok(self.recover_claimed(index, word, now))
    }

    /// Recovery proper, once the caller moved the slot to Recovering from `word`.
    pub(crate) fn recover_claimed(&self, index: usize, word: u32, now: Tick) -> CrashReport<T> {
        let slot = self.slot(index);
        // Relaxed load + store: the recoverer is the only writer (Recovering is exclusive).
        slot.crashes.store(
            slot.crashes.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
        let decision = self.decide(true, now);
        let mut keep = false;
        let task = (word & HAS_TASK != 0).then(|| {
            // SAFETY: Recovering makes the cell ours (worker invariant 2) and HAS_TASK says it
            // holds the crashed worker's task.
            let envelope = unsafe { slot.take() };
            let (disposition, kept) = self.dispose(slot, envelope, decision);
            keep = kept;
            disposition
        });
        if decision == Decision::Escalate {
            self.shut_down(ESCALATED);
        }
        let flags = if keep { HAS_TASK } else { 0 };
        let state = if decision == Decision::Replace {
            // Relaxed load + store: as for `crashes`.
            slot.restarts.store(
                slot.restarts.load(Ordering::Relaxed).wrapping_add(1),
                Ordering::Relaxed,
            );
            RESTARTING
        } else {
            RETIRED
        };
        // Release: publishes the retry in the cell to the replacement's Acquire in `attach`;
        // SeqCst: a draining peer's re-check must see the task gone (see `tasks_out`).
        slot.state.store(
            with_code((word & !HAS_TASK) | flags, state),
            Ordering::SeqCst,
        );
        if state == RETIRED {
            self.deactivate();
        } else {
            self.settle_restart();
        }
        self.task_returned();
        CrashReport {
            worker: index,
            task,
            decision,
        }
    }

    /// Decides what happens to a crashed worker's task. Returns the disposition and whether
    /// the task was put back into the slot's cell for the replacement.
    fn dispose(
        &self,
        slot: &Slot<T>,
        envelope: Envelope<T>,
        decision: Decision,
    ) -> (Disposition<T>, bool) {
        let Delivery::AtLeastOnce { max_attempts } = self.policy.delivery() else {
            Counters::bump(&self.counters.lost);
            return (Disposition::Lost(envelope.task), false);
        };
        // Runs that started: a retry whose worker died before starting it is not charged.
        let runs = envelope.attempt;
        if runs >= max_attempts.get() {
            Counters::bump(&self.counters.dead_lettered);
            return (
                Disposition::DeadLettered {
                    task: envelope.task,
                    attempts: runs,
                },
                false,
            );
        }
        let retry = envelope;
        match decision {
            Decision::Replace => {
                // SAFETY: the caller holds the slot in Recovering and took the old envelope
                // out: the cell is ours and empty.
                unsafe { slot.put(retry) };
                (Disposition::Retried { attempt: runs + 1 }, true)
            }
            Decision::Retire if !self.stops_workers() => {
                // Counted before the push, so that a snapshot that sees the task in the queue
                // also sees this attempt ended (see `stats`).
                Counters::bump(&self.counters.requeued);
                match self.queue.push_ignoring_close(retry) {
                    Ok(()) => {
                        self.work.notify_one(&self.park);
                        (Disposition::Requeued { attempt: runs + 1 }, false)
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
                (Disposition::HandedBack(retry.task), false)
            }
        }
    }

    /// A worker left while the supervisor runs (its handle was dropped while Idle): replace it
    /// per the restart policy (a retry it held stays for the replacement) or let it go.
    pub(crate) fn end_normally(&self, index: usize, word: u32) -> Decision {
        let slot = self.slot(index);
        let decision = self.decide(false, self.now());
        if decision == Decision::Escalate {
            self.shut_down(ESCALATED);
        }
        if decision == Decision::Replace {
            // Relaxed load + store: the exiting worker is the slot's only writer.
            slot.restarts.store(
                slot.restarts.load(Ordering::Relaxed).wrapping_add(1),
                Ordering::Relaxed,
            );
            // Release: a kept retry in the cell is published to the replacement.
            slot.state
                .store(with_code(word, RESTARTING), Ordering::Release);
            self.settle_restart();
        } else {
            // Release: as above; a kept retry waits for `hand_back`.
            slot.state.store(with_code(word, EXITED), Ordering::Release);
            self.deactivate();
        }
        decision
    }

    /// Whether an ended worker is replaced: the restart policy, the phase (no restarts during
    /// a shutdown, except crashes while draining), then the intensity limit.
    fn decide(&self, crashed: bool, now: Tick) -> Decision {
        // Acquire: as in `state`.
        let word = self.phase.load(Ordering::Acquire);
        let phase_allows = word & STOPPED == 0
            && match word & PHASE_MASK {
                RUNNING => true,
                DRAINING => crashed,
                _ => false,
            };
        if !phase_allows || !self.policy.restart().replaces(crashed) {
            return Decision::Retire;
        }
        let Some((max_restarts, within)) = self.policy.intensity().limit() else {
            return Decision::Replace;
        };
        let mut log = self.restart_log.lock();
        while let Some(&at) = log.front() {
            if now.wrapping_sub(at) < within.get() {
                break;
            }
            log.pop_front();
        }
        if log.len() >= usize::from(max_restarts) {
            return Decision::Escalate;
        }
        // Cannot fail: fewer than `max_restarts <= MAX_RESTARTS` entries remain.
        let _ = log.push_back(now);
        Decision::Replace
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
        // Read in the order `stats` explains: outcomes, requeues begun, positions at one
        // instant, requeues begun again; then the outcomes again, to know whether the snapshot
        // is the counts of one instant.
        const EXACT_TRIES: u32 = 4;
        let counters = &self.counters;
        let mut tries = 0;
        loop {
            let (workers, ends) = self.read_ends();
            let requeued = Counters::read(&counters.requeued);
            let (popped, pushed) = self.queue.counts();
            if Counters::read(&counters.requeued) != requeued {
                continue; // a requeue began meanwhile: its task may be queued uncounted
            }
            tries += 1;
            if tries < EXACT_TRIES && self.read_ends().1 != ends {
                continue; // a task ended meanwhile: try for one instant again
            }
            let raw = Raw {
                ends,
                requeued,
                rejected: Counters::read(&counters.rejected),
                popped,
                pushed,
            };
            return Snapshot::derive(self.state(), raw, workers);
        }
    }

    /// Step 1 of a snapshot (see `stats`): each worker, and the counts of ended attempts.
    fn read_ends(&self) -> ([WorkerSnapshot; W], Ends) {
        let workers: [WorkerSnapshot; W] = core::array::from_fn(|index| {
            let slot = self.slot(index);
            WorkerSnapshot {
                // Acquire: a snapshot of the slot.
                state: WorkerState::from_word(slot.state.load(Ordering::Acquire)),
                completed: Counters::read(&slot.completed),
                failed: Counters::read(&slot.failed),
                // Relaxed: informational, not part of the identity.
                crashes: slot.crashes.load(Ordering::Relaxed),
                // Relaxed: informational, not part of the identity.
                restarts: slot.restarts.load(Ordering::Relaxed),
            }
        });
        let sum =
            |f: fn(&WorkerSnapshot) -> usize| workers.iter().map(f).fold(0, usize::wrapping_add);
        let ends = Ends::read(
            &self.counters,
            sum(|w| w.completed) & COUNT_MASK,
            sum(|w| w.failed) & COUNT_MASK,
        );
        (workers, ends)
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
            // Relaxed: `&mut self`, no other thread.
            if slot.state.load(Ordering::Relaxed) & HAS_TASK != 0 {
                // SAFETY: with `&mut self` no worker handle exists (they borrow the
                // supervisor), so HAS_TASK means the cell holds a task nobody else owns.
                drop(unsafe { slot.take() });
            }
        }
    }
}

/// A table of allowed state changes for [`transition`]: the new state code for each current
/// one, or [`Moves::NONE`].
struct Moves([u8; 12]);

impl Moves {
    const NONE: u8 = u8::MAX;

    const fn new(pairs: &[(u32, u32)]) -> Moves {
        let mut to = [Moves::NONE; 12];
        let mut i = 0;
        while i < pairs.len() {
            to[pairs[i].0 as usize] = pairs[i].1 as u8;
            i += 1;
        }
        Moves(to)
    }
}

const CLAIM_FOR_START: Moves = Moves::new(&[(VACANT, STARTING)]);
const CLAIM_FOR_ATTACH: Moves = Moves::new(&[(VACANT, IDLE)]);
const ATTACH_AWAITED: Moves = Moves::new(&[(STARTING, IDLE), (RESTARTING, IDLE)]);
const RELEASE: Moves = Moves::new(&[(STARTING, VACANT)]);
const RETIRE: Moves = Moves::new(&[(RESTARTING, RECOVERING)]);
const SWEEP: Moves = Moves::new(&[(STARTING, VACANT), (RESTARTING, RETIRED)]);
const REOPEN: Moves = Moves::new(&[(EXITED, VACANT), (RETIRED, VACANT)]);
const CONDEMN: Moves = Moves::new(&[(BUSY, TERMINATING), (HUNG, TERMINATING)]);
const RECOVER: Moves = Moves::new(&[(CRASHED, RECOVERING)]);
const DECLARE_DEAD: Moves = Moves::new(&[
    (STARTING, CRASHED),
    (IDLE, CRASHED),
    (BUSY, CRASHED),
    (HUNG, CRASHED),
    (TERMINATING, CRASHED),
    (CRASHED, CRASHED),
    (EXITING, EXITED),
]);

/// CAS loop on slot `index`'s state word, changing its state code as `moves` allows. Returns
/// the word it replaced. Table-driven rather than generic so that one copy serves every
/// transition (firmware pays for each copy in flash).
fn transition(state: &AtomicU32, index: usize, moves: &Moves) -> Result<u32, WorkerError> {
    // Acquire: every transition here may go on to read what the previous owner wrote.
    let mut word = state.load(Ordering::Acquire);
    loop {
        let to = moves
            .0
            .get(code(word) as usize)
            .copied()
            .unwrap_or(Moves::NONE);
        if to == Moves::NONE {
            return Err(WorkerError::WrongState {
                index,
                state: WorkerState::from_word(word),
            });
        }
        // AcqRel: Acquire as above; Release publishes whatever the caller did before.
        match state.compare_exchange_weak(
            word,
            with_code(word, u32::from(to)),
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => return Ok(word),
            Err(current) => word = current,
        }
    }
}

/// The iterator returned by [`Supervisor::hand_back`].
pub struct HandBack<'s, T, const N: usize, const W: usize, P: Park> {
    sup: &'s Supervisor<T, N, W, P>,
    next_slot: usize,
}

impl<T, const N: usize, const W: usize, P: Park> Iterator for HandBack<'_, T, N, W, P> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        let sup = self.sup;
        match sup.state() {
            SupervisorState::Running | SupervisorState::Draining => return None,
            _ => {}
        }
        if let Ok(envelope) = sup.queue.try_pop() {
            Counters::bump(&sup.counters.handed_back);
            return Some(envelope.task);
        }
        while let Some(slot) = sup.slots.get(self.next_slot) {
            // Acquire: pairs with the Release store that left the retry in the cell.
            let word = slot.state.load(Ordering::Acquire);
            if word & HAS_TASK != 0 && matches!(code(word), EXITED | RETIRED) {
                // SAFETY: a terminal slot with HAS_TASK holds a task, and nobody writes the
                // cell while the flag is set (no worker is attached; `reopen` refuses). Other
                // hand-backs may read it too: only the one whose CAS clears the flag keeps
                // its copy, the others forget theirs.
                let envelope = ManuallyDrop::new(unsafe { slot.take() });
                // AcqRel: ordered with the cell's last writer and with racing claimers.
                if slot
                    .state
                    .compare_exchange(word, word & !HAS_TASK, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                {
                    Counters::bump(&sup.counters.handed_back);
                    return Some(ManuallyDrop::into_inner(envelope).task);
                }
                continue; // lost a race with another hand-back: look at this slot again
            }
            self.next_slot += 1;
        }
        None
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::Next;

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
            assert_eq!((*job.task(), job.attempt()), (0, 1));
            job.complete().unwrap();
            drop(worker);
        }
        assert_eq!(built.snapshot(), new.snapshot());
        // SAFETY: `init` initialized it; dropping it drops the 7 tasks still queued.
        drop(unsafe { place.assume_init() });
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
        assert_eq!(sup.tick(1_101).as_slice(), [0]);
        job.complete().unwrap();
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
        assert_eq!(sup.tick(91).as_slice(), [0], "101 ticks old");
        job.complete().unwrap();
    }
}
