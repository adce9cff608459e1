//! Whole-file helpers and the single-call path functions (`read`, `write`,
//! `copy`, `rename`, `metadata`, ...).

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::blocking::{asyncify, cstr};
use super::file::{read_to_end_inner, File};
use super::metadata::Metadata;
use super::open_options::OpenOptions;
use super::ops::{self, PathOp};

/// How much [`copy`] moves per read/write pair.
const COPY_CHUNK: usize = 256 * 1024;

/// Reads a whole file into a `Vec`.
///
/// The file is opened, sized with `statx`, and read into a buffer of that
/// size (growing if the file grows meanwhile). Fails with `NotFound` if it
/// does not exist, `IsADirectory` for a directory.
///
/// ```no_run
/// # spargio_rt::run(|_| async {
/// let bytes = spargio_rt::fs::read("/etc/hostname").await?;
/// # std::io::Result::Ok(()) }).unwrap().unwrap();
/// ```
pub async fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    let file = File::open(path).await?;
    let hint = ops::statx_fd(file.shared_fd())
        .await
        .ok()
        .and_then(|s| usize::try_from(s.stx_size).ok());
    let (res, buf) = read_to_end_inner(file.shared_fd(), Vec::new(), 0, hint).await;
    res.map(|_| buf)
}

/// Reads a whole file into a `String`; `InvalidData` if it is not UTF-8.
pub async fn read_to_string(path: impl AsRef<Path>) -> io::Result<String> {
    let bytes = read(path).await?;
    String::from_utf8(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Writes `contents` as the whole file, creating it if needed and
/// truncating it if it exists.
///
/// `contents` is copied into an owned buffer for the kernel; to write a
/// buffer you own without the copy, use [`File::write_all_at`].
pub async fn write(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> io::Result<()> {
    let buf = contents.as_ref().to_vec();
    let file = File::create(path).await?;
    file.write_all_at(buf, 0).await.0
}

/// Copies the contents and permission bits of the file `from` to `to`,
/// creating or truncating `to`; returns the number of bytes copied.
///
/// Fails with `InvalidInput` if `from` is not a regular file, or if `to`
/// is the same file as `from` (the same path, a hard link or a symlink to
/// it), which is left as it was: truncating the destination would have
/// emptied the source.
pub async fn copy(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<u64> {
    let src = File::open(from).await?;
    let meta = src.metadata().await?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the source path is not a regular file",
        ));
    }
    let perm = meta.permissions();
    // Opened without `O_TRUNC`: the destination is emptied only once it is
    // known not to be the source itself.
    let dst = OpenOptions::new()
        .write(true)
        .create(true)
        .mode(perm.mode())
        .open(to)
        .await?;
    let dst_meta = dst.metadata().await?;
    if (dst_meta.dev(), dst_meta.ino()) == (meta.dev(), meta.ino()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the source and destination are the same file",
        ));
    }
    if dst_meta.is_file() && dst_meta.len() > 0 {
        dst.set_len(0).await?;
    }
    if dst_meta.is_file() && dst_meta.permissions().mode() != perm.mode() {
        // An existing destination keeps its mode through O_CREAT, and a
        // new one's is cut by the umask.
        dst.set_permissions(perm).await?;
    }
    let chunk = usize::try_from(meta.len()).map_or(COPY_CHUNK, |n| n.clamp(4096, COPY_CHUNK));
    let mut buf = Vec::with_capacity(chunk);
    let mut pos = 0u64;
    loop {
        buf.clear();
        let (res, b) = src.read_at(buf, pos).await;
        buf = b;
        let n = match res {
            Ok(0) => return Ok(pos),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        // Loud even inside `quiet_writes`: another read follows, so a
        // finished write must wake the task.
        let (res, b) = crate::io::loud(dst.write_all_at(buf, pos)).await;
        buf = b;
        res?;
        pos += n as u64;
    }
}

/// Removes a file or symlink (`unlinkat`). Fails with `IsADirectory` (or
/// `PermissionDenied`) for a directory; see [`remove_dir`](super::remove_dir).
pub async fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    let path = cstr(path.as_ref())?;
    PathOp::Unlink { path, flags: 0 }.run().await
}

/// Renames `from` to `to` (`renameat`), replacing `to` if it exists (and
/// is not a non-empty directory).
pub async fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    let from = cstr(from.as_ref())?;
    let to = cstr(to.as_ref())?;
    PathOp::Rename { from, to }.run().await
}

/// Creates a hard link `link` to `original` (`linkat`). Fails with
/// `AlreadyExists` if `link` exists.
pub async fn hard_link(original: impl AsRef<Path>, link: impl AsRef<Path>) -> io::Result<()> {
    let from = cstr(original.as_ref())?;
    let to = cstr(link.as_ref())?;
    PathOp::Link { from, to }.run().await
}

/// Creates a symbolic link `link` pointing at `original` (`symlinkat`).
/// `original` is stored as given and need not exist.
pub async fn symlink(original: impl AsRef<Path>, link: impl AsRef<Path>) -> io::Result<()> {
    let target = cstr(original.as_ref())?;
    let link = cstr(link.as_ref())?;
    PathOp::Symlink { target, link }.run().await
}

/// Metadata of the file at `path`, following symlinks (`statx`).
pub async fn metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    let path = cstr(path.as_ref())?;
    ops::statx_path(path, 0).await.map(Metadata::from_statx)
}

/// Metadata of `path` itself, not following a final symlink (`statx` with
/// `AT_SYMLINK_NOFOLLOW`).
pub async fn symlink_metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    let path = cstr(path.as_ref())?;
    ops::statx_path(path, libc::AT_SYMLINK_NOFOLLOW)
        .await
        .map(Metadata::from_statx)
}

/// Whether `path` exists (following symlinks): `Ok(false)` for
/// `NotFound`, the error for anything else that stops the check
/// (`PermissionDenied`, ...).
pub async fn try_exists(path: impl AsRef<Path>) -> io::Result<bool> {
    match metadata(path).await {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Changes the permission bits of `path` (`chmod`, on the blocking pool).
pub async fn set_permissions(path: impl AsRef<Path>, perm: std::fs::Permissions) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    asyncify(move || std::fs::set_permissions(path, perm)).await
}

/// The absolute path with every symlink, `.` and `..` resolved
/// (`realpath`, on the blocking pool).
pub async fn canonicalize(path: impl AsRef<Path>) -> io::Result<PathBuf> {
    let path = path.as_ref().to_owned();
    asyncify(move || std::fs::canonicalize(path)).await
}

/// Where the symbolic link `path` points (`readlink`, on the blocking
/// pool). Fails with `InvalidInput` if `path` is not a symlink.
pub async fn read_link(path: impl AsRef<Path>) -> io::Result<PathBuf> {
    let path = path.as_ref().to_owned();
    asyncify(move || std::fs::read_link(path)).await
}
