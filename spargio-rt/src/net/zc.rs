//! Zero-copy send.

use io_uring::{opcode, squeue::Entry};

use crate::driver::{Cqe, Op, OpData};
use crate::io::fd::SharedFd;
use crate::io::{BufResult, IoBuf};

struct SendZc<B> {
    /// Dropped at the send's result: the kernel is done with the socket
    /// then, only the buffer waits for the notification.
    fd: Option<SharedFd>,
    buf: B,
}

impl<B: IoBuf> OpData for SendZc<B> {
    fn entry(&mut self) -> Entry {
        let len = self.buf.bytes_init().min(u32::MAX as usize) as u32;
        let fd = self.fd.as_ref().expect("fd held until the send's result");
        opcode::SendZc::new(fd.uring(), self.buf.stable_ptr(), len)
            .flags(libc::MSG_NOSIGNAL)
            .build()
    }

    fn partly_done(&mut self, _cqe: &Cqe) {
        self.fd = None;
    }
}

/// One zero-copy send; the buffer is held until the notification CQE,
/// which for TCP comes once the peer has acknowledged the data. The op
/// lives until then, even if the future is dropped; its clone of `fd`
/// only until the send's result (so a socket dropped meanwhile closes then:
/// the kernel goes on sending what it queued, as after any close).
pub(crate) async fn send_zc<B: IoBuf>(fd: &SharedFd, buf: B) -> BufResult<usize, B> {
    let (res, data) = Op::new(SendZc {
        fd: Some(fd.clone()),
        buf,
    })
    .await;
    (res.and_then(|c| c.result()).map(|n| n as usize), data.buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::cell::{Completion, OpCell};

    const F_MORE: u32 = 1 << 1;
    const F_NOTIF: u32 = 1 << 3;

    fn socket_fd() -> SharedFd {
        let (a, _b) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        SharedFd::new(a.into())
    }

    #[test]
    fn the_socket_is_let_go_at_the_result_and_the_buffer_at_the_notification() {
        let fd = socket_fd();
        let cell = OpCell::new(SendZc {
            fd: Some(fd.clone()),
            buf: vec![7u8; 64],
        });
        let fd = fd.into_owned().expect_err("the op holds a clone");

        assert!(!cell.complete(Cqe {
            res: 64,
            flags: F_MORE
        }));
        let owned = fd
            .into_owned()
            .expect("the op let go of the socket at the send's result");
        drop(owned);

        assert!(cell.complete(Cqe {
            res: 0,
            flags: F_NOTIF
        }));
        let data = cell.take();
        assert_eq!(data.buf, vec![7u8; 64]);
        assert!(data.fd.is_none());
    }

    #[test]
    fn a_send_that_ends_in_one_cqe_keeps_its_fd_to_the_end() {
        let fd = socket_fd();
        let cell = OpCell::new(SendZc {
            fd: Some(fd.clone()),
            buf: vec![1u8; 8],
        });
        assert!(cell.complete(Cqe {
            res: -libc::ECANCELED,
            flags: 0
        }));
        let data = cell.take();
        assert!(data.fd.is_some());
        drop(data);
        assert!(fd.into_owned().is_ok());
    }
}
