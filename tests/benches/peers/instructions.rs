//! Instructions suite: instructions per operation, a cost that does not move with the
//! machine's load (these virtual machines expose no hardware counters, so valgrind counts).
//!
//! valgrind's cachegrind (`--cache-sim=no`: counting only) runs this binary again with
//! `--instructions-child SPEC`; the child performs one workload and exits, and the count
//! covers the whole process: start-up, setup, every thread, teardown. Two runs that differ
//! only in how many operations they perform differ only by those operations, so the difference
//! divided by the number of extra operations is the cost of one, setup excluded:
//!
//! - `queue/instructions/push` and `…/pop`: one thread and a fresh queue of capacity 1024
//!   ([`queue::push_then_pop`]), n = 500. Per push: (2n pushes − n pushes) / n; per pop: (2n
//!   pushes and n pops − 2n pushes) / n. Exactly the same on every run.
//! - `dispatch/instructions/noop-1w`: one worker running no-op tasks through the same pools
//!   as the dispatch suite ([`Impl::run_body`]): submit → take → run → complete, per task:
//!   (2n tasks − n tasks) / n, n = 4000 (511 for a queue of 1024). The first task is a gate:
//!   the worker waits in it until every task is submitted, so the submitter and the worker
//!   never run at the same time, and nobody spins or sleeps on an empty or full queue: the
//!   count is that of the path itself. (rayon's tasks are spawned on its worker thread: it
//!   needs no gate.) What varies from run to run is how long an idle thread spins at the end
//!   (valgrind runs one thread at a time and switches at its own pace): a few thousand
//!   instructions in all, under 2 per task.
//!
//! Each figure includes the few instructions of the benchmark loop around the operation, the
//! same for every implementation.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::{Condvar, Mutex};

use bench_stats::advantage;

use crate::pools::{Impl, Work, CAPACITY, SMALL_CAPACITY};
use crate::queue;
use crate::report::{Options, Record, Records};
use crate::stats::{is_peer, FOREMAN};

/// Queue operations in the smaller of the two runs (the larger does twice as many).
const QUEUE_OPS: u64 = 500;

/// Dispatched tasks in the smaller of the two runs, where the queue holds twice as many.
const TASKS: u64 = 4000;

/// Holds the worker in the first task until every task is submitted.
struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
}

static GATE: Gate = Gate {
    open: Mutex::new(false),
    opened: Condvar::new(),
};

impl Gate {
    fn wait(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.opened.wait(open).unwrap();
        }
    }

    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

/// In the child: performs the workload `spec` (see [`count`]).
pub fn child(spec: &str) {
    let number = |text: &str| -> u64 {
        text.parse()
            .unwrap_or_else(|_| panic!("{text:?} in {spec:?} is not a number"))
    };
    match spec.split(':').collect::<Vec<_>>()[..] {
        ["queue", name, pushes, pops] => queue::push_then_pop(name, number(pushes), number(pops)),
        ["dispatch", name, tasks] => dispatch(name, number(tasks)),
        _ => panic!("not a workload: {spec:?}"),
    }
}

/// `tasks` no-op tasks through `name`'s pool with one worker, after a gate task.
fn dispatch(name: &str, tasks: u64) {
    let imp = Impl::ALL
        .into_iter()
        .find(|imp| imp.name() == name)
        .unwrap_or_else(|| panic!("no implementation called {name}"));
    if imp == Impl::Rayon {
        imp.run_body(1, tasks + 1, |task| Work::NOOP.run(task), || {});
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

/// The instructions valgrind counts in this binary performing `spec`, in a child process.
fn count(exe: &Path, spec: &str) -> u64 {
    let file = std::env::temp_dir().join(format!(
        "foreman-instructions-{}-{}.out",
        std::process::id(),
        spec.replace(':', "-")
    ));
    let output = Command::new("valgrind")
        .args(["--tool=cachegrind", "--cache-sim=no", "-q"])
        .arg(format!("--cachegrind-out-file={}", file.display()))
        .arg(exe)
        .args(["--instructions-child", spec])
        .output()
        .expect("valgrind ran before, so it starts");
    assert!(
        output.status.success(),
        "valgrind on {spec} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let text = fs::read_to_string(&file)
        .unwrap_or_else(|err| panic!("no cachegrind output at {}: {err}", file.display()));
    let _ = fs::remove_file(&file);
    text.lines()
        .find_map(|line| line.strip_prefix("summary:"))
        .and_then(|total| total.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `summary:` total in cachegrind's output for {spec}"))
}

/// Instructions per operation: the difference of two counts over the `ops` between them.
fn per_op(larger: u64, smaller: u64, ops: u64) -> f64 {
    (larger as f64 - smaller as f64) / ops as f64
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
    for &(name, theirs) in counts.iter().filter(|(name, _)| is_peer(name)) {
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

pub fn run(_options: &Options, records: &mut Records) {
    let valgrind = Command::new("valgrind").arg("--version").output();
    if !valgrind.is_ok_and(|out| out.status.success()) {
        eprintln!(
            "instructions suite skipped: valgrind not found (`cargo xtask setup` installs it)"
        );
        return;
    }
    let exe = std::env::current_exe().expect("the benchmark's own path");
    let (mut pushes, mut pops) = (Vec::new(), Vec::new());
    for name in queue::NAMES {
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
            let once = count(&exe, &spec(n));
            let twice = count(&exe, &spec(2 * n));
            (imp.name(), per_op(twice, once, n))
        })
        .collect();
    record(records, "dispatch/instructions/noop-1w", &tasks);
}
