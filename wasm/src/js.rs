//! [`JsPool`]: a [`Pool`] as a small JavaScript class, for any task type serde can carry.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use foreman_rt::host::{Event, Report};
use foreman_rt::policy::{Backoff, PolicyError, Tick, MAX_DURATION};
use foreman_rt::{Context, Decision, Disposition, Snapshot, SubmitError};
use js_sys::{Array, Function, Object, Promise, Reflect};
use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{future_to_promise, spawn_local};
use web_sys::AbortSignal;

use crate::feed::TaskOptions;
use crate::notice::{self, Notice};
use crate::pool::{Config, Pool};

/// A [`Pool`] as a small JavaScript class: tasks, outputs and errors are JavaScript values,
/// converted with `serde-wasm-bindgen`.
///
/// wasm-bindgen cannot export a generic type, so the app exports one function that starts its
/// pool with [`JsPool::start`]; no other glue is needed, whatever the task type:
///
/// ```ignore
/// use foreman_wasm::{Config, JsPool};
/// use wasm_bindgen::prelude::*;
///
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Text { text: String }
///
/// #[wasm_bindgen(js_name = startCounter)]
/// pub fn start_counter(workers: usize) -> Result<JsPool, JsError> {
///     JsPool::start::<Text, usize, String, 64, 8, _>(Config::new(workers), |_ctx, input| {
///         Ok(input.text.split_whitespace().count())
///     })
/// }
/// ```
///
/// ```js
/// const pool = startCounter(2);
/// const words = await pool.run({ text: 'to be or not to be' }); // 6
/// const report = await pool.drain(); // { snapshot, handedBack }
/// ```
///
/// | method | does |
/// |---|---|
/// | `run(input, { signal, deadline })` | a `Promise` of the task's output; it waits for room in the queue. Rejects with an `Error` whose `kind` says why: `"failed"` (the handler's error is in `error`), `"dead-lettered"`, `"lost"`, `"handed-back"` (its `cause` says what crashed), `"cancelled"` (see below), `"closed"` (the pool shut down before accepting it), `"invalid-input"` or `"invalid-options"`. Both options may be left out |
/// | `run(…, { signal })` | an `AbortSignal` cancels the task (the piscina way): the promise rejects at once with an `Error` named `AbortError` (`kind` `"cancelled"`, `cause` the signal's reason). A task not yet started never runs; a running one's Web Worker is terminated and replaced (not a crash: not retried, not counted against the restart intensity). An abort after the outcome changes nothing; one that comes as the task ends lets its outcome settle the promise. An already aborted signal rejects without submitting |
/// | `run(…, { deadline })` | milliseconds each run of the task may take, counted from its start (not its submission): a run past it is killed as hung, and the task retried or dead-lettered by the policy |
/// | `trySubmit(input)` | `true` if the queue took the task, `false` if it is full; throws if the pool is closed. Its outcome goes to `onEvent` |
/// | `onEvent(callback)` | receives every event that is not a `run` task's final one, as `{ kind, worker, task, output, error, cause, disposition, attempt, decision }` (console without a callback); kinds `completed`, `failed`, `crashed`, `hung`, `handed-back`, `recycled`, `cancelled`. A callback may call `onEvent` itself (to unsubscribe, say); what it throws is reported as uncaught (`reportError`), and the next event is delivered as usual |
/// | `onNotice(callback)` | receives the host's notices as `{ problem, text }` (console without a callback); the same rules as `onEvent` |
/// | `drain()`, `abort()` | a `Promise` of the final report `{ snapshot, handedBack }` once every thread is gone |
/// | `reopen(workers)` | starts a stopped pool again |
/// | `snapshot()` | the supervisor's counters and worker states |
/// | `threads()` | each slot's thread (`none`, `loading`, `running`, `terminating`) and heap bytes |
/// | `free()` | lets go of the pool: see below |
///
/// # Lifetime
///
/// A pool lives while its handle does *or* one of its promises (`run`, `drain`, `abort`) is
/// pending: a page may keep only the promise (`startCounter(1).run(input)`), and the task
/// still runs and the promise settles even if the handle is garbage-collected meanwhile. Once
/// the handle is gone (`free()`, or collected) and no promise is pending, the pool is dropped:
/// an abort (its threads leave, a thread running a task is terminated; tasks submitted with
/// `trySubmit` that have not run are handed back to `onEvent`). To stop a pool at once, with
/// `run` promises pending, call `abort()` (their tasks come back handed back) before `free()`.
#[wasm_bindgen]
pub struct JsPool {
    pool: Rc<dyn Erased>,
}

/// The pool's methods on JavaScript values, for one `Pool<T, R, E, N, W>`.
trait Erased {
    /// The promises hold the pool (`self`) until they settle: see [`JsPool`]'s lifetime.
    fn run(self: Rc<Self>, input: JsValue, options: JsValue) -> Promise;
    fn try_submit(&self, input: JsValue) -> Result<bool, JsValue>;
    fn drain(self: Rc<Self>) -> Promise;
    fn abort(self: Rc<Self>) -> Promise;
    fn reopen(&self, workers: usize) -> Result<(), JsError>;
    fn snapshot(&self) -> JsValue;
    fn threads(&self) -> JsValue;
    fn on_event(&self, callback: Option<Function>);
    fn on_notice(&self, callback: Option<Function>);
}

/// A typed pool and the callback its events go to.
struct Typed<T, R, E, const N: usize, const W: usize>
where
    T: Send + 'static,
    R: Send + 'static,
    E: Send + 'static,
{
    pool: Pool<T, R, E, N, W>,
    on_event: Rc<RefCell<Option<Function>>>,
}

#[wasm_bindgen]
impl JsPool {
    /// See [`Pool::submit`]: a promise of the task's output. `options` (may be left out):
    /// `{ signal, deadline }` — an `AbortSignal` that cancels the task
    /// ([`Submission::cancel`](crate::Submission::cancel)), and a deadline in milliseconds for
    /// each run of it ([`TaskOptions::with_deadline`]).
    pub fn run(&self, input: JsValue, options: JsValue) -> Promise {
        Rc::clone(&self.pool).run(input, options)
    }

    /// See [`Pool::try_submit`]: `true` if accepted, `false` if the queue is full.
    #[wasm_bindgen(js_name = trySubmit)]
    pub fn try_submit(&self, input: JsValue) -> Result<bool, JsValue> {
        self.pool.try_submit(input)
    }

    /// Where events go that are not a `run` task's final one (`null`: the console).
    #[wasm_bindgen(js_name = onEvent)]
    pub fn on_event(&self, callback: Option<Function>) {
        self.pool.on_event(callback);
    }

    /// Where the host's notices go (`null`: the console).
    #[wasm_bindgen(js_name = onNotice)]
    pub fn on_notice(&self, callback: Option<Function>) {
        self.pool.on_notice(callback);
    }

    /// See [`Pool::drain`]: a promise of the final report.
    pub fn drain(&self) -> Promise {
        Rc::clone(&self.pool).drain()
    }

    /// See [`Pool::abort`]: a promise of the final report.
    pub fn abort(&self) -> Promise {
        Rc::clone(&self.pool).abort()
    }

    /// See [`Pool::reopen`].
    pub fn reopen(&self, workers: usize) -> Result<(), JsError> {
        self.pool.reopen(workers)
    }

    /// See [`Pool::snapshot`].
    pub fn snapshot(&self) -> JsValue {
        self.pool.snapshot()
    }

    /// See [`Pool::threads`].
    pub fn threads(&self) -> JsValue {
        self.pool.threads()
    }
}

impl JsPool {
    /// Starts a [`Pool`] (see [`Pool::start`]) whose tasks come from JavaScript values and
    /// whose outputs and errors go back as JavaScript values.
    pub fn start<T, R, E, const N: usize, const W: usize, H>(
        config: Config,
        handler: H,
    ) -> Result<JsPool, JsError>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
        E: Serialize + Send + 'static,
        H: Fn(&Context<'_>, &T) -> Result<R, E> + Send + Sync + 'static,
    {
        let on_event: Rc<RefCell<Option<Function>>> = Rc::new(RefCell::new(None));
        let events = Rc::clone(&on_event);
        let pool = Pool::<T, R, E, N, W>::start(config, handler, move |event| {
            let value = event_to_js(&event);
            // Not borrowed during the call: the callback may replace itself (`onEvent`).
            let callback = events.borrow().clone();
            match callback {
                Some(callback) => call(&callback, &value),
                None => web_sys::console::info_2(&"foreman event".into(), &value),
            }
        })
        .map_err(|err| JsError::new(&err.to_string()))?;
        Ok(JsPool {
            pool: Rc::new(Typed { pool, on_event }),
        })
    }
}

/// The pool options a JavaScript caller may give ([`Config::with_js_options`]).
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsOptions {
    recycle_after: Option<u32>,
    heap_limit: Option<usize>,
    backoff: Option<JsBackoff>,
}

/// `backoff` of [`JsOptions`].
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsBackoff {
    initial_ms: u32,
    factor: u32,
    cap_ms: u32,
}

impl Config {
    /// This configuration with the pool options a JavaScript caller gave, for an app that
    /// lets the page choose them (`undefined` or `null`: none):
    ///
    /// | option | does |
    /// |---|---|
    /// | `recycleAfter: n` | each worker thread is replaced by a fresh one after `n` tasks ([`Policy::with_recycling`](foreman_rt::policy::Policy::with_recycling)); `onEvent` gets `{ kind: "recycled", worker }` |
    /// | `heapLimit: bytes` | a worker whose heap holds more than `bytes` after a task is recycled between tasks ([`Config::with_heap_limit`]); `onEvent` gets `{ kind: "recycled", worker }` |
    /// | `backoff: { initialMs, factor, capMs }` | a crashed worker's replacement starts after `initialMs`, then `factor` times longer for each crash in a row, at most `capMs` ([`Backoff`](foreman_rt::policy::Backoff)) |
    ///
    /// An unknown option or an invalid value is an error (a typo must not go unnoticed).
    ///
    /// ```ignore
    /// #[wasm_bindgen(js_name = startCounter)]
    /// pub fn start_counter(workers: usize, options: JsValue) -> Result<JsPool, JsError> {
    ///     let config = Config::new(workers).with_js_options(&options)?;
    ///     JsPool::start::<Text, usize, String, 64, 8, _>(config, count_words)
    /// }
    /// ```
    ///
    /// ```js
    /// const pool = startCounter(2, { recycleAfter: 100, heapLimit: 64 << 20, backoff: { initialMs: 100, factor: 2, capMs: 5000 } });
    /// ```
    pub fn with_js_options(self, options: &JsValue) -> Result<Config, JsError> {
        if options.is_undefined() || options.is_null() {
            return Ok(self);
        }
        // serde-wasm-bindgen reads a struct's fields by name and ignores the others: look.
        check_keys(options, &["recycleAfter", "heapLimit", "backoff"])?;
        let backoff = Reflect::get(options, &"backoff".into()).unwrap_or(JsValue::UNDEFINED);
        if backoff.is_object() {
            check_keys(&backoff, &["initialMs", "factor", "capMs"])?;
        }
        let options: JsOptions = serde_wasm_bindgen::from_value(options.clone())
            .map_err(|err| JsError::new(&format!("invalid pool options: {err}")))?;
        let invalid = |err: PolicyError| JsError::new(&format!("invalid pool options: {err}"));
        let mut policy = self.policy();
        if let Some(tasks) = options.recycle_after {
            policy = policy.with_recycling(tasks).map_err(invalid)?;
        }
        if let Some(backoff) = options.backoff {
            let backoff = Backoff::new(backoff.initial_ms, backoff.factor, backoff.cap_ms)
                .map_err(invalid)?;
            policy = policy.with_backoff(backoff);
        }
        let config = self.with_policy(policy);
        Ok(match options.heap_limit {
            Some(bytes) => config.with_heap_limit(bytes),
            None => config,
        })
    }
}

impl<T, R, E, const N: usize, const W: usize> Erased for Typed<T, R, E, N, W>
where
    T: Serialize + DeserializeOwned + Send + 'static,
    R: Serialize + Send + 'static,
    E: Serialize + Send + 'static,
{
    fn run(self: Rc<Self>, input: JsValue, options: JsValue) -> Promise {
        let task: T = match serde_wasm_bindgen::from_value(input) {
            Ok(task) => task,
            Err(err) => {
                return Promise::reject(&rejection(
                    "invalid-input",
                    &format!("the input is not a task: {err}"),
                    &[],
                ))
            }
        };
        let options = match RunOptions::from_js(&options) {
            Ok(options) => options,
            Err(message) => return Promise::reject(&rejection("invalid-options", &message, &[])),
        };
        if let Some(signal) = options.signal.as_ref().filter(|signal| signal.aborted()) {
            // Aborted before it was submitted: it never reaches the pool.
            return Promise::reject(&abort_error(signal.reason()));
        }
        let mut settle = None;
        let promise = Promise::new(&mut |resolve, reject| settle = Some((resolve, reject)));
        let (resolve, reject) = settle.expect("the executor runs at once");
        let submission = Rc::new(RefCell::new(self.pool.submit_with(task, options.task)));
        // Settled already (rejected as aborted): the task's own end comes later, and is
        // dropped.
        let settled = Rc::new(Cell::new(false));
        let watch = options.signal.map(|signal| {
            let (submission, reject, settled) =
                (Rc::clone(&submission), reject.clone(), Rc::clone(&settled));
            let reason_of = signal.clone();
            let on_abort = Closure::<dyn FnMut()>::new(move || {
                // Certain to end cancelled: say so now (the piscina way); else (too late) the
                // task's own outcome settles the promise.
                if submission.borrow().cancel() && !settled.replace(true) {
                    let _ = reject.call1(&JsValue::NULL, &abort_error(reason_of.reason()));
                }
            });
            let _ =
                signal.add_event_listener_with_callback("abort", on_abort.as_ref().unchecked_ref());
            (signal, on_abort)
        });
        spawn_local(async move {
            let outcome =
                core::future::poll_fn(|cx| Pin::new(&mut *submission.borrow_mut()).poll(cx)).await;
            let reason = match &watch {
                Some((signal, on_abort)) => {
                    let _ = signal.remove_event_listener_with_callback(
                        "abort",
                        on_abort.as_ref().unchecked_ref(),
                    );
                    signal.reason()
                }
                None => JsValue::UNDEFINED,
            };
            drop(watch);
            // The pool lived at least until now (see `JsPool`'s lifetime).
            drop(self);
            if settled.replace(true) {
                return;
            }
            let _ = match outcome_to_js(outcome, reason) {
                Ok(value) => resolve.call1(&JsValue::NULL, &value),
                Err(error) => reject.call1(&JsValue::NULL, &error),
            };
        });
        promise
    }

    fn try_submit(&self, input: JsValue) -> Result<bool, JsValue> {
        let task: T = serde_wasm_bindgen::from_value(input).map_err(|err| {
            rejection(
                "invalid-input",
                &format!("the input is not a task: {err}"),
                &[],
            )
        })?;
        match self.pool.try_submit(task) {
            Ok(()) => Ok(true),
            Err(SubmitError::Full(_)) => Ok(false),
            Err(SubmitError::Closed(_)) => Err(rejection(
                "closed",
                "the pool is shutting down: the task was not accepted",
                &[],
            )),
        }
    }

    fn drain(self: Rc<Self>) -> Promise {
        let shutdown = self.pool.drain();
        future_to_promise(async move {
            let report = shutdown.await;
            drop(self);
            Ok(report_to_js(&report))
        })
    }

    fn abort(self: Rc<Self>) -> Promise {
        let shutdown = self.pool.abort();
        future_to_promise(async move {
            let report = shutdown.await;
            drop(self);
            Ok(report_to_js(&report))
        })
    }

    fn reopen(&self, workers: usize) -> Result<(), JsError> {
        self.pool
            .reopen(workers)
            .map_err(|err| JsError::new(&err.to_string()))
    }

    fn snapshot(&self) -> JsValue {
        snapshot_to_js(&self.pool.snapshot())
    }

    fn threads(&self) -> JsValue {
        self.pool
            .threads()
            .iter()
            .map(|thread| {
                JsValue::from(object(&[
                    ("state", thread.state.name().into()),
                    ("heapBytes", (thread.heap.held as f64).into()),
                    ("heapInUse", (thread.heap.in_use as f64).into()),
                ]))
            })
            .collect::<Array>()
            .into()
    }

    fn on_event(&self, callback: Option<Function>) {
        *self.on_event.borrow_mut() = callback;
    }

    fn on_notice(&self, callback: Option<Function>) {
        match callback {
            Some(callback) => self.pool.on_notice(move |notice: Notice| {
                let value = object(&[
                    ("problem", notice.is_problem().into()),
                    ("text", notice.to_string().into()),
                ]);
                call(&callback, &value);
            }),
            None => self.pool.on_notice(notice::to_console),
        }
    }
}

/// What `run` settles with for a task's one outcome: `Ok` resolves, `Err` rejects. `reason`
/// is the abort signal's reason, for a cancelled task.
fn outcome_to_js<T: Serialize, R: Serialize, E: Serialize>(
    outcome: Result<Event<T, R, E, String>, SubmitError<T>>,
    reason: JsValue,
) -> Result<JsValue, JsValue> {
    match outcome {
        Ok(Event::Completed { output, .. }) => Ok(to_js(&output)),
        Ok(Event::Failed { error, task, .. }) => Err(rejection(
            "failed",
            "the task failed",
            &[("error", to_js(&error)), ("task", to_js(&task))],
        )),
        Ok(Event::Crashed {
            cause,
            task: Some(disposition),
            ..
        }) => Err(crash_rejection(cause, disposition)),
        Ok(Event::HandedBack { task }) => Err(rejection(
            "handed-back",
            "the task was handed back unrun: the pool shut down",
            &[("task", to_js(&task))],
        )),
        Ok(Event::Cancelled { .. }) => Err(abort_error(reason)),
        Ok(other) => Err(rejection(
            "internal",
            &format!("unexpected final event: {}", kind(&other)),
            &[],
        )),
        Err(refused) => Err(rejection(
            "closed",
            "the pool is shutting down: the task was not accepted",
            &[("task", to_js(&refused.into_inner()))],
        )),
    }
}

/// The rejection of a cancelled `run`: an `Error` named `AbortError` (as `fetch` and piscina
/// reject), `kind` `"cancelled"`, its `cause` the signal's reason.
fn abort_error(reason: JsValue) -> JsValue {
    let error = rejection("cancelled", "the task was cancelled", &[("cause", reason)]);
    let _ = Reflect::set(&error, &"name".into(), &"AbortError".into());
    error
}

/// The options of one `run`: `{ signal, deadline }`.
struct RunOptions {
    signal: Option<AbortSignal>,
    task: TaskOptions,
}

impl RunOptions {
    fn from_js(options: &JsValue) -> Result<RunOptions, String> {
        let mut parsed = RunOptions {
            signal: None,
            task: TaskOptions::new(),
        };
        if options.is_undefined() || options.is_null() {
            return Ok(parsed);
        }
        check_keys(options, &["signal", "deadline"])
            .map_err(|_| "invalid run options: expected { signal, deadline }".to_string())?;
        let signal = Reflect::get(options, &"signal".into()).unwrap_or(JsValue::UNDEFINED);
        if !signal.is_undefined() && !signal.is_null() {
            parsed.signal = Some(
                signal
                    .dyn_into::<AbortSignal>()
                    .map_err(|_| "invalid run options: `signal` is not an AbortSignal")?,
            );
        }
        let deadline = Reflect::get(options, &"deadline".into()).unwrap_or(JsValue::UNDEFINED);
        if !deadline.is_undefined() && !deadline.is_null() {
            let ms = deadline.as_f64().unwrap_or(f64::NAN);
            if !(ms >= 1.0 && ms <= f64::from(MAX_DURATION) && ms.fract() == 0.0) {
                return Err(format!(
                    "invalid run options: `deadline` must be a whole number of milliseconds \
                     from 1 to {MAX_DURATION}"
                ));
            }
            parsed.task = parsed.task.with_deadline(ms as Tick);
        }
        Ok(parsed)
    }
}

/// Fails unless every own property of the object `value` is one of `known`.
fn check_keys(value: &JsValue, known: &[&str]) -> Result<(), JsError> {
    let Some(object) = value.dyn_ref::<Object>() else {
        return Err(JsError::new("invalid pool options: not an object"));
    };
    for key in Object::keys(object) {
        let key = key.as_string().unwrap_or_default();
        if !known.contains(&key.as_str()) {
            return Err(JsError::new(&format!(
                "invalid pool options: unknown option `{key}`, expected one of {}",
                known.join(", ")
            )));
        }
    }
    Ok(())
}

/// Calls the app's `callback` with `value`; what it throws is reported as uncaught (as the
/// browser does for an event listener), and the pool goes on.
fn call(callback: &Function, value: &JsValue) {
    if let Err(error) = callback.call1(&JsValue::NULL, value) {
        crate::callback::report(&error);
    }
}

/// A Rust value as a plain JavaScript value (maps as objects, 64-bit integers as numbers).
fn to_js<V: Serialize + ?Sized>(value: &V) -> JsValue {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .unwrap_or_else(|err| JsValue::from_str(&format!("(not convertible: {err})")))
}

/// `Object` with the given properties.
fn object(properties: &[(&str, JsValue)]) -> Object {
    let object = Object::new();
    for (key, value) in properties {
        // Setting a property of a fresh plain object cannot fail.
        let _ = Reflect::set(&object, &JsValue::from_str(key), value);
    }
    object
}

/// An `Error` with `message`, a `kind`, and more properties.
fn rejection(kind: &str, message: &str, properties: &[(&str, JsValue)]) -> JsValue {
    let error = js_sys::Error::new(message);
    let _ = Reflect::set(&error, &"kind".into(), &kind.into());
    for (key, value) in properties {
        let _ = Reflect::set(&error, &JsValue::from_str(key), value);
    }
    error.into()
}

/// The rejection of a task whose worker crashed on its last run.
fn crash_rejection<T: Serialize>(cause: String, disposition: Disposition<T>) -> JsValue {
    let (kind, message, task, attempts) = match disposition {
        Disposition::DeadLettered { task, attempts } => (
            "dead-lettered",
            format!("the task crashed its worker on each of its {attempts} runs: {cause}"),
            task,
            Some(attempts),
        ),
        Disposition::Lost(task) => (
            "lost",
            format!("the task crashed its worker and is not run again (at most once): {cause}"),
            task,
            None,
        ),
        Disposition::HandedBack(task) => (
            "handed-back",
            format!("the task crashed its worker and no worker will retry it: {cause}"),
            task,
            None,
        ),
        // A retried or requeued task has not ended: never a final event.
        Disposition::Retried { .. } | Disposition::Requeued { .. } => {
            return rejection("internal", "a retried task was reported as ended", &[])
        }
        _ => return rejection("internal", "a crash with an unknown outcome", &[]),
    };
    rejection(
        kind,
        &message,
        &[
            ("task", to_js(&task)),
            ("cause", cause.into()),
            (
                "attempts",
                attempts.map_or(JsValue::UNDEFINED, JsValue::from),
            ),
        ],
    )
}

/// An event's kind, as JavaScript sees it.
fn kind<T, R, E>(event: &Event<T, R, E, String>) -> &'static str {
    match event {
        Event::Completed { .. } => "completed",
        Event::Failed { .. } => "failed",
        Event::Crashed { .. } => "crashed",
        Event::Hung { .. } => "hung",
        Event::HandedBack { .. } => "handed-back",
        Event::Recycled { .. } => "recycled",
        Event::Cancelled { .. } => "cancelled",
        _ => "unknown",
    }
}

fn decision_name(decision: Decision) -> &'static str {
    match decision {
        Decision::Replace => "replace",
        Decision::Retire => "retire",
        Decision::Escalate => "escalate",
        _ => "unknown",
    }
}

/// An event as a plain object: `{ kind, worker, task, output, error, cause, disposition,
/// attempt, decision }` (the properties that apply).
fn event_to_js<T: Serialize, R: Serialize, E: Serialize>(
    event: &Event<T, R, E, String>,
) -> JsValue {
    let mut properties: Vec<(&str, JsValue)> = vec![("kind", kind(event).into())];
    match event {
        Event::Completed {
            worker,
            task,
            output,
        } => properties.extend([
            ("worker", (*worker as u32).into()),
            ("task", to_js(task)),
            ("output", to_js(output)),
        ]),
        Event::Failed {
            worker,
            task,
            error,
        } => properties.extend([
            ("worker", (*worker as u32).into()),
            ("task", to_js(task)),
            ("error", to_js(error)),
        ]),
        Event::Crashed {
            worker,
            cause,
            task,
            decision,
        } => {
            properties.extend([
                ("worker", (*worker as u32).into()),
                ("cause", cause.as_str().into()),
                ("decision", decision_name(*decision).into()),
            ]);
            let (disposition, attempt, task): (&str, Option<u32>, Option<&T>) = match task {
                None => ("none", None, None),
                Some(Disposition::Retried { attempt }) => ("retried", Some(*attempt), None),
                Some(Disposition::Requeued { attempt }) => ("requeued", Some(*attempt), None),
                Some(Disposition::DeadLettered { task, attempts }) => {
                    ("dead-lettered", Some(*attempts), Some(task))
                }
                Some(Disposition::Lost(task)) => ("lost", None, Some(task)),
                Some(Disposition::HandedBack(task)) => ("handed-back", None, Some(task)),
                Some(other) => ("unknown", None, other.task()),
            };
            properties.push(("disposition", disposition.into()));
            if let Some(attempt) = attempt {
                properties.push(("attempt", attempt.into()));
            }
            if let Some(task) = task {
                properties.push(("task", to_js(task)));
            }
        }
        Event::Hung { worker, .. } | Event::Recycled { worker } => {
            properties.push(("worker", (*worker as u32).into()))
        }
        Event::HandedBack { task } => properties.push(("task", to_js(task))),
        Event::Cancelled { worker, task } => {
            if let Some(worker) = worker {
                properties.push(("worker", (*worker as u32).into()));
            }
            properties.push(("task", to_js(task)));
        }
        _ => {}
    }
    object(&properties).into()
}

/// A snapshot as a plain object (the field names of [`Snapshot`], plus `adds_up`).
pub(crate) fn snapshot_to_js<const W: usize>(snap: &Snapshot<W>) -> JsValue {
    let workers: Array = snap
        .workers
        .iter()
        .map(|worker| {
            JsValue::from(object(&[
                ("state", worker.state.name().into()),
                ("completed", (worker.completed as f64).into()),
                ("failed", (worker.failed as f64).into()),
                ("crashes", worker.crashes.into()),
                ("restarts", worker.restarts.into()),
            ]))
        })
        .collect();
    let count = |n: usize| JsValue::from(n as f64);
    object(&[
        ("state", snap.state.name().into()),
        ("submitted", count(snap.submitted)),
        ("completed", count(snap.completed)),
        ("failed", count(snap.failed)),
        ("dead_lettered", count(snap.dead_lettered)),
        ("lost", count(snap.lost)),
        ("handed_back", count(snap.handed_back)),
        ("cancelled", count(snap.cancelled)),
        ("queued", count(snap.queued)),
        ("in_flight", count(snap.in_flight)),
        ("requeued", count(snap.requeued)),
        ("rejected", count(snap.rejected)),
        ("crashes", snap.crashes().into()),
        ("restarts", snap.restarts().into()),
        ("recycles", snap.recycles().into()),
        ("adds_up", snap.adds_up().into()),
        ("workers", workers.into()),
    ])
    .into()
}

/// A report as `{ snapshot, handedBack }`.
fn report_to_js<T: Serialize, const W: usize>(report: &Report<T, W>) -> JsValue {
    let handed_back: Array = report.handed_back.iter().map(to_js).collect();
    object(&[
        ("snapshot", snapshot_to_js(&report.snapshot)),
        ("handedBack", handed_back.into()),
    ])
    .into()
}
