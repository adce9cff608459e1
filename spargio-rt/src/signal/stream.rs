//! `Signal`: a stream of one signal's deliveries, woken through a read of
//! the registry's eventfd on the ring.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Wake, Waker};

use io_uring::{opcode, squeue::Entry};

use super::kind::SignalKind;
use super::registry;
use crate::driver::{Cqe, Op, OpData};
use crate::io::fd::SharedFd;
use crate::io::ops::CURRENT_POS;

/// A read of the eventfd. It is polled with the broadcast waker, so its
/// completion wakes every listener straight from the driver, whether or
/// not its own task polls it again; if its future was dropped first,
/// `orphaned` does the same. A kick is never swallowed by a listener.
struct KickRead {
    fd: SharedFd,
    buf: Box<u64>,
}

impl OpData for KickRead {
    fn entry(&mut self) -> Entry {
        opcode::Read::new(self.fd.uring(), (&mut *self.buf as *mut u64).cast(), 8)
            .offset(CURRENT_POS)
            .build()
    }

    fn orphaned(&mut self, _cqe: Cqe) {
        registry::wake_all();
    }
}

/// The waker the eventfd reads are polled with: waking it wakes every
/// listener (each registered its own waker with the registry).
struct Broadcast;

impl Wake for Broadcast {
    fn wake(self: Arc<Self>) {
        registry::wake_all();
    }
}

fn broadcast_waker() -> &'static Waker {
    static WAKER: OnceLock<Waker> = OnceLock::new();
    WAKER.get_or_init(|| Waker::from(Arc::new(Broadcast)))
}

/// A stream of one signal's deliveries, from [`signal`](super::signal).
///
/// Each delivery after the `Signal` was made is reported once by
/// [`recv`](Self::recv), to every `Signal` of that kind (the kernel merges
/// deliveries of a signal that arrive while one is still pending).
pub struct Signal {
    kind: SignalKind,
    seen: u64,
    id: u64,
    kick: SharedFd,
    read: Option<Op<KickRead>>,
}

impl std::fmt::Debug for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signal")
            .field("kind", &self.kind)
            .field("seen", &self.seen)
            .field("reading", &self.read.is_some())
            .finish()
    }
}

impl Signal {
    /// A stream that reports deliveries after the `seen`th.
    pub(crate) fn new(kind: SignalKind, kick: SharedFd, seen: u64) -> Signal {
        Signal {
            kind,
            seen,
            id: registry::listener_id(),
            kick,
            read: None,
        }
    }

    /// Which signal this stream reports.
    pub fn kind(&self) -> SignalKind {
        self.kind
    }

    /// Waits for the next delivery. `None` means deliveries can no longer
    /// be read: the runtime is shutting down, or this is polled outside a
    /// runtime. Cancel-safe: a dropped `recv` loses no delivery, for this
    /// or any other listener.
    pub fn recv(&mut self) -> impl Future<Output = Option<()>> + Send + '_ {
        Recv(self)
    }

    /// The polling form of [`recv`](Self::recv).
    ///
    /// A `Pending` result leaves a read of the shared eventfd in flight
    /// (it wakes every listener when it completes, so it never holds up
    /// other listeners); [`stop`](Self::stop) drops it.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<()>> {
        let signum = self.kind.as_raw();
        loop {
            if registry::deliveries(signum) > self.seen {
                self.seen += 1;
                self.stop();
                return Poll::Ready(Some(()));
            }
            registry::listen(self.id, cx.waker());
            // A kick read after the check above but before `listen` woke
            // nobody; its delivery is counted already, so look again.
            if registry::deliveries(signum) > self.seen {
                continue;
            }
            let kick = &self.kick;
            let read = self.read.get_or_insert_with(|| {
                Op::new(KickRead {
                    fd: kick.clone(),
                    buf: Box::new(0),
                })
            });
            // Our own task is woken through the registry, like all others.
            let mut broadcast = Context::from_waker(broadcast_waker());
            let (res, _) = match Pin::new(read).poll(&mut broadcast) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(out) => out,
            };
            self.read = None;
            // Also here: a read that finished before its waker was
            // registered woke nobody.
            registry::wake_all();
            if res.and_then(|c| c.result()).is_err() {
                return Poll::Ready(None);
            }
        }
    }

    /// Drops the eventfd read a `Pending` [`poll_recv`](Self::poll_recv)
    /// left in flight (a kick it already took wakes the other listeners).
    /// Deliveries are still counted; the next `poll_recv` reports them.
    pub fn stop(&mut self) {
        self.read = None;
        registry::forget(self.id);
    }
}

impl futures_core::Stream for Signal {
    type Item = ();

    /// [`Signal::poll_recv`]: one item per delivery.
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<()>> {
        self.poll_recv(cx)
    }
}

/// The future of [`Signal::recv`]: dropping it drops its eventfd read, so
/// no read outlives the `recv` that is waiting on it.
struct Recv<'a>(&'a mut Signal);

impl Future for Recv<'_> {
    type Output = Option<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<()>> {
        self.0.poll_recv(cx)
    }
}

impl Drop for Recv<'_> {
    fn drop(&mut self) {
        self.0.stop();
    }
}

impl Drop for Signal {
    fn drop(&mut self) {
        registry::forget(self.id);
    }
}
