//! Client side: parsing a response head and deciding how its body is framed.

use bytes::Bytes;
use http::{header, HeaderMap, Method, StatusCode, Version};

use super::fields::{slots, stack_slots};
use super::head::{scan_headers, ScanError};
use super::request::is_version_like;
use super::{Limits, ResponseError};

/// How the body of a response is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseBodyLength {
    /// No body: HEAD request, 1xx, 204, 304, or a 2xx answer to CONNECT.
    Empty,
    /// Exactly this many bytes follow the head (`Content-Length`).
    Length(u64),
    /// A chunked body follows; decode it with
    /// [`ChunkedDecoder`](super::ChunkedDecoder).
    Chunked,
    /// The body runs until the server closes the connection.
    CloseDelimited,
}

/// A parsed and validated response head.
#[derive(Debug)]
pub struct ResponseHead {
    /// The status code (100..=999).
    pub status: StatusCode,
    /// [`Version::HTTP_10`] or [`Version::HTTP_11`].
    pub version: Version,
    /// The header fields in received order, names lowercased (without
    /// Content-Length when Transfer-Encoding framed the body).
    pub headers: HeaderMap,
    /// How the body is framed.
    pub body: ResponseBodyLength,
    /// Whether the connection can carry another request after this
    /// response's body: HTTP/1.1 unless `Connection: close`, HTTP/1.0 only
    /// with `Connection: keep-alive`; never for close-delimited bodies,
    /// when both Transfer-Encoding and Content-Length were present, or for
    /// an HTTP/1.0 response with Transfer-Encoding (even one without a body).
    pub keep_alive: bool,
}

/// Parses a response head from the start of `buf`, for a request made with
/// `req_method` (HEAD requests and 2xx answers to CONNECT have no body).
///
/// Returns `Ok(None)` when incomplete, `Ok(Some((head, n)))` when the head
/// took the first `n` bytes. 1xx responses are returned like any other (the
/// caller skips `100 Continue` and parses again after `n`).
///
/// Rules: the same Content-Length checks as requests; the only transfer
/// coding accepted is a single `chunked`, last (anything else is refused,
/// since the body could not be decoded); Transfer-Encoding on HTTP/1.0 is
/// refused; with both Transfer-Encoding and Content-Length the body is
/// chunked and the connection is not reused; without either the body is
/// close-delimited. Heads over `limits.max_head_bytes` or with more than
/// `limits.max_headers` fields are refused.
pub fn parse_response(
    buf: &[u8],
    req_method: &Method,
    limits: &Limits,
) -> Result<Option<(ResponseHead, usize)>, ResponseError> {
    let scan = &buf[..buf.len().min(limits.max_head_bytes)];
    let mut stack = stack_slots();
    let mut heap = Vec::new();
    let slots = slots(&mut stack, &mut heap, limits.max_headers);
    let mut res = httparse::Response::new(&mut []);
    let parsed =
        httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut res, scan, slots);
    match parsed {
        Ok(httparse::Status::Complete(n)) => {
            let code = res.code.unwrap_or_default();
            let version = if res.version == Some(0) {
                Version::HTTP_10
            } else {
                Version::HTTP_11
            };
            build(buf, n, code, version, res.headers, req_method).map(|h| Some((h, n)))
        }
        Ok(httparse::Status::Partial) if scan.len() >= limits.max_head_bytes => {
            Err(ResponseError("response head too large"))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(e) => Err(ResponseError(match e {
            httparse::Error::TooManyHeaders => "too many header fields",
            httparse::Error::Version if starts_with_other_version(scan) => {
                "unsupported HTTP version"
            }
            httparse::Error::Version => "invalid HTTP version",
            httparse::Error::HeaderName => "invalid header name",
            httparse::Error::HeaderValue => "invalid header value",
            httparse::Error::NewLine => "invalid line ending",
            httparse::Error::Status | httparse::Error::Token => "invalid status line",
        })),
    }
}

fn build(
    buf: &[u8],
    n: usize,
    code: u16,
    version: Version,
    parsed: &[httparse::Header<'_>],
    req_method: &Method,
) -> Result<ResponseHead, ResponseError> {
    if code < 100 {
        return Err(ResponseError("invalid status code"));
    }
    let status = StatusCode::from_u16(code).map_err(|_| ResponseError("invalid status code"))?;
    let head = Bytes::copy_from_slice(&buf[..n]);
    let fields = parsed.iter().map(|h| (h.name.as_bytes(), h.value));
    let mut s = scan_headers(fields, buf, &head).map_err(|e| match e {
        ScanError::TooMany => ResponseError("too many header fields"),
        ScanError::Invalid(what) => ResponseError(what),
    })?;
    let http11 = version == Version::HTTP_11;
    let mut keep_alive = if http11 {
        !s.conn_close
    } else {
        s.conn_keep_alive && !s.conn_close
    };

    let no_body = *req_method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || (*req_method == Method::CONNECT && status.is_success());
    let te = &s.transfer_encoding;
    // A response without a body may carry the Transfer-Encoding its GET
    // would have had (HEAD, 304); there is nothing to decode then.
    if te.present && !no_body {
        if !http11 {
            return Err(ResponseError("transfer-encoding in an HTTP/1.0 response"));
        }
        if te.chunked > 1 {
            return Err(ResponseError("chunked applied more than once"));
        }
    }

    let body = if no_body {
        // No body to frame, but the signals a smuggled message gives still
        // end the connection: Transfer-Encoding beside Content-Length, or on
        // HTTP/1.0 (RFC 9112 §6.1: close after such a message).
        if te.present && (s.content_length.value.is_some() || !http11) {
            keep_alive = false;
        }
        ResponseBodyLength::Empty
    } else if te.present {
        if s.content_length.value.is_some() {
            keep_alive = false;
            s.headers.remove(header::CONTENT_LENGTH);
        }
        if te.last_is_chunked {
            // Other codings under the chunking (`gzip, chunked`) stay on
            // the body bytes, as the kept Transfer-Encoding field says.
            ResponseBodyLength::Chunked
        } else {
            // RFC 9112 §6.3: a response whose last coding is not chunked
            // (`gzip`, `chunked, gzip`) runs until the server closes.
            keep_alive = false;
            ResponseBodyLength::CloseDelimited
        }
    } else if let Some(len) = s.content_length.value {
        ResponseBodyLength::Length(len)
    } else {
        keep_alive = false;
        ResponseBodyLength::CloseDelimited
    };
    Ok(ResponseHead {
        status,
        version,
        headers: s.headers,
        body,
        keep_alive,
    })
}

/// After httparse refused the version: whether the status line starts with
/// a well-formed version other than 1.0/1.1.
fn starts_with_other_version(buf: &[u8]) -> bool {
    let end = buf
        .iter()
        .position(|&b| b == b' ' || b == b'\r' || b == b'\n')
        .unwrap_or(buf.len());
    is_version_like(&buf[..end])
}
