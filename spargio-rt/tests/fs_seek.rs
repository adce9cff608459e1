//! `spargio_rt::fs::File`'s current position: `seek`, `stream_position`,
//! the `AsyncRead`/`AsyncWrite` impls that use it, the positional methods
//! that leave it alone, and `try_clone`, whose duplicate shares it.

use std::io::{ErrorKind, Result, SeekFrom};
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use spargio_rt::fs::File;
use spargio_rt::io::{AsyncReadExt, AsyncWriteExt};

mod common;
use common::unique_temp_path;

/// A fresh file path under the system temp dir, removed on drop.
struct TempPath(PathBuf);

impl TempPath {
    fn new(name: &str) -> TempPath {
        let path = unique_temp_path("seek", name);
        let _ = std::fs::remove_file(&path);
        TempPath(path)
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `path` opened for reading and writing, holding `contents`, at
/// position 0.
async fn file_with(path: &TempPath, contents: &[u8]) -> Result<File> {
    std::fs::write(&path.0, contents)?;
    File::options().read(true).write(true).open(&path.0).await
}

/// Reads exactly `n` bytes at the current position.
async fn read_n(f: &mut File, n: usize) -> Result<Vec<u8>> {
    let (res, buf) = f.read_exact(vec![0u8; n]).await;
    res.map(|()| buf)
}

/// The fd's `FD_CLOEXEC` bit.
fn cloexec(f: &File) -> bool {
    // SAFETY: `f` keeps its fd open for the call; F_GETFD takes no
    // argument and only reads the fd's flags.
    let flags = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETFD) };
    assert!(flags >= 0, "F_GETFD: {}", std::io::Error::last_os_error());
    flags & libc::FD_CLOEXEC != 0
}

#[spargio_rt::test]
async fn write_then_seek_to_start_reads_it_back() -> Result<()> {
    let path = TempPath::new("back");
    let mut f = File::options()
        .read(true)
        .write(true)
        .create(true)
        .open(&path.0)
        .await?;
    let (res, _) = f.write_all(b"hello, seek".to_vec()).await;
    res?;
    assert_eq!(f.stream_position().await?, 11);
    assert_eq!(f.seek(SeekFrom::Start(0)).await?, 0);
    assert_eq!(read_n(&mut f, 5).await?, b"hello");
    assert_eq!(f.seek(SeekFrom::Start(0)).await?, 0);
    let (res, all) = AsyncReadExt::read_to_end(&mut f, Vec::new()).await;
    assert_eq!(res?, 11);
    assert_eq!(all, b"hello, seek");
    // `File::read_to_end` reads at the current position too.
    assert_eq!(f.seek(SeekFrom::Start(7)).await?, 7);
    let (res, tail) = f.read_to_end(Vec::new()).await;
    res?;
    assert_eq!(tail, b"seek");
    Ok(())
}

#[spargio_rt::test]
async fn seek_from_end_and_from_current() -> Result<()> {
    let path = TempPath::new("end-current");
    let mut f = file_with(&path, b"0123456789").await?;
    assert_eq!(f.seek(SeekFrom::End(-3)).await?, 7);
    assert_eq!(read_n(&mut f, 3).await?, b"789");
    assert_eq!(f.seek(SeekFrom::End(0)).await?, 10);
    assert_eq!(f.seek(SeekFrom::Start(2)).await?, 2);
    assert_eq!(f.seek(SeekFrom::Current(3)).await?, 5);
    assert_eq!(read_n(&mut f, 2).await?, b"56");
    assert_eq!(f.seek(SeekFrom::Current(-4)).await?, 3);
    assert_eq!(read_n(&mut f, 1).await?, b"3");
    // Past the end is allowed; a write there leaves a hole of zeros.
    assert_eq!(f.seek(SeekFrom::End(2)).await?, 12);
    let (res, _) = f.write_all(b"!".to_vec()).await;
    res?;
    assert_eq!(std::fs::read(&path.0)?, b"0123456789\0\0!");
    Ok(())
}

#[spargio_rt::test]
async fn stream_position_follows_reads_and_writes() -> Result<()> {
    let path = TempPath::new("stream-pos");
    let mut f = file_with(&path, b"abcdefgh").await?;
    assert_eq!(f.stream_position().await?, 0);
    read_n(&mut f, 3).await?;
    assert_eq!(f.stream_position().await?, 3);
    read_n(&mut f, 2).await?;
    assert_eq!(f.stream_position().await?, 5);
    let (res, _) = f.write_all(b"XY".to_vec()).await;
    res?;
    assert_eq!(f.stream_position().await?, 7);
    // Asking does not move it.
    assert_eq!(f.stream_position().await?, 7);
    assert_eq!(read_n(&mut f, 1).await?, b"h");
    assert_eq!(std::fs::read(&path.0)?, b"abcdeXYh");
    Ok(())
}

#[spargio_rt::test]
async fn seek_before_the_start_fails_and_keeps_the_position() -> Result<()> {
    let path = TempPath::new("negative");
    let mut f = file_with(&path, b"0123456789").await?;
    assert_eq!(f.seek(SeekFrom::Start(4)).await?, 4);
    for to in [
        SeekFrom::Current(-5),
        SeekFrom::End(-11),
        SeekFrom::Current(i64::MIN),
        SeekFrom::Start(u64::MAX),
    ] {
        let e = f.seek(to).await.expect_err("a seek before the start");
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{to:?}: {e}");
        assert_eq!(f.stream_position().await?, 4, "{to:?} moved the position");
    }
    // The kernel's own error, not one made up here.
    let e = f.seek(SeekFrom::Current(-5)).await.unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
    assert_eq!(read_n(&mut f, 1).await?, b"4");
    Ok(())
}

#[spargio_rt::test]
async fn positional_methods_do_not_move_the_position() -> Result<()> {
    let path = TempPath::new("positional");
    let mut f = file_with(&path, b"0123456789").await?;
    assert_eq!(f.seek(SeekFrom::Start(2)).await?, 2);
    let (res, buf) = f.read_at(vec![0u8; 3], 6).await;
    assert_eq!(res?, 3);
    assert_eq!(buf, b"678");
    let (res, _) = f.read_exact_at(vec![0u8; 4], 0).await;
    res?;
    let (res, _) = f.read_to_end_at(Vec::new(), 1).await;
    res?;
    let (res, _) = f.write_all_at(b"ab".to_vec(), 8).await;
    res?;
    assert_eq!(f.stream_position().await?, 2);
    assert_eq!(read_n(&mut f, 2).await?, b"23");
    assert_eq!(std::fs::read(&path.0)?, b"01234567ab");
    Ok(())
}

#[spargio_rt::test]
async fn try_clone_shares_the_position() -> Result<()> {
    let path = TempPath::new("clone-pos");
    let mut f = file_with(&path, b"0123456789").await?;
    let mut clone = f.try_clone().await?;
    assert_ne!(clone.as_raw_fd(), f.as_raw_fd(), "a new fd");
    // A seek on the clone moves the original's position...
    assert_eq!(clone.seek(SeekFrom::Start(6)).await?, 6);
    assert_eq!(f.stream_position().await?, 6);
    assert_eq!(read_n(&mut f, 2).await?, b"67");
    // ...and a read on the original the clone's.
    assert_eq!(clone.stream_position().await?, 8);
    assert_eq!(read_n(&mut clone, 2).await?, b"89");
    Ok(())
}

#[spargio_rt::test]
async fn try_clone_outlives_the_original() -> Result<()> {
    let path = TempPath::new("clone-outlives");
    let mut f = file_with(&path, b"0123456789").await?;
    assert_eq!(f.seek(SeekFrom::Start(3)).await?, 3);
    let mut clone = f.try_clone().await?;
    f.close().await?;
    assert_eq!(clone.stream_position().await?, 3);
    assert_eq!(read_n(&mut clone, 3).await?, b"345");
    let (res, _) = clone.write_all(b"X".to_vec()).await;
    res?;
    assert_eq!(clone.metadata().await?.len(), 10);
    // Dropped rather than closed: the clone is still fine.
    let clone2 = clone.try_clone().await?;
    drop(clone);
    let (res, buf) = clone2.read_to_end_at(Vec::new(), 0).await;
    res?;
    assert_eq!(buf, b"012345X789");
    Ok(())
}

#[spargio_rt::test]
async fn try_clone_is_close_on_exec() -> Result<()> {
    let path = TempPath::new("cloexec");
    std::fs::write(&path.0, b"x")?;
    let std_file = std::fs::File::open(&path.0)?;
    // An original without FD_CLOEXEC, so the clone cannot inherit the bit.
    // SAFETY: `std_file` keeps its fd open for the call; F_SETFD with 0
    // only clears the fd's flags.
    assert_eq!(
        unsafe { libc::fcntl(std_file.as_raw_fd(), libc::F_SETFD, 0) },
        0
    );
    let f = File::from_std(std_file);
    assert!(!cloexec(&f));
    let clone = f.try_clone().await?;
    assert!(cloexec(&clone), "the duplicate must be close-on-exec");
    Ok(())
}
