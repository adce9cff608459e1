//! What both services share: building the response for an opened
//! regular file (validators, preconditions, ranges, `HEAD`), the error
//! responses, and the response future. (Opening is in
//! [`open`](super::open).)

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::header::{
    HeaderValue, ACCEPT_RANGES, ALLOW, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE,
    CONTENT_TYPE, ETAG, LAST_MODIFIED, LOCATION, VARY,
};
use http::request::Parts;
use http::{Method, Response, StatusCode};
use spargio_rt::fs::{File, Metadata};

use super::body::{FileBody, DEFAULT_CHUNK_SIZE};
use super::conditional::{Precondition, Validators};
use super::encoding::{Encoding, Encodings};
use super::range::{self, RangeRequest};

/// Settings both services have.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServeOptions {
    pub(crate) chunk_size: usize,
    /// The codings whose sibling files are looked for.
    pub(crate) precompressed: Encodings,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            chunk_size: DEFAULT_CHUNK_SIZE,
            precompressed: Encodings::default(),
        }
    }
}

impl ServeOptions {
    /// Looks for siblings in `encoding` too.
    pub(crate) fn precompress(&mut self, encoding: Encoding) {
        self.precompressed = self.precompressed.with(encoding);
    }
}

/// An open file and what the response needs to know about it.
pub(crate) struct Opened {
    pub(crate) file: File,
    pub(crate) meta: Metadata,
    pub(crate) content_type: HeaderValue,
    /// The file is a precompressed sibling in this coding: send it as
    /// `Content-Encoding`.
    pub(crate) encoding: Option<Encoding>,
}

/// Adds `accept-encoding` to `Vary` unless it is there already (or `*`
/// is): with precompressed files on, every answer may depend on it — a
/// `404` to a client that does not take gzip can be a `200` with
/// `app.js.gz` to one that does — and a shared cache must not hand one
/// client's answer to the other.
pub(crate) fn vary_on_accept_encoding(res: &mut Response<FileBody>) {
    let listed = res.headers().get_all(VARY).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',').any(|token| {
                let token = token.trim();
                token == "*" || token.eq_ignore_ascii_case("accept-encoding")
            })
        })
    });
    if !listed {
        res.headers_mut()
            .append(VARY, HeaderValue::from_static("accept-encoding"));
    }
}

/// Whether the method is one the services answer (anything else gets 405).
pub(crate) fn method_allowed(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD
}

/// The response for an opened regular file.
pub(crate) fn respond(parts: &Parts, opened: Opened, opts: &ServeOptions) -> Response<FileBody> {
    let Opened {
        file,
        meta,
        content_type,
        encoding,
    } = opened;
    let size = meta.len();
    let validators = Validators::new(&meta, encoding.map(Encoding::token));

    let mut res = Response::new(FileBody::empty());
    let headers = res.headers_mut();
    if let Some(etag) = validators.etag_header() {
        headers.insert(ETAG, etag);
    }
    if let Some(lm) = validators.last_modified_header() {
        headers.insert(LAST_MODIFIED, lm);
    }
    if !opts.precompressed.is_empty() {
        headers.insert(VARY, HeaderValue::from_static("accept-encoding"));
    }

    let is_get = parts.method == Method::GET;
    let range = if is_get && validators.if_range_allows(&parts.headers) {
        range::evaluate(&parts.headers, size)
    } else {
        RangeRequest::Full
    };
    // Preconditions count only where the unconditional answer would be a
    // 2xx (RFC 9110 §13.2.1): an unsatisfiable range is a 416 whatever
    // they say.
    let precondition = match range {
        RangeRequest::Unsatisfiable => Precondition::Proceed,
        _ => validators.precondition(&parts.headers),
    };
    match precondition {
        Precondition::Proceed => {}
        Precondition::NotModified => {
            *res.status_mut() = StatusCode::NOT_MODIFIED;
            return res;
        }
        Precondition::Failed => {
            *res.status_mut() = StatusCode::PRECONDITION_FAILED;
            res.headers_mut()
                .insert(CONTENT_LENGTH, HeaderValue::from(0u64));
            return res;
        }
    }

    let headers = res.headers_mut();
    headers.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let (start, len) = match range {
        RangeRequest::Full => (0, size),
        RangeRequest::Partial { start, end } => {
            *res.status_mut() = StatusCode::PARTIAL_CONTENT;
            let value = format!("bytes {start}-{end}/{size}");
            res.headers_mut().insert(
                CONTENT_RANGE,
                HeaderValue::from_str(&value).expect("digits are a valid header value"),
            );
            (start, end - start + 1)
        }
        RangeRequest::Unsatisfiable => {
            *res.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
            let value = format!("bytes */{size}");
            let headers = res.headers_mut();
            headers.insert(
                CONTENT_RANGE,
                HeaderValue::from_str(&value).expect("digits are a valid header value"),
            );
            headers.insert(CONTENT_LENGTH, HeaderValue::from(0u64));
            return res;
        }
    };
    let headers = res.headers_mut();
    headers.insert(CONTENT_TYPE, content_type);
    if let Some(encoding) = encoding {
        headers.insert(CONTENT_ENCODING, encoding.header_value());
    }
    headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    if is_get && len > 0 {
        *res.body_mut() = FileBody::file(file, start, len).with_chunk_size(opts.chunk_size);
    }
    res
}

/// A response with `status`, an empty body and `Content-Length: 0`.
pub(crate) fn empty(status: StatusCode) -> Response<FileBody> {
    let mut res = Response::new(FileBody::empty());
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(0u64));
    res
}

/// `405 Method Not Allowed` with `Allow: GET, HEAD`.
pub(crate) fn method_not_allowed() -> Response<FileBody> {
    let mut res = empty(StatusCode::METHOD_NOT_ALLOWED);
    res.headers_mut()
        .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
    res
}

/// `308 Permanent Redirect` to `location`.
pub(crate) fn redirect(location: &str) -> Response<FileBody> {
    match HeaderValue::from_str(location) {
        Ok(value) => {
            let mut res = empty(StatusCode::PERMANENT_REDIRECT);
            res.headers_mut().insert(LOCATION, value);
            res
        }
        Err(_) => empty(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

/// The response for a failed filesystem call: `404` for a path that does
/// not lead to a file (missing, through a non-directory, a symlink loop,
/// a name too long, a socket or a device that cannot be opened, a symlink
/// out of the root), `403` when the OS denies access, `500` otherwise.
pub(crate) fn io_error(e: &io::Error) -> Response<FileBody> {
    empty(io_error_status(e))
}

fn io_error_status(e: &io::Error) -> StatusCode {
    match e.raw_os_error() {
        Some(
            libc::ENOENT
            | libc::ENOTDIR
            | libc::ELOOP
            | libc::ENAMETOOLONG
            | libc::EISDIR
            // A symlink out of the root (`RESOLVE_BENEATH`).
            | libc::EXDEV
            // A socket, or a device with nothing behind it: not a file.
            | libc::ENXIO
            | libc::ENODEV
            | libc::EOPNOTSUPP,
        ) => StatusCode::NOT_FOUND,
        Some(libc::EACCES | libc::EPERM) => StatusCode::FORBIDDEN,
        // The kernel refused the open itself (flags, or no openat2 in a
        // sandbox): a server fault, not a missing file.
        Some(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::InvalidInput => StatusCode::NOT_FOUND,
            io::ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        },
    }
}

/// The future of [`ServeDir`](super::ServeDir) and
/// [`ServeFile`](super::ServeFile) calls. It is `Send` and never fails:
/// problems are answered with 4xx/5xx responses.
pub struct ResponseFuture {
    inner: Pin<Box<dyn Future<Output = Response<FileBody>> + Send + 'static>>,
}

impl ResponseFuture {
    pub(crate) fn new(fut: impl Future<Output = Response<FileBody>> + Send + 'static) -> Self {
        ResponseFuture {
            inner: Box::pin(fut),
        }
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<FileBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx).map(Ok)
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fs_error_statuses() {
        let st = |errno| io_error_status(&io::Error::from_raw_os_error(errno));
        assert_eq!(st(libc::ENOENT), StatusCode::NOT_FOUND);
        assert_eq!(st(libc::ENOTDIR), StatusCode::NOT_FOUND);
        assert_eq!(st(libc::ELOOP), StatusCode::NOT_FOUND);
        assert_eq!(st(libc::EXDEV), StatusCode::NOT_FOUND);
        assert_eq!(st(libc::EACCES), StatusCode::FORBIDDEN);
        assert_eq!(st(libc::EIO), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
