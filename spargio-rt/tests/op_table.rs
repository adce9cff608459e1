//! A shard's op table at its limit (`max_ops_in_flight`): ops wait for a
//! slot instead of failing, and every waiting op gets one, also when some
//! waiters are aborted or polled again while they wait.

use std::future::Future;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use io_uring::{opcode, types};
use spargio_rt::io::{AsyncRead, AsyncWriteExt};
use spargio_rt::net::UnixStream;
use spargio_rt::uring::Cqe;
use spargio_rt::{Runtime, ShardId, TaskPlacement};

mod common;

/// Long enough that only a hang reaches it.
const HANG: Duration = Duration::from_secs(20);

/// Polls `fut` once, counts that in `polled`, then awaits it to the end:
/// a test waits on the count to know the op has taken its slot or queued
/// for one.
async fn counted_after_first_poll<F: Future>(fut: F, polled: Arc<AtomicUsize>) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let first = std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await;
    polled.fetch_add(1, Ordering::SeqCst);
    match first {
        Poll::Ready(v) => v,
        Poll::Pending => fut.await,
    }
}

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
        let holding = Arc::new(AtomicUsize::new(0));
        let took = holding.clone();
        let holder = handle.spawn_pinned(ShardId(0), async move {
            let (n, buf) = counted_after_first_poll(reader.read(Vec::with_capacity(8)), took).await;
            (n.unwrap(), buf)
        });
        common::eventually("the holder's read took the slot", || {
            holding.load(Ordering::SeqCst) == 1
        })
        .await;

        // Eight more reads queue for the slot, each on its own socket pair
        // whose peer writes at once (so each finishes as soon as it runs).
        let mut waiters = Vec::new();
        let mut peers = Vec::new();
        let queued = Arc::new(AtomicUsize::new(0));
        for i in 0..8u8 {
            let (mut r, mut w) = UnixStream::pair().unwrap();
            peers.push(handle.spawn_pinned(ShardId(0), async move {
                let (res, _) = w.write_all(vec![i; 4]).await;
                res.unwrap();
                w
            }));
            let queued = queued.clone();
            waiters.push(handle.spawn_with_placement(
                TaskPlacement::Pinned(ShardId(0)),
                async move {
                    let (n, buf) =
                        counted_after_first_poll(r.read(Vec::with_capacity(4)), queued).await;
                    assert_eq!(n.unwrap(), 4);
                    buf[0]
                },
            ));
        }
        common::eventually("every waiter queued for the slot", || {
            queued.load(Ordering::SeqCst) == 8
        })
        .await;
        // The first four waiters go away while they wait.
        for w in &waiters[..4] {
            w.abort();
        }
        common::eventually("the aborted waiters ended", || {
            waiters[..4].iter().all(|w| w.is_finished())
        })
        .await;

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
        let holding = Arc::new(AtomicUsize::new(0));
        let took = holding.clone();
        let holder = handle.spawn_pinned(ShardId(0), async move {
            let (n, _) = counted_after_first_poll(reader.read(Vec::with_capacity(8)), took).await;
            n.unwrap()
        });
        common::eventually("the holder's read took the slot", || {
            holding.load(Ordering::SeqCst) == 1
        })
        .await;
        let (mut r, mut w) = UnixStream::pair().unwrap();
        let (res, _) = w.write_all(vec![1; 4]).await;
        res.unwrap();
        let repolls = Arc::new(AtomicUsize::new(0));
        let polls = repolls.clone();
        let waiter = handle.spawn_pinned(ShardId(0), async move {
            let read = std::pin::pin!(r.read(Vec::with_capacity(4)));
            let mut read = read;
            // Poll the waiting read again and again (a select against a
            // ticking timer does this), then let it finish.
            loop {
                let tick = spargio_rt::time::sleep(Duration::from_micros(200));
                match futures_util::future::select(read.as_mut(), std::pin::pin!(tick)).await {
                    futures_util::future::Either::Left(((n, _), _)) => {
                        return (n.unwrap(), polls.load(Ordering::SeqCst))
                    }
                    futures_util::future::Either::Right(_) => {
                        polls.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        });
        common::eventually("the waiting read was polled again", || {
            repolls.load(Ordering::SeqCst) >= 2
        })
        .await;
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

/// Polls `f` once, from inside a task.
async fn poll_once<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *f).poll(cx))).await
}

type Socket = std::os::unix::net::UnixStream;

/// What a native read of a socket into a buffer resolves to.
type ReadOutput = (std::io::Result<Cqe>, (Socket, Vec<u8>));

/// A native read that, once submitted, holds a slot of its shard's table
/// until a byte is written to the peer returned with it. A native op owns
/// its data, so the future can leave the task that submitted it.
fn blocked_read() -> (impl Future<Output = ReadOutput> + Send + Unpin, Socket) {
    let (sock, peer) = Socket::pair().unwrap();
    // SAFETY: the SQE points into the op's own buffer and names the op's
    // own socket, both kept by its data until the final CQE.
    let op = unsafe {
        spargio_rt::uring::submit((sock, vec![0u8; 8]), |(s, buf)| {
            opcode::Read::new(types::Fd(s.as_raw_fd()), buf.as_mut_ptr(), buf.len() as u32).build()
        })
    };
    (op, peer)
}

/// Submits `op` on shard `shard` (its first poll, from a task pinned
/// there) and hands back the future, still pending.
// The task hands its half-polled op out of the runtime on purpose.
#[allow(clippy::async_yields_async)]
fn first_poll_on<F>(rt: &Runtime, shard: usize, op: F) -> F
where
    F: Future + Send + Unpin + 'static,
{
    let h = rt.handle();
    rt.block_on(h.spawn_pinned(ShardId(shard), async move {
        let mut op = op;
        assert!(poll_once(&mut op).await.is_pending(), "the op is pending");
        op
    }))
    .unwrap()
}

/// A NOP that keeps `data` until its CQE.
fn nop<T: Send + 'static>(
    data: T,
) -> impl Future<Output = (std::io::Result<Cqe>, T)> + Send + Unpin {
    // SAFETY: a NOP touches no memory.
    unsafe { spargio_rt::uring::submit(data, |_| opcode::Nop::new().build()) }
}

#[test]
fn a_waiting_op_that_moves_to_another_full_shard_gets_that_shards_slot() {
    let rt = Runtime::builder()
        .shards(2)
        .max_ops_in_flight(1)
        .build()
        .expect("build runtime");
    let h = rt.handle();
    // Both shards' only slot is taken.
    let (hold0, mut peer0) = blocked_read();
    let (hold1, mut peer1) = blocked_read();
    let hold0 = first_poll_on(&rt, 0, hold0);
    let hold1 = first_poll_on(&rt, 1, hold1);
    // A NOP waits for shard 0's slot...
    let op = first_poll_on(&rt, 0, nop(()));
    // ...then moves to shard 1 (as a stolen task does) and waits there.
    let (polled_tx, polled_rx) = std::sync::mpsc::channel();
    let waiter = h.spawn_pinned(ShardId(1), async move {
        let mut op = op;
        assert!(poll_once(&mut op).await.is_pending());
        polled_tx.send(()).unwrap();
        op.await.0.unwrap().res
    });
    polled_rx.recv_timeout(HANG).expect("the waiter polled");
    // Shard 1's slot frees; shard 0's stays taken.
    peer1.write_all(b"1").unwrap();
    let res = rt
        .block_on(spargio_rt::time::timeout(HANG, waiter))
        .expect("the op waits for the slot of the shard it was polled on last")
        .unwrap();
    assert_eq!(res, 0);
    let (read, _) = rt.block_on(hold1);
    assert_eq!(read.unwrap().res, 1);
    peer0.write_all(b"0").unwrap();
    let (read, _) = rt.block_on(hold0);
    assert_eq!(read.unwrap().res, 1);
}

#[test]
fn an_op_dropped_while_it_waits_for_a_slot_releases_its_data_at_once() {
    struct SetOnDrop(Arc<AtomicBool>);
    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let rt = one_shard_with_one_op_slot();
    let (hold, mut peer) = blocked_read();
    let hold = first_poll_on(&rt, 0, hold);
    let dropped = Arc::new(AtomicBool::new(false));
    let waiting = first_poll_on(&rt, 0, nop(SetOnDrop(dropped.clone())));
    drop(waiting);
    assert!(
        dropped.load(Ordering::SeqCst),
        "the data (buffers, fd) of an op dropped while it waits goes at once"
    );
    // The slot still works for a live op.
    peer.write_all(b"x").unwrap();
    assert_eq!(rt.block_on(hold).0.unwrap().res, 1);
    let h = rt.handle();
    let (res, ()) = rt
        .block_on(spargio_rt::time::timeout(
            HANG,
            h.spawn_pinned(ShardId(0), nop(())),
        ))
        .expect("the slot is free")
        .unwrap();
    assert_eq!(res.unwrap().res, 0);
}

#[test]
fn an_op_that_waited_for_a_slot_fails_cleanly_when_polled_off_the_runtime() {
    let rt = one_shard_with_one_op_slot();
    let (hold, mut peer) = blocked_read();
    let hold = first_poll_on(&rt, 0, hold);
    let waiting = first_poll_on(&rt, 0, nop(vec![7u8; 4]));
    // A plain thread, with no runtime to submit on: the op fails at once
    // and gives its data back.
    let (res, data) = std::thread::spawn(move || {
        let mut op = waiting;
        let waker = futures_util::task::noop_waker();
        match Pin::new(&mut op).poll(&mut Context::from_waker(&waker)) {
            Poll::Ready(out) => out,
            Poll::Pending => panic!("off the runtime the op cannot wait"),
        }
    })
    .join()
    .expect("polling the op off the runtime panicked");
    assert!(res.is_err());
    assert_eq!(data, vec![7u8; 4]);
    peer.write_all(b"x").unwrap();
    assert_eq!(rt.block_on(hold).0.unwrap().res, 1);
}

#[test]
fn ops_from_outside_the_runtime_wait_for_a_slot_too() {
    // `block_on` runs its future on this thread, outside the shards: its
    // ops go to a shard through its remote queue, and count against the
    // runtime's slots for such ops (`max_ops_in_flight` per shard).
    let rt = one_shard_with_one_op_slot();
    rt.block_on(async {
        let (mut hold, mut hold_peer) = blocked_read();
        assert!(poll_once(&mut hold).await.is_pending());
        let (mut waiting, mut waiting_peer) = blocked_read();
        assert!(poll_once(&mut waiting).await.is_pending());
        // Its byte is there, but the op was not submitted: no slot.
        waiting_peer.write_all(b"w").unwrap();
        for _ in 0..20 {
            spargio_rt::time::sleep(Duration::from_millis(1)).await;
            assert!(
                poll_once(&mut waiting).await.is_pending(),
                "a second op from outside the runtime ran past the limit"
            );
        }
        // The slot frees; the waiting op gets it and finds its byte.
        hold_peer.write_all(b"h").unwrap();
        let (read, _) = spargio_rt::time::timeout(HANG, hold)
            .await
            .expect("held op");
        assert_eq!(read.unwrap().res, 1);
        let (read, (_, buf)) = spargio_rt::time::timeout(HANG, waiting)
            .await
            .expect("the waiting op got the freed slot");
        assert_eq!(read.unwrap().res, 1);
        assert_eq!(buf[0], b'w');
    });
}

#[test]
fn many_ops_from_outside_the_runtime_all_complete_through_few_slots() {
    let rt = Runtime::builder()
        .shards(2)
        .max_ops_in_flight(2)
        .build()
        .expect("build runtime");
    let results = rt.block_on(spargio_rt::time::timeout(
        HANG,
        futures_util::future::join_all((0..200u32).map(nop)),
    ));
    let results = results.expect("every op got a slot in turn");
    for (i, (res, data)) in results.into_iter().enumerate() {
        assert_eq!(res.unwrap().res, 0);
        assert_eq!(data, i as u32);
    }
}

#[test]
fn an_op_waiting_for_a_slot_from_outside_the_runtime_fails_when_it_shuts_down() {
    let rt = one_shard_with_one_op_slot();
    let (mut hold, _hold_peer) = blocked_read();
    let (mut waiting, _waiting_peer) = blocked_read();
    rt.block_on(async {
        assert!(poll_once(&mut hold).await.is_pending());
        assert!(poll_once(&mut waiting).await.is_pending());
    });
    // Shut down with one op holding the slot and one waiting for it.
    let handle = rt.handle();
    rt.shutdown_timeout(Duration::from_secs(5));
    drop(handle);
    let (res, _) = std::thread::spawn(move || {
        let waker = futures_util::task::noop_waker();
        match Pin::new(&mut waiting).poll(&mut Context::from_waker(&waker)) {
            Poll::Ready(out) => out,
            Poll::Pending => panic!("the op waits for a slot of a runtime that is gone"),
        }
    })
    .join()
    .expect("no panic");
    assert!(res.is_err());
    let (res, _) = futures_util::future::FutureExt::now_or_never(hold)
        .expect("the held op was cancelled at shutdown");
    assert!(res.is_err() || res.unwrap().res < 0);
}

#[test]
fn an_op_from_outside_the_runtime_whose_builder_panics_gives_its_slot_back() {
    let rt = one_shard_with_one_op_slot();
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async {
            // SAFETY: the builder never returns an entry (it panics), so
            // there is nothing for the kernel to use.
            let op = unsafe {
                spargio_rt::uring::submit((), |_: &mut ()| -> io_uring::squeue::Entry {
                    panic!("builder fails (on purpose)")
                })
            };
            let _ = op.await;
        })
    }));
    assert!(panicked.is_err());
    // The only slot for ops from outside the runtime must be free again.
    let done = rt.block_on(spargio_rt::time::timeout(HANG, nop(())));
    assert_eq!(done.expect("the slot is free").0.unwrap().res, 0);
}

/// Writes to `peer`, which completes `hold` (the read holding the slot),
/// and checks that the read completes although the waiter woken for the
/// slot panics.
fn free_the_slot_and_see_its_op_complete(
    rt: &Runtime,
    hold: impl Future<Output = ReadOutput>,
    peer: &mut Socket,
) {
    peer.write_all(b"x").unwrap();
    let (read, _) = rt
        .block_on(spargio_rt::time::timeout(HANG, hold))
        .expect("the read that freed the slot never completed");
    assert_eq!(read.unwrap().res, 1);
}

/// A waker that panics when woken.
struct PanicOnWake;

impl std::task::Wake for PanicOnWake {
    fn wake(self: Arc<Self>) {
        panic!("a waker that panics (on purpose)");
    }
}

#[test]
fn a_slot_waiter_whose_waker_panics_does_not_lose_the_op_that_freed_the_slot() {
    let rt = one_shard_with_one_op_slot();
    // The slot: a read submitted on shard 0, awaited from outside later.
    let (hold, mut hold_peer) = blocked_read();
    let hold = first_poll_on(&rt, 0, hold);
    // A second read on shard 0 queues for the slot with a waker that
    // panics when the slot frees.
    let h = rt.handle();
    let (waiting, _waiting_peer) = rt
        .block_on(h.spawn_pinned(ShardId(0), async {
            let (mut op, peer) = blocked_read();
            let waker = std::task::Waker::from(Arc::new(PanicOnWake));
            let polled = Pin::new(&mut op).poll(&mut Context::from_waker(&waker));
            assert!(polled.is_pending(), "the table is full: the op waits");
            (op, peer)
        }))
        .unwrap();
    free_the_slot_and_see_its_op_complete(&rt, hold, &mut hold_peer);
    drop(waiting);
}

#[test]
fn a_remote_slot_waiter_whose_waker_panics_does_not_lose_the_op_that_freed_the_slot() {
    let rt = one_shard_with_one_op_slot();
    // Both ops come from outside the runtime: the first holds the one slot
    // such ops share, the second waits for it with a waker that panics.
    let (mut hold, mut hold_peer) = blocked_read();
    let (mut waiting, _waiting_peer) = blocked_read();
    rt.block_on(async {
        assert!(poll_once(&mut hold).await.is_pending());
        let waker = std::task::Waker::from(Arc::new(PanicOnWake));
        let polled = Pin::new(&mut waiting).poll(&mut Context::from_waker(&waker));
        assert!(polled.is_pending(), "the slot is taken: the op waits");
    });
    free_the_slot_and_see_its_op_complete(&rt, hold, &mut hold_peer);
    drop(waiting);
}

#[test]
fn a_task_that_keeps_submitting_does_not_starve_an_op_queued_before_it() {
    const BUSY_OPS: usize = 10_000;
    let rt = one_shard_with_one_op_slot();
    let h = rt.handle();
    let done = Arc::new(AtomicUsize::new(0));
    let busy = {
        let done = done.clone();
        h.spawn_pinned(ShardId(0), async move {
            for _ in 0..BUSY_OPS {
                let (res, ()) = nop(()).await;
                res.unwrap();
                done.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let queued = {
        let done = done.clone();
        h.spawn_pinned(ShardId(0), async move {
            // Queued behind the busy task's op, which holds the one slot.
            let (res, ()) = nop(()).await;
            res.unwrap();
            done.load(Ordering::SeqCst)
        })
    };
    let busy_ops_before = rt
        .block_on(spargio_rt::time::timeout(HANG, queued))
        .expect("the queued op got no slot")
        .unwrap();
    rt.block_on(busy).unwrap();
    assert!(
        busy_ops_before < 100,
        "the queued op waited for {busy_ops_before} of the busy task's ops"
    );
}

#[test]
fn a_slot_set_aside_for_an_op_dropped_on_another_thread_goes_to_the_next_waiter() {
    let rt = one_shard_with_one_op_slot();
    let h = rt.handle();
    let (hold, mut peer) = blocked_read();
    let hold = first_poll_on(&rt, 0, hold);
    // X waits for the slot, Y behind it.
    let x = first_poll_on(&rt, 0, nop(()));
    let polled = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let y = {
        let (polled, done) = (polled.clone(), done.clone());
        h.spawn_pinned(ShardId(0), async move {
            let (res, ()) = counted_after_first_poll(nop(()), polled).await;
            done.store(true, Ordering::SeqCst);
            res.unwrap().res
        })
    };
    let by = std::time::Instant::now() + HANG;
    while polled.load(Ordering::SeqCst) == 0 {
        assert!(std::time::Instant::now() < by, "Y never polled");
        std::thread::yield_now();
    }
    // The slot frees and is set aside for X; the shard then has nothing
    // to do and sleeps.
    let parks = || rt.handle().stats().shards[0].parks;
    let before = parks();
    peer.write_all(b"x").unwrap();
    assert_eq!(rt.block_on(hold).0.unwrap().res, 1);
    while parks() == before {
        assert!(std::time::Instant::now() < by, "shard 0 never slept");
        std::thread::yield_now();
    }
    // X is dropped here, off the shard, which is not told. Y must still
    // get the slot (watched from this thread: a runtime timer would wake
    // the shard and hide a stranded Y).
    drop(x);
    while !done.load(Ordering::SeqCst) {
        assert!(
            std::time::Instant::now() < by,
            "Y waits for a slot set aside for an op that is gone"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(rt.block_on(y).unwrap(), 0);
}

/// A waker that, when woken, polls an op of its own right there: on the
/// shard, inside the wake-up.
struct SubmitsWhenWoken<F> {
    op: std::sync::Mutex<Option<F>>,
    submitted: AtomicBool,
}

impl<F: Future + Send + Unpin> std::task::Wake for SubmitsWhenWoken<F> {
    fn wake(self: Arc<Self>) {
        let taken = self.op.lock().unwrap().take();
        if let Some(mut op) = taken {
            let waker = futures_util::task::noop_waker();
            let _ = Pin::new(&mut op).poll(&mut Context::from_waker(&waker));
            self.submitted.store(true, Ordering::SeqCst);
        }
    }
}

#[test]
fn a_slot_waker_that_submits_an_op_at_once_does_not_break_the_shard() {
    let rt = one_shard_with_one_op_slot();
    let h = rt.handle();
    let (hold, mut peer) = blocked_read();
    let hold = first_poll_on(&rt, 0, hold);
    let wake = Arc::new(SubmitsWhenWoken {
        op: std::sync::Mutex::new(Some(nop(()))),
        submitted: AtomicBool::new(false),
    });
    let waiting = {
        let wake = wake.clone();
        // The task hands its half-polled op out on purpose.
        #[allow(clippy::async_yields_async)]
        rt.block_on(h.spawn_pinned(ShardId(0), async move {
            let mut op = nop(());
            let waker = std::task::Waker::from(wake);
            let first = Pin::new(&mut op).poll(&mut Context::from_waker(&waker));
            assert!(first.is_pending(), "the table is full");
            op
        }))
        .unwrap()
    };
    // The slot frees: the waiting op's waker runs on the shard and submits
    // an op while the shard hands out the slot.
    peer.write_all(b"x").unwrap();
    assert_eq!(rt.block_on(hold).0.unwrap().res, 1);
    let by = std::time::Instant::now() + HANG;
    while !wake.submitted.load(Ordering::SeqCst) {
        assert!(std::time::Instant::now() < by, "the waker never ran");
        std::thread::yield_now();
    }
    // The shard still runs ops: the waiting one takes its slot.
    let (res, ()) = rt.block_on(h.spawn_pinned(ShardId(0), waiting)).unwrap();
    assert_eq!(res.unwrap().res, 0);
}

#[test]
fn a_paused_accept_that_waited_for_a_slot_does_not_keep_one() {
    let rt = one_shard_with_one_op_slot();
    let h = rt.handle();
    // The one slot is taken.
    let (hold, mut peer) = blocked_read();
    let hold = first_poll_on(&rt, 0, hold);
    // A multishot accept queues for it, and is paused while it waits.
    let incoming = rt
        .block_on(h.spawn_pinned(ShardId(0), async move {
            let listener =
                spargio_rt::net::TcpListener::bind_with(([127, 0, 0, 1], 0).into(), 16, false)
                    .unwrap();
            let mut incoming = listener.incoming();
            let first = std::future::poll_fn(|cx| Poll::Ready(incoming.poll_next_conn(cx))).await;
            assert!(first.is_pending(), "the accept waits for a slot");
            incoming.pause();
            assert!(incoming.next_paused().await.is_none());
            incoming
        }))
        .unwrap();
    // The slot frees; the paused accept is not polled for it, so it goes
    // to the next op instead of staying set aside.
    peer.write_all(b"1").unwrap();
    let (read, _) = rt.block_on(hold);
    assert_eq!(read.unwrap().res, 1);
    let res = rt
        .block_on(h.spawn_pinned(ShardId(0), async {
            spargio_rt::time::timeout(HANG, nop(())).await
        }))
        .unwrap()
        .expect("a paused accept kept the only slot")
        .0
        .unwrap()
        .res;
    assert_eq!(res, 0);
    drop(incoming);
}
