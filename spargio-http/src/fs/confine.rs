//! Opening a request's path under [`ServeDir`](super::ServeDir)'s root so
//! that it can never lead out of it, whatever changes under the root
//! meanwhile.

use std::io;
use std::path::Path;

use spargio_rt::fs::ResolveFlags;

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
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let fast = Location {
        dir: Some(&root.dir),
        path: rel,
        resolve: ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
    };
    match open::open(fast).await {
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {}
        other => return other,
    }
    let resolved = spargio_rt::fs::canonicalize(root.path.join(rel)).await?;
    let Ok(rest) = resolved.strip_prefix(&root.path) else {
        // A symlink out of the root: as if the file did not exist.
        return Err(io::Error::from_raw_os_error(libc::EXDEV));
    };
    let rest = if rest.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rest
    };
    open::open(Location {
        dir: Some(&root.dir),
        path: rest,
        resolve: ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
    })
    .await
}
