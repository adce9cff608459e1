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
