//! `BoundaryServer`, `BoundaryRequest` and `BoundaryResponder`.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_channel::{Receiver, TryRecvError};

use super::{BoundaryError, Envelope, Reply, Shared};

/// The serving half of a [boundary channel](super::channel).
///
/// Clone it to serve from several tasks (say one per shard): each request
/// goes to exactly one of them. `recv` skips requests nobody waits for any
/// more: ones whose deadline passed while queued (their callers get
/// [`Timeout`](BoundaryError::Timeout); see
/// [`expired_count`](Self::expired_count)) and ones whose callers dropped
/// their futures ([`abandoned_count`](Self::abandoned_count)).
///
/// When the last server is dropped, the channel closes: requests still
/// queued are answered with [`Closed`](BoundaryError::Closed), and new calls
/// fail with it.
pub struct BoundaryServer<Req, Resp> {
    rx: Receiver<Envelope<Req, Resp>>,
    shared: Arc<Shared>,
}

impl<Req, Resp> BoundaryServer<Req, Resp> {
    pub(super) fn new(rx: Receiver<Envelope<Req, Resp>>, shared: Arc<Shared>) -> Self {
        shared.servers.fetch_add(1, Ordering::SeqCst);
        BoundaryServer { rx, shared }
    }

    /// Waits for the next live request.
    ///
    /// Cancellation safe: dropping the future loses no request.
    ///
    /// # Errors
    /// [`Closed`](BoundaryError::Closed) once every client is gone and the
    /// queue is empty (or the channel was [closed](Self::close) and drained).
    pub async fn recv(&self) -> Result<BoundaryRequest<Req, Resp>, BoundaryError> {
        loop {
            let env = self.rx.recv().await.map_err(|_| BoundaryError::Closed)?;
            if let Some(req) = self.accept(env) {
                return Ok(req);
            }
        }
    }

    /// [`recv`](Self::recv), waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`recv`](Self::recv), plus [`Timeout`](BoundaryError::Timeout) if
    /// no request came in time.
    pub async fn recv_timeout(
        &self,
        timeout: Duration,
    ) -> Result<BoundaryRequest<Req, Resp>, BoundaryError> {
        crate::time::timeout(timeout, self.recv())
            .await
            .unwrap_or(Err(BoundaryError::Timeout))
    }

    /// The next live request if one is queued, `Ok(None)` if none is.
    ///
    /// # Errors
    /// [`Closed`](BoundaryError::Closed) as for [`recv`](Self::recv).
    pub fn try_recv(&self) -> Result<Option<BoundaryRequest<Req, Resp>>, BoundaryError> {
        loop {
            match self.rx.try_recv() {
                Ok(env) => {
                    if let Some(req) = self.accept(env) {
                        return Ok(Some(req));
                    }
                }
                Err(TryRecvError::Empty) => return Ok(None),
                Err(TryRecvError::Closed) => return Err(BoundaryError::Closed),
            }
        }
    }

    /// Filters out requests nobody waits for.
    fn accept(&self, env: Envelope<Req, Resp>) -> Option<BoundaryRequest<Req, Resp>> {
        // The deadline first: a caller whose deadline passed has usually
        // dropped its reply slot already (its timeout fired), which is an
        // expiry, not an abandonment.
        if env.deadline.is_some_and(|d| Instant::now() >= d) {
            self.shared.expired.fetch_add(1, Ordering::Relaxed);
            let _ = env.reply.send(Err(BoundaryError::Timeout));
            return None;
        }
        if env.reply.is_canceled() {
            self.shared.abandoned.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(BoundaryRequest {
            req: env.req,
            responder: BoundaryResponder {
                reply: env.reply,
                deadline: env.deadline,
            },
        })
    }

    /// Closes the channel for new calls; queued requests can still be
    /// received, after which [`recv`](Self::recv) returns
    /// [`Closed`](BoundaryError::Closed). Returns `false` if it was already
    /// closed.
    pub fn close(&self) -> bool {
        self.rx.close()
    }

    /// How many requests were skipped because their deadline had passed
    /// when they reached the front of the queue (whether or not the caller
    /// still waited: one whose call timed out has stopped waiting).
    pub fn expired_count(&self) -> u64 {
        self.shared.expired.load(Ordering::Relaxed)
    }

    /// How many requests were skipped because their caller had stopped
    /// waiting (dropped its future or ticket) before they reached the front
    /// of the queue, their deadline, if any, not having passed yet.
    pub fn abandoned_count(&self) -> u64 {
        self.shared.abandoned.load(Ordering::Relaxed)
    }

    /// Number of requests waiting in the queue.
    pub fn queue_len(&self) -> usize {
        self.rx.len()
    }

    /// Whether the channel is closed (every client gone, or
    /// [`close`](Self::close) was called).
    pub fn is_closed(&self) -> bool {
        self.rx.is_closed()
    }
}

impl<Req, Resp> Clone for BoundaryServer<Req, Resp> {
    fn clone(&self) -> Self {
        BoundaryServer::new(self.rx.clone(), self.shared.clone())
    }
}

impl<Req, Resp> Drop for BoundaryServer<Req, Resp> {
    fn drop(&mut self) {
        if self.shared.servers.fetch_sub(1, Ordering::SeqCst) == 1 {
            // Last server: queued requests would otherwise sit in the channel
            // (kept alive by the clients) and their callers would wait forever.
            self.rx.close();
            while let Ok(env) = self.rx.try_recv() {
                let _ = env.reply.send(Err(BoundaryError::Closed));
            }
        }
    }
}

impl<Req, Resp> fmt::Debug for BoundaryServer<Req, Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundaryServer")
            .field("queued", &self.rx.len())
            .field("closed", &self.rx.is_closed())
            .field("expired", &self.expired_count())
            .field("abandoned", &self.abandoned_count())
            .finish()
    }
}

/// One received call: the request and the means to answer it.
///
/// Dropping it without [`respond`](Self::respond)ing makes the caller get
/// [`Canceled`](BoundaryError::Canceled).
///
/// ```
/// use std::time::Duration;
/// use spargio_rt::boundary::{self, BoundaryError};
///
/// spargio_rt::run(|handle| async move {
///     let (client, server) = boundary::channel::<u32, u32>(8);
///     let caller = handle.spawn(async move {
///         client.call_with_timeout(20, Duration::from_secs(30)).await
///     });
///     let req = server.recv().await.unwrap();
///     assert!(req.deadline().is_some() && !req.is_expired());
///     let (n, responder) = req.into_parts();
///     responder.respond(n + 1).unwrap();
///     assert_eq!(caller.await.unwrap(), Ok(21));
/// })
/// .unwrap();
/// ```
pub struct BoundaryRequest<Req, Resp> {
    req: Req,
    responder: BoundaryResponder<Resp>,
}

impl<Req, Resp> BoundaryRequest<Req, Resp> {
    /// The request.
    pub fn request(&self) -> &Req {
        &self.req
    }

    /// The request, mutably.
    pub fn request_mut(&mut self) -> &mut Req {
        &mut self.req
    }

    /// Splits into the request and the responder, to move the request
    /// into the work while keeping the means to answer.
    pub fn into_parts(self) -> (Req, BoundaryResponder<Resp>) {
        (self.req, self.responder)
    }

    /// The caller's deadline, if it set one.
    pub fn deadline(&self) -> Option<Instant> {
        self.responder.deadline()
    }

    /// Whether the caller's deadline has passed.
    pub fn is_expired(&self) -> bool {
        self.responder.is_expired()
    }

    /// Whether the caller stopped waiting (dropped its future or ticket, or
    /// timed out).
    pub fn is_cancelled(&self) -> bool {
        self.responder.is_cancelled()
    }

    /// Completes when the caller stops waiting; race it against the work
    /// to stop early.
    pub async fn cancelled(&mut self) {
        self.responder.cancelled().await;
    }

    /// Answers the call.
    ///
    /// # Errors
    /// [`Canceled`](BoundaryError::Canceled) if the caller stopped waiting;
    /// the response is dropped.
    pub fn respond(self, resp: Resp) -> Result<(), BoundaryError> {
        self.responder.respond(resp)
    }
}

impl<Req: fmt::Debug, Resp> fmt::Debug for BoundaryRequest<Req, Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundaryRequest")
            .field("request", &self.req)
            .field("deadline", &self.deadline())
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

/// The answering half of a [`BoundaryRequest`], from
/// [`into_parts`](BoundaryRequest::into_parts). Dropping it unanswered makes
/// the caller get [`Canceled`](BoundaryError::Canceled).
pub struct BoundaryResponder<Resp> {
    reply: Reply<Resp>,
    deadline: Option<Instant>,
}

impl<Resp> BoundaryResponder<Resp> {
    /// The caller's deadline, if it set one.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Whether the caller's deadline has passed.
    pub fn is_expired(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Whether the caller stopped waiting.
    pub fn is_cancelled(&self) -> bool {
        self.reply.is_canceled()
    }

    /// Completes when the caller stops waiting.
    pub async fn cancelled(&mut self) {
        std::future::poll_fn(|cx: &mut Context<'_>| -> Poll<()> { self.reply.poll_canceled(cx) })
            .await;
    }

    /// Answers the call.
    ///
    /// # Errors
    /// [`Canceled`](BoundaryError::Canceled) if the caller stopped waiting.
    pub fn respond(self, resp: Resp) -> Result<(), BoundaryError> {
        self.reply
            .send(Ok(resp))
            .map_err(|_| BoundaryError::Canceled)
    }
}

impl<Resp> fmt::Debug for BoundaryResponder<Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundaryResponder")
            .field("deadline", &self.deadline)
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_channel::oneshot;

    #[test]
    fn expired_requests_are_skipped_counted_and_answered_with_timeout() {
        let (client, server) = super::super::channel::<u8, u8>(4);
        let (reply, mut rx) = oneshot::channel();
        let past = Instant::now() - Duration::from_millis(1);
        // What a caller whose timer has not fired yet would have queued.
        assert!(server_tx(&client)
            .try_send(Envelope {
                req: 1,
                deadline: Some(past),
                reply,
            })
            .is_ok());
        let live = client.try_call(2).unwrap();
        let req = server.try_recv().unwrap().unwrap();
        assert_eq!(*req.request(), 2);
        assert_eq!(server.expired_count(), 1);
        assert_eq!(server.abandoned_count(), 0);
        assert_eq!(rx.try_recv(), Ok(Some(Err(BoundaryError::Timeout))));
        drop((live, req));
    }

    fn server_tx<Req, Resp>(
        client: &super::super::BoundaryClient<Req, Resp>,
    ) -> &async_channel::Sender<Envelope<Req, Resp>> {
        client.sender()
    }
}
