//! The one place that picks the synchronization primitives.
//!
//! Everything else in the crate imports atomics, cells, the mutex and the back-off from here,
//! so that one `cfg` decides what they are made of:
//!
//! | build | atomics | `UnsafeCell`, `Mutex`, back-off |
//! |---|---|---|
//! | default | `core::sync::atomic` | `core::cell`, `spin`, `crossbeam-utils` |
//! | feature `portable-atomic` | `portable_atomic` (thumbv6m, riscv32i) | same as default |
//! | `--cfg loom` | `loom::sync::atomic` | loom's, so the model checker sees every access |
//!
//! loom's types cannot be built in a `const fn`, so the few constructors that are `const`
//! elsewhere are declared with [`loom_const_fn!`] and arrays with [`array_of!`].

/// The wake-word type that [`Park`](crate::park::Park) implementations receive.
#[cfg(loom)]
pub use loom::sync::atomic::AtomicU32;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicUsize, Ordering};

/// The wake-word type that [`Park`](crate::park::Park) implementations receive.
#[cfg(all(not(loom), feature = "portable-atomic"))]
pub use portable_atomic::AtomicU32;
#[cfg(all(not(loom), feature = "portable-atomic"))]
pub(crate) use portable_atomic::{fence, AtomicUsize, Ordering};

/// The wake-word type that [`Park`](crate::park::Park) implementations receive.
#[cfg(all(not(loom), not(feature = "portable-atomic")))]
pub use core::sync::atomic::AtomicU32;
#[cfg(all(not(loom), not(feature = "portable-atomic")))]
pub(crate) use core::sync::atomic::{fence, AtomicUsize, Ordering};

#[cfg(all(feature = "cancellation", not(loom), target_has_atomic = "64"))]
pub(crate) use core::sync::atomic::AtomicU64;
/// The word of a [`Ticket`](crate::Ticket): 64-bit, where the target has such atomics (not
/// from `portable-atomic`, whose 64-bit atomics need its `fallback` feature on targets without
/// them).
#[cfg(all(feature = "cancellation", loom))]
pub(crate) use loom::sync::atomic::AtomicU64;

/// Declares a function that is `const` except under loom.
macro_rules! loom_const_fn {
    ($(#[$attr:meta])* $vis:vis fn $($rest:tt)*) => {
        #[cfg(not(loom))]
        $(#[$attr])* $vis const fn $($rest)*
        #[cfg(loom)]
        $(#[$attr])* $vis fn $($rest)*
    };
}
pub(crate) use loom_const_fn;

/// `[expr; N]` for an `expr` that is not `Copy`: a `const` block normally, `from_fn` under loom.
macro_rules! array_of {
    ($e:expr; $n:expr) => {{
        #[cfg(not(loom))]
        let array = [const { $e }; $n];
        #[cfg(loom)]
        let array = core::array::from_fn(|_| $e);
        array
    }};
}
pub(crate) use array_of;

/// An `UnsafeCell` with loom's closure-based API, so accesses are checked under loom.
#[cfg(not(loom))]
pub(crate) struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        Self(core::cell::UnsafeCell::new(value))
    }

    /// Gives `f` a pointer for reading.
    #[inline(always)]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Gives `f` a pointer for writing.
    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;

/// Makes the cell at `place` ready for use, holding nothing, without writing a `T`: for the
/// in-place constructors, which must not build a large `T`-sized value on the stack.
///
/// # Safety
/// `place` is valid for writes and aligned.
#[inline(always)]
pub(crate) unsafe fn init_empty_cell<T>(place: *mut UnsafeCell<core::mem::MaybeUninit<T>>) {
    // Normally there is nothing to write: an uninitialized `MaybeUninit` is a valid one, and
    // the wrapper adds no state of its own.
    #[cfg(not(loom))]
    let _ = place;
    // Under loom the cell carries the model checker's bookkeeping, which must be initialized.
    // SAFETY: per the contract, `place` is valid for writes and aligned.
    #[cfg(loom)]
    unsafe {
        place.write(UnsafeCell::new(core::mem::MaybeUninit::uninit()))
    };
}

/// The mutex for cold paths (the restart log). Never held across task code.
#[cfg(not(loom))]
pub(crate) struct Mutex<T>(spin::Mutex<T>);

#[cfg(not(loom))]
impl<T> Mutex<T> {
    pub(crate) const fn new(value: T) -> Self {
        Self(spin::Mutex::new(value))
    }

    pub(crate) fn lock(&self) -> spin::MutexGuard<'_, T> {
        self.0.lock()
    }
}

#[cfg(loom)]
pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

#[cfg(loom)]
impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(loom::sync::Mutex::new(value))
    }

    pub(crate) fn lock(&self) -> loom::sync::MutexGuard<'_, T> {
        self.0.lock().unwrap()
    }
}

/// Keeps hot atomics written by different threads on different cache lines. Bare-metal
/// targets (`target_os = "none"`: microcontrollers, one core or cores without a shared data
/// cache) have no lines to share, so there it is a plain wrapper and costs no RAM.
#[cfg(not(target_os = "none"))]
pub(crate) use crossbeam_utils::CachePadded;

/// See the other `CachePadded`: a plain wrapper on bare metal.
#[cfg(target_os = "none")]
#[repr(transparent)]
pub(crate) struct CachePadded<T>(T);

#[cfg(target_os = "none")]
impl<T> CachePadded<T> {
    pub(crate) const fn new(value: T) -> Self {
        CachePadded(value)
    }
}

#[cfg(target_os = "none")]
impl<T> core::ops::Deref for CachePadded<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// Exponential back-off for the short waits inside the queue.
#[cfg(all(not(loom), not(target_os = "none")))]
pub(crate) use crossbeam_utils::Backoff;

/// On bare metal, one pause per retry: a microcontroller has one core (or a few without a
/// shared cache), so spinning longer does not let the awaited thread finish sooner, and every
/// inlined back-off loop costs flash.
#[cfg(all(not(loom), target_os = "none"))]
pub(crate) struct Backoff;

#[cfg(all(not(loom), target_os = "none"))]
impl Backoff {
    #[inline(always)]
    pub(crate) fn new() -> Self {
        Backoff
    }

    #[inline(always)]
    pub(crate) fn spin(&self) {
        core::hint::spin_loop();
    }

    #[inline(always)]
    pub(crate) fn snooze(&self) {
        core::hint::spin_loop();
    }
}

/// Under loom a waiting thread must yield, or the model never lets the awaited thread run.
#[cfg(loom)]
pub(crate) struct Backoff;

#[cfg(loom)]
impl Backoff {
    pub(crate) fn new() -> Self {
        Backoff
    }

    pub(crate) fn spin(&self) {
        loom::thread::yield_now();
    }

    pub(crate) fn snooze(&self) {
        loom::thread::yield_now();
    }
}

/// The ordering point of a Dekker pair (a thread writes X then reads Y, another writes Y then
/// reads X, and at least one must see the other's write).
///
/// The code reaches it with `SeqCst` operations on both sides, which the C++20 memory model
/// (Rust's) places in one total order: that alone guarantees the Dekker property, so in a
/// normal build this compiles to nothing. loom, however, models `SeqCst` *accesses* as
/// `AcqRel` (tokio-rs/loom#180) while it does model `SeqCst` *fences*, so under loom the
/// guarantee is made explicit here and the models check exactly what the code relies on.
#[inline(always)]
pub(crate) fn dekker_fence() {
    #[cfg(loom)]
    fence(Ordering::SeqCst);
}

/// One pause inside a polling loop (a yield under loom).
#[inline(always)]
pub(crate) fn spin_loop() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    core::hint::spin_loop();
}
