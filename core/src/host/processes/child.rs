//! Worker processes as the parent sees them: how one is started, known dead, killed and
//! reaped.
//!
//! - **Started** by `exec` of this very binary (`/proc/self/exe`: the same file even if the
//!   one on disk was replaced since), never by a bare `fork` of the threaded parent. The
//!   environment variable [`WORKER_VAR`](super::worker::WORKER_VAR) makes `main`'s first call,
//!   [`Handler::serve_if_worker`](super::Handler::serve_if_worker), serve instead of running
//!   the program. Between `fork` and `exec` the child only makes raw system calls: it asks
//!   for `SIGKILL` when the parent's thread that started it dies (`PR_SET_PDEATHSIG`), checks
//!   the parent did not die already, and keeps the pool's memfd open across `exec`.
//! - **Its own process group**, so a terminal's Ctrl-C reaches the parent only (which decides
//!   what happens to the pool), and so that killing the group also kills processes a task
//!   started.
//! - **Known dead** when its pidfd becomes readable: the kernel's word, which no write to
//!   shared memory can fake. Only then does the parent recover its slot.
//! - **Killed** through its pidfd (never a reused pid), and **reaped** by the thread that
//!   started it: no zombie outlives its slot.

use core::sync::atomic::{AtomicBool, Ordering};
use std::format;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::string::String;
use std::sync::Arc;

use rustix::io::FdFlags;
use rustix::process::{Pid, PidfdFlags, Signal, WaitId, WaitIdOptions};

use super::worker::{worker_variable, PANICKED, SETUP_FAILED, WORKER_VAR};

/// A worker process, shared between the thread that keeps its slot and the watcher thread.
#[derive(Debug)]
pub(crate) struct Process {
    slot: usize,
    pid: u32,
    pidfd: OwnedFd,
    /// Set by the watcher once the pidfd said the process is gone.
    dead: AtomicBool,
}

impl Process {
    /// The slot it serves.
    pub(crate) fn slot(&self) -> usize {
        self.slot
    }

    /// Its process id.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// Its pidfd, which becomes readable when it exits.
    pub(crate) fn pidfd(&self) -> &OwnedFd {
        &self.pidfd
    }

    /// Whether the kernel said it is gone.
    pub(crate) fn is_dead(&self) -> bool {
        // Acquire: pairs with `mark_dead`.
        self.dead.load(Ordering::Acquire)
    }

    /// Records the kernel's word that it is gone (the watcher's job).
    pub(crate) fn mark_dead(&self) {
        // Release: whoever sees it dead sees it after the watcher's poll said so.
        self.dead.store(true, Ordering::Release);
    }

    /// Sends it `SIGKILL` (a no-op once it is reaped: the pidfd cannot reach another process).
    pub(crate) fn kill(&self) {
        let _ = rustix::process::pidfd_send_signal(&self.pidfd, Signal::KILL);
    }
}

/// A started worker process: its shared record and the handle that reaps it.
pub(crate) struct Spawned {
    pub(crate) process: Arc<Process>,
    child: Child,
}

impl Spawned {
    /// Starts worker `slot` of the pool whose memory is `memfd`, serving `handler`.
    pub(crate) fn start(memfd: &OwnedFd, slot: usize, handler: &str) -> io::Result<Spawned> {
        let parent = std::process::id();
        let fd = memfd.as_raw_fd();
        let mut command = Command::new("/proc/self/exe");
        let mut args = std::env::args_os();
        if let Some(arg0) = args.next() {
            command.arg0(arg0);
        }
        command
            .args(args)
            .env(WORKER_VAR, worker_variable(fd, slot, parent, handler))
            .stdin(Stdio::null())
            .process_group(0);
        // SAFETY: the closure runs in the child between fork and exec, where only
        // async-signal-safe code may run: it makes raw system calls through rustix, and builds
        // its errors from error numbers (no allocation).
        unsafe {
            command.pre_exec(move || {
                rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
                if rustix::process::getppid().map(|pid| pid.as_raw_nonzero().get() as u32)
                    != Some(parent)
                {
                    // The parent died before the request took effect: nobody would kill us.
                    return Err(io::Error::from_raw_os_error(
                        rustix::io::Errno::SRCH.raw_os_error(),
                    ));
                }
                // The pool's memfd is close-on-exec in the parent; this child keeps it.
                rustix::io::fcntl_setfd(BorrowedFd::borrow_raw(fd), FdFlags::empty())?;
                Ok(())
            });
        }
        let mut child = command.spawn()?;
        let pid = child.id();
        let pidfd = rustix::process::pidfd_open(Pid::from_child(&child), PidfdFlags::empty())
            .map_err(io::Error::from)
            .and_then(super::above_stdio);
        match pidfd {
            Ok(pidfd) => Ok(Spawned {
                process: Arc::new(Process {
                    slot,
                    pid,
                    pidfd,
                    dead: AtomicBool::new(false),
                }),
                child,
            }),
            Err(err) => {
                // Without a pidfd we could not know when it dies: do not keep it.
                let _ = child.kill();
                let _ = child.wait();
                Err(err)
            }
        }
    }

    /// Reaps the process once it is dead ([`Process::is_dead`]), after killing whatever is
    /// left of its process group (processes its tasks started). Returns its exit status, or
    /// `None` if someone else reaped it.
    pub(crate) fn reap(mut self) -> Option<ExitStatus> {
        debug_assert!(self.process.is_dead());
        // The group id is the worker's pid. While the worker is an unreaped zombie of ours,
        // neither can be reused, so the group is its own; once something else reaped it (a
        // parent that ignores SIGCHLD has its children reaped by the kernel), the number may
        // be a stranger's: leave the group alone then. The look goes through the pidfd
        // (`WNOWAIT`: the zombie stays for the reaping below).
        let unreaped = rustix::process::waitid(
            WaitId::PidFd(self.process.pidfd.as_fd()),
            WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
        )
        .is_ok_and(|status| status.is_some());
        if unreaped {
            if let Some(group) = Pid::from_raw(self.process.pid as i32) {
                let _ = rustix::process::kill_process_group(group, Signal::KILL);
            }
        }
        self.child.wait().ok()
    }
}

/// Why a worker process ended, in words, for [`Event::Crashed`](crate::host::Event::Crashed)
/// and start-up errors.
pub(crate) fn describe(status: Option<ExitStatus>) -> String {
    let Some(status) = status else {
        return "ended; its exit status is unknown (something else reaped it)".into();
    };
    if let Some(signal) = status.signal() {
        let core = if status.core_dumped() {
            ", core dumped"
        } else {
            ""
        };
        return format!("killed by signal {signal} ({}{core})", signal_name(signal));
    }
    match status.code() {
        Some(PANICKED) => format!("exited with status {PANICKED} (a panic)"),
        Some(SETUP_FAILED) => format!(
            "exited with status {SETUP_FAILED}: it could not set itself up as a worker (its \
             stderr says why)"
        ),
        Some(code) => format!("exited with status {code}"),
        None => format!("ended with {status}"),
    }
}

/// The name of a signal a worker commonly dies of.
fn signal_name(signal: i32) -> &'static str {
    let known = [
        (Signal::SEGV, "SIGSEGV"),
        (Signal::ABORT, "SIGABRT"),
        (Signal::KILL, "SIGKILL"),
        (Signal::BUS, "SIGBUS"),
        (Signal::ILL, "SIGILL"),
        (Signal::FPE, "SIGFPE"),
        (Signal::TERM, "SIGTERM"),
        (Signal::INT, "SIGINT"),
        (Signal::HUP, "SIGHUP"),
        (Signal::PIPE, "SIGPIPE"),
        (Signal::TRAP, "SIGTRAP"),
        (Signal::SYS, "SIGSYS"),
        (Signal::XCPU, "SIGXCPU"),
    ];
    known
        .iter()
        .find(|(known, _)| known.as_raw() == signal)
        .map_or("another signal", |(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses_are_described_by_cause() {
        assert_eq!(
            describe(Some(ExitStatus::from_raw(11))),
            "killed by signal 11 (SIGSEGV)"
        );
        assert_eq!(
            describe(Some(ExitStatus::from_raw(6 | 0x80))),
            "killed by signal 6 (SIGABRT, core dumped)"
        );
        assert_eq!(
            describe(Some(ExitStatus::from_raw(3 << 8))),
            "exited with status 3"
        );
        assert!(describe(Some(ExitStatus::from_raw(101 << 8))).contains("panic"));
        assert!(describe(None).contains("unknown"));
    }
}
