//! # foreman-demo
//!
//! The live demo page's Rust, and foreman-wasm's first user: it reaches the library through
//! its public API only. Each task draws one row of the Mandelbrot set into a shared picture
//! (or, injected from the page, fails, panics, hangs or works slowly); a [`Pool`] of Web
//! Workers runs them under the supervisor; the page shows the supervisor, the workers, a
//! ledger that says how every task ended, the event log, and a benchmark against
//! wasm-bindgen-rayon.
//!
//! - [`demo`]: the page's `Demo` class: submissions, the event log, the view.
//! - [`work`]: what a worker does with a task (the pool's handler).
//! - [`ledger`]: the tasks and the ledger of their outcomes.
//! - [`picture`] and [`bench`]: the workload and the benchmark.
//!
//! Build and serve it with `cargo xtask demo`; the page is in `web/`.
//!
//! [`Pool`]: foreman_wasm::Pool

use foreman_wasm::policy::{Delivery, Intensity, Policy, Restart};
use foreman_wasm::WorkerHeaps;
use wasm_bindgen::prelude::*;

pub mod bench;
pub mod demo;
pub mod ledger;
pub mod picture;
pub mod work;

pub use wasm_bindgen_rayon::init_thread_pool;

#[global_allocator]
static ALLOCATOR: WorkerHeaps = WorkerHeaps;

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
/// Tasks a worker thread runs before a fresh one takes its slot over (recycling): the page
/// shows each recycled worker in its event log, about once a picture per worker.
pub const RECYCLE_AFTER: u32 = 1_000;

/// The demo's policy: permanent workers, at most [`MAX_RESTARTS`] restarts within
/// [`RESTART_WINDOW_MS`], at-least-once delivery with [`MAX_ATTEMPTS`] runs, a watchdog of
/// [`WATCHDOG_MS`], and each worker thread recycled after [`RECYCLE_AFTER`] tasks.
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
    let Ok(policy) = policy.with_recycling(RECYCLE_AFTER) else {
        panic!("invalid recycling quota")
    };
    policy
        .with_restart(Restart::Permanent)
        .with_intensity(intensity)
        .with_delivery(delivery)
};

/// Runs once, on the page's main thread, when the module is instantiated: every panic is
/// logged to the console of the thread where it happened (foreman-wasm chains its own hook,
/// which keeps a worker's panic message for the crash report, in front of this one).
#[wasm_bindgen(start)]
fn start() {
    std::panic::set_hook(Box::new(|info| {
        web_sys::console::error_1(&JsValue::from_str(&info.to_string()));
    }));
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
        assert_eq!(POLICY.recycling(), Some(RECYCLE_AFTER));
    }
}
