//! The publishable crates: what `cargo publish` would upload, and the docs docs.rs would build.
//!
//! A crate is publishable when its manifest does not say `publish = false`. For each one,
//! found with `cargo metadata` so a new crate is checked without editing this file:
//!
//! 1. `cargo package` builds the `.crate` and compiles it from its own contents (so a file
//!    missing from `include` fails here, not for the first user); any warning fails the check;
//!    the package must hold its README and both license files, and its size is printed.
//! 2. `cargo doc` with `-D warnings`, with the features docs.rs will use (the manifest's
//!    `[package.metadata.docs.rs]`), twice: with the stable toolchain as a user would, and
//!    with the second toolchain and `--cfg docsrs` as docs.rs does (feature badges on gated
//!    items need its nightly `doc_cfg`).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::toolchain::Nightly;
use crate::util::{cargo, display, exec, output, target_dir, Counts};

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
}

#[derive(Debug, Deserialize)]
struct Workspace {
    packages: Vec<Package>,
}

/// The files every package must hold.
const REQUIRED_FILES: [&str; 4] = ["Cargo.toml", "README.md", "LICENSE-MIT", "LICENSE-APACHE"];

/// The suite: package and document every publishable crate of the workspace.
pub fn suite(nightly: &Nightly) -> Result<Counts> {
    let packages = publishable()?;
    if packages.is_empty() {
        bail!("no publishable crate found: every manifest says `publish = false`?");
    }
    let mut counts = Counts::default();
    for package in &packages {
        counts += Counts::one(check_package(package));
        let docs = package
            .metadata
            .as_ref()
            .and_then(|m| m.docs.as_ref()?.rs.clone())
            .unwrap_or_default();
        counts += Counts::one(check_docs(package, &docs, None));
        counts += Counts::one(check_docs(package, &docs, Some(nightly)));
    }
    Ok(counts)
}

/// The workspace's publishable packages.
fn publishable() -> Result<Vec<Package>> {
    let out = output(cargo().args(["metadata", "--no-deps", "--format-version", "1"]))?;
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

/// `cargo package`: clean, complete, and how big.
fn check_package(package: &Package) -> Result<()> {
    // `--allow-dirty`: the check is about what the package holds, not whether the work tree
    // is committed (CI runs on a clean clone either way).
    let mut list = cargo();
    list.args(["package", "--allow-dirty", "--list", "-p", &package.name]);
    let files = output(&mut list)?;
    for required in REQUIRED_FILES {
        if !files.lines().any(|line| line == required) {
            bail!("the package of {} lacks {required}", package.name);
        }
    }
    let mut build = cargo();
    build.args(["package", "--allow-dirty", "-p", &package.name]);
    println!("$ {}", display(&build));
    let out = build
        .output()
        .with_context(|| format!("cannot start `{}`", display(&build)))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprint!("{stderr}");
    if !out.status.success() {
        bail!("`{}` failed ({})", display(&build), out.status);
    }
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("warning"))
        .collect();
    if !warnings.is_empty() {
        bail!(
            "packaging {} warns; fix the manifest: {}",
            package.name,
            warnings.join(" | ")
        );
    }
    let crate_file = crate_path(package);
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
fn crate_path(package: &Package) -> PathBuf {
    target_dir()
        .join("package")
        .join(format!("{}-{}.crate", package.name, package.version))
}

/// `cargo doc -D warnings` with docs.rs's features: with stable (`nightly: None`), or with the
/// second toolchain and docs.rs's `rustdoc-args` (`--cfg docsrs`).
fn check_docs(package: &Package, docs: &DocsRs, nightly: Option<&Nightly>) -> Result<()> {
    let mut cmd = match nightly {
        Some(nightly) => nightly.cargo(),
        None => cargo(),
    };
    cmd.args(["doc", "--no-deps", "-p", &package.name]);
    cmd.args(feature_args(docs));
    let mut rustdoc_flags = vec!["-D".to_string(), "warnings".to_string()];
    if nightly.is_some() {
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
