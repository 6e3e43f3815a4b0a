//! Latency suite: how long from `submit` until a task starts, and until it completes, when
//! the workers are idle (parked): the wake-up latency.
//!
//! Two workers. Each sample: stamp the clock, submit one no-op task, spin until it reports
//! completion, then pause (long enough for every implementation's workers to go back to
//! sleep). Each round takes a batch of samples from a fresh pool of every implementation, in
//! paired rounds (see `stats.rs`): the p99 of each batch is the round's figure, and the
//! ratios are taken between p99s of the same round. p50 and p99.9 are over every sample of
//! every round (information). *Start* is stamped by the first statement of the task; *complete* where the
//! implementation delivers the outcome: foreman's sink (after the core recorded it), the
//! channel pools' worker loop after the task returned, and the end of the closure for rayon
//! and threadpool, which have no later hook.

use std::hint::spin_loop;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use bench_stats::quantile;
use foreman_rt::host::{threads::Pool, Event};
use foreman_rt::policy::Policy;

use crate::pools::spawn_workers;
use crate::report::{Options, Records};
use crate::stats::{paired, plan, Scenario};

const WORKERS: usize = 2;

/// Where the task stamps its start and completion (nanoseconds since `base`, 0 = not yet).
struct Stamps {
    base: Instant,
    start: AtomicU64,
    complete: AtomicU64,
}

impl Stamps {
    fn now(&self) -> u64 {
        // At least 1: 0 means "not yet".
        (self.base.elapsed().as_nanos() as u64).max(1)
    }
    fn started(&self) {
        // Relaxed: the submitter reads it after seeing `complete` with Acquire.
        self.start.store(self.now(), Ordering::Relaxed);
    }
    fn completed(&self) {
        // Release: publishes `start` to the submitter.
        self.complete.store(self.now(), Ordering::Release);
    }
}

/// A running pool that takes latency probes.
trait Probe {
    fn submit(&self);
}

struct ForemanProbe(Pool<(), (), (), 64, WORKERS>);

impl Probe for ForemanProbe {
    fn submit(&self) {
        self.0.submit(()).expect("the pool is running");
    }
}

fn foreman(stamps: Arc<Stamps>) -> Box<dyn Probe> {
    let in_task = Arc::clone(&stamps);
    let pool = Pool::start(
        Policy::DEFAULT,
        move |_, _| {
            in_task.started();
            Ok(())
        },
        move |event| {
            if let Event::Completed { .. } = event {
                stamps.completed();
            }
        },
    )
    .expect("cannot start the worker threads");
    Box::new(ForemanProbe(pool))
}

struct RayonProbe(rayon::ThreadPool, Arc<Stamps>);

impl Probe for RayonProbe {
    fn submit(&self) {
        let stamps = Arc::clone(&self.1);
        self.0.spawn(move || {
            stamps.started();
            stamps.completed();
        });
    }
}

fn rayon(stamps: Arc<Stamps>) -> Box<dyn Probe> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(WORKERS)
        .build()
        .expect("cannot start the worker threads");
    Box::new(RayonProbe(pool, stamps))
}

struct ThreadpoolProbe(threadpool::ThreadPool, Arc<Stamps>);

impl Probe for ThreadpoolProbe {
    fn submit(&self) {
        let stamps = Arc::clone(&self.1);
        self.0.execute(move || {
            stamps.started();
            stamps.completed();
        });
    }
}

fn threadpool(stamps: Arc<Stamps>) -> Box<dyn Probe> {
    Box::new(ThreadpoolProbe(
        threadpool::ThreadPool::new(WORKERS),
        stamps,
    ))
}

/// A channel pool: how to send one probe, and the workers, joined once the sender is gone.
struct ChannelProbe {
    send: Option<Box<dyn Fn()>>,
    workers: Vec<JoinHandle<u64>>,
}

impl ChannelProbe {
    /// A pool of [`WORKERS`] threads that take probes with `receive`; `send` sends one.
    fn start(
        stamps: Arc<Stamps>,
        receive: impl FnMut() -> Option<()> + Clone + Send + 'static,
        send: impl Fn() + 'static,
    ) -> Box<dyn Probe> {
        let workers = spawn_workers(WORKERS, receive, move |()| {
            stamps.started();
            stamps.completed();
        });
        Box::new(ChannelProbe {
            send: Some(Box::new(send)),
            workers,
        })
    }
}

impl Probe for ChannelProbe {
    fn submit(&self) {
        (self.send.as_ref().expect("sender present until drop"))();
    }
}

impl Drop for ChannelProbe {
    fn drop(&mut self) {
        self.send = None; // closes the channel: the workers leave their loops
        for worker in self.workers.drain(..) {
            worker.join().expect("a latency worker panicked");
        }
    }
}

fn crossbeam_channel(stamps: Arc<Stamps>) -> Box<dyn Probe> {
    let (sender, receiver) = crossbeam_channel::unbounded::<()>();
    ChannelProbe::start(
        stamps,
        move || receiver.recv().ok(),
        move || sender.send(()).expect("the workers are running"),
    )
}

fn std_mpsc(stamps: Arc<Stamps>) -> Box<dyn Probe> {
    let (sender, receiver) = mpsc::channel::<()>();
    let receiver = Arc::new(Mutex::new(receiver));
    ChannelProbe::start(
        stamps,
        move || {
            // The guard is a temporary: the lock is released before the probe runs.
            let message = receiver.lock().unwrap().recv();
            message.ok()
        },
        move || sender.send(()).expect("the workers are running"),
    )
}

type Start = fn(Arc<Stamps>) -> Box<dyn Probe>;

const CONTENDERS: [(&str, Start); 5] = [
    ("foreman", foreman),
    ("rayon", rayon),
    ("threadpool", threadpool),
    ("crossbeam-channel", crossbeam_channel),
    ("std-mpsc", std_mpsc),
];

/// Takes `samples` probes from a fresh pool: (submit→start, submit→complete) in nanoseconds.
fn probe(start_pool: Start, samples: usize, pause: Duration) -> Vec<(f64, f64)> {
    let stamps = Arc::new(Stamps {
        base: Instant::now(),
        start: AtomicU64::new(0),
        complete: AtomicU64::new(0),
    });
    let pool = start_pool(Arc::clone(&stamps));
    thread::sleep(pause * 10); // let every worker start and go to sleep
    let mut out = Vec::with_capacity(samples);
    for _ in 0..samples {
        stamps.start.store(0, Ordering::Relaxed);
        stamps.complete.store(0, Ordering::Relaxed);
        let submitted = stamps.now();
        pool.submit();
        let deadline = Instant::now() + Duration::from_secs(10);
        let complete = loop {
            // Acquire: pairs with `completed`, so `start` is visible below.
            let complete = stamps.complete.load(Ordering::Acquire);
            if complete != 0 {
                break complete;
            }
            assert!(Instant::now() < deadline, "a probe task never completed");
            spin_loop();
        };
        let start = stamps.start.load(Ordering::Relaxed);
        out.push(((start - submitted) as f64, (complete - submitted) as f64));
        thread::sleep(pause);
    }
    drop(pool);
    out
}

/// The p99 of `values` (sorted here).
fn p99(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    quantile(values, 0.99)
}

pub fn run(options: &Options, records: &mut Records) {
    let per_round = options.pick(100, 400);
    let pause = Duration::from_micros(options.pick(500, 1000));
    let kinds = ["submit-start", "submit-complete"];
    let scenario = Scenario {
        groups: kinds.map(|kind| format!("latency/{kind}/{WORKERS}w")),
        metrics: ["p99_ns", "p99_ns"],
        higher_is_better: false,
        // One task at a time: the worker that runs it, and the submitter spinning meanwhile.
        threads: 2,
    };
    let names = CONTENDERS.map(|(name, _)| name);
    // Every sample of every round, per contender: (submit→start, submit→complete).
    let mut all: Vec<Vec<(f64, f64)>> = vec![Vec::new(); CONTENDERS.len()];
    paired(records, &plan(options, 120), &scenario, &names, |i| {
        let samples = probe(CONTENDERS[i].1, per_round, pause);
        let mut starts: Vec<f64> = samples.iter().map(|s| s.0).collect();
        let mut completes: Vec<f64> = samples.iter().map(|s| s.1).collect();
        all[i].extend(samples);
        [p99(&mut starts), p99(&mut completes)]
    });
    for (k, group) in scenario.groups.iter().enumerate() {
        for (name, samples) in names.iter().zip(&all) {
            let mut values: Vec<f64> = samples
                .iter()
                .map(|s| if k == 0 { s.0 } else { s.1 })
                .collect();
            values.sort_by(f64::total_cmp);
            for (metric, q) in [("p50_ns", 0.5), ("p999_ns", 0.999)] {
                records.push(group, name, metric, quantile(&values, q), false);
            }
        }
    }
}
