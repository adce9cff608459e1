//! A WebSocket's limits.

use std::time::Duration;

/// Limits of one WebSocket connection.
///
/// ```
/// use spargio_http::ws::WebSocketConfig;
/// let config = WebSocketConfig::default()
///     .max_message_size(1 << 20)
///     .max_frame_size(256 << 10);
/// assert_eq!(config.max_message_size, 1 << 20);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WebSocketConfig {
    /// The longest message received, fragments joined (default 64 MiB);
    /// a longer one closes the connection with code 1009.
    pub max_message_size: usize,
    /// The longest single frame received (default 16 MiB); a longer one
    /// closes the connection with code 1009. A frame is buffered whole
    /// before it is decoded, so this bounds the memory one read takes.
    pub max_frame_size: usize,
    /// Bytes queued unwritten before a send waits for the connection
    /// (default 128 KiB). A single message is queued whole, however large.
    pub write_buffer_limit: usize,
    /// How long the end of a conversation may take once it has begun
    /// (default 10 s): from the first time the socket is seen closing (a
    /// close sent or received, a broken rule, the connection ended) until
    /// the peer's close has come and everything queued is written. A peer
    /// that never answers a close, or stops reading while a close's answer
    /// waits to go out, then ends it anyway: `recv` gives `None` and a
    /// waiting `close` fails with `TimedOut`.
    pub close_timeout: Duration,
}

impl Default for WebSocketConfig {
    fn default() -> WebSocketConfig {
        WebSocketConfig {
            max_message_size: 64 << 20,
            max_frame_size: 16 << 20,
            write_buffer_limit: 128 << 10,
            close_timeout: Duration::from_secs(10),
        }
    }
}

impl WebSocketConfig {
    /// Sets [`max_message_size`](Self::max_message_size).
    pub fn max_message_size(mut self, bytes: usize) -> WebSocketConfig {
        self.max_message_size = bytes;
        self
    }

    /// Sets [`max_frame_size`](Self::max_frame_size).
    pub fn max_frame_size(mut self, bytes: usize) -> WebSocketConfig {
        self.max_frame_size = bytes;
        self
    }

    /// Sets [`write_buffer_limit`](Self::write_buffer_limit).
    pub fn write_buffer_limit(mut self, bytes: usize) -> WebSocketConfig {
        self.write_buffer_limit = bytes;
        self
    }

    /// Sets [`close_timeout`](Self::close_timeout) (`Duration::MAX`:
    /// wait as long as the peer takes).
    pub fn close_timeout(mut self, timeout: Duration) -> WebSocketConfig {
        self.close_timeout = timeout;
        self
    }
}
