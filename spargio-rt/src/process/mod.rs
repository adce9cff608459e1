//! Child processes, waited on and talked to through the ring.
//!
//! [`Command`] spawns with `std`'s fork/exec, which blocks the calling
//! thread (the shard, with every task on it) until the child has exec'd:
//! a `vfork` for plain commands, a full `fork` (slower the more memory
//! this process maps) with `pre_exec`, `uid`, `gid` and the like. Spawn a
//! heavy fork from `spawn_blocking`, or accept the stall. After that
//! everything is asynchronous:
//!
//! - **Waiting** ([`Child::wait`]) is an `IORING_OP_WAITID` on the child's
//!   pidfd (`pidfd_open`), with `WNOWAIT`: the op only learns that the
//!   child exited; the reap is a non-blocking `waitid` under the child's
//!   lock, which records the status once. So a wait dropped mid-flight,
//!   or two racing waits, never lose the status, and waiting again works.
//!   On kernels without the op (before 6.7) the wait is a ring poll of
//!   the pidfd (readable once the child exits). Only without a pidfd
//!   (`pidfd_open` missing, before 5.3, or failing at the fd limit) on a
//!   kernel without the op does it run on the blocking pool, with the
//!   pid: each such wait holds a pool thread until the child exits, even
//!   if the wait is dropped.
//! - **Killing** ([`Child::kill`], [`ChildKiller`]) is a synchronous
//!   `pidfd_send_signal`; it never waits for, or blocks, a wait in flight.
//!   `wait` takes `&mut self`, so kill from elsewhere with a
//!   [`ChildKiller`] taken beforehand.
//! - **Pipes** ([`ChildStdin`], [`ChildStdout`], [`ChildStderr`]) implement
//!   the owned-buffer [`AsyncWrite`](crate::io::AsyncWrite) /
//!   [`AsyncRead`](crate::io::AsyncRead); each read and write is a ring op.
//!   A write to a child that closed its stdin fails with `BrokenPipe`, and
//!   the kernel raises `SIGPIPE` too: harmless in a Rust program (its
//!   runtime ignores `SIGPIPE`), fatal where it is left at its default.
//! - **A child reaped by someone else** (`SIGCHLD` set to `SIG_IGN`, a
//!   library calling `waitpid(-1)`) is not signalled afterwards (its pid
//!   may name another process by then) once that shows: at once with a
//!   pidfd (checked when it is taken), after a reap finds it gone without
//!   one; waiting for it fails with `ECHILD`. (One race is left: a child
//!   reaped elsewhere between the fork and `pidfd_open` whose pid was
//!   already reused by another child of this process. And a child without
//!   a pidfd, because `pidfd_open` failed (out of file descriptors), is
//!   waited for by its bare pid: if it was reaped elsewhere and its pid
//!   reused by another child of this process, the wait reaps that child
//!   and reports its status, and the other child's owner gets `ECHILD`.)
//! - **Dropping** a [`Child`] does not kill the process (as with `std`)
//!   unless [`Command::kill_on_drop`] is set; a child still running is
//!   reaped by a task on the runtime when it exits, never left a zombie.
//!   Where no task can wait for it (dropped outside a runtime, a runtime
//!   that shut down first, or a child without a pidfd on a kernel older
//!   than 6.7, which only a blocking thread could wait for), it is reaped
//!   once it has exited at the next spawn or `Child` drop in the process.
//!
//! ```
//! use spargio_rt::io::{AsyncReadExt, AsyncWriteExt};
//! use spargio_rt::process::{Command, Stdio};
//!
//! spargio_rt::run(|_| async {
//!     let mut child = Command::new("cat")
//!         .stdin(Stdio::piped())
//!         .stdout(Stdio::piped())
//!         .spawn()
//!         .unwrap();
//!     let mut stdin = child.stdin.take().unwrap();
//!     let (res, _) = stdin.write_all(b"ping".to_vec()).await;
//!     res.unwrap();
//!     drop(stdin);
//!     let mut stdout = child.stdout.take().unwrap();
//!     let (res, out) = stdout.read_to_end(Vec::new()).await;
//!     res.unwrap();
//!     assert_eq!(out, b"ping");
//!     assert!(child.wait().await.unwrap().success());
//! })
//! .unwrap();
//! ```

mod child;
mod command;
mod orphans;
mod pipe;
mod proc;
mod stdio;
mod wait;

pub use child::{Child, ChildKiller};
pub use command::Command;
pub use pipe::{ChildStderr, ChildStdin, ChildStdout};
pub use std::process::{ExitStatus, Output};
pub use stdio::Stdio;
