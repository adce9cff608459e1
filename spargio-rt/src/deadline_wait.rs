//! Waiting on a condition variable until a condition holds or a deadline
//! passes, as the blocking pool's shutdown does.

use std::sync::{Condvar, MutexGuard};
use std::time::Instant;

/// Waits on `cv` until `done(&state)` holds or `deadline` passes (`None`:
/// no deadline). Returns the guard and whether `done` held. A poisoned lock
/// is taken over (the state is counters, which a panic leaves usable).
pub(crate) fn wait_until<'a, T>(
    cv: &Condvar,
    mut guard: MutexGuard<'a, T>,
    deadline: Option<Instant>,
    mut done: impl FnMut(&T) -> bool,
) -> (MutexGuard<'a, T>, bool) {
    while !done(&guard) {
        guard = match deadline {
            None => cv.wait(guard).unwrap_or_else(|p| p.into_inner()),
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return (guard, false);
                }
                cv.wait_timeout(guard, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0
            }
        };
    }
    (guard, true)
}
