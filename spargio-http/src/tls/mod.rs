//! TLS for HTTP connections, with rustls (ring provider) through
//! futures-rustls over spargio-rt's [`Compat`](spargio_rt::io::compat::Compat)
//! adapter.
//!
//! - [`TlsAcceptor`] shakes hands on accepted connections: from PEM files
//!   ([`TlsAcceptor::from_pem`]) or your own `rustls::ServerConfig` (for
//!   certificates per SNI name, client authentication...).
//! - [`TlsConnector`] shakes hands on outgoing ones, trusting the Mozilla
//!   roots ([`TlsConnector::webpki_roots`]), your own
//!   ([`root_store_from_pem`]) or following your `rustls::ClientConfig`.
//! - Both give a stream ([`ServerTlsStream`], [`ClientTlsStream`]) that is a
//!   [`Transport`](crate::transport::Transport): it splits into a
//!   [`TlsReader`] and a [`TlsWriter`] that work concurrently.
//!
//! - [`TlsInfo`] is what a server's handshake settled (SNI name, ALPN,
//!   client certificates), in each request's extensions with
//!   [`Http::conn_info`](crate::Http::conn_info).
//!
//! Handshakes are bounded by a timeout (10 s unless set) and fail with a
//! typed [`TlsError`]. Both sides offer ALPN `http/1.1` by default; the
//! module knows nothing else about HTTP.
//!
//! A peer that closes the connection without TLS `close_notify` (a
//! truncation attack, or a crash) is reported as an
//! [`UnexpectedEof`](std::io::ErrorKind::UnexpectedEof) error by the
//! reader, never as a clean end of stream.
//!
//! ```
//! use bytes::BytesMut;
//! use spargio_http::tls::{root_store_from_pem, TlsAcceptor, TlsConnector};
//! use spargio_http::transport::{Transport, TransportRead, TransportWrite};
//! use spargio_rt::net::{TcpListener, TcpStream};
//!
//! let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
//! let cert_pem = cert.cert.pem();
//! let acceptor =
//!     TlsAcceptor::from_pem(cert_pem.as_bytes(), cert.key_pair.serialize_pem().as_bytes())
//!         .unwrap();
//! let connector = TlsConnector::with_root_store(root_store_from_pem(cert_pem.as_bytes()).unwrap());
//!
//! spargio_rt::run(move |_| async move {
//!     let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
//!     let addr = listener.local_addr().unwrap();
//!     let server = spargio_rt::spawn(async move {
//!         let (tcp, _) = listener.accept().await.unwrap();
//!         let tls = acceptor.accept(tcp).await.unwrap();
//!         assert_eq!(tls.server_name(), Some("localhost"));
//!         let (mut reader, mut writer) = tls.split();
//!         let (n, buf) = reader.read_some(BytesMut::with_capacity(1024)).await;
//!         assert_eq!(&buf[..n.unwrap()], b"ping");
//!         let (res, _) = writer.write_all(BytesMut::from(&b"pong"[..])).await;
//!         res.unwrap();
//!         writer.shutdown().await.unwrap(); // close_notify
//!     });
//!
//!     let tcp = TcpStream::connect(addr).await.unwrap();
//!     let tls = connector.connect("localhost", tcp).await.unwrap();
//!     assert_eq!(tls.alpn_protocol(), Some(&b"http/1.1"[..]));
//!     let (mut reader, mut writer) = tls.split();
//!     let (res, _) = writer.write_all(BytesMut::from(&b"ping"[..])).await;
//!     res.unwrap();
//!     let mut buf = BytesMut::with_capacity(1024);
//!     loop {
//!         let (n, b) = reader.read_some(buf).await;
//!         buf = b;
//!         if n.unwrap() == 0 {
//!             break; // the server's close_notify
//!         }
//!     }
//!     assert_eq!(&buf[..], b"pong");
//!     server.await.unwrap();
//! })
//! .unwrap();
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

mod acceptor;
mod connector;
mod error;
mod handshake;
mod info;
mod pem;
mod stream;
#[cfg(test)]
mod tests;

pub use acceptor::TlsAcceptor;
pub use connector::TlsConnector;
pub use error::TlsError;
pub use info::TlsInfo;
pub use pem::{certs_from_pem, private_key_from_pem, root_store_from_pem};
pub use stream::{ClientTlsStream, ServerTlsStream, TlsReader, TlsWriter};

/// The ALPN protocol id of HTTP/1.1.
pub const ALPN_HTTP_11: &[u8] = b"http/1.1";

/// How long a handshake may take unless set otherwise.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The crypto provider every configuration here is built with.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// ALPN ids shown as text where they are text.
struct AlpnList<'a>(&'a [Vec<u8>]);

impl fmt::Debug for AlpnList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|p| String::from_utf8_lossy(p)))
            .finish()
    }
}
