//! `serve_local`'s per-shard services: built once per shard, on that
//! shard, the first time a connection needs one; `!Send` state allowed.

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

thread_local! {
    static SERVICES: RefCell<HashMap<u64, Box<dyn Any>>> = RefCell::new(HashMap::new());
}

static NEXT_SERVER: AtomicU64 = AtomicU64::new(1);

/// A process-unique key for one `serve_local` call.
pub(crate) fn server_key() -> u64 {
    NEXT_SERVER.fetch_add(1, Ordering::Relaxed)
}

/// This thread's service of server `key`, built with `make` on first use;
/// each caller gets a clone.
pub(crate) fn service<S: Clone + 'static>(key: u64, make: impl FnOnce() -> S) -> S {
    SERVICES.with(|m| {
        if let Some(s) = m.borrow().get(&key).and_then(|b| b.downcast_ref::<S>()) {
            return s.clone();
        }
        // Built outside the borrow: the factory may itself touch services.
        let s = make();
        m.borrow_mut().insert(key, Box::new(s.clone()));
        s
    })
}

/// Drops this thread's service of server `key`.
pub(crate) fn forget(key: u64) {
    let gone = SERVICES.with(|m| m.borrow_mut().remove(&key));
    drop(gone);
}
