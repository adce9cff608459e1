//! A datagram receive or an accept whose future is dropped (a timeout, a
//! lost `select`) after the kernel completed it loses nothing: the next
//! receive, or accept, of that socket gets the datagram or the connection.

use std::future::Future;
use std::time::Duration;

use spargio_rt::io::{AsyncReadExt, AsyncWriteExt};
use spargio_rt::net::{TcpListener, TcpStream, UdpSocket, UnixDatagram};
use spargio_rt::time::{sleep, timeout};

mod common;
use common::{submitted, HANG, SETTLE};

/// Awaits `fut`, failing the test if what a dropped op took was lost.
async fn within<F: Future>(fut: F) -> F::Output {
    timeout(HANG, fut)
        .await
        .expect("what the dropped op took was lost")
}

#[spargio_rt::test]
async fn a_udp_receive_dropped_after_its_datagram_came_hands_it_to_the_next_receive() {
    let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let to = rx.local_addr().unwrap();
    let pending = submitted(Box::pin(rx.recv_from(Vec::with_capacity(64)))).await;
    tx.send_to(vec![1; 5], to).await.0.unwrap();
    sleep(SETTLE).await;
    drop(pending);
    // Sent after the dropped receive: they come after what it kept.
    for later in [2u8, 3] {
        tx.send_to(vec![later; 5], to).await.0.unwrap();
    }
    for expected in [1u8, 2, 3] {
        let (res, buf) = within(rx.recv_from(Vec::with_capacity(64))).await;
        let (n, from) = res.unwrap();
        assert_eq!(&buf[..n], [expected; 5]);
        assert_eq!(from, tx.local_addr().unwrap());
    }
}

#[spargio_rt::test]
async fn a_kept_datagram_is_cut_to_the_next_receives_room_and_says_so() {
    let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let pending = submitted(Box::pin(rx.recv_from(Vec::with_capacity(256)))).await;
    tx.send_to(vec![7u8; 100], rx.local_addr().unwrap())
        .await
        .0
        .unwrap();
    sleep(SETTLE).await;
    drop(pending);
    let (res, buf) = within(rx.recv_msg(Vec::with_capacity(10))).await;
    let meta = res.unwrap();
    assert_eq!(meta.len, 10);
    assert_eq!(buf, [7u8; 10]);
    assert!(meta.truncated, "the rest of the datagram was discarded");
    assert_eq!(meta.addr, tx.local_addr().unwrap());
}

#[spargio_rt::test]
async fn a_refusal_met_by_a_dropped_receive_is_the_next_receives_error() {
    // A port nobody listens on: the send draws an ICMP refusal, which a
    // connected socket's waiting receive fails with.
    let gone = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let gone_addr = gone.local_addr().unwrap();
    drop(gone);
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    s.connect(gone_addr).await.unwrap();
    let pending = submitted(Box::pin(s.recv(Vec::with_capacity(8)))).await;
    s.send(b"anyone?".to_vec()).await.0.unwrap();
    sleep(SETTLE).await;
    drop(pending);
    let (res, _) = within(s.recv(Vec::with_capacity(8))).await;
    assert_eq!(
        res.unwrap_err().kind(),
        std::io::ErrorKind::ConnectionRefused
    );
}

#[spargio_rt::test]
async fn a_unix_datagram_receive_dropped_after_its_datagram_came_hands_it_to_the_next_receive() {
    let (a, b) = UnixDatagram::pair().unwrap();
    let pending = submitted(Box::pin(b.recv(Vec::with_capacity(64)))).await;
    a.send(b"first".to_vec()).await.0.unwrap();
    sleep(SETTLE).await;
    drop(pending);
    a.send(b"second".to_vec()).await.0.unwrap();
    let (res, buf) = within(b.recv(Vec::with_capacity(64))).await;
    assert_eq!(&buf[..res.unwrap()], b"first");
    let (res, buf) = within(b.recv_from(Vec::with_capacity(64))).await;
    assert_eq!(&buf[..res.unwrap().0], b"second");
}

#[spargio_rt::test]
async fn an_accept_dropped_after_its_connection_came_hands_it_to_the_next_accept() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let pending = submitted(Box::pin(l.accept())).await;
    let mut client = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
    client.write_all(b"hello".to_vec()).await.0.unwrap();
    sleep(SETTLE).await;
    drop(pending);
    let (mut server, peer) = within(l.accept()).await.unwrap();
    assert_eq!(peer, client.local_addr().unwrap());
    let (res, buf) = within(server.read_exact(vec![0u8; 5])).await;
    res.unwrap();
    assert_eq!(buf, b"hello");
    // The connection is whole both ways: not reset, not closed.
    server.write_all(b"back".to_vec()).await.0.unwrap();
    let (res, buf) = within(client.read_exact(vec![0u8; 4])).await;
    res.unwrap();
    assert_eq!(buf, b"back");
}

#[spargio_rt::test]
async fn a_receive_loop_under_a_short_timeout_loses_no_datagram() {
    // The pattern ported from tokio: receive with a timeout, go round
    // again on the timeout. A datagram that completes a receive as its
    // timeout fires must not be lost.
    let (a, b) = UnixDatagram::pair().unwrap();
    const COUNT: u32 = 300;
    let sender = spargio_rt::spawn(async move {
        for i in 0..COUNT {
            a.send(i.to_be_bytes().to_vec()).await.0.unwrap();
            if i % 8 == 0 {
                sleep(Duration::from_micros(50)).await;
            }
        }
    });
    let mut next = 0u32;
    let give_up = std::time::Instant::now() + HANG;
    while next < COUNT {
        assert!(std::time::Instant::now() < give_up, "datagram {next} lost");
        if let Ok((res, buf)) =
            timeout(Duration::from_micros(20), b.recv(Vec::with_capacity(8))).await
        {
            let n = res.unwrap();
            let got = u32::from_be_bytes(buf[..n].try_into().unwrap());
            // One receiver: what a dropped receive kept comes before what
            // the socket queued after it.
            assert_eq!(got, next, "a datagram was lost or reordered");
            next += 1;
        }
    }
    sender.await.unwrap();
}
