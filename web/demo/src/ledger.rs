//! The demo's tasks, and the ledger that says what became of every one of them.
//!
//! Everything here is fixed-size data in static memory, written with atomics: the ledger by
//! the page (from the pool's events), what each worker runs by the workers.
//!
//! # The ledger
//!
//! Before a task is submitted its entry is *opened* (pending); exactly one *final* outcome
//! closes it, from the pool's events: completed, failed, dead-lettered, lost or handed back.
//! A second outcome for the
//! same task is counted as a violation, so the page can show that every task ended exactly
//! once and that the ledger agrees with the supervisor's own counters. Entries live in a ring
//! of [`LEDGER_SIZE`]; a task id's entry can be reused once that task has ended.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::MAX_WORKERS;

/// What a task does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Draws row `row` of zoom step `view` of the picture.
    Row {
        /// The zoom step (see [`crate::picture::view`]).
        view: u16,
        /// The row.
        row: u16,
    },
    /// Returns an error: an outcome, not a crash.
    Fail,
    /// Panics. With `panic = "abort"` the worker's thread traps and dies.
    Panic,
    /// Loops forever, allocating on every turn: only the watchdog can end it.
    Hang,
    /// Works for [`SLOW_TASK_MS`](crate::work::SLOW_TASK_MS), telling the watchdog it is
    /// alive as it goes: slow, not hung.
    Slow,
}

impl Kind {
    /// A short name for the page.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Row { .. } => "row",
            Kind::Fail => "failing",
            Kind::Panic => "panicking",
            Kind::Hang => "hanging",
            Kind::Slow => "slow",
        }
    }

    /// The kind as one word, for [`running`]: a tag in bits 0–2; for a row, the row in bits
    /// 3–15 and the view in bits 16–31.
    fn encode(self) -> u32 {
        match self {
            Kind::Row { view, row } => u32::from(view) << 16 | u32::from(row) << 3,
            Kind::Fail => 1,
            Kind::Panic => 2,
            Kind::Hang => 3,
            Kind::Slow => 4,
        }
    }

    fn decode(word: u32) -> Kind {
        match word & 7 {
            0 => Kind::Row {
                view: (word >> 16) as u16,
                row: ((word >> 3) & 0x1FFF) as u16,
            },
            1 => Kind::Fail,
            2 => Kind::Panic,
            3 => Kind::Hang,
            _ => Kind::Slow,
        }
    }
}

/// A task: plain data, copied into the queue and out of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Task {
    /// Unique (modulo 2³²) task number.
    pub id: u32,
    /// The batch it belongs to (0: none).
    pub batch: u16,
    /// What it does.
    pub kind: Kind,
}

/// How a task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Outcome {
    /// Ran to a result.
    Completed = 2,
    /// Ran to an error.
    Failed = 3,
    /// Crashed its worker on every allowed attempt.
    DeadLettered = 4,
    /// Crashed its worker under at-most-once delivery.
    Lost = 5,
    /// Given back unrun (abort, escalation, or a retry nobody could run).
    HandedBack = 6,
    /// Cancelled: before it ran, or while it ran (its worker was replaced).
    Cancelled = 7,
}

impl Outcome {
    const ALL: [Outcome; 6] = [
        Outcome::Completed,
        Outcome::Failed,
        Outcome::DeadLettered,
        Outcome::Lost,
        Outcome::HandedBack,
        Outcome::Cancelled,
    ];

    /// A short name for the page.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Failed => "failed",
            Outcome::DeadLettered => "dead-lettered",
            Outcome::Lost => "lost",
            Outcome::HandedBack => "handed back",
            Outcome::Cancelled => "cancelled",
        }
    }
}

/// Entries in the ledger's ring.
pub const LEDGER_SIZE: usize = 1 << 16;
const UNUSED: u32 = 0;
const PENDING: u32 = 1;

/// Each entry: state (bits 0–7), worker + 1 (bits 8–15, 0 if none), `id >> 16` (bits 16–31),
/// which tells the ids sharing an entry apart.
static ENTRIES: [AtomicU32; LEDGER_SIZE] = [const { AtomicU32::new(UNUSED) }; LEDGER_SIZE];
/// Entries opened, ever.
static OPENED: AtomicU32 = AtomicU32::new(0);
/// Entries closed, per outcome (indexed by `Outcome as usize - 2`).
static CLOSED: [AtomicU32; 6] = [const { AtomicU32::new(0) }; 6];
/// Outcomes refused: a task that ended twice, or ended without being opened.
static VIOLATIONS: AtomicU32 = AtomicU32::new(0);
/// The current batch: its id (bits 48–63), its size (bits 24–47) and how many of its tasks
/// ended (bits 0–23). One word, so that the page never sees a new id with an old size.
static BATCH: AtomicU64 = AtomicU64::new(0);
/// The most tasks a batch can count.
pub const MAX_BATCH_TASKS: u32 = (1 << 24) - 1;
const COUNT_MASK: u64 = (1 << 24) - 1;
/// The next task id.
static NEXT_ID: AtomicU32 = AtomicU32::new(1);

fn entry(id: u32) -> &'static AtomicU32 {
    &ENTRIES[id as usize % LEDGER_SIZE]
}

fn tag(id: u32) -> u32 {
    id >> 16 << 16
}

/// A fresh task id.
pub fn next_id() -> u32 {
    // Relaxed: ids only need to be unique.
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// Why an entry could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerFull;

impl core::fmt::Display for LedgerFull {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{LEDGER_SIZE} tasks are still unfinished: the ledger has no room for another"
        )
    }
}

/// Opens task `id`'s entry before it is submitted.
pub fn open(id: u32) -> Result<(), LedgerFull> {
    let cell = entry(id);
    // Relaxed: a first guess for the CAS loop.
    let mut current = cell.load(Ordering::Relaxed);
    loop {
        if current & 0xFF == PENDING {
            return Err(LedgerFull);
        }
        // AcqRel: Release publishes the opening before the task can reach a worker (the
        // submission follows); Acquire orders it after the previous occupant's outcome.
        match cell.compare_exchange_weak(
            current,
            tag(id) | PENDING,
            Ordering::AcqRel,
            Ordering::Relaxed,
        ) {
            Ok(_) => break,
            Err(seen) => current = seen,
        }
    }
    // Relaxed: statistics, read together with the outcome counters.
    OPENED.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Undoes [`open`] for a task the supervisor refused (it was never submitted).
pub fn cancel(id: u32) {
    // AcqRel: as in `open`.
    if entry(id)
        .compare_exchange(
            tag(id) | PENDING,
            UNUSED,
            Ordering::AcqRel,
            Ordering::Relaxed,
        )
        .is_ok()
    {
        // Relaxed: statistics.
        OPENED.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Records how `task` ended (`worker`: who ran it, if a worker reported it). Returns `false`
/// (and counts a violation) if the task was not pending: it had already ended.
pub fn close(task: &Task, outcome: Outcome, worker: Option<usize>) -> bool {
    let by = worker.map_or(0, |slot| slot as u32 + 1) << 8;
    // AcqRel: ordered after the opening (Acquire) and before whoever reads the outcome.
    let closed = entry(task.id)
        .compare_exchange(
            tag(task.id) | PENDING,
            tag(task.id) | by | outcome as u32,
            Ordering::AcqRel,
            Ordering::Relaxed,
        )
        .is_ok();
    if !closed {
        // Relaxed: statistics.
        VIOLATIONS.fetch_add(1, Ordering::Relaxed);
        return false;
    }
    // Relaxed: statistics.
    CLOSED[outcome as usize - 2].fetch_add(1, Ordering::Relaxed);
    if task.batch != 0 {
        // Relaxed: the count is advisory.
        let _ = BATCH.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |word| {
            (word >> 48 == u64::from(task.batch) && word & COUNT_MASK < COUNT_MASK)
                .then_some(word + 1)
        });
    }
    true
}

/// What the ledger says about task `id`: `None` if its entry holds another task now (or it
/// was never opened); else the state and the worker that reported it.
pub fn lookup(id: u32) -> Option<(Option<Outcome>, Option<usize>)> {
    // Acquire: see the outcome's writer's effects.
    let word = entry(id).load(Ordering::Acquire);
    if word & 0xFF == UNUSED || word & 0xFFFF_0000 != tag(id) {
        return None;
    }
    let worker = ((word >> 8) & 0xFF)
        .checked_sub(1)
        .map(|slot| slot as usize);
    let outcome = Outcome::ALL
        .into_iter()
        .find(|outcome| *outcome as u32 == word & 0xFF);
    Some((outcome, worker))
}

/// The ledger's totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Totals {
    /// Opened and not yet ended: queued, running, or waiting for a retry.
    pub pending: u32,
    /// Ran to a result.
    pub completed: u32,
    /// Ran to an error.
    pub failed: u32,
    /// Crashed on every attempt.
    pub dead_lettered: u32,
    /// Crashed under at-most-once delivery.
    pub lost: u32,
    /// Given back unrun.
    pub handed_back: u32,
    /// Cancelled.
    pub cancelled: u32,
    /// Outcomes refused because the task had already ended (should stay 0).
    pub violations: u32,
}

/// The ledger's totals now.
pub fn totals() -> Totals {
    // Relaxed: statistics. An outcome is counted after its opening; a reader that sees the
    // outcome but not the opening would compute a negative `pending`, hence the saturation.
    let closed = |outcome: Outcome| CLOSED[outcome as usize - 2].load(Ordering::Relaxed);
    let completed = closed(Outcome::Completed);
    let failed = closed(Outcome::Failed);
    let dead_lettered = closed(Outcome::DeadLettered);
    let lost = closed(Outcome::Lost);
    let handed_back = closed(Outcome::HandedBack);
    let cancelled = closed(Outcome::Cancelled);
    let ended = completed + failed + dead_lettered + lost + handed_back + cancelled;
    Totals {
        pending: OPENED.load(Ordering::Relaxed).saturating_sub(ended),
        completed,
        failed,
        dead_lettered,
        lost,
        handed_back,
        cancelled,
        violations: VIOLATIONS.load(Ordering::Relaxed),
    }
}

/// Starts a new batch of `total` tasks (at most [`MAX_BATCH_TASKS`]); the page's progress
/// bar follows the latest one. Returns its id (never 0).
pub fn begin_batch(total: u32) -> u16 {
    let total = u64::from(total.min(MAX_BATCH_TASKS));
    let mut id = 0;
    // Relaxed: the word itself is all that matters; tasks carry the id.
    let _ = BATCH.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |word| {
        id = ((word >> 48) as u16).wrapping_add(1).max(1);
        Some(u64::from(id) << 48 | total << 24)
    });
    id
}

/// Takes `count` tasks that will never be submitted off batch `batch`'s size.
pub fn shrink_batch(batch: u16, count: u32) {
    // Relaxed: as in `begin_batch`.
    let _ = BATCH.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |word| {
        let total = (word >> 24) & COUNT_MASK;
        (word >> 48 == u64::from(batch))
            .then(|| word & !(COUNT_MASK << 24) | total.saturating_sub(u64::from(count)) << 24)
    });
}

/// The current batch, if any: `(id, size, tasks of it that ended)`.
pub fn batch_progress() -> Option<(u16, u32, u32)> {
    // Relaxed: advisory.
    let word = BATCH.load(Ordering::Relaxed);
    let id = (word >> 48) as u16;
    (id != 0).then_some((
        id,
        ((word >> 24) & COUNT_MASK) as u32,
        (word & COUNT_MASK) as u32,
    ))
}

/// What each worker slot is running: `(id + 1) << 32 | kind`, 0 when none.
static RUNNING: [AtomicU64; MAX_WORKERS] = [const { AtomicU64::new(0) }; MAX_WORKERS];

/// Notes that worker `slot` started `task` (or, with `None`, finished it).
pub fn set_running(slot: usize, task: Option<&Task>) {
    let word = task.map_or(0, |task| {
        (u64::from(task.id) + 1) << 32 | u64::from(task.kind.encode())
    });
    // Relaxed: advisory, for the page.
    RUNNING[slot].store(word, Ordering::Relaxed);
}

/// The id and kind of what worker `slot` is running, if anything.
pub fn running(slot: usize) -> Option<(u32, Kind)> {
    // Relaxed: advisory.
    let word = RUNNING[slot].load(Ordering::Relaxed);
    let id = (word >> 32).checked_sub(1)?;
    Some((id as u32, Kind::decode(word as u32)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn task(batch: u16) -> Task {
        Task {
            id: next_id(),
            batch,
            kind: Kind::Fail,
        }
    }

    #[wasm_bindgen_test]
    fn kinds_survive_the_running_word() {
        for kind in [
            Kind::Row { view: 23, row: 399 },
            Kind::Row { view: 0, row: 0 },
            Kind::Fail,
            Kind::Panic,
            Kind::Hang,
            Kind::Slow,
        ] {
            assert_eq!(Kind::decode(kind.encode()), kind);
        }
    }

    #[wasm_bindgen_test]
    fn every_task_ends_exactly_once() {
        let before = totals();
        let task = task(0);
        assert_eq!(lookup(task.id), None);
        open(task.id).unwrap();
        assert_eq!(lookup(task.id), Some((None, None)));
        assert_eq!(totals().pending, before.pending + 1);
        assert!(close(&task, Outcome::Failed, Some(2)));
        assert_eq!(lookup(task.id), Some((Some(Outcome::Failed), Some(2))));
        assert!(
            !close(&task, Outcome::Completed, Some(1)),
            "a second outcome is refused"
        );
        assert_eq!(lookup(task.id), Some((Some(Outcome::Failed), Some(2))));
        let after = totals();
        assert_eq!(after.failed, before.failed + 1);
        assert_eq!(after.completed, before.completed);
        assert_eq!(after.violations, before.violations + 1);
        assert_eq!(after.pending, before.pending);
    }

    #[wasm_bindgen_test]
    fn a_refused_submission_leaves_no_trace() {
        let before = totals();
        let task = task(0);
        open(task.id).unwrap();
        cancel(task.id);
        assert_eq!(lookup(task.id), None);
        assert_eq!(totals().pending, before.pending);
        assert!(
            !close(&task, Outcome::Completed, None),
            "it was never submitted"
        );
        assert_eq!(totals().violations, before.violations + 1);
    }

    #[wasm_bindgen_test]
    fn an_entry_is_reused_only_after_its_task_ended() {
        let first = task(0);
        let twin = Task {
            id: first.id + LEDGER_SIZE as u32,
            ..first
        };
        open(first.id).unwrap();
        assert_eq!(open(twin.id), Err(LedgerFull));
        assert!(close(&first, Outcome::Completed, Some(0)));
        open(twin.id).unwrap();
        assert_eq!(lookup(first.id), None, "the entry holds the twin now");
        assert_eq!(lookup(twin.id), Some((None, None)));
        assert!(close(&twin, Outcome::HandedBack, None));
        assert_eq!(lookup(twin.id), Some((Some(Outcome::HandedBack), None)));
    }

    #[wasm_bindgen_test]
    fn a_batch_counts_its_own_tasks() {
        let batch = begin_batch(3);
        let (a, b, other) = (task(batch), task(batch), task(batch.wrapping_add(7)));
        for task in [a, b, other] {
            open(task.id).unwrap();
        }
        assert_eq!(batch_progress(), Some((batch, 3, 0)));
        assert!(close(&a, Outcome::Completed, Some(0)));
        assert!(close(&other, Outcome::Completed, Some(0)));
        assert_eq!(batch_progress(), Some((batch, 3, 1)));
        shrink_batch(batch, 1); // one task was never submitted
        assert!(close(&b, Outcome::DeadLettered, None));
        assert_eq!(batch_progress(), Some((batch, 2, 2)));
        let next = begin_batch(1);
        assert_ne!(next, batch);
        assert_eq!(batch_progress(), Some((next, 1, 0)));
    }

    #[wasm_bindgen_test]
    fn running_tasks_are_visible() {
        let task = Task {
            id: 41,
            batch: 0,
            kind: Kind::Row { view: 3, row: 17 },
        };
        set_running(6, Some(&task));
        assert_eq!(running(6), Some((41, task.kind)));
        set_running(6, None);
        assert_eq!(running(6), None);
    }
}
