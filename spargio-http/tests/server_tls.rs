//! The HTTP server over TLS, against a blocking rustls client: ALPN is
//! checked after the handshake, and keep-alive responses of any size go
//! out whole.

mod common;

use std::convert::Infallible;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use common::{frames, pattern, read_to_the_end, Frames, TestServer, TestService};
use http::{Request, Response};
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use spargio_http::tls::TlsAcceptor;
use spargio_http::{Body, Http};

type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// Answers `/size/N` with an `N`-byte body (see [`pattern`]), anything
/// else with "fine".
fn sized_service() -> impl TestService<Body> {
    tower::service_fn(|req: Request<Body>| async move {
        let body = match req.uri().path().strip_prefix("/size/") {
            Some(n) => Body::from(pattern(n.parse().unwrap())),
            None => Body::from("fine"),
        };
        Ok::<_, Infallible>(Response::new(body))
    })
}

/// A TLS server whose configuration lists `server_alpn`, and the client
/// configuration that trusts it, offering `client_alpn`.
fn tls_server(server_alpn: &[&[u8]], client_alpn: &[&[u8]]) -> (TestServer, Arc<ClientConfig>) {
    tls_server_of(server_alpn, client_alpn, sized_service())
}

/// [`tls_server`] serving `service`.
fn tls_server_of<S, B>(
    server_alpn: &[&[u8]],
    client_alpn: &[&[u8]],
    service: S,
) -> (TestServer, Arc<ClientConfig>)
where
    S: tower::Service<Request<Body>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<spargio_service::BoxError> + Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Error: Into<spargio_service::BoxError>,
{
    let (acceptor, connector) = common::localhost_tls();
    let mut server_cfg = (**acceptor.config()).clone();
    server_cfg.alpn_protocols = server_alpn.iter().map(|p| p.to_vec()).collect();
    let acceptor = TlsAcceptor::new(Arc::new(server_cfg));
    let mut client_cfg = (**connector.config()).clone();
    client_cfg.alpn_protocols = client_alpn.iter().map(|p| p.to_vec()).collect();
    let server = TestServer::start_with(Http::new().tls(acceptor), |b| b, service);
    (server, Arc::new(client_cfg))
}

/// A connected client, its handshake done; reads time out after 10 s (a
/// safety bound against a hang).
fn connect(server: &TestServer, cfg: &Arc<ClientConfig>) -> TlsStream {
    let tcp = TcpStream::connect(server.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let conn = ClientConnection::new(cfg.clone(), "localhost".try_into().unwrap()).unwrap();
    let mut tls = StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).unwrap();
    }
    tls
}

/// Reads one response with a `content-length` body: its status and body.
fn read_response(reader: &mut BufReader<TlsStream>) -> (u16, Vec<u8>) {
    let mut line = String::new();
    reader.read_line(&mut line).expect("status line");
    let status = line.split(' ').nth(1).expect("status").parse().unwrap();
    let mut len = 0;
    loop {
        let mut field = String::new();
        reader.read_line(&mut field).expect("header line");
        if field == "\r\n" {
            break;
        }
        let (name, value) = field.trim_end().split_once(':').unwrap();
        if name.eq_ignore_ascii_case("content-length") {
            len = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).expect("body");
    (status, body)
}

#[test]
fn a_client_that_negotiated_another_alpn_protocol_gets_no_http_bytes() {
    let (server, client_cfg) = tls_server(&[b"h2", b"http/1.1"], &[b"h2"]);
    let mut tls = connect(&server, &client_cfg);
    assert_eq!(tls.conn.alpn_protocol(), Some(&b"h2"[..]));
    // The request may meet a connection already closed.
    let _ = tls.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    // Ok(0) (close_notify) or an error (an alert, a reset): either way, no
    // response.
    let mut buf = [0u8; 4096];
    let got = match tls.read(&mut buf) {
        Ok(n) => buf[..n].to_vec(),
        Err(e) => {
            assert_ne!(e.kind(), std::io::ErrorKind::WouldBlock, "not closed");
            Vec::new()
        }
    };
    assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
}

#[test]
fn only_a_refused_handshake_counts_as_a_bad_request() {
    let (server, client_cfg) = tls_server(&[b"http/1.1"], &[b"http/1.1"]);
    // A TCP health check: connect, close. Nothing to count.
    drop(TcpStream::connect(server.addr).unwrap());
    // Plain HTTP sent to the TLS port: refused by rustls.
    let mut plain = TcpStream::connect(server.addr).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let mut sink = Vec::new();
    let _ = plain.read_to_end(&mut sink);
    // A served connection shows both earlier ones were handled.
    let mut c = BufReader::new(connect(&server, &client_cfg));
    c.get_mut()
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut c).0, 200);
    // Once the first two connections have ended (only the served one is
    // open), their outcome is counted.
    let mut stats = server.stats.snapshot();
    for _ in 0..1000 {
        if stats.active == 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
        stats = server.stats.snapshot();
    }
    assert_eq!((stats.accepted, stats.active), (3, 1), "{stats:?}");
    assert_eq!(stats.bad_requests, 1, "{stats:?}");
}

#[test]
fn a_client_that_negotiated_http11_is_served() {
    let (server, client_cfg) = tls_server(&[b"h2", b"http/1.1"], &[b"http/1.1"]);
    let tls = connect(&server, &client_cfg);
    assert_eq!(tls.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    let mut c = BufReader::new(tls);
    c.get_mut()
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let (status, body) = read_response(&mut c);
    assert_eq!((status, &body[..]), (200, &b"fine"[..]));
}

#[test]
fn keep_alive_responses_of_any_size_go_out_whole_and_the_next_request_is_served() {
    // A response queued in more than one write (a body frame of 16 KiB or
    // more goes out as a segment of its own) must be written in full while
    // the server waits for the next request, including the writes the TLS
    // session makes after the first one completes.
    let (server, client_cfg) = tls_server(&[b"http/1.1"], &[b"http/1.1"]);
    let mut c = BufReader::new(connect(&server, &client_cfg));
    let sizes = [1_000, 20_000, 40_000]
        .into_iter()
        .chain((65_300..=65_600).step_by(25))
        .chain([200_000]);
    for n in sizes {
        let req = format!("GET /size/{n} HTTP/1.1\r\nHost: a\r\n\r\n");
        c.get_mut().write_all(req.as_bytes()).unwrap();
        let (status, body) = read_response(&mut c);
        assert_eq!(status, 200, "size {n}");
        assert!(body == pattern(n), "size {n}: the body differs");
        // The next request on the same connection is answered too.
        c.get_mut()
            .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap();
        let (status, body) = read_response(&mut c);
        assert_eq!((status, &body[..]), (200, &b"fine"[..]), "after size {n}");
    }
}

/// Answers with a body of unknown length that yields "partial " and then
/// fails.
fn failing_body_service() -> impl TestService<Frames> {
    tower::service_fn(|_req: Request<Body>| async {
        let body = frames(vec![Ok(b"partial "), Err("the body failed")]);
        Ok::<_, Infallible>(Response::new(body))
    })
}

#[test]
fn a_close_delimited_response_whose_body_fails_ends_without_close_notify() {
    // HTTP/1.0 and a body of unknown length: the close ends the body, so a
    // clean close (close_notify) would pass the cut body off as whole.
    let (server, client_cfg) =
        tls_server_of(&[b"http/1.1"], &[b"http/1.1"], failing_body_service());
    let mut tls = connect(&server, &client_cfg);
    tls.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let (got, end) = read_to_the_end(&mut tls);
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.0 200"), "{text}");
    assert!(
        !text.to_ascii_lowercase().contains("content-length"),
        "{text}"
    );
    assert!(text.ends_with("partial "), "{text}");
    let err = end.expect_err("the cut body ended with close_notify");
    // No close_notify, and the TCP connection is reset rather than closed.
    assert_eq!(
        err.kind(),
        std::io::ErrorKind::ConnectionReset,
        "{err}: {text}"
    );
}

#[test]
fn a_chunked_response_whose_body_fails_gets_no_last_chunk_nor_close_notify() {
    let (server, client_cfg) =
        tls_server_of(&[b"http/1.1"], &[b"http/1.1"], failing_body_service());
    let mut tls = connect(&server, &client_cfg);
    tls.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
    let (got, end) = read_to_the_end(&mut tls);
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{text}"
    );
    assert!(
        text.ends_with("8\r\npartial \r\n"),
        "no last chunk: {text:?}"
    );
    // No close_notify (the TCP connection itself closes cleanly: only a
    // close-delimited body needs a reset).
    let err = end.expect_err("the cut body ended with close_notify");
    assert_eq!(
        err.kind(),
        std::io::ErrorKind::UnexpectedEof,
        "{err}: {text}"
    );
}

/// A client that refuses the server's certificate (curl without `-k`
/// against a self-signed server) sends an alert and leaves: its choice,
/// not bad TLS, so nothing is counted.
#[test]
fn a_client_that_refuses_the_certificate_is_not_counted_as_a_bad_request() {
    let (server, _) = tls_server(&[b"http/1.1"], &[b"http/1.1"]);
    // Trusts another self-signed certificate only.
    let (_, stranger) = common::localhost_tls();
    let tcp = TcpStream::connect(server.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let conn =
        ClientConnection::new(stranger.config().clone(), "localhost".try_into().unwrap()).unwrap();
    let mut tls = StreamOwned::new(conn, tcp);
    let mut refused = false;
    while tls.conn.is_handshaking() {
        // On the error rustls writes its alert before returning.
        if tls.conn.complete_io(&mut tls.sock).is_err() {
            refused = true;
            break;
        }
    }
    assert!(refused, "the client trusted a certificate it does not know");
    drop(tls);
    let mut stats = server.stats.snapshot();
    for _ in 0..1000 {
        if stats.accepted == 1 && stats.active == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
        stats = server.stats.snapshot();
    }
    assert_eq!((stats.accepted, stats.active), (1, 0), "{stats:?}");
    assert_eq!(stats.bad_requests, 0, "{stats:?}");
}

/// A server asking for optional client certificates, trusting
/// `client_cert_pem` (self-signed), whose service answers with what the
/// request's [`TlsInfo`](spargio_http::tls::TlsInfo) says; and the server's
/// certificate PEM.
fn client_auth_server(client_cert_pem: &str) -> (TestServer, String) {
    use rustls::server::WebPkiClientVerifier;
    use spargio_http::tls::{certs_from_pem, private_key_from_pem, root_store_from_pem, TlsInfo};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server_cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let client_roots = root_store_from_pem(client_cert_pem.as_bytes()).unwrap();
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(client_roots), provider.clone())
            .allow_unauthenticated()
            .build()
            .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            certs_from_pem(server_cert.cert.pem().as_bytes()).unwrap(),
            private_key_from_pem(server_cert.key_pair.serialize_pem().as_bytes()).unwrap(),
        )
        .unwrap();
    let service = tower::service_fn(|req: Request<Body>| async move {
        let said = match req.extensions().get::<TlsInfo>() {
            Some(tls) => format!(
                "{} {} {}",
                tls.server_name().unwrap_or("-"),
                String::from_utf8_lossy(tls.alpn_protocol().unwrap_or(b"-")),
                tls.peer_certificates().map_or(0, <[_]>::len),
            ),
            None => "no tls info".to_owned(),
        };
        Ok::<_, Infallible>(Response::new(Body::from(said)))
    });
    let http = Http::new()
        .tls(TlsAcceptor::new(Arc::new(config)))
        .conn_info(true);
    let server = TestServer::start_with(http, |b| b, service);
    (server, server_cert.cert.pem())
}

#[test]
fn handlers_see_the_sni_name_alpn_and_client_certificate_of_their_connection() {
    use spargio_http::tls::{certs_from_pem, private_key_from_pem, root_store_from_pem};
    let client_cert = rcgen::generate_simple_self_signed(vec!["client".into()]).unwrap();
    let (server, server_pem) = client_auth_server(&client_cert.cert.pem());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = root_store_from_pem(server_pem.as_bytes()).unwrap();
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut with_cert = builder
        .clone()
        .with_client_auth_cert(
            certs_from_pem(client_cert.cert.pem().as_bytes()).unwrap(),
            private_key_from_pem(client_cert.key_pair.serialize_pem().as_bytes()).unwrap(),
        )
        .unwrap();
    with_cert.alpn_protocols = vec![b"http/1.1".to_vec()];
    let without_cert = builder.with_no_client_auth();
    for (cfg, want) in [
        (with_cert, "localhost http/1.1 1"),
        (without_cert, "localhost - 0"),
    ] {
        let mut c = BufReader::new(connect(&server, &Arc::new(cfg)));
        c.get_mut()
            .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let (status, body) = read_response(&mut c);
        assert_eq!(
            (status, String::from_utf8_lossy(&body).as_ref()),
            (200, want)
        );
    }
}
