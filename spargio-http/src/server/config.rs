//! The knobs of an HTTP connection, with their defaults.

use std::time::Duration;

use crate::h1::Limits;

/// Settings every connection of an [`Http`](super::Http) protocol shares.
#[derive(Clone, Debug)]
pub(crate) struct HttpConfig {
    /// Request head limits (header count, head size, URI length, chunk
    /// extensions, trailers).
    pub limits: Limits,
    /// The most a request head may take to arrive, counted from accept or
    /// from the end of the previous response (slowloris defence). Also the
    /// most a response head waits, while the client waits for
    /// `100 Continue`, for a response body holding the unread request body
    /// to decide whether it reads it (see `respond_probed`).
    pub header_read_timeout: Duration,
    /// The largest request body accepted (413 above it); `None`: no limit.
    pub max_body: Option<u64>,
    /// Keep connections open between requests.
    pub keep_alive: bool,
    /// Unread request body bytes the server reads and discards after the
    /// response so the connection can be reused; more than this closes it.
    pub drain_limit: u64,
    /// How long draining an unread body (and lingering before a close
    /// with input unread) may take.
    pub drain_timeout: Duration,
    /// Response bytes buffered before they are written out; a slow reader
    /// holds the response body back once this is full.
    pub write_buffer: usize,
    /// The first read buffer of a connection.
    pub read_buffer: usize,
    /// Plain (TCP or Unix) reads through a multishot receive into the
    /// shard's buffer ring (see `ring_recv`), instead of one receive per
    /// read.
    pub multishot_reads: bool,
    /// Put the connection's `ConnInfo` in every request's extensions.
    pub conn_info: bool,
}

impl Default for HttpConfig {
    fn default() -> HttpConfig {
        HttpConfig {
            limits: Limits::default(),
            header_read_timeout: Duration::from_secs(30),
            max_body: None,
            keep_alive: true,
            drain_limit: 64 * 1024,
            drain_timeout: Duration::from_secs(2),
            write_buffer: 64 * 1024,
            read_buffer: 8 * 1024,
            multishot_reads: false,
            conn_info: false,
        }
    }
}
