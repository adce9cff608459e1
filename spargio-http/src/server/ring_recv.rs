//! Plain (TCP or Unix) connections of the server, read through one multishot receive
//! into the shard's provided-buffer ring.
//!
//! A single-shot read per request costs a receive submission and, when the
//! request has not arrived yet, a poll the kernel arms and disarms. A
//! multishot receive stays armed for the connection's life: each arrival
//! is one completion carrying a buffer the kernel took from the shard's
//! ring, copied into the connection's read buffer and handed straight
//! back. Connections are pinned to their session shard, the shard whose
//! ring the buffers are registered on.
//!
//! A connection leaves at most a few received buffers waiting (then its
//! receive pauses and the data waits in the socket), and a read that finds
//! the ring dry goes straight to the socket, so connections whose handlers
//! stop reading cannot stall the others. When the shard has no buffer
//! ring (the kernel refused one), reads fall back to one receive per read. Before the stream is handed over (an
//! upgrade), [`TransportRead::release`] stops the receive and appends what
//! it had already taken, so no byte is lost or reordered.

use std::cell::RefCell;
use std::io;

use bytes::BytesMut;
use spargio_rt::io::compat::Compat;
use spargio_rt::io::{BufRing, RingBuf};
use spargio_rt::net::{RecvMultishot, SocketStream};

use crate::transport::{RawIo, SocketReader, SocketWriter, Transport, TransportRead};

/// Buffers in a shard's receive ring.
const RING_ENTRIES: u16 = 512;
/// Bytes per receive buffer: 2 MiB per shard in all.
const RING_BUF_LEN: usize = 4096;
/// Received buffers a connection may leave waiting before its receive
/// pauses (the rest waits in the socket, under TCP flow control).
const MAX_QUEUED_PER_CONN: usize = 4;

thread_local! {
    /// This shard's receive ring, made on first use; `Some(None)` when the
    /// kernel refused one (reads then go one receive at a time).
    static SHARD_RING: RefCell<Option<Option<BufRing>>> = const { RefCell::new(None) };
}

/// The current shard's receive ring, if it has (or can get) one.
fn shard_ring() -> Option<BufRing> {
    SHARD_RING.with(|slot| {
        slot.borrow_mut()
            .get_or_insert_with(|| BufRing::new(RING_ENTRIES, RING_BUF_LEN).ok())
            .clone()
    })
}

/// A served plain connection whose reads come from a multishot receive.
pub(crate) struct RingRecv(pub(crate) SocketStream);

/// The read side of a [`RingRecv`].
pub(crate) struct RingRecvReader {
    /// The socket's read half, read directly when there is no receive.
    half: SocketReader,
    /// The armed receive; `None` without a shard ring, or once released.
    recv: Option<RecvMultishot>,
    /// A received buffer that did not fit the last read, and how much of
    /// it was already copied out.
    rest: Option<(RingBuf, usize)>,
}

impl Transport for RingRecv {
    type Reader = RingRecvReader;
    type Writer = SocketWriter;

    fn split(self) -> (RingRecvReader, SocketWriter) {
        let recv = shard_ring().map(|ring| {
            let mut recv = self.0.recv_multishot(&ring);
            recv.max_queued(MAX_QUEUED_PER_CONN).fail_when_dry(true);
            recv
        });
        let (read, write) = spargio_rt::io::split(self.0);
        let reader = RingRecvReader {
            half: SocketReader(read),
            recv,
            rest: None,
        };
        (reader, SocketWriter(write))
    }

    /// The receive must have been released first (the server does, before
    /// it hands a connection over); one still armed is cancelled here and
    /// what it held would be lost.
    fn rejoin(read: RingRecvReader, write: SocketWriter) -> Box<dyn RawIo> {
        debug_assert!(read.recv.is_none() && read.rest.is_none());
        Box::new(Compat::new(spargio_rt::io::unsplit(read.half.0, write.0)))
    }
}

impl RingRecvReader {
    /// Copies what fits of `got` (from offset `off`) into `buf`'s spare
    /// capacity; keeps the remainder for the next read.
    fn take_from(&mut self, got: RingBuf, off: usize, buf: &mut BytesMut) -> usize {
        let room = buf.capacity() - buf.len();
        let n = room.min(got.len() - off);
        buf.extend_from_slice(&got[off..off + n]);
        if off + n < got.len() {
            self.rest = Some((got, off + n));
        }
        n
    }
}

impl TransportRead for RingRecvReader {
    async fn read_some(&mut self, mut buf: BytesMut) -> (io::Result<usize>, BytesMut) {
        if buf.len() == buf.capacity() {
            // Copying into no room would read `Ok(0)`: a false end of stream.
            buf.reserve(crate::transport::READ_CHUNK);
        }
        if let Some((got, off)) = self.rest.take() {
            let n = self.take_from(got, off, &mut buf);
            return (Ok(n), buf);
        }
        let Some(recv) = self.recv.as_mut() else {
            return self.half.read_some(buf).await;
        };
        match recv.next().await {
            Ok(Some(got)) => {
                let n = self.take_from(got, 0, &mut buf);
                (Ok(n), buf)
            }
            Ok(None) => (Ok(0), buf),
            // The shard's ring is dry (other connections hold its buffers):
            // this read goes straight to the socket, where the data waits,
            // instead of waiting for them.
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => self.half.read_some(buf).await,
            // A plain read (the dry-ring path above) cut short by a timeout
            // kept what it took: a plain read hands it out first.
            Err(_) if recv.has_kept_input() => self.half.read_some(buf).await,
            Err(e) => (Err(e), buf),
        }
    }

    /// Buffers the receive took off the socket count as waiting input;
    /// with none, the socket itself is peeked.
    fn input_waiting(&self) -> Option<bool> {
        if self.rest.is_some() || self.recv.as_ref().is_some_and(|r| r.queued() > 0) {
            return Some(true);
        }
        self.half.input_waiting()
    }

    async fn release(&mut self, buf: &mut BytesMut) -> io::Result<()> {
        if let Some((got, off)) = self.rest.take() {
            buf.extend_from_slice(&got[off..]);
        }
        if let Some(mut recv) = self.recv.take() {
            recv.stop();
            while let Some(got) = recv.next().await? {
                buf.extend_from_slice(&got);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use spargio_rt::io::AsyncWriteExt;
    use spargio_rt::net::{TcpListener, TcpStream};

    use super::RingRecv;
    use crate::transport::{Transport, TransportRead};

    #[spargio_rt::test]
    async fn a_full_buffer_grows_instead_of_reading_a_false_end_of_stream() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (mut reader, _writer) = RingRecv(server.into()).split();
        let (res, _) = client.write_all(b"GET / HTTP/1.1\r\n".to_vec()).await;
        res.unwrap();
        // The first read keeps what does not fit for the next one.
        let (res, buf) = reader.read_some(BytesMut::with_capacity(4)).await;
        assert_eq!(res.unwrap(), 4);
        assert_eq!(&buf[..], b"GET ");
        // A buffer with no room left: the rest still comes.
        let full = BytesMut::from(&b"full"[..]);
        assert_eq!(full.len(), full.capacity());
        let (res, buf) = reader.read_some(full).await;
        assert_eq!(res.unwrap(), 12);
        assert_eq!(&buf[4..], b"/ HTTP/1.1\r\n");
    }
}
