//! # foreman-wasm
//!
//! Supervised Web Workers for any wasm-bindgen app: a [`Pool`] of W worker threads on the
//! module's shared memory, under foreman's supervisor. A worker that traps (a panic aborts)
//! or hangs (past the watchdog's deadline) is killed, proven dead, and replaced on the same
//! memory; its task is retried or dead-lettered by the [`Policy`]; a worker killed inside
//! `malloc` cannot block the others ([`WorkerHeaps`]). Every outcome arrives as a
//! [`foreman_rt::host::Event`], the vocabulary every foreman host speaks.
//!
//! ```ignore
//! use foreman_wasm::{Config, Event, Pool, Policy, WorkerHeaps};
//!
//! #[global_allocator]
//! static ALLOCATOR: WorkerHeaps = WorkerHeaps;
//!
//! /// Counts the words of each text on a worker thread.
//! async fn count_words(texts: Vec<String>) -> Result<Vec<usize>, foreman_wasm::StartError> {
//!     let policy = Policy::DEFAULT.with_watchdog(2_000).expect("a valid deadline");
//!     let pool = Pool::<String, usize, String>::start(
//!         Config::new(2).with_policy(policy),
//!         |_ctx, text| Ok(text.split_whitespace().count()),
//!         |event| web_sys::console::log_1(&format!("{event:?}").into()),
//!     )?;
//!     let submissions: Vec<_> = texts.into_iter().map(|text| pool.submit(text)).collect();
//!     let mut counts = Vec::new();
//!     for submission in submissions {
//!         if let Ok(Event::Completed { output, .. }) = submission.await {
//!             counts.push(output);
//!         }
//!     }
//!     let report = pool.drain().await; // every thread gone
//!     assert!(report.snapshot.adds_up());
//!     Ok(counts)
//! }
//! ```
//!
//! To JavaScript, a pool is a small class, [`JsPool`]: `await pool.run(input)`.
//!
//! # What the app provides
//!
//! - The allocator line above (see [`heap`] for the contract).
//! - A build with shared memory: `wasm32-unknown-unknown` with the standard library rebuilt
//!   for atomics (see the README's "Use foreman in your web app").
//! - A page served with `Cross-Origin-Opener-Policy: same-origin` and
//!   `Cross-Origin-Embedder-Policy: require-corp`, and the glue built with
//!   `wasm-bindgen --target web`. The worker script ships inside this crate (a wasm-bindgen
//!   snippet): the app copies none.
//!
//! # Modules
//!
//! One part per job, each reporting back to the pool rather than reaching into the others:
//!
//! - [`Pool`] (`pool.rs`): the page's side — it owns the parts below and turns what they report
//!   into events, notices, replacements and reports.
//! - `shared.rs`: what the threads share and run — the worker loop, the clock's tick.
//! - `threads.rs`: the thread table — Web Workers, life locks (proof of death), the after-death
//!   check. `entry.rs` and `src/worker.js`: where threads enter the module.
//! - `feed.rs`: submissions waiting for room and for their task's outcome ([`Submission`]).
//! - `clock.rs`: the clock thread and the page's watch over it.
//! - `outbox.rs`: how workers report to the page without blocking it.
//! - [`heap`]: one heap per worker thread ([`WorkerHeaps`]).
//! - [`park`]: idle workers sleep with `memory.atomic.wait32`.
//! - [`JsPool`] (`js.rs`): the pool as a JavaScript class; [`Notice`] (`notice.rs`): host
//!   telemetry.

// `memory.atomic.wait32` and `memory.atomic.notify` (`core::arch::wasm32`) are still unstable
// (rust-lang/rust#77839). The crate needs a toolchain that rebuilds the standard library with
// atomics anyway (nightly, or a stable one with RUSTC_BOOTSTRAP=1), so it may use them.
#![feature(stdarch_wasm_atomic_wait)]

#[cfg(not(all(target_arch = "wasm32", target_feature = "atomics")))]
compile_error!(
    "foreman-wasm builds only for wasm32-unknown-unknown with shared memory (the atomics \
     target feature): see the README's \"Use foreman in your web app\""
);

mod callback;
mod clock;
mod entry;
mod feed;
pub mod heap;
mod js;
mod notice;
mod outbox;
mod panic;
pub mod park;
mod pool;
mod shared;
#[cfg(test)]
mod test_support;
mod threads;

pub use feed::{Submission, TaskId, TaskOptions};
pub use foreman_rt::host::{Event, Report};
pub use foreman_rt::policy::{self, Policy};
pub use foreman_rt::{
    Context, Decision, Disposition, Shutdown, Snapshot, SubmitError, SupervisorState, WorkerState,
};
pub use heap::WorkerHeaps;
pub use js::JsPool;
pub use notice::Notice;
pub use pool::{Config, Pool, StartError, Stopping, ThreadInfo};
pub use threads::ThreadState;

// The library's own tests run with its allocator installed, as an app's would.
#[cfg(test)]
#[global_allocator]
static ALLOCATOR: WorkerHeaps = WorkerHeaps;

#[cfg(test)]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_dedicated_worker);
