//! `cargo xtask bench [--quick] [--out DIR]`: the side-by-side benchmarks.
//!
//! Runs the two benchmark binaries of the `foreman-tests` crate (`peers`: queue, dispatch,
//! latency, the Python seed, peak RSS; `memory`: allocations per task, `size_of`), merges
//! their records into `DIR/bench.json` — a list of
//! `{"group", "impl", "metric", "value", "higher_is_better"}` — and renders `DIR/bench.md`:
//! the machine, the targets with their ratios, and one table per suite.
//!
//! Every target is a ratio between implementations measured in the same run: the machines
//! are shared and noisy, so absolute numbers say little, and the binaries interleave the
//! implementations so that load which comes and goes hits them alike.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::setup::{self, Need};
use crate::util::{cargo, exec, step, target_dir};

/// Options of `cargo xtask bench`.
#[derive(clap::Args)]
pub struct Args {
    /// Fewer tasks and repetitions: finishes in under two minutes (once built).
    #[arg(long)]
    pub quick: bool,
    /// Where to write bench.json and bench.md [default: target/bench].
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// One measured number, as the benchmark binaries write it: the JSON contract, whose other
/// side is `Record` in `tests/benches/support/report.rs` (change both together).
#[derive(Serialize, Deserialize)]
pub struct Record {
    pub group: String,
    #[serde(rename = "impl")]
    pub implementation: String,
    pub metric: String,
    pub value: f64,
    pub higher_is_better: bool,
}

/// The benchmark binaries, in the order they run.
const BINARIES: &[&str] = &["peers", "memory"];

/// `cargo xtask bench`: installs what is missing (Python, for the seed), then measures.
pub fn run(args: Args) -> Result<()> {
    setup::ensure(Need {
        python: true,
        ..Need::default()
    })?;
    measure(args)
}

/// Runs the benchmark binaries and writes `bench.json` and `bench.md` (without setup).
pub fn measure(args: Args) -> Result<()> {
    let out = match args.out {
        Some(dir) if dir.is_relative() => std::env::current_dir()?.join(dir),
        Some(dir) => dir,
        None => target_dir().join("bench"),
    };
    let raw = out.join("raw");
    fs::create_dir_all(&raw).with_context(|| format!("cannot create {}", raw.display()))?;
    let started = Instant::now();
    let load_before = load_average();
    let mut records = Vec::new();
    for binary in BINARIES {
        step(format!("bench: {binary}"));
        let file = raw.join(format!("{binary}.json"));
        let _ = fs::remove_file(&file);
        let mut cmd = cargo();
        cmd.args(["bench", "-p", "foreman-tests", "--bench", binary, "--"]);
        if args.quick {
            cmd.arg("--quick");
        }
        cmd.arg("--out").arg(&file);
        exec(&mut cmd)?;
        let text =
            fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
        let mut some: Vec<Record> = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a list of records", file.display()))?;
        records.append(&mut some);
    }
    let run = Run {
        quick: args.quick,
        seconds: started.elapsed().as_secs_f64(),
        machine: Machine::describe(),
        load_before,
        load_after: load_average(),
    };
    let json = out.join("bench.json");
    fs::write(&json, serde_json::to_string_pretty(&records)? + "\n")?;
    let markdown = render(&records, &run);
    let md = out.join("bench.md");
    fs::write(&md, &markdown)?;
    step("bench: results");
    println!("{markdown}");
    println!("wrote {} and {}", json.display(), md.display());
    Ok(())
}

/// Where and how the numbers were taken.
struct Run {
    quick: bool,
    seconds: f64,
    machine: Machine,
    load_before: Option<String>,
    load_after: Option<String>,
}

/// The machine, as far as it tells.
struct Machine {
    cpu: String,
    cpus: usize,
    memory: String,
    os: String,
    rustc: String,
    python: String,
}

impl Machine {
    fn describe() -> Machine {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|line| line.strip_prefix("model name"))
            .and_then(|rest| rest.split_once(':'))
            .map(|(_, name)| name.trim().to_string())
            .unwrap_or_else(|| std::env::consts::ARCH.to_string());
        let memory = fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|info| {
                let kib: f64 = info
                    .lines()
                    .find_map(|line| line.strip_prefix("MemTotal:"))?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()?;
                Some(format!("{:.1} GiB", kib / (1024.0 * 1024.0)))
            })
            .unwrap_or_else(|| "unknown".into());
        let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|release| format!(" {}", release.trim()))
            .unwrap_or_default();
        Machine {
            cpu,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory,
            os: format!("{}{kernel}", std::env::consts::OS),
            rustc: version_of("rustc", "-V"),
            python: version_of("python3", "--version"),
        }
    }
}

/// The first line a program prints about its version, or "not found".
fn version_of(program: &str, flag: &str) -> String {
    Command::new(program)
        .arg(flag)
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| {
            let text = if out.stdout.is_empty() {
                out.stderr
            } else {
                out.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .unwrap_or_else(|| "not found".into())
}

/// The 1-, 5- and 15-minute load averages.
fn load_average() -> Option<String> {
    let text = fs::read_to_string("/proc/loadavg").ok()?;
    Some(
        text.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// What a target compares foreman with.
#[derive(Clone, Copy)]
enum Reference {
    /// One named implementation.
    Impl(&'static str),
    /// The best implementation that is not foreman's.
    BestPeer,
}

/// A performance target from the issue: foreman's ratio over `reference` in `groups`.
struct Target {
    what: &'static str,
    groups: &'static [&'static str],
    metric: &'static str,
    reference: Reference,
    at_least: f64,
}

const TARGETS: &[Target] = &[
    Target {
        what: "queue ≥ 1.2× crossbeam ArrayQueue at 1P1C",
        groups: &["queue/1p1c/cap64", "queue/1p1c/cap1024"],
        metric: "mops_per_s",
        reference: Reference::Impl("crossbeam-queue"),
        at_least: 1.2,
    },
    Target {
        what: "queue ≥ 1.0× crossbeam ArrayQueue at 2P2C",
        groups: &["queue/2p2c/cap64", "queue/2p2c/cap1024"],
        metric: "mops_per_s",
        reference: Reference::Impl("crossbeam-queue"),
        at_least: 1.0,
    },
    Target {
        what: "dispatch ≥ 1.0× the fastest peer, no-op tasks",
        groups: &["dispatch/noop/1w", "dispatch/noop/2w", "dispatch/noop/4w"],
        metric: "tasks_per_s",
        reference: Reference::BestPeer,
        at_least: 1.0,
    },
    Target {
        what: "dispatch ≥ 1.0× the fastest peer, small tasks",
        groups: &[
            "dispatch/small/1w",
            "dispatch/small/2w",
            "dispatch/small/4w",
        ],
        metric: "tasks_per_s",
        reference: Reference::BestPeer,
        at_least: 1.0,
    },
    Target {
        what: "≥ 300× the Python seed",
        groups: &["seed/20k-tasks/2w"],
        metric: "tasks_per_s",
        reference: Reference::Impl("python-multiprocessing"),
        at_least: 300.0,
    },
    Target {
        what: "p99 wake-up latency no worse than the best peer",
        groups: &["latency/submit-start/2w", "latency/submit-complete/2w"],
        metric: "p99_ns",
        reference: Reference::BestPeer,
        at_least: 1.0,
    },
];

/// The implementation the targets are about.
const FOREMAN: &str = "foreman";

fn is_peer(implementation: &str) -> bool {
    !implementation.starts_with(FOREMAN)
}

/// How many times better `ours` is than `theirs` (above 1: better), by the metric's sense.
fn advantage(ours: f64, theirs: f64, higher_is_better: bool) -> f64 {
    if higher_is_better {
        ours / theirs
    } else {
        theirs / ours
    }
}

/// The records of one group and metric, in the order they came.
fn cell<'r>(records: &'r [Record], group: &str, metric: &str) -> Vec<&'r Record> {
    records
        .iter()
        .filter(|r| r.group == group && r.metric == metric)
        .collect()
}

/// The best peer of `foreman` among `row`, by the metric's sense.
fn best_peer<'r>(row: &[&'r Record]) -> Option<&'r Record> {
    row.iter()
        .copied()
        .filter(|r| is_peer(&r.implementation))
        .reduce(|best, r| {
            let better = if r.higher_is_better {
                r.value > best.value
            } else {
                r.value < best.value
            };
            if better {
                r
            } else {
                best
            }
        })
}

/// One evaluated target row: group, foreman's value, the reference, the ratio, met.
struct Verdict<'r> {
    group: &'static str,
    foreman: &'r Record,
    reference: &'r Record,
    ratio: f64,
    met: bool,
}

fn evaluate<'r>(records: &'r [Record], target: &Target) -> Vec<Verdict<'r>> {
    target
        .groups
        .iter()
        .filter_map(|&group| {
            let row = cell(records, group, target.metric);
            let foreman = row.iter().copied().find(|r| r.implementation == FOREMAN)?;
            let reference = match target.reference {
                Reference::Impl(name) => row.iter().copied().find(|r| r.implementation == name),
                Reference::BestPeer => best_peer(&row),
            }?;
            let ratio = advantage(foreman.value, reference.value, foreman.higher_is_better);
            Some(Verdict {
                group,
                foreman,
                reference,
                ratio,
                met: ratio >= target.at_least,
            })
        })
        .collect()
}

/// A value for a table, in the metric's unit.
fn format_value(metric: &str, value: f64) -> String {
    let scaled = |v: f64, units: &[(f64, &str)]| {
        let (scale, unit) = units
            .iter()
            .copied()
            .find(|(scale, _)| v.abs() >= *scale)
            .unwrap_or(*units.last().expect("units"));
        format!("{:.3}", v / scale)
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
            + unit
    };
    match metric {
        "tasks_per_s" => scaled(value, &[(1e6, " M/s"), (1e3, " k/s"), (1.0, " /s")]),
        "mops_per_s" => format!("{value:.1}"),
        m if m.ends_with("_ns") => scaled(value, &[(1e6, " ms"), (1e3, " µs"), (1.0, " ns")]),
        "peak_rss_kib" => scaled(value / 1024.0, &[(1.0, " MiB")]),
        "bytes" => format!("{value:.0} B"),
        // Exactly 0 shows as 0; anything else keeps a significant digit.
        "allocs_per_task" if value == 0.0 || value.abs() >= 1e-3 => scaled(value, &[(1.0, "")]),
        "allocs_per_task" => format!("{value:.1e}"),
        "spread_pct" => format!("{value:.0}%"),
        _ => format!("{value:.3}"),
    }
}

/// Headings and notes of each suite, by group prefix.
const SUITES: &[(&str, &str, &str)] = &[
    (
        "queue/",
        "Queue",
        "Million operations per second (one push or one pop is one operation), median over \
         rounds (± interquartile spread). P producers and P consumers; 2-core machine, so \
         4P4C runs 8 threads on 2 cores.",
    ),
    (
        "dispatch/",
        "Dispatch",
        "Tasks per second from the first submission to the last task's end, median over \
         rounds (± interquartile spread). `foreman` (a 16k-task queue), `foreman-1k` (a \
         1024-task queue), `crossbeam-channel` and `std-mpsc` (unbounded) run data tasks (a \
         `u64` and one shared handler); `foreman-boxed` (16k), `rayon` and `threadpool` run \
         boxed closures. Small task: xorshift rounds calibrated to about 1 µs on one thread \
         (`dispatch/small/task`).",
    ),
    (
        "latency/",
        "Latency",
        "From `submit` to the task's first statement (start) and to its outcome being \
         delivered (complete), with 2 idle (parked) workers; one no-op task at a time.",
    ),
    (
        "seed/",
        "The Python seed",
        "`tests/seed/seed.py` (multiprocessing, 2 worker processes) and the same design on \
         foreman (2 worker threads, a 1024-task queue, results through an `mpsc` result \
         queue), 20k tasks; tasks per second from before the workers start to the results \
         collected and the workers joined, median. `foreman-results-in-place` is the same \
         twin with each worker checking and counting its own results instead of sending \
         them to the main thread: the difference is the cost of the result queue. \
         `foreman-processes` is the like-for-like twin: foreman's process host with 2 worker \
         processes, as the Python has, its clock also counting their start and reaping.",
    ),
    (
        "processes/",
        "Process workers against thread workers",
        "The same no-op tasks through foreman's thread host (`foreman`) and its process host \
         (`foreman-processes`, Linux), 1 and 2 workers, a 1024-task queue; tasks per second \
         from the first submission until the pool drained (the workers' start not counted), \
         median over rounds (± interquartile spread).",
    ),
    (
        "memory/",
        "Memory",
        "Heap allocations per task (`foreman-core`: the core's own path with a counting \
         allocator; the others: the dispatch benchmark, no-op tasks, 2 workers), \
         `size_of` the supervisor, and peak RSS of one dispatch run (1M no-op tasks, \
         2 workers; 200k with `--quick`) in a fresh process.",
    ),
];

fn render(records: &[Record], run: &Run) -> String {
    let mut md = String::new();
    let m = &run.machine;
    let mode = if run.quick {
        "quick (`cargo xtask bench --quick`)"
    } else {
        "full (`cargo xtask bench`)"
    };
    let _ = writeln!(md, "# foreman benchmarks\n");
    let _ = writeln!(
        md,
        "- Machine: {} ({} logical CPUs), {}, {}; {}; {}.",
        m.cpu, m.cpus, m.memory, m.os, m.rustc, m.python
    );
    let _ = writeln!(
        md,
        "- Load average (1, 5, 15 min) before: {}; after: {}. The machine may be shared: \
         compare ratios within one run, not absolute numbers across runs.",
        run.load_before.as_deref().unwrap_or("unknown"),
        run.load_after.as_deref().unwrap_or("unknown"),
    );
    let _ = writeln!(md, "- Mode: {mode}; took {:.0} s.\n", run.seconds);

    let _ = writeln!(md, "## Targets\n");
    let _ = writeln!(
        md,
        "| target | scenario | foreman | reference | ratio | required | met |\n|---|---|---|---|---|---|---|"
    );
    for target in TARGETS {
        let verdicts = evaluate(records, target);
        if verdicts.is_empty() {
            let _ = writeln!(md, "| {} | not measured | | | | | |", target.what);
        }
        for v in verdicts {
            let _ = writeln!(
                md,
                "| {} | `{}` {} | {} | {}: {} | {:.2}× | ≥ {}× | {} |",
                target.what,
                v.group,
                target.metric,
                format_value(target.metric, v.foreman.value),
                v.reference.implementation,
                format_value(target.metric, v.reference.value),
                v.ratio,
                target.at_least,
                if v.met { "yes" } else { "**no**" },
            );
        }
    }

    for (prefix, title, note) in SUITES {
        let suite: Vec<&Record> = records
            .iter()
            .filter(|r| r.group.starts_with(prefix))
            .collect();
        if suite.is_empty() {
            continue;
        }
        md.push('\n');
        md.push_str(&table(title, note, &suite));
    }
    md
}

/// One suite's table: a row per group and metric, a column per implementation, and
/// foreman's advantage over the best peer.
fn table(title: &str, note: &str, suite: &[&Record]) -> String {
    let mut impls: Vec<&str> = Vec::new();
    let mut rows: Vec<(&str, &str)> = Vec::new();
    let mut values: BTreeMap<(&str, &str, &str), &Record> = BTreeMap::new();
    for r in suite {
        if !impls.contains(&r.implementation.as_str()) {
            impls.push(&r.implementation);
        }
        if r.metric != "spread_pct" && !rows.contains(&(r.group.as_str(), r.metric.as_str())) {
            rows.push((&r.group, &r.metric));
        }
        values.insert((&r.group, &r.implementation, &r.metric), r);
    }
    let mut md = format!("## {title}\n\n{note}\n\n| scenario | metric |");
    for i in &impls {
        let _ = write!(md, " {i} |");
    }
    md.push_str(" foreman vs best peer |\n|---|---|");
    md.push_str(&"---|".repeat(impls.len() + 1));
    md.push('\n');
    for (group, metric) in rows {
        let _ = write!(md, "| `{group}` | {metric} |");
        let mut row = Vec::new();
        for i in &impls {
            match values.get(&(group, *i, metric)) {
                Some(r) => {
                    row.push(*r);
                    let _ = write!(md, " {}", format_value(metric, r.value));
                    if let Some(spread) = values.get(&(group, *i, "spread_pct")) {
                        let _ = write!(md, " ±{}", format_value("spread_pct", spread.value));
                    }
                    md.push_str(" |");
                }
                None => md.push_str(" |"),
            }
        }
        let foreman = row.iter().find(|r| r.implementation == FOREMAN);
        let ratio = match (foreman, best_peer(&row)) {
            (Some(ours), Some(best)) if ours.value > 0.0 && best.value > 0.0 => format!(
                "{:.2}× ({})",
                advantage(ours.value, best.value, ours.higher_is_better),
                best.implementation
            ),
            _ => String::new(),
        };
        let _ = writeln!(md, " {ratio} |");
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(group: &str, implementation: &str, metric: &str, value: f64, higher: bool) -> Record {
        Record {
            group: group.into(),
            implementation: implementation.into(),
            metric: metric.into(),
            value,
            higher_is_better: higher,
        }
    }

    #[test]
    fn targets_compare_foreman_with_the_named_or_best_peer() {
        let records = [
            record("queue/1p1c/cap64", "foreman", "mops_per_s", 60.0, true),
            record(
                "queue/1p1c/cap64",
                "crossbeam-queue",
                "mops_per_s",
                40.0,
                true,
            ),
            record("queue/1p1c/cap64", "heapless", "mops_per_s", 80.0, true),
            record("latency/submit-start/2w", "foreman", "p99_ns", 200.0, false),
            record("latency/submit-start/2w", "rayon", "p99_ns", 100.0, false),
            record(
                "latency/submit-start/2w",
                "threadpool",
                "p99_ns",
                300.0,
                false,
            ),
        ];
        let queue = evaluate(&records, &TARGETS[0]);
        assert_eq!(queue.len(), 1, "cap1024 is not measured");
        assert_eq!(queue[0].reference.implementation, "crossbeam-queue");
        assert!((queue[0].ratio - 1.5).abs() < 1e-9 && queue[0].met);
        let latency = evaluate(&records, &TARGETS[5]);
        assert_eq!(latency[0].reference.implementation, "rayon");
        assert!((latency[0].ratio - 0.5).abs() < 1e-9 && !latency[0].met);
    }

    #[test]
    fn values_are_shown_in_their_unit() {
        assert_eq!(format_value("tasks_per_s", 12_345_678.0), "12.346 M/s");
        assert_eq!(format_value("p99_ns", 6570.0), "6.57 µs");
        assert_eq!(format_value("p50_ns", 850.0), "850 ns");
        assert_eq!(format_value("peak_rss_kib", 3072.0), "3 MiB");
        assert_eq!(format_value("allocs_per_task", 0.0), "0");
        assert_eq!(format_value("allocs_per_task", 1.032), "1.032");
        assert_eq!(format_value("allocs_per_task", 0.00002), "2.0e-5");
    }

    #[test]
    fn tables_have_a_column_per_implementation_and_the_ratio() {
        let records = [
            record("dispatch/noop/1w", "foreman", "tasks_per_s", 2e7, true),
            record("dispatch/noop/1w", "foreman", "spread_pct", 3.0, false),
            record("dispatch/noop/1w", "rayon", "tasks_per_s", 1e7, true),
        ];
        let suite: Vec<&Record> = records.iter().collect();
        let md = table("Dispatch", "note", &suite);
        assert!(md.contains("| scenario | metric | foreman | rayon | foreman vs best peer |"));
        assert!(md.contains(
            "| `dispatch/noop/1w` | tasks_per_s | 20 M/s ±3% | 10 M/s | 2.00× (rayon) |"
        ));
    }
}
