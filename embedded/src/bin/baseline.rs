//! The same firmware without foreman: the reference for foreman's footprint.
//!
//! The same SysTick handler offers the same tasks, one per tick, to a plain ring buffer
//! (`heapless::Deque` behind a critical section); the main loop takes them one at a time,
//! runs each once, and sleeps with `WFI` when the buffer is empty. There is no supervisor: a
//! task that faults is simply counted as crashed (no retry), nothing watches for overruns, and
//! shutting down is a flag. Everything else — board, script, producer, the report's lines —
//! is the code `supervised` uses. Like every image, it reports and does not judge: `cargo xtask
//! qemu` checks the report against the script.

#![no_std]
#![no_main]

use core::cell::RefCell;
use core::mem::size_of_val;
use core::sync::atomic::{AtomicBool, Ordering};

use cortex_m_rt::{entry, exception};
use cortex_m_semihosting::hprintln;
use critical_section::Mutex;
use heapless::Deque;

use foreman_firmware::board;
use foreman_firmware::producer::{Producer, Refused};
use foreman_firmware::script::{DEADLINE, TASKS};
use foreman_firmware::workload::{self, Task};

/// Ring buffer capacity: the same as `supervised`'s queue.
const CAPACITY: usize = 8;

/// Tasks offered by the handler and not yet taken by the main loop.
static QUEUE: Mutex<RefCell<Deque<Task, CAPACITY>>> = Mutex::new(RefCell::new(Deque::new()));

/// Set once the main loop stops taking new tasks.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// The interrupt side's progress through the script.
static PRODUCER: Producer = Producer::new();

#[exception]
fn SysTick() {
    board::tick(|_now| PRODUCER.on_tick(submit));
}

/// Queues a task, or hands it back if the buffer is full or closed.
fn submit(task: Task) -> Result<(), Refused> {
    critical_section::with(|cs| {
        // Relaxed: read and written inside critical sections, which order it.
        if CLOSED.load(Ordering::Relaxed) {
            return Err(Refused::Closed(task));
        }
        QUEUE
            .borrow_ref_mut(cs)
            .push_back(task)
            .map_err(Refused::Full)
    })
}

#[entry]
fn main() -> ! {
    hprintln!(
        "foreman-firmware baseline: board={} target={} capacity={} tasks={} deadline={}",
        board::NAME,
        board::TARGET,
        CAPACITY,
        TASKS,
        DEADLINE
    );
    hprintln!(
        "ram: queue={} closed={} producer={}",
        size_of_val(&QUEUE),
        size_of_val(&CLOSED),
        size_of_val(&PRODUCER)
    );

    if !board::start_ticks() {
        board::fail("the core peripherals were taken already");
    }
    loop {
        let next = critical_section::with(|cs| QUEUE.borrow_ref_mut(cs).pop_front());
        // Relaxed loads and store of CLOSED here: the main loop is its only writer, and on one
        // core the critical sections (compiler fences) of `submit` and of the pop order it.
        match next {
            Some(task) => run(task),
            None if CLOSED.load(Ordering::Relaxed) => break,
            None => board::sleep_unless(|| {
                critical_section::with(|cs| !QUEUE.borrow_ref(cs).is_empty())
            }),
        }
        if !CLOSED.load(Ordering::Relaxed) && PRODUCER.all_accepted() {
            CLOSED.store(true, Ordering::Relaxed);
            PRODUCER.want_late();
        }
    }
    PRODUCER.wait_late();

    PRODUCER.report().print();
    board::done()
}

/// Runs a task once and reports how it ended.
fn run(task: Task) {
    workload::report_end(task, workload::run(task, 1, || {}));
}
