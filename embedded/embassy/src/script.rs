//! The task script of `foreman-firmware` (`foreman_firmware::script`), run the async way, and
//! the producers' bookkeeping both images share.
//!
//! Tasks await their "peripheral" (a timer) instead of spinning, and two kinds behave as async
//! code does: a *slow* task's first run awaits a peripheral that never answers (a hang only a
//! watchdog, or a timeout, ends), and a *steady* task runs twice the deadline awaiting one tick
//! at a time, with a heartbeat after each.

use core::cell::Cell;

use critical_section::Mutex;
use embassy_time::Timer;
use foreman_firmware::producer::Refused;
use foreman_firmware::script::{kind, Kind, DEADLINE, TASKS};
use foreman_firmware::workload::{self, Outcome, Task};

/// Ticks a task awaits its "peripheral" before computing: long enough that the producers,
/// together, outpace two workers and meet a full queue.
pub const WORK_TICKS: u64 = 3;

/// The SysTick handler submits tasks `0..SPLIT`, the async producer `SPLIT..TASKS`.
pub const SPLIT: u32 = TASKS / 2;

/// One run (`attempt`, 1 for the first) of `task`. `heartbeat` tells a watchdog that a long
/// task is making progress.
pub async fn run(task: Task, attempt: u32, heartbeat: impl Fn()) -> Outcome {
    match kind(task.id) {
        // Only a watchdog or a timeout ends it, by dropping this future.
        Kind::Slow if attempt == 1 => core::future::pending().await,
        Kind::Steady => {
            for _ in 0..2 * DEADLINE {
                Timer::after_ticks(1).await;
                heartbeat();
            }
            Outcome::Done(sum_to(task.id))
        }
        Kind::Slow => {
            Timer::after_ticks(WORK_TICKS).await;
            Outcome::Done(sum_to(task.id))
        }
        Kind::Compute | Kind::Flaky | Kind::Poison | Kind::Invalid => {
            Timer::after_ticks(WORK_TICKS).await;
            workload::run(task, attempt, || {})
        }
    }
}

/// `0 + 1 + … + n`, the long way, as `foreman_firmware::workload` computes it.
fn sum_to(n: u32) -> u32 {
    (0..=n).fold(0, |sum, i| core::hint::black_box(sum + i))
}

/// Where a late task (offered once shutting down) stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Late {
    /// Not offered yet.
    NotYet,
    /// Refused, as it must be.
    Refused,
    /// Accepted: a bug.
    Accepted,
}

/// The interrupt's progress through its half of the script, and its counts.
#[derive(Debug, Clone, Copy)]
pub struct Offers {
    /// The id of the next task to offer; `SPLIT` once all were accepted.
    pub next: u32,
    /// Offers refused because the queue was full (each offered again at the next tick).
    pub full: u32,
    /// Offers refused because the queue was closed.
    pub closed: u32,
    /// Refusals that handed back another task than the one offered.
    pub mismatched: u32,
    /// The late task (id `TASKS`).
    pub late: Late,
}

impl Offers {
    /// Nothing offered yet.
    pub const fn new() -> Self {
        Offers {
            next: 0,
            full: 0,
            closed: 0,
            mismatched: 0,
            late: Late::NotYet,
        }
    }

    /// This tick's offer through `submit`: the next task of the interrupt's half, or, once
    /// `closing`, the late task (once).
    pub fn offer(&mut self, closing: bool, submit: impl FnOnce(Task) -> Result<(), Refused>) {
        let late = self.next >= SPLIT;
        if late && (self.late != Late::NotYet || !closing) {
            return;
        }
        let task = Task {
            id: if late { TASKS } else { self.next },
        };
        let back = match submit(task) {
            Ok(()) if late => {
                self.late = Late::Accepted;
                return;
            }
            Ok(()) => {
                self.next += 1;
                return;
            }
            Err(Refused::Full(back)) => {
                self.full += 1;
                back
            }
            Err(Refused::Closed(back)) => {
                self.closed += 1;
                back
            }
        };
        if back != task {
            self.mismatched += 1;
        }
        if late {
            self.late = Late::Refused;
        }
    }
}

impl Default for Offers {
    fn default() -> Self {
        Self::new()
    }
}

/// The async producer's counts.
#[derive(Debug, Clone, Copy, Default)]
pub struct Submits {
    /// Tasks accepted.
    pub accepted: u32,
    /// Submissions that found the queue full and awaited room.
    pub waited: u32,
    /// Submissions refused as closed (the late one, id `TASKS + 1`).
    pub closed: u32,
    /// Whether the producer is done, its late task included.
    pub done: bool,
}

impl Submits {
    /// Nothing submitted yet.
    pub const fn new() -> Self {
        Submits {
            accepted: 0,
            waited: 0,
            closed: 0,
            done: false,
        }
    }
}

/// Changes a value kept behind a critical section.
pub fn update<T: Copy>(cell: &Mutex<Cell<T>>, change: impl FnOnce(&mut T)) {
    critical_section::with(|cs| {
        let cell = cell.borrow(cs);
        let mut value = cell.get();
        change(&mut value);
        cell.set(value);
    });
}

/// Reads a value kept behind a critical section.
pub fn read<T: Copy>(cell: &Mutex<Cell<T>>) -> T {
    critical_section::with(|cs| cell.borrow(cs).get())
}
