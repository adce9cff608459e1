//! A connection's two buffered sides, input (read buffer) and output
//! (write buffer), as the server's connections and the client's use them.

use std::io;

use bytes::BytesMut;

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

/// The write side and the bytes queued for it.
pub(crate) struct Output<W> {
    writer: W,
    /// Encoded response bytes not yet written.
    pub buf: BytesMut,
}

impl<W: TransportWrite> Output<W> {
    pub(crate) fn new(writer: W) -> Output<W> {
        Output {
            writer,
            buf: BytesMut::with_capacity(4096),
        }
    }

    /// Writes out everything queued.
    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let buf = std::mem::take(&mut self.buf);
        let (res, mut buf) = self.writer.write_all(buf).await;
        buf.clear();
        self.buf = buf;
        res
    }

    /// Flushes, then closes the write side.
    pub(crate) async fn shutdown(&mut self) -> io::Result<()> {
        self.flush().await?;
        self.writer.shutdown().await
    }

    /// The write side, for an upgrade.
    pub(crate) fn into_writer(self) -> W {
        self.writer
    }
}
