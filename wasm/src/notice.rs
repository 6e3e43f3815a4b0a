//! [`Notice`]: what the Web Worker host did to threads and heaps, beyond the outcomes.

use core::fmt;

use crate::heap::Repair;

/// Something the Web Worker host did or saw, beyond the outcomes.
///
/// Outcomes — completed, failed, crashed (with the task's fate and the restart decision),
/// hung, handed back — are [`Event`](foreman_rt::host::Event)s, the vocabulary every foreman
/// host shares. A notice is host-specific telemetry: a Web Worker that failed to load, a hung
/// thread being terminated and the proof of its death, a heap repaired after a death, a clock
/// that stopped ticking. A pool writes them to the browser's console unless the app takes
/// them ([`Pool::on_notice`](crate::Pool::on_notice)).
///
/// ```
/// use foreman_wasm::Notice;
/// let notice = Notice::Gone { worker: 1, after_ms: 2040 };
/// assert_eq!(notice.to_string(), "worker 1's terminated thread is gone (2040 ms after terminate)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notice {
    /// Worker `worker`'s thread failed before it ran a task (its script or module did not
    /// load, say). With `retrying` the pool starts it again; otherwise it gave the slot up
    /// (a retry the slot held comes back as [`Event::HandedBack`](foreman_rt::host::Event)).
    StartFailed {
        /// The slot.
        worker: usize,
        /// What the browser said.
        cause: String,
        /// Whether another start is under way.
        retrying: bool,
    },
    /// The watchdog flagged worker `worker` as hung; the pool condemned it and is
    /// terminating its thread.
    Terminating {
        /// The slot.
        worker: usize,
    },
    /// Worker `worker` was flagged as hung but was no longer hung when the pool came to
    /// condemn it (its task finished, or sent a heartbeat): it is not killed.
    Spared {
        /// The slot.
        worker: usize,
    },
    /// The terminated thread of worker `worker` is gone: the browser released its life lock
    /// `after_ms` milliseconds after the pool terminated it.
    Gone {
        /// The slot.
        worker: usize,
        /// Milliseconds from the terminate to the proof of death.
        after_ms: u32,
    },
    /// The heap of worker `worker` after its thread died: kept for the replacement, or
    /// replaced (the thread died inside the allocator).
    HeapRepaired {
        /// The slot.
        worker: usize,
        /// What was done.
        repair: Repair,
    },
    /// Worker `worker` was recycled holding more than the pool's heap limit
    /// ([`Config::with_heap_limit`](crate::Config::with_heap_limit)), and still did once its
    /// thread was gone: its fresh thread starts on an empty heap, the old one's pages given up.
    HeapRenewed {
        /// The slot.
        worker: usize,
        /// What the old heap held (bytes of blocks not freed).
        held: usize,
        /// Bytes of memory given up with its pages.
        abandoned: usize,
    },
    /// Worker `worker` crashed and its replacement starts in `delay_ms` milliseconds: the
    /// restart backoff of the policy ([`Policy::with_backoff`](foreman_rt::policy::Policy::with_backoff)).
    BackingOff {
        /// The slot.
        worker: usize,
        /// Milliseconds until its replacement starts.
        delay_ms: u32,
    },
    /// The clock thread, which a task's deadline needs, could not be started: deadlines go
    /// unwatched.
    ClockFailed {
        /// What the browser said.
        cause: String,
    },
    /// The clock thread has not ticked for `for_ms` milliseconds: hung workers are not
    /// detected while it stalls.
    ClockStalled {
        /// How long it has not ticked.
        for_ms: u32,
    },
    /// A dead thread of worker `worker` allocated after its death was confirmed. It was
    /// stopped there (trapped), and its stack is never freed; see
    /// [`heap`](crate::heap#the-contract).
    Zombie {
        /// The slot.
        worker: usize,
    },
}

impl Notice {
    /// Whether the notice reports a problem (as opposed to the host doing its job).
    ///
    /// ```
    /// use foreman_wasm::Notice;
    /// assert!(Notice::ClockStalled { for_ms: 3000 }.is_problem());
    /// assert!(!Notice::Terminating { worker: 0 }.is_problem());
    /// ```
    pub fn is_problem(&self) -> bool {
        matches!(
            self,
            Notice::StartFailed { .. }
                | Notice::ClockFailed { .. }
                | Notice::ClockStalled { .. }
                | Notice::Zombie { .. }
        )
    }
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::StartFailed {
                worker,
                cause,
                retrying: true,
            } => write!(f, "worker {worker} failed to start ({cause}); trying again"),
            Notice::StartFailed {
                worker,
                cause,
                retrying: false,
            } => write!(f, "worker {worker} cannot be started: {cause}"),
            Notice::Terminating { worker } => write!(
                f,
                "worker {worker} was condemned; its Web Worker is being terminated"
            ),
            Notice::Spared { worker } => {
                write!(
                    f,
                    "worker {worker} is no longer hung (its task finished or sent a heartbeat): \
                     not killed"
                )
            }
            Notice::Gone { worker, after_ms } => write!(
                f,
                "worker {worker}'s terminated thread is gone ({after_ms} ms after terminate)"
            ),
            Notice::HeapRepaired {
                worker,
                repair: Repair::Kept,
            } => write!(
                f,
                "worker {worker}'s heap was consistent and is kept for its replacement"
            ),
            Notice::HeapRepaired {
                worker,
                repair: Repair::Replaced { abandoned },
            } => write!(
                f,
                "worker {worker} died inside the allocator: its heap was replaced by a fresh \
                 one ({} KiB abandoned)",
                abandoned / 1024
            ),
            Notice::HeapRenewed {
                worker,
                held,
                abandoned,
            } => write!(
                f,
                "worker {worker} was recycled holding {} KiB, past the heap limit: its fresh \
                 thread starts on an empty heap ({} KiB abandoned)",
                held / 1024,
                abandoned / 1024
            ),
            Notice::BackingOff { worker, delay_ms } => write!(
                f,
                "worker {worker}'s replacement starts in {delay_ms} ms (restart backoff)"
            ),
            Notice::ClockFailed { cause } => write!(
                f,
                "the pool's clock thread cannot be started ({cause}): task deadlines are not \
                 watched"
            ),
            Notice::ClockStalled { for_ms } => write!(
                f,
                "the pool's clock thread has not ticked for {for_ms} ms: hung workers are not \
                 detected"
            ),
            Notice::Zombie { worker } => write!(
                f,
                "worker {worker}'s dead thread ran on after its death was confirmed; it was \
                 stopped at its next allocation"
            ),
        }
    }
}

/// Writes a notice to the browser's console: the default when the app takes none.
pub(crate) fn to_console(notice: Notice) {
    let text = wasm_bindgen::JsValue::from_str(&format!("foreman: {notice}"));
    if notice.is_problem() {
        web_sys::console::warn_1(&text);
    } else {
        web_sys::console::info_1(&text);
    }
}
