//! WebSocket messages and close frames, in the shape axum 0.8's have.

use std::str::Utf8Error;

use bytes::Bytes;

use super::utf8::Utf8Bytes;

/// One WebSocket message, whole (fragments are joined on receipt).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message (UTF-8, checked on receipt).
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
    /// A ping (at most 125 bytes). A received ping is answered with a pong
    /// by the socket itself; it is also handed on, for applications that
    /// watch them.
    Ping(Bytes),
    /// A pong (at most 125 bytes): the answer to a ping, or a heartbeat.
    Pong(Bytes),
    /// A close, with its code and reason if it had one. The socket answers
    /// a received close itself; after it nothing more is received.
    Close(Option<CloseFrame>),
}

impl Message {
    /// A text message.
    pub fn text(text: impl Into<Utf8Bytes>) -> Message {
        Message::Text(text.into())
    }

    /// A binary message.
    pub fn binary(data: impl Into<Bytes>) -> Message {
        Message::Binary(data.into())
    }

    /// The payload's bytes (a close's is its reason here).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Message::Text(s) => s.as_bytes(),
            Message::Binary(b) | Message::Ping(b) | Message::Pong(b) => b,
            Message::Close(frame) => frame.as_ref().map_or(&[][..], |f| f.reason.as_bytes()),
        }
    }

    /// The payload (a close's is its reason).
    pub fn into_data(self) -> Bytes {
        match self {
            Message::Text(s) => s.into(),
            Message::Binary(b) | Message::Ping(b) | Message::Pong(b) => b,
            Message::Close(frame) => frame.map_or_else(Bytes::new, |f| f.reason.into()),
        }
    }

    /// The payload as text: a text message's, or any other's if it is
    /// UTF-8 (a close's is its reason).
    ///
    /// # Errors
    /// A payload that is not UTF-8.
    pub fn into_text(self) -> Result<Utf8Bytes, Utf8Error> {
        match self {
            Message::Text(s) => Ok(s),
            Message::Close(frame) => Ok(frame.map(|f| f.reason).unwrap_or_default()),
            Message::Binary(b) | Message::Ping(b) | Message::Pong(b) => Utf8Bytes::try_from(b),
        }
    }

    /// [`into_text`](Self::into_text) without taking the message.
    ///
    /// # Errors
    /// A payload that is not UTF-8.
    pub fn to_text(&self) -> Result<&str, Utf8Error> {
        match self {
            Message::Text(s) => Ok(s.as_str()),
            Message::Close(frame) => Ok(frame.as_ref().map_or("", |f| f.reason.as_str())),
            Message::Binary(b) | Message::Ping(b) | Message::Pong(b) => std::str::from_utf8(b),
        }
    }
}

impl From<String> for Message {
    fn from(s: String) -> Message {
        Message::Text(s.into())
    }
}

impl From<&str> for Message {
    fn from(s: &str) -> Message {
        Message::Text(s.into())
    }
}

impl From<Utf8Bytes> for Message {
    fn from(s: Utf8Bytes) -> Message {
        Message::Text(s)
    }
}

impl From<Bytes> for Message {
    fn from(b: Bytes) -> Message {
        Message::Binary(b)
    }
}

impl From<Vec<u8>> for Message {
    fn from(b: Vec<u8>) -> Message {
        Message::Binary(b.into())
    }
}

impl From<&[u8]> for Message {
    fn from(b: &[u8]) -> Message {
        Message::Binary(Bytes::copy_from_slice(b))
    }
}

impl From<Message> for Vec<u8> {
    /// The payload (a close's is its reason).
    fn from(message: Message) -> Vec<u8> {
        message.into_data().into()
    }
}

/// A close status code (RFC 6455 §7.4): a number, as in axum 0.8, with
/// the assigned ones in [`close_code`].
pub type CloseCode = u16;

/// A close frame's code and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// Why the connection closes (see [`close_code`]).
    pub code: CloseCode,
    /// A human-readable reason; with the code's two bytes at most 125
    /// bytes of UTF-8.
    pub reason: Utf8Bytes,
}

impl CloseFrame {
    /// A close frame with `code` and `reason`.
    pub fn new(code: CloseCode, reason: impl Into<Utf8Bytes>) -> CloseFrame {
        CloseFrame {
            code,
            reason: reason.into(),
        }
    }
}

/// The close codes RFC 6455 §7.4.1 and IANA assign, by the names axum
/// 0.8 gives them.
///
/// ```
/// use spargio_http::ws::close_code;
/// assert_eq!(close_code::NORMAL, 1000);
/// assert!(close_code::is_sendable(4000));
/// assert!(!close_code::is_sendable(close_code::STATUS));
/// ```
pub mod close_code {
    /// 1000: the purpose of the connection is fulfilled.
    pub const NORMAL: u16 = 1000;
    /// 1001: the endpoint is going away (a server shutting down, a page
    /// navigated away from).
    pub const AWAY: u16 = 1001;
    /// 1002: the peer broke the protocol.
    pub const PROTOCOL: u16 = 1002;
    /// 1003: a kind of data the endpoint cannot accept.
    pub const UNSUPPORTED: u16 = 1003;
    /// 1005: no code was given (never sent; what a close without a body
    /// stands for).
    pub const STATUS: u16 = 1005;
    /// 1006: the connection ended without a close frame (never sent).
    pub const ABNORMAL: u16 = 1006;
    /// 1007: data inconsistent with its type (text that is not UTF-8).
    pub const INVALID: u16 = 1007;
    /// 1008: a message that breaks the endpoint's policy.
    pub const POLICY: u16 = 1008;
    /// 1009: a message too big to process.
    pub const SIZE: u16 = 1009;
    /// 1010: the client needed an extension the server did not agree to.
    pub const EXTENSION: u16 = 1010;
    /// 1011: the server met an unexpected condition.
    pub const ERROR: u16 = 1011;
    /// 1012: the server is restarting.
    pub const RESTART: u16 = 1012;
    /// 1013: the server is overloaded; try again later.
    pub const AGAIN: u16 = 1013;

    /// Whether an endpoint may put `code` in a close frame: 1000-1003,
    /// 1007-1014 and 3000-4999. 1004-1006 and 1015 are reserved (1005 and
    /// 1006 stand for "no code" and "no close frame" and are never sent),
    /// and everything else below 3000 is unassigned.
    pub fn is_sendable(code: u16) -> bool {
        matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_come_out_as_data_and_as_text() {
        let close = Message::Close(Some(CloseFrame::new(close_code::AWAY, "later")));
        assert_eq!(close.to_text(), Ok("later"));
        assert_eq!(close.as_bytes(), b"later");
        assert_eq!(close.into_data(), "later");
        assert_eq!(Message::Close(None).to_text(), Ok(""));
        assert_eq!(Message::text("é").into_data(), "é".as_bytes());
        let binary = Message::binary(&b"plain"[..]);
        assert_eq!(binary.to_text(), Ok("plain"));
        assert_eq!(binary.into_text().unwrap(), "plain");
        let not_text = Message::Ping(Bytes::from_static(b"\xff\xfe"));
        assert!(not_text.to_text().is_err());
        assert!(not_text.into_text().is_err());
    }

    #[test]
    fn text_converts_from_strings_and_compares_with_them() {
        let owned = String::from("héllo");
        for text in [
            Utf8Bytes::from(owned.clone()),
            Utf8Bytes::from(&owned),
            Utf8Bytes::from("héllo"),
            Utf8Bytes::try_from(owned.clone().into_bytes()).unwrap(),
        ] {
            assert_eq!(text, "héllo");
            assert_eq!(text, owned);
            assert_eq!(format!("{text}/{text:?}"), "héllo/\"héllo\"");
            assert_eq!(String::from(text.clone()), owned);
            assert_eq!(Message::from(text), Message::from("héllo"));
        }
    }
}
