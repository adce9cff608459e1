//! A Unix datagram from an unnamed sender is received even when the
//! process has no file descriptor left to spare. A test binary of its own:
//! it lowers `RLIMIT_NOFILE`, which is process-wide.

use spargio_rt::net::UnixDatagram;
use spargio_rt::Runtime;

/// Holds the process at its file-descriptor limit until dropped: the
/// soft limit lowered to just above the highest open fd, and every free
/// number below it taken.
struct AtFdLimit {
    old: libc::rlimit,
    held: Vec<libc::c_int>,
}

impl AtFdLimit {
    fn new() -> AtFdLimit {
        let highest = std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
            .max()
            .unwrap();
        let mut old = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `old` is a live rlimit for the call to fill.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut old) }, 0);
        let low = libc::rlimit {
            rlim_cur: highest + 1,
            rlim_max: old.rlim_max,
        };
        // SAFETY: `low` is a live rlimit; the soft limit stays within the
        // hard one, which is unchanged.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &low) }, 0);
        let mut held = Vec::new();
        loop {
            // SAFETY: a NUL-terminated path; the fd, if any, is closed on
            // drop.
            let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
            if fd < 0 {
                let e = std::io::Error::last_os_error();
                assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{e}");
                break;
            }
            held.push(fd);
        }
        AtFdLimit { old, held }
    }
}

impl Drop for AtFdLimit {
    fn drop(&mut self) {
        for &fd in &self.held {
            // SAFETY: opened by `new` and closed only here.
            unsafe { libc::close(fd) };
        }
        // SAFETY: restores the limit read in `new`.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &self.old) };
    }
}

#[test]
fn a_datagram_from_an_unnamed_sender_is_received_at_the_fd_limit() {
    let dir = std::env::temp_dir().join(format!("spargio-fdlimit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rx");
    let (res, more) = spargio_rt::run_with(Runtime::builder().shards(1), move |_| async move {
        let rx = UnixDatagram::bind(&path).unwrap();
        let tx = UnixDatagram::unbound().unwrap();
        for msg in [&b"first"[..], b"second"] {
            let (r, _) = tx.send_to(msg.to_vec(), &path).await;
            r.unwrap();
        }
        let limit = AtFdLimit::new();
        // No fd to spare: a new socket fails here.
        let e = std::os::unix::net::UnixDatagram::unbound().unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EMFILE));
        let (r, buf) = rx.recv_from(Vec::with_capacity(16)).await;
        let first = r.map(|(n, from)| (buf[..n].to_vec(), from.is_unnamed()));
        drop(limit);
        // Whatever happened to the first, the second is next.
        let (r, buf) = rx.recv_from(Vec::with_capacity(16)).await;
        let (n, _) = r.unwrap();
        (first, buf[..n].to_vec())
    })
    .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let (bytes, unnamed) = res.expect("the datagram is received, not lost to EMFILE");
    assert_eq!(bytes, b"first");
    assert!(unnamed);
    assert_eq!(more, b"second");
}
