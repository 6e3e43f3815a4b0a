//! foreman on bare metal: a `static` supervisor, fed by the SysTick interrupt, hosted by the
//! main loop through foreman's cooperative host.
//!
//! - **Interrupt side.** Every tick, the SysTick handler feeds the supervisor's clock and runs
//!   the watchdog ([`Supervisor::tick`]), then offers the next task with
//!   [`Supervisor::try_submit`]. Both are lock-free. A refused task comes back and is offered
//!   again at the next tick (see `foreman_firmware::producer`).
//! - **Main loop: [`foreman_rt::host::cooperative::Host`].** The firmware gives it the task
//!   function (`work`: one run of one task, a fault returned as [`Failure::Fault`]), the sink
//!   for its events (`record`, which reports each) and the sleep (`WFI`). The host takes
//!   tasks with interrupts masked, runs them with interrupts enabled, records each outcome
//!   (complete, fail, or crash: retried per the delivery policy by the crashed worker's
//!   replacement, which it attaches at once), and sleeps when no worker has anything to do,
//!   checking and sleeping in one critical section. Once the handler has had every task
//!   accepted, the loop drains the supervisor and steps the host until every worker has left.
//! - **Report.** The firmware reports what happened and does not judge it: a line for each task
//!   that ends (with its result), each crash (what became of the task, what became of the
//!   worker) and each task the watchdog flagged; at the end the handler's counts, the
//!   supervisor's snapshot and `done`. `cargo xtask qemu` checks the report against the script.

#![no_std]
#![no_main]

use core::mem::size_of_val;
use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m_rt::{entry, exception};
use cortex_m_semihosting::hprintln;
use foreman_firmware::board;
use foreman_firmware::producer::{Producer, Refused};
use foreman_firmware::script::{DEADLINE, MAX_ATTEMPTS, TASKS, WORKERS};
use foreman_firmware::workload::{self, Outcome, Task};
use foreman_rt::host::cooperative::{Host, Step};
use foreman_rt::host::{Cause, Event, Failure};
use foreman_rt::park::NoPark;
use foreman_rt::policy::{Delivery, Intensity, Policy};
use foreman_rt::{
    Context, Decision, Disposition, Shutdown, SubmitError, Supervisor, SupervisorState, WorkerState,
};

/// Queue capacity (a power of two).
const CAPACITY: usize = 8;

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

/// A run of a task that went wrong: the error value of the task function, so that the report
/// can tell which task and which attempt.
#[derive(Debug, Clone, Copy)]
struct Attempt {
    task: Task,
    number: u32,
}

#[entry]
fn main() -> ! {
    hprintln!(
        "foreman-firmware supervised: board={} target={} capacity={} tasks={} deadline={} max_attempts={}",
        board::NAME,
        board::TARGET,
        CAPACITY,
        TASKS,
        DEADLINE,
        MAX_ATTEMPTS
    );
    hprintln!(
        "ram: supervisor={} producer={}",
        size_of_val(&SUPERVISOR),
        size_of_val(&PRODUCER)
    );

    // Borrowed where it was built, not moved out of the `Result` (a copy through `memcpy`).
    let mut attached = Host::new(&SUPERVISOR);
    let Ok(host) = &mut attached else {
        board::fail("the workers cannot attach")
    };
    if !board::start_ticks() {
        board::fail("the core peripherals were taken already");
    }

    let mut draining = false;
    while host.step(&mut work, &mut record, cortex_m::asm::wfi) != Step::Finished {
        if !draining && PRODUCER.all_accepted() {
            // No more submissions: the workers finish the queue, then leave.
            SUPERVISOR.drain();
            PRODUCER.want_late();
            draining = true;
        }
    }
    if draining {
        // The handler offers one late task after the drain began; wait until it has. (Without
        // a drain, the report shows the late task never offered.)
        PRODUCER.wait_late();
    }

    report();
    board::done()
}

/// The task function: runs one attempt of `task` (interrupts enabled) and reports what the
/// watchdog made of it.
fn work(task: &Task, ctx: Context<'_>) -> Result<u32, Failure<Attempt>> {
    let task = *task;
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
            "task {}: over its deadline on worker {}: watchdog flags={} hung={}, then finished",
            task.id,
            index,
            flagged,
            hung
        );
    }
    match outcome {
        Outcome::Done(result) => Ok(result),
        Outcome::Invalid => Err(Failure::Error(attempt)),
        Outcome::Fault => Err(Failure::Fault(attempt)),
    }
}

/// The sink: reports each outcome the host records.
fn record(event: Event<Task, u32, Attempt, Cause<Attempt>>) {
    match event {
        Event::Completed { task, output, .. } => {
            hprintln!("task {}: completed: {}", task.id, output)
        }
        Event::Failed { task, .. } => hprintln!("task {}: invalid input: failed", task.id),
        Event::Crashed {
            worker,
            cause: Cause::Fault(Attempt { task, number }),
            task: Some(Disposition::Retried { attempt: retry }),
            decision,
        } => hprintln!(
            "task {}: fault on attempt {} (worker {}): retried as attempt {}; replaced: {}",
            task.id,
            number,
            worker,
            retry,
            decision == Decision::Replace
        ),
        Event::Crashed {
            worker,
            cause: Cause::Fault(Attempt { task, number }),
            task: Some(Disposition::DeadLettered {
                task: back,
                attempts,
            }),
            decision,
        } => hprintln!(
            "task {}: fault on attempt {} (worker {}): task {} dead-lettered after {} attempts; replaced: {}",
            task.id,
            number,
            worker,
            back.id,
            attempts,
            decision == Decision::Replace
        ),
        // Nothing condemns a worker here (a crash with `Cause::Hung`), a crash's task is retried
        // or dead-lettered (at-least-once delivery), and the host reports no other kind of
        // event. Any other event goes unreported, and shows in the report all the same: a
        // crash without its line (the workers' crash counts), or a task without its end.
        _ => {}
    }
}

/// Prints the handler's counts, the supervisor's snapshot and the watchdog's flags.
fn report() {
    let snap = SUPERVISOR.snapshot();
    PRODUCER.report().print();
    hprintln!(
        "counters: stopped_by_drain={} submitted={} completed={} failed={} dead_lettered={} lost={} handed_back={} queued={} in_flight={} requeued={} rejected={}",
        snap.state == SupervisorState::Stopped(Shutdown::Drain),
        snap.submitted,
        snap.completed,
        snap.failed,
        snap.dead_lettered,
        snap.lost,
        snap.handed_back,
        snap.queued,
        snap.in_flight,
        snap.requeued,
        snap.rejected
    );
    for (index, (worker, flags)) in snap.workers.iter().zip(&HUNG_FLAGS).enumerate() {
        hprintln!(
            "worker {}: state={} completed={} failed={} crashes={} restarts={} hung_flags={}",
            index,
            worker.state,
            worker.completed,
            worker.failed,
            worker.crashes,
            worker.restarts,
            // Acquire: pairs with the handler's Release store.
            flags.load(Ordering::Acquire)
        );
    }
}
