use spargio_rt::{Runtime, RuntimeHandle, ShardId};
use std::time::{Duration, Instant};

#[test]
fn spawn_and_join() {
    let rt = Runtime::builder().shards(2).build().unwrap();
    let v = rt.block_on(async {
        let h = RuntimeHandle::current();
        let mut hs = Vec::new();
        for i in 0..100u64 {
            hs.push(h.spawn(async move { i * 2 }));
        }
        let mut s = 0;
        for j in hs {
            s += j.await.unwrap();
        }
        s
    });
    assert_eq!(v, 9900);
}

#[test]
fn pinned_runs_on_its_shard() {
    let out = spargio_rt::run_with(Runtime::builder().shards(2), |h| async move {
        let a = h.spawn_pinned(ShardId(1), async {
            RuntimeHandle::current().current_shard()
        });
        a.await.unwrap()
    })
    .unwrap();
    assert_eq!(out, Some(ShardId(1)));
}

#[test]
fn sleep_waits() {
    let out = spargio_rt::run_with(Runtime::builder().shards(2), |_| async move {
        let t = Instant::now();
        spargio_rt::time::sleep(Duration::from_millis(5)).await;
        t.elapsed()
    })
    .unwrap();
    assert!(out >= Duration::from_millis(5));
}
