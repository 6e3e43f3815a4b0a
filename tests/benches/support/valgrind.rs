//! Counting a workload's instructions with valgrind, shared by the benchmark binaries that do
//! (`instructions`, `handles`): the binary runs itself again as a child under cachegrind
//! (`--cache-sim=no`: counting only) with `--child SPEC`, and the count covers the whole child
//! process. Two runs that differ only in how many operations they perform differ only by those
//! operations, so the difference over the extra operations is the cost of one ([`per_op`]).

use std::fs;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::sync::{Condvar, Mutex};

use clap::Parser;

use crate::report::{Options, Records};

/// Whether valgrind can be run; if not, says so on stderr (for the suite `suite`).
pub fn available(suite: &str) -> bool {
    let valgrind = Command::new("valgrind").arg("--version").output();
    let found = valgrind.is_ok_and(|out| out.status.success());
    if !found {
        eprintln!("{suite} suite skipped: valgrind not found (`cargo xtask setup` installs it)");
    }
    found
}

/// The instructions valgrind counts in the binary `exe` performing `spec` (`exe --child
/// SPEC`), in a child process.
pub fn count(exe: &Path, spec: &str) -> u64 {
    let file = std::env::temp_dir().join(format!(
        "foreman-instructions-{}-{}.out",
        std::process::id(),
        spec.replace(':', "-")
    ));
    let output = Command::new("valgrind")
        .args(["--tool=cachegrind", "--cache-sim=no", "-q"])
        .arg(format!("--cachegrind-out-file={}", file.display()))
        .arg(exe)
        .args(["--child", spec])
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

/// The least of `repeats` counts of `spec` (what varies between runs — how long an idle
/// thread spins before it sleeps — only ever adds instructions).
pub fn least(exe: &Path, spec: &str, repeats: usize) -> u64 {
    (0..repeats)
        .map(|_| count(exe, spec))
        .min()
        .expect("at least one run")
}

/// Instructions per operation: the difference of two counts over the `ops` between them.
pub fn per_op(larger: u64, smaller: u64, ops: u64) -> f64 {
    (larger as f64 - smaller as f64) / ops as f64
}

/// Holds a worker in the first task until every task is submitted, so that the submitter and
/// the worker never run at the same time and nobody spins or sleeps on an empty or full queue.
pub struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
}

/// The gate of a child's workload.
pub static GATE: Gate = Gate {
    open: Mutex::new(false),
    opened: Condvar::new(),
};

impl Gate {
    pub fn wait(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.opened.wait(open).unwrap();
        }
    }

    pub fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    options: Options,
    /// Internal: perform one workload for valgrind to count.
    #[arg(long, hide = true)]
    child: Option<String>,
}

/// The `main` of a benchmark binary whose instructions valgrind counts. Run by valgrind with
/// `--child SPEC`, it performs the one workload SPEC names (`child`); otherwise, if the
/// instruction counts are wanted, `count` takes them — the least of `repeats` runs each, one in
/// quick mode — and the records are written.
pub fn main(
    repeats: usize,
    count: impl FnOnce(&mut Records, usize),
    child: impl FnOnce(&str),
) -> ExitCode {
    let cli = Cli::parse();
    if let Some(spec) = cli.child {
        child(&spec);
        return ExitCode::SUCCESS;
    }
    let options = cli.options;
    let mut records = Records::default();
    if options.wants("instructions") {
        count(&mut records, options.pick(1, repeats));
    }
    match records.write(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("cannot write the records: {err}");
            ExitCode::FAILURE
        }
    }
}
