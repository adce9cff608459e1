//! What can go wrong on a WebSocket: the handshake, the peer's frames,
//! and the connection under them.

use std::fmt;
use std::io;

use http::{header, HeaderValue, Response, StatusCode};

use super::message::{close_code, CloseCode};
use crate::Body;

/// A rule of RFC 6455 the peer broke; the connection is closed with the
/// [`close_code`](Self::close_code) it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A reserved header bit was set (no extension was negotiated).
    ReservedBits,
    /// An opcode RFC 6455 does not define.
    UnknownOpcode(u8),
    /// A close, ping or pong frame without FIN.
    FragmentedControl,
    /// A close, ping or pong frame longer than 125 bytes.
    ControlTooLong,
    /// A 64-bit frame length with its most significant bit set.
    LengthOverflow,
    /// A client frame that was not masked, or a server frame that was.
    BadMasking,
    /// A continuation frame with no message to continue.
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message was unfinished.
    UnfinishedMessage,
    /// A text message, or a close reason, that is not UTF-8.
    InvalidUtf8,
    /// A close frame with a one-byte body, or a code no endpoint may send.
    InvalidClose,
    /// A frame longer than the configured `max_frame_size`.
    FrameTooLarge,
    /// A message longer than the configured `max_message_size`.
    MessageTooLarge,
}

impl ProtocolError {
    /// The close code sent to the peer for this error (1002, 1007 or 1009).
    pub fn close_code(self) -> CloseCode {
        match self {
            ProtocolError::InvalidUtf8 => close_code::INVALID,
            ProtocolError::FrameTooLarge | ProtocolError::MessageTooLarge => close_code::SIZE,
            _ => close_code::PROTOCOL,
        }
    }

    /// The close reason sent with [`close_code`](Self::close_code).
    pub(crate) fn reason(self) -> &'static str {
        match self {
            ProtocolError::ReservedBits => "reserved bits set",
            ProtocolError::UnknownOpcode(_) => "unknown opcode",
            ProtocolError::FragmentedControl => "fragmented control frame",
            ProtocolError::ControlTooLong => "control frame over 125 bytes",
            ProtocolError::LengthOverflow => "frame length overflow",
            ProtocolError::BadMasking => "frame masking is wrong for its direction",
            ProtocolError::UnexpectedContinuation => "continuation without a message",
            ProtocolError::UnfinishedMessage => "new message inside a fragmented one",
            ProtocolError::InvalidUtf8 => "text is not UTF-8",
            ProtocolError::InvalidClose => "invalid close frame",
            ProtocolError::FrameTooLarge => "frame too large",
            ProtocolError::MessageTooLarge => "message too large",
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::UnknownOpcode(op) => write!(f, "unknown opcode {op:#x}"),
            other => f.write_str(other.reason()),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// Why a WebSocket operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum WsError {
    /// The peer broke the protocol; the connection was closed with the
    /// error's close code (as far as it could still be sent).
    Protocol(ProtocolError),
    /// Reading or writing the connection failed, or the peer closed it
    /// without a close frame.
    Io(io::Error),
    /// A send after this side's close frame went out, or after the
    /// connection ended.
    AlreadyClosed,
    /// A ping, pong or close message longer than 125 bytes (a close's is
    /// its code and reason) was given to send.
    ControlTooLong,
    /// A close with a code no endpoint may send (see
    /// [`close_code::is_sendable`]) was given to send.
    InvalidCloseCode(CloseCode),
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WsError::Protocol(e) => write!(f, "websocket protocol error: {e}"),
            WsError::Io(e) => write!(f, "websocket connection error: {e}"),
            WsError::AlreadyClosed => f.write_str("the websocket is closed"),
            WsError::ControlTooLong => f.write_str("a control message over 125 bytes"),
            WsError::InvalidCloseCode(code) => write!(f, "close code {code} may not be sent"),
        }
    }
}

impl std::error::Error for WsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WsError::Protocol(e) => Some(e),
            WsError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for WsError {
    fn from(e: io::Error) -> WsError {
        WsError::Io(e)
    }
}

impl From<ProtocolError> for WsError {
    fn from(e: ProtocolError) -> WsError {
        WsError::Protocol(e)
    }
}

/// Why a request cannot be upgraded to a WebSocket; its
/// [`response`](Self::response) tells the client.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The method is not GET (405).
    MethodNotGet,
    /// `Connection` does not list `upgrade`, or `Upgrade` does not name
    /// `websocket` (426).
    NotWebSocketUpgrade,
    /// `Sec-WebSocket-Version` is missing or not 13 (426, with
    /// `Sec-WebSocket-Version: 13`).
    UnsupportedVersion,
    /// `Sec-WebSocket-Key` is missing, repeated, or not the base64 of 16
    /// bytes (400).
    InvalidKey,
    /// The connection cannot be switched: the request carries no
    /// [`OnUpgrade`](crate::upgrade::OnUpgrade) (an HTTP/1.0 request, one
    /// already upgraded, or a server that is not spargio's) (426).
    NotUpgradable,
}

impl HandshakeError {
    /// The status this refusal is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            HandshakeError::MethodNotGet => StatusCode::METHOD_NOT_ALLOWED,
            HandshakeError::InvalidKey => StatusCode::BAD_REQUEST,
            HandshakeError::NotWebSocketUpgrade
            | HandshakeError::UnsupportedVersion
            | HandshakeError::NotUpgradable => StatusCode::UPGRADE_REQUIRED,
        }
    }

    /// The response that refuses the handshake: the status, the headers
    /// RFC 6455 and RFC 9110 ask for (`Allow` on a 405, `Upgrade:
    /// websocket` on every 426, `Sec-WebSocket-Version` when the version
    /// was refused) and the reason as text.
    pub fn response(&self) -> Response<Body> {
        let mut resp = Response::new(Body::from(format!("{self}\n")));
        *resp.status_mut() = self.status();
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        match self {
            HandshakeError::MethodNotGet => {
                headers.insert(header::ALLOW, HeaderValue::from_static("GET"));
            }
            HandshakeError::UnsupportedVersion => {
                headers.insert(
                    header::SEC_WEBSOCKET_VERSION,
                    HeaderValue::from_static("13"),
                );
            }
            _ => {}
        }
        if self.status() == StatusCode::UPGRADE_REQUIRED {
            // A 426 names the protocol to upgrade to (RFC 9110 §15.5.22).
            headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        }
        resp
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HandshakeError::MethodNotGet => "a websocket handshake must be a GET request",
            HandshakeError::NotWebSocketUpgrade => {
                "this resource needs a websocket upgrade (Connection: upgrade, Upgrade: websocket)"
            }
            HandshakeError::UnsupportedVersion => "Sec-WebSocket-Version must be 13",
            HandshakeError::InvalidKey => {
                "Sec-WebSocket-Key must be one base64-encoded 16-byte value"
            }
            HandshakeError::NotUpgradable => "this connection cannot be upgraded",
        })
    }
}

impl std::error::Error for HandshakeError {}

/// Why [`connect`](super::connect) or [`connect_with`](super::connect_with)
/// did not open a WebSocket. The connection, if one was made, is closed,
/// except for [`NotSwitched`](Self::NotSwitched): its response holds the
/// connection until the body is read to its end (a keep-alive answer then
/// goes back to the client's pool) or dropped.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URI does not parse.
    InvalidUri(http::Error),
    /// The request cannot be a handshake (not a GET, a URI that is not
    /// absolute `ws`, `wss`, `http` or `https`, subprotocols offered that
    /// are not tokens or are offered twice).
    InvalidRequest(&'static str),
    /// Connecting, or sending the request, or reading the answer failed.
    Http(crate::ClientError),
    /// The server answered without switching (a redirect, 401, 426...):
    /// its whole response, body still to read.
    NotSwitched(Box<Response<Body>>),
    /// The server switched but broke the handshake's rules (RFC 6455
    /// §4.1): what was wrong.
    InvalidResponse(&'static str),
    /// The connection failed or closed before it was handed over.
    Upgrade(crate::upgrade::UpgradeError),
}

impl ConnectError {
    /// The status of a server's answer that did not switch.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ConnectError::NotSwitched(response) => Some(response.status()),
            _ => None,
        }
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::InvalidUri(e) => write!(f, "invalid websocket uri: {e}"),
            ConnectError::InvalidRequest(what) => {
                write!(f, "not a websocket handshake request: {what}")
            }
            ConnectError::Http(e) => write!(f, "websocket handshake failed: {e}"),
            ConnectError::NotSwitched(response) => write!(
                f,
                "the server did not switch to websocket: it answered {}",
                response.status()
            ),
            ConnectError::InvalidResponse(what) => {
                write!(f, "invalid websocket handshake response: {what}")
            }
            ConnectError::Upgrade(e) => write!(f, "websocket handshake failed: {e}"),
        }
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnectError::InvalidUri(e) => Some(e),
            ConnectError::Http(e) => Some(e),
            ConnectError::Upgrade(e) => Some(e),
            _ => None,
        }
    }
}
