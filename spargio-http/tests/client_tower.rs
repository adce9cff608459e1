//! `spargio_http::Client` as a tower `Service`: client-side middleware from
//! tower and tower-http wraps it unchanged (concurrency limit, redirects,
//! decompression, request headers), against a spargio-http server over
//! real sockets.

mod common;

use std::convert::Infallible;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use common::TestServer;
use http::Request;
use http_body_util::BodyExt;
use spargio_http::client::ResponseFuture;
use spargio_http::{Body, Client, ClientError};
use spargio_rt::sync::CancellationToken;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_http::compression::CompressionLayer;
use tower_http::decompression::DecompressionLayer;
use tower_http::follow_redirect::{FollowRedirectLayer, RequestUri};
use tower_http::set_header::SetRequestHeaderLayer;

/// Long and repetitive, so gzip shrinks it.
fn big_text() -> String {
    (0..2000)
        .map(|i| format!("line {i}: the quick brown fox jumps over the lazy dog\n"))
        .collect()
}

/// What the test server counts and waits on.
#[derive(Clone, Default)]
struct Seen {
    /// Requests for `/old`.
    old: Arc<AtomicUsize>,
    /// Requests for `/new`.
    new: Arc<AtomicUsize>,
    /// Requests that reached `/gated`.
    gated: Arc<AtomicUsize>,
    /// Releases every `/gated` request.
    open: CancellationToken,
    /// The Accept-Encoding of each request for `/big`.
    big_accepts: Arc<std::sync::Mutex<Vec<String>>>,
}

/// `/old` redirects to `/new`; `/ua` answers with the request's
/// User-Agent; `/big` is compressed when the client accepts gzip;
/// `/gated` answers once the test opens the gate.
fn start_server(seen: &Seen) -> TestServer {
    let (old, new, gated, open, accepts) = (
        seen.old.clone(),
        seen.new.clone(),
        seen.gated.clone(),
        seen.open.clone(),
        seen.big_accepts.clone(),
    );
    let app = Router::new()
        .route(
            "/old",
            get(move || async move {
                old.fetch_add(1, Ordering::SeqCst);
                (StatusCode::FOUND, [(header::LOCATION, "/new")], "moved")
            }),
        )
        .route(
            "/new",
            get(move || async move {
                new.fetch_add(1, Ordering::SeqCst);
                "the new page"
            }),
        )
        .route(
            "/ua",
            get(|headers: HeaderMap| async move {
                headers
                    .get(header::USER_AGENT)
                    .map_or_else(|| "none".to_owned(), |v| v.to_str().unwrap().to_owned())
            }),
        )
        .route(
            "/big",
            get(move |headers: HeaderMap| async move {
                let accept = headers
                    .get(header::ACCEPT_ENCODING)
                    .map_or_else(String::new, |v| v.to_str().unwrap().to_owned());
                accepts.lock().unwrap().push(accept);
                big_text()
            }),
        )
        .route(
            "/gated",
            get(move || async move {
                gated.fetch_add(1, Ordering::SeqCst);
                open.cancelled().await;
                "opened"
            }),
        )
        .layer(CompressionLayer::new());
    TestServer::start(app)
}

fn run<F, Fut>(test: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    spargio_rt::run_with(spargio_rt::Runtime::builder().shards(2), move |_| test()).unwrap()
}

fn get_req(server: &TestServer, path: &str) -> Request<Body> {
    Request::get(format!("http://{}{path}", server.addr))
        .body(Body::empty())
        .unwrap()
}

async fn text<B>(body: B) -> String
where
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let bytes: Bytes = body.collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// Waits until `cond` holds, for up to 20 s.
async fn eventually(mut cond: impl FnMut() -> bool) {
    let by = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !cond() {
        assert!(
            std::time::Instant::now() < by,
            "condition not reached in 20 s"
        );
        spargio_rt::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}

#[test]
fn client_is_a_send_tower_service_with_a_nameable_future() {
    fn send_static<T: Send + 'static>(_: &T) {}
    fn send_sync<T: Send + Sync>() {}
    // Whatever its body type: a body that is neither Send nor Sync.
    send_sync::<Client<http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>>>();
    send_sync::<Client<std::rc::Rc<()>>>();
    let seen = Seen::default();
    let server = start_server(&seen);
    let req = get_req(&server, "/new");
    run(move || async move {
        let mut client = Client::new();
        let fut: ResponseFuture = client.ready().await.unwrap().call(req);
        send_static(&fut);
        let resp = fut.await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(text(resp.into_body()).await, "the new page");

        // `oneshot`, with a body type other than spargio's own.
        let req = Request::get(format!("http://{}/new", server.addr))
            .body(http_body_util::Full::new(Bytes::new()))
            .unwrap();
        let full = client.with_body_type::<http_body_util::Full<Bytes>>();
        send_static(&full);
        let resp = full.oneshot(req).await.unwrap();
        assert_eq!(text(resp.into_body()).await, "the new page");
        assert_eq!(seen.new.load(Ordering::SeqCst), 2);
    });
}

#[test]
fn client_errors_come_through_the_service_as_client_errors() {
    let port = common::closed_port();
    run(move || async move {
        let req = Request::get(format!("http://127.0.0.1:{port}/"))
            .body(Body::empty())
            .unwrap();
        let err: ClientError = Client::new().oneshot(req).await.unwrap_err();
        assert!(err.is_connect(), "{err}");

        let bad = Request::get("/relative").body(Body::empty()).unwrap();
        let err = Client::new().oneshot(bad).await.unwrap_err();
        assert!(matches!(err, ClientError::InvalidUri { .. }), "{err}");
    });
}

#[test]
fn tower_concurrency_limit_holds_the_second_request_until_the_first_is_answered() {
    let seen = Seen::default();
    let server = start_server(&seen);
    let (first, second) = (get_req(&server, "/gated"), get_req(&server, "/new"));
    run(move || async move {
        let mut limited = ServiceBuilder::new()
            .concurrency_limit(1)
            .service(Client::new());
        let pending = limited.ready().await.unwrap().call(first);
        let answer = spargio_rt::spawn(pending);
        eventually(|| seen.gated.load(Ordering::SeqCst) == 1).await;

        // The one permit is held by the request at the gate: the service
        // is not ready, and cannot become so while the gate is shut.
        {
            let mut ready = pin!(limited.ready());
            let now = poll_fn(|cx| Poll::Ready(ready.as_mut().poll(cx).is_ready())).await;
            assert!(!now, "a second request was let through the limit of one");
        }

        seen.open.cancel();
        let resp = answer.await.unwrap().unwrap();
        assert_eq!(text(resp.into_body()).await, "opened");
        let resp = limited.ready().await.unwrap().call(second).await.unwrap();
        assert_eq!(text(resp.into_body()).await, "the new page");
    });
}

#[test]
fn tower_http_follow_redirect_follows_the_location() {
    let seen = Seen::default();
    let server = start_server(&seen);
    let req = get_req(&server, "/old");
    let addr = server.addr;
    run(move || async move {
        let client = ServiceBuilder::new()
            .layer(FollowRedirectLayer::new())
            .service(Client::new());
        let resp = client.oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let final_uri = resp.extensions().get::<RequestUri>().unwrap().0.clone();
        assert_eq!(final_uri.to_string(), format!("http://{addr}/new"));
        assert_eq!(text(resp.into_body()).await, "the new page");
        assert_eq!(seen.old.load(Ordering::SeqCst), 1);
        assert_eq!(seen.new.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn tower_http_decompression_undoes_the_servers_gzip() {
    let seen = Seen::default();
    let server = start_server(&seen);
    let plain = get_req(&server, "/big");
    let mut asking = get_req(&server, "/big");
    asking
        .headers_mut()
        .insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
    let decompressed = get_req(&server, "/big");
    run(move || async move {
        // Without the layer: the server compresses when asked, and the
        // body comes as it was sent.
        let resp = Client::new().oneshot(asking).await.unwrap();
        assert_eq!(resp.headers()[header::CONTENT_ENCODING], "gzip");
        let raw = resp.into_body().collect().await.unwrap().to_bytes();
        assert!(raw.len() < big_text().len() / 4, "{} bytes", raw.len());

        // Not asked, it does not.
        let resp = Client::new().oneshot(plain).await.unwrap();
        assert!(resp.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(text(resp.into_body()).await, big_text());

        // With the layer: it asks for gzip and undoes it.
        let client = ServiceBuilder::new()
            .layer(DecompressionLayer::new())
            .service(Client::new());
        let resp = client.oneshot(decompressed).await.unwrap();
        assert!(resp.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(text(resp.into_body()).await, big_text());
        let accepts = seen.big_accepts.lock().unwrap().clone();
        assert_eq!(accepts.len(), 3);
        assert!(
            accepts[2].contains("gzip"),
            "the layer did not ask for gzip: {accepts:?}"
        );
    });
}

#[test]
fn tower_http_set_request_header_reaches_the_server() {
    let seen = Seen::default();
    let server = start_server(&seen);
    let req = get_req(&server, "/ua");
    run(move || async move {
        let client = ServiceBuilder::new()
            .layer(SetRequestHeaderLayer::overriding(
                header::USER_AGENT,
                HeaderValue::from_static("spargio-test/1"),
            ))
            .service(Client::new());
        let resp = client.oneshot(req).await.unwrap();
        assert_eq!(text(resp.into_body()).await, "spargio-test/1");
    });
}
