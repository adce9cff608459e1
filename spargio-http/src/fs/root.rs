//! A served directory's root: its canonical path and an open handle on
//! it, looked up again now and then so that re-pointing a symlinked root
//! (the usual `current -> releases/N` deploy) is noticed without a
//! restart.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use spargio_rt::fs::File;

/// How long a resolved root is used before it is resolved again.
pub(crate) const ROOT_REFRESH: Duration = Duration::from_secs(1);

/// The root as requests use it.
#[derive(Debug)]
pub(crate) struct Root {
    /// The configured root with symlinks resolved.
    pub(crate) path: PathBuf,
    /// An `O_PATH` handle on that directory: request paths are opened
    /// relative to it, with the kernel keeping them beneath it.
    pub(crate) dir: File,
}

/// The [`Root`] of a configured path, cached for [`ROOT_REFRESH`].
#[derive(Debug, Default)]
pub(crate) struct ResolvedRoot {
    cached: RwLock<Option<Resolved>>,
}

#[derive(Debug, Clone)]
struct Resolved {
    root: Arc<Root>,
    at: Instant,
}

impl ResolvedRoot {
    /// `configured` with symlinks resolved, and a handle on it: from the
    /// cache while it is fresh, else from `canonicalize` (on the blocking
    /// pool) and an `openat`. A root that cannot be resolved now is an
    /// error even if it could be before (it was moved away or deleted).
    pub(crate) async fn get(&self, configured: &Path) -> io::Result<Arc<Root>> {
        let now = Instant::now();
        if let Some(fresh) = self.fresh(now) {
            return Ok(fresh);
        }
        let path = spargio_rt::fs::canonicalize(configured).await?;
        // Opened by its canonical name: should that name change between
        // the two calls (a deploy), the handle is still a root someone
        // configured, and requests stay beneath the handle whatever its
        // name is now.
        let dir = File::open_dir(&path).await?;
        let root = Arc::new(Root { path, dir });
        let resolved = Resolved {
            root: root.clone(),
            at: now,
        };
        // A poisoned lock only means another thread panicked while
        // storing a root; the value is still a whole `Option`.
        let mut cached = self.cached.write().unwrap_or_else(|p| p.into_inner());
        // Requests that found the cache stale together each resolve it;
        // the one that started last holds the newest answer, whichever
        // finishes last.
        if cached.as_ref().is_none_or(|c| c.at <= resolved.at) {
            *cached = Some(resolved);
        }
        Ok(root)
    }

    fn fresh(&self, now: Instant) -> Option<Arc<Root>> {
        let cached = self.cached.read().unwrap_or_else(|p| p.into_inner());
        let resolved = cached.as_ref()?;
        (now.saturating_duration_since(resolved.at) < ROOT_REFRESH).then(|| resolved.root.clone())
    }
}
