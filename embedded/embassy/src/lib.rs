//! # foreman-firmware-embassy
//!
//! foreman on embassy: async firmware on `embassy-executor`'s thread-mode executor, under QEMU
//! on the `lm3s6965evb` (Cortex-M3). Two images share this library and the task script, the
//! producer and the board of `foreman-firmware`, and differ in what connects the producers to
//! the workers:
//!
//! - `embassy` (`src/bin/embassy.rs`): a `static` [`foreman_rt::host::embassy::Host`]. The
//!   SysTick interrupt and an async producer submit; two embassy tasks run the host's worker
//!   loop; a third runs its watchdog, which cancels hung task futures.
//! - `embassy-baseline` (`src/bin/embassy-baseline.rs`): the same firmware without foreman: an
//!   `embassy-sync` channel, each task run once under a timeout. The reference for foreman's
//!   footprint on embassy.
//!
//! This library is what both need beyond `foreman-firmware`: embassy-time's driver, which the
//! board has no HAL for ([`time`]), the script run the async way with the producers'
//! bookkeeping ([`script`]), and the ledger with which both check themselves on the chip
//! ([`ledger`]).

#![no_std]
#![deny(missing_docs)]

pub mod ledger;
pub mod script;
pub mod time;
