//! Instructions per operation, a cost that does not move with the machine's load (these
//! virtual machines expose no hardware counters, so valgrind counts) (`cargo xtask bench`,
//! `cargo bench -p foreman-tests --bench instructions -- [--out FILE]`).
//!
//! A binary of its own, holding only the counted workloads: which generic functions the
//! compiler inlines depends on how many callers share them, so the other benchmarks' code
//! would move these counts (in one binary with them, a second user of
//! `Supervisor<_, 1024, 1, _>` added 26 instructions to each of `foreman-1k`'s tasks).
//!
//! valgrind's cachegrind (`--cache-sim=no`: counting only) runs this binary again with
//! `--child SPEC`; the child performs one workload and exits, and the count
//! covers the whole process: start-up, setup, every thread, teardown. Two runs that differ
//! only in how many operations they perform differ only by those operations, so the difference
//! divided by the number of extra operations is the cost of one, setup excluded:
//!
//! - `queue/instructions/push` and `…/pop`: one thread and a fresh queue of capacity 1024
//!   ([`push_then_pop`]), n = 500. Per push: (2n pushes − n pushes) / n; per pop: (2n
//!   pushes and n pops − 2n pushes) / n. Exactly the same on every run.
//! - `dispatch/instructions/noop-1w`: one worker running no-op tasks through the same pools
//!   as the dispatch suite ([`Impl::run_body`]): submit → take → run → complete, per task:
//!   (2n tasks − n tasks) / n, n = 4000 (511 for a queue of 1024). The first task is a gate:
//!   the worker waits in it until every task is submitted, so the submitter and the worker
//!   never run at the same time, and nobody spins or sleeps on an empty or full queue: the
//!   count is that of the path itself. (rayon's tasks are spawned on its worker thread: it
//!   needs no gate.) What varies from run to run is how long an idle thread spins before it
//!   sleeps, at the start and the end (valgrind runs one thread at a time and switches at its
//!   own pace): that only ever adds instructions, so each count is the least of five runs (of
//!   three, one in a few counts of foreman's pool still had a spin of 12k instructions in it:
//!   3 per task at n = 4000, the margin of the dispatch target).
//!
//! Each figure includes the few instructions of the benchmark loop around the operation, the
//! same for every implementation.

use std::hint::black_box;
use std::process::ExitCode;

use bench_stats::advantage;
use concurrent_queue::ConcurrentQueue;
use crossbeam_queue::ArrayQueue;

#[path = "support/pools.rs"]
mod pools;
#[path = "support/queues.rs"]
mod queues;
#[path = "support/report.rs"]
mod report;
#[path = "support/valgrind.rs"]
mod valgrind;

use pools::{Impl, Work, CAPACITY, SMALL_CAPACITY};
use queues::{Bounded, NAMES};
use report::{Record, Records};
use valgrind::{count, least, per_op, GATE};

/// The implementation the targets are about. Names that do not start with it are peers.
const FOREMAN: &str = "foreman";

fn main() -> ExitCode {
    valgrind::main(DISPATCH_REPEATS, run, child)
}

/// Queue operations in the smaller of the two runs (the larger does twice as many).
const QUEUE_OPS: u64 = 500;

/// Dispatched tasks in the smaller of the two runs, where the queue holds twice as many.
const TASKS: u64 = 4000;

/// Runs of each dispatch count, of which the least counts (see the module docs); one in
/// quick mode.
const DISPATCH_REPEATS: usize = 5;

/// In the child: performs the workload `spec` (see [`count`]).
fn child(spec: &str) {
    let number = |text: &str| -> u64 {
        text.parse()
            .unwrap_or_else(|_| panic!("{text:?} in {spec:?} is not a number"))
    };
    match spec.split(':').collect::<Vec<_>>()[..] {
        ["queue", name, pushes, pops] => push_then_pop(name, number(pushes), number(pops)),
        ["dispatch", name, tasks] => dispatch(name, number(tasks)),
        _ => panic!("not a workload: {spec:?}"),
    }
}

/// On one thread: pushes `pushes` values into a fresh queue `name` of capacity 1024, then pops
/// `pops` of them (at most `pushes`, and `pushes` at most 1024). The queue is leaked, not
/// dropped: dropping the values left in it would cost instructions per value left.
fn push_then_pop(name: &str, pushes: u64, pops: u64) {
    const CAPACITY: usize = 1024;
    assert!(pops <= pushes && pushes <= CAPACITY as u64);
    match name {
        "foreman" => fill_and_empty(
            Box::new(foreman_rt::queue::Queue::<u64, CAPACITY>::new()),
            pushes,
            pops,
        ),
        "crossbeam-queue" => fill_and_empty(Box::new(ArrayQueue::new(CAPACITY)), pushes, pops),
        #[allow(deprecated)] // benchmarked on purpose: see `peers/queue.rs`
        "heapless" => fill_and_empty(
            Box::new(heapless::mpmc::Queue::<u64, CAPACITY>::new()),
            pushes,
            pops,
        ),
        "concurrent-queue" => {
            fill_and_empty(Box::new(ConcurrentQueue::bounded(CAPACITY)), pushes, pops)
        }
        other => panic!("no queue called {other}"),
    }
}

fn fill_and_empty(queue: Box<impl Bounded>, pushes: u64, pops: u64) {
    // Hidden from the optimizer: it must not specialise the loops for a fresh, empty queue.
    let queue = black_box(Box::leak(queue));
    for i in 0..pushes {
        if queue.push(black_box(i)).is_err() {
            panic!("the queue is full after {i} pushes");
        }
    }
    let mut sum = 0;
    for _ in 0..pops {
        sum += queue.pop().expect("as many pops as pushes at most");
    }
    black_box(sum);
}

/// `tasks` no-op tasks through `name`'s pool with one worker, after a gate task.
fn dispatch(name: &str, tasks: u64) {
    let imp = Impl::ALL
        .into_iter()
        .find(|imp| imp.name() == name)
        .unwrap_or_else(|| panic!("no implementation called {name}"));
    if imp == Impl::Rayon {
        imp.run(1, tasks + 1, Work::NOOP);
    } else {
        let gated = |task| {
            if task == 0 {
                GATE.wait();
            }
            Work::NOOP.run(task)
        };
        imp.run_body(1, tasks + 1, gated, || GATE.open());
    }
}

/// Records `(name, instructions per operation)` in `group`, and foreman's advantage over each
/// peer (exact: a deterministic count has no interval).
fn record(records: &mut Records, group: &str, counts: &[(&str, f64)]) {
    for &(name, per_op) in counts {
        records.push(group, name, "instructions", per_op, false);
    }
    let ours = counts
        .iter()
        .find(|(name, _)| *name == FOREMAN)
        .expect("foreman is counted")
        .1;
    let peers = counts.iter().filter(|(name, _)| !name.starts_with(FOREMAN));
    for &(name, theirs) in peers {
        let mut ratio = Record::new(
            group,
            FOREMAN,
            "ratio:instructions",
            advantage(ours, theirs, false),
            true,
        );
        ratio.versus = Some(name.to_string());
        records.add(ratio);
    }
}

/// Counts every workload; each dispatch count is the least of `repeats` runs.
fn run(records: &mut Records, repeats: usize) {
    if !valgrind::available("instructions") {
        return;
    }
    let exe = std::env::current_exe().expect("the benchmark's own path");
    let (mut pushes, mut pops) = (Vec::new(), Vec::new());
    for name in NAMES {
        let spec = |pushes: u64, pops: u64| format!("queue:{name}:{pushes}:{pops}");
        let n = QUEUE_OPS;
        let once = count(&exe, &spec(n, 0));
        let twice = count(&exe, &spec(2 * n, 0));
        let popped = count(&exe, &spec(2 * n, n));
        pushes.push((name, per_op(twice, once, n)));
        pops.push((name, per_op(popped, twice, n)));
    }
    record(records, "queue/instructions/push", &pushes);
    record(records, "queue/instructions/pop", &pops);
    let tasks: Vec<(&str, f64)> = Impl::ALL
        .iter()
        .map(|imp| {
            // 2n tasks and the gate must fit in the queue: the worker holds the gate.
            let n = match imp {
                Impl::Foreman | Impl::ForemanBoxed => CAPACITY,
                Impl::ForemanSmallQueue => SMALL_CAPACITY,
                _ => usize::MAX, // unbounded
            };
            let n = TASKS.min((n as u64 - 1) / 2);
            let spec = |tasks: u64| format!("dispatch:{}:{tasks}", imp.name());
            let once = least(&exe, &spec(n), repeats);
            let twice = least(&exe, &spec(2 * n), repeats);
            (imp.name(), per_op(twice, once, n))
        })
        .collect();
    record(records, "dispatch/instructions/noop-1w", &tasks);
}
