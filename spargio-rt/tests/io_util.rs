//! io utilities: split, copy, BufReader, BufWriter and the futures-io
//! compat adapter.

use std::future::{poll_fn, Future};
use std::io::ErrorKind;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use spargio_rt::io::compat::Compat;
use spargio_rt::io::{
    self, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter, IoBuf,
};
use spargio_rt::net::{TcpListener, TcpStream, UnixStream};
use spargio_rt::{Runtime, RuntimeHandle};

mod common;

fn run<T: Send + 'static, F: Future<Output = T> + 'static>(
    f: impl FnOnce() -> F + Send + 'static,
) -> T {
    spargio_rt::run_with(Runtime::builder().shards(2), move |_| f()).unwrap()
}

/// A waker that counts its wake-ups.
struct Count(std::sync::atomic::AtomicUsize);

impl std::task::Wake for Count {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Fails the test instead of hanging it if `fut` deadlocks.
async fn guard<T>(fut: impl Future<Output = T>) -> T {
    spargio_rt::time::timeout(Duration::from_secs(30), fut)
        .await
        .expect("deadlocked")
}

/// A deterministic pattern, so a byte in the wrong place is caught.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 251) as u8).collect()
}

/// Writes `data` in 64 KiB chunks.
async fn write_chunks<W: AsyncWrite>(w: &mut W, data: &[u8]) {
    for chunk in data.chunks(64 * 1024) {
        let (r, _) = w.write_all(chunk.to_vec()).await;
        r.unwrap();
    }
}

async fn read_n<R: AsyncRead>(r: &mut R, n: usize) -> Vec<u8> {
    let (res, buf) = r.read_exact(Vec::with_capacity(n)).await;
    res.unwrap();
    buf
}

fn ops_submitted() -> u64 {
    let s = RuntimeHandle::current().stats();
    s.shards.iter().map(|s| s.ops_submitted).sum()
}

/// Echoes until EOF, then shuts its write side down.
async fn echo<S: AsyncRead + AsyncWrite>(mut s: S) {
    let mut buf = Vec::with_capacity(64 * 1024);
    loop {
        buf.clear();
        let (r, b) = s.read(buf).await;
        if r.unwrap() == 0 {
            s.shutdown().await.unwrap();
            return;
        }
        let (r, b) = s.write_all(b).await;
        r.unwrap();
        buf = b;
    }
}

#[test]
fn split_halves_read_and_write_from_two_tasks_at_once() {
    let ok = run(|| async {
        let (a, b) = UnixStream::pair().unwrap();
        let server = spargio_rt::spawn(echo(b));
        let (mut rd, mut wr) = io::split(a);
        let data = pattern(4 << 20);
        // The echo only makes progress if someone reads while the writer
        // is still writing: a read and write serialised on one lock
        // would deadlock once the socket buffers fill.
        let len = data.len();
        let reader = spargio_rt::spawn(async move {
            let got = read_n(&mut rd, len).await;
            (rd, got)
        });
        let expect = data.clone();
        let writer = spargio_rt::spawn(async move {
            write_chunks(&mut wr, &data).await;
            wr.shutdown().await.unwrap();
            wr
        });
        let (rd, got) = guard(reader).await.unwrap();
        let wr = guard(writer).await.unwrap();
        server.await.unwrap();
        assert!(rd.is_pair_of(&wr));
        let _a: UnixStream = io::unsplit(rd, wr);
        got == expect
    });
    assert!(ok);
}

#[test]
fn a_pending_read_on_one_half_does_not_hold_up_the_other() {
    run(|| async {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        // The peer answers only once it has our message.
        let peer = spargio_rt::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            assert_eq!(read_n(&mut s, 4).await, b"ping");
            let (r, _) = s.write_all(b"pong".to_vec()).await;
            r.unwrap();
        });
        let c = TcpStream::connect(addr).await.unwrap();
        let (mut rd, mut wr) = c.into_split();
        assert_eq!(rd.as_ref().peer_addr().unwrap(), addr);
        let reader = spargio_rt::spawn(async move { (read_n(&mut rd, 4).await, rd) });
        spargio_rt::time::sleep(Duration::from_millis(1)).await;
        let (r, _) = wr.write_all(&b"ping"[..]).await;
        r.unwrap();
        let (got, rd) = guard(reader).await.unwrap();
        assert_eq!(got, b"pong");
        peer.await.unwrap();
        let c = rd.reunite(wr).unwrap();
        assert_eq!(c.peer_addr().unwrap(), addr);
    });
}

#[test]
fn halves_of_different_sockets_do_not_reunite() {
    run(|| async {
        let (a, b) = UnixStream::pair().unwrap();
        let (ra, _wa) = a.into_split();
        let (_rb, wb) = b.into_split();
        let err = ra.reunite(wb).unwrap_err();
        assert!(err.to_string().contains("different sockets"));
    });
}

#[test]
#[should_panic(expected = "different streams")]
fn unsplit_of_unrelated_halves_panics() {
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    let (ra, _wa) = io::split(UnixStream::from_std(a));
    let (_rb, wb) = io::split(UnixStream::from_std(b));
    let _ = io::unsplit(ra, wb);
}

#[test]
fn copy_moves_a_few_mib_intact() {
    let ok = run(|| async {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let (mut c, mut d) = UnixStream::pair().unwrap();
        let data = pattern((3 << 20) + 7);
        let src = data.clone();
        let feeder = spargio_rt::spawn(async move {
            write_chunks(&mut a, &src).await;
            a.shutdown().await.unwrap();
        });
        let copier = spargio_rt::spawn(async move {
            let n = io::copy(&mut b, &mut c).await.unwrap();
            c.shutdown().await.unwrap();
            n
        });
        let (r, got) = d.read_to_end(Vec::new()).await;
        r.unwrap();
        feeder.await.unwrap();
        assert_eq!(copier.await.unwrap(), data.len() as u64);
        got == data
    });
    assert!(ok);
}

#[test]
fn buf_reader_lines_and_delimiters_cross_buffer_boundaries() {
    run(|| async {
        let (mut a, b) = UnixStream::pair().unwrap();
        let text = "first line\nsecond, much longer line\n\nk=v;x=y;tail";
        let (r, _) = a.write_all(text.as_bytes().to_vec()).await;
        r.unwrap();
        drop(a);
        let mut rd = BufReader::with_capacity(4, b);
        assert_eq!(rd.capacity(), 4);
        let mut line = String::new();
        assert_eq!(rd.read_line(&mut line).await.unwrap(), 11);
        assert_eq!(line, "first line\n");
        // Appends, as std does.
        assert_eq!(rd.read_line(&mut line).await.unwrap(), 25);
        assert_eq!(line, "first line\nsecond, much longer line\n");
        line.clear();
        assert_eq!(rd.read_line(&mut line).await.unwrap(), 1);
        assert_eq!(line, "\n");
        let mut out = Vec::new();
        assert_eq!(rd.read_until(b';', &mut out).await.unwrap(), 4);
        assert_eq!(out, b"k=v;");
        // fill_buf hands out what is buffered; consume takes part of it.
        let avail = rd.fill_buf().await.unwrap().to_vec();
        assert!(!avail.is_empty() && avail.len() <= 4);
        assert!(b"x=y;tail".starts_with(&avail));
        rd.consume(1);
        assert_eq!(rd.buffer(), &avail[1..]);
        let mut rest = Vec::new();
        assert_eq!(rd.read_until(b'!', &mut rest).await.unwrap(), 7);
        assert_eq!(rest, b"=y;tail");
        assert!(rd.fill_buf().await.unwrap().is_empty());
        assert_eq!(rd.read_line(&mut line).await.unwrap(), 0);
    });
}

#[test]
fn consuming_more_than_is_buffered_empties_the_buffer() {
    use futures_io::AsyncBufRead as _;
    run(|| async {
        let (mut a, b) = UnixStream::pair().unwrap();
        let (r, _) = a.write_all(b"abcdef".to_vec()).await;
        r.unwrap();
        let mut rd = BufReader::with_capacity(64, b);
        assert_eq!(rd.fill_buf().await.unwrap(), b"abcdef");
        rd.consume(3);
        // "Everything": must not wrap around to an earlier position.
        rd.consume(usize::MAX);
        assert!(rd.buffer().is_empty(), "bytes served again");

        let (c, mut d) = UnixStream::pair().unwrap();
        let (r, _) = d.write_all(b"ghijkl".to_vec()).await;
        r.unwrap();
        let mut c = Compat::new(c);
        let got = poll_fn(|cx| {
            Pin::new(&mut c)
                .poll_fill_buf(cx)
                .map(|r| r.unwrap().to_vec())
        })
        .await;
        assert_eq!(got, b"ghijkl");
        Pin::new(&mut c).consume(3);
        Pin::new(&mut c).consume(usize::MAX);
        drop(d);
        let rest = poll_fn(|cx| {
            Pin::new(&mut c)
                .poll_fill_buf(cx)
                .map(|r| r.unwrap().to_vec())
        })
        .await;
        assert!(rest.is_empty(), "compat served consumed bytes again");
    });
}

#[test]
fn buf_reader_serves_reads_from_its_buffer_and_bypasses_it_for_large_ones() {
    let ok = run(|| async {
        let (mut a, b) = UnixStream::pair().unwrap();
        let data = pattern(100_000);
        let src = data.clone();
        let feeder = spargio_rt::spawn(async move {
            write_chunks(&mut a, &src).await;
        });
        let mut rd = BufReader::with_capacity(1000, b);
        let mut got = read_n(&mut rd, 10).await; // buffered
        let (r, big) = rd.read_exact(vec![0u8; 50_000].slice(..)).await;
        r.unwrap();
        got.extend_from_slice(big.into_inner().as_slice());
        let (r, rest) = rd.read_to_end(got).await;
        r.unwrap();
        feeder.await.unwrap();
        rest == data
    });
    assert!(ok);
}

#[test]
fn buf_reader_lines_and_bad_utf8() {
    run(|| async {
        let (mut a, b) = UnixStream::pair().unwrap();
        let (r, _) = a.write_all(b"one\r\ntwo\n\xff\xfe\nthree".to_vec()).await;
        r.unwrap();
        drop(a);
        let mut lines = BufReader::with_capacity(3, b).lines();
        assert_eq!(lines.next_line().await.unwrap().unwrap(), "one");
        assert_eq!(lines.next_line().await.unwrap().unwrap(), "two");
        let err = lines.next_line().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData);
        assert_eq!(lines.next_line().await.unwrap().unwrap(), "three");
        assert_eq!(lines.next_line().await.unwrap(), None);
    });
}

#[test]
fn buf_reader_lines_survive_a_cancelled_next_line() {
    run(|| async {
        let (mut a, b) = UnixStream::pair().unwrap();
        // A small buffer: the half line spans several fills.
        let mut lines = BufReader::with_capacity(4, b).lines();
        let (r, _) = a.write_all(b"first\nhello wor".to_vec()).await;
        r.unwrap();
        assert_eq!(guard(lines.next_line()).await.unwrap().unwrap(), "first");
        // The rest of the line has not been sent: the wait is given up.
        let gave_up = spargio_rt::time::timeout(Duration::from_millis(20), lines.next_line()).await;
        assert!(gave_up.is_err(), "{gave_up:?}");
        let (r, _) = a.write_all(b"ld\nlast\n".to_vec()).await;
        r.unwrap();
        assert_eq!(
            guard(lines.next_line()).await.unwrap().unwrap(),
            "hello world"
        );
        let mut reader = lines.into_inner();
        // Given up twice over with `read_line`, the same.
        let mut line = String::new();
        guard(reader.read_line(&mut line)).await.unwrap();
        assert_eq!(line, "last\n");
        line.clear();
        let (r, _) = a.write_all(b"aga".to_vec()).await;
        r.unwrap();
        for _ in 0..2 {
            let gave_up =
                spargio_rt::time::timeout(Duration::from_millis(20), reader.read_line(&mut line))
                    .await;
            assert!(gave_up.is_err());
        }
        assert_eq!(line, "", "nothing of an unfinished line is handed out");
        let (r, _) = a.write_all(b"in\n".to_vec()).await;
        r.unwrap();
        guard(reader.read_line(&mut line)).await.unwrap();
        assert_eq!(line, "again\n");
    });
}

#[test]
fn buf_reader_read_into_an_empty_buffer_returns_at_once() {
    let ok = run(|| async {
        // The peer is open and silent: a real read would wait for ever.
        let (a, _b) = UnixStream::pair().unwrap();
        let mut r = BufReader::new(a);
        let (res, _) = spargio_rt::time::timeout(Duration::from_secs(10), r.read(Vec::new()))
            .await
            .expect("a read with no room waited for data");
        res.unwrap() == 0
    });
    assert!(ok);
}

#[test]
fn buf_writer_coalesces_small_writes_into_few_ops() {
    let ok = run(|| async {
        let (a, mut b) = UnixStream::pair().unwrap();
        let mut w = BufWriter::new(a);
        let mut expect = Vec::new();
        let writes = 1000;
        let before = ops_submitted();
        for i in 0..writes {
            let piece = format!("{i:05}|").into_bytes();
            expect.extend_from_slice(&piece);
            let (r, _) = w.write_all(piece).await;
            r.unwrap();
        }
        w.flush().await.unwrap();
        let ops = ops_submitted() - before;
        assert!(w.buffer().is_empty());
        // 6000 bytes through an 8 KiB buffer: one send.
        assert!(ops <= 2, "{ops} ops for {writes} writes");
        read_n(&mut b, expect.len()).await == expect
    });
    assert!(ok);
}

#[test]
fn buf_writer_keeps_order_when_large_writes_bypass_it() {
    let ok = run(|| async {
        let (a, mut b) = UnixStream::pair().unwrap();
        let mut w = BufWriter::with_capacity(64, a);
        let big = pattern(10_000);
        let mut expect = b"small".to_vec();
        expect.extend_from_slice(&big);
        expect.extend_from_slice(b"ab");
        expect.extend_from_slice(b"cd");
        let (r, _) = w.write_all(&b"small"[..]).await;
        r.unwrap();
        assert_eq!(w.buffer(), b"small");
        let (r, _) = w.write_all(big).await;
        r.unwrap();
        assert!(w.buffer().is_empty());
        let (r, _) = w.write_vectored_all(vec![&b"ab"[..], &b"cd"[..]]).await;
        r.unwrap();
        assert_eq!(w.buffer(), b"abcd");
        w.shutdown().await.unwrap();
        let (r, got) = b.read_to_end(Vec::new()).await;
        r.unwrap();
        got == expect
    });
    assert!(ok);
}

#[test]
fn buf_writer_cancelled_while_writing_its_buffer_fails_every_later_call() {
    let ok = run(|| async {
        let (a, _b) = UnixStream::pair().unwrap();
        let mut w = BufWriter::with_capacity(64, a);
        // Fill the socket (the peer reads nothing), so the buffer's write
        // waits for room.
        let (r, _) = w.get_mut().write(vec![7u8; 8 << 20]).await;
        assert!(r.unwrap() < 8 << 20);
        let (r, _) = w.write_all(&b"buffered"[..]).await;
        r.unwrap();
        assert!(!w.is_broken());
        let cancelled = spargio_rt::time::timeout(Duration::from_millis(50), w.flush()).await;
        assert!(cancelled.is_err(), "the flush could not have finished");
        assert!(w.is_broken());
        // The buffered bytes went with the cancelled write: going on
        // would leave a hole in the stream.
        let (r, _) = w.write_all(&b"more"[..]).await;
        let write_err = r.unwrap_err();
        let flush_err = w.flush().await.unwrap_err();
        write_err.to_string().contains("BufWriter is broken")
            && flush_err.to_string().contains("BufWriter is broken")
    });
    assert!(ok);
}

#[test]
fn compat_speaks_futures_io() {
    use futures_util::io::{AsyncBufReadExt, AsyncReadExt as _, AsyncWriteExt as _};
    let ok = run(|| async {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = spargio_rt::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            echo(s).await;
        });
        let mut c = Compat::new(TcpStream::connect(addr).await.unwrap());
        c.write_all(b"hello\nworld\n").await.unwrap();
        c.flush().await.unwrap();
        let mut line = String::new();
        c.read_line(&mut line).await.unwrap();
        assert_eq!(line, "hello\n");
        let mut five = [0u8; 6];
        c.read_exact(&mut five).await.unwrap();
        assert_eq!(&five, b"world\n");
        // Larger than the read buffer and one write's share, both ways.
        let data = pattern(1 << 20);
        let mut back = Vec::new();
        for chunk in data.chunks(200_000) {
            c.write_all(chunk).await.unwrap();
            c.flush().await.unwrap();
            let mut got = vec![0u8; chunk.len()];
            c.read_exact(&mut got).await.unwrap();
            back.extend_from_slice(&got);
        }
        c.write_all(b"bye").await.unwrap();
        c.close().await.unwrap();
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).await.unwrap();
        server.await.unwrap();
        assert!(c.into_inner().is_ok());
        back == data && rest == b"bye"
    });
    assert!(ok);
}

#[test]
fn compat_writes_while_a_read_is_pending() {
    use futures_io::AsyncRead as _;
    use futures_util::io::{AsyncReadExt as _, AsyncWriteExt as _};
    run(|| async {
        let (a, mut b) = UnixStream::pair().unwrap();
        // The peer sends only once it has our message.
        let peer = spargio_rt::spawn(async move {
            assert_eq!(read_n(&mut b, 4).await, b"ping");
            let (r, _) = b.write_all(b"pong".to_vec()).await;
            r.unwrap();
            b
        });
        let mut c = Compat::new(a);
        let mut got = [0u8; 4];
        // Start a read: nothing can have arrived yet.
        poll_fn(|cx| {
            assert!(Pin::new(&mut c).poll_read(cx, &mut got).is_pending());
            Poll::Ready(())
        })
        .await;
        assert!(c.get_ref().0.is_none(), "a read is in flight");
        guard(async {
            c.write_all(b"ping").await.unwrap();
            c.flush().await.unwrap();
            c.read_exact(&mut got).await.unwrap();
        })
        .await;
        assert_eq!(&got, b"pong");
        peer.await.unwrap();
    });
}

/// A connected pair whose first end has a small send buffer, so that a
/// large write to it is taken in several sends.
fn pair_with_small_send_buffer() -> (UnixStream, UnixStream) {
    use std::os::fd::AsRawFd;
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    let size: libc::c_int = 4096;
    // SAFETY: `a` is an open socket for the whole call, and the option
    // value is a live `c_int` whose size is passed with it.
    let rc = unsafe {
        libc::setsockopt(
            a.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt: {}", std::io::Error::last_os_error());
    (UnixStream::from_std(a), UnixStream::from_std(b))
}

#[test]
fn compat_write_goes_on_while_only_the_read_side_is_polled() {
    use futures_util::io::{AsyncReadExt as _, AsyncWriteExt as _};
    run(|| async {
        let (a, mut b) = pair_with_small_send_buffer();
        // The peer answers once it has the whole request.
        let peer = spargio_rt::spawn(async move {
            spargio_rt::time::sleep(Duration::from_millis(50)).await;
            let got = read_n(&mut b, 60_000).await;
            let (r, _) = b.write_all(b"ok".to_vec()).await;
            r.unwrap();
            got
        });
        let mut c = Compat::new(a);
        // No flush: the rest of the request goes out in the background
        // while the task waits on the read side only.
        c.write_all(&pattern(60_000)).await.unwrap();
        let mut answer = [0u8; 2];
        guard(c.read_exact(&mut answer)).await.unwrap();
        assert_eq!(&answer, b"ok");
        assert_eq!(peer.await.unwrap(), pattern(60_000));
        c.flush().await.unwrap();
    });
}

#[test]
fn compat_wakes_every_task_waiting_on_a_side_and_none_before() {
    use futures_io::AsyncWrite as _;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Waker};
    run(|| async {
        let (a, mut b) = pair_with_small_send_buffer();
        let mut c = Compat::new(a);
        // A write the peer does not read yet: it waits for room.
        poll_fn(|cx| Pin::new(&mut c).poll_write(cx, &pattern(64 * 1024)))
            .await
            .unwrap();
        let counts: Vec<Arc<Count>> = (0..3)
            .map(|_| Arc::new(Count(AtomicUsize::new(0))))
            .collect();
        let wakers: Vec<Waker> = counts.iter().map(|c| Waker::from(c.clone())).collect();
        // Three tasks wait for the flush; none is woken while it waits.
        for w in &wakers {
            let mut cx = Context::from_waker(w);
            assert!(Pin::new(&mut c).poll_flush(&mut cx).is_pending());
        }
        let woken: Vec<usize> = counts.iter().map(|c| c.0.load(Ordering::SeqCst)).collect();
        assert_eq!(
            woken,
            [0, 0, 0],
            "a waiting task was woken with nothing done"
        );
        // The peer reads: every waiting task hears of the write's progress.
        let peer = spargio_rt::spawn(async move { read_n(&mut b, 64 * 1024).await });
        guard(async {
            while counts.iter().any(|c| c.0.load(Ordering::SeqCst) == 0) {
                spargio_rt::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await;
        guard(poll_fn(|cx| Pin::new(&mut c).poll_flush(cx)))
            .await
            .unwrap();
        assert_eq!(peer.await.unwrap(), pattern(64 * 1024));
    });
}

#[test]
fn compat_halves_in_two_tasks() {
    use futures_util::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let ok = run(|| async {
        let (a, b) = UnixStream::pair().unwrap();
        let server = spargio_rt::spawn(echo(b));
        let (mut rd, mut wr) = Compat::new(a).split();
        let data = pattern(2 << 20);
        let len = data.len();
        let reader = spargio_rt::spawn(async move {
            let mut got = vec![0u8; len];
            rd.read_exact(&mut got).await.unwrap();
            got
        });
        let src = data.clone();
        let writer = spargio_rt::spawn(async move {
            wr.write_all(&src).await.unwrap();
            wr.close().await.unwrap();
        });
        let got = guard(reader).await.unwrap();
        guard(writer).await.unwrap();
        server.await.unwrap();
        got == data
    });
    assert!(ok);
}

#[test]
fn compat_reports_a_failed_write_on_a_later_call() {
    use futures_util::io::AsyncWriteExt as _;
    run(|| async {
        let (a, b) = UnixStream::pair().unwrap();
        drop(b);
        let mut c = Compat::new(a);
        let chunk = vec![7u8; 1024];
        let mut failed = None;
        for _ in 0..4 {
            if let Err(e) = c.write_all(&chunk).await {
                failed = Some(e);
                break;
            }
        }
        let err = match failed {
            Some(e) => e,
            None => c.flush().await.unwrap_err(),
        };
        assert_eq!(err.kind(), ErrorKind::BrokenPipe);
    });
}

#[test]
fn compat_a_failed_write_fails_every_later_call() {
    use futures_util::io::AsyncWriteExt as _;
    run(|| async {
        let (a, b) = UnixStream::pair().unwrap();
        drop(b);
        let mut c = Compat::new(a);
        // Write-behind: the bytes are taken at once, the failure comes
        // with the next call.
        let _ = c.write(&[1u8; 512]).await;
        let first = c.flush().await.unwrap_err();
        assert_eq!(first.kind(), ErrorKind::BrokenPipe);
        // The lost bytes are never reported sent by a later call.
        let again = c.flush().await.unwrap_err();
        assert_eq!(again.kind(), ErrorKind::BrokenPipe);
        assert!(c.write(b"more").await.is_err());
        assert!(c.close().await.is_err());
    });
}

#[test]
fn compat_wakes_the_writer_after_another_task_polled_its_write() {
    // The halves of a TLS session in two tasks: the reader may poll the
    // write side once (to send an alert) while the writer waits on it.
    use std::sync::{Arc, Mutex};
    let ok = run(|| async {
        let (a, mut b) = UnixStream::pair().unwrap();
        let shared = Arc::new(Mutex::new(Compat::new(a)));
        let data = pattern(4 << 20);
        let len = data.len();
        let c = shared.clone();
        let waiting = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let w = waiting.clone();
        let writer = spargio_rt::spawn(async move {
            let mut off = 0;
            while off < data.len() {
                off += poll_fn(|cx| {
                    let mut g = c.lock().unwrap();
                    let polled =
                        futures_io::AsyncWrite::poll_write(Pin::new(&mut *g), cx, &data[off..]);
                    if polled.is_pending() {
                        w.store(true, std::sync::atomic::Ordering::SeqCst);
                    }
                    polled
                })
                .await
                .unwrap();
            }
            poll_fn(|cx| futures_io::AsyncWrite::poll_flush(Pin::new(&mut *c.lock().unwrap()), cx))
                .await
                .unwrap();
        });
        // The peer reads nothing yet: the writer gets stuck on a write in
        // flight. Another task polls that write once, and goes away.
        common::eventually("the writer waits", || {
            waiting.load(std::sync::atomic::Ordering::SeqCst)
        })
        .await;
        let c = shared.clone();
        let pending = spargio_rt::spawn(async move {
            poll_fn(|cx| {
                let mut g = c.lock().unwrap();
                Poll::Ready(futures_io::AsyncWrite::poll_flush(Pin::new(&mut *g), cx).is_pending())
            })
            .await
        })
        .await
        .unwrap();
        assert!(pending, "the writer should still be waiting");
        let (r, got) = guard(b.read_exact(vec![0u8; len])).await;
        r.unwrap();
        // The write the other task polled completed: the writer must hear.
        let done = spargio_rt::time::timeout(Duration::from_secs(10), writer).await;
        done.expect("the writer was never woken").unwrap();
        got == pattern(len)
    });
    assert!(ok);
}

#[test]
fn compat_is_send_and_unpin() {
    fn check<T: Send + Unpin>() {}
    check::<Compat<TcpStream>>();
    check::<Compat<UnixStream>>();
    check::<io::ReadHalf<TcpStream>>();
    check::<io::WriteHalf<UnixStream>>();
}

#[test]
fn compat_read_dropped_mid_flight_loses_no_bytes() {
    use futures_util::io::AsyncReadExt as _;
    run(|| async {
        let (a, mut b) = UnixStream::pair().unwrap();
        let mut c = Compat::new(a);
        let mut got = [0u8; 5];
        // Nothing has been sent, so this read is still in flight when the
        // timeout drops its future.
        let early = spargio_rt::time::timeout(Duration::from_millis(5), c.read(&mut got)).await;
        assert!(early.is_err());
        let (r, _) = b.write_all(b"after".to_vec()).await;
        r.unwrap();
        guard(c.read_exact(&mut got)).await.unwrap();
        assert_eq!(&got, b"after");
    });
}

#[test]
fn compat_write_vectored_gathers_all_slices_in_order() {
    use futures_util::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let ok = run(|| async {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = spargio_rt::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            echo(s).await;
        });
        let mut c = Compat::new(TcpStream::connect(addr).await.unwrap());
        // Three slices whose total is over one write's 64 KiB share: the
        // first write takes a prefix of them across slice boundaries.
        let a = pattern(40_000);
        let b = vec![7u8; 30_000];
        let d = pattern(5_000);
        let mut expect = a.clone();
        expect.extend_from_slice(&b);
        expect.extend_from_slice(&d);
        let mut sent = 0;
        while sent < expect.len() {
            let rest = &expect[sent..];
            let (x, y) = rest.split_at(rest.len() / 2);
            let slices = [std::io::IoSlice::new(x), std::io::IoSlice::new(y)];
            let n = c.write_vectored(&slices).await.unwrap();
            assert!(n > 0 && n <= 64 * 1024);
            sent += n;
        }
        c.flush().await.unwrap();
        let mut got = vec![0u8; expect.len()];
        c.read_exact(&mut got).await.unwrap();
        c.close().await.unwrap();
        server.await.unwrap();
        got == expect
    });
    assert!(ok);
}

/// A stream whose write op completes only once [`GATE`] is raised, and
/// whose completion does not wake the op's waker on its own: the test
/// wakes it later, as a driver that marks an op done before running its
/// waker does.
struct GatedWrites(UnixStream);

static GATE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static GATED_OP_WAKER: std::sync::Mutex<Option<std::task::Waker>> = std::sync::Mutex::new(None);

impl io::Split for GatedWrites {
    type Read = <UnixStream as io::Split>::Read;
    type Write = <UnixStream as io::Split>::Write;

    fn split_io(self) -> (Self::Read, Self::Write) {
        self.0.split_io()
    }

    fn unsplit_io(read: Self::Read, write: Self::Write) -> Self {
        GatedWrites(UnixStream::unsplit_io(read, write))
    }
}

impl spargio_rt::io::compat::CompatIo for GatedWrites {
    fn read_op(
        read: Self::Read,
        buf: Vec<u8>,
    ) -> spargio_rt::io::compat::OpFuture<(std::io::Result<usize>, Vec<u8>, Self::Read)> {
        Box::pin(async move {
            std::future::pending::<()>().await;
            (Ok(0), buf, read)
        })
    }

    fn write_op(
        write: Self::Write,
        buf: Vec<u8>,
    ) -> spargio_rt::io::compat::OpFuture<(std::io::Result<()>, Vec<u8>, Self::Write)> {
        let mut parts = Some((buf, write));
        Box::pin(poll_fn(move |cx| {
            if GATE.load(std::sync::atomic::Ordering::SeqCst) {
                let (buf, write) = parts.take().expect("polled after completion");
                return Poll::Ready((Ok(()), buf, write));
            }
            *GATED_OP_WAKER.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        }))
    }

    fn flush_op(
        write: Self::Write,
    ) -> spargio_rt::io::compat::OpFuture<(std::io::Result<()>, Self::Write)> {
        Box::pin(async move { (Ok(()), write) })
    }

    fn shutdown_op(
        write: Self::Write,
    ) -> spargio_rt::io::compat::OpFuture<(std::io::Result<()>, Self::Write)> {
        Box::pin(async move { (Ok(()), write) })
    }
}

#[test]
fn compat_wakes_a_waiting_writer_when_another_task_finishes_its_write_first() {
    // The driver marks an op done, then runs its waker. Between the two,
    // another task (the reader half of a TLS session on another shard)
    // may poll the write from the read side, see it done, and move on:
    // the writer waiting on it must still be woken.
    use futures_io::{AsyncRead as _, AsyncWrite as _};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Waker};
    run(|| async {
        let (a, _b) = UnixStream::pair().unwrap();
        let mut c = Compat::new(GatedWrites(a));
        let writer = Arc::new(Count(AtomicUsize::new(0)));
        let reader = Arc::new(Count(AtomicUsize::new(0)));
        let writer_waker = Waker::from(writer.clone());
        let reader_waker = Waker::from(reader.clone());
        let mut wcx = Context::from_waker(&writer_waker);
        assert!(matches!(
            Pin::new(&mut c).poll_write(&mut wcx, b"x"),
            Poll::Ready(Ok(1))
        ));
        // The writer waits for its write to go out.
        assert!(Pin::new(&mut c).poll_flush(&mut wcx).is_pending());
        // The op is done, its wake-up not yet run; the reader polls first.
        GATE.store(true, Ordering::SeqCst);
        let mut out = [0u8; 4];
        let mut rcx = Context::from_waker(&reader_waker);
        assert!(Pin::new(&mut c).poll_read(&mut rcx, &mut out).is_pending());
        // Now the op's own wake-up runs.
        if let Some(w) = GATED_OP_WAKER.lock().unwrap().take() {
            w.wake();
        }
        assert!(
            writer.0.load(Ordering::SeqCst) > 0,
            "the writer waiting on the write was never woken"
        );
        // And, woken, it finds its flush done.
        assert!(matches!(
            Pin::new(&mut c).poll_flush(&mut wcx),
            Poll::Ready(Ok(()))
        ));
    });
}

#[test]
fn compat_closing_twice_succeeds_after_the_peer_closed_too() {
    use futures_util::io::{AsyncReadExt as _, AsyncWriteExt as _};
    run(|| async {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = spargio_rt::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let got = read_n(&mut s, 2).await;
            let (r, _) = s.read(vec![0u8; 8]).await;
            assert_eq!(r.unwrap(), 0, "the client's FIN");
            got
        });
        let mut c = Compat::new(TcpStream::connect(addr).await.unwrap());
        c.write_all(b"hi").await.unwrap();
        c.close().await.unwrap();
        assert_eq!(guard(server).await.unwrap(), b"hi");
        // The peer has gone: both sides are closed.
        let mut rest = Vec::new();
        guard(c.read_to_end(&mut rest)).await.unwrap();
        assert!(rest.is_empty());
        guard(c.close()).await.expect("a second close is a no-op");
    });
}
