//! Behaviour of `spargio_rt::boundary`: calls from plain threads and foreign
//! executors into spargio tasks, overload, deadlines, cancellation, closing.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::Duration;

use spargio_rt::boundary::{self, BoundaryClient, BoundaryError, BoundaryServer};
use spargio_rt::{Runtime, ShardId};

/// A tiny foreign executor (like `futures::executor::block_on`): polls on
/// the calling thread, parks between wake-ups. Stands in for tokio.
fn block_on<F: Future>(fut: F) -> F::Output {
    struct Unpark(thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        thread::park();
    }
}

/// Polls `fut` once with a waker that does nothing.
fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    let waker = Waker::from(Arc::new(Noop));
    std::pin::Pin::new(fut).poll(&mut Context::from_waker(&waker))
}

fn runtime() -> Runtime {
    Runtime::builder().shards(2).build().unwrap()
}

/// Spawns `n` doubling servers, one per shard round-robin.
fn serve_doubling(rt: &Runtime, server: BoundaryServer<u64, u64>, n: usize) {
    let h = rt.handle();
    for i in 0..n {
        let server = server.clone();
        h.spawn_pinned(ShardId(i % h.shard_count()), async move {
            while let Ok(req) = server.recv().await {
                let v = *req.request();
                let _ = req.respond(v * 2);
            }
        });
    }
}

#[test]
fn round_trip_from_plain_thread() {
    let rt = runtime();
    let (client, server) = boundary::channel::<u64, u64>(4);
    serve_doubling(&rt, server, 2);
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let client = client.clone();
            thread::spawn(move || {
                for i in 0..100 {
                    let v = t * 1000 + i;
                    assert_eq!(client.call_blocking(v), Ok(v * 2));
                }
                assert_eq!(
                    client.call_blocking_with_timeout(1, Duration::from_secs(60)),
                    Ok(2)
                );
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn round_trip_from_foreign_executor() {
    let rt = runtime();
    let (client, server) = boundary::channel::<u64, u64>(2);
    serve_doubling(&rt, server, 1);
    let out = thread::spawn(move || {
        block_on(async move {
            let mut sum = 0;
            for i in 0..50 {
                sum += client.call(i).await.unwrap();
            }
            sum += client
                .call_with_timeout(100, Duration::from_secs(60))
                .await
                .unwrap();
            sum += client.try_call(1000).unwrap().await.unwrap();
            sum
        })
    })
    .join()
    .unwrap();
    assert_eq!(out, 2 * ((0..50).sum::<u64>() + 100 + 1000));
}

#[test]
fn spargio_task_calls_service_on_plain_thread() {
    // The other direction: the service runs on a plain thread.
    let (client, server) = boundary::channel::<String, usize>(8);
    let service = thread::spawn(move || {
        while let Ok(req) = block_on(server.recv()) {
            let n = req.request().len();
            req.respond(n).unwrap();
        }
    });
    let out = spargio_rt::run(|h| async move {
        let mut tasks = Vec::new();
        for i in 0..10 {
            let c = client.clone();
            tasks.push(h.spawn(async move { c.call("x".repeat(i)).await }));
        }
        let mut lens = Vec::new();
        for t in tasks {
            lens.push(t.await.unwrap().unwrap());
        }
        lens
    })
    .unwrap();
    assert_eq!(out, (0..10).collect::<Vec<_>>());
    // All clients are gone (moved into `run` and dropped): the service ends.
    service.join().unwrap();
}

#[test]
fn try_call_reports_overload_when_queue_full() {
    let (client, server) = boundary::channel::<u8, u8>(1);
    let mut first = client.try_call(1).unwrap();
    assert_eq!(client.try_call(2).unwrap_err(), BoundaryError::Overloaded);
    assert_eq!(client.queue_len(), 1);
    assert_eq!(first.try_get(), Ok(None));
    // Draining the queue makes room again.
    let req = server.try_recv().unwrap().unwrap();
    let mut second = client.try_call(2).unwrap();
    req.respond(10).unwrap();
    assert_eq!(first.try_get(), Ok(Some(10)));
    server.try_recv().unwrap().unwrap().respond(20).unwrap();
    assert_eq!(block_on(&mut second), Ok(20));
}

#[test]
fn call_waits_for_room_instead_of_failing() {
    let rt = runtime();
    let (client, server) = boundary::channel::<u64, u64>(1);
    let _held = client.try_call(5).unwrap(); // queue now full
    let c = client.clone();
    let caller = thread::spawn(move || c.call_blocking(7));
    // Start serving only now; both calls get answered.
    serve_doubling(&rt, server, 1);
    assert_eq!(caller.join().unwrap(), Ok(14));
}

#[test]
fn unanswered_call_times_out_and_server_sees_it() {
    let (client, server) = boundary::channel::<u8, u8>(4);
    // The call queues its request at its first poll; the server takes it
    // at once (no deadline can have passed) and never answers.
    let mut call = Box::pin(client.call_with_timeout(1, Duration::from_millis(20)));
    assert!(poll_once(&mut call).is_pending());
    let req = server
        .try_recv()
        .unwrap()
        .expect("the call's request is queued");
    assert_eq!(block_on(call), Err(BoundaryError::Timeout));
    assert!(req.deadline().is_some());
    assert!(req.is_expired());
    assert!(req.is_cancelled());
    assert_eq!(req.respond(9), Err(BoundaryError::Canceled));

    // A timed-out call still in the queue (nobody served it in time) is
    // skipped by the server.
    let r = client.call_blocking_with_timeout(2, Duration::from_millis(20));
    assert_eq!(r, Err(BoundaryError::Timeout));
    assert!(server.try_recv().unwrap().is_none());
    assert_eq!(server.expired_count(), 1);
    assert_eq!(server.abandoned_count(), 0);
}

#[test]
fn a_call_that_times_out_in_the_queue_counts_as_expired() {
    // The caller gives up at its deadline (dropping its reply slot) before
    // any server looks: that is an expiry, not an abandonment.
    let (client, server) = boundary::channel::<u8, u8>(4);
    let r = block_on(client.call_with_timeout(1, Duration::from_millis(50)));
    assert_eq!(r, Err(BoundaryError::Timeout));
    assert!(server.try_recv().unwrap().is_none());
    assert_eq!(server.expired_count(), 1);
    assert_eq!(server.abandoned_count(), 0);
}

#[test]
fn dropping_call_future_cancels_request() {
    let (client, server) = boundary::channel::<u8, u8>(4);
    // Dropped after being queued, before the server received it: skipped.
    let mut call = Box::pin(client.call(1));
    assert!(poll_once(&mut call).is_pending());
    drop(call);
    assert!(server.try_recv().unwrap().is_none());
    assert_eq!(server.abandoned_count(), 1);

    // Dropped after the server received it: the server can tell.
    let mut call = Box::pin(client.call(2));
    assert!(poll_once(&mut call).is_pending());
    let mut req = server.try_recv().unwrap().unwrap();
    assert_eq!(*req.request(), 2);
    assert!(!req.is_cancelled());
    drop(call);
    assert!(req.is_cancelled());
    block_on(req.cancelled()); // resolves
    assert_eq!(req.respond(3), Err(BoundaryError::Canceled));

    // Same for a ticket.
    let ticket = client.try_call(4).unwrap();
    let (v, responder) = server.try_recv().unwrap().unwrap().into_parts();
    assert_eq!(v, 4);
    drop(ticket);
    assert_eq!(responder.respond(5), Err(BoundaryError::Canceled));
}

#[test]
fn cancelled_future_wakes_server_task() {
    let rt = runtime();
    let (client, server) = boundary::channel::<u8, u8>(4);
    let (got_tx, got_rx) = std::sync::mpsc::channel();
    let server_task = rt.handle().spawn(async move {
        let mut req = server.recv().await.unwrap();
        got_tx.send(()).unwrap();
        // Work that would take forever, cut short by the caller leaving.
        let work = spargio_rt::time::sleep(Duration::from_secs(3600));
        let mut work = pin!(work);
        let mut gone = pin!(req.cancelled());
        std::future::poll_fn(|cx| {
            if gone.as_mut().poll(cx).is_ready() {
                return Poll::Ready(true);
            }
            work.as_mut().poll(cx).map(|_| false)
        })
        .await
    });
    let caller = rt.handle().spawn(async move { client.call(1).await });
    got_rx.recv().unwrap();
    caller.abort();
    assert!(rt.block_on(caller).unwrap_err().is_cancelled());
    assert!(rt.block_on(server_task).unwrap());
}

#[test]
fn server_dropping_request_gives_canceled() {
    let rt = runtime();
    let (client, server) = boundary::channel::<u8, u8>(4);
    rt.handle().spawn(async move {
        while let Ok(req) = server.recv().await {
            drop(req);
        }
    });
    assert_eq!(client.call_blocking(1), Err(BoundaryError::Canceled));
    assert_eq!(
        block_on(client.call_with_timeout(1, Duration::from_secs(60))),
        Err(BoundaryError::Canceled)
    );
}

#[test]
fn all_clients_dropped_closes_after_drain() {
    let (client, server) = boundary::channel::<u8, u8>(4);
    let c2 = client.clone();
    let ticket = client.try_call(1).unwrap();
    drop(client);
    assert!(!server.is_closed());
    drop(c2);
    // The queued request is still delivered, then Closed.
    let req = block_on(server.recv()).unwrap();
    req.respond(2).unwrap();
    assert_eq!(block_on(ticket), Ok(2));
    assert_eq!(block_on(server.recv()).unwrap_err(), BoundaryError::Closed);
    assert_eq!(server.try_recv().unwrap_err(), BoundaryError::Closed);
    assert_eq!(
        block_on(server.recv_timeout(Duration::from_secs(60))).unwrap_err(),
        BoundaryError::Closed
    );
}

#[test]
fn recv_timeout_elapses() {
    let (client, server) = boundary::channel::<u8, u8>(4);
    let r = block_on(server.recv_timeout(Duration::from_millis(5)));
    assert_eq!(r.unwrap_err(), BoundaryError::Timeout);
    // Also on a spargio shard.
    let r = spargio_rt::run(move |_| async move {
        let r = server.recv_timeout(Duration::from_millis(5)).await;
        r.map(|_| ())
    })
    .unwrap();
    assert_eq!(r, Err(BoundaryError::Timeout));
    drop(client);
}

#[test]
fn last_server_dropped_fails_queued_and_new_calls() {
    let (client, server) = boundary::channel::<u8, u8>(4);
    let s2 = server.clone();
    let t1 = client.try_call(1).unwrap();
    let t2 = client.try_call(2).unwrap();
    drop(server);
    assert!(!client.is_closed());
    drop(s2);
    assert!(client.is_closed());
    assert_eq!(block_on(t1), Err(BoundaryError::Closed));
    assert_eq!(block_on(t2), Err(BoundaryError::Closed));
    assert_eq!(client.call_blocking(3), Err(BoundaryError::Closed));
    assert_eq!(client.try_call(4).unwrap_err(), BoundaryError::Closed);
}

#[test]
fn server_close_rejects_new_calls_but_drains_queue() {
    let (client, server) = boundary::channel::<u8, u8>(4);
    let t = client.try_call(1).unwrap();
    assert!(server.close());
    assert_eq!(client.try_call(2).unwrap_err(), BoundaryError::Closed);
    server.try_recv().unwrap().unwrap().respond(11).unwrap();
    assert_eq!(block_on(t), Ok(11));
    assert_eq!(server.try_recv().unwrap_err(), BoundaryError::Closed);
}

#[test]
fn error_is_std_error_and_displays() {
    fn check<E: std::error::Error + Send + Sync + 'static>(_: &E) {}
    for e in [
        BoundaryError::Overloaded,
        BoundaryError::Closed,
        BoundaryError::Timeout,
        BoundaryError::Canceled,
    ] {
        check(&e);
        assert!(!e.to_string().is_empty());
        let io: std::io::Error = e.into();
        assert!(io.get_ref().is_some());
    }
}

#[test]
fn halves_and_futures_are_send_sync() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    let (client, server) = boundary::channel::<String, Vec<u8>>(1);
    send_sync(&client);
    send_sync(&server);
    send(&client.call(String::new()));
    send(&client.call_with_timeout(String::new(), Duration::from_secs(1)));
    send(&server.recv());
    send(&server.recv_timeout(Duration::from_secs(1)));
    let _: (
        BoundaryClient<String, Vec<u8>>,
        BoundaryServer<String, Vec<u8>>,
    ) = (client.clone(), server.clone());
}

#[test]
fn a_call_whose_deadline_has_passed_is_never_queued() {
    let (client, server) = boundary::channel::<u8, u8>(1);
    let past = std::time::Instant::now() - Duration::from_millis(1);
    assert_eq!(
        block_on(client.call_until(1, past)),
        Err(BoundaryError::Timeout)
    );
    // Its slot was never taken: the queue is empty and has room.
    assert_eq!(client.queue_len(), 0);
    let _ticket = client.try_call(2).unwrap();
    assert_eq!(server.try_recv().unwrap().unwrap().request(), &2);
}
