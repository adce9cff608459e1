//! The kernel handle on one child: its pidfd (or bare pid), signalling,
//! and the non-blocking reap that records the exit status exactly once.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::io::fd::SharedFd;

/// What a `Child` and its `ChildKiller`s share.
///
/// The status lock orders reaping against signalling: a reap records the
/// status before it unlocks, and a signal is sent only under the lock while
/// no status is recorded, so a bare pid is never signalled after it was
/// reaped (and possibly reused).
///
/// Something else may reap the child first (`SIGCHLD` set to `SIG_IGN`,
/// which a child inherits across exec, or a library's `waitpid(-1)`); its
/// pid may then name an unrelated process. A pidfd taken after that is
/// checked and dropped, and the child is marked `lost` then or when a reap
/// finds it gone: a lost child is never signalled.
#[derive(Debug)]
pub(crate) struct Proc {
    pid: u32,
    /// `None` on kernels without `pidfd_open` (before 5.3), or when it
    /// failed (`EMFILE` at the fd limit): the bare pid.
    pidfd: Option<SharedFd>,
    status: Mutex<Option<ExitStatus>>,
    /// The child was reaped by someone else (`ECHILD`). Read and written
    /// under the status lock.
    lost: AtomicBool,
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
            lost: AtomicBool::new(false),
        }
    }

    /// Takes a handle on the child `pid`, which must not have been reaped.
    pub(crate) fn new(pid: u32) -> Proc {
        // SAFETY: `pidfd_open(pid, 0)` takes two integers and returns a new
        // fd or -1; it touches no memory of ours.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        // No such process: an unreaped child (even a zombie) has its pid,
        // so someone else reaped it.
        let gone = fd < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        let pidfd = (fd >= 0).then(|| {
            // SAFETY: the kernel just returned this fd to us; nobody else owns it.
            unsafe { OwnedFd::from_raw_fd(fd as i32) }
        });
        // The pidfd names whatever process has the pid now: if the child
        // was reaped by someone else before it was taken, that may be an
        // unrelated process, which is no child of ours.
        let lost = gone || pidfd.as_ref().is_some_and(|fd| !is_our_child(fd));
        Proc {
            pid,
            pidfd: pidfd.filter(|_| !lost).map(SharedFd::new),
            status: Mutex::new(None),
            lost: AtomicBool::new(lost),
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
        // Reaped (by us, or lost to someone else): the pid may be reused.
        if status.is_some() || self.lost.load(Ordering::Relaxed) {
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
            // SAFETY: plain `kill`; the pid is still ours (not reaped by
            // us: the status lock is held and no status is recorded; nor by
            // anyone else as far as a reap could tell: not lost).
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
        if self.lost.load(Ordering::Relaxed) {
            return Err(io::Error::from_raw_os_error(libc::ECHILD));
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
            if e.raw_os_error() == Some(libc::ECHILD) {
                // Reaped by someone else: from now on its pid is not ours.
                self.lost.store(true, Ordering::Relaxed);
            }
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        };
        *status = exit_status(&info);
        Ok(*status)
    }
}

/// Whether `pidfd` names a child of this process (exited or not), without
/// reaping it or waiting.
fn is_our_child(pidfd: &OwnedFd) -> bool {
    loop {
        // SAFETY: siginfo_t is plain old data; all-zero is a valid value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a valid, writable siginfo_t for the call, and
        // `pidfd` an open fd; WNOWAIT leaves a zombie to be reaped later,
        // WNOHANG never blocks.
        let r = unsafe {
            libc::waitid(
                libc::P_PIDFD,
                pidfd.as_raw_fd() as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        if r == 0 {
            return true;
        }
        match io::Error::last_os_error().raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::ECHILD) => return false,
            // Anything else (`EINVAL` where `P_PIDFD` is unknown, before
            // 5.4) says nothing either way; the pidfd is kept.
            _ => return true,
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A child that already exited and was reaped by someone else (here,
    /// std's own `wait`): its pid is no longer ours.
    fn reaped_elsewhere() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        child.wait().unwrap();
        child.id()
    }

    #[test]
    fn a_child_reaped_elsewhere_before_the_handle_is_lost() {
        let proc = Proc::new(reaped_elsewhere());
        assert!(proc.lost.load(Ordering::Relaxed));
        assert!(proc.pidfd().is_none());
        // Never signalled (its pid may name another process by now), and
        // waiting for it says it is no child of ours.
        proc.signal(libc::SIGKILL).unwrap();
        let err = proc.reap().unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ECHILD));
    }

    #[test]
    fn a_bare_pid_found_reaped_elsewhere_is_lost() {
        let proc = Proc::without_pidfd(reaped_elsewhere());
        assert!(!proc.lost.load(Ordering::Relaxed));
        let err = proc.reap().unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ECHILD));
        assert!(proc.lost.load(Ordering::Relaxed));
        proc.signal(libc::SIGKILL).unwrap();
    }

    #[test]
    fn a_live_child_is_ours() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let proc = Proc::new(child.id());
        assert!(!proc.lost.load(Ordering::Relaxed));
        assert!(proc.pidfd().is_some());
        proc.signal(libc::SIGKILL).unwrap();
        // std reaps it; the handle's own reap would have done as well.
        assert!(!child.wait().unwrap().success());
    }
}
