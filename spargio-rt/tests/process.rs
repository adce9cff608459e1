//! `spargio_rt::process`: spawning, output, exit codes, pipes, waiting,
//! killing, cancelled waits.

use futures_util::poll;
use spargio_rt::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use spargio_rt::process::{Command, Stdio};
use spargio_rt::Runtime;
use std::os::unix::process::ExitStatusExt;

fn run<F, Fut, T>(f: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + 'static,
    T: Send + 'static,
{
    spargio_rt::run_with(Runtime::builder().shards(2), move |_| f()).unwrap()
}

#[test]
fn output_collects_stdout_and_success() {
    let out = run(|| async { Command::new("echo").arg("hello").output().await.unwrap() });
    assert!(out.status.success());
    assert_eq!(out.stdout, b"hello\n");
    assert!(out.stderr.is_empty());
}

#[test]
fn exit_code_is_reported() {
    let status = run(|| async {
        Command::new("sh")
            .args(["-c", "exit 3"])
            .status()
            .await
            .unwrap()
    });
    assert_eq!(status.code(), Some(3));
    assert!(!status.success());
}

#[test]
fn status_with_piped_output_does_not_wait_on_a_full_pipe() {
    // Nobody can read a pipe that `status` keeps: it is closed before the
    // wait, so the writer gets EPIPE instead of blocking on a full pipe.
    let status = run(|| async {
        let mut command = Command::new("sh");
        command
            .args(["-c", "head -c 1000000 /dev/zero; exit 7"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        spargio_rt::time::timeout(std::time::Duration::from_secs(60), command.status())
            .await
            .expect("the child blocked on a pipe nobody reads")
            .unwrap()
    });
    assert_eq!(status.code(), Some(7));
}

#[test]
fn output_collects_stderr_and_failure() {
    let out = run(|| async {
        Command::new("sh")
            .args(["-c", "echo out; echo err >&2; exit 1"])
            .output()
            .await
            .unwrap()
    });
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(out.stdout, b"out\n");
    assert_eq!(out.stderr, b"err\n");
}

#[test]
fn env_and_current_dir_reach_the_child() {
    let out = run(|| async {
        Command::new("sh")
            .args(["-c", "echo \"$FOO-${HOME:-none}\"; pwd"])
            .env("FOO", "bar")
            .env_remove("HOME")
            .current_dir("/")
            .output()
            .await
            .unwrap()
    });
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "bar-none\n/\n");

    let out = run(|| async {
        Command::new("/bin/sh")
            .args(["-c", "echo \"${PATH:-empty} $A $B\""])
            .env("X", "1")
            .env_clear()
            .envs([("A", "a"), ("B", "b")])
            .output()
            .await
            .unwrap()
    });
    assert!(String::from_utf8(out.stdout).unwrap().ends_with(" a b\n"));
}

#[test]
fn missing_program_fails_to_spawn() {
    let err = Command::new("/nonexistent/spargio-test-program")
        .spawn()
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
}

#[test]
fn stdin_is_piped_through_cat() {
    let out = run(|| async {
        let mut child = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let (res, _) = stdin.write_all(b"hello ".to_vec()).await;
        res.unwrap();
        let (res, _) = stdin
            .write_vectored_all(vec![b"pi".to_vec(), b"pe".to_vec()])
            .await;
        res.unwrap();
        stdin.shutdown().await.unwrap();
        let (res, _) = stdin.write(b"late".to_vec()).await;
        assert_eq!(res.unwrap_err().kind(), std::io::ErrorKind::BrokenPipe);
        child.wait_with_output().await.unwrap()
    });
    assert!(out.status.success());
    assert_eq!(out.stdout, b"hello pipe");
}

#[test]
fn large_output_streams_through_the_pipe() {
    const N: usize = 4 << 20;
    let (len, zeros) = run(|| async {
        let out = Command::new("head")
            .args(["-c", &N.to_string(), "/dev/zero"])
            .output()
            .await
            .unwrap();
        assert!(out.status.success());
        (out.stdout.len(), out.stdout.iter().all(|&b| b == 0))
    });
    assert_eq!(len, N);
    assert!(zeros);
}

#[test]
fn large_input_and_output_at_once() {
    // 4 MiB in and out of `cat` concurrently: neither side may block the
    // other (the pipe holds only 64 KiB).
    const N: usize = 4 << 20;
    let out = run(|| async {
        let mut child = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let writer = spargio_rt::spawn(async move {
            let data: Vec<u8> = (0..N).map(|i| (i % 251) as u8).collect();
            let (res, _) = stdin.write_all(data).await;
            res.unwrap();
        });
        let mut stdout = child.stdout.take().unwrap();
        let (res, buf) = stdout.read_to_end(Vec::new()).await;
        res.unwrap();
        writer.await.unwrap();
        assert!(child.wait().await.unwrap().success());
        buf
    });
    assert_eq!(out.len(), N);
    assert!(out.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
}

#[test]
fn kill_from_another_task_while_waiting() {
    let status = run(|| async {
        let mut child = Command::new("sleep").arg("1000").spawn().unwrap();
        let killer = child.killer();
        let waiter = spargio_rt::spawn(async move { child.wait().await });
        // Let the waiter's op reach the ring first (correct either way).
        spargio_rt::time::sleep(std::time::Duration::from_millis(20)).await;
        killer.kill().unwrap();
        let status = waiter.await.unwrap().unwrap();
        assert_eq!(killer.status(), Some(status));
        // Killing a reaped child is not an error.
        killer.kill().unwrap();
        status
    });
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert_eq!(status.code(), None);
}

#[test]
fn kill_in_the_same_task_as_the_wait() {
    let status = run(|| async {
        let mut child = Command::new("sleep").arg("1000").spawn().unwrap();
        let killer = child.killer();
        let (status, killed) =
            futures_util::future::join(child.wait(), async move { killer.signal(libc::SIGTERM) })
                .await;
        killed.unwrap();
        status.unwrap()
    });
    assert_eq!(status.signal(), Some(libc::SIGTERM));
}

#[test]
fn try_wait_reports_running_then_the_status() {
    run(|| async {
        let mut child = Command::new("sleep").arg("1000").spawn().unwrap();
        assert_eq!(child.try_wait().unwrap(), None);
        child.kill().unwrap();
        let status = child.wait().await.unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        assert_eq!(child.try_wait().unwrap(), Some(status));
        assert_eq!(child.wait().await.unwrap(), status);
    });
}

#[test]
fn a_dropped_wait_does_not_lose_the_child() {
    run(|| async {
        let mut child = Command::new("sleep").arg("1000").spawn().unwrap();
        {
            let mut w = Box::pin(child.wait());
            assert!(poll!(&mut w).is_pending());
        }
        child.start_kill().unwrap();
        let status = child.wait().await.unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL));
    });
}

#[test]
fn a_wait_dropped_as_the_child_exits_does_not_lose_the_status() {
    // Dropping the wait closes `cat`'s stdin, so the child exits around
    // the time the cancel reaches the ring: whichever wins, the status
    // must still be there for the next wait.
    run(|| async {
        for _ in 0..20 {
            let mut child = Command::new("sh")
                .args(["-c", "cat; exit 4"])
                .stdin(Stdio::piped())
                .spawn()
                .unwrap();
            {
                let mut w = Box::pin(child.wait());
                let _ = poll!(&mut w);
                spargio_rt::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            assert_eq!(child.wait().await.unwrap().code(), Some(4));
        }
    });
}

#[test]
fn many_children_on_stealable_tasks() {
    let codes = run(|| async {
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                spargio_rt::spawn(async move {
                    Command::new("sh")
                        .args(["-c", &format!("exit {i}")])
                        .status()
                        .await
                        .unwrap()
                        .code()
                })
            })
            .collect();
        let mut codes = Vec::new();
        for t in tasks {
            codes.push(t.await.unwrap());
        }
        codes
    });
    assert_eq!(codes, (0..16).map(Some).collect::<Vec<_>>());
}

#[test]
fn child_stdout_is_read_incrementally() {
    let lines = run(|| async {
        let mut child = Command::new("sh")
            .args(["-c", "echo one; echo two"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = child.stdout.take().unwrap();
        let mut buf = Vec::new();
        loop {
            let (res, b) = spargio_rt::io::AsyncRead::read(&mut out, Vec::with_capacity(3)).await;
            let n = res.unwrap();
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&b);
        }
        assert!(child.wait().await.unwrap().success());
        buf
    });
    assert_eq!(lines, b"one\ntwo\n");
}

/// The state letter in `/proc/<pid>/stat` (`Z` for a zombie), or `None`
/// once the pid is gone.
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ...": the state follows the last ')'.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Waits (up to 10 s) until `pid` is neither running as our child nor a
/// zombie.
async fn until_reaped(pid: u32) -> Option<char> {
    for _ in 0..1000 {
        proc_state(pid)?;
        spargio_rt::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    proc_state(pid)
}

#[test]
fn a_dropped_child_is_reaped_when_it_exits() {
    let left = run(|| async {
        let child = Command::new("sleep").arg("0.05").spawn().unwrap();
        let pid = child.id();
        // Still running when dropped: it used to stay a zombie after it
        // exited, until this process exited.
        drop(child);
        until_reaped(pid).await
    });
    assert_eq!(left, None, "the dropped child was left behind");
}

/// Polls (up to 10 s, from a plain thread) until `pid` is a zombie.
fn until_zombie(pid: u32) -> Option<char> {
    for _ in 0..1000 {
        let state = proc_state(pid);
        if matches!(state, None | Some('Z')) {
            return state;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    proc_state(pid)
}

#[test]
fn a_child_dropped_outside_a_runtime_is_reaped_at_the_next_spawn() {
    let rt = Runtime::builder().shards(1).build().unwrap();
    let child = rt.block_on(async { Command::new("sleep").arg("0.05").spawn().unwrap() });
    let pid = child.id();
    // No runtime here to wait for it: it used to stay a zombie until this
    // process exited.
    drop(child);
    // (A sweep by another test running beside this one may reap it first.)
    let state = until_zombie(pid);
    assert!(matches!(state, None | Some('Z')), "{state:?}");
    rt.block_on(async {
        let status = Command::new("true").status().await.unwrap();
        assert!(status.success());
    });
    assert_eq!(proc_state(pid), None, "the orphan was not reaped");
}

#[test]
fn kill_on_drop_kills_and_reaps_the_child() {
    let left = run(|| async {
        let child = Command::new("sleep")
            .arg("30")
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let pid = child.id();
        drop(child);
        until_reaped(pid).await
    });
    assert_eq!(left, None, "the child still runs or is a zombie");
}

#[test]
fn a_child_dropped_by_runtime_shutdown_is_handled_quietly() {
    // A task that owns a running child is dropped when the runtime shuts
    // down; the child's reaper cannot be spawned any more, and that must
    // neither panic nor hang the shutdown.
    let rt = Runtime::builder().shards(2).build().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let _task = rt.handle().spawn(async move {
        let mut child = Command::new("sleep")
            .arg("30")
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        tx.send(child.id()).unwrap();
        child.wait().await
    });
    let pid = rx.recv().unwrap();
    drop(rt);
    // Killed on drop; whoever reaps it (nobody, now) it stops running.
    let mut state = proc_state(pid);
    for _ in 0..500 {
        if matches!(state, None | Some('Z') | Some('X')) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
        state = proc_state(pid);
    }
    assert!(matches!(state, None | Some('Z') | Some('X')), "{state:?}");
}
