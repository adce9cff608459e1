//! Listing a directory: [`read_dir`], [`ReadDir`] and [`DirEntry`].
//!
//! io_uring has no `getdents` opcode, so the directory is read on the
//! blocking pool, a batch of entries at a time.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt;
use std::future::Future;
use std::io;
use std::os::unix::fs::DirEntryExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use super::blocking::{asyncify, no_runtime};
use super::metadata::{FileType, Metadata};
use super::path_ops::symlink_metadata;
use crate::{JoinHandle, RuntimeHandle};

/// How many entries one trip to the blocking pool reads.
const BATCH: usize = 64;

type Batch = (std::fs::ReadDir, VecDeque<io::Result<DirEntry>>, bool);

/// Opens the directory `path` for listing (on the blocking pool). Fails
/// with `NotFound` if it does not exist and `NotADirectory` if it is not a
/// directory. The entries `.` and `..` are not listed.
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
    let path = path.as_ref().to_owned();
    let inner = asyncify(move || std::fs::read_dir(path)).await?;
    Ok(ReadDir {
        handle,
        inner: Some(inner),
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
    inner: Option<std::fs::ReadDir>,
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
                let mut batch = VecDeque::with_capacity(BATCH);
                let mut more = true;
                while batch.len() < BATCH {
                    match inner.next() {
                        Some(entry) => batch.push_back(entry.map(DirEntry::from_std)),
                        None => {
                            more = false;
                            break;
                        }
                    }
                }
                (inner, batch, more)
            }));
        }
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

/// One entry of a directory listing.
#[derive(Clone)]
pub struct DirEntry {
    path: PathBuf,
    name: OsString,
    ino: u64,
    /// From the listing's `d_type` when the filesystem gave one.
    file_type: Option<FileType>,
}

impl DirEntry {
    fn from_std(entry: std::fs::DirEntry) -> DirEntry {
        DirEntry {
            path: entry.path(),
            name: entry.file_name(),
            ino: entry.ino(),
            file_type: entry.file_type().ok().map(FileType::from),
        }
    }

    /// The full path: the directory given to [`read_dir`] joined with the
    /// entry's name.
    pub fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// The entry's name within its directory.
    pub fn file_name(&self) -> OsString {
        self.name.clone()
    }

    /// The inode number the listing reported.
    pub fn ino(&self) -> u64 {
        self.ino
    }

    /// The entry's type, not following symlinks. Usually known from the
    /// listing itself; otherwise found with `statx`.
    pub async fn file_type(&self) -> io::Result<FileType> {
        match self.file_type {
            Some(ft) => Ok(ft),
            None => Ok(self.metadata().await?.file_type()),
        }
    }

    /// The entry's metadata, not following symlinks (`statx` with
    /// `AT_SYMLINK_NOFOLLOW`, as `std::fs::DirEntry::metadata`).
    pub async fn metadata(&self) -> io::Result<Metadata> {
        symlink_metadata(&self.path).await
    }
}

impl fmt::Debug for DirEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DirEntry").field(&self.path).finish()
    }
}
