//! Instructions per dispatched no-op task with a result handle (`cargo xtask bench`,
//! `cargo bench -p foreman-tests --bench handles -- [--only TEXT] [--out FILE]`):
//! `foreman-handle` in `dispatch/instructions/noop-1w`, beside the sink path's `foreman`
//! there (counted by the `instructions` benchmark).
//!
//! A binary of its own, holding only the handle path (`support/handles.rs`: a pool of
//! `Handles`, every task submitted with `submit_with_handle`, every handle waited for): which
//! generic functions the compiler inlines depends on what else a binary holds (with the sink
//! path's pool in the same binary, the sink path counted 212 instructions per task instead of
//! the 185 it counts alone), so each path is counted alone, as a program that uses only it
//! would run it. The count is taken as the `instructions` benchmark takes its dispatch counts
//! (see there and `support/valgrind.rs`): one worker, a gate task, n = 4000 and 2n tasks, the
//! least of five runs each. It includes the handle's allocation, its resolution by the worker,
//! and the `wait` that takes the outcome on the submitting thread.
//!
//! The handle path's throughput, paired with the sink path's, is the `peers` benchmark's
//! `dispatch/handle/1w`.

use std::process::ExitCode;

#[path = "support/handles.rs"]
mod handles;
// Only the task body and the queue's capacity of the dispatch pools are used here.
#[allow(dead_code)]
#[path = "support/pools.rs"]
mod pools;
#[path = "support/report.rs"]
mod report;
#[path = "support/valgrind.rs"]
mod valgrind;

use handles::foreman_handles;
use pools::{Work, CAPACITY};
use report::Records;
use valgrind::{least, per_op, GATE};

/// The handle path's name in the records.
const HANDLE: &str = "foreman-handle";

/// Dispatched tasks in the smaller of the two counted runs (the larger does twice as many).
const TASKS: u64 = 4000;

/// Runs of each count, of which the least counts; one in quick mode.
const REPEATS: usize = 5;

fn main() -> ExitCode {
    valgrind::main(REPEATS, count, child)
}

/// In the child: `tasks` no-op tasks with a handle each through one worker, after a gate task.
fn child(tasks: &str) {
    let tasks: u64 = tasks
        .parse()
        .unwrap_or_else(|_| panic!("{tasks:?} is not a number of tasks"));
    let gated = |task| {
        if task == 0 {
            GATE.wait();
        }
        Work::NOOP.run(task)
    };
    foreman_handles::<1, _>(tasks + 1, gated, || GATE.open());
}

/// Instructions per dispatched no-op task with a handle.
fn count(records: &mut Records, repeats: usize) {
    if !valgrind::available("instructions (handles)") {
        return;
    }
    let exe = std::env::current_exe().expect("the benchmark's own path");
    // 2n tasks and the gate must fit in the queue: the worker holds the gate.
    let n = TASKS.min((CAPACITY as u64 - 1) / 2);
    let once = least(&exe, &n.to_string(), repeats);
    let twice = least(&exe, &(2 * n).to_string(), repeats);
    records.push(
        "dispatch/instructions/noop-1w",
        HANDLE,
        "instructions",
        per_op(twice, once, n),
        false,
    );
}
