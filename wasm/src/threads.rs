//! [`Threads`]: the page's table of worker threads — one module Web Worker per worker slot —
//! and how the page learns, for certain, that a thread is gone.
//!
//! # Knowing that a thread is gone
//!
//! Recovering a worker ([`Supervisor::declare_dead`](foreman_rt::Supervisor::declare_dead)),
//! repairing its heap and freeing its stack are only safe once its thread will never run
//! again. A trap only unwinds; `Worker.terminate()` only *asks* the browser to stop the thread,
//! which may run on: Chromium stops a worker that is busy in wasm only after a grace period of
//! about two seconds, during which the thread keeps running — and allocating. So every worker
//! holds a Web Lock, its *life lock*, while it runs module code (see `src/worker.js`); the
//! browser releases it when the thread has left the module for good or its context is
//! destroyed. The table asks for the same lock as soon as the thread says it holds it: the
//! grant is the proof of death, and everything else waits for it.
//!
//! # After death
//!
//! A dead thread's heap is repaired at once ([`heap::bury`]); its stack stays reserved for
//! [`AFTER_DEATH_CHECK_MS`] while any allocation from it would be caught as a *zombie*, and is
//! freed only if none came.
//!
//! The table only reports ([`Report`]); the pool decides what a death means.

use std::rc::Rc;

use js_sys::{Function, Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{ErrorEvent, MessageEvent, Worker};

use crate::entry::{self, BodyAddress};
use crate::heap::{self, HeapId, Repair};

/// How long after a thread's death was confirmed its stack stays reserved for the after-death
/// check.
pub const AFTER_DEATH_CHECK_MS: i32 = 300;

#[wasm_bindgen]
extern "C" {
    /// `navigator.locks.request(name, callback)` (the Web Locks API, which web-sys still
    /// gates as unstable).
    #[wasm_bindgen(js_namespace = ["navigator", "locks"], js_name = request)]
    fn request_lock(name: &str, callback: &Function) -> js_sys::Promise;

    /// The global `setTimeout` (on a page or in a worker).
    #[wasm_bindgen(js_name = setTimeout)]
    pub(crate) fn set_timeout(callback: &JsValue, ms: i32) -> JsValue;
}

/// Something a thread, its Web Worker or a timer told the page.
pub(crate) enum Signal {
    /// The thread posted a message.
    Message(JsValue),
    /// The Web Worker's `error` event.
    Error(String),
    /// The thread's life lock was granted: it is gone.
    LockGranted,
    /// The after-death check of the thread's stack is over.
    GraveDue,
}

/// Where signals go: `(slot, thread id, signal)`. The pool hands the table one at creation.
pub(crate) type Listener = Rc<dyn Fn(usize, u32, Signal)>;

/// What a signal meant, for the pool.
pub(crate) enum Report {
    /// The thread asked the page to look at the outbox.
    Wake,
    /// The thread holds its life lock and is about to attach to its slot.
    Alive,
    /// The thread is gone for good.
    Gone(Death),
    /// A dead thread allocated after its death was confirmed (it was trapped; its stack is
    /// never freed).
    Zombie,
}

/// Why the page terminated a thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kill {
    /// The supervisor condemned its worker as hung.
    Hung,
    /// Its pool was dropped while its worker ran a task (condemned first).
    PoolDropped,
    /// Its task was cancelled while it ran (cancelled and condemned first).
    Cancelled,
}

/// A thread that is gone, and what is known about its end.
#[derive(Debug)]
pub(crate) struct Death {
    /// Why it was terminated, and milliseconds from the termination to the proof of death.
    pub killed: Option<(Kill, u32)>,
    /// What the thread script or the Web Worker reported (a trap, a load failure).
    pub message: Option<String>,
    /// The message of the panic that ended it, if one did.
    pub panic: Option<String>,
    /// What became of its heap.
    pub repair: Repair,
}

/// What the page knows of a slot's thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ThreadState {
    /// No thread.
    None,
    /// Its Web Worker loads the module.
    Loading,
    /// It runs (holds its life lock).
    Running,
    /// It was terminated (hung, or its pool dropped); the page waits for the proof of its
    /// death.
    Terminating,
}

impl ThreadState {
    /// A short lowercase name, for logs and user interfaces.
    ///
    /// ```
    /// # use foreman_wasm::ThreadState;
    /// assert_eq!(ThreadState::Terminating.name(), "terminating");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            ThreadState::None => "none",
            ThreadState::Loading => "loading",
            ThreadState::Running => "running",
            ThreadState::Terminating => "terminating",
        }
    }
}

/// A thread's stack and thread-local block, as it reported them.
#[derive(Debug, Clone, Copy)]
struct Stack {
    stack_alloc: u32,
    tls_base: u32,
}

/// One thread.
struct Thread {
    id: u32,
    heap: HeapId,
    worker: Worker,
    alive: Option<Stack>,
    /// Why and when (shared time line) it was terminated.
    killed: Option<(Kill, f64)>,
    /// What the thread script or the Web Worker said when it failed.
    message: Option<String>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(ErrorEvent)>,
}

impl Drop for Thread {
    fn drop(&mut self) {
        // A message or error the thread sent before it went may still wait in the page's
        // event loop: it must find no handler rather than the closures dropped with this.
        self.worker.set_onmessage(None);
        self.worker.set_onerror(None);
    }
}

/// A dead thread whose stack is reserved for the after-death check.
struct Grave {
    id: u32,
    heap: HeapId,
    stack: Option<Stack>,
}

/// The page's threads, one slot per worker. See the [module docs](self).
pub(crate) struct Threads {
    listener: Listener,
    /// Names the life locks (unique per pool: locks are shared by an origin's pages).
    lock_prefix: String,
    /// Stack size of every worker thread (a multiple of the 64 KiB page).
    stack_size: u32,
    next_id: u32,
    slots: Vec<Option<Thread>>,
    graves: Vec<Grave>,
}

impl Threads {
    /// A table of `workers` empty slots.
    pub(crate) fn new(workers: usize, stack_size: u32, listener: Listener) -> Threads {
        Threads {
            listener,
            lock_prefix: format!(
                "foreman-{:08x}",
                (js_sys::Math::random() * f64::from(u32::MAX)) as u32
            ),
            stack_size,
            next_id: 1,
            slots: (0..workers).map(|_| None).collect(),
            graves: Vec::new(),
        }
    }

    /// Starts a thread for `slot` on heap `heap`, running the pool's `body`.
    pub(crate) fn spawn(
        &mut self,
        slot: usize,
        heap: HeapId,
        body: BodyAddress,
    ) -> Result<(), String> {
        let id = self.next_id;
        self.next_id += 1;
        let init = object(&[
            ("role", "worker".into()),
            ("mainJS", entry::main_js().into()),
            ("module", wasm_bindgen::module()),
            ("memory", wasm_bindgen::memory()),
            ("body", body.into()),
            ("slot", (slot as u32).into()),
            ("heap", heap.number().into()),
            ("stackSize", self.stack_size.into()),
            ("lock", self.lock_name(id).into()),
        ])
        .map_err(|err| describe(&err))?;
        let worker = entry::start_thread(&format!("foreman worker {slot}"), &init)
            .map_err(|err| format!("cannot start a Web Worker: {}", describe(&err)))?;
        // Its messages arrive in later tasks of this thread's event loop: none is missed.
        let listener = Rc::clone(&self.listener);
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            listener(slot, id, Signal::Message(event.data()));
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        let listener = Rc::clone(&self.listener);
        let on_error = Closure::<dyn FnMut(ErrorEvent)>::new(move |event: ErrorEvent| {
            event.prevent_default();
            listener(slot, id, Signal::Error(event.message()));
        });
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        self.slots[slot] = Some(Thread {
            id,
            heap,
            worker,
            alive: None,
            killed: None,
            message: None,
            _on_message: on_message,
            _on_error: on_error,
        });
        Ok(())
    }

    fn lock_name(&self, thread: u32) -> String {
        format!("{}-thread-{thread}", self.lock_prefix)
    }

    fn thread(&mut self, slot: usize, id: u32) -> Option<&mut Thread> {
        self.slots[slot].as_mut().filter(|thread| thread.id == id)
    }

    /// Handles a signal of thread `id` of `slot`; says what it meant, if anything.
    pub(crate) fn signal(&mut self, slot: usize, id: u32, signal: Signal) -> Option<Report> {
        match signal {
            Signal::Message(data) => self.message(slot, id, &data),
            Signal::Error(message) => {
                let thread = self.thread(slot, id)?;
                thread.message.get_or_insert(message);
                // Before it said it was alive, no life lock will tell us it is gone.
                thread
                    .alive
                    .is_none()
                    .then(|| self.gone(slot, id))
                    .flatten()
            }
            Signal::LockGranted => self.gone(slot, id),
            Signal::GraveDue => self.release_grave(id),
        }
    }

    fn message(&mut self, slot: usize, id: u32, data: &JsValue) -> Option<Report> {
        if data.as_f64() == Some(entry::WAKE) {
            return Some(Report::Wake);
        }
        let kind = property(data, "kind").as_string().unwrap_or_default();
        match kind.as_str() {
            "alive" => {
                let number = |key| property(data, key).as_f64().unwrap_or(0.0) as u32;
                let stack = Stack {
                    stack_alloc: number("stackAlloc"),
                    tls_base: number("tlsBase"),
                };
                let lock = self.lock_name(id);
                let thread = self.thread(slot, id)?;
                thread.alive = Some(stack);
                // The thread holds its life lock now: this request is granted when it is gone.
                let listener = Rc::clone(&self.listener);
                let gone = Closure::once_into_js(move |_lock: JsValue| {
                    listener(slot, id, Signal::LockGranted);
                });
                let _ = request_lock(&lock, gone.unchecked_ref());
                Some(Report::Alive)
            }
            "trapped" | "failed" => {
                let message = property(data, "message").as_string().unwrap_or_default();
                let thread = self.thread(slot, id)?;
                thread.message.get_or_insert(message);
                thread
                    .alive
                    .is_none()
                    .then(|| self.gone(slot, id))
                    .flatten()
            }
            _ => None,
        }
    }

    /// Thread `id` of `slot` is gone for good: repair its heap, reserve its stack for the
    /// after-death check, and say how it ended.
    fn gone(&mut self, slot: usize, id: u32) -> Option<Report> {
        let mut thread = self.slots[slot].take_if(|thread| thread.id == id)?;
        thread.worker.terminate();
        let panic = crate::panic::take(thread.heap);
        // SAFETY: the thread runs no more code of this module: the browser released its life
        // lock (or it never took it).
        let repair = unsafe { heap::bury(thread.heap) };
        self.graves.push(Grave {
            id,
            heap: thread.heap,
            stack: thread.alive,
        });
        let listener = Rc::clone(&self.listener);
        let due = Closure::once_into_js(move || listener(slot, id, Signal::GraveDue));
        set_timeout(&due, AFTER_DEATH_CHECK_MS);
        Some(Report::Gone(Death {
            killed: thread
                .killed
                .map(|(why, at)| (why, (entry::now() - at).max(0.0) as u32)),
            message: thread.message.take(),
            panic,
            repair,
        }))
    }

    /// The after-death check of thread `id` is over: free its stack, unless it ran on.
    fn release_grave(&mut self, id: u32) -> Option<Report> {
        let index = self.graves.iter().position(|grave| grave.id == id)?;
        let grave = self.graves.swap_remove(index);
        if !heap::release_grave(grave.heap) {
            // Never free memory a thread may still run on.
            return Some(Report::Zombie);
        }
        if let Some(stack) = grave.stack {
            // Fails only if the module lacks wasm-bindgen's thread support (then nothing
            // could have started): the stack stays allocated.
            let _ = destroy_thread(stack, self.stack_size);
        }
        None
    }

    /// Terminates the thread of `slot`, whose worker the supervisor condemned (so that
    /// wherever the thread stops, it leaves nothing half-done). Returns `false` if the slot
    /// has no thread.
    pub(crate) fn terminate(&mut self, slot: usize, why: Kill) -> bool {
        let Some(thread) = self.slots[slot].as_mut() else {
            return false;
        };
        thread.killed.get_or_insert_with(|| (why, entry::now()));
        thread.worker.terminate();
        true
    }

    /// What the page knows of `slot`'s thread.
    pub(crate) fn state(&self, slot: usize) -> ThreadState {
        match &self.slots[slot] {
            None => ThreadState::None,
            Some(thread) if thread.killed.is_some() => ThreadState::Terminating,
            Some(thread) if thread.alive.is_some() => ThreadState::Running,
            Some(_) => ThreadState::Loading,
        }
    }

    /// Threads not yet proven gone.
    pub(crate) fn living(&self) -> usize {
        self.slots.iter().flatten().count()
    }

    /// Whether nothing is left to wait for: no thread, no after-death check.
    pub(crate) fn settled(&self) -> bool {
        self.living() == 0 && self.graves.is_empty()
    }
}

/// Frees a dead thread's stack and thread-local block (wasm-bindgen's
/// `__wbindgen_thread_destroy`, called by another thread for a thread that is gone).
fn destroy_thread(stack: Stack, stack_size: u32) -> Result<(), JsValue> {
    if stack.stack_alloc == 0 || stack.tls_base == 0 {
        return Err(JsValue::from_str("the thread did not report its stack"));
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
        &stack_size.into(),
    )?;
    Ok(())
}

/// `Object` with the given properties.
pub(crate) fn object(properties: &[(&str, JsValue)]) -> Result<Object, JsValue> {
    let object = Object::new();
    for (key, value) in properties {
        Reflect::set(&object, &JsValue::from_str(key), value)?;
    }
    Ok(object)
}

fn property(object: &JsValue, key: &str) -> JsValue {
    Reflect::get(object, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// A JavaScript error or value, in words.
pub(crate) fn describe(value: &JsValue) -> String {
    value
        .dyn_ref::<js_sys::Error>()
        .map(|err| String::from(err.message()))
        .or_else(|| value.as_string())
        .unwrap_or_else(|| format!("{value:?}"))
}
