//! The outgoing side shared by the server and the client: frames gather in
//! one reusable buffer and go out in as few writes as possible.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::task::Poll;

use bytes::{Bytes, BytesMut};
use spargio_rt::io::{flush_beside, loud, AsyncWrite, AsyncWriteExt};

use crate::send_watch::{SendWatch, SEND_PIECE};

use super::frame::{encode_request_header, encode_response_header};
use super::status::Status;

/// Payloads up to this size are copied into the write buffer; larger ones
/// are written from their own memory (one vectored write with the
/// buffered bytes before them).
const COPY_LIMIT: usize = 16 * 1024;

/// Buffered frames are written out once they reach this size, even if more
/// could be added.
const FLUSH_AT: usize = 64 * 1024;

/// Frames waiting to be written, and the bound on each write.
pub(super) struct Output {
    buf: BytesMut,
    send: SendWatch,
}

impl Output {
    /// An empty output whose writes `send` bounds.
    pub(super) fn new(send: SendWatch) -> Output {
        Output {
            buf: BytesMut::new(),
            send,
        }
    }

    /// Whether nothing waits to be written.
    pub(super) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Queues a response frame; writes if the buffer is full or the payload
    /// is large.
    pub(super) async fn response<S: AsyncWrite>(
        &mut self,
        stream: &mut S,
        status: Status,
        payload: Bytes,
    ) -> io::Result<()> {
        encode_response_header(status, payload.len(), &mut self.buf);
        self.payload(stream, payload).await
    }

    /// Queues a request frame; writes if the buffer is full or the payload
    /// is large.
    pub(super) async fn request<S: AsyncWrite>(
        &mut self,
        stream: &mut S,
        payload: Bytes,
    ) -> io::Result<()> {
        encode_request_header(payload.len(), &mut self.buf);
        self.payload(stream, payload).await
    }

    async fn payload<S: AsyncWrite>(&mut self, stream: &mut S, payload: Bytes) -> io::Result<()> {
        if payload.len() <= COPY_LIMIT {
            self.buf.extend_from_slice(&payload);
            if self.buf.len() >= FLUSH_AT {
                self.flush(stream).await?;
            }
            return Ok(());
        }
        // Large: the header (and whatever was queued) and the payload in
        // one vectored write, without copying the payload. The split-off
        // head shares the buffer's memory; once it is dropped the buffer
        // reclaims that memory on its next `reserve`.
        let head = self.buf.split().freeze();
        self.write_pieces(stream, vec![head, payload]).await
    }

    /// Writes `segments` as bounded writes of at most [`SEND_PIECE`] bytes.
    ///
    /// Every piece but the last is written [`loud`]ly: polled inside
    /// `quiet_writes` (a flush beside the next request's read), a piece
    /// that went out in full would otherwise not wake the task, and the
    /// next one would wait for the read (or the send timeout's timer).
    async fn write_pieces<S: AsyncWrite>(
        &mut self,
        stream: &mut S,
        segments: Vec<Bytes>,
    ) -> io::Result<()> {
        let mut pieces = self.send.pieces(segments).peekable();
        while let Some(piece) = pieces.next() {
            let write = stream.write_vectored_all(piece);
            let (res, _) = if pieces.peek().is_some() {
                self.send.bound(loud(write)).await?
            } else {
                self.send.bound(write).await?
            };
            res?;
        }
        Ok(())
    }

    /// Writes everything queued.
    pub(super) async fn flush<S: AsyncWrite>(&mut self, stream: &mut S) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if self.buf.len() > SEND_PIECE {
            let all = self.buf.split().freeze();
            return self.write_pieces(stream, vec![all]).await;
        }
        // A write that times out loses the buffer (it goes with the
        // cancelled write); the connection closes then.
        let buf = std::mem::take(&mut self.buf);
        let (res, mut buf) = self.send.bound(stream.write_all(buf)).await?;
        buf.clear();
        self.buf = buf;
        res
    }

    /// Awaits `fut`, but if it cannot finish at once and frames are queued,
    /// writes them meanwhile: queued responses never wait behind a request
    /// that is still being handled (or a service that is not ready).
    ///
    /// `fut` is polled all through the write: a service waiting for a
    /// permit must take the wake-up that hands it one when it comes, or
    /// the permit's other waiters are not woken until this write ends.
    pub(super) async fn flush_while_pending<F: Future, S: AsyncWrite>(
        &mut self,
        stream: &mut S,
        fut: F,
    ) -> io::Result<F::Output> {
        let mut fut = pin!(fut);
        if self.is_empty() {
            return Ok(fut.await);
        }
        let first = std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await;
        if let Poll::Ready(v) = first {
            return Ok(v);
        }
        flush_beside(self.flush(stream), fut).await
    }
}

#[cfg(test)]
mod tests {
    use std::pin::pin;
    use std::time::Duration;

    use spargio_rt::io::{flush_and_read, AsyncRead, AsyncReadExt, AsyncWriteExt};
    use spargio_rt::net::UnixStream;

    use super::*;

    #[spargio_rt::test(shards = 1)]
    async fn a_flush_in_pieces_beside_a_read_goes_on_after_each_piece() {
        let (ours, mut peer) = UnixStream::pair().unwrap();
        let (mut reader, mut writer) = ours.into_split();
        // A send timeout far longer than the test: each piece is bounded,
        // and its timer must not be what moves the flush on.
        let mut out = Output::new(SendWatch::with_limit(Some(Duration::from_secs(3600))));
        let total = 3 * SEND_PIECE + 10;
        out.buf.extend_from_slice(&vec![7u8; total]);
        // The peer answers only once it has every byte: the read beside
        // the flush cannot finish first and wake the task.
        let answer = spargio_rt::spawn_local(async move {
            let (res, got) = peer.read_exact(vec![0u8; total]).await;
            res.unwrap();
            let (res, _) = peer.write_all(b"!".to_vec()).await;
            res.unwrap();
            got.iter().all(|&b| b == 7)
        });
        let flush = pin!(out.flush(&mut writer));
        let read = pin!(reader.read(Vec::with_capacity(1)));
        let done = spargio_rt::time::timeout(Duration::from_secs(20), flush_and_read(flush, read))
            .await
            .expect("the flush stopped after a piece");
        let (n, _) = done.expect("the flush failed");
        assert_eq!(n.unwrap(), 1);
        assert!(answer.await.unwrap(), "the bytes came whole");
    }
}
