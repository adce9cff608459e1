//! The server's side of the opening handshake (RFC 6455 §4.2): checking
//! the request, choosing a subprotocol, the `101` response, and handing
//! the switched connection to the application.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;

use http::header::{self, HeaderMap};
use http::{HeaderValue, Method, Request, Response, StatusCode};

use super::codec::Role;
use super::config::WebSocketConfig;
use super::error::HandshakeError;
use super::keys::{accept_value, is_base64_of_16_bytes, lists_token};
use super::socket::WebSocket;
use crate::upgrade::{self, OnUpgrade, UpgradeError};
use crate::Body;

/// A checked WebSocket handshake request, waiting for the application to
/// accept it with [`on_upgrade`](Self::on_upgrade).
///
/// With the `axum` feature it is an axum extractor, as axum's own
/// `WebSocketUpgrade` is on hyper; a request that is not a valid handshake
/// is refused with [`HandshakeError`]'s response.
///
/// ```no_run
/// use http::{Request, Response};
/// use spargio_http::ws::{Message, WebSocketUpgrade};
/// use spargio_http::Body;
///
/// async fn handle(mut req: Request<Body>) -> Result<Response<Body>, std::convert::Infallible> {
///     let ws = match WebSocketUpgrade::from_request(&mut req) {
///         Ok(ws) => ws,
///         Err(refused) => return Ok(refused.response()),
///     };
///     Ok(ws.protocols(["chat"]).on_upgrade(|mut socket| async move {
///         // Echo text and binary messages until the client closes.
///         while let Some(Ok(message)) = socket.recv().await {
///             if matches!(message, Message::Text(_) | Message::Binary(_))
///                 && socket.send(message).await.is_err()
///             {
///                 break;
///             }
///         }
///     }))
/// }
/// ```
pub struct WebSocketUpgrade {
    accept: HeaderValue,
    offered: Option<HeaderValue>,
    /// `offered`, one subprotocol per entry.
    requested: Vec<HeaderValue>,
    selected: Option<HeaderValue>,
    on_upgrade: OnUpgrade,
    config: WebSocketConfig,
    on_failed: Option<FailedCallback>,
}

/// What [`WebSocketUpgrade::on_failed_upgrade`] runs.
type FailedCallback = Box<dyn FnOnce(UpgradeError) + Send>;

impl fmt::Debug for WebSocketUpgrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketUpgrade")
            .field("offered", &self.offered)
            .field("selected", &self.selected)
            .field("config", &self.config)
            .field("on_failed_upgrade", &self.on_failed.is_some())
            .finish_non_exhaustive()
    }
}

impl WebSocketUpgrade {
    /// Checks that `req` is a WebSocket handshake this server can accept
    /// and takes its pending upgrade out of its extensions.
    ///
    /// Checked, in this order: the method is GET; `Connection` lists
    /// `upgrade` and `Upgrade` lists `websocket` (both ASCII
    /// case-insensitive); `Sec-WebSocket-Version` is 13; there is one
    /// `Sec-WebSocket-Key`, the base64 of 16 bytes; the connection can be
    /// switched (the request came through spargio's HTTP/1.1 server). On
    /// an error the request is left as it was.
    pub fn from_request<B>(req: &mut Request<B>) -> Result<WebSocketUpgrade, HandshakeError> {
        let (accept, offered) = check(req.method(), req.headers())?;
        Self::taking(upgrade::on(req), accept, offered)
    }

    /// [`from_request`](Self::from_request) for a request taken apart (an
    /// extractor's `Parts`).
    pub fn from_parts(
        parts: &mut http::request::Parts,
    ) -> Result<WebSocketUpgrade, HandshakeError> {
        let (accept, offered) = check(&parts.method, &parts.headers)?;
        Self::taking(upgrade::on_parts(parts), accept, offered)
    }

    fn taking(
        on_upgrade: OnUpgrade,
        accept: HeaderValue,
        offered: Option<HeaderValue>,
    ) -> Result<WebSocketUpgrade, HandshakeError> {
        if !on_upgrade.is_requested() {
            return Err(HandshakeError::NotUpgradable);
        }
        let requested = offered
            .iter()
            .flat_map(|v| v.as_bytes().split(|&b| b == b','))
            .map(<[u8]>::trim_ascii)
            .filter(|p| !p.is_empty())
            .filter_map(|p| HeaderValue::from_bytes(p).ok())
            .collect();
        Ok(WebSocketUpgrade {
            accept,
            offered,
            requested,
            selected: None,
            on_upgrade,
            config: WebSocketConfig::default(),
            on_failed: None,
        })
    }

    /// The subprotocols this server speaks, preferred first: the first of
    /// them that the client offered (`Sec-WebSocket-Protocol`, compared
    /// exactly) is chosen and named in the response. If the client offered
    /// none of them, none is chosen (the client decides whether to go on).
    pub fn protocols<I>(mut self, protocols: I) -> WebSocketUpgrade
    where
        I: IntoIterator,
        I::Item: Into<Cow<'static, str>>,
    {
        let requested = &self.requested;
        self.selected = protocols
            .into_iter()
            .map(Into::into)
            .find(|p| requested.iter().any(|r| r.as_bytes() == p.as_bytes()))
            .and_then(|p| HeaderValue::from_str(&p).ok());
        self
    }

    /// Each subprotocol the client offered, in its order of preference.
    pub fn requested_protocols(&self) -> impl Iterator<Item = &HeaderValue> {
        self.requested.iter()
    }

    /// Chooses `protocol` as the connection's subprotocol, whatever the
    /// client offered (the application's own choice, say among
    /// [`requested_protocols`](Self::requested_protocols)); it replaces
    /// what [`protocols`](Self::protocols) chose.
    pub fn set_selected_protocol(&mut self, protocol: HeaderValue) {
        self.selected = Some(protocol);
    }

    /// The subprotocol chosen by [`protocols`](Self::protocols) or
    /// [`set_selected_protocol`](Self::set_selected_protocol), if any.
    pub fn selected_protocol(&self) -> Option<&HeaderValue> {
        self.selected.as_ref()
    }

    /// The client's `Sec-WebSocket-Protocol` value, if it sent one.
    pub fn offered_protocols(&self) -> Option<&HeaderValue> {
        self.offered.as_ref()
    }

    /// Sets the connection's limits (see [`WebSocketConfig`]).
    pub fn config(mut self, config: WebSocketConfig) -> WebSocketUpgrade {
        self.config = config;
        self
    }

    /// Sets [`WebSocketConfig::max_message_size`].
    pub fn max_message_size(mut self, bytes: usize) -> WebSocketUpgrade {
        self.config.max_message_size = bytes;
        self
    }

    /// Sets [`WebSocketConfig::max_frame_size`].
    pub fn max_frame_size(mut self, bytes: usize) -> WebSocketUpgrade {
        self.config.max_frame_size = bytes;
        self
    }

    /// Sets [`WebSocketConfig::write_buffer_limit`].
    pub fn write_buffer_limit(mut self, bytes: usize) -> WebSocketUpgrade {
        self.config.write_buffer_limit = bytes;
        self
    }

    /// [`write_buffer_limit`](Self::write_buffer_limit) by axum's name for
    /// it: past this many unwritten bytes a send waits.
    pub fn max_write_buffer_size(self, bytes: usize) -> WebSocketUpgrade {
        self.write_buffer_limit(bytes)
    }

    /// Runs `callback` with the reason if the connection is never switched
    /// after [`on_upgrade`](Self::on_upgrade) accepted the handshake: the
    /// connection closed or failed before the `101` was written, or a
    /// middleware replaced the `101` with another response. Without it
    /// that case passes silently (the socket's callback is not called).
    ///
    /// ```no_run
    /// # fn demo(ws: spargio_http::ws::WebSocketUpgrade) -> http::Response<spargio_http::Body> {
    /// ws.on_failed_upgrade(|error| eprintln!("websocket upgrade failed: {error}"))
    ///     .on_upgrade(|socket| async move { drop(socket) })
    /// # }
    /// ```
    pub fn on_failed_upgrade<C>(mut self, callback: C) -> WebSocketUpgrade
    where
        C: FnOnce(UpgradeError) + Send + 'static,
    {
        self.on_failed = Some(Box::new(callback));
        self
    }

    /// Accepts the handshake: returns the `101 Switching Protocols`
    /// response for the handler to return, and spawns a stealable task
    /// that runs `callback` with the socket once the server has written
    /// that response. If the connection closes first, `callback` is not
    /// called ([`on_failed_upgrade`](Self::on_failed_upgrade) hears of
    /// it). Call it on the runtime (a handler always runs there).
    pub fn on_upgrade<F, Fut>(self, callback: F) -> Response<Body>
    where
        F: FnOnce(WebSocket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut resp = Response::new(Body::empty());
        *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = resp.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, self.accept);
        if let Some(protocol) = &self.selected {
            headers.insert(header::SEC_WEBSOCKET_PROTOCOL, protocol.clone());
        }
        let (on_upgrade, config, selected) = (self.on_upgrade, self.config, self.selected);
        let on_failed = self.on_failed;
        drop(spargio_rt::spawn(async move {
            match on_upgrade.await {
                Ok(io) => {
                    let socket =
                        WebSocket::from_raw(io, Role::Server, config).with_protocol(selected);
                    callback(socket).await;
                }
                Err(e) => {
                    if let Some(on_failed) = on_failed {
                        on_failed(e);
                    }
                }
            }
        }));
        resp
    }
}

/// Checks a handshake's method and fields; its `Sec-WebSocket-Accept`
/// value and the offered subprotocols.
fn check(
    method: &Method,
    headers: &HeaderMap,
) -> Result<(HeaderValue, Option<HeaderValue>), HandshakeError> {
    if method != Method::GET {
        return Err(HandshakeError::MethodNotGet);
    }
    if !lists_token(headers, &header::CONNECTION, "upgrade")
        || !lists_token(headers, &header::UPGRADE, "websocket")
    {
        return Err(HandshakeError::NotWebSocketUpgrade);
    }
    let version = headers.get_all(header::SEC_WEBSOCKET_VERSION);
    if version.iter().count() != 1 || version.iter().any(|v| v.as_bytes().trim_ascii() != b"13") {
        return Err(HandshakeError::UnsupportedVersion);
    }
    let mut keys = headers.get_all(header::SEC_WEBSOCKET_KEY).iter();
    let (Some(key), None) = (keys.next(), keys.next()) else {
        return Err(HandshakeError::InvalidKey);
    };
    let key = key.as_bytes().trim_ascii();
    if !is_base64_of_16_bytes(key) {
        return Err(HandshakeError::InvalidKey);
    }
    let offered = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .map(|v| v.as_bytes())
        .collect::<Vec<_>>()
        .join(&b", "[..]);
    let offered = (!offered.is_empty())
        .then(|| HeaderValue::from_bytes(&offered).ok())
        .flatten();
    Ok((accept_value(key), offered))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handshake_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        h.insert(header::UPGRADE, HeaderValue::from_static("WebSocket"));
        h.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        h.insert(
            header::SEC_WEBSOCKET_KEY,
            HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
        );
        h
    }

    #[test]
    fn the_rfc_key_gets_the_rfc_accept_value() {
        assert_eq!(
            accept_value(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        let (accept, offered) = check(&Method::GET, &handshake_headers()).unwrap();
        assert_eq!(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(offered, None);
    }

    #[test]
    fn each_broken_rule_is_its_own_refusal() {
        assert_eq!(
            check(&Method::POST, &handshake_headers()),
            Err(HandshakeError::MethodNotGet)
        );
        let mut h = handshake_headers();
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
        assert_eq!(
            check(&Method::GET, &h),
            Err(HandshakeError::NotWebSocketUpgrade)
        );
        let mut h = handshake_headers();
        h.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
        assert_eq!(
            check(&Method::GET, &h),
            Err(HandshakeError::NotWebSocketUpgrade)
        );
        let mut h = handshake_headers();
        h.insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("8"));
        assert_eq!(
            check(&Method::GET, &h),
            Err(HandshakeError::UnsupportedVersion)
        );
        let mut h = handshake_headers();
        h.remove(header::SEC_WEBSOCKET_VERSION);
        assert_eq!(
            check(&Method::GET, &h),
            Err(HandshakeError::UnsupportedVersion)
        );
        for bad in [
            "",
            "dGhlIHNhbXBsZSBub25jZQ",
            "dGhlIHNhbXBsZSBub25jZR==",
            "dGhlIHNhbXBsZSBub25j!Q==",
            "dGhlIHNhbXBsZSBub25jZQ==dGhl",
        ] {
            let mut h = handshake_headers();
            h.insert(
                header::SEC_WEBSOCKET_KEY,
                HeaderValue::from_str(bad).unwrap(),
            );
            assert_eq!(
                check(&Method::GET, &h),
                Err(HandshakeError::InvalidKey),
                "{bad:?}"
            );
        }
        let mut h = handshake_headers();
        h.append(
            header::SEC_WEBSOCKET_KEY,
            HeaderValue::from_static("AAAAAAAAAAAAAAAAAAAAAA=="),
        );
        assert_eq!(check(&Method::GET, &h), Err(HandshakeError::InvalidKey));
    }

    #[test]
    fn offered_protocols_from_every_field_are_joined() {
        let mut h = handshake_headers();
        h.append(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("a, b"),
        );
        h.append(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("c"),
        );
        let (_, offered) = check(&Method::GET, &h).unwrap();
        assert_eq!(offered.unwrap(), "a, b, c");
    }

    #[test]
    fn a_request_the_server_cannot_switch_is_refused() {
        let mut req = Request::get("/ws").body(()).unwrap();
        *req.headers_mut() = handshake_headers();
        assert_eq!(
            WebSocketUpgrade::from_request(&mut req).unwrap_err(),
            HandshakeError::NotUpgradable
        );
    }

    #[test]
    fn the_first_server_protocol_the_client_offered_is_chosen() {
        let (on_upgrade, _pending) = crate::upgrade::pending();
        let ws = WebSocketUpgrade::taking(
            on_upgrade,
            accept_value(b"dGhlIHNhbXBsZSBub25jZQ=="),
            Some(HeaderValue::from_static("chat, superchat")),
        )
        .unwrap();
        let ws = ws.protocols(["v2.chat", "superchat", "chat"]);
        assert_eq!(ws.selected_protocol().unwrap(), "superchat");
        let mut ws = ws.protocols(["other"]);
        assert_eq!(ws.selected_protocol(), None);
        let requested: Vec<_> = ws.requested_protocols().collect();
        assert_eq!(requested, ["chat", "superchat"]);
        let second = requested[1].clone();
        ws.set_selected_protocol(second);
        assert_eq!(ws.selected_protocol().unwrap(), "superchat");

        // An offer with a byte outside ASCII still chooses among the rest.
        let (on_upgrade, _pending) = crate::upgrade::pending();
        let ws = WebSocketUpgrade::taking(
            on_upgrade,
            accept_value(b"dGhlIHNhbXBsZSBub25jZQ=="),
            Some(HeaderValue::from_bytes(b"chat, \xe9x").unwrap()),
        )
        .unwrap();
        assert_eq!(ws.protocols(["chat"]).selected_protocol().unwrap(), "chat");
    }
}
