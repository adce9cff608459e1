//! Runtimes built and dropped over and over leave no file descriptor
//! behind: every ring, eventfd and socket of a dropped runtime is closed,
//! whatever its tasks did (ran on other shards, were stolen, slept, used
//! the pools, did I/O). A test binary of its own: it counts the process's
//! open descriptors, which other tests running beside it would change.

use std::time::Duration;

use spargio_rt::net::{TcpListener, TcpStream};
use spargio_rt::{Runtime, RuntimeHandle, ShardId};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// One runtime's life: tasks spawned on one shard that finish on the
/// other, stealable ones, timers, both pools and a TCP exchange.
fn one_runtime() {
    spargio_rt::run_with(
        Runtime::builder().shards(2),
        |h: RuntimeHandle| async move {
            // Keeps shard 0 busy, so it does not park while the rest runs.
            let spinner = h.spawn_pinned(ShardId(0), async {
                loop {
                    spargio_rt::yield_now().await;
                }
            });
            let crossing = h.spawn_pinned(ShardId(0), async {
                let here = RuntimeHandle::current();
                for _ in 0..8 {
                    here.spawn_pinned(ShardId(1), async {}).await.unwrap();
                    here.spawn(async { spargio_rt::yield_now().await })
                        .await
                        .unwrap();
                }
            });
            crossing.await.unwrap();
            spargio_rt::time::sleep(Duration::from_micros(200)).await;
            assert_eq!(h.spawn_blocking(|| 7).await.unwrap(), 7);
            assert_eq!(h.spawn_background(async { 8 }).await.unwrap(), 8);
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (client, accepted) =
                futures_util::join!(TcpStream::connect(addr), listener.accept());
            drop((client.unwrap(), accepted.unwrap()));
            // Left running: dropped with the runtime.
            drop(spinner);
        },
    )
    .unwrap();
}

#[test]
fn runtimes_dropped_over_and_over_leave_no_descriptor_open() {
    // The first runtime may open what the process keeps (the blocking
    // pool's first thread, std's own descriptors).
    one_runtime();
    let before = open_fds();
    for _ in 0..20 {
        one_runtime();
    }
    let after = open_fds();
    assert!(
        after <= before,
        "{} descriptors more after 20 runtimes ({before} before)",
        after - before
    );
}
