//! A served directory's root: its canonical path and an open handle on
//! it, looked up again now and then so that re-pointing a symlinked root
//! (the usual `current -> releases/N` deploy) is noticed without a
//! restart.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
///
/// One request at a time refreshes a stale root; requests that find it
/// stale meanwhile go on with the stale one (at most a refresh's time
/// older), so a busy server does not queue a `canonicalize` per request
/// on the blocking pool every second.
#[derive(Debug, Default)]
pub(crate) struct ResolvedRoot {
    cached: RwLock<Option<Resolved>>,
    /// A request is resolving the root again.
    refreshing: AtomicBool,
    /// Resolutions started, for tests.
    resolutions: AtomicU64,
}

/// Clears [`ResolvedRoot::refreshing`] when the refreshing request is done
/// with it, whether it stored a root, failed, or was dropped mid-way.
struct RefreshTurn<'a>(&'a AtomicBool);

impl Drop for RefreshTurn<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
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
        let (cached, fresh) = self.cached(now);
        if let (Some(root), true) = (&cached, fresh) {
            return Ok(root.clone());
        }
        let _turn = match cached {
            // Stale, and another request is already refreshing it.
            Some(stale) if self.refreshing.swap(true, Ordering::AcqRel) => return Ok(stale),
            Some(_) => Some(RefreshTurn(&self.refreshing)),
            // Nothing to fall back on: every first request resolves.
            None => None,
        };
        self.resolutions.fetch_add(1, Ordering::Relaxed);
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

    /// The cached root, if any, and whether it is still fresh at `now`.
    fn cached(&self, now: Instant) -> (Option<Arc<Root>>, bool) {
        let cached = self.cached.read().unwrap_or_else(|p| p.into_inner());
        match cached.as_ref() {
            Some(r) => (
                Some(r.root.clone()),
                now.saturating_duration_since(r.at) < ROOT_REFRESH,
            ),
            None => (None, false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::future::join_all;

    /// Requests that find the root stale together start one refresh;
    /// the rest use the stale root meanwhile. (Before, each started its
    /// own `canonicalize`: 1 + 32 resolutions.)
    #[spargio_rt::test]
    async fn fs_a_stale_root_is_refreshed_once_at_a_time() {
        let tmp = tempfile::tempdir().unwrap();
        let resolved = ResolvedRoot::default();
        let first = resolved.get(tmp.path()).await.unwrap();
        assert_eq!(resolved.resolutions.load(Ordering::Relaxed), 1);
        // Make the cache stale.
        if let Some(r) = resolved.cached.write().unwrap().as_mut() {
            r.at -= ROOT_REFRESH * 2;
        }
        // All polled in one pass: the first starts the refresh (waiting on
        // the blocking pool), the others find it under way.
        let roots = join_all((0..32).map(|_| resolved.get(tmp.path()))).await;
        assert_eq!(resolved.resolutions.load(Ordering::Relaxed), 2);
        for root in roots {
            assert_eq!(root.unwrap().path, first.path);
        }
        // Fresh again: no more resolutions.
        resolved.get(tmp.path()).await.unwrap();
        assert_eq!(resolved.resolutions.load(Ordering::Relaxed), 2);
        assert!(!resolved.refreshing.load(Ordering::Relaxed));
    }
}
