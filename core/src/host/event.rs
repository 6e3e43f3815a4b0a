//! The vocabulary every host reports in: an [`Event`] per thing that happened to a task or a
//! worker, and the [`Report`] a shutdown leaves. The thread host, the process host and the
//! Web Worker host (`foreman-wasm`) all speak it, so an application handles outcomes the same
//! way whatever runs its tasks.

use alloc::string::String;
use alloc::vec::Vec;

use crate::{Decision, Disposition, Snapshot};

/// Something that happened to a task or a worker, delivered to the pool's sink on the thread
/// where it happened.
///
/// ```
/// use foreman_rt::host::Event;
///
/// fn describe(event: &Event<u32, u64, String>) -> String {
///     match event {
///         Event::Completed { worker, task, output } => format!("{worker}: {task} -> {output}"),
///         Event::Failed { task, error, .. } => format!("{task} failed: {error}"),
///         Event::Crashed { worker, cause, .. } => format!("worker {worker} crashed: {cause}"),
///         Event::Hung { worker } => format!("worker {worker} is hung"),
///         Event::HandedBack { task } => format!("{task} was not run"),
///     }
/// }
/// let event = Event::Completed { worker: 1, task: 6, output: 36 };
/// assert_eq!(describe(&event), "1: 6 -> 36");
/// ```
#[derive(Debug)]
pub enum Event<T, R, E> {
    /// The handler returned `Ok(output)` for `task`.
    Completed {
        /// The worker that ran it.
        worker: usize,
        /// The task.
        task: T,
        /// What the handler returned.
        output: R,
    },
    /// The handler returned `Err(error)` for `task`. Final: not retried.
    Failed {
        /// The worker that ran it.
        worker: usize,
        /// The task.
        task: T,
        /// What the handler returned.
        error: E,
    },
    /// The worker crashed: its task panicked, or its thread or process died.
    Crashed {
        /// The crashed worker.
        worker: usize,
        /// What the host knows of the cause: a panic's message, a signal, a trap.
        cause: String,
        /// What became of its task (per the delivery policy): retried by the replacement,
        /// requeued, or — holding the task — dead-lettered, lost or handed back.
        task: Option<Disposition<T>>,
        /// Whether a replacement thread was started (`Replace`), the slot was retired, or the
        /// supervisor escalated.
        decision: Decision,
    },
    /// The watchdog flagged the worker's current task as past its deadline.
    Hung {
        /// The hung worker.
        worker: usize,
    },
    /// A task that will not run, given back at shutdown (abort, escalation, or drop).
    HandedBack {
        /// The task.
        task: T,
    },
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
#[derive(Debug)]
pub struct Report<T, const W: usize> {
    /// The counters once every worker had left.
    pub snapshot: Snapshot<W>,
    /// Accepted tasks that will not run (queued at an abort or escalation, or retries that
    /// lost their worker), in queue order. Each is counted in `snapshot.handed_back`.
    pub handed_back: Vec<T>,
}
