//! `Interval`: a periodic tick with a choice of what to do about missed ticks.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::sleep::{far_add, Sleep};

/// How late a tick may be taken before [`MissedTickBehavior::Delay`]
/// counts the next period from then instead of from the tick's time (a
/// little lateness is every timer's, and must not make the schedule
/// drift).
pub const DELAY_TOLERANCE: Duration = Duration::from_millis(1);

/// What an [`Interval`] does when a tick comes late (the task was busy).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MissedTickBehavior {
    /// Fire the missed ticks back to back until caught up, keeping the
    /// original schedule (the default).
    #[default]
    Burst,
    /// Fire once now, and count the next period from now. A tick taken
    /// more than [`DELAY_TOLERANCE`] after its time counts as late, even
    /// when the next tick's time has not come yet: ticks stay at least a
    /// period apart.
    Delay,
    /// Fire once now, and skip to the next tick on the original schedule.
    Skip,
}

/// Ticks every `period`; the first tick completes at once.
///
/// ```
/// use std::time::Duration;
/// spargio_rt::run(|_| async {
///     let mut iv = spargio_rt::time::interval(Duration::from_millis(1));
///     let first = iv.tick().await;
///     let second = iv.tick().await;
///     assert!(second - first >= Duration::from_millis(1));
/// })
/// .unwrap();
/// ```
///
/// # Panics
/// If `period` is zero.
pub fn interval(period: Duration) -> Interval {
    interval_at(Instant::now(), period)
}

/// Ticks every `period`, the first tick at `start`.
///
/// # Panics
/// If `period` is zero.
pub fn interval_at(start: Instant, period: Duration) -> Interval {
    assert!(
        !period.is_zero(),
        "spargio: interval period must be non-zero"
    );
    Interval {
        next: start,
        period,
        behavior: MissedTickBehavior::Burst,
        sleep: Sleep::until(start),
    }
}

/// A stream of ticks; see [`interval`].
#[derive(Debug)]
pub struct Interval {
    /// The deadline of the next tick.
    next: Instant,
    period: Duration,
    behavior: MissedTickBehavior,
    sleep: Sleep,
}

impl Interval {
    /// Waits for the next tick and returns its scheduled time.
    pub async fn tick(&mut self) -> Instant {
        poll_fn(|cx| self.poll_tick(cx)).await
    }

    /// Polls for the next tick (for use inside hand-written futures).
    pub fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<Instant> {
        if self.sleep.deadline() != self.next {
            self.sleep.reset(self.next);
        }
        if Pin::new(&mut self.sleep).poll(cx).is_pending() {
            return Poll::Pending;
        }
        let scheduled = self.next;
        let now = Instant::now();
        self.next = self.following(scheduled, now);
        Poll::Ready(scheduled)
    }

    fn following(&self, scheduled: Instant, now: Instant) -> Instant {
        let on_schedule = far_add(scheduled, self.period);
        let delayed = self.behavior == MissedTickBehavior::Delay
            && now.saturating_duration_since(scheduled) > DELAY_TOLERANCE;
        if on_schedule > now && !delayed {
            return on_schedule;
        }
        match self.behavior {
            MissedTickBehavior::Burst => on_schedule,
            MissedTickBehavior::Delay => far_add(now, self.period),
            MissedTickBehavior::Skip => {
                let behind = now.duration_since(scheduled).as_nanos();
                let period = self.period.as_nanos();
                let steps = behind / period + 1;
                let skip = Duration::from_nanos(u64::try_from(steps * period).unwrap_or(u64::MAX));
                far_add(scheduled, skip)
            }
        }
    }

    /// Starts the schedule over: the next tick is one period from now.
    pub fn reset(&mut self) {
        self.next = far_add(Instant::now(), self.period);
        self.sleep.reset(self.next);
    }

    /// Makes the next tick complete at once (a task waiting in
    /// [`poll_tick`](Self::poll_tick) is woken).
    pub fn reset_immediately(&mut self) {
        self.next = Instant::now();
        self.sleep.reset(self.next);
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// The missed-tick behaviour.
    pub fn missed_tick_behavior(&self) -> MissedTickBehavior {
        self.behavior
    }

    /// Sets the missed-tick behaviour.
    pub fn set_missed_tick_behavior(&mut self, behavior: MissedTickBehavior) {
        self.behavior = behavior;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(behavior: MissedTickBehavior, start: Instant) -> Interval {
        let mut i = interval_at(start, Duration::from_millis(10));
        i.set_missed_tick_behavior(behavior);
        i
    }

    #[test]
    fn burst_keeps_the_schedule() {
        let t0 = Instant::now();
        let i = iv(MissedTickBehavior::Burst, t0);
        let late = t0 + Duration::from_millis(35);
        assert_eq!(i.following(t0, late), t0 + Duration::from_millis(10));
    }

    #[test]
    fn delay_counts_from_now() {
        let t0 = Instant::now();
        let i = iv(MissedTickBehavior::Delay, t0);
        let late = t0 + Duration::from_millis(35);
        assert_eq!(i.following(t0, late), late + Duration::from_millis(10));
    }

    #[test]
    fn delay_counts_from_now_when_late_by_less_than_a_period() {
        // Period 10 ms, taken 6 ms late: the next tick is 10 ms after it
        // was taken (tokio does the same), not 4 ms.
        let t0 = Instant::now();
        let i = iv(MissedTickBehavior::Delay, t0);
        let late = t0 + Duration::from_millis(6);
        assert_eq!(i.following(t0, late), late + Duration::from_millis(10));
        // Within the tolerance the schedule is kept.
        let nearly = t0 + Duration::from_micros(300);
        assert_eq!(i.following(t0, nearly), t0 + Duration::from_millis(10));
    }

    #[test]
    fn skip_jumps_to_the_next_slot() {
        let t0 = Instant::now();
        let i = iv(MissedTickBehavior::Skip, t0);
        let late = t0 + Duration::from_millis(35);
        assert_eq!(i.following(t0, late), t0 + Duration::from_millis(40));
    }

    #[test]
    fn on_time_ticks_follow_the_period() {
        let t0 = Instant::now() + Duration::from_secs(1);
        for b in [
            MissedTickBehavior::Burst,
            MissedTickBehavior::Delay,
            MissedTickBehavior::Skip,
        ] {
            assert_eq!(iv(b, t0).following(t0, t0), t0 + Duration::from_millis(10));
        }
    }
}
