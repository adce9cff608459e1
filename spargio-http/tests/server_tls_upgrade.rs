//! An upgraded connection over TLS, against a blocking rustls client:
//! records the session holds back go out while the handler waits to read,
//! and an empty read is not taken for the end of the stream.

mod common;

use std::convert::Infallible;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use common::{pattern, TestServer, TestService};
use futures_util::{AsyncReadExt, AsyncWriteExt};
use http::{Request, Response, StatusCode};
use rustls::{ClientConnection, StreamOwned};
use spargio_http::{upgrade, Body, Http};

type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// Answers `101`, and runs `then` on the connection once it is handed over.
fn switch_then<F, Fut>(then: F) -> impl TestService<Body>
where
    F: Fn(upgrade::Upgraded) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    tower::service_fn(move |mut req: Request<Body>| {
        let then = then.clone();
        async move {
            let on = upgrade::on(&mut req);
            spargio_rt::spawn(async move {
                if let Ok(io) = on.await {
                    then(io).await;
                }
            });
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            r.headers_mut()
                .insert("connection", "upgrade".parse().unwrap());
            r.headers_mut().insert("upgrade", "shout".parse().unwrap());
            Ok::<_, Infallible>(r)
        }
    })
}

/// Connects over TLS (reads time out after 10 s, a bound against a hang),
/// asks for the upgrade and reads the `101` head.
fn upgraded_client(service: impl TestService<Body>) -> (TestServer, BufReader<TlsStream>) {
    let (acceptor, connector) = common::localhost_tls();
    let server = TestServer::start_with(Http::new().tls(acceptor), |b| b, service);
    let tcp = TcpStream::connect(server.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let cfg: Arc<_> = connector.config().clone();
    let conn = ClientConnection::new(cfg, "localhost".try_into().unwrap()).unwrap();
    let mut tls = StreamOwned::new(conn, tcp);
    tls.write_all(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: shout\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(tls);
    let mut line = String::new();
    reader.read_line(&mut line).expect("status line");
    assert!(line.starts_with("HTTP/1.1 101 "), "{line}");
    loop {
        line.clear();
        reader.read_line(&mut line).expect("header line");
        if line == "\r\n" {
            break;
        }
    }
    (server, reader)
}

#[test]
fn records_written_without_a_flush_go_out_while_the_handler_reads() {
    // An echo that never flushes, reading 1 KiB at a time: the client's
    // 2 KiB arrive in one record, so the second read is served from the
    // session's plaintext without the socket, and the second echo is
    // sealed while the first is still in flight. The read after it must
    // send that record, or the client waits for it for ever.
    let (_server, mut c) = upgraded_client(switch_then(|mut io| async move {
        let mut buf = [0u8; 1024];
        while let Ok(n) = io.read(&mut buf).await {
            if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    }));
    let sent = pattern(2048);
    c.get_mut().write_all(&sent).unwrap();
    let mut got = vec![0u8; sent.len()];
    c.read_exact(&mut got)
        .expect("records the handler wrote were never sent");
    assert!(got == sent, "the bytes differ");
}

#[test]
fn an_empty_read_is_not_the_end_of_an_upgraded_tls_stream() {
    let (_server, mut c) = upgraded_client(switch_then(|mut io| async move {
        assert_eq!(io.read(&mut []).await.unwrap(), 0);
        let mut buf = [0u8; 5];
        io.read_exact(&mut buf).await.unwrap();
        io.write_all(&buf.to_ascii_uppercase()).await.unwrap();
        io.flush().await.unwrap();
    }));
    c.get_mut().write_all(b"hello").unwrap();
    let mut got = [0u8; 5];
    c.read_exact(&mut got)
        .expect("the handler took the empty read for the end");
    assert_eq!(&got, b"HELLO");
}
