//! [`Ticket`]: the cell that decides, for one task, between a cancellation and a worker
//! claiming the task to run it.
//!
//! The queue is a lock-free ring, so a queued task cannot be taken out of it: its ticket is
//! marked instead, and the worker that takes the task checks the ticket before it runs it
//! ([`Ticket::claim`]). The submitter's handle and the task's entry share the ticket (a host
//! keeps it in its handle's shared state; bare metal may keep it in a `static`).
//!
//! # The state machine
//!
//! ```text
//!             ┌── claim ──┐ (a retry claims again)
//!             ▼           │
//!   Pending ──claim──▶ Running(run) ──cancel──▶ Cancelled(run)
//!     │                                             │
//!     └──cancel──▶ Cancelled(never ran)             │
//!                        │                          │
//!      any state ──end──▶ Ended ◀───────────────────┘ (end)
//! ```
//!
//! | transition | from → to | returns |
//! |---|---|---|
//! | [`claim`](Ticket::claim) | Pending, Running(any) → Running(run) | `Ok` |
//! | | Cancelled, Ended → the same | `Err(Cancelled)` |
//! | [`cancel`](Ticket::cancel) | Pending → Cancelled(never ran) | [`Cancel::Pending`] |
//! | | Running(run) → Cancelled(run) | [`Cancel::Running`]`(run)` |
//! | | Cancelled(never ran), Cancelled(run) → the same | as the first cancel |
//! | | Ended → Ended | [`Cancel::Ended`] |
//! | [`end`](Ticket::end) | any → Ended | |
//!
//! Each transition is one atomic step on one word, so a cancellation and a claim racing each
//! other are ordered: a claim that came first makes the cancellation say `Running(run)` (the
//! host then cancels the run, [`Supervisor::cancel`](crate::Supervisor::cancel)); a
//! cancellation that came first makes the claim fail, and the task never runs.
//!
//! # The word
//!
//! | bits | meaning |
//! |---|---|
//! | 0–2 | the state |
//! | 3–31 | Running, Cancelled(run): the run's worker |
//! | 32–63 | Running, Cancelled(run): the run's generation |
//!
//! # Orderings
//!
//! Every transition is one `AcqRel` read-modify-write: `Release` publishes what the host did
//! before it (its outcome, recorded before [`end`](Ticket::end)) and `Acquire` shows that to the
//! next mover (a canceller that finds the task ended reads the outcome). Nothing else is
//! published through the ticket: the task itself travels through the queue and the slot.

use core::fmt;

use crate::slot::Run;
use crate::sync::{AtomicU64, Ordering};

const PENDING: u64 = 0;
const RUNNING: u64 = 1;
/// Cancelled before any run claimed it.
const CANCELLED_PENDING: u64 = 2;
/// Cancelled while (or after) a run held it: the run is kept in the word.
const CANCELLED_RUNNING: u64 = 3;
const ENDED: u64 = 4;

const STATE_MASK: u64 = 0b111;
const WORKER_SHIFT: u32 = 3;
const WORKER_MASK: u64 = (1 << 29) - 1;
const GENERATION_SHIFT: u32 = 32;

/// The word for a run, in `state` (Running or Cancelled(run)).
const fn pack(state: u64, run: Run) -> u64 {
    state
        | ((run.worker() as u64 & WORKER_MASK) << WORKER_SHIFT)
        | ((run.generation() as u64) << GENERATION_SHIFT)
}

/// The run a word in Running or Cancelled(run) names.
const fn unpack(word: u64) -> Run {
    Run::from_parts(
        ((word >> WORKER_SHIFT) & WORKER_MASK) as usize,
        (word >> GENERATION_SHIFT) as u32,
    )
}

/// The cancel-versus-claim cell of one task (feature `cancellation`): see the module docs.
///
/// A host creates one per task it submits with a handle, shares it between the handle and
/// the task, and:
/// - the worker, having taken the task and before running it (again on every retry),
///   [`claim`](Ticket::claim)s it; if refused, it ends the run with
///   [`Job::cancel`](crate::Job::cancel) and never runs the task;
/// - the handle's cancel [`cancel`](Ticket::cancel)s it, and cancels the run it names
///   ([`Supervisor::cancel`](crate::Supervisor::cancel)) if the task was running;
/// - once the task's one outcome is recorded (completed, failed, cancelled, dead-lettered,
///   lost, handed back), the host [`end`](Ticket::end)s it.
///
/// ```
/// use foreman_rt::{park::NoPark, policy::Policy, Cancel, Next, Supervisor, Ticket};
///
/// static TICKET: Ticket = Ticket::new();
/// let sup: Supervisor<u8, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
/// sup.try_submit(7).unwrap();
/// let mut worker = sup.attach(0).unwrap();
/// let Next::Run(job) = worker.try_next() else { unreachable!() };
/// let run = job.context().run();
/// TICKET.claim(run).unwrap(); // the worker may run the task
///
/// // Meanwhile, the submitter cancels it: it is running, so its run is cancelled.
/// assert_eq!(TICKET.cancel(), Cancel::Running(run));
/// sup.cancel(run).unwrap();
///
/// // The task sees it, stops, and the host ends the run as cancelled.
/// assert!(job.context().is_cancelled());
/// assert_eq!(job.cancel(), Ok(7));
/// TICKET.end();
/// assert_eq!(TICKET.cancel(), Cancel::Ended);
/// # drop(worker);
/// ```
pub struct Ticket(AtomicU64);

/// What [`Ticket::cancel`] found.
///
/// ```
/// use foreman_rt::{Cancel, Ticket};
/// let ticket = Ticket::new();
/// match ticket.cancel() {
///     Cancel::Pending => {} // it will never run: nothing more to do
///     Cancel::Running(run) => unreachable!("no run claimed it: {run:?}"),
///     Cancel::Ended => unreachable!("it has no outcome yet"),
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Cancel {
    /// The task has not started and never will: the worker that takes it finds the ticket
    /// cancelled and ends it with [`Job::cancel`](crate::Job::cancel).
    Pending,
    /// A run claimed the task: cancel that run with
    /// [`Supervisor::cancel`](crate::Supervisor::cancel) (the Web Worker host also condemns
    /// and kills its worker). If that says [`RunEnded`](crate::WorkerError::RunEnded), the run
    /// ended meanwhile: with its outcome, or with a crash whose retry will find the ticket
    /// cancelled.
    Running(Run),
    /// Too late: the task already has its outcome.
    Ended,
}

/// Why [`Ticket::claim`] refused: the task was cancelled (or already ended), and must not run.
///
/// ```
/// use foreman_rt::{Cancelled, Ticket};
/// let ticket = Ticket::new();
/// ticket.cancel();
/// # let run = { use foreman_rt::{park::NoPark, policy::Policy, Next, Supervisor};
/// # let sup: Supervisor<u8, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
/// # sup.try_submit(1).unwrap();
/// # let mut worker = sup.attach(0).unwrap();
/// # let Next::Run(job) = worker.try_next() else { unreachable!() };
/// # let run = job.context().run(); job.complete().unwrap(); run };
/// assert_eq!(ticket.claim(run), Err(Cancelled));
/// assert_eq!(Cancelled.to_string(), "the task was cancelled");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Cancelled;

impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the task was cancelled")
    }
}

impl core::error::Error for Cancelled {}

impl Ticket {
    crate::sync::loom_const_fn! {
        /// A ticket for a task not yet claimed nor cancelled.
        ///
        /// ```
        /// use foreman_rt::{Cancel, Ticket};
        /// static TICKET: Ticket = Ticket::new();
        /// assert_eq!(TICKET.cancel(), Cancel::Pending);
        /// ```
        pub fn new() -> Ticket {
            Ticket(AtomicU64::new(PENDING))
        }
    }

    /// Applies `next` to the word in one atomic step; returns the word it replaced (or, if
    /// `next` declined, `Err` with the word it found, left unchanged).
    fn update(&self, next: impl Fn(u64) -> Option<u64>) -> Result<u64, u64> {
        // AcqRel on success: see the module docs. Acquire on failure: the word found is
        // judged (and reported).
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, next)
    }

    /// Claims the task for `run`, the run that is about to start it: the worker calls it after
    /// taking the task and before running it, and again on every retry. `Err(Cancelled)` if the
    /// ticket was cancelled (or the task already ended): the host ends the run with
    /// [`Job::cancel`](crate::Job::cancel) and never runs the task.
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Cancel, Next, Supervisor, Ticket};
    /// let sup: Supervisor<u8, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// sup.try_submit(1).unwrap();
    /// let ticket = Ticket::new();
    /// let mut worker = sup.attach(0).unwrap();
    /// let Next::Run(job) = worker.try_next() else { unreachable!() };
    /// assert_eq!(ticket.claim(job.context().run()), Ok(()));
    /// assert_eq!(ticket.cancel(), Cancel::Running(job.context().run()));
    /// # job.complete().unwrap();
    /// ```
    pub fn claim(&self, run: Run) -> Result<(), Cancelled> {
        match self.update(|word| match word & STATE_MASK {
            PENDING | RUNNING => Some(pack(RUNNING, run)),
            _ => None,
        }) {
            Ok(_) => Ok(()),
            Err(_) => Err(Cancelled),
        }
    }

    /// Cancels the task: see [`Cancel`] for what the host does next with each answer.
    /// Idempotent: a second cancel answers as the first did (until the task ends).
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Cancel, Next, Supervisor, Ticket};
    /// let sup: Supervisor<u8, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// sup.try_submit(1).unwrap();
    /// let ticket = Ticket::new();
    /// assert_eq!(ticket.cancel(), Cancel::Pending); // still queued: it will never run
    /// assert_eq!(ticket.cancel(), Cancel::Pending);
    /// let mut worker = sup.attach(0).unwrap();
    /// let Next::Run(job) = worker.try_next() else { unreachable!() };
    /// assert!(ticket.claim(job.context().run()).is_err());
    /// assert_eq!(job.cancel(), Ok(1));
    /// ticket.end();
    /// assert_eq!(ticket.cancel(), Cancel::Ended);
    /// # drop(worker);
    /// ```
    pub fn cancel(&self) -> Cancel {
        let found = self.update(|word| match word & STATE_MASK {
            PENDING => Some(CANCELLED_PENDING),
            RUNNING => Some((word & !STATE_MASK) | CANCELLED_RUNNING),
            // Cancelled already, or ended: nothing changes.
            _ => None,
        });
        let word = found.unwrap_or_else(|word| word);
        match word & STATE_MASK {
            PENDING | CANCELLED_PENDING => Cancel::Pending,
            RUNNING | CANCELLED_RUNNING => Cancel::Running(unpack(word)),
            _ => Cancel::Ended,
        }
    }

    /// Marks the task's outcome recorded: the host calls it after the task completed,
    /// failed, was cancelled, dead-lettered, lost or handed back. A later
    /// [`cancel`](Ticket::cancel) answers [`Cancel::Ended`].
    ///
    /// ```
    /// use foreman_rt::{Cancel, Ticket};
    /// let ticket = Ticket::new();
    /// ticket.end(); // handed back at a shutdown, say
    /// assert_eq!(ticket.cancel(), Cancel::Ended);
    /// ```
    pub fn end(&self) {
        // AcqRel: see the module docs.
        self.0.swap(ENDED, Ordering::AcqRel);
    }

    /// Whether the ticket was cancelled (and the task has not ended): for a host that wants
    /// to know without cancelling.
    ///
    /// ```
    /// use foreman_rt::Ticket;
    /// let ticket = Ticket::new();
    /// assert!(!ticket.is_cancelled());
    /// ticket.cancel();
    /// assert!(ticket.is_cancelled());
    /// ticket.end();
    /// assert!(!ticket.is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        // Acquire: see the module docs.
        matches!(
            self.0.load(Ordering::Acquire) & STATE_MASK,
            CANCELLED_PENDING | CANCELLED_RUNNING
        )
    }
}

impl Default for Ticket {
    /// The same as [`Ticket::new`].
    ///
    /// ```
    /// use foreman_rt::{Cancel, Ticket};
    /// assert_eq!(Ticket::default().cancel(), Cancel::Pending);
    /// ```
    fn default() -> Self {
        Ticket::new()
    }
}

impl fmt::Debug for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Relaxed: informational.
        let word = self.0.load(Ordering::Relaxed);
        let mut out = f.debug_tuple("Ticket");
        match word & STATE_MASK {
            PENDING => out.field(&"pending"),
            RUNNING => out.field(&"running").field(&unpack(word)),
            CANCELLED_PENDING => out.field(&"cancelled"),
            CANCELLED_RUNNING => out.field(&"cancelled").field(&unpack(word)),
            _ => out.field(&"ended"),
        };
        out.finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    //! Every transition against every state, checked against the module docs' table.

    extern crate std;

    use super::*;
    use std::vec::Vec;

    fn run(worker: usize, generation: u32) -> Run {
        Run::from_parts(worker, generation)
    }

    /// Every state a ticket can be in (with the largest worker and generation it keeps).
    fn states() -> Vec<u64> {
        let (a, b) = (run(3, 9), run(WORKER_MASK as usize, u32::MAX));
        std::vec![
            PENDING,
            pack(RUNNING, a),
            pack(RUNNING, b),
            CANCELLED_PENDING,
            pack(CANCELLED_RUNNING, a),
            pack(CANCELLED_RUNNING, b),
            ENDED,
        ]
    }

    fn ticket_with(word: u64) -> Ticket {
        Ticket(AtomicU64::new(word))
    }

    fn word(ticket: &Ticket) -> u64 {
        ticket.0.load(Ordering::Relaxed)
    }

    #[test]
    fn claim_moves_pending_and_running_to_the_new_run_and_refuses_the_rest() {
        let next = run(1, 42);
        for before in states() {
            let ticket = ticket_with(before);
            let result = ticket.claim(next);
            match before & STATE_MASK {
                PENDING | RUNNING => {
                    assert_eq!(result, Ok(()), "{before:#x}");
                    assert_eq!(word(&ticket), pack(RUNNING, next), "{before:#x}");
                }
                _ => {
                    assert_eq!(result, Err(Cancelled), "{before:#x}");
                    assert_eq!(
                        word(&ticket),
                        before,
                        "{before:#x}: a refusal leaves the word"
                    );
                }
            }
        }
    }

    #[test]
    fn cancel_answers_what_it_found_and_keeps_the_run() {
        for before in states() {
            let ticket = ticket_with(before);
            let answer = ticket.cancel();
            let (expected_answer, expected_word) = match before & STATE_MASK {
                PENDING => (Cancel::Pending, CANCELLED_PENDING),
                RUNNING => (
                    Cancel::Running(unpack(before)),
                    (before & !STATE_MASK) | CANCELLED_RUNNING,
                ),
                CANCELLED_PENDING => (Cancel::Pending, before),
                CANCELLED_RUNNING => (Cancel::Running(unpack(before)), before),
                _ => (Cancel::Ended, before),
            };
            assert_eq!(answer, expected_answer, "{before:#x}");
            assert_eq!(word(&ticket), expected_word, "{before:#x}");
            // Idempotent.
            assert_eq!(ticket.cancel(), expected_answer, "{before:#x}, again");
            assert_eq!(word(&ticket), expected_word, "{before:#x}, again");
        }
    }

    #[test]
    fn end_ends_every_state() {
        for before in states() {
            let ticket = ticket_with(before);
            ticket.end();
            assert_eq!(word(&ticket), ENDED, "{before:#x}");
            assert!(!ticket.is_cancelled());
        }
    }

    #[test]
    fn a_run_survives_the_packing() {
        for run in [
            run(0, 0),
            run(5, 1 << 23),
            run(WORKER_MASK as usize, u32::MAX),
        ] {
            assert_eq!(unpack(pack(RUNNING, run)), run);
            assert_eq!(pack(RUNNING, run) & STATE_MASK, RUNNING);
        }
    }

    #[test]
    fn a_refused_claim_says_why() {
        assert_eq!(std::format!("{Cancelled}"), "the task was cancelled");
    }

    #[test]
    fn a_ticket_debugs_as_its_state() {
        let ticket = Ticket::new();
        assert_eq!(std::format!("{ticket:?}"), "Ticket(\"pending\")");
        ticket.claim(run(2, 7)).unwrap();
        assert_eq!(
            std::format!("{ticket:?}"),
            "Ticket(\"running\", Run { worker: 2, generation: 7 })"
        );
        ticket.cancel();
        assert!(ticket.is_cancelled());
        assert_eq!(
            std::format!("{ticket:?}"),
            "Ticket(\"cancelled\", Run { worker: 2, generation: 7 })"
        );
        ticket.end();
        assert_eq!(std::format!("{ticket:?}"), "Ticket(\"ended\")");
        let never_ran = Ticket::new();
        never_ran.cancel();
        assert_eq!(std::format!("{never_ran:?}"), "Ticket(\"cancelled\")");
    }
}
