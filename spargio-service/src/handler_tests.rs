//! Adaptive placement learns from every call, however it ends: a spawned
//! handler that times out or panics, an inline call dropped half way.

use std::convert::Infallible;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use spargio_rt::{RuntimeHandle, ShardId};

use super::{HandlerShared, Placed, ServiceHandler};
use crate::adaptive::{AdaptiveTable, Tier};
use crate::error::HandlerError;
use crate::placement::{AdaptiveConfig, HandlerPlacement};
use crate::protocol::{Handler, RouteKey};
use crate::spawned::SpawnedHandlers;
use crate::stats::Counters;

const ROUTE: RouteKey = RouteKey(7);

/// Stealable from 1 ms polls, background from 4 ms.
fn config() -> AdaptiveConfig {
    AdaptiveConfig {
        heavy_poll: Duration::from_millis(1),
        background_poll: Some(Duration::from_millis(4)),
        ..AdaptiveConfig::default()
    }
}

fn shared(request_timeout: Option<Duration>) -> Arc<HandlerShared> {
    Arc::new(HandlerShared {
        placement: HandlerPlacement::Adaptive,
        adaptive: AdaptiveTable::new(config(), 1),
        request_timeout,
        counters: Counters::new(1),
        handle: RuntimeHandle::current(),
        spawned: Arc::new(SpawnedHandlers::default()),
    })
}

fn burn(d: Duration) {
    let until = Instant::now() + d;
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

/// How a [`Burner`]'s response future ends after its burn.
#[derive(Clone, Copy)]
enum Then {
    /// Waits for ever.
    Hang,
    /// Panics.
    Panic,
}

/// A service whose response future burns `burn` in its first poll, then
/// does `then`.
#[derive(Clone, Copy)]
struct Burner {
    burn: Duration,
    then: Then,
}

impl tower_service::Service<()> for Burner {
    type Response = ();
    type Error = Infallible;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<(), Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: ()) -> Self::Future {
        let Burner { burn: d, then } = *self;
        Box::pin(async move {
            burn(d);
            match then {
                Then::Hang => std::future::pending::<()>().await,
                Then::Panic => panic!("the handler panicked after its burn"),
            }
            Ok(())
        })
    }
}

fn handler(service: Burner, shared: &Arc<HandlerShared>) -> ServiceHandler<Burner, Placed> {
    ServiceHandler::new(service, ShardId(0), shared.clone())
}

#[spargio_rt::test(shards = 1)]
async fn an_inline_call_dropped_half_way_is_learned_from() {
    let shared = shared(None);
    let mut h = handler(
        Burner {
            burn: Duration::from_millis(3),
            then: Then::Hang,
        },
        &shared,
    );
    // The route has no sample yet: the call runs inline and is timed.
    {
        let mut call = pin!(h.call(ROUTE, ()));
        let polled = poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx).is_pending())).await;
        assert!(polled, "the call waits after its burn");
        // Dropped here, unfinished, as when its connection fails.
    }
    assert_eq!(
        shared.adaptive.tier(0, ROUTE),
        Tier::Stealable,
        "the dropped call's 3 ms poll was not learned"
    );
}

/// Makes `ROUTE` stealable (one 2 ms sample), then makes calls whose
/// handler burns 8 ms and then `then`s, each of which must fail; gives how
/// many it took until the route was on the background pool (`None`: not
/// within 8).
async fn calls_until_background(then: Then, timeout: Option<Duration>) -> Option<usize> {
    let shared = shared(timeout);
    shared.adaptive.record(0, ROUTE, Duration::from_millis(2));
    assert_eq!(shared.adaptive.tier(0, ROUTE), Tier::Stealable);
    let mut h = handler(
        Burner {
            burn: Duration::from_millis(8),
            then,
        },
        &shared,
    );
    for n in 1..=8 {
        let res = h.call(ROUTE, ()).await;
        match (then, res) {
            (Then::Hang, Err(HandlerError::TimedOut)) => {}
            (Then::Panic, Err(HandlerError::Panicked(_))) => {}
            (_, other) => panic!("call {n} ended with {other:?}"),
        }
        if shared.adaptive.tier(0, ROUTE) == Tier::Background {
            return Some(n);
        }
    }
    None
}

#[spargio_rt::test(shards = 1)]
async fn spawned_handlers_that_time_out_are_learned_from() {
    let took = calls_until_background(Then::Hang, Some(Duration::from_millis(30))).await;
    assert!(took.is_some(), "8 ms polls that timed out were not learned");
}

#[spargio_rt::test(shards = 1)]
async fn spawned_handlers_that_panic_are_learned_from() {
    let took = calls_until_background(Then::Panic, None).await;
    assert!(took.is_some(), "8 ms polls that panicked were not learned");
}
