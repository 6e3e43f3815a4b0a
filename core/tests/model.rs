//! Model-based test of the core [`Supervisor`]: random sequences of every public operation,
//! run against the supervisor and against a sequential reference model written from the
//! documented rules, compared after every step.
//!
//! After each step: every result equals the model's (errors, decisions, dispositions, the
//! tasks themselves), the snapshot equals the model's counts and worker states exactly, the
//! active slots add up, and every accepted task is in exactly one place (queue, a slot, or
//! ended). The queue is FIFO (each started task is the model's next), a task ends at most
//! once, and a task's attempt is the number of its runs that started. Each case ends by
//! aborting, letting every worker go and recovering the crashed ones: then every accepted task
//! has ended exactly once. Policies include worker recycling and restart backoff: the model
//! predicts each recycling (and `Decision::Recycle`), each crash's delay, and the attaches
//! refused with `BackingOff`. With the features `cancellation` and `deadlines` (on by
//! default), runs are cancelled (`Supervisor::cancel`, `Job::cancel`, and a cancelled run that
//! completes, fails, crashes or dies) and given deadlines of their own (`Job::set_deadline`):
//! the model predicts each `RunEnded`, each `Disposition::Cancelled` and its uncharged
//! replacement, `is_cancelled` after every step, and which runs the watchdog flags.
//!
//! Cases: 5 000 in an optimized build (`cargo xtask test` runs it so, in a couple of
//! seconds), 300 in a debug build (`cargo test -p foreman-rt`, where a case is some 50 times
//! slower); `PROPTEST_CASES` sets another number (`cargo xtask test --long` runs 200 000).
#![cfg(not(loom))]

use std::collections::{HashMap, VecDeque};
use std::mem::{self, ManuallyDrop};

use proptest::collection::vec;
use proptest::prelude::*;

use foreman_rt::park::NoPark;
use foreman_rt::policy::{Backoff, Delivery, Intensity, Policy, Restart, Tick};
use foreman_rt::{
    Condemned, CrashReport, Decision, Disposition, Job, Next, ReopenError, Run, Shutdown, Snapshot,
    SubmitError, Supervisor, SupervisorState, Worker, WorkerError, WorkerSnapshot, WorkerState,
};

/// A crash report as the model predicts it (`CrashReport` is `#[non_exhaustive]`: only the
/// core builds one).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Crash {
    worker: usize,
    task: Option<Disposition<u32>>,
    decision: Decision,
    delay: Tick,
}

impl Crash {
    fn of(report: CrashReport<u32>) -> Crash {
        Crash {
            worker: report.worker,
            task: report.task,
            decision: report.decision,
            delay: report.delay,
        }
    }
}

/// One worker's counts, as the model predicts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WorkerCounts {
    state: WorkerState,
    completed: usize,
    failed: usize,
    crashes: u32,
    restarts: u32,
    recycles: u32,
    cancelled: usize,
}

/// A snapshot as the model predicts it: every field of `Snapshot` (which is
/// `#[non_exhaustive]`), and its derived totals.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Counts {
    state: SupervisorState,
    submitted: usize,
    completed: usize,
    failed: usize,
    cancelled: usize,
    dead_lettered: usize,
    lost: usize,
    handed_back: usize,
    queued: usize,
    in_flight: usize,
    requeued: usize,
    rejected: usize,
    crashes: u32,
    restarts: u32,
    workers: [WorkerCounts; W],
}

impl Counts {
    fn of(snap: &Snapshot<W>) -> Counts {
        Counts {
            state: snap.state,
            submitted: snap.submitted,
            completed: snap.completed,
            failed: snap.failed,
            #[cfg(feature = "cancellation")]
            cancelled: snap.cancelled,
            #[cfg(not(feature = "cancellation"))]
            cancelled: 0,
            dead_lettered: snap.dead_lettered,
            lost: snap.lost,
            handed_back: snap.handed_back,
            queued: snap.queued,
            in_flight: snap.in_flight,
            requeued: snap.requeued,
            rejected: snap.rejected,
            crashes: snap.crashes(),
            restarts: snap.restarts(),
            workers: snap.workers.map(|worker: WorkerSnapshot| WorkerCounts {
                state: worker.state,
                completed: worker.completed,
                failed: worker.failed,
                crashes: worker.crashes,
                restarts: worker.restarts,
                recycles: worker.recycles,
                #[cfg(feature = "cancellation")]
                cancelled: worker.cancelled,
                #[cfg(not(feature = "cancellation"))]
                cancelled: 0,
            }),
        }
    }
}

/// Queue capacity and worker slots: small, so that full queues, every slot state and
/// shutdowns with work left are all common.
const N: usize = 4;
const W: usize = 3;
/// Half the clock's range: ages at or beyond it are in the future (see `Supervisor::tick`).
const HALF_RANGE: Tick = Tick::MAX / 2 + 1;

type Sup = Supervisor<u32, N, W, NoPark>;
type Handle = Worker<'static, u32, N, W, NoPark>;
type Running = Job<'static, u32, N, W, NoPark>;

// ----- operations -----------------------------------------------------------------------

/// One call into the supervisor or a handle. Slot indices go up to `W` (one past the last)
/// to exercise `NoSuchWorker`.
#[derive(Debug, Clone)]
enum Op {
    TrySubmit,
    Submit,
    Attach(usize),
    Reserve(usize),
    Release(usize),
    Next(usize),
    Complete(usize),
    Fail(usize),
    Crash(usize),
    DropJob(usize),
    Heartbeat(usize),
    DropWorker(usize),
    Exit(usize),
    /// Condemns a run of slot `.0`: its latest (0), or one `.1` runs before it.
    Condemn(usize, usize),
    /// Cancels a run of slot `.0` (`Supervisor::cancel`), named as for `Condemn`.
    #[cfg_attr(not(feature = "cancellation"), allow(dead_code))]
    Cancel(usize, usize),
    /// Ends slot `.0`'s job cancelled (`Job::cancel`).
    #[cfg_attr(not(feature = "cancellation"), allow(dead_code))]
    CancelJob(usize),
    /// Gives slot `.0`'s running job a deadline of `.1` ticks (`Job::set_deadline`).
    SetDeadline(usize, Tick),
    DeclareDead(usize),
    Recover(usize),
    Retire(usize),
    Tick(Tick),
    TickBehind(Tick),
    Drain,
    Abort,
    Reopen,
    HandBack,
}

fn op() -> impl Strategy<Value = Op> {
    let slot = || 0..=W;
    prop_oneof![
        6 => Just(Op::TrySubmit),
        3 => Just(Op::Submit),
        4 => slot().prop_map(Op::Attach),
        1 => slot().prop_map(Op::Reserve),
        1 => slot().prop_map(Op::Release),
        8 => slot().prop_map(Op::Next),
        4 => slot().prop_map(Op::Complete),
        2 => slot().prop_map(Op::Fail),
        2 => slot().prop_map(Op::Crash),
        1 => slot().prop_map(Op::DropJob),
        1 => slot().prop_map(Op::Heartbeat),
        2 => slot().prop_map(Op::DropWorker),
        1 => slot().prop_map(Op::Exit),
        1 => (slot(), 0..3usize).prop_map(|(slot, age)| Op::Condemn(slot, age)),
        2 => (slot(), 0..3usize).prop_map(|(slot, age)| Op::Cancel(slot, age)),
        1 => slot().prop_map(Op::CancelJob),
        1 => (slot(), 0..12u32).prop_map(|(slot, ticks)| Op::SetDeadline(slot, ticks)),
        1 => slot().prop_map(Op::DeclareDead),
        2 => slot().prop_map(Op::Recover),
        1 => slot().prop_map(Op::Retire),
        2 => (0..30u32).prop_map(Op::Tick),
        1 => (0..30u32).prop_map(Op::TickBehind),
        1 => Just(Op::Drain),
        1 => Just(Op::Abort),
        1 => Just(Op::Reopen),
        1 => Just(Op::HandBack),
    ]
}

fn policy() -> impl Strategy<Value = Policy> {
    let restart = prop_oneof![
        Just(Restart::Permanent),
        Just(Restart::Transient),
        Just(Restart::Temporary)
    ];
    let intensity = prop_oneof![
        Just(Intensity::unlimited()),
        (0..=3u8, 1..40u32).prop_map(|(max, within)| Intensity::new(max, within).unwrap()),
    ];
    let delivery = prop_oneof![
        Just(Delivery::AtMostOnce),
        (1..=3u32).prop_map(|attempts| Delivery::at_least_once(attempts).unwrap()),
    ];
    let watchdog = prop_oneof![Just(None), (1..10u32).prop_map(Some)];
    let recycling = prop_oneof![2 => Just(None), 1 => (1..=3u32).prop_map(Some)];
    let backoff = prop_oneof![
        2 => Just(None),
        // Factors and caps that make a streak's delays differ (a constant delay hides
        // whether the streak was reset).
        1 => (1..5u32, 2..=3u32, 1..30u32)
            .prop_map(|(initial, factor, more)| Some(Backoff::new(initial, factor, initial + more).unwrap())),
    ];
    (restart, intensity, delivery, watchdog, recycling, backoff).prop_map(
        |(restart, intensity, delivery, watchdog, recycling, backoff)| {
            let mut policy = Policy::DEFAULT
                .with_restart(restart)
                .with_intensity(intensity)
                .with_delivery(delivery);
            if let Some(deadline) = watchdog {
                policy = policy.with_watchdog(deadline).unwrap();
            }
            if let Some(tasks) = recycling {
                policy = with_recycling(policy, tasks);
            }
            if let Some(backoff) = backoff {
                policy = with_backoff(policy, backoff);
            }
            policy
        },
    )
}

/// `policy` recycling workers after `tasks` tasks, where the cargo feature `recycling` is on
/// (the model reads the policy back, so it predicts either way).
fn with_recycling(policy: Policy, tasks: u32) -> Policy {
    #[cfg(feature = "recycling")]
    return policy.with_recycling(tasks).unwrap();
    #[cfg(not(feature = "recycling"))]
    {
        let _ = tasks;
        policy
    }
}

/// `policy` with a restart backoff, where the cargo feature `backoff` is on.
fn with_backoff(policy: Policy, backoff: Backoff) -> Policy {
    #[cfg(feature = "backoff")]
    return policy.with_backoff(backoff);
    #[cfg(not(feature = "backoff"))]
    {
        let _ = backoff;
        policy
    }
}

// ----- the reference model ----------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    Draining,
    Aborting,
    Escalated,
}

/// A task and the number of its runs that started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Task {
    id: u32,
    runs: u32,
}

/// A worker handle the harness holds for a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HandleState {
    /// Its job crashed or let go: the slot is no longer its.
    dead: bool,
    /// It has a job out.
    job: bool,
    /// Tasks it started, for recycling.
    started: u32,
    /// It was recycled (and is dead).
    recycled: bool,
}

impl HandleState {
    const FRESH: HandleState = HandleState {
        dead: false,
        job: false,
        started: 0,
        recycled: false,
    };
}

#[derive(Debug, Clone)]
struct Slot {
    state: WorkerState,
    task: Option<Task>,
    heartbeat: Tick,
    completed: usize,
    failed: usize,
    crashes: u32,
    restarts: u32,
    recycles: u32,
    /// Tasks whose run on this slot ended cancelled.
    cancelled: usize,
    /// The current run was cancelled (`Supervisor::cancel`).
    cancelling: bool,
    /// When the current run started, and its own deadline, if it has one.
    started: Tick,
    deadline: Option<Tick>,
    /// The restart backoff's last delay in this slot's streak of crashes (0: none).
    backoff: Tick,
    /// When a replacement after the last crash may attach.
    ready_at: Tick,
    handle: Option<HandleState>,
    /// Runs started on the slot: the latest run's number.
    runs: usize,
}

/// The supervisor as its documentation describes it, one call at a time.
struct Model {
    policy: Policy,
    phase: Phase,
    stopped: bool,
    /// Slots counted as active.
    active: usize,
    queue: VecDeque<Task>,
    closed: bool,
    slots: [Slot; W],
    clock: Tick,
    restart_log: VecDeque<Tick>,
    submitted: usize,
    dead_lettered: usize,
    lost: usize,
    handed_back: usize,
    requeued: usize,
    rejected: usize,
    /// How each ended task ended.
    ended: HashMap<u32, &'static str>,
    next_id: u32,
}

impl Model {
    fn new(policy: Policy) -> Model {
        let slot = Slot {
            state: WorkerState::Vacant,
            task: None,
            heartbeat: 0,
            completed: 0,
            failed: 0,
            crashes: 0,
            restarts: 0,
            recycles: 0,
            cancelled: 0,
            cancelling: false,
            started: 0,
            deadline: None,
            backoff: 0,
            ready_at: 0,
            handle: None,
            runs: 0,
        };
        Model {
            policy,
            phase: Phase::Running,
            stopped: false,
            active: 0,
            queue: VecDeque::new(),
            closed: false,
            slots: [slot.clone(), slot.clone(), slot],
            clock: 0,
            restart_log: VecDeque::new(),
            submitted: 0,
            dead_lettered: 0,
            lost: 0,
            handed_back: 0,
            requeued: 0,
            rejected: 0,
            ended: HashMap::new(),
            next_id: 0,
        }
    }

    fn state(&self) -> SupervisorState {
        let shutdown = match self.phase {
            Phase::Running => return SupervisorState::Running,
            Phase::Draining => Shutdown::Drain,
            Phase::Aborting => Shutdown::Abort,
            Phase::Escalated => Shutdown::Escalation,
        };
        if self.stopped {
            return SupervisorState::Stopped(shutdown);
        }
        match shutdown {
            Shutdown::Drain => SupervisorState::Draining,
            Shutdown::Abort => SupervisorState::Aborting,
            _ => SupervisorState::Escalated,
        }
    }

    fn stops_workers(&self) -> bool {
        matches!(self.phase, Phase::Aborting | Phase::Escalated)
    }

    /// Records a task's end: it must be its first.
    fn end(&mut self, id: u32, how: &'static str) {
        if let Some(before) = self.ended.insert(id, how) {
            panic!("task {id} ended twice: {before}, then {how}");
        }
    }

    fn no_such(index: usize) -> WorkerError {
        WorkerError::NoSuchWorker { index, workers: W }
    }

    fn wrong(&self, index: usize) -> WorkerError {
        WorkerError::WrongState {
            index,
            state: self.slots[index].state,
        }
    }

    fn activate(&mut self) -> Result<(), WorkerError> {
        if self.stopped || self.stops_workers() {
            return Err(WorkerError::ShuttingDown);
        }
        self.active += 1;
        Ok(())
    }

    fn deactivate(&mut self) {
        self.active -= 1;
        if self.active == 0 {
            if self.phase == Phase::Running {
                self.phase = Phase::Escalated; // no worker left to run the tasks
            }
            self.stopped = true;
            self.closed = true;
        }
    }

    fn shut_down(&mut self, target: Phase) -> SupervisorState {
        let stronger_already = self.stopped || self.phase == target || self.stops_workers();
        if stronger_already {
            return self.state();
        }
        self.phase = target;
        if self.active == 0 {
            self.stopped = true;
        }
        self.closed = true;
        if target != Phase::Draining {
            self.sweep();
        }
        self.state()
    }

    /// No replacement will come: reserved slots become vacant, restarting ones retired.
    fn sweep(&mut self) {
        for index in 0..W {
            let to = match self.slots[index].state {
                WorkerState::Starting => WorkerState::Vacant,
                WorkerState::Restarting => WorkerState::Retired,
                _ => continue,
            };
            self.slots[index].state = to;
            self.deactivate();
        }
    }

    fn settle_restart(&mut self) {
        if self.stops_workers() {
            self.sweep();
        }
    }

    fn decide(&mut self, crashed: bool, now: Tick) -> Decision {
        let phase_allows = !self.stopped
            && (self.phase == Phase::Running || (self.phase == Phase::Draining && crashed));
        if !phase_allows || !self.policy.restart().replaces(crashed) {
            return Decision::Retire;
        }
        let intensity = self.policy.intensity();
        let (Some(max), Some(within)) = (intensity.max_restarts(), intensity.within()) else {
            return Decision::Replace;
        };
        while let Some(&at) = self.restart_log.front() {
            if now.wrapping_sub(at) < within {
                break;
            }
            self.restart_log.pop_front();
        }
        if self.restart_log.len() >= usize::from(max) {
            return Decision::Escalate;
        }
        self.restart_log.push_back(now);
        Decision::Replace
    }

    /// What becomes of a crashed worker's task; the task kept in the slot, if any.
    fn dispose(&mut self, task: Task, decision: Decision) -> (Disposition<u32>, Option<Task>) {
        let Some(max) = self.policy.delivery().max_attempts() else {
            self.lost += 1;
            self.end(task.id, "lost");
            return (Disposition::Lost(task.id), None);
        };
        if task.runs >= max {
            self.dead_lettered += 1;
            self.end(task.id, "dead-lettered");
            return (
                Disposition::DeadLettered {
                    task: task.id,
                    attempts: task.runs,
                },
                None,
            );
        }
        let next = task.runs + 1;
        match decision {
            Decision::Replace => (Disposition::Retried { attempt: next }, Some(task)),
            Decision::Retire if !self.stops_workers() => {
                if self.queue.len() < N {
                    self.requeued += 1;
                    self.queue.push_back(task);
                    (Disposition::Requeued { attempt: next }, None)
                } else {
                    self.handed_back += 1;
                    self.end(task.id, "handed back (no room to requeue)");
                    (Disposition::HandedBack(task.id), None)
                }
            }
            // Retire while shutting down, or Escalate (the model decides nothing else).
            _ => {
                self.handed_back += 1;
                self.end(task.id, "handed back (crash)");
                (Disposition::HandedBack(task.id), None)
            }
        }
    }

    /// Recovery of slot `index`, which crashed holding `task`.
    fn recover_claimed(&mut self, index: usize, now: Tick) -> Crash {
        self.slots[index].crashes += 1;
        if mem::take(&mut self.slots[index].cancelling) {
            return self.recover_cancelled(index, now);
        }
        let decision = self.decide(true, now);
        let mut delay = 0;
        if let (Decision::Replace, Some(backoff)) = (decision, self.policy.backoff()) {
            // min(cap, initial × factor^(streak − 1)), the streak ended by an outcome.
            let slot = &mut self.slots[index];
            delay = if slot.backoff == 0 {
                backoff.initial()
            } else {
                u32::try_from(u64::from(slot.backoff) * u64::from(backoff.factor()))
                    .unwrap_or(u32::MAX)
                    .min(backoff.cap())
            };
            slot.backoff = delay;
            slot.ready_at = now.wrapping_add(delay);
        }
        let task = self.slots[index].task.take();
        let (disposition, kept) = match task {
            Some(task) => {
                let (disposition, kept) = self.dispose(task, decision);
                (Some(disposition), kept)
            }
            None => (None, None),
        };
        if decision == Decision::Escalate {
            self.shut_down(Phase::Escalated);
        }
        self.slots[index].task = kept;
        if decision == Decision::Replace {
            self.slots[index].restarts += 1;
            self.slots[index].state = WorkerState::Restarting;
            self.settle_restart();
        } else {
            self.slots[index].state = WorkerState::Retired;
            self.deactivate();
        }
        Crash {
            worker: index,
            task: disposition,
            decision,
            delay,
        }
    }

    /// Recovery of slot `index`, whose cancelled run crashed: the task ends cancelled, the
    /// slot is replaced while running (or draining with tasks queued), at once, whatever the
    /// restart kind, and nothing is charged.
    fn recover_cancelled(&mut self, index: usize, now: Tick) -> Crash {
        let replace = !self.stopped
            && (self.phase == Phase::Running
                || (self.phase == Phase::Draining && !self.queue.is_empty()));
        let task = self.slots[index]
            .task
            .take()
            .expect("a cancelled run's task");
        self.slots[index].cancelled += 1;
        self.end(task.id, "cancelled (crashed)");
        let decision = if replace {
            self.slots[index].ready_at = now;
            self.slots[index].restarts += 1;
            self.slots[index].state = WorkerState::Restarting;
            self.settle_restart();
            Decision::Replace
        } else {
            self.slots[index].state = WorkerState::Retired;
            self.deactivate();
            Decision::Retire
        };
        Crash {
            worker: index,
            task: Some(Disposition::Cancelled(task.id)),
            decision,
            delay: 0,
        }
    }

    fn end_normally(&mut self, index: usize) -> Decision {
        let decision = self.decide(false, self.clock);
        if decision == Decision::Escalate {
            self.shut_down(Phase::Escalated);
        }
        if decision == Decision::Replace {
            self.slots[index].restarts += 1;
            self.slots[index].state = WorkerState::Restarting;
            self.settle_restart();
        } else {
            self.slots[index].state = WorkerState::Exited;
            self.deactivate();
        }
        decision
    }

    /// A slot whose task a crash may still send back to the queue.
    fn tasks_out(&self) -> bool {
        self.slots.iter().any(|slot| {
            matches!(
                slot.state,
                WorkerState::Busy
                    | WorkerState::Hung
                    | WorkerState::Terminating
                    | WorkerState::Crashed
            )
        })
    }

    // ----- the operations, each returning what the supervisor must return ---------------

    fn try_submit(&mut self) -> (u32, Result<(), SubmitError<u32>>) {
        let id = self.next_id;
        self.next_id += 1;
        let result = if self.closed {
            self.rejected += 1;
            Err(SubmitError::Closed(id))
        } else if self.queue.len() == N {
            self.rejected += 1;
            Err(SubmitError::Full(id))
        } else {
            self.queue.push_back(Task { id, runs: 0 });
            self.submitted += 1;
            Ok(())
        };
        (id, result)
    }

    fn attach(&mut self, index: usize) -> Result<(), WorkerError> {
        if index >= W {
            return Err(Model::no_such(index));
        }
        match self.slots[index].state {
            WorkerState::Vacant => self.activate()?,
            WorkerState::Restarting
                if self.policy.backoff().is_some()
                    && self.clock.wrapping_sub(self.slots[index].ready_at) >= HALF_RANGE =>
            {
                return Err(WorkerError::BackingOff {
                    index,
                    ready_at: self.slots[index].ready_at,
                })
            }
            WorkerState::Starting | WorkerState::Restarting => {}
            _ if self.stops_workers() => return Err(WorkerError::ShuttingDown),
            _ => return Err(self.wrong(index)),
        }
        self.slots[index].state = WorkerState::Idle;
        self.slots[index].handle = Some(HandleState::FRESH);
        Ok(())
    }

    fn reserve(&mut self, index: usize) -> Result<(), WorkerError> {
        if index >= W {
            return Err(Model::no_such(index));
        }
        if self.slots[index].state != WorkerState::Vacant {
            return Err(self.wrong(index));
        }
        self.activate()?;
        self.slots[index].state = WorkerState::Starting;
        Ok(())
    }

    fn release(&mut self, index: usize) -> Result<(), WorkerError> {
        if index >= W {
            return Err(Model::no_such(index));
        }
        if self.slots[index].state != WorkerState::Starting {
            return Err(self.wrong(index));
        }
        self.slots[index].state = WorkerState::Vacant;
        self.deactivate();
        Ok(())
    }

    /// `try_next` on slot `index`'s handle: `Some(task)` for `Next::Run`, with the task's run
    /// count after its start; `None` for Idle; `Err(())` for Exit.
    fn next(&mut self, index: usize) -> Result<Option<Task>, ()> {
        let handle = self.slots[index].handle.expect("a handle");
        if handle.dead || self.slots[index].state != WorkerState::Idle {
            return Err(());
        }
        if let Some(quota) = self.policy.recycling() {
            // Its quota run, between tasks: recycled while running, and during a drain while
            // tasks are queued.
            let phase_allows = !self.stopped
                && (self.phase == Phase::Running
                    || (self.phase == Phase::Draining && !self.queue.is_empty()));
            if handle.started >= quota && self.slots[index].task.is_none() && phase_allows {
                let slot = &mut self.slots[index];
                slot.state = WorkerState::Restarting;
                slot.recycles += 1;
                slot.handle = Some(HandleState {
                    dead: true,
                    recycled: true,
                    ..handle
                });
                self.settle_restart();
                return Err(());
            }
        }
        if self.slots[index].task.is_none() {
            if self.stops_workers() {
                self.slots[index].state = WorkerState::Exiting;
                return Err(());
            }
            match self.queue.pop_front() {
                Some(task) => self.slots[index].task = Some(task),
                None if !self.closed => return Ok(None),
                None if self.phase == Phase::Draining && self.tasks_out() => return Ok(None),
                None => {
                    self.slots[index].state = WorkerState::Exiting;
                    return Err(());
                }
            }
        }
        let slot = &mut self.slots[index];
        let task = slot.task.as_mut().expect("a task to start");
        task.runs += 1;
        let started = *task;
        slot.runs += 1;
        slot.state = WorkerState::Busy;
        slot.heartbeat = self.clock;
        slot.started = self.clock;
        slot.deadline = None;
        slot.handle = Some(HandleState {
            job: true,
            started: handle.started + 1,
            ..handle
        });
        Ok(Some(started))
    }

    /// Busy/Hung/Terminating → Crashed: the handle's job let go of its task.
    fn let_go(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        slot.handle = slot.handle.map(|handle| HandleState {
            dead: true,
            job: false,
            ..handle
        });
        if matches!(
            slot.state,
            WorkerState::Busy | WorkerState::Hung | WorkerState::Terminating
        ) {
            slot.state = WorkerState::Crashed;
        }
    }

    fn finish(&mut self, index: usize, failed: bool) -> Result<u32, Condemned> {
        // A cancelled run's result is refused like a condemned one's.
        if self.slots[index].cancelling
            || !matches!(
                self.slots[index].state,
                WorkerState::Busy | WorkerState::Hung
            )
        {
            self.let_go(index);
            return Err(Condemned);
        }
        let slot = &mut self.slots[index];
        let task = slot.task.take().expect("a running task");
        slot.state = WorkerState::Idle;
        slot.handle = slot.handle.map(|handle| HandleState {
            job: false,
            ..handle
        });
        // An outcome ends the slot's streak of crashes (restart backoff).
        slot.backoff = 0;
        if failed {
            slot.failed += 1;
            self.end(task.id, "failed");
        } else {
            slot.completed += 1;
            self.end(task.id, "completed");
        }
        Ok(task.id)
    }

    /// `Job::cancel`: the run ends cancelled, unless condemned.
    #[cfg(feature = "cancellation")]
    fn cancel_job(&mut self, index: usize) -> Result<u32, Condemned> {
        if !matches!(
            self.slots[index].state,
            WorkerState::Busy | WorkerState::Hung
        ) {
            self.let_go(index);
            return Err(Condemned);
        }
        let slot = &mut self.slots[index];
        let task = slot.task.take().expect("a running task");
        slot.state = WorkerState::Idle;
        slot.handle = slot.handle.map(|handle| HandleState {
            job: false,
            ..handle
        });
        slot.backoff = 0;
        slot.cancelling = false;
        slot.cancelled += 1;
        self.end(task.id, "cancelled");
        Ok(task.id)
    }

    /// Whether the job out on slot `index` is told to stop (`is_cancelled`).
    fn stops(&self, index: usize) -> bool {
        let slot = &self.slots[index];
        slot.cancelling || !matches!(slot.state, WorkerState::Busy | WorkerState::Hung)
    }

    /// `Supervisor::cancel` of run number `run` (from 1) of slot `index`.
    #[cfg(feature = "cancellation")]
    fn cancel(&mut self, index: usize, run: usize) -> Result<(), WorkerError> {
        let slot = &self.slots[index];
        let running = matches!(
            slot.state,
            WorkerState::Busy | WorkerState::Hung | WorkerState::Terminating
        );
        if run != slot.runs || !running {
            return Err(WorkerError::RunEnded { index });
        }
        self.slots[index].cancelling = true;
        Ok(())
    }

    fn crash(&mut self, index: usize) -> Crash {
        self.slots[index].handle = self.slots[index].handle.map(|handle| HandleState {
            dead: true,
            job: false,
            ..handle
        });
        self.recover_claimed(index, self.clock)
    }

    fn heartbeat(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        slot.heartbeat = self.clock;
        if slot.state == WorkerState::Hung {
            slot.state = WorkerState::Busy;
        }
    }

    /// Ends the handle (`exit`, or dropping it): what `exit` returns.
    fn end_handle(&mut self, index: usize) -> Decision {
        let handle = self.slots[index].handle.take().expect("a handle");
        if handle.recycled {
            return Decision::Recycle;
        }
        if handle.dead {
            return Decision::Retire;
        }
        match self.slots[index].state {
            WorkerState::Exiting => {
                self.slots[index].state = WorkerState::Exited;
                self.deactivate();
                Decision::Retire
            }
            WorkerState::Idle => self.end_normally(index),
            _ => Decision::Retire,
        }
    }

    /// Condemns run number `run` (from 1) of slot `index`.
    fn condemn(&mut self, index: usize, run: usize) -> Result<(), WorkerError> {
        let slot = &self.slots[index];
        let running = matches!(
            slot.state,
            WorkerState::Busy | WorkerState::Hung | WorkerState::Terminating
        );
        if run != slot.runs || !running {
            return Err(WorkerError::RunEnded { index });
        }
        if slot.state == WorkerState::Terminating {
            return Err(self.wrong(index));
        }
        self.slots[index].state = WorkerState::Terminating;
        Ok(())
    }

    fn declare_dead(&mut self, index: usize) -> Result<(), WorkerError> {
        if index >= W {
            return Err(Model::no_such(index));
        }
        self.slots[index].handle = None; // forgotten: its thread "never runs again"
        match self.slots[index].state {
            WorkerState::Starting
            | WorkerState::Idle
            | WorkerState::Busy
            | WorkerState::Hung
            | WorkerState::Terminating
            | WorkerState::Crashed => {
                self.slots[index].state = WorkerState::Crashed;
                Ok(())
            }
            WorkerState::Exiting => {
                self.slots[index].state = WorkerState::Exited;
                self.deactivate();
                Ok(())
            }
            _ => Err(self.wrong(index)),
        }
    }

    fn recover(&mut self, index: usize) -> Result<Crash, WorkerError> {
        if index >= W {
            return Err(Model::no_such(index));
        }
        if self.slots[index].state != WorkerState::Crashed {
            return Err(self.wrong(index));
        }
        Ok(self.recover_claimed(index, self.clock))
    }

    fn retire(&mut self, index: usize) -> Result<Option<u32>, WorkerError> {
        if index >= W {
            return Err(Model::no_such(index));
        }
        if self.slots[index].state != WorkerState::Restarting {
            return Err(self.wrong(index));
        }
        let task = self.slots[index].task.take().map(|task| {
            self.handed_back += 1;
            self.end(task.id, "handed back (retired)");
            task.id
        });
        self.slots[index].state = WorkerState::Retired;
        self.deactivate();
        Ok(task)
    }

    fn tick(&mut self, now: Tick) -> Vec<usize> {
        if now != self.clock && now.wrapping_sub(self.clock) < HALF_RANGE {
            self.clock = now;
        }
        // A tick behind the clock judges by the clock: the supervisor's one clock.
        let now = self.clock;
        let watchdog = self.policy.watchdog();
        let mut hung = Vec::new();
        for (index, slot) in self.slots.iter_mut().enumerate() {
            // A run's own deadline counts from its start; the policy's from its heartbeat.
            let (since, deadline) = match (slot.deadline, watchdog) {
                (Some(own), _) => (slot.started, own),
                (None, Some(deadline)) => (slot.heartbeat, deadline),
                (None, None) => continue,
            };
            let age = now.wrapping_sub(since);
            if slot.state == WorkerState::Busy && age > deadline && age < HALF_RANGE {
                slot.state = WorkerState::Hung;
                hung.push(index);
            }
        }
        hung
    }

    fn hand_back(&mut self) -> Vec<u32> {
        if matches!(
            self.state(),
            SupervisorState::Running | SupervisorState::Draining
        ) {
            return Vec::new();
        }
        let mut back = Vec::new();
        while let Some(task) = self.queue.pop_front() {
            back.push(task.id);
        }
        for slot in &mut self.slots {
            if matches!(slot.state, WorkerState::Exited | WorkerState::Retired) {
                back.extend(slot.task.take().map(|task| task.id));
            }
        }
        for &id in &back {
            self.handed_back += 1;
            self.end(id, "handed back");
        }
        back
    }

    fn reopen(&mut self) -> Result<(), ReopenError> {
        if !self.stopped {
            return Err(ReopenError::NotStopped(self.state()));
        }
        if !self.queue.is_empty() || self.slots.iter().any(|slot| slot.task.is_some()) {
            return Err(ReopenError::TasksHeld);
        }
        for slot in &mut self.slots {
            if matches!(slot.state, WorkerState::Exited | WorkerState::Retired) {
                slot.state = WorkerState::Vacant;
            }
        }
        self.closed = false;
        self.phase = Phase::Running;
        self.stopped = false;
        Ok(())
    }

    fn snapshot(&self) -> Counts {
        let workers = std::array::from_fn(|index| {
            let slot = &self.slots[index];
            WorkerCounts {
                state: slot.state,
                completed: slot.completed,
                failed: slot.failed,
                crashes: slot.crashes,
                restarts: slot.restarts,
                recycles: slot.recycles,
                cancelled: slot.cancelled,
            }
        });
        let sum = |f: fn(&Slot) -> usize| self.slots.iter().map(f).sum::<usize>();
        Counts {
            state: self.state(),
            submitted: self.submitted,
            completed: sum(|slot| slot.completed),
            failed: sum(|slot| slot.failed),
            cancelled: sum(|slot| slot.cancelled),
            dead_lettered: self.dead_lettered,
            lost: self.lost,
            handed_back: self.handed_back,
            queued: self.queue.len(),
            in_flight: self.slots.iter().filter(|slot| slot.task.is_some()).count(),
            requeued: self.requeued,
            rejected: self.rejected,
            crashes: self.slots.iter().map(|slot| slot.crashes).sum(),
            restarts: self.slots.iter().map(|slot| slot.restarts).sum(),
            workers,
        }
    }

    /// The model's own invariants: the active count matches the slots, and every accepted
    /// task is in exactly one place.
    fn check(&self) {
        let active = self
            .slots
            .iter()
            .filter(|slot| {
                !matches!(
                    slot.state,
                    WorkerState::Vacant | WorkerState::Exited | WorkerState::Retired
                )
            })
            .count();
        assert_eq!(self.active, active, "active slots");
        assert_eq!(self.stopped, self.phase != Phase::Running && active == 0);
        let mut places: HashMap<u32, usize> = HashMap::new();
        let queued = self.queue.iter().map(|task| task.id);
        let held = self.slots.iter().filter_map(|slot| slot.task.map(|t| t.id));
        for id in queued.chain(held).chain(self.ended.keys().copied()) {
            *places.entry(id).or_default() += 1;
        }
        assert_eq!(
            places.len(),
            self.submitted,
            "every accepted task is somewhere"
        );
        assert!(places.values().all(|&n| n == 1), "a task in two places");
    }
}

// ----- the harness: the real supervisor and its handles -----------------------------------

/// The supervisor under test and the handles a host would hold, kept across steps. Handles
/// borrow the supervisor (and jobs their worker), so they live behind raw pointers and are
/// freed in order: jobs, then workers, then the supervisor.
struct Harness {
    sup: *mut Sup,
    workers: [Option<*mut Handle>; W],
    jobs: [Option<Running>; W],
    /// Every run started on each slot, oldest first.
    runs: [Vec<Run>; W],
    /// Handles of "dead threads" (`declare_dead`): never used or dropped again, freed without
    /// running their destructor.
    forgotten: Vec<*mut Handle>,
}

impl Harness {
    fn new(policy: Policy) -> Harness {
        Harness {
            sup: Box::into_raw(Box::new(Sup::new(policy, NoPark))),
            workers: [None; W],
            jobs: [None, None, None],
            runs: [Vec::new(), Vec::new(), Vec::new()],
            forgotten: Vec::new(),
        }
    }

    fn sup(&self) -> &'static Sup {
        // SAFETY: the supervisor lives until `drop`, after every handle that borrows it.
        unsafe { &*self.sup }
    }

    /// The worker handle of slot `index`, which has no job out.
    fn worker(&mut self, index: usize) -> &'static mut Handle {
        assert!(self.jobs[index].is_none(), "a job borrows this worker");
        let worker = self.workers[index].expect("a worker handle");
        // SAFETY: boxed and alive; no other reference to it exists (no job borrows it).
        unsafe { &mut *worker }
    }

    fn drop_worker(&mut self, index: usize) {
        assert!(self.jobs[index].is_none(), "a job borrows this worker");
        if let Some(worker) = self.workers[index].take() {
            // SAFETY: from `Box::into_raw`, and no job borrows it any more.
            drop(unsafe { Box::from_raw(worker) });
        }
    }

    fn take_worker(&mut self, index: usize) -> Handle {
        assert!(self.jobs[index].is_none(), "a job borrows this worker");
        let worker = self.workers[index].take().expect("a worker handle");
        // SAFETY: from `Box::into_raw`, and no job borrows it any more.
        *unsafe { Box::from_raw(worker) }
    }

    /// Forgets slot `index`'s handles, as if their thread had died without unwinding.
    fn forget(&mut self, index: usize) {
        if let Some(job) = self.jobs[index].take() {
            mem::forget(job);
        }
        if let Some(worker) = self.workers[index].take() {
            self.forgotten.push(worker);
        }
    }
}

impl Harness {
    /// The workers of runs the watchdog flagged, each checked to be its worker's latest run.
    fn workers_of(&self, hung: impl Iterator<Item = Run>) -> Vec<usize> {
        hung.map(|run| {
            assert_eq!(self.runs[run.worker()].last(), Some(&run), "the latest run");
            run.worker()
        })
        .collect()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        for job in &mut self.jobs {
            drop(job.take());
        }
        for index in 0..W {
            self.drop_worker(index);
        }
        for worker in self.forgotten.drain(..) {
            // SAFETY: from `Box::into_raw`; `ManuallyDrop` has the same layout, so the memory
            // is freed without running the handle's destructor.
            drop(unsafe { Box::from_raw(worker.cast::<ManuallyDrop<Handle>>()) });
        }
        // SAFETY: from `Box::into_raw`; every handle that borrowed it is gone.
        drop(unsafe { Box::from_raw(self.sup) });
    }
}

// ----- running a case --------------------------------------------------------------------

/// Runs `op` on the supervisor and the model, and compares what they return.
fn step(sup_h: &mut Harness, model: &mut Model, op: &Op) {
    let sup = sup_h.sup();
    let has_handle = |model: &Model, i: usize| i < W && model.slots[i].handle.is_some();
    let has_job =
        |model: &Model, i: usize| i < W && model.slots[i].handle.is_some_and(|handle| handle.job);
    match *op {
        Op::TrySubmit => {
            let (id, expected) = model.try_submit();
            assert_eq!(sup.try_submit(id), expected);
        }
        Op::Submit => {
            // With `NoPark`, `submit` spins while the queue is full: only when it is not.
            if !model.closed && model.queue.len() == N {
                return;
            }
            let (id, expected) = model.try_submit();
            assert_eq!(sup.submit(id), expected);
        }
        Op::Attach(i) => {
            // A dead handle from this slot's previous worker goes first (a host drops it).
            if has_handle(model, i) && model.slots[i].handle.unwrap().dead {
                sup_h.drop_worker(i);
                model.slots[i].handle = None;
            }
            if has_handle(model, i) {
                return; // one live handle per slot in this harness
            }
            let expected = model.attach(i);
            match sup.attach(i) {
                Ok(worker) => {
                    assert_eq!(expected, Ok(()));
                    sup_h.workers[i] = Some(Box::into_raw(Box::new(worker)));
                }
                Err(err) => assert_eq!(Err(err), expected),
            }
        }
        Op::Reserve(i) => assert_eq!(sup.reserve(i), model.reserve(i)),
        Op::Release(i) => assert_eq!(sup.release(i), model.release(i)),
        Op::Next(i) => {
            if !has_handle(model, i) || has_job(model, i) {
                return;
            }
            let expected = model.next(i);
            match sup_h.worker(i).try_next() {
                Next::Run(job) => {
                    let started = expected.expect("Run, not Exit").expect("Run, not Idle");
                    assert_eq!(
                        (*job.task(), job.context().attempt()),
                        (started.id, started.runs)
                    );
                    let run = job.context().run();
                    assert_eq!((run.worker(), sup.current_run(i)), (i, Some(run)));
                    assert!(!sup_h.runs[i].contains(&run), "a new run, not an old one");
                    sup_h.runs[i].push(run);
                    sup_h.jobs[i] = Some(job);
                }
                Next::Idle => assert_eq!(expected, Ok(None)),
                Next::Exit => assert_eq!(expected, Err(())),
            }
        }
        Op::Complete(i) | Op::Fail(i) => {
            if !has_job(model, i) {
                return;
            }
            let failed = matches!(op, Op::Fail(_));
            let expected = model.finish(i, failed);
            let job = sup_h.jobs[i].take().unwrap();
            let actual = if failed { job.fail() } else { job.complete() };
            assert_eq!(actual, expected);
        }
        Op::Crash(i) => {
            if !has_job(model, i) {
                return;
            }
            let expected = model.crash(i);
            let job = sup_h.jobs[i].take().unwrap();
            assert_eq!(Crash::of(job.crash()), expected);
        }
        Op::DropJob(i) => {
            if !has_job(model, i) {
                return;
            }
            model.let_go(i);
            drop(sup_h.jobs[i].take());
        }
        Op::Heartbeat(i) => {
            if !has_job(model, i) {
                return;
            }
            model.heartbeat(i);
            sup_h.jobs[i].as_ref().unwrap().context().heartbeat();
        }
        Op::DropWorker(i) => {
            if !has_handle(model, i) || has_job(model, i) {
                return;
            }
            model.end_handle(i);
            sup_h.drop_worker(i);
        }
        Op::Exit(i) => {
            if !has_handle(model, i) || has_job(model, i) {
                return;
            }
            let expected = model.end_handle(i);
            assert_eq!(sup_h.take_worker(i).exit(), expected);
        }
        Op::Condemn(i, age) => {
            let Some(runs) = sup_h.runs.get(i) else {
                return; // no run of a slot that does not exist can be named
            };
            let Some(number) = runs.len().checked_sub(age).filter(|&n| n > 0) else {
                return;
            };
            let run = runs[number - 1];
            assert_eq!(sup.condemn(run), model.condemn(i, number));
        }
        #[cfg(feature = "cancellation")]
        Op::Cancel(i, age) => {
            let Some(runs) = sup_h.runs.get(i) else {
                return;
            };
            let Some(number) = runs.len().checked_sub(age).filter(|&n| n > 0) else {
                return;
            };
            let run = runs[number - 1];
            assert_eq!(sup.cancel(run), model.cancel(i, number));
        }
        #[cfg(feature = "cancellation")]
        Op::CancelJob(i) => {
            if !has_job(model, i) {
                return;
            }
            let expected = model.cancel_job(i);
            let job = sup_h.jobs[i].take().unwrap();
            assert_eq!(job.cancel(), expected);
        }
        #[cfg(not(feature = "cancellation"))]
        Op::Cancel(..) | Op::CancelJob(_) => {}
        Op::SetDeadline(i, ticks) => {
            if !has_job(model, i) || !cfg!(feature = "deadlines") {
                return;
            }
            model.slots[i].deadline = Some(ticks);
            #[cfg(feature = "deadlines")]
            sup_h.jobs[i].as_ref().unwrap().set_deadline(ticks);
        }
        Op::DeclareDead(i) => {
            // The "thread" holding the slot's handles dies: they are never touched again.
            if i < W {
                sup_h.forget(i);
            }
            let expected = model.declare_dead(i);
            // SAFETY: the handles of slot `i` were just forgotten, never to be used or dropped.
            assert_eq!(unsafe { sup.declare_dead(i) }, expected);
        }
        Op::Recover(i) => assert_eq!(sup.recover(i).map(Crash::of), model.recover(i)),
        Op::Retire(i) => assert_eq!(sup.retire(i), model.retire(i)),
        Op::Tick(ahead) => {
            let now = model.clock.wrapping_add(ahead);
            let expected = model.tick(now);
            assert_eq!(sup_h.workers_of(sup.tick(now)), expected);
        }
        Op::TickBehind(behind) => {
            let now = model.clock.wrapping_sub(behind);
            let expected = model.tick(now);
            assert_eq!(sup_h.workers_of(sup.tick(now)), expected);
        }
        Op::Drain => assert_eq!(sup.drain(), model.shut_down(Phase::Draining)),
        Op::Abort => assert_eq!(sup.abort(), model.shut_down(Phase::Aborting)),
        Op::Reopen => assert_eq!(sup.reopen(), model.reopen()),
        Op::HandBack => assert_eq!(sup.hand_back().collect::<Vec<_>>(), model.hand_back()),
    }
}

/// Compares everything observable, and checks the model's invariants.
fn compare(harness: &Harness, model: &Model) {
    let sup = harness.sup();
    model.check();
    let snap = sup.snapshot();
    assert_eq!(Counts::of(&snap), model.snapshot(), "the snapshot");
    assert!(snap.adds_up());
    assert_eq!(sup.state(), model.state());
    assert_eq!(sup.queued(), model.queue.len());
    for index in 0..W {
        assert_eq!(sup.worker_state(index), Some(model.slots[index].state));
        if let Some(job) = &harness.jobs[index] {
            let stops = model.stops(index);
            assert_eq!(job.is_cancelled(), stops, "slot {index}: is_cancelled");
            assert_eq!(
                job.context().is_cancelled(),
                stops,
                "slot {index}: the context's"
            );
        }
    }
    assert_eq!(sup.worker_state(W), None);
}

/// Ends the case: abort, let every worker go, recover the crashed ones, take back what is
/// left. Every accepted task must then have ended exactly once.
fn wind_down(harness: &mut Harness, model: &mut Model) {
    let mut ops = vec![Op::Abort];
    ops.extend((0..W).flat_map(|i| [Op::DropJob(i), Op::DropWorker(i)]));
    ops.extend((0..W).map(Op::Recover));
    ops.push(Op::HandBack);
    for op in &ops {
        step(harness, model, op);
        compare(harness, model);
    }
    assert!(model.stopped, "stopped once every worker has gone");
    assert!(harness.sup().is_stopped());
    assert_eq!(
        model.ended.len(),
        model.submitted,
        "every accepted task ended once"
    );
    let snap = harness.sup().snapshot();
    assert_eq!((snap.queued, snap.in_flight), (0, 0));
    assert_eq!(snap.finished(), snap.submitted);
}

fn run(policy: Policy, ops: &[Op]) {
    let mut model = Model::new(policy);
    let mut harness = Harness::new(policy);
    compare(&harness, &model);
    for op in ops {
        step(&mut harness, &mut model, op);
        compare(&harness, &model);
    }
    wind_down(&mut harness, &mut model);
}

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) { 300 } else { 5_000 });
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_supervisor_behaves_like_its_model(policy in policy(), ops in vec(op(), 1..160)) {
        run(policy, &ops);
    }
}

/// The scenarios issue 9 found, as fixed sequences (they also seed the shrinker's intuition).
#[test]
fn fixed_sequences() {
    let at_least_twice = Policy::DEFAULT
        .with_intensity(Intensity::unlimited())
        .with_delivery(Delivery::at_least_once(2).unwrap());
    // A retry whose replacement dies before starting it is not charged.
    run(
        at_least_twice,
        &[
            Op::TrySubmit,
            Op::Attach(0),
            Op::Next(0),
            Op::Crash(0),
            Op::Attach(0),
            Op::DeclareDead(0),
            Op::Recover(0),
            Op::Attach(0),
            Op::Next(0),
            Op::Complete(0),
        ],
    );
    // Restart backoff: the streak grows with each crash and an outcome resets it; the
    // replacement is refused until its delay has passed.
    let backoff = with_backoff(at_least_twice, Backoff::new(2, 3, 50).unwrap());
    run(
        backoff,
        &[
            Op::TrySubmit,
            Op::TrySubmit,
            Op::TrySubmit,
            Op::Attach(0),
            Op::Next(0),
            Op::Crash(0), // delay 2
            Op::Attach(0),
            Op::Tick(1),
            Op::Attach(0),
            Op::Tick(1),
            Op::Attach(0),
            Op::Next(0),
            Op::Crash(0), // dead-lettered; delay 6
            Op::Tick(6),
            Op::Attach(0),
            Op::Next(0),
            Op::Complete(0), // the streak ends
            Op::Next(0),
            Op::Crash(0), // delay 2 again
            Op::Tick(2),
            Op::Attach(0),
            Op::Next(0),
            Op::Complete(0),
        ],
    );
    // Recycling: after its quota, between tasks; during a drain only while tasks are queued.
    run(
        with_recycling(Policy::DEFAULT, 1),
        &[
            Op::TrySubmit,
            Op::TrySubmit,
            Op::Attach(0),
            Op::Next(0),
            Op::Complete(0),
            Op::Drain,
            Op::Next(0), // recycled: a task is queued
            Op::Exit(0),
            Op::Attach(0),
            Op::Next(0),
            Op::Complete(0),
            Op::Next(0), // the queue is empty: it leaves
            Op::Exit(0),
        ],
    );
    // Cancellation: a cancelled run's result is refused and its recovery reports it
    // cancelled, uncharged (the intensity allows no restart); a cancelled run ended by the
    // host keeps its worker; during a drain, a cancelled run's worker that dies is replaced
    // only while tasks are queued.
    let strict = Policy::DEFAULT.with_intensity(Intensity::new(0, 10).unwrap());
    run(
        strict,
        &[
            Op::TrySubmit,
            Op::TrySubmit,
            Op::TrySubmit,
            Op::TrySubmit,
            Op::Attach(0),
            Op::Next(0),
            Op::Cancel(0, 0),
            Op::Cancel(0, 0),
            Op::Complete(0), // refused: the worker crashed
            Op::Recover(0),  // cancelled, replaced
            Op::Attach(0),
            Op::Next(0),
            Op::Cancel(0, 0),
            Op::CancelJob(0), // the same worker goes on
            Op::Cancel(0, 0), // that run ended
            Op::Next(0),
            Op::Cancel(0, 0),
            Op::Drain, // a task is still queued: replaced
            Op::Crash(0),
            Op::Attach(0),
            Op::Next(0),
            Op::Cancel(0, 0),
            Op::DropJob(0), // the queue is empty: retired
            Op::Recover(0),
        ],
    );
    // Deadlines of a run's own: from its start, heartbeats notwithstanding, with or without
    // the watchdog; a new run starts without one.
    for watchdog in [None, Some(3)] {
        let policy = match watchdog {
            Some(deadline) => Policy::DEFAULT.with_watchdog(deadline).unwrap(),
            None => Policy::DEFAULT,
        };
        run(
            policy,
            &[
                Op::TrySubmit,
                Op::TrySubmit,
                Op::Attach(0),
                Op::Next(0),
                Op::SetDeadline(0, 5),
                Op::Tick(4),
                Op::Heartbeat(0),
                Op::Tick(1),
                Op::Tick(1), // flagged: 6 ticks after the start
                Op::Complete(0),
                Op::Next(0),
                Op::Tick(4), // the watchdog's 3 ticks, if any
                Op::Complete(0),
            ],
        );
    }
    // An abort with queued tasks: reopen is refused until they are handed back.
    run(
        Policy::DEFAULT,
        &[
            Op::TrySubmit,
            Op::TrySubmit,
            Op::Abort,
            Op::Reopen,
            Op::HandBack,
            Op::Reopen,
            Op::TrySubmit,
        ],
    );
}
