//! A small reverse proxy on `spargio_http::Client`: every request is
//! forwarded to one upstream, bodies streamed both ways.
//!
//! ```text
//! cargo run --release -p spargio-http --example serve -- .          # upstream on :8080
//! UPSTREAM=http://127.0.0.1:8080 cargo run --release -p spargio-http --example proxy
//! curl -i http://127.0.0.1:8081/README.md
//! ```
//!
//! `ADDR` is where the proxy listens (default `127.0.0.1:8081`). Hop-by-hop
//! headers are dropped both ways, `Via` is added, and an upstream that
//! cannot be reached gets the client a `502 Bad Gateway`.

use std::convert::Infallible;
use std::time::Duration;

use http::header::{self, HeaderName};
use http::{HeaderMap, Request, Response, StatusCode, Uri};
use spargio_http::{Body, Client, Http, Server};

/// Headers that describe one connection, not the message: never forwarded.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Headers named in `Connection` are hop-by-hop too.
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in HOP_BY_HOP.iter().chain(named.iter()) {
        headers.remove(name);
    }
    headers.append(header::VIA, "1.1 spargio".parse().unwrap());
}

async fn forward(
    client: Client,
    upstream: Uri,
    req: Request<Body>,
) -> Result<Response<Body>, Infallible> {
    let (mut parts, body) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let target = format!(
        "{}://{}{}",
        upstream.scheme_str().unwrap_or("http"),
        upstream.authority().map(|a| a.as_str()).unwrap_or(""),
        path
    );
    parts.uri = match target.parse() {
        Ok(uri) => uri,
        Err(_) => return Ok(status(StatusCode::BAD_REQUEST, "bad request target\n")),
    };
    parts.headers.remove(header::HOST);
    strip_hop_by_hop(&mut parts.headers);
    match client.request(Request::from_parts(parts, body)).await {
        Ok(resp) => {
            let (mut parts, body) = resp.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Ok(Response::from_parts(parts, body))
        }
        Err(e) => {
            eprintln!("upstream error: {e}");
            Ok(status(StatusCode::BAD_GATEWAY, "upstream unavailable\n"))
        }
    }
}

fn status(code: StatusCode, text: &'static str) -> Response<Body> {
    let mut resp = Response::new(Body::from(text));
    *resp.status_mut() = code;
    resp
}

#[spargio_rt::main]
async fn main(handle: spargio_rt::RuntimeHandle) -> std::io::Result<()> {
    let upstream: Uri = std::env::var("UPSTREAM")
        .unwrap_or_else(|_| "http://127.0.0.1:8080".to_string())
        .parse()
        .map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("UPSTREAM: {e}"))
        })?;
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:8081".to_string());
    let client = Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .request_timeout(Duration::from_secs(30))
        .build();
    let server = Server::builder()
        .bind(&handle, addr.as_str())?
        .with_graceful_shutdown(async {
            let _ = spargio_rt::signal::ctrl_c().await;
        });
    println!(
        "proxy: http://{}/ -> {upstream} ; ctrl-c stops it",
        server.local_addr()
    );
    let service =
        tower::service_fn(move |req: Request<Body>| forward(client.clone(), upstream.clone(), req));
    let report = server.serve_service(Http::new(), service).await?;
    println!("stopped: {report:?}");
    Ok(())
}
