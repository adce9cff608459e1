//! The part of a TLS handshake both sides share: a time limit, and a
//! best-effort close that lets rustls's alert out when the handshake fails.

use std::future::Future;
use std::time::Duration;

use futures_util::io::AsyncWriteExt;
use spargio_rt::io::compat::Compat;
use spargio_rt::net::SocketStream;

use super::TlsError;

/// How long a failed handshake's close may take (see [`run`]).
const CLOSE_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// Runs `handshake` (futures-rustls's fallible accept or connect) within
/// `timeout`, turning its result into ours with `wrap`.
///
/// A handshake that fails is closed best effort: what the adapter is still
/// writing (the alert rustls wrote for the peer, if it got that far) goes
/// out, then our FIN, for at most [`CLOSE_AFTER_FAILURE`], counted apart
/// from `timeout`: a peer that reads nothing cannot turn the failure into
/// a [`TlsError::HandshakeTimeout`].
pub(super) async fn run<S, T>(
    timeout: Duration,
    handshake: impl Future<Output = Result<S, (std::io::Error, Compat<SocketStream>)>>,
    wrap: impl FnOnce(S) -> T,
) -> Result<T, TlsError> {
    match spargio_rt::time::timeout(timeout, handshake).await {
        Ok(Ok(stream)) => Ok(wrap(stream)),
        Ok(Err((e, mut io))) => {
            let _ = spargio_rt::time::timeout(CLOSE_AFTER_FAILURE, io.close()).await;
            Err(TlsError::from_handshake(e))
        }
        Err(_) => Err(TlsError::HandshakeTimeout(timeout)),
    }
}
