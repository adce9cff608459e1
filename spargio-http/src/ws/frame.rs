//! WebSocket frame headers (RFC 6455 §5.2), sans-IO: parsing one from the
//! front of a buffer, writing one, and the payload mask.

use bytes::{BufMut, BytesMut};

use super::error::ProtocolError;

/// A frame's opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpCode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl OpCode {
    fn from_bits(bits: u8) -> Result<OpCode, ProtocolError> {
        Ok(match bits {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            _ => return Err(ProtocolError::UnknownOpcode(bits)),
        })
    }

    fn bits(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    /// Close, ping and pong: never fragmented, at most 125 bytes.
    pub(crate) fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

/// The most payload a control frame may carry (RFC 6455 §5.5).
pub(crate) const MAX_CONTROL_PAYLOAD: usize = 125;

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    /// The frame ends its message.
    pub(crate) fin: bool,
    pub(crate) opcode: OpCode,
    /// The masking key, when the frame is masked.
    pub(crate) mask: Option<[u8; 4]>,
    /// Payload length in bytes.
    pub(crate) len: u64,
}

/// Parses the frame header at the front of `buf`: `Ok(None)` until all of
/// it is there, else the header and its length in bytes.
///
/// Refused: any of the three reserved bits set (no extension is ever
/// negotiated), an opcode RFC 6455 does not define, a control frame that
/// is fragmented or longer than 125 bytes, and a 64-bit length with its
/// most significant bit set.
pub(crate) fn parse_header(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
    let [b0, b1, ..] = *buf else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err(ProtocolError::ReservedBits);
    }
    let fin = b0 & 0x80 != 0;
    let opcode = OpCode::from_bits(b0 & 0x0F)?;
    let masked = b1 & 0x80 != 0;
    let (len, mut at) = match b1 & 0x7F {
        126 => {
            let Some(bytes) = buf.get(2..4) else {
                return Ok(None);
            };
            (u64::from(u16::from_be_bytes([bytes[0], bytes[1]])), 4)
        }
        127 => {
            let Some(bytes) = buf.get(2..10) else {
                return Ok(None);
            };
            let mut be = [0u8; 8];
            be.copy_from_slice(bytes);
            let len = u64::from_be_bytes(be);
            if len >> 63 != 0 {
                return Err(ProtocolError::LengthOverflow);
            }
            (len, 10)
        }
        short => (u64::from(short), 2),
    };
    if opcode.is_control() {
        if !fin {
            return Err(ProtocolError::FragmentedControl);
        }
        if len > MAX_CONTROL_PAYLOAD as u64 {
            return Err(ProtocolError::ControlTooLong);
        }
    }
    let mask = if masked {
        let Some(key) = buf.get(at..at + 4) else {
            return Ok(None);
        };
        at += 4;
        Some([key[0], key[1], key[2], key[3]])
    } else {
        None
    };
    Ok(Some((
        FrameHeader {
            fin,
            opcode,
            mask,
            len,
        },
        at,
    )))
}

/// Writes a frame header for `len` payload bytes, with the shortest length
/// encoding (RFC 6455 §5.2 requires it).
pub(crate) fn put_header(
    dst: &mut BytesMut,
    fin: bool,
    opcode: OpCode,
    mask: Option<[u8; 4]>,
    len: usize,
) {
    let b0 = if fin { 0x80 } else { 0 } | opcode.bits();
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    dst.put_u8(b0);
    if len < 126 {
        dst.put_u8(mask_bit | len as u8);
    } else if let Ok(short) = u16::try_from(len) {
        dst.put_u8(mask_bit | 126);
        dst.put_u16(short);
    } else {
        dst.put_u8(mask_bit | 127);
        dst.put_u64(len as u64);
    }
    if let Some(key) = mask {
        dst.put_slice(&key);
    }
}

/// XORs `data` with the masking key, `data[0]` being byte `offset` of its
/// frame's payload (so a payload can be unmasked in pieces).
pub(crate) fn apply_mask(data: &mut [u8], key: [u8; 4], offset: u64) {
    let shift = (offset % 4) as usize;
    let rotated = [
        key[shift % 4],
        key[(shift + 1) % 4],
        key[(shift + 2) % 4],
        key[(shift + 3) % 4],
    ];
    let word = u32::from_ne_bytes(rotated);
    let mut chunks = data.chunks_exact_mut(4);
    for chunk in &mut chunks {
        let v = u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]) ^ word;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    for (b, k) in chunks.into_remainder().iter_mut().zip(rotated) {
        *b ^= k;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_examples_parse() {
        // RFC 6455 §5.7: a single-frame unmasked text message "Hello".
        let (h, n) = parse_header(&[0x81, 0x05, 0x48, 0x65]).unwrap().unwrap();
        assert_eq!(
            (h.fin, h.opcode, h.mask, h.len, n),
            (true, OpCode::Text, None, 5, 2)
        );
        // A masked one: key 37 fa 21 3d.
        let frame = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let (h, n) = parse_header(&frame).unwrap().unwrap();
        assert_eq!(h.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
        let mut payload = frame[n..].to_vec();
        apply_mask(&mut payload, h.mask.unwrap(), 0);
        assert_eq!(payload, b"Hello");
        // 256 bytes of binary: 16-bit length; 64 KiB: 64-bit length.
        let (h, n) = parse_header(&[0x82, 0x7E, 0x01, 0x00]).unwrap().unwrap();
        assert_eq!((h.opcode, h.len, n), (OpCode::Binary, 256, 4));
        let (h, n) = parse_header(&[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0])
            .unwrap()
            .unwrap();
        assert_eq!((h.len, n), (65536, 10));
        // A fragmented text: first frame without FIN, then a continuation.
        let (h, _) = parse_header(&[0x01, 0x03]).unwrap().unwrap();
        assert_eq!((h.fin, h.opcode), (false, OpCode::Text));
        let (h, _) = parse_header(&[0x80, 0x02]).unwrap().unwrap();
        assert_eq!((h.fin, h.opcode), (true, OpCode::Continuation));
    }

    #[test]
    fn partial_headers_wait_for_more() {
        for whole in [
            &[0x81u8, 0x85, 1, 2, 3, 4][..],
            &[0x82, 0x7E, 0x01, 0x00],
            &[0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0, 9, 9, 9, 9],
        ] {
            for cut in 0..whole.len() {
                assert_eq!(
                    parse_header(&whole[..cut]),
                    Ok(None),
                    "{whole:?} cut at {cut}"
                );
            }
            assert!(parse_header(whole).unwrap().is_some());
        }
    }

    #[test]
    fn malformed_headers_are_refused() {
        assert_eq!(
            parse_header(&[0xC1, 0x00]),
            Err(ProtocolError::ReservedBits)
        );
        assert_eq!(
            parse_header(&[0x91, 0x00]),
            Err(ProtocolError::ReservedBits)
        );
        assert_eq!(
            parse_header(&[0x83, 0x00]),
            Err(ProtocolError::UnknownOpcode(3))
        );
        assert_eq!(
            parse_header(&[0x8B, 0x00]),
            Err(ProtocolError::UnknownOpcode(0xB))
        );
        assert_eq!(
            parse_header(&[0x09, 0x00]),
            Err(ProtocolError::FragmentedControl)
        );
        assert_eq!(
            parse_header(&[0x89, 0x7E, 0, 126]),
            Err(ProtocolError::ControlTooLong)
        );
        assert!(parse_header(&[0x89, 125]).unwrap().is_some());
        assert_eq!(
            parse_header(&[0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            Err(ProtocolError::LengthOverflow)
        );
    }

    #[test]
    fn headers_written_parse_back_with_the_shortest_length() {
        for (len, header_len) in [(0, 2), (125, 2), (126, 4), (65535, 4), (65536, 10)] {
            for mask in [None, Some([9, 8, 7, 6])] {
                let mut dst = BytesMut::new();
                put_header(&mut dst, true, OpCode::Binary, mask, len);
                let extra = if mask.is_some() { 4 } else { 0 };
                assert_eq!(dst.len(), header_len + extra, "len {len}");
                let (h, n) = parse_header(&dst).unwrap().unwrap();
                assert_eq!((h.len, h.mask, n), (len as u64, mask, dst.len()));
            }
        }
    }

    #[test]
    fn masking_in_pieces_matches_masking_whole() {
        let key = [0x11, 0x22, 0x33, 0x44];
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let mut whole = data.clone();
        apply_mask(&mut whole, key, 0);
        for (i, b) in whole.iter().enumerate() {
            assert_eq!(*b, data[i] ^ key[i % 4]);
        }
        let mut pieces = data.clone();
        let mut at = 0;
        for size in [1, 3, 7, 64, 5, 920] {
            apply_mask(&mut pieces[at..at + size], key, at as u64);
            at += size;
        }
        assert_eq!(pieces, whole);
    }
}
