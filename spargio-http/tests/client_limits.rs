//! The bounds `spargio_http::Client` puts on responses, set on its
//! builder: each lowered limit refuses a response the default accepts,
//! with the error the client gives for that part of the response.

use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};

use bytes::Bytes;
use http_body_util::BodyExt;
use spargio_http::{Body, BodyError, Client, ClientBuilder, ClientError};

/// Starts a blocking server on threads of its own that answers every
/// request head on every connection with `response` (the requests here
/// have no body).
fn serve_fixed(response: String) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let response = response.clone();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    match conn.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&chunk[..n]),
                    }
                    while let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                        got.drain(..end + 4);
                        if conn.write_all(response.as_bytes()).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

fn run<Fut: Future<Output = ()> + 'static>(test: impl FnOnce() -> Fut + Send + 'static) {
    spargio_rt::run(move |_| test()).unwrap();
}

/// GETs `/` from `addr` with a client built from `builder`.
async fn get(
    builder: ClientBuilder,
    addr: SocketAddr,
) -> Result<http::Response<Body>, ClientError> {
    builder.build().get(format!("http://{addr}/")).await
}

async fn body_bytes(body: Body) -> Result<Bytes, BodyError> {
    Ok(body.collect().await?.to_bytes())
}

/// A `200` with `extra` header fields besides its `content-length`, and
/// the body "ok".
fn with_headers(extra: usize) -> String {
    let mut r = String::from("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n");
    for i in 0..extra {
        r.push_str(&format!("x-field-{i}: {i}\r\n"));
    }
    r.push_str("\r\nok");
    r
}

fn parse_reason(res: Result<http::Response<Body>, ClientError>) -> &'static str {
    match res {
        Err(ClientError::Parse { reason, .. }) => reason,
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn more_header_fields_than_a_lowered_limit_is_a_parse_error() {
    run(|| async {
        let addr = serve_fixed(with_headers(20));
        let res = get(Client::builder().max_response_headers(10), addr).await;
        assert_eq!(parse_reason(res), "too many header fields");
    });
}

#[test]
fn the_same_header_fields_pass_under_the_default_limit() {
    run(|| async {
        let addr = serve_fixed(with_headers(20));
        let resp = get(Client::builder(), addr).await.unwrap();
        assert_eq!(resp.headers().len(), 21);
        assert_eq!(resp.headers()["x-field-19"], "19");
        assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "ok");
    });
}

#[test]
fn a_head_over_a_lowered_size_limit_is_a_parse_error() {
    run(|| async {
        let big = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-big: {}\r\n\r\nok",
            "v".repeat(2000)
        );
        let addr = serve_fixed(big);
        let res = get(Client::builder().max_response_head_bytes(1024), addr).await;
        assert_eq!(parse_reason(res), "response head too large");

        let resp = get(Client::builder(), addr).await.unwrap();
        assert_eq!(resp.headers()["x-big"].len(), 2000);
    });
}

#[test]
fn more_interim_responses_than_a_lowered_limit_is_a_parse_error() {
    run(|| async {
        let addr = serve_fixed(format!(
            "{}HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
            "HTTP/1.1 103 Early Hints\r\n\r\n".repeat(3)
        ));
        let res = get(Client::builder().max_interim_responses(2), addr).await;
        assert_eq!(parse_reason(res), "too many interim (1xx) responses");

        let resp = get(Client::builder(), addr).await.unwrap();
        assert_eq!(resp.status(), 200);
    });
}

#[test]
fn trailers_over_a_lowered_size_limit_fail_the_body() {
    run(|| async {
        let addr = serve_fixed(format!(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
             2\r\nok\r\n0\r\nx-trailer: {}\r\n\r\n",
            "t".repeat(100)
        ));
        let resp = get(Client::builder().max_trailer_bytes(64), addr)
            .await
            .unwrap();
        let res = body_bytes(resp.into_body()).await;
        assert!(matches!(res, Err(BodyError::Malformed(_))), "{res:?}");

        let resp = get(Client::builder(), addr).await.unwrap();
        let all = resp.into_body().collect().await.unwrap();
        assert_eq!(all.trailers().unwrap()["x-trailer"].len(), 100);
        assert_eq!(all.to_bytes(), "ok");
    });
}

#[test]
fn chunk_extensions_over_a_lowered_limit_fail_the_body() {
    run(|| async {
        let addr = serve_fixed(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
             2;name=a-rather-long-extension-value\r\nok\r\n0\r\n\r\n"
                .to_string(),
        );
        let resp = get(Client::builder().max_chunk_ext_bytes(8), addr)
            .await
            .unwrap();
        let res = body_bytes(resp.into_body()).await;
        assert!(matches!(res, Err(BodyError::Malformed(_))), "{res:?}");

        let resp = get(Client::builder(), addr).await.unwrap();
        assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "ok");
    });
}
