//! The server's [`Handler`]s: a tower service behind handler placement,
//! the request timeout, panic containment and the request counters.

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::panic::AssertUnwindSafe;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use spargio_rt::time::Sleep;
use spargio_rt::{JoinHandle, RuntimeHandle, ShardId};
use tower_service::Service;

use crate::adaptive::{AdaptiveTable, Tier};
use crate::error::{BoxError, HandlerError};
use crate::inline_call::{Call, InlineCall};
use crate::measured::{Measured, PollWatch};
use crate::placement::HandlerPlacement;
use crate::protocol::{Handler, RouteKey};
use crate::spawned::SpawnedHandlers;
use crate::stats::Counters;

/// What every handler of one server shares.
pub(crate) struct HandlerShared {
    pub(crate) placement: HandlerPlacement,
    pub(crate) adaptive: AdaptiveTable,
    pub(crate) request_timeout: Option<Duration>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) handle: RuntimeHandle,
    /// The server's spawned handler futures that still exist.
    pub(crate) spawned: Arc<SpawnedHandlers>,
}

impl HandlerShared {
    fn count_failure(&self, e: &HandlerError) {
        self.counters.count_failure(e);
    }

    fn adaptive(&self) -> bool {
        self.placement == HandlerPlacement::Adaptive
    }
}

/// How adaptive placement should treat one inline request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Timing {
    /// Not adaptive: no clock reads.
    Off,
    /// Time its polls for the connection's own record only.
    Connection,
    /// Time its polls, and record them in the route's shared average too.
    Route,
}

impl Timing {
    pub(crate) fn timed(self) -> bool {
        self != Timing::Off
    }
}

impl ConnShared {
    /// Where a request of `route` runs: as the placement says, or
    /// (adaptive) as its route's record says, or, for a request the
    /// protocol gave no route ([`RouteKey::DEFAULT`]), at least where this
    /// connection's last request would have gone. The per-connection rule
    /// catches a connection that turns hot when one route mixes it with
    /// many cheap ones: the route's average stays low, the hot connection's
    /// requests after its first heavy one go where an idle shard (or the
    /// background pool) can take them.
    fn tier(&self, route: RouteKey) -> Tier {
        match self.placement {
            HandlerPlacement::Inline => Tier::Inline,
            HandlerPlacement::Stealable => Tier::Stealable,
            HandlerPlacement::Background => Tier::Background,
            HandlerPlacement::Adaptive => {
                let tier = self.adaptive.tier(self.home, route);
                if route == RouteKey::DEFAULT {
                    tier.max(self.last_tier.get())
                } else {
                    tier
                }
            }
        }
    }

    /// How an inline request of `route` is timed under adaptive placement:
    /// for the route's average (on this shard) until it has a sample, then
    /// one request in [`SAMPLE_EVERY`](crate::adaptive::SAMPLE_EVERY) (the
    /// clock reads are what sampling saves); an unrouted request
    /// ([`RouteKey::DEFAULT`]) always, for its connection's own record.
    /// Timing costs two clock reads per poll.
    fn inline_timing(&self, route: RouteKey) -> Timing {
        if !self.adaptive() {
            Timing::Off
        } else if self.adaptive.should_time(self.home, route) {
            Timing::Route
        } else if route == RouteKey::DEFAULT {
            Timing::Connection
        } else {
            Timing::Off
        }
    }

    /// Whether a spawned request of `route` is recorded in the route's
    /// average: always when the route's own record sent it (a stealable
    /// route learns from every request, so it can come back), else (an
    /// unrouted request its connection's last one sent) as often as the
    /// route's inline requests are, or a hot connection's requests would
    /// weigh [`SAMPLE_EVERY`](crate::adaptive::SAMPLE_EVERY) times the
    /// cheap ones' and move the whole route back and forth.
    fn spawned_records_route(&self, route: RouteKey) -> bool {
        self.adaptive()
            && (self.adaptive.tier(self.home, route) != Tier::Inline
                || self.adaptive.should_time(self.home, route))
    }

    /// Records one adaptive request's longest poll: the connection's
    /// last-request flag, and with `to_route` the route's average.
    pub(crate) fn learn(&self, route: RouteKey, longest: Duration, to_route: bool) {
        if !self.adaptive() {
            return;
        }
        self.last_tier.set(self.adaptive.tier_of_poll(longest));
        if to_route {
            self.adaptive.record(self.home, route, longest);
        }
    }

    /// Whether a handler of `tier` goes to the background pool now. Always
    /// under `HandlerPlacement::Background`; under Adaptive only while the
    /// pool has a free thread and either some shard has run out of work or
    /// the pool is empty: on a saturated machine, heavy requests at a lower
    /// priority would wait there for the CPU while the shards keep taking
    /// cheap ones (closed loop, that took the HTTP skewed mix's p99 from
    /// 1.0x hyper's to 1.65x).
    fn on_background(&self, tier: Tier) -> bool {
        tier == Tier::Background
            && (self.placement == HandlerPlacement::Background
                || (self.handle.background_has_room()
                    && (self.handle.idle_shards() > 0 || self.handle.background_idle())))
    }

    /// Spawns `fut` stealable or on the background pool (`tier`) and waits
    /// for it until `deadline` (the request timeout, started at the call);
    /// dropping the wait aborts it.
    async fn run_spawned<F, T, E>(
        &self,
        route: RouteKey,
        home: ShardId,
        fut: F,
        tier: Tier,
        to_route: bool,
        deadline: Option<Sleep>,
    ) -> Result<T, HandlerError>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: Into<BoxError> + Send + 'static,
    {
        // First polled after its deadline (a protocol that polls late):
        // answer without spawning work whose result nobody will wait for.
        if deadline.as_ref().is_some_and(Sleep::is_elapsed) {
            return Err(HandlerError::TimedOut);
        }
        let watch = self.adaptive().then(|| Arc::new(PollWatch::new()));
        // Learns from the handler's polls however this ends: answered,
        // failed, panicked, timed out, or this wait dropped (a route whose
        // handlers all time out or panic is learned from all the same).
        let _learn = watch.clone().map(|watch| LearnOnExit {
            conn: self,
            route,
            to_route,
            watch,
        });
        let measured = Measured::new(fut, home, watch, self.shared.clone());
        let task = AbortOnDrop(if self.on_background(tier) {
            self.counters.handlers_background.add(1);
            self.handle.spawn_background(measured)
        } else {
            self.counters.handlers_stealable.add(1);
            self.handle.spawn_stealable(measured)
        });
        let Some(joined) = within(deadline, task).await else {
            return Err(HandlerError::TimedOut);
        };
        match joined {
            Ok(out) => out.map_err(|e| HandlerError::Service(e.into())),
            Err(e) if e.is_panic() => Err(HandlerError::from_panic(&*e.into_panic())),
            Err(_) => Err(HandlerError::Cancelled),
        }
    }
}

/// Learns from a spawned handler's [`PollWatch`] when dropped: at the end
/// of the wait for it, however that ends. A handler never polled (aborted
/// before it ran) teaches nothing.
struct LearnOnExit<'a> {
    conn: &'a ConnShared,
    route: RouteKey,
    to_route: bool,
    watch: Arc<PollWatch>,
}

impl Drop for LearnOnExit<'_> {
    fn drop(&mut self) {
        if let Some(longest) = self.watch.longest() {
            self.conn.learn(self.route, longest, self.to_route);
        }
    }
}

/// Runs `fut` until `deadline` fires (`None` when it does first). One
/// future whether or not there is a deadline, polled in place: this wraps
/// every spawned request.
async fn within<F: Future>(deadline: Option<Sleep>, fut: F) -> Option<F::Output> {
    let mut fut = pin!(fut);
    let mut deadline = deadline;
    poll_fn(|cx| {
        if let Poll::Ready(out) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        match deadline.as_mut() {
            Some(sleep) => Pin::new(sleep).poll(cx).map(|()| None),
            None => Poll::Pending,
        }
    })
    .await
}

/// A spawned handler task that is aborted when nobody waits for it any
/// more (request timeout, connection closed).
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, spargio_rt::JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        if !self.0.is_finished() {
            self.0.abort();
        }
    }
}

/// The server's shared state as one connection's handler holds it, so each
/// request clones an `Rc` (no atomic, no cache line shared with other
/// shards) instead of the `Arc`, plus what adaptive placement remembers of
/// this connection.
pub(crate) struct ConnShared {
    shared: Arc<HandlerShared>,
    /// The connection's shard: its adaptive table is that shard's.
    home: usize,
    /// Where the connection's last timed request's longest poll says its
    /// next unrouted request should go.
    last_tier: Cell<Tier>,
}

impl std::ops::Deref for ConnShared {
    type Target = HandlerShared;

    fn deref(&self) -> &HandlerShared {
        &self.shared
    }
}

/// One request from its call to its end: counted in `requests` and
/// `requests_in_flight` (on the connection's shard's slot, so shards do not
/// share a hot cache line) and, when it fails, in the failure counters.
/// `!Send` (it holds an `Rc`): it lives and dies on `home`'s thread, the
/// only writer of `home`'s slots.
pub(crate) struct Tracked {
    pub(crate) shared: Rc<ConnShared>,
    home: ShardId,
}

impl Tracked {
    fn new(shared: &Rc<ConnShared>, home: ShardId) -> Tracked {
        shared.counters.requests.add(home.0, 1);
        shared.counters.in_flight.add(home.0, 1);
        Tracked {
            shared: shared.clone(),
            home,
        }
    }

    pub(crate) fn finished<T>(&self, res: Result<T, HandlerError>) -> Result<T, HandlerError> {
        if let Err(e) = &res {
            self.shared.count_failure(e);
        }
        res
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.shared.counters.in_flight.sub(self.home.0, 1);
    }
}

/// Waits for `poll_ready`, turning an error or a panic into a `HandlerError`.
///
/// A protocol asks for readiness once a request has arrived, so a failure
/// here fails that request: it is counted as a request and as a failed one
/// (on `home`'s slot; this runs on `home`'s thread, like every call of the
/// connection's handler).
async fn ready<S, Req>(
    service: &mut S,
    counters: &Counters,
    home: ShardId,
) -> Result<(), HandlerError>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
{
    // Counted as waiting from its first pending poll until it is ready,
    // fails, or is dropped (the connection closed or was cut).
    let mut waiting = None;
    poll_fn(|cx| {
        let polled = std::panic::catch_unwind(AssertUnwindSafe(|| service.poll_ready(cx)));
        let res = match polled {
            Ok(Poll::Pending) => {
                waiting.get_or_insert_with(|| AwaitingReady::new(counters, home));
                return Poll::Pending;
            }
            Ok(Poll::Ready(res)) => res.map_err(|e| HandlerError::Service(e.into())),
            Err(payload) => Err(HandlerError::from_panic(&*payload)),
        };
        waiting = None;
        if let Err(e) = &res {
            counters.count_refused(home.0, e);
        }
        Poll::Ready(res)
    })
    .await
}

/// A request counted in [`Counters::awaiting_ready`] while it lives, on
/// `home`'s slot (it is created and dropped on `home`'s thread: the
/// connection's task is pinned there).
struct AwaitingReady<'a> {
    counters: &'a Counters,
    home: ShardId,
}

impl<'a> AwaitingReady<'a> {
    fn new(counters: &'a Counters, home: ShardId) -> AwaitingReady<'a> {
        counters.awaiting_ready.add(home.0, 1);
        AwaitingReady { counters, home }
    }
}

impl Drop for AwaitingReady<'_> {
    fn drop(&mut self) {
        self.counters.awaiting_ready.sub(self.home.0, 1);
    }
}

/// Calls the service, containing a panic in `call` itself.
fn start<S, Req>(service: &mut S, req: Req) -> Result<S::Future, HandlerError>
where
    S: Service<Req>,
{
    std::panic::catch_unwind(AssertUnwindSafe(|| service.call(req)))
        .map_err(|payload| HandlerError::from_panic(&*payload))
}

/// [`ServiceHandler`] of `Server::serve`: a `Send` service whose response
/// futures go where [`HandlerPlacement`] says.
pub(crate) struct Placed;

/// [`ServiceHandler`] of `Server::serve_local`: any service, response
/// futures inline.
pub(crate) struct Local;

/// A connection's service with what the server adds around each call;
/// `Mode` is [`Placed`] or [`Local`]. It lives on the connection's shard,
/// so each request takes a cheap `Rc` clone of the server's shared state
/// rather than an atomic `Arc` clone that every shard contends on.
pub(crate) struct ServiceHandler<S, Mode> {
    service: S,
    home: ShardId,
    shared: Rc<ConnShared>,
    _mode: std::marker::PhantomData<Mode>,
}

impl<S, Mode> ServiceHandler<S, Mode> {
    pub(crate) fn new(service: S, home: ShardId, shared: Arc<HandlerShared>) -> Self {
        ServiceHandler {
            service,
            home,
            shared: Rc::new(ConnShared {
                shared,
                home: home.0,
                last_tier: Cell::new(Tier::Inline),
            }),
            _mode: std::marker::PhantomData,
        }
    }
}

impl<S, Req> Handler<Req> for ServiceHandler<S, Placed>
where
    S: Service<Req> + 'static,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Into<BoxError> + Send + 'static,
{
    type Response = S::Response;

    fn ready(&mut self) -> impl Future<Output = Result<(), HandlerError>> {
        ready::<S, Req>(&mut self.service, &self.shared.counters, self.home)
    }

    fn call(
        &mut self,
        route: RouteKey,
        req: Req,
    ) -> impl Future<Output = Result<S::Response, HandlerError>> + 'static {
        let started = start(&mut self.service, req);
        let home = self.home;
        let tracked = Tracked::new(&self.shared, home);
        let tier = tracked.shared.tier(route);
        match started {
            // Boxed: this state holds the service's future twice over
            // (before and inside the spawn) plus the join and the timer, and
            // the call future is moved whole on the inline path too. A
            // stealable request allocates its task anyway.
            Ok(fut) if tier != Tier::Inline => {
                // The request timeout counts from this call, as on the
                // inline path, not from the call future's first poll.
                let deadline = tracked.shared.request_timeout.map(spargio_rt::time::sleep);
                let to_route = tracked.shared.spawned_records_route(route);
                Call::Spawned {
                    call: Box::pin(async move {
                        let res = tracked
                            .shared
                            .run_spawned(route, home, fut, tier, to_route, deadline)
                            .await;
                        tracked.finished(res)
                    }),
                }
            }
            started => {
                let timing = tracked.shared.inline_timing(route);
                let limit = tracked.shared.request_timeout;
                Call::Inline {
                    call: InlineCall::new(started, tracked, route, timing, limit),
                }
            }
        }
    }
}

impl<S, Req> Handler<Req> for ServiceHandler<S, Local>
where
    S: Service<Req> + 'static,
    S::Future: 'static,
    S::Response: 'static,
    S::Error: Into<BoxError> + 'static,
{
    type Response = S::Response;

    fn ready(&mut self) -> impl Future<Output = Result<(), HandlerError>> {
        ready::<S, Req>(&mut self.service, &self.shared.counters, self.home)
    }

    fn call(
        &mut self,
        route: RouteKey,
        req: Req,
    ) -> impl Future<Output = Result<S::Response, HandlerError>> + 'static {
        let started = start(&mut self.service, req);
        let tracked = Tracked::new(&self.shared, self.home);
        let timing = tracked.shared.inline_timing(route);
        let limit = tracked.shared.request_timeout;
        InlineCall::new(started, tracked, route, timing, limit)
    }
}

#[cfg(test)]
#[path = "handler_tests.rs"]
mod tests;
