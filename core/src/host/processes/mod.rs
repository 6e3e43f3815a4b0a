//! The process host: a [`Pool`] whose workers are child processes, so a task that segfaults,
//! aborts, overflows its stack or runs out of memory takes down its worker and nothing else.
//! Linux (memfd, pidfd, shared futexes, `PR_SET_PDEATHSIG`).
//!
//! # Using it
//!
//! Tasks, outputs and errors cross between processes as bytes, so they are plain data:
//! [`Portable`] (`Copy`, no pointers). The task code is a [`Handler`], a `static` with a name;
//! a pool starts its workers by running the program's own binary again, and **the first line
//! of `main` turns such a process into a worker**:
//!
//! ```
//! use foreman_rt::host::processes::{Handler, Pool};
//! use foreman_rt::host::Event;
//! use foreman_rt::policy::Policy;
//! use std::sync::mpsc;
//!
//! static SQUARE: Handler<u64, u64, u8> =
//!     Handler::new("doc-square", |_ctx, n| if *n == 13 { Err(13) } else { Ok(n * n) });
//!
//! fn main() -> std::io::Result<()> {
//!     SQUARE.serve_if_worker(); // the one line: a worker process never gets past it
//!
//!     let (events, outcomes) = mpsc::channel();
//!     let pool = Pool::<u64, u64, u8, 64, 2>::start(Policy::DEFAULT, &SQUARE, move |event| {
//!         events.send(event).unwrap()
//!     })?;
//!     for n in 1..=20 {
//!         pool.submit(n).unwrap(); // parks while the queue is full
//!     }
//!     let report = pool.drain(); // runs everything queued; every worker process is reaped
//!     assert!(report.handed_back.is_empty());
//!
//!     let (mut sum, mut errors) = (0, 0);
//!     for event in outcomes.try_iter() {
//!         match event {
//!             Event::Completed { output, .. } => sum += output,
//!             Event::Failed { error: 13, .. } => errors += 1,
//!             other => panic!("unexpected {other:?}"),
//!         }
//!     }
//!     assert_eq!((sum, errors), ((1..=20).map(|n| n * n).sum::<u64>() - 169, 1));
//!     Ok(())
//! }
//! ```
//!
//! The API is the thread host's ([`threads::Pool`](crate::host::threads::Pool)): `start(policy,
//! handler, sink)`, `submit`/`try_submit`, `drain`/`abort` returning a [`Report`], `snapshot`,
//! and outcomes as the same [`Event`]s. What differs: the handler is a [`Handler`] (plain
//! `fn`, no captures: it runs in another process), the types are [`Portable`], a crash is the
//! death of a process (a panic ends its process too), and the watchdog *kills* a hung worker
//! ([`condemn`](Pool::condemn) kills one too, with or without a watchdog).
//!
//! # The sink, and the pool's own threads
//!
//! The sink runs on the pool's *keeper* threads (one per worker slot, see below), and on the
//! owner's thread for the tasks a dropped pool hands back; never on the *watcher*, the thread
//! that notices deaths, so a sink that blocks cannot stop death detection. The thread host's
//! rules hold for the keepers, since a keeper waiting for the pool would wait for itself:
//!
//! - [`submit`](Pool::submit) in the sink does not park on a full queue: it hands the task
//!   back in [`SubmitError::Full`] at once, as [`try_submit`](Pool::try_submit) does.
//! - Dropping the pool in the sink (or calling [`drain`](Pool::drain) or
//!   [`abort`](Pool::abort) there) starts the shutdown and returns without waiting; the last
//!   keeper out hands what is left to the sink as [`Event::HandedBack`], and every worker
//!   process is still ended and reaped.
//! - A sink that panics is caught (even a panic whose payload panics again when dropped),
//!   and reported on stderr; the event it was given goes with the panic.
//!
//! **The pool owns its supervisor.** It does not lend it out (calls like `reopen`, `attach`
//! or `recover` behind its back would leave slots without keepers); it offers
//! [`state`](Pool::state), [`worker_state`](Pool::worker_state), [`snapshot`](Pool::snapshot),
//! [`condemn`](Pool::condemn), [`begin_drain`](Pool::begin_drain) and
//! [`begin_abort`](Pool::begin_abort) instead:
//!
//! ```compile_fail
//! # use foreman_rt::host::processes::{Handler, Pool};
//! # use foreman_rt::policy::Policy;
//! static NOTHING: Handler<u32, (), ()> = Handler::new("doc-owned", |_, _| Ok(()));
//! fn main() {
//!     NOTHING.serve_if_worker();
//!     let pool = Pool::<u32, (), (), 4, 1>::start(Policy::DEFAULT, &NOTHING, |_| {}).unwrap();
//!     pool.supervisor().reopen(); // no such method: the pool owns its lifecycle
//! }
//! ```
//!
//! # How it is built
//!
//! ```text
//!  parent process                                   │ shared memory (one memfd)      │ worker process i
//!  submit ─▶ Supervisor: queue, slots, policy ──────┼─ (read-only for workers)       │
//!  keeper thread i: try_next ─▶ Job ─▶ give ────────┼─▶ mailbox i: order, task ──────┼─▶ serve: run handler
//!                   complete/fail/crash ◀─ answer ◀─┼── mailbox i: answer, outcome ◀─┼── reply
//!  watcher thread: poll(pidfds) ─▶ dead ─▶ ring     │                                │
//!                  tick ─▶ Hung ─▶ ring             │                                │
//! ```
//!
//! - **The supervisor lives in the shared mapping** (an anonymous memfd; see the `shared`
//!   module), next to one *mailbox* per worker. Workers map it read-only except their own
//!   mailbox: a wild write in task code faults in the worker instead of corrupting the
//!   parent's bookkeeping. This guards against accidents, not against hostile task code (a
//!   worker could `mprotect` the pages back: the descriptor was read-write when mapped).
//!   Its own mailbox stays writable to it, and the parent reads the worker's answer from
//!   there as a value of the output type: a wild write that lands in it can spoil that
//!   answer, and bytes that are no valid `R` or `E` (a `bool` of 2, a surrogate `char`, an
//!   enum tag out of range) would be undefined behaviour in the parent. The parent trusts its
//!   workers that far (see [`Portable`]'s safety contract).
//! - **The parent drives the state machine; workers only run tasks.** For each slot, a
//!   *keeper* thread in the parent holds the core's [`Worker`] handle: it takes
//!   a task (`try_next`), copies it into the worker's mailbox, and waits for the answer; then
//!   it records the outcome (`complete`/`fail`) and sends the [`Event`] to the sink. The worker
//!   process waits for orders on a futex in its mailbox (shared, not private: [`ProcessPark`]),
//!   runs the [`Handler`], writes the outcome, and rings its keeper.
//! - **Proof of death is the kernel's.** Each worker is a fresh `exec` of this binary; a
//!   *watcher* thread polls the workers' pidfds, and a readable pidfd — the process is gone —
//!   is the only thing that makes a keeper treat its worker as dead. The keeper reaps it,
//!   records the crash (`Job::crash`, or `declare_dead` + `recover` for an idle worker), and
//!   starts a new process when the restart policy and intensity say so. The crashed task is
//!   retried (by the replacement, first) or dead-lettered per the delivery policy, with its
//!   attempts counted.
//! - **The watchdog kills.** The watcher ticks the supervisor's clock (milliseconds); a worker
//!   flagged hung is condemned and `SIGKILL`ed by its keeper, and recovered like any other
//!   death. Task code keeps a long task alive with [`Context::heartbeat`].
//!
//! # Why a worker dying at any instant cannot hang the parent or lose a task
//!
//! A worker process can be killed between any two instructions (`SIGKILL`, the OOM killer).
//! Had workers driven the core themselves, some of those instants would be fatal to the pool:
//! a pop from the lock-free queue claims the head and *then* stamps the slot, so a worker
//! killed in between blocks every producer at that slot and strands its task; a worker killed
//! while registered as a sleeper on one of the core's wake signals (or holding the restart
//! log's lock, or between counting itself out and leaving) leaves state that no one else can
//! repair. So here **no worker process ever writes to the supervisor**; it cannot even (the
//! pages are read-only for it). Everything the core does — queue pops, slot transitions,
//! counters, wake-ups, the restart log — is done by the parent's threads, which die only with
//! the whole parent. What a worker writes is its own mailbox, under this protocol:
//!
//! 1. The keeper writes the task, then publishes the order (a Release store); the worker
//!    writes the outcome, then publishes the answer (a Release store). Each cell has one
//!    writer at a time, so no interleaving with a death can tear a value the other side uses:
//!    a dead worker left either a whole, published answer or none.
//! 2. The keeper waits on its mailbox's *bell* for "answered or dead", and the death half
//!    does not depend on the worker: the watcher rings the bell when the kernel says the
//!    process is gone. So the wait always ends.
//! 3. A published answer is recorded once (`complete`/`fail`, one CAS on the slot); no answer
//!    means the job is crashed, once, and the core's delivery policy decides (retry in the
//!    replacement, or dead-letter after the last attempt). The task itself never left the
//!    parent: the core keeps it in the slot until one of the two happens. Exactly one
//!    outcome per task, whatever the instant of death.
//! 4. Idle deaths (a worker killed while it waits for orders) hold no task: the keeper
//!    declares the slot dead and recovers it, which starts a replacement per the policy.
//!
//! The tests in `tests/tests/processes.rs` kill workers at random instants under load and
//! check every task ended exactly once.
//!
//! # Nothing left behind
//!
//! Dropping the pool (or `drain`, `abort`) ends every worker and reaps it; a worker's process
//! group is killed with it (processes its tasks started). If the parent dies instead — Ctrl-C
//! (which reaches only the parent: each worker has its own process group), a panic that
//! aborts, `SIGKILL` — each worker receives `SIGKILL` (`PR_SET_PDEATHSIG`, set before `exec`),
//! and the memfd, which has no name, vanishes with the last process that maps it. A pool
//! dropped while its thread panics kills its workers at once instead of waiting for their
//! tasks: those tasks are recovered as crashed ones are, per the delivery policy (retried
//! tasks come back to the sink as handed back; under at-most-once a task that had started is
//! reported lost, and one on its last attempt is dead-lettered).
//!
//! # Limits
//!
//! A new worker process has 10 s to start serving; a slot whose replacement fails to start 3
//! times in a row (100 ms, then 200 ms apart) is retired (its retry, if it held one, goes to the sink as handed back). A
//! worker told to exit (drain, abort) has 5 s before it is killed.
//!
//! Each worker has its own process group, so it is a background process for a terminal: with
//! `stty tostop` set, a worker that writes to the terminal is stopped (not killed) and its
//! task waits — for the watchdog, if there is one.
//!
//! Requirements: Linux 5.3 or later (pidfds), `/proc` mounted (workers are started from
//! `/proc/self/exe`), `SIGCHLD` not ignored (the parent reaps its workers itself).

mod child;
mod futex;
mod portable;
mod shared;
mod worker;

use core::mem::size_of;
use core::sync::atomic::{fence, AtomicBool, Ordering};
use std::boxed::Box;
use std::fmt;
use std::format;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::panic::{self, AssertUnwindSafe};
use std::string::String;
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use std::vec::Vec;

use rustix::event::{EventfdFlags, PollFd, PollFlags};

use super::{Event, Report};
use crate::policy::{Policy, Tick};
use crate::{
    CrashReport, Decision, Job, Next, Run, Snapshot, SubmitError, Supervisor, SupervisorState,
    Worker, WorkerError, WorkerState,
};
use child::{describe, Process, Spawned};
use shared::{Front, Layout, Mailbox, Region};
use worker::WORKER_VAR;

pub use futex::ProcessPark;
pub use portable::Portable;
pub use worker::{Context, Handler};

/// How long a new worker process may take to start serving before it counts as failed.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a worker told to exit may take before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(5);
/// Replacement processes for one slot that may fail to start in a row before the slot is
/// given up (retired).
const START_ATTEMPTS: u32 = 3;
/// The pause before the second start of a replacement process; it doubles before each later
/// one.
const START_BACKOFF: Duration = Duration::from_millis(100);

type Sink<T, R, E> = dyn Fn(Event<T, R, E, String>) + Send + Sync;

/// Moves a new descriptor of the pool's above the standard streams. The kernel gives the
/// lowest free number, which is 0, 1 or 2 in a program that closed its stdin, stdout or
/// stderr: its next `eprintln!` would write into the pool's memory (or fail on its eventfd),
/// and worker processes would take the number for their own stdio.
fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // The duplicate is close-on-exec, like every descriptor the pool makes.
    Ok(rustix::io::fcntl_dupfd_cloexec(&fd, 3)?)
}

/// The parent's side of one worker slot.
struct Keeper {
    /// Set by the keeper thread while it waits for work; a submitter that clears it rings the
    /// keeper's bell.
    idle: AtomicBool,
    /// The worker process serving the slot, while one does.
    process: Mutex<Option<Arc<Process>>>,
}

/// Everything the pool's threads share.
struct Host<T: 'static, R: 'static, E: 'static, const N: usize, const W: usize> {
    region: Region,
    layout: Layout,
    /// The mapping's file, handed to each worker process.
    memfd: OwnedFd,
    handler: &'static Handler<T, R, E>,
    sink: Box<Sink<T, R, E>>,
    keepers: [Keeper; W],
    /// Worker processes whose death the watcher has not seen yet.
    watched: Mutex<Vec<Arc<Process>>>,
    /// An eventfd that wakes the watcher when `watched` changes or the pool closes.
    watcher_bell: OwnedFd,
    /// Set once every keeper has ended: the watcher leaves.
    closing: AtomicBool,
    /// Set when the pool was shut down on one of its own threads, which cannot wait for the
    /// others: the last keeper out then ends the watcher and hands what is left to the sink
    /// (`after_leaving`).
    orphaned: AtomicBool,
    started: Instant,
    /// With a watchdog: how often the clock ticks (a quarter of the deadline).
    tick_period: Option<Duration>,
}

/// A supervisor with `W` worker processes and a queue of `N` tasks. See the [module
/// docs](self).
///
/// Dropping the pool aborts it: running tasks finish, queued ones go to the sink as
/// [`Event::HandedBack`], and every worker process is ended and reaped. (If the dropping
/// thread is panicking, the workers are killed at once instead, and their tasks recovered as
/// from a crash: see the [module docs](self). Dropped in the sink, it does not wait: see
/// the module docs too.)
pub struct Pool<T: Portable, R: Portable, E: Portable, const N: usize, const W: usize> {
    host: Arc<Host<T, R, E, N, W>>,
    keepers: Vec<JoinHandle<()>>,
    watcher: Option<JoinHandle<()>>,
    finished: bool,
}

impl<T: Portable, R: Portable, E: Portable, const N: usize, const W: usize> Pool<T, R, E, N, W> {
    /// Starts `W` worker processes serving `handler`, and sends every [`Event`] to `sink`
    /// (on the parent's threads). With a watchdog in `policy`, hung workers are killed (ticks
    /// are milliseconds).
    ///
    /// Returns once every worker process serves. Fails — leaving nothing running — if one
    /// cannot be started or does not serve: a common cause is a `main` that does not call
    /// [`handler.serve_if_worker()`](Handler::serve_if_worker) first. Also fails in a process
    /// that was started as a worker but not claimed by that call (instead of starting workers
    /// of its own, and so on).
    ///
    /// ```
    /// use foreman_rt::host::processes::{Handler, Pool};
    /// use foreman_rt::policy::Policy;
    ///
    /// static INC: Handler<u32, u32, ()> = Handler::new("doc-start", |_, n| Ok(n + 1));
    ///
    /// fn main() -> std::io::Result<()> {
    ///     INC.serve_if_worker();
    ///     let pool = Pool::<u32, u32, (), 16, 2>::start(Policy::DEFAULT, &INC, |_| {})?;
    ///     pool.submit(1).unwrap();
    ///     assert_eq!(pool.drain().snapshot.completed, 1);
    ///     Ok(())
    /// }
    /// ```
    pub fn start<S>(policy: Policy, handler: &'static Handler<T, R, E>, sink: S) -> io::Result<Self>
    where
        S: Fn(Event<T, R, E, String>) + Send + Sync + 'static,
    {
        if let Some(value) = std::env::var_os(WORKER_VAR) {
            return Err(io::Error::other(format!(
                "this process was started as a worker of a pool ({WORKER_VAR}={value:?}), but \
                 no `serve_if_worker` call claimed it: call `HANDLER.serve_if_worker()` for \
                 each handler first thing in `main`"
            )));
        }
        let layout = Layout::new(
            size_of::<Front<T, N, W>>(),
            size_of::<Mailbox<T, R, E>>(),
            W,
        );
        let (memfd, region) = Region::create(layout)?;
        // SAFETY: the region was just created for this layout, and nothing refers to it yet.
        unsafe {
            region.init_front::<T, R, E, N, W>(handler.name(), layout, policy);
        }
        let host = Arc::new(Host {
            region,
            layout,
            memfd,
            handler,
            sink: Box::new(sink),
            keepers: core::array::from_fn(|_| Keeper {
                idle: AtomicBool::new(false),
                process: Mutex::new(None),
            }),
            watched: Mutex::new(Vec::with_capacity(W)),
            watcher_bell: above_stdio(rustix::event::eventfd(
                0,
                EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK,
            )?)?,
            closing: AtomicBool::new(false),
            orphaned: AtomicBool::new(false),
            started: Instant::now(),
            tick_period: policy
                .watchdog()
                .map(|deadline| Duration::from_millis(u64::from(deadline / 4).max(1))),
        });
        // On an error below, dropping `pool` aborts it and ends what did start.
        let mut pool = Pool {
            host,
            keepers: Vec::with_capacity(W),
            watcher: None,
            finished: false,
        };
        let host = Arc::clone(&pool.host);
        pool.watcher = Some(
            thread::Builder::new()
                .name("foreman-watcher".into())
                .spawn(move || {
                    let _own = super::OwnThread::enter(host.id());
                    host.watch();
                })?,
        );
        let (started, starts) = mpsc::channel();
        for index in 0..W {
            // A fresh supervisor: every slot is vacant, so the reservation cannot fail.
            let _ = pool.host.sup().reserve(index);
            let host = Arc::clone(&pool.host);
            let started = started.clone();
            let keeper = thread::Builder::new()
                .name(format!("foreman-keeper-{index}"))
                .stack_size(Host::<T, R, E, N, W>::stack_size())
                .spawn(move || {
                    let _own = super::OwnThread::enter(host.id());
                    host.keep(index, Some(started));
                    host.after_leaving();
                });
            match keeper {
                Ok(keeper) => pool.keepers.push(keeper),
                Err(err) => {
                    let _ = pool.host.sup().release(index);
                    return Err(err);
                }
            }
        }
        drop(started);
        let mut failure = None;
        // Ends early only if a keeper thread died without saying: the pool goes on without it.
        for start in starts.iter().take(W) {
            if let Err(err) = start {
                failure.get_or_insert(err);
            }
        }
        match failure {
            Some(err) => Err(err),
            None => Ok(pool),
        }
    }

    /// Submits a task, parking while the queue is full. After a shutdown began, the task
    /// comes back in [`SubmitError::Closed`].
    ///
    /// In the sink (which runs on the pool's own threads) it never parks: a full queue hands
    /// the task back in [`SubmitError::Full`] at once, since the thread waiting for room
    /// would be one of those that make it (see the [module docs](self)).
    ///
    /// ```
    /// # use foreman_rt::host::processes::{Handler, Pool};
    /// # use foreman_rt::policy::Policy;
    /// static NOTHING: Handler<u32, (), ()> = Handler::new("doc-submit", |_, _| Ok(()));
    /// fn main() -> std::io::Result<()> {
    ///     NOTHING.serve_if_worker();
    ///     let pool = Pool::<u32, (), (), 4, 1>::start(Policy::DEFAULT, &NOTHING, |_| {})?;
    ///     for n in 0..100 {
    ///         pool.submit(n).unwrap(); // more tasks than the queue holds: back-pressure
    ///     }
    ///     assert_eq!(pool.drain().snapshot.completed, 100);
    ///     Ok(())
    /// }
    /// ```
    pub fn submit(&self, task: T) -> Result<(), SubmitError<T>> {
        if self.host.on_own_thread() {
            return self.try_submit(task);
        }
        self.host.sup().submit(task)?;
        self.host.ring_one_idle();
        Ok(())
    }

    /// Submits a task without blocking; a refused task comes back in the error.
    ///
    /// ```
    /// # use foreman_rt::host::processes::{Handler, Pool};
    /// # use foreman_rt::{policy::Policy, SubmitError};
    /// static NOTHING: Handler<u32, (), ()> = Handler::new("doc-try-submit", |_, _| Ok(()));
    /// fn main() -> std::io::Result<()> {
    ///     NOTHING.serve_if_worker();
    ///     let pool = Pool::<u32, (), (), 4, 1>::start(Policy::DEFAULT, &NOTHING, |_| {})?;
    ///     match pool.try_submit(7) {
    ///         Ok(()) => {}
    ///         Err(SubmitError::Full(task)) => println!("busy, task {task} came back"),
    ///         Err(SubmitError::Closed(task)) => println!("shut down, task {task} came back"),
    ///     }
    ///     Ok(())
    /// }
    /// ```
    pub fn try_submit(&self, task: T) -> Result<(), SubmitError<T>> {
        self.host.sup().try_submit(task)?;
        self.host.ring_one_idle();
        Ok(())
    }

    /// The supervisor's counters and worker states.
    ///
    /// ```
    /// # use foreman_rt::host::processes::{Handler, Pool};
    /// # use foreman_rt::policy::Policy;
    /// static NOTHING: Handler<u32, (), ()> = Handler::new("doc-snapshot", |_, _| Ok(()));
    /// fn main() -> std::io::Result<()> {
    ///     NOTHING.serve_if_worker();
    ///     let pool = Pool::<u32, (), (), 4, 2>::start(Policy::DEFAULT, &NOTHING, |_| {})?;
    ///     assert!(pool.snapshot().adds_up());
    ///     Ok(())
    /// }
    /// ```
    pub fn snapshot(&self) -> Snapshot<W> {
        self.host.sup().snapshot()
    }

    /// Where the pool is in its lifecycle.
    ///
    /// ```
    /// # use foreman_rt::host::processes::{Handler, Pool};
    /// # use foreman_rt::{policy::Policy, SupervisorState};
    /// static NOTHING: Handler<u32, (), ()> = Handler::new("doc-state", |_, _| Ok(()));
    /// fn main() -> std::io::Result<()> {
    ///     NOTHING.serve_if_worker();
    ///     let pool = Pool::<u32, (), (), 4, 2>::start(Policy::DEFAULT, &NOTHING, |_| {})?;
    ///     assert_eq!(pool.state(), SupervisorState::Running);
    ///     Ok(())
    /// }
    /// ```
    pub fn state(&self) -> SupervisorState {
        self.host.sup().state()
    }

    /// What worker `index` is doing, or `None` if there is no such worker.
    ///
    /// ```
    /// # use foreman_rt::host::processes::{Handler, Pool};
    /// # use foreman_rt::{policy::Policy, WorkerState};
    /// static NOTHING: Handler<u32, (), ()> = Handler::new("doc-worker-state", |_, _| Ok(()));
    /// fn main() -> std::io::Result<()> {
    ///     NOTHING.serve_if_worker();
    ///     let pool = Pool::<u32, (), (), 4, 2>::start(Policy::DEFAULT, &NOTHING, |_| {})?;
    ///     assert_eq!(pool.worker_state(1), Some(WorkerState::Idle));
    ///     assert_eq!(pool.worker_state(2), None);
    ///     Ok(())
    /// }
    /// ```
    pub fn worker_state(&self, index: usize) -> Option<WorkerState> {
        self.host.sup().worker_state(index)
    }

    /// Gives up on `run` — a task's run on a worker (a hung one, typically), named by the
    /// [`Event::Hung`] that reported it or by [`current_run`](Self::current_run): its process
    /// is killed at once (`SIGKILL`), with or without a watchdog; the task is recovered as
    /// from a crash — retried, dead-lettered or reported lost per the delivery policy, in an
    /// [`Event::Crashed`] — and a new process takes the slot per the restart policy. An answer
    /// the task gives meanwhile is discarded.
    ///
    /// Fails with a [`WorkerError`] if that run has ended (its task finished first, say — even
    /// if the worker started another task since, which is left alone) or the worker does not
    /// exist; nothing changes then.
    ///
    /// ```
    /// # use foreman_rt::host::processes::{Handler, Pool};
    /// # use foreman_rt::{policy::Policy, WorkerState};
    /// static NAP: Handler<u32, (), ()> = Handler::new("doc-condemn", |ctx, _| {
    ///     if ctx.attempt() == 1 {
    ///         std::thread::sleep(std::time::Duration::from_secs(5)); // too long
    ///     }
    ///     Ok(())
    /// });
    /// fn main() -> std::io::Result<()> {
    ///     NAP.serve_if_worker();
    ///     let pool = Pool::<u32, (), (), 4, 1>::start(Policy::DEFAULT, &NAP, |_| {})?;
    ///     pool.submit(7).unwrap();
    ///     let run = loop {
    ///         if let Some(run) = pool.current_run(0) {
    ///             break run;
    ///         }
    ///         std::thread::yield_now();
    ///     };
    ///     std::thread::sleep(std::time::Duration::from_millis(50)); // it starts the task
    ///     pool.condemn(run).unwrap(); // no watchdog: the process is killed all the same
    ///     let report = pool.drain(); // the retry ran in a new process
    ///     assert_eq!((report.snapshot.completed, report.snapshot.crashes()), (1, 1));
    ///     Ok(())
    /// }
    /// ```
    pub fn condemn(&self, run: Run) -> Result<(), WorkerError> {
        self.host.sup().condemn(run)?;
        // The keeper may be parked with no timeout (no watchdog): ring it to do the killing.
        futex::bump(self.host.mailbox(run.worker()).bell());
        Ok(())
    }

    /// The run worker `index` is on, or `None` if it runs no task: see
    /// [`Supervisor::current_run`].
    ///
    /// ```
    /// # use foreman_rt::host::processes::{Handler, Pool};
    /// # use foreman_rt::policy::Policy;
    /// static NOTHING: Handler<u32, (), ()> = Handler::new("doc-current-run", |_, _| Ok(()));
    /// fn main() -> std::io::Result<()> {
    ///     NOTHING.serve_if_worker();
    ///     let pool = Pool::<u32, (), (), 4, 1>::start(Policy::DEFAULT, &NOTHING, |_| {})?;
    ///     assert_eq!(pool.current_run(0), None); // idle
    ///     Ok(())
    /// }
    /// ```
    pub fn current_run(&self, index: usize) -> Option<Run> {
        self.host.sup().current_run(index)
    }

    /// Starts a graceful shutdown and returns at once: no more submissions; the workers run
    /// everything queued. [`drain`](Self::drain), [`abort`](Self::abort) or dropping the pool
    /// then waits for it. Idempotent; a no-op after an abort.
    ///
    /// ```
    /// # use foreman_rt::host::processes::{Handler, Pool};
    /// # use foreman_rt::{policy::Policy, SubmitError};
    /// static NOTHING: Handler<u32, (), ()> = Handler::new("doc-begin-drain", |_, _| Ok(()));
    /// fn main() -> std::io::Result<()> {
    ///     NOTHING.serve_if_worker();
    ///     let pool = Pool::<u32, (), (), 4, 1>::start(Policy::DEFAULT, &NOTHING, |_| {})?;
    ///     pool.submit(1).unwrap();
    ///     pool.begin_drain();
    ///     assert_eq!(pool.submit(2), Err(SubmitError::Closed(2)));
    ///     assert_eq!(pool.drain().snapshot.completed, 1);
    ///     Ok(())
    /// }
    /// ```
    pub fn begin_drain(&self) -> SupervisorState {
        let state = self.host.sup().drain();
        // Keepers waiting for work learn of it now, not at the next submission.
        self.host.ring_all_idle();
        state
    }

    /// Starts an immediate shutdown and returns at once: no more submissions, and no task
    /// starts from now on; running ones finish. [`abort`](Self::abort) (or `drain`, or
    /// dropping the pool) then waits for them and takes the queued tasks back. Idempotent.
    ///
    /// ```
    /// # use foreman_rt::host::processes::{Handler, Pool};
    /// # use foreman_rt::{policy::Policy, SupervisorState};
    /// static NOTHING: Handler<u32, (), ()> = Handler::new("doc-begin-abort", |_, _| Ok(()));
    /// fn main() -> std::io::Result<()> {
    ///     NOTHING.serve_if_worker();
    ///     let pool = Pool::<u32, (), (), 4, 1>::start(Policy::DEFAULT, &NOTHING, |_| {})?;
    ///     pool.begin_abort();
    ///     assert_ne!(pool.state(), SupervisorState::Running);
    ///     assert_eq!(pool.abort().snapshot.completed, 0);
    ///     Ok(())
    /// }
    /// ```
    pub fn begin_abort(&self) -> SupervisorState {
        let state = self.host.sup().abort();
        self.host.ring_all_idle();
        state
    }

    /// The process id of each worker process that is serving now (`None` for a slot between
    /// processes, or retired). For monitoring; a pid is stale as soon as the process ends.
    ///
    /// ```
    /// # use foreman_rt::host::processes::{Handler, Pool};
    /// # use foreman_rt::policy::Policy;
    /// static NOTHING: Handler<u32, (), ()> = Handler::new("doc-pids", |_, _| Ok(()));
    /// fn main() -> std::io::Result<()> {
    ///     NOTHING.serve_if_worker();
    ///     let pool = Pool::<u32, (), (), 4, 2>::start(Policy::DEFAULT, &NOTHING, |_| {})?;
    ///     let [Some(first), Some(second)] = pool.pids() else { panic!("both serve") };
    ///     assert_ne!(first, second);
    ///     assert_ne!(first, std::process::id());
    ///     Ok(())
    /// }
    /// ```
    pub fn pids(&self) -> [Option<u32>; W] {
        core::array::from_fn(|index| {
            self.host.keepers[index]
                .process
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
                .map(|process| process.pid())
        })
    }

    /// Graceful shutdown: stops accepting, lets the workers run everything queued, ends and
    /// reaps every worker process, and reports. Tasks that could not run (every worker
    /// retired) are in the report, not sent to the sink.
    ///
    /// Called in the sink, it cannot wait (see the [module docs](self)): it starts the drain
    /// and returns the snapshot of that moment; what is left at the end goes to the sink.
    ///
    /// ```
    /// # use foreman_rt::host::processes::{Handler, Pool};
    /// # use foreman_rt::policy::Policy;
    /// static NOTHING: Handler<u32, (), ()> = Handler::new("doc-drain", |_, _| Ok(()));
    /// fn main() -> std::io::Result<()> {
    ///     NOTHING.serve_if_worker();
    ///     let pool = Pool::<u32, (), (), 8, 2>::start(Policy::DEFAULT, &NOTHING, |_| {})?;
    ///     (0..8).for_each(|n| pool.try_submit(n).unwrap());
    ///     let report = pool.drain();
    ///     assert_eq!((report.snapshot.completed, report.handed_back.len()), (8, 0));
    ///     Ok(())
    /// }
    /// ```
    pub fn drain(mut self) -> Report<T, W> {
        self.host.sup().drain();
        self.finish(false)
    }

    /// Immediate shutdown: stops accepting, lets running tasks finish, ends and reaps every
    /// worker process, and returns the queued tasks in the report.
    ///
    /// Called in the sink, it cannot wait (see the [module docs](self)): it starts the abort
    /// and returns the snapshot of that moment; the queued tasks go to the sink once the last
    /// keeper is out.
    ///
    /// ```
    /// # use foreman_rt::host::processes::{Handler, Pool};
    /// # use foreman_rt::policy::Policy;
    /// static NAP: Handler<u32, (), ()> = Handler::new("doc-abort", |_, _| {
    ///     std::thread::sleep(std::time::Duration::from_millis(50));
    ///     Ok(())
    /// });
    /// fn main() -> std::io::Result<()> {
    ///     NAP.serve_if_worker();
    ///     let pool = Pool::<u32, (), (), 8, 1>::start(Policy::DEFAULT, &NAP, |_| {})?;
    ///     (0..5).for_each(|n| pool.try_submit(n).unwrap());
    ///     let report = pool.abort(); // the running task finishes; the rest come back
    ///     assert_eq!(report.snapshot.completed + report.handed_back.len(), 5);
    ///     assert!(report.handed_back.len() >= 3);
    ///     Ok(())
    /// }
    /// ```
    pub fn abort(mut self) -> Report<T, W> {
        self.host.sup().abort();
        self.finish(false)
    }

    /// Waits for the supervisor to stop and every keeper to end, then takes back what is
    /// left. `to_sink`: send left-over tasks to the sink (on drop) instead of returning them.
    /// On one of the pool's own threads (in the sink), leaves that to the last keeper out
    /// instead: the left-over tasks go to the sink then.
    fn finish(&mut self, to_sink: bool) -> Report<T, W> {
        self.finished = true;
        let host = &self.host;
        if host.on_own_thread() {
            // The keepers and the watcher end on their own; their handles are let go.
            self.keepers.clear();
            self.watcher = None;
            host.orphan();
            return Report {
                snapshot: host.sup().snapshot(),
                handed_back: Vec::new(),
            };
        }
        host.ring_all_idle();
        host.sup().wait_stopped();
        for keeper in self.keepers.drain(..) {
            // A keeper's panics (a bug) end only its thread; its slot was counted out on the way.
            let _ = keeper.join();
        }
        // Release: the watcher's Acquire sees it after its next wake-up.
        host.closing.store(true, Ordering::Release);
        host.wake_watcher();
        if let Some(watcher) = self.watcher.take() {
            let _ = watcher.join();
        }
        let mut handed_back = Vec::new();
        for task in host.sup().hand_back() {
            if to_sink {
                host.emit(Event::HandedBack { task });
            } else {
                handed_back.push(task);
            }
        }
        Report {
            snapshot: host.sup().snapshot(),
            handed_back,
        }
    }
}

impl<T: Portable, R: Portable, E: Portable, const N: usize, const W: usize> Drop
    for Pool<T, R, E, N, W>
{
    fn drop(&mut self) {
        if !self.finished {
            self.host.sup().abort();
            if thread::panicking() {
                self.host.kill_all();
            }
            self.finish(true);
        }
    }
}

impl<T: Portable, R: Portable, E: Portable, const N: usize, const W: usize> fmt::Debug
    for Pool<T, R, E, N, W>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("handler", &self.host.handler.name())
            .field("supervisor", self.host.sup())
            .field("pids", &self.pids())
            .finish()
    }
}

/// How a worker process's service ended.
enum Served<T> {
    /// A shutdown let it go; it exited and was reaped, and the slot is counted out.
    Exit,
    /// It ran its quota of tasks: it was let go (exited and reaped), and the slot awaits a
    /// fresh process.
    Recycled,
    /// It died (or was killed); the crash is recorded.
    Crashed {
        report: CrashReport<T>,
        cause: String,
    },
}

/// What waiting for a worker's answer ended with.
enum Awaited<R, E> {
    Answer(Result<R, E>),
    /// The process is gone; `killed`: why the keeper killed it, if it did.
    Died {
        killed: Option<Killed>,
    },
}

/// Why a keeper killed its worker process.
#[derive(Clone, Copy)]
enum Killed {
    /// The watchdog flagged it hung.
    Hung,
    /// Someone condemned it ([`Pool::condemn`]).
    Condemned,
}

impl<T: Portable, R: Portable, E: Portable, const N: usize, const W: usize> Host<T, R, E, N, W> {
    fn sup(&self) -> &Supervisor<T, N, W, ProcessPark> {
        // SAFETY: `start` created the region for a `Front<T, N, W>` and initialized it before
        // building the host.
        unsafe { &self.region.front::<T, N, W>().sup }
    }

    fn mailbox(&self, index: usize) -> &Mailbox<T, R, E> {
        assert!(index < W);
        // SAFETY: the region holds W mailboxes for these types at `layout` (see `start`).
        unsafe { self.region.mailbox(self.layout, index) }
    }

    /// Milliseconds since the pool started, wrapping.
    fn now(&self) -> Tick {
        self.started.elapsed().as_millis() as Tick
    }

    /// Feeds the supervisor's clock (`now`) and rings the keepers of the workers its
    /// watchdog flags hung: each reports its worker's hang and kills it (`await_answer`). The
    /// watcher ticks every quarter deadline; crash recovery ticks first, since restarts are
    /// timed by this clock. Runs no user code: the watcher must never block.
    fn tick(&self) {
        for run in self.sup().tick(self.now()) {
            futex::bump(self.mailbox(run.worker()).bell());
        }
    }

    /// Sends an event (on a keeper thread, or the owner's). A panicking sink must not take
    /// the pool's bookkeeping down with it: the panic is caught (even one whose payload panics
    /// again when dropped) and reported on stderr, and the event goes with it.
    fn emit(&self, event: Event<T, R, E, String>) {
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| (self.sink)(event))) {
            std::eprintln!(
                "foreman: the event sink panicked ({}); the event it was given went with the \
                 panic",
                super::panic_message(&*payload)
            );
            super::discard(payload);
        }
    }

    /// This pool's identity for `OwnThread`.
    fn id(&self) -> *const () {
        (self as *const Self).cast()
    }

    /// Whether the current thread is one of this pool's (a keeper or the watcher).
    fn on_own_thread(&self) -> bool {
        super::OwnThread::is(self.id())
    }

    /// The shutdown was asked for on one of the pool's own threads, which cannot wait for the
    /// others: leave the end to the last keeper out (`after_leaving`), or do it now if every
    /// worker has left already.
    fn orphan(&self) {
        // Relaxed, with the fence in `after_leaving` (Dekker against the last keeper out's
        // SeqCst leave and fence): either it sees the flag, or we see it stopped.
        self.orphaned.store(true, Ordering::Relaxed);
        self.ring_all_idle();
        self.after_leaving();
    }

    /// Run by every keeper thread on its way out (and by `orphan`): if the pool was shut down
    /// on one of its own threads and every worker has left, let the watcher go and hand what
    /// is left to the sink. Several threads may do it: each task is handed back once.
    fn after_leaving(&self) {
        // SeqCst fence: see `orphan`.
        fence(Ordering::SeqCst);
        // Relaxed: ordered by the fence.
        if self.orphaned.load(Ordering::Relaxed) && self.sup().is_stopped() {
            // Release: the watcher's Acquire sees it after its next wake-up.
            self.closing.store(true, Ordering::Release);
            self.wake_watcher();
            for task in self.sup().hand_back() {
                self.emit(Event::HandedBack { task });
            }
        }
    }

    /// The stack of a keeper thread: the task, its outcome and the events that carry them
    /// move by value on it.
    fn stack_size() -> usize {
        super::stack_size(
            size_of::<T>() + size_of::<Result<R, E>>() + size_of::<Event<T, R, E, String>>(),
        )
    }

    /// Wakes one keeper waiting for work, if any: after a submission.
    fn ring_one_idle(&self) {
        for (index, keeper) in self.keepers.iter().enumerate() {
            // SeqCst: after the submission's SeqCst push, against the keeper's SeqCst
            // registration before its last look at the queue (Dekker): either it sees the
            // task or we see it idle.
            if keeper.idle.load(Ordering::SeqCst) && keeper.idle.swap(false, Ordering::SeqCst) {
                futex::bump(self.mailbox(index).bell());
                return;
            }
        }
    }

    /// Wakes every keeper waiting for work: after a shutdown, a crash, or an outcome during a
    /// drain (a drain keeps idle keepers until no task can come back to the queue).
    fn ring_all_idle(&self) {
        for (index, keeper) in self.keepers.iter().enumerate() {
            // SeqCst: as in `ring_one_idle`.
            if keeper.idle.swap(false, Ordering::SeqCst) {
                futex::bump(self.mailbox(index).bell());
            }
        }
    }

    /// Kills every worker process now (a pool dropped while panicking).
    fn kill_all(&self) {
        for keeper in &self.keepers {
            if let Some(process) = &*keeper
                .process
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
            {
                process.kill();
            }
        }
    }

    // ----- the keeper threads ---------------------------------------------------------------

    /// The keeper of slot `index`: starts a worker process, attaches it, serves tasks through
    /// it, and replaces it when the supervisor says so. `started` hears how the first start
    /// went (during [`Pool::start`]).
    fn keep(&self, index: usize, mut started: Option<mpsc::Sender<io::Result<()>>>) {
        let sup = self.sup();
        let mut failed_starts = 0;
        loop {
            let spawned = match self.start_process(index) {
                Ok(spawned) => spawned,
                Err(err) => {
                    if let Some(started) = started.take() {
                        let _ = started.send(Err(err));
                        self.give_up(index);
                        return;
                    }
                    failed_starts += 1;
                    std::eprintln!(
                        "foreman: cannot start worker process {index} (attempt {failed_starts} \
                         of {START_ATTEMPTS}): {err}"
                    );
                    if failed_starts < START_ATTEMPTS && !sup.stops_workers() {
                        // A cause that passes (out of processes or memory for a moment) gets
                        // time to: 100 ms, then 200 ms.
                        thread::sleep(START_BACKOFF * (1 << (failed_starts - 1)));
                        continue;
                    }
                    self.give_up(index);
                    return;
                }
            };
            failed_starts = 0;
            let worker = match self.attach(index) {
                Ok(worker) => worker,
                Err(_) => {
                    // A shutdown swept the slot away meanwhile: no worker is wanted.
                    self.let_go(index, spawned, 0);
                    if let Some(started) = started.take() {
                        let _ = started.send(Ok(()));
                    }
                    return;
                }
            };
            *self.keepers[index]
                .process
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&spawned.process));
            if let Some(started) = started.take() {
                let _ = started.send(Ok(()));
            }
            let served = self.serve(worker, spawned);
            *self.keepers[index]
                .process
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = None;
            match served {
                Served::Exit => return,
                Served::Recycled => {
                    // Its quota of tasks run: a fresh process takes the slot over.
                    self.emit(Event::Recycled { worker: index });
                }
                Served::Crashed { report, cause } => {
                    let decision = report.decision;
                    self.emit(Event::Crashed {
                        worker: index,
                        cause,
                        task: report.task,
                        decision,
                    });
                    // A requeued retry, an escalation or a drain's end concern the others.
                    self.ring_all_idle();
                    if decision != Decision::Replace {
                        return;
                    }
                    // Restart backoff: no new process before the delay has passed.
                    self.sleep_out(Duration::from_millis(u64::from(report.delay)));
                }
            }
        }
    }

    /// Attaches the new process's slot `index`, first sleeping out what is left of a restart
    /// backoff (the clock is in whole milliseconds: up to one more).
    fn attach(&self, index: usize) -> Result<Worker<'_, T, N, W, ProcessPark>, WorkerError> {
        loop {
            match self.sup().attach(index) {
                Err(WorkerError::BackingOff { ready_at, .. }) => {
                    let wait = ready_at.wrapping_sub(self.now());
                    if wait <= crate::policy::MAX_DURATION {
                        self.sleep_out(Duration::from_millis(u64::from(wait)));
                    }
                    // The supervisor's clock decides: bring it up to date.
                    self.tick();
                }
                other => return other,
            }
        }
    }

    /// Sleeps for `delay`, in slices, returning early once workers must leave (an abort or
    /// escalation): a keeper backing off holds no process, and nothing rings it.
    fn sleep_out(&self, delay: Duration) {
        const SLICE: Duration = Duration::from_millis(20);
        let until = Instant::now() + delay;
        while !self.sup().stops_workers() {
            match until.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => thread::sleep(left.min(SLICE)),
                _ => return,
            }
        }
    }

    /// Starts a worker process for slot `index` and waits until it serves.
    fn start_process(&self, index: usize) -> io::Result<Spawned> {
        let mailbox = self.mailbox(index);
        // The slot's previous process, if any, is dead and reaped.
        mailbox.reset();
        let spawned = Spawned::start(&self.memfd, index, self.handler.name())?;
        self.watch_process(Arc::clone(&spawned.process));
        let deadline = Instant::now() + START_TIMEOUT;
        let not_serving = |what: String| {
            io::Error::other(format!(
                "worker process {index} {what}; does `main` call `{}.serve_if_worker()` first?",
                self.handler.name()
            ))
        };
        loop {
            // SeqCst: loaded before the checks; a ring after it ends the wait below at once.
            let bell = futex::value(mailbox.bell());
            if mailbox.ready().is_some() {
                return Ok(spawned);
            }
            if spawned.process.is_dead() {
                let status = spawned.reap();
                let ended = format!("{} before it served", describe(status));
                return Err(match status.and_then(|status| status.code()) {
                    // It got to `serve_if_worker` and says why it cannot serve.
                    Some(worker::SETUP_FAILED) => {
                        io::Error::other(format!("worker process {index} {ended}"))
                    }
                    _ => not_serving(ended),
                });
            }
            let now = Instant::now();
            if now >= deadline {
                spawned.process.kill();
                self.await_death(index, &spawned.process, None);
                let _ = spawned.reap();
                return Err(not_serving(format!(
                    "did not serve within {} s",
                    START_TIMEOUT.as_secs()
                )));
            }
            futex::park(mailbox.bell(), bell, Some(deadline - now));
        }
    }

    /// Gives slot `index` up after its process could not be started: its retry, if it held
    /// one, goes to the sink.
    fn give_up(&self, index: usize) {
        let sup = self.sup();
        match sup.retire(index) {
            Ok(Some(task)) => self.emit(Event::HandedBack { task }),
            Ok(None) => {}
            // Not Restarting: the reservation of the first start, unless a shutdown swept it.
            Err(_) => {
                let _ = sup.release(index);
            }
        }
        self.ring_all_idle();
    }

    /// Ends a worker process that no slot needs: asks it to exit, kills it if it does not
    /// within [`EXIT_GRACE`], and reaps it.
    fn let_go(&self, index: usize, spawned: Spawned, last_order: u32) {
        self.mailbox(index).order_exit(last_order);
        if !self.await_death(index, &spawned.process, Some(EXIT_GRACE)) {
            spawned.process.kill();
            self.await_death(index, &spawned.process, None);
        }
        let _ = spawned.reap();
    }

    /// Waits (at most `timeout`) until the watcher says the process of slot `index` is gone.
    fn await_death(&self, index: usize, process: &Process, timeout: Option<Duration>) -> bool {
        let bell = self.mailbox(index).bell();
        let deadline = timeout.map(|timeout| Instant::now() + timeout);
        loop {
            // SeqCst: see `start_process`.
            let seen = futex::value(bell);
            if process.is_dead() {
                return true;
            }
            let left = match deadline {
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return false,
                },
                None => None,
            };
            futex::park(bell, seen, left);
        }
    }

    /// Serves tasks through the worker process `spawned`, attached as `worker`, until a
    /// shutdown lets it go or it dies. Returns once the process is reaped.
    fn serve(&self, mut worker: Worker<'_, T, N, W, ProcessPark>, spawned: Spawned) -> Served<T> {
        let sup = self.sup();
        let index = worker.index();
        let mailbox = self.mailbox(index);
        let keeper = &self.keepers[index];
        let process = Arc::clone(&spawned.process);
        let mut last_order = 0;
        let mut slept = false;
        loop {
            // SeqCst: loaded before looking at the queue and the process: a ring after it
            // (work, a shutdown, a death) ends the wait below at once.
            let bell = futex::value(mailbox.bell());
            let idle = match worker.try_next() {
                Next::Run(job) => {
                    keeper.idle.store(false, Ordering::Relaxed);
                    if slept && sup.queued() > 0 {
                        // Submitters ring one idle keeper each: pass the rest on.
                        self.ring_one_idle();
                    }
                    slept = false;
                    // SAFETY: this keeper is the slot's, and no order is outstanding: the
                    // worker answered the last one (or there was none; a dead worker's slot
                    // gets a new process and a reset mailbox first).
                    last_order =
                        unsafe { mailbox.give(last_order, job.task(), job.context().attempt()) };
                    match self.await_answer(index, &job, last_order, &process) {
                        Awaited::Answer(outcome) => match job.finish(outcome.is_err()) {
                            Ok(task) => self.emit(match outcome {
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
                            }),
                            Err(_condemned) => {
                                // Condemned (`Pool::condemn`) after the answer came:
                                // the condemner meant the process to die.
                                process.kill();
                                self.await_death(index, &process, None);
                                let _ = spawned.reap();
                                self.tick();
                                let report = sup
                                    .recover(index)
                                    .expect("a condemned job leaves its slot crashed");
                                return Served::Crashed {
                                    report,
                                    cause: "condemned while its task ran; killed (SIGKILL)".into(),
                                };
                            }
                        },
                        Awaited::Died { killed } => {
                            let status = spawned.reap();
                            // A worker that died before it took the order never began the
                            // task: the run is not charged.
                            let started = mailbox.took(last_order);
                            let cause = match killed {
                                Some(Killed::Hung) => format!(
                                    "hung past the watchdog's deadline of {} ms; killed by the \
                                     watchdog (SIGKILL)",
                                    sup.policy().watchdog().unwrap_or_default()
                                ),
                                Some(Killed::Condemned) => {
                                    "condemned while its task ran; killed (SIGKILL)".into()
                                }
                                None => self.cause_of_death(mailbox, status),
                            };
                            // Restarts are timed by the supervisor's clock: bring it up to date.
                            self.tick();
                            let report = if started {
                                job.crash()
                            } else {
                                job.crash_unstarted()
                            };
                            return Served::Crashed { report, cause };
                        }
                    }
                    if sup.state() == SupervisorState::Draining {
                        self.ring_all_idle();
                    }
                    continue;
                }
                Next::Idle => true,
                Next::Exit => false,
            };
            if !idle {
                keeper.idle.store(false, Ordering::Relaxed);
                self.let_go(index, spawned, last_order);
                if worker.is_recycled() {
                    return Served::Recycled;
                }
                // Exiting → Exited, counted out: the last one stops the supervisor, after its
                // process was reaped.
                drop(worker);
                return Served::Exit;
            }
            if process.is_dead() {
                // Killed while waiting for work: no task was lost, but the worker crashed.
                keeper.idle.store(false, Ordering::Relaxed);
                core::mem::forget(worker);
                let status = spawned.reap();
                // SAFETY: this thread held the slot's Worker and just forgot it, and holds no
                // Job: nothing will use or drop them again. (The dead process never wrote to
                // the supervisor: it maps it read-only.)
                unsafe { sup.declare_dead(index) }.expect("an idle slot can be declared dead");
                self.tick();
                let report = sup.recover(index).expect("a slot declared dead is crashed");
                return Served::Crashed {
                    report,
                    cause: self.cause_of_death(mailbox, status),
                };
            }
            // SeqCst: the registration precedes our next look at the queue (see
            // `ring_one_idle`); look again once registered before sleeping.
            if !keeper.idle.swap(true, Ordering::SeqCst) {
                continue;
            }
            futex::park(mailbox.bell(), bell, None);
            slept = true;
        }
    }

    /// Waits until the worker answers order `number` or its process is gone. Meanwhile, with a
    /// watchdog, passes the task's heartbeats on to the supervisor and kills the process if
    /// the watchdog flags it hung.
    fn await_answer(
        &self,
        index: usize,
        job: &Job<'_, T, N, W, ProcessPark>,
        number: u32,
        process: &Process,
    ) -> Awaited<R, E> {
        let sup = self.sup();
        let mailbox = self.mailbox(index);
        let mut heartbeats = mailbox.heartbeats();
        let mut killed = None;
        loop {
            // SeqCst: see `serve`.
            let bell = futex::value(mailbox.bell());
            if killed.is_none() {
                // SAFETY: the slot's keeper, for the order it gave last; the parent trusts
                // its worker's answer bytes (`Portable`'s contract).
                if let Some(outcome) = unsafe { mailbox.answer(number) } {
                    return Awaited::Answer(outcome);
                }
            }
            if process.is_dead() {
                // It may have answered between the look above and its death: an answer it
                // published is its outcome, whatever happened to it after.
                if killed.is_none() {
                    // SAFETY: as above.
                    if let Some(outcome) = unsafe { mailbox.answer(number) } {
                        return Awaited::Answer(outcome);
                    }
                }
                return Awaited::Died { killed };
            }
            if killed.is_none() {
                if self.tick_period.is_some() {
                    let now = mailbox.heartbeats();
                    if now != heartbeats {
                        heartbeats = now;
                        job.context().heartbeat();
                    }
                }
                // Only this keeper starts and ends tasks on this slot, so the task flagged
                // hung is the one it is waiting for. Terminating: someone condemned it
                // through `Pool::condemn`, which means the same.
                killed = match sup.worker_state(index) {
                    Some(WorkerState::Hung) if sup.condemn(job.context().run()).is_ok() => {
                        Some(Killed::Hung)
                    }
                    Some(WorkerState::Terminating) => Some(Killed::Condemned),
                    _ => None,
                };
                if let Some(why) = killed {
                    // Its answer, if it comes now, cannot be recorded: wait for its death.
                    process.kill();
                    if let Killed::Hung = why {
                        // Reported here, on the hung worker's own keeper, never on the
                        // watcher: a sink that blocks must not stop death detection.
                        self.emit(Event::Hung {
                            worker: index,
                            run: job.context().run(),
                        });
                    }
                    continue;
                }
            }
            futex::park(mailbox.bell(), bell, self.tick_period);
        }
    }

    /// The cause of a worker process's death: its panic's message if it panicked, else how
    /// it ended.
    fn cause_of_death(
        &self,
        mailbox: &Mailbox<T, R, E>,
        status: Option<std::process::ExitStatus>,
    ) -> String {
        let ended = describe(status);
        // SAFETY: asked only about a worker process that is dead (and reaped).
        match unsafe { mailbox.cause() } {
            Some(panic) => format!("{panic} ({ended})"),
            None => ended,
        }
    }

    // ----- the watcher thread ---------------------------------------------------------------

    /// Registers a new worker process with the watcher.
    fn watch_process(&self, process: Arc<Process>) {
        self.watched
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(process);
        self.wake_watcher();
    }

    fn wake_watcher(&self) {
        // Cannot fail short of a full counter (2^64 - 1 wake-ups); a no-op then.
        let _ = rustix::io::write(&self.watcher_bell, &1u64.to_ne_bytes());
    }

    /// The watcher: marks worker processes dead when their pidfds say so and rings their
    /// keepers; with a watchdog, ticks the clock and rings the keepers of hung workers. Runs
    /// until the pool closes.
    fn watch(&self) {
        let mut next_tick = self.tick_period.map(|period| Instant::now() + period);
        // Acquire: pairs with `finish`.
        while !self.closing.load(Ordering::Acquire) {
            let watched: Vec<Arc<Process>> = self
                .watched
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            let mut fds: Vec<PollFd<'_>> = watched
                .iter()
                .map(|process| PollFd::new(process.pidfd(), PollFlags::IN))
                .chain([PollFd::new(&self.watcher_bell, PollFlags::IN)])
                .collect();
            let timeout = next_tick.map(|at| {
                let left = at.saturating_duration_since(Instant::now());
                rustix::event::Timespec {
                    tv_sec: left.as_secs() as i64,
                    tv_nsec: left.subsec_nanos().into(),
                }
            });
            if let Err(err) = rustix::event::poll(&mut fds, timeout.as_ref()) {
                if err != rustix::io::Errno::INTR {
                    // Out of memory for the poll set, say: try again shortly.
                    std::eprintln!("foreman: the watcher cannot poll: {err}");
                    thread::sleep(Duration::from_millis(10));
                }
                continue;
            }
            let (pidfds, bell) = fds.split_at(watched.len());
            for (process, fd) in watched.iter().zip(pidfds) {
                if !fd.revents().is_empty() {
                    process.mark_dead();
                    self.watched
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .retain(|other| !Arc::ptr_eq(other, process));
                    futex::bump(self.mailbox(process.slot()).bell());
                }
            }
            if !bell[0].revents().is_empty() {
                let _ = rustix::io::read(&self.watcher_bell, &mut [0u8; 8]);
            }
            if let (Some(period), Some(at)) = (self.tick_period, next_tick) {
                let now = Instant::now();
                if now >= at {
                    next_tick = Some(now + period);
                    self.tick();
                }
            }
        }
    }
}
