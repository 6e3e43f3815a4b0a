//! `cargo xtask setup`: installs what is missing, idempotently, saying what it does.
//!
//! Where it can (root on Debian) it installs system packages with apt; elsewhere it names
//! exactly what to install and stops. Cargo tools go to `target/tools` (never the user's
//! `~/.cargo/bin`), npm packages to their project's `node_modules`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Result};

use crate::toolchain::{Nightly, INSTALL_HINT};
use crate::util::{exec, output, root, step, which};

/// wasm-bindgen's version: the apps (the demo, the example app) pin exactly this, and the CLI
/// must match it.
pub const WASM_BINDGEN_VERSION: &str = "0.2.130";
/// wasm-pack's version (verified to work with the above): it builds the apps.
pub const WASM_PACK_VERSION: &str = "0.15.1";
/// The npm project of the browser tooling: the test drivers (playwright-core for Chromium,
/// puppeteer-core for Firefox) and binaryen's `wasm-opt`.
const NPM_PROJECT: &str = "tests/browser";

/// What a command needs installed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Need {
    /// A toolchain with the standard library's source (wasm32, bare metal).
    pub nightly: bool,
    /// wasm-pack and wasm-bindgen-cli (and its test runner).
    pub wasm_tools: bool,
    /// Chromium and ChromeDriver, and Firefox ESR.
    pub browsers: bool,
    /// qemu-system-arm.
    pub qemu: bool,
    /// The npm packages of the browser tooling (test drivers, `wasm-opt`).
    pub npm: bool,
    /// Python 3, which runs the Python seed (`tests/seed/seed.py`).
    pub python: bool,
    /// valgrind, which counts the benchmarks' instructions per operation.
    pub valgrind: bool,
}

impl Need {
    /// Everything the project's commands use.
    pub fn everything() -> Need {
        Need {
            nightly: true,
            wasm_tools: true,
            browsers: true,
            qemu: true,
            npm: true,
            python: true,
            valgrind: true,
        }
    }
}

/// `target/tools`, the `cargo install --root` of the project's tools.
fn tools_root() -> PathBuf {
    root().join("target").join("tools")
}

/// `target/tools/bin`, where the cargo-installed tools live.
pub fn tools_bin() -> PathBuf {
    tools_root().join("bin")
}

/// The npm project of the browser tooling.
pub fn npm_project() -> PathBuf {
    root().join(NPM_PROJECT)
}

/// A program an npm package of [`npm_project`] installs (`node_modules/.bin/<name>`).
pub fn npm_bin(name: &str) -> PathBuf {
    npm_project().join("node_modules").join(".bin").join(name)
}

/// Installs what `need` asks for and is missing.
pub fn ensure(need: Need) -> Result<()> {
    install(need).map(drop)
}

/// Installs what `need` asks for and is missing, and the second toolchain, which it returns.
pub fn ensure_nightly(need: Need) -> Result<Nightly> {
    let nightly = install(Need {
        nightly: true,
        ..need
    })?;
    Ok(nightly.expect("`install` fails unless it finds the second toolchain it was asked for"))
}

/// Installs what `need` asks for and is missing; returns the second toolchain if `need`
/// asks for it (and fails if it is still not usable then).
fn install(need: Need) -> Result<Option<Nightly>> {
    let mut apt = Apt::new();
    let mut missing: Vec<String> = Vec::new();

    // Detected once; again only if apt had to install it.
    let nightly = if need.nightly {
        Nightly::detect()
    } else {
        None
    };
    if need.nightly {
        match &nightly {
            Some(found) => println!("ok: second toolchain: {}", found.describe()),
            None if apt.usable() => apt.want(&[
                "rustc-web",
                "cargo-web",
                "rust-web-src",
                "rust-web-llvm",
                "lld-22",
            ]),
            None => missing.push(INSTALL_HINT.to_string()),
        }
        // Clippy of the second toolchain lints the wasm crate (rustup's nightly has it).
        let debian_clippy = Path::new("/usr/bin/cargo-clippy").exists();
        match nightly {
            Some(Nightly::Rustup) => {}
            _ if debian_clippy => println!("ok: clippy for Debian's rustc-web"),
            _ if apt.usable() => apt.want(&["rust-web-clippy"]),
            _ => missing.push(
                "clippy for the second toolchain (Debian: `apt-get install rust-web-clippy`; \
                 rustup: `rustup component add clippy --toolchain nightly`)"
                    .into(),
            ),
        }
    }
    if need.browsers {
        apt.provide(
            Path::new("/usr/bin/chromium").exists() && Path::new("/usr/bin/chromedriver").exists(),
            "Chromium and ChromeDriver at /usr/bin/chromium and /usr/bin/chromedriver",
            &["chromium", "chromium-driver"],
            &mut missing,
        );
        apt.provide(
            Path::new(crate::browser::FIREFOX).exists(),
            "Firefox ESR at /usr/bin/firefox-esr",
            &["firefox-esr"],
            &mut missing,
        );
    }
    if need.qemu {
        apt.provide(
            which("qemu-system-arm").is_some(),
            "QEMU for Arm: `qemu-system-arm`",
            &["qemu-system-arm"],
            &mut missing,
        );
    }
    if need.npm {
        apt.provide(
            which("npm").is_some(),
            "Node.js 18 or newer with npm",
            &["nodejs", "npm"],
            &mut missing,
        );
    }
    if need.python {
        apt.provide(
            which("python3").is_some(),
            "Python 3 as `python3`",
            &["python3"],
            &mut missing,
        );
    }
    if need.valgrind {
        apt.provide(
            which("valgrind").is_some(),
            "valgrind (instruction counts)",
            &["valgrind"],
            &mut missing,
        );
    }
    if !missing.is_empty() {
        bail!(
            "cannot install these here (not root on Debian); please install them, then run again:\n  - {}",
            missing.join("\n  - ")
        );
    }
    apt.install()?;
    let nightly = match nightly {
        None if need.nightly => match Nightly::detect() {
            Some(installed) => Some(installed),
            None => bail!(
                "the second toolchain is still not usable after installing it; {INSTALL_HINT}"
            ),
        },
        detected => detected,
    };
    if need.wasm_tools {
        cargo_install("wasm-pack", "wasm-pack", WASM_PACK_VERSION)?;
        cargo_install("wasm-bindgen", "wasm-bindgen-cli", WASM_BINDGEN_VERSION)?;
    }
    if need.npm {
        npm_install(&npm_project())?;
    }
    Ok(nightly)
}

/// Installs `krate` at `version` into `target/tools` unless its `binary` there already
/// reports that version.
fn cargo_install(binary: &str, krate: &str, version: &str) -> Result<()> {
    let installed = tools_bin().join(binary);
    if installed.exists() {
        let reported = output(Command::new(&installed).arg("--version")).unwrap_or_default();
        if reported.split_whitespace().any(|word| word == version) {
            println!("ok: {binary} {version} in target/tools");
            return Ok(());
        }
    }
    step(format!(
        "installing {krate} {version} into target/tools (a few minutes, once)"
    ));
    // No --locked: wasm-bindgen-cli's lock file names a version the registry no longer has.
    exec(
        crate::util::cargo()
            .args(["install", "--root"])
            .arg(tools_root())
            .args([krate, "--version", version]),
    )
}

/// `npm ci` (or `npm install` without a lock file) unless `node_modules` is newer than the
/// lock file.
fn npm_install(project: &Path) -> Result<()> {
    if !project.join("package.json").exists() {
        return Ok(());
    }
    let lock = project.join("package-lock.json");
    let modules = project.join("node_modules").join(".package-lock.json");
    let fresh = match (
        lock.metadata().and_then(|m| m.modified()),
        modules.metadata().and_then(|m| m.modified()),
    ) {
        (Ok(lock), Ok(modules)) => modules >= lock,
        _ => false,
    };
    if fresh {
        println!("ok: npm packages in {}", project.display());
        return Ok(());
    }
    step(format!("installing npm packages in {}", project.display()));
    let verb = if lock.exists() { "ci" } else { "install" };
    exec(
        Command::new("npm")
            .arg(verb)
            .arg("--no-audit")
            .arg("--no-fund")
            .current_dir(project),
    )
}

/// Debian packages to install in one `apt-get` run.
struct Apt {
    usable: bool,
    packages: Vec<&'static str>,
}

impl Apt {
    fn new() -> Apt {
        let root_user = output(Command::new("id").arg("-u"))
            .map(|uid| uid.trim() == "0")
            .unwrap_or(false);
        let debian = Path::new("/etc/debian_version").exists() && which("apt-get").is_some();
        Apt {
            usable: root_user && debian,
            packages: Vec::new(),
        }
    }

    fn usable(&self) -> bool {
        self.usable
    }

    fn want(&mut self, packages: &[&'static str]) {
        self.packages.extend_from_slice(packages);
    }

    /// Says `what` is there if `present`; else wants `packages`, or, where apt cannot be used,
    /// adds `what` and the packages that provide it on Debian to `missing`.
    fn provide(
        &mut self,
        present: bool,
        what: &str,
        packages: &[&'static str],
        missing: &mut Vec<String>,
    ) {
        if present {
            println!("ok: {what}");
        } else if self.usable {
            self.want(packages);
        } else {
            missing.push(format!(
                "{what} (Debian: `apt-get install {}`)",
                packages.join(" ")
            ));
        }
    }

    fn install(&self) -> Result<()> {
        if self.packages.is_empty() {
            return Ok(());
        }
        step(format!(
            "installing Debian packages: {}",
            self.packages.join(" ")
        ));
        exec(Command::new("apt-get").args(["update", "-qq"]))?;
        exec(
            Command::new("apt-get")
                .args(["install", "-y", "-qq", "--no-install-recommends"])
                .args(&self.packages)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
    }
}
