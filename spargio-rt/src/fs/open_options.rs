//! [`OpenOptions`]: how to open a file, as in `std::fs::OpenOptions`.

use std::io;
use std::path::Path;

use super::blocking::cstr;
use super::file::File;
use super::ops;
use super::resolve::ResolveFlags;

/// Options for opening a file, mirroring [`std::fs::OpenOptions`]; opening
/// is one `IORING_OP_OPENAT` (always with `O_CLOEXEC`), or one
/// `IORING_OP_OPENAT2` with [`resolve`](Self::resolve) flags.
///
/// Beyond `std`, a file can be opened relative to a directory handle
/// ([`open_at`](Self::open_at)), with the kernel confining how the path
/// resolves ([`resolve`](Self::resolve)).
///
/// ```
/// use spargio_rt::fs::OpenOptions;
///
/// spargio_rt::run(|_| async {
///     let path = std::env::temp_dir().join(format!("spargio-oo-doc-{}", std::process::id()));
///     let f = OpenOptions::new().write(true).create(true).truncate(true).open(&path).await?;
///     let (res, _) = f.write_all_at(b"abc".to_vec(), 0).await;
///     res?;
///     spargio_rt::fs::remove_file(&path).await
/// })
/// .unwrap()
/// .unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct OpenOptions {
    read: bool,
    write: bool,
    append: bool,
    truncate: bool,
    create: bool,
    create_new: bool,
    mode: u32,
    custom_flags: i32,
    resolve: ResolveFlags,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl OpenOptions {
    /// Options with everything off and mode `0o666` (before the umask).
    pub fn new() -> Self {
        OpenOptions {
            read: false,
            write: false,
            append: false,
            truncate: false,
            create: false,
            create_new: false,
            mode: 0o666,
            custom_flags: 0,
            resolve: ResolveFlags::empty(),
        }
    }

    /// Open for reading.
    pub fn read(&mut self, read: bool) -> &mut Self {
        self.read = read;
        self
    }

    /// Open for writing.
    pub fn write(&mut self, write: bool) -> &mut Self {
        self.write = write;
        self
    }

    /// Open for appending (`O_APPEND`): every write goes to the end of the
    /// file, positional ones ([`File::write_at`]) included. Implies write
    /// access.
    pub fn append(&mut self, append: bool) -> &mut Self {
        self.append = append;
        self
    }

    /// Truncate an existing file to length 0 (`O_TRUNC`); needs write access.
    pub fn truncate(&mut self, truncate: bool) -> &mut Self {
        self.truncate = truncate;
        self
    }

    /// Create the file if it does not exist (`O_CREAT`); needs write or
    /// append access.
    pub fn create(&mut self, create: bool) -> &mut Self {
        self.create = create;
        self
    }

    /// Create the file, failing with `AlreadyExists` if it exists
    /// (`O_CREAT | O_EXCL`); `create` and `truncate` are then ignored.
    pub fn create_new(&mut self, create_new: bool) -> &mut Self {
        self.create_new = create_new;
        self
    }

    /// The permission bits a newly created file gets (before the umask).
    pub fn mode(&mut self, mode: u32) -> &mut Self {
        self.mode = mode;
        self
    }

    /// Extra `open(2)` flags (`libc::O_NOFOLLOW`, `libc::O_DIRECT`, ...).
    /// The access-mode bits (`O_ACCMODE`) are ignored; use `read`/`write`.
    pub fn custom_flags(&mut self, flags: i32) -> &mut Self {
        self.custom_flags = flags;
        self
    }

    /// How the kernel may resolve the path (`openat2(2)`'s `RESOLVE_*`
    /// flags; default none). With any flag set, opening uses
    /// `IORING_OP_OPENAT2` (Linux 5.6+), so the restriction holds however
    /// the tree changes during the lookup.
    ///
    /// `openat2` is stricter than `open(2)` about flags: unknown bits in
    /// [`custom_flags`](Self::custom_flags) fail with `InvalidInput`
    /// (`EINVAL`) instead of being ignored. The two cases `open(2)`
    /// tolerates silently are handled here as `open(2)` does: the
    /// [`mode`](Self::mode) is only passed when creating, and with
    /// `O_PATH` every flag but `O_DIRECTORY`, `O_NOFOLLOW` and `O_CLOEXEC`
    /// is dropped.
    ///
    /// With [`ResolveFlags::BENEATH`] or [`ResolveFlags::IN_ROOT`], an
    /// `EAGAIN` from the kernel (a rename or mount raced a `..` in the
    /// lookup, and the kernel gave up rather than risk a wrong answer) is
    /// retried a few times before it is returned.
    ///
    /// ```
    /// use spargio_rt::fs::{File, OpenOptions, ResolveFlags};
    ///
    /// spargio_rt::run(|_| async {
    ///     let root = std::env::temp_dir().join(format!("spargio-resolve-doc-{}", std::process::id()));
    ///     spargio_rt::fs::create_dir_all(&root).await?;
    ///     spargio_rt::fs::write(root.join("page.html"), b"<p>hi</p>").await?;
    ///     // A symlink pointing out of the directory ...
    ///     let _ = spargio_rt::fs::remove_file(root.join("escape")).await;
    ///     spargio_rt::fs::symlink("/etc/hostname", root.join("escape")).await?;
    ///
    ///     let dir = File::open_dir(&root).await?;
    ///     let mut opts = OpenOptions::new();
    ///     opts.read(true).resolve(ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS);
    ///     assert!(opts.open_at(&dir, "page.html").await.is_ok());
    ///     // ... cannot be followed: the kernel refuses with EXDEV.
    ///     let err = opts.open_at(&dir, "escape").await.unwrap_err();
    ///     assert_eq!(err.raw_os_error(), Some(libc::EXDEV));
    ///     spargio_rt::fs::remove_dir_all(&root).await
    /// })
    /// .unwrap()
    /// .unwrap();
    /// ```
    pub fn resolve(&mut self, flags: ResolveFlags) -> &mut Self {
        self.resolve = flags;
        self
    }

    /// Opens `path` with these options; a relative `path` starts from the
    /// current directory.
    ///
    /// Fails with `InvalidInput` for contradictory options (no access mode,
    /// `create`/`truncate` without write access, `truncate` with `append`)
    /// or a path containing a NUL byte, otherwise with the kernel's error.
    pub async fn open(&self, path: impl AsRef<Path>) -> io::Result<File> {
        self.open_from(None, path.as_ref()).await
    }

    /// Opens `path` relative to the directory `dir` (`openat(2)` /
    /// `openat2(2)` with `dir` as the `dirfd`); an absolute `path` ignores
    /// `dir`, unless [`resolve`](Self::resolve) flags forbid leaving it.
    ///
    /// `dir` is any open directory: one opened with [`File::open_dir`]
    /// (`O_PATH`, needs no read permission) or for reading. It stays open
    /// until the kernel has finished with the open, even if the returned
    /// future is dropped early. Errors as for [`open`](Self::open); a
    /// `dir` that is not a directory gives `NotADirectory` (for a relative
    /// `path`).
    ///
    /// ```
    /// use spargio_rt::fs::{File, OpenOptions};
    ///
    /// spargio_rt::run(|_| async {
    ///     let root = std::env::temp_dir().join(format!("spargio-open-at-doc-{}", std::process::id()));
    ///     spargio_rt::fs::create_dir_all(root.join("sub")).await?;
    ///     let dir = File::open_dir(&root).await?;
    ///     let f = OpenOptions::new().write(true).create(true).open_at(&dir, "sub/new.txt").await?;
    ///     let (res, _) = f.write_all_at(b"made here".to_vec(), 0).await;
    ///     res?;
    ///     assert_eq!(spargio_rt::fs::read(root.join("sub/new.txt")).await?, b"made here");
    ///     spargio_rt::fs::remove_dir_all(&root).await
    /// })
    /// .unwrap()
    /// .unwrap();
    /// ```
    pub async fn open_at(&self, dir: &File, path: impl AsRef<Path>) -> io::Result<File> {
        self.open_from(Some(dir), path.as_ref()).await
    }

    /// Opens `path` relative to `dir` (the cwd when `None`): `openat`
    /// without resolve flags, `openat2` with them.
    async fn open_from(&self, dir: Option<&File>, path: &Path) -> io::Result<File> {
        let flags = self.flags()?;
        let path = cstr(path)?;
        let dir = dir.map(|d| d.shared_fd().clone());
        let fd = if self.resolve.is_empty() {
            ops::open(dir, path, flags, self.mode).await?
        } else {
            let (flags, mode) = openat2_flags(flags, self.mode);
            ops::open2(dir, path, flags, mode, self.resolve.bits()).await?
        };
        Ok(File::from_owned(fd))
    }

    /// The `open(2)` flags, checked as `std` checks them.
    fn flags(&self) -> io::Result<i32> {
        let invalid = |msg| io::Error::new(io::ErrorKind::InvalidInput, msg);
        let access = match (self.read, self.write, self.append) {
            (true, false, false) => libc::O_RDONLY,
            (false, true, false) => libc::O_WRONLY,
            (true, true, false) => libc::O_RDWR,
            (false, _, true) => libc::O_WRONLY | libc::O_APPEND,
            (true, _, true) => libc::O_RDWR | libc::O_APPEND,
            (false, false, false) => {
                return Err(invalid(
                    "no access mode: set read, write or append (or several)",
                ))
            }
        };
        if !self.write && !self.append && (self.truncate || self.create || self.create_new) {
            return Err(invalid(
                "creating or truncating needs write or append access",
            ));
        }
        if self.append && self.truncate && !self.create_new {
            return Err(invalid("truncate and append cannot be combined"));
        }
        let creation = match (self.create, self.truncate, self.create_new) {
            (_, _, true) => libc::O_CREAT | libc::O_EXCL,
            (false, false, false) => 0,
            (true, false, false) => libc::O_CREAT,
            (false, true, false) => libc::O_TRUNC,
            (true, true, false) => libc::O_CREAT | libc::O_TRUNC,
        };
        Ok(access | creation | (self.custom_flags & !libc::O_ACCMODE) | libc::O_CLOEXEC)
    }
}

/// The flags and mode `open(2)` would act on, for `openat2`, which refuses
/// what `open(2)` ignores: a mode when nothing is created, mode bits
/// above `0o7777` (a mode copied from metadata carries the file type),
/// and flags beside `O_PATH` other than the few that mean something with
/// it.
fn openat2_flags(flags: i32, mode: u32) -> (i32, u32) {
    const O_PATH_FLAGS: i32 = libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    let flags = if flags & libc::O_PATH != 0 {
        flags & O_PATH_FLAGS
    } else {
        flags
    };
    // O_TMPFILE includes O_DIRECTORY's bit, so test for all of it.
    let creates = flags & libc::O_CREAT != 0 || flags & libc::O_TMPFILE == libc::O_TMPFILE;
    (flags, if creates { mode & 0o7777 } else { 0 })
}

#[cfg(test)]
mod tests {
    use super::openat2_flags;

    #[test]
    fn openat2_gets_only_what_open_would_use() {
        let cloexec = libc::O_CLOEXEC;
        // A mode only when creating.
        assert_eq!(openat2_flags(cloexec, 0o666), (cloexec, 0));
        let create = libc::O_WRONLY | libc::O_CREAT | cloexec;
        assert_eq!(openat2_flags(create, 0o640), (create, 0o640));
        // Only permission bits, as open(2) keeps (a mode from metadata
        // carries the file type, which openat2 refuses).
        assert_eq!(openat2_flags(create, 0o104_755), (create, 0o4755));
        let tmp = libc::O_RDWR | libc::O_TMPFILE | cloexec;
        assert_eq!(openat2_flags(tmp, 0o600), (tmp, 0o600));
        assert_eq!(openat2_flags(libc::O_DIRECTORY | cloexec, 0o666).1, 0);
        // O_PATH keeps only the flags that mean something with it.
        let path = libc::O_PATH | libc::O_DIRECTORY | libc::O_NONBLOCK | libc::O_NOCTTY | cloexec;
        assert_eq!(
            openat2_flags(path, 0o666),
            (libc::O_PATH | libc::O_DIRECTORY | cloexec, 0)
        );
    }
}
