//! Side-by-side benchmarks of foreman against its peers, run by `cargo xtask bench`
//! (`cargo bench -p foreman-tests --bench peers -- [--quick] [--out FILE]`).
//!
//! A purpose-built harness rather than criterion: every suite compares implementations as
//! ratios on a shared, noisy 2-core machine, so it pairs them — each round runs every
//! implementation once, back to back, in a rotating order, and the ratio is taken within the
//! round — and reports the median ratio with a bootstrap 95% interval, taking rounds until the
//! interval is narrow (the `bench-stats` crate). Load that comes and goes then hits every
//! implementation alike; criterion measures one benchmark to the end before the next, so
//! drifting load would go straight into the ratios. Latency needs percentiles of single
//! events, and peak RSS a fresh process per implementation, which criterion does not do
//! either. (Instructions per operation are the `instructions` benchmark's.)
//!
//! Suites: `queue`, `dispatch`, `latency`, `seed`, `processes`, `rss` (select with `--only`).
//!
//! The process host's workers are this binary run again: `main` lets them serve first.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

#[path = "../support/handles.rs"]
mod handles;
#[path = "../support/pools.rs"]
mod pools;
#[path = "../support/queues.rs"]
mod queues;
#[path = "../support/report.rs"]
mod report;

mod dispatch;
mod latency;
#[cfg(target_os = "linux")]
mod processes;
mod queue;
mod rss;
mod seed;
mod stats;

use report::{Options, Records};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    options: Options,
    /// Internal: run one implementation's dispatch and print the peak RSS (see `rss`).
    #[arg(long, hide = true)]
    rss_child: Option<String>,
}

fn main() -> ExitCode {
    #[cfg(target_os = "linux")]
    {
        seed::SEED.serve_if_worker();
        processes::ECHO.serve_if_worker();
    }
    let cli = Cli::parse();
    let options = cli.options;
    if let Some(name) = cli.rss_child {
        rss::child(&options, &name);
        return ExitCode::SUCCESS;
    }
    let mut records = Records::default();
    if options.wants("queue") {
        queue::run(&options, &mut records);
    }
    if options.wants("dispatch") {
        dispatch::run(&options, &mut records, Duration::from_micros(1));
    }
    if options.wants("latency") {
        latency::run(&options, &mut records);
    }
    if options.wants("seed") {
        seed::run(&options, &mut records);
    }
    #[cfg(target_os = "linux")]
    if options.wants("processes") {
        processes::run(&options, &mut records);
    }
    if options.wants("rss") {
        rss::run(&options, &mut records);
    }
    match records.write(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("cannot write the records: {err}");
            ExitCode::FAILURE
        }
    }
}
