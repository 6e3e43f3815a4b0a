//! What a worker does with a task: the pool's handler, run on a worker thread.

use core::hint::black_box;

use foreman_wasm::Context;

use crate::ledger::{self, Kind, Task};
use crate::picture;

/// How long a [`Kind::Slow`] task works.
pub const SLOW_TASK_MS: u32 = 3_000;

/// Why a task failed: it was the failing kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failed;

/// Runs one task on worker `ctx.worker()`; the page sees what each worker runs
/// ([`ledger::running`]).
pub fn run(ctx: &Context<'_>, task: &Task) -> Result<(), Failed> {
    ledger::set_running(ctx.worker(), Some(task));
    let result = match task.kind {
        Kind::Row { view, row } => {
            picture::draw_row(&picture::view(view), usize::from(row));
            Ok(())
        }
        Kind::Fail => Err(Failed),
        Kind::Panic => panic!(
            "task #{} panicked on purpose (attempt {})",
            task.id,
            ctx.attempt()
        ),
        Kind::Hang => hang(),
        Kind::Slow => {
            slow(ctx);
            Ok(())
        }
    };
    ledger::set_running(ctx.worker(), None);
    result
}

/// Works (drawing rows of the picture into a scratch buffer) for [`SLOW_TASK_MS`], sending a
/// heartbeat after each row: the watchdog sees a slow task, not a hung one. It stops early once
/// cancelled (its result would be discarded anyway; the pool is terminating its thread).
fn slow(ctx: &Context<'_>) {
    let view = picture::view(picture::VIEWS - 1);
    let mut scratch = [0u32; picture::WIDTH];
    let started = js_sys::Date::now();
    let mut row = 0;
    while js_sys::Date::now() - started < f64::from(SLOW_TASK_MS) && !ctx.is_cancelled() {
        picture::render_row(&view, row % picture::HEIGHT, &mut scratch);
        black_box(&scratch);
        ctx.heartbeat();
        row += 1;
    }
}

/// Loops forever, allocating and freeing on every turn, so that the thread is likely to be
/// inside the allocator when it is killed. It never sends a heartbeat.
fn hang() -> ! {
    let mut turn: usize = 0;
    loop {
        let size = 64 + (turn * 2_654_435_761) % 16_384;
        let block: Vec<u8> = Vec::with_capacity(size);
        black_box(&block);
        drop(block);
        turn = turn.wrapping_add(1);
    }
}
