//! foreman on bare metal: a `static` supervisor, fed by the SysTick interrupt, hosted by the
//! main loop.
//!
//! - **Interrupt side.** Every tick, the SysTick handler feeds the supervisor's clock and runs
//!   the watchdog ([`Supervisor::tick`]), then offers the next task with
//!   [`Supervisor::try_submit`]. Both are lock-free. A refused task comes back and is offered
//!   again at the next tick (see `foreman_firmware::producer`).
//! - **Main loop: the cooperative host.** It polls each worker's step ([`Worker::try_next`])
//!   with interrupts masked, runs the task with interrupts enabled, and records its outcome:
//!   complete, fail (a final error), or crash (a fault: retried per the delivery policy by the
//!   crashed worker's replacement, which the loop attaches at once). When no worker has
//!   anything to do it sleeps with `WFI`. Once the handler has had every task accepted, the
//!   loop drains the supervisor and keeps polling until every worker has left.
//! - **End.** The loop reads the supervisor's snapshot and checks it against its own ledger,
//!   the handler's counts and the script, prints everything, and leaves QEMU with status 0
//!   only if it all adds up.

#![no_std]
#![no_main]

use core::mem::size_of_val;
use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m_rt::{entry, exception};
use cortex_m_semihosting::hprintln;
use foreman_firmware::board;
use foreman_firmware::ledger::{self, End, Ledger};
use foreman_firmware::producer::{Producer, Refused};
use foreman_firmware::workload::{self, kind, Kind, Outcome, Task, DEADLINE, TASKS};
use foreman_rt::park::NoPark;
use foreman_rt::policy::{Delivery, Intensity, Policy};
use foreman_rt::{
    Condemned, CrashReport, Decision, Disposition, Next, Shutdown, SubmitError, Supervisor,
    SupervisorState, Worker, WorkerState,
};

/// Worker slots. On one core they take turns; a slot is what a crash takes down and a
/// replacement takes over.
const WORKERS: usize = 2;
/// Queue capacity (a power of two).
const CAPACITY: usize = 8;
/// Runs allowed per task, the first included.
const MAX_ATTEMPTS: u32 = 3;

// A Slow task keeps the main loop busy for DEADLINE + 1 ticks, one offer each: more than the
// queue holds, so the handler meets back-pressure (a full queue) in every run.
const _: () = assert!(DEADLINE as usize + 1 > CAPACITY);

/// At-least-once delivery with 3 runs per task; permanent workers; the watchdog. The script
/// crashes 3 × 1 (flaky) + 2 × 3 (poison) = 9 times in all, fewer than the 12 restarts the
/// intensity allows, so it never escalates.
const POLICY: Policy = {
    let Ok(delivery) = Delivery::at_least_once(MAX_ATTEMPTS) else {
        panic!("invalid delivery")
    };
    let Ok(intensity) = Intensity::new(12, 1_000) else {
        panic!("invalid intensity")
    };
    let policy = Policy::DEFAULT
        .with_delivery(delivery)
        .with_intensity(intensity);
    let Ok(policy) = policy.with_watchdog(DEADLINE) else {
        panic!("invalid watchdog deadline")
    };
    policy
};

/// The supervisor. `NoPark`: nothing blocks here; the main loop sleeps on its own (`WFI`).
static SUPERVISOR: Supervisor<Task, CAPACITY, WORKERS, NoPark> = Supervisor::new(POLICY, NoPark);

/// The interrupt side's progress through the script.
static PRODUCER: Producer = Producer::new();

/// Per worker, how often the watchdog flagged it. Written only by the SysTick handler.
static HUNG_FLAGS: [AtomicU32; WORKERS] = [const { AtomicU32::new(0) }; WORKERS];

/// The main loop's handle on one worker slot.
type Host = Worker<'static, Task, CAPACITY, WORKERS, NoPark>;

#[exception]
fn SysTick() {
    board::tick(|now| {
        // Lock-free: feeds the clock and flags workers busy past their deadline.
        for run in SUPERVISOR.tick(now) {
            let flags = &HUNG_FLAGS[run.worker()];
            // Relaxed load + Release store: single writer; `board::tick`'s Release store
            // publishes it too.
            flags.store(flags.load(Ordering::Relaxed) + 1, Ordering::Release);
        }
        // Lock-free: a refused task comes back inside the error.
        PRODUCER.on_tick(|task| {
            SUPERVISOR.try_submit(task).map_err(|err| match err {
                SubmitError::Full(task) => Refused::Full(task),
                SubmitError::Closed(task) => Refused::Closed(task),
            })
        });
    });
}

/// What one poll of a worker did.
enum Step {
    /// Nothing to do.
    Idle,
    /// The worker must leave (the supervisor is draining and the queue is empty).
    Exit,
    /// Ran a task that completed or failed.
    Ran,
    /// Ran a task that crashed the worker; the supervisor decided this about the worker.
    Crashed(Decision),
}

/// What the main loop saw of the watchdog.
struct Watch {
    /// Tasks that were flagged hung while they ran, one bit per id.
    hung_tasks: u64,
}

#[entry]
fn main() -> ! {
    hprintln!(
        "foreman-firmware supervised: board={} target={} workers={} capacity={} tasks={} deadline={} max_attempts={}",
        board::NAME,
        board::TARGET,
        WORKERS,
        CAPACITY,
        TASKS,
        DEADLINE,
        MAX_ATTEMPTS
    );
    hprintln!(
        "ram: supervisor={} producer={} hung_flags={}",
        size_of_val(&SUPERVISOR),
        size_of_val(&PRODUCER),
        size_of_val(&HUNG_FLAGS)
    );

    let mut ledger = Ledger::new();
    let mut watch = Watch { hung_tasks: 0 };
    let mut workers: [Option<Host>; WORKERS] =
        core::array::from_fn(|index| attach(index, &mut ledger));
    if !board::start_ticks() {
        ledger.anomaly(format_args!("the core peripherals were taken already"));
    }

    let mut draining = false;
    while workers.iter().any(Option::is_some) {
        let mut ran = false;
        for (index, slot) in workers.iter_mut().enumerate() {
            let Some(worker) = slot else { continue };
            match poll(worker, &mut ledger, &mut watch) {
                Step::Idle => {}
                Step::Exit => *slot = None,
                Step::Ran => ran = true,
                Step::Crashed(decision) => {
                    ran = true;
                    // The crashed handle is dead: dropping it changes nothing.
                    *slot = None;
                    if decision == Decision::Replace {
                        // The replacement runs the crashed task's retry first.
                        *slot = attach(index, &mut ledger);
                    } else {
                        ledger.anomaly(format_args!(
                            "worker {index} not replaced: the supervisor retired it or escalated"
                        ));
                    }
                }
            }
        }
        if !draining && PRODUCER.all_accepted() {
            // No more submissions: the workers finish the queue, then leave.
            SUPERVISOR.drain();
            PRODUCER.want_late();
            draining = true;
        }
        if !ran {
            // Every worker was idle: sleep until the next interrupt, unless one just queued a
            // task.
            board::sleep_unless(|| SUPERVISOR.queued() > 0);
        }
    }
    if draining {
        // The handler offers one late task after the drain began; wait until it has.
        PRODUCER.wait_late();
    } else {
        ledger.anomaly(format_args!("every worker left before the drain"));
    }

    board::finish(report(&ledger, &watch))
}

/// Attaches a worker to slot `index` (a vacant slot, or one waiting for a replacement).
fn attach(index: usize, ledger: &mut Ledger) -> Option<Host> {
    match SUPERVISOR.attach(index) {
        Ok(worker) => Some(worker),
        Err(_) => {
            ledger.anomaly(format_args!("worker {index} cannot attach"));
            None
        }
    }
}

/// Takes the worker's next task, if any, and runs it.
fn poll(worker: &mut Host, ledger: &mut Ledger, watch: &mut Watch) -> Step {
    let index = worker.index();
    // Interrupts masked while taking a task: the queue is lock-free, but a handler that
    // interrupted a pop half-way and then found the queue full at that very slot would wait
    // for the pop to finish, which cannot happen until the handler returns.
    let next = critical_section::with(move |_| worker.try_next());
    let job = match next {
        Next::Run(job) => job,
        Next::Idle => return Step::Idle,
        Next::Exit => return Step::Exit,
    };
    let task = *job.task();
    let attempt = job.context().attempt();
    let context = job.context();
    // Acquire: pairs with the handler's Release store.
    let flags_before = HUNG_FLAGS[index].load(Ordering::Acquire);

    // Interrupts enabled: the handler keeps submitting and the watchdog keeps watching.
    let outcome = workload::run(task, attempt, || context.heartbeat());

    // Acquire: pairs with the handler's Release store.
    let flagged = HUNG_FLAGS[index].load(Ordering::Acquire) - flags_before;
    let hung = SUPERVISOR.worker_state(index) == Some(WorkerState::Hung);
    let step = match outcome {
        Outcome::Done(result) => job.complete().map(|task| {
            ledger.completed(task.id, result);
            Step::Ran
        }),
        Outcome::Invalid => job.fail().map(|task| {
            hprintln!(
                "task {}: invalid input: failed (final, not retried)",
                task.id
            );
            ledger.end(task.id, End::Failed);
            Step::Ran
        }),
        Outcome::Fault => Ok(crashed(task, attempt, job.crash(), ledger)),
    }
    .unwrap_or_else(|Condemned| {
        ledger.anomaly(format_args!("task {}: condemned", task.id));
        Step::Ran
    });
    if flagged > 0 || hung {
        hprintln!(
            "task {}: over its deadline on worker {}: flagged hung by the watchdog, then finished",
            task.id,
            index
        );
        watch.hung_tasks |= 1 << task.id;
        if flagged != 1 || !hung || kind(task.id) != Kind::Slow {
            ledger.anomaly(format_args!(
                "task {}: flagged {flagged} times, state hung: {hung}",
                task.id
            ));
        }
    }
    step
}

/// Handles a task that crashed its worker, per the supervisor's report.
fn crashed(task: Task, attempt: u32, report: CrashReport<Task>, ledger: &mut Ledger) -> Step {
    match report.task {
        Some(Disposition::Retried { attempt: retry }) if retry == attempt + 1 => {
            hprintln!(
                "task {}: fault on attempt {} (worker {}): retried as attempt {} by the replacement",
                task.id,
                attempt,
                report.worker,
                retry
            );
        }
        Some(Disposition::DeadLettered {
            task: back,
            attempts,
        }) if back == task && attempts == MAX_ATTEMPTS => {
            hprintln!(
                "task {}: fault on attempt {} (worker {}): dead-lettered after {} attempts",
                task.id,
                attempt,
                report.worker,
                attempts
            );
            ledger.end(task.id, End::DeadLettered);
        }
        _ => ledger.anomaly(format_args!(
            "task {}: fault on attempt {attempt}: not retried, not dead-lettered as expected",
            task.id
        )),
    }
    Step::Crashed(report.decision)
}

/// Prints the supervisor's counters, the handler's counts and the ledger, and checks them
/// against each other and against the script. Returns whether everything adds up.
fn report(ledger: &Ledger, watch: &Watch) -> bool {
    let snap = SUPERVISOR.snapshot();
    let isr = PRODUCER.report();
    let flags: u32 = HUNG_FLAGS
        .iter()
        // Acquire: pairs with the handler's Release store.
        .map(|flags| flags.load(Ordering::Acquire))
        .sum();

    isr.print();
    hprintln!(
        "counters: state={} submitted={} completed={} failed={} dead_lettered={} lost={} handed_back={} queued={} in_flight={} requeued={} rejected={} crashes={} restarts={} adds_up={}",
        snap.state,
        snap.submitted,
        snap.completed,
        snap.failed,
        snap.dead_lettered,
        snap.lost,
        snap.handed_back,
        snap.queued,
        snap.in_flight,
        snap.requeued,
        snap.rejected,
        snap.crashes(),
        snap.restarts(),
        snap.adds_up()
    );
    for (index, worker) in snap.workers.iter().enumerate() {
        hprintln!(
            "worker {}: state={} completed={} failed={} crashes={} restarts={}",
            index,
            worker.state,
            worker.completed,
            worker.failed,
            worker.crashes,
            worker.restarts
        );
    }
    hprintln!(
        "watchdog: flags={} hung_tasks={:#x}",
        flags,
        watch.hung_tasks
    );

    // How many tasks of each kind the script has, and which are slow.
    let mut kinds = [0u32; Kind::ALL.len()];
    let mut slow_ids = 0u64;
    for id in 0..TASKS {
        let of = kind(id);
        kinds[of as usize] += 1;
        if of == Kind::Slow {
            slow_ids |= 1 << id;
        }
    }
    let count = |wanted: Kind| kinds[wanted as usize];
    let crashes = count(Kind::Flaky) + count(Kind::Poison) * MAX_ATTEMPTS;
    let tally = |end: End| ledger.count(end) as usize;

    let ok = ledger.check(|kind| match kind {
        Kind::Compute | Kind::Flaky | Kind::Slow | Kind::Steady => End::Completed,
        Kind::Invalid => End::Failed,
        Kind::Poison => End::DeadLettered,
    });
    let checks = [
        ("the counters add up", snap.adds_up()),
        (
            "stopped by the drain",
            snap.state == SupervisorState::Stopped(Shutdown::Drain),
        ),
        (
            "every task of the script submitted once",
            snap.submitted == TASKS as usize && isr.accepted == TASKS,
        ),
        (
            "the supervisor's outcomes match the ledger",
            snap.completed == tally(End::Completed)
                && snap.failed == tally(End::Failed)
                && snap.dead_lettered == tally(End::DeadLettered),
        ),
        (
            "nothing lost, handed back, queued or in flight",
            snap.lost + snap.handed_back + snap.queued + snap.in_flight == 0,
        ),
        (
            "every refusal counted on both sides, the right task handed back",
            snap.rejected == isr.refused() as usize && isr.mismatched == 0,
        ),
        ("the queue was full at times", isr.full > 0),
        (
            "the late task refused as closed",
            isr.closed == 1 && !isr.late_accepted,
        ),
        (
            "one crash per faulty run, each replaced",
            snap.crashes() == crashes && snap.restarts() == crashes,
        ),
        (
            "exactly the slow tasks flagged hung, once each",
            flags == count(Kind::Slow) && watch.hung_tasks == slow_ids,
        ),
        (
            "every worker left",
            snap.workers.iter().all(|w| w.state == WorkerState::Exited),
        ),
    ];
    // Every check runs (and prints if it failed), whatever the ledger's verdict.
    ledger::confirm(&checks) && ok
}
