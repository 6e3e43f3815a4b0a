//! `cargo xtask demo`: the project's main job.
//!
//! Until the browser demo exists, this runs the native seed example (three worker threads,
//! ten tasks) and says so.

use anyhow::Result;

use crate::util::{cargo, exec, step};

/// Options of `cargo xtask demo`.
#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> Result<()> {
    step("the browser demo is not built yet: running the native seed example instead");
    exec(cargo().args([
        "run",
        "--quiet",
        "-p",
        "foreman",
        "--example",
        "seed",
        "--features",
        "std",
    ]))
}
