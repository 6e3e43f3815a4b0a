//! Model checks of the lock-free parts with loom: every interleaving (up to a preemption
//! bound) of small scenarios, with loom checking atomics' orderings and every access to the
//! queue's and the slots' cells for data races.
//!
//! ```text
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p foreman-rt --test loom --release
//! ```
//!
//! `cargo xtask test` runs them. `LOOM_MAX_PREEMPTIONS` overrides the default bound of 3.
#![cfg(loom)]

use loom::sync::atomic::Ordering;
use loom::sync::Arc;
use loom::thread::{self, JoinHandle};

use foreman_rt::park::{AtomicU32, NoPark, Park};
use foreman_rt::policy::{Delivery, Intensity, Policy, Restart};
use foreman_rt::queue::{PopError, PushError, Queue};
use foreman_rt::{
    Condemned, Decision, Disposition, Next, SubmitError, Supervisor, SupervisorState,
};

/// A model builder with room for the supervisor models, which take a few thousand steps per
/// execution.
fn builder() -> loom::model::Builder {
    let mut builder = loom::model::Builder::new();
    builder.max_branches = 20_000;
    builder
}

/// Runs `f` under loom with a bounded number of preemptions (3 unless
/// `LOOM_MAX_PREEMPTIONS` says otherwise).
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = builder();
    builder.preemption_bound.get_or_insert(3);
    builder.check(f);
}

/// Runs `f` on a new thread with its own handle to `shared`.
fn spawn_with<S, R>(shared: &Arc<S>, f: impl FnOnce(&S) -> R + Send + 'static) -> JoinHandle<R>
where
    S: Send + Sync + 'static,
    R: Send + 'static,
{
    let shared = Arc::clone(shared);
    thread::spawn(move || f(&shared))
}

/// A queue of capacity 2 whose positions are one lap and a half in, so the models below
/// cross the wraparound of the ring, holding `contents`.
fn offset_queue(contents: &[usize]) -> Arc<Queue<usize, 2>> {
    let queue = Queue::new();
    for value in [100, 101, 102] {
        queue.try_push(value).unwrap();
        assert_eq!(queue.try_pop(), Ok(value));
    }
    for &value in contents {
        queue.try_push(value).unwrap();
    }
    Arc::new(queue)
}

/// The two values, sorted.
fn sorted(mut both: [usize; 2]) -> [usize; 2] {
    both.sort();
    both
}

// ----- the queue ------------------------------------------------------------------------

#[test]
fn two_producers_never_see_a_spurious_full() {
    model(|| {
        let queue = offset_queue(&[0]); // one free slot left... and a consumer making room
        let producers: Vec<_> = [1, 2]
            .map(|value| {
                spawn_with(&queue, move |queue| loop {
                    match queue.try_push(value) {
                        Ok(()) => return,
                        // Full is allowed only when the queue really holds 2 elements.
                        Err(PushError::Full(_)) => thread::yield_now(),
                        Err(PushError::Closed(_)) => unreachable!("never closed"),
                    }
                })
            })
            .into_iter()
            .collect();
        let mut seen = vec![];
        while seen.len() < 3 {
            match queue.try_pop() {
                Ok(value) => seen.push(value),
                Err(PopError::Empty) => thread::yield_now(),
                Err(PopError::Closed) => unreachable!("never closed"),
            }
        }
        for producer in producers {
            producer.join().unwrap();
        }
        seen.sort();
        assert_eq!(seen, [0, 1, 2]);
        assert_eq!(queue.try_pop(), Err(PopError::Empty));
    });
}

#[test]
fn two_pushes_into_an_empty_queue_both_succeed() {
    // With capacity 2 and nothing queued, `Full` would be spurious: linearizability says no.
    model(|| {
        let queue = offset_queue(&[]);
        let other = spawn_with(&queue, |queue| queue.try_push(1));
        assert_eq!(queue.try_push(2), Ok(()));
        assert_eq!(other.join().unwrap(), Ok(()));
        assert_eq!(
            sorted([queue.try_pop().unwrap(), queue.try_pop().unwrap()]),
            [1, 2]
        );
    });
}

#[test]
fn two_pops_from_a_full_queue_both_succeed() {
    // Two elements, two concurrent pops: `Empty` would be spurious.
    model(|| {
        let queue = offset_queue(&[1, 2]);
        let other = spawn_with(&queue, |queue| queue.try_pop());
        let mine = queue.try_pop().unwrap();
        let theirs = other.join().unwrap().unwrap();
        assert_eq!(sorted([mine, theirs]), [1, 2]);
    });
}

#[test]
fn pop_then_push_on_a_full_queue_never_fails() {
    // heapless#583: a full queue, two threads each doing pop → push. Every pop finds an
    // element and every push finds room.
    model(|| {
        let queue = offset_queue(&[1, 2]);
        let cycle = |queue: &Queue<usize, 2>| {
            let value = queue.try_pop().expect("spurious Empty");
            queue.try_push(value).expect("spurious Full");
        };
        let other = spawn_with(&queue, cycle);
        cycle(&queue);
        other.join().unwrap();
        assert_eq!(
            sorted([queue.try_pop().unwrap(), queue.try_pop().unwrap()]),
            [1, 2]
        );
    });
}

#[test]
fn one_producer_two_consumers_take_each_value_once() {
    model(|| {
        // One value is there already, the second is pushed while both consumers pop, so at
        // most one consumer can be waiting on the producer's half-done push (two spinning
        // consumers would make the model infinite, not the queue wrong).
        let queue = offset_queue(&[1]);
        let consumers: Vec<_> = (0..2)
            .map(|_| spawn_with(&queue, |queue| queue.try_pop().ok()))
            .collect();
        queue
            .try_push(2)
            .expect("room for both: Full would be spurious");
        let mut all: Vec<usize> = consumers
            .into_iter()
            .filter_map(|c| c.join().unwrap())
            .collect();
        assert!(
            !all.is_empty(),
            "value 1 was queued before either pop: Empty for both is spurious"
        );
        while let Ok(value) = queue.try_pop() {
            all.push(value);
        }
        all.sort();
        assert_eq!(all, [1, 2]);
    });
}

#[test]
fn close_racing_push_and_pop_loses_nothing() {
    model(|| {
        let queue = offset_queue(&[1]);
        let pusher = spawn_with(&queue, |queue| queue.try_push(2));
        let popper = spawn_with(&queue, |queue| queue.try_pop());
        assert!(queue.close());
        let pushed = pusher.join().unwrap();
        let popped = popper.join().unwrap();
        let mut seen = vec![];
        if let Ok(value) = popped {
            seen.push(value);
        }
        // Drain what is left: values come out until the queue says Closed, never Empty.
        loop {
            match queue.try_pop() {
                Ok(value) => seen.push(value),
                Err(PopError::Closed) => break,
                Err(PopError::Empty) => panic!("a closed queue answered Empty"),
            }
        }
        match pushed {
            Ok(()) => {}
            Err(PushError::Closed(value)) => seen.push(value), // handed back to the caller
            Err(PushError::Full(_)) => panic!("spurious Full"),
        }
        seen.sort();
        assert_eq!(seen, [1, 2]);
        assert_eq!(queue.try_push(3), Err(PushError::Closed(3)));
    });
}

// ----- the supervisor -------------------------------------------------------------------

/// A blocking park for the models: one thread parks at a time in these scenarios, and
/// `Notify` keeps a permit, so an unpark between the check and the wait is not lost.
struct LoomPark(loom::sync::Notify);

impl LoomPark {
    fn new() -> Self {
        LoomPark(loom::sync::Notify::new())
    }
}

impl Park for LoomPark {
    fn park(&self, word: &AtomicU32, expected: u32) {
        if word.load(Ordering::SeqCst) == expected {
            self.0.wait();
        }
    }
    fn unpark_one(&self, _word: &AtomicU32) {
        self.0.notify();
    }
    fn unpark_all(&self, _word: &AtomicU32) {
        self.0.notify();
    }
}

type Sup = Supervisor<usize, 2, 1, LoomPark>;

fn policy() -> Policy {
    Policy::DEFAULT.with_intensity(Intensity::unlimited())
}

/// Runs worker 0 until it must leave; returns the tasks it completed.
fn work(sup: &Sup) -> Vec<usize> {
    let mut done = vec![];
    let Ok(mut worker) = sup.attach(0) else {
        return done;
    };
    while let Some(job) = worker.next_blocking() {
        done.push(job.complete().unwrap());
    }
    done
}

/// Submits tasks 1 and 2; returns those refused (handed back by `try_submit`).
fn submit_two(sup: &Sup) -> Vec<usize> {
    [1, 2]
        .into_iter()
        .filter_map(|task| match sup.try_submit(task) {
            Ok(()) => None,
            Err(SubmitError::Closed(task)) => Some(task),
            Err(SubmitError::Full(_)) => panic!("spurious Full: capacity 2, two tasks"),
        })
        .collect()
}

/// Races `shut_down` with a starting worker (`work`) and a submitter (`submit_two`); returns
/// the stopped supervisor, the tasks completed and those refused at submission.
fn race_shutdown(shut_down: fn(&Sup) -> SupervisorState) -> (Arc<Sup>, Vec<usize>, Vec<usize>) {
    let sup = Arc::new(Sup::new(policy(), LoomPark::new()));
    sup.reserve(0).unwrap(); // the worker is starting: a drain must wait for it
    let worker = spawn_with(&sup, work);
    let submitter = spawn_with(&sup, submit_two);
    shut_down(&sup);
    let refused = submitter.join().unwrap();
    let completed = worker.join().unwrap();
    assert!(sup.is_stopped());
    (sup, completed, refused)
}

#[test]
fn drain_racing_submit_and_a_working_worker_runs_every_accepted_task() {
    model(|| {
        let (sup, completed, refused) = race_shutdown(Sup::drain);
        let mut all: Vec<usize> = completed.iter().chain(&refused).copied().collect();
        all.sort();
        assert_eq!(
            all,
            [1, 2],
            "every task completed or handed back at submission"
        );
        let snap = sup.snapshot();
        assert_eq!(
            (snap.submitted, snap.completed, snap.queued, snap.in_flight),
            (completed.len(), completed.len(), 0, 0)
        );
        assert!(snap.adds_up());
    });
}

#[test]
fn abort_racing_submit_and_a_working_worker_hands_back_the_rest() {
    model(|| {
        let (sup, completed, refused) = race_shutdown(Sup::abort);
        let handed_back: Vec<usize> = sup.hand_back().collect();
        let mut all: Vec<usize> = completed
            .iter()
            .chain(&refused)
            .chain(&handed_back)
            .copied()
            .collect();
        all.sort();
        assert_eq!(all, [1, 2], "every task ends exactly once");
        let snap = sup.snapshot();
        assert_eq!(snap.handed_back, handed_back.len());
        assert_eq!(snap.submitted, completed.len() + handed_back.len());
        assert!(snap.adds_up());
    });
}

#[test]
fn a_crashed_workers_task_is_recovered_while_submissions_go_on() {
    model(|| {
        let sup = Arc::new(Sup::new(policy(), LoomPark::new()));
        sup.try_submit(1).unwrap();
        let crasher = spawn_with(&sup, |sup| {
            let mut worker = sup.attach(0).unwrap();
            match worker.try_next() {
                Next::Run(job) => drop(job), // the task "panicked": dropped unfinished
                other => panic!("expected task 1, got {other:?}"),
            };
        });
        let submitter = spawn_with(&sup, |sup| sup.try_submit(2));
        // The host's crash handler: recover once the worker has let go.
        let report = loop {
            match sup.recover(0) {
                Ok(report) => break report,
                Err(_) => thread::yield_now(),
            }
        };
        assert_eq!(report.task, Some(Disposition::Retried { attempt: 2 }));
        assert_eq!(report.decision, Decision::Replace);
        crasher.join().unwrap();
        assert_eq!(submitter.join().unwrap(), Ok(()));
        // The replacement runs the retry first, then the queue.
        sup.drain();
        assert_eq!(work(&sup), [1, 2]);
        let snap = sup.snapshot();
        assert_eq!(
            (
                snap.completed,
                snap.crashes(),
                snap.restarts(),
                snap.in_flight
            ),
            (2, 1, 1, 0)
        );
        assert!(matches!(snap.state, SupervisorState::Stopped(_)));
        assert!(snap.adds_up());
    });
}

#[test]
fn a_condemnation_races_the_run_it_names_ending_and_the_next_starting() {
    // The host looks up the worker's run, then condemns it; meanwhile the worker may finish
    // that run and start the next. Only the run named may be condemned, and exactly one
    // outcome is recorded for each task.
    model(|| {
        let sup = Arc::new(Supervisor::<usize, 2, 1, NoPark>::new(
            policy()
                .with_restart(Restart::Temporary)
                .with_delivery(Delivery::AtMostOnce),
            NoPark,
        ));
        sup.try_submit(7).unwrap();
        sup.try_submit(8).unwrap();
        let finisher = spawn_with(&sup, |sup| {
            let mut worker = sup.attach(0).unwrap();
            let mut ends = Vec::new();
            while let Next::Run(job) = worker.try_next() {
                let run = job.context().run();
                let task = *job.task();
                let outcome = job.complete();
                let condemned = outcome.is_err();
                ends.push((task, run, outcome));
                if condemned {
                    break;
                }
            }
            ends
        });
        let condemned = sup.current_run(0).map(|run| (run, sup.condemn(run)));
        let ends = finisher.join().unwrap();
        for (task, run, outcome) in &ends {
            match condemned {
                Some((named, Ok(()))) if named == *run => {
                    assert_eq!(outcome, &Err(Condemned), "task {task}'s run was condemned");
                    let report = sup.recover(0).unwrap();
                    assert_eq!(report.task, Some(Disposition::Lost(*task)));
                }
                _ => assert_eq!(outcome, &Ok(*task), "task {task}'s run was not condemned"),
            }
        }
        if let Some((named, Ok(()))) = condemned {
            assert!(
                ends.iter().any(|(_, run, _)| *run == named),
                "a run that started"
            );
        }
        let snap = sup.snapshot();
        assert_eq!(snap.completed + snap.lost, ends.len());
        assert!(snap.adds_up());
    });
}

/// A task crashes on worker 0, which is not replaced, so the task goes back into the queue
/// (or, with `full`, finds it full and is handed back) while another thread takes a
/// snapshot: the snapshot never counts the task twice nor negatively.
fn snapshot_racing_a_requeue(full: bool) {
    model(move || {
        let sup = Arc::new(Supervisor::<usize, 1, 2, NoPark>::new(
            policy()
                .with_restart(Restart::Temporary)
                .with_delivery(Delivery::at_least_once(2).unwrap()),
            NoPark,
        ));
        let _keeps_it_running = sup.attach(1).unwrap();
        sup.try_submit(1).unwrap();
        let tasks = if full { 2 } else { 1 };
        let crasher = spawn_with(&sup, move |sup| {
            let mut worker = sup.attach(0).unwrap();
            let Next::Run(job) = worker.try_next() else {
                panic!("task 1 is queued")
            };
            if full {
                sup.try_submit(2).unwrap(); // the queue is full again: the requeue is refused
            }
            job.crash().task
        });
        let snap = sup.snapshot();
        assert!(snap.adds_up());
        assert!(snap.submitted <= tasks, "submitted counted twice: {snap:?}");
        assert!(
            snap.queued + snap.in_flight + snap.handed_back <= tasks,
            "a task counted in two places: {snap:?}"
        );
        let disposition = crasher.join().unwrap();
        let expected = if full {
            Disposition::HandedBack(1)
        } else {
            Disposition::Requeued { attempt: 2 }
        };
        assert_eq!(disposition, Some(expected));
        let snap = sup.snapshot();
        assert_eq!(
            (
                snap.submitted,
                snap.queued,
                snap.in_flight,
                snap.handed_back
            ),
            (tasks, 1, 0, tasks - 1)
        );
    });
}

#[test]
fn a_snapshot_racing_a_requeue_counts_the_task_once() {
    snapshot_racing_a_requeue(false);
}

#[test]
fn a_snapshot_racing_a_refused_requeue_counts_the_task_once() {
    snapshot_racing_a_requeue(true);
}

/// A futex for the models: `park` checks the word under a lock and waits on a condition
/// variable; `unpark_*` take the same lock, so a wake-up cannot slip between check and wait.
/// Any number of threads may park, and a test can wait until a number of them are parked.
struct LoomFutex {
    /// How many threads are parked.
    parked: loom::sync::Mutex<usize>,
    wake: loom::sync::Condvar,
    count_changed: loom::sync::Condvar,
}

impl LoomFutex {
    fn new() -> Self {
        LoomFutex {
            parked: loom::sync::Mutex::new(0),
            wake: loom::sync::Condvar::new(),
            count_changed: loom::sync::Condvar::new(),
        }
    }

    /// Blocks until `threads` threads are parked.
    fn wait_until_parked(&self, threads: usize) {
        let mut parked = self.parked.lock().unwrap();
        while *parked < threads {
            parked = self.count_changed.wait(parked).unwrap();
        }
    }
}

impl Park for LoomFutex {
    fn park(&self, word: &AtomicU32, expected: u32) {
        let mut parked = self.parked.lock().unwrap();
        if word.load(Ordering::SeqCst) == expected {
            *parked += 1;
            self.count_changed.notify_all();
            parked = self.wake.wait(parked).unwrap();
            *parked -= 1;
        }
    }
    fn unpark_one(&self, _word: &AtomicU32) {
        drop(self.parked.lock().unwrap());
        self.wake.notify_one();
    }
    fn unpark_all(&self, _word: &AtomicU32) {
        drop(self.parked.lock().unwrap());
        self.wake.notify_all();
    }
}

#[test]
fn a_burst_of_submissions_wakes_every_worker_it_needs() {
    // Submitters skip the wake-up while an earlier one is on its way; the worker it wakes
    // passes it on if tasks remain. Two parked workers, two tasks that need each other (task
    // 1 waits until task 2 has run): if either worker stayed asleep, task 2 would never run
    // and the model would deadlock. Preemption bound 1: at 2 this model takes hours.
    // (Checked: with the worker's wake-up chain removed, this model reports the deadlock.)
    let mut builder = builder();
    builder.preemption_bound = Some(1);
    builder.check(|| {
        let sup = Arc::new(Supervisor::<usize, 4, 2, LoomFutex>::new(
            policy(),
            LoomFutex::new(),
        ));
        let rendezvous = Arc::new((loom::sync::Mutex::new(0usize), loom::sync::Condvar::new()));
        let workers: Vec<_> = (0..2)
            .map(|index| {
                let (sup, rendezvous) = (sup.clone(), rendezvous.clone());
                thread::spawn(move || {
                    let mut worker = sup.attach(index).unwrap();
                    while let Some(job) = worker.next_blocking() {
                        let (done, changed) = &*rendezvous;
                        let mut done = done.lock().unwrap();
                        if *job.task() == 1 {
                            while *done == 0 {
                                done = changed.wait(done).unwrap(); // needs task 2 to run
                            }
                        }
                        *done += 1;
                        changed.notify_all();
                        drop(done);
                        job.complete().unwrap();
                    }
                })
            })
            .collect();
        sup.park().wait_until_parked(2); // both workers asleep: the burst must wake both
        sup.try_submit(1).unwrap();
        sup.try_submit(2).unwrap();
        {
            let (done, changed) = &*rendezvous;
            let mut done = done.lock().unwrap();
            while *done < 2 {
                done = changed.wait(done).unwrap();
            }
        }
        sup.drain();
        for worker in workers {
            worker.join().unwrap();
        }
        assert_eq!(sup.snapshot().completed, 2);
    });
}

/// An abort races a host reserving a slot for a second worker while the first is busy: the
/// supervisor must not stop while a worker still runs a task, nor lose count of its active
/// slots (the abort's sweep once counted out a reservation not yet counted in).
#[test]
fn a_reservation_racing_an_abort_never_stops_the_supervisor_under_a_busy_worker() {
    model(|| {
        let sup = Arc::new(Supervisor::<usize, 2, 2, NoPark>::new(policy(), NoPark));
        let mut worker = sup.attach(0).unwrap();
        sup.try_submit(1).unwrap();
        let Next::Run(job) = worker.try_next() else {
            panic!("task 1 is queued")
        };
        let reserver = spawn_with(&sup, |sup| sup.reserve(1).is_ok());
        sup.abort();
        let reserved = reserver.join().unwrap();
        assert!(!sup.is_stopped(), "stopped while worker 0 runs a task");
        assert_eq!(job.complete(), Ok(1));
        assert!(matches!(worker.try_next(), Next::Exit));
        drop(worker);
        // A reservation the abort did not sweep waits for its worker (or its release).
        if sup.worker_state(1) == Some(foreman_rt::WorkerState::Starting) {
            assert!(reserved);
            assert!(!sup.is_stopped(), "stopped under a reservation");
            sup.release(1).unwrap();
        }
        assert_eq!(
            sup.state(),
            SupervisorState::Stopped(foreman_rt::Shutdown::Abort)
        );
        let snap = sup.snapshot();
        assert_eq!((snap.completed, snap.in_flight), (1, 0));
        assert!(snap.adds_up());
    });
}

/// Two hand-backs race for the retry a retired slot kept, while the loser reopens the
/// supervisor and a new worker takes a task into the same slot's cell: the retry is handed
/// back once, and nobody reads the cell while another thread writes it.
#[test]
fn hand_backs_racing_a_reopen_and_a_new_task_take_the_retry_once() {
    model(|| {
        let sup = Arc::new(Supervisor::<usize, 2, 1, NoPark>::new(policy(), NoPark));
        sup.try_submit(1).unwrap();
        let mut worker = sup.attach(0).unwrap();
        let Next::Run(job) = worker.try_next() else {
            panic!("task 1 is queued")
        };
        // Kept for a replacement that never comes: the abort retires the slot with it.
        assert_eq!(job.crash().task, Some(Disposition::Retried { attempt: 2 }));
        drop(worker);
        sup.abort();
        let other = spawn_with(&sup, |sup| sup.hand_back().next());
        let mine = sup.hand_back().next();
        let mut ran = None;
        let reopened = sup.reopen().is_ok();
        if reopened {
            sup.try_submit(2).unwrap();
            let mut worker = sup.attach(0).unwrap();
            if let Next::Run(job) = worker.try_next() {
                ran = Some(job.complete().unwrap());
            };
        }
        let theirs = other.join().unwrap();
        // (A hand-back that looked at the phase before the reopen may take task 2 from the
        // queue: given back to the host, counted, not lost.)
        let back: Vec<usize> = mine.into_iter().chain(theirs).collect();
        let ended = |task| back.iter().chain(&ran).filter(|&&t| t == task).count();
        assert_eq!(
            ended(1),
            1,
            "the retry is handed back exactly once: {back:?}"
        );
        assert_eq!(
            ended(2),
            usize::from(reopened),
            "task 2 ends once: {back:?} {ran:?}"
        );
        assert!(!ran.is_some_and(|task| task != 2));
        let snap = sup.snapshot();
        assert_eq!(snap.handed_back, back.len());
        assert!(snap.adds_up());
    });
}

/// A worker recycled after its quota races an abort: whichever wins, the slot ends retired or
/// exited (never left Restarting for a replacement that no one will start), the supervisor
/// stops, and the queued task is handed back once.
#[test]
fn a_recycling_racing_an_abort_never_leaves_the_slot_waiting_for_a_replacement() {
    model(|| {
        let policy = policy().with_recycling(1).unwrap();
        let sup = Arc::new(Supervisor::<usize, 2, 1, NoPark>::new(policy, NoPark));
        sup.try_submit(1).unwrap();
        sup.try_submit(2).unwrap();
        let mut worker = sup.attach(0).unwrap();
        let Next::Run(job) = worker.try_next() else {
            panic!("task 1 is queued")
        };
        assert_eq!(job.complete(), Ok(1));
        let aborter = spawn_with(&sup, |sup| {
            sup.abort();
        });
        // Its quota run: recycled, unless the abort came first (then it leaves).
        assert!(matches!(worker.try_next(), Next::Exit));
        let decision = worker.exit();
        aborter.join().unwrap();
        assert!(matches!(decision, Decision::Recycle | Decision::Retire));
        assert!(
            sup.is_stopped(),
            "a recycled slot kept the supervisor from stopping"
        );
        assert!(matches!(
            sup.worker_state(0),
            Some(foreman_rt::WorkerState::Retired | foreman_rt::WorkerState::Exited)
        ));
        assert_eq!(sup.hand_back().collect::<Vec<_>>(), [2]);
        let snap = sup.snapshot();
        assert_eq!((snap.completed, snap.handed_back), (1, 1));
        assert_eq!(snap.recycles(), u32::from(decision == Decision::Recycle));
        assert!(snap.adds_up());
    });
}

// ----- cancellation ---------------------------------------------------------------------

/// How the worker ends the run it claimed, in [`cancel_race`].
#[derive(Clone, Copy, Debug)]
enum RunEnd {
    /// It records a result (`Job::complete`), without looking whether it was cancelled.
    Complete,
    /// It crashes (`Job::crash`): its retry, on a replacement, claims the ticket again.
    Crash,
}

/// The one outcome of the task, as the hosts saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Completed,
    Cancelled,
}

/// The worker's side of a cancellable task: takes it, claims its ticket, and ends the run
/// as `end` says (or cancelled, if the claim is refused). `None`: the run crashed and its
/// retry is in the slot.
fn run_cancellable(
    sup: &Supervisor<usize, 2, 1, NoPark>,
    ticket: &foreman_rt::Ticket,
    end: RunEnd,
) -> Option<Outcome> {
    let mut worker = sup.attach(0).unwrap();
    let Next::Run(job) = worker.try_next() else {
        panic!("the task is queued, or kept for its retry")
    };
    if ticket.claim(job.context().run()).is_err() {
        assert_eq!(job.cancel(), Ok(7));
        return Some(Outcome::Cancelled);
    }
    match end {
        RunEnd::Complete => match job.complete() {
            Ok(task) => {
                assert_eq!(task, 7);
                Some(Outcome::Completed)
            }
            // Cancelled before it could record its result: the worker is crashed, and the
            // recovery reports the task cancelled.
            Err(Condemned) => {
                drop(worker);
                let report = sup.recover(0).unwrap();
                assert_eq!(report.task, Some(Disposition::Cancelled(7)));
                assert_eq!((report.decision, report.delay), (Decision::Replace, 0));
                Some(Outcome::Cancelled)
            }
        },
        RunEnd::Crash => match job.crash().task {
            Some(Disposition::Cancelled(7)) => Some(Outcome::Cancelled),
            Some(Disposition::Retried { attempt: 2 }) => None,
            other => panic!("a crash of a cancellable task ended as {other:?}"),
        },
    }
}

/// A submitter cancels task 7 (its ticket, then the run the ticket names) while a worker
/// claims it and ends its run as `end` says: the task has exactly one outcome, the one the
/// canceller's answers promise.
fn cancel_race(end: RunEnd) {
    model(move || {
        let sup = Arc::new(Supervisor::<usize, 2, 1, NoPark>::new(policy(), NoPark));
        let ticket = Arc::new(foreman_rt::Ticket::new());
        sup.try_submit(7).unwrap();
        let worker = {
            let (sup, ticket) = (Arc::clone(&sup), Arc::clone(&ticket));
            thread::spawn(move || run_cancellable(&sup, &ticket, end))
        };
        let canceller = {
            let (sup, ticket) = (Arc::clone(&sup), Arc::clone(&ticket));
            thread::spawn(move || {
                let answer = ticket.cancel();
                let cancelled_run = match answer {
                    foreman_rt::Cancel::Running(run) => Some(sup.cancel(run)),
                    _ => None,
                };
                (answer, cancelled_run)
            })
        };
        let (answer, cancelled_run) = canceller.join().unwrap();
        let outcome = match worker.join().unwrap() {
            Some(outcome) => outcome,
            // The crash's retry, on a replacement: the canceller is done by now.
            None => run_cancellable(&sup, &ticket, RunEnd::Complete).unwrap(),
        };
        ticket.end();
        match (answer, cancelled_run) {
            (foreman_rt::Cancel::Pending, None)
            | (foreman_rt::Cancel::Running(_), Some(Ok(()))) => {
                assert_eq!(
                    outcome,
                    Outcome::Cancelled,
                    "{end:?}: the cancellation was promised"
                )
            }
            (
                foreman_rt::Cancel::Running(_),
                Some(Err(foreman_rt::WorkerError::RunEnded { index: 0 })),
            ) => {
                // The run ended first: with its result, or with a crash whose retry found the
                // ticket cancelled.
                match end {
                    RunEnd::Complete => assert_eq!(outcome, Outcome::Completed),
                    RunEnd::Crash => assert_eq!(outcome, Outcome::Cancelled),
                }
            }
            other => panic!("{end:?}: the canceller saw {other:?} before the task ended"),
        }
        let snap = sup.snapshot();
        assert_eq!(
            (snap.completed, snap.cancelled, snap.in_flight, snap.queued),
            (
                usize::from(outcome == Outcome::Completed),
                usize::from(outcome == Outcome::Cancelled),
                0,
                0
            )
        );
        assert!(snap.adds_up());
        // A crash of a cancelled run is never charged: at most one restart, for a retry.
        assert_eq!(sup.state(), SupervisorState::Running);
    });
}

#[test]
fn a_cancel_racing_a_claim_and_a_completion_gives_exactly_one_outcome() {
    cancel_race(RunEnd::Complete);
}

#[test]
fn a_cancel_racing_a_claim_and_a_crash_gives_exactly_one_outcome() {
    cancel_race(RunEnd::Crash);
}
