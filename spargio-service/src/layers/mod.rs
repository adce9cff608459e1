//! Runtime-native tower layers: [`Timeout`], [`RateLimit`],
//! [`ConcurrencyLimit`] and [`LoadShed`].
//!
//! tower's own `timeout` and `rate_limit` layers sleep on tokio's timer,
//! which does not run on spargio-rt. These layers use spargio-rt's timers
//! ([`spargio_rt::time`]) and runtime-agnostic synchronisation instead, and
//! their response futures are `Send` whenever the inner service's are, so
//! stealable handlers can run them on any shard.
//!
//! | layer | waits in `poll_ready` for | error |
//! |---|---|---|
//! | [`TimeoutLayer`] | (the inner service) | `BoxError`: inner or [`Elapsed`] |
//! | [`RateLimitLayer`] | a slot in the current window (a timer) | the inner service's |
//! | [`ConcurrencyLimitLayer`] | a permit (a semaphore) | the inner service's |
//! | [`LoadShedLayer`] | never: rejects instead | `BoxError`: inner or [`Overloaded`] |
//!
//! The limits are shared by all clones of a wrapped service (a server that
//! clones the service per connection limits the whole server). tower's
//! runtime-agnostic layers (`map_request`, `filter`, tower's `load_shed`
//! and `limit::ConcurrencyLimit`, `buffer` with its worker spawned on
//! spargio-rt, ...) work unchanged alongside these.
//!
//! ```
//! use std::time::Duration;
//! use spargio_service::layers::{
//!     ConcurrencyLimitLayer, LoadShedLayer, RateLimitLayer, TimeoutLayer,
//! };
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! spargio_rt::run(|_| async {
//!     let svc = ServiceBuilder::new()
//!         .layer(LoadShedLayer::new())
//!         .layer(TimeoutLayer::new(Duration::from_secs(1)))
//!         .layer(ConcurrencyLimitLayer::new(64))
//!         .layer(RateLimitLayer::new(1000, Duration::from_secs(1)))
//!         .map_request(|s: &str| s.len())
//!         .service_fn(|n: usize| async move { Ok::<_, std::convert::Infallible>(n * 2) });
//!     assert_eq!(svc.oneshot("four").await.unwrap(), 8);
//! })
//! .unwrap();
//! ```

mod concurrency;
mod error;
mod load_shed;
mod permits;
mod rate_limit;
mod timeout;

pub use concurrency::{ConcurrencyLimit, ConcurrencyLimitFuture, ConcurrencyLimitLayer};
pub use error::{Elapsed, Overloaded};
pub use load_shed::{LoadShed, LoadShedFuture, LoadShedLayer};
pub use rate_limit::{Rate, RateLimit, RateLimitLayer};
pub use timeout::{Timeout, TimeoutFuture, TimeoutLayer};
