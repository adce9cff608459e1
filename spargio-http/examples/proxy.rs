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
//! with a host, a port from 1 to 65535 if any, and no path, or the proxy
//! does not start.
//!
//! Hop-by-hop headers (including the legacy `Proxy-Connection`) are dropped
//! both ways and `Via` is added, naming this proxy process
//! (`1.1 spargio-<pid>-<random>`). A request whose `Via` already names it
//! has come back (`UPSTREAM` leads, directly or not, to the proxy itself):
//! it gets `508 Loop Detected` at once. Other proxies, spargio ones
//! included, may be chained freely. The upstream learns about the client
//! from `X-Forwarded-For` (the client's IP appended to any list the request
//! already carries), `X-Forwarded-Host` (the host the client asked for)
//! and `X-Forwarded-Proto: http`.
//!
//! What is bounded in time, and what is not: connecting to the upstream
//! may take 3 s. Until the response head arrives, the upstream may keep
//! the proxy waiting for 30 s at a stretch: 30 s with the whole request
//! sent and no head, or 30 s in which it takes none of the upload bytes
//! the client has sent. An upload as such is not limited: while the
//! client keeps sending and the upstream keeps taking, it may last as long
//! as it needs (a silent client is the server's business: its read
//! timeouts apply). Once the head has arrived, the rest of an upload still
//! going out is not watched any more, and a response body that brings
//! nothing for 30 s while the client waits for it is cut: the client sees
//! its connection close before the body's end.
//!
//! The client gets `504 Gateway Timeout` when the upstream runs out of
//! one of these limits before the response head, `400 Bad Request` when
//! its own request body fails while it is being forwarded, `502 Bad
//! Gateway` for any other upstream failure, `508 Loop Detected` as above,
//! and `405 Method Not Allowed` for `CONNECT` (this proxy opens no
//! tunnels).

#[path = "support/mod.rs"]
mod support;

use std::convert::Infallible;
use std::hash::{BuildHasher, RandomState};
use std::io;
use std::net::IpAddr;
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::{select, Either};
use http::header::{self, HeaderName, HeaderValue};
use http::uri::{Authority, Scheme};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use http_body::{Frame, SizeHint};
use spargio_http::{Body, BodyError, Client, ClientError, Http, Server};
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

/// How long connecting to the upstream may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How long the upstream may keep the proxy waiting at a stretch: before
/// the response head (see [`Turn`]), and between the bytes of the
/// response body.
const UPSTREAM_STALL: Duration = Duration::from_secs(30);

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
        if let Some(port) = port_text(&authority) {
            // The `http` crate takes any text after the `:` here.
            if port.is_empty() {
                return Err("the port is missing after ':'".to_string());
            }
            // Digits only: `u16::from_str` would take a leading `+`.
            let digits = port.bytes().all(|b| b.is_ascii_digit());
            if !digits || !matches!(port.parse::<u16>(), Ok(1..)) {
                return Err(format!("the port {port:?} is not a number from 1 to 65535"));
            }
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err("a path or query is not supported".to_string());
        }
        Ok(Upstream { scheme, authority })
    }
}

/// The text after the `:` that follows the host in `authority` (empty for
/// `host:`), or `None` if the host has no `:` after it. A `]` ends an IPv6
/// host, whose own `:`s are not a port's.
fn port_text(authority: &Authority) -> Option<&str> {
    let text = authority.as_str();
    // Any user info ends at the last `@`.
    let host_port = text.rfind('@').map_or(text, |at| &text[at + 1..]);
    let after_host = host_port
        .rfind(']')
        .map_or(host_port, |end| &host_port[end + 1..]);
    after_host.rfind(':').map(|colon| &after_host[colon + 1..])
}

/// This process's name in `Via` (its `received-by`): `spargio-`, the
/// process id and a random number, so that a request that comes back here
/// is told apart from one that only passed another spargio proxy.
fn own_via_name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        // A new `RandomState` has random keys: what it makes of any value
        // is a random number, without a crate for random numbers.
        let random = RandomState::new().hash_one(std::process::id());
        format!("spargio-{}-{random:016x}", std::process::id())
    })
}

/// Whether `headers` show that the request already passed this proxy: an
/// entry of its `Via` (`protocol received-by [comment]`, comma-separated)
/// received by [`own_via_name`].
fn came_back(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::VIA)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|entry| entry.split_whitespace().nth(1) == Some(own_via_name()))
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
    // Always a valid value: the name is ASCII letters, digits and `-`.
    if let Ok(via) = HeaderValue::try_from(format!("1.1 {}", own_via_name())) {
        headers.append(header::VIA, via);
    }
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

/// Whose turn it is while a request waits for its response head: since
/// when the upstream has been the one keeping it waiting (`Some`), or
/// `None` while it waits for the client's next upload bytes.
///
/// The upstream's turn starts when the request is made (connecting,
/// sending the head), whenever [`Upload`] hands over upload bytes (or the
/// end of the upload), and whenever the client's next bytes arrive before
/// the exchange has asked for them again (it is busy writing what it has
/// to the upstream, which is not taking it); it ends each time the
/// exchange asks for more. So it measures the upstream's own delays only:
/// an upload that goes on for long, slowly or not, never runs it out.
struct Turn(Mutex<Option<Instant>>);

impl Turn {
    /// A turn that is the upstream's from now: nothing is sent yet.
    fn new() -> Turn {
        Turn(Mutex::new(Some(Instant::now())))
    }

    /// Since when the upstream has kept the request waiting, if it has.
    fn since(&self) -> Option<Instant> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The upstream's turn from now, whether or not it was before (new
    /// bytes for it to take: its clock starts again).
    fn to_upstream(&self) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
    }

    /// The upstream's turn from now, unless it already is: then its clock
    /// keeps running from the earlier start.
    fn to_upstream_unless_already(&self) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert_with(Instant::now);
    }

    /// The client's turn.
    fn to_client(&self) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

/// Resolves once the upstream has kept the request waiting for `limit` in
/// one stretch (see [`Turn`]).
async fn upstream_stalled(turn: &Turn, limit: Duration) {
    loop {
        let now = Instant::now();
        let wake_at = match turn.since() {
            Some(since) if now.duration_since(since) >= limit => return,
            Some(since) => since + limit,
            // A turn the upstream takes from now on ends `limit` from now
            // at the earliest.
            None => now + limit,
        };
        spargio_rt::time::sleep_until(wake_at).await;
    }
}

/// The client's request body on its way to the upstream, telling [`Turn`]
/// who is keeping the upload waiting. Its frames, end and size hint are
/// the client's body's own.
struct Upload {
    body: Body,
    turn: Arc<Turn>,
    /// The waker last handed to the client's body, and the exchange's
    /// waker it wraps (reused while the exchange polls with that one).
    waker: Option<Arc<MarkTurn>>,
}

/// The waker the client's body gets: its wake-up means the client's next
/// bytes (or the end, or an error) are there for the exchange to take, so
/// the wait is the upstream's from then on; it then wakes the exchange.
struct MarkTurn {
    turn: Arc<Turn>,
    exchange: Waker,
}

impl Wake for MarkTurn {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.turn.to_upstream_unless_already();
        self.exchange.wake_by_ref();
    }
}

impl http_body::Body for Upload {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        // The exchange asks for more: what it had is on its way.
        this.turn.to_client();
        let mark = match &this.waker {
            Some(mark) if mark.exchange.will_wake(cx.waker()) => mark.clone(),
            _ => {
                let mark = Arc::new(MarkTurn {
                    turn: this.turn.clone(),
                    exchange: cx.waker().clone(),
                });
                this.waker = Some(mark.clone());
                mark
            }
        };
        let waker = Waker::from(mark);
        let poll = Pin::new(&mut this.body).poll_frame(&mut Context::from_waker(&waker));
        if poll.is_ready() {
            // Bytes (or the end) for the upstream to take.
            this.turn.to_upstream();
        }
        poll
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Forwards `req`, from the client at `peer`, to `upstream` and returns
/// the upstream's response (hop-by-hop headers dropped), or the status
/// that says why there is none: 504, 400, 502 or 508 as the module docs
/// say, 405 for `CONNECT`.
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
    if came_back(req.headers()) {
        eprintln!("loop: a request came back to this proxy (does UPSTREAM lead to it?)");
        return Ok(status(
            StatusCode::LOOP_DETECTED,
            "the request came back to this proxy\n",
        ));
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
    let turn = Arc::new(Turn::new());
    let body = Upload {
        body,
        turn: turn.clone(),
        waker: None,
    };
    let response = pin!(client.request(Request::from_parts(parts, body)));
    let stalled = pin!(upstream_stalled(&turn, UPSTREAM_STALL));
    let response = match select(response, stalled).await {
        Either::Left((response, _)) => response,
        Either::Right(((), _)) => {
            // Dropping the request abandons it and closes its connection.
            eprintln!("upstream error: no response head, kept waiting for {UPSTREAM_STALL:?}");
            return Ok(status(StatusCode::GATEWAY_TIMEOUT, "upstream timed out\n"));
        }
    };
    match response {
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
    // No `request_timeout`: it would bound the whole upload as well (it
    // runs from the start of the request to the response head). The time
    // to the head is bounded in `forward` instead, by the upstream's
    // stalls only. No `response_timeout` either: it starts only once the
    // request is fully written, so it cannot see an upstream that stops
    // taking the upload (the last bytes included), and the wait after the
    // upload is already within `forward`'s bound.
    let client = Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .body_read_timeout(UPSTREAM_STALL)
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
