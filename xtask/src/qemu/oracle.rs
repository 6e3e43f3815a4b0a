//! The oracle: checks what a firmware image of `embedded/` reported against the script it ran.
//!
//! The images `baseline`, `minimal` and `supervised` report what happened and do not judge it
//! (their checks are test instrumentation, which a user's firmware would not ship, and they
//! would weigh on the footprint that `cargo xtask qemu` measures). Every check lives here, once:
//!
//! - every image: exit status 0 (a panic, a hard fault or a failed start exits with 1), the
//!   header names this variant's board and target and the script's size and deadline, every
//!   line is one the image prints (no `panic:`, `hard fault`, `error:` or anything else), the
//!   last line is `done`; the interrupt side had every task accepted once, got back the task it
//!   offered each time it was refused, met a full queue, and had the late task refused as
//!   closed; every task of the script ended exactly once, as its kind must end in this image,
//!   and every completed task with its right result;
//! - `minimal`: the supervisor stopped (by the drain, its only shutdown);
//! - `supervised`: the supervisor stopped by the drain; its counters add up (recomputed here),
//!   nothing lost, handed back, queued or in flight; every task submitted once; its completed,
//!   failed and dead-lettered counts are the tasks reported so; every refusal counted on both
//!   sides; every worker left; the crashes are exactly the script's faulting runs (a flaky
//!   task's first, each of a poison task's `max_attempts`), each reported, each replaced, each
//!   retried as the next attempt or, after the last attempt, dead-lettered with its own task;
//!   exactly the slow tasks flagged hung, once each, with the worker's state hung.
//!
//! The script is compiled here from the firmware's own source (`embedded/src/script.rs`), so
//! the oracle and the firmware can never disagree on it.

use std::collections::{BTreeMap, BTreeSet};

use super::{Run, Variant, MINIMAL, SUPERVISED};

#[path = "../../../embedded/src/script.rs"]
mod script;

use script::{expected_result, kind, Kind, DEADLINE, MAX_ATTEMPTS, TASKS, WORKERS};

/// How a task ended for good, as an image reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Completed,
    Failed,
    DeadLettered,
    /// A fault, where nothing runs a task again (`baseline`, `minimal`).
    Crashed,
}

/// How a task of `kind` must end in `image`.
fn expected_end(image: &str, kind: Kind) -> End {
    match (image, kind) {
        (_, Kind::Invalid) => End::Failed,
        (SUPERVISED, Kind::Poison) => End::DeadLettered,
        (SUPERVISED, Kind::Flaky) => End::Completed,
        (_, Kind::Flaky | Kind::Poison) => End::Crashed,
        (_, Kind::Compute | Kind::Slow | Kind::Steady) => End::Completed,
    }
}

/// A faulting run, and what became of its task and its worker.
#[derive(Debug)]
struct Fault {
    task: u32,
    attempt: u64,
    then: Then,
    replaced: bool,
}

#[derive(Debug, PartialEq, Eq)]
enum Then {
    Retried { attempt: u64 },
    DeadLettered { task: u32, attempts: u64 },
}

/// A task the watchdog flagged while it ran.
#[derive(Debug)]
struct Hang {
    task: u32,
    flags: u64,
    hung: bool,
}

type Fields<'a> = BTreeMap<&'a str, &'a str>;

/// A report, line by line.
#[derive(Default)]
struct Report<'a> {
    header: Option<Fields<'a>>,
    /// (task, how it ended, its result if it completed), in the order reported.
    ends: Vec<(u32, End, Option<u64>)>,
    faults: Vec<Fault>,
    hangs: Vec<Hang>,
    isr: Option<Fields<'a>>,
    counters: Option<Fields<'a>>,
    /// (the worker's index, its fields), in the order reported.
    workers: Vec<(&'a str, Fields<'a>)>,
    /// `minimal`'s `supervisor: stopped`.
    stopped: bool,
    /// Lines that are none of the above: a panic, a fault, an error, or anything unforeseen.
    unexpected: Vec<&'a str>,
    /// Lines of a kind the report holds once (the header, `isr:`, `counters:`) seen again.
    repeated: Vec<&'a str>,
}

impl<'a> Report<'a> {
    fn parse(image: &str, stdout: &'a str) -> Self {
        let mut report = Report::default();
        let header = format!("foreman-firmware {image}: ");
        for line in stdout.lines() {
            let once = |slot: &mut Option<Fields<'a>>, rest, repeated: &mut Vec<&'a str>| {
                if slot.replace(fields(rest)).is_some() {
                    repeated.push(line);
                }
            };
            if let Some(rest) = line.strip_prefix(header.as_str()) {
                once(&mut report.header, rest, &mut report.repeated);
            } else if line.starts_with("ram: ") || line == "done" {
                // The statics' sizes (for the footprint table) and the end.
                continue;
            } else if let Some(rest) = line.strip_prefix("isr: ") {
                once(&mut report.isr, rest, &mut report.repeated);
            } else if let Some(rest) = line.strip_prefix("counters: ") {
                once(&mut report.counters, rest, &mut report.repeated);
            } else if let Some((index, rest)) = line
                .strip_prefix("worker ")
                .and_then(|rest| rest.split_once(": "))
            {
                report.workers.push((index, fields(rest)));
            } else if image == MINIMAL && line == "supervisor: stopped" {
                report.stopped = true;
            } else if !report.task_line(line) {
                report.unexpected.push(line);
            }
        }
        report
    }

    /// Takes in a `task N: ...` line; false if it is none of those the images print.
    fn task_line(&mut self, line: &str) -> bool {
        match TaskLine::parse(line) {
            Some(TaskLine::End(task, end, result)) => self.ends.push((task, end, result)),
            Some(TaskLine::Fault(fault)) => {
                // A dead letter is the end of its task: of the task the crash report gave back.
                if let Then::DeadLettered { task, .. } = fault.then {
                    self.ends.push((task, End::DeadLettered, None));
                }
                self.faults.push(fault);
            }
            Some(TaskLine::Hang(hang)) => self.hangs.push(hang),
            None => return false,
        }
        true
    }
}

/// A `task N: ...` line, each of the forms the images print.
enum TaskLine {
    /// (task, how it ended, its result if it completed).
    End(u32, End, Option<u64>),
    Fault(Fault),
    Hang(Hang),
}

impl TaskLine {
    fn parse(line: &str) -> Option<TaskLine> {
        let id = |s: &str| s.parse::<u32>().ok();
        let n = |s: &str| s.parse::<u64>().ok();
        let flag = |s: &str| s.parse::<bool>().ok();
        if let Some([t, r]) = scan(line, "task {}: completed: {}") {
            return Some(TaskLine::End(id(t)?, End::Completed, Some(n(r)?)));
        }
        if let Some([t]) = scan(line, "task {}: invalid input: failed") {
            return Some(TaskLine::End(id(t)?, End::Failed, None));
        }
        if let Some([t]) = scan(line, "task {}: fault: crashed (no retry)") {
            return Some(TaskLine::End(id(t)?, End::Crashed, None));
        }
        if let Some([t, a, _worker, r, replaced]) = scan(
            line,
            "task {}: fault on attempt {} (worker {}): retried as attempt {}; replaced: {}",
        ) {
            return Some(TaskLine::Fault(Fault {
                task: id(t)?,
                attempt: n(a)?,
                then: Then::Retried { attempt: n(r)? },
                replaced: flag(replaced)?,
            }));
        }
        if let Some([t, a, _worker, back, attempts, replaced]) = scan(
            line,
            "task {}: fault on attempt {} (worker {}): task {} dead-lettered after {} attempts; replaced: {}",
        ) {
            return Some(TaskLine::Fault(Fault {
                task: id(t)?,
                attempt: n(a)?,
                then: Then::DeadLettered {
                    task: id(back)?,
                    attempts: n(attempts)?,
                },
                replaced: flag(replaced)?,
            }));
        }
        let [t, _worker, flags, hung] = scan(
            line,
            "task {}: over its deadline on worker {}: watchdog flags={} hung={}, then finished",
        )?;
        Some(TaskLine::Hang(Hang {
            task: id(t)?,
            flags: n(flags)?,
            hung: flag(hung)?,
        }))
    }
}

/// Matches `line` against `pattern`, whose `{}`s stand for one word each (not empty, no
/// space), and returns the words.
fn scan<'a, const K: usize>(line: &'a str, pattern: &str) -> Option<[&'a str; K]> {
    let mut pieces = pattern.split("{}");
    let mut rest = line.strip_prefix(pieces.next()?)?;
    let mut words = Vec::with_capacity(K);
    for piece in pieces {
        // A word runs to the pattern's next literal piece, or to the end of the line.
        let end = if piece.is_empty() {
            rest.len()
        } else {
            rest.find(piece)?
        };
        let word = &rest[..end];
        if word.is_empty() || word.contains(' ') {
            return None;
        }
        words.push(word);
        rest = &rest[end + piece.len()..];
    }
    if !rest.is_empty() {
        return None;
    }
    words.try_into().ok()
}

/// The `key=value` words of a line.
fn fields(line: &str) -> Fields<'_> {
    line.split_whitespace()
        .filter_map(|field| field.split_once('='))
        .collect()
}

/// Everything wrong with a run of `image` (`baseline`, `minimal` or `supervised`) on `variant`.
pub(super) fn problems(variant: &Variant, image: &str, run: &Run) -> Vec<String> {
    let mut problems = Vec::new();
    if !run.status.success() {
        problems.push(format!("QEMU exited with {}", run.status));
    }
    let report = Report::parse(image, &run.stdout);
    for line in &report.unexpected {
        problems.push(format!("unexpected line: {line}"));
    }
    for line in &report.repeated {
        problems.push(format!("a line the report holds once, again: {line}"));
    }
    if image != SUPERVISED {
        // Only `supervised` retries, watches and prints the snapshot.
        for (lines, what) in [
            (report.faults.len(), "retry or dead-letter"),
            (report.hangs.len(), "watchdog"),
            (report.workers.len(), "worker"),
            (usize::from(report.counters.is_some()), "counters"),
        ] {
            if lines > 0 {
                problems.push(format!("{lines} {what} lines in a report of `{image}`"));
            }
        }
    }
    if run.stdout.lines().last() != Some("done") {
        problems.push("the last line is not `done`: the report is incomplete".into());
    }
    let mut check = Check {
        problems: &mut problems,
    };
    let max_attempts = check.header(variant, image, &report);
    check.interrupt_side(&report);
    check.ends(image, &report);
    match image {
        MINIMAL if !report.stopped => check.fail("the supervisor did not stop".into()),
        SUPERVISED => {
            if let Some(max_attempts) = max_attempts {
                check.supervisor(&report, max_attempts);
            }
        }
        _ => {}
    }
    problems
}

/// The problems found so far.
struct Check<'p> {
    problems: &'p mut Vec<String>,
}

impl Check<'_> {
    fn fail(&mut self, problem: String) {
        self.problems.push(problem);
    }

    fn require(&mut self, ok: bool, problem: impl FnOnce() -> String) {
        if !ok {
            self.fail(problem());
        }
    }

    /// The number `key=` of a line, or a problem.
    fn number(&mut self, line: &str, fields: &Fields<'_>, key: &str) -> Option<u64> {
        let number = fields.get(key).and_then(|value| value.parse().ok());
        if number.is_none() {
            self.fail(format!("no number `{key}=` in the `{line}` line"));
        }
        number
    }

    /// The header: this variant's board and target, this script. Returns `max_attempts` for
    /// `supervised`.
    fn header(&mut self, variant: &Variant, image: &str, report: &Report<'_>) -> Option<u64> {
        let Some(header) = &report.header else {
            self.fail(format!("no `foreman-firmware {image}:` header line"));
            return None;
        };
        self.require(
            header.get("board") == Some(&variant.board)
                && header.get("target") == Some(&variant.target),
            || {
                format!(
                    "built for {:?} on {:?}, expected {} on {}",
                    header.get("target"),
                    header.get("board"),
                    variant.target,
                    variant.board
                )
            },
        );
        let tasks = self.number("header", header, "tasks");
        let deadline = self.number("header", header, "deadline");
        self.require(
            tasks == Some(TASKS.into()) && deadline == Some(DEADLINE.into()),
            || {
                format!("another script: tasks={tasks:?} deadline={deadline:?}, expected {TASKS} and {DEADLINE}")
            },
        );
        if image != SUPERVISED {
            return None;
        }
        let max_attempts = self.number("header", header, "max_attempts")?;
        self.require(max_attempts == u64::from(MAX_ATTEMPTS), || {
            format!("another policy: max_attempts={max_attempts}, expected {MAX_ATTEMPTS}")
        });
        Some(max_attempts)
    }

    /// The `isr:` line: every task accepted once, the right task handed back at each refusal,
    /// back-pressure, the late task refused as closed.
    fn interrupt_side(&mut self, report: &Report<'_>) {
        let Some(isr) = &report.isr else {
            return self.fail("no `isr:` line".into());
        };
        let (Some(accepted), Some(full), Some(closed), Some(mismatched)) = (
            self.number("isr", isr, "accepted"),
            self.number("isr", isr, "full"),
            self.number("isr", isr, "closed"),
            self.number("isr", isr, "mismatched"),
        ) else {
            return;
        };
        self.require(accepted == u64::from(TASKS), || {
            format!("the handler had {accepted} tasks accepted, not {TASKS}")
        });
        self.require(mismatched == 0, || {
            format!("{mismatched} refusals handed back another task than the one offered")
        });
        self.require(full > 0, || {
            "the queue was never full: no back-pressure".into()
        });
        self.require(
            closed == 1 && isr.get("late_accepted") == Some(&"false"),
            || "the late task was not refused as closed".into(),
        );
    }

    /// Every task of the script ended once, as its kind must in `image`, with its result.
    fn ends(&mut self, image: &str, report: &Report<'_>) {
        let mut seen = BTreeMap::<u32, usize>::new();
        for &(task, end, result) in &report.ends {
            *seen.entry(task).or_default() += 1;
            if task >= TASKS {
                self.fail(format!("task {task} is not in the script, yet it ended"));
                continue;
            }
            let want = expected_end(image, kind(task));
            self.require(end == want, || {
                format!(
                    "task {task} ({:?}) ended {end:?}, expected {want:?}",
                    kind(task)
                )
            });
            if let Some(result) = result {
                let want = expected_result(task);
                self.require(result == u64::from(want), || {
                    format!("task {task} completed with the result {result}, expected {want}")
                });
            }
        }
        for task in 0..TASKS {
            match seen.get(&task) {
                None => self.fail(format!("task {task} never ended")),
                Some(&times) if times > 1 => self.fail(format!("task {task} ended {times} times")),
                Some(_) => {}
            }
        }
    }

    /// `supervised`: the snapshot, the crashes and the watchdog.
    fn supervisor(&mut self, report: &Report<'_>, max_attempts: u64) {
        let Some(counters) = &report.counters else {
            return self.fail("no `counters:` line".into());
        };
        self.require(counters.get("stopped_by_drain") == Some(&"true"), || {
            "the supervisor did not stop by the drain".into()
        });
        let keys = [
            "submitted",
            "completed",
            "failed",
            "dead_lettered",
            "lost",
            "handed_back",
            "queued",
            "in_flight",
            "rejected",
        ];
        let values: Option<Vec<u64>> = keys
            .iter()
            .map(|key| self.number("counters", counters, key))
            .collect();
        let Some(
            [submitted, completed, failed, dead_lettered, lost, handed_back, queued, in_flight, rejected],
        ) = values.and_then(|v| <[u64; 9]>::try_from(v).ok())
        else {
            return;
        };
        self.require(
            submitted
                == completed + failed + dead_lettered + lost + handed_back + queued + in_flight,
            || "the counters do not add up".into(),
        );
        self.require(lost + handed_back + queued + in_flight == 0, || {
            "tasks lost, handed back, queued or in flight at the end".into()
        });
        self.require(submitted == u64::from(TASKS), || {
            format!("{submitted} tasks submitted, not {TASKS}")
        });
        for (name, counted, end) in [
            ("completed", completed, End::Completed),
            ("failed", failed, End::Failed),
            ("dead_lettered", dead_lettered, End::DeadLettered),
        ] {
            let reported = report.ends.iter().filter(|(_, e, _)| *e == end).count() as u64;
            self.require(counted == reported, || {
                format!("the supervisor counted {name}={counted}, the report shows {reported}")
            });
        }
        if let Some(isr) = &report.isr {
            let refused = isr
                .get("full")
                .zip(isr.get("closed"))
                .and_then(|(f, c)| Some(f.parse::<u64>().ok()? + c.parse::<u64>().ok()?));
            self.require(refused == Some(rejected), || {
                format!("the supervisor rejected {rejected}, the handler was refused {refused:?}")
            });
        }
        self.workers(report);
        self.crashes(report, max_attempts);
        self.hangs(report);
    }

    /// One line per worker slot, in order; every worker left; the crashes counted are the
    /// crashes reported, each replaced.
    fn workers(&mut self, report: &Report<'_>) {
        let indices: Vec<&str> = report.workers.iter().map(|(index, _)| *index).collect();
        let expected: Vec<String> = (0..WORKERS).map(|index| index.to_string()).collect();
        self.require(indices == expected, || {
            format!("worker lines for {indices:?}, expected one for each of 0..{WORKERS}")
        });
        let mut crashes = 0;
        let mut restarts = 0;
        for (_, worker) in &report.workers {
            let line = "worker";
            self.require(worker.get("state") == Some(&"exited"), || {
                format!("a worker did not leave: {worker:?}")
            });
            crashes += self.number(line, worker, "crashes").unwrap_or(0);
            restarts += self.number(line, worker, "restarts").unwrap_or(0);
        }
        let reported = report.faults.len() as u64;
        self.require(crashes == reported, || {
            format!("the workers counted {crashes} crashes, the report shows {reported}")
        });
        self.require(restarts == crashes, || {
            format!("{crashes} crashes, {restarts} restarts")
        });
    }

    /// The crashes are the script's faulting runs, each retried as the next attempt or, after
    /// the last, dead-lettered with its own task, and each worker replaced.
    fn crashes(&mut self, report: &Report<'_>, max_attempts: u64) {
        let mut expected = BTreeSet::new();
        for task in 0..TASKS {
            let runs = match kind(task) {
                Kind::Flaky => 1,
                Kind::Poison => max_attempts,
                _ => 0,
            };
            expected.extend((1..=runs).map(|attempt| (task, attempt)));
        }
        for fault in &report.faults {
            let Fault {
                task,
                attempt,
                ref then,
                replaced,
            } = *fault;
            if !expected.remove(&(task, attempt)) {
                self.fail(format!(
                    "task {task} faulted on attempt {attempt}: not a faulting run of the script (or reported twice)"
                ));
            }
            let want = if attempt < max_attempts {
                Then::Retried {
                    attempt: attempt + 1,
                }
            } else {
                Then::DeadLettered {
                    task,
                    attempts: max_attempts,
                }
            };
            self.require(*then == want, || {
                format!("task {task}'s fault on attempt {attempt}: {then:?}, expected {want:?}")
            });
            self.require(replaced, || {
                format!("task {task}'s fault on attempt {attempt}: the worker was not replaced")
            });
        }
        for (task, attempt) in expected {
            self.fail(format!(
                "task {task} did not fault on attempt {attempt}, or its crash went unreported"
            ));
        }
    }

    /// Exactly the slow tasks flagged hung, once each, with the worker's state hung.
    fn hangs(&mut self, report: &Report<'_>) {
        let slow: BTreeSet<u32> = (0..TASKS).filter(|&t| kind(t) == Kind::Slow).collect();
        let mut flagged = BTreeSet::new();
        for hang in &report.hangs {
            self.require(
                slow.contains(&hang.task) && flagged.insert(hang.task),
                || {
                    format!(
                        "task {} flagged hung: not a slow task, or flagged twice",
                        hang.task
                    )
                },
            );
            self.require(hang.flags == 1 && hang.hung, || {
                format!(
                    "task {}: flagged {} times, state hung: {} (expected once, hung)",
                    hang.task, hang.flags, hang.hung
                )
            });
        }
        for task in slow.difference(&flagged) {
            self.fail(format!("slow task {task} was not flagged hung"));
        }
        let flags: u64 = report
            .workers
            .iter()
            .filter_map(|(_, worker)| worker.get("hung_flags")?.parse::<u64>().ok())
            .sum();
        self.require(flags == slow.len() as u64, || {
            format!(
                "the watchdog raised {flags} flags, for {} slow tasks",
                slow.len()
            )
        });
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    use super::super::{BASELINE, VARIANTS};
    use super::*;

    /// Output of a real run (lm3s6965evb).
    const SUPERVISED_OK: &str = include_str!("testdata/supervised.txt");
    const MINIMAL_OK: &str = include_str!("testdata/minimal.txt");
    const BASELINE_OK: &str = include_str!("testdata/baseline.txt");

    fn run(stdout: &str, code: i32) -> Run {
        Run {
            status: ExitStatus::from_raw(code << 8),
            stdout: stdout.to_string(),
        }
    }

    fn check(image: &str, stdout: &str) -> Vec<String> {
        problems(&VARIANTS[0], image, &run(stdout, 0))
    }

    #[test]
    fn real_runs_pass() {
        for (image, stdout) in [
            (SUPERVISED, SUPERVISED_OK),
            (MINIMAL, MINIMAL_OK),
            (BASELINE, BASELINE_OK),
        ] {
            assert_eq!(check(image, stdout), Vec::<String>::new(), "{image}");
        }
    }

    #[test]
    fn scan_matches_a_line_word_by_word() {
        assert_eq!(
            scan(
                "task 3: fault on attempt 1 (worker 1): retried as attempt 2; replaced: true",
                "task {}: fault on attempt {} (worker {}): retried as attempt {}; replaced: {}"
            ),
            Some(["3", "1", "1", "2", "true"])
        );
        assert_eq!(
            scan("task 3: completed: 6", "task {}: completed: {}"),
            Some(["3", "6"])
        );
        assert_eq!(
            scan::<2>("task 3: completed: 6 7", "task {}: completed: {}"),
            None
        );
        assert_eq!(
            scan::<2>("task : completed: 6", "task {}: completed: {}"),
            None
        );
        assert_eq!(
            scan::<1>(
                "task 3: invalid input: failed!",
                "task {}: invalid input: failed"
            ),
            None
        );
    }

    /// Each check, fed a report that violates it: the problem it must find.
    #[test]
    fn each_check_fails_a_report_that_violates_it() {
        // (image, line replaced (or removed), replacement, the problem expected).
        let cases: &[(&str, &str, &str, &str)] = &[
            // Every image.
            (BASELINE, "board=lm3s6965evb", "board=microbit", "built for"),
            (BASELINE, "tasks=48", "tasks=47", "another script"),
            (MINIMAL, "deadline=8", "deadline=9", "another script"),
            (BASELINE, "done\n", "panic: oops\ndone\n", "unexpected line: panic: oops"),
            (MINIMAL, "done\n", "error: the worker cannot attach\n", "the last line is not `done`"),
            (BASELINE, "accepted=48", "accepted=47", "47 tasks accepted"),
            (MINIMAL, "mismatched=0", "mismatched=1", "another task than the one offered"),
            (SUPERVISED, "full=13", "full=0", "never full"),
            (BASELINE, "closed=1 mismatched", "closed=0 mismatched", "late task was not refused"),
            (MINIMAL, "late_accepted=false", "late_accepted=true", "late task was not refused"),
            (BASELINE, "task 7: invalid input: failed\n", "", "task 7 never ended"),
            (
                BASELINE,
                "task 8: completed: 36\n",
                "task 8: completed: 36\ntask 8: completed: 36\n",
                "task 8 ended 2 times",
            ),
            (
                BASELINE,
                "task 9: completed: 45\n",
                "task 9: completed: 45\ntask 48: completed: 1176\n",
                "task 48 is not in the script",
            ),
            (
                MINIMAL,
                "task 3: fault: crashed (no retry)",
                "task 3: completed: 6",
                "task 3 (Flaky) ended Completed, expected Crashed",
            ),
            (
                SUPERVISED,
                "task 7: invalid input: failed",
                "task 7: completed: 28",
                "task 7 (Invalid) ended Completed, expected Failed",
            ),
            (
                SUPERVISED,
                "task 9: completed: 45",
                "task 9: completed: 46",
                "the result 46, expected 45",
            ),
            (
                BASELINE,
                "isr: ticks=75",
                "isr: ticks=75 accepted=48 full=13 closed=1 mismatched=0 late_accepted=false\nisr: ticks=75",
                "a line the report holds once, again: isr:",
            ),
            // Lines only `supervised` prints, in the others.
            (
                MINIMAL,
                "task 9: completed: 45\n",
                "task 9: fault on attempt 1 (worker 0): retried as attempt 2; replaced: true\ntask 9: completed: 45\n",
                "1 retry or dead-letter lines in a report of `minimal`",
            ),
            (
                BASELINE,
                "done\n",
                "worker 0: state=exited completed=44 failed=2 crashes=0 restarts=0 hung_flags=0\ndone\n",
                "1 worker lines in a report of `baseline`",
            ),
            // minimal
            (MINIMAL, "supervisor: stopped\n", "", "the supervisor did not stop"),
            // supervised: its policy, and one line per worker slot.
            (SUPERVISED, "max_attempts=3", "max_attempts=2", "another policy: max_attempts=2"),
            (SUPERVISED, "worker 1: state", "worker 0: state", "worker lines for [\"0\", \"0\"]"),
            (
                SUPERVISED,
                "worker 1: state=exited completed=21 failed=1 crashes=6 restarts=6 hung_flags=2\n",
                "",
                "worker lines for [\"0\"]",
            ),
            // supervised
            (
                SUPERVISED,
                "stopped_by_drain=true",
                "stopped_by_drain=false",
                "did not stop by the drain",
            ),
            (SUPERVISED, "submitted=48 completed=44", "submitted=48 completed=43", "do not add up"),
            (
                SUPERVISED,
                "submitted=48 completed=44 failed=2 dead_lettered=2 lost=0",
                "submitted=49 completed=44 failed=2 dead_lettered=2 lost=1",
                "lost, handed back",
            ),
            (
                SUPERVISED,
                "submitted=48 completed=44",
                "submitted=49 completed=45",
                "49 tasks submitted",
            ),
            (
                SUPERVISED,
                "failed=2 dead_lettered=2 lost=0",
                "failed=3 dead_lettered=1 lost=0",
                "counted failed=3, the report shows 2",
            ),
            (SUPERVISED, "rejected=14", "rejected=13", "the supervisor rejected 13"),
            (
                SUPERVISED,
                "worker 0: state=exited",
                "worker 0: state=idle",
                "a worker did not leave",
            ),
            (SUPERVISED, "crashes=3 restarts=3", "crashes=3 restarts=2", "9 crashes, 8 restarts"),
            (
                SUPERVISED,
                "crashes=3 restarts=3",
                "crashes=4 restarts=4",
                "the workers counted 10 crashes, the report shows 9",
            ),
            (
                SUPERVISED,
                "task 19: fault on attempt 1 (worker 1): retried as attempt 2; replaced: true\n",
                "",
                "task 19 did not fault on attempt 1",
            ),
            (
                SUPERVISED,
                "task 19: fault on attempt 1 (worker 1): retried as attempt 2; replaced: true",
                "task 19: fault on attempt 1 (worker 1): retried as attempt 3; replaced: true",
                "Retried { attempt: 3 }, expected Retried { attempt: 2 }",
            ),
            (
                SUPERVISED,
                "task 19: fault on attempt 1 (worker 1): retried as attempt 2; replaced: true",
                "task 19: fault on attempt 1 (worker 1): retried as attempt 2; replaced: false",
                "the worker was not replaced",
            ),
            (
                SUPERVISED,
                "task 20: completed: 210\n",
                "task 20: fault on attempt 1 (worker 1): retried as attempt 2; replaced: true\ntask 20: completed: 210\n",
                "task 20 faulted on attempt 1: not a faulting run",
            ),
            (
                SUPERVISED,
                "task 13 dead-lettered after 3 attempts",
                "task 14 dead-lettered after 3 attempts",
                "expected DeadLettered { task: 13, attempts: 3 }",
            ),
            (
                SUPERVISED,
                "task 13 dead-lettered after 3 attempts",
                "task 13 dead-lettered after 2 attempts",
                "expected DeadLettered { task: 13, attempts: 3 }",
            ),
            (
                SUPERVISED,
                "task 5: over its deadline on worker 1: watchdog flags=1 hung=true, then finished\n",
                "",
                "slow task 5 was not flagged hung",
            ),
            (
                SUPERVISED,
                "task 6: completed",
                "task 6: over its deadline on worker 1: watchdog flags=1 hung=true, then finished\ntask 6: completed",
                "task 6 flagged hung: not a slow task",
            ),
            (
                SUPERVISED,
                "watchdog flags=1 hung=true",
                "watchdog flags=2 hung=true",
                "flagged 2 times",
            ),
            (
                SUPERVISED,
                "watchdog flags=1 hung=true",
                "watchdog flags=1 hung=false",
                "state hung: false",
            ),
            (
                SUPERVISED,
                "hung_flags=2",
                "hung_flags=3",
                "the watchdog raised 3 flags, for 2 slow tasks",
            ),
            // A line missing altogether.
            (
                BASELINE,
                "isr: ticks=75 accepted=48 full=13 closed=1 mismatched=0 late_accepted=false\n",
                "",
                "no `isr:` line",
            ),
            (SUPERVISED, "counters: ", "count: ", "no `counters:` line"),
            (SUPERVISED, "max_attempts=3", "attempts=3", "no number `max_attempts=`"),
            (
                SUPERVISED,
                "task 40: fault on attempt 3 (worker 0): task 40 dead-lettered after 3 attempts; replaced: true",
                "task 40: fault on attempt 3 (worker 0): retried as attempt 4; replaced: true",
                "Retried { attempt: 4 }, expected DeadLettered { task: 40, attempts: 3 }",
            ),
        ];
        for &(image, from, to, problem) in cases {
            let ok = match image {
                SUPERVISED => SUPERVISED_OK,
                MINIMAL => MINIMAL_OK,
                _ => BASELINE_OK,
            };
            assert!(ok.contains(from), "{image}: the sample has no {from:?}");
            let bad = ok.replacen(from, to, 1);
            let found = check(image, &bad);
            assert!(
                found.iter().any(|p| p.contains(problem)),
                "{image}: {from:?} -> {to:?}: expected a problem with {problem:?}, found {found:?}"
            );
        }
    }

    #[test]
    fn the_exit_status_and_the_board_are_checked() {
        let found = problems(&VARIANTS[0], BASELINE, &run(BASELINE_OK, 1));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("QEMU exited with"));
        let found = problems(&VARIANTS[1], SUPERVISED, &run(SUPERVISED_OK, 0));
        assert_eq!(found.len(), 1, "{found:?}");
        // One image's report is not another's.
        assert!(!check(MINIMAL, BASELINE_OK).is_empty());
        assert!(!check(SUPERVISED, MINIMAL_OK).is_empty());
        assert!(check(BASELINE, "").len() >= 3);
    }
}
