//! Hosts: what gives the core life on a platform.
//!
//! A host attaches workers to a [`Supervisor`](crate::Supervisor), runs one loop per worker,
//! parks idle ones with its own [`Park`](crate::park::Park), reports crashes and feeds the
//! clock. The core is the same everywhere; hosts are thin, and they report in one vocabulary,
//! [`Event`] (and, feature `alloc`, the `Report` a shutdown leaves), whose crash cause is a type
//! parameter: a `String` where the host allocates, a value on the embassy host.
//!
//! | host | where | parks with | a crash is |
//! |---|---|---|---|
//! | [`threads`] (feature `std`) | operating systems | futex (`atomic-wait`) | a panic, caught |
//! | `processes` (feature `processes`, Linux) | worker processes over shared memory | shared futex | the death of a process: a signal, an abort, a panic; the process is replaced |
//! | `foreman-wasm` (the `wasm/` crate) | browsers | `memory.atomic.wait32` | a trap; the Worker is replaced |
//! | `embassy` (feature `embassy`) | async firmware on embassy | wakers (`embassy-sync`) | a fault returned, or a hung future dropped |
//! | `cooperative` (feature `cooperative`) | a bare-metal main loop (Cortex-M, RISC-V) | the firmware's sleep (`WFI`) inside a critical section | a fault returned |

#[cfg(feature = "cooperative")]
pub mod cooperative;
// Not under loom: the model checker's atomics are not `const`, and it models the core, not hosts.
#[cfg(all(feature = "embassy", not(loom)))]
pub mod embassy;
mod event;
#[cfg(all(feature = "processes", target_os = "linux"))]
pub mod processes;
#[cfg(feature = "std")]
pub mod threads;

#[cfg(feature = "alloc")]
pub use event::Report;
pub use event::{Cause, Event, Failure};

/// The futex word behind a wake word (they are the same four bytes).
#[cfg(feature = "std")]
fn futex(word: &crate::park::AtomicU32) -> &core::sync::atomic::AtomicU32 {
    // SAFETY: `word` is an AtomicU32 (core's or portable-atomic's, both `#[repr(C, align(4))]`
    // over a u32), valid for the lifetime of the borrow; the futex only accesses it atomically.
    unsafe { core::sync::atomic::AtomicU32::from_ptr(word.as_ptr()) }
}

/// The message of a panic payload.
#[cfg(feature = "std")]
fn panic_message(payload: &(dyn core::any::Any + Send)) -> alloc::string::String {
    use alloc::string::ToString;
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<alloc::string::String>() {
        text.clone()
    } else {
        "a panic with a non-string payload".to_string()
    }
}

#[cfg(feature = "std")]
std::thread_local! {
    /// The pool this thread works for (as a worker, keeper, watchdog or watcher): the address
    /// of the pool's shared state, or null. Set for the thread's whole life (see `OwnThread`).
    static OWN_POOL: core::cell::Cell<*const ()> = const { core::cell::Cell::new(core::ptr::null()) };
}

/// Marks the current thread as one of a pool's while it lives: the thread and process hosts
/// ask it so that a call from their own threads never waits for those threads.
#[cfg(feature = "std")]
struct OwnThread;

#[cfg(feature = "std")]
impl OwnThread {
    fn enter(pool: *const ()) -> OwnThread {
        OWN_POOL.with(|own| own.set(pool));
        OwnThread
    }

    /// Whether the current thread is one of the pool `pool`'s. Inline: the thread host asks
    /// on every `submit`, and a call into this crate there costs 9 instructions per dispatched
    /// task (`cargo xtask bench --only instructions`: 194 without, 185 with).
    #[inline]
    fn is(pool: *const ()) -> bool {
        // A thread-local without a destructor is reachable even while a thread exits.
        OWN_POOL
            .try_with(core::cell::Cell::get)
            .is_ok_and(|own| own == pool)
    }
}

#[cfg(feature = "std")]
impl Drop for OwnThread {
    fn drop(&mut self) {
        OWN_POOL.with(|own| own.set(core::ptr::null()));
    }
}

/// Drops a value whose destructor is user code (a panic's payload, a discarded result)
/// without letting a panic in it escape: the bookkeeping that follows must happen. A payload
/// that panics again when dropped is forgotten instead.
#[cfg(feature = "std")]
fn discard<V>(value: V) {
    use std::panic::{self, AssertUnwindSafe};
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(move || drop(value))) {
        core::mem::forget(payload);
    }
}

/// The stack size for a host thread that moves values of `moved` bytes in all by value (a
/// task, an outcome and the event that carries them): the default 2 MiB for the thread's own
/// frames, plus room for several copies of them (unoptimized builds keep a temporary per
/// move). A 1 MiB task type overflows a default stack; the reserve is virtual memory, only
/// what is touched is committed.
#[cfg(feature = "std")]
fn stack_size(moved: usize) -> usize {
    const OWN: usize = 2 << 20;
    const COPIES: usize = 16;
    OWN.saturating_add(moved.saturating_mul(COPIES))
}
