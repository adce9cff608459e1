//! One timer for a connection's many successive deadlines (each read's or
//! each write's), armed lazily: a later deadline than the armed one (the
//! usual case, each operation pushing it out) costs nothing until the
//! armed one passes, and only then is the timer moved.

use std::future::Future;
use std::pin::Pin;
use std::task::Context;
use std::time::Instant;

use spargio_rt::time::Sleep;

/// A timer armed at or before the current deadline, never after it.
#[derive(Default)]
pub(crate) struct LazyDeadline {
    /// Made at the first deadline; `None` again after [`disarm`](Self::disarm).
    timer: Option<Sleep>,
}

impl LazyDeadline {
    /// Makes sure the timer fires no later than `until`.
    pub(crate) fn arm(&mut self, until: Instant) {
        match &mut self.timer {
            Some(timer) if until < timer.deadline() => timer.reset(until),
            Some(_) => {}
            None => self.timer = Some(spargio_rt::time::sleep_until(until)),
        }
    }

    /// Whether `until` (armed with [`arm`](Self::arm)) has passed; if not,
    /// the task is woken when it does. A timer that fires for an earlier
    /// deadline is moved out to `until`.
    pub(crate) fn poll_passed(&mut self, cx: &mut Context<'_>, until: Instant) -> bool {
        let timer = self
            .timer
            .get_or_insert_with(|| spargio_rt::time::sleep_until(until));
        while Pin::new(&mut *timer).poll(cx).is_ready() {
            if Instant::now() >= until {
                return true;
            }
            timer.reset(until);
        }
        false
    }

    /// Drops the timer: the next deadline arms a new one.
    pub(crate) fn disarm(&mut self) {
        self.timer = None;
    }
}
