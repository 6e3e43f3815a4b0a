//! # foreman-words
//!
//! foreman-wasm's example app, and the proof that the library serves more than its demo: a
//! different task type, one that owns heap data both ways. Each task is a [`Document`] (a
//! name and a text, allocated on the page); a worker thread tokenizes it, counts its words in
//! a hash map and hashes it with SHA-256, and returns a [`Summary`] (strings and a vector,
//! allocated on the worker). Some texts are special, so that the browser tests can break
//! things: `"!panic"` panics (the worker's thread traps), `"!hang"` loops forever allocating
//! (the watchdog kills the worker), `"!leak N"` leaks N KiB of the worker's heap.
//!
//! The app uses the library two ways, both through its public API only:
//!
//! - from JavaScript: [`start_words`] exports a [`JsPool`] (`await pool.run(document)`);
//! - from Rust: [`rust_scenario`] drives a typed [`Pool`] with futures, a sink and a drain.
//!
//! Its page (`index.html`, `main.js`) exposes both to the browser tests (`cargo xtask test`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use foreman_wasm::policy::{Delivery, Intensity, Policy, Restart};
use foreman_wasm::{Config, Context, Disposition, Event, JsPool, Pool, WorkerHeaps};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wasm_bindgen::prelude::*;

/// The pool's events: its tasks are documents, a crash's cause a message.
type WordsEvent = Event<Document, Summary, String, String>;

#[global_allocator]
static ALLOCATOR: WorkerHeaps = WorkerHeaps;

/// A task: a text to summarize.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    /// What the caller calls it.
    pub name: String,
    /// The text.
    pub text: String,
}

/// A task's output: what the text holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// The document's name.
    pub name: String,
    /// Words in the text (runs of letters, digits and apostrophes).
    pub words: u32,
    /// Different words, ignoring case.
    pub distinct: u32,
    /// The most frequent words (lowercase) and their counts, most frequent first, ties in
    /// alphabetical order; at most five.
    pub top: Vec<(String, u32)>,
    /// The SHA-256 digest of the text's UTF-8 bytes, in hexadecimal.
    pub sha256: String,
}

/// The watchdog's deadline: a task running longer without a heartbeat is hung.
pub const WATCHDOG_MS: u32 = 1_000;

/// The app's policy: permanent workers, up to 16 restarts in 10 s, each task run at most
/// twice, a watchdog of [`WATCHDOG_MS`].
pub fn policy() -> Policy {
    let intensity = Intensity::new(16, 10_000).expect("a valid intensity");
    let delivery = Delivery::at_least_once(2).expect("a valid delivery");
    Policy::DEFAULT
        .with_watchdog(WATCHDOG_MS)
        .expect("a valid deadline")
        .with_restart(Restart::Permanent)
        .with_intensity(intensity)
        .with_delivery(delivery)
}

/// Summarizes a document: the app's handler, run on a worker thread. An empty text is an
/// error (an outcome, not a crash); `"!panic"` panics; `"!hang"` never returns; `"!leak N"`
/// leaks N KiB (a block never freed), then summarizes.
pub fn summarize(_ctx: &Context<'_>, document: &Document) -> Result<Summary, String> {
    match document.text.as_str() {
        "!panic" => panic!("{} asked to panic", document.name),
        "!hang" => hang(),
        text if text.starts_with("!leak ") => {
            // Leaks that many KiB of the worker's heap (a block never freed): the heap limit's
            // browser test.
            let kib: usize = text["!leak ".len()..]
                .trim()
                .parse()
                .map_err(|_| format!("{}: `!leak` takes a number of KiB", document.name))?;
            core::mem::forget(vec![1u8; kib * 1024]);
            summary(document)
        }
        _ => summary(document),
    }
}

/// What [`summarize`] computes for an ordinary text.
pub fn summary(document: &Document) -> Result<Summary, String> {
    let mut counts: HashMap<String, u32> = HashMap::new();
    let mut words = 0;
    for word in document
        .text
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|word| !word.is_empty())
    {
        words += 1;
        *counts.entry(word.to_lowercase()).or_default() += 1;
    }
    if words == 0 {
        return Err(format!("{} has no words", document.name));
    }
    let distinct = counts.len() as u32;
    let mut top: Vec<(String, u32)> = counts.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top.truncate(5);
    Ok(Summary {
        name: document.name.clone(),
        words,
        distinct,
        top,
        sha256: sha256(&document.text),
    })
}

/// The SHA-256 digest of `text`, in hexadecimal.
pub fn sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Loops forever, allocating and freeing on every turn, so that the thread is likely to be
/// inside the allocator when it is killed. It never sends a heartbeat.
fn hang() -> ! {
    let mut turn: usize = 0;
    loop {
        let block: Vec<u8> = Vec::with_capacity(64 + (turn * 2_654_435_761) % 16_384);
        core::hint::black_box(&block);
        turn = turn.wrapping_add(1);
    }
}

/// Starts the app's pool for JavaScript: `workers` threads summarizing documents, with the
/// pool options the page gives, if any ([`Config::with_js_options`]).
///
/// ```js
/// const pool = startWords(2, { recycleAfter: 100 });
/// const summary = await pool.run({ name: 'a', text: 'to be or not to be' });
/// ```
#[wasm_bindgen(js_name = startWords)]
pub fn start_words(workers: usize, options: JsValue) -> Result<JsPool, JsError> {
    JsPool::start::<Document, Summary, String, 64, 4, _>(
        Config::new(workers)
            .with_policy(policy())
            .with_js_options(&options)?,
        summarize,
    )
}

/// The SHA-256 digest of `text` computed on the calling thread, for the page to compare.
#[wasm_bindgen(js_name = sha256)]
pub fn sha256_js(text: &str) -> String {
    sha256(text)
}

/// The worker heaps' totals ([`foreman_wasm::heap::stats`]), for the browser tests:
/// `{ shared, workers, abandoned, replaced, renewed, zombieAllocations }` in bytes and counts.
#[wasm_bindgen(js_name = heapStats)]
pub fn heap_stats() -> js_sys::Object {
    let stats = foreman_wasm::heap::stats();
    let object = js_sys::Object::new();
    for (key, value) in [
        ("shared", stats.shared as f64),
        ("workers", stats.workers as f64),
        ("abandoned", stats.abandoned as f64),
        ("replaced", f64::from(stats.replaced)),
        ("renewed", f64::from(stats.renewed)),
        ("zombieAllocations", f64::from(stats.zombie_allocations)),
    ] {
        // Setting a property of a fresh plain object cannot fail.
        let _ = js_sys::Reflect::set(&object, &key.into(), &value.into());
    }
    object
}

/// What [`rust_scenario`] saw, for the browser test to check.
#[derive(Debug, Default, Serialize)]
pub struct ScenarioResult {
    /// Documents submitted with `submit` whose futures resolved to `Completed`.
    pub completed: u32,
    /// Of those, the summaries whose digest matches one computed on the page.
    pub digests_match: u32,
    /// The panicking document's future: its final event's kind and disposition.
    pub panicked: String,
    /// Attempts the panicking document got.
    pub panicked_attempts: u32,
    /// The empty document's future: its final event's kind and error.
    pub empty: String,
    /// Events the sink got, by kind.
    pub sink: HashMap<String, u32>,
    /// Documents submitted with `try_submit` that came back because the queue was full.
    pub refused_full: u32,
    /// Documents submitted with `try_submit` whose outcome reached the sink.
    pub tried_completed: u32,
    /// A task submitted after the drain began: refused (`Closed`), the task given back.
    pub refused_after_drain: bool,
    /// The report of the drain: completed, failed, dead-lettered, handed back, whether the
    /// counters add up.
    pub report: (usize, usize, usize, usize, bool),
    /// Bytes in use on the worker heaps after the drain (results freed on the page are
    /// taken back by the heaps that allocated them).
    pub worker_heaps_in_use: Vec<usize>,
}

/// Drives a typed [`Pool`] from Rust, with futures: `documents` documents through `submit`,
/// a burst through `try_submit` into a small queue (some come back: `Full`), a panicking and
/// an empty document, then a drain. Resolves to a [`ScenarioResult`].
#[wasm_bindgen(js_name = rustScenario)]
pub async fn rust_scenario(documents: u32) -> Result<JsValue, JsError> {
    let sink: Rc<RefCell<Vec<WordsEvent>>> = Rc::default();
    let events = Rc::clone(&sink);
    let pool = Pool::<Document, Summary, String, 16, 2>::start(
        Config::new(2).with_policy(policy()),
        summarize,
        move |event| events.borrow_mut().push(event),
    )
    .map_err(|err| JsError::new(&err.to_string()))?;
    let mut result = ScenarioResult::default();

    // A burst into a queue of 16: whatever does not fit comes back at once.
    for n in 0..40 {
        let document = Document {
            name: format!("tried {n}"),
            text: format!("burst number {n} of forty"),
        };
        match pool.try_submit(document) {
            Ok(()) => {}
            Err(refused) => {
                assert_eq!(refused.into_inner().name, format!("tried {n}"));
                result.refused_full += 1;
            }
        }
    }

    // `submit` waits for room: all of these get in, in order, whatever the burst left.
    let texts: Vec<String> = (0..documents)
        .map(|n| format!("Document {n}: the quick brown fox {n} jumps over the lazy dog {n}"))
        .collect();
    let submissions: Vec<_> = texts
        .iter()
        .enumerate()
        .map(|(n, text)| {
            pool.submit(Document {
                name: format!("doc {n}"),
                text: text.clone(),
            })
        })
        .collect();
    let panicking = pool.submit(Document {
        name: "bomb".into(),
        text: "!panic".into(),
    });
    let empty = pool.submit(Document {
        name: "blank".into(),
        text: " ... ".into(),
    });

    for (submission, text) in submissions.into_iter().zip(&texts) {
        if let Ok(Event::Completed { output, .. }) = submission.await {
            result.completed += 1;
            if output.sha256 == sha256(text) {
                result.digests_match += 1;
            }
        }
    }
    match panicking.await {
        Ok(Event::Crashed {
            task: Some(Disposition::DeadLettered { attempts, .. }),
            ..
        }) => {
            result.panicked = "crashed: dead-lettered".into();
            result.panicked_attempts = attempts;
        }
        other => result.panicked = format!("{other:?}"),
    }
    match empty.await {
        Ok(Event::Failed { error, .. }) => result.empty = format!("failed: {error}"),
        other => result.empty = format!("{other:?}"),
    }

    let drain = pool.drain();
    result.refused_after_drain = matches!(
        pool.try_submit(Document { name: "late".into(), text: "too late".into() }),
        Err(foreman_wasm::SubmitError::Closed(document)) if document.name == "late"
    );
    let report = drain.await;
    let snap = report.snapshot;
    result.report = (
        snap.completed,
        snap.failed,
        snap.dead_lettered,
        snap.handed_back,
        snap.adds_up(),
    );
    for event in sink.borrow_mut().drain(..) {
        let kind = match &event {
            Event::Completed { task, .. } => {
                if task.name.starts_with("tried ") {
                    result.tried_completed += 1;
                }
                "completed"
            }
            Event::Failed { .. } => "failed",
            Event::Crashed { .. } => "crashed",
            Event::Hung { .. } => "hung",
            Event::HandedBack { .. } => "handed-back",
            _ => "unknown",
        };
        *result.sink.entry(kind.to_string()).or_default() += 1;
    }
    result.worker_heaps_in_use = pool.threads().iter().map(|t| t.heap.in_use).collect();
    drop(pool);
    result
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|err| JsError::new(&err.to_string()))
}

#[cfg(test)]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_dedicated_worker);

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn document(text: &str) -> Document {
        Document {
            name: "test".into(),
            text: text.into(),
        }
    }

    #[wasm_bindgen_test]
    fn words_are_counted_ignoring_case_and_ranked() {
        let summary = summary(&document(
            "The cat and the hat. THE END, don't stop; don't!",
        ))
        .unwrap();
        assert_eq!((summary.words, summary.distinct), (10, 7));
        assert_eq!(
            summary.top,
            [
                ("the".to_string(), 3),
                ("don't".to_string(), 2),
                ("and".into(), 1),
                ("cat".into(), 1),
                ("end".into(), 1)
            ]
        );
    }

    #[wasm_bindgen_test]
    fn a_text_without_words_is_an_error_not_a_crash() {
        let error = summary(&document(" ... !? ")).unwrap_err();
        assert_eq!(error, "test has no words");
    }

    #[wasm_bindgen_test]
    fn digests_are_sha256() {
        assert_eq!(
            sha256("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
