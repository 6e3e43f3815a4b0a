//! The embassy host: supervised workers as async tasks on [embassy]'s executor. `no_std`, no
//! allocation.
//!
//! A [`Host`] is a `static` [`Supervisor`] plus what async code needs to wait on it:
//!
//! - **Workers are embassy tasks that `await` work.** [`Host::run_worker`] is the worker loop:
//!   it attaches to a slot, takes tasks (with interrupts masked, see the crate docs), runs the
//!   firmware's async task function on each, records the outcome and hands every [`Event`] to
//!   the firmware's sink. An idle worker registers its waker and returns `Pending`; a
//!   submission wakes one idle worker (which, finding more queued, wakes the next).
//!   `#[embassy_executor::task]` functions cannot be generic, so the firmware wraps the loop in
//!   its own task: `HOST.run_worker(index, work, record).await`.
//! - **Producers.** [`Host::try_submit`] never waits and may be called from an interrupt
//!   handler; [`Host::submit`] awaits room in the queue, for async producers.
//! - **The watchdog** ([`Host::watchdog`]) runs as its own task: it feeds the supervisor's clock
//!   from `embassy-time` (ticks are milliseconds) and acts on workers busy past the policy's
//!   deadline, per [`Hangs`].
//! - **Shutdowns are awaited.** [`Host::drain`] runs everything queued, [`Host::abort`] hands
//!   queued tasks back; both return once every worker has left.
//!
//! # What a crash and a hang are in async firmware
//!
//! | what goes wrong | what the host does |
//! |---|---|
//! | the task reports a fault, `Err(Failure::Fault(_))` | a crash: the task is retried, requeued, dead-lettered or reported lost per the [`Delivery`](crate::policy::Delivery) policy, and the worker replaced per the restart policy and intensity |
//! | the task reports an error, `Err(Failure::Error(_))` | a final outcome (`failed`), not retried |
//! | the task's future awaits past the deadline (a peripheral that never answers) | [`Hangs::Cancel`]: the watchdog condemns the worker and wakes it; the worker loop **drops the task's future** (cancels it) and recovers the task as a crash with [`Cause::Hung`]. [`Hangs::Report`]: an [`Event::Hung`], and the task runs on |
//! | the host cancels the run ([`Host::cancel`], feature `cancellation`) | the worker is woken and the worker loop **drops the task's future** (cancels it) at once; the task ends as [`Event::Cancelled`], not retried, and the same worker goes on |
//! | the task panics | nothing: embassy targets build with `panic = "abort"`, so a panic ends the firmware. Report faults as values; a hardware watchdog is the backstop |
//! | the task never yields (a busy loop with no `.await`) | nothing on the same executor: it blocks the executor, the watchdog task included. A watchdog on a higher-priority `InterruptExecutor` still flags it, but a future can only be dropped between polls: a hardware watchdog is the backstop |
//!
//! A *replacement* here is a fresh [`Worker`](crate::Worker) handle on the same slot, driven
//! by the same embassy task: the task function's future, which holds all per-task state, was
//! dropped with the crash. Cancelling a future drops its state where it stands; what it
//! already did stays done, so a task that may be retried (at-least-once) must tolerate running
//! again, as after any crash.
//!
//! # Waking
//!
//! Every wait registers its waker first, then checks its condition, then returns `Pending`;
//! everything that changes a condition changes it first, then wakes. Idle workers compare a
//! notification count (bumped by every submission, shutdown and finished task that matters)
//! with the one they read before looking at the queue, so a submission between their look and
//! their sleep is never slept through. Wakers are kept by `embassy-sync`'s `AtomicWaker` (one
//! per worker slot) and `MultiWakerRegistration` (producers waiting for room, and futures
//! awaiting the stop), behind a `critical-section` mutex.
//!
//! ```
//! use foreman_rt::host::{embassy::{Failure, Hangs, Host}, Event};
//! use foreman_rt::{policy::Policy, Context};
//! use futures_util::future::join;
//!
//! static HOST: Host<u32, 8, 1> = Host::new(Policy::DEFAULT, Hangs::Cancel);
//!
//! // The firmware's task function: one run of one task.
//! async fn square(n: &u32, _ctx: Context<'_>) -> Result<u32, Failure<()>> {
//!     Ok(n * n)
//! }
//!
//! let mut sum = 0;
//! futures_executor::block_on(join(
//!     // On embassy: `#[embassy_executor::task] async fn worker() { HOST.run_worker(…).await; }`
//!     HOST.run_worker(0, square, |event| {
//!         if let Event::Completed { output, .. } = event {
//!             sum += output;
//!         }
//!     }),
//!     async {
//!         for n in 1..=10 {
//!             HOST.submit(n).await.unwrap(); // awaits room when the queue is full
//!         }
//!         HOST.drain().await; // every queued task runs, then the worker leaves
//!     },
//! ));
//! assert_eq!(sum, 385);
//! assert!(HOST.snapshot().adds_up());
//! ```
//!
//! [embassy]: https://embassy.dev

use core::cell::RefCell;
use core::future::{poll_fn, Future};
use core::pin::pin;
use core::task::{Poll, Waker};

use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::waitqueue::{AtomicWaker, MultiWakerRegistration};
use embassy_time::{Duration, Instant, Timer};

use crate::host::Event;
pub use crate::host::{Cause, Failure};
use crate::park::NoPark;
use crate::policy::{Policy, Tick};
use crate::sync::{fence, AtomicU32, Ordering};
use crate::{
    Condemned, Context, CrashReport, Decision, Disposition, HandBack, Next, Shutdown, Snapshot,
    SubmitError, Supervisor, SupervisorState, WorkerError, WorkerState,
};

/// How the task's future of one run ended.
enum Ran<R, E> {
    /// It returned.
    Returned(Result<R, Failure<E>>),
    /// The watchdog condemned the run: the future was dropped.
    Hung,
    /// The run was cancelled: the future was dropped (or its result is discarded).
    #[cfg(feature = "cancellation")]
    Cancelled,
}

/// Wakers a [`WaitList`] keeps before it wakes them all to make room (they register again).
const WAITERS: usize = 4;

/// What the host does about a task the watchdog flags as hung.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Hangs {
    /// Cancel it: the watchdog condemns the worker and wakes it, and the worker loop drops the
    /// task's future at its next poll, then recovers the task as a crash ([`Cause::Hung`]):
    /// retried or dead-lettered per the delivery policy, the worker replaced per the restart
    /// policy.
    Cancel,
    /// Report it ([`Event::Hung`]) and let it run: it may still finish, and a heartbeat
    /// ([`Context::heartbeat`]) clears the flag.
    Report,
}

/// Why [`Host::run_worker`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Exit {
    /// The supervisor is shutting down (drain, abort, escalation): the worker left.
    Left,
    /// The worker crashed and, per the restart policy, is not replaced.
    Retired,
    /// The worker crashed beyond the restart intensity: the supervisor escalated (no longer
    /// accepting; workers leave after their current task; queued tasks wait for
    /// [`Host::hand_back`]).
    Escalated,
    /// The slot could not be attached (out of range, or already driven by another worker).
    Refused(WorkerError),
}

/// Futures waiting for one condition: producers waiting for room, or futures awaiting the
/// stop. Registering and waking follow Dekker's pattern through SeqCst fences against the
/// `waiting` flag, so the hot path (a worker that popped a task) pays one load while nobody
/// waits.
struct WaitList {
    wakers: Mutex<CriticalSectionRawMutex, RefCell<MultiWakerRegistration<WAITERS>>>,
    /// 1 while a waker is registered (set and cleared under the mutex).
    waiting: AtomicU32,
}

impl WaitList {
    const fn new() -> Self {
        WaitList {
            wakers: Mutex::new(RefCell::new(MultiWakerRegistration::new())),
            waiting: AtomicU32::new(0),
        }
    }

    /// Registers a waiter; the caller checks its condition afterwards.
    fn register(&self, waker: &Waker) {
        self.wakers.lock(|wakers| {
            wakers.borrow_mut().register(waker);
            // Relaxed: the mutex orders it against `wake_all`'s clear; the fence below orders
            // it before the caller's check.
            self.waiting.store(1, Ordering::Relaxed);
        });
        // SeqCst: the waiter's flag store comes before its check of the condition, in the one
        // order the waker's fence also takes part in (see `wake_all`).
        fence(Ordering::SeqCst);
    }

    /// Wakes every waiter. The caller changed the condition before.
    fn wake_all(&self) {
        // SeqCst: the condition change comes before this flag load (see `register`).
        fence(Ordering::SeqCst);
        // Relaxed: ordered by the fence.
        if self.waiting.load(Ordering::Relaxed) == 0 {
            return;
        }
        self.wakers.lock(|wakers| {
            // Relaxed: under the mutex, like the store in `register`.
            self.waiting.store(0, Ordering::Relaxed);
            wakers.borrow_mut().wake();
        });
    }
}

/// A [`Supervisor`] hosted on embassy: see the [module docs](self).
///
/// `T` is the task, `N` the queue's capacity (a power of two), `W` the number of worker slots.
/// `const`-constructible, so it is a `static`; every method takes `&self`.
pub struct Host<T, const N: usize, const W: usize> {
    sup: Supervisor<T, N, W, NoPark>,
    hangs: Hangs,
    /// Per slot: the waker of the task driving it (idle, or running a task that the watchdog
    /// may cancel).
    workers: [AtomicWaker; W],
    /// Bumped by every notification of the workers; see `idle`.
    notified: AtomicU32,
    /// Async producers waiting for room.
    producers: WaitList,
    /// Futures awaiting the stop.
    stop: WaitList,
}

impl<T, const N: usize, const W: usize> Host<T, N, W> {
    /// A running host with an empty queue and no worker attached.
    ///
    /// ```
    /// use foreman_rt::host::embassy::{Hangs, Host};
    /// use foreman_rt::policy::Policy;
    ///
    /// const POLICY: Policy = match Policy::DEFAULT.with_watchdog(50) {
    ///     Ok(policy) => policy, // a deadline of 50 ms
    ///     Err(_) => panic!("invalid policy"),
    /// };
    /// static HOST: Host<u32, 16, 2> = Host::new(POLICY, Hangs::Cancel);
    /// assert_eq!(HOST.snapshot().submitted, 0);
    /// ```
    pub const fn new(policy: Policy, hangs: Hangs) -> Self {
        Host {
            sup: Supervisor::new(policy, NoPark),
            hangs,
            workers: [const { AtomicWaker::new() }; W],
            notified: AtomicU32::new(0),
            producers: WaitList::new(),
            stop: WaitList::new(),
        }
    }

    /// The supervisor, for what the host does not wrap: [`Supervisor::snapshot`],
    /// [`Supervisor::worker_state`], [`Supervisor::state`], [`Supervisor::policy`].
    ///
    /// Submit and shut down through the host, not through the supervisor: the host wakes the
    /// futures waiting on them.
    ///
    /// ```
    /// use foreman_rt::host::embassy::{Hangs, Host};
    /// use foreman_rt::{policy::Policy, WorkerState};
    /// static HOST: Host<u32, 4, 1> = Host::new(Policy::DEFAULT, Hangs::Cancel);
    /// assert_eq!(HOST.supervisor().worker_state(0), Some(WorkerState::Vacant));
    /// ```
    pub fn supervisor(&self) -> &Supervisor<T, N, W, NoPark> {
        &self.sup
    }

    /// The counters and worker states, read without locks: [`Supervisor::snapshot`].
    ///
    /// ```
    /// use foreman_rt::host::embassy::{Hangs, Host};
    /// use foreman_rt::policy::Policy;
    /// static HOST: Host<u32, 4, 1> = Host::new(Policy::DEFAULT, Hangs::Cancel);
    /// HOST.try_submit(1).unwrap();
    /// assert_eq!(HOST.snapshot().queued, 1);
    /// ```
    pub fn snapshot(&self) -> Snapshot<W> {
        self.sup.snapshot()
    }

    // ----- submitting ---------------------------------------------------------------------

    /// Submits a task without waiting, and wakes an idle worker. A refused task comes back in
    /// the error: [`SubmitError::Full`] or [`SubmitError::Closed`], counted as rejected.
    ///
    /// Lock-free apart from the wake-up (a critical section of a few instructions): safe to
    /// call from an interrupt handler.
    ///
    /// ```
    /// use foreman_rt::host::embassy::{Hangs, Host};
    /// use foreman_rt::{policy::Policy, SubmitError};
    /// static HOST: Host<u32, 2, 1> = Host::new(Policy::DEFAULT, Hangs::Cancel);
    /// HOST.try_submit(1).unwrap();
    /// HOST.try_submit(2).unwrap();
    /// assert_eq!(HOST.try_submit(3), Err(SubmitError::Full(3)));
    /// ```
    pub fn try_submit(&self, task: T) -> Result<(), SubmitError<T>> {
        self.sup.try_submit(task)?;
        self.notify_one();
        Ok(())
    }

    /// Submits a task, awaiting room while the queue is full. The only error is
    /// [`SubmitError::Closed`] (the host is shutting down), with the task inside; a drain or
    /// abort wakes a producer that waits.
    ///
    /// A producer that finds the queue full sleeps until the workers have emptied half of it,
    /// then refills it: one wake-up per `N / 2` tasks, not one per task. The look for room and
    /// the push happen in one critical section, so on a single core the wait is never counted
    /// as a rejection; on several cores a producer racing another core for the last slot may
    /// be (it then waits again).
    ///
    /// ```
    /// use foreman_rt::host::embassy::{Hangs, Host};
    /// use foreman_rt::{policy::Policy, SubmitError};
    /// static HOST: Host<u32, 2, 1> = Host::new(Policy::DEFAULT, Hangs::Cancel);
    /// futures_executor::block_on(async {
    ///     HOST.submit(1).await.unwrap(); // room: returns at once
    ///     HOST.abort().await.for_each(drop);
    ///     assert_eq!(HOST.submit(2).await, Err(SubmitError::Closed(2)));
    /// });
    /// assert_eq!(HOST.snapshot().rejected, 1);
    /// ```
    pub async fn submit(&self, task: T) -> Result<(), SubmitError<T>> {
        let mut task = task;
        loop {
            match self.offer(task) {
                Err(SubmitError::Full(back)) => task = back,
                done => return done,
            }
            self.room().await;
        }
    }

    /// Pushes `task` if the queue has room or is closed (for the `Closed` answer); answers
    /// `Full` without counting a rejection otherwise.
    fn offer(&self, task: T) -> Result<(), SubmitError<T>> {
        critical_section::with(|_| {
            if self.has_room() {
                self.try_submit(task)
            } else {
                Err(SubmitError::Full(task))
            }
        })
    }

    /// Whether a push would not find the queue full (or the host is shutting down).
    fn has_room(&self) -> bool {
        self.sup.queued() < N || self.sup.state() != SupervisorState::Running
    }

    /// Waits until the queue may have room (see `submit`).
    async fn room(&self) {
        poll_fn(|cx| {
            self.producers.register(cx.waker());
            if self.has_room() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }

    // ----- waking workers -----------------------------------------------------------------

    /// Something for one worker to do: wake the first idle one.
    fn notify_one(&self) {
        self.bump_notified();
        for (index, waker) in self.workers.iter().enumerate() {
            if self.sup.worker_state(index) == Some(WorkerState::Idle) {
                waker.wake();
                return;
            }
        }
    }

    /// Something every worker must look at (a shutdown, a drain's last tasks): wake them all.
    fn notify_all(&self) {
        self.bump_notified();
        for waker in &self.workers {
            waker.wake();
        }
    }

    fn bump_notified(&self) {
        // SeqCst: the caller's condition change (a push, a phase change) comes before this
        // bump, which comes before the wake-up, in the order the idle worker's re-check also
        // takes part in (see `idle`).
        self.notified.fetch_add(1, Ordering::SeqCst);
    }

    /// Waits until a notification newer than `seen` (read before the worker last looked at
    /// the queue).
    async fn idle(&self, index: usize, seen: u32) {
        poll_fn(|cx| {
            self.workers[index].register(cx.waker());
            // SeqCst: after the registration; a notifier whose bump this load misses wakes
            // the waker just registered.
            if self.notified.load(Ordering::SeqCst) == seen {
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await;
    }

    /// A worker took a task: wake producers waiting for room once half the queue is free, and
    /// another idle worker if more tasks wait.
    fn took_task(&self) {
        let queued = self.sup.queued();
        if queued <= N / 2 {
            self.producers.wake_all();
        }
        if queued > 0 {
            self.notify_one();
        }
    }

    // ----- the worker loop ----------------------------------------------------------------

    /// The worker loop for slot `index`: attaches, then runs `work` on each task until the
    /// worker must leave, and hands every [`Event`] to `sink`. Await it from an embassy task,
    /// one per slot.
    ///
    /// `work` is one run of one task: `Ok(output)` completes it, `Err(Failure::Error(_))`
    /// fails it for good, `Err(Failure::Fault(_))` crashes the worker (the task is retried per
    /// the delivery policy, and the loop goes on as the replacement the restart policy asks
    /// for). A task whose future the watchdog finds hung is cancelled ([`Hangs::Cancel`]).
    ///
    /// Returns when a shutdown asks the worker to leave, when a crash retires it or escalates,
    /// or at once if the slot cannot be attached.
    ///
    /// A task may submit to its own host, but a task that awaits [`submit`](Self::submit) while
    /// every worker does the same waits for room only a worker could make: prefer
    /// [`try_submit`](Self::try_submit) there (with [`Hangs::Cancel`] the watchdog would
    /// otherwise cancel it as hung).
    ///
    /// ```
    /// use foreman_rt::host::embassy::{Cause, Exit, Failure, Hangs, Host};
    /// use foreman_rt::host::Event;
    /// use foreman_rt::policy::{Delivery, Policy};
    /// use foreman_rt::{Context, Decision, Disposition};
    /// use futures_util::future::join;
    ///
    /// const POLICY: Policy = match Delivery::at_least_once(2) {
    ///     Ok(delivery) => Policy::DEFAULT.with_delivery(delivery),
    ///     Err(_) => panic!("invalid delivery"),
    /// };
    /// static HOST: Host<u32, 4, 1> = Host::new(POLICY, Hangs::Cancel);
    ///
    /// // Task 13 faults on every run.
    /// async fn check(n: &u32, _ctx: Context<'_>) -> Result<u32, Failure<&'static str>> {
    ///     if *n == 13 { Err(Failure::Fault("unlucky")) } else { Ok(*n) }
    /// }
    ///
    /// let mut events = Vec::new();
    /// let (exit, ()) = futures_executor::block_on(join(
    ///     HOST.run_worker(0, check, |event| events.push(event)),
    ///     async {
    ///         HOST.submit(13).await.unwrap();
    ///         HOST.drain().await;
    ///     },
    /// ));
    /// assert_eq!(exit, Exit::Left);
    /// assert_eq!(
    ///     events,
    ///     [
    ///         Event::Crashed {
    ///             worker: 0,
    ///             cause: Cause::Fault("unlucky"),
    ///             task: Some(Disposition::Retried { attempt: 2 }),
    ///             decision: Decision::Replace,
    ///         },
    ///         Event::Crashed {
    ///             worker: 0,
    ///             cause: Cause::Fault("unlucky"),
    ///             task: Some(Disposition::DeadLettered { task: 13, attempts: 2 }),
    ///             decision: Decision::Replace,
    ///         },
    ///     ]
    /// );
    /// ```
    pub async fn run_worker<R, E>(
        &self,
        index: usize,
        mut work: impl AsyncFnMut(&T, Context<'_>) -> Result<R, Failure<E>>,
        mut sink: impl FnMut(Event<T, R, E, Cause<E>>),
    ) -> Exit {
        let mut worker = match self.sup.attach(index) {
            Ok(worker) => worker,
            Err(err) => return Exit::Refused(err),
        };
        // Set when a step ended the worker: it left, or was recycled.
        let mut ended = false;
        let exit = loop {
            if ended {
                if !worker.is_recycled() {
                    break Exit::Left;
                }
                // Its quota of tasks run: a fresh handle takes the slot over.
                sink(Event::Recycled { worker: index });
                worker = match self.sup.attach(index) {
                    Ok(fresh) => fresh,
                    Err(WorkerError::ShuttingDown) => break Exit::Left,
                    Err(err) => break Exit::Refused(err),
                };
                ended = false;
            }
            // SeqCst: read before looking at the queue; see `idle`.
            let seen = self.notified.load(Ordering::SeqCst);
            // Interrupts masked while taking a task: an interrupt's `try_submit` that found
            // the queue full at the very slot this pop is emptying would wait for it forever.
            let job = match critical_section::with(|_| worker.try_next()) {
                Next::Run(job) => job,
                Next::Idle => {
                    self.idle(index, seen).await;
                    continue;
                }
                Next::Exit => {
                    ended = true;
                    continue;
                }
            };
            self.took_task();

            let outcome = {
                let this_run = job.context().run();
                let mut run = pin!(work(job.task(), job.context()));
                let mut reported = false;
                poll_fn(|cx| {
                    self.workers[index].register(cx.waker());
                    match self.sup.worker_state(index) {
                        // Condemned by the watchdog: drop the task's future (cancel it).
                        Some(WorkerState::Terminating) => return Poll::Ready(Ran::Hung),
                        // Cancelled: drop the task's future too.
                        #[cfg(feature = "cancellation")]
                        _ if job.is_cancelled() => return Poll::Ready(Ran::Cancelled),
                        Some(WorkerState::Hung) if !reported => {
                            reported = true;
                            sink(Event::Hung {
                                worker: index,
                                run: this_run,
                            });
                        }
                        _ => {}
                    }
                    run.as_mut().poll(cx).map(Ran::Returned)
                })
                .await
            };
            // Cancelled while it ran, whatever it returned: it ends cancelled. (A fault is
            // still a crash, whose recovery reports the task cancelled.)
            #[cfg(feature = "cancellation")]
            let outcome = match outcome {
                Ran::Returned(Err(Failure::Fault(_))) => outcome,
                _ if job.is_cancelled() => Ran::Cancelled,
                _ => outcome,
            };

            let crash = match outcome {
                #[cfg(feature = "cancellation")]
                Ran::Cancelled => match job.cancel() {
                    Ok(task) => {
                        sink(Event::Cancelled {
                            worker: Some(index),
                            task,
                        });
                        None
                    }
                    Err(Condemned) => Some((Cause::Hung, self.recover(index))),
                },
                Ran::Returned(Ok(output)) => match job.complete() {
                    Ok(task) => {
                        sink(Event::Completed {
                            worker: index,
                            task,
                            output,
                        });
                        None
                    }
                    Err(Condemned) => Some((Cause::Hung, self.recover(index))),
                },
                Ran::Returned(Err(Failure::Error(error))) => match job.fail() {
                    Ok(task) => {
                        sink(Event::Failed {
                            worker: index,
                            task,
                            error,
                        });
                        None
                    }
                    Err(Condemned) => Some((Cause::Hung, self.recover(index))),
                },
                Ran::Returned(Err(Failure::Fault(error))) => {
                    Some((Cause::Fault(error), Ok(self.crash(job))))
                }
                Ran::Hung => Some((Cause::Hung, Ok(self.crash(job)))),
            };

            if let Some((cause, report)) = crash {
                let report = match report {
                    Ok(report) => report,
                    Err(err) => break Exit::Refused(err),
                };
                let decision = report.decision;
                if matches!(report.task, Some(Disposition::Requeued { .. })) {
                    self.notify_one();
                }
                // (A cancelled run's worker that crashed: the task ends cancelled.)
                sink(Event::of_crash(index, cause, report.task, decision));
                match decision {
                    // The crashed handle is dead; the replacement runs the retry first.
                    Decision::Replace | Decision::Recycle => {
                        // Without the feature no wait, and no future to hold across it.
                        #[cfg(feature = "backoff")]
                        let attached = self.replacement(index).await;
                        #[cfg(not(feature = "backoff"))]
                        let attached = self.sup.attach(index);
                        match attached {
                            Ok(replacement) => worker = replacement,
                            Err(WorkerError::ShuttingDown) => break Exit::Left,
                            Err(err) => break Exit::Refused(err),
                        }
                    }
                    Decision::Retire => break Exit::Retired,
                    Decision::Escalate => break Exit::Escalated,
                }
            }
            if self.sup.state() == SupervisorState::Draining {
                // Idle peers of a drain wait for the tasks still out to come back.
                self.notify_all();
            }
        };
        drop(worker);
        self.worker_left();
        exit
    }

    /// Attaches the replacement of slot `index`'s crashed worker, first waiting out its
    /// restart backoff (an abort or escalation meanwhile ends the wait at once), the clock
    /// brought up to date after. (The wait is not compiled without the feature `backoff`: the firmware's
    /// worker future stays small.)
    #[cfg(feature = "backoff")]
    async fn replacement(
        &self,
        index: usize,
    ) -> Result<crate::Worker<'_, T, N, W, NoPark>, WorkerError> {
        loop {
            match self.sup.attach(index) {
                Err(WorkerError::BackingOff { ready_at, .. }) => {
                    let now = Instant::now().as_millis() as Tick;
                    let wait = ready_at.wrapping_sub(now);
                    if wait <= crate::policy::MAX_DURATION {
                        let mut timer = pin!(Timer::after_millis(u64::from(wait)));
                        poll_fn(|cx| {
                            // Woken by a shutdown (`notify_all`): an abort or escalation that
                            // swept the slot ends the wait, not the delay.
                            self.workers[index].register(cx.waker());
                            if self.sup.worker_state(index) != Some(WorkerState::Restarting) {
                                return Poll::Ready(());
                            }
                            timer.as_mut().poll(cx)
                        })
                        .await;
                    }
                    self.tick();
                }
                attached => return attached,
            }
        }
    }

    /// Records a crash, the supervisor's clock brought up to date first: restarts are timed
    /// by it.
    fn crash(&self, job: crate::Job<'_, T, N, W, NoPark>) -> CrashReport<T> {
        self.tick();
        job.crash()
    }

    /// Recovers a worker whose finished task found it condemned, the clock brought up to date
    /// first.
    fn recover(&self, index: usize) -> Result<CrashReport<T>, WorkerError> {
        self.tick();
        self.sup.recover(index)
    }

    /// A worker loop ended: wake whoever waits for the stop and, if the supervisor is shutting
    /// down (an escalation, or the last worker gone), the workers and producers too.
    fn worker_left(&self) {
        if self.sup.state() != SupervisorState::Running {
            self.notify_all();
            self.producers.wake_all();
        }
        self.stop.wake_all();
    }

    // ----- the watchdog and the clock -----------------------------------------------------

    /// The watchdog: run it as its own embassy task. Every quarter of the policy's deadline it
    /// feeds the supervisor's clock (milliseconds of `embassy-time`) and acts on the workers
    /// busy past the deadline per [`Hangs`]. Returns at once without a watchdog in the policy,
    /// and once the supervisor has stopped.
    ///
    /// A task that sends heartbeats ([`Context::heartbeat`]) at least every three quarters of
    /// the deadline is never flagged.
    ///
    /// ```
    /// use foreman_rt::host::embassy::{Hangs, Host};
    /// use foreman_rt::policy::Policy;
    /// static HOST: Host<u32, 4, 1> = Host::new(Policy::DEFAULT, Hangs::Cancel);
    /// futures_executor::block_on(HOST.watchdog()); // no deadline in the policy: nothing to do
    /// ```
    pub async fn watchdog(&self) {
        let Some(deadline) = self.sup.policy().watchdog() else {
            return;
        };
        let period = Duration::from_millis(u64::from(deadline / 4).max(1));
        while !self.sup.is_stopped() {
            Timer::after(period).await;
            self.tick();
        }
    }

    /// Cancels a run ([`Supervisor::cancel`]) and wakes its worker, whose loop then drops the
    /// task's future at once (it is not polled again) and reports [`Event::Cancelled`]; the
    /// worker goes on with its next task. The run is named as for `Supervisor::cancel` (a
    /// task's [`Context::run`], or [`Supervisor::current_run`]); `Err(RunEnded)` if it has
    /// ended.
    ///
    /// ```
    /// use foreman_rt::host::{embassy::{Failure, Hangs, Host}, Event};
    /// use foreman_rt::{policy::Policy, Context};
    /// use futures_util::future::join;
    ///
    /// static HOST: Host<u32, 4, 1> = Host::new(Policy::DEFAULT, Hangs::Cancel);
    ///
    /// // Task 1 waits forever (for a peripheral that never answers), unless cancelled.
    /// async fn work(n: &u32, _ctx: Context<'_>) -> Result<u32, Failure<()>> {
    ///     if *n == 1 {
    ///         core::future::pending::<()>().await;
    ///     }
    ///     Ok(*n)
    /// }
    ///
    /// let mut events = Vec::new();
    /// futures_executor::block_on(join(
    ///     HOST.run_worker(0, work, |event| events.push(event)),
    ///     async {
    ///         HOST.submit(1).await.unwrap();
    ///         // Let the worker start task 1, then cancel it.
    ///         let run = loop {
    ///             match HOST.supervisor().current_run(0) {
    ///                 Some(run) => break run,
    ///                 None => futures_util::pending!(),
    ///             }
    ///         };
    ///         HOST.cancel(run).unwrap();
    ///         HOST.submit(2).await.unwrap();
    ///         HOST.drain().await;
    ///     },
    /// ));
    /// assert_eq!(
    ///     events,
    ///     [
    ///         Event::Cancelled { worker: Some(0), task: 1 },
    ///         Event::Completed { worker: 0, task: 2, output: 2 },
    ///     ]
    /// );
    /// ```
    #[cfg(feature = "cancellation")]
    pub fn cancel(&self, run: crate::Run) -> Result<(), WorkerError> {
        self.sup.cancel(run)?;
        self.workers[run.worker()].wake();
        Ok(())
    }

    /// Feeds the clock and acts on the workers it flags hung.
    fn tick(&self) {
        // Truncated: ticks wrap, and the supervisor compares them in wrapping order.
        let now = Instant::now().as_millis() as Tick;
        for run in self.sup.tick(now) {
            if self.hangs == Hangs::Cancel {
                // Fails only if the task finished meanwhile: then there is nothing to cancel.
                let _ = self.sup.condemn(run);
            }
            // The worker loop cancels the task, or reports the hang.
            self.workers[run.worker()].wake();
        }
    }

    // ----- shutting down ------------------------------------------------------------------

    /// Graceful shutdown: no more submissions (waiting producers get their task back as
    /// `Closed`); workers run everything queued, then leave. Returns once they all have.
    ///
    /// ```
    /// use foreman_rt::host::embassy::{Hangs, Host};
    /// use foreman_rt::{policy::Policy, Shutdown, SubmitError};
    /// static HOST: Host<u32, 4, 1> = Host::new(Policy::DEFAULT, Hangs::Cancel);
    /// // No worker attached: stopped at once.
    /// assert_eq!(futures_executor::block_on(HOST.drain()), Shutdown::Drain);
    /// assert_eq!(HOST.try_submit(1), Err(SubmitError::Closed(1)));
    /// ```
    pub async fn drain(&self) -> Shutdown {
        self.sup.drain();
        self.shutting_down();
        self.stopped().await
    }

    /// Immediate shutdown: no more submissions; workers leave after their current task.
    /// Returns once they all have, with the tasks that did not run (queued, or retries whose
    /// worker was retired), each counted as handed back: take them, nothing is dropped.
    ///
    /// ```
    /// use foreman_rt::host::embassy::{Hangs, Host};
    /// use foreman_rt::policy::Policy;
    /// static HOST: Host<u32, 4, 1> = Host::new(Policy::DEFAULT, Hangs::Cancel);
    /// HOST.try_submit(7).unwrap();
    /// HOST.try_submit(8).unwrap();
    /// let back: Vec<u32> = futures_executor::block_on(HOST.abort()).collect();
    /// assert_eq!(back, [7, 8]);
    /// assert_eq!(HOST.snapshot().handed_back, 2);
    /// ```
    pub async fn abort(&self) -> HandBack<'_, T, N, W, NoPark> {
        self.sup.abort();
        self.shutting_down();
        self.stopped().await;
        self.hand_back()
    }

    /// After a shutdown, the tasks that will not run; see [`Supervisor::hand_back`]. For an
    /// escalation ([`Exit::Escalated`]): await [`stopped`](Self::stopped), then take them.
    ///
    /// ```
    /// use foreman_rt::host::embassy::{Hangs, Host};
    /// use foreman_rt::policy::Policy;
    /// static HOST: Host<u32, 4, 1> = Host::new(Policy::DEFAULT, Hangs::Cancel);
    /// HOST.try_submit(5).unwrap();
    /// assert_eq!(HOST.hand_back().count(), 0); // running: the task is still to run
    /// ```
    pub fn hand_back(&self) -> HandBack<'_, T, N, W, NoPark> {
        self.sup.hand_back()
    }

    /// The phase just changed to a shutdown: wake every worker to leave or finish the queue,
    /// and every producer to get its task back.
    fn shutting_down(&self) {
        self.notify_all();
        self.producers.wake_all();
        // With no worker attached the supervisor stopped at once.
        self.stop.wake_all();
    }

    /// Waits until every worker has left after a shutdown (drain, abort or escalation), and
    /// says which.
    ///
    /// ```
    /// use foreman_rt::host::embassy::{Hangs, Host};
    /// use foreman_rt::{policy::Policy, Shutdown};
    /// static HOST: Host<u32, 4, 1> = Host::new(Policy::DEFAULT, Hangs::Cancel);
    /// futures_executor::block_on(async {
    ///     HOST.abort().await.for_each(drop);
    ///     assert_eq!(HOST.stopped().await, Shutdown::Abort);
    /// });
    /// ```
    pub async fn stopped(&self) -> Shutdown {
        poll_fn(|cx| {
            if let SupervisorState::Stopped(how) = self.sup.state() {
                return Poll::Ready(how);
            }
            self.stop.register(cx.waker());
            match self.sup.state() {
                SupervisorState::Stopped(how) => Poll::Ready(how),
                _ => Poll::Pending,
            }
        })
        .await
    }
}

impl<T, const N: usize, const W: usize> core::fmt::Debug for Host<T, N, W> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Host")
            .field("supervisor", &self.sup)
            .field("hangs", &self.hangs)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    //! The host under an executor that polls a task only when it is woken
    //! (`futures_executor::LocalPool`): a lost wake-up leaves a task stalled, and
    //! `run_until_stalled` returns instead of hanging. Tests that need the watchdog run in real
    //! time (embassy-time's std driver) under a time limit that fails with "hung: ...".

    extern crate std;

    use super::*;
    use crate::policy::{Delivery, Intensity, Restart};
    use core::cell::Cell;
    use futures_executor::LocalPool;
    use futures_util::future::{select, Either};
    use futures_util::task::LocalSpawnExt;
    use std::boxed::Box;
    use std::rc::Rc;
    use std::vec::Vec;

    type Events = Rc<RefCell<Vec<Event<u32, u32, u32, Cause<u32>>>>>;
    type Outcome = Result<u32, Failure<u32>>;

    /// A host of its own for each test, alive for the rest of the process.
    fn host<const N: usize, const W: usize>(
        policy: Policy,
        hangs: Hangs,
    ) -> &'static Host<u32, N, W> {
        Box::leak(Box::new(Host::new(policy, hangs)))
    }

    fn policy(max_attempts: u32) -> Policy {
        Policy::DEFAULT.with_delivery(Delivery::at_least_once(max_attempts).unwrap())
    }

    fn watched(deadline: Tick, max_attempts: u32) -> Policy {
        policy(max_attempts).with_watchdog(deadline).unwrap()
    }

    /// A gate tasks await until the test opens it.
    #[derive(Clone, Default)]
    struct Gate {
        open: Rc<Cell<bool>>,
        waiting: Rc<RefCell<Vec<Waker>>>,
    }

    impl Gate {
        async fn pass(&self) {
            poll_fn(|cx| {
                if self.open.get() {
                    Poll::Ready(())
                } else {
                    self.waiting.borrow_mut().push(cx.waker().clone());
                    Poll::Pending
                }
            })
            .await;
        }

        fn open(&self) {
            self.open.set(true);
            self.waiting.borrow_mut().drain(..).for_each(Waker::wake);
        }
    }

    /// Counts the drops of the futures it lives in: a cancelled task's future is dropped.
    struct DropCount(Rc<Cell<u32>>);

    impl Drop for DropCount {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }

    /// Spawns a worker loop whose events go to `events` and whose exit lands in the returned cell.
    fn spawn_worker<const N: usize, const W: usize>(
        pool: &LocalPool,
        host: &'static Host<u32, N, W>,
        index: usize,
        events: &Events,
        work: impl AsyncFnMut(&u32, Context<'_>) -> Outcome + 'static,
    ) -> Rc<Cell<Option<Exit>>> {
        let exit = Rc::new(Cell::new(None));
        let (events, done) = (events.clone(), exit.clone());
        pool.spawner()
            .spawn_local(async move {
                let result = host
                    .run_worker(index, work, |event| events.borrow_mut().push(event))
                    .await;
                done.set(Some(result));
            })
            .unwrap();
        exit
    }

    /// Spawns `future`, whose output lands in the returned cell.
    fn spawn<F: Future + 'static>(pool: &LocalPool, future: F) -> Rc<RefCell<Option<F::Output>>> {
        let out = Rc::new(RefCell::new(None));
        let slot = out.clone();
        pool.spawner()
            .spawn_local(async move {
                let value = future.await;
                *slot.borrow_mut() = Some(value);
            })
            .unwrap();
        out
    }

    /// Runs the pool until `done` says so, in real time, failing after 10 s.
    fn run_until(pool: &mut LocalPool, what: &str, done: impl Fn() -> bool) {
        let wait = async {
            while !done() {
                Timer::after_millis(1).await;
            }
        };
        if let Either::Right(_) = pool.run_until(select(pin!(wait), Timer::after_secs(10))) {
            panic!("hung: {what}");
        }
    }

    async fn double(n: &u32, _ctx: Context<'_>) -> Outcome {
        Ok(n * 2)
    }

    fn completed(events: &Events) -> Vec<u32> {
        events
            .borrow()
            .iter()
            .filter_map(|event| match event {
                Event::Completed { task, .. } => Some(*task),
                _ => None,
            })
            .collect()
    }

    #[cfg(feature = "recycling")]
    #[test]
    fn a_worker_is_recycled_after_its_quota_and_a_fresh_handle_takes_over() {
        let host = host::<8, 1>(Policy::DEFAULT.with_recycling(2).unwrap(), Hangs::Cancel);
        let mut pool = LocalPool::new();
        let events = Events::default();
        let exit = spawn_worker(&pool, host, 0, &events, double);
        for n in 0..5 {
            host.try_submit(n).unwrap();
        }
        pool.run_until_stalled();
        let kinds: std::string::String = events
            .borrow()
            .iter()
            .map(|event| match event {
                Event::Completed { .. } => 'c',
                Event::Recycled { worker: 0 } => 'R',
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(kinds, "ccRccRc");
        let drained = spawn(&pool, host.drain());
        pool.run_until_stalled();
        assert_eq!(*drained.borrow(), Some(Shutdown::Drain));
        assert_eq!(exit.get(), Some(Exit::Left));
        let snap = host.supervisor().snapshot();
        assert_eq!(
            (snap.recycles(), snap.restarts(), snap.completed),
            (2, 0, 5)
        );
        assert!(snap.adds_up());
    }

    #[cfg(feature = "backoff")]
    #[test]
    fn a_replacement_waits_out_the_restart_backoff() {
        use crate::policy::Backoff;
        let policy = policy(3).with_backoff(Backoff::new(30, 2, 1_000).unwrap());
        let host = host::<4, 1>(policy, Hangs::Cancel);
        let mut pool = LocalPool::new();
        let events = Events::default();
        let exit = spawn_worker(
            &pool,
            host,
            0,
            &events,
            async |n: &u32, ctx: Context<'_>| {
                if ctx.attempt() == 1 {
                    return Err(Failure::Fault(*n));
                }
                Ok(*n)
            },
        );
        let started = std::time::Instant::now();
        host.try_submit(7).unwrap();
        run_until(&mut pool, "the retry's result", || {
            completed(&events) == [7]
        });
        // A lower bound only: the clock counts whole milliseconds.
        assert!(
            started.elapsed() >= std::time::Duration::from_millis(29),
            "the retry ran after {:?}",
            started.elapsed()
        );
        assert_eq!(host.supervisor().snapshot().crashes(), 1);
        let drained = spawn(&pool, host.drain());
        run_until(&mut pool, "the drain", || drained.borrow().is_some());
        assert_eq!(exit.get(), Some(Exit::Left));
    }

    #[cfg(feature = "backoff")]
    #[test]
    fn an_abort_ends_a_replacements_backoff_wait_at_once() {
        use crate::policy::Backoff;
        // A minute's backoff: the abort, and the worker's loop, must not wait it out.
        let policy = policy(3).with_backoff(Backoff::new(60_000, 2, 60_000).unwrap());
        let host = host::<4, 1>(policy, Hangs::Cancel);
        let mut pool = LocalPool::new();
        let events = Events::default();
        let exit = spawn_worker(&pool, host, 0, &events, async |_: &u32, _: Context<'_>| {
            Err(Failure::Fault(0))
        });
        host.try_submit(7).unwrap();
        run_until(&mut pool, "the crash", || {
            host.supervisor().worker_state(0) == Some(WorkerState::Restarting)
        });
        let aborted = spawn(&pool, async { host.abort().await.collect::<Vec<_>>() });
        run_until(&mut pool, "the abort", || aborted.borrow().is_some());
        assert_eq!(aborted.borrow().as_deref(), Some(&[7][..]));
        run_until(&mut pool, "the worker's loop after the abort", || {
            exit.get().is_some()
        });
        assert_eq!(exit.get(), Some(Exit::Left));
        assert!(host.supervisor().snapshot().adds_up());
    }

    #[test]
    fn an_idle_worker_sleeps_until_a_submission_wakes_it() {
        let host = host::<4, 1>(Policy::DEFAULT, Hangs::Cancel);
        let mut pool = LocalPool::new();
        let events = Events::default();
        let exit = spawn_worker(&pool, host, 0, &events, double);
        pool.run_until_stalled();
        assert_eq!(host.supervisor().worker_state(0), Some(WorkerState::Idle));
        host.try_submit(21).unwrap();
        pool.run_until_stalled();
        assert_eq!(
            *events.borrow(),
            [Event::Completed {
                worker: 0,
                task: 21,
                output: 42
            }]
        );
        let drained = spawn(&pool, host.drain());
        pool.run_until_stalled();
        assert_eq!(*drained.borrow(), Some(Shutdown::Drain));
        assert_eq!(exit.get(), Some(Exit::Left));
    }

    #[test]
    fn a_burst_wakes_every_idle_worker_it_needs() {
        let host = host::<8, 3>(Policy::DEFAULT, Hangs::Cancel);
        let mut pool = LocalPool::new();
        let events = Events::default();
        let gate = Gate::default();
        for index in 0..3 {
            let gate = gate.clone();
            spawn_worker(
                &pool,
                host,
                index,
                &events,
                async move |n: &u32, _ctx: Context<'_>| {
                    gate.pass().await;
                    Ok(*n)
                },
            );
        }
        pool.run_until_stalled();
        for n in 0..3 {
            host.try_submit(n).unwrap();
        }
        pool.run_until_stalled();
        // Each submission woke one worker; each worker that took a task and saw more queued
        // woke the next: all three are busy at once.
        let busy = (0..3)
            .filter(|&i| host.supervisor().worker_state(i) == Some(WorkerState::Busy))
            .count();
        assert_eq!(busy, 3);
        gate.open();
        pool.run_until_stalled();
        let mut done = completed(&events);
        done.sort();
        assert_eq!(done, [0, 1, 2]);
    }

    #[test]
    fn a_task_may_submit_to_its_own_host() {
        static HOST: Host<u32, 4, 1> = Host::new(Policy::DEFAULT, Hangs::Cancel);
        async fn countdown(n: &u32, _ctx: Context<'_>) -> Outcome {
            if *n > 0 {
                HOST.submit(n - 1).await.map_err(|_| Failure::Error(*n))?;
            }
            Ok(*n)
        }
        let mut pool = LocalPool::new();
        let events = Events::default();
        spawn_worker(&pool, &HOST, 0, &events, countdown);
        HOST.try_submit(5).unwrap();
        pool.run_until_stalled();
        assert_eq!(completed(&events), [5, 4, 3, 2, 1, 0]);
    }

    #[test]
    fn a_producer_awaiting_room_is_woken_once_half_the_queue_is_free() {
        let host = host::<4, 1>(Policy::DEFAULT, Hangs::Cancel);
        let mut pool = LocalPool::new();
        let events = Events::default();
        let gate = Gate::default();
        let worker_gate = gate.clone();
        spawn_worker(
            &pool,
            host,
            0,
            &events,
            async move |n: &u32, _ctx: Context<'_>| {
                worker_gate.pass().await;
                Ok(*n)
            },
        );
        let producer = spawn(&pool, async move {
            for n in 0..12 {
                host.submit(n).await.unwrap();
            }
        });
        pool.run_until_stalled();
        // The producer filled the queue (4) and waits with task 4; then the worker took task
        // 0 and waits behind the gate. One slot is free, but the producer sleeps until half
        // the queue is: one wake-up per two tasks, not one per task.
        assert!(producer.borrow().is_none());
        assert_eq!(host.snapshot().queued, 3);
        gate.open();
        pool.run_until_stalled();
        assert!(producer.borrow().is_some(), "the producer was never woken");
        assert_eq!(completed(&events), (0..12).collect::<Vec<_>>());
        assert_eq!(
            host.snapshot().rejected,
            0,
            "waiting for room is not a rejection"
        );
    }

    #[test]
    fn a_drain_hands_a_waiting_producer_its_task_back() {
        let host = host::<2, 1>(Policy::DEFAULT, Hangs::Cancel);
        let mut pool = LocalPool::new();
        let events = Events::default();
        let gate = Gate::default();
        let worker_gate = gate.clone();
        let exit = spawn_worker(
            &pool,
            host,
            0,
            &events,
            async move |n: &u32, _ctx: Context<'_>| {
                worker_gate.pass().await;
                Ok(*n)
            },
        );
        let producer = spawn(&pool, async move {
            for n in 0..3 {
                host.submit(n).await.unwrap();
            }
            host.submit(3).await // the queue is full: waits, then the drain refuses it
        });
        pool.run_until_stalled();
        assert!(producer.borrow().is_none());
        let drained = spawn(&pool, host.drain());
        pool.run_until_stalled();
        assert_eq!(*producer.borrow(), Some(Err(SubmitError::Closed(3))));
        assert!(
            drained.borrow().is_none(),
            "the drain waits for the queued tasks"
        );
        gate.open();
        pool.run_until_stalled();
        assert_eq!(*drained.borrow(), Some(Shutdown::Drain));
        assert_eq!(exit.get(), Some(Exit::Left));
        assert_eq!(completed(&events), [0, 1, 2]);
        let snap = host.snapshot();
        assert!(snap.adds_up());
        assert_eq!((snap.submitted, snap.completed, snap.rejected), (3, 3, 1));
    }

    #[test]
    fn abort_hands_back_every_queued_task_and_loses_nothing() {
        let host = host::<8, 1>(Policy::DEFAULT, Hangs::Cancel);
        let mut pool = LocalPool::new();
        let events = Events::default();
        let gate = Gate::default();
        let worker_gate = gate.clone();
        spawn_worker(
            &pool,
            host,
            0,
            &events,
            async move |n: &u32, _ctx: Context<'_>| {
                worker_gate.pass().await;
                Ok(*n)
            },
        );
        for n in 0..5 {
            host.try_submit(n).unwrap();
        }
        pool.run_until_stalled();
        let back = spawn(&pool, async move { host.abort().await.collect::<Vec<_>>() });
        pool.run_until_stalled();
        assert!(back.borrow().is_none(), "the running task finishes first");
        gate.open();
        pool.run_until_stalled();
        assert_eq!(*back.borrow(), Some(std::vec![1, 2, 3, 4]));
        assert_eq!(completed(&events), [0]);
        let snap = host.snapshot();
        assert!(snap.adds_up());
        assert_eq!(
            (snap.submitted, snap.completed, snap.handed_back),
            (5, 1, 4)
        );
        assert_eq!(snap.state, SupervisorState::Stopped(Shutdown::Abort));
    }

    #[test]
    fn a_fault_is_retried_by_the_replacement_then_dead_lettered() {
        let policy = policy(3).with_intensity(Intensity::unlimited());
        let host = host::<4, 1>(policy, Hangs::Cancel);
        let mut pool = LocalPool::new();
        let events = Events::default();
        spawn_worker(
            &pool,
            host,
            0,
            &events,
            async |n: &u32, ctx: Context<'_>| {
                match *n {
                    // Faults on its first run only.
                    1 if ctx.attempt() == 1 => Err(Failure::Fault(ctx.attempt())),
                    // Faults on every run.
                    2 => Err(Failure::Fault(ctx.attempt())),
                    3 => Err(Failure::Error(0)),
                    n => Ok(n),
                }
            },
        );
        for n in 1..=3 {
            host.try_submit(n).unwrap();
        }
        pool.run_until_stalled();
        let crash = |cause, task, decision| Event::Crashed {
            worker: 0,
            cause: Cause::Fault(cause),
            task: Some(task),
            decision,
        };
        assert_eq!(
            *events.borrow(),
            [
                crash(1, Disposition::Retried { attempt: 2 }, Decision::Replace),
                Event::Completed {
                    worker: 0,
                    task: 1,
                    output: 1
                },
                crash(1, Disposition::Retried { attempt: 2 }, Decision::Replace),
                crash(2, Disposition::Retried { attempt: 3 }, Decision::Replace),
                crash(
                    3,
                    Disposition::DeadLettered {
                        task: 2,
                        attempts: 3
                    },
                    Decision::Replace
                ),
                Event::Failed {
                    worker: 0,
                    task: 3,
                    error: 0
                },
            ]
        );
        let snap = host.snapshot();
        assert_eq!(
            (snap.crashes(), snap.restarts(), snap.dead_lettered),
            (4, 4, 1)
        );
        assert!(snap.adds_up());
    }

    #[test]
    fn a_requeued_task_wakes_an_idle_peer() {
        // Temporary workers are never replaced: a crashed worker's task goes back to the queue.
        let host = host::<4, 2>(policy(2).with_restart(Restart::Temporary), Hangs::Cancel);
        let mut pool = LocalPool::new();
        let events = Events::default();
        let gate = Gate::default();
        let worker_gate = gate.clone();
        let first = spawn_worker(
            &pool,
            host,
            0,
            &events,
            async move |n: &u32, _ctx: Context<'_>| {
                worker_gate.pass().await;
                Err(Failure::Fault(*n))
            },
        );
        pool.run_until_stalled();
        host.try_submit(7).unwrap();
        pool.run_until_stalled();
        // Worker 0 holds task 7 behind the gate; only now does worker 1 start, and idles.
        let second = spawn_worker(&pool, host, 1, &events, double);
        pool.run_until_stalled();
        assert_eq!(host.supervisor().worker_state(1), Some(WorkerState::Idle));
        gate.open();
        pool.run_until_stalled();
        assert_eq!(first.get(), Some(Exit::Retired));
        assert_eq!(
            events.borrow()[1],
            Event::Completed {
                worker: 1,
                task: 7,
                output: 14
            },
            "the idle peer was not woken for the requeued task"
        );
        assert_eq!(second.get(), None);
    }

    #[test]
    fn escalation_ends_every_worker_and_refuses_waiting_producers() {
        let intensity = Intensity::new(1, 60_000).unwrap();
        let host = host::<2, 2>(policy(5).with_intensity(intensity), Hangs::Cancel);
        let mut pool = LocalPool::new();
        let events = Events::default();
        let gate = Gate::default();
        let worker_gate = gate.clone();
        let faulty = spawn_worker(
            &pool,
            host,
            0,
            &events,
            async move |n: &u32, _ctx: Context<'_>| {
                worker_gate.pass().await;
                Err(Failure::Fault(*n))
            },
        );
        let stuck = Gate::default();
        let stuck_gate = stuck.clone();
        let slow = spawn_worker(
            &pool,
            host,
            1,
            &events,
            async move |n: &u32, _ctx: Context<'_>| {
                stuck_gate.pass().await;
                Ok(*n)
            },
        );
        let producer = spawn(&pool, async move {
            let mut refused = None;
            for n in 0..10 {
                if let Err(err) = host.submit(n).await {
                    refused = Some(err);
                    break;
                }
            }
            refused
        });
        pool.run_until_stalled();
        // Workers 0 and 1 hold tasks 0 and 1; 2 and 3 are queued; the producer waits with 4.
        assert!(producer.borrow().is_none());
        gate.open();
        pool.run_until_stalled();
        // Worker 0: task 0 faults (restart 1 of 1), its retry faults again: escalation.
        assert_eq!(faulty.get(), Some(Exit::Escalated));
        assert_eq!(*producer.borrow(), Some(Some(SubmitError::Closed(4))));
        let stopped = spawn(&pool, host.stopped());
        pool.run_until_stalled();
        assert!(stopped.borrow().is_none(), "worker 1 still runs task 1");
        stuck.open();
        pool.run_until_stalled();
        assert_eq!(slow.get(), Some(Exit::Left));
        assert_eq!(*stopped.borrow(), Some(Shutdown::Escalation));
        let mut back: Vec<u32> = host.hand_back().collect();
        back.sort();
        // Task 0's retry was handed back by the escalating crash; 2 and 3 were queued.
        assert_eq!(back, [2, 3]);
        let snap = host.snapshot();
        assert!(snap.adds_up());
        assert_eq!(snap.in_flight + snap.queued, 0);
        assert_eq!(snap.handed_back, 3);
    }

    #[test]
    fn a_second_loop_on_a_driven_slot_is_refused() {
        let host = host::<4, 1>(Policy::DEFAULT, Hangs::Cancel);
        let mut pool = LocalPool::new();
        let events = Events::default();
        spawn_worker(&pool, host, 0, &events, double);
        let second = spawn_worker(&pool, host, 0, &events, double);
        let missing = spawn_worker(&pool, host, 3, &events, double);
        pool.run_until_stalled();
        assert_eq!(
            second.get(),
            Some(Exit::Refused(WorkerError::WrongState {
                index: 0,
                state: WorkerState::Idle
            }))
        );
        assert_eq!(
            missing.get(),
            Some(Exit::Refused(WorkerError::NoSuchWorker {
                index: 3,
                workers: 1
            }))
        );
    }

    #[test]
    fn the_watchdog_cancels_a_hung_task_which_is_retried_then_dead_lettered() {
        let host = host::<4, 1>(watched(20, 2), Hangs::Cancel);
        let mut pool = LocalPool::new();
        let events = Events::default();
        let drops = Rc::new(Cell::new(0));
        let counted = drops.clone();
        let exit = spawn_worker(
            &pool,
            host,
            0,
            &events,
            async move |n: &u32, _ctx: Context<'_>| {
                if *n == 1 {
                    let _guard = DropCount(counted.clone());
                    core::future::pending::<()>().await; // a peripheral that never answers
                }
                Ok(*n)
            },
        );
        let watchdog = spawn(&pool, host.watchdog());
        host.try_submit(1).unwrap();
        host.try_submit(2).unwrap();
        let drained = spawn(&pool, host.drain());
        run_until(&mut pool, "the drain of a hung task", || {
            drained.borrow().is_some() && watchdog.borrow().is_some()
        });
        assert_eq!(drops.get(), 2, "each hung run's future was dropped");
        let crash = |task| Event::Crashed {
            worker: 0,
            cause: Cause::Hung,
            task: Some(task),
            decision: Decision::Replace,
        };
        assert_eq!(
            *events.borrow(),
            [
                crash(Disposition::Retried { attempt: 2 }),
                crash(Disposition::DeadLettered {
                    task: 1,
                    attempts: 2
                }),
                Event::Completed {
                    worker: 0,
                    task: 2,
                    output: 2
                },
            ]
        );
        assert_eq!(exit.get(), Some(Exit::Left));
        let snap = host.snapshot();
        assert!(snap.adds_up());
        assert_eq!(
            (snap.crashes(), snap.dead_lettered, snap.completed),
            (2, 1, 1)
        );
    }

    #[test]
    fn a_reported_hang_runs_on_and_a_heartbeat_keeps_a_long_task_unflagged() {
        // Margins for a loaded machine: a heartbeat every 25 ms against a 100 ms deadline,
        // and a silent task 3 deadlines long.
        let host = host::<4, 1>(watched(100, 2), Hangs::Report);
        let mut pool = LocalPool::new();
        let events = Events::default();
        spawn_worker(
            &pool,
            host,
            0,
            &events,
            async |n: &u32, ctx: Context<'_>| {
                for _ in 0..12 {
                    Timer::after_millis(25).await;
                    if *n == 2 {
                        ctx.heartbeat(); // 300 ms in all, a heartbeat every 25
                    }
                }
                Ok(*n)
            },
        );
        let watchdog = spawn(&pool, host.watchdog());
        host.try_submit(1).unwrap();
        host.try_submit(2).unwrap();
        let drained = spawn(&pool, host.drain());
        run_until(&mut pool, "the drain of a slow task", || {
            watchdog.borrow().is_some()
        });
        assert_eq!(*drained.borrow(), Some(Shutdown::Drain));
        let events = events.borrow();
        let Some((Event::Hung { worker: 0, run }, completions)) = events.split_first() else {
            panic!("task 1 hung first: {events:?}");
        };
        assert_eq!(run.worker(), 0);
        assert_eq!(
            completions,
            [
                Event::Completed {
                    worker: 0,
                    task: 1,
                    output: 1
                },
                Event::Completed {
                    worker: 0,
                    task: 2,
                    output: 2
                },
            ]
        );
    }

    #[test]
    fn a_drain_waits_for_a_cancelled_tasks_retry_on_a_peer() {
        // Worker 0's task hangs during the drain, worker 1 is idle: the drain must keep
        // worker 1 (the retry may land in the queue) and end only once the retry ran.
        let host = host::<4, 2>(
            watched(20, 2).with_restart(Restart::Temporary),
            Hangs::Cancel,
        );
        let mut pool = LocalPool::new();
        let events = Events::default();
        let first = spawn_worker(
            &pool,
            host,
            0,
            &events,
            async |n: &u32, _ctx: Context<'_>| {
                core::future::pending::<()>().await;
                Ok(*n)
            },
        );
        pool.run_until_stalled();
        host.try_submit(9).unwrap();
        pool.run_until_stalled();
        let second = spawn_worker(&pool, host, 1, &events, double);
        let watchdog = spawn(&pool, host.watchdog());
        let drained = spawn(&pool, host.drain());
        run_until(&mut pool, "a drain behind a hung task", || {
            drained.borrow().is_some() && watchdog.borrow().is_some()
        });
        assert_eq!(first.get(), Some(Exit::Retired));
        assert_eq!(second.get(), Some(Exit::Left));
        assert_eq!(
            *events.borrow(),
            [
                Event::Crashed {
                    worker: 0,
                    cause: Cause::Hung,
                    task: Some(Disposition::Requeued { attempt: 2 }),
                    decision: Decision::Retire,
                },
                Event::Completed {
                    worker: 1,
                    task: 9,
                    output: 18
                },
            ]
        );
        assert!(host.snapshot().adds_up());
    }

    #[cfg(feature = "cancellation")]
    #[test]
    fn a_cancelled_run_has_its_future_dropped_and_the_worker_goes_on_uncharged() {
        // No restart allowed: a cancellation charged as a crash would escalate.
        let policy = policy(3).with_intensity(Intensity::new(0, 1_000).unwrap());
        let host = host::<4, 1>(policy, Hangs::Cancel);
        let mut pool = LocalPool::new();
        let events = Events::default();
        let drops = Rc::new(Cell::new(0));
        let counted = drops.clone();
        let exit = spawn_worker(
            &pool,
            host,
            0,
            &events,
            async move |n: &u32, ctx: Context<'_>| {
                if *n == 1 {
                    let _guard = DropCount(counted.clone());
                    core::future::pending::<()>().await; // never answers
                }
                if *n == 2 {
                    // Cancelled, then faults: still cancelled, not charged.
                    host.sup.cancel(ctx.run()).unwrap();
                    return Err(Failure::Fault(2));
                }
                Ok(*n)
            },
        );
        host.try_submit(1).unwrap();
        pool.run_until_stalled();
        let run = host.supervisor().current_run(0).expect("task 1 runs");
        assert_eq!(host.cancel(run), Ok(()));
        pool.run_until_stalled(); // woken by the cancel: nothing else wakes it
        assert_eq!(drops.get(), 1, "the cancelled run's future was dropped");
        assert_eq!(
            host.cancel(run),
            Err(WorkerError::RunEnded { index: 0 }),
            "the run ended"
        );
        host.try_submit(2).unwrap();
        host.try_submit(3).unwrap();
        let drained = spawn(&pool, host.drain());
        pool.run_until_stalled();
        assert!(drained.borrow().is_some(), "hung: the drain");
        assert_eq!(
            *events.borrow(),
            [
                Event::Cancelled {
                    worker: Some(0),
                    task: 1
                },
                Event::Cancelled {
                    worker: Some(0),
                    task: 2
                },
                Event::Completed {
                    worker: 0,
                    task: 3,
                    output: 3
                },
            ]
        );
        assert_eq!(exit.get(), Some(Exit::Left));
        let snap = host.snapshot();
        assert!(snap.adds_up());
        // Task 2's fault crashed the worker: replaced, not escalated.
        assert_eq!(
            (
                snap.cancelled,
                snap.completed,
                snap.crashes(),
                snap.restarts()
            ),
            (2, 1, 1, 1)
        );
    }
}
