//! Messages to and from frames, sans-IO: the decoder takes whole frames off
//! the front of a buffer and joins fragments; the encoder writes one
//! message as one frame.

use bytes::{Buf, BufMut, BytesMut};

use super::error::{ProtocolError, WsError};
use super::frame::{apply_mask, parse_header, put_header, OpCode, MAX_CONTROL_PAYLOAD};
use super::message::{close_code, CloseFrame, Message};
use super::utf8::Utf8Bytes;

/// Payloads shorter than this are copied out of the read buffer; longer
/// ones take their bytes of it without a copy.
const COPY_BELOW: usize = 16 * 1024;

/// The most room reserved ahead of a frame's bytes arriving.
const RESERVE_STEP: usize = 64 * 1024;

/// Which end of the connection this is: a server's peer masks every
/// frame and a server masks none; a client is the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The end that accepted the handshake.
    Server,
    /// The end that asked for it.
    Client,
}

/// A fragmented message being received.
struct Partial {
    text: bool,
    data: BytesMut,
    /// For text: how much of `data` is known to be valid UTF-8 (what
    /// follows is at most an unfinished character).
    checked: usize,
}

impl Partial {
    /// Checks the text received since the last check, so that invalid
    /// UTF-8 ends the message at the fragment that brought it, not after
    /// the whole message was buffered (RFC 6455 §8.1 "fail fast"). A
    /// character split between fragments waits for its end.
    fn check_text(&mut self) -> Result<(), ProtocolError> {
        if !self.text {
            return Ok(());
        }
        match std::str::from_utf8(&self.data[self.checked..]) {
            Ok(_) => self.checked = self.data.len(),
            Err(e) if e.error_len().is_none() => self.checked += e.valid_up_to(),
            Err(_) => return Err(ProtocolError::InvalidUtf8),
        }
        Ok(())
    }
}

/// Turns received bytes into messages, checking every rule of RFC 6455
/// §5 and the configured limits.
pub(crate) struct Decoder {
    role: Role,
    max_frame: usize,
    max_message: usize,
    partial: Option<Partial>,
}

impl Decoder {
    pub(crate) fn new(role: Role, max_frame: usize, max_message: usize) -> Decoder {
        Decoder {
            role,
            max_frame,
            max_message,
            partial: None,
        }
    }

    /// Takes frames off the front of `buf` until one completes a message
    /// (`Ok(Some)`) or what is left is not a whole frame (`Ok(None)`: read
    /// more). An error is final: the connection must be closed with its
    /// close code.
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, ProtocolError> {
        loop {
            let Some((header, header_len)) = parse_header(buf)? else {
                return Ok(None);
            };
            // Server: the peer masks; client: it must not.
            if header.mask.is_some() != (self.role == Role::Server) {
                return Err(ProtocolError::BadMasking);
            }
            // Broken fragmentation is a protocol error (1002) whatever the
            // frame's size.
            match header.opcode {
                OpCode::Continuation if self.partial.is_none() => {
                    return Err(ProtocolError::UnexpectedContinuation)
                }
                OpCode::Text | OpCode::Binary if self.partial.is_some() => {
                    return Err(ProtocolError::UnfinishedMessage)
                }
                _ => {}
            }
            // The frame, header included, must fit in memory (only a
            // 32-bit target with no limit set can announce more).
            let too_large =
                header.len > self.max_frame as u64 || header.len > (usize::MAX - header_len) as u64;
            if too_large {
                return Err(ProtocolError::FrameTooLarge);
            }
            let len = header.len as usize;
            let so_far = self.partial.as_ref().map_or(0, |p| p.data.len());
            let data_frame = !header.opcode.is_control();
            if data_frame && so_far.saturating_add(len) > self.max_message {
                return Err(ProtocolError::MessageTooLarge);
            }
            if buf.len() < header_len + len {
                // Room for more of the frame, up to a step: a header alone
                // must not make the buffer take what it announces.
                buf.reserve((header_len + len - buf.len()).min(RESERVE_STEP));
                return Ok(None);
            }
            buf.advance(header_len);
            let mut payload = if len < COPY_BELOW {
                // A small payload gets its own allocation: sharing the
                // read buffer's would keep all of it alive as long as the
                // message lives.
                let copy = BytesMut::from(&buf[..len]);
                buf.advance(len);
                copy
            } else {
                let payload = buf.split_to(len);
                if len >= RESERVE_STEP {
                    // What follows a large frame moves to a buffer of its
                    // own. Left in the frame's, it would take all of that
                    // memory back once the message is dropped, and every
                    // later message split from it would keep it alive
                    // (a chat that keeps 20 KiB messages would hold a
                    // 16 MiB buffer for each).
                    *buf = BytesMut::from(&buf[..]);
                }
                payload
            };
            if let Some(key) = header.mask {
                apply_mask(&mut payload, key, 0);
            }
            let message = match header.opcode {
                OpCode::Ping => Message::Ping(payload.freeze()),
                OpCode::Pong => Message::Pong(payload.freeze()),
                OpCode::Close => Message::Close(parse_close(&payload)?),
                OpCode::Text | OpCode::Binary => {
                    let text = header.opcode == OpCode::Text;
                    if !header.fin {
                        let mut partial = Partial {
                            text,
                            data: payload,
                            checked: 0,
                        };
                        partial.check_text()?;
                        self.partial = Some(partial);
                        continue;
                    }
                    whole(text, payload)?
                }
                OpCode::Continuation => {
                    let partial = self
                        .partial
                        .as_mut()
                        .expect("checked above: a message is being continued");
                    partial.data.extend_from_slice(&payload);
                    if !header.fin {
                        partial.check_text()?;
                        continue;
                    }
                    let done = self.partial.take().expect("present");
                    whole(done.text, done.data)?
                }
            };
            return Ok(Some(message));
        }
    }
}

/// A whole text or binary message.
fn whole(text: bool, data: BytesMut) -> Result<Message, ProtocolError> {
    if !text {
        return Ok(Message::Binary(data.freeze()));
    }
    // Checked in place; the text keeps the payload's memory.
    Utf8Bytes::try_from(data.freeze())
        .map(Message::Text)
        .map_err(|_| ProtocolError::InvalidUtf8)
}

/// A close frame's body: empty, or a sendable code and a UTF-8 reason.
fn parse_close(payload: &[u8]) -> Result<Option<CloseFrame>, ProtocolError> {
    match payload {
        [] => Ok(None),
        [_] => Err(ProtocolError::InvalidClose),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !close_code::is_sendable(code) {
                return Err(ProtocolError::InvalidClose);
            }
            let reason = std::str::from_utf8(reason).map_err(|_| ProtocolError::InvalidUtf8)?;
            Ok(Some(CloseFrame::new(code, reason)))
        }
    }
}

/// Writes `message` as one frame into `dst`, masked with `mask` (a
/// client's frames; `None` for a server's).
pub(crate) fn encode(
    dst: &mut BytesMut,
    message: &Message,
    mask: Option<[u8; 4]>,
) -> Result<(), WsError> {
    let (opcode, close_body);
    let payload: &[u8] = match message {
        Message::Text(s) => {
            opcode = OpCode::Text;
            s.as_bytes()
        }
        Message::Binary(b) => {
            opcode = OpCode::Binary;
            b
        }
        Message::Ping(b) => {
            opcode = OpCode::Ping;
            b
        }
        Message::Pong(b) => {
            opcode = OpCode::Pong;
            b
        }
        Message::Close(frame) => {
            if let Some(code) = frame.as_ref().map(|f| f.code) {
                if !close_code::is_sendable(code) {
                    return Err(WsError::InvalidCloseCode(code));
                }
            }
            opcode = OpCode::Close;
            close_body = close_payload(frame.as_ref());
            &close_body
        }
    };
    if opcode.is_control() && payload.len() > MAX_CONTROL_PAYLOAD {
        return Err(WsError::ControlTooLong);
    }
    dst.reserve(14 + payload.len());
    put_header(dst, true, opcode, mask, payload.len());
    let start = dst.len();
    dst.put_slice(payload);
    if let Some(key) = mask {
        apply_mask(&mut dst[start..], key, 0);
    }
    Ok(())
}

/// A close frame's body: nothing, or the code and the reason.
fn close_payload(frame: Option<&CloseFrame>) -> Vec<u8> {
    let Some(frame) = frame else {
        return Vec::new();
    };
    let mut body = Vec::with_capacity(2 + frame.reason.len());
    body.extend_from_slice(&frame.code.to_be_bytes());
    body.extend_from_slice(frame.reason.as_bytes());
    body
}

/// The close frame that answers a protocol error.
pub(crate) fn error_close(e: ProtocolError) -> Message {
    Message::Close(Some(CloseFrame::new(
        e.close_code(),
        Utf8Bytes::from_static(e.reason()),
    )))
}

/// The frames of a message sent in pieces: for tests of the decoder and
/// of servers (fragmentation is a sender's choice; [`encode`] never makes
/// one).
#[cfg(test)]
pub(crate) fn encode_fragments(text: bool, pieces: &[&[u8]], mask: Option<[u8; 4]>) -> BytesMut {
    let mut dst = BytesMut::new();
    for (i, piece) in pieces.iter().enumerate() {
        let opcode = match (i, text) {
            (0, true) => OpCode::Text,
            (0, false) => OpCode::Binary,
            _ => OpCode::Continuation,
        };
        put_header(&mut dst, i + 1 == pieces.len(), opcode, mask, piece.len());
        let start = dst.len();
        dst.put_slice(piece);
        if let Some(key) = mask {
            apply_mask(&mut dst[start..], key, 0);
        }
    }
    dst
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    const KEY: Option<[u8; 4]> = Some([0xA1, 0xB2, 0xC3, 0xD4]);

    fn server() -> Decoder {
        Decoder::new(Role::Server, 1 << 20, 1 << 20)
    }

    fn client_frame(message: &Message) -> BytesMut {
        let mut dst = BytesMut::new();
        encode(&mut dst, message, KEY).unwrap();
        dst
    }

    fn decode_all(d: &mut Decoder, mut buf: BytesMut) -> Result<Vec<Message>, ProtocolError> {
        let mut out = Vec::new();
        while let Some(m) = d.decode(&mut buf)? {
            out.push(m);
        }
        assert!(buf.is_empty(), "{} bytes left", buf.len());
        Ok(out)
    }

    #[test]
    fn every_kind_of_message_round_trips() {
        let messages = [
            Message::text("héllo"),
            Message::binary(vec![0u8, 1, 2, 255]),
            Message::binary(vec![7u8; 70_000]),
            Message::Ping(Bytes::from_static(b"p")),
            Message::Pong(Bytes::new()),
            Message::Close(Some(CloseFrame::new(close_code::AWAY, "bye"))),
            Message::Close(None),
        ];
        for m in &messages {
            let got = decode_all(&mut server(), client_frame(m)).unwrap();
            assert_eq!(got, vec![m.clone()]);
            // A client decodes the server's unmasked frame.
            let mut unmasked = BytesMut::new();
            encode(&mut unmasked, m, None).unwrap();
            let mut client = Decoder::new(Role::Client, 1 << 20, 1 << 20);
            assert_eq!(decode_all(&mut client, unmasked).unwrap(), vec![m.clone()]);
        }
    }

    #[test]
    fn a_frame_fed_a_byte_at_a_time_decodes_once_whole() {
        let frame = client_frame(&Message::text("split"));
        let mut d = server();
        let mut buf = BytesMut::new();
        for (i, b) in frame.iter().enumerate() {
            buf.put_u8(*b);
            let got = d.decode(&mut buf).unwrap();
            if i + 1 < frame.len() {
                assert_eq!(got, None);
            } else {
                assert_eq!(got, Some(Message::text("split")));
            }
        }
    }

    #[test]
    fn fragments_are_joined_with_control_frames_between_them() {
        let mut buf = encode_fragments(true, &[b"Hel", b"lo, ", "wörld".as_bytes()], KEY);
        // A ping between the first two fragments (RFC 6455 §5.4 allows it).
        let first = 2 + 4 + 3;
        let tail = buf.split_off(first);
        buf.extend_from_slice(&client_frame(&Message::Ping(Bytes::from_static(b"x"))));
        buf.extend_from_slice(&tail);
        let got = decode_all(&mut server(), buf).unwrap();
        assert_eq!(
            got,
            vec![
                Message::Ping(Bytes::from_static(b"x")),
                Message::text("Hello, wörld")
            ]
        );
        // A UTF-8 character split across fragments is fine.
        let e = "é".as_bytes();
        let buf = encode_fragments(true, &[&e[..1], &e[1..]], KEY);
        assert_eq!(
            decode_all(&mut server(), buf).unwrap(),
            vec![Message::text("é")]
        );
    }

    #[test]
    fn rule_breaking_frames_are_refused_with_their_close_codes() {
        let unmasked = {
            let mut b = BytesMut::new();
            encode(&mut b, &Message::text("x"), None).unwrap();
            b
        };
        let cases: Vec<(BytesMut, ProtocolError, u16)> = vec![
            (unmasked, ProtocolError::BadMasking, 1002),
            (
                encode_fragments(false, &[b"a", b"b"], KEY).split_off(2 + 4 + 1),
                ProtocolError::UnexpectedContinuation,
                1002,
            ),
            (
                {
                    let mut b = encode_fragments(true, &[b"a", b"b"], KEY);
                    b.truncate(2 + 4 + 1);
                    b.extend_from_slice(&client_frame(&Message::text("new")));
                    b
                },
                ProtocolError::UnfinishedMessage,
                1002,
            ),
            (
                client_frame(&Message::Binary(Bytes::from(vec![0xFF, 0xFE]))).tap_text(),
                ProtocolError::InvalidUtf8,
                1007,
            ),
            (close_frame_with(&[0x03]), ProtocolError::InvalidClose, 1002),
            (
                close_frame_with(&1005u16.to_be_bytes()),
                ProtocolError::InvalidClose,
                1002,
            ),
            (
                close_frame_with(&[0x03, 0xE8, 0xFF]),
                ProtocolError::InvalidUtf8,
                1007,
            ),
        ];
        for (buf, want, code) in cases {
            let got = decode_all(&mut server(), buf);
            assert_eq!(got, Err(want));
            assert_eq!(want.close_code(), code);
        }
    }

    #[test]
    fn limits_are_checked_from_the_header() {
        // Only the header has arrived: a frame or message over the limit
        // is refused before its payload is buffered.
        let mut d = Decoder::new(Role::Server, 100, 150);
        let mut header = BytesMut::new();
        put_header(&mut header, true, OpCode::Binary, KEY, 101);
        assert_eq!(d.decode(&mut header), Err(ProtocolError::FrameTooLarge));
        let mut d = Decoder::new(Role::Server, 100, 150);
        let mut buf = encode_fragments(false, &[&[0u8; 100], &[0u8; 51]], KEY);
        // The first fragment and only the second one's header.
        buf.truncate(2 + 4 + 100 + 2 + 4);
        assert_eq!(d.decode(&mut buf), Err(ProtocolError::MessageTooLarge));
        let mut d = Decoder::new(Role::Server, 100, 150);
        let buf = encode_fragments(false, &[&[0u8; 100], &[0u8; 50]], KEY);
        let got = decode_all(&mut d, buf).unwrap();
        assert_eq!(got[0].as_bytes().len(), 150);
    }

    #[test]
    fn broken_fragmentation_is_a_protocol_error_whatever_the_size() {
        // A continuation with no message open, announcing more than the
        // frame limit: 1002, not 1009.
        let mut d = Decoder::new(Role::Server, 100, 150);
        let mut header = BytesMut::new();
        put_header(&mut header, true, OpCode::Continuation, KEY, 1000);
        assert_eq!(
            d.decode(&mut header),
            Err(ProtocolError::UnexpectedContinuation)
        );
        // A new message while one is open, which with the open one would
        // pass the message limit: 1002, not 1009.
        let mut d = Decoder::new(Role::Server, 100, 150);
        let mut buf = encode_fragments(false, &[&[0u8; 100], &[0u8; 1]], KEY);
        buf.truncate(2 + 4 + 100);
        put_header(&mut buf, true, OpCode::Binary, KEY, 100);
        assert_eq!(d.decode(&mut buf), Err(ProtocolError::UnfinishedMessage));
    }

    #[test]
    fn what_follows_a_large_frame_does_not_keep_its_buffer() {
        let mut d = Decoder::new(Role::Server, 16 << 20, 16 << 20);
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&client_frame(&Message::binary(vec![1u8; 4 << 20])));
        buf.extend_from_slice(&client_frame(&Message::binary(vec![2u8; 20 << 10])));
        let big = d.decode(&mut buf).unwrap().unwrap();
        drop(big);
        // The next read's room: the big frame's memory is not taken back.
        buf.reserve(8 * 1024);
        assert!(buf.capacity() <= 2 * RESERVE_STEP, "{}", buf.capacity());
        let next = d.decode(&mut buf).unwrap().unwrap();
        assert_eq!(next, Message::binary(vec![2u8; 20 << 10]));
    }

    #[test]
    fn a_header_alone_does_not_reserve_the_frame_it_announces() {
        let mut d = Decoder::new(Role::Server, 16 << 20, 64 << 20);
        let mut buf = BytesMut::new();
        put_header(&mut buf, true, OpCode::Binary, KEY, 16 << 20);
        assert_eq!(d.decode(&mut buf), Ok(None));
        assert!(buf.capacity() <= 2 * RESERVE_STEP, "{}", buf.capacity());
        // A limit of "no limit" and a huge announced length: no panic.
        let mut d = Decoder::new(Role::Server, usize::MAX, usize::MAX);
        let mut buf = BytesMut::new();
        put_header(&mut buf, true, OpCode::Binary, KEY, 1 << 62);
        assert_eq!(d.decode(&mut buf), Ok(None));
    }

    #[test]
    fn invalid_text_fails_at_the_fragment_that_brings_it() {
        // The message is not finished, but its first fragment is already
        // not UTF-8: refused now, not once the whole message is buffered.
        let mut buf = encode_fragments(true, &[b"ok", &[0xFF], b"never"], KEY);
        buf.truncate(2 + 4 + 2 + 2 + 4 + 1);
        assert_eq!(server().decode(&mut buf), Err(ProtocolError::InvalidUtf8));
        // A character split over three fragments waits for its end; one
        // left unfinished at the last fragment is refused.
        let euro = "€".as_bytes();
        let buf = encode_fragments(true, &[&euro[..1], &euro[1..2], &euro[2..]], KEY);
        assert_eq!(
            decode_all(&mut server(), buf).unwrap(),
            vec![Message::text("€")]
        );
        let buf = encode_fragments(true, &[b"a", &euro[..2]], KEY);
        assert_eq!(
            decode_all(&mut server(), buf),
            Err(ProtocolError::InvalidUtf8)
        );
        // Binary fragments are not text.
        let buf = encode_fragments(false, &[&[0xFF], &[0xFE]], KEY);
        assert_eq!(
            decode_all(&mut server(), buf).unwrap(),
            vec![Message::binary(vec![0xFF, 0xFE])]
        );
    }

    #[test]
    fn a_close_code_no_endpoint_may_send_is_refused() {
        for code in [0u16, 999, 1004, 1005, 1006, 1015, 2999, 5000] {
            let mut dst = BytesMut::new();
            let close = Message::Close(Some(CloseFrame::new(code, "")));
            assert!(
                matches!(encode(&mut dst, &close, None), Err(WsError::InvalidCloseCode(c)) if c == code),
                "{code}"
            );
            assert!(dst.is_empty());
        }
    }

    #[test]
    fn small_payloads_do_not_keep_the_read_buffer_alive() {
        let mut buf = client_frame(&Message::binary(vec![1u8; 100_000]));
        buf.extend_from_slice(&client_frame(&Message::binary(vec![2u8; 10])));
        let mut d = server();
        let big = d.decode(&mut buf).unwrap().unwrap();
        let small = d.decode(&mut buf).unwrap().unwrap();
        drop(big);
        let Message::Binary(small) = small else {
            panic!("binary expected")
        };
        // Its own allocation: turning it back into a unique buffer needs
        // no copy, and holds just its bytes.
        let back = small
            .try_into_mut()
            .expect("the only owner of its allocation");
        assert!(back.capacity() < 1024, "{}", back.capacity());
    }

    #[test]
    fn sending_an_oversized_control_message_is_an_error() {
        let mut dst = BytesMut::new();
        let big = Message::Ping(Bytes::from(vec![0u8; 126]));
        assert!(matches!(
            encode(&mut dst, &big, None),
            Err(WsError::ControlTooLong)
        ));
        let reason = "r".repeat(124);
        let close = Message::Close(Some(CloseFrame::new(close_code::NORMAL, reason)));
        assert!(matches!(
            encode(&mut dst, &close, None),
            Err(WsError::ControlTooLong)
        ));
        assert!(dst.is_empty(), "nothing is written for a refused message");
    }

    /// A masked close frame with `body`.
    fn close_frame_with(body: &[u8]) -> BytesMut {
        let mut dst = BytesMut::new();
        put_header(&mut dst, true, OpCode::Close, KEY, body.len());
        let start = dst.len();
        dst.put_slice(body);
        apply_mask(&mut dst[start..], KEY.unwrap(), 0);
        dst
    }

    trait TapText {
        /// The frame with its opcode changed from binary to text.
        fn tap_text(self) -> BytesMut;
    }

    impl TapText for BytesMut {
        fn tap_text(mut self) -> BytesMut {
            self[0] = (self[0] & 0xF0) | 0x1;
            self
        }
    }
}
