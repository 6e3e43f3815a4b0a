//! # foreman
//!
//! A supervisor–worker runtime for places where threads are scarce: bare-metal
//! microcontrollers, the browser, and ordinary operating systems.
//!
//! The core is a passive state machine: `#![no_std]`, no allocation, no lock on the task path.
//! It holds a bounded lock-free [`Queue`](queue::Queue) of tasks, one slot per worker, and
//! the rules of an Erlang/OTP-style supervisor. It never spawns, sleeps or reads a clock: a
//! *host* gives it life. The host attaches workers and runs their loops, parks idle ones with
//! its own primitive ([`Park`](park::Park)), reports crashes, and feeds the clock.
//!
//! ```text
//!   host (std threads │ Web Workers │ bare-metal main loop)
//!     │ submit / drain / abort / tick / recover          │ attach / next / complete
//!     ▼                                                  ▼
//!   Supervisor ──▶ Queue<Task, N> ──▶ worker slots [0..W]: state word, task, counters
//! ```
//!
//! What makes it a supervisor and not just a pool:
//!
//! - **Back-pressure that loses nothing.** [`Supervisor::try_submit`] hands a refused task back
//!   ([`SubmitError::Full`] or [`SubmitError::Closed`]); [`Supervisor::submit`] parks instead.
//! - **Crash recovery.** A crashed worker's task is retried, dead-lettered or reported lost
//!   per the [`Delivery`](policy::Delivery) policy; a replacement is asked for per the
//!   [`Restart`](policy::Restart) policy, within a restart [`Intensity`](policy::Intensity),
//!   beyond which the supervisor escalates (stops accepting and shuts down).
//! - **Shutdowns that never deadlock.** [`Supervisor::drain`] (finish the queue) and
//!   [`Supervisor::abort`] (finish current tasks, hand the rest back) return at once and are
//!   idempotent; workers leave at their next step.
//! - **A watchdog** ([`Supervisor::tick`]) flags workers busy past a deadline as hung.
//! - **Observability.** [`Supervisor::snapshot`] reads counters and worker states without
//!   locks, and they always add up.
//!
//! ## Example: a host in a few lines
//!
//! Two OS threads drive the workers; the main thread submits and drains. (With the `std`
//! feature, [`host::threads::Pool`] does all of this, plus parking, panics and restarts.)
//!
//! ```
//! use foreman_rt::{park::NoPark, policy::Policy, Supervisor};
//! use std::sync::atomic::{AtomicU64, Ordering};
//!
//! static SUPERVISOR: Supervisor<u64, 64, 2> = Supervisor::new(Policy::DEFAULT, NoPark);
//! static SUM: AtomicU64 = AtomicU64::new(0);
//!
//! std::thread::scope(|s| {
//!     for index in 0..2 {
//!         let mut worker = SUPERVISOR.attach(index).unwrap();
//!         // With NoPark an idle worker spins; a real host parks (a futex, for instance).
//!         s.spawn(move || {
//!             while let Some(job) = worker.next_blocking() {
//!                 SUM.fetch_add(*job.task() * 2, Ordering::Relaxed);
//!                 job.complete().unwrap();
//!             }
//!         });
//!     }
//!     for n in 1..=100 {
//!         SUPERVISOR.submit(n).unwrap();
//!     }
//!     SUPERVISOR.drain();
//! });
//! assert!(SUPERVISOR.is_stopped());
//! assert_eq!(SUM.load(Ordering::Relaxed), 2 * 5050);
//! assert_eq!(SUPERVISOR.snapshot().completed, 100);
//! ```
//!
//! ## Features
//!
//! - `alloc`: [`host::Report`], what a shutdown leaves (it owns a vector). The supervisor
//!   itself never allocates; the vocabulary hosts report in, [`host::Event`], needs no feature.
//! - `std` (implies `alloc`): the thread host, [`host::threads`].
//! - `processes` (implies `std`; Linux): the process host, `host::processes`: workers as child
//!   processes over shared memory, so a task that segfaults, aborts or runs out of memory takes
//!   down its worker process only.
//! - `embassy`: the embassy host, [`host::embassy`]: workers as async tasks on embassy's
//!   executor, woken through wakers, the watchdog fed from `embassy-time`. `no_std`, no alloc.
//! - `cooperative`: the cooperative host, [`host::cooperative`]: one bare-metal main loop
//!   drives every worker, takes tasks inside critical sections (the `critical-section` crate)
//!   and sleeps with the firmware's `WFI` when idle. `no_std`, no alloc.
//! - `defmt`: `defmt::Format` for what a firmware prints: snapshots, states, decisions,
//!   dispositions, errors and events.
//! - `cancellation` (default): [`Supervisor::cancel`] cancels a running task (cooperatively:
//!   [`Context::is_cancelled`]), and `Ticket` (where the target has 64-bit atomics: not yet
//!   on 32-bit microcontrollers) cancels a queued one; a cancelled task ends as
//!   [`Job::cancel`] records it, counted in [`Snapshot::cancelled`].
//! - `deadlines` (default): `Job::set_deadline`, a deadline per run counted from its start,
//!   which the watchdog ([`Supervisor::tick`]) honours with or without the policy's.
//! - `recycling`, `backoff` (default): [`Policy::with_recycling`](policy::Policy::with_recycling)
//!   and `Policy::with_backoff`.
//! - `portable-atomic`: atomics from the `portable-atomic` crate, for targets without
//!   compare-and-swap (thumbv6m). Pick its `critical-section` or
//!   `unsafe-assume-single-core` feature in the firmware.
//!
//! ## Interrupt handlers (bare metal)
//!
//! [`Supervisor::try_submit`] takes no lock and may be called from an interrupt handler. The
//! queue is lock-free in the common case, but a thread that has claimed a queue slot and not
//! yet filled or emptied it makes others wait at that slot; a handler that interrupts the main
//! loop in that window and waits for the same slot would wait forever. So on a single core the
//! main loop takes tasks ([`Worker::try_next`]) inside a critical section (a few dozen
//! instructions), as the cooperative host (feature `cooperative`) does. Never call [`Supervisor::submit`] (it may park) or anything that recovers or
//! restarts workers (they take the restart-log lock) from an interrupt handler.

#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]
// `loom` is a test-only cfg (the model checker): no user sees it, so the docs do not mention it.
#![cfg_attr(docsrs, doc(auto_cfg(hide(loom))))]
#![deny(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod park;
mod phase;
pub mod policy;
pub mod queue;
mod slot;
mod stats;
mod supervisor;
mod sync;
#[cfg(all(feature = "cancellation", any(loom, target_has_atomic = "64")))]
mod ticket;
mod worker;

pub mod host;

/// The crate README's examples, run as doctests so that what it tells users to type works.
#[cfg(all(doctest, feature = "std"))]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;

/// With feature `defmt`, everything a firmware prints implements `defmt::Format` (a missing
/// derive fails to compile here).
#[cfg(all(test, feature = "defmt"))]
mod defmt_format {
    use crate::host::{Cause, Event, Failure};
    use crate::policy::{Delivery, Intensity, Policy, PolicyError, Restart};
    use crate::queue::{PopError, PushError};
    use crate::*;

    fn implements<T: defmt::Format>() {}

    #[test]
    fn what_a_firmware_prints_implements_defmt_format() {
        implements::<Snapshot<2>>();
        implements::<WorkerSnapshot>();
        implements::<SupervisorState>();
        implements::<Shutdown>();
        implements::<WorkerState>();
        implements::<Decision>();
        implements::<Disposition<u8>>();
        implements::<CrashReport<u8>>();
        implements::<SubmitError<u8>>();
        implements::<WorkerError>();
        implements::<ReopenError>();
        implements::<Condemned>();
        #[cfg(feature = "cancellation")]
        implements::<Cancel>();
        #[cfg(feature = "cancellation")]
        implements::<Cancelled>();
        implements::<Run>();
        implements::<PushError<u8>>();
        implements::<PopError>();
        implements::<Policy>();
        implements::<PolicyError>();
        implements::<Restart>();
        implements::<Intensity>();
        implements::<Delivery>();
        #[cfg(feature = "backoff")]
        implements::<crate::policy::Backoff>();
        implements::<Event<u8, u16, u32, Cause<u32>>>();
        implements::<Failure<u8>>();
        #[cfg(feature = "cooperative")]
        implements::<host::cooperative::Step>();
    }
}

pub use phase::{Shutdown, SupervisorState};
pub use slot::{Run, WorkerState};
pub use stats::{Snapshot, WorkerSnapshot};
#[cfg(feature = "recycling")]
pub use supervisor::RecycleError;
pub use supervisor::{
    CrashReport, Decision, Disposition, HandBack, NewlyHung, ReopenError, SubmitError, Supervisor,
    WorkerError,
};
#[cfg(all(feature = "cancellation", any(loom, target_has_atomic = "64")))]
pub use ticket::{Cancel, Cancelled, Ticket};
pub use worker::{Condemned, Context, Job, Next, Worker};
