//! `cargo xtask qemu`: the firmware in `embedded/` on both boards under QEMU, and its footprint.
//!
//! First, foreman-rt itself is built for `thumbv7m-none-eabi` with its `defmt` feature (the
//! firmware prints through semihosting, not defmt). Then for each variant (board × how atomics
//! are made): build the three images with the second toolchain — `supervised` (foreman with
//! everything, on its cooperative host: watchdog, crash recovery with retries and dead letters,
//! snapshot and its report), `minimal` (foreman as a minimal supervised
//! queue: submit from the interrupt, take, complete/fail, drain) and `baseline` (the same
//! firmware without foreman) — run each under QEMU with semihosting, check its output line by
//! line (not only its exit status), and measure its sections. Then print the footprint table,
//! foreman's share of it in both configurations, and the verdict against each budget.
//!
//! The embassy firmware (`embedded/embassy/`, a crate of its own) goes the same way on the
//! lm3s6965evb: `embassy` (foreman's embassy host) and `embassy-baseline` (the same firmware on
//! an `embassy-sync` channel, without foreman), with a footprint table of its own.
//!
//! QEMU runs with `-icount shift=2,sleep=off`: virtual time follows the instructions executed
//! (one every 4 ns) and jumps ahead while the core sleeps in `WFI`, so a run is deterministic
//! and takes well under a second whatever the host's load.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use object::{Object, ObjectSection};

use crate::setup::{self, Need};
use crate::toolchain::Nightly;
use crate::util::{self, display, exec, root, step, target_dir, Counts};

mod oracle;

/// One firmware build: a board, its target, and the firmware's cargo features.
pub struct Variant {
    /// QEMU's `-machine`.
    pub board: &'static str,
    /// QEMU's `-cpu`.
    pub cpu: &'static str,
    pub target: &'static str,
    /// How read-modify-write atomics are made, for the tables.
    pub atomics: &'static str,
    /// Arguments selecting the firmware's features.
    pub features: &'static [&'static str],
    /// A directory name for its artifacts.
    pub slug: &'static str,
}

/// Every variant `cargo xtask qemu` builds and runs.
pub const VARIANTS: &[Variant] = &[
    Variant {
        board: "lm3s6965evb",
        cpu: "cortex-m3",
        target: "thumbv7m-none-eabi",
        atomics: "native",
        features: &[],
        slug: "lm3s6965evb",
    },
    Variant {
        board: "microbit",
        cpu: "cortex-m0",
        target: "thumbv6m-none-eabi",
        atomics: "portable-atomic + critical-section",
        features: &[],
        slug: "microbit-critical-section",
    },
    Variant {
        board: "microbit",
        cpu: "cortex-m0",
        target: "thumbv6m-none-eabi",
        atomics: "portable-atomic + unsafe-assume-single-core",
        features: &["--no-default-features", "--features", "atomics-single-core"],
        slug: "microbit-single-core",
    },
];

/// The images of every variant: foreman with everything, foreman as a minimal supervised
/// queue, and the same firmware without foreman.
const SUPERVISED: &str = "supervised";
const MINIMAL: &str = "minimal";
const BASELINE: &str = "baseline";
const IMAGES: [&str; 3] = [SUPERVISED, MINIMAL, BASELINE];

/// The embassy firmware's board (its crate builds for this one only).
pub const EMBASSY: Variant = Variant {
    board: "lm3s6965evb",
    cpu: "cortex-m3",
    target: "thumbv7m-none-eabi",
    atomics: "native",
    features: &[],
    slug: "lm3s6965evb-embassy",
};

/// The embassy firmware's two images: with foreman's embassy host, and without foreman.
const EMBASSY_HOSTED: &str = "embassy";
const EMBASSY_BASELINE: &str = "embassy-baseline";

/// A run that takes longer is stuck (a normal run takes well under a second).
const TIMEOUT: Duration = Duration::from_secs(60);

/// foreman's budget: the `.text` it may add to a firmware (opt-level "s", LTO, host code
/// included), as a minimal supervised queue (`minimal`) and with everything (`supervised`).
pub const MINIMAL_BUDGET: u64 = 1536;
pub const FULL_BUDGET: u64 = 4096;

/// `cargo xtask qemu`.
pub fn run() -> Result<()> {
    let nightly = prepare()?;
    let report = run_all(&nightly);
    report.print();
    let counts = report.counts();
    if counts.failed > 0 {
        bail!(
            "{} of {} firmware checks failed",
            counts.failed,
            counts.passed + counts.failed
        );
    }
    println!("\nall {} firmware checks passed", counts.passed);
    Ok(())
}

/// The `qemu` suite of `cargo xtask test`: one pass or failure per check (lint, and each
/// image on each variant), with the footprint printed.
pub fn suite(nightly: &Nightly) -> Result<Counts> {
    let report = run_all(nightly);
    report.print();
    Ok(report.counts())
}

/// Installs what is missing and finds the second toolchain.
fn prepare() -> Result<Nightly> {
    setup::ensure_nightly(Need {
        qemu: true,
        ..Need::default()
    })
}

/// What every check found, and the footprint of every image that was built.
#[derive(Default)]
struct Report {
    /// (what was checked, problems found).
    checks: Vec<(String, Vec<String>)>,
    /// Per variant that built: its images, in the order of [`IMAGES`].
    footprints: Vec<(&'static Variant, [Image; 3])>,
    /// The embassy firmware's images, with foreman and without, if both were built.
    embassy_footprint: Option<(Image, Image)>,
}

/// One built image: its sections, and the `ram:` line it printed.
#[derive(Default, Clone)]
struct Image {
    sections: Sections,
    statics: String,
}

fn run_all(nightly: &Nightly) -> Report {
    let mut report = Report::default();
    step("firmware: format and lint");
    let lint_problems = lint()
        .err()
        .map(|err| format!("{err:#}"))
        .into_iter()
        .collect();
    report
        .checks
        .push(("firmware: rustfmt + clippy".into(), lint_problems));
    step(format!("foreman-rt with defmt for {DEFMT_TARGET}"));
    let defmt_problems = build_defmt(nightly)
        .err()
        .map(|err| format!("{err:#}"))
        .into_iter()
        .collect();
    report.checks.push((
        format!("foreman-rt with defmt builds for {DEFMT_TARGET}"),
        defmt_problems,
    ));
    for variant in VARIANTS {
        step(format!(
            "firmware on {} ({}, atomics: {})",
            variant.board, variant.target, variant.atomics
        ));
        let images = match build(nightly, variant) {
            Ok(dir) => dir,
            Err(err) => {
                for image in IMAGES {
                    report.checks.push((
                        check_name(variant, image),
                        vec![format!("build failed: {err:#}")],
                    ));
                }
                continue;
            }
        };
        let mut built = Vec::new();
        for image in IMAGES {
            let elf = images.join(image);
            let (problems, statics) = match execute(variant, &elf) {
                Ok(run) => (
                    oracle::problems(variant, image, &run),
                    statics_line(&run.stdout),
                ),
                Err(err) => (vec![format!("{err:#}")], String::new()),
            };
            for problem in &problems {
                eprintln!("FAILED: {}: {problem}", check_name(variant, image));
            }
            report.checks.push((check_name(variant, image), problems));
            match Sections::of(&elf) {
                Ok(sections) => built.push(Image { sections, statics }),
                Err(err) => report.checks.push((
                    format!("{}: footprint", check_name(variant, image)),
                    vec![format!("{err:#}")],
                )),
            }
        }
        if let Ok(images) = <[Image; 3]>::try_from(built) {
            report.footprints.push((variant, images));
        }
    }
    run_embassy(nightly, &mut report);
    report
}

/// The embassy firmware: lint, build, run and check both images, measure them.
fn run_embassy(nightly: &Nightly, report: &mut Report) {
    step("firmware on embassy: format and lint");
    let lint_problems = lint_embassy(nightly)
        .err()
        .map(|err| format!("{err:#}"))
        .into_iter()
        .collect();
    report.checks.push((
        "firmware on embassy: rustfmt + clippy".into(),
        lint_problems,
    ));
    step(format!(
        "firmware on embassy-executor, {} ({})",
        EMBASSY.board, EMBASSY.target
    ));
    let images = match build_embassy(nightly) {
        Ok(dir) => dir,
        Err(err) => {
            for image in [EMBASSY_HOSTED, EMBASSY_BASELINE] {
                report.checks.push((
                    check_name(&EMBASSY, image),
                    vec![format!("build failed: {err:#}")],
                ));
            }
            return;
        }
    };
    let mut built = Vec::new();
    for image in [EMBASSY_HOSTED, EMBASSY_BASELINE] {
        let elf = images.join(image);
        let (problems, statics) = match execute(&EMBASSY, &elf) {
            Ok(run) => {
                let problems = if image == EMBASSY_HOSTED {
                    embassy_problems(&run)
                } else {
                    self_checked_problems(&EMBASSY, EMBASSY_BASELINE, &run)
                };
                (problems, statics_line(&run.stdout))
            }
            Err(err) => (vec![format!("{err:#}")], String::new()),
        };
        for problem in &problems {
            eprintln!("FAILED: {}: {problem}", check_name(&EMBASSY, image));
        }
        report.checks.push((check_name(&EMBASSY, image), problems));
        match Sections::of(&elf) {
            Ok(sections) => built.push(Image { sections, statics }),
            Err(err) => report.checks.push((
                format!("{}: footprint", check_name(&EMBASSY, image)),
                vec![format!("{err:#}")],
            )),
        }
    }
    if let [hosted, baseline] = built.as_slice() {
        report.embassy_footprint = Some((hosted.clone(), baseline.clone()));
    }
}

impl Report {
    fn counts(&self) -> Counts {
        let failed = self.checks.iter().filter(|(_, p)| !p.is_empty()).count();
        Counts {
            passed: self.checks.len() - failed,
            failed,
        }
    }

    fn print(&self) {
        step("firmware checks");
        for (name, problems) in &self.checks {
            let mark = if problems.is_empty() { "ok  " } else { "FAIL" };
            println!("{mark} {name}");
            for problem in problems {
                println!("       {problem}");
            }
        }
        if !self.footprints.is_empty() {
            step("footprint");
            print!("{}", footprint_table(&self.footprints));
        }
        if let Some((hosted, baseline)) = &self.embassy_footprint {
            step("footprint on embassy");
            print!("{}", embassy_table(hosted, baseline));
        }
    }
}

/// One name per image and variant, for the check list.
fn check_name(variant: &Variant, image: &str) -> String {
    format!(
        "firmware `{image}` on {} ({})",
        variant.board, variant.atomics
    )
}

/// `cargo fmt --check` and `cargo clippy -D warnings` on the firmware. Clippy runs with the
/// stock toolchain for the host, which needs no `-Z build-std`: the firmware has no
/// target-specific code, so this type-checks and lints all of it.
fn lint() -> Result<()> {
    let manifest = root().join("embedded").join("Cargo.toml");
    exec(
        util::cargo()
            .arg("fmt")
            .arg("--manifest-path")
            .arg(&manifest)
            // Only this package: `--all` would take in `core` and, through it, the whole
            // host workspace.
            .args(["-p", "foreman-firmware", "--", "--check"]),
    )?;
    exec(
        util::cargo()
            .arg("clippy")
            .arg("--manifest-path")
            .arg(&manifest)
            .args(["--all-targets", "--", "-D", "warnings"])
            .env("CARGO_TARGET_DIR", target_dir().join("embedded-lint")),
    )
}

/// The target [`build_defmt`] builds for.
const DEFMT_TARGET: &str = "thumbv7m-none-eabi";

/// Builds foreman-rt with `defmt` (and the hosts whose types derive `defmt::Format`) for a
/// Cortex-M target, where defmt's derives expand to their real encoders. The firmware prints
/// through semihosting, so this build is the check that foreman's `defmt` support compiles.
fn build_defmt(nightly: &Nightly) -> Result<()> {
    let mut cmd = nightly.cargo();
    cmd.current_dir(root().join("core"))
        .args(["build", "--release", "--lib", "--target", DEFMT_TARGET])
        .arg("-Zbuild-std=core")
        .args(["--features", "defmt,cooperative,embassy"]);
    exec(&mut cmd)
}

/// `cargo fmt --check` and `cargo clippy -D warnings` on the embassy firmware. Clippy runs with
/// the second toolchain for the firmware's own target: embassy's Cortex-M executor has
/// Arm-only code that does not type-check for the host.
fn lint_embassy(nightly: &Nightly) -> Result<()> {
    let manifest = root().join("embedded").join("embassy").join("Cargo.toml");
    exec(
        util::cargo()
            .arg("fmt")
            .arg("--manifest-path")
            .arg(&manifest)
            .args(["-p", "foreman-firmware-embassy", "--", "--check"]),
    )?;
    let mut cmd = nightly.cargo();
    cmd.current_dir(root().join("embedded").join("embassy"))
        .args([
            "clippy",
            "--release",
            "--all-targets",
            "--target",
            EMBASSY.target,
        ])
        .arg("-Zbuild-std=core")
        .args(["--", "-D", "warnings"]);
    exec(&mut cmd)
}

/// Builds both images of the embassy firmware and copies them to `target/qemu/<slug>/`.
fn build_embassy(nightly: &Nightly) -> Result<PathBuf> {
    let mut cmd = nightly.cargo();
    cmd.current_dir(root().join("embedded").join("embassy"))
        .args(["build", "--release", "--bins", "--target", EMBASSY.target])
        .arg("-Zbuild-std=core");
    exec(&mut cmd)?;
    let built = Nightly::target_dir().join(EMBASSY.target).join("release");
    let dir = target_dir().join("qemu").join(EMBASSY.slug);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for image in [EMBASSY_HOSTED, EMBASSY_BASELINE] {
        std::fs::copy(built.join(image), dir.join(image))
            .with_context(|| format!("cannot copy {} to {}", image, dir.display()))?;
    }
    Ok(dir)
}

/// Builds both images of `variant` and copies them to `target/qemu/<slug>/`.
fn build(nightly: &Nightly, variant: &Variant) -> Result<PathBuf> {
    let mut cmd = nightly.cargo();
    cmd.current_dir(root().join("embedded"))
        .args(["build", "--release", "--bins", "--target", variant.target])
        .arg("-Zbuild-std=core")
        .args(variant.features);
    exec(&mut cmd)?;
    let built = Nightly::target_dir().join(variant.target).join("release");
    let dir = target_dir().join("qemu").join(variant.slug);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for image in IMAGES {
        std::fs::copy(built.join(image), dir.join(image))
            .with_context(|| format!("cannot copy {} to {}", image, dir.display()))?;
    }
    Ok(dir)
}

/// What a QEMU run printed and how it ended.
struct Run {
    status: ExitStatus,
    stdout: String,
}

/// Runs one image under QEMU, echoing its output; fails if QEMU cannot start or the run
/// exceeds [`TIMEOUT`].
fn execute(variant: &Variant, elf: &Path) -> Result<Run> {
    let mut cmd = Command::new("qemu-system-arm");
    cmd.args(["-cpu", variant.cpu, "-machine", variant.board])
        .args(["-nographic", "-monitor", "none"])
        .args(["-semihosting-config", "enable=on,target=native"])
        .args(["-icount", "shift=2,sleep=off"])
        .arg("-kernel")
        .arg(elf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    println!("$ {}", display(&cmd));
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start `{}`", display(&cmd)))?;
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        stdout.read_to_end(&mut text).map(|_| text)
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > TIMEOUT {
            child.kill().ok();
            child.wait().ok();
            bail!("no exit after {} s: killed", TIMEOUT.as_secs());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the output reader panicked"))??;
    let stdout = String::from_utf8_lossy(&stdout).into_owned();
    for line in stdout.lines() {
        println!("    {line}");
    }
    Ok(Run { status, stdout })
}

/// The `key=value` fields of the first line that starts with `prefix`.
fn fields<'a>(stdout: &'a str, prefix: &str) -> Option<BTreeMap<&'a str, &'a str>> {
    let line = stdout.lines().find_map(|line| line.strip_prefix(prefix))?;
    Some(
        line.split_whitespace()
            .filter_map(|field| field.split_once('='))
            .collect(),
    )
}

/// The numeric field `key`, or a problem.
fn number(fields: &BTreeMap<&str, &str>, key: &str) -> Result<u64, String> {
    fields
        .get(key)
        .and_then(|value| value.parse().ok())
        .ok_or_else(|| format!("no number `{key}=` in the output"))
}

/// The `ram:` line the firmware printed (sizes of its statics, from `size_of`).
fn statics_line(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("ram: "))
        .unwrap_or("")
        .to_string()
}

/// The checks of a firmware that checks itself (the embassy images: see
/// `embedded/embassy/src/ledger.rs`): exit status 0, the right board, its closing verdict, and
/// nothing unexpected reported on the way. (The other images report and do not judge: the
/// [`oracle`] checks them.)
fn self_checked_problems(variant: &Variant, image: &str, run: &Run) -> Vec<String> {
    let mut problems = Vec::new();
    if !run.status.success() {
        problems.push(format!("QEMU exited with {}", run.status));
    }
    match fields(&run.stdout, &format!("foreman-firmware {image}: ")) {
        Some(header) => {
            if header.get("board") != Some(&variant.board)
                || header.get("target") != Some(&variant.target)
            {
                problems.push(format!(
                    "built for {:?} on {:?}, expected {} on {}",
                    header.get("target"),
                    header.get("board"),
                    variant.target,
                    variant.board
                ));
            }
        }
        None => problems.push("no `foreman-firmware` header line".into()),
    }
    for line in run.stdout.lines() {
        if ["anomaly:", "check failed:", "panic:", "hard fault"]
            .iter()
            .any(|bad| line.starts_with(bad))
        {
            problems.push(format!("the firmware reported: {line}"));
        }
    }
    if run.stdout.lines().last() != Some("check: ok") {
        problems.push("the last line is not `check: ok`".into());
    }
    let Some(outcomes) = fields(&run.stdout, "outcomes: ") else {
        problems.push("no `outcomes:` line".into());
        return problems;
    };
    let sum: Result<u64, String> = ["completed", "failed", "dead_lettered", "crashed"]
        .iter()
        .map(|key| number(&outcomes, key))
        .sum();
    match (number(&outcomes, "tasks"), sum) {
        (Ok(tasks), Ok(sum)) if tasks == sum && tasks > 0 => {}
        (Ok(tasks), Ok(sum)) => problems.push(format!("{sum} outcomes for {tasks} tasks")),
        (Err(problem), _) | (_, Err(problem)) => problems.push(problem),
    }
    problems
}

/// Checks an `embassy` run: the host's counters add up (recomputed here), nothing was lost, and
/// what the firmware exists to show was exercised: retries and dead letters after faults, a hung
/// task cancelled by the watchdog and retried, back-pressure on the interrupt and an async
/// producer that awaited room without a rejection being counted, and both late tasks refused.
fn embassy_problems(run: &Run) -> Vec<String> {
    let mut problems = self_checked_problems(&EMBASSY, EMBASSY_HOSTED, run);
    let stdout = run.stdout.as_str();
    let (Some(counters), Some(isr), Some(producer), Some(watchdog)) = (
        fields(stdout, "counters: "),
        fields(stdout, "isr: "),
        fields(stdout, "producer: "),
        fields(stdout, "watchdog: "),
    ) else {
        problems.push("missing a `counters:`, `isr:`, `producer:` or `watchdog:` line".into());
        return problems;
    };
    let mut numbers = |fields: &BTreeMap<&str, &str>, keys: &[&str]| -> Option<Vec<u64>> {
        let values: Result<Vec<u64>, String> = keys.iter().map(|k| number(fields, k)).collect();
        values.map_err(|problem| problems.push(problem)).ok()
    };
    let Some(
        [submitted, completed, failed, dead_lettered, lost, handed_back, queued, in_flight, rejected, crashes, restarts],
    ) = numbers(
        &counters,
        &[
            "submitted",
            "completed",
            "failed",
            "dead_lettered",
            "lost",
            "handed_back",
            "queued",
            "in_flight",
            "rejected",
            "crashes",
            "restarts",
        ],
    )
    .and_then(|v| <[u64; 11]>::try_from(v).ok())
    else {
        return problems;
    };
    let Some([isr_full, isr_closed]) =
        numbers(&isr, &["full", "closed"]).and_then(|v| <[u64; 2]>::try_from(v).ok())
    else {
        return problems;
    };
    let Some([waited, producer_closed]) =
        numbers(&producer, &["waited", "closed"]).and_then(|v| <[u64; 2]>::try_from(v).ok())
    else {
        return problems;
    };
    let Some([cancelled]) =
        numbers(&watchdog, &["cancelled"]).and_then(|v| <[u64; 1]>::try_from(v).ok())
    else {
        return problems;
    };
    let mut require = |ok: bool, what: &str| {
        if !ok {
            problems.push(what.to_string());
        }
    };
    require(
        counters.get("state") == Some(&"stopped"),
        "the supervisor did not stop",
    );
    require(
        submitted == completed + failed + dead_lettered + lost + handed_back + queued + in_flight,
        "the counters do not add up",
    );
    require(
        lost + handed_back + queued + in_flight == 0,
        "tasks lost, handed back, queued or in flight at the end",
    );
    require(
        rejected == isr_full + isr_closed + producer_closed,
        "the host's rejections differ from the producers' refusals",
    );
    require(isr_full > 0, "the queue was never full for the interrupt");
    require(waited > 0, "the async producer never awaited room");
    require(
        isr_closed == 1 && producer_closed == 1,
        "the late tasks were not refused as closed",
    );
    require(
        crashes > 0 && restarts == crashes,
        "no crash, or one not replaced",
    );
    require(dead_lettered > 0, "no task was dead-lettered");
    require(cancelled > 0, "the watchdog cancelled nothing");
    for (event, what) in [
        ("retried as attempt", "no retry reported"),
        ("dead-lettered after", "no dead letter reported"),
        ("cancelled by the watchdog", "no cancelled hang reported"),
    ] {
        require(stdout.contains(event), what);
    }
    problems
}

/// The sizes of an image's sections, in bytes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Sections {
    vector_table: u64,
    text: u64,
    rodata: u64,
    data: u64,
    bss: u64,
}

impl Sections {
    fn of(elf: &Path) -> Result<Sections> {
        let bytes = std::fs::read(elf).with_context(|| format!("cannot read {}", elf.display()))?;
        let file = object::File::parse(&*bytes)
            .with_context(|| format!("{} is not an object file", elf.display()))?;
        let size = |name: &str| file.section_by_name(name).map_or(0, |s| s.size());
        Ok(Sections {
            vector_table: size(".vector_table"),
            text: size(".text"),
            rodata: size(".rodata"),
            data: size(".data"),
            bss: size(".bss"),
        })
    }

    /// What the image occupies in flash (`.data`'s initial values included).
    fn flash(&self) -> u64 {
        self.vector_table + self.text + self.rodata + self.data
    }

    /// Static RAM (the stack comes on top).
    fn ram(&self) -> u64 {
        self.data + self.bss
    }

    fn columns(&self) -> [u64; 6] {
        [
            self.text,
            self.rodata,
            self.data,
            self.bss,
            self.flash(),
            self.ram(),
        ]
    }
}

/// The footprint as a Markdown table, with foreman's share in both configurations and the
/// verdict against each budget.
fn footprint_table(footprints: &[(&Variant, [Image; 3])]) -> String {
    let mut out = String::from(
        "Bytes; opt-level \"s\", fat LTO, codegen-units 1, panic abort. flash = vector table + \
         .text + .rodata + .data; static RAM = .data + .bss (stack not included). minimal: \
         foreman as a minimal supervised queue; supervised: with the watchdog, crash recovery \
         and the snapshot's report, on foreman's cooperative host.\n\n\
         | board | atomics | image | .text | .rodata | .data | .bss | flash | static RAM |\n\
         |---|---|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for (variant, [supervised, minimal, baseline]) in footprints {
        let row = |image: &str, cells: [String; 6]| {
            format!(
                "| {} | {} | {image} | {} |\n",
                variant.board,
                variant.atomics,
                cells.join(" | ")
            )
        };
        let plain = |s: &Sections| s.columns().map(|v| v.to_string());
        let added = |with: &Sections| -> [String; 6] {
            with.columns()
                .iter()
                .zip(baseline.sections.columns())
                .map(|(with, without)| format!("{:+}", *with as i64 - without as i64))
                .collect::<Vec<_>>()
                .try_into()
                .expect("six columns")
        };
        out += &row(BASELINE, plain(&baseline.sections));
        out += &row(MINIMAL, plain(&minimal.sections));
        out += &row(SUPERVISED, plain(&supervised.sections));
        out += &row("**foreman adds, minimal**", added(&minimal.sections));
        out += &row("**foreman adds, full**", added(&supervised.sections));
    }
    out += "\nStatics, from `size_of` (printed by the firmware):\n\n";
    for (variant, [supervised, minimal, baseline]) in footprints {
        out += &format!(
            "- {} ({}): supervised: {}; minimal: {}; baseline: {}\n",
            variant.board, variant.atomics, supervised.statics, minimal.statics, baseline.statics
        );
    }
    out += &format!(
        "\nBudgets: foreman may add {MINIMAL_BUDGET} bytes of .text as a minimal supervised \
         queue, {FULL_BUDGET} with everything.\n"
    );
    for (variant, [supervised, minimal, baseline]) in footprints {
        for (what, image, budget) in [
            ("minimal", minimal, MINIMAL_BUDGET),
            ("full", supervised, FULL_BUDGET),
        ] {
            let added = image.sections.text as i64 - baseline.sections.text as i64;
            let verdict = if added <= budget as i64 {
                format!("within its {budget}-byte budget")
            } else {
                format!(
                    "OVER its {budget}-byte budget by {} bytes",
                    added - budget as i64
                )
            };
            out += &format!(
                "- {} ({}), {what}: +{added} bytes of .text: {verdict}\n",
                variant.board, variant.atomics
            );
        }
    }
    out
}

/// The embassy firmware's footprint as a Markdown table, with foreman's share.
fn embassy_table(hosted: &Image, baseline: &Image) -> String {
    let mut out = String::from(
        "Bytes, as above. embassy-baseline: the same embassy firmware on an `embassy-sync` \
         channel, each task run once under a timeout; embassy: foreman's embassy host.\n\n\
         | board | image | .text | .rodata | .data | .bss | flash | static RAM |\n\
         |---|---|---:|---:|---:|---:|---:|---:|\n",
    );
    let row = |image: &str, cells: Vec<String>| {
        format!("| {} | {image} | {} |\n", EMBASSY.board, cells.join(" | "))
    };
    let plain = |image: &Image| image.sections.columns().map(|v| v.to_string()).to_vec();
    out += &row(EMBASSY_BASELINE, plain(baseline));
    out += &row(EMBASSY_HOSTED, plain(hosted));
    let added = hosted
        .sections
        .columns()
        .iter()
        .zip(baseline.sections.columns())
        .map(|(with, without)| format!("{:+}", *with as i64 - without as i64))
        .collect();
    out += &row("**foreman adds**", added);
    out += &format!(
        "\nStatics, from `size_of` (printed by the firmware): embassy: {}; embassy-baseline: {}\n",
        hosted.statics, baseline.statics
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    fn run(stdout: &str, code: i32) -> Run {
        Run {
            status: ExitStatus::from_raw(code << 8),
            stdout: stdout.to_string(),
        }
    }

    /// Output of a real run of the embassy firmware, trimmed of some task lines.
    const EMBASSY_OK: &str = "\
foreman-firmware embassy: board=lm3s6965evb target=thumbv7m-none-eabi workers=2 capacity=8 tasks=48 deadline=8 max_attempts=3
ram: host=432 ledger=56 offers=20 submits=16
task 27: hung on attempt 1 (worker 0): cancelled by the watchdog, retried as attempt 2 by the replacement
task 3: fault on attempt 1 (worker 1): retried as attempt 2 by the replacement
task 13: fault on attempt 3 (worker 1): dead-lettered after 3 attempts
isr: ticks=111 accepted=24 full=31 closed=1 mismatched=0 late_accepted=false
producer: accepted=24 waited=4 closed=1
counters: state=stopped submitted=48 completed=44 failed=2 dead_lettered=2 lost=0 handed_back=0 queued=0 in_flight=0 requeued=0 rejected=33 crashes=11 restarts=11 adds_up=true
worker 0: state=exited completed=17 failed=0 crashes=6 restarts=6 exit=Some(Left)
worker 1: state=exited completed=27 failed=2 crashes=5 restarts=5 exit=Some(Left)
watchdog: cancelled=2 hung_tasks=0x8000020 faults=9
outcomes: tasks=48 completed=44 failed=2 dead_lettered=2 crashed=0 mismatched=0 duplicates=0 wrong_results=0 anomalies=0
check: ok
";

    #[test]
    fn embassy_output_is_checked_beyond_the_exit_status() {
        let count = |stdout: &str, code| embassy_problems(&run(stdout, code)).len();
        assert_eq!(count(EMBASSY_OK, 0), 0);
        assert_eq!(count(EMBASSY_OK, 1), 1, "exit status");
        // An async producer's wait counted as a rejection.
        assert_eq!(
            count(&EMBASSY_OK.replace("rejected=33", "rejected=34"), 0),
            1
        );
        // The watchdog cancelled nothing: the count and the event line.
        let uncancelled = EMBASSY_OK
            .replace("cancelled=2", "cancelled=0")
            .replace("cancelled by the watchdog, ", "");
        assert_eq!(count(&uncancelled, 0), 2);
        // The producer never waited for room.
        assert_eq!(count(&EMBASSY_OK.replace("waited=4", "waited=0"), 0), 1);
        // The supervised firmware's output is not the embassy firmware's.
        let supervised = include_str!("qemu/testdata/supervised.txt");
        assert!(count(supervised, 0) >= 1);
    }

    #[test]
    fn embassy_baseline_outcomes_must_cover_every_task() {
        let ok = "\
foreman-firmware embassy-baseline: board=lm3s6965evb target=thumbv7m-none-eabi capacity=8 tasks=48 deadline=8
outcomes: tasks=48 completed=41 failed=2 dead_lettered=0 crashed=5 mismatched=0
check: ok
";
        let check =
            |stdout: &str| self_checked_problems(&EMBASSY, EMBASSY_BASELINE, &run(stdout, 0));
        assert!(check(ok).is_empty());
        let short = ok.replace("crashed=5", "crashed=4");
        assert_eq!(check(&short).len(), 1);
        // A verdict of its own, and what it says.
        assert_eq!(check(&ok.replace("check: ok", "check: FAILED")).len(), 1);
        assert_eq!(
            check(&ok.replace("check: ok", "anomaly: x\ncheck: ok")).len(),
            1
        );
    }

    #[test]
    fn the_footprint_table_shows_foremans_share_and_both_budgets() {
        let image = |text, statics: &str| Image {
            sections: Sections {
                vector_table: 1024,
                text,
                rodata: 100,
                data: 0,
                bss: 8,
            },
            statics: statics.into(),
        };
        let table = footprint_table(&[(
            &VARIANTS[0],
            [
                image(9500, "supervisor=280"),
                image(6400, "supervisor=200"),
                image(5000, "queue=48"),
            ],
        )]);
        assert!(table.contains(
            "| lm3s6965evb | native | **foreman adds, minimal** | +1400 | +0 | +0 | +0 | +1400 | +0 |"
        ));
        assert!(table.contains(
            "| lm3s6965evb | native | **foreman adds, full** | +4500 | +0 | +0 | +0 | +4500 | +0 |"
        ));
        assert!(table
            .contains("supervised: supervisor=280; minimal: supervisor=200; baseline: queue=48"));
        assert!(table.contains("minimal: +1400 bytes of .text: within its 1536-byte budget"));
        assert!(
            table.contains("full: +4500 bytes of .text: OVER its 4096-byte budget by 404 bytes")
        );
        let table = embassy_table(&image(21000, "host=432"), &image(12000, "channel=64"));
        assert!(table
            .contains("| lm3s6965evb | **foreman adds** | +9000 | +0 | +0 | +0 | +9000 | +0 |"));
        assert!(table.contains("embassy: host=432; embassy-baseline: channel=64"));
    }
}
