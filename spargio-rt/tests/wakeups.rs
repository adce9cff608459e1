//! Wake-ups across shards and from foreign threads are never lost.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use spargio_rt::{Runtime, RuntimeHandle, ShardId};

/// 500,000 round trips between tasks pinned to shards 0 and 1 over
/// capacity-1 channels: 1,000,000 cross-shard wake-ups. A lost one hangs the
/// exchange, so finishing with the right sum is the check.
#[test]
fn a_million_cross_shard_wakeups_lose_nothing() {
    // No spinning before parking: every hop goes through the doorbell path.
    // Then a shorter run with the default spin, where hops mostly meet a
    // spinning shard and doorbells are the exception.
    for (spin, round_trips) in [
        (std::time::Duration::ZERO, 500_000u64),
        (std::time::Duration::from_micros(50), 50_000),
    ] {
        let rt = Runtime::builder()
            .shards(2)
            .park_spin(spin)
            .build()
            .unwrap();
        let h = rt.handle();
        let (to_b, from_a) = async_channel::bounded::<u64>(1);
        let (to_a, from_b) = async_channel::bounded::<u64>(1);
        let b = h.spawn_pinned(ShardId(1), async move {
            let mut n = 0u64;
            while let Ok(v) = from_a.recv().await {
                n += 1;
                to_a.send(v + 1).await.unwrap();
            }
            n
        });
        let a = h.spawn_pinned(ShardId(0), async move {
            let mut v = 0;
            for _ in 0..round_trips {
                to_b.send(v).await.unwrap();
                v = from_b.recv().await.unwrap();
            }
            v
        });
        assert_eq!(rt.block_on(a).unwrap(), round_trips);
        assert_eq!(rt.block_on(b).unwrap(), round_trips);
        if spin.is_zero() {
            let stats = h.stats();
            assert!(stats.total_doorbells() > 0, "{stats:?}");
        }
    }
}

#[test]
fn foreign_threads_spawn_and_wake_tasks() {
    let rt = Runtime::builder()
        .shards(2)
        .park_spin(std::time::Duration::ZERO)
        .build()
        .unwrap();
    let h = rt.handle();
    let done = Arc::new(AtomicUsize::new(0));
    let mut threads = Vec::new();
    for t in 0..4 {
        let h = h.clone();
        let done = done.clone();
        threads.push(std::thread::spawn(move || {
            for i in 0..2_000u64 {
                let (tx, rx) = async_channel::bounded::<u64>(1);
                let task = if i % 2 == 0 {
                    h.spawn(async move { rx.recv().await.unwrap() * 2 })
                } else {
                    h.spawn_pinned(ShardId((t + i as usize) % 2), async move {
                        rx.recv().await.unwrap() * 2
                    })
                };
                tx.send_blocking(i).unwrap();
                // Wait from this foreign thread through a plain thread parker.
                let out = spargio_rt::block_on(task).unwrap();
                assert_eq!(out, i * 2);
                done.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(done.load(Ordering::SeqCst), 8_000);
    let stats = h.stats();
    assert!(stats.total_polled() >= 8_000, "{stats:?}");
}

#[test]
fn runtime_block_on_drives_futures_from_the_caller_thread() {
    let rt = Runtime::builder().shards(2).build().unwrap();
    let out = rt.block_on(async {
        let h = RuntimeHandle::current();
        assert_eq!(h.current_shard(), None, "block_on runs off the shards");
        let mut sum = 0;
        for i in 0..100u64 {
            sum += spargio_rt::spawn(async move { i }).await.unwrap();
        }
        sum
    });
    assert_eq!(out, 4950);
}
