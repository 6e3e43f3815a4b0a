//! Hosts: what gives the core life on a platform.
//!
//! A host attaches workers to a [`Supervisor`](crate::Supervisor), runs one loop per worker,
//! parks idle ones with its own [`Park`](crate::park::Park), reports crashes and feeds the
//! clock. The core is the same everywhere; hosts are thin, and they all report in one
//! vocabulary, [`Event`] and [`Report`] (feature `alloc`, which `std` implies):
//!
//! | host | where | parks with | a crash is |
//! |---|---|---|---|
//! | [`threads`] (feature `std`) | operating systems | futex (`atomic-wait`) | a panic, caught |
//! | `foreman-wasm` (the `wasm/` crate) | browsers | `memory.atomic.wait32` | a trap; the Worker is replaced |
//! | a main loop (see `embedded/`) | bare metal | nothing ([`NoPark`](crate::park::NoPark)), `WFI` | a failed task, retried |

mod event;
#[cfg(feature = "std")]
pub mod threads;

pub use event::{Event, Report};
