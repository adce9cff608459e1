//! Copying a whole stream into another.

use std::io;

use super::ext::AsyncWriteExt;
use super::quiet::loud;
use super::traits::{AsyncRead, AsyncWrite};

/// The size of [`copy`]'s buffer.
const COPY_BUF: usize = 64 * 1024;

/// Copies everything `reader` yields into `writer` until end of stream,
/// and returns how many bytes went. `writer` is not flushed or shut down.
///
/// One 64 KiB buffer is allocated up front and reused for every read; each
/// read's bytes are written in full (continuing after partial writes)
/// before the next read (even when polled inside
/// [`quiet_writes`](super::quiet_writes)). On error, bytes already read may or may not have
/// reached `writer`. Not cancel-safe: dropping the future loses the bytes
/// read but not yet written.
///
/// ```
/// use spargio_rt::io::{self, AsyncReadExt, AsyncWriteExt};
/// use spargio_rt::net::UnixStream;
/// spargio_rt::run(|_| async {
///     let (mut a, mut b) = UnixStream::pair().unwrap();
///     let (mut c, mut d) = UnixStream::pair().unwrap();
///     let (r, _) = a.write_all(b"some bytes".to_vec()).await;
///     r.unwrap();
///     drop(a); // end of stream for `b`
///     assert_eq!(io::copy(&mut b, &mut c).await.unwrap(), 10);
///     drop(c);
///     let (r, out) = d.read_to_end(Vec::new()).await;
///     r.unwrap();
///     assert_eq!(out, b"some bytes");
/// })
/// .unwrap();
/// ```
pub async fn copy<R, W>(reader: &mut R, writer: &mut W) -> io::Result<u64>
where
    R: AsyncRead + ?Sized,
    W: AsyncWrite + ?Sized,
{
    let mut buf = Vec::with_capacity(COPY_BUF);
    let mut total = 0u64;
    loop {
        buf.clear();
        let (res, b) = reader.read(buf).await;
        buf = b;
        match res {
            Ok(0) => return Ok(total),
            Ok(n) => {
                // Loud: another read follows, so a caller polling the copy
                // inside `quiet_writes` must still be woken to go on.
                let (res, b) = loud(writer.write_all(buf)).await;
                buf = b;
                res?;
                total += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
