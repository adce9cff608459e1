//! `quiet_writes`: a write that completes in full inside it does not wake
//! the task; a loud poll afterwards, a partial write or an error does.

mod common;

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use spargio_rt::io::{quiet_writes, AsyncRead, AsyncWrite};

use spargio_rt::net::UnixStream;

/// A waker that counts its wake-ups.
struct Counter(AtomicUsize);

impl Wake for Counter {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counting() -> (Arc<Counter>, Waker) {
    let c = Arc::new(Counter(AtomicUsize::new(0)));
    (c.clone(), Waker::from(c))
}

async fn settle() {
    // Lets the shard reap whatever completed meanwhile.
    spargio_rt::time::sleep(Duration::from_millis(20)).await;
}

#[spargio_rt::test]
async fn a_full_write_polled_quietly_completes_without_a_wake_up() {
    let (mut a, mut b) = UnixStream::pair().unwrap();
    let (count, waker) = counting();
    let mut cx = Context::from_waker(&waker);
    let mut write = pin!(a.write(b"ping".to_vec()));
    assert!(quiet_writes(|| write.as_mut().poll(&mut cx)).is_pending());
    settle().await;
    assert_eq!(
        count.0.load(Ordering::SeqCst),
        0,
        "a quiet full write woke the task"
    );
    // The result was kept: the next poll (quiet or not) takes it.
    let Poll::Ready((res, _)) = write.as_mut().poll(&mut cx) else {
        panic!("finished write not ready");
    };
    assert_eq!(res.unwrap(), 4);
    let (res, got) = b.read(vec![0u8; 16]).await;
    assert_eq!(&got[..res.unwrap()], b"ping");
}

/// Fills `a`'s send buffer (the peer reads nothing yet).
async fn fill(a: &mut UnixStream) {
    let (res, _) = a.write(vec![7u8; 8 << 20]).await;
    assert!(res.unwrap() < 8 << 20, "a stream socket takes what fits");
}

#[spargio_rt::test]
async fn a_loud_poll_after_a_quiet_one_is_woken_by_the_completion() {
    for loud_again in [true, false] {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        fill(&mut a).await;
        let (count, waker) = counting();
        let mut cx = Context::from_waker(&waker);
        let mut write = pin!(a.write(b"tail".to_vec()));
        // The send waits for room.
        assert!(quiet_writes(|| write.as_mut().poll(&mut cx)).is_pending());
        if loud_again {
            assert!(write.as_mut().poll(&mut cx).is_pending());
        }
        let (res, _) = b.read(vec![0u8; 8 << 20]).await;
        assert!(res.unwrap() > 0);
        settle().await;
        let woken = count.0.load(Ordering::SeqCst);
        if loud_again {
            assert!(woken > 0, "the loud poll was never woken");
        } else {
            assert_eq!(woken, 0, "the quiet write woke the task");
        }
        let Poll::Ready((res, _)) = write.as_mut().poll(&mut cx) else {
            panic!("write not done after the reader made room");
        };
        assert_eq!(res.unwrap(), 4);
        drop(b);
    }
}

#[spargio_rt::test]
async fn a_partial_write_wakes_even_when_polled_quietly() {
    let (mut a, _b) = UnixStream::pair().unwrap();
    let (count, waker) = counting();
    let mut cx = Context::from_waker(&waker);
    let mut write = pin!(a.write(vec![1u8; 8 << 20]));
    assert!(quiet_writes(|| write.as_mut().poll(&mut cx)).is_pending());
    settle().await;
    assert!(
        count.0.load(Ordering::SeqCst) > 0,
        "a partial write did not wake"
    );
    let Poll::Ready((res, _)) = write.as_mut().poll(&mut cx) else {
        panic!("partial write not ready");
    };
    assert!(res.unwrap() < 8 << 20);
}

#[spargio_rt::test]
async fn a_quiet_vectored_write_that_finishes_a_segment_part_way_goes_on_to_the_next() {
    use spargio_rt::io::AsyncWriteExt;
    let (mut a, mut b) = UnixStream::pair().unwrap();
    let big = 4 << 20;
    let reader = spargio_rt::spawn(async move {
        let mut got = 0usize;
        while got < big + 4 {
            let (res, _) = b.read(vec![0u8; 1 << 20]).await;
            match res.unwrap() {
                0 => break,
                n => got += n,
            }
        }
        got
    });
    // The first sendmsg takes part of the big segment; the rest of it goes
    // in plain writes, the last of which completes in full while the tail
    // segment is still to be sent. Polled quietly throughout (as a server
    // flushes while it waits for the next request), that last write must
    // still wake the task, or the tail is never sent.
    let mut write = pin!(a.write_vectored_all(vec![vec![1u8; big], b"tail".to_vec()]));
    let quietly = std::future::poll_fn(|cx| quiet_writes(|| write.as_mut().poll(cx)));
    let (res, _) = spargio_rt::time::timeout(Duration::from_secs(10), quietly)
        .await
        .expect("the write stalled after finishing the big segment");
    res.unwrap();
    assert_eq!(reader.await.unwrap(), big + 4);
}

#[test]
fn a_panic_inside_quiet_writes_leaves_later_writes_on_that_shard_loud() {
    let rt = spargio_rt::Runtime::builder().shards(1).build().unwrap();
    let h = rt.handle();
    let panicked = h.spawn_pinned(spargio_rt::ShardId(0), async {
        quiet_writes(|| panic!("a quiet poll panicked (on purpose, in a test)"))
    });
    assert!(rt.block_on(panicked).unwrap_err().is_panic());
    // The same shard's thread: a write that completes in full must still
    // wake the task awaiting it.
    let woken = h.spawn_pinned(spargio_rt::ShardId(0), async {
        let (mut a, _b) = UnixStream::pair().unwrap();
        let (count, waker) = counting();
        let mut write = pin!(a.write(b"ping".to_vec()));
        {
            let mut cx = Context::from_waker(&waker);
            assert!(write.as_mut().poll(&mut cx).is_pending());
        }
        settle().await;
        count.0.load(Ordering::SeqCst)
    });
    assert_eq!(
        rt.block_on(woken).unwrap(),
        1,
        "a full write after the panic woke nobody"
    );
}

/// A `UnixStream` pair whose server side has just read a request (so its
/// last op was a read, as a server's is), split for `flush_and_read`.
async fn served_pair() -> (
    UnixStream,
    spargio_rt::net::OwnedReadHalf<UnixStream>,
    spargio_rt::net::OwnedWriteHalf<UnixStream>,
) {
    use spargio_rt::io::{AsyncReadExt, AsyncWriteExt};
    let (mut client, server) = UnixStream::pair().unwrap();
    let (mut rd, wr) = server.into_split();
    let (res, _) = client.write_all(b"req".to_vec()).await;
    res.unwrap();
    let (res, _) = rd.read_exact(vec![0u8; 3]).await;
    res.unwrap();
    (client, rd, wr)
}

/// Runs `fut` on its own task, polled quietly throughout, as
/// `flush_and_read` polls a flush while its read waits. Nothing else wakes
/// that task: a write that completes without waking it stalls it for good.
fn spawn_quiet<F>(fut: F) -> spargio_rt::JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    spargio_rt::spawn_local(async move {
        let mut fut = pin!(fut);
        std::future::poll_fn(|cx| quiet_writes(|| fut.as_mut().poll(cx))).await
    })
}

#[spargio_rt::test]
async fn a_quiet_buffered_write_that_must_flush_first_goes_on_to_buffer_and_flush() {
    use spargio_rt::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
    let (mut client, _rd, wr) = served_pair().await;
    let mut bw = BufWriter::with_capacity(16, wr);
    let (res, _) = bw.write_all(vec![1u8; 10]).await;
    res.unwrap();
    // Ten more bytes do not fit: the buffer is written out first (a write
    // whose completion does not end the call), then they are buffered and
    // flushed. That first write must wake the task though polled quietly.
    let writer = spawn_quiet(async move {
        let (res, _) = bw.write_all(vec![2u8; 10]).await;
        res?;
        bw.flush().await
    });
    let (res, got) =
        spargio_rt::time::timeout(Duration::from_secs(10), client.read_exact(vec![0u8; 20]))
            .await
            .expect("the buffered write stalled after writing out the buffer");
    res.unwrap();
    assert_eq!(got, [[1u8; 10], [2u8; 10]].concat());
    writer.await.unwrap().unwrap();
}

#[spargio_rt::test]
async fn a_quiet_buffered_shutdown_writes_out_the_buffer_then_ends_the_stream() {
    use spargio_rt::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
    let (mut client, _rd, wr) = served_pair().await;
    let mut bw = BufWriter::with_capacity(16, wr);
    let (res, _) = bw.write_all(b"bye".to_vec()).await;
    res.unwrap();
    let writer = spawn_quiet(async move { bw.shutdown().await });
    let (res, got) =
        spargio_rt::time::timeout(Duration::from_secs(10), client.read_to_end(Vec::new()))
            .await
            .expect("the shutdown stalled after writing out the buffer");
    res.unwrap();
    assert_eq!(got, b"bye");
    writer.await.unwrap().unwrap();
}

#[spargio_rt::test]
async fn a_quiet_copy_goes_on_after_each_full_write() {
    use spargio_rt::io::{AsyncReadExt, AsyncWriteExt};
    const LEN: usize = 200_000;
    let (mut client, _rd, mut wr) = served_pair().await;
    let (mut feed, mut src) = UnixStream::pair().unwrap();
    spargio_rt::spawn_local(async move {
        let (res, _) = feed.write_all(vec![7u8; LEN]).await;
        res.unwrap();
    });
    // Each chunk's write is followed by another read: its completion must
    // wake the task though the copy is polled quietly.
    let copier = spawn_quiet(async move { spargio_rt::io::copy(&mut src, &mut wr).await });
    let (res, got) =
        spargio_rt::time::timeout(Duration::from_secs(10), client.read_exact(vec![0u8; LEN]))
            .await
            .expect("the copy stalled after a full write");
    res.unwrap();
    assert!(got.iter().all(|&b| b == 7));
    assert_eq!(copier.await.unwrap().unwrap(), LEN as u64);
}

#[spargio_rt::test]
async fn a_quiet_fs_copy_goes_on_after_each_chunk() {
    let from = common::unique_temp_path("quiet", "copy-from");
    let to = common::unique_temp_path("quiet", "copy-to");
    let (from2, to2) = (from.clone(), to.clone());
    let data: Vec<u8> = (0..(1u32 << 20)).map(|i| i as u8).collect();
    spargio_rt::fs::write(&from, data.clone()).await.unwrap();
    let copy = spawn_quiet(async move { spargio_rt::fs::copy(from2, to2).await });
    let copied = spargio_rt::time::timeout(Duration::from_secs(20), copy)
        .await
        .expect("the copy stopped after a quiet full write")
        .unwrap()
        .unwrap();
    assert_eq!(copied, data.len() as u64);
    assert_eq!(std::fs::read(&to).unwrap(), data);
    let _ = std::fs::remove_file(from);
    let _ = std::fs::remove_file(to);
}

/// What the compat tests write: three of its 64 KiB writes.
const COMPAT_LEN: usize = 192 * 1024;

/// Reads `len` bytes of 7 from `client`, failing if the writer stalls.
async fn expect_sevens(client: &mut UnixStream, len: usize) {
    use spargio_rt::io::AsyncReadExt;
    let (res, got) =
        spargio_rt::time::timeout(Duration::from_secs(10), client.read_exact(vec![0u8; len]))
            .await
            .expect("the compat write stalled after a full write");
    res.unwrap();
    assert!(got.iter().all(|&b| b == 7));
}

#[spargio_rt::test]
async fn a_quiet_compat_write_goes_on_after_each_full_write() {
    use futures_util::io::AsyncWriteExt as _;
    use spargio_rt::io::compat::Compat;
    let (a, mut client) = UnixStream::pair().unwrap();
    let mut c = Compat::new(a);
    // Compat writes behind: each `poll_write` waits for the write before
    // it, whose full completion must wake the task to hand over the next
    // piece, though it is polled quietly (as a TLS flush inside
    // `flush_and_read` is).
    let writer = spawn_quiet(async move {
        c.write_all(&vec![7u8; COMPAT_LEN]).await?;
        c.flush().await
    });
    expect_sevens(&mut client, COMPAT_LEN).await;
    writer.await.unwrap().unwrap();
}

#[spargio_rt::test]
async fn a_quiet_compat_read_does_not_silence_the_write_its_half_waits_on() {
    use futures_util::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use spargio_rt::io::compat::Compat;
    use spargio_rt::io::AsyncWriteExt;
    let (a, mut client) = UnixStream::pair().unwrap();
    let (mut rd, mut wr) = Compat::new(a).split();
    // The write half's task waits on its first write; then the read half,
    // polled quietly on another task, drives that same write while it
    // waits for the answer. Its quiet poll must not leave the write half's
    // task without the wake-up of the write's full completion.
    let writer = spargio_rt::spawn_local(async move {
        wr.write_all(&vec![7u8; COMPAT_LEN]).await?;
        wr.flush().await
    });
    let reader = spawn_quiet(async move {
        let mut answer = [0u8; 4];
        rd.read_exact(&mut answer).await.map(|()| answer)
    });
    expect_sevens(&mut client, COMPAT_LEN).await;
    writer.await.unwrap().unwrap();
    let (res, _) = client.write_all(b"done".to_vec()).await;
    res.unwrap();
    assert_eq!(&reader.await.unwrap().unwrap(), b"done");
}
