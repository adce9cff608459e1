//! [`TlsConnector`]: the client side of the handshake.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::ServerName;
use spargio_rt::io::compat::Compat;
use spargio_rt::net::SocketStream;

use super::{provider, ClientTlsStream, TlsError, ALPN_HTTP_11, DEFAULT_HANDSHAKE_TIMEOUT};

/// Turns outgoing connections (TCP or Unix socket) into TLS ones, verifying the server's
/// certificate.
///
/// Cheap to clone (the configuration is shared).
///
/// ```no_run
/// use spargio_http::tls::TlsConnector;
/// use spargio_rt::net::TcpStream;
///
/// spargio_rt::run(|_| async {
///     let connector = TlsConnector::webpki_roots();
///     let tcp = TcpStream::connect("example.com:443").await?;
///     let tls = connector.connect("example.com", tcp).await?;
///     assert_eq!(tls.alpn_protocol(), Some(&b"http/1.1"[..]));
///     Ok::<_, std::io::Error>(())
/// })
/// .unwrap()
/// .unwrap();
/// ```
#[derive(Clone)]
pub struct TlsConnector {
    inner: futures_rustls::TlsConnector,
    config: Arc<ClientConfig>,
    handshake_timeout: Duration,
}

impl TlsConnector {
    /// A connector trusting the Mozilla root certificates (from the
    /// `webpki-roots` crate, compiled in: the system's store is not read),
    /// offering ALPN `http/1.1`.
    pub fn webpki_roots() -> TlsConnector {
        let roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        TlsConnector::with_root_store(roots)
    }

    /// A connector trusting only `roots` (see
    /// [`root_store_from_pem`](super::root_store_from_pem)), with TLS 1.2
    /// and 1.3, no client certificate, ALPN `http/1.1`.
    pub fn with_root_store(roots: RootCertStore) -> TlsConnector {
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            // The ring provider supports every default protocol version.
            .expect("ring supports rustls's default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![ALPN_HTTP_11.to_vec()];
        TlsConnector::from_config(Arc::new(config))
    }

    /// A connector for `config`, used as it is (its ALPN list included:
    /// set `alpn_protocols` to `[b"http/1.1"]` to announce HTTP/1.1).
    /// For client certificates, custom verification or resumption
    /// settings; build it with `rustls::crypto::ring::default_provider()`.
    pub fn from_config(config: Arc<ClientConfig>) -> TlsConnector {
        TlsConnector {
            inner: futures_rustls::TlsConnector::from(Arc::clone(&config)),
            config,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }

    /// Sets how long [`connect`](Self::connect) waits for the handshake to
    /// finish (10 seconds by default).
    #[must_use = "this returns the connector with the new timeout"]
    pub fn handshake_timeout(mut self, timeout: Duration) -> TlsConnector {
        self.handshake_timeout = timeout;
        self
    }

    /// The configuration handshakes run with.
    pub fn config(&self) -> &Arc<ClientConfig> {
        &self.config
    }

    /// Runs the client side of the handshake on `tcp`, sending
    /// `server_name` as SNI (for DNS names) and checking the server's
    /// certificate against it. `server_name` is a DNS name or an IP
    /// address (`"127.0.0.1"`, `"::1"`).
    ///
    /// # Errors
    /// [`TlsError::InvalidServerName`] for a bad name (before any byte is
    /// sent), [`TlsError::Handshake`] if the certificate is not trusted or
    /// not valid for the name, or the server refuses us,
    /// [`TlsError::Io`] if the connection fails, and
    /// [`TlsError::HandshakeTimeout`]. The connection is closed in every
    /// case.
    pub async fn connect(
        &self,
        server_name: &str,
        tcp: impl Into<SocketStream>,
    ) -> Result<ClientTlsStream, TlsError> {
        let name = ServerName::try_from(server_name)
            .map_err(|_| TlsError::InvalidServerName(server_name.to_owned()))?
            .to_owned();
        let handshake = self
            .inner
            .connect(name, Compat::new(tcp.into()))
            .into_fallible();
        super::handshake::run(self.handshake_timeout, handshake, ClientTlsStream::new).await
    }
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector")
            .field(
                "alpn_protocols",
                &super::AlpnList(&self.config.alpn_protocols),
            )
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}
