//! Taking a PROXY header off a connection: exactly its bytes, so the
//! protocol behind it starts at the connection's own first byte.

use std::io;
use std::os::fd::AsRawFd;
use std::time::Duration;

use spargio_rt::io::{AsyncReadExt, IoBuf};
use spargio_rt::net::SocketStream;

use super::header::ProxyHeader;
use super::parse::{parse, signed, Parsed, ProxyError};

/// How long a connection may take to send its whole header by default.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How much the first look at a connection asks for: a version 1 line,
/// or a version 2 header with IPv6 addresses and some TLVs.
const FIRST_PEEK: usize = 256;

/// The longest pause between looks while an optional header's first
/// bytes could still be one (see [`ProxyProtocol::optional`]).
const MAX_AMBIGUOUS_PAUSE: Duration = Duration::from_millis(64);

/// Whether and how a server reads a PROXY protocol header (version 1 or
/// 2, told apart by their signatures) at the start of each connection
/// ([`ServerBuilder::proxy_protocol`](crate::ServerBuilder::proxy_protocol)).
///
/// ```
/// use spargio_service::proxy::ProxyProtocol;
/// use std::time::Duration;
///
/// let p = ProxyProtocol::required().header_timeout(Duration::from_secs(3));
/// assert!(p.is_required());
/// assert_eq!(p.timeout(), Duration::from_secs(3));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProxyProtocol {
    required: bool,
    timeout: Duration,
}

impl ProxyProtocol {
    /// Every connection must start with a header; one that does not, or
    /// whose header is malformed, is closed before the protocol sees it.
    /// What to use when only the proxy can reach the server: a header is
    /// the proxy's word for who the client is, and a client that can
    /// connect directly could write one naming anybody.
    pub fn required() -> ProxyProtocol {
        ProxyProtocol {
            required: true,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// A connection may start with a header, or not (clients connecting
    /// directly beside those the proxy passes on, while moving behind
    /// one). Any client can then name any address: trust
    /// [`ConnInfo::client_addr`](crate::ConnInfo::client_addr) no more than
    /// the socket's peer.
    ///
    /// A connection whose first bytes could begin either a header or the
    /// protocol's traffic (any start of `PROXY ` or of the version 2
    /// signature, such as `P` or `\r\n`, with nothing after them yet) is
    /// looked at again after short pauses (1 ms doubling to 64 ms) until
    /// it tells or the peer closes, for at most the header timeout: the
    /// bytes cannot be taken before that is known. A direct client that
    /// sends nothing at all (a protocol where the server speaks first) is
    /// closed at the header timeout: optional headers suit protocols whose
    /// clients speak first, such as HTTP.
    pub fn optional() -> ProxyProtocol {
        ProxyProtocol {
            required: false,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// How long a connection may take, from when its task starts, to send
    /// its whole header (default 10 s); a connection that takes longer is
    /// closed.
    pub fn header_timeout(mut self, limit: Duration) -> ProxyProtocol {
        self.timeout = limit;
        self
    }

    /// Whether every connection must start with a header.
    pub fn is_required(&self) -> bool {
        self.required
    }

    /// The header timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// Reads the PROXY header at the start of `stream` and takes exactly its
/// bytes off the socket: what follows is left for whoever reads next.
/// `Ok(None)`: no header, and `proxy` does not require one (nothing was
/// taken).
///
/// What a [`Server`](crate::Server) with
/// [`proxy_protocol`](crate::ServerBuilder::proxy_protocol) runs on each
/// connection; call it yourself for connections you accept (before
/// [`ServeConnection::serve`](crate::ServeConnection::serve)).
///
/// # Errors
///
/// `InvalidData` with a [`ProxyError`] inside for a malformed header, or a
/// missing one that `proxy` requires; `UnexpectedEof` when the peer closes
/// before the header is whole (in optional mode, a peer that closes after
/// bytes that only could have begun a header gets `Ok(None)` instead:
/// they are left for the protocol, with the end behind them); `TimedOut`
/// after the header timeout; and the socket's own errors.
///
/// ```
/// use spargio_rt::io::{AsyncReadExt, AsyncWriteExt};
/// use spargio_rt::net::{SocketStream, UnixStream};
/// use spargio_service::proxy::{read_header, ProxyProtocol};
///
/// spargio_rt::run(|_handle| async move {
///     let (mut proxy, server) = UnixStream::pair().unwrap();
///     let (res, _) = proxy
///         .write_all(b"PROXY TCP4 192.0.2.7 198.51.100.1 51234 443\r\nhello".to_vec())
///         .await;
///     res.unwrap();
///     let mut server = SocketStream::from(server);
///     let header = read_header(&mut server, ProxyProtocol::required()).await.unwrap();
///     assert_eq!(header.unwrap().source(), Some("192.0.2.7:51234".parse().unwrap()));
///     let (res, rest) = server.read_exact(Vec::with_capacity(5)).await;
///     res.unwrap();
///     assert_eq!(rest, b"hello");
/// })
/// .unwrap();
/// ```
pub async fn read_header(
    stream: &mut SocketStream,
    proxy: ProxyProtocol,
) -> io::Result<Option<ProxyHeader>> {
    match spargio_rt::time::timeout(proxy.timeout, take_header(stream, proxy.required)).await {
        Ok(out) => out,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "no whole PROXY header within the header timeout",
        )),
    }
}

/// Looks at what the peer sent (a peek), and takes bytes only once they
/// are known to be the header's: all of a header that is whole, or all
/// that was seen of one that is not yet (then the next look waits for
/// new bytes instead of seeing the same ones again).
async fn take_header(stream: &mut SocketStream, required: bool) -> io::Result<Option<ProxyHeader>> {
    let mut taken: Vec<u8> = Vec::new();
    let mut want = FIRST_PEEK;
    let mut pause = Duration::from_millis(1);
    loop {
        let (res, seen) = stream.peek(Vec::with_capacity(want)).await;
        let n = res?;
        if n == 0 {
            if taken.is_empty() && !required {
                // Closed before sending a byte: the protocol sees the end.
                return Ok(None);
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before its PROXY header was whole",
            ));
        }
        let before = taken.len();
        taken.extend_from_slice(&seen[..n]);
        match parse(&taken).map_err(invalid)? {
            Parsed::Header(header, len) => {
                take(stream, len - before).await?;
                return Ok(Some(header));
            }
            Parsed::NotProxy if required || before > 0 => return Err(invalid(ProxyError::Missing)),
            Parsed::NotProxy => return Ok(None),
            Parsed::Incomplete(need) if required || signed(&taken) => {
                // Every byte seen belongs to the header (or to a bad one).
                take(stream, n).await?;
                want = FIRST_PEEK.max(need.saturating_sub(taken.len()));
            }
            Parsed::Incomplete(_) => {
                // Optional, and these bytes could still be the protocol's:
                // leave them, look again in a while. (Nothing was taken:
                // bytes are only taken once they are known to be a
                // header's.) A peer that has closed will send no more:
                // they are the protocol's, with the end behind them.
                taken.truncate(before);
                if peer_closed(stream) {
                    return Ok(None);
                }
                spargio_rt::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_AMBIGUOUS_PAUSE);
            }
        }
    }
}

/// Whether the peer has shut down its sending side (its end of stream is
/// queued behind what is unread): `POLLRDHUP`, asked without waiting.
fn peer_closed(stream: &SocketStream) -> bool {
    let mut pfd = libc::pollfd {
        fd: stream.as_raw_fd(),
        events: libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: one valid `pollfd` and a count of 1; a timeout of 0 makes
    // `poll` return at once, having written only `revents`.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    n > 0 && pfd.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0
}

/// Takes `n` bytes (already seen by a peek) off the socket.
async fn take(stream: &mut SocketStream, n: usize) -> io::Result<()> {
    // A read fills its buffer's capacity, which for a `Vec` may exceed
    // what was asked: the slice bounds it to the header's `n` bytes, so
    // not one byte of the application's stream is taken.
    let (res, _) = stream.read_exact(Vec::with_capacity(n).slice(..n)).await;
    res
}

fn invalid(e: ProxyError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}
