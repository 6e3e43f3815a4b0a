//! The thread host: a [`Pool`] of OS threads driving a [`Supervisor`].
//!
//! - Each worker slot gets a thread; idle threads park on a futex ([`ThreadPark`]) and a
//!   submission wakes one.
//! - Task code is the pool's *handler*, `Fn(&Context, &T) -> Result<R, E>`, shared by all
//!   workers: no allocation per task. (Closures work as tasks too: make `T` a
//!   `Box<dyn Fn(&Context) -> Result<R, E> + Send + Sync>` and the handler `|ctx, f| f(ctx)`.)
//! - Every outcome goes to the pool's *sink*, `Fn(Event)`, on the worker's thread: results,
//!   errors, crashes (with the crashed task's fate), hangs, and tasks handed back at shutdown.
//!   Nothing is dropped on the floor.
//! - A panic in the handler is caught (`catch_unwind`) and reported as a crash; when the
//!   supervisor asks for a replacement, a new thread takes the slot over (fresh stack, fresh
//!   thread-locals) and runs the crashed task again first (at-least-once).
//! - With a watchdog in the [`Policy`], a monitor thread ticks the clock (milliseconds since
//!   the pool started) and reports [`Event::Hung`]. Threads cannot be killed, so a hung task
//!   keeps its thread; its outcome is recorded if it ever finishes.
//!
//! ```
//! use foreman_rt::host::{threads::Pool, Event};
//! use foreman_rt::policy::Policy;
//! use std::sync::mpsc;
//!
//! let (events, results) = mpsc::channel();
//! let pool = Pool::<u64, _, String, 64, 2>::start(
//!     Policy::DEFAULT,
//!     |_ctx, n| if *n == 13 { Err(format!("{n} is unlucky")) } else { Ok(n * n) },
//!     move |event| events.send(event).unwrap(),
//! )?;
//! for n in 1..=20 {
//!     pool.submit(n).unwrap(); // parks while the queue is full
//! }
//! let report = pool.drain(); // waits for every worker to finish the queue
//! assert!(report.handed_back.is_empty());
//!
//! let (mut sum, mut errors) = (0, 0);
//! for event in results.try_iter() {
//!     match event {
//!         Event::Completed { output, .. } => sum += output,
//!         Event::Failed { .. } => errors += 1,
//!         other => panic!("unexpected {other:?}"),
//!     }
//! }
//! assert_eq!((sum, errors), ((1..=20).map(|n| n * n).sum::<u64>() - 169, 1));
//! assert_eq!(report.snapshot.completed + report.snapshot.failed, 20);
//! # Ok::<(), std::io::Error>(())
//! ```

use std::boxed::Box;
use std::fmt;
use std::format;
use std::io;
use std::mem::MaybeUninit;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use std::vec::Vec;

use super::{futex, panic_message as message, Event, Report};
use crate::park::{AtomicU32, Park};
use crate::policy::{Policy, Tick};
use crate::{Context, Decision, Snapshot, SubmitError, Supervisor};

/// Parks threads on a futex (Linux, FreeBSD, Windows `WaitOnAddress`, macOS `ulock`), through
/// the `atomic-wait` crate.
///
/// ```
/// use foreman_rt::host::threads::ThreadPark;
/// use foreman_rt::park::{AtomicU32, Park};
///
/// let word = AtomicU32::new(1);
/// ThreadPark.park(&word, 0); // the word is not 0: returns at once
/// ThreadPark.unpark_all(&word);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadPark;

impl Park for ThreadPark {
    fn park(&self, word: &AtomicU32, expected: u32) {
        atomic_wait::wait(futex(word), expected);
    }

    fn unpark_one(&self, word: &AtomicU32) {
        atomic_wait::wake_one(futex(word));
    }

    fn unpark_all(&self, word: &AtomicU32) {
        atomic_wait::wake_all(futex(word));
    }
}

type Handler<T, R, E> = dyn Fn(&Context<'_>, &T) -> Result<R, E> + Send + Sync;
type Sink<T, R, E> = dyn Fn(Event<T, R, E>) + Send + Sync;

/// What the pool's threads share.
struct Shared<T, R, E, const N: usize, const W: usize> {
    sup: Supervisor<T, N, W, ThreadPark>,
    handler: Box<Handler<T, R, E>>,
    sink: Box<Sink<T, R, E>>,
    /// Worker threads, replacements included, until joined (threads that ended are dropped
    /// when the next replacement registers).
    threads: Mutex<Vec<JoinHandle<()>>>,
    started: Instant,
}

/// A supervisor with `W` worker threads and a queue of `N` tasks. See the [module
/// docs](self).
///
/// Dropping the pool aborts it: running tasks finish, queued ones go to the sink as
/// [`Event::HandedBack`], and every thread is joined.
pub struct Pool<T: Send + 'static, R: 'static, E: 'static, const N: usize, const W: usize> {
    shared: Arc<Shared<T, R, E, N, W>>,
    monitor: Option<JoinHandle<()>>,
    finished: bool,
}

impl<T: Send + 'static, R: 'static, E: 'static, const N: usize, const W: usize>
    Pool<T, R, E, N, W>
{
    /// Starts `W` worker threads running `handler` on each task, and sends every [`Event`] to
    /// `sink`. With a watchdog in `policy`, also a monitor thread (ticks are milliseconds).
    ///
    /// Fails only if a thread cannot be spawned; nothing is left running then.
    ///
    /// The supervisor is built in place on the heap ([`Supervisor::init`]), never on the
    /// caller's stack, however large the queue and the task type.
    ///
    /// ```
    /// use foreman_rt::host::threads::Pool;
    /// use foreman_rt::policy::Policy;
    ///
    /// let pool = Pool::<u32, u32, (), 16, 2>::start(Policy::DEFAULT, |_, n| Ok(n + 1), |_| {})?;
    /// pool.submit(1).unwrap();
    /// assert_eq!(pool.drain().snapshot.completed, 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn start<H, S>(policy: Policy, handler: H, sink: S) -> io::Result<Self>
    where
        H: Fn(&Context<'_>, &T) -> Result<R, E> + Send + Sync + 'static,
        S: Fn(Event<T, R, E>) + Send + Sync + 'static,
    {
        let shared = Shared::new(policy, Box::new(handler), Box::new(sink));
        let mut pool = Pool {
            shared,
            monitor: None,
            finished: false,
        };
        // On an error below, dropping `pool` aborts it (sweeping the reservations of threads
        // that never started) and joins what did start: nothing is left running.
        for index in 0..W {
            // A fresh supervisor: every slot is vacant, so the reservation cannot fail.
            let _ = pool.shared.sup.reserve(index);
            Shared::spawn_worker(&pool.shared, index)?;
        }
        if let Some(deadline) = policy.watchdog() {
            let shared = Arc::clone(&pool.shared);
            let period = Duration::from_millis(u64::from(deadline / 4).max(1));
            pool.monitor = Some(
                thread::Builder::new()
                    .name("foreman-watchdog".into())
                    .spawn(move || shared.watch(period))?,
            );
        }
        Ok(pool)
    }

    /// Submits a task, parking while the queue is full. After a shutdown began, the task
    /// comes back in [`SubmitError::Closed`].
    ///
    /// ```
    /// # use foreman_rt::{host::threads::Pool, policy::Policy};
    /// let pool = Pool::<u32, (), (), 4, 1>::start(Policy::DEFAULT, |_, _| Ok(()), |_| {})?;
    /// for n in 0..100 {
    ///     pool.submit(n).unwrap(); // more tasks than the queue holds: back-pressure
    /// }
    /// assert_eq!(pool.drain().snapshot.completed, 100);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn submit(&self, task: T) -> Result<(), SubmitError<T>> {
        self.shared.sup.submit(task)
    }

    /// Submits a task without blocking; a refused task comes back in the error.
    ///
    /// ```
    /// # use foreman_rt::{host::threads::Pool, policy::Policy, SubmitError};
    /// let pool = Pool::<u32, (), (), 4, 1>::start(Policy::DEFAULT, |_, _| Ok(()), |_| {})?;
    /// match pool.try_submit(7) {
    ///     Ok(()) => {}
    ///     Err(SubmitError::Full(task)) => println!("busy, task {task} came back"),
    ///     Err(SubmitError::Closed(task)) => println!("shut down, task {task} came back"),
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_submit(&self, task: T) -> Result<(), SubmitError<T>> {
        self.shared.sup.try_submit(task)
    }

    /// The supervisor's counters and worker states.
    ///
    /// ```
    /// # use foreman_rt::{host::threads::Pool, policy::Policy};
    /// let pool = Pool::<u32, (), (), 4, 2>::start(Policy::DEFAULT, |_, _| Ok(()), |_| {})?;
    /// assert!(pool.snapshot().adds_up());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn snapshot(&self) -> Snapshot<W> {
        self.shared.sup.snapshot()
    }

    /// The supervisor itself, for everything the pool does not wrap.
    ///
    /// ```
    /// # use foreman_rt::{host::threads::Pool, policy::Policy};
    /// let pool = Pool::<u32, (), (), 4, 2>::start(Policy::DEFAULT, |_, _| Ok(()), |_| {})?;
    /// assert_eq!(pool.supervisor().workers(), 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn supervisor(&self) -> &Supervisor<T, N, W, ThreadPark> {
        &self.shared.sup
    }

    /// Graceful shutdown: stops accepting, lets the workers run everything queued, waits for
    /// every thread, and reports. Tasks that could not run (every worker retired) are in the
    /// report, not sent to the sink.
    ///
    /// ```
    /// # use foreman_rt::{host::threads::Pool, policy::Policy};
    /// let pool = Pool::<u32, (), (), 8, 2>::start(Policy::DEFAULT, |_, _| Ok(()), |_| {})?;
    /// (0..8).for_each(|n| pool.try_submit(n).unwrap());
    /// let report = pool.drain();
    /// assert_eq!((report.snapshot.completed, report.handed_back.len()), (8, 0));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn drain(mut self) -> Report<T, W> {
        self.shared.sup.drain();
        self.finish(false)
    }

    /// Immediate shutdown: stops accepting, lets running tasks finish, waits for every
    /// thread, and returns the queued tasks in the report.
    ///
    /// ```
    /// # use foreman_rt::{host::threads::Pool, policy::Policy};
    /// # use std::sync::{Arc, Barrier};
    /// let gate = Arc::new(Barrier::new(2));
    /// let worker_gate = gate.clone();
    /// let pool = Pool::<u32, (), (), 8, 1>::start(
    ///     Policy::DEFAULT,
    ///     move |_, _| { worker_gate.wait(); Ok(()) }, // task 0 waits for the test
    ///     |_| {},
    /// )?;
    /// (0..5).for_each(|n| pool.try_submit(n).unwrap());
    /// while pool.snapshot().in_flight == 0 {} // the worker holds task 0
    /// pool.supervisor().abort(); // from here on no task starts (returns at once)
    /// gate.wait(); // let task 0 finish
    /// let report = pool.abort(); // waits for the worker, takes the rest back
    /// assert_eq!(report.snapshot.completed, 1);
    /// assert_eq!(report.handed_back, [1, 2, 3, 4]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn abort(mut self) -> Report<T, W> {
        self.shared.sup.abort();
        self.finish(false)
    }

    /// Waits for the supervisor to stop and every thread to end, then takes back what is left.
    /// `to_sink`: send left-over tasks to the sink (on drop) instead of returning them.
    fn finish(&mut self, to_sink: bool) -> Report<T, W> {
        self.finished = true;
        let shared = &self.shared;
        shared.sup.wait_stopped();
        // Replacements may still be registering while the last workers leave: join until none
        // is left.
        loop {
            let threads = std::mem::take(
                &mut *shared
                    .threads
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner),
            );
            if threads.is_empty() {
                break;
            }
            for thread in threads {
                // A worker thread's panics are caught inside it; a join error cannot happen.
                let _ = thread.join();
            }
        }
        if let Some(monitor) = self.monitor.take() {
            let _ = monitor.join();
        }
        let mut handed_back = Vec::new();
        for task in shared.sup.hand_back() {
            if to_sink {
                shared.emit(Event::HandedBack { task });
            } else {
                handed_back.push(task);
            }
        }
        Report {
            snapshot: shared.sup.snapshot(),
            handed_back,
        }
    }
}

impl<T: Send + 'static, R: 'static, E: 'static, const N: usize, const W: usize> Drop
    for Pool<T, R, E, N, W>
{
    fn drop(&mut self) {
        if !self.finished {
            self.shared.sup.abort();
            self.finish(true);
        }
    }
}

impl<T: Send + 'static, R: 'static, E: 'static, const N: usize, const W: usize> fmt::Debug
    for Pool<T, R, E, N, W>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("supervisor", &self.shared.sup)
            .finish()
    }
}

impl<T: Send + 'static, R: 'static, E: 'static, const N: usize, const W: usize>
    Shared<T, R, E, N, W>
{
    /// The pool's shared state, built in place on the heap: the supervisor may be far larger
    /// than a thread's stack.
    fn new(policy: Policy, handler: Box<Handler<T, R, E>>, sink: Box<Sink<T, R, E>>) -> Arc<Self> {
        let mut shared = Arc::<Self>::new_uninit();
        let place = Arc::get_mut(&mut shared).expect("a new Arc has no other owner");
        let this = place.as_mut_ptr();
        // SAFETY: `this` points to the Arc's uninitialized, aligned and unshared value. Each
        // field is written once through a raw pointer, the supervisor in place through a
        // `MaybeUninit` view of its field (same layout), and no reference to uninitialized
        // memory is made.
        unsafe {
            Supervisor::init(
                &mut *(&raw mut (*this).sup).cast::<MaybeUninit<Supervisor<T, N, W, ThreadPark>>>(),
                policy,
                ThreadPark,
            );
            (&raw mut (*this).handler).write(handler);
            (&raw mut (*this).sink).write(sink);
            (&raw mut (*this).threads).write(Mutex::new(Vec::with_capacity(W)));
            (&raw mut (*this).started).write(Instant::now());
        }
        // SAFETY: every field was initialized above.
        unsafe { shared.assume_init() }
    }

    /// Milliseconds since the pool started, wrapping.
    fn now(&self) -> Tick {
        self.started.elapsed().as_millis() as Tick
    }

    /// Sends an event. A panicking sink must not take the worker's bookkeeping down with it:
    /// the panic is reported on stderr and the event is lost (the only way one can be).
    fn emit(&self, event: Event<T, R, E>) {
        if let Err(panic) = panic::catch_unwind(AssertUnwindSafe(|| (self.sink)(event))) {
            std::eprintln!(
                "foreman: the event sink panicked ({}); an event was lost",
                message(&*panic)
            );
        }
    }

    /// Spawns the thread for slot `index` (reserved, or Restarting) and registers it.
    fn spawn_worker(this: &Arc<Self>, index: usize) -> io::Result<()> {
        let shared = Arc::clone(this);
        let thread = thread::Builder::new()
            .name(format!("foreman-worker-{index}"))
            .spawn(move || shared.run_worker(index))?;
        let mut threads = this.threads.lock().unwrap_or_else(PoisonError::into_inner);
        // Threads that have ended (crashed workers) need no join: keep the list to the living,
        // however many replacements a long life brings.
        threads.retain(|thread| !thread.is_finished());
        threads.push(thread);
        Ok(())
    }

    /// One worker thread: attach, run tasks until told to leave or a crash ends it.
    fn run_worker(self: Arc<Self>, index: usize) {
        // Fails only if a shutdown swept the reservation away: nothing to do then.
        let Ok(mut worker) = self.sup.attach(index) else {
            return;
        };
        while let Some(job) = worker.next_blocking() {
            let ctx = job.context();
            match panic::catch_unwind(AssertUnwindSafe(|| (self.handler)(&ctx, job.task()))) {
                Ok(result) => {
                    // Err: condemned by someone using the supervisor directly; they own the task.
                    if let Ok(task) = job.finish(result.is_err()) {
                        self.emit(match result {
                            Ok(output) => Event::Completed {
                                worker: index,
                                task,
                                output,
                            },
                            Err(error) => Event::Failed {
                                worker: index,
                                task,
                                error,
                            },
                        });
                    }
                }
                Err(panic) => {
                    let report = job.crash(self.now());
                    let replace = report.decision == Decision::Replace;
                    self.emit(Event::Crashed {
                        worker: index,
                        cause: message(&*panic),
                        task: report.task,
                        decision: report.decision,
                    });
                    if replace {
                        self.replace(index);
                    }
                    return; // this thread ends; the replacement owns the slot
                }
            }
        }
    }

    /// Starts the replacement the supervisor asked for, or retires the slot if no thread can
    /// be spawned (handing its retry back through the sink).
    fn replace(self: &Arc<Self>, index: usize) {
        if let Err(err) = Self::spawn_worker(self, index) {
            std::eprintln!("foreman: cannot start a replacement for worker {index}: {err}");
            if let Ok(Some(task)) = self.sup.retire(index) {
                self.emit(Event::HandedBack { task });
            }
        }
    }

    /// The watchdog thread: ticks the clock and reports hangs until the supervisor stops.
    fn watch(&self, period: Duration) {
        while !self.sup.is_stopped() {
            thread::sleep(period);
            for worker in self.sup.tick(self.now()) {
                self.emit(Event::Hung { worker });
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::policy::{Delivery, Intensity, Restart};
    use crate::{Disposition, WorkerState};
    use std::string::ToString;
    use std::sync::mpsc;

    #[test]
    fn a_panicking_task_is_retried_by_a_replacement_thread() {
        let (sink, events) = mpsc::channel();
        let policy = Policy::DEFAULT.with_intensity(Intensity::unlimited());
        let pool = Pool::<u32, u32, (), 8, 1>::start(
            policy,
            |ctx, n| {
                if *n == 2 && ctx.attempt() == 1 {
                    panic!("task 2 fails its first run");
                }
                Ok(*n)
            },
            move |event| sink.send(event).unwrap(),
        )
        .unwrap();
        for n in 0..4 {
            pool.submit(n).unwrap();
        }
        let report = pool.drain();
        assert_eq!(report.snapshot.completed, 4);
        assert_eq!(report.snapshot.crashes, 1);
        assert!(report.snapshot.adds_up());
        let crashed: Vec<_> = events
            .try_iter()
            .filter_map(|e| match e {
                Event::Crashed {
                    cause,
                    task,
                    decision,
                    ..
                } => Some((cause, task, decision)),
                _ => None,
            })
            .collect();
        assert_eq!(
            crashed,
            [(
                "task 2 fails its first run".to_string(),
                Some(Disposition::Retried { attempt: 2 }),
                Decision::Replace
            )]
        );
    }

    #[test]
    fn at_most_once_reports_the_lost_task() {
        let (sink, events) = mpsc::channel();
        let policy = Policy::DEFAULT.with_delivery(Delivery::AtMostOnce);
        let pool = Pool::<u32, (), (), 8, 2>::start(
            policy,
            |_, n| {
                if *n == 1 {
                    panic!("boom");
                }
                Ok(())
            },
            move |event| sink.send(event).unwrap(),
        )
        .unwrap();
        pool.submit(1).unwrap();
        pool.submit(2).unwrap();
        let report = pool.drain();
        assert_eq!((report.snapshot.completed, report.snapshot.lost), (1, 1));
        assert!(events.try_iter().any(|e| matches!(
            e,
            Event::Crashed {
                task: Some(Disposition::Lost(1)),
                ..
            }
        )));
    }

    #[test]
    fn exceeding_the_intensity_escalates_and_hands_tasks_back() {
        let (sink, events) = mpsc::channel();
        let policy = Policy::DEFAULT
            .with_intensity(Intensity::new(1, 60_000).unwrap())
            .with_delivery(Delivery::at_least_once(10).unwrap());
        let pool = Pool::<u32, (), (), 16, 1>::start(
            policy,
            |_, _| panic!("always"),
            move |event| sink.send(event).unwrap(),
        )
        .unwrap();
        for n in 0..5 {
            pool.try_submit(n).unwrap();
        }
        // First crash: replaced (1 restart allowed); second: escalation.
        while !pool.supervisor().is_stopped() {
            thread::yield_now();
        }
        let report = pool.abort();
        let snap = report.snapshot;
        assert!(matches!(
            snap.state,
            crate::SupervisorState::Stopped(crate::Shutdown::Escalation)
        ));
        assert_eq!(snap.crashes, 2);
        assert_eq!(snap.handed_back, 5);
        assert!(snap.adds_up());
        // The task that crashed twice came back in the crash report, the rest in the report.
        assert_eq!(report.handed_back, [1, 2, 3, 4]);
        assert!(events.try_iter().any(|e| matches!(
            e,
            Event::Crashed {
                task: Some(Disposition::HandedBack(0)),
                decision: Decision::Escalate,
                ..
            }
        )));
    }

    #[test]
    fn dropping_the_pool_hands_queued_tasks_to_the_sink() {
        let (sink, events) = mpsc::channel();
        let gate = Arc::new(std::sync::Barrier::new(2));
        let worker_gate = Arc::clone(&gate);
        let pool = Pool::<u32, (), (), 8, 1>::start(
            Policy::DEFAULT,
            move |_, _| {
                worker_gate.wait();
                Ok(())
            },
            move |event| sink.send(event).unwrap(),
        )
        .unwrap();
        for n in 0..4 {
            pool.try_submit(n).unwrap();
        }
        while pool.snapshot().in_flight == 0 {
            thread::yield_now();
        }
        pool.supervisor().abort();
        gate.wait();
        drop(pool);
        let back: Vec<u32> = events
            .try_iter()
            .filter_map(|e| match e {
                Event::HandedBack { task } => Some(task),
                _ => None,
            })
            .collect();
        assert_eq!(back, [1, 2, 3]);
    }

    #[test]
    fn the_watchdog_reports_a_hung_task_once() {
        let (sink, events) = mpsc::channel();
        let policy = Policy::DEFAULT.with_watchdog(20).unwrap();
        let release = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let task_release = Arc::clone(&release);
        let pool = Pool::<u32, (), (), 4, 1>::start(
            policy,
            move |_, _| {
                while !task_release.load(std::sync::atomic::Ordering::Relaxed) {
                    thread::sleep(Duration::from_millis(1));
                }
                Ok(())
            },
            move |event| sink.send(event).unwrap(),
        )
        .unwrap();
        pool.submit(0).unwrap();
        while pool.supervisor().worker_state(0) != Some(WorkerState::Hung) {
            thread::sleep(Duration::from_millis(1));
        }
        thread::sleep(Duration::from_millis(60)); // several more ticks: still one report
        release.store(true, std::sync::atomic::Ordering::Relaxed);
        let report = pool.drain();
        assert_eq!(report.snapshot.completed, 1);
        let hung = events
            .try_iter()
            .filter(|e| matches!(e, Event::Hung { worker: 0 }))
            .count();
        assert_eq!(hung, 1);
    }

    #[test]
    fn temporary_workers_are_not_replaced_and_their_retry_is_requeued() {
        let (sink, _events) = mpsc::channel();
        let policy = Policy::DEFAULT.with_restart(Restart::Temporary);
        let pool = Pool::<u32, (), (), 8, 2>::start(
            policy,
            |ctx, n| {
                if *n == 0 && ctx.attempt() == 1 {
                    panic!("first run of task 0");
                }
                Ok(())
            },
            move |event| sink.send(event).unwrap(),
        )
        .unwrap();
        pool.submit(0).unwrap();
        let report = pool.drain();
        let snap = report.snapshot;
        assert_eq!(
            (snap.completed, snap.requeued, snap.crashes, snap.restarts),
            (1, 1, 1, 0)
        );
        assert!(snap.workers.iter().any(|w| w.state == WorkerState::Retired));
    }
}
