//! Turning httparse's header slices into a `HeaderMap` while noting the
//! fields that decide framing and connection handling (shared by the request
//! and response parsers).

use bytes::Bytes;
use http::header::{self, HeaderName};
use http::HeaderMap;

use super::fields::{
    list_elements, range_in, shared_value, trim_ows, ContentLength, TransferEncoding,
};

/// What one pass over a head's fields found.
#[derive(Default)]
pub(super) struct Scanned {
    /// All fields, in order, values sharing the copied head.
    pub(super) headers: HeaderMap,
    /// The (consistent) Content-Length, if any.
    pub(super) content_length: ContentLength,
    /// The Transfer-Encoding codings.
    pub(super) transfer_encoding: TransferEncoding,
    /// `Connection` lists `close`.
    pub(super) conn_close: bool,
    /// `Connection` lists `keep-alive`.
    pub(super) conn_keep_alive: bool,
    /// `Connection` lists `upgrade`.
    pub(super) conn_upgrade: bool,
    /// Number of Host fields.
    pub(super) hosts: usize,
    /// Some Host field value is not `host[:port]`.
    pub(super) host_invalid: bool,
    /// An `Expect: 100-continue` field is present.
    pub(super) expect_continue: bool,
    /// An `Upgrade` field is present.
    pub(super) upgrade: bool,
}

/// Why the fields were refused.
pub(super) enum ScanError {
    /// More fields than a `HeaderMap` can hold.
    TooMany,
    /// A field breaks a rule; the text says which.
    Invalid(&'static str),
}

/// Scans `parsed` ((name, value) slices of `buf`), building the map from
/// `head`, the first bytes of `buf` (or a copy of them) holding every field.
#[inline]
pub(super) fn scan_headers<'a>(
    parsed: impl ExactSizeIterator<Item = (&'a [u8], &'a [u8])>,
    buf: &[u8],
    head: &Bytes,
) -> Result<Scanned, ScanError> {
    let mut s = Scanned {
        headers: HeaderMap::try_with_capacity(parsed.len()).map_err(|_| ScanError::TooMany)?,
        ..Scanned::default()
    };
    for (name, raw) in parsed {
        let name =
            HeaderName::from_bytes(name).map_err(|_| ScanError::Invalid("invalid header name"))?;
        if name == header::CONTENT_LENGTH {
            s.content_length.add(raw).map_err(ScanError::Invalid)?;
        } else if name == header::TRANSFER_ENCODING {
            s.transfer_encoding.add(raw);
        } else if name == header::CONNECTION {
            for token in list_elements(raw) {
                if token.eq_ignore_ascii_case(b"close") {
                    s.conn_close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    s.conn_keep_alive = true;
                } else if token.eq_ignore_ascii_case(b"upgrade") {
                    s.conn_upgrade = true;
                }
            }
        } else if name == header::HOST {
            s.hosts += 1;
            if !super::fields::host_is_valid(raw) {
                s.host_invalid = true;
            }
        } else if name == header::EXPECT {
            if trim_ows(raw).eq_ignore_ascii_case(b"100-continue") {
                s.expect_continue = true;
            }
        } else if name == header::UPGRADE {
            s.upgrade = true;
        }
        let value = shared_value(head, range_in(buf, raw));
        s.headers
            .try_append(name, value)
            .map_err(|_| ScanError::TooMany)?;
    }
    Ok(s)
}
