//! [`TlsInfo`]: what a server's TLS handshake settled, for handlers.

use std::fmt;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::{CipherSuite, ProtocolVersion, ServerConnection};

/// What the TLS handshake of a connection settled: the name the client
/// asked for (SNI), the ALPN protocol, the TLS version and cipher suite,
/// and the client's certificate chain when the server's configuration
/// asked for one. Cheap to clone (shared).
///
/// With [`Http::conn_info(true)`](crate::Http::conn_info), every request
/// on a TLS connection carries it in its extensions, beside the
/// connection's `ConnInfo`: axum's `Extension<TlsInfo>` extractor (or
/// `req.extensions().get::<TlsInfo>()`) finds it. A handler can then tell
/// a client that authenticated with a certificate from one that did not
/// (when client certificates are optional), or refuse a request whose
/// `Host` is not the name the connection was opened for (`421 Misdirected
/// Request`).
///
/// ```
/// use axum::{http::StatusCode, routing::get, Extension, Router};
/// use spargio_http::tls::TlsInfo;
///
/// let app: Router = Router::new().route(
///     "/whoami",
///     get(|Extension(tls): Extension<TlsInfo>| async move {
///         match tls.peer_certificates() {
///             Some(chain) => (StatusCode::OK, format!("{} certificates", chain.len())),
///             None => (StatusCode::UNAUTHORIZED, "no client certificate".into()),
///         }
///     }),
/// );
/// # let _ = app;
/// ```
#[derive(Clone)]
pub struct TlsInfo(Arc<Settled>);

struct Settled {
    server_name: Option<String>,
    alpn_protocol: Option<Vec<u8>>,
    protocol_version: Option<ProtocolVersion>,
    cipher_suite: Option<CipherSuite>,
    peer_certificates: Option<Vec<CertificateDer<'static>>>,
}

impl TlsInfo {
    /// What `conn`'s handshake settled (call it once the handshake is
    /// done: [`ServerTlsStream::connection`](super::ServerTlsStream::connection)).
    pub fn new(conn: &ServerConnection) -> TlsInfo {
        TlsInfo(Arc::new(Settled {
            server_name: conn.server_name().map(str::to_owned),
            alpn_protocol: conn.alpn_protocol().map(<[u8]>::to_vec),
            protocol_version: conn.protocol_version(),
            cipher_suite: conn.negotiated_cipher_suite().map(|s| s.suite()),
            peer_certificates: conn
                .peer_certificates()
                .map(|chain| chain.iter().map(|c| c.clone().into_owned()).collect()),
        }))
    }

    /// The host name the client asked for with SNI, or `None` (clients
    /// connecting to an IP address send none).
    pub fn server_name(&self) -> Option<&str> {
        self.0.server_name.as_deref()
    }

    /// The protocol agreed with ALPN, or `None` if the client offered none.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.0.alpn_protocol.as_deref()
    }

    /// The TLS version in use.
    pub fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.0.protocol_version
    }

    /// The cipher suite in use.
    pub fn cipher_suite(&self) -> Option<CipherSuite> {
        self.0.cipher_suite
    }

    /// The client's certificate chain, end-entity first, which the
    /// configuration's client verifier accepted; `None` when the client
    /// sent none (client authentication off, or optional and not used).
    pub fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.0.peer_certificates.as_deref()
    }
}

impl fmt::Debug for TlsInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsInfo")
            .field("server_name", &self.server_name())
            .field(
                "alpn_protocol",
                &self.alpn_protocol().map(String::from_utf8_lossy),
            )
            .field("protocol_version", &self.protocol_version())
            .field("cipher_suite", &self.cipher_suite())
            .field(
                "peer_certificates",
                &self.peer_certificates().map(<[_]>::len),
            )
            .finish()
    }
}
