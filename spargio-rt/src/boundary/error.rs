//! `BoundaryError`.

use std::fmt;
use std::io;

/// Why a boundary call or receive did not produce a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BoundaryError {
    /// The queue is full ([`try_call`](super::BoundaryClient::try_call) only;
    /// [`call`](super::BoundaryClient::call) waits for room instead).
    Overloaded,
    /// The other side is gone: every server was dropped or
    /// [closed](super::BoundaryServer::close) the channel (for callers), or
    /// every client was dropped and the queue is empty (for servers).
    Closed,
    /// The deadline passed before a reply came (for callers), or before a
    /// request came (for [`recv_timeout`](super::BoundaryServer::recv_timeout)).
    Timeout,
    /// The server dropped the request without answering (for callers), or
    /// the caller stopped waiting (for [`respond`](super::BoundaryRequest::respond)).
    Canceled,
}

impl fmt::Display for BoundaryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BoundaryError::Overloaded => "boundary queue is full",
            BoundaryError::Closed => "boundary channel is closed",
            BoundaryError::Timeout => "boundary call timed out",
            BoundaryError::Canceled => "boundary call was canceled by the other side",
        })
    }
}

impl std::error::Error for BoundaryError {}

impl From<BoundaryError> for io::Error {
    fn from(e: BoundaryError) -> Self {
        let kind = match e {
            BoundaryError::Overloaded => io::ErrorKind::WouldBlock,
            BoundaryError::Closed => io::ErrorKind::BrokenPipe,
            BoundaryError::Timeout => io::ErrorKind::TimedOut,
            BoundaryError::Canceled => io::ErrorKind::ConnectionAborted,
        };
        io::Error::new(kind, e)
    }
}
