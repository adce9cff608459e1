//! A tour of the runtime: pinned and stealable tasks, skewed CPU work that
//! idle shards steal, cross-shard wake-ups and timers, then what each shard did.
//!
//! Run: `cargo run --release -p spargio-rt --example tour`

use std::rc::Rc;
use std::time::{Duration, Instant};

use spargio_rt::{RuntimeHandle, ShardId};

/// Burns CPU for `rounds` xorshift steps.
fn spin(rounds: u64) -> u64 {
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ rounds;
    for _ in 0..rounds {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    x
}

#[spargio_rt::main(shards = 2)]
async fn main(handle: RuntimeHandle) {
    let started = Instant::now();

    // 1. Skewed CPU work: every 16th job is 40x heavier. All start on this
    //    shard's side; idle shards steal the rest.
    let jobs: Vec<_> = (0..64u64)
        .map(|i| {
            let rounds = if i % 16 == 0 { 2_000_000 } else { 50_000 };
            handle.spawn_stealable_on(ShardId(0), async move {
                std::hint::black_box(spin(rounds));
                RuntimeHandle::current().current_shard()
            })
        })
        .collect();
    let mut ran_on = vec![0usize; handle.shard_count()];
    for j in jobs {
        if let Some(s) = j.await.expect("job finished") {
            ran_on[s.0] += 1;
        }
    }
    println!("stealable jobs finished per shard: {ran_on:?}");

    // 2. A !Send task with Rc state, pinned to this shard.
    let counter = Rc::new(std::cell::Cell::new(0));
    let c2 = counter.clone();
    spargio_rt::spawn_local(async move {
        for _ in 0..10 {
            c2.set(c2.get() + 1);
            spargio_rt::time::sleep(Duration::from_micros(50)).await;
        }
    })
    .await
    .expect("local task");
    println!("local task counted to {}", counter.get());

    // 3. Ping-pong between a task on shard 0 and one pinned on shard 1.
    let (to_1, from_0) = async_channel::bounded::<u32>(1);
    let (to_0, from_1) = async_channel::bounded::<u32>(1);
    let echo = handle.spawn_pinned(ShardId(1), async move {
        while let Ok(v) = from_0.recv().await {
            if to_0.send(v + 1).await.is_err() {
                break;
            }
        }
    });
    let t = Instant::now();
    let mut v = 0;
    for _ in 0..1000 {
        to_1.send(v).await.expect("echo alive");
        v = from_1.recv().await.expect("echo alive");
    }
    drop(to_1);
    echo.await.expect("echo task");
    println!(
        "1000 cross-shard round trips in {:?} (value {v})",
        t.elapsed()
    );

    // 4. What each shard did.
    let stats = handle.stats();
    println!(
        "\nshard  polled  stealable  stolen  steal-tries  doorbells-in  parks  enters  timers"
    );
    for (i, s) in stats.shards.iter().enumerate() {
        println!(
            "{i:>5}  {:>6}  {:>9}  {:>6}  {:>11}  {:>12}  {:>5}  {:>6}  {:>6}",
            s.tasks_polled,
            s.stealable_polled,
            s.stolen,
            s.steal_attempts,
            s.doorbells_received,
            s.parks,
            s.ring_enters,
            s.timers_fired
        );
    }
    println!("\ndone in {:?}", started.elapsed());
}
