//! The HTTP/1.1 codec alone, no socket: parsing the request wrk sends on
//! the HTTP rows into a `RequestHead` (and building the `http::Request` a
//! service gets, as hyper does), and encoding the `/plaintext` response's
//! head. The pipelined HTTP row spends about a third of the server's user
//! CPU here; this bench measures changes to it without the noise of the
//! load generator sharing the cores.
//!
//! `cargo bench -p spargio-benches --bench h1`

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Method, Request, StatusCode, Version};
use spargio_http::h1::{self, Limits, ResponseFraming};
use std::hint::black_box;

/// What `wrk` sends for `GET /plaintext`.
const WRK_REQUEST: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:18080\r\n\r\n";

/// A browser-like request with a dozen fields.
const BROWSER_REQUEST: &[u8] = b"GET /static/app.js?v=42 HTTP/1.1\r\n\
Host: example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: */*\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Referer: https://example.com/\r\n\
Connection: keep-alive\r\n\
Cookie: session=0123456789abcdef; theme=dark\r\n\
Sec-Fetch-Dest: script\r\n\
Sec-Fetch-Mode: no-cors\r\n\
Sec-Fetch-Site: same-origin\r\n\
If-None-Match: \"abc123\"\r\n\r\n";

/// Sixteen copies of `one`, as a pipelined batch arrives.
fn batch(one: &[u8]) -> Bytes {
    Bytes::from(one.repeat(16))
}

fn parse(c: &mut Criterion) {
    let limits = Limits::default();
    let mut group = c.benchmark_group("h1_parse_request");
    group.throughput(Throughput::Elements(16));
    for (name, one) in [("wrk", WRK_REQUEST), ("browser", BROWSER_REQUEST)] {
        let input = batch(one);
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut buf = BytesMut::from(&input[..]);
                while let Some(head) = h1::parse_request_buf(&mut buf, &limits).unwrap() {
                    let mut req = Request::new(());
                    *req.method_mut() = head.method;
                    *req.uri_mut() = head.uri;
                    *req.headers_mut() = head.headers;
                    black_box(req);
                }
            })
        });
    }
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut headers = http::HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    let mut group = c.benchmark_group("h1_encode_response_head");
    group.throughput(Throughput::Elements(16));
    group.bench_function("plaintext", |b| {
        let mut dst = BytesMut::with_capacity(4096);
        b.iter(|| {
            dst.clear();
            for _ in 0..16 {
                let framing = h1::response_framing(
                    &Method::GET,
                    Version::HTTP_11,
                    StatusCode::OK,
                    &headers,
                    Some(13),
                );
                assert_eq!(framing, ResponseFraming::Length(13));
                h1::encode_response_head(
                    &mut dst,
                    Version::HTTP_11,
                    StatusCode::OK,
                    &headers,
                    framing,
                    None,
                    true,
                )
                .unwrap();
                dst.extend_from_slice(b"Hello, World!");
            }
            black_box(&dst);
        })
    });
    group.finish();
}

/// What parsing costs at the least: httparse alone over the same batch,
/// and building the `Uri` and the one-field `HeaderMap` of each request
/// (allocation and drop included). `h1_parse_request/wrk` less these is
/// what our own checks and hand-overs add.
fn building_blocks(c: &mut Criterion) {
    let mut group = c.benchmark_group("h1_building_blocks");
    group.throughput(Throughput::Elements(16));
    let input = batch(WRK_REQUEST);
    group.bench_function("httparse", |b| {
        b.iter(|| {
            let mut at = 0;
            while at < input.len() {
                let mut fields = [httparse::EMPTY_HEADER; 16];
                let mut req = httparse::Request::new(&mut fields);
                match req.parse(&input[at..]).unwrap() {
                    httparse::Status::Complete(n) => at += n,
                    httparse::Status::Partial => unreachable!("the batch holds whole heads"),
                }
                black_box(&req);
            }
        })
    });
    group.bench_function("uri", |b| {
        b.iter(|| {
            for _ in 0..16 {
                let path = Bytes::from_static(b"/plaintext");
                black_box(http::Uri::from_maybe_shared(path).unwrap());
            }
        })
    });
    group.bench_function("header_map", |b| {
        b.iter(|| {
            for _ in 0..16 {
                let mut map = http::HeaderMap::with_capacity(1);
                map.append(
                    http::header::HOST,
                    HeaderValue::from_static("127.0.0.1:18080"),
                );
                black_box(map);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, parse, encode, building_blocks);
criterion_main!(benches);
