//! Owned-buffer I/O: buffers, stream traits and their helpers.
//!
//! Every op takes its buffer by value and returns it with the result, as a
//! [`BufResult`]. While the op is in flight the kernel owns the buffer; if
//! the future is dropped, the runtime cancels the op and keeps the buffer
//! (and the fd) alive until the kernel's completion arrives, then frees it.
//! A cancelled read of a byte stream (a TCP or Unix stream socket, a
//! child's pipe) may still have taken bytes off the stream: they are kept
//! on the stream and handed out by its next read (or peek), so dropping a
//! read's future — a `timeout`, a lost `select` — never loses data; a
//! datagram socket keeps a cancelled receive's datagram, and a listener a
//! cancelled `accept`'s connection, the same way. (A cancelled read of a
//! file at its current position gives up what it took.) That holds for
//! one `read`; loops of
//! several reads into one owned buffer ([`AsyncReadExt::read_exact`],
//! [`AsyncReadExt::read_to_end`], [`copy`]) are **not cancel-safe**: the
//! bytes earlier reads put in the buffer go with the dropped future. For
//! framing that survives a `timeout` or `select`, read through a
//! [`BufReader`], whose buffer stays with the reader.
//!
//! - [`IoBuf`] / [`IoBufMut`]: `Vec<u8>`, `Box<[u8]>`, `bytes::Bytes` /
//!   `BytesMut`, `&'static [u8]`, and [`Slice`]s of them.
//! - [`AsyncRead`] / [`AsyncWrite`], with [`AsyncReadExt`]
//!   (`read_exact`, `read_to_end`) and [`AsyncWriteExt`] (`write_all`,
//!   `write_vectored_all`), which continue correctly after partial reads
//!   and writes.
//! - [`split`] a stream into halves that read and write concurrently from
//!   different tasks ([`Split`]), [`copy`] one stream into another,
//!   [`BufReader`] (lines, delimiters, `fill_buf`) and [`BufWriter`].
//! - [`compat`]: `futures_io` traits (`AsyncRead`, `AsyncWrite`,
//!   `AsyncBufRead`) over sockets, for libraries such as futures-rustls.
//!
//! `read`, `write`, `flush` and `shutdown` are methods of [`AsyncRead`] /
//! [`AsyncWrite`], the loops of the `Ext` traits; `use
//! spargio_rt::io::prelude::*` brings all four traits into scope at once:
//!
//! ```
//! use spargio_rt::io::prelude::*;
//! use spargio_rt::net::UnixStream;
//!
//! spargio_rt::run(|_| async {
//!     let (mut a, mut b) = UnixStream::pair().unwrap();
//!     let (res, _) = a.write_all(b"ping".to_vec()).await;
//!     res.unwrap();
//!     a.flush().await.unwrap();
//!     a.shutdown().await.unwrap();
//!     let (res, got) = b.read_to_end(Vec::new()).await;
//!     res.unwrap();
//!     assert_eq!(got, b"ping");
//! })
//! .unwrap();
//! ```

mod buf;
mod buf_reader;
pub(crate) mod buf_ring;
mod buf_writer;
mod carry;
pub(crate) mod carry_whole;
pub mod compat;
mod copy;
mod ext;
pub(crate) mod fd;
mod flush_beside;
pub(crate) mod ops;
mod quiet;
mod split;
mod traits;

pub use buf::{BufResult, IoBuf, IoBufMut, Slice};
pub use buf_reader::{BufReader, Lines};
pub use buf_ring::{BufRing, RingBuf};
pub use buf_writer::BufWriter;
pub use copy::copy;
pub use ext::{AsyncReadExt, AsyncWriteExt};
pub use flush_beside::{flush_beside, FlushBeside};
pub(crate) use quiet::is_quiet;
pub use quiet::{flush_and_read, loud, quiet_writes, FlushAndRead};
pub use split::{split, unsplit, ReadHalf, Split, WriteHalf};
pub use traits::{AsyncRead, AsyncWrite};

/// The four I/O traits, for a glob import: `use spargio_rt::io::prelude::*`
/// gives every stream its `read`/`write`/`flush`/`shutdown` and the
/// `read_exact`/`read_to_end`/`write_all`/`write_vectored_all` loops.
pub mod prelude {
    pub use super::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
}
