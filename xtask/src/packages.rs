//! The publishable crates: what `cargo publish` would upload, and the docs docs.rs would build.
//!
//! A crate is publishable when its manifest does not say `publish = false`. Each one is found
//! with `cargo metadata`, in both workspaces — the root one (built by stable) and the wasm one
//! (`wasm/`, built by the second toolchain for wasm32 with shared memory) — so a new crate is
//! checked without editing this file:
//!
//! 1. `cargo package` builds the `.crate` and compiles it from its own contents (so a file
//!    missing from `include` fails here, not for the first user); a warning while packaging
//!    fails the check; the package must hold its README and both license files, and its size
//!    is printed. A crate that depends on another of ours is verified against that one's
//!    local source (a `patch` of crates.io), as it will be once both are published.
//! 2. `cargo doc` with `-D warnings`, with the features, targets and flags docs.rs will use
//!    (the manifest's `[package.metadata.docs.rs]`): as docs.rs does, with the second
//!    toolchain and its `rustdoc-args` (`--cfg docsrs`: feature badges on gated items need
//!    nightly's `doc_cfg`); and, for the root workspace, with stable as a user would.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::toolchain::Nightly;
use crate::util::{cargo, display, exec, output, target_dir, Counts};
use crate::web;

/// What `cargo metadata` says of a package (the fields used here).
#[derive(Debug, Deserialize)]
struct Package {
    name: String,
    version: String,
    /// `None`: publishable to any registry; `Some([])`: `publish = false`.
    publish: Option<Vec<String>>,
    #[serde(default)]
    metadata: Option<Metadata>,
}

/// `[package.metadata]`: TOML's dotted key `docs.rs` is a table `docs` holding a table `rs`.
#[derive(Debug, Default, Deserialize)]
struct Metadata {
    #[serde(default)]
    docs: Option<Docs>,
}

#[derive(Debug, Default, Deserialize)]
struct Docs {
    #[serde(default)]
    rs: Option<DocsRs>,
}

/// `[package.metadata.docs.rs]`.
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
struct DocsRs {
    #[serde(default)]
    features: Vec<String>,
    #[serde(default)]
    all_features: bool,
    #[serde(default)]
    no_default_features: bool,
    #[serde(default)]
    rustdoc_args: Vec<String>,
    #[serde(default)]
    rustc_args: Vec<String>,
    #[serde(default)]
    cargo_args: Vec<String>,
    #[serde(default)]
    targets: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Workspace {
    packages: Vec<Package>,
}

/// The files every package must hold.
const REQUIRED_FILES: [&str; 4] = ["Cargo.toml", "README.md", "LICENSE-MIT", "LICENSE-APACHE"];

/// The two workspaces and how their cargo runs.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Home {
    /// The root workspace: stable cargo.
    Root,
    /// `wasm/`: the second toolchain, wasm32 with shared memory.
    Wasm,
}

impl Home {
    /// A cargo command in this workspace.
    fn cargo(self, nightly: &Nightly) -> Command {
        match self {
            Home::Root => cargo(),
            Home::Wasm => web::cargo(nightly),
        }
    }
}

/// Our crates that others depend on before they are on crates.io: name and directory.
const LOCAL_DEPENDENCIES: [(&str, &str); 1] = [("foreman-rt", "core")];

/// The suite: package and document every publishable crate of both workspaces.
pub fn suite(nightly: &Nightly) -> Result<Counts> {
    let mut counts = Counts::default();
    let mut found = 0;
    for home in [Home::Root, Home::Wasm] {
        let packages = publishable(home, nightly)?;
        found += packages.len();
        for package in &packages {
            counts += Counts::one(check_package(home, nightly, package));
            let docs = package
                .metadata
                .as_ref()
                .and_then(|m| m.docs.as_ref()?.rs.clone())
                .unwrap_or_default();
            if home == Home::Root {
                counts += Counts::one(check_docs(home, package, &docs, None));
            }
            counts += Counts::one(check_docs(home, package, &docs, Some(nightly)));
        }
    }
    if found == 0 {
        bail!("no publishable crate found: every manifest says `publish = false`?");
    }
    Ok(counts)
}

/// A workspace's publishable packages.
fn publishable(home: Home, nightly: &Nightly) -> Result<Vec<Package>> {
    let out = output(
        home.cargo(nightly)
            .args(["metadata", "--no-deps", "--format-version", "1"]),
    )?;
    let workspace: Workspace = serde_json::from_str(&out).context("reading cargo metadata")?;
    Ok(workspace
        .packages
        .into_iter()
        .filter(|p| {
            p.publish
                .as_ref()
                .is_none_or(|registries| !registries.is_empty())
        })
        .collect())
}

/// `--config` arguments that point crates.io's name for each of our unpublished crates at its
/// source here.
fn patch_local_dependencies() -> Vec<String> {
    LOCAL_DEPENDENCIES
        .iter()
        .flat_map(|(name, dir)| {
            let path = crate::util::root().join(dir);
            [
                "--config".to_string(),
                format!(
                    "patch.crates-io.{name}.path={:?}",
                    path.display().to_string()
                ),
            ]
        })
        .collect()
}

/// `cargo package`: clean, complete, and how big.
fn check_package(home: Home, nightly: &Nightly, package: &Package) -> Result<()> {
    // `--allow-dirty`: the check is about what the package holds, not whether the work tree
    // is committed (CI runs on a clean clone either way).
    let mut list = home.cargo(nightly);
    list.args(["package", "--allow-dirty", "--list", "-p", &package.name]);
    let files = output(&mut list)?;
    for required in REQUIRED_FILES {
        if !files.lines().any(|line| line == required) {
            bail!("the package of {} lacks {required}", package.name);
        }
    }
    let mut build = home.cargo(nightly);
    build.args(["package", "--allow-dirty", "-p", &package.name]);
    if home == Home::Wasm {
        build.args(patch_local_dependencies());
    }
    println!("$ {}", display(&build));
    let out = build
        .output()
        .with_context(|| format!("cannot start `{}`", display(&build)))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprint!("{stderr}");
    if !out.status.success() {
        bail!("`{}` failed ({})", display(&build), out.status);
    }
    // Warnings while packaging (the manifest, the files) fail; the verifying build's own
    // (unstable target features of the wasm build, say) belong to other suites.
    let warnings: Vec<&str> = stderr
        .lines()
        .take_while(|line| !line.trim_start().starts_with("Verifying"))
        .filter(|line| line.starts_with("warning"))
        .collect();
    if !warnings.is_empty() {
        bail!(
            "packaging {} warns; fix the manifest: {}",
            package.name,
            warnings.join(" | ")
        );
    }
    let crate_file = crate_path(home, package);
    let size = std::fs::metadata(&crate_file)
        .with_context(|| format!("reading {}", crate_file.display()))?
        .len();
    println!(
        "package {} {}: {} files, {size} bytes ({:.1} KiB) compressed",
        package.name,
        package.version,
        files.lines().count(),
        size as f64 / 1024.0
    );
    Ok(())
}

/// Where `cargo package` leaves the `.crate`.
fn crate_path(home: Home, package: &Package) -> PathBuf {
    let target = match home {
        Home::Root => target_dir(),
        Home::Wasm => web::target_dir(),
    };
    target
        .join("package")
        .join(format!("{}-{}.crate", package.name, package.version))
}

/// `cargo doc -D warnings` with docs.rs's features: with stable (`nightly: None`), or as
/// docs.rs builds it: the second toolchain, docs.rs's targets, `cargo-args`, `rustc-args`
/// (as `RUSTFLAGS`) and `rustdoc-args` (`--cfg docsrs`).
fn check_docs(
    home: Home,
    package: &Package,
    docs: &DocsRs,
    nightly: Option<&Nightly>,
) -> Result<()> {
    let mut cmd = match (home, nightly) {
        (Home::Root, Some(nightly)) => nightly.cargo(),
        (Home::Wasm, Some(nightly)) => web::cargo(nightly),
        (_, None) => cargo(),
    };
    cmd.args(["doc", "--no-deps", "-p", &package.name]);
    cmd.args(feature_args(docs));
    let mut rustdoc_flags = vec!["-D".to_string(), "warnings".to_string()];
    if nightly.is_some() {
        for target in &docs.targets {
            cmd.args(["--target", target]);
        }
        cmd.args(&docs.cargo_args);
        if !docs.rustc_args.is_empty() {
            cmd.env("RUSTFLAGS", docs.rustc_args.join(" "));
        }
        rustdoc_flags.extend(docs.rustdoc_args.iter().cloned());
        // Its own directory: docs built with `--cfg docsrs` must not be mistaken for the
        // others.
        cmd.env("CARGO_TARGET_DIR", Nightly::target_dir().join("docsrs"));
    }
    cmd.env("RUSTDOCFLAGS", rustdoc_flags.join(" "));
    exec(&mut cmd)
}

/// The cargo arguments that select docs.rs's features.
fn feature_args(docs: &DocsRs) -> Vec<String> {
    let mut args = Vec::new();
    if docs.all_features {
        args.push("--all-features".to_string());
    }
    if docs.no_default_features {
        args.push("--no-default-features".to_string());
    }
    if !docs.features.is_empty() {
        args.push("--features".to_string());
        args.push(docs.features.join(","));
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_publishability_and_docs_rs_metadata() {
        let json = r#"{"packages": [
            {"name": "a", "version": "0.1.0", "publish": null,
             "metadata": {"docs": {"rs": {"features": ["std"], "rustdoc-args": ["--cfg", "docsrs"]}}}},
            {"name": "b", "version": "0.0.0", "publish": [], "metadata": null}
        ]}"#;
        let workspace: Workspace = serde_json::from_str(json).unwrap();
        let a = &workspace.packages[0];
        assert!(a.publish.is_none());
        let docs = a
            .metadata
            .as_ref()
            .unwrap()
            .docs
            .as_ref()
            .unwrap()
            .rs
            .clone()
            .unwrap();
        assert_eq!(feature_args(&docs), ["--features", "std"]);
        assert_eq!(docs.rustdoc_args, ["--cfg", "docsrs"]);
        assert_eq!(workspace.packages[1].publish.as_deref(), Some(&[][..]));
    }

    #[test]
    fn all_features_and_no_default_features_are_passed_on() {
        let docs = DocsRs {
            all_features: true,
            no_default_features: true,
            ..DocsRs::default()
        };
        assert_eq!(
            feature_args(&docs),
            ["--all-features", "--no-default-features"]
        );
    }
}
