//! [`Server`]: bound listeners plus the settings; `serve` runs it.

use std::future::{poll_fn, Future};
use std::io;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_lock::Semaphore;
use futures_util::future::{select, Either};
use spargio_rt::net::TcpListener;
use spargio_rt::sync::CancellationToken;
use spargio_rt::{RuntimeHandle, ShardId};
use tower_service::Service;

use crate::accept::{accept_loop, AcceptShared, Dispatch, Targets};
use crate::adaptive::AdaptiveTable;
use crate::builder::{AcceptMode, ServerBuilder, ServerConfig};
use crate::conn::{connection, run_connection, take_proxy_header, Accepted, ConnTimeouts};
use crate::conn_end::ConnEnd;
use crate::connection::ConnInfo;
use crate::error::BoxError;
use crate::handler::{HandlerShared, Local, Placed, ServiceHandler};
use crate::listener::{AnyListener, Listener};
use crate::local;
use crate::placement::HandlerPlacement;
use crate::protocol::Protocol;
use crate::shutdown::{ServerState, ShutdownHandle, ShutdownReport};
use crate::stats::{Counters, StatsHandle};

type Signal = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A bound server, ready to [`serve`](Server::serve) a tower service over a
/// [`Protocol`].
///
/// ```
/// use bytes::Bytes;
/// use spargio_service::codec::{Client, LengthDelimited};
/// use spargio_service::Server;
///
/// spargio_rt::run(|handle| async move {
///     let server = Server::builder().bind(&handle, "127.0.0.1:0").unwrap();
///     let addr = server.local_addr();
///     let stop = server.shutdown_handle();
///     // A tower service: upper-cases each request.
///     let service = tower::service_fn(|req: Bytes| async move {
///         Ok::<_, std::convert::Infallible>(Bytes::from(req.to_ascii_uppercase()))
///     });
///     let serving = handle.spawn_local(server.serve_service(LengthDelimited::new(), service));
///
///     let mut client = Client::connect(addr).await.unwrap();
///     let reply = client.call(Bytes::from_static(b"hello")).await.unwrap();
///     assert_eq!(reply.unwrap(), Bytes::from_static(b"HELLO"));
///
///     drop(client);
///     stop.shutdown();
///     let report = serving.await.unwrap().unwrap();
///     assert_eq!(report.cut, 0);
/// })
/// .unwrap();
/// ```
///
/// `L` is the kind of socket it listens on: TCP (the default, from
/// [`ServerBuilder::bind`]) or [`UnixListener`](spargio_rt::net::UnixListener)
/// (from [`ServerBuilder::bind_unix`]). Serving is the same for both.
pub struct Server<L: Listener = TcpListener> {
    cfg: ServerConfig,
    handle: RuntimeHandle,
    listeners: Vec<(ShardId, AnyListener)>,
    local_addr: L::Addr,
    counters: Arc<Counters>,
    closing: CancellationToken,
    signal: Option<Signal>,
    _listener: PhantomData<fn() -> L>,
}

impl Server {
    /// Starts building a server.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::new()
    }
}

impl<L: Listener> Server<L> {
    pub(crate) fn new(
        cfg: ServerConfig,
        handle: RuntimeHandle,
        listeners: Vec<(ShardId, L)>,
    ) -> io::Result<Server<L>> {
        let local_addr = listeners[0].1.listen_addr()?;
        let listeners = listeners
            .into_iter()
            .map(|(shard, l)| (shard, l.into_any()))
            .collect();
        let counters = Counters::new(handle.shard_count());
        Ok(Server {
            cfg,
            handle,
            listeners,
            local_addr,
            counters,
            closing: CancellationToken::new(),
            signal: None,
            _listener: PhantomData,
        })
    }

    /// The address the server listens on: for TCP a `SocketAddr` (the
    /// real port when bound to 0), for a Unix socket its path (or abstract
    /// name).
    pub fn local_addr(&self) -> L::Addr {
        self.local_addr.clone()
    }

    /// The server's live counters.
    pub fn stats(&self) -> StatsHandle {
        StatsHandle(self.counters.clone())
    }

    /// A handle that starts a graceful shutdown from anywhere.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.closing.clone())
    }

    /// Starts a graceful shutdown when `signal` completes, e.g.
    /// `spargio_rt::signal::ctrl_c()`.
    ///
    /// ```no_run
    /// # fn demo(server: spargio_service::Server) -> spargio_service::Server {
    /// server.with_graceful_shutdown(async {
    ///     let _ = spargio_rt::signal::ctrl_c().await;
    /// })
    /// # }
    /// ```
    pub fn with_graceful_shutdown(
        mut self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Self {
        self.signal = Some(Box::pin(signal));
        self
    }

    /// Serves until shutdown: each connection calls `make` (a tower
    /// `MakeService`, such as axum's `into_make_service()`) on its session
    /// shard with the connection's [`ConnInfo`], and the protocol hands its
    /// requests to the service it returns, placed per the builder's
    /// [`HandlerPlacement`](crate::HandlerPlacement).
    ///
    /// Returns when the graceful shutdown is over, with its report: every
    /// connection has ended and every handler future spawned for them is
    /// gone (one the deadline cut in the middle of a long poll on the
    /// background pool ends that poll first; nothing can stop a poll).
    /// Dropping the returned future before that (it lost a `select`, or
    /// its task was aborted) stops the server at once: accepting stops, the
    /// listeners close and open connections are cut.
    pub async fn serve<P, M, S>(self, protocol: P, make: M) -> io::Result<ShutdownReport>
    where
        P: Protocol,
        P::Response: Send,
        M: Service<ConnInfo, Response = S> + Clone + Send + 'static,
        M::Future: 'static,
        M::Error: Into<BoxError>,
        S: Service<P::Request, Response = P::Response> + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError> + Send + 'static,
    {
        let state = ServerState::new(self.closing.clone(), self.counters.clone());
        let adaptive = match self.cfg.placement {
            HandlerPlacement::Adaptive => {
                AdaptiveTable::new(self.cfg.adaptive, self.handle.shard_count())
            }
            _ => AdaptiveTable::unused(),
        };
        let shared = Arc::new(HandlerShared {
            placement: self.cfg.placement,
            adaptive,
            request_timeout: self.cfg.request_timeout,
            counters: self.counters.clone(),
            handle: self.handle.clone(),
            spawned: state.spawned.clone(),
        });
        let idle = ConnTimeouts {
            idle: self.cfg.idle_timeout,
            send: self.cfg.send_timeout,
        };
        let handle = self.handle.clone();
        let make = Mutex::new(make);
        let st = state.clone();
        let proxy = self.cfg.proxy;
        let dispatch: Dispatch = Arc::new(move |acc: Accepted| {
            let shard = acc.guard.shard();
            let protocol = protocol.clone();
            let make = make.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let shared = shared.clone();
            let state = st.clone();
            drop(handle.spawn_local_on(shard, move || async move {
                if state.cut_before_start() {
                    drop(acc);
                    return;
                }
                let mut info = acc.info();
                let Accepted {
                    mut stream, guard, ..
                } = acc;
                let mut make = make;
                let st = state.clone();
                let end = Arc::new(ConnEnd::default());
                let flags = end.clone();
                // Reading a PROXY header and building the service are
                // part of the connection's life: the shutdown deadline
                // cuts them like any other connection.
                let serve = async move {
                    let taken =
                        take_proxy_header(&mut stream, proxy, &mut info, &st.closing, &st.counters);
                    if !matches!(taken.await, Ok(true)) {
                        return Ok(());
                    }
                    // A make-service that is not ready (a limit on it, say)
                    // when the graceful shutdown begins leaves a connection
                    // with no request in progress: it closes now, it is not
                    // left for the deadline to cut.
                    let built = {
                        let building = make_service(&mut make, info.clone());
                        let closing = st.closing.cancelled();
                        futures_util::pin_mut!(building, closing);
                        match select(building, closing).await {
                            Either::Left((built, _)) => built,
                            Either::Right(_) => return Ok(()),
                        }
                    };
                    let Ok(service) = built else {
                        st.counters.make_errors.add(1);
                        return Ok(());
                    };
                    let conn = connection(&st, info, idle, flags);
                    let handler = ServiceHandler::<_, Placed>::new(service, shard, shared);
                    protocol.serve_connection(stream, handler, conn).await
                };
                run_connection(state, guard, end, serve).await;
            }));
        });
        self.run(state, dispatch).await
    }

    /// Serves one service for every connection (cloned per connection): a
    /// shorthand for [`serve`](Self::serve) with a make-service that clones
    /// `service`.
    pub async fn serve_service<P, S>(self, protocol: P, service: S) -> io::Result<ShutdownReport>
    where
        P: Protocol,
        P::Response: Send,
        S: Service<P::Request, Response = P::Response> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError> + Send + 'static,
    {
        self.serve(protocol, CloneService(service)).await
    }

    /// Thread-per-core serving: `factory` builds one service per shard, on
    /// that shard, the first time a connection lands there (`Rc` state is
    /// fine; connections on the shard get clones), and handlers always run
    /// inline on their connection's task.
    ///
    /// Returns when the graceful shutdown is over, with its report, once
    /// every shard has dropped its service. Dropping the returned future
    /// before that stops the server at once, as for
    /// [`serve`](Self::serve), and the shards drop their services soon
    /// after (they are not waited for).
    ///
    /// ```
    /// use bytes::Bytes;
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    /// use spargio_service::codec::{Client, LengthDelimited};
    /// use spargio_service::Server;
    ///
    /// spargio_rt::run(|handle| async move {
    ///     let server = Server::builder().bind(&handle, "127.0.0.1:0").unwrap();
    ///     let addr = server.local_addr();
    ///     let stop = server.shutdown_handle();
    ///     let serving = handle.spawn_local(server.serve_local(LengthDelimited::new(), |_shard| {
    ///         // A per-shard counter: `Rc<Cell<_>>` is not `Send`.
    ///         let hits = Rc::new(Cell::new(0u64));
    ///         tower::service_fn(move |_req: Bytes| {
    ///             hits.set(hits.get() + 1);
    ///             let n = hits.get();
    ///             async move { Ok::<_, std::convert::Infallible>(Bytes::from(n.to_string())) }
    ///         })
    ///     }));
    ///     let mut client = Client::connect(addr).await.unwrap();
    ///     assert_eq!(client.call(Bytes::new()).await.unwrap().unwrap(), Bytes::from("1"));
    ///     assert_eq!(client.call(Bytes::new()).await.unwrap().unwrap(), Bytes::from("2"));
    ///     drop(client);
    ///     stop.shutdown();
    ///     serving.await.unwrap().unwrap();
    /// })
    /// .unwrap();
    /// ```
    pub async fn serve_local<P, F, S>(self, protocol: P, factory: F) -> io::Result<ShutdownReport>
    where
        P: Protocol,
        F: Fn(ShardId) -> S + Send + Sync + 'static,
        S: Service<P::Request, Response = P::Response> + Clone + 'static,
        S::Error: Into<BoxError> + 'static,
    {
        let state = ServerState::new(self.closing.clone(), self.counters.clone());
        // Handlers run inline here: the adaptive table is never consulted.
        let shared = Arc::new(HandlerShared {
            placement: HandlerPlacement::Inline,
            adaptive: AdaptiveTable::unused(),
            request_timeout: self.cfg.request_timeout,
            counters: self.counters.clone(),
            handle: self.handle.clone(),
            spawned: state.spawned.clone(),
        });
        let idle = ConnTimeouts {
            idle: self.cfg.idle_timeout,
            send: self.cfg.send_timeout,
        };
        let handle = self.handle.clone();
        let key = local::server_key();
        let factory = Arc::new(factory);
        let st = state.clone();
        let proxy = self.cfg.proxy;
        let dispatch: Dispatch = Arc::new(move |acc: Accepted| {
            let shard = acc.guard.shard();
            let protocol = protocol.clone();
            let factory = factory.clone();
            let shared = shared.clone();
            let state = st.clone();
            drop(handle.spawn_local_on(shard, move || async move {
                if state.cut_before_start() {
                    // After a dropped serve future nobody would ever drop
                    // a service built now.
                    drop(acc);
                    return;
                }
                let mut info = acc.info();
                let Accepted {
                    mut stream, guard, ..
                } = acc;
                // A factory that panics fails this connection (counted),
                // and runs again for the next one on this shard.
                let built =
                    catch_unwind(AssertUnwindSafe(|| local::service(key, || factory(shard))));
                let Ok(service) = built else {
                    state.counters.make_errors.add(1);
                    drop((stream, guard));
                    return;
                };
                let end = Arc::new(ConnEnd::default());
                let flags = end.clone();
                let st = state.clone();
                let serve = async move {
                    let taken =
                        take_proxy_header(&mut stream, proxy, &mut info, &st.closing, &st.counters);
                    if !matches!(taken.await, Ok(true)) {
                        return Ok(());
                    }
                    let conn = connection(&st, info, idle, flags);
                    let handler = ServiceHandler::<_, Local>::new(service, shard, shared);
                    protocol.serve_connection(stream, handler, conn).await
                };
                run_connection(state.clone(), guard, end, serve).await;
            }));
        });
        let mut services = ForgetServices {
            handle: self.handle.clone(),
            key,
            force: state.force.clone(),
            armed: true,
        };
        let out = self.run(state, dispatch).await;
        // Every connection has ended: the services go now, before `serve`
        // returns. If this future is dropped before then, `services` drops
        // them (without waiting).
        for s in 0..services.handle.shard_count() {
            let _ = services
                .handle
                .spawn_local_on(ShardId(s), move || async move { local::forget(key) })
                .await;
        }
        services.armed = false;
        out
    }

    /// Runs the accept loops until shutdown, then drains connections.
    async fn run(self, state: Arc<ServerState>, dispatch: Dispatch) -> io::Result<ShutdownReport> {
        let Server {
            cfg,
            handle,
            listeners,
            counters,
            closing,
            signal,
            ..
        } = self;
        // If this future is dropped before the shutdown is over, the accept
        // loops (spawned, so not dropped with it) and the connections stop
        // too: no server goes on running with nobody to shut it down.
        let _stop_accepting = closing.clone().drop_guard();
        let _cut_connections = state.force.clone().drop_guard();
        let shards = handle.shard_count();
        let accept = Arc::new(AcceptShared {
            state: state.clone(),
            permits: Arc::new(Semaphore::new(cfg.max_connections)),
            next_id: AtomicU64::new(0),
            nodelay: cfg.nodelay,
            dispatch,
        });
        let mut loops = Vec::with_capacity(listeners.len());
        for (shard, listener) in listeners {
            let targets = match cfg.accept {
                AcceptMode::RoundRobin => Targets::RoundRobin(shards),
                AcceptMode::ReusePort => Targets::One(shard),
                AcceptMode::Pinned(s) => Targets::One(s),
            };
            let shared = accept.clone();
            loops
                .push(handle.spawn_local_on(shard, move || accept_loop(listener, targets, shared)));
        }
        match signal {
            Some(signal) => {
                let asked = closing.cancelled();
                futures_util::pin_mut!(asked);
                let _ = select(signal, asked).await;
            }
            None => closing.cancelled().await,
        }
        closing.cancel();
        for l in loops {
            let _ = l.await;
        }
        // Every connection accepted (the loops are done) and not ended
        // before shutdown started was open at its start.
        let open_at_start = counters
            .accepted
            .get()
            .saturating_sub(state.ended_before_shutdown.get());
        // A timeout too far off to express (`Duration::MAX`) means never.
        let deadline = Instant::now().checked_add(cfg.shutdown_timeout);
        let mut report = ShutdownReport {
            open_at_start,
            ..ShutdownReport::default()
        };
        if !all_closed(&state, deadline).await {
            // Requests that arrived and wait for the service's readiness
            // are cut as surely as those it is working on.
            report.requests_cut = counters
                .in_flight
                .get()
                .saturating_add(counters.awaiting_ready.get());
            state.force.cancel();
            all_closed(&state, None).await;
        }
        // The connections' spawned handlers were aborted with them; each
        // is dropped when its task next runs (one on the background pool
        // finishes the poll it is in). Return only once they are gone, so
        // nothing they hold outlives `serve`.
        state.spawned.all_gone().await;
        report.cut = state.cut.get();
        report.ended_lingering = state.ended_lingering.get();
        report.failed = state.failed.get();
        report.send_timeouts = state.send_timeouts.get();
        report.closed_gracefully = open_at_start
            .saturating_sub(report.cut)
            .saturating_sub(report.failed)
            .saturating_sub(report.send_timeouts);
        let _ = counters.shutdown.set(report);
        Ok(report)
    }
}

/// Drops `serve_local`'s per-shard services when `serve_local`'s future is
/// dropped before it has (it lost a `select`, its task was aborted).
struct ForgetServices {
    handle: RuntimeHandle,
    /// The `serve_local` call's key in each shard's services.
    key: u64,
    /// The server's force-close token.
    force: CancellationToken,
    /// Cleared once the services are dropped.
    armed: bool,
}

impl Drop for ForgetServices {
    /// Cuts the connections first, then has every shard drop its service:
    /// a connection task that runs on a shard after that shard's drop sees
    /// the cut and builds no service again. The shards do this in their
    /// own time (`Drop` cannot wait).
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        self.force.cancel();
        for s in 0..self.handle.shard_count() {
            let key = self.key;
            drop(
                self.handle
                    .spawn_local_on(ShardId(s), move || async move { local::forget(key) }),
            );
        }
    }
}

/// Waits until no connection is open (true) or `deadline` passes (false).
async fn all_closed(state: &ServerState, deadline: Option<Instant>) -> bool {
    loop {
        if state.counters.active.get() == 0 {
            return true;
        }
        let ended = state.conn_ended.listen();
        if state.counters.active.get() == 0 {
            return true;
        }
        match deadline {
            None => ended.await,
            Some(d) => {
                let nap = spargio_rt::time::sleep_until(d);
                futures_util::pin_mut!(nap);
                if let Either::Right(_) = select(ended, nap).await {
                    return state.counters.active.get() == 0;
                }
            }
        }
    }
}

/// Calls a make-service for one connection. A panic in its `poll_ready`,
/// its `call` or the future is an error like any other (the connection
/// closes and counts in `make_errors`), not the end of the connection's
/// task unseen.
async fn make_service<M, S>(make: &mut M, info: ConnInfo) -> Result<S, BoxError>
where
    M: Service<ConnInfo, Response = S>,
    M::Error: Into<BoxError>,
{
    use futures_util::FutureExt;
    let build = async {
        poll_fn(|cx| make.poll_ready(cx))
            .await
            .map_err(Into::into)?;
        make.call(info).await.map_err(Into::into)
    };
    // The make-service is not used again after a panic: the connection
    // ends, and the next one gets its own clone.
    match AssertUnwindSafe(build).catch_unwind().await {
        Ok(built) => built,
        Err(_) => Err("the make-service panicked".into()),
    }
}

/// A make-service that hands every connection a clone of one service.
#[derive(Clone)]
struct CloneService<S>(S);

impl<S: Clone> Service<ConnInfo> for CloneService<S> {
    type Response = S;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<S, std::convert::Infallible>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _info: ConnInfo) -> Self::Future {
        std::future::ready(Ok(self.0.clone()))
    }
}
