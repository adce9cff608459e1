//! Field-level rules shared by request, response and trailer parsing and by
//! the encoders: Content-Length and Transfer-Encoding framing, Connection
//! tokens, list splitting and value checks.

use std::mem::MaybeUninit;

use bytes::{BufMut, Bytes};
use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;

/// Header slots kept on the stack; larger `max_headers` use a heap vector.
pub(super) const STACK_HEADERS: usize = 100;

/// A `HeaderMap` cannot hold more entries than this, so more parse slots
/// would be useless.
const MAX_MAP_HEADERS: usize = 1 << 15;

/// Uninitialized httparse slots on the stack (creating them costs nothing).
pub(super) type StackSlots<'b> = [MaybeUninit<httparse::Header<'b>>; STACK_HEADERS];

/// Fresh stack slots.
#[inline(always)]
pub(super) fn stack_slots<'b>() -> StackSlots<'b> {
    [MaybeUninit::uninit(); STACK_HEADERS]
}

/// Room for `max` headers: the stack slots when they are enough, else
/// `heap` (filled here).
#[inline]
pub(super) fn slots<'a, 'b>(
    stack: &'a mut StackSlots<'b>,
    heap: &'a mut Vec<MaybeUninit<httparse::Header<'b>>>,
    max: usize,
) -> &'a mut [MaybeUninit<httparse::Header<'b>>] {
    if max <= STACK_HEADERS {
        &mut stack[..max]
    } else {
        *heap = vec![MaybeUninit::uninit(); max.min(MAX_MAP_HEADERS)];
        heap
    }
}

/// Strips optional whitespace (SP / HTAB) from both ends.
#[inline]
pub(super) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Iterates the non-empty, OWS-trimmed elements of a comma-separated list
/// (empty elements are ignored, as RFC 9110 §5.6.1 asks of recipients).
#[inline]
pub(super) fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|e| !e.is_empty())
}

/// Whether a comma-separated list value contains `token` (ASCII
/// case-insensitive).
#[inline]
pub(super) fn list_has_token(value: &[u8], token: &str) -> bool {
    list_elements(value).any(|e| e.eq_ignore_ascii_case(token.as_bytes()))
}

/// Whether any `Connection` header in `headers` lists `token` (ASCII
/// case-insensitive), e.g. `connection_has_token(&h, "close")`.
///
/// The server uses this to fold a response's own `Connection: close` into
/// the keep-alive decision before calling
/// [`encode_response_head`](super::encode_response_head), which regenerates
/// the `Connection` header.
pub fn connection_has_token(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(http::header::CONNECTION)
        .iter()
        .any(|v| list_has_token(v.as_bytes(), token))
}

/// Parses one Content-Length field value: a list whose elements must all be
/// plain ASCII digits (no sign, no spaces inside, no hex), fit in a `u64`,
/// and be equal.
pub(super) fn parse_content_length_value(value: &[u8]) -> Result<u64, &'static str> {
    let mut result: Option<u64> = None;
    for element in value.split(|&b| b == b',') {
        let n = parse_digits(trim_ows(element))?;
        match result {
            Some(prev) if prev != n => return Err("differing content-length values"),
            _ => result = Some(n),
        }
    }
    // `split` always yields at least one element, so `result` is set.
    result.ok_or("content-length is not plain digits")
}

/// Plain ASCII decimal digits, at least one, without overflow.
#[inline]
fn parse_digits(s: &[u8]) -> Result<u64, &'static str> {
    if s.is_empty() {
        return Err("content-length is not plain digits");
    }
    let mut n: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return Err("content-length is not plain digits");
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
            .ok_or("content-length overflows u64")?;
    }
    Ok(n)
}

/// The Content-Length of `headers`: `Ok(None)` without the header,
/// `Ok(Some(n))` when every Content-Length field (and every element of a
/// comma list) is the same plain decimal number, `Err` otherwise.
pub fn parse_content_length(headers: &HeaderMap) -> Result<Option<u64>, &'static str> {
    let mut cl = ContentLength::default();
    for v in headers.get_all(http::header::CONTENT_LENGTH) {
        cl.add(v.as_bytes())?;
    }
    Ok(cl.value)
}

/// Accumulates Content-Length fields of one head.
#[derive(Default)]
pub(super) struct ContentLength {
    pub(super) value: Option<u64>,
}

impl ContentLength {
    #[inline]
    pub(super) fn add(&mut self, value: &[u8]) -> Result<(), &'static str> {
        let n = parse_content_length_value(value)?;
        match self.value {
            Some(prev) if prev != n => Err("differing content-length values"),
            _ => {
                self.value = Some(n);
                Ok(())
            }
        }
    }
}

/// Accumulates the transfer codings of all Transfer-Encoding fields of one
/// head, in order.
#[derive(Default)]
pub(super) struct TransferEncoding {
    /// A Transfer-Encoding field was present.
    pub(super) present: bool,
    /// How many times `chunked` was listed.
    pub(super) chunked: u32,
    /// The last listed coding is `chunked`.
    pub(super) last_is_chunked: bool,
    /// A coding other than `chunked` was listed.
    pub(super) other: bool,
}

impl TransferEncoding {
    #[inline]
    pub(super) fn add(&mut self, value: &[u8]) {
        self.present = true;
        for coding in list_elements(value) {
            if coding.eq_ignore_ascii_case(b"chunked") {
                self.chunked = self.chunked.saturating_add(1);
                self.last_is_chunked = true;
            } else {
                self.other = true;
                self.last_is_chunked = false;
            }
        }
    }
}

/// Whether a value can be written on a header line: no CR, LF or NUL.
#[inline]
pub(super) fn value_is_writable(value: &[u8]) -> bool {
    !value.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0)
}

/// The error for an unwritable header value.
#[cold]
pub(super) fn bad_value(name: &HeaderName) -> super::EncodeError {
    super::EncodeError(format!("CR/LF/NUL in value of header {name}"))
}

/// Builds a `HeaderValue` from a value httparse accepted, sharing `head`.
///
/// `range` locates the value inside `head`.
#[inline]
pub(super) fn shared_value(head: &Bytes, range: std::ops::Range<usize>) -> HeaderValue {
    let bytes = head.slice(range);
    debug_assert!(HeaderValue::from_bytes(&bytes).is_ok());
    // SAFETY: httparse accepts only HTAB, 0x20..=0x7E and 0x80..=0xFF in a
    // header value (its HEADER_VALUE_MAP, and the same set in its SIMD
    // paths), which is exactly the set `HeaderValue` allows; the check is
    // not repeated here because this runs for every header of every request.
    unsafe { HeaderValue::from_maybe_shared_unchecked(bytes) }
}

/// Offset range of `part` (a subslice of `whole`) inside `whole`.
#[inline]
pub(super) fn range_in(whole: &[u8], part: &[u8]) -> std::ops::Range<usize> {
    let start = part.as_ptr() as usize - whole.as_ptr() as usize;
    debug_assert!(start + part.len() <= whole.len());
    start..start + part.len()
}

/// Whether a Host field value is acceptable: empty, or `host[:port]`
/// without userinfo.
pub(super) fn host_is_valid(value: &[u8]) -> bool {
    if value.is_empty() {
        return true;
    }
    if is_plain_host(value) {
        return true;
    }
    if value.contains(&b'@') {
        return false;
    }
    host_port_shape_is_valid(value) && http::uri::Authority::try_from(value).is_ok()
}

/// The parts of `uri-host [":" port]` (RFC 9112 §3.2, RFC 3986 §3.2.2)
/// that `http::uri::Authority` does not check: the port is digits only
/// (`host:8a`, `evil.example:.victim.example` are refused), and brackets
/// appear only around a whole IP-literal host (`[::1]`, `[v1.x]`), never
/// inside a name (`a[b]c`).
pub(super) fn host_port_shape_is_valid(value: &[u8]) -> bool {
    let port_part = if let Some(literal) = value.strip_prefix(b"[") {
        let Some(end) = literal.iter().position(|&b| b == b']') else {
            return false;
        };
        if !ip_literal_is_valid(&literal[..end]) {
            return false;
        }
        &literal[end + 1..]
    } else {
        if value.iter().any(|&b| b == b'[' || b == b']') {
            return false;
        }
        match value.iter().rposition(|&b| b == b':') {
            Some(colon) => &value[colon..],
            None => &[],
        }
    };
    match port_part.split_first() {
        None => true,
        Some((b':', port)) => port.iter().all(u8::is_ascii_digit),
        Some(_) => false,
    }
}

/// The inside of an IP-literal: an IPv6 address (RFC 3986's forms, which
/// `Ipv6Addr` parses; no zone id) or an IPvFuture (`v` hex digits `.` then
/// unreserved, sub-delims or `:`).
fn ip_literal_is_valid(inside: &[u8]) -> bool {
    if let Some(rest) = inside
        .strip_prefix(b"v")
        .or_else(|| inside.strip_prefix(b"V"))
    {
        let hex = rest.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        let Some((b'.', tail)) = rest[hex..].split_first() else {
            return false;
        };
        return hex > 0
            && !tail.is_empty()
            && tail
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:".contains(&b));
    }
    std::str::from_utf8(inside)
        .ok()
        .and_then(|s| s.parse::<std::net::Ipv6Addr>().ok())
        .is_some()
}

/// The common Host shape, checked without a full authority parse: a name
/// or IPv4 address of letters, digits, `.` and `-`, and an optional port
/// of 1 to 5 digits up to 65535. Anything else takes the full parse.
fn is_plain_host(value: &[u8]) -> bool {
    // One pass: the name's bytes up to the first one that is not, which
    // must be the end or the port's colon (this runs for every request).
    let name_len = value
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || b == b'.' || b == b'-'))
        .unwrap_or(value.len());
    if name_len == 0 {
        return false;
    }
    match value[name_len..] {
        [] => true,
        [b':', ref port @ ..] => {
            (1..=5).contains(&port.len())
                && port
                    .iter()
                    .try_fold(0u32, |n, &d| {
                        d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
                    })
                    .is_some_and(|n| n <= 65535)
        }
        _ => false,
    }
}

/// Writes `n` in decimal.
#[inline]
pub(super) fn put_decimal(dst: &mut bytes::BytesMut, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Byte by byte into reserved room: a handful of digits, where a
    // copy of a slice this short is a call to `memcpy` (it showed in the
    // pipelined benchmark's profile).
    dst.reserve(buf.len() - i);
    for &digit in &buf[i..] {
        dst.put_u8(digit);
    }
}

/// Writes `n` in lowercase hexadecimal without leading zeros.
#[inline]
pub(super) fn put_hex(dst: &mut bytes::BytesMut, mut n: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 16];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = DIGITS[(n & 0xf) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    dst.extend_from_slice(&buf[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_hosts_take_the_fast_path_and_agree_with_the_full_parse() {
        for v in [
            "localhost",
            "localhost:8080",
            "example.com",
            "a-b.example.com:1",
            "127.0.0.1:65535",
            "10.0.0.1",
        ] {
            assert!(is_plain_host(v.as_bytes()), "{v}");
            assert!(http::uri::Authority::try_from(v).is_ok(), "{v}");
            assert!(host_is_valid(v.as_bytes()), "{v}");
        }
    }

    #[test]
    fn other_shapes_take_the_full_parse() {
        for v in [
            "[::1]:8080",
            "host:65536",
            "host:",
            ":80",
            "host:123456",
            "user@host",
            "ho st",
            "host:8a",
            "host:1:2",
        ] {
            assert!(!is_plain_host(v.as_bytes()), "{v}");
        }
        assert!(host_is_valid(b"[::1]:8080"));
        assert!(host_is_valid(b"[::1]"));
        assert!(host_is_valid(b"[v1.fe80::a+en1]:80"));
        assert!(host_is_valid(b"host:"));
        assert!(host_is_valid(b""));
        assert!(!host_is_valid(b"user@host"));
        assert!(!host_is_valid(b"ho st"));
    }
}
