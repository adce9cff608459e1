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
//! A request body the handler did not read belongs to HTTP/1.1: the
//! server reads and discards it (up to
//! [`Http::drain_limit`](crate::Http::drain_limit)) before it hands the
//! connection over, so the upgraded stream starts right after it. A client
//! holding the body back for `Expect: 100-continue` is sent `100 Continue`
//! ahead of the `101` (RFC 9110, 7.8). A body over the drain limit, or one
//! the client never sends, closes the connection instead.
//!
//! On the client, a `101` response from
//! [`Client::request`](crate::Client::request), or a 2xx response to a
//! `CONNECT` request (a tunnel), carries the [`OnUpgrade`]:
//! [`on`]`(&mut response)` gives the connection once the client has
//! handed it over (with any bytes the server sent right after the head).
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
//!             // A finished write may still be buffered (over TLS, or not
//!             // yet handed to the kernel): close before dropping, or the
//!             // last bytes may be lost.
//!             let _ = io.close().await;
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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes};
use futures_io::{AsyncRead, AsyncWrite};

use crate::transport::RawIo;

/// Takes the pending upgrade out of a request's extensions (the server's
/// side) or a `101` response's, or a 2xx to `CONNECT` (the client's side:
/// see [`Client::request`](crate::Client::request)). If the message carries
/// none (a request that did not ask for an upgrade, a response that did
/// not switch), the returned future fails with
/// [`UpgradeError::NotRequested`]; if it was taken out already (a second
/// call), with [`UpgradeError::AlreadyTaken`] (clone the first
/// [`OnUpgrade`] to share it).
///
/// It takes the message by value or by `&mut`, as hyper's does.
pub fn on<M: CanUpgrade>(message: M) -> OnUpgrade {
    message.take_on_upgrade()
}

/// A message that can carry a pending upgrade: `http::Request` and
/// `http::Response`, by value or by `&mut` (see [`on`]). Sealed.
pub trait CanUpgrade: sealed::Sealed {
    /// Takes the pending upgrade out; see [`on`].
    fn take_on_upgrade(self) -> OnUpgrade;
}

mod sealed {
    pub trait Sealed {}
    impl<B> Sealed for http::Request<B> {}
    impl<B> Sealed for &mut http::Request<B> {}
    impl<B> Sealed for http::Response<B> {}
    impl<B> Sealed for &mut http::Response<B> {}
}

impl<B> CanUpgrade for &mut http::Request<B> {
    fn take_on_upgrade(self) -> OnUpgrade {
        on_extensions(self.extensions_mut())
    }
}

impl<B> CanUpgrade for http::Request<B> {
    fn take_on_upgrade(mut self) -> OnUpgrade {
        on_extensions(self.extensions_mut())
    }
}

impl<B> CanUpgrade for &mut http::Response<B> {
    fn take_on_upgrade(self) -> OnUpgrade {
        on_extensions(self.extensions_mut())
    }
}

impl<B> CanUpgrade for http::Response<B> {
    fn take_on_upgrade(mut self) -> OnUpgrade {
        on_extensions(self.extensions_mut())
    }
}

/// [`on`] for a request taken apart (an axum extractor's `Parts`).
pub fn on_parts(parts: &mut http::request::Parts) -> OnUpgrade {
    on_extensions(&mut parts.extensions)
}

fn on_extensions(extensions: &mut http::Extensions) -> OnUpgrade {
    match extensions.remove::<OnUpgrade>() {
        Some(on) => {
            extensions.insert(TakenOut);
            on
        }
        None if extensions.get::<TakenOut>().is_some() => OnUpgrade {
            slot: None,
            key: TAKEN_OUT_BEFORE,
        },
        None => OnUpgrade { slot: None, key: 0 },
    }
}

/// Left in a request's extensions by [`on`] in place of its upgrade.
#[derive(Clone, Copy)]
struct TakenOut;

/// The key of an [`OnUpgrade`] without a slot that [`on`] gave for a
/// request whose upgrade it had given already.
const TAKEN_OUT_BEFORE: usize = usize::MAX;

/// Why an upgrade did not happen.
#[derive(Debug, Clone)]
pub enum UpgradeError {
    /// The request did not ask for an upgrade (or the response given to
    /// [`on`] was not a switch).
    NotRequested,
    /// The response was not `101 Switching Protocols`, or the connection
    /// closed (or failed) before the switch was complete.
    NotSwitched,
    /// Another clone of the [`OnUpgrade`] already took the connection.
    AlreadyTaken,
    /// The switch was agreed, but the connection failed while it was
    /// handed over (flushing what was buffered for the peer, or taking
    /// back a read in flight); the error is the connection's, also given
    /// by [`source`](std::error::Error::source).
    HandOver(Arc<io::Error>),
}

/// Equal when of one variant; [`HandOver`](UpgradeError::HandOver)s
/// compare their errors' kinds.
impl PartialEq for UpgradeError {
    fn eq(&self, other: &UpgradeError) -> bool {
        match (self, other) {
            (UpgradeError::HandOver(a), UpgradeError::HandOver(b)) => a.kind() == b.kind(),
            (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
        }
    }
}

impl Eq for UpgradeError {}

impl fmt::Display for UpgradeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UpgradeError::NotRequested => "the request did not ask for an upgrade",
            UpgradeError::NotSwitched => {
                "the connection was not switched (no 101 response, or the connection failed first)"
            }
            UpgradeError::AlreadyTaken => "the upgraded connection was already taken",
            UpgradeError::HandOver(e) => {
                return write!(f, "the connection failed while it was handed over: {e}");
            }
        })
    }
}

impl std::error::Error for UpgradeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            UpgradeError::HandOver(e) => Some(&**e),
            _ => None,
        }
    }
}

/// A future of the upgraded connection; see the [module docs](self).
///
/// Clones share the one connection: once the server has switched it, the
/// first clone polled gets the [`Upgraded`] stream and every other clone
/// [`UpgradeError::AlreadyTaken`]; if it is not switched, every clone gets
/// [`UpgradeError::NotSwitched`] ([`UpgradeError::HandOver`] if the
/// connection failed while it was handed over). Every clone waiting at
/// that moment is woken.
pub struct OnUpgrade {
    slot: Option<Arc<Slot>>,
    /// This clone's key for its waker in the slot.
    key: usize,
}

impl OnUpgrade {
    /// Whether this handle can still take a connection: its request asked
    /// for an upgrade (or its response is a client's `101`) and [`on`] had
    /// not already given that upgrade out.
    pub fn is_requested(&self) -> bool {
        self.slot.is_some()
    }
}

impl Clone for OnUpgrade {
    fn clone(&self) -> OnUpgrade {
        OnUpgrade {
            slot: self.slot.clone(),
            key: self.slot.as_ref().map_or(self.key, |slot| {
                slot.handles.fetch_add(1, Ordering::SeqCst);
                slot.next_key.fetch_add(1, Ordering::Relaxed)
            }),
        }
    }
}

impl Drop for OnUpgrade {
    fn drop(&mut self) {
        let Some(slot) = self.slot.take() else {
            return;
        };
        // A clone dropped while waiting leaves no waker behind.
        if let State::Waiting(wakers) = &mut *slot.lock() {
            wakers.retain(|(key, _)| *key != self.key);
        }
        // The connection's side, if it waits on whether anyone still wants
        // the connection, looks again (once this handle no longer counts).
        slot.handles.fetch_sub(1, Ordering::SeqCst);
        let watcher = slot
            .watcher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(watcher) = watcher {
            watcher.wake();
        }
    }
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
    /// The key the next clone of the [`OnUpgrade`] gets.
    next_key: AtomicUsize,
    /// The connection's side, waiting in [`Pending::poll_unwanted`].
    watcher: Mutex<Option<Waker>>,
    /// How many [`OnUpgrade`]s for it are alive.
    handles: AtomicUsize,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update is a whole-value assignment, so a poisoned lock
        // still holds a consistent state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

enum State {
    /// Not switched yet: the wakers of the clones waiting, each under its
    /// clone's key (so a clone polled again replaces its own waker, and
    /// every clone waiting is woken when the switch is decided).
    Waiting(Vec<(usize, Waker)>),
    /// Switched: the connection waits for the first clone polled.
    Ready(Upgraded),
    /// A clone took the connection.
    Taken,
    /// Not switched (or the connection closed first).
    Failed,
    /// Switched, but the connection failed while it was handed over.
    HandOverFailed(Arc<io::Error>),
}

/// The connection's side of an [`OnUpgrade`].
pub(crate) struct Pending {
    slot: Arc<Slot>,
}

/// A request's upgrade slot: the [`OnUpgrade`] for its extensions and the
/// connection's side.
pub(crate) fn pending() -> (OnUpgrade, Pending) {
    let slot = Arc::new(Slot {
        state: Mutex::new(State::Waiting(Vec::new())),
        next_key: AtomicUsize::new(1),
        watcher: Mutex::new(None),
        handles: AtomicUsize::new(1),
    });
    (
        OnUpgrade {
            slot: Some(slot.clone()),
            key: 0,
        },
        Pending { slot },
    )
}

impl Pending {
    /// Whether any [`OnUpgrade`] for this request is still alive (if none
    /// is, nobody can take the connection).
    pub(crate) fn is_wanted(&self) -> bool {
        self.slot.handles.load(Ordering::SeqCst) > 0
    }

    /// Ready once no [`OnUpgrade`] for this request is left: nobody can
    /// take the connection any more (a task waiting for something before
    /// the hand-over can give up then).
    pub(crate) fn poll_unwanted(&self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.is_wanted() {
            return Poll::Ready(());
        }
        *self.slot.watcher.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
        // Looked at again after the waker is in place: a handle dropped in
        // between may have found no waker to wake (one dropped later finds
        // it).
        if self.is_wanted() {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }

    /// Hands the connection over.
    pub(crate) fn fulfill(self, io: Upgraded) {
        self.finish(State::Ready(io));
    }

    /// The switch was agreed, but the connection failed with `e` on its
    /// way to the new owner: every clone gets
    /// [`UpgradeError::HandOver`].
    pub(crate) fn fail(self, e: io::Error) {
        self.finish(State::HandOverFailed(Arc::new(e)));
    }

    /// Decides the switch and wakes every clone waiting for it.
    fn finish(&self, new: State) {
        let mut st = self.slot.lock();
        if let State::Waiting(w) = &mut *st {
            let wakers = std::mem::take(w);
            *st = new;
            drop(st);
            for (_, w) in wakers {
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
            return Poll::Ready(Err(match self.key {
                TAKEN_OUT_BEFORE => UpgradeError::AlreadyTaken,
                _ => UpgradeError::NotRequested,
            }));
        };
        let mut st = slot.lock();
        if let State::Waiting(wakers) = &mut *st {
            match wakers.iter_mut().find(|(key, _)| *key == self.key) {
                Some((_, w)) if w.will_wake(cx.waker()) => {}
                Some((_, w)) => *w = cx.waker().clone(),
                None => wakers.push((self.key, cx.waker().clone())),
            }
            return Poll::Pending;
        }
        match std::mem::replace(&mut *st, State::Taken) {
            State::Ready(io) => Poll::Ready(Ok(io)),
            // (`Waiting` was handled above.)
            State::Taken | State::Waiting(_) => Poll::Ready(Err(UpgradeError::AlreadyTaken)),
            State::Failed => {
                *st = State::Failed;
                Poll::Ready(Err(UpgradeError::NotSwitched))
            }
            State::HandOverFailed(e) => {
                *st = State::HandOverFailed(e.clone());
                Poll::Ready(Err(UpgradeError::HandOver(e)))
            }
        }
    }
}

/// An upgraded connection: the bytes the peer sent after the upgrade
/// request (on the server) or after the `101` head (on the client) that
/// were already read, then the raw stream (plain TCP or Unix socket, or
/// TLS), as `futures_io` `AsyncRead + AsyncWrite`.
///
/// A write that has returned may not have gone out yet: it can still be in
/// flight to the kernel, or (over TLS) held in the session's buffer. Flush
/// ([`AsyncWriteExt::flush`](futures_util::AsyncWriteExt::flush)) or close
/// ([`AsyncWriteExt::close`](futures_util::AsyncWriteExt::close), which
/// also sends TLS's `close_notify` and shuts the write side down) before
/// dropping it, or the last bytes written may be lost. The same holds for
/// the stream [`into_parts`](Self::into_parts) gives. A read sends what
/// was written before it, so an exchange that writes and then waits for
/// the peer's answer needs no flush in between.
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
    /// The connection handed over: `read_ahead` (bytes the server read
    /// past the upgrade request) comes first, then `io`.
    pub(crate) fn new(read_ahead: Bytes, io: Box<dyn RawIo>) -> Upgraded {
        Upgraded { read_ahead, io }
    }

    /// The bytes already read from the peer and the raw stream (flush or
    /// close it before dropping it, as for `Upgraded`).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counting_waker::{counting_waker, woken, Counter};

    fn poll(on: &mut OnUpgrade, waker: &Waker) -> Poll<Result<Upgraded, UpgradeError>> {
        Pin::new(on).poll(&mut Context::from_waker(waker))
    }

    fn upgraded() -> Upgraded {
        Upgraded::new(
            Bytes::from_static(b"ahead"),
            Box::new(futures_util::io::Cursor::new(Vec::new())),
        )
    }

    /// A clone of an `OnUpgrade` with its wake-up counter and waker.
    type Waiting = (OnUpgrade, Arc<Counter>, Waker);

    #[test]
    fn a_second_on_for_one_request_says_the_upgrade_was_taken() {
        let (first, _pending) = super::pending();
        let mut req = http::Request::new(());
        req.extensions_mut().insert(first);
        let _taken = on(&mut req);
        let mut again = on(&mut req);
        let (_, waker) = counting_waker();
        for attempt in [&mut again.clone(), &mut again] {
            assert_eq!(
                poll(attempt, &waker).map(|r| r.err()),
                Poll::Ready(Some(UpgradeError::AlreadyTaken))
            );
        }
        let mut never = on(http::Request::new(()));
        assert_eq!(
            poll(&mut never, &waker).map(|r| r.err()),
            Poll::Ready(Some(UpgradeError::NotRequested))
        );
    }

    /// An `OnUpgrade` and a clone of it, both polled (and waiting), and
    /// the connection's side.
    fn two_waiting_clones() -> (Waiting, Waiting, super::Pending) {
        let (mut first, pending) = super::pending();
        let mut second = first.clone();
        let (first_count, first_waker) = counting_waker();
        let (second_count, second_waker) = counting_waker();
        assert!(poll(&mut first, &first_waker).is_pending());
        assert!(poll(&mut second, &second_waker).is_pending());
        (
            (first, first_count, first_waker),
            (second, second_count, second_waker),
            pending,
        )
    }

    #[test]
    fn every_waiting_clone_is_woken_and_one_of_them_takes_the_connection() {
        let (first, second, pending) = two_waiting_clones();
        let (mut first, first_count, first_waker) = first;
        let (mut second, second_count, second_waker) = second;
        // Polled again while waiting: still one waker for that clone.
        assert!(poll(&mut first, &first_waker).is_pending());

        pending.fulfill(upgraded());
        assert_eq!(woken(&first_count), 1, "the first clone was not woken");
        assert_eq!(woken(&second_count), 1, "the second clone was not woken");
        match poll(&mut second, &second_waker) {
            Poll::Ready(Ok(io)) => assert_eq!(io.into_parts().0, "ahead"),
            other => panic!("the clone polled first takes the connection: {other:?}"),
        }
        assert!(matches!(
            poll(&mut first, &first_waker),
            Poll::Ready(Err(UpgradeError::AlreadyTaken))
        ));
    }

    #[test]
    fn every_waiting_clone_hears_why_the_hand_over_failed() {
        let (first, second, pending) = two_waiting_clones();
        let (mut first, first_count, _) = first;
        let (mut second, _, _) = second;

        pending.fail(io::ErrorKind::ConnectionReset.into());
        assert_eq!(woken(&first_count), 1, "the first clone was not woken");
        for on in [&mut first, &mut second] {
            let Poll::Ready(Err(e)) = poll(on, Waker::noop()) else {
                panic!("the failure is given to every clone");
            };
            assert!(matches!(e, UpgradeError::HandOver(_)), "{e:?}");
            let cause = std::error::Error::source(&e).expect("the connection's error");
            let cause = cause.downcast_ref::<io::Error>().expect("an io::Error");
            assert_eq!(cause.kind(), io::ErrorKind::ConnectionReset);
        }
    }

    #[test]
    fn every_waiting_clone_hears_that_the_connection_was_not_switched() {
        let (first, second, pending) = two_waiting_clones();
        let (mut first, first_count, _) = first;
        let (mut second, second_count, _) = second;

        drop(pending);
        assert_eq!(woken(&first_count), 1, "the first clone was not woken");
        assert_eq!(woken(&second_count), 1, "the second clone was not woken");
        for on in [&mut first, &mut second] {
            assert!(matches!(
                poll(on, Waker::noop()),
                Poll::Ready(Err(UpgradeError::NotSwitched))
            ));
        }
    }

    #[test]
    fn the_connection_side_hears_when_the_last_handle_is_dropped() {
        let (first, pending) = super::pending();
        let second = first.clone();
        let (count, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(pending.poll_unwanted(&mut cx).is_pending());
        drop(first);
        assert_eq!(woken(&count), 1);
        assert!(
            pending.poll_unwanted(&mut cx).is_pending(),
            "a clone is left"
        );
        drop(second);
        assert_eq!(woken(&count), 2);
        assert!(pending.poll_unwanted(&mut cx).is_ready());
        assert!(!pending.is_wanted());
    }

    #[test]
    fn a_clone_dropped_while_waiting_is_not_woken() {
        let ((mut kept, kept_count, kept_waker), dropped, pending) = two_waiting_clones();
        let (dropped, dropped_count, _) = dropped;
        drop(dropped);
        assert!(pending.is_wanted());

        pending.fulfill(upgraded());
        assert_eq!(woken(&kept_count), 1);
        assert_eq!(woken(&dropped_count), 0);
        assert!(matches!(poll(&mut kept, &kept_waker), Poll::Ready(Ok(_))));
    }
}
