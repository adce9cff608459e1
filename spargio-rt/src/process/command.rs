//! `Command`: a process builder on top of `std::process::Command`.
//!
//! Spawning is `std`'s fork/exec (it reports exec failures), which blocks
//! the calling shard until the child has exec'd (see the module docs);
//! everything after the spawn (waiting, the stdio pipes) goes through the
//! ring.

use std::ffi::OsStr;
use std::io;
use std::path::Path;
use std::process::{ExitStatus, Output};

use super::child::Child;
use super::stdio::Stdio;

/// A process builder, like `std::process::Command`, whose children are
/// waited on and talked to through the runtime.
///
/// ```
/// use spargio_rt::process::Command;
/// spargio_rt::run(|_| async {
///     let out = Command::new("echo").arg("hi").output().await.unwrap();
///     assert!(out.status.success());
///     assert_eq!(out.stdout, b"hi\n");
/// })
/// .unwrap();
/// ```
#[derive(Debug)]
pub struct Command {
    inner: std::process::Command,
    stdin_set: bool,
    stdout_set: bool,
    stderr_set: bool,
    kill_on_drop: bool,
}

impl Command {
    /// A command running `program` (looked up in `PATH` if it has no `/`),
    /// with no arguments, the parent's environment and working directory.
    pub fn new<S: AsRef<OsStr>>(program: S) -> Command {
        Command::from(std::process::Command::new(program))
    }

    /// Adds one argument.
    pub fn arg<S: AsRef<OsStr>>(&mut self, arg: S) -> &mut Command {
        self.inner.arg(arg);
        self
    }

    /// Adds several arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.inner.args(args);
        self
    }

    /// Sets an environment variable for the child.
    pub fn env<K: AsRef<OsStr>, V: AsRef<OsStr>>(&mut self, key: K, val: V) -> &mut Command {
        self.inner.env(key, val);
        self
    }

    /// Sets several environment variables for the child.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Command
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.inner.envs(vars);
        self
    }

    /// Removes an environment variable from the child's environment.
    pub fn env_remove<K: AsRef<OsStr>>(&mut self, key: K) -> &mut Command {
        self.inner.env_remove(key);
        self
    }

    /// Starts the child with an empty environment (plus what `env` adds).
    pub fn env_clear(&mut self) -> &mut Command {
        self.inner.env_clear();
        self
    }

    /// Sets the child's working directory.
    pub fn current_dir<P: AsRef<Path>>(&mut self, dir: P) -> &mut Command {
        self.inner.current_dir(dir);
        self
    }

    /// Sets the child's stdin. Default: inherit for [`spawn`](Self::spawn)
    /// and [`status`](Self::status), null for [`output`](Self::output).
    pub fn stdin<T: Into<Stdio>>(&mut self, cfg: T) -> &mut Command {
        self.inner.stdin(cfg.into().0);
        self.stdin_set = true;
        self
    }

    /// Sets the child's stdout. Default: inherit for [`spawn`](Self::spawn)
    /// and [`status`](Self::status), piped for [`output`](Self::output).
    pub fn stdout<T: Into<Stdio>>(&mut self, cfg: T) -> &mut Command {
        self.inner.stdout(cfg.into().0);
        self.stdout_set = true;
        self
    }

    /// Sets the child's stderr. Default: inherit for [`spawn`](Self::spawn)
    /// and [`status`](Self::status), piped for [`output`](Self::output).
    pub fn stderr<T: Into<Stdio>>(&mut self, cfg: T) -> &mut Command {
        self.inner.stderr(cfg.into().0);
        self.stderr_set = true;
        self
    }

    /// The underlying `std` command (to read its settings).
    pub fn as_std(&self) -> &std::process::Command {
        &self.inner
    }

    /// The underlying `std` command, for settings this type does not wrap
    /// (`uid`, `process_group`, `pre_exec`, ...). Stdio set there counts as
    /// unset here: spawning applies this type's defaults over it.
    pub fn as_std_mut(&mut self) -> &mut std::process::Command {
        &mut self.inner
    }

    /// Whether dropping the [`Child`] (or a cancelled
    /// [`output`](Self::output) / [`status`](Self::status)) sends it
    /// `SIGKILL`. Off by default, as in `std` and `tokio`: the child runs
    /// on, and is reaped in the background when it exits.
    ///
    /// ```
    /// use spargio_rt::process::Command;
    /// use std::time::Duration;
    /// spargio_rt::run(|_| async {
    ///     let mut cmd = Command::new("sleep");
    ///     cmd.arg("30").kill_on_drop(true);
    ///     // Given up on: the child is killed, not left running.
    ///     let out = spargio_rt::time::timeout(Duration::from_millis(10), cmd.output()).await;
    ///     assert!(out.is_err());
    /// })
    /// .unwrap();
    /// ```
    pub fn kill_on_drop(&mut self, kill: bool) -> &mut Command {
        self.kill_on_drop = kill;
        self
    }

    /// Starts the child. Streams left unset are inherited.
    ///
    /// Fails if the program cannot be started (not found, not executable).
    /// Blocks the calling thread until the child has exec'd: a `vfork`,
    /// or a full `fork` where `pre_exec`, `uid` or `gid` are set (see the
    /// [module docs](super)).
    pub fn spawn(&mut self) -> io::Result<Child> {
        self.spawn_with(Stdio::inherit, Stdio::inherit)
    }

    /// Runs the child to completion, collecting its stdout and stderr.
    /// Unset streams: stdin is null, stdout and stderr are piped.
    /// Cancelling it (a `timeout`) leaves the child running unless
    /// [`kill_on_drop`](Self::kill_on_drop) is set; either way it is
    /// reaped when it exits.
    pub async fn output(&mut self) -> io::Result<Output> {
        let child = self.spawn_with(Stdio::null, Stdio::piped)?;
        child.wait_with_output().await
    }

    /// Runs the child to completion and returns its exit status. Streams
    /// left unset are inherited. Streams set to [`Stdio::piped`] are closed
    /// on our side before the wait (nobody could read or write them), so a
    /// child that writes more than a pipe holds gets `EPIPE` instead of
    /// blocking forever.
    pub async fn status(&mut self) -> io::Result<ExitStatus> {
        let mut child = self.spawn()?;
        drop(child.stdin.take());
        drop(child.stdout.take());
        drop(child.stderr.take());
        child.wait().await
    }

    /// Spawns with `input` for an unset stdin and `out` for unset
    /// stdout/stderr (set anew each time, so no default sticks).
    fn spawn_with(&mut self, input: fn() -> Stdio, out: fn() -> Stdio) -> io::Result<Child> {
        if !self.stdin_set {
            self.inner.stdin(input().0);
        }
        if !self.stdout_set {
            self.inner.stdout(out().0);
        }
        if !self.stderr_set {
            self.inner.stderr(out().0);
        }
        // Files this shard dropped are closed for real first (see
        // `submit_ring_closes`).
        crate::shard::local::submit_ring_closes();
        // Children dropped earlier that no task could wait for are reaped
        // now if they have exited.
        super::orphans::sweep();
        let child = self.inner.spawn()?;
        Ok(Child::from_std(child, self.kill_on_drop))
    }
}

impl From<std::process::Command> for Command {
    /// Wraps a configured `std` command. Its stdio settings count as unset
    /// (see [`Command::as_std_mut`]).
    fn from(inner: std::process::Command) -> Self {
        Command {
            inner,
            stdin_set: false,
            stdout_set: false,
            stderr_set: false,
            kill_on_drop: false,
        }
    }
}
