//! Counters and the [`Snapshot`] that reports them.
//!
//! # Why a snapshot always adds up
//!
//! Every count is derived from *monotonic* counters: the queue's pop and push positions, each
//! worker's completed/failed counts (written only by that worker), and the shared counters of
//! the rare events (requeued, dead-lettered, lost, handed back). Each task *attempt* takes one
//! pop and ends in exactly one of completed, failed, requeued, dead-lettered, lost or handed
//! back, so with
//!
//! ```text
//! submitted = pushes − requeued        queued = pushes − pops
//! in_flight = pops − (completed + failed + requeued + dead_lettered + lost + handed_back)
//! ```
//!
//! `submitted = completed + failed + dead_lettered + lost + handed_back + queued + in_flight`
//! holds by construction. What makes the parts *honest* (never negative, never counting a task
//! twice) is the read order: outcomes first, then pops, then pushes, each with `Acquire` (or
//! `SeqCst`) against the `Release` that follows the event it counts. A task's outcome is
//! written after its pop, and its pop after its push, so a reader that sees an outcome also
//! sees the pop and push behind it. Counters wrap modulo `2^(usize::BITS − 1)`, the range of
//! queue positions, and all arithmetic is done in that ring.

use crate::supervisor::SupervisorState;
use crate::sync::{AtomicUsize, Ordering};
use crate::worker::WorkerState;

/// Counts wrap modulo `COUNT_MASK + 1`, the range of the queue's positions.
pub(crate) const COUNT_MASK: usize = usize::MAX >> 1;

/// The shared counters of rare events. Hot-path counts live in each worker's slot.
pub(crate) struct Counters {
    pub(crate) requeued: AtomicUsize,
    pub(crate) dead_lettered: AtomicUsize,
    pub(crate) lost: AtomicUsize,
    pub(crate) handed_back: AtomicUsize,
    /// Submissions refused (full or closed); not part of the identity: never accepted.
    pub(crate) rejected: AtomicUsize,
}

impl Counters {
    crate::sync::loom_const_fn! {
        pub(crate) fn new() -> Self {
            Counters {
                requeued: AtomicUsize::new(0),
                dead_lettered: AtomicUsize::new(0),
                lost: AtomicUsize::new(0),
                handed_back: AtomicUsize::new(0),
                rejected: AtomicUsize::new(0),
            }
        }
    }

    /// Counts one event, after the queue operation it follows.
    #[inline]
    pub(crate) fn bump(counter: &AtomicUsize) {
        // Release: a snapshot that Acquire-loads this count also sees the pop (and push) that
        // preceded the event.
        counter.fetch_add(1, Ordering::Release);
    }

    /// Reads one count for a snapshot.
    #[inline]
    pub(crate) fn read(counter: &AtomicUsize) -> usize {
        // Acquire: pairs with `bump`; see the module docs for why the order of reads matters.
        counter.load(Ordering::Acquire) & COUNT_MASK
    }
}

/// One worker as a [`Snapshot`] saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerSnapshot {
    /// Its state.
    pub state: WorkerState,
    /// Tasks it completed (all incarnations of this slot).
    pub completed: usize,
    /// Tasks that returned an error on it.
    pub failed: usize,
    /// Times it crashed (or was killed as hung).
    pub crashes: u32,
    /// Times a replacement was asked for.
    pub restarts: u32,
}

/// The supervisor's counters and worker states, read without locks.
///
/// A snapshot is not one atomic instant, but it always *adds up*:
/// `submitted == completed + failed + dead_lettered + lost + handed_back + queued + in_flight`,
/// with every part a real count (see the module docs). Counts wrap modulo
/// `2^(usize::BITS − 1)`.
///
/// ```
/// use foreman_rt::{park::NoPark, policy::Policy, Next, Supervisor};
///
/// let sup: Supervisor<u32, 8, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
/// sup.try_submit(1).unwrap();
/// sup.try_submit(2).unwrap();
/// let mut worker = sup.attach(0).unwrap();
/// if let Next::Run(job) = worker.try_next() {
///     job.complete().unwrap();
/// }
/// let snap = sup.snapshot();
/// assert_eq!((snap.submitted, snap.completed, snap.queued, snap.in_flight), (2, 1, 1, 0));
/// assert!(snap.adds_up());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot<const W: usize> {
    /// The supervisor's state.
    pub state: SupervisorState,
    /// Tasks accepted by `try_submit`/`submit`.
    pub submitted: usize,
    /// Tasks that ran to a result.
    pub completed: usize,
    /// Tasks that ran to an error.
    pub failed: usize,
    /// Tasks whose every allowed attempt crashed (at-least-once).
    pub dead_lettered: usize,
    /// Tasks a crash interrupted under at-most-once delivery.
    pub lost: usize,
    /// Accepted tasks given back to the host unrun (abort, escalation, no room to retry).
    pub handed_back: usize,
    /// Tasks waiting in the queue.
    pub queued: usize,
    /// Tasks taken from the queue and not yet ended: running, or kept for a retry.
    pub in_flight: usize,
    /// Crashed attempts put back into the queue (not part of the identity: the task is
    /// counted again where it is now).
    pub requeued: usize,
    /// Submissions refused as full or closed (never accepted, so not part of the identity).
    pub rejected: usize,
    /// Crashes, all workers together.
    pub crashes: u32,
    /// Restarts asked for, all workers together.
    pub restarts: u32,
    /// Each worker.
    pub workers: [WorkerSnapshot; W],
}

/// The raw counts a snapshot is derived from, read in the order the module docs require.
pub(crate) struct Raw {
    pub(crate) completed: usize,
    pub(crate) failed: usize,
    pub(crate) requeued: usize,
    pub(crate) dead_lettered: usize,
    pub(crate) lost: usize,
    pub(crate) handed_back: usize,
    pub(crate) rejected: usize,
    pub(crate) popped: usize,
    pub(crate) pushed: usize,
}

impl<const W: usize> Snapshot<W> {
    /// Derives the snapshot from raw counts.
    pub(crate) fn derive(state: SupervisorState, raw: Raw, workers: [WorkerSnapshot; W]) -> Self {
        let sub = |a: usize, b: usize| a.wrapping_sub(b) & COUNT_MASK;
        let ended = raw
            .completed
            .wrapping_add(raw.failed)
            .wrapping_add(raw.requeued)
            .wrapping_add(raw.dead_lettered)
            .wrapping_add(raw.lost)
            .wrapping_add(raw.handed_back);
        Snapshot {
            state,
            submitted: sub(raw.pushed, raw.requeued),
            completed: raw.completed,
            failed: raw.failed,
            dead_lettered: raw.dead_lettered,
            lost: raw.lost,
            handed_back: raw.handed_back,
            queued: sub(raw.pushed, raw.popped),
            in_flight: sub(raw.popped, ended),
            requeued: raw.requeued,
            rejected: raw.rejected,
            crashes: workers.iter().map(|w| w.crashes).fold(0, u32::wrapping_add),
            restarts: workers
                .iter()
                .map(|w| w.restarts)
                .fold(0, u32::wrapping_add),
            workers,
        }
    }

    /// Tasks that reached a final outcome: completed, failed, dead-lettered, lost or handed back.
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Supervisor};
    /// let sup: Supervisor<u8, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// assert_eq!(sup.snapshot().finished(), 0);
    /// ```
    pub fn finished(&self) -> usize {
        self.completed
            .wrapping_add(self.failed)
            .wrapping_add(self.dead_lettered)
            .wrapping_add(self.lost)
            .wrapping_add(self.handed_back)
            & COUNT_MASK
    }

    /// Whether `submitted == finished + queued + in_flight` (modulo the counters' range).
    /// Always true for a snapshot from [`Supervisor::snapshot`](crate::Supervisor::snapshot);
    /// useful to check one that was copied or sent elsewhere.
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Supervisor};
    /// let sup: Supervisor<u8, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// sup.try_submit(1).unwrap();
    /// assert!(sup.snapshot().adds_up());
    /// ```
    pub fn adds_up(&self) -> bool {
        let parts = self
            .finished()
            .wrapping_add(self.queued)
            .wrapping_add(self.in_flight);
        self.submitted == parts & COUNT_MASK
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn idle() -> WorkerSnapshot {
        WorkerSnapshot {
            state: WorkerState::Idle,
            completed: 0,
            failed: 0,
            crashes: 0,
            restarts: 0,
        }
    }

    #[test]
    fn derive_balances_every_kind_of_outcome() {
        let raw = Raw {
            completed: 50,
            failed: 5,
            requeued: 4,
            dead_lettered: 2,
            lost: 1,
            handed_back: 3,
            rejected: 9,
            popped: 70,
            pushed: 84,
        };
        let snap = Snapshot::derive(SupervisorState::Running, raw, [idle(); 2]);
        assert_eq!(snap.submitted, 80);
        assert_eq!(snap.queued, 14);
        assert_eq!(snap.in_flight, 5);
        assert!(snap.adds_up());
    }

    #[test]
    fn derive_is_consistent_across_counter_wraparound() {
        // Positions wrapped past the counters' range; the parts still add up.
        let raw = Raw {
            completed: COUNT_MASK - 1,
            failed: 0,
            requeued: 0,
            dead_lettered: 0,
            lost: 0,
            handed_back: 0,
            rejected: 0,
            popped: 1, // 3 pops after COUNT_MASK - 1: wrapped
            pushed: 4,
        };
        let snap = Snapshot::derive(SupervisorState::Running, raw, [idle(); 1]);
        assert_eq!(snap.queued, 3);
        assert_eq!(snap.in_flight, 3);
        assert!(snap.adds_up());
    }
}
