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

/// The longest a worker sleeps without looking at its condition again. A wake-up can be lost
/// for good when a thread is terminated half-way through a notify (it flagged a wake-up as on
/// its way, then died before sending it; the flag then makes every later notifier skip):
/// the pool terminates only condemned workers, but a worker is condemned while busy, and a
/// busy worker passes work on (a notify) before it runs its task. Sleeping at most this long,
/// the sleepers find the work anyway, and the first to wake clears the flag. Idle workers
/// wake a few times a second for it: a few microseconds each.
const PARK_BOUND_NS: i64 = 250_000_000;

impl Park for WasmPark {
    fn park(&self, word: &AtomicU32, expected: u32) {
        // A return on the timeout is a spurious wake-up, which `Park` allows.
        wait(word, expected, PARK_BOUND_NS);
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

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    /// Review finding 14: a sleeper whose wake-up was lost (never notified) comes back by
    /// itself, so it finds the work that is waiting.
    #[wasm_bindgen_test]
    fn a_parked_thread_whose_wake_up_is_lost_looks_again_within_the_bound() {
        let word = AtomicU32::new(7);
        let start = crate::entry::now();
        WasmPark.park(&word, 7);
        let slept = crate::entry::now() - start;
        assert!(
            (200.0..5_000.0).contains(&slept),
            "hung or early: a park nobody notifies returned after {slept} ms"
        );
    }
}
