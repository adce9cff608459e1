//! `spargio_http::Client` against raw test servers written here (plain
//! bytes over `spargio_rt::net` and the crate's `tls::TlsAcceptor`; no use
//! of the crate's HTTP server).

mod common;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::run;
use http::{Method, Request, StatusCode, Version};
use http_body::Frame;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use spargio_http::tls::{TlsAcceptor, TlsConnector};
use spargio_http::transport::{Transport, TransportRead, TransportWrite};
use spargio_http::{Body, BodyError, Client, ClientError};
use spargio_rt::net::{TcpListener, TcpStream};
use spargio_rt::{RuntimeHandle, ShardId};

// ---------------------------------------------------------------------------
// Test servers

/// One accepted connection, read and written as raw bytes.
struct Peer<T: Transport> {
    reader: T::Reader,
    writer: T::Writer,
    buf: BytesMut,
}

impl<T: Transport> Peer<T> {
    fn new(stream: T) -> Peer<T> {
        let (reader, writer) = stream.split();
        Peer {
            reader,
            writer,
            buf: BytesMut::new(),
        }
    }

    /// Reads more; `false` at end of stream or on an error.
    async fn fill(&mut self) -> bool {
        self.buf.reserve(8192);
        let buf = std::mem::take(&mut self.buf);
        let (res, buf) = self.reader.read_some(buf).await;
        self.buf = buf;
        matches!(res, Ok(n) if n > 0)
    }

    /// The next request head (up to and with the empty line), or `None` if
    /// the client closed the connection.
    async fn head(&mut self) -> Option<String> {
        loop {
            if let Some(pos) = find(&self.buf, b"\r\n\r\n") {
                let head = self.buf.split_to(pos + 4);
                return Some(String::from_utf8(head.to_vec()).unwrap());
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    /// Exactly `n` body bytes.
    async fn exact(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(self.fill().await, "the body ended early");
        }
        self.buf.split_to(n).to_vec()
    }

    /// One CRLF-terminated line, without the CRLF.
    async fn line(&mut self) -> String {
        loop {
            if let Some(pos) = find(&self.buf, b"\r\n") {
                let line = self.buf.split_to(pos + 2);
                return String::from_utf8(line[..pos].to_vec()).unwrap();
            }
            assert!(self.fill().await, "the body ended early");
        }
    }

    /// A chunked body: its data, its chunk sizes, and its trailer lines.
    async fn chunked(&mut self) -> (Vec<u8>, Vec<usize>, Vec<String>) {
        let mut data = Vec::new();
        let mut sizes = Vec::new();
        loop {
            let size = usize::from_str_radix(&self.line().await, 16).unwrap();
            if size == 0 {
                break;
            }
            sizes.push(size);
            data.extend(self.exact(size).await);
            assert_eq!(self.line().await, "");
        }
        let mut trailers = Vec::new();
        loop {
            let line = self.line().await;
            if line.is_empty() {
                return (data, sizes, trailers);
            }
            trailers.push(line);
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> bool {
        let (res, _) = self.writer.write_all(BytesMut::from(bytes)).await;
        res.is_ok()
    }

    async fn shutdown(&mut self) {
        let _ = self.writer.shutdown().await;
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A test server: its address, how many connections it accepted, and the
/// request heads it read (pushed by the handlers).
#[derive(Clone)]
struct Server {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    heads: Arc<Mutex<Vec<String>>>,
    /// Bumped by handlers once they have done what the test then waits
    /// for (closed an idle connection, sent stray bytes).
    marks: Arc<AtomicUsize>,
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }

    fn mark(&self) {
        self.marks.fetch_add(1, Ordering::SeqCst);
    }

    /// Waits (bounded) until handlers have marked `n` times.
    async fn marked(&self, n: usize) {
        eventually(|| self.marks.load(Ordering::SeqCst) >= n).await;
    }
}

/// Starts a server on shard 0 that runs `handler` for each accepted
/// connection (with the connection's index).
fn serve<F, Fut>(handler: F) -> Server
where
    F: Fn(Peer<TcpStream>, usize, Server) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + 'static,
{
    serve_raw(move |tcp, n, server| handler(Peer::new(tcp), n, server))
}

/// [`serve`] with the accepted TCP stream itself.
fn serve_raw<F, Fut>(handler: F) -> Server
where
    F: Fn(TcpStream, usize, Server) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let server = Server {
        addr: std_listener.local_addr().unwrap(),
        accepted: Arc::default(),
        heads: Arc::default(),
        marks: Arc::default(),
    };
    let s = server.clone();
    let _accept_loop = RuntimeHandle::current().spawn_local_on(ShardId(0), move || async move {
        let listener = TcpListener::from_std(std_listener);
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            // As real servers do: Nagle would hold a small answer back
            // behind the client's delayed ACK of the last one.
            let _ = tcp.set_nodelay(true);
            let n = s.accepted.fetch_add(1, Ordering::SeqCst);
            let _conn = spargio_rt::spawn_local(handler(tcp, n, s.clone()));
        }
    });
    server
}

/// A server that answers every request on every connection with
/// `response`, after reading the request head (and a Content-Length or
/// chunked body).
fn serve_fixed(response: &'static str) -> Server {
    serve(move |mut peer, _, server| async move {
        while let Some(head) = peer.head().await {
            read_body(&mut peer, &head).await;
            server.heads.lock().unwrap().push(head);
            if !peer.write(response.as_bytes()).await {
                return;
            }
        }
    })
}

/// Reads the request body `head` announces.
async fn read_body<T: Transport>(peer: &mut Peer<T>, head: &str) -> Vec<u8> {
    let lower = head.to_ascii_lowercase();
    if lower.contains("transfer-encoding: chunked") {
        return peer.chunked().await.0;
    }
    match lower
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .map(|n| n.trim().parse::<usize>().unwrap())
    {
        Some(n) => peer.exact(n).await,
        None => Vec::new(),
    }
}

/// A server that answers each connection's first request with `response`
/// as soon as its head is in, then reads whatever comes until the client
/// closes.
fn answer_at_once_and_read_on(response: &'static str) -> Server {
    serve(move |mut peer, _, _| async move {
        if peer.head().await.is_none() {
            return;
        }
        peer.write(response.as_bytes()).await;
        while peer.fill().await {}
    })
}

async fn body_bytes(body: Body) -> Result<Bytes, BodyError> {
    Ok(body.collect().await?.to_bytes())
}

/// Sends `body` with `method` to `url` and returns the response body.
async fn send_body(client: &Client, method: Method, url: String, body: &'static [u8]) -> Bytes {
    let req = Request::builder()
        .method(method)
        .uri(url)
        .body(Full::new(Bytes::from_static(body)))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    body_bytes(resp.into_body()).await.unwrap()
}

/// Waits until `cond` holds (polling every few ms), for up to 5 s.
async fn eventually(mut cond: impl FnMut() -> bool) {
    let by = std::time::Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(
            std::time::Instant::now() < by,
            "condition not reached in 20 s"
        );
        spargio_rt::time::sleep(Duration::from_millis(2)).await;
    }
}

// ---------------------------------------------------------------------------
// Responses

#[test]
fn client_get_content_length_body() {
    run(|| async {
        let server =
            serve_fixed("HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-test: yes\r\n\r\nhello");
        let client = Client::new();
        let resp = client.get(server.url("/path?q=1")).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.version(), Version::HTTP_11);
        assert_eq!(resp.headers()["x-test"], "yes");
        assert_eq!(resp.headers()["content-length"], "5");
        assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "hello");

        let head = &server.heads()[0];
        assert!(head.starts_with("GET /path?q=1 HTTP/1.1\r\n"), "{head}");
        assert!(
            head.contains(&format!("host: {}\r\n", server.addr)),
            "{head}"
        );
        assert!(!head.contains("content-length"), "{head}");
        assert!(!head.contains("transfer-encoding"), "{head}");
    });
}

#[test]
fn client_chunked_body_with_trailers() {
    run(|| async {
        let server = serve_fixed(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
             5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nx-sum: 42\r\n\r\n",
        );
        let resp = Client::new().get(server.url("/")).await.unwrap();
        assert!(resp.headers().get("content-length").is_none());
        let collected = resp.into_body().collect().await.unwrap();
        assert_eq!(collected.trailers().unwrap()["x-sum"], "42");
        assert_eq!(collected.to_bytes(), "hello world");
    });
}

#[test]
fn client_reads_a_body_under_other_transfer_codings_as_rfc_9112_frames_it() {
    run(|| async {
        // `gzip, chunked`: the chunking is undone, the gzip coding left to
        // the caller (the field says so); the connection is kept.
        let server = serve_fixed(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n\
             4\r\nzzzz\r\n0\r\n\r\n",
        );
        let client = Client::new();
        for _ in 0..2 {
            let resp = client.get(server.url("/")).await.unwrap();
            assert_eq!(resp.headers()["transfer-encoding"], "gzip, chunked");
            assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "zzzz");
        }
        assert_eq!(server.accepted(), 1);

        // Last coding not chunked: the body runs until the server closes.
        let server = serve(|mut peer, _, _| async move {
            peer.head().await.unwrap();
            peer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\nzz")
                .await;
            peer.write(b"zz").await;
            peer.shutdown().await;
        });
        for _ in 0..2 {
            let resp = client.get(server.url("/")).await.unwrap();
            assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "zzzz");
        }
        assert_eq!(server.accepted(), 2);
    });
}

#[test]
fn client_close_delimited_body_is_read_to_eof_and_not_reused() {
    run(|| async {
        let server = serve(|mut peer, _, _| async move {
            peer.head().await.unwrap();
            peer.write(b"HTTP/1.1 200 OK\r\n\r\nall of ").await;
            spargio_rt::time::sleep(Duration::from_millis(20)).await;
            peer.write(b"it").await;
            peer.shutdown().await;
        });
        let client = Client::new();
        for _ in 0..2 {
            let resp = client.get(server.url("/")).await.unwrap();
            assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "all of it");
        }
        assert_eq!(server.accepted(), 2);
    });
}

#[test]
fn client_head_has_no_body_and_keeps_the_connection() {
    run(|| async {
        let server = serve(|mut peer, _, _| async move {
            let head = peer.head().await.unwrap();
            assert!(head.starts_with("HEAD / HTTP/1.1\r\n"));
            peer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n")
                .await;
            peer.head().await.unwrap();
            peer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await;
            peer.head().await;
        });
        let client = Client::new();
        let req = Request::head(server.url("/")).body(Body::empty()).unwrap();
        let resp = client.request(req).await.unwrap();
        assert_eq!(resp.headers()["content-length"], "100");
        assert!(http_body::Body::is_end_stream(resp.body()));
        assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "");
        let resp = client.get(server.url("/")).await.unwrap();
        assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "ok");
        assert_eq!(server.accepted(), 1);
    });
}

#[test]
fn client_204_and_304_have_no_body() {
    run(|| async {
        let server = serve(|mut peer, _, _| async move {
            peer.head().await.unwrap();
            peer.write(b"HTTP/1.1 204 No Content\r\n\r\n").await;
            peer.head().await.unwrap();
            peer.write(b"HTTP/1.1 304 Not Modified\r\ncontent-length: 9\r\n\r\n")
                .await;
            peer.head().await;
        });
        let client = Client::new();
        let resp = client.get(server.url("/")).await.unwrap();
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "");
        let resp = client.get(server.url("/")).await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "");
        assert_eq!(server.accepted(), 1);
    });
}

#[test]
fn client_skips_100_continue_and_other_interim_responses() {
    run(|| async {
        let server = serve_fixed(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n\
             HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok",
        );
        let req = Request::put(server.url("/x"))
            .header("expect", "100-continue")
            .body(Full::new(Bytes::from_static(b"data")))
            .unwrap();
        let resp = Client::new().request(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        assert!(resp.headers().get("link").is_none());
        assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "ok");
    });
}

#[test]
fn client_gives_up_on_a_server_that_only_sends_interim_responses() {
    run(|| async {
        let server = serve(|mut peer, _, _| async move {
            if peer.head().await.is_some() {
                for _ in 0..40 {
                    if !peer.write(b"HTTP/1.1 103 Early Hints\r\n\r\n").await {
                        return;
                    }
                }
                // Then silence, with the connection open.
                spargio_rt::time::sleep(Duration::from_secs(30)).await;
            }
        });
        let err = Client::new().get(server.url("/")).await.unwrap_err();
        match err {
            ClientError::Parse { reason, .. } => {
                assert!(reason.contains("interim"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn client_101_is_returned_and_its_connection_not_reused() {
    run(|| async {
        let server = serve_fixed(
            "HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n",
        );
        let client = Client::new();
        for _ in 0..2 {
            let req = Request::get(server.url("/"))
                .header("connection", "upgrade")
                .header("upgrade", "echo")
                .body(Body::empty())
                .unwrap();
            let resp = client.request(req).await.unwrap();
            assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
            assert_eq!(resp.headers()["upgrade"], "echo");
        }
        assert_eq!(server.accepted(), 2);
    });
}

#[test]
fn client_refuses_a_101_to_a_request_that_asked_for_no_upgrade() {
    run(|| async {
        let server = serve_fixed(
            "HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\nnot http",
        );
        let err = Client::new().get(server.url("/")).await.unwrap_err();
        assert!(
            matches!(err, ClientError::Parse { .. }),
            "an unasked-for 101 was taken as an answer: {err:?}"
        );
    });
}

#[test]
fn client_refuses_a_101_to_an_upgrade_header_not_named_in_connection() {
    run(|| async {
        let server = serve_fixed(
            "HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\nnot http",
        );
        // Without `Connection: upgrade` the `Upgrade` field asks for
        // nothing (RFC 9110 §7.8): a server must ignore it.
        let req = Request::get(server.url("/"))
            .header("upgrade", "echo")
            .body(Body::empty())
            .unwrap();
        let err = Client::new().request(req).await.unwrap_err();
        assert!(
            matches!(err, ClientError::Parse { .. }),
            "an unasked-for 101 was taken as an answer: {err:?}"
        );
    });
}

#[test]
fn client_http10_response_closes_unless_keep_alive() {
    run(|| async {
        let plain = serve_fixed("HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\na");
        let kept =
            serve_fixed("HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 1\r\n\r\na");
        let client = Client::new();
        for server in [&plain, &kept] {
            for _ in 0..2 {
                let resp = client.get(server.url("/")).await.unwrap();
                assert_eq!(resp.version(), Version::HTTP_10);
                assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "a");
            }
        }
        assert_eq!(plain.accepted(), 2);
        assert_eq!(kept.accepted(), 1);
    });
}

// ---------------------------------------------------------------------------
// Keep-alive and the pool

#[test]
fn client_reuses_a_kept_alive_connection() {
    run(|| async {
        let server = serve_fixed("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
        let client = Client::new();
        for _ in 0..3 {
            let resp = client.get(server.url("/")).await.unwrap();
            assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "ok");
        }
        // A clone shares the pool.
        let resp = client.clone().get(server.url("/")).await.unwrap();
        assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "ok");
        assert_eq!(server.accepted(), 1);
        assert_eq!(server.heads().len(), 4);
    });
}

#[test]
fn client_reuses_when_the_dropped_body_was_already_received() {
    run(|| async {
        let server = serve_fixed("HTTP/1.1 404 Not Found\r\ncontent-length: 9\r\n\r\nnot found");
        let client = Client::new();
        let resp = client.get(server.url("/")).await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        drop(resp);
        // The task notices the dropped body on its own time.
        spargio_rt::time::sleep(Duration::from_millis(20)).await;
        let resp = client.get(server.url("/")).await.unwrap();
        assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "not found");
        assert_eq!(server.accepted(), 1);
    });
}

#[test]
fn client_does_not_reuse_after_connection_close() {
    run(|| async {
        let server =
            serve_fixed("HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok");
        let client = Client::new();
        for _ in 0..2 {
            let resp = client.get(server.url("/")).await.unwrap();
            assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "ok");
        }
        assert_eq!(server.accepted(), 2);

        // The request asking for it works the same.
        let server = serve_fixed("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
        for _ in 0..2 {
            let req = Request::get(server.url("/"))
                .header("connection", "close")
                .body(Body::empty())
                .unwrap();
            let resp = client.request(req).await.unwrap();
            assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "ok");
        }
        assert_eq!(server.accepted(), 2);
    });
}

#[test]
fn client_pool_can_be_turned_off() {
    run(|| async {
        let server = serve_fixed("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
        let client = Client::builder().pool_max_idle_per_host(0).build();
        for _ in 0..2 {
            let resp = client.get(server.url("/")).await.unwrap();
            assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "ok");
        }
        assert_eq!(server.accepted(), 2);
    });
}

#[test]
fn client_idle_connections_expire() {
    run(|| async {
        let server = serve_fixed("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
        let client = Client::builder()
            .pool_idle_timeout(Duration::from_millis(30))
            .build();
        let resp = client.get(server.url("/")).await.unwrap();
        assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "ok");
        spargio_rt::time::sleep(Duration::from_millis(60)).await;
        let resp = client.get(server.url("/")).await.unwrap();
        assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "ok");
        assert_eq!(server.accepted(), 2);
    });
}

/// A server whose first connection answers one request (keep-alive) and
/// then closes; later connections answer every request.
fn serve_closing_first() -> Server {
    serve(|mut peer, n, server| async move {
        while let Some(head) = peer.head().await {
            read_body(&mut peer, &head).await;
            server.heads.lock().unwrap().push(head);
            peer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await;
            if n == 0 {
                peer.shutdown().await;
                server.mark();
                return;
            }
        }
    })
}

/// A server whose first connection answers one request (keep-alive), then
/// reads the next request's head, writes `last` (nothing, or a closing
/// answer) and closes, as a server whose keep-alive timeout fired just as
/// the request arrived; later connections answer every request.
fn serve_ending_the_first_connection_at_its_second_request(last: &'static [u8]) -> Server {
    serve(move |mut peer, n, server| async move {
        let mut answered = 0;
        while let Some(head) = peer.head().await {
            read_body(&mut peer, &head).await;
            server.heads.lock().unwrap().push(head);
            if n == 0 && answered == 1 {
                if !last.is_empty() {
                    peer.write(last).await;
                }
                peer.shutdown().await;
                return;
            }
            peer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await;
            answered += 1;
        }
    })
}

/// [`serve_ending_the_first_connection_at_its_second_request`] without an
/// answer.
fn serve_dropping_the_second_request_on_the_first_connection() -> Server {
    serve_ending_the_first_connection_at_its_second_request(b"")
}

/// A client whose GET `/first` to `server` was answered `ok`, leaving its
/// connection in the pool.
async fn client_with_a_pooled_connection(server: &Server) -> Client {
    let client = Client::new();
    let resp = client.get(server.url("/first")).await.unwrap();
    assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "ok");
    client
}

#[test]
fn client_retries_a_stale_pooled_connection_once() {
    run(|| async {
        let server = serve_dropping_the_second_request_on_the_first_connection();
        let client = client_with_a_pooled_connection(&server).await;
        // The pooled connection looks alive; the server drops the request
        // sent on it unanswered, and the client sends it again on a new
        // connection.
        let resp = client.get(server.url("/second")).await.unwrap();
        assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "ok");
        assert_eq!(server.accepted(), 2);
        let heads = server.heads();
        assert_eq!(heads.len(), 3, "{heads:?}");
        assert!(heads[1].starts_with("GET /second "), "{heads:?}");
        assert!(heads[2].starts_with("GET /second "), "{heads:?}");
    });
}

/// [`serve_ending_the_first_connection_at_its_second_request`] with a
/// closing `408` as the answer.
fn serve_timing_out_the_second_request_on_the_first_connection() -> Server {
    serve_ending_the_first_connection_at_its_second_request(
        b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
    )
}

#[test]
fn client_retries_a_get_a_reused_connection_answered_with_a_closing_408() {
    run(|| async {
        let server = serve_timing_out_the_second_request_on_the_first_connection();
        let client = client_with_a_pooled_connection(&server).await;
        let resp = client.get(server.url("/second")).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "ok");
        assert_eq!(server.accepted(), 2);
        assert_eq!(server.heads().len(), 3);
        // The retry's connection went back to the pool and serves on.
        let resp = client.get(server.url("/third")).await.unwrap();
        assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "ok");
        assert_eq!(server.accepted(), 2);
    });
}

#[test]
fn client_hands_over_a_408_to_a_post_and_on_a_new_connection() {
    run(|| async {
        let server = serve_timing_out_the_second_request_on_the_first_connection();
        let client = client_with_a_pooled_connection(&server).await;
        let req = Request::post(server.url("/second"))
            .body(Empty::<Bytes>::new())
            .unwrap();
        let resp = client.request(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(server.accepted(), 1);
    });
    // On a fresh connection a 408 is the server's answer, not a race.
    run(|| async {
        let server = serve_fixed(
            "HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
        );
        let resp = Client::new().get(server.url("/")).await.unwrap();
        assert_eq!(resp.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(server.accepted(), 1);
    });
}

#[test]
fn client_does_not_retry_a_bodiless_post_a_reused_connection_dropped() {
    run(|| async {
        let server = serve_dropping_the_second_request_on_the_first_connection();
        let client = client_with_a_pooled_connection(&server).await;
        // A POST may have been acted on: not sent again, though it has no
        // body and went out on a reused connection.
        let req = Request::post(server.url("/second"))
            .body(Empty::<Bytes>::new())
            .unwrap();
        let err = client.request(req).await.unwrap_err();
        assert!(
            matches!(err, ClientError::Closed { .. } | ClientError::Io { .. }),
            "{err:?}"
        );
        assert_eq!(server.accepted(), 1);
        assert_eq!(server.heads().len(), 2);
    });
}

#[test]
fn client_sends_a_post_on_a_new_connection_after_the_server_closed_the_idle_one() {
    run(|| async {
        let server = serve_closing_first();
        let client = Client::new();
        let resp = client.get(server.url("/")).await.unwrap();
        assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "ok");
        // The server's close arrives while the connection is idle: the pool
        // sees it and does not hand the connection out, so even a POST,
        // which is never retried, goes out on a live one.
        server.marked(1).await;
        let answer = send_body(&client, Method::POST, server.url("/"), b"once").await;
        assert_eq!(answer, "ok");
        assert_eq!(server.accepted(), 2);
    });
}

#[test]
fn client_skips_every_idle_connection_the_server_closed() {
    run(|| async {
        // Each connection answers one request slowly, then closes: two
        // requests at once leave two connections in the pool, and both
        // die while idle (a server's keep-alive timeout closes them all).
        let server = serve(|mut peer, _, server| async move {
            if let Some(head) = peer.head().await {
                server.heads.lock().unwrap().push(head);
                spargio_rt::time::sleep(Duration::from_millis(30)).await;
                peer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await;
                spargio_rt::time::sleep(Duration::from_millis(30)).await;
                peer.shutdown().await;
                server.mark();
            }
        });
        let client = Client::new();
        let (a, b) =
            futures_util::future::join(client.get(server.url("/a")), client.get(server.url("/b")))
                .await;
        for resp in [a.unwrap(), b.unwrap()] {
            assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "ok");
        }
        assert_eq!(server.accepted(), 2);
        server.marked(2).await;
        let answer = send_body(&client, Method::PUT, server.url("/c"), b"body").await;
        assert_eq!(answer, "ok");
        assert_eq!(server.accepted(), 3);
    });
}

#[test]
fn client_does_not_use_an_idle_connection_with_unasked_for_bytes() {
    run(|| async {
        // After its answer the server sends a second, unasked-for response
        // while the connection is idle; it must not be read as the answer
        // to the next request.
        let server = serve(|mut peer, n, server| async move {
            while let Some(head) = peer.head().await {
                server.heads.lock().unwrap().push(head);
                let answer = format!("HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n{n}");
                peer.write(answer.as_bytes()).await;
                spargio_rt::time::sleep(Duration::from_millis(20)).await;
                peer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nstale")
                    .await;
                server.mark();
            }
        });
        let client = Client::new();
        let resp = client.get(server.url("/")).await.unwrap();
        assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "0");
        server.marked(1).await;
        let answer = send_body(&client, Method::POST, server.url("/"), b"x").await;
        assert_eq!(answer, "1");
        assert_eq!(server.accepted(), 2);
    });
}

#[test]
fn client_does_not_retry_a_post_the_server_dropped() {
    run(|| async {
        // The server reads the POST whole and closes without an answer:
        // the request may have been acted on, so it is not sent again.
        let server = serve(|mut peer, _, server| async move {
            if let Some(head) = peer.head().await {
                read_body(&mut peer, &head).await;
                server.heads.lock().unwrap().push(head);
                peer.shutdown().await;
            }
        });
        let client = Client::new();
        let req = Request::post(server.url("/"))
            .body(Full::new(Bytes::from_static(b"once")))
            .unwrap();
        let err = client.request(req).await.unwrap_err();
        assert!(
            matches!(err, ClientError::Closed { .. } | ClientError::Io { .. }),
            "{err:?}"
        );
        assert_eq!(err.host(), Some(server.addr.to_string().as_str()));
        assert_eq!(server.accepted(), 1);
        assert_eq!(server.heads().len(), 1);
    });
}

// ---------------------------------------------------------------------------
// Request bodies

#[test]
fn client_streams_an_unknown_length_body_chunked() {
    run(|| async {
        let server = serve(|mut peer, _, server| async move {
            let head = peer.head().await.unwrap();
            let (data, sizes, trailers) = peer.chunked().await;
            server.heads.lock().unwrap().push(head);
            assert_eq!(data, b"hello, world");
            assert_eq!(sizes, [5, 7]);
            assert_eq!(trailers, ["x-checksum: 12"]);
            let resp = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", data.len());
            peer.write(resp.as_bytes()).await;
            peer.write(&data).await;
            peer.head().await;
        });
        let (tx, rx) = async_channel_like();
        let body = StreamBody::new(rx);
        let req = Request::post(server.url("/upload")).body(body).unwrap();
        let client = Client::new();
        let pending = spargio_rt::spawn(client.request(req));
        tx.send(Frame::data(Bytes::from_static(b"hello")));
        spargio_rt::time::sleep(Duration::from_millis(20)).await;
        tx.send(Frame::data(Bytes::from_static(b", world")));
        let mut trailers = http::HeaderMap::new();
        trailers.insert("x-checksum", "12".parse().unwrap());
        tx.send(Frame::trailers(trailers));
        drop(tx);
        let resp = pending.await.unwrap().unwrap();
        assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "hello, world");
        let head = &server.heads()[0];
        assert!(head.starts_with("POST /upload HTTP/1.1\r\n"), "{head}");
        assert!(head.contains("transfer-encoding: chunked\r\n"), "{head}");
        assert!(!head.contains("content-length"), "{head}");
    });
}

#[test]
fn client_streams_a_body_with_the_content_length_the_caller_set() {
    run(|| async {
        // A stream with no exact size hint, but the caller knows its length
        // and says so: it goes out with that Content-Length, not chunked
        // (servers such as S3 refuse chunked uploads).
        let server = serve(|mut peer, _, server| async move {
            let head = peer.head().await.unwrap();
            let data = read_body(&mut peer, &head).await;
            server.heads.lock().unwrap().push(head);
            assert_eq!(data, b"hello, world");
            peer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await;
            peer.head().await;
        });
        let (tx, rx) = async_channel_like();
        let req = Request::put(server.url("/object"))
            .header("content-length", "12")
            .body(StreamBody::new(rx))
            .unwrap();
        let pending = spargio_rt::spawn(Client::new().request(req));
        tx.send(Frame::data(Bytes::from_static(b"hello")));
        tx.send(Frame::data(Bytes::from_static(b", world")));
        drop(tx);
        let resp = pending.await.unwrap().unwrap();
        assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "ok");
        let head = &server.heads()[0];
        assert!(head.contains("content-length: 12\r\n"), "{head}");
        assert!(!head.contains("transfer-encoding"), "{head}");
    });
}

#[test]
fn client_request_body_is_over_when_its_content_length_is_sent() {
    run(|| async {
        // The stream gives all 5 bytes the caller declared but does not
        // end (its sender is kept): the request is whole on the wire, so
        // the connection goes back to the pool for the next request.
        let server = serve_fixed("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
        let (tx, rx) = async_channel_like();
        let req = Request::put(server.url("/object"))
            .header("content-length", "5")
            .body(StreamBody::new(rx))
            .unwrap();
        let client = Client::new();
        tx.send(Frame::data(Bytes::from_static(b"hello")));
        let resp = client.request(req).await.unwrap();
        assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "ok");
        let resp = client.get(server.url("/next")).await.unwrap();
        assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "ok");
        assert_eq!(server.accepted(), 1);
        drop(tx);
    });
}

#[test]
fn client_request_body_of_content_length_zero_is_not_waited_for() {
    run(|| async {
        // The caller says the stream is empty, and the stream never ends:
        // the request is whole once its head is out.
        let server = serve_fixed("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
        let (tx, rx) = async_channel_like();
        let req = Request::post(server.url("/empty"))
            .header("content-length", "0")
            .body(StreamBody::new(rx))
            .unwrap();
        let client = Client::new();
        let resp = client.request(req).await.unwrap();
        assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "ok");
        let resp = client.get(server.url("/next")).await.unwrap();
        assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "ok");
        assert_eq!(server.accepted(), 1);
        assert!(server.heads()[0].contains("content-length: 0\r\n"));
        drop(tx);
    });
}

#[test]
fn client_sends_a_known_length_body_with_content_length() {
    run(|| async {
        let server = serve_fixed("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
        let client = Client::new();
        let req = Request::post(server.url("/"))
            .header("content-length", "999")
            .body(Full::new(Bytes::from_static(b"payload")))
            .unwrap();
        let resp = client.request(req).await.unwrap();
        assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "");
        // An empty POST says content-length: 0; an empty GET says nothing.
        let req = Request::post(server.url("/")).body(Body::empty()).unwrap();
        client.request(req).await.unwrap();
        let heads = server.heads();
        assert!(heads[0].contains("content-length: 7\r\n"), "{}", heads[0]);
        assert!(!heads[0].contains("999"), "{}", heads[0]);
        assert!(heads[1].contains("content-length: 0\r\n"), "{}", heads[1]);
        assert_eq!(server.accepted(), 1);
    });
}

#[test]
fn client_reports_a_failing_request_body() {
    run(|| async {
        let server = serve(|mut peer, _, _| async move {
            peer.head().await;
            // Read until the client gives up.
            while peer.fill().await {}
        });
        let (tx, rx) = async_channel_like();
        let req = Request::post(server.url("/"))
            .body(StreamBody::new(rx))
            .unwrap();
        let pending = spargio_rt::spawn(Client::new().request(req));
        tx.send(Frame::data(Bytes::from_static(b"partial")));
        tx.fail("disk on fire");
        let err = pending.await.unwrap().unwrap_err();
        match &err {
            ClientError::Body { source, .. } => assert_eq!(source.to_string(), "disk on fire"),
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("request body"), "{err}");
    });
}

#[test]
fn client_request_body_failing_after_the_response_head_keeps_the_response() {
    run(|| async {
        // The server answers early (before the body ends); the body fails
        // after that. The answer stands, and the connection is not reused.
        let server = answer_at_once_and_read_on(
            "HTTP/1.1 413 Payload Too Large\r\ncontent-length: 4\r\n\r\nbig!",
        );
        let (tx, rx) = async_channel_like();
        let req = Request::post(server.url("/"))
            .body(StreamBody::new(rx))
            .unwrap();
        let client = Client::new();
        tx.send(Frame::data(Bytes::from_static(b"partial")));
        let resp = client.request(req).await.unwrap();
        assert_eq!(resp.status(), 413);
        tx.fail("disk on fire");
        assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "big!");
        let resp = client.get(server.url("/")).await.unwrap();
        assert_eq!(resp.status(), 413);
        assert_eq!(server.accepted(), 2);
    });
}

#[test]
fn client_keeps_sending_the_body_after_an_early_success_on_a_kept_connection() {
    run(|| async {
        // The server takes the request (202) before its body is in, keeps
        // the connection, and then reads the body: all of it must come,
        // and the connection is reused after it.
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let seen = bodies.clone();
        let server = serve(move |mut peer, _, _| {
            let seen = seen.clone();
            async move {
                while let Some(head) = peer.head().await {
                    if head.starts_with("POST") {
                        peer.write(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n")
                            .await;
                    }
                    let body = read_body(&mut peer, &head).await;
                    seen.lock().unwrap().push(body);
                    if head.starts_with("GET") {
                        peer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                            .await;
                    }
                }
            }
        });
        let (tx, rx) = async_channel_like();
        let req = Request::post(server.url("/upload"))
            .header("content-length", "8")
            .body(StreamBody::new(rx))
            .unwrap();
        let client = Client::new();
        tx.send(Frame::data(Bytes::from_static(b"abcd")));
        let resp = client.request(req).await.unwrap();
        assert_eq!(resp.status(), 202);
        tx.send(Frame::data(Bytes::from_static(b"efgh")));
        drop(tx);
        eventually(|| !bodies.lock().unwrap().is_empty()).await;
        assert_eq!(bodies.lock().unwrap()[0], b"abcdefgh");
        let resp = client.get(server.url("/")).await.unwrap();
        assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "ok");
        assert_eq!(server.accepted(), 1, "the connection was not reused");
    });
}

#[test]
fn client_stops_sending_the_body_after_an_early_error_response() {
    run(|| async {
        // A 413 before the body is in: the rest is not sent, and the
        // connection is not reused (the server may have read none of it).
        let server = answer_at_once_and_read_on(
            "HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\n\r\n",
        );
        let (tx, rx) = async_channel_like();
        let req = Request::post(server.url("/"))
            .header("content-length", "8")
            .body(StreamBody::new(rx))
            .unwrap();
        let client = Client::new();
        tx.send(Frame::data(Bytes::from_static(b"abcd")));
        let resp = client.request(req).await.unwrap();
        assert_eq!(resp.status(), 413);
        let resp = client.get(server.url("/")).await.unwrap();
        assert_eq!(resp.status(), 413);
        assert_eq!(server.accepted(), 2);
        drop(tx);
    });
}

#[test]
fn client_large_bodies_both_ways() {
    run(|| async {
        const N: usize = 1 << 20;
        let server = serve(|mut peer, _, _| async move {
            while let Some(head) = peer.head().await {
                let body = read_body(&mut peer, &head).await;
                let expected: Vec<u8> = (0..N).map(|i| (i % 251) as u8).collect();
                assert!(body == expected, "request body differs");
                // Answer with the same bytes, chunked, in 64 KiB chunks.
                peer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                    .await;
                for chunk in body.chunks(64 * 1024) {
                    let mut out = format!("{:x}\r\n", chunk.len()).into_bytes();
                    out.extend_from_slice(chunk);
                    out.extend_from_slice(b"\r\n");
                    peer.write(&out).await;
                }
                peer.write(b"0\r\n\r\n").await;
            }
        });
        let client = Client::new();
        let data: Vec<u8> = (0..N).map(|i| (i % 251) as u8).collect();
        for _ in 0..2 {
            let req = Request::put(server.url("/big"))
                .body(Full::new(Bytes::from(data.clone())))
                .unwrap();
            let resp = client.request(req).await.unwrap();
            let got = body_bytes(resp.into_body()).await.unwrap();
            assert!(got == data, "response body differs");
        }
        assert_eq!(server.accepted(), 1);
    });
}

#[test]
fn client_streams_both_ways_at_once() {
    run(|| async {
        // An echo server: answers at once, then sends back each chunk of
        // the request body as it arrives.
        let server = serve(|mut peer, _, _| async move {
            let head = peer.head().await.unwrap();
            assert!(head.contains("transfer-encoding: chunked"));
            peer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                .await;
            loop {
                let size = usize::from_str_radix(&peer.line().await, 16).unwrap();
                let data = peer.exact(size).await;
                assert_eq!(peer.line().await, "");
                let mut out = format!("{size:x}\r\n").into_bytes();
                out.extend_from_slice(&data);
                out.extend_from_slice(b"\r\n");
                peer.write(&out).await;
                if size == 0 {
                    return;
                }
            }
        });
        let (tx, rx) = async_channel_like();
        let req = Request::post(server.url("/echo"))
            .body(StreamBody::new(rx))
            .unwrap();
        let client = Client::new();
        tx.send(Frame::data(Bytes::from_static(b"ping")));
        // The response arrives while the request body is still open.
        let resp = client.request(req).await.unwrap();
        let mut body = resp.into_body();
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(first, "ping");
        tx.send(Frame::data(Bytes::from_static(b"pong")));
        let second = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(second, "pong");
        drop(tx);
        assert!(body.frame().await.is_none());
    });
}

#[test]
fn client_does_not_reuse_a_connection_with_extra_bytes() {
    run(|| async {
        let server = serve_fixed("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokJUNK");
        let client = Client::new();
        for _ in 0..2 {
            let resp = client.get(server.url("/")).await.unwrap();
            assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "ok");
        }
        assert_eq!(server.accepted(), 2);
    });
}

// ---------------------------------------------------------------------------
// Failures

#[test]
fn client_closes_the_connection_when_a_body_is_dropped_while_the_server_is_silent() {
    run(|| async {
        // The server sends part of a long body and then nothing more,
        // keeping the connection open. Once the caller drops the body the
        // client closes the connection; before, its task waited on the
        // socket for bytes nobody would read, for as long as the server
        // stayed silent.
        let closed = Arc::new(AtomicUsize::new(0));
        let seen = closed.clone();
        let server = serve(move |mut peer, _, _| {
            let seen = seen.clone();
            async move {
                peer.head().await.unwrap();
                peer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\nfirst")
                    .await;
                // Wait for the client to close its side.
                while peer.fill().await {}
                seen.fetch_add(1, Ordering::SeqCst);
            }
        });
        let client = Client::new();
        let resp = client.get(server.url("/")).await.unwrap();
        let mut body = resp.into_body();
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "first");
        // The caller asks for more, gives up waiting, and drops the body.
        let more = spargio_rt::time::timeout(Duration::from_millis(50), body.frame()).await;
        assert!(more.is_err(), "the silent server sent more: {more:?}");
        drop(body);
        eventually(|| closed.load(Ordering::SeqCst) == 1).await;
    });
}

#[test]
fn client_body_cut_mid_way_is_an_error_not_an_end() {
    run(|| async {
        let length = serve(|mut peer, _, _| async move {
            peer.head().await.unwrap();
            peer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial")
                .await;
            peer.shutdown().await;
        });
        let chunked = serve(|mut peer, _, _| async move {
            peer.head().await.unwrap();
            peer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n7\r\npartial\r\n")
                .await;
            peer.shutdown().await;
        });
        let client = Client::new();
        for server in [length, chunked] {
            let resp = client.get(server.url("/")).await.unwrap();
            match body_bytes(resp.into_body()).await {
                Err(BodyError::Io(e)) => {
                    assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof)
                }
                other => panic!("{other:?}"),
            }
        }
    });
}

#[test]
fn client_malformed_chunk_is_a_body_error() {
    run(|| async {
        let server = serve_fixed("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n");
        let resp = Client::new().get(server.url("/")).await.unwrap();
        assert!(matches!(
            body_bytes(resp.into_body()).await,
            Err(BodyError::Malformed(_))
        ));
    });
}

#[test]
fn client_invalid_response_head_is_a_parse_error() {
    run(|| async {
        let server =
            serve_fixed("HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n");
        let err = Client::new().get(server.url("/")).await.unwrap_err();
        assert!(matches!(err, ClientError::Parse { .. }), "{err:?}");
        assert!(
            err.to_string()
                .starts_with("invalid response from 127.0.0.1:"),
            "{err}"
        );
    });
}

#[test]
fn client_closed_before_the_head() {
    run(|| async {
        let server = serve(|mut peer, _, _| async move {
            peer.head().await.unwrap();
            peer.write(b"HTTP/1.1 200 O").await;
            peer.shutdown().await;
        });
        let err = Client::new().get(server.url("/")).await.unwrap_err();
        assert!(matches!(err, ClientError::Closed { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!("{} closed the connection before responding", server.addr)
        );
    });
}

#[test]
fn client_connect_refused() {
    run(|| async {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let err = Client::new()
            .get(format!("http://{addr}/"))
            .await
            .unwrap_err();
        match &err {
            ClientError::Connect { host, source } => {
                assert_eq!(host, &addr.to_string());
                assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused);
            }
            other => panic!("{other:?}"),
        }
        assert!(err.is_connect());
        assert!(std::error::Error::source(&err).is_some());
    });
}

#[test]
fn client_request_timeout() {
    run(|| async {
        let server = serve(|mut peer, _, _| async move {
            peer.head().await;
            // Never answer; wait for the client to go away.
            while peer.fill().await {}
        });
        let client = Client::builder()
            .request_timeout(Duration::from_millis(100))
            .build();
        let started = std::time::Instant::now();
        let err = client.get(server.url("/")).await.unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(100));
        match err {
            ClientError::Timeout {
                after, connecting, ..
            } => {
                assert_eq!(after, Duration::from_millis(100));
                assert!(!connecting);
            }
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn client_response_timeout_fails_a_silent_server_and_drops_the_connection() {
    run(|| async {
        // On its first connection the server reads the whole request and
        // then never answers (until the client closes); on the next one it
        // answers.
        let closed = Arc::new(AtomicUsize::new(0));
        let seen = closed.clone();
        let server = serve(move |mut peer, n, server| {
            let seen = seen.clone();
            async move {
                while let Some(head) = peer.head().await {
                    let body = read_body(&mut peer, &head).await;
                    server.heads.lock().unwrap().push(head);
                    if n == 0 {
                        if body == b"payload" {
                            server.mark();
                        }
                        while peer.fill().await {}
                        seen.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                    peer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                        .await;
                }
            }
        });
        let client = Client::builder()
            .response_timeout(Duration::from_millis(200))
            .build();
        let req = Request::post(server.url("/"))
            .body(Full::new(Bytes::from_static(b"payload")))
            .unwrap();
        let err = spargio_rt::time::timeout(Duration::from_secs(20), client.request(req))
            .await
            .expect("the response timeout did not end the request")
            .unwrap_err();
        match &err {
            ClientError::ResponseTimeout { host, after } => {
                assert_eq!(host, &server.addr.to_string());
                assert_eq!(*after, Duration::from_millis(200));
            }
            other => panic!("{other:?}"),
        }
        assert!(err.is_timeout());
        assert!(!err.is_connect());
        assert_eq!(
            err.to_string(),
            format!(
                "no response from {} within 200ms after the request was sent (response timeout)",
                server.addr
            )
        );
        // The server had the whole request.
        server.marked(1).await;
        // The connection is closed, not pooled: the server sees it end,
        // and the next request opens a new one and gets its answer.
        eventually(|| closed.load(Ordering::SeqCst) == 1).await;
        let resp = client.get(server.url("/")).await.unwrap();
        assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "ok");
        assert_eq!(server.accepted(), 2);
    });
}

#[test]
fn client_response_timeout_starts_only_once_the_request_is_written() {
    run(|| async {
        // The upload takes longer than the response timeout (5 pieces,
        // each sent 500 ms after the server has the one before: at least
        // 2.5 s against 2 s), and the server answers once it has the whole
        // body. A clock started before the last byte went out would run
        // out during the upload. With `Expect: 100-continue` the server
        // sends `100 Continue` first; the client does not wait for it.
        const PIECES: usize = 5;
        const PACE: Duration = Duration::from_millis(500);
        let server = serve(|mut peer, _, server| async move {
            let Some(head) = peer.head().await else {
                return;
            };
            server.heads.lock().unwrap().push(head);
            peer.write(b"HTTP/1.1 100 Continue\r\n\r\n").await;
            for _ in 0..PIECES {
                if peer.exact(5).await != b"piece" {
                    return;
                }
                server.mark();
            }
            peer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await;
            peer.head().await;
        });
        let client = Client::builder()
            .response_timeout(Duration::from_secs(2))
            .build();
        let (tx, rx) = async_channel_like();
        let req = Request::put(server.url("/upload"))
            .header("expect", "100-continue")
            .header("content-length", (5 * PIECES).to_string())
            .body(StreamBody::new(rx))
            .unwrap();
        let uploader = {
            let server = server.clone();
            spargio_rt::spawn(async move {
                for sent in 0..PIECES {
                    spargio_rt::time::sleep(PACE).await;
                    tx.send(Frame::data(Bytes::from_static(b"piece")));
                    server.marked(sent + 1).await;
                }
            })
        };
        let resp = client
            .request(req)
            .await
            .unwrap_or_else(|e| panic!("a slow upload must not hit the response timeout: {e}"));
        uploader.await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "ok");
        let head = &server.heads()[0];
        assert!(head.contains("expect: 100-continue\r\n"), "{head}");
    });
}

#[test]
fn client_response_timeout_is_not_restarted_by_interim_responses() {
    run(|| async {
        // Once it has the request the server sends `103 Early Hints` every
        // 20 ms and never a final answer: the response timeout bounds the
        // wait for the final head, interim responses or not (the interim
        // limit is set far out of reach). A client that restarted its
        // clock at each hint would wait for as long as they come, so an
        // attempt counts only if no gap between hints (a stalled machine)
        // reached the limit; such an attempt is run again.
        const LIMIT: Duration = Duration::from_secs(1);
        let sent: Arc<std::sync::Mutex<Vec<std::time::Instant>>> = Arc::default();
        let record = sent.clone();
        let server = serve(move |mut peer, _, _| {
            let record = record.clone();
            async move {
                if peer.head().await.is_none() {
                    return;
                }
                loop {
                    spargio_rt::time::sleep(Duration::from_millis(20)).await;
                    let hint =
                        b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\n";
                    if !peer.write(hint).await {
                        return;
                    }
                    record.lock().unwrap().push(std::time::Instant::now());
                }
            }
        });
        let client = Client::builder()
            .response_timeout(LIMIT)
            .max_interim_responses(1_000_000)
            .build();
        for _attempt in 0..5 {
            sent.lock().unwrap().clear();
            let err =
                spargio_rt::time::timeout(Duration::from_secs(20), client.get(server.url("/")))
                    .await
                    .expect("the response timeout did not end the request")
                    .unwrap_err();
            let failed_at = std::time::Instant::now();
            match err {
                ClientError::ResponseTimeout { after, .. } => assert_eq!(after, LIMIT),
                other => panic!("{other:?}"),
            }
            let times = sent.lock().unwrap().clone();
            let longest_gap = times
                .windows(2)
                .map(|w| w[1] - w[0])
                .chain(
                    times
                        .last()
                        .map(|&t| failed_at.saturating_duration_since(t)),
                )
                .max();
            if times.len() >= 2 && longest_gap.is_some_and(|g| g < LIMIT) {
                return;
            }
        }
        panic!("every attempt had a gap between hints as long as the limit: inconclusive");
    });
}

#[test]
fn client_body_read_timeout_fails_a_stalled_body_and_drops_the_connection() {
    run(|| async {
        let server = serve(|mut peer, n, _| async move {
            while peer.head().await.is_some() {
                if n == 0 {
                    // The head and 3 of 10 body bytes, then nothing more.
                    peer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
                        .await;
                } else {
                    peer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                        .await;
                }
            }
        });
        let client = Client::builder()
            .body_read_timeout(Duration::from_millis(100))
            .build();
        let resp = client.get(server.url("/")).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        match body_bytes(resp.into_body()).await {
            Err(BodyError::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}"),
            other => panic!("a stalled body must fail, got {other:?}"),
        }
        // The stalled connection is not reused: the next request opens a
        // new one and gets its whole answer.
        let resp = client.get(server.url("/")).await.unwrap();
        assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "ok");
        assert_eq!(server.accepted(), 2);
    });
}

#[test]
fn client_body_read_timeout_runs_only_while_the_caller_waits_for_the_body() {
    run(|| async {
        // The caller asks for the body 600 ms after the head, longer than
        // the 500 ms limit, and the body is sent only then: a clock started
        // when the head was handed over would have run out already. The
        // clock starts when the caller asks.
        let asked = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = asked.clone();
        let server = serve(move |mut peer, _, _| {
            let seen = seen.clone();
            async move {
                peer.head().await;
                peer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n")
                    .await;
                while !seen.load(Ordering::SeqCst) {
                    spargio_rt::time::sleep(Duration::from_millis(1)).await;
                }
                peer.write(b"body").await;
                peer.head().await;
            }
        });
        let client = Client::builder()
            .body_read_timeout(Duration::from_millis(500))
            .build();
        let resp = client.get(server.url("/")).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        // The caller is busy with something else before it reads the body.
        spargio_rt::time::sleep(Duration::from_millis(600)).await;
        asked.store(true, Ordering::SeqCst);
        let read = body_bytes(resp.into_body());
        let body = spargio_rt::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("the body neither came nor failed");
        match body {
            Ok(body) => assert_eq!(body, "body"),
            Err(e) => panic!("a caller slow to start reading must not be timed out: {e}"),
        }
    });
}

#[test]
fn client_connect_timeout() {
    run(|| async {
        // A listener that never accepts, with its accept queue filled: the
        // kernel drops further SYNs, so connecting hangs.
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let listener = TcpListener::bind_with(addr, 0, false).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut fillers = Vec::new();
        for _ in 0..8 {
            match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(50)) {
                Ok(s) => fillers.push(s),
                Err(_) => break,
            }
        }
        let client = Client::builder()
            .connect_timeout(Duration::from_millis(100))
            // Never hang, whatever the kernel does.
            .request_timeout(Duration::from_secs(5))
            .build();
        let err = client.get(format!("http://{addr}/")).await.unwrap_err();
        match &err {
            ClientError::Timeout {
                after, connecting, ..
            } => {
                assert_eq!(*after, Duration::from_millis(100));
                assert!(*connecting);
            }
            other => panic!("{other:?}"),
        }
        assert!(err.is_connect() && err.is_timeout());
        assert!(
            err.to_string().starts_with("connecting to 127.0.0.1:"),
            "{err}"
        );
        drop(listener);
    });
}

#[test]
fn client_invalid_uris() {
    run(|| async {
        let client = Client::new();
        for uri in [
            "/relative/path",
            "ftp://example.com/",
            "http:///nohost",
            "not a uri",
        ] {
            let err = client.get(uri).await.unwrap_err();
            assert!(
                matches!(err, ClientError::InvalidUri { .. }),
                "{uri}: {err:?}"
            );
            assert!(err.host().is_none());
        }
        let req = Request::get("/only/a/path").body(Body::empty()).unwrap();
        let err = client.request(req).await.unwrap_err();
        assert!(err.to_string().contains("absolute"), "{err}");
    });
}

#[test]
fn client_dropped_request_closes_its_connection() {
    run(|| async {
        let closed = Arc::new(AtomicUsize::new(0));
        let heads = Arc::new(AtomicUsize::new(0));
        let (c, h) = (closed.clone(), heads.clone());
        let server = serve(move |mut peer, _, _| {
            let (closed, heads) = (c.clone(), h.clone());
            async move {
                if peer.head().await.is_some() {
                    heads.fetch_add(1, Ordering::SeqCst);
                }
                while peer.fill().await {}
                closed.fetch_add(1, Ordering::SeqCst);
            }
        });
        let client = Client::new();
        // The request is dropped once the server has its head, while the
        // client waits for the answer.
        let pending = Box::pin(client.get(server.url("/")));
        let head_read = Box::pin(eventually(|| heads.load(Ordering::SeqCst) == 1));
        match futures_util::future::select(pending, head_read).await {
            futures_util::future::Either::Left((answer, _)) => panic!("answered: {answer:?}"),
            futures_util::future::Either::Right(((), pending)) => drop(pending),
        }
        eventually(|| closed.load(Ordering::SeqCst) == 1).await;
    });
}

// ---------------------------------------------------------------------------
// Where requests run

#[test]
fn client_works_from_stealable_tasks_and_off_the_shards() {
    run(|| async {
        let server = serve_fixed("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
        let client = Client::new();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let client = client.clone();
                let url = server.url("/");
                spargio_rt::spawn(async move {
                    let resp = client.get(url).await.unwrap();
                    body_bytes(resp.into_body()).await.unwrap()
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), "ok");
        }
    });

    // From a thread that is not a shard (Runtime::block_on).
    let rt = spargio_rt::Runtime::builder().shards(2).build().unwrap();
    rt.block_on(async {
        let server = serve_fixed("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
        let client = Client::new();
        for _ in 0..4 {
            let resp = client.get(server.url("/")).await.unwrap();
            assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "ok");
        }
    });
}

// ---------------------------------------------------------------------------
// TLS

struct TlsFixture {
    acceptor: TlsAcceptor,
    connector: TlsConnector,
}

fn tls_fixture() -> TlsFixture {
    let (acceptor, connector) = common::localhost_tls();
    TlsFixture {
        acceptor,
        connector,
    }
}

/// A TLS server on shard 0: each connection is handshaken, then handed
/// to `handler`.
fn serve_tls<F, Fut>(acceptor: TlsAcceptor, handler: F) -> Server
where
    F: Fn(Peer<spargio_http::tls::ServerTlsStream>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let handler = Arc::new(handler);
    serve_raw(move |tcp, _, _| {
        let acceptor = acceptor.clone();
        let handler = handler.clone();
        async move {
            if let Ok(tls) = acceptor.accept(tcp).await {
                handler(Peer::new(tls)).await;
            }
        }
    })
}

#[test]
fn client_https_get_and_reuse() {
    let fx = tls_fixture();
    run(move || async move {
        let server = serve_tls(fx.acceptor, |mut peer| async move {
            while let Some(head) = peer.head().await {
                assert!(head.contains("host: localhost:"), "{head}");
                peer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nsecure")
                    .await;
            }
            peer.shutdown().await;
        });
        let client = Client::builder().tls(fx.connector).build();
        let url = format!("https://localhost:{}/", server.addr.port());
        for _ in 0..2 {
            let resp = client.get(url.as_str()).await.unwrap();
            assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "secure");
        }
        assert_eq!(server.accepted(), 1);
    });
}

#[test]
fn client_https_does_not_use_an_idle_connection_with_unasked_for_bytes() {
    // As over plain TCP: a response the server sends while the connection
    // is idle must not become the next request's answer. It comes on a
    // socket the pool holds, long after the last response.
    https_stray_response_is_not_the_next_answer(Duration::from_millis(20));
}

#[test]
fn client_https_does_not_use_a_connection_with_bytes_behind_its_last_response() {
    // Sent right behind the answer, the stray response may come in the
    // same socket read and wait in the TLS session's buffers, where a look
    // at the socket cannot see it.
    https_stray_response_is_not_the_next_answer(Duration::ZERO);
}

fn https_stray_response_is_not_the_next_answer(gap: Duration) {
    let fx = tls_fixture();
    run(move || async move {
        let conns = Arc::new(AtomicUsize::new(0));
        let strays = Arc::new(AtomicUsize::new(0));
        let sent = strays.clone();
        let server = serve_tls(fx.acceptor, move |mut peer| {
            let n = conns.fetch_add(1, Ordering::SeqCst);
            let sent = sent.clone();
            async move {
                while peer.head().await.is_some() {
                    let answer = format!("HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n{n}");
                    peer.write(answer.as_bytes()).await;
                    spargio_rt::time::sleep(gap).await;
                    peer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nstale")
                        .await;
                    sent.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        let client = Client::builder().tls(fx.connector).build();
        let url = format!("https://localhost:{}/", server.addr.port());
        let resp = client.get(url.as_str()).await.unwrap();
        assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "0");
        // The stray response is out before the next request.
        eventually(|| strays.load(Ordering::SeqCst) == 1).await;
        let resp = client.get(url.as_str()).await.unwrap();
        assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "1");
        assert_eq!(server.accepted(), 2);
    });
}

#[test]
fn client_https_refuses_a_server_that_chose_another_alpn_protocol() {
    let fx = tls_fixture();
    // The server speaks only h2; the client offers h2 and http/1.1.
    let mut server_cfg = (**fx.acceptor.config()).clone();
    server_cfg.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = TlsAcceptor::new(Arc::new(server_cfg));
    let mut client_cfg = (**fx.connector.config()).clone();
    client_cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let connector = TlsConnector::from_config(Arc::new(client_cfg));
    run(move || async move {
        // A request that got through anyway is answered with a close, so
        // the test ends either way.
        let server = serve_tls(acceptor, |mut peer| async move {
            let _ = peer.head().await;
        });
        let client = Client::builder().tls(connector).build();
        let url = format!("https://localhost:{}/", server.addr.port());
        let err = client.get(url.as_str()).await.unwrap_err();
        match &err {
            ClientError::Tls { source, .. } => {
                assert!(source.to_string().contains("h2"), "{source}")
            }
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn client_https_truncation_without_close_notify_is_a_body_error() {
    let fx = tls_fixture();
    run(move || async move {
        let server = serve_tls(fx.acceptor, |mut peer| async move {
            peer.head().await.unwrap();
            // Close-delimited, then the TCP connection is dropped without
            // close_notify.
            peer.write(b"HTTP/1.1 200 OK\r\n\r\ncut here").await;
        });
        let client = Client::builder().tls(fx.connector).build();
        let url = format!("https://localhost:{}/", server.addr.port());
        let resp = client.get(url.as_str()).await.unwrap();
        match body_bytes(resp.into_body()).await {
            Err(BodyError::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof),
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn client_https_server_closing_before_the_head_without_close_notify_is_closed() {
    // Most HTTPS servers drop an unwanted connection without close_notify:
    // that is the same `Closed` as over plain TCP, not an I/O error.
    let fx = tls_fixture();
    run(move || async move {
        let server = serve_tls(fx.acceptor, |mut peer| async move {
            peer.head().await.unwrap();
        });
        let client = Client::builder().tls(fx.connector).build();
        let url = format!("https://localhost:{}/", server.addr.port());
        let err = client.get(url.as_str()).await.unwrap_err();
        assert!(matches!(err, ClientError::Closed { .. }), "{err:?}");
    });
}

/// Whether the server saw the client's `close_notify` after one whole
/// HTTPS exchange answered with `response`, the client's pool keeping
/// idle connections or not (`pool_off`). `Ok(0)` from the server's read
/// after its answer is a `close_notify`, an `UnexpectedEof` a bare close.
fn close_after_exchange(
    response: &'static [u8],
    pool_off: bool,
) -> Option<Result<usize, std::io::ErrorKind>> {
    let fx = tls_fixture();
    run(move || async move {
        let seen: Arc<Mutex<Option<Result<usize, std::io::ErrorKind>>>> = Arc::default();
        let record = seen.clone();
        let server = serve_tls(fx.acceptor, move |mut peer| {
            let record = record.clone();
            async move {
                peer.head().await.unwrap();
                peer.write(response).await;
                let (res, _) = peer.reader.read_some(BytesMut::with_capacity(64)).await;
                *record.lock().unwrap() = Some(res.map_err(|e| e.kind()));
            }
        });
        let mut builder = Client::builder().tls(fx.connector);
        if pool_off {
            builder = builder.pool_max_idle_per_host(0);
        }
        let client = builder.build();
        let url = format!("https://localhost:{}/", server.addr.port());
        let resp = client.get(url.as_str()).await.unwrap();
        assert_eq!(body_bytes(resp.into_body()).await.unwrap(), "ok");
        let mut got = None;
        for _ in 0..1000 {
            got = seen.lock().unwrap().take();
            if got.is_some() {
                break;
            }
            spargio_rt::time::sleep(Duration::from_millis(10)).await;
        }
        got
    })
}

#[test]
fn client_https_closes_with_close_notify_after_a_whole_exchange() {
    let response = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok";
    let got = close_after_exchange(response, false);
    assert_eq!(got, Some(Ok(0)), "the server saw no close_notify");
}

#[test]
fn client_https_with_the_pool_off_closes_a_reusable_connection_with_close_notify() {
    let response = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
    let got = close_after_exchange(response, true);
    assert_eq!(got, Some(Ok(0)), "the server saw no close_notify");
}

#[test]
fn client_https_untrusted_certificate_is_a_tls_error() {
    let fx = tls_fixture();
    run(move || async move {
        let server = serve_tls(fx.acceptor, |_| async {});
        // Default roots: the self-signed certificate is not trusted.
        let url = format!("https://localhost:{}/", server.addr.port());
        let err = Client::new().get(url.as_str()).await.unwrap_err();
        assert!(matches!(err, ClientError::Tls { .. }), "{err:?}");
        assert!(err.is_connect());
        assert!(err.to_string().starts_with("TLS with localhost:"), "{err}");
    });
}

// ---------------------------------------------------------------------------
// A tiny channel-backed body stream for request bodies.

type FrameResult = Result<Frame<Bytes>, Box<dyn std::error::Error + Send + Sync>>;

struct StreamTx(Arc<Mutex<StreamState>>);
struct StreamRx(Arc<Mutex<StreamState>>);

#[derive(Default)]
struct StreamState {
    queue: std::collections::VecDeque<FrameResult>,
    closed: bool,
    waker: Option<std::task::Waker>,
}

fn async_channel_like() -> (StreamTx, StreamRx) {
    let s = Arc::new(Mutex::new(StreamState::default()));
    (StreamTx(s.clone()), StreamRx(s))
}

impl StreamTx {
    fn push(&self, item: FrameResult) {
        let mut s = self.0.lock().unwrap();
        s.queue.push_back(item);
        if let Some(w) = s.waker.take() {
            w.wake();
        }
    }

    fn send(&self, frame: Frame<Bytes>) {
        self.push(Ok(frame));
    }

    fn fail(&self, why: &str) {
        self.push(Err(why.into()));
    }
}

impl Drop for StreamTx {
    fn drop(&mut self) {
        let mut s = self.0.lock().unwrap();
        s.closed = true;
        if let Some(w) = s.waker.take() {
            w.wake();
        }
    }
}

impl futures_util::Stream for StreamRx {
    type Item = FrameResult;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<FrameResult>> {
        let mut s = self.0.lock().unwrap();
        if let Some(item) = s.queue.pop_front() {
            return std::task::Poll::Ready(Some(item));
        }
        if s.closed {
            return std::task::Poll::Ready(None);
        }
        s.waker = Some(cx.waker().clone());
        std::task::Poll::Pending
    }
}
