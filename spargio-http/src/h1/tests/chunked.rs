//! Chunked body decoding: grammar, limits, trailers, incremental input.

use bytes::{Bytes, BytesMut};

use crate::h1::{ChunkedDecoder, ChunkedError, ChunkedItem, Limits, MAX_CHUNK_SIZE_DIGITS};

/// What a whole body decoded to: (data, trailers, bytes left after it).
type Decoded = (Vec<u8>, Option<http::HeaderMap>, Vec<u8>);

/// Decodes all of `input` at once.
fn decode_all(input: &[u8], limits: &Limits) -> Result<Decoded, ChunkedError> {
    let mut dec = ChunkedDecoder::new(limits);
    let mut src = BytesMut::from(input);
    let mut data = Vec::new();
    loop {
        match dec.decode(&mut src)? {
            ChunkedItem::Data(d) => {
                assert!(!d.is_empty());
                data.extend_from_slice(&d);
            }
            ChunkedItem::NeedMore => panic!("incomplete body: {input:?}"),
            ChunkedItem::End(t) => {
                assert!(dec.is_done());
                return Ok((data, t, src.to_vec()));
            }
        }
    }
}

fn ok(input: &[u8]) -> Vec<u8> {
    decode_all(input, &Limits::default()).unwrap().0
}

fn err(input: &[u8]) -> ChunkedError {
    let mut dec = ChunkedDecoder::new(&Limits::default());
    let mut src = BytesMut::from(input);
    loop {
        match dec.decode(&mut src) {
            Err(e) => return e,
            Ok(ChunkedItem::Data(_)) => {}
            Ok(other) => panic!("expected an error for {input:?}, got {other:?}"),
        }
    }
}

#[test]
fn simple_body() {
    assert_eq!(
        ok(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
        b"hello world"
    );
}

#[test]
fn empty_body() {
    let (data, trailers, rest) = decode_all(b"0\r\n\r\n", &Limits::default()).unwrap();
    assert!(data.is_empty() && trailers.is_none() && rest.is_empty());
}

#[test]
fn end_leaves_following_bytes() {
    let (_, _, rest) =
        decode_all(b"1\r\na\r\n0\r\n\r\nGET / HTTP/1.1\r\n", &Limits::default()).unwrap();
    assert_eq!(rest, b"GET / HTTP/1.1\r\n");
}

#[test]
fn hex_sizes_any_case_and_leading_zeros() {
    let body = [b'x'; 0xab];
    let mut input = b"aB\r\n".to_vec();
    input.extend_from_slice(&body);
    input.extend_from_slice(b"\r\n000\r\n\r\n");
    assert_eq!(ok(&input), body);
    assert_eq!(ok(b"0001\r\nz\r\n0\r\n\r\n"), b"z");
}

#[test]
fn chunk_extensions_are_allowed() {
    assert_eq!(ok(b"3;name=value\r\nabc\r\n0;last\r\n\r\n"), b"abc");
    assert_eq!(ok(b"3 ;a=\"q s\"; b\r\nabc\r\n0\r\n\r\n"), b"abc");
    assert_eq!(ok(b"3\t;a\r\nabc\r\n0\r\n\r\n"), b"abc");
}

#[test]
fn chunk_extensions_are_bounded_per_body() {
    let limits = Limits {
        max_chunk_ext_bytes: 10,
        ..Limits::default()
    };
    // ";abcdefghi" is 10 bytes: allowed once...
    assert!(decode_all(b"1;abcdefghi\r\na\r\n0\r\n\r\n", &limits).is_ok());
    // ...but the budget is for the whole body.
    let e = decode_all(b"1;abcdefghi\r\na\r\n1;b\r\nb\r\n0\r\n\r\n", &limits).unwrap_err();
    assert_eq!(e, ChunkedError("chunk extensions too large"));
    assert!(decode_all(b"1;abcdefghij\r\na\r\n0\r\n\r\n", &limits).is_err());
}

/// Whitespace between a chunk size and its extension is framing overhead
/// like the extension itself: it counts against the same budget, so a
/// client cannot send an endless run of it.
#[test]
fn whitespace_after_a_chunk_size_counts_against_the_extension_budget() {
    let limits = Limits {
        max_chunk_ext_bytes: 10,
        ..Limits::default()
    };
    let mut input = b"1".to_vec();
    input.extend_from_slice(&[b' '; 100]);
    input.extend_from_slice(b";a\r\nx\r\n0\r\n\r\n");
    let e = decode_all(&input, &limits).unwrap_err();
    assert_eq!(e, ChunkedError("chunk extensions too large"));
    // Within the budget, whitespace and extension together are fine.
    assert!(decode_all(b"1  \t;abcdef\r\nx\r\n0\r\n\r\n", &limits).is_ok());
}

#[test]
fn control_bytes_in_chunk_extension_rejected() {
    err(b"1;a\0b\r\nx\r\n0\r\n\r\n");
    err(b"1;a\x7f\r\nx\r\n0\r\n\r\n");
}

#[test]
fn chunk_size_0x_prefix_rejected() {
    err(b"0x5\r\nhello\r\n0\r\n\r\n");
}

#[test]
fn chunk_size_plus_rejected() {
    err(b"+5\r\nhello\r\n0\r\n\r\n");
}

#[test]
fn chunk_size_leading_space_rejected() {
    err(b" 5\r\nhello\r\n0\r\n\r\n");
    err(b"\t5\r\nhello\r\n0\r\n\r\n");
}

#[test]
fn chunk_size_non_hex_rejected() {
    err(b"g\r\nhello\r\n0\r\n\r\n");
    err(b"5g\r\nhello\r\n0\r\n\r\n");
    err(b"-1\r\nx\r\n0\r\n\r\n");
}

#[test]
fn chunk_size_empty_rejected() {
    err(b"\r\nhello\r\n0\r\n\r\n");
    err(b";ext\r\nhello\r\n0\r\n\r\n");
}

#[test]
fn chunk_size_trailing_space_without_extension_rejected() {
    err(b"5 \r\nhello\r\n0\r\n\r\n");
}

#[test]
fn chunk_size_overflow_rejected() {
    assert_eq!(
        err(b"10000000000000000\r\n"),
        ChunkedError("chunk size too large")
    );
    // 16 digits is the most a u64 can take, and it is accepted.
    let mut dec = ChunkedDecoder::new(&Limits::default());
    let mut src = BytesMut::from(&b"ffffffffffffffff\r\nab"[..]);
    assert_eq!(
        dec.decode(&mut src).unwrap(),
        ChunkedItem::Data(Bytes::from_static(b"ab"))
    );
}

#[test]
fn chunk_sizes_with_leading_zeros_are_accepted_up_to_the_digit_bound() {
    // RFC 9112's chunk-size is 1*HEXDIG: zeros in front change nothing,
    // even past the 16 digits a u64 takes.
    let mut dec = ChunkedDecoder::new(&Limits::default());
    let mut src =
        BytesMut::from(&b"00000000000000000005\r\nhello\r\n00000000000000000\r\n\r\n"[..]);
    assert_eq!(
        dec.decode(&mut src).unwrap(),
        ChunkedItem::Data(Bytes::from_static(b"hello"))
    );
    assert_eq!(dec.decode(&mut src).unwrap(), ChunkedItem::End(None));
    let mut dec = ChunkedDecoder::new(&Limits::default());
    let mut src = BytesMut::from(&b"0000000000000000000000000000000fffffffffffffffff\r\n"[..]);
    assert_eq!(
        dec.decode(&mut src).unwrap_err(),
        ChunkedError("chunk size too large")
    );
    // A run of zeros is bounded all the same.
    let zeros = "0".repeat(usize::from(MAX_CHUNK_SIZE_DIGITS) + 1);
    assert_eq!(
        err(format!("{zeros}1\r\n").as_bytes()),
        ChunkedError("chunk size has too many digits")
    );
    let at_bound = format!(
        "{}1\r\nx\r\n0\r\n\r\n",
        "0".repeat(usize::from(MAX_CHUNK_SIZE_DIGITS) - 1)
    );
    let mut dec = ChunkedDecoder::new(&Limits::default());
    let mut src = BytesMut::from(at_bound.as_bytes());
    assert_eq!(
        dec.decode(&mut src).unwrap(),
        ChunkedItem::Data(Bytes::from_static(b"x"))
    );
}

#[test]
fn bare_lf_after_size_rejected() {
    err(b"5\nhello\r\n0\r\n\r\n");
    err(b"5;ext\nhello\r\n0\r\n\r\n");
}

#[test]
fn bare_cr_after_size_rejected() {
    err(b"5\rhello\r\n0\r\n\r\n");
}

#[test]
fn bare_lf_after_data_rejected() {
    err(b"5\r\nhello\n0\r\n\r\n");
}

#[test]
fn data_longer_than_size_rejected() {
    err(b"5\r\nhello!\r\n0\r\n\r\n");
    err(b"5\r\nhellox\n0\r\n\r\n");
}

#[test]
fn bare_lf_ending_last_chunk_rejected() {
    err(b"0\n\r\n");
    err(b"0\r\n\n");
}

#[test]
fn trailers_are_returned() {
    let (data, trailers, rest) = decode_all(
        b"3\r\nabc\r\n0\r\nX-Checksum: 123\r\nX-Other: a b\r\n\r\nnext",
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(data, b"abc");
    let t = trailers.unwrap();
    assert_eq!(t["x-checksum"], "123");
    assert_eq!(t["x-other"], "a b");
    assert_eq!(rest, b"next");
}

#[test]
fn trailer_bare_lf_rejected() {
    err(b"0\r\nX-A: 1\n\r\n");
    err(b"0\r\nX-A: 1\r\n\n");
}

#[test]
fn trailer_obs_fold_rejected() {
    err(b"0\r\nX-A: 1\r\n 2\r\n\r\n");
}

#[test]
fn trailer_invalid_name_or_value_rejected() {
    err(b"0\r\nX A: 1\r\n\r\n");
    err(b"0\r\nX-A : 1\r\n\r\n");
    err(b"0\r\nX-A: 1\x002\r\n\r\n");
}

#[test]
fn framing_fields_in_trailers_rejected() {
    err(b"0\r\nContent-Length: 5\r\n\r\n");
    err(b"0\r\nTransfer-Encoding: chunked\r\n\r\n");
    err(b"0\r\nHost: x\r\n\r\n");
}

#[test]
fn trailer_count_bounded() {
    let limits = Limits {
        max_headers: 2,
        ..Limits::default()
    };
    assert!(decode_all(b"0\r\nA: 1\r\nB: 2\r\n\r\n", &limits).is_ok());
    let e = decode_all(b"0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", &limits).unwrap_err();
    assert_eq!(e, ChunkedError("too many trailer fields"));
}

#[test]
fn trailer_bytes_bounded() {
    let limits = Limits {
        max_trailer_bytes: 20,
        ..Limits::default()
    };
    // "X-A: 0123456789\r\n\r\n" is 19 bytes.
    assert!(decode_all(b"0\r\nX-A: 0123456789\r\n\r\n", &limits).is_ok());
    let mut dec = ChunkedDecoder::new(&limits);
    let mut src = BytesMut::from(&b"0\r\nX-A: 0123456789012345678901234"[..]);
    assert_eq!(
        dec.decode(&mut src).unwrap_err(),
        ChunkedError("trailer section too large")
    );
}

#[test]
fn data_is_handed_out_zero_copy() {
    let mut src = BytesMut::from(&b"5\r\nhello\r\n0\r\n\r\n"[..]);
    let base = src.as_ptr() as usize;
    let mut dec = ChunkedDecoder::new(&Limits::default());
    match dec.decode(&mut src).unwrap() {
        ChunkedItem::Data(d) => {
            assert_eq!(&d[..], b"hello");
            assert_eq!(
                d.as_ptr() as usize,
                base + 3,
                "data shares the input buffer"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn partial_chunk_is_handed_out_as_it_arrives() {
    let mut dec = ChunkedDecoder::new(&Limits::default());
    let mut src = BytesMut::from(&b"a\r\n0123"[..]);
    assert_eq!(
        dec.decode(&mut src).unwrap(),
        ChunkedItem::Data(Bytes::from_static(b"0123"))
    );
    assert_eq!(dec.decode(&mut src).unwrap(), ChunkedItem::NeedMore);
    src.extend_from_slice(b"456789\r");
    assert_eq!(
        dec.decode(&mut src).unwrap(),
        ChunkedItem::Data(Bytes::from_static(b"456789"))
    );
    assert_eq!(dec.decode(&mut src).unwrap(), ChunkedItem::NeedMore);
    assert!(src.is_empty());
    src.extend_from_slice(b"\n0\r\n\r\n");
    assert_eq!(dec.decode(&mut src).unwrap(), ChunkedItem::End(None));
    assert!(dec.is_done());
}

#[test]
fn byte_by_byte_input_gives_same_result() {
    let input = b"4;x=y\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-T: v\r\n\r\n";
    let (whole, trailers, _) = decode_all(input, &Limits::default()).unwrap();
    let mut dec = ChunkedDecoder::new(&Limits::default());
    let mut src = BytesMut::new();
    let mut data = Vec::new();
    let mut end = None;
    for &b in input.iter() {
        src.extend_from_slice(&[b]);
        loop {
            match dec.decode(&mut src).unwrap() {
                ChunkedItem::Data(d) => data.extend_from_slice(&d),
                ChunkedItem::NeedMore => break,
                ChunkedItem::End(t) => {
                    end = Some(t);
                    break;
                }
            }
        }
    }
    assert_eq!(data, whole);
    assert_eq!(data, b"Wikipedia in\r\n\r\nchunks.");
    assert_eq!(end, Some(trailers));
}

#[test]
fn done_decoder_returns_end_without_consuming() {
    let mut dec = ChunkedDecoder::new(&Limits::default());
    let mut src = BytesMut::from(&b"0\r\n\r\nrest"[..]);
    assert_eq!(dec.decode(&mut src).unwrap(), ChunkedItem::End(None));
    assert_eq!(dec.decode(&mut src).unwrap(), ChunkedItem::End(None));
    assert_eq!(&src[..], b"rest");
}

#[test]
fn error_display() {
    assert_eq!(ChunkedError("x").to_string(), "invalid chunked body: x");
}

/// Feeds `input` a byte at a time; the first error, if any.
fn dripped_err(input: &[u8], limits: &Limits) -> Option<ChunkedError> {
    let mut dec = ChunkedDecoder::new(limits);
    let mut src = BytesMut::new();
    for &b in input {
        src.extend_from_slice(&[b]);
        loop {
            match dec.decode(&mut src) {
                Err(e) => return Some(e),
                Ok(ChunkedItem::Data(_)) => {}
                Ok(ChunkedItem::NeedMore | ChunkedItem::End(_)) => break,
            }
        }
    }
    None
}

#[test]
fn dripped_trailers_are_still_checked_and_bounded() {
    // The trailer section is not parsed after every byte, but its end, its
    // errors and its size bound are all still found.
    let limits = Limits {
        max_trailer_bytes: 64,
        ..Limits::default()
    };
    assert_eq!(dripped_err(b"0\r\nX-A: 1\r\nX-B: 2\r\n\r\n", &limits), None);
    assert_eq!(
        dripped_err(b"0\r\nX-A: 1\n\r\n", &limits),
        Some(ChunkedError("bare LF in trailer section"))
    );
    let long = [&b"0\r\nX-A: "[..], &[b'v'; 100]].concat();
    assert_eq!(
        dripped_err(&long, &limits),
        Some(ChunkedError("trailer section too large"))
    );
}
