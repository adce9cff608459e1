//! Opening a request's path under [`ServeDir`](super::ServeDir)'s root so
//! that it can never lead out of it, whatever changes under the root
//! meanwhile.

use std::io;
use std::path::{Path, PathBuf};

use spargio_rt::fs::{File, ResolveFlags};

use super::open::{self, Found, Location};
use super::root::Root;

/// Opens `rel` under `root` (see [`open::open`]), following symlinks only
/// while they stay under it. `rel` is relative with plain components only
/// (no `.` or `..`, see [`path::decode`](super::path::decode)); empty
/// means the root itself.
///
/// The kernel does the confining: the path is opened relative to the
/// root's handle with `RESOLVE_BENEATH` (and `RESOLVE_NO_MAGICLINKS`), so
/// a symlink (or one swapped in for a directory mid-lookup) that leads
/// out fails with `EXDEV` instead of being followed. There is no separate
/// check to race.
///
/// `RESOLVE_BENEATH` also refuses every absolute symlink, even one that
/// points back inside the root. Those (and any other `EXDEV`) take the
/// slow path: `canonicalize` (on the blocking pool) resolves the path,
/// which must land under the root's canonical path (else `EXDEV`, a
/// `404`), and the canonical remainder is opened relative to the root's
/// handle with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`. A component
/// swapped for a symlink after `canonicalize` looked then fails (`ELOOP`
/// or `EXDEV`), so the slow path cannot be raced out of the root either.
pub(crate) async fn open_under(root: &Root, rel: &Path) -> io::Result<Found> {
    match open::open(fast_path(root, rel)).await {
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {}
        other => return other,
    }
    let rest = canonical_rest(root, rel).await?;
    open::open(slow_path(root, &rest)).await
}

/// Opens the directory `rel` under `root`, for listing, with the same
/// confinement as [`open_under`].
pub(crate) async fn open_dir_under(root: &Root, rel: &Path) -> io::Result<File> {
    let dir = open::open_dir(fast_path(root, rel)).await;
    if !matches!(&dir, Err(e) if e.raw_os_error() == Some(libc::EXDEV)) {
        return dir;
    }
    let rest = canonical_rest(root, rel).await?;
    open::open_dir(slow_path(root, &rest)).await
}

/// `rel` (`.` for the root itself) under the root's handle, kept beneath
/// it by the kernel.
fn fast_path<'a>(root: &'a Root, rel: &'a Path) -> Location<'a> {
    Location {
        dir: Some(&root.dir),
        path: or_dot(rel),
        resolve: ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
    }
}

/// What `rel` resolves to, relative to the root's canonical path (`EXDEV`
/// if it leads out of the root).
async fn canonical_rest(root: &Root, rel: &Path) -> io::Result<PathBuf> {
    let resolved = spargio_rt::fs::canonicalize(root.path.join(or_dot(rel))).await?;
    match resolved.strip_prefix(&root.path) {
        Ok(rest) => Ok(rest.to_owned()),
        // A symlink out of the root: as if the file did not exist.
        Err(_) => Err(io::Error::from_raw_os_error(libc::EXDEV)),
    }
}

/// A canonical remainder under the root's handle, with no symlink allowed.
fn slow_path<'a>(root: &'a Root, rest: &'a Path) -> Location<'a> {
    Location {
        dir: Some(&root.dir),
        path: or_dot(rest),
        resolve: ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
    }
}

fn or_dot(rel: &Path) -> &Path {
    if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    }
}
