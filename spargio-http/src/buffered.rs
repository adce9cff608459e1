//! A connection's two buffered sides, input (read buffer) and output
//! (write buffer), as the server's connections and the client's use them.

use std::io;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use spargio_service::{SendWatch, SEND_PIECE};

use crate::h1;

use crate::transport::{TransportRead, TransportWrite};

/// A read buffer whose allocation grew past this (a large request head,
/// or input that arrived faster than it was used) is dropped once it is
/// empty, for a fresh one of the read size; see [`Input::fill`]. The bound
/// is the larger of this and [`SHRINK_READS`] reads, so that a large read
/// size does not replace its buffer after every request.
const SHRINK_ABOVE: usize = 64 * 1024;

/// The shrink bound in reads: a buffer of a few reads is normal use, not
/// worth giving back.
const SHRINK_READS: usize = 4;

/// Body frames shorter than the read size divided by this are copied out
/// of the read buffer instead of split off it; see [`Input::take_frame`].
const OWN_FRAME_DIVISOR: usize = 4;

/// The read side and the bytes read but not yet used.
pub(crate) struct Input<R> {
    reader: R,
    /// Bytes read and not yet parsed. A read cancelled mid-flight leaves
    /// what was here before it; what it received itself is not lost, but
    /// kept below the transport for the next read (spargio-rt's stream
    /// reads carry it over, and so does the TLS adapter's read in flight).
    pub buf: BytesMut,
    /// The peer closed its side.
    pub eof: bool,
    read_size: usize,
    /// `buf`'s allocation grew past [`shrink_above`](Self::shrink_above)
    /// since it was last replaced. Its capacity cannot show it: after a
    /// split it is the capacity of what is left, and `reserve` takes back
    /// the whole allocation once the split-off parts are dropped.
    oversized: bool,
    /// The allocation size above which an empty `buf` is replaced.
    shrink_above: usize,
}

impl<R> Input<R> {
    /// Takes the first `n` buffered bytes (at most `buf.len()`) as a body
    /// frame.
    ///
    /// A frame split off `buf` shares its allocation for as long as
    /// anyone holds the frame: `buf` can no longer reuse it, and the next
    /// read allocates a fresh one. For a large frame that is the cheaper
    /// way; a small one is copied instead (see [`own_frame`](Self::own_frame)),
    /// or a service that keeps many small frames (a body collected from a
    /// client that sends it a byte at a time) would keep a whole read
    /// buffer alive for each.
    pub(crate) fn take_frame(&mut self, n: usize) -> Bytes {
        if n < self.own_below() {
            let frame = Bytes::copy_from_slice(&self.buf[..n]);
            self.buf.advance(n);
            frame
        } else {
            self.buf.split_to(n).freeze()
        }
    }

    /// `frame`, split off `buf` (by a chunked decoder), as a frame of its
    /// own if it is small: the copy lets go of `buf`'s allocation, as
    /// [`take_frame`](Self::take_frame) does.
    pub(crate) fn own_frame(&self, frame: Bytes) -> Bytes {
        if frame.len() < self.own_below() {
            Bytes::copy_from_slice(&frame)
        } else {
            frame
        }
    }

    /// Frames shorter than this are copied out of `buf`.
    fn own_below(&self) -> usize {
        self.read_size / OWN_FRAME_DIVISOR
    }
}

impl<R: TransportRead> Input<R> {
    /// An input over `reader` that makes room for at least `read_size`
    /// bytes before each read.
    pub(crate) fn new(reader: R, read_size: usize) -> Input<R> {
        Input {
            reader,
            buf: BytesMut::new(),
            eof: false,
            read_size,
            oversized: false,
            shrink_above: SHRINK_ABOVE.max(read_size.saturating_mul(SHRINK_READS)),
        }
    }

    /// The read side itself, for a look at what it holds.
    pub(crate) fn reader_mut(&mut self) -> &mut R {
        &mut self.reader
    }

    /// Whether input is unread: bytes in `buf`, or waiting below the
    /// reader ([`TransportRead::input_waiting`]). `None` when `buf` is
    /// empty and the reader cannot tell.
    pub(crate) fn unread(&self) -> Option<bool> {
        if self.buf.is_empty() {
            self.reader.input_waiting()
        } else {
            Some(true)
        }
    }

    /// Reads once, appending to `buf`; returns how many bytes came (0 at
    /// end of stream, which also sets `eof`). Cancelling it leaves `buf`
    /// as it was: the read goes into the room after the bytes already
    /// here, which are split off for its time (see [`Rejoin`]; no copy,
    /// and nothing at all for an empty `buf`).
    ///
    /// Room for a read is reserved first; that reuses `buf`'s allocation
    /// when nothing else holds it (the parts split off it were dropped),
    /// so a connection's small requests need no allocation. An empty `buf`
    /// whose allocation grew past the shrink bound is replaced by a fresh
    /// one instead: an idle connection does not keep the memory of its
    /// largest request for its whole life.
    pub(crate) async fn fill(&mut self) -> io::Result<usize> {
        if self.oversized && self.buf.is_empty() {
            self.buf = BytesMut::with_capacity(self.read_size);
            self.oversized = false;
        }
        self.buf.reserve(self.read_size);
        // The allocation only grows in a `reserve`. Right after one that
        // grew it, the capacity shows all of it (a new allocation) or at
        // least half (one grown in place at least doubles, and the part
        // before `buf` is at most the old size): an allocation of more
        // than twice the bound is always caught here.
        if self.buf.capacity() > self.shrink_above {
            self.oversized = true;
        }
        let front = if self.buf.is_empty() {
            BytesMut::new()
        } else {
            self.buf.split()
        };
        let room = std::mem::take(&mut self.buf);
        let rejoin = Rejoin {
            buf: &mut self.buf,
            front,
        };
        let (res, read) = self.reader.read_some(room).await;
        *rejoin.buf = read;
        drop(rejoin);
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

/// The bytes an input held before a read, kept out of the read while it
/// is in flight: when it ends (or is cancelled, and `buf` is empty), they
/// go back in front of what `buf` holds then. Split from the same
/// allocation as the room the read fills, they rejoin it without a copy.
struct Rejoin<'a> {
    buf: &'a mut BytesMut,
    front: BytesMut,
}

impl Drop for Rejoin<'_> {
    fn drop(&mut self) {
        let read = std::mem::take(self.buf);
        let mut front = std::mem::take(&mut self.front);
        front.unsplit(read);
        *self.buf = front;
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
    /// The connection ends with a reset unless `shutdown` gets everything
    /// out first (see [`arm_reset`](Self::arm_reset)).
    reset_armed: bool,
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
            reset_armed: false,
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
        if self.reset_armed {
            // Everything is out: the close is a clean one after all.
            self.reset_armed = false;
            self.writer.reset_on_close(false);
        }
        self.send.bound(self.writer.shutdown()).await?
    }

    /// Has the connection end with a reset (see
    /// [`TransportWrite::reset_on_close`]) unless a later
    /// [`shutdown`](Self::shutdown) gets everything queued out first: for
    /// a close-delimited body, which nothing but a clean close may end.
    pub(crate) fn arm_reset(&mut self) {
        self.reset_armed = true;
        self.writer.reset_on_close(true);
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

    /// Writes out what is queued (best effort), then ends the write side
    /// without a TLS `close_notify` (see [`TransportWrite::cut`]).
    pub(crate) async fn cut(&mut self) {
        let _ = self.flush().await;
        self.writer.cut();
    }

    /// The write side, for an upgrade.
    pub(crate) fn into_writer(self) -> W {
        self.writer
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::io;

    use bytes::{Buf, Bytes, BytesMut};

    use spargio_service::{SendWatch, SEND_PIECE};

    use super::{Input, Output, SHRINK_ABOVE, ZERO_COPY_MIN};
    use crate::transport::{TransportRead, TransportWrite};

    /// A read side that hands out what it was given, as much as fits each
    /// read.
    #[derive(Default)]
    struct Feeder {
        data: Vec<u8>,
    }

    impl TransportRead for Feeder {
        async fn read_some(&mut self, mut buf: BytesMut) -> (io::Result<usize>, BytesMut) {
            let n = (buf.capacity() - buf.len()).min(self.data.len());
            buf.extend_from_slice(&self.data[..n]);
            self.data.drain(..n);
            (Ok(n), buf)
        }
    }

    #[spargio_rt::test]
    async fn a_large_input_does_not_keep_its_allocation_once_used() {
        let mut input = Input::new(Feeder::default(), 8 * 1024);
        // A large head (or other input) that arrives over many reads
        // before any of it is used.
        input.reader.data = vec![b'h'; 200 * 1024];
        while !input.reader.data.is_empty() {
            input.fill().await.unwrap();
        }
        assert_eq!(input.buf.len(), 200 * 1024);
        drop(input.buf.split().freeze());
        // The next request is small.
        input.reader.data = b"GET / HTTP/1.1\r\n\r\n".to_vec();
        input.fill().await.unwrap();
        assert_eq!(&input.buf[..], b"GET / HTTP/1.1\r\n\r\n");
        assert!(
            !input.buf.try_reclaim(SHRINK_ABOVE),
            "the large allocation is still the buffer's"
        );
    }

    #[spargio_rt::test]
    async fn small_inputs_reuse_one_allocation() {
        // Also with a read size whose buffer is over the default bound.
        for read_size in [8 * 1024, 2 * SHRINK_ABOVE] {
            let mut input = Input::new(Feeder::default(), read_size);
            input.reader.data = b"first".to_vec();
            input.fill().await.unwrap();
            let first = input.buf.as_ptr();
            for _ in 0..3 {
                drop(input.buf.split().freeze());
                input.reader.data = b"next".to_vec();
                input.fill().await.unwrap();
                assert_eq!(&input.buf[..], b"next");
                assert_eq!(input.buf.as_ptr(), first, "read size {read_size}");
            }
        }
    }

    #[spargio_rt::test]
    async fn small_frames_are_copied_so_the_buffer_is_reused_while_they_are_held() {
        let mut input = Input::new(Feeder::default(), 8 * 1024);
        input.reader.data = b"x".to_vec();
        input.fill().await.unwrap();
        let first = input.buf.as_ptr();
        let mut held = Vec::new();
        for i in 0..100 {
            held.push(input.take_frame(1));
            input.reader.data = vec![b'x' + (i % 2)];
            input.fill().await.unwrap();
            // Held frames are not the buffer's: it takes its allocation
            // back for the next read instead of leaving it to them.
            assert_eq!(input.buf.as_ptr(), first, "read {i}");
        }
        assert!(held.iter().all(|f| f.len() == 1 && f.is_unique()));
    }

    #[spargio_rt::test]
    async fn a_small_frame_split_off_by_a_decoder_lets_go_of_the_buffer() {
        let mut input = Input::new(Feeder::default(), 8 * 1024);
        input.reader.data = b"hello".to_vec();
        input.fill().await.unwrap();
        let split = input.buf.split_to(3).freeze();
        let frame = input.own_frame(split);
        assert_eq!(&frame[..], b"hel");
        // More room than the buffer has after its end: only taking back
        // the front, which the frame was split from, makes it.
        let more = input.buf.capacity() - input.buf.len() + 1;
        assert!(input.buf.try_reclaim(more), "the buffer is its own");
    }

    #[spargio_rt::test]
    async fn a_large_frame_is_split_off_the_buffer_without_a_copy() {
        let read_size = 8 * 1024;
        let mut input = Input::new(Feeder::default(), read_size);
        input.reader.data = vec![b'x'; read_size];
        input.fill().await.unwrap();
        let at = input.buf.as_ptr();
        let frame = input.take_frame(read_size / 2);
        assert_eq!(frame.as_ptr(), at);
        let split = input.buf.split_to(read_size / 4).freeze();
        let frame = input.own_frame(split);
        assert_eq!(frame.as_ptr(), at.wrapping_add(read_size / 2));
    }

    /// A read side whose reads never end.
    struct Stalled;

    impl TransportRead for Stalled {
        async fn read_some(&mut self, buf: BytesMut) -> (io::Result<usize>, BytesMut) {
            std::future::pending::<()>().await;
            (Ok(0), buf)
        }
    }

    #[test]
    fn a_cancelled_read_keeps_the_bytes_read_before_it() {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let mut input = Input::new(Stalled, 1024);
        input.buf.extend_from_slice(b"GET / HTTP/1.1\r\n");
        {
            let mut fill = std::pin::pin!(input.fill());
            assert!(fill.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(&input.buf[..], b"GET / HTTP/1.1\r\n");
    }

    #[spargio_rt::test]
    async fn a_read_appends_to_the_bytes_already_there_in_place() {
        let mut input = Input::new(Feeder::default(), 1024);
        // Room for both reads, so that reserving room for the second one
        // (which comes before the split) moves nothing either.
        input.buf = BytesMut::with_capacity(4 * 1024);
        input.reader.data = b"GET / HT".to_vec();
        input.fill().await.unwrap();
        let first = input.buf.as_ptr();
        input.reader.data = b"TP/1.1\r\n".to_vec();
        input.fill().await.unwrap();
        assert_eq!(&input.buf[..], b"GET / HTTP/1.1\r\n");
        // The bytes read before stay where they were: the read went into
        // the room right after them, and rejoining them copied nothing.
        assert_eq!(input.buf.as_ptr(), first, "the buffer was moved");
        // One buffer again, nothing else holding its allocation: once
        // used, its front can be taken back.
        let cap = input.buf.capacity();
        input.buf.advance(input.buf.len());
        assert!(input.buf.try_reclaim(cap));
    }

    #[spargio_rt::test]
    async fn buffered_bytes_are_unread_input() {
        let mut input = Input::new(Feeder::default(), 1024);
        // The feeder cannot tell what waits below it.
        assert_eq!(input.unread(), None);
        input.reader.data = b"GET".to_vec();
        input.fill().await.unwrap();
        assert_eq!(input.unread(), Some(true));
    }

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
