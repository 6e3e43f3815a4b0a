//! foreman on bare metal: a `static` supervisor, fed by the SysTick interrupt, hosted by the
//! main loop through foreman's cooperative host.
//!
//! - **Interrupt side.** Every tick, the SysTick handler feeds the supervisor's clock and runs
//!   the watchdog ([`Supervisor::tick`]), then offers the next task with
//!   [`Supervisor::try_submit`]. Both are lock-free. A refused task comes back and is offered
//!   again at the next tick (see `foreman_firmware::producer`).
//! - **Main loop: [`foreman_rt::host::cooperative::Host`].** The firmware gives it the task
//!   function (`work`: one run of one task, a fault returned as [`Failure::Fault`]), the sink
//!   for its events (`record`, which keeps the ledger) and the sleep (`WFI`). The host takes
//!   tasks with interrupts masked, runs them with interrupts enabled, records each outcome
//!   (complete, fail, or crash: retried per the delivery policy by the crashed worker's
//!   replacement, which it attaches at once), and sleeps when no worker has anything to do,
//!   checking and sleeping in one critical section. Once the handler has had every task
//!   accepted, the loop drains the supervisor and steps the host until every worker has left.
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
use foreman_firmware::ledger::{End, Ledger};
use foreman_firmware::producer::{Producer, Refused};
use foreman_firmware::workload::{self, kind, Kind, Outcome, Task, DEADLINE, TASKS};
use foreman_rt::host::cooperative::{Host, Step};
use foreman_rt::host::{Cause, Event, Failure};
use foreman_rt::park::NoPark;
use foreman_rt::policy::{Delivery, Intensity, Policy};
use foreman_rt::{
    Context, Decision, Disposition, Shutdown, SubmitError, Supervisor, SupervisorState, WorkerState,
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

/// The supervisor. `NoPark`: nothing blocks here; the host sleeps on its own (`WFI`).
static SUPERVISOR: Supervisor<Task, CAPACITY, WORKERS, NoPark> = Supervisor::new(POLICY, NoPark);

/// The interrupt side's progress through the script.
static PRODUCER: Producer = Producer::new();

/// Per worker, how often the watchdog flagged it. Written only by the SysTick handler.
static HUNG_FLAGS: [AtomicU32; WORKERS] = [const { AtomicU32::new(0) }; WORKERS];

#[exception]
fn SysTick() {
    board::tick(|now| {
        // Lock-free: feeds the clock and flags workers busy past their deadline.
        for run in SUPERVISOR.tick(now) {
            // A worker index is below WORKERS; `% WORKERS` tells the compiler so (no bounds
            // check, no panic path).
            let flags = &HUNG_FLAGS[run.worker() % WORKERS];
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

/// A run of a task that went wrong: the error value of the task function, so that the ledger
/// can tell which task and which attempt.
#[derive(Debug, Clone, Copy)]
struct Attempt {
    task: Task,
    number: u32,
}

/// What the main loop saw of the watchdog.
struct Watch {
    /// Tasks that were flagged hung while they ran, one bit per id.
    hung_tasks: u64,
    /// Tasks whose hang did not look as the script says (each printed as it happened); the
    /// ledger learns of them once the run is over.
    anomalies: u32,
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
    let mut watch = Watch {
        hung_tasks: 0,
        anomalies: 0,
    };
    // Borrowed where it was built, not moved out of the `Result` (a copy through `memcpy`).
    let mut attached = Host::new(&SUPERVISOR);
    let host = match &mut attached {
        Ok(host) => host,
        Err(_) => {
            ledger.anomaly(format_args!("the workers cannot attach"));
            board::finish(report(&ledger, &watch))
        }
    };
    if !board::start_ticks() {
        ledger.anomaly(format_args!("the core peripherals were taken already"));
    }

    let mut run_task = |task: &Task, ctx: Context<'_>| work(*task, ctx, &mut watch);
    let mut sink = |event| record(event, &mut ledger);
    let mut draining = false;
    while host.step(&mut run_task, &mut sink, cortex_m::asm::wfi) != Step::Finished {
        if !draining && PRODUCER.all_accepted() {
            // No more submissions: the workers finish the queue, then leave.
            SUPERVISOR.drain();
            PRODUCER.want_late();
            draining = true;
        }
    }
    if draining {
        // The handler offers one late task after the drain began; wait until it has.
        PRODUCER.wait_late();
    } else {
        ledger.anomaly(format_args!("every worker left before the drain"));
    }
    if watch.anomalies > 0 {
        ledger.anomaly(format_args!(
            "{} tasks hung unlike the script",
            watch.anomalies
        ));
    }

    board::finish(report(&ledger, &watch))
}

/// The task function: runs one attempt of `task` (interrupts enabled) and checks what the
/// watchdog made of it.
fn work(task: Task, ctx: Context<'_>, watch: &mut Watch) -> Result<u32, Failure<Attempt>> {
    let index = ctx.worker();
    // Below WORKERS, as in the handler: `% WORKERS` spares the bounds check.
    let flags = &HUNG_FLAGS[index % WORKERS];
    let attempt = Attempt {
        task,
        number: ctx.attempt(),
    };
    // Acquire: pairs with the handler's Release store.
    let flags_before = flags.load(Ordering::Acquire);

    let outcome = workload::run(task, attempt.number, || ctx.heartbeat());

    // Acquire: pairs with the handler's Release store.
    let flagged = flags.load(Ordering::Acquire) - flags_before;
    let hung = SUPERVISOR.worker_state(index) == Some(WorkerState::Hung);
    if flagged > 0 || hung {
        hprintln!(
            "task {}: over its deadline on worker {}: flagged hung by the watchdog, then finished",
            task.id,
            index
        );
        watch.hung_tasks |= 1 << task.id;
        if flagged != 1 || !hung || kind(task.id) != Kind::Slow {
            hprintln!(
                "anomaly: task {}: flagged {} times, state hung: {}",
                task.id,
                flagged,
                hung
            );
            watch.anomalies += 1;
        }
    }
    match outcome {
        Outcome::Done(result) => Ok(result),
        Outcome::Invalid => Err(Failure::Error(attempt)),
        Outcome::Fault => Err(Failure::Fault(attempt)),
    }
}

/// The sink: enters each outcome the host reports in the ledger, and checks each crash
/// against the delivery policy.
fn record(event: Event<Task, u32, Attempt, Cause<Attempt>>, ledger: &mut Ledger) {
    match event {
        Event::Completed { task, output, .. } => ledger.completed(task.id, output),
        Event::Failed { task, .. } => {
            hprintln!(
                "task {}: invalid input: failed (final, not retried)",
                task.id
            );
            ledger.end(task.id, End::Failed);
        }
        Event::Crashed {
            worker,
            cause: Cause::Fault(Attempt { task, number }),
            task: disposition,
            decision,
        } => {
            match disposition {
                Some(Disposition::Retried { attempt: retry }) if retry == number + 1 => {
                    hprintln!(
                        "task {}: fault on attempt {} (worker {}): retried as attempt {} by the replacement",
                        task.id,
                        number,
                        worker,
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
                        number,
                        worker,
                        attempts
                    );
                    ledger.end(task.id, End::DeadLettered);
                }
                _ => ledger.anomaly(format_args!(
                    "task {}: fault on attempt {number}: not retried, not dead-lettered as expected",
                    task.id
                )),
            }
            if decision != Decision::Replace {
                ledger.anomaly(format_args!(
                    "worker {worker} not replaced: the supervisor retired it or escalated"
                ));
            }
        }
        // Nothing condemns a worker here (a crash with `Cause::Hung`), and the host reports no
        // other kind of event.
        _ => ledger.anomaly(format_args!("unexpected event")),
    }
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
    // The bitmask in hex as two 32-bit halves: u32's formatter is in every image already,
    // u64's would be added for this one number.
    hprintln!(
        "watchdog: flags={} hung_tasks={:#x}{:08x}",
        flags,
        (watch.hung_tasks >> 32) as u32,
        watch.hung_tasks as u32
    );

    // What the script makes happen, known when the firmware is built: which tasks are slow,
    // and how many runs fault (a flaky task's first; each of a poison task's).
    const SLOW_IDS: u64 = workload::ids(Kind::Slow);
    const CRASHES: u32 = workload::ids(Kind::Flaky).count_ones()
        + workload::ids(Kind::Poison).count_ones() * MAX_ATTEMPTS;
    let tally = |end: End| ledger.count(end) as usize;

    let ok = ledger.check(|kind| match kind {
        Kind::Compute | Kind::Flaky | Kind::Slow | Kind::Steady => End::Completed,
        Kind::Invalid => End::Failed,
        Kind::Poison => End::DeadLettered,
    });
    let checks_ok = foreman_firmware::confirm! {
        "the counters add up" => snap.adds_up(),
        "stopped by the drain" => snap.state == SupervisorState::Stopped(Shutdown::Drain),
        "every task of the script submitted once" =>
            snap.submitted == TASKS as usize
                && isr.accepted == TASKS,
        "the supervisor's outcomes match the ledger" =>
            snap.completed == tally(End::Completed)
                && snap.failed == tally(End::Failed)
                && snap.dead_lettered == tally(End::DeadLettered),
        "nothing lost, handed back, queued or in flight" =>
            snap.lost + snap.handed_back + snap.queued + snap.in_flight == 0,
        "every refusal counted on both sides, the right task handed back" =>
            snap.rejected == isr.refused() as usize
                && isr.mismatched == 0,
        "the queue was full at times" => isr.full > 0,
        "the late task refused as closed" => isr.closed == 1 && !isr.late_accepted,
        "one crash per faulty run, each replaced" =>
            snap.crashes() == CRASHES
                && snap.restarts() == CRASHES,
        "exactly the slow tasks flagged hung, once each" =>
            flags == SLOW_IDS.count_ones()
                && watch.hung_tasks == SLOW_IDS,
        "every worker left" => snap.workers.iter().all(|w| w.state == WorkerState::Exited),
    };
    // Every check runs (and prints if it failed), whatever the ledger's verdict.
    checks_ok && ok
}
