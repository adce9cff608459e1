//! Tests of what [`ServeDir`] must never do, however the tree under its
//! root changes while it serves: leave the root through a symlink swapped
//! in mid-request, or open something that is not a regular file or a
//! directory.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use http::StatusCode;

use super::tests::{call, get, site};
use super::ServeDir;

fn cpath(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap()
}

/// Swaps the names `a` and `b` atomically (`renameat2` with
/// `RENAME_EXCHANGE`): at every instant each name exists.
fn exchange(a: &CString, b: &CString) -> io::Result<()> {
    // SAFETY: both are valid NUL-terminated paths that outlive the call;
    // renameat2 only reads them.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A directory under the root is swapped, over and over, with a symlink
/// to a directory outside it holding a file of the same name. Whatever
/// instant each request lands on, it must get the inside file or `404`,
/// never the outside one.
///
/// On the old code (check each component, then open the checked path by
/// name again) this failed only when a swap fell between the check and
/// the open: probabilistic, though with this many requests it failed on
/// most runs. The kernel now resolves the path itself, refusing to leave
/// the root (`openat2` with `RESOLVE_BENEATH`), so no interleaving can
/// escape: the assertion holds on every run.
#[spargio_rt::test]
async fn fs_directory_swapped_for_an_outside_symlink_never_escapes() {
    const REQUESTS: usize = 5000;
    let site = site();
    let outside = site.base.join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("secret"), "outside secret").unwrap();
    let dir = site.root.join("d");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("secret"), "inside").unwrap();
    let link = site.root.join("d-swap");
    std::os::unix::fs::symlink(&outside, &link).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let stop = stop.clone();
        let (dir, link) = (cpath(&dir), cpath(&link));
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                exchange(&dir, &link).unwrap();
                swaps += 1;
            }
            swaps
        })
    };

    let mut svc = ServeDir::new(&site.root);
    let (mut inside, mut not_found) = (0, 0);
    let mut escaped = 0;
    for _ in 0..REQUESTS {
        let (res, body) = call(&mut svc, get("/d/secret")).await;
        match res.status {
            StatusCode::OK if body == "inside" => inside += 1,
            StatusCode::OK if body == "outside secret" => escaped += 1,
            StatusCode::NOT_FOUND => not_found += 1,
            other => panic!("unexpected {other} with body {body:?}"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    assert_eq!(
        escaped, 0,
        "served the file outside the root {escaped} times \
         ({inside} inside, {not_found} not found, {swaps} swaps)"
    );
    assert_eq!(inside + not_found, REQUESTS);
}

/// The system call a thread of this process is blocked in, from
/// `/proc/self/task/<tid>/syscall` (`None` if it is running or the file
/// cannot be read).
fn blocked_syscall(tid: libc::pid_t) -> Option<libc::c_long> {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

fn is_open_syscall(nr: libc::c_long) -> bool {
    #[cfg(target_arch = "x86_64")]
    if nr == libc::SYS_open {
        return true;
    }
    nr == libc::SYS_openat || nr == libc::SYS_openat2
}

/// Opening a FIFO for reading releases a writer blocked opening it for
/// writing, so a request for one must not open it, not even to find out
/// that it is not a regular file. (Failed on the old code, which opened
/// first and looked at the type after; the window below is only how long
/// the test waits for a writer that the old code did release to run.)
#[spargio_rt::test]
async fn fs_fifo_is_refused_without_being_opened() {
    let site = site();
    let fifo = site.root.join("fifo");
    // SAFETY: a valid NUL-terminated path; mkfifo only reads it.
    assert_eq!(unsafe { libc::mkfifo(cpath(&fifo).as_ptr(), 0o644) }, 0);

    let returned = Arc::new(AtomicBool::new(false));
    let (tid_tx, tid_rx) = mpsc::channel();
    let writer = {
        let (fifo, returned) = (fifo.clone(), returned.clone());
        std::thread::spawn(move || {
            // SAFETY: gettid has no preconditions and cannot fail.
            tid_tx.send(unsafe { libc::gettid() }).unwrap();
            // Blocks until someone opens the FIFO for reading.
            let file = std::fs::OpenOptions::new().write(true).open(&fifo);
            returned.store(true, Ordering::SeqCst);
            file.map(drop)
        })
    };
    let tid = tid_rx.recv().unwrap();
    // Wait (bounded) until the writer is really blocked in its open, so
    // that an open by the service would be what releases it.
    let mut blocked = false;
    for _ in 0..1000 {
        if blocked_syscall(tid).is_some_and(is_open_syscall) {
            blocked = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(blocked, "the writer never blocked opening the FIFO");

    let mut svc = ServeDir::new(&site.root);
    let (res, body) = call(&mut svc, get("/fifo")).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert!(body.is_empty());
    // A writer released by the request would return at once; give it
    // some time to show up before concluding it was not.
    for _ in 0..50 {
        if returned.load(Ordering::SeqCst) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        !returned.load(Ordering::SeqCst),
        "serving the FIFO opened it and released the writer"
    );
    assert!(blocked_syscall(tid).is_some_and(is_open_syscall));

    // Release the writer ourselves so the thread ends (non-blocking: the
    // writer is already there, and this must not wait for it anyway).
    let reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    writer.join().unwrap().unwrap();
    drop(reader);
}
