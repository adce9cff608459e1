//! The opening handshake's keys (RFC 6455 §4): the client's
//! `Sec-WebSocket-Key`, the server's `Sec-WebSocket-Accept` for it, and
//! the token lists both sides read.

use http::header::{HeaderMap, HeaderName};
use http::HeaderValue;

/// The GUID RFC 6455 §1.3 appends to the client's key.
const ACCEPT_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Whether some `name` field's comma-separated list holds `token`.
pub(crate) fn lists_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

/// `Sec-WebSocket-Accept` for `key`: base64(SHA-1(key + GUID)).
///
/// ```text
/// dGhlIHNhbXBsZSBub25jZQ== -> s3pPLMBiTxaQ9kYGzzhZRbK+xOo=   (RFC 6455 §1.3)
/// ```
pub(crate) fn accept_value(key: &[u8]) -> HeaderValue {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(key);
    ctx.update(ACCEPT_GUID);
    let encoded = base64(ctx.finish().as_ref());
    HeaderValue::from_str(&encoded).expect("base64 is a valid header value")
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub(crate) fn base64(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Whether `key` is the padded base64 of exactly 16 bytes: 22 characters
/// of the alphabet, the last of them carrying no bits past the 128th
/// (`A`, `Q`, `g` or `w`), then `==`.
pub(crate) fn is_base64_of_16_bytes(key: &[u8]) -> bool {
    key.len() == 24
        && key.ends_with(b"==")
        && key[..22].iter().all(|b| BASE64.contains(b))
        && matches!(key[21], b'A' | b'Q' | b'g' | b'w')
}

/// A fresh `Sec-WebSocket-Key`: the base64 of 16 random bytes (RFC 6455
/// §4.1 wants a nonce chosen at random for each connection).
pub(crate) fn new_key() -> HeaderValue {
    HeaderValue::from_str(&base64(&random::<16>())).expect("base64 is a valid header value")
}

/// `N` bytes from the system's generator, for the handshake's nonce and
/// the client's masking keys (RFC 6455 wants both unpredictable). Should
/// the generator fail, bytes from the clock still make valid framing and a
/// valid handshake (the nonce and masks guard against confused caches and
/// proxies, not against the peer).
pub(crate) fn random<const N: usize>() -> [u8; N] {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; N];
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
            .to_ne_bytes();
        for (b, n) in bytes.iter_mut().zip(nanos.iter().cycle()) {
            *b = *n;
        }
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_known_vectors() {
        for (plain, encoded) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (b"fooba", "Zm9vYmE="),
            (b"foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain), encoded);
        }
    }

    #[test]
    fn new_keys_are_valid_and_differ() {
        let (a, b) = (new_key(), new_key());
        assert!(is_base64_of_16_bytes(a.as_bytes()), "{a:?}");
        assert!(is_base64_of_16_bytes(b.as_bytes()), "{b:?}");
        assert_ne!(a, b);
    }
}
