//! The worker process's side: the [`Handler`] it runs, the [`Context`] task code gets, and
//! [`Handler::serve_if_worker`], the call at the top of `main` that turns a process started by
//! a pool into one of its workers.

use core::fmt;
use core::sync::atomic::AtomicU32;
use std::boxed::Box;
use std::ffi::OsStr;
use std::format;
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::panic::{self, AssertUnwindSafe};
use std::string::String;

use rustix::fs::SealFlags;
use rustix::process::{Resource, Rlimit};

use super::shared::{Mailbox, Order, Region};
use super::Portable;

/// The environment variable that marks a process as a pool's worker:
/// `<memfd>:<worker index>:<parent pid>:<handler name>`.
pub(crate) const WORKER_VAR: &str = "FOREMAN_PROCESS_WORKER";

/// Exit status of a worker whose task panicked (the one Rust gives an uncaught panic).
pub(crate) const PANICKED: i32 = 101;
/// Exit status of a worker that could not set itself up (it says why on stderr).
pub(crate) const SETUP_FAILED: i32 = 121;

/// What a pool's worker processes run: the task code, under a name that finds it again in a
/// freshly started process.
///
/// A handler is a `static` (or `const`) that both sides use: the parent passes it to
/// [`Pool::start`](super::Pool::start), and `main` calls its
/// [`serve_if_worker`](Handler::serve_if_worker) first thing, so that a process the pool
/// started runs it. The task code is a plain `fn` (or a closure that captures nothing): it
/// runs in another process, where nothing of the parent's memory exists.
///
/// ```
/// use foreman_rt::host::processes::{Context, Handler};
///
/// fn square(_ctx: &Context<'_>, n: &u64) -> Result<u64, ()> {
///     Ok(n * n)
/// }
///
/// static SQUARE: Handler<u64, u64, ()> = Handler::new("square", square);
/// // Closures that capture nothing work too:
/// static HALVE: Handler<u64, u64, ()> = Handler::new("halve", |_, n| Ok(n / 2));
/// assert_eq!(SQUARE.name(), "square");
/// ```
pub struct Handler<T, R, E> {
    name: &'static str,
    run: fn(&Context<'_>, &T) -> Result<R, E>,
    address_space_limit: Option<u64>,
}

impl<T: Portable, R: Portable, E: Portable> Handler<T, R, E> {
    /// A handler named `name` that runs `run` on each task. The name must be unique among the
    /// handlers of the program (a worker finds its handler by name; a clash with other types
    /// is caught when the worker starts, one with the same types is not).
    ///
    /// ```
    /// # use foreman_rt::host::processes::Handler;
    /// const LENGTH: Handler<[u8; 32], usize, ()> =
    ///     Handler::new("length", |_, text| Ok(text.iter().position(|&b| b == 0).unwrap_or(32)));
    /// # assert_eq!(LENGTH.name(), "length");
    /// ```
    pub const fn new(name: &'static str, run: fn(&Context<'_>, &T) -> Result<R, E>) -> Self {
        Handler {
            name,
            run,
            address_space_limit: None,
        }
    }

    /// This handler with an address-space limit (`RLIMIT_AS`) of `bytes` for each worker
    /// process: an allocation beyond it fails, which aborts the worker (and only the worker),
    /// so a runaway task cannot take the machine's memory. The limit counts everything the
    /// process maps (its binary, stacks, heap, the pool's shared memory): leave room beyond
    /// what the tasks need.
    ///
    /// ```
    /// # use foreman_rt::host::processes::Handler;
    /// const PARSE: Handler<[u8; 64], u32, ()> =
    ///     Handler::new("parse", |_, _| Ok(0)).with_address_space_limit(512 << 20);
    /// assert_eq!(PARSE.address_space_limit(), Some(512 << 20));
    /// ```
    pub const fn with_address_space_limit(mut self, bytes: u64) -> Self {
        self.address_space_limit = Some(bytes);
        self
    }

    /// The name.
    ///
    /// ```
    /// # use foreman_rt::host::processes::Handler;
    /// const H: Handler<u8, u8, ()> = Handler::new("h", |_, n| Ok(*n));
    /// assert_eq!(H.name(), "h");
    /// ```
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The address-space limit of each worker process, if any.
    ///
    /// ```
    /// # use foreman_rt::host::processes::Handler;
    /// const H: Handler<u8, u8, ()> = Handler::new("h", |_, n| Ok(*n));
    /// assert_eq!(H.address_space_limit(), None);
    /// ```
    pub const fn address_space_limit(&self) -> Option<u64> {
        self.address_space_limit
    }

    /// Turns this process into a worker of this handler if a pool started it as one, and
    /// returns at once otherwise. Call it first thing in `main`, once per handler the
    /// program's pools use:
    ///
    /// ```
    /// # use foreman_rt::host::processes::Handler;
    /// # static SQUARE: Handler<u64, u64, ()> = Handler::new("square", |_, n| Ok(n * n));
    /// fn main() {
    ///     SQUARE.serve_if_worker(); // in a worker process, never returns
    ///     // … the program proper: start pools, submit tasks …
    /// }
    /// ```
    ///
    /// A pool starts its workers by running this program's binary again with an environment
    /// variable that names the handler; this call finds it, maps the pool's memory and serves
    /// tasks until the pool lets the worker go, then exits the process. Everything `main`
    /// does before this call, every worker does too: keep it first.
    ///
    /// Call it before the program starts any thread: in a worker it removes the pool's
    /// variable from the environment (`std::env::remove_var`, so that processes the tasks
    /// start are not taken for workers), which is sound only while no other thread reads or
    /// writes the environment. An async `main` (`#[tokio::main]`) starts its runtime's threads
    /// first: call it in a plain `main` that then builds the runtime.
    pub fn serve_if_worker(&self) {
        let Some(value) = std::env::var_os(WORKER_VAR) else {
            return;
        };
        let request = match Request::parse(&value) {
            Some(request) => request,
            None => fail(&format!("malformed {WORKER_VAR}={value:?}")),
        };
        if request.handler != self.name.as_bytes() {
            return; // another handler's worker: its own call comes
        }
        // Task code that starts processes of its own must not make workers of them.
        std::env::remove_var(WORKER_VAR);
        self.serve(request)
    }

    /// The worker process: set up, then run orders until told to exit.
    fn serve(&self, request: Request<'_>) -> ! {
        // The parent set PR_SET_PDEATHSIG before exec; if it died before that, nobody would
        // ever kill us: check we still have it.
        if rustix::process::getppid().map(|pid| pid.as_raw_nonzero().get()) != Some(request.parent)
        {
            std::process::exit(SETUP_FAILED);
        }
        // Take ownership of the descriptor only if it is what a pool hands over: above the
        // standard streams (a pool never passes 0-2), and a memfd sealed as `Region::create`
        // seals it. A forged variable naming another descriptor of this process gets an error,
        // not that descriptor closed behind its owner's back.
        if request.fd <= 2 || !is_pool_memory(request.fd) {
            fail(&format!(
                "descriptor {} is not a pool's shared memory ({WORKER_VAR} names it)",
                request.fd
            ));
        }
        // SAFETY: a sealed memfd above 0-2 that this process did not open itself: the one
        // the parent handed over exec for exactly this (see above); nothing else in this
        // process owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(request.fd) };
        let mailbox: &'static Mailbox<T, R, E> =
            match Region::open_mailbox::<T, R, E>(fd, self.name, request.worker) {
                Ok(mailbox) => mailbox,
                Err(err) => fail(&err),
            };
        if let Some(bytes) = self.address_space_limit {
            let limit = Rlimit {
                current: Some(bytes),
                maximum: rustix::process::getrlimit(Resource::As).maximum,
            };
            if let Err(err) = rustix::process::setrlimit(Resource::As, limit) {
                fail(&format!("cannot set the address-space limit: {err}"));
            }
        }
        record_panics(mailbox);
        mailbox.announce(rustix::process::getpid().as_raw_nonzero().get() as u32);
        let mut seen = 0;
        loop {
            // SAFETY: this is the mailbox's worker, and it answered order `seen` (or it is 0).
            match unsafe { mailbox.next_order(seen) } {
                Order::Exit => std::process::exit(0),
                Order::Run {
                    number,
                    task,
                    attempt,
                } => {
                    seen = number;
                    let ctx = Context {
                        worker: request.worker,
                        attempt,
                        heartbeats: mailbox.heartbeat_word(),
                    };
                    // A panic ends the worker: it is a crash like any other, and a fresh
                    // process replaces this one (its message is in the mailbox already).
                    let outcome = panic::catch_unwind(AssertUnwindSafe(|| (self.run)(&ctx, task)))
                        .unwrap_or_else(|_| std::process::exit(PANICKED));
                    // SAFETY: the answer to the order taken last; `task` is not used after it.
                    unsafe { mailbox.reply(number, outcome) };
                }
            }
        }
    }
}

impl<T, R, E> fmt::Debug for Handler<T, R, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handler")
            .field("name", &self.name)
            .field("address_space_limit", &self.address_space_limit)
            .finish()
    }
}

/// What task code may know and do about the worker process running it: the worker process's
/// counterpart of the core's [`Context`](crate::Context), with the same methods.
///
/// ```
/// use foreman_rt::host::processes::{Context, Handler};
///
/// fn crunch(ctx: &Context<'_>, rounds: &u32) -> Result<u32, ()> {
///     for _ in 0..*rounds {
///         ctx.heartbeat(); // a long task tells the watchdog it is alive
///     }
///     Ok(ctx.attempt())
/// }
/// # static CRUNCH: Handler<u32, u32, ()> = Handler::new("crunch", crunch);
/// ```
#[derive(Clone, Copy)]
pub struct Context<'w> {
    worker: usize,
    attempt: u32,
    heartbeats: &'w AtomicU32,
}

impl Context<'_> {
    /// The index of the worker (`0..W`) running the task; a replacement process keeps its
    /// predecessor's index.
    ///
    /// ```
    /// # use foreman_rt::host::processes::{Context, Handler};
    /// fn whose(ctx: &Context<'_>, _task: &u8) -> Result<usize, ()> {
    ///     Ok(ctx.worker())
    /// }
    /// # static WHOSE: Handler<u8, usize, ()> = Handler::new("whose", whose);
    /// ```
    pub fn worker(&self) -> usize {
        self.worker
    }

    /// Which run of the task this is: 1 the first time, 2 on the first retry, …
    ///
    /// ```
    /// # use foreman_rt::host::processes::{Context, Handler};
    /// fn careful(ctx: &Context<'_>, task: &u32) -> Result<u32, ()> {
    ///     if ctx.attempt() > 1 {
    ///         // a previous run crashed its worker: take the slow, safe path
    ///     }
    ///     Ok(*task)
    /// }
    /// # static CAREFUL: Handler<u32, u32, ()> = Handler::new("careful", careful);
    /// ```
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Tells the watchdog the task is making progress: its deadline starts again. Costs one
    /// atomic increment in shared memory; the parent passes it on to the supervisor.
    ///
    /// ```
    /// # use foreman_rt::host::processes::{Context, Handler};
    /// fn count_primes(ctx: &Context<'_>, below: &u32) -> Result<u32, ()> {
    ///     let mut primes = 0;
    ///     for n in 2..*below {
    ///         if n % 1024 == 0 {
    ///             ctx.heartbeat();
    ///         }
    ///         primes += u32::from((2..n).take_while(|d| d * d <= n).all(|d| n % d != 0));
    ///     }
    ///     Ok(primes)
    /// }
    /// # static PRIMES: Handler<u32, u32, ()> = Handler::new("primes", count_primes);
    /// ```
    pub fn heartbeat(&self) {
        // Relaxed: a progress count, nothing is published with it.
        self.heartbeats
            .fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    }
}

impl fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("worker", &self.worker)
            .field("attempt", &self.attempt)
            .finish()
    }
}

/// The parsed worker variable.
struct Request<'v> {
    fd: RawFd,
    worker: usize,
    parent: i32,
    handler: &'v [u8],
}

/// The value of [`WORKER_VAR`] the parent gives worker `worker` of a pool whose memory is
/// `fd`.
pub(crate) fn worker_variable(fd: RawFd, worker: usize, parent: u32, handler: &str) -> String {
    format!("{fd}:{worker}:{parent}:{handler}")
}

impl<'v> Request<'v> {
    fn parse(value: &'v OsStr) -> Option<Request<'v>> {
        let mut parts = value.as_bytes().splitn(4, |&b| b == b':');
        let mut number = || std::str::from_utf8(parts.next()?).ok()?.parse::<i64>().ok();
        let (fd, worker, parent) = (number()?, number()?, number()?);
        Some(Request {
            fd: fd.try_into().ok()?,
            worker: worker.try_into().ok()?,
            parent: parent.try_into().ok()?,
            handler: parts.next()?,
        })
    }
}

/// Whether descriptor `fd` is an open memfd named as a pool's, sealed against resizing.
fn is_pool_memory(fd: RawFd) -> bool {
    // Open, and a memfd of ours: its link in /proc names it (`/memfd:foreman (deleted)`).
    let named = std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .is_ok_and(|path| path.as_os_str().as_bytes().starts_with(b"/memfd:foreman"));
    if !named {
        return false;
    }
    // SAFETY: `fd` is open (above; `serve_if_worker` runs first in `main`, before any thread
    // that could close it), and the borrow lasts for this call only.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let sealed = SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL;
    rustix::fs::fcntl_get_seals(fd).is_ok_and(|seals| seals.contains(sealed))
}

/// Gives up before serving: says why on stderr (inherited from the parent), exits.
fn fail(why: &str) -> ! {
    std::eprintln!("foreman worker process: {why}");
    std::process::exit(SETUP_FAILED)
}

/// Leaves the message of a panic on the serving thread in the mailbox, for the parent's crash
/// report, then lets the previous hook print it as usual.
fn record_panics<T: Portable, R: Portable, E: Portable>(mailbox: &'static Mailbox<T, R, E>) {
    let serving = std::thread::current().id();
    let previous = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() == serving {
            let message = crate::host::panic_message(info.payload());
            let cause = match info.location() {
                Some(at) => format!("panicked at {at}: {message}"),
                None => format!("panicked: {message}"),
            };
            // SAFETY: the mailbox's worker, on its serving thread only (checked above).
            unsafe { mailbox.record_cause(&cause) };
        }
        previous(info);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worker_variable_round_trips_with_colons_in_the_name() {
        let value = worker_variable(7, 3, 4242, "ns:squares");
        let request = Request::parse(OsStr::new(&value)).unwrap();
        assert_eq!(
            (request.fd, request.worker, request.parent, request.handler),
            (7, 3, 4242, &b"ns:squares"[..])
        );
        assert!(Request::parse(OsStr::new("7:x:1:h")).is_none());
        assert!(Request::parse(OsStr::new("7:1:1")).is_none());
    }
}
