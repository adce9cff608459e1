//! The owned-buffer read/write impls every connected stream socket shares.

/// Implements `AsyncRead` and `AsyncWrite` for a type with a `fd:
/// SharedFd` field, with `recv`/`send` (no `SIGPIPE`) and `sendmsg` for
/// vectored writes. `shutdown` sends a FIN (`SHUT_WR`).
macro_rules! stream_io {
    ($t:ty) => {
        impl $crate::io::AsyncRead for $t {
            fn read<B: $crate::io::IoBufMut>(
                &mut self,
                buf: B,
            ) -> impl std::future::Future<Output = $crate::io::BufResult<usize, B>> {
                $crate::io::ops::recv(&self.fd, buf)
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
