//! Running commands and finding things.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};

/// The workspace root.
pub fn root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask lives in the workspace")
            .to_path_buf()
    })
}

/// The cargo target directory: `CARGO_TARGET_DIR`, or `target/` in the workspace.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// Prints a step header, so long runs say what they are doing.
pub fn step(message: impl AsRef<str>) {
    println!("\n==> {}", message.as_ref());
}

/// Variables of the caller's environment that change what cargo builds (flags, target):
/// removed from every cargo run here, of either toolchain.
pub const BUILD_VARS: [&str; 3] = ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_TARGET"];

/// The cargo that runs this xtask (stock stable), in the workspace root, with nothing from
/// the caller's environment that would redirect it to another toolchain or target.
pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root());
    for var in BUILD_VARS.into_iter().chain(["RUSTC_BOOTSTRAP"]) {
        cmd.env_remove(var);
    }
    cmd
}

/// Shows a command the way a person would type it.
pub fn display(cmd: &Command) -> String {
    let mut text = String::new();
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            text.push_str(&format!(
                "{}={} ",
                key.to_string_lossy(),
                value.to_string_lossy()
            ));
        }
    }
    text.push_str(&cmd.get_program().to_string_lossy());
    for arg in cmd.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

/// Runs a command with inherited output; fails if it does.
pub fn exec(cmd: &mut Command) -> Result<()> {
    println!("$ {}", display(cmd));
    let status = cmd
        .status()
        .with_context(|| format!("cannot start `{}`", display(cmd)))?;
    if !status.success() {
        bail!("`{}` failed ({status})", display(cmd));
    }
    Ok(())
}

/// Runs a command and returns its standard output (standard error is inherited).
pub fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot start `{}`", display(cmd)))?;
    if !out.status.success() {
        bail!("`{}` failed ({})", display(cmd), out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a command as one check: one pass or one failure.
pub fn check(cmd: &mut Command) -> Counts {
    Counts::one(exec(cmd))
}

/// Test counts parsed from a test harness's output.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub passed: usize,
    pub failed: usize,
}

impl Counts {
    /// One pass.
    pub const PASS: Counts = Counts {
        passed: 1,
        failed: 0,
    };
    /// One failure.
    pub const FAIL: Counts = Counts {
        passed: 0,
        failed: 1,
    };

    /// One check: one pass, or one failure (whose error is printed).
    pub fn one(result: Result<()>) -> Counts {
        match result {
            Ok(()) => Counts::PASS,
            Err(err) => {
                eprintln!("FAILED: {err:#}");
                Counts::FAIL
            }
        }
    }
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, other: Counts) {
        self.passed += other.passed;
        self.failed += other.failed;
    }
}

/// Runs a command that prints `test result: … N passed; M failed` lines (libtest) or
/// `ℹ pass N` / `ℹ fail N` / `ℹ cancelled N` lines (node's test runner, spec reporter),
/// streaming its output, and sums the counts. A command that fails without reporting a
/// failed test counts one failure.
pub fn run_tests(cmd: &mut Command) -> Result<Counts> {
    println!("$ {}", display(cmd));
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start `{}`", display(cmd)))?;
    let mut counts = Counts::default();
    let stdout = child.stdout.take().expect("piped");
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        println!("{line}");
        counts += parse_counts(&line);
    }
    let status = child.wait()?;
    if !status.success() && counts.failed == 0 {
        counts.failed = 1;
    }
    Ok(counts)
}

/// The counts on one line of test output, if it is a summary line.
fn parse_counts(line: &str) -> Counts {
    let line = line.trim();
    let number_before = |word: &str| -> usize {
        let words: Vec<&str> = line
            .split(|c: char| c.is_whitespace() || c == ';' || c == ',')
            .collect();
        words
            .windows(2)
            .find(|pair| pair[1] == word)
            .and_then(|pair| pair[0].parse().ok())
            .unwrap_or(0)
    };
    if line.starts_with("test result:") {
        return Counts {
            passed: number_before("passed"),
            failed: number_before("failed"),
        };
    }
    // node --test, spec reporter: "ℹ pass 12" and "ℹ fail 1" summary lines.
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["ℹ", "pass", n] => Counts {
            passed: n.parse().unwrap_or(0),
            failed: 0,
        },
        // A test cancelled (its file's setup failed: a browser that cannot start) fails.
        ["ℹ", "fail" | "cancelled", n] => Counts {
            passed: 0,
            failed: n.parse().unwrap_or(0),
        },
        _ => Counts::default(),
    }
}

/// The full path of a program on `PATH`.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_libtest_and_node_test_summaries() {
        assert_eq!(
            parse_counts(
                "test result: ok. 19 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out"
            ),
            Counts {
                passed: 19,
                failed: 0
            }
        );
        assert_eq!(
            parse_counts("test result: FAILED. 5 passed; 1 failed; 0 ignored"),
            Counts {
                passed: 5,
                failed: 1
            }
        );
        assert_eq!(
            parse_counts("ℹ pass 7"),
            Counts {
                passed: 7,
                failed: 0
            }
        );
        assert_eq!(
            parse_counts("ℹ fail 2"),
            Counts {
                passed: 0,
                failed: 2
            }
        );
        assert_eq!(
            parse_counts("ℹ cancelled 12"),
            Counts {
                passed: 0,
                failed: 12
            }
        );
        assert_eq!(parse_counts("ℹ tests 9"), Counts::default());
        assert_eq!(
            parse_counts("Worker 1: Processed task, result: 2"),
            Counts::default()
        );
    }
}
