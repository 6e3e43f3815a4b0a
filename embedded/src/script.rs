//! The script every firmware image runs: which tasks there are, how each behaves, and the
//! result each must produce. Fixed, so that every outcome is known in advance.
//!
//! Most tasks compute something and finish. A few misbehave, each in one way a supervisor must
//! handle; their ids are spread through the script so that they meet a queue in every state
//! (empty, filling, full, draining):
//!
//! | kind | ids | behaviour |
//! |---|---|---|
//! | `Compute` | the rest | computes a sum and finishes |
//! | `Flaky` | 3, 19, 35 | faults on its first run, succeeds when run again |
//! | `Poison` | 13, 40 | faults on every run |
//! | `Invalid` | 7, 30 | rejects its input: a final error, not worth a retry |
//! | `Slow` | 5, 27 | runs past the watchdog deadline without a heartbeat, then finishes |
//! | `Steady` | 10, 44 | runs for twice the deadline, with heartbeats, then finishes |
//!
//! This module is plain data and `const fn`s with no dependencies: the QEMU harness
//! (`cargo xtask qemu`, `xtask/src/qemu.rs`) compiles this same file to check each image's
//! report against the script, so the firmware carries no copy of what to expect.

/// Tasks in the script, with ids `0..TASKS`.
pub const TASKS: u32 = 48;

/// The watchdog deadline, in ticks: a task busy this long without a heartbeat is hung.
pub const DEADLINE: u32 = 8;

/// Worker slots of the `supervised` image (its report has one line for each). On one core
/// they take turns; a slot is what a crash takes down and a replacement takes over.
pub const WORKERS: usize = 2;

/// Runs allowed per task in the `supervised` image, the first included (its delivery policy):
/// a poison task is dead-lettered after this many faults.
pub const MAX_ATTEMPTS: u32 = 3;

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

/// The result task `id` produces when it finishes: `0 + 1 + … + id`.
pub const fn expected_result(id: u32) -> u32 {
    id * (id + 1) / 2
}
