//! Crash recovery in the core: what a crashed or dead worker's task becomes, and how its runs
//! are counted. An attempt is a run that *started*: a worker that dies before starting the
//! retry it was given has not run it.

use foreman_rt::park::NoPark;
use foreman_rt::policy::{Delivery, Intensity, Policy};
use foreman_rt::{Decision, Disposition, Next, Supervisor};

fn at_least_once(max_attempts: u32) -> Policy {
    Policy::DEFAULT
        .with_intensity(Intensity::unlimited())
        .with_delivery(Delivery::at_least_once(max_attempts).unwrap())
}

/// Task 7 runs once and crashes; the replacement attaches and is declared dead before it
/// starts the retry: the retry has still not run.
fn crash_once_then_lose_the_replacement(sup: &Supervisor<u32, 4, 1>) -> Option<Disposition<u32>> {
    sup.try_submit(7).unwrap();
    let mut worker = sup.attach(0).unwrap();
    let Next::Run(job) = worker.try_next() else {
        panic!("task 7 is queued")
    };
    assert_eq!(job.context().attempt(), 1);
    let report = job.crash();
    assert_eq!(report.task, Some(Disposition::Retried { attempt: 2 }));
    drop(worker);
    // The replacement attaches (the retry waits in its slot) and its thread dies at once.
    let replacement = sup.attach(0).unwrap();
    std::mem::forget(replacement);
    // SAFETY: the "thread" holding the replacement's handle never runs again: it was forgotten.
    unsafe { sup.declare_dead(0) }.unwrap();
    let report = sup.recover(0).unwrap();
    assert_eq!(report.decision, Decision::Replace);
    report.task
}

#[test]
fn a_retry_that_never_started_is_not_charged_as_an_attempt() {
    let sup: Supervisor<u32, 4, 1> = Supervisor::new(at_least_once(2), NoPark);
    // One run so far, of two allowed: not dead-lettered, retried again as run 2.
    assert_eq!(
        crash_once_then_lose_the_replacement(&sup),
        Some(Disposition::Retried { attempt: 2 })
    );
    let mut worker = sup.attach(0).unwrap();
    let Next::Run(job) = worker.try_next() else {
        panic!("the retry of task 7 is in the slot")
    };
    assert_eq!((*job.task(), job.context().attempt()), (7, 2));
    assert_eq!(job.complete(), Ok(7));
    assert_eq!(sup.snapshot().dead_lettered, 0);
}

#[test]
fn run_numbers_do_not_skip_when_a_replacement_dies_before_starting() {
    let sup: Supervisor<u32, 4, 1> = Supervisor::new(at_least_once(3), NoPark);
    assert_eq!(
        crash_once_then_lose_the_replacement(&sup),
        Some(Disposition::Retried { attempt: 2 })
    );
    let mut worker = sup.attach(0).unwrap();
    let Next::Run(job) = worker.try_next() else {
        panic!("the retry of task 7 is in the slot")
    };
    assert_eq!(job.context().attempt(), 2, "the second run is run 2");
    // It crashes too: the third and last run is still allowed.
    let report = job.crash();
    assert_eq!(report.task, Some(Disposition::Retried { attempt: 3 }));
    drop(worker);
    let mut worker = sup.attach(0).unwrap();
    let Next::Run(job) = worker.try_next() else {
        panic!("the retry of task 7 is in the slot")
    };
    assert_eq!(job.context().attempt(), 3);
    let report = job.crash();
    assert_eq!(
        report.task,
        Some(Disposition::DeadLettered {
            task: 7,
            attempts: 3
        })
    );
}
