//! Where threads enter the module: the library's worker script (`src/worker.js`, shipped as a
//! wasm-bindgen snippet), the two entry points it calls, and what a thread may ask of the
//! page.
//!
//! A pool's threads run generic code (the app's handler), but an entry point exported to
//! JavaScript cannot be generic. So the pool hands each thread the address of its
//! type-erased [`Body`] (which the pool keeps alive until the thread is proven gone), and the
//! entry points call through it.

use std::sync::Arc;

use foreman_rt::policy::Tick;
use js_sys::JsString;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::heap::{self, HeapId};
use crate::park;

/// What a pool's threads run: implemented by the pool's shared state.
pub(crate) trait Body: Send + Sync {
    /// Runs worker `slot` on the calling thread until the supervisor tells it to leave.
    fn run_worker(&self, slot: usize);
    /// One tick of the clock (milliseconds since the pool started). Returns `false` once the
    /// clock must stop.
    fn tick(&self, now: Tick) -> bool;
    /// The word the clock thread sleeps on between ticks; a stop notifies it.
    fn clock_word(&self) -> &core::sync::atomic::AtomicU32;
}

/// The address of a body as the thread script passes it back.
pub(crate) type BodyAddress = u32;

/// The address to give a worker thread for `body`, which lives in a box of the pool's: the
/// pool keeps it alive (and in place) until every thread that got its address is gone.
pub(crate) fn address(body: &Arc<dyn Body>) -> BodyAddress {
    body as *const Arc<dyn Body> as BodyAddress
}

/// A body for the clock thread, which owns it: [`clock_entry`] drops it when the clock stops.
/// (A clock thread that fails to load leaks it.)
pub(crate) fn give(body: Arc<dyn Body>) -> BodyAddress {
    Box::into_raw(Box::new(body)) as BodyAddress
}

/// Takes back a body [`give`]n to a clock thread that could not be started.
///
/// # Safety
///
/// `address` came from [`give`], and no thread got it.
pub(crate) unsafe fn take_back(address: BodyAddress) {
    // SAFETY: the caller's contract: the box is ours again.
    drop(unsafe { Box::from_raw(address as *mut Arc<dyn Body>) });
}

/// The body at `address`.
///
/// # Safety
///
/// `address` came from [`address`], and the pool keeps that box alive while this thread runs.
unsafe fn body<'a>(address: BodyAddress) -> &'a Arc<dyn Body> {
    // SAFETY: the caller's contract.
    unsafe { &*(address as *const Arc<dyn Body>) }
}

#[wasm_bindgen(module = "/src/worker.js")]
extern "C" {
    /// Starts a module Web Worker running the thread script (`src/worker.js`).
    #[wasm_bindgen(js_name = startThread, catch)]
    pub(crate) fn start_thread(name: &str, init: &JsValue) -> Result<web_sys::Worker, JsValue>;
}

#[wasm_bindgen]
extern "C" {
    /// The URL of the app's JavaScript glue (`import.meta.url` there): threads import it.
    #[wasm_bindgen(thread_local_v2, js_namespace = ["import", "meta"], js_name = url)]
    static MAIN_JS: JsString;
}

/// The URL of the app's JavaScript glue.
pub(crate) fn main_js() -> JsString {
    MAIN_JS.with(Clone::clone)
}

/// The message a thread posts to wake the page (see [`crate::outbox`]): a number, which the
/// page tells from the thread script's messages (objects) without reading any text. The page
/// is woken up to once per burst of outcomes, so this is on the hot path.
pub(crate) const WAKE: f64 = 0.0;

std::thread_local! {
    /// This thread's global scope, if it is a Web Worker (looked up once per thread).
    static WORKER_SCOPE: Option<web_sys::DedicatedWorkerGlobalScope> =
        js_sys::global().dyn_into().ok();
    /// This thread's `performance` and its `timeOrigin` (looked up once per thread).
    static PERFORMANCE: Option<(web_sys::Performance, f64)> =
        js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("performance"))
            .ok()
            .and_then(|value| value.dyn_into::<web_sys::Performance>().ok())
            .map(|performance| {
                let origin = performance.time_origin();
                (performance, origin)
            });
}

/// Wakes the page's thread: posts [`WAKE`] from this Web Worker.
pub(crate) fn wake_page() {
    WORKER_SCOPE.with(|scope| {
        if let Some(scope) = scope {
            // Fails only if the page is going away: nobody to wake then.
            let _ = scope.post_message(&JsValue::from_f64(WAKE));
        }
    });
}

/// A worker thread's entry point (called by the thread script, never by an app).
#[doc(hidden)]
#[wasm_bindgen(js_name = __foreman_worker)]
pub fn worker_entry(
    body: BodyAddress,
    slot: u32,
    heap: u32,
    stack_alloc: u32,
    stack_size: u32,
) -> Result<(), JsError> {
    let heap = HeapId::from_number(heap)
        .ok_or_else(|| JsError::new(&format!("worker {slot}: no such heap {heap}")))?;
    heap::register(heap, stack_alloc, stack_size)
        .map_err(|err| JsError::new(&format!("worker {slot} cannot start: {err}")))?;
    // SAFETY: the pool passed this body's address and keeps it alive until this thread is
    // proven gone.
    unsafe { self::body(body) }.run_worker(slot as usize);
    Ok(())
}

/// The clock thread's entry point (called by the thread script, never by an app): ticks the
/// pool's clock every `period_ms` until the pool stops it, then drops its body. `origin` is
/// the pool's zero on the shared time line ([`now`]).
#[doc(hidden)]
#[wasm_bindgen(js_name = __foreman_clock)]
pub fn clock_entry(body: BodyAddress, origin: f64, period_ms: u32) {
    // SAFETY: the pool gave this thread the body (`give`), and nobody else frees it.
    let body = unsafe { Box::from_raw(body as *mut Arc<dyn Body>) };
    let period_ns = i64::from(period_ms.max(1)) * 1_000_000;
    let word = body.clock_word();
    loop {
        // Relaxed: a snapshot of the word to sleep on; a stop changes it and notifies.
        let seen = word.load(core::sync::atomic::Ordering::Relaxed);
        if !body.tick(since(origin)) {
            return;
        }
        // Returns after the period, or at once when a stop changed the word.
        park::wait(word, seen, period_ns);
    }
}

/// Milliseconds on the time line every thread of the page shares: `performance.timeOrigin +
/// performance.now()` (each thread's `now` counts from its own origin).
pub(crate) fn now() -> f64 {
    PERFORMANCE.with(|performance| match performance {
        Some((performance, origin)) => origin + performance.now(),
        None => js_sys::Date::now(),
    })
}

/// Milliseconds since `origin` on the shared time line, as the supervisor's clock.
pub(crate) fn since(origin: f64) -> Tick {
    (now() - origin).max(0.0) as Tick
}
