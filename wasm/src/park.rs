//! [`WasmPark`]: idle workers sleep with `memory.atomic.wait32` and wake with
//! `memory.atomic.notify`; [`wait`], [`notify_one`] and [`notify_all`] are the module's only
//! uses of those instructions.

use core::arch::wasm32;

use foreman_rt::park::{AtomicU32, Park};

/// Parks Web Worker threads on a word of the shared memory.
///
/// Browsers forbid waiting on the page's main thread (`memory.atomic.wait32` traps there), so
/// the main thread must never call anything that parks: it uses
/// [`Supervisor::try_submit`](foreman_rt::Supervisor::try_submit), never `submit` or
/// `wait_stopped`. Waking (`notify`) is allowed everywhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct WasmPark;

impl Park for WasmPark {
    fn park(&self, word: &AtomicU32, expected: u32) {
        wait(word, expected, NO_TIMEOUT);
    }

    fn unpark_one(&self, word: &AtomicU32) {
        notify_one(word);
    }

    fn unpark_all(&self, word: &AtomicU32) {
        notify_all(word);
    }
}

/// A timeout for [`wait`] that never expires.
pub const NO_TIMEOUT: i64 = -1;

/// Sleeps while `word` holds `expected`: until a notify on it, or `timeout_ns` nanoseconds
/// ([`NO_TIMEOUT`]: no limit). Returns at once if `word` holds another value. Traps on the
/// page's main thread, where browsers forbid waiting.
pub fn wait(word: &AtomicU32, expected: u32, timeout_ns: i64) {
    // SAFETY: `word` is a live, 4-byte aligned atomic in the module's shared memory for the
    // duration of the call (a reference); the wait only reads it atomically.
    unsafe { wasm32::memory_atomic_wait32(address(word), expected as i32, timeout_ns) };
}

/// Wakes one thread sleeping in [`wait`] on `word`.
pub fn notify_one(word: &AtomicU32) {
    // SAFETY: as in `wait`; notify does not access the word's value.
    unsafe { wasm32::memory_atomic_notify(address(word), 1) };
}

/// Wakes every thread sleeping in [`wait`] on `word`.
pub fn notify_all(word: &AtomicU32) {
    // SAFETY: as in `wait`; notify does not access the word's value.
    unsafe { wasm32::memory_atomic_notify(address(word), u32::MAX) };
}

/// The word's address as `memory.atomic.*` wants it.
fn address(word: &AtomicU32) -> *mut i32 {
    word.as_ptr().cast::<i32>()
}
