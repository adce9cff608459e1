//! The kernel handle on one child: its pidfd (or bare pid), signalling,
//! and the non-blocking reap that records the exit status exactly once.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::Mutex;

use crate::io::fd::SharedFd;

/// What a `Child` and its `ChildKiller`s share.
///
/// The status lock orders reaping against signalling: a reap records the
/// status before it unlocks, and a signal is sent only under the lock while
/// no status is recorded, so a bare pid is never signalled after it was
/// reaped (and possibly reused).
#[derive(Debug)]
pub(crate) struct Proc {
    pid: u32,
    /// `None` on kernels without `pidfd_open` (before 5.3), or when it
    /// failed (`EMFILE` at the fd limit): the bare pid.
    pidfd: Option<SharedFd>,
    status: Mutex<Option<ExitStatus>>,
}

impl Proc {
    /// A handle on the child `pid` by its bare pid, as where `pidfd_open`
    /// fails.
    #[cfg(test)]
    pub(crate) fn without_pidfd(pid: u32) -> Proc {
        Proc {
            pid,
            pidfd: None,
            status: Mutex::new(None),
        }
    }

    /// Takes a handle on the child `pid`, which must not have been reaped.
    pub(crate) fn new(pid: u32) -> Proc {
        // SAFETY: `pidfd_open(pid, 0)` takes two integers and returns a new
        // fd or -1; it touches no memory of ours.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        let pidfd = (fd >= 0).then(|| {
            // SAFETY: the kernel just returned this fd to us; nobody else owns it.
            SharedFd::new(unsafe { OwnedFd::from_raw_fd(fd as i32) })
        });
        Proc {
            pid,
            pidfd,
            status: Mutex::new(None),
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// The child's pidfd, where the kernel has them.
    pub(crate) fn pidfd(&self) -> Option<&SharedFd> {
        self.pidfd.as_ref()
    }

    /// The `waitid` target: `(P_PIDFD, pidfd)` or `(P_PID, pid)`.
    pub(crate) fn target(&self) -> (libc::idtype_t, libc::id_t) {
        match &self.pidfd {
            Some(fd) => (libc::P_PIDFD, fd.raw() as libc::id_t),
            None => (libc::P_PID, self.pid as libc::id_t),
        }
    }

    /// The recorded exit status, if the child was reaped.
    pub(crate) fn status(&self) -> Option<ExitStatus> {
        *self.lock()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<ExitStatus>> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends `sig`. A child that already exited is not an error.
    pub(crate) fn signal(&self, sig: i32) -> io::Result<()> {
        let status = self.lock();
        if status.is_some() {
            return Ok(());
        }
        let r = match &self.pidfd {
            // SAFETY: `pidfd_send_signal(fd, sig, NULL, 0)`: a null siginfo
            // asks for the default `kill()`-like info; no memory is passed.
            Some(fd) => unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd.raw(),
                    sig,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                ) as i32
            },
            // SAFETY: plain `kill`; the pid is still ours (not reaped: the
            // status lock is held and no status is recorded).
            None => unsafe { libc::kill(self.pid as libc::pid_t, sig) },
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ESRCH) {
                return Err(e);
            }
        }
        Ok(())
    }

    /// Reaps the child if it has exited, without blocking; records and
    /// returns its status. `Ok(None)`: still running.
    pub(crate) fn reap(&self) -> io::Result<Option<ExitStatus>> {
        let mut status = self.lock();
        if let Some(s) = *status {
            return Ok(Some(s));
        }
        let (idtype, id) = self.target();
        let info = loop {
            // SAFETY: siginfo_t is plain old data; all-zero is valid (and
            // `si_pid == 0` is how WNOHANG reports "no change").
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            // SAFETY: `info` is a valid, writable siginfo_t for the call.
            let r = unsafe { libc::waitid(idtype, id, &mut info, libc::WEXITED | libc::WNOHANG) };
            if r == 0 {
                break info;
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        };
        *status = exit_status(&info);
        Ok(*status)
    }
}

/// Turns the siginfo `waitid` filled into an exit status (`None` if it
/// reports no exit: `WNOHANG` with nothing to report).
pub(crate) fn exit_status(info: &libc::siginfo_t) -> Option<ExitStatus> {
    // SAFETY: `waitid` fills the SIGCHLD member of the union (or leaves the
    // zeroed value); reading pid and status from it is what it is for.
    let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
    if pid == 0 {
        return None;
    }
    // The `wait()` status word: exit code in bits 8..16, or the signal in
    // bits 0..7 with bit 7 set for a core dump.
    let raw = match info.si_code {
        libc::CLD_EXITED => (status & 0xff) << 8,
        libc::CLD_KILLED => status & 0x7f,
        libc::CLD_DUMPED => (status & 0x7f) | 0x80,
        _ => return None,
    };
    Some(ExitStatus::from_raw(raw))
}
