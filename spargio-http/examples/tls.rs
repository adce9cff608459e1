//! HTTPS with a self-signed certificate generated at start. Ctrl-C stops it
//! gracefully (open connections get 5 s to finish); a second Ctrl-C exits
//! at once.
//!
//! ```text
//! cargo run --release -p spargio-http --example tls
//! curl --cacert <the certificate path it prints> https://localhost:8443/
//! ```
//!
//! `ADDR` picks another address (default `127.0.0.1:8443`). The
//! certificate is for `localhost`, `127.0.0.1` and the address the server
//! is bound to (unless that is unspecified, such as `0.0.0.0`); the URL and
//! the `curl` command printed name the bound address, or `localhost` for
//! `127.0.0.1` and unspecified addresses. It is written to `cert.pem` in a
//! new private directory under `$TMPDIR` (mode 0700, a random name, so no
//! other user can plant or read anything there), whose path the example
//! prints so clients can trust it. The directory is removed when the server
//! has stopped (a second Ctrl-C, which exits at once, leaves it behind).

#[path = "support/mod.rs"]
mod support;

use std::convert::Infallible;
use std::fs::Permissions;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;

use http::{Request, Response};
use spargio_http::tls::TlsAcceptor;
use spargio_http::{Body, Http, Server};

/// The names the certificate is for: `localhost`, `127.0.0.1`, and `ip`,
/// the address the server is bound to, unless it is unspecified (no client
/// connects to `0.0.0.0`) or already there.
fn certificate_names(ip: IpAddr) -> Vec<String> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let ip = ip.to_canonical();
    if !ip.is_unspecified() && ip != IpAddr::V4(Ipv4Addr::LOCALHOST) {
        names.push(ip.to_string());
    }
    names
}

/// The base URL a client on this machine reaches the server at `local`
/// with, and that the certificate covers: `localhost` for `127.0.0.1` and
/// for an unspecified address (which takes loopback connections too), else
/// the bound IP itself.
fn base_url(local: SocketAddr) -> String {
    let ip = local.ip().to_canonical();
    let port = local.port();
    if ip.is_unspecified() || ip == IpAddr::V4(Ipv4Addr::LOCALHOST) {
        format!("https://localhost:{port}/")
    } else {
        // `SocketAddr` puts an IPv6 address in brackets, as URLs want it.
        format!("https://{}/", SocketAddr::new(ip, port))
    }
}

#[spargio_rt::main]
async fn main(handle: spargio_rt::RuntimeHandle) -> Result<(), support::Failure> {
    // Bound first: the certificate names the address actually bound.
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:8443".to_string());
    let server = Server::builder()
        .shutdown_timeout(support::SHUTDOWN_TIMEOUT)
        .bind(&handle, addr.as_str())
        .map_err(|e| support::listen_error(&addr, "ADDR", e))?
        .with_graceful_shutdown(support::ctrl_c()?);
    let local = server.local_addr();
    let cert = rcgen::generate_simple_self_signed(certificate_names(local.ip()))?;
    // A new directory with a random name (creating it fails rather than
    // reuse anything already there), readable by this user only. It lives
    // until the end of `main`, so as long as the server: dropping it
    // removes the directory and the certificate.
    let dir = tempfile::Builder::new()
        .prefix("spargio-tls-example-")
        .permissions(Permissions::from_mode(0o700))
        .tempdir()?;
    let cert_path = dir.path().join("cert.pem");
    std::fs::write(&cert_path, cert.cert.pem())?;
    let acceptor = TlsAcceptor::from_pem(
        cert.cert.pem().as_bytes(),
        cert.key_pair.serialize_pem().as_bytes(),
    )?;

    let url = base_url(local);
    println!("https on {url} ; ctrl-c stops it");
    println!("certificate: {}", cert_path.display());
    println!("try: curl --cacert {} {url}", cert_path.display());
    let service = tower::service_fn(|req: Request<Body>| async move {
        let text = format!("hello over TLS: {} {}\n", req.method(), req.uri());
        Ok::<_, Infallible>(Response::new(Body::from(text)))
    });
    let report = server
        .serve_service(Http::new().tls(acceptor), service)
        .await?;
    println!("stopped: {report:?}");
    drop(dir);
    Ok(())
}
