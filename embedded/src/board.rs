//! The board: which one this is, the tick (SysTick), sleeping, and leaving QEMU.
//!
//! Everything here is the same for both boards: SysTick is part of every Cortex-M core that
//! QEMU models, and semihosting works on both.

use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::{exception, ExceptionFrame};
use cortex_m_semihosting::{debug, hprintln};

/// The QEMU machine this image is built for (picked by `build.rs` from the target).
pub const NAME: &str = env!("FIRMWARE_BOARD");

/// The target this image is built for.
pub const TARGET: &str = env!("FIRMWARE_TARGET");

/// Processor clock cycles from one tick (SysTick interrupt) to the next.
pub const TICK_CYCLES: u32 = 10_000;

/// Ticks so far. Written only by the SysTick handler, through [`tick`].
static TICKS: AtomicU32 = AtomicU32::new(0);

/// The number of ticks so far. Once it reads `t`, everything the SysTick handler did for tick
/// `t` (the watchdog's verdict, a submitted task) is done and visible.
pub fn now() -> u32 {
    // Acquire: pairs with the Release store in `tick`.
    TICKS.load(Ordering::Acquire)
}

/// The body of a SysTick handler: runs `handler` for the next tick, then publishes that tick
/// to [`now`].
pub fn tick(handler: impl FnOnce(u32)) {
    // Relaxed: this handler is the only writer, and it cannot preempt itself.
    let next = TICKS.load(Ordering::Relaxed).wrapping_add(1);
    handler(next);
    // Release: a reader that sees `next` also sees what `handler` did.
    TICKS.store(next, Ordering::Release);
}

/// Starts SysTick: an interrupt every [`TICK_CYCLES`] processor cycles.
///
/// Returns `false` if the core peripherals were already taken (a programming error).
pub fn start_ticks() -> bool {
    let Some(peripherals) = cortex_m::Peripherals::take() else {
        return false;
    };
    let mut syst = peripherals.SYST;
    syst.set_clock_source(SystClkSource::Core);
    // SysTick counts down from the reload value to 0: `TICK_CYCLES - 1` gives the period.
    syst.set_reload(TICK_CYCLES - 1);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
    true
}

/// Sleeps until the next interrupt, unless `work_pending` finds something to do.
///
/// The check and the `WFI` run with interrupts masked. An interrupt that arrives after the
/// check therefore cannot run (and submit work) before the core sleeps; it stays pending, and a
/// pending interrupt wakes `WFI` even while masked. It then runs as soon as the mask is lifted,
/// before this function returns. So no submission is ever slept through.
pub fn sleep_unless(work_pending: impl FnOnce() -> bool) {
    cortex_m::interrupt::free(|_| {
        if !work_pending() {
            cortex_m::asm::wfi();
        }
    });
}

/// Ends a run that went to its end: prints `done`, the report's last line, and leaves QEMU
/// with exit status 0. The firmware reports what happened; whether that is right is for
/// whoever reads the report to say (`cargo xtask qemu` checks it against the script).
pub fn done() -> ! {
    hprintln!("done");
    exit(true)
}

/// Ends a run that cannot go on (the firmware could not start): prints `error: {what}` and
/// leaves QEMU with exit status 1, as a panic or a hard fault does.
pub fn fail(what: &str) -> ! {
    hprintln!("error: {}", what);
    exit(false)
}

/// Leaves QEMU through semihosting with exit status 0 (`success`) or 1.
pub fn exit(success: bool) -> ! {
    debug::exit(if success {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    // Without a debugger attached (real hardware), semihosting exit returns: stop here.
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    cortex_m::interrupt::disable();
    hprintln!("panic: {}", info);
    exit(false)
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    hprintln!("hard fault at pc={:#010x}", frame.pc());
    exit(false)
}
