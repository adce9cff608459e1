//! A served directory's root with its symlinks resolved, looked up again
//! now and then so that re-pointing a symlinked root (the usual
//! `current -> releases/N` deploy) is noticed without a restart.

use std::io;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How long a resolved root is used before it is resolved again.
pub(crate) const ROOT_REFRESH: Duration = Duration::from_secs(1);

/// The canonical form of a configured root, cached for
/// [`ROOT_REFRESH`].
#[derive(Debug, Default)]
pub(crate) struct ResolvedRoot {
    cached: RwLock<Option<Resolved>>,
}

#[derive(Debug, Clone)]
struct Resolved {
    path: Arc<Path>,
    at: Instant,
}

impl ResolvedRoot {
    /// `configured` with symlinks resolved: from the cache while it is
    /// fresh, else from `canonicalize` (on the blocking pool). A root
    /// that cannot be resolved now is an error even if it could be
    /// before (it was moved away or deleted).
    pub(crate) async fn get(&self, configured: &Path) -> io::Result<Arc<Path>> {
        let now = Instant::now();
        if let Some(fresh) = self.fresh(now) {
            return Ok(fresh);
        }
        let path: Arc<Path> = spargio_rt::fs::canonicalize(configured).await?.into();
        let resolved = Resolved {
            path: path.clone(),
            at: now,
        };
        // A poisoned lock only means another thread panicked while
        // storing a path; the value is still a whole `Option`.
        let mut cached = self.cached.write().unwrap_or_else(|p| p.into_inner());
        // Requests that found the cache stale together each resolve it;
        // the one that started last holds the newest answer, whichever
        // finishes last.
        if cached.as_ref().is_none_or(|c| c.at <= resolved.at) {
            *cached = Some(resolved);
        }
        Ok(path)
    }

    fn fresh(&self, now: Instant) -> Option<Arc<Path>> {
        let cached = self.cached.read().unwrap_or_else(|p| p.into_inner());
        let resolved = cached.as_ref()?;
        (now.saturating_duration_since(resolved.at) < ROOT_REFRESH).then(|| resolved.path.clone())
    }
}
