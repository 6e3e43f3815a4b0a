//! The cooperative host: one main loop drives every worker slot, on bare metal (Cortex-M,
//! RISC-V) or anywhere a single loop runs the work. `no_std`, no allocation.
//!
//! A [`Host`] holds a handle on every worker slot of a `static` [`Supervisor`] and is the main
//! loop's side of it; interrupt handlers are the other side ([`Supervisor::try_submit`],
//! [`Supervisor::tick`], [`Supervisor::drain`], all lock-free). The firmware supplies two
//! functions: the *task function* (one run of one task) and the *sleep* (`cortex_m::asm::wfi`,
//! `riscv::asm::wfi`). The host keeps the three rules a hand-written loop must get right:
//!
//! 1. **Tasks are taken inside a critical section** (`critical-section`, the ecosystem's
//!    portable way to mask interrupts). The queue is lock-free, but a producer that finds the
//!    queue full at the very slot a pop is emptying waits for the pop to finish; an interrupt
//!    handler that preempted that pop would wait forever. Tasks run outside it: interrupts
//!    keep submitting and the watchdog keeps watching while a task runs.
//! 2. **The check and the sleep are one critical section.** When every worker is idle the
//!    host calls the sleep inside the same critical section in which it found nothing to take.
//!    An interrupt arriving after the check cannot run (and submit) before the core sleeps; it
//!    stays pending, and a pending interrupt ends `WFI` even while masked (Cortex-M, and RISC-V
//!    for every interrupt enabled in `mie`). Its handler runs when the critical section ends,
//!    and the next step takes what it submitted. No submission is slept through. (Where the
//!    critical section is a lock shared between cores, as on the RP2040, the other core waits
//!    for it while this one sleeps: there, sleep with `WFE` and have producers on the other core
//!    `SEV` after submitting.)
//! 3. **Every outcome is recorded, and crashed workers are replaced per the supervisor.** The
//!    task function returns `Ok(output)` (completed), `Err(Failure::Error(_))` (failed, final)
//!    or `Err(Failure::Fault(_))` (a crash: the task is retried, requeued, dead-lettered or
//!    lost per the [`Delivery`](crate::policy::Delivery) policy); on
//!    [`Decision::Replace`] the host attaches the replacement at once, and it runs the
//!    crashed task's retry first. With a restart backoff
//!    ([`Policy::with_backoff`](crate::policy::Policy::with_backoff)) the replacement attaches
//!    at the first step after its delay has passed by the supervisor's clock: the firmware
//!    must then feed the clock ([`Supervisor::tick`]) from a timer interrupt, which also ends
//!    the sleep. A worker recycled after its quota of tasks
//!    ([`Policy::with_recycling`](crate::policy::Policy::with_recycling)) is reported as
//!    [`Event::Recycled`] and a fresh one takes its slot over at once.
//!
//! Each outcome reaches the firmware's sink as an [`Event`] (the vocabulary every host
//! shares), on the main loop. The watchdog runs where the clock is fed: the tick handler's
//! [`Supervisor::tick`] returns the workers it newly flagged as hung, so the host reports no
//! [`Event::Hung`]. A running task is stopped only by its own code (code that does not return
//! is stopped only by a hardware watchdog): a hung task either finishes (a heartbeat,
//! [`Context::heartbeat`], clears the flag) or, if the firmware condemned it
//! ([`Supervisor::condemn`], from the tick handler say), runs to its end, its result is
//! discarded, and the task is recovered as a crash with [`Cause::Hung`].
//!
//! **Cancellation** (feature `cancellation`) is cooperative: once the firmware cancels a run
//! (`Supervisor::cancel`, lock-free, so from an interrupt handler too), the task function sees
//! [`Context::is_cancelled`] and may return early; whatever it returns is discarded, the worker
//! goes on, and the task ends as [`Event::Cancelled`] (never retried). A task function that
//! finds its own task cancelled before it began (its `Ticket` refuses the claim) cancels its
//! run itself, and returns at once.
//!
//! Workers take turns: each step polls the slots round robin, starting after the one that ran
//! last, and runs one task. [`Host::run`] steps until every worker has left (a drain that found
//! the queue empty, an abort, an escalation); [`Host::step`] is one step, for a main loop that
//! does other things between tasks.
//!
//! ```
//! use foreman_rt::host::{cooperative::Host, Event, Failure};
//! use foreman_rt::{park::NoPark, policy::Policy, Context, Supervisor};
//!
//! static SUPERVISOR: Supervisor<u32, 8, 2> = Supervisor::new(Policy::DEFAULT, NoPark);
//!
//! // The firmware's task function: one run of one task.
//! fn square(n: &u32, _ctx: Context<'_>) -> Result<u32, Failure<()>> {
//!     Ok(n * n)
//! }
//!
//! // Attach the workers first: a drain with none attached stops the supervisor at once.
//! let mut host = Host::new(&SUPERVISOR).unwrap();
//! // Interrupt handlers would submit; here the main thread does, then drains.
//! for n in 1..=8 {
//!     SUPERVISOR.try_submit(n).unwrap();
//! }
//! SUPERVISOR.drain();
//!
//! let mut sum = 0;
//! host.run(
//!     square,
//!     |event| {
//!         if let Event::Completed { output, .. } = event {
//!             sum += output;
//!         }
//!     },
//!     || unreachable!("never idle: everything was queued"), // on a chip: cortex_m::asm::wfi
//! );
//! assert_eq!(sum, 204);
//! assert!(SUPERVISOR.is_stopped());
//! ```

use core::fmt;

use crate::host::{Cause, Event, Failure};
use crate::park::NoPark;
use crate::{Context, CrashReport, Decision, Job, Next, Supervisor, Worker, WorkerError};

/// A worker handle of the host's supervisor.
type Handle<'s, T, const N: usize, const W: usize> = Worker<'s, T, N, W, NoPark>;

/// The main loop's side of a [`Supervisor`]: see the [module docs](self).
///
/// `T` is the task, `N` the queue's capacity, `W` the number of worker slots: those of the
/// supervisor, whose every slot the host drives.
pub struct Host<'s, T, const N: usize, const W: usize> {
    sup: &'s Supervisor<T, N, W, NoPark>,
    /// One handle per slot; `None` once its worker has left (or crashed for good), or while
    /// its replacement waits out a restart backoff.
    workers: [Option<Handle<'s, T, N, W>>; W],
    /// The slots whose replacement waits out its restart backoff: each step tries to attach
    /// it (in the critical section that may sleep, so a tick that ends the delay is not
    /// slept through).
    #[cfg(feature = "backoff")]
    backing_off: [bool; W],
    /// The slot polled first by the next step: the one after the slot that ran last.
    first: usize,
}

/// What one [`Host::step`] did.
///
/// ```
/// use foreman_rt::host::cooperative::Step;
///
/// // A main loop that counts what its host did.
/// let (mut ran, mut slept) = (0, 0);
/// for step in [Step::Ran { worker: 1 }, Step::Slept, Step::Ran { worker: 0 }, Step::Finished] {
///     match step {
///         Step::Ran { .. } => ran += 1,
///         Step::Slept => slept += 1,
///         _ => break, // Finished (and kinds of steps added later)
///     }
/// }
/// assert_eq!((ran, slept), (2, 1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Step {
    /// A worker ran a task (whatever its outcome).
    Ran {
        /// The worker that ran it.
        worker: usize,
    },
    /// Every worker was idle: the host slept (the sleep function returned).
    Slept,
    /// Every worker has left: nothing will ever run again on this host.
    Finished,
}

/// What the critical section of a step found.
enum Found<'h, T, const N: usize, const W: usize> {
    /// A task, taken by worker `.0`.
    Run(usize, Job<'h, T, N, W, NoPark>),
    /// Worker `.0` must leave.
    Exit(usize),
    /// Every worker was idle; the host slept.
    Slept,
    /// No worker is left, and no replacement waits: nothing to sleep for.
    #[cfg(feature = "backoff")]
    Gone,
}

impl<'s, T, const N: usize, const W: usize> Host<'s, T, N, W> {
    /// Attaches a worker to every slot of `sup`.
    ///
    /// Fails if a slot is driven already, or the supervisor takes no workers (aborting,
    /// escalated, stopped). The workers attached before the failing slot then exit again (a
    /// normal exit: the restart policy decides, as when any handle is dropped).
    ///
    /// ```
    /// use foreman_rt::host::cooperative::Host;
    /// use foreman_rt::{park::NoPark, policy::Policy, Supervisor, WorkerError};
    ///
    /// let sup: Supervisor<u8, 4, 2> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// let host = Host::new(&sup).unwrap();
    /// assert!(!host.is_finished());
    /// // Every slot is the host's now.
    /// assert!(matches!(sup.attach(1), Err(WorkerError::WrongState { index: 1, .. })));
    /// ```
    pub fn new(sup: &'s Supervisor<T, N, W, NoPark>) -> Result<Self, WorkerError> {
        // Built by `map`, not as `[const { None }; W]`: LLVM writes that constant whole, every
        // byte set to `None`'s niche value, through a `memset` routine the firmware otherwise
        // lacks (on a Cortex-M3, 52 bytes of flash more).
        let mut workers: [Option<Handle<'s, T, N, W>>; W] = [(); W].map(|()| None);
        for (index, slot) in workers.iter_mut().enumerate() {
            fill(slot, sup.attach(index)?);
        }
        Ok(Host {
            sup,
            workers,
            #[cfg(feature = "backoff")]
            backing_off: [false; W],
            first: 0,
        })
    }

    /// The supervisor this host drives.
    ///
    /// ```
    /// use foreman_rt::host::cooperative::Host;
    /// use foreman_rt::{park::NoPark, policy::Policy, Supervisor};
    ///
    /// let sup: Supervisor<u8, 4, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// let host = Host::new(&sup).unwrap();
    /// host.supervisor().try_submit(1).unwrap();
    /// assert_eq!(sup.queued(), 1);
    /// ```
    pub fn supervisor(&self) -> &'s Supervisor<T, N, W, NoPark> {
        self.sup
    }

    /// Whether every worker has left: [`step`](Host::step) would return [`Step::Finished`].
    ///
    /// ```
    /// use foreman_rt::host::{cooperative::{Host, Step}, Failure};
    /// use foreman_rt::{park::NoPark, policy::Policy, Context, Supervisor};
    ///
    /// let sup: Supervisor<u8, 4, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// let mut host = Host::new(&sup).unwrap();
    /// sup.abort();
    /// assert!(!host.is_finished()); // the worker leaves at its next step
    /// let work = |_: &u8, _: Context<'_>| Ok::<(), Failure<()>>(());
    /// assert_eq!(host.step(work, |_| {}, || {}), Step::Finished);
    /// assert!(host.is_finished());
    /// ```
    pub fn is_finished(&self) -> bool {
        #[cfg(feature = "backoff")]
        if self.backing_off.contains(&true) {
            return false;
        }
        self.workers.iter().all(Option::is_none)
    }

    /// Runs tasks until every worker has left, sleeping whenever none has anything to do.
    ///
    /// `work` is one run of one task (see [`Failure`] for what its errors mean); `sink` gets
    /// an [`Event`] per outcome; `sleep` waits for an interrupt and is called inside a critical
    /// section (see the [module docs](self)). Returns once a shutdown has sent every worker
    /// away: a [drain](Supervisor::drain) once the queue is empty, an
    /// [abort](Supervisor::abort), or an escalation.
    ///
    /// ```
    /// use foreman_rt::host::{cooperative::Host, Cause, Event, Failure};
    /// use foreman_rt::policy::{Delivery, Policy};
    /// use foreman_rt::{park::NoPark, Context, Decision, Disposition, Supervisor};
    ///
    /// const POLICY: Policy = match Delivery::at_least_once(2) {
    ///     Ok(delivery) => Policy::DEFAULT.with_delivery(delivery),
    ///     Err(_) => panic!("invalid delivery"),
    /// };
    /// let sup: Supervisor<u32, 4, 1> = Supervisor::new(POLICY, NoPark);
    ///
    /// // Task 13 faults on its first run only.
    /// let check = |n: &u32, ctx: Context<'_>| match (*n, ctx.attempt()) {
    ///     (13, 1) => Err(Failure::Fault("unlucky")),
    ///     (n, _) => Ok(n),
    /// };
    /// let mut host = Host::new(&sup).unwrap();
    /// sup.try_submit(13).unwrap();
    /// sup.drain();
    /// let mut events = Vec::new();
    /// host.run(check, |event| events.push(event), || {});
    /// assert_eq!(
    ///     events,
    ///     [
    ///         Event::Crashed {
    ///             worker: 0,
    ///             cause: Cause::Fault("unlucky"),
    ///             task: Some(Disposition::Retried { attempt: 2 }),
    ///             decision: Decision::Replace,
    ///         },
    ///         // The replacement ran the retry.
    ///         Event::Completed { worker: 0, task: 13, output: 13 },
    ///     ]
    /// );
    /// ```
    pub fn run<R, E>(
        &mut self,
        mut work: impl FnMut(&T, Context<'_>) -> Result<R, Failure<E>>,
        mut sink: impl FnMut(Event<T, R, E, Cause<E>>),
        mut sleep: impl FnMut(),
    ) {
        while self.step(&mut work, &mut sink, &mut sleep) != Step::Finished {}
    }

    /// One step of the main loop: takes one task and runs it, or sleeps once if no worker has
    /// anything to do, or reports that every worker has left. Workers that leave are let go
    /// on the way. Arguments as for [`run`](Host::run).
    ///
    /// ```
    /// use foreman_rt::host::{cooperative::{Host, Step}, Event, Failure};
    /// use foreman_rt::{park::NoPark, policy::Policy, Context, Supervisor};
    ///
    /// let sup: Supervisor<u32, 4, 2> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// let mut host = Host::new(&sup).unwrap();
    /// let double = |n: &u32, _: Context<'_>| Ok::<u32, Failure<()>>(n * 2);
    /// let mut sleeps = 0;
    ///
    /// assert_eq!(host.step(double, |_| {}, || sleeps += 1), Step::Slept);
    /// sup.try_submit(21).unwrap(); // an interrupt handler, say
    /// let mut output = None;
    /// let record = |event| {
    ///     if let Event::Completed { output: o, .. } = event {
    ///         output = Some(o);
    ///     }
    /// };
    /// assert_eq!(host.step(double, record, || sleeps += 1), Step::Ran { worker: 0 });
    /// assert_eq!((output, sleeps), (Some(42), 1));
    /// sup.drain(); // the main loop decides there is no more work
    /// assert_eq!(host.step(double, |_| {}, || sleeps += 1), Step::Finished);
    /// assert!(sup.is_stopped());
    /// ```
    pub fn step<R, E>(
        &mut self,
        mut work: impl FnMut(&T, Context<'_>) -> Result<R, Failure<E>>,
        mut sink: impl FnMut(Event<T, R, E, Cause<E>>),
        mut sleep: impl FnMut(),
    ) -> Step {
        let sup = self.sup;
        loop {
            if self.is_finished() {
                return Step::Finished;
            }
            let ran = match take(
                sup,
                &mut self.workers,
                #[cfg(feature = "backoff")]
                &mut self.backing_off,
                self.first,
                &mut sleep,
            ) {
                Found::Run(index, job) => {
                    // Interrupts enabled while the task runs.
                    let outcome = work(job.task(), job.context());
                    Ok((index, record(sup, index, job, outcome)))
                }
                Found::Exit(index) => Err(index),
                Found::Slept => return Step::Slept,
                #[cfg(feature = "backoff")]
                Found::Gone => continue,
            };
            match ran {
                Ok((index, recorded)) => {
                    self.first = (index + 1) % W;
                    let event = match recorded {
                        Recorded::Finished(event) => event,
                        Recorded::Crashed(cause, report) => self.crashed(index, cause, report),
                        Recorded::Nothing => return Step::Ran { worker: index },
                    };
                    // One call site: the sink may be inlined here.
                    sink(event);
                    return Step::Ran { worker: index };
                }
                Err(index) => {
                    let recycled = self.workers[index]
                        .as_ref()
                        .is_some_and(Worker::is_recycled);
                    // A shutdown sent it away (Exiting → Exited as the handle drops), or it
                    // was recycled (Restarting).
                    self.workers[index] = None;
                    // (A constant `false` without the feature `recycling`.)
                    if recycled {
                        // Its quota of tasks run: a fresh handle takes the slot over.
                        self.replace(index);
                        sink(Event::Recycled { worker: index });
                    }
                }
            }
        }
    }

    /// Carries out the supervisor's decision about a crashed worker, and returns the event
    /// that reports it. The crashed handle is dead (dropping it changes nothing); a
    /// replacement runs the retry first.
    fn crashed<R, E>(
        &mut self,
        index: usize,
        cause: Cause<E>,
        report: CrashReport<T>,
    ) -> Event<T, R, E, Cause<E>> {
        self.workers[index] = None;
        if report.decision == Decision::Replace {
            self.replace(index);
        }
        // A cancelled run's worker that crashed: the task ends cancelled.
        Event::of_crash(index, cause, report.task, report.decision)
    }

    /// Attaches the replacement of slot `index`'s worker (crashed or recycled), or notes that
    /// it waits out its restart backoff.
    fn replace(&mut self, index: usize) {
        match self.sup.attach(index) {
            // The slot was emptied when its worker crashed or was recycled.
            Ok(worker) => fill(&mut self.workers[index], worker),
            #[cfg(feature = "backoff")]
            Err(WorkerError::BackingOff { .. }) => self.backing_off[index] = true,
            // Refused only if a shutdown began meanwhile (its workers leave anyway) or
            // someone else attached the slot: it stays vacant either way.
            Err(_) => {}
        }
    }
}

/// Puts `worker` into `slot`, which is empty. (Unlike an assignment, this carries no code to
/// drop a handle the slot cannot hold: on a Cortex-M3, about 30 bytes of flash per call site.)
fn fill<'s, T, const N: usize, const W: usize>(
    slot: &mut Option<Handle<'s, T, N, W>>,
    worker: Handle<'s, T, N, W>,
) {
    let previous = slot.replace(worker);
    debug_assert!(previous.is_none(), "a slot filled twice");
    // `None`: nothing to drop.
    core::mem::forget(previous);
}

/// The critical section of a step: polls the workers round robin from `first` and takes the
/// first task found, or the first worker that must leave; if every worker is idle, sleeps
/// before the critical section ends. Replacements whose backoff has passed attach first.
fn take<'h, 's, T, const N: usize, const W: usize>(
    sup: &'s Supervisor<T, N, W, NoPark>,
    workers: &'h mut [Option<Handle<'s, T, N, W>>; W],
    #[cfg(feature = "backoff")] backing_off: &mut [bool; W],
    first: usize,
    sleep: &mut impl FnMut(),
) -> Found<'h, T, N, W> {
    #[cfg(not(feature = "backoff"))]
    let _ = sup;
    critical_section::with(move |_| {
        #[cfg(feature = "backoff")]
        if backoff_passed(sup, workers, backing_off) {
            return Found::Gone;
        }
        let (before, after) = workers.split_at_mut(first);
        for (offset, slot) in after.iter_mut().chain(before).enumerate() {
            let Some(worker) = slot else { continue };
            match worker.try_next() {
                Next::Run(job) => return Found::Run((first + offset) % W, job),
                Next::Exit => return Found::Exit((first + offset) % W),
                Next::Idle => {}
            }
        }
        // Nothing found, and no interrupt handler can submit before the sleep: one that
        // fires now stays pending and ends the sleep.
        sleep();
        Found::Slept
    })
}

/// Attaches the replacements waiting in `backing_off` whose delay has passed (or lets go of
/// those a shutdown swept away). Whether no worker is left and none waits.
#[cfg(feature = "backoff")]
fn backoff_passed<'s, T, const N: usize, const W: usize>(
    sup: &'s Supervisor<T, N, W, NoPark>,
    workers: &mut [Option<Handle<'s, T, N, W>>; W],
    backing_off: &mut [bool; W],
) -> bool {
    for (index, waiting) in backing_off.iter_mut().enumerate() {
        if !*waiting {
            continue;
        }
        match sup.attach(index) {
            Err(WorkerError::BackingOff { .. }) => {}
            attached => {
                *waiting = false;
                workers[index] = attached.ok();
            }
        }
    }
    !backing_off.contains(&true) && workers.iter().all(Option::is_none)
}

/// What recording a task's outcome came to.
enum Recorded<T, R, E> {
    /// Completed or failed: the event to report.
    Finished(Event<T, R, E, Cause<E>>),
    /// The worker crashed: its cause and the supervisor's report.
    Crashed(Cause<E>, CrashReport<T>),
    /// Condemned, and recovered by someone else already (who reported it).
    Nothing,
}

/// Records the outcome of the task `job` ran.
fn record<T, const N: usize, const W: usize, R, E>(
    sup: &Supervisor<T, N, W, NoPark>,
    index: usize,
    job: Job<'_, T, N, W, NoPark>,
    outcome: Result<R, Failure<E>>,
) -> Recorded<T, R, E> {
    let finished = match outcome {
        // Cancelled while it ran: whatever it returned is discarded. (A fault is still a
        // crash: its recovery reports the task cancelled.)
        #[cfg(feature = "cancellation")]
        _ if job.is_cancelled() && !matches!(outcome, Err(Failure::Fault(_))) => {
            job.cancel().map(|task| Event::Cancelled {
                worker: Some(index),
                task,
            })
        }
        Ok(output) => job.complete().map(|task| Event::Completed {
            worker: index,
            task,
            output,
        }),
        Err(Failure::Error(error)) => job.fail().map(|task| Event::Failed {
            worker: index,
            task,
            error,
        }),
        Err(Failure::Fault(fault)) => return Recorded::Crashed(Cause::Fault(fault), job.crash()),
    };
    match finished {
        Ok(event) => Recorded::Finished(event),
        // Condemned (or cancelled) while it ran: the slot is Crashed with the task in it, ours
        // to recover. Refused only if someone else recovered it already (and reported it).
        Err(_) => match sup.recover(index) {
            Ok(report) => Recorded::Crashed(Cause::Hung, report),
            Err(_) => Recorded::Nothing,
        },
    }
}

impl<T, const N: usize, const W: usize> fmt::Debug for Host<'_, T, N, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host")
            .field("workers", &self.workers)
            .field("first", &self.first)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};
    use std::vec::Vec;

    use super::*;
    use crate::policy::{Delivery, Intensity, Policy, Restart};
    use crate::{Disposition, Shutdown, SubmitError, SupervisorState, WorkerState};

    /// How long a test may wait for something that must happen; past it, it fails as hung.
    const PATIENCE: Duration = Duration::from_secs(10);

    type Events = Vec<Event<u32, u32, u32, Cause<u32>>>;

    fn policy(attempts: u32) -> Policy {
        Policy::DEFAULT.with_delivery(Delivery::at_least_once(attempts).unwrap())
    }

    fn never_sleeps() {
        panic!("hung: the host slept with work to do or with every worker gone");
    }

    /// Attaches the host, submits `tasks` (then drains, if `drain`), and runs the host until it
    /// finishes, collecting the events.
    fn run_all<const N: usize, const W: usize>(
        sup: &Supervisor<u32, N, W, NoPark>,
        tasks: impl IntoIterator<Item = u32>,
        drain: bool,
        work: impl FnMut(&u32, Context<'_>) -> Result<u32, Failure<u32>>,
    ) -> Events {
        let mut events = Vec::new();
        let mut host = Host::new(sup).unwrap();
        for task in tasks {
            sup.try_submit(task).unwrap();
        }
        if drain {
            sup.drain();
        }
        host.run(work, |event| events.push(event), never_sleeps);
        assert!(host.is_finished());
        events
    }

    #[test]
    fn records_completions_and_failures_and_stops_with_the_drain() {
        let sup: Supervisor<u32, 8, 2> = Supervisor::new(Policy::DEFAULT, NoPark);
        let events = run_all(&sup, 0..6, true, |n, _| {
            if n % 3 == 0 {
                Err(Failure::Error(n + 100))
            } else {
                Ok(n * 10)
            }
        });
        let mut completed: Vec<_> = Vec::new();
        let mut failed: Vec<_> = Vec::new();
        for event in &events {
            match *event {
                Event::Completed { task, output, .. } => completed.push((task, output)),
                Event::Failed { task, error, .. } => failed.push((task, error)),
                ref other => panic!("unexpected event {other:?}"),
            }
        }
        assert_eq!(completed, [(1, 10), (2, 20), (4, 40), (5, 50)]);
        assert_eq!(failed, [(0, 100), (3, 103)]);
        let snap = sup.snapshot();
        assert!(snap.adds_up());
        assert_eq!((snap.completed, snap.failed), (4, 2));
        assert_eq!(snap.state, SupervisorState::Stopped(Shutdown::Drain));
        assert!(snap.workers.iter().all(|w| w.state == WorkerState::Exited));
    }

    #[test]
    fn workers_take_turns() {
        let sup: Supervisor<u32, 8, 3> = Supervisor::new(Policy::DEFAULT, NoPark);
        let workers: Vec<usize> = run_all(&sup, 0..7, true, |n, _| Ok(*n))
            .iter()
            .map(|event| match *event {
                Event::Completed { worker, .. } => worker,
                ref other => panic!("unexpected event {other:?}"),
            })
            .collect();
        assert_eq!(workers, [0, 1, 2, 0, 1, 2, 0]);
    }

    #[test]
    fn a_crash_is_retried_by_the_replacement_then_dead_lettered() {
        let policy = policy(3).with_intensity(Intensity::new(10, 1_000).unwrap());
        let sup: Supervisor<u32, 4, 1> = Supervisor::new(policy, NoPark);
        let attempts = AtomicU32::new(0);
        // 7 faults on every run; 8 on its first only.
        let events = run_all(&sup, [7, 8], true, |n, ctx| {
            attempts.fetch_add(1, Ordering::Relaxed);
            match (*n, ctx.attempt()) {
                (7, attempt) | (8, attempt @ 1) => Err(Failure::Fault(attempt)),
                (n, _) => Ok(n),
            }
        });
        let crash = |cause, task| Event::Crashed {
            worker: 0,
            cause: Cause::Fault(cause),
            task: Some(task),
            decision: Decision::Replace,
        };
        assert_eq!(
            events,
            [
                crash(1, Disposition::Retried { attempt: 2 }),
                crash(2, Disposition::Retried { attempt: 3 }),
                crash(
                    3,
                    Disposition::DeadLettered {
                        task: 7,
                        attempts: 3
                    }
                ),
                crash(1, Disposition::Retried { attempt: 2 }),
                Event::Completed {
                    worker: 0,
                    task: 8,
                    output: 8
                },
            ]
        );
        assert_eq!(attempts.load(Ordering::Relaxed), 5);
        let snap = sup.snapshot();
        assert!(snap.adds_up());
        assert_eq!((snap.crashes(), snap.restarts()), (4, 4));
        assert_eq!((snap.dead_lettered, snap.completed), (1, 1));
    }

    #[test]
    fn a_retired_worker_leaves_its_slot_vacant_and_the_others_carry_on() {
        let policy = policy(2).with_restart(Restart::Temporary);
        let sup: Supervisor<u32, 8, 2> = Supervisor::new(policy, NoPark);
        // Task 0 faults on its first run.
        let events = run_all(&sup, 0..5, true, |n, ctx| {
            if *n == 0 && ctx.attempt() == 1 {
                Err(Failure::Fault(0))
            } else {
                Ok(*n)
            }
        });
        assert_eq!(
            events[0],
            Event::Crashed {
                worker: 0,
                cause: Cause::Fault(0),
                task: Some(Disposition::Requeued { attempt: 2 }),
                decision: Decision::Retire,
            }
        );
        // Worker 1 ran everything else, the requeued task included.
        let mut rest: Vec<u32> = events[1..]
            .iter()
            .map(|event| match *event {
                Event::Completed {
                    worker: 1, task, ..
                } => task,
                ref other => panic!("unexpected event {other:?}"),
            })
            .collect();
        rest.sort_unstable();
        assert_eq!(rest, [0, 1, 2, 3, 4]);
        assert_eq!(sup.worker_state(0), Some(WorkerState::Retired));
    }

    #[test]
    fn an_escalation_ends_the_run_and_leaves_the_queue_for_hand_back() {
        let policy = policy(5).with_intensity(Intensity::new(1, 1_000).unwrap());
        let sup: Supervisor<u32, 8, 2> = Supervisor::new(policy, NoPark);
        // No drain: only the escalation can end the run.
        let events = run_all(&sup, 0..6, false, |n, _| Err(Failure::Fault(*n)));
        // Worker 0 crashes on task 0 and is replaced; worker 1 crashes on task 1, beyond the
        // intensity: the supervisor escalates. The replacement still runs the retry it was
        // given (and crashes: no more replacements), then every worker leaves.
        let mut accounted = Vec::new();
        let decisions: Vec<(usize, Decision)> = events
            .iter()
            .map(|event| match event {
                Event::Crashed {
                    worker,
                    task,
                    decision,
                    ..
                } => {
                    match task {
                        Some(Disposition::HandedBack(task) | Disposition::Lost(task)) => {
                            accounted.push(*task)
                        }
                        Some(Disposition::DeadLettered { task, .. }) => accounted.push(*task),
                        _ => {}
                    }
                    (*worker, *decision)
                }
                other => panic!("unexpected event {other:?}"),
            })
            .collect();
        assert_eq!(
            decisions,
            [
                (0, Decision::Replace),
                (1, Decision::Escalate),
                (0, Decision::Retire)
            ]
        );
        assert_eq!(sup.state(), SupervisorState::Stopped(Shutdown::Escalation));
        // Every task is accounted for: reported by a crash, or handed back now.
        accounted.extend(sup.hand_back());
        accounted.sort_unstable();
        assert_eq!(accounted, [0, 1, 2, 3, 4, 5]);
        assert!(sup.snapshot().adds_up());
    }

    #[test]
    fn an_abort_sends_every_worker_away_and_hands_back_the_rest() {
        let sup: Supervisor<u32, 8, 2> = Supervisor::new(Policy::DEFAULT, NoPark);
        let events = run_all(&sup, 0..6, false, |n, _| {
            if *n == 1 {
                // A task may shut the supervisor down: the host lets every worker go.
                sup.abort();
            }
            Ok(*n)
        });
        assert_eq!(events.len(), 2);
        let back: Vec<u32> = sup.hand_back().collect();
        assert_eq!(back, [2, 3, 4, 5]);
        assert_eq!(sup.state(), SupervisorState::Stopped(Shutdown::Abort));
    }

    #[test]
    fn tasks_may_submit_more_tasks() {
        let sup: Supervisor<u32, 2, 2> = Supervisor::new(Policy::DEFAULT, NoPark);
        // Each task submits its successor; the last one drains. No lock is held while a task
        // runs, so calling back into the supervisor is fine.
        let events = run_all(&sup, [10], false, |n, _| {
            match n.checked_sub(1) {
                Some(next) => sup.try_submit(next).unwrap(),
                None => {
                    sup.drain();
                }
            }
            Ok(*n)
        });
        assert_eq!(events.len(), 11);
        assert_eq!(sup.snapshot().completed, 11);
        assert!(sup.is_stopped());
    }

    #[test]
    fn a_task_condemned_while_it_ran_is_recovered_as_hung_and_retried() {
        let sup: Supervisor<u32, 4, 1> = Supervisor::new(policy(2), NoPark);
        let events = run_all(&sup, [5], true, |n, ctx| {
            if ctx.attempt() == 1 {
                // What a tick handler may do to a task past its deadline.
                sup.condemn(ctx.run()).unwrap();
            }
            Ok(*n)
        });
        assert_eq!(
            events,
            [
                Event::Crashed {
                    worker: 0,
                    cause: Cause::Hung,
                    task: Some(Disposition::Retried { attempt: 2 }),
                    decision: Decision::Replace,
                },
                Event::Completed {
                    worker: 0,
                    task: 5,
                    output: 5
                },
            ]
        );
        assert!(sup.snapshot().adds_up());
    }

    #[test]
    fn a_new_host_needs_every_slot() {
        let sup: Supervisor<u32, 4, 2> = Supervisor::new(Policy::DEFAULT, NoPark);
        let taken = sup.attach(1).unwrap();
        assert!(matches!(
            Host::new(&sup),
            Err(WorkerError::WrongState { index: 1, .. })
        ));
        drop(taken);
        sup.abort();
        assert_eq!(Host::new(&sup).unwrap_err(), WorkerError::ShuttingDown);
    }

    #[test]
    fn step_reports_what_it_did() {
        let sup: Supervisor<u32, 4, 2> = Supervisor::new(Policy::DEFAULT, NoPark);
        let mut host = Host::new(&sup).unwrap();
        let work = |n: &u32, _: Context<'_>| Ok::<u32, Failure<u32>>(*n);
        let mut slept = 0;
        assert_eq!(host.step(work, |_| {}, || slept += 1), Step::Slept);
        assert_eq!(slept, 1);
        sup.try_submit(1).unwrap();
        sup.try_submit(2).unwrap();
        assert_eq!(
            host.step(work, |_| {}, never_sleeps),
            Step::Ran { worker: 0 }
        );
        assert_eq!(
            host.step(work, |_| {}, never_sleeps),
            Step::Ran { worker: 1 }
        );
        sup.drain();
        assert_eq!(host.step(work, |_| {}, never_sleeps), Step::Finished);
        assert_eq!(host.step(work, |_| {}, never_sleeps), Step::Finished);
        assert!(host.is_finished());
        assert_eq!(sup.snapshot().completed, 2);
    }

    /// A simulated core: an interrupt line the "handler" thread raises and clears, and a
    /// `WFI` that returns once an interrupt is pending. The handler runs only outside critical
    /// sections, as a masked interrupt would.
    struct Core {
        pending: AtomicBool,
    }

    impl Core {
        /// `WFI`: waits for a pending interrupt; fails as hung if none comes.
        fn wait_for_interrupt(&self) {
            let start = Instant::now();
            while !self.pending.load(Ordering::SeqCst) {
                assert!(
                    start.elapsed() < PATIENCE,
                    "hung: the host slept through a submission"
                );
                std::thread::yield_now();
            }
        }
    }

    #[test]
    fn an_interrupt_between_the_check_and_the_sleep_is_not_slept_through() {
        let sup: Supervisor<u32, 4, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
        let core = Core {
            pending: AtomicBool::new(false),
        };
        let (raise, raised) = mpsc::channel::<()>();
        let (handled, handler_done) = mpsc::channel::<()>();
        let mut events = Vec::new();
        std::thread::scope(|s| {
            // The interrupt handler: when the line is raised, it runs as soon as no critical
            // section masks it, submits a task, ends the run and clears the line.
            let (sup, core) = (&sup, &core);
            s.spawn(move || {
                raised.recv().unwrap();
                core.pending.store(true, Ordering::SeqCst);
                critical_section::with(|_| {
                    sup.try_submit(42).unwrap();
                    sup.drain();
                    core.pending.store(false, Ordering::SeqCst);
                });
                handled.send(()).unwrap();
            });

            let mut host = Host::new(sup).unwrap();
            let mut sleeps = 0;
            host.run(
                |n: &u32, _| Ok::<u32, Failure<u32>>(*n),
                |event| events.push(event),
                || {
                    sleeps += 1;
                    if sleeps == 1 {
                        // The worst moment for an interrupt: the host found nothing and is
                        // about to sleep. Give its handler every chance to run now (it must
                        // not be able to), then sleep.
                        raise.send(()).unwrap();
                        let early = handler_done.recv_timeout(Duration::from_millis(50));
                        assert!(
                            early.is_err(),
                            "an interrupt handler ran between the check and the sleep"
                        );
                    }
                    // Later sleeps, until the handler has run, return at once: its interrupt
                    // is still pending, as on a real core.
                    core.wait_for_interrupt();
                },
            );
        });
        assert_eq!(
            events,
            [Event::Completed {
                worker: 0,
                task: 42,
                output: 42
            }]
        );
        assert!(sup.is_stopped());
    }

    #[test]
    fn a_drain_from_an_interrupt_ends_the_run_once_the_queue_is_empty() {
        let sup: Supervisor<u32, 4, 2> = Supervisor::new(Policy::DEFAULT, NoPark);
        let core = Core {
            pending: AtomicBool::new(false),
        };
        let done = AtomicU32::new(0);
        std::thread::scope(|s| {
            // The "interrupt": submits 20 tasks as room allows (each refusal handed back and
            // offered again), then drains.
            s.spawn(|| {
                let start = Instant::now();
                let mut next = 0;
                while next < 20 {
                    assert!(start.elapsed() < PATIENCE, "hung: the queue never had room");
                    core.pending.store(true, Ordering::SeqCst);
                    critical_section::with(|_| {
                        match sup.try_submit(next) {
                            Ok(()) => next += 1,
                            Err(SubmitError::Full(task)) => assert_eq!(task, next),
                            Err(err) => panic!("refused: {err:?}"),
                        }
                        core.pending.store(false, Ordering::SeqCst);
                    });
                    std::thread::yield_now();
                }
                core.pending.store(true, Ordering::SeqCst);
                critical_section::with(|_| {
                    sup.drain();
                    core.pending.store(false, Ordering::SeqCst);
                });
            });
            let mut host = Host::new(&sup).unwrap();
            host.run(
                |n: &u32, _| {
                    done.fetch_add(1, Ordering::Relaxed);
                    Ok::<u32, Failure<u32>>(*n)
                },
                |_| {},
                || core.wait_for_interrupt(),
            );
        });
        assert_eq!(done.load(Ordering::Relaxed), 20);
        let snap = sup.snapshot();
        assert!(snap.adds_up());
        assert_eq!(snap.completed, 20);
        assert_eq!(snap.state, SupervisorState::Stopped(Shutdown::Drain));
    }

    #[cfg(feature = "recycling")]
    #[test]
    fn a_recycled_worker_is_replaced_and_the_drain_runs_every_task() {
        // One worker, recycled after every 2 tasks, a full queue drained: the slot must get a
        // fresh worker each time, or the rest of the queue is stranded (neither run nor
        // handed back) while the host reports itself finished.
        let policy = Policy::DEFAULT.with_recycling(2).unwrap();
        let sup: Supervisor<u32, 8, 1> = Supervisor::new(policy, NoPark);
        let events = run_all(&sup, 0..8, true, |n, _| Ok(*n));
        let completed: Vec<u32> = events
            .iter()
            .filter_map(|event| match *event {
                Event::Completed { task, .. } => Some(task),
                _ => None,
            })
            .collect();
        let recycled = events
            .iter()
            .filter(|event| matches!(event, Event::Recycled { worker: 0 }))
            .count();
        assert_eq!(completed, [0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(
            recycled, 3,
            "recycled after tasks 2, 4 and 6; not once the queue is empty"
        );
        let snap = sup.snapshot();
        assert!(snap.adds_up());
        assert_eq!(
            (snap.completed, snap.recycles(), snap.restarts()),
            (8, 3, 0)
        );
        assert_eq!(snap.state, SupervisorState::Stopped(Shutdown::Drain));
    }

    #[cfg(feature = "backoff")]
    #[test]
    fn a_replacement_waits_out_its_backoff_and_then_runs_the_retry() {
        use crate::policy::Backoff;
        let policy = policy(3).with_backoff(Backoff::new(10, 2, 100).unwrap());
        let sup: Supervisor<u32, 4, 1> = Supervisor::new(policy, NoPark);
        sup.tick(1_000);
        let mut host = Host::new(&sup).unwrap();
        sup.try_submit(5).unwrap();
        sup.drain();
        let mut events = Vec::new();
        let mut sleeps = 0;
        host.run(
            |n: &u32, ctx| match ctx.attempt() {
                1 => Err(Failure::Fault(0)),
                _ => Ok::<u32, Failure<u32>>(*n),
            },
            |event| events.push(event),
            // The tick interrupt that ends each sleep: 1 tick a time.
            || {
                sleeps += 1;
                assert!(sleeps < 1_000, "hung: the replacement never attached");
                sup.tick(sup.now() + 1);
            },
        );
        assert_eq!(
            events,
            [
                Event::Crashed {
                    worker: 0,
                    cause: Cause::Fault(0),
                    task: Some(Disposition::Retried { attempt: 2 }),
                    decision: Decision::Replace,
                },
                Event::Completed {
                    worker: 0,
                    task: 5,
                    output: 5
                },
            ]
        );
        // The retry ran only once the delay had passed: 10 ticks, one per sleep.
        assert_eq!(sleeps, 10);
        let snap = sup.snapshot();
        assert!(snap.adds_up());
        assert_eq!(snap.state, SupervisorState::Stopped(Shutdown::Drain));
    }

    #[cfg(feature = "backoff")]
    #[test]
    fn an_abort_during_a_backoff_ends_the_run_and_hands_the_retry_back() {
        use crate::policy::Backoff;
        let policy = policy(3).with_backoff(Backoff::new(1_000, 2, 1_000).unwrap());
        let sup: Supervisor<u32, 4, 1> = Supervisor::new(policy, NoPark);
        let mut host = Host::new(&sup).unwrap();
        sup.try_submit(5).unwrap();
        let mut sleeps = 0;
        host.run(
            |_: &u32, _| Err::<u32, _>(Failure::Fault(0u32)),
            |_| {},
            // Backing off; the firmware aborts (from an interrupt, say).
            || {
                sleeps += 1;
                assert!(sleeps < 10, "hung: the abort did not end the run");
                sup.abort();
            },
        );
        assert!(host.is_finished());
        assert_eq!(sup.hand_back().collect::<Vec<_>>(), [5]);
        let snap = sup.snapshot();
        assert!(snap.adds_up());
        assert_eq!(snap.state, SupervisorState::Stopped(Shutdown::Abort));
    }

    #[cfg(all(feature = "backoff", feature = "recycling"))]
    #[test]
    fn a_task_that_condemns_itself_is_recovered_then_retried_after_the_backoff_on_a_recycled_slot()
    {
        use crate::policy::Backoff;
        // Recycled after every task, a backoff after each crash, and a task that condemns its
        // own run (a reentrant call into its supervisor) on its first attempt.
        let policy = policy(3)
            .with_intensity(Intensity::unlimited())
            .with_recycling(1)
            .unwrap()
            .with_backoff(Backoff::new(4, 2, 8).unwrap());
        let sup: Supervisor<u32, 4, 1> = Supervisor::new(policy, NoPark);
        let mut host = Host::new(&sup).unwrap();
        for n in [1, 2, 3] {
            sup.try_submit(n).unwrap();
        }
        sup.drain();
        let mut events = Vec::new();
        let mut sleeps = 0;
        host.run(
            |n: &u32, ctx| {
                if *n == 2 && ctx.attempt() == 1 {
                    sup.condemn(ctx.run()).unwrap();
                    // Condemned twice: refused.
                    assert!(sup.condemn(ctx.run()).is_err());
                }
                Ok::<u32, Failure<u32>>(*n)
            },
            |event| events.push(event),
            || {
                sleeps += 1;
                assert!(sleeps < 1_000, "hung: the replacement never attached");
                sup.tick(sup.now() + 1);
            },
        );
        let kinds: std::string::String = events
            .iter()
            .map(|event| match event {
                Event::Completed { .. } => 'c',
                Event::Recycled { .. } => 'R',
                Event::Crashed {
                    cause: Cause::Hung,
                    task: Some(Disposition::Retried { attempt: 2 }),
                    decision: Decision::Replace,
                    ..
                } => 'X',
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        // Task 1, recycled; task 2 condemned; its retry after 4 ticks, recycled; task 3 (the
        // queue is empty after it: no recycling then).
        assert_eq!(kinds, "cRXcRc");
        assert_eq!(sleeps, 4);
        let snap = sup.snapshot();
        assert!(snap.adds_up());
        assert_eq!((snap.completed, snap.recycles(), snap.crashes()), (3, 2, 1));
        assert_eq!(snap.state, SupervisorState::Stopped(Shutdown::Drain));
    }

    /// A supervisor whose intensity allows no restart: a crash charged to it escalates.
    #[cfg(feature = "cancellation")]
    fn unforgiving<const W: usize>() -> Supervisor<u32, 8, W> {
        Supervisor::new(
            policy(3).with_intensity(Intensity::new(0, 1_000).unwrap()),
            NoPark,
        )
    }

    #[cfg(feature = "cancellation")]
    #[test]
    fn a_task_cancelled_while_it_runs_sees_it_and_ends_cancelled_on_the_same_worker() {
        let sup = unforgiving::<1>();
        let polls = AtomicU32::new(0);
        let events = run_all(&sup, [1, 2, 3], true, |n, ctx| {
            if *n == 2 {
                // An interrupt handler cancels the run while the task works, say.
                sup.cancel(ctx.run()).unwrap();
                while !ctx.is_cancelled() {
                    polls.fetch_add(1, Ordering::Relaxed);
                }
                return Ok(999); // discarded
            }
            assert!(!ctx.is_cancelled());
            Ok(*n)
        });
        assert_eq!(
            events,
            [
                Event::Completed {
                    worker: 0,
                    task: 1,
                    output: 1
                },
                Event::Cancelled {
                    worker: Some(0),
                    task: 2
                },
                Event::Completed {
                    worker: 0,
                    task: 3,
                    output: 3
                },
            ]
        );
        assert_eq!(polls.load(Ordering::Relaxed), 0, "seen at the first poll");
        let snap = sup.snapshot();
        assert!(snap.adds_up());
        assert_eq!(
            (
                snap.completed,
                snap.cancelled,
                snap.crashes(),
                snap.restarts()
            ),
            (2, 1, 0, 0)
        );
        assert_eq!(snap.state, SupervisorState::Stopped(Shutdown::Drain));
    }

    #[cfg(feature = "cancellation")]
    #[test]
    fn a_cancelled_task_that_faults_or_fails_ends_cancelled_and_charges_nothing() {
        let sup = unforgiving::<1>();
        let events = run_all(&sup, [1, 2, 3], true, |n, ctx| {
            if *n < 3 {
                sup.cancel(ctx.run()).unwrap();
            }
            match *n {
                1 => Err(Failure::Fault(1)), // a crash of a cancelled run: not charged
                2 => Err(Failure::Error(2)), // an error of a cancelled run: discarded
                n => Ok(n),
            }
        });
        assert_eq!(
            events,
            [
                Event::Cancelled {
                    worker: Some(0),
                    task: 1
                },
                Event::Cancelled {
                    worker: Some(0),
                    task: 2
                },
                Event::Completed {
                    worker: 0,
                    task: 3,
                    output: 3
                },
            ]
        );
        let snap = sup.snapshot();
        assert!(snap.adds_up());
        // The fault crashed the worker (replaced at once, not escalated), the error did not.
        assert_eq!(
            (snap.cancelled, snap.failed, snap.crashes(), snap.restarts()),
            (2, 0, 1, 1)
        );
        assert_eq!(snap.state, SupervisorState::Stopped(Shutdown::Drain));
    }

    #[cfg(all(feature = "cancellation", target_has_atomic = "64"))]
    #[test]
    fn a_task_cancelled_while_queued_never_runs() {
        use crate::{Cancel, Ticket};
        static TICKETS: [Ticket; 3] = [const { Ticket::new() }; 3];
        let sup = unforgiving::<2>();
        let mut host = Host::new(&sup).unwrap();
        for task in 0..3 {
            sup.try_submit(task).unwrap();
        }
        assert_eq!(TICKETS[1].cancel(), Cancel::Pending);
        sup.drain();
        let ran = core::cell::RefCell::new(Vec::new());
        let mut events: Events = Vec::new();
        host.run(
            |n: &u32, ctx| {
                let ticket = &TICKETS[*n as usize];
                if ticket.claim(ctx.run()).is_err() {
                    // Cancelled before it began: end the run cancelled, without running it.
                    sup.cancel(ctx.run()).unwrap();
                    return Ok(0);
                }
                ran.borrow_mut().push(*n);
                Ok(*n)
            },
            |event| {
                match &event {
                    Event::Completed { task, .. } | Event::Cancelled { task, .. } => {
                        TICKETS[*task as usize].end();
                    }
                    other => panic!("unexpected {other:?}"),
                }
                events.push(event);
            },
            never_sleeps,
        );
        assert_eq!(*ran.borrow(), [0, 2]);
        assert!(events.contains(&Event::Cancelled {
            worker: Some(1),
            task: 1
        }));
        assert!(TICKETS
            .iter()
            .all(|ticket| ticket.cancel() == Cancel::Ended));
        let snap = sup.snapshot();
        assert!(snap.adds_up());
        assert_eq!((snap.completed, snap.cancelled), (2, 1));
    }
}
