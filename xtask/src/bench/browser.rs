//! The benchmark suite `browser`: the demo's workload (every row of one view of the Mandelbrot
//! set, 400 tasks) drawn by foreman's Web Workers and by a wasm-bindgen-rayon pool of the same
//! number of threads, in headless Chromium and in Firefox, in paired rounds.
//!
//! The page (`web/`, built as `cargo xtask demo` builds it) times each run as its benchmark
//! panel does, from the call to the outcome it receives; `tests/browser/bench.js` drives it
//! (one measurement per command, see there), and the rounds, their order and the stopping rule
//! are `bench_stats`'s, as for the other suites. Records: each implementation's median time
//! with its interval, and foreman's advantage over rayon (`ratio:ms`, rayon's time ÷
//! foreman's, per round: above 1, foreman is faster).

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bench_stats::{try_run_rounds, Plan, Rounds};

use super::{Args, Record};
use crate::browser::{Browser, CHROMIUM_ARGS};
use crate::serve::{self, Isolation};
use crate::setup::npm_project;
use crate::toolchain::Nightly;
use crate::util::step;
use crate::web::{self, DEMO};

/// The suite's name for `--only`.
pub const SUITE: &str = "browser";
/// Threads on each side: foreman's workers, rayon's pool.
const THREADS: usize = 2;
/// The contenders, in the order of the rounds' rotation.
const CONTENDERS: [&str; 2] = ["foreman", "wasm-bindgen-rayon"];
/// What `bench.js` is told to run for each contender.
const COMMANDS: [&str; 2] = ["foreman", "rayon"];
/// The browsers, each a scenario of its own.
const BROWSERS: [Browser; 2] = [Browser::Chromium, Browser::Firefox];

/// The group of `browser`'s records.
pub fn group(browser: Browser) -> String {
    format!("browser/mandelbrot/{THREADS}t/{}", browser.name())
}

/// The rounds: three with `--quick` (about ten seconds a browser: a smoke test); otherwise
/// until foreman's ratio is within ±4% (a verdict needs it narrow: the two are close), or
/// four minutes a browser.
fn plan(quick: bool) -> Plan {
    if quick {
        Plan {
            min_rounds: 3,
            max_rounds: 3,
            budget: Duration::ZERO,
            aim: 0.04,
        }
    } else {
        Plan {
            min_rounds: 12,
            max_rounds: 400,
            budget: Duration::from_secs(240),
            aim: 0.04,
        }
    }
}

/// Builds the demo, serves it, and measures in every browser.
pub fn measure(args: &Args, nightly: &Nightly) -> Result<Vec<Record>> {
    web::build(nightly, DEMO)?;
    let server = serve::Background::start(&DEMO.page_dir(), Isolation::On)?;
    let plan = plan(args.quick);
    let mut records = Vec::new();
    for browser in BROWSERS {
        step(format!(
            "bench: browser: {} ({THREADS} threads each)",
            browser.name()
        ));
        let mut driver = Driver::start(browser, server.url())?;
        // One unmeasured run of each first: compiled code, warm caches, started threads.
        for command in COMMANDS {
            driver.run(command)?;
        }
        let rounds = try_run_rounds(CONTENDERS.len(), &plan, false, &[(0, 1)], |i| {
            driver.run(COMMANDS[i]).map(|ms| [ms])
        })?;
        driver.finish()?;
        println!(
            "{}: {} rounds ({}), foreman {:.0} ms, rayon {:.0} ms, rayon ÷ foreman {:.3} ({:.3}–{:.3})",
            browser.name(),
            rounds.count(),
            rounds.stop().describe(),
            rounds.value(0, 0).median,
            rounds.value(1, 0).median,
            rounds.ratio(0, 1, 0).median,
            rounds.ratio(0, 1, 0).low,
            rounds.ratio(0, 1, 0).high,
        );
        records.extend(records_of(&group(browser), &rounds));
    }
    Ok(records)
}

/// The records of one browser's rounds: each contender's time, foreman's advantage over rayon.
fn records_of(group: &str, rounds: &Rounds<1>) -> Vec<Record> {
    let record = |implementation: &str, metric: &str, estimate: bench_stats::Estimate| Record {
        group: group.to_string(),
        implementation: implementation.to_string(),
        metric: metric.to_string(),
        value: estimate.median,
        higher_is_better: false,
        interval: Some([estimate.low, estimate.high]),
        rounds: Some(rounds.count()),
        stop: Some(rounds.stop().describe().to_string()),
        versus: None,
        threads: Some(THREADS),
        target: None,
        verdict: None,
    };
    let mut records: Vec<Record> = CONTENDERS
        .iter()
        .enumerate()
        .map(|(i, name)| record(name, "ms", rounds.value(i, 0)))
        .collect();
    let mut ratio = record(CONTENDERS[0], "ratio:ms", rounds.ratio(0, 1, 0));
    ratio.higher_is_better = true;
    ratio.versus = Some(CONTENDERS[1].to_string());
    records.push(ratio);
    records
}

/// `tests/browser/bench.js` in one browser, on the served demo.
struct Driver {
    child: Child,
    /// Closed (`None`) once the driver was told to quit.
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Driver {
    /// Starts the driver and waits until the page is ready to measure.
    fn start(browser: Browser, url: &str) -> Result<Driver> {
        let mut child = Command::new("node")
            .arg("bench.js")
            .current_dir(npm_project())
            .env("FOREMAN_BROWSER", browser.name())
            .env("FOREMAN_BROWSER_PATH", browser.executable())
            .env("FOREMAN_CHROMIUM_ARGS", CHROMIUM_ARGS.join(" "))
            .env("FOREMAN_DEMO_URL", url)
            .env("FOREMAN_BENCH_THREADS", THREADS.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot start node (`cargo xtask setup` installs it)")?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut driver = Driver {
            child,
            stdin,
            stdout,
        };
        match driver.line()?.as_str() {
            "ready" => Ok(driver),
            other => bail!("the benchmark page in {}: {other}", browser.name()),
        }
    }

    /// The driver's next line.
    fn line(&mut self) -> Result<String> {
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            bail!("the benchmark driver ended ({:?})", self.child.wait()?);
        }
        Ok(line.trim_end().to_string())
    }

    /// One run of `command` (`foreman` or `rayon`): its time in milliseconds.
    fn run(&mut self, command: &str) -> Result<f64> {
        self.send(command)?;
        let line = self.line()?;
        line.strip_prefix("ms ")
            .and_then(|ms| ms.parse::<f64>().ok())
            .filter(|ms| ms.is_finite() && *ms > 0.0)
            .ok_or_else(|| anyhow!("a {command} run: {line}"))
    }

    /// Sends one command.
    fn send(&mut self, command: &str) -> Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .context("the benchmark driver was told to quit")?;
        writeln!(stdin, "{command}")?;
        stdin.flush()?;
        Ok(())
    }

    /// Closes the browser; fails if the page reported an error meanwhile.
    fn finish(mut self) -> Result<()> {
        self.send("quit")?;
        // End of input as well: the driver must not wait for more.
        drop(self.stdin.take());
        let status = self.child.wait()?;
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest)?;
        if !status.success() {
            bail!("the benchmark driver failed ({status}): {}", rest.trim());
        }
        Ok(())
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Only a driver that failed midway is still running here.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use bench_stats::{run_rounds, Verdict};

    use super::*;

    /// Twelve rounds in which foreman takes about `foreman` ms and rayon about `rayon` ms
    /// (each run off by up to ±2%).
    fn rounds(foreman: f64, rayon: f64) -> Rounds<1> {
        let plan = Plan {
            min_rounds: 12,
            max_rounds: 12,
            budget: Duration::ZERO,
            aim: 0.04,
        };
        let mut runs = 0;
        run_rounds(CONTENDERS.len(), &plan, false, &[(0, 1)], |i| {
            runs += 1;
            let wobble = 1.0 + 0.01 * f64::from(runs % 5 - 2);
            [if i == 0 { foreman } else { rayon } * wobble]
        })
    }

    #[test]
    fn the_target_is_judged_on_rayons_time_over_foremans_per_round() {
        let mut records = records_of(&group(Browser::Chromium), &rounds(900.0, 1000.0));
        records.extend(records_of(
            &group(Browser::Firefox),
            &rounds(1100.0, 1000.0),
        ));
        let ratio = records
            .iter()
            .find(|r| r.metric == "ratio:ms")
            .expect("a ratio record");
        assert!(ratio.higher_is_better && ratio.versus.as_deref() == Some(CONTENDERS[1]));
        assert!(
            (ratio.value - 1000.0 / 900.0).abs() < 0.03,
            "{}",
            ratio.value
        );
        assert_eq!(ratio.rounds, Some(12));
        let verdicts: Vec<(&str, Verdict)> = super::super::evaluate(&records)
            .iter()
            .filter(|judged| judged.target.what.starts_with("browser"))
            .map(|judged| (judged.group, judged.verdict))
            .collect();
        assert_eq!(
            verdicts,
            [
                ("browser/mandelbrot/2t/chromium", Verdict::Met),
                ("browser/mandelbrot/2t/firefox", Verdict::Missed),
            ]
        );
    }
}
