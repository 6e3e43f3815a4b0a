//! The tasks of the script ([`crate::script`]) as code: what one run of a task does.

use cortex_m_semihosting::hprintln;

use crate::board;
use crate::script::{kind, Kind, DEADLINE};

/// A unit of work: here just its id, from which everything else follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Task {
    /// `0..TASKS` for the script's tasks.
    pub id: u32,
}

/// How one run of a task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Finished with this result.
    Done(u32),
    /// The input was wrong: an error that running again would not cure.
    Invalid,
    /// The run faulted (a peripheral timed out, a check failed mid-way): running again may
    /// succeed. Bare-metal tasks cannot unwind a panic, so they report this instead.
    Fault,
}

/// Runs one attempt (1 for the first run) of `task`. `heartbeat` tells the watchdog that a long
/// task is making progress.
pub fn run(task: Task, attempt: u32, heartbeat: impl Fn()) -> Outcome {
    match kind(task.id) {
        Kind::Compute => {}
        Kind::Flaky if attempt == 1 => return Outcome::Fault,
        Kind::Flaky => {}
        Kind::Poison => return Outcome::Fault,
        Kind::Invalid => return Outcome::Invalid,
        Kind::Slow => {
            // The watchdog flags a task whose heartbeat (stamped with the tick before it
            // started, at the latest) is more than DEADLINE ticks old. Once `now` reads
            // `start + DEADLINE + 1`, the handler of that tick has looked at this task.
            let start = board::now();
            while board::now().wrapping_sub(start) <= DEADLINE {
                core::hint::spin_loop();
            }
        }
        Kind::Steady => {
            let start = board::now();
            while board::now().wrapping_sub(start) < 2 * DEADLINE {
                heartbeat();
                core::hint::spin_loop();
            }
        }
    }
    // Every kind that finishes computes its sum, in one place.
    Outcome::Done(sum_to(task.id))
}

/// Reports how `task` ended for good, one line: `task {id}: completed: {result}`, `task {id}:
/// invalid input: failed`, or (where a fault is final: `baseline`, `minimal`) `task {id}: fault:
/// crashed (no retry)`. `supervised` reports its completed and failed tasks through here too,
/// and its crashes on its own (a crash there is retried or dead-lettered).
///
/// Out of line: one copy, whatever the number of call sites.
#[inline(never)]
pub fn report_end(task: Task, outcome: Outcome) {
    match outcome {
        Outcome::Done(result) => hprintln!("task {}: completed: {}", task.id, result),
        Outcome::Invalid => hprintln!("task {}: invalid input: failed", task.id),
        Outcome::Fault => hprintln!("task {}: fault: crashed (no retry)", task.id),
    }
}

/// `0 + 1 + … + n`, the long way: the "work" of a task.
fn sum_to(n: u32) -> u32 {
    let mut sum = 0u32;
    for i in 0..=n {
        // `black_box`: keep the loop; the point is to spend cycles like real work.
        sum = core::hint::black_box(sum.wrapping_add(i));
    }
    sum
}
