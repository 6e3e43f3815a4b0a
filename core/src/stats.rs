//! Counters and the [`Snapshot`] that reports them.
//!
//! # How a snapshot is counted
//!
//! Every count is derived from *monotonic* counters: the queue's pop and push positions, each
//! worker's completed/failed/cancelled counts (written only by that worker, or by the one
//! recovering its slot), and the shared counters of the rare events (requeues begun and
//! refused, dead-lettered, lost, handed back). Every pop (a task leaving the queue for a
//! worker) ends in exactly one of completed, failed, cancelled, requeued, dead-lettered, lost
//! or handed back — a retry kept in its slot for the replacement is still
//! the same pop, in flight — so with
//!
//! ```text
//! requeued  = requeues begun − requeues refused (the queue was full: handed back instead)
//! submitted = pushes − requeued                 queued = pushes − pops
//! in_flight = pops − (completed + failed + cancelled + requeued + dead_lettered + lost + handed_back)
//! ```
//!
//! `submitted = completed + failed + cancelled + dead_lettered + lost + handed_back + queued + in_flight`
//! holds by construction. What makes the parts *honest* — none negative, no task counted
//! twice, `queued` never above the capacity — is the order of the reads, each `Acquire` (or
//! `SeqCst`) against the `Release` of the event it counts:
//!
//! 1. The outcomes: each worker's completed, failed and cancelled, dead-lettered, lost, handed back,
//!    then requeues refused (a refusal is counted before its hand-back, so a reader that sees
//!    the hand-back sees the refusal). A task's outcome is written after its pop, so every
//!    outcome read here has its pop counted in step 3: `in_flight` is never negative.
//! 2. Requeues begun. A requeue is counted *before* its task goes back into the queue, and
//!    after the pop of the run that crashed.
//! 3. The pop and push positions, at one instant (the tail is read again, and the pair kept
//!    only if it did not move): `queued` is the queue's length at that instant, at most `N`.
//! 4. Requeues begun, again. If a requeue began since step 2, its task may be in the queue
//!    without being counted as requeued (it would be counted twice: queued, and in flight), so
//!    the snapshot is read again. A requeue that began before step 2 is counted whether or not
//!    its task reached the queue by step 3: until it does, the task is in the hands of the
//!    crash being recorded, and the snapshot counts it nowhere (`submitted` is one lower).
//!
//! The reads are not one instant. A task that ends while they happen may be counted as still
//! in flight (its end was read in step 1, its pop in step 3), so under load `in_flight` can
//! exceed the number of workers. To avoid that, the supervisor reads the outcomes again after
//! step 3, and if none changed, the snapshot is the counts of one instant (step 3's); it tries
//! a few times before it settles for the first kind. Both kinds add up, and in both every part
//! is a real count. Counters wrap modulo `2^(usize::BITS − 1)`, the range of queue positions,
//! and all arithmetic is done in that ring. `read` takes the steps in this order.

use crate::phase::{Phase, SupervisorState};
use crate::queue::Queue;
use crate::slot::{Envelope, WorkerSlot, WorkerState};
use crate::sync::{AtomicUsize, CachePadded, Ordering};

/// Counts wrap modulo `COUNT_MASK + 1`, the range of the queue's positions.
const COUNT_MASK: usize = usize::MAX >> 1;

/// The shared counters of rare events. Hot-path counts live in each worker's slot.
pub(crate) struct Counters {
    /// Requeues begun: bumped *before* the crashed task goes back into the queue (step 2).
    pub(crate) requeued: AtomicUsize,
    /// Requeues that found the queue full (the task was handed back instead): bumped before
    /// `handed_back`.
    pub(crate) requeue_refused: AtomicUsize,
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
                requeue_refused: AtomicUsize::new(0),
                dead_lettered: AtomicUsize::new(0),
                lost: AtomicUsize::new(0),
                handed_back: AtomicUsize::new(0),
                rejected: AtomicUsize::new(0),
            }
        }
    }

    /// Counts one event, after the queue operation it follows. Not inlined: a call is
    /// smaller than the read-modify-write loop where atomics are load-linked/store-conditional.
    #[inline(never)]
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
///
/// ```
/// use foreman_rt::{park::NoPark, policy::Policy, Supervisor, WorkerState};
/// let sup: Supervisor<u8, 2, 2> = Supervisor::new(Policy::DEFAULT, NoPark);
/// let worker = sup.attach(1).unwrap();
/// let snap = sup.snapshot();
/// assert_eq!(snap.workers[1].state, WorkerState::Idle);
/// assert_eq!(snap.workers[1].completed, 0);
/// # drop(worker);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct WorkerSnapshot {
    /// Its state.
    pub state: WorkerState,
    /// Tasks it completed (all incarnations of this slot).
    pub completed: usize,
    /// Tasks that returned an error on it.
    pub failed: usize,
    /// Times it crashed (or was killed as hung).
    pub crashes: u32,
    /// Times a replacement was asked for (recyclings not included).
    pub restarts: u32,
    /// Times a worker of this slot was recycled after its quota of tasks
    /// ([`Policy::with_recycling`](crate::policy::Policy::with_recycling)).
    pub recycles: u32,
    /// Tasks whose run on it ended cancelled ([`Job::cancel`](crate::Job::cancel), or the
    /// recovery of a cancelled run whose worker died). Feature `cancellation`.
    #[cfg(feature = "cancellation")]
    pub cancelled: usize,
}

/// The supervisor's counters and worker states, read without locks.
///
/// It always *adds up*:
/// `submitted == completed + failed + cancelled + dead_lettered + lost + handed_back + queued + in_flight`,
/// and every part is honest: none is negative, no task is counted in two places, `queued`
/// never exceeds the capacity. When no task ends while it is read (the supervisor tries a few
/// times), it is the counts of one instant; otherwise it is assembled over the read, and
/// `in_flight` may include tasks that ended meanwhile (so it may exceed the number of
/// workers). A task that a crash is putting back into the queue at that moment is counted
/// nowhere (`submitted` is one lower). Once the supervisor is quiet (stopped, say), a
/// snapshot is exact. (Why: every count is derived from monotonic counters read in an order
/// that makes each part honest; the argument is beside the code, in `stats.rs`.) Counts wrap
/// modulo `2^(usize::BITS − 1)`.
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
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct Snapshot<const W: usize> {
    /// The supervisor's state.
    pub state: SupervisorState,
    /// Tasks accepted by `try_submit`/`submit`.
    pub submitted: usize,
    /// Tasks that ran to a result.
    pub completed: usize,
    /// Tasks that ran to an error.
    pub failed: usize,
    /// Tasks that ended cancelled ([`Supervisor::cancel`](crate::Supervisor::cancel),
    /// [`Job::cancel`](crate::Job::cancel)): all workers' [`WorkerSnapshot::cancelled`]
    /// together. Feature `cancellation` (without it, no task ends so).
    #[cfg(feature = "cancellation")]
    pub cancelled: usize,
    /// Tasks whose every allowed attempt crashed (at-least-once).
    pub dead_lettered: usize,
    /// Tasks a crash interrupted under at-most-once delivery.
    pub lost: usize,
    /// Accepted tasks given back to the host unrun (abort, escalation, no room to retry).
    pub handed_back: usize,
    /// Tasks waiting in the queue.
    pub queued: usize,
    /// Tasks taken from the queue and not yet ended: running, kept for a retry, or (in a
    /// snapshot assembled over a busy moment) ended while it was read.
    pub in_flight: usize,
    /// Crashed attempts put back into the queue, or being put back (not part of the identity:
    /// the task is counted again where it is now).
    pub requeued: usize,
    /// Submissions refused as full or closed (never accepted, so not part of the identity).
    pub rejected: usize,
    /// Each worker (its crashes and restarts summed by [`crashes`](Self::crashes) and
    /// [`restarts`](Self::restarts)).
    pub workers: [WorkerSnapshot; W],
}

/// The counts of ended pops, read first (step 1 of the module docs), and again to check that
/// none changed.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Ends {
    completed: usize,
    failed: usize,
    #[cfg(feature = "cancellation")]
    cancelled: usize,
    dead_lettered: usize,
    lost: usize,
    handed_back: usize,
    requeue_refused: usize,
}

impl Ends {
    /// Reads the shared counters of step 1 (the caller adds each worker's completed, failed
    /// and cancelled, read before).
    fn read(counters: &Counters, sums: Outcomes) -> Ends {
        let dead_lettered = Counters::read(&counters.dead_lettered);
        let lost = Counters::read(&counters.lost);
        // A refusal is bumped before its hand-back: read the hand-back first.
        let handed_back = Counters::read(&counters.handed_back);
        let requeue_refused = Counters::read(&counters.requeue_refused);
        Ends {
            completed: sums[0],
            failed: sums[1],
            #[cfg(feature = "cancellation")]
            cancelled: sums[2],
            dead_lettered,
            lost,
            handed_back,
            requeue_refused,
        }
    }
}

/// One worker's counts of ended runs: completed, failed, and (feature `cancellation`)
/// cancelled.
type Outcomes = [usize; OUTCOMES];

/// How many kinds of ended runs a worker counts.
const OUTCOMES: usize = if cfg!(feature = "cancellation") { 3 } else { 2 };

/// The raw counts a snapshot is derived from, read in the order the module docs require.
struct Raw {
    ends: Ends,
    /// Requeues begun.
    requeued: usize,
    rejected: usize,
    popped: usize,
    pushed: usize,
}

/// Reads a snapshot, in the order the module docs require.
pub(crate) fn read<T, const N: usize, const W: usize>(
    phase: &Phase,
    counters: &Counters,
    queue: &Queue<Envelope<T>, N>,
    slots: &[CachePadded<WorkerSlot<T>>; W],
) -> Snapshot<W> {
    // Tries for the counts of one instant before settling for counts assembled over the read.
    const EXACT_TRIES: u32 = 4;
    let mut tries = 0;
    // Each worker's completed, failed and cancelled, as step 1 read them.
    let mut ended: [Outcomes; W] = [[0; OUTCOMES]; W];
    loop {
        // Step 1.
        let ends = read_ends(counters, slots, &mut ended);
        // Step 2.
        let requeued = Counters::read(&counters.requeued);
        // Step 3.
        let (popped, pushed) = queue.counts();
        // Step 4.
        if Counters::read(&counters.requeued) != requeued {
            continue; // a requeue began meanwhile: its task may be queued uncounted
        }
        tries += 1;
        // (Each worker's counts only grow: equal sums mean equal counts, so `ended` holds.)
        if tries < EXACT_TRIES && read_ends(counters, slots, &mut [[0; OUTCOMES]; W]) != ends {
            continue; // a task ended meanwhile: try for one instant again
        }
        let raw = Raw {
            ends,
            requeued,
            rejected: Counters::read(&counters.rejected),
            popped,
            pushed,
        };
        // The rest of each worker is not part of the identity: read once, now.
        let workers = core::array::from_fn(|index| {
            let slot = &slots[index];
            WorkerSnapshot {
                state: slot.state.load().state(),
                completed: ended[index][0],
                failed: ended[index][1],
                #[cfg(feature = "cancellation")]
                cancelled: ended[index][2],
                // Relaxed: informational.
                crashes: slot.crashes.load(Ordering::Relaxed),
                // Relaxed: informational.
                restarts: slot.restarts.load(Ordering::Relaxed),
                recycles: slot.recycles(),
            }
        });
        return Snapshot::derive(phase.load().state(), raw, workers);
    }
}

/// Step 1: each worker's completed, failed and cancelled (into `ended`), and the counts of
/// ended pops.
#[inline(never)]
fn read_ends<T, const W: usize>(
    counters: &Counters,
    slots: &[CachePadded<WorkerSlot<T>>; W],
    ended: &mut [Outcomes; W],
) -> Ends {
    let (mut completed, mut failed) = (0usize, 0usize);
    #[cfg(feature = "cancellation")]
    let mut cancelled = 0usize;
    for (slot, counts) in slots.iter().zip(ended) {
        *counts = [
            Counters::read(&slot.completed),
            Counters::read(&slot.failed),
            #[cfg(feature = "cancellation")]
            Counters::read(&slot.cancelled),
        ];
        completed = completed.wrapping_add(counts[0]);
        failed = failed.wrapping_add(counts[1]);
        #[cfg(feature = "cancellation")]
        {
            cancelled = cancelled.wrapping_add(counts[2]);
        }
    }
    Ends::read(
        counters,
        [
            completed & COUNT_MASK,
            failed & COUNT_MASK,
            #[cfg(feature = "cancellation")]
            (cancelled & COUNT_MASK),
        ],
    )
}

impl<const W: usize> Snapshot<W> {
    /// Derives the snapshot from raw counts.
    fn derive(state: SupervisorState, raw: Raw, workers: [WorkerSnapshot; W]) -> Self {
        let sub = |a: usize, b: usize| a.wrapping_sub(b) & COUNT_MASK;
        let ends = raw.ends;
        let requeued = sub(raw.requeued, ends.requeue_refused);
        let ended = ends
            .completed
            .wrapping_add(ends.failed)
            .wrapping_add(requeued)
            .wrapping_add(ends.dead_lettered)
            .wrapping_add(ends.lost)
            .wrapping_add(ends.handed_back);
        #[cfg(feature = "cancellation")]
        let ended = ended.wrapping_add(ends.cancelled);
        Snapshot {
            state,
            submitted: sub(raw.pushed, requeued),
            completed: ends.completed,
            failed: ends.failed,
            #[cfg(feature = "cancellation")]
            cancelled: ends.cancelled,
            dead_lettered: ends.dead_lettered,
            lost: ends.lost,
            handed_back: ends.handed_back,
            queued: sub(raw.pushed, raw.popped),
            in_flight: sub(raw.popped, ended),
            requeued,
            rejected: raw.rejected,
            workers,
        }
    }

    /// Crashes, all workers together.
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Next, Supervisor};
    /// let sup: Supervisor<u8, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// sup.try_submit(1).unwrap();
    /// let mut worker = sup.attach(0).unwrap();
    /// let Next::Run(job) = worker.try_next() else { unreachable!() };
    /// let _report = job.crash();
    /// assert_eq!((sup.snapshot().crashes(), sup.snapshot().restarts()), (1, 1));
    /// # drop(worker);
    /// ```
    pub fn crashes(&self) -> u32 {
        self.workers
            .iter()
            .fold(0, |sum, worker| sum.wrapping_add(worker.crashes))
    }

    /// Replacements asked for, all workers together.
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Supervisor};
    /// let sup: Supervisor<u8, 2, 2> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// let (first, second) = (sup.attach(0).unwrap(), sup.attach(1).unwrap());
    /// first.exit(); // permanent workers are replaced, even after a normal exit
    /// assert_eq!(sup.snapshot().restarts(), 1);
    /// # drop(second);
    /// ```
    pub fn restarts(&self) -> u32 {
        self.workers
            .iter()
            .fold(0, |sum, worker| sum.wrapping_add(worker.restarts))
    }

    /// Workers recycled after their quota of tasks, all slots together.
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Supervisor};
    /// let sup: Supervisor<u8, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// assert_eq!(sup.snapshot().recycles(), 0);
    /// ```
    pub fn recycles(&self) -> u32 {
        self.workers
            .iter()
            .fold(0, |sum, worker| sum.wrapping_add(worker.recycles))
    }

    /// Tasks that reached a final outcome: completed, failed, cancelled, dead-lettered, lost or
    /// handed back.
    ///
    /// ```
    /// use foreman_rt::{park::NoPark, policy::Policy, Supervisor};
    /// let sup: Supervisor<u8, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    /// assert_eq!(sup.snapshot().finished(), 0);
    /// ```
    pub fn finished(&self) -> usize {
        let finished = self
            .completed
            .wrapping_add(self.failed)
            .wrapping_add(self.dead_lettered)
            .wrapping_add(self.lost)
            .wrapping_add(self.handed_back);
        #[cfg(feature = "cancellation")]
        let finished = finished.wrapping_add(self.cancelled);
        finished & COUNT_MASK
    }

    /// Whether `submitted == finished + queued + in_flight` (modulo the counters' range):
    /// the identity, and nothing more. Always true for a snapshot from
    /// [`Supervisor::snapshot`](crate::Supervisor::snapshot), whose parts are derived so
    /// that it holds and read so that each is honest (see [`Snapshot`]); useful to check one
    /// that was copied, sent elsewhere or assembled by hand.
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
            recycles: 0,
            #[cfg(feature = "cancellation")]
            cancelled: 0,
        }
    }

    #[test]
    fn derive_balances_every_kind_of_outcome() {
        let raw = Raw {
            ends: Ends {
                completed: 50,
                failed: 5,
                #[cfg(feature = "cancellation")]
                cancelled: 2,
                dead_lettered: 2,
                lost: 1,
                handed_back: 3,
                requeue_refused: 1,
            },
            requeued: 5, // one of them refused: 4 went back into the queue
            rejected: 9,
            popped: if cfg!(feature = "cancellation") {
                72
            } else {
                70
            },
            pushed: if cfg!(feature = "cancellation") {
                86
            } else {
                84
            },
        };
        let snap = Snapshot::derive(SupervisorState::Running, raw, [idle(); 2]);
        assert_eq!(snap.requeued, 4);
        assert_eq!(
            snap.submitted,
            if cfg!(feature = "cancellation") {
                82
            } else {
                80
            }
        );
        #[cfg(feature = "cancellation")]
        assert_eq!(snap.cancelled, 2);
        assert_eq!(snap.queued, 14);
        assert_eq!(snap.in_flight, 5);
        assert!(snap.adds_up());
    }

    #[test]
    fn derive_is_consistent_across_counter_wraparound() {
        // Positions wrapped past the counters' range; the parts still add up.
        let raw = Raw {
            ends: Ends {
                completed: COUNT_MASK - 1,
                failed: 0,
                #[cfg(feature = "cancellation")]
                cancelled: 0,
                dead_lettered: 0,
                lost: 0,
                handed_back: 0,
                requeue_refused: 0,
            },
            requeued: 0,
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
