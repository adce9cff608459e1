//! Encoding heads and chunks: the server's responses and the client's
//! requests, written straight into a `BytesMut`.

use bytes::BytesMut;
use http::header::{self, HeaderName};
use http::{HeaderMap, Method, StatusCode, Uri, Version};

use super::chunked::is_forbidden_trailer;
use super::date::{put_date, DATE_LEN};
use super::fields::{
    bad_value, parse_content_length, put_decimal, put_hex, value_is_writable, ContentLength,
};
use super::{BodyLength, EncodeError};

/// The interim response sent before reading the body of an
/// `Expect: 100-continue` request.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// How the server frames a response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFraming {
    /// No body is sent (1xx, 204, 304, HEAD).
    NoBody,
    /// No body, and no Content-Length or Transfer-Encoding either: a 2xx
    /// response to CONNECT, after which the connection is a tunnel
    /// (RFC 9110 §9.3.6).
    Tunnel,
    /// Exactly this many body bytes follow (`Content-Length`).
    Length(u64),
    /// The body is sent with the chunked coding (HTTP/1.1 only).
    Chunked,
    /// The body runs until the connection is closed (HTTP/1.0 with unknown
    /// length).
    CloseDelimited,
}

/// Decides how a response body is framed.
///
/// 2xx responses to CONNECT open a tunnel ([`ResponseFraming::Tunnel`]);
/// 1xx, 204, 205 and 304 responses and responses to HEAD have no body
/// ([`ResponseFraming::NoBody`]; a 205's head says `content-length: 0`,
/// whatever body the service gave it). Otherwise an exact body size
/// (`exact_size`, e.g. from `http_body::Body::size_hint`) gives `Length(n)`
/// (replacing any Content-Length the service set); else a valid
/// Content-Length set by the service gives `Length(n)`; else HTTP/1.1 gets
/// `Chunked` and HTTP/1.0 `CloseDelimited`.
///
/// For HEAD (and 304), pass the exact size of the body the response would
/// have had, if known, to [`encode_response_head`] as `head_length`;
/// without it the service's own Content-Length is kept.
pub fn response_framing(
    req_method: &Method,
    req_version: Version,
    status: StatusCode,
    headers: &HeaderMap,
    exact_size: Option<u64>,
) -> ResponseFraming {
    if *req_method == Method::CONNECT && status.is_success() {
        return ResponseFraming::Tunnel;
    }
    if status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::RESET_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || *req_method == Method::HEAD
    {
        return ResponseFraming::NoBody;
    }
    if let Some(n) = exact_size {
        return ResponseFraming::Length(n);
    }
    if let Ok(Some(n)) = parse_content_length(headers) {
        return ResponseFraming::Length(n);
    }
    if req_version == Version::HTTP_10 {
        ResponseFraming::CloseDelimited
    } else {
        ResponseFraming::Chunked
    }
}

/// Appends a response head to `dst`.
///
/// Writes the status line (`HTTP/1.0` for HTTP/1.0 requests, else
/// `HTTP/1.1`, with the canonical reason phrase), then the service's
/// headers except Content-Length, Transfer-Encoding and Connection (which
/// are regenerated; fold a service's `Connection: close` into `keep_alive`
/// with [`connection_has_token`](super::connection_has_token)), then:
///
/// * the framing: `content-length: n` for `Length(n)`,
///   `transfer-encoding: chunked` for `Chunked`, and for `NoBody` (HEAD,
///   304) a `content-length` from `head_length` if it is `Some`, else the
///   service's Content-Length if it is valid (written as one field); 1xx and
///   204 responses, and `Tunnel` (a 2xx to CONNECT), never get either;
/// * one `connection` field with the service's own Connection options
///   other than `close` and `keep-alive` (`upgrade` on a `426` that offers
///   an `Upgrade`, a hop-by-hop field it names), then `close` when
///   `!keep_alive` on HTTP/1.1 or `keep-alive` when `keep_alive` on
///   HTTP/1.0 (`CloseDelimited` always counts as not keep-alive); none for
///   1xx, and a 101 response keeps the service's own Connection and
///   Upgrade headers untouched;
/// * `date` unless the service set one (not on 1xx);
/// * the empty line.
///
/// A header value containing CR, LF or NUL (possible through
/// `HeaderValue::from_maybe_shared_unchecked`) is refused with an error and
/// `dst` is left unchanged.
pub fn encode_response_head(
    dst: &mut BytesMut,
    req_version: Version,
    status: StatusCode,
    headers: &HeaderMap,
    framing: ResponseFraming,
    head_length: Option<u64>,
    keep_alive: bool,
) -> Result<(), EncodeError> {
    encode_response_fields(
        dst,
        req_version,
        status,
        headers,
        framing,
        head_length,
        keep_alive,
    )
}

/// [`encode_response_head`] over any field source.
pub(super) fn encode_response_fields(
    dst: &mut BytesMut,
    req_version: Version,
    status: StatusCode,
    headers: &(impl Fields + ?Sized),
    framing: ResponseFraming,
    head_length: Option<u64>,
    keep_alive: bool,
) -> Result<(), EncodeError> {
    let informational = status.is_informational();
    let switching = status == StatusCode::SWITCHING_PROTOCOLS;
    let skip = |name: &HeaderName| {
        *name == header::CONTENT_LENGTH
            || *name == header::TRANSFER_ENCODING
            || (*name == header::CONNECTION && !switching)
    };

    // Check every value before writing anything, and size the head.
    let mut size = 64 + DATE_LEN;
    let mut has_date = false;
    // Whether the service's Connection fields name options other than
    // `close` / `keep-alive` (`upgrade` beside an `Upgrade` field, a
    // hop-by-hop field of its own): those are kept (RFC 9110 §7.6.1, §7.8).
    let mut connection_options = false;
    // The service's Content-Length, kept for NoBody without `head_length`;
    // `Err` once a value is invalid or values differ.
    let mut user_length = Ok(ContentLength::default());
    for (name, value) in headers.fields() {
        if skip(name) {
            if *name == header::CONTENT_LENGTH && framing == ResponseFraming::NoBody {
                if let Ok(cl) = &mut user_length {
                    if cl.add(value).is_err() {
                        user_length = Err(());
                    }
                }
            }
            if *name == header::CONNECTION && options(value).next().is_some() {
                if !value_is_writable(value) {
                    return Err(bad_value(name));
                }
                connection_options = true;
                size += value.len() + 16;
            }
            continue;
        }
        if !value_is_writable(value) {
            return Err(bad_value(name));
        }
        has_date |= *name == header::DATE;
        size += name.as_str().len() + value.len() + 4;
    }
    dst.reserve(size);

    let http10 = req_version == Version::HTTP_10;
    dst.extend_from_slice(if http10 { b"HTTP/1.0 " } else { b"HTTP/1.1 " });
    dst.extend_from_slice(status.as_str().as_bytes());
    dst.extend_from_slice(b" ");
    dst.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    dst.extend_from_slice(b"\r\n");

    for (name, value) in headers.fields() {
        if skip(name) {
            continue;
        }
        put_field(dst, name.as_str().as_bytes(), value);
    }

    let no_framing_fields =
        informational || status == StatusCode::NO_CONTENT || framing == ResponseFraming::Tunnel;
    if !no_framing_fields {
        match framing {
            ResponseFraming::Length(n) => put_content_length(dst, n),
            // A 205 has no content (RFC 9110 §15.3.6), and a client
            // frames it as any other response: it is told the length is 0.
            ResponseFraming::NoBody if status == StatusCode::RESET_CONTENT => {
                put_content_length(dst, 0)
            }
            ResponseFraming::NoBody => {
                let user = user_length.ok().and_then(|cl| cl.value);
                if let Some(n) = head_length.or(user) {
                    put_content_length(dst, n);
                }
            }
            ResponseFraming::Chunked => dst.extend_from_slice(b"transfer-encoding: chunked\r\n"),
            ResponseFraming::CloseDelimited | ResponseFraming::Tunnel => {}
        }
    }

    if !informational {
        let keep_alive = keep_alive && framing != ResponseFraming::CloseDelimited;
        let own: &[u8] = if http10 && keep_alive {
            b"keep-alive"
        } else if !http10 && !keep_alive {
            b"close"
        } else {
            b""
        };
        let mut first = true;
        let mut put_option = |dst: &mut BytesMut, option: &[u8]| {
            dst.extend_from_slice(if first { b"connection: " } else { b", " });
            dst.extend_from_slice(option);
            first = false;
        };
        if connection_options {
            for (name, value) in headers.fields() {
                if *name == header::CONNECTION {
                    for option in options(value) {
                        put_option(dst, option);
                    }
                }
            }
        }
        if !own.is_empty() {
            put_option(dst, own);
        }
        if !first {
            dst.extend_from_slice(b"\r\n");
        }
        if !has_date {
            dst.extend_from_slice(b"date: ");
            put_date(dst);
            dst.extend_from_slice(b"\r\n");
        }
    }
    dst.extend_from_slice(b"\r\n");
    Ok(())
}

/// The options of one `Connection` field other than `close` and
/// `keep-alive` (which the server decides), trimmed.
fn options(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|o| {
            !o.is_empty()
                && !o.eq_ignore_ascii_case(b"close")
                && !o.eq_ignore_ascii_case(b"keep-alive")
        })
}

/// Appends one chunk: the size in hex, CRLF, `data`, CRLF. Nothing for
/// empty `data` (an empty chunk would end the body).
pub fn encode_chunk(dst: &mut BytesMut, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    dst.reserve(data.len() + 20);
    put_hex(dst, data.len() as u64);
    dst.extend_from_slice(b"\r\n");
    dst.extend_from_slice(data);
    dst.extend_from_slice(b"\r\n");
}

/// Appends the line that opens a chunk of `len` bytes: the size in hex and
/// CRLF. The caller appends the `len` data bytes and a CRLF after it
/// (what [`encode_chunk`] does in one call, for data it may copy).
pub(crate) fn encode_chunk_size(dst: &mut BytesMut, len: usize) {
    put_hex(dst, len as u64);
    dst.extend_from_slice(b"\r\n");
}

/// Appends the end of a chunked body: `0` CRLF, the trailer fields, CRLF.
///
/// Trailer values with CR, LF or NUL, and the framing/routing fields
/// Content-Length, Transfer-Encoding and Host (not allowed as trailers),
/// are refused with an error and `dst` is left unchanged.
pub fn encode_last_chunk(
    dst: &mut BytesMut,
    trailers: Option<&HeaderMap>,
) -> Result<(), EncodeError> {
    encode_last_chunk_fields(dst, trailers)
}

/// [`encode_last_chunk`] over any field source.
pub(super) fn encode_last_chunk_fields<F: Fields + ?Sized>(
    dst: &mut BytesMut,
    trailers: Option<&F>,
) -> Result<(), EncodeError> {
    let Some(trailers) = trailers else {
        dst.extend_from_slice(b"0\r\n\r\n");
        return Ok(());
    };
    let mut size = 5;
    for (name, value) in trailers.fields() {
        if is_forbidden_trailer(name) {
            return Err(EncodeError(format!("{name} is not allowed as a trailer")));
        }
        if !value_is_writable(value) {
            return Err(bad_value(name));
        }
        size += name.as_str().len() + value.len() + 4;
    }
    dst.reserve(size);
    dst.extend_from_slice(b"0\r\n");
    for (name, value) in trailers.fields() {
        put_field(dst, name.as_str().as_bytes(), value);
    }
    dst.extend_from_slice(b"\r\n");
    Ok(())
}

/// Appends a request head to `dst` (client side).
///
/// The request line carries the origin-form target (path and query of
/// `uri`, `/` if the path is empty), or the absolute-form (whole `uri`) when
/// `absolute_form` is true (requests to a proxy), or the authority-form for
/// CONNECT. Then a Host field from the authority of `uri` (without
/// userinfo; empty if `uri` has none) unless `headers` has one, the user's
/// headers except Content-Length and Transfer-Encoding, and the framing of
/// `body`: `content-length: n` for `Length(n)`, `transfer-encoding:
/// chunked` for `Chunked`, and for `Empty` nothing, except `content-length:
/// 0` for POST, PUT and PATCH. Then the empty line.
///
/// A header value with CR, LF or NUL, an absolute-form request for a `uri`
/// without scheme and authority, or a CONNECT without authority or port is refused
/// with an error and `dst` is left unchanged.
pub fn encode_request_head(
    dst: &mut BytesMut,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: BodyLength,
    absolute_form: bool,
) -> Result<(), EncodeError> {
    encode_request_fields(dst, method, uri, headers, body, absolute_form)
}

/// [`encode_request_head`] over any field source.
pub(super) fn encode_request_fields(
    dst: &mut BytesMut,
    method: &Method,
    uri: &Uri,
    headers: &(impl Fields + ?Sized),
    body: BodyLength,
    absolute_form: bool,
) -> Result<(), EncodeError> {
    let skip =
        |name: &HeaderName| *name == header::CONTENT_LENGTH || *name == header::TRANSFER_ENCODING;
    let mut size = 64 + method.as_str().len() + uri.path().len() + uri.query().map_or(0, str::len);
    let mut has_host = false;
    for (name, value) in headers.fields() {
        if skip(name) {
            continue;
        }
        if !value_is_writable(value) {
            return Err(bad_value(name));
        }
        has_host |= *name == header::HOST;
        size += name.as_str().len() + value.len() + 4;
    }
    let authority = uri.authority().map(|a| a.as_str());
    let connect = *method == Method::CONNECT;
    if connect && (authority.is_none() || uri.port().is_none()) {
        // RFC 9110 §9.3.6: the target is `host:port`, the port required.
        return Err(EncodeError(
            "CONNECT needs a uri with an authority and a port".into(),
        ));
    }
    if absolute_form && !connect && (uri.scheme().is_none() || authority.is_none()) {
        return Err(EncodeError(
            "absolute-form needs a uri with scheme and authority".into(),
        ));
    }
    // The Host field never carries userinfo.
    let host = authority.map_or("", |a| a.rsplit_once('@').map_or(a, |(_, host)| host));
    size += 2 * host.len();
    dst.reserve(size);

    dst.extend_from_slice(method.as_str().as_bytes());
    dst.extend_from_slice(b" ");
    if connect {
        dst.extend_from_slice(host.as_bytes());
    } else {
        if absolute_form {
            if let Some(scheme) = uri.scheme_str() {
                dst.extend_from_slice(scheme.as_bytes());
                dst.extend_from_slice(b"://");
            }
            dst.extend_from_slice(host.as_bytes());
        }
        let path = uri.path();
        dst.extend_from_slice(if path.is_empty() {
            b"/"
        } else {
            path.as_bytes()
        });
        if let Some(query) = uri.query() {
            dst.extend_from_slice(b"?");
            dst.extend_from_slice(query.as_bytes());
        }
    }
    dst.extend_from_slice(b" HTTP/1.1\r\n");

    if !has_host {
        put_field(dst, b"host", host.as_bytes());
    }
    for (name, value) in headers.fields() {
        if skip(name) {
            continue;
        }
        put_field(dst, name.as_str().as_bytes(), value);
    }
    match body {
        BodyLength::Empty => {
            if *method == Method::POST || *method == Method::PUT || *method == Method::PATCH {
                dst.extend_from_slice(b"content-length: 0\r\n");
            }
        }
        BodyLength::Length(n) => put_content_length(dst, n),
        BodyLength::Chunked => dst.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    dst.extend_from_slice(b"\r\n");
    Ok(())
}

/// Header fields to encode, as (name, raw value) pairs in order.
///
/// Implemented for `HeaderMap`; tests also feed raw byte values that a
/// `HeaderValue` cannot hold in debug builds, to exercise the CR/LF/NUL
/// refusal that release builds need.
pub(super) trait Fields {
    /// The fields in order, repeated names included.
    fn fields(&self) -> impl Iterator<Item = (&HeaderName, &[u8])>;
}

impl Fields for HeaderMap {
    #[inline]
    fn fields(&self) -> impl Iterator<Item = (&HeaderName, &[u8])> {
        self.iter().map(|(name, value)| (name, value.as_bytes()))
    }
}

#[cfg(test)]
impl Fields for [(HeaderName, &'static [u8])] {
    fn fields(&self) -> impl Iterator<Item = (&HeaderName, &[u8])> {
        self.iter().map(|(name, value)| (name, *value))
    }
}

/// `name: value` CRLF.
#[inline]
fn put_field(dst: &mut BytesMut, name: &[u8], value: &[u8]) {
    dst.extend_from_slice(name);
    dst.extend_from_slice(b": ");
    dst.extend_from_slice(value);
    dst.extend_from_slice(b"\r\n");
}

#[inline]
fn put_content_length(dst: &mut BytesMut, n: u64) {
    dst.extend_from_slice(b"content-length: ");
    put_decimal(dst, n);
    dst.extend_from_slice(b"\r\n");
}
