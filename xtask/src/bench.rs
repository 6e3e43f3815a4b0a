//! `cargo xtask bench [--quick] [--only TEXT] [--out DIR] [--publish] [--from FILE]`: the
//! side-by-side benchmarks, and the verdicts they support.
//!
//! Runs the four benchmark binaries of the `foreman-tests` crate (`instructions`: per
//! operation, under valgrind; `handles`: per task with a result handle, under valgrind;
//! `peers`: queue, dispatch, latency, the Python seed, process workers, peak RSS; `memory`:
//! allocations per task, `size_of`) and the browser suite (the
//! demo's workload against wasm-bindgen-rayon in Chromium and Firefox, see [`browser`]),
//! judges every target, and writes `DIR/bench.json` — the run and a list of
//! records (see [`Record`]) — and `DIR/bench.md`: the summary (the README's benchmark block,
//! verbatim) and one table per suite. `--publish` also writes `docs/bench.{json,md}` and
//! replaces the README's block, so the README states what the latest full run supports and
//! nothing else.
//!
//! # How a verdict is reached
//!
//! The machines are shared and noisy, so a throughput target is judged on *paired* rounds:
//! every round runs each implementation back to back, the ratio is taken within the round,
//! and the median ratio over the rounds comes with a bootstrap 95% interval; rounds go on
//! until the intervals are within ±10% or a time cap (the `bench-stats` crate). A target is
//! **met** only if the interval's lower bound clears it, **missed** only if its upper bound is
//! below it, and **cannot tell** otherwise. Instruction counts (valgrind) are deterministic:
//! their ratios are exact, met or missed. Scenarios with more threads at once than the machine
//! has CPUs measure the scheduler as much as the code: their verdicts are information.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use bench_stats::{Estimate, Verdict};
use serde::{Deserialize, Serialize};

use crate::setup::{self, Need};
use crate::toolchain::Nightly;
use crate::util::{cargo, exec, root, step, target_dir};

mod browser;

/// Options of `cargo xtask bench`.
#[derive(clap::Args, Default)]
pub struct Args {
    /// Few rounds and small batches: finishes in about two minutes (once built); its
    /// intervals are too wide to decide anything.
    #[arg(long)]
    pub quick: bool,
    /// Run only the suites whose name contains this text (instructions, queue, dispatch,
    /// latency, seed, processes, rss, allocs, size-of, browser).
    #[arg(long)]
    pub only: Option<String>,
    /// Where to write bench.json and bench.md [default: target/bench].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also write docs/bench.json and docs/bench.md and regenerate the README's benchmark
    /// block (a full run of every suite only).
    #[arg(long)]
    pub publish: bool,
    /// Judge and render the records of an earlier run (its bench.json) instead of measuring.
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,
}

/// One number, as the benchmark binaries write it: the JSON contract, whose other side is
/// `Record` in `tests/benches/support/report.rs` (change both together). xtask adds `target`
/// and `verdict` to the ratios a target applies to.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Record {
    pub group: String,
    #[serde(rename = "impl")]
    pub implementation: String,
    /// What was measured, or `ratio:<metric>`: foreman's advantage over `versus` in that
    /// metric (above 1: foreman is better), the median of per-round ratios.
    pub metric: String,
    pub value: f64,
    pub higher_is_better: bool,
    /// The 95% bootstrap interval of `value` (repeated measurements only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<[f64; 2]>,
    /// How many paired rounds (repeated measurements only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rounds: Option<usize>,
    /// Why the rounds stopped: `narrow`, `round cap` or `time cap`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<String>,
    /// For a ratio: what foreman is compared with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versus: Option<String>,
    /// Threads running at once in the scenario.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
    /// The target this ratio is judged against (added by xtask).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `met`, `parity`, `missed` or `cannot tell` (added by xtask).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
}

impl Record {
    /// The value with its interval: exact when it has none (a deterministic count).
    fn estimate(&self) -> Estimate {
        match self.interval {
            Some([low, high]) => Estimate {
                median: self.value,
                low,
                high,
            },
            None => Estimate::exact(self.value),
        }
    }
}

/// `bench.json`: how the numbers were taken, and the numbers.
#[derive(Serialize, Deserialize)]
struct Report {
    run: Run,
    records: Vec<Record>,
}

/// Where and how the numbers were taken.
#[derive(Serialize, Deserialize, Clone)]
struct Run {
    /// The UTC date the run ended, `YYYY-MM-DD`.
    date: String,
    quick: bool,
    /// Every suite ran (no `--only`).
    complete: bool,
    seconds: f64,
    machine: Machine,
    load: Load,
}

/// The machine, as far as it tells.
#[derive(Serialize, Deserialize, Clone)]
struct Machine {
    cpu: String,
    cpus: usize,
    memory: String,
    os: String,
    rustc: String,
    python: String,
    valgrind: String,
}

/// What else the machine was doing.
#[derive(Serialize, Deserialize, Clone, Default)]
struct Load {
    /// The 1-, 5- and 15-minute load averages before and after (they count the benchmarks'
    /// own threads too).
    average_before: Option<String>,
    average_after: Option<String>,
    /// CPUs' worth of time that other processes used, on average over the run: the machine's
    /// busy time less the benchmarks' own.
    other_cpus: Option<f64>,
    /// CPUs' worth of time the hypervisor gave to other machines (steal), on average.
    steal_cpus: Option<f64>,
}

/// The benchmark binaries, in the order they run.
const BINARIES: &[&str] = &["instructions", "handles", "peers", "memory"];
/// The suites of the benchmark binaries (`--only` selects among them and `browser`).
const BINARY_SUITES: &[&str] = &[
    "instructions",
    "queue",
    "dispatch",
    "latency",
    "seed",
    "processes",
    "rss",
    "allocs",
    "size-of",
];

/// Whether `--only` selects a suite called `name`.
fn selected(only: Option<&str>, name: &str) -> bool {
    only.is_none_or(|only| name.contains(only))
}

/// `cargo xtask bench`: installs what is missing (Python for the seed, valgrind for the
/// instruction counts, the browsers and the wasm tools for the browser suite), then measures.
pub fn run(args: Args) -> Result<()> {
    if args.from.is_none() {
        let browsers = selected(args.only.as_deref(), browser::SUITE);
        let need = Need {
            python: true,
            valgrind: true,
            wasm_tools: browsers,
            browsers,
            npm: browsers,
            ..Need::default()
        };
        if browsers {
            setup::ensure_nightly(need)?;
        } else {
            setup::ensure(need)?;
        }
    }
    measure(args)
}

/// Runs the benchmark binaries (or reads `--from`), judges, and writes the report (without
/// setup).
pub fn measure(args: Args) -> Result<()> {
    let out = match &args.out {
        Some(dir) if dir.is_relative() => std::env::current_dir()?.join(dir),
        Some(dir) => dir.clone(),
        None => target_dir().join("bench"),
    };
    fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut report = match &args.from {
        Some(file) => {
            let text = fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("{} is not a bench.json", file.display()))?
        }
        None => take_measurements(&args, &out)?,
    };
    if args.publish && (report.run.quick || !report.run.complete) {
        bail!("only a full run of every suite is published (no --quick, no --only)");
    }
    judge(&mut report.records);
    let json = serde_json::to_string_pretty(&report)? + "\n";
    let markdown = render(&report);
    let mut written = vec![out.join("bench.json"), out.join("bench.md")];
    fs::write(&written[0], &json)?;
    fs::write(&written[1], &markdown)?;
    if args.publish {
        let docs = root().join("docs");
        fs::write(docs.join("bench.json"), &json)?;
        fs::write(docs.join("bench.md"), &markdown)?;
        let readme = root().join("README.md");
        let text = fs::read_to_string(&readme)?;
        fs::write(&readme, replace_block(&text, &summary(&report))?)?;
        written.extend([docs.join("bench.json"), docs.join("bench.md"), readme]);
    }
    step("bench: results");
    println!("{markdown}");
    let written: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
    println!("wrote {}", written.join(", "));
    Ok(())
}

/// Runs every benchmark binary, watching the machine's load meanwhile.
fn take_measurements(args: &Args, out: &Path) -> Result<Report> {
    let raw = out.join("raw");
    fs::create_dir_all(&raw).with_context(|| format!("cannot create {}", raw.display()))?;
    let started = Instant::now();
    let average_before = load_average();
    let ticks_before = CpuTicks::now();
    let mut records = Vec::new();
    let only = args.only.as_deref();
    let binaries = BINARY_SUITES.iter().any(|suite| selected(only, suite));
    for binary in BINARIES.iter().filter(|_| binaries) {
        step(format!("bench: {binary}"));
        let file = raw.join(format!("{binary}.json"));
        let _ = fs::remove_file(&file);
        let mut cmd = cargo();
        cmd.args(["bench", "-p", "foreman-tests", "--bench", binary, "--"]);
        if args.quick {
            cmd.arg("--quick");
        }
        if let Some(only) = &args.only {
            cmd.args(["--only", only]);
        }
        cmd.arg("--out").arg(&file);
        exec(&mut cmd)?;
        let text =
            fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
        let mut some: Vec<Record> = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a list of records", file.display()))?;
        records.append(&mut some);
    }
    if selected(only, browser::SUITE) {
        let nightly = Nightly::detect().context(
            "the browser suite builds the demo with a toolchain that can rebuild the standard \
             library: run `cargo xtask setup`",
        )?;
        records.extend(browser::measure(args, &nightly)?);
    }
    let seconds = started.elapsed().as_secs_f64();
    let load = match (ticks_before, CpuTicks::now()) {
        (Some(before), Some(after)) => before.load_until(&after, seconds),
        _ => Load::default(),
    };
    Ok(Report {
        run: Run {
            date: utc_date(SystemTime::now()),
            quick: args.quick,
            complete: args.only.is_none(),
            seconds,
            machine: Machine::describe(),
            load: Load {
                average_before,
                average_after: load_average(),
                ..load
            },
        },
        records,
    })
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
            valgrind: version_of("valgrind", "--version"),
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

/// Clock ticks per second in `/proc/stat` and `/proc/<pid>/stat` (`USER_HZ`, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU time, in clock ticks, at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
struct CpuTicks {
    /// Every CPU's busy time (user, nice, system, irq, softirq; guest time is in user).
    busy: u64,
    /// Time the hypervisor gave to other machines.
    steal: u64,
    /// This process's own time and that of the children it waited for (cargo, and through
    /// it the benchmark binaries and their children).
    ours: u64,
}

impl CpuTicks {
    fn now() -> Option<CpuTicks> {
        let stat = fs::read_to_string("/proc/stat").ok()?;
        let own = fs::read_to_string("/proc/self/stat").ok()?;
        let (busy, steal) = parse_machine_ticks(&stat)?;
        Some(CpuTicks {
            busy,
            steal,
            ours: parse_own_ticks(&own)?,
        })
    }

    /// What others used from `self` until `later`, `seconds` apart, in CPUs on average.
    fn load_until(&self, later: &CpuTicks, seconds: f64) -> Load {
        let cpus = |ticks: u64| ticks as f64 / TICKS_PER_SECOND / seconds;
        let busy = later.busy.saturating_sub(self.busy);
        let ours = later.ours.saturating_sub(self.ours);
        Load {
            other_cpus: Some(cpus(busy.saturating_sub(ours))),
            steal_cpus: Some(cpus(later.steal.saturating_sub(self.steal))),
            ..Load::default()
        }
    }
}

/// `(busy, steal)` ticks from `/proc/stat`'s first line: `cpu user nice system idle iowait irq
/// softirq steal …`.
fn parse_machine_ticks(stat: &str) -> Option<(u64, u64)> {
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .map(|field| field.parse().ok())
        .collect::<Option<_>>()?;
    let field = |i: usize| fields.get(i).copied();
    let busy = field(0)? + field(1)? + field(2)? + field(5)? + field(6)?;
    Some((busy, field(7)?))
}

/// This process's user and system time plus its waited-for children's, from
/// `/proc/self/stat` (fields 14–17, counted after the command name, which may hold spaces).
fn parse_own_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // `fields[0]` is field 3 (the state): fields 14..=17 are at 11..=14.
    (11..=14).map(|i| fields.get(i)?.parse::<u64>().ok()).sum()
}

/// `YYYY-MM-DD` in UTC.
fn utc_date(time: SystemTime) -> String {
    let days = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() / 86_400) as i64;
    // Days since 1970-01-01 to a civil date (Howard Hinnant's `civil_from_days`).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// What a target compares foreman with.
#[derive(Clone, Copy, Debug)]
enum Reference {
    /// One named implementation.
    Impl(&'static str),
    /// Every peer: foreman must not be below the fastest one.
    EveryPeer,
}

/// A performance target from the issues: foreman's ratio (advantage) over `reference` in
/// `metric`, in each of `groups`.
struct Target {
    what: &'static str,
    groups: &'static [&'static str],
    /// The measured metric; the ratios are the records called `ratio:<metric>`.
    metric: &'static str,
    reference: Reference,
    rule: bench_stats::Target,
}

/// Not below the reference; a lower bound of 0.95 or more counts as parity.
const NOT_BELOW_OR_PARITY: bench_stats::Target = bench_stats::Target {
    at_least: 1.0,
    parity: Some(0.95),
};

/// Not below the reference.
const NOT_BELOW: bench_stats::Target = bench_stats::Target {
    at_least: 1.0,
    parity: None,
};

const QUEUE_THROUGHPUT: &[&str] = &[
    "queue/1p1c/cap64",
    "queue/1p1c/cap1024",
    "queue/2p2c/cap64",
    "queue/2p2c/cap1024",
];

const TARGETS: &[Target] = &[
    Target {
        what: "queue: instructions per push ≤ crossbeam ArrayQueue's",
        groups: &["queue/instructions/push"],
        metric: "instructions",
        reference: Reference::Impl("crossbeam-queue"),
        rule: NOT_BELOW,
    },
    Target {
        what: "queue: instructions per pop ≤ crossbeam ArrayQueue's",
        groups: &["queue/instructions/pop"],
        metric: "instructions",
        reference: Reference::Impl("crossbeam-queue"),
        rule: NOT_BELOW,
    },
    Target {
        what: "queue throughput not below crossbeam ArrayQueue",
        groups: QUEUE_THROUGHPUT,
        metric: "mops_per_s",
        reference: Reference::Impl("crossbeam-queue"),
        rule: NOT_BELOW_OR_PARITY,
    },
    Target {
        what: "queue throughput not below concurrent-queue",
        groups: QUEUE_THROUGHPUT,
        metric: "mops_per_s",
        reference: Reference::Impl("concurrent-queue"),
        rule: NOT_BELOW_OR_PARITY,
    },
    Target {
        what: "dispatch: instructions per task ≤ the crossbeam-channel pool's",
        groups: &["dispatch/instructions/noop-1w"],
        metric: "instructions",
        reference: Reference::Impl("crossbeam-channel"),
        rule: NOT_BELOW,
    },
    Target {
        what: "no-op dispatch not below the fastest peer",
        groups: &["dispatch/noop/1w", "dispatch/noop/2w", "dispatch/noop/4w"],
        metric: "tasks_per_s",
        reference: Reference::EveryPeer,
        rule: NOT_BELOW,
    },
    Target {
        what: "small-task dispatch not below the fastest peer",
        groups: &[
            "dispatch/small/1w",
            "dispatch/small/2w",
            "dispatch/small/4w",
        ],
        metric: "tasks_per_s",
        reference: Reference::EveryPeer,
        rule: NOT_BELOW,
    },
    Target {
        what: "browser: the demo's rows at 2 threads no slower than wasm-bindgen-rayon",
        groups: &[
            "browser/mandelbrot/2t/chromium",
            "browser/mandelbrot/2t/firefox",
        ],
        metric: "ms",
        reference: Reference::Impl("wasm-bindgen-rayon"),
        rule: NOT_BELOW,
    },
    Target {
        what: "p99 wake-up latency no worse than the best peer",
        groups: &["latency/submit-start/2w", "latency/submit-complete/2w"],
        metric: "p99_ns",
        reference: Reference::EveryPeer,
        rule: NOT_BELOW,
    },
];

/// The implementation the targets are about.
const FOREMAN: &str = "foreman";

fn is_peer(implementation: &str) -> bool {
    !implementation.starts_with(FOREMAN)
}

/// The rule in words: `≥ 1` or `≥ 1 (parity ≥ 0.95)`.
fn describe_rule(rule: &bench_stats::Target) -> String {
    match rule.parity {
        Some(parity) => format!("≥ {} (parity ≥ {parity})", rule.at_least),
        None => format!("≥ {}", rule.at_least),
    }
}

/// One target in one scenario: the comparison that decides it, and the verdict.
struct Judged<'r> {
    target: &'static Target,
    group: &'static str,
    /// The deciding ratio record (for `EveryPeer`, see `bench_stats::Target::decisive`).
    ratio: &'r Record,
    verdict: Verdict,
}

/// The indices of the ratio records `target` judges in `group`.
fn candidates(records: &[Record], target: &Target, group: &str) -> Vec<usize> {
    let metric = format!("ratio:{}", target.metric);
    (0..records.len())
        .filter(|&i| {
            let r = &records[i];
            r.group == group
                && r.metric == metric
                && r.implementation == FOREMAN
                && match target.reference {
                    Reference::Impl(name) => r.versus.as_deref() == Some(name),
                    Reference::EveryPeer => r.versus.as_deref().is_some_and(is_peer),
                }
        })
        .collect()
}

/// Every target, in every scenario that was measured.
fn evaluate(records: &[Record]) -> Vec<Judged<'_>> {
    let mut judged = Vec::new();
    for target in TARGETS {
        for &group in target.groups {
            let found = candidates(records, target, group);
            let estimates: Vec<Estimate> = found.iter().map(|&i| records[i].estimate()).collect();
            if let Some(k) = target.rule.decisive(&estimates) {
                judged.push(Judged {
                    target,
                    group,
                    ratio: &records[found[k]],
                    verdict: target.rule.judge(&estimates[k]),
                });
            }
        }
    }
    judged
}

/// Marks every ratio record a target applies to with the target and its own verdict.
fn judge(records: &mut [Record]) {
    for target in TARGETS {
        for &group in target.groups {
            for i in candidates(records, target, group) {
                let verdict = target.rule.judge(&records[i].estimate());
                records[i].target =
                    Some(format!("{}: {}", target.what, describe_rule(&target.rule)));
                records[i].verdict = Some(verdict.describe().to_string());
            }
        }
    }
}

/// How a metric's values are shown at the size of `value`: a divisor and a unit.
fn unit(metric: &str, value: f64) -> (f64, &'static str) {
    let pick = |units: &[(f64, &'static str)]| {
        units
            .iter()
            .copied()
            .find(|(scale, _)| value.abs() >= *scale)
            .unwrap_or(*units.last().expect("units"))
    };
    match metric {
        "tasks_per_s" => pick(&[(1e6, " M/s"), (1e3, " k/s"), (1.0, " /s")]),
        m if m.ends_with("_ns") => pick(&[(1e6, " ms"), (1e3, " µs"), (1.0, " ns")]),
        "ms" => (1.0, " ms"),
        "peak_rss_kib" => (1024.0, " MiB"),
        "bytes" => (1.0, " B"),
        _ => (1.0, ""),
    }
}

/// Three significant digits (whole numbers from 100 on), without trailing zeros.
fn significant(x: f64) -> String {
    let decimals = match x.abs() {
        a if a >= 100.0 => 0,
        a if a >= 10.0 => 1,
        a if a >= 1.0 => 2,
        _ => 3,
    };
    let text = format!("{x:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// A value for a table, in the metric's unit.
fn format_value(metric: &str, value: f64) -> String {
    match metric {
        // Exactly 0 shows as 0; anything else keeps a significant digit.
        "allocs_per_task" if value == 0.0 => "0".into(),
        "allocs_per_task" if value.abs() >= 1e-3 => format!("{value:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string(),
        "allocs_per_task" => format!("{value:.1e}"),
        _ => {
            let (scale, suffix) = unit(metric, value);
            significant(value / scale) + suffix
        }
    }
}

/// A value with its interval, if it has one, in the value's unit: `41.5 M/s (10.6–47.3)`.
fn format_estimate(record: &Record) -> String {
    let value = format_value(&record.metric, record.value);
    match record.interval {
        Some([low, high]) => {
            let (scale, _) = unit(&record.metric, record.value);
            format!(
                "{value} ({}–{})",
                significant(low / scale),
                significant(high / scale)
            )
        }
        None => value,
    }
}

/// A ratio: `1.05×`.
fn format_ratio(ratio: f64) -> String {
    format!("{ratio:.2}×")
}

/// A ratio's interval: `0.98–1.12`, or `exact` for a deterministic count.
fn format_interval(record: &Record) -> String {
    match record.interval {
        Some([low, high]) => format!("{low:.2}–{high:.2}"),
        None => "exact".into(),
    }
}

/// Rounds and why they stopped: `87 (narrow)`, or `—` for a single measurement.
fn format_rounds(record: &Record) -> String {
    match (record.rounds, &record.stop) {
        (Some(rounds), Some(stop)) => format!("{rounds} ({stop})"),
        (Some(rounds), None) => rounds.to_string(),
        _ => "—".into(),
    }
}

/// Threads at once, and whether that is more than the machine's CPUs.
fn format_threads(record: &Record, cpus: usize) -> String {
    match record.threads {
        Some(threads) if threads > cpus => format!("{threads} (> {cpus} CPUs)"),
        Some(threads) => threads.to_string(),
        None => "1 at a time".into(),
    }
}

/// CPU time other processes may use, on average, before a scenario that needs every CPU
/// counts as sharing them.
const SHARE_TOLERANCE: f64 = 0.25;

/// Why a scenario's verdict is information only, if it is: more threads at once than the
/// machine has CPUs (`oversubscribed`), or more than other processes left free on average
/// during the run (`busy machine`: with 1.4 CPUs of 2 taken by others, a producer and a
/// consumer take turns on one CPU, and the figure measures the scheduler's time slices).
/// Instruction counts (no threads recorded) are never affected.
fn information_only(record: &Record, cpus: usize, others: f64) -> Option<&'static str> {
    let threads = record.threads?;
    if threads > cpus {
        Some("oversubscribed")
    } else if threads as f64 + others > cpus as f64 + SHARE_TOLERANCE {
        Some("busy machine")
    } else {
        None
    }
}

/// CPUs' worth of time that others took during the run (0 if unknown).
fn others(load: &Load) -> f64 {
    load.other_cpus.unwrap_or(0.0) + load.steal_cpus.unwrap_or(0.0)
}

/// The README's benchmark block (and the top of `bench.md`): the run, every target with its
/// ratio, interval, rounds and verdict, and the instruction counts.
fn summary(report: &Report) -> String {
    let run = &report.run;
    let m = &run.machine;
    let mut md = String::new();
    let mode = if run.quick {
        "quick run (`cargo xtask bench --quick`: too few rounds to decide anything)"
    } else {
        "full run (`cargo xtask bench`)"
    };
    let _ = writeln!(
        md,
        "The latest {mode}, {}, took {:.0} s on {} ({} logical CPUs), {}, {}; {}; {}; {}.",
        run.date, run.seconds, m.cpu, m.cpus, m.memory, m.os, m.rustc, m.python, m.valgrind
    );
    md.push('\n');
    md.push_str(&describe_load(&run.load, m.cpus));
    md.push_str("\n\n");

    let judged = evaluate(&report.records);
    let others = others(&run.load);
    let counts = |headline: bool| {
        let count = |verdict: Verdict| {
            judged
                .iter()
                .filter(|j| j.verdict == verdict)
                .filter(|j| information_only(j.ratio, m.cpus, others).is_none() == headline)
                .count()
        };
        format!(
            "{} met, {} parity, {} missed, {} cannot tell",
            count(Verdict::Met),
            count(Verdict::Parity),
            count(Verdict::Missed),
            count(Verdict::CannotTell)
        )
    };
    let _ = writeln!(
        md,
        "Verdicts: {}; information only (more threads than free CPUs): {}. A target is met \
         only when the 95% interval of the ratio clears it, missed only when the interval lies \
         below it.\n",
        counts(true),
        counts(false),
    );
    md.push_str(
        "| target | scenario | threads | foreman ÷ | ratio | 95% interval | rounds | verdict |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for j in &judged {
        let info = match information_only(j.ratio, m.cpus, others) {
            Some(why) => format!(" ({why}: information)"),
            None => String::new(),
        };
        let verdict = match j.verdict {
            Verdict::Met | Verdict::Missed => format!("**{}**", j.verdict.describe()),
            _ => j.verdict.describe().to_string(),
        };
        let _ = writeln!(
            md,
            "| {} ({}) | `{}` | {} | {} | {} | {} | {} | {verdict}{info} |",
            j.target.what,
            describe_rule(&j.target.rule),
            j.group,
            format_threads(j.ratio, m.cpus),
            j.ratio.versus.as_deref().unwrap_or("?"),
            format_ratio(j.ratio.value),
            format_interval(j.ratio),
            format_rounds(j.ratio),
        );
    }
    if judged.is_empty() {
        md.push_str("| (no target was measured in this run) | | | | | | | |\n");
    }
    let instructions: Vec<&Record> = report
        .records
        .iter()
        .filter(|r| r.metric == "instructions")
        .collect();
    if !instructions.is_empty() {
        md.push_str(
            "\nInstructions per operation, counted by valgrind on one thread at a time (the \
             same on every run; see `tests/benches/instructions.rs`):\n",
        );
        for prefix in ["queue/", "dispatch/"] {
            let rows: Vec<&Record> = instructions
                .iter()
                .copied()
                .filter(|r| r.group.starts_with(prefix))
                .collect();
            if !rows.is_empty() {
                md.push('\n');
                md.push_str(&pivot(&rows, |r| format_value(&r.metric, r.value)));
            }
        }
    }
    md
}

/// Says how busy the machine was with other work, plainly.
fn describe_load(load: &Load, cpus: usize) -> String {
    let averages = format!(
        "load average (1, 5, 15 min) {} before and {} after",
        load.average_before.as_deref().unwrap_or("unknown"),
        load.average_after.as_deref().unwrap_or("unknown"),
    );
    match (load.other_cpus, load.steal_cpus) {
        (Some(others), Some(steal)) => {
            let verdict = if others + steal < 0.1 {
                "a quiet machine"
            } else {
                "**the machine was busy with other work: the throughput verdicts of scenarios \
                 that needed more CPUs than it left free are information only**"
            };
            format!(
                "During the run, other processes used {others:.2} of the {cpus} CPUs on average \
                 and the hypervisor took {steal:.2} ({averages}): {verdict}."
            )
        }
        _ => format!("The machine's CPU time was not readable; {averages}."),
    }
}

/// A table with a row per group and a column per implementation.
fn pivot(rows: &[&Record], cell: impl Fn(&Record) -> String) -> String {
    let mut impls: Vec<&str> = Vec::new();
    let mut groups: Vec<&str> = Vec::new();
    for r in rows {
        if !impls.contains(&r.implementation.as_str()) {
            impls.push(&r.implementation);
        }
        if !groups.contains(&r.group.as_str()) {
            groups.push(&r.group);
        }
    }
    let mut md = String::from("| operation |");
    for i in &impls {
        let _ = write!(md, " {i} |");
    }
    md.push_str("\n|---|");
    md.push_str(&"---|".repeat(impls.len()));
    md.push('\n');
    for group in groups {
        let _ = write!(md, "| `{group}` |");
        for i in &impls {
            match rows
                .iter()
                .find(|r| r.group == group && r.implementation == *i)
            {
                Some(r) => {
                    let _ = write!(md, " {} |", cell(r));
                }
                None => md.push_str(" |"),
            }
        }
        md.push('\n');
    }
    md
}

/// Headings and notes of each suite, by group prefix.
const SUITES: &[(&str, &str, &str)] = &[
    (
        "queue/",
        "Queue",
        "Million operations per second (one push or one pop is one operation): the median over \
         paired rounds with its 95% interval; `instructions`: per push or pop on one thread \
         (valgrind). P producers and P consumers run 2P threads at once.",
    ),
    (
        "dispatch/",
        "Dispatch",
        "Tasks per second from the first submission to the last task's end: the median over \
         paired rounds with its 95% interval; `instructions`: per no-op task, submit → take → \
         run → complete, one worker (valgrind). `foreman` (a 16k-task queue), `foreman-1k` (a \
         1024-task queue), `crossbeam-channel` and `std-mpsc` (unbounded) run data tasks (a \
         `u64` and one shared handler); `foreman-boxed` (16k), `rayon` and `threadpool` run \
         boxed closures. Small task: xorshift rounds calibrated to about 1 µs on one thread \
         (`dispatch/small/task`). A run has the workers and the submitter: workers + 1 threads. \
         `foreman-handle`: `foreman`'s data tasks with a result handle each \
         (`submit_with_handle` into a pool of `Handles`, then `wait` on every handle), against \
         the sink path in `dispatch/handle/1w` (its ratio: the sink path's throughput over the \
         handle path's); its instructions are counted alone in a binary of its own \
         (`tests/benches/handles.rs`), as `foreman`'s are.",
    ),
    (
        "latency/",
        "Latency",
        "From `submit` to the task's first statement (start) and to its outcome being \
         delivered (complete), with 2 idle (parked) workers; one no-op task at a time. p99: \
         the median over rounds of each round's p99, with its 95% interval; p50 and p99.9 over \
         every sample of the run.",
    ),
    (
        "seed/",
        "The Python seed",
        "`tests/seed/seed.py` (multiprocessing, 2 worker processes) and the same design on \
         foreman (2 worker threads, a 1024-task queue, results through an `mpsc` result \
         queue), 20k tasks; tasks per second from before the workers start to the results \
         collected and the workers joined, in paired rounds. `foreman-results-in-place` is the \
         same twin with each worker checking and counting its own results instead of sending \
         them to the main thread: the difference is the cost of the result queue. \
         `foreman-processes` is the like-for-like twin: foreman's process host with 2 worker \
         processes, as the Python has, its clock also counting their start and reaping. \
         Information: no target.",
    ),
    (
        "processes/",
        "Process workers against thread workers",
        "The same no-op tasks through foreman's thread host (`foreman`) and its process host \
         (`foreman-processes`, Linux), 1 and 2 workers, a 1024-task queue; tasks per second \
         from the first submission until the pool drained (the workers' start not counted), \
         the median over paired rounds with its 95% interval. Information: no target.",
    ),
    (
        "browser/",
        "Browser",
        "The demo's workload (`web/`): every row of one view of the Mandelbrot set, 400 tasks \
         of about 1–3 ms, drawn by foreman's Web Workers (one task per row, submitted with \
         `Pool::submit`) and by wasm-bindgen-rayon (`into_par_iter` over the rows), 2 threads \
         each, in headless Chromium and Firefox; milliseconds from the call to the outcome the \
         page receives, timed by the page. Paired rounds in rotating order after one unmeasured \
         run of each; the ratio is rayon's time ÷ foreman's (above 1: foreman is faster).",
    ),
    (
        "memory/",
        "Memory",
        "Heap allocations per task (`foreman-core`: the core's own path with a counting \
         allocator; the others: the dispatch benchmark, no-op tasks, 2 workers), \
         `size_of` the supervisor, and peak RSS of one dispatch run (1M no-op tasks, \
         2 workers; 200k with `--quick`) in a fresh process. Single measurements.",
    ),
];

/// `bench.md`: the summary, then a table per suite.
fn render(report: &Report) -> String {
    let mut md = String::from("# foreman benchmarks\n\n");
    md.push_str(&summary(report));
    for (prefix, title, note) in SUITES {
        let suite: Vec<&Record> = report
            .records
            .iter()
            .filter(|r| r.group.starts_with(prefix))
            .collect();
        if suite.is_empty() {
            continue;
        }
        md.push('\n');
        md.push_str(&table(title, note, &suite, report.run.machine.cpus));
    }
    md
}

/// One suite's table: a row per group and metric, a column per implementation, and
/// foreman's ratio over the best peer, or over its other variant in a row without peers (paired, with its interval, where the rounds give one).
fn table(title: &str, note: &str, suite: &[&Record], cpus: usize) -> String {
    let mut impls: Vec<&str> = Vec::new();
    let mut rows: Vec<(&str, &str)> = Vec::new();
    let mut values: BTreeMap<(&str, &str, &str), &Record> = BTreeMap::new();
    let mut ratios: BTreeMap<(&str, &str, &str), &Record> = BTreeMap::new();
    for r in suite {
        if let Some(metric) = r.metric.strip_prefix("ratio:") {
            if let Some(versus) = &r.versus {
                ratios.insert((&r.group, metric, versus), r);
            }
            continue;
        }
        if !impls.contains(&r.implementation.as_str()) {
            impls.push(&r.implementation);
        }
        if !rows.contains(&(r.group.as_str(), r.metric.as_str())) {
            rows.push((&r.group, &r.metric));
        }
        values.insert((&r.group, &r.implementation, &r.metric), r);
    }
    let mut md = format!("## {title}\n\n{note}\n\n| scenario | metric |");
    for i in &impls {
        let _ = write!(md, " {i} |");
    }
    md.push_str(" foreman ÷ best peer | rounds |\n|---|---|");
    md.push_str(&"---|".repeat(impls.len() + 2));
    md.push('\n');
    let mut crowded = false;
    for (group, metric) in rows {
        let row: Vec<&Record> = impls
            .iter()
            .filter_map(|i| values.get(&(group, *i, metric)).copied())
            .collect();
        let threads = row.first().and_then(|r| r.threads);
        let scenario = match threads {
            Some(threads) if threads > cpus => {
                crowded = true;
                format!("`{group}` ({threads} threads)")
            }
            _ => format!("`{group}`"),
        };
        let _ = write!(md, "| {scenario} | {metric} |");
        for i in &impls {
            match values.get(&(group, *i, metric)) {
                Some(r) => {
                    let _ = write!(md, " {} |", format_estimate(r));
                }
                None => md.push_str(" |"),
            }
        }
        let foreman = row.iter().find(|r| r.implementation == FOREMAN);
        // A row of foreman's own variants only (the cost of a handle, say): against the other.
        let best = best_peer(&row).or_else(|| {
            row.iter()
                .copied()
                .find(|r| r.implementation != FOREMAN && !is_peer(&r.implementation))
        });
        let ratio = match (foreman, best) {
            (Some(ours), Some(best)) => match ratios.get(&(group, metric, &best.implementation)) {
                Some(paired) => format!(
                    "{} ({}) vs {}",
                    format_ratio(paired.value),
                    format_interval(paired),
                    best.implementation
                ),
                None if ours.value > 0.0 && best.value > 0.0 => format!(
                    "{} vs {}",
                    format_ratio(bench_stats::advantage(
                        ours.value,
                        best.value,
                        ours.higher_is_better
                    )),
                    best.implementation
                ),
                None => String::new(),
            },
            _ => String::new(),
        };
        let rounds = row.first().map(|r| format_rounds(r)).unwrap_or_default();
        let _ = writeln!(md, " {ratio} | {rounds} |");
    }
    if crowded {
        let _ = writeln!(
            md,
            "\n(N threads): more threads at once than this machine's {cpus} CPUs: the figure \
             measures the scheduler as much as the code; information only."
        );
    }
    md
}

/// The best peer of `foreman` in `row`, by its median and the metric's sense.
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

/// The README's markers around the generated benchmark block.
const BEGIN: &str =
    "<!-- bench:begin: generated by `cargo xtask bench --publish`; edits here are overwritten -->";
const END: &str = "<!-- bench:end -->";

/// `text` with the block between [`BEGIN`] and [`END`] replaced by `block`.
fn replace_block(text: &str, block: &str) -> Result<String> {
    let (Some(begin), Some(end)) = (text.find(BEGIN), text.find(END)) else {
        bail!("README.md has no `{BEGIN}` … `{END}` block");
    };
    if end < begin {
        bail!("README.md's `{END}` comes before `{BEGIN}`");
    }
    Ok(format!(
        "{}{BEGIN}\n{}\n{}",
        &text[..begin],
        block.trim_end(),
        &text[end..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(group: &str, implementation: &str, metric: &str, value: f64) -> Record {
        Record {
            group: group.into(),
            implementation: implementation.into(),
            metric: metric.into(),
            value,
            higher_is_better: !metric.ends_with("_ns") && metric != "instructions",
            interval: None,
            rounds: None,
            stop: None,
            versus: None,
            threads: None,
            target: None,
            verdict: None,
        }
    }

    fn ratio(group: &str, metric: &str, versus: &str, value: f64, interval: [f64; 2]) -> Record {
        Record {
            interval: Some(interval),
            rounds: Some(40),
            stop: Some("narrow".into()),
            versus: Some(versus.into()),
            threads: Some(2),
            ..record(group, "foreman", &format!("ratio:{metric}"), value)
        }
    }

    fn exact(group: &str, versus: &str, value: f64) -> Record {
        Record {
            versus: Some(versus.into()),
            ..record(group, "foreman", "ratio:instructions", value)
        }
    }

    fn target(what: &str) -> &'static Target {
        TARGETS.iter().find(|t| t.what.contains(what)).unwrap()
    }

    #[test]
    fn a_named_reference_is_judged_by_its_interval() {
        let records = [
            ratio(
                "queue/1p1c/cap64",
                "mops_per_s",
                "crossbeam-queue",
                1.1,
                [1.02, 1.2],
            ),
            ratio(
                "queue/1p1c/cap1024",
                "mops_per_s",
                "crossbeam-queue",
                1.0,
                [0.96, 1.04],
            ),
            ratio(
                "queue/2p2c/cap64",
                "mops_per_s",
                "crossbeam-queue",
                0.9,
                [0.5, 1.3],
            ),
            ratio(
                "queue/2p2c/cap1024",
                "mops_per_s",
                "crossbeam-queue",
                0.8,
                [0.7, 0.9],
            ),
            ratio(
                "queue/1p1c/cap64",
                "mops_per_s",
                "heapless",
                0.1,
                [0.05, 0.2],
            ),
        ];
        let judged = evaluate(&records);
        let verdicts: Vec<(&str, Verdict)> = judged
            .iter()
            .filter(|j| j.target.what == target("not below crossbeam").what)
            .map(|j| (j.group, j.verdict))
            .collect();
        assert_eq!(
            verdicts,
            [
                ("queue/1p1c/cap64", Verdict::Met),
                ("queue/1p1c/cap1024", Verdict::Parity),
                ("queue/2p2c/cap64", Verdict::CannotTell),
                ("queue/2p2c/cap1024", Verdict::Missed),
            ]
        );
        // heapless is not a reference of any queue target, and concurrent-queue was not measured.
        assert!(judged
            .iter()
            .all(|j| j.ratio.versus.as_deref() == Some("crossbeam-queue")));
    }

    #[test]
    fn every_peer_targets_are_decided_by_the_weakest_comparison() {
        let g = "dispatch/noop/2w";
        let records = [
            ratio(g, "tasks_per_s", "rayon", 3.0, [2.5, 3.5]),
            ratio(g, "tasks_per_s", "crossbeam-channel", 1.05, [0.9, 1.2]),
            ratio(g, "tasks_per_s", "std-mpsc", 1.3, [1.1, 1.5]),
            // foreman's variants are not peers.
            ratio(g, "tasks_per_s", "foreman-boxed", 0.5, [0.4, 0.6]),
        ];
        let judged = evaluate(&records);
        assert_eq!(judged.len(), 1);
        assert_eq!(judged[0].ratio.versus.as_deref(), Some("crossbeam-channel"));
        assert_eq!(judged[0].verdict, Verdict::CannotTell);
    }

    #[test]
    fn exact_counts_are_met_or_missed_and_records_carry_their_verdicts() {
        let mut records = vec![
            exact("queue/instructions/push", "crossbeam-queue", 55.0 / 59.0),
            exact("queue/instructions/pop", "crossbeam-queue", 47.0 / 20.0),
            exact("queue/instructions/pop", "heapless", 23.0 / 20.0),
        ];
        let judged: Vec<(&str, Verdict)> = evaluate(&records)
            .iter()
            .map(|j| (j.group, j.verdict))
            .collect();
        assert_eq!(
            judged,
            [
                ("queue/instructions/push", Verdict::Missed),
                ("queue/instructions/pop", Verdict::Met),
            ]
        );
        judge(&mut records);
        assert_eq!(records[0].verdict.as_deref(), Some("missed"));
        assert_eq!(records[1].verdict.as_deref(), Some("met"));
        assert!(records[1].target.as_deref().unwrap().contains("≥ 1"));
        assert_eq!(records[2].verdict, None, "no target compares with heapless");
    }

    #[test]
    fn records_round_trip_through_json_without_the_absent_fields() {
        let plain = record("memory/size-of/Queue", "foreman", "bytes", 16512.0);
        let json = serde_json::to_string(&plain).unwrap();
        assert_eq!(
            json,
            r#"{"group":"memory/size-of/Queue","impl":"foreman","metric":"bytes","value":16512.0,"higher_is_better":true}"#
        );
        let paired = ratio(
            "queue/1p1c/cap64",
            "mops_per_s",
            "crossbeam-queue",
            1.1,
            [1.0, 1.2],
        );
        let back: Record = serde_json::from_str(&serde_json::to_string(&paired).unwrap()).unwrap();
        assert_eq!(back, paired);
    }

    #[test]
    fn values_are_shown_in_their_unit() {
        assert_eq!(format_value("tasks_per_s", 12_345_678.0), "12.3 M/s");
        assert_eq!(format_value("tasks_per_s", 46_683.0), "46.7 k/s");
        assert_eq!(format_value("mops_per_s", 133.7), "134");
        assert_eq!(format_value("bytes", 26240.0), "26240 B");
        assert_eq!(format_value("p99_ns", 6570.0), "6.57 µs");
        assert_eq!(format_value("p50_ns", 850.0), "850 ns");
        assert_eq!(format_value("peak_rss_kib", 3072.0), "3 MiB");
        assert_eq!(format_value("allocs_per_task", 0.0), "0");
        assert_eq!(format_value("allocs_per_task", 1.032), "1.032");
        assert_eq!(format_value("allocs_per_task", 0.00002), "2.0e-5");
        assert_eq!(format_value("instructions", 59.07), "59.1");
        assert_eq!(format_value("instructions", 281.04), "281");
        let mut p99 = record("latency/submit-start/2w", "rayon", "p99_ns", 54_336.0);
        p99.interval = Some([980.0, 61_000.0]);
        assert_eq!(format_estimate(&p99), "54.3 µs (0.98–61)");
    }

    #[test]
    fn tables_show_intervals_rounds_and_the_paired_ratio_over_the_best_peer() {
        let g = "dispatch/noop/4w";
        let mut ours = record(g, "foreman", "tasks_per_s", 2e7);
        ours.interval = Some([1.8e7, 2.2e7]);
        ours.rounds = Some(57);
        ours.stop = Some("time cap".into());
        ours.threads = Some(5);
        let theirs = Record {
            value: 1e7,
            interval: Some([0.9e7, 1.1e7]),
            implementation: "rayon".into(),
            ..ours.clone()
        };
        let paired = ratio(g, "tasks_per_s", "rayon", 1.9, [1.7, 2.1]);
        let suite = [&ours, &theirs, &paired];
        let md = table("Dispatch", "note", &suite, 2);
        assert!(
            md.contains("| scenario | metric | foreman | rayon | foreman ÷ best peer | rounds |")
        );
        assert!(
            md.contains(
                "| `dispatch/noop/4w` (5 threads) | tasks_per_s | 20 M/s (18–22) | \
             10 M/s (9–11) | 1.90× (1.70–2.10) vs rayon | 57 (time cap) |"
            ),
            "{md}"
        );
        assert!(md.contains("more threads at once than this machine's 2 CPUs"));
    }

    fn report(records: Vec<Record>, other_cpus: f64) -> Report {
        Report {
            run: Run {
                date: "2026-12-01".into(),
                quick: false,
                complete: true,
                seconds: 700.0,
                machine: Machine {
                    cpu: "AMD EPYC".into(),
                    cpus: 2,
                    memory: "23.5 GiB".into(),
                    os: "linux".into(),
                    rustc: "rustc 1.95.0".into(),
                    python: "Python 3.11.7".into(),
                    valgrind: "valgrind-3.19.0".into(),
                },
                load: Load {
                    average_before: Some("0.1 0.2 0.3".into()),
                    average_after: Some("1.9 1.0 0.5".into()),
                    other_cpus: Some(other_cpus),
                    steal_cpus: Some(0.0),
                },
            },
            records,
        }
    }

    #[test]
    fn the_summary_says_cannot_tell_plainly_and_marks_oversubscribed_scenarios() {
        let mut crowded = ratio(
            "queue/2p2c/cap64",
            "mops_per_s",
            "crossbeam-queue",
            1.3,
            [1.1, 1.5],
        );
        crowded.threads = Some(4);
        let records = vec![
            ratio(
                "queue/1p1c/cap64",
                "mops_per_s",
                "crossbeam-queue",
                1.0,
                [0.8, 1.3],
            ),
            crowded,
            record("queue/instructions/push", "foreman", "instructions", 59.07),
            record(
                "queue/instructions/push",
                "crossbeam-queue",
                "instructions",
                55.07,
            ),
        ];
        let busy = summary(&report(records.clone(), 0.8));
        assert!(
            busy.contains(
                "Verdicts: 0 met, 0 parity, 0 missed, 0 cannot tell; information only (more \
                 threads than free CPUs): 1 met, 0 parity, 0 missed, 1 cannot tell."
            ),
            "{busy}"
        );
        assert!(
            busy.contains(
                "| queue throughput not below crossbeam ArrayQueue (≥ 1 (parity ≥ 0.95)) | \
             `queue/1p1c/cap64` | 2 | crossbeam-queue | 1.00× | 0.80–1.30 | 40 (narrow) | \
             cannot tell (busy machine: information) |"
            ),
            "{busy}"
        );
        assert!(
            busy.contains("| 4 (> 2 CPUs) |")
                && busy.contains("**met** (oversubscribed: information)")
        );
        assert!(busy.contains("the machine was busy with other work"));
        assert!(
            busy.contains("| `queue/instructions/push` | 59.1 | 55.1 |"),
            "{busy}"
        );
        let quiet = summary(&report(records, 0.02));
        assert!(quiet.contains("a quiet machine") && !quiet.contains("busy"));
        assert!(quiet.contains("`queue/1p1c/cap64` | 2 | crossbeam-queue | 1.00× | 0.80–1.30 | 40 (narrow) | cannot tell |"));
        assert!(quiet.contains("Verdicts: 0 met, 0 parity, 0 missed, 1 cannot tell; information only (more threads than free CPUs): 1 met"));
    }

    #[test]
    fn verdicts_are_information_when_the_threads_outnumber_the_free_cpus() {
        let with_threads = |threads: Option<usize>| Record {
            threads,
            ..record("queue/1p1c/cap64", "foreman", "ratio:mops_per_s", 1.0)
        };
        let two = with_threads(Some(2));
        assert_eq!(information_only(&two, 2, 0.0), None);
        assert_eq!(information_only(&two, 2, 0.25), None);
        assert_eq!(information_only(&two, 2, 0.3), Some("busy machine"));
        assert_eq!(information_only(&two, 4, 1.5), None);
        assert_eq!(
            information_only(&with_threads(Some(4)), 2, 0.0),
            Some("oversubscribed")
        );
        // Instruction counts record no threads: never information only.
        assert_eq!(information_only(&with_threads(None), 2, 1.9), None);
    }

    #[test]
    fn the_readme_block_is_replaced_between_its_markers() {
        let readme = format!("# Title\n\n## Benchmarks\n\n{BEGIN}\nold table\n{END}\n\nprose\n");
        let new = replace_block(&readme, "new table\n").unwrap();
        assert_eq!(
            new,
            format!("# Title\n\n## Benchmarks\n\n{BEGIN}\nnew table\n{END}\n\nprose\n")
        );
        assert_eq!(replace_block(&new, "new table").unwrap(), new, "idempotent");
        assert!(replace_block("no markers", "x").is_err());
    }

    #[test]
    fn the_load_of_others_is_the_machines_busy_time_less_ours() {
        let stat = "cpu  1000 10 500 90000 20 5 5 30 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n";
        assert_eq!(parse_machine_ticks(stat), Some((1520, 30)));
        let own = "4242 (cargo xtask) S 1 2 3 4 5 6 7 8 9 10 11 12 300 200 0 0 20 0 1";
        assert_eq!(parse_own_ticks(own), Some(11 + 12 + 300 + 200));
        let before = CpuTicks {
            busy: 1000,
            steal: 10,
            ours: 100,
        };
        let after = CpuTicks {
            busy: 1000 + 2 * 100 * 10,
            steal: 10 + 50,
            ours: 100 + 100 * 15,
        };
        // 10 s: 20 CPU-seconds busy, 15 of them ours: others used 0.5 CPUs; steal 0.05.
        let load = before.load_until(&after, 10.0);
        assert_eq!(load.other_cpus, Some(0.5));
        assert_eq!(load.steal_cpus, Some(0.05));
    }

    #[test]
    fn dates_are_civil_utc() {
        let at = |secs: u64| utc_date(UNIX_EPOCH + std::time::Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01");
        assert_eq!(at(951_782_400), "2000-02-29");
        assert_eq!(at(1_796_083_200), "2026-12-01");
    }
}
