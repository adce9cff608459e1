//! Creating and removing directories.

use std::io;
use std::path::Path;

use super::blocking::{asyncify, cstr};
use super::ops::{self, PathOp};

/// Creates directories with a chosen mode, optionally with their missing
/// parents, mirroring [`std::fs::DirBuilder`].
///
/// ```
/// use spargio_rt::fs::DirBuilder;
///
/// spargio_rt::run(|_| async {
///     let root = std::env::temp_dir().join(format!("spargio-dirb-doc-{}", std::process::id()));
///     DirBuilder::new().recursive(true).mode(0o750).create(root.join("a/b/c")).await?;
///     assert!(spargio_rt::fs::metadata(root.join("a/b/c")).await?.is_dir());
///     spargio_rt::fs::remove_dir_all(&root).await
/// })
/// .unwrap()
/// .unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct DirBuilder {
    recursive: bool,
    mode: u32,
}

impl Default for DirBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl DirBuilder {
    /// Not recursive, mode `0o777` (before the umask).
    pub fn new() -> Self {
        DirBuilder {
            recursive: false,
            mode: 0o777,
        }
    }

    /// Also create missing parents, and accept a directory that exists.
    pub fn recursive(&mut self, recursive: bool) -> &mut Self {
        self.recursive = recursive;
        self
    }

    /// The permission bits of new directories (before the umask).
    pub fn mode(&mut self, mode: u32) -> &mut Self {
        self.mode = mode;
        self
    }

    /// Creates `path` (`mkdirat`, one per missing component).
    pub async fn create(&self, path: impl AsRef<Path>) -> io::Result<()> {
        if self.recursive {
            self.create_all(path.as_ref()).await
        } else {
            mkdir(path.as_ref(), self.mode).await
        }
    }

    async fn create_all(&self, path: &Path) -> io::Result<()> {
        // Walk up until a component exists (or is created), then create
        // the missing ones top-down. Another task creating the same tree
        // at the same time is fine: an existing directory counts.
        let mut missing = Vec::new();
        let mut cur = Some(path);
        while let Some(p) = cur {
            if p.as_os_str().is_empty() {
                break;
            }
            match mkdir(p, self.mode).await {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    missing.push(p);
                    cur = p.parent();
                }
                Err(e) => {
                    if is_dir(p).await {
                        break;
                    }
                    return Err(e);
                }
            }
        }
        for p in missing.into_iter().rev() {
            if let Err(e) = mkdir(p, self.mode).await {
                if !is_dir(p).await {
                    return Err(e);
                }
            }
        }
        Ok(())
    }
}

async fn mkdir(path: &Path, mode: u32) -> io::Result<()> {
    let path = cstr(path)?;
    PathOp::Mkdir { path, mode }.run().await
}

async fn is_dir(path: &Path) -> bool {
    match cstr(path) {
        Ok(p) => ops::statx_path(p, 0)
            .await
            .is_ok_and(|s| u32::from(s.stx_mode) & libc::S_IFMT == libc::S_IFDIR),
        Err(_) => false,
    }
}

/// Creates one directory (`mkdirat`, mode `0o777` before the umask).
/// Fails with `AlreadyExists` if it exists and `NotFound` if its parent
/// does not.
pub async fn create_dir(path: impl AsRef<Path>) -> io::Result<()> {
    DirBuilder::new().create(path).await
}

/// Creates a directory and any missing parents; succeeds if it already
/// exists as a directory.
pub async fn create_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    DirBuilder::new().recursive(true).create(path).await
}

/// Removes an empty directory (`unlinkat` with `AT_REMOVEDIR`). Fails with
/// `DirectoryNotEmpty` if it has entries, `NotADirectory` for a file.
pub async fn remove_dir(path: impl AsRef<Path>) -> io::Result<()> {
    let path = cstr(path.as_ref())?;
    PathOp::Unlink {
        path,
        flags: libc::AT_REMOVEDIR,
    }
    .run()
    .await
}

/// Removes a directory and everything in it, not following symlinks
/// (`std::fs::remove_dir_all`, on the blocking pool).
pub async fn remove_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    asyncify(move || std::fs::remove_dir_all(path)).await
}
