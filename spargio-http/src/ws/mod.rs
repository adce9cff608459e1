//! WebSockets (RFC 6455) on spargio's HTTP/1.1 server and client.
//!
//! A handler checks the handshake with [`WebSocketUpgrade`], answers with
//! the `101` response [`on_upgrade`](WebSocketUpgrade::on_upgrade) gives,
//! and gets a [`WebSocket`] in a task of its own once that response is
//! written. With the crate's `axum` feature, `WebSocketUpgrade` is an
//! axum extractor, so an axum WebSocket route moves over by changing its
//! imports (axum's own extractor needs hyper's connection upgrades):
//!
//! ```ignore
//! // before: use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
//! use spargio_http::ws::{Message, WebSocket, WebSocketUpgrade};
//!
//! async fn chat(ws: WebSocketUpgrade) -> impl axum::response::IntoResponse {
//!     ws.on_upgrade(|mut socket: WebSocket| async move {
//!         // Until `None`: pings, pongs and the close come through here
//!         // too, and the socket's answers to them go out as it is read.
//!         while let Some(Ok(message)) = socket.recv().await {
//!             if let Message::Text(text) = message {
//!                 if socket.send(Message::text(text)).await.is_err() {
//!                     break;
//!                 }
//!             }
//!         }
//!     })
//! }
//! ```
//!
//! What the socket does for the application: it answers pings and a close
//! (echoing the close's code), joins fragmented messages, checks that text
//! is UTF-8 and every other rule of RFC 6455 §5, and on a broken rule
//! closes with 1002, 1007 or 1009 and reports a [`ProtocolError`]. Limits
//! ([`WebSocketConfig`]) bound the frames and messages it buffers, and a
//! send waits while too much is queued. No extension is negotiated
//! (`permessage-deflate` offers are declined by not answering them).
//!
//! The client's side: [`connect`] (or [`connect_with`], for subprotocols,
//! headers, limits and a shared [`Client`](crate::Client)) makes the
//! handshake over the HTTP client, plain or TLS, and gives the same
//! [`WebSocket`], masking what it sends. [`WebSocket::from_raw`] speaks
//! either side's framing over a connection whose handshake was made
//! elsewhere.

mod codec;
mod config;
mod connect;
mod error;
mod frame;
mod handshake;
pub(crate) mod keys;
mod message;
mod socket;
mod utf8;

pub use codec::Role;
pub use config::WebSocketConfig;
pub use connect::{connect, connect_with, CONNECT_TIMEOUT};
pub use error::{ConnectError, HandshakeError, ProtocolError, WsError};
pub use handshake::WebSocketUpgrade;
pub use message::{close_code, CloseCode, CloseFrame, Message};
pub use socket::WebSocket;
pub use utf8::Utf8Bytes;

#[cfg(feature = "axum")]
mod axum_extract {
    use super::{HandshakeError, WebSocketUpgrade};

    impl<S: Send + Sync> axum_core::extract::FromRequestParts<S> for WebSocketUpgrade {
        type Rejection = HandshakeError;

        async fn from_request_parts(
            parts: &mut http::request::Parts,
            _state: &S,
        ) -> Result<WebSocketUpgrade, HandshakeError> {
            WebSocketUpgrade::from_parts(parts)
        }
    }

    impl axum_core::response::IntoResponse for HandshakeError {
        fn into_response(self) -> axum_core::response::Response {
            self.response().map(axum_core::body::Body::new)
        }
    }
}
