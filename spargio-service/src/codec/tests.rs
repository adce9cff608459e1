//! `LengthDelimited::serve_connection` end to end over loopback TCP, with
//! a hand-built `Connection` (its constructor is crate-private).

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::mem::MaybeUninit;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use spargio_rt::io::{AsyncRead, AsyncWriteExt};
use spargio_rt::net::{TcpListener, TcpStream};
use spargio_rt::sync::CancellationToken;
use spargio_rt::JoinHandle;
use spargio_rt::ShardId;

use super::*;
use crate::connection::{ConnInfo, Connection};
use crate::stats::Counters;
use crate::{Handler, HandlerError, Protocol, RouteKey};

/// A `Handler` around a closure, counting `ready`s and calls; `ready` can
/// be held shut by a gate or made to fail.
struct TestHandler<F> {
    f: F,
    calls: Rc<Cell<usize>>,
    readies: Rc<Cell<usize>>,
    gate: Option<CancellationToken>,
    fail_ready: bool,
}

fn handler<F, Fut>(f: F) -> TestHandler<F>
where
    F: FnMut(Bytes) -> Fut + 'static,
    Fut: Future<Output = Result<Bytes, HandlerError>> + 'static,
{
    TestHandler {
        f,
        calls: Rc::default(),
        readies: Rc::default(),
        gate: None,
        fail_ready: false,
    }
}

fn echo() -> TestHandler<impl FnMut(Bytes) -> std::future::Ready<Result<Bytes, HandlerError>>> {
    handler(|req| std::future::ready(Ok(req)))
}

impl<F, Fut> Handler<Bytes> for TestHandler<F>
where
    F: FnMut(Bytes) -> Fut + 'static,
    Fut: Future<Output = Result<Bytes, HandlerError>> + 'static,
{
    type Response = Bytes;

    async fn ready(&mut self) -> Result<(), HandlerError> {
        self.readies.set(self.readies.get() + 1);
        if let Some(gate) = &self.gate {
            gate.cancelled().await;
        }
        if self.fail_ready {
            return Err(HandlerError::Service("overloaded".into()));
        }
        Ok(())
    }

    fn call(
        &mut self,
        _route: RouteKey,
        req: Bytes,
    ) -> impl Future<Output = Result<Bytes, HandlerError>> + 'static {
        self.calls.set(self.calls.get() + 1);
        (self.f)(req)
    }
}

/// A served connection and its client.
struct Fixture {
    client: Client,
    server: JoinHandle<io::Result<()>>,
    counters: Arc<Counters>,
    closing: CancellationToken,
}

impl Fixture {
    /// Waits for `serve_connection` to return; it must return `Ok`.
    async fn served(self) -> Arc<Counters> {
        drop(self.client);
        self.server
            .await
            .expect("server task")
            .expect("serve_connection");
        self.counters
    }
}

/// Serves `stream` with `protocol` and `h` on a task of its own; the
/// closing token is the one given, so tests (and handlers) can cancel it.
fn spawn_server<H>(
    protocol: LengthDelimited,
    h: H,
    idle: Option<Duration>,
    closing: &CancellationToken,
    stream: TcpStream,
) -> (JoinHandle<io::Result<()>>, Arc<Counters>)
where
    H: Handler<Bytes, Response = Bytes>,
{
    let counters = Counters::new(1);
    let info = ConnInfo {
        id: 0,
        peer_addr: stream.peer_addr().ok(),
        local_addr: stream.local_addr().ok(),
        peer_cred: None,
        proxy: None,
        shard: ShardId(0),
    };
    let conn = Connection::new(info, idle, closing.clone(), counters.clone());
    let server =
        spargio_rt::spawn_local(
            async move { protocol.serve_connection(stream.into(), h, conn).await },
        );
    (server, counters)
}

/// Accepts one connection from a new client and serves it.
async fn serve_one<H>(
    protocol: LengthDelimited,
    h: H,
    idle: Option<Duration>,
    closing: CancellationToken,
) -> Fixture
where
    H: Handler<Bytes, Response = Bytes>,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (client, accepted) = futures_util::join!(Client::connect(addr), listener.accept());
    let (stream, _) = accepted.unwrap();
    let (server, counters) = spawn_server(protocol, h, idle, &closing, stream);
    Fixture {
        client: client.unwrap(),
        server,
        counters,
        closing,
    }
}

async fn serve<H: Handler<Bytes, Response = Bytes>>(h: H) -> Fixture {
    serve_one(LengthDelimited::new(), h, None, CancellationToken::new()).await
}

/// A deterministic pattern, so a byte out of place is caught.
fn pattern(len: usize, seed: usize) -> Bytes {
    (0..len)
        .map(|i| (i * 31 + seed * 7 + i / 251) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// Awaits `fut`, failing the test instead of hanging if it never ends (a
/// bound for deadlocks, far above any real duration, not a timing check).
async fn bounded<F: Future>(fut: F) -> F::Output {
    spargio_rt::time::timeout(Duration::from_secs(20), fut)
        .await
        .expect("hung")
}

fn assert_eof(res: io::Result<Reply>) {
    match res {
        Err(e) => assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}"),
        Ok(r) => panic!("expected the server to close, got {r:?}"),
    }
}

#[spargio_rt::test(shards = 1)]
async fn echoes_several_requests() {
    let h = echo();
    let calls = h.calls.clone();
    let mut f = serve(h).await;
    // Small, larger than a read and than the copy limit, then small again.
    for (i, len) in [5, 100_000, 0, 3].into_iter().enumerate() {
        let req = pattern(len, i);
        let reply = bounded(f.client.call(req.clone())).await.unwrap();
        assert_eq!(reply, Ok(req));
    }
    assert_eq!(calls.get(), 4);
    let counters = bounded(f.served()).await;
    assert_eq!(counters.bad_requests.get(), 0);
}

#[spargio_rt::test(shards = 1)]
async fn pipelined_requests_are_answered_in_order() {
    // Earlier requests take longer, so any reordering would show.
    let h = handler(|req: Bytes| async move {
        let wait = 8 - u64::from(req[0] % 8);
        spargio_rt::time::sleep(Duration::from_millis(wait)).await;
        Ok(req)
    });
    let mut f = serve(h).await;
    let reqs: Vec<Bytes> = (0..64)
        .map(|i| {
            let mut p = pattern((i * 97) % 3000 + 1, i).to_vec();
            p[0] = i as u8;
            Bytes::from(p)
        })
        .collect();
    for r in &reqs {
        f.client.feed(r.clone()).await.unwrap();
    }
    f.client.flush().await.unwrap();
    for r in &reqs {
        assert_eq!(bounded(f.client.recv()).await.unwrap(), Ok(r.clone()));
    }
    bounded(f.served()).await;
}

#[spargio_rt::test(shards = 1)]
async fn queued_responses_are_written_while_a_later_request_is_pending() {
    let release = CancellationToken::new();
    let r = release.clone();
    let h = handler(move |req: Bytes| {
        let r = r.clone();
        async move {
            if &req[..] == b"wait" {
                r.cancelled().await;
                return Ok(Bytes::from_static(b"waited"));
            }
            Ok(req)
        }
    });
    let mut f = serve(h).await;
    f.client.feed(Bytes::from_static(b"a")).await.unwrap();
    f.client.feed(Bytes::from_static(b"wait")).await.unwrap();
    f.client.flush().await.unwrap();
    // "a" arrives although "wait" has not been answered.
    let a = bounded(f.client.recv()).await.unwrap();
    assert_eq!(a, Ok(Bytes::from_static(b"a")));
    release.cancel();
    let w = bounded(f.client.recv()).await.unwrap();
    assert_eq!(w, Ok(Bytes::from_static(b"waited")));
    bounded(f.served()).await;
}

#[spargio_rt::test(shards = 1)]
async fn empty_requests_and_responses_are_frames() {
    let h = handler(|req: Bytes| async move {
        if &req[..] == b"nothing" {
            Ok(Bytes::new())
        } else {
            Ok(req)
        }
    });
    let mut f = serve(h).await;
    let empty = bounded(f.client.call(Bytes::new())).await.unwrap();
    assert_eq!(empty, Ok(Bytes::new()));
    let nothing = bounded(f.client.call(Bytes::from_static(b"nothing")))
        .await
        .unwrap();
    assert_eq!(nothing, Ok(Bytes::new()));
    let after = bounded(f.client.call(Bytes::from_static(b"x")))
        .await
        .unwrap();
    assert_eq!(after, Ok(Bytes::from_static(b"x")));
    bounded(f.served()).await;
}

#[spargio_rt::test(shards = 1)]
async fn handler_errors_become_error_frames_and_the_connection_goes_on() {
    let h = handler(|req: Bytes| async move {
        match &req[..] {
            b"service" => Err(HandlerError::Service("boom".into())),
            b"panic" => Err(HandlerError::Panicked("oops".into())),
            b"timeout" => Err(HandlerError::TimedOut),
            b"cancel" => Err(HandlerError::Cancelled),
            _ => Ok(req),
        }
    });
    let calls = h.calls.clone();
    let mut f = serve(h).await;
    let cases = [
        ("service", Status::ServiceError, "service error: boom"),
        ("panic", Status::Panicked, "handler panicked: oops"),
        ("timeout", Status::TimedOut, "request timed out"),
        (
            "cancel",
            Status::ShuttingDown,
            "request cancelled by server shutdown",
        ),
    ];
    for (req, status, msg) in cases {
        let reply = bounded(f.client.call(Bytes::from(req))).await.unwrap();
        assert_eq!(reply, Err((status, msg.to_string())), "{req}");
        let ok = bounded(f.client.call(Bytes::from_static(b"still here")))
            .await
            .unwrap();
        assert_eq!(ok, Ok(Bytes::from_static(b"still here")));
    }
    assert_eq!(calls.get(), 8);
    bounded(f.served()).await;
}

/// Keys a request by its first byte; panics on one that starts with `!`.
fn route_or_panic(req: &Bytes) -> RouteKey {
    if req.first() == Some(&b'!') {
        panic!("no route for {req:?}");
    }
    RouteKey(req.first().copied().unwrap_or(0).into())
}

#[spargio_rt::test(shards = 1)]
async fn a_panic_in_route_by_fails_only_its_request() {
    let h = echo();
    let (calls, readies) = (h.calls.clone(), h.readies.clone());
    let protocol = LengthDelimited::new().route_by(route_or_panic);
    let mut f = serve_one(protocol, h, None, CancellationToken::new()).await;
    // Pipelined, so the panic comes with a request before and after it in
    // the read buffer.
    for req in [&b"a"[..], b"!x", b"b"] {
        f.client.feed(Bytes::from_static(req)).await.unwrap();
    }
    f.client.flush().await.unwrap();
    let a = bounded(f.client.recv()).await.unwrap();
    assert_eq!(a, Ok(Bytes::from_static(b"a")));
    let panicked = bounded(f.client.recv()).await.unwrap();
    let msg = format!(
        "handler panicked: no route for {:?}",
        Bytes::from_static(b"!x")
    );
    assert_eq!(panicked, Err((Status::Panicked, msg)));
    let b = bounded(f.client.recv()).await.unwrap();
    assert_eq!(b, Ok(Bytes::from_static(b"b")));
    // The connection still serves.
    let c = bounded(f.client.call(Bytes::from_static(b"c")))
        .await
        .unwrap();
    assert_eq!(c, Ok(Bytes::from_static(b"c")));
    // The service never saw the request, nor was asked to be ready for it.
    assert_eq!((calls.get(), readies.get()), (3, 3));
    let counters = bounded(f.served()).await;
    // The test handler counts nothing itself: these are the refused one's.
    assert_eq!(counters.requests.get(), 1);
    assert_eq!(counters.requests_failed.get(), 1);
    assert_eq!(counters.panics.get(), 1);
}

#[spargio_rt::test(shards = 1)]
async fn a_too_large_frame_gets_bad_request_then_the_connection_closes() {
    let h = echo();
    let calls = h.calls.clone();
    let protocol = LengthDelimited::new().max_frame_len(16);
    let mut f = serve_one(protocol, h, None, CancellationToken::new()).await;
    // A good request, then one byte too many, pipelined.
    f.client.feed(pattern(16, 1)).await.unwrap();
    f.client.feed(pattern(17, 2)).await.unwrap();
    f.client.flush().await.unwrap();
    let ok = bounded(f.client.recv()).await.unwrap();
    assert_eq!(ok, Ok(pattern(16, 1)));
    let bad = bounded(f.client.recv()).await.unwrap();
    assert_eq!(
        bad,
        Err((
            Status::BadRequest,
            "frame of 17 bytes exceeds the limit of 16 bytes".to_string()
        ))
    );
    assert_eof(bounded(f.client.recv()).await);
    assert_eq!(calls.get(), 1);
    let counters = bounded(f.served()).await;
    assert_eq!(counters.bad_requests.get(), 1);
}

#[spargio_rt::test(shards = 1)]
async fn a_huge_header_is_refused_without_waiting_for_its_payload() {
    let h = echo();
    let calls = h.calls.clone();
    let f = serve(h).await;
    // Only the header of a 1 GiB frame; its payload never comes.
    let mut stream = f.client.into_inner();
    let mut header = BytesMut::new();
    encode_request_header(1 << 30, &mut header);
    let (res, _) = stream.write_all(header).await;
    res.unwrap();
    let mut client = Client::new(stream);
    let bad = bounded(client.recv()).await.unwrap();
    let Err((Status::BadRequest, msg)) = bad else {
        panic!("expected bad request, got {bad:?}");
    };
    assert!(msg.contains("1073741824"), "{msg}");
    assert_eof(bounded(client.recv()).await);
    drop(client);
    bounded(f.server).await.unwrap().unwrap();
    assert_eq!(f.counters.bad_requests.get(), 1);
    assert_eq!(calls.get(), 0);
}

#[spargio_rt::test(shards = 1)]
async fn the_idle_timeout_closes_the_connection() {
    let idle = Some(Duration::from_millis(50));
    let mut f = serve_one(
        LengthDelimited::new(),
        echo(),
        idle,
        CancellationToken::new(),
    )
    .await;
    let ok = bounded(f.client.call(Bytes::from_static(b"hi")))
        .await
        .unwrap();
    assert_eq!(ok, Ok(Bytes::from_static(b"hi")));
    // Then nothing: the server gives up on the connection.
    assert_eof(bounded(f.client.recv()).await);
    let counters = bounded(f.served()).await;
    assert_eq!(counters.idle_timeouts.get(), 1);
}

#[spargio_rt::test(shards = 1)]
async fn a_frame_trickled_in_does_not_push_the_idle_timeout_out() {
    // A byte every 30 ms, each well inside the 80 ms idle timeout: the
    // wait for the whole request is what the timeout bounds, so the
    // connection is closed although bytes keep coming.
    let idle = Some(Duration::from_millis(80));
    let h = echo();
    let calls = h.calls.clone();
    let f = serve_one(LengthDelimited::new(), h, idle, CancellationToken::new()).await;
    let mut stream = f.client.into_inner();
    let mut frame = BytesMut::new();
    encode_request_header(64, &mut frame);
    frame.extend_from_slice(&[b'x'; 64]);
    let mut cut = false;
    for byte in frame.iter().copied() {
        let (res, _) = stream.write_all(vec![byte]).await;
        if res.is_err() {
            cut = true;
            break;
        }
        spargio_rt::time::sleep(Duration::from_millis(30)).await;
    }
    let (res, _) = bounded(stream.read(vec![0u8; 16])).await;
    assert!(
        cut || matches!(res, Ok(0) | Err(_)),
        "the trickling client was served: {res:?}"
    );
    bounded(f.server).await.unwrap().unwrap();
    assert_eq!(f.counters.idle_timeouts.get(), 1);
    assert_eq!(calls.get(), 0);
}

#[spargio_rt::test(shards = 1)]
async fn a_client_that_stops_reading_is_cut_by_the_send_timeout() {
    // Each 1 KiB request is answered with 1 MiB; the client sends many and
    // reads nothing, so the server's writes stall once the socket buffers
    // are full. The send timeout ends the connection.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (client, accepted) = futures_util::join!(TcpStream::connect(addr), listener.accept());
    let mut client = client.unwrap();
    let (stream, _) = accepted.unwrap();
    let counters = Counters::new(1);
    let conn = Connection::for_test(None, &CancellationToken::new(), &counters)
        .with_send_timeout(Some(Duration::from_millis(100)));
    let big = pattern(1 << 20, 3);
    let h = handler(move |_req| std::future::ready(Ok(big.clone())));
    let calls = h.calls.clone();
    let server = spargio_rt::spawn_local(async move {
        LengthDelimited::new()
            .serve_connection(stream.into(), h, conn)
            .await
    });
    let mut requests = BytesMut::new();
    for _ in 0..64 {
        encode_request_header(1024, &mut requests);
        requests.extend_from_slice(&[b'r'; 1024]);
    }
    let (res, _) = bounded(client.write_all(requests)).await;
    res.unwrap();
    let served = bounded(server).await.unwrap();
    let err = served.expect_err("the stalled connection ended cleanly");
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    assert_eq!(counters.send_timeouts.get(), 1);
    assert!(calls.get() < 64, "every response went out: {}", calls.get());
}

#[spargio_rt::test(shards = 1)]
async fn closing_while_idle_closes_the_connection() {
    let mut f = serve(echo()).await;
    let ok = bounded(f.client.call(Bytes::from_static(b"hi")))
        .await
        .unwrap();
    assert_eq!(ok, Ok(Bytes::from_static(b"hi")));
    f.closing.cancel();
    assert_eof(bounded(f.client.recv()).await);
    let counters = bounded(f.served()).await;
    assert_eq!(counters.idle_timeouts.get(), 0);
}

#[spargio_rt::test(shards = 1)]
async fn requests_sent_before_a_connection_is_first_served_after_closing_are_refused() {
    // A connection handed to its shard just as the shutdown began: its
    // client's requests are already in the socket when it is first
    // served, with the server closing. They are answered ShuttingDown
    // (not processed, safe to retry), not discarded by the close.
    let closing = CancellationToken::new();
    closing.cancel();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (client, accepted) = futures_util::join!(Client::connect(addr), listener.accept());
    let mut client = client.unwrap();
    let (stream, _) = accepted.unwrap();
    client.feed(Bytes::from_static(b"one")).await.unwrap();
    client.feed(Bytes::from_static(b"two")).await.unwrap();
    client.flush().await.unwrap();
    let h = echo();
    let calls = h.calls.clone();
    let (server, _counters) = spawn_server(LengthDelimited::new(), h, None, &closing, stream);
    for _ in 0..2 {
        let refused = bounded(client.recv()).await.unwrap();
        assert_eq!(refused.map_err(|(s, _)| s), Err(Status::ShuttingDown));
    }
    assert_eof(bounded(client.recv()).await);
    assert_eq!(calls.get(), 0);
    bounded(server).await.unwrap().unwrap();
}

#[spargio_rt::test(shards = 1)]
async fn closing_during_a_request_answers_it_refuses_the_pipelined_rest_then_closes() {
    let closing = CancellationToken::new();
    let k = closing.clone();
    let h = handler(move |req: Bytes| {
        // The server starts shutting down while this request is handled.
        k.cancel();
        std::future::ready(Ok(req))
    });
    let calls = h.calls.clone();
    let mut f = serve_one(LengthDelimited::new(), h, None, closing).await;
    f.client.feed(Bytes::from_static(b"last")).await.unwrap();
    f.client.feed(Bytes::from_static(b"never")).await.unwrap();
    f.client.flush().await.unwrap();
    let last = bounded(f.client.recv()).await.unwrap();
    assert_eq!(last, Ok(Bytes::from_static(b"last")));
    // Read with "last", never handed to the service: refused, not lost.
    let never = bounded(f.client.recv()).await.unwrap();
    assert_eq!(never.map_err(|(s, _)| s), Err(Status::ShuttingDown));
    assert_eof(bounded(f.client.recv()).await);
    assert_eq!(calls.get(), 1);
    bounded(f.served()).await;
}

#[spargio_rt::test(shards = 1)]
async fn closing_while_a_request_is_half_received_waits_for_it_and_answers_it() {
    let h = echo();
    let calls = h.calls.clone();
    let Fixture {
        client,
        server,
        closing,
        ..
    } = serve(h).await;
    let mut stream = client.into_inner();
    // A whole request ("a"), then the header of a 7-byte one and 2 of its
    // bytes, in one write: the server reads them together.
    let (res, _) = stream
        .write_all(vec![0, 0, 0, 1, b'a', 0, 0, 0, 7, b'h', b'a'])
        .await;
    res.unwrap();
    let mut client = Client::new(stream);
    let first = bounded(client.recv()).await.unwrap();
    assert_eq!(first, Ok(Bytes::from_static(b"a")));
    // Shutdown begins while the server holds half a request. The pause
    // gives a server that wrongly closes now the time to do it.
    closing.cancel();
    spargio_rt::time::sleep(Duration::from_millis(20)).await;
    let mut stream = client.into_inner();
    let (res, _) = stream.write_all(b"lfway".to_vec()).await;
    res.unwrap();
    let mut client = Client::new(stream);
    let second = bounded(client.recv()).await.unwrap();
    assert_eq!(second, Ok(Bytes::from_static(b"halfway")));
    assert_eof(bounded(client.recv()).await);
    assert_eq!(calls.get(), 2);
    bounded(server).await.unwrap().unwrap();
}

#[spargio_rt::test(shards = 1)]
async fn a_client_closing_mid_frame_ends_the_connection_quietly() {
    let h = echo();
    let calls = h.calls.clone();
    let f = serve(h).await;
    let mut stream = f.client.into_inner();
    // A header for 10 bytes and only 3 of them.
    let (res, _) = stream.write_all(vec![0, 0, 0, 10, 1, 2, 3]).await;
    res.unwrap();
    drop(stream);
    bounded(f.server).await.unwrap().unwrap();
    assert_eq!(calls.get(), 0);
}

/// How many bytes wait unread in `s`'s receive queue (a non-blocking peek).
fn unread(s: &TcpStream) -> usize {
    let mut buf = [MaybeUninit::<u8>::uninit(); 64];
    s.with_socket(|s| s.recv_with_flags(&mut buf, libc::MSG_PEEK | libc::MSG_DONTWAIT))
        .unwrap_or(0)
}

#[spargio_rt::test(shards = 1)]
async fn a_service_that_is_not_ready_stops_the_reads() {
    let gate = CancellationToken::new();
    let mut h = echo();
    h.gate = Some(gate.clone());
    let (calls, readies) = (h.calls.clone(), h.readies.clone());
    // Accept with std so a duplicate of the server's socket can watch its
    // receive queue. The client's connect has completed the handshake, so
    // the blocking accept returns at once.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = Client::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (accepted, _) = listener.accept().unwrap();
    let watch = TcpStream::from_std(accepted.try_clone().unwrap());
    let closing = CancellationToken::new();
    let (server, _) = spawn_server(
        LengthDelimited::new(),
        h,
        None,
        &closing,
        TcpStream::from_std(accepted),
    );

    // A connection that has sent nothing holds no readiness.
    spargio_rt::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(readies.get(), 0, "an idle connection asked for readiness");

    // The first request is read; the server then waits in `ready`.
    client.send(Bytes::from_static(b"x")).await.unwrap();
    bounded(async {
        while readies.get() == 0 || unread(&watch) > 0 {
            spargio_rt::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    // The next request's 5 bytes reach the queue and stay there, unread,
    // while the service is not ready.
    client.send(Bytes::from_static(b"y")).await.unwrap();
    bounded(async {
        while unread(&watch) < 5 {
            spargio_rt::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    spargio_rt::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        unread(&watch),
        5,
        "the server read on before the service was ready"
    );
    assert_eq!(calls.get(), 0);

    gate.cancel();
    for want in [&b"x"[..], &b"y"[..]] {
        let reply = bounded(client.recv()).await.unwrap();
        assert_eq!(reply, Ok(Bytes::copy_from_slice(want)));
    }
    assert_eq!(calls.get(), 2);
    assert_eq!(unread(&watch), 0);
    drop((watch, client));
    bounded(server).await.unwrap().unwrap();
}

/// Serves a connection accepted with std, with a duplicate of the server's
/// socket to watch its receive queue with [`unread`]. The duplicate keeps
/// the socket open: drop it before the server closes.
async fn serve_watched<H>(
    protocol: LengthDelimited,
    h: H,
    closing: &CancellationToken,
) -> (Client, TcpStream, JoinHandle<io::Result<()>>)
where
    H: Handler<Bytes, Response = Bytes>,
{
    // The client's connect has completed the handshake, so the blocking
    // accept returns at once.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = Client::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (accepted, _) = listener.accept().unwrap();
    let watch = TcpStream::from_std(accepted.try_clone().unwrap());
    let (server, _) = spawn_server(protocol, h, None, closing, TcpStream::from_std(accepted));
    (client, watch, server)
}

/// Waits until `cond` holds, polling every millisecond.
async fn until(mut cond: impl FnMut() -> bool) {
    bounded(async {
        while !cond() {
            spargio_rt::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
}

#[spargio_rt::test(shards = 1)]
async fn closing_with_a_request_unread_refuses_it_and_still_delivers_the_last_reply_and_eof() {
    // Closing a socket with unread input sends a reset, which can discard
    // the last reply and makes the client read an error instead of EOF.
    // The request that arrived while the last one was handled is read and
    // refused (not processed, safe to retry), not discarded.
    let gate = CancellationToken::new();
    let g = gate.clone();
    let h = handler(move |req: Bytes| {
        let g = g.clone();
        async move {
            g.cancelled().await;
            Ok(req)
        }
    });
    let calls = h.calls.clone();
    let closing = CancellationToken::new();
    let (mut client, watch, server) = serve_watched(LengthDelimited::new(), h, &closing).await;
    // Request A is read and handled (held at the gate) ...
    client.send(Bytes::from_static(b"A")).await.unwrap();
    until(|| calls.get() == 1 && unread(&watch) == 0).await;
    // ... while request B reaches the server's receive queue, unread.
    client.send(Bytes::from_static(b"B")).await.unwrap();
    until(|| unread(&watch) == 5).await;
    closing.cancel();
    drop(watch);
    gate.cancel();
    let reply = bounded(client.recv()).await.unwrap();
    assert_eq!(reply, Ok(Bytes::from_static(b"A")));
    let refused = bounded(client.recv()).await.unwrap();
    assert_eq!(refused.map_err(|(s, _)| s), Err(Status::ShuttingDown));
    assert_eof(bounded(client.recv()).await);
    assert_eq!(calls.get(), 1);
    drop(client);
    bounded(server).await.unwrap().unwrap();
}

#[spargio_rt::test(shards = 1)]
async fn a_bad_request_during_shutdown_with_input_unread_still_gets_every_reply_and_eof() {
    // The client reads nothing until the server is done, so most of a large
    // reply still waits in the server's send queue when it closes: a reset
    // (closing with input unread) would discard it.
    const BIG: usize = 1 << 20;
    let h = echo();
    let calls = h.calls.clone();
    let closing = CancellationToken::new();
    let protocol = LengthDelimited::new().max_frame_len(2 * BIG);
    let (client, watch, server) = serve_watched(protocol, h, &closing).await;
    watch
        .with_socket(|s| s.set_send_buffer_size(4 * BIG))
        .unwrap();
    let mut stream = client.into_inner();
    // A large request, then half the header of the next: the server answers
    // the first and waits for the rest of the second even once shutdown
    // begins.
    let mut out = BytesMut::new();
    out.extend_from_slice(&(BIG as u32).to_be_bytes());
    out.extend_from_slice(&pattern(BIG, 3));
    out.extend_from_slice(&[0, 0x40]);
    let (res, _) = stream.write_all(out.to_vec()).await;
    res.unwrap();
    until(|| calls.get() == 1 && unread(&watch) == 0).await;
    spargio_rt::time::sleep(Duration::from_millis(20)).await;
    closing.cancel();
    drop(watch);
    // The rest of a too-large header (4 MiB), and more input after it that
    // the server does not read before it closes.
    let mut rest = vec![0, 0];
    rest.resize(2 + 16 * 1024, 7);
    let (res, _) = stream.write_all(rest).await;
    res.unwrap();
    bounded(server).await.unwrap().unwrap();
    let mut client = Client::new(stream);
    let reply = bounded(client.recv()).await.unwrap();
    assert_eq!(reply, Ok(pattern(BIG, 3)));
    let bad = bounded(client.recv()).await.unwrap();
    assert_eq!(
        bad,
        Err((
            Status::BadRequest,
            format!(
                "frame of {} bytes exceeds the limit of {} bytes",
                4 * BIG,
                2 * BIG
            )
        ))
    );
    assert_eof(bounded(client.recv()).await);
    assert_eq!(calls.get(), 1);
}

#[spargio_rt::test(shards = 1)]
async fn a_failed_ready_answers_the_next_request_then_closes() {
    let mut h = echo();
    h.fail_ready = true;
    let calls = h.calls.clone();
    let mut f = serve(h).await;
    let reply = bounded(f.client.call(Bytes::from_static(b"x")))
        .await
        .unwrap();
    assert_eq!(
        reply,
        Err((
            Status::ServiceError,
            "service error: overloaded".to_string()
        ))
    );
    assert_eof(bounded(f.client.recv()).await);
    assert_eq!(calls.get(), 0);
    bounded(f.served()).await;
}

#[spargio_rt::test(shards = 1)]
async fn a_failed_ready_answers_every_pipelined_request_then_closes() {
    let mut h = echo();
    h.fail_ready = true;
    let calls = h.calls.clone();
    let mut f = serve(h).await;
    for req in [&b"a"[..], b"b", b"c"] {
        f.client.feed(Bytes::from_static(req)).await.unwrap();
    }
    f.client.flush().await.unwrap();
    for i in 0..3 {
        let reply = bounded(f.client.recv()).await.unwrap();
        assert_eq!(
            reply,
            Err((
                Status::ServiceError,
                "service error: overloaded".to_string()
            )),
            "request {i}"
        );
    }
    assert_eof(bounded(f.client.recv()).await);
    assert_eq!(calls.get(), 0);
    bounded(f.served()).await;
}

#[spargio_rt::test(shards = 1)]
async fn a_failed_ready_answers_requests_sent_while_it_waited() {
    let gate = CancellationToken::new();
    let mut h = echo();
    h.gate = Some(gate.clone());
    h.fail_ready = true;
    let readies = h.readies.clone();
    let closing = CancellationToken::new();
    let (mut client, watch, server) = serve_watched(LengthDelimited::new(), h, &closing).await;
    client.send(Bytes::from_static(b"a")).await.unwrap();
    until(|| readies.get() == 1 && unread(&watch) == 0).await;
    // Sent while the service decides, after "a" was read.
    client.send(Bytes::from_static(b"b")).await.unwrap();
    until(|| unread(&watch) == 5).await;
    drop(watch);
    gate.cancel();
    for req in ["a", "b"] {
        let reply = bounded(client.recv()).await.unwrap();
        assert_eq!(
            reply,
            Err((
                Status::ServiceError,
                "service error: overloaded".to_string()
            )),
            "request {req}"
        );
    }
    assert_eof(bounded(client.recv()).await);
    drop(client);
    bounded(server).await.unwrap().unwrap();
}

#[spargio_rt::test(shards = 1)]
async fn the_client_refuses_a_response_over_its_limit() {
    let mut f = serve(echo()).await;
    f.client = f.client.max_frame_len(8);
    // 7 payload bytes + the status byte fit; 8 do not.
    let ok = bounded(f.client.call(pattern(7, 0))).await.unwrap();
    assert_eq!(ok, Ok(pattern(7, 0)));
    let err = bounded(f.client.call(pattern(8, 0))).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    // The frame is still in the stream, so the client cannot go on: it is
    // broken, and says so, instead of failing on that frame again.
    assert!(f.client.is_broken());
    let again = bounded(f.client.recv()).await.unwrap_err();
    assert_eq!(again.kind(), io::ErrorKind::BrokenPipe, "{again}");
    assert!(again.to_string().contains("exceeds the limit"), "{again}");
    bounded(f.served()).await;
}

#[spargio_rt::test(shards = 1)]
async fn the_largest_request_a_default_server_takes_comes_back_whole_to_a_default_client() {
    let mut f = serve(echo()).await;
    let big = pattern(DEFAULT_MAX_FRAME_LEN, 3);
    let got = bounded(f.client.call(big.clone())).await.unwrap();
    assert!(got == Ok(big), "the echo did not come back whole");
    bounded(f.served()).await;
}

#[spargio_rt::test(shards = 1)]
async fn a_call_whose_write_fails_still_gets_the_answer_the_server_sent() {
    // The server refuses the request it expects, as a server does one
    // over its limit, before the request is all out.
    let (mut client, server) =
        answered_client_that_cannot_write(Status::BadRequest, b"too large").await;
    let got = bounded(client.call(Bytes::from_static(b"x")))
        .await
        .unwrap();
    assert_eq!(got, Err((Status::BadRequest, "too large".to_string())));
    // The write side is gone: later writes say so.
    assert!(client.is_broken());
    let e = bounded(client.send(Bytes::from_static(b"y")))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("write failed"), "{e}");
    drop(bounded(server).await.unwrap().unwrap());
}

#[spargio_rt::test(shards = 1)]
async fn a_response_with_an_unknown_status_is_consumed_and_the_client_goes_on() {
    use spargio_rt::io::AsyncReadExt;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // A server by hand: reads two requests, answers the first with status
    // 9 and the second with "ok".
    let server = spargio_rt::spawn(async move {
        let (mut conn, _) = listener.accept().await?;
        let (res, _) = conn.read_exact(vec![0u8; 2 * (4 + 1)]).await;
        res?;
        let mut frames = BytesMut::from(&[0, 0, 0, 3, 9, b'?', b'?'][..]);
        encode_response(Status::Ok, b"ok", &mut frames);
        let (res, _) = conn.write_all(frames).await;
        res?;
        io::Result::Ok(conn)
    });
    let mut client = Client::connect(addr).await.unwrap();
    client.feed(Bytes::from_static(b"a")).await.unwrap();
    client.send(Bytes::from_static(b"b")).await.unwrap();
    let err = bounded(client.recv()).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert_eq!(err.to_string(), "unknown response status 9");
    assert!(!client.is_broken());
    let next = bounded(client.recv()).await.unwrap();
    assert_eq!(next, Ok(Bytes::from_static(b"ok")));
    drop(bounded(server).await.unwrap().unwrap());
}

#[spargio_rt::test(shards = 1)]
async fn a_server_that_closed_breaks_the_client() {
    let mut f = serve(echo()).await;
    f.closing.cancel();
    assert_eof(bounded(f.client.recv()).await);
    assert!(f.client.is_broken());
    let e = bounded(f.client.call(Bytes::from_static(b"x")))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::BrokenPipe, "{e}");
    assert!(e.to_string().contains("recv failed"), "{e}");
    bounded(f.served()).await;
}

/// Counts the polls of the future it wraps.
struct CountPolls<F> {
    inner: std::pin::Pin<Box<F>>,
    polls: Rc<Cell<usize>>,
}

impl<F: Future> Future for CountPolls<F> {
    type Output = F::Output;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        self.polls.set(self.polls.get() + 1);
        self.inner.as_mut().poll(cx)
    }
}

#[spargio_rt::test(shards = 1)]
async fn a_keep_alive_exchange_costs_the_connection_one_poll() {
    // The response goes out quietly while the read of the next request is
    // pending, so only the next request wakes the connection's task: one
    // poll per request, where a flush awaited before the read is two.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (client, accepted) = futures_util::join!(Client::connect(addr), listener.accept());
    let (mut client, (stream, _)) = (client.unwrap(), accepted.unwrap());
    let closing = CancellationToken::new();
    let conn = Connection::new(
        ConnInfo {
            id: 0,
            peer_addr: None,
            local_addr: None,
            peer_cred: None,
            proxy: None,
            shard: ShardId(0),
        },
        None,
        closing,
        Counters::new(1),
    );
    let polls = Rc::new(Cell::new(0));
    let server = spargio_rt::spawn_local(CountPolls {
        inner: Box::pin(async move {
            LengthDelimited::new()
                .serve_connection(stream.into(), echo(), conn)
                .await
        }),
        polls: polls.clone(),
    });
    const REQUESTS: usize = 32;
    for i in 0..REQUESTS {
        let req = pattern(16, i);
        let reply = bounded(client.call(req.clone())).await.unwrap();
        assert_eq!(reply, Ok(req));
    }
    drop(client);
    bounded(server).await.unwrap().unwrap();
    // One poll per request, plus the first and the one that sees EOF.
    assert!(
        polls.get() <= REQUESTS + 2,
        "{} polls for {REQUESTS} requests",
        polls.get()
    );
}

/// A server by hand: answers the first request only once `reply_now` is
/// cancelled, then answers a second one.
async fn late_replier(listener: TcpListener, reply_now: CancellationToken) -> io::Result<()> {
    use spargio_rt::io::AsyncReadExt;
    let (mut conn, _) = listener.accept().await?;
    for (i, payload) in [&b"first"[..], b"second"].into_iter().enumerate() {
        let (res, _) = conn.read_exact(vec![0u8; 4 + payload.len()]).await;
        res?;
        if i == 0 {
            reply_now.cancelled().await;
        }
        let mut frame = BytesMut::new();
        encode_response(Status::Ok, payload, &mut frame);
        let (res, _) = conn.write_all(frame).await;
        res?;
    }
    Ok(())
}

#[spargio_rt::test(shards = 1)]
async fn a_call_cancelled_midway_breaks_the_client_instead_of_misaligning_replies() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let reply_now = CancellationToken::new();
    let server = spargio_rt::spawn(late_replier(listener, reply_now.clone()));
    let mut client = Client::connect(addr).await.unwrap();
    let cut = spargio_rt::time::timeout(
        Duration::from_millis(20),
        client.call(Bytes::from_static(b"first")),
    )
    .await;
    assert!(cut.is_err(), "the first call was answered early: {cut:?}");
    // The answer to the cancelled call arrives now; the next call must not
    // take it for its own.
    reply_now.cancel();
    match bounded(client.call(Bytes::from_static(b"second"))).await {
        Err(e) => {
            assert_eq!(e.kind(), io::ErrorKind::BrokenPipe, "{e}");
            assert!(e.to_string().contains("call was cancelled"), "{e}");
        }
        Ok(reply) => panic!("a call on a client whose last call was cut got {reply:?}"),
    }
    assert!(client.is_broken());
    // Every method says so, not just call.
    let e = bounded(client.recv()).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    drop(client);
    let _ = bounded(server).await;
}

#[spargio_rt::test(shards = 1)]
async fn a_call_that_finished_leaves_the_client_whole() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let reply_now = CancellationToken::new();
    reply_now.cancel();
    let server = spargio_rt::spawn(late_replier(listener, reply_now));
    let mut client = Client::connect(addr).await.unwrap();
    for payload in [&b"first"[..], b"second"] {
        let reply = bounded(client.call(Bytes::copy_from_slice(payload))).await;
        assert_eq!(reply.unwrap(), Ok(Bytes::copy_from_slice(payload)));
        assert!(!client.is_broken());
    }
    bounded(server).await.unwrap().unwrap();
}

/// How the server ends an idle connection in
/// [`an_idle_connection_ended_by_the_server_still_delivers_an_unread_reply`].
#[derive(Clone, Copy, Debug)]
enum IdleEnd {
    /// A graceful shutdown begins while the connection waits for a request.
    Shutdown,
    /// The idle timeout passes.
    IdleTimeout,
    /// The idle timeout passes with part of the next request read; the
    /// client sends the rest well after the server began to close (later
    /// than the short linger of a close with nothing unread).
    IdleTimeoutMidRequest,
}

/// The client has a large reply still unread (most of it in the server's
/// send queue) when the server ends the connection while waiting for the
/// next request; the client then pipelines one more request. Closing the
/// socket at once would answer that request with a reset, which discards
/// the reply still queued: the server must close as it does elsewhere
/// (end its write side, drain the input), and the client read the whole
/// reply, then EOF.
async fn an_idle_connection_ended_by_the_server_still_delivers_an_unread_reply(end: IdleEnd) {
    const BIG: usize = 1 << 20;
    let reply = pattern(BIG, 5);
    let r = reply.clone();
    let h = handler(move |_req| std::future::ready(Ok(r.clone())));
    let calls = h.calls.clone();
    // The client's connect has completed the handshake, so the blocking
    // accept returns at once.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    // The client takes little of the reply into its own buffer ...
    client
        .with_socket(|s| s.set_recv_buffer_size(16 * 1024))
        .unwrap();
    let (accepted, _) = listener.accept().unwrap();
    let stream = TcpStream::from_std(accepted);
    // ... and the server's send queue holds the rest, so its write of the
    // reply finishes while the client reads nothing.
    stream
        .with_socket(|s| s.set_send_buffer_size(4 * BIG))
        .unwrap();
    let idle = match end {
        IdleEnd::Shutdown => None,
        IdleEnd::IdleTimeout | IdleEnd::IdleTimeoutMidRequest => Some(Duration::from_millis(50)),
    };
    let closing = CancellationToken::new();
    let counters = Counters::new(1);
    let lingering = Arc::new(crate::conn_end::ConnEnd::default());
    let conn = Connection::for_test(idle, &closing, &counters).with_end_flags(lingering.clone());
    let finished = Rc::new(Cell::new(false));
    let done = finished.clone();
    let server = spargio_rt::spawn_local(async move {
        let res = LengthDelimited::new()
            .serve_connection(stream.into(), h, conn)
            .await;
        done.set(true);
        res
    });
    let mut client = Client::new(client);
    client.send(Bytes::from_static(b"big")).await.unwrap();
    until(|| calls.get() == 1).await;
    let mut one_more = BytesMut::new();
    crate::codec::frame::encode_request(b"one more", &mut one_more);
    match end {
        IdleEnd::Shutdown => {
            // The pause lets the server write the reply and wait for the
            // next request, so the shutdown finds it idle.
            spargio_rt::time::sleep(Duration::from_millis(50)).await;
            closing.cancel();
        }
        IdleEnd::IdleTimeout => until(|| counters.idle_timeouts.get() == 1).await,
        IdleEnd::IdleTimeoutMidRequest => {
            let sent = client.get_ref().with_socket(|s| s.send(&one_more[..5]));
            assert_eq!(sent.unwrap(), 5);
            until(|| counters.idle_timeouts.get() == 1).await;
        }
    }
    // The server ends the connection: it lingers, or (closing at once) its
    // task ends; the pause then lets the socket's close land.
    until(|| lingering.is_lingering() || finished.get()).await;
    if !lingering.is_lingering() {
        spargio_rt::time::sleep(Duration::from_millis(50)).await;
    }
    if let IdleEnd::IdleTimeoutMidRequest = end {
        spargio_rt::time::sleep(Duration::from_millis(300)).await;
        let sent = client.get_ref().with_socket(|s| s.send(&one_more[5..]));
        assert_eq!(sent.unwrap(), one_more.len() - 5);
    } else {
        client.send(Bytes::from_static(b"one more")).await.unwrap();
    }
    let got = bounded(client.recv()).await.unwrap();
    assert_eq!(got, Ok(reply), "{end:?}");
    assert_eof(bounded(client.recv()).await);
    assert_eq!(calls.get(), 1);
    drop(client);
    bounded(server).await.unwrap().unwrap();
}

#[spargio_rt::test(shards = 1)]
async fn a_shutdown_while_idle_still_delivers_an_unread_reply() {
    an_idle_connection_ended_by_the_server_still_delivers_an_unread_reply(IdleEnd::Shutdown).await;
}

#[spargio_rt::test(shards = 1)]
async fn an_idle_timeout_still_delivers_an_unread_reply() {
    an_idle_connection_ended_by_the_server_still_delivers_an_unread_reply(IdleEnd::IdleTimeout)
        .await;
}

#[spargio_rt::test(shards = 1)]
async fn an_idle_timeout_midway_through_a_request_still_delivers_an_unread_reply() {
    an_idle_connection_ended_by_the_server_still_delivers_an_unread_reply(
        IdleEnd::IdleTimeoutMidRequest,
    )
    .await;
}

/// A client whose server (by hand) answers at once with `status` and
/// `payload` and keeps the connection, and whose own write side is shut:
/// every write fails (EPIPE). The server's task gives the connection back.
async fn answered_client_that_cannot_write(
    status: Status,
    payload: &'static [u8],
) -> (Client, JoinHandle<io::Result<TcpStream>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = spargio_rt::spawn(async move {
        let (mut conn, _) = listener.accept().await?;
        let mut frames = BytesMut::new();
        encode_response(status, payload, &mut frames);
        let (res, _) = conn.write_all(frames).await;
        res?;
        io::Result::Ok(conn)
    });
    let stream = TcpStream::connect(addr).await.unwrap();
    stream
        .shutdown_std(std::net::Shutdown::Write)
        .await
        .unwrap();
    (Client::new(stream), server)
}

#[spargio_rt::test(shards = 1)]
async fn after_a_failed_send_the_responses_already_sent_can_still_be_received() {
    let (mut client, server) = answered_client_that_cannot_write(Status::Ok, b"ok").await;
    let e = bounded(client.send(Bytes::from_static(b"x")))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::BrokenPipe, "{e}");
    assert!(client.is_broken());
    let e = bounded(client.send(Bytes::from_static(b"y")))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("an earlier send failed"), "{e}");
    // The response the server sent is still there to read.
    let got = bounded(client.recv()).await.unwrap();
    assert_eq!(got, Ok(Bytes::from_static(b"ok")));
    drop(bounded(server).await.unwrap().unwrap());
}
