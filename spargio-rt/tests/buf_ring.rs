//! Provided-buffer rings and multishot receive.

use spargio_rt::io::{AsyncReadExt, AsyncWriteExt, BufRing};
use spargio_rt::net::UnixStream;
use spargio_rt::{Runtime, ShardId};

mod common;

fn on_shard<T: Send + 'static, F: std::future::Future<Output = T> + 'static>(
    f: impl FnOnce() -> F + Send + 'static,
) -> T {
    let rt = Runtime::builder().shards(2).build().unwrap();
    let h = rt.handle();
    rt.block_on(h.spawn_local_on(ShardId(1), f)).unwrap()
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 253) as u8).collect()
}

#[test]
fn multishot_receive_delivers_the_stream_in_order() {
    let (got, idle_available) = on_shard(|| async {
        let ring = BufRing::new(16, 4096).unwrap();
        let (mut a, b) = UnixStream::pair().unwrap();
        let data = pattern(1 << 20);
        let sender = spargio_rt::spawn(async move {
            let (r, _) = a.write_all(data).await;
            r.unwrap();
        });
        let mut rx = b.recv_multishot(&ring);
        let mut got = Vec::new();
        while got.len() < 1 << 20 {
            let buf = rx.next().await.unwrap().expect("not at EOF yet");
            got.extend_from_slice(&buf);
        }
        sender.await.unwrap();
        // Every buffer is back once the receiver let go of them.
        (got, ring.available())
    });
    assert_eq!(got, pattern(1 << 20));
    assert_eq!(idle_available, 16, "an idle connection holds no buffer");
}

#[test]
fn a_dry_ring_pauses_the_receive_and_loses_nothing() {
    let (got, dry_seen) = on_shard(|| async {
        let ring = BufRing::new(2, 64).unwrap();
        let (mut a, b) = UnixStream::pair().unwrap();
        let total = 10_000;
        let (r, _) = a.write_all(pattern(total)).await;
        r.unwrap();
        drop(a);
        let mut rx = b.recv_multishot(&ring);
        let mut got = Vec::new();
        let mut dry_seen = false;
        let mut held = Vec::new();
        loop {
            let Some(buf) = rx.next().await.unwrap() else {
                break;
            };
            held.push(buf);
            if ring.available() == 0 {
                // Holding every buffer: the kernel ends the receive with
                // ENOBUFS; the data must wait in the socket for us.
                dry_seen = true;
                for b in held.drain(..) {
                    got.extend_from_slice(&b);
                }
            }
        }
        for b in held.drain(..) {
            got.extend_from_slice(&b);
        }
        (got, dry_seen)
    });
    assert!(dry_seen, "the two-buffer ring ran dry");
    assert_eq!(got, pattern(10_000));
}

#[test]
fn dropping_the_receive_returns_queued_buffers() {
    let available = on_shard(|| async {
        let ring = BufRing::new(8, 128).unwrap();
        let (mut a, b) = UnixStream::pair().unwrap();
        let (r, _) = a.write_all(pattern(4000)).await;
        r.unwrap();
        let mut rx = b.recv_multishot(&ring);
        let first = rx.next().await.unwrap().unwrap();
        assert!(!first.is_empty());
        drop(first);
        drop(rx);
        // Wait (bounded) for the cancel's final completion to come in and
        // the queued buffers to go back.
        for _ in 0..5000 {
            if ring.available() == 8 {
                break;
            }
            spargio_rt::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        ring.available()
    });
    assert_eq!(available, 8);
}

#[test]
fn a_receive_on_another_shard_is_refused_not_spun() {
    let rt = Runtime::builder().shards(2).build().unwrap();
    let h = rt.handle();
    let ring = rt
        .block_on(h.spawn_pinned(ShardId(0), async { BufRing::new(4, 64).unwrap() }))
        .unwrap();
    let err = rt
        .block_on(h.spawn_pinned(ShardId(1), async move {
            let (_a, b) = UnixStream::pair().unwrap();
            let mut rx = b.recv_multishot(&ring);
            rx.next().await.map(|_| ()).unwrap_err()
        }))
        .unwrap();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn buffers_already_received_are_handed_out_after_the_receive_moves_shard() {
    let rt = Runtime::builder().shards(2).build().unwrap();
    let h = rt.handle();
    // On the ring's shard: arm the receive, take one buffer, and let a
    // second one queue up.
    let (ring, mut a, mut rx, first) = rt
        .block_on(h.spawn_pinned(ShardId(0), async {
            let ring = BufRing::new(8, 256).unwrap();
            let (mut a, b) = UnixStream::pair().unwrap();
            let mut rx = b.recv_multishot(&ring);
            let (r, _) = a.write_all(b"first".to_vec()).await;
            r.unwrap();
            let first = rx.next().await.unwrap().expect("data").to_vec();
            let (r, _) = a.write_all(b"second".to_vec()).await;
            r.unwrap();
            for _ in 0..5000 {
                if rx.queued() > 0 {
                    break;
                }
                spargio_rt::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            assert!(rx.queued() > 0, "the second write was received");
            (ring, a, rx, first)
        }))
        .unwrap();
    assert_eq!(first, b"first");
    // On the other shard (where a stolen task would find itself): what was
    // received is still handed out, the receive still armed on shard 0
    // keeps delivering, and the end of the stream is seen.
    let (second, third, end) = rt
        .block_on(h.spawn_pinned(ShardId(1), async move {
            let second = rx.next().await.unwrap().expect("queued data").to_vec();
            let (r, _) = a.write_all(b"third".to_vec()).await;
            r.unwrap();
            let third = rx.next().await.unwrap().expect("more data").to_vec();
            drop(a);
            let end = rx.next().await.unwrap().map(|b| b.to_vec());
            (second, third, end)
        }))
        .unwrap();
    assert_eq!(second, b"second");
    assert_eq!(third, b"third");
    assert_eq!(end, None);
    assert_eq!(ring.available(), 8, "every buffer went back to the ring");
}

#[test]
fn a_moved_receive_that_needs_rearming_fails_after_its_data_and_loses_nothing() {
    let rt = Runtime::builder().shards(2).build().unwrap();
    let h = rt.handle();
    let total = 1000;
    // A queue cap of one: the first completion cancels the receive, so it
    // needs re-arming once what it took is handed out.
    let (_ring, b, rx, first) = rt
        .block_on(h.spawn_pinned(ShardId(0), async move {
            let ring = BufRing::new(8, 256).unwrap();
            let (mut a, b) = UnixStream::pair().unwrap();
            let (r, _) = a.write_all(pattern(total)).await;
            r.unwrap();
            drop(a);
            let mut rx = b.recv_multishot(&ring);
            rx.max_queued(1);
            let first = rx.next().await.unwrap().expect("data").to_vec();
            (ring, b, rx, first)
        }))
        .unwrap();
    let (got, err) = rt
        .block_on(h.spawn_pinned(ShardId(1), async move {
            let (mut b, mut rx) = (b, rx);
            let mut got = first;
            // The moved receive fails once it would need re-arming; a
            // kernel that took the whole burst at once and posted its end
            // of stream ends it instead.
            let err = loop {
                match rx.next().await {
                    Ok(Some(buf)) => got.extend_from_slice(&buf),
                    Ok(None) => break None,
                    Err(e) => break Some(e),
                }
            };
            // The rest is still in the socket.
            let (r, rest) = b.read_exact(vec![0u8; total - got.len()]).await;
            r.unwrap();
            got.extend_from_slice(&rest);
            (got, err)
        }))
        .unwrap();
    if let Some(err) = err {
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    }
    assert_eq!(got, pattern(total), "nothing lost");
}

#[test]
fn a_ring_outside_a_shard_is_a_clear_error() {
    let e = BufRing::new(4, 64).err().expect("no shard here");
    assert!(e.to_string().contains("shard"), "{e}");
    let e = spargio_rt::run(|_| async { BufRing::new(3, 64).err() })
        .unwrap()
        .expect("3 is not a power of two");
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn a_stopped_multishot_receive_hands_out_what_it_took_and_leaves_the_rest_in_the_socket() {
    let got = on_shard(|| async {
        let ring = BufRing::new(16, 4096).unwrap();
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let mut rx = b.recv_multishot(&ring);
        let mut got = Vec::new();
        let (r, _) = a.write_all(b"first ".to_vec()).await;
        r.unwrap();
        got.extend_from_slice(&rx.next().await.unwrap().expect("data"));
        // Delivered while nobody asks: queued on the receive's completions.
        let (r, _) = a.write_all(b"second ".to_vec()).await;
        r.unwrap();
        common::eventually("the second write is received", || rx.queued() > 0).await;
        rx.stop();
        while let Some(buf) = rx.next().await.unwrap() {
            got.extend_from_slice(&buf);
        }
        assert!(rx.next().await.unwrap().is_none(), "stays stopped");
        drop(rx);
        // Sent after the stop: in the socket, for a plain read.
        let (r, _) = a.write_all(b"third".to_vec()).await;
        r.unwrap();
        drop(a);
        let (r, rest) = b.read_to_end(Vec::new()).await;
        r.unwrap();
        got.extend_from_slice(&rest);
        (got, ring.available())
    });
    assert_eq!(got.0, b"first second third");
    assert_eq!(got.1, 16, "every buffer went back to the ring");
}

#[test]
fn a_consumer_that_falls_behind_holds_only_about_its_queue_cap_of_buffers() {
    let (taken_while_idle, got, back) = on_shard(|| async {
        let ring = BufRing::new(256, 64).unwrap();
        // TCP: a unix stream's multishot receive that drains data and a
        // close in one burst never posts the end-of-stream completion on
        // this kernel (a later plain receive would see it).
        let l = spargio_rt::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap();
        let mut a = spargio_rt::net::TcpStream::connect(l.local_addr().unwrap())
            .await
            .unwrap();
        let (b, _) = l.accept().await.unwrap();
        let total = 8192; // 128 buffers' worth: half the ring
        let (r, _) = a.write_all(pattern(total)).await;
        r.unwrap();
        drop(a);
        let cancels = || -> u64 {
            let stats = spargio_rt::RuntimeHandle::current().stats();
            stats.shards.iter().map(|s| s.ops_cancelled).sum()
        };
        let cancels_before = cancels();
        let mut rx = b.recv_multishot(&ring);
        rx.max_queued(2);
        let mut got = Vec::new();
        got.extend_from_slice(&rx.next().await.unwrap().expect("data"));
        // Not consuming: without the cap the kernel would fill 127 more
        // buffers and queue them all. With it, the receive is cancelled
        // once two wait.
        common::eventually("the cap's cancel went out", || cancels() > cancels_before).await;
        let taken_while_idle = rx.queued();
        while let Some(buf) = rx.next().await.unwrap() {
            got.extend_from_slice(&buf);
        }
        (taken_while_idle, got, ring.available())
    });
    // The kernel may post a burst of completions before the driver sees
    // the cap and cancels, but nowhere near the whole backlog.
    assert!(taken_while_idle < 64, "{taken_while_idle} buffers held");
    assert_eq!(got, pattern(8192), "paused and resumed without loss");
    assert_eq!(back, 256);
}

#[test]
fn a_dry_ring_can_fail_the_receive_so_the_caller_reads_the_socket_itself() {
    let (got, dry_error) = on_shard(|| async {
        let ring = BufRing::new(2, 64).unwrap();
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let (r, _) = a.write_all(pattern(1000)).await;
        r.unwrap();
        drop(a);
        let mut rx = b.recv_multishot(&ring);
        rx.fail_when_dry(true);
        let mut held = Vec::new();
        let dry_error = loop {
            match rx.next().await {
                Ok(Some(buf)) => held.push(buf),
                Ok(None) => panic!("end of stream before the ring ran dry"),
                Err(e) => break e,
            }
        };
        let mut got: Vec<u8> = held.iter().flat_map(|b| b.to_vec()).collect();
        drop(held);
        drop(rx);
        // What did not fit is still in the socket, next in line.
        let (r, rest) = b.read_to_end(Vec::new()).await;
        r.unwrap();
        got.extend_from_slice(&rest);
        (got, dry_error)
    });
    assert_eq!(dry_error.raw_os_error(), Some(libc::ENOBUFS));
    assert_eq!(got, pattern(1000));
}

#[test]
fn a_buffer_ring_too_large_to_allocate_is_refused() {
    let errors = on_shard(|| async {
        [
            // Buffers past what the kernel's u32 length can say.
            BufRing::new(2, (u32::MAX as usize) + 1).err(),
            // A total size that wraps around.
            BufRing::new(2, usize::MAX / 2 + 1).err(),
        ]
        .map(|e| e.map(|e| e.kind()))
    });
    assert_eq!(errors, [Some(std::io::ErrorKind::InvalidInput); 2]);
}

#[test]
fn a_buffer_ring_the_allocator_cannot_give_is_an_error_not_an_abort() {
    // 32768 buffers of 4 GiB: valid sizes, but about the whole 47-bit user
    // address space, so no allocator can give it, overcommit or not.
    let error = on_shard(|| async {
        BufRing::new(32768, u32::MAX as usize)
            .err()
            .map(|e| e.kind())
    });
    assert_eq!(error, Some(std::io::ErrorKind::OutOfMemory));
}

#[test]
fn buffers_queued_for_one_connection_are_not_counted_free_for_another() {
    let (free_while_queued, dry, got_a, got_b) = on_shard(|| async {
        let ring = BufRing::new(4, 64).unwrap();
        let (mut a_tx, a) = UnixStream::pair().unwrap();
        let (mut b_tx, mut b) = UnixStream::pair().unwrap();
        let mut ra = a.recv_multishot(&ring);
        let mut got_a = Vec::new();
        let (r, _) = a_tx.write_all(pattern(64)).await;
        r.unwrap();
        let first = ra.next().await.unwrap().expect("data");
        // Three more buffers' worth: the kernel fills the rest of the ring
        // and queues them for A, which does not take them yet.
        let (r, _) = a_tx.write_all(pattern(3 * 64)).await;
        r.unwrap();
        while ra.queued() < 3 {
            spargio_rt::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let free_while_queued = ring.available();
        // B's receive finds the ring dry. Counting A's queued buffers as
        // free, it re-armed into ENOBUFS over and over instead of failing.
        let mut rb = b.recv_multishot(&ring);
        rb.fail_when_dry(true);
        let (r, _) = b_tx.write_all(b"for b".to_vec()).await;
        r.unwrap();
        let dry = spargio_rt::time::timeout(std::time::Duration::from_secs(10), rb.next())
            .await
            .expect("B's receive gave up instead of re-arming into a dry ring")
            .expect_err("the ring is dry");
        got_a.extend_from_slice(&first);
        drop(first);
        while got_a.len() < 4 * 64 {
            got_a.extend_from_slice(&ra.next().await.unwrap().expect("data"));
        }
        drop(rb);
        let (r, got_b) = b.read_exact(vec![0u8; 5]).await;
        r.unwrap();
        (free_while_queued, dry, got_a, got_b)
    });
    assert_eq!(
        free_while_queued, 0,
        "A's queued completions hold the whole ring"
    );
    assert_eq!(dry.raw_os_error(), Some(libc::ENOBUFS));
    let mut want = pattern(64);
    want.extend_from_slice(&pattern(3 * 64));
    assert_eq!(got_a, want);
    assert_eq!(got_b, b"for b", "nothing B was sent is lost");
}

#[test]
fn group_ids_that_wrap_skip_a_live_ring_and_leave_it_working() {
    let got = on_shard(|| async {
        let live = BufRing::new(4, 64).unwrap();
        // More rings than there are group ids, one at a time: the ids wrap
        // past the live ring's, which must be skipped, not taken from it.
        for i in 0..70_000u32 {
            let ring =
                BufRing::new(1, 8).unwrap_or_else(|e| panic!("ring {i} could not be made: {e}"));
            drop(ring);
        }
        let (mut a, b) = UnixStream::pair().unwrap();
        let (r, _) = a.write_all(pattern(100)).await;
        r.unwrap();
        drop(a);
        let mut rx = b.recv_multishot(&live);
        let mut got = Vec::new();
        while let Some(buf) = rx.next().await.unwrap() {
            got.extend_from_slice(&buf);
        }
        got
    });
    assert_eq!(got, pattern(100));
}

/// A Unix stream's multishot receive asked to let many buffers wait still
/// reports the end of the stream after a burst of data and the peer's
/// close. Left to drain about 34 buffers or more in one wake-up, the
/// kernel (6.18) drops the end-of-stream completion; the cap held to
/// `UNIX_MAX_QUEUED` cuts the burst short and the re-armed receive sees
/// the close.
#[test]
fn a_unix_multishot_receive_with_a_large_cap_still_sees_the_end() {
    let outcomes = on_shard(|| async {
        let mut outcomes = Vec::new();
        for len in [140_000usize, 180_000] {
            let ring = BufRing::new(512, 4096).unwrap();
            let (mut a, b) = UnixStream::pair().unwrap();
            // Within the socket's buffer: written whole before any read.
            let (r, _) = a.write_all(pattern(len)).await;
            r.unwrap();
            drop(a);
            let mut rx = b.recv_multishot(&ring);
            rx.max_queued(1000);
            let mut got = Vec::new();
            let ended = loop {
                let next = spargio_rt::time::timeout(std::time::Duration::from_secs(10), rx.next());
                match next.await {
                    Ok(Ok(Some(buf))) => got.extend_from_slice(&buf),
                    Ok(Ok(None)) => break true,
                    Ok(Err(e)) => panic!("receive failed: {e}"),
                    // Ten seconds with everything received: the end
                    // completion is not coming.
                    Err(_) => break false,
                }
            };
            outcomes.push((got == pattern(len), ended));
        }
        outcomes
    });
    assert_eq!(
        outcomes,
        [(true, true), (true, true)],
        "(all data, end of stream seen) per burst"
    );
}

/// A waker that counts nothing: its `Arc`'s strong count says who holds it.
struct HeldWaker;

impl std::task::Wake for HeldWaker {
    fn wake(self: std::sync::Arc<Self>) {}
}

#[test]
fn a_receive_dropped_while_the_ring_is_dry_lets_go_of_its_waker() {
    let (registered, after_drop) = on_shard(|| async {
        use std::future::Future;
        use std::sync::Arc;
        use std::task::{Context, Poll, Waker};

        let ring = BufRing::new(1, 64).unwrap();
        let (mut a, b) = UnixStream::pair().unwrap();
        let (r, _) = a.write_all(pattern(500)).await;
        r.unwrap();
        let mut rx = b.recv_multishot(&ring);
        // Holds the ring's only buffer: the receive runs dry behind it.
        let held = rx.next().await.unwrap().unwrap();
        let flag = Arc::new(HeldWaker);
        let waker = Waker::from(flag.clone());
        let mut registered = false;
        for _ in 0..5000 {
            let mut next = std::pin::pin!(rx.next());
            if let Poll::Ready(got) = next.as_mut().poll(&mut Context::from_waker(&waker)) {
                // A buffer queued before the ring ran dry: keep draining.
                drop(got);
                continue;
            }
            // Held by `flag`, `waker`, and now a waiter list.
            if ring.available() == 0 && Arc::strong_count(&flag) > 2 {
                registered = true;
                break;
            }
            spargio_rt::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        drop(waker);
        drop(rx);
        // The op's own copy goes with its final completion; the ring's
        // list must not keep one (bounded wait for the cancel).
        let mut after_drop = Arc::strong_count(&flag);
        for _ in 0..2000 {
            if after_drop == 1 {
                break;
            }
            spargio_rt::time::sleep(std::time::Duration::from_millis(1)).await;
            after_drop = Arc::strong_count(&flag);
        }
        drop(held);
        (registered, after_drop)
    });
    assert!(registered, "the receive never waited for a buffer");
    assert_eq!(
        after_drop, 1,
        "the dry ring still lists the dropped receive's waker"
    );
}
