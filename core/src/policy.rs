//! How the supervisor treats crashes: [`Restart`], [`Intensity`], [`Delivery`], the watchdog
//! deadline, restart [`Backoff`] and worker recycling, bundled in a [`Policy`].
//!
//! The names and meanings follow Erlang/OTP supervisors. Every constructor is a `const fn`
//! that validates its input and returns a typed [`PolicyError`]; in a `const` or `static`
//! initializer an invalid policy is therefore a compile error:
//!
//! ```compile_fail
//! use foreman_rt::policy::Intensity;
//! const BAD: Intensity = match Intensity::new(3, 0) { // a zero-tick window
//!     Ok(i) => i,
//!     Err(_) => panic!("invalid intensity"),
//! };
//! ```

use core::fmt;
use core::num::NonZeroU32;

/// The host's clock, in host-defined ticks (the std host uses milliseconds).
///
/// Ticks wrap around at `u32::MAX`; durations are computed with wrapping arithmetic, so
/// windows and deadlines must stay below `u32::MAX / 2` ticks: at most [`MAX_DURATION`].
pub type Tick = u32;

/// The longest restart window or watchdog deadline, in ticks: `u32::MAX / 2 - 1` (about 24
/// days of milliseconds). Longer ones are refused with a [`PolicyError`]: compared in
/// wrapping arithmetic, they could never be reached.
///
/// ```
/// use foreman_rt::policy::{Intensity, PolicyError, MAX_DURATION};
/// assert!(Intensity::new(3, MAX_DURATION).is_ok());
/// assert_eq!(
///     Intensity::new(3, MAX_DURATION + 1),
///     Err(PolicyError::WindowTooLong { requested: MAX_DURATION + 1, limit: MAX_DURATION })
/// );
/// ```
pub const MAX_DURATION: Tick = Tick::MAX / 2 - 1;

/// Which ended workers the supervisor asks the host to replace.
///
/// A worker ends *abnormally* when it crashes (its task panicked or trapped, or it was killed
/// as hung) and *normally* when its host drops it while the supervisor is running.
///
/// ```
/// use foreman_rt::policy::Restart;
/// assert!(Restart::Transient.replaces(true));
/// assert!(!Restart::Transient.replaces(false));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Restart {
    /// Always replaced.
    Permanent,
    /// Replaced after a crash, not after a normal exit.
    Transient,
    /// Never replaced.
    Temporary,
}

impl Restart {
    /// Whether a worker that ended (`crashed` or not) should be replaced.
    ///
    /// ```
    /// use foreman_rt::policy::Restart;
    /// assert!(Restart::Permanent.replaces(false));
    /// assert!(!Restart::Temporary.replaces(true));
    /// ```
    pub const fn replaces(self, crashed: bool) -> bool {
        match self {
            Restart::Permanent => true,
            Restart::Transient => crashed,
            Restart::Temporary => false,
        }
    }
}

/// The restart intensity: at most `max_restarts` restarts within any `within` ticks. One
/// more, and the supervisor *escalates*: it stops accepting tasks and shuts down.
///
/// ```
/// use foreman_rt::policy::{Intensity, PolicyError};
///
/// let intensity = Intensity::new(3, 1_000)?; // 3 restarts per second with millisecond ticks
/// assert_eq!(intensity.max_restarts(), Some(3));
/// assert_eq!(Intensity::new(17, 1_000), Err(PolicyError::TooManyRestarts { requested: 17, limit: 16 }));
/// # Ok::<(), PolicyError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Intensity {
    /// `None`: unlimited.
    limit: Option<(u8, NonZeroU32)>,
}

impl Intensity {
    /// The most restarts an intensity can allow per window: the supervisor keeps the times of
    /// the last `max_restarts` restarts in a fixed log of this size.
    pub const MAX_RESTARTS: u8 = 16;

    const _POWER_OF_TWO: () = assert!(Self::MAX_RESTARTS.is_power_of_two());

    /// At most `max_restarts` (≤ [`MAX_RESTARTS`](Self::MAX_RESTARTS)) restarts within
    /// `within` ticks (> 0 and ≤ [`MAX_DURATION`]). `max_restarts = 0` escalates on the first
    /// crash.
    ///
    /// ```
    /// use foreman_rt::policy::{Intensity, PolicyError};
    /// assert_eq!(Intensity::new(1, 0), Err(PolicyError::ZeroWindow));
    /// assert!(matches!(Intensity::new(1, u32::MAX), Err(PolicyError::WindowTooLong { .. })));
    /// ```
    pub const fn new(max_restarts: u8, within: Tick) -> Result<Self, PolicyError> {
        if max_restarts > Self::MAX_RESTARTS {
            return Err(PolicyError::TooManyRestarts {
                requested: max_restarts,
                limit: Self::MAX_RESTARTS,
            });
        }
        if within > MAX_DURATION {
            return Err(PolicyError::WindowTooLong {
                requested: within,
                limit: MAX_DURATION,
            });
        }
        match NonZeroU32::new(within) {
            Some(within) => Ok(Intensity {
                limit: Some((max_restarts, within)),
            }),
            None => Err(PolicyError::ZeroWindow),
        }
    }

    /// Never escalates, however often workers restart.
    ///
    /// ```
    /// assert_eq!(foreman_rt::policy::Intensity::unlimited().max_restarts(), None);
    /// ```
    pub const fn unlimited() -> Self {
        Intensity { limit: None }
    }

    /// The allowed restarts per window, or `None` if unlimited.
    ///
    /// ```
    /// let intensity = foreman_rt::policy::Intensity::new(2, 10).unwrap();
    /// assert_eq!(intensity.max_restarts(), Some(2));
    /// ```
    pub const fn max_restarts(&self) -> Option<u8> {
        match self.limit {
            Some((max, _)) => Some(max),
            None => None,
        }
    }

    /// The window in ticks, or `None` if unlimited.
    ///
    /// ```
    /// let intensity = foreman_rt::policy::Intensity::new(2, 10).unwrap();
    /// assert_eq!(intensity.within(), Some(10));
    /// ```
    pub const fn within(&self) -> Option<Tick> {
        match self.limit {
            Some((_, within)) => Some(within.get()),
            None => None,
        }
    }
}

/// The restart window: the times of the last restarts, at most
/// [`Intensity::MAX_RESTARTS`], to hold an [`Intensity`] against. The supervisor keeps one
/// behind a lock, on the crash path only.
pub(crate) struct RestartWindow {
    /// A ring: the `len` times from `first` on, oldest first.
    at: [Tick; Intensity::MAX_RESTARTS as usize],
    first: u8,
    len: u8,
}

impl RestartWindow {
    /// No restart yet.
    pub(crate) const fn new() -> Self {
        RestartWindow {
            at: [0; Intensity::MAX_RESTARTS as usize],
            first: 0,
            len: 0,
        }
    }

    /// Whether one more restart at `now` stays within `intensity`; if so, it is logged.
    ///
    /// A restart at `at` stays in the window while `now - at < within` (in wrapping order:
    /// `now` is the supervisor's clock, which only moves forward). `max_restarts` restarts in
    /// the window are allowed; one more is refused, and is not logged.
    pub(crate) fn admit(&mut self, intensity: Intensity, now: Tick) -> bool {
        let Some((max_restarts, within)) = intensity.limit else {
            return true;
        };
        // MAX_RESTARTS is a power of two: masking keeps every index in the ring.
        const MASK: usize = Intensity::MAX_RESTARTS as usize - 1;
        let at = |index: u8| usize::from(index) & MASK;
        while self.len > 0 && now.wrapping_sub(self.at[at(self.first)]) >= within.get() {
            self.first = self.first.wrapping_add(1);
            self.len -= 1;
        }
        if self.len >= max_restarts {
            return false;
        }
        self.at[at(self.first.wrapping_add(self.len))] = now;
        self.len += 1;
        true
    }
}

/// What happens to the task a worker was running when it crashed.
///
/// ```
/// use foreman_rt::policy::Delivery;
///
/// let delivery = Delivery::at_least_once(3)?;
/// assert_eq!(delivery.max_attempts(), Some(3));
/// assert_eq!(Delivery::AtMostOnce.max_attempts(), None);
/// # Ok::<(), foreman_rt::policy::PolicyError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Delivery {
    /// The task is reported lost: it may have had effects, it is not run again.
    AtMostOnce,
    /// The task runs again, up to `max_attempts` runs in all; after the last it is
    /// dead-lettered (handed to the host with a report). Tasks must tolerate re-running.
    AtLeastOnce {
        /// Runs allowed in all, the first included.
        max_attempts: NonZeroU32,
    },
}

impl Delivery {
    /// At-least-once with `max_attempts` (> 0) runs in all.
    ///
    /// ```
    /// use foreman_rt::policy::{Delivery, PolicyError};
    /// assert_eq!(Delivery::at_least_once(0), Err(PolicyError::ZeroAttempts));
    /// ```
    pub const fn at_least_once(max_attempts: u32) -> Result<Self, PolicyError> {
        match NonZeroU32::new(max_attempts) {
            Some(max_attempts) => Ok(Delivery::AtLeastOnce { max_attempts }),
            None => Err(PolicyError::ZeroAttempts),
        }
    }

    /// Runs allowed in all, or `None` for at-most-once.
    ///
    /// ```
    /// assert_eq!(foreman_rt::policy::Delivery::at_least_once(5).unwrap().max_attempts(), Some(5));
    /// ```
    pub const fn max_attempts(&self) -> Option<u32> {
        match self {
            Delivery::AtMostOnce => None,
            Delivery::AtLeastOnce { max_attempts } => Some(max_attempts.get()),
        }
    }
}

/// Restart backoff: a worker replaced after a crash is attached only once a delay has passed,
/// and the delay grows with each crash in a row, so that a crash loop does not spin while the
/// [`Intensity`] window fills. After the `n`-th crash in a row of a slot's workers the delay is
/// `min(cap, initial × factor^(n−1))` ticks (Akka's `BackoffSupervisor`, without its random
/// factor: the host's clock is the only source of time here).
///
/// *Reset*: the streak of a slot ends when one of its workers records an outcome
/// ([`Job::complete`](crate::Job::complete) or [`Job::fail`](crate::Job::fail)): a worker that
/// ran a task to its end is healthy, so the next crash waits `initial` again. (Akka resets
/// after a quiet period instead; a task's outcome is the surer sign here, and needs no timer.)
///
/// The intensity limit still applies: it counts the crash when it happens, not the delayed
/// restart. Recycled workers ([`Policy::with_recycling`]) and normal exits are replaced at once.
///
/// ```
/// use foreman_rt::policy::{Backoff, PolicyError};
///
/// let backoff = Backoff::new(10, 2, 60)?; // 10, 20, 40, 60, 60, ... ticks
/// let delays: Vec<_> = (0..5).scan(0, |last, _| { *last = backoff.after(*last); Some(*last) }).collect();
/// assert_eq!(delays, [10, 20, 40, 60, 60]);
/// assert_eq!(Backoff::new(10, 2, 5), Err(PolicyError::BackoffCapBelowInitial { initial: 10, cap: 5 }));
/// # Ok::<(), PolicyError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Backoff {
    initial: NonZeroU32,
    factor: NonZeroU32,
    cap: NonZeroU32,
}

impl Backoff {
    /// A delay of `initial` ticks (> 0) after a first crash, multiplied by `factor` (> 0; 1
    /// keeps it constant) after each further crash in a row, up to `cap` ticks (≥ `initial`,
    /// ≤ [`MAX_DURATION`]).
    ///
    /// ```
    /// use foreman_rt::policy::{Backoff, PolicyError};
    /// assert_eq!(Backoff::new(0, 2, 10), Err(PolicyError::ZeroBackoff));
    /// assert_eq!(Backoff::new(1, 0, 10), Err(PolicyError::ZeroBackoff));
    /// assert!(matches!(Backoff::new(1, 2, u32::MAX), Err(PolicyError::DeadlineTooLong { .. })));
    /// ```
    pub const fn new(initial: Tick, factor: u32, cap: Tick) -> Result<Self, PolicyError> {
        if cap > MAX_DURATION {
            return Err(PolicyError::DeadlineTooLong {
                requested: cap,
                limit: MAX_DURATION,
            });
        }
        if cap < initial {
            return Err(PolicyError::BackoffCapBelowInitial { initial, cap });
        }
        match (
            NonZeroU32::new(initial),
            NonZeroU32::new(factor),
            NonZeroU32::new(cap),
        ) {
            (Some(initial), Some(factor), Some(cap)) => Ok(Backoff {
                initial,
                factor,
                cap,
            }),
            _ => Err(PolicyError::ZeroBackoff),
        }
    }

    /// The delay after a crash, given the delay of the previous crash in the streak (0 if this
    /// is the first).
    ///
    /// ```
    /// let backoff = foreman_rt::policy::Backoff::new(100, 3, 1_000).unwrap();
    /// assert_eq!((backoff.after(0), backoff.after(100), backoff.after(900)), (100, 300, 1_000));
    /// ```
    pub const fn after(&self, previous: Tick) -> Tick {
        if previous == 0 {
            return self.initial.get();
        }
        let next = previous.saturating_mul(self.factor.get());
        if next > self.cap.get() {
            self.cap.get()
        } else {
            next
        }
    }

    /// The first delay, in ticks.
    ///
    /// ```
    /// assert_eq!(foreman_rt::policy::Backoff::new(5, 2, 50).unwrap().initial(), 5);
    /// ```
    pub const fn initial(&self) -> Tick {
        self.initial.get()
    }

    /// What each further crash in a row multiplies the delay by.
    ///
    /// ```
    /// assert_eq!(foreman_rt::policy::Backoff::new(5, 2, 50).unwrap().factor(), 2);
    /// ```
    pub const fn factor(&self) -> u32 {
        self.factor.get()
    }

    /// The longest delay, in ticks.
    ///
    /// ```
    /// assert_eq!(foreman_rt::policy::Backoff::new(5, 2, 50).unwrap().cap(), 50);
    /// ```
    pub const fn cap(&self) -> Tick {
        self.cap.get()
    }
}

/// The supervisor's rules: restart kind, intensity, delivery, and the watchdog deadline.
///
/// [`Policy::DEFAULT`]: permanent workers, at most 3 restarts within 5 000 ticks, at-least-once
/// delivery with 3 attempts, no watchdog, no restart backoff, no recycling.
///
/// ```
/// use foreman_rt::policy::{Delivery, Intensity, Policy, Restart};
///
/// const POLICY: Policy = match Policy::DEFAULT.with_watchdog(500) {
///     Ok(policy) => policy.with_restart(Restart::Transient).with_delivery(Delivery::AtMostOnce),
///     Err(_) => panic!("invalid policy"),
/// };
/// assert_eq!(POLICY.watchdog(), Some(500));
/// assert_eq!(POLICY.delivery(), Delivery::AtMostOnce);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Policy {
    restart: Restart,
    intensity: Intensity,
    delivery: Delivery,
    watchdog: Option<NonZeroU32>,
    #[cfg(feature = "backoff")]
    backoff: Option<Backoff>,
    #[cfg(feature = "recycling")]
    recycling: Option<NonZeroU32>,
}

impl Policy {
    /// Permanent workers, at most 3 restarts within 5 000 ticks, at-least-once with 3 attempts,
    /// no watchdog, no restart backoff, no recycling.
    pub const DEFAULT: Policy = Policy {
        restart: Restart::Permanent,
        intensity: Intensity {
            limit: Some((3, NonZeroU32::new(5_000).unwrap())),
        },
        delivery: Delivery::AtLeastOnce {
            max_attempts: NonZeroU32::new(3).unwrap(),
        },
        watchdog: None,
        #[cfg(feature = "backoff")]
        backoff: None,
        #[cfg(feature = "recycling")]
        recycling: None,
    };

    /// This policy with another restart kind.
    ///
    /// ```
    /// use foreman_rt::policy::{Policy, Restart};
    /// assert_eq!(Policy::DEFAULT.with_restart(Restart::Temporary).restart(), Restart::Temporary);
    /// ```
    pub const fn with_restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// This policy with another intensity.
    ///
    /// ```
    /// use foreman_rt::policy::{Intensity, Policy};
    /// let policy = Policy::DEFAULT.with_intensity(Intensity::unlimited());
    /// assert_eq!(policy.intensity(), Intensity::unlimited());
    /// ```
    pub const fn with_intensity(mut self, intensity: Intensity) -> Self {
        self.intensity = intensity;
        self
    }

    /// This policy with another delivery guarantee.
    ///
    /// ```
    /// use foreman_rt::policy::{Delivery, Policy};
    /// assert_eq!(Policy::DEFAULT.with_delivery(Delivery::AtMostOnce).delivery(), Delivery::AtMostOnce);
    /// ```
    pub const fn with_delivery(mut self, delivery: Delivery) -> Self {
        self.delivery = delivery;
        self
    }

    /// This policy with a watchdog: a worker busy on one task for more than `deadline` ticks
    /// (> 0 and ≤ [`MAX_DURATION`]) without a heartbeat is flagged hung by
    /// [`Supervisor::tick`](crate::Supervisor::tick).
    ///
    /// ```
    /// use foreman_rt::policy::{Policy, PolicyError};
    /// assert_eq!(Policy::DEFAULT.with_watchdog(0), Err(PolicyError::ZeroDeadline));
    /// assert!(matches!(Policy::DEFAULT.with_watchdog(u32::MAX), Err(PolicyError::DeadlineTooLong { .. })));
    /// ```
    pub const fn with_watchdog(mut self, deadline: Tick) -> Result<Self, PolicyError> {
        if deadline > MAX_DURATION {
            return Err(PolicyError::DeadlineTooLong {
                requested: deadline,
                limit: MAX_DURATION,
            });
        }
        match NonZeroU32::new(deadline) {
            Some(deadline) => {
                self.watchdog = Some(deadline);
                Ok(self)
            }
            None => Err(PolicyError::ZeroDeadline),
        }
    }

    /// This policy with restart backoff: a worker replaced after a crash may be attached only
    /// once its delay has passed (see [`Backoff`]). [`Supervisor::attach`](crate::Supervisor::attach)
    /// refuses it earlier with [`WorkerError::BackingOff`](crate::WorkerError::BackingOff),
    /// and the crash's [`CrashReport::delay`](crate::CrashReport::delay) tells the host how long
    /// to wait.
    ///
    /// ```
    /// use foreman_rt::policy::{Backoff, Policy};
    /// let backoff = Backoff::new(10, 2, 1_000).unwrap();
    /// assert_eq!(Policy::DEFAULT.with_backoff(backoff).backoff(), Some(backoff));
    /// ```
    ///
    /// (Cargo feature `backoff`, on by default.)
    #[cfg(feature = "backoff")]
    pub const fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = Some(backoff);
        self
    }

    /// This policy with worker recycling: a worker that has started `tasks` tasks (> 0) is
    /// retired between tasks and replaced by a fresh one, as `maxtasksperchild` does for a
    /// worker that leaks or fragments memory. A recycling is not a crash: it is not counted
    /// against the [`Intensity`], waits for no [`Backoff`], and replaces even
    /// [`Restart::Temporary`] workers. It happens while the supervisor runs, and during a
    /// drain while tasks are still queued; not once workers must leave (abort, escalation).
    ///
    /// The host sees it when the worker's step ends ([`Worker::try_next`](crate::Worker::try_next)
    /// returns [`Next::Exit`](crate::Next::Exit), [`Worker::next_blocking`](crate::Worker::next_blocking)
    /// `None`) and [`Worker::exit`](crate::Worker::exit) returns
    /// [`Decision::Recycle`](crate::Decision::Recycle): it attaches a fresh worker to the slot.
    ///
    /// ```
    /// use foreman_rt::policy::{Policy, PolicyError};
    /// assert_eq!(Policy::DEFAULT.with_recycling(100)?.recycling(), Some(100));
    /// assert_eq!(Policy::DEFAULT.with_recycling(0), Err(PolicyError::ZeroTasks));
    /// # Ok::<(), PolicyError>(())
    /// ```
    ///
    /// (Cargo feature `recycling`, on by default.)
    #[cfg(feature = "recycling")]
    pub const fn with_recycling(mut self, tasks: u32) -> Result<Self, PolicyError> {
        match NonZeroU32::new(tasks) {
            Some(tasks) => {
                self.recycling = Some(tasks);
                Ok(self)
            }
            None => Err(PolicyError::ZeroTasks),
        }
    }

    /// The restart backoff, if any (always `None` without the cargo feature `backoff`).
    ///
    /// ```
    /// assert_eq!(foreman_rt::policy::Policy::DEFAULT.backoff(), None);
    /// ```
    pub const fn backoff(&self) -> Option<Backoff> {
        #[cfg(feature = "backoff")]
        return self.backoff;
        #[cfg(not(feature = "backoff"))]
        None
    }

    /// After how many tasks a worker is recycled, if it is (always `None` without the cargo
    /// feature `recycling`).
    ///
    /// ```
    /// assert_eq!(foreman_rt::policy::Policy::DEFAULT.recycling(), None);
    /// ```
    pub const fn recycling(&self) -> Option<u32> {
        #[cfg(feature = "recycling")]
        return match self.recycling {
            Some(tasks) => Some(tasks.get()),
            None => None,
        };
        #[cfg(not(feature = "recycling"))]
        None
    }

    /// The restart kind.
    ///
    /// ```
    /// assert_eq!(foreman_rt::policy::Policy::DEFAULT.restart(), foreman_rt::policy::Restart::Permanent);
    /// ```
    pub const fn restart(&self) -> Restart {
        self.restart
    }

    /// The restart intensity.
    ///
    /// ```
    /// assert_eq!(foreman_rt::policy::Policy::DEFAULT.intensity().max_restarts(), Some(3));
    /// ```
    pub const fn intensity(&self) -> Intensity {
        self.intensity
    }

    /// The delivery guarantee for a crashed worker's task.
    ///
    /// ```
    /// assert_eq!(foreman_rt::policy::Policy::DEFAULT.delivery().max_attempts(), Some(3));
    /// ```
    pub const fn delivery(&self) -> Delivery {
        self.delivery
    }

    /// The watchdog deadline in ticks, if any.
    ///
    /// ```
    /// assert_eq!(foreman_rt::policy::Policy::DEFAULT.watchdog(), None);
    /// ```
    pub const fn watchdog(&self) -> Option<Tick> {
        match self.watchdog {
            Some(deadline) => Some(deadline.get()),
            None => None,
        }
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy::DEFAULT
    }
}

/// A policy value that makes no sense.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum PolicyError {
    /// At-least-once delivery with zero attempts would never run a task.
    ZeroAttempts,
    /// An intensity window of zero ticks.
    ZeroWindow,
    /// A watchdog deadline of zero ticks would flag every busy worker.
    ZeroDeadline,
    /// Recycling a worker after zero tasks would never run one.
    ZeroTasks,
    /// A restart backoff with a zero initial delay, factor or cap.
    ZeroBackoff,
    /// A restart backoff whose cap is below its initial delay.
    BackoffCapBelowInitial {
        /// The initial delay asked for, in ticks.
        initial: Tick,
        /// The cap asked for, in ticks.
        cap: Tick,
    },
    /// More restarts per window than the restart log holds.
    TooManyRestarts {
        /// What was asked for.
        requested: u8,
        /// [`Intensity::MAX_RESTARTS`].
        limit: u8,
    },
    /// An intensity window longer than the clock can measure in wrapping arithmetic.
    WindowTooLong {
        /// What was asked for, in ticks.
        requested: Tick,
        /// [`MAX_DURATION`].
        limit: Tick,
    },
    /// A watchdog deadline longer than the clock can measure in wrapping arithmetic: it would
    /// never be reached.
    DeadlineTooLong {
        /// What was asked for, in ticks.
        requested: Tick,
        /// [`MAX_DURATION`].
        limit: Tick,
    },
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyError::ZeroAttempts => {
                f.write_str("at-least-once delivery needs at least one attempt")
            }
            PolicyError::ZeroWindow => {
                f.write_str("the restart intensity window must be at least one tick")
            }
            PolicyError::ZeroDeadline => {
                f.write_str("the watchdog deadline must be at least one tick")
            }
            PolicyError::ZeroTasks => {
                f.write_str("a worker must run at least one task before it is recycled")
            }
            PolicyError::ZeroBackoff => f.write_str(
                "a restart backoff needs an initial delay, a factor and a cap of at least 1",
            ),
            PolicyError::BackoffCapBelowInitial { initial, cap } => write!(
                f,
                "a restart backoff's cap ({cap} ticks) is below its initial delay ({initial} ticks)"
            ),
            PolicyError::TooManyRestarts { requested, limit } => write!(
                f,
                "an intensity of {requested} restarts per window exceeds the limit of {limit} \
                 (use Intensity::unlimited() to never escalate)"
            ),
            PolicyError::WindowTooLong { requested, limit } => write!(
                f,
                "an intensity window of {requested} ticks exceeds the limit of {limit} \
                 (ticks wrap around; use Intensity::unlimited() to never escalate)"
            ),
            PolicyError::DeadlineTooLong { requested, limit } => write!(
                f,
                "a watchdog deadline of {requested} ticks exceeds the limit of {limit} \
                 (ticks wrap around, so it could never be reached)"
            ),
        }
    }
}

impl core::error::Error for PolicyError {}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn the_window_allows_max_restarts_within_it_and_refuses_one_more() {
        let intensity = Intensity::new(3, 100).unwrap();
        let mut window = RestartWindow::new();
        for now in [10, 20, 30] {
            assert!(window.admit(intensity, now), "restart at {now}");
        }
        assert!(
            !window.admit(intensity, 109),
            "a fourth within 100 ticks of the first"
        );
        assert!(
            !window.admit(intensity, 109),
            "a refusal is not logged, nor forgotten"
        );
        // At 110 the restart at 10 is 100 ticks old: out of the window.
        assert!(window.admit(intensity, 110));
        assert!(!window.admit(intensity, 119));
        assert!(window.admit(intensity, 120)); // the one at 20 left
    }

    #[test]
    fn the_window_agrees_with_counting_every_restart_across_the_clock_wrapping_around() {
        extern crate std;
        use std::vec::Vec;
        // A reference model: every restart admitted so far, counted anew each time.
        for (max_restarts, within) in [(1, 7), (5, 40), (Intensity::MAX_RESTARTS, 50)] {
            let intensity = Intensity::new(max_restarts, within).unwrap();
            let mut window = RestartWindow::new();
            let mut admitted: Vec<Tick> = Vec::new();
            let mut now = Tick::MAX - 300; // the clock wraps around half-way
            let mut seed = 0x2545_F491_u32;
            for _ in 0..600 {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                now = now.wrapping_add(seed % 4); // bursts (steps of 0) and pauses
                let in_window = admitted
                    .iter()
                    .filter(|&&at| now.wrapping_sub(at) < within)
                    .count();
                let expected = in_window < usize::from(max_restarts);
                assert_eq!(window.admit(intensity, now), expected, "at {now}");
                if expected {
                    admitted.push(now);
                }
            }
            assert!(admitted.len() > 20, "the model exercised the window");
        }
    }

    #[test]
    fn zero_restarts_escalates_at_once_and_unlimited_never() {
        let mut window = RestartWindow::new();
        assert!(!window.admit(Intensity::new(0, 10).unwrap(), 0));
        for now in 0..100 {
            assert!(window.admit(Intensity::unlimited(), now));
        }
    }

    #[test]
    fn backoff_grows_by_its_factor_to_its_cap_and_never_wraps() {
        let backoff = Backoff::new(3, 10, 1_000).unwrap();
        let mut delay = 0;
        let mut seen = [0; 5];
        for slot in &mut seen {
            delay = backoff.after(delay);
            *slot = delay;
        }
        assert_eq!(seen, [3, 30, 300, 1_000, 1_000]);
        let constant = Backoff::new(7, 1, 7).unwrap();
        assert_eq!(constant.after(constant.after(0)), 7);
        // A product past u32::MAX saturates, then is capped.
        let steep = Backoff::new(MAX_DURATION, u32::MAX, MAX_DURATION).unwrap();
        assert_eq!(steep.after(MAX_DURATION), MAX_DURATION);
    }

    #[test]
    fn policy_errors_for_the_new_options_explain_themselves() {
        extern crate std;
        use std::string::ToString;
        assert!(PolicyError::ZeroTasks
            .to_string()
            .contains("at least one task"));
        assert!(PolicyError::ZeroBackoff.to_string().contains("at least 1"));
        assert_eq!(
            PolicyError::BackoffCapBelowInitial { initial: 9, cap: 3 }.to_string(),
            "a restart backoff's cap (3 ticks) is below its initial delay (9 ticks)"
        );
        assert_eq!(
            Backoff::new(4, 2, 4).map(|b| (b.initial(), b.factor(), b.cap())),
            Ok((4, 2, 4))
        );
    }

    #[test]
    fn the_longest_durations_are_accepted_and_one_more_tick_is_refused() {
        // Half the clock's range less one: a deadline compared in wrapping order is reachable.
        assert_eq!(MAX_DURATION, (1 << 31) - 2);
        assert_eq!(
            Policy::DEFAULT
                .with_watchdog(MAX_DURATION)
                .map(|p| p.watchdog()),
            Ok(Some(MAX_DURATION))
        );
        for too_long in [MAX_DURATION + 1, u32::MAX] {
            assert_eq!(
                Policy::DEFAULT.with_watchdog(too_long),
                Err(PolicyError::DeadlineTooLong {
                    requested: too_long,
                    limit: MAX_DURATION
                })
            );
        }
        assert!(Backoff::new(1, 2, MAX_DURATION).is_ok());
        assert!(Backoff::new(1, 2, MAX_DURATION + 1).is_err());
        assert!(Intensity::new(1, MAX_DURATION).is_ok());
        assert!(Intensity::new(1, MAX_DURATION + 1).is_err());
    }

    #[test]
    fn restart_kinds_replace_the_workers_they_name() {
        let kinds = [Restart::Permanent, Restart::Transient, Restart::Temporary];
        let replaced = kinds.map(|kind| (kind.replaces(true), kind.replaces(false)));
        assert_eq!(replaced, [(true, true), (true, false), (false, false)]);
    }
}
