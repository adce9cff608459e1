//! A shard that runs out of work parks at once, instead of spinning, when
//! another awake shard is on its CPU: the two would only take turns.

mod common;
use common::allowed_cpus;

use spargio_rt::{Runtime, ShardId};

/// Runs 200 round trips between a task on shard 0 and one on shard 1 with
/// the shards bound to `cpus`; returns the shards' shared-CPU parks.
fn shared_cpu_parks_over_round_trips(cpus: Vec<usize>) -> u64 {
    let rt = Runtime::builder()
        .shards(2)
        .thread_affinity(cpus)
        .build()
        .unwrap();
    let h = rt.handle();
    let (to_echo, from_pinger) = async_channel::unbounded::<u32>();
    let (to_pinger, from_echo) = async_channel::unbounded::<u32>();
    let echo = h.spawn_pinned(ShardId(1), async move {
        while let Ok(v) = from_pinger.recv().await {
            to_pinger.send(v + 1).await.unwrap();
        }
    });
    let sum = rt
        .block_on(h.spawn_pinned(ShardId(0), async move {
            let mut sum = 0u64;
            for i in 0..200 {
                to_echo.send(i).await.unwrap();
                sum += u64::from(from_echo.recv().await.unwrap());
            }
            sum
        }))
        .unwrap();
    rt.block_on(echo).unwrap();
    assert_eq!(sum, (1..=200).sum::<u64>(), "every reply came back once");
    rt.handle()
        .stats()
        .shards
        .iter()
        .map(|s| s.shared_cpu_parks)
        .sum()
}

#[test]
fn shards_bound_to_one_cpu_park_instead_of_spinning() {
    let cpu = allowed_cpus()[0];
    assert!(shared_cpu_parks_over_round_trips(vec![cpu, cpu]) > 0);
}

#[test]
fn shards_on_their_own_cpus_never_count_a_shared_park() {
    let cpus = allowed_cpus();
    if cpus.len() < 2 {
        eprintln!("skipped: this thread may run on one CPU only");
        return;
    }
    assert_eq!(shared_cpu_parks_over_round_trips(vec![cpus[0], cpus[1]]), 0);
}
