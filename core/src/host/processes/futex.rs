//! [`ProcessPark`]: parking on futex words that several processes share.
//!
//! A *private* futex (what [`ThreadPark`](crate::host::threads::ThreadPark) uses, through
//! `atomic-wait`) is keyed by the address space and the virtual address, so it only works
//! between threads of one process. The words of a process pool live in a `MAP_SHARED` mapping
//! that each process maps at its own address; a *shared* futex is keyed by the page behind the
//! address, so a worker process parked on a word is woken by the parent writing the same word
//! through its own mapping.

use core::sync::atomic::AtomicU32;
use std::time::Duration;

use rustix::io::Errno;
use rustix::thread::futex::{self, Flags, Timespec};

use crate::park::Park;

/// Parks threads on futex words shared between processes (no `FUTEX_PRIVATE_FLAG`). The
/// [`Park`] of the process host's supervisor, and how worker processes wait for orders.
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

/// Bumps `word` and wakes every thread parked on it: the way to tell a waiter that something
/// it checks may have changed (it loads the word before checking, and waits on what it
/// loaded). SeqCst: the bump must follow, in one total order, whatever change the caller made
/// before ringing, so a waiter that reads the bumped value also sees that change.
pub(crate) fn ring(word: &AtomicU32) {
    word.fetch_add(1, core::sync::atomic::Ordering::SeqCst);
    wake(word, u32::MAX);
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::Ordering;
    use std::sync::Arc;
    use std::thread;
    use std::time::Instant;

    #[test]
    fn a_ring_wakes_a_waiter() {
        let word = Arc::new(AtomicU32::new(0));
        let waiter = {
            let word = Arc::clone(&word);
            thread::spawn(move || {
                while word.load(Ordering::SeqCst) == 0 {
                    wait(&word, 0, None);
                }
            })
        };
        thread::sleep(Duration::from_millis(10));
        ring(&word);
        waiter.join().unwrap();
    }

    #[test]
    fn a_wait_ends_at_its_timeout() {
        let word = AtomicU32::new(0);
        let started = Instant::now();
        wait(&word, 0, Some(Duration::from_millis(20)));
        assert!(started.elapsed() >= Duration::from_millis(15));
    }
}
