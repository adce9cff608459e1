//! Zero-copy send.

use io_uring::{opcode, squeue::Entry};

use crate::driver::{Op, OpData};
use crate::io::fd::SharedFd;
use crate::io::{BufResult, IoBuf};

struct SendZc<B> {
    fd: SharedFd,
    buf: B,
}

impl<B: IoBuf> OpData for SendZc<B> {
    fn entry(&mut self) -> Entry {
        let len = self.buf.bytes_init().min(u32::MAX as usize) as u32;
        opcode::SendZc::new(self.fd.uring(), self.buf.stable_ptr(), len)
            .flags(libc::MSG_NOSIGNAL)
            .build()
    }
}

/// One zero-copy send; the buffer is held until the notification CQE,
/// which for TCP comes once the peer has acknowledged the data. The op
/// (and with it a clone of `fd`, so the socket stays open) lives until
/// then, even if the future is dropped.
pub(crate) async fn send_zc<B: IoBuf>(fd: &SharedFd, buf: B) -> BufResult<usize, B> {
    let (res, data) = Op::new(SendZc {
        fd: fd.clone(),
        buf,
    })
    .await;
    (res.and_then(|c| c.result()).map(|n| n as usize), data.buf)
}
