//! Servers behind a load balancer: the PROXY protocol header (versions 1
//! and 2) read off each connection before the protocol, its client handed
//! to the make-service, and connections with a bad, missing, cut or late
//! header closed and counted.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use spargio_rt::io::{AsyncReadExt, AsyncWriteExt};
use spargio_rt::net::{TcpStream, UnixStream};
use spargio_service::codec::{Client, LengthDelimited};
use spargio_service::proxy::{ProxyCommand, ProxyProtocol};
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
        let reply = client.recv().await.unwrap();
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
        let reply = client.recv().await.unwrap();
        assert_eq!(
            reply.unwrap(),
            Bytes::from("198.51.100.3:5123 v2 Proxy two")
        );
        let reply = client.call(Bytes::from_static(b"three")).await.unwrap();
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
