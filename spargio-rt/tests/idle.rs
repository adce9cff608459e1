//! An idle runtime blocks in the kernel instead of spinning.

use std::time::Duration;

use spargio_rt::{Runtime, RuntimeHandle};

/// Waits (bounded) until no shard entered its ring for 20 ms: each has
/// parked, whatever the machine's load delayed. A shard that spins never
/// gets there, and the test's own check then reports it.
fn settle(h: &RuntimeHandle) {
    let enters = || -> Vec<u64> { h.stats().shards.iter().map(|s| s.ring_enters).collect() };
    for _ in 0..250 {
        let before = enters();
        std::thread::sleep(Duration::from_millis(20));
        if enters() == before {
            return;
        }
    }
}

#[test]
fn idle_shards_park_instead_of_spinning() {
    let rt = Runtime::builder().shards(2).build().unwrap();
    let h = rt.handle();
    // Some work first, so the shards have been through their loops.
    rt.block_on(async {
        for _ in 0..100 {
            spargio_rt::spawn(async {}).await.unwrap();
        }
    });
    settle(&h);
    let before = h.stats();
    std::thread::sleep(Duration::from_millis(200));
    let after = h.stats();
    for (b, a) in before.shards.iter().zip(&after.shards) {
        // A spinning shard would make thousands of loop turns; a parked one
        // makes none (it waits for a CQE with no timer set).
        assert!(a.ring_enters - b.ring_enters <= 2, "{b:?} -> {a:?}");
        assert_eq!(a.tasks_polled, b.tasks_polled);
    }
}

#[test]
fn a_shard_whose_nearest_timer_is_centuries_away_parks() {
    // The kernel wraps a wait of about 292 years or more into the past and
    // returns at once: without a cap on the wait the shard would spin.
    let rt = Runtime::builder().shards(1).build().unwrap();
    let h = rt.handle();
    let far = [
        Duration::from_millis(u64::MAX),
        Duration::from_secs(10_000_000_000),
        Duration::MAX,
    ];
    let sleepers: Vec<_> = far
        .into_iter()
        .map(|d| {
            h.spawn_pinned(spargio_rt::ShardId(0), async move {
                spargio_rt::time::sleep(d).await;
            })
        })
        .collect();
    settle(&h);
    let before = h.stats();
    std::thread::sleep(Duration::from_millis(200));
    let after = h.stats();
    let (b, a) = (&before.shards[0], &after.shards[0]);
    assert!(a.ring_enters - b.ring_enters <= 2, "{b:?} -> {a:?}");
    for s in &sleepers {
        assert!(!s.is_finished(), "a far timer never fires early");
    }
    for s in sleepers {
        s.abort();
    }
}

#[test]
fn parked_shards_use_no_cpu_time() {
    // CPU time (not wall time): an idle shard thread must not accumulate it.
    let rt = Runtime::builder()
        .shards(2)
        .thread_name("idle-probe")
        .build()
        .unwrap();
    settle(&rt.handle());
    let before = shard_cpu_ticks("idle-probe");
    std::thread::sleep(Duration::from_millis(300));
    let after = shard_cpu_ticks("idle-probe");
    assert_eq!(before.len(), 2);
    // utime+stime in clock ticks (10 ms each): a spinning thread would gain
    // about 30 in 300 ms; a parked one gains none (allow 1 for rounding).
    for (b, a) in before.iter().zip(&after) {
        assert!(a - b <= 1, "{before:?} -> {after:?}");
    }
    drop(rt);
}

/// utime + stime of each thread of this process whose name starts with `prefix`.
fn shard_cpu_ticks(prefix: &str) -> Vec<u64> {
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        if !comm.trim().starts_with(prefix) {
            continue;
        }
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap();
        let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = after_comm.split_whitespace().collect();
        // Fields 14 and 15 of stat (utime, stime) are 11 and 12 after ") ".
        out.push(f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap());
    }
    out
}
