//! `ChunkedDecoder` on arbitrary bytes split at a fuzzer-chosen point: never
//! panics, never hands out more data than it was given, and reaches the same
//! outcome as decoding the bytes in one piece.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use spargio_http::h1::{ChunkedDecoder, ChunkedItem, Limits};

#[derive(Debug, PartialEq)]
enum Outcome {
    End(Option<http::HeaderMap>, usize),
    NeedMore,
    Error(&'static str),
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, body)) = data.split_first() else {
        return;
    };
    let split = usize::from(split) % (body.len() + 1);
    let limits = Limits {
        max_headers: 4,
        max_chunk_ext_bytes: 64,
        max_trailer_bytes: 256,
        ..Limits::default()
    };
    let whole = decode(body, &[body.len()], &limits);
    let two = decode(body, &[split, body.len()], &limits);
    let byte_by_byte: Vec<usize> = (1..=body.len()).collect();
    let bytes = decode(body, &byte_by_byte, &limits);
    assert_eq!(whole, two);
    assert_eq!(whole, bytes);
});

/// Feeds `input` in pieces ending at `cuts`; returns the data and outcome.
fn decode(input: &[u8], cuts: &[usize], limits: &Limits) -> (Vec<u8>, Outcome) {
    let mut dec = ChunkedDecoder::new(limits);
    let mut src = BytesMut::new();
    let mut data = Vec::new();
    let mut fed = 0;
    for &end in cuts {
        src.extend_from_slice(&input[fed..end]);
        fed = end;
        loop {
            let before = src.len();
            match dec.decode(&mut src) {
                Ok(ChunkedItem::Data(d)) => {
                    assert!(!d.is_empty());
                    // The call may also consume the size line before the data.
                    assert!(
                        src.len() + d.len() <= before,
                        "data is taken from the input"
                    );
                    data.extend_from_slice(&d);
                    assert!(data.len() <= fed, "more data out than bytes in");
                }
                Ok(ChunkedItem::NeedMore) => break,
                Ok(ChunkedItem::End(trailers)) => {
                    assert!(dec.is_done());
                    return (data, Outcome::End(trailers, fed - src.len()));
                }
                Err(e) => return (data, Outcome::Error(e.0)),
            }
        }
    }
    (data, Outcome::NeedMore)
}
