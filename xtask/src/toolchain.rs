//! The second toolchain: a Rust that can rebuild the standard library (`-Z build-std`) for
//! wasm32 with shared memory and for bare-metal targets.
//!
//! Two sources, detected in this order:
//! 1. rustup's `nightly` with the `rust-src` component (what a user installs with
//!    `rustup toolchain install nightly -c rust-src`);
//! 2. Debian's `rustc-web`/`cargo-web`/`rust-web-src` packages under `/usr` (what
//!    `cargo xtask setup` installs when it runs as root on Debian), used with
//!    `RUSTC_BOOTSTRAP=1`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{root, target_dir, which, BUILD_VARS};

/// How to tell a person to get the second toolchain.
pub const INSTALL_HINT: &str = "install a toolchain with the standard library's source: \
`rustup toolchain install nightly -c rust-src` (or, on Debian as root: \
`apt-get install rustc-web cargo-web rust-web-src rust-web-llvm lld-22`)";

/// A detected second toolchain.
#[derive(Debug, Clone)]
pub enum Nightly {
    /// rustup's nightly with rust-src.
    Rustup,
    /// Debian's toolchain under /usr.
    Debian,
}

impl Nightly {
    /// The second toolchain, if one is installed.
    pub fn detect() -> Option<Nightly> {
        if rustup_nightly_has_src() {
            return Some(Nightly::Rustup);
        }
        let debian = ["/usr/bin/rustc", "/usr/bin/cargo", "/usr/bin/rust-lld"]
            .iter()
            .all(|p| Path::new(p).exists())
            && Path::new("/usr/lib/rustlib/src/rust/library/Cargo.lock").exists();
        debian.then_some(Nightly::Debian)
    }

    /// What it is, for messages.
    pub fn describe(&self) -> &'static str {
        match self {
            Nightly::Rustup => "rustup nightly with rust-src",
            Nightly::Debian => "Debian's rustc-web under /usr (with RUSTC_BOOTSTRAP=1)",
        }
    }

    /// The target directory of this toolchain's builds (the wasm crate's have their own).
    pub fn target_dir() -> PathBuf {
        target_dir().join("xbuild")
    }

    /// Points a command (cargo, or a tool that runs cargo) at this toolchain, with its own
    /// target directory so the two toolchains never share artifacts.
    pub fn configure(&self, cmd: &mut Command) {
        for var in BUILD_VARS
            .into_iter()
            .chain(["RUSTC", "RUSTDOC", "RUSTC_WRAPPER"])
        {
            cmd.env_remove(var);
        }
        cmd.env("RUSTC_BOOTSTRAP", "1");
        cmd.env("CARGO_TARGET_DIR", Nightly::target_dir());
        match self {
            Nightly::Rustup => {
                cmd.env("RUSTUP_TOOLCHAIN", "nightly");
            }
            Nightly::Debian => {
                cmd.env_remove("RUSTUP_TOOLCHAIN");
                cmd.env("RUSTC", "/usr/bin/rustc");
                cmd.env("RUSTDOC", "/usr/bin/rustdoc");
                // Tools that run `cargo`/`rustc` by name must find Debian's first.
                let mut path = vec![PathBuf::from("/usr/bin")];
                path.extend(std::env::split_paths(
                    &std::env::var_os("PATH").unwrap_or_default(),
                ));
                cmd.env(
                    "PATH",
                    std::env::join_paths(path).unwrap_or_else(|_| OsString::from("/usr/bin")),
                );
            }
        }
    }

    /// `cargo` of this toolchain, configured, in the workspace root.
    pub fn cargo(&self) -> Command {
        let mut cmd = match self {
            Nightly::Rustup => Command::new(which("cargo").unwrap_or_else(|| "cargo".into())),
            Nightly::Debian => Command::new("/usr/bin/cargo"),
        };
        cmd.current_dir(root());
        self.configure(&mut cmd);
        cmd
    }
}

fn rustup_nightly_has_src() -> bool {
    // Without rustup on PATH, it cannot start: false.
    let Ok(out) = Command::new("rustup")
        .args(["run", "nightly", "rustc", "--print", "sysroot"])
        .output()
    else {
        return false;
    };
    if !out.status.success() {
        return false;
    }
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Path::new(&sysroot)
        .join("lib/rustlib/src/rust/library/Cargo.lock")
        .exists()
}
