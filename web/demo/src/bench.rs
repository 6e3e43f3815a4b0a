//! The benchmark: every row of one view of the picture, drawn by foreman's workers
//! ([`Demo::bench_foreman`](crate::demo::Demo::bench_foreman)) and by a wasm-bindgen-rayon
//! pool ([`bench_rayon`]).
//!
//! Rayon's `par_iter` blocks its caller, so it runs on a *benchmark driver*: a Web Worker of
//! the page's own (`web/bench-driver.js`) on this module and memory ([`shared_module`],
//! [`shared_memory`]). The page times both runs the same way: from its call to the outcome
//! it receives.

use std::sync::atomic::{AtomicU32, Ordering};

use rayon::prelude::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::picture::{self, BENCH_VIEW, HEIGHT};

/// Threads of the rayon pool once started; 0 before; [`STARTING`] while it starts.
static RAYON_THREADS: AtomicU32 = AtomicU32::new(0);
const STARTING: u32 = u32::MAX;

/// Starts the rayon pool with `threads` threads (once per page; later calls with the same
/// count do nothing).
#[wasm_bindgen(js_name = startRayon)]
pub async fn start_rayon(threads: u32) -> Result<(), JsError> {
    if threads == 0 || threads > crate::MAX_WORKERS as u32 {
        return Err(JsError::new(&format!(
            "the rayon pool needs 1 to {} threads, not {threads}",
            crate::MAX_WORKERS
        )));
    }
    // Relaxed: only the page's main thread starts the pool; the word only says by whom.
    match RAYON_THREADS.compare_exchange(0, STARTING, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => {}
        Err(STARTING) => return Err(JsError::new("the rayon pool is still starting")),
        Err(running) if running == threads => return Ok(()),
        Err(running) => {
            return Err(JsError::new(&format!(
                "the rayon pool already runs {running} threads (it can be started once per page)"
            )))
        }
    }
    if let Err(err) = JsFuture::from(crate::init_thread_pool(threads as usize)).await {
        // Relaxed: as above.
        RAYON_THREADS.store(0, Ordering::Relaxed);
        return Err(JsError::new(&format!(
            "the rayon pool did not start: {err:?}"
        )));
    }
    // Release: the pool is built before a driver may use it.
    RAYON_THREADS.store(threads, Ordering::Release);
    Ok(())
}

/// This module, for the benchmark driver to instantiate on the same memory.
#[wasm_bindgen(js_name = sharedModule)]
pub fn shared_module() -> JsValue {
    wasm_bindgen::module()
}

/// This module's memory, for the benchmark driver.
#[wasm_bindgen(js_name = sharedMemory)]
pub fn shared_memory() -> JsValue {
    wasm_bindgen::memory()
}

/// Draws every row of the benchmark view on the rayon pool (`into_par_iter` over the rows).
/// Blocks: call it on the benchmark driver, never on the page.
#[wasm_bindgen(js_name = benchRayon)]
pub fn bench_rayon() -> Result<(), JsError> {
    // Acquire: pairs with `start_rayon`.
    if matches!(RAYON_THREADS.load(Ordering::Acquire), 0 | STARTING) {
        return Err(JsError::new("start the rayon pool before the benchmark"));
    }
    let view = picture::view(BENCH_VIEW);
    (0..HEIGHT)
        .into_par_iter()
        .for_each(|row| picture::draw_row(&view, row));
    Ok(())
}
