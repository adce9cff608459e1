//! HTTPS with a self-signed certificate generated at start.
//!
//! ```text
//! cargo run --release -p spargio-http --example tls
//! curl --cacert /tmp/spargio-tls-example/cert.pem https://localhost:8443/
//! ```
//!
//! The certificate (for `localhost` and `127.0.0.1`) is written to
//! `$TMPDIR/spargio-tls-example/cert.pem` so clients can trust it.
//! `ADDR` picks another address (default `127.0.0.1:8443`).

use std::convert::Infallible;

use http::{Request, Response};
use spargio_http::tls::TlsAcceptor;
use spargio_http::{Body, Http, Server};

#[spargio_rt::main]
async fn main(
    handle: spargio_rt::RuntimeHandle,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    let dir = std::env::temp_dir().join("spargio-tls-example");
    std::fs::create_dir_all(&dir)?;
    let cert_path = dir.join("cert.pem");
    std::fs::write(&cert_path, cert.cert.pem())?;
    let acceptor = TlsAcceptor::from_pem(
        cert.cert.pem().as_bytes(),
        cert.key_pair.serialize_pem().as_bytes(),
    )?;

    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:8443".to_string());
    let server = Server::builder()
        .bind(&handle, addr.as_str())?
        .with_graceful_shutdown(async {
            let _ = spargio_rt::signal::ctrl_c().await;
        });
    let port = server.local_addr().port();
    println!("https on https://localhost:{port}/ ; ctrl-c stops it");
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
    Ok(())
}
