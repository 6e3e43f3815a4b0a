//! [`Queue`]: a bounded multi-producer multi-consumer queue with no lock and no allocation.
//!
//! # Algorithm
//!
//! Dmitry Vyukov's bounded MPMC queue
//! (<https://www.1024cores.net/home/lock-free-algorithms/queues/bounded-mpmc-queue>), with the
//! full/empty checks of crossbeam-queue's `ArrayQueue`, which make it linearizable: `try_push`
//! answers `Full` only if the queue really held `N` elements at one instant during the call,
//! and `try_pop` answers `Empty` only if it really held none. (heapless's `mpmc::Queue`
//! answers both spuriously under contention, heapless issue #583, and wraps its 8-bit stamps,
//! issues #121, #144, #461.)
//!
//! Every slot carries a *stamp*, a `usize` as wide as the head and tail positions, so a thread
//! stalled on an old stamp would have to sleep through `usize::MAX / 2` operations to be
//! fooled by wraparound. Positions advance by `ONE` = 2; bit 0 of `tail` is the
//! `CLOSED` flag, so `close` is one atomic `fetch_or` that every push observes.
//!
//! For slot `i` and lap `k` the stamp cycles through
//! `2(i + kN)` (free for the push at that position) → `2(i + kN) + 1` (full, ready for the pop
//! at that position) → `2(i + (k+1)N)` (free for the push one lap later).
//!
//! # Progress
//!
//! No lock is taken, and a thread never waits for another *unless* that thread has claimed a
//! slot (moved `head` or `tail` past it) and has not yet stamped it: then a thread that needs
//! exactly that slot spins until the stamp arrives. This is inherent to per-slot stamps and a
//! few instructions long, but it means a queue operation must not be interrupted by code that
//! waits on the same queue. On a single core, an interrupt handler that pushes while the main
//! loop is inside `try_pop` on a *full* queue would spin forever: take tasks inside a critical
//! section there (the README's embedded section shows how).

use core::fmt;
use core::mem::MaybeUninit;

use crate::sync::{
    array_of, fence, init_empty_cell, loom_const_fn, AtomicUsize, Backoff, CachePadded, Ordering,
    UnsafeCell,
};

/// Bit 0 of `tail`: set once the queue is closed.
const CLOSED: usize = 1;
/// The distance between two positions (bit 0 is reserved for [`CLOSED`]).
const ONE: usize = 2;

/// One cell of the ring.
struct Slot<T> {
    /// `position` if free for the push at `position`; `position + 1` if it holds the value
    /// pushed at `position`.
    stamp: AtomicUsize,
    value: UnsafeCell<MaybeUninit<T>>,
}

impl<T> Slot<T> {
    loom_const_fn! {
        fn new() -> Self {
            Slot { stamp: AtomicUsize::new(0), value: UnsafeCell::new(MaybeUninit::uninit()) }
        }
    }
}

/// Why [`Queue::try_push`] handed the value back.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PushError<T> {
    /// The queue held `N` elements.
    Full(T),
    /// The queue was closed with [`Queue::close`].
    Closed(T),
}

impl<T> PushError<T> {
    /// The value that was not pushed.
    ///
    /// ```
    /// use foreman_rt::queue::{PushError, Queue};
    ///
    /// let queue: Queue<&str, 1> = Queue::new();
    /// queue.try_push("first").unwrap();
    /// let err = queue.try_push("second").unwrap_err();
    /// assert_eq!(err, PushError::Full("second"));
    /// assert_eq!(err.into_inner(), "second");
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            PushError::Full(value) | PushError::Closed(value) => value,
        }
    }
}

impl<T> fmt::Debug for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PushError::Full(_) => "Full(..)",
            PushError::Closed(_) => "Closed(..)",
        })
    }
}

impl<T> fmt::Display for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PushError::Full(_) => "the queue is full",
            PushError::Closed(_) => "the queue is closed",
        })
    }
}

impl<T> core::error::Error for PushError<T> {}

/// Why [`Queue::try_pop`] returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PopError {
    /// The queue held no element (and is still open).
    Empty,
    /// The queue is closed and holds no element: nothing will ever come out again.
    Closed,
}

impl fmt::Display for PopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PopError::Empty => "the queue is empty",
            PopError::Closed => "the queue is closed and empty",
        })
    }
}

impl core::error::Error for PopError {}

/// A bounded multi-producer multi-consumer FIFO queue of capacity `N`.
///
/// `N` must be a power of two and greater than zero; anything else fails to compile.
/// The queue is allocation-free and `const`-constructible, so it can live in a `static`.
///
/// ```
/// use foreman_rt::queue::{PopError, PushError, Queue};
///
/// static QUEUE: Queue<u32, 4> = Queue::new();
///
/// QUEUE.try_push(1).unwrap();
/// QUEUE.try_push(2).unwrap();
/// assert_eq!(QUEUE.try_pop(), Ok(1));
///
/// QUEUE.close();
/// assert_eq!(QUEUE.try_push(3), Err(PushError::Closed(3)));
/// assert_eq!(QUEUE.try_pop(), Ok(2)); // what was queued still comes out
/// assert_eq!(QUEUE.try_pop(), Err(PopError::Closed));
/// ```
///
/// A capacity that is not a power of two is rejected at compile time:
///
/// ```compile_fail
/// let queue: foreman_rt::queue::Queue<u32, 3> = foreman_rt::queue::Queue::new();
/// ```
pub struct Queue<T, const N: usize> {
    /// Position of the next pop. Consumers only; on its own cache line.
    head: CachePadded<AtomicUsize>,
    /// Position of the next push, with [`CLOSED`] in bit 0. Producers only; own cache line.
    tail: CachePadded<AtomicUsize>,
    slots: [Slot<T>; N],
}

// SAFETY: values move through the queue from one thread to another, so `T: Send` is needed
// and enough: a value is only ever reached by the one thread that claimed its slot.
unsafe impl<T: Send, const N: usize> Send for Queue<T, N> {}
// SAFETY: as above; shared access only hands whole values from thread to thread.
unsafe impl<T: Send, const N: usize> Sync for Queue<T, N> {}

impl<T, const N: usize> Queue<T, N> {
    /// Positions advance by `ONE`, so one lap of the ring spans `N * ONE`.
    const LAP: usize = {
        assert!(N > 0, "a Queue needs a capacity greater than zero");
        assert!(
            N.is_power_of_two(),
            "a Queue's capacity must be a power of two"
        );
        N * ONE
    };

    loom_const_fn! {
        /// An empty, open queue.
        ///
        /// ```
        /// let queue: foreman_rt::queue::Queue<String, 8> = foreman_rt::queue::Queue::new();
        /// assert!(queue.is_empty());
        /// assert_eq!(queue.capacity(), 8);
        /// ```
        pub fn new() -> Self {
            let _ = Self::LAP; // evaluates the compile-time checks on `N`
            let mut slots: [Slot<T>; N] = array_of![Slot::new(); N];
            let mut i = 0;
            while i < N {
                slots[i].stamp = AtomicUsize::new(i * ONE);
                i += 1;
            }
            Queue {
                head: CachePadded::new(AtomicUsize::new(0)),
                tail: CachePadded::new(AtomicUsize::new(0)),
                slots,
            }
        }
    }

    /// Makes `place` an empty, open queue, slot by slot, without building the queue (or any
    /// `T`) on the stack: what [`new`](Self::new) returns, for a queue too large for the stack.
    ///
    /// # Safety
    /// `place` is valid for writes and aligned. What it held is overwritten, not dropped.
    pub(crate) unsafe fn init(place: *mut Self) {
        let _ = Self::LAP; // evaluates the compile-time checks on `N`
                           // SAFETY: per the contract `place` is valid for writes; each field is written once
                           // through a raw pointer, and no reference to the uninitialized memory is made.
        unsafe {
            (&raw mut (*place).head).write(CachePadded::new(AtomicUsize::new(0)));
            (&raw mut (*place).tail).write(CachePadded::new(AtomicUsize::new(0)));
            let slots = (&raw mut (*place).slots).cast::<Slot<T>>();
            for i in 0..N {
                let slot = slots.add(i);
                (&raw mut (*slot).stamp).write(AtomicUsize::new(i * ONE));
                init_empty_cell(&raw mut (*slot).value);
            }
        }
    }

    /// The slot that position `pos` maps to.
    #[inline(always)]
    fn slot(&self, pos: usize) -> &Slot<T> {
        // `N` is a power of two, so the mask keeps the index in bounds.
        &self.slots[(pos / ONE) & (N - 1)]
    }

    /// Appends `value`, or hands it back if the queue is full or closed.
    ///
    /// Never fails spuriously: `Full` means that at one instant during the call the queue held
    /// `N` elements.
    ///
    /// ```
    /// use foreman_rt::queue::{PushError, Queue};
    ///
    /// let queue: Queue<char, 2> = Queue::new();
    /// assert_eq!(queue.try_push('a'), Ok(()));
    /// assert_eq!(queue.try_push('b'), Ok(()));
    /// assert_eq!(queue.try_push('c'), Err(PushError::Full('c')));
    /// ```
    #[inline]
    pub fn try_push(&self, value: T) -> Result<(), PushError<T>> {
        self.push(value, false, true)
    }

    /// Like [`try_push`](Self::try_push), except that it also answers `Full` when the queue is
    /// one pop short of full and that pop is still emptying the very slot this push needs,
    /// instead of waiting for it. For `Supervisor::submit`, which waits for room anyway: it
    /// then sleeps until half the queue is free, instead of pushing in lockstep with the pops
    /// of a worker that empties the queue as fast as it is filled (and spinning through a
    /// whole time slice when that worker is preempted mid-pop).
    pub(crate) fn push_unless_nearly_full(&self, value: T) -> Result<(), PushError<T>> {
        self.push(value, false, false)
    }

    /// Appends `value` even if the queue is closed (a crashed worker's task going back in
    /// while the supervisor drains). Still refuses when full.
    pub(crate) fn push_ignoring_close(&self, value: T) -> Result<(), T> {
        self.push(value, true, true).map_err(PushError::into_inner)
    }

    /// `wait_for_pop`: when the slot still holds last lap's value and its pop is under way,
    /// wait for that pop (the linearizable answer) rather than answer `Full` at once.
    ///
    /// Hosts try the fast path, [`claim_for_push`](Self::claim_for_push), first, inlined
    /// into each caller. Bare metal (`target_os = "none"`) goes straight to [`push_contended`](Self::push_contended),
    /// which the compiler then keeps inside one copy of `push` for the three callers:
    /// firmware pays in flash for every inlined copy (the fast path cost 52–376 bytes of
    /// `.text` in the QEMU firmware), and a single core gains little from it.
    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn push(&self, value: T, ignore_close: bool, wait_for_pop: bool) -> Result<(), PushError<T>> {
        #[cfg(not(target_os = "none"))]
        if let Some((slot, pos)) = self.claim_for_push() {
            // SAFETY: `claim_for_push` found the slot free for `pos` and claimed `pos`.
            unsafe { Self::fill(slot, pos, value) };
            return Ok(());
        }
        self.push_contended(value, ignore_close, wait_for_pop)
    }

    /// The fast path of a push: the queue is open, the slot at the tail is free, and the
    /// claim succeeds at the first try; returns the claimed slot and position, which the
    /// caller must [`fill`](Self::fill). It is the first round of
    /// [`push_contended`](Self::push_contended)'s loop, with the same orderings for the same
    /// reasons; anything else (closed, full, another producer or a pop in the way) answers
    /// `None` and leaves the push to that loop, which starts over from a fresh tail.
    ///
    /// Only the index logic is inlined into each caller: the value itself never passes through
    /// here, so it is moved once (into the slot, or into `push_contended`), whatever its size.
    /// (Moving it through an inlined `Result<(), T>` made a 64 KiB `T` take over ten minutes
    /// to compile.) (valgrind, `cargo xtask bench`: a push cost 59 instructions where the
    /// whole protocol was one out-of-line function, 28 where LLVM chose to inline it, and
    /// costs 20–21 with this fast path, the benchmark's loop included.)
    #[cfg(not(target_os = "none"))]
    #[inline(always)]
    fn claim_for_push(&self) -> Option<(&Slot<T>, usize)> {
        // Relaxed: only a guess; the stamp check decides.
        let tail = self.tail.load(Ordering::Relaxed);
        // No test of the CLOSED bit: a closed tail is odd, `pos + 1` for its position `pos`,
        // and the slot's stamp equals `pos + 1` only once a push claimed `pos`, which moved
        // the tail on, so the claim below would fail. A closed queue always falls through to
        // the slow path, which answers `Closed` or, with `ignore_close`, pushes. Open, the
        // tail is the position itself.
        let slot = self.slot(tail);
        // Acquire: pairs with the Release stamp store of the pop that emptied this slot, so
        // its read of the old value happens before our write.
        // SeqCst (the claim): the empty check in `try_pop` (and the wake-word protocol built
        // on it) must see this claim in a single total order with its fence.
        // Relaxed on failure: the slow path starts over from fresh loads.
        if slot.stamp.load(Ordering::Acquire) == tail
            && self
                .tail
                .compare_exchange_weak(
                    tail,
                    tail.wrapping_add(ONE),
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            // The stamp said the slot is free for position `tail` (so, the claim having
            // succeeded, `tail` is an open position: see above), and the CAS claimed it.
            return Some((slot, tail));
        }
        None
    }

    /// Writes `value` into `slot` and stamps it full for position `pos`.
    ///
    /// # Safety
    ///
    /// This thread claimed position `pos` (moved `tail` past it) after an Acquire load of
    /// `slot`'s stamp found it free for `pos`: no other thread may touch the slot until the
    /// stamp store below.
    #[inline(always)]
    unsafe fn fill(slot: &Slot<T>, pos: usize, value: T) {
        slot.value.with_mut(|cell| {
            // SAFETY: the caller's claim makes this thread the only one that may touch the
            // slot until it publishes the stamp below; the Acquire load of the stamp ordered
            // the previous occupant's read before this write.
            unsafe { (*cell).write(value) };
        });
        // Release: publishes the value to the pop that Acquire-loads this stamp.
        slot.stamp.store(pos.wrapping_add(1), Ordering::Release);
    }

    /// The whole protocol of a push, with waiting: after the fast path on hosts, out of line
    /// (one copy for all callers, and the inlined fast path stays small); all of `push` on
    /// bare metal.
    #[cfg_attr(not(target_os = "none"), inline(never))]
    fn push_contended(
        &self,
        value: T,
        ignore_close: bool,
        wait_for_pop: bool,
    ) -> Result<(), PushError<T>> {
        let backoff = Backoff::new();
        // Relaxed: only a guess; the stamp check below decides.
        let mut tail = self.tail.load(Ordering::Relaxed);
        loop {
            if tail & CLOSED != 0 && !ignore_close {
                return Err(PushError::Closed(value));
            }
            let pos = tail & !CLOSED;
            let slot = self.slot(pos);
            // Acquire: pairs with the Release stamp store of the pop that emptied this slot,
            // so its read of the old value happens before our write below.
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == pos {
                // The slot is free for this position: claim it by moving the tail (keeping the
                // CLOSED bit as it is; a concurrent `close` makes this CAS fail).
                // SeqCst: the empty check in `try_pop` (and the wake-word protocol built on
                // it) must see this claim in a single total order with its fence.
                match self.tail.compare_exchange_weak(
                    tail,
                    tail.wrapping_add(ONE),
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // SAFETY: the stamp said the slot is free for `pos` (Acquire load
                        // above), and the CAS claimed `pos`.
                        unsafe { Self::fill(slot, pos, value) };
                        return Ok(());
                    }
                    Err(current) => {
                        tail = current;
                        backoff.spin();
                    }
                }
            } else if stamp.wrapping_add(Self::LAP) == pos.wrapping_add(1) {
                // The slot still holds the value pushed one lap ago. Full, or a pop of that
                // value is under way: tell them apart by the head.
                // SeqCst fence: orders our stamp read before the head read in the total order
                // shared with the consumers' SeqCst head CAS.
                fence(Ordering::SeqCst);
                // Relaxed: the fence above orders it.
                let head = self.head.load(Ordering::Relaxed);
                if head.wrapping_add(Self::LAP) == pos {
                    // At the moment of that head load the queue held N elements: the value one
                    // lap ago was not claimed yet, so no push could have moved the tail either.
                    // If it was also closed by then, say so: `Closed` is the stronger answer.
                    if self.tail.load(Ordering::Relaxed) & CLOSED != 0 && !ignore_close {
                        return Err(PushError::Closed(value));
                    }
                    return Err(PushError::Full(value));
                }
                if !wait_for_pop {
                    // A pop of that value is under way: N - 1 elements, as good as full.
                    return Err(PushError::Full(value));
                }
                backoff.spin();
                tail = self.tail.load(Ordering::Relaxed);
            } else {
                // Another producer claimed this position first; catch up.
                backoff.snooze();
                tail = self.tail.load(Ordering::Relaxed);
            }
        }
    }

    /// Removes the oldest element.
    ///
    /// Never fails spuriously: `Empty` means that at one instant during the call the queue held
    /// nothing. After [`close`](Self::close), elements still come out until none are left, then
    /// every call answers `Closed`.
    ///
    /// ```
    /// use foreman_rt::queue::{PopError, Queue};
    ///
    /// let queue: Queue<u8, 2> = Queue::new();
    /// assert_eq!(queue.try_pop(), Err(PopError::Empty));
    /// queue.try_push(7).unwrap();
    /// assert_eq!(queue.try_pop(), Ok(7));
    /// ```
    #[inline]
    pub fn try_pop(&self) -> Result<T, PopError> {
        // Hosts: the fast path first, like `push`'s; bare metal: the whole protocol, inlined.
        #[cfg(not(target_os = "none"))]
        if let Some((slot, pos)) = self.claim_for_pop() {
            // SAFETY: `claim_for_pop` found the slot full for `pos` and claimed `pos`.
            return Ok(unsafe { Self::empty(slot, pos) });
        }
        self.pop_contended()
    }

    /// The fast path of a pop: the slot at the head is full and the claim succeeds at the
    /// first try; returns the claimed slot and position, which the caller must
    /// [`empty`](Self::empty). Anything else answers `None` and leaves the pop to
    /// [`pop_contended`](Self::pop_contended), which starts over. Like
    /// [`claim_for_push`](Self::claim_for_push), only the index logic: the value is read once,
    /// straight into the caller's result.
    #[cfg(not(target_os = "none"))]
    #[inline(always)]
    fn claim_for_pop(&self) -> Option<(&Slot<T>, usize)> {
        // Relaxed: only a guess; the stamp check decides.
        let head = self.head.load(Ordering::Relaxed);
        let slot = self.slot(head);
        // Acquire: pairs with the push's Release stamp store, making its value visible.
        // SeqCst (the claim): pairs with the producers' fence in the full check (see
        // `push_contended`). Relaxed on failure: the slow path starts over from fresh loads.
        if slot.stamp.load(Ordering::Acquire) == head.wrapping_add(1)
            && self
                .head
                .compare_exchange_weak(
                    head,
                    head.wrapping_add(ONE),
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            // The stamp said the slot holds the value pushed at `head`, and the CAS claimed it.
            return Some((slot, head));
        }
        None
    }

    /// Reads the value out of `slot` and stamps it free for the push one lap after `pos`.
    ///
    /// # Safety
    ///
    /// This thread claimed position `pos` (moved `head` past it) after an Acquire load of
    /// `slot`'s stamp found it full for `pos`: the value is initialized and visible, and no
    /// other thread may touch the slot until the stamp store below.
    #[inline(always)]
    unsafe fn empty(slot: &Slot<T>, pos: usize) -> T {
        let value = slot.value.with(|cell| {
            // SAFETY: the caller's stamp check and claim: a push wrote this slot for `pos`,
            // the Acquire load made the write visible, and this thread is the only reader.
            // The stamp store below hands the slot on.
            unsafe { (*cell).assume_init_read() }
        });
        // Release: our read happens before the next lap's push writes the slot.
        slot.stamp
            .store(pos.wrapping_add(Self::LAP), Ordering::Release);
        value
    }

    /// The whole protocol of a pop, with the empty check: out of line after the fast path on
    /// hosts, like `push_contended`; inlined into `try_pop` on bare metal, as it always was.
    #[cfg_attr(not(target_os = "none"), inline(never))]
    #[cfg_attr(target_os = "none", inline)]
    fn pop_contended(&self) -> Result<T, PopError> {
        let backoff = Backoff::new();
        // Relaxed: only a guess; the stamp check below decides.
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            let slot = self.slot(head);
            // Acquire: pairs with the push's Release stamp store, making its value visible.
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == head.wrapping_add(1) {
                // SeqCst: pairs with the producers' fence in the full check (see `push`).
                match self.head.compare_exchange_weak(
                    head,
                    head.wrapping_add(ONE),
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // SAFETY: the stamp said the slot is full for `head` (Acquire load
                        // above), and the CAS claimed `head`.
                        return Ok(unsafe { Self::empty(slot, head) });
                    }
                    Err(current) => {
                        head = current;
                        backoff.spin();
                    }
                }
            } else if stamp == head {
                // Nothing was stamped here in this lap. Empty, or a push is under way: tell
                // them apart by the tail.
                // SeqCst fence: orders our stamp read before the tail read in the total order
                // shared with the producers' SeqCst tail CAS.
                fence(Ordering::SeqCst);
                // Relaxed: the fence above orders it.
                let tail = self.tail.load(Ordering::Relaxed);
                if tail & !CLOSED == head {
                    // At that instant no push had claimed this position, so no pop could have
                    // moved the head past it either: the queue was empty.
                    return Err(if tail & CLOSED != 0 {
                        PopError::Closed
                    } else {
                        PopError::Empty
                    });
                }
                backoff.spin();
                head = self.head.load(Ordering::Relaxed);
            } else {
                // Another consumer claimed this position first; catch up.
                backoff.snooze();
                head = self.head.load(Ordering::Relaxed);
            }
        }
    }

    /// Closes the queue: every later push answers `Closed`; pops drain what is left.
    ///
    /// Returns `true` if this call closed it, `false` if it was closed already.
    ///
    /// ```
    /// let queue: foreman_rt::queue::Queue<u8, 2> = foreman_rt::queue::Queue::new();
    /// assert!(queue.close());
    /// assert!(!queue.close());
    /// assert!(queue.is_closed());
    /// ```
    pub fn close(&self) -> bool {
        // SeqCst: a push either claimed its position before this (and succeeds) or observes
        // CLOSED; and the wake-word protocol orders shutdown against sleeping workers.
        self.tail.fetch_or(CLOSED, Ordering::SeqCst) & CLOSED == 0
    }

    /// Opens a closed queue again. Only called when no other thread uses the queue.
    pub(crate) fn reopen(&self) {
        // SeqCst: like `close`.
        self.tail.fetch_and(!CLOSED, Ordering::SeqCst);
    }

    /// Whether [`close`](Self::close) has been called. A snapshot: another thread may close
    /// the queue right after.
    ///
    /// ```
    /// let queue: foreman_rt::queue::Queue<u8, 2> = foreman_rt::queue::Queue::new();
    /// assert!(!queue.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        // SeqCst: like every snapshot here, consistent with the total order of claims.
        self.tail.load(Ordering::SeqCst) & CLOSED != 0
    }

    /// The number of elements, as a snapshot: with other threads pushing and popping it may be
    /// stale as soon as it returns, but it was exact at one instant during the call.
    ///
    /// ```
    /// let queue: foreman_rt::queue::Queue<u8, 4> = foreman_rt::queue::Queue::new();
    /// queue.try_push(1).unwrap();
    /// queue.try_push(2).unwrap();
    /// assert_eq!(queue.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        let (popped, pushed) = self.positions();
        pushed.wrapping_sub(popped) / ONE
    }

    /// Whether the queue holds no element, as a snapshot (see [`len`](Self::len)).
    ///
    /// ```
    /// let queue: foreman_rt::queue::Queue<u8, 4> = foreman_rt::queue::Queue::new();
    /// assert!(queue.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the queue holds `N` elements, as a snapshot (see [`len`](Self::len)).
    ///
    /// ```
    /// let queue: foreman_rt::queue::Queue<u8, 1> = foreman_rt::queue::Queue::new();
    /// queue.try_push(1).unwrap();
    /// assert!(queue.is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        self.len() == N
    }

    /// The capacity, `N`.
    ///
    /// ```
    /// let queue: foreman_rt::queue::Queue<u8, 16> = foreman_rt::queue::Queue::new();
    /// assert_eq!(queue.capacity(), 16);
    /// ```
    pub const fn capacity(&self) -> usize {
        N
    }

    /// `(head, tail)` positions without the CLOSED bit, read at one instant: the tail is read
    /// twice and the pair is kept only if it did not move in between.
    fn positions(&self) -> (usize, usize) {
        loop {
            // SeqCst: the three loads are ordered with each other and with every claim.
            let tail = self.tail.load(Ordering::SeqCst) & !CLOSED;
            let head = self.head.load(Ordering::SeqCst);
            if self.tail.load(Ordering::SeqCst) & !CLOSED == tail {
                return (head, tail);
            }
        }
    }

    /// How many elements were ever popped, and how many pushes were ever claimed (both
    /// modulo `usize::MAX / 2 + 1`), at one instant: the difference is at most `N`. Claimed
    /// pushes include one under way.
    ///
    /// A reader that saw a pop's effects (through an Acquire of something the popping thread
    /// wrote later) gets at least that pop, and its push (SeqCst loads, after the caller's).
    pub(crate) fn counts(&self) -> (usize, usize) {
        let (head, tail) = self.positions();
        (head / ONE, tail / ONE)
    }
}

impl<T, const N: usize> Default for Queue<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, const N: usize> Drop for Queue<T, N> {
    fn drop(&mut self) {
        // `&mut self`: no other thread can be inside an operation, so every claimed position
        // between head and tail holds a value.
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Relaxed) & !CLOSED;
        let mut pos = head;
        while pos != tail {
            self.slot(pos).value.with_mut(|cell| {
                // SAFETY: positions in [head, tail) were pushed and not popped, and with
                // `&mut self` every push has completed; each is dropped exactly once here.
                unsafe { (*cell).assume_init_drop() };
            });
            pos = pos.wrapping_add(ONE);
        }
    }
}

impl<T, const N: usize> fmt::Debug for Queue<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("len", &self.len())
            .field("capacity", &N)
            .field("closed", &self.is_closed())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    extern crate std;
    use std::sync::atomic::AtomicUsize as Counter;
    use std::sync::Arc;
    use std::thread;
    use std::vec::Vec;

    #[test]
    fn fifo_order_and_capacity() {
        let q: Queue<u32, 4> = Queue::new();
        for i in 0..4 {
            q.try_push(i).unwrap();
        }
        assert!(q.is_full());
        assert_eq!(q.try_push(99), Err(PushError::Full(99)));
        for i in 0..4 {
            assert_eq!(q.try_pop(), Ok(i));
        }
        assert_eq!(q.try_pop(), Err(PopError::Empty));
    }

    #[test]
    fn wraps_around_many_laps() {
        let q: Queue<usize, 2> = Queue::new();
        for i in 0..1000 {
            q.try_push(i).unwrap();
            q.try_push(i + 1).unwrap();
            assert_eq!(q.try_pop(), Ok(i));
            assert_eq!(q.try_pop(), Ok(i + 1));
        }
        assert!(q.is_empty());
    }

    #[test]
    fn capacity_one() {
        let q: Queue<u8, 1> = Queue::new();
        q.try_push(1).unwrap();
        assert_eq!(q.try_push(2), Err(PushError::Full(2)));
        assert_eq!(q.try_pop(), Ok(1));
        q.try_push(3).unwrap();
        assert_eq!(q.try_pop(), Ok(3));
    }

    #[test]
    fn close_drains_then_reports_closed() {
        let q: Queue<u8, 4> = Queue::new();
        q.try_push(1).unwrap();
        q.try_push(2).unwrap();
        assert!(q.close());
        assert_eq!(q.try_push(3), Err(PushError::Closed(3)));
        assert_eq!(q.try_pop(), Ok(1));
        assert_eq!(q.try_pop(), Ok(2));
        assert_eq!(q.try_pop(), Err(PopError::Closed));
    }

    #[test]
    fn full_and_closed_answers_closed() {
        let q: Queue<u8, 1> = Queue::new();
        q.try_push(1).unwrap();
        q.close();
        assert_eq!(q.try_push(2), Err(PushError::Closed(2)));
    }

    #[test]
    fn push_ignoring_close_still_respects_capacity() {
        let q: Queue<u8, 1> = Queue::new();
        q.close();
        assert_eq!(q.push_ignoring_close(1), Ok(()));
        assert_eq!(q.push_ignoring_close(2), Err(2));
        assert!(q.is_closed());
        assert_eq!(q.try_pop(), Ok(1));
        assert_eq!(q.try_pop(), Err(PopError::Closed));
    }

    #[test]
    fn a_closed_queue_refuses_pushes_at_every_position_and_fill_level() {
        // The fast path does not test the CLOSED bit (see `claim_for_push`): check that a closed
        // queue refuses at every tail position of two laps and every fill level, while
        // `push_ignoring_close` still fills it exactly to capacity.
        for offset in 0..8 {
            for fill in 0..=4 {
                let q: Queue<usize, 4> = Queue::new();
                for i in 0..offset {
                    q.try_push(i).unwrap();
                    assert_eq!(q.try_pop(), Ok(i));
                }
                for i in 0..fill {
                    q.try_push(i).unwrap();
                }
                assert!(q.close());
                assert_eq!(q.try_push(99), Err(PushError::Closed(99)));
                assert_eq!(q.push_unless_nearly_full(98), Err(PushError::Closed(98)));
                for i in fill..4 {
                    assert_eq!(q.push_ignoring_close(i), Ok(()));
                    assert_eq!(q.try_push(99), Err(PushError::Closed(99)));
                }
                assert_eq!(q.push_ignoring_close(4), Err(4));
                for i in 0..4 {
                    assert_eq!(q.try_pop(), Ok(i), "offset {offset}, fill {fill}");
                }
                assert_eq!(q.try_pop(), Err(PopError::Closed));
            }
        }
    }

    #[test]
    fn reopen_accepts_again() {
        let q: Queue<u8, 2> = Queue::new();
        q.close();
        q.reopen();
        assert!(!q.is_closed());
        q.try_push(5).unwrap();
        assert_eq!(q.try_pop(), Ok(5));
    }

    #[test]
    fn counts_track_pushes_and_pops() {
        let q: Queue<u8, 4> = Queue::new();
        q.try_push(1).unwrap();
        q.try_push(2).unwrap();
        q.try_pop().unwrap();
        q.close();
        assert_eq!(q.counts(), (1, 2));
        assert_eq!(q.len(), 1);
    }

    /// Counts drops so the tests can prove each element is dropped exactly once.
    struct Tracked(Arc<Counter>);
    impl Drop for Tracked {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn drop_drops_remaining_elements_exactly_once() {
        let drops = Arc::new(Counter::new(0));
        {
            let q: Queue<Tracked, 8> = Queue::new();
            for _ in 0..6 {
                q.try_push(Tracked(drops.clone())).ok().unwrap();
            }
            drop(q.try_pop().unwrap()); // 1 dropped by the caller
            drop(q.try_pop().unwrap()); // 2
            assert_eq!(drops.load(Ordering::Relaxed), 2);
        }
        assert_eq!(drops.load(Ordering::Relaxed), 6);
    }

    #[test]
    fn rejected_values_come_back_undropped() {
        let drops = Arc::new(Counter::new(0));
        let q: Queue<Tracked, 1> = Queue::new();
        q.try_push(Tracked(drops.clone())).ok().unwrap();
        let back = q.try_push(Tracked(drops.clone())).unwrap_err().into_inner();
        assert_eq!(drops.load(Ordering::Relaxed), 0);
        drop(back);
        assert_eq!(drops.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn mpmc_every_value_once() {
        const PER_PRODUCER: usize = 20_000;
        const PRODUCERS: usize = 3;
        let q: Arc<Queue<usize, 16>> = Arc::new(Queue::new());
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let q = q.clone();
                thread::spawn(move || {
                    for i in 0..PER_PRODUCER {
                        let mut v = p * PER_PRODUCER + i;
                        while let Err(e) = q.try_push(v) {
                            v = e.into_inner();
                            thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        let seen: Arc<Vec<Counter>> = Arc::new(
            (0..PRODUCERS * PER_PRODUCER)
                .map(|_| Counter::new(0))
                .collect(),
        );
        let taken = Arc::new(Counter::new(0));
        let consumers: Vec<_> = (0..3)
            .map(|_| {
                let (q, seen, taken) = (q.clone(), seen.clone(), taken.clone());
                thread::spawn(move || {
                    while taken.load(Ordering::Relaxed) < PRODUCERS * PER_PRODUCER {
                        match q.try_pop() {
                            Ok(v) => {
                                seen[v].fetch_add(1, Ordering::Relaxed);
                                taken.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(_) => thread::yield_now(),
                        }
                    }
                })
            })
            .collect();
        for t in producers.into_iter().chain(consumers) {
            t.join().unwrap();
        }
        assert!(seen.iter().all(|c| c.load(Ordering::Relaxed) == 1));
    }
}
