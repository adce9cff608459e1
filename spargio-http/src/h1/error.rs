//! Error types of the codec: one per direction and concern.

use std::fmt;

use http::StatusCode;

/// Why a request head was refused, with the status code to answer it with
/// (see [`RequestError::status`]). After any of these the connection should
/// be closed: the peer's framing can no longer be trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// The head is not valid HTTP/1.x (400 Bad Request); the text says what
    /// is wrong, e.g. `"content-length is not plain digits"`.
    Malformed(&'static str),
    /// The request target is longer than [`Limits::max_uri_len`](super::Limits::max_uri_len)
    /// (414 URI Too Long).
    UriTooLong,
    /// The head is larger than [`Limits::max_head_bytes`](super::Limits::max_head_bytes)
    /// (431 Request Header Fields Too Large).
    HeadTooLarge,
    /// The head has more than [`Limits::max_headers`](super::Limits::max_headers)
    /// fields (431 Request Header Fields Too Large).
    TooManyHeaders,
    /// The request line names a protocol version other than HTTP/1.0 and
    /// HTTP/1.1, e.g. the HTTP/2 connection preface (505 HTTP Version Not
    /// Supported).
    UnsupportedVersion,
    /// The request uses a feature this codec does not implement (501 Not
    /// Implemented): a transfer coding other than `chunked`.
    NotImplemented(&'static str),
}

impl RequestError {
    /// The status code of the response that reports this error to the client.
    pub fn status(&self) -> StatusCode {
        match self {
            RequestError::Malformed(_) => StatusCode::BAD_REQUEST,
            RequestError::UriTooLong => StatusCode::URI_TOO_LONG,
            RequestError::HeadTooLarge | RequestError::TooManyHeaders => {
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
            }
            RequestError::UnsupportedVersion => StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            RequestError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Malformed(what) => write!(f, "malformed request: {what}"),
            RequestError::UriTooLong => f.write_str("request target too long"),
            RequestError::HeadTooLarge => f.write_str("request head too large"),
            RequestError::TooManyHeaders => f.write_str("too many request header fields"),
            RequestError::UnsupportedVersion => f.write_str("unsupported HTTP version"),
            RequestError::NotImplemented(what) => write!(f, "not implemented: {what}"),
        }
    }
}

impl std::error::Error for RequestError {}

/// Why a response head (client side) was refused; the text says what is
/// wrong. The connection should be closed afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseError(pub &'static str);

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid response: {}", self.0)
    }
}

impl std::error::Error for ResponseError {}

/// Why a chunked body could not be decoded; the text says what is wrong.
/// The connection should be closed afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkedError(pub &'static str);

impl fmt::Display for ChunkedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid chunked body: {}", self.0)
    }
}

impl std::error::Error for ChunkedError {}

/// A head or trailer section could not be encoded, e.g. because a header
/// value contains CR, LF or NUL. Nothing was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeError(pub String);

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EncodeError {}
