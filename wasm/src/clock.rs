//! [`Clock`]: the pool's clock thread, and the page's watch over it.
//!
//! The core stamps each task's start with the clock as of the last
//! [`tick`](foreman_rt::Supervisor::tick), and its watchdog flags a task whose stamp is older
//! than the deadline. So the clock must never stall: a tick that comes a second late would
//! find every task started in that second "older" than it is. The page's thread cannot promise
//! that: browsers throttle its timers (to once a second, or once a minute, in a hidden tab),
//! and a long frame or a busy machine can stall it. A Web Worker sleeping in
//! `memory.atomic.wait32` with a timeout is not throttled: the clock thread
//! ([`entry::clock_entry`]) ticks there every few milliseconds, flags hung workers and wakes
//! the page to act on them.
//!
//! The page in turn watches the clock: if it stops ticking (its Web Worker failed to load,
//! say) hangs go unnoticed, and the pool says so ([`Notice::ClockStalled`]). The watch also
//! runs the pool's pump now and then, in case a wake-up went astray.

use std::sync::Arc;

use foreman_rt::policy::Tick;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{MessageEvent, Worker};

use crate::entry::{self, Body};
use crate::notice::Notice;
use crate::threads::{describe, object};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setInterval)]
    fn set_interval(callback: &JsValue, ms: i32) -> JsValue;
    #[wasm_bindgen(js_name = clearInterval)]
    fn clear_interval(handle: &JsValue);
}

/// The clock thread's stack: a tick is a shallow call (the supervisor's scan, a report to the
/// outbox, a message to the page), far below this; a small stack is a small block of the
/// shared heap per pool (the thread frees it when it stops).
const STACK_SIZE: u32 = 256 * 1024;

/// A pool's clock thread and the page's watch over it. Dropping it ends the watch; the
/// thread stops when the pool sets its stop word (see [`Body::clock_word`]).
pub(crate) struct Clock {
    worker: Worker,
    interval: JsValue,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_watch: Closure<dyn FnMut()>,
    deadline: Tick,
    /// The tick count as last seen, and when (shared time line) it last moved.
    ticks: u32,
    moved_at: f64,
    /// The current stall was reported.
    reported: bool,
}

impl Clock {
    /// Starts the clock thread for `body` (ticking every `deadline / 4` ms, at most every
    /// 10 ms) and the page's watch (every `deadline`, between 250 ms and 1 s). `on_wake` runs
    /// when the clock thread wakes the page, `on_watch` at every watch.
    pub(crate) fn start(
        body: Arc<dyn Body>,
        origin: f64,
        deadline: Tick,
        on_wake: impl FnMut() + 'static,
        on_watch: impl FnMut() + 'static,
    ) -> Result<Clock, String> {
        let period = (deadline / 4).clamp(1, 10);
        let body = entry::give(body);
        let init = object(&[
            ("role", "clock".into()),
            ("mainJS", entry::main_js().into()),
            ("module", wasm_bindgen::module()),
            ("memory", wasm_bindgen::memory()),
            ("body", body.into()),
            ("origin", origin.into()),
            ("periodMs", period.into()),
            ("stackSize", STACK_SIZE.into()),
        ]);
        let worker = match init.and_then(|init| entry::start_thread("foreman clock", &init)) {
            Ok(worker) => worker,
            Err(err) => {
                // SAFETY: no thread got the body.
                unsafe { entry::take_back(body) };
                return Err(format!(
                    "cannot start the clock's Web Worker: {}",
                    describe(&err)
                ));
            }
        };
        let mut on_wake = on_wake;
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |_| on_wake());
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        let on_watch = Closure::<dyn FnMut()>::new(on_watch);
        let every = i32::try_from(deadline.clamp(250, 1_000)).unwrap_or(1_000);
        let interval = set_interval(on_watch.as_ref(), every);
        Ok(Clock {
            worker,
            interval,
            _on_message: on_message,
            _on_watch: on_watch,
            deadline,
            ticks: 0,
            moved_at: entry::now(),
            reported: false,
        })
    }

    /// The watch: given the clock thread's tick count now, says once when it has not moved
    /// for two deadlines.
    pub(crate) fn check(&mut self, ticks: u32) -> Option<Notice> {
        let now = entry::now();
        if ticks != self.ticks {
            self.ticks = ticks;
            self.moved_at = now;
            self.reported = false;
            return None;
        }
        let stalled = (now - self.moved_at) as u32;
        if stalled <= 2 * self.deadline || self.reported {
            return None;
        }
        self.reported = true;
        Some(Notice::ClockStalled { for_ms: stalled })
    }
}

impl Drop for Clock {
    fn drop(&mut self) {
        clear_interval(&self.interval);
        // The clock thread runs until its next tick and may have posted a wake-up that waits
        // in the page's event loop: it must find no handler rather than the closure dropped
        // with this.
        self.worker.set_onmessage(None);
    }
}
