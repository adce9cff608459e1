//! Clients nobody here wrote, against `spargio_http::Http`: the `curl`
//! binary (HTTP/1.1, HTTP/1.0, HEAD, chunked and `Expect: 100-continue`
//! uploads, resumed range downloads from `ServeDir`, connection reuse, TLS
//! with a CA file and without), Python's stdlib `http.client`, and a strict
//! `h11` client that pipelines requests and validates every response's
//! framing (scripts in `tests/clients/`).
//!
//! Needs `curl` and `python3` with `h11` (`python3 -m pip install h11`;
//! `bash .ci/test-tools` installs what is missing). A missing tool fails the test with a message
//! saying what to install.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bytes::Bytes;
use common::{echo_service, fnv1a, pattern, TestServer, TestService};
use http::{HeaderMap, Request, Response};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, StreamBody};
use spargio_http::fs::ServeDir;
use spargio_http::tls::TlsAcceptor;
use spargio_http::{Body, Http};
use spargio_service::BoxError;
use tower::ServiceExt;

/// The body `client_service` answers with.
type ReplyBody = BoxBody<Bytes, BoxError>;

/// The service the clients talk to: `/chunked` streams ten chunks of
/// unknown total length with an `x-count` trailer (so it goes out
/// chunked), `/hash` answers `len=N fnv=HEX` for the request body, and
/// anything else is [`echo_service`].
fn client_service() -> impl TestService<ReplyBody> {
    tower::service_fn(|req: Request<Body>| async move {
        let resp = match req.uri().path() {
            "/chunked" => {
                let mut trailers = HeaderMap::new();
                trailers.insert("x-count", "10".parse().unwrap());
                let frames = (0..10)
                    .map(|i| Ok(http_body::Frame::data(Bytes::from(format!("chunk-{i}\n")))))
                    .chain(std::iter::once(Ok(http_body::Frame::trailers(trailers))));
                Response::new(StreamBody::new(futures_util::stream::iter(frames)).boxed())
            }
            "/hash" => {
                let text = match req.into_body().collect().await {
                    Ok(c) => {
                        let b = c.to_bytes();
                        format!("len={} fnv={:016x}", b.len(), fnv1a(&b))
                    }
                    Err(e) => format!("body error: {e}"),
                };
                Response::new(Body::from(text).map_err(BoxError::from).boxed())
            }
            _ => echo_service()
                .oneshot(req)
                .await
                .unwrap()
                .map(|b| b.map_err(BoxError::from).boxed()),
        };
        Ok::<_, Infallible>(resp)
    })
}

/// The `curl` binary, or a failed test saying it is needed.
fn curl() -> Command {
    let found = ["/usr/bin/curl", "/usr/local/bin/curl", "/bin/curl"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(path) = found else {
        panic!("curl is not installed: these tests need the curl binary (apt-get install curl)");
    };
    let mut c = Command::new(path);
    // Never a proxy from the environment, never a user's ~/.curlrc.
    c.arg("-q")
        .arg("--noproxy")
        .arg("*")
        .arg("--max-time")
        .arg("20");
    c
}

/// Runs `cmd`, returning its output; panics with stderr if it fails.
fn run_ok(mut cmd: Command) -> Output {
    let out = cmd.output().expect("run client");
    assert!(
        out.status.success(),
        "{:?} failed ({}):\nstdout: {}\nstderr: {}",
        cmd,
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

fn text(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("utf-8 output")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn curl_http11_get() {
    let server = TestServer::start(client_service());
    let mut cmd = curl();
    cmd.args(["-sS", "--fail", "-w", "\n%{http_version} %{http_code}"])
        .arg(url(server.addr, "/hello?x=1&y=two"));
    let out = run_ok(cmd);
    assert_eq!(text(&out), "GET /hello?x=1&y=two len=0 body=\n1.1 200");
}

#[test]
fn curl_http10_get() {
    let server = TestServer::start(client_service());
    let mut cmd = curl();
    cmd.args(["-sS", "--fail", "--http1.0", "-D", "-"])
        .arg(url(server.addr, "/old"));
    let out = run_ok(cmd);
    let got = text(&out);
    let (head, body) = got.split_once("\r\n\r\n").expect("a head");
    // A 1.0 request is answered as 1.0 and closed.
    assert!(head.starts_with("HTTP/1.0 200 OK\r\n"), "{head}");
    assert_eq!(body, "GET /old len=0 body=");

    // A chunked (unknown-length) response to HTTP/1.0 ends at the close.
    let mut cmd = curl();
    cmd.args(["-sS", "--fail", "--http1.0"])
        .arg(url(server.addr, "/chunked"));
    let out = run_ok(cmd);
    let want: String = (0..10).map(|i| format!("chunk-{i}\n")).collect();
    assert_eq!(text(&out), want);
}

#[test]
fn curl_head() {
    let server = TestServer::start(client_service());
    let mut cmd = curl();
    cmd.args(["-sS", "--fail", "-I"])
        .arg(url(server.addr, "/h"));
    let out = run_ok(cmd);
    let head = text(&out);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    // The length the GET body would have had.
    let len = "HEAD /h len=0 body=".len();
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("\r\ncontent-length: {len}\r\n")),
        "{head}"
    );
    assert!(head.ends_with("\r\n\r\n"), "{head:?}");
}

#[test]
fn curl_chunked_upload() {
    let server = TestServer::start(client_service());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("upload.bin");
    let data = pattern(300_000);
    std::fs::write(&file, &data).unwrap();
    let mut cmd = curl();
    cmd.args(["-sS", "--fail", "-H", "Transfer-Encoding: chunked"])
        .arg("--data-binary")
        .arg(format!("@{}", file.display()))
        .arg("-v")
        .arg(url(server.addr, "/hash"));
    let out = run_ok(cmd);
    assert!(
        stderr(&out).contains("Transfer-Encoding: chunked"),
        "curl did not send chunked: {}",
        stderr(&out)
    );
    assert_eq!(
        text(&out),
        format!("len={} fnv={:016x}", data.len(), fnv1a(&data))
    );
}

#[test]
fn curl_expect_continue_upload() {
    let server = TestServer::start(client_service());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("upload.txt");
    let data = "0123456789abcdef".repeat(200); // 3200 bytes
    std::fs::write(&file, &data).unwrap();
    let mut cmd = curl();
    // curl sends the body anyway after 1 s without a 100 (its default); a
    // loaded machine must not make that look like a server that never
    // said it.
    cmd.args(["-sS", "--fail", "-v", "-H", "Expect: 100-continue"])
        .args(["--expect100-timeout", "30"])
        .arg("--data-binary")
        .arg(format!("@{}", file.display()))
        .arg(url(server.addr, "/up"));
    let out = run_ok(cmd);
    let err = stderr(&out);
    assert!(err.contains("Expect: 100-continue"), "{err}");
    assert!(
        err.contains("HTTP/1.1 100 Continue"),
        "the server never said 100 Continue:\n{err}"
    );
    assert_eq!(text(&out), format!("POST /up len=3200 body={data}"));
}

#[test]
fn curl_reuses_one_connection_for_two_urls() {
    let server = TestServer::start(client_service());
    let mut cmd = curl();
    cmd.args(["-sS", "--fail", "-v"])
        .arg(url(server.addr, "/first"))
        .arg(url(server.addr, "/second"));
    let out = run_ok(cmd);
    assert_eq!(text(&out), "GET /first len=0 body=GET /second len=0 body=");
    let err = stderr(&out);
    assert!(
        err.contains("Re-using existing connection"),
        "curl did not reuse the connection:\n{err}"
    );
    assert_eq!(err.matches("Connected to").count(), 1, "{err}");
}

/// A directory with `big.bin` (300 000 patterned bytes) served by
/// `ServeDir`.
fn serve_dir() -> (TestServer, tempfile::TempDir, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(300_000);
    std::fs::write(dir.path().join("big.bin"), &data).unwrap();
    let server = TestServer::start(ServeDir::new(dir.path()));
    (server, dir, data)
}

#[test]
fn curl_resumes_a_partial_download_from_serve_dir() {
    let (server, _root, data) = serve_dir();
    let out_dir = tempfile::tempdir().unwrap();
    let out_file = out_dir.path().join("big.bin");

    // A download cut short: the first 123 457 bytes on disk.
    std::fs::write(&out_file, &data[..123_457]).unwrap();
    let mut cmd = curl();
    cmd.args([
        "-sS",
        "--fail",
        "-C",
        "-",
        "-w",
        "%{http_code} %{size_download}",
    ])
    .arg("-o")
    .arg(&out_file)
    .arg(url(server.addr, "/big.bin"));
    let out = run_ok(cmd);
    assert_eq!(
        text(&out),
        format!("206 {}", data.len() - 123_457),
        "resumed with a range"
    );
    assert!(
        std::fs::read(&out_file).unwrap() == data,
        "resumed file differs"
    );

    // A whole download, then an explicit range.
    let mut cmd = curl();
    cmd.args(["-sS", "--fail", "-o"])
        .arg(out_dir.path().join("whole.bin"))
        .arg(url(server.addr, "/big.bin"));
    run_ok(cmd);
    assert!(std::fs::read(out_dir.path().join("whole.bin")).unwrap() == data);

    let mut cmd = curl();
    cmd.args(["-sS", "--fail", "-r", "1000-1999", "-D", "-", "-o"])
        .arg(out_dir.path().join("part.bin"))
        .arg(url(server.addr, "/big.bin"));
    let out = run_ok(cmd);
    let head = text(&out).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 206"), "{head}");
    assert!(
        head.contains("content-range: bytes 1000-1999/300000"),
        "{head}"
    );
    assert_eq!(
        std::fs::read(out_dir.path().join("part.bin")).unwrap(),
        &data[1000..2000]
    );

    // Resuming a file that is already complete: 416, curl treats it as done.
    let mut cmd = curl();
    cmd.args(["-sS", "-C", "-", "-w", "%{http_code}", "-o"])
        .arg(&out_file)
        .arg(url(server.addr, "/big.bin"));
    let out = run_ok(cmd);
    assert_eq!(text(&out), "416");
    assert!(std::fs::read(&out_file).unwrap() == data);
}

/// A self-signed certificate for `localhost`: (cert PEM, key PEM).
fn localhost_cert() -> (String, String) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    (cert.cert.pem(), cert.key_pair.serialize_pem())
}

/// `client_service` over HTTPS with a fresh `localhost` certificate; the
/// CA file (the certificate itself) is in the returned directory.
fn tls_server() -> (TestServer, tempfile::TempDir, PathBuf) {
    let (cert, key) = localhost_cert();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("cert.pem");
    std::fs::write(&ca, &cert).unwrap();
    let acceptor = TlsAcceptor::from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
    let server = TestServer::start_with(Http::new().tls(acceptor), |b| b, client_service());
    (server, dir, ca)
}

fn https(server: &TestServer, path: &str) -> (String, String) {
    let port = server.addr.port();
    (
        format!("localhost:{port}:127.0.0.1"),
        format!("https://localhost:{port}{path}"),
    )
}

#[test]
fn curl_https_with_the_ca_file() {
    let (server, _dir, ca) = tls_server();
    let (resolve, u) = https(&server, "/secure?a=1");
    let mut cmd = curl();
    cmd.args(["-sS", "--fail", "--cacert"])
        .arg(&ca)
        .args([
            "--resolve",
            &resolve,
            "-w",
            "\n%{http_version} %{ssl_verify_result}",
        ])
        .arg(&u);
    let out = run_ok(cmd);
    assert_eq!(text(&out), "GET /secure?a=1 len=0 body=\n1.1 0");

    // TLS 1.2 only, a POST, and two URLs on one TLS connection.
    let (_, u2) = https(&server, "/again");
    let mut cmd = curl();
    cmd.args([
        "-sS",
        "--fail",
        "-v",
        "--tlsv1.2",
        "--tls-max",
        "1.2",
        "--cacert",
    ])
    .arg(&ca)
    .args(["--resolve", &resolve, "--data-binary", "tls body"])
    .arg(&u)
    .arg(&u2);
    let out = run_ok(cmd);
    assert_eq!(
        text(&out),
        "POST /secure?a=1 len=8 body=tls bodyPOST /again len=8 body=tls body"
    );
    let err = stderr(&out);
    assert!(err.contains("TLSv1.2"), "{err}");
    assert!(err.contains("Re-using existing connection"), "{err}");

    // A chunked response with trailers over TLS.
    let (_, u3) = https(&server, "/chunked");
    let mut cmd = curl();
    cmd.args(["-sS", "--fail", "--cacert"])
        .arg(&ca)
        .args(["--resolve", &resolve])
        .arg(&u3);
    let want: String = (0..10).map(|i| format!("chunk-{i}\n")).collect();
    assert_eq!(text(&run_ok(cmd)), want);
}

#[test]
fn curl_https_without_the_ca_fails_verification() {
    let (server, _dir, ca) = tls_server();
    let (resolve, u) = https(&server, "/");
    let mut cmd = curl();
    // The system store: the self-signed certificate is in no store.
    cmd.args(["-sS", "--resolve", &resolve]).arg(&u);
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(60),
        "curl should refuse the self-signed certificate: {}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("certificate"), "{}", stderr(&out));

    // The failed handshake did not hurt the server: with the CA it works.
    let mut cmd = curl();
    cmd.args(["-sS", "--fail", "--cacert"])
        .arg(&ca)
        .args(["--resolve", &resolve])
        .arg(&u);
    assert_eq!(text(&run_ok(cmd)), "GET / len=0 body=");
}

#[test]
fn python_http_client() {
    let server = TestServer::start(client_service());
    common::python("http_client.py", server.addr);
}

#[test]
fn python_h11_strict_client() {
    assert!(
        common::python_imports("h11"),
        "python3's h11 is not installed: run `python3 -m pip install h11` \
         (.ci/run installs it)"
    );
    let server = TestServer::start(client_service());
    common::python("h11_client.py", server.addr);
}

#[test]
fn curl_haproxy_protocol_header_names_curls_own_end() {
    use spargio_service::proxy::ProxyProtocol;
    let make = tower::service_fn(|info: spargio_service::ConnInfo| async move {
        let proxy = info.proxy.clone().expect("a PROXY header");
        // curl names its own end of the connection as the client, and
        // the server's as the destination.
        let said = format!(
            "{} {} {}",
            proxy.version(),
            proxy.source().unwrap() == info.peer_addr.unwrap(),
            proxy.destination().unwrap() == info.local_addr.unwrap()
        );
        Ok::<_, Infallible>(tower::service_fn(move |_req: Request<Body>| {
            let said = said.clone();
            async move { Ok::<_, Infallible>(Response::new(Body::from(said))) }
        }))
    });
    let server = common::start_make_with(
        Http::new(),
        |b| b.proxy_protocol(ProxyProtocol::required()),
        make,
    );
    let mut cmd = curl();
    cmd.arg("-s")
        .arg("--haproxy-protocol")
        .arg(url(server.addr, "/who"));
    let out = run_ok(cmd);
    assert_eq!(text(&out), "1 true true");
    assert_eq!(server.stats.snapshot().proxy_headers, 1);
    server.stop();
}
