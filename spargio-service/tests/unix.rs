//! Serving on Unix sockets: `ServerBuilder::bind_unix` and `listen_unix`.

use std::convert::Infallible;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use socket2::{Domain, SockAddr, Socket, Type};
use spargio_rt::ShardId;
use spargio_service::codec::{Client, LengthDelimited};
use spargio_service::{AcceptMode, ConnInfo, HandlerPlacement, Server};
use tower::service_fn;

mod common;
use common::{echo, ok, run2, slow_echo, until_stats};

/// A make-service whose service answers every request with what its
/// connection's `ConnInfo` said: shard, then the peer's pid, uid and gid
/// (or `-`), then whether it had IP addresses.
fn info_echo() -> impl tower::Service<
    ConnInfo,
    Response = impl tower::Service<Bytes, Response = Bytes, Error = Infallible, Future: Send>
                   + Send
                   + 'static,
    Error = Infallible,
    Future: Send,
> + Clone
       + Send
       + 'static {
    service_fn(|info: ConnInfo| async move {
        let cred = match info.peer_cred {
            Some(c) => format!("{} {} {}", c.pid, c.uid, c.gid),
            None => "-".to_owned(),
        };
        let text = format!(
            "{} {} {}",
            info.shard.0,
            cred,
            info.peer_addr.is_some() || info.local_addr.is_some()
        );
        Ok::<_, Infallible>(service_fn(move |_req: Bytes| {
            let text = text.clone();
            async move { Ok::<_, Infallible>(Bytes::from(text)) }
        }))
    })
}

#[test]
fn unix_connections_spread_over_shards_and_carry_the_peer_credentials() {
    run2(|handle| async move {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rr.sock");
        let server = Server::builder().bind_unix(&handle, &path).unwrap();
        assert_eq!(server.local_addr().as_pathname(), Some(path.as_path()));
        let stop = server.shutdown_handle();
        let serving = handle.spawn_local(server.serve(LengthDelimited::new(), info_echo()));
        // SAFETY: geteuid and getegid cannot fail and touch no memory.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let mut per_shard = [0usize; 2];
        let mut clients = Vec::new();
        for _ in 0..8 {
            let mut c = Client::connect_unix(&path).await.unwrap();
            let reply = ok(&mut c, b"?").await;
            let text = String::from_utf8(reply.to_vec()).unwrap();
            let parts: Vec<&str> = text.split(' ').collect();
            assert_eq!(
                parts[1..],
                [
                    std::process::id().to_string(),
                    uid.to_string(),
                    gid.to_string(),
                    "false".to_owned()
                ],
                "ConnInfo of a Unix connection: {text}"
            );
            per_shard[parts[0].parse::<usize>().unwrap()] += 1;
            clients.push(c);
        }
        assert_eq!(per_shard, [4, 4], "round-robin over two shards");
        drop(clients);
        stop.shutdown();
        let report = serving.await.unwrap().unwrap();
        assert_eq!(report.cut, 0);
        // The server leaves the socket file to its owner.
        assert!(path.exists());
    });
}

#[test]
fn a_pinned_unix_server_serves_every_connection_on_its_shard() {
    run2(|handle| async move {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pinned.sock");
        let server = Server::builder()
            .accept(AcceptMode::Pinned(ShardId(1)))
            .bind_unix(&handle, &path)
            .unwrap();
        let stop = server.shutdown_handle();
        let serving = handle.spawn_local(server.serve(LengthDelimited::new(), info_echo()));
        for _ in 0..4 {
            let mut c = Client::connect_unix(&path).await.unwrap();
            let reply = ok(&mut c, b"?").await;
            assert!(reply.starts_with(b"1 "), "{reply:?}");
        }
        stop.shutdown();
        serving.await.unwrap().unwrap();
    });
}

#[test]
fn bind_unix_refuses_reuse_port_a_taken_path_and_a_nul_byte() {
    run2(|handle| async move {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("taken.sock");
        let err = Server::builder()
            .accept(AcceptMode::ReusePort)
            .bind_unix(&handle, &path)
            .err()
            .expect("ReusePort on a Unix socket");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("ReusePort"), "{err}");
        assert!(!path.exists(), "nothing bound before refusing");

        let _first = Server::builder().bind_unix(&handle, &path).unwrap();
        let err = Server::builder()
            .bind_unix(&handle, &path)
            .err()
            .expect("a second server on the same path");
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);

        let err = Server::builder()
            .bind_unix(&handle, dir.path().join("a\0b"))
            .err()
            .expect("a NUL inside the path");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);

        let err = Server::builder()
            .accept(AcceptMode::Pinned(ShardId(5)))
            .bind_unix(&handle, dir.path().join("shard.sock"))
            .err()
            .expect("a shard that does not exist");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    });
}

#[test]
fn an_abstract_unix_socket_is_served_without_a_file() {
    run2(|handle| async move {
        let name = format!("\0spargio-service-test-{}", std::process::id());
        let server = Server::builder().bind_unix(&handle, &name).unwrap();
        let stop = server.shutdown_handle();
        let serving = handle.spawn_local(server.serve_service(LengthDelimited::new(), echo()));
        let mut c = Client::connect_unix(&name).await.unwrap();
        assert_eq!(
            ok(&mut c, b"abstract").await,
            Bytes::from_static(b"abstract")
        );
        drop(c);
        stop.shutdown();
        serving.await.unwrap().unwrap();
    });
}

/// A Unix socket of `ty` bound at `path`, listening or not.
fn unix_socket(path: &Path, ty: Type, listening: bool) -> std::os::unix::net::UnixListener {
    let s = Socket::new(Domain::UNIX, ty, None).unwrap();
    s.bind(&SockAddr::unix(path).unwrap()).unwrap();
    if listening {
        s.listen(16).unwrap();
    }
    std::os::unix::net::UnixListener::from(std::os::fd::OwnedFd::from(s))
}

#[test]
fn listen_unix_serves_a_listener_made_elsewhere_and_refuses_other_sockets() {
    run2(|handle| async move {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("given.sock");
        let given = unix_socket(&path, Type::STREAM, true);
        let server = Server::builder().listen_unix(&handle, given).unwrap();
        let stop = server.shutdown_handle();
        let serving = handle.spawn_local(server.serve_service(LengthDelimited::new(), echo()));
        let mut c = Client::connect_unix(&path).await.unwrap();
        assert_eq!(ok(&mut c, b"given").await, Bytes::from_static(b"given"));
        drop(c);
        stop.shutdown();
        serving.await.unwrap().unwrap();

        for (name, ty, listening, why) in [
            ("idle.sock", Type::STREAM, false, "listening turns false"),
            ("seq.sock", Type::SEQPACKET, true, "a stream turns false"),
        ] {
            let s = unix_socket(&dir.path().join(name), ty, listening);
            let err = Server::builder()
                .listen_unix(&handle, s)
                .err()
                .unwrap_or_else(|| panic!("a socket {why} was taken"));
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{why}: {err}");
        }
        let reuse = unix_socket(&dir.path().join("reuse.sock"), Type::STREAM, true);
        let err = Server::builder()
            .accept(AcceptMode::ReusePort)
            .listen_unix(&handle, reuse)
            .err()
            .expect("ReusePort");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    });
}

#[test]
fn max_connections_pauses_a_unix_accept_and_resumes_when_one_closes() {
    run2(|handle| async move {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("max.sock");
        let server = Server::builder()
            .max_connections(1)
            .bind_unix(&handle, &path)
            .unwrap();
        let stats = server.stats();
        let stop = server.shutdown_handle();
        let serving = handle.spawn_local(server.serve_service(LengthDelimited::new(), echo()));
        let mut a = Client::connect_unix(&path).await.unwrap();
        assert_eq!(ok(&mut a, b"a").await, Bytes::from_static(b"a"));
        let mut b = Client::connect_unix(&path).await.unwrap();
        b.send(Bytes::from_static(b"b")).await.unwrap();
        until_stats(&stats, "accepting pauses", |s| s.accept_pauses >= 1).await;
        // Time for a server that wrongly accepts it to do so.
        spargio_rt::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            stats.snapshot().accepted,
            1,
            "accepted beyond max_connections"
        );
        drop(a);
        assert_eq!(b.recv().await.unwrap().unwrap(), Bytes::from_static(b"b"));
        assert_eq!(stats.snapshot().accepted, 2);
        drop(b);
        stop.shutdown();
        serving.await.unwrap().unwrap();
    });
}

#[test]
fn graceful_shutdown_of_a_unix_server_lets_slow_requests_finish() {
    run2(|handle| async move {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("slow.sock");
        let server = Server::builder()
            .handler_placement(HandlerPlacement::Stealable)
            .shutdown_timeout(Duration::from_secs(20))
            .bind_unix(&handle, &path)
            .unwrap();
        let stop = server.shutdown_handle();
        let started = Arc::new(AtomicUsize::new(0));
        let slow = slow_echo(started.clone(), Duration::from_millis(200));
        let serving = handle.spawn_local(server.serve_service(LengthDelimited::new(), slow));
        let mut busy = Vec::new();
        for _ in 0..2 {
            let mut c = Client::connect_unix(&path).await.unwrap();
            c.send(Bytes::from_static(b"slow")).await.unwrap();
            busy.push(c);
        }
        common::until("started.load(Ordering::SeqCst) < 2 turns false", || {
            started.load(Ordering::SeqCst) >= 2
        })
        .await;
        stop.shutdown();
        for c in busy.iter_mut() {
            assert_eq!(
                c.recv().await.unwrap().unwrap(),
                Bytes::from_static(b"slow")
            );
        }
        let report = serving.await.unwrap().unwrap();
        assert_eq!((report.open_at_start, report.cut), (2, 0));
        // The listener is closed: connecting is refused.
        let refused = spargio_rt::net::UnixStream::connect(&path)
            .await
            .unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
    });
}

#[test]
fn serve_local_serves_unix_connections_thread_per_core() {
    run2(|handle| async move {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("local.sock");
        let server = Server::builder().bind_unix(&handle, &path).unwrap();
        let stop = server.shutdown_handle();
        let serving = handle.spawn_local(server.serve_local(LengthDelimited::new(), |shard| {
            let hits = std::rc::Rc::new(std::cell::Cell::new(0u32));
            service_fn(move |_req: Bytes| {
                hits.set(hits.get() + 1);
                let text = format!("{} {}", shard.0, hits.get());
                async move { Ok::<_, Infallible>(Bytes::from(text)) }
            })
        }));
        let mut seen = Vec::new();
        for _ in 0..4 {
            let mut c = Client::connect_unix(&path).await.unwrap();
            seen.push(String::from_utf8(ok(&mut c, b"?").await.to_vec()).unwrap());
        }
        seen.sort();
        // Two connections per shard, each shard's service counting its own.
        assert_eq!(seen, ["0 1", "0 2", "1 1", "1 2"]);
        stop.shutdown();
        serving.await.unwrap().unwrap();
    });
}
