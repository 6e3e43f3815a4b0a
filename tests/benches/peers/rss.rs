//! Peak resident memory of the dispatch benchmark: each implementation runs 1M no-op tasks
//! (200k in quick mode) on 2 workers once, alone in a fresh process (this binary, re-run with
//! `--rss-child NAME`), which then reports its peak RSS (`VmHWM`, Linux).

use std::fs;
use std::process::Command;

use crate::pools::{Impl, Work};
use crate::report::{Options, Records};

const WORKERS: usize = 2;

/// The tasks of one run.
fn tasks(options: &Options) -> u64 {
    options.pick(200_000, 1_000_000)
}

/// The process's peak resident set, in KiB, if the system tells.
fn peak_rss_kib() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// In the child: run `name`'s dispatch once and print the peak RSS.
pub fn child(options: &Options, name: &str) {
    let imp = Impl::ALL
        .into_iter()
        .find(|imp| imp.name() == name)
        .unwrap_or_else(|| panic!("no implementation called {name}"));
    imp.run(WORKERS, tasks(options), Work::NOOP);
    println!("{}", peak_rss_kib().expect("no VmHWM in /proc/self/status"));
}

pub fn run(options: &Options, records: &mut Records) {
    if peak_rss_kib().is_none() {
        eprintln!("peak RSS suite skipped: /proc/self/status has no VmHWM here");
        return;
    }
    let exe = std::env::current_exe().expect("the benchmark's own path");
    let group = format!("memory/peak-rss/dispatch-noop-{WORKERS}w");
    for imp in Impl::ALL {
        let mut cmd = Command::new(&exe);
        cmd.args(["--rss-child", imp.name()]);
        if options.quick {
            cmd.arg("--quick");
        }
        let output = cmd.output().expect("cannot re-run the benchmark binary");
        assert!(
            output.status.success(),
            "the RSS child for {} failed",
            imp.name()
        );
        let kib: f64 = String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .expect("the RSS child prints a number");
        records.push(&group, imp.name(), "peak_rss_kib", kib, false);
    }
}
