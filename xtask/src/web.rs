//! Building the browser apps: the wasm workspace (`wasm/`: the `foreman-wasm` library, its
//! example app `wasm/examples/words`, and the demo `web/demo`), each app built by wasm-pack
//! with the second toolchain: compiled, turned into ES-module glue (`--target web`) and
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
    /// Its crate's directory, relative to the repository.
    pub dir: &'static str,
    /// Its library's name (the module is `<lib>_bg.wasm`, the glue `<lib>.js`).
    pub lib: &'static str,
    /// Its page's directory, relative to the repository (the glue goes to `pkg/` there).
    pub page: &'static str,
}

/// The live demo: `web/demo`, its page `web/`.
pub const DEMO: App = App {
    package: "foreman-demo",
    dir: "web/demo",
    lib: "foreman_demo",
    page: "web",
};

/// foreman-wasm's example app: `wasm/examples/words`, its page beside it.
pub const WORDS: App = App {
    package: "foreman-words",
    dir: "wasm/examples/words",
    lib: "foreman_words",
    page: "wasm/examples/words",
};

impl App {
    /// The crate's directory.
    pub fn crate_dir(&self) -> PathBuf {
        root().join(self.dir)
    }

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
    prepend_path(cmd, &tools_bin());
}

/// `cargo` of the second toolchain, run in the wasm workspace.
pub fn cargo(nightly: &Nightly) -> Command {
    let mut cmd = nightly.cargo();
    in_workspace(&mut cmd);
    cmd
}

/// The module's size as compiled and as served (after wasm-bindgen and wasm-opt).
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub before: u64,
    pub after: u64,
}

/// Builds `app` for its page with wasm-pack: a release build with the wasm workspace's
/// configuration (shared memory), `wasm-bindgen --target web` into the page's `pkg/`, and
/// `wasm-opt` (npm's binaryen, which wasm-pack finds on PATH; Debian's binaryen 108 breaks
/// shared-memory modules). Prints and returns the module's size before and after.
pub fn build(nightly: &Nightly, app: App) -> Result<Sizes> {
    step(format!(
        "building {} with wasm-pack ({})",
        app.package,
        nightly.describe()
    ));
    let wasm_pack = tools_bin().join("wasm-pack");
    let wasm_opt = npm_bin("wasm-opt");
    for tool in [&wasm_pack, &tools_bin().join("wasm-bindgen"), &wasm_opt] {
        if !tool.exists() {
            bail!("{} is missing: run `cargo xtask setup`", tool.display());
        }
    }
    let mut cmd = Command::new(wasm_pack);
    nightly.configure(&mut cmd);
    in_workspace(&mut cmd);
    // wasm-pack finds wasm-bindgen (the version the app pins) and wasm-opt on PATH, and so
    // downloads nothing.
    prepend_path(&mut cmd, wasm_opt.parent().expect("a file in a directory"));
    cmd.arg("build")
        .arg(app.crate_dir())
        .args([
            "--target",
            "web",
            "--release",
            // The sysroot check fails for a toolchain under /usr; the build itself is fine.
            "--mode",
            "force",
            "--no-typescript",
            "--out-dir",
        ])
        .arg(app.pkg_dir())
        // wasm-pack runs cargo in the app's directory, outside `wasm/`, where cargo would not
        // find the workspace's configuration by itself.
        .arg("--")
        .arg("--config")
        .arg(workspace_dir().join(".cargo").join("config.toml"));
    exec(&mut cmd)?;
    let compiled = target_dir()
        .join("wasm32-unknown-unknown")
        .join("release")
        .join(format!("{}.wasm", app.lib));
    let sizes = Sizes {
        before: size(&compiled)?,
        after: size(&app.module())?,
    };
    println!(
        "{}: {} KiB as compiled, {} KiB after wasm-bindgen and wasm-opt ({:.0} %)",
        app.module().display(),
        sizes.before / 1024,
        sizes.after / 1024,
        100.0 * sizes.after as f64 / sizes.before as f64
    );
    Ok(sizes)
}

/// Puts `dir` first on `cmd`'s PATH (as configured so far, or inherited).
fn prepend_path(cmd: &mut Command, dir: &Path) {
    let configured = cmd
        .get_envs()
        .find(|(key, _)| *key == "PATH")
        .and_then(|(_, value)| value.map(OsString::from))
        .or_else(|| std::env::var_os("PATH"))
        .unwrap_or_default();
    let mut path = vec![dir.to_path_buf()];
    path.extend(std::env::split_paths(&configured));
    if let Ok(joined) = std::env::join_paths(path) {
        cmd.env("PATH", joined);
    }
}

fn size(path: &Path) -> Result<u64> {
    Ok(std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len())
}
