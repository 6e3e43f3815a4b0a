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
    /// Fewer tasks and repetitions: the whole run stays well under two minutes.
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

/// One measured number: `impl` (foreman or a peer) in scenario `group`.
#[derive(Serialize, Debug, Clone)]
pub struct Record {
    pub group: String,
    #[serde(rename = "impl")]
    pub implementation: String,
    pub metric: String,
    pub value: f64,
    pub higher_is_better: bool,
}

/// The records of one run, printed as they come.
#[derive(Default)]
pub struct Records(Vec<Record>);

impl Records {
    /// Adds a record and prints it.
    pub fn push(
        &mut self,
        group: &str,
        implementation: &str,
        metric: &str,
        value: f64,
        higher_is_better: bool,
    ) {
        println!("{group:<34} {implementation:<24} {metric:<16} {value:>16.3}");
        self.0.push(Record {
            group: group.to_string(),
            implementation: implementation.to_string(),
            metric: metric.to_string(),
            value,
            higher_is_better,
        });
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
