//! Command-line options and result records, shared by the benchmark binaries.
//!
//! Each binary writes its records to `--out` as a JSON list; `cargo xtask bench` merges them
//! into `bench.json` and renders `bench.md`.

use std::fs;
use std::path::PathBuf;

use clap::Parser;
use serde::Serialize;

/// Options of a benchmark binary (run by `cargo bench`, which adds `--bench`).
#[derive(Parser, Debug)]
pub struct Options {
    /// Few rounds and small batches: the whole run stays well under two minutes, and its
    /// intervals are too wide to decide anything.
    #[arg(long)]
    pub quick: bool,
    /// Where to write the records (a JSON list); none are written without it.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Run only the suites whose name contains this text.
    #[arg(long)]
    pub only: Option<String>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    pub bench: bool,
}

impl Options {
    /// Whether the suite called `name` is selected by `--only`.
    pub fn wants(&self, name: &str) -> bool {
        self.only.as_deref().is_none_or(|only| name.contains(only))
    }

    /// `quick` in quick mode, `full` otherwise.
    pub fn pick<T>(&self, quick: T, full: T) -> T {
        if self.quick {
            quick
        } else {
            full
        }
    }
}

/// One measured number: `impl` (foreman or a peer) in scenario `group`. The JSON contract,
/// whose other side is `Record` in `xtask/src/bench.rs` (change both together).
#[derive(Serialize, Debug, Clone)]
pub struct Record {
    pub group: String,
    #[serde(rename = "impl")]
    pub implementation: String,
    /// What was measured (`mops_per_s`, `p99_ns`, `instructions`, …), or `ratio:<metric>` for
    /// foreman's advantage over `versus` in that metric (above 1: foreman is better).
    pub metric: String,
    /// For repeated measurements, the median over rounds.
    pub value: f64,
    pub higher_is_better: bool,
    /// The 95% bootstrap interval of `value`, for repeated measurements.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<[f64; 2]>,
    /// How many paired rounds, for repeated measurements.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rounds: Option<usize>,
    /// Why the rounds stopped: `narrow`, `round cap` or `time cap`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<&'static str>,
    /// For a ratio: the implementation foreman is compared with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub versus: Option<String>,
    /// How many threads the scenario runs at once (more than the CPUs: oversubscribed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
}

impl Record {
    /// A single number.
    pub fn new(
        group: &str,
        implementation: &str,
        metric: &str,
        value: f64,
        higher_is_better: bool,
    ) -> Record {
        Record {
            group: group.to_string(),
            implementation: implementation.to_string(),
            metric: metric.to_string(),
            value,
            higher_is_better,
            interval: None,
            rounds: None,
            stop: None,
            versus: None,
            threads: None,
        }
    }
}

/// The records of one run, printed as they come.
#[derive(Default)]
pub struct Records(Vec<Record>);

impl Records {
    /// Adds a single number and prints it.
    pub fn push(
        &mut self,
        group: &str,
        implementation: &str,
        metric: &str,
        value: f64,
        higher_is_better: bool,
    ) {
        self.add(Record::new(
            group,
            implementation,
            metric,
            value,
            higher_is_better,
        ));
    }

    /// Adds a record and prints it.
    pub fn add(&mut self, record: Record) {
        let name = match &record.versus {
            Some(versus) => format!("{} ÷ {versus}", record.implementation),
            None => record.implementation.clone(),
        };
        let mut line = format!(
            "{:<30} {name:<34} {:<18} {:>14.3}",
            record.group, record.metric, record.value
        );
        if let (Some([low, high]), Some(rounds)) = (record.interval, record.rounds) {
            line += &format!(
                "  [{low:.3}, {high:.3}] {rounds} rounds ({})",
                record.stop.unwrap_or_default()
            );
        }
        println!("{line}");
        self.0.push(record);
    }

    /// Writes the records to `--out`, if given.
    pub fn write(&self, options: &Options) -> std::io::Result<()> {
        let Some(path) = &options.out else {
            return Ok(());
        };
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let json = serde_json::to_string_pretty(&self.0).map_err(std::io::Error::other)?;
        fs::write(path, json + "\n")
    }
}
