//! [`OpenOptions`]: how to open a file, as in `std::fs::OpenOptions`.

use std::io;
use std::path::Path;

use super::blocking::cstr;
use super::file::File;
use super::ops;

/// Options for opening a file, mirroring [`std::fs::OpenOptions`]; opening
/// is one `IORING_OP_OPENAT` (always with `O_CLOEXEC`).
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

    /// Open for appending (`O_APPEND`): writes at the current position go to
    /// the end of the file. Implies write access.
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

    /// Opens `path` with these options.
    ///
    /// Fails with `InvalidInput` for contradictory options (no access mode,
    /// `create`/`truncate` without write access, `truncate` with `append`)
    /// or a path containing a NUL byte, otherwise with the kernel's error.
    pub async fn open(&self, path: impl AsRef<Path>) -> io::Result<File> {
        let flags = self.flags()?;
        let path = cstr(path.as_ref())?;
        let fd = ops::open(path, flags, self.mode).await?;
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
