//! `spargio_rt::fs`: files, directories and path functions, their errors,
//! cancellation of in-flight ops, and use from `Runtime::block_on`.

use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use spargio_rt::fs::{self, DirBuilder, File, OpenOptions};
use spargio_rt::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt, IoBuf};
use spargio_rt::{Runtime, RuntimeHandle};

mod common;
use common::{fds_on, unique_temp_path};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = unique_temp_path("fs", name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Bytes that differ at every position, so misplaced reads show.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn kind<T: std::fmt::Debug>(r: std::io::Result<T>) -> ErrorKind {
    r.expect_err("expected an error").kind()
}

#[spargio_rt::test]
async fn write_then_read_whole_files() {
    let dir = TempDir::new("whole");
    let p = dir.join("a.txt");
    fs::write(&p, "hello, ring").await.unwrap();
    assert_eq!(fs::read(&p).await.unwrap(), b"hello, ring");
    assert_eq!(fs::read_to_string(&p).await.unwrap(), "hello, ring");
    // write truncates
    fs::write(&p, b"hi").await.unwrap();
    assert_eq!(fs::read_to_string(&p).await.unwrap(), "hi");
    // empty file
    fs::write(&p, []).await.unwrap();
    assert!(fs::read(&p).await.unwrap().is_empty());
    // not UTF-8
    fs::write(&p, [0xff, 0xfe, 0x00]).await.unwrap();
    assert_eq!(kind(fs::read_to_string(&p).await), ErrorKind::InvalidData);
    // a file that has no size in statx still reads fully
    let status = fs::read_to_string("/proc/self/status").await.unwrap();
    assert!(status.contains("Pid:"));
    // agrees with std
    assert_eq!(std::fs::read(&p).unwrap(), [0xff, 0xfe, 0x00]);
}

#[spargio_rt::test]
async fn missing_paths_are_not_found() {
    let dir = TempDir::new("missing");
    let p = dir.join("nope");
    let q = dir.join("other");
    assert_eq!(kind(File::open(&p).await), ErrorKind::NotFound);
    assert_eq!(kind(fs::read(&p).await), ErrorKind::NotFound);
    assert_eq!(kind(fs::read_to_string(&p).await), ErrorKind::NotFound);
    assert_eq!(kind(fs::metadata(&p).await), ErrorKind::NotFound);
    assert_eq!(kind(fs::symlink_metadata(&p).await), ErrorKind::NotFound);
    assert_eq!(kind(fs::remove_file(&p).await), ErrorKind::NotFound);
    assert_eq!(kind(fs::remove_dir(&p).await), ErrorKind::NotFound);
    assert_eq!(kind(fs::remove_dir_all(&p).await), ErrorKind::NotFound);
    assert_eq!(kind(fs::rename(&p, &q).await), ErrorKind::NotFound);
    assert_eq!(kind(fs::hard_link(&p, &q).await), ErrorKind::NotFound);
    assert_eq!(kind(fs::copy(&p, &q).await), ErrorKind::NotFound);
    assert_eq!(kind(fs::canonicalize(&p).await), ErrorKind::NotFound);
    assert_eq!(kind(fs::read_link(&p).await), ErrorKind::NotFound);
    assert_eq!(kind(fs::read_dir(&p).await), ErrorKind::NotFound);
    let perm = std::fs::Permissions::from_mode(0o644);
    assert_eq!(
        kind(fs::set_permissions(&p, perm).await),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(fs::create_dir(dir.join("a/b")).await),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(fs::write(dir.join("no/such/file"), b"x").await),
        ErrorKind::NotFound
    );
    assert!(!fs::try_exists(&p).await.unwrap());
    assert!(fs::try_exists(dir.path()).await.unwrap());
    // nothing was created along the way
    assert!(!q.exists());
}

#[spargio_rt::test]
async fn interior_nul_is_invalid_input() {
    let bad = Path::new("a\0b");
    assert_eq!(kind(File::open(bad).await), ErrorKind::InvalidInput);
    assert_eq!(kind(File::create(bad).await), ErrorKind::InvalidInput);
    assert_eq!(kind(fs::read(bad).await), ErrorKind::InvalidInput);
    assert_eq!(kind(fs::write(bad, b"x").await), ErrorKind::InvalidInput);
    assert_eq!(kind(fs::metadata(bad).await), ErrorKind::InvalidInput);
    assert_eq!(
        kind(fs::symlink_metadata(bad).await),
        ErrorKind::InvalidInput
    );
    assert_eq!(kind(fs::create_dir(bad).await), ErrorKind::InvalidInput);
    assert_eq!(kind(fs::create_dir_all(bad).await), ErrorKind::InvalidInput);
    assert_eq!(kind(fs::remove_file(bad).await), ErrorKind::InvalidInput);
    assert_eq!(kind(fs::remove_dir(bad).await), ErrorKind::InvalidInput);
    assert_eq!(kind(fs::rename(bad, "x").await), ErrorKind::InvalidInput);
    assert_eq!(kind(fs::rename("x", bad).await), ErrorKind::InvalidInput);
    assert_eq!(kind(fs::hard_link(bad, "x").await), ErrorKind::InvalidInput);
    assert_eq!(kind(fs::symlink("x", bad).await), ErrorKind::InvalidInput);
    assert_eq!(kind(fs::canonicalize(bad).await), ErrorKind::InvalidInput);
    assert_eq!(kind(fs::read_dir(bad).await), ErrorKind::InvalidInput);
}

#[spargio_rt::test]
async fn positional_reads_and_writes() {
    let dir = TempDir::new("positional");
    let p = dir.join("f");
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&p)
        .await
        .unwrap();
    let (res, buf) = f.write_at(b"0123456789".to_vec(), 0).await;
    assert_eq!(res.unwrap(), 10);
    assert_eq!(buf, b"0123456789");
    let (res, _) = f.write_all_at(b"abc".to_vec(), 4).await;
    res.unwrap();
    // read_at fills from the buffer's start up to its capacity
    let (res, buf) = f.read_at(Vec::with_capacity(4), 3).await;
    assert_eq!(res.unwrap(), 4);
    assert_eq!(buf, b"3abc");
    // into a slice of spare capacity: appends
    let mut v = Vec::with_capacity(6);
    v.extend_from_slice(b">>");
    let (res, s) = f.read_at(v.slice(2..), 7).await;
    assert_eq!(res.unwrap(), 3);
    assert_eq!(s.into_inner(), b">>789");
    // at and past end of file
    let (res, _) = f.read_at(vec![0u8; 4], 10).await;
    assert_eq!(res.unwrap(), 0);
    let (res, _) = f.read_at(vec![0u8; 4], 1 << 40).await;
    assert_eq!(res.unwrap(), 0);
    // read_exact_at
    let (res, buf) = f.read_exact_at(Vec::with_capacity(10), 0).await;
    res.unwrap();
    assert_eq!(buf, b"0123abc789");
    // read_exact_at across EOF: UnexpectedEof with what was there
    let (res, buf) = f.read_exact_at(Vec::with_capacity(8), 6).await;
    assert_eq!(kind(res), ErrorKind::UnexpectedEof);
    assert_eq!(buf, b"c789");
    // offsets the kernel cannot take are refused, not taken as "current"
    let (res, _) = f.read_at(vec![0u8; 1], u64::MAX).await;
    assert_eq!(kind(res), ErrorKind::InvalidInput);
    let (res, _) = f.write_at(b"x".to_vec(), u64::MAX).await;
    assert_eq!(kind(res), ErrorKind::InvalidInput);
    // an empty buffer reads nothing
    let (res, _) = f.read_exact_at(Vec::new(), 0).await;
    res.unwrap();
    let (res, _) = f.write_all_at(Vec::new(), 0).await;
    res.unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), b"0123abc789");
}

#[spargio_rt::test]
async fn large_file_round_trip() {
    const LEN: usize = 8 << 20;
    let dir = TempDir::new("large");
    let p = dir.join("big");
    let data = pattern(LEN);
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&p)
        .await
        .unwrap();
    let (res, data) = f.write_all_at(data, 0).await;
    res.unwrap();
    // write a second copy behind the first, from a slice of the buffer
    let (res, s) = f.write_all_at(data.slice(LEN / 2..), LEN as u64).await;
    res.unwrap();
    let data = s.into_inner();
    f.sync_all().await.unwrap();
    assert_eq!(f.metadata().await.unwrap().len(), (LEN + LEN / 2) as u64);
    let (res, back) = f.read_exact_at(Vec::with_capacity(LEN), 0).await;
    res.unwrap();
    assert!(back == data, "first copy differs");
    let (res, tail) = f
        .read_exact_at(vec![0u8; LEN / 2].into_boxed_slice(), LEN as u64)
        .await;
    res.unwrap();
    assert!(tail[..] == data[LEN / 2..], "second copy differs");
    let whole = fs::read(&p).await.unwrap();
    assert_eq!(whole.len(), LEN + LEN / 2);
    assert!(whole[..LEN] == data[..]);
    let (res, all) = f.read_to_end_at(Vec::new(), 0).await;
    assert_eq!(res.unwrap(), LEN + LEN / 2);
    assert!(all == whole);
}

#[spargio_rt::test]
async fn write_vectored_all_to_a_file_takes_more_buffers_than_one_writev() {
    let dir = TempDir::new("many-iovecs");
    let p = dir.join("v");
    let bufs: Vec<Vec<u8>> = (0..2500)
        .map(|i| vec![(i % 253) as u8; 1 + i % 7])
        .collect();
    let want = bufs.concat();
    let mut f = File::create(&p).await.unwrap();
    let (res, back) = f.write_vectored_all(bufs).await;
    res.unwrap();
    assert_eq!(back.len(), 2500);
    drop(f);
    assert_eq!(std::fs::read(&p).unwrap(), want);
}

#[spargio_rt::test]
async fn current_position_streams_and_append() {
    let dir = TempDir::new("stream");
    let p = dir.join("s");
    let mut f = File::create(&p).await.unwrap();
    let (res, _) = f.write_all(b"hello ".to_vec()).await;
    res.unwrap();
    let (res, _) = f
        .write_vectored_all(vec![b"wor".to_vec(), b"ld".to_vec()])
        .await;
    res.unwrap();
    f.flush().await.unwrap();
    f.shutdown().await.unwrap();
    f.sync_data().await.unwrap();
    drop(f);
    assert_eq!(std::fs::read(&p).unwrap(), b"hello world");

    // AsyncRead at the current position: consecutive reads move on
    let mut f = File::open(&p).await.unwrap();
    let (res, head) = f.read_exact(Vec::with_capacity(6)).await;
    res.unwrap();
    assert_eq!(head, b"hello ");
    // File::read_to_end continues from the current position
    let (res, rest) = f.read_to_end(b"[".to_vec()).await;
    assert_eq!(res.unwrap(), 5);
    assert_eq!(rest, b"[world");
    let (res, none) = f.read_to_end(Vec::new()).await;
    assert_eq!(res.unwrap(), 0);
    assert!(none.is_empty());
    // positional reads do not move the position
    let (res, all) = f.read_to_end_at(Vec::new(), 0).await;
    assert_eq!(res.unwrap(), 11);
    assert_eq!(all, b"hello world");
    let (res, _) = AsyncReadExt::read_to_end(&mut f, Vec::new()).await;
    assert_eq!(res.unwrap(), 0);

    // append: writes go to the end whatever the position
    let mut a = OpenOptions::new().append(true).open(&p).await.unwrap();
    let (res, _) = a.write_all(b"!".to_vec()).await;
    res.unwrap();
    assert_eq!(fs::read(&p).await.unwrap(), b"hello world!");
}

#[spargio_rt::test]
async fn open_options_rules() {
    let dir = TempDir::new("options");
    let p = dir.join("o");
    // nothing set / create without write / truncate with append
    assert_eq!(
        kind(OpenOptions::new().open(&p).await),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        kind(OpenOptions::new().read(true).create(true).open(&p).await),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        kind(
            OpenOptions::new()
                .append(true)
                .truncate(true)
                .open(&p)
                .await
        ),
        ErrorKind::InvalidInput
    );
    // without create, a missing file stays missing
    assert_eq!(
        kind(OpenOptions::new().write(true).open(&p).await),
        ErrorKind::NotFound
    );
    // create_new, then AlreadyExists
    let f = File::create_new(&p).await.unwrap();
    let (res, _) = f.write_all_at(b"abcdef".to_vec(), 0).await;
    res.unwrap();
    assert_eq!(kind(File::create_new(&p).await), ErrorKind::AlreadyExists);
    assert_eq!(
        kind(
            File::options()
                .write(true)
                .create(true)
                .create_new(true)
                .open(&p)
                .await
        ),
        ErrorKind::AlreadyExists
    );
    // write without truncate keeps the rest
    let f = OpenOptions::new().write(true).open(&p).await.unwrap();
    let (res, _) = f.write_all_at(b"XY".to_vec(), 0).await;
    res.unwrap();
    assert_eq!(fs::read(&p).await.unwrap(), b"XYcdef");
    // truncate
    OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&p)
        .await
        .unwrap();
    assert_eq!(fs::metadata(&p).await.unwrap().len(), 0);
    // mode of a new file (the umask may only clear bits)
    let m = dir.join("moded");
    OpenOptions::new()
        .write(true)
        .create(true)
        .mode(0o600)
        .open(&m)
        .await
        .unwrap();
    assert_eq!(
        fs::metadata(&m).await.unwrap().permissions().mode() & 0o777,
        0o600
    );
    // custom flags: O_NOFOLLOW on a symlink is ELOOP
    let l = dir.join("link");
    fs::symlink(&m, &l).await.unwrap();
    let e = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&l)
        .await
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
    // O_CLOEXEC is always set
    let f = File::open(&m).await.unwrap();
    // SAFETY: F_GETFD on an fd we own has no other effect.
    let fd_flags = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETFD) };
    assert!(fd_flags & libc::FD_CLOEXEC != 0);
}

#[spargio_rt::test]
async fn permission_and_kind_errors() {
    let dir = TempDir::new("perm");
    let p = dir.join("secret");
    fs::write(&p, b"x").await.unwrap();
    fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000))
        .await
        .unwrap();
    assert_eq!(
        fs::metadata(&p).await.unwrap().permissions().mode() & 0o777,
        0
    );
    if !is_root() {
        // root bypasses permission bits (CAP_DAC_OVERRIDE), so this check
        // only holds for other users; the checks below hold for everyone.
        assert_eq!(kind(File::open(&p).await), ErrorKind::PermissionDenied);
    }
    // a directory cannot be opened for writing: EISDIR
    let e = OpenOptions::new()
        .write(true)
        .open(dir.path())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::IsADirectory);
    // writing through a read-only fd: EBADF
    let q = dir.join("plain");
    fs::write(&q, b"data").await.unwrap();
    let ro = File::open(&q).await.unwrap();
    let (res, _) = ro.write_at(b"y".to_vec(), 0).await;
    assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::EBADF));
    // and reading through a write-only fd
    let wo = OpenOptions::new().write(true).open(&q).await.unwrap();
    let (res, _) = wo.read_at(vec![0u8; 4], 0).await;
    assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::EBADF));
    // set_len needs a writable fd
    assert!(ro.set_len(0).await.is_err());
    assert_eq!(fs::read(&q).await.unwrap(), b"data");
    // through a regular file: ENOTDIR
    let under = q.join("child");
    assert_eq!(kind(fs::metadata(&under).await), ErrorKind::NotADirectory);
    assert_eq!(kind(File::open(&under).await), ErrorKind::NotADirectory);
    assert_eq!(kind(fs::create_dir(&under).await), ErrorKind::NotADirectory);
    assert_eq!(
        kind(fs::create_dir_all(&under).await),
        ErrorKind::NotADirectory
    );
    assert_eq!(kind(fs::read_dir(&q).await), ErrorKind::NotADirectory);
    assert_eq!(kind(fs::remove_dir(&q).await), ErrorKind::NotADirectory);
    // a directory is not a file
    assert_eq!(
        kind(fs::remove_file(dir.path()).await),
        ErrorKind::IsADirectory
    );
    assert_eq!(kind(fs::read(dir.path()).await), ErrorKind::IsADirectory);
    assert_eq!(
        kind(fs::copy(dir.path(), dir.join("c")).await),
        ErrorKind::InvalidInput
    );
}

#[spargio_rt::test]
async fn file_metadata_set_len_and_fallocate() {
    let dir = TempDir::new("meta");
    let p = dir.join("m");
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .open(&p)
        .await
        .unwrap();
    let (res, _) = f.write_all_at(pattern(1000), 0).await;
    res.unwrap();
    f.sync_data().await.unwrap();
    let m = f.metadata().await.unwrap();
    let s = std::fs::metadata(&p).unwrap();
    assert!(m.is_file() && !m.is_dir() && !m.is_symlink());
    assert!(m.file_type().is_file());
    assert_eq!(m.len(), 1000);
    assert_eq!(m.ino(), s.ino());
    assert_eq!(m.dev(), s.dev());
    assert_eq!(m.nlink(), 1);
    assert_eq!(m.uid(), s.uid());
    assert_eq!(m.gid(), s.gid());
    assert_eq!(m.mode(), s.mode());
    assert_eq!(m.permissions(), s.permissions());
    assert_eq!(m.modified().unwrap(), s.modified().unwrap());
    assert_eq!(m.accessed().unwrap(), s.accessed().unwrap());
    match (m.created(), s.created()) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(e), _) => assert_eq!(e.kind(), ErrorKind::Unsupported),
        (Ok(_), Err(_)) => panic!("statx gave a birth time std did not"),
    }
    assert!(m.blksize() > 0);
    assert!(format!("{m:?}").contains("len: 1000"));
    // path metadata agrees with fd metadata
    let pm = fs::metadata(&p).await.unwrap();
    assert_eq!((pm.ino(), pm.len()), (m.ino(), m.len()));

    // set_len: shrink, then extend with zeros
    f.set_len(10).await.unwrap();
    assert_eq!(f.metadata().await.unwrap().len(), 10);
    f.set_len(20).await.unwrap();
    let (res, buf) = f.read_exact_at(Vec::with_capacity(20), 0).await;
    res.unwrap();
    assert_eq!(&buf[..10], &pattern(10)[..]);
    assert_eq!(&buf[10..], &[0u8; 10]);
    assert_eq!(kind(f.set_len(u64::MAX).await), ErrorKind::InvalidInput);

    // fallocate: grows the file, or only the allocation with KEEP_SIZE
    f.fallocate(0, 4096, 0).await.unwrap();
    assert_eq!(f.metadata().await.unwrap().len(), 4096);
    f.fallocate(4096, 4096, libc::FALLOC_FL_KEEP_SIZE)
        .await
        .unwrap();
    let m = f.metadata().await.unwrap();
    assert_eq!(m.len(), 4096);
    assert!(m.blocks() * 512 >= 8192);
    assert_eq!(
        f.fallocate(0, 0, 0).await.unwrap_err().raw_os_error(),
        Some(libc::EINVAL)
    );
    // the data survived
    let (res, buf) = f.read_exact_at(Vec::with_capacity(10), 0).await;
    res.unwrap();
    assert_eq!(buf, pattern(10));

    // File::set_permissions
    f.set_permissions(std::fs::Permissions::from_mode(0o640))
        .await
        .unwrap();
    assert_eq!(
        f.metadata().await.unwrap().permissions().mode() & 0o777,
        0o640
    );
}

#[spargio_rt::test]
async fn directories() {
    let dir = TempDir::new("dirs");
    let a = dir.join("a");
    fs::create_dir(&a).await.unwrap();
    assert!(fs::metadata(&a).await.unwrap().is_dir());
    assert_eq!(kind(fs::create_dir(&a).await), ErrorKind::AlreadyExists);
    // create_dir_all: existing is fine, missing parents are made
    fs::create_dir_all(&a).await.unwrap();
    let deep = dir.join("x/y/z");
    fs::create_dir_all(&deep).await.unwrap();
    assert!(fs::metadata(&deep).await.unwrap().is_dir());
    fs::create_dir_all(dir.join("x/y/z/")).await.unwrap();
    // over a file: AlreadyExists
    let f = dir.join("file");
    fs::write(&f, b"").await.unwrap();
    assert_eq!(kind(fs::create_dir_all(&f).await), ErrorKind::AlreadyExists);
    // concurrent create_dir_all of overlapping trees all succeed
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let p = dir.join(&format!("c/d/e{}", i % 2));
            spargio_rt::spawn(async move { fs::create_dir_all(p).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert!(dir.join("c/d/e1").is_dir());
    // DirBuilder with a mode
    let m = dir.join("moded/inner");
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&m)
        .await
        .unwrap();
    assert_eq!(
        fs::metadata(&m).await.unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert_eq!(
        kind(DirBuilder::new().create(dir.join("q/r")).await),
        ErrorKind::NotFound
    );
    // remove_dir: only empty directories
    assert_eq!(
        kind(fs::remove_dir(dir.join("x")).await),
        ErrorKind::DirectoryNotEmpty
    );
    fs::remove_dir(&deep).await.unwrap();
    assert!(!deep.exists());
    // remove_dir_all takes the rest
    fs::write(dir.join("x/y/leaf"), b"1").await.unwrap();
    fs::remove_dir_all(dir.join("x")).await.unwrap();
    assert!(!fs::try_exists(dir.join("x")).await.unwrap());
}

#[spargio_rt::test]
async fn links_renames_and_paths() {
    let dir = TempDir::new("links");
    let a = dir.join("a");
    let b = dir.join("b");
    fs::write(&a, b"payload").await.unwrap();
    // rename moves, and replaces an existing target
    fs::rename(&a, &b).await.unwrap();
    assert!(!fs::try_exists(&a).await.unwrap());
    fs::write(&a, b"newer").await.unwrap();
    fs::rename(&a, &b).await.unwrap();
    assert_eq!(fs::read(&b).await.unwrap(), b"newer");
    // hard link: same inode, two links; AlreadyExists over an existing name
    let h = dir.join("h");
    fs::hard_link(&b, &h).await.unwrap();
    let (mb, mh) = (
        fs::metadata(&b).await.unwrap(),
        fs::metadata(&h).await.unwrap(),
    );
    assert_eq!(mb.ino(), mh.ino());
    assert_eq!(mb.nlink(), 2);
    assert_eq!(kind(fs::hard_link(&b, &h).await), ErrorKind::AlreadyExists);
    // symlink: metadata follows it, symlink_metadata does not
    let s = dir.join("s");
    fs::symlink("b", &s).await.unwrap();
    assert!(fs::metadata(&s).await.unwrap().is_file());
    let sm = fs::symlink_metadata(&s).await.unwrap();
    assert!(sm.is_symlink() && sm.file_type().is_symlink() && !sm.is_file());
    assert_eq!(fs::read_link(&s).await.unwrap(), Path::new("b"));
    assert_eq!(kind(fs::read_link(&b).await), ErrorKind::InvalidInput);
    assert_eq!(kind(fs::symlink("b", &s).await), ErrorKind::AlreadyExists);
    assert_eq!(fs::read(&s).await.unwrap(), b"newer");
    // canonicalize resolves the link and the `..`
    let messy = dir.join("s/../s");
    assert_eq!(
        kind(fs::canonicalize(&messy).await),
        ErrorKind::NotADirectory
    );
    let canon = fs::canonicalize(dir.path().join(".").join("s"))
        .await
        .unwrap();
    assert_eq!(canon, std::fs::canonicalize(&b).unwrap());
    // a dangling symlink: symlink_metadata works, metadata is NotFound
    let d = dir.join("dangling");
    fs::symlink("missing-target", &d).await.unwrap();
    assert!(fs::symlink_metadata(&d).await.unwrap().is_symlink());
    assert_eq!(kind(fs::metadata(&d).await), ErrorKind::NotFound);
    // remove_file removes the link, not the target
    fs::remove_file(&s).await.unwrap();
    assert!(fs::try_exists(&b).await.unwrap());
    fs::remove_file(&h).await.unwrap();
    assert_eq!(fs::metadata(&b).await.unwrap().nlink(), 1);
}

#[spargio_rt::test]
async fn copy_contents_and_permissions() {
    let dir = TempDir::new("copy");
    let src = dir.join("src");
    let data = pattern(700_000);
    fs::write(&src, &data).await.unwrap();
    fs::set_permissions(&src, std::fs::Permissions::from_mode(0o751))
        .await
        .unwrap();
    let dst = dir.join("dst");
    assert_eq!(fs::copy(&src, &dst).await.unwrap(), data.len() as u64);
    assert!(fs::read(&dst).await.unwrap() == data);
    assert_eq!(
        fs::metadata(&dst).await.unwrap().permissions().mode() & 0o777,
        0o751
    );
    // over an existing, longer file with other permissions
    let old = dir.join("old");
    fs::write(&old, vec![9u8; 800_000]).await.unwrap();
    fs::set_permissions(&old, std::fs::Permissions::from_mode(0o600))
        .await
        .unwrap();
    assert_eq!(fs::copy(&src, &old).await.unwrap(), data.len() as u64);
    assert!(fs::read(&old).await.unwrap() == data);
    assert_eq!(
        fs::metadata(&old).await.unwrap().permissions().mode() & 0o777,
        0o751
    );
    // an empty file
    let empty = dir.join("empty");
    fs::write(&empty, b"").await.unwrap();
    assert_eq!(fs::copy(&empty, dir.join("empty2")).await.unwrap(), 0);
    assert!(fs::read(dir.join("empty2")).await.unwrap().is_empty());
}

#[spargio_rt::test]
async fn copy_onto_the_source_itself_is_refused_and_loses_nothing() {
    let dir = TempDir::new("copy-self");
    let src = dir.join("src");
    let data = pattern(10_000);
    fs::write(&src, &data).await.unwrap();
    let hard = dir.join("hard");
    fs::hard_link(&src, &hard).await.unwrap();
    let soft = dir.join("soft");
    fs::symlink("src", &soft).await.unwrap();
    let dotted = dir.path().join(".").join("src");
    for to in [&src, &hard, &soft, &dotted] {
        let err = fs::copy(&src, to).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{to:?}: {err}");
        assert!(err.to_string().contains("same file"), "{err}");
        assert!(fs::read(&src).await.unwrap() == data, "{to:?} emptied it");
    }
    // a link's own source copied onto the original is the same file too
    assert_eq!(kind(fs::copy(&hard, &src).await), ErrorKind::InvalidInput);
    assert!(fs::read(&src).await.unwrap() == data);
}

#[spargio_rt::test]
async fn listing_a_directory() {
    use futures_util::StreamExt;

    let dir = TempDir::new("list");
    for i in 0..150 {
        fs::write(dir.join(&format!("f{i:03}")), b"x")
            .await
            .unwrap();
    }
    fs::create_dir(dir.join("sub")).await.unwrap();
    fs::symlink("f000", dir.join("ln")).await.unwrap();

    let mut rd = fs::read_dir(dir.path()).await.unwrap();
    let mut names = Vec::new();
    while let Some(e) = rd.next_entry().await.unwrap() {
        let name = e.file_name().into_string().unwrap();
        assert_eq!(e.path(), dir.join(&name));
        let ft = e.file_type().await.unwrap();
        let m = e.metadata().await.unwrap();
        assert_eq!(e.ino(), m.ino());
        match name.as_str() {
            "sub" => assert!(ft.is_dir() && m.is_dir()),
            "ln" => assert!(ft.is_symlink() && m.is_symlink()),
            _ => assert!(ft.is_file() && m.is_file() && m.len() == 1),
        }
        names.push(name);
    }
    // exhausted stays exhausted
    assert!(rd.next_entry().await.unwrap().is_none());
    names.sort();
    assert_eq!(names.len(), 152);
    assert_eq!(names[0], "f000");
    assert!(names.contains(&"sub".to_string()) && names.contains(&"ln".to_string()));

    // as a Stream
    let rd = fs::read_dir(dir.path()).await.unwrap();
    let all: Vec<_> = rd.collect().await;
    assert_eq!(all.len(), 152);
    assert!(all.iter().all(|e| e.is_ok()));

    // dropping next_entry futures in flight loses no entry
    let mut rd = fs::read_dir(dir.path()).await.unwrap();
    let mut seen = 0;
    loop {
        let r = spargio_rt::time::timeout(Duration::ZERO, rd.next_entry()).await;
        match r {
            Ok(Ok(Some(_))) => seen += 1,
            Ok(Ok(None)) => break,
            Ok(Err(e)) => panic!("{e}"),
            Err(_) => {}
        }
    }
    assert_eq!(seen, 152);

    // an empty directory
    let mut rd = fs::read_dir(dir.join("sub")).await.unwrap();
    assert!(rd.next_entry().await.unwrap().is_none());
}

/// An entry is looked up in the directory that was listed, not by its
/// joined path: renaming the directory afterwards, and putting another
/// file where the entry's path was, does not change its metadata.
#[spargio_rt::test]
async fn an_entry_follows_its_directory_through_a_rename() {
    let dir = TempDir::new("entry-rename");
    let (listed, moved) = (dir.join("listed"), dir.join("moved"));
    std::fs::create_dir(&listed).unwrap();
    std::fs::write(listed.join("f"), b"12345").unwrap();

    let mut rd = fs::read_dir(&listed).await.unwrap();
    let entry = rd.next_entry().await.unwrap().unwrap();
    assert!(rd.next_entry().await.unwrap().is_none());
    drop(rd); // the entry keeps the directory by itself
    assert_eq!(entry.path(), listed.join("f"));

    std::fs::rename(&listed, &moved).unwrap();
    let m = entry.metadata().await.unwrap();
    assert_eq!((m.len(), m.ino()), (5, entry.ino()));

    // another file now where the entry's path leads
    std::fs::create_dir(&listed).unwrap();
    std::fs::write(listed.join("f"), b"a longer decoy").unwrap();
    let m = entry.metadata().await.unwrap();
    assert_eq!((m.len(), m.ino()), (5, entry.ino()));
    assert!(entry.file_type().await.unwrap().is_file());
    // and a clone keeps it too
    let copy = entry.clone();
    drop(entry);
    assert_eq!(copy.metadata().await.unwrap().len(), 5);
}

/// A symlink's entry describes the link itself, whether or not its target
/// exists.
#[spargio_rt::test]
async fn a_symlink_entry_is_the_link_not_its_target() {
    let dir = TempDir::new("entry-symlink");
    std::fs::write(dir.join("target"), b"target contents").unwrap();
    std::os::unix::fs::symlink("target", dir.join("ln")).unwrap();
    std::os::unix::fs::symlink("nowhere", dir.join("dangling")).unwrap();

    let mut rd = fs::read_dir(dir.path()).await.unwrap();
    let mut links = 0;
    while let Some(e) = rd.next_entry().await.unwrap() {
        let m = e.metadata().await.unwrap();
        let own = std::fs::symlink_metadata(e.path()).unwrap();
        assert_eq!((m.ino(), m.len()), (own.ino(), own.len()), "{e:?}");
        match e.file_name().to_str().unwrap() {
            "target" => assert!(m.is_file() && m.len() == 15),
            link => {
                let target_len = if link == "ln" { "target" } else { "nowhere" }.len();
                assert!(m.is_symlink() && !m.is_file(), "{e:?}");
                assert!(e.file_type().await.unwrap().is_symlink());
                // a symlink's size is the length of what it points at
                assert_eq!(m.len(), target_len as u64);
                links += 1;
            }
        }
    }
    assert_eq!(links, 2);
}

#[spargio_rt::test]
async fn dropped_in_flight_ops_leave_files_intact() {
    let dir = TempDir::new("cancel");
    let p = dir.join("c");
    let data = pattern(1 << 20);
    fs::write(&p, &data).await.unwrap();
    let f = File::open(&p).await.unwrap();
    let cancels_so_far = || -> u64 {
        let stats = RuntimeHandle::current().stats();
        stats.shards.iter().map(|s| s.ops_cancelled).sum()
    };
    let cancels_before = cancels_so_far();
    // Reads dropped right after submission, from a zero timeout.
    let mut completed = 0;
    for i in 0..300u64 {
        let read = f.read_at(Vec::with_capacity(64 << 10), (i * 4096) % (1 << 20));
        if let Ok((res, buf)) = spargio_rt::time::timeout(Duration::ZERO, read).await {
            let n = res.unwrap();
            assert_eq!(buf.len(), n);
            completed += 1;
        }
    }
    // And from a select against a ready future.
    for i in 0..300u64 {
        let read = Box::pin(f.read_at(Vec::with_capacity(4096), i * 100));
        let ready = Box::pin(std::future::ready(()));
        if let futures_util::future::Either::Left(((res, _), _)) =
            futures_util::future::select(read, ready).await
        {
            res.unwrap();
            completed += 1;
        }
    }
    // Some of those reads were dropped in flight (a cancel went to the
    // ring for each), not all completed before their futures were dropped.
    assert!(
        cancels_so_far() > cancels_before,
        "no read was dropped in flight ({completed} of 600 completed)"
    );
    // Opens and stats dropped in flight (an open that completes anyway has
    // its fd closed by the runtime).
    for _ in 0..200 {
        let _ = spargio_rt::time::timeout(Duration::ZERO, File::open(&p)).await;
        let _ = spargio_rt::time::timeout(Duration::ZERO, fs::metadata(&p)).await;
    }
    // No opened fd leaked: once the cancelled ops have settled, only `f`
    // has the file open. (Other tests open other paths, so counting the
    // fds that point at this one is exact.) The wait is bounded, and only
    // gives the shard time to reap the cancellations.
    let target = std::fs::canonicalize(&p).unwrap();
    let open_fds = || fds_on(&target);
    let mut settled = false;
    for _ in 0..500 {
        if open_fds() == 1 {
            settled = true;
            break;
        }
        spargio_rt::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(settled, "{} fds open on the file, expected 1", open_fds());
    // Writes dropped in flight into a scratch file.
    let w = dir.join("w");
    let wf = File::create(&w).await.unwrap();
    for i in 0..200u64 {
        let _ = spargio_rt::time::timeout(Duration::ZERO, wf.write_all_at(vec![7u8; 512], i * 512))
            .await;
    }
    drop(wf);
    // The file still reads fine, through the same File and a new one.
    let (res, buf) = f.read_exact_at(Vec::with_capacity(1 << 20), 0).await;
    res.unwrap();
    assert!(buf == data);
    assert!(fs::read(&p).await.unwrap() == data);
    // Every byte the scratch file got is one a write put there.
    let wrote = fs::read(&w).await.unwrap();
    assert!(wrote.iter().all(|&b| b == 7 || b == 0));
}

#[spargio_rt::test(shards = 2)]
async fn many_tasks_on_many_shards(h: RuntimeHandle) {
    let dir = TempDir::new("tasks");
    let p = dir.join("shared");
    let data = pattern(256 << 10);
    fs::write(&p, &data).await.unwrap();
    let tasks: Vec<_> = (0..16usize)
        .map(|i| {
            let p = p.clone();
            let out = dir.join(&format!("out{i}"));
            h.spawn(async move {
                let f = File::open(&p).await?;
                let off = (i * 4096) as u64;
                let (res, buf) = f.read_exact_at(Vec::with_capacity(4096), off).await;
                res?;
                fs::write(&out, &buf).await?;
                std::io::Result::Ok((off, fs::read(&out).await?))
            })
        })
        .collect();
    for t in tasks {
        let (off, got) = t.await.unwrap().unwrap();
        assert!(got[..] == data[off as usize..off as usize + 4096]);
    }
}

#[test]
fn works_from_block_on_off_the_shards() {
    let rt = Runtime::builder().shards(2).build().unwrap();
    let dir = TempDir::new("blockon");
    let root = dir.path().to_owned();
    rt.block_on(async {
        let sub = root.join("a/b");
        fs::create_dir_all(&sub).await.unwrap();
        let p = sub.join("f");
        fs::write(&p, pattern(100_000)).await.unwrap();
        let f = File::open(&p).await.unwrap();
        let (res, buf) = f.read_exact_at(Vec::with_capacity(1000), 500).await;
        res.unwrap();
        assert_eq!(buf, pattern(1500)[500..]);
        assert_eq!(f.metadata().await.unwrap().len(), 100_000);
        assert_eq!(
            kind(fs::metadata(sub.join("nope")).await),
            ErrorKind::NotFound
        );
        let mut rd = fs::read_dir(&sub).await.unwrap();
        assert_eq!(rd.next_entry().await.unwrap().unwrap().file_name(), "f");
        assert!(rd.next_entry().await.unwrap().is_none());
        fs::copy(&p, root.join("copy")).await.unwrap();
        fs::rename(root.join("copy"), root.join("moved"))
            .await
            .unwrap();
        assert_eq!(
            fs::read(root.join("moved")).await.unwrap(),
            pattern(100_000)
        );
        // dropped in flight off the shards too
        for _ in 0..100 {
            let _ = spargio_rt::time::timeout(Duration::ZERO, f.read_at(vec![0u8; 4096], 0)).await;
        }
        let (res, buf) = f.read_at(Vec::with_capacity(10), 0).await;
        assert_eq!(res.unwrap(), 10);
        assert_eq!(buf, pattern(10));
        fs::remove_dir_all(root.join("a")).await.unwrap();
    });
    assert!(!dir.join("a").exists());
}

#[test]
fn outside_a_runtime_is_an_error_not_a_panic() {
    let dir = TempDir::new("outside");
    let p = dir.join("x");
    std::fs::write(&p, b"x").unwrap();
    spargio_rt::block_on(async {
        assert!(fs::metadata(&p).await.is_err());
        assert!(File::open(&p).await.is_err());
        assert!(fs::canonicalize(&p).await.is_err());
        assert!(fs::read_dir(dir.path()).await.is_err());
    });
}

#[spargio_rt::test]
async fn std_conversions() {
    let dir = TempDir::new("std");
    let p = dir.join("s");
    let std_file = std::fs::File::create(&p).unwrap();
    let f = File::from_std(std_file);
    let (res, _) = f.write_all_at(b"via ring".to_vec(), 0).await;
    res.unwrap();
    let raw = f.as_raw_fd();
    assert!(raw >= 0);
    let mut back = f.into_std().unwrap();
    std::io::Write::write_all(&mut back, b"VIA").unwrap();
    drop(back);
    assert_eq!(fs::read(&p).await.unwrap(), b"VIA ring");
    let f: File = std::fs::File::open(&p).unwrap().into();
    assert!(format!("{f:?}").contains("File"));
    assert_eq!(f.metadata().await.unwrap().len(), 8);
}

/// Every fs future can move between threads (so stealable tasks may use it).
#[test]
fn futures_are_send() {
    fn send<T: Send>(_: T) {}
    let p = Path::new("x");
    send(File::open(p));
    send(File::create(p));
    send(OpenOptions::new().read(true).open(p));
    send(fs::read(p));
    send(fs::read_to_string(p));
    send(fs::write(p, b"x"));
    send(fs::copy(p, p));
    send(fs::create_dir(p));
    send(fs::create_dir_all(p));
    send(DirBuilder::new().create(p));
    send(fs::remove_file(p));
    send(fs::remove_dir(p));
    send(fs::remove_dir_all(p));
    send(fs::rename(p, p));
    send(fs::hard_link(p, p));
    send(fs::symlink(p, p));
    send(fs::metadata(p));
    send(fs::symlink_metadata(p));
    send(fs::try_exists(p));
    send(fs::set_permissions(
        p,
        std::fs::Permissions::from_mode(0o644),
    ));
    send(fs::canonicalize(p));
    send(fs::read_link(p));
    send(fs::read_dir(p));
    send(async move {
        let mut rd = fs::read_dir(p).await?;
        let entry = rd.next_entry().await?;
        match entry {
            Some(e) => e.file_type().await.map(drop),
            None => Ok(()),
        }
    });
    let f = File::from_std(std::fs::File::open("/dev/null").unwrap());
    send(f.read_at(Vec::new(), 0));
    send(f.read_exact_at(Vec::new(), 0));
    send(f.write_at(Vec::new(), 0));
    send(f.write_all_at(Vec::new(), 0));
    send(f.read_to_end(Vec::new()));
    send(f.read_to_end_at(Vec::new(), 0));
    send(f.sync_all());
    send(f.sync_data());
    send(f.metadata());
    send(f.set_len(0));
    send(f.fallocate(0, 1, 0));
    send(f.set_permissions(std::fs::Permissions::from_mode(0o644)));
}

#[spargio_rt::test]
async fn reading_a_huge_sparse_file_is_an_error_not_an_abort() {
    // The file claims 8 TiB; sizing the buffer from that must fail with an
    // error (as `std::fs::read` does), not abort the process.
    const HUGE: usize = 8 << 40;
    if Vec::<u8>::new().try_reserve_exact(HUGE).is_ok() {
        // Memory overcommit lets this machine reserve it: nothing to show.
        eprintln!("skipped: an 8 TiB reservation succeeds here");
        return;
    }
    let dir = TempDir::new("sparse");
    let path = dir.join("huge");
    let file = std::fs::File::create(&path).unwrap();
    if file.set_len(HUGE as u64).is_err() {
        eprintln!("skipped: the file system refuses an 8 TiB file");
        return;
    }
    drop(file);
    assert_eq!(kind(fs::read(&path).await), ErrorKind::OutOfMemory);
}

#[test]
fn a_listing_cut_short_by_shutdown_never_ends_as_if_complete() {
    let dir = TempDir::new("cut-listing");
    for i in 0..3 {
        std::fs::write(dir.join(&format!("f{i}")), b"x").unwrap();
    }
    let rt = Runtime::builder().shards(1).build().unwrap();
    let path = dir.path().to_owned();
    let mut listing = rt.block_on(async move { fs::read_dir(path).await.unwrap() });
    drop(rt);
    // The runtime is gone, so the listing's blocking job cannot run: an
    // error, and never a clean end after it.
    let first = spargio_rt::block_on(listing.next_entry());
    assert!(first.is_err(), "{first:?}");
    let second = spargio_rt::block_on(listing.next_entry());
    assert!(second.is_err(), "the cut listing ended cleanly: {second:?}");
}

#[test]
fn files_dropped_on_a_shard_are_closed_through_its_ring() {
    let dir = TempDir::new("ring-close");
    let p = dir.join("f");
    std::fs::write(&p, b"x").unwrap();
    let target = std::fs::canonicalize(&p).unwrap();
    let open_fds = move || fds_on(&target);
    let rt = Runtime::builder().shards(1).build().unwrap();
    let h = rt.handle();
    let before = h.stats().shards[0].ring_closes;
    let p2 = p.clone();
    let open_after_drop = rt
        .block_on(h.spawn(async move {
            let mut files = Vec::new();
            for _ in 0..20 {
                files.push(File::open(&p2).await.unwrap());
            }
            drop(files);
            // Queued on the ring, not closed yet, until the shard submits:
            // the next await lets it (a bounded wait, in case it is slow).
            let by = std::time::Instant::now() + Duration::from_secs(20);
            while std::time::Instant::now() < by {
                spargio_rt::time::sleep(Duration::from_millis(1)).await;
                if open_fds() == 0 {
                    break;
                }
            }
            open_fds()
        }))
        .unwrap();
    assert_eq!(open_after_drop, 0, "every dropped file was closed");
    assert!(h.stats().shards[0].ring_closes - before >= 20);
}

#[test]
fn a_program_written_and_dropped_on_a_shard_runs_at_once() {
    let dir = TempDir::new("ring-close-exec");
    let script = dir.join("script.sh");
    let rt = Runtime::builder().shards(1).build().unwrap();
    let status = rt
        .block_on(rt.handle().spawn(async move {
            let f = OpenOptions::new()
                .write(true)
                .create(true)
                .mode(0o755)
                .open(&script)
                .await
                .unwrap();
            let (r, _) = f.write_all_at(b"#!/bin/sh\nexit 7\n".to_vec(), 0).await;
            r.unwrap();
            // Dropped and run in the same poll: its close (queued on the
            // ring) must be done before the program runs, or exec fails
            // with ETXTBSY (the file still open for writing).
            drop(f);
            spargio_rt::process::Command::new(&script).status().await
        }))
        .unwrap();
    assert_eq!(status.unwrap().code(), Some(7));
}

/// A fresh directory holding one file `f` ("x"): the directory, the
/// file's path and its canonical path (as `/proc/self/fd` shows it).
fn dir_with_one_file(name: &str) -> (TempDir, PathBuf, PathBuf) {
    let dir = TempDir::new(name);
    let p = dir.join("f");
    std::fs::write(&p, b"x").unwrap();
    let target = std::fs::canonicalize(&p).unwrap();
    (dir, p, target)
}

#[test]
fn a_blocking_job_queued_after_a_drop_sees_the_file_closed() {
    let (_dir, p, target) = dir_with_one_file("close-then-job");
    let rt = Runtime::builder().shards(1).build().unwrap();
    let open_in_job = rt
        .block_on(rt.handle().spawn(async move {
            let f = File::open(&p).await.unwrap();
            drop(f);
            let (tx, rx) = std::sync::mpsc::channel();
            let job = spargio_rt::spawn_blocking(move || {
                // A file system with a flush step (overlayfs) finishes a
                // submitted close in a kernel worker: allow it a while.
                let give_up = std::time::Instant::now() + Duration::from_secs(2);
                while fds_on(&target) != 0 && std::time::Instant::now() < give_up {
                    std::thread::sleep(Duration::from_millis(1));
                }
                tx.send(fds_on(&target)).unwrap();
            });
            // Wait for the job's answer holding the shard (no await): only
            // a submission made before the job was queued can close it.
            let open = rx.recv_timeout(Duration::from_secs(30)).unwrap();
            job.await.unwrap();
            open
        }))
        .unwrap();
    assert_eq!(open_in_job, 0, "the job saw the dropped file still open");
}

#[test]
fn close_waits_for_the_close_on_and_off_the_shards() {
    let (_dir, p, target) = dir_with_one_file("close");
    let rt = Runtime::builder().shards(1).build().unwrap();
    let h = rt.handle();
    let before = h.stats().shards[0].ring_closes;
    let (p2, t2) = (p.clone(), target.clone());
    let open_after = rt
        .block_on(h.spawn(async move {
            let files = [
                File::open(&p2).await.unwrap(),
                File::open(&p2).await.unwrap(),
            ];
            assert_eq!(fds_on(&t2), 2);
            for f in files {
                f.close().await.unwrap();
            }
            fds_on(&t2)
        }))
        .unwrap();
    assert_eq!(open_after, 0);
    assert_eq!(
        h.stats().shards[0].ring_closes,
        before,
        "an awaited close is an op of its own, not a queued drop"
    );
    // From block_on, off the shards: closed at once.
    let f = rt.block_on(File::open(&p)).unwrap();
    assert_eq!(fds_on(&target), 1);
    rt.block_on(f.close()).unwrap();
    assert_eq!(fds_on(&target), 0);
}

#[test]
fn an_open_completed_after_its_future_was_dropped_is_closed_through_the_ring() {
    let (_dir, p, target) = dir_with_one_file("orphan-open");
    let rt = Runtime::builder().shards(1).build().unwrap();
    let h = rt.handle();
    let before = h.stats().shards[0].ring_closes;
    let t2 = target.clone();
    rt.block_on(h.spawn(async move {
        let mut open = Box::pin(File::open(&p));
        let first = std::future::poll_fn(|cx| {
            std::task::Poll::Ready(std::future::Future::poll(open.as_mut(), cx).is_pending())
        })
        .await;
        assert!(first, "an open goes to the ring before it completes");
        // Let the shard submit the open and reap its completion; the
        // result waits in the op for a poll that never comes.
        let give_up = std::time::Instant::now() + Duration::from_secs(20);
        while fds_on(&t2) == 0 {
            assert!(
                std::time::Instant::now() < give_up,
                "the open never completed"
            );
            spargio_rt::time::sleep(Duration::from_millis(1)).await;
        }
        drop(open);
        while fds_on(&t2) != 0 {
            assert!(
                std::time::Instant::now() < give_up,
                "the dropped open's fd was never closed"
            );
            spargio_rt::time::sleep(Duration::from_millis(1)).await;
        }
    }))
    .unwrap();
    assert_eq!(fds_on(&target), 0);
    assert_eq!(
        h.stats().shards[0].ring_closes - before,
        1,
        "the orphaned fd was closed through the ring, not with close(2) on the shard"
    );
}

#[spargio_rt::test]
async fn positional_writes_to_an_append_file_go_to_its_end() {
    let dir = TempDir::new("append-at");
    let p = dir.join("f");
    std::fs::write(&p, b"hello").unwrap();
    let f = OpenOptions::new().append(true).open(&p).await.unwrap();
    let (res, _) = f.write_all_at(b"J".to_vec(), 0).await;
    res.unwrap();
    f.close().await.unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), b"helloJ", "as the docs say");
}
