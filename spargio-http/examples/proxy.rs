//! A small reverse proxy on `spargio_http::Client`: every request is
//! forwarded to one upstream, bodies streamed both ways. Ctrl-C stops it
//! gracefully (open connections get 5 s to finish); a second Ctrl-C exits
//! at once.
//!
//! ```text
//! cargo run --release -p spargio-http --example serve -- .          # upstream on :8080
//! UPSTREAM=http://127.0.0.1:8080 cargo run --release -p spargio-http --example proxy
//! curl -i http://127.0.0.1:8081/README.md
//! ```
//!
//! `ADDR` is where the proxy listens (default `127.0.0.1:8081`); `UPSTREAM`
//! (default `http://127.0.0.1:8080`) must be an `http://` or `https://` URI
//! with a host and no path, or the proxy does not start.
//!
//! Hop-by-hop headers (including the legacy `Proxy-Connection`) are dropped
//! both ways and `Via` is added. The upstream learns about the client from
//! `X-Forwarded-For` (the client's IP appended to any list the request
//! already carries), `X-Forwarded-Host` (the host the client asked for)
//! and `X-Forwarded-Proto: http`. The client gets `504 Gateway Timeout` when
//! the upstream does not answer in time (3 s to connect, 30 s for the
//! response head), `400 Bad Request` when its own request body fails while
//! it is being forwarded, `502 Bad Gateway` for any other upstream failure,
//! and `405 Method Not Allowed` for `CONNECT` (this proxy opens no tunnels).

#[path = "support/mod.rs"]
mod support;

use std::convert::Infallible;
use std::io;
use std::net::IpAddr;
use std::time::Duration;

use http::header::{self, HeaderName, HeaderValue};
use http::uri::{Authority, Scheme};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use spargio_http::{Body, Client, ClientError, Http, Server};
use spargio_service::ConnInfo;

/// Headers that describe one connection, not the message: never forwarded.
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    // Not standard, but old clients send it in place of `Connection`.
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// Where every request goes: the scheme and authority of `UPSTREAM`.
#[derive(Clone)]
struct Upstream {
    scheme: Scheme,
    authority: Authority,
}

impl Upstream {
    /// Reads `UPSTREAM`: an `http://` or `https://` URI with a host, and no
    /// path (the request's own path is appended to it).
    fn parse(text: &str) -> Result<Upstream, String> {
        let uri: Uri = text.parse().map_err(|e| format!("not a URI ({e})"))?;
        let scheme = match uri.scheme() {
            Some(s) if *s == Scheme::HTTP || *s == Scheme::HTTPS => s.clone(),
            _ => return Err("the scheme must be http:// or https://".to_string()),
        };
        let authority = match uri.authority() {
            Some(a) if !a.host().is_empty() => a.clone(),
            _ => return Err("a host is missing".to_string()),
        };
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err("a path or query is not supported".to_string());
        }
        Ok(Upstream { scheme, authority })
    }
}

/// Drops the hop-by-hop headers (the fixed list and those named in
/// `Connection`) and adds `Via`.
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
    headers.append(header::VIA, HeaderValue::from_static("1.1 spargio"));
}

/// Adds the `X-Forwarded-*` headers: `peer` appended to the request's
/// `X-Forwarded-For` list (its lines joined into one), `host` as
/// `X-Forwarded-Host`, and `X-Forwarded-Proto: http`.
fn add_forwarded(headers: &mut HeaderMap, peer: Option<IpAddr>, host: Option<HeaderValue>) {
    if let Some(ip) = peer {
        let mut list = Vec::new();
        for prior in headers.get_all(&X_FORWARDED_FOR) {
            list.extend_from_slice(prior.as_bytes());
            list.extend_from_slice(b", ");
        }
        // An IPv4 client on a dual-stack socket shows as `::ffff:a.b.c.d`.
        list.extend_from_slice(ip.to_canonical().to_string().as_bytes());
        // The prior values were valid header values, joined by ", ".
        if let Ok(value) = HeaderValue::from_bytes(&list) {
            headers.insert(X_FORWARDED_FOR, value);
        }
    }
    match host {
        Some(host) => headers.insert(X_FORWARDED_HOST, host),
        None => headers.remove(X_FORWARDED_HOST),
    };
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
}

/// Forwards `req`, from the client at `peer`, to `upstream` and returns
/// the upstream's response (hop-by-hop headers dropped), or the status
/// that says why there is none: 504, 400 or 502 as the module docs say,
/// 405 for `CONNECT`.
async fn forward(
    client: Client,
    upstream: Upstream,
    peer: Option<IpAddr>,
    req: Request<Body>,
) -> Result<Response<Body>, Infallible> {
    if req.method() == Method::CONNECT {
        let mut resp = status(StatusCode::METHOD_NOT_ALLOWED, "CONNECT is not proxied\n");
        resp.headers_mut().insert(
            header::ALLOW,
            HeaderValue::from_static("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
        );
        return Ok(resp);
    }
    let (mut parts, body) = req.into_parts();
    // The host the client asked for: the request-target's authority when
    // it is in absolute form (`GET http://host/path`), else `Host`.
    let host = match parts.uri.authority() {
        Some(authority) => HeaderValue::from_str(authority.as_str()).ok(),
        None => parts.headers.get(header::HOST).cloned(),
    };
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    parts.uri = match Uri::builder()
        .scheme(upstream.scheme)
        .authority(upstream.authority)
        .path_and_query(path)
        .build()
    {
        Ok(uri) => uri,
        Err(_) => return Ok(status(StatusCode::BAD_REQUEST, "bad request target\n")),
    };
    // The client sets `Host` from the URI, that is the upstream's; the one
    // the client asked for travels as `X-Forwarded-Host`.
    parts.headers.remove(header::HOST);
    strip_hop_by_hop(&mut parts.headers);
    add_forwarded(&mut parts.headers, peer, host);
    match client.request(Request::from_parts(parts, body)).await {
        Ok(resp) => {
            let (mut parts, body) = resp.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Ok(Response::from_parts(parts, body))
        }
        Err(e) => {
            eprintln!("upstream error: {e}");
            Ok(if e.is_timeout() {
                status(StatusCode::GATEWAY_TIMEOUT, "upstream timed out\n")
            } else if matches!(e, ClientError::Body { .. }) {
                // The body being forwarded is the client's own request body.
                status(StatusCode::BAD_REQUEST, "the request body failed\n")
            } else {
                status(StatusCode::BAD_GATEWAY, "upstream unavailable\n")
            })
        }
    }
}

/// A response with status `code` and the plain-text body `text`.
fn status(code: StatusCode, text: &'static str) -> Response<Body> {
    let mut resp = Response::new(Body::from(text));
    *resp.status_mut() = code;
    resp
}

#[spargio_rt::main]
async fn main(handle: spargio_rt::RuntimeHandle) -> Result<(), support::Failure> {
    let upstream_text =
        std::env::var("UPSTREAM").unwrap_or_else(|_| "http://127.0.0.1:8080".to_string());
    let upstream = Upstream::parse(&upstream_text).map_err(|why| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("UPSTREAM={upstream_text:?} is not usable: {why} (e.g. UPSTREAM=http://127.0.0.1:8080)"),
        )
    })?;
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:8081".to_string());
    let client = Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .request_timeout(Duration::from_secs(30))
        .build();
    let server = Server::builder()
        .shutdown_timeout(support::SHUTDOWN_TIMEOUT)
        .bind(&handle, addr.as_str())
        .map_err(|e| support::listen_error(&addr, "ADDR", e))?
        .with_graceful_shutdown(support::ctrl_c()?);
    println!(
        "proxy: http://{}/ -> {upstream_text} ; ctrl-c stops it",
        server.local_addr()
    );
    // One service per connection, built with the connection's facts: its
    // requests are forwarded with the client's address.
    let make = tower::service_fn(move |info: ConnInfo| {
        let (client, upstream) = (client.clone(), upstream.clone());
        let peer = info.peer_addr.map(|a| a.ip());
        async move {
            Ok::<_, Infallible>(tower::service_fn(move |req: Request<Body>| {
                forward(client.clone(), upstream.clone(), peer, req)
            }))
        }
    });
    let report = server.serve(Http::new(), make).await?;
    println!("stopped: {report:?}");
    Ok(())
}
