//! Property-style test: random chunked bodies (chunk sizes, extensions,
//! trailers, hex case) fed in random pieces must decode to exactly the
//! original data, whatever the split.

use bytes::BytesMut;

use crate::h1::{encode_chunk, ChunkedDecoder, ChunkedItem, Limits};

/// xorshift64*: small, deterministic, good enough for test inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
}

/// One random encoded body: (encoded bytes, data, trailers).
fn random_body(rng: &mut Rng) -> (Vec<u8>, Vec<u8>, Vec<(String, String)>) {
    let mut encoded = Vec::new();
    let mut data = Vec::new();
    let chunks = rng.below(8);
    for _ in 0..chunks {
        let len = match rng.below(4) {
            0 => 1 + rng.below(3),
            1 => 1 + rng.below(64),
            2 => 1 + rng.below(1024),
            _ => 1 + rng.below(9000),
        } as usize;
        let chunk: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let size = if rng.chance(2) {
            format!("{len:x}")
        } else {
            format!("{}{len:X}", "0".repeat(rng.below(3) as usize))
        };
        encoded.extend_from_slice(size.as_bytes());
        if rng.chance(3) {
            encoded.extend_from_slice(if rng.chance(2) {
                b";ext"
            } else {
                b" ; k=\"v v\""
            });
        }
        encoded.extend_from_slice(b"\r\n");
        encoded.extend_from_slice(&chunk);
        encoded.extend_from_slice(b"\r\n");
        data.extend_from_slice(&chunk);
    }
    encoded.extend_from_slice(if rng.chance(4) {
        b"0;end\r\n"
    } else {
        b"0\r\n"
    });
    let mut trailers = Vec::new();
    if rng.chance(3) {
        for i in 0..1 + rng.below(3) {
            let (name, value) = (format!("x-t{i}"), format!("v{}", rng.below(1000)));
            encoded.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
            trailers.push((name, value));
        }
    }
    encoded.extend_from_slice(b"\r\n");
    (encoded, data, trailers)
}

/// Feeds `input` in pieces ending at `cuts`, returns (data, trailers, rest).
fn decode_split(input: &[u8], cuts: &[usize]) -> (Vec<u8>, Option<http::HeaderMap>, Vec<u8>) {
    let mut dec = ChunkedDecoder::new(&Limits::default());
    let mut src = BytesMut::new();
    let mut data = Vec::new();
    let mut fed = 0;
    let mut pieces = cuts.iter().copied().chain(std::iter::once(input.len()));
    loop {
        match dec.decode(&mut src).expect("valid body") {
            ChunkedItem::Data(d) => {
                assert!(!d.is_empty());
                data.extend_from_slice(&d);
            }
            ChunkedItem::NeedMore => {
                let end = pieces
                    .next()
                    .expect("decoder wants more than the whole body");
                src.extend_from_slice(&input[fed..end]);
                fed = end;
            }
            ChunkedItem::End(t) => {
                src.extend_from_slice(&input[fed..]);
                return (data, t, src.to_vec());
            }
        }
    }
}

#[test]
fn random_chunked_bodies_decode_exactly_whatever_the_split() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..400 {
        let (mut encoded, data, trailers) = random_body(&mut rng);
        let body_len = encoded.len();
        encoded.extend_from_slice(b"NEXT");
        let mut cuts: Vec<usize> = (0..rng.below(12))
            .map(|_| rng.below(encoded.len() as u64 + 1) as usize)
            .collect();
        if rng.chance(10) {
            // Some rounds byte by byte.
            cuts = (1..encoded.len()).collect();
        }
        cuts.sort_unstable();
        let (got, got_trailers, rest) = decode_split(&encoded, &cuts);
        assert_eq!(got, data, "round {round}: data differs");
        assert_eq!(
            rest, b"NEXT",
            "round {round}: consumed {body_len} bytes wrongly"
        );
        match got_trailers {
            None => assert!(trailers.is_empty(), "round {round}: trailers lost"),
            Some(map) => {
                assert_eq!(map.len(), trailers.len(), "round {round}");
                for (name, value) in &trailers {
                    assert_eq!(map[name.as_str()], value.as_str(), "round {round}");
                }
            }
        }
    }
}

#[test]
fn encoded_chunks_decode_to_the_same_data() {
    let mut rng = Rng(42);
    for _ in 0..100 {
        let mut dst = BytesMut::new();
        let mut data = Vec::new();
        for _ in 0..rng.below(6) {
            let chunk: Vec<u8> = (0..rng.below(5000)).map(|_| rng.next() as u8).collect();
            encode_chunk(&mut dst, &chunk);
            data.extend_from_slice(&chunk);
        }
        crate::h1::encode_last_chunk(&mut dst, None).unwrap();
        let cut = rng.below(dst.len() as u64) as usize;
        let (got, trailers, rest) = decode_split(&dst, &[cut]);
        assert_eq!(got, data);
        assert!(trailers.is_none() && rest.is_empty());
    }
}
