//! The owned-buffer read/write impls every connected stream socket shares.

/// Implements `AsyncRead` and `AsyncWrite` for a type with a `fd:
/// SharedFd` field, with `recv`/`send` (no `SIGPIPE`) and `sendmsg` for
/// vectored writes. `shutdown` sends a FIN (`SHUT_WR`). Also gives the
/// type an inherent `peek`.
macro_rules! stream_io {
    ($t:ty) => {
        impl $t {
            /// Receives into `buf` what the peer has sent, as a read would,
            /// but leaves the bytes queued on the socket (`MSG_PEEK`): the
            /// next read or peek gets them again. Like a read it waits
            /// while nothing is queued, and `Ok(0)` means the peer closed
            /// its side with nothing left to read.
            ///
            /// A peek that sees the same bytes as the last one does not
            /// wait for more: to wait for bytes beyond those, read (take)
            /// the ones seen first. What the protocol parsers in this
            /// workspace use it for is a header of unknown length that must
            /// be taken exactly, without a byte of what follows (the PROXY
            /// protocol's).
            ///
            /// Shown on a Unix socket pair; it is the same on every stream
            /// socket:
            ///
            /// ```
            /// use spargio_rt::io::{AsyncReadExt, AsyncWriteExt};
            /// use spargio_rt::net::UnixStream;
            /// # spargio_rt::run(|_handle| async move {
            /// let (mut a, mut b) = UnixStream::pair().unwrap();
            /// let (res, _) = a.write_all(b"hello".to_vec()).await;
            /// res.unwrap();
            /// let (res, seen) = b.peek(Vec::with_capacity(16)).await;
            /// assert_eq!(res.unwrap(), 5);
            /// assert_eq!(seen, b"hello");
            /// let (res, read) = b.read_exact(Vec::with_capacity(5)).await;
            /// res.unwrap();
            /// assert_eq!(read, b"hello");
            /// # }).unwrap();
            /// ```
            pub async fn peek<B: $crate::io::IoBufMut>(
                &self,
                buf: B,
            ) -> $crate::io::BufResult<usize, B> {
                $crate::io::ops::recv_peek_stream(&self.fd, buf).await
            }
        }

        impl $crate::io::AsyncRead for $t {
            fn read<B: $crate::io::IoBufMut>(
                &mut self,
                buf: B,
            ) -> impl std::future::Future<Output = $crate::io::BufResult<usize, B>> {
                $crate::io::ops::recv_stream(&self.fd, buf)
            }
        }

        impl $crate::io::AsyncWrite for $t {
            fn write<B: $crate::io::IoBuf>(
                &mut self,
                buf: B,
            ) -> impl std::future::Future<Output = $crate::io::BufResult<usize, B>> {
                $crate::io::ops::send(&self.fd, buf)
            }

            fn write_vectored<B: $crate::io::IoBuf>(
                &mut self,
                bufs: Vec<B>,
            ) -> impl std::future::Future<Output = $crate::io::BufResult<usize, Vec<B>>> {
                $crate::io::ops::write_vectored(&self.fd, bufs, 0, true)
            }

            fn flush(&mut self) -> impl std::future::Future<Output = std::io::Result<()>> {
                std::future::ready(Ok(()))
            }

            fn shutdown(&mut self) -> impl std::future::Future<Output = std::io::Result<()>> {
                $crate::io::ops::shutdown(&self.fd, libc::SHUT_WR)
            }
        }

        impl std::os::fd::AsRawFd for $t {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                self.fd.raw()
            }
        }
    };
}

pub(crate) use stream_io;
