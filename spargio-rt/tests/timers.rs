//! Timers never fire early, fire in order, and intervals follow their
//! missed-tick behaviour.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use spargio_rt::time::{
    interval, interval_at, sleep, sleep_until, timeout, MissedTickBehavior, Sleep,
};
use spargio_rt::{Runtime, ShardId};

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
    let order = Arc::new(Mutex::new(Vec::new()));
    let base = Instant::now() + Duration::from_millis(5);
    let mut tasks = Vec::new();
    // Deadlines registered in scrambled order; ties keep registration order.
    for (seq, k) in [7u64, 3, 9, 1, 3, 0, 5, 8, 2, 6, 4, 1]
        .into_iter()
        .enumerate()
    {
        let order = order.clone();
        tasks.push(h.spawn_pinned(ShardId(1), async move {
            sleep_until(base + Duration::from_micros(300 * k)).await;
            order.lock().unwrap().push((k, seq));
        }));
    }
    for t in tasks {
        rt.block_on(t).unwrap();
    }
    let got = order.lock().unwrap().clone();
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(got, sorted);
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
            // Later, after it was registered.
            let mut s = sleep(Duration::from_micros(100));
            let later = Instant::now() + Duration::from_millis(3);
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
                // Stall for several periods without yielding.
                std::thread::sleep(period * 5);
                for _ in 0..3 {
                    ticks.push(iv.tick().await);
                }
                (start, ticks)
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
    let (s, t) = burst;
    for (i, tick) in t.iter().enumerate() {
        assert_eq!(*tick, s + period * i as u32);
    }
    // Delay: after the stall, the tick after the late one is a full period
    // after the late tick was *taken*, i.e. strictly off the original grid
    // by at least the stall.
    let (s, t) = delay;
    assert_eq!(t[1], s + period, "the late tick reports its schedule");
    assert!(
        t[2] >= s + period * 5 + period,
        "{:?}",
        t.iter().map(|x| *x - s).collect::<Vec<_>>()
    );
    assert_eq!(t[3] - t[2], period);
    // Skip: the next ticks stay on the grid but skip the missed slots.
    let (s, t) = skip;
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
