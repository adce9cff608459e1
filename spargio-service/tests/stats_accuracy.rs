//! Server stats that must count requests and connections however they end:
//! stolen handlers that fail, connections a send timeout ends during the
//! shutdown.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use spargio_rt::sync::CancellationToken;
use spargio_rt::{RuntimeHandle, ShardId};
use spargio_service::codec::{Client, LengthDelimited};
use spargio_service::{AcceptMode, Server};
use tower::service_fn;

mod common;
use common::{burn, four_clients_from_shard_1, run2, stealable_on_shard_0, until_stats};

#[test]
fn a_stolen_handler_that_panics_still_counts_as_a_steal() {
    run2(|handle| async move {
        let server = stealable_on_shard_0(&handle);
        let addr = server.local_addr();
        let stats = server.stats();
        let stop = server.shutdown_handle();
        // Every handler runs in one poll, notes whether that poll was away
        // from the connections' shard, and panics.
        let away = Arc::new(AtomicU64::new(0));
        let seen = away.clone();
        let service = service_fn(move |_req: Bytes| {
            let seen = seen.clone();
            async move {
                burn(Duration::from_millis(3));
                if RuntimeHandle::current().current_shard() != Some(ShardId(0)) {
                    seen.fetch_add(1, Ordering::Relaxed);
                }
                if true {
                    panic!("the handler fails after its work");
                }
                Ok::<_, Infallible>(Bytes::new())
            }
        });
        let serving = handle.spawn_local(server.serve_service(LengthDelimited::new(), service));
        for answer in four_clients_from_shard_1(&handle, addr).await {
            assert!(answer.is_err(), "a panicking handler answers with an error");
        }
        stop.shutdown();
        serving.await.unwrap().unwrap();
        let s = stats.snapshot();
        assert_eq!(s.panics, 32);
        let away = away.load(Ordering::Relaxed);
        assert!(away > 0, "no handler ran away from shard 0: {s:?}");
        assert_eq!(s.handler_steals, away, "{s:?}");
    });
}

#[test]
fn a_connection_a_send_timeout_ends_during_the_shutdown_is_not_graceful() {
    run2(|handle| async move {
        let server = Server::builder()
            .accept(AcceptMode::Pinned(ShardId(0)))
            .send_timeout(Duration::from_millis(200))
            .shutdown_timeout(Duration::from_secs(60))
            .bind(&handle, "127.0.0.1:0")
            .unwrap();
        let addr = server.local_addr();
        let stats = server.stats();
        let stop = server.shutdown_handle();
        // The answer, far larger than the sockets' buffers, comes once
        // the shutdown has begun.
        let release = CancellationToken::new();
        let released = release.clone();
        let service = service_fn(move |_req: Bytes| {
            let released = released.clone();
            async move {
                released.cancelled().await;
                Ok::<_, Infallible>(Bytes::from(vec![7u8; 6 << 20]))
            }
        });
        let serving = handle.spawn_local(server.serve_service(LengthDelimited::new(), service));
        // The client asks and never reads.
        let mut c = Client::connect(addr).await.unwrap();
        c.feed(Bytes::from_static(b"big")).await.unwrap();
        c.flush().await.unwrap();
        until_stats(&stats, "the request in the service", |s| {
            s.requests_in_flight == 1
        })
        .await;
        stop.shutdown();
        release.cancel();
        let report = spargio_rt::time::timeout(Duration::from_secs(30), serving)
            .await
            .expect("the send timeout ends the connection")
            .unwrap()
            .unwrap();
        drop(c);
        assert_eq!(stats.snapshot().send_timeouts, 1);
        assert_eq!(report.open_at_start, 1);
        assert_eq!(report.send_timeouts, 1, "{report:?}");
        assert_eq!((report.closed_gracefully, report.cut), (0, 0), "{report:?}");
    });
}
