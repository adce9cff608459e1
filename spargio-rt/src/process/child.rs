//! `Child` (a spawned process) and `ChildKiller` (a shareable handle that
//! signals it).

use std::io;
use std::os::fd::OwnedFd;
use std::process::{ExitStatus, Output};
use std::sync::Arc;

use super::orphans::{self, ReapGuard};
use super::pipe::{ChildStderr, ChildStdin, ChildStdout};
use super::proc::Proc;
use super::wait;
use crate::io::{AsyncRead, AsyncReadExt};

/// A spawned child process.
///
/// [`wait`](Self::wait) takes `&mut self` (it closes stdin first, as
/// `std` does, so a child reading its input to the end is not left waiting
/// for it). To kill or signal the child while a wait is in flight, take a
/// [`ChildKiller`] first with [`killer`](Self::killer): it is `Clone`,
/// `Send` and `'static`, and killing never waits for the waiter.
///
/// **Dropping a `Child` does not kill the process** (as with `std` and
/// `tokio`) unless the command set
/// [`kill_on_drop`](super::Command::kill_on_drop); it keeps running and
/// its pipes close. If it has already exited it is reaped on drop;
/// otherwise a task on the runtime waits for it and reaps it when it
/// exits, so it never lingers as a zombie. Outside a runtime, or once the
/// runtime has shut down, it is reaped (once it has exited) at the next
/// spawn or `Child` drop in this process instead.
#[derive(Debug)]
pub struct Child {
    proc: Arc<Proc>,
    kill_on_drop: bool,
    /// The parent's end of the child's stdin, if it was piped.
    pub stdin: Option<ChildStdin>,
    /// The parent's end of the child's stdout, if it was piped.
    pub stdout: Option<ChildStdout>,
    /// The parent's end of the child's stderr, if it was piped.
    pub stderr: Option<ChildStderr>,
}

/// Kills or signals a [`Child`] from anywhere, even while it is being
/// waited on. Signals go through a pidfd where the kernel has them, so a
/// reaped child's reused pid is never hit.
#[derive(Clone, Debug)]
pub struct ChildKiller {
    proc: Arc<Proc>,
}

impl Child {
    pub(crate) fn from_std(mut child: std::process::Child, kill_on_drop: bool) -> Child {
        let proc = Arc::new(Proc::new(child.id()));
        let stdin = child
            .stdin
            .take()
            .map(|s| ChildStdin::new(OwnedFd::from(s)));
        let stdout = child
            .stdout
            .take()
            .map(|s| ChildStdout::new(OwnedFd::from(s)));
        let stderr = child
            .stderr
            .take()
            .map(|s| ChildStderr::new(OwnedFd::from(s)));
        // Dropping a std `Child` neither kills nor waits.
        drop(child);
        Child {
            proc,
            kill_on_drop,
            stdin,
            stdout,
            stderr,
        }
    }

    /// The child's process id. Once the child has been reaped (a wait
    /// returned its status) the id may belong to another process.
    pub fn id(&self) -> u32 {
        self.proc.pid()
    }

    /// A handle that kills or signals this child, usable while a
    /// [`wait`](Self::wait) is in flight.
    pub fn killer(&self) -> ChildKiller {
        ChildKiller {
            proc: self.proc.clone(),
        }
    }

    /// Sends `SIGKILL`, without waiting for the child to exit. A child that
    /// already exited is not an error.
    pub fn kill(&self) -> io::Result<()> {
        self.proc.signal(libc::SIGKILL)
    }

    /// The same as [`kill`](Self::kill) (the name `tokio` uses for it).
    pub fn start_kill(&self) -> io::Result<()> {
        self.kill()
    }

    /// Sends signal `sig` (`libc::SIGTERM`, ...). A child that already
    /// exited is not an error.
    pub fn signal(&self, sig: i32) -> io::Result<()> {
        self.proc.signal(sig)
    }

    /// Waits for the child to exit and returns its status. Closes stdin
    /// first. Cancel-safe: dropping the future loses nothing, and waiting
    /// again (or after the child exited) returns the same status.
    ///
    /// The wait is an `IORING_OP_WAITID` on the child's pidfd; on kernels
    /// without it (before 6.7), a ring poll of the pidfd. Neither holds a
    /// thread, so waits given up on (under a `timeout`, say) cost nothing.
    /// The exception: a child without a pidfd (`pidfd_open` failed at the
    /// fd limit) on a kernel before 6.7 is waited for on the blocking
    /// pool, a thread per wait until the child exits.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        wait::wait(&self.proc).await
    }

    /// The exit status if the child has exited (reaping it), `None` if it
    /// is still running. Never blocks.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.proc.reap()
    }

    /// Closes stdin, reads stdout and stderr to their ends (those that are
    /// piped) while waiting for the child, and returns all three.
    pub async fn wait_with_output(mut self) -> io::Result<Output> {
        drop(self.stdin.take());
        let out = self.stdout.take();
        let err = self.stderr.take();
        let (stdout, stderr, status) =
            futures_util::future::join3(drain(out), drain(err), self.wait()).await;
        Ok(Output {
            status: status?,
            stdout: stdout?,
            stderr: stderr?,
        })
    }
}

/// Reads a pipe to its end (nothing if there is none).
async fn drain<R: AsyncRead>(pipe: Option<R>) -> io::Result<Vec<u8>> {
    let Some(mut pipe) = pipe else {
        return Ok(Vec::new());
    };
    let (res, buf) = pipe.read_to_end(Vec::new()).await;
    res.map(|_| buf)
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.kill_on_drop {
            let _ = self.proc.signal(libc::SIGKILL);
        }
        // Reap it if it already exited; otherwise reap it when it does.
        if let Ok(None) = self.proc.reap() {
            reap_when_it_exits(self.proc.clone());
        }
        orphans::sweep();
    }
}

/// Waits on the runtime for a dropped child to exit and reaps it, so it
/// does not stay a zombie for the rest of this process's life. The wait
/// is a ring op (no thread is held). Outside a runtime, when the runtime
/// shuts down first, or where only a thread could wait (a bare pid on a
/// kernel without the ring's `WAITID` op; see
/// [`wait::reap_without_a_thread`]), the child goes to the
/// [orphans](orphans), reaped at a later spawn or `Child` drop.
fn reap_when_it_exits(proc: Arc<Proc>) {
    let Some(handle) = crate::RuntimeHandle::try_current() else {
        orphans::adopt(proc);
        return;
    };
    let guard = ReapGuard::new(proc);
    drop(handle.spawn(async move {
        wait::reap_without_a_thread(guard.proc()).await;
        drop(guard);
    }));
}

impl ChildKiller {
    /// The child's process id (see [`Child::id`]).
    pub fn id(&self) -> u32 {
        self.proc.pid()
    }

    /// Sends `SIGKILL`. A child that already exited is not an error.
    pub fn kill(&self) -> io::Result<()> {
        self.proc.signal(libc::SIGKILL)
    }

    /// Sends signal `sig`. A child that already exited is not an error.
    pub fn signal(&self, sig: i32) -> io::Result<()> {
        self.proc.signal(sig)
    }

    /// Whether the child has been reaped, with its status.
    pub fn status(&self) -> Option<ExitStatus> {
        self.proc.status()
    }
}
