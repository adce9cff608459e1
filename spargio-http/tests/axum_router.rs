//! An axum `Router` with tower-http and tower layers, served by
//! `spargio_http::Http` exactly as a user would write it for hyper: the
//! router is handed to the server unchanged (it is a
//! `Service<Request<spargio_http::Body>>`), and its responses
//! (`axum::body::Body`, tower-http's compression body) are written as they
//! are. Every check goes over a real socket with the raw test client.
//!
//! Covered: routing and extractors (`Path`, `Query`, `Json`, `String`,
//! `Bytes`, `MatchedPath`, `OriginalUri`, fallback), axum's own rejections
//! (400 / 415 / 422 / 413), CORS preflight, gzip compression, tracing
//! callbacks, keep-alive and pipelining across axum requests, 1 MiB bodies,
//! axum's 2 MB default body limit, `into_make_service` and a per-connection
//! make-service, and a server-wide `ConcurrencyLimitLayer`.

mod common;

use std::convert::Infallible;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Extension, MatchedPath, OriginalUri, Path, Query};
use axum::http::{HeaderValue, Method, StatusCode, Uri};
use axum::routing::{get, post};
use axum::{Json, Router};
use common::{fnv1a, pattern, RawClient, RawResponse, TestServer, TestService};
use serde::{Deserialize, Serialize};
use spargio_service::ConnInfo;
use tower::ServiceBuilder;
use tower_http::compression::CompressionLayer;
use tower_http::cors::CorsLayer;
use tower_http::trace::TraceLayer;

/// The JSON document `/json` echoes.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct User {
    name: String,
    age: u32,
    tags: Vec<String>,
}

/// `/query`'s parameters.
#[derive(Debug, Deserialize)]
struct Search {
    q: String,
    limit: Option<u32>,
}

/// The text `/big` answers with: long and repetitive, so gzip shrinks it.
fn big_text() -> String {
    (0..2000)
        .map(|i| format!("line {i}: the quick brown fox jumps over the lazy dog\n"))
        .collect()
}

/// The routes, without layers.
fn routes() -> Router {
    Router::new()
        .route("/", get(|| async { "hello from axum" }))
        .route(
            "/users/{id}",
            get(|Path(id): Path<u32>, matched: MatchedPath| async move {
                format!("user {id} via {}", matched.as_str())
            }),
        )
        .route(
            "/json",
            post(|Json(mut user): Json<User>| async move {
                user.age += 1;
                user.tags.push("seen".into());
                Json(user)
            }),
        )
        .route(
            "/query",
            get(|Query(s): Query<Search>| async move {
                format!("q={} limit={:?}", s.q, s.limit)
            }),
        )
        .route(
            "/string",
            post(|body: String| async move { format!("{} chars: {body}", body.chars().count()) }),
        )
        .route(
            "/bytes",
            post(|body: Bytes| async move {
                format!("len={} fnv={:016x}", body.len(), fnv1a(&body))
            }),
        )
        .route("/big", get(|| async { big_text() }))
        .fallback(|OriginalUri(uri): OriginalUri| async move {
            (StatusCode::NOT_FOUND, format!("no route for {uri}"))
        })
}

/// The routes with the layers a typical application puts on them; every
/// response counts one in `traced` through `TraceLayer`'s `on_response`.
fn app(traced: Arc<AtomicUsize>) -> Router {
    let trace = TraceLayer::new_for_http().on_response(
        move |_res: &axum::http::Response<_>, _latency: Duration, _span: &tracing::Span| {
            traced.fetch_add(1, Ordering::SeqCst);
        },
    );
    let cors = CorsLayer::new()
        // A list: the header is sent only to origins on it.
        .allow_origin([HeaderValue::from_static("http://app.example")])
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([axum::http::header::CONTENT_TYPE])
        .max_age(Duration::from_secs(600));
    routes()
        .layer(tower::limit::ConcurrencyLimitLayer::new(64))
        .layer(CompressionLayer::new())
        .layer(cors)
        .layer(trace)
}

fn start() -> (TestServer, Arc<AtomicUsize>) {
    let traced = Arc::new(AtomicUsize::new(0));
    (TestServer::start(app(traced.clone())), traced)
}

fn get_req(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").into_bytes()
}

fn post_req(path: &str, content_type: Option<&str>, body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(ct) = content_type {
        req.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    req.push_str("\r\n");
    let mut req = req.into_bytes();
    req.extend_from_slice(body);
    req
}

/// Decompresses gzip with python3's `gzip` module (an implementation
/// independent of the one that compressed it).
fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import sys, gzip; sys.stdout.buffer.write(gzip.decompress(sys.stdin.buffer.read()))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is needed to check gzip bodies (install python3)");
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python3 could not gunzip the body: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn assert_text(resp: &RawResponse, status: u16, body: &str) {
    assert_eq!(
        resp.status,
        status,
        "body: {:?}",
        String::from_utf8_lossy(&resp.body)
    );
    assert_eq!(resp.body_str(), body);
}

#[test]
fn routes_and_extractors_answer() {
    let (server, traced) = start();
    let mut c = server.connect();

    let resp = c.roundtrip(&get_req("/"));
    assert_text(&resp, 200, "hello from axum");
    assert_eq!(
        resp.header("content-type"),
        Some("text/plain; charset=utf-8")
    );

    let resp = c.roundtrip(&get_req("/users/42"));
    assert_text(&resp, 200, "user 42 via /users/{id}");

    let resp = c.roundtrip(&get_req("/query?q=rust%20io&limit=5"));
    assert_text(&resp, 200, "q=rust io limit=Some(5)");
    let resp = c.roundtrip(&get_req("/query?q=only"));
    assert_text(&resp, 200, "q=only limit=None");

    let resp = c.roundtrip(&post_req("/string", Some("text/plain"), "héllo".as_bytes()));
    assert_text(&resp, 200, "5 chars: héllo");

    let resp = c.roundtrip(&post_req("/bytes", None, b"abc"));
    assert_text(&resp, 200, &format!("len=3 fnv={:016x}", fnv1a(b"abc")));

    let resp = c.roundtrip(&get_req("/nowhere?x=1"));
    assert_text(&resp, 404, "no route for /nowhere?x=1");

    drop(c);
    server.stop();
    assert_eq!(
        traced.load(Ordering::SeqCst),
        7,
        "TraceLayer saw every response"
    );
}

#[test]
fn json_round_trip() {
    let (server, _) = start();
    let mut c = server.connect();
    let sent = User {
        name: "Ada".into(),
        age: 36,
        tags: vec!["math".into()],
    };
    let body = serde_json::to_vec(&sent).unwrap();
    let resp = c.roundtrip(&post_req("/json", Some("application/json"), &body));
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("application/json"));
    let got: User = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(
        got,
        User {
            name: "Ada".into(),
            age: 37,
            tags: vec!["math".into(), "seen".into()],
        }
    );
}

#[test]
fn axum_rejections_come_through() {
    let (server, _) = start();
    let mut c = server.connect();

    // Not JSON at all: a syntax error is 400.
    let resp = c.roundtrip(&post_req("/json", Some("application/json"), b"{\"name\": "));
    assert_eq!(resp.status, 400, "{}", resp.body_str());
    assert!(
        resp.body_str().contains("Failed to parse"),
        "{}",
        resp.body_str()
    );

    // JSON of the wrong shape: 422.
    let resp = c.roundtrip(&post_req(
        "/json",
        Some("application/json"),
        b"{\"name\": 1}",
    ));
    assert_eq!(resp.status, 422, "{}", resp.body_str());

    // No JSON content type: 415.
    let resp = c.roundtrip(&post_req("/json", Some("text/plain"), b"{}"));
    assert_eq!(resp.status, 415, "{}", resp.body_str());
    let resp = c.roundtrip(&post_req("/json", None, b"{}"));
    assert_eq!(resp.status, 415, "{}", resp.body_str());

    // A path parameter that does not parse: 400.
    let resp = c.roundtrip(&get_req("/users/not-a-number"));
    assert_eq!(resp.status, 400, "{}", resp.body_str());

    // A missing query parameter: 400.
    let resp = c.roundtrip(&get_req("/query?limit=3"));
    assert_eq!(resp.status, 400, "{}", resp.body_str());

    // Wrong method on a route: 405 with Allow.
    let resp = c.roundtrip(&get_req("/json"));
    assert_eq!(resp.status, 405);
    assert_eq!(resp.header("allow"), Some("POST"));

    // The connection survived every rejection.
    assert_text(&c.roundtrip(&get_req("/")), 200, "hello from axum");
}

#[test]
fn cors_preflight_and_simple_requests() {
    let (server, _) = start();
    let mut c = server.connect();

    c.send(
        b"OPTIONS /json HTTP/1.1\r\nHost: test\r\nOrigin: http://app.example\r\n\
          Access-Control-Request-Method: POST\r\n\
          Access-Control-Request-Headers: content-type\r\n\r\n",
    );
    let resp = c.read_response();
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("access-control-allow-origin"),
        Some("http://app.example")
    );
    let methods = resp.header("access-control-allow-methods").unwrap();
    assert!(
        methods.contains("POST") && methods.contains("GET"),
        "{methods}"
    );
    assert_eq!(
        resp.header("access-control-allow-headers"),
        Some("content-type")
    );
    assert_eq!(resp.header("access-control-max-age"), Some("600"));
    assert!(resp.body.is_empty());

    // A simple request from the allowed origin is marked as allowed...
    c.send(b"GET / HTTP/1.1\r\nHost: test\r\nOrigin: http://app.example\r\n\r\n");
    let resp = c.read_response();
    assert_text(&resp, 200, "hello from axum");
    assert_eq!(
        resp.header("access-control-allow-origin"),
        Some("http://app.example")
    );

    // ... and one from elsewhere is not.
    c.send(b"GET / HTTP/1.1\r\nHost: test\r\nOrigin: http://evil.example\r\n\r\n");
    let resp = c.read_response();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("access-control-allow-origin"), None);
}

#[test]
fn gzip_compression_when_asked() {
    let (server, _) = start();
    let mut c = server.connect();
    let original = big_text();

    c.send(b"GET /big HTTP/1.1\r\nHost: test\r\nAccept-Encoding: gzip\r\n\r\n");
    let resp = c.read_response();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-encoding"), Some("gzip"));
    assert!(resp
        .header("vary")
        .is_some_and(|v| v.eq_ignore_ascii_case("accept-encoding")));
    assert!(
        resp.body.len() < original.len() / 4,
        "compressed to {} of {} bytes",
        resp.body.len(),
        original.len()
    );
    assert_eq!(gunzip(&resp.body), original.as_bytes());

    // Without Accept-Encoding the same route is plain, on the same
    // connection after a chunked gzip body.
    let resp = c.roundtrip(&get_req("/big"));
    assert_eq!(resp.header("content-encoding"), None);
    assert_eq!(resp.body_str(), original);

    // A client that only takes brotli gets identity.
    c.send(b"GET /big HTTP/1.1\r\nHost: test\r\nAccept-Encoding: br\r\n\r\n");
    let resp = c.read_response();
    assert_eq!(resp.header("content-encoding"), None);
    assert_eq!(resp.body_str(), original);
}

#[test]
fn keep_alive_and_pipelining_across_axum_requests() {
    let (server, traced) = start();
    let mut c = server.connect();
    for i in 0..10u32 {
        let resp = c.roundtrip(&get_req(&format!("/users/{i}")));
        assert_text(&resp, 200, &format!("user {i} via /users/{{id}}"));
        assert_eq!(resp.header("connection"), None, "kept alive");
    }

    // Pipelined: a GET, a JSON POST, a 404, a gzip response, a GET.
    let json = br#"{"name":"Bo","age":1,"tags":[]}"#;
    let mut batch = get_req("/");
    batch.extend(post_req("/json", Some("application/json"), json));
    batch.extend(get_req("/missing"));
    batch.extend(b"GET /big HTTP/1.1\r\nHost: test\r\nAccept-Encoding: gzip\r\n\r\n");
    batch.extend(get_req("/query?q=last"));
    c.send(&batch);
    assert_text(&c.read_response(), 200, "hello from axum");
    assert_eq!(
        c.read_response().body_str(),
        r#"{"name":"Bo","age":2,"tags":["seen"]}"#
    );
    assert_text(&c.read_response(), 404, "no route for /missing");
    let gz = c.read_response();
    assert_eq!(gunzip(&gz.body), big_text().as_bytes());
    assert_text(&c.read_response(), 200, "q=last limit=None");

    drop(c);
    server.stop();
    assert_eq!(traced.load(Ordering::SeqCst), 15);
}

#[test]
fn one_mib_body_through_the_bytes_extractor() {
    let (server, _) = start();
    let mut c = server.connect();
    let body = pattern(1 << 20);
    let resp = c.roundtrip(&post_req("/bytes", Some("application/octet-stream"), &body));
    assert_text(
        &resp,
        200,
        &format!("len={} fnv={:016x}", body.len(), fnv1a(&body)),
    );

    // The same body chunked.
    let mut req =
        b"POST /bytes HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for chunk in body.chunks(100_000) {
        req.extend(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend(chunk);
        req.extend(b"\r\n");
    }
    req.extend(b"0\r\n\r\n");
    let resp = c.roundtrip(&req);
    assert_text(
        &resp,
        200,
        &format!("len={} fnv={:016x}", body.len(), fnv1a(&body)),
    );
}

/// Sends `req` from another thread (the server may stop reading it) and
/// reads one response.
fn send_big(c: &mut RawClient, req: Vec<u8>) -> (RawResponse, std::thread::JoinHandle<()>) {
    let mut w = c.stream.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        // The server may close before taking it all: that is fine.
        let _ = w.write_all(&req);
    });
    (c.read_response(), writer)
}

/// After a refused body the connection is either still usable or closed
/// cleanly (EOF or reset), never left answering garbage.
fn sound_or_closed(c: &mut RawClient) {
    use std::io::BufRead;
    let _ = c.stream.write_all(&get_req("/"));
    let open = match c.reader.fill_buf() {
        Ok(buf) => !buf.is_empty(),
        Err(e) => {
            assert!(
                matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                ),
                "{e}"
            );
            false
        }
    };
    if open {
        // A whole new response, not leftover body bytes.
        assert_text(&c.read_response(), 200, "hello from axum");
    }
}

#[test]
fn body_over_axums_default_limit_gets_413() {
    let (server, _) = start();

    // Just under axum's 2 MB default: accepted.
    let mut c = server.connect();
    let ok = pattern(2_000_000);
    let resp = c.roundtrip(&post_req("/bytes", None, &ok));
    assert_text(
        &resp,
        200,
        &format!("len={} fnv={:016x}", ok.len(), fnv1a(&ok)),
    );

    // Over it, with Content-Length.
    let mut c = server.connect();
    let (resp, writer) = send_big(&mut c, post_req("/bytes", None, &pattern(3 << 20)));
    assert_eq!(resp.status, 413, "{}", resp.body_str());
    assert!(
        resp.body_str().contains("length limit"),
        "{}",
        resp.body_str()
    );
    sound_or_closed(&mut c);
    drop(c);
    writer.join().unwrap();

    // Over it, chunked.
    let mut c = server.connect();
    let mut req =
        b"POST /bytes HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for chunk in pattern(3 << 20).chunks(64 * 1024) {
        req.extend(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend(chunk);
        req.extend(b"\r\n");
    }
    req.extend(b"0\r\n\r\n");
    let (resp, writer) = send_big(&mut c, req);
    assert_eq!(resp.status, 413, "{}", resp.body_str());
    sound_or_closed(&mut c);
    drop(c);
    writer.join().unwrap();

    // The server is fine.
    let mut c = server.connect();
    assert_text(&c.roundtrip(&get_req("/")), 200, "hello from axum");
}

#[test]
fn small_overflow_keeps_the_connection() {
    // A body just over the limit leaves little unread, which the server
    // drains: the connection goes on.
    let app = routes().layer(axum::extract::DefaultBodyLimit::max(1000));
    let server = TestServer::start(app);
    let mut c = server.connect();
    let resp = c.roundtrip(&post_req("/bytes", None, &pattern(1500)));
    assert_eq!(resp.status, 413);
    assert_eq!(resp.header("connection"), None);
    assert_text(&c.roundtrip(&get_req("/")), 200, "hello from axum");
    let resp = c.roundtrip(&post_req("/bytes", None, &pattern(999)));
    assert_eq!(resp.status, 200);
}

#[test]
fn into_make_service_and_a_per_connection_make_service() {
    let (tx, rx) = std::sync::mpsc::channel();
    // `Router::into_make_service()` is a tower MakeService: `Server::serve`
    // takes it like `axum::serve` does.
    let server = common::start_make(routes().into_make_service());
    let mut c = server.connect();
    assert_text(
        &c.roundtrip(&get_req("/users/7")),
        200,
        "user 7 via /users/{id}",
    );
    drop(c);
    drop(server);

    // A make-service that hands each connection's `ConnInfo` to handlers
    // through an `Extension` (axum's `ConnectInfo` needs its tokio feature).
    let router = Router::new().route(
        "/whoami",
        get(|Extension(info): Extension<ConnInfo>| async move {
            format!("{} {}", info.peer_addr.unwrap(), info.id)
        }),
    );
    let make = tower::service_fn(move |info: ConnInfo| {
        let router = router.clone().layer(Extension(info));
        let tx = tx.clone();
        async move {
            let _ = tx.send(());
            Ok::<_, Infallible>(router)
        }
    });
    let server = common::start_make(make);
    for id in 0..2 {
        let mut c = server.connect();
        let local = c.stream.local_addr().unwrap();
        let resp = c.roundtrip(&get_req("/whoami"));
        assert_text(&resp, 200, &format!("{local} {id}"));
        // The same service for the connection's next request.
        assert_text(
            &c.roundtrip(&get_req("/whoami")),
            200,
            &format!("{local} {id}"),
        );
    }
    drop(server);
    assert_eq!(rx.try_iter().count(), 2, "one service per connection");
}

/// The routes plus `/work`, which records how many of its requests run at
/// once (`max_seen`) and yields for a moment so that requests overlap when
/// nothing serialises them.
fn limited_app(max_seen: Arc<AtomicUsize>) -> impl TestService<axum::body::Body> {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let router = routes().route(
        "/work",
        get(move || {
            let (f, m) = (in_flight.clone(), max_seen.clone());
            async move {
                let now = f.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(now, Ordering::SeqCst);
                spargio_rt::time::sleep(Duration::from_millis(2)).await;
                f.fetch_sub(1, Ordering::SeqCst);
                "worked"
            }
        }),
    );
    // Around the whole router: one semaphore shared by every connection's
    // clone of the service, as with `ServiceBuilder` in front of
    // `axum::serve`.
    ServiceBuilder::new().concurrency_limit(1).service(router)
}

/// Waits (bounded) until `cond` holds; panics naming `what` otherwise.
fn eventually(what: &str, cond: impl Fn() -> bool) {
    let by = std::time::Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(std::time::Instant::now() < by, "never: {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn server_wide_concurrency_limit_serialises_connections() {
    // A request on one connection holds the one permit inside its handler
    // until released; a request on another connection waits for the
    // service to be ready instead of running beside it.
    let entered = Arc::new(AtomicUsize::new(0));
    let open = Arc::new(AtomicBool::new(false));
    let (e, o) = (entered.clone(), open.clone());
    let router = routes().route(
        "/gated",
        get(move || {
            let (e, o) = (e.clone(), o.clone());
            async move {
                e.fetch_add(1, Ordering::SeqCst);
                while !o.load(Ordering::SeqCst) {
                    spargio_rt::time::sleep(Duration::from_millis(1)).await;
                }
                "passed"
            }
        }),
    );
    let server = TestServer::start(ServiceBuilder::new().concurrency_limit(1).service(router));
    let mut a = server.connect();
    let mut b = server.connect();
    a.send(&get_req("/gated"));
    eventually("the first handler runs", || {
        entered.load(Ordering::SeqCst) == 1
    });
    b.send(&get_req("/gated"));
    eventually("the second request waits for readiness", || {
        server.stats.snapshot().requests_awaiting_ready >= 1
    });
    assert_eq!(entered.load(Ordering::SeqCst), 1, "ran past the limit");
    open.store(true, Ordering::SeqCst);
    assert_text(&a.read_response(), 200, "passed");
    assert_text(&b.read_response(), 200, "passed");
    assert_eq!(entered.load(Ordering::SeqCst), 2);
}

#[test]
fn idle_keep_alive_connection_does_not_hold_a_concurrency_permit() {
    let max_seen = Arc::new(AtomicUsize::new(0));
    let server = TestServer::start(limited_app(max_seen));
    let mut a = server.connect();
    let mut b = server.connect();
    assert_text(&a.roundtrip(&get_req("/work")), 200, "worked");
    // `a` stays open and idle. `b` must still be served (the raw client
    // gives up after 10 s and fails the test if it is not).
    assert_text(&b.roundtrip(&get_req("/work")), 200, "worked");
    assert_text(&b.roundtrip(&get_req("/work")), 200, "worked");
    assert_text(&a.roundtrip(&get_req("/work")), 200, "worked");
}

#[test]
fn uri_is_seen_by_axum_as_sent() {
    // axum routes on the path; a percent-encoded path parameter is decoded
    // by `Path`, and `OriginalUri` keeps the raw form.
    let app = Router::new()
        .route(
            "/files/{name}",
            get(
                |Path(name): Path<String>, OriginalUri(uri): OriginalUri| async move {
                    format!("{name} | {uri}")
                },
            ),
        )
        .route(
            "/echo-uri",
            get(|uri: Uri| async move { format!("{:?} {:?}", uri.path(), uri.query()) }),
        );
    let server = TestServer::start(app);
    let mut c = server.connect();
    assert_text(
        &c.roundtrip(&get_req("/files/a%20b%2Fc")),
        200,
        "a b/c | /files/a%20b%2Fc",
    );
    assert_text(
        &c.roundtrip(&get_req("/echo-uri?x=1&y=%20")),
        200,
        "\"/echo-uri\" Some(\"x=1&y=%20\")",
    );
}

#[test]
fn a_single_page_app_behind_an_api_router() {
    // axum's usual shape for a front end: API routes, and for every other
    // path the app's files, with `index.html` for the client-side routes.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), "<div id=app>").unwrap();
    std::fs::write(dir.path().join("app.js"), "boot()").unwrap();
    let spa = spargio_http::fs::ServeDir::new(dir.path()).fallback(
        spargio_http::fs::ServeFile::new(dir.path().join("index.html")),
    );
    let app = Router::new()
        .route("/api/ping", get(|| async { "pong" }))
        .fallback_service(spa);
    let server = TestServer::start(app);
    let mut c = server.connect();
    assert_text(&c.roundtrip(&get_req("/api/ping")), 200, "pong");
    assert_text(&c.roundtrip(&get_req("/app.js")), 200, "boot()");
    assert_text(
        &c.roundtrip(&get_req("/settings/profile")),
        200,
        "<div id=app>",
    );
    assert_text(&c.roundtrip(&get_req("/")), 200, "<div id=app>");
}
