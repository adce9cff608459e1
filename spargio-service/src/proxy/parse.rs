//! Sans-IO parsing of a PROXY protocol header at the start of a byte
//! buffer: whole, not yet whole, not one at all, or malformed.

use std::fmt;

use super::header::ProxyHeader;
use super::{v1, v2};

/// What [`parse`] made of the start of a buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole header, and how many bytes of the buffer it took; what
    /// follows is the connection's own traffic.
    Header(ProxyHeader, usize),
    /// The buffer could begin a header but ends too soon: at least this
    /// many bytes (in all) are needed before more can be said.
    Incomplete(usize),
    /// The buffer does not begin with a PROXY header.
    NotProxy,
}

/// Why a PROXY header was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyError {
    /// A version 1 line longer than the protocol's 107 bytes.
    V1TooLong,
    /// A version 1 line that does not follow the grammar (which part).
    V1Malformed(&'static str),
    /// A version 2 header whose version nibble is not 2.
    V2Version(u8),
    /// A version 2 command other than LOCAL (0) and PROXY (1).
    V2Command(u8),
    /// A version 2 address family or transport the protocol does not
    /// define (the whole byte).
    V2Family(u8),
    /// A version 2 address block shorter than its family's addresses.
    V2AddressTooShort,
    /// A version 2 TLV that runs past the header, or an `SSL` TLV whose
    /// contents are malformed.
    V2Tlv,
    /// A version 2 header whose CRC-32C TLV does not match it.
    V2Checksum,
    /// The connection does not start with a PROXY header, and the server
    /// requires one.
    Missing,
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyError::V1TooLong => f.write_str("PROXY v1 header longer than 107 bytes"),
            ProxyError::V1Malformed(what) => write!(f, "malformed PROXY v1 header: {what}"),
            ProxyError::V2Version(v) => write!(f, "PROXY v2 header with version {v}"),
            ProxyError::V2Command(c) => write!(f, "PROXY v2 header with unknown command {c}"),
            ProxyError::V2Family(b) => {
                write!(f, "PROXY v2 header with unknown family/transport 0x{b:02x}")
            }
            ProxyError::V2AddressTooShort => {
                f.write_str("PROXY v2 address block shorter than its addresses")
            }
            ProxyError::V2Tlv => f.write_str("malformed PROXY v2 TLV"),
            ProxyError::V2Checksum => f.write_str("PROXY v2 header fails its CRC-32C"),
            ProxyError::Missing => f.write_str("connection does not start with a PROXY header"),
        }
    }
}

impl std::error::Error for ProxyError {}

/// Parses the PROXY header (version 1 or 2) at the start of `buf`.
///
/// ```
/// use spargio_service::proxy::{parse, Parsed};
///
/// let bytes = b"PROXY TCP4 192.0.2.7 198.51.100.1 51234 443\r\nGET / HTTP/1.1\r\n";
/// let Ok(Parsed::Header(header, len)) = parse(bytes) else { panic!() };
/// assert_eq!(header.source(), Some("192.0.2.7:51234".parse().unwrap()));
/// assert_eq!(&bytes[len..], b"GET / HTTP/1.1\r\n");
///
/// assert_eq!(parse(b"PROXY TCP4 192.0"), Ok(Parsed::Incomplete(18)));
/// assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Ok(Parsed::NotProxy));
/// ```
pub fn parse(buf: &[u8]) -> Result<Parsed, ProxyError> {
    if let Some(parsed) = v2::parse(buf)? {
        return Ok(parsed);
    }
    if let Some(parsed) = v1::parse(buf)? {
        return Ok(parsed);
    }
    // A prefix of either signature could still become a header.
    if v1::SIGNATURE.starts_with(buf) || v2::SIGNATURE.starts_with(buf) {
        return Ok(Parsed::Incomplete(buf.len() + 1));
    }
    Ok(Parsed::NotProxy)
}

/// Whether `buf` begins with a whole signature (version 1 or 2): from
/// there on its bytes are a header's, whether or not the rest is valid.
pub(crate) fn signed(buf: &[u8]) -> bool {
    buf.starts_with(v1::SIGNATURE) || buf.starts_with(v2::SIGNATURE)
}
