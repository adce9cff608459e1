//! A stream read whose future is dropped (a timeout, a lost `select`)
//! after the kernel gave it bytes loses nothing: the next read, or peek,
//! of that stream gets them first, in order.

use std::time::Duration;

use spargio_rt::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use spargio_rt::net::{TcpListener, UnixStream};
use spargio_rt::process::{Command, Stdio};
use spargio_rt::time::{sleep, timeout};

mod common;
use common::{submitted, tcp_pair, HANG, SETTLE};

/// Starts a read of `reader`, has `writer` send `bytes` (which that read
/// takes), and drops the read without looking at its result.
async fn drop_a_read_that_took<R: AsyncRead, W: AsyncWrite>(
    reader: &mut R,
    writer: &mut W,
    bytes: &[u8],
) {
    let pending = submitted(Box::pin(reader.read(Vec::with_capacity(64)))).await;
    let (res, _) = writer.write_all(bytes.to_vec()).await;
    res.unwrap();
    sleep(SETTLE).await;
    drop(pending);
}

async fn read_n<R: AsyncRead>(r: &mut R, n: usize) -> Vec<u8> {
    let (res, buf) = timeout(HANG, r.read_exact(Vec::with_capacity(n)))
        .await
        .expect("the bytes a dropped read took were lost");
    res.unwrap();
    buf
}

#[spargio_rt::test]
async fn a_tcp_read_dropped_after_its_bytes_came_hands_them_to_the_next_read() {
    let (mut client, mut server) = tcp_pair().await;
    drop_a_read_that_took(&mut server, &mut client, b"hello").await;
    let (res, _) = client.write_all(b" world".to_vec()).await;
    res.unwrap();
    // A small buffer takes part of what was kept; the rest follows, then
    // what the socket holds.
    assert_eq!(read_n(&mut server, 3).await, b"hel");
    assert_eq!(read_n(&mut server, 8).await, b"lo world");
}

#[spargio_rt::test]
async fn a_unix_read_dropped_after_its_bytes_came_hands_them_to_the_next_read() {
    let (mut a, mut b) = UnixStream::pair().unwrap();
    drop_a_read_that_took(&mut b, &mut a, b"kept").await;
    assert_eq!(read_n(&mut b, 4).await, b"kept");
}

#[spargio_rt::test]
async fn a_peek_sees_the_kept_bytes_then_the_socket_and_a_read_takes_both() {
    let (mut client, mut server) = tcp_pair().await;
    drop_a_read_that_took(&mut server, &mut client, b"PROXY ").await;
    let (res, _) = client.write_all(b"TCP4".to_vec()).await;
    res.unwrap();
    sleep(SETTLE).await;
    let (res, seen) = timeout(HANG, server.peek(Vec::with_capacity(64)))
        .await
        .unwrap();
    assert_eq!(res.unwrap(), 10);
    assert_eq!(seen, b"PROXY TCP4");
    assert_eq!(read_n(&mut server, 10).await, b"PROXY TCP4");
}

#[spargio_rt::test]
async fn a_reset_met_by_a_dropped_read_is_the_next_reads_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (mut server, _) = listener.accept().await.unwrap();
    let pending = submitted(Box::pin(server.read(Vec::with_capacity(64)))).await;
    // Closing with a zero linger sends a reset.
    socket2::SockRef::from(&peer)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(peer);
    sleep(SETTLE).await;
    drop(pending);
    // The kernel reports a reset once; the dropped read took it, and a
    // peek says what the next read will get.
    let (res, _) = timeout(HANG, server.peek(Vec::with_capacity(64)))
        .await
        .unwrap();
    assert_eq!(res.unwrap_err().kind(), std::io::ErrorKind::ConnectionReset);
    let (res, _) = timeout(HANG, server.read(Vec::with_capacity(64)))
        .await
        .unwrap();
    assert_eq!(res.unwrap_err().kind(), std::io::ErrorKind::ConnectionReset);
}

/// Resets `peer`'s connection: a close with a zero linger sends a reset.
fn reset(peer: spargio_rt::net::TcpStream) {
    peer.with_socket(|s| s.set_linger(Some(Duration::ZERO)))
        .unwrap();
    drop(peer);
}

/// Asserts that the next read of `server` fails with the reset.
async fn next_read_is_the_reset(server: &mut spargio_rt::net::TcpStream) {
    let (res, _) = timeout(HANG, server.read(Vec::with_capacity(64)))
        .await
        .unwrap();
    assert_eq!(
        res.expect_err("the reset was lost: it read as an end of stream")
            .kind(),
        std::io::ErrorKind::ConnectionReset
    );
}

#[spargio_rt::test]
async fn a_reset_a_peek_meets_beside_kept_bytes_is_the_read_after_them() {
    let (mut client, mut server) = tcp_pair().await;
    drop_a_read_that_took(&mut server, &mut client, b"ab").await;
    reset(client);
    sleep(SETTLE).await;
    // The peek hands out the kept bytes; its look at the socket meets the
    // reset, which the kernel reports only once.
    let (res, seen) = timeout(HANG, server.peek(Vec::with_capacity(64)))
        .await
        .unwrap();
    assert_eq!(res.unwrap(), 2);
    assert_eq!(seen, b"ab");
    assert_eq!(read_n(&mut server, 2).await, b"ab");
    next_read_is_the_reset(&mut server).await;
}

#[spargio_rt::test]
async fn a_reset_met_by_a_dropped_peek_is_the_next_reads_error() {
    let (client, server) = tcp_pair().await;
    let pending = submitted(Box::pin(server.peek(Vec::with_capacity(64)))).await;
    reset(client);
    sleep(SETTLE).await;
    drop(pending);
    let mut server = server;
    next_read_is_the_reset(&mut server).await;
}

#[spargio_rt::test]
async fn a_pipe_read_dropped_after_its_bytes_came_hands_them_to_the_next_read() {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("sleep 0.2; printf piped; sleep 0.5")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let pending = submitted(Box::pin(out.read(Vec::with_capacity(64)))).await;
    sleep(Duration::from_millis(400)).await;
    drop(pending);
    assert_eq!(read_n(&mut out, 5).await, b"piped");
    child.wait().await.unwrap();
}

#[spargio_rt::test]
async fn lines_read_under_short_timeouts_come_whole_and_in_order() {
    const LINES: usize = 3000;
    let (mut a, b) = UnixStream::pair().unwrap();
    let writer = spargio_rt::spawn(async move {
        for chunk in 0..LINES / 100 {
            let text: String = (chunk * 100..chunk * 100 + 100)
                .map(|i| format!("line {i}\n"))
                .collect();
            // Split mid-line so reads meet half lines too.
            let bytes = text.into_bytes();
            let (left, right) = bytes.split_at(bytes.len() / 2 + 3);
            for part in [left.to_vec(), right.to_vec()] {
                let (res, _) = a.write_all(part).await;
                res.unwrap();
                sleep(Duration::from_micros(200)).await;
            }
        }
    });
    let mut lines = BufReader::with_capacity(64, b).lines();
    let mut next = 0;
    let mut timeouts = 0u64;
    while next < LINES {
        match timeout(Duration::from_micros(30), lines.next_line()).await {
            Err(_) => timeouts += 1,
            Ok(line) => {
                assert_eq!(line.unwrap().as_deref(), Some(&*format!("line {next}")));
                next += 1;
            }
        }
    }
    writer.await.unwrap();
    assert!(timeouts > 0, "the reads were never cancelled");
}

#[spargio_rt::test]
async fn a_multishot_receive_will_not_skip_bytes_a_dropped_read_kept() {
    let (mut client, mut server) = tcp_pair().await;
    let ring = spargio_rt::io::BufRing::new(8, 4096).unwrap();
    drop_a_read_that_took(&mut server, &mut client, b"abcd").await;
    let (res, _) = client.write_all(b"efgh".to_vec()).await;
    res.unwrap();
    let err = server.recv_multishot(&ring).next().await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    // Once the kept bytes are read, the receive takes the rest.
    assert_eq!(read_n(&mut server, 4).await, b"abcd");
    let got = server.recv_multishot(&ring).next().await.unwrap().unwrap();
    assert_eq!(&*got, b"efgh");
}

#[spargio_rt::test]
async fn a_multishot_receive_arms_once_an_abandoned_read_that_took_nothing_is_reaped() {
    use std::io::Write;
    let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    let mut b = UnixStream::from_std(b);
    let ring = spargio_rt::io::BufRing::new(8, 4096).unwrap();
    // A read that times out, and a second one dropped while it waits for
    // the first to be reaped; then, with no yield in between (the first's
    // cancel is not reaped yet), a multishot receive.
    let timed_out = timeout(Duration::from_millis(1), b.read(Vec::with_capacity(8))).await;
    assert!(timed_out.is_err());
    drop(submitted(Box::pin(b.read(Vec::with_capacity(8)))).await);
    a.write_all(b"x").unwrap();
    let mut recv = b.recv_multishot(&ring);
    let got = timeout(HANG, recv.next()).await.unwrap();
    let got = match got {
        Ok(Some(got)) => got.to_vec(),
        // The abandoned read lost the race with its cancel and kept "x".
        Err(_) if recv.has_kept_input() => {
            drop(recv);
            read_n(&mut b, 1).await
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(got, b"x");
}

#[spargio_rt::test]
async fn every_task_waiting_for_an_abandoned_read_is_woken() {
    let (mut a, mut b) = UnixStream::pair().unwrap();
    let timed_out = timeout(Duration::from_millis(1), b.read(Vec::with_capacity(8))).await;
    assert!(timed_out.is_err());
    // Two tasks peek while the abandoned read is being cancelled.
    let b = std::rc::Rc::new(b);
    let peeks: Vec<_> = (0..2)
        .map(|_| {
            let b = b.clone();
            spargio_rt::spawn_local(async move {
                let (res, seen) = b.peek(Vec::with_capacity(8)).await;
                res.unwrap();
                seen
            })
        })
        .collect();
    let (res, _) = a.write_all(b"x".to_vec()).await;
    res.unwrap();
    for peek in peeks {
        let seen = timeout(HANG, peek)
            .await
            .expect("a peeking task was never woken");
        assert_eq!(seen.unwrap(), b"x");
    }
}
