//! Decoding the chunked transfer coding (RFC 9112 §7.1).

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderName, HeaderValue};
use http::HeaderMap;

use super::fields::STACK_HEADERS;
use super::head_scan::HeadScan;
use super::{ChunkedError, Limits};

/// A step of chunked decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkedItem {
    /// Body bytes (never empty).
    Data(Bytes),
    /// Everything buffered was consumed; read more and call again.
    NeedMore,
    /// The last chunk and the trailer section were consumed: the body is
    /// complete. Carries the trailer fields, `None` if there were none.
    End(Option<HeaderMap>),
}

/// Where the decoder is inside the coding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the hex digits of a chunk size.
    Size,
    /// Whitespace after the size; only an extension may follow.
    SizeWs,
    /// Inside chunk extensions, up to the CR.
    Ext,
    /// After the CR ending the size line.
    SizeLf,
    /// Inside chunk data.
    Data,
    /// After chunk data: expecting CR.
    DataCr,
    /// After chunk data and CR: expecting LF.
    DataLf,
    /// After the last chunk: the trailer section.
    Trailers,
    /// The body is complete.
    Done,
}

/// The most hex digits a chunk size may have, leading zeros included: 16
/// carry any `u64`; the rest bounds a run of zeros, which carries nothing.
pub const MAX_CHUNK_SIZE_DIGITS: u8 = 64;

/// An incremental decoder of one chunked body.
///
/// Strict: sizes are hex digits only (no sign, `0x`, or leading spaces),
/// of a value that fits a `u64`, in at most [`MAX_CHUNK_SIZE_DIGITS`] digits
/// (leading zeros are allowed, as RFC 9112 has them), every line ends in CRLF (a bare LF is an error), chunk
/// extensions are allowed but their bytes (and the whitespace before them)
/// count against [`Limits::max_chunk_ext_bytes`] for the whole body and
/// must not contain control characters, and the trailer section is
/// limited by [`Limits::max_trailer_bytes`] and [`Limits::max_headers`] and
/// parsed like a head (obs-fold, bad names, and the framing/routing fields
/// Content-Length, Transfer-Encoding and Host are refused).
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    /// In `Size`: the size so far; in `Data`: bytes of the chunk left.
    size: u64,
    /// Hex digits read of the current size.
    digits: u8,
    /// Extension bytes still allowed for this body.
    ext_budget: usize,
    max_trailer_bytes: usize,
    max_trailers: usize,
    /// What of the trailer section was looked at, so a section dripped a
    /// byte at a time is not parsed again from its start after each read.
    trailer_scan: HeadScan,
}

impl ChunkedDecoder {
    /// A decoder at the start of a chunked body, enforcing `limits`.
    pub fn new(limits: &Limits) -> ChunkedDecoder {
        ChunkedDecoder {
            state: State::Size,
            size: 0,
            digits: 0,
            ext_budget: limits.max_chunk_ext_bytes,
            max_trailer_bytes: limits.max_trailer_bytes,
            max_trailers: limits.max_headers,
            trailer_scan: HeadScan::default(),
        }
    }

    /// Whether the whole body, trailers included, has been decoded.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes from the front of `src`, consuming (advancing past) what it
    /// used.
    ///
    /// Data is handed out zero-copy (`split_to(..).freeze()`), at most what
    /// is buffered of the current chunk. Such data shares `src`'s
    /// allocation while it is held: a caller that hands small pieces on to
    /// be kept should copy them, so `src` can reuse its memory. Returns
    /// [`ChunkedItem::NeedMore`] when `src` holds nothing more to decode; once the body is done,
    /// returns `End(None)` without consuming anything. After an error the
    /// body (and the connection) cannot be trusted any more.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<ChunkedItem, ChunkedError> {
        loop {
            match self.state {
                State::Data => {
                    if src.is_empty() {
                        return Ok(ChunkedItem::NeedMore);
                    }
                    let n = self.size.min(src.len() as u64) as usize;
                    self.size -= n as u64;
                    if self.size == 0 {
                        self.state = State::DataCr;
                    }
                    return Ok(ChunkedItem::Data(src.split_to(n).freeze()));
                }
                State::Trailers => return self.trailers(src),
                State::Done => return Ok(ChunkedItem::End(None)),
                _ => {
                    let used = self.scan_lines(src)?;
                    src.advance(used);
                    // `scan_lines` stops early only when leaving the line
                    // states, so still being in one means `src` ran out.
                    if self.in_line() {
                        return Ok(ChunkedItem::NeedMore);
                    }
                }
            }
        }
    }

    /// In a state that reads line bytes one by one.
    #[inline]
    fn in_line(&self) -> bool {
        !matches!(self.state, State::Data | State::Trailers | State::Done)
    }

    /// Runs the line states over `buf` until a state change to data,
    /// trailers, or the end of `buf`; returns the bytes consumed.
    fn scan_lines(&mut self, buf: &[u8]) -> Result<usize, ChunkedError> {
        let mut i = 0;
        while i < buf.len() {
            let b = buf[i];
            i += 1;
            match self.state {
                State::Size => {
                    if let Some(d) = hex_value(b) {
                        if self.size >> 60 != 0 {
                            return Err(ChunkedError("chunk size too large"));
                        }
                        if self.digits == MAX_CHUNK_SIZE_DIGITS {
                            return Err(ChunkedError("chunk size has too many digits"));
                        }
                        self.digits += 1;
                        self.size = (self.size << 4) | u64::from(d);
                        continue;
                    }
                    if self.digits == 0 {
                        return Err(ChunkedError("chunk size missing or not hex"));
                    }
                    self.state = match b {
                        b'\r' => State::SizeLf,
                        b';' => {
                            self.spend_ext()?;
                            State::Ext
                        }
                        b' ' | b'\t' => {
                            self.spend_ext()?;
                            State::SizeWs
                        }
                        b'\n' => return Err(ChunkedError("bare LF after chunk size")),
                        _ => return Err(ChunkedError("invalid byte after chunk size")),
                    };
                }
                State::SizeWs => match b {
                    // Framing overhead like the extension it precedes, so
                    // bounded by the same budget.
                    b' ' | b'\t' => self.spend_ext()?,
                    b';' => {
                        self.spend_ext()?;
                        self.state = State::Ext;
                    }
                    _ => {
                        return Err(ChunkedError(
                            "whitespace after chunk size without an extension",
                        ))
                    }
                },
                State::Ext => match b {
                    b'\r' => self.state = State::SizeLf,
                    b'\n' => return Err(ChunkedError("bare LF in chunk extension")),
                    0..=0x08 | 0x0a..=0x1f | 0x7f => {
                        return Err(ChunkedError("control byte in chunk extension"))
                    }
                    _ => self.spend_ext()?,
                },
                State::SizeLf => {
                    if b != b'\n' {
                        return Err(ChunkedError("chunk size line not ended by CRLF"));
                    }
                    self.digits = 0;
                    if self.size == 0 {
                        self.state = State::Trailers;
                    } else {
                        self.state = State::Data;
                    }
                    return Ok(i);
                }
                State::DataCr => {
                    if b != b'\r' {
                        return Err(ChunkedError("chunk data not followed by CRLF"));
                    }
                    self.state = State::DataLf;
                }
                State::DataLf => {
                    if b != b'\n' {
                        return Err(ChunkedError("chunk data not followed by CRLF"));
                    }
                    self.state = State::Size;
                    self.size = 0;
                }
                // Not line states: leave this byte to `decode`.
                State::Data | State::Trailers | State::Done => return Ok(i - 1),
            }
        }
        Ok(i)
    }

    /// Counts one chunk-extension byte against the body's budget.
    #[inline]
    fn spend_ext(&mut self) -> Result<(), ChunkedError> {
        if self.ext_budget == 0 {
            return Err(ChunkedError("chunk extensions too large"));
        }
        self.ext_budget -= 1;
        Ok(())
    }

    /// Parses the trailer section once it is complete in `src`.
    fn trailers(&mut self, src: &mut BytesMut) -> Result<ChunkedItem, ChunkedError> {
        // The common case: no trailers, just the final CRLF.
        match &src[..] {
            [] | [b'\r'] => return Ok(ChunkedItem::NeedMore),
            [b'\r', b'\n', ..] => {
                src.advance(2);
                self.state = State::Done;
                return Ok(ChunkedItem::End(None));
            }
            [b'\r', ..] | [b'\n', ..] => {
                return Err(ChunkedError("trailer section not ended by CRLF"))
            }
            _ => {}
        }
        if !self
            .trailer_scan
            .worth_parsing(src, self.max_trailer_bytes, None)
        {
            return Ok(ChunkedItem::NeedMore);
        }
        let scan = &src[..src.len().min(self.max_trailer_bytes)];
        let mut stack;
        let mut heap;
        let slots: &mut [httparse::Header<'_>] = if self.max_trailers <= STACK_HEADERS {
            stack = [httparse::EMPTY_HEADER; STACK_HEADERS];
            &mut stack[..self.max_trailers]
        } else {
            heap = vec![httparse::EMPTY_HEADER; self.max_trailers.min(1 << 15)];
            &mut heap
        };
        let (n, fields) = match httparse::parse_headers(scan, slots) {
            Ok(httparse::Status::Complete(done)) => done,
            Ok(httparse::Status::Partial) if scan.len() >= self.max_trailer_bytes => {
                return Err(ChunkedError("trailer section too large"))
            }
            Ok(httparse::Status::Partial) => return Ok(ChunkedItem::NeedMore),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(ChunkedError("too many trailer fields"))
            }
            Err(_) => return Err(ChunkedError("invalid trailer field")),
        };
        // httparse accepts bare LF line ends; chunked framing does not.
        let section = &scan[..n];
        if section
            .iter()
            .enumerate()
            .any(|(i, &b)| b == b'\n' && (i == 0 || section[i - 1] != b'\r'))
        {
            return Err(ChunkedError("bare LF in trailer section"));
        }
        let mut map = HeaderMap::try_with_capacity(fields.len())
            .map_err(|_| ChunkedError("too many trailer fields"))?;
        for f in fields.iter() {
            let name = HeaderName::from_bytes(f.name.as_bytes())
                .map_err(|_| ChunkedError("invalid trailer field"))?;
            if is_forbidden_trailer(&name) {
                return Err(ChunkedError("framing or routing field in trailers"));
            }
            let value = HeaderValue::from_bytes(f.value)
                .map_err(|_| ChunkedError("invalid trailer field"))?;
            map.try_append(name, value)
                .map_err(|_| ChunkedError("too many trailer fields"))?;
        }
        src.advance(n);
        self.state = State::Done;
        Ok(ChunkedItem::End(if map.is_empty() {
            None
        } else {
            Some(map)
        }))
    }
}

/// Fields that must not appear in trailers because they frame or route the
/// message (RFC 9110 §6.5.1).
pub(super) fn is_forbidden_trailer(name: &HeaderName) -> bool {
    name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING || name == header::HOST
}

/// The value of a hex digit.
#[inline]
fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}
