//! # foreman-firmware
//!
//! foreman on bare metal: one core, no threads, no allocator. Two firmware images share this
//! library and differ only in what connects the timer interrupt to the main loop:
//!
//! - `supervised` (`src/bin/supervised.rs`): a `static` [`foreman_rt::Supervisor`]. SysTick feeds
//!   its clock (the watchdog) and submits tasks with `try_submit`; the main loop is the
//!   cooperative host: it polls worker steps, runs tasks, reports their outcomes, replaces
//!   crashed workers, and sleeps with `WFI` when every worker is idle.
//! - `baseline` (`src/bin/baseline.rs`): the same firmware without foreman. The same SysTick
//!   handler offers the same tasks to a plain ring buffer; the main loop runs each task once.
//!   No retries, no watchdog, no supervision: what a firmware has before it adopts foreman,
//!   and the reference for foreman's footprint.
//!
//! Both run the same script of [`workload::TASKS`] tasks, keep the same [`ledger::Ledger`] of
//! outcomes, check it against what their design promises, print it through semihosting and
//! leave QEMU with exit status 0 only if every check passed.

#![no_std]
#![deny(missing_docs)]

pub mod board;
pub mod ledger;
pub mod producer;
pub mod workload;
