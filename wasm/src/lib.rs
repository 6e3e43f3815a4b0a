//! # foreman-wasm
//!
//! foreman in the browser: the supervisor lives in the module's shared memory, each worker
//! slot runs on a Web Worker thread that instantiates the same module on the same memory, and
//! the page's main thread supervises — it feeds the queue, runs the watchdog, kills hung
//! workers, recovers crashed ones and starts their replacements. Nothing a worker was doing
//! is silently lost: the [ledger](tasks) records how every task ended.
//!
//! - [`host`]: the page's side ([`host::Demo`]): threads, supervision, the live view.
//! - `worker_main` (in `worker.rs`): a worker thread's loop.
//! - [`alloc`]: one heap per worker slot, so that a worker killed inside `malloc` cannot
//!   deadlock the others.
//! - [`park`]: idle workers sleep with `memory.atomic.wait32`.
//! - [`clock`]: a thread of its own ticks the supervisor's clock and watchdog, so that they
//!   never depend on the page's (throttled, stallable) main thread.
//! - [`picture`] and [`bench`]: the workload (Mandelbrot rows) and the benchmark against
//!   wasm-bindgen-rayon.
//!
//! Build it with `cargo xtask demo` (wasm-pack, `--target web`, shared memory; see
//! `.cargo/config.toml`); the page is in `web/`.

// `memory.atomic.wait32` and `memory.atomic.notify` (`core::arch::wasm32`) are still unstable
// (rust-lang/rust#77839). The crate needs a toolchain that rebuilds the standard library with
// atomics anyway (nightly, or a stable one with RUSTC_BOOTSTRAP=1), so it may use them.
#![feature(stdarch_wasm_atomic_wait)]

#[cfg(not(all(target_arch = "wasm32", target_feature = "atomics")))]
compile_error!(
    "foreman-wasm builds only for wasm32-unknown-unknown with shared memory: \
     run `cargo xtask demo`, or see wasm/.cargo/config.toml"
);

use foreman_rt::policy::{Delivery, Intensity, Policy, Restart};
use foreman_rt::Supervisor;
use wasm_bindgen::prelude::*;

pub mod alloc;
pub mod bench;
pub mod clock;
pub mod host;
pub mod park;
pub mod picture;
pub mod tasks;
mod worker;

pub use wasm_bindgen_rayon::init_thread_pool;
pub use worker::worker_main;

#[global_allocator]
static ALLOCATOR: alloc::Arenas = alloc::Arenas;

/// Worker slots: the most workers the page can run at once.
pub const MAX_WORKERS: usize = 8;
/// The queue's capacity.
pub const QUEUE: usize = 1024;
/// The watchdog's deadline: a task running longer is hung, and its worker is killed.
pub const WATCHDOG_MS: u32 = 1_000;
/// Restarts allowed within [`RESTART_WINDOW_MS`] before the supervisor escalates.
pub const MAX_RESTARTS: u8 = 8;
/// The window of the restart intensity.
pub const RESTART_WINDOW_MS: u32 = 10_000;
/// Runs of a task whose worker crashes before it is dead-lettered.
pub const MAX_ATTEMPTS: u32 = 3;

/// The demo's policy: permanent workers, at most [`MAX_RESTARTS`] restarts within
/// [`RESTART_WINDOW_MS`], at-least-once delivery with [`MAX_ATTEMPTS`] runs, and a watchdog of
/// [`WATCHDOG_MS`].
pub const POLICY: Policy = {
    let Ok(intensity) = Intensity::new(MAX_RESTARTS, RESTART_WINDOW_MS) else {
        panic!("invalid restart intensity")
    };
    let Ok(delivery) = Delivery::at_least_once(MAX_ATTEMPTS) else {
        panic!("invalid delivery")
    };
    let Ok(policy) = Policy::DEFAULT.with_watchdog(WATCHDOG_MS) else {
        panic!("invalid watchdog deadline")
    };
    policy
        .with_restart(Restart::Permanent)
        .with_intensity(intensity)
        .with_delivery(delivery)
};

/// The supervisor, in static (shared) memory: every thread of the module sees the same one.
pub(crate) static SUPERVISOR: Supervisor<tasks::Task, QUEUE, MAX_WORKERS, park::WasmPark> =
    Supervisor::new(POLICY, park::WasmPark);

/// Runs once, on the page's main thread, when the module is instantiated.
#[wasm_bindgen(start)]
fn start() {
    std::panic::set_hook(Box::new(panic_hook));
}

/// A panic on a worker thread leaves its message for the host (the thread then aborts); every
/// panic is also logged to the console of the thread where it happened.
fn panic_hook(info: &std::panic::PanicHookInfo<'_>) {
    if let Some(slot) = alloc::current_slot() {
        // Formatted straight into the slot's message buffer: no allocation.
        let payload = info.payload_as_str().unwrap_or("a panic without a message");
        match info.location() {
            Some(location) => tasks::record_panic(
                slot,
                format_args!("{payload} ({}:{})", location.file(), location.line()),
            ),
            None => tasks::record_panic(slot, format_args!("{payload}")),
        }
    }
    web_sys::console::error_1(&JsValue::from_str(&info.to_string()));
}

#[cfg(test)]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_dedicated_worker);

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn the_policy_is_what_the_page_says() {
        assert_eq!(POLICY.watchdog(), Some(WATCHDOG_MS));
        assert_eq!(POLICY.delivery().max_attempts(), Some(MAX_ATTEMPTS));
        assert_eq!(POLICY.intensity().max_restarts(), Some(MAX_RESTARTS));
        assert_eq!(POLICY.intensity().within(), Some(RESTART_WINDOW_MS));
    }
}
