//! [`Shared`]: what a pool's threads share — the supervisor, the app's handler, the outbox —
//! and what they run on it: the worker loop and the clock's tick ([`Body`]).

use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use foreman_rt::policy::{Policy, Tick};
use foreman_rt::{Condemned, Context, Decision, Run, Supervisor, WorkerError};

use crate::entry::{self, Body};
use crate::feed::Tagged;
use crate::heap;
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
    /// The task ended cancelled: before it ran (`worker: None`), or it returned after its
    /// run was cancelled (its result discarded).
    Cancelled {
        worker: Option<usize>,
        task: Tagged<T>,
    },
    /// The worker ran its quota of tasks ([`Policy::with_recycling`]), or its heap holds more
    /// than the pool's limit: its thread leaves, and the page starts a fresh one for the slot
    /// once this one is proven gone.
    Recycled {
        worker: usize,
    },
}

/// The app's handler, shared by every worker.
pub(crate) type Handler<T, R, E> = dyn Fn(&Context<'_>, &T) -> Result<R, E> + Send + Sync;

/// What the pool's threads share.
pub(crate) struct Shared<T, R, E, const N: usize, const W: usize> {
    pub sup: Supervisor<Tagged<T>, N, W, WasmPark>,
    handler: Box<Handler<T, R, E>>,
    pub outbox: Outbox<Record<T, R, E>>,
    /// Bytes a worker's heap may hold after a task before the worker is recycled.
    heap_limit: Option<usize>,
    /// The clock thread's stop word: 0 while it runs, 1 once the pool is dropped.
    pub clock: AtomicU32,
    /// Ticks so far (the page's clock watch checks that they move).
    pub ticks: AtomicU32,
    /// The pool's zero on the shared time line (the supervisor's clock counts from it).
    origin: f64,
}

impl<T: Send, R: Send, E: Send, const N: usize, const W: usize> Shared<T, R, E, N, W> {
    /// The shared state, built in place on the heap: the supervisor may be far larger than
    /// the page's stack.
    pub(crate) fn new(
        policy: Policy,
        heap_limit: Option<usize>,
        handler: Box<Handler<T, R, E>>,
        origin: f64,
    ) -> Arc<Self> {
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
            (&raw mut (*this).heap_limit).write(heap_limit);
            (&raw mut (*this).clock).write(AtomicU32::new(0));
            (&raw mut (*this).ticks).write(AtomicU32::new(0));
            (&raw mut (*this).origin).write(origin);
        }
        // SAFETY: every field was initialized above.
        unsafe { shared.assume_init() }
    }

    /// Attaches the calling thread to `slot`. The page starts a replacement only once its
    /// restart backoff has passed by the supervisor's clock, so a refusal for backoff is rare
    /// (another thread's tick a moment behind); it brings the clock up to date, sleeps out what
    /// is left (a pool's drop wakes it), and tries again. `None` if a shutdown swept the slot
    /// away.
    fn attach(&self, slot: usize) -> Option<foreman_rt::Worker<'_, Tagged<T>, N, W, WasmPark>> {
        loop {
            match self.sup.attach(slot) {
                Ok(worker) => return Some(worker),
                Err(WorkerError::BackingOff { ready_at, .. }) => {
                    let now = entry::since(self.origin);
                    let wait = ready_at.wrapping_sub(now);
                    if wait > 0 && wait <= foreman_rt::policy::MAX_DURATION {
                        // Relaxed: the word only wakes the sleep early (a dropped pool).
                        let seen = self.clock.load(Ordering::Relaxed);
                        if seen != 0 {
                            return None;
                        }
                        crate::park::wait(&self.clock, seen, i64::from(wait) * 1_000_000);
                    }
                    self.tick(entry::since(self.origin));
                }
                Err(_) => return None,
            }
        }
    }

    /// Reports a task's recorded outcome, its ticket ended first: a cancellation from now on
    /// finds it too late.
    fn finish(&self, record: Record<T, R, E>) {
        if let Record::Completed { task, .. }
        | Record::Failed { task, .. }
        | Record::Cancelled { task, .. } = &record
        {
            task.end();
        }
        self.report(record);
    }

    /// Recycles `worker`, whose heap holds more than the limit, between tasks: its next step
    /// ends the loop.
    fn recycle(&self, worker: &mut foreman_rt::Worker<'_, Tagged<T>, N, W, WasmPark>) {
        // Refused (`RecycleError`) when it leaves anyway (an abort, a drain with nothing
        // queued: no fresh thread would follow it), or when its run was condemned meanwhile
        // (its thread is being terminated). (A retry never waits in the slot of a worker that
        // just finished a task.) Either way its next step says what it does.
        let _ = worker.recycle();
    }

    /// Reports to the page. Whether the page hears at once or at the clock's next tick, see
    /// [`defers_wake_ups`](Self::defers_wake_ups).
    fn report(&self, record: Record<T, R, E>) {
        let won = self.outbox.push(record) == Wake::Page;
        if self.defers_wake_ups() {
            if won {
                self.outbox.owe();
            }
        } else if won || self.outbox.take_owed() {
            entry::wake_page();
        }
    }

    /// Whether a worker's report may wait for the clock's next tick (at most its period,
    /// 10 ms or less) rather than wake the page now: while the clock ticks and the queue holds
    /// more tasks than there are worker slots, so that the page hears of a stream of outcomes
    /// in bursts (one page task per tick, not one per outcome: every page task competes with
    /// the workers for the cores). Once the queue runs low, the page hears at once: it may
    /// have tasks to feed, or be waiting for the last outcomes.
    fn defers_wake_ups(&self) -> bool {
        // Relaxed, both: hints; a wrong guess only makes one wake-up early or one tick late.
        self.ticks.load(Ordering::Relaxed) > 0
            && self.clock.load(Ordering::Relaxed) == 0
            && self.sup.queued() > W
    }
}

impl<T: Send, R: Send, E: Send, const N: usize, const W: usize> Body for Shared<T, R, E, N, W> {
    fn run_worker(&self, slot: usize) {
        // Fails only if a shutdown swept the reservation away: nothing to do then.
        let Some(mut worker) = self.attach(slot) else {
            return;
        };
        // The heap this thread allocates from (registered before the worker loop runs).
        let heap = heap::current();
        let over_limit = || {
            self.heap_limit
                .zip(heap)
                .is_some_and(|(limit, heap)| heap::usage(heap).in_use > limit)
        };
        // (`loop` and `let … else`, not `while let`: the job's borrow of `worker` ends with the
        // job, so that the worker can be recycled after it.)
        loop {
            let Some(job) = worker.next_blocking() else {
                break;
            };
            let ctx = job.context();
            if let Some(control) = &job.task().control {
                // Cancelled while queued (or before this retry): it never runs.
                if control.ticket.claim(ctx.run()).is_err() {
                    match job.cancel() {
                        Ok(task) => self.finish(Record::Cancelled { worker: None, task }),
                        // Condemned meanwhile: the supervisor owns the task now.
                        Err(Condemned) => continue,
                    }
                    continue;
                }
                if let Some(deadline) = control.options.deadline() {
                    job.set_deadline(deadline);
                }
            }
            let result = (self.handler)(&ctx, &job.task().task);
            // `Err(Condemned)` below: the page condemned this run (hung, past its deadline,
            // cancelled) while the task ran; the supervisor owns the task now, and this thread
            // is about to be terminated.
            if job.is_cancelled() {
                // Cancelled while it ran (or condemned): its result is discarded.
                drop(result);
                match job.cancel() {
                    Ok(task) => self.finish(Record::Cancelled {
                        worker: Some(slot),
                        task,
                    }),
                    Err(Condemned) => continue,
                }
                if over_limit() {
                    self.recycle(&mut worker);
                }
                continue;
            }
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
            self.finish(record);
            if over_limit() {
                self.recycle(&mut worker);
            }
        }
        if worker.exit() == Decision::Recycle {
            // Between tasks, its quota run or its heap past the limit: this thread leaves, a
            // fresh one follows.
            self.report(Record::Recycled { worker: slot });
        }
        // Leaving: a wake-up this pool still owes goes now rather than at the next tick.
        if self.outbox.take_owed() {
            entry::wake_page();
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
        // The wake-up the workers left for this tick (see `defers_wake_ups`).
        if self.outbox.take_owed() {
            entry::wake_page();
        }
        true
    }

    fn clock_word(&self) -> &AtomicU32 {
        &self.clock
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    type TestShared = Shared<u32, (), (), 8, 2>;

    fn shared_with_queued(tasks: u32) -> Arc<TestShared> {
        let shared = TestShared::new(Policy::DEFAULT, None, Box::new(|_, _| Ok(())), 0.0);
        for task in 0..tasks {
            assert!(shared.sup.try_submit(Tagged::untracked(task)).is_ok());
        }
        shared
    }

    #[wasm_bindgen_test]
    fn wake_ups_wait_for_the_clock_only_while_it_ticks_and_the_queue_is_busy() {
        let busy = shared_with_queued(3);
        assert!(
            !busy.defers_wake_ups(),
            "no tick yet (no clock, or not loaded): nobody would send a deferred wake-up"
        );
        busy.ticks.store(1, Ordering::Relaxed);
        assert!(
            busy.defers_wake_ups(),
            "3 queued tasks for 2 slots: a burst"
        );
        busy.clock.store(1, Ordering::Relaxed);
        assert!(
            !busy.defers_wake_ups(),
            "the clock is stopping: wake at once"
        );

        let low = shared_with_queued(2);
        low.ticks.store(1, Ordering::Relaxed);
        assert!(
            !low.defers_wake_ups(),
            "no more queued tasks than slots: the page may have to feed, wake at once"
        );
    }
}
