//! The memory a pool shares with its worker processes: one anonymous `memfd`, mapped by
//! every process of the pool.
//!
//! ```text
//! offset 0           ┌ Header: magic, fingerprint, where the mailboxes are ┐  read-only in
//!                    │ Supervisor<T, N, W, ProcessPark>                     │  the workers
//! page-aligned       ├ Mailbox 0 ───────────────────────────────────────────┤  worker 0: read-write
//! + one stride each  ├ Mailbox 1 ───────────────────────────────────────────┤  worker 1: read-write
//!                    └ …                                                    ┘
//! ```
//!
//! A worker maps the whole file read-only, then makes its own mailbox's pages writable and
//! closes the descriptor: a wild write in task code faults in the worker (and is recovered as
//! a crash) instead of corrupting the supervisor or a sibling's mailbox. The file has no name
//! (nothing in `/dev/shm` to leak) and is sealed against shrinking: it vanishes with the last
//! process that maps it.
//!
//! # A mailbox
//!
//! The one channel between the parent's thread for slot `i` (its *keeper*) and worker `i`.
//! Each cell has one writer at a time, handed over by a Release store on a word:
//!
//! | word | written by | says |
//! |---|---|---|
//! | `order` | keeper | "run the task in `task` as order n", or "exit" |
//! | `taken` | worker | "I took order n and start its task now" |
//! | `answer` | worker | "`outcome` holds my answer to order n" |
//! | `ready` | worker | "I am serving" (its pid) |
//! | `bell` | anyone with news for the keeper | bumped; the keeper parks on it |
//! | `heartbeats` | worker | bumped by task code that signals progress |
//! | `cause_len` | worker | "`cause` holds why I am dying" (a panic's message) |
//!
//! The keeper writes `task` and `attempt` only while no order is outstanding (the worker
//! answered the last one, or is dead); the worker writes `outcome` only between receiving an
//! order and answering it. So neither side ever reads a cell the other may be writing, and a
//! worker that dies at any instant leaves either a published answer (whole, written before
//! the Release store of `answer`) or none.

use core::cell::UnsafeCell;
use core::mem::{align_of, size_of, MaybeUninit};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, Ordering};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::string::String;

use rustix::fs::{MemfdFlags, SealFlags};
use rustix::mm::{MapFlags, MprotectFlags, ProtFlags};

use super::{futex, ProcessPark};
use crate::policy::Policy;
use crate::Supervisor;

/// The first bytes of every pool's mapping.
const MAGIC: [u8; 8] = *b"foreman1";
/// The longest crash cause a worker can leave (longer messages are cut).
pub(crate) const CAUSE_CAPACITY: usize = 480;
/// In an order: exit instead of running a task. (Bit 0 of the word is `futex`'s parked flag.)
const EXIT: u32 = futex::STEP;
/// The step between two orders' numbers.
const NEXT_ORDER: u32 = 2 * futex::STEP;

/// What a worker checks before it trusts the mapping.
#[repr(C)]
pub(crate) struct Header {
    magic: [u8; 8],
    /// Of the handler and the mailbox layout (see [`fingerprint`]).
    fingerprint: u64,
    mailbox_offset: usize,
    mailbox_stride: usize,
    workers: usize,
}

/// The front of the mapping: the header, then the supervisor.
#[repr(C)]
pub(crate) struct Front<T, const N: usize, const W: usize> {
    pub(crate) header: Header,
    pub(crate) sup: Supervisor<T, N, W, ProcessPark>,
}

/// Where things are in a pool's mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) mailbox_offset: usize,
    pub(crate) mailbox_stride: usize,
    pub(crate) len: usize,
}

impl Layout {
    /// The layout for a front of `front` bytes and `workers` mailboxes of `mailbox` bytes,
    /// every part page-aligned.
    pub(crate) fn new(front: usize, mailbox: usize, workers: usize) -> Layout {
        let page = rustix::param::page_size();
        let mailbox_offset = front.next_multiple_of(page);
        let mailbox_stride = mailbox.next_multiple_of(page);
        Layout {
            mailbox_offset,
            mailbox_stride,
            len: mailbox_offset + workers * mailbox_stride,
        }
    }
}

/// A hash (FNV-1a) of what parent and worker must agree on: the handler's name, the task,
/// output and error types, and the mailbox's size. Both are the same binary, so they compute
/// the same value unless a handler name is shared by two handlers of different types.
pub(crate) fn fingerprint<T, R, E>(handler: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let parts = [
        handler,
        core::any::type_name::<T>(),
        core::any::type_name::<R>(),
        core::any::type_name::<E>(),
    ];
    let sizes = [
        size_of::<Mailbox<T, R, E>>(),
        align_of::<Mailbox<T, R, E>>(),
    ];
    let bytes = parts
        .iter()
        .flat_map(|part| part.bytes().chain([0]))
        .chain(sizes.iter().flat_map(|n| n.to_le_bytes()));
    for byte in bytes {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// A mapping of a pool's memfd, unmapped when dropped.
pub(crate) struct Region {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: a region is plain memory; everything in it that threads share is atomics or cells
// whose protocols (the supervisor's, the mailboxes') say who touches what when.
unsafe impl Send for Region {}
// SAFETY: as above.
unsafe impl Sync for Region {}

impl Region {
    /// Creates the memfd of a new pool with `layout`, mapped read-write, zero-filled, sealed
    /// against resizing. Returns the descriptor (close-on-exec: only worker processes get it,
    /// explicitly) and the mapping.
    pub(crate) fn create(layout: Layout) -> io::Result<(OwnedFd, Region)> {
        let fd =
            rustix::fs::memfd_create("foreman", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
        let fd = super::above_stdio(fd)?;
        rustix::fs::ftruncate(&fd, layout.len as u64)?;
        // A worker that truncated the file would make every access beyond the new end a
        // SIGBUS in the parent: no size change, ever.
        rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)?;
        let region = Region::map(&fd, layout.len, ProtFlags::READ | ProtFlags::WRITE)?;
        Ok((fd, region))
    }

    /// Maps `len` bytes of `fd`, shared, with `protection`.
    fn map(fd: &impl AsFd, len: usize, protection: ProtFlags) -> io::Result<Region> {
        // SAFETY: a fresh mapping chosen by the kernel (null hint, no MAP_FIXED) overlaps no
        // existing Rust object.
        let base = unsafe {
            rustix::mm::mmap(
                core::ptr::null_mut(),
                len,
                protection,
                MapFlags::SHARED,
                fd,
                0,
            )?
        };
        let base = NonNull::new(base.cast::<u8>()).ok_or(io::ErrorKind::AddrNotAvailable)?;
        Ok(Region { base, len })
    }

    /// The `Front` at offset 0.
    ///
    /// # Safety
    /// The region was created for a `Front<T, N, W>` and it has been initialized.
    pub(crate) unsafe fn front<T, const N: usize, const W: usize>(&self) -> &Front<T, N, W> {
        // SAFETY: per the contract; the base is page-aligned, enough for any `Front`.
        unsafe { self.base.cast::<Front<T, N, W>>().as_ref() }
    }

    /// Writes the header of a new pool at offset 0, and builds its supervisor in place behind
    /// it (never on the stack: a supervisor of a big queue of big tasks would not fit there).
    ///
    /// # Safety
    /// The region was just created for a `Front<T, N, W>` with `layout`, and no reference to
    /// its front exists yet.
    pub(crate) unsafe fn init_front<T, R, E, const N: usize, const W: usize>(
        &self,
        handler: &str,
        layout: Layout,
        policy: Policy,
    ) {
        assert!(layout.len >= size_of::<Front<T, N, W>>());
        assert!(align_of::<Front<T, N, W>>() <= rustix::param::page_size());
        let front = self.base.cast::<Front<T, N, W>>().as_ptr();
        // SAFETY: in bounds and aligned (asserted above); nobody else looks at it yet, so the
        // `&mut` to the supervisor's (zero-filled, unused) place is the only reference to it.
        unsafe {
            core::ptr::addr_of_mut!((*front).header).write(Header {
                magic: MAGIC,
                fingerprint: fingerprint::<T, R, E>(handler),
                mailbox_offset: layout.mailbox_offset,
                mailbox_stride: layout.mailbox_stride,
                workers: W,
            });
            let place = &mut *core::ptr::addr_of_mut!((*front).sup)
                .cast::<MaybeUninit<Supervisor<T, N, W, ProcessPark>>>();
            Supervisor::init(place, policy, ProcessPark);
        }
    }

    /// Mailbox `index`.
    ///
    /// # Safety
    /// The region holds a pool's mailboxes for `T`, `R`, `E` at `layout`, and `index` is below
    /// its number of workers.
    pub(crate) unsafe fn mailbox<T, R, E>(
        &self,
        layout: Layout,
        index: usize,
    ) -> &Mailbox<T, R, E> {
        let offset = layout.mailbox_offset + index * layout.mailbox_stride;
        debug_assert!(offset + size_of::<Mailbox<T, R, E>>() <= self.len);
        // SAFETY: per the contract the mailbox is in bounds; page-aligned offsets suffice for
        // its alignment; a zero-filled mailbox is a valid one (atomics at 0, cells uninit).
        unsafe { &*self.base.as_ptr().add(offset).cast::<Mailbox<T, R, E>>() }
    }

    /// The worker's side: maps a pool's memfd read-only, checks it was made for this handler
    /// and these types, and makes mailbox `index` writable. The mapping lives as long as the
    /// process (a worker never returns).
    pub(crate) fn open_mailbox<T, R, E>(
        fd: OwnedFd,
        handler: &str,
        index: usize,
    ) -> Result<&'static Mailbox<T, R, E>, String> {
        let len = rustix::fs::fstat(&fd)
            .map_err(|err| std::format!("cannot stat the pool's memory: {err}"))?
            .st_size as usize;
        if len < size_of::<Header>() {
            return Err("the pool's memory is too small".into());
        }
        let region = Region::map(&fd, len, ProtFlags::READ)
            .map_err(|err| std::format!("cannot map the pool's memory: {err}"))?;
        drop(fd); // the mapping keeps the memory; task code gets no handle on it
                  // SAFETY: the region is at least a header long and page-aligned; a Header is plain
                  // data, and the parent wrote it before starting any worker.
        let header = unsafe { region.base.cast::<Header>().as_ref() };
        if header.magic != MAGIC {
            return Err("the shared memory is not a foreman pool's".into());
        }
        if header.fingerprint != fingerprint::<T, R, E>(handler) {
            return Err(std::format!(
                "the pool was started for another handler or other types than `{handler}` \
                 ({}, {}, {}): are two handlers named `{handler}`?",
                core::any::type_name::<T>(),
                core::any::type_name::<R>(),
                core::any::type_name::<E>(),
            ));
        }
        let layout = Layout {
            mailbox_offset: header.mailbox_offset,
            mailbox_stride: header.mailbox_stride,
            len,
        };
        let end = (index + 1)
            .checked_mul(layout.mailbox_stride)
            .and_then(|n| n.checked_add(layout.mailbox_offset));
        if index >= header.workers || end.is_none_or(|end| end > len) {
            return Err(std::format!("there is no worker {index} in this pool"));
        }
        // SAFETY: the range is inside the mapping (checked above) and page-aligned (the
        // parent's layout); it holds no Rust reference yet, so changing its protection
        // invalidates nothing.
        unsafe {
            rustix::mm::mprotect(
                region
                    .base
                    .as_ptr()
                    .add(layout.mailbox_offset + index * layout.mailbox_stride)
                    .cast(),
                layout.mailbox_stride,
                MprotectFlags::READ | MprotectFlags::WRITE,
            )
        }
        .map_err(|err| std::format!("cannot make the mailbox writable: {err}"))?;
        let region = std::boxed::Box::leak(std::boxed::Box::new(region));
        // SAFETY: checked above: this mapping holds mailboxes for these types at `layout`.
        Ok(unsafe { region.mailbox(layout, index) })
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: the mapping was made by `Region::map` with this length, and whoever
        // borrowed from it (`front`, `mailbox`) borrowed `self`, so no reference remains.
        // Nothing in it needs dropping: the supervisor and the mailboxes hold only `Portable`
        // (`Copy`) values, atomics and cells.
        let _ = unsafe { rustix::mm::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

/// One worker's mailbox (see the module docs).
#[repr(C)]
pub(crate) struct Mailbox<T, R, E> {
    order: AtomicU32,
    answer: AtomicU32,
    bell: AtomicU32,
    heartbeats: AtomicU32,
    ready: AtomicU32,
    cause_len: AtomicU32,
    taken: AtomicU32,
    attempt: UnsafeCell<u32>,
    task: UnsafeCell<MaybeUninit<T>>,
    outcome: UnsafeCell<MaybeUninit<Result<R, E>>>,
    cause: UnsafeCell<[u8; CAUSE_CAPACITY]>,
}

// SAFETY: the cells are handed between the keeper and the worker by Release/Acquire on the
// words (see the module docs); the values are `Portable`, hence `Send`.
unsafe impl<T: Send, R: Send, E: Send> Sync for Mailbox<T, R, E> {}

/// What a worker found in its mailbox.
pub(crate) enum Order<'m, T> {
    /// Run `task` (in the mailbox: the keeper leaves it alone until the answer) as run number
    /// `attempt`, then answer order `number`.
    Run {
        number: u32,
        task: &'m T,
        attempt: u32,
    },
    /// Leave.
    Exit,
}

impl<T: Copy, R: Copy, E: Copy> Mailbox<T, R, E> {
    // ----- the keeper's side ----------------------------------------------------------------

    /// Clears the mailbox for a new worker process. Only while no process serves it (the last
    /// one is dead and reaped, or none was started).
    pub(crate) fn reset(&self) {
        // Relaxed: no other process touches the mailbox now; the spawn that follows (a system
        // call) orders these stores before anything the new worker does.
        self.order.store(0, Ordering::Relaxed);
        self.answer.store(0, Ordering::Relaxed);
        self.taken.store(0, Ordering::Relaxed);
        self.heartbeats.store(0, Ordering::Relaxed);
        self.ready.store(0, Ordering::Relaxed);
        self.cause_len.store(0, Ordering::Relaxed);
    }

    /// The word the keeper parks on.
    pub(crate) fn bell(&self) -> &AtomicU32 {
        &self.bell
    }

    /// The worker's pid once it serves.
    pub(crate) fn ready(&self) -> Option<u32> {
        // Acquire: pairs with `announce`.
        match self.ready.load(Ordering::Acquire) {
            0 => None,
            pid => Some(pid),
        }
    }

    /// Gives the worker a task; returns the order's number, for [`answer`](Self::answer).
    /// `previous` is the number of the last order (0 for none).
    ///
    /// # Safety
    /// Only the slot's keeper calls it, and only while no order is outstanding: the worker
    /// answered order `previous`, or is dead, or there was none.
    pub(crate) unsafe fn give(&self, previous: u32, task: &T, attempt: u32) -> u32 {
        // Never 0 (an empty mailbox's order), and never `previous`.
        let number = match previous.wrapping_add(NEXT_ORDER) & !EXIT {
            0 => NEXT_ORDER,
            number => number,
        };
        // SAFETY: no order is outstanding (the contract), so the worker does not read these
        // cells now. The
        // task is copied in place (it may be large: never through the stack); `T` is `Copy`.
        unsafe {
            core::ptr::copy_nonoverlapping(task, self.task.get().cast::<T>(), 1);
            self.attempt.get().write(attempt);
        }
        // Publishes the task and attempt to the worker's load in `next_order`.
        futex::set(&self.order, number);
        number
    }

    /// Tells the worker to leave after its current order.
    pub(crate) fn order_exit(&self, previous: u32) {
        futex::set(&self.order, previous | EXIT);
    }

    /// The worker's answer to order `number`, if it gave one.
    ///
    /// # Safety
    /// Only the slot's keeper calls it, for the order it gave last (so no later order lets
    /// the worker write the outcome again). The parent trusts the worker's memory for the
    /// answer's bytes: a worker that wrote bytes which are not a valid `Result<R, E>` into its
    /// outcome cell (a stray write in its task code) makes this read undefined behaviour (see
    /// [`Portable`](super::Portable)'s contract).
    pub(crate) unsafe fn answer(&self, number: u32) -> Option<Result<R, E>> {
        // Acquire: pairs with the Release in `reply`: the outcome is whole.
        if self.answer.load(Ordering::Acquire) != number {
            return None;
        }
        // SAFETY: the worker wrote the outcome before answering `number` and writes it again
        // only for a later order, which the keeper has not given.
        Some(unsafe { self.outcome.get().read().assume_init() })
    }

    /// Whether the worker took order `number` (and so may have started its task). Read once
    /// the worker is dead: a task whose order it never took never ran.
    pub(crate) fn took(&self, number: u32) -> bool {
        // Acquire: pairs with the Release in `next_order`.
        self.taken.load(Ordering::Acquire) == number
    }

    /// How many heartbeats task code has sent since this worker started.
    pub(crate) fn heartbeats(&self) -> u32 {
        // Relaxed: a progress count, nothing is published with it.
        self.heartbeats.load(Ordering::Relaxed)
    }

    /// What the worker left as the cause of its death, if anything.
    ///
    /// # Safety
    /// Only once the worker process is dead (it writes the cause while dying).
    pub(crate) unsafe fn cause(&self) -> Option<String> {
        // Acquire: pairs with `record_cause`.
        let len = self.cause_len.load(Ordering::Acquire) as usize;
        if len == 0 {
            return None;
        }
        // SAFETY: written before the Release store of its length, by a worker that is dead
        // (the contract).
        let bytes = unsafe { &*self.cause.get() };
        Some(String::from_utf8_lossy(&bytes[..len.min(CAUSE_CAPACITY)]).into_owned())
    }

    // ----- the worker's side ----------------------------------------------------------------

    /// Says the worker is serving, and rings the keeper.
    pub(crate) fn announce(&self, pid: u32) {
        // Release: the worker's setup happens before the keeper sees it ready.
        self.ready.store(pid, Ordering::Release);
        futex::bump(&self.bell);
    }

    /// Waits for the next order after order `seen`.
    ///
    /// # Safety
    /// Only the mailbox's worker calls it, after answering order `seen` (or with 0 before the
    /// first); the task it returns must not be used after the answer to this order.
    pub(crate) unsafe fn next_order(&self, seen: u32) -> Order<'_, T> {
        loop {
            // Acquire (in SeqCst): pairs with `give`: the task is whole.
            let order = futex::value(&self.order);
            if order == seen {
                futex::park(&self.order, seen, None);
                continue;
            }
            if order & EXIT != 0 {
                return Order::Exit;
            }
            // A cause left by a panic that task code caught is not this task's.
            // Relaxed: the keeper reads it only after this process died.
            self.cause_len.store(0, Ordering::Relaxed);
            // Release: the keeper learns the task may have started only after this process
            // died, and reads it then (Acquire in `took`).
            self.taken.store(order, Ordering::Release);
            // SAFETY: the keeper wrote these before the order and leaves them alone until we
            // answer it; the reference to the task is not used after the answer (`serve`).
            let (task, attempt) = unsafe {
                (
                    (*self.task.get()).assume_init_ref(),
                    self.attempt.get().read(),
                )
            };
            return Order::Run {
                number: order,
                task,
                attempt,
            };
        }
    }

    /// Answers order `number` with `outcome`, and rings the keeper.
    ///
    /// # Safety
    /// Only the mailbox's worker calls it, once, for the order it took last.
    pub(crate) unsafe fn reply(&self, number: u32, outcome: Result<R, E>) {
        // SAFETY: between an order and its answer the outcome cell is the worker's (the
        // contract: this is the answer to the order it took).
        unsafe { self.outcome.get().write(MaybeUninit::new(outcome)) };
        // Release: the outcome is whole before the keeper sees the answer.
        self.answer.store(number, Ordering::Release);
        futex::bump(&self.bell);
    }

    /// The word task code bumps for each heartbeat (see [`Context::heartbeat`]).
    ///
    /// [`Context::heartbeat`]: super::Context::heartbeat
    pub(crate) fn heartbeat_word(&self) -> &AtomicU32 {
        &self.heartbeats
    }

    /// Leaves `cause` (cut to [`CAUSE_CAPACITY`] bytes) for the keeper to report.
    ///
    /// # Safety
    /// Only the mailbox's worker calls it, from one thread at a time (its panic hook, on the
    /// serving thread).
    pub(crate) unsafe fn record_cause(&self, cause: &str) {
        let mut len = cause.len().min(CAUSE_CAPACITY);
        while !cause.is_char_boundary(len) {
            len -= 1;
        }
        // SAFETY: only this (dying) worker writes the cause, from one thread (the contract);
        // the keeper reads it once the worker is dead.
        unsafe { (&mut *self.cause.get())[..len].copy_from_slice(&cause.as_bytes()[..len]) };
        // Release: pairs with the Acquire in `cause`.
        self.cause_len.store(len as u32, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_puts_every_mailbox_on_its_own_pages() {
        let page = rustix::param::page_size();
        let layout = Layout::new(page + 1, 100, 3);
        assert_eq!(layout.mailbox_offset, 2 * page);
        assert_eq!(layout.mailbox_stride, page);
        assert_eq!(layout.len, 5 * page);
    }

    #[test]
    fn fingerprints_tell_handlers_and_types_apart() {
        let base = fingerprint::<u32, u64, ()>("a");
        assert_eq!(base, fingerprint::<u32, u64, ()>("a"));
        assert_ne!(base, fingerprint::<u32, u64, ()>("b"));
        assert_ne!(base, fingerprint::<u64, u64, ()>("a"));
        assert_ne!(base, fingerprint::<u32, u64, u8>("a"));
    }

    #[test]
    fn an_order_and_its_answer_cross_the_mailbox() {
        let layout = Layout::new(0, size_of::<Mailbox<u32, u64, ()>>(), 1);
        let (_fd, region) = Region::create(layout).unwrap();
        // SAFETY: the region was made for one mailbox of these types.
        let mailbox = unsafe { region.mailbox::<u32, u64, ()>(layout, 0) };
        // SAFETY: this thread plays both sides, in the protocol's order.
        assert!(unsafe { mailbox.answer(2) }.is_none());
        // SAFETY: as above; no order is outstanding.
        let number = unsafe { mailbox.give(0, &21, 1) };
        // SAFETY: as above: the worker's side, before its first answer.
        let order = unsafe { mailbox.next_order(0) };
        let Order::Run {
            number: got,
            task,
            attempt,
        } = order
        else {
            panic!("expected a task")
        };
        assert_eq!((got, *task, attempt), (number, 21, 1));
        assert!(mailbox.took(number));
        // SAFETY: as above, the answer to the order taken.
        unsafe { mailbox.reply(number, Ok(42)) };
        // SAFETY: as above.
        assert_eq!(unsafe { mailbox.answer(number) }, Some(Ok(42)));
        mailbox.order_exit(number);
        // SAFETY: as above, after the answer.
        assert!(matches!(unsafe { mailbox.next_order(number) }, Order::Exit));
        // SAFETY: one thread plays the worker's side.
        unsafe { mailbox.record_cause("panicked: ünïcode is cut on a char boundary") };
        // SAFETY: the "worker" wrote it before; nothing writes it now.
        assert!(unsafe { mailbox.cause() }.unwrap().starts_with("panicked"));
    }
}
