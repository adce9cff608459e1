//! HTTP over Unix sockets (`ServerBuilder::bind_unix`): curl's
//! `--unix-socket`, a raw client (keep-alive, pipelining, a malformed
//! request), multishot reads, and TLS over a Unix socket.

mod common;

use std::convert::Infallible;
use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::routing::{get, post};
use axum::{Extension, Router};
use http::{Request, Response};
use spargio_http::{Body, Http};
use spargio_service::{ConnInfo, Server, ShutdownHandle, ShutdownReport, StatsHandle};

/// An HTTP server on a Unix socket, on a 2-shard runtime in a background
/// thread.
struct UnixServer {
    path: PathBuf,
    stats: StatsHandle,
    stop: ShutdownHandle,
    thread: Option<JoinHandle<ShutdownReport>>,
    _dir: tempfile::TempDir,
}

impl UnixServer {
    /// Serves `make` (a make-service taking each connection's `ConnInfo`)
    /// with `http`.
    fn start<M, S, B>(http: Http<B>, make: M) -> UnixServer
    where
        M: tower::Service<ConnInfo, Response = S, Error = Infallible> + Clone + Send + 'static,
        M::Future: 'static,
        S: tower::Service<Request<Body>, Response = Response<B>> + 'static,
        S::Future: Send + 'static,
        S::Error: Into<spargio_service::BoxError> + Send + 'static,
        B: http_body::Body + Send + 'static,
        B::Error: Into<spargio_service::BoxError>,
    {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("http.sock");
        let (tx, rx) = mpsc::channel();
        let at = path.clone();
        let thread = std::thread::spawn(move || {
            spargio_rt::run_with(
                spargio_rt::Runtime::builder().shards(2),
                move |handle| async move {
                    let server = Server::builder().bind_unix(&handle, &at).unwrap();
                    tx.send((server.stats(), server.shutdown_handle())).unwrap();
                    server.serve(http, make).await.unwrap()
                },
            )
            .unwrap()
        });
        let (stats, stop) = rx.recv().expect("the server started");
        UnixServer {
            path,
            stats,
            stop,
            thread: Some(thread),
            _dir: dir,
        }
    }

    fn connect(&self) -> RawUnixClient {
        let stream = StdUnixStream::connect(&self.path).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        RawUnixClient {
            reader: BufReader::new(stream.try_clone().unwrap()),
            stream,
        }
    }

    fn stop(mut self) -> ShutdownReport {
        self.stop.shutdown();
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for UnixServer {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.stop.shutdown();
            let _ = t.join();
        }
    }
}

/// A blocking client on a Unix socket that reads whole responses.
struct RawUnixClient {
    reader: BufReader<StdUnixStream>,
    stream: StdUnixStream,
}

impl RawUnixClient {
    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    fn read_response(&mut self) -> common::RawResponse {
        common::read_response_from(&mut self.reader, false)
    }

    fn is_closed(&mut self) -> bool {
        use std::io::Read;
        let mut b = [0u8; 1];
        matches!(self.reader.read(&mut b), Ok(0))
    }
}

/// A make-service that serves `router` with each connection's `ConnInfo`
/// in its extensions.
fn with_conn_info(
    router: Router,
) -> impl tower::Service<
    ConnInfo,
    Response = Router,
    Error = Infallible,
    Future = std::future::Ready<Result<Router, Infallible>>,
> + Clone
       + Send
       + 'static {
    tower::service_fn(move |info: ConnInfo| {
        std::future::ready(Ok::<_, Infallible>(router.clone().layer(Extension(info))))
    })
}

/// `/whoami` (the peer's credentials and whether the connection had IP
/// addresses) and `/echo` (the request body back).
fn app() -> Router {
    Router::new()
        .route(
            "/whoami",
            get(|Extension(info): Extension<ConnInfo>| async move {
                let cred = info.peer_cred.expect("a Unix connection names its peer");
                format!(
                    "pid={} uid={} ip={}",
                    cred.pid,
                    cred.uid,
                    info.peer_addr.is_some() || info.local_addr.is_some()
                )
            }),
        )
        .route("/echo", post(|body: String| async move { body }))
}

fn curl(socket: &Path) -> Command {
    let found = ["/usr/bin/curl", "/usr/local/bin/curl", "/bin/curl"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(bin) = found else {
        panic!("curl is not installed: these tests need the curl binary (apt-get install curl)");
    };
    let mut c = Command::new(bin);
    c.arg("-q")
        .arg("--noproxy")
        .arg("*")
        .arg("--max-time")
        .arg("20")
        .arg("--silent")
        .arg("--show-error")
        .arg("--unix-socket")
        .arg(socket);
    c
}

fn run_ok(mut cmd: Command) -> Output {
    let out = cmd.output().expect("run curl");
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn curl_over_a_unix_socket_reaches_an_axum_router_that_knows_the_peer() {
    let server = UnixServer::start(Http::new(), with_conn_info(app()));
    let mut cmd = curl(&server.path);
    cmd.arg("http://localhost/whoami");
    let out = run_ok(cmd);
    let text = String::from_utf8(out.stdout).unwrap();
    // curl is the peer: its own process, our user.
    // SAFETY: geteuid cannot fail and touches no memory.
    let uid = unsafe { libc::geteuid() };
    assert!(text.starts_with("pid="), "{text}");
    assert!(text.ends_with(&format!(" uid={uid} ip=false")), "{text}");
    let pid: u32 = text["pid=".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(pid, std::process::id(), "the peer is curl, not this test");

    // A chunked upload, echoed.
    let mut cmd = curl(&server.path);
    cmd.args([
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        "over a unix socket",
        "http://localhost/echo",
    ]);
    assert_eq!(run_ok(cmd).stdout, b"over a unix socket");

    // Two requests on one connection: keep-alive works over the socket.
    let mut cmd = curl(&server.path);
    cmd.args([
        "-w",
        "|%{num_connects}",
        "http://localhost/whoami",
        "http://localhost/whoami",
    ]);
    let text = String::from_utf8(run_ok(cmd).stdout).unwrap();
    assert!(text.contains("|1") && text.ends_with("|0"), "{text}");

    let report = server.stop();
    assert_eq!(report.cut, 0);
}

fn get_req(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes()
}

#[test]
fn pipelined_requests_and_a_malformed_one_over_a_unix_socket() {
    let server = UnixServer::start(Http::new(), with_conn_info(app()));
    let mut c = server.connect();
    let mut two = get_req("/whoami");
    two.extend_from_slice(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    c.send(&two);
    let first = c.read_response();
    assert_eq!(first.status, 200);
    assert!(first.body_str().starts_with("pid="), "{}", first.body_str());
    let second = c.read_response();
    assert_eq!((second.status, second.body_str()), (200, "hello"));

    // Content-Length that is not plain digits: 400 and a close.
    c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello");
    let bad = c.read_response();
    assert_eq!(bad.status, 400);
    assert!(c.is_closed(), "the connection closes after a 400");
    assert_eq!(server.stats.snapshot().bad_requests, 1);

    // The server goes on serving new connections.
    let mut c = server.connect();
    c.send(&get_req("/whoami"));
    assert_eq!(c.read_response().status, 200);
}

/// A client that sends its requests and closes its sending side at once:
/// every answer comes, then the server's close. With `multishot_reads`
/// on too: the kernel can drop the end of a Unix stream from a multishot
/// receive that takes data and the close in one burst, which would leave
/// the connection waiting for its idle timeout.
#[test]
fn a_unix_client_that_sends_and_closes_gets_every_answer_then_the_end() {
    for http in [Http::new(), Http::new().multishot_reads(true)] {
        let server = UnixServer::start(http, with_conn_info(app()));
        for round in 0..20 {
            let mut c = server.connect();
            let body: String = (0..200_000 + round)
                .map(|i| (b'a' + (i % 26) as u8) as char)
                .collect();
            let req = format!(
                "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let mut both = req.clone().into_bytes();
            both.extend_from_slice(req.as_bytes());
            c.send(&both);
            c.stream.shutdown(std::net::Shutdown::Write).unwrap();
            for _ in 0..2 {
                let resp = c.read_response();
                assert_eq!(resp.status, 200);
                assert_eq!(resp.body_str(), body);
            }
            assert!(c.is_closed(), "the server closes after the client's end");
        }
        // A small request and the close, likely there before the server's
        // first read.
        for _ in 0..20 {
            let mut c = server.connect();
            c.send(&get_req("/whoami"));
            c.stream.shutdown(std::net::Shutdown::Write).unwrap();
            assert_eq!(c.read_response().status, 200);
            assert!(c.is_closed(), "the server closes after the client's end");
        }
    }
}

#[test]
fn tls_over_a_unix_socket() {
    use bytes::BytesMut;
    use spargio_http::transport::{Transport, TransportRead, TransportWrite};
    let (acceptor, connector) = common::localhost_tls();
    let server = UnixServer::start(Http::new().tls(acceptor), with_conn_info(app()));
    let path = server.path.clone();
    let reply = spargio_rt::run(move |_| async move {
        let socket = spargio_rt::net::UnixStream::connect(&path).await.unwrap();
        let tls = connector.connect("localhost", socket).await.unwrap();
        assert_eq!(tls.alpn_protocol(), Some(&b"http/1.1"[..]));
        let (mut read, mut write) = tls.split();
        let req = b"GET /whoami HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let (res, _) = write.write_all(BytesMut::from(&req[..])).await;
        res.unwrap();
        let mut got = BytesMut::new();
        loop {
            let (res, buf) = read.read_some(got).await;
            got = buf;
            if res.expect("a TLS read (the server ends with close_notify)") == 0 {
                break;
            }
        }
        String::from_utf8(got.to_vec()).unwrap()
    })
    .unwrap();
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    assert!(reply.contains("\r\n\r\npid="), "{reply}");
    assert!(reply.ends_with(" ip=false"), "{reply}");
}

/// The body of `resp` as text.
async fn text_of(resp: Response<Body>) -> String {
    use http_body_util::BodyExt;
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn the_client_talks_to_a_unix_socket_server_and_keeps_its_connection() {
    let server = UnixServer::start(Http::new(), with_conn_info(app()));
    let path = server.path.clone();
    spargio_rt::run(move |_| async move {
        let client = spargio_http::Client::builder().unix_socket(&path).build();
        for _ in 0..2 {
            let resp = client.get("http://localhost/whoami").await.unwrap();
            assert_eq!(resp.status(), 200);
            // The client is this process: the server saw its credentials.
            let text = text_of(resp).await;
            assert!(
                text.starts_with(&format!("pid={} ", std::process::id())),
                "{text}"
            );
        }
        let req = Request::post("http://localhost/echo")
            .body(Body::from("posted over the socket"))
            .unwrap();
        let resp = client.request(req).await.unwrap();
        assert_eq!(text_of(resp).await, "posted over the socket");
    })
    .unwrap();
    // Every request went over one kept-alive connection.
    assert_eq!(server.stats.snapshot().accepted, 1);
}

#[test]
fn the_client_reports_a_missing_socket_as_a_connect_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nobody.sock");
    let err = spargio_rt::run(move |_| async move {
        let client = spargio_http::Client::builder().unix_socket(&path).build();
        client.get("http://localhost/").await.unwrap_err()
    })
    .unwrap();
    assert!(err.is_connect(), "{err:?}");
    match err {
        spargio_http::ClientError::Connect { source, .. } => {
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound, "{source}")
        }
        other => panic!("not a connect error: {other:?}"),
    }
}

#[test]
fn the_client_runs_https_over_a_unix_socket() {
    let (acceptor, connector) = common::localhost_tls();
    let server = UnixServer::start(Http::new().tls(acceptor), with_conn_info(app()));
    let path = server.path.clone();
    let text = spargio_rt::run(move |_| async move {
        let client = spargio_http::Client::builder()
            .unix_socket(&path)
            .tls(connector)
            .build();
        let resp = client.get("https://localhost/whoami").await.unwrap();
        assert_eq!(resp.status(), 200);
        text_of(resp).await
    })
    .unwrap();
    assert!(text.ends_with(" ip=false"), "{text}");
}
