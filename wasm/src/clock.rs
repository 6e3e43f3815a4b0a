//! The supervisor's clock, ticked by a thread of its own.
//!
//! The core stamps each task's start with the clock as of the last
//! [`tick`](foreman_rt::Supervisor::tick), and its watchdog flags a task whose stamp is older than
//! the deadline. So the clock must never stall: a tick that comes a second late would find every
//! task started in that second "older" than it is. The page's main thread cannot promise that:
//! browsers throttle its timers (to once a second, or once a minute, in a hidden tab), and a
//! long frame or a busy machine can stall it. A Web Worker sleeping in `memory.atomic.wait32`
//! with a timeout is not throttled; [`clock_main`] ticks every few milliseconds there, and is
//! the clock's only writer, so the clock never runs backwards.
//!
//! The clock thread flags hung workers (their slot's state becomes `Hung`); the page acts on
//! the flags ([`crate::host`]).

use core::sync::atomic::{AtomicU32, Ordering};

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::{park, SUPERVISOR};

/// The clock's last value: milliseconds since the clock thread started.
static NOW: AtomicU32 = AtomicU32::new(0);
/// Ticks so far (the page checks that the clock moves).
static TICKS: AtomicU32 = AtomicU32::new(0);
/// Set to stop the clock thread; it sleeps on this word.
static STOP: AtomicU32 = AtomicU32::new(0);

/// Ticks the supervisor every `period_ms` milliseconds until [`stop`]. Runs on a Web Worker
/// (`web/worker.js`, kind `"clock"`); fails at once anywhere else (it blocks).
#[wasm_bindgen]
pub fn clock_main(period_ms: u32) -> Result<(), JsError> {
    let performance = worker_performance()
        .ok_or_else(|| JsError::new("the clock blocks, so it runs on a Web Worker"))?;
    let started = performance.now();
    let period_ns = i64::from(period_ms.max(1)) * 1_000_000;
    loop {
        let now = (performance.now() - started) as u32;
        // Hangs are flagged in the slots' states; the page condemns them.
        let _newly_hung = SUPERVISOR.tick(now);
        // Relaxed: an advisory copy of the clock for the page; the supervisor has its own.
        NOW.store(now, Ordering::Relaxed);
        // Relaxed: a liveness counter.
        TICKS.fetch_add(1, Ordering::Relaxed);
        // Returns after the period, or at once when `stop` set the word.
        park::wait(&STOP, 0, period_ns);
        // Acquire: pairs with `stop`.
        if STOP.load(Ordering::Acquire) != 0 {
            return Ok(());
        }
    }
}

/// The clock as of its last tick, in milliseconds.
pub fn now() -> u32 {
    // Relaxed: see `clock_main`.
    NOW.load(Ordering::Relaxed)
}

/// How many times the clock ticked.
pub fn ticks() -> u32 {
    // Relaxed: see `clock_main`.
    TICKS.load(Ordering::Relaxed)
}

/// Stops the clock thread at its next wake-up (now, if it sleeps).
pub fn stop() {
    // Release: the stop is seen by the clock's Acquire load.
    STOP.store(1, Ordering::Release);
    park::notify_all(&STOP);
}

/// The calling thread's `performance`, if it is a Web Worker (`None` on the page's main
/// thread, which may not block).
pub(crate) fn worker_performance() -> Option<web_sys::Performance> {
    js_sys::global()
        .dyn_into::<web_sys::WorkerGlobalScope>()
        .ok()
        .and_then(|scope| scope.performance())
}
