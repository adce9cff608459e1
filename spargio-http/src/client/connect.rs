//! Making a connection (TCP or a Unix socket, then TLS for `https`) and the buffered halves
//! the exchange drives.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use spargio_rt::net::{SocketStream, TcpStream, UnixStream};

use super::target::Target;
use super::{ClientError, Inner};
use crate::tls::{TlsError, TlsReader, TlsWriter};
use crate::transport::{SocketReader, SocketWriter, Transport, TransportRead, TransportWrite};

/// How much room a read asks for.
const READ_SIZE: usize = 16 * 1024;

/// The read side of a plain or TLS connection.
pub(crate) enum ConnReader {
    Tcp(SocketReader),
    Tls(TlsReader),
}

/// The write side of a plain or TLS connection.
pub(crate) enum ConnWriter {
    Tcp(SocketWriter),
    Tls(TlsWriter),
}

impl TransportRead for ConnReader {
    async fn read_some(&mut self, buf: BytesMut) -> (io::Result<usize>, BytesMut) {
        match self {
            ConnReader::Tcp(r) => r.read_some(buf).await,
            ConnReader::Tls(r) => r.read_some(buf).await,
        }
    }

    async fn release(&mut self, buf: &mut BytesMut) -> io::Result<()> {
        match self {
            ConnReader::Tcp(r) => r.release(buf).await,
            ConnReader::Tls(r) => r.release(buf).await,
        }
    }

    fn input_waiting(&self) -> Option<bool> {
        match self {
            ConnReader::Tcp(r) => r.input_waiting(),
            ConnReader::Tls(r) => r.input_waiting(),
        }
    }
}

impl TransportWrite for ConnWriter {
    async fn write_all(&mut self, buf: BytesMut) -> (io::Result<()>, BytesMut) {
        match self {
            ConnWriter::Tcp(w) => w.write_all(buf).await,
            ConnWriter::Tls(w) => w.write_all(buf).await,
        }
    }

    async fn write_segments(&mut self, segments: Vec<Bytes>) -> (io::Result<()>, Vec<Bytes>) {
        match self {
            ConnWriter::Tcp(w) => w.write_segments(segments).await,
            ConnWriter::Tls(w) => w.write_segments(segments).await,
        }
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            ConnWriter::Tcp(w) => w.shutdown().await,
            ConnWriter::Tls(w) => w.shutdown().await,
        }
    }
}

/// A connection's read side and the bytes read but not yet used.
pub(crate) type Input = crate::buffered::Input<ConnReader>;

/// A connection's write side and the request bytes queued for it.
pub(crate) type Output = crate::buffered::Output<ConnWriter>;

/// An open connection to one server.
pub(crate) struct Conn {
    pub(crate) input: Input,
    pub(crate) output: Output,
    pub(crate) probe: Probe,
}

impl Conn {
    fn new<T>(
        stream: T,
        probe: Probe,
        wrap: impl FnOnce(T::Reader, T::Writer) -> (ConnReader, ConnWriter),
    ) -> Conn
    where
        T: Transport,
    {
        let (r, w) = stream.split();
        let (reader, writer) = wrap(r, w);
        Conn {
            input: Input::new(reader, READ_SIZE),
            output: Output::new(writer),
            probe,
        }
    }

    /// Whether the connection can carry another request: nothing unread,
    /// nothing unwritten, and the server has not closed its side.
    pub(crate) fn is_clean(&self) -> bool {
        self.input.buf.is_empty() && !self.input.eof && self.output.pending() == 0
    }

    /// Whether an idle connection is still usable, asked when the pool
    /// hands it out: [`Probe::looks_alive`], and over TLS nothing waiting
    /// in the session's own buffers either (bytes that came in the same
    /// socket read as the end of the last response: the probe cannot see
    /// them). Never waits.
    pub(crate) fn looks_usable(&mut self) -> bool {
        if !self.probe.looks_alive() {
            return false;
        }
        match self.input.reader_mut() {
            ConnReader::Tcp(_) => true,
            // After the probe: a read this starts may take bytes off the
            // socket before the probe could see them.
            ConnReader::Tls(reader) => !reader.has_input_now(),
        }
    }
}

/// How to tell whether an idle connection is still usable without reading
/// from it: its socket.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Probe {
    /// The connection's socket; open as long as the `Conn` is.
    pub(crate) fd: RawFd,
}

impl Probe {
    /// Whether an idle connection looks usable: the server has not closed
    /// or reset it, and sent nothing since its last response, which would
    /// otherwise be read as the next request's answer. One `poll(2)` with
    /// a zero timeout, when the pool hands the connection out; it never
    /// waits. Over TLS too, bytes at idle count against the connection:
    /// the server's session tickets come before its first response (it
    /// sends them when the handshake ends, and the client reads them on
    /// the way to that response), so what comes later is an unasked-for
    /// response, a `close_notify` whose FIN is still on the way, or a rare
    /// key update; a new connection is right for all of them.
    pub(crate) fn looks_alive(&self) -> bool {
        let mut pfd = libc::pollfd {
            fd: self.fd,
            events: libc::POLLIN | libc::POLLRDHUP,
            revents: 0,
        };
        // SAFETY: `pfd` is one valid, initialised `pollfd` that lives for
        // the call, and the count says one; a zero timeout never blocks.
        // The fd belongs to the connection this probe was made for, which
        // the caller still holds, so it is open and not reused.
        let n = unsafe { libc::poll(&mut pfd, 1, 0) };
        if n < 0 {
            return false;
        }
        let gone = libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR | libc::POLLNVAL;
        if pfd.revents & gone != 0 {
            return false;
        }
        pfd.revents & libc::POLLIN == 0
    }
}

/// Connects to `target` within the connect timeout and before
/// `request_deadline`.
pub(crate) async fn connect(
    inner: &Inner,
    target: &Target,
    request_deadline: Option<(Instant, Duration)>,
) -> Result<Conn, ClientError> {
    let connect_timeout = inner.config.connect_timeout;
    let connect_deadline = Instant::now()
        .checked_add(connect_timeout)
        .unwrap_or_else(far_future);
    // Whichever limit comes first: the connect timeout or what is left of
    // the request timeout.
    let (deadline, after) = match request_deadline {
        Some((at, after)) if at < connect_deadline => (at, after),
        _ => (connect_deadline, connect_timeout),
    };
    match spargio_rt::time::timeout_at(deadline, establish(inner, target)).await {
        Ok(res) => res,
        Err(_) => Err(ClientError::Timeout {
            host: target.authority.clone(),
            after,
            connecting: true,
        }),
    }
}

/// The socket to `target`: a TCP connection to its host (or to the
/// proxy it goes through), or the client's Unix socket.
async fn open_socket(inner: &Inner, target: &Target) -> io::Result<SocketStream> {
    if let Some(path) = &inner.config.unix_socket {
        return UnixStream::connect(path).await.map(SocketStream::from);
    }
    let tcp = match target.via {
        Some(via) => {
            let proxy = &inner.config.proxies[via.proxy];
            TcpStream::connect((proxy.host(), proxy.port()))
                .await
                // The error is the target's; say it was the proxy that
                // could not be reached.
                .map_err(|e| {
                    let text = format!("the proxy {}:{}: {e}", proxy.host(), proxy.port());
                    io::Error::new(e.kind(), text)
                })?
        }
        None => TcpStream::connect((target.host.as_str(), target.port)).await?,
    };
    // Requests are written whole; no reason to let Nagle hold them back.
    let _ = tcp.set_nodelay(true);
    Ok(tcp.into())
}

async fn establish(inner: &Inner, target: &Target) -> Result<Conn, ClientError> {
    let mut tcp = open_socket(inner, target)
        .await
        .map_err(|source| ClientError::Connect {
            host: target.authority.clone(),
            source,
        })?;
    if let Some(via) = target.via.filter(|via| via.tunnel) {
        // A tunnel to the server; TLS, if any, runs with the server
        // itself inside it.
        inner.config.proxies[via.proxy]
            .open_tunnel(
                &mut tcp,
                target,
                &inner.config.limits,
                inner.config.max_interim_responses,
            )
            .await?;
    }
    if !target.https {
        let probe = Probe {
            fd: tcp.as_raw_fd(),
        };
        return Ok(Conn::new(tcp, probe, |r, w| {
            (ConnReader::Tcp(r), ConnWriter::Tcp(w))
        }));
    }
    let probe = Probe {
        fd: tcp.as_raw_fd(),
    };
    let tls = inner
        .tls_connector()
        .connect(&target.host, tcp)
        .await
        .map_err(|source| match source {
            // The connector's own handshake limit is a timeout like the
            // others (`is_timeout`), not a TLS failure.
            TlsError::HandshakeTimeout(after) => ClientError::Timeout {
                host: target.authority.clone(),
                after,
                connecting: true,
            },
            source => ClientError::Tls {
                host: target.authority.clone(),
                source,
            },
        })?;
    // A connector configured to offer other protocols too (`h2`) must not
    // go on in HTTP/1.1 when the server chose one of those.
    if let Some(chosen) = tls.alpn_protocol() {
        if chosen != b"http/1.1" {
            let msg = format!(
                "the server chose ALPN protocol {:?}; this client speaks only http/1.1",
                String::from_utf8_lossy(chosen)
            );
            return Err(ClientError::Tls {
                host: target.authority.clone(),
                source: TlsError::Handshake(rustls::Error::General(msg)),
            });
        }
    }
    Ok(Conn::new(tls, probe, |r, w| {
        (ConnReader::Tls(r), ConnWriter::Tls(w))
    }))
}

/// An instant so far ahead it never comes (for a timeout that overflows).
pub(crate) fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}
