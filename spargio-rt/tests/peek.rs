//! `peek` on stream sockets: sees what a read would, leaves it queued,
//! waits while nothing is queued, and reports the peer's close.

use std::time::Duration;

use spargio_rt::io::{AsyncReadExt, AsyncWriteExt};
use spargio_rt::net::{SocketStream, UnixStream};
use spargio_rt::time::timeout;

mod common;
use common::tcp_pair;

/// Long enough that only a hang reaches it.
const HANG: Duration = Duration::from_secs(20);

#[spargio_rt::test]
async fn a_tcp_peek_leaves_the_bytes_for_the_next_read() {
    let (mut client, server) = tcp_pair().await;
    let (res, _) = client.write_all(b"PROXY TCP4 rest".to_vec()).await;
    res.unwrap();
    // Peeks into a smaller buffer see a prefix, and see it again.
    for _ in 0..2 {
        let (res, seen) = server.peek(Vec::with_capacity(6)).await;
        assert_eq!(res.unwrap(), 6);
        assert_eq!(seen, b"PROXY ");
    }
    let mut server = SocketStream::from(server);
    let (res, seen) = server.peek(Vec::with_capacity(64)).await;
    assert_eq!(res.unwrap(), 15);
    assert_eq!(seen, b"PROXY TCP4 rest");
    // Taking part of it leaves the rest to the next peek.
    let (res, taken) = server.read_exact(Vec::with_capacity(11)).await;
    res.unwrap();
    assert_eq!(taken, b"PROXY TCP4 ");
    let (res, seen) = server.peek(Vec::with_capacity(64)).await;
    assert_eq!(res.unwrap(), 4);
    assert_eq!(seen, b"rest");
    let (res, rest) = server.read_exact(Vec::with_capacity(4)).await;
    res.unwrap();
    assert_eq!(rest, b"rest");
}

#[spargio_rt::test]
async fn a_peek_waits_for_bytes_and_sees_the_close() {
    let (mut a, b) = UnixStream::pair().unwrap();
    let peeking = spargio_rt::spawn_local(async move {
        let (res, seen) = b.peek(Vec::with_capacity(16)).await;
        (res.map_err(|e| e.kind()), seen, b)
    });
    // The peek is pending while nothing was sent.
    spargio_rt::time::sleep(Duration::from_millis(20)).await;
    assert!(
        !peeking.is_finished(),
        "a peek returned with nothing queued"
    );
    let (res, _) = a.write_all(b"late".to_vec()).await;
    res.unwrap();
    let (res, seen, mut b) = timeout(HANG, peeking).await.unwrap().unwrap();
    assert_eq!(res, Ok(4));
    assert_eq!(seen, b"late");
    drop(a);
    // The peer closed: the queued bytes still come first, then the end.
    let (res, seen) = b.peek(Vec::with_capacity(16)).await;
    assert_eq!(res.unwrap(), 4);
    assert_eq!(seen, b"late");
    let (res, all) = b.read_to_end(Vec::new()).await;
    res.unwrap();
    assert_eq!(all, b"late");
    let (res, _) = b.peek(Vec::with_capacity(16)).await;
    assert_eq!(res.unwrap(), 0, "a peek after the end of stream");
}

#[spargio_rt::test]
async fn a_dropped_peek_takes_nothing_off_the_socket() {
    let (mut a, mut b) = UnixStream::pair().unwrap();
    {
        let peek = b.peek(Vec::with_capacity(16));
        // Cancelled while it waits.
        assert!(timeout(Duration::from_millis(10), peek).await.is_err());
    }
    let (res, _) = a.write_all(b"kept".to_vec()).await;
    res.unwrap();
    let (res, got) = timeout(HANG, b.read_exact(Vec::with_capacity(4)))
        .await
        .unwrap();
    res.unwrap();
    assert_eq!(got, b"kept");
}
