//! The process host under faults. Each test runs a pool of worker processes, makes some of them
//! die — a segfault, `abort`, a stack overflow, an allocation past an address-space limit, a
//! panic, `SIGKILL` from outside, a hang killed by the watchdog, kills at random instants under
//! load — and checks that the parent and the other workers keep going, that every task ends
//! exactly once (completed, possibly on a retry, or dead-lettered with its attempts counted),
//! that the counters add up, that drain returns, and that no worker process, zombie or shared
//! memory is left behind. Some tests run this binary as a *parent* that is interrupted, panics
//! or exits with its pool alive, and check its workers die with it.
//!
//! `harness = false`: `main` first lets a worker process serve (the one line every program
//! using the process host has), then runs the tests with `libtest-mimic`.

#[cfg(not(target_os = "linux"))]
fn main() {}

#[cfg(target_os = "linux")]
fn main() -> std::process::ExitCode {
    linux::main()
}

#[cfg(target_os = "linux")]
mod linux {
    use std::collections::HashSet;
    use std::hint::black_box;
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::CommandExt;
    use std::process::{Command, ExitCode, Stdio};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{mpsc, Arc, Mutex};
    use std::thread;
    use std::time::{Duration, Instant};

    use foreman_rt::host::processes::{Context, Handler, Pool, Portable};
    use foreman_rt::host::{Event, Report};
    use foreman_rt::policy::{Delivery, Intensity, Policy};
    use foreman_rt::{Decision, Disposition, Shutdown, SubmitError, SupervisorState, WorkerState};
    use foreman_tests::Bitmap;
    use libtest_mimic::{Arguments, Failed, Trial};
    use rustix::process::{Pid, Signal, WaitOptions};

    /// What a probe task does on its faulty runs.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Fault {
        /// Nothing: it completes.
        None,
        /// Writes to an unmapped address.
        Segfault,
        /// `std::process::abort`.
        Abort,
        /// Recurses until the stack's guard page.
        StackOverflow,
        /// Allocates until the address-space limit makes an allocation fail.
        Allocate,
        /// Panics with [`DELIBERATE`].
        Panic,
        /// `std::process::exit(code)` in the middle of the task.
        Exit(i32),
        /// Sleeps without heartbeats (a hang, as the watchdog sees it).
        Sleep { ms: u32 },
        /// Works for `ms`, sending a heartbeat every few milliseconds.
        Heartbeats { ms: u32 },
        /// Spins for `us` microseconds (on every run, whatever `faulty_runs` says).
        Work { us: u32 },
        /// Answers, and has its process abort 20 ms later, while it waits for its next task.
        DieAfterAnswering,
        /// Writes over the first byte of the pool's shared memory: the supervisor's page.
        Scribble,
        /// Returns an error (an outcome, not a crash).
        Fail,
    }

    /// A task: its id, and a fault on its first `faulty_runs` runs.
    #[derive(Debug, Clone, Copy, PartialEq)]
    struct Probe {
        id: u32,
        fault: Fault,
        faulty_runs: u32,
    }

    // SAFETY: integers and an enum of integers: no pointer, no handle.
    unsafe impl Portable for Fault {}
    // SAFETY: as above.
    unsafe impl Portable for Probe {}

    impl Probe {
        fn ok(id: u32) -> Probe {
            Probe {
                id,
                fault: Fault::None,
                faulty_runs: 0,
            }
        }

        fn faulty(id: u32, fault: Fault, faulty_runs: u32) -> Probe {
            Probe {
                id,
                fault,
                faulty_runs,
            }
        }
    }

    const DELIBERATE: &str = "deliberate panic";

    /// The task code: the fault on a faulty run, else `id * 2`.
    fn probe(ctx: &Context<'_>, task: &Probe) -> Result<u64, u32> {
        if let Fault::Work { us } = task.fault {
            let until = Instant::now() + Duration::from_micros(us.into());
            while Instant::now() < until {
                std::hint::spin_loop();
            }
        }
        if ctx.attempt() <= task.faulty_runs {
            match task.fault {
                Fault::None | Fault::Work { .. } => {}
                Fault::Segfault => {
                    // SAFETY: none, deliberately: the page at 0 is never mapped; the kernel
                    // kills the process with SIGSEGV.
                    unsafe { std::ptr::without_provenance_mut::<u8>(8).write_volatile(1) };
                }
                Fault::Abort => std::process::abort(),
                Fault::StackOverflow => {
                    black_box(recurse(0));
                }
                Fault::Allocate => {
                    let mut hoard: Vec<Vec<u8>> = Vec::new();
                    loop {
                        let mut chunk = Vec::with_capacity(32 << 20);
                        chunk.push(1);
                        hoard.push(black_box(chunk));
                    }
                }
                Fault::Panic => panic!("{DELIBERATE} in task {}", task.id),
                Fault::Exit(code) => std::process::exit(code),
                Fault::Sleep { ms } => thread::sleep(Duration::from_millis(ms.into())),
                Fault::Heartbeats { ms } => {
                    let until = Instant::now() + Duration::from_millis(ms.into());
                    while Instant::now() < until {
                        ctx.heartbeat();
                        thread::sleep(Duration::from_millis(5));
                    }
                }
                Fault::Fail => return Err(task.id),
                Fault::Scribble => {
                    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
                    // `start-end perms offset dev inode path`: the mapping of the memfd's start.
                    let front = maps
                        .lines()
                        .find(|line| {
                            line.contains("memfd:foreman")
                                && line.split_whitespace().nth(2) == Some("00000000")
                        })
                        .expect("the pool's shared memory is mapped");
                    let start = usize::from_str_radix(front.split('-').next().unwrap(), 16);
                    let start = std::ptr::with_exposed_provenance_mut::<u8>(start.unwrap());
                    // SAFETY: none, deliberately: a bug that writes where it must not. The page
                    // is read-only in workers: the kernel kills this process with SIGSEGV.
                    unsafe { start.write_volatile(0xff) };
                }
                Fault::DieAfterAnswering => {
                    thread::spawn(|| {
                        thread::sleep(Duration::from_millis(20));
                        std::process::abort();
                    });
                }
            }
        }
        Ok(u64::from(task.id) * 2)
    }

    /// Deep enough to overflow any stack.
    fn recurse(depth: u64) -> u64 {
        let frame = black_box([depth; 32]);
        if black_box(true) {
            recurse(depth + 1) + frame[7]
        } else {
            frame[0]
        }
    }

    static PROBE: Handler<Probe, u64, u32> = Handler::new("probe", probe);
    /// The same task code, in workers limited to 256 MiB of address space.
    static LIMITED: Handler<Probe, u64, u32> =
        Handler::new("probe-limited", probe).with_address_space_limit(256 << 20);
    /// Shares PROBE's name with other types: its workers are claimed by PROBE and refuse.
    static CLASH: Handler<u32, u32, u32> = Handler::new("probe", |_, n| Ok(*n));
    /// Never served by `main`: its workers fall through to `main`.
    static UNSERVED: Handler<u32, u32, u32> = Handler::new("unserved", |_, n| Ok(*n));

    /// The same task code; its workers refuse to start while [`fragile_flag`] exists.
    static FRAGILE: Handler<Probe, u64, u32> = Handler::new("fragile", probe);

    /// The file that stops FRAGILE's workers of the test process `parent` from starting.
    fn fragile_flag(parent: u32) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("foreman-fragile-{parent}"))
    }

    /// Big tasks: the sum of their bytes.
    static BIG: Handler<[u8; 1024], u32, ()> = Handler::new("big", |_, bytes| {
        Ok(bytes.iter().map(|&b| u32::from(b)).sum())
    });

    /// Set when this binary runs as a parent of a pool in another test (see `parent_main`).
    const PARENT_VAR: &str = "FOREMAN_TEST_PARENT";

    pub fn main() -> ExitCode {
        PROBE.serve_if_worker();
        LIMITED.serve_if_worker();
        // (The worker variable ends with the handler's name.)
        let fragile =
            std::env::var("FOREMAN_PROCESS_WORKER").is_ok_and(|v| v.ends_with(":fragile"));
        if fragile && fragile_flag(std::os::unix::process::parent_id()).exists() {
            return ExitCode::from(4);
        }
        FRAGILE.serve_if_worker();
        BIG.serve_if_worker();
        review::SPOIL.serve_if_worker();
        review::big::HUGE.serve_if_worker();
        review::CORPSE.serve_if_worker();
        // UNSERVED's workers get here. A real program would go on into its own `main`, where
        // starting a pool fails (see `start_refuses_…`); this one would run every test again.
        if std::env::var_os("FOREMAN_PROCESS_WORKER").is_some() {
            eprintln!("no handler of this program serves this worker");
            return ExitCode::from(3);
        }
        if let Ok(scenario) = std::env::var(PARENT_VAR) {
            if let Some(scenario) = scenario.strip_prefix("review-") {
                review::parent_main(scenario);
            }
            parent_main(&scenario);
        }
        let args = Arguments::from_args();
        let tests = vec![
            trial(
                "completes_every_task_and_leaves_nothing_behind",
                60,
                completes_every_task,
            ),
            trial(
                "an_error_is_an_outcome_not_a_crash",
                60,
                an_error_is_an_outcome,
            ),
            trial("segfault_once_is_retried_by_a_new_process", 60, || {
                fault_once(Fault::Segfault, "SIGSEGV")
            }),
            trial("abort_once_is_retried_by_a_new_process", 60, || {
                fault_once(Fault::Abort, "SIGABRT")
            }),
            trial(
                "stack_overflow_once_is_retried_by_a_new_process",
                60,
                || fault_once(Fault::StackOverflow, "killed by signal"),
            ),
            trial("panic_once_is_retried_and_reports_its_message", 60, || {
                fault_once(Fault::Panic, DELIBERATE)
            }),
            trial("exit_in_a_task_is_a_crash", 60, || {
                fault_once(Fault::Exit(7), "exited with status 7")
            }),
            trial(
                "segfault_every_time_is_dead_lettered_after_3_attempts",
                60,
                || fault_always(&PROBE, Fault::Segfault, "SIGSEGV"),
            ),
            trial("address_space_limit_kills_a_hoarder_every_time", 60, || {
                fault_always(&LIMITED, Fault::Allocate, "SIGABRT")
            }),
            trial(
                "sigkill_from_outside_of_a_busy_worker",
                60,
                sigkill_busy_worker,
            ),
            trial(
                "a_worker_that_dies_after_answering_completes_its_task_once",
                60,
                death_after_answering,
            ),
            trial(
                "a_temporary_worker_is_not_replaced_and_its_task_is_requeued",
                60,
                temporary_worker_requeues,
            ),
            trial(
                "a_task_that_writes_over_the_supervisor_faults_in_its_worker",
                60,
                || fault_once(Fault::Scribble, "SIGSEGV"),
            ),
            trial(
                "sigkill_from_outside_of_an_idle_worker",
                60,
                sigkill_idle_worker,
            ),
            trial(
                "watchdog_kills_a_hung_worker_and_the_retry_completes",
                60,
                || watchdog_kills(1),
            ),
            trial(
                "watchdog_kills_a_task_that_always_hangs_until_dead_lettered",
                60,
                || watchdog_kills(3),
            ),
            trial(
                "heartbeats_keep_a_long_task_alive",
                60,
                heartbeats_keep_alive,
            ),
            trial(
                "exceeding_the_intensity_escalates_and_hands_back",
                60,
                escalates,
            ),
            trial(
                "a_replacement_that_cannot_start_retires_its_slot_and_hands_back_the_retry",
                60,
                replacement_cannot_start,
            ),
            trial(
                "a_pool_outlives_the_thread_that_started_it",
                60,
                outlives_its_starter,
            ),
            trial(
                "a_supervisor_bigger_than_a_stack_is_built_in_place",
                60,
                big_supervisor,
            ),
            trial(
                "condemning_through_the_supervisor_kills_the_worker",
                60,
                condemned_from_outside,
            ),
            trial("abort_hands_back_what_is_queued", 60, abort_hands_back),
            trial(
                "dropping_the_pool_hands_queued_tasks_to_the_sink",
                60,
                drop_hands_back,
            ),
            trial(
                "try_submit_hands_back_when_full_or_closed",
                60,
                try_submit_hands_back,
            ),
            trial(
                "random_kills_under_load_lose_nothing",
                240,
                random_kills_under_load,
            ),
            trial(
                "start_refuses_a_handler_whose_workers_main_does_not_serve",
                60,
                unserved,
            ),
            trial("start_refuses_two_handlers_of_one_name", 60, name_clash),
            trial(
                "a_worker_process_is_recycled_after_its_quota_of_tasks",
                60,
                recycles,
            ),
            trial(
                "a_replacement_process_waits_out_the_restart_backoff",
                60,
                backs_off,
            ),
            trial(
                "an_abort_does_not_wait_out_a_restart_backoff",
                60,
                abort_during_backoff,
            ),
            trial(
                "a_parent_interrupted_by_ctrl_c_leaves_no_worker",
                60,
                || parent_dies("interrupt"),
            ),
            trial("a_parent_killed_with_sigkill_leaves_no_worker", 60, || {
                parent_dies("kill")
            }),
            trial("a_parent_that_panics_leaves_no_worker", 60, || {
                parent_dies("panic")
            }),
            trial(
                "a_parent_that_exits_without_dropping_leaves_no_worker",
                60,
                || parent_dies("exit"),
            ),
        ];
        let mut tests = tests;
        tests.extend(review::trials());
        let conclusion = libtest_mimic::run(&args, tests);
        if !conclusion.has_failed() && !args.list {
            // Every pool is gone: no child process of ours (running or zombie) may remain,
            // and no shared memory of a pool may be open here.
            let children = children_of(std::process::id());
            assert!(children.is_empty(), "processes left behind: {children:?}");
            assert_eq!(open_pool_memory(), 0, "a pool's memfd is still open");
        }
        conclusion.exit_code()
    }

    /// A test bounded by a watchdog: a hang fails it with a clear message instead of blocking.
    /// Named `processes::<name>`, so other suites can `--skip processes::`.
    fn trial(name: &'static str, seconds: u64, test: impl FnOnce() + Send + 'static) -> Trial {
        Trial::test(format!("processes::{name}"), move || {
            let (done, outcome) = mpsc::channel();
            thread::Builder::new()
                .name(name.into())
                .spawn(move || {
                    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(test));
                    let _ = done.send(result);
                })
                .expect("a test thread");
            match outcome.recv_timeout(Duration::from_secs(seconds)) {
                Ok(Ok(())) => Ok(()),
                Ok(Err(panic)) => Err(Failed::from(panic_text(&*panic))),
                Err(_) => Err(Failed::from(format!(
                    "hung: {name} did not finish within {seconds} s"
                ))),
            }
        })
    }

    fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic".into())
    }

    // ----- recording ------------------------------------------------------------------------

    /// Every event of a pool, in order, and the worker pids seen.
    #[derive(Default)]
    struct Log {
        events: Mutex<Vec<Event<Probe, u64, u32, String>>>,
        pids: Mutex<HashSet<u32>>,
    }

    impl Log {
        fn sink(
            self: &Arc<Self>,
        ) -> impl Fn(Event<Probe, u64, u32, String>) + Send + Sync + 'static {
            let log = Arc::clone(self);
            move |event| log.events.lock().unwrap().push(event)
        }

        fn saw<const W: usize>(&self, pids: [Option<u32>; W]) {
            self.pids.lock().unwrap().extend(pids.into_iter().flatten());
        }

        fn take(&self) -> Vec<Event<Probe, u64, u32, String>> {
            std::mem::take(&mut *self.events.lock().unwrap())
        }

        /// Waits until `pred` holds for the events so far.
        fn wait_for(&self, what: &str, pred: impl Fn(&[Event<Probe, u64, u32, String>]) -> bool) {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !pred(&self.events.lock().unwrap()) {
                assert!(Instant::now() < deadline, "timed out waiting for {what}");
                thread::sleep(Duration::from_millis(2));
            }
        }
    }

    /// Where each task ended, from the events: exactly once, or the test fails.
    struct Endings {
        completed: Vec<(u32, u64)>,
        failed: Vec<u32>,
        dead_lettered: Vec<(u32, u32)>,
        handed_back: Vec<u32>,
        crashes: Vec<(usize, String, Option<Disposition<Probe>>, Decision)>,
        hung: usize,
        recycled: usize,
    }

    fn endings(events: Vec<Event<Probe, u64, u32, String>>) -> Endings {
        let mut endings = Endings {
            completed: Vec::new(),
            failed: Vec::new(),
            dead_lettered: Vec::new(),
            handed_back: Vec::new(),
            crashes: Vec::new(),
            hung: 0,
            recycled: 0,
        };
        for event in events {
            match event {
                Event::Completed { task, output, .. } => endings.completed.push((task.id, output)),
                Event::Failed { task, error, .. } => {
                    assert_eq!(error, task.id);
                    endings.failed.push(task.id)
                }
                Event::Crashed {
                    worker,
                    cause,
                    task,
                    decision,
                } => {
                    match task {
                        Some(Disposition::DeadLettered { task, attempts }) => {
                            endings.dead_lettered.push((task.id, attempts))
                        }
                        Some(Disposition::HandedBack(task)) => endings.handed_back.push(task.id),
                        Some(Disposition::Lost(task)) => panic!("task {} lost", task.id),
                        _ => {}
                    }
                    endings.crashes.push((worker, cause, task, decision));
                }
                Event::Hung { .. } => endings.hung += 1,
                Event::Recycled { .. } => endings.recycled += 1,
                Event::HandedBack { task } => endings.handed_back.push(task.id),
                other => panic!("an unexpected event: {other:?}"),
            }
        }
        for (id, output) in &endings.completed {
            assert_eq!(*output, u64::from(*id) * 2, "task {id}'s output");
        }
        endings
    }

    impl Endings {
        /// Checks every id in `ids` ended exactly once, somewhere.
        fn exactly_once(&self, ids: impl IntoIterator<Item = u32>) {
            let mut seen = HashSet::new();
            let all = self
                .completed
                .iter()
                .map(|(id, _)| *id)
                .chain(self.failed.iter().copied())
                .chain(self.dead_lettered.iter().map(|(id, _)| *id))
                .chain(self.handed_back.iter().copied());
            for id in all {
                assert!(seen.insert(id), "task {id} ended twice");
            }
            for id in ids {
                assert!(seen.remove(&id), "task {id} never ended");
            }
            assert!(seen.is_empty(), "tasks nobody submitted ended: {seen:?}");
        }
    }

    /// The report's counters add up and agree with the events.
    fn check_report<const W: usize>(report: &Report<Probe, W>, endings: &Endings) {
        let snap = &report.snapshot;
        assert!(snap.adds_up(), "{snap:?}");
        assert_eq!((snap.queued, snap.in_flight), (0, 0), "{snap:?}");
        assert_eq!(snap.completed, endings.completed.len(), "{snap:?}");
        assert_eq!(snap.failed, endings.failed.len(), "{snap:?}");
        assert_eq!(snap.dead_lettered, endings.dead_lettered.len(), "{snap:?}");
        assert_eq!(snap.handed_back, endings.handed_back.len(), "{snap:?}");
        assert_eq!(snap.crashes() as usize, endings.crashes.len(), "{snap:?}");
        assert!(matches!(snap.state, SupervisorState::Stopped(_)));
    }

    /// The worker processes are gone: reaped by the pool (not our children any more, not in
    /// /proc) — no process and no zombie left.
    fn assert_gone(pids: &Mutex<HashSet<u32>>) {
        let pids = pids.lock().unwrap();
        assert!(!pids.is_empty(), "the test saw no worker process");
        let children = children_of(std::process::id());
        for pid in pids.iter() {
            assert!(
                !children.contains(pid),
                "worker process {pid} is still a child of ours (alive or a zombie)"
            );
        }
    }

    /// The pids of the processes (zombies too) whose parent is `parent`.
    fn children_of(parent: u32) -> Vec<u32> {
        let mut children = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // `pid (comm) state ppid …`; comm may hold spaces and parentheses.
            let after_comm = &stat[stat.rfind(')').map_or(0, |i| i + 1)..];
            let ppid = after_comm.split_whitespace().nth(1);
            if ppid.and_then(|p| p.parse::<u32>().ok()) == Some(parent) {
                children.push(pid);
            }
        }
        children
    }

    /// How many pools' memfds this process has open.
    fn open_pool_memory() -> usize {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .flatten()
            .filter(|fd| {
                std::fs::read_link(fd.path())
                    .is_ok_and(|target| target.to_string_lossy().starts_with("/memfd:foreman"))
            })
            .count()
    }

    fn unlimited(attempts: u32) -> Policy {
        Policy::DEFAULT
            .with_intensity(Intensity::unlimited())
            .with_delivery(Delivery::at_least_once(attempts).unwrap())
    }

    fn start<const W: usize>(
        policy: Policy,
        handler: &'static Handler<Probe, u64, u32>,
        log: &Arc<Log>,
    ) -> Pool<Probe, u64, u32, 64, W> {
        let pool = Pool::start(policy, handler, log.sink()).expect("the pool starts");
        let pids = pool.pids();
        assert!(
            pids.iter().all(Option::is_some),
            "every worker serves: {pids:?}"
        );
        log.saw(pids);
        pool
    }

    fn kill(pid: u32) {
        let pid = Pid::from_raw(pid as i32).unwrap();
        // Only a child of ours: a pid that was reaped meanwhile could be someone else's.
        if children_of(std::process::id()).contains(&(pid.as_raw_nonzero().get() as u32)) {
            let _ = rustix::process::kill_process(pid, Signal::KILL);
        }
    }

    // ----- the tests ------------------------------------------------------------------------

    fn completes_every_task() {
        let log = Arc::new(Log::default());
        let pool = start::<3>(Policy::DEFAULT, &PROBE, &log);
        for id in 0..200 {
            pool.submit(Probe::ok(id)).unwrap();
        }
        let report = pool.drain();
        let endings = endings(log.take());
        endings.exactly_once(0..200);
        check_report(&report, &endings);
        assert_eq!(report.snapshot.crashes(), 0);
        assert_eq!(
            report.snapshot.state,
            SupervisorState::Stopped(Shutdown::Drain)
        );
        assert_gone(&log.pids);
    }

    fn an_error_is_an_outcome() {
        let log = Arc::new(Log::default());
        let pool = start::<2>(Policy::DEFAULT, &PROBE, &log);
        pool.submit(Probe::faulty(1, Fault::Fail, u32::MAX))
            .unwrap();
        pool.submit(Probe::ok(2)).unwrap();
        let report = pool.drain();
        let endings = endings(log.take());
        endings.exactly_once([1, 2]);
        assert_eq!(endings.failed, [1]);
        check_report(&report, &endings);
        assert_eq!(report.snapshot.crashes(), 0);
        assert_gone(&log.pids);
    }

    /// A task that crashes its worker on its first run: the worker process is replaced, the
    /// task runs again on the replacement and completes, the other tasks are unaffected.
    fn fault_once(fault: Fault, cause: &str) {
        let log = Arc::new(Log::default());
        let pool = start::<2>(Policy::DEFAULT, &PROBE, &log);
        let before = pool.pids();
        for id in 0..10 {
            pool.submit(Probe::ok(id)).unwrap();
        }
        pool.submit(Probe::faulty(10, fault, 1)).unwrap();
        for id in 11..20 {
            pool.submit(Probe::ok(id)).unwrap();
        }
        log.wait_for("the crash", |events| {
            events.iter().any(|e| matches!(e, Event::Crashed { .. }))
        });
        log.saw(pool.pids());
        let after = pool.pids();
        let report = pool.drain();
        let endings = endings(log.take());
        endings.exactly_once(0..20);
        check_report(&report, &endings);
        assert_eq!(endings.crashes.len(), 1);
        let (worker, crash_cause, task, decision) = &endings.crashes[0];
        assert!(
            crash_cause.contains(cause),
            "cause {crash_cause:?} should mention {cause:?}"
        );
        assert_eq!(*task, Some(Disposition::Retried { attempt: 2 }));
        assert_eq!(*decision, Decision::Replace);
        assert_ne!(
            before[*worker], after[*worker],
            "a new process took the slot"
        );
        assert_eq!(
            (report.snapshot.crashes(), report.snapshot.restarts()),
            (1, 1)
        );
        assert_gone(&log.pids);
    }

    /// A task that crashes its worker on every run: dead-lettered after its third attempt,
    /// each crash counted; the other tasks complete.
    fn fault_always(handler: &'static Handler<Probe, u64, u32>, fault: Fault, cause: &str) {
        let log = Arc::new(Log::default());
        let pool = start::<2>(unlimited(3), handler, &log);
        for id in 0..5 {
            pool.submit(Probe::ok(id)).unwrap();
        }
        pool.submit(Probe::faulty(5, fault, u32::MAX)).unwrap();
        for id in 6..10 {
            pool.submit(Probe::ok(id)).unwrap();
        }
        let report = pool.drain();
        let endings = endings(log.take());
        endings.exactly_once(0..10);
        check_report(&report, &endings);
        assert_eq!(endings.dead_lettered, [(5, 3)]);
        let dispositions: Vec<_> = endings.crashes.iter().map(|c| c.2).collect();
        assert_eq!(
            dispositions,
            [
                Some(Disposition::Retried { attempt: 2 }),
                Some(Disposition::Retried { attempt: 3 }),
                Some(Disposition::DeadLettered {
                    task: Probe::faulty(5, fault, u32::MAX),
                    attempts: 3
                }),
            ]
        );
        for (_, crash_cause, _, _) in &endings.crashes {
            assert!(crash_cause.contains(cause), "cause {crash_cause:?}");
        }
        assert_gone(&log.pids);
    }

    /// Temporary workers are not replaced: the crashed task is requeued, and the other
    /// worker — asleep, waiting for work — is woken to run it, before any shutdown.
    fn temporary_worker_requeues() {
        let log = Arc::new(Log::default());
        let policy = Policy::DEFAULT.with_restart(foreman_rt::policy::Restart::Temporary);
        let pool = start::<2>(policy, &PROBE, &log);
        pool.submit(Probe::faulty(0, Fault::Segfault, 1)).unwrap();
        log.wait_for("the retry's completion, on the other worker", |events| {
            events
                .iter()
                .any(|e| matches!(e, Event::Completed { task, .. } if task.id == 0))
        });
        log.saw(pool.pids());
        let report = pool.drain();
        let endings = endings(log.take());
        endings.exactly_once([0]);
        check_report(&report, &endings);
        let (worker, _, task, decision) = &endings.crashes[0];
        assert_eq!(
            (*task, *decision),
            (Some(Disposition::Requeued { attempt: 2 }), Decision::Retire)
        );
        assert_eq!(report.snapshot.workers[*worker].state, WorkerState::Retired);
        assert_eq!(
            (report.snapshot.requeued, report.snapshot.restarts()),
            (1, 0)
        );
        assert_gone(&log.pids);
    }

    /// A worker process that dies after it answered: the task completed (once), and the
    /// crash of the idle worker holds no task.
    fn death_after_answering() {
        let log = Arc::new(Log::default());
        let pool = start::<1>(Policy::DEFAULT, &PROBE, &log);
        pool.submit(Probe::faulty(0, Fault::DieAfterAnswering, 1))
            .unwrap();
        log.wait_for("the crash", |events| {
            events.iter().any(|e| matches!(e, Event::Crashed { .. }))
        });
        for id in 1..5 {
            pool.submit(Probe::ok(id)).unwrap();
        }
        log.saw(pool.pids());
        let report = pool.drain();
        let endings = endings(log.take());
        endings.exactly_once(0..5);
        check_report(&report, &endings);
        let (_, cause, task, decision) = &endings.crashes[0];
        assert_eq!((*task, *decision), (None, Decision::Replace));
        assert!(cause.contains("SIGABRT"), "{cause}");
        assert_gone(&log.pids);
    }

    /// Waits until some worker is busy with a task; returns its index.
    fn busy_worker<const N: usize, const W: usize>(pool: &Pool<Probe, u64, u32, N, W>) -> usize {
        let deadline = Instant::now() + Duration::from_secs(30);
        let index = loop {
            let snap = pool.snapshot();
            if let Some(index) = snap
                .workers
                .iter()
                .position(|w| w.state == WorkerState::Busy)
            {
                break index;
            }
            assert!(Instant::now() < deadline, "no worker became busy");
            thread::sleep(Duration::from_millis(1));
        };
        // Busy is the parent's word: the task was given. A worker process killed before it
        // takes the order never began the task, and its retry is the same attempt again (not
        // charged). Wait until the process is out of its wait for orders (on a futex) — in
        // the task — for two looks in a row.
        let Some(pid) = pool.pids()[index] else {
            return index;
        };
        let in_task = || {
            std::fs::read_to_string(format!("/proc/{pid}/wchan"))
                .is_ok_and(|wchan| !wchan.contains("futex"))
        };
        while !(in_task() && {
            thread::sleep(Duration::from_millis(5));
            in_task()
        }) {
            if Instant::now() >= deadline {
                break;
            }
            thread::sleep(Duration::from_millis(1));
        }
        index
    }

    fn sigkill_busy_worker() {
        let log = Arc::new(Log::default());
        let pool = start::<2>(Policy::DEFAULT, &PROBE, &log);
        // Sleeps a minute on its first run: plenty of time to be killed.
        pool.submit(Probe::faulty(0, Fault::Sleep { ms: 60_000 }, 1))
            .unwrap();
        let index = busy_worker(&pool);
        kill(pool.pids()[index].unwrap());
        for id in 1..10 {
            pool.submit(Probe::ok(id)).unwrap();
        }
        log.wait_for("the crash", |events| {
            events.iter().any(|e| matches!(e, Event::Crashed { .. }))
        });
        log.saw(pool.pids());
        let report = pool.drain();
        let endings = endings(log.take());
        endings.exactly_once(0..10);
        check_report(&report, &endings);
        let (worker, cause, task, decision) = &endings.crashes[0];
        assert_eq!(*worker, index);
        assert!(cause.contains("SIGKILL"), "{cause}");
        assert_eq!(
            (*task, *decision),
            (Some(Disposition::Retried { attempt: 2 }), Decision::Replace)
        );
        assert_gone(&log.pids);
    }

    fn sigkill_idle_worker() {
        let log = Arc::new(Log::default());
        let pool = start::<2>(Policy::DEFAULT, &PROBE, &log);
        let victim = pool.pids()[1].unwrap();
        kill(victim);
        log.wait_for("the crash", |events| {
            events.iter().any(|e| matches!(e, Event::Crashed { .. }))
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        while pool.pids()[1].is_none_or(|pid| pid == victim) {
            assert!(Instant::now() < deadline, "no replacement for worker 1");
            thread::sleep(Duration::from_millis(1));
        }
        log.saw(pool.pids());
        for id in 0..20 {
            pool.submit(Probe::ok(id)).unwrap();
        }
        let report = pool.drain();
        let endings = endings(log.take());
        endings.exactly_once(0..20);
        check_report(&report, &endings);
        let (worker, cause, task, decision) = &endings.crashes[0];
        assert_eq!((*worker, *task, *decision), (1, None, Decision::Replace));
        assert!(cause.contains("SIGKILL"), "{cause}");
        assert_gone(&log.pids);
    }

    /// A task that hangs (sleeps without heartbeats) on its first `hangs` runs, under a
    /// 200 ms watchdog: each hang is reported, the worker killed and replaced.
    fn watchdog_kills(hangs: u32) {
        let log = Arc::new(Log::default());
        let policy = unlimited(3).with_watchdog(200).unwrap();
        let pool = start::<2>(policy, &PROBE, &log);
        let hanging = Probe::faulty(0, Fault::Sleep { ms: 600_000 }, hangs);
        pool.submit(hanging).unwrap();
        for id in 1..10 {
            pool.submit(Probe::ok(id)).unwrap();
        }
        log.wait_for("the crashes", |events| {
            events
                .iter()
                .filter(|e| matches!(e, Event::Crashed { .. }))
                .count()
                == hangs as usize
        });
        log.saw(pool.pids());
        let report = pool.drain();
        let endings = endings(log.take());
        endings.exactly_once(0..10);
        check_report(&report, &endings);
        assert_eq!(endings.hung, hangs as usize);
        assert_eq!(endings.crashes.len(), hangs as usize);
        for (_, cause, _, _) in &endings.crashes {
            assert!(cause.contains("watchdog"), "{cause}");
        }
        if hangs == 3 {
            assert_eq!(endings.dead_lettered, [(0, 3)]);
        } else {
            assert!(endings.completed.iter().any(|(id, _)| *id == 0));
        }
        assert_gone(&log.pids);
    }

    fn heartbeats_keep_alive() {
        let log = Arc::new(Log::default());
        let policy = Policy::DEFAULT.with_watchdog(200).unwrap();
        let pool = start::<1>(policy, &PROBE, &log);
        // Five deadlines long, with a heartbeat every few milliseconds.
        pool.submit(Probe::faulty(0, Fault::Heartbeats { ms: 1_000 }, 1))
            .unwrap();
        let report = pool.drain();
        let endings = endings(log.take());
        endings.exactly_once([0]);
        check_report(&report, &endings);
        assert_eq!((endings.hung, endings.crashes.len()), (0, 0));
        assert_gone(&log.pids);
    }

    fn escalates() {
        let log = Arc::new(Log::default());
        let policy = Policy::DEFAULT
            .with_intensity(Intensity::new(1, 60_000).unwrap())
            .with_delivery(Delivery::at_least_once(10).unwrap());
        let pool = start::<1>(policy, &PROBE, &log);
        for id in 0..5 {
            pool.try_submit(Probe::faulty(id, Fault::Segfault, u32::MAX))
                .unwrap();
        }
        // First crash: replaced (1 restart allowed); second: escalation.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !matches!(pool.state(), SupervisorState::Stopped(_)) {
            assert!(Instant::now() < deadline, "no escalation");
            thread::sleep(Duration::from_millis(1));
        }
        log.saw(pool.pids());
        let report = pool.abort();
        let mut endings = endings(log.take());
        assert_eq!(endings.handed_back, [0]); // the crash report of the escalation holds it
        endings
            .handed_back
            .extend(report.handed_back.iter().map(|t| t.id));
        endings.exactly_once(0..5);
        check_report(&report, &endings);
        assert_eq!(
            report.snapshot.state,
            SupervisorState::Stopped(Shutdown::Escalation)
        );
        assert_eq!(report.snapshot.crashes(), 2);
        let ids: Vec<u32> = report.handed_back.iter().map(|t| t.id).collect();
        assert_eq!(ids, [1, 2, 3, 4]);
        assert_gone(&log.pids);
    }

    /// A busy worker is killed, and its replacements cannot start: after three tries the
    /// slot is retired and the retry it held is handed back; the other worker goes on.
    fn replacement_cannot_start() {
        let flag = fragile_flag(std::process::id());
        let _ = std::fs::remove_file(&flag);
        let log = Arc::new(Log::default());
        let pool = start::<2>(Policy::DEFAULT, &FRAGILE, &log);
        pool.submit(Probe::faulty(0, Fault::Sleep { ms: 60_000 }, u32::MAX))
            .unwrap();
        let index = busy_worker(&pool);
        std::fs::write(&flag, b"").unwrap();
        kill(pool.pids()[index].unwrap());
        let deadline = Instant::now() + Duration::from_secs(30);
        while pool.worker_state(index) != Some(WorkerState::Retired) {
            assert!(Instant::now() < deadline, "the slot was not retired");
            thread::sleep(Duration::from_millis(1));
        }
        std::fs::remove_file(&flag).unwrap();
        for id in 1..10 {
            pool.submit(Probe::ok(id)).unwrap();
        }
        log.saw(pool.pids());
        let report = pool.drain();
        let endings = endings(log.take());
        endings.exactly_once(0..10);
        check_report(&report, &endings);
        assert_eq!(endings.handed_back, [0]);
        assert_eq!(
            endings.crashes[0].2,
            Some(Disposition::Retried { attempt: 2 })
        );
        assert_eq!(report.snapshot.workers[index].state, WorkerState::Retired);
        assert_eq!(report.snapshot.workers[1 - index].completed, 9);
        assert_gone(&log.pids);
    }

    /// 4,096 tasks of 1 KiB: a supervisor of over 4 MiB, more than a test thread's stack
    /// (2 MiB): built in the shared mapping directly, never on the stack.
    fn big_supervisor() {
        let sums = Arc::new(Mutex::new(Vec::new()));
        let sink = {
            let sums = Arc::clone(&sums);
            move |event| match event {
                Event::Completed { output, .. } => sums.lock().unwrap().push(output),
                other => panic!("unexpected {other:?}"),
            }
        };
        let pool: Pool<[u8; 1024], u32, (), 4096, 2> =
            Pool::start(Policy::DEFAULT, &BIG, sink).expect("the pool starts");
        let pids = Mutex::new(pool.pids().into_iter().flatten().collect::<HashSet<_>>());
        for fill in 0..100u8 {
            pool.submit([fill; 1024]).unwrap();
        }
        let report = pool.drain();
        assert_eq!(report.snapshot.completed, 100);
        let mut sums = sums.lock().unwrap().clone();
        sums.sort();
        assert_eq!(sums, (0..100).map(|fill| fill * 1024).collect::<Vec<u32>>());
        assert_gone(&pids);
    }

    /// Workers are started by the pool's own threads: the thread that called `start` may end
    /// (PR_SET_PDEATHSIG fires when the *thread* that forked a child ends).
    fn outlives_its_starter() {
        let log = Arc::new(Log::default());
        let pool = {
            let log = Arc::clone(&log);
            thread::spawn(move || start::<2>(Policy::DEFAULT, &PROBE, &log))
                .join()
                .unwrap()
        };
        let pids = pool.pids();
        thread::sleep(Duration::from_millis(100));
        assert_eq!(
            pool.pids(),
            pids,
            "the workers survived their starter thread"
        );
        for id in 0..20 {
            pool.submit(Probe::ok(id)).unwrap();
        }
        let report = pool.drain();
        let endings = endings(log.take());
        endings.exactly_once(0..20);
        check_report(&report, &endings);
        assert_eq!(report.snapshot.crashes(), 0);
        assert_gone(&log.pids);
    }

    /// Condemned through the supervisor while it runs, a worker is killed when its keeper
    /// next looks (here: when the task answers); its task runs again on a new process.
    fn condemned_from_outside() {
        let log = Arc::new(Log::default());
        let pool = start::<1>(Policy::DEFAULT, &PROBE, &log);
        pool.submit(Probe::faulty(0, Fault::Sleep { ms: 200 }, 1))
            .unwrap();
        busy_worker(&pool);
        pool.condemn(pool.current_run(0).expect("busy")).unwrap();
        log.wait_for("the crash", |events| {
            events.iter().any(|e| matches!(e, Event::Crashed { .. }))
        });
        log.saw(pool.pids());
        let report = pool.drain();
        let endings = endings(log.take());
        endings.exactly_once([0]);
        check_report(&report, &endings);
        let (_, cause, task, _) = &endings.crashes[0];
        assert!(cause.contains("condemned"), "{cause}");
        assert_eq!(*task, Some(Disposition::Retried { attempt: 2 }));
        assert_gone(&log.pids);
    }

    fn abort_hands_back() {
        let log = Arc::new(Log::default());
        let pool = start::<1>(Policy::DEFAULT, &PROBE, &log);
        pool.submit(Probe::faulty(0, Fault::Sleep { ms: 300 }, 1))
            .unwrap();
        for id in 1..10 {
            pool.submit(Probe::ok(id)).unwrap();
        }
        busy_worker(&pool);
        let report = pool.abort();
        let mut endings = endings(log.take());
        assert!(
            endings.completed.iter().any(|(id, _)| *id == 0),
            "the running task finished"
        );
        assert!(!report.handed_back.is_empty(), "queued tasks came back");
        endings
            .handed_back
            .extend(report.handed_back.iter().map(|t| t.id));
        endings.exactly_once(0..10);
        check_report(&report, &endings);
        assert_eq!(
            report.snapshot.state,
            SupervisorState::Stopped(Shutdown::Abort)
        );
        assert_gone(&log.pids);
    }

    fn drop_hands_back() {
        let log = Arc::new(Log::default());
        let pool = start::<1>(Policy::DEFAULT, &PROBE, &log);
        pool.submit(Probe::faulty(0, Fault::Sleep { ms: 300 }, 1))
            .unwrap();
        for id in 1..5 {
            pool.submit(Probe::ok(id)).unwrap();
        }
        busy_worker(&pool);
        drop(pool);
        let endings = endings(log.take());
        endings.exactly_once(0..5);
        assert!(!endings.handed_back.is_empty());
        assert_gone(&log.pids);
    }

    fn try_submit_hands_back() {
        let log = Arc::new(Log::default());
        let pool: Pool<Probe, u64, u32, 4, 1> =
            Pool::start(Policy::DEFAULT, &PROBE, log.sink()).unwrap();
        log.saw(pool.pids());
        pool.submit(Probe::faulty(0, Fault::Sleep { ms: 200 }, 1))
            .unwrap();
        busy_worker(&pool);
        for id in 1..5 {
            pool.try_submit(Probe::ok(id)).unwrap();
        }
        let refused = Probe::ok(5);
        assert_eq!(pool.try_submit(refused), Err(SubmitError::Full(refused)));
        pool.begin_drain();
        assert_eq!(pool.submit(refused), Err(SubmitError::Closed(refused)));
        let report = pool.drain();
        let endings = endings(log.take());
        endings.exactly_once(0..5);
        assert_eq!(report.snapshot.rejected, 2);
        assert_gone(&log.pids);
    }

    /// Kills worker processes with SIGKILL at random instants while tasks stream through:
    /// mid-task, while idle, while answering or taking an order. Every task must end exactly
    /// once — completed, or (after as many crashes as attempts) dead-lettered.
    fn random_kills_under_load() {
        const TASKS: u32 = 20_000;
        let completed = Arc::new(Bitmap::new(TASKS as usize));
        let dead_lettered = Arc::new(Bitmap::new(TASKS as usize));
        let crashes = Arc::new(AtomicUsize::new(0));
        let unexpected = Arc::new(Mutex::new(Vec::new()));
        let sink = {
            let (completed, dead_lettered, crashes, unexpected) = (
                Arc::clone(&completed),
                Arc::clone(&dead_lettered),
                Arc::clone(&crashes),
                Arc::clone(&unexpected),
            );
            move |event: Event<Probe, u64, u32, String>| match event {
                Event::Completed { task, output, .. } => {
                    assert_eq!(output, u64::from(task.id) * 2);
                    completed.set(task.id as usize);
                }
                Event::Crashed { task, .. } => {
                    crashes.fetch_add(1, Ordering::Relaxed);
                    match task {
                        None | Some(Disposition::Retried { .. } | Disposition::Requeued { .. }) => {
                        }
                        Some(Disposition::DeadLettered { task, .. }) => {
                            dead_lettered.set(task.id as usize);
                        }
                        Some(other) => unexpected.lock().unwrap().push(format!("{other:?}")),
                    }
                }
                other => unexpected.lock().unwrap().push(format!("{other:?}")),
            }
        };
        let pids = Mutex::new(HashSet::new());
        let pool: Pool<Probe, u64, u32, 256, 4> = Pool::start(unlimited(5), &PROBE, sink).unwrap();
        let stop = AtomicBool::new(false);
        let kills = AtomicUsize::new(0);
        thread::scope(|s| {
            s.spawn(|| {
                // A cheap xorshift: which worker, and how long until the next kill (0–2 ms).
                let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
                while !stop.load(Ordering::Relaxed) {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    thread::sleep(Duration::from_micros(seed % 2_000));
                    let live = pool.pids();
                    pids.lock().unwrap().extend(live.iter().flatten());
                    if let Some(pid) = live[(seed >> 32) as usize % live.len()] {
                        kill(pid);
                        kills.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
            for id in 0..TASKS {
                pool.submit(Probe::faulty(id, Fault::Work { us: 100 }, 0))
                    .unwrap();
            }
            // Keep killing until the queue is drained, then let the rest finish in peace.
            while pool.snapshot().queued > 0 {
                thread::sleep(Duration::from_millis(1));
            }
            stop.store(true, Ordering::Relaxed);
        });
        let report = pool.drain();
        let snap = report.snapshot;
        assert_eq!(*unexpected.lock().unwrap(), Vec::<String>::new());
        assert_eq!(
            (completed.duplicates(), dead_lettered.duplicates()),
            (0, 0),
            "a task ended twice"
        );
        for id in 0..TASKS as usize {
            assert!(
                completed.get(id) != dead_lettered.get(id),
                "task {id} ended {} times",
                u8::from(completed.get(id)) + u8::from(dead_lettered.get(id))
            );
        }
        assert_eq!(snap.completed, completed.count());
        assert_eq!(snap.dead_lettered, dead_lettered.count());
        assert_eq!(snap.crashes() as usize, crashes.load(Ordering::Relaxed));
        assert!(snap.adds_up(), "{snap:?}");
        assert_eq!(
            (snap.submitted, snap.queued, snap.in_flight),
            (TASKS as usize, 0, 0)
        );
        let kills = kills.load(Ordering::Relaxed);
        assert!(
            kills >= 20,
            "only {kills} kills: the test did not test much"
        );
        assert!(snap.crashes() >= 10, "only {} crashes", snap.crashes());
        println!(
            "random kills: {kills} SIGKILLs, {} crashes, {} completed, {} dead-lettered",
            snap.crashes(),
            snap.completed,
            snap.dead_lettered
        );
        assert_gone(&pids);
    }

    /// Recycling: a new process every 5 tasks, none of it a crash or a restart.
    fn recycles() {
        let log = Arc::new(Log::default());
        let policy = Policy::DEFAULT.with_recycling(5).unwrap();
        let pool = start::<1>(policy, &PROBE, &log);
        let mut pids = HashSet::new();
        pids.extend(pool.pids()[0]);
        for id in 0..20 {
            pool.submit(Probe::ok(id)).unwrap();
        }
        // While running, the worker is recycled after its 20th task too: 4 in all.
        log.wait_for("4 recyclings", |events| {
            events
                .iter()
                .filter(|e| matches!(e, Event::Recycled { worker: 0 }))
                .count()
                == 4
        });
        while pool.pids()[0].is_none() {
            thread::sleep(Duration::from_millis(2));
        }
        pids.extend(pool.pids()[0]);
        log.saw(pool.pids());
        let report = pool.drain();
        let endings = endings(log.take());
        endings.exactly_once(0..20);
        check_report(&report, &endings);
        assert_eq!(endings.recycled, 4);
        let snap = &report.snapshot;
        assert_eq!(
            (snap.recycles(), snap.restarts(), snap.crashes()),
            (4, 0, 0)
        );
        assert_eq!(pids.len(), 2, "the first and the last process differ");
        assert_gone(&log.pids);
    }

    /// Restart backoff: the replacement after a crash starts no earlier than the delay.
    fn backs_off() {
        use foreman_rt::policy::Backoff;
        let log = Arc::new(Log::default());
        let policy = unlimited(3).with_backoff(Backoff::new(300, 2, 1_000).unwrap());
        let pool = start::<1>(policy, &PROBE, &log);
        pool.submit(Probe::faulty(1, Fault::Panic, 1)).unwrap();
        log.wait_for("the crash", |events| {
            events.iter().any(|e| matches!(e, Event::Crashed { .. }))
        });
        let crashed = Instant::now();
        assert_eq!(pool.worker_state(0), Some(WorkerState::Restarting));
        log.wait_for("the retry's result", |events| {
            events.iter().any(|e| matches!(e, Event::Completed { .. }))
        });
        // A lower bound only (the crash was seen up to a poll late, hence the margin).
        let waited = crashed.elapsed();
        assert!(
            waited >= Duration::from_millis(250),
            "the retry came after {waited:?}"
        );
        log.saw(pool.pids());
        let report = pool.drain();
        let endings = endings(log.take());
        endings.exactly_once([1]);
        check_report(&report, &endings);
        assert_gone(&log.pids);
    }

    /// An abort while a replacement waits out a long backoff returns at once.
    fn abort_during_backoff() {
        use foreman_rt::policy::Backoff;
        let log = Arc::new(Log::default());
        let policy = unlimited(3).with_backoff(Backoff::new(60_000, 2, 60_000).unwrap());
        let pool = start::<1>(policy, &PROBE, &log);
        pool.submit(Probe::faulty(1, Fault::Panic, 1)).unwrap();
        log.wait_for("the crash", |events| {
            events.iter().any(|e| matches!(e, Event::Crashed { .. }))
        });
        let aborting = Instant::now();
        let report = pool.abort();
        assert!(
            aborting.elapsed() < Duration::from_secs(20),
            "hung: the abort waited out the backoff ({:?})",
            aborting.elapsed()
        );
        assert_eq!(
            report.handed_back.iter().map(|p| p.id).collect::<Vec<_>>(),
            [1]
        );
        assert!(report.snapshot.adds_up());
        assert_gone(&log.pids);
    }

    fn unserved() {
        let err = Pool::<u32, u32, u32, 4, 1>::start(Policy::DEFAULT, &UNSERVED, |_| {})
            .expect_err("its workers cannot serve");
        let message = err.to_string();
        assert!(
            message.contains("unserved.serve_if_worker()"),
            "the error should name the missing call: {message}"
        );
    }

    fn name_clash() {
        let err = Pool::<u32, u32, u32, 4, 1>::start(Policy::DEFAULT, &CLASH, |_| {})
            .expect_err("its workers are claimed by the other handler of that name");
        assert!(err.to_string().contains("could not set itself up"), "{err}");
    }

    // ----- parents that die -----------------------------------------------------------------

    /// This binary as the parent of a pool: starts 2 workers busy with long tasks, prints
    /// `pids <a> <b>`, then dies as `scenario` says.
    fn parent_main(scenario: &str) -> ! {
        let pool: Pool<Probe, u64, u32, 16, 2> =
            Pool::start(Policy::DEFAULT, &PROBE, |_| {}).expect("the pool starts");
        for id in 0..4 {
            pool.submit(Probe::faulty(id, Fault::Sleep { ms: 600_000 }, 1))
                .unwrap();
        }
        let pids = pool.pids().map(Option::unwrap);
        println!("pids {} {}", pids[0], pids[1]);
        match scenario {
            // Waits for the test's SIGINT (to its whole process group, as a terminal's Ctrl-C
            // does), or its SIGKILL; either ends the process at once.
            "interrupt" | "kill" => loop {
                thread::sleep(Duration::from_secs(1));
            },
            // Unwinds through `pool`: its drop must not wait for the 10-minute tasks.
            "panic" => panic!("{DELIBERATE}: the parent panics with its pool running"),
            // No drop at all: only PR_SET_PDEATHSIG can end the workers.
            _ => std::process::exit(0),
        }
    }

    /// Runs `parent_main(scenario)` in a child process and checks its workers die with it.
    fn parent_dies(scenario: &str) {
        // Orphans are re-parented to us, so we can see (and reap) any that outlive the parent.
        rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap();
        // Its own process group, as a program started from a shell is: the group a
        // terminal's Ctrl-C goes to.
        let mut parent = Command::new(std::env::current_exe().unwrap())
            .env(PARENT_VAR, scenario)
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(parent.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let pids: Vec<u32> = line
            .strip_prefix("pids ")
            .unwrap_or_else(|| panic!("the parent said {line:?}"))
            .split_whitespace()
            .map(|pid| pid.parse().unwrap())
            .collect();
        assert_eq!(pids.len(), 2);
        let parent_pid = Pid::from_raw(parent.id() as i32).unwrap();
        match scenario {
            "interrupt" => rustix::process::kill_process_group(parent_pid, Signal::INT).unwrap(),
            "kill" => rustix::process::kill_process(parent_pid, Signal::KILL).unwrap(),
            _ => {}
        }
        let status = parent.wait().unwrap();
        assert!(!status.success() || scenario == "exit", "{status:?}");
        // Each worker is dead: either the parent reaped it, or it was orphaned to us and died
        // of the SIGKILL its parent's death sent; reap those here.
        let deadline = Instant::now() + Duration::from_secs(10);
        for pid in pids {
            let raw = Pid::from_raw(pid as i32).unwrap();
            loop {
                match rustix::process::waitpid(Some(raw), WaitOptions::NOHANG) {
                    Ok(Some((_, status))) => {
                        assert_eq!(
                            status.terminating_signal(),
                            Some(Signal::KILL.as_raw()),
                            "worker {pid}"
                        );
                        break;
                    }
                    // Not our child: the parent reaped it before dying.
                    Err(rustix::io::Errno::CHILD) => {
                        assert!(
                            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
                            "worker {pid} outlived its parent"
                        );
                        break;
                    }
                    Ok(None) => {
                        assert!(
                            Instant::now() < deadline,
                            "worker {pid} outlived its parent"
                        );
                        thread::sleep(Duration::from_millis(5));
                    }
                    Err(err) => panic!("waitpid {pid}: {err}"),
                }
            }
        }
    }

    // ----- review findings ------------------------------------------------------------------

    /// Tests written by the adversarial review of the process host (branch `review-rp`). Each
    /// demonstrates a finding and fails today, so each is *ignored*: the suite stays green.
    /// Run them with `cargo test -p foreman-tests --release --test processes -- --ignored`.
    /// A test that demonstrates a hang leaves its stuck threads (and their worker processes,
    /// which die with this process) behind.
    mod review {
        use super::*;
        use std::sync::{OnceLock, Weak};

        /// A trial for review finding `finding`.
        fn review(
            finding: u32,
            name: &'static str,
            seconds: u64,
            test: impl FnOnce() + Send + 'static,
        ) -> Trial {
            let name: &'static str = format!("review_{finding}_{name}").leak();
            trial(name, seconds, test)
        }

        pub(super) fn trials() -> Vec<Trial> {
            let big = [review(
                7,
                "a_big_task_type_does_not_overflow_a_keeper_thread",
                60,
                big::big_task,
            )];
            let mut trials = vec![
                review(
                    1,
                    "a_sink_that_submits_into_the_full_queue_does_not_deadlock_its_keeper",
                    60,
                    sink_submits_into_its_full_pool,
                ),
                review(
                    2,
                    "a_sink_that_drops_the_pool_does_not_wait_for_its_own_keeper",
                    60,
                    sink_drops_its_pool,
                ),
                review(
                    3,
                    "a_sink_that_blocks_on_hung_does_not_stop_death_detection",
                    60,
                    sink_blocks_the_watcher,
                ),
                review(
                    4,
                    "a_sink_panic_whose_payload_panics_on_drop_does_not_kill_the_keeper",
                    60,
                    sink_panic_payload_panics_on_drop,
                ),
                review(
                    5,
                    "reopen_through_the_supervisor_leaves_no_pool_without_workers",
                    60,
                    reopen_through_the_supervisor,
                ),
                // Still ignored: the parent trusts its workers' answer bytes, as `Portable`'s
                // safety contract now says; validating them needs a decision on the bound
                // (every bit pattern valid, or a checked type).
                review(
                    6,
                    "a_spoiled_answer_never_reaches_the_parent_as_an_invalid_value",
                    60,
                    spoiled_answer,
                )
                .with_ignored_flag(true),
                review(
                    8,
                    "condemn_after_a_task_finished_does_not_kill_the_next_task",
                    60,
                    condemn_hits_the_next_task,
                ),
                review(
                    9,
                    "a_parent_whose_stderr_is_closed_keeps_its_supervisor_intact",
                    60,
                    closed_stderr,
                ),
                review(
                    10,
                    "a_task_given_to_a_dead_worker_is_not_charged_a_run",
                    60,
                    task_given_to_a_corpse,
                ),
                review(
                    11,
                    "without_a_watchdog_a_condemned_hung_worker_is_still_killed",
                    60,
                    condemn_without_a_watchdog,
                ),
            ];
            trials.extend(big);
            trials
        }

        /// Whether `done` holds within `limit`.
        fn within(limit: Duration, done: impl Fn() -> bool) -> bool {
            let deadline = Instant::now() + limit;
            while !done() {
                if Instant::now() >= deadline {
                    return false;
                }
                thread::sleep(Duration::from_millis(2));
            }
            true
        }

        /// Takes the pool out of its `Arc` once every other handle is gone.
        fn unwrap_when_unique<P>(mut pool: Arc<P>) -> P {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match Arc::try_unwrap(pool) {
                    Ok(pool) => return pool,
                    Err(shared) => pool = shared,
                }
                assert!(
                    Instant::now() < deadline,
                    "a sink kept its handle on the pool"
                );
                thread::sleep(Duration::from_millis(2));
            }
        }

        type Small = Pool<Probe, u64, u32, 2, 1>;

        /// Finding 1: the sink runs on a keeper thread, and `submit` parks on a full queue. A sink
        /// that submits a follow-up task (a pipeline) into the full queue of a one-worker pool
        /// parks the only thread that could empty it. (The thread host hands the task back in
        /// `SubmitError::Full` on its own threads instead.)
        fn sink_submits_into_its_full_pool() {
            let me: Arc<OnceLock<Weak<Small>>> = Arc::default();
            let completed = Arc::new(AtomicUsize::new(0));
            let came_back = Arc::new(Mutex::new(Vec::new()));
            let sink = {
                let (me, completed, came_back) = (
                    Arc::clone(&me),
                    Arc::clone(&completed),
                    Arc::clone(&came_back),
                );
                move |event: Event<Probe, u64, u32, String>| {
                    if let Event::Completed { task, .. } = event {
                        if task.id == 0 {
                            if let Some(pool) = me.get().and_then(Weak::upgrade) {
                                // The thread host's rule: on the pool's own thread, a full
                                // queue hands the task back at once.
                                if let Err(SubmitError::Full(task)) = pool.submit(Probe::ok(3)) {
                                    came_back.lock().unwrap().push(task.id);
                                }
                            }
                        }
                        completed.fetch_add(1, Ordering::SeqCst);
                    }
                }
            };
            let pool = Arc::new(Small::start(Policy::DEFAULT, &PROBE, sink).unwrap());
            me.set(Arc::downgrade(&pool)).ok().unwrap();
            pool.submit(Probe::faulty(0, Fault::Sleep { ms: 200 }, 1))
                .unwrap();
            busy_worker(&pool);
            pool.submit(Probe::ok(1)).unwrap();
            pool.submit(Probe::ok(2)).unwrap(); // the queue (2) is full now
            let all_ended = within(Duration::from_secs(10), || {
                completed.load(Ordering::SeqCst) + came_back.lock().unwrap().len() == 4
            });
            // Unstick it either way: an abort wakes a parked submitter.
            pool.begin_abort();
            let _ = unwrap_when_unique(pool).abort();
            assert!(
                all_ended,
                "hung: the sink, on the only keeper thread, parked in `submit` on the full \
                 queue that only that keeper empties ({} of 4 tasks ran)",
                completed.load(Ordering::SeqCst)
            );
            assert_eq!(
                *came_back.lock().unwrap(),
                [3],
                "task 3 came back in `Full`"
            );
        }

        /// Finding 2: a sink that drops the pool (its owner handed it over, or the last `Arc`)
        /// runs `Pool::drop` on a keeper thread, which waits for every keeper, itself included.
        fn sink_drops_its_pool() {
            let holder: Arc<Mutex<Option<Small>>> = Arc::default();
            let dropped = Arc::new(AtomicBool::new(false));
            let sink = {
                let (holder, dropped) = (Arc::clone(&holder), Arc::clone(&dropped));
                move |event: Event<Probe, u64, u32, String>| {
                    if matches!(event, Event::Completed { .. }) {
                        let pool = holder.lock().unwrap().take();
                        if pool.is_some() {
                            drop(pool);
                            dropped.store(true, Ordering::SeqCst);
                        }
                    }
                }
            };
            let pool = Small::start(Policy::DEFAULT, &PROBE, sink).unwrap();
            pool.submit(Probe::faulty(0, Fault::Sleep { ms: 200 }, 1))
                .unwrap();
            *holder.lock().unwrap() = Some(pool);
            assert!(
                within(Duration::from_secs(10), || dropped.load(Ordering::SeqCst)),
                "hung: `Pool::drop`, run by the sink on a keeper thread, waits for that keeper \
                 (the keeper thread and its worker process stay stuck)"
            );
        }

        /// Finding 3: `Event::Hung` goes to the sink on the *watcher* thread, the one thread
        /// that notices deaths. A sink that blocks there (here: `submit` into a full queue)
        /// stops all death detection: the keeper kills the hung worker and waits forever for
        /// the kernel's word that it is dead. The module docs' argument ("the death half does
        /// not depend on the worker: the watcher rings the bell") assumes the watcher never
        /// runs user code.
        fn sink_blocks_the_watcher() {
            let me: Arc<OnceLock<Weak<Small>>> = Arc::default();
            let (completed, crashed) =
                (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
            let sink = {
                let (me, completed, crashed) = (
                    Arc::clone(&me),
                    Arc::clone(&completed),
                    Arc::clone(&crashed),
                );
                move |event: Event<Probe, u64, u32, String>| match event {
                    Event::Hung { .. } => {
                        // A replacement for the hung task's work, with back-pressure (which
                        // the sink does not get: on the pool's thread a full queue hands
                        // the task back; counted as completed here, its work done inline).
                        if let Some(pool) = me.get().and_then(Weak::upgrade) {
                            if let Err(SubmitError::Full(_)) = pool.submit(Probe::ok(3)) {
                                completed.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    }
                    Event::Completed { .. } => {
                        completed.fetch_add(1, Ordering::SeqCst);
                    }
                    Event::Crashed { .. } => {
                        crashed.fetch_add(1, Ordering::SeqCst);
                    }
                    _ => {}
                }
            };
            let policy = unlimited(3).with_watchdog(200).unwrap();
            let pool = Arc::new(Small::start(policy, &PROBE, sink).unwrap());
            me.set(Arc::downgrade(&pool)).ok().unwrap();
            pool.submit(Probe::faulty(0, Fault::Sleep { ms: 600_000 }, 1))
                .unwrap();
            busy_worker(&pool);
            pool.submit(Probe::ok(1)).unwrap();
            pool.submit(Probe::ok(2)).unwrap(); // the queue (2) is full now
            let recovered = within(Duration::from_secs(10), || {
                completed.load(Ordering::SeqCst) == 4
            });
            let crashes = crashed.load(Ordering::SeqCst);
            pool.begin_abort(); // wakes the parked watcher
            let _ = unwrap_when_unique(pool).abort();
            assert!(
                recovered,
                "hung: the watcher, parked in the sink, never saw the killed worker die \
                 ({crashes} crashes reported, {} of 4 tasks completed)",
                completed.load(Ordering::SeqCst)
            );
        }

        /// A panic payload that panics again when dropped.
        struct PanicsOnDrop;

        impl Drop for PanicsOnDrop {
            fn drop(&mut self) {
                panic!("{DELIBERATE}: a panic payload that panics when dropped");
            }
        }

        /// The state letter of process `pid` (`Z`: a zombie), if it exists.
        fn process_state(pid: u32) -> Option<String> {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let after = &stat[stat.rfind(')')? + 1..];
            after.split_whitespace().next().map(str::to_owned)
        }

        /// Finding 4: `Host::emit` catches a sink's panic but drops its payload outside the
        /// catch; a payload that panics when dropped unwinds the keeper thread (the thread host
        /// fixed this for issue 9 with `discard`). On the way out the keeper drops its idle
        /// `Worker`, which the core takes for a worker leaving normally: with the default
        /// (permanent) restart policy the slot waits for a replacement that no thread will
        /// start, so `drain` never returns. (Had a shutdown begun first, the slot would be
        /// counted out instead and the queued tasks handed back unrun.) The worker process is
        /// killed by `PR_SET_PDEATHSIG` (its starting thread ended) and, its `Child` dropped
        /// without a wait, stays a zombie until the parent exits.
        fn sink_panic_payload_panics_on_drop() {
            let completed = Arc::new(AtomicUsize::new(0));
            let sink = {
                let completed = Arc::clone(&completed);
                move |event: Event<Probe, u64, u32, String>| {
                    if let Event::Completed { task, .. } = event {
                        completed.fetch_add(1, Ordering::SeqCst);
                        if task.id == 0 {
                            std::panic::panic_any(PanicsOnDrop);
                        }
                    }
                }
            };
            let pool: Pool<Probe, u64, u32, 64, 1> =
                Pool::start(Policy::DEFAULT, &PROBE, sink).unwrap();
            let pid = pool.pids()[0].unwrap();
            pool.submit(Probe::ok(0)).unwrap();
            let zombie = within(Duration::from_secs(10), || {
                process_state(pid).as_deref() == Some("Z")
            });
            for id in 1..5 {
                pool.submit(Probe::ok(id)).unwrap();
            }
            let (done, drained) = mpsc::channel();
            thread::spawn(move || {
                let _ = done.send(pool.drain());
            });
            let drained = drained.recv_timeout(Duration::from_secs(10));
            // Reap the zombie ourselves, so that the suite's final check stays meaningful.
            let _ = rustix::process::waitpid(Pid::from_raw(pid as i32), WaitOptions::NOHANG);
            assert!(
                drained.is_ok() && !zombie,
                "after a sink panic whose payload panics on drop, the keeper thread died: drain \
                 {} ({} of 5 tasks completed), and worker process {pid} was {}",
                if drained.is_ok() { "returned" } else { "hung" },
                completed.load(Ordering::SeqCst),
                if zombie { "left a zombie" } else { "reaped" }
            );
        }

        type Four = Pool<Probe, u64, u32, 4, 1>;

        /// Finding 5: issue 9's defect 4 again, in the process host: `Pool::supervisor` lent
        /// the whole supervisor, so `abort` + `wait_stopped` + `reopen` gave a running
        /// supervisor whose keepers had all left, and on an idle pool `supervisor().abort()`
        /// then `wait_stopped()` never returned (nothing rang the idle keepers). The pool now
        /// owns its supervisor (a `compile_fail` doctest in the module docs shows it) and
        /// offers shutdowns that start without waiting: `begin_abort` on an idle pool must
        /// bring it to a stop on its own, with no submission to wake its keepers.
        fn reopen_through_the_supervisor() {
            let log = Arc::new(Log::default());
            let pool = Four::start(Policy::DEFAULT, &PROBE, log.sink()).unwrap();
            log.saw(pool.pids());
            pool.submit(Probe::ok(0)).unwrap();
            assert!(within(Duration::from_secs(10), || pool
                .snapshot()
                .completed
                == 1
                && pool.worker_state(0) == Some(WorkerState::Idle)));
            pool.begin_abort();
            let stopped = within(Duration::from_secs(5), || {
                matches!(pool.state(), SupervisorState::Stopped(_))
            });
            assert_eq!(
                pool.try_submit(Probe::ok(1)),
                Err(SubmitError::Closed(Probe::ok(1)))
            );
            let report = pool.abort();
            assert!(
                stopped && report.handed_back.is_empty(),
                "begin_abort on an idle pool: stopped {stopped}, {} handed back",
                report.handed_back.len()
            );
        }

        /// Task code of [`SPOIL`]: answers `'a'`, and has a thread of its process overwrite the
        /// answer's bytes in its own (writable) mailbox right after the worker publishes it, as
        /// a wild write (FFI, `unsafe` bug) in the worker would.
        fn spoil(_ctx: &Context<'_>, _task: &u32) -> Result<char, ()> {
            // `Mailbox<u32, char, ()>` is `repr(C)`: six `AtomicU32` words (`order`, `answer`,
            // …), `attempt: u32`, `task: u32`, then the outcome at byte 32.
            const ANSWER: usize = 4;
            const OUTCOME: usize = 32;
            assert_eq!(std::mem::size_of::<Result<char, ()>>(), 4);
            let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
            let mailbox = maps
                .lines()
                .find(|line| {
                    line.contains("memfd:foreman") && line.split_whitespace().nth(1) == Some("rw-s")
                })
                .expect("the worker's own mailbox is mapped read-write");
            let base = usize::from_str_radix(mailbox.split('-').next().unwrap(), 16).unwrap();
            // SAFETY: none, deliberately: a stray write into the worker's own mailbox.
            let answer = unsafe {
                &*std::ptr::with_exposed_provenance::<std::sync::atomic::AtomicU32>(base + ANSWER)
            };
            let before = answer.load(Ordering::SeqCst);
            let watching = Arc::new(AtomicBool::new(false));
            let watcher = Arc::clone(&watching);
            thread::spawn(move || {
                watcher.store(true, Ordering::SeqCst);
                while answer.load(Ordering::Relaxed) == before {
                    std::hint::spin_loop();
                }
                let outcome = std::ptr::with_exposed_provenance_mut::<u32>(base + OUTCOME);
                // SAFETY: none, deliberately: a surrogate, which no `char` may hold.
                unsafe { outcome.write_volatile(0xD800) };
            });
            while !watching.load(Ordering::SeqCst) {
                std::hint::spin_loop();
            }
            Ok('a')
        }

        pub(super) static SPOIL: Handler<u32, char, ()> = Handler::new("review-spoil", spoil);

        /// Finding 6: the module docs say a wild write into a worker's own mailbox "can spoil
        /// that worker's own answer, nothing else". But the keeper reads the outcome with
        /// `assume_init` as a `Result<R, E>`: bytes that are not a valid `R` (a surrogate
        /// `char`, a `bool` of 2, an enum tag out of range) become a value in the parent —
        /// undefined behaviour in the process the host promises to protect.
        fn spoiled_answer() {
            let invalid = Arc::new(Mutex::new(Vec::new()));
            let sink = {
                let invalid = Arc::clone(&invalid);
                move |event: Event<u32, char, (), String>| {
                    if let Event::Completed { output, .. } = event {
                        if output as u32 != 'a' as u32 {
                            invalid.lock().unwrap().push(output as u32);
                        }
                    }
                }
            };
            let pool: Pool<u32, char, (), 8, 1> =
                Pool::start(Policy::DEFAULT, &SPOIL, sink).unwrap();
            for n in 0..20 {
                pool.submit(n).unwrap();
            }
            let report = pool.drain();
            assert_eq!(report.snapshot.completed, 20);
            let invalid = invalid.lock().unwrap();
            assert!(
                invalid.is_empty(),
                "{} of 20 outputs reached the parent's sink as chars that are not chars: \
                 {:#x?}",
                invalid.len(),
                &invalid[..invalid.len().min(3)]
            );
        }

        /// This binary as the parent in a review scenario.
        pub(super) fn parent_main(scenario: &str) -> ! {
            match scenario {
                "huge" => big::huge_parent(),
                "closed-stderr" => {
                    // A program that detached from its terminal: it closed its stderr.
                    // SAFETY: nothing in this process uses fd 2 as an owned handle.
                    unsafe { rustix::io::close(2) };
                    let log = Arc::new(Log::default());
                    let pool: Pool<Probe, u64, u32, 64, 2> =
                        Pool::start(Policy::DEFAULT, &PROBE, log.sink()).expect("starts");
                    let stderr = std::fs::read_link("/proc/self/fd/2")
                        .map(|path| path.display().to_string())
                        .unwrap_or_default();
                    println!("stderr {stderr}");
                    // The program logs, as programs do. (Rust's stderr ignores EBADF: with fd 2
                    // closed, these lines would go nowhere.)
                    for _ in 0..4 {
                        eprintln!("[info] the pool has started; submitting the day's work now");
                    }
                    // What the pool's shared memory begins with now (its header is 40 bytes).
                    let mut front = [0u8; 320];
                    // SAFETY: fd 2 is open (the memfd, or whatever else it is).
                    let fd2 = unsafe { std::os::fd::BorrowedFd::borrow_raw(2) };
                    let read = rustix::io::pread(fd2, &mut front, 0).unwrap_or(0);
                    println!("memory {:?}", String::from_utf8_lossy(&front[..read]));
                    let (done, finished) = mpsc::channel();
                    thread::spawn(move || {
                        for id in 0..20 {
                            pool.submit(Probe::ok(id)).unwrap();
                        }
                        let _ = done.send(pool.drain());
                    });
                    match finished.recv_timeout(Duration::from_secs(10)) {
                        Ok(_) => println!("completed {}", endings(log.take()).completed.len()),
                        Err(_) => println!("hung: 20 tasks did not drain within 10 s"),
                    }
                }
                other => panic!("no review scenario {other:?}"),
            }
            std::process::exit(0)
        }

        /// Runs review scenario `scenario` in a child process (killed after 30 s); returns its
        /// stdout and how it ended.
        fn run_parent(scenario: &str) -> (String, std::process::ExitStatus) {
            let mut child = Command::new(std::env::current_exe().unwrap())
                .env(PARENT_VAR, format!("review-{scenario}"))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            while child.try_wait().unwrap().is_none() {
                if Instant::now() >= deadline {
                    let _ = child.kill();
                }
                thread::sleep(Duration::from_millis(10));
            }
            let output = child.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
            let stderr = String::from_utf8_lossy(&output.stderr);
            (format!("{stdout}{stderr}"), output.status)
        }

        /// Finding 7: big task types. (Until the queue's fast paths stopped moving the value
        /// through inlined code, a crate that instantiated the crash path for a 16 KiB task
        /// type took 30 s to compile in release, and one of 64 KiB more than 10 minutes; this
        /// module was behind a feature. Now a 1 MiB task type adds seconds.)
        pub(super) mod big {
            use super::*;

            /// Bytes in a [`HUGE`] task: 1 MiB.
            const HUGE_LEN: usize = 1 << 20;

            pub(in super::super) static HUGE: Handler<[u8; HUGE_LEN], u32, ()> =
                Handler::new("review-huge", |_, bytes| {
                    Ok(u32::from(bytes[0]) + u32::from(bytes[HUGE_LEN - 1]))
                });

            /// The parent of a pool of 1 MiB tasks.
            pub(in super::super) fn huge_parent() {
                // The owner's side on a big stack: only the pool's own threads are tested.
                let completed = thread::Builder::new()
                    .stack_size(256 << 20)
                    .spawn(|| {
                        let pool: Pool<[u8; HUGE_LEN], u32, (), 2, 1> =
                            Pool::start(Policy::DEFAULT, &HUGE, |_| {}).expect("starts");
                        pool.submit([7; HUGE_LEN]).unwrap();
                        pool.drain().snapshot.completed
                    })
                    .unwrap()
                    .join()
                    .unwrap();
                println!("completed {completed}");
            }

            /// Tasks, outcomes and events are moved by value on the keeper thread (`give` takes
            /// `*job.task()`, `answer` returns the outcome, `Event` holds both), and keeper
            /// threads get the default stack (2 MiB). `Portable` forbids boxing, so big tasks
            /// are inline by design; a task of 256 KiB already overflows a keeper's stack
            /// (128 KiB does not), which aborts the parent, every worker and every queued task
            /// with it.
            pub(in super::super) fn big_task() {
                let (output, status) = run_parent("huge");
                assert!(
                    status.success() && output.contains("completed 1"),
                    "a pool of 1 MiB tasks took its parent down ({status}):\n{output}"
                );
            }
        }

        /// Finding 8: `condemn(worker)` names a slot, not a task. Meant for a task that ran too
        /// long, it hits whatever the worker runs by then: here the task finished, the worker
        /// took the next one, and that one is killed. The thread host's `Pool::condemn` has the
        /// same race (and its docs recommend condemn after `Event::Hung`); see
        /// `tests/tests/review_threads.rs`.
        fn condemn_hits_the_next_task() {
            let log = Arc::new(Log::default());
            let pool = Four::start(Policy::DEFAULT, &PROBE, log.sink()).unwrap();
            log.saw(pool.pids());
            pool.submit(Probe::faulty(0, Fault::Sleep { ms: 100 }, 1))
                .unwrap();
            let task_0 = loop {
                if let Some(run) = pool.current_run(0) {
                    break run;
                }
                thread::yield_now();
            };
            pool.submit(Probe::faulty(1, Fault::Sleep { ms: 2_000 }, 1))
                .unwrap();
            assert!(within(Duration::from_secs(10), || {
                let snap = pool.snapshot();
                snap.completed == 1 && snap.workers[0].state == WorkerState::Busy
            }));
            // The owner gives up on task 0's run, a moment too late.
            let condemned = pool.condemn(task_0);
            log.saw(pool.pids());
            let report = pool.drain();
            let endings = endings(log.take());
            endings.exactly_once([0, 1]);
            check_report(&report, &endings);
            assert!(
                condemned.is_err() && endings.crashes.is_empty(),
                "condemn(run), meant for task 0 (which had finished), returned {condemned:?} \
                 and killed task 1's worker: {:?}",
                endings.crashes
            );
        }

        /// The file where [`CORPSE`]'s tasks record each run, for the test process `parent`.
        fn runs_file(parent: u32) -> std::path::PathBuf {
            std::env::temp_dir().join(format!("foreman-review-runs-{parent}"))
        }

        /// Task code of [`CORPSE`]: records the run; task 0 then answers, and has its process
        /// killed (`SIGKILL`) the moment the answer is published — before it can read its next
        /// order.
        fn corpse(ctx: &Context<'_>, task: &u32) -> Result<u32, ()> {
            use std::io::Write;
            let parent = std::os::unix::process::parent_id();
            let mut runs = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(runs_file(parent))
                .unwrap();
            writeln!(runs, "{task} {}", ctx.attempt()).unwrap();
            if *task == 0 {
                const ANSWER: usize = 4; // the `answer` word of the `repr(C)` mailbox
                let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
                let mailbox = maps
                    .lines()
                    .find(|line| {
                        line.contains("memfd:foreman")
                            && line.split_whitespace().nth(1) == Some("rw-s")
                    })
                    .expect("the worker's own mailbox is mapped read-write");
                let base = usize::from_str_radix(mailbox.split('-').next().unwrap(), 16).unwrap();
                // SAFETY: reads the worker's own `answer` word, an `AtomicU32`.
                let answer = unsafe {
                    &*std::ptr::with_exposed_provenance::<std::sync::atomic::AtomicU32>(
                        base + ANSWER,
                    )
                };
                let before = answer.load(Ordering::SeqCst);
                let watching = Arc::new(AtomicBool::new(false));
                let watcher = Arc::clone(&watching);
                thread::spawn(move || {
                    watcher.store(true, Ordering::SeqCst);
                    while answer.load(Ordering::Relaxed) == before {
                        std::hint::spin_loop();
                    }
                    let _ = rustix::process::kill_process(rustix::process::getpid(), Signal::KILL);
                });
                while !watching.load(Ordering::SeqCst) {
                    std::hint::spin_loop();
                }
            }
            Ok(ctx.attempt())
        }

        pub(super) static CORPSE: Handler<u32, u32, ()> = Handler::new("review-corpse", corpse);

        /// Finding 10: issue 9's defect 6 ("an attempt is charged that never ran") again, in the
        /// process host. The core counts a run when the keeper takes the task (`try_next`), not
        /// when a worker process starts it. A worker that dies right after answering is only
        /// known dead once the watcher's poll says so; meanwhile its keeper takes the next
        /// task, writes it into the dead process's mailbox, and then records a crash: the task
        /// is charged a run it never had — dead-lettered here, under at-least-once(1), without
        /// ever running (`Lost` under at-most-once; a skipped `attempt()` number otherwise).
        fn task_given_to_a_corpse() {
            let runs = runs_file(std::process::id());
            let _ = std::fs::remove_file(&runs);
            let events = Arc::new(Mutex::new(Vec::new()));
            let sink = {
                let events = Arc::clone(&events);
                move |event: Event<u32, u32, (), String>| events.lock().unwrap().push(event)
            };
            let policy = unlimited(1);
            let pool: Pool<u32, u32, (), 8, 1> = Pool::start(policy, &CORPSE, sink).unwrap();
            for task in 0..4 {
                pool.submit(task).unwrap();
            }
            let report = pool.drain();
            let ran = std::fs::read_to_string(&runs).unwrap_or_default();
            let _ = std::fs::remove_file(&runs);
            let events = events.lock().unwrap();
            let never_ran: Vec<_> = events
                .iter()
                .filter_map(|event| match event {
                    Event::Crashed {
                        task: Some(Disposition::DeadLettered { task, attempts }),
                        ..
                    } if !ran
                        .lines()
                        .any(|line| line.starts_with(&format!("{task} "))) =>
                    {
                        Some((*task, *attempts))
                    }
                    _ => None,
                })
                .collect();
            assert!(
                never_ran.is_empty() && report.snapshot.completed == 4,
                "dead-lettered as (task, attempts) though they never ran: {never_ran:?} \
                 ({} of 4 completed; runs: {:?})",
                report.snapshot.completed,
                ran.lines().collect::<Vec<_>>()
            );
        }

        /// Finding 11: "unlike threads, a hung process *can* be ended" (issue 15), but without a
        /// watchdog nothing in the pool's API ended one. `supervisor().condemn(w)` succeeded, and
        /// the keeper — parked without a timeout, and not rung by `condemn` — kills the process
        /// only "when the task answers", which a hung task never does; `abort` and drop wait for
        /// running tasks. The pool could offer a `condemn` (or an abort with a grace period)
        /// that rings the keeper and kills at once.
        fn condemn_without_a_watchdog() {
            let log = Arc::new(Log::default());
            let pool = start::<1>(Policy::DEFAULT, &PROBE, &log);
            pool.submit(Probe::faulty(0, Fault::Sleep { ms: 600_000 }, 1))
                .unwrap();
            busy_worker(&pool);
            let condemned = pool.condemn(pool.current_run(0).expect("busy"));
            let ended = within(Duration::from_secs(5), || {
                log.events
                    .lock()
                    .unwrap()
                    .iter()
                    .any(|e| matches!(e, Event::Crashed { .. }))
            });
            // Clean up from outside: kill the process ourselves.
            if !ended {
                kill(pool.pids()[0].unwrap());
            }
            log.saw(pool.pids());
            let report = pool.drain();
            let endings = endings(log.take());
            endings.exactly_once([0]);
            check_report(&report, &endings);
            assert!(
                ended,
                "condemn returned {condemned:?}, and 5 s later the hung worker still ran"
            );
        }

        /// Finding 9: the pool's memfd takes the lowest free descriptor. In a program that
        /// closed its stderr (or stdout) — a daemon detaching from its terminal — that is 2
        /// (or 1), so the workers, which inherit 1 and 2, and the parent itself write their
        /// output into the pool's shared memory: the header and the supervisor.
        fn closed_stderr() {
            let (output, status) = run_parent("closed-stderr");
            assert!(
                status.success() && !output.contains("memfd") && output.contains("completed 20"),
                "with fd 2 closed, the pool's memory became stderr ({status}):\n{output}"
            );
        }
    }
}
