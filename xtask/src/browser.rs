//! The browser test suites of `cargo xtask test`: the wasm crate's format and lints, its
//! tests (wasm-bindgen-test in headless Chromium), and the end-to-end tests of the page
//! (Playwright driving Debian's Chromium against `web/` served with cross-origin isolation).
//!
//! Nothing here is ever skipped: if Chromium or its driver cannot start, the suite fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::setup::tools_bin;
use crate::toolchain::Nightly;
use crate::util::{cargo, check, root, run_tests, Counts};
use crate::{serve, web};

/// Debian's Chromium and its WebDriver.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Chromium's flags for a headless run as root on a machine without a network.
pub const CHROMIUM_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// Where the end-to-end tests write their screenshots (the README points there).
pub fn screenshots_dir() -> PathBuf {
    root().join("target").join("screenshots")
}

/// `cargo fmt --check` and `cargo clippy -D warnings` on the wasm crate (one check each).
pub fn lint(nightly: &Nightly) -> Result<Counts> {
    let mut counts =
        check(cargo().args(["fmt", "--manifest-path", "wasm/Cargo.toml", "--", "--check"]));
    counts += check(web::cargo(nightly).args([
        "clippy",
        "--release",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]));
    Ok(counts)
}

/// Fails unless Chromium runs.
fn require_chromium() -> Result<()> {
    for program in [CHROMIUM, CHROMEDRIVER] {
        let out = Command::new(program)
            .arg("--version")
            .output()
            .with_context(|| format!("cannot run {program}: the browser tests need it (`cargo xtask setup` installs it)"))?;
        anyhow::ensure!(
            out.status.success(),
            "{program} --version failed ({}): the browser tests need a working Chromium",
            out.status
        );
    }
    Ok(())
}

/// The wasm crate's tests, in a dedicated Web Worker of headless Chromium (wasm-bindgen's
/// test runner, through ChromeDriver).
pub fn wasm_tests(nightly: &Nightly) -> Result<Counts> {
    require_chromium()?;
    let capabilities = web::target_dir().join("webdriver.json");
    write_capabilities(&capabilities)?;
    let mut cmd = web::cargo(nightly);
    cmd.args(["test", "--release"])
        .env(
            "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER",
            tools_bin().join("wasm-bindgen-test-runner"),
        )
        .env("CHROMEDRIVER", CHROMEDRIVER)
        .env("WASM_BINDGEN_TEST_WEBDRIVER_JSON", &capabilities)
        .env("WASM_BINDGEN_TEST_TIMEOUT", "120");
    run_tests(&mut cmd)
}

/// ChromeDriver's capabilities: Debian's Chromium with the flags above (the runner adds its
/// own `headless` and `no-sandbox`).
fn write_capabilities(path: &Path) -> Result<()> {
    let capabilities = serde_json::json!({
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": CHROMIUM_ARGS.iter().map(|arg| arg.trim_start_matches("--")).collect::<Vec<_>>(),
        }
    });
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, serde_json::to_vec_pretty(&capabilities)?)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Builds the page, serves it on a free port, and runs the Playwright tests against it.
pub fn end_to_end(nightly: &Nightly) -> Result<Counts> {
    require_chromium()?;
    web::build(nightly)?;
    let server = serve::Background::start(&web::web_dir())?;
    let project = root().join("tests").join("browser");
    let playwright = project.join("node_modules").join(".bin").join("playwright");
    anyhow::ensure!(
        playwright.exists(),
        "{} is missing: run `cargo xtask setup`",
        playwright.display()
    );
    let shots = screenshots_dir();
    std::fs::create_dir_all(&shots)?;
    let mut cmd = Command::new(playwright);
    cmd.args(["test", "--reporter=list"])
        .current_dir(&project)
        .env("FOREMAN_URL", server.url())
        .env("FOREMAN_SCREENSHOTS", &shots)
        .env("FOREMAN_CHROMIUM", CHROMIUM)
        .env("FOREMAN_CHROMIUM_ARGS", CHROMIUM_ARGS.join(" "));
    let counts = run_tests(&mut cmd);
    println!("screenshots: {}", shots.display());
    drop(server);
    counts
}
