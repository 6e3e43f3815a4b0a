//! [`WasmPark`]: idle workers sleep with `memory.atomic.wait32` and wake with
//! `memory.atomic.notify`.

use core::arch::wasm32;

use foreman::park::{AtomicU32, Park};

/// Parks Web Worker threads on a word of the shared memory.
///
/// Browsers forbid waiting on the page's main thread (`memory.atomic.wait32` traps there), so
/// the main thread must never call anything that parks: it uses
/// [`Supervisor::try_submit`](foreman::Supervisor::try_submit), never `submit` or
/// `wait_stopped`. Waking (`notify`) is allowed everywhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct WasmPark;

/// The word's address as `memory.atomic.*` wants it.
fn address(word: &AtomicU32) -> *mut i32 {
    word.as_ptr().cast::<i32>()
}

impl Park for WasmPark {
    fn park(&self, word: &AtomicU32, expected: u32) {
        // SAFETY: `word` is a live, 4-byte aligned atomic in the module's shared memory for the
        // duration of the call; the wait only reads it atomically. -1: no timeout.
        unsafe { wasm32::memory_atomic_wait32(address(word), expected as i32, -1) };
    }

    fn unpark_one(&self, word: &AtomicU32) {
        // SAFETY: as in `park`; notify does not access the word's value.
        unsafe { wasm32::memory_atomic_notify(address(word), 1) };
    }

    fn unpark_all(&self, word: &AtomicU32) {
        // SAFETY: as in `unpark_one`.
        unsafe { wasm32::memory_atomic_notify(address(word), u32::MAX) };
    }
}
