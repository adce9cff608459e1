//! Timers never fire early, fire in order, and intervals follow their
//! missed-tick behaviour.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use spargio_rt::time::{
    interval, interval_at, sleep, sleep_until, timeout, MissedTickBehavior, Sleep,
};
use spargio_rt::{Runtime, ShardId};

mod common;
use common::wait_for;

fn rt() -> Runtime {
    Runtime::builder().shards(2).build().unwrap()
}

#[test]
fn sleeps_never_end_early_on_shards_and_off_them() {
    let rt = rt();
    let h = rt.handle();
    let mut tasks = Vec::new();
    for i in 0..200u64 {
        let d = Duration::from_micros(37 * (i % 23) + 1);
        tasks.push(h.spawn(async move {
            let deadline = Instant::now() + d;
            sleep_until(deadline).await;
            Instant::now() >= deadline
        }));
    }
    for t in tasks {
        assert!(rt.block_on(t).unwrap());
    }
    // Off the shards (the fallback timer thread).
    for us in [1u64, 50, 300, 2000] {
        let deadline = Instant::now() + Duration::from_micros(us);
        rt.block_on(sleep_until(deadline));
        assert!(Instant::now() >= deadline);
    }
}

#[test]
fn timers_on_one_shard_fire_in_deadline_order() {
    let rt = rt();
    let h = rt.handle();
    // A timer already due at its first poll completes there, in poll
    // order, without going through the heap: an attempt in which the shard
    // was held up that long (a loaded machine) proves nothing and is run
    // again, with more room.
    for attempt in 1..=20u32 {
        let order = Arc::new(Mutex::new(Vec::new()));
        let late = Arc::new(AtomicBool::new(false));
        let base = Instant::now() + Duration::from_millis(5) * attempt;
        let mut tasks = Vec::new();
        // Deadlines registered in scrambled order; ties keep registration order.
        for (seq, k) in [7u64, 3, 9, 1, 3, 0, 5, 8, 2, 6, 4, 1]
            .into_iter()
            .enumerate()
        {
            let order = order.clone();
            let late = late.clone();
            tasks.push(h.spawn_pinned(ShardId(1), async move {
                let mut sleep = std::pin::pin!(sleep_until(base + Duration::from_micros(300 * k)));
                let first = std::future::poll_fn(|cx| Poll::Ready(sleep.as_mut().poll(cx))).await;
                if first.is_ready() {
                    late.store(true, Ordering::Relaxed);
                } else {
                    sleep.await;
                }
                order.lock().unwrap().push((k, seq));
            }));
        }
        for t in tasks {
            rt.block_on(t).unwrap();
        }
        if late.load(Ordering::Relaxed) {
            continue;
        }
        let got = order.lock().unwrap().clone();
        let mut sorted = got.clone();
        sorted.sort();
        assert_eq!(got, sorted);
        return;
    }
    panic!("in every attempt a timer was due before its first poll");
}

#[test]
fn timeout_cancels_slow_futures_and_passes_fast_ones() {
    let rt = rt();
    let h = rt.handle();
    let r = rt
        .block_on(h.spawn(async {
            let slow = timeout(Duration::from_millis(1), sleep(Duration::from_secs(60))).await;
            let fast = timeout(Duration::from_secs(60), async { 3 }).await;
            (slow.is_err(), fast)
        }))
        .unwrap();
    assert_eq!(r, (true, Ok(3)));
}

#[test]
fn sleep_reset_moves_the_deadline_both_ways() {
    let rt = rt();
    let h = rt.handle();
    let ok = rt
        .block_on(h.spawn(async {
            let mut s: Sleep = sleep(Duration::from_secs(3600));
            // Earlier.
            let soon = Instant::now() + Duration::from_millis(1);
            s.reset(soon);
            (&mut s).await;
            let a = Instant::now() >= soon;
            // Later, after it was registered. (Long enough that a
            // preempted test thread still polls it before it is due.)
            let mut s = sleep(Duration::from_millis(20));
            let later = Instant::now() + Duration::from_millis(40);
            let polled_early = futures_util::poll!(&mut s).is_pending();
            s.reset(later);
            s.await;
            a && polled_early && Instant::now() >= later
        }))
        .unwrap();
    assert!(ok);
}

#[test]
fn interval_burst_catches_up_and_delay_does_not() {
    let rt = rt();
    let h = rt.handle();
    let (burst, delay, skip) = rt
        .block_on(h.spawn(async {
            let period = Duration::from_millis(2);
            let run = |b: MissedTickBehavior| async move {
                let start = Instant::now();
                let mut iv = interval_at(start, period);
                iv.set_missed_tick_behavior(b);
                let mut ticks = vec![iv.tick().await];
                let mut taken = vec![Instant::now()];
                // Stall for several periods without yielding.
                std::thread::sleep(period * 5);
                for _ in 0..3 {
                    ticks.push(iv.tick().await);
                    taken.push(Instant::now());
                }
                (start, ticks, taken)
            };
            (
                run(MissedTickBehavior::Burst).await,
                run(MissedTickBehavior::Delay).await,
                run(MissedTickBehavior::Skip).await,
            )
        }))
        .unwrap();
    let period = Duration::from_millis(2);
    // Burst: scheduled times stay on the grid, one period apart.
    let (s, t, _) = burst;
    for (i, tick) in t.iter().enumerate() {
        assert_eq!(*tick, s + period * i as u32);
    }
    // Delay: after the stall, the tick after the late one is a full period
    // after the late tick was *taken*, i.e. strictly off the original grid
    // by at least the stall.
    let (s, t, taken) = delay;
    assert_eq!(t[1], s + period, "the late tick reports its schedule");
    assert!(
        t[2] >= s + period * 5 + period,
        "{:?}",
        t.iter().map(|x| *x - s).collect::<Vec<_>>()
    );
    // The next tick is a period after the previous one's time if that was
    // taken on time, else a period after it was taken (a loaded machine
    // can wake the task late here too).
    assert!(t[3] >= t[2] + period && t[3] <= taken[2] + period);
    if taken[2] - t[2] <= spargio_rt::time::DELAY_TOLERANCE {
        assert_eq!(t[3] - t[2], period);
    }
    // Skip: the next ticks stay on the grid but skip the missed slots.
    let (s, t, _) = skip;
    assert_eq!(t[1], s + period);
    let offs: Vec<Duration> = t.iter().map(|x| *x - s).collect();
    for o in &offs {
        assert_eq!(o.as_nanos() % period.as_nanos(), 0, "{offs:?}");
    }
    assert!(t[2] - t[1] > period, "skipped at least one slot: {offs:?}");
}

#[test]
fn first_interval_tick_is_immediate_and_ticks_are_not_early() {
    let rt = rt();
    rt.block_on(async {
        let start = Instant::now();
        let mut iv = interval(Duration::from_micros(500));
        let first = iv.tick().await;
        assert!(first <= Instant::now());
        for _ in 0..5 {
            let scheduled = iv.tick().await;
            assert!(Instant::now() >= scheduled);
        }
        assert!(start.elapsed() >= Duration::from_micros(2500));
    });
}

/// Whether `fut` ends before `bound` passes; once the bound has passed,
/// `fut` is not polled again (a plain `timeout` polls it first and would
/// hide a lost wake-up).
async fn ended_before<F: Future>(bound: Duration, fut: F) -> bool {
    let mut fut = std::pin::pin!(fut);
    let mut limit = sleep(bound);
    std::future::poll_fn(|cx| {
        if std::pin::Pin::new(&mut limit).poll(cx).is_ready() {
            return std::task::Poll::Ready(false);
        }
        fut.as_mut().poll(cx).map(|_| true)
    })
    .await
}

/// Polls `sleep` once (it waits), then resets it to `to` and returns
/// `Pending` without polling it again: the reset alone must arrange the
/// wake-up. Polls it normally after that.
struct ResetWithoutRepoll {
    sleep: Sleep,
    to: Option<Instant>,
}

impl Future for ResetWithoutRepoll {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if let Some(to) = self.to.take() {
            assert!(std::pin::Pin::new(&mut self.sleep).poll(cx).is_pending());
            self.sleep.reset(to);
            return std::task::Poll::Pending;
        }
        std::pin::Pin::new(&mut self.sleep).poll(cx)
    }
}

#[test]
fn a_reset_sleep_wakes_its_task_without_another_poll() {
    let rt = rt();
    let h = rt.handle();
    for (shard, later) in [(0, 2u64), (1, 0)] {
        let task = h.spawn_pinned(ShardId(shard), async move {
            let to = Instant::now() + Duration::from_millis(later);
            let fut = ResetWithoutRepoll {
                sleep: sleep(Duration::from_secs(3600)),
                to: Some(to),
            };
            // The bound only catches a lost wake-up (which used to last
            // until the bound re-polled the future).
            let done = ended_before(Duration::from_secs(20), fut).await;
            (done, Instant::now() >= to)
        });
        assert_eq!(rt.block_on(task).unwrap(), (true, true), "shard {shard}");
    }
}

/// Polls `sleep` once (it waits); in the poll its fire wakes, resets it
/// to `to` and returns `Pending` without polling it; then polls it.
struct ResetAfterFire {
    sleep: Sleep,
    polls: u32,
    to: Instant,
}

impl Future for ResetAfterFire {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        self.polls += 1;
        match self.polls {
            1 => {
                assert!(std::pin::Pin::new(&mut self.sleep).poll(cx).is_pending());
                std::task::Poll::Pending
            }
            2 => {
                // Woken by the fire (nothing else wakes this task).
                let to = self.to;
                self.sleep.reset(to);
                std::task::Poll::Pending
            }
            _ => std::pin::Pin::new(&mut self.sleep).poll(cx),
        }
    }
}

#[test]
fn a_sleep_reset_in_the_poll_its_fire_woke_still_wakes_its_task() {
    let rt = rt();
    let task = rt.handle().spawn_pinned(ShardId(0), async {
        let to = Instant::now() + Duration::from_millis(60);
        let fut = ResetAfterFire {
            // Not due before its first poll, even on a preempted thread.
            sleep: sleep(Duration::from_millis(20)),
            polls: 0,
            to,
        };
        let done = ended_before(Duration::from_secs(10), fut).await;
        (done, Instant::now() >= to)
    });
    assert_eq!(rt.block_on(task).unwrap(), (true, true));
}

#[test]
fn reset_immediately_wakes_a_waiting_interval() {
    let rt = rt();
    let task = rt.handle().spawn_pinned(ShardId(0), async {
        let mut iv = interval(Duration::from_secs(3600));
        iv.tick().await; // the immediate first tick
        let mut reset = false;
        let tick = std::future::poll_fn(|cx| {
            let polled = iv.poll_tick(cx);
            if polled.is_pending() && !reset {
                reset = true;
                iv.reset_immediately();
            }
            polled
        });
        ended_before(Duration::from_secs(20), tick).await
    });
    assert!(rt.block_on(task).unwrap());
}

#[test]
fn delay_keeps_ticks_a_period_apart_after_a_tick_taken_late() {
    let rt = rt();
    let task = rt.handle().spawn_pinned(ShardId(0), async {
        let period = Duration::from_millis(40);
        let mut iv = interval(period);
        iv.set_missed_tick_behavior(MissedTickBehavior::Delay);
        iv.tick().await;
        // The second tick is due one period after the first; take it half
        // a period late (not a whole tick missed).
        std::thread::sleep(period * 3 / 2);
        iv.tick().await;
        let taken = Instant::now();
        iv.tick().await;
        Instant::now() - taken
    });
    let gap = rt.block_on(task).unwrap();
    assert!(
        gap >= Duration::from_millis(40) - Duration::from_millis(1),
        "{gap:?}"
    );
}

#[test]
fn a_stolen_task_s_sleep_fires_while_its_first_shard_is_stuck() {
    let rt = rt();
    let h = rt.handle();
    let (tx, rx) = async_channel::bounded::<()>(1);
    let release = Arc::new(AtomicBool::new(false));
    let armed = Arc::new(AtomicBool::new(false));
    let (r2, a2) = (release.clone(), armed.clone());
    let task = h.spawn_stealable_on(ShardId(0), async move {
        let mut nap = std::pin::pin!(sleep(Duration::from_millis(20)));
        // The first poll, on shard 0, puts the timer in shard 0's heap.
        let first = futures_util::poll!(nap.as_mut());
        let first_shard = spargio_rt::RuntimeHandle::current().current_shard();
        a2.store(true, Ordering::SeqCst);
        rx.recv().await.unwrap();
        let resumed_on = spargio_rt::RuntimeHandle::current().current_shard();
        nap.await;
        r2.store(true, Ordering::SeqCst);
        (first.is_pending(), first_shard, resumed_on)
    });
    wait_for(&armed);
    // Shard 0 is stuck in one poll from now until the sleep has ended.
    let started = Arc::new(AtomicBool::new(false));
    let (r3, s3) = (release.clone(), started.clone());
    let hog = h.spawn_pinned(ShardId(0), async move {
        s3.store(true, Ordering::SeqCst);
        common::spin_until(&r3, Duration::from_secs(10))
    });
    wait_for(&started);
    // Woken behind the stuck shard, the task is stolen by shard 1; its
    // sleep, polled there, must not wait for shard 0.
    tx.send_blocking(()).unwrap();
    let (pending, first_shard, resumed_on) = rt.block_on(task).unwrap();
    assert!(pending);
    assert_eq!(first_shard, Some(ShardId(0)));
    assert_eq!(resumed_on, Some(ShardId(1)));
    assert!(
        rt.block_on(hog).unwrap(),
        "the sleep ended while shard 0 was still stuck"
    );
}

#[test]
// The task hands its half-waited sleep out of the runtime on purpose.
#[allow(clippy::async_yields_async)]
fn a_sleep_first_polled_on_a_shard_ends_off_the_runtime_after_shutdown() {
    let rt = rt();
    let h = rt.handle();
    let nap = rt
        .block_on(h.spawn_pinned(ShardId(0), async {
            let mut nap = sleep(Duration::from_millis(20));
            assert!(futures_util::poll!(&mut nap).is_pending());
            nap
        }))
        .unwrap();
    // Its timer was in shard 0's heap, which went with the runtime.
    drop(rt);
    let other = Runtime::builder().shards(1).build().unwrap();
    let ended = other.block_on(timeout(Duration::from_secs(10), nap));
    assert!(ended.is_ok(), "the sleep ended on the fallback timer");
}

/// A waker that, when a timer fires it, sets a timer of its own on the
/// same shard (by polling a fresh `Sleep`), then reports.
struct SetsATimerOnWake {
    done: std::sync::mpsc::Sender<bool>,
}

impl std::task::Wake for SetsATimerOnWake {
    fn wake(self: Arc<Self>) {
        let mut next = Box::pin(sleep(Duration::from_secs(3600)));
        let waker = std::task::Waker::noop();
        let pending = next
            .as_mut()
            .poll(&mut std::task::Context::from_waker(waker))
            .is_pending();
        let _ = self.done.send(pending);
    }
}

#[test]
fn a_waker_fired_by_a_timer_may_set_a_timer_on_the_same_shard() {
    let rt = rt();
    let h = rt.handle();
    let (tx, rx) = std::sync::mpsc::channel();
    let task = h.spawn_pinned(ShardId(0), async move {
        // Not due before its first poll, even on a preempted thread.
        let mut trap = Box::pin(sleep(Duration::from_millis(20)));
        {
            let waker = std::task::Waker::from(Arc::new(SetsATimerOnWake { done: tx }));
            let mut cx = std::task::Context::from_waker(&waker);
            assert!(trap.as_mut().poll(&mut cx).is_pending());
        }
        // Keep the timer registered while its waker is the custom one; the
        // shard fires it from its loop.
        sleep(Duration::from_millis(200)).await;
        drop(trap);
    });
    let woke = rx.recv_timeout(Duration::from_secs(20));
    let joined = spargio_rt::block_on(async { timeout(Duration::from_secs(20), task).await });
    let loop_panics = h.stats().shards[0].loop_panics;
    if loop_panics != 0 {
        // The shard loop died with the heap borrowed; do not risk a hang.
        std::mem::forget(rt);
    }
    assert_eq!(woke, Ok(true), "the waker ran and its sleep was pending");
    assert_eq!(
        loop_panics, 0,
        "setting a timer from a timer's waker panicked the shard loop"
    );
    assert!(
        matches!(joined, Ok(Ok(()))),
        "the task finished: {joined:?}"
    );
}

#[test]
fn a_waker_fired_by_the_off_runtime_timer_thread_may_set_a_timer() {
    let (tx, rx) = std::sync::mpsc::channel();
    // Polled on this test thread (no shard), the sleep is registered with
    // the fallback timer thread, which runs the waker. (Not due before
    // its first poll, even on a preempted thread.)
    let mut trap = Box::pin(sleep(Duration::from_millis(20)));
    let waker = std::task::Waker::from(Arc::new(SetsATimerOnWake { done: tx }));
    assert!(trap
        .as_mut()
        .poll(&mut std::task::Context::from_waker(&waker))
        .is_pending());
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(20)),
        Ok(true),
        "the waker ran and its sleep was pending"
    );
    // The timer thread goes on firing timers.
    let ended = spargio_rt::block_on(timeout(
        Duration::from_secs(20),
        sleep(Duration::from_millis(2)),
    ));
    assert!(ended.is_ok(), "a later off-runtime sleep ended");
}
