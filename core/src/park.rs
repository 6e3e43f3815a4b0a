//! [`Park`]: the one blocking primitive a host lends the core, and the wake words built on it.
//!
//! The core never blocks by itself. Where a thread has to wait (an idle worker, a submitter
//! facing a full queue, a host waiting for shutdown), the core parks it on a 32-bit *wake
//! word* through the host's [`Park`]: a futex on Linux, `memory.atomic.wait32` in a Web
//! Worker, nothing at all on a bare-metal main loop ([`NoPark`]).
//!
//! A `Signal` is an *event count* over two words: `state` (how many threads are about to
//! park or are parked, and whether a wake-up is on its way) and `epoch` (bumped by every
//! notification). A waiter reads the epoch, registers, re-checks its condition, then parks on
//! the epoch it read; a notifier changes the condition, then wakes only if someone registered.
//! With `SeqCst` on both sides (Dekker's pattern) either the waiter sees the new condition or
//! the notifier sees the waiter, so no wake-up is lost, and a notifier pays one load, no
//! system call, while nobody sleeps. (`sync::dekker_fence` explains how the loom models check
//! this.)
//!
//! A notifier also pays no system call while an earlier `notify_one`'s wake-up is still on its
//! way (see `Signal::notify_one`): a burst of submissions to sleeping workers costs one
//! wake-up, not one per task.

pub use crate::sync::AtomicU32;
use crate::sync::{dekker_fence, Ordering};

/// How a host blocks a thread on a wake word and wakes it again.
///
/// Contract, as for a futex: [`park`](Park::park) returns at once if `word` no longer holds
/// `expected`; otherwise it blocks until an `unpark_*` on the same word (or spuriously). The
/// check and the sleep must be one atomic step with respect to `unpark_*`.
///
/// ```
/// use foreman_rt::park::Park;
/// use foreman_rt::park::AtomicU32;
///
/// /// Parks by spinning: correct (if wasteful) on any target, and a template for real ones.
/// struct SpinPark;
///
/// impl Park for SpinPark {
///     fn park(&self, word: &AtomicU32, expected: u32) {
///         while word.load(core::sync::atomic::Ordering::Acquire) == expected {
///             core::hint::spin_loop();
///         }
///     }
///     fn unpark_one(&self, _word: &AtomicU32) {}
///     fn unpark_all(&self, _word: &AtomicU32) {}
/// }
/// ```
pub trait Park {
    /// Whether [`park`](Park::park) may block. `false` promises that it never does (it
    /// returns at once, as [`NoPark`]'s does): then nobody ever sleeps on a wake word, and the
    /// core sends no wake-ups at all, which saves their atomic operations on every submission
    /// and shutdown, and their code in a firmware image. A `Park` that blocks and says `false`
    /// loses wake-ups: its threads sleep until something else wakes them.
    ///
    /// ```
    /// use foreman_rt::park::{NoPark, Park};
    /// assert!(!NoPark::BLOCKS);
    /// ```
    const BLOCKS: bool = true;

    /// Blocks while `word` holds `expected`. May return spuriously.
    fn park(&self, word: &AtomicU32, expected: u32);
    /// Wakes at least one thread parked on `word`, if any.
    fn unpark_one(&self, word: &AtomicU32);
    /// Wakes every thread parked on `word`.
    fn unpark_all(&self, word: &AtomicU32);
}

/// A [`Park`] that never blocks, for hosts that poll: a bare-metal main loop that runs worker
/// steps and sleeps on its own (`WFI`) when none has work.
///
/// With `NoPark`, [`Worker::next_blocking`](crate::Worker::next_blocking) and
/// [`Supervisor::submit`](crate::Supervisor::submit) return or retry at once instead of
/// sleeping, so a single-threaded host should use
/// [`try_submit`](crate::Supervisor::try_submit) and treat [`Next::Idle`](crate::Next::Idle)
/// as "nothing to do now".
///
/// ```
/// use foreman_rt::park::{NoPark, Park};
/// use foreman_rt::park::AtomicU32;
///
/// let word = AtomicU32::new(0);
/// NoPark.park(&word, 0); // returns at once
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPark;

impl Park for NoPark {
    const BLOCKS: bool = false;

    #[inline]
    fn park(&self, _word: &AtomicU32, _expected: u32) {
        crate::sync::spin_loop();
    }

    #[inline]
    fn unpark_one(&self, _word: &AtomicU32) {}

    #[inline]
    fn unpark_all(&self, _word: &AtomicU32) {}
}

/// An event count: lets threads sleep until a condition they check may have changed.
///
/// Waiter: `let key = signal.prepare();` → re-check the condition → `signal.wait(park, key)`
/// if still unmet, else `signal.cancel()`; either way, look at the condition again before
/// sleeping again. Notifier: make the condition true (with a `SeqCst` operation) →
/// `signal.notify_one(park)`.
pub(crate) struct Signal {
    /// Bumped by each notification that found a sleeper; the word sleepers park on.
    epoch: AtomicU32,
    /// [`SLEEPER`] times the number of threads between `prepare` and the end of
    /// `wait`/`cancel`, plus [`WAKING`].
    state: AtomicU32,
}

/// In `Signal::state`: set by a `notify_one` that is waking a sleeper, cleared by the next
/// sleeper to leave.
const WAKING: u32 = 1;
/// In `Signal::state`: one registered sleeper.
const SLEEPER: u32 = 2;

impl Signal {
    crate::sync::loom_const_fn! {
        pub(crate) fn new() -> Self {
            Signal { epoch: AtomicU32::new(0), state: AtomicU32::new(0) }
        }
    }

    /// Registers the caller as a sleeper; returns the epoch to park on.
    #[inline]
    pub(crate) fn prepare(&self) -> u32 {
        // SeqCst: read before registering, so that a notifier that counts us bumps the epoch
        // after this read and our `park` returns at once (see `notify_one`).
        let key = self.epoch.load(Ordering::SeqCst);
        // SeqCst: the registration must precede the caller's re-check of its condition in the
        // total order that the notifier's condition change and `state` load share.
        self.state.fetch_add(SLEEPER, Ordering::SeqCst);
        dekker_fence();
        key
    }

    /// Withdraws a registration (the condition was met after all, or the caller woke up) and
    /// clears [`WAKING`]: the caller looks at its condition after this.
    #[inline]
    pub(crate) fn cancel(&self) {
        // SeqCst: clearing WAKING must precede the caller's next look at its condition in the
        // total order shared with the notifiers that skipped because of the flag.
        let _ = self
            .state
            .fetch_update(Ordering::SeqCst, Ordering::Relaxed, |state| {
                Some((state - SLEEPER) & !WAKING)
            });
        dekker_fence();
    }

    /// Parks until notified after `prepare` returned `key` (or spuriously), then withdraws.
    #[inline]
    pub(crate) fn wait(&self, park: &impl Park, key: u32) {
        park.park(&self.epoch, key);
        self.cancel();
    }

    /// Whether a thread may be about to park, or parked: for a notifier that has a condition
    /// of its own to check before `notify_one`, which checks again.
    #[inline]
    pub(crate) fn has_sleepers(&self) -> bool {
        dekker_fence();
        // SeqCst: as in `notify_one`.
        self.state.load(Ordering::SeqCst) >= SLEEPER
    }

    /// Wakes one sleeper, if any registered and no other wake-up is on its way. Call after
    /// making the condition true with a `SeqCst` operation.
    ///
    /// Skipping while [`WAKING`] is set loses no wake-up. The flag is set only while a sleeper
    /// is registered, and before the epoch bump; that sleeper read its key before registering,
    /// so it cannot stay parked past the bump: it returns from `park`, or `unpark_one` wakes it
    /// or another parked thread. So after the flag is set some sleeper leaves, and leaving
    /// clears the flag (`cancel`) before the leaver looks at its condition again. A notifier
    /// that skipped read the flag after its condition change and before that clearing, so the
    /// leaver sees the change.
    #[inline]
    pub(crate) fn notify_one<P: Park>(&self, park: &P) {
        if !P::BLOCKS {
            return; // nobody sleeps
        }
        dekker_fence();
        // SeqCst: pairs with `prepare` (Dekker): either this load sees the registration, or the
        // waiter's re-check sees the notifier's condition change; and with `cancel` (above).
        let mut state = self.state.load(Ordering::SeqCst);
        loop {
            if state < SLEEPER || state & WAKING != 0 {
                return; // nobody to wake, or a wake-up is on its way
            }
            // SeqCst: as the load above.
            match self.state.compare_exchange_weak(
                state,
                state | WAKING,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => break,
                Err(current) => state = current,
            }
        }
        // SeqCst: the bump must be visible to a `park` that compares the epoch.
        self.epoch.fetch_add(1, Ordering::SeqCst);
        park.unpark_one(&self.epoch);
    }

    /// Wakes every sleeper. Call after making the condition true with a `SeqCst` operation.
    pub(crate) fn notify_all<P: Park>(&self, park: &P) {
        if !P::BLOCKS {
            return; // nobody sleeps
        }
        dekker_fence();
        // SeqCst: as in `notify_one`.
        if self.state.load(Ordering::SeqCst) >= SLEEPER {
            // SeqCst: as in `notify_one`.
            self.epoch.fetch_add(1, Ordering::SeqCst);
            park.unpark_all(&self.epoch);
        }
    }
}
