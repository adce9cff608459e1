//! Structured cancellation: [`CancellationToken`] trees and [`TaskGroup`]s.
//!
//! Both are runtime-agnostic in their waiting (a token's futures work on
//! any executor); a [`TaskGroup`] spawns on a spargio runtime.
//!
//! ```
//! use std::time::Duration;
//! use spargio_rt::sync::{CancellationToken, TaskGroup};
//!
//! spargio_rt::run(|handle| async move {
//!     let shutdown = CancellationToken::new();
//!     let mut workers = TaskGroup::with_token(handle, &shutdown);
//!     for _ in 0..3 {
//!         workers.spawn(async {
//!             loop {
//!                 spargio_rt::time::sleep(Duration::from_millis(1)).await;
//!             }
//!         });
//!     }
//!     shutdown.cancel();
//!     let results = workers.join_all().await;
//!     assert!(results.iter().all(|r| r.as_ref().unwrap_err().is_cancelled()));
//! })
//! .unwrap();
//! ```

mod group;
mod token;

pub use group::TaskGroup;
pub use token::{
    CancellationToken, Cancelled, CancelledOwned, DropGuard, RunUntilCancelled,
    RunUntilCancelledOwned,
};
