//! The page's side of the Web Worker host: [`Demo`].
//!
//! # Threads
//!
//! Each worker slot runs on a module Web Worker (`web/worker.js`) that instantiates this
//! module on the page's shared memory and calls [`worker_main`](crate::worker_main). The page's
//! main thread never blocks: it submits with `try_submit`, keeps what does not fit in a
//! backlog, and drives everything else from [`Demo::tick`] (each animation frame) and from
//! events.
//!
//! # Knowing that a thread is gone
//!
//! Recovering a worker ([`Supervisor::declare_dead`](foreman_rt::Supervisor::declare_dead)),
//! repairing its heap and freeing its stack are only safe once its thread will never run
//! again. A trap only unwinds; `Worker.terminate()` only *asks* the browser to stop the thread,
//! which may run on: Chromium stops a worker that is busy in wasm only after a grace period of
//! about two seconds (2.0–2.1 s measured here), during which the thread keeps running — and
//! allocating. So every worker holds a Web Lock, its *life lock*, while it
//! runs module code: it takes the lock before calling `worker_main` and the browser releases it
//! when the lock callback returns or throws (the thread left the module for good) or when the
//! worker's context is destroyed (terminated). The host asks for the same lock as soon as the
//! worker says it holds it; the grant is the proof of death, and everything else waits for it.
//!
//! # What happens when
//!
//! - **Trap** (a panic aborts): the lock is released, the host recovers the slot; the
//!   supervisor's policy decides the task's fate (retried by the replacement, dead-lettered
//!   after its last attempt) and whether a replacement starts.
//! - **Hang**: the clock thread's [`Supervisor::tick`](foreman_rt::Supervisor::tick) flags a
//!   worker busy past the deadline; the host condemns it (from then on it can no longer record
//!   an outcome or touch the queue), terminates its Web Worker, and recovers the slot when the
//!   lock is granted.
//! - **Shutdown**: drain or abort; workers leave at their next step; tasks that will not run
//!   are handed back and recorded as such.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicBool, Ordering};

use foreman_rt::{
    CrashReport, Decision, Disposition, Shutdown, SubmitError, SupervisorState, WorkerState,
};
use js_sys::{Function, Object, Reflect};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{ErrorEvent, MessageEvent, Worker, WorkerOptions, WorkerType};

use crate::alloc::{self, Reclaimed};
use crate::clock;
use crate::tasks::{self, Kind, Outcome, Task};
use crate::{
    picture, MAX_ATTEMPTS, MAX_RESTARTS, MAX_WORKERS, QUEUE, RESTART_WINDOW_MS, SUPERVISOR,
    WATCHDOG_MS,
};

/// Stack size of each worker thread (a multiple of the 64 KiB page).
const THREAD_STACK: u32 = 1 << 20;
/// The most tasks one "submit" may ask for.
pub const MAX_BATCH: u32 = 100_000;
/// Starts of one slot that may fail in a row before the host gives the slot up.
const START_ATTEMPTS: u32 = 3;
/// Events kept for the page between two views.
const EVENT_BUFFER: usize = 500;
/// How long after a killed thread's death is confirmed the host checks that it stayed dead.
const AFTER_DEATH_CHECK_MS: u32 = 300;

/// Only one [`Demo`] per page: there is one supervisor.
static CREATED: AtomicBool = AtomicBool::new(false);

#[wasm_bindgen]
extern "C" {
    /// `navigator.locks.request(name, callback)` (the Web Locks API, which web-sys still
    /// gates as unstable).
    #[wasm_bindgen(js_namespace = ["navigator", "locks"], js_name = request)]
    fn request_lock(name: &str, callback: &Function) -> js_sys::Promise;
}

/// The live demo: worker threads under the supervisor, fed and watched from the page's main
/// thread. All methods return at once.
#[wasm_bindgen]
pub struct Demo {
    host: Rc<RefCell<Host>>,
}

#[wasm_bindgen]
impl Demo {
    /// Creates the demo. `worker_url` is the worker script (`web/worker.js`). Fails if the
    /// page is not cross-origin isolated or a demo already exists.
    #[wasm_bindgen(constructor)]
    pub fn new(worker_url: String) -> Result<Demo, JsError> {
        let global = js_sys::global();
        let isolated = Reflect::get(&global, &"crossOriginIsolated".into())
            .ok()
            .and_then(|value| value.as_bool())
            .unwrap_or(false);
        if !isolated {
            return Err(JsError::new(
                "the page is not cross-origin isolated: serve it with the headers \
                 `Cross-Origin-Opener-Policy: same-origin` and \
                 `Cross-Origin-Embedder-Policy: require-corp`",
            ));
        }
        // Relaxed: only the main thread creates demos.
        if CREATED.swap(true, Ordering::Relaxed) {
            return Err(JsError::new("a demo is already running on this page"));
        }
        let clock_thread = start_clock(&worker_url).map_err(|err| {
            JsError::new(&format!(
                "cannot start the clock thread: {}",
                describe(&err)
            ))
        })?;
        let lock_prefix = format!(
            "foreman-{:08x}",
            (js_sys::Math::random() * f64::from(u32::MAX)) as u32
        );
        let host = Rc::new_cyclic(|me| {
            RefCell::new(Host {
                me: me.clone(),
                worker_url,
                lock_prefix,
                origin: performance_now(),
                threads: std::array::from_fn(|_| None),
                next_thread: 1,
                start_failures: [0; MAX_WORKERS],
                workers: 0,
                head: None,
                specials: VecDeque::new(),
                backlog: VecDeque::new(),
                batch: None,
                watched: Vec::new(),
                after_death: Vec::new(),
                after_death_violations: 0,
                stop_reported: false,
                clock_thread,
                clock_ticks: 0,
                clock_moved_at: 0,
                clock_stall_reported: false,
                events: VecDeque::new(),
                events_dropped: 0,
            })
        });
        Ok(Demo { host })
    }

    /// Starts `workers` worker threads (1 to [`MAX_WORKERS`]): on a fresh page, or to start
    /// again after a shutdown (tasks still queued then will run).
    pub fn start(&self, workers: f64) -> Result<(), JsError> {
        self.host
            .borrow_mut()
            .start(workers)
            .map_err(|e| JsError::new(&e))
    }

    /// Asks for `count` more tasks (1 to [`MAX_BATCH`]), each drawing one row of the picture,
    /// as a new batch. What the queue cannot take now waits in a backlog. Returns the batch id.
    pub fn submit(&self, count: f64) -> Result<u16, JsError> {
        self.host
            .borrow_mut()
            .submit(count)
            .map_err(|e| JsError::new(&e))
    }

    /// Submits one special task: `"fail"` (returns an error), `"panic"` (crashes its worker),
    /// `"hang"` (loops forever, allocating) or `"slow"` (works for a few seconds, sending
    /// heartbeats). Returns its task id.
    pub fn inject(&self, kind: &str) -> Result<u32, JsError> {
        self.host
            .borrow_mut()
            .inject(kind)
            .map_err(|e| JsError::new(&e))
    }

    /// Graceful shutdown: no new tasks; workers finish the queue, then leave.
    pub fn drain(&self) -> Result<(), JsError> {
        self.host
            .borrow_mut()
            .shut_down(false)
            .map_err(|e| JsError::new(&e))
    }

    /// Immediate shutdown: no new tasks; workers leave after their current task; queued tasks
    /// are handed back.
    pub fn abort(&self) -> Result<(), JsError> {
        self.host
            .borrow_mut()
            .shut_down(true)
            .map_err(|e| JsError::new(&e))
    }

    /// Supervises: kills the workers the watchdog flagged as hung, feeds the queue from the
    /// backlog, notices a stop. Call it every animation frame (and on a timer while the page
    /// is hidden). The clock and the watchdog itself run on their own thread
    /// ([`clock`](crate::clock)).
    pub fn tick(&self) {
        self.host.borrow_mut().tick();
    }

    /// What the page shows: counters, workers, the ledger, memory, and the events since the
    /// last call.
    pub fn view(&self) -> Result<JsValue, JsError> {
        let view = self.host.borrow_mut().view();
        serde_wasm_bindgen::to_value(&view).map_err(|e| JsError::new(&e.to_string()))
    }

    /// How task `id` ended, as the ledger says: `"pending"`, an outcome name, or `undefined`
    /// if the ledger holds no such task.
    pub fn outcome(&self, id: u32) -> Option<String> {
        tasks::lookup(id).map(|(outcome, _)| outcome.map_or("pending", Outcome::name).to_string())
    }

    /// The picture as RGBA bytes, a view onto the shared memory (copy it before use).
    pub fn picture(&self) -> js_sys::Uint8ClampedArray {
        let memory: js_sys::WebAssembly::Memory = wasm_bindgen::memory().unchecked_into();
        js_sys::Uint8ClampedArray::new_with_byte_offset_and_length(
            &memory.buffer(),
            picture::picture_address() as u32,
            (picture::WIDTH * picture::HEIGHT * 4) as u32,
        )
    }

    /// The picture's version: it changes whenever a row is drawn, so the page copies the
    /// picture only when it changed.
    #[wasm_bindgen(getter, js_name = pictureVersion)]
    pub fn picture_version(&self) -> u32 {
        picture::version()
    }

    /// The picture's width in pixels.
    #[wasm_bindgen(getter)]
    pub fn width(&self) -> u32 {
        picture::WIDTH as u32
    }

    /// The picture's height in pixels.
    #[wasm_bindgen(getter)]
    pub fn height(&self) -> u32 {
        picture::HEIGHT as u32
    }

    /// The most worker threads the demo can run.
    #[wasm_bindgen(getter, js_name = maxWorkers)]
    pub fn max_workers(&self) -> u32 {
        MAX_WORKERS as u32
    }

    /// The most tasks one submission may ask for.
    #[wasm_bindgen(getter, js_name = maxBatch)]
    pub fn max_batch(&self) -> u32 {
        MAX_BATCH
    }

    /// What the benchmark draws, for the page to say: `{ rows, step, max_iter }`.
    pub fn benchmark(&self) -> Result<JsValue, JsError> {
        serde_wasm_bindgen::to_value(&BenchmarkView {
            rows: picture::HEIGHT,
            step: picture::BENCH_VIEW,
            max_iter: picture::view(picture::BENCH_VIEW).max_iter,
        })
        .map_err(|e| JsError::new(&e.to_string()))
    }

    /// The supervisor's policy, for the page to show.
    pub fn policy(&self) -> Result<JsValue, JsError> {
        serde_wasm_bindgen::to_value(&PolicyView {
            restart: "permanent",
            max_restarts: MAX_RESTARTS,
            window_ms: RESTART_WINDOW_MS,
            max_attempts: MAX_ATTEMPTS,
            watchdog_ms: WATCHDOG_MS,
            queue: QUEUE,
        })
        .map_err(|e| JsError::new(&e.to_string()))
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        // The page is going away: stop every thread. The supervisor is not recovered (there
        // is nobody left to show it), so a new demo cannot be created afterwards.
        SUPERVISOR.abort();
        clock::stop();
        let host = self.host.borrow();
        host.clock_thread.terminate();
        for thread in host.threads.iter().flatten() {
            thread.worker.terminate();
        }
    }
}

/// The page's state. Lives on the main thread only.
struct Host {
    me: Weak<RefCell<Host>>,
    worker_url: String,
    /// Names the life locks (unique per page: locks are shared by the origin's pages).
    lock_prefix: String,
    /// `performance.now()` at creation: the clock's zero.
    origin: f64,
    threads: [Option<Thread>; MAX_WORKERS],
    next_thread: u32,
    start_failures: [u32; MAX_WORKERS],
    /// Workers asked for at the last start.
    workers: usize,
    /// A task the queue refused for being full: submitted first next time.
    head: Option<Task>,
    /// Injected tasks not yet submitted.
    specials: VecDeque<Task>,
    /// Rows asked for and not yet submitted, per batch.
    backlog: VecDeque<Backlog>,
    /// The latest batch, for the progress bar.
    batch: Option<Batch>,
    /// Injected tasks whose outcome the event log reports.
    watched: Vec<Task>,
    /// Killed threads whose hanging loop must stay still.
    after_death: Vec<AfterDeath>,
    /// Killed threads seen running after their death was confirmed (must stay 0).
    after_death_violations: u32,
    /// The stop of the current run was handled (tasks handed back).
    stop_reported: bool,
    /// The thread that ticks the supervisor's clock ([`clock::clock_main`]).
    clock_thread: Worker,
    /// The clock's tick count as last seen, and when (this page's time) it last moved.
    clock_ticks: u32,
    clock_moved_at: u32,
    clock_stall_reported: bool,
    events: VecDeque<Event>,
    events_dropped: u32,
}

/// One worker thread.
struct Thread {
    id: u32,
    worker: Worker,
    /// Its stack and thread-local block, once it said it is alive (holds its life lock).
    alive: Option<Stack>,
    /// When it was condemned and terminated for hanging, and on which task.
    killed: Option<(u32, Option<(u32, Kind)>)>,
    /// What the worker script reported when the module trapped.
    trap: Option<String>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(ErrorEvent)>,
}

#[derive(Clone, Copy)]
struct Stack {
    stack_alloc: u32,
    tls_base: u32,
}

struct Backlog {
    batch: u16,
    remaining: u32,
}

/// The latest batch this page submitted (the ledger counts how many of its tasks ended).
#[derive(Clone, Copy)]
struct Batch {
    id: u16,
    /// Tasks the queue accepted.
    accepted: u32,
}

struct AfterDeath {
    slot: usize,
    thread: u32,
    turn: u32,
    check_at: u32,
}

/// One line of the event log.
#[derive(Clone, Serialize)]
struct Event {
    /// Seconds since the demo started.
    at: f64,
    /// What it is about: crash, restart, hung, kill, escalation, dead-letter, …
    kind: &'static str,
    /// info, ok, warn or error.
    level: &'static str,
    text: String,
}

#[derive(Serialize)]
struct PolicyView {
    restart: &'static str,
    max_restarts: u8,
    window_ms: u32,
    max_attempts: u32,
    watchdog_ms: u32,
    queue: usize,
}

#[derive(Serialize)]
struct BenchmarkView {
    rows: usize,
    step: u16,
    max_iter: u32,
}

#[derive(Serialize)]
struct View {
    state: &'static str,
    shutdown: Option<&'static str>,
    capacity: usize,
    submitted: usize,
    completed: usize,
    failed: usize,
    dead_lettered: usize,
    lost: usize,
    handed_back: usize,
    queued: usize,
    in_flight: usize,
    requeued: usize,
    rejected: usize,
    crashes: u32,
    restarts: u32,
    adds_up: bool,
    backlog: u64,
    batch: Option<BatchView>,
    workers_wanted: usize,
    threads: usize,
    workers: Vec<WorkerView>,
    ledger: tasks::Totals,
    after_death_violations: u32,
    memory: alloc::Stats,
    memory_bytes: f64,
    events: Vec<Event>,
    events_dropped: u32,
}

#[derive(Serialize)]
struct BatchView {
    id: u16,
    /// Tasks in the batch (less those a shutdown cancelled before submission).
    total: u32,
    /// Tasks of it the queue accepted so far.
    accepted: u32,
    /// Tasks of it that ended.
    ended: u32,
}

#[derive(Serialize)]
struct WorkerView {
    slot: usize,
    state: &'static str,
    thread: &'static str,
    completed: usize,
    failed: usize,
    crashes: u32,
    restarts: u32,
    task: Option<TaskView>,
    heap: usize,
}

#[derive(Serialize)]
struct TaskView {
    id: u32,
    kind: &'static str,
    view: Option<u16>,
    row: Option<u16>,
}

fn performance_now() -> f64 {
    let performance = Reflect::get(&js_sys::global(), &"performance".into())
        .ok()
        .and_then(|value| value.dyn_into::<web_sys::Performance>().ok());
    performance.map_or_else(js_sys::Date::now, |p| p.now())
}

/// `Object` with the given properties.
fn object(properties: &[(&str, JsValue)]) -> Result<Object, JsValue> {
    let object = Object::new();
    for (key, value) in properties {
        Reflect::set(&object, &JsValue::from_str(key), value)?;
    }
    Ok(object)
}

fn property(object: &JsValue, key: &str) -> JsValue {
    Reflect::get(object, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// A number given by the page as a whole number within `range`, or a message saying what is
/// wrong with it.
fn whole_number(
    value: f64,
    what: &str,
    range: std::ops::RangeInclusive<u32>,
) -> Result<u32, String> {
    if !value.is_finite() || value.fract() != 0.0 {
        return Err(format!(
            "{what} must be a whole number from {} to {}",
            range.start(),
            range.end()
        ));
    }
    if value < f64::from(*range.start()) || value > f64::from(*range.end()) {
        return Err(format!(
            "{what} must be from {} to {}, not {value}",
            range.start(),
            range.end()
        ));
    }
    Ok(value as u32)
}

impl Host {
    /// Milliseconds since the demo started: the supervisor's clock.
    fn now(&self) -> u32 {
        (performance_now() - self.origin).max(0.0) as u32
    }

    fn info(&mut self, kind: &'static str, text: String) {
        self.log(kind, "info", text);
    }

    fn ok(&mut self, kind: &'static str, text: String) {
        self.log(kind, "ok", text);
    }

    fn warn(&mut self, kind: &'static str, text: String) {
        self.log(kind, "warn", text);
    }

    fn error(&mut self, kind: &'static str, text: String) {
        self.log(kind, "error", text);
    }

    fn log(&mut self, kind: &'static str, level: &'static str, text: String) {
        if self.events.len() == EVENT_BUFFER {
            self.events.pop_front();
            self.events_dropped += 1;
        }
        let at = f64::from(self.now()) / 1000.0;
        self.events.push_back(Event {
            at,
            kind,
            level,
            text,
        });
    }

    fn threads_alive(&self) -> usize {
        self.threads.iter().flatten().count()
    }

    fn start(&mut self, workers: f64) -> Result<(), String> {
        let workers = whole_number(workers, "The worker count", 1..=MAX_WORKERS as u32)? as usize;
        match SUPERVISOR.state() {
            SupervisorState::Running if self.threads_alive() > 0 => {
                return Err(format!(
                    "{} workers are running: drain or abort first, then start again",
                    self.threads_alive()
                ))
            }
            SupervisorState::Running => {}
            SupervisorState::Stopped(_) => {
                if self.threads_alive() > 0 {
                    return Err(format!(
                        "{} workers are still leaving; start again in a moment",
                        self.threads_alive()
                    ));
                }
                self.hand_back();
                SUPERVISOR.reopen().map_err(|err| err.to_string())?;
                self.stop_reported = false;
            }
            state => {
                return Err(format!(
                    "the supervisor is {state}: wait until it has stopped"
                ))
            }
        }
        self.workers = workers;
        self.start_failures = [0; MAX_WORKERS];
        let mut started = 0;
        for slot in 0..workers {
            if let Err(err) = SUPERVISOR.reserve(slot) {
                self.error("start", format!("worker {slot} cannot start: {err}"));
                continue;
            }
            match self.spawn(slot) {
                Ok(()) => started += 1,
                Err(err) => {
                    let _ = SUPERVISOR.release(slot);
                    self.error("start", format!("worker {slot} cannot start: {err}"));
                }
            }
        }
        self.info("start", format!("started {started} of {workers} workers"));
        if started == 0 {
            return Err("no worker could be started (see the event log)".into());
        }
        Ok(())
    }

    /// Starts the thread for slot `slot` (reserved, or restarting).
    fn spawn(&mut self, slot: usize) -> Result<(), String> {
        let id = self.next_thread;
        self.next_thread += 1;
        let worker = start_module_worker(
            &self.worker_url,
            &format!("foreman worker {slot}"),
            "worker",
            &[
                ("slot", (slot as u32).into()),
                ("thread", id.into()),
                ("stackSize", THREAD_STACK.into()),
                ("lock", self.lock_name(id).into()),
            ],
        )
        .map_err(|err| match err {
            StartError::Create(err) => format!("cannot create a Web Worker: {}", describe(&err)),
            StartError::Post(err) => format!("cannot start the Web Worker: {}", describe(&err)),
        })?;
        // Its messages arrive in later tasks of this thread's event loop: none is missed.
        let me = self.me.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            if let Some(host) = me.upgrade() {
                host.borrow_mut().on_message(slot, id, &event.data());
            }
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        let me = self.me.clone();
        let on_error = Closure::<dyn FnMut(ErrorEvent)>::new(move |event: ErrorEvent| {
            event.prevent_default();
            if let Some(host) = me.upgrade() {
                host.borrow_mut().on_error(slot, id, event.message());
            }
        });
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        self.threads[slot] = Some(Thread {
            id,
            worker,
            alive: None,
            killed: None,
            trap: None,
            _on_message: on_message,
            _on_error: on_error,
        });
        Ok(())
    }

    fn lock_name(&self, thread: u32) -> String {
        format!("{}-thread-{thread}", self.lock_prefix)
    }

    fn thread(&mut self, slot: usize, id: u32) -> Option<&mut Thread> {
        self.threads[slot].as_mut().filter(|thread| thread.id == id)
    }

    fn on_message(&mut self, slot: usize, id: u32, data: &JsValue) {
        let kind = property(data, "kind").as_string().unwrap_or_default();
        match kind.as_str() {
            "alive" => {
                let number = |key| property(data, key).as_f64().unwrap_or(0.0) as u32;
                let stack = Stack {
                    stack_alloc: number("stackAlloc"),
                    tls_base: number("tlsBase"),
                };
                let lock = self.lock_name(id);
                let Some(thread) = self.thread(slot, id) else {
                    return;
                };
                thread.alive = Some(stack);
                self.start_failures[slot] = 0;
                // The thread holds its life lock now: this request is granted when it is gone.
                let me = self.me.clone();
                let gone = Closure::once_into_js(move |_lock: JsValue| {
                    if let Some(host) = me.upgrade() {
                        host.borrow_mut().thread_gone(slot, id);
                    }
                });
                let _ = request_lock(&lock, gone.unchecked_ref());
            }
            "trapped" => {
                let message = property(data, "message").as_string().unwrap_or_default();
                if let Some(thread) = self.thread(slot, id) {
                    thread.trap = Some(message);
                }
            }
            "failed" => {
                let message = property(data, "message").as_string().unwrap_or_default();
                self.on_error(slot, id, message);
            }
            _ => {}
        }
    }

    fn on_error(&mut self, slot: usize, id: u32, message: String) {
        let Some(thread) = self.thread(slot, id) else {
            return;
        };
        thread.trap = Some(message);
        if thread.alive.is_none() {
            // It failed before running any task (the script or the module did not load): no
            // life lock to wait for.
            self.thread_gone(slot, id);
        }
    }

    /// The thread of `slot` numbered `id` is gone for good: repair its heap, free its stack,
    /// and recover its slot.
    fn thread_gone(&mut self, slot: usize, id: u32) {
        let Some(thread) = self.threads[slot].take_if(|thread| thread.id == id) else {
            return;
        };
        thread.worker.terminate();
        // SAFETY: the thread runs no more code of this module: the browser released its life
        // lock (or it never took it).
        let reclaimed = unsafe { alloc::reclaim(slot) };
        if let Some(stack) = thread.alive {
            if let Err(err) = destroy_thread(stack) {
                self.warn(
                    "memory",
                    format!(
                        "worker {slot}'s stack could not be freed: {}",
                        describe(&err)
                    ),
                );
            }
        }
        // A killed thread may have moved on before it died (the kill could not stop it at
        // once): what it ran when it was condemned is what was recovered.
        let running = thread
            .killed
            .and_then(|(_, task)| task)
            .or_else(|| tasks::running(slot));
        tasks::set_running(slot, None);
        let reason = self.reason(slot, &thread);
        if let Some((killed_at, _)) = thread.killed {
            let waited = self.now().saturating_sub(killed_at);
            self.info(
                "kill",
                format!("worker {slot}'s thread is gone ({waited} ms after terminate)"),
            );
            let (spinner, turn) = tasks::spins(slot);
            if spinner == id {
                self.after_death.push(AfterDeath {
                    slot,
                    thread: id,
                    turn,
                    check_at: self.now() + AFTER_DEATH_CHECK_MS,
                });
            }
        }
        match reclaimed {
            Reclaimed::Reset { abandoned } => self.warn(
                "memory",
                format!(
                    "worker {slot} died inside the allocator: its heap was replaced by a fresh \
                     one ({} KiB abandoned)",
                    abandoned / 1024
                ),
            ),
            Reclaimed::Kept if thread.killed.is_some() => self.info(
                "memory",
                format!("worker {slot}'s heap was consistent and is kept for its replacement"),
            ),
            Reclaimed::Kept => {}
        }
        match SUPERVISOR.worker_state(slot) {
            Some(state @ (WorkerState::Starting | WorkerState::Restarting)) => {
                self.start_failed(slot, state, reason);
            }
            Some(WorkerState::Vacant | WorkerState::Exited | WorkerState::Retired) | None => {
                if self.threads_alive() == 0 && SUPERVISOR.is_stopped() {
                    self.info("stop", "every worker has left".into());
                }
            }
            Some(_) => {
                // SAFETY: the thread that held worker `slot` runs no more (see above), and its
                // handles die with it.
                if let Err(err) = unsafe { SUPERVISOR.declare_dead(slot) } {
                    self.error(
                        "crash",
                        format!("worker {slot} cannot be declared dead: {err}"),
                    );
                    return;
                }
                if SUPERVISOR.worker_state(slot) != Some(WorkerState::Crashed) {
                    return; // it was leaving anyway: counted out
                }
                match SUPERVISOR.recover(slot, clock::now()) {
                    Ok(report) => {
                        self.recovered(slot, report, running, reason, thread.killed.is_some())
                    }
                    Err(err) => {
                        self.error("crash", format!("worker {slot} cannot be recovered: {err}"))
                    }
                }
            }
        }
    }

    /// Why the thread of `slot` ended, in words.
    fn reason(&self, slot: usize, thread: &Thread) -> String {
        if let Some(message) = tasks::take_panic(slot) {
            return format!("panicked: {message}");
        }
        if let Some((_, task)) = thread.killed {
            return match task {
                Some((id, kind)) => format!("killed: task #{id} ({}) hung", kind.name()),
                None => "killed: it hung".into(),
            };
        }
        match &thread.trap {
            Some(message) if !message.is_empty() => format!("its thread stopped: {message}"),
            _ => "its thread stopped".into(),
        }
    }

    fn recovered(
        &mut self,
        slot: usize,
        report: CrashReport<Task>,
        running: Option<(u32, Kind)>,
        reason: String,
        killed: bool,
    ) {
        let what = running.map_or_else(String::new, |(id, kind)| {
            format!(" while running task #{id} ({})", kind.name())
        });
        self.log(
            if killed { "kill" } else { "crash" },
            "error",
            format!("worker {slot} crashed{what}: {reason}"),
        );
        match report.task {
            None => {}
            Some(Disposition::Retried { attempt }) => {
                let task =
                    running.map_or_else(|| "its task".to_string(), |(id, _)| format!("task #{id}"));
                self.info("retry", format!("{task} will run again on the replacement (attempt {attempt} of {MAX_ATTEMPTS})"));
            }
            Some(Disposition::Requeued { attempt }) => {
                let task =
                    running.map_or_else(|| "its task".to_string(), |(id, _)| format!("task #{id}"));
                self.info(
                    "retry",
                    format!(
                        "{task} went back into the queue (attempt {attempt} of {MAX_ATTEMPTS})"
                    ),
                );
            }
            Some(Disposition::DeadLettered { task, attempts }) => {
                tasks::close(&task, Outcome::DeadLettered, Some(slot));
                self.error("dead-letter", format!("dead letter: task #{} ({}) crashed its worker {attempts} times and will not run again", task.id, task.kind.name()));
            }
            Some(Disposition::Lost(task)) => {
                tasks::close(&task, Outcome::Lost, Some(slot));
                self.error(
                    "lost",
                    format!("task #{} was lost (at-most-once delivery)", task.id),
                );
            }
            Some(Disposition::HandedBack(task)) => {
                tasks::close(&task, Outcome::HandedBack, Some(slot));
                self.warn(
                    "handed-back",
                    format!("task #{} was handed back: no worker will retry it", task.id),
                );
            }
        }
        match report.decision {
            Decision::Replace => {
                match self.spawn(slot) {
                    Ok(()) => {
                        let restarts = SUPERVISOR.snapshot().workers[slot].restarts;
                        self.ok("restart", format!("worker {slot} is being replaced (restart #{restarts} of this slot)"));
                    }
                    Err(err) => self.give_up(slot, WorkerState::Restarting, err),
                }
            }
            Decision::Retire => {
                self.warn(
                    "retire",
                    format!("worker {slot} is not replaced: the supervisor is shutting down"),
                );
            }
            Decision::Escalate => {
                self.error("escalation", format!("escalation: more than {MAX_RESTARTS} restarts within {} s; the supervisor shuts down", RESTART_WINDOW_MS / 1000));
            }
        }
    }

    /// A thread died before it attached to its slot.
    fn start_failed(&mut self, slot: usize, state: WorkerState, reason: String) {
        self.start_failures[slot] += 1;
        if self.start_failures[slot] < START_ATTEMPTS {
            self.warn(
                "start",
                format!("worker {slot} failed to start ({reason}); trying again"),
            );
            if let Err(err) = self.spawn(slot) {
                self.give_up(slot, state, err);
            }
        } else {
            self.give_up(
                slot,
                state,
                format!("{reason}; {START_ATTEMPTS} attempts failed"),
            );
        }
    }

    /// Gives slot `slot` up: no thread can be started for it.
    fn give_up(&mut self, slot: usize, state: WorkerState, reason: String) {
        self.error(
            "start",
            format!("worker {slot} cannot be started: {reason}"),
        );
        if state == WorkerState::Starting {
            let _ = SUPERVISOR.release(slot);
        } else if let Ok(Some(task)) = SUPERVISOR.retire(slot) {
            tasks::close(&task, Outcome::HandedBack, None);
            self.warn(
                "handed-back",
                format!(
                    "task #{} was handed back: its worker could not be replaced",
                    task.id
                ),
            );
        }
    }

    fn submit(&mut self, count: f64) -> Result<u16, String> {
        let count = whole_number(count, "The number of tasks", 1..=MAX_BATCH)?;
        self.check_running()?;
        let batch = tasks::begin_batch(count);
        self.batch = Some(Batch {
            id: batch,
            accepted: 0,
        });
        self.backlog.push_back(Backlog {
            batch,
            remaining: count,
        });
        self.info("submit", format!("batch #{batch}: {count} row tasks"));
        self.pump();
        Ok(batch)
    }

    fn inject(&mut self, kind: &str) -> Result<u32, String> {
        let kind = match kind {
            "fail" => Kind::Fail,
            "panic" => Kind::Panic,
            "hang" => Kind::Hang,
            "slow" => Kind::Slow,
            other => {
                return Err(format!(
                    "unknown task kind {other:?}: use \"fail\", \"panic\", \"hang\" or \"slow\""
                ))
            }
        };
        self.check_running()?;
        let task = Task {
            id: tasks::next_id(),
            batch: 0,
            kind,
        };
        self.specials.push_back(task);
        self.watched.push(task);
        self.info(
            "inject",
            format!("injected task #{} ({})", task.id, kind.name()),
        );
        self.pump();
        Ok(task.id)
    }

    fn check_running(&self) -> Result<(), String> {
        match SUPERVISOR.state() {
            SupervisorState::Running if self.threads_alive() > 0 || self.workers > 0 => Ok(()),
            SupervisorState::Running => Err("no worker is running: press Start first".into()),
            SupervisorState::Stopped(_) => {
                Err("the supervisor has stopped: press Start again first".into())
            }
            state => Err(format!("the supervisor is {state} and takes no new tasks")),
        }
    }

    fn shut_down(&mut self, abort: bool) -> Result<(), String> {
        let verb = if abort { "abort" } else { "drain" };
        if SUPERVISOR.is_stopped() {
            return Err(format!(
                "the supervisor has already stopped: nothing to {verb}"
            ));
        }
        let state = if abort {
            SUPERVISOR.abort()
        } else {
            SUPERVISOR.drain()
        };
        self.cancel_backlog(if abort {
            "the pool is aborting"
        } else {
            "the pool is draining"
        });
        let what = if abort {
            "abort: workers leave after their current task; queued tasks will be handed back"
        } else {
            "drain: workers finish the queue, then leave"
        };
        self.log(verb, "warn", format!("{what} (now {state})"));
        Ok(())
    }

    /// Tasks asked for and not yet submitted: the backlog's rows, the injected tasks and the
    /// refused head.
    fn unsubmitted(&self) -> u64 {
        self.backlog
            .iter()
            .map(|b| u64::from(b.remaining))
            .sum::<u64>()
            + self.specials.len() as u64
            + u64::from(self.head.is_some())
    }

    /// Drops every task not yet submitted, and says so.
    fn cancel_backlog(&mut self, why: &str) {
        let cancelled = self.unsubmitted();
        for backlog in self.backlog.drain(..) {
            tasks::shrink_batch(backlog.batch, backlog.remaining);
        }
        for task in self.head.take().into_iter().chain(self.specials.drain(..)) {
            self.watched.retain(|watched| watched.id != task.id);
            if task.batch != 0 {
                tasks::shrink_batch(task.batch, 1);
            }
        }
        if cancelled > 0 {
            self.warn(
                "cancel",
                format!("{cancelled} requested tasks were never submitted: {why}"),
            );
        }
    }

    /// Submits what the queue takes: the refused head first, then injected tasks, then the
    /// backlog.
    fn pump(&mut self) {
        if SUPERVISOR.state() != SupervisorState::Running {
            return;
        }
        loop {
            let Some(task) = self.head.take().or_else(|| self.next_task()) else {
                return;
            };
            if let Err(full) = tasks::open(task.id) {
                self.head = Some(task);
                self.error("ledger", full.to_string());
                return;
            }
            match SUPERVISOR.try_submit(task) {
                Ok(()) => {
                    if let Some(batch) = self.batch.as_mut().filter(|batch| batch.id == task.batch)
                    {
                        batch.accepted += 1;
                    }
                }
                Err(SubmitError::Full(task)) => {
                    tasks::cancel(task.id);
                    self.head = Some(task);
                    return;
                }
                Err(SubmitError::Closed(task)) => {
                    tasks::cancel(task.id);
                    self.head = Some(task);
                    self.cancel_backlog("the supervisor is shutting down");
                    return;
                }
            }
        }
    }

    fn next_task(&mut self) -> Option<Task> {
        if let Some(task) = self.specials.pop_front() {
            return Some(task);
        }
        let backlog = self.backlog.front_mut()?;
        let batch = backlog.batch;
        backlog.remaining -= 1;
        if backlog.remaining == 0 {
            self.backlog.pop_front();
        }
        let id = tasks::next_id();
        let (view, row) = picture::next_row();
        Some(Task {
            id,
            batch,
            kind: Kind::Row { view, row },
        })
    }

    fn tick(&mut self) {
        let now = self.now();
        self.watch_clock(now);
        // The clock thread flags hung workers; a flagged worker not yet condemned is acted on.
        for slot in 0..MAX_WORKERS {
            let unhandled = self.threads[slot]
                .as_ref()
                .is_some_and(|thread| thread.killed.is_none());
            if unhandled && SUPERVISOR.worker_state(slot) == Some(WorkerState::Hung) {
                self.hung(slot, now);
            }
        }
        self.pump();
        if SUPERVISOR.is_stopped() && !self.stop_reported {
            self.stop_reported = true;
            let how = match SUPERVISOR.state() {
                SupervisorState::Stopped(Shutdown::Drain) => "after a drain",
                SupervisorState::Stopped(Shutdown::Abort) => "after an abort",
                _ => "after an escalation",
            };
            let handed = self.hand_back();
            self.warn(
                "stop",
                format!("the supervisor stopped {how}; {handed} tasks were handed back unrun"),
            );
        }
        self.report_watched();
        self.check_after_death(now);
    }

    /// Takes back the tasks that will not run and records them. Returns how many.
    fn hand_back(&mut self) -> usize {
        let mut count = 0;
        for task in SUPERVISOR.hand_back() {
            tasks::close(&task, Outcome::HandedBack, None);
            count += 1;
        }
        count
    }

    /// Says so once if the clock thread stopped ticking: no hang would be detected then.
    fn watch_clock(&mut self, now: u32) {
        let ticks = clock::ticks();
        if ticks != self.clock_ticks {
            self.clock_ticks = ticks;
            self.clock_moved_at = now;
            return;
        }
        let stalled = now.saturating_sub(self.clock_moved_at);
        if stalled > 2 * WATCHDOG_MS && !self.clock_stall_reported {
            self.clock_stall_reported = true;
            let what = if ticks == 0 {
                "has not started"
            } else {
                "stopped"
            };
            self.error(
                "clock",
                format!(
                    "the supervisor's clock thread {what} ({} ms without a tick): hung workers \
                     are not detected",
                    stalled
                ),
            );
        }
    }

    /// The watchdog flagged worker `slot`: condemn it and terminate its thread.
    fn hung(&mut self, slot: usize, now: u32) {
        let running = tasks::running(slot);
        let what = running.map_or_else(
            || "its task".to_string(),
            |(id, kind)| format!("task #{id} ({})", kind.name()),
        );
        self.warn(
            "hung",
            format!("worker {slot} is hung: {what} has run for more than {WATCHDOG_MS} ms"),
        );
        match SUPERVISOR.condemn(slot) {
            Ok(()) => match self.threads[slot].as_mut() {
                Some(thread) => {
                    thread.killed = Some((now, running));
                    thread.worker.terminate();
                    self.warn(
                        "kill",
                        format!("worker {slot} was condemned; its Web Worker is being terminated"),
                    );
                }
                None => self.error(
                    "kill",
                    format!("worker {slot} was condemned but has no thread to terminate"),
                ),
            },
            Err(_) => self.info(
                "hung",
                format!("worker {slot} finished its task after all: not killed"),
            ),
        }
    }

    /// Reports how injected tasks ended, once they did.
    fn report_watched(&mut self) {
        let mut ended = Vec::new();
        self.watched.retain(|task| match tasks::lookup(task.id) {
            Some((Some(outcome), worker)) => {
                ended.push((*task, outcome, worker));
                false
            }
            Some((None, _)) => true,
            None => false,
        });
        for (task, outcome, worker) in ended {
            let by = worker.map_or_else(String::new, |slot| format!(" on worker {slot}"));
            let (kind, level, text) = match outcome {
                Outcome::Failed => ("failed", "warn", format!("task #{} ({}) failed{by}: it returned an error; errors are outcomes, not crashes", task.id, task.kind.name())),
                Outcome::Completed => ("completed", "ok", format!("task #{} ({}) completed{by}", task.id, task.kind.name())),
                // Crash outcomes were reported when they happened.
                _ => continue,
            };
            self.log(kind, level, text);
        }
    }

    /// A killed thread's hanging loop must not have moved since its death was confirmed.
    fn check_after_death(&mut self, now: u32) {
        let mut violations = Vec::new();
        self.after_death.retain(|check| {
            if now < check.check_at {
                return true;
            }
            let (thread, turn) = tasks::spins(check.slot);
            if thread == check.thread && turn != check.turn {
                violations.push(check.slot);
            }
            false
        });
        for slot in violations {
            self.after_death_violations += 1;
            self.error(
                "kill",
                format!("worker {slot}'s killed thread kept running after its death was confirmed"),
            );
        }
    }

    fn view(&mut self) -> View {
        let snap = SUPERVISOR.snapshot();
        let memory = alloc::stats();
        let workers = snap
            .workers
            .iter()
            .enumerate()
            .map(|(slot, worker)| WorkerView {
                slot,
                state: worker.state.name(),
                thread: match &self.threads[slot] {
                    None => "none",
                    Some(thread) if thread.killed.is_some() => "terminating",
                    Some(thread) if thread.alive.is_some() => "running",
                    Some(_) => "loading",
                },
                completed: worker.completed,
                failed: worker.failed,
                crashes: worker.crashes,
                restarts: worker.restarts,
                task: tasks::running(slot).map(|(id, kind)| TaskView {
                    id,
                    kind: kind.name(),
                    view: match kind {
                        Kind::Row { view, .. } => Some(view),
                        _ => None,
                    },
                    row: match kind {
                        Kind::Row { row, .. } => Some(row),
                        _ => None,
                    },
                }),
                heap: memory.workers[slot],
            })
            .collect();
        let memory_bytes = {
            let memory: js_sys::WebAssembly::Memory = wasm_bindgen::memory().unchecked_into();
            property(&memory.buffer(), "byteLength")
                .as_f64()
                .unwrap_or(0.0)
        };
        View {
            state: snap.state.name(),
            shutdown: match snap.state {
                SupervisorState::Stopped(Shutdown::Drain) => Some("drain"),
                SupervisorState::Stopped(Shutdown::Abort) => Some("abort"),
                SupervisorState::Stopped(Shutdown::Escalation) => Some("escalation"),
                _ => None,
            },
            capacity: QUEUE,
            submitted: snap.submitted,
            completed: snap.completed,
            failed: snap.failed,
            dead_lettered: snap.dead_lettered,
            lost: snap.lost,
            handed_back: snap.handed_back,
            queued: snap.queued,
            in_flight: snap.in_flight,
            requeued: snap.requeued,
            rejected: snap.rejected,
            crashes: snap.crashes,
            restarts: snap.restarts,
            adds_up: snap.adds_up(),
            backlog: self.unsubmitted(),
            batch: tasks::batch_progress().map(|(id, total, ended)| BatchView {
                id,
                total,
                // Batches of other threads (the benchmark's) are submitted whole.
                accepted: self
                    .batch
                    .filter(|batch| batch.id == id)
                    .map_or(total, |batch| batch.accepted),
                ended,
            }),
            workers_wanted: self.workers,
            threads: self.threads_alive(),
            workers,
            ledger: tasks::totals(),
            after_death_violations: self.after_death_violations,
            memory,
            memory_bytes,
            events: self.events.drain(..).collect(),
            events_dropped: std::mem::take(&mut self.events_dropped),
        }
    }
}

/// How often the clock thread ticks.
const CLOCK_PERIOD_MS: u32 = 10;

/// Starts the clock thread: `worker_url` (`web/worker.js`) with kind `"clock"`.
fn start_clock(worker_url: &str) -> Result<Worker, JsValue> {
    Ok(start_module_worker(
        worker_url,
        "foreman clock",
        "clock",
        &[("periodMs", CLOCK_PERIOD_MS.into())],
    )?)
}

/// Why [`start_module_worker`] failed.
pub(crate) enum StartError {
    /// The Web Worker could not be created.
    Create(JsValue),
    /// Its first message could not be posted (the worker was terminated).
    Post(JsValue),
}

impl From<StartError> for JsValue {
    fn from(err: StartError) -> JsValue {
        match err {
            StartError::Create(err) | StartError::Post(err) => err,
        }
    }
}

/// Starts a module Web Worker named `name` running `worker_url` (`web/worker.js`) on this
/// module and its memory: posts it `{ kind, module, memory, ...extra }`.
pub(crate) fn start_module_worker(
    worker_url: &str,
    name: &str,
    kind: &str,
    extra: &[(&str, JsValue)],
) -> Result<Worker, StartError> {
    let options = WorkerOptions::new();
    options.set_type(WorkerType::Module);
    options.set_name(name);
    let worker = Worker::new_with_options(worker_url, &options).map_err(StartError::Create)?;
    let properties: Vec<(&str, JsValue)> = [
        ("kind", kind.into()),
        ("module", wasm_bindgen::module()),
        ("memory", wasm_bindgen::memory()),
    ]
    .into_iter()
    .chain(extra.iter().cloned())
    .collect();
    if let Err(err) = object(&properties).and_then(|init| worker.post_message(&init)) {
        worker.terminate();
        return Err(StartError::Post(err));
    }
    Ok(worker)
}

/// Frees a dead thread's stack and thread-local block (wasm-bindgen's
/// `__wbindgen_thread_destroy`, called by a leader for a follower).
fn destroy_thread(stack: Stack) -> Result<(), JsValue> {
    if stack.stack_alloc == 0 || stack.tls_base == 0 {
        return Err(JsValue::from_str("the worker did not report its stack"));
    }
    let destroy: Function = Reflect::get(
        &wasm_bindgen::exports(),
        &"__wbindgen_thread_destroy".into(),
    )?
    .dyn_into()?;
    destroy.call3(
        &JsValue::NULL,
        &stack.tls_base.into(),
        &stack.stack_alloc.into(),
        &THREAD_STACK.into(),
    )?;
    Ok(())
}

/// A JavaScript error or value, in words.
fn describe(value: &JsValue) -> String {
    value
        .dyn_ref::<js_sys::Error>()
        .map(|err| String::from(err.message()))
        .or_else(|| value.as_string())
        .unwrap_or_else(|| format!("{value:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn numbers_from_the_page_are_checked() {
        assert_eq!(whole_number(3.0, "Workers", 1..=8), Ok(3));
        assert_eq!(
            whole_number(0.0, "Workers", 1..=8),
            Err("Workers must be from 1 to 8, not 0".to_string())
        );
        assert_eq!(
            whole_number(2.5, "Workers", 1..=8),
            Err("Workers must be a whole number from 1 to 8".to_string())
        );
        assert!(whole_number(f64::NAN, "Tasks", 1..=10).is_err());
        assert!(whole_number(f64::INFINITY, "Tasks", 1..=10).is_err());
        assert_eq!(whole_number(100_000.0, "Tasks", 1..=MAX_BATCH), Ok(100_000));
        assert!(whole_number(100_001.0, "Tasks", 1..=MAX_BATCH).is_err());
    }
}
