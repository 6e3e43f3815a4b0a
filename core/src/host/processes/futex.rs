//! [`ProcessPark`]: parking on futex words that several processes share.
//!
//! A *private* futex (what [`ThreadPark`](crate::host::threads::ThreadPark) uses, through
//! `atomic-wait`) is keyed by the address space and the virtual address, so it only works
//! between threads of one process. The words of a process pool live in a `MAP_SHARED` mapping
//! that each process maps at its own address; a *shared* futex is keyed by the page behind the
//! address, so a worker process parked on a word is woken by the parent writing the same word
//! through its own mapping.

use core::sync::atomic::{AtomicU32, Ordering};
use std::cell::Cell;
use std::time::{Duration, Instant};

use rustix::io::Errno;
use rustix::thread::futex::{self, Flags, Timespec};

use crate::park::Park;

/// Parks threads on futex words shared between processes (no `FUTEX_PRIVATE_FLAG`): the
/// [`Park`] of the process host's supervisor, which lives in the shared mapping. (Its waiters
/// are the parent's threads: a submitter facing a full queue, a shutdown waiting for the last
/// worker. Worker processes wait for their orders on words in their mailboxes, through the
/// same shared futex.)
///
/// ```
/// use foreman_rt::host::processes::ProcessPark;
/// use foreman_rt::park::{AtomicU32, Park};
///
/// let word = AtomicU32::new(1);
/// ProcessPark.park(&word, 0); // the word is not 0: returns at once
/// ProcessPark.unpark_all(&word);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessPark;

impl Park for ProcessPark {
    fn park(&self, word: &crate::park::AtomicU32, expected: u32) {
        wait(super::super::futex(word), expected, None);
    }

    fn unpark_one(&self, word: &crate::park::AtomicU32) {
        wake(super::super::futex(word), 1);
    }

    fn unpark_all(&self, word: &crate::park::AtomicU32) {
        wake(super::super::futex(word), u32::MAX);
    }
}

/// Blocks while `word` holds `expected`, for at most `timeout`. Returns on a wake-up, a
/// changed word, the timeout, a signal, or spuriously: the caller looks at its condition again.
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let timeout = timeout.map(|t| Timespec {
        tv_sec: t.as_secs().try_into().unwrap_or(i64::MAX),
        tv_nsec: t.subsec_nanos().into(),
    });
    match futex::wait(word, Flags::empty(), expected, timeout.as_ref()) {
        // EAGAIN: the word had changed; ETIMEDOUT, EINTR: the caller looks again.
        Ok(()) | Err(Errno::AGAIN | Errno::TIMEDOUT | Errno::INTR) => {}
        // EFAULT or EINVAL would mean a bad address: a bug, not a condition to wait out.
        Err(err) => panic!("futex wait failed: {err}"),
    }
}

/// Wakes up to `count` threads (of any process) parked on `word`.
pub(crate) fn wake(word: &AtomicU32, count: u32) {
    // The count is an `int` for the kernel: `u32::MAX` would read as -1.
    let count = count.min(i32::MAX as u32);
    if let Err(err) = futex::wake(word, Flags::empty(), count) {
        panic!("futex wake failed: {err}");
    }
}

// ----- single-waiter words ------------------------------------------------------------------
//
// A word that one thread at a time parks on (a worker on its orders, a keeper on its bell),
// and others write to tell it something changed. Bit 0, [`PARKED`], is set by the parking
// thread just before it sleeps and cleared by the write that changes the word, which then
// wakes it; a write that finds the bit clear makes no system call. Because the flag and the
// value share the word the futex compares, a write either lands before the sleeper's compare
// (which then fails: it does not sleep) or finds the flag set (and wakes it).

/// Bit 0 of a single-waiter word: its thread is parked, or about to be.
const PARKED: u32 = 1;
/// The smallest step of a single-waiter word's value (bit 0 is [`PARKED`]).
pub(crate) const STEP: u32 = 2;

/// The value of single-waiter word `word` (without the [`PARKED`] bit). SeqCst: a waiter
/// loads it before checking what it waits for; see [`bump`].
pub(crate) fn value(word: &AtomicU32) -> u32 {
    word.load(Ordering::SeqCst) & !PARKED
}

/// Parks the calling thread — the word's one waiter — while `word`'s value is `seen`, for at
/// most `timeout` (or spuriously). It polls the word first (see [`changes_soon`]).
pub(crate) fn park(word: &AtomicU32, seen: u32, timeout: Option<Duration>) {
    if changes_soon(word, seen) {
        return;
    }
    // SeqCst: one total order with the writers' read-modify-writes.
    let mut current = word.load(Ordering::SeqCst);
    if current & !PARKED != seen {
        return;
    }
    if current & PARKED == 0 {
        // SeqCst: as above. Failure: a writer changed the word meanwhile.
        match word.compare_exchange(
            current,
            current | PARKED,
            Ordering::SeqCst,
            Ordering::SeqCst,
        ) {
            Ok(_) => current |= PARKED,
            Err(_) => return,
        }
    }
    wait(word, current, timeout);
}

// ----- polling before parking ---------------------------------------------------------------
//
// With one worker, each task is a round trip: the keeper gives an order and waits for the
// answer; the worker answers and waits for the next order. Were each side to sleep at once,
// each task would wake a thread twice, and on an idle machine a wake-up that must bring a
// sleeping CPU back costs tens of microseconds. So a waiter first polls its word for up to
// [`POLL_BUDGET`], spinning (no `yield_now`: on a busy machine a yield hands the rest of a time
// slice, milliseconds, to whatever else is runnable). A poll that runs out — the other side is
// slow, or this thread lost its CPU to other work — turns polling off for this thread for a
// pause that doubles with each poll in vain (up to [`LONGEST_PAUSE`]); a poll that sees the
// change turns it back on. So a machine busy with other work, or a pool of slow tasks, costs
// one poll in vain per pause.

/// How long a waiter polls its word before it parks.
const POLL_BUDGET: Duration = Duration::from_micros(20);
/// How long polling stays off after the first poll in vain.
const FIRST_PAUSE: Duration = Duration::from_millis(1);
/// How long polling stays off at most.
const LONGEST_PAUSE: Duration = Duration::from_millis(128);
/// Rounds of polling that double their spins (1, 2, 4, … 32); later rounds spin 64 times.
const SPIN_DOUBLINGS: u32 = 6;

/// Whether the calling thread polls before it parks: one per thread (each thread waits on
/// one word at a time).
#[derive(Clone, Copy)]
struct Polling {
    /// Polling is off until then.
    off_until: Option<Instant>,
    /// How long the last pause was (zero after a poll that saw the change).
    pause: Duration,
}

std::thread_local! {
    static POLLING: Cell<Polling> = const {
        Cell::new(Polling { off_until: None, pause: Duration::ZERO })
    };
}

/// Polls single-waiter word `word` for up to [`POLL_BUDGET`] unless polling is off for this
/// thread: true once its value is no longer `seen` (false: park as before).
fn changes_soon(word: &AtomicU32, seen: u32) -> bool {
    let mut polling = POLLING.get();
    let start = Instant::now();
    if polling.off_until.is_some_and(|until| start < until) {
        return false;
    }
    let mut doublings = 0;
    let changed = loop {
        // SeqCst (in `value`): the same load `park` starts with; this one only decides
        // whether to take that path.
        if value(word) != seen {
            break true;
        }
        for _ in 0..1u32 << doublings {
            core::hint::spin_loop();
        }
        doublings = (doublings + 1).min(SPIN_DOUBLINGS);
        if start.elapsed() >= POLL_BUDGET {
            break false;
        }
    };
    if changed {
        polling = Polling {
            off_until: None,
            pause: Duration::ZERO,
        };
    } else {
        let pause = (polling.pause * 2).clamp(FIRST_PAUSE, LONGEST_PAUSE);
        polling = Polling {
            off_until: Some(Instant::now() + pause),
            pause,
        };
    }
    POLLING.set(polling);
    changed
}

/// Sets single-waiter word `word` to `value` (bit 0 clear) and wakes its thread if it is
/// parked. Release (in the SeqCst swap): what the caller wrote before is visible to the
/// waiter once it sees `value`.
pub(crate) fn set(word: &AtomicU32, value: u32) {
    debug_assert_eq!(value & PARKED, 0);
    if word.swap(value, Ordering::SeqCst) & PARKED != 0 {
        wake(word, 1);
    }
}

/// Steps single-waiter word `word`'s value and wakes its thread if it is parked: the way to
/// tell a waiter that something it checks may have changed (it reads [`value`] before
/// checking, and parks on what it read). SeqCst: the step follows, in one total order,
/// whatever change the caller made before, so a waiter that reads the stepped value also sees
/// that change.
pub(crate) fn bump(word: &AtomicU32) {
    let step = |word: u32| Some(word.wrapping_add(STEP) & !PARKED);
    // Cannot fail: the closure always returns `Some`.
    let old = word
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, step)
        .unwrap_or_default();
    if old & PARKED != 0 {
        wake(word, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::thread;

    #[test]
    fn a_bump_wakes_the_parked_waiter() {
        let word = Arc::new(AtomicU32::new(0));
        let waiter = {
            let word = Arc::clone(&word);
            thread::spawn(move || {
                while value(&word) == 0 {
                    park(&word, 0, None);
                }
            })
        };
        while word.load(Ordering::SeqCst) & PARKED == 0 {
            thread::yield_now(); // until the waiter is parked, or about to be
        }
        bump(&word);
        waiter.join().unwrap();
        assert_eq!(
            word.load(Ordering::SeqCst),
            STEP,
            "the bump cleared the parked bit"
        );
    }

    #[test]
    fn a_park_on_a_changed_word_returns_at_once() {
        let word = AtomicU32::new(0);
        set(&word, 4);
        park(&word, 0, None);
        assert_eq!(value(&word), 4);
    }

    #[test]
    fn a_park_ends_at_its_timeout_and_the_next_write_wakes_nobody_in_vain() {
        let word = AtomicU32::new(0);
        park(&word, 0, Some(Duration::from_millis(5)));
        // The flag stays after a timeout; the next write clears it (and makes one wake call).
        bump(&word);
        assert_eq!(word.load(Ordering::SeqCst), STEP);
    }

    #[test]
    fn polls_in_vain_double_the_pause_and_a_poll_that_sees_the_change_ends_it() {
        let pause_of_this_thread = || POLLING.get().pause;
        let word = AtomicU32::new(0);
        park(&word, 0, Some(Duration::from_micros(1)));
        assert_eq!(
            pause_of_this_thread(),
            FIRST_PAUSE,
            "the first poll in vain"
        );
        thread::sleep(FIRST_PAUSE);
        park(&word, 0, Some(Duration::from_micros(1)));
        assert_eq!(
            pause_of_this_thread(),
            2 * FIRST_PAUSE,
            "the next poll in vain"
        );
        thread::sleep(2 * FIRST_PAUSE);
        set(&word, STEP);
        park(&word, 0, None); // the word is not 0: returns
        assert_eq!(POLLING.get().off_until, None, "polling is on again");
        assert_eq!(pause_of_this_thread(), Duration::ZERO);
    }
}
