//! What a connection's protocol and its writes tell the server about how
//! the connection is ending, read when it ends to count it in the
//! shutdown report.

use std::sync::atomic::{AtomicBool, Ordering};

/// One connection's end flags, shared by its [`Connection`](crate::Connection),
/// its [`SendWatch`](crate::SendWatch)es and the task that counts its end.
#[derive(Debug, Default)]
pub(crate) struct ConnEnd {
    /// Every reply is written; the connection only drains input before
    /// its close.
    lingering: AtomicBool,
    /// A write timed out: the peer took no data for the send timeout, and
    /// the protocol closes the connection with replies undelivered.
    send_timed_out: AtomicBool,
}

impl ConnEnd {
    pub(crate) fn set_lingering(&self) {
        self.lingering.store(true, Ordering::Relaxed);
    }

    pub(crate) fn is_lingering(&self) -> bool {
        self.lingering.load(Ordering::Relaxed)
    }

    pub(crate) fn set_send_timed_out(&self) {
        self.send_timed_out.store(true, Ordering::Relaxed);
    }

    pub(crate) fn send_timed_out(&self) -> bool {
        self.send_timed_out.load(Ordering::Relaxed)
    }
}
