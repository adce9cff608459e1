//! [`ClientError`]: why a request got no response.

use std::fmt;
use std::io;
use std::time::Duration;

use spargio_service::BoxError;

use crate::tls::TlsError;

/// Why [`Client::request`](super::Client::request) produced no response.
///
/// Every variant but [`InvalidUri`](ClientError::InvalidUri) names the
/// server (`host:port`) it was talking to, and its `Display` says what
/// failed there. Errors that happen once the response head has arrived
/// (a connection cut in the middle of the body, a malformed chunk) are
/// reported by the response [`Body`](crate::Body) as a
/// [`BodyError`](crate::BodyError) instead.
///
/// ```
/// use spargio_http::{Client, ClientError};
///
/// spargio_rt::run(|_| async {
///     let err = Client::new().get("ftp://example.com/").await.unwrap_err();
///     assert!(matches!(err, ClientError::InvalidUri { .. }));
///     assert_eq!(
///         err.to_string(),
///         "invalid URI \"ftp://example.com/\": the scheme must be http or https"
///     );
/// })
/// .unwrap();
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// The URI is not an absolute `http://` or `https://` URI with a host
    /// (a bracketed one an IPv6 address) and, if it has a port, one from 1
    /// to 65535.
    InvalidUri {
        /// The URI as given, without its userinfo (a password there would
        /// end up in logs).
        uri: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The request head could not be written: a header value holds CR, LF
    /// or NUL (possible only through the `unchecked` constructors of
    /// `http::HeaderValue`). Nothing was sent.
    InvalidRequest {
        /// The server the request was for.
        host: String,
        /// What is wrong with the request.
        reason: String,
    },
    /// The connection could not be made: the name did not resolve, or the
    /// server refused or did not answer (or, with
    /// [`unix_socket`](super::ClientBuilder::unix_socket), the socket file
    /// is missing, nobody listens on it, or it may not be opened).
    Connect {
        /// The server the connection was for.
        host: String,
        /// The error from resolving or connecting.
        source: io::Error,
    },
    /// The TLS handshake of an `https` connection failed (for instance the
    /// certificate is not trusted or not valid for the host).
    Tls {
        /// The server the connection was for.
        host: String,
        /// The error from the handshake.
        source: TlsError,
    },
    /// A time limit ran out: the connect timeout while connecting (TCP and
    /// TLS handshake), or the request timeout before the response head
    /// arrived. (The response timeout has its own variant,
    /// [`ResponseTimeout`](ClientError::ResponseTimeout).)
    Timeout {
        /// The server the request was for.
        host: String,
        /// The limit that ran out.
        after: Duration,
        /// `true` if the connection was still being made, `false` if the
        /// request was waiting for its response.
        connecting: bool,
    },
    /// The response timeout
    /// ([`ClientBuilder::response_timeout`](super::ClientBuilder::response_timeout))
    /// ran out: the whole request was written, and no final response head
    /// came within that time. The connection was closed.
    ResponseTimeout {
        /// The server the request was for.
        host: String,
        /// The limit that ran out.
        after: Duration,
    },
    /// Writing the request or reading the response head failed.
    Io {
        /// The server the request was for.
        host: String,
        /// The error from the connection.
        source: io::Error,
    },
    /// The response head is not valid HTTP/1.x (or is larger than the
    /// client accepts).
    Parse {
        /// The server the response came from.
        host: String,
        /// What is wrong with the response.
        reason: &'static str,
    },
    /// The server closed the connection before a complete response head
    /// arrived.
    Closed {
        /// The server the request was for.
        host: String,
    },
    /// The [proxy](super::ClientBuilder::proxy) refused to open a tunnel
    /// to the server (an `https` request, or a plain one that upgrades the
    /// connection, goes through a `CONNECT` tunnel):
    /// it answered `CONNECT` with this status, `407 Proxy Authentication
    /// Required` when its credentials are missing or wrong. Nothing was
    /// sent to the server.
    ProxyRefused {
        /// The server the tunnel was for.
        host: String,
        /// The proxy's answer.
        status: http::StatusCode,
    },
    /// The tunnel through the [proxy](super::ClientBuilder::proxy) could
    /// not be opened: the proxy closed the connection or failed on it
    /// while asked for the tunnel, or its answer to `CONNECT` was not valid
    /// HTTP/1.x (a proxy that cannot be connected to at all is
    /// [`Connect`](ClientError::Connect)).
    Proxy {
        /// The server the tunnel was for.
        host: String,
        /// What went wrong.
        reason: String,
    },
    /// The request body failed: its `poll_frame` returned an error, or it
    /// produced a different number of bytes than the `Content-Length` it
    /// was sent with (its exact size hint, or else the request's own
    /// `Content-Length` header). The connection was closed.
    ///
    /// Only before the response head: once the head is in, the response
    /// is what the request gets (a server may answer before it has read
    /// the whole body, a `413` say), so a body that fails later ends the
    /// request's write side and the connection is not reused, but no
    /// error reaches the caller.
    Body {
        /// The server the request was for.
        host: String,
        /// The body's error.
        source: BoxError,
    },
}

impl ClientError {
    /// The server (`host:port`) the request was for; `None` for
    /// [`InvalidUri`](ClientError::InvalidUri).
    ///
    /// ```
    /// use spargio_http::Client;
    ///
    /// spargio_rt::run(|_| async {
    ///     // Nothing listens on port 1 of the loopback address.
    ///     let err = Client::new().get("http://127.0.0.1:1/").await.unwrap_err();
    ///     assert_eq!(err.host(), Some("127.0.0.1:1"));
    /// })
    /// .unwrap();
    /// ```
    pub fn host(&self) -> Option<&str> {
        match self {
            ClientError::InvalidUri { .. } => None,
            ClientError::InvalidRequest { host, .. }
            | ClientError::Connect { host, .. }
            | ClientError::Tls { host, .. }
            | ClientError::Timeout { host, .. }
            | ClientError::ResponseTimeout { host, .. }
            | ClientError::Io { host, .. }
            | ClientError::Parse { host, .. }
            | ClientError::Closed { host }
            | ClientError::ProxyRefused { host, .. }
            | ClientError::Proxy { host, .. }
            | ClientError::Body { host, .. } => Some(host),
        }
    }

    /// Whether a time limit ran out: a [`Timeout`](ClientError::Timeout)
    /// or a [`ResponseTimeout`](ClientError::ResponseTimeout).
    ///
    /// ```
    /// use spargio_http::Client;
    ///
    /// spargio_rt::run(|_| async {
    ///     let err = Client::new().get("http://127.0.0.1:1/").await.unwrap_err();
    ///     assert!(!err.is_timeout());
    /// })
    /// .unwrap();
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            ClientError::Timeout { .. } | ClientError::ResponseTimeout { .. }
        )
    }

    /// Whether the connection could not be made: a
    /// [`Connect`](ClientError::Connect), a [`Tls`](ClientError::Tls), a
    /// [`Timeout`](ClientError::Timeout) while connecting, or a tunnel the
    /// proxy refused or failed to open ([`ProxyRefused`](ClientError::ProxyRefused),
    /// [`Proxy`](ClientError::Proxy)). The request
    /// was not sent on the connection that failed. It reached no server
    /// unless it was being retried: a request sent on a pooled connection
    /// the server had closed, without any answer, is retried once on a new
    /// connection (only with an empty body and an idempotent method; see
    /// [`Client::request`](super::Client::request)), and if that connection
    /// cannot be made this is its error.
    ///
    /// ```
    /// use spargio_http::Client;
    ///
    /// spargio_rt::run(|_| async {
    ///     let err = Client::new().get("http://127.0.0.1:1/").await.unwrap_err();
    ///     assert!(err.is_connect());
    /// })
    /// .unwrap();
    /// ```
    pub fn is_connect(&self) -> bool {
        matches!(
            self,
            ClientError::Connect { .. }
                | ClientError::Tls { .. }
                | ClientError::ProxyRefused { .. }
                | ClientError::Proxy { .. }
                | ClientError::Timeout {
                    connecting: true,
                    ..
                }
        )
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::InvalidUri { uri, reason } => write!(f, "invalid URI {uri:?}: {reason}"),
            ClientError::InvalidRequest { host, reason } => {
                write!(f, "invalid request for {host}: {reason}")
            }
            ClientError::Connect { host, source } => {
                write!(f, "could not connect to {host}: {source}")
            }
            ClientError::Tls { host, source } => write!(f, "TLS with {host} failed: {source}"),
            ClientError::Timeout {
                host,
                after,
                connecting: true,
            } => write!(f, "connecting to {host} timed out after {after:?}"),
            ClientError::Timeout {
                host,
                after,
                connecting: false,
            } => write!(f, "no response from {host} within {after:?}"),
            ClientError::ResponseTimeout { host, after } => write!(
                f,
                "no response from {host} within {after:?} after the request was sent (response timeout)"
            ),
            ClientError::Io { host, source } => {
                write!(f, "connection to {host} failed: {source}")
            }
            ClientError::Parse { host, reason } => {
                write!(f, "invalid response from {host}: {reason}")
            }
            ClientError::Closed { host } => {
                write!(f, "{host} closed the connection before responding")
            }
            ClientError::ProxyRefused { host, status } => {
                write!(f, "the proxy refused a tunnel to {host}: {status}")
            }
            ClientError::Proxy { host, reason } => {
                write!(f, "tunnel to {host} through the proxy failed: {reason}")
            }
            ClientError::Body { host, source } => {
                write!(f, "request body for {host} failed: {source}")
            }
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Connect { source, .. } | ClientError::Io { source, .. } => Some(source),
            ClientError::Tls { source, .. } => Some(source),
            ClientError::Body { source, .. } => Some(&**source),
            ClientError::InvalidUri { .. }
            | ClientError::InvalidRequest { .. }
            | ClientError::Timeout { .. }
            | ClientError::ResponseTimeout { .. }
            | ClientError::Parse { .. }
            | ClientError::ProxyRefused { .. }
            | ClientError::Proxy { .. }
            | ClientError::Closed { .. } => None,
        }
    }
}
