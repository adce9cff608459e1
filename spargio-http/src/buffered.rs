//! A connection's two buffered sides, input (read buffer) and output
//! (write buffer), as the server's connections and the client's use them.

use std::io;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use spargio_service::{SendWatch, SEND_PIECE};

use crate::h1;

use crate::transport::{TransportRead, TransportWrite};

/// The read side and the bytes read but not yet used.
pub(crate) struct Input<R> {
    reader: R,
    /// Bytes read and not yet parsed. Empty (and unusable) after a read
    /// was cancelled mid-flight; the connection closes then.
    pub buf: BytesMut,
    /// The peer closed its side.
    pub eof: bool,
    read_size: usize,
}

impl<R: TransportRead> Input<R> {
    pub(crate) fn new(reader: R, read_size: usize) -> Input<R> {
        Input {
            reader,
            buf: BytesMut::new(),
            eof: false,
            read_size,
        }
    }

    /// Reads once, appending to `buf`; returns how many bytes came (0 at
    /// end of stream, which also sets `eof`). Cancelling it loses `buf`.
    pub(crate) async fn fill(&mut self) -> io::Result<usize> {
        self.buf.reserve(self.read_size);
        let buf = std::mem::take(&mut self.buf);
        let (res, buf) = self.reader.read_some(buf).await;
        self.buf = buf;
        match res {
            Ok(0) => {
                self.eof = true;
                Ok(0)
            }
            other => other,
        }
    }

    /// Stops the reader's armed read, keeping what it received (see
    /// [`TransportRead::release`]); call before [`into_parts`](Self::into_parts).
    pub(crate) async fn release(&mut self) -> io::Result<()> {
        self.reader.release(&mut self.buf).await
    }

    /// The read side, for an upgrade.
    pub(crate) fn into_parts(self) -> (R, BytesMut) {
        (self.reader, self.buf)
    }
}

/// Data frames at least this long are queued by reference (a `Bytes`
/// handle; no copy for `Bytes` or `BytesMut` data) and written from where
/// they are with a vectored write. Shorter ones are copied into the write
/// buffer, where many small frames and heads become one write.
pub(crate) const ZERO_COPY_MIN: usize = 16 * 1024;

/// A place in an [`Output`]'s bytes: how many had been queued over its
/// whole life when it was taken ([`Output::mark`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mark(u64);

/// The write side and the bytes queued for it.
///
/// Bytes go out in the order they were queued: first `queued` (earlier
/// contents of `buf`, sealed, and large frames kept by reference), then
/// `buf`. So a large frame never passes through, or grows, the write
/// buffer: a 1 GiB body does not leave a 1 GiB buffer on the connection.
pub(crate) struct Output<W> {
    writer: W,
    /// Encoded bytes not yet written, after everything in `queued`.
    pub buf: BytesMut,
    /// Segments that go out before `buf`, in order.
    queued: Vec<Bytes>,
    /// Total length of `queued`.
    queued_len: usize,
    /// How many bytes were handed to the writer, over the output's life
    /// (written, or lost with a failed write).
    taken: u64,
    /// Bounds each write by the connection's send timeout.
    send: SendWatch,
}

impl<W> Output<W> {
    pub(crate) fn new(writer: W) -> Output<W> {
        Output {
            writer,
            buf: BytesMut::with_capacity(4096),
            queued: Vec::new(),
            queued_len: 0,
            taken: 0,
            send: SendWatch::unbounded(),
        }
    }

    /// The same output with each write bounded by `send` (a server
    /// connection's send timeout).
    pub(crate) fn bounded_by(mut self, send: SendWatch) -> Output<W> {
        self.send = send;
        self
    }

    /// How many bytes are queued and not yet written.
    pub(crate) fn pending(&self) -> usize {
        self.queued_len + self.buf.len()
    }

    /// The place right after what is queued now: bytes queued next (into
    /// `buf` or otherwise) come after it.
    pub(crate) fn mark(&self) -> Mark {
        Mark(self.taken + self.pending() as u64)
    }

    /// Drops everything queued after `mark`, if none of it has been handed
    /// to the writer yet; says whether it could. What was queued before
    /// `mark` stays queued either way.
    pub(crate) fn discard_from(&mut self, mark: Mark) -> bool {
        let Some(keep) = mark.0.checked_sub(self.taken) else {
            // Bytes after the mark have gone out (or are going).
            return false;
        };
        // A mark past the end (none of this output's) has nothing after it.
        let keep = usize::try_from(keep).map_or(self.pending(), |k| k.min(self.pending()));
        if keep >= self.queued_len {
            self.buf.truncate(keep - self.queued_len);
            return true;
        }
        // The mark falls inside `queued`: keep the segments before it and
        // the front of the one it falls in.
        let mut before = 0;
        let mut kept = 0;
        while before < keep {
            let segment = &mut self.queued[kept];
            segment.truncate(keep - before);
            before += segment.len();
            kept += 1;
        }
        self.queued.truncate(kept);
        self.queued_len = keep;
        self.buf.clear();
        true
    }

    /// Queues body data as it is: copied into `buf` if short, kept by
    /// reference if at least [`ZERO_COPY_MIN`] long.
    pub(crate) fn put_data<D: Buf>(&mut self, mut data: D) {
        let n = data.remaining();
        if n < ZERO_COPY_MIN {
            self.buf.put(data);
            return;
        }
        // `copy_to_bytes` of a `Bytes` or `BytesMut` hands over the same
        // memory; other `Buf`s copy once, as `put` would.
        let bytes = data.copy_to_bytes(n);
        self.seal();
        self.queued_len += bytes.len();
        self.queued.push(bytes);
    }

    /// Queues body data as one chunk of a chunked body (nothing for empty
    /// data: an empty chunk would end the body).
    pub(crate) fn put_chunk<D: Buf>(&mut self, data: D) {
        let n = data.remaining();
        if n == 0 {
            return;
        }
        h1::encode_chunk_size(&mut self.buf, n);
        self.put_data(data);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// Moves what `buf` holds to the end of `queued`, so that what is
    /// queued next goes out after it. `buf` keeps the rest of its
    /// allocation for what follows.
    fn seal(&mut self) {
        if !self.buf.is_empty() {
            let sealed = self.buf.split().freeze();
            self.queued_len += sealed.len();
            self.queued.push(sealed);
        }
    }
}

impl<W: TransportWrite> Output<W> {
    /// Writes out everything queued. Each write is bounded by the send
    /// watch; one that times out fails the flush with `TimedOut` and loses
    /// what it carried (the connection closes then).
    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        if self.queued.is_empty() && self.buf.len() <= SEND_PIECE {
            if self.buf.is_empty() {
                return Ok(());
            }
            let buf = std::mem::take(&mut self.buf);
            self.taken += buf.len() as u64;
            let (res, mut buf) = self.send.bound(self.writer.write_all(buf)).await?;
            buf.clear();
            self.buf = buf;
            return res;
        }
        self.seal();
        let segments = std::mem::take(&mut self.queued);
        self.taken += self.queued_len as u64;
        self.queued_len = 0;
        let mut pieces = self.send.pieces(segments).peekable();
        while let Some(piece) = pieces.next() {
            let write = self.send.bound(self.writer.write_segments(piece));
            // A flush polled quietly (beside the next request's read) may
            // end with a write that wakes nobody; one with more pieces
            // after it must wake the task, or they wait for that read.
            let (res, mut piece) = if pieces.peek().is_some() {
                spargio_rt::io::loud(write).await?
            } else {
                write.await?
            };
            res?;
            // Dropping the handles lets `buf` take its sealed memory
            // back; the list is kept for the next flush.
            piece.clear();
            self.queued = piece;
        }
        Ok(())
    }

    /// Flushes, then closes the write side.
    pub(crate) async fn shutdown(&mut self) -> io::Result<()> {
        self.flush().await?;
        self.send.bound(self.writer.shutdown()).await?
    }

    /// Writes out what is queued (best effort); with `reset`, has the
    /// connection end with a reset instead of a clean close once it is
    /// dropped (see [`TransportWrite::abort`]).
    pub(crate) async fn abort(&mut self, reset: bool) {
        let _ = self.flush().await;
        if reset {
            self.writer.abort();
        }
    }

    /// The write side, for an upgrade.
    pub(crate) fn into_writer(self) -> W {
        self.writer
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use bytes::{Bytes, BytesMut};

    use spargio_service::{SendWatch, SEND_PIECE};

    use super::{Output, ZERO_COPY_MIN};
    use crate::transport::TransportWrite;

    /// A write side that records every write: plain buffers as copies,
    /// segments as the handles it was given.
    #[derive(Default)]
    struct Recorder {
        writes: Vec<Bytes>,
        segments_calls: usize,
    }

    impl Recorder {
        fn all(&self) -> Vec<u8> {
            self.writes.iter().flat_map(|w| w.iter().copied()).collect()
        }
    }

    impl TransportWrite for Recorder {
        async fn write_all(&mut self, buf: BytesMut) -> (io::Result<()>, BytesMut) {
            self.writes.push(Bytes::copy_from_slice(&buf));
            (Ok(()), buf)
        }

        async fn write_segments(&mut self, segments: Vec<Bytes>) -> (io::Result<()>, Vec<Bytes>) {
            self.segments_calls += 1;
            self.writes.extend(segments.iter().cloned());
            (Ok(()), segments)
        }

        async fn shutdown(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[spargio_rt::test]
    async fn a_large_frame_is_written_from_where_it_is_and_does_not_grow_the_buffer() {
        let mut out = Output::new(Recorder::default());
        let large = Bytes::from(vec![7u8; 8 * 1024 * 1024]);
        out.buf.extend_from_slice(b"HEAD\r\n\r\n");
        out.put_data(large.clone());
        out.buf.extend_from_slice(b"next");
        assert_eq!(out.pending(), 8 + large.len() + 4);
        assert!(out.buf.capacity() < ZERO_COPY_MIN);
        out.flush().await.unwrap();
        assert_eq!(out.pending(), 0);

        let rec = out.into_writer();
        assert_eq!(rec.segments_calls, 1);
        assert_eq!(rec.writes.len(), 3);
        assert_eq!(&rec.writes[0][..], b"HEAD\r\n\r\n");
        // The very same memory, not a copy of it.
        assert_eq!(rec.writes[1].as_ptr(), large.as_ptr());
        assert_eq!(rec.writes[1].len(), large.len());
        assert_eq!(&rec.writes[2][..], b"next");
    }

    #[spargio_rt::test]
    async fn with_a_send_timeout_a_large_frame_goes_out_in_bounded_pieces() {
        let send = SendWatch::with_limit(Some(std::time::Duration::from_secs(30)));
        let mut out = Output::new(Recorder::default()).bounded_by(send);
        let large = Bytes::from((0..3 * SEND_PIECE).map(|i| i as u8).collect::<Vec<u8>>());
        out.buf.extend_from_slice(b"HEAD");
        out.put_data(large.clone());
        out.flush().await.unwrap();
        assert_eq!(out.pending(), 0);
        let rec = out.into_writer();
        assert_eq!(rec.segments_calls, 4);
        let mut expected = b"HEAD".to_vec();
        expected.extend_from_slice(&large);
        assert_eq!(rec.all(), expected);
    }

    #[spargio_rt::test]
    async fn small_frames_are_copied_into_one_write() {
        let mut out = Output::new(Recorder::default());
        out.buf.extend_from_slice(b"HEAD ");
        out.put_data(Bytes::from_static(b"abc"));
        out.put_data(&b"def"[..]);
        out.flush().await.unwrap();
        // Nothing queued: flushing again writes nothing.
        out.flush().await.unwrap();
        let rec = out.into_writer();
        assert_eq!(rec.segments_calls, 0);
        assert_eq!(rec.writes, vec![Bytes::from_static(b"HEAD abcdef")]);
    }

    #[spargio_rt::test]
    async fn large_and_small_chunks_keep_their_order_and_framing() {
        let mut out = Output::new(Recorder::default());
        let large = Bytes::from(vec![b'x'; ZERO_COPY_MIN]);
        out.put_chunk(Bytes::from_static(b"hi"));
        out.put_chunk(large.clone());
        out.put_chunk(Bytes::new());
        out.put_chunk(Bytes::from_static(b"bye"));
        out.flush().await.unwrap();
        let rec = out.into_writer();

        let mut expected = b"2\r\nhi\r\n4000\r\n".to_vec();
        expected.extend_from_slice(&large);
        expected.extend_from_slice(b"\r\n3\r\nbye\r\n");
        assert_eq!(rec.all(), expected);
        assert!(rec.writes.iter().any(|w| w.as_ptr() == large.as_ptr()));
    }

    #[spargio_rt::test]
    async fn discarding_from_a_mark_keeps_what_was_queued_before_it() {
        let mut out = Output::new(Recorder::default());
        let earlier = Bytes::from(vec![b'e'; ZERO_COPY_MIN]);
        out.buf.extend_from_slice(b"first ");
        out.put_data(earlier.clone());
        out.buf.extend_from_slice(b" second");
        let mark = out.mark();
        out.buf.extend_from_slice(b"HEAD ");
        out.put_data(Bytes::from(vec![b'x'; ZERO_COPY_MIN]));
        out.buf.extend_from_slice(b"tail");
        assert!(out.discard_from(mark));
        assert_eq!(out.pending(), 6 + ZERO_COPY_MIN + 7);
        out.buf.extend_from_slice(b" after");
        out.flush().await.unwrap();

        let mut expected = b"first ".to_vec();
        expected.extend_from_slice(&earlier);
        expected.extend_from_slice(b" second after");
        assert_eq!(out.into_writer().all(), expected);
    }

    #[spargio_rt::test]
    async fn a_mark_inside_a_queued_segment_cuts_that_segment() {
        let mut out = Output::new(Recorder::default());
        out.put_data(Bytes::from(vec![b'a'; ZERO_COPY_MIN]));
        out.put_data(Bytes::from(vec![b'b'; ZERO_COPY_MIN]));
        let at_end = out.mark();
        let mut whole = out.mark();
        whole.0 -= ZERO_COPY_MIN as u64 + 10;
        assert!(out.discard_from(whole));
        assert_eq!(out.pending(), ZERO_COPY_MIN - 10);
        // A mark past what is queued has nothing after it.
        assert!(out.discard_from(at_end));
        assert_eq!(out.pending(), ZERO_COPY_MIN - 10);
        out.flush().await.unwrap();
        assert_eq!(out.into_writer().all(), vec![b'a'; ZERO_COPY_MIN - 10]);
    }

    #[spargio_rt::test]
    async fn nothing_is_discarded_once_bytes_after_the_mark_went_out() {
        let mut out = Output::new(Recorder::default());
        out.buf.extend_from_slice(b"before ");
        out.flush().await.unwrap();
        let mark = out.mark();
        out.buf.extend_from_slice(b"HEAD ");
        out.flush().await.unwrap();
        out.buf.extend_from_slice(b"body");
        assert!(!out.discard_from(mark));
        assert_eq!(out.pending(), 4);
        // A mark taken after the flush still works.
        let mark = out.mark();
        out.buf.extend_from_slice(b" more");
        assert!(out.discard_from(mark));
        out.flush().await.unwrap();
        assert_eq!(out.into_writer().all(), b"before HEAD body");
    }

    #[spargio_rt::test]
    async fn the_buffer_is_reused_after_segments_go_out() {
        let mut out = Output::new(Recorder::default());
        for round in 0..3u8 {
            out.buf.extend_from_slice(&[round; 100]);
            out.put_data(Bytes::from(vec![round; ZERO_COPY_MIN * 2]));
            out.flush().await.unwrap();
            assert_eq!(out.pending(), 0);
        }
        let rec = out.into_writer();
        assert_eq!(rec.segments_calls, 3);
        let all = rec.all();
        assert_eq!(all.len(), 3 * (100 + ZERO_COPY_MIN * 2));
        let per_round = 100 + ZERO_COPY_MIN * 2;
        for round in 0..3u8 {
            let part = &all[round as usize * per_round..(round as usize + 1) * per_round];
            assert!(part.iter().all(|&b| b == round));
        }
    }
}
