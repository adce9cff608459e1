//! [`RateLimitLayer`] and [`RateLimit`]: at most `num` calls per `per`.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use spargio_rt::time::Sleep;
use tower_layer::Layer;
use tower_service::Service;

/// A rate: `num` requests per `per`.
///
/// ```
/// use std::time::Duration;
/// use spargio_service::layers::Rate;
///
/// let rate = Rate::new(100, Duration::from_secs(1));
/// assert_eq!(rate.num(), 100);
/// assert_eq!(rate.per(), Duration::from_secs(1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    num: u64,
    per: Duration,
}

impl Rate {
    /// `num` requests per `per`.
    ///
    /// # Panics
    ///
    /// If `num` is 0 or `per` is zero.
    pub fn new(num: u64, per: Duration) -> Rate {
        assert!(num > 0, "Rate::new: num must be at least 1");
        assert!(per > Duration::ZERO, "Rate::new: per must not be zero");
        Rate { num, per }
    }

    /// Requests per window.
    pub fn num(&self) -> u64 {
        self.num
    }

    /// The window's length.
    pub fn per(&self) -> Duration {
        self.per
    }
}

/// Wraps services in a [`RateLimit`] of `num` requests per `per`.
///
/// Each service the layer wraps gets its own limit; clones of that service
/// share it.
///
/// ```
/// use std::time::{Duration, Instant};
/// use spargio_service::layers::RateLimitLayer;
/// use tower::{Service, ServiceBuilder, ServiceExt};
///
/// spargio_rt::run(|_| async {
///     let per = Duration::from_millis(10);
///     let mut svc = ServiceBuilder::new()
///         .layer(RateLimitLayer::new(2, per))
///         .service_fn(|x: u32| async move { Ok::<_, std::convert::Infallible>(x) });
///     let start = Instant::now();
///     for i in 0..3 {
///         // The third call waits for the second window.
///         assert_eq!(svc.ready().await.unwrap().call(i).await.unwrap(), i);
///     }
///     assert!(start.elapsed() >= per);
/// })
/// .unwrap();
/// ```
#[derive(Clone, Copy, Debug)]
pub struct RateLimitLayer {
    rate: Rate,
}

impl RateLimitLayer {
    /// A layer of `num` requests per `per`.
    ///
    /// # Panics
    ///
    /// If `num` is 0 or `per` is zero.
    pub fn new(num: u64, per: Duration) -> RateLimitLayer {
        RateLimitLayer {
            rate: Rate::new(num, per),
        }
    }

    /// A layer of `rate`.
    pub fn with_rate(rate: Rate) -> RateLimitLayer {
        RateLimitLayer { rate }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> RateLimit<S> {
        RateLimit::new(inner, self.rate)
    }
}

/// Lets at most [`Rate::num`] calls through per [`Rate::per`], in fixed
/// windows.
///
/// # Semantics
///
/// * **Fixed windows, opened on demand.** A window opens at the first
///   `poll_ready` after the previous window has ended (or at the first one
///   ever) and lasts `per`. It holds `num` slots. There is no carry-over: an
///   idle window's unused slots are lost, and no burst larger than `num` is
///   ever admitted within one window. (Like tower's `RateLimit`; unlike a
///   token bucket, two full windows back to back can admit up to `2 * num`
///   calls within a span just over `per`.)
/// * **A slot is taken by `poll_ready`.** When `poll_ready` returns
///   `Ready(Ok)`, the service holds a slot of the current window, which the
///   next [`call`](Service::call) uses. A service dropped while holding an
///   unused slot gives it back to its window (if that window is still the
///   current one), and a clone waiting for a slot of that window is woken
///   to take it (the longest waiting first; one woken clone per slot). A
///   woken clone dropped before it takes the slot passes the wake-up on;
///   one that is kept but never polled again holds it until the window
///   ends. A call counts against the window its slot came from.
/// * **Waiting is a timer, never a spin.** When the window is used up,
///   `poll_ready` returns `Pending` with a spargio-rt timer set for the
///   window's end, and tries again when it fires.
/// * **Clones share the limit.** All clones of a `RateLimit` draw from the
///   same windows, so a server that clones the service per connection
///   limits the whole server, not each connection. Wrap services
///   separately (one [`RateLimitLayer::layer`] each) for separate limits.
/// * The inner service's readiness is polled after a slot is taken; if it
///   is not ready, the slot goes back to its window before `poll_ready`
///   returns `Pending`, so a service that waits (or that a `LoadShed`
///   gives up on) holds no slot. A slot whose window ended before the
///   call (ready, then not called for a while) is exchanged for one of the
///   current window at the next `poll_ready`. Its errors and its response
///   future pass through unchanged.
///
/// # Panics
///
/// [`call`](Service::call) panics unless `poll_ready` returned `Ready(Ok)`
/// since the last call, as the `Service` contract requires.
///
/// ```
/// use std::time::Duration;
/// use spargio_service::layers::{Rate, RateLimit};
/// use tower::{service_fn, ServiceExt};
///
/// spargio_rt::run(|_| async {
///     let echo = service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x) });
///     let svc = RateLimit::new(echo, Rate::new(10, Duration::from_secs(1)));
///     assert_eq!(svc.oneshot(3).await.unwrap(), 3);
/// })
/// .unwrap();
/// ```
#[derive(Debug)]
pub struct RateLimit<S> {
    inner: S,
    slot: Slot,
    sleep: Option<Sleep>,
}

/// The windows all clones of one `RateLimit` share.
#[derive(Debug)]
struct Shared {
    rate: Rate,
    window: Mutex<Window>,
    /// The next clone's [`Slot::id`].
    next_id: AtomicU64,
}

#[derive(Debug)]
struct Window {
    /// Counts windows, so a returned slot finds its own.
    epoch: u64,
    /// When the current window ends (in the past: no window is open).
    end: Instant,
    /// Slots left in the current window.
    remaining: u64,
    /// Services that found the current window used up, each listed once,
    /// oldest first: a slot handed back wakes the oldest one not woken yet
    /// (the rest wait for the window's end, on their own timers). A service
    /// leaves the list when it takes a slot or is dropped, so the list
    /// holds no waker of a task that no longer waits (which would keep
    /// that task's allocation alive, and take the wake-up of a slot handed
    /// back from a service that does wait); one dropped after it was woken
    /// passes its wake-up on. Cleared when a window opens.
    waiting: VecDeque<Waiter>,
}

/// A service waiting for a slot of the current window.
#[derive(Debug)]
struct Waiter {
    /// The service's [`Slot::id`].
    id: u64,
    waker: Waker,
    /// Woken for a slot handed back, and not polled since.
    woken: bool,
}

impl Window {
    /// Takes service `id` off the waiting list; if it had been woken for
    /// a slot it never took, the wake-up goes to the next waiter.
    fn unlist(&mut self, id: u64) -> Option<Waker> {
        let at = self.waiting.iter().position(|w| w.id == id)?;
        let gone = self.waiting.remove(at)?;
        if gone.woken {
            self.wake_next()
        } else {
            None
        }
    }

    /// The waker of the oldest waiter not yet woken, marked woken, while
    /// fewer waiters are woken than slots are free (each woken waiter is
    /// on its way to take one).
    fn wake_next(&mut self) -> Option<Waker> {
        let woken = self.waiting.iter().filter(|w| w.woken).count() as u64;
        if woken >= self.remaining {
            return None;
        }
        let next = self.waiting.iter_mut().find(|w| !w.woken)?;
        next.woken = true;
        Some(next.waker.clone())
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Window> {
        // The critical sections cannot panic; a poisoned lock is still sound.
        self.window.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One service's claim on the shared windows: the slot it holds, if any.
/// Dropping it hands an unused slot back.
#[derive(Debug)]
struct Slot {
    shared: Arc<Shared>,
    /// The epoch of the window the held slot belongs to.
    held: Option<u64>,
    /// This service's key in [`Window::waiting`], unique among the clones.
    id: u64,
    /// Whether this service may be on the waiting list (it was listed and
    /// has not taken itself off since; the list may have been cleared or
    /// its entry woken meanwhile).
    listed: bool,
}

impl Slot {
    /// Takes a slot, or returns the end of the (used-up) current window
    /// and lists `waker` to be woken if a slot of it is handed back.
    fn try_take(&mut self, waker: &Waker) -> Result<(), Instant> {
        let now = Instant::now();
        let rate = self.shared.rate;
        let mut w = self.shared.lock();
        if now >= w.end {
            w.epoch += 1;
            w.end = now
                .checked_add(rate.per)
                .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365 * 30));
            w.remaining = rate.num;
            // Everyone listed waits on a timer for this moment anyway.
            w.waiting.clear();
        }
        if w.remaining == 0 {
            let id = self.id;
            match w.waiting.iter_mut().find(|listed| listed.id == id) {
                // Woken and beaten to the slot: it keeps its place.
                Some(listed) => {
                    listed.waker.clone_from(waker);
                    listed.woken = false;
                }
                None => w.waiting.push_back(Waiter {
                    id,
                    waker: waker.clone(),
                    woken: false,
                }),
            }
            self.listed = true;
            return Err(w.end);
        }
        w.remaining -= 1;
        self.held = Some(w.epoch);
        if std::mem::take(&mut self.listed) {
            // Whether it was woken or not, one slot went to one waiter:
            // no wake-up to pass on.
            if let Some(at) = w.waiting.iter().position(|listed| listed.id == self.id) {
                w.waiting.remove(at);
            }
        }
        Ok(())
    }

    /// A slot of no service yet, sharing `shared`'s windows.
    fn new(shared: Arc<Shared>) -> Slot {
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        Slot {
            shared,
            held: None,
            id,
            listed: false,
        }
    }
}

impl Slot {
    /// Hands an unused slot back to its window, if that window is still
    /// the current one, and wakes a service waiting for one. (A woken
    /// service that takes it and then finds its inner service not ready
    /// hands it back in turn, waking the next: each waiter is woken once,
    /// so this cannot go round in a loop.)
    fn give_back(&mut self) {
        if let Some(epoch) = self.held.take() {
            let mut w = self.shared.lock();
            if w.epoch == epoch {
                w.remaining += 1;
                let next = w.wake_next();
                drop(w);
                if let Some(waker) = next {
                    waker.wake();
                }
            }
        }
    }

    /// Whether the held slot belongs to a window that has ended.
    fn is_stale(&self) -> bool {
        self.held.is_some_and(|epoch| {
            let w = self.shared.lock();
            epoch != w.epoch || Instant::now() >= w.end
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.give_back();
        if self.listed {
            let next = self.shared.lock().unlist(self.id);
            if let Some(waker) = next {
                waker.wake();
            }
        }
    }
}

impl<S> RateLimit<S> {
    /// Wraps `inner` in a new limit of `rate`.
    pub fn new(inner: S, rate: Rate) -> RateLimit<S> {
        let shared = Arc::new(Shared {
            rate,
            window: Mutex::new(Window {
                epoch: 0,
                end: Instant::now(),
                remaining: 0,
                waiting: VecDeque::new(),
            }),
            next_id: AtomicU64::new(0),
        });
        RateLimit {
            inner,
            slot: Slot::new(shared),
            sleep: None,
        }
    }

    /// A [`RateLimitLayer`] of `num` requests per `per`.
    ///
    /// # Panics
    ///
    /// If `num` is 0 or `per` is zero.
    pub fn layer(num: u64, per: Duration) -> RateLimitLayer {
        RateLimitLayer::new(num, per)
    }

    /// The limit.
    pub fn rate(&self) -> Rate {
        self.slot.shared.rate
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service (handing back an unused slot).
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone> Clone for RateLimit<S> {
    /// A clone sharing this service's limit; it holds no slot of its own.
    fn clone(&self) -> Self {
        RateLimit {
            inner: self.inner.clone(),
            slot: Slot::new(self.slot.shared.clone()),
            sleep: None,
        }
    }
}

impl<S, Req> Service<Req> for RateLimit<S>
where
    S: Service<Req>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        if self.slot.is_stale() {
            // A slot from a window that has ended (ready, then not called
            // for a while) would let this call into a later window beyond
            // its `num`: take one of the current window instead.
            self.slot.held = None;
        }
        while self.slot.held.is_none() {
            match self.slot.try_take(cx.waker()) {
                Ok(()) => self.sleep = None,
                Err(end) => {
                    let sleep = self.sleep.get_or_insert_with(|| Sleep::until(end));
                    sleep.reset(end);
                    if Pin::new(sleep).poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    // The window has ended; the next try opens a new one
                    // (unless another clone just did and used it up).
                }
            }
        }
        let ready = self.inner.poll_ready(cx);
        if ready.is_pending() {
            // Never wait holding a slot: a caller that gives up on a
            // service that is not ready (`LoadShed`, an idle connection)
            // would keep it from the others.
            self.slot.give_back();
        }
        ready
    }

    fn call(&mut self, req: Req) -> S::Future {
        self.slot.held.take().expect(
            "RateLimit::call without a slot: poll_ready must return Ready(Ok) before each call",
        );
        self.inner.call(req)
    }
}
