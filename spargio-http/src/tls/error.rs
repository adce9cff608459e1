//! [`TlsError`]: what can go wrong setting TLS up or shaking hands.

use std::fmt;
use std::io;
use std::time::Duration;

/// Why a TLS acceptor or connector could not be built, or why a handshake
/// failed.
///
/// It converts into an [`io::Error`] (`?` works in functions returning
/// `io::Result`): a handshake refused by rustls becomes
/// [`InvalidData`](io::ErrorKind::InvalidData), a timeout
/// [`TimedOut`](io::ErrorKind::TimedOut), a transport failure keeps its own
/// error, and a configuration mistake becomes
/// [`InvalidInput`](io::ErrorKind::InvalidInput).
///
/// ```
/// use spargio_http::tls::{TlsAcceptor, TlsError};
///
/// let err = TlsAcceptor::from_pem(b"no pem here", b"").unwrap_err();
/// assert!(matches!(err, TlsError::NoCertificate));
/// let io: std::io::Error = err.into();
/// assert_eq!(io.kind(), std::io::ErrorKind::InvalidInput);
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsError {
    /// The TLS handshake failed: rustls rejected the peer (an untrusted or
    /// mismatched certificate, no common protocol version, cipher suite
    /// or ALPN protocol, a malformed message) or the peer sent an alert.
    Handshake(rustls::Error),
    /// The connection failed during the handshake: reset, or closed by the
    /// peer before the handshake was done
    /// ([`UnexpectedEof`](io::ErrorKind::UnexpectedEof)).
    Io(io::Error),
    /// The handshake did not finish within the configured time (carried
    /// here); the connection was dropped.
    HandshakeTimeout(Duration),
    /// A PEM input was malformed (a broken section or bad base64).
    InvalidPem(rustls_pki_types::pem::Error),
    /// A PEM input held no certificate.
    NoCertificate,
    /// A PEM input held no private key (PKCS#8, PKCS#1 or SEC1).
    NoPrivateKey,
    /// The name given to [`TlsConnector::connect`](super::TlsConnector::connect)
    /// is neither a DNS name nor an IP address.
    InvalidServerName(String),
    /// rustls refused the configuration: a private key that does not
    /// match the certificate or that it cannot use, or an unusable root
    /// certificate.
    Config(rustls::Error),
}

impl TlsError {
    /// Sorts a handshake failure reported by futures-rustls: rustls's own
    /// errors travel inside an `io::Error`, everything else is transport.
    pub(crate) fn from_handshake(e: io::Error) -> TlsError {
        match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            Some(tls) => TlsError::Handshake(tls.clone()),
            None => TlsError::Io(e),
        }
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Handshake(e) => write!(f, "TLS handshake failed: {e}"),
            TlsError::Io(e) => write!(f, "connection failed during the TLS handshake: {e}"),
            TlsError::HandshakeTimeout(d) => {
                write!(f, "TLS handshake did not finish within {d:?}")
            }
            TlsError::InvalidPem(e) => write!(f, "invalid PEM: {e}"),
            TlsError::NoCertificate => f.write_str("no certificate found in the PEM input"),
            TlsError::NoPrivateKey => f.write_str("no private key found in the PEM input"),
            TlsError::InvalidServerName(name) => write!(f, "invalid TLS server name {name:?}"),
            TlsError::Config(e) => write!(f, "invalid TLS configuration: {e}"),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsError::Handshake(e) | TlsError::Config(e) => Some(e),
            TlsError::Io(e) => Some(e),
            TlsError::InvalidPem(e) => Some(e),
            TlsError::HandshakeTimeout(_)
            | TlsError::NoCertificate
            | TlsError::NoPrivateKey
            | TlsError::InvalidServerName(_) => None,
        }
    }
}

impl From<TlsError> for io::Error {
    fn from(e: TlsError) -> io::Error {
        let e = match e {
            TlsError::Io(inner) => return inner,
            other => other,
        };
        let kind = match &e {
            TlsError::Io(_) | TlsError::Handshake(_) => io::ErrorKind::InvalidData,
            TlsError::HandshakeTimeout(_) => io::ErrorKind::TimedOut,
            TlsError::InvalidPem(_)
            | TlsError::NoCertificate
            | TlsError::NoPrivateKey
            | TlsError::InvalidServerName(_)
            | TlsError::Config(_) => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, e)
    }
}
