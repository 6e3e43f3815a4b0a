//! The benchmark: every row of one view of the picture, drawn by foreman's workers and by a
//! wasm-bindgen-rayon pool, timed on the same thread with the same clock.
//!
//! Both functions block until the picture is done, so they run on a *benchmark driver*: a
//! Web Worker ([`start_driver`]) that is neither a foreman worker nor a rayon thread. The page
//! asks it for one timing at a time.

use std::sync::atomic::{AtomicU32, Ordering};

use foreman_rt::{SubmitError, SupervisorState};
use rayon::prelude::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::picture::{self, BENCH_VIEW, HEIGHT};
use crate::tasks::{self, Kind, Task};
use crate::{clock, host, SUPERVISOR};

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

/// Starts the benchmark driver: a module Web Worker running `worker_url` (`web/worker.js`) on
/// this module and memory. The page then posts it `{ run: "foreman" | "rayon" }` and gets
/// back `{ ok: true, ms }` or `{ ok: false, error }`.
#[wasm_bindgen(js_name = startBenchmarkDriver)]
pub fn start_driver(worker_url: &str) -> Result<web_sys::Worker, JsValue> {
    Ok(host::start_module_worker(
        worker_url,
        "foreman benchmark driver",
        "bench",
        &[],
    )?)
}

/// Milliseconds on this thread's clock.
fn now() -> Result<f64, JsError> {
    clock::worker_performance()
        .map(|performance| performance.now())
        .ok_or_else(|| {
            JsError::new("the benchmark blocks, so it runs on a Web Worker, not on the page")
        })
}

/// Draws every row of the benchmark view with foreman's running workers: submits one task
/// per row (waiting for room when the queue is full) and waits until all have ended. Returns
/// the milliseconds from the first submission to the last outcome.
#[wasm_bindgen(js_name = benchForeman)]
pub fn bench_foreman() -> Result<f64, JsError> {
    let started = now()?;
    if SUPERVISOR.state() != SupervisorState::Running {
        return Err(JsError::new("start the workers before the benchmark"));
    }
    let batch = tasks::begin_batch(HEIGHT as u32);
    for row in 0..HEIGHT as u16 {
        let task = Task {
            id: tasks::next_id(),
            batch,
            kind: Kind::Row {
                view: BENCH_VIEW,
                row,
            },
        };
        tasks::open(task.id).map_err(|err| JsError::new(&err.to_string()))?;
        if let Err(SubmitError::Closed(task) | SubmitError::Full(task)) = SUPERVISOR.submit(task) {
            tasks::cancel(task.id);
            return Err(JsError::new(
                "the supervisor shut down during the benchmark",
            ));
        }
    }
    tasks::wait_for_batch(batch)
        .map_err(|_| JsError::new("another batch started during the benchmark"))?;
    let elapsed = now()? - started;
    // Tasks handed back by a shutdown end the batch too, without having run.
    if SUPERVISOR.state() != SupervisorState::Running {
        return Err(JsError::new(
            "the supervisor stopped during the benchmark: the timing is void",
        ));
    }
    Ok(elapsed)
}

/// Draws every row of the benchmark view on the rayon pool (`into_par_iter` over the rows).
/// Returns the milliseconds it took.
#[wasm_bindgen(js_name = benchRayon)]
pub fn bench_rayon() -> Result<f64, JsError> {
    let started = now()?;
    // Acquire: pairs with `start_rayon`.
    if matches!(RAYON_THREADS.load(Ordering::Acquire), 0 | STARTING) {
        return Err(JsError::new("start the rayon pool before the benchmark"));
    }
    let view = picture::view(BENCH_VIEW);
    (0..HEIGHT)
        .into_par_iter()
        .for_each(|row| picture::draw_row(&view, row));
    Ok(now()? - started)
}
