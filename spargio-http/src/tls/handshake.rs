//! The part of a TLS handshake both sides share: a time limit, and a
//! best-effort close that lets rustls's alert out when the handshake fails.

use std::future::Future;
use std::time::Duration;

use futures_util::io::AsyncWriteExt;
use spargio_rt::io::compat::Compat;
use spargio_rt::net::SocketStream;

use super::TlsError;

/// Runs `handshake` (futures-rustls's fallible accept or connect) within
/// `timeout`, turning its result into ours with `wrap`.
pub(super) async fn run<S, T>(
    timeout: Duration,
    handshake: impl Future<Output = Result<S, (std::io::Error, Compat<SocketStream>)>>,
    wrap: impl FnOnce(S) -> T,
) -> Result<T, TlsError> {
    let attempt = async {
        match handshake.await {
            Ok(stream) => Ok(wrap(stream)),
            Err((e, mut io)) => {
                // rustls may have queued an alert for the peer: let it go
                // out, then send our FIN.
                let _ = io.close().await;
                Err(TlsError::from_handshake(e))
            }
        }
    };
    match spargio_rt::time::timeout(timeout, attempt).await {
        Ok(res) => res,
        Err(_) => Err(TlsError::HandshakeTimeout(timeout)),
    }
}
