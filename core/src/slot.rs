//! A worker slot and its *state word*: the one place that writes a slot's state.
//!
//! Each of the supervisor's `W` slots holds one worker's state, the task it runs (or keeps for
//! its retry) and its counters. The state lives in a 32-bit word, [`StateWord`]; every change
//! of it is one of the numbered transitions below, each a function of `StateWord` that takes
//! one atomic step and returns the word it replaced (or, refused, the word it found), so the
//! caller knows what to do next: take the task, count the slot out, or report the state.
//!
//! # The state machine
//!
//! ```text
//!  A worker comes and goes
//!              ┌──────────────────────── 20 ───────────────────────────┐
//!              ▼                                                       │
//!           Vacant ──1──▶ Starting ──2──▶ Idle ──15──▶ Exiting ──16──▶ Exited
//!            │ ▲             │            ▲ │ │                        ▲
//!            │ └─── 3, 19 ───┘            │ │ └─────────── 16 ─────────┘
//!            └──────────── 23 ────────────┘ │ 17
//!                                           ▼
//!                         Idle ◀───2─── Restarting ──19──▶ Retired ──20──▶ Vacant
//!
//!  A task runs                              A worker crashes
//!     Idle ──4──▶ Busy ──5──▶ Hung             Busy, Hung, Terminating ──9──▶ Crashed
//!                      ◀──6──                  Busy, Hung, Terminating ──10─▶ Recovering
//!     Busy, Hung ──7──▶ Idle                   Starting, Idle, Busy, Hung,
//!     Busy, Hung ──8──▶ Terminating              Terminating, Crashed ──11──▶ Crashed
//!                                              Exiting ──11──▶ Exited
//!  It is recovered                             Crashed ──12──▶ Recovering
//!     Recovering ──13──▶ Restarting            Restarting ──18──▶ Recovering
//!     Recovering ──14──▶ Retired
//!
//!  A retry left in an ended slot is handed back
//!     Exited or Retired, with a task ──21──▶ the same, claimed ──22──▶ the same, no task
//!
//!  A run is cancelled (feature `cancellation`)
//!     Busy, Hung, Terminating ──24──▶ the same, cancelled
//!     Busy, Hung (cancelled or not) ──25──▶ Idle
//! ```
//!
//! | # | function | from → to | task flag | who |
//! |---|---|---|---|---|
//! | 1 | [`reserve`](StateWord::reserve) | Vacant → Starting | | [`Supervisor::reserve`](crate::Supervisor::reserve) |
//! | 2 | [`attach`](StateWord::attach) | Starting, Restarting → Idle | kept | [`Supervisor::attach`](crate::Supervisor::attach) |
//! | 3 | [`release`](StateWord::release) | Starting → Vacant | | [`Supervisor::release`](crate::Supervisor::release) |
//! | 4 | [`start`](StateWord::start) | Idle → Busy | set; generation + 1 | the worker's step ([`Worker::try_next`](crate::Worker::try_next)) |
//! | 5 | [`flag_hung`](StateWord::flag_hung) | Busy → Hung, same generation only | | the watchdog ([`Supervisor::tick`](crate::Supervisor::tick)) |
//! | 6 | [`heartbeat`](StateWord::heartbeat) | Hung → Busy | | [`Context::heartbeat`](crate::Context::heartbeat) |
//! | 7 | [`finish`](StateWord::finish) | Busy, Hung, not cancelled → Idle | cleared | [`Job::complete`](crate::Job::complete), [`Job::fail`](crate::Job::fail) |
//! | 8 | [`condemn`](StateWord::condemn) | Busy, Hung → Terminating, one run only (its generation) | | [`Supervisor::condemn`](crate::Supervisor::condemn) |
//! | 9 | [`abandon`](StateWord::abandon) | Busy, Hung, Terminating → Crashed | | dropping a [`Job`](crate::Job) unfinished; finishing a condemned one |
//! | 10 | [`crash`](StateWord::crash) | Busy, Hung, Terminating → Recovering | | [`Job::crash`](crate::Job::crash) |
//! | 11 | [`declare_dead`](StateWord::declare_dead) | Starting, Idle, Busy, Hung, Terminating, Crashed → Crashed; Exiting → Exited | | [`Supervisor::declare_dead`](crate::Supervisor::declare_dead) |
//! | 12 | [`recover`](StateWord::recover) | Crashed → Recovering | | [`Supervisor::recover`](crate::Supervisor::recover) |
//! | 13 | [`await_replacement`](StateWord::await_replacement) | Recovering → Restarting | set if a retry is kept, else cleared; cancelled cleared | recovery, [`Decision::Replace`](crate::Decision::Replace) |
//! | 14 | [`retire`](StateWord::retire) | Recovering → Retired | cleared; cancelled cleared | recovery without a replacement; [`Supervisor::retire`](crate::Supervisor::retire) |
//! | 15 | [`leave`](StateWord::leave) | Idle without a task → Exiting | | the worker's step, finding a shutdown |
//! | 16 | [`exit`](StateWord::exit) | Exiting, Idle → Exited | kept | dropping the [`Worker`](crate::Worker) (or [`Worker::exit`](crate::Worker::exit)) without a replacement |
//! | 17 | [`exit_for_replacement`](StateWord::exit_for_replacement) | Idle → Restarting | kept | dropping the `Worker` while running, replaced per the restart policy; a worker recycled after its quota of tasks ([`Policy::with_recycling`](crate::policy::Policy::with_recycling)) or at its host's request ([`Worker::recycle`](crate::Worker::recycle)) |
//! | 18 | [`cancel_restart`](StateWord::cancel_restart) | Restarting → Recovering | | [`Supervisor::retire`](crate::Supervisor::retire) (then 14) |
//! | 19 | [`sweep`](StateWord::sweep) | Starting → Vacant; Restarting → Retired | kept | an abort or escalation: no start will come |
//! | 20 | [`reopen`](StateWord::reopen) | Exited, Retired without a task → Vacant | | [`Supervisor::reopen`](crate::Supervisor::reopen) |
//! | 21 | [`claim_leftover`](StateWord::claim_leftover) | Exited, Retired with an unclaimed task → the same, claimed | claim set | [`Supervisor::hand_back`](crate::Supervisor::hand_back) |
//! | 22 | [`hand_back`](StateWord::hand_back) | Exited, Retired with a claimed task → the same | task and claim cleared | [`Supervisor::hand_back`](crate::Supervisor::hand_back) |
//! | 23 | [`claim`](StateWord::claim) | Vacant → Idle | | [`Supervisor::attach`](crate::Supervisor::attach) of a vacant slot |
//! | 24 | [`cancel`](StateWord::cancel) | Busy, Hung, Terminating → the same, one run only (its generation) | cancelled set | [`Supervisor::cancel`](crate::Supervisor::cancel) |
//! | 25 | [`finish_cancelled`](StateWord::finish_cancelled) | Busy, Hung → Idle | cleared; cancelled cleared | [`Job::cancel`](crate::Job::cancel) |
//!
//! 24 and 25 exist with the feature `cancellation` only (without it, the `CANCELLED` bit is
//! never set and no transition looks at it).
//!
//! `Recovering` is internal: [`WorkerState`] shows it as `Crashed`. Every pair of a state and
//! a transition not in the table is refused, and the word is left as it was; the tests walk
//! every such pair against this table.
//!
//! # The word
//!
//! | bits | meaning |
//! |---|---|
//! | 0–3 | the state |
//! | 4 | `HAS_TASK`: the slot's task cell holds a task (running, or kept for a retry) |
//! | 5 | `CLAIMED`: a hand-back is taking that task out of an ended slot (21, 22) |
//! | 6 | `CANCELLED`: the run was cancelled (24); its outcome will not be recorded as completed or failed (7 refuses it), only as cancelled (25) or, if its worker dies, by the recovery, which neither retries the task nor charges the crash to the restart intensity. Set only in Busy, Hung, Terminating and the Crashed and Recovering states that follow them; cleared when the run's outcome is recorded (25, or recovery's 13 and 14) |
//! | 8–31 | the *generation*, bumped at every task start |
//!
//! The generation names a *run* (one start of a task on a worker, [`Run`]): it lets the
//! watchdog's transition 5 fail if the worker moved on to another task between the watchdog's
//! look at its heartbeat and its verdict, and a condemnation (8) fail if the run it names has
//! ended, so a host never kills a worker for a task that did not hang. Generations wrap after
//! 2^24 runs of one slot; a [`Run`] kept that long could name a later one.
//!
//! # Orderings
//!
//! Every transition is one `SeqCst` compare-and-swap, through one helper
//! ([`StateWord::apply`]). `Release` publishes what the mover did before (the task it wrote
//! into the cell, its heartbeat, its last reads of the cell) to whoever next reads the word;
//! `Acquire` makes what the previous mover did visible to this one; and the total order is
//! what a draining worker's re-check (`Supervisor::tasks_out`, a `SeqCst` load) needs against
//! tasks coming back (transitions 7, 13, 14, 25). Loads are `Acquire`. One ordering for every
//! transition costs nothing on the targets we know: a `SeqCst` compare-and-swap compiles to the
//! same instructions as an `AcqRel` one on x86, Arm (v6-M to v8) and RISC-V.
//!
//! # Who owns the task cell
//!
//! 1. The thread holding a slot's [`Worker`](crate::Worker) writes the cell only while the
//!    state is `Idle` (taking a task, before 4) or its own `Busy`/`Hung` (finishing, after 7 or 25).
//! 2. Anyone else touches the cell only from `Recovering` (after 10, 12 or 18), from an ended
//!    slot whose task it claimed (21, until 22), or with `&mut` to the supervisor. A slot only becomes `Crashed` once its worker has let go of the task: by
//!    9, or by 11 for a thread that is dead, as the host promises when it calls
//!    [`Supervisor::declare_dead`](crate::Supervisor::declare_dead).
//! 3. `Idle` is changed only by the worker that holds it (4, 15, 16, 17) and by 11, whose
//!    caller promises that worker never runs again.
//! 4. While a slot is active (every state but `Vacant`, `Exited`, `Retired`) it is counted in
//!    the supervisor's active count (see `phase`): counted before it leaves `Vacant` (1, 23), and
//!    counted out after it enters `Vacant`, `Exited` or `Retired`, by whoever moved it there.

use core::fmt;
use core::mem::MaybeUninit;

use crate::policy::Tick;
use crate::sync::{init_empty_cell, AtomicU32, AtomicUsize, Ordering, UnsafeCell};

const VACANT: u32 = 0;
const STARTING: u32 = 1;
const IDLE: u32 = 2;
const BUSY: u32 = 3;
const HUNG: u32 = 4;
const TERMINATING: u32 = 5;
const EXITING: u32 = 6;
const EXITED: u32 = 7;
const CRASHED: u32 = 8;
const RECOVERING: u32 = 9;
const RESTARTING: u32 = 10;
const RETIRED: u32 = 11;

const STATE_MASK: u32 = 0xF;
const HAS_TASK: u32 = 1 << 4;
const CLAIMED: u32 = 1 << 5;
/// The run was cancelled: see the module docs.
const CANCELLED: u32 = 1 << 6;
const GEN_SHIFT: u32 = 8;

/// What a worker is doing, as the supervisor sees it.
///
/// ```
/// use foreman_rt::{park::NoPark, policy::Policy, Supervisor, WorkerState};
/// let sup: Supervisor<u8, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
/// assert_eq!(sup.worker_state(0), Some(WorkerState::Vacant));
/// let worker = sup.attach(0).unwrap();
/// assert_eq!(sup.worker_state(0), Some(WorkerState::Idle));
/// # drop(worker);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
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

/// One run of a task on a worker: which worker, and which of its runs (a task that crashed and
/// is retried gets a new run). Hosts name a run, not just a worker, when they condemn one, so
/// that a verdict about a task can never hit the next task the worker started.
///
/// ```
/// use foreman_rt::{park::NoPark, policy::Policy, Next, Supervisor};
///
/// let sup: Supervisor<u8, 4, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
/// sup.try_submit(1).unwrap();
/// sup.try_submit(2).unwrap();
/// let mut worker = sup.attach(0).unwrap();
/// let Next::Run(job) = worker.try_next() else { unreachable!() };
/// let first = job.context().run();
/// assert_eq!((first.worker(), sup.current_run(0)), (0, Some(first)));
/// job.complete().unwrap();
/// let Next::Run(job) = worker.try_next() else { unreachable!() };
/// assert_ne!(job.context().run(), first); // the same worker, another run
/// assert!(sup.condemn(first).is_err()); // that run is over: nothing to condemn
/// # job.complete().unwrap();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Run {
    worker: usize,
    generation: u32,
}

impl Run {
    /// A placeholder for arrays of runs, never handed out.
    pub(crate) const NONE: Run = Run {
        worker: usize::MAX,
        generation: 0,
    };

    pub(crate) const fn new(worker: usize, word: Word) -> Run {
        Run {
            worker,
            generation: word.generation(),
        }
    }

    /// The worker it runs on, `0..W`.
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Next, Supervisor};
    /// let sup: Supervisor<u8, 2, 2> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// sup.try_submit(1).unwrap();
    /// let mut worker = sup.attach(1).unwrap();
    /// let Next::Run(job) = worker.try_next() else { unreachable!() };
    /// assert_eq!(job.context().run().worker(), 1);
    /// # job.complete().unwrap();
    /// ```
    pub const fn worker(self) -> usize {
        self.worker
    }

    /// The run named by a worker and a generation (as a [`Ticket`](crate::Ticket) keeps it).
    #[cfg(all(feature = "cancellation", any(loom, target_has_atomic = "64")))]
    pub(crate) const fn from_parts(worker: usize, generation: u32) -> Run {
        Run { worker, generation }
    }

    /// Which run of its worker's slot this is.
    pub(crate) const fn generation(self) -> u32 {
        self.generation
    }

    /// Whether `word` (of this run's worker) is this run, still going.
    pub(crate) const fn is(self, word: Word) -> bool {
        word.is_running() && word.generation() == self.generation
    }
}

/// A value of a state word: see the module docs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Word(u32);

impl Word {
    const fn code(self) -> u32 {
        self.0 & STATE_MASK
    }

    /// The state as the supervisor shows it.
    pub(crate) const fn state(self) -> WorkerState {
        match self.code() {
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

    /// The generation: which run of the slot this word belongs to.
    pub(crate) const fn generation(self) -> u32 {
        self.0 >> GEN_SHIFT
    }

    /// Whether a task is running (Busy, Hung) or being killed (Terminating).
    pub(crate) const fn is_running(self) -> bool {
        matches!(self.code(), BUSY | HUNG | TERMINATING)
    }

    /// Whether the task cell holds a task.
    pub(crate) const fn has_task(self) -> bool {
        self.0 & HAS_TASK != 0
    }

    pub(crate) const fn is_vacant(self) -> bool {
        self.code() == VACANT
    }

    pub(crate) const fn is_idle(self) -> bool {
        self.code() == IDLE
    }

    pub(crate) const fn is_busy(self) -> bool {
        self.code() == BUSY
    }

    pub(crate) const fn is_exiting(self) -> bool {
        self.code() == EXITING
    }

    pub(crate) const fn is_restarting(self) -> bool {
        self.code() == RESTARTING
    }

    /// Whether the slot ended (Exited, Retired) holding a task nobody has claimed yet: a
    /// retry its worker never ran, for `hand_back`.
    pub(crate) const fn has_leftover(self) -> bool {
        matches!(self.code(), EXITED | RETIRED) && self.0 & (HAS_TASK | CLAIMED) == HAS_TASK
    }

    /// Whether the run was cancelled (the `CANCELLED` bit; never set without the feature
    /// `cancellation`).
    pub(crate) const fn is_cancelled(self) -> bool {
        cfg!(feature = "cancellation") && self.0 & CANCELLED != 0
    }

    /// Whether the run of generation `generation` can no longer record a completion: it was
    /// cancelled or condemned, or it ended (crashed, recovered, or the slot moved on).
    pub(crate) const fn stops_run(self, generation: u32) -> bool {
        self.generation() != generation
            || !matches!(self.code(), BUSY | HUNG)
            || self.is_cancelled()
    }

    /// Whether the slot holds a task that may yet come back to the queue: running (it may
    /// crash), or crashed and not yet recovered.
    pub(crate) const fn task_may_return(self) -> bool {
        matches!(
            self.code(),
            BUSY | HUNG | TERMINATING | CRASHED | RECOVERING
        )
    }
}

impl fmt::Debug for Word {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Word({:?}{}{}, generation {})",
            self.state(),
            if self.has_task() { " with task" } else { "" },
            if self.is_cancelled() {
                ", cancelled"
            } else {
                ""
            },
            self.0 >> GEN_SHIFT
        )
    }
}

/// What a transition does: for each current state code, the new one (or [`REFUSED`]), and
/// its rules for the flags `HAS_TASK` and `CLAIMED` (as [`TASK`] and [`CLAIM`], the word's
/// bits 4 and 5 shifted down). Packed into 8 bytes: the transitions live in one table,
/// [`TRANSITIONS`], and a call site names one by its number.
struct Op {
    /// The new state code for each current one, a nibble each (low nibble first).
    to: [u8; 6],
    /// The flags it sets (bits 0–1), clears (2–3), requires (4–5) and forbids (6–7).
    flags: u8,
    /// [`NEXT_GENERATION`], [`EXACT`], and the rules for the flag `CANCELLED`:
    /// [`SETS_CANCELLED`], [`CLEARS_CANCELLED`], [`FORBIDS_CANCELLED`].
    mode: u8,
}

/// The flag `HAS_TASK`, as an [`Op`] sees it.
const TASK: u8 = 1;
/// The flag `CLAIMED`, as an [`Op`] sees it.
const CLAIM: u8 = 2;
const FLAGS_SHIFT: u32 = 4;
/// In [`Op::to`]: this state refuses the transition.
const REFUSED: u8 = 0xF;
const SETS: u32 = 0;
const CLEARS: u32 = 2;
const REQUIRES: u32 = 4;
const FORBIDS: u32 = 6;
/// In [`Op::mode`]: it bumps the generation.
const NEXT_GENERATION: u8 = 1;
/// In [`Op::mode`]: it applies only to the word the caller saw (a changed word refuses).
const EXACT: u8 = 2;
/// In [`Op::mode`]: it sets the flag `CANCELLED`.
const SETS_CANCELLED: u8 = 4;
/// In [`Op::mode`]: it clears the flag `CANCELLED`.
const CLEARS_CANCELLED: u8 = 8;
/// In [`Op::mode`]: a word with the flag `CANCELLED` refuses it.
const FORBIDS_CANCELLED: u8 = 16;

impl Op {
    /// The transition taking each `(from, to)` pair, and no flag rule.
    const fn new(moves: &[(u32, u32)]) -> Op {
        let mut to = [u8::MAX; 6]; // every code refused ...
        let mut i = 0;
        while i < moves.len() {
            let (from, into) = moves[i];
            // ... but these.
            let shift = 4 * (from % 2);
            let byte = &mut to[from as usize / 2];
            *byte = (*byte & !(REFUSED << shift)) | (into as u8) << shift;
            i += 1;
        }
        Op {
            to,
            flags: 0,
            mode: 0,
        }
    }

    const fn with_flags(mut self, flags: u8, at: u32) -> Op {
        self.flags |= flags << at;
        self
    }

    const fn sets(self, flags: u8) -> Op {
        self.with_flags(flags, SETS)
    }

    const fn clears(self, flags: u8) -> Op {
        self.with_flags(flags, CLEARS)
    }

    const fn requires(self, flags: u8) -> Op {
        self.with_flags(flags, REQUIRES)
    }

    const fn forbids(self, flags: u8) -> Op {
        self.with_flags(flags, FORBIDS)
    }

    const fn next_generation(mut self) -> Op {
        self.mode |= NEXT_GENERATION;
        self
    }

    const fn exact(mut self) -> Op {
        self.mode |= EXACT;
        self
    }

    /// Adds `rule` (one of the `CANCELLED` rules) to [`mode`](Op::mode).
    const fn cancelled(mut self, rule: u8) -> Op {
        self.mode |= rule;
        self
    }

    /// The two flag bits at `at` in [`flags`](Op::flags).
    fn field(&self, at: u32) -> u8 {
        (self.flags >> at) & (TASK | CLAIM)
    }

    /// The word this transition makes of `word`, or `None` if it refuses it. Inlined into
    /// the hot transitions off bare metal (see `StateWord::apply_now_hot`); on bare metal
    /// left to the compiler, which keeps the one copy in `StateWord::apply` as small as before.
    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn next(&self, word: u32) -> Option<u32> {
        let code = (word & STATE_MASK) as usize;
        let to = if cfg!(target_os = "none") {
            // Bare metal: one byte, no 64-bit shift (flash over instructions).
            (*self.to.get(code / 2)? >> (4 * (code % 2))) & REFUSED
        } else {
            // The nibbles as one number, refusing codes 12 to 15: a constant for an inlined
            // transition (see `StateWord::apply_now_hot`), so the lookup is a shift.
            let [a, b, c, d, e, f] = self.to;
            let nibbles = u64::from_le_bytes([a, b, c, d, e, f, u8::MAX, u8::MAX]);
            (nibbles >> (4 * code)) as u8 & REFUSED
        };
        let flags = (word >> FLAGS_SHIFT) as u8 & (TASK | CLAIM);
        if to == REFUSED
            || flags & self.field(REQUIRES) != self.field(REQUIRES)
            || flags & self.field(FORBIDS) != 0
        {
            return None;
        }
        let flags = (flags & !self.field(CLEARS)) | self.field(SETS);
        let mut new = (word & !(STATE_MASK | HAS_TASK | CLAIMED))
            | u32::from(to)
            | u32::from(flags) << FLAGS_SHIFT;
        if self.mode & NEXT_GENERATION != 0 {
            new = new.wrapping_add(1 << GEN_SHIFT);
        }
        // Without the feature no transition sets `CANCELLED`: its rules compile away.
        if cfg!(feature = "cancellation") {
            if self.mode & FORBIDS_CANCELLED != 0 && word & CANCELLED != 0 {
                return None;
            }
            if self.mode & CLEARS_CANCELLED != 0 {
                new &= !CANCELLED;
            }
            if self.mode & SETS_CANCELLED != 0 {
                new |= CANCELLED;
            }
        }
        Some(new)
    }
}

const RESERVE: Op = Op::new(&[(VACANT, STARTING)]);
const CLAIM_VACANT: Op = Op::new(&[(VACANT, IDLE)]);
const ATTACH: Op = Op::new(&[(STARTING, IDLE), (RESTARTING, IDLE)]);
const RELEASE: Op = Op::new(&[(STARTING, VACANT)]);
const START: Op = Op::new(&[(IDLE, BUSY)]).sets(TASK).next_generation();
const FLAG_HUNG: Op = Op::new(&[(BUSY, HUNG)]).exact();
const HEARTBEAT: Op = Op::new(&[(HUNG, BUSY)]);
const FINISH: Op = Op::new(&[(BUSY, IDLE), (HUNG, IDLE)])
    .clears(TASK)
    .cancelled(FORBIDS_CANCELLED);
const CONDEMN: Op = Op::new(&[(BUSY, TERMINATING), (HUNG, TERMINATING)]).exact();
const ABANDON: Op = Op::new(&[(BUSY, CRASHED), (HUNG, CRASHED), (TERMINATING, CRASHED)]);
const CRASH: Op = Op::new(&[
    (BUSY, RECOVERING),
    (HUNG, RECOVERING),
    (TERMINATING, RECOVERING),
]);
const DECLARE_DEAD: Op = Op::new(&[
    (STARTING, CRASHED),
    (IDLE, CRASHED),
    (BUSY, CRASHED),
    (HUNG, CRASHED),
    (TERMINATING, CRASHED),
    (CRASHED, CRASHED),
    (EXITING, EXITED),
]);
const RECOVER: Op = Op::new(&[(CRASHED, RECOVERING)]);
const AWAIT_REPLACEMENT_WITH_RETRY: Op = Op::new(&[(RECOVERING, RESTARTING)])
    .sets(TASK)
    .cancelled(CLEARS_CANCELLED);
const AWAIT_REPLACEMENT: Op = Op::new(&[(RECOVERING, RESTARTING)])
    .clears(TASK)
    .cancelled(CLEARS_CANCELLED);
const RETIRE: Op = Op::new(&[(RECOVERING, RETIRED)])
    .clears(TASK)
    .cancelled(CLEARS_CANCELLED);
const LEAVE: Op = Op::new(&[(IDLE, EXITING)]).forbids(TASK);
const EXIT: Op = Op::new(&[(EXITING, EXITED), (IDLE, EXITED)]);
const EXIT_FOR_REPLACEMENT: Op = Op::new(&[(IDLE, RESTARTING)]);
const CANCEL_RESTART: Op = Op::new(&[(RESTARTING, RECOVERING)]);
const SWEEP: Op = Op::new(&[(STARTING, VACANT), (RESTARTING, RETIRED)]);
const REOPEN: Op = Op::new(&[(EXITED, VACANT), (RETIRED, VACANT)]).forbids(TASK);
const CLAIM_LEFTOVER: Op = Op::new(&[(EXITED, EXITED), (RETIRED, RETIRED)])
    .requires(TASK)
    .forbids(CLAIM)
    .sets(CLAIM)
    .exact();
const HAND_BACK: Op = Op::new(&[(EXITED, EXITED), (RETIRED, RETIRED)])
    .requires(TASK | CLAIM)
    .clears(TASK | CLAIM);
#[cfg(feature = "cancellation")]
const CANCEL: Op = Op::new(&[(BUSY, BUSY), (HUNG, HUNG), (TERMINATING, TERMINATING)])
    .cancelled(SETS_CANCELLED)
    .exact();
#[cfg(feature = "cancellation")]
const FINISH_CANCELLED: Op = Op::new(&[(BUSY, IDLE), (HUNG, IDLE)])
    .clears(TASK)
    .cancelled(CLEARS_CANCELLED);

/// How many transitions [`TRANSITIONS`] holds: 0 to 23, 24 and 25 with the feature
/// `cancellation`, and 13 with a retry kept, last.
const TRANSITION_COUNT: usize = if cfg!(feature = "cancellation") {
    27
} else {
    25
};

/// Every transition, at its number (13 twice: the last is 13 with a retry kept).
/// `StateWord::apply` takes the number, which a call site loads with one short instruction.
static TRANSITIONS: [Op; TRANSITION_COUNT] = [
    Op::new(&[]), // no transition 0: refuses everything
    RESERVE,
    ATTACH,
    RELEASE,
    START,
    FLAG_HUNG,
    HEARTBEAT,
    FINISH,
    CONDEMN,
    ABANDON,
    CRASH,
    DECLARE_DEAD,
    RECOVER,
    AWAIT_REPLACEMENT,
    RETIRE,
    LEAVE,
    EXIT,
    EXIT_FOR_REPLACEMENT,
    CANCEL_RESTART,
    SWEEP,
    REOPEN,
    CLAIM_LEFTOVER,
    HAND_BACK,
    CLAIM_VACANT,
    #[cfg(feature = "cancellation")]
    CANCEL,
    #[cfg(feature = "cancellation")]
    FINISH_CANCELLED,
    AWAIT_REPLACEMENT_WITH_RETRY,
];

/// The number of 13 with a retry kept, in [`TRANSITIONS`]: the last.
const AWAIT_REPLACEMENT_WITH_RETRY_NUMBER: u8 = TRANSITION_COUNT as u8 - 1;

/// The outcome of a transition: `Ok(the word it replaced)`, or `Err(the word it found)` if
/// the transition does not apply to it (the word is unchanged then).
pub(crate) type Moved = Result<Word, Word>;

/// A slot's state word. Only the transitions below write it.
pub(crate) struct StateWord(AtomicU32);

impl StateWord {
    crate::sync::loom_const_fn! {
        fn new() -> Self {
            StateWord(AtomicU32::new(VACANT))
        }
    }

    /// The word.
    #[inline]
    pub(crate) fn load(&self) -> Word {
        // Acquire: see the module docs.
        Word(self.0.load(Ordering::Acquire))
    }

    /// The word, for a draining worker's re-check (see the module docs).
    #[inline]
    pub(crate) fn load_for_recheck(&self) -> Word {
        // SeqCst: see the module docs.
        Word(self.0.load(Ordering::SeqCst))
    }

    /// Applies transition `number` to the word, starting from `seen`. Not generic and not
    /// inlined: every transition shares this one copy of the compare-and-swap loop.
    #[inline(never)]
    fn apply(&self, seen: u32, number: u8) -> Moved {
        let Some(op) = TRANSITIONS.get(usize::from(number)) else {
            return Err(Word(seen));
        };
        self.apply_op(seen, op)
    }

    /// The one compare-and-swap loop: applies `op` to the word, starting from `seen`.
    #[inline(always)]
    fn apply_op(&self, seen: u32, op: &Op) -> Moved {
        let mut word = seen;
        loop {
            let Some(new) = op.next(word) else {
                return Err(Word(word));
            };
            // SeqCst: see the module docs. On failure, Acquire: the word found is reported.
            match self
                .0
                .compare_exchange_weak(word, new, Ordering::SeqCst, Ordering::Acquire)
            {
                Ok(_) => return Ok(Word(word)),
                // A weak CAS may fail spuriously, reporting the word it expected: try again.
                Err(current) if op.mode & EXACT != 0 && current != word => {
                    return Err(Word(current))
                }
                Err(current) => word = current,
            }
        }
    }

    /// Applies `op` to the current word. Not inlined either: a call is smaller than the load.
    #[inline(never)]
    fn apply_now(&self, number: u8) -> Moved {
        self.apply(self.load().0, number)
    }

    /// Applies transition `number`, whose entry in [`TRANSITIONS`] is `op`, to the current
    /// word, for the two transitions every task takes (4 and 7). On bare metal, where flash
    /// is scarce, it calls the shared copy as every transition does; elsewhere it is inlined
    /// with `op` a constant, which folds its table lookup and flag rules into a few
    /// instructions instead of a call of about 55 (a dispatched no-op task on the thread host
    /// costs about 105 instructions fewer, `cargo xtask bench --only instructions`).
    #[inline(always)]
    fn apply_now_hot(&self, number: u8, op: &'static Op) -> Moved {
        if cfg!(target_os = "none") {
            self.apply_now(number)
        } else {
            self.apply_op(self.load().0, op)
        }
    }

    /// 1: Vacant → Starting. The caller counted the slot as active before.
    pub(crate) fn reserve(&self) -> Moved {
        self.apply_now(1)
    }

    /// 23: Vacant → Idle: a worker attaches to a vacant slot. The caller counted the slot as
    /// active before.
    pub(crate) fn claim(&self) -> Moved {
        self.apply_now(23)
    }

    /// 2: Starting or Restarting → Idle: a worker attaches (a retry kept in the cell stays).
    pub(crate) fn attach(&self) -> Moved {
        self.apply_now(2)
    }

    /// 3: Starting → Vacant: a reservation given up. The caller counts the slot out.
    pub(crate) fn release(&self) -> Moved {
        self.apply_now(3)
    }

    /// 4: Idle → Busy, with a task (just written into the cell, or a retry kept there) and
    /// the next generation.
    #[inline]
    pub(crate) fn start(&self) -> Moved {
        self.apply_now_hot(4, &START)
    }

    /// 5: Busy → Hung, only from `seen` (the word whose heartbeat the watchdog judged).
    pub(crate) fn flag_hung(&self, seen: Word) -> Moved {
        self.apply(seen.0, 5)
    }

    /// 6: Hung → Busy: the task showed progress.
    pub(crate) fn heartbeat(&self) -> Moved {
        self.apply_now(6)
    }

    /// 7: Busy or Hung → Idle, the task taken out. Refused once condemned (Terminating) or
    /// cancelled.
    #[inline]
    pub(crate) fn finish(&self) -> Moved {
        self.apply_now_hot(7, &FINISH)
    }

    /// 8: Busy or Hung → Terminating, only from `seen` (the word of the run the host names):
    /// the host will kill the worker.
    pub(crate) fn condemn(&self, seen: Word) -> Moved {
        self.apply(seen.0, 8)
    }

    /// 9: Busy, Hung or Terminating → Crashed: the worker lets go of its task, for a
    /// recoverer.
    pub(crate) fn abandon(&self) -> Moved {
        self.apply_now(9)
    }

    /// 10: Busy, Hung or Terminating → Recovering: the crashing worker recovers its own task.
    pub(crate) fn crash(&self) -> Moved {
        self.apply_now(10)
    }

    /// 11: a worker whose thread is dead (per the caller's promise) → Crashed, or, if it was
    /// leaving, Exiting → Exited (the caller counts it out).
    pub(crate) fn declare_dead(&self) -> Moved {
        self.apply_now(11)
    }

    /// 12: Crashed → Recovering: the cell is the caller's.
    pub(crate) fn recover(&self) -> Moved {
        self.apply_now(12)
    }

    /// 13: Recovering → Restarting, with the retry the caller put back into the cell, or
    /// without a task.
    pub(crate) fn await_replacement(&self, with_retry: bool) -> Moved {
        self.apply_now(if with_retry {
            AWAIT_REPLACEMENT_WITH_RETRY_NUMBER
        } else {
            13
        })
    }

    /// 14: Recovering → Retired, the caller having taken the task out. The caller counts the
    /// slot out.
    pub(crate) fn retire(&self) -> Moved {
        self.apply_now(14)
    }

    /// 15: Idle without a task → Exiting: the worker leaves because of a shutdown.
    pub(crate) fn leave(&self) -> Moved {
        self.apply_now(15)
    }

    /// 16: Exiting or Idle → Exited: the worker's handle is gone and nobody replaces it (a
    /// retry it held stays for `hand_back`). The caller counts the slot out.
    pub(crate) fn exit(&self) -> Moved {
        self.apply_now(16)
    }

    /// 17: Idle → Restarting: the worker's handle is gone and a replacement is wanted (a
    /// retry it held stays for the replacement).
    pub(crate) fn exit_for_replacement(&self) -> Moved {
        self.apply_now(17)
    }

    /// 18: Restarting → Recovering: no replacement will come; the cell is the caller's, who
    /// retires the slot next (14).
    pub(crate) fn cancel_restart(&self) -> Moved {
        self.apply_now(18)
    }

    /// 19: Starting → Vacant, Restarting → Retired: a shutdown sweeps away the starts it no
    /// longer needs (a retry held stays for `hand_back`). The caller counts the slot out.
    pub(crate) fn sweep(&self) -> Moved {
        self.apply_now(19)
    }

    /// 20: Exited or Retired, without a task → Vacant.
    pub(crate) fn reopen(&self) -> Moved {
        self.apply_now(20)
    }

    /// 21: Exited or Retired with a task nobody claimed → the same, claimed: the cell is the
    /// caller's, and `reopen` refuses while the task flag is set. Only from `seen` (the word
    /// that showed the task).
    pub(crate) fn claim_leftover(&self, seen: Word) -> Moved {
        self.apply(seen.0, 21)
    }

    /// 22: Exited or Retired with a claimed task → the same without a task: the claimer took
    /// it out of the cell.
    pub(crate) fn hand_back(&self) -> Moved {
        self.apply_now(22)
    }

    /// 24: Busy, Hung or Terminating → the same, cancelled, only from `seen` (the word of the
    /// run the host names). Idempotent: a cancelled run may be cancelled again.
    #[cfg(feature = "cancellation")]
    pub(crate) fn cancel(&self, seen: Word) -> Moved {
        self.apply(seen.0, 24)
    }

    /// 25: Busy or Hung → Idle, the task taken out, to be recorded as cancelled (whether or
    /// not 24 marked the run). Refused once condemned (Terminating).
    #[cfg(feature = "cancellation")]
    pub(crate) fn finish_cancelled(&self) -> Moved {
        self.apply_now(25)
    }
}

/// A task, with the number of its runs that started.
pub(crate) struct Envelope<T> {
    pub(crate) task: T,
    /// Runs started so far: 0 while it waits for its first run, 1 once that started, and so
    /// on. Counted when a run starts, so a retry whose worker died before starting it is not
    /// charged. (A run is an *attempt*; attempt `n` is the `n`-th run, `runs + 1` the number of
    /// the next.)
    pub(crate) runs: u32,
}

impl<T> Envelope<T> {
    /// A task that has not run yet.
    #[inline]
    pub(crate) const fn new(task: T) -> Self {
        Envelope { task, runs: 0 }
    }
}

/// One worker's slot in the supervisor: its state word, its task cell, and its counters.
/// Cache-padded by the supervisor.
pub(crate) struct WorkerSlot<T> {
    pub(crate) state: StateWord,
    /// The clock when the current task started or last signalled progress.
    pub(crate) heartbeat: AtomicU32,
    /// Written only by the worker (one writer), read by snapshots.
    pub(crate) completed: AtomicUsize,
    /// Written only by the worker (one writer), read by snapshots.
    pub(crate) failed: AtomicUsize,
    /// Written only by the recoverer (one at a time, from Recovering).
    pub(crate) crashes: AtomicU32,
    /// Written only by the recoverer or by the exiting worker (one at a time).
    pub(crate) restarts: AtomicU32,
    /// Workers of this slot recycled (after their quota of tasks, or asked). Written only by the worker
    /// being recycled (from Idle).
    #[cfg(feature = "recycling")]
    pub(crate) recycles: AtomicU32,
    /// The restart backoff's last delay in the current streak of crashes (0: no streak).
    /// Written by the recoverer (from Recovering) and by a worker that recorded an outcome
    /// (from its own Idle slot, after 7): never both at once, ordered by the state word.
    #[cfg(feature = "backoff")]
    pub(crate) backoff: AtomicU32,
    /// When the replacement after the last crash may attach (the supervisor's clock). Written
    /// by the recoverer before the slot becomes Restarting (13), read by `attach` after.
    #[cfg(feature = "backoff")]
    pub(crate) ready_at: AtomicU32,
    /// Tasks whose run on this slot ended cancelled. Written by the worker (after 25, from its
    /// Idle slot) or by the recoverer (from Recovering): one writer at a time, ordered by the
    /// state word, read by snapshots.
    #[cfg(feature = "cancellation")]
    pub(crate) cancelled: AtomicUsize,
    /// When the current run started (the supervisor's clock), for its deadline. Written by
    /// the worker before 4, which publishes it.
    #[cfg(feature = "deadlines")]
    pub(crate) started: AtomicU32,
    /// The current run's own deadline in ticks from its start, plus one (0: none, the policy's
    /// watchdog judges it). Cleared by the worker before 4; set by `Job::set_deadline`.
    #[cfg(feature = "deadlines")]
    pub(crate) deadline: AtomicU32,
    task: UnsafeCell<MaybeUninit<Envelope<T>>>,
}

// SAFETY: the task cell is reached by one thread at a time, as the state word decides (see
// the module docs), so `T: Send` suffices; everything else is atomic. (The handles that hold a
// `&WorkerSlot` are sent between threads by hosts.)
unsafe impl<T: Send> Sync for WorkerSlot<T> {}

impl<T> WorkerSlot<T> {
    crate::sync::loom_const_fn! {
        pub(crate) fn new() -> Self {
            WorkerSlot {
                state: StateWord::new(),
                heartbeat: AtomicU32::new(0),
                completed: AtomicUsize::new(0),
                failed: AtomicUsize::new(0),
                crashes: AtomicU32::new(0),
                restarts: AtomicU32::new(0),
                #[cfg(feature = "recycling")]
                recycles: AtomicU32::new(0),
                #[cfg(feature = "backoff")]
                backoff: AtomicU32::new(0),
                #[cfg(feature = "backoff")]
                ready_at: AtomicU32::new(0),
                #[cfg(feature = "cancellation")]
                cancelled: AtomicUsize::new(0),
                #[cfg(feature = "deadlines")]
                started: AtomicU32::new(0),
                #[cfg(feature = "deadlines")]
                deadline: AtomicU32::new(0),
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
            (&raw mut (*place).state).write(StateWord::new());
            (&raw mut (*place).heartbeat).write(AtomicU32::new(0));
            (&raw mut (*place).completed).write(AtomicUsize::new(0));
            (&raw mut (*place).failed).write(AtomicUsize::new(0));
            (&raw mut (*place).crashes).write(AtomicU32::new(0));
            (&raw mut (*place).restarts).write(AtomicU32::new(0));
            #[cfg(feature = "recycling")]
            (&raw mut (*place).recycles).write(AtomicU32::new(0));
            #[cfg(feature = "backoff")]
            (&raw mut (*place).backoff).write(AtomicU32::new(0));
            #[cfg(feature = "backoff")]
            (&raw mut (*place).ready_at).write(AtomicU32::new(0));
            #[cfg(feature = "cancellation")]
            (&raw mut (*place).cancelled).write(AtomicUsize::new(0));
            #[cfg(feature = "deadlines")]
            (&raw mut (*place).started).write(AtomicU32::new(0));
            #[cfg(feature = "deadlines")]
            (&raw mut (*place).deadline).write(AtomicU32::new(0));
            init_empty_cell(&raw mut (*place).task);
        }
    }

    /// Moves the task out of the cell.
    ///
    /// # Safety
    /// The caller owns the cell (see the module docs) and it holds a task; afterwards the
    /// caller clears `HAS_TASK`, writes the cell again, or forgets the task it read.
    pub(crate) unsafe fn take(&self) -> Envelope<T> {
        // SAFETY: per the contract the cell is initialized and nobody else writes it.
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
    pub(crate) unsafe fn count_run(&self) {
        // SAFETY: per the contract the cell is initialized and nobody else touches it.
        self.task.with_mut(|cell| unsafe {
            let envelope = (*cell).assume_init_mut();
            envelope.runs = envelope.runs.wrapping_add(1);
        });
    }

    /// Takes back the count of a run that never started (its worker died before beginning
    /// it; see `Job::crash_unstarted`).
    ///
    /// # Safety
    /// The caller owns the cell and it holds a task.
    pub(crate) unsafe fn uncount_run(&self) {
        // SAFETY: per the contract the cell is initialized and nobody else touches it.
        self.task.with_mut(|cell| unsafe {
            let envelope = (*cell).assume_init_mut();
            envelope.runs = envelope.runs.saturating_sub(1);
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

    /// Counts a finished task: failed, or completed.
    #[inline]
    pub(crate) fn count_outcome(&self, failed: bool) {
        let counter = if failed {
            &self.failed
        } else {
            &self.completed
        };
        // Relaxed load: the worker is the counter's only writer.
        let value = counter.load(Ordering::Relaxed);
        // Release: a snapshot that sees the count also sees the pop behind it.
        counter.store(value.wrapping_add(1), Ordering::Release);
    }

    /// Counts a task ended cancelled. The caller is the worker (its slot Idle after 25) or the
    /// recoverer (Recovering): the only writer at the moment.
    #[cfg(feature = "cancellation")]
    #[inline]
    pub(crate) fn count_cancelled(&self) {
        // Relaxed load: one writer at a time, ordered by the state word.
        let value = self.cancelled.load(Ordering::Relaxed);
        // Release: a snapshot that sees the count also sees the pop behind it.
        self.cancelled
            .store(value.wrapping_add(1), Ordering::Release);
    }

    /// Counts a crash; the caller recovers the slot (Recovering), so it is the only writer.
    #[inline]
    pub(crate) fn count_crash(&self) {
        bump_informational(&self.crashes);
    }

    /// Counts a replacement asked for; the caller is the recoverer or the exiting worker, the
    /// only writer at the moment.
    #[inline]
    pub(crate) fn count_restart(&self) {
        bump_informational(&self.restarts);
    }

    /// Counts a recycling; the caller is the worker being recycled, the only writer.
    #[cfg(feature = "recycling")]
    #[inline]
    pub(crate) fn count_recycle(&self) {
        bump_informational(&self.recycles);
    }

    /// Workers of this slot recycled so far (0 without the feature `recycling`).
    #[inline]
    pub(crate) fn recycles(&self) -> u32 {
        #[cfg(feature = "recycling")]
        // Relaxed: informational.
        return self.recycles.load(Ordering::Relaxed);
        #[cfg(not(feature = "recycling"))]
        0
    }

    /// Ends the slot's streak of crashes: a worker recorded an outcome (see
    /// [`Backoff`](crate::policy::Backoff)). The caller is the worker, its slot Idle after 7.
    #[inline]
    pub(crate) fn end_crash_streak(&self) {
        // Relaxed: one writer at a time, ordered by the state word's transitions (the
        // recoverer reads it from Recovering, after this worker's next transition 4 and 9/10).
        #[cfg(feature = "backoff")]
        if self.backoff.load(Ordering::Relaxed) != 0 {
            self.backoff.store(0, Ordering::Relaxed);
        }
    }
}

/// Bumps `crashes` or `restarts`, whose one writer at a time is the caller.
fn bump_informational(counter: &AtomicU32) {
    // Relaxed load + store: one writer at a time (see the fields); informational, read by
    // snapshots only.
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
}

/// Notes that a run starts at `now`, without a deadline of its own yet. The caller is the
/// worker, before transition 4 publishes it.
#[cfg(feature = "deadlines")]
#[inline]
pub(crate) fn start_deadline<T>(slot: &WorkerSlot<T>, now: Tick) {
    // Relaxed: single writer (the worker); published by its transition 4.
    slot.started.store(now, Ordering::Relaxed);
    // Relaxed: as above.
    slot.deadline.store(0, Ordering::Relaxed);
}

/// Gives the current run of `slot` a deadline of `ticks` from its start (cut to
/// [`MAX_DURATION`](crate::policy::MAX_DURATION)). The caller is the worker running it.
#[cfg(feature = "deadlines")]
pub(crate) fn set_deadline<T>(slot: &WorkerSlot<T>, ticks: Tick) {
    let ticks = if ticks > crate::policy::MAX_DURATION {
        crate::policy::MAX_DURATION
    } else {
        ticks
    };
    // Relaxed: advisory, as a heartbeat is: a watchdog that reads it late judges this run by
    // the policy's deadline once more (it read the word of this run, so never by another
    // run's deadline: that one was cleared before 4).
    slot.deadline.store(ticks + 1, Ordering::Relaxed);
}

/// The deadline of the run the caller saw starting (with an Acquire load of the word), as
/// `(its start, ticks)`, if it has one of its own.
#[cfg(feature = "deadlines")]
#[inline]
pub(crate) fn own_deadline<T>(slot: &WorkerSlot<T>) -> Option<(Tick, Tick)> {
    // Relaxed: ordered after the run's transition 4 by the caller's Acquire load (see
    // `start_deadline`); `set_deadline` is advisory.
    let deadline = slot.deadline.load(Ordering::Relaxed);
    // Relaxed: as above.
    (deadline != 0).then(|| (slot.started.load(Ordering::Relaxed), deadline - 1))
}

/// Stamps a heartbeat: the task started, or showed progress, at `now`.
#[inline]
pub(crate) fn stamp(heartbeat: &AtomicU32, now: Tick) {
    // Relaxed: single writer (the worker); published by the next transition (4), or advisory
    // (a heartbeat racing the watchdog's look is judged by either value).
    heartbeat.store(now, Ordering::Relaxed);
}

#[cfg(all(test, not(loom)))]
mod tests {
    //! Every transition against every state, checked against the module docs' table.

    extern crate std;

    use super::*;
    use std::vec::Vec;

    const STATES: [u32; 12] = [
        VACANT,
        STARTING,
        IDLE,
        BUSY,
        HUNG,
        TERMINATING,
        EXITING,
        EXITED,
        CRASHED,
        RECOVERING,
        RESTARTING,
        RETIRED,
    ];

    /// One row of the module docs' table: the number, the function (called on a word and
    /// the word the caller saw), the arrows, and the flag rules (in the word's bits).
    struct Row {
        number: u32,
        name: &'static str,
        call: fn(&StateWord, Word) -> Moved,
        arrows: &'static [(u32, u32)],
        sets: u32,
        clears: u32,
        requires: u32,
        forbids: u32,
        next_generation: bool,
        /// Its rule for `CANCELLED`: 0 (kept), or one of `SETS_CANCELLED`,
        /// `CLEARS_CANCELLED`, `FORBIDS_CANCELLED`.
        cancelled: u8,
    }

    const fn row(
        number: u32,
        name: &'static str,
        call: fn(&StateWord, Word) -> Moved,
        arrows: &'static [(u32, u32)],
    ) -> Row {
        Row {
            number,
            name,
            call,
            arrows,
            sets: 0,
            clears: 0,
            requires: 0,
            forbids: 0,
            next_generation: false,
            cancelled: 0,
        }
    }

    /// The table of the module docs, transcribed.
    fn table() -> Vec<Row> {
        const BUSY_HUNG_TERMINATING_TO_CRASHED: &[(u32, u32)] =
            &[(BUSY, CRASHED), (HUNG, CRASHED), (TERMINATING, CRASHED)];
        const BUSY_HUNG_TERMINATING_TO_RECOVERING: &[(u32, u32)] = &[
            (BUSY, RECOVERING),
            (HUNG, RECOVERING),
            (TERMINATING, RECOVERING),
        ];
        const ENDED_STAY: &[(u32, u32)] = &[(EXITED, EXITED), (RETIRED, RETIRED)];
        std::vec![
            row(1, "reserve", |s, _| s.reserve(), &[(VACANT, STARTING)]),
            row(
                2,
                "attach",
                |s, _| s.attach(),
                &[(STARTING, IDLE), (RESTARTING, IDLE)]
            ),
            row(3, "release", |s, _| s.release(), &[(STARTING, VACANT)]),
            Row {
                sets: HAS_TASK,
                next_generation: true,
                ..row(4, "start", |s, _| s.start(), &[(IDLE, BUSY)])
            },
            row(5, "flag_hung", |s, seen| s.flag_hung(seen), &[(BUSY, HUNG)]),
            row(6, "heartbeat", |s, _| s.heartbeat(), &[(HUNG, BUSY)]),
            Row {
                clears: HAS_TASK,
                cancelled: FORBIDS_CANCELLED,
                ..row(
                    7,
                    "finish",
                    |s, _| s.finish(),
                    &[(BUSY, IDLE), (HUNG, IDLE)]
                )
            },
            row(
                8,
                "condemn",
                |s, seen| s.condemn(seen),
                &[(BUSY, TERMINATING), (HUNG, TERMINATING)]
            ),
            row(
                9,
                "abandon",
                |s, _| s.abandon(),
                BUSY_HUNG_TERMINATING_TO_CRASHED
            ),
            row(
                10,
                "crash",
                |s, _| s.crash(),
                BUSY_HUNG_TERMINATING_TO_RECOVERING
            ),
            row(
                11,
                "declare_dead",
                |s, _| s.declare_dead(),
                &[
                    (STARTING, CRASHED),
                    (IDLE, CRASHED),
                    (BUSY, CRASHED),
                    (HUNG, CRASHED),
                    (TERMINATING, CRASHED),
                    (CRASHED, CRASHED),
                    (EXITING, EXITED),
                ],
            ),
            row(12, "recover", |s, _| s.recover(), &[(CRASHED, RECOVERING)]),
            Row {
                sets: HAS_TASK,
                cancelled: CLEARS_CANCELLED,
                ..row(
                    13,
                    "await_replacement(with a retry)",
                    |s, _| s.await_replacement(true),
                    &[(RECOVERING, RESTARTING)],
                )
            },
            Row {
                clears: HAS_TASK,
                cancelled: CLEARS_CANCELLED,
                ..row(
                    13,
                    "await_replacement(without)",
                    |s, _| s.await_replacement(false),
                    &[(RECOVERING, RESTARTING)],
                )
            },
            Row {
                clears: HAS_TASK,
                cancelled: CLEARS_CANCELLED,
                ..row(14, "retire", |s, _| s.retire(), &[(RECOVERING, RETIRED)])
            },
            Row {
                forbids: HAS_TASK,
                ..row(15, "leave", |s, _| s.leave(), &[(IDLE, EXITING)])
            },
            row(
                16,
                "exit",
                |s, _| s.exit(),
                &[(EXITING, EXITED), (IDLE, EXITED)]
            ),
            row(
                17,
                "exit_for_replacement",
                |s, _| s.exit_for_replacement(),
                &[(IDLE, RESTARTING)]
            ),
            row(
                18,
                "cancel_restart",
                |s, _| s.cancel_restart(),
                &[(RESTARTING, RECOVERING)]
            ),
            row(
                19,
                "sweep",
                |s, _| s.sweep(),
                &[(STARTING, VACANT), (RESTARTING, RETIRED)]
            ),
            Row {
                forbids: HAS_TASK,
                ..row(
                    20,
                    "reopen",
                    |s, _| s.reopen(),
                    &[(EXITED, VACANT), (RETIRED, VACANT)]
                )
            },
            Row {
                requires: HAS_TASK,
                forbids: CLAIMED,
                sets: CLAIMED,
                ..row(
                    21,
                    "claim_leftover",
                    |s, seen| s.claim_leftover(seen),
                    ENDED_STAY
                )
            },
            Row {
                requires: HAS_TASK | CLAIMED,
                clears: HAS_TASK | CLAIMED,
                ..row(22, "hand_back", |s, _| s.hand_back(), ENDED_STAY)
            },
            row(23, "claim", |s, _| s.claim(), &[(VACANT, IDLE)]),
            #[cfg(feature = "cancellation")]
            Row {
                cancelled: SETS_CANCELLED,
                ..row(
                    24,
                    "cancel",
                    |s, seen| s.cancel(seen),
                    &[(BUSY, BUSY), (HUNG, HUNG), (TERMINATING, TERMINATING)],
                )
            },
            #[cfg(feature = "cancellation")]
            Row {
                clears: HAS_TASK,
                cancelled: CLEARS_CANCELLED,
                ..row(
                    25,
                    "finish_cancelled",
                    |s, _| s.finish_cancelled(),
                    &[(BUSY, IDLE), (HUNG, IDLE)],
                )
            },
        ]
    }

    /// The flag combinations every transition is tried on: `CANCELLED` only with the feature
    /// (without it, no transition ever sets the bit).
    fn flag_combinations() -> Vec<u32> {
        let mut flags = std::vec![0, HAS_TASK, CLAIMED, HAS_TASK | CLAIMED];
        if cfg!(feature = "cancellation") {
            flags.extend(flags.clone().iter().map(|flags| flags | CANCELLED));
        }
        flags
    }

    fn word_with(word: u32) -> StateWord {
        StateWord(AtomicU32::new(word))
    }

    #[test]
    fn every_transition_against_every_state_does_what_the_table_says() {
        let table = table();
        let numbers: Vec<u32> = table.iter().map(|row| row.number).collect();
        let last = if cfg!(feature = "cancellation") {
            25
        } else {
            23
        };
        let mut expected: Vec<u32> = (1..=last).collect();
        expected.insert(13, 13); // 13 has two rows, with and without a retry
        assert_eq!(numbers, expected, "one row per number of the table");
        assert_eq!(
            TRANSITIONS.len(),
            table.len() + 1,
            "the table holds every transition (and no transition 0)"
        );
        let mut pairs = 0;
        for row in &table {
            for from in STATES {
                for flags in flag_combinations() {
                    let generation = 0xAB_CD;
                    let before = (generation << GEN_SHIFT) | flags | from;
                    let word = word_with(before);
                    let result = (row.call)(&word, Word(before));
                    let after = word.0.load(Ordering::Relaxed);
                    let what = std::format!("{} {} on {:?}", row.number, row.name, Word(before));
                    pairs += 1;
                    let arrow = row.arrows.iter().find(|(f, _)| *f == from);
                    let flags_allow = flags & row.requires == row.requires
                        && flags & row.forbids == 0
                        && !(row.cancelled == FORBIDS_CANCELLED && flags & CANCELLED != 0);
                    let Some(&(_, to)) = arrow.filter(|_| flags_allow) else {
                        assert_eq!(result, Err(Word(before)), "{what}: refused");
                        assert_eq!(after, before, "{what}: a refusal leaves the word");
                        continue;
                    };
                    assert_eq!(result, Ok(Word(before)), "{what}: returns the old word");
                    assert_eq!(after & STATE_MASK, to, "{what}: the new state");
                    let mut flags_after = (flags & !row.clears) | row.sets;
                    match row.cancelled {
                        SETS_CANCELLED => flags_after |= CANCELLED,
                        CLEARS_CANCELLED => flags_after &= !CANCELLED,
                        _ => {}
                    }
                    assert_eq!(
                        after & (HAS_TASK | CLAIMED | CANCELLED),
                        flags_after,
                        "{what}: the flags"
                    );
                    let generation_after = generation + u32::from(row.next_generation);
                    assert_eq!(
                        after >> GEN_SHIFT,
                        generation_after,
                        "{what}: the generation"
                    );
                    assert_eq!(
                        after
                            & !(STATE_MASK
                                | HAS_TASK
                                | CLAIMED
                                | CANCELLED
                                | (u32::MAX << GEN_SHIFT)),
                        0,
                        "{what}: no other bit"
                    );
                }
            }
        }
        assert_eq!(pairs, table.len() * 12 * flag_combinations().len());
    }

    #[test]
    fn the_inlined_start_and_finish_do_what_their_numbers_in_the_table_do() {
        // Off bare metal, `start` and `finish` inline their `Op`; on bare metal they call the
        // table by number. Both paths, on every word (state codes beyond the 12 included).
        type Inlined = fn(&StateWord) -> Moved;
        let hot: [(u8, Inlined); 2] = [(4, StateWord::start), (7, StateWord::finish)];
        for (number, inlined) in hot {
            for code in 0..=STATE_MASK {
                for flags in flag_combinations() {
                    let before = (0x12_34 << GEN_SHIFT) | flags | code;
                    let (by_number, by_op) = (word_with(before), word_with(before));
                    assert_eq!(
                        (
                            by_number.apply_now(number),
                            by_number.0.load(Ordering::Relaxed)
                        ),
                        (inlined(&by_op), by_op.0.load(Ordering::Relaxed)),
                        "transition {number} on {:?}",
                        Word(before)
                    );
                }
            }
        }
    }

    #[test]
    fn the_watchdogs_verdict_and_a_hand_back_apply_only_to_the_word_they_saw() {
        let busy = (5 << GEN_SHIFT) | HAS_TASK | BUSY;
        let newer = busy + (1 << GEN_SHIFT);
        let word = word_with(newer);
        // The worker finished and started another task since the watchdog looked.
        assert_eq!(word.flag_hung(Word(busy)), Err(Word(newer)));
        assert_eq!(word.0.load(Ordering::Relaxed), newer);
        assert_eq!(word.flag_hung(Word(newer)), Ok(Word(newer)));
        let newer_hung = newer - BUSY + HUNG;
        assert_eq!(word.0.load(Ordering::Relaxed), newer_hung);
        // Condemning the run that hung, after the worker moved on: refused, the new run lives.
        assert_eq!(word.condemn(Word(busy)), Err(Word(newer_hung)));
        assert_eq!(word.0.load(Ordering::Relaxed), newer_hung);
        // A heartbeat since the verdict (Hung → Busy, same run): refused too; the caller looks
        // again and names the word it found.
        let word = word_with(busy);
        assert_eq!(word.condemn(Word(busy - BUSY + HUNG)), Err(Word(busy)));
        assert_eq!(word.condemn(Word(busy)), Ok(Word(busy)));
        assert_eq!(word.0.load(Ordering::Relaxed), busy - BUSY + TERMINATING);
        // Another hand-back claimed the task since this one looked.
        let exited = HAS_TASK | EXITED;
        let word = word_with(exited | CLAIMED);
        assert_eq!(
            word.claim_leftover(Word(exited)),
            Err(Word(exited | CLAIMED))
        );
    }

    #[cfg(feature = "cancellation")]
    #[test]
    fn a_cancellation_applies_only_to_the_run_it_names_and_stops_only_that_run() {
        let busy = (5 << GEN_SHIFT) | HAS_TASK | BUSY;
        let newer = busy + (1 << GEN_SHIFT);
        let word = word_with(newer);
        // The worker finished and started another task since the host looked.
        assert_eq!(word.cancel(Word(busy)), Err(Word(newer)));
        assert!(!word.load().stops_run(6));
        assert_eq!(word.cancel(Word(newer)), Ok(Word(newer)));
        assert_eq!(word.load(), Word(newer | CANCELLED));
        assert!(word.load().stops_run(6) && word.load().is_cancelled());
        // Idempotent, and condemnable still.
        assert_eq!(
            word.cancel(Word(newer | CANCELLED)),
            Ok(Word(newer | CANCELLED))
        );
        // A cancelled run cannot finish, only end cancelled; then the flag is gone.
        assert_eq!(word.finish(), Err(Word(newer | CANCELLED)));
        assert_eq!(word.finish_cancelled(), Ok(Word(newer | CANCELLED)));
        assert_eq!(word.load(), Word(IDLE | (6 << GEN_SHIFT)));
        // Another run's generation, a condemned run and an idle slot stop a run too.
        assert!(Word(newer).stops_run(5));
        assert!(Word(newer - BUSY + TERMINATING).stops_run(6));
        assert!(Word(IDLE | (6 << GEN_SHIFT)).stops_run(6));
        assert!(!Word(newer - BUSY + HUNG).stops_run(6));
        assert_eq!(
            std::format!("{:?}", Word(newer | CANCELLED)),
            "Word(Busy with task, cancelled, generation 6)"
        );
    }

    #[test]
    fn transitions_retry_after_losing_a_race_and_then_judge_the_new_word() {
        // `apply` from a stale guess: it sees the real word on the failed CAS and judges that.
        let word = word_with(HUNG | HAS_TASK);
        assert_eq!(word.apply(BUSY | HAS_TASK, 7), Ok(Word(HUNG | HAS_TASK)));
        assert_eq!(word.load(), Word(IDLE));
        let word = word_with(TERMINATING | HAS_TASK);
        assert_eq!(
            word.apply(BUSY | HAS_TASK, 7),
            Err(Word(TERMINATING | HAS_TASK))
        );
    }

    #[test]
    fn generations_wrap_around_without_touching_the_state() {
        let word = word_with((u32::MAX << GEN_SHIFT) | IDLE);
        assert_eq!(word.start().map(Word::state), Ok(WorkerState::Idle));
        assert_eq!(word.load(), Word(BUSY | HAS_TASK));
    }

    #[test]
    fn a_word_debugs_as_its_state_flag_and_generation() {
        assert_eq!(
            std::format!("{:?}", Word((7 << GEN_SHIFT) | HAS_TASK | BUSY)),
            "Word(Busy with task, generation 7)"
        );
        assert_eq!(
            std::format!("{:?}", Word(RECOVERING)),
            "Word(Crashed, generation 0)"
        );
    }

    #[test]
    fn the_counters_count_what_their_names_say() {
        let slot: WorkerSlot<u8> = WorkerSlot::new();
        let read = |slot: &WorkerSlot<u8>| {
            (
                slot.completed.load(Ordering::Relaxed),
                slot.failed.load(Ordering::Relaxed),
                slot.crashes.load(Ordering::Relaxed),
                slot.restarts.load(Ordering::Relaxed),
            )
        };
        slot.count_outcome(false);
        slot.count_outcome(false);
        slot.count_outcome(true);
        slot.count_crash();
        slot.count_restart();
        slot.count_restart();
        slot.count_restart();
        assert_eq!(read(&slot), (2, 1, 1, 3));
        stamp(&slot.heartbeat, 42);
        assert_eq!(slot.heartbeat.load(Ordering::Relaxed), 42);
    }

    #[test]
    fn the_shown_states_and_the_predicates_follow_the_codes() {
        let shown = [
            (VACANT, WorkerState::Vacant, "vacant"),
            (STARTING, WorkerState::Starting, "starting"),
            (IDLE, WorkerState::Idle, "idle"),
            (BUSY, WorkerState::Busy, "busy"),
            (HUNG, WorkerState::Hung, "hung"),
            (TERMINATING, WorkerState::Terminating, "terminating"),
            (EXITING, WorkerState::Exiting, "exiting"),
            (EXITED, WorkerState::Exited, "exited"),
            (CRASHED, WorkerState::Crashed, "crashed"),
            (RECOVERING, WorkerState::Crashed, "crashed"),
            (RESTARTING, WorkerState::Restarting, "restarting"),
            (RETIRED, WorkerState::Retired, "retired"),
        ];
        for (code, state, name) in shown {
            let word = Word(code | HAS_TASK | (3 << GEN_SHIFT));
            assert_eq!(word.state(), state);
            assert_eq!(std::format!("{state}"), name);
            assert_eq!(word.is_vacant(), code == VACANT);
            assert_eq!(word.is_idle(), code == IDLE);
            assert_eq!(word.is_busy(), code == BUSY);
            assert_eq!(word.is_exiting(), code == EXITING);
            assert_eq!(word.is_restarting(), code == RESTARTING);
            assert_eq!(
                word.task_may_return(),
                matches!(code, BUSY | HUNG | TERMINATING | CRASHED | RECOVERING)
            );
            assert!(word.has_task());
            assert!(!Word(code).has_task());
            assert_eq!(word.has_leftover(), matches!(code, EXITED | RETIRED));
            assert!(!Word(code | HAS_TASK | CLAIMED).has_leftover());
            assert!(!Word(code).has_leftover());
        }
    }
}
