//! The supervisor's *phase word*: where it is in its lifecycle, and how many worker slots are
//! active. This module is the only one that writes it.
//!
//! # The lifecycle
//!
//! ```text
//! Running ──drain──▶ Draining ──(no active slot)──▶ Stopped(Drain)
//!    │  └──────abort───▶ Aborting ──(no active slot)──▶ Stopped(Abort)
//!    └──intensity exceeded / no worker left──▶ Escalated ──▶ Stopped(Escalation)
//! Stopped ──reopen──▶ Running
//! ```
//!
//! A shutdown only ever gets stronger (Running < Draining < Aborting = Escalated): an abort
//! overrides a drain, an escalation overrides a drain, nothing overrides an abort.
//!
//! # The word
//!
//! | bits | meaning |
//! |---|---|
//! | 0–1 | the phase: Running, Draining, Aborting, Escalated |
//! | 2 | stopped: a shutdown phase met zero active slots |
//! | 3–31 | the number of *active* worker slots (every state but Vacant, Exited, Retired) |
//!
//! The phase and the active count share one word so that "the last worker left" and "a
//! shutdown began" cannot pass each other: the supervisor stops exactly when a shutdown phase
//! meets zero active slots, whichever comes second, and exactly one caller sees it stop.
//!
//! # Orderings
//!
//! Every read-modify-write of the word is `SeqCst`: one total order with the other changes of
//! the word, and with the re-checks that idle workers make before they sleep (Dekker's pattern
//! through the wake words, see `park`). Loads are `Acquire` (what the thread that stopped the
//! supervisor did before is visible) or, in the sleepers' re-checks, `SeqCst`.

use core::fmt;

use crate::park::Park;
use crate::sync::{AtomicU32, Ordering};

const PHASE_MASK: u32 = 0b11;
const RUNNING: u32 = 0;
const DRAINING: u32 = 1;
const ABORTING: u32 = 2;
const ESCALATED: u32 = 3;
const STOPPED: u32 = 1 << 2;
const ACTIVE_SHIFT: u32 = 3;
const ACTIVE_ONE: u32 = 1 << ACTIVE_SHIFT;

/// How a supervisor shut down.
///
/// ```
/// use foreman_rt::{park::NoPark, policy::Policy, Shutdown, Supervisor, SupervisorState};
/// let sup: Supervisor<u8, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
/// assert_eq!(sup.abort(), SupervisorState::Stopped(Shutdown::Abort));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Shutdown {
    /// [`Supervisor::drain`](crate::Supervisor::drain): everything queued was run.
    Drain,
    /// [`Supervisor::abort`](crate::Supervisor::abort): queued tasks were left for
    /// [`Supervisor::hand_back`](crate::Supervisor::hand_back).
    Abort,
    /// The restart intensity was exceeded, or no worker was left.
    Escalation,
}

impl Shutdown {
    /// The phase code of this shutdown.
    const fn code(self) -> u32 {
        match self {
            Shutdown::Drain => DRAINING,
            Shutdown::Abort => ABORTING,
            Shutdown::Escalation => ESCALATED,
        }
    }
}

/// Where a supervisor is in its lifecycle.
///
/// ```
/// use foreman_rt::{park::NoPark, policy::Policy, Supervisor, SupervisorState};
/// let sup: Supervisor<u8, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
/// let worker = sup.attach(0).unwrap();
/// assert_eq!(sup.state(), SupervisorState::Running);
/// assert_eq!(sup.drain(), SupervisorState::Draining); // waits for the worker to leave
/// # drop(worker);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
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

/// A value of the phase word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PhaseWord(u32);

impl PhaseWord {
    /// The shutdown under way or done, `None` while running.
    pub(crate) const fn shutdown(self) -> Option<Shutdown> {
        match self.0 & PHASE_MASK {
            RUNNING => None,
            DRAINING => Some(Shutdown::Drain),
            ABORTING => Some(Shutdown::Abort),
            _ => Some(Shutdown::Escalation),
        }
    }

    /// Whether every worker left after a shutdown.
    pub(crate) const fn is_stopped(self) -> bool {
        self.0 & STOPPED != 0
    }

    /// The number of active worker slots.
    pub(crate) const fn active(self) -> u32 {
        self.0 >> ACTIVE_SHIFT
    }

    /// Whether the phase is a drain (stopped or not).
    pub(crate) const fn is_draining(self) -> bool {
        self.0 & PHASE_MASK == DRAINING
    }

    /// Whether workers must leave now: an abort or an escalation.
    pub(crate) const fn stops_workers(self) -> bool {
        matches!(self.0 & PHASE_MASK, ABORTING | ESCALATED)
    }

    /// Whether a worker that ended (`crashed` or not) may be replaced in this phase: while
    /// running, and for crashes while draining (the queue still needs running).
    pub(crate) const fn allows_restart(self, crashed: bool) -> bool {
        !self.is_stopped()
            && match self.0 & PHASE_MASK {
                RUNNING => true,
                DRAINING => crashed,
                _ => false,
            }
    }

    /// The lifecycle state this word means.
    pub(crate) const fn state(self) -> SupervisorState {
        match self.shutdown() {
            None => SupervisorState::Running,
            Some(how) if self.is_stopped() => SupervisorState::Stopped(how),
            Some(Shutdown::Drain) => SupervisorState::Draining,
            Some(Shutdown::Abort) => SupervisorState::Aborting,
            Some(Shutdown::Escalation) => SupervisorState::Escalated,
        }
    }
}

/// Why an active slot stops being counted.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Leaving {
    /// A worker left for good (exited, retired, released, swept): if it was the last one
    /// while running, no worker is left to run the queue and the supervisor escalates.
    Left,
    /// A claim the caller counted was refused after all: undone, changing nothing but the
    /// count (a shutdown that waited for it still completes).
    Undone,
}

/// The phase word: see the module docs.
pub(crate) struct Phase(AtomicU32);

impl Phase {
    crate::sync::loom_const_fn! {
        /// Running, no active slot.
        pub(crate) fn new() -> Self {
            Phase(AtomicU32::new(RUNNING))
        }
    }

    /// The word, for a snapshot.
    #[inline]
    pub(crate) fn load(&self) -> PhaseWord {
        // Acquire: what the thread that stopped the supervisor did before is visible.
        PhaseWord(self.0.load(Ordering::Acquire))
    }

    /// The word, for a sleeper's re-check (see the module docs).
    #[inline]
    pub(crate) fn load_for_recheck(&self) -> PhaseWord {
        // SeqCst: the re-check half of Dekker's pattern (module docs).
        PhaseWord(self.0.load(Ordering::SeqCst))
    }

    /// Blocks through `park` until the supervisor has stopped: the word itself is the wake
    /// word.
    pub(crate) fn wait_stopped(&self, park: &impl Park) {
        loop {
            let word = self.load();
            if word.is_stopped() {
                return;
            }
            park.park(&self.0, word.0);
        }
    }

    /// Wakes the threads in [`wait_stopped`](Self::wait_stopped): call once the word says
    /// stopped.
    pub(crate) fn wake_stop_waiters(&self, park: &impl Park) {
        park.unpark_all(&self.0);
    }

    /// The CAS loop on the word: `next` gives the new value for the current one, or `None`
    /// to leave it. Returns the value it found last, and the new value if it moved.
    #[inline]
    fn update(&self, mut next: impl FnMut(u32) -> Option<u32>) -> (PhaseWord, Option<PhaseWord>) {
        // Relaxed: a first guess; the CAS below reads the word again.
        let mut word = self.0.load(Ordering::Relaxed);
        loop {
            let Some(new) = next(word) else {
                return (PhaseWord(word), None);
            };
            // SeqCst: see the module docs. On failure, Acquire: a refusal reports a state.
            match self
                .0
                .compare_exchange_weak(word, new, Ordering::SeqCst, Ordering::Acquire)
            {
                Ok(_) => return (PhaseWord(word), Some(PhaseWord(new))),
                Err(current) => word = current,
            }
        }
    }

    /// Moves to the `target` shutdown unless an equal or stronger one is under way or done;
    /// with no active slot the supervisor stops at once. `Ok(new word)` if the phase changed,
    /// `Err(current word)` if not.
    pub(crate) fn shut_down(&self, target: Shutdown) -> Result<PhaseWord, PhaseWord> {
        let target = target.code();
        let moved = self.update(|word| {
            let phase = word & PHASE_MASK;
            // Strength: Running < Draining < Aborting = Escalated; a stopped supervisor stays.
            let weaker = phase == RUNNING || (phase == DRAINING && target != DRAINING);
            if word & STOPPED != 0 || !weaker {
                return None;
            }
            let new = (word & !PHASE_MASK) | target;
            Some(if PhaseWord(new).active() == 0 {
                new | STOPPED
            } else {
                new
            })
        });
        match moved {
            (_, Some(new)) => Ok(new),
            (current, None) => Err(current),
        }
    }

    /// Counts one more active slot, unless the supervisor takes no new workers (aborting,
    /// escalated or stopped).
    pub(crate) fn activate(&self) -> Result<(), PhaseWord> {
        match self.update(|word| {
            let takes = word & STOPPED == 0 && !PhaseWord(word).stops_workers();
            takes.then_some(word + ACTIVE_ONE)
        }) {
            (_, Some(_)) => Ok(()),
            (current, None) => Err(current),
        }
    }

    /// Counts one active slot fewer. The last one stops a shutting-down supervisor; if it
    /// [`Left`](Leaving::Left) a running one, the supervisor escalates (no worker is left to
    /// run its tasks). Returns whether this call stopped the supervisor: the caller then
    /// closes the queue and wakes every waiter.
    pub(crate) fn deactivate(&self, why: Leaving) -> bool {
        let (old, new) = self.update(|word| {
            let mut new = word - ACTIVE_ONE;
            if PhaseWord(new).active() == 0 {
                if new & PHASE_MASK == RUNNING {
                    if why == Leaving::Undone {
                        return Some(new);
                    }
                    new |= ESCALATED;
                }
                new |= STOPPED;
            }
            Some(new)
        });
        new.is_some_and(|new| new.is_stopped() && !old.is_stopped())
    }

    /// Stopped → Running, keeping nothing but the word `stopped` read (no active slot).
    /// `Err(current)` if the word changed since (a racing `reopen`).
    pub(crate) fn reopen(&self, stopped: PhaseWord) -> Result<(), PhaseWord> {
        // SeqCst: see the module docs.
        self.0
            .compare_exchange(stopped.0, RUNNING, Ordering::SeqCst, Ordering::Acquire)
            .map(drop)
            .map_err(PhaseWord)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn phase_with(word: u32) -> Phase {
        Phase(AtomicU32::new(word))
    }

    const SHUTDOWNS: [Shutdown; 3] = [Shutdown::Drain, Shutdown::Abort, Shutdown::Escalation];

    #[test]
    fn every_phase_reads_as_its_state() {
        let cases = [
            (RUNNING, SupervisorState::Running),
            (DRAINING, SupervisorState::Draining),
            (ABORTING, SupervisorState::Aborting),
            (ESCALATED, SupervisorState::Escalated),
            (
                DRAINING | STOPPED,
                SupervisorState::Stopped(Shutdown::Drain),
            ),
            (
                ABORTING | STOPPED,
                SupervisorState::Stopped(Shutdown::Abort),
            ),
            (
                ESCALATED | STOPPED,
                SupervisorState::Stopped(Shutdown::Escalation),
            ),
        ];
        for (word, state) in cases {
            for active in [0, 1, 7] {
                let word = PhaseWord(word | active << ACTIVE_SHIFT);
                assert_eq!(word.state(), state);
                assert_eq!(word.active(), active);
            }
        }
    }

    #[test]
    fn a_shutdown_only_gets_stronger() {
        // (current phase, target) → whether the phase changes.
        for from in [RUNNING, DRAINING, ABORTING, ESCALATED] {
            for target in SHUTDOWNS {
                let phase = phase_with(from | ACTIVE_ONE);
                let changes = match from {
                    RUNNING => true,
                    DRAINING => target != Shutdown::Drain,
                    _ => false,
                };
                let result = phase.shut_down(target);
                assert_eq!(result.is_ok(), changes, "from {from} to {target:?}");
                let now = phase.load();
                assert_eq!(now.active(), 1, "the count is kept");
                assert!(!now.is_stopped(), "an active slot keeps it from stopping");
                if changes {
                    assert_eq!(now.shutdown(), Some(target));
                    assert_eq!(result, Ok(now));
                } else {
                    assert_eq!(now.0, from | ACTIVE_ONE);
                    assert_eq!(result, Err(now));
                }
            }
        }
    }

    #[test]
    fn a_shutdown_with_no_active_slot_stops_at_once_and_a_stopped_one_stays() {
        for target in SHUTDOWNS {
            let phase = Phase::new();
            let new = phase.shut_down(target).unwrap();
            assert_eq!(new.state(), SupervisorState::Stopped(target));
            for again in SHUTDOWNS {
                assert_eq!(phase.shut_down(again), Err(new));
            }
        }
    }

    #[test]
    fn activation_is_refused_once_workers_must_leave() {
        for (word, takes) in [
            (RUNNING, true),
            (DRAINING, true),
            (ABORTING, false),
            (ESCALATED, false),
            (DRAINING | STOPPED, false),
        ] {
            let phase = phase_with(word | ACTIVE_ONE);
            assert_eq!(phase.activate().is_ok(), takes, "word {word:#b}");
            let expected = if takes { 2 } else { 1 };
            assert_eq!(phase.load().active(), expected);
        }
    }

    #[test]
    fn the_last_slot_to_leave_stops_a_shutdown_or_escalates_a_running_supervisor() {
        // (phase, why) → the state after the last slot leaves, and whether the call stopped it.
        let cases = [
            (
                RUNNING,
                Leaving::Left,
                SupervisorState::Stopped(Shutdown::Escalation),
                true,
            ),
            (RUNNING, Leaving::Undone, SupervisorState::Running, false),
            (
                DRAINING,
                Leaving::Left,
                SupervisorState::Stopped(Shutdown::Drain),
                true,
            ),
            (
                DRAINING,
                Leaving::Undone,
                SupervisorState::Stopped(Shutdown::Drain),
                true,
            ),
            (
                ABORTING,
                Leaving::Left,
                SupervisorState::Stopped(Shutdown::Abort),
                true,
            ),
            (
                ESCALATED,
                Leaving::Undone,
                SupervisorState::Stopped(Shutdown::Escalation),
                true,
            ),
        ];
        for (word, why, state, stopped_now) in cases {
            let phase = phase_with(word | (2 * ACTIVE_ONE));
            assert!(!phase.deactivate(why), "one slot is still active");
            assert_eq!(phase.load().0, word | ACTIVE_ONE);
            assert_eq!(phase.deactivate(why), stopped_now, "{state:?}");
            assert_eq!(phase.load().state(), state);
            assert_eq!(phase.load().active(), 0);
        }
    }

    #[test]
    fn restarts_are_allowed_while_running_and_for_crashes_while_draining() {
        for (word, normal, crash) in [
            (RUNNING, true, true),
            (DRAINING, false, true),
            (ABORTING, false, false),
            (ESCALATED, false, false),
            (DRAINING | STOPPED, false, false),
        ] {
            let word = PhaseWord(word | ACTIVE_ONE);
            assert_eq!(word.allows_restart(false), normal, "{word:?}");
            assert_eq!(word.allows_restart(true), crash, "{word:?}");
            assert_eq!(
                word.stops_workers(),
                matches!(word.0 & PHASE_MASK, ABORTING | ESCALATED)
            );
            assert_eq!(word.is_draining(), word.0 & PHASE_MASK == DRAINING);
        }
    }

    #[test]
    fn every_state_has_its_name_and_displays_it() {
        extern crate std;
        let names = [
            (SupervisorState::Running, "running"),
            (SupervisorState::Draining, "draining"),
            (SupervisorState::Aborting, "aborting"),
            (SupervisorState::Escalated, "escalated"),
            (SupervisorState::Stopped(Shutdown::Abort), "stopped"),
        ];
        for (state, name) in names {
            assert_eq!(state.name(), name);
            assert_eq!(std::format!("{state}"), name);
        }
    }

    /// A `Park` that records its calls; parking runs `on_park` (another thread's move).
    struct Recorder<'a> {
        parked: core::cell::Cell<u32>,
        woken: core::cell::Cell<u32>,
        on_park: &'a dyn Fn(),
    }

    impl Park for Recorder<'_> {
        fn park(&self, word: &AtomicU32, expected: u32) {
            assert_eq!(
                word.load(Ordering::Relaxed),
                expected,
                "parks on the word it read"
            );
            self.parked.set(self.parked.get() + 1);
            (self.on_park)();
        }
        fn unpark_one(&self, _word: &AtomicU32) {
            unreachable!("the phase word wakes all its waiters")
        }
        fn unpark_all(&self, _word: &AtomicU32) {
            self.woken.set(self.woken.get() + 1);
        }
    }

    #[test]
    fn waiting_for_the_stop_parks_on_the_word_until_it_says_stopped() {
        let phase = phase_with(DRAINING | ACTIVE_ONE);
        let recorder = Recorder {
            parked: core::cell::Cell::new(0),
            woken: core::cell::Cell::new(0),
            // The last worker leaves while we sleep.
            on_park: &|| assert!(phase.deactivate(Leaving::Left)),
        };
        phase.wait_stopped(&recorder);
        assert_eq!(recorder.parked.get(), 1);
        assert!(phase.load().is_stopped());
        // Stopped already: returns without parking.
        phase.wait_stopped(&recorder);
        assert_eq!(recorder.parked.get(), 1);
        phase.wake_stop_waiters(&recorder);
        assert_eq!(recorder.woken.get(), 1);
    }

    #[test]
    fn reopen_succeeds_only_from_the_word_it_read() {
        let phase = Phase::new();
        let stopped = phase.shut_down(Shutdown::Abort).unwrap();
        assert_eq!(phase.reopen(PhaseWord(RUNNING)), Err(stopped));
        assert_eq!(phase.reopen(stopped), Ok(()));
        assert_eq!(phase.load().state(), SupervisorState::Running);
        assert_eq!(phase.reopen(stopped), Err(PhaseWord(RUNNING)));
    }
}
