//! The interrupt side: the SysTick handler offers the script's tasks, one per tick.
//!
//! A task that is refused comes back and is offered again at the next tick: the producer moves
//! on only when a task is accepted, so nothing is dropped. Refusals are counted. Once every
//! task is accepted and the main loop has begun to shut down, the producer offers one *late*
//! task (id [`TASKS`]), as an interrupt firing during shutdown would, and expects it refused.
//!
//! The handler is the only writer of the producer's words and the main loop only reads them,
//! so plain loads and stores suffice (thumbv6m has no read-modify-write atomics).

use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m_semihosting::hprintln;

use crate::board;
use crate::script::TASKS;
use crate::workload::Task;

/// Why a submission was refused; the task comes back inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// No room: offer it again later.
    Full(Task),
    /// Shutting down: it will never be accepted.
    Closed(Task),
}

/// Where the late task stands.
const LATE_NOT_YET: u32 = 0;
const LATE_WANTED: u32 = 1;
const LATE_REFUSED: u32 = 2;
const LATE_ACCEPTED: u32 = 3;

/// The handler's progress through the script, and its counts.
pub struct Producer {
    /// The id of the next task to offer.
    next: AtomicU32,
    /// Offers refused because the queue was full.
    full: AtomicU32,
    /// Offers refused because the queue was closed.
    closed: AtomicU32,
    /// Refusals that handed back another task than the one offered.
    mismatched: AtomicU32,
    /// The late task: `LATE_*`.
    late: AtomicU32,
}

/// What the producer did, read once it is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// Tasks accepted.
    pub accepted: u32,
    /// Offers refused as full (each such task was offered again).
    pub full: u32,
    /// Offers refused as closed.
    pub closed: u32,
    /// Refusals that handed back another task than the one offered.
    pub mismatched: u32,
    /// Whether the late task was accepted (it must not be).
    pub late_accepted: bool,
}

impl Report {
    /// Refusals of any kind: what the queue's owner must have counted as rejected.
    pub fn refused(&self) -> u32 {
        self.full + self.closed
    }

    /// Prints the report as the `isr:` line, with the ticks so far.
    pub fn print(&self) {
        hprintln!(
            "isr: ticks={} accepted={} full={} closed={} mismatched={} late_accepted={}",
            board::now(),
            self.accepted,
            self.full,
            self.closed,
            self.mismatched,
            self.late_accepted
        );
    }
}

impl Producer {
    /// A producer at the start of the script.
    pub const fn new() -> Self {
        Producer {
            next: AtomicU32::new(0),
            full: AtomicU32::new(0),
            closed: AtomicU32::new(0),
            mismatched: AtomicU32::new(0),
            late: AtomicU32::new(LATE_NOT_YET),
        }
    }

    /// Offers this tick's task through `submit`. Call from the SysTick handler only.
    pub fn on_tick(&self, submit: impl FnOnce(Task) -> Result<(), Refused>) {
        // Relaxed loads and stores of words only this handler writes: see the module docs.
        let next = self.next.load(Ordering::Relaxed);
        if next < TASKS {
            let task = Task { id: next };
            match submit(task) {
                // Release: the main loop's Acquire in `all_accepted` sees the task queued.
                Ok(()) => self.next.store(next + 1, Ordering::Release),
                Err(refused) => self.refused(task, refused),
            }
            return;
        }
        // Relaxed: a flag with nothing to publish (see `want_late`).
        if self.late.load(Ordering::Relaxed) != LATE_WANTED {
            return;
        }
        let task = Task { id: TASKS };
        let state = match submit(task) {
            Ok(()) => LATE_ACCEPTED,
            Err(refused) => {
                self.refused(task, refused);
                LATE_REFUSED
            }
        };
        // Release: the counts above are visible to whoever sees the late task settled.
        self.late.store(state, Ordering::Release);
    }

    fn refused(&self, offered: Task, refused: Refused) {
        let (counter, back) = match refused {
            Refused::Full(back) => (&self.full, back),
            Refused::Closed(back) => (&self.closed, back),
        };
        bump(counter);
        if back != offered {
            bump(&self.mismatched);
        }
    }

    /// Whether every task of the script has been accepted.
    pub fn all_accepted(&self) -> bool {
        // Acquire: pairs with the Release store in `on_tick`.
        self.next.load(Ordering::Acquire) >= TASKS
    }

    /// Asks the handler to offer the late task (once every task is accepted).
    pub fn want_late(&self) {
        // Relaxed: a flag with nothing to publish; the handler acts on it at its next tick.
        // (Only the main loop writes it while it is LATE_NOT_YET.)
        self.late.store(LATE_WANTED, Ordering::Relaxed);
    }

    /// Whether the late task has been offered.
    pub fn late_settled(&self) -> bool {
        // Acquire: pairs with the Release store in `on_tick`.
        matches!(
            self.late.load(Ordering::Acquire),
            LATE_REFUSED | LATE_ACCEPTED
        )
    }

    /// Sleeps until the late task has been offered (after [`Producer::want_late`]).
    pub fn wait_late(&self) {
        while !self.late_settled() {
            board::sleep_unless(|| self.late_settled());
        }
    }

    /// What the producer did so far.
    pub fn report(&self) -> Report {
        // Acquire: as in `late_settled`, so the counts include the late task's refusal.
        let late = self.late.load(Ordering::Acquire);
        // Relaxed: the handler wrote these in earlier ticks or before the store just acquired.
        Report {
            accepted: self.next.load(Ordering::Relaxed).min(TASKS),
            full: self.full.load(Ordering::Relaxed),
            closed: self.closed.load(Ordering::Relaxed),
            mismatched: self.mismatched.load(Ordering::Relaxed),
            late_accepted: late == LATE_ACCEPTED,
        }
    }
}

impl Default for Producer {
    fn default() -> Self {
        Self::new()
    }
}

/// Adds one to a word that only the caller writes.
fn bump(counter: &AtomicU32) {
    // Relaxed: single writer (the handler); readers only need the value eventually.
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
}
