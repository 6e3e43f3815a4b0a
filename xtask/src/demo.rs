//! `cargo xtask demo`: the project's main job. Installs what is missing, builds the demo
//! (`web/demo`, on foreman-wasm) into `web/pkg/`, and serves `web/` on
//! <http://127.0.0.1:8080> with cross-origin isolation until Ctrl-C.

use anyhow::{bail, Result};

use crate::serve;
use crate::setup::{self, Need};
use crate::util::step;
use crate::web::{self, DEMO};

/// Options of `cargo xtask demo`.
#[derive(clap::Args)]
pub struct Args {
    /// The port to serve on (on 127.0.0.1).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Serve `web/` as it is, without installing or building anything.
    #[arg(long)]
    no_build: bool,
}

pub fn run(args: Args) -> Result<()> {
    if args.no_build {
        if !DEMO.module().exists() {
            bail!("web/pkg/ is not built yet: run `cargo xtask demo` without --no-build once");
        }
    } else {
        step("setup");
        let nightly = setup::ensure_nightly(Need {
            wasm_tools: true,
            npm: true,
            ..Need::default()
        })?;
        web::build(&nightly, DEMO)?;
    }
    step("serving web/");
    serve::until_ctrl_c(&DEMO.page_dir(), args.port, |addr| {
        println!("\n  foreman demo: http://{addr}/\n");
        println!(
            "  Open it in a recent Chromium, Chrome, Edge or Firefox. Ctrl-C stops the server."
        );
    })?;
    println!("\nstopped");
    Ok(())
}
