//! What a protocol knows about the connection it serves.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use spargio_rt::net::{PeerCred, SocketStream};
use spargio_rt::sync::CancellationToken;
use spargio_rt::ShardId;

use crate::conn_end::ConnEnd;
use crate::proxy::ProxyHeader;
use crate::send_watch::SendWatch;
use crate::stats::Counters;

/// Facts about an accepted connection; also the target a
/// [`MakeService`](tower_service::Service) is called with to build the
/// connection's service.
///
/// On a Unix socket server ([`ServerBuilder::bind_unix`](crate::ServerBuilder::bind_unix))
/// the addresses are `None` and [`peer_cred`](Self::peer_cred) says which
/// process connected; on TCP it is the other way round.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ConnInfo {
    /// Server-wide connection number, from 0.
    pub id: u64,
    /// The client's address (TCP).
    pub peer_addr: Option<SocketAddr>,
    /// The address the connection was accepted on (TCP).
    pub local_addr: Option<SocketAddr>,
    /// The connecting process, user and group, as the kernel recorded them
    /// when it connected (Unix sockets; `SO_PEERCRED`): what a server
    /// behind a socket file decides access by.
    pub peer_cred: Option<PeerCred>,
    /// The PROXY protocol header the connection started with, when the
    /// server reads one ([`ServerBuilder::proxy_protocol`](crate::ServerBuilder::proxy_protocol)):
    /// who the load balancer says the client is. `peer_addr` stays the
    /// socket's peer (the balancer); see [`client_addr`](Self::client_addr).
    pub proxy: Option<ProxyHeader>,
    /// The shard whose ring serves the connection's I/O.
    pub shard: ShardId,
}

impl ConnInfo {
    /// The facts of connection `id` on `shard` read off `stream`;
    /// `known_local` saves asking a TCP socket for its local address.
    pub(crate) fn of_stream(
        id: u64,
        shard: ShardId,
        stream: &SocketStream,
        known_local: Option<SocketAddr>,
    ) -> ConnInfo {
        let (peer_addr, local_addr, peer_cred) = if stream.is_unix() {
            (None, None, stream.peer_cred().ok())
        } else {
            let local = known_local.or_else(|| stream.local_addr().ok().and_then(|a| a.as_inet()));
            (
                stream.peer_addr().ok().and_then(|a| a.as_inet()),
                local,
                None,
            )
        };
        ConnInfo {
            id,
            peer_addr,
            local_addr,
            peer_cred,
            proxy: None,
            shard,
        }
    }

    /// Facts about connection `id` on `shard`, with no addresses or
    /// credentials (set the public fields as needed): for testing a
    /// make-service or a handler that reads its connection's facts.
    ///
    /// ```
    /// use spargio_rt::ShardId;
    /// use spargio_service::ConnInfo;
    ///
    /// let mut info = ConnInfo::new(7, ShardId(0));
    /// info.peer_addr = Some("127.0.0.1:4000".parse().unwrap());
    /// assert_eq!(info.id, 7);
    /// assert!(info.peer_cred.is_none());
    /// ```
    pub fn new(id: u64, shard: ShardId) -> ConnInfo {
        ConnInfo {
            id,
            peer_addr: None,
            local_addr: None,
            peer_cred: None,
            proxy: None,
            shard,
        }
    }

    /// The client's address: the one a PROXY header names (its source,
    /// for a header that speaks for a client over IP), else the socket's
    /// peer. `None` on a Unix socket without such a header.
    ///
    /// ```
    /// use spargio_rt::ShardId;
    /// use spargio_service::proxy::{parse, Parsed};
    /// use spargio_service::ConnInfo;
    ///
    /// let mut info = ConnInfo::new(1, ShardId(0));
    /// info.peer_addr = Some("10.0.0.5:61000".parse().unwrap()); // the balancer
    /// assert_eq!(info.client_addr(), info.peer_addr);
    /// let Ok(Parsed::Header(header, _)) = parse(b"PROXY TCP4 198.51.100.3 10.0.0.9 5123 80\r\n") else {
    ///     panic!()
    /// };
    /// info.proxy = Some(header);
    /// assert_eq!(info.client_addr(), Some("198.51.100.3:5123".parse().unwrap()));
    /// ```
    pub fn client_addr(&self) -> Option<SocketAddr> {
        self.proxy
            .as_ref()
            .and_then(|p| p.source())
            .or(self.peer_addr)
    }
}

/// A protocol's view of its connection: who it is, whether it should stop,
/// and the idle timeout.
pub struct Connection {
    info: ConnInfo,
    idle_timeout: Option<Duration>,
    send_timeout: Option<Duration>,
    closing: CancellationToken,
    counters: Arc<Counters>,
    /// Set by [`Connection::lingering`] and by this connection's send
    /// watches; the server reads them when the connection ends. `None`:
    /// nobody reads them.
    end: Option<Arc<ConnEnd>>,
}

impl Connection {
    pub(crate) fn new(
        info: ConnInfo,
        idle_timeout: Option<Duration>,
        closing: CancellationToken,
        counters: Arc<Counters>,
    ) -> Connection {
        Connection {
            info,
            idle_timeout,
            send_timeout: None,
            closing,
            counters,
            end: None,
        }
    }

    /// A connection on shard 0 with no addresses, for unit tests.
    #[cfg(test)]
    pub(crate) fn for_test(
        idle_timeout: Option<Duration>,
        closing: &CancellationToken,
        counters: &Arc<Counters>,
    ) -> Connection {
        let info = ConnInfo {
            id: 0,
            peer_addr: None,
            local_addr: None,
            peer_cred: None,
            proxy: None,
            shard: ShardId(0),
        };
        Connection::new(info, idle_timeout, closing.clone(), counters.clone())
    }

    /// The same connection with this send timeout.
    pub(crate) fn with_send_timeout(mut self, limit: Option<Duration>) -> Connection {
        self.send_timeout = limit;
        self
    }

    /// The same connection, telling `end` when the protocol calls
    /// [`lingering`](Self::lingering) and when a send times out.
    pub(crate) fn with_end_flags(mut self, end: Arc<ConnEnd>) -> Connection {
        self.end = Some(end);
        self
    }

    /// Where this connection's end is noted, if the server reads it.
    pub(crate) fn end_flags(&self) -> Option<&Arc<ConnEnd>> {
        self.end.as_ref()
    }

    /// Tells the server that the connection is only lingering before its
    /// close: every reply has been written and the write side shut down,
    /// and what is left is reading and discarding the client's input, so
    /// that closing with input unread does not reset the connection and
    /// discard replies still on their way.
    ///
    /// The shutdown deadline still ends a lingering connection, but does
    /// not count it in [`ShutdownReport::cut`](crate::ShutdownReport::cut):
    /// the server finished all of its work on it. (The close may then send
    /// a reset, if the client went on sending.)
    pub fn lingering(&self) {
        if let Some(end) = &self.end {
            end.set_lingering();
        }
    }

    /// The connection's facts.
    pub fn info(&self) -> &ConnInfo {
        &self.info
    }

    /// Waits for `fut` — the read that brings the next request — while the
    /// connection is idle. Returns `None`, dropping (cancelling) `fut`, when
    /// the idle timeout passes first or the server starts a graceful
    /// shutdown; the protocol then closes the connection.
    ///
    /// ```no_run
    /// # async fn demo(conn: &spargio_service::Connection, stream: &mut spargio_rt::net::SocketStream) {
    /// use spargio_rt::io::AsyncRead;
    /// match conn.idle(stream.read(vec![0u8; 4096])).await {
    ///     None => { /* idle too long or shutting down: close */ }
    ///     Some((res, buf)) => { /* parse the request */ let _ = (res, buf); }
    /// }
    /// # }
    /// ```
    ///
    /// A protocol that reads many requests over the connection keeps a
    /// [`ReadWatch`](crate::ReadWatch) instead, which arms its timer and
    /// shutdown wait once for the connection rather than once per read.
    pub async fn idle<F: Future>(&self, fut: F) -> Option<F::Output> {
        match crate::ReadWatch::new(self).wait(fut, None, true).await {
            crate::Watched::Done(out) => Some(out),
            crate::Watched::TimedOut | crate::Watched::Closing => None,
        }
    }

    /// The longest one write to the peer may take (see [`SendWatch`]);
    /// `None`: writes are not bounded.
    pub fn send_timeout(&self) -> Option<Duration> {
        self.send_timeout
    }

    /// A [`SendWatch`] that bounds this connection's writes by its send
    /// timeout and counts the writes that time out in the server's stats.
    pub fn send_watch(&self) -> SendWatch {
        SendWatch::for_connection(self)
    }

    /// The server's counters.
    pub(crate) fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// The server's shutdown signal for this connection.
    pub(crate) fn closing_token(&self) -> &CancellationToken {
        &self.closing
    }

    /// The idle timeout, if the server has one.
    pub(crate) fn idle_limit(&self) -> Option<Duration> {
        self.idle_timeout
    }

    /// Counts an idle wait that timed out.
    pub(crate) fn count_idle_timeout(&self) {
        self.counters.idle_timeouts.add(1);
    }

    /// Whether the server asked this connection to close once its current
    /// request is answered (graceful shutdown).
    pub fn is_closing(&self) -> bool {
        self.closing.is_cancelled()
    }

    /// Resolves when the server asks the connection to close.
    pub async fn closing(&self) {
        self.closing.cancelled().await
    }

    /// Counts a request the protocol rejected before it reached the service
    /// (malformed, too large).
    pub fn record_bad_request(&self) {
        self.counters.bad_requests.add(1);
    }
}
