//! Helpers the server test files share.

#![allow(dead_code)]

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use spargio_rt::RuntimeHandle;
use spargio_service::codec::Client;
use spargio_service::{ServerStats, StatsHandle};
use tower::service_fn;

/// Runs `f` on a 2-shard runtime.
pub fn run2<F, Fut, T>(f: F) -> T
where
    F: FnOnce(RuntimeHandle) -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    spargio_rt::run_with(spargio_rt::Runtime::builder().shards(2), f).expect("runtime")
}

/// Burns about `d` of CPU without yielding.
pub fn burn(d: Duration) {
    let start = std::time::Instant::now();
    let mut x = 1u64;
    while start.elapsed() < d {
        for _ in 0..1000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
    }
}

/// A server on `handle` that accepts and serves on shard 0 and spawns its
/// handlers stealable.
pub fn stealable_on_shard_0(handle: &RuntimeHandle) -> spargio_service::Server {
    spargio_service::Server::builder()
        .accept(spargio_service::AcceptMode::Pinned(spargio_rt::ShardId(0)))
        .handler_placement(spargio_service::HandlerPlacement::Stealable)
        .bind(handle, "127.0.0.1:0")
        .unwrap()
}

/// Four clients on shard 1 (away from connections on shard 0) make eight
/// calls each to `addr`, keeping several requests queued at once; the
/// answers.
pub async fn four_clients_from_shard_1(
    handle: &RuntimeHandle,
    addr: std::net::SocketAddr,
) -> Vec<Result<Bytes, (spargio_service::codec::Status, String)>> {
    let mut tasks = Vec::new();
    for _ in 0..4 {
        tasks.push(handle.spawn_pinned(spargio_rt::ShardId(1), async move {
            let mut c = Client::connect(addr).await.unwrap();
            let mut answers = Vec::new();
            for _ in 0..8 {
                answers.push(c.call(Bytes::from_static(b"x")).await.unwrap());
            }
            answers
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.extend(t.await.unwrap());
    }
    answers
}

/// A service that answers every request with the request.
pub fn echo() -> impl tower::Service<
    Bytes,
    Response = Bytes,
    Error = Infallible,
    Future = impl Future<Output = Result<Bytes, Infallible>> + Send,
> + Clone
       + Send {
    service_fn(|req: Bytes| async move { Ok::<_, Infallible>(req) })
}

/// Calls with `payload` and expects an answer with an ok status.
pub async fn ok(client: &mut Client, payload: &'static [u8]) -> Bytes {
    client
        .call(Bytes::from_static(payload))
        .await
        .expect("call")
        .expect("ok status")
}

/// Waits until `stats` show `cond`; panics naming `what` if they do not
/// within 20 s (a hang, not a slow machine).
pub async fn until_stats(stats: &StatsHandle, what: &str, cond: impl Fn(&ServerStats) -> bool) {
    let by = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let s = stats.snapshot();
        if cond(&s) {
            return;
        }
        assert!(std::time::Instant::now() < by, "never: {what}: {s:?}");
        spargio_rt::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Waits until `done()` holds; panics naming `what` if it does not within
/// 20 s (a hang, not a slow machine).
pub async fn until(what: &str, done: impl Fn() -> bool) {
    let by = std::time::Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(std::time::Instant::now() < by, "never: {what}");
        spargio_rt::time::sleep(Duration::from_millis(1)).await;
    }
}

/// An echo that counts each request in `started` as it begins, then
/// sleeps `delay` before answering.
pub fn slow_echo(
    started: Arc<AtomicUsize>,
    delay: Duration,
) -> impl tower::Service<Bytes, Response = Bytes, Error = Infallible, Future: Send> + Clone + Send {
    service_fn(move |req: Bytes| {
        let started = started.clone();
        async move {
            started.fetch_add(1, Ordering::SeqCst);
            spargio_rt::time::sleep(delay).await;
            Ok::<_, Infallible>(req)
        }
    })
}
