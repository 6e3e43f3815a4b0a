//! The ledger: how each task of the script ended, kept by the workers and checked at the end.
//!
//! The embassy firmware checks itself on the chip: it keeps this ledger, checks it against the
//! script and its own counters ([`confirm!`](crate::confirm)), and leaves QEMU with its verdict
//! ([`finish`]). (The firmware of `foreman-firmware` reports what happened instead, and the
//! QEMU harness checks it.)
//!
//! Every task must end exactly once, the way the firmware's design promises for its kind, and
//! every completed task must carry the right result. Anything unexpected along the way is an
//! *anomaly*: printed when it happens, and it fails the run.

use core::fmt;

use cortex_m_semihosting::hprintln;

use foreman_firmware::board;
use foreman_firmware::script::{expected_result, kind, Kind, TASKS};

const _: () = assert!(TASKS <= 64, "the ledger keeps one bit per task in a u64");

/// How a task ended for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Ran to a result.
    Completed,
    /// Ran to an error (final).
    Failed,
    /// Every allowed attempt crashed; the supervisor gave it up.
    DeadLettered,
    /// Crashed, with nobody to run it again (the firmware without a supervisor).
    Crashed,
}

impl End {
    const ALL: [End; 4] = [End::Completed, End::Failed, End::DeadLettered, End::Crashed];

    /// The name used in the firmware's output.
    pub const fn name(self) -> &'static str {
        match self {
            End::Completed => "completed",
            End::Failed => "failed",
            End::DeadLettered => "dead_lettered",
            End::Crashed => "crashed",
        }
    }
}

/// How each task ended, and what went wrong on the way.
pub struct Ledger {
    /// Per [`End`], one bit per task id.
    ends: [u64; 4],
    /// Tasks that ended twice (or with an id outside the script).
    duplicates: u32,
    /// Completed tasks whose result was wrong.
    wrong_results: u32,
    /// Unexpected events, each printed when it happened.
    anomalies: u32,
}

impl Ledger {
    /// An empty ledger.
    pub const fn new() -> Self {
        Ledger {
            ends: [0; 4],
            duplicates: 0,
            wrong_results: 0,
            anomalies: 0,
        }
    }

    /// Records that task `id` ended as `end`.
    pub fn end(&mut self, id: u32, end: End) {
        let seen = self.ends.iter().any(|bits| bits & bit(id) != 0);
        if id >= TASKS || seen {
            self.duplicates += 1;
            self.anomaly(format_args!("task {id} ended again, as {}", end.name()));
            return;
        }
        self.ends[end as usize] |= bit(id);
    }

    /// Records that task `id` completed with `result`.
    pub fn completed(&mut self, id: u32, result: u32) {
        if result != expected_result(id) {
            self.wrong_results += 1;
            self.anomaly(format_args!(
                "task {id} completed with a wrong result {result}"
            ));
        }
        self.end(id, End::Completed);
    }

    /// Prints and counts something that should not have happened.
    #[inline(never)]
    pub fn anomaly(&mut self, what: fmt::Arguments<'_>) {
        self.anomalies += 1;
        hprintln!("anomaly: {}", what);
    }

    /// How many tasks ended as `end`.
    #[inline(never)]
    pub fn count(&self, end: End) -> u32 {
        self.ends[end as usize].count_ones()
    }

    /// Checks every task against `expected` (how a task of each kind must end), prints the
    /// outcome counts and every mismatch, and says whether all is well: every task ended once,
    /// as expected, with the right result, and nothing unexpected happened.
    pub fn check(&self, expected: impl Fn(Kind) -> End) -> bool {
        let mut mismatches = 0u32;
        for id in 0..TASKS {
            let want = expected(kind(id));
            let got = End::ALL
                .into_iter()
                .find(|end| self.ends[*end as usize] & bit(id) != 0);
            if got != Some(want) {
                mismatches += 1;
                let got = got.map_or("unaccounted", End::name);
                hprintln!("task {}: expected {}, got {}", id, want.name(), got);
            }
        }
        hprintln!(
            "outcomes: tasks={} completed={} failed={} dead_lettered={} crashed={} mismatched={} duplicates={} wrong_results={} anomalies={}",
            TASKS,
            self.count(End::Completed),
            self.count(End::Failed),
            self.count(End::DeadLettered),
            self.count(End::Crashed),
            mismatches,
            self.duplicates,
            self.wrong_results,
            self.anomalies
        );
        mismatches == 0 && self.duplicates == 0 && self.wrong_results == 0 && self.anomalies == 0
    }
}

/// Prints `check failed: ...` for each check that failed, and says whether they all passed:
/// `what[i]` says what check `i` checks, `passed[i]` whether it passed. Called through
/// [`confirm!`](crate::confirm), which keeps each description beside its condition.
pub fn confirm<const K: usize>(what: &[&str; K], passed: [bool; K]) -> bool {
    let mut ok = true;
    for (what, passed) in what.iter().zip(passed) {
        if !passed {
            hprintln!("check failed: {}", what);
            ok = false;
        }
    }
    ok
}

/// Runs every check (`"what it checks" => condition`), prints each that failed, and says
/// whether they all passed (see [`confirm`](crate::ledger::confirm)).
///
/// The descriptions form one table in flash, and each condition is one byte on the stack: a
/// check costs its condition and nothing more at the call site.
#[macro_export]
macro_rules! confirm {
    ($($what:literal => $passed:expr),+ $(,)?) => {
        $crate::ledger::confirm(&[$($what),+], [$($passed),+])
    };
}

impl Default for Ledger {
    fn default() -> Self {
        Self::new()
    }
}

/// Task `id`'s bit (none for ids outside the script).
fn bit(id: u32) -> u64 {
    1u64.checked_shl(id).unwrap_or(0)
}

/// Prints the verdict, `check: ok` or `check: FAILED` (the last line of a run), and leaves
/// QEMU with it (exit status 0 only if `ok`).
pub fn finish(ok: bool) -> ! {
    hprintln!("check: {}", if ok { "ok" } else { "FAILED" });
    board::exit(ok)
}
