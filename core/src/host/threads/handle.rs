//! Result handles: [`TaskHandle`], one task's outcome for whoever submitted it with
//! [`Pool::submit_with_handle`](super::Pool::submit_with_handle), and [`Handling`], the
//! pool's type parameter that says whether its tasks may have one.
//!
//! What the pool's queue holds for each task depends on that parameter (the sealed
//! [`EntryKind`]): in a pool of [`NoHandles`] (the default), the task itself, so tasks cost
//! nothing for handles they cannot have; in a pool of [`Handles`], an [`Entry`]: the task and,
//! for a task submitted with a handle, the [`Resolver`] its final event goes to. The resolver
//! and the handle share one allocation (made by `submit_with_handle`, the only place a
//! resolver is made).
//!
//! The final event is the task's last: [`Event::Completed`], [`Event::Failed`], an
//! [`Event::Crashed`] whose task is dead-lettered, lost or handed back, [`Event::Cancelled`]
//! ([`TaskHandle::cancel`]), or [`Event::HandedBack`] at a shutdown. A crash whose task is retried is not final: it goes
//! to the sink, and the handle waits for the retry's outcome. A handle dropped before its
//! outcome arrived leaves it to the sink (or to a `drain`'s or `abort`'s report), as if the
//! task had been submitted without one.

use core::future::Future;
use core::pin::Pin;
use core::ptr::NonNull;
use core::task::{Context, Poll, Waker};
use std::fmt;
use std::string::String;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::Event;
use crate::host::OwnThread;
#[cfg(feature = "deadlines")]
use crate::policy::Tick;
#[cfg(feature = "cancellation")]
use crate::{Cancel, Ticket, WorkerError};
use crate::{Disposition, Run, SubmitError};
#[cfg(feature = "cancellation")]
use std::sync::Weak;

/// Whether the tasks of a [`Pool`](super::Pool) may be submitted with a [`TaskHandle`]: the
/// pool's last type parameter, [`NoHandles`] (the default) or [`Handles`]. Chosen when the
/// pool is built, so that a pool that never gives out handles pays nothing for them: its
/// queue holds plain tasks. Sealed: these two are the only kinds.
///
/// ```
/// use foreman_rt::host::threads::{Handles, Pool};
/// use foreman_rt::policy::Policy;
///
/// // The sink gets every outcome; `submit_with_handle` does not exist here.
/// let plain = Pool::<u32, u32, (), 8, 1>::start(Policy::DEFAULT, |_, n| Ok(*n), |_| {})?;
/// plain.submit(1).unwrap();
/// // Tasks may be submitted with a handle, or without one (their outcome goes to the sink).
/// let pool = Pool::<u32, u32, (), 8, 1, Handles>::start(Policy::DEFAULT, |_, n| Ok(*n), |_| {})?;
/// pool.submit(2).unwrap();
/// let handle = pool.submit_with_handle(3).unwrap();
/// assert!(handle.wait().is_ok());
/// # Ok::<(), std::io::Error>(())
/// ```
pub trait Handling: EntryKind {}

/// The default kind of [`Pool`](super::Pool): no task has a handle, every outcome goes to the
/// sink, and the queue holds each task as it is (see [`Handling`]).
///
/// ```
/// use foreman_rt::host::threads::{NoHandles, Pool};
/// use foreman_rt::policy::Policy;
///
/// // The same type as `Pool<u32, (), (), 8, 1>`.
/// let pool = Pool::<u32, (), (), 8, 1, NoHandles>::start(Policy::DEFAULT, |_, _| Ok(()), |_| {})?;
/// pool.submit(1).unwrap();
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// Its tasks cannot have handles:
///
/// ```compile_fail
/// # use foreman_rt::host::threads::Pool;
/// # use foreman_rt::policy::Policy;
/// let pool = Pool::<u32, (), (), 8, 1>::start(Policy::DEFAULT, |_, _| Ok(()), |_| {})?;
/// let handle = pool.submit_with_handle(1); // no such method in a pool of `NoHandles`
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub enum NoHandles {}

/// The kind of [`Pool`](super::Pool) whose tasks may be submitted with a [`TaskHandle`]
/// ([`Pool::submit_with_handle`](super::Pool::submit_with_handle)); each queued task carries
/// a pointer beside it for its handle, if it has one (see [`Handling`]).
///
/// ```
/// use foreman_rt::host::{threads::{Handles, Pool}, Event};
/// use foreman_rt::policy::Policy;
///
/// let pool = Pool::<u32, u32, (), 8, 2, Handles>::start(Policy::DEFAULT, |_, n| Ok(n + 1), |_| {})?;
/// let handle = pool.submit_with_handle(1).unwrap();
/// assert!(matches!(handle.wait(), Ok(Event::Completed { output: 2, .. })));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub enum Handles {}

impl Handling for NoHandles {}
impl Handling for Handles {}

mod sealed {
    /// What a pool's queue holds for each task, by the pool's [`Handling`](super::Handling).
    /// Public in a private module: the pool's code names it, users cannot implement it.
    pub trait EntryKind: Send + Sync + 'static {
        /// A task as the queue holds it.
        type Entry<T: Send, R, E>: Send;

        /// A task submitted without a handle.
        fn plain<T: Send, R, E>(task: T) -> Self::Entry<T, R, E>;

        /// The task of an entry.
        fn task<T: Send, R, E>(entry: &Self::Entry<T, R, E>) -> &T;

        /// The task, and the resolver of its handle if it has one.
        fn into_parts<T: Send, R, E>(
            entry: Self::Entry<T, R, E>,
        ) -> (T, Option<super::Resolver<T, R, E>>);

        /// A refused entry's task, for the caller (a refused entry's handle was never given
        /// out: its resolver is discarded).
        fn refused<T: Send, R, E>(
            err: crate::SubmitError<Self::Entry<T, R, E>>,
        ) -> crate::SubmitError<T>;

        /// Whether entries may have handles (which may cancel their task or give it a
        /// deadline): the pool then asks, after a task returns, whether its run was
        /// cancelled, and keeps a clock for deadlines. `false` compiles all that away.
        const HANDLES: bool;

        /// Decides, before `run` starts the entry's task (and again on every retry), whether
        /// it may run, and with which deadline of its own.
        fn admit<T: Send, R, E>(entry: &Self::Entry<T, R, E>, run: crate::Run) -> super::Admit;
    }
}
pub(super) use sealed::EntryKind;

impl EntryKind for NoHandles {
    type Entry<T: Send, R, E> = T;

    #[inline(always)]
    fn plain<T: Send, R, E>(task: T) -> T {
        task
    }

    #[inline(always)]
    fn task<T: Send, R, E>(entry: &T) -> &T {
        entry
    }

    #[inline(always)]
    fn into_parts<T: Send, R, E>(entry: T) -> (T, Option<Resolver<T, R, E>>) {
        (entry, None)
    }

    #[inline(always)]
    fn refused<T: Send, R, E>(err: SubmitError<T>) -> SubmitError<T> {
        err
    }

    const HANDLES: bool = false;

    #[inline(always)]
    fn admit<T: Send, R, E>(_: &T, _: Run) -> Admit {
        Admit::Run
    }
}

impl EntryKind for Handles {
    type Entry<T: Send, R, E> = Entry<T, R, E>;

    #[inline(always)]
    fn plain<T: Send, R, E>(task: T) -> Entry<T, R, E> {
        Entry {
            task,
            resolver: None,
        }
    }

    #[inline(always)]
    fn task<T: Send, R, E>(entry: &Entry<T, R, E>) -> &T {
        &entry.task
    }

    #[inline(always)]
    fn into_parts<T: Send, R, E>(entry: Entry<T, R, E>) -> (T, Option<Resolver<T, R, E>>) {
        (entry.task, entry.resolver)
    }

    fn refused<T: Send, R, E>(err: SubmitError<Entry<T, R, E>>) -> SubmitError<T> {
        let (entry, full) = match err {
            SubmitError::Full(entry) => (entry, true),
            SubmitError::Closed(entry) => (entry, false),
        };
        if let Some(resolver) = entry.resolver {
            resolver.discard();
        }
        match full {
            true => SubmitError::Full(entry.task),
            false => SubmitError::Closed(entry.task),
        }
    }

    const HANDLES: bool = true;

    #[inline]
    #[cfg_attr(
        not(any(feature = "cancellation", feature = "deadlines")),
        allow(unused_variables)
    )]
    fn admit<T: Send, R, E>(entry: &Entry<T, R, E>, run: Run) -> Admit {
        let Some(resolver) = &entry.resolver else {
            return Admit::Run;
        };
        let landing = resolver.landing();
        #[cfg(feature = "cancellation")]
        if landing.ticket.claim(run).is_err() {
            return Admit::Cancelled;
        }
        #[cfg(feature = "deadlines")]
        if let Some(ticks) = landing.deadline {
            return Admit::Within(ticks);
        }
        Admit::Run
    }
}

/// What the worker does with a task it took ([`EntryKind::admit`]). (Public in a private
/// module: [`EntryKind`] names it.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Run it.
    Run,
    /// Run it with a deadline of its own: it is condemned once this many ticks have passed
    /// since the run started.
    #[cfg(feature = "deadlines")]
    Within(Tick),
    /// Its handle cancelled it: it must not run.
    #[cfg(feature = "cancellation")]
    Cancelled,
}

/// Options for one task, given with it to
/// [`Pool::submit_with_options`](super::Pool::submit_with_options) (a pool of [`Handles`]).
///
/// ```
/// use foreman_rt::host::threads::TaskOptions;
/// let options = TaskOptions::DEFAULT.with_deadline(500); // at most 500 ms per run
/// assert_eq!(options.deadline(), Some(500));
/// assert_eq!(TaskOptions::DEFAULT.deadline(), None);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskOptions {
    #[cfg(feature = "deadlines")]
    deadline: Option<Tick>,
}

impl TaskOptions {
    /// No options: the task runs as [`submit_with_handle`](super::Pool::submit_with_handle)
    /// runs it.
    ///
    /// ```
    /// # use foreman_rt::host::threads::TaskOptions;
    /// assert_eq!(TaskOptions::DEFAULT, TaskOptions::default());
    /// ```
    pub const DEFAULT: TaskOptions = TaskOptions {
        #[cfg(feature = "deadlines")]
        deadline: None,
    };

    /// A deadline for each run of the task, in the pool's ticks (milliseconds), counted from
    /// the run's *start* (not from the submission: time in the queue does not count), and
    /// set again for every retry. A run still going when it passes is reported
    /// [`Event::Hung`] and condemned (see [`Pool::condemn`](super::Pool::condemn)): the task
    /// sees [`Context::is_cancelled`](crate::Context::is_cancelled), and once it returns, its
    /// late outcome is discarded and the task is retried, dead-lettered or lost per the
    /// delivery policy (an [`Event::Crashed`]). Heartbeats do not extend it. It replaces the
    /// policy's watchdog deadline for the task's runs, and works without one. Deadlines
    /// above [`MAX_DURATION`](crate::policy::MAX_DURATION) are cut to it (feature
    /// `deadlines`).
    ///
    /// ```
    /// use foreman_rt::host::{threads::{Handles, Pool, TaskOptions}, Event};
    /// use foreman_rt::policy::{Delivery, Policy};
    ///
    /// // No watchdog in the policy; one task gets 20 ms per run, and stops when told.
    /// let pool = Pool::<u32, (), (), 4, 1, Handles>::start(
    ///     Policy::DEFAULT.with_delivery(Delivery::at_least_once(1).unwrap()),
    ///     |ctx, _| {
    ///         while !ctx.is_cancelled() {
    ///             std::thread::sleep(std::time::Duration::from_millis(1));
    ///         }
    ///         Ok(())
    ///     },
    ///     |_| {},
    /// )?;
    /// let handle = pool
    ///     .submit_with_options(7, TaskOptions::DEFAULT.with_deadline(20))
    ///     .unwrap();
    /// // Its one run was condemned at its deadline; one attempt allowed: dead-lettered.
    /// assert!(matches!(handle.wait(), Ok(Event::Crashed { .. })));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[cfg(feature = "deadlines")]
    pub const fn with_deadline(self, ticks: Tick) -> TaskOptions {
        let ticks = if ticks > crate::policy::MAX_DURATION {
            crate::policy::MAX_DURATION
        } else {
            ticks
        };
        TaskOptions {
            deadline: Some(ticks),
        }
    }

    /// The deadline of each run, if any (see [`with_deadline`](TaskOptions::with_deadline)).
    ///
    /// ```
    /// # use foreman_rt::host::threads::TaskOptions;
    /// assert_eq!(TaskOptions::DEFAULT.with_deadline(10).deadline(), Some(10));
    /// ```
    #[cfg(feature = "deadlines")]
    pub const fn deadline(&self) -> Option<Tick> {
        self.deadline
    }
}

/// What [`TaskHandle::cancel`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg(feature = "cancellation")]
pub enum Cancellation {
    /// The task had not started: it never will. The handle resolves to
    /// [`Event::Cancelled`] with `worker: None`, once a worker takes the task off the queue
    /// (or to [`Event::HandedBack`], if a shutdown hands the queue back first, as its report
    /// counts it).
    Unstarted,
    /// The task was running: its run was told to stop
    /// ([`Context::is_cancelled`](crate::Context::is_cancelled)). The handle resolves to
    /// [`Event::Cancelled`] with the worker once the task returns — or, if the run had just
    /// ended, to that run's outcome (a run that crashed is not retried: its retry ends
    /// [`Event::Cancelled`] without running).
    Running,
    /// Too late: the task already has its outcome (the handle has it, or had it).
    Finished,
}

/// A task as the queue of a pool of [`Handles`] holds it: the task and, if it was submitted
/// with a handle, the resolver its final event goes to. (Public in a private module: it is
/// [`Handles`]' entry type.)
pub struct Entry<T, R, E> {
    task: T,
    resolver: Option<Resolver<T, R, E>>,
}

// SAFETY: an entry moves between threads with its task (`T: Send`) and its resolver. A
// resolver holds an `Event<T, R, E, String>` sent from a worker thread to the handle's; it is
// made only by `TaskHandle::new`, which requires `R: Send` and `E: Send`, so an entry that
// holds one holds only `Send` parts. An entry without a resolver holds only its task.
unsafe impl<T: Send, R, E> Send for Entry<T, R, E> {}

/// The disposition of a crashed entry, split into the task's disposition and, if it is the
/// task's final one (dead-lettered, lost, handed back), the resolver it goes to.
///
/// Out of line (a crash's path): inlined into `after_crash`, the task moving through its
/// tuples and options there made LLVM take minutes over a large task type (the review test's
/// 1 MiB task: over 10 minutes; 16 KiB: 280 s; now 6 s, as without handles).
#[inline(never)]
pub(super) fn split<H: EntryKind, T: Send, R, E>(
    disposition: Disposition<H::Entry<T, R, E>>,
) -> (Disposition<T>, Option<Resolver<T, R, E>>) {
    match disposition {
        Disposition::Retried { attempt } => (Disposition::Retried { attempt }, None),
        Disposition::Requeued { attempt } => (Disposition::Requeued { attempt }, None),
        Disposition::DeadLettered { task, attempts } => {
            let (task, resolver) = H::into_parts(task);
            (Disposition::DeadLettered { task, attempts }, resolver)
        }
        Disposition::Lost(task) => {
            let (task, resolver) = H::into_parts(task);
            (Disposition::Lost(task), resolver)
        }
        Disposition::HandedBack(task) => {
            let (task, resolver) = H::into_parts(task);
            (Disposition::HandedBack(task), resolver)
        }
        Disposition::Cancelled(task) => {
            let (task, resolver) = H::into_parts(task);
            (Disposition::Cancelled(task), resolver)
        }
    }
}

/// Where a handle's outcome lands (shared by the handle and its task's resolver).
struct Landing<T, R, E> {
    state: Mutex<State<T, R, E>>,
    /// Notified when the outcome lands, for a blocking [`TaskHandle::wait`].
    landed: Condvar,
    /// Decides between the handle's cancellation and a worker's claim of the task.
    #[cfg(feature = "cancellation")]
    ticket: Ticket,
    /// The deadline of each run of the task, from its options.
    #[cfg(feature = "deadlines")]
    deadline: Option<Tick>,
}

struct State<T, R, E> {
    outcome: Option<Event<T, R, E, String>>,
    /// The task of the last `poll` that found no outcome.
    waker: Option<Waker>,
    /// Set when the outcome landed (it may have been taken since).
    landed: bool,
    /// Set while a thread blocks in `wait` or `wait_timeout`: only then does the outcome's
    /// landing notify the condition variable (a notification is a system call).
    blocked: bool,
    /// Set when the handle was dropped: the outcome goes back to the pool, for the sink.
    dropped: bool,
}

impl<T, R, E> Landing<T, R, E> {
    /// Locks the state. No user code runs under the lock (wakers are woken and dropped
    /// after it), so a poisoned lock only means a thread panicked elsewhere: the state is whole.
    fn lock(&self) -> MutexGuard<'_, State<T, R, E>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The pool's side of a [`TaskHandle`]: travels with its task, and takes its final event.
///
/// It owns one count of its landing's `Arc`, as a raw pointer: a resolver has no drop glue,
/// so neither has an [`Entry`] whose task has none, which keeps the path of entries without
/// a resolver short (an `Arc` in the entry cost 13 more instructions per dispatched no-op
/// task than this pointer). The pool gives every resolver up through
/// [`resolve`](Resolver::resolve) or [`discard`](Resolver::discard): every way an entry leaves
/// the supervisor is taken apart in `threads.rs`, and the supervisor is never dropped holding
/// tasks (every shutdown hands them back first). A resolver dropped otherwise would only leak
/// its landing. (Public in a private module: [`EntryKind`] names it.)
pub struct Resolver<T, R, E>(NonNull<Landing<T, R, E>>);

impl<T, R, E> Resolver<T, R, E> {
    /// The landing, for as long as the resolver lives.
    fn landing(&self) -> &Landing<T, R, E> {
        // SAFETY: the resolver owns one count of the landing's `Arc` (see the type's docs),
        // so the landing lives at least as long as `self`; nothing mutates it but through its
        // lock and atomics.
        unsafe { self.0.as_ref() }
    }

    /// Takes the landing's count back.
    fn into_landing(self) -> Arc<Landing<T, R, E>> {
        // SAFETY: the pointer came from `Arc::into_raw` (`TaskHandle::new`) with the count
        // this resolver owns, and `self` is consumed: the count is taken back once.
        unsafe { Arc::from_raw(self.0.as_ptr()) }
    }

    /// Gives the resolver up without an outcome (its task was refused: the handle was never
    /// given out).
    pub(super) fn discard(self) {
        drop(self.into_landing());
    }

    /// Gives the handle its task's final event, and wakes whoever waits for it. If the handle
    /// was dropped, gives the event back (for the sink).
    #[cold]
    #[inline(never)]
    pub(super) fn resolve(self, event: Event<T, R, E, String>) -> Option<Event<T, R, E, String>> {
        let landing = self.into_landing();
        // The outcome is decided: a cancellation from now on finds it ended.
        #[cfg(feature = "cancellation")]
        landing.ticket.end();
        let (waker, blocked) = {
            let mut state = landing.lock();
            if state.dropped {
                return Some(event);
            }
            state.outcome = Some(event);
            state.landed = true;
            (state.waker.take(), state.blocked)
        };
        if blocked {
            landing.landed.notify_all();
        }
        // After the lock: a waker is user code.
        if let Some(waker) = waker {
            waker.wake();
        }
        None
    }
}

/// A task submitted with [`Pool::submit_with_handle`](super::Pool::submit_with_handle): its
/// one outcome, the task's final [`Event`], to [`wait`](TaskHandle::wait) for or to `.await`.
///
/// The final event is the one the sink would have had last for this task:
/// [`Event::Completed`], [`Event::Failed`], [`Event::Crashed`] with the task dead-lettered,
/// lost or handed back (a crash whose task is retried is not final: the sink gets it, and the
/// handle waits on), [`Event::Cancelled`] after [`cancel`](TaskHandle::cancel), or
/// [`Event::HandedBack`] when a shutdown leaves the task unrun — the task comes back in it. It goes to the handle *instead of* the sink; every other event of the
/// task (crashes before a retry, hangs) still goes to the sink.
///
/// Dropping the handle before the outcome arrived gives the outcome back to the pool: it
/// goes to the sink (or, for a task left at a `drain` or `abort`, into its
/// [`Report`](crate::host::Report)), as if the task had no handle. Dropping it after the
/// outcome arrived drops the outcome. Nothing waits on a dropped handle.
///
/// ```
/// use foreman_rt::host::{threads::{Handles, Pool}, Event};
/// use foreman_rt::policy::Policy;
///
/// let pool = Pool::<u32, u32, String, 8, 2, Handles>::start(Policy::DEFAULT, |_, n| Ok(n * 2), |_| {})?;
/// let handle = pool.submit_with_handle(21).unwrap();
/// match handle.wait() {
///     Ok(Event::Completed { output, .. }) => assert_eq!(output, 42),
///     other => panic!("unexpected {other:?}"),
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// A handle is a [`Future`]: an async program can hand blocking work to the pool and
/// `.await` it (any executor; no runtime is needed):
///
/// ```
/// # use foreman_rt::host::{threads::{Handles, Pool}, Event};
/// # use foreman_rt::policy::Policy;
/// let pool = Pool::<u32, u32, (), 8, 2, Handles>::start(Policy::DEFAULT, |_, n| Ok(n + 1), |_| {})?;
/// let handle = pool.submit_with_handle(1).unwrap();
/// let event = futures_executor::block_on(async { handle.await });
/// assert!(matches!(event, Event::Completed { output: 2, .. }));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct TaskHandle<T, R, E> {
    landing: Arc<Landing<T, R, E>>,
    /// The address of its pool's shared state (`OWN_POOL`'s value on its threads).
    pool: usize,
    /// Its pool, to cancel the task's run (not kept alive by the handle).
    #[cfg(feature = "cancellation")]
    runs: Weak<dyn CancelRun>,
}

/// A pool as a [`TaskHandle`] reaches it, to cancel its task's run.
#[cfg(feature = "cancellation")]
pub(super) trait CancelRun: Send + Sync {
    /// [`Supervisor::cancel`](crate::Supervisor::cancel) of the pool's supervisor.
    fn cancel_run(&self, run: Run) -> Result<(), WorkerError>;
}

impl<T: Send, R: Send, E: Send> TaskHandle<T, R, E> {
    /// A handle, and the entry that takes its task into the queue of pool `pool` (whose
    /// runs it cancels through `runs`).
    pub(super) fn new(
        task: T,
        #[cfg_attr(not(feature = "deadlines"), allow(unused_variables))] options: TaskOptions,
        pool: *const (),
        #[cfg(feature = "cancellation")] runs: Weak<dyn CancelRun>,
    ) -> (TaskHandle<T, R, E>, Entry<T, R, E>) {
        let landing = Arc::new(Landing {
            state: Mutex::new(State {
                outcome: None,
                waker: None,
                landed: false,
                blocked: false,
                dropped: false,
            }),
            landed: Condvar::new(),
            #[cfg(feature = "cancellation")]
            ticket: Ticket::new(),
            #[cfg(feature = "deadlines")]
            deadline: options.deadline,
        });
        let resolver = Resolver(
            NonNull::new(Arc::into_raw(Arc::clone(&landing)).cast_mut())
                .expect("an Arc's pointer is not null"),
        );
        let handle = TaskHandle {
            landing,
            pool: pool as usize,
            #[cfg(feature = "cancellation")]
            runs,
        };
        (
            handle,
            Entry {
                task,
                resolver: Some(resolver),
            },
        )
    }
}

impl<T, R, E> TaskHandle<T, R, E> {
    /// Whether the outcome has arrived (a [`wait`](TaskHandle::wait) would return at once).
    ///
    /// ```
    /// # use foreman_rt::{host::threads::{Handles, Pool}, policy::Policy};
    /// let pool = Pool::<u32, (), (), 8, 1, Handles>::start(Policy::DEFAULT, |_, _| Ok(()), |_| {})?;
    /// let handle = pool.submit_with_handle(1).unwrap();
    /// pool.drain(); // runs every task
    /// assert!(handle.is_finished());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_finished(&self) -> bool {
        self.landing.lock().landed
    }

    /// Waits for the task's final event and returns it.
    ///
    /// On one of its pool's own threads (inside a task, or in the sink) it does not block:
    /// the thread waiting could be the one that has to run the task (a task waiting for its
    /// own handle, or every worker waiting for a task still queued), and then nothing —
    /// not even a shutdown, which waits for running tasks — would ever return. There, if the
    /// outcome has not arrived, the handle comes back at once in `Err`: keep it, and
    /// [`wait_timeout`](TaskHandle::wait_timeout) (which returns after its timeout) or check
    /// [`is_finished`](TaskHandle::is_finished) later. Anywhere else, `Err` never happens.
    ///
    /// ```
    /// use foreman_rt::host::{threads::{Handles, Pool}, Event};
    /// use foreman_rt::policy::Policy;
    ///
    /// let pool = Pool::<u32, (), String, 8, 1, Handles>::start(
    ///     Policy::DEFAULT,
    ///     |_, n| Err(format!("{n} failed")),
    ///     |_| {},
    /// )?;
    /// let handle = pool.submit_with_handle(7).unwrap();
    /// // From another thread, too: the handle is `Send`.
    /// let event = std::thread::spawn(move || handle.wait()).join().unwrap();
    /// assert!(matches!(event, Ok(Event::Failed { task: 7, .. })));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait(self) -> Result<Event<T, R, E, String>, Self> {
        if self.on_own_thread() {
            return self.take().ok_or(self);
        }
        let outcome = {
            let mut state = self.landing.lock();
            while !state.landed {
                state.blocked = true;
                state = self
                    .landing
                    .landed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            state.outcome.take()
        };
        Ok(outcome.expect("a handle's outcome is taken once, by the handle's owner"))
    }

    /// Waits at most `timeout` for the task's final event; if it has not arrived by then, the
    /// handle comes back in `Err` (wait again, or drop it: the outcome then goes to the
    /// sink). Bounded, it may be called anywhere, on the pool's own threads too.
    ///
    /// ```
    /// # use foreman_rt::{host::threads::{Handles, Pool}, policy::Policy};
    /// use std::time::Duration;
    ///
    /// let (go, gate) = std::sync::mpsc::channel::<()>();
    /// let gate = std::sync::Mutex::new(gate);
    /// let pool = Pool::<u32, (), (), 8, 1, Handles>::start(
    ///     Policy::DEFAULT,
    ///     move |_, _| Ok(gate.lock().unwrap().recv().unwrap()),
    ///     |_| {},
    /// )?;
    /// let handle = pool.submit_with_handle(1).unwrap();
    /// let handle = handle.wait_timeout(Duration::from_millis(10)).unwrap_err(); // still running
    /// go.send(()).unwrap();
    /// assert!(handle.wait_timeout(Duration::from_secs(60)).is_ok());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait_timeout(self, timeout: Duration) -> Result<Event<T, R, E, String>, Self> {
        let deadline = Instant::now().checked_add(timeout);
        let outcome = {
            let mut state = self.landing.lock();
            while !state.landed {
                let left = match deadline {
                    Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                    None => Duration::MAX,
                };
                if left.is_zero() {
                    break;
                }
                state.blocked = true;
                state = self
                    .landing
                    .landed
                    .wait_timeout(state, left)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            state.outcome.take()
        };
        outcome.ok_or(self)
    }

    /// Cancels the task, and says what that did (see [`Cancellation`]): a task still queued
    /// never runs, and its handle resolves to [`Event::Cancelled`] (`worker: None`); a
    /// running task is told to stop — it sees [`Context::is_cancelled`](crate::Context::is_cancelled),
    /// and when it returns, its result is discarded and the handle resolves to
    /// [`Event::Cancelled`] with its worker. A task that already has its outcome is left
    /// alone. Whichever happens, the handle resolves once, to one event; a cancelled task is
    /// never retried, and counts as [`cancelled`](crate::Snapshot::cancelled) (unless a
    /// shutdown hands it back first: then [`Event::HandedBack`]). Threads cannot be killed:
    /// a task that never looks keeps running to its end. Idempotent; may be called anywhere,
    /// from the pool's own threads and tasks too (feature `cancellation`).
    ///
    /// ```
    /// use foreman_rt::host::{threads::{Cancellation, Handles, Pool}, Event};
    /// use foreman_rt::policy::Policy;
    /// use std::sync::mpsc;
    ///
    /// let (started, running) = mpsc::channel();
    /// let pool = Pool::<u32, (), (), 8, 1, Handles>::start(
    ///     Policy::DEFAULT,
    ///     move |ctx, _| {
    ///         started.send(()).unwrap();
    ///         while !ctx.is_cancelled() {
    ///             std::thread::yield_now(); // a long computation that looks now and then
    ///         }
    ///         Ok(())
    ///     },
    ///     |_| {},
    /// )?;
    /// let first = pool.submit_with_handle(1).unwrap();
    /// let second = pool.submit_with_handle(2).unwrap(); // queued behind the first
    /// running.recv().unwrap();
    /// assert_eq!(second.cancel(), Cancellation::Unstarted);
    /// assert_eq!(first.cancel(), Cancellation::Running);
    /// assert!(matches!(first.wait(), Ok(Event::Cancelled { worker: Some(0), task: 1 })));
    /// assert!(matches!(second.wait(), Ok(Event::Cancelled { worker: None, task: 2 })));
    /// assert_eq!(pool.drain().snapshot.cancelled, 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[cfg(feature = "cancellation")]
    pub fn cancel(&self) -> Cancellation {
        match self.landing.ticket.cancel() {
            Cancel::Pending => Cancellation::Unstarted,
            Cancel::Running(run) => {
                // A pool that is gone has ended every run. `RunEnded`: the run ended
                // meanwhile, with its outcome or a crash whose retry finds the ticket
                // cancelled; either way the handle resolves once.
                if let Some(pool) = self.runs.upgrade() {
                    let _ = pool.cancel_run(run);
                }
                Cancellation::Running
            }
            Cancel::Ended => Cancellation::Finished,
        }
    }

    /// The outcome, if it has arrived and was not taken yet.
    fn take(&self) -> Option<Event<T, R, E, String>> {
        self.landing.lock().outcome.take()
    }

    /// Whether the current thread is one of this handle's pool's.
    fn on_own_thread(&self) -> bool {
        OwnThread::is(self.pool as *const ())
    }
}

/// Resolves to the task's final event. Polled again after that, it panics (as a future
/// may): the outcome was given once.
impl<T, R, E> Future for TaskHandle<T, R, E> {
    type Output = Event<T, R, E, String>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.landing.lock();
        if let Some(outcome) = state.outcome.take() {
            return Poll::Ready(outcome);
        }
        assert!(
            !state.landed,
            "a TaskHandle polled after it returned its outcome"
        );
        let old = match &state.waker {
            Some(waker) if waker.will_wake(cx.waker()) => None,
            _ => state.waker.replace(cx.waker().clone()),
        };
        drop(state);
        // After the lock: a waker's drop is user code.
        drop(old);
        Poll::Pending
    }
}

impl<T, R, E> Drop for TaskHandle<T, R, E> {
    fn drop(&mut self) {
        let (outcome, waker) = {
            let mut state = self.landing.lock();
            state.dropped = true;
            (state.outcome.take(), state.waker.take())
        };
        // After the lock: a task's, output's or waker's drop is user code.
        drop(outcome);
        drop(waker);
    }
}

impl<T, R, E> fmt::Debug for TaskHandle<T, R, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskHandle")
            .field("finished", &self.is_finished())
            .finish_non_exhaustive()
    }
}
