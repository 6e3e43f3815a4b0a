//! Dispatch: running a batch of tasks through foreman's thread host and through each peer.
//!
//! Every implementation runs the same task body ([`Work`]) on `workers` threads. The clock
//! starts once the pool exists (thread creation is not measured) and stops when the last task
//! has finished: foreman's `drain`, a scope's end, `ThreadPool::join`, or the worker threads'
//! `join` once their channel is closed.
//!
//! Two task shapes:
//! - *data tasks*: the task is a `u64` and one shared function runs it (no allocation per
//!   task): `foreman` (and `foreman-1k`, with a smaller queue), `crossbeam-channel` and
//!   `std-mpsc` pools;
//! - *closures*: each task is a boxed closure: `foreman-boxed` (`T = Box<dyn Fn(&Context)>`,
//!   handler `|ctx, f| f(ctx)`), and `rayon` and `threadpool`, whose API takes closures.

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use foreman_rt::host::threads::Pool;
use foreman_rt::policy::Policy;
use foreman_rt::Context;

/// foreman's queue capacity in the dispatch benchmarks: 16k tasks (384 KiB of `u64` tasks).
///
/// The peers' channels are unbounded, so their producer runs far ahead of the workers and
/// each cache line of tasks travels once, through the shared cache. A ring that fits in a
/// core's private cache instead bounces its lines between the producer's and the workers'
/// cores every lap; `foreman-1k` (a 1024-task queue) shows what that costs.
pub const CAPACITY: usize = 16 * 1024;
/// The small queue of `foreman-1k`.
pub const SMALL_CAPACITY: usize = 1024;

/// A task body: `iters` rounds of xorshift, a dependent chain the compiler cannot fold.
/// `iters == 0` is the no-op task.
#[derive(Debug, Clone, Copy)]
pub struct Work {
    pub iters: u32,
}

impl Work {
    /// The no-op task.
    pub const NOOP: Work = Work { iters: 0 };

    /// Runs the task for input `seed`.
    #[inline]
    pub fn run(self, seed: u64) -> u64 {
        let mut x = black_box(seed) | 1;
        for _ in 0..self.iters {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        black_box(x)
    }
}

/// The implementations compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impl {
    /// foreman's `Pool` with data tasks.
    Foreman,
    /// The same with a 1024-task queue.
    ForemanSmallQueue,
    /// foreman's `Pool` with boxed closures as tasks.
    ForemanBoxed,
    /// `rayon::ThreadPool::scope` with `spawn` per task.
    Rayon,
    /// The `threadpool` crate: `execute` per task, `join`.
    Threadpool,
    /// Worker threads sharing a `crossbeam_channel::unbounded` receiver (data tasks).
    CrossbeamChannel,
    /// The Rust book's pool: workers share an `Arc<Mutex<mpsc::Receiver>>` (data tasks).
    StdMpsc,
}

impl Impl {
    pub const ALL: [Impl; 7] = [
        Impl::Foreman,
        Impl::ForemanSmallQueue,
        Impl::ForemanBoxed,
        Impl::Rayon,
        Impl::Threadpool,
        Impl::CrossbeamChannel,
        Impl::StdMpsc,
    ];

    /// The name used in the records.
    pub fn name(self) -> &'static str {
        match self {
            Impl::Foreman => "foreman",
            Impl::ForemanSmallQueue => "foreman-1k",
            Impl::ForemanBoxed => "foreman-boxed",
            Impl::Rayon => "rayon",
            Impl::Threadpool => "threadpool",
            Impl::CrossbeamChannel => "crossbeam-channel",
            Impl::StdMpsc => "std-mpsc",
        }
    }

    /// Runs `tasks` tasks of `work` on `workers` threads (1, 2 or 4) and returns the time from
    /// the first submission to the end of the last task.
    pub fn run(self, workers: usize, tasks: u64, work: Work) -> Duration {
        self.run_body(workers, tasks, move |task| work.run(task), || {})
    }

    /// Like [`run`](Self::run), with `body` as the body of task `0..tasks`, and `submitted`
    /// called once every task was submitted, before waiting for them (for `Rayon`, whose
    /// tasks are spawned from inside the pool, on the worker thread).
    pub fn run_body<B>(
        self,
        workers: usize,
        tasks: u64,
        body: B,
        submitted: impl FnOnce() + Send,
    ) -> Duration
    where
        B: Fn(u64) -> u64 + Copy + Send + Sync + 'static,
    {
        match (self, workers) {
            (Impl::Foreman, 1) => foreman::<CAPACITY, 1, B>(tasks, body, submitted),
            (Impl::Foreman, 2) => foreman::<CAPACITY, 2, B>(tasks, body, submitted),
            (Impl::Foreman, 4) => foreman::<CAPACITY, 4, B>(tasks, body, submitted),
            (Impl::ForemanSmallQueue, 1) => foreman::<SMALL_CAPACITY, 1, B>(tasks, body, submitted),
            (Impl::ForemanSmallQueue, 2) => foreman::<SMALL_CAPACITY, 2, B>(tasks, body, submitted),
            (Impl::ForemanSmallQueue, 4) => foreman::<SMALL_CAPACITY, 4, B>(tasks, body, submitted),
            (Impl::ForemanBoxed, 1) => foreman_boxed::<1, B>(tasks, body, submitted),
            (Impl::ForemanBoxed, 2) => foreman_boxed::<2, B>(tasks, body, submitted),
            (Impl::ForemanBoxed, 4) => foreman_boxed::<4, B>(tasks, body, submitted),
            (Impl::Rayon, _) => rayon(workers, tasks, body, submitted),
            (Impl::Threadpool, _) => threadpool(workers, tasks, body, submitted),
            (Impl::CrossbeamChannel, _) => crossbeam_channel(workers, tasks, body, submitted),
            (Impl::StdMpsc, _) => std_mpsc(workers, tasks, body, submitted),
            (_, _) => panic!("foreman's pools are built for 1, 2 or 4 workers, not {workers}"),
        }
    }
}

fn foreman<const N: usize, const W: usize, B>(
    tasks: u64,
    body: B,
    submitted: impl FnOnce(),
) -> Duration
where
    B: Fn(u64) -> u64 + Send + Sync + 'static,
{
    let pool = Pool::<u64, u64, Infallible, N, W>::start(
        Policy::DEFAULT,
        move |_, &task| Ok(body(task)),
        |_event| {},
    )
    .expect("cannot start the worker threads");
    let start = Instant::now();
    for task in 0..tasks {
        pool.submit(task).expect("the pool is running");
    }
    submitted();
    let report = pool.drain();
    let elapsed = start.elapsed();
    assert_eq!(report.snapshot.completed, tasks as usize);
    elapsed
}

type BoxedTask = Box<dyn Fn(&Context<'_>) -> Result<u64, Infallible> + Send + Sync>;

fn foreman_boxed<const W: usize, B>(tasks: u64, body: B, submitted: impl FnOnce()) -> Duration
where
    B: Fn(u64) -> u64 + Copy + Send + Sync + 'static,
{
    let pool = Pool::<BoxedTask, u64, Infallible, CAPACITY, W>::start(
        Policy::DEFAULT,
        |ctx, task| task(ctx),
        |_event| {},
    )
    .expect("cannot start the worker threads");
    let start = Instant::now();
    for task in 0..tasks {
        let boxed: BoxedTask = Box::new(move |_| Ok(body(task)));
        if pool.submit(boxed).is_err() {
            panic!("the pool is running");
        }
    }
    submitted();
    let report = pool.drain();
    let elapsed = start.elapsed();
    assert_eq!(report.snapshot.completed, tasks as usize);
    elapsed
}

fn rayon<B>(workers: usize, tasks: u64, body: B, submitted: impl FnOnce() + Send) -> Duration
where
    B: Fn(u64) -> u64 + Copy + Send + Sync + 'static,
{
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .build()
        .expect("cannot start the worker threads");
    let start = Instant::now();
    pool.scope(|scope| {
        for task in 0..tasks {
            scope.spawn(move |_| {
                body(task);
            });
        }
        submitted();
    });
    start.elapsed()
}

fn threadpool<B>(workers: usize, tasks: u64, body: B, submitted: impl FnOnce()) -> Duration
where
    B: Fn(u64) -> u64 + Copy + Send + Sync + 'static,
{
    let pool = threadpool::ThreadPool::new(workers);
    let start = Instant::now();
    for task in 0..tasks {
        pool.execute(move || {
            body(task);
        });
    }
    submitted();
    pool.join();
    let elapsed = start.elapsed();
    assert_eq!(pool.panic_count(), 0);
    elapsed
}

fn crossbeam_channel<B>(workers: usize, tasks: u64, body: B, submitted: impl FnOnce()) -> Duration
where
    B: Fn(u64) -> u64 + Copy + Send + Sync + 'static,
{
    let (sender, receiver) = crossbeam_channel::unbounded::<u64>();
    let threads = spawn_workers(
        workers,
        move || receiver.recv().ok(),
        move |task| {
            body(task);
        },
    );
    feed(tasks, threads, submitted, move |task| {
        sender.send(task).expect("the workers are running")
    })
}

fn std_mpsc<B>(workers: usize, tasks: u64, body: B, submitted: impl FnOnce()) -> Duration
where
    B: Fn(u64) -> u64 + Copy + Send + Sync + 'static,
{
    let (sender, receiver) = mpsc::channel::<u64>();
    let receiver = Arc::new(Mutex::new(receiver));
    let receive = move || {
        // The guard is a temporary: the lock is released before the task runs.
        let message = receiver.lock().unwrap().recv();
        message.ok()
    };
    let threads = spawn_workers(workers, receive, move |task| {
        body(task);
    });
    feed(tasks, threads, submitted, move |task| {
        sender.send(task).expect("the workers are running")
    })
}

/// Starts `workers` threads of a channel pool. Each takes tasks with its own clone of
/// `receive` and runs them with `run` until `receive` says the channel is closed (`None`),
/// then returns how many it ran. The caller's `receive` is dropped here: once the threads
/// have theirs, only the senders keep the channel open.
pub fn spawn_workers<T, R, F>(workers: usize, receive: R, run: F) -> Vec<JoinHandle<u64>>
where
    R: FnMut() -> Option<T> + Clone + Send + 'static,
    F: FnMut(T) + Clone + Send + 'static,
{
    (0..workers)
        .map(|_| {
            let (mut receive, mut run) = (receive.clone(), run.clone());
            thread::spawn(move || {
                let mut done = 0u64;
                while let Some(task) = receive() {
                    run(task);
                    done += 1;
                }
                done
            })
        })
        .collect()
}

/// Sends tasks `0..tasks` with `send`, calls `submitted`, then drops `send` (closing the
/// channel) and joins the `workers`. Returns the time from the first send until the last
/// worker ended, after checking that the workers ran every task.
fn feed(
    tasks: u64,
    workers: Vec<JoinHandle<u64>>,
    submitted: impl FnOnce(),
    send: impl Fn(u64),
) -> Duration {
    let start = Instant::now();
    for task in 0..tasks {
        send(task);
    }
    submitted();
    drop(send);
    let done: u64 = workers.into_iter().map(|t| t.join().unwrap()).sum();
    let elapsed = start.elapsed();
    assert_eq!(done, tasks);
    elapsed
}
