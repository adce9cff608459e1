//! The small plain-text responses the server writes on its own: malformed
//! requests (400), limits (408, 413, 414, 431), and failed handlers (500,
//! 503).

use bytes::BytesMut;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, StatusCode, Version};

use crate::h1::{self, ResponseFraming};

/// Appends a complete `status` response with a one-line text body; to a
/// `HEAD` request (`head_only`), the same head with no body after it.
pub(crate) fn write(
    buf: &mut BytesMut,
    version: Version,
    status: StatusCode,
    keep_alive: bool,
    head_only: bool,
) {
    let reason = status.canonical_reason().unwrap_or("Error");
    let mut headers = HeaderMap::with_capacity(1);
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    let len = reason.len() as u64 + 1;
    let (framing, head_length) = if head_only {
        (ResponseFraming::NoBody, Some(len))
    } else {
        (ResponseFraming::Length(len), None)
    };
    let head = h1::encode_response_head(
        buf,
        version,
        status,
        &headers,
        framing,
        head_length,
        keep_alive,
    );
    // Our own headers are always valid; should encoding ever refuse them,
    // nothing is appended and the connection just closes.
    if head.is_ok() && !head_only {
        buf.extend_from_slice(reason.as_bytes());
        buf.extend_from_slice(b"\n");
    }
}
