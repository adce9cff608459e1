//! `ServeConnection`: one connection served without a `Server`.

use std::cell::Cell;
use std::convert::Infallible;
use std::io;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use std::future::Future;

use spargio_rt::net::{TcpListener, UnixStream};
use spargio_rt::sync::CancellationToken;
use spargio_rt::ShardId;
use spargio_service::codec::{Client, LengthDelimited, Status};
use spargio_service::{serve_connection, ServeConnection};
use tower::service_fn;

mod common;
use common::{echo, ok, run2, slow_echo};

#[test]
fn a_connection_from_a_user_accept_loop_is_served_until_the_client_leaves() {
    run2(|_| async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepting = spargio_rt::spawn_local(async move {
            let mut served = Vec::new();
            for _ in 0..2 {
                let (stream, _) = listener.accept().await.unwrap();
                served.push(spargio_rt::spawn_local(serve_connection(
                    LengthDelimited::new(),
                    stream,
                    echo(),
                )));
            }
            served
        });
        let mut a = Client::connect(addr).await.unwrap();
        let mut b = Client::connect(addr).await.unwrap();
        assert_eq!(ok(&mut a, b"one").await, Bytes::from_static(b"one"));
        assert_eq!(ok(&mut b, b"two").await, Bytes::from_static(b"two"));
        assert_eq!(ok(&mut a, b"three").await, Bytes::from_static(b"three"));
        drop((a, b));
        for served in accepting.await.unwrap() {
            served.await.unwrap().unwrap();
        }
    });
}

#[test]
fn a_not_send_service_runs_inline_and_a_panic_fails_only_its_request() {
    run2(|_| async {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let calls = Rc::new(Cell::new(0u32));
        let seen = calls.clone();
        let service = service_fn(move |req: Bytes| {
            seen.set(seen.get() + 1);
            assert!(&req[..] != b"boom", "the handler blew up");
            let n = seen.get();
            async move { Ok::<_, Infallible>(Bytes::from(n.to_string())) }
        });
        let mut sc = ServeConnection::new(LengthDelimited::new());
        let stats = sc.stats();
        let serving = spargio_rt::spawn_local(async move { sc.serve(ours, service).await });
        let mut client = Client::new(theirs);
        assert_eq!(ok(&mut client, b"a").await, Bytes::from_static(b"1"));
        let reply = client.call(Bytes::from_static(b"boom")).await.unwrap();
        assert_eq!(reply.unwrap_err().0, Status::Panicked);
        assert_eq!(ok(&mut client, b"b").await, Bytes::from_static(b"3"));
        drop(client);
        serving.await.unwrap().unwrap();
        assert_eq!(calls.get(), 3);
        let s = stats.snapshot();
        assert_eq!((s.requests, s.panics), (3, 1), "{s:?}");
    });
}

/// `fut`, or a failure naming `what` if it has not finished in 20 s (a
/// hang, not a slow machine).
async fn bounded<F: Future>(what: &str, fut: F) -> F::Output {
    match spargio_rt::time::timeout(Duration::from_secs(20), fut).await {
        Ok(out) => out,
        Err(_) => panic!("{what} never finished"),
    }
}

#[test]
fn the_graceful_shutdown_token_lets_the_request_in_progress_finish() {
    run2(|handle| async move {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let started = Arc::new(AtomicUsize::new(0));
        let shutdown = CancellationToken::new();
        let sc =
            ServeConnection::new(LengthDelimited::new()).graceful_shutdown(shutdown.child_token());
        let slow = slow_echo(started.clone(), Duration::from_millis(100));
        // Served on the other shard than this test's.
        let serving =
            handle.spawn_local_on(
                ShardId(1),
                move || async move { sc.serve(ours, slow).await },
            );
        let mut client = Client::new(theirs);
        client.send(Bytes::from_static(b"slow")).await.unwrap();
        common::until("started.load(Ordering::SeqCst) == 0 turns false", || {
            started.load(Ordering::SeqCst) != 0
        })
        .await;
        shutdown.cancel();
        // Answered, then the connection ends without the client leaving.
        let reply = bounded("the reply", client.recv()).await.unwrap();
        assert_eq!(reply.unwrap(), Bytes::from_static(b"slow"));
        bounded("serve", serving).await.unwrap().unwrap();
        assert!(client.recv().await.is_err(), "the connection is closed");
    });
}

#[test]
fn a_token_cancelled_before_serving_closes_an_idle_connection_at_once() {
    run2(|_| async {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let token = CancellationToken::new();
        token.cancel();
        let sc = ServeConnection::new(LengthDelimited::new()).graceful_shutdown(token);
        let serving = spargio_rt::spawn_local(async move { sc.serve(ours, echo()).await });
        let mut client = Client::new(theirs);
        bounded("serve", serving).await.unwrap().unwrap();
        assert!(client.recv().await.is_err(), "the connection is closed");
    });
}

#[test]
fn the_shutdown_timeout_cuts_a_request_that_outlasts_it() {
    run2(|_| async {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let started = Arc::new(AtomicUsize::new(0));
        let token = CancellationToken::new();
        let sc = ServeConnection::new(LengthDelimited::new())
            .graceful_shutdown(token.clone())
            .shutdown_timeout(Duration::from_millis(50));
        let slow = slow_echo(started.clone(), Duration::from_secs(600));
        let serving = spargio_rt::spawn_local(async move { sc.serve(ours, slow).await });
        let mut client = Client::new(theirs);
        client.send(Bytes::from_static(b"slow")).await.unwrap();
        common::until("started.load(Ordering::SeqCst) == 0 turns false", || {
            started.load(Ordering::SeqCst) != 0
        })
        .await;
        token.cancel();
        let cut = bounded("serve", serving).await.unwrap().unwrap_err();
        assert_eq!(cut.kind(), io::ErrorKind::TimedOut);
        assert!(client.recv().await.is_err(), "cut without a reply");
    });
}

#[test]
fn idle_and_request_timeouts_apply_to_a_single_connection() {
    run2(|_| async {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let mut sc = ServeConnection::new(LengthDelimited::new())
            .idle_timeout(Duration::from_millis(200))
            .request_timeout(Duration::from_millis(50));
        let stats = sc.stats();
        let started = Arc::new(AtomicUsize::new(0));
        let slow = slow_echo(started, Duration::from_secs(30));
        let serving = spargio_rt::spawn_local(async move { sc.serve(ours, slow).await });
        let mut client = Client::new(theirs);
        let reply = client.call(Bytes::from_static(b"slow")).await.unwrap();
        assert_eq!(reply.unwrap_err().0, Status::TimedOut);
        // Then nothing: the idle timeout closes the connection.
        bounded("serve", serving).await.unwrap().unwrap();
        let s = stats.snapshot();
        assert_eq!((s.request_timeouts, s.idle_timeouts), (1, 1), "{s:?}");
    });
}

#[test]
fn clones_made_after_stats_count_together() {
    run2(|_| async {
        let mut sc = ServeConnection::new(LengthDelimited::new());
        let stats = sc.stats();
        for n in 0..3u8 {
            let (ours, theirs) = UnixStream::pair().unwrap();
            let sc = sc.clone();
            let serving = spargio_rt::spawn_local(async move { sc.serve(ours, echo()).await });
            let mut client = Client::new(theirs);
            for _ in 0..=n {
                ok(&mut client, b"x").await;
            }
            drop(client);
            bounded("serve", serving).await.unwrap().unwrap();
        }
        assert_eq!(stats.snapshot().requests, 1 + 2 + 3);
    });
}

#[test]
fn clones_serving_on_every_shard_at_once_count_every_request() {
    // The counters are made before the runtime's shard count is known and
    // written by connections on every shard at the same time: no update
    // may be lost (a lost one left `requests_in_flight` wrapped near 2^64).
    const CONNECTIONS: usize = 8;
    const CALLS: usize = 1000;
    run2(|handle| async move {
        let mut sc = ServeConnection::new(LengthDelimited::new());
        let stats = sc.stats();
        let mut served = Vec::new();
        let mut clients = Vec::new();
        for i in 0..CONNECTIONS {
            let (ours, theirs) = UnixStream::pair().unwrap();
            let sc = sc.clone();
            served.push(handle.spawn_local_on(ShardId(i % 2), move || async move {
                sc.serve(ours, echo()).await
            }));
            clients.push(
                handle.spawn_local_on(ShardId((i + 1) % 2), move || async move {
                    let mut client = Client::new(theirs);
                    for _ in 0..CALLS {
                        ok(&mut client, b"x").await;
                    }
                }),
            );
        }
        for client in clients {
            client.await.unwrap();
        }
        for serving in served {
            bounded("serve", serving).await.unwrap().unwrap();
        }
        let s = stats.snapshot();
        assert_eq!(s.requests, (CONNECTIONS * CALLS) as u64);
        assert_eq!((s.requests_in_flight, s.requests_awaiting_ready), (0, 0));
    });
}

#[test]
fn serving_off_a_shard_is_refused() {
    let (ours, _theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let stream = UnixStream::from_std(ours);
    // Off any runtime, the first poll answers.
    let fut = std::pin::pin!(serve_connection(LengthDelimited::new(), stream, echo()));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let std::task::Poll::Ready(res) = fut.poll(&mut cx) else {
        panic!("serving off a shard waited instead of failing");
    };
    assert_eq!(res.unwrap_err().kind(), io::ErrorKind::Unsupported);
}
