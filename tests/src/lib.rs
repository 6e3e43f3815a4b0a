//! Helpers shared by the cross-crate tests in `tests/tests/` and the benchmarks in
//! `tests/benches/`: a bitmap of task ids, allocation counting, a watchdog for calls that could
//! hang, a child process for tests that could crash the process, a quiet hook for deliberate
//! panics and a sink that forwards events to a channel.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::panic::{self, AssertUnwindSafe};
use std::process::Command;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Barrier, Mutex, Once};
use std::thread;
use std::time::Duration;

use foreman_rt::host::threads::ThreadPark;
use foreman_rt::Supervisor;

/// One bit per task id: records each id seen and tells whether it was seen before, so a test
/// can prove every task ended exactly once (none lost, none duplicated).
pub struct Bitmap {
    words: Vec<AtomicU64>,
    len: usize,
    /// Calls to [`Bitmap::set`] that found their bit already set.
    duplicates: AtomicUsize,
}

impl Bitmap {
    /// A bitmap for ids `0..len`, all clear.
    pub fn new(len: usize) -> Bitmap {
        Bitmap {
            words: (0..len.div_ceil(64)).map(|_| AtomicU64::new(0)).collect(),
            len,
            duplicates: AtomicUsize::new(0),
        }
    }

    /// Sets bit `id`; returns `false` if it was already set (a duplicate, also counted in
    /// [`Bitmap::duplicates`]).
    pub fn set(&self, id: usize) -> bool {
        assert!(id < self.len, "id {id} out of range 0..{}", self.len);
        let bit = 1u64 << (id % 64);
        let fresh = self.words[id / 64].fetch_or(bit, Ordering::Relaxed) & bit == 0;
        if !fresh {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
        }
        fresh
    }

    /// How many times [`Bitmap::set`] found its bit already set.
    pub fn duplicates(&self) -> usize {
        self.duplicates.load(Ordering::Relaxed)
    }

    /// How many bits are set.
    pub fn count(&self) -> usize {
        self.words
            .iter()
            .map(|word| word.load(Ordering::Relaxed).count_ones() as usize)
            .sum()
    }

    /// Whether bit `id` is set.
    pub fn get(&self, id: usize) -> bool {
        self.words[id / 64].load(Ordering::Relaxed) & (1u64 << (id % 64)) != 0
    }

    /// The ids whose bit is clear.
    pub fn missing(&self) -> Vec<usize> {
        (0..self.len).filter(|&id| !self.get(id)).collect()
    }
}

/// A global allocator that counts allocations (`alloc`, `alloc_zeroed`, `realloc`, by any
/// thread; see [`allocations`]) and forwards every call to the system allocator. A binary that
/// counts installs it with `#[global_allocator] static GLOBAL: Counting = Counting;`.
pub struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so
// `System`'s guarantees are ours; the counter is a side effect that allocates nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // Relaxed: a statistic, read after the threads that allocate were synchronized with.
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded as is (see the impl).
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // Relaxed: as in `alloc`.
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded as is (see the impl).
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Relaxed: as in `alloc`.
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded as is (see the impl).
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is (see the impl).
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Allocations counted so far by [`Counting`] (always 0 where it is not the global allocator).
pub fn allocations() -> u64 {
    // Relaxed: see `alloc`.
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// Allocations counted while `f` runs.
pub fn allocations_during(f: impl FnOnce()) -> u64 {
    let before = allocations();
    f();
    allocations() - before
}

/// Submits tasks `0..n` with `submit`, then waits (yielding) until `completed()`, a count of
/// completed tasks, has grown by `n`.
pub fn run_tasks(n: u64, mut submit: impl FnMut(u64), completed: impl Fn() -> usize) {
    let target = completed() + n as usize;
    for task in 0..n {
        submit(task);
    }
    while completed() < target {
        thread::yield_now();
    }
}

/// Allocations on the core's path: `W` threads attach to `sup` (which must be running, every
/// slot vacant) and loop `next_blocking` → `complete`, while this thread `submit`s (parking
/// while the queue is full). Once every worker thread runs (starting a thread allocates),
/// `warm_up` tasks run uncounted; then counting runs from the first `submit` of the next
/// `tasks` tasks until the last of them completed, with the workers running and warm. Drains
/// `sup` before returning the count.
pub fn core_path_allocations<const N: usize, const W: usize>(
    sup: &Supervisor<u64, N, W, ThreadPark>,
    warm_up: u64,
    tasks: u64,
) -> u64 {
    let run = |n: u64| {
        run_tasks(
            n,
            |task| sup.submit(task).expect("running"),
            || sup.snapshot().completed,
        )
    };
    let started = Barrier::new(W + 1);
    thread::scope(|scope| {
        for index in 0..W {
            let mut worker = sup.attach(index).expect("a vacant slot");
            let started = &started;
            scope.spawn(move || {
                started.wait();
                while let Some(job) = worker.next_blocking() {
                    black_box(*job.task());
                    job.complete().expect("never condemned here");
                }
            });
        }
        started.wait();
        run(warm_up); // threads started, everything touched once
        let counted = allocations_during(|| run(tasks));
        sup.drain();
        counted
    })
}

/// Runs `f` on a thread of its own and waits at most `limit` for it to return: a call that
/// hangs fails the calling test with a message starting `hung: {what}` instead of blocking the
/// run. A panic in `f` is passed on. (A hung thread is left behind, as threads cannot be
/// killed; the test binary still exits when its tests are done.)
pub fn within<R: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> R + Send + 'static,
) -> R {
    let (done, result) = mpsc::channel();
    thread::Builder::new()
        .name(format!("watched: {what}"))
        .spawn(move || {
            let _ = done.send(panic::catch_unwind(AssertUnwindSafe(f)));
        })
        .expect("spawn the watched thread");
    match result.recv_timeout(limit) {
        Ok(Ok(value)) => value,
        Ok(Err(payload)) => panic::resume_unwind(payload),
        Err(_) => panic!("hung: {what} did not return within {limit:?}"),
    }
}

/// The environment variable that tells a test binary it runs as [`isolated`]'s child.
const ISOLATED: &str = "FOREMAN_TESTS_ISOLATED";

/// For a test that could take its whole process down (a stack overflow aborts it): in the
/// parent test run, runs the test named `test` again alone in a child process (this test
/// binary, filtered to that test), asserts that the child succeeded, and returns `false`; in
/// that child, returns `true`: run the body then.
///
/// ```ignore
/// #[test]
/// fn risky() {
///     if !foreman_tests::isolated("risky") {
///         return; // the child ran the body, and passed
///     }
///     // the body
/// }
/// ```
pub fn isolated(test: &str) -> bool {
    if std::env::var(ISOLATED).is_ok_and(|name| name == test) {
        return true;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let output = Command::new(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(ISOLATED, test)
        .output()
        .expect("run the test binary again");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{test}, run in a child process, failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    false
}

/// How a test's deliberate panics begin: [`quiet_deliberate_panics`] keeps them off the output.
pub const DELIBERATE: &str = "deliberate panic";

/// A panic payload that panics again when dropped (`std::panic::panic_any(PanicsOnDrop)`): a
/// deliberate panic, and its drop another.
pub struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("{DELIBERATE}: a panic payload that panics when dropped");
    }
}

/// Installs (once per test binary) a panic hook that stays silent for panics whose message
/// starts with [`DELIBERATE`] or whose payload is a [`PanicsOnDrop`], and reports every other
/// panic as the default hook does.
pub fn quiet_deliberate_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload.downcast_ref::<String>().map(String::as_str);
            let message = message.or_else(|| payload.downcast_ref::<&str>().copied());
            let deliberate =
                message.is_some_and(|m| m.starts_with(DELIBERATE)) || payload.is::<PanicsOnDrop>();
            if !deliberate {
                default(info);
            }
        }));
    });
}

/// A sink that sends every event to the returned receiver.
pub fn channel_sink<E: Send + 'static>() -> (impl Fn(E) + Send + Sync + 'static, mpsc::Receiver<E>)
{
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    (move |event| tx.lock().unwrap().send(event).unwrap(), rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_duplicates_and_missing_ids() {
        let bitmap = Bitmap::new(130);
        assert!(bitmap.set(0));
        assert!(bitmap.set(129));
        assert!(!bitmap.set(129));
        assert_eq!(bitmap.missing().len(), 128);
        assert!(bitmap.get(0) && !bitmap.get(1));
        assert_eq!((bitmap.count(), bitmap.duplicates()), (2, 1));
    }
}
