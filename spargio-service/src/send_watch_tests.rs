use std::future::pending;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use spargio_rt::sync::CancellationToken;

use super::{Pieces, SendWatch, SEND_PIECE};
use crate::connection::Connection;
use crate::stats::Counters;

fn connection(send: Option<Duration>) -> (Connection, Arc<Counters>) {
    let counters = Counters::new(1);
    let conn =
        Connection::for_test(None, &CancellationToken::new(), &counters).with_send_timeout(send);
    (conn, counters)
}

#[spargio_rt::test(shards = 1)]
async fn a_write_that_finishes_in_time_gives_its_output() {
    let (conn, counters) = connection(Some(Duration::from_secs(30)));
    let mut send = conn.send_watch();
    for i in 0..3 {
        assert_eq!(send.bound(async move { i }).await.unwrap(), i);
    }
    assert_eq!(counters.send_timeouts.get(), 0);
}

#[spargio_rt::test(shards = 1)]
async fn a_write_that_never_finishes_times_out_and_is_counted() {
    let (conn, counters) = connection(Some(Duration::from_millis(20)));
    let mut send = conn.send_watch();
    // Earlier writes armed the timer; the stalled one still times out.
    send.bound(async {}).await.unwrap();
    send.bound(spargio_rt::time::sleep(Duration::from_millis(1)))
        .await
        .unwrap();
    let err = send.bound(pending::<()>()).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    assert_eq!(counters.send_timeouts.get(), 1);
    // The watch is usable afterwards.
    assert_eq!(send.bound(async { 7 }).await.unwrap(), 7);
}

#[spargio_rt::test(shards = 1)]
async fn an_unbounded_watch_waits_as_long_as_it_takes() {
    let mut send = SendWatch::unbounded();
    assert_eq!(send.limit(), None);
    let slow = spargio_rt::time::sleep(Duration::from_millis(30));
    send.bound(slow).await.unwrap();
    let (conn, _) = connection(None);
    assert_eq!(conn.send_watch().limit(), None);
}

#[test]
fn pieces_cover_the_segments_in_order_and_share_their_memory() {
    let big = Bytes::from(
        (0..SEND_PIECE * 2 + 100)
            .map(|i| i as u8)
            .collect::<Vec<u8>>(),
    );
    let segments = vec![
        Bytes::from_static(b"head"),
        big.clone(),
        Bytes::from_static(b"tail"),
    ];
    let expected: Vec<u8> = segments.iter().flat_map(|s| s.iter().copied()).collect();
    let mut written = Vec::new();
    let mut sizes = Vec::new();
    for piece in Pieces::new(segments) {
        sizes.push(piece.iter().map(Bytes::len).sum::<usize>());
        for seg in &piece {
            if seg.len() > 1000 {
                // A slice of the large segment, not a copy of it.
                let offset = seg.as_ptr() as usize - big.as_ptr() as usize;
                assert!(offset < big.len());
            }
            written.extend_from_slice(seg);
        }
    }
    assert_eq!(written, expected);
    assert_eq!(sizes, [SEND_PIECE, SEND_PIECE, 108]);
}

#[test]
fn a_list_that_fits_one_piece_comes_back_whole() {
    let list = vec![
        Bytes::from_static(b"a"),
        Bytes::new(),
        Bytes::from_static(b"b"),
    ];
    let pieces: Vec<Vec<Bytes>> = Pieces::new(list.clone()).collect();
    assert_eq!(pieces, [list]);
    assert_eq!(Pieces::new(Vec::new()).count(), 1);
}
