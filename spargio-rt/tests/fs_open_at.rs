//! `spargio_rt::fs`: opening relative to a directory handle
//! (`OpenOptions::open_at`, `File::open_dir`) and with `openat2`'s resolve
//! flags (`OpenOptions::resolve`).

use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::Duration;

use spargio_rt::fs::{self, File, OpenOptions, ResolveFlags};

mod common;
use common::{fds_on, unique_temp_path};

/// A fresh directory under the system temp dir, removed on drop, holding
/// `root/` (with `hello.txt` and `sub/inner.txt`) and `outside.txt` next
/// to it.
struct Tree(PathBuf);

impl Tree {
    fn new(name: &str) -> Tree {
        let base = unique_temp_path("open-at", name);
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("root/sub")).unwrap();
        std::fs::write(base.join("root/hello.txt"), "hello").unwrap();
        std::fs::write(base.join("root/sub/inner.txt"), "inner").unwrap();
        std::fs::write(base.join("outside.txt"), "outside").unwrap();
        Tree(base)
    }

    fn root(&self) -> PathBuf {
        self.0.join("root")
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn errno<T: std::fmt::Debug>(r: std::io::Result<T>) -> i32 {
    r.expect_err("expected an error")
        .raw_os_error()
        .expect("an OS error")
}

async fn contents(f: &File) -> String {
    let (res, buf) = f.read_to_end_at(Vec::new(), 0).await;
    res.unwrap();
    String::from_utf8(buf).unwrap()
}

fn reader(resolve: ResolveFlags) -> OpenOptions {
    let mut opts = OpenOptions::new();
    opts.read(true).resolve(resolve);
    opts
}

#[spargio_rt::test]
async fn open_at_is_relative_to_the_directory_handle() {
    let tree = Tree::new("relative");
    let dir = File::open_dir(tree.root()).await.unwrap();
    assert!(dir.metadata().await.unwrap().is_dir());
    // Without resolve flags (openat) and with them (openat2).
    for resolve in [ResolveFlags::empty(), ResolveFlags::BENEATH] {
        let opts = reader(resolve);
        let f = opts.open_at(&dir, "hello.txt").await.unwrap();
        assert_eq!(contents(&f).await, "hello");
        let f = opts.open_at(&dir, "sub/inner.txt").await.unwrap();
        assert_eq!(contents(&f).await, "inner");
        assert_eq!(
            opts.open_at(&dir, "missing").await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }
    // Creating relative to it, with a mode (passed to openat2 only
    // because it creates).
    let mut create = OpenOptions::new();
    create
        .write(true)
        .create_new(true)
        .mode(0o600)
        .resolve(ResolveFlags::BENEATH);
    let f = create.open_at(&dir, "sub/new.txt").await.unwrap();
    let (res, _) = f.write_all_at(b"new".to_vec(), 0).await;
    res.unwrap();
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(tree.root().join("sub/new.txt")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    // Without restrictions an absolute path ignores the directory.
    let outside = tree.0.join("outside.txt");
    let f = reader(ResolveFlags::empty())
        .open_at(&dir, &outside)
        .await
        .unwrap();
    assert_eq!(contents(&f).await, "outside");
    // A directory opened for reading works as the base too.
    let readable = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(tree.root())
        .await
        .unwrap();
    let f = reader(ResolveFlags::BENEATH)
        .open_at(&readable, "hello.txt")
        .await
        .unwrap();
    assert_eq!(contents(&f).await, "hello");
}

#[spargio_rt::test]
async fn open_dir_is_a_path_handle() {
    let tree = Tree::new("handle");
    let dir = File::open_dir(tree.root()).await.unwrap();
    // Not open for I/O.
    let (res, _) = dir.read_at(Vec::with_capacity(8), 0).await;
    assert_eq!(errno(res), libc::EBADF);
    // SAFETY: F_GETFL on an fd `dir` keeps open; fcntl only reads it.
    let flags = unsafe { libc::fcntl(dir.as_raw_fd(), libc::F_GETFL) };
    assert_ne!(flags & libc::O_PATH, 0);
    // Only directories.
    let err = File::open_dir(tree.root().join("hello.txt")).await;
    assert_eq!(err.unwrap_err().kind(), ErrorKind::NotADirectory);
    // A file under it is not a directory to open from.
    let file = File::open(tree.root().join("hello.txt")).await.unwrap();
    let err = reader(ResolveFlags::BENEATH).open_at(&file, "x").await;
    assert_eq!(err.unwrap_err().kind(), ErrorKind::NotADirectory);
}

#[spargio_rt::test]
async fn beneath_refuses_every_way_out() {
    let tree = Tree::new("beneath");
    let root = tree.root();
    let outside = tree.0.join("outside.txt");
    std::os::unix::fs::symlink(&outside, root.join("abs-out")).unwrap();
    std::os::unix::fs::symlink("../outside.txt", root.join("rel-out")).unwrap();
    std::os::unix::fs::symlink("..", root.join("sub/up")).unwrap();
    std::os::unix::fs::symlink("../..", root.join("sub/up-out")).unwrap();
    std::os::unix::fs::symlink(root.join("hello.txt"), root.join("abs-in")).unwrap();
    std::os::unix::fs::symlink("../hello.txt", root.join("sub/rel-in")).unwrap();
    let dir = File::open_dir(&root).await.unwrap();
    let beneath = reader(ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS);
    for (path, why) in [
        ("abs-out", "absolute symlink out"),
        ("rel-out", "relative symlink out"),
        ("sub/up-out/outside.txt", "a `../..` symlink climbing out"),
        ("../outside.txt", "`..` in the path"),
        ("sub/../../outside.txt", "`..` past the root"),
        // Even pointing inside: an absolute symlink starts at `/`.
        ("abs-in", "absolute symlink in"),
    ] {
        assert_eq!(
            errno(beneath.open_at(&dir, path).await),
            libc::EXDEV,
            "{why}"
        );
    }
    assert_eq!(
        errno(beneath.open_at(&dir, outside.to_str().unwrap()).await),
        libc::EXDEV,
        "absolute path"
    );
    // Staying inside is fine, symlinks and `..` included.
    for path in ["sub/rel-in", "sub/../hello.txt", "sub/up/hello.txt"] {
        let f = beneath.open_at(&dir, path).await.unwrap();
        assert_eq!(contents(&f).await, "hello", "{path}");
    }
    // Without the flag, the way out is open.
    let f = reader(ResolveFlags::empty())
        .open_at(&dir, "rel-out")
        .await
        .unwrap();
    assert_eq!(contents(&f).await, "outside");
}

#[spargio_rt::test]
async fn no_symlinks_in_root_and_magic_links() {
    let tree = Tree::new("flags");
    let root = tree.root();
    std::os::unix::fs::symlink("hello.txt", root.join("link")).unwrap();
    std::os::unix::fs::symlink("/hello.txt", root.join("rooted")).unwrap();
    let dir = File::open_dir(&root).await.unwrap();
    let no_symlinks = reader(ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS);
    assert_eq!(errno(no_symlinks.open_at(&dir, "link").await), libc::ELOOP);
    let f = no_symlinks.open_at(&dir, "hello.txt").await.unwrap();
    assert_eq!(contents(&f).await, "hello");
    // IN_ROOT: `/` is the directory, for the path and its symlinks.
    let in_root = reader(ResolveFlags::IN_ROOT);
    let f = in_root.open_at(&dir, "rooted").await.unwrap();
    assert_eq!(contents(&f).await, "hello");
    let f = in_root
        .open_at(&dir, "/sub/../../../hello.txt")
        .await
        .unwrap();
    assert_eq!(contents(&f).await, "hello");
    // The two scopes together are contradictory.
    let both = reader(ResolveFlags::IN_ROOT | ResolveFlags::BENEATH);
    assert_eq!(errno(both.open_at(&dir, "hello.txt").await), libc::EINVAL);
    // `open` (from the cwd) takes resolve flags too: a magic link.
    let magic = format!("/proc/self/fd/{}", dir.as_raw_fd());
    let refuse = reader(ResolveFlags::NO_MAGICLINKS);
    assert_eq!(errno(refuse.open(&magic).await), libc::ELOOP);
    // Relative to the directory, so the lookup never crosses from `/` into
    // a temp directory that is a mount of its own (tmpfs `/tmp`).
    let f = reader(ResolveFlags::NO_XDEV)
        .open_at(&dir, "hello.txt")
        .await
        .unwrap();
    assert_eq!(contents(&f).await, "hello");
}

#[spargio_rt::test]
async fn o_path_takes_the_flags_open_would_ignore() {
    // `openat2` refuses O_PATH with other flags, and a mode without
    // O_CREAT; OpenOptions passes what `open(2)` would act on.
    let tree = Tree::new("o-path");
    let dir = File::open_dir(tree.root()).await.unwrap();
    let mut opts = OpenOptions::new();
    opts.read(true)
        .mode(0o644)
        .custom_flags(libc::O_PATH | libc::O_NONBLOCK | libc::O_NOCTTY)
        .resolve(ResolveFlags::BENEATH);
    let f = opts.open_at(&dir, "hello.txt").await.unwrap();
    let meta = f.metadata().await.unwrap();
    assert!(meta.is_file());
    assert_eq!(meta.len(), 5);
    // An O_PATH handle of a FIFO opens nothing (no reader shows up).
    let fifo = tree.root().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only reads it.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let f = opts.open_at(&dir, "fifo").await.unwrap();
    assert!(f.metadata().await.unwrap().file_type().is_fifo());
}

#[spargio_rt::test]
async fn dropped_open_ats_close_what_they_opened() {
    let tree = Tree::new("cancel");
    let target = std::fs::canonicalize(tree.root().join("hello.txt")).unwrap();
    let opts = reader(ResolveFlags::BENEATH);
    for i in 0..200 {
        // A fresh handle each time, dropped at the end of the iteration,
        // maybe with the open still in flight: the op keeps it open until
        // the kernel is done.
        let dir = File::open_dir(tree.root()).await.unwrap();
        let res =
            spargio_rt::time::timeout(Duration::ZERO, opts.open_at(&dir, "sub/../hello.txt")).await;
        match res {
            // Timed out (dropped in flight): the case under test.
            Err(_) => {}
            // Completed: it worked (a directory fd closed too early would
            // fail it with EBADF, or open through a reused fd).
            Ok(opened) => {
                let f = opened.unwrap_or_else(|e| panic!("open {i} failed: {e}"));
                if i % 50 == 0 {
                    assert_eq!(contents(&f).await, "hello");
                }
            }
        }
    }
    // Every open that completed after its future was dropped had its fd
    // closed. The wait is bounded, and only gives the shard time to reap
    // the cancellations.
    let mut settled = false;
    for _ in 0..500 {
        if fds_on(&target) == 0 {
            settled = true;
            break;
        }
        spargio_rt::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(settled, "{} fds left open on the file", fds_on(&target));
}

#[spargio_rt::test]
async fn open_at_futures_are_send() {
    fn check<T: Send>(_: &T) {}
    let tree = Tree::new("send");
    let dir = File::open_dir(tree.root()).await.unwrap();
    let opts = reader(ResolveFlags::BENEATH);
    let fut = opts.open_at(&dir, "hello.txt");
    check(&fut);
    fut.await.unwrap();
    fs::remove_file(tree.root().join("hello.txt"))
        .await
        .unwrap();
}
