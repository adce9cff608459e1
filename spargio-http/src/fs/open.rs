//! Opening what a request names for reading, without opening anything
//! that is not a regular file: opening a FIFO releases a writer waiting in
//! its own `open`, and opening a device can have side effects (a tape
//! rewinds, a modem hangs up), even if nothing is ever read.

use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

use spargio_rt::fs::{File, Metadata, OpenOptions, ResolveFlags};

/// A path to open, and how the kernel may resolve it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Location<'a> {
    /// The directory `path` is relative to; `None`: the current directory.
    pub(crate) dir: Option<&'a File>,
    pub(crate) path: &'a Path,
    /// Restrictions on the lookup (`openat2`'s `RESOLVE_*`), enforced by
    /// the kernel.
    pub(crate) resolve: ResolveFlags,
}

/// What a [`Location`] holds.
// The metadata stay inline: a `Found` is matched and taken apart as soon
// as it is returned, and boxing them would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Found {
    /// A regular file, open for reading (in blocking mode), and its
    /// metadata from the open file.
    File(File, Metadata),
    /// A directory (not opened).
    Dir,
    /// Anything else (a FIFO, a socket, a device), not opened.
    Other,
}

/// Looks at what `at` names and, if it is a regular file, opens it for
/// reading.
///
/// The sequence, and why it is the cheapest sound one (for a regular file
/// four ring ops, plus the `O_PATH` handle's close; a missing path stops
/// after the first). The opens are `openat2` when `at.resolve` has
/// restrictions (`ServeDir`), plain `openat` otherwise (`ServeFile`):
///
/// 1. `open(O_PATH)`: resolves the path, with `at.resolve`'s
///    restrictions, to the inode, without opening it: no driver `open`
///    runs, a FIFO gains no reader. It is also where a path that leaves
///    the root fails.
/// 2. `statx` of that handle (`AT_EMPTY_PATH`): its type. A directory or
///    anything but a regular file stops here. (A `statx` by path instead
///    would do for the type, but could not refuse a path out of the root
///    the way the `O_PATH` open does, so a directory there could not be
///    told from one outside.)
/// 3. `open(O_RDONLY | O_NONBLOCK)` of the same path with the same
///    restrictions. An `O_PATH` handle cannot be turned into a readable
///    file without going through `/proc` (a magic link), so the path is
///    resolved again. Should it now name something else (replaced in
///    between, which only someone writing under the root can do), the
///    restrictions still hold, `O_NONBLOCK` keeps even a FIFO's open from
///    waiting, and:
/// 4. `statx` of the open file: it must still be a regular file; its
///    metadata are the ones the response uses. Then `O_NONBLOCK` is
///    cleared (see [`clear_nonblock`]).
pub(crate) async fn open(at: Location<'_>) -> io::Result<Found> {
    let handle = open_with(at, libc::O_PATH).await?;
    let kind = handle.metadata().await?.file_type();
    drop(handle);
    if kind.is_dir() {
        return Ok(Found::Dir);
    }
    if !kind.is_file() {
        return Ok(Found::Other);
    }
    // O_NOCTTY: a terminal swapped in meanwhile never becomes the
    // process's controlling terminal. O_LARGEFILE: files over 2 GiB open
    // on 32-bit targets too.
    let file = open_with(at, libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_LARGEFILE).await?;
    let meta = file.metadata().await?;
    if !meta.is_file() {
        return Ok(Found::Other);
    }
    clear_nonblock(&file)?;
    Ok(Found::File(file, meta))
}

/// Opens the directory `at` names, for reading its entries. `O_DIRECTORY`
/// makes the kernel refuse anything else (`ENOTDIR`) before opening it,
/// so a FIFO or a device swapped in is never opened.
pub(crate) async fn open_dir(at: Location<'_>) -> io::Result<File> {
    open_with(at, libc::O_DIRECTORY | libc::O_NOCTTY).await
}

/// Opens `at` read-only with extra `flags`.
async fn open_with(at: Location<'_>, flags: i32) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.read(true).custom_flags(flags).resolve(at.resolve);
    match at.dir {
        Some(dir) => opts.open_at(dir, at.path).await,
        None => opts.open(at.path).await,
    }
}

/// Clears `O_NONBLOCK` on a regular file opened with it.
///
/// Left set, io_uring takes the file to be fine with non-blocking I/O and
/// runs its reads inline on the shard's thread with `IOCB_NOWAIT`; a
/// filesystem that does not really support that (FUSE, some network
/// filesystems) may then block the shard instead of failing with `EAGAIN`.
/// Without it, a read that would block goes to io_uring's workers.
pub(crate) fn clear_nonblock(file: &File) -> io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: `fd` is open for as long as `file` lives, which outlasts the
    // call; F_GETFL takes no pointer.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    if flags & libc::O_NONBLOCK != 0 {
        // SAFETY: as above; F_SETFL takes an integer, no pointer.
        if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    use super::*;

    fn status_flags(file: &File) -> i32 {
        // SAFETY: F_GETFL on an fd `file` keeps open; no pointer is passed.
        unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFL) }
    }

    fn here(path: &Path) -> Location<'_> {
        Location {
            dir: None,
            path,
            resolve: ResolveFlags::empty(),
        }
    }

    /// The file handed to the response body reads in blocking mode.
    /// (The old `respond::open` left `O_NONBLOCK` set: failed there.)
    #[spargio_rt::test]
    async fn fs_served_file_is_not_non_blocking() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f.txt");
        std::fs::write(&path, "data").unwrap();
        let Found::File(file, meta) = open(here(&path)).await.unwrap() else {
            panic!("a regular file");
        };
        assert_eq!(meta.len(), 4);
        assert_eq!(status_flags(&file) & libc::O_NONBLOCK, 0);
        assert_eq!(status_flags(&file) & libc::O_ACCMODE, libc::O_RDONLY);
        // Relative to a directory, confined, too.
        let dir = File::open_dir(tmp.path()).await.unwrap();
        let at = Location {
            dir: Some(&dir),
            path: Path::new("f.txt"),
            resolve: ResolveFlags::BENEATH,
        };
        let Found::File(file, _) = open(at).await.unwrap() else {
            panic!("a regular file");
        };
        assert_eq!(status_flags(&file) & libc::O_NONBLOCK, 0);
    }

    #[spargio_rt::test]
    async fn fs_clear_nonblock_clears_only_that() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f.txt");
        std::fs::write(&path, "data").unwrap();
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOATIME)
            .open(&path)
            .await
            .unwrap();
        assert_ne!(status_flags(&file) & libc::O_NONBLOCK, 0);
        clear_nonblock(&file).unwrap();
        let flags = status_flags(&file);
        assert_eq!(flags & libc::O_NONBLOCK, 0);
        assert_ne!(flags & libc::O_NOATIME, 0);
        // Idempotent.
        clear_nonblock(&file).unwrap();
    }

    #[spargio_rt::test]
    async fn fs_kinds() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(matches!(open(here(tmp.path())).await, Ok(Found::Dir)));
        let _sock = std::os::unix::net::UnixListener::bind(tmp.path().join("s")).unwrap();
        let sock = tmp.path().join("s");
        assert!(matches!(open(here(&sock)).await, Ok(Found::Other)));
        let missing = tmp.path().join("missing");
        let err = open(here(&missing)).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
