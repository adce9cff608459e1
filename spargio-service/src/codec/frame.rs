//! The sans-IO core: encoding frames into a buffer and cutting complete
//! frames out of one. No sockets, no runtime: a tokio or blocking client
//! can use these as they are.

use std::fmt;
use std::io;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::status::Status;

/// Size of the big-endian `u32` length that opens every frame.
pub const HEADER_LEN: usize = 4;

/// The largest frame a [`FrameDecoder`] accepts unless told otherwise:
/// 8 MiB.
pub const DEFAULT_MAX_FRAME_LEN: usize = 8 << 20;

/// The largest payload a response frame can carry (the length field is a
/// `u32` and also counts the status byte).
pub const MAX_RESPONSE_PAYLOAD: usize = u32::MAX as usize - 1;

/// The largest payload a request frame can carry.
pub const MAX_REQUEST_PAYLOAD: usize = u32::MAX as usize;

/// Why bytes could not be decoded into a frame. Whether the stream can go
/// on depends on the variant: after [`TooLarge`](Self::TooLarge) nothing
/// was consumed and the stream cannot be resynchronised (the reader should
/// close it); a [`MissingStatus`](Self::MissingStatus) or
/// [`UnknownStatus`](Self::UnknownStatus) frame was whole and has been
/// consumed, so the buffer starts at the next frame and the reader may go
/// on (that frame's content is lost).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// The frame's declared length is more than the decoder accepts.
    ///
    /// Nothing is consumed: the buffer is left as it was, and every later
    /// decode of it fails the same way. The stream cannot be
    /// resynchronised; close it.
    TooLarge {
        /// The declared length (the header's value).
        len: usize,
        /// The decoder's [`max_frame_len`](FrameDecoder::max_frame_len).
        max: usize,
    },
    /// A response frame of length 0: it has no status byte.
    ///
    /// The frame is consumed (by [`FrameDecoder::decode_response`]); the
    /// buffer starts at the next frame.
    MissingStatus,
    /// A response frame whose status byte is not a known [`Status`].
    ///
    /// The frame is consumed (by [`FrameDecoder::decode_response`]),
    /// payload and all; the buffer starts at the next frame.
    UnknownStatus(u8),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the limit of {max} bytes")
            }
            FrameError::MissingStatus => f.write_str("response frame has no status byte"),
            FrameError::UnknownStatus(b) => write!(f, "unknown response status {b}"),
        }
    }
}

impl std::error::Error for FrameError {}

impl From<FrameError> for io::Error {
    /// An [`io::ErrorKind::InvalidData`] error carrying the frame error.
    fn from(e: FrameError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

/// A request header's length field for a payload of `payload_len` bytes,
/// or an [`io::ErrorKind::InvalidInput`] error if the payload is longer
/// than [`MAX_REQUEST_PAYLOAD`].
pub(super) fn request_len(payload_len: usize) -> io::Result<u32> {
    u32::try_from(payload_len).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "request payload of {payload_len} bytes does not fit a frame \
                 (at most {MAX_REQUEST_PAYLOAD})"
            ),
        )
    })
}

/// Appends a request frame's header for a payload of `payload_len` bytes;
/// the payload itself is to follow (write it separately to avoid a copy).
///
/// # Panics
/// If `payload_len` exceeds [`MAX_REQUEST_PAYLOAD`].
pub fn encode_request_header(payload_len: usize, dst: &mut BytesMut) {
    let len = request_len(payload_len).unwrap_or_else(|e| panic!("{e}"));
    dst.put_u32(len);
}

/// Appends a complete request frame: the payload's length, then the
/// payload.
///
/// ```
/// use bytes::BytesMut;
/// use spargio_service::codec::encode_request;
/// let mut buf = BytesMut::new();
/// encode_request(b"hi", &mut buf);
/// assert_eq!(&buf[..], &[0, 0, 0, 2, b'h', b'i']);
/// ```
///
/// # Panics
/// If the payload is longer than [`MAX_REQUEST_PAYLOAD`].
pub fn encode_request(payload: &[u8], dst: &mut BytesMut) {
    dst.reserve(HEADER_LEN + payload.len());
    encode_request_header(payload.len(), dst);
    dst.extend_from_slice(payload);
}

/// Appends a response frame's header and status byte for a payload of
/// `payload_len` bytes; the payload itself is to follow.
///
/// # Panics
/// If `payload_len` exceeds [`MAX_RESPONSE_PAYLOAD`].
pub fn encode_response_header(status: Status, payload_len: usize, dst: &mut BytesMut) {
    let len = payload_len
        .checked_add(1)
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or_else(|| panic!("response payload of {payload_len} bytes does not fit a frame"));
    dst.put_u32(len);
    dst.put_u8(status.as_u8());
}

/// Appends a complete response frame: the length of what follows, the
/// status byte, then the payload (the response, or an error message).
///
/// ```
/// use bytes::BytesMut;
/// use spargio_service::codec::{encode_response, Status};
/// let mut buf = BytesMut::new();
/// encode_response(Status::Ok, b"yo", &mut buf);
/// assert_eq!(&buf[..], &[0, 0, 0, 3, 0, b'y', b'o']);
/// ```
///
/// # Panics
/// If the payload is longer than [`MAX_RESPONSE_PAYLOAD`].
pub fn encode_response(status: Status, payload: &[u8], dst: &mut BytesMut) {
    dst.reserve(HEADER_LEN + 1 + payload.len());
    encode_response_header(status, payload.len(), dst);
    dst.extend_from_slice(payload);
}

/// Splits a response frame (as [`FrameDecoder::decode`] yields it) into
/// its status and payload.
pub fn split_response(mut frame: Bytes) -> Result<(Status, Bytes), FrameError> {
    if frame.is_empty() {
        return Err(FrameError::MissingStatus);
    }
    let byte = frame.get_u8();
    let status = Status::from_u8(byte).ok_or(FrameError::UnknownStatus(byte))?;
    Ok((status, frame))
}

/// The largest length a decoder accepts whatever it is told: what a `u32`
/// header can declare, and no more than leaves `HEADER_LEN + len` within a
/// `usize` (which bounds it on 32-bit targets).
const MAX_DECLARED_LEN: usize = if (u32::MAX as usize) < usize::MAX - HEADER_LEN {
    u32::MAX as usize
} else {
    usize::MAX - HEADER_LEN
};

/// Cuts complete frames out of a read buffer.
///
/// Feed it the buffer your reads append to; each [`decode`](Self::decode)
/// removes one complete frame from the front and returns its payload
/// (sharing the buffer's memory, no copy), or `None` if the buffer does not
/// hold a complete frame yet: read more and call again.
///
/// A payload shares the buffer's whole allocation, not just its own bytes:
/// holding it keeps that allocation (and every other frame's bytes in it)
/// alive. Copy a payload kept long, or one small next to a large buffer,
/// with [`Bytes::copy_from_slice`]. The decoder keeps
/// no state of its own, so a frame may arrive in any number of reads and
/// several frames may arrive in one.
///
/// ```
/// use bytes::BytesMut;
/// use spargio_service::codec::{encode_request, FrameDecoder};
///
/// let decoder = FrameDecoder::new();
/// let mut wire = BytesMut::new();
/// encode_request(b"one", &mut wire);
/// encode_request(b"two", &mut wire);
///
/// let mut buf = BytesMut::new();
/// buf.extend_from_slice(&wire[..5]); // a header and one byte
/// assert_eq!(decoder.decode(&mut buf).unwrap(), None);
/// buf.extend_from_slice(&wire[5..]); // the rest
/// assert_eq!(&decoder.decode(&mut buf).unwrap().unwrap()[..], b"one");
/// assert_eq!(&decoder.decode(&mut buf).unwrap().unwrap()[..], b"two");
/// assert_eq!(decoder.decode(&mut buf).unwrap(), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameDecoder {
    max_frame_len: usize,
}

impl FrameDecoder {
    /// A decoder that accepts frames up to [`DEFAULT_MAX_FRAME_LEN`].
    pub const fn new() -> FrameDecoder {
        FrameDecoder {
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
        }
    }

    /// A decoder that accepts frames whose declared length is at most
    /// `max` bytes (for a response frame, the status byte counts).
    ///
    /// A `max` above what a header can declare, `u32::MAX` (on a 32-bit
    /// target, `usize::MAX - HEADER_LEN`, so that a frame with its header
    /// still has a length), is clamped to it.
    pub const fn with_max_frame_len(max: usize) -> FrameDecoder {
        let max = if max < MAX_DECLARED_LEN {
            max
        } else {
            MAX_DECLARED_LEN
        };
        FrameDecoder { max_frame_len: max }
    }

    /// The largest declared length this decoder accepts.
    pub const fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// The declared length of the frame at the front of `buf`, once its
    /// header is complete. At most [`MAX_DECLARED_LEN`], so adding
    /// [`HEADER_LEN`] to it cannot overflow.
    fn declared_len(&self, buf: &[u8]) -> Result<Option<usize>, FrameError> {
        let Some(header) = buf.first_chunk::<HEADER_LEN>() else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(*header) as usize;
        if len > self.max_frame_len {
            return Err(FrameError::TooLarge {
                len,
                max: self.max_frame_len,
            });
        }
        Ok(Some(len))
    }

    /// Removes the first complete frame from `buf` and returns its payload
    /// (without the header, sharing `buf`'s allocation: see the
    /// [type docs](Self)); `Ok(None)` if `buf` holds no complete frame
    /// yet (it is left as it was). Fails with [`FrameError::TooLarge`] as
    /// soon as the header declares more than
    /// [`max_frame_len`](Self::max_frame_len), without waiting for the
    /// payload; `buf` is left as it was.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        let Some(len) = self.declared_len(buf)? else {
            return Ok(None);
        };
        if buf.len() < HEADER_LEN + len {
            return Ok(None);
        }
        buf.advance(HEADER_LEN);
        Ok(Some(buf.split_to(len).freeze()))
    }

    /// [`decode`](Self::decode) for a response frame, split into its status
    /// and payload ([`split_response`]). A frame without a known status
    /// ([`FrameError::MissingStatus`], [`FrameError::UnknownStatus`]) is
    /// still taken out of `buf`.
    pub fn decode_response(
        &self,
        buf: &mut BytesMut,
    ) -> Result<Option<(Status, Bytes)>, FrameError> {
        match self.decode(buf)? {
            Some(frame) => split_response(frame).map(Some),
            None => Ok(None),
        }
    }

    /// How many more bytes `buf` needs before [`decode`](Self::decode) can
    /// return the next frame: 0 when it already can, the rest of the header
    /// while that is incomplete, then the rest of the payload. A reader can
    /// size its next read with it.
    pub fn bytes_needed(&self, buf: &[u8]) -> Result<usize, FrameError> {
        Ok(match self.declared_len(buf)? {
            None => HEADER_LEN - buf.len(),
            Some(len) => (HEADER_LEN + len).saturating_sub(buf.len()),
        })
    }
}

impl Default for FrameDecoder {
    fn default() -> FrameDecoder {
        FrameDecoder::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(payload: &[u8]) -> BytesMut {
        let mut b = BytesMut::new();
        encode_request(payload, &mut b);
        b
    }

    #[test]
    fn a_partial_header_yields_nothing_and_consumes_nothing() {
        let d = FrameDecoder::new();
        let wire = request(b"abc");
        for cut in 0..HEADER_LEN {
            let mut buf = BytesMut::from(&wire[..cut]);
            assert_eq!(d.decode(&mut buf), Ok(None));
            assert_eq!(buf.len(), cut);
            assert_eq!(d.bytes_needed(&buf), Ok(HEADER_LEN - cut));
        }
    }

    #[test]
    fn a_header_without_its_whole_payload_yields_nothing() {
        let d = FrameDecoder::new();
        let wire = request(b"abcdef");
        let mut buf = BytesMut::from(&wire[..HEADER_LEN + 2]);
        assert_eq!(d.decode(&mut buf), Ok(None));
        assert_eq!(buf.len(), HEADER_LEN + 2);
        assert_eq!(d.bytes_needed(&buf), Ok(4));
    }

    #[test]
    fn several_frames_in_one_read_come_out_in_order() {
        let d = FrameDecoder::new();
        let mut buf = BytesMut::new();
        for p in [&b"first"[..], b"", b"third frame"] {
            encode_request(p, &mut buf);
        }
        buf.extend_from_slice(&[0, 0]); // the start of a fourth header
        assert_eq!(d.decode(&mut buf).unwrap().unwrap(), &b"first"[..]);
        assert_eq!(d.decode(&mut buf).unwrap().unwrap(), &b""[..]);
        assert_eq!(d.decode(&mut buf).unwrap().unwrap(), &b"third frame"[..]);
        assert_eq!(d.decode(&mut buf), Ok(None));
        assert_eq!(&buf[..], &[0, 0]);
    }

    #[test]
    fn a_frame_split_over_many_reads_arrives_whole() {
        let d = FrameDecoder::new();
        let payload: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let wire = request(&payload);
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for chunk in wire.chunks(3) {
            assert!(frames.is_empty(), "frame yielded before its last byte");
            buf.extend_from_slice(chunk);
            if let Some(f) = d.decode(&mut buf).unwrap() {
                frames.push(f);
            }
        }
        assert_eq!(frames.len(), 1);
        assert_eq!(&frames[0][..], &payload[..]);
        assert!(buf.is_empty());
    }

    #[test]
    fn an_empty_payload_is_a_frame() {
        let d = FrameDecoder::new();
        let mut buf = request(b"");
        assert_eq!(&buf[..], &[0, 0, 0, 0]);
        assert_eq!(d.bytes_needed(&buf), Ok(0));
        assert_eq!(d.decode(&mut buf).unwrap().unwrap().len(), 0);
        assert!(buf.is_empty());
    }

    #[test]
    fn a_frame_over_the_limit_fails_on_its_header() {
        let d = FrameDecoder::with_max_frame_len(10);
        // Exactly the limit is fine.
        let mut ok = request(&[1; 10]);
        assert_eq!(d.decode(&mut ok).unwrap().unwrap().len(), 10);
        // One more fails as soon as the header is in, payload or not.
        let mut big = BytesMut::from(&request(&[1; 11])[..HEADER_LEN]);
        let err = FrameError::TooLarge { len: 11, max: 10 };
        assert_eq!(d.decode(&mut big), Err(err.clone()));
        assert_eq!(d.bytes_needed(&big), Err(err.clone()));
        assert_eq!(big.len(), HEADER_LEN, "a failed decode consumes nothing");
        assert_eq!(
            err.to_string(),
            "frame of 11 bytes exceeds the limit of 10 bytes"
        );
        assert_eq!(io::Error::from(err).kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn the_default_limit_is_8_mib() {
        let d = FrameDecoder::default();
        assert_eq!(d.max_frame_len(), 8 * 1024 * 1024);
        let mut at = BytesMut::new();
        encode_request_header(8 << 20, &mut at);
        assert_eq!(d.decode(&mut at), Ok(None));
        let mut over = BytesMut::new();
        encode_request_header((8 << 20) + 1, &mut over);
        assert!(matches!(
            d.decode(&mut over),
            Err(FrameError::TooLarge { .. })
        ));
        // The largest header value is refused too, whatever the platform.
        let mut max = BytesMut::from(&[0xff; 4][..]);
        assert_eq!(
            d.decode(&mut max),
            Err(FrameError::TooLarge {
                len: u32::MAX as usize,
                max: 8 << 20
            })
        );
    }

    #[test]
    fn the_limit_is_clamped_to_what_a_header_can_declare() {
        let d = FrameDecoder::with_max_frame_len(usize::MAX);
        assert!(d.max_frame_len() <= u32::MAX as usize);
        assert!(d.max_frame_len() <= usize::MAX - HEADER_LEN);
        assert_eq!(
            d,
            FrameDecoder::with_max_frame_len(u32::MAX as usize),
            "u32::MAX is clamped no further on this target"
        );
        // The largest header's frame and its header add up without
        // overflow: still to come whole, or refused outright.
        let mut max = BytesMut::from(&[0xff; 4][..]);
        match d.decode(&mut max) {
            Ok(None) => assert_eq!(d.bytes_needed(&max), Ok(u32::MAX as usize)),
            Err(FrameError::TooLarge { .. }) => {}
            other => panic!("the largest header decoded as {other:?}"),
        }
        assert_eq!(max.len(), HEADER_LEN);
        let protocol = super::super::LengthDelimited::new().max_frame_len(usize::MAX);
        assert_eq!(protocol.get_max_frame_len(), d.max_frame_len());
    }

    #[test]
    fn responses_round_trip_with_their_status() {
        let d = FrameDecoder::new();
        let mut buf = BytesMut::new();
        encode_response(Status::Ok, b"fine", &mut buf);
        encode_response(Status::ServiceError, b"service error: boom", &mut buf);
        encode_response(Status::Ok, b"", &mut buf);
        assert_eq!(&buf[..HEADER_LEN + 1], &[0, 0, 0, 5, 0]);
        let (s, p) = d.decode_response(&mut buf).unwrap().unwrap();
        assert_eq!((s, &p[..]), (Status::Ok, &b"fine"[..]));
        let (s, p) = d.decode_response(&mut buf).unwrap().unwrap();
        assert_eq!(
            (s, &p[..]),
            (Status::ServiceError, &b"service error: boom"[..])
        );
        let (s, p) = d.decode_response(&mut buf).unwrap().unwrap();
        assert_eq!((s, p.len()), (Status::Ok, 0));
        assert_eq!(d.decode_response(&mut buf), Ok(None));
    }

    #[test]
    fn malformed_responses_are_typed_errors() {
        let d = FrameDecoder::new();
        let mut empty = request(b"");
        assert_eq!(
            d.decode_response(&mut empty),
            Err(FrameError::MissingStatus)
        );
        let mut unknown = request(&[9, b'x']);
        assert_eq!(
            d.decode_response(&mut unknown),
            Err(FrameError::UnknownStatus(9))
        );
    }

    #[test]
    fn headers_alone_let_the_payload_be_written_separately() {
        let mut buf = BytesMut::new();
        encode_request_header(3, &mut buf);
        encode_response_header(Status::TimedOut, 3, &mut buf);
        assert_eq!(&buf[..], &[0, 0, 0, 3, 0, 0, 0, 4, 3]);
    }

    #[test]
    fn a_request_payload_over_u32_is_invalid_input() {
        assert_eq!(request_len(0).unwrap(), 0);
        assert_eq!(request_len(MAX_REQUEST_PAYLOAD).unwrap(), u32::MAX);
        if let Some(over) = MAX_REQUEST_PAYLOAD.checked_add(1) {
            let e = request_len(over).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
            assert!(e.to_string().contains("does not fit a frame"), "{e}");
        }
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    #[should_panic(expected = "does not fit a frame")]
    fn a_request_header_over_u32_panics() {
        encode_request_header(u32::MAX as usize + 1, &mut BytesMut::new());
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    #[should_panic(expected = "does not fit a frame")]
    fn a_response_payload_over_u32_panics() {
        encode_response_header(Status::Ok, u32::MAX as usize, &mut BytesMut::new());
    }
}
