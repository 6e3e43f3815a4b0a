//! [`Shared`]: what a pool's threads share — the supervisor, the app's handler, the outbox —
//! and what they run on it: the worker loop and the clock's tick ([`Body`]).

use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use foreman_rt::policy::{Policy, Tick};
use foreman_rt::{Condemned, Context, Run, Supervisor};

use crate::entry::{self, Body};
use crate::feed::Tagged;
use crate::outbox::{Outbox, Wake};
use crate::park::WasmPark;

/// What a worker (or the clock) reports to the page.
pub(crate) enum Record<T, R, E> {
    Completed {
        worker: usize,
        task: Tagged<T>,
        output: R,
    },
    Failed {
        worker: usize,
        task: Tagged<T>,
        error: E,
    },
    Hung {
        run: Run,
    },
}

/// The app's handler, shared by every worker.
pub(crate) type Handler<T, R, E> = dyn Fn(&Context<'_>, &T) -> Result<R, E> + Send + Sync;

/// What the pool's threads share.
pub(crate) struct Shared<T, R, E, const N: usize, const W: usize> {
    pub sup: Supervisor<Tagged<T>, N, W, WasmPark>,
    handler: Box<Handler<T, R, E>>,
    pub outbox: Outbox<Record<T, R, E>>,
    /// The clock thread's stop word: 0 while it runs, 1 once the pool is dropped.
    pub clock: AtomicU32,
    /// Ticks so far (the page's clock watch checks that they move).
    pub ticks: AtomicU32,
}

impl<T: Send, R: Send, E: Send, const N: usize, const W: usize> Shared<T, R, E, N, W> {
    /// The shared state, built in place on the heap: the supervisor may be far larger than
    /// the page's stack.
    pub(crate) fn new(policy: Policy, handler: Box<Handler<T, R, E>>) -> Arc<Self> {
        let mut shared = Arc::<Self>::new_uninit();
        let place = Arc::get_mut(&mut shared).expect("a new Arc has no other owner");
        let this = place.as_mut_ptr();
        // SAFETY: `this` points to the Arc's uninitialized, aligned and unshared value. Each
        // field is written once through a raw pointer, the supervisor in place through a
        // `MaybeUninit` view of its field (same layout), and no reference to uninitialized
        // memory is made.
        unsafe {
            Supervisor::init(
                &mut *(&raw mut (*this).sup)
                    .cast::<MaybeUninit<Supervisor<Tagged<T>, N, W, WasmPark>>>(),
                policy,
                WasmPark,
            );
            (&raw mut (*this).handler).write(handler);
            (&raw mut (*this).outbox).write(Outbox::new());
            (&raw mut (*this).clock).write(AtomicU32::new(0));
            (&raw mut (*this).ticks).write(AtomicU32::new(0));
        }
        // SAFETY: every field was initialized above.
        unsafe { shared.assume_init() }
    }

    fn report(&self, record: Record<T, R, E>) {
        if self.outbox.push(record) == Wake::Page {
            entry::wake_page();
        }
    }
}

impl<T: Send, R: Send, E: Send, const N: usize, const W: usize> Body for Shared<T, R, E, N, W> {
    fn run_worker(&self, slot: usize) {
        // Fails only if a shutdown swept the reservation away: nothing to do then.
        let Ok(mut worker) = self.sup.attach(slot) else {
            return;
        };
        while let Some(job) = worker.next_blocking() {
            let ctx = job.context();
            let result = (self.handler)(&ctx, &job.task().task);
            // `Err(Condemned)`: the page condemned this worker as hung while the task ran;
            // the supervisor owns the task now, and this thread is about to be terminated.
            let record = match result {
                Ok(output) => match job.complete() {
                    Ok(task) => Record::Completed {
                        worker: slot,
                        task,
                        output,
                    },
                    Err(Condemned) => continue,
                },
                Err(error) => match job.fail() {
                    Ok(task) => Record::Failed {
                        worker: slot,
                        task,
                        error,
                    },
                    Err(Condemned) => continue,
                },
            };
            self.report(record);
        }
    }

    fn tick(&self, now: Tick) -> bool {
        // Acquire: pairs with the Release of the stop in `Pool::drop`.
        if self.clock.load(Ordering::Acquire) != 0 {
            return false;
        }
        // Relaxed: a liveness counter.
        self.ticks.fetch_add(1, Ordering::Relaxed);
        for run in self.sup.tick(now) {
            self.report(Record::Hung { run });
        }
        true
    }

    fn clock_word(&self) -> &AtomicU32 {
        &self.clock
    }
}
