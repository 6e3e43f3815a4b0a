//! The vocabulary every host reports in: an [`Event`] per thing that happened to a task or a
//! worker, and (feature `alloc`) the [`Report`] a shutdown leaves. The thread host, the
//! process host, the Web Worker host (`foreman-wasm`) and the embassy host all speak it, so an
//! application handles outcomes the same way whatever runs its tasks.
//!
//! What a host knows of a crash's cause differs (a panic's message, a signal, a trap, a fault
//! the task returned), so the cause is a type parameter, `C`: the hosts that allocate use a
//! `String`; the hosts without allocation (embassy, the cooperative main loop) a [`Cause`],
//! from the [`Failure`] their task function returned.

#[cfg(feature = "alloc")]
use alloc::vec::Vec;

#[cfg(feature = "alloc")]
use crate::Snapshot;
use crate::{Decision, Disposition, Run};

/// Something that happened to a task or a worker, delivered to the host's sink on the thread
/// (or async task) where it happened.
///
/// `T` is the task, `R` what running it returns, `E` its error, `C` what the host knows of a
/// crash's cause. A host may not report every kind: the embassy host hands tasks back from
/// `abort` rather than as events, for instance.
///
/// ```
/// use foreman_rt::host::Event;
///
/// fn describe(event: &Event<u32, u64, String, String>) -> String {
///     match event {
///         Event::Completed { worker, task, output } => format!("{worker}: {task} -> {output}"),
///         Event::Failed { task, error, .. } => format!("{task} failed: {error}"),
///         Event::Crashed { worker, cause, .. } => format!("worker {worker} crashed: {cause}"),
///         Event::Hung { worker, .. } => format!("worker {worker} is hung"),
///         Event::HandedBack { task } => format!("{task} was not run"),
///         _ => "something new".to_string(), // events may be added in minor releases
///     }
/// }
/// let event = Event::Completed { worker: 1, task: 6, output: 36 };
/// assert_eq!(describe(&event), "1: 6 -> 36");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Event<T, R, E, C> {
    /// The task ran to `Ok(output)`.
    Completed {
        /// The worker that ran it.
        worker: usize,
        /// The task.
        task: T,
        /// What running it returned.
        output: R,
    },
    /// The task ran to `Err(error)`. Final: not retried.
    Failed {
        /// The worker that ran it.
        worker: usize,
        /// The task.
        task: T,
        /// What running it returned.
        error: E,
    },
    /// The worker crashed: its task panicked, trapped or faulted, hung and was cancelled, or
    /// its thread or process died.
    Crashed {
        /// The crashed worker.
        worker: usize,
        /// What the host knows of the cause.
        cause: C,
        /// What became of its task (per the delivery policy): retried by the replacement,
        /// requeued, or — holding the task — dead-lettered, lost or handed back.
        task: Option<Disposition<T>>,
        /// Whether a replacement was started (`Replace`), the slot was retired, or the
        /// supervisor escalated.
        decision: Decision,
    },
    /// The watchdog flagged the worker's current task as past its deadline.
    Hung {
        /// The hung worker.
        worker: usize,
        /// The run that hung: the host's `condemn` takes it, so that a verdict about this task
        /// cannot kill the next task the worker starts.
        run: Run,
    },
    /// A task that will not run, given back at shutdown (abort, escalation, or drop).
    HandedBack {
        /// The task.
        task: T,
    },
    /// The worker was replaced by a fresh one between tasks: it ran its quota of tasks
    /// ([`Policy::with_recycling`](crate::policy::Policy::with_recycling)), or its host
    /// recycled it ([`Worker::recycle`](crate::Worker::recycle); the Web Worker host does when
    /// its heap passes a limit). Not a crash: no
    /// task was affected, and no restart was counted.
    Recycled {
        /// The recycled worker's slot (its replacement takes the same index).
        worker: usize,
    },
    /// The task was cancelled (feature `cancellation`): its ticket
    /// ([`Ticket::cancel`](crate::Ticket::cancel)) or its run
    /// ([`Supervisor::cancel`](crate::Supervisor::cancel)). Final: not retried, and its result,
    /// if it ran to one, was discarded.
    ///
    /// ```
    /// use foreman_rt::host::Event;
    /// let event: Event<u8, (), (), ()> = Event::Cancelled { worker: None, task: 4 };
    /// assert!(matches!(event, Event::Cancelled { worker: None, task: 4 })); // never ran
    /// ```
    Cancelled {
        /// The worker whose run of it was cancelled, or `None` if no run was under way: it was
        /// cancelled while queued (and never ran), or between a crashed run and its retry
        /// (which then never started).
        worker: Option<usize>,
        /// The task.
        task: T,
    },
}

impl<T, R, E, C> Event<T, R, E, C> {
    /// The event that reports a crashed worker: [`Event::Crashed`], or, if its run had been
    /// cancelled ([`Disposition::Cancelled`]), [`Event::Cancelled`]: the task's end is a
    /// cancellation, however its worker died.
    #[cfg(any(feature = "cooperative", feature = "embassy"))]
    pub(crate) fn of_crash(
        worker: usize,
        cause: C,
        task: Option<Disposition<T>>,
        decision: Decision,
    ) -> Self {
        match task {
            #[cfg(feature = "cancellation")]
            Some(Disposition::Cancelled(task)) => Event::Cancelled {
                worker: Some(worker),
                task,
            },
            task => Event::Crashed {
                worker,
                cause,
                task,
                decision,
            },
        }
    }
}

/// What a shutdown leaves: the final counters and the tasks that were not run.
///
/// A host builds it once every worker has left (the thread host's `drain` returns one):
///
/// ```
/// use foreman_rt::{host::Report, park::NoPark, policy::Policy, Supervisor};
///
/// let sup: Supervisor<u32, 4, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
/// sup.try_submit(7).unwrap();
/// sup.abort(); // no worker ever attached: stopped at once, task 7 never ran
/// let report = Report { handed_back: sup.hand_back().collect(), snapshot: sup.snapshot() };
/// assert_eq!(report.handed_back, [7]);
/// assert_eq!(report.snapshot.handed_back, 1);
/// ```
#[cfg(feature = "alloc")]
#[derive(Debug)]
pub struct Report<T, const W: usize> {
    /// The counters once every worker had left.
    pub snapshot: Snapshot<W>,
    /// Accepted tasks that will not run (queued at an abort or escalation, or retries that
    /// lost their worker), in queue order. Each is counted in `snapshot.handed_back`.
    pub handed_back: Vec<T>,
}

/// How one run of a task went wrong, on the hosts whose task function returns its faults as
/// values (embassy, the cooperative main loop): the function returns it as `Err`.
///
/// ```
/// use foreman_rt::host::Failure;
///
/// fn parse(input: &[u8]) -> Result<u32, Failure<&'static str>> {
///     match input {
///         [] => Err(Failure::Error("empty")),       // bad input: final, not retried
///         [0xff, ..] => Err(Failure::Fault("noise")), // a glitch: crash, retry per the policy
///         [first, ..] => Ok(u32::from(*first)),
///     }
/// }
/// assert_eq!(parse(&[7]), Ok(7));
/// assert_eq!(parse(&[]), Err(Failure::Error("empty")));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Failure<E> {
    /// A final error (bad input, say): recorded as failed, not retried ([`Job::fail`](crate::Job::fail)).
    Error(E),
    /// A fault (a peripheral timed out, a check failed mid-way): running again may succeed. A
    /// crash ([`Job::crash`](crate::Job::crash)): retried per the delivery policy, the worker
    /// replaced per the restart policy.
    Fault(E),
}

/// Why a worker crashed: the cause in [`Event::Crashed`] on the hosts without allocation.
///
/// ```
/// use foreman_rt::host::{Cause, Failure};
///
/// let failure: Failure<u8> = Failure::Fault(3);
/// let cause = match failure {
///     Failure::Fault(fault) => Cause::Fault(fault),
///     Failure::Error(_) => unreachable!("an error is an outcome, not a crash"),
/// };
/// assert_eq!(cause, Cause::Fault(3));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Cause<E> {
    /// The task function returned [`Failure::Fault`].
    Fault(E),
    /// The worker was condemned as hung while its task ran
    /// ([`Supervisor::condemn`](crate::Supervisor::condemn)), so its outcome was not recorded:
    /// the embassy host drops the task's future (`Hangs::Cancel`); on the cooperative host the
    /// task ran to its end and its result was discarded.
    Hung,
}
