//! Bounding a connection's writes by its send timeout, so a peer that
//! stops reading cannot hold a connection (and its place under
//! `max_connections`) forever — with one timer for the connection's life.

use std::future::{poll_fn, Future};
use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::conn_end::ConnEnd;
use crate::connection::Connection;
use crate::lazy_deadline::LazyDeadline;
use crate::stats::Counters;

/// The most bytes one bounded write should carry: the send timeout
/// allows this much time for at most this many bytes to leave.
///
/// A response larger than this goes out as several writes, each with the
/// full send timeout; so the timeout bounds how long the peer may take for
/// this many bytes, not how long a large response may take.
pub const SEND_PIECE: usize = 256 * 1024;

/// Bounds a connection's writes: each write must finish within the send
/// timeout ([`ServerBuilder::send_timeout`](crate::ServerBuilder::send_timeout))
/// or it fails with [`io::ErrorKind::TimedOut`] and is counted in the
/// server's stats (`send_timeouts`); the protocol then closes the
/// connection.
///
/// Keep each bounded write to [`SEND_PIECE`] bytes or so ([`Pieces`]
/// splits a list of buffers for you). The timer is armed once and moved lazily: a later deadline than
/// the armed one costs nothing until the armed one passes.
///
/// ```no_run
/// # async fn demo(conn: &spargio_service::Connection, stream: &mut spargio_rt::net::SocketStream) -> std::io::Result<()> {
/// use spargio_rt::io::AsyncWriteExt;
/// let mut send = conn.send_watch();
/// let (res, _buf) = send.bound(stream.write_all(b"hello".to_vec())).await?;
/// res
/// # }
/// ```
pub struct SendWatch {
    limit: Option<Duration>,
    counters: Option<Arc<Counters>>,
    /// The connection's end flags, told of a timeout.
    end: Option<Arc<ConnEnd>>,
    /// Armed at or before the deadline of the current write (never after).
    timer: LazyDeadline,
}

impl SendWatch {
    /// A watch that bounds nothing (a client's connection, say).
    pub fn unbounded() -> SendWatch {
        SendWatch {
            limit: None,
            counters: None,
            end: None,
            timer: LazyDeadline::default(),
        }
    }

    /// A watch with this send timeout that counts its timeouts nowhere.
    pub fn with_limit(limit: Option<Duration>) -> SendWatch {
        SendWatch {
            limit,
            counters: None,
            end: None,
            timer: LazyDeadline::default(),
        }
    }

    pub(crate) fn for_connection(conn: &Connection) -> SendWatch {
        SendWatch {
            limit: conn.send_timeout(),
            counters: Some(conn.counters().clone()),
            end: conn.end_flags().cloned(),
            timer: LazyDeadline::default(),
        }
    }

    /// The send timeout, if there is one.
    pub fn limit(&self) -> Option<Duration> {
        self.limit
    }

    /// `segments` as the writes this watch bounds: pieces of at most
    /// [`SEND_PIECE`] bytes with a send timeout, the whole list at once
    /// without one.
    pub fn pieces(&self, segments: Vec<Bytes>) -> Pieces {
        match self.limit {
            Some(_) => Pieces::new(segments),
            None => Pieces::whole(segments),
        }
    }

    /// Awaits `write`, failing with `TimedOut` (and dropping, so
    /// cancelling, the write) if it does not finish within the send
    /// timeout. Without a send timeout this is `Ok(write.await)`.
    pub async fn bound<F: Future>(&mut self, write: F) -> io::Result<F::Output> {
        let Some(limit) = self.limit else {
            return Ok(write.await);
        };
        let Some(until) = Instant::now().checked_add(limit) else {
            return Ok(write.await);
        };
        self.timer.arm(until);
        let mut write = pin!(write);
        let timer = &mut self.timer;
        let out = poll_fn(|cx| {
            if let Poll::Ready(out) = write.as_mut().poll(cx) {
                return Poll::Ready(Some(out));
            }
            if timer.poll_passed(cx, until) {
                return Poll::Ready(None);
            }
            Poll::Pending
        })
        .await;
        match out {
            Some(out) => Ok(out),
            None => {
                // A later write arms for its own deadline.
                self.timer.disarm();
                if let Some(counters) = &self.counters {
                    counters.send_timeouts.add(1);
                }
                if let Some(end) = &self.end {
                    end.set_send_timed_out();
                }
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the peer took no data for {limit:?} (send timeout)"),
                ))
            }
        }
    }
}

/// Splits a list of buffers into writes of at most [`SEND_PIECE`] bytes
/// each, in order; a larger buffer is split (`Bytes` slices share its
/// memory). A list that fits in one piece comes back as it is.
///
/// ```
/// use bytes::Bytes;
/// use spargio_service::{Pieces, SEND_PIECE};
/// let big = Bytes::from(vec![0u8; SEND_PIECE + 10]);
/// let sizes: Vec<usize> = Pieces::new(vec![Bytes::from_static(b"head"), big])
///     .map(|piece| piece.iter().map(Bytes::len).sum())
///     .collect();
/// assert_eq!(sizes, [SEND_PIECE, 14]);
/// ```
pub struct Pieces {
    /// The whole list, while it has not been looked at and fits one piece.
    whole: Option<Vec<Bytes>>,
    rest: std::vec::IntoIter<Bytes>,
    /// What is left of a buffer the last piece split.
    carry: Option<Bytes>,
}

impl Pieces {
    /// The pieces of `segments`.
    pub fn new(segments: Vec<Bytes>) -> Pieces {
        let total: usize = segments.iter().map(Bytes::len).sum();
        if total <= SEND_PIECE {
            return Pieces::whole(segments);
        }
        Pieces {
            whole: None,
            rest: segments.into_iter(),
            carry: None,
        }
    }
}

impl Pieces {
    /// `segments` as one piece, whatever its size.
    pub fn whole(segments: Vec<Bytes>) -> Pieces {
        Pieces {
            whole: Some(segments),
            rest: Vec::new().into_iter(),
            carry: None,
        }
    }
}

impl Iterator for Pieces {
    type Item = Vec<Bytes>;

    fn next(&mut self) -> Option<Vec<Bytes>> {
        if let Some(whole) = self.whole.take() {
            return Some(whole);
        }
        let mut piece = Vec::new();
        let mut room = SEND_PIECE;
        while room > 0 {
            let Some(mut seg) = self.carry.take().or_else(|| self.rest.next()) else {
                break;
            };
            if seg.len() > room {
                self.carry = Some(seg.split_off(room));
            }
            room -= seg.len();
            piece.push(seg);
        }
        (!piece.is_empty()).then_some(piece)
    }
}

#[cfg(test)]
#[path = "send_watch_tests.rs"]
mod tests;
