//! Connection upgrades: a `101 Switching Protocols` response hands the raw
//! connection to the handler (the building block for WebSockets).
//!
//! A request that asks for an upgrade (`Connection: upgrade` with an
//! `Upgrade` header, or `CONNECT`) carries an [`OnUpgrade`] in its
//! extensions. The handler takes it with [`on`], answers `101` (or, to
//! `CONNECT`, any 2xx: the connection becomes a tunnel), and awaits it
//! (typically in a task it spawns) to get the [`Upgraded`] stream once the
//! server has written that head. A switch nobody takes closes the
//! connection.
//!
//! ```no_run
//! use futures_util::{AsyncReadExt, AsyncWriteExt};
//! use http::{Request, Response, StatusCode};
//! use spargio_http::{upgrade, Body};
//!
//! async fn handle(mut req: Request<Body>) -> Result<Response<Body>, std::convert::Infallible> {
//!     let on_upgrade = upgrade::on(&mut req);
//!     spargio_rt::spawn(async move {
//!         if let Ok(mut io) = on_upgrade.await {
//!             // Echo whatever the client sends on the upgraded connection.
//!             let mut buf = [0u8; 1024];
//!             while let Ok(n) = io.read(&mut buf).await {
//!                 if n == 0 || io.write_all(&buf[..n]).await.is_err() {
//!                     break;
//!                 }
//!             }
//!         }
//!     });
//!     let mut resp = Response::new(Body::empty());
//!     *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
//!     resp.headers_mut().insert("connection", "upgrade".parse().unwrap());
//!     resp.headers_mut().insert("upgrade", "echo".parse().unwrap());
//!     Ok(resp)
//! }
//! ```

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes};
use futures_io::{AsyncRead, AsyncWrite};

use crate::transport::RawIo;

/// Takes the pending upgrade out of a request's extensions. If the request
/// did not ask for an upgrade, the returned future fails with
/// [`UpgradeError::NotRequested`].
pub fn on<B>(req: &mut http::Request<B>) -> OnUpgrade {
    req.extensions_mut()
        .remove::<OnUpgrade>()
        .unwrap_or(OnUpgrade { slot: None })
}

/// Why an upgrade did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpgradeError {
    /// The request did not ask for an upgrade.
    NotRequested,
    /// The response was not `101 Switching Protocols`, or the connection
    /// closed before it was sent.
    NotSwitched,
    /// Another clone of the [`OnUpgrade`] already took the connection.
    AlreadyTaken,
}

impl fmt::Display for UpgradeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UpgradeError::NotRequested => "the request did not ask for an upgrade",
            UpgradeError::NotSwitched => "the connection was not switched (no 101 response)",
            UpgradeError::AlreadyTaken => "the upgraded connection was already taken",
        })
    }
}

impl std::error::Error for UpgradeError {}

/// A future of the upgraded connection; see the [module docs](self).
#[derive(Clone)]
pub struct OnUpgrade {
    slot: Option<Arc<Slot>>,
}

impl fmt::Debug for OnUpgrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnUpgrade")
            .field("requested", &self.slot.is_some())
            .finish()
    }
}

struct Slot {
    state: Mutex<State>,
}

enum State {
    Waiting(Option<Waker>),
    Ready(Upgraded),
    Taken,
    Failed,
}

/// The connection's side of an [`OnUpgrade`].
pub(crate) struct Pending {
    slot: Arc<Slot>,
}

/// A request's upgrade slot: the [`OnUpgrade`] for its extensions and the
/// connection's side.
pub(crate) fn pending() -> (OnUpgrade, Pending) {
    let slot = Arc::new(Slot {
        state: Mutex::new(State::Waiting(None)),
    });
    (
        OnUpgrade {
            slot: Some(slot.clone()),
        },
        Pending { slot },
    )
}

impl Pending {
    /// Whether any [`OnUpgrade`] for this request is still alive (if none
    /// is, nobody can take the connection).
    pub(crate) fn is_wanted(&self) -> bool {
        Arc::strong_count(&self.slot) > 1
    }

    /// Hands the connection over.
    pub(crate) fn fulfill(self, io: Upgraded) {
        self.finish(State::Ready(io));
    }

    fn finish(&self, new: State) {
        let mut st = self.slot.state.lock().unwrap_or_else(|e| e.into_inner());
        if let State::Waiting(w) = &mut *st {
            let waker = w.take();
            *st = new;
            drop(st);
            if let Some(w) = waker {
                w.wake();
            }
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.finish(State::Failed);
    }
}

impl Future for OnUpgrade {
    type Output = Result<Upgraded, UpgradeError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(slot) = &self.slot else {
            return Poll::Ready(Err(UpgradeError::NotRequested));
        };
        let mut st = slot.state.lock().unwrap_or_else(|e| e.into_inner());
        match std::mem::replace(&mut *st, State::Taken) {
            State::Waiting(_) => {
                *st = State::Waiting(Some(cx.waker().clone()));
                Poll::Pending
            }
            State::Ready(io) => Poll::Ready(Ok(io)),
            State::Taken => Poll::Ready(Err(UpgradeError::AlreadyTaken)),
            State::Failed => {
                *st = State::Failed;
                Poll::Ready(Err(UpgradeError::NotSwitched))
            }
        }
    }
}

/// An upgraded connection: the bytes the client sent after the upgrade
/// request that the server had already read, then the raw stream (plain
/// TCP or TLS), as `futures_io` `AsyncRead + AsyncWrite`.
pub struct Upgraded {
    read_ahead: Bytes,
    io: Box<dyn RawIo>,
}

impl fmt::Debug for Upgraded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upgraded")
            .field("read_ahead", &self.read_ahead.len())
            .finish()
    }
}

impl Upgraded {
    pub(crate) fn new(read_ahead: Bytes, io: Box<dyn RawIo>) -> Upgraded {
        Upgraded { read_ahead, io }
    }

    /// The bytes already read from the client and the raw stream.
    pub fn into_parts(self) -> (Bytes, Box<dyn RawIo>) {
        (self.read_ahead, self.io)
    }
}

impl AsyncRead for Upgraded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if !self.read_ahead.is_empty() {
            let n = buf.len().min(self.read_ahead.len());
            buf[..n].copy_from_slice(&self.read_ahead[..n]);
            self.read_ahead.advance(n);
            return Poll::Ready(Ok(n));
        }
        Pin::new(&mut *self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Upgraded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.io).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.io).poll_close(cx)
    }
}
