//! Test support: an HTTP server on its own runtime thread, and a blocking
//! raw-socket client that reads responses byte-exactly.

#![allow(dead_code)]

pub mod ws_echo;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use http::{Request, Response};
use http_body::Body as HttpBody;
use spargio_http::{Body, Http};
use spargio_service::{BoxError, Server, ShutdownHandle, ShutdownReport, StatsHandle};
use tower_service::Service;

/// A server running on a 2-shard runtime in a background thread.
pub struct TestServer {
    pub addr: SocketAddr,
    /// The server's live counters.
    pub stats: StatsHandle,
    shutdown: ShutdownHandle,
    thread: Option<JoinHandle<ShutdownReport>>,
}

impl TestServer {
    /// Serves `service` with the default protocol settings.
    pub fn start<S, B>(service: S) -> TestServer
    where
        S: Service<Request<Body>, Response = Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError> + Send + 'static,
        B: HttpBody + Send + 'static,
        B::Error: Into<BoxError>,
    {
        TestServer::start_with(Http::new(), |b| b, service)
    }

    /// Serves `service` with `http` and a server builder tweaked by
    /// `builder`.
    pub fn start_with<S, B>(
        http: Http<B>,
        builder: impl FnOnce(spargio_service::ServerBuilder) -> spargio_service::ServerBuilder
            + Send
            + 'static,
        service: S,
    ) -> TestServer
    where
        S: Service<Request<Body>, Response = Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError> + Send + 'static,
        B: HttpBody + Send + 'static,
        B::Error: Into<BoxError>,
    {
        run_server(builder, move |server| server.serve_service(http, service))
    }

    /// A connected raw client with a read timeout (so a hung server fails
    /// the test instead of hanging it).
    pub fn connect(&self) -> RawClient {
        RawClient::connect(self.addr)
    }

    /// Begins a graceful shutdown and returns at once; [`stop`](Self::stop)
    /// then waits for it to end.
    pub fn begin_shutdown(&self) {
        self.shutdown.shutdown();
    }

    /// Shuts the server down gracefully and returns its report.
    pub fn stop(mut self) -> ShutdownReport {
        self.shutdown.shutdown();
        self.thread.take().unwrap().join().expect("server thread")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.shutdown.shutdown();
            let _ = t.join();
        }
    }
}

/// A response as read off the wire.
#[derive(Debug)]
pub struct RawResponse {
    pub version: u8,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub trailers: Vec<(String, String)>,
    pub chunked: bool,
}

impl RawResponse {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn body_str(&self) -> &str {
        std::str::from_utf8(&self.body).expect("utf-8 body")
    }
}

/// A blocking client that writes raw bytes and parses responses.
pub struct RawClient {
    pub reader: BufReader<TcpStream>,
    pub stream: TcpStream,
}

impl RawClient {
    pub fn connect(addr: SocketAddr) -> RawClient {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        RawClient {
            reader: BufReader::new(stream.try_clone().unwrap()),
            stream,
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Reads one response; `head_request` says the request was HEAD (no
    /// body follows whatever the headers say).
    pub fn read_response_to(&mut self, head_request: bool) -> RawResponse {
        read_response_from(&mut self.reader, head_request)
    }

    pub fn read_response(&mut self) -> RawResponse {
        self.read_response_to(false)
    }

    /// Whether the server closed the connection (EOF on the next read).
    pub fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        match self.reader.read(&mut b) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
            ),
        }
    }

    /// Sends `req` and reads the response.
    pub fn roundtrip(&mut self, req: &[u8]) -> RawResponse {
        self.send(req);
        self.read_response()
    }
}

/// What the tests' hand-written services are: tower services of HTTP
/// requests answering with `Response<B>` that never fail, with the bounds
/// [`TestServer::start`] asks for.
pub trait TestService<B>:
    Service<
        Request<Body>,
        Response = Response<B>,
        Error = std::convert::Infallible,
        Future: Send + 'static,
    > + Clone
    + Send
    + 'static
{
}

impl<S, B> TestService<B> for S where
    S: Service<
            Request<Body>,
            Response = Response<B>,
            Error = std::convert::Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + 'static
{
}

/// A service that answers with a summary of the request it got: method,
/// path, and the body it read (all of it).
pub fn echo_service() -> impl TestService<Body> {
    tower::service_fn(|req: Request<Body>| async move {
        use http_body_util::BodyExt;
        let (parts, body) = req.into_parts();
        let collected = body.collect().await;
        let text = match collected {
            Ok(c) => {
                let trailers = c
                    .trailers()
                    .map(|t| format!(" trailers={}", t.len()))
                    .unwrap_or_default();
                let bytes = c.to_bytes();
                format!(
                    "{} {} len={}{} body={}",
                    parts.method,
                    parts.uri,
                    bytes.len(),
                    trailers,
                    String::from_utf8_lossy(&bytes)
                )
            }
            Err(e) => format!("body error: {e}"),
        };
        Ok::<_, std::convert::Infallible>(Response::new(Body::from(text)))
    })
}

/// Like [`TestServer::start`], but serves a tower `MakeService` (called with
/// each connection's [`spargio_service::ConnInfo`]) through `Server::serve`,
/// such as axum's `Router::into_make_service()`.
pub fn start_make<M, S, B>(make: M) -> TestServer
where
    M: Service<spargio_service::ConnInfo, Response = S> + Clone + Send + 'static,
    M::Future: 'static,
    M::Error: Into<BoxError>,
    S: Service<Request<Body>, Response = Response<B>> + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError> + Send + 'static,
    B: HttpBody + Send + 'static,
    B::Error: Into<BoxError>,
{
    start_make_with(Http::new(), |b| b, make)
}

/// [`start_make`] with `http` and a server builder tweaked by `builder`.
pub fn start_make_with<M, S, B>(
    http: Http<B>,
    builder: impl FnOnce(spargio_service::ServerBuilder) -> spargio_service::ServerBuilder
        + Send
        + 'static,
    make: M,
) -> TestServer
where
    M: Service<spargio_service::ConnInfo, Response = S> + Clone + Send + 'static,
    M::Future: 'static,
    M::Error: Into<BoxError>,
    S: Service<Request<Body>, Response = Response<B>> + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError> + Send + 'static,
    B: HttpBody + Send + 'static,
    B::Error: Into<BoxError>,
{
    run_server(builder, move |server| server.serve(http, make))
}

/// Binds a server on 127.0.0.1 (2 shards, 5 s shutdown timeout, then
/// `builder`'s tweaks) on a thread of its own and runs `serve` on it.
pub fn run_server<F, Fut>(
    builder: impl FnOnce(spargio_service::ServerBuilder) -> spargio_service::ServerBuilder
        + Send
        + 'static,
    serve: F,
) -> TestServer
where
    F: FnOnce(Server) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = std::io::Result<ShutdownReport>>,
{
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        spargio_rt::run_with(
            spargio_rt::Runtime::builder().shards(2),
            move |handle| async move {
                let server = builder(Server::builder().shutdown_timeout(Duration::from_secs(5)))
                    .bind(&handle, "127.0.0.1:0")
                    .expect("bind");
                tx.send((
                    server.local_addr(),
                    server.shutdown_handle(),
                    server.stats(),
                ))
                .unwrap();
                serve(server).await.expect("serve")
            },
        )
        .expect("runtime")
    });
    let (addr, shutdown, stats) = rx.recv().expect("server started");
    TestServer {
        addr,
        stats,
        shutdown,
        thread: Some(thread),
    }
}

/// FNV-1a of `bytes` (the python clients use the same), to show that a
/// large body arrived byte-exact.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

/// A deterministic, non-repeating body of `n` bytes.
pub fn pattern(n: usize) -> Vec<u8> {
    let mut x = 0x2545f4914f6cdd1du64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A fresh self-signed certificate for `localhost`: a TLS acceptor that
/// serves it and a connector that trusts it (and nothing else).
pub fn localhost_tls() -> (
    spargio_http::tls::TlsAcceptor,
    spargio_http::tls::TlsConnector,
) {
    use spargio_http::tls::{root_store_from_pem, TlsAcceptor, TlsConnector};
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert_pem = cert.cert.pem();
    let acceptor = TlsAcceptor::from_pem(
        cert_pem.as_bytes(),
        cert.key_pair.serialize_pem().as_bytes(),
    )
    .unwrap();
    let connector =
        TlsConnector::with_root_store(root_store_from_pem(cert_pem.as_bytes()).unwrap());
    (acceptor, connector)
}

/// A response body of these frames, in order, with no size hint.
pub type Frames = http_body_util::StreamBody<
    futures_util::stream::Iter<
        std::vec::IntoIter<Result<http_body::Frame<bytes::Bytes>, std::io::Error>>,
    >,
>;

/// A body giving `list` in order: `Ok` data frames, `Err` failures.
pub fn frames(list: Vec<Result<&'static [u8], &'static str>>) -> Frames {
    let list = list
        .into_iter()
        .map(|f| match f {
            Ok(data) => Ok(http_body::Frame::data(bytes::Bytes::from_static(data))),
            Err(why) => Err(std::io::Error::other(why)),
        })
        .collect::<Vec<_>>();
    http_body_util::StreamBody::new(futures_util::stream::iter(list))
}

/// Reads until the peer ends the stream: what came, and how it ended
/// (`Ok` for a clean end: a FIN, or under TLS a `close_notify`). A read
/// that times out fails the test instead of passing for an unclean end.
pub fn read_to_the_end(r: &mut impl Read) -> (Vec<u8>, std::io::Result<()>) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return (got, Ok(())),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                assert!(
                    !matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ),
                    "the peer never ended the connection"
                );
                return (got, Err(e));
            }
        }
    }
}

/// Reads one response from `reader`; `head_request` says the request was
/// HEAD (no body follows whatever the headers say).
pub fn read_response_from(reader: &mut impl BufRead, head_request: bool) -> RawResponse {
    let mut line = String::new();
    reader.read_line(&mut line).expect("status line");
    assert!(
        line.ends_with("\r\n"),
        "status line not CRLF-terminated: {line:?}"
    );
    let mut parts = line.trim_end().splitn(3, ' ');
    let version = match parts.next().unwrap() {
        "HTTP/1.1" => 1,
        "HTTP/1.0" => 0,
        v => panic!("bad version {v:?} in {line:?}"),
    };
    let status: u16 = parts.next().unwrap().parse().unwrap();
    let headers = read_fields(reader);
    let mut resp = RawResponse {
        version,
        status,
        headers,
        body: Vec::new(),
        trailers: Vec::new(),
        chunked: false,
    };
    if head_request || status / 100 == 1 || status == 204 || status == 304 {
        return resp;
    }
    if resp
        .header("transfer-encoding")
        .is_some_and(|te| te.eq_ignore_ascii_case("chunked"))
    {
        resp.chunked = true;
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).unwrap();
            let size = size.trim_end().split(';').next().unwrap();
            let n = usize::from_str_radix(size, 16).expect("chunk size");
            if n == 0 {
                resp.trailers = read_fields(reader);
                break;
            }
            let mut chunk = vec![0u8; n + 2];
            reader.read_exact(&mut chunk).unwrap();
            assert_eq!(&chunk[n..], b"\r\n");
            resp.body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(len) = resp.header("content-length") {
        let n: usize = len.parse().unwrap();
        resp.body = vec![0u8; n];
        reader.read_exact(&mut resp.body).unwrap();
    } else {
        reader.read_to_end(&mut resp.body).unwrap();
    }
    resp
}

fn read_fields(reader: &mut impl BufRead) -> Vec<(String, String)> {
    let mut out = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            return out;
        }
        let (n, v) = line.trim_end().split_once(':').expect("header line");
        out.push((n.to_string(), v.trim().to_string()));
    }
}

/// Runs `tests/clients/<script> PORT` with python3.
pub fn python(script: &str, addr: SocketAddr) {
    python_with(script, addr, &[]);
}

/// Runs `tests/clients/<script> PORT ARGS...` with python3.
pub fn python_with(script: &str, addr: SocketAddr, args: &[&std::ffi::OsStr]) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(script);
    let out = Command::new("python3")
        .arg(&path)
        .arg(addr.port().to_string())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("python3 is needed for {script}: {e}"));
    assert!(
        out.status.success(),
        "{script} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts `tests/clients/<script> ARGS...` with python3, stdin and stdout
/// piped, and reads the port it prints on its first line: a python server
/// that serves until its stdin closes.
pub fn python_server(script: &str, args: &[&str]) -> (std::process::Child, u16) {
    use std::io::BufRead;
    use std::process::Stdio;
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(script);
    let mut child = Command::new("python3")
        .arg(path)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("python3 is needed for {script}: {e}"));
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{script} printed {line:?}, not its port"));
    (child, port)
}

/// A loopback port nobody listens on: bound, then closed.
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether python3 can import `module`.
pub fn python_imports(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Runs `test` on a fresh 2-shard runtime and returns what it returns.
pub fn run<F, Fut, T>(test: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + 'static,
    T: Send + 'static,
{
    let rt = spargio_rt::Runtime::builder().shards(2);
    spargio_rt::run_with(rt, move |_| test()).unwrap()
}
