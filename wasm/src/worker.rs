//! The worker side of the Web Worker host: what a worker thread runs.
//!
//! `web/worker.js` instantiates the module on the page's shared memory, takes the thread's
//! *life lock* (see [`crate::host`]), and calls [`worker_main`], which attaches to its slot and
//! runs tasks until a shutdown tells it to leave. A panic aborts: the thread traps and the
//! host recovers the slot.

use core::hint::black_box;

use wasm_bindgen::prelude::*;

use crate::tasks::{self, Kind, Outcome, Task};
use crate::{alloc, picture, SUPERVISOR};

/// Runs worker `slot` on the calling thread until the supervisor tells it to leave.
///
/// `thread` is the host's number for this thread. `stack_alloc` and `stack_size` describe
/// this thread's stack (wasm-bindgen's `__stack_alloc` global and the `thread_stack_size` the
/// module was instantiated with): from here on the thread allocates from its slot's own heap
/// (see [`crate::alloc`]).
///
/// Returns normally when the worker is done. Call it once per thread, from a Web Worker.
#[wasm_bindgen]
pub fn worker_main(
    slot: u32,
    thread: u32,
    stack_alloc: u32,
    stack_size: u32,
) -> Result<(), JsError> {
    let slot = slot as usize;
    alloc::register(slot, stack_alloc, stack_size)
        .map_err(|err| JsError::new(&format!("worker {slot} cannot start: {err}")))?;
    // A shutdown may have swept the slot away while this thread was loading: then there is
    // nothing to do, and the host sees the slot vacant.
    let Ok(mut worker) = SUPERVISOR.attach(slot) else {
        return Ok(());
    };
    while let Some(job) = worker.next_blocking() {
        // A copy: the slot's cell is not read again, so nothing of this thread touches it
        // once the job has ended (or the thread was condemned).
        let task = *job.task();
        tasks::set_running(slot, Some(&task));
        let result = run(&task, &job.context(), thread);
        tasks::set_running(slot, None);
        // `Err(Condemned)`: the host condemned this worker as hung while the task ran; the
        // supervisor owns the task now, and the thread is about to be terminated.
        match result {
            Ok(()) => {
                if job.complete().is_ok() {
                    tasks::close(&task, Outcome::Completed, Some(slot));
                }
            }
            Err(()) => {
                if job.fail().is_ok() {
                    tasks::close(&task, Outcome::Failed, Some(slot));
                }
            }
        }
    }
    Ok(())
}

/// Runs one task. `Err(())`: the task returned an error.
fn run(task: &Task, ctx: &foreman_rt::Context<'_>, thread: u32) -> Result<(), ()> {
    match task.kind {
        Kind::Row { view, row } => {
            picture::draw_row(&picture::view(view), usize::from(row));
            Ok(())
        }
        Kind::Fail => Err(()),
        Kind::Panic => panic!(
            "task #{} panicked on purpose (attempt {})",
            task.id,
            ctx.attempt()
        ),
        Kind::Hang => hang(ctx.worker(), thread),
        Kind::Slow => {
            slow(ctx);
            Ok(())
        }
    }
}

/// Works (drawing rows of the picture into a scratch buffer) for [`tasks::SLOW_TASK_MS`],
/// sending a heartbeat after each row: the watchdog sees a slow task, not a hung one.
fn slow(ctx: &foreman_rt::Context<'_>) {
    let view = picture::view(picture::VIEWS - 1);
    let mut scratch = [0u32; picture::WIDTH];
    let started = js_sys::Date::now();
    let mut row = 0;
    while js_sys::Date::now() - started < f64::from(tasks::SLOW_TASK_MS) {
        picture::render_row(&view, row % picture::HEIGHT, &mut scratch);
        black_box(&scratch);
        ctx.heartbeat();
        row += 1;
    }
}

/// Loops forever, allocating and freeing on every turn, so that the thread is likely to be
/// inside the allocator when it is killed. It never sends a heartbeat.
fn hang(slot: usize, thread: u32) -> ! {
    let mut turn: usize = 0;
    loop {
        let size = 64 + (turn * 2_654_435_761) % 16_384;
        let block: Vec<u8> = Vec::with_capacity(size);
        black_box(&block);
        drop(block);
        turn = turn.wrapping_add(1);
        tasks::note_spin(slot, thread, turn as u32);
    }
}
