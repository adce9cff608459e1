//! [`TlsAcceptor`]: the server side of the handshake.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use spargio_rt::io::compat::Compat;
use spargio_rt::net::SocketStream;

use super::pem::{certs_from_pem, private_key_from_pem};
use super::{provider, ServerTlsStream, TlsError, ALPN_HTTP_11, DEFAULT_HANDSHAKE_TIMEOUT};

/// Turns accepted connections (TCP or Unix socket) into TLS ones.
///
/// Cheap to clone (the configuration is shared), so every accept loop or
/// shard can hold its own.
///
/// ```
/// use spargio_http::tls::TlsAcceptor;
/// use std::time::Duration;
///
/// let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
/// let acceptor = TlsAcceptor::from_pem(
///     cert.cert.pem().as_bytes(),
///     cert.key_pair.serialize_pem().as_bytes(),
/// )
/// .unwrap()
/// .handshake_timeout(Duration::from_secs(5));
/// assert_eq!(acceptor.config().alpn_protocols, [b"http/1.1".to_vec()]);
/// ```
#[derive(Clone)]
pub struct TlsAcceptor {
    inner: futures_rustls::TlsAcceptor,
    config: Arc<ServerConfig>,
    handshake_timeout: Duration,
}

impl TlsAcceptor {
    /// An acceptor for `config`, which picks the certificates (a single
    /// one, or per SNI name with your own
    /// [`ResolvesServerCert`](rustls::server::ResolvesServerCert)), client
    /// authentication and protocol versions.
    ///
    /// If `config` lists no ALPN protocols, `http/1.1` is set, so clients
    /// that offer ALPN learn that this server speaks HTTP/1.1; a list you
    /// set is kept as it is. With any list set, rustls refuses clients
    /// whose ALPN offer shares no protocol with it (`no_application_protocol`).
    /// rustls picks the first protocol of this list that the client offers;
    /// [`Http`](crate::Http) closes a connection that agreed on anything but
    /// `http/1.1`, so list other protocols only for servers that speak them.
    ///
    /// Build the configuration with the ring provider, as this crate does:
    ///
    /// ```
    /// use std::sync::Arc;
    /// use rustls::crypto::ring;
    /// use rustls::server::ResolvesServerCertUsingSni;
    /// use rustls::sign::CertifiedKey;
    /// use spargio_http::tls::{certs_from_pem, private_key_from_pem, TlsAcceptor};
    ///
    /// let provider = Arc::new(ring::default_provider());
    /// // One certificate per name; the client's SNI picks it.
    /// let mut by_name = ResolvesServerCertUsingSni::new();
    /// for name in ["a.example", "b.example"] {
    ///     let c = rcgen::generate_simple_self_signed(vec![name.into()]).unwrap();
    ///     let chain = certs_from_pem(c.cert.pem().as_bytes()).unwrap();
    ///     let key = private_key_from_pem(c.key_pair.serialize_pem().as_bytes()).unwrap();
    ///     by_name.add(name, CertifiedKey::from_der(chain, key, &provider).unwrap()).unwrap();
    /// }
    /// let config = rustls::ServerConfig::builder_with_provider(provider)
    ///     .with_safe_default_protocol_versions()
    ///     .unwrap()
    ///     .with_no_client_auth()
    ///     .with_cert_resolver(Arc::new(by_name));
    /// let acceptor = TlsAcceptor::new(Arc::new(config));
    /// assert_eq!(acceptor.config().alpn_protocols, [b"http/1.1".to_vec()]);
    /// ```
    ///
    /// The stream's [`server_name`](ServerTlsStream::server_name) then
    /// tells which name the client asked for.
    ///
    /// TLS 1.3 early data (0-RTT) is turned off (`max_early_data_size` is
    /// set to 0): the stream reads only data sent after the handshake, so
    /// a request sent as early data would be accepted by the handshake and
    /// then never seen, and early data can be replayed by an attacker.
    /// Resumption itself (session tickets, if the configuration has a
    /// ticketer) works as set.
    pub fn new(mut config: Arc<ServerConfig>) -> TlsAcceptor {
        if config.alpn_protocols.is_empty() {
            Arc::make_mut(&mut config).alpn_protocols = vec![ALPN_HTTP_11.to_vec()];
        }
        if config.max_early_data_size != 0 {
            Arc::make_mut(&mut config).max_early_data_size = 0;
        }
        TlsAcceptor {
            inner: futures_rustls::TlsAcceptor::from(Arc::clone(&config)),
            config,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }

    /// An acceptor serving one certificate chain (PEM, end-entity first)
    /// with its private key (PEM: PKCS#8, PKCS#1 or SEC1), TLS 1.2 and 1.3,
    /// no client authentication, ALPN `http/1.1`.
    ///
    /// # Errors
    /// [`TlsError::InvalidPem`], [`TlsError::NoCertificate`] or
    /// [`TlsError::NoPrivateKey`] for the PEM inputs, and
    /// [`TlsError::Config`] if the key does not match the certificate or
    /// is of a kind rustls cannot sign with.
    pub fn from_pem(cert_chain_pem: &[u8], key_pem: &[u8]) -> Result<TlsAcceptor, TlsError> {
        let chain = certs_from_pem(cert_chain_pem)?;
        let key = private_key_from_pem(key_pem)?;
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(TlsError::Config)?;
        Ok(TlsAcceptor::new(Arc::new(config)))
    }

    /// Sets how long [`accept`](Self::accept) waits for a handshake to
    /// finish (10 seconds by default), so clients that connect and stall
    /// cannot hold connections open.
    #[must_use = "this returns the acceptor with the new timeout"]
    pub fn handshake_timeout(mut self, timeout: Duration) -> TlsAcceptor {
        self.handshake_timeout = timeout;
        self
    }

    /// The configuration handshakes run with (with the ALPN default
    /// applied).
    pub fn config(&self) -> &Arc<ServerConfig> {
        &self.config
    }

    /// Runs the server side of the handshake on `tcp`: a
    /// [`TcpStream`](spargio_rt::net::TcpStream), or any
    /// [`SocketStream`] (TLS over a Unix socket works the same).
    ///
    /// # Errors
    /// [`TlsError::Handshake`] if rustls rejects the client (an alert is
    /// sent to it first if the socket takes it at once),
    /// [`TlsError::Io`] if the connection fails or the
    /// client leaves, and [`TlsError::HandshakeTimeout`] if the handshake
    /// takes longer than the [timeout](Self::handshake_timeout). The
    /// connection is closed in every case.
    pub async fn accept(&self, tcp: impl Into<SocketStream>) -> Result<ServerTlsStream, TlsError> {
        let handshake = self.inner.accept(Compat::new(tcp.into())).into_fallible();
        super::handshake::run(self.handshake_timeout, handshake, ServerTlsStream::new).await
    }
}

impl fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field(
                "alpn_protocols",
                &super::AlpnList(&self.config.alpn_protocols),
            )
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}
