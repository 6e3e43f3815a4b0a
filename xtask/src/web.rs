//! Building the browser apps: the wasm workspace (`wasm/`: the `foreman-wasm` library, its
//! example app `wasm/examples/words`, and the demo `web/demo`) compiled by the second
//! toolchain, each app's module turned into ES-module glue by `wasm-bindgen --target web` and
//! shrunk by `wasm-opt` (npm `binaryen`). The wasm workspace is not a member of the root
//! workspace: it only builds for wasm32 with shared memory (see `wasm/.cargo/config.toml`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::setup::{npm_bin, tools_bin};
use crate::toolchain::Nightly;
use crate::util::{self, exec, root, step};

/// An app of the wasm workspace that a page loads.
#[derive(Debug, Clone, Copy)]
pub struct App {
    /// Its cargo package.
    pub package: &'static str,
    /// Its library's name (the module is `<lib>_bg.wasm`, the glue `<lib>.js`).
    pub lib: &'static str,
    /// Its page's directory, relative to the repository (the glue goes to `pkg/` there).
    pub page: &'static str,
}

/// The live demo: `web/demo`, its page `web/`.
pub const DEMO: App = App {
    package: "foreman-demo",
    lib: "foreman_demo",
    page: "web",
};

/// foreman-wasm's example app: `wasm/examples/words`, its page beside it.
pub const WORDS: App = App {
    package: "foreman-words",
    lib: "foreman_words",
    page: "wasm/examples/words",
};

impl App {
    /// The page's directory.
    pub fn page_dir(&self) -> PathBuf {
        root().join(self.page)
    }

    /// Where the glue and the module go.
    pub fn pkg_dir(&self) -> PathBuf {
        self.page_dir().join("pkg")
    }

    /// The optimized module the page loads.
    pub fn module(&self) -> PathBuf {
        self.pkg_dir().join(format!("{}_bg.wasm", self.lib))
    }
}

/// The wasm workspace's directory (its `.cargo/config.toml` sets the target and the flags, so
/// cargo must run there).
pub fn workspace_dir() -> PathBuf {
    root().join("wasm")
}

/// The wasm workspace's own target directory: its standard library is built with other flags
/// than the core's cross builds, which would otherwise rebuild each other's.
pub fn target_dir() -> PathBuf {
    util::target_dir().join("wasm")
}

/// Makes `cmd`, already pointed at the second toolchain, run in the wasm workspace with its
/// [`target_dir`] and the project's tools (wasm-bindgen and its test runner) on PATH.
fn in_workspace(cmd: &mut Command) {
    cmd.current_dir(workspace_dir());
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

/// `cargo` of the second toolchain, run in the wasm workspace.
pub fn cargo(nightly: &Nightly) -> Command {
    let mut cmd = nightly.cargo();
    in_workspace(&mut cmd);
    cmd
}

/// The module's size before and after `wasm-opt`.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub before: u64,
    pub after: u64,
}

/// Builds `app` for its page: a release build, `wasm-bindgen --target web` into its `pkg/`,
/// then `wasm-opt -O`. Prints and returns the module's size before and after.
pub fn build(nightly: &Nightly, app: App) -> Result<Sizes> {
    step(format!(
        "building {} ({}), wasm-bindgen, wasm-opt",
        app.package,
        nightly.describe()
    ));
    exec(cargo(nightly).args(["build", "--release", "-p", app.package]))?;
    let wasm_bindgen = tools_bin().join("wasm-bindgen");
    if !wasm_bindgen.exists() {
        bail!(
            "{} is missing: run `cargo xtask setup`",
            wasm_bindgen.display()
        );
    }
    let compiled = target_dir()
        .join("wasm32-unknown-unknown")
        .join("release")
        .join(format!("{}.wasm", app.lib));
    exec(
        Command::new(wasm_bindgen)
            .args(["--target", "web", "--no-typescript", "--out-dir"])
            .arg(app.pkg_dir())
            .arg(&compiled),
    )?;
    let module = app.module();
    let before = size(&module)?;
    optimize(&module)?;
    let sizes = Sizes {
        before,
        after: size(&module)?,
    };
    println!(
        "{}: {} KiB before wasm-opt, {} KiB after ({:.0} %)",
        module.display(),
        sizes.before / 1024,
        sizes.after / 1024,
        100.0 * sizes.after as f64 / sizes.before as f64
    );
    Ok(sizes)
}

/// `wasm-opt -O` in place, with npm's binaryen (Debian's binaryen 108 breaks shared-memory
/// modules). The module's features section says which proposals it uses.
fn optimize(module: &Path) -> Result<()> {
    let wasm_opt = npm_bin("wasm-opt");
    if !wasm_opt.exists() {
        bail!("{} is missing: run `cargo xtask setup`", wasm_opt.display());
    }
    let optimized = module.with_extension("opt.wasm");
    exec(
        Command::new(wasm_opt)
            .arg(module)
            .args([
                "-O",
                "--enable-threads",
                "--enable-bulk-memory",
                "--enable-mutable-globals",
                "-o",
            ])
            .arg(&optimized),
    )?;
    std::fs::rename(&optimized, module)
        .with_context(|| format!("cannot replace {}", module.display()))
}

fn size(path: &Path) -> Result<u64> {
    Ok(std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len())
}
