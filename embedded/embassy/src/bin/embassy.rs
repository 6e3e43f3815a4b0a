//! foreman on embassy: a `static` [`Host`] whose workers are embassy tasks.
//!
//! - **Producers.** The SysTick interrupt (also embassy-time's clock, see
//!   `foreman_firmware_embassy::time`) offers the first half of the script, one task per tick,
//!   with [`Host::try_submit`]; a refused task comes back and is offered again at the next
//!   tick. An async producer task submits the second half with [`Host::submit`], which awaits
//!   room while the queue is full.
//! - **Workers.** Two embassy tasks each await [`Host::run_worker`] with this firmware's task
//!   function, `work`, and its sink, `record`. Most tasks await their "peripheral" for a few
//!   ticks and compute; some fault (retried by the replacement, dead-lettered after three runs),
//!   some return an error (final), some run long with heartbeats, and a *slow* task's first run
//!   awaits a peripheral that never answers.
//! - **Watchdog.** A third task runs [`Host::watchdog`]: it finds the slow task's future hung,
//!   and the worker loop drops it (cancels it) and recovers the task as a crash: its retry runs
//!   on the replacement.
//! - **End.** Once every task is accepted, `main` awaits [`Host::drain`]; both producers then
//!   offer one late task each, which must be refused as closed. The counters are checked against
//!   the ledger, the producers' counts and the script, and QEMU exits with status 0 only if it
//!   all adds up.

#![no_std]
#![no_main]

use core::cell::{Cell, RefCell};
use core::mem::size_of_val;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use cortex_m_rt::exception;
use cortex_m_semihosting::hprintln;
use critical_section::Mutex;
use embassy_executor::{SpawnError, SpawnToken, Spawner};
use embassy_time::{Instant, Timer};
use foreman_firmware::board;
use foreman_firmware::producer::Refused;
use foreman_firmware::script::{kind, Kind, DEADLINE, TASKS};
use foreman_firmware::workload::{Outcome, Task};
use foreman_firmware_embassy::ledger::{self, End, Ledger};
use foreman_firmware_embassy::script::{self, read, update, Late, Offers, Submits, SPLIT};
use foreman_firmware_embassy::time;
use foreman_rt::host::embassy::{Cause, Exit, Failure, Hangs, Host};
use foreman_rt::host::Event;
use foreman_rt::policy::{Delivery, Intensity, Policy};
use foreman_rt::{
    Context, Decision, Disposition, Shutdown, SubmitError, SupervisorState, WorkerState,
};

/// Worker slots, one embassy task each.
const WORKERS: usize = 2;
/// Queue capacity (a power of two).
const CAPACITY: usize = 8;
/// Runs allowed per task, the first included.
const MAX_ATTEMPTS: u32 = 3;

/// At-least-once delivery with 3 runs per task; permanent workers; the watchdog (ticks are
/// milliseconds of embassy-time, here SysTick interrupts). The script crashes 3 × 1 (flaky)
/// + 2 × 3 (poison) + 2 × 1 (hung) = 11 times, fewer than the 16 restarts the intensity allows.
const POLICY: Policy = {
    let Ok(delivery) = Delivery::at_least_once(MAX_ATTEMPTS) else {
        panic!("invalid delivery")
    };
    let Ok(intensity) = Intensity::new(16, 1_000) else {
        panic!("invalid intensity")
    };
    let policy = Policy::DEFAULT
        .with_delivery(delivery)
        .with_intensity(intensity);
    let Ok(policy) = policy.with_watchdog(DEADLINE) else {
        panic!("invalid watchdog deadline")
    };
    policy
};

/// The host: the supervisor, and the wakers of its workers and producers.
static HOST: Host<Task, CAPACITY, WORKERS> = Host::new(POLICY, Hangs::Cancel);

/// How every task ended, kept by the sink of both worker tasks.
static LEDGER: Mutex<RefCell<Ledger>> = Mutex::new(RefCell::new(Ledger::new()));

/// The interrupt's offers.
static ISR: Mutex<Cell<Offers>> = Mutex::new(Cell::new(Offers::new()));

/// The async producer's counts.
static PRODUCER: Mutex<Cell<Submits>> = Mutex::new(Cell::new(Submits::new()));

/// What the sink saw of crashes.
static CRASHES: Mutex<Cell<Crashes>> = Mutex::new(Cell::new(Crashes::new()));

/// Per worker, the task it runs (`id << 8 | attempt`): the sink names the task of a crash
/// report by it (a retried task stays in the slot, so the report does not carry it).
static RUNNING: [AtomicU32; WORKERS] = [const { AtomicU32::new(0) }; WORKERS];

/// Per worker, why its loop returned.
static EXITS: Mutex<Cell<[Option<Exit>; WORKERS]>> = Mutex::new(Cell::new([None; WORKERS]));

/// Set when the watchdog task returned (after the stop).
static WATCHDOG_DONE: AtomicBool = AtomicBool::new(false);

/// Crashes as the sink saw them.
#[derive(Clone, Copy)]
struct Crashes {
    faults: u32,
    /// Hung tasks the watchdog had cancelled.
    hangs: u32,
    /// The tasks that were cancelled, one bit per id.
    hung_tasks: u64,
}

impl Crashes {
    const fn new() -> Self {
        Crashes {
            faults: 0,
            hangs: 0,
            hung_tasks: 0,
        }
    }
}

#[exception]
fn SysTick() {
    time::on_tick();
    let closing = HOST.supervisor().state() != SupervisorState::Running;
    update(&ISR, |offers| {
        offers.offer(closing, |task| {
            HOST.try_submit(task).map_err(|err| match err {
                SubmitError::Full(task) => Refused::Full(task),
                SubmitError::Closed(task) => Refused::Closed(task),
            })
        })
    });
}

/// One run of one task: what the host's worker loop awaits for each task.
async fn work(task: &Task, ctx: Context<'_>) -> Result<u32, Failure<&'static str>> {
    let (id, attempt) = (task.id, ctx.attempt());
    // Relaxed: read by the sink, on this same task, after this run ended.
    RUNNING[ctx.worker()].store(id << 8 | attempt, Ordering::Relaxed);
    match script::run(*task, attempt, || ctx.heartbeat()).await {
        Outcome::Done(result) => Ok(result),
        Outcome::Invalid => Err(Failure::Error("invalid input")),
        Outcome::Fault => Err(Failure::Fault("fault")),
    }
}

/// The sink of both worker loops: records every outcome in the ledger.
fn record(event: Event<Task, u32, &'static str, Cause<&'static str>>) {
    critical_section::with(|cs| {
        let mut ledger = LEDGER.borrow_ref_mut(cs);
        match event {
            Event::Completed { task, output, .. } => ledger.completed(task.id, output),
            Event::Failed { task, error, .. } => {
                hprintln!("task {}: {}: failed (final, not retried)", task.id, error);
                ledger.end(task.id, End::Failed);
            }
            Event::Crashed {
                worker,
                cause,
                task,
                decision,
            } => crashed(&mut ledger, worker, cause, task, decision),
            Event::Hung { worker, .. } => ledger.anomaly(format_args!(
                "worker {worker} reported hung: this host cancels hangs"
            )),
            _ => ledger.anomaly(format_args!("an event of an unknown kind")),
        }
    });
}

/// Records a crash report: checks what became of the task against the policy.
fn crashed(
    ledger: &mut Ledger,
    worker: usize,
    cause: Cause<&'static str>,
    task: Option<Disposition<Task>>,
    decision: Decision,
) {
    // Relaxed: stored by this worker's task function before it ended.
    let running = RUNNING[worker].load(Ordering::Relaxed);
    let (id, attempt) = (running >> 8, running & 0xFF);
    let (what, done) = match cause {
        Cause::Fault(_) => {
            update(&CRASHES, |c| c.faults += 1);
            ("fault", "")
        }
        Cause::Hung => {
            update(&CRASHES, |c| {
                c.hangs += 1;
                c.hung_tasks |= 1 << id;
            });
            ("hung", "cancelled by the watchdog, ")
        }
        _ => {
            ledger.anomaly(format_args!("worker {worker}: a crash of an unknown cause"));
            ("crash", "")
        }
    };
    if decision != Decision::Replace {
        ledger.anomaly(format_args!("worker {worker} not replaced: {decision:?}"));
    }
    match task {
        Some(Disposition::Retried { attempt: retry }) if retry == attempt + 1 => hprintln!(
            "task {}: {} on attempt {} (worker {}): {}retried as attempt {} by the replacement",
            id,
            what,
            attempt,
            worker,
            done,
            retry
        ),
        Some(Disposition::DeadLettered {
            task: back,
            attempts,
        }) if back.id == id && attempts == MAX_ATTEMPTS => {
            hprintln!(
                "task {}: {} on attempt {} (worker {}): {}dead-lettered after {} attempts",
                id,
                what,
                attempt,
                worker,
                done,
                attempts
            );
            ledger.end(id, End::DeadLettered);
        }
        _ => ledger.anomaly(format_args!(
            "task {id}: {what} on attempt {attempt}: not retried, not dead-lettered as expected"
        )),
    }
}

#[embassy_executor::task(pool_size = WORKERS)]
async fn worker(index: usize) {
    let exit = HOST.run_worker(index, work, record).await;
    update(&EXITS, |exits| exits[index] = Some(exit));
}

#[embassy_executor::task]
async fn watchdog() {
    HOST.watchdog().await;
    // Relaxed: main only polls the flag; nothing is published with it.
    WATCHDOG_DONE.store(true, Ordering::Relaxed);
}

/// Submits the second half of the script, awaiting room; then, once the drain began, one late
/// task, which must be refused.
#[embassy_executor::task]
async fn producer() {
    for id in SPLIT..TASKS {
        if HOST.supervisor().queued() == CAPACITY {
            update(&PRODUCER, |p| p.waited += 1);
        }
        match HOST.submit(Task { id }).await {
            Ok(()) => update(&PRODUCER, |p| p.accepted += 1),
            Err(_) => critical_section::with(|cs| {
                LEDGER
                    .borrow_ref_mut(cs)
                    .anomaly(format_args!("task {id}: refused while running"))
            }),
        }
    }
    while HOST.supervisor().state() == SupervisorState::Running {
        Timer::after_ticks(1).await;
    }
    let late = Task { id: TASKS + 1 };
    let refused = HOST.submit(late).await == Err(SubmitError::Closed(late));
    update(&PRODUCER, |p| {
        p.closed += u32::from(refused);
        p.done = true;
    });
}

/// Spawns a task, or records why it could not be.
fn spawn<S>(spawner: Spawner, token: Result<SpawnToken<S>, SpawnError>) {
    match token {
        Ok(token) => spawner.spawn(token),
        Err(err) => critical_section::with(|cs| {
            LEDGER
                .borrow_ref_mut(cs)
                .anomaly(format_args!("cannot spawn a task: {err:?}"))
        }),
    }
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    hprintln!(
        "foreman-firmware embassy: board={} target={} workers={} capacity={} tasks={} deadline={} max_attempts={}",
        board::NAME,
        board::TARGET,
        WORKERS,
        CAPACITY,
        TASKS,
        DEADLINE,
        MAX_ATTEMPTS
    );
    hprintln!(
        "ram: host={} ledger={} offers={} submits={}",
        size_of_val(&HOST),
        size_of_val(&LEDGER),
        size_of_val(&ISR),
        size_of_val(&PRODUCER)
    );
    if !board::start_ticks() {
        critical_section::with(|cs| {
            LEDGER
                .borrow_ref_mut(cs)
                .anomaly(format_args!("the core peripherals were taken already"))
        });
    }
    for index in 0..WORKERS {
        spawn(spawner, worker(index));
    }
    spawn(spawner, watchdog());
    spawn(spawner, producer());

    // Every task of the script accepted, then the drain.
    while read(&ISR).next < SPLIT || read(&PRODUCER).accepted < TASKS - SPLIT {
        Timer::after_ticks(1).await;
    }
    let shutdown = HOST.drain().await;
    // The late offers, the ends of the worker loops and of the watchdog.
    while read(&ISR).late == Late::NotYet
        || !read(&PRODUCER).done
        || read(&EXITS).contains(&None)
        // Relaxed: see `watchdog`.
        || !WATCHDOG_DONE.load(Ordering::Relaxed)
    {
        Timer::after_ticks(1).await;
    }
    let ok = critical_section::with(|cs| report(&LEDGER.borrow_ref(cs), shutdown));
    ledger::finish(ok)
}

/// Prints the host's counters, the producers' counts and the ledger, and checks them against
/// each other and against the script. Returns whether everything adds up.
fn report(ledger: &Ledger, shutdown: Shutdown) -> bool {
    let snap = HOST.snapshot();
    let isr = read(&ISR);
    let producer = read(&PRODUCER);
    let crashes = read(&CRASHES);
    let exits = read(&EXITS);

    hprintln!(
        "isr: ticks={} accepted={} full={} closed={} mismatched={} late_accepted={}",
        Instant::now().as_ticks(),
        isr.next,
        isr.full,
        isr.closed,
        isr.mismatched,
        isr.late == Late::Accepted
    );
    hprintln!(
        "producer: accepted={} waited={} closed={}",
        producer.accepted,
        producer.waited,
        producer.closed
    );
    hprintln!(
        "counters: state={} submitted={} completed={} failed={} dead_lettered={} lost={} handed_back={} queued={} in_flight={} requeued={} rejected={} crashes={} restarts={} adds_up={}",
        snap.state,
        snap.submitted,
        snap.completed,
        snap.failed,
        snap.dead_lettered,
        snap.lost,
        snap.handed_back,
        snap.queued,
        snap.in_flight,
        snap.requeued,
        snap.rejected,
        snap.crashes(),
        snap.restarts(),
        snap.adds_up()
    );
    for (index, worker) in snap.workers.iter().enumerate() {
        hprintln!(
            "worker {}: state={} completed={} failed={} crashes={} restarts={} exit={:?}",
            index,
            worker.state,
            worker.completed,
            worker.failed,
            worker.crashes,
            worker.restarts,
            exits[index]
        );
    }
    hprintln!(
        "watchdog: cancelled={} hung_tasks={:#x} faults={}",
        crashes.hangs,
        crashes.hung_tasks,
        crashes.faults
    );

    let count = |wanted: Kind| (0..TASKS).filter(|&id| kind(id) == wanted).count() as u32;
    let slow_ids = (0..TASKS)
        .filter(|&id| kind(id) == Kind::Slow)
        .fold(0u64, |bits, id| bits | 1 << id);
    let faults = count(Kind::Flaky) + count(Kind::Poison) * MAX_ATTEMPTS;
    let hangs = count(Kind::Slow);
    let tally = |end: End| ledger.count(end) as usize;

    let ok = ledger.check(|kind| match kind {
        Kind::Compute | Kind::Flaky | Kind::Slow | Kind::Steady => End::Completed,
        Kind::Invalid => End::Failed,
        Kind::Poison => End::DeadLettered,
    });
    let checks_ok = foreman_firmware_embassy::confirm! {
        "the counters add up" => snap.adds_up(),
        "stopped by the drain" =>
            shutdown == Shutdown::Drain
                && snap.state == SupervisorState::Stopped(Shutdown::Drain),
        "every task of the script submitted once" =>
            snap.submitted == TASKS as usize
                && isr.next == SPLIT
                && producer.accepted == TASKS - SPLIT,
        "the host's outcomes match the ledger" =>
            snap.completed == tally(End::Completed)
                && snap.failed == tally(End::Failed)
                && snap.dead_lettered == tally(End::DeadLettered),
        "nothing lost, handed back, queued or in flight" =>
            snap.lost + snap.handed_back + snap.queued + snap.in_flight == 0,
        "every refusal counted on both sides, awaiting room never" =>
            snap.rejected == (isr.full + isr.closed + producer.closed) as usize
                && isr.mismatched == 0,
        "the queue was full for the interrupt, and the producer awaited room" =>
            isr.full > 0
                && producer.waited > 0,
        "both late tasks refused as closed" =>
            isr.late == Late::Refused
                && isr.closed == 1
                && producer.closed == 1,
        "one crash per faulty or hung run, each replaced" =>
            crashes.faults == faults
                && snap.crashes() == faults + hangs
                && snap.restarts() == faults + hangs,
        "exactly the slow tasks cancelled as hung, once each" =>
            crashes.hangs == hangs
                && crashes.hung_tasks == slow_ids,
        "every worker left after the drain" =>
            snap.workers.iter().all(|w| w.state == WorkerState::Exited)
                && exits.iter().all(|exit| *exit == Some(Exit::Left)),
    };
    // Every check runs (and prints if it failed), whatever the ledger's verdict.
    checks_ok && ok
}
