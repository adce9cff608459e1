//! The client's side of the opening handshake (RFC 6455 §4.1): the
//! request, the checks on the server's `101`, and the socket over the
//! switched connection.

use std::time::Duration;

use http::header::{self, HeaderMap};
use http::uri::Scheme;
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri};

use super::codec::Role;
use super::config::WebSocketConfig;
use super::error::ConnectError;
use super::keys::{accept_value, lists_token, new_key};
use super::socket::WebSocket;
use crate::{upgrade, Body, Client};

/// Opens a WebSocket to `uri` (`ws://`, `wss://`, or their `http://` and
/// `https://` forms) with a new [`Client`] and the default
/// [`WebSocketConfig`]; see [`connect_with`] for subprotocols, extra
/// headers, limits or a shared client.
///
/// Resolves to the socket and the server's `101` head once the handshake
/// is complete. The whole handshake (connection, TLS, the `101`) must be
/// done within [`CONNECT_TIMEOUT`], or it fails with a timeout; for
/// another bound, use [`connect_with`] and a client of your own.
///
/// ```no_run
/// use spargio_http::ws::{self, Message};
///
/// spargio_rt::run(|_| async {
///     let (mut socket, _response) = ws::connect("ws://127.0.0.1:8080/echo").await?;
///     socket.send(Message::text("hello")).await?;
///     if let Some(Ok(Message::Text(echo))) = socket.recv().await {
///         println!("the server said {echo}");
///     }
///     socket.close().await?;
///     Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
/// })
/// .unwrap()
/// .unwrap();
/// ```
///
/// # Errors
/// See [`ConnectError`].
pub async fn connect<U>(uri: U) -> Result<(WebSocket, Response<()>), ConnectError>
where
    Uri: TryFrom<U>,
    <Uri as TryFrom<U>>::Error: Into<http::Error>,
{
    connect_within(uri, CONNECT_TIMEOUT).await
}

/// How long [`connect`]'s handshake may take: a server that accepts the
/// connection and never answers must not hold the caller for ever.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// [`connect`], with the handshake bounded by `limit`.
async fn connect_within<U>(
    uri: U,
    limit: Duration,
) -> Result<(WebSocket, Response<()>), ConnectError>
where
    Uri: TryFrom<U>,
    <Uri as TryFrom<U>>::Error: Into<http::Error>,
{
    let uri = Uri::try_from(uri).map_err(|e| ConnectError::InvalidUri(e.into()))?;
    let mut request = Request::new(());
    *request.uri_mut() = uri;
    let client = Client::builder().request_timeout(limit).build();
    connect_with(&client, request, WebSocketConfig::default()).await
}

/// Opens a WebSocket with `request` on `client`.
///
/// `request` is a `GET` to a `ws://`, `wss://`, `http://` or `https://`
/// URI; its headers go out with it (`Authorization`, `Origin`, cookies),
/// and its `Sec-WebSocket-Protocol` values are the subprotocols offered,
/// in order of preference. The handshake's own fields (`Connection`,
/// `Upgrade`, `Sec-WebSocket-Version` and a fresh `Sec-WebSocket-Key`)
/// replace any the request has. No extension is offered. The client's
/// timeouts bound the handshake; `wss://` uses its TLS settings.
///
/// The server's answer is checked as RFC 6455 §4.1 says: `101`,
/// `Upgrade: websocket`, `Connection: upgrade`, the `Sec-WebSocket-Accept`
/// for the key sent, no extension, and at most one subprotocol, one that
/// was offered ([`WebSocket::protocol`] tells which).
///
/// ```no_run
/// use http::Request;
/// use spargio_http::ws::{self, WebSocketConfig};
/// use spargio_http::Client;
///
/// spargio_rt::run(|_| async {
///     let request = Request::get("wss://example.com/chat")
///         .header("sec-websocket-protocol", "v2.chat, chat")
///         .header("authorization", "Bearer token")
///         .body(())
///         .unwrap();
///     let config = WebSocketConfig::default().max_message_size(1 << 20);
///     let (socket, _) = ws::connect_with(&Client::new(), request, config).await?;
///     println!("speaking {:?}", socket.protocol());
///     Ok::<_, ws::ConnectError>(())
/// })
/// .unwrap()
/// .unwrap();
/// ```
///
/// # Errors
/// See [`ConnectError`].
pub async fn connect_with(
    client: &Client,
    request: Request<()>,
    config: WebSocketConfig,
) -> Result<(WebSocket, Response<()>), ConnectError> {
    let (request, key, offered) = handshake_request(request)?;
    let mut response = client
        .request(request.map(|()| Body::empty()))
        .await
        .map_err(ConnectError::Http)?;
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Err(ConnectError::NotSwitched(Box::new(response)));
    }
    let protocol = check_response(response.headers(), &key, &offered)?;
    // A failed check drops the response, and with it the connection.
    let io = upgrade::on(&mut response)
        .await
        .map_err(ConnectError::Upgrade)?;
    let socket = WebSocket::from_raw(io, Role::Client, config).with_protocol(protocol);
    Ok((socket, response.map(|_| ())))
}

/// The subprotocols a request offers, one per entry.
type Offered = Vec<HeaderValue>;

/// `request` made into a handshake: its URI in `http(s)` form and the
/// handshake's fields; the key it sends and the subprotocols it offers.
fn handshake_request(
    request: Request<()>,
) -> Result<(Request<()>, HeaderValue, Offered), ConnectError> {
    let (mut parts, ()) = request.into_parts();
    if parts.method != Method::GET {
        return Err(ConnectError::InvalidRequest("the handshake must be a GET"));
    }
    parts.uri = http_uri(parts.uri)?;
    let offered = offered_protocols(&parts.headers)?;
    let key = new_key();
    let headers = &mut parts.headers;
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(
        header::SEC_WEBSOCKET_VERSION,
        HeaderValue::from_static("13"),
    );
    headers.insert(header::SEC_WEBSOCKET_KEY, key.clone());
    headers.remove(header::SEC_WEBSOCKET_EXTENSIONS);
    Ok((Request::from_parts(parts, ()), key, offered))
}

/// `uri` with `ws` as `http` and `wss` as `https`.
fn http_uri(uri: Uri) -> Result<Uri, ConnectError> {
    // Schemes are case-insensitive (RFC 3986 §3.1); `http` only
    // normalizes its own two.
    let scheme = uri.scheme_str().map(str::to_ascii_lowercase);
    let scheme = match scheme.as_deref() {
        Some("ws" | "http") => Scheme::HTTP,
        Some("wss" | "https") => Scheme::HTTPS,
        _ => {
            return Err(ConnectError::InvalidRequest(
                "the URI must be absolute, with ws, wss, http or https as its scheme",
            ))
        }
    };
    let mut parts = uri.into_parts();
    parts.scheme = Some(scheme);
    Uri::from_parts(parts).map_err(|e| ConnectError::InvalidUri(e.into()))
}

/// Each subprotocol the request's `Sec-WebSocket-Protocol` fields list.
fn offered_protocols(headers: &HeaderMap) -> Result<Offered, ConnectError> {
    let mut offered = Vec::new();
    for value in headers.get_all(header::SEC_WEBSOCKET_PROTOCOL) {
        for token in value.as_bytes().split(|&b| b == b',') {
            let token = token.trim_ascii();
            if token.is_empty() || !token.iter().all(|&b| is_token_byte(b)) {
                return Err(ConnectError::InvalidRequest(
                    "a subprotocol that is not a token",
                ));
            }
            let token = HeaderValue::from_bytes(token).expect("token bytes are valid in a header");
            if offered.contains(&token) {
                return Err(ConnectError::InvalidRequest("a subprotocol offered twice"));
            }
            offered.push(token);
        }
    }
    Ok(offered)
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Checks a `101`'s fields against the request's `key` and `offered`
/// subprotocols; the subprotocol the server chose.
fn check_response(
    headers: &HeaderMap,
    key: &HeaderValue,
    offered: &[HeaderValue],
) -> Result<Option<HeaderValue>, ConnectError> {
    let invalid = ConnectError::InvalidResponse;
    // One Upgrade, `websocket` and nothing else (RFC 6455 §4.1).
    let mut upgrades = headers.get_all(header::UPGRADE).iter();
    match (upgrades.next(), upgrades.next()) {
        (Some(upgrade), None)
            if upgrade
                .as_bytes()
                .trim_ascii()
                .eq_ignore_ascii_case(b"websocket") => {}
        _ => return Err(invalid("Upgrade is not websocket")),
    }
    if !lists_token(headers, &header::CONNECTION, "upgrade") {
        return Err(invalid("Connection does not list upgrade"));
    }
    let mut accepts = headers.get_all(header::SEC_WEBSOCKET_ACCEPT).iter();
    match (accepts.next(), accepts.next()) {
        (Some(accept), None) if accept.as_bytes() == accept_value(key.as_bytes()).as_bytes() => {}
        (None, _) => return Err(invalid("no Sec-WebSocket-Accept")),
        _ => return Err(invalid("Sec-WebSocket-Accept does not match the key")),
    }
    // An empty field names no extension.
    let extension = headers
        .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        .any(|v| {
            v.as_bytes()
                .split(|&b| b == b',')
                .any(|e| !e.trim_ascii().is_empty())
        });
    if extension {
        return Err(invalid("an extension the client did not offer"));
    }
    let mut chosen = headers.get_all(header::SEC_WEBSOCKET_PROTOCOL).iter();
    match (chosen.next(), chosen.next()) {
        (None, _) => Ok(None),
        (Some(protocol), None) if offered.contains(protocol) => Ok(Some(protocol.clone())),
        _ => Err(invalid("a subprotocol the client did not offer")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uri: &str) -> Request<()> {
        Request::get(uri).body(()).unwrap()
    }

    /// The fields of a good `101` for `key`.
    fn switched(key: &HeaderValue) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::UPGRADE, HeaderValue::from_static("WebSocket"));
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(header::SEC_WEBSOCKET_ACCEPT, accept_value(key.as_bytes()));
        h
    }

    #[test]
    fn connect_gives_up_on_a_server_that_never_answers() {
        spargio_rt::run_with(spargio_rt::Runtime::builder().shards(1), |_| async {
            let listener = spargio_rt::net::TcpListener::bind("127.0.0.1:0")
                .await
                .unwrap();
            let addr = listener.local_addr().unwrap();
            // Accepted and held, never answered.
            let held = spargio_rt::spawn(async move { listener.accept().await });
            let uri = format!("ws://{addr}/");
            let res = spargio_rt::time::timeout(
                Duration::from_secs(20),
                connect_within(uri.as_str(), Duration::from_millis(100)),
            )
            .await
            .expect("the handshake's own bound ends the wait");
            match res {
                Err(ConnectError::Http(crate::ClientError::Timeout { .. })) => {}
                other => panic!("expected a timeout, got {:?}", other.map(|_| ())),
            }
            drop(held);
        })
        .unwrap();
    }

    #[test]
    fn the_request_gets_the_handshake_fields_and_an_http_uri() {
        let mut req = request("wss://example.com:8443/chat?room=1");
        req.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        req.headers_mut().insert(
            header::SEC_WEBSOCKET_EXTENSIONS,
            HeaderValue::from_static("permessage-deflate"),
        );
        req.headers_mut().insert(
            header::ORIGIN,
            HeaderValue::from_static("https://a.example"),
        );
        let (req, key, offered) = handshake_request(req).unwrap();
        assert_eq!(req.uri(), "https://example.com:8443/chat?room=1");
        let h = req.headers();
        assert_eq!(h[header::CONNECTION], "upgrade");
        assert_eq!(h[header::UPGRADE], "websocket");
        assert_eq!(h[header::SEC_WEBSOCKET_VERSION], "13");
        assert_eq!(h[header::SEC_WEBSOCKET_KEY], key);
        assert_eq!(h[header::ORIGIN], "https://a.example");
        assert!(!h.contains_key(header::SEC_WEBSOCKET_EXTENSIONS));
        assert!(offered.is_empty());
        let (plain, _, _) = handshake_request(request("ws://example.com/")).unwrap();
        assert_eq!(plain.uri(), "http://example.com/");
        let (upper, _, _) = handshake_request(request("WSS://example.com/")).unwrap();
        assert_eq!(upper.uri(), "https://example.com/");
    }

    #[test]
    fn requests_that_cannot_be_handshakes_are_refused() {
        let post = Request::post("ws://example.com/").body(()).unwrap();
        for (req, why) in [
            (post, "the handshake must be a GET"),
            (request("/relative"), "the URI must be absolute"),
            (request("ftp://example.com/"), "the URI must be absolute"),
        ] {
            match handshake_request(req) {
                Err(ConnectError::InvalidRequest(what)) => assert!(what.starts_with(why), "{what}"),
                other => panic!("{why}: {other:?}"),
            }
        }
        for bad in ["chat, chat", "a b", "chat,,v2"] {
            let mut req = request("ws://example.com/");
            req.headers_mut().insert(
                header::SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_static(bad),
            );
            assert!(
                matches!(handshake_request(req), Err(ConnectError::InvalidRequest(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn offered_subprotocols_are_read_in_order_from_every_field() {
        let mut req = request("ws://example.com/");
        req.headers_mut().append(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("v2.chat , chat"),
        );
        req.headers_mut().append(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("superchat"),
        );
        let (_, _, offered) = handshake_request(req).unwrap();
        assert_eq!(offered, ["v2.chat", "chat", "superchat"]);
    }

    #[test]
    fn a_good_switch_passes_and_tells_the_chosen_subprotocol() {
        let key = new_key();
        assert_eq!(check_response(&switched(&key), &key, &[]).unwrap(), None);
        let offered = [
            HeaderValue::from_static("v2.chat"),
            HeaderValue::from_static("chat"),
        ];
        let mut h = switched(&key);
        h.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("chat"),
        );
        assert_eq!(check_response(&h, &key, &offered).unwrap().unwrap(), "chat");
        // Connection may list other tokens too, and an empty extensions
        // field names none.
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, upgrade"),
        );
        h.insert(
            header::SEC_WEBSOCKET_EXTENSIONS,
            HeaderValue::from_static(""),
        );
        assert!(check_response(&h, &key, &offered).is_ok());
    }

    #[test]
    fn each_broken_rule_of_the_switch_is_refused() {
        let key = new_key();
        let offered = [HeaderValue::from_static("chat")];
        let other_key = new_key();
        type Breaks = Box<dyn Fn(&mut HeaderMap)>;
        let cases: [(&str, Breaks); 10] = [
            ("no upgrade", Box::new(|h| drop(h.remove(header::UPGRADE)))),
            (
                "upgrade to something else",
                Box::new(|h| {
                    h.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
                }),
            ),
            (
                "websocket among other upgrades",
                Box::new(|h| {
                    h.insert(header::UPGRADE, HeaderValue::from_static("h2c, websocket"));
                }),
            ),
            (
                "two upgrade fields",
                Box::new(|h| {
                    h.append(header::UPGRADE, HeaderValue::from_static("websocket"));
                }),
            ),
            (
                "no connection",
                Box::new(|h| drop(h.remove(header::CONNECTION))),
            ),
            (
                "no accept",
                Box::new(|h| drop(h.remove(header::SEC_WEBSOCKET_ACCEPT))),
            ),
            (
                "the accept of another key",
                Box::new(move |h| {
                    h.insert(
                        header::SEC_WEBSOCKET_ACCEPT,
                        accept_value(other_key.as_bytes()),
                    );
                }),
            ),
            (
                "two accepts",
                Box::new(|h| {
                    let accept = h[header::SEC_WEBSOCKET_ACCEPT].clone();
                    h.append(header::SEC_WEBSOCKET_ACCEPT, accept);
                }),
            ),
            (
                "an extension",
                Box::new(|h| {
                    h.insert(
                        header::SEC_WEBSOCKET_EXTENSIONS,
                        HeaderValue::from_static("permessage-deflate"),
                    );
                }),
            ),
            (
                "a subprotocol not offered",
                Box::new(|h| {
                    h.insert(
                        header::SEC_WEBSOCKET_PROTOCOL,
                        HeaderValue::from_static("superchat"),
                    );
                }),
            ),
        ];
        for (what, break_it) in cases {
            let mut h = switched(&key);
            break_it(&mut h);
            assert!(
                matches!(
                    check_response(&h, &key, &offered),
                    Err(ConnectError::InvalidResponse(_))
                ),
                "{what} passed"
            );
        }
        // Two subprotocols, even both offered.
        let mut h = switched(&key);
        h.append(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("chat"),
        );
        h.append(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("chat"),
        );
        assert!(check_response(&h, &key, &offered).is_err());
    }
}
