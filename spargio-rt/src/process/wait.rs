//! Waiting for a child to exit: `IORING_OP_WAITID` on the ring; where the
//! kernel lacks that op (before 6.7), a poll of the child's pidfd on the
//! ring (it turns readable when the child exits); only without a pidfd
//! (before 5.3, or `pidfd_open` failed at the fd limit) on such a kernel,
//! a blocking `waitid` on the blocking pool, which holds its thread until
//! the child exits.
//!
//! All of them leave the child a zombie (`WNOWAIT`, or a poll that reaps
//! nothing): they only learn that it exited. The reap is then a non-blocking `waitid` under the
//! child's status lock ([`Proc::reap`]), so a wait that is dropped while
//! its op completes, or two waits racing, never lose the status.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use io_uring::{opcode, squeue::Entry};

use super::proc::Proc;
use crate::driver::{Op, OpData};
use crate::RuntimeHandle;

/// Set once the kernel rejected `IORING_OP_WAITID` (before Linux 6.7).
static RING_WAITID_UNSUPPORTED: AtomicBool = AtomicBool::new(false);

/// The op's data: the child (its pidfd stays open until the final CQE)
/// and the siginfo the kernel fills.
struct WaitId {
    proc: Arc<Proc>,
    info: Box<SigInfo>,
}

/// A siginfo buffer that may cross threads.
struct SigInfo(libc::siginfo_t);

// SAFETY: siginfo_t is plain data; its pointer fields (`si_addr`, ...) are
// never dereferenced by us, only filled by the kernel.
unsafe impl Send for SigInfo {}

impl OpData for WaitId {
    fn entry(&mut self) -> Entry {
        let (idtype, id) = self.proc.target();
        opcode::WaitId::new(idtype, id, libc::WEXITED | libc::WNOWAIT)
            // Derived from a unique borrow: the kernel writes through it.
            .infop((&raw mut self.info.0).cast_const())
            .build()
    }
}

/// Waits until the child exits, reaps it, returns its status.
pub(crate) async fn wait(proc: &Arc<Proc>) -> io::Result<std::process::ExitStatus> {
    loop {
        if let Some(s) = proc.reap()? {
            return Ok(s);
        }
        match wait_exited(proc).await {
            Ok(()) => {}
            // Reaped behind our back (another waiter won): the next `reap`
            // returns the recorded status, or the error if it was not us.
            Err(e) if e.raw_os_error() == Some(libc::ECHILD) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Resolves once the child has exited (it stays a zombie).
async fn wait_exited(proc: &Arc<Proc>) -> io::Result<()> {
    if let Some(done) = wait_exited_on_ring(proc).await {
        return done;
    }
    if proc.pidfd().is_some() {
        return wait_exited_polling(proc).await;
    }
    wait_exited_blocking(proc).await
}

/// The `IORING_OP_WAITID` wait, for a pidfd or a bare pid; `None` where
/// the kernel lacks the op.
async fn wait_exited_on_ring(proc: &Arc<Proc>) -> Option<io::Result<()>> {
    if RING_WAITID_UNSUPPORTED.load(Ordering::Relaxed) {
        return None;
    }
    let data = WaitId {
        proc: proc.clone(),
        // SAFETY: siginfo_t is plain old data; all-zero is valid.
        info: Box::new(SigInfo(unsafe { std::mem::zeroed() })),
    };
    let (res, _data) = Op::new(data).await;
    let res = match res {
        Ok(cqe) => cqe.result(),
        Err(e) => return Some(Err(e)),
    };
    match res {
        Ok(_) => Some(Ok(())),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EOPNOTSUPP)) => {
            RING_WAITID_UNSUPPORTED.store(true, Ordering::Relaxed);
            None
        }
        Err(e) => Some(Err(e)),
    }
}

/// Reaps a dropped child when it exits, where that holds no thread: with
/// a pidfd (the ring's `WAITID` op or a poll of the pidfd), or with a bare
/// pid where the kernel has the `WAITID` op. A child with neither (a bare
/// pid before Linux 6.7) returns at once, left to the orphans (a blocking
/// wait would hold a pool thread, and the runtime's shutdown, until the
/// child exits). Gives up on any other error.
pub(crate) async fn reap_without_a_thread(proc: &Arc<Proc>) {
    loop {
        if !matches!(proc.reap(), Ok(None)) {
            return;
        }
        let exited = if proc.pidfd().is_some() {
            wait_exited(proc).await
        } else {
            match wait_exited_on_ring(proc).await {
                Some(done) => done,
                None => return,
            }
        };
        match exited {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // Reaped behind our back: the next `reap` says so.
            Err(e) if e.raw_os_error() == Some(libc::ECHILD) => {}
            Err(_) => return,
        }
    }
}

/// A poll of the child's pidfd for `POLLIN` (readable once the child has
/// exited); the pidfd stays open until the final CQE.
struct PidfdPoll {
    proc: Arc<Proc>,
}

impl OpData for PidfdPoll {
    fn entry(&mut self) -> Entry {
        let fd = self
            .proc
            .pidfd()
            .expect("a pidfd poll is made only for a child with a pidfd");
        opcode::PollAdd::new(fd.uring(), libc::POLLIN as u32).build()
    }
}

/// The fallback before Linux 6.7: a ring poll of the pidfd. Like the
/// `WAITID` op, dropping it cancels it; nothing is left behind.
pub(crate) async fn wait_exited_polling(proc: &Arc<Proc>) -> io::Result<()> {
    let (res, _data) = Op::new(PidfdPoll { proc: proc.clone() }).await;
    res?.result().map(drop)
}

/// The last fallback (no pidfd): a blocking `waitid` on the blocking
/// pool. Dropping the future leaves that thread waiting until the child
/// exits.
pub(crate) async fn wait_exited_blocking(proc: &Arc<Proc>) -> io::Result<()> {
    let handle = RuntimeHandle::try_current()
        .ok_or_else(|| io::Error::other("spargio: waiting on a child needs a runtime"))?;
    let proc = proc.clone();
    let job = handle.spawn_blocking(move || {
        let (idtype, id) = proc.target();
        // SAFETY: siginfo_t is plain old data; all-zero is valid.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a valid, writable siginfo_t; `proc` keeps the
        // pidfd open for the whole call.
        let r = unsafe { libc::waitid(idtype, id, &mut info, libc::WEXITED | libc::WNOWAIT) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    });
    job.await.map_err(io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::*;

    // The child is reaped through `Proc`, which clippy cannot see.
    #[allow(clippy::zombie_processes)]
    #[test]
    fn blocking_fallback_waits_and_reaps() {
        let out = crate::run(|_| async {
            let child = std::process::Command::new("sh")
                .args(["-c", "exit 7"])
                .spawn()
                .unwrap();
            let proc = Arc::new(Proc::new(child.id()));
            wait_exited_blocking(&proc).await.unwrap();
            proc.reap().unwrap()
        })
        .unwrap();
        assert_eq!(out.and_then(|s| s.code()), Some(7));
    }

    // The child is reaped through `Proc`, which clippy cannot see.
    #[allow(clippy::zombie_processes)]
    #[test]
    fn pidfd_poll_fallback_waits_and_cancelled_polls_leave_nothing_behind() {
        let status = crate::run(|handle| async move {
            let child = std::process::Command::new("sh")
                .args(["-c", "read _; exit 9"])
                .stdin(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let mut child = child;
            let stdin = child.stdin.take().unwrap();
            let proc = Arc::new(Proc::new(child.id()));
            assert!(proc.pidfd().is_some(), "this kernel has pidfds");
            // Polls given up on while the child runs (a wait under a
            // timeout, in a loop): each is cancelled on the ring.
            for _ in 0..20 {
                let waited = crate::time::timeout(
                    std::time::Duration::from_millis(1),
                    wait_exited_polling(&proc),
                )
                .await;
                assert!(waited.is_err(), "the child exited early");
            }
            drop(stdin);
            wait_exited_polling(&proc).await.unwrap();
            let stats = handle.stats();
            let cancelled: u64 = stats.shards.iter().map(|s| s.ops_cancelled).sum();
            (proc.reap().unwrap(), stats.blocking_threads, cancelled)
        })
        .unwrap();
        let (status, blocking, cancelled) = status;
        assert_eq!(status.and_then(|s| s.code()), Some(9));
        assert_eq!(blocking, 0, "a poll took a blocking thread");
        assert!(
            cancelled >= 20,
            "the given-up polls stayed on the ring: {cancelled}"
        );
    }

    // The child is reaped through `Proc`, which clippy cannot see.
    #[allow(clippy::zombie_processes)]
    #[test]
    fn a_child_known_only_by_its_pid_is_reaped_on_the_ring_once_it_exits() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "read _"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let stdin = child.stdin.take().unwrap();
        let (reaped, blocking) = crate::run(move |handle| async move {
            let proc = Arc::new(Proc::without_pidfd(pid));
            let reaper = handle.spawn(async move {
                reap_without_a_thread(&proc).await;
                proc.status()
            });
            drop(stdin);
            let reaped = crate::time::timeout(std::time::Duration::from_secs(20), reaper)
                .await
                .expect("never reaped")
                .unwrap();
            (reaped, handle.stats().blocking_threads)
        })
        .unwrap();
        if reaped.is_none() && RING_WAITID_UNSUPPORTED.load(Ordering::Relaxed) {
            // A kernel before 6.7: by design nothing reaps it without a
            // thread. Reap it here and skip.
            child.wait().unwrap();
            eprintln!("skipped: this kernel has no IORING_OP_WAITID");
            return;
        }
        assert!(reaped.is_some(), "the reaper gave up");
        assert_eq!(blocking, 0, "the wait took a blocking thread");
        // Reaped: nothing is left for a wait of our own.
        // SAFETY: a plain waitpid on a pid we spawned; no memory passed.
        let r = unsafe { libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), libc::WNOHANG) };
        assert_eq!(r, -1, "the child was left a zombie");
    }
}
