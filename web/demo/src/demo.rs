//! [`Demo`]: what the page calls — start, submit, inject, drain, abort, the view — on a
//! foreman-wasm [`Pool`].
//!
//! The pool does the supervising (threads, hangs, deaths, heaps, the clock). The demo keeps
//! what is its own: a backlog of requested rows that the queue has no room for yet (it
//! submits with `try_submit`, so the page never blocks), the ledger of outcomes (closed from
//! the pool's events), the event log the page shows, and the page's view.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use foreman_wasm::{
    heap, Config, Decision, Disposition, Event, Notice, Pool, Snapshot, StartError, Stopping,
    Submission, SubmitError, SupervisorState, ThreadState,
};
use js_sys::Promise;
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{future_to_promise, spawn_local};

use crate::ledger::{self, Kind, Outcome, Task};
use crate::work::{self, Failed};
use crate::{
    picture, MAX_ATTEMPTS, MAX_RESTARTS, MAX_WORKERS, POLICY, QUEUE, RECYCLE_AFTER,
    RESTART_WINDOW_MS, WATCHDOG_MS,
};

/// The most tasks one "submit" may ask for.
pub const MAX_BATCH: u32 = 100_000;
/// Events kept for the page between two views.
const EVENT_BUFFER: usize = 500;

/// The demo's pool: row tasks, no output, a failure marker; a queue of [`QUEUE`] and up to
/// [`MAX_WORKERS`] workers.
type DemoPool = Pool<Task, (), Failed, QUEUE, MAX_WORKERS>;
type DemoEvent = Event<Task, (), Failed, String>;
type DemoSubmission = Submission<Task, (), Failed>;

/// The live demo: worker threads under the supervisor, fed and watched from the page's main
/// thread. All methods return at once.
#[wasm_bindgen]
pub struct Demo {
    /// `None` until the first start.
    pool: Rc<RefCell<Option<DemoPool>>>,
    state: Rc<RefCell<State>>,
    /// The injected tasks not yet ended, by id: each can be cancelled.
    injected: Rc<RefCell<HashMap<u32, Rc<RefCell<DemoSubmission>>>>>,
}

/// What the demo keeps on the page (the pool's sinks write to it).
struct State {
    /// `performance.now()` at creation: the event log's zero.
    origin: f64,
    /// Workers asked for at the last start.
    workers: usize,
    /// A task the queue refused for being full: submitted first next time.
    head: Option<Task>,
    /// Rows asked for and not yet submitted, per batch.
    backlog: VecDeque<Backlog>,
    /// The latest batch, for the progress bar.
    batch: Option<Batch>,
    /// Injected tasks whose outcome the event log reports.
    watched: Vec<Task>,
    /// Restarts per slot so far (for the log).
    restarts: [u32; MAX_WORKERS],
    /// Tasks handed back since the last start.
    handed_back: usize,
    /// Shutdowns asked for whose report has not come yet.
    shutdowns: u32,
    /// The stop of the current run was reported.
    stop_reported: bool,
    events: VecDeque<LogLine>,
    events_dropped: u32,
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

/// One line of the event log.
#[derive(Clone, Serialize)]
struct LogLine {
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
    recycle_after: u32,
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
    cancelled: usize,
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
    ledger: ledger::Totals,
    after_death_violations: u32,
    memory: MemoryView,
    memory_bytes: f64,
    events: Vec<LogLine>,
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

#[derive(Serialize)]
struct MemoryView {
    /// Bytes of the shared heap.
    shared: usize,
    /// Bytes given up with heaps replaced after a death inside the allocator.
    abandoned: usize,
    /// Heaps replaced.
    replaced: u32,
}

#[wasm_bindgen]
impl Demo {
    /// Creates the demo; [`start`](Demo::start) starts its workers.
    #[wasm_bindgen(constructor)]
    #[allow(clippy::new_without_default)] // a JavaScript constructor
    pub fn new() -> Demo {
        Demo {
            pool: Rc::new(RefCell::new(None)),
            state: Rc::new(RefCell::new(State {
                origin: performance_now(),
                workers: 0,
                head: None,
                backlog: VecDeque::new(),
                batch: None,
                watched: Vec::new(),
                restarts: [0; MAX_WORKERS],
                handed_back: 0,
                shutdowns: 0,
                stop_reported: false,
                events: VecDeque::new(),
                events_dropped: 0,
            })),
            injected: Rc::new(RefCell::new(HashMap::new())),
        }
    }

    /// Starts `workers` worker threads (1 to [`MAX_WORKERS`]): on a fresh page, or to start
    /// again after a shutdown (tasks still queued then are handed back).
    pub fn start(&self, workers: f64) -> Result<(), JsError> {
        let workers = whole_number(workers, "The worker count", 1..=MAX_WORKERS as u32)
            .map_err(error)? as usize;
        // No borrow of the state here: the pool's sinks write to it while it starts.
        let reopened = self.pool.borrow().as_ref().map(|pool| {
            pool.reopen(workers).map_err(|err| match err {
                StartError::NotStopped(SupervisorState::Running) => format!(
                    "{} workers are running: drain or abort first, then start again",
                    threads_alive(pool)
                ),
                StartError::ThreadsLeaving(count) => {
                    format!("{count} workers are still leaving; start again in a moment")
                }
                StartError::NotStopped(state) => {
                    format!("the supervisor is {state}: wait until it has stopped")
                }
                other => other.to_string(),
            })
        });
        match reopened {
            Some(result) => result.map_err(error)?,
            None => {
                let state = Rc::clone(&self.state);
                let pool = DemoPool::start(
                    Config::new(workers).with_policy(POLICY),
                    work::run,
                    move |event| state.borrow_mut().on_event(event),
                )
                .map_err(|err| error(err.to_string()))?;
                let state = Rc::clone(&self.state);
                pool.on_notice(move |notice| state.borrow_mut().on_notice(notice));
                *self.pool.borrow_mut() = Some(pool);
            }
        }
        let mut state = self.state.borrow_mut();
        state.workers = workers;
        state.handed_back = 0;
        state.stop_reported = false;
        let plural = if workers == 1 { "" } else { "s" };
        state.info("start", format!("started {workers} worker{plural}"));
        Ok(())
    }

    /// Asks for `count` more tasks (1 to [`MAX_BATCH`]), each drawing one row of the picture,
    /// as a new batch. What the queue cannot take now waits in a backlog. Returns the batch id.
    pub fn submit(&self, count: f64) -> Result<u16, JsError> {
        let count = whole_number(count, "The number of tasks", 1..=MAX_BATCH).map_err(error)?;
        self.check_running()?;
        let mut state = self.state.borrow_mut();
        let batch = ledger::begin_batch(count);
        state.batch = Some(Batch {
            id: batch,
            accepted: 0,
        });
        state.backlog.push_back(Backlog {
            batch,
            remaining: count,
        });
        state.info("submit", format!("batch #{batch}: {count} row tasks"));
        drop(state);
        self.feed();
        Ok(batch)
    }

    /// Submits one special task: `"fail"` (returns an error), `"panic"` (crashes its worker),
    /// `"hang"` (loops forever, allocating) or `"slow"` (works for a few seconds, sending
    /// heartbeats). It waits for room in the queue (ahead of the backlog), and can be cancelled
    /// ([`cancel`](Demo::cancel)). Returns its task id.
    pub fn inject(&self, kind: &str) -> Result<u32, JsError> {
        let kind = match kind {
            "fail" => Kind::Fail,
            "panic" => Kind::Panic,
            "hang" => Kind::Hang,
            "slow" => Kind::Slow,
            other => {
                return Err(error(format!(
                    "unknown task kind {other:?}: use \"fail\", \"panic\", \"hang\" or \"slow\""
                )))
            }
        };
        self.check_running()?;
        let task = Task {
            id: ledger::next_id(),
            batch: 0,
            kind,
        };
        ledger::open(task.id).map_err(|err| error(err.to_string()))?;
        {
            let mut state = self.state.borrow_mut();
            state.watched.push(task);
            state.info(
                "inject",
                format!("injected task #{} ({})", task.id, kind.name()),
            );
        }
        // No state borrowed: submitting may deliver events to the sink.
        let submission = {
            let pool = self.pool.borrow();
            let pool = pool.as_ref().ok_or_else(|| error("no pool".into()))?;
            Rc::new(RefCell::new(pool.submit(task)))
        };
        self.injected
            .borrow_mut()
            .insert(task.id, Rc::clone(&submission));
        let (state, injected) = (Rc::clone(&self.state), Rc::clone(&self.injected));
        spawn_local(async move {
            let outcome =
                core::future::poll_fn(|cx| Pin::new(&mut *submission.borrow_mut()).poll(cx)).await;
            injected.borrow_mut().remove(&task.id);
            match outcome {
                Ok(event) => state.borrow_mut().on_event(event),
                Err(refused) => {
                    let task = refused.into_inner();
                    ledger::cancel(task.id);
                    state
                        .borrow_mut()
                        .watched
                        .retain(|watched| watched.id != task.id);
                }
            }
        });
        Ok(task.id)
    }

    /// Cancels injected task `id`: if it has not started it never runs; if it runs, its
    /// worker's Web Worker is terminated and a fresh one takes the slot. Returns whether it
    /// will end cancelled (`false`: too late, it has its outcome).
    pub fn cancel(&self, id: u32) -> Result<bool, JsError> {
        let submission = self.injected.borrow().get(&id).cloned();
        let Some(submission) = submission else {
            return Err(error(format!(
                "task #{id} is not an injected task still waiting or running"
            )));
        };
        let running = (0..MAX_WORKERS)
            .find(|slot| ledger::running(*slot).is_some_and(|(running, _)| running == id));
        // No state borrowed: cancelling may deliver events to the sink.
        let cancelled = submission.borrow().cancel();
        let text = match (cancelled, running) {
            (false, _) => format!("task #{id}: too late to cancel, it has ended"),
            (true, Some(slot)) => format!(
                "cancelling task #{id}, running on worker {slot}: its Web Worker is terminated \
                 and a fresh one takes the slot"
            ),
            (true, None) => format!("cancelled task #{id}: it will never run"),
        };
        self.state.borrow_mut().info("cancel", text);
        Ok(cancelled)
    }

    /// Graceful shutdown: no new tasks; workers finish the queue, then leave.
    pub fn drain(&self) -> Result<(), JsError> {
        self.shut_down(false)
    }

    /// Immediate shutdown: no new tasks; workers leave after their current task; queued tasks
    /// are handed back.
    pub fn abort(&self) -> Result<(), JsError> {
        self.shut_down(true)
    }

    /// Feeds the queue from the backlog, logs how injected tasks ended and notices a stop.
    /// Call it every animation frame (and on a timer while the page is hidden). Supervising
    /// itself — hangs, deaths, replacements — is the pool's, and needs no call.
    pub fn tick(&self) {
        self.feed();
        let pool = self.pool.borrow();
        let Some(pool) = pool.as_ref() else {
            return;
        };
        let snapshot = pool.snapshot();
        let mut state = self.state.borrow_mut();
        state.report_watched();
        // An escalation stops the pool without a shutdown of ours: say so once every thread
        // is gone (the tasks it handed back came through the sink by then).
        if let SupervisorState::Stopped(how) = snapshot.state {
            if state.shutdowns == 0 && !state.stop_reported && threads_alive(pool) == 0 {
                let handed = state.handed_back;
                state.stopped(how, handed);
            }
        }
    }

    /// What the page shows: counters, workers, the ledger, memory, and the events since the
    /// last call.
    pub fn view(&self) -> Result<JsValue, JsError> {
        let pool = self.pool.borrow();
        let view = self.state.borrow_mut().view(pool.as_ref());
        serde_wasm_bindgen::to_value(&view).map_err(|e| JsError::new(&e.to_string()))
    }

    /// How task `id` ended, as the ledger says: `"pending"`, an outcome name, or `undefined`
    /// if the ledger holds no such task.
    pub fn outcome(&self, id: u32) -> Option<String> {
        ledger::lookup(id).map(|(outcome, _)| outcome.map_or("pending", Outcome::name).to_string())
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
            recycle_after: RECYCLE_AFTER,
            queue: QUEUE,
        })
        .map_err(|e| JsError::new(&e.to_string()))
    }

    /// The foreman side of the benchmark: submits one task per row of the benchmark view
    /// (each waits for room in the queue: [`Pool::submit`]) and resolves once every one has
    /// ended. The page times the promise.
    #[wasm_bindgen(js_name = benchForeman)]
    pub fn bench_foreman(&self) -> Result<Promise, JsError> {
        let pool = self.pool.borrow();
        let pool = pool
            .as_ref()
            .filter(|pool| pool.snapshot().state == SupervisorState::Running)
            .ok_or_else(|| JsError::new("start the workers before the benchmark"))?;
        let batch = ledger::begin_batch(picture::HEIGHT as u32);
        let mut submissions = Vec::with_capacity(picture::HEIGHT);
        for row in 0..picture::HEIGHT as u16 {
            let task = Task {
                id: ledger::next_id(),
                batch,
                kind: Kind::Row {
                    view: picture::BENCH_VIEW,
                    row,
                },
            };
            ledger::open(task.id).map_err(|err| JsError::new(&err.to_string()))?;
            submissions.push(pool.submit(task));
        }
        let state = Rc::clone(&self.state);
        Ok(future_to_promise(async move {
            let mut void = false;
            for submission in submissions {
                match submission.await {
                    Ok(event) => {
                        void |= !matches!(event, Event::Completed { .. });
                        state.borrow_mut().on_event(event);
                    }
                    Err(refused) => {
                        ledger::cancel(refused.into_inner().id);
                        void = true;
                    }
                }
            }
            if void {
                return Err(JsError::new(
                    "the supervisor stopped during the benchmark: the timing is void",
                )
                .into());
            }
            Ok(JsValue::UNDEFINED)
        }))
    }
}

impl Demo {
    fn check_running(&self) -> Result<(), JsError> {
        let pool = self.pool.borrow();
        let state = pool.as_ref().map(|pool| pool.snapshot().state);
        match state {
            Some(SupervisorState::Running) => Ok(()),
            None => Err(error("no worker is running: press Start first".into())),
            Some(SupervisorState::Stopped(_)) => Err(error(
                "the supervisor has stopped: press Start again first".into(),
            )),
            Some(state) => Err(error(format!(
                "the supervisor is {state} and takes no new tasks"
            ))),
        }
    }

    /// Submits what the queue takes: the refused head first, then injected tasks, then the
    /// backlog. `try_submit` does not call back into the sinks, so the state stays borrowed.
    fn feed(&self) {
        let pool = self.pool.borrow();
        let Some(pool) = pool.as_ref() else {
            return;
        };
        if pool.snapshot().state != SupervisorState::Running {
            return;
        }
        let mut state = self.state.borrow_mut();
        loop {
            let Some(task) = state.head.take().or_else(|| state.next_task()) else {
                return;
            };
            if let Err(full) = ledger::open(task.id) {
                state.head = Some(task);
                state.error("ledger", full.to_string());
                return;
            }
            match pool.try_submit(task) {
                Ok(()) => {
                    if let Some(batch) = state.batch.as_mut().filter(|b| b.id == task.batch) {
                        batch.accepted += 1;
                    }
                }
                Err(SubmitError::Full(task)) => {
                    ledger::cancel(task.id);
                    state.head = Some(task);
                    return;
                }
                Err(SubmitError::Closed(task)) => {
                    ledger::cancel(task.id);
                    state.head = Some(task);
                    state.cancel_backlog("the supervisor is shutting down");
                    return;
                }
            }
        }
    }

    fn shut_down(&self, abort: bool) -> Result<(), JsError> {
        let verb = if abort { "abort" } else { "drain" };
        let shutdown: Stopping<Task, MAX_WORKERS> = {
            let pool = self.pool.borrow();
            let pool = pool
                .as_ref()
                .ok_or_else(|| error(format!("no pool was started: nothing to {verb}")))?;
            if matches!(pool.snapshot().state, SupervisorState::Stopped(_)) {
                return Err(error(format!(
                    "the supervisor has already stopped: nothing to {verb}"
                )));
            }
            // No borrow of the state here: the pool's sinks may run.
            if abort {
                pool.abort()
            } else {
                pool.drain()
            }
        };
        let mut state = self.state.borrow_mut();
        state.shutdowns += 1;
        state.cancel_backlog(if abort {
            "the pool is aborting"
        } else {
            "the pool is draining"
        });
        let what = if abort {
            "abort: workers leave after their current task; queued tasks will be handed back"
        } else {
            "drain: workers finish the queue, then leave"
        };
        state.log(verb, "warn", what.to_string());
        drop(state);
        let state = Rc::clone(&self.state);
        spawn_local(async move {
            let report = shutdown.await;
            let mut state = state.borrow_mut();
            for task in &report.handed_back {
                ledger::close(task, Outcome::HandedBack, None);
            }
            let handed = state.handed_back + report.handed_back.len();
            state.shutdowns -= 1;
            if let SupervisorState::Stopped(how) = report.snapshot.state {
                state.stopped(how, handed);
            }
        });
        Ok(())
    }
}

impl State {
    fn now_s(&self) -> f64 {
        ((performance_now() - self.origin) / 1000.0).max(0.0)
    }

    fn info(&mut self, kind: &'static str, text: String) {
        self.log(kind, "info", text);
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
        let at = self.now_s();
        self.events.push_back(LogLine {
            at,
            kind,
            level,
            text,
        });
    }

    fn next_task(&mut self) -> Option<Task> {
        let backlog = self.backlog.front_mut()?;
        let batch = backlog.batch;
        backlog.remaining -= 1;
        if backlog.remaining == 0 {
            self.backlog.pop_front();
        }
        let (view, row) = picture::next_row();
        Some(Task {
            id: ledger::next_id(),
            batch,
            kind: Kind::Row { view, row },
        })
    }

    /// Tasks asked for and not yet submitted: the backlog's rows and the refused head.
    fn unsubmitted(&self) -> u64 {
        self.backlog
            .iter()
            .map(|b| u64::from(b.remaining))
            .sum::<u64>()
            + u64::from(self.head.is_some())
    }

    /// Drops every task not yet submitted, and says so.
    fn cancel_backlog(&mut self, why: &str) {
        let cancelled = self.unsubmitted();
        for backlog in self.backlog.drain(..) {
            ledger::shrink_batch(backlog.batch, backlog.remaining);
        }
        if let Some(task) = self.head.take() {
            ledger::shrink_batch(task.batch, 1);
        }
        if cancelled > 0 {
            self.warn(
                "cancel",
                format!("{cancelled} requested tasks were never submitted: {why}"),
            );
        }
    }

    /// The pool stopped (`how`) and every thread is gone; `handed` tasks were handed back.
    fn stopped(&mut self, how: foreman_wasm::Shutdown, handed: usize) {
        if self.stop_reported {
            return;
        }
        self.stop_reported = true;
        let how = match how {
            foreman_wasm::Shutdown::Drain => "after a drain",
            foreman_wasm::Shutdown::Abort => "after an abort",
            foreman_wasm::Shutdown::Escalation => "after an escalation",
            _ => "after a shutdown",
        };
        self.warn(
            "stop",
            format!("the supervisor stopped {how}; {handed} tasks were handed back unrun"),
        );
    }

    /// An event of the pool: closes the task's ledger entry if it ended, and logs what the
    /// page shows.
    fn on_event(&mut self, event: DemoEvent) {
        match event {
            Event::Completed { worker, task, .. } => {
                ledger::close(&task, Outcome::Completed, Some(worker));
            }
            Event::Failed { worker, task, .. } => {
                ledger::close(&task, Outcome::Failed, Some(worker));
            }
            Event::Hung { worker, .. } => {
                let what = ledger::running(worker).map_or_else(
                    || "its task".to_string(),
                    |(id, kind)| format!("task #{id} ({})", kind.name()),
                );
                self.warn(
                    "hung",
                    format!(
                        "worker {worker} is hung: {what} has run for more than {WATCHDOG_MS} ms"
                    ),
                );
            }
            Event::Crashed {
                worker,
                cause,
                task,
                decision,
            } => self.crashed(worker, cause, task, decision),
            Event::HandedBack { task } => {
                ledger::close(&task, Outcome::HandedBack, None);
                self.handed_back += 1;
            }
            Event::Cancelled { worker, task } => {
                ledger::close(&task, Outcome::Cancelled, worker);
                if let Some(slot) = worker {
                    ledger::set_running(slot, None);
                }
                let how = worker.map_or_else(
                    || "before it ran".to_string(),
                    |slot| format!("while it ran on worker {slot}, which was replaced"),
                );
                self.info(
                    "cancel",
                    format!(
                        "task #{} ({}) ended cancelled {how}",
                        task.id,
                        task.kind.name()
                    ),
                );
            }
            Event::Recycled { worker } => self.info(
                "recycle",
                format!(
                    "worker {worker} ran {RECYCLE_AFTER} tasks: its Web Worker is retired and a \
                     fresh one takes over"
                ),
            ),
            other => self.warn(
                "event",
                format!("an event this page does not know: {other:?}"),
            ),
        }
    }

    fn crashed(
        &mut self,
        slot: usize,
        cause: String,
        task: Option<Disposition<Task>>,
        decision: Decision,
    ) {
        // What the dead worker said it ran.
        let running = ledger::running(slot);
        ledger::set_running(slot, None);
        let what = running.map_or_else(String::new, |(id, kind)| {
            format!(" while running task #{id} ({})", kind.name())
        });
        let killed = cause.starts_with("killed");
        self.log(
            if killed { "kill" } else { "crash" },
            "error",
            format!("worker {slot} crashed{what}: {cause}"),
        );
        let task_name =
            |id: Option<u32>| id.map_or_else(|| "its task".to_string(), |id| format!("task #{id}"));
        match task {
            None => {}
            Some(Disposition::Retried { attempt }) => {
                let task = task_name(running.map(|(id, _)| id));
                self.info(
                    "retry",
                    format!(
                        "{task} will run again on the replacement (attempt {attempt} of {MAX_ATTEMPTS})"
                    ),
                );
            }
            Some(Disposition::Requeued { attempt }) => {
                let task = task_name(running.map(|(id, _)| id));
                self.info(
                    "retry",
                    format!(
                        "{task} went back into the queue (attempt {attempt} of {MAX_ATTEMPTS})"
                    ),
                );
            }
            Some(Disposition::DeadLettered { task, attempts }) => {
                ledger::close(&task, Outcome::DeadLettered, Some(slot));
                self.error(
                    "dead-letter",
                    format!(
                        "dead letter: task #{} ({}) crashed its worker {attempts} times and will not run again",
                        task.id,
                        task.kind.name()
                    ),
                );
            }
            Some(Disposition::Lost(task)) => {
                ledger::close(&task, Outcome::Lost, Some(slot));
                self.error(
                    "lost",
                    format!("task #{} was lost (at-most-once delivery)", task.id),
                );
            }
            Some(Disposition::HandedBack(task)) => {
                ledger::close(&task, Outcome::HandedBack, Some(slot));
                self.handed_back += 1;
                self.warn(
                    "handed-back",
                    format!("task #{} was handed back: no worker will retry it", task.id),
                );
            }
            Some(other) => self.warn("crash", format!("worker {slot}'s task: {other:?}")),
        }
        match decision {
            Decision::Replace => {
                self.restarts[slot] += 1;
                let restarts = self.restarts[slot];
                self.log(
                    "restart",
                    "ok",
                    format!("worker {slot} is being replaced (restart #{restarts} of this slot)"),
                );
            }
            Decision::Retire => self.warn(
                "retire",
                format!("worker {slot} is not replaced: the supervisor is shutting down"),
            ),
            Decision::Escalate => self.error(
                "escalation",
                format!(
                    "escalation: more than {MAX_RESTARTS} restarts within {} s; the supervisor shuts down",
                    RESTART_WINDOW_MS / 1000
                ),
            ),
            other => self.warn("crash", format!("worker {slot}: {other:?}")),
        }
    }

    /// A notice of the pool: logged under the kind the page groups it by.
    fn on_notice(&mut self, notice: Notice) {
        let (kind, level) = match &notice {
            Notice::StartFailed { retrying: true, .. } => ("start", "warn"),
            Notice::StartFailed { .. } => ("start", "error"),
            Notice::Terminating { .. } => ("kill", "warn"),
            Notice::Spared { .. } => ("hung", "info"),
            Notice::Gone { .. } => ("kill", "info"),
            Notice::HeapRepaired {
                repair: heap::Repair::Kept,
                ..
            } => ("memory", "info"),
            Notice::HeapRepaired { .. } => ("memory", "warn"),
            Notice::ClockStalled { .. } => ("clock", "error"),
            Notice::Zombie { .. } => ("kill", "error"),
            _ => ("host", if notice.is_problem() { "warn" } else { "info" }),
        };
        self.log(kind, level, notice.to_string());
    }

    /// Reports how injected tasks ended, once they did.
    fn report_watched(&mut self) {
        let mut ended = Vec::new();
        self.watched.retain(|task| match ledger::lookup(task.id) {
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

    fn view(&mut self, pool: Option<&DemoPool>) -> View {
        let snap: Option<Snapshot<MAX_WORKERS>> = pool.map(DemoPool::snapshot);
        let threads = pool.map(DemoPool::threads);
        let heaps = heap::stats();
        let count = |f: fn(&Snapshot<MAX_WORKERS>) -> usize| snap.as_ref().map_or(0, f);
        let workers = (0..MAX_WORKERS)
            .map(|slot| {
                let worker = snap.as_ref().map(|snap| snap.workers[slot]);
                let thread = threads.as_ref().map(|threads| threads[slot]);
                WorkerView {
                    slot,
                    state: worker.map_or("vacant", |w| w.state.name()),
                    thread: thread.map_or(ThreadState::None, |t| t.state).name(),
                    completed: worker.map_or(0, |w| w.completed),
                    failed: worker.map_or(0, |w| w.failed),
                    crashes: worker.map_or(0, |w| w.crashes),
                    restarts: worker.map_or(0, |w| w.restarts),
                    task: ledger::running(slot).map(|(id, kind)| TaskView {
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
                    heap: thread.map_or(0, |t| t.heap.held),
                }
            })
            .collect();
        let memory_bytes = {
            let memory: js_sys::WebAssembly::Memory = wasm_bindgen::memory().unchecked_into();
            js_sys::Reflect::get(&memory.buffer(), &"byteLength".into())
                .ok()
                .and_then(|value| value.as_f64())
                .unwrap_or(0.0)
        };
        let state = snap
            .as_ref()
            .map_or(SupervisorState::Running, |snap| snap.state);
        View {
            state: if snap.is_some() {
                state.name()
            } else {
                "not started"
            },
            shutdown: match state {
                SupervisorState::Stopped(foreman_wasm::Shutdown::Drain) => Some("drain"),
                SupervisorState::Stopped(foreman_wasm::Shutdown::Abort) => Some("abort"),
                SupervisorState::Stopped(foreman_wasm::Shutdown::Escalation) => Some("escalation"),
                _ => None,
            },
            capacity: QUEUE,
            submitted: count(|s| s.submitted),
            completed: count(|s| s.completed),
            failed: count(|s| s.failed),
            dead_lettered: count(|s| s.dead_lettered),
            lost: count(|s| s.lost),
            handed_back: count(|s| s.handed_back),
            cancelled: count(|s| s.cancelled),
            queued: count(|s| s.queued),
            in_flight: count(|s| s.in_flight),
            requeued: count(|s| s.requeued),
            rejected: count(|s| s.rejected),
            crashes: snap.as_ref().map_or(0, |s| s.crashes()),
            restarts: snap.as_ref().map_or(0, |s| s.restarts()),
            adds_up: snap.as_ref().is_none_or(|s| s.adds_up()),
            backlog: self.unsubmitted(),
            batch: ledger::batch_progress().map(|(id, total, ended)| BatchView {
                id,
                total,
                // The benchmark's batches are submitted whole.
                accepted: self
                    .batch
                    .filter(|batch| batch.id == id)
                    .map_or(total, |batch| batch.accepted),
                ended,
            }),
            workers_wanted: self.workers,
            threads: threads.as_ref().map_or(0, |threads| {
                threads
                    .iter()
                    .filter(|t| t.state != ThreadState::None)
                    .count()
            }),
            workers,
            ledger: ledger::totals(),
            after_death_violations: heaps.zombie_allocations,
            memory: MemoryView {
                shared: heaps.shared,
                abandoned: heaps.abandoned,
                replaced: heaps.replaced,
            },
            memory_bytes,
            events: self.events.drain(..).collect(),
            events_dropped: std::mem::take(&mut self.events_dropped),
        }
    }
}

/// Threads of `pool` not yet gone.
fn threads_alive(pool: &DemoPool) -> usize {
    pool.threads()
        .iter()
        .filter(|thread| thread.state != ThreadState::None)
        .count()
}

fn error(message: String) -> JsError {
    JsError::new(&message)
}

fn performance_now() -> f64 {
    let performance = js_sys::Reflect::get(&js_sys::global(), &"performance".into())
        .ok()
        .and_then(|value| value.dyn_into::<web_sys::Performance>().ok());
    performance.map_or_else(js_sys::Date::now, |p| p.now())
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
