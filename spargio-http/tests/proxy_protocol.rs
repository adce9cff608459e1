//! HTTP and HTTPS behind a load balancer that sends the PROXY protocol:
//! the header is taken off before the request (or the TLS ClientHello),
//! handlers see the client it names, and a connection without one is
//! closed unanswered when the server requires it.

mod common;

use std::convert::Infallible;
use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use common::{read_response_from, start_make_with, TestServer};
use http::{Request, Response};
use rustls::{ClientConnection, StreamOwned};
use spargio_http::{Body, Http};
use spargio_service::proxy::ProxyProtocol;
use spargio_service::ConnInfo;
use tower::service_fn;

/// A make-service whose handlers answer with their connection's client
/// address and PROXY header version ("-" for none), then the path.
fn client_addr_echo() -> impl tower::Service<
    ConnInfo,
    Response = impl tower::Service<
        Request<Body>,
        Response = Response<Body>,
        Error = Infallible,
        Future: Send,
    > + 'static,
    Error = Infallible,
    Future: 'static,
> + Clone
       + Send
       + 'static {
    service_fn(|info: ConnInfo| async move {
        let version = info
            .proxy
            .as_ref()
            .map_or("-".to_string(), |h| h.version().to_string());
        let who = format!("{} v{version}", info.client_addr().unwrap());
        Ok::<_, Infallible>(service_fn(move |req: Request<Body>| {
            let said = format!("{who} {}", req.uri().path());
            async move { Ok::<_, Infallible>(Response::new(Body::from(said))) }
        }))
    })
}

fn behind_proxy(http: Http<Body>) -> TestServer {
    start_make_with(
        http,
        |b| b.proxy_protocol(ProxyProtocol::required()),
        client_addr_echo(),
    )
}

/// A version 2 header for an IPv4 TCP client, with an ALPN TLV.
fn v2_header(source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let (SocketAddr::V4(s), SocketAddr::V4(d)) = (source, destination) else {
        panic!("IPv4 only")
    };
    let alpn = [
        0x01, 0x00, 0x08, b'h', b't', b't', b'p', b'/', b'1', b'.', b'1',
    ];
    let mut h = b"\r\n\r\n\0\r\nQUIT\n\x21\x11".to_vec();
    h.extend_from_slice(&((12 + alpn.len()) as u16).to_be_bytes());
    h.extend_from_slice(&s.ip().octets());
    h.extend_from_slice(&d.ip().octets());
    h.extend_from_slice(&s.port().to_be_bytes());
    h.extend_from_slice(&d.port().to_be_bytes());
    h.extend_from_slice(&alpn);
    h
}

fn connect(server: &TestServer) -> TcpStream {
    let tcp = TcpStream::connect(server.addr).unwrap();
    // A bound on every read: a hung server fails the test.
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    tcp
}

#[test]
fn keep_alive_requests_after_a_v1_header_see_the_client_it_names() {
    let server = behind_proxy(Http::new());
    let mut tcp = connect(&server);
    // The header and two pipelined requests in one write.
    tcp.write_all(
        b"PROXY TCP4 203.0.113.50 192.0.2.10 60001 80\r\n\
          GET /a HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /b HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .unwrap();
    let mut reader = BufReader::new(tcp);
    for path in ["/a", "/b"] {
        let resp = read_response_from(&mut reader, false);
        assert_eq!(resp.status, 200);
        assert_eq!(
            String::from_utf8(resp.body).unwrap(),
            format!("203.0.113.50:60001 v1 {path}")
        );
    }
    let stats = server.stats.snapshot();
    assert_eq!((stats.proxy_headers, stats.proxy_refused), (1, 0));
    server.stop();
}

#[test]
fn tls_starts_after_a_v2_header() {
    let (acceptor, connector) = common::localhost_tls();
    let server = behind_proxy(Http::new().tls(acceptor));
    let mut tcp = connect(&server);
    let source: SocketAddr = "198.51.100.77:44321".parse().unwrap();
    tcp.write_all(&v2_header(source, server.addr)).unwrap();
    let conn = ClientConnection::new(
        Arc::new((**connector.config()).clone()),
        "localhost".try_into().unwrap(),
    )
    .unwrap();
    let mut tls = StreamOwned::new(conn, tcp);
    tls.write_all(b"GET /secure HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(tls);
    let resp = read_response_from(&mut reader, false);
    assert_eq!(resp.status, 200);
    assert_eq!(
        String::from_utf8(resp.body).unwrap(),
        "198.51.100.77:44321 v2 /secure"
    );
    server.stop();
}

#[test]
fn a_request_without_the_required_header_is_closed_unanswered() {
    let server = behind_proxy(Http::new());
    let mut tcp = connect(&server);
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut got = Vec::new();
    // The end of stream (or a reset), with nothing before it.
    let _ = tcp.read_to_end(&mut got);
    assert!(
        got.is_empty(),
        "answered: {:?}",
        String::from_utf8_lossy(&got)
    );
    let by = std::time::Instant::now() + Duration::from_secs(20);
    while server.stats.snapshot().proxy_refused != 1 {
        assert!(std::time::Instant::now() < by, "never counted");
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(server.stats.snapshot().requests, 0);
    server.stop();
}

#[test]
fn conn_info_in_extensions_reaches_an_axum_router_under_serve_local() {
    use axum::{routing::get, Extension, Router};
    // Thread-per-core: the router is built per shard and never sees a
    // connection; `conn_info(true)` hands each request its ConnInfo.
    let server = common::run_server(
        |b| b.proxy_protocol(ProxyProtocol::required()),
        |server| {
            server.serve_local(Http::new().conn_info(true), |_shard| {
                Router::new().route(
                    "/whoami",
                    get(|Extension(info): Extension<ConnInfo>| async move {
                        format!("{} on {}", info.client_addr().unwrap(), info.shard.0)
                    }),
                )
            })
        },
    );
    let mut tcp = connect(&server);
    tcp.write_all(
        b"PROXY TCP6 2001:db8::9 2001:db8::1 40404 443\r\n\
          GET /whoami HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let resp = read_response_from(&mut BufReader::new(tcp), false);
    assert_eq!(resp.status, 200);
    let body = String::from_utf8(resp.body).unwrap();
    assert!(body.starts_with("[2001:db8::9]:40404 on "), "{body}");
    server.stop();
}

#[test]
fn without_conn_info_requests_carry_none() {
    let server = TestServer::start(service_fn(|req: Request<Body>| async move {
        let has = req.extensions().get::<ConnInfo>().is_some();
        Ok::<_, Infallible>(Response::new(Body::from(has.to_string())))
    }));
    let mut tcp = connect(&server);
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let resp = read_response_from(&mut BufReader::new(tcp), false);
    assert_eq!(String::from_utf8(resp.body).unwrap(), "false");
    server.stop();
}

#[test]
fn serve_connection_reads_the_header_and_hands_it_to_requests() {
    use spargio_rt::io::{AsyncReadExt, AsyncWriteExt};
    use spargio_rt::net::UnixStream;
    use spargio_service::ServeConnection;
    let service = service_fn(|req: Request<Body>| async move {
        let info = req
            .extensions()
            .get::<ConnInfo>()
            .expect("ConnInfo")
            .clone();
        let said = format!("{}", info.client_addr().unwrap());
        Ok::<_, Infallible>(Response::new(Body::from(said)))
    });
    spargio_rt::run(move |_| async move {
        let mut sc = ServeConnection::new(Http::new().conn_info(true))
            .proxy_protocol(ProxyProtocol::required());
        let stats = sc.stats();
        // A header and a request: answered with the header's client.
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let serving = {
            let sc = sc.clone();
            spargio_rt::spawn_local(async move { sc.serve(ours, service).await })
        };
        let request = b"PROXY TCP4 192.0.2.200 192.0.2.1 3333 80\r\n\
            GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let (res, _) = theirs.write_all(request.to_vec()).await;
        res.unwrap();
        let read =
            spargio_rt::time::timeout(Duration::from_secs(20), theirs.read_to_end(Vec::new()));
        let (res, got) = read.await.expect("no answer");
        res.unwrap();
        let got = String::from_utf8(got).unwrap();
        assert!(got.starts_with("HTTP/1.1 200"), "{got}");
        assert!(got.ends_with("\r\n\r\n192.0.2.200:3333"), "{got}");
        serving.await.unwrap().unwrap();
        // No header: `serve` says why, and nothing is answered.
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let serving = spargio_rt::spawn_local(async move { sc.serve(ours, service).await });
        let (res, _) = theirs
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec())
            .await;
        res.unwrap();
        let err = serving.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        // The end, or a reset (the request was left unread): no reply.
        let (_, got) = theirs.read_to_end(Vec::new()).await;
        assert!(got.is_empty());
        let s = stats.snapshot();
        assert_eq!((s.proxy_headers, s.proxy_refused, s.requests), (1, 1, 1));
    })
    .unwrap();
}
