//! The global allocator: one heap (*arena*) per worker slot, one shared by everything else.
//!
//! # Why
//!
//! The standard library's allocator on wasm32 is a single dlmalloc behind one global lock. A
//! Web Worker that is terminated (hung) or traps while it holds that lock leaves it held
//! forever, and every other thread — the page's main thread included — deadlocks at its next
//! allocation. So each worker slot gets its own dlmalloc heap behind its own lock: a worker
//! that dies inside `malloc` can only take its own heap down, and the host repairs that heap
//! before the slot's replacement starts (see [`reclaim`]).
//!
//! # How a thread finds its arena
//!
//! A worker thread registers its stack (its address range in linear memory) for its slot when
//! it starts ([`register`]). Each allocation looks at the address of a local variable: if it
//! lies in a registered worker stack, that worker's arena serves it; otherwise the shared
//! arena does (the main thread, wasm-bindgen-rayon's threads, the benchmark driver, and every
//! thread before it registers). Thread-local storage cannot be used for this: wasm-bindgen's
//! thread start allocates the new thread's stack and its thread-local block *before* that
//! block exists, so those two allocations would read a thread-local through a null base.
//!
//! # Where a block goes back
//!
//! Every page an arena takes from `memory.grow` is recorded in a page-owner table, and a
//! block is always freed into the arena that owns its page, whichever thread frees it. The
//! host still keeps memory from crossing threads (tasks and results are plain data in shared
//! buffers), because a worker freeing into another arena would take that arena's lock, and
//! could be killed while holding it.
//!
//! # When a worker dies
//!
//! Once the host knows the thread will never run again ([`crate::host`] waits for the
//! browser to release the thread's life lock), [`reclaim`] looks at the slot's arena:
//!
//! - lock free: the heap is consistent and is kept for the replacement. Blocks the dead
//!   thread still held stay allocated (a bounded leak: that thread's live data).
//! - lock held: the thread died inside `malloc`/`free` and the heap may be half-updated. It
//!   is replaced by a fresh, empty heap; the old heap's pages are marked *abandoned* (frees
//!   into them are ignored) and never reused: a bounded leak, counted in [`stats`].

use core::alloc::{GlobalAlloc, Layout};
use core::arch::wasm32;
use core::cell::UnsafeCell;
use core::ptr;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

use dlmalloc::{Allocator, Dlmalloc};

use crate::MAX_WORKERS;

/// The wasm page size, the unit of `memory.grow`.
const PAGE: usize = 64 * 1024;
/// Pages in the largest memory the module declares (1 GiB, `--max-memory`).
const MAX_PAGES: usize = (1 << 30) / PAGE;
/// Arena 0 is shared; arena `slot + 1` belongs to worker slot `slot`.
const ARENAS: usize = MAX_WORKERS + 1;
/// Page-owner value of pages no arena took (the stack, static data, wasm-bindgen's page).
const NO_OWNER: u8 = 0;
/// Page-owner value of pages of a heap that was reset: frees into them are ignored.
const ABANDONED: u8 = u8::MAX;

const _: () = assert!(
    ARENAS < ABANDONED as usize,
    "arena numbers must fit the owner table"
);

/// Which arena (plus one) owns each 64 KiB page.
static OWNERS: [AtomicU8; MAX_PAGES] = [const { AtomicU8::new(NO_OWNER) }; MAX_PAGES];
/// Pages held by each arena's current heap.
static PAGES_HELD: [AtomicU32; ARENAS] = [const { AtomicU32::new(0) }; ARENAS];
/// Pages given up with reset heaps.
static PAGES_ABANDONED: AtomicU32 = AtomicU32::new(0);
/// Heaps reset because their thread died inside the allocator.
static RESETS: AtomicU32 = AtomicU32::new(0);
/// Each worker slot's registered stack, `lo | hi << 32` (both 0 when none). One word, so a
/// reader never sees half of a change.
static STACKS: [AtomicU64; MAX_WORKERS] = [const { AtomicU64::new(0) }; MAX_WORKERS];
/// The heaps.
static HEAPS: [Arena; ARENAS] = arenas();

/// The allocator `#[global_allocator]` uses: see the [module docs](self).
pub struct Arenas;

/// The source of an arena's memory: whole pages from `memory.grow`, recorded as its own.
struct Pages {
    /// The owner-table value of this arena's pages (`arena + 1`).
    owner: u8,
}

/// One heap and its lock.
struct Arena {
    /// 0 free, 1 held.
    lock: AtomicU32,
    heap: UnsafeCell<Dlmalloc<Pages>>,
}

// SAFETY: the heap is only reached between `acquire` and `release` (one thread at a time), or
// by `reclaim` once the arena's only user is dead.
unsafe impl Sync for Arena {}

const fn arenas() -> [Arena; ARENAS] {
    let mut heaps = [const { Arena::new(0) }; ARENAS];
    let mut index = 0;
    while index < ARENAS {
        heaps[index] = Arena::new(index as u8 + 1);
        index += 1;
    }
    heaps
}

impl Arena {
    const fn new(owner: u8) -> Arena {
        Arena {
            lock: AtomicU32::new(0),
            heap: UnsafeCell::new(Dlmalloc::new_with_allocator(Pages { owner })),
        }
    }

    /// Runs `f` on the heap under the arena's lock.
    fn with<R>(&self, f: impl FnOnce(&mut Dlmalloc<Pages>) -> R) -> R {
        // Acquire: see the heap as the previous holder left it. A spin lock: critical
        // sections are a few hundred instructions, and the main thread must never block.
        while self
            .lock
            .compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            core::hint::spin_loop();
        }
        // SAFETY: the lock is held, so this thread is the heap's only user until `release`.
        let result = f(unsafe { &mut *self.heap.get() });
        // Release: publish the heap's new state to the next holder.
        self.lock.store(0, Ordering::Release);
        result
    }
}

// SAFETY: `alloc` returns fresh pages from `memory.grow` (or null), which nobody else uses;
// the other methods release nothing, so dlmalloc never hands memory back.
unsafe impl Allocator for Pages {
    fn alloc(&self, size: usize) -> (*mut u8, usize, u32) {
        let pages = size.div_ceil(PAGE);
        let first = wasm32::memory_grow(0, pages);
        if first == usize::MAX {
            return (ptr::null_mut(), 0, 0);
        }
        for owner in &OWNERS[first..first + pages] {
            // Relaxed: the block's address reaches any other thread only through a
            // synchronizing hand-over, which also carries this store.
            owner.store(self.owner, Ordering::Relaxed);
        }
        // Relaxed: statistics.
        PAGES_HELD[usize::from(self.owner - 1)].fetch_add(pages as u32, Ordering::Relaxed);
        ((first * PAGE) as *mut u8, pages * PAGE, 0)
    }

    fn remap(&self, _ptr: *mut u8, _old: usize, _new: usize, _can_move: bool) -> *mut u8 {
        ptr::null_mut()
    }

    fn free_part(&self, _ptr: *mut u8, _old: usize, _new: usize) -> bool {
        false
    }

    fn free(&self, _ptr: *mut u8, _size: usize) -> bool {
        false
    }

    fn can_release_part(&self, _flags: u32) -> bool {
        false
    }

    fn allocates_zeros(&self) -> bool {
        true
    }

    fn page_size(&self) -> usize {
        PAGE
    }
}

/// The arena serving the calling thread: its worker slot's if the thread registered, else
/// the shared one.
fn current_arena() -> usize {
    let probe = 0u8;
    let here = core::hint::black_box(&probe) as *const u8 as u64;
    STACKS
        .iter()
        .position(|stack| {
            // Relaxed: a thread only ever matches its own registration (no other thread's
            // stack lies in it), which it sees in program order. A record is cleared before
            // its stack memory is freed and so before any thread can run on that memory.
            let word = stack.load(Ordering::Relaxed);
            (word & 0xFFFF_FFFF) <= here && here < word >> 32
        })
        .map_or(0, |slot| slot + 1)
}

/// The arena that owns the block at `ptr`: `Some(index)`, or `None` for an abandoned page.
fn owner_of(ptr: *mut u8) -> Option<usize> {
    let owner = OWNERS.get(ptr as usize / PAGE);
    // Relaxed: see `Pages::alloc`.
    match owner.map_or(NO_OWNER, |owner| owner.load(Ordering::Relaxed)) {
        ABANDONED => None,
        // Not from any arena: a caller freed what it did not allocate. Memory would be
        // corrupted; stop here instead.
        NO_OWNER => wasm32::unreachable(),
        owner => Some(usize::from(owner - 1)),
    }
}

// SAFETY: each heap is used under its lock; blocks are freed into the heap that allocated
// them (page-owner table); dlmalloc honours size and alignment.
unsafe impl GlobalAlloc for Arenas {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: `layout` has a non-zero size (GlobalAlloc contract).
        HEAPS[current_arena()].with(|heap| unsafe { heap.malloc(layout.size(), layout.align()) })
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        HEAPS[current_arena()].with(|heap| unsafe { heap.calloc(layout.size(), layout.align()) })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(arena) = owner_of(ptr) {
            // SAFETY: `ptr` came from this heap with `layout` (GlobalAlloc contract and the
            // owner table).
            HEAPS[arena].with(|heap| unsafe { heap.free(ptr, layout.size(), layout.align()) });
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        match owner_of(ptr) {
            // SAFETY: as in `dealloc`; `new_size` is non-zero (GlobalAlloc contract).
            Some(arena) => HEAPS[arena]
                .with(|heap| unsafe { heap.realloc(ptr, layout.size(), layout.align(), new_size) }),
            None => {
                // An abandoned block: copy it into a live heap, leave the old one.
                // SAFETY: the new layout is valid (GlobalAlloc contract for `realloc`).
                let new_layout =
                    unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
                // SAFETY: `new_layout` has a non-zero size.
                let new = unsafe { self.alloc(new_layout) };
                if !new.is_null() {
                    // SAFETY: both blocks are valid for the smaller size and do not overlap.
                    unsafe { ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
                }
                new
            }
        }
    }
}

/// Why a stack could not be registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterError {
    /// The slot is not below [`MAX_WORKERS`].
    NoSuchSlot,
    /// The calling thread does not run on the stack it names.
    NotMyStack,
    /// Another thread's stack is registered for the slot.
    Taken,
}

impl core::fmt::Display for RegisterError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            RegisterError::NoSuchSlot => "there is no such worker slot",
            RegisterError::NotMyStack => "the calling thread does not run on the stack it names",
            RegisterError::Taken => "another thread is registered for this worker slot",
        })
    }
}

/// Routes the calling thread's allocations to `slot`'s arena from now on. `stack_lo` and
/// `stack_size` describe the thread's stack (wasm-bindgen's `__stack_alloc` global and the
/// stack size the thread was started with).
pub fn register(slot: usize, stack_lo: u32, stack_size: u32) -> Result<(), RegisterError> {
    let record = STACKS.get(slot).ok_or(RegisterError::NoSuchSlot)?;
    let lo = u64::from(stack_lo);
    let hi = lo + u64::from(stack_size);
    let probe = 0u8;
    let here = core::hint::black_box(&probe) as *const u8 as u64;
    if !(lo <= here && here < hi) {
        return Err(RegisterError::NotMyStack);
    }
    // Relaxed: see `current_arena`; the host clears a record only after its thread is gone.
    record
        .compare_exchange(0, lo | hi << 32, Ordering::Relaxed, Ordering::Relaxed)
        .map(drop)
        .map_err(|_| RegisterError::Taken)
}

/// What [`reclaim`] did with a dead worker's arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reclaimed {
    /// The heap was consistent and is kept for the slot's next thread.
    Kept,
    /// The thread died inside the allocator: the heap was replaced by an empty one and its
    /// pages (this many bytes) were abandoned.
    Reset {
        /// Bytes given up.
        abandoned: usize,
    },
}

/// Forgets the thread of worker `slot` and makes its arena safe for the slot's next thread.
///
/// # Safety
///
/// The thread registered for `slot` (if any) has stopped for good: it will never run again,
/// so it neither holds nor will take its arena's lock.
pub unsafe fn reclaim(slot: usize) -> Reclaimed {
    // Relaxed: the thread is gone; this only stops its stack from matching once the memory
    // is reused (the free that follows is ordered after this store by the shared lock).
    STACKS[slot].store(0, Ordering::Relaxed);
    let arena = &HEAPS[slot + 1];
    // Acquire: if the dead thread released the lock, see the heap as it left it.
    if arena
        .lock
        .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
        .is_ok()
    {
        // Release: as in `Arena::with`.
        arena.lock.store(0, Ordering::Release);
        return Reclaimed::Kept;
    }
    let owner = slot as u8 + 2;
    let mut pages = 0u32;
    for page in &OWNERS {
        // Relaxed: only this arena's (dead) thread ever wrote these entries.
        if page.load(Ordering::Relaxed) == owner {
            page.store(ABANDONED, Ordering::Relaxed);
            pages += 1;
        }
    }
    // SAFETY: the lock is held by a thread that will never run again, so nobody else
    // reaches the heap; the old heap is overwritten without running anything of it.
    unsafe {
        ptr::write(
            arena.heap.get(),
            Dlmalloc::new_with_allocator(Pages { owner }),
        )
    };
    // Relaxed: statistics.
    PAGES_HELD[slot + 1].store(0, Ordering::Relaxed);
    PAGES_ABANDONED.fetch_add(pages, Ordering::Relaxed);
    RESETS.fetch_add(1, Ordering::Relaxed);
    // Release: the fresh heap is published with the unlock.
    arena.lock.store(0, Ordering::Release);
    Reclaimed::Reset {
        abandoned: pages as usize * PAGE,
    }
}

/// The worker slot whose registered stack the calling thread runs on, if any.
pub fn current_slot() -> Option<usize> {
    current_arena().checked_sub(1)
}

/// Memory statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Bytes held by the shared heap.
    pub shared: usize,
    /// Bytes held by each worker slot's heap.
    pub workers: [usize; MAX_WORKERS],
    /// Bytes given up with heaps whose thread died inside the allocator.
    pub abandoned: usize,
    /// How many heaps were reset.
    pub resets: u32,
}

/// The heaps' sizes now.
pub fn stats() -> Stats {
    // Relaxed: statistics.
    let held = |arena: usize| PAGES_HELD[arena].load(Ordering::Relaxed) as usize * PAGE;
    Stats {
        shared: held(0),
        workers: core::array::from_fn(|slot| held(slot + 1)),
        abandoned: PAGES_ABANDONED.load(Ordering::Relaxed) as usize * PAGE,
        resets: RESETS.load(Ordering::Relaxed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    /// A stack range around the calling thread's current stack position.
    fn around_here() -> (u32, u32) {
        let probe = 0u8;
        let here = core::hint::black_box(&probe) as *const u8 as u32;
        (here - 32 * 1024, 64 * 1024)
    }

    /// The arena that owns the page of `ptr` (`None`: abandoned or nobody's).
    fn arena_of(ptr: *const u8) -> Option<usize> {
        // Relaxed: this thread allocated the block (or saw its owner set, in program order).
        match OWNERS[ptr as usize / PAGE].load(Ordering::Relaxed) {
            NO_OWNER | ABANDONED => None,
            owner => Some(usize::from(owner - 1)),
        }
    }

    /// Stops routing this thread to `slot`'s heap, as the host does once a thread is gone.
    fn unregister(slot: usize) -> Reclaimed {
        // SAFETY: this thread stops using `slot`'s registration here; it holds no lock of that
        // heap (no allocation is in progress) and frees its blocks into it only through the
        // owner table, like any other thread.
        unsafe { reclaim(slot) }
    }

    #[wasm_bindgen_test]
    fn a_registered_thread_allocates_from_its_slots_heap() {
        let shared = Box::new(1u64);
        assert_eq!(
            arena_of((&*shared as *const u64).cast()),
            Some(0),
            "unregistered threads use the shared heap"
        );
        assert_eq!(current_slot(), None);

        let (lo, size) = around_here();
        register(3, lo, size).unwrap();
        assert_eq!(current_slot(), Some(3));
        let own = vec![7u8; 1000];
        assert_eq!(arena_of(own.as_ptr()), Some(4));
        assert!(stats().workers[3] >= PAGE);
        assert_eq!(unregister(3), Reclaimed::Kept);

        assert_eq!(current_slot(), None);
        // Freed by a thread that no longer uses that heap: it still goes back to it.
        let address = own.as_ptr();
        drop(own);
        register(3, lo, size).unwrap();
        let again = vec![8u8; 1000];
        assert_eq!(
            again.as_ptr(),
            address,
            "the freed block is reused by its own heap"
        );
        drop(again);
        assert_eq!(unregister(3), Reclaimed::Kept);
        drop(shared);
    }

    #[wasm_bindgen_test]
    fn registration_is_checked() {
        let (lo, size) = around_here();
        assert_eq!(
            register(MAX_WORKERS, lo, size),
            Err(RegisterError::NoSuchSlot)
        );
        assert_eq!(register(2, lo + size, size), Err(RegisterError::NotMyStack));
        register(2, lo, size).unwrap();
        assert_eq!(register(2, lo, size), Err(RegisterError::Taken));
        assert_eq!(unregister(2), Reclaimed::Kept);
    }

    #[wasm_bindgen_test]
    fn a_heap_whose_thread_died_inside_the_allocator_is_replaced() {
        let (lo, size) = around_here();
        register(5, lo, size).unwrap();
        let before = stats();
        let doomed = vec![1u8; 200_000];
        let doomed_page = doomed.as_ptr();
        assert_eq!(arena_of(doomed_page), Some(6));
        let held = stats().workers[5];
        assert!(held >= 200_000);

        // The thread "dies" holding its heap's lock, as a Web Worker terminated inside
        // `malloc` would. Relaxed: only this thread uses slot 5's heap.
        HEAPS[6].lock.store(1, Ordering::Relaxed);
        let Reclaimed::Reset { abandoned } = unregister(5) else {
            panic!("a locked heap must be reset");
        };
        assert_eq!(abandoned, held);
        let after = stats();
        assert_eq!(after.workers[5], 0);
        assert_eq!(after.abandoned, before.abandoned + held);
        assert_eq!(after.resets, before.resets + 1);
        assert_eq!(arena_of(doomed_page), None, "its pages are abandoned");

        // A free into an abandoned page is ignored; the fresh heap works.
        drop(doomed);
        register(5, lo, size).unwrap();
        let fresh = vec![2u8; 1000];
        assert_eq!(arena_of(fresh.as_ptr()), Some(6));
        let grown = {
            let mut grown = fresh;
            grown.resize(300_000, 3);
            grown
        };
        assert_eq!(arena_of(grown.as_ptr()), Some(6));
        assert!(grown[..1000].iter().all(|&b| b == 2) && grown[1000..].iter().all(|&b| b == 3));
        drop(grown);
        assert_eq!(unregister(5), Reclaimed::Kept);
    }

    #[wasm_bindgen_test]
    fn growing_an_abandoned_block_copies_it_into_a_live_heap() {
        let (lo, size) = around_here();
        register(4, lo, size).unwrap();
        let mut old = vec![9u8; 5000];
        // Relaxed: only this thread uses slot 4's heap. It "dies" holding the lock.
        HEAPS[5].lock.store(1, Ordering::Relaxed);
        assert!(matches!(unregister(4), Reclaimed::Reset { .. }));
        old.resize(10_000, 4);
        assert_eq!(
            arena_of(old.as_ptr()),
            Some(0),
            "copied into the shared heap"
        );
        assert!(old[..5000].iter().all(|&b| b == 9) && old[5000..].iter().all(|&b| b == 4));
    }
}
