//! An `embassy-time` driver on SysTick, for boards without a HAL that provides one.
//!
//! The firmware starts SysTick (`foreman_firmware::board::start_ticks`: an interrupt every
//! 10 000 core cycles) and calls [`on_tick`] from its SysTick handler. Each interrupt is one
//! embassy-time tick; the crate declares 1 kHz (`embassy-time-driver/tick-hz-1_000`), so under
//! QEMU a "millisecond" is 10 000 cycles. The count is 64 bits wide and never wraps.
//!
//! Timers live in `embassy-time-queue-utils`' generic queue behind a critical section. The
//! driver is periodic, not tickless: every tick wakes the timers that expired, so no alarm has
//! to be programmed (SysTick is the only timer this board model has for it).

use core::cell::{Cell, RefCell};
use core::task::Waker;

use critical_section::{CriticalSection, Mutex};
use embassy_time_driver::Driver;
use embassy_time_queue_utils::Queue;

/// The driver: the tick count and the timers waiting for a tick.
struct SysTickDriver {
    ticks: Mutex<Cell<u64>>,
    timers: Mutex<RefCell<Queue>>,
}

impl Driver for SysTickDriver {
    fn now(&self) -> u64 {
        // A u64 cannot be read in one instruction here: read it with interrupts masked.
        critical_section::with(|cs| self.ticks.borrow(cs).get())
    }

    fn schedule_wake(&self, at: u64, waker: &Waker) {
        critical_section::with(|cs| {
            let mut timers = self.timers.borrow_ref_mut(cs);
            // A time already reached wakes at once; later ones wait for `on_tick`.
            if timers.schedule_wake(at, waker) {
                timers.next_expiration(self.ticks.borrow(cs).get());
            }
        });
    }
}

embassy_time_driver::time_driver_impl!(static DRIVER: SysTickDriver = SysTickDriver {
    ticks: Mutex::new(Cell::new(0)),
    timers: Mutex::new(RefCell::new(Queue::new())),
});

/// Advances the clock by one tick and wakes the timers that expired. Call it from the SysTick
/// handler, once per interrupt. Returns the new time.
pub fn on_tick() -> u64 {
    critical_section::with(|cs| advance(cs, &DRIVER))
}

fn advance(cs: CriticalSection<'_>, driver: &SysTickDriver) -> u64 {
    let ticks = driver.ticks.borrow(cs);
    let now = ticks.get() + 1;
    ticks.set(now);
    driver.timers.borrow_ref_mut(cs).next_expiration(now);
    now
}
