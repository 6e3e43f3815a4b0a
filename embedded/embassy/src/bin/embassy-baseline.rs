//! The embassy firmware without foreman: the reference for foreman's footprint on embassy.
//!
//! The same producers offer the same tasks to an `embassy-sync` channel (the interrupt with
//! `try_send`, the async producer with `send`, which awaits room); two worker tasks receive
//! them and run each once under a timeout longer than the longest task. There is no supervisor:
//! a task that faults or hangs is counted as crashed (no retry, no dead letter), and shutting
//! down is a flag the workers poll. Everything else — board, script, ledger, output — is what
//! `embassy` uses.

#![no_std]
#![no_main]

use core::cell::{Cell, RefCell};
use core::mem::size_of_val;
use core::sync::atomic::{AtomicBool, Ordering};

use cortex_m_rt::exception;
use cortex_m_semihosting::hprintln;
use critical_section::Mutex;
use embassy_executor::{SpawnError, SpawnToken, Spawner};
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::channel::{Channel, TrySendError};
use embassy_time::{with_timeout, Duration, Instant, Timer};
use foreman_firmware::board;
use foreman_firmware::producer::Refused;
use foreman_firmware::script::{Kind, DEADLINE, TASKS};
use foreman_firmware::workload::{Outcome, Task};
use foreman_firmware_embassy::ledger::{self, End, Ledger};
use foreman_firmware_embassy::script::{self, read, update, Late, Offers, Submits, SPLIT};
use foreman_firmware_embassy::time;

/// Worker tasks.
const WORKERS: usize = 2;
/// Channel capacity: the same as `embassy`'s queue.
const CAPACITY: usize = 8;

/// Tasks offered and not yet taken.
static CHANNEL: Channel<CriticalSectionRawMutex, Task, CAPACITY> = Channel::new();

/// Set once no more tasks are taken in; the workers leave when they find the channel empty.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// How every task ended, kept by both worker tasks.
static LEDGER: Mutex<RefCell<Ledger>> = Mutex::new(RefCell::new(Ledger::new()));

/// The interrupt's offers.
static ISR: Mutex<Cell<Offers>> = Mutex::new(Cell::new(Offers::new()));

/// The async producer's counts.
static PRODUCER: Mutex<Cell<Submits>> = Mutex::new(Cell::new(Submits::new()));

/// Worker tasks that returned.
static LEFT: Mutex<Cell<usize>> = Mutex::new(Cell::new(0));

/// Whether the flag says closed.
fn closed() -> bool {
    // Relaxed: a flag with nothing to publish; the channel's critical sections order the tasks.
    CLOSED.load(Ordering::Relaxed)
}

#[exception]
fn SysTick() {
    time::on_tick();
    update(&ISR, |offers| {
        offers.offer(closed(), |task| {
            if closed() {
                return Err(Refused::Closed(task));
            }
            CHANNEL
                .try_send(task)
                .map_err(|TrySendError::Full(task)| Refused::Full(task))
        })
    });
}

#[embassy_executor::task(pool_size = WORKERS)]
async fn worker() {
    loop {
        // Wait a tick at most, so that a closed, empty channel is noticed.
        match with_timeout(Duration::from_ticks(1), CHANNEL.receive()).await {
            Ok(task) => run(task).await,
            Err(_) if closed() && CHANNEL.is_empty() => break,
            Err(_) => {}
        }
    }
    update(&LEFT, |left| *left += 1);
}

/// Runs a task once, under a timeout, and records how it ended. Without heartbeats a timeout
/// cannot tell a long task from a hung one, so it must outlast the longest (a steady task runs
/// twice the deadline).
async fn run(task: Task) {
    let deadline = Duration::from_ticks(4 * u64::from(DEADLINE));
    let outcome = with_timeout(deadline, script::run(task, 1, || {})).await;
    critical_section::with(|cs| {
        let mut ledger = LEDGER.borrow_ref_mut(cs);
        match outcome {
            Ok(Outcome::Done(result)) => ledger.completed(task.id, result),
            Ok(Outcome::Invalid) => {
                hprintln!("task {}: invalid input: failed", task.id);
                ledger.end(task.id, End::Failed);
            }
            Ok(Outcome::Fault) => {
                hprintln!("task {}: fault: crashed (no retry)", task.id);
                ledger.end(task.id, End::Crashed);
            }
            Err(_) => {
                hprintln!("task {}: timed out: crashed (no retry)", task.id);
                ledger.end(task.id, End::Crashed);
            }
        }
    });
}

/// Sends a task unless closed, awaiting room.
async fn send(task: Task) -> Result<(), Refused> {
    if closed() {
        return Err(Refused::Closed(task));
    }
    CHANNEL.send(task).await;
    Ok(())
}

/// Sends the second half of the script, awaiting room; then, once closed, one late task,
/// which must be refused.
#[embassy_executor::task]
async fn producer() {
    for id in SPLIT..TASKS {
        if CHANNEL.is_full() {
            update(&PRODUCER, |p| p.waited += 1);
        }
        match send(Task { id }).await {
            Ok(()) => update(&PRODUCER, |p| p.accepted += 1),
            Err(_) => critical_section::with(|cs| {
                LEDGER
                    .borrow_ref_mut(cs)
                    .anomaly(format_args!("task {id}: refused while open"))
            }),
        }
    }
    while !closed() {
        Timer::after_ticks(1).await;
    }
    let late = Task { id: TASKS + 1 };
    let refused = send(late).await == Err(Refused::Closed(late));
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
        "foreman-firmware embassy-baseline: board={} target={} capacity={} tasks={} deadline={}",
        board::NAME,
        board::TARGET,
        CAPACITY,
        TASKS,
        DEADLINE
    );
    hprintln!(
        "ram: channel={} ledger={} offers={} submits={}",
        size_of_val(&CHANNEL),
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
    for _ in 0..WORKERS {
        spawn(spawner, worker());
    }
    spawn(spawner, producer());

    while read(&ISR).next < SPLIT || read(&PRODUCER).accepted < TASKS - SPLIT {
        Timer::after_ticks(1).await;
    }
    // Relaxed: see `closed`.
    CLOSED.store(true, Ordering::Relaxed);
    while read(&ISR).late == Late::NotYet || !read(&PRODUCER).done || read(&LEFT) < WORKERS {
        Timer::after_ticks(1).await;
    }
    let ok = critical_section::with(|cs| report(&LEDGER.borrow_ref(cs)));
    ledger::finish(ok)
}

/// Prints the producers' counts and the ledger, and checks them. Returns whether all is well.
fn report(ledger: &Ledger) -> bool {
    let isr = read(&ISR);
    let producer = read(&PRODUCER);
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
    let ok = ledger.check(|kind| match kind {
        Kind::Compute | Kind::Steady => End::Completed,
        Kind::Invalid => End::Failed,
        Kind::Flaky | Kind::Poison | Kind::Slow => End::Crashed,
    });
    let checks_ok = foreman_firmware_embassy::confirm! {
        "every task of the script accepted once" =>
            isr.next == SPLIT
                && producer.accepted == TASKS - SPLIT,
        "the right task handed back" => isr.mismatched == 0,
        "the channel was full for the interrupt, and the producer awaited room" =>
            isr.full > 0
                && producer.waited > 0,
        "both late tasks refused" =>
            isr.late == Late::Refused
                && isr.closed == 1
                && producer.closed == 1,
        "every worker left" => read(&LEFT) == WORKERS,
    };
    // Every check runs (and prints if it failed), whatever the ledger's verdict.
    checks_ok && ok
}
