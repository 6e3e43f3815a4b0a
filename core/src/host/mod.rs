//! Hosts: what gives the core life on a platform.
//!
//! A host attaches workers to a [`Supervisor`](crate::Supervisor), runs one loop per worker,
//! parks idle ones with its own [`Park`](crate::park::Park), reports crashes and feeds the
//! clock. The core is the same everywhere; hosts are thin, and those that may allocate report
//! in one vocabulary, `Event` and `Report` (feature `alloc`, which `std` implies). The embassy
//! host allocates nothing: its `embassy::Event` has the same shape, with a crash's cause as a
//! value instead of a string.
//!
//! | host | where | parks with | a crash is |
//! |---|---|---|---|
//! | [`threads`] (feature `std`) | operating systems | futex (`atomic-wait`) | a panic, caught |
//! | `foreman-wasm` (the `wasm/` crate) | browsers | `memory.atomic.wait32` | a trap; the Worker is replaced |
//! | `embassy` (feature `embassy`) | async firmware on embassy | wakers (`embassy-sync`) | a fault returned, or a hung future dropped |
//! | a main loop (see `embedded/`) | bare metal | nothing ([`NoPark`](crate::park::NoPark)), `WFI` | a failed task, retried |

// Not under loom: the model checker's atomics are not `const`, and it models the core, not hosts.
#[cfg(all(feature = "embassy", not(loom)))]
pub mod embassy;
#[cfg(feature = "alloc")]
mod event;
#[cfg(feature = "std")]
pub mod threads;

#[cfg(feature = "alloc")]
pub use event::{Event, Report};
