//! Misuse gets a typed error, and a task that cannot be accepted comes back to the caller,
//! undropped.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use foreman_rt::host::threads::Pool;
use foreman_rt::park::NoPark;
use foreman_rt::policy::{self, Delivery, Intensity, Policy, PolicyError};
use foreman_rt::{
    Next, ReopenError, Shutdown, SubmitError, Supervisor, SupervisorState, WorkerError, WorkerState,
};

/// A task that counts its drops, to prove refused tasks are handed back, not dropped.
#[derive(Debug)]
struct Tracked {
    id: u32,
    drops: Arc<AtomicUsize>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::Relaxed);
    }
}

fn tracked(id: u32, drops: &Arc<AtomicUsize>) -> Tracked {
    Tracked {
        id,
        drops: drops.clone(),
    }
}

#[test]
fn a_full_queue_hands_the_task_back_undropped() {
    let drops = Arc::new(AtomicUsize::new(0));
    let sup: Supervisor<Tracked, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    sup.try_submit(tracked(1, &drops)).unwrap();
    sup.try_submit(tracked(2, &drops)).unwrap();
    let Err(SubmitError::Full(back)) = sup.try_submit(tracked(3, &drops)) else {
        panic!("expected Full")
    };
    assert_eq!((back.id, drops.load(Ordering::Relaxed)), (3, 0));
    assert_eq!(sup.snapshot().rejected, 1);
}

#[test]
fn a_closed_supervisor_hands_the_task_back_undropped() {
    let drops = Arc::new(AtomicUsize::new(0));
    let sup: Supervisor<Tracked, 2, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    sup.drain();
    let back: Vec<Tracked> = [
        sup.try_submit(tracked(1, &drops)),
        sup.submit(tracked(2, &drops)),
    ]
    .into_iter()
    .map(|result| match result {
        Err(SubmitError::Closed(task)) => task,
        other => panic!("expected Closed, got {other:?}"),
    })
    .collect();
    assert_eq!(
        drops.load(Ordering::Relaxed),
        0,
        "a refused task was dropped"
    );
    assert_eq!(back.iter().map(|t| t.id).collect::<Vec<_>>(), [1, 2]);
    let err = sup.try_submit(tracked(3, &drops)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the supervisor is shutting down; the task was handed back"
    );
}

#[test]
fn worker_slot_misuse_is_a_typed_error() {
    let sup: Supervisor<u32, 4, 2> = Supervisor::new(Policy::DEFAULT, NoPark);
    assert_eq!(
        sup.attach(2).unwrap_err(),
        WorkerError::NoSuchWorker {
            index: 2,
            workers: 2
        }
    );
    let worker = sup.attach(0).unwrap();
    // Slot 0 is attached and idle: what each call below that needs it otherwise gets.
    let slot_0_idle = WorkerError::WrongState {
        index: 0,
        state: WorkerState::Idle,
    };
    assert_eq!(sup.attach(0).unwrap_err(), slot_0_idle);
    assert_eq!(sup.reserve(0).unwrap_err(), slot_0_idle);
    assert_eq!(
        sup.release(1).unwrap_err(),
        WorkerError::WrongState {
            index: 1,
            state: WorkerState::Vacant
        }
    );
    assert_eq!(sup.retire(0).unwrap_err(), slot_0_idle);
    assert_eq!(
        sup.current_run(0),
        None,
        "an idle slot runs nothing to condemn"
    );
    assert_eq!(sup.recover(0).unwrap_err(), slot_0_idle);
    assert_eq!(
        sup.recover(9).unwrap_err(),
        WorkerError::NoSuchWorker {
            index: 9,
            workers: 2
        }
    );
    assert!(WorkerError::NoSuchWorker {
        index: 9,
        workers: 2
    }
    .to_string()
    .contains("2 worker slots"));
    drop(worker);
    sup.abort();
    assert_eq!(sup.attach(1).unwrap_err(), WorkerError::ShuttingDown);
}

#[test]
fn a_running_supervisor_cannot_be_reopened_and_holds_its_tasks() {
    let sup: Supervisor<u32, 4, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    assert_eq!(
        sup.reopen(),
        Err(ReopenError::NotStopped(SupervisorState::Running))
    );
    sup.try_submit(1).unwrap();
    assert_eq!(
        sup.hand_back().count(),
        0,
        "nothing is handed back while running"
    );
    assert_eq!(sup.snapshot().queued, 1);
}

#[test]
fn a_retry_held_by_a_retired_slot_blocks_reopen_until_handed_back() {
    let policy = Policy::DEFAULT.with_intensity(Intensity::unlimited());
    let sup: Supervisor<u32, 4, 2> = Supervisor::new(policy, NoPark);
    let _other = sup.attach(1).unwrap();
    sup.try_submit(7).unwrap();
    let mut worker = sup.attach(0).unwrap();
    let Next::Run(job) = worker.try_next() else {
        panic!("task 7 is queued")
    };
    let _report = job.crash(); // the retry stays in slot 0 for a replacement...
    drop(worker);
    drop(_other);
    sup.abort(); // ...which will never come: the slot is retired, the retry held
    assert!(sup.is_stopped());
    assert_eq!(sup.reopen(), Err(ReopenError::TasksHeld));
    assert_eq!(sup.hand_back().collect::<Vec<_>>(), [7]);
    sup.reopen().unwrap();
    assert_eq!(sup.state(), SupervisorState::Running);
    let snap = sup.snapshot();
    assert_eq!(
        (snap.submitted, snap.handed_back, snap.in_flight),
        (1, 1, 0)
    );
    assert!(snap.adds_up());
}

#[test]
fn invalid_policies_are_typed_errors() {
    assert_eq!(Delivery::at_least_once(0), Err(PolicyError::ZeroAttempts));
    assert_eq!(Intensity::new(1, 0), Err(PolicyError::ZeroWindow));
    assert_eq!(
        Intensity::new(200, 10),
        Err(PolicyError::TooManyRestarts {
            requested: 200,
            limit: Intensity::MAX_RESTARTS
        })
    );
    assert_eq!(
        Policy::DEFAULT.with_watchdog(0),
        Err(PolicyError::ZeroDeadline)
    );
    assert!(PolicyError::ZeroWindow
        .to_string()
        .contains("at least one tick"));
}

#[test]
fn windows_and_deadlines_of_half_the_clock_or_more_are_typed_errors() {
    // Ticks wrap around, so durations are compared in wrapping arithmetic: they must stay
    // below `u32::MAX / 2`, or a deadline would never be reached.
    let longest = policy::MAX_DURATION;
    assert_eq!(longest, u32::MAX / 2 - 1);
    assert_eq!(Intensity::new(3, longest).unwrap().within(), Some(longest));
    assert_eq!(
        Policy::DEFAULT.with_watchdog(longest).unwrap().watchdog(),
        Some(longest)
    );
    for too_long in [u32::MAX / 2, u32::MAX / 2 + 1, u32::MAX] {
        assert_eq!(
            Intensity::new(3, too_long),
            Err(PolicyError::WindowTooLong {
                requested: too_long,
                limit: longest
            })
        );
        assert_eq!(
            Policy::DEFAULT.with_watchdog(too_long),
            Err(PolicyError::DeadlineTooLong {
                requested: too_long,
                limit: longest
            })
        );
    }
    assert!(PolicyError::DeadlineTooLong {
        requested: u32::MAX,
        limit: longest
    }
    .to_string()
    .contains("2147483646"));
}

#[test]
fn an_abort_with_queued_tasks_blocks_reopen_until_they_are_handed_back() {
    // README: `reopen()` is `Err(TasksHeld)` until `hand_back()` has taken what an abort left.
    let sup: Supervisor<u32, 4, 1> = Supervisor::new(Policy::DEFAULT, NoPark);
    sup.try_submit(1).unwrap();
    sup.try_submit(2).unwrap();
    assert_eq!(sup.abort(), SupervisorState::Stopped(Shutdown::Abort));
    assert_eq!(sup.reopen(), Err(ReopenError::TasksHeld));
    assert_eq!(sup.hand_back().collect::<Vec<_>>(), [1, 2]);
    sup.reopen().unwrap();
    let snap = sup.snapshot();
    assert_eq!((snap.submitted, snap.handed_back, snap.queued), (2, 2, 0));
}

#[test]
fn a_drain_left_with_no_worker_holds_its_queue_until_handed_back() {
    // The only worker crashes during the drain and is not replaced: the drain stops with
    // tasks still queued, which a reopen must not run behind the caller's back either.
    let policy = Policy::DEFAULT.with_restart(foreman_rt::policy::Restart::Temporary);
    let sup: Supervisor<u32, 4, 1> = Supervisor::new(policy, NoPark);
    sup.try_submit(1).unwrap();
    sup.try_submit(2).unwrap();
    let mut worker = sup.attach(0).unwrap();
    sup.drain();
    let Next::Run(job) = worker.try_next() else {
        panic!("task 1 is queued")
    };
    let _requeued = job.crash(); // not replaced: task 1 goes back into the queue
    drop(worker);
    assert_eq!(sup.state(), SupervisorState::Stopped(Shutdown::Drain));
    assert_eq!(sup.reopen(), Err(ReopenError::TasksHeld));
    assert_eq!(sup.hand_back().collect::<Vec<_>>(), [2, 1]);
    assert_eq!(sup.reopen(), Ok(()));
}

/// A task type of 4 KiB in a queue of 1 024: a supervisor of more than 4 MiB.
type Page = [u8; 4096];

#[test]
fn a_pool_of_large_tasks_starts_on_a_small_stack() {
    if !foreman_tests::isolated("a_pool_of_large_tasks_starts_on_a_small_stack") {
        return; // the child process ran the body below, and passed
    }
    // 256 KiB of stack, a 4 MiB supervisor: building it on the stack overflows (and aborts
    // the process, hence the child process).
    let small_stack = std::thread::Builder::new().stack_size(256 * 1024);
    let completed = small_stack
        .spawn(|| {
            let pool = Pool::<Page, u8, (), 1024, 1>::start(
                Policy::DEFAULT,
                |_, page| Ok(page[4095]),
                |_| {},
            )
            .unwrap();
            pool.submit([7; 4096]).unwrap();
            pool.drain().snapshot.completed
        })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(completed, 1);
}
