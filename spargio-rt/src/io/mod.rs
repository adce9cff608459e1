//! Owned-buffer I/O: buffers, stream traits and their helpers.
//!
//! Every op takes its buffer by value and returns it with the result, as a
//! [`BufResult`]. While the op is in flight the kernel owns the buffer; if
//! the future is dropped, the runtime cancels the op and keeps the buffer
//! (and the fd) alive until the kernel's completion arrives, then frees it.
//! A cancelled read may still have consumed bytes from the stream: they are
//! lost with the buffer, as with any cancelled read.
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

mod buf;
mod buf_reader;
pub(crate) mod buf_ring;
mod buf_writer;
pub mod compat;
mod copy;
mod ext;
pub(crate) mod fd;
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
pub(crate) use quiet::is_quiet;
pub use quiet::{flush_and_read, quiet_writes};
pub use split::{split, unsplit, ReadHalf, Split, WriteHalf};
pub use traits::{AsyncRead, AsyncWrite};
