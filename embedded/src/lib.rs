//! # foreman-firmware
//!
//! foreman on bare metal: one core, no threads, no allocator. Three firmware images share this
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
//! - `minimal` (`src/bin/minimal.rs`): foreman as a minimal supervised queue (submit from the
//!   interrupt, take, complete or fail, drain): the smallest useful firmware on foreman.
//!
//! All run the same [`script`] of tasks and *report* what happened, through semihosting: a line
//! for each task that ends (with its result), for each crash and what became of its task, for
//! each task the watchdog flagged, then the interrupt side's counts and (`supervised`) the
//! supervisor's snapshot, and `done`. They do not judge it: the QEMU harness (`cargo xtask
//! qemu`) checks every report against the script, which it compiles from the same source file.
//! A firmware leaves QEMU with exit status 0 once its report is complete, and 1 if it panicked,
//! took a hard fault or could not start ([`board::done`], [`board::fail`]).

#![no_std]
#![deny(missing_docs)]

pub mod board;
pub mod producer;
pub mod script;
pub mod workload;
