//! Server side: parsing a request head and deciding how its body is framed.

use std::cell::RefCell;
use std::ops::Range;

use bytes::{Bytes, BytesMut};
use http::{header, HeaderMap, Method, Uri, Version};

use super::fields::{range_in, slots, stack_slots};
use super::head::{scan_headers, ScanError};
use super::{Limits, RequestError};

/// How the body of a request (or of a request this client sends) is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLength {
    /// No body: the message has neither Content-Length nor Transfer-Encoding.
    Empty,
    /// Exactly this many bytes follow the head (`Content-Length`; `0` is
    /// reported as `Length(0)`).
    Length(u64),
    /// A chunked body follows; decode it with
    /// [`ChunkedDecoder`](super::ChunkedDecoder).
    Chunked,
}

/// A parsed and validated request head.
#[derive(Debug)]
pub struct RequestHead {
    /// The request method.
    pub method: Method,
    /// The request target: origin-form (`/path?query`), absolute-form
    /// (`http://host/path`), `*` (OPTIONS only) or authority-form
    /// (`host:port`, CONNECT only).
    pub uri: Uri,
    /// [`Version::HTTP_10`] or [`Version::HTTP_11`].
    pub version: Version,
    /// The header fields in received order, names lowercased. When the
    /// request had both Transfer-Encoding and Content-Length, the
    /// Content-Length fields are removed (RFC 9112 §6.3: the coding wins and
    /// the length must not be passed on).
    pub headers: HeaderMap,
    /// How the body is framed.
    pub body: BodyLength,
    /// Whether the connection may carry another request after this one:
    /// on HTTP/1.1 unless `Connection: close`, on HTTP/1.0 only with
    /// `Connection: keep-alive`; always false when `must_close` is true.
    pub keep_alive: bool,
    /// `Expect: 100-continue` on an HTTP/1.1 request: send
    /// [`CONTINUE`](super::CONTINUE) before reading the body. Other `Expect`
    /// values are ignored (left in `headers` for the service to judge), and
    /// HTTP/1.0 requests never set this.
    pub expect_continue: bool,
    /// The client asks to switch protocols: an HTTP/1.1 request whose
    /// `Connection` lists `upgrade` and that has an `Upgrade` field, or any
    /// CONNECT request.
    pub upgrade: bool,
    /// The request had both Transfer-Encoding and Content-Length: its body
    /// is framed by the chunked coding, and the connection must be closed
    /// after the response.
    pub must_close: bool,
}

/// Parses a request head from the start of `buf`.
///
/// Returns `Ok(None)` when the head is incomplete (read more and call again
/// with the grown buffer), and `Ok(Some((head, n)))` when the head took the
/// first `n` bytes of `buf` (the body, if any, follows).
///
/// Incomplete input of `limits.max_head_bytes` or more is refused with
/// [`RequestError::HeadTooLarge`], and an incomplete request line whose
/// target already exceeds `limits.max_uri_len` with
/// [`RequestError::UriTooLong`], so a client cannot make the server buffer
/// without bound. Empty lines before the request line are skipped (RFC 9112
/// §2.2) and count towards `n`. Lines may end in CRLF or a bare LF, as
/// RFC 9112 §2.2 allows; a bare CR is an error.
///
/// Rules beyond the grammar (each a [`RequestError::Malformed`] unless
/// noted): Content-Length must be plain decimal digits, and several values
/// (fields or list elements) must agree; Transfer-Encoding must end in
/// `chunked`, list it once, and is refused on HTTP/1.0; a coding other than
/// `chunked` before it is [`RequestError::NotImplemented`]; with both
/// Transfer-Encoding and Content-Length the body is chunked and
/// `must_close` is set; an HTTP/1.1 request needs exactly one Host field
/// (HTTP/1.0: at most one), whose value is empty or `host[:port]`; the
/// target must fit the method (`*` only for OPTIONS, authority-form with a
/// port only and always for CONNECT), and has no fragment (`#`) and no
/// userinfo (`user@` in an absolute-form or CONNECT target).
pub fn parse_request(
    buf: &[u8],
    limits: &Limits,
) -> Result<Option<(RequestHead, usize)>, RequestError> {
    with_scratch(|fields| {
        let Some(found) = locate(buf, limits, fields)? else {
            return Ok(None);
        };
        let head = Bytes::copy_from_slice(&buf[..found.len]);
        let mut out = RequestHead::default();
        build_into(&head, &found, fields, limits, &mut out)?;
        Ok(Some((out, found.len)))
    })
}

/// [`parse_request`] that takes the head off the front of `buf` when it is
/// complete, without copying it: the request's header values and target
/// share `buf`'s memory (as hyper's do), which `buf` reclaims for later
/// reads once the request is dropped. On `Ok(None)` `buf` is untouched.
pub fn parse_request_buf(
    buf: &mut BytesMut,
    limits: &Limits,
) -> Result<Option<RequestHead>, RequestError> {
    let mut head = RequestHead::default();
    Ok(parse_request_buf_into(buf, limits, &mut head)?.then_some(head))
}

/// [`parse_request_buf`] that writes the head into `out` (overwriting
/// every field) and returns `Ok(true)`, instead of returning it: a server
/// keeps one head per connection and moves its parts out, so the 200-odd
/// bytes of a head are not copied through each return on the way. On
/// `Ok(false)` neither `buf` nor `out` is changed; on an error `out` is
/// unchanged.
pub(crate) fn parse_request_buf_into(
    buf: &mut BytesMut,
    limits: &Limits,
    out: &mut RequestHead,
) -> Result<bool, RequestError> {
    with_scratch(|fields| {
        let Some(found) = locate(buf, limits, fields)? else {
            return Ok(false);
        };
        let head = buf.split_to(found.len).freeze();
        build_into(&head, &found, fields, limits, out).map(|()| true)
    })
}

impl Default for RequestHead {
    /// `GET /` over HTTP/1.1 with no fields and no body.
    fn default() -> RequestHead {
        RequestHead {
            method: Method::GET,
            uri: Uri::default(),
            version: Version::HTTP_11,
            headers: HeaderMap::new(),
            body: BodyLength::Empty,
            keep_alive: true,
            expect_continue: false,
            upgrade: false,
            must_close: false,
        }
    }
}

/// Where a complete head's parts lie in the input.
struct Located {
    /// The head's length, its final empty line included.
    len: usize,
    method: Range<usize>,
    path: Range<usize>,
    version: Version,
}

/// (name, value) of each header field, as ranges of the input.
type FieldRanges = Vec<(Range<usize>, Range<usize>)>;

/// Runs `f` with this thread's reused field-range list, emptied.
fn with_scratch<R>(f: impl FnOnce(&mut FieldRanges) -> R) -> R {
    thread_local!(static FIELDS: RefCell<FieldRanges> = const { RefCell::new(Vec::new()) });
    FIELDS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut fields) => {
            fields.clear();
            f(&mut fields)
        }
        // Only reachable if parsing re-entered itself; stay correct.
        Err(_) => f(&mut Vec::new()),
    })
}

/// Runs httparse over the start of `buf`: the head's layout (its fields in
/// `fields`) once complete, `None` while incomplete, or why it is refused.
fn locate(
    buf: &[u8],
    limits: &Limits,
    fields: &mut FieldRanges,
) -> Result<Option<Located>, RequestError> {
    let scan = &buf[..buf.len().min(limits.max_head_bytes)];
    let mut stack = stack_slots();
    let mut heap = Vec::new();
    let slots = slots(&mut stack, &mut heap, limits.max_headers);
    let mut req = httparse::Request::new(&mut []);
    match req.parse_with_uninit_headers(scan, slots) {
        Ok(httparse::Status::Complete(n)) => {
            let method = req.method.unwrap_or_default();
            let path = req.path.unwrap_or_default();
            let version = if req.version == Some(0) {
                Version::HTTP_10
            } else {
                Version::HTTP_11
            };
            fields.extend(
                req.headers
                    .iter()
                    .map(|h| (range_in(buf, h.name.as_bytes()), range_in(buf, h.value))),
            );
            Ok(Some(Located {
                len: n,
                method: range_in(buf, method.as_bytes()),
                path: range_in(buf, path.as_bytes()),
                version,
            }))
        }
        Ok(httparse::Status::Partial) => {
            match (req.method, req.path) {
                (_, Some(path)) if path.len() > limits.max_uri_len => {
                    return Err(RequestError::UriTooLong)
                }
                (Some(method), None) => {
                    // The target is being received: it starts after the
                    // method and one space, and runs to the end of `scan`.
                    let start = range_in(scan, method.as_bytes()).end + 1;
                    if scan.len().saturating_sub(start) > limits.max_uri_len {
                        return Err(RequestError::UriTooLong);
                    }
                }
                _ => {}
            }
            if scan.len() >= limits.max_head_bytes {
                Err(RequestError::HeadTooLarge)
            } else {
                Ok(None)
            }
        }
        Err(e) => Err(match e {
            httparse::Error::TooManyHeaders => RequestError::TooManyHeaders,
            httparse::Error::Version if names_other_version(scan) => {
                RequestError::UnsupportedVersion
            }
            httparse::Error::Version => RequestError::Malformed("invalid HTTP version"),
            httparse::Error::HeaderName => RequestError::Malformed("invalid header name"),
            httparse::Error::HeaderValue => RequestError::Malformed("invalid header value"),
            httparse::Error::NewLine => RequestError::Malformed("invalid line ending"),
            httparse::Error::Token | httparse::Error::Status => {
                RequestError::Malformed("invalid request line")
            }
        }),
    }
}

/// Builds the head from `head` (the complete head's bytes, laid out as
/// `found` and `fields` say) into `out`.
fn build_into(
    head: &Bytes,
    found: &Located,
    fields: &FieldRanges,
    limits: &Limits,
    out: &mut RequestHead,
) -> Result<(), RequestError> {
    let version = found.version;
    let path_bytes = &head[found.path.clone()];
    // `http::Uri` refuses targets of u16::MAX bytes or more.
    if path_bytes.len() > limits.max_uri_len || path_bytes.len() >= usize::from(u16::MAX) {
        return Err(RequestError::UriTooLong);
    }
    // A request-target has no fragment (RFC 9112 §3.2), and `Uri` would
    // drop one silently: the service would see another target than the
    // one sent (`/admin#/../public` as `/admin`).
    if path_bytes.contains(&b'#') {
        return Err(RequestError::Malformed("fragment in request target"));
    }
    let method = Method::from_bytes(&head[found.method.clone()])
        .map_err(|_| RequestError::Malformed("invalid method"))?;

    let uri = Uri::from_maybe_shared(head.slice(found.path.clone()))
        .map_err(|_| RequestError::Malformed("invalid request target"))?;
    check_target(&method, path_bytes, &uri)?;

    let parsed = fields
        .iter()
        .map(|(name, value)| (&head[name.clone()], &head[value.clone()]));
    let mut s = scan_headers(parsed, head, head).map_err(|e| match e {
        ScanError::TooMany => RequestError::TooManyHeaders,
        ScanError::Invalid(what) => RequestError::Malformed(what),
    })?;

    let http11 = version == Version::HTTP_11;
    if s.hosts > 1 {
        return Err(RequestError::Malformed("more than one host header"));
    }
    if http11 && s.hosts == 0 {
        return Err(RequestError::Malformed("missing host header"));
    }
    if s.host_invalid {
        return Err(RequestError::Malformed("invalid host header"));
    }

    let mut must_close = false;
    let body = if s.transfer_encoding.present {
        let te = &s.transfer_encoding;
        if !http11 {
            return Err(RequestError::Malformed(
                "transfer-encoding in an HTTP/1.0 request",
            ));
        }
        if te.chunked > 1 {
            return Err(RequestError::Malformed("chunked applied more than once"));
        }
        if !te.last_is_chunked {
            return Err(RequestError::Malformed(
                "transfer-encoding does not end in chunked",
            ));
        }
        if te.other {
            return Err(RequestError::NotImplemented(
                "transfer coding other than chunked",
            ));
        }
        if s.content_length.value.is_some() {
            must_close = true;
            s.headers.remove(header::CONTENT_LENGTH);
        }
        BodyLength::Chunked
    } else {
        match s.content_length.value {
            Some(n) => BodyLength::Length(n),
            None => BodyLength::Empty,
        }
    };

    let keep_alive = if http11 {
        !s.conn_close
    } else {
        s.conn_keep_alive && !s.conn_close
    };
    let upgrade = (http11 && s.conn_upgrade && s.upgrade) || method == Method::CONNECT;
    if upgrade && must_close {
        // The connection must close after the answer, so it cannot be
        // handed over; and which bytes are the body (and which the new
        // protocol's) depends on which framing header a hop believed.
        return Err(RequestError::Malformed(
            "transfer-encoding with content-length in a request to switch protocols",
        ));
    }
    out.method = method;
    out.uri = uri;
    out.version = version;
    out.headers = s.headers;
    out.body = body;
    out.keep_alive = keep_alive && !must_close;
    out.expect_continue = http11 && s.expect_continue;
    out.upgrade = upgrade;
    out.must_close = must_close;
    Ok(())
}

/// Checks that the request-target form fits the method (RFC 9112 §3.2).
fn check_target(method: &Method, path: &[u8], uri: &Uri) -> Result<(), RequestError> {
    if *method == Method::CONNECT {
        // authority-form: host:port, nothing else.
        let ok = uri.scheme().is_none()
            && uri.path_and_query().is_none()
            && uri
                .authority()
                .is_some_and(|a| a.port_u16().is_some() && !a.as_str().contains('@'));
        return if ok {
            Ok(())
        } else {
            Err(RequestError::Malformed(
                "CONNECT needs an authority-form target",
            ))
        };
    }
    match path[0] {
        // origin-form; `Uri` reads a leading '/' as a path.
        b'/' => Ok(()),
        b'*' if path.len() == 1 => {
            if *method == Method::OPTIONS {
                Ok(())
            } else {
                Err(RequestError::Malformed(
                    "asterisk-form target is only for OPTIONS",
                ))
            }
        }
        // absolute-form; userinfo in it is an error (RFC 9110 §4.2.4).
        _ => match (uri.scheme(), uri.authority()) {
            (Some(_), Some(a)) if a.as_str().contains('@') => {
                Err(RequestError::Malformed("userinfo in request target"))
            }
            (Some(_), Some(a))
                if a.as_str().is_empty()
                    || !super::fields::host_port_shape_is_valid(a.as_str().as_bytes()) =>
            {
                Err(RequestError::Malformed(
                    "invalid authority in request target",
                ))
            }
            (Some(_), Some(_)) => Ok(()),
            _ => Err(RequestError::Malformed("invalid request target")),
        },
    }
}

/// After httparse refused the version: whether the request line's third
/// part looks like `HTTP/<digits>[.<digits>]`, i.e. a well-formed version we
/// do not speak (HTTP/2 preface, HTTP/0.9, HTTP/1.2, ...).
fn names_other_version(buf: &[u8]) -> bool {
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    let rest = &buf[start..];
    let line_end = rest
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(rest.len());
    let mut parts = rest[..line_end].splitn(3, |&b| b == b' ');
    let (Some(_), Some(_), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    is_version_like(version)
}

/// `HTTP/` followed by digits with at most one dot, starting with a digit.
pub(super) fn is_version_like(version: &[u8]) -> bool {
    let Some(num) = version.strip_prefix(b"HTTP/") else {
        return false;
    };
    let dots = num.iter().filter(|&&b| b == b'.').count();
    num.first().is_some_and(u8::is_ascii_digit)
        && dots <= 1
        && num.iter().all(|&b| b.is_ascii_digit() || b == b'.')
}
