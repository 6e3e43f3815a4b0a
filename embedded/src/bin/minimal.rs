//! foreman as a minimal supervised queue: the smallest useful firmware on foreman, and the
//! measure of what that costs.
//!
//! The SysTick handler offers the script's tasks with [`Supervisor::try_submit`], as in
//! `baseline` and `supervised`; the main loop attaches one worker, takes each task, runs it
//! once and records its outcome ([`Job::complete`](foreman_rt::Job::complete) or
//! [`Job::fail`](foreman_rt::Job::fail): a fault is a final error here, as in `baseline`),
//! then drains the supervisor and leaves once the worker has. No watchdog, no crash recovery,
//! no snapshot: those are what `supervised` adds. It checks what `baseline` checks, plus that
//! the supervisor stopped by the drain (which runs everything queued first).

#![no_std]
#![no_main]

use core::mem::size_of_val;

use cortex_m_rt::{entry, exception};
use cortex_m_semihosting::hprintln;
use foreman_firmware::board;
use foreman_firmware::ledger::{End, Ledger};
use foreman_firmware::producer::{Producer, Refused};
use foreman_firmware::workload::{self, Kind, Outcome, Task, DEADLINE, TASKS};
use foreman_rt::park::NoPark;
use foreman_rt::policy::Policy;
use foreman_rt::{Next, SubmitError, Supervisor};

/// Queue capacity (a power of two): the same as `baseline`'s buffer.
const CAPACITY: usize = 8;

/// The supervisor: one worker slot, the default policy (no watchdog). `NoPark`: the main loop
/// sleeps on its own (`WFI`).
static SUPERVISOR: Supervisor<Task, CAPACITY, 1, NoPark> = Supervisor::new(Policy::DEFAULT, NoPark);

/// The interrupt side's progress through the script.
static PRODUCER: Producer = Producer::new();

#[exception]
fn SysTick() {
    board::tick(|_now| {
        PRODUCER.on_tick(|task| {
            SUPERVISOR.try_submit(task).map_err(|err| match err {
                SubmitError::Full(task) => Refused::Full(task),
                SubmitError::Closed(task) => Refused::Closed(task),
            })
        })
    });
}

#[entry]
fn main() -> ! {
    hprintln!(
        "foreman-firmware minimal: board={} target={} capacity={} tasks={} deadline={}",
        board::NAME,
        board::TARGET,
        CAPACITY,
        TASKS,
        DEADLINE
    );
    hprintln!(
        "ram: supervisor={} producer={}",
        size_of_val(&SUPERVISOR),
        size_of_val(&PRODUCER)
    );

    let mut ledger = Ledger::new();
    if !board::start_ticks() {
        ledger.anomaly(format_args!("the core peripherals were taken already"));
    }
    // A fresh supervisor takes its worker: if it did not, nothing would run (`check: FAILED`).
    let Ok(mut worker) = SUPERVISOR.attach(0) else {
        board::finish(false)
    };
    let mut draining = false;
    loop {
        // Interrupts masked while taking a task (see `supervised`).
        match critical_section::with(|_| worker.try_next()) {
            Next::Run(job) => {
                let task = *job.task();
                // Each task runs once: a fault is final here, as in `baseline`. An outcome that
                // cannot be recorded (`Condemned`: nothing here condemns) leaves the task
                // unaccounted, which the ledger's check reports.
                let _recorded = match workload::run(task, 1, || {}) {
                    Outcome::Done(result) => {
                        job.complete().map(|_| ledger.completed(task.id, result))
                    }
                    Outcome::Invalid => job.fail().map(|_| ledger.end(task.id, End::Failed)),
                    Outcome::Fault => job.fail().map(|_| ledger.end(task.id, End::Crashed)),
                };
            }
            Next::Idle => board::sleep_unless(|| SUPERVISOR.queued() > 0),
            Next::Exit => break,
        }
        if !draining && PRODUCER.all_accepted() {
            // No more submissions: the worker finishes the queue, then leaves.
            SUPERVISOR.drain();
            PRODUCER.want_late();
            draining = true;
        }
    }
    drop(worker);
    PRODUCER.wait_late();

    board::finish(report(&ledger))
}

/// Prints the handler's counts and the ledger, and checks them. Returns whether all is well.
fn report(ledger: &Ledger) -> bool {
    let isr = PRODUCER.report();
    isr.print();
    let ok = ledger.check(|kind| match kind {
        Kind::Compute | Kind::Slow | Kind::Steady => End::Completed,
        Kind::Invalid => End::Failed,
        Kind::Flaky | Kind::Poison => End::Crashed,
    });
    let checks_ok = foreman_firmware::confirm! {
        "every task of the script accepted once" => isr.accepted == TASKS,
        "the right task handed back" => isr.mismatched == 0,
        "the queue was full at times" => isr.full > 0,
        "the late task refused as closed" => isr.closed == 1 && !isr.late_accepted,
        // The drain is this firmware's only shutdown, and it runs everything queued first.
        "stopped by the drain" => SUPERVISOR.is_stopped(),
    };
    // Every check runs (and prints if it failed), whatever the ledger's verdict.
    checks_ok && ok
}
