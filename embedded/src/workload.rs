//! The tasks both firmware images run: a fixed script, so that every outcome is known in
//! advance and can be checked.
//!
//! Most tasks compute something and finish. A few misbehave, each in one way a supervisor must
//! handle; their ids are spread through the script so that they meet a queue in every state
//! (empty, filling, full, draining):
//!
//! | kind | ids | behaviour |
//! |---|---|---|
//! | [`Kind::Compute`] | the rest | computes a sum and finishes |
//! | [`Kind::Flaky`] | 3, 19, 35 | faults on its first run, succeeds when run again |
//! | [`Kind::Poison`] | 13, 40 | faults on every run |
//! | [`Kind::Invalid`] | 7, 30 | rejects its input: a final error, not worth a retry |
//! | [`Kind::Slow`] | 5, 27 | runs past the watchdog deadline without a heartbeat, then finishes |
//! | [`Kind::Steady`] | 10, 44 | runs for twice the deadline, with heartbeats, then finishes |

use crate::board;

/// Tasks in the script, with ids `0..TASKS`. At most 64 (the ledger keeps one bit per task).
pub const TASKS: u32 = 48;

/// The watchdog deadline, in ticks: a task busy this long without a heartbeat is hung.
pub const DEADLINE: u32 = 8;

/// A unit of work: here just its id, from which everything else follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Task {
    /// `0..TASKS` for the script's tasks.
    pub id: u32,
}

/// How a task behaves; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Computes and finishes.
    Compute,
    /// Faults on its first run only.
    Flaky,
    /// Faults on every run.
    Poison,
    /// Rejects its input.
    Invalid,
    /// Overruns the watchdog deadline without a heartbeat.
    Slow,
    /// Runs long, sending heartbeats.
    Steady,
}

/// The kind of task `id`.
pub const fn kind(id: u32) -> Kind {
    match id {
        3 | 19 | 35 => Kind::Flaky,
        13 | 40 => Kind::Poison,
        7 | 30 => Kind::Invalid,
        5 | 27 => Kind::Slow,
        10 | 44 => Kind::Steady,
        _ => Kind::Compute,
    }
}

/// The ids of the script's tasks of kind `of`, one bit per id (bit `id` set for task `id`).
///
/// A `const fn`: what the script holds is known when the firmware is built, so a check
/// against it costs no code.
pub const fn ids(of: Kind) -> u64 {
    let mut ids = 0u64;
    let mut id = 0;
    while id < TASKS {
        if kind(id) as u8 == of as u8 {
            ids |= 1 << id;
        }
        id += 1;
    }
    ids
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

/// The result a [`Kind::Compute`] task must produce, by formula.
pub const fn expected_result(id: u32) -> u32 {
    id * (id + 1) / 2
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

/// `0 + 1 + … + n`, the long way: the "work" of a task.
fn sum_to(n: u32) -> u32 {
    let mut sum = 0u32;
    for i in 0..=n {
        // `black_box`: keep the loop; the point is to spend cycles like real work.
        sum = core::hint::black_box(sum.wrapping_add(i));
    }
    sum
}
