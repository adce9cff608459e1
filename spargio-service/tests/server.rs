//! The server end to end over loopback TCP with the length-delimited codec:
//! accept modes, session shards, handler placement, limits, timeouts,
//! shutdown, panics.

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use spargio_rt::sync::CancellationToken;
use spargio_rt::{RuntimeHandle, ShardId};
use spargio_service::codec::{Client, LengthDelimited, Status};
use spargio_service::{
    AcceptMode, AdaptiveConfig, ConnInfo, Connection, Handler, HandlerPlacement, Protocol, Server,
    ServerBuilder, ShutdownHandle, ShutdownReport, StatsHandle,
};
use tower::service_fn;

mod common;
use common::{
    burn, echo, four_clients_from_shard_1, ok, run2, slow_echo, stealable_on_shard_0, until_stats,
};

/// Starts `server` with `service` on a local task; returns the wait for
/// its report.
fn start<S>(
    handle: &RuntimeHandle,
    server: Server,
    service: S,
) -> spargio_rt::JoinHandle<std::io::Result<ShutdownReport>>
where
    S: tower::Service<Bytes, Response = Bytes> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<spargio_service::BoxError> + Send + 'static,
{
    handle.spawn_local(server.serve_service(LengthDelimited::new(), service))
}

#[test]
fn round_robin_spreads_connections_evenly_over_shards() {
    run2(|handle| async move {
        let server = Server::builder().bind(&handle, "127.0.0.1:0").unwrap();
        let addr = server.local_addr();
        let stats = server.stats();
        let stop = server.shutdown_handle();
        // The service answers with the shard its connection lives on.
        let make = service_fn(|info: spargio_service::ConnInfo| async move {
            let shard = info.shard.0;
            Ok::<_, Infallible>(service_fn(move |_req: Bytes| async move {
                Ok::<_, Infallible>(Bytes::from(vec![shard as u8]))
            }))
        });
        let serving = handle.spawn_local(server.serve(LengthDelimited::new(), make));
        let mut clients = Vec::new();
        let mut per_shard = [0usize; 2];
        for _ in 0..10 {
            let mut c = Client::connect(addr).await.unwrap();
            let shard = ok(&mut c, b"?").await[0] as usize;
            per_shard[shard] += 1;
            clients.push(c);
        }
        assert_eq!(per_shard, [5, 5]);
        let s = stats.snapshot();
        assert_eq!(s.accepted, 10);
        assert_eq!(s.accepted_per_shard, vec![5, 5]);
        assert_eq!(s.active_per_shard, vec![5, 5]);
        drop(clients);
        stop.shutdown();
        let report = serving.await.unwrap().unwrap();
        assert_eq!(report.cut, 0);
        assert_eq!(stats.snapshot().active, 0);
    });
}

/// A protocol wrapper that checks, at every poll of the connection's
/// future (where all its socket ops are submitted), that it runs on the
/// connection's session shard.
#[derive(Clone)]
struct ShardChecked {
    inner: LengthDelimited,
    wrong: Arc<AtomicUsize>,
    polls: Arc<AtomicUsize>,
}

impl Protocol for ShardChecked {
    type Request = Bytes;
    type Response = Bytes;

    fn serve_connection<H>(
        &self,
        stream: spargio_rt::net::SocketStream,
        handler: H,
        conn: Connection,
    ) -> impl Future<Output = std::io::Result<()>>
    where
        H: Handler<Bytes, Response = Bytes>,
    {
        let home = conn.info().shard;
        let wrong = self.wrong.clone();
        let polls = self.polls.clone();
        let mut fut = Box::pin(self.inner.serve_connection(stream, handler, conn));
        std::future::poll_fn(move |cx| {
            polls.fetch_add(1, Ordering::Relaxed);
            if RuntimeHandle::current().current_shard() != Some(home) {
                wrong.fetch_add(1, Ordering::Relaxed);
            }
            fut.as_mut().poll(cx)
        })
    }
}

#[test]
fn connection_io_stays_on_its_shard_while_stealable_handlers_run_elsewhere() {
    run2(|handle| async move {
        let server = stealable_on_shard_0(&handle);
        let addr = server.local_addr();
        let stats = server.stats();
        let stop = server.shutdown_handle();
        let handler_shards = Arc::new(Mutex::new(Vec::new()));
        let seen = handler_shards.clone();
        let service = service_fn(move |_req: Bytes| {
            let seen = seen.clone();
            async move {
                burn(Duration::from_millis(3));
                let shard = RuntimeHandle::current().current_shard().unwrap();
                seen.lock().unwrap().push(shard);
                Ok::<_, Infallible>(Bytes::from(vec![shard.0 as u8]))
            }
        });
        let protocol = ShardChecked {
            inner: LengthDelimited::new(),
            wrong: Arc::new(AtomicUsize::new(0)),
            polls: Arc::new(AtomicUsize::new(0)),
        };
        let (wrong, polls) = (protocol.wrong.clone(), protocol.polls.clone());
        let serving = handle.spawn_local(server.serve_service(protocol, service));
        for answer in four_clients_from_shard_1(&handle, addr).await {
            answer.unwrap();
        }
        stop.shutdown();
        serving.await.unwrap().unwrap();
        assert!(polls.load(Ordering::Relaxed) > 0);
        assert_eq!(
            wrong.load(Ordering::Relaxed),
            0,
            "connection polled off its shard"
        );
        let shards = handler_shards.lock().unwrap().clone();
        assert_eq!(shards.len(), 32);
        assert!(
            shards.contains(&ShardId(1)),
            "no handler ran away from shard 0: {shards:?} {:?} {:?}",
            stats.snapshot(),
            handle.stats()
        );
        let s = stats.snapshot();
        assert_eq!(s.accepted_per_shard, vec![4, 0]);
        assert_eq!(s.handlers_stealable, 32);
        assert!(s.handler_steals > 0);
    });
}

#[test]
fn reuse_port_listeners_on_every_shard_serve_the_same_port() {
    run2(|handle| async move {
        let server = Server::builder()
            .accept(AcceptMode::ReusePort)
            .bind(&handle, "127.0.0.1:0")
            .unwrap();
        let addr = server.local_addr();
        let stats = server.stats();
        let stop = server.shutdown_handle();
        let serving = start(&handle, server, echo());
        let mut clients = Vec::new();
        for _ in 0..16 {
            let mut c = Client::connect(addr).await.unwrap();
            assert_eq!(ok(&mut c, b"hi").await, Bytes::from_static(b"hi"));
            clients.push(c);
        }
        let s = stats.snapshot();
        assert_eq!(s.accepted, 16);
        assert_eq!(s.accepted_per_shard.iter().sum::<u64>(), 16);
        drop(clients);
        stop.shutdown();
        serving.await.unwrap().unwrap();
    });
}

#[test]
fn reuse_port_below_the_limit_serves_a_connection_on_any_shard() {
    // One place, a listener per shard: the kernel spreads connections over
    // both listeners by their ports. Every connection, opened after the
    // previous one closed, must be served, whichever shard it landed on
    // (an idle accept that held the place starved the other shard's).
    run2(|handle| async move {
        let server = Server::builder()
            .accept(AcceptMode::ReusePort)
            .max_connections(1)
            .bind(&handle, "127.0.0.1:0")
            .unwrap();
        let addr = server.local_addr();
        let stats = server.stats();
        let stop = server.shutdown_handle();
        let serving = start(&handle, server, echo());
        for i in 0..24u64 {
            let mut c = Client::connect(addr).await.unwrap();
            let answered = spargio_rt::time::timeout(Duration::from_secs(20), ok(&mut c, b"hi"))
                .await
                .unwrap_or_else(|_| panic!("connection {i} was never served below the limit"));
            assert_eq!(answered, Bytes::from_static(b"hi"));
            drop(c);
            // Its place is free again once the server saw it close.
            common::until("stats.snapshot().active != 0 turns false", || {
                stats.snapshot().active == 0
            })
            .await;
        }
        let s = stats.snapshot();
        assert_eq!(s.accepted, 24);
        assert!(
            s.accepted_per_shard.iter().all(|&n| n > 0),
            "the kernel used both listeners: {:?}",
            s.accepted_per_shard
        );
        stop.shutdown();
        serving.await.unwrap().unwrap();
    });
}

#[test]
fn serve_local_builds_one_service_per_shard_with_rc_state() {
    use std::cell::Cell;
    use std::rc::Rc;
    run2(|handle| async move {
        let server = Server::builder().bind(&handle, "127.0.0.1:0").unwrap();
        let addr = server.local_addr();
        let stop = server.shutdown_handle();
        let built = Arc::new(AtomicUsize::new(0));
        let b = built.clone();
        let serving =
            handle.spawn_local(server.serve_local(LengthDelimited::new(), move |shard| {
                b.fetch_add(1, Ordering::Relaxed);
                let hits = Rc::new(Cell::new(0u8));
                service_fn(move |_req: Bytes| {
                    assert_eq!(RuntimeHandle::current().current_shard(), Some(shard));
                    hits.set(hits.get() + 1);
                    let reply = Bytes::from(vec![shard.0 as u8, hits.get()]);
                    async move { Ok::<_, Infallible>(reply) }
                })
            }));
        // Connections 0 and 2 land on shard 0, 1 and 3 on shard 1: each
        // shard's connections share that shard's counter.
        let mut clients = Vec::new();
        for _ in 0..4 {
            clients.push(Client::connect(addr).await.unwrap());
        }
        let mut replies = Vec::new();
        for c in clients.iter_mut() {
            replies.push(ok(c, b"").await.to_vec());
        }
        assert_eq!(
            replies,
            vec![vec![0, 1], vec![1, 1], vec![0, 2], vec![1, 2]]
        );
        assert_eq!(built.load(Ordering::Relaxed), 2);
        drop(clients);
        stop.shutdown();
        serving.await.unwrap().unwrap();
    });
}

/// A service that is not ready until released, counting calls.
#[derive(Clone)]
struct Gate {
    open: Arc<AtomicBool>,
    waiters: Arc<Mutex<Vec<Waker>>>,
    calls: Arc<AtomicUsize>,
}

impl Gate {
    fn new() -> Gate {
        Gate {
            open: Arc::new(AtomicBool::new(false)),
            waiters: Arc::new(Mutex::new(Vec::new())),
            calls: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn release(&self) {
        self.open.store(true, Ordering::SeqCst);
        for w in self.waiters.lock().unwrap().drain(..) {
            w.wake();
        }
    }
}

impl tower::Service<Bytes> for Gate {
    type Response = Bytes;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Bytes, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        if self.open.load(Ordering::SeqCst) {
            return Poll::Ready(Ok(()));
        }
        self.waiters.lock().unwrap().push(cx.waker().clone());
        if self.open.load(Ordering::SeqCst) {
            return Poll::Ready(Ok(()));
        }
        Poll::Pending
    }

    fn call(&mut self, req: Bytes) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(req))
    }
}

#[test]
fn poll_ready_backpressure_holds_requests_until_the_service_is_ready() {
    run2(|handle| async move {
        let server = Server::builder().bind(&handle, "127.0.0.1:0").unwrap();
        let addr = server.local_addr();
        let stats = server.stats();
        let stop = server.shutdown_handle();
        let gate = Gate::new();
        let serving = start(&handle, server, gate.clone());
        let mut c = Client::connect(addr).await.unwrap();
        c.send(Bytes::from_static(b"one")).await.unwrap();
        c.send(Bytes::from_static(b"two")).await.unwrap();
        until_stats(&stats, "a request waits for readiness", |s| {
            s.requests_awaiting_ready >= 1
        })
        .await;
        // Give the server every chance to (wrongly) call the service.
        spargio_rt::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(gate.calls.load(Ordering::SeqCst), 0);
        assert_eq!(stats.snapshot().requests, 0);
        gate.release();
        assert_eq!(c.recv().await.unwrap().unwrap(), Bytes::from_static(b"one"));
        assert_eq!(c.recv().await.unwrap().unwrap(), Bytes::from_static(b"two"));
        assert_eq!(gate.calls.load(Ordering::SeqCst), 2);
        drop(c);
        stop.shutdown();
        serving.await.unwrap().unwrap();
    });
}

#[test]
fn max_connections_pauses_accepting_and_resumes_when_one_closes() {
    run2(|handle| async move {
        let server = Server::builder()
            .max_connections(2)
            .bind(&handle, "127.0.0.1:0")
            .unwrap();
        let addr = server.local_addr();
        let stats = server.stats();
        let stop = server.shutdown_handle();
        let serving = start(&handle, server, echo());
        let mut a = Client::connect(addr).await.unwrap();
        let mut b = Client::connect(addr).await.unwrap();
        ok(&mut a, b"a").await;
        ok(&mut b, b"b").await;
        // The third connects (the kernel's backlog takes it) but is not
        // served while two are open.
        let mut c = Client::connect(addr).await.unwrap();
        c.send(Bytes::from_static(b"c")).await.unwrap();
        until_stats(&stats, "accepting pauses", |s| s.accept_pauses >= 1).await;
        // (Not a `recv` under a timeout: a cancelled `recv` breaks the
        // client.) Time for a server that wrongly accepts it to do so.
        spargio_rt::time::sleep(Duration::from_millis(100)).await;
        let s = stats.snapshot();
        assert_eq!(s.accepted, 2, "accepted beyond max_connections");
        assert_eq!(s.active, 2);
        assert!(s.accept_pauses >= 1);
        drop(a);
        // Now it is accepted and its queued request answered.
        let reply = c.recv().await.unwrap().unwrap();
        assert_eq!(reply, Bytes::from_static(b"c"));
        assert_eq!(stats.snapshot().accepted, 3);
        drop((b, c));
        stop.shutdown();
        serving.await.unwrap().unwrap();
    });
}

#[test]
fn idle_connections_are_closed_after_the_idle_timeout() {
    run2(|handle| async move {
        let server = Server::builder()
            .idle_timeout(Duration::from_millis(50))
            .bind(&handle, "127.0.0.1:0")
            .unwrap();
        let addr = server.local_addr();
        let stats = server.stats();
        let stop = server.shutdown_handle();
        let serving = start(&handle, server, echo());
        let mut c = Client::connect(addr).await.unwrap();
        ok(&mut c, b"still here").await;
        // Then silence: the server closes, the client reads EOF.
        let err = c.recv().await.expect_err("connection closed by the server");
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof, "{err}");
        assert_eq!(stats.snapshot().idle_timeouts, 1);
        stop.shutdown();
        serving.await.unwrap().unwrap();
    });
}

#[test]
fn a_slow_request_times_out_and_the_connection_keeps_serving() {
    for placement in [HandlerPlacement::Inline, HandlerPlacement::Stealable] {
        run2(move |handle| async move {
            // Long enough for the fast request on a loaded machine; the
            // slow one sleeps 30 s.
            let server = Server::builder()
                .handler_placement(placement)
                .request_timeout(Duration::from_secs(1))
                .bind(&handle, "127.0.0.1:0")
                .unwrap();
            let addr = server.local_addr();
            let stats = server.stats();
            let stop = server.shutdown_handle();
            let service = service_fn(|req: Bytes| async move {
                if &req[..] == b"slow" {
                    spargio_rt::time::sleep(Duration::from_secs(30)).await;
                }
                Ok::<_, Infallible>(req)
            });
            let serving = start(&handle, server, service);
            let mut c = Client::connect(addr).await.unwrap();
            let reply = c.call(Bytes::from_static(b"slow")).await.unwrap();
            assert_eq!(reply.unwrap_err().0, Status::TimedOut, "{placement:?}");
            assert_eq!(ok(&mut c, b"fast").await, Bytes::from_static(b"fast"));
            let s = stats.snapshot();
            assert_eq!(
                (s.request_timeouts, s.requests, s.requests_failed),
                (1, 2, 1)
            );
            assert_eq!(s.requests_in_flight, 0);
            drop(c);
            stop.shutdown();
            serving.await.unwrap().unwrap();
        });
    }
}

/// A protocol that calls the handler once per connection, waits 60 ms
/// before it first polls the call, then records whether that first poll
/// found the request timed out.
#[derive(Clone)]
struct LateFirstPoll {
    timed_out_at_first_poll: Arc<Mutex<Vec<bool>>>,
}

impl Protocol for LateFirstPoll {
    type Request = Bytes;
    type Response = Bytes;

    fn serve_connection<H>(
        &self,
        _stream: spargio_rt::net::SocketStream,
        mut handler: H,
        _conn: Connection,
    ) -> impl Future<Output = std::io::Result<()>>
    where
        H: Handler<Bytes, Response = Bytes>,
    {
        let seen = self.timed_out_at_first_poll.clone();
        async move {
            handler.ready().await.map_err(std::io::Error::other)?;
            let mut call = Box::pin(handler.call(spargio_service::RouteKey::DEFAULT, Bytes::new()));
            spargio_rt::time::sleep(Duration::from_millis(60)).await;
            let first = std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await;
            let timed_out = matches!(
                first,
                Poll::Ready(Err(spargio_service::HandlerError::TimedOut))
            );
            seen.lock().unwrap().push(timed_out);
            Ok(())
        }
    }
}

#[test]
fn the_request_timeout_counts_from_the_call_on_every_placement() {
    // A protocol may poll a call some time after making it; the timeout
    // runs from the call either way (spawned handlers used to start it at
    // their first poll, so they got the protocol's delay on top).
    for placement in [HandlerPlacement::Inline, HandlerPlacement::Stealable] {
        let seen = run2(move |handle| async move {
            let server = Server::builder()
                .handler_placement(placement)
                .request_timeout(Duration::from_millis(30))
                .bind(&handle, "127.0.0.1:0")
                .unwrap();
            let addr = server.local_addr();
            let stop = server.shutdown_handle();
            let protocol = LateFirstPoll {
                timed_out_at_first_poll: Arc::default(),
            };
            let seen = protocol.timed_out_at_first_poll.clone();
            // Never answers: only the timeout ends the call.
            let service =
                service_fn(|_req: Bytes| std::future::pending::<Result<Bytes, Infallible>>());
            let serving = handle.spawn_local(server.serve_service(protocol, service));
            let conn = spargio_rt::net::TcpStream::connect(addr).await.unwrap();
            let mut waited = 0;
            while seen.lock().unwrap().is_empty() {
                // (A guard against a hang, not a timing assertion.)
                assert!(waited < 10_000, "the protocol never polled its call");
                waited += 1;
                spargio_rt::time::sleep(Duration::from_millis(1)).await;
            }
            drop(conn);
            stop.shutdown();
            serving.await.unwrap().unwrap();
            let seen = seen.lock().unwrap().clone();
            seen
        });
        assert_eq!(seen, vec![true], "{placement:?}");
    }
}

#[test]
fn a_panicking_handler_fails_only_its_request() {
    for placement in [
        HandlerPlacement::Inline,
        HandlerPlacement::Stealable,
        HandlerPlacement::Adaptive,
    ] {
        run2(move |handle| async move {
            let server = Server::builder()
                .handler_placement(placement)
                .bind(&handle, "127.0.0.1:0")
                .unwrap();
            let addr = server.local_addr();
            let stats = server.stats();
            let stop = server.shutdown_handle();
            let service = service_fn(|req: Bytes| async move {
                if &req[..] == b"boom" {
                    panic!("handler blew up");
                }
                Ok::<_, Infallible>(req)
            });
            let serving = start(&handle, server, service);
            let mut c = Client::connect(addr).await.unwrap();
            let (status, msg) = c
                .call(Bytes::from_static(b"boom"))
                .await
                .unwrap()
                .unwrap_err();
            assert_eq!(status, Status::Panicked);
            assert!(msg.contains("handler blew up"), "{msg}");
            assert_eq!(ok(&mut c, b"fine").await, Bytes::from_static(b"fine"));
            assert_eq!(stats.snapshot().panics, 1);
            drop(c);
            stop.shutdown();
            serving.await.unwrap().unwrap();
        });
    }
}

/// Echoes each request after `delay`, counting in `started` the requests
/// it has begun.
#[test]
fn graceful_shutdown_lets_slow_requests_finish_before_the_deadline() {
    run2(|handle| async move {
        let (server, addr, stats, stop) = shutting_server(
            &handle,
            HandlerPlacement::Stealable,
            Duration::from_secs(20),
        );
        let started = Arc::new(AtomicUsize::new(0));
        let service = slow_echo(started.clone(), Duration::from_millis(200));
        let serving = start(&handle, server, service);
        let mut busy = Vec::new();
        for _ in 0..3 {
            let mut c = Client::connect(addr).await.unwrap();
            c.send(Bytes::from_static(b"slow")).await.unwrap();
            busy.push(c);
        }
        let idle = Client::connect(addr).await.unwrap();
        common::until(
            "started.load(Ordering::SeqCst) < 3 || stats.snapshot().accepted < 4 turns false",
            || !(started.load(Ordering::SeqCst) < 3 || stats.snapshot().accepted < 4),
        )
        .await;
        stop.shutdown();
        // Every in-flight request is answered, then the server closes.
        for c in busy.iter_mut() {
            assert_eq!(
                c.recv().await.unwrap().unwrap(),
                Bytes::from_static(b"slow")
            );
        }
        let report = serving.await.unwrap().unwrap();
        assert_eq!(report.open_at_start, 4);
        assert_eq!(report.closed_gracefully, 4);
        assert_eq!((report.cut, report.requests_cut), (0, 0));
        // New connections are refused once the listener is gone.
        assert!(spargio_rt::net::TcpStream::connect(addr).await.is_err());
        drop((busy, idle));
    });
}

#[test]
fn a_shutdown_timeout_too_far_off_to_express_means_no_deadline() {
    run2(|handle| async move {
        let server = Server::builder()
            .shutdown_timeout(Duration::MAX)
            .bind(&handle, "127.0.0.1:0")
            .unwrap();
        let addr = server.local_addr();
        let stop = server.shutdown_handle();
        let started = Arc::new(AtomicUsize::new(0));
        let service = slow_echo(started.clone(), Duration::from_millis(50));
        let serving = start(&handle, server, service);
        let mut c = Client::connect(addr).await.unwrap();
        c.send(Bytes::from_static(b"slow")).await.unwrap();
        common::until("started.load(Ordering::SeqCst) < 1 turns false", || {
            started.load(Ordering::SeqCst) >= 1
        })
        .await;
        // Used to panic computing the deadline.
        stop.shutdown();
        let answer = c.recv().await.unwrap().unwrap();
        assert_eq!(answer, Bytes::from_static(b"slow"));
        let report = serving.await.unwrap().unwrap();
        assert_eq!((report.cut, report.closed_gracefully), (0, 1));
    });
}

/// A make-service that is never ready (a limit on building services that
/// never frees up), counting how often it was asked.
#[derive(Clone)]
struct MakeNeverReady(Arc<AtomicUsize>);

fn echo_now(req: Bytes) -> std::future::Ready<Result<Bytes, Infallible>> {
    std::future::ready(Ok(req))
}

type EchoNow = tower::util::ServiceFn<fn(Bytes) -> std::future::Ready<Result<Bytes, Infallible>>>;

impl tower::Service<ConnInfo> for MakeNeverReady {
    type Response = EchoNow;
    type Error = Infallible;
    type Future = std::future::Ready<Result<EchoNow, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Poll::Pending
    }

    fn call(&mut self, _: ConnInfo) -> Self::Future {
        let echo: fn(Bytes) -> std::future::Ready<Result<Bytes, Infallible>> = echo_now;
        std::future::ready(Ok(service_fn(echo)))
    }
}

#[test]
fn a_connection_waiting_for_its_service_closes_at_shutdown_without_being_cut() {
    run2(|handle| async move {
        // Without the graceful close, only this deadline would end it.
        let server = Server::builder()
            .shutdown_timeout(Duration::from_secs(30))
            .bind(&handle, "127.0.0.1:0")
            .unwrap();
        let addr = server.local_addr();
        let stop = server.shutdown_handle();
        let asked = Arc::new(AtomicUsize::new(0));
        let serving =
            handle.spawn_local(server.serve(LengthDelimited::new(), MakeNeverReady(asked.clone())));
        let client = Client::connect(addr).await.unwrap();
        common::until("the make-service was asked", || {
            asked.load(Ordering::SeqCst) >= 1
        })
        .await;
        stop.shutdown();
        let report = serving.await.unwrap().unwrap();
        assert_eq!((report.cut, report.closed_gracefully), (0, 1));
        drop(client);
    });
}

#[test]
fn shutdown_cuts_what_is_still_running_at_the_deadline_and_counts_it() {
    run2(|handle| async move {
        // Long enough for the idle connection's graceful close on a loaded
        // machine; the stuck request sleeps 60 s.
        let (server, addr, stats, stop) =
            shutting_server(&handle, HandlerPlacement::Stealable, Duration::from_secs(2));
        let service = service_fn(|req: Bytes| async move {
            if &req[..] == b"stuck" {
                spargio_rt::time::sleep(Duration::from_secs(60)).await;
            }
            Ok::<_, Infallible>(req)
        });
        let serving = start(&handle, server, service);
        let mut stuck = Client::connect(addr).await.unwrap();
        let mut quick = Client::connect(addr).await.unwrap();
        ok(&mut quick, b"q").await;
        stuck.send(Bytes::from_static(b"stuck")).await.unwrap();
        common::until(
            "stats.snapshot().requests_in_flight < 1 turns false",
            || stats.snapshot().requests_in_flight >= 1,
        )
        .await;
        assert_eq!(stats.snapshot().shutdown, None, "still serving");
        stop.shutdown();
        let report = serving.await.unwrap().unwrap();
        assert_eq!(
            stats.snapshot().shutdown,
            Some(report),
            "the stats carry the shutdown outcome"
        );
        assert_eq!(report.open_at_start, 2);
        assert_eq!(report.cut, 1);
        assert_eq!(report.requests_cut, 1);
        assert_eq!(report.closed_gracefully, 1);
        // The cut connection is closed: the client sees the end.
        assert!(stuck.recv().await.is_err());
        // The cut request's stealable handler was aborted, not leaked.
        assert_eq!(stats.snapshot().requests_in_flight, 0);
        drop(quick);
    });
}

#[test]
fn serve_returns_only_once_the_cut_handlers_are_gone() {
    // A background handler is in the middle of a long poll when the
    // deadline cuts its connection: its task is aborted, but its future
    // (and what it holds) lives until that poll ends. `serve` waits.
    run2(|handle| async move {
        let (server, addr, stats, stop) = shutting_server(
            &handle,
            HandlerPlacement::Background,
            Duration::from_millis(50),
        );
        let held = Arc::new(AtomicUsize::new(0));
        let service = service_fn({
            let held = held.clone();
            move |req: Bytes| {
                let holding = Live::new(held.clone());
                async move {
                    let _holding = holding;
                    std::thread::sleep(Duration::from_millis(800));
                    Ok::<_, Infallible>(req)
                }
            }
        });
        let serving = start(&handle, server, service);
        let mut c = Client::connect(addr).await.unwrap();
        c.send(Bytes::from_static(b"slow")).await.unwrap();
        common::until("the slow request is in flight", || {
            stats.snapshot().requests_in_flight >= 1 && held.load(Ordering::SeqCst) == 1
        })
        .await;
        stop.shutdown();
        let report = serving.await.unwrap().unwrap();
        assert_eq!(report.cut, 1);
        assert_eq!(
            held.load(Ordering::SeqCst),
            0,
            "a cut handler outlived serve"
        );
    });
}

#[test]
fn shutdown_counts_requests_waiting_for_readiness_as_cut() {
    // One request holds the only concurrency permit; a second has arrived
    // on another connection and waits for the service to be ready. Both
    // are cut at the deadline, and both are counted.
    run2(|handle| async move {
        let server = Server::builder()
            .shutdown_timeout(Duration::from_millis(50))
            .bind(&handle, "127.0.0.1:0")
            .unwrap();
        let addr = server.local_addr();
        let stats = server.stats();
        let stop = server.shutdown_handle();
        let service = service_fn(|req: Bytes| async move {
            spargio_rt::time::sleep(Duration::from_secs(60)).await;
            Ok::<_, Infallible>(req)
        });
        let limited = spargio_service::layers::ConcurrencyLimit::new(service, 1);
        let serving = start(&handle, server, limited);
        let mut holding = Client::connect(addr).await.unwrap();
        let mut waiting = Client::connect(addr).await.unwrap();
        holding.send(Bytes::from_static(b"a")).await.unwrap();
        common::until(
            "stats.snapshot().requests_in_flight < 1 turns false",
            || stats.snapshot().requests_in_flight >= 1,
        )
        .await;
        waiting.send(Bytes::from_static(b"b")).await.unwrap();
        common::until(
            "stats.snapshot().requests_awaiting_ready < 1 turns false",
            || stats.snapshot().requests_awaiting_ready >= 1,
        )
        .await;
        assert_eq!(stats.snapshot().requests, 1, "handed over yet turns false");
        stop.shutdown();
        let report = serving.await.unwrap().unwrap();
        assert_eq!(report.cut, 2);
        assert_eq!(report.requests_cut, 2);
        let after = stats.snapshot();
        assert_eq!(after.requests_in_flight, 0);
        assert_eq!(after.requests_awaiting_ready, 0);
    });
}

#[test]
fn shutdown_closes_a_connection_whose_make_service_never_finishes() {
    run2(|handle| async move {
        let server = Server::builder()
            .shutdown_timeout(Duration::from_secs(30))
            .bind(&handle, "127.0.0.1:0")
            .unwrap();
        let addr = server.local_addr();
        let stats = server.stats();
        let stop = server.shutdown_handle();
        // Builds no service, ever.
        let make = service_fn(|_info: spargio_service::ConnInfo| async move {
            std::future::pending::<()>().await;
            Ok::<_, Infallible>(service_fn(
                |req: Bytes| async move { Ok::<_, Infallible>(req) },
            ))
        });
        let serving = handle.spawn_local(server.serve(LengthDelimited::new(), make));
        let _client = Client::connect(addr).await.unwrap();
        common::until("stats.snapshot().active < 1 turns false", || {
            stats.snapshot().active >= 1
        })
        .await;
        stop.shutdown();
        let report = spargio_rt::time::timeout(Duration::from_secs(20), serving)
            .await
            .expect("serve must return")
            .unwrap()
            .unwrap();
        // No request was in progress: the building is given up and the
        // connection closed at once, not cut at the deadline.
        assert_eq!((report.open_at_start, report.cut), (1, 0));
        assert_eq!(stats.snapshot().active, 0);
    });
}

/// Waits until no connection is open.
async fn until_no_connection_is_open(stats: &StatsHandle) {
    until_stats(stats, "no connection open", |s| s.active == 0).await;
}

#[test]
fn a_panicking_make_service_closes_its_connection_and_is_counted() {
    run2(|handle| async move {
        let server = Server::builder().bind(&handle, "127.0.0.1:0").unwrap();
        let addr = server.local_addr();
        let stats = server.stats();
        let stop = server.shutdown_handle();
        // Panics for the first connection only.
        let first = Arc::new(AtomicBool::new(true));
        let make = service_fn(move |_info: spargio_service::ConnInfo| {
            let panics = first.swap(false, Ordering::SeqCst);
            async move {
                assert!(!panics, "the make-service blew up");
                Ok::<_, Infallible>(echo())
            }
        });
        let serving = handle.spawn_local(server.serve(LengthDelimited::new(), make));
        let mut refused = Client::connect(addr).await.unwrap();
        assert!(refused.call(Bytes::from_static(b"x")).await.is_err());
        until_no_connection_is_open(&stats).await;
        assert_eq!(stats.snapshot().make_errors, 1);
        // The server goes on: the next connection is served.
        let mut served = Client::connect(addr).await.unwrap();
        assert_eq!(ok(&mut served, b"y").await, Bytes::from_static(b"y"));
        drop(served);
        stop.shutdown();
        serving.await.unwrap().unwrap();
        assert_eq!(stats.snapshot().make_errors, 1);
    });
}

#[test]
fn a_serve_local_factory_that_panics_on_one_shard_fails_its_connections_counted() {
    run2(|handle| async move {
        let server = Server::builder().bind(&handle, "127.0.0.1:0").unwrap();
        let addr = server.local_addr();
        let stats = server.stats();
        let stop = server.shutdown_handle();
        let serving =
            handle.spawn_local(server.serve_local(LengthDelimited::new(), move |shard| {
                assert_ne!(shard, ShardId(1), "no service on shard 1");
                echo()
            }));
        // Round robin: connections 0 and 2 on shard 0, 1 and 3 on shard 1.
        let mut clients = Vec::new();
        for _ in 0..4 {
            clients.push(Client::connect(addr).await.unwrap());
        }
        let mut answered = Vec::new();
        for c in clients.iter_mut() {
            answered.push(c.call(Bytes::from_static(b"z")).await.is_ok());
        }
        assert_eq!(answered, [true, false, true, false]);
        // The factory runs again for each connection on shard 1, each
        // failure counted.
        assert_eq!(stats.snapshot().make_errors, 2);
        drop(clients);
        until_no_connection_is_open(&stats).await;
        stop.shutdown();
        serving.await.unwrap().unwrap();
    });
}

#[test]
fn connections_queued_for_accept_when_shutdown_starts_are_not_served() {
    // The accept loop runs on shard 1. Block that shard, let connections
    // queue up for its multishot accept, start the shutdown, unblock: the
    // loop must see the shutdown before the queued connections (it used to
    // hand every ready one over first, so a connection flood kept it from
    // ever returning and the shutdown deadline from starting).
    run2(|handle| async move {
        let server = Server::builder()
            .accept(AcceptMode::Pinned(ShardId(1)))
            .bind(&handle, "127.0.0.1:0")
            .unwrap();
        let addr = server.local_addr();
        let stats = server.stats();
        let stop = server.shutdown_handle();
        let serving = start(&handle, server, echo());
        let mut first = Client::connect(addr).await.unwrap();
        ok(&mut first, b"armed").await;
        drop(first);
        common::until("stats.snapshot().active > 0 turns false", || {
            stats.snapshot().active == 0
        })
        .await;

        let (blocked_tx, blocked_rx) = std::sync::mpsc::channel::<()>();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let blocker = handle.spawn_pinned(ShardId(1), async move {
            blocked_tx.send(()).unwrap();
            // Holds shard 1's thread until the test releases it.
            release_rx.recv().unwrap();
        });
        // Off the shards: this task's shard must keep running meanwhile.
        let queued = spargio_rt::spawn_blocking(move || {
            blocked_rx.recv().unwrap();
            (0..16)
                .map(|_| std::net::TcpStream::connect(addr).unwrap())
                .collect::<Vec<_>>()
        })
        .await
        .unwrap();
        stop.shutdown();
        release_tx.send(()).unwrap();
        blocker.await.unwrap();
        let report = serving.await.unwrap().unwrap();
        assert_eq!(
            stats.snapshot().accepted,
            1,
            "connections handed over after the shutdown began"
        );
        assert_eq!(report.open_at_start, 0);
        drop(queued);
    });
}

#[test]
fn with_graceful_shutdown_stops_on_the_signal() {
    run2(|handle| async move {
        let server = Server::builder().bind(&handle, "127.0.0.1:0").unwrap();
        let addr = server.local_addr();
        let signal = spargio_rt::sync::CancellationToken::new();
        let server = server.with_graceful_shutdown(signal.clone().cancelled_owned());
        let serving = start(&handle, server, echo());
        let mut c = Client::connect(addr).await.unwrap();
        ok(&mut c, b"x").await;
        drop(c);
        signal.cancel();
        let report = serving.await.unwrap().unwrap();
        assert_eq!(report.cut, 0);
    });
}

/// An Adaptive server with `cfg`, bound to a free port: the server, its
/// address, counters and shutdown handle.
fn adaptive_server(
    handle: &RuntimeHandle,
    cfg: AdaptiveConfig,
) -> (Server, std::net::SocketAddr, StatsHandle, ShutdownHandle) {
    placed_server(handle, HandlerPlacement::Adaptive, cfg)
}

/// A server with `placement` (and `cfg` for Adaptive), bound to a free
/// port: the server, its address, counters and shutdown handle.
fn placed_server(
    handle: &RuntimeHandle,
    placement: HandlerPlacement,
    cfg: AdaptiveConfig,
) -> (Server, std::net::SocketAddr, StatsHandle, ShutdownHandle) {
    bound(
        handle,
        ServerBuilder::new()
            .handler_placement(placement)
            .adaptive(cfg),
    )
}

/// `builder`'s server, bound to a free port: the server, its address,
/// counters and shutdown handle.
fn bound(
    handle: &RuntimeHandle,
    builder: ServerBuilder,
) -> (Server, std::net::SocketAddr, StatsHandle, ShutdownHandle) {
    let server = builder.bind(handle, "127.0.0.1:0").unwrap();
    let (addr, stats, stop) = (
        server.local_addr(),
        server.stats(),
        server.shutdown_handle(),
    );
    (server, addr, stats, stop)
}

/// How much longer than the defaults the adaptive tests' thresholds and
/// burns are. Placement judges polls by wall time, so a cheap poll that a
/// loaded machine preempts looks heavy; at the defaults (100 µs) that
/// happened with two CPU hogs beside the suite. Every threshold and burn
/// is scaled alike, so the ratios the tests rely on stay as they were.
const SCALE: u32 = 100;

/// A burn well past [`slow_adaptive`]'s thresholds (2 ms at the defaults).
const HEAVY_BURN: Duration = Duration::from_millis(2 * SCALE as u64);

/// The default adaptive tuning, every threshold [`SCALE`]d.
fn slow_adaptive() -> AdaptiveConfig {
    let d = AdaptiveConfig::default();
    AdaptiveConfig {
        heavy_poll: d.heavy_poll * SCALE,
        background_poll: d.background_poll.map(|b| b * SCALE),
        ..d
    }
}

/// Adaptive placement that never uses the background pool: the tests of
/// the inline/stealable split.
fn shards_only() -> AdaptiveConfig {
    AdaptiveConfig {
        background_poll: None,
        ..slow_adaptive()
    }
}

/// A service that answers with the name of the thread its future ran on,
/// after burning `d` of CPU for requests that start with `H`.
fn where_it_ran(
    d: Duration,
) -> impl tower::Service<
    Bytes,
    Response = Bytes,
    Error = Infallible,
    Future = impl Future<Output = Result<Bytes, Infallible>> + Send,
> + Clone
       + Send
       + 'static {
    burning(
        |req| req.first() == Some(&b'H'),
        d,
        |_| Bytes::from(std::thread::current().name().unwrap_or("").to_string()),
    )
}

/// Whether a reply of [`where_it_ran`] names a background-pool thread.
fn ran_in_background(reply: &Bytes) -> bool {
    std::str::from_utf8(reply).unwrap().contains("background")
}

#[test]
fn adaptive_sends_a_route_with_very_long_polls_to_the_background_pool() {
    run2(|handle| async move {
        // Polls past the background threshold.
        let (server, addr, stats, stop) = adaptive_server(&handle, slow_adaptive());
        let protocol = LengthDelimited::new()
            .route_by(|req| spargio_service::RouteKey(req.first().copied().unwrap_or(0).into()));
        let serving = handle.spawn_local(server.serve_service(protocol, where_it_ran(HEAVY_BURN)));
        let mut c = Client::connect(addr).await.unwrap();
        let first = ok(&mut c, b"Heavy").await;
        assert!(
            !ran_in_background(&first),
            "the first request runs inline and is timed"
        );
        for _ in 0..3 {
            let reply = ok(&mut c, b"Heavy").await;
            assert!(
                ran_in_background(&reply),
                "then the route runs in the background"
            );
        }
        for _ in 0..10 {
            let reply = ok(&mut c, b"light").await;
            assert!(
                !ran_in_background(&reply),
                "the cheap route stays on the shards"
            );
        }
        let s = stats.snapshot();
        assert_eq!(s.handlers_background, 3);
        assert_eq!(s.handlers_stealable, 0);
        drop(c);
        stop.shutdown();
        serving.await.unwrap().unwrap();
    });
}

#[test]
fn background_placement_runs_every_handler_on_the_background_pool() {
    run2(|handle| async move {
        let (server, addr, stats, stop) = placed_server(
            &handle,
            HandlerPlacement::Background,
            AdaptiveConfig::default(),
        );
        let serving = start(&handle, server, where_it_ran(Duration::from_micros(100)));
        let mut clients = Vec::new();
        for _ in 0..4 {
            clients.push(Client::connect(addr).await.unwrap());
        }
        for c in &mut clients {
            for payload in [&b"Heavy"[..], b"light"] {
                let reply = ok(c, payload).await;
                assert!(ran_in_background(&reply), "{reply:?}");
            }
        }
        let s = stats.snapshot();
        assert_eq!(s.handlers_background, 8);
        assert_eq!(s.requests, 8);
        drop(clients);
        stop.shutdown();
        serving.await.unwrap().unwrap();
    });
}

/// An echo service that burns `d` of CPU in the poll of the requests
/// `heavy` picks.
fn burning_echo(
    heavy: fn(&[u8]) -> bool,
    d: Duration,
) -> impl tower::Service<
    Bytes,
    Response = Bytes,
    Error = Infallible,
    Future = impl Future<Output = Result<Bytes, Infallible>> + Send,
> + Clone
       + Send
       + 'static {
    burning(heavy, d, |req| req)
}

/// A service that burns `d` of CPU in the poll of the requests `heavy`
/// picks, then answers with `reply(request)` (computed in that poll, on
/// the thread the future runs on).
fn burning(
    heavy: fn(&[u8]) -> bool,
    d: Duration,
    reply: fn(Bytes) -> Bytes,
) -> impl tower::Service<
    Bytes,
    Response = Bytes,
    Error = Infallible,
    Future = impl Future<Output = Result<Bytes, Infallible>> + Send,
> + Clone
       + Send
       + 'static {
    service_fn(move |req: Bytes| async move {
        if heavy(&req) {
            burn(d);
        }
        Ok::<_, Infallible>(reply(req))
    })
}

#[test]
fn adaptive_learns_from_a_heavy_call_that_timed_out() {
    run2(|handle| async move {
        // Each call burns in its first poll and then waits far past
        // the request timeout, so every call times out. Its cost is learned
        // all the same: the next call does not run inline. (Before, only a
        // call that answered was learned from, and a route whose calls all
        // timed out ran inline on the connection's shard for ever.)
        let (server, addr, stats, stop) = bound(
            &handle,
            ServerBuilder::new()
                .handler_placement(HandlerPlacement::Adaptive)
                .adaptive(shards_only())
                .request_timeout(HEAVY_BURN * 2),
        );
        let service = service_fn(|req: Bytes| async move {
            burn(HEAVY_BURN);
            spargio_rt::time::sleep(Duration::from_secs(30)).await;
            Ok::<_, Infallible>(req)
        });
        let serving = start(&handle, server, service);
        let mut c = Client::connect(addr).await.unwrap();
        let first = c.call(Bytes::from_static(b"x")).await.unwrap();
        assert!(first.is_err(), "the call was not timed out: {first:?}");
        assert_eq!(
            stats.snapshot().handlers_stealable,
            0,
            "the first runs inline"
        );
        let second = c.call(Bytes::from_static(b"x")).await.unwrap();
        assert!(second.is_err());
        let s = stats.snapshot();
        assert_eq!(s.request_timeouts, 2);
        assert_eq!(s.handlers_stealable, 1, "the heavy call was not learned");
        drop(c);
        stop.shutdown();
        serving.await.unwrap().unwrap();
    });
}

#[test]
fn adaptive_moves_only_the_heavy_route_to_stealable() {
    run2(|handle| async move {
        let (server, addr, stats, stop) = adaptive_server(&handle, shards_only());
        let service = burning_echo(|req| req == b"heavy", HEAVY_BURN);
        // All requests share one route: the codec keys every request with
        // RouteKey::DEFAULT, so heavy polls move the whole service.
        let serving = start(&handle, server, service);
        let mut c = Client::connect(addr).await.unwrap();
        for _ in 0..20 {
            ok(&mut c, b"light").await;
        }
        assert_eq!(
            stats.snapshot().handlers_stealable,
            0,
            "cheap handlers stay inline"
        );
        for _ in 0..5 {
            ok(&mut c, b"heavy").await;
        }
        let before = stats.snapshot().handlers_stealable;
        ok(&mut c, b"heavy").await;
        assert_eq!(
            stats.snapshot().handlers_stealable,
            before + 1,
            "a heavy route runs stealable"
        );
        drop(c);
        stop.shutdown();
        serving.await.unwrap().unwrap();
    });
}

#[test]
fn adaptive_sends_a_hot_connections_next_request_stealable_while_its_route_stays_light() {
    run2(|handle| async move {
        let cfg = AdaptiveConfig {
            heavy_poll: Duration::from_millis(u64::from(SCALE)),
            ..shards_only()
        };
        let (server, addr, stats, stop) = adaptive_server(&handle, cfg);
        // A heavy request polls for 3 thresholds: over the threshold on its
        // own, but a route average (weight 1/8) needs several in a row.
        let service = burning_echo(|req| req == b"heavy", cfg.heavy_poll * 3);
        let serving = start(&handle, server, service);
        let mut c = Client::connect(addr).await.unwrap();
        for _ in 0..40 {
            ok(&mut c, b"light").await;
        }
        let stealable = || stats.snapshot().handlers_stealable;
        assert_eq!(stealable(), 0, "cheap handlers stay inline");
        ok(&mut c, b"heavy").await;
        assert_eq!(
            stealable(),
            0,
            "a connection's first heavy request runs inline"
        );
        ok(&mut c, b"heavy").await;
        assert_eq!(
            stealable(),
            1,
            "the request after a heavy one on the same connection runs stealable"
        );
        ok(&mut c, b"light").await;
        ok(&mut c, b"light").await;
        assert_eq!(
            stealable(),
            2,
            "one request after the last heavy one runs stealable, then inline again"
        );
        drop(c);
        stop.shutdown();
        serving.await.unwrap().unwrap();
    });
}

#[test]
fn adaptive_a_hot_connection_does_not_move_its_shared_route() {
    run2(|handle| async move {
        let cfg = AdaptiveConfig {
            heavy_poll: Duration::from_millis(u64::from(SCALE) / 5),
            ..shards_only()
        };
        // One shard serves both connections, so they share its route
        // record (the codec keys every request RouteKey::DEFAULT).
        let (server, addr, stats, stop) = bound(
            &handle,
            ServerBuilder::new()
                .accept(AcceptMode::Pinned(ShardId(0)))
                .handler_placement(HandlerPlacement::Adaptive)
                .adaptive(cfg),
        );
        let service = burning_echo(|req| req == b"heavy", cfg.heavy_poll * 3);
        let serving = start(&handle, server, service);
        let mut hot = Client::connect(addr).await.unwrap();
        let mut cheap = Client::connect(addr).await.unwrap();
        // The hot connection's requests after its first go stealable (its
        // last one was heavy); the route's average is a sixteenth heavy
        // requests, well under the threshold. Before, those spawned
        // requests were all recorded while one cheap request in eight was,
        // so the route went heavy and back again, and cheap requests on
        // the other connection were spawned too.
        const CYCLES: u64 = 30;
        for _ in 0..CYCLES {
            ok(&mut hot, b"heavy").await;
            for _ in 0..16 {
                ok(&mut cheap, b"light").await;
            }
        }
        // The hot connection's requests (but its first), plus room for one
        // chance streak of sampled heavy requests (a few cheap requests
        // spawned before the route comes back).
        let spawned = stats.snapshot().handlers_stealable;
        assert!(
            spawned <= CYCLES - 1 + 16,
            "cheap requests were spawned: {spawned} requests ran stealable"
        );
        drop((hot, cheap));
        stop.shutdown();
        serving.await.unwrap().unwrap();
    });
}

#[test]
fn adaptive_with_routes_moves_the_heavy_method_and_keeps_the_cheap_one_inline() {
    run2(|handle| async move {
        let (server, addr, stats, stop) = adaptive_server(&handle, shards_only());
        let service = burning_echo(|req| req[0] == b'H', HEAVY_BURN);
        // The first byte names the "method".
        let protocol = LengthDelimited::new()
            .route_by(|req| spargio_service::RouteKey(req.first().copied().unwrap_or(0).into()));
        let serving = handle.spawn_local(server.serve_service(protocol, service));
        let mut c = Client::connect(addr).await.unwrap();
        for _ in 0..4 {
            ok(&mut c, b"Heavy").await;
        }
        let heavy_moved = stats.snapshot().handlers_stealable;
        for _ in 0..20 {
            ok(&mut c, b"light").await;
        }
        assert_eq!(
            stats.snapshot().handlers_stealable,
            heavy_moved,
            "the cheap method stays inline"
        );
        ok(&mut c, b"Heavy").await;
        assert_eq!(
            stats.snapshot().handlers_stealable,
            heavy_moved + 1,
            "the heavy method runs stealable"
        );
        drop(c);
        stop.shutdown();
        serving.await.unwrap().unwrap();
    });
}

#[test]
fn dropping_the_serve_future_stops_accepting_and_cuts_connections() {
    run2(|handle| async move {
        let server = Server::builder().bind(&handle, "127.0.0.1:0").unwrap();
        let addr = server.local_addr();
        let stats = server.stats();
        let serving = start(&handle, server, echo());
        let mut c = Client::connect(addr).await.unwrap();
        ok(&mut c, b"x").await;
        serving.abort();
        assert!(serving.await.unwrap_err().is_cancelled());
        // The open connection is cut...
        let after =
            spargio_rt::time::timeout(Duration::from_secs(20), c.call(Bytes::from_static(b"y")))
                .await
                .expect("the connection was left open");
        assert!(
            after.is_err(),
            "served after the server was dropped: {after:?}"
        );
        // ...and the listener closes: new connections are refused.
        let refused = spargio_rt::time::timeout(Duration::from_secs(20), async {
            loop {
                match Client::connect(addr).await {
                    Err(e) => return e.kind(),
                    Ok(_) => spargio_rt::time::sleep(Duration::from_millis(10)).await,
                }
            }
        })
        .await
        .expect("still accepting after the server was dropped");
        assert_eq!(refused, std::io::ErrorKind::ConnectionRefused);
        assert_eq!(stats.snapshot().active, 0);
    });
}

/// A service whose `poll_ready` fails: with an error the first time it is
/// asked, with a panic after that.
#[derive(Clone)]
struct NeverReady {
    asked: Arc<AtomicUsize>,
}

impl tower::Service<Bytes> for NeverReady {
    type Response = Bytes;
    type Error = spargio_service::BoxError;
    type Future = std::future::Ready<Result<Bytes, spargio_service::BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if self.asked.fetch_add(1, Ordering::SeqCst) == 0 {
            return Poll::Ready(Err("overloaded".into()));
        }
        panic!("poll_ready blew up");
    }

    fn call(&mut self, req: Bytes) -> Self::Future {
        std::future::ready(Ok(req))
    }
}

#[test]
fn a_failed_poll_ready_counts_as_a_failed_request() {
    for local in [false, true] {
        run2(move |handle| async move {
            let server = Server::builder().bind(&handle, "127.0.0.1:0").unwrap();
            let addr = server.local_addr();
            let stats = server.stats();
            let stop = server.shutdown_handle();
            let service = NeverReady {
                asked: Arc::new(AtomicUsize::new(0)),
            };
            let serving = if local {
                handle.spawn_local(
                    server.serve_local(LengthDelimited::new(), move |_| service.clone()),
                )
            } else {
                start(&handle, server, service)
            };
            let expected = [
                (Status::ServiceError, "service error: overloaded"),
                (Status::Panicked, "handler panicked: poll_ready blew up"),
            ];
            for (status, msg) in expected {
                // The request that waited is answered with the error, and
                // the connection closes.
                let mut c = Client::connect(addr).await.unwrap();
                let reply = c.call(Bytes::from_static(b"x")).await.unwrap();
                assert_eq!(reply, Err((status, msg.to_string())), "local: {local}");
                assert!(c.recv().await.is_err(), "still open after a failed ready");
            }
            stop.shutdown();
            serving.await.unwrap().unwrap();
            let s = stats.snapshot();
            assert_eq!(
                (s.requests, s.requests_failed, s.panics),
                (2, 2, 1),
                "local: {local}"
            );
            assert_eq!(s.requests_in_flight, 0);
        });
    }
}

#[test]
fn a_poll_ready_panic_counts_once_though_requests_were_pipelined_behind_it() {
    run2(|handle| async move {
        let server = Server::builder().bind(&handle, "127.0.0.1:0").unwrap();
        let addr = server.local_addr();
        let stats = server.stats();
        let stop = server.shutdown_handle();
        // Asked once already: the next poll_ready panics.
        let service = NeverReady {
            asked: Arc::new(AtomicUsize::new(1)),
        };
        let serving = start(&handle, server, service);
        let mut c = Client::connect(addr).await.unwrap();
        for payload in [&b"a"[..], b"b", b"c"] {
            c.feed(Bytes::from_static(payload)).await.unwrap();
        }
        c.flush().await.unwrap();
        // The first is answered with the panic; those read with it are
        // refused unprocessed; any not read yet are lost with the close.
        let mut answered = 0;
        while let Ok(reply) = c.recv().await {
            assert!(reply.is_err(), "{reply:?}");
            answered += 1;
        }
        assert!(answered >= 1);
        stop.shutdown();
        serving.await.unwrap().unwrap();
        let s = stats.snapshot();
        assert_eq!(s.panics, 1, "{s:?}");
        assert_eq!((s.requests, s.requests_failed), (answered, answered));
    });
}

/// Echoes each request once `release` is cancelled.
fn held_echo(
    release: CancellationToken,
) -> impl tower::Service<Bytes, Response = Bytes, Error = Infallible, Future: Send> + Clone + Send {
    service_fn(move |req: Bytes| {
        let released = release.clone().cancelled_owned();
        async move {
            released.await;
            Ok::<_, Infallible>(req)
        }
    })
}

/// A server serving [`held_echo`] with `shutdown_timeout`, started; the
/// token releases the held requests.
struct HeldServer {
    addr: std::net::SocketAddr,
    stats: spargio_service::StatsHandle,
    stop: spargio_service::ShutdownHandle,
    release: CancellationToken,
    serving: spargio_rt::JoinHandle<std::io::Result<ShutdownReport>>,
}

impl HeldServer {
    fn start(handle: &RuntimeHandle, shutdown_timeout: Duration) -> HeldServer {
        let server = Server::builder()
            .shutdown_timeout(shutdown_timeout)
            .bind(handle, "127.0.0.1:0")
            .unwrap();
        let release = CancellationToken::new();
        HeldServer {
            addr: server.local_addr(),
            stats: server.stats(),
            stop: server.shutdown_handle(),
            release: release.clone(),
            serving: start(handle, server, held_echo(release)),
        }
    }

    /// Waits until a request is in the service.
    async fn handling(&self) {
        until_stats(&self.stats, "a request in flight", |s| {
            s.requests_in_flight >= 1
        })
        .await;
    }

    /// Waits (bounded) for `serve` to return its report.
    async fn report(self) -> ShutdownReport {
        spargio_rt::time::timeout(Duration::from_secs(20), self.serving)
            .await
            .expect("serve must return after the shutdown deadline")
            .unwrap()
            .unwrap()
    }
}

/// Starts a server with an 800 ms shutdown timeout (under the codec's
/// 1 s linger) and [`held_echo`]; sends the first of `reqs`, then the
/// rest once the first is being handled (so they wait in the socket, not
/// in the server's buffer), starts the shutdown, then releases the first.
/// The client reads that reply, then the server's end, and keeps its
/// connection open, as a connection pool would, until `serve` returns.
fn shutdown_with_a_client_left_open(then: &'static [u8]) -> ShutdownReport {
    run2(move |handle| async move {
        let server = HeldServer::start(&handle, Duration::from_millis(800));
        let mut c = Client::connect(server.addr).await.unwrap();
        c.send(Bytes::from_static(b"last")).await.unwrap();
        server.handling().await;
        if !then.is_empty() {
            // Raw bytes after the request being handled.
            use spargio_rt::io::AsyncWriteExt;
            let mut stream = c.into_inner();
            let (res, _) = stream.write_all(then.to_vec()).await;
            res.unwrap();
            c = Client::new(stream);
        }
        server.stop.shutdown();
        server.release.cancel();
        let last = c.recv().await.unwrap();

        assert_eq!(last, Ok(Bytes::from_static(b"last")));
        let end = c.recv().await.unwrap_err();
        assert_eq!(end.kind(), std::io::ErrorKind::UnexpectedEof, "{end}");
        let report = server.report().await;
        drop(c);
        report
    })
}

#[test]
fn shutdown_does_not_wait_for_a_pooled_client_that_sent_nothing_after_its_last_reply() {
    // Nothing unread: the server closes at once instead of lingering
    // past the deadline.
    let report = shutdown_with_a_client_left_open(b"");
    assert_eq!(report.open_at_start, 1);
    assert_eq!((report.cut, report.closed_gracefully), (0, 1));
    assert_eq!(report.ended_lingering, 0, "{report:?}");
    assert_eq!(report.requests_cut, 0);
}

#[test]
fn a_connection_still_lingering_at_the_shutdown_deadline_is_not_counted_as_cut() {
    // Part of a request (a header for 9 bytes, 2 of them) makes it linger
    // (a whole one would be read and refused); the deadline ends the
    // linger, but every reply had been written.
    let report = shutdown_with_a_client_left_open(&[0, 0, 0, 9, b'u', b'n']);
    assert_eq!(report.open_at_start, 1);
    assert_eq!((report.cut, report.closed_gracefully), (0, 1));
    assert_eq!(report.ended_lingering, 1, "{report:?}");
    assert_eq!(report.requests_cut, 0);
}

#[test]
fn requests_pipelined_behind_the_last_one_at_shutdown_are_answered_shutting_down() {
    run2(|handle| async move {
        let server = HeldServer::start(&handle, Duration::from_secs(10));
        let stats = server.stats.clone();
        let mut c = Client::connect(server.addr).await.unwrap();
        // One write: the server reads all three at once, handles the
        // first and holds the other two in its buffer.
        for req in [&b"first"[..], b"second", b"third"] {
            c.feed(Bytes::from_static(req)).await.unwrap();
        }
        c.flush().await.unwrap();
        server.handling().await;
        server.stop.shutdown();
        server.release.cancel();
        let replies = spargio_rt::time::timeout(Duration::from_secs(20), async {
            let mut replies = Vec::new();
            for _ in 0..3 {
                replies.push(c.recv().await.unwrap());
            }
            (replies, c.recv().await.unwrap_err())
        });
        let (replies, end) = replies.await.expect("replies and the connection's end");
        assert_eq!(replies[0], Ok(Bytes::from_static(b"first")));
        for refused in &replies[1..] {
            let status = refused.as_ref().map_err(|(status, _)| *status);
            assert_eq!(status, Err(Status::ShuttingDown), "{refused:?}");
        }
        assert_eq!(end.kind(), std::io::ErrorKind::UnexpectedEof, "{end}");
        let report = server.report().await;
        assert_eq!((report.cut, report.closed_gracefully), (0, 1));
        assert_eq!(report.requests_cut, 0);
        let s = stats.snapshot();
        assert_eq!((s.requests, s.requests_failed), (3, 2));
    });
}

/// A server with `placement` and `shutdown_timeout` on port 0, its
/// address, stats and shutdown handle.
fn shutting_server(
    handle: &RuntimeHandle,
    placement: HandlerPlacement,
    shutdown_timeout: Duration,
) -> (Server, std::net::SocketAddr, StatsHandle, ShutdownHandle) {
    let server = Server::builder()
        .handler_placement(placement)
        .shutdown_timeout(shutdown_timeout)
        .bind(handle, "127.0.0.1:0")
        .unwrap();
    let (addr, stats, stop) = (
        server.local_addr(),
        server.stats(),
        server.shutdown_handle(),
    );
    (server, addr, stats, stop)
}

/// A service that counts its live instances in `live`.
struct Live {
    live: Arc<AtomicUsize>,
}

impl Live {
    fn new(live: Arc<AtomicUsize>) -> Live {
        live.fetch_add(1, Ordering::SeqCst);
        Live { live }
    }
}

impl Clone for Live {
    fn clone(&self) -> Live {
        Live::new(self.live.clone())
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

impl tower::Service<Bytes> for Live {
    type Response = Bytes;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Bytes, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Bytes) -> Self::Future {
        std::future::ready(Ok(req))
    }
}

#[test]
fn dropping_the_serve_local_future_drops_the_per_shard_services() {
    run2(|handle| async move {
        let server = Server::builder().bind(&handle, "127.0.0.1:0").unwrap();
        let addr = server.local_addr();
        let live = Arc::new(AtomicUsize::new(0));
        let l = live.clone();
        let serving = handle
            .spawn_local(server.serve_local(LengthDelimited::new(), move |_| Live::new(l.clone())));
        // One connection per shard: both shards build their service.
        let mut a = Client::connect(addr).await.unwrap();
        let mut b = Client::connect(addr).await.unwrap();
        ok(&mut a, b"a").await;
        ok(&mut b, b"b").await;
        assert!(live.load(Ordering::SeqCst) >= 2);
        serving.abort();
        assert!(serving.await.unwrap_err().is_cancelled());
        spargio_rt::time::timeout(Duration::from_secs(20), async {
            common::until("live.load(Ordering::SeqCst) > 0 turns false", || {
                live.load(Ordering::SeqCst) == 0
            })
            .await;
        })
        .await
        .expect("a per-shard service outlived the dropped serve future");
        drop((a, b));
    });
}

/// Asks a server bound to `bind` for its connection's addresses
/// (`ConnInfo`), connecting to `127.0.0.1` at the bound port.
fn addresses_seen(bind: &'static str) -> (std::net::SocketAddr, String) {
    run2(move |handle| async move {
        let server = Server::builder().bind(&handle, bind).unwrap();
        let port = server.local_addr().port();
        let stop = server.shutdown_handle();
        let make = service_fn(|info: spargio_service::ConnInfo| async move {
            let seen = format!("{:?} {:?}", info.local_addr, info.peer_addr);
            Ok::<_, Infallible>(service_fn(move |_req: Bytes| {
                let seen = seen.clone();
                async move { Ok::<_, Infallible>(Bytes::from(seen)) }
            }))
        });
        let serving = handle.spawn_local(server.serve(LengthDelimited::new(), make));
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let mut c = Client::connect(addr).await.unwrap();
        let seen = ok(&mut c, b"?").await;
        drop(c);
        stop.shutdown();
        serving.await.unwrap().unwrap();
        (addr, String::from_utf8(seen.to_vec()).unwrap())
    })
}

#[test]
fn conn_info_carries_local_and_peer_addresses() {
    // Bound to one IP: the local address comes from the listener; bound
    // to every interface: from the connection's socket.
    for bind in ["127.0.0.1:0", "0.0.0.0:0"] {
        let (addr, seen) = addresses_seen(bind);
        let (local, peer) = seen.split_once(' ').unwrap();
        assert_eq!(local, format!("Some({addr})"), "bound to {bind}");
        assert!(
            peer.starts_with("Some(127.0.0.1:"),
            "bound to {bind}: {peer}"
        );
        assert_ne!(peer, format!("Some({addr})"), "bound to {bind}");
    }
}
