//! A shard's op table at its limit (`max_ops_in_flight`): ops wait for a
//! slot instead of failing, and every waiting op gets one, also when some
//! waiters are aborted or polled again while they wait.

use std::time::Duration;

use spargio_rt::io::{AsyncRead, AsyncWriteExt};
use spargio_rt::net::UnixStream;
use spargio_rt::{Runtime, ShardId, TaskPlacement};

/// Long enough that only a hang reaches it.
const HANG: Duration = Duration::from_secs(20);

fn one_shard_with_one_op_slot() -> Runtime {
    Runtime::builder()
        .shards(1)
        .max_ops_in_flight(1)
        .build()
        .expect("build runtime")
}

#[test]
fn waiting_ops_all_get_a_slot_when_some_waiters_are_aborted() {
    let rt = one_shard_with_one_op_slot();
    let handle = rt.handle();
    rt.block_on(async move {
        // The one slot: a read that waits for data we send later.
        let (mut reader, mut writer) = UnixStream::pair().unwrap();
        let holder = handle.spawn_pinned(ShardId(0), async move {
            let (n, buf) = reader.read(Vec::with_capacity(8)).await;
            (n.unwrap(), buf)
        });
        spargio_rt::time::sleep(Duration::from_millis(5)).await;

        // Eight more reads queue for the slot, each on its own socket pair
        // whose peer writes at once (so each finishes as soon as it runs).
        let mut waiters = Vec::new();
        let mut peers = Vec::new();
        for i in 0..8u8 {
            let (mut r, mut w) = UnixStream::pair().unwrap();
            peers.push(handle.spawn_pinned(ShardId(0), async move {
                let (res, _) = w.write_all(vec![i; 4]).await;
                res.unwrap();
                w
            }));
            waiters.push(handle.spawn_with_placement(
                TaskPlacement::Pinned(ShardId(0)),
                async move {
                    let (n, buf) = r.read(Vec::with_capacity(4)).await;
                    assert_eq!(n.unwrap(), 4);
                    buf[0]
                },
            ));
        }
        spargio_rt::time::sleep(Duration::from_millis(5)).await;
        // The first four waiters go away while they wait.
        for w in &waiters[..4] {
            w.abort();
        }
        spargio_rt::time::sleep(Duration::from_millis(5)).await;

        // Free the slot: the four live waiters must each get it in turn.
        let (res, _) = writer.write_all(b"go".to_vec()).await;
        res.unwrap();
        let (n, buf) = spargio_rt::time::timeout(HANG, holder)
            .await
            .expect("the slot holder's read finishes")
            .unwrap();
        assert_eq!(&buf[..n], b"go");
        let mut got = Vec::new();
        for w in waiters.drain(4..) {
            let v = spargio_rt::time::timeout(HANG, w)
                .await
                .expect("a waiting op got no slot: the table stranded it")
                .unwrap();
            got.push(v);
        }
        got.sort_unstable();
        assert_eq!(got, vec![4, 5, 6, 7]);
        for w in waiters {
            assert!(w.await.unwrap_err().is_cancelled());
        }
        for p in peers {
            drop(
                spargio_rt::time::timeout(HANG, p)
                    .await
                    .expect("peer write"),
            );
        }
    });
}

#[test]
fn a_waiting_op_polled_again_still_gets_its_slot() {
    let rt = one_shard_with_one_op_slot();
    let handle = rt.handle();
    rt.block_on(async move {
        let (mut reader, mut writer) = UnixStream::pair().unwrap();
        let holder = handle.spawn_pinned(ShardId(0), async move {
            let (n, _) = reader.read(Vec::with_capacity(8)).await;
            n.unwrap()
        });
        spargio_rt::time::sleep(Duration::from_millis(5)).await;
        let (mut r, mut w) = UnixStream::pair().unwrap();
        let waiter = handle.spawn_pinned(ShardId(0), async move {
            let read = std::pin::pin!(r.read(Vec::with_capacity(4)));
            let mut read = read;
            // Poll the waiting read again and again (a select against a
            // ticking timer does this), then let it finish.
            let mut polls = 0;
            loop {
                let tick = spargio_rt::time::sleep(Duration::from_micros(200));
                match futures_util::future::select(read.as_mut(), std::pin::pin!(tick)).await {
                    futures_util::future::Either::Left(((n, _), _)) => return (n.unwrap(), polls),
                    futures_util::future::Either::Right(_) => polls += 1,
                }
            }
        });
        let (res, _) = w.write_all(vec![1; 4]).await;
        res.unwrap();
        spargio_rt::time::sleep(Duration::from_millis(10)).await;
        let (res, _) = writer.write_all(b"go".to_vec()).await;
        res.unwrap();
        assert_eq!(
            spargio_rt::time::timeout(HANG, holder)
                .await
                .unwrap()
                .unwrap(),
            2
        );
        let (n, polls) = spargio_rt::time::timeout(HANG, waiter)
            .await
            .expect("the re-polled waiting op got no slot")
            .unwrap();
        assert_eq!(n, 4);
        assert!(
            polls > 0,
            "the read waited for the slot while the timer ticked"
        );
    });
}

#[test]
fn an_op_whose_entry_builder_panics_gives_its_slot_back() {
    let rt = one_shard_with_one_op_slot();
    let h = rt.handle();
    let panicked = rt.block_on(h.spawn_pinned(ShardId(0), async {
        // SAFETY: the builder never returns an entry (it panics), so there
        // is nothing for the kernel to use.
        let op = unsafe {
            spargio_rt::uring::submit((), |_: &mut ()| -> io_uring::squeue::Entry {
                panic!("builder fails")
            })
        };
        let _ = op.await;
    }));
    assert!(panicked.unwrap_err().is_panic());
    // The only slot must be free again: a plain op completes.
    let done = rt.block_on(h.spawn_pinned(ShardId(0), async {
        // SAFETY: a NOP touches no memory.
        let op = unsafe {
            spargio_rt::uring::submit((), |_: &mut ()| io_uring::opcode::Nop::new().build())
        };
        spargio_rt::time::timeout(HANG, op).await.is_ok()
    }));
    assert!(done.unwrap(), "the panicked op still held the only slot");
}
