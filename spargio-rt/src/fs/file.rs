//! [`File`]: an open file, read and written with owned buffers.

use std::fmt;
use std::io::{self, SeekFrom};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use super::blocking::asyncify;
use super::metadata::Metadata;
use super::open_options::OpenOptions;
use super::ops as fs_ops;
use crate::io::fd::SharedFd;
use crate::io::ops::{self, CURRENT_POS};
use crate::io::{AsyncRead, AsyncWrite, BufResult, IoBuf, IoBufMut};

/// Set once the kernel turned `IORING_OP_FTRUNCATE` down but the plain
/// syscall worked: the opcode is missing, so skip straight to the pool.
static NO_NATIVE_FTRUNCATE: AtomicBool = AtomicBool::new(false);

/// An open file.
///
/// Positional methods ([`read_at`](Self::read_at),
/// [`write_at`](Self::write_at), ...) take `&self`, need no seeking and may
/// run concurrently. The [`AsyncRead`]/[`AsyncWrite`] impls read and write
/// at the file's current position and move it, like `std::io::Read` and
/// `Write`. The file is unbuffered, so `flush` does nothing; use
/// [`sync_all`](Self::sync_all) for durability.
///
/// The fd is closed when the `File` is dropped and no op that still uses
/// it is in flight. Dropped on a shard, it is closed through the shard's
/// ring (`IORING_OP_CLOSE`, with the shard's next submission), so a close
/// that flushes (NFS, FUSE) never blocks the shard; elsewhere with
/// `close(2)`. [`process::Command`](crate::process::Command) and
/// [`spawn_blocking`](crate::spawn_blocking) submit such closes before
/// they start a program or a job, so a script written and dropped just
/// before is not "text file busy" — on a file system whose close has no
/// flush step (ext4, xfs, tmpfs, btrfs). On one that has (overlayfs, as
/// a container's `/tmp` often is, NFS, FUSE) the close may still be
/// running then, and ring ops that follow (an unlink, a rename) are not
/// ordered after it either: to know the file is closed, and to see the
/// close's error, use [`close`](Self::close).
///
/// ```
/// use spargio_rt::fs::File;
///
/// spargio_rt::run(|_| async {
///     let path = std::env::temp_dir().join(format!("spargio-file-doc-{}", std::process::id()));
///     let f = File::options().read(true).write(true).create(true).open(&path).await?;
///     let (res, _) = f.write_all_at(b"hello world".to_vec(), 0).await;
///     res?;
///     // Reads fill the buffer up to its capacity.
///     let (res, buf) = f.read_exact_at(Vec::with_capacity(5), 6).await;
///     res?;
///     assert_eq!(buf, b"world");
///     spargio_rt::fs::remove_file(&path).await
/// })
/// .unwrap()
/// .unwrap();
/// ```
pub struct File {
    fd: SharedFd,
}

/// Positions past `i64::MAX` are invalid for the kernel, and `u64::MAX`
/// would silently mean "the current position" to io_uring.
fn check_pos(pos: u64) -> io::Result<()> {
    if pos > i64::MAX as u64 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "file offset out of range",
        ));
    }
    Ok(())
}

impl File {
    pub(crate) fn from_owned(fd: OwnedFd) -> Self {
        File {
            fd: SharedFd::for_file(fd),
        }
    }

    /// Opens a file read-only (`O_RDONLY`).
    pub async fn open(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new().read(true).open(path).await
    }

    /// Opens a file write-only, creating it or truncating it to length 0.
    pub async fn create(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .await
    }

    /// Creates a new file for reading and writing; fails with
    /// `AlreadyExists` if it exists.
    pub async fn create_new(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .await
    }

    /// Opens a handle on a directory (`O_PATH | O_DIRECTORY`), to open
    /// files relative to it with [`OpenOptions::open_at`] or to take its
    /// [`metadata`](Self::metadata). Fails with `NotADirectory` if `path`
    /// is not a directory (a final symlink is followed).
    ///
    /// An `O_PATH` handle needs no read permission on the directory (only
    /// search permission on the way to it) and does not open it for I/O:
    /// reading or writing through it fails with `EBADF`.
    ///
    /// ```
    /// use spargio_rt::fs::{File, OpenOptions};
    ///
    /// spargio_rt::run(|_| async {
    ///     let dir = File::open_dir(std::env::temp_dir()).await?;
    ///     assert!(dir.metadata().await?.is_dir());
    ///     let path = format!("spargio-open-dir-doc-{}", std::process::id());
    ///     let f = OpenOptions::new().write(true).create(true).open_at(&dir, &path).await?;
    ///     drop(f);
    ///     spargio_rt::fs::remove_file(std::env::temp_dir().join(path)).await
    /// })
    /// .unwrap()
    /// .unwrap();
    /// ```
    pub async fn open_dir(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
            .open(path)
            .await
    }

    /// A blank [`OpenOptions`], same as [`OpenOptions::new`].
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    /// Reads once at `pos` into `buf`, filling it from its start up to its
    /// capacity (`bytes_total`). Returns how many bytes arrived; 0 at end of
    /// file. A short read is not an error.
    pub async fn read_at<B: IoBufMut>(&self, buf: B, pos: u64) -> BufResult<usize, B> {
        if let Err(e) = check_pos(pos) {
            return (Err(e), buf);
        }
        ops::read_at(&self.fd, buf, pos).await
    }

    /// Fills `buf` to its capacity (`bytes_total`) from `pos` on, reading
    /// as often as needed: each read continues where the last one stopped.
    /// Fails with `UnexpectedEof` if the file ends first; the bytes read so
    /// far are in the returned buffer.
    pub async fn read_exact_at<B: IoBufMut>(&self, buf: B, pos: u64) -> BufResult<(), B> {
        if let Err(e) = check_pos(pos) {
            return (Err(e), buf);
        }
        let total = buf.bytes_total();
        let mut filled = 0;
        let mut buf = buf;
        while filled < total {
            let at = pos.saturating_add(filled as u64);
            let (res, slice) = self.read_at(buf.slice(filled..), at).await;
            buf = slice.into_inner();
            match res {
                Ok(0) => {
                    let e = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("file ended after {filled} of {total} bytes"),
                    );
                    return (Err(e), buf);
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }

    /// Writes once at `pos` from `buf`'s initialised bytes; returns how many
    /// were written (possibly fewer).
    ///
    /// On a file opened with [`append`](OpenOptions::append) the kernel
    /// ignores `pos` and writes at the end, as `pwrite` does on Linux.
    pub async fn write_at<B: IoBuf>(&self, buf: B, pos: u64) -> BufResult<usize, B> {
        if let Err(e) = check_pos(pos) {
            return (Err(e), buf);
        }
        ops::write_at(&self.fd, buf, pos).await
    }

    /// Writes all of `buf`'s initialised bytes at `pos`, continuing after
    /// short writes. Fails with `WriteZero` if the kernel accepts nothing.
    /// With [`append`](OpenOptions::append), at the end (see
    /// [`write_at`](Self::write_at)).
    pub async fn write_all_at<B: IoBuf>(&self, buf: B, pos: u64) -> BufResult<(), B> {
        let total = buf.bytes_init();
        let mut written = 0;
        let mut buf = buf;
        while written < total {
            let at = pos.saturating_add(written as u64);
            let (res, slice) = self.write_at(buf.slice(written..), at).await;
            buf = slice.into_inner();
            match res {
                Ok(0) => {
                    let e = io::Error::new(
                        io::ErrorKind::WriteZero,
                        format!("wrote {written} of {total} bytes, then nothing"),
                    );
                    return (Err(e), buf);
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }

    /// Reads from the current position to end of file, appending to `buf`
    /// and moving the position; returns how many bytes were appended (as
    /// `std::io::Read::read_to_end`).
    ///
    /// Unlike `read(2)`, an io_uring read takes the position when it
    /// starts and stores it back when it ends, with no lock between: two
    /// reads at the current position in flight at once (this, the
    /// `AsyncRead` impl, or a duplicate of the fd) may return the same
    /// bytes twice. Use [`read_to_end_at`](Self::read_to_end_at) when
    /// several tasks read one file.
    pub async fn read_to_end(&self, buf: Vec<u8>) -> BufResult<usize, Vec<u8>> {
        read_to_end_inner(&self.fd, buf, CURRENT_POS, None).await
    }

    /// Reads from `pos` to end of file, appending to `buf`; returns how many
    /// bytes were appended. The current position does not move.
    pub async fn read_to_end_at(&self, buf: Vec<u8>, pos: u64) -> BufResult<usize, Vec<u8>> {
        if let Err(e) = check_pos(pos) {
            return (Err(e), buf);
        }
        read_to_end_inner(&self.fd, buf, pos, None).await
    }

    /// Moves the file's current position, the one the
    /// [`AsyncRead`]/[`AsyncWrite`] impls and [`read_to_end`](Self::read_to_end)
    /// read and write at, and returns the new position from the start of
    /// the file, as `std::io::Seek::seek` and tokio's `AsyncSeekExt::seek`
    /// do. Positional methods ([`read_at`](Self::read_at),
    /// [`write_at`](Self::write_at), ...) neither use nor move it. A
    /// [`try_clone`](Self::try_clone) shares it.
    ///
    /// A position past the end is allowed (a write there leaves a hole).
    /// One before the start fails with `InvalidInput` (the kernel's
    /// `EINVAL`), and so does a `Start` beyond `i64::MAX`; the position
    /// is then unchanged.
    ///
    /// io_uring has no seek opcode. For `Start` and `Current` this is
    /// `lseek(2)` called right here on the shard, not on the blocking
    /// pool: a plain syscall that only sets the open file's offset in
    /// memory, with no I/O (on NFS and FUSE too), so it does not block
    /// the shard, and a trip to the pool would cost far more than the
    /// call. (It can wait only while another thread is inside a plain
    /// `read(2)`/`write(2)` on the same open file, say through
    /// [`into_std`](Self::into_std).) `End` runs `lseek` on the
    /// blocking pool: to know where the end is, NFS and FUSE first
    /// refresh the file's size from the server, which can wait on the
    /// network. (A seek to `End` whose future is dropped after its job
    /// started still moves the position.)
    ///
    /// An op at the current position that a dropped future left in flight
    /// still moves the position when it completes, after this seek.
    ///
    /// ```
    /// use std::io::SeekFrom;
    /// use spargio_rt::fs::File;
    /// use spargio_rt::io::{AsyncReadExt, AsyncWriteExt};
    ///
    /// spargio_rt::run(|_| async {
    ///     let path = std::env::temp_dir().join(format!("spargio-seek-doc-{}", std::process::id()));
    ///     let mut f = File::options().read(true).write(true).create(true).open(&path).await?;
    ///     let (res, _) = f.write_all(b"hello world".to_vec()).await;
    ///     res?;
    ///     assert_eq!(f.seek(SeekFrom::End(-5)).await?, 6);
    ///     let (res, buf) = f.read_exact(Vec::with_capacity(5)).await;
    ///     res?;
    ///     assert_eq!(buf, b"world");
    ///     assert_eq!(f.seek(SeekFrom::Start(0)).await?, 0);
    ///     spargio_rt::fs::remove_file(&path).await
    /// })
    /// .unwrap()
    /// .unwrap();
    /// ```
    pub async fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        match pos {
            SeekFrom::Start(n) => {
                check_pos(n)?;
                lseek(&self.fd, n as i64, libc::SEEK_SET)
            }
            SeekFrom::Current(n) => lseek(&self.fd, n, libc::SEEK_CUR),
            SeekFrom::End(n) => {
                let fd = self.fd.clone();
                asyncify(move || lseek(&fd, n, libc::SEEK_END)).await
            }
        }
    }

    /// The file's current position ([`seek`](Self::seek) with
    /// `SeekFrom::Current(0)`: `lseek(2)` on the shard, no I/O), as
    /// `std::io::Seek::stream_position`. Positional methods
    /// ([`read_at`](Self::read_at), [`write_at`](Self::write_at), ...)
    /// neither use nor move it.
    ///
    /// ```
    /// use spargio_rt::fs::File;
    /// use spargio_rt::io::AsyncWriteExt;
    ///
    /// spargio_rt::run(|_| async {
    ///     let path = std::env::temp_dir().join(format!("spargio-stream-pos-doc-{}", std::process::id()));
    ///     let mut f = File::create(&path).await?;
    ///     let (res, _) = f.write_all(b"hello".to_vec()).await;
    ///     res?;
    ///     assert_eq!(f.stream_position().await?, 5);
    ///     // Positional writes leave it where it is.
    ///     let (res, _) = f.write_all_at(b"world".to_vec(), 5).await;
    ///     res?;
    ///     assert_eq!(f.stream_position().await?, 5);
    ///     spargio_rt::fs::remove_file(&path).await
    /// })
    /// .unwrap()
    /// .unwrap();
    /// ```
    pub async fn stream_position(&mut self) -> io::Result<u64> {
        lseek(&self.fd, 0, libc::SEEK_CUR)
    }

    /// Flushes data and metadata to the device (`fsync`).
    pub async fn sync_all(&self) -> io::Result<()> {
        ops::fsync(&self.fd, false).await
    }

    /// Flushes data, and only the metadata needed to read it back
    /// (`fdatasync`).
    pub async fn sync_data(&self) -> io::Result<()> {
        ops::fsync(&self.fd, true).await
    }

    /// The open file's metadata (`statx` with `AT_EMPTY_PATH`).
    pub async fn metadata(&self) -> io::Result<Metadata> {
        fs_ops::statx_fd(&self.fd).await.map(Metadata::from_statx)
    }

    /// Truncates or extends the file to `size` bytes (extending fills with
    /// zeros). Uses `IORING_OP_FTRUNCATE` (kernel 6.9+); on kernels without
    /// it, runs `ftruncate` on the blocking pool. The file must be open for
    /// writing.
    pub async fn set_len(&self, size: u64) -> io::Result<()> {
        let len = i64::try_from(size)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "length out of range"))?;
        if !NO_NATIVE_FTRUNCATE.load(Ordering::Relaxed) {
            match fs_ops::ftruncate(&self.fd, size).await {
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EOPNOTSUPP)) => {}
                other => return other,
            }
        }
        let fd = self.fd.clone();
        let res = asyncify(move || {
            // SAFETY: `fd` is a clone of the open fd, kept alive by the
            // closure; ftruncate only reads its arguments.
            if unsafe { libc::ftruncate(fd.raw(), len) } < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        })
        .await;
        if res.is_ok() {
            // The ring refused what the syscall accepted: no native opcode.
            NO_NATIVE_FTRUNCATE.store(true, Ordering::Relaxed);
        }
        res
    }

    /// Allocates (or, with `mode` flags, punches holes in or zeroes) the
    /// byte range `offset..offset + len`, as `fallocate(2)`. `mode` is 0 or
    /// a combination of `libc::FALLOC_FL_*` flags.
    pub async fn fallocate(&self, offset: u64, len: u64, mode: i32) -> io::Result<()> {
        check_pos(offset)?;
        fs_ops::fallocate(&self.fd, offset, len, mode).await
    }

    /// Changes the file's permission bits (`fchmod`, on the blocking pool).
    pub async fn set_permissions(&self, perm: std::fs::Permissions) -> io::Result<()> {
        let fd = self.fd.clone();
        asyncify(move || {
            // SAFETY: `fd` keeps the fd open for the call; fchmod only
            // reads its arguments.
            if unsafe { libc::fchmod(fd.raw(), perm.mode()) } < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        })
        .await
    }

    /// Wraps a `std` file; the fd is used as it is (its flags and position
    /// are kept).
    pub fn from_std(file: std::fs::File) -> File {
        File::from_owned(OwnedFd::from(file))
    }

    /// A second `File` on a duplicate of this one's fd
    /// (`fcntl(F_DUPFD_CLOEXEC)`, on the calling thread: no I/O), as
    /// `std::fs::File::try_clone` and tokio's `File::try_clone`.
    ///
    /// Both fds refer to the same open file description: they share its
    /// current position (a [`seek`](Self::seek) or a read at the current
    /// position through one moves it for the other) and its status flags
    /// (`O_APPEND`, `O_NONBLOCK`, ...). The duplicate is close-on-exec,
    /// whether or not the original is. Each `File` closes its own fd when
    /// dropped; the other stays usable. Fails only if the process is out
    /// of fds.
    ///
    /// ```
    /// use std::io::SeekFrom;
    /// use spargio_rt::fs::File;
    /// use spargio_rt::io::AsyncReadExt;
    ///
    /// spargio_rt::run(|_| async {
    ///     let path = std::env::temp_dir().join(format!("spargio-try-clone-doc-{}", std::process::id()));
    ///     spargio_rt::fs::write(&path, b"hello world").await?;
    ///     let f = File::open(&path).await?;
    ///     let mut clone = f.try_clone().await?;
    ///     drop(f);
    ///     clone.seek(SeekFrom::Start(6)).await?;
    ///     let (res, buf) = clone.read_to_end(Vec::new()).await;
    ///     res?;
    ///     assert_eq!(buf, b"world");
    ///     spargio_rt::fs::remove_file(&path).await
    /// })
    /// .unwrap()
    /// .unwrap();
    /// ```
    pub async fn try_clone(&self) -> io::Result<File> {
        Ok(File::from_owned(self.as_fd().try_clone_to_owned()?))
    }

    /// Closes the file and waits until it is closed, reporting what
    /// `close(2)` returned — unless a future dropped earlier left an op on
    /// this file in flight: the fd then stays open until that op ends
    /// (closing it under the kernel would be unsound), and this returns
    /// `Ok` at once.
    ///
    /// Otherwise, once this returns the file is no longer open here: a
    /// `spawn_blocking` job, a program started with
    /// `std::process::Command`, or an unlink on NFS that follows sees it
    /// closed, and a file system that writes data back on close (NFS,
    /// FUSE) has reported how that went. Dropping a `File` closes it too,
    /// but in the background and with any error lost.
    ///
    /// On a runtime the `close(2)` runs on the blocking pool (it can wait
    /// on a flush); elsewhere, here.
    ///
    /// ```
    /// use spargio_rt::fs::File;
    ///
    /// spargio_rt::run(|_| async {
    ///     let path = std::env::temp_dir().join(format!("spargio-close-doc-{}", std::process::id()));
    ///     let f = File::create(&path).await?;
    ///     let (res, _) = f.write_all_at(b"#!/bin/sh\n".to_vec(), 0).await;
    ///     res?;
    ///     f.close().await?;
    ///     spargio_rt::fs::remove_file(&path).await
    /// })
    /// .unwrap()
    /// .unwrap();
    /// ```
    pub async fn close(self) -> io::Result<()> {
        let fd = match self.fd.into_owned() {
            Ok(fd) => fd,
            // An abandoned op still holds it: closed when that op ends.
            Err(shared) => {
                drop(shared);
                return Ok(());
            }
        };
        // The job owns the fd: one dropped before it runs drops the
        // `OwnedFd`, which closes it. Linux frees the number even when
        // `close` reports an error, so it is never closed twice.
        let close = move || {
            let raw = fd.into_raw_fd();
            // SAFETY: `raw` is ours, just taken out of its `OwnedFd`, and
            // is closed once here and never used again.
            if unsafe { libc::close(raw) } < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        };
        if crate::RuntimeHandle::try_current().is_some() {
            asyncify(close).await
        } else {
            close()
        }
    }

    /// Converts to a `std` file, for blocking use.
    ///
    /// The returned file is a duplicate (`F_DUPFD_CLOEXEC`) of this one's
    /// fd: same open file, same position and flags. The original fd closes
    /// once any op a dropped future left in flight is done. Fails only if
    /// the process is out of fds.
    pub fn into_std(self) -> io::Result<std::fs::File> {
        Ok(std::fs::File::from(self.as_fd().try_clone_to_owned()?))
    }
}

/// `lseek(2)` on `fd`: the new position from the start of the file, or
/// the kernel's error.
fn lseek(fd: &SharedFd, offset: i64, whence: i32) -> io::Result<u64> {
    // SAFETY: the borrowed `SharedFd` keeps the fd open for the call;
    // lseek only reads its integer arguments.
    let pos = unsafe { libc::lseek(fd.raw(), offset, whence) };
    if pos < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(pos as u64)
}

/// Reads to end of file from `pos` (or the current position), appending
/// to `buf`. With a `hint` (the expected remaining size) the buffer is
/// sized once and end of file is confirmed with a small probe read instead
/// of doubling the buffer.
pub(crate) async fn read_to_end_inner(
    fd: &SharedFd,
    mut buf: Vec<u8>,
    mut pos: u64,
    hint: Option<usize>,
) -> BufResult<usize, Vec<u8>> {
    let start = buf.len();
    if let Some(h) = hint {
        // The size comes from the file system (a sparse file can claim
        // terabytes): an allocation that fails is an error, as in `std`,
        // not an abort.
        if let Err(e) = buf.try_reserve_exact(h) {
            return (Err(io::Error::new(io::ErrorKind::OutOfMemory, e)), buf);
        }
    }
    let mut probed = hint.is_none();
    loop {
        if buf.len() == buf.capacity() {
            if !probed {
                probed = true;
                let (res, probe) = ops::read_at(fd, Vec::with_capacity(32), pos).await;
                match res {
                    Ok(0) => return (Ok(buf.len() - start), buf),
                    Ok(n) => {
                        buf.extend_from_slice(&probe);
                        if pos != CURRENT_POS {
                            pos += n as u64;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return (Err(e), buf),
                }
            }
            buf.reserve(4096);
        }
        let len = buf.len();
        let (res, slice) = ops::read_at(fd, buf.slice(len..), pos).await;
        buf = slice.into_inner();
        match res {
            Ok(0) => return (Ok(buf.len() - start), buf),
            Ok(n) => {
                if pos != CURRENT_POS {
                    pos += n as u64;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (Err(e), buf),
        }
    }
}

impl File {
    pub(crate) fn shared_fd(&self) -> &SharedFd {
        &self.fd
    }
}

impl AsRawFd for File {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.raw()
    }
}

impl AsFd for File {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the fd stays open at least as long as `self` (which holds
        // a clone of the shared fd), so for the borrow's lifetime.
        unsafe { BorrowedFd::borrow_raw(self.fd.raw()) }
    }
}

impl From<std::fs::File> for File {
    fn from(file: std::fs::File) -> Self {
        File::from_std(file)
    }
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("File").field("fd", &self.fd.raw()).finish()
    }
}

impl AsyncRead for File {
    /// Reads once at the current position, moving it.
    fn read<B: IoBufMut>(
        &mut self,
        buf: B,
    ) -> impl std::future::Future<Output = BufResult<usize, B>> {
        ops::read_at(&self.fd, buf, CURRENT_POS)
    }
}

impl AsyncWrite for File {
    /// Writes once at the current position (the end with `append`), moving it.
    fn write<B: IoBuf>(
        &mut self,
        buf: B,
    ) -> impl std::future::Future<Output = BufResult<usize, B>> {
        ops::write_at(&self.fd, buf, CURRENT_POS)
    }

    /// One `writev` at the current position.
    fn write_vectored<B: IoBuf>(
        &mut self,
        bufs: Vec<B>,
    ) -> impl std::future::Future<Output = BufResult<usize, Vec<B>>> {
        ops::write_vectored(&self.fd, bufs, CURRENT_POS, false)
    }

    /// Nothing to do: the file is unbuffered.
    fn flush(&mut self) -> impl std::future::Future<Output = io::Result<()>> {
        std::future::ready(Ok(()))
    }

    /// Nothing to do for a file (it has no write side to close).
    fn shutdown(&mut self) -> impl std::future::Future<Output = io::Result<()>> {
        std::future::ready(Ok(()))
    }
}
