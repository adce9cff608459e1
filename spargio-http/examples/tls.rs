//! HTTPS with a self-signed certificate generated at start. Ctrl-C stops it
//! gracefully (open connections get 5 s to finish); a second Ctrl-C exits
//! at once.
//!
//! ```text
//! cargo run --release -p spargio-http --example tls
//! curl --cacert <the certificate path it prints> https://localhost:8443/
//! ```
//!
//! The certificate (for `localhost` and `127.0.0.1`) is written to
//! `cert.pem` in a new private directory under `$TMPDIR` (mode 0700, a
//! random name, so no other user can plant or read anything there), whose
//! path the example prints so clients can trust it. The directory is
//! removed when the server has stopped (a second Ctrl-C, which exits at
//! once, leaves it behind). `ADDR` picks another address (default
//! `127.0.0.1:8443`).

#[path = "support/mod.rs"]
mod support;

use std::convert::Infallible;
use std::fs::Permissions;
use std::os::unix::fs::PermissionsExt;

use http::{Request, Response};
use spargio_http::tls::TlsAcceptor;
use spargio_http::{Body, Http, Server};

#[spargio_rt::main]
async fn main(handle: spargio_rt::RuntimeHandle) -> Result<(), support::Failure> {
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
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

    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:8443".to_string());
    let server = Server::builder()
        .shutdown_timeout(support::SHUTDOWN_TIMEOUT)
        .bind(&handle, addr.as_str())
        .map_err(|e| support::listen_error(&addr, "ADDR", e))?
        .with_graceful_shutdown(support::ctrl_c()?);
    let port = server.local_addr().port();
    println!("https on https://localhost:{port}/ ; ctrl-c stops it");
    println!("certificate: {}", cert_path.display());
    println!(
        "try: curl --cacert {} https://localhost:{port}/",
        cert_path.display()
    );
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
