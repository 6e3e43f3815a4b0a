//! foreman as a minimal supervised queue: the smallest useful firmware on foreman, and the
//! measure of what that costs.
//!
//! The SysTick handler offers the script's tasks with [`Supervisor::try_submit`], as in
//! `baseline` and `supervised`; the main loop attaches one worker, takes each task, runs it
//! once and records its outcome ([`Job::complete`](foreman_rt::Job::complete) or
//! [`Job::fail`](foreman_rt::Job::fail): a fault is a final error here, as in `baseline`),
//! then drains the supervisor and leaves once the worker has. No watchdog, no crash recovery,
//! no snapshot: those are what `supervised` adds. It reports what `baseline` reports, plus
//! whether the supervisor stopped (by the drain, its only shutdown, which runs everything
//! queued first); `cargo xtask qemu` checks the report.

#![no_std]
#![no_main]

use core::mem::size_of_val;

use cortex_m_rt::{entry, exception};
use cortex_m_semihosting::hprintln;
use foreman_firmware::board;
use foreman_firmware::producer::{Producer, Refused};
use foreman_firmware::script::{DEADLINE, TASKS};
use foreman_firmware::workload::{self, Outcome, Task};
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

    if !board::start_ticks() {
        board::fail("the core peripherals were taken already");
    }
    // A fresh supervisor takes its worker: if it did not, nothing would run.
    let Ok(mut worker) = SUPERVISOR.attach(0) else {
        board::fail("the worker cannot attach")
    };
    let mut draining = false;
    loop {
        // Interrupts masked while taking a task (see `supervised`).
        match critical_section::with(|_| worker.try_next()) {
            Next::Run(job) => {
                let task = *job.task();
                // Each task runs once: a fault is final here, as in `baseline`. An outcome that
                // cannot be recorded (`Condemned`: nothing here condemns) is not reported, and
                // the task is missing from the report.
                let outcome = workload::run(task, 1, || {});
                let recorded = match outcome {
                    Outcome::Done(_) => job.complete(),
                    Outcome::Invalid | Outcome::Fault => job.fail(),
                };
                if recorded.is_ok() {
                    workload::report_end(task, outcome);
                }
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

    PRODUCER.report().print();
    if SUPERVISOR.is_stopped() {
        hprintln!("supervisor: stopped");
    }
    board::done()
}
