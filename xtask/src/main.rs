//! `cargo xtask`: the project's command line (the alias lives in `.cargo/config.toml`).
//!
//! | command | does |
//! |---|---|
//! | `cargo xtask setup` | installs what is missing, idempotently, printing each step |
//! | `cargo xtask demo` | builds the browser demo and serves it on <http://127.0.0.1:8080> |
//! | `cargo xtask test` | every test; the last line is `N passed, N failed` |
//! | `cargo xtask bench [--quick] [--only TEXT] [--out DIR] [--publish]` | side-by-side benchmarks with verdicts → `DIR/bench.{json,md}` (`--publish`: also `docs/` and the README) |
//! | `cargo xtask qemu` | builds and runs the firmware under QEMU |

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod browser;
mod demo;
mod packages;
mod qemu;
mod serve;
mod setup;
mod test;
mod toolchain;
mod util;
mod web;

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "foreman's development commands",
    version
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install what the other commands need (second toolchain, Chromium, Firefox ESR, QEMU,
    /// valgrind, wasm-bindgen-cli, npm packages). Idempotent.
    Setup,
    /// Build the browser demo and serve it with cross-origin isolation.
    Demo(demo::Args),
    /// Run every test suite; the last line is `N passed, N failed`.
    Test(test::Args),
    /// Side-by-side benchmarks against the peers, with a verdict for every target; writes
    /// DIR/bench.json and DIR/bench.md.
    Bench(bench::Args),
    /// Build the firmware for both boards, run it under QEMU, check its output, and print its
    /// footprint with and without foreman.
    Qemu,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Setup => setup::ensure(setup::Need::everything()),
        Command::Demo(args) => demo::run(args),
        Command::Test(args) => test::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Qemu => qemu::run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
