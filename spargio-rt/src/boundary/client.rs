//! `BoundaryClient` and `BoundaryTicket`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_channel::{Sender, TrySendError};
use futures_channel::oneshot;

use super::{BoundaryError, Envelope};

/// The calling half of a [boundary channel](super::channel).
///
/// Its futures work on any executor. Dropping a call future at any point
/// is safe: a request not yet queued is simply dropped, and a queued or
/// running one is seen by the server as
/// [cancelled](super::BoundaryRequest::is_cancelled).
///
/// A call abandoned while queued (its future or ticket dropped, or its
/// deadline passed) keeps its queue slot until a server dequeues it and
/// skips it, as with tokio's `mpsc`: abandoned calls count against the
/// capacity, so a server that stops receiving can leave the queue full of
/// them.
pub struct BoundaryClient<Req, Resp> {
    tx: Sender<Envelope<Req, Resp>>,
}

impl<Req, Resp> BoundaryClient<Req, Resp> {
    pub(super) fn new(tx: Sender<Envelope<Req, Resp>>) -> Self {
        BoundaryClient { tx }
    }

    #[cfg(test)]
    pub(super) fn sender(&self) -> &Sender<Envelope<Req, Resp>> {
        &self.tx
    }

    /// Sends `req`, waiting for queue room if needed, and waits for the
    /// reply.
    ///
    /// # Errors
    /// [`Closed`](BoundaryError::Closed) if no server is left (or one
    /// [closed](super::BoundaryServer::close) the channel);
    /// [`Canceled`](BoundaryError::Canceled) if the server dropped the
    /// request without answering.
    pub async fn call(&self, req: Req) -> Result<Resp, BoundaryError> {
        self.call_inner(req, None).await
    }

    /// [`call`](Self::call) with a time limit covering both queueing and the
    /// reply; the request carries the deadline so the server can skip or
    /// cut short work nobody waits for any more.
    ///
    /// # Errors
    /// As [`call`](Self::call), plus [`Timeout`](BoundaryError::Timeout).
    pub async fn call_with_timeout(
        &self,
        req: Req,
        timeout: Duration,
    ) -> Result<Resp, BoundaryError> {
        if timeout >= crate::time::FAR {
            return self.call(req).await;
        }
        self.call_until(req, crate::time::far_add(Instant::now(), timeout))
            .await
    }

    /// [`call`](Self::call) with a deadline covering both queueing and the
    /// reply; see [`call_with_timeout`](Self::call_with_timeout).
    pub async fn call_until(&self, req: Req, deadline: Instant) -> Result<Resp, BoundaryError> {
        if Instant::now() >= deadline {
            // Expired before it was sent: it takes no queue slot.
            if self.is_closed() {
                return Err(BoundaryError::Closed);
            }
            return Err(BoundaryError::Timeout);
        }
        crate::time::timeout_at(deadline, self.call_inner(req, Some(deadline)))
            .await
            .unwrap_or(Err(BoundaryError::Timeout))
    }

    async fn call_inner(&self, req: Req, deadline: Option<Instant>) -> Result<Resp, BoundaryError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Envelope {
                req,
                deadline,
                reply,
            })
            .await
            .map_err(|_| BoundaryError::Closed)?;
        BoundaryTicket { rx }.await
    }

    /// Queues `req` without waiting; the returned ticket is a future of the
    /// reply.
    ///
    /// # Errors
    /// [`Overloaded`](BoundaryError::Overloaded) if the queue is full,
    /// [`Closed`](BoundaryError::Closed) if no server is left. `req` is
    /// dropped in both cases.
    ///
    /// ```
    /// use spargio_rt::boundary::{self, BoundaryError};
    /// let (client, server) = boundary::channel::<u8, u8>(1);
    /// let first = client.try_call(1).unwrap();
    /// assert_eq!(client.try_call(2).unwrap_err(), BoundaryError::Overloaded);
    /// let req = server.try_recv().unwrap().unwrap();
    /// req.respond(10).unwrap();
    /// # drop(first);
    /// ```
    pub fn try_call(&self, req: Req) -> Result<BoundaryTicket<Resp>, BoundaryError> {
        let (reply, rx) = oneshot::channel();
        match self.tx.try_send(Envelope {
            req,
            deadline: None,
            reply,
        }) {
            Ok(()) => Ok(BoundaryTicket { rx }),
            Err(TrySendError::Full(_)) => Err(BoundaryError::Overloaded),
            Err(TrySendError::Closed(_)) => Err(BoundaryError::Closed),
        }
    }

    /// [`call`](Self::call) for plain (non-async) threads: blocks the calling
    /// thread until the reply comes.
    ///
    /// # Panics
    /// On a spargio shard thread, where blocking would stall the shard; use
    /// [`call`](Self::call) there, or run this in `spawn_blocking`. Don't
    /// call it from inside another executor's async task either.
    pub fn call_blocking(&self, req: Req) -> Result<Resp, BoundaryError> {
        crate::block_on::block_on_here(None, self.call(req))
    }

    /// [`call_with_timeout`](Self::call_with_timeout) for plain threads; see
    /// [`call_blocking`](Self::call_blocking).
    pub fn call_blocking_with_timeout(
        &self,
        req: Req,
        timeout: Duration,
    ) -> Result<Resp, BoundaryError> {
        crate::block_on::block_on_here(None, self.call_with_timeout(req, timeout))
    }

    /// Whether the channel is closed (no server left, or one closed it).
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Number of requests waiting in the queue.
    pub fn queue_len(&self) -> usize {
        self.tx.len()
    }

    /// The queue's capacity.
    pub fn capacity(&self) -> usize {
        self.tx.capacity().unwrap_or(usize::MAX)
    }
}

impl<Req, Resp> Clone for BoundaryClient<Req, Resp> {
    fn clone(&self) -> Self {
        BoundaryClient {
            tx: self.tx.clone(),
        }
    }
}

impl<Req, Resp> fmt::Debug for BoundaryClient<Req, Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundaryClient")
            .field("queued", &self.tx.len())
            .field("closed", &self.tx.is_closed())
            .finish()
    }
}

/// A queued call's reply, from [`BoundaryClient::try_call`].
///
/// Resolves to the response, or [`Canceled`](BoundaryError::Canceled) if
/// the server dropped the request unanswered, or
/// [`Closed`](BoundaryError::Closed) if the last server went away before
/// receiving it. Dropping the ticket abandons the call (the server sees
/// [`is_cancelled`](super::BoundaryRequest::is_cancelled)). Put a time limit
/// on it with [`time::timeout`](crate::time::timeout).
#[must_use = "dropping the ticket abandons the call"]
pub struct BoundaryTicket<Resp> {
    rx: oneshot::Receiver<Result<Resp, BoundaryError>>,
}

impl<Resp> BoundaryTicket<Resp> {
    /// The reply if it has arrived: `Ok(None)` while still waiting.
    ///
    /// # Errors
    /// As awaiting the ticket. After an `Err` or `Ok(Some(_))`, the ticket
    /// is spent: later calls return [`Canceled`](BoundaryError::Canceled).
    pub fn try_get(&mut self) -> Result<Option<Resp>, BoundaryError> {
        match self.rx.try_recv() {
            Ok(None) => Ok(None),
            Ok(Some(r)) => r.map(Some),
            Err(oneshot::Canceled) => Err(BoundaryError::Canceled),
        }
    }
}

impl<Resp> Future for BoundaryTicket<Resp> {
    type Output = Result<Resp, BoundaryError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(BoundaryError::Canceled)))
    }
}

impl<Resp> fmt::Debug for BoundaryTicket<Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundaryTicket").finish_non_exhaustive()
    }
}
