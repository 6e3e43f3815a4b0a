//! The browser suites of `cargo xtask test`: the wasm workspace's format and lints; its unit
//! tests (wasm-bindgen-test in a Web Worker of headless Chromium); and the end-to-end tests
//! of the demo page and of foreman-wasm's example app, in Chromium (driven by playwright-core)
//! and in Firefox ESR (driven by puppeteer-core over WebDriver BiDi), each page served with
//! cross-origin isolation.
//!
//! Nothing here is ever skipped: if a browser or its driver cannot start, the suite fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::serve::{self, Isolation};
use crate::setup::{npm_project, tools_bin};
use crate::toolchain::Nightly;
use crate::util::{cargo, check, root, run_tests, Counts};
use crate::web::{self, DEMO, WORDS};

/// Debian's Chromium and its WebDriver.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Debian's Firefox ESR.
pub const FIREFOX: &str = "/usr/bin/firefox-esr";
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

/// A browser the end-to-end tests run in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Browser {
    /// Debian's Chromium, driven by playwright-core.
    Chromium,
    /// Debian's Firefox ESR, driven by puppeteer-core over WebDriver BiDi.
    Firefox,
}

impl Browser {
    /// Its name for the tests (`FOREMAN_BROWSER`) and in screenshot names.
    pub fn name(self) -> &'static str {
        match self {
            Browser::Chromium => "chromium",
            Browser::Firefox => "firefox",
        }
    }

    /// Where it is installed.
    pub fn executable(self) -> &'static str {
        match self {
            Browser::Chromium => CHROMIUM,
            Browser::Firefox => FIREFOX,
        }
    }
}

/// Where the end-to-end tests write their screenshots (the README points there).
pub fn screenshots_dir() -> PathBuf {
    root().join("target").join("screenshots")
}

/// `cargo fmt --check` and `cargo clippy -D warnings` on the wasm workspace (one check each;
/// foreman-wasm's package and docs are checked with the other publishable crates', see
/// `packages`).
pub fn lint(nightly: &Nightly) -> Result<Counts> {
    let mut counts = check(cargo().args([
        "fmt",
        "--all",
        "--manifest-path",
        "wasm/Cargo.toml",
        "--",
        "--check",
    ]));
    counts += check(web::cargo(nightly).args([
        "clippy",
        "--release",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]));
    Ok(counts)
}

/// Fails unless `program --version` runs.
fn require(program: &str) -> Result<()> {
    let out = Command::new(program)
        .arg("--version")
        .output()
        .with_context(|| {
            format!(
                "cannot run {program}: the browser tests need it (`cargo xtask setup` installs it)"
            )
        })?;
    anyhow::ensure!(
        out.status.success(),
        "{program} --version failed ({}): the browser tests need it working",
        out.status
    );
    Ok(())
}

/// The wasm workspace's unit tests (the library's, the demo's), in a dedicated Web Worker of
/// headless Chromium (wasm-bindgen's test runner, through ChromeDriver).
pub fn wasm_tests(nightly: &Nightly) -> Result<Counts> {
    require(CHROMIUM)?;
    require(CHROMEDRIVER)?;
    let capabilities = web::target_dir().join("webdriver.json");
    write_capabilities(&capabilities)?;
    let mut cmd = web::cargo(nightly);
    cmd.args(["test", "--release", "--workspace"])
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

/// Builds the demo and the example app, serves their pages (and the demo's once more without
/// the isolation headers), and runs the end-to-end tests in `browser`.
pub fn end_to_end(nightly: &Nightly, browser: Browser) -> Result<Counts> {
    require(browser.executable())?;
    web::build(nightly, DEMO)?;
    web::build(nightly, WORDS)?;
    let demo = serve::Background::start(&DEMO.page_dir(), Isolation::On)?;
    let plain = serve::Background::start(&DEMO.page_dir(), Isolation::Off)?;
    let words = serve::Background::start(&WORDS.page_dir(), Isolation::On)?;
    let shots = screenshots_dir();
    std::fs::create_dir_all(&shots)?;
    let mut cmd = Command::new("node");
    cmd.args([
        "--test",
        "--test-concurrency=1",
        "--test-reporter=spec",
        "demo.test.js",
        "words.test.js",
        // The findings of the foreman-wasm review (branch review-rw): fixed ones run, an open
        // one is skipped and says why.
        "review.test.js",
        // Recycling, restart backoff, cancellation and deadlines (issue 12).
        "features.test.js",
    ])
    .current_dir(npm_project())
    .env("FOREMAN_BROWSER", browser.name())
    .env("FOREMAN_BROWSER_PATH", browser.executable())
    .env("FOREMAN_CHROMIUM_ARGS", CHROMIUM_ARGS.join(" "))
    .env("FOREMAN_DEMO_URL", demo.url())
    .env("FOREMAN_PLAIN_URL", plain.url())
    .env("FOREMAN_WORDS_URL", words.url())
    .env("FOREMAN_SCREENSHOTS", &shots);
    let counts = run_tests(&mut cmd);
    println!("screenshots: {}", shots.display());
    counts
}
