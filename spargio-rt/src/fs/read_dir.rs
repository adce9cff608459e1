//! Listing a directory: [`read_dir`], [`ReadDir`] and [`DirEntry`].
//!
//! The directory is opened once through the ring. io_uring has no
//! `getdents` opcode, so the listing is read from that open directory on
//! the blocking pool, a batch of entries at a time. Each entry keeps the
//! directory open, and looks itself up relative to it (as
//! `std::fs::DirEntry` does), so a rename of the directory or of a parent
//! does not send [`DirEntry::metadata`] to the wrong file.

use std::collections::VecDeque;
use std::ffi::{CStr, CString, OsStr, OsString};
use std::fmt;
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll};

use super::blocking::{cstr, no_runtime};
use super::metadata::{FileType, Metadata};
use super::ops;
use crate::io::fd::SharedFd;
use crate::{JoinHandle, RuntimeHandle};

/// How many entries one trip to the blocking pool reads.
const BATCH: usize = 64;

type Batch = (Lister, VecDeque<io::Result<DirEntry>>, bool);

/// Opens the directory `path` for listing (`openat` through the ring; the
/// entries are read on the blocking pool). Fails with `NotFound` if it does not
/// exist and `NotADirectory` if it is not a directory. The entries `.` and
/// `..` are not listed.
///
/// ```
/// spargio_rt::run(|_| async {
///     let mut dir = spargio_rt::fs::read_dir(".").await?;
///     let mut names = Vec::new();
///     while let Some(entry) = dir.next_entry().await? {
///         names.push(entry.file_name());
///     }
///     assert!(names.iter().any(|n| n == "Cargo.toml"));
///     std::io::Result::Ok(())
/// })
/// .unwrap()
/// .unwrap();
/// ```
pub async fn read_dir(path: impl AsRef<Path>) -> io::Result<ReadDir> {
    let handle = RuntimeHandle::try_current().ok_or_else(no_runtime)?;
    let root = path.as_ref().to_owned();
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC;
    let fd = ops::open(None, cstr(&root)?, flags, 0).await?;
    // The stream reads (and `closedir` closes) its own copy; the entries
    // share the original. It is made on the first batch's trip to the
    // pool, not on one of its own.
    let stream = Stream::Unopened(fd.try_clone()?);
    let dir = SharedFd::for_file(fd);
    Ok(ReadDir {
        handle,
        inner: Some(Lister { stream, dir, root }),
        cut: false,
        buf: VecDeque::new(),
        pending: None,
    })
}

/// The entries of a directory, from [`read_dir`]. Read them with
/// [`next_entry`](Self::next_entry), or as a `futures` `Stream` of
/// `io::Result<DirEntry>`.
///
/// Entries come in batches read on the blocking pool. Dropping a
/// `next_entry` future loses nothing: the batch it was waiting for is kept
/// for the next call.
pub struct ReadDir {
    handle: RuntimeHandle,
    /// `None` once the listing is exhausted (or failed in the pool).
    inner: Option<Lister>,
    buf: VecDeque<io::Result<DirEntry>>,
    pending: Option<JoinHandle<Batch>>,
    /// A batch was lost in the pool (shutdown, panic): the listing is
    /// incomplete, and every later call says so rather than end cleanly.
    cut: bool,
}

impl ReadDir {
    /// The next entry, or `None` at the end of the directory.
    pub async fn next_entry(&mut self) -> io::Result<Option<DirEntry>> {
        std::future::poll_fn(|cx| self.poll_next_entry(cx)).await
    }

    /// Polls for the next entry: `Ready(Ok(None))` at the end.
    pub fn poll_next_entry(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<DirEntry>>> {
        loop {
            if let Some(entry) = self.buf.pop_front() {
                return Poll::Ready(entry.map(Some));
            }
            if let Some(pending) = &mut self.pending {
                let res = std::task::ready!(Pin::new(pending).poll(cx));
                self.pending = None;
                match res {
                    Ok((inner, batch, more)) => {
                        self.buf = batch;
                        self.inner = more.then_some(inner);
                    }
                    Err(e) => {
                        self.cut = true;
                        return Poll::Ready(Err(e.into()));
                    }
                }
                continue;
            }
            let Some(mut inner) = self.inner.take() else {
                if self.cut {
                    return Poll::Ready(Err(io::Error::other(
                        "spargio: the directory listing was cut short (its blocking job failed)",
                    )));
                }
                return Poll::Ready(Ok(None));
            };
            self.pending = Some(self.handle.spawn_blocking(move || {
                let (batch, more) = inner.batch();
                if !more {
                    // `closedir` is a `close(2)`, which can wait (a FUSE
                    // mount answers RELEASEDIR synchronously): done here,
                    // not on the shard that takes the last batch.
                    inner.stream = Stream::Failed;
                }
                (inner, batch, more)
            }));
        }
    }
}

impl Drop for ReadDir {
    fn drop(&mut self) {
        // A listing dropped before its end closes its stream on the pool
        // too (see `poll_next_entry`), including one a batch in the pool
        // still holds: a finished job's output would otherwise be dropped
        // with its `JoinHandle`, here.
        if let Some(inner) = self.inner.take() {
            close_stream_on_pool(&self.handle, inner);
        }
        if let Some(pending) = self.pending.take() {
            let handle = self.handle.clone();
            drop(self.handle.spawn(async move {
                if let Ok((inner, _, _)) = pending.await {
                    close_stream_on_pool(&handle, inner);
                }
            }));
        }
    }
}

/// Closes a listing's directory stream on the blocking pool (`closedir`
/// can wait); the rest of the listing goes as usual.
fn close_stream_on_pool(handle: &RuntimeHandle, inner: Lister) {
    let Lister { stream, .. } = inner;
    if !matches!(stream, Stream::Failed) {
        drop(handle.spawn_blocking(move || drop(stream)));
    }
}

impl futures_core::Stream for ReadDir {
    type Item = io::Result<DirEntry>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_next_entry(cx).map(Result::transpose)
    }
}

impl fmt::Debug for ReadDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadDir")
            .field("buffered", &self.buf.len())
            .field("done", &(self.inner.is_none() && self.pending.is_none()))
            .finish_non_exhaustive()
    }
}

/// What a listing reads from, moved to the blocking pool and back for
/// each batch.
struct Lister {
    stream: Stream,
    /// The directory itself, shared with every entry.
    dir: SharedFd,
    /// The path given to [`read_dir`], for [`DirEntry::path`].
    root: PathBuf,
}

impl Lister {
    /// Reads up to [`BATCH`] entries; the flag says whether more may
    /// follow (false at the end, or after an error).
    fn batch(&mut self) -> (VecDeque<io::Result<DirEntry>>, bool) {
        let mut batch = VecDeque::with_capacity(BATCH);
        let stream = match self.stream.open() {
            Ok(stream) => stream,
            Err(e) => {
                batch.push_back(Err(e));
                return (batch, false);
            }
        };
        while batch.len() < BATCH {
            match stream.next() {
                Some(Ok((name, ino, file_type))) => batch.push_back(Ok(DirEntry {
                    path: self.root.join(OsStr::from_bytes(name.as_bytes())),
                    dir: self.dir.clone(),
                    name,
                    ino,
                    file_type,
                })),
                Some(Err(e)) => {
                    batch.push_back(Err(e));
                    return (batch, false);
                }
                None => return (batch, false),
            }
        }
        (batch, true)
    }
}

/// A listing's directory stream, opened on the pool by the first batch.
enum Stream {
    /// The copy of the directory's fd the stream will own.
    Unopened(OwnedFd),
    Open(DirStream),
    /// Opening failed (the error went out with the first batch).
    Failed,
}

impl Stream {
    /// The open stream, opening it first if need be (a blocking call).
    fn open(&mut self) -> io::Result<&mut DirStream> {
        match std::mem::replace(self, Stream::Failed) {
            Stream::Unopened(fd) => *self = Stream::Open(DirStream::open(fd)?),
            other => *self = other,
        }
        match self {
            Stream::Open(stream) => Ok(stream),
            _ => Err(io::Error::other(
                "spargio: the directory stream could not be opened",
            )),
        }
    }
}

/// An open `DIR*` stream: `readdir64` on the blocking pool, `closedir` on
/// drop.
struct DirStream(NonNull<libc::DIR>);

// SAFETY: the `DIR*` is owned by this wrapper alone, and a glibc directory
// stream may be used from any thread, one at a time: `next` and `drop`
// need `&mut self` (or ownership), and `&self` gives no access at all, so
// sharing a reference is harmless too.
unsafe impl Send for DirStream {}
// SAFETY: see `Send` above: nothing can be done through `&DirStream`.
unsafe impl Sync for DirStream {}

impl DirStream {
    /// Wraps `fd`, an open directory, in a stream that owns (and will
    /// close) it.
    fn open(fd: OwnedFd) -> io::Result<DirStream> {
        // SAFETY: `fd` is an open fd we own; on success the stream takes
        // it over (we give it up below), on failure it stays ours.
        let dir = unsafe { libc::fdopendir(fd.as_raw_fd()) };
        match NonNull::new(dir) {
            Some(dir) => {
                let _ = fd.into_raw_fd();
                Ok(DirStream(dir))
            }
            // Read errno before `fd` is closed.
            None => Err(io::Error::last_os_error()),
        }
    }

    /// The next entry other than `.` and `..` (its name, inode number and
    /// type if `d_type` gave one), an error, or `None` at the end.
    fn next(&mut self) -> Option<io::Result<(CString, u64, Option<FileType>)>> {
        loop {
            // SAFETY: errno is this thread's own; zeroing it lets a NULL
            // from `readdir64` tell the end (errno untouched) from an error.
            unsafe { *libc::__errno_location() = 0 };
            // SAFETY: `self.0` is an open stream that only we use.
            let ent = unsafe { libc::readdir64(self.0.as_ptr()) };
            if ent.is_null() {
                let err = io::Error::last_os_error();
                return (err.raw_os_error() != Some(0)).then_some(Err(err));
            }
            // The fields are read through the raw pointer, never a
            // reference to the whole `dirent64`, which glibc may allocate
            // shorter than its declared size.
            // SAFETY: `ent` is valid until this stream's next `readdir64`
            // or `closedir` (both need `&mut self`); `d_name` ends in a NUL.
            let (name, ino, d_type) = unsafe {
                let name = CStr::from_ptr((&raw const (*ent).d_name).cast());
                (name.to_owned(), (*ent).d_ino, (*ent).d_type)
            };
            if name.as_bytes() != b"." && name.as_bytes() != b".." {
                return Some(Ok((name, ino, file_type_of(d_type))));
            }
        }
    }
}

/// How many directory streams were closed on a shard thread (kept at 0),
/// and in all (only this module's test lists directories).
#[cfg(test)]
static CLOSED_ON_A_SHARD: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
#[cfg(test)]
static CLOSED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Drop for DirStream {
    fn drop(&mut self) {
        #[cfg(test)]
        CLOSED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        #[cfg(test)]
        if crate::shard::local::current().is_some() {
            CLOSED_ON_A_SHARD.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        // SAFETY: the stream is open and ours, and nothing uses it after
        // this; `closedir` also closes its fd.
        unsafe { libc::closedir(self.0.as_ptr()) };
    }
}

/// The type a `d_type` names; `None` for `DT_UNKNOWN` (the filesystem did
/// not say) or anything unexpected.
fn file_type_of(d_type: u8) -> Option<FileType> {
    let fmt = match d_type {
        libc::DT_REG => libc::S_IFREG,
        libc::DT_DIR => libc::S_IFDIR,
        libc::DT_LNK => libc::S_IFLNK,
        libc::DT_BLK => libc::S_IFBLK,
        libc::DT_CHR => libc::S_IFCHR,
        libc::DT_FIFO => libc::S_IFIFO,
        libc::DT_SOCK => libc::S_IFSOCK,
        _ => return None,
    };
    Some(FileType::from_mode(fmt))
}

/// One entry of a directory listing. It keeps the listed directory open
/// (until the last entry, the [`ReadDir`] and any op using it are gone):
/// [`metadata`](Self::metadata) looks the entry up by name in that
/// directory, wherever the directory has moved since.
#[derive(Clone)]
pub struct DirEntry {
    path: PathBuf,
    /// The directory the entry was listed in.
    dir: SharedFd,
    name: CString,
    ino: u64,
    /// From the listing's `d_type` when the filesystem gave one.
    file_type: Option<FileType>,
}

impl DirEntry {
    /// The full path: the directory given to [`read_dir`] joined with the
    /// entry's name. It is only a name: if the directory (or a parent) was
    /// renamed since the listing, it no longer leads to this entry.
    pub fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// The entry's name within its directory.
    pub fn file_name(&self) -> OsString {
        OsStr::from_bytes(self.name.as_bytes()).to_owned()
    }

    /// The inode number the listing reported.
    pub fn ino(&self) -> u64 {
        self.ino
    }

    /// The entry's type, not following symlinks. Usually known from the
    /// listing itself; otherwise found with `statx` (see
    /// [`metadata`](Self::metadata)).
    pub async fn file_type(&self) -> io::Result<FileType> {
        match self.file_type {
            Some(ft) => Ok(ft),
            None => Ok(self.metadata().await?.file_type()),
        }
    }

    /// The entry's metadata, not following symlinks: `statx` of its name
    /// relative to the listed directory, with `AT_SYMLINK_NOFOLLOW` (as
    /// `std::fs::DirEntry::metadata`), so it still finds this entry after
    /// the directory was renamed or the cwd changed.
    pub async fn metadata(&self) -> io::Result<Metadata> {
        ops::statx_at(&self.dir, self.name.clone(), libc::AT_SYMLINK_NOFOLLOW)
            .await
            .map(Metadata::from_statx)
    }
}

impl fmt::Debug for DirEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DirEntry").field(&self.path).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    /// Lists a directory of `n` files: to its end, and dropped after one
    /// entry (its stream open and a batch in hand), and dropped with a
    /// batch still in the pool.
    #[test]
    fn directory_streams_are_closed_off_the_shards() {
        let dir =
            std::env::temp_dir().join(format!("spargio-read-dir-close-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..(BATCH * 2 + 3) {
            std::fs::write(dir.join(format!("f{i}")), b"").unwrap();
        }
        // One pool thread, so a job holding it keeps a batch in the pool.
        let runtime = crate::Runtime::builder()
            .shards(1)
            .max_blocking_threads(1)
            .build()
            .unwrap();
        // On a shard, where the listings' own drops run.
        let on_shard = runtime.handle().spawn_pinned(crate::ShardId(0), {
            let dir = dir.clone();
            async move {
                let mut all = read_dir(&dir).await.unwrap();
                let mut listed = 0;
                while all.next_entry().await.unwrap().is_some() {
                    listed += 1;
                }
                drop(all);
                let mut part = read_dir(&dir).await.unwrap();
                part.next_entry().await.unwrap().unwrap();
                drop(part);
                let mut pending = read_dir(&dir).await.unwrap();
                let (release, held) = std::sync::mpsc::channel::<()>();
                let holder = crate::spawn_blocking(move || held.recv());
                let waker = std::task::Waker::noop();
                let _ = pending.poll_next_entry(&mut Context::from_waker(waker));
                assert!(pending.pending.is_some(), "a batch is in the pool");
                drop(pending);
                release.send(()).unwrap();
                holder.await.unwrap().unwrap();
                // All three streams were opened (each listing read a
                // batch); wait until all three are closed.
                while CLOSED.load(Ordering::Relaxed) < 3 {
                    crate::time::sleep(std::time::Duration::from_millis(1)).await;
                }
                listed
            }
        });
        let listed = runtime.block_on(on_shard).unwrap();
        drop(runtime);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(listed, BATCH * 2 + 3);
        assert_eq!(CLOSED_ON_A_SHARD.load(Ordering::Relaxed), 0);
    }
}
