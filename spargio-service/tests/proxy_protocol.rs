//! Servers behind a load balancer: the PROXY protocol header (versions 1
//! and 2) read off each connection before the protocol, its client handed
//! to the make-service, and connections with a bad, missing, cut or late
//! header closed and counted.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use spargio_rt::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use spargio_rt::net::{TcpStream, UnixStream};
use spargio_service::codec::{Client, LengthDelimited};
use spargio_service::proxy::{self, ProxyProtocol};
use spargio_service::{ConnInfo, Server, ServerBuilder};
use tower::service_fn;

use common::{run2, until_stats};

/// Long enough that only a hang reaches it.
const HANG: Duration = Duration::from_secs(20);

/// A make-service whose service answers each request with what its
/// connection's `ConnInfo` says: the client address (or "-"), the
/// header's version and command, and the request itself.
fn client_echo() -> impl tower::Service<
    ConnInfo,
    Response = impl tower::Service<Bytes, Response = Bytes, Error = Infallible, Future: Send>
                   + Send
                   + 'static,
    Error = Infallible,
    Future: Send + 'static,
> + Clone
       + Send
       + 'static {
    service_fn(|info: ConnInfo| async move {
        let who = info
            .client_addr()
            .map_or_else(|| "-".to_string(), |a| a.to_string());
        let header = info.proxy.as_ref().map_or_else(
            || "none".to_string(),
            |h| format!("v{} {:?}", h.version(), h.command()),
        );
        Ok::<_, Infallible>(service_fn(move |req: Bytes| {
            let said = format!("{who} {header} {}", String::from_utf8_lossy(&req));
            async move { Ok::<_, Infallible>(Bytes::from(said)) }
        }))
    })
}

/// One length-delimited frame.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(payload);
    f
}

/// A version 2 PROXY header for an IPv4 TCP client.
fn v2_inet(source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let (SocketAddr::V4(s), SocketAddr::V4(d)) = (source, destination) else {
        panic!("IPv4 only")
    };
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.extend_from_slice(&[0x21, 0x11, 0, 12]);
    h.extend_from_slice(&s.ip().octets());
    h.extend_from_slice(&d.ip().octets());
    h.extend_from_slice(&s.port().to_be_bytes());
    h.extend_from_slice(&d.port().to_be_bytes());
    h
}

/// `fut`, or a panic if it takes as long as a hang.
async fn within<T>(fut: impl std::future::Future<Output = T>) -> T {
    spargio_rt::time::timeout(HANG, fut)
        .await
        .expect("no answer: a hang")
}

async fn send(stream: &mut TcpStream, bytes: &[u8]) {
    let (res, _) = stream.write_all(bytes.to_vec()).await;
    res.expect("write");
}

/// Reads what the server sends until it closes; an error (a reset) counts
/// as closed too.
async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let read = spargio_rt::time::timeout(HANG, stream.read_to_end(Vec::new()));
    let (_, got) = read.await.expect("the server never closed the connection");
    got
}

fn start(
    handle: &spargio_rt::RuntimeHandle,
    builder: ServerBuilder,
) -> (
    SocketAddr,
    spargio_service::ShutdownHandle,
    spargio_service::StatsHandle,
    spargio_rt::JoinHandle<std::io::Result<spargio_service::ShutdownReport>>,
) {
    let server = builder.bind(handle, "127.0.0.1:0").unwrap();
    let addr = server.local_addr();
    let (stop, stats) = (server.shutdown_handle(), server.stats());
    let serving = handle.spawn(server.serve(LengthDelimited::new(), client_echo()));
    (addr, stop, stats, serving)
}

#[test]
fn v1_and_v2_headers_name_the_client_and_the_protocol_starts_after_them() {
    run2(|handle| async move {
        let builder = Server::builder().proxy_protocol(ProxyProtocol::required());
        let (addr, stop, stats, serving) = start(&handle, builder);
        // Version 1, the header and the first request in one write.
        let mut up = TcpStream::connect(addr).await.unwrap();
        let mut bytes = b"PROXY TCP4 203.0.113.9 192.0.2.1 40000 443\r\n".to_vec();
        bytes.extend(frame(b"one"));
        send(&mut up, &bytes).await;
        let mut client = Client::new(up);
        let reply = within(client.recv()).await.unwrap();
        assert_eq!(
            reply.unwrap(),
            Bytes::from("203.0.113.9:40000 v1 Proxy one")
        );
        drop(client);

        // Version 2, written a few bytes at a time, the last piece with a
        // request behind it: the header is taken exactly.
        let source: SocketAddr = "198.51.100.3:5123".parse().unwrap();
        let header = v2_inet(source, "10.0.0.9:80".parse().unwrap());
        let mut up = TcpStream::connect(addr).await.unwrap();
        for piece in header[..header.len() - 3].chunks(5) {
            send(&mut up, piece).await;
            spargio_rt::time::sleep(Duration::from_millis(5)).await;
        }
        let mut last = header[header.len() - 3..].to_vec();
        last.extend(frame(b"two"));
        send(&mut up, &last).await;
        let mut client = Client::new(up);
        let reply = within(client.recv()).await.unwrap();
        assert_eq!(
            reply.unwrap(),
            Bytes::from("198.51.100.3:5123 v2 Proxy two")
        );
        let reply = within(client.call(Bytes::from_static(b"three")))
            .await
            .unwrap();
        assert_eq!(
            reply.unwrap(),
            Bytes::from("198.51.100.3:5123 v2 Proxy three")
        );
        drop(client);

        until_stats(&stats, "both headers counted", |s| s.proxy_headers == 2).await;
        assert_eq!(stats.snapshot().proxy_refused, 0);
        stop.shutdown();
        serving.await.unwrap().unwrap();
    });
}

#[test]
fn a_required_header_that_is_missing_malformed_cut_or_late_closes_only_that_connection() {
    run2(|handle| async move {
        let builder = Server::builder()
            .proxy_protocol(ProxyProtocol::required().header_timeout(Duration::from_millis(300)));
        let (addr, stop, stats, serving) = start(&handle, builder);
        // No header: a plain request is not answered, the connection closed.
        let mut direct = TcpStream::connect(addr).await.unwrap();
        send(&mut direct, &frame(b"hi")).await;
        assert_eq!(until_closed(&mut direct).await, b"");
        // A malformed header (a port out of range).
        let mut bad = TcpStream::connect(addr).await.unwrap();
        send(&mut bad, b"PROXY TCP4 1.2.3.4 5.6.7.8 70000 1\r\n").await;
        assert_eq!(until_closed(&mut bad).await, b"");
        // A bad v2 version, and a v1 line over 107 bytes.
        let mut v3 = TcpStream::connect(addr).await.unwrap();
        send(&mut v3, b"\r\n\r\n\0\r\nQUIT\n\x31\x11\0\x0c").await;
        assert_eq!(until_closed(&mut v3).await, b"");
        let mut long = TcpStream::connect(addr).await.unwrap();
        send(&mut long, &[&b"PROXY UNKNOWN "[..], &[b'x'; 120]].concat()).await;
        assert_eq!(until_closed(&mut long).await, b"");
        // Half a header, then the proxy closes its side.
        let mut cut = TcpStream::connect(addr).await.unwrap();
        send(&mut cut, b"PROXY TCP4 1.2.3.4 ").await;
        cut.shutdown_std(std::net::Shutdown::Write).await.unwrap();
        assert_eq!(until_closed(&mut cut).await, b"");
        // Half a header, then nothing: the header timeout closes it.
        let mut late = TcpStream::connect(addr).await.unwrap();
        send(&mut late, b"PROXY TCP6 ::1").await;
        assert_eq!(until_closed(&mut late).await, b"");
        until_stats(&stats, "six refused", |s| s.proxy_refused == 6).await;
        // The server still serves a connection that does it right.
        let mut up = TcpStream::connect(addr).await.unwrap();
        send(&mut up, b"PROXY TCP6 2001:db8::2 2001:db8::1 1000 2000\r\n").await;
        let mut client = Client::new(up);
        let reply = within(client.call(Bytes::from_static(b"ok")))
            .await
            .unwrap();
        assert_eq!(
            reply.unwrap(),
            Bytes::from("[2001:db8::2]:1000 v1 Proxy ok")
        );
        let s = stats.snapshot();
        assert_eq!((s.proxy_headers, s.proxy_refused, s.requests), (1, 6, 1));
        drop(client);
        stop.shutdown();
        serving.await.unwrap().unwrap();
    });
}

#[test]
fn an_optional_header_may_be_left_out_and_local_means_the_socket_peer() {
    run2(|handle| async move {
        let builder = Server::builder().proxy_protocol(ProxyProtocol::optional());
        let (addr, stop, stats, serving) = start(&handle, builder);
        // A direct client: the socket's peer, and its first request is
        // left whole.
        let direct = TcpStream::connect(addr).await.unwrap();
        let me = direct.local_addr().unwrap();
        let mut client = Client::new(direct);
        let reply = within(client.call(Bytes::from_static(b"direct")))
            .await
            .unwrap();
        assert_eq!(reply.unwrap(), Bytes::from(format!("{me} none direct")));
        drop(client);
        // A direct client whose first bytes could begin a v2 header ("\r\n"),
        // the rest coming later: looked at again until it tells, then left
        // whole for the protocol, which reads "\r\n\0\x05" as a frame
        // length (0x0d0a0005, over the frame limit) and says so.
        let mut odd = TcpStream::connect(addr).await.unwrap();
        send(&mut odd, b"\r\n").await;
        spargio_rt::time::sleep(Duration::from_millis(30)).await;
        send(&mut odd, b"\x00\x05").await;
        let got = until_closed(&mut odd).await;
        assert_eq!(got.get(4), Some(&5), "not a bad-request reply: {got:?}");
        // A LOCAL v2 header (the balancer's health check): the socket's
        // own peer.
        let mut check = TcpStream::connect(addr).await.unwrap();
        let me = check.local_addr().unwrap();
        send(&mut check, b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00").await;
        let mut client = Client::new(check);
        let reply = within(client.call(Bytes::from_static(b"health")))
            .await
            .unwrap();
        assert_eq!(reply.unwrap(), Bytes::from(format!("{me} v2 Local health")));
        drop(client);
        let s = stats.snapshot();
        assert_eq!((s.proxy_headers, s.proxy_refused), (1, 0));
        stop.shutdown();
        serving.await.unwrap().unwrap();
    });
}

#[test]
fn a_unix_server_takes_a_v2_unix_header_and_serve_local_reads_headers_too() {
    run2(|handle| async move {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("behind-proxy.sock");
        let server = Server::builder()
            .proxy_protocol(ProxyProtocol::required())
            .bind_unix(&handle, &path)
            .unwrap();
        let (stop, stats) = (server.shutdown_handle(), server.stats());
        // Thread-per-core: the service never sees ConnInfo, but the header
        // must still be taken off before the first frame.
        let serving = handle.spawn_local(server.serve_local(LengthDelimited::new(), |_shard| {
            service_fn(|req: Bytes| async move { Ok::<_, Infallible>(req) })
        }));
        let mut header = b"\r\n\r\n\0\r\nQUIT\n\x21\x31".to_vec();
        let mut paths = vec![0u8; 216];
        paths[..7].copy_from_slice(b"/client");
        paths[108..115].copy_from_slice(b"/server");
        header.extend_from_slice(&(paths.len() as u16).to_be_bytes());
        header.extend_from_slice(&paths);
        for round in 0..2u8 {
            let mut up = UnixStream::connect(&path).await.unwrap();
            let mut bytes = header.clone();
            bytes.extend(frame(&[b'a' + round]));
            let (res, _) = up.write_all(bytes).await;
            res.unwrap();
            let mut client = Client::new(up);
            let reply = within(client.recv()).await.unwrap();
            assert_eq!(reply.unwrap(), Bytes::from(vec![b'a' + round]));
        }
        until_stats(&stats, "both headers", |s| s.proxy_headers == 2).await;
        stop.shutdown();
        serving.await.unwrap().unwrap();
    });
}

#[test]
fn a_graceful_shutdown_closes_connections_still_waiting_for_their_header() {
    run2(|handle| async move {
        let builder = Server::builder()
            .proxy_protocol(ProxyProtocol::required().header_timeout(HANG * 3))
            .shutdown_timeout(HANG * 3);
        let (addr, stop, stats, serving) = start(&handle, builder);
        let mut waiting = TcpStream::connect(addr).await.unwrap();
        send(&mut waiting, b"PROXY ").await;
        until_stats(&stats, "accepted", |s| s.accepted == 1).await;
        stop.shutdown();
        // Neither the header timeout nor the shutdown deadline: the
        // shutdown itself ends it, and the report counts nothing cut.
        assert_eq!(until_closed(&mut waiting).await, b"");
        let report = spargio_rt::time::timeout(HANG, serving)
            .await
            .expect("shutdown waited for the header")
            .unwrap()
            .unwrap();
        assert_eq!(report.cut, 0);
        assert_eq!(stats.snapshot().proxy_refused, 0);
    });
}

/// A Unix socket pair, the server's end as a `SocketStream`.
fn pair() -> (UnixStream, spargio_rt::net::SocketStream) {
    let (peer, server) = UnixStream::pair().unwrap();
    (peer, server.into())
}

#[spargio_rt::test]
async fn read_header_waits_out_an_ambiguous_start_that_becomes_a_header() {
    let (mut peer, mut server) = pair();
    // The first look sees only "\r\n": a header, or a protocol's bytes.
    let header = v2_inet(
        "192.0.2.44:1234".parse().unwrap(),
        "192.0.2.1:80".parse().unwrap(),
    );
    let (res, _) = peer.write_all(header[..2].to_vec()).await;
    res.unwrap();
    let rest = [&header[2..], b"after"].concat();
    let writer = spargio_rt::spawn_local(async move {
        spargio_rt::time::sleep(Duration::from_millis(20)).await;
        let (res, _) = peer.write_all(rest).await;
        res.unwrap();
        peer
    });
    let got = proxy::read_header(&mut server, ProxyProtocol::optional().header_timeout(HANG))
        .await
        .unwrap()
        .expect("a header");
    assert_eq!(got.source(), Some("192.0.2.44:1234".parse().unwrap()));
    let (res, after) = server.read_exact(Vec::with_capacity(5)).await;
    res.unwrap();
    assert_eq!(after, b"after");
    drop(writer.await.unwrap());
}

#[spargio_rt::test]
async fn read_header_leaves_an_ambiguous_start_to_the_protocol_when_the_peer_closes() {
    let (mut peer, mut server) = pair();
    let (res, _) = peer.write_all(b"P".to_vec()).await;
    res.unwrap();
    peer.shutdown().await.unwrap();
    // Not the header timeout: the close tells.
    let got = proxy::read_header(&mut server, ProxyProtocol::optional().header_timeout(HANG));
    let got = spargio_rt::time::timeout(HANG / 2, got)
        .await
        .expect("waited");
    assert_eq!(got.unwrap(), None);
    let (res, all) = server.read_to_end(Vec::new()).await;
    res.unwrap();
    assert_eq!(all, b"P");
    // Required, the same bytes are a header cut short.
    let (mut peer, mut server) = pair();
    let (res, _) = peer.write_all(b"P".to_vec()).await;
    res.unwrap();
    drop(peer);
    let err = proxy::read_header(&mut server, ProxyProtocol::required().header_timeout(HANG))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
}
