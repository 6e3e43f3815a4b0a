//! `cargo xtask test`: every test suite, one after the other; the last line is
//! `N passed, N failed` (test cases for harnesses that count them, one per check otherwise).

use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Result};

use crate::browser::Browser;
use crate::setup::{self, Need};
use crate::util::{cargo, check, output, root, run_tests, step, target_dir, Counts};

/// Options of `cargo xtask test`.
#[derive(clap::Args)]
pub struct Args {
    /// Run only the suites whose name contains this text (e.g. `loom`, `browser`).
    #[arg(long)]
    only: Option<String>,
    /// Longer runs: stress with 10 million tasks per configuration instead of 1 million, the
    /// core's model test with 200 000 cases instead of 5 000, and every liveness case 20
    /// times instead of once.
    #[arg(long)]
    long: bool,
}

/// The cross-target builds of the core: target, `-Z build-std` crates, extra rustflags,
/// extra cargo arguments.
const CROSS_TARGETS: &[(&str, &str, &str, &[&str])] = &[
    ("thumbv7em-none-eabihf", "core", "", &[]),
    (
        "thumbv7em-none-eabihf",
        "core",
        "",
        &[
            "--features",
            "foreman-rt/embassy,foreman-rt/cooperative,foreman-rt/defmt",
        ],
    ),
    (
        "riscv32imac-unknown-none-elf",
        "core",
        "",
        &["--features", "foreman-rt/cooperative,foreman-rt/defmt"],
    ),
    (
        "wasm32-unknown-unknown",
        "core",
        "-C target-feature=+atomics,+bulk-memory,+mutable-globals",
        &[],
    ),
    (
        "thumbv6m-none-eabi",
        "core",
        "",
        &[
            "--features",
            "foreman-rt/portable-atomic,portable-atomic/unsafe-assume-single-core",
        ],
    ),
    (
        "thumbv6m-none-eabi",
        "core",
        "",
        &[
            "--features",
            "foreman-rt/portable-atomic,foreman-rt/embassy,foreman-rt/cooperative,portable-atomic/unsafe-assume-single-core",
        ],
    ),
];

pub fn run(args: Args) -> Result<()> {
    step("setup");
    let nightly = setup::ensure_nightly(Need::everything())?;

    let mut suites = Suites::new(args.only);
    suites.run("format", || {
        Ok(check(cargo().args(["fmt", "--all", "--", "--check"])))
    });
    suites.run("clippy", || {
        let mut counts = check(cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]));
        counts += check(cargo().args([
            "clippy",
            "-p",
            "foreman-rt",
            "--all-targets",
            "--no-default-features",
            "--",
            "-D",
            "warnings",
        ]));
        counts += check(cargo().args([
            "clippy",
            "-p",
            "foreman-rt",
            "--all-targets",
            "--features",
            "embassy",
            "--",
            "-D",
            "warnings",
        ]));
        counts += check(cargo().args([
            "clippy",
            "-p",
            "foreman-rt",
            "--all-targets",
            "--features",
            "cooperative,defmt",
            "--",
            "-D",
            "warnings",
        ]));
        Ok(counts)
    });
    suites.run("core, no features (unit + doc)", || {
        run_tests(cargo().args(["test", "-p", "foreman-rt"]))
    });
    suites.run("core with std (unit + doc)", || {
        run_tests(cargo().args(["test", "-p", "foreman-rt", "--features", "std"]))
    });
    suites.run("core with the embassy host (unit + doc)", || {
        run_tests(cargo().args(["test", "-p", "foreman-rt", "--features", "embassy"]))
    });
    suites.run(
        "core with the cooperative host and defmt (unit + doc)",
        || {
            // The rest of the core ran in the suites above.
            run_tests(cargo().args([
                "test",
                "-p",
                "foreman-rt",
                "--features",
                "cooperative,defmt",
                "--",
                "host::",
                "defmt",
            ]))
        },
    );
    suites.run("core model (proptest vs a reference model)", || {
        let mut cmd = cargo();
        cmd.args(["test", "-p", "foreman-rt", "--test", "model", "--release"]);
        if args.long {
            cmd.env("PROPTEST_CASES", "200000");
        }
        run_tests(&mut cmd)
    });
    suites.run("cross-crate (stress, soak, liveness, snapshots)", || {
        let mut cmd = cargo();
        // The process host's tests have their own suite, below.
        cmd.args([
            "test",
            "-p",
            "foreman-tests",
            "--release",
            "--",
            "--skip",
            "processes::",
        ]);
        if args.long {
            cmd.env("FOREMAN_STRESS_TASKS", "10000000");
            cmd.env("FOREMAN_LIVENESS_ROUNDS", "20");
        }
        run_tests(&mut cmd)
    });
    suites.run("process host: unit + doc, faults, random kills", || {
        let mut counts = run_tests(cargo().args([
            "test",
            "-p",
            "foreman-rt",
            "--features",
            "processes",
            "--",
            "host::processes",
        ]))?;
        counts += run_tests(cargo().args([
            "test",
            "-p",
            "foreman-tests",
            "--release",
            "--test",
            "processes",
        ]))?;
        Ok(counts)
    });
    suites.run("loom models", || {
        run_tests(
            cargo()
                .args(["test", "-p", "foreman-rt", "--test", "loom", "--release"])
                .env("RUSTFLAGS", "--cfg loom")
                .env("CARGO_TARGET_DIR", target_dir().join("loom")),
        )
    });
    suites.run("xtask", || {
        run_tests(cargo().args(["test", "-p", "xtask", "-p", "bench-stats"]))
    });
    suites.run(
        "packages: cargo package, docs as docs.rs builds them",
        || crate::packages::suite(&nightly),
    );
    suites.run("seed example and the Python seed", seed_example);
    suites.run("cross-target builds of the core", || {
        let mut counts = Counts::default();
        for (target, std_crates, rustflags, extra) in CROSS_TARGETS {
            let mut cmd = nightly.cargo();
            cmd.args(["build", "--release", "-p", "foreman-rt", "--target", target])
                .arg(format!("-Zbuild-std={std_crates}"))
                .args(*extra)
                .env("RUSTFLAGS", rustflags);
            counts += check(&mut cmd);
        }
        Ok(counts)
    });
    suites.run("browser: wasm crates format + clippy", || {
        crate::browser::lint(&nightly)
    });
    suites.run("browser: wasm unit tests in headless Chromium", || {
        crate::browser::wasm_tests(&nightly)
    });
    suites.run("browser: end-to-end in Chromium (playwright-core)", || {
        crate::browser::end_to_end(&nightly, Browser::Chromium)
    });
    suites.run("browser: end-to-end in Firefox (puppeteer-core)", || {
        crate::browser::end_to_end(&nightly, Browser::Firefox)
    });
    suites.run("qemu: firmware on both boards, footprint", || {
        crate::qemu::suite(&nightly)
    });
    suites.run("bench smoke (quick benchmarks, no thresholds)", || {
        // Without `bench::run`'s setup: the one above covers it.
        crate::bench::measure(crate::bench::Args {
            quick: true,
            out: Some(target_dir().join("bench-smoke")),
            ..crate::bench::Args::default()
        })
        .map(|()| Counts::PASS)
    });
    suites.finish()
}

/// What a run of the seed must print besides `All tasks completed.` last.
#[derive(Clone, Copy)]
struct Seed {
    /// Whole `Worker <id>: Processed task, result: <id * 2>` lines.
    results: usize,
    /// `Worker <id> crashed (… SIGSEGV …); …` lines: worker processes that segfaulted.
    crashes: usize,
}

/// The seed as written: ten results.
const SEED: Seed = Seed {
    results: 10,
    crashes: 0,
};

/// The seed example and the Python seed it reproduces (`tests/seed/seed.py`, its shutdown
/// fixed) both print ten whole result lines and `All tasks completed.`, and exit 0; the
/// process seed (`seed_processes`) prints an eleventh, after one worker process segfaulted
/// and its task ran again on a new one.
fn seed_example() -> Result<Counts> {
    let example = |name: &str, feature: &str| {
        output(cargo().args([
            "run",
            "--quiet",
            "-p",
            "foreman-rt",
            "--example",
            name,
            "--features",
            feature,
        ]))
    };
    let ours = example("seed", "std")?;
    let processes = example("seed_processes", "processes")?;
    let python =
        output(Command::new("python3").arg(root().join("tests").join("seed").join("seed.py")))?;
    let mut counts = Counts::default();
    let runs = [
        ("the seed example", ours, SEED),
        (
            "the process seed example",
            processes,
            Seed {
                results: 11,
                crashes: 1,
            },
        ),
        ("the Python seed", python, SEED),
    ];
    for (name, stdout, expected) in runs {
        print!("{stdout}");
        let problems = seed_output_problems(&stdout, expected);
        counts += Counts::one(if problems.is_empty() {
            Ok(())
        } else {
            Err(anyhow::anyhow!("{name}: {}", problems.join("; ")))
        });
    }
    Ok(counts)
}

/// What is wrong with a seed run's output, if anything.
fn seed_output_problems(stdout: &str, expected: Seed) -> Vec<String> {
    let mut problems = Vec::new();
    let lines: Vec<&str> = stdout.lines().collect();
    let results: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.contains("Processed task"))
        .collect();
    if results.len() != expected.results {
        problems.push(format!(
            "{} result lines, expected {}",
            results.len(),
            expected.results
        ));
    }
    let crashes: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.contains(" crashed ("))
        .collect();
    if crashes.len() != expected.crashes {
        problems.push(format!(
            "{} crash lines, expected {}",
            crashes.len(),
            expected.crashes
        ));
    }
    for line in crashes.iter().filter(|l| !l.contains("SIGSEGV")) {
        problems.push(format!("a crash that is not the segfault: {line:?}"));
    }
    for line in &results {
        let parsed = line
            .strip_prefix("Worker ")
            .and_then(|rest| rest.split_once(": Processed task, result: "))
            .and_then(|(id, result)| {
                Some((id.parse::<usize>().ok()?, result.parse::<usize>().ok()?))
            });
        match parsed {
            Some((id, result)) if result == id * 2 && id < 3 => {}
            _ => problems.push(format!("malformed or wrong result line: {line:?}")),
        }
    }
    if lines.last() != Some(&"All tasks completed.") {
        problems.push("the last line is not `All tasks completed.`".into());
    }
    problems
}

/// The suites run so far and their counts.
struct Suites {
    only: Option<String>,
    results: Vec<(String, Counts, f64)>,
}

impl Suites {
    fn new(only: Option<String>) -> Suites {
        Suites {
            only,
            results: Vec::new(),
        }
    }

    /// Runs one suite (unless filtered out); an error counts as one failure.
    fn run(&mut self, name: &str, suite: impl FnOnce() -> Result<Counts>) {
        if self
            .only
            .as_deref()
            .is_some_and(|only| !name.contains(only))
        {
            return;
        }
        step(format!("test: {name}"));
        let started = Instant::now();
        let counts = suite().unwrap_or_else(|err| Counts::one(Err(err.context(name.to_string()))));
        self.results
            .push((name.to_string(), counts, started.elapsed().as_secs_f64()));
    }

    /// Prints the summary; the very last line is `N passed, N failed`.
    fn finish(self) -> Result<()> {
        step("summary");
        let mut total = Counts::default();
        for (name, counts, seconds) in &self.results {
            let mark = if counts.failed == 0 { "ok  " } else { "FAIL" };
            println!(
                "{mark} {name:<48} {:>6} passed {:>4} failed {seconds:>7.1}s",
                counts.passed, counts.failed
            );
            total += *counts;
        }
        if self.results.is_empty() {
            bail!("no suite matched");
        }
        println!("{} passed, {} failed", total.passed, total.failed);
        if total.failed > 0 {
            // Exit here so that the counts stay the last line of the output.
            std::process::exit(1);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_output_is_checked_line_by_line() {
        let good: String = (0..10)
            .map(|i| {
                format!(
                    "Worker {}: Processed task, result: {}\n",
                    i % 3,
                    (i % 3) * 2
                )
            })
            .collect::<String>()
            + "All tasks completed.\n";
        assert!(seed_output_problems(&good, SEED).is_empty());
        let wrong = good.replace(
            "Worker 1: Processed task, result: 2",
            "Worker 1: Processed task, result: 3",
        );
        assert_eq!(seed_output_problems(&wrong, SEED).len(), 3);
        let truncated = good.replace("All tasks completed.\n", "");
        assert_eq!(seed_output_problems(&truncated, SEED).len(), 1);
        let recovered = format!(
            "Worker 2 crashed (killed by signal 11 (SIGSEGV)); a new worker process runs its \
             task again (attempt 2)\nWorker 2: Processed task, result: 4\n{good}"
        );
        let processes = Seed {
            results: 11,
            crashes: 1,
        };
        assert!(seed_output_problems(&recovered, processes).is_empty());
        assert_eq!(seed_output_problems(&good, processes).len(), 2);
        let aborted = recovered.replace("SIGSEGV", "SIGABRT");
        assert_eq!(seed_output_problems(&aborted, processes).len(), 1);
    }
}
