//! Building the browser demo: the `wasm/` crate with wasm-pack into `web/pkg/`, and the
//! commands that lint and test that crate (it is not a member of the workspace: it only
//! builds for wasm32 with shared memory, with the second toolchain).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Result};

use crate::setup::tools_bin;
use crate::toolchain::Nightly;
use crate::util::{self, exec, root, step};

/// The wasm crate's directory (its `.cargo/config.toml` sets the target and the flags, so
/// cargo must run there).
pub fn crate_dir() -> PathBuf {
    root().join("wasm")
}

/// The page's directory.
pub fn web_dir() -> PathBuf {
    root().join("web")
}

/// The wasm crate's own target directory: its standard library is built with other flags
/// than the core's cross builds, which would otherwise rebuild each other's.
pub fn target_dir() -> PathBuf {
    util::target_dir().join("wasm")
}

/// Makes `cmd`, already pointed at the second toolchain, run in the wasm crate, with the
/// crate's [`target_dir`] and the project's tools (wasm-pack, wasm-bindgen) on PATH.
fn in_crate(cmd: &mut Command) {
    cmd.current_dir(crate_dir());
    cmd.env("CARGO_TARGET_DIR", target_dir());
    let configured = cmd
        .get_envs()
        .find(|(key, _)| *key == "PATH")
        .and_then(|(_, value)| value.map(OsString::from))
        .or_else(|| std::env::var_os("PATH"))
        .unwrap_or_default();
    let mut path = vec![tools_bin()];
    path.extend(std::env::split_paths(&configured));
    if let Ok(joined) = std::env::join_paths(path) {
        cmd.env("PATH", joined);
    }
}

/// `cargo` of the second toolchain, run in the wasm crate.
pub fn cargo(nightly: &Nightly) -> Command {
    let mut cmd = nightly.cargo();
    in_crate(&mut cmd);
    cmd
}

/// Builds the module and its JavaScript glue into `web/pkg/` (wasm-pack, `--target web`).
pub fn build(nightly: &Nightly) -> Result<()> {
    step(format!(
        "building the wasm module with wasm-pack ({})",
        nightly.describe()
    ));
    let wasm_pack = tools_bin().join("wasm-pack");
    if !wasm_pack.exists() {
        bail!(
            "{} is missing: run `cargo xtask setup`",
            wasm_pack.display()
        );
    }
    let mut cmd = Command::new(wasm_pack);
    nightly.configure(&mut cmd);
    in_crate(&mut cmd);
    cmd.args([
        "build",
        ".",
        "--target",
        "web",
        "--release",
        // wasm-pack's own check of the toolchain's targets fails for Debian's toolchain.
        "--mode",
        "force",
        "--no-typescript",
        "--out-dir",
    ])
    .arg(web_dir().join("pkg"));
    exec(&mut cmd)
}
