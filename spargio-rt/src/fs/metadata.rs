//! [`Metadata`] and [`FileType`], built from `statx`.

use std::fmt;
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What kind of file an entry is: the `S_IFMT` bits of its mode.
///
/// ```
/// spargio_rt::run(|_| async {
///     let ft = spargio_rt::fs::metadata("/").await.unwrap().file_type();
///     assert!(ft.is_dir() && !ft.is_file() && !ft.is_symlink());
/// })
/// .unwrap();
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileType {
    fmt: u32,
}

impl FileType {
    pub(crate) fn from_mode(mode: u32) -> Self {
        FileType {
            fmt: mode & libc::S_IFMT,
        }
    }

    /// Whether it is a regular file.
    pub fn is_file(&self) -> bool {
        self.fmt == libc::S_IFREG
    }

    /// Whether it is a directory.
    pub fn is_dir(&self) -> bool {
        self.fmt == libc::S_IFDIR
    }

    /// Whether it is a symbolic link (only seen through
    /// [`symlink_metadata`](super::symlink_metadata) and directory entries).
    pub fn is_symlink(&self) -> bool {
        self.fmt == libc::S_IFLNK
    }

    /// Whether it is a block device.
    pub fn is_block_device(&self) -> bool {
        self.fmt == libc::S_IFBLK
    }

    /// Whether it is a character device.
    pub fn is_char_device(&self) -> bool {
        self.fmt == libc::S_IFCHR
    }

    /// Whether it is a FIFO (named pipe).
    pub fn is_fifo(&self) -> bool {
        self.fmt == libc::S_IFIFO
    }

    /// Whether it is a Unix socket.
    pub fn is_socket(&self) -> bool {
        self.fmt == libc::S_IFSOCK
    }
}

impl From<std::fs::FileType> for FileType {
    fn from(ft: std::fs::FileType) -> Self {
        let fmt = if ft.is_file() {
            libc::S_IFREG
        } else if ft.is_dir() {
            libc::S_IFDIR
        } else if ft.is_symlink() {
            libc::S_IFLNK
        } else if ft.is_block_device() {
            libc::S_IFBLK
        } else if ft.is_char_device() {
            libc::S_IFCHR
        } else if ft.is_fifo() {
            libc::S_IFIFO
        } else if ft.is_socket() {
            libc::S_IFSOCK
        } else {
            0
        };
        FileType { fmt }
    }
}

impl fmt::Debug for FileType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.fmt {
            libc::S_IFREG => "file",
            libc::S_IFDIR => "dir",
            libc::S_IFLNK => "symlink",
            libc::S_IFBLK => "block device",
            libc::S_IFCHR => "char device",
            libc::S_IFIFO => "fifo",
            libc::S_IFSOCK => "socket",
            _ => "unknown",
        };
        f.debug_tuple("FileType").field(&kind).finish()
    }
}

/// Information about a file, from `statx(2)`: what
/// [`metadata`](super::metadata), [`symlink_metadata`](super::symlink_metadata)
/// and [`File::metadata`](super::File::metadata) return.
///
/// ```
/// spargio_rt::run(|_| async {
///     let m = spargio_rt::fs::metadata("Cargo.toml").await.unwrap();
///     assert!(m.is_file() && m.len() > 0);
///     assert!(m.modified().is_ok());
/// })
/// .unwrap();
/// ```
#[derive(Clone)]
pub struct Metadata {
    stx: libc::statx,
}

impl Metadata {
    pub(crate) fn from_statx(stx: libc::statx) -> Self {
        Metadata { stx }
    }

    /// The file's type.
    pub fn file_type(&self) -> FileType {
        FileType::from_mode(self.mode())
    }

    /// Whether it is a regular file.
    pub fn is_file(&self) -> bool {
        self.file_type().is_file()
    }

    /// Whether it is a directory.
    pub fn is_dir(&self) -> bool {
        self.file_type().is_dir()
    }

    /// Whether it is a symbolic link (only from
    /// [`symlink_metadata`](super::symlink_metadata)).
    pub fn is_symlink(&self) -> bool {
        self.file_type().is_symlink()
    }

    /// Size in bytes.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u64 {
        self.stx.stx_size
    }

    /// The permissions, as `std`'s type. As in `std`, its `mode()` is the
    /// full `st_mode` (type bits included); mask with `0o7777` for the
    /// permission bits alone.
    pub fn permissions(&self) -> std::fs::Permissions {
        std::fs::Permissions::from_mode(self.mode())
    }

    /// The full mode: type bits and permission bits (`st_mode`).
    pub fn mode(&self) -> u32 {
        u32::from(self.stx.stx_mode)
    }

    /// Last modification time.
    pub fn modified(&self) -> io::Result<SystemTime> {
        self.time(self.stx.stx_mtime)
    }

    /// Last access time.
    pub fn accessed(&self) -> io::Result<SystemTime> {
        self.time(self.stx.stx_atime)
    }

    /// Creation (birth) time; an `Unsupported` error where the filesystem
    /// does not record it.
    pub fn created(&self) -> io::Result<SystemTime> {
        if self.stx.stx_mask & libc::STATX_BTIME == 0 {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the creation time is not available on this filesystem",
            ));
        }
        self.time(self.stx.stx_btime)
    }

    /// Last status change time (`st_ctime`).
    pub fn changed(&self) -> io::Result<SystemTime> {
        self.time(self.stx.stx_ctime)
    }

    /// Inode number.
    pub fn ino(&self) -> u64 {
        self.stx.stx_ino
    }

    /// The device the file lives on (`st_dev`).
    pub fn dev(&self) -> u64 {
        libc::makedev(self.stx.stx_dev_major, self.stx.stx_dev_minor)
    }

    /// The device a special file stands for (`st_rdev`).
    pub fn rdev(&self) -> u64 {
        libc::makedev(self.stx.stx_rdev_major, self.stx.stx_rdev_minor)
    }

    /// Number of hard links.
    pub fn nlink(&self) -> u64 {
        u64::from(self.stx.stx_nlink)
    }

    /// Owner's user id.
    pub fn uid(&self) -> u32 {
        self.stx.stx_uid
    }

    /// Owner's group id.
    pub fn gid(&self) -> u32 {
        self.stx.stx_gid
    }

    /// Preferred I/O block size.
    pub fn blksize(&self) -> u64 {
        u64::from(self.stx.stx_blksize)
    }

    /// Number of 512-byte blocks allocated.
    pub fn blocks(&self) -> u64 {
        self.stx.stx_blocks
    }

    /// A timestamp as the kernel gave it. As std does, only the birth
    /// time is refused when its mask bit is clear: some FUSE and network
    /// filesystems leave the other bits out yet fill the fields.
    fn time(&self, ts: libc::statx_timestamp) -> io::Result<SystemTime> {
        let overflow = || io::Error::other("timestamp out of SystemTime's range");
        let nanos = Duration::from_nanos(u64::from(ts.tv_nsec));
        let base = if ts.tv_sec >= 0 {
            UNIX_EPOCH.checked_add(Duration::from_secs(ts.tv_sec as u64))
        } else {
            UNIX_EPOCH.checked_sub(Duration::from_secs(ts.tv_sec.unsigned_abs()))
        };
        base.and_then(|t| t.checked_add(nanos)).ok_or_else(overflow)
    }
}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metadata")
            .field("file_type", &self.file_type())
            .field("len", &self.len())
            .field("mode", &format_args!("{:#o}", self.mode()))
            .field("ino", &self.ino())
            .field("dev", &self.dev())
            .field("nlink", &self.nlink())
            .field("uid", &self.uid())
            .field("gid", &self.gid())
            .field("modified", &self.modified().ok())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::Metadata;

    #[test]
    fn times_come_without_their_mask_bits_as_std_gives_them_but_birth_does_not() {
        // SAFETY: statx is plain integers; all zeroes is a valid value.
        let mut stx: libc::statx = unsafe { std::mem::zeroed() };
        stx.stx_mask = libc::STATX_TYPE | libc::STATX_MODE;
        stx.stx_mtime.tv_sec = 1_700_000_000;
        let md = Metadata::from_statx(stx);
        let mtime = md.modified().unwrap();
        assert_eq!(
            mtime
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            1_700_000_000
        );
        assert!(md.accessed().is_ok());
        assert!(md.changed().is_ok());
        assert_eq!(
            md.created().unwrap_err().kind(),
            std::io::ErrorKind::Unsupported
        );
    }
}
