//! Dropped children that no runtime task is waiting for: they are reaped
//! at the next spawn or `Child` drop in this process, so none stays a
//! zombie for the rest of its life.
//!
//! A dropped `Child` still running is normally reaped by a task on the
//! runtime when it exits. That cannot happen when it is dropped outside
//! a runtime, when the runtime shuts down first (the task is cancelled),
//! or for a bare pid on a kernel without the ring's `WAITID` op (only a
//! blocking thread could wait for it). Those children are kept here and
//! reaped, without blocking, by [`sweep`].

use std::sync::{Arc, Mutex, MutexGuard};

use super::proc::Proc;

static ORPHANS: Mutex<Vec<Arc<Proc>>> = Mutex::new(Vec::new());

fn orphans() -> MutexGuard<'static, Vec<Arc<Proc>>> {
    // A panic cannot leave the list half-changed: push and retain only.
    ORPHANS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Keeps `proc` to be reaped by a later [`sweep`], unless it already was
/// reaped (or cannot be: someone else reaped it).
pub(crate) fn adopt(proc: Arc<Proc>) {
    if matches!(proc.reap(), Ok(None)) {
        orphans().push(proc);
    }
}

/// Reaps every kept child that has exited, without blocking; keeps the
/// ones still running.
pub(crate) fn sweep() {
    let mut list = orphans();
    if !list.is_empty() {
        list.retain(|proc| matches!(proc.reap(), Ok(None)));
    }
}

/// Owns a dropped child while a task waits to reap it; hands it to the
/// orphans if the task ends without reaping it (cancelled at shutdown, or
/// no way to wait without a thread).
pub(crate) struct ReapGuard(Option<Arc<Proc>>);

impl ReapGuard {
    pub(crate) fn new(proc: Arc<Proc>) -> ReapGuard {
        ReapGuard(Some(proc))
    }

    pub(crate) fn proc(&self) -> &Arc<Proc> {
        self.0.as_ref().expect("taken only on drop")
    }
}

impl Drop for ReapGuard {
    fn drop(&mut self) {
        if let Some(proc) = self.0.take() {
            adopt(proc);
        }
    }
}
