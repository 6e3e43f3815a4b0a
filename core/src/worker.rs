//! The handles a host drives: [`Worker`] (one per attached worker slot), the [`Job`] it
//! takes, the [`Context`] task code sees, and [`Next`], what a step found.
//!
//! The words they change belong elsewhere: each step is a numbered transition of the slot's
//! state word (see `slot`), and what follows a crash or a normal exit is the supervisor's
//! (`Supervisor::recover_claimed`, `Supervisor::exit_running`).
//!
//! # Words for ending
//!
//! - A task is *finished* when its one outcome is recorded: [`Job::complete`] or
//!   [`Job::fail`]. A worker *crashes* ([`Job::crash`]) or *abandons* its task (a [`Job`]
//!   dropped unfinished): either way the task is recovered per the delivery policy.
//! - A worker *leaves* when a step finds a shutdown ([`Next::Exit`]), and *exits* when its
//!   handle goes ([`Worker::exit`], or drop). An exit while the supervisor runs is a *normal
//!   exit*: the restart policy may ask for a replacement.
//! - A slot is *released* when the host gives up a reservation
//!   ([`Supervisor::release`](crate::Supervisor::release)), and *retired* when no worker will
//!   take it over ([`Supervisor::retire`](crate::Supervisor::retire), or a decision).

use core::fmt;
use core::mem::ManuallyDrop;

use crate::park::Park;
use crate::phase::Leaving;
use crate::queue::PopError;
use crate::slot::{self, Run, StateWord, WorkerSlot};
use crate::supervisor::{CrashReport, Decision, Supervisor};
use crate::sync::{AtomicU32, Ordering};

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
    /// The slot at `index`, looked up once when attaching.
    slot: &'s WorkerSlot<T>,
    index: usize,
    /// Set when this handle's job crashed or was condemned, or the worker was recycled: the
    /// slot is no longer ours (a replacement may already own it).
    dead: bool,
    /// Set when the worker was recycled (the slot awaits a fresh worker).
    recycled: bool,
    /// Tasks this worker started, for recycling.
    started: u32,
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
    /// The worker is done: a shutdown asked it to leave, it crashed, or it was recycled
    /// ([`Worker::exit`] then says [`Decision::Recycle`]). Drop (or exit) the handle.
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
    pub(crate) fn new(
        sup: &'s Supervisor<T, N, W, P>,
        slot: &'s WorkerSlot<T>,
        index: usize,
    ) -> Self {
        Worker {
            sup,
            slot,
            index,
            dead: false,
            recycled: false,
            started: 0,
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

    fn slot(&self) -> &'s WorkerSlot<T> {
        self.slot
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

    /// One step: start a task in the slot (transition 4), or report idle, or leave (15).
    fn step(&mut self) -> Step {
        if self.dead {
            return Step::Exit;
        }
        let slot = self.slot();
        let word = slot.state.load();
        if !word.is_idle() {
            // Exiting: nothing more to do.
            return Step::Exit;
        }
        if let Some(quota) = self.sup.policy().recycling() {
            // Between tasks, its quota run: the slot goes to a fresh worker (17).
            #[cfg(feature = "recycling")]
            if self.started >= quota && !word.has_task() && self.sup.recycle(slot).is_ok() {
                self.dead = true;
                self.recycled = true;
                return Step::Exit;
            }
            #[cfg(not(feature = "recycling"))]
            let _ = quota;
        }
        if !word.has_task() {
            if self.sup.stops_workers() {
                return self.leave();
            }
            match self.sup.take_queued() {
                Ok(envelope) => {
                    // SAFETY: the slot is Idle without a task and this thread holds its live
                    // Worker: the cell is ours and empty (see `slot`).
                    unsafe { slot.put(envelope) };
                }
                Err(PopError::Empty) => return Step::Idle,
                // Draining, and a peer's task may yet crash back into the queue: stay.
                Err(PopError::Closed) if self.sup.drain_waits() => return Step::Idle,
                Err(PopError::Closed) => return self.leave(),
            }
        }
        // SAFETY: the slot is Idle and this thread holds its live Worker: the cell is ours,
        // and it holds the task (just put there, or a retry left for us).
        unsafe { slot.count_run() };
        let now = self.sup.now();
        slot::stamp(&slot.heartbeat, now);
        #[cfg(feature = "deadlines")]
        slot::start_deadline(slot, now);
        // Refused only if the host declared this worker dead, promising it never runs again.
        match slot.state.start() {
            Ok(_) => {
                if cfg!(feature = "recycling") {
                    self.started = self.started.wrapping_add(1);
                }
                Step::Started
            }
            Err(_) => Step::Exit,
        }
    }

    /// Idle → Exiting (transition 15): a shutdown asks the worker to leave.
    fn leave(&self) -> Step {
        // Refused only if the host declared this worker dead.
        let _ = self.slot().state.leave();
        Step::Exit
    }

    /// The job for the task `step` just started.
    fn job(&mut self) -> Job<'_, T, N, W, P> {
        Job {
            sup: self.sup,
            slot: self.slot,
            index: self.index,
            dead: &mut self.dead,
        }
    }

    /// Whether this worker was recycled after its quota of tasks
    /// ([`Policy::with_recycling`](crate::policy::Policy::with_recycling)) or by
    /// [`recycle`](Self::recycle): its step ended
    /// with [`Next::Exit`] and the slot awaits a fresh worker, which the host attaches (as
    /// [`exit`](Self::exit) also says, with [`Decision::Recycle`]).
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Next, Supervisor};
    /// let sup: Supervisor<u8, 2, 1> = Supervisor::new(Policy::DEFAULT.with_recycling(1)?, NoPark);
    /// sup.try_submit(1).unwrap();
    /// let mut worker = sup.attach(0).unwrap();
    /// let Next::Run(job) = worker.try_next() else { unreachable!() };
    /// job.complete().unwrap();
    /// assert!(!worker.is_recycled());
    /// assert!(matches!(worker.try_next(), Next::Exit));
    /// assert!(worker.is_recycled());
    /// let fresh = sup.attach(0).unwrap();
    /// # drop(fresh);
    /// # Ok::<(), foreman_rt::policy::PolicyError>(())
    /// ```
    pub fn is_recycled(&self) -> bool {
        // Constant without the feature: a host's recycling branch compiles away.
        cfg!(feature = "recycling") && self.recycled
    }

    /// Recycles this worker now, between tasks, at the host's request (a host that watches
    /// what a worker holds — its memory, say — recycles it when that passes a limit): the
    /// same as a recycling after a quota of tasks
    /// ([`Policy::with_recycling`](crate::policy::Policy::with_recycling)), which the policy
    /// need not have. Not a crash: it is not counted against the restart intensity, its
    /// replacement waits for no backoff, and the snapshot counts it in
    /// [`WorkerSnapshot::recycles`](crate::WorkerSnapshot::recycles). From now on
    /// [`try_next`](Self::try_next) says [`Next::Exit`], [`is_recycled`](Self::is_recycled)
    /// says so, and [`exit`](Self::exit) returns [`Decision::Recycle`]: the host attaches a
    /// fresh worker to the slot.
    ///
    /// Refused, the worker unchanged, with the reason ([`RecycleError`](crate::RecycleError)):
    /// when workers must leave anyway (an abort or escalation; a drain whose queue is empty:
    /// a fresh worker would only attach to leave); when this handle no longer holds its slot
    /// (crashed, condemned, recycled already); and while a crashed predecessor's retry waits
    /// in the slot (run it first).
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Decision, Next, RecycleError, Supervisor};
    ///
    /// let sup: Supervisor<u8, 4, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// sup.try_submit(1).unwrap();
    /// sup.try_submit(2).unwrap();
    /// let mut worker = sup.attach(0).unwrap();
    /// let Next::Run(job) = worker.try_next() else { unreachable!() };
    /// job.complete().unwrap();
    /// assert_eq!(worker.recycle(), Ok(())); // say its memory grew too much
    /// assert_eq!(worker.recycle(), Err(RecycleError::Ended));
    /// assert!(matches!(worker.try_next(), Next::Exit));
    /// assert_eq!(worker.exit(), Decision::Recycle);
    ///
    /// let mut fresh = sup.attach(0).unwrap();
    /// let Next::Run(job) = fresh.try_next() else { unreachable!() };
    /// assert_eq!(job.complete(), Ok(2));
    /// let snap = sup.snapshot();
    /// assert_eq!((snap.recycles(), snap.restarts()), (1, 0));
    ///
    /// sup.drain(); // the queue is empty: the worker leaves, nothing would follow it
    /// assert_eq!(fresh.recycle(), Err(RecycleError::Leaving));
    /// assert!(matches!(fresh.try_next(), Next::Exit));
    /// ```
    ///
    /// (Cargo feature `recycling`, on by default.)
    #[cfg(feature = "recycling")]
    pub fn recycle(&mut self) -> Result<(), crate::RecycleError> {
        use crate::RecycleError;
        if self.dead {
            return Err(RecycleError::Ended);
        }
        let word = self.slot().state.load();
        if word.is_exiting() {
            return Err(RecycleError::Leaving);
        }
        if !word.is_idle() {
            // Declared dead by its host, or condemned: its recovery decides.
            return Err(RecycleError::Ended);
        }
        if word.has_task() {
            return Err(RecycleError::RetryWaiting);
        }
        self.sup.recycle(self.slot)?;
        self.dead = true;
        self.recycled = true;
        Ok(())
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
    ///
    /// A worker recycled after its quota of tasks
    /// ([`Policy::with_recycling`](crate::policy::Policy::with_recycling)) ends its step with
    /// [`Next::Exit`], and `exit` returns [`Decision::Recycle`]: the host attaches a fresh
    /// worker to the slot, whatever the restart policy, and no restart is counted.
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Decision, Next, Supervisor, WorkerState};
    ///
    /// let sup: Supervisor<u8, 4, 1> = Supervisor::new(Policy::DEFAULT.with_recycling(2)?, NoPark);
    /// for n in 0..3 {
    ///     sup.try_submit(n).unwrap();
    /// }
    /// let mut worker = sup.attach(0).unwrap();
    /// while let Next::Run(job) = worker.try_next() {
    ///     job.complete().unwrap(); // tasks 0 and 1, then the quota is run
    /// }
    /// assert_eq!(worker.exit(), Decision::Recycle);
    /// assert_eq!(sup.worker_state(0), Some(WorkerState::Restarting));
    /// let mut fresh = sup.attach(0).unwrap();
    /// let Next::Run(job) = fresh.try_next() else { unreachable!() };
    /// assert_eq!(job.complete(), Ok(2));
    /// let snap = sup.snapshot();
    /// assert_eq!((snap.recycles(), snap.restarts()), (1, 0));
    /// # drop(fresh);
    /// # Ok::<(), foreman_rt::policy::PolicyError>(())
    /// ```
    pub fn exit(self) -> Decision {
        let this = ManuallyDrop::new(self);
        this.end()
    }

    /// Ends the handle: the shared body of `exit` and `drop`.
    fn end(&self) -> Decision {
        if self.is_recycled() {
            // The slot awaits a fresh worker (see `Supervisor::recycle`).
            return Decision::Recycle;
        }
        if self.dead {
            // The crash's recovery decided already.
            return Decision::Retire;
        }
        let word = self.slot().state.load();
        if word.is_idle() {
            return self.sup.exit_running(self.slot);
        }
        // Exiting → Exited (transition 16). Refused if the host declared this worker dead
        // (its recovery decides) or it was counted out already.
        if word.is_exiting() && self.slot().state.exit().is_ok() {
            self.sup.deactivate(Leaving::Left);
        }
        Decision::Retire
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
/// ran ([`Supervisor::condemn`]), or (for [`Job::complete`] and [`Job::fail`]) cancelled its run
/// ([`Supervisor::cancel`]). The supervisor recovers the task per its delivery policy (a
/// cancelled run's as [`Disposition::Cancelled`](crate::Disposition::Cancelled)); the worker
/// must stop (its next [`Worker::try_next`] says [`Next::Exit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
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
/// assert_eq!((*job.task(), job.context().attempt(), job.context().worker()), (6, 1, 0));
/// let task = job.fail().unwrap(); // an error is an outcome too; the task comes back
/// assert_eq!(task, 6);
/// assert_eq!(sup.snapshot().failed, 1);
/// ```
pub struct Job<'w, T, const N: usize, const W: usize, P: Park> {
    sup: &'w Supervisor<T, N, W, P>,
    slot: &'w WorkerSlot<T>,
    index: usize,
    /// The worker's `dead` flag: set when this job lets go of its slot.
    dead: &'w mut bool,
}

impl<'w, T, const N: usize, const W: usize, P: Park> Job<'w, T, N, W, P> {
    fn slot(&self) -> &'w WorkerSlot<T> {
        self.slot
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
        let slot = self.slot();
        Context {
            // Acquire (in `load`): only the generation is used, and only this worker's own
            // transition 4 (start) changes it.
            run: Run::new(self.index, slot.state.load()),
            // SAFETY: as in `task`. The run was counted when it started.
            attempt: unsafe { slot.peek().runs },
            state: &slot.state,
            heartbeat: &slot.heartbeat,
            clock: self.sup.clock(),
        }
    }

    /// Records that the task ran to a result, and hands the task back.
    ///
    /// `Err(Condemned)` if the host condemned this worker as hung meanwhile, or cancelled
    /// this run ([`Supervisor::cancel`]; call [`cancel`](Job::cancel) instead when
    /// [`is_cancelled`](Job::is_cancelled) says so): the supervisor then owns the task, the
    /// outcome is not recorded, and the worker is crashed, for [`Supervisor::recover`].
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

    /// Records the outcome (`failed` or completed): Busy or Hung → Idle (transition 7). Not
    /// generic over the outcome, so both share one copy.
    pub(crate) fn finish(self, failed: bool) -> Result<T, Condemned> {
        let mut this = ManuallyDrop::new(self);
        let slot = this.slot();
        if slot.state.finish().is_err() {
            // Terminating (condemned) or cancelled. Let go of the task for the recoverer.
            this.abandon();
            return Err(Condemned);
        }
        // SAFETY: transition 7 moved our own Busy/Hung slot to Idle: the cell still holds the
        // task and, Idle being ours, nobody else can reach it.
        let envelope = unsafe { slot.take() };
        slot.count_outcome(failed);
        if cfg!(feature = "backoff") {
            slot.end_crash_streak();
        }
        this.sup.task_returned();
        Ok(envelope.task)
    }

    /// Whether this run was cancelled ([`Supervisor::cancel`]) or condemned, or has otherwise
    /// ended: its result will not be recorded as completed. A host checks it when the task
    /// returns and calls [`cancel`](Job::cancel) instead of [`complete`](Job::complete). Always
    /// `false` without the feature `cancellation`, unless condemned. The same as
    /// [`Context::is_cancelled`].
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Next, Supervisor};
    /// let sup: Supervisor<u8, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// sup.try_submit(1).unwrap();
    /// let mut worker = sup.attach(0).unwrap();
    /// let Next::Run(job) = worker.try_next() else { unreachable!() };
    /// let run = job.context().run();
    /// assert!(!job.is_cancelled());
    /// sup.cancel(run).unwrap();
    /// assert!(job.is_cancelled());
    /// assert_eq!(job.cancel(), Ok(1));
    /// # drop(worker);
    /// ```
    pub fn is_cancelled(&self) -> bool {
        // Acquire (in `load`): only the word is looked at.
        let word = self.slot().state.load();
        word.stops_run(word.generation())
    }

    /// Records that the run ended *cancelled* — its ticket was cancelled before it ran
    /// ([`Ticket::claim`](crate::Ticket::claim) refused), or it was cancelled while it ran and
    /// the task returned — and hands the task back. Busy or Hung → Idle (transition 25),
    /// counted in [`Snapshot::cancelled`](crate::Snapshot::cancelled). Final: not retried. The
    /// worker goes on with its next task. (Whether or not [`Supervisor::cancel`] marked the run.)
    ///
    /// `Err(Condemned)` if the host condemned this worker meanwhile: the supervisor then owns
    /// the task and the worker is crashed, as for [`complete`](Job::complete).
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Next, Supervisor, Ticket};
    /// static TICKET: Ticket = Ticket::new();
    /// let sup: Supervisor<u8, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// sup.try_submit(1).unwrap();
    /// TICKET.cancel(); // cancelled while queued
    /// let mut worker = sup.attach(0).unwrap();
    /// let Next::Run(job) = worker.try_next() else { unreachable!() };
    /// assert!(TICKET.claim(job.context().run()).is_err()); // so it never runs
    /// assert_eq!(job.cancel(), Ok(1));
    /// TICKET.end();
    /// assert_eq!(sup.snapshot().cancelled, 1);
    /// # drop(worker);
    /// ```
    #[cfg(feature = "cancellation")]
    pub fn cancel(self) -> Result<T, Condemned> {
        let mut this = ManuallyDrop::new(self);
        let slot = this.slot();
        if slot.state.finish_cancelled().is_err() {
            // Terminating: condemned. Let go of the task for the recoverer.
            this.abandon();
            return Err(Condemned);
        }
        // SAFETY: transition 25 moved our own Busy/Hung slot to Idle: the cell still holds the
        // task and, Idle being ours, nobody else can reach it.
        let envelope = unsafe { slot.take() };
        slot.count_cancelled();
        if cfg!(feature = "backoff") {
            slot.end_crash_streak();
        }
        this.sup.task_returned();
        Ok(envelope.task)
    }

    /// Gives this run a deadline of its own: the watchdog ([`Supervisor::tick`]) flags it
    /// hung once `ticks` have passed since the run *started* (more than `ticks`, as for the
    /// policy's watchdog). Heartbeats do not extend it. It replaces the policy's watchdog
    /// deadline for this run, and works without one. A host sets it after the task starts,
    /// from the options it was submitted with, and again on every retry: a new run starts
    /// without one. Deadlines of `Tick::MAX / 2` ticks or more are cut to `Tick::MAX / 2 - 1`
    /// (see [`Tick`](crate::policy::Tick)).
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Next, Supervisor, WorkerState};
    /// let sup: Supervisor<u8, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark); // no watchdog
    /// sup.tick(100);
    /// sup.try_submit(1).unwrap();
    /// let mut worker = sup.attach(0).unwrap();
    /// let Next::Run(job) = worker.try_next() else { unreachable!() };
    /// job.set_deadline(10);
    /// assert!(sup.tick(105).is_empty());
    /// job.context().heartbeat(); // does not extend the deadline
    /// assert!(sup.tick(110).is_empty());
    /// assert_eq!(sup.tick(111).as_slice(), [job.context().run()]);
    /// assert_eq!(sup.worker_state(0), Some(WorkerState::Hung));
    /// # job.complete().unwrap();
    /// ```
    #[cfg(feature = "deadlines")]
    pub fn set_deadline(&self, ticks: crate::policy::Tick) {
        slot::set_deadline(self.slot(), ticks);
    }

    /// Records that the task crashed the worker (the host caught a panic, say), recovers the
    /// task per the [`Delivery`](crate::policy::Delivery) policy and decides per the
    /// [`Restart`](crate::policy::Restart) policy and [`Intensity`](crate::policy::Intensity)
    /// whether the host must start a replacement (restarts are timed by the supervisor's
    /// clock, the last [`Supervisor::tick`]).
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Decision, Disposition, Next, Supervisor};
    ///
    /// let sup: Supervisor<u8, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// sup.try_submit(1).unwrap();
    /// let mut worker = sup.attach(0).unwrap();
    /// let Next::Run(job) = worker.try_next() else { unreachable!() };
    /// let report = job.crash();
    /// assert_eq!(report.decision, Decision::Replace);
    /// assert!(matches!(report.task, Some(Disposition::Retried { attempt: 2 })));
    /// drop(worker);
    ///
    /// // The replacement runs the task again first.
    /// let mut replacement = sup.attach(0).unwrap();
    /// let Next::Run(job) = replacement.try_next() else { unreachable!() };
    /// assert_eq!((*job.task(), job.context().attempt()), (1, 2));
    /// # job.complete().unwrap();
    /// ```
    pub fn crash(self) -> CrashReport<T> {
        let mut this = ManuallyDrop::new(self);
        *this.dead = true;
        match this.slot().state.crash() {
            // Busy, Hung or Terminating → Recovering (transition 10): the recovery is ours.
            Ok(claimed) => this.sup.recover_claimed(this.slot, this.index, claimed),
            // Only if the host declared this live worker dead, breaking `declare_dead`'s
            // promise: whoever recovers the slot reports the task.
            Err(_) => CrashReport {
                worker: this.index,
                task: None,
                decision: Decision::Retire,
                delay: 0,
            },
        }
    }

    /// Like [`crash`](Job::crash), for a worker the host knows died *before this run
    /// started*: a worker process that died before it took the order, say. The run is not
    /// charged: a retry is the same attempt again, an at-least-once task is not
    /// dead-lettered for it, and an at-most-once task, which never ran, is retried instead of
    /// reported lost.
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::{Delivery, Policy}, Disposition, Next, Supervisor};
    ///
    /// let policy = Policy::DEFAULT.with_delivery(Delivery::AtMostOnce);
    /// let sup: Supervisor<u8, 2, 1> = Supervisor::new(policy, NoPark);
    /// sup.try_submit(1).unwrap();
    /// let mut worker = sup.attach(0).unwrap();
    /// let Next::Run(job) = worker.try_next() else { unreachable!() };
    /// let report = job.crash_unstarted(); // the worker died before it began the task
    /// assert!(matches!(report.task, Some(Disposition::Retried { attempt: 1 })));
    /// ```
    pub fn crash_unstarted(self) -> CrashReport<T> {
        // SAFETY: while a Job exists its slot is Busy, Hung or Terminating with a task, and
        // only this Job's worker touches the cell (invariants 1–2).
        unsafe { self.slot().uncount_run() };
        self.crash()
    }

    /// Busy, Hung or Terminating → Crashed (transition 9), leaving the task in the cell for a
    /// recoverer; the worker handle is dead from now on.
    fn abandon(&mut self) {
        *self.dead = true;
        // Refused only if the host declared this worker dead (it is Crashed then).
        let _ = self.slot().state.abandon();
    }
}

impl<T, const N: usize, const W: usize, P: Park> Drop for Job<'_, T, N, W, P> {
    /// An unfinished job means the worker crashed: the task stays in the slot, marked
    /// `Crashed`, for [`Supervisor::recover`].
    fn drop(&mut self) {
        self.abandon();
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
    run: Run,
    attempt: u32,
    state: &'j StateWord,
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
        self.run.worker()
    }

    /// This run of the task: the name a host gives [`Supervisor::condemn`](crate::Supervisor::condemn)
    /// to kill this run and no other.
    ///
    /// ```
    /// # use foreman_rt::{park::NoPark, policy::Policy, Next, Supervisor};
    /// # let sup: Supervisor<u8, 2, 2> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// # sup.try_submit(1).unwrap();
    /// # let mut worker = sup.attach(1).unwrap();
    /// # let Next::Run(job) = worker.try_next() else { unreachable!() };
    /// assert_eq!(Some(job.context().run()), sup.current_run(1));
    /// # job.complete().unwrap();
    /// ```
    pub fn run(&self) -> Run {
        self.run
    }

    /// Which attempt of the task this is: 1 the first time, 2 on the first retry, … (An
    /// attempt is one run of the task; [`Delivery`](crate::policy::Delivery) bounds how many
    /// there may be.)
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
        // Relaxed: the clock is advisory (see `Supervisor::tick`).
        slot::stamp(self.heartbeat, self.clock.load(Ordering::Relaxed));
        // Hung → Busy (transition 6); refused (no CAS) unless the watchdog flagged us.
        let _ = self.state.heartbeat();
    }

    /// Whether this run was cancelled ([`Supervisor::cancel`](crate::Supervisor::cancel)) or
    /// condemned (hung, or past its deadline, and the host is killing it), or has otherwise
    /// ended: its result will not be recorded as completed. Task code that runs long polls it
    /// and returns early: on threads and bare metal this is the only way to stop a running
    /// task. Always `false` without the feature `cancellation`, unless condemned.
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Context, Next, Supervisor};
    ///
    /// // A long task: it checks between steps whether to go on.
    /// fn sum_to(limit: u32, ctx: &Context<'_>, cancel_at: u32, sup: &Supervisor<u32, 2, 1>) -> Option<u32> {
    ///     let mut sum = 0;
    ///     for n in 1..=limit {
    ///         if n == cancel_at {
    ///             sup.cancel(ctx.run()).unwrap(); // another thread, in real life
    ///         }
    ///         if ctx.is_cancelled() {
    ///             return None; // stop early: the result would be discarded anyway
    ///         }
    ///         sum += n;
    ///     }
    ///     Some(sum)
    /// }
    /// let sup: Supervisor<u32, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// sup.try_submit(100).unwrap();
    /// let mut worker = sup.attach(0).unwrap();
    /// let Next::Run(job) = worker.try_next() else { unreachable!() };
    /// assert_eq!(sum_to(*job.task(), &job.context(), 4, &sup), None);
    /// assert!(job.is_cancelled());
    /// assert_eq!(job.cancel(), Ok(100)); // the host records it cancelled
    /// # drop(worker);
    /// ```
    pub fn is_cancelled(&self) -> bool {
        // Acquire (in `load`): only the word is looked at.
        self.state.load().stops_run(self.run.generation())
    }
}

impl fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("run", &self.run)
            .field("attempt", &self.attempt)
            .finish()
    }
}
