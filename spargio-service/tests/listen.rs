//! `ServerBuilder::listen`: serving on a listener bound elsewhere (socket
//! activation, `listenfd`, a parent process), and the sockets it refuses.

use std::convert::Infallible;
use std::io;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};

use bytes::Bytes;
use socket2::{Domain, SockAddr, Socket, Type};
use spargio_rt::{RuntimeHandle, ShardId};
use spargio_service::codec::{Client, LengthDelimited};
use spargio_service::{AcceptMode, Server};
use tower::service_fn;

mod common;
use common::run2;

/// Serves `server` with a service that answers with its connection's
/// shard; opens `n` connections (kept open together) and returns how many
/// landed on each shard, then shuts the server down.
async fn serve_and_count(handle: &RuntimeHandle, server: Server, n: usize) -> Vec<usize> {
    let addr = server.local_addr();
    let stop = server.shutdown_handle();
    let make = service_fn(|info: spargio_service::ConnInfo| async move {
        let shard = info.shard.0;
        Ok::<_, Infallible>(service_fn(move |_req: Bytes| async move {
            Ok::<_, Infallible>(Bytes::from(vec![shard as u8]))
        }))
    });
    let serving = handle.spawn_local(server.serve(LengthDelimited::new(), make));
    let mut per_shard = vec![0; handle.shard_count()];
    let mut clients = Vec::new();
    for _ in 0..n {
        let mut c = Client::connect(addr).await.expect("connect");
        let reply = c.call(Bytes::from_static(b"?")).await.expect("call");
        per_shard[reply.expect("ok status")[0] as usize] += 1;
        clients.push(c);
    }
    drop(clients);
    stop.shutdown();
    serving.await.unwrap().unwrap();
    per_shard
}

/// A TCP socket bound to a free loopback port, not yet listening.
fn bound_socket(reuse_port: bool) -> Socket {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    if reuse_port {
        s.set_reuse_port(true).unwrap();
    }
    s.bind(&SockAddr::from(
        "127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap(),
    ))
    .unwrap();
    s
}

fn refusal(result: io::Result<Server>) -> io::Error {
    match result {
        Ok(_) => panic!("the socket was accepted"),
        Err(e) => e,
    }
}

#[test]
fn a_listener_bound_elsewhere_is_served_round_robin_and_closed_with_the_server() {
    run2(|handle| async move {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = Server::builder().listen(&handle, listener).unwrap();
        assert_eq!(server.local_addr(), addr);
        assert_eq!(serve_and_count(&handle, server, 4).await, vec![2, 2]);
        // The server owned the socket: nothing listens there any more once
        // the ring let go of its accept (its cancel is reaped by the shard).
        let refused = spargio_rt::time::timeout(std::time::Duration::from_secs(20), async {
            loop {
                match Client::connect(addr).await {
                    Err(e) => return e.kind(),
                    Ok(_) => spargio_rt::time::sleep(std::time::Duration::from_millis(10)).await,
                }
            }
        })
        .await
        .expect("the listener stayed open after the server ended");
        assert_eq!(refused, io::ErrorKind::ConnectionRefused);
    });
}

#[test]
fn a_nonblocking_listener_is_served_without_accept_errors() {
    run2(|handle| async move {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let server = Server::builder().listen(&handle, listener).unwrap();
        let stats = server.stats();
        let addr = server.local_addr();
        let stop = server.shutdown_handle();
        let service = service_fn(|req: Bytes| async move { Ok::<_, Infallible>(req) });
        let serving = handle.spawn_local(server.serve_service(LengthDelimited::new(), service));
        // Connections arrive in bursts, some while no accept is pending.
        for _round in 0..10 {
            let mut clients = Vec::new();
            for _ in 0..20 {
                clients.push(Client::connect(addr).await.expect("connect"));
            }
            for c in &mut clients {
                let reply = c.call(Bytes::from_static(b"hi")).await.expect("call");
                assert_eq!(reply.expect("ok status"), Bytes::from_static(b"hi"));
            }
        }
        let s = stats.snapshot();
        assert_eq!(s.accepted, 200);
        assert_eq!(s.accept_errors, 0);
        stop.shutdown();
        serving.await.unwrap().unwrap();
    });
}

#[test]
fn a_listener_passed_as_a_raw_fd_is_served_and_marked_close_on_exec() {
    run2(|handle| async move {
        // As systemd passes it: a listening socket without FD_CLOEXEC.
        let s = Socket::new_raw(Domain::IPV4, Type::STREAM, None).unwrap();
        s.bind(&SockAddr::from(
            "127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap(),
        ))
        .unwrap();
        s.listen(16).unwrap();
        let addr = s.local_addr().unwrap().as_socket().unwrap();
        let fd = s.into_raw_fd();
        // SAFETY: `fd` was just released by `into_raw_fd`, so this is its
        // only owner.
        let listener = unsafe { std::net::TcpListener::from_raw_fd(fd) };
        // SAFETY: F_GETFD only reads the descriptor's flags; `fd` is open
        // (owned by `listener`).
        assert_eq!(
            unsafe { libc::fcntl(fd, libc::F_GETFD) } & libc::FD_CLOEXEC,
            0
        );
        let server = Server::builder()
            .accept(AcceptMode::Pinned(ShardId(1)))
            .listen(&handle, listener)
            .unwrap();
        // SAFETY: as above; the server owns `fd` and keeps it open.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        assert_ne!(
            flags & libc::FD_CLOEXEC,
            0,
            "the listener is inherited by children"
        );
        assert_eq!(server.local_addr(), addr);
        assert_eq!(serve_and_count(&handle, server, 3).await, vec![0, 3]);
    });
}

#[test]
fn a_socket_that_is_not_listening_is_refused() {
    run2(|handle| async move {
        let s = bound_socket(false);
        let listener = std::net::TcpListener::from(OwnedFd::from(s));
        let err = refusal(Server::builder().listen(&handle, listener));
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("not listening"), "{err}");
    });
}

#[test]
fn unix_and_udp_sockets_are_refused() {
    run2(|handle| async move {
        let dir = tempfile::tempdir().unwrap();
        let unix = std::os::unix::net::UnixListener::bind(dir.path().join("sock")).unwrap();
        let listener = std::net::TcpListener::from(OwnedFd::from(unix));
        let err = refusal(Server::builder().listen(&handle, listener));
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("not an IPv4 or IPv6"), "{err}");

        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let listener = std::net::TcpListener::from(OwnedFd::from(udp));
        let err = refusal(Server::builder().listen(&handle, listener));
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("not a stream"), "{err}");
    });
}

#[test]
fn reuse_port_mode_is_refused_even_with_so_reuseport_set() {
    run2(|handle| async move {
        for reuse_port in [false, true] {
            let s = bound_socket(reuse_port);
            s.listen(64).unwrap();
            let listener = std::net::TcpListener::from(OwnedFd::from(s));
            let addr = listener.local_addr().unwrap();
            let err = refusal(
                Server::builder()
                    .accept(AcceptMode::ReusePort)
                    .listen(&handle, listener),
            );
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            assert!(err.to_string().contains("RoundRobin or Pinned"), "{err}");
            // Nothing was bound beside it: the port is free again.
            drop(std::net::TcpListener::bind(addr).expect("the port is free"));
        }
    });
}

#[test]
fn an_accepting_shard_that_does_not_exist_is_refused_and_the_socket_closed() {
    run2(|handle| async move {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let err = refusal(
            Server::builder()
                .accept(AcceptMode::Pinned(ShardId(5)))
                .listen(&handle, listener),
        );
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("shard 5 does not exist"), "{err}");
        let refused = std::net::TcpStream::connect(addr).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
    });
}

#[test]
fn a_listener_on_the_v4_mapped_wildcard_reports_each_connections_own_address() {
    run2(|handle| async move {
        // A dual-stack socket bound here takes every IPv4 address.
        let server = Server::builder()
            .bind(&handle, "[::ffff:0.0.0.0]:0")
            .unwrap();
        let port = server.local_addr().port();
        let stop = server.shutdown_handle();
        let make = service_fn(|info: spargio_service::ConnInfo| async move {
            let local = info
                .local_addr
                .map(|a| a.ip().to_string())
                .unwrap_or_default();
            Ok::<_, Infallible>(service_fn(move |_req: Bytes| {
                let local = local.clone();
                async move { Ok::<_, Infallible>(Bytes::from(local)) }
            }))
        });
        let serving = handle.spawn_local(server.serve(LengthDelimited::new(), make));
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut c = Client::connect(addr).await.expect("connect");
        let reply = c.call(Bytes::from_static(b"?")).await.expect("call");
        assert_eq!(reply.expect("ok status"), "::ffff:127.0.0.1");
        drop(c);
        stop.shutdown();
        serving.await.unwrap().unwrap();
    });
}
