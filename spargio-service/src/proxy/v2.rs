//! The binary version 2 header: a 12-byte signature, version and command,
//! family and transport, a 16-bit length, the addresses, then TLVs.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::Bytes;

use super::crc32c::crc32c;
use super::header::{tlv, ProxyAddresses, ProxyCommand, ProxyHeader, ProxyTransport};
use super::parse::{Parsed, ProxyError};

/// What every version 2 header starts with.
pub(crate) const SIGNATURE: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";

/// Signature, version/command, family/transport and length.
const FIXED: usize = 16;

/// The length of a Unix socket path field.
const UNIX_PATH: usize = 108;

/// `None` unless `buf` starts with the version 2 signature.
pub(crate) fn parse(buf: &[u8]) -> Result<Option<Parsed>, ProxyError> {
    if !buf.starts_with(SIGNATURE) {
        return Ok(None);
    }
    if buf.len() < FIXED {
        return Ok(Some(Parsed::Incomplete(FIXED)));
    }
    let (version, command) = (buf[12] >> 4, buf[12] & 0x0f);
    if version != 2 {
        return Err(ProxyError::V2Version(version));
    }
    let command = match command {
        0 => ProxyCommand::Local,
        1 => ProxyCommand::Proxy,
        other => return Err(ProxyError::V2Command(other)),
    };
    // The family/transport pairs the protocol defines; any other is
    // refused, except under LOCAL, whose block (family included) is to be
    // ignored.
    let fam = buf[13];
    let known = matches!(fam, 0x00 | 0x11 | 0x12 | 0x21 | 0x22 | 0x31 | 0x32);
    if !known && command == ProxyCommand::Proxy {
        return Err(ProxyError::V2Family(fam));
    }
    let transport = match (known, fam & 0x0f) {
        (true, 1) => ProxyTransport::Stream,
        (true, 2) => ProxyTransport::Datagram,
        _ => ProxyTransport::Unspecified,
    };
    let addr_len = match (known, fam >> 4) {
        (true, 1) => 12,
        (true, 2) => 36,
        (true, 3) => 2 * UNIX_PATH,
        _ => 0,
    };
    let total = FIXED + usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if buf.len() < total {
        return Ok(Some(Parsed::Incomplete(total)));
    }
    let header = &buf[..total];
    let block = &header[FIXED..];
    let mut parsed = ProxyHeader {
        version: 2,
        command,
        transport,
        addresses: ProxyAddresses::Unknown,
        tlvs: Bytes::new(),
    };
    if command == ProxyCommand::Local {
        // The proxy's own connection (a health check): its addresses are
        // ignored and it is accepted whatever its block holds. TLVs behind
        // a known family's addresses are kept when well formed; a checksum
        // that does not match still refuses it (the bytes were damaged).
        if let Some(area) = block.get(addr_len..).filter(|_| known) {
            match check_tlv_area(header, FIXED + addr_len, area) {
                Ok(()) => parsed.tlvs = Bytes::copy_from_slice(area),
                Err(ProxyError::V2Checksum) => return Err(ProxyError::V2Checksum),
                Err(_) => {}
            }
        }
        return Ok(Some(Parsed::Header(parsed, total)));
    }
    if block.len() < addr_len {
        return Err(ProxyError::V2AddressTooShort);
    }
    // An unspecified family (0x00) has no addresses: the socket's own are
    // to be used, and TLVs may follow at once.
    let (addrs, tlvs) = block.split_at(addr_len);
    parsed.addresses = match fam >> 4 {
        0 => ProxyAddresses::Unknown,
        1 => {
            let ip = |at: usize| Ipv4Addr::from(<[u8; 4]>::try_from(&addrs[at..at + 4]).unwrap());
            ProxyAddresses::Inet {
                source: SocketAddr::new(ip(0).into(), port(&addrs[8..])),
                destination: SocketAddr::new(ip(4).into(), port(&addrs[10..])),
            }
        }
        2 => {
            let ip = |at: usize| Ipv6Addr::from(<[u8; 16]>::try_from(&addrs[at..at + 16]).unwrap());
            ProxyAddresses::Inet {
                source: SocketAddr::new(ip(0).into(), port(&addrs[32..])),
                destination: SocketAddr::new(ip(16).into(), port(&addrs[34..])),
            }
        }
        _ => ProxyAddresses::Unix {
            source: unix_path(&addrs[..UNIX_PATH]),
            destination: unix_path(&addrs[UNIX_PATH..]),
        },
    };
    check_tlv_area(header, FIXED + addr_len, tlvs)?;
    parsed.tlvs = Bytes::copy_from_slice(tlvs);
    Ok(Some(Parsed::Header(parsed, total)))
}

/// Checks the TLV area `area` of `header`, which starts at `area_start`:
/// well formed, its checksum (if any) matching, its SSL TLV well formed.
fn check_tlv_area(header: &[u8], area_start: usize, area: &[u8]) -> Result<(), ProxyError> {
    check_tlvs(area, |kind, at, value| match kind {
        tlv::CRC32C => check_crc(header, area_start + at, value),
        tlv::SSL => check_ssl(value),
        _ => Ok(()),
    })
}

/// A big-endian port at the start of `b`.
fn port(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

/// A path field: up to its first NUL, or for an abstract name (which
/// starts with NUL) without its trailing NULs.
fn unix_path(field: &[u8]) -> Bytes {
    let end = if field.first() == Some(&0) {
        field.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1)
    } else {
        field.iter().position(|&b| b == 0).unwrap_or(field.len())
    };
    Bytes::copy_from_slice(&field[..end])
}

/// Walks a TLV area, calling `each(type, offset of the value within the
/// area, value)`; refuses one that runs past the area's end.
fn check_tlvs(
    mut area: &[u8],
    mut each: impl FnMut(u8, usize, &[u8]) -> Result<(), ProxyError>,
) -> Result<(), ProxyError> {
    let mut at = 0;
    while !area.is_empty() {
        let [kind, hi, lo, rest @ ..] = area else {
            return Err(ProxyError::V2Tlv);
        };
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        let value = rest.get(..len).ok_or(ProxyError::V2Tlv)?;
        each(*kind, at + 3, value)?;
        area = &rest[len..];
        at += 3 + len;
    }
    Ok(())
}

/// The CRC-32C TLV: 4 bytes, the checksum of the whole header with those
/// bytes taken as zero.
fn check_crc(header: &[u8], value_at: usize, value: &[u8]) -> Result<(), ProxyError> {
    let Ok(sent) = <[u8; 4]>::try_from(value) else {
        return Err(ProxyError::V2Tlv);
    };
    let crc = crc32c(&[&header[..value_at], &[0; 4], &header[value_at + 4..]]);
    if crc == u32::from_be_bytes(sent) {
        Ok(())
    } else {
        Err(ProxyError::V2Checksum)
    }
}

/// The SSL TLV: client flags (1 byte), verify (4 bytes), sub-TLVs.
fn check_ssl(value: &[u8]) -> Result<(), ProxyError> {
    if value.len() < 5 {
        return Err(ProxyError::V2Tlv);
    }
    check_tlvs(&value[5..], |_, _, _| Ok(()))
}

#[cfg(test)]
mod tests {
    use super::super::header::ProxySsl;
    use super::super::parse::parse;
    use super::*;

    /// A version 2 header: command, family/transport byte, address block
    /// and TLVs.
    fn build(cmd: u8, fam: u8, addrs: &[u8], tlvs: &[u8]) -> Vec<u8> {
        let mut h = SIGNATURE.to_vec();
        h.push(0x20 | cmd);
        h.push(fam);
        h.extend_from_slice(&((addrs.len() + tlvs.len()) as u16).to_be_bytes());
        h.extend_from_slice(addrs);
        h.extend_from_slice(tlvs);
        h
    }

    fn tlv_bytes(kind: u8, value: &[u8]) -> Vec<u8> {
        let mut t = vec![kind];
        t.extend_from_slice(&(value.len() as u16).to_be_bytes());
        t.extend_from_slice(value);
        t
    }

    fn inet4() -> Vec<u8> {
        [[192, 0, 2, 7], [198, 51, 100, 1]]
            .concat()
            .into_iter()
            .chain([0xc8, 0x22, 0x01, 0xbb])
            .collect()
    }

    fn header(buf: &[u8]) -> (ProxyHeader, usize) {
        match parse(buf) {
            Ok(Parsed::Header(h, n)) => (h, n),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_ipv4_stream_header_with_tlvs() {
        let tlvs = [
            tlv_bytes(tlv::ALPN, b"h2"),
            tlv_bytes(tlv::AUTHORITY, b"example.com"),
            tlv_bytes(tlv::NOOP, &[0; 3]),
            tlv_bytes(0xEA, b"\x01vpce-0123"),
        ]
        .concat();
        let mut bytes = build(1, 0x11, &inet4(), &tlvs);
        let len = bytes.len();
        bytes.extend_from_slice(b"GET / HTTP/1.1\r\n");
        let (h, n) = header(&bytes);
        assert_eq!(n, len);
        assert_eq!(
            (h.version(), h.command(), h.transport()),
            (2, ProxyCommand::Proxy, ProxyTransport::Stream)
        );
        assert_eq!(h.source(), Some("192.0.2.7:51234".parse().unwrap()));
        assert_eq!(h.destination(), Some("198.51.100.1:443".parse().unwrap()));
        assert_eq!(h.alpn(), Some(&b"h2"[..]));
        assert_eq!(h.authority(), Some("example.com"));
        assert_eq!(h.tlv(0xEA), Some(&b"\x01vpce-0123"[..]));
        assert_eq!(h.tlvs().count(), 4);
        assert_eq!(h.ssl(), None);
    }

    #[test]
    fn an_ipv6_header_and_a_unix_one() {
        let mut addrs = Vec::new();
        addrs.extend_from_slice(&"2001:db8::7".parse::<Ipv6Addr>().unwrap().octets());
        addrs.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        addrs.extend_from_slice(&[0xff, 0xff, 0, 80]);
        let (h, _) = header(&build(1, 0x21, &addrs, &[]));
        assert_eq!(h.source(), Some("[2001:db8::7]:65535".parse().unwrap()));
        assert_eq!(h.destination(), Some("[::1]:80".parse().unwrap()));

        let mut unix = vec![0u8; 2 * UNIX_PATH];
        unix[..9].copy_from_slice(b"/tmp/c.sk");
        unix[UNIX_PATH..UNIX_PATH + 5].copy_from_slice(b"\0name");
        let (h, _) = header(&build(1, 0x31, &unix, &[]));
        assert_eq!(
            h.addresses(),
            &ProxyAddresses::Unix {
                source: Bytes::from_static(b"/tmp/c.sk"),
                destination: Bytes::from_static(b"\0name"),
            }
        );
        assert_eq!(h.source(), None);
    }

    #[test]
    fn local_ignores_its_block_and_unspecified_has_no_addresses() {
        // A LOCAL header with an IPv4 block (a health check) and junk.
        let (h, n) = header(&build(0, 0x11, &inet4(), &[0xff]));
        assert_eq!(n, 16 + 13);
        assert_eq!(
            (h.command(), h.addresses(), h.tlvs().count()),
            (ProxyCommand::Local, &ProxyAddresses::Unknown, 0)
        );
        // LOCAL with a family the protocol does not define: still accepted.
        let (h, _) = header(&build(0, 0x41, &[], &[]));
        assert_eq!(h.transport(), ProxyTransport::Unspecified);
        // LOCAL keeps well-formed TLVs behind its addresses.
        let (h, _) = header(&build(
            0,
            0x11,
            &inet4(),
            &tlv_bytes(tlv::UNIQUE_ID, b"hc-1"),
        ));
        assert_eq!(h.unique_id(), Some(&b"hc-1"[..]));
        assert_eq!(h.source(), None);
        // PROXY over an unspecified family: no addresses, TLVs at once.
        let (h, _) = header(&build(
            1,
            0x00,
            &[],
            &tlv_bytes(tlv::AUTHORITY, b"a.example"),
        ));
        assert_eq!(h.addresses(), &ProxyAddresses::Unknown);
        assert_eq!(h.transport(), ProxyTransport::Unspecified);
        assert_eq!(h.authority(), Some("a.example"));
        assert_eq!(
            parse(&build(1, 0x00, &[1, 2, 3], &[])),
            Err(ProxyError::V2Tlv)
        );
    }

    #[test]
    fn a_checksum_computed_elsewhere_is_accepted() {
        // Computed by an independent bitwise CRC-32C (not this crate's
        // table): the header with its checksum field zeroed, sent
        // big-endian.
        let mut tlv = vec![tlv::CRC32C, 0, 4];
        tlv.extend_from_slice(&0xf1ab_8985u32.to_be_bytes());
        let bytes = build(1, 0x11, &inet4(), &tlv);
        let (h, _) = header(&bytes);
        assert_eq!(h.tlv(tlv::CRC32C), Some(&0xf1ab_8985u32.to_be_bytes()[..]));
        // The same value little-endian is refused.
        let mut le = bytes.clone();
        let at = le.len() - 4;
        le[at..].copy_from_slice(&0xf1ab_8985u32.to_le_bytes());
        assert_eq!(parse(&le), Err(ProxyError::V2Checksum));
        // And a LOCAL header with a damaged checksum is refused too.
        let mut local = bytes;
        local[12] = 0x20;
        assert_eq!(parse(&local), Err(ProxyError::V2Checksum));
    }

    #[test]
    fn a_checksum_that_matches_is_kept_and_one_that_does_not_refused() {
        let mut tlvs = tlv_bytes(tlv::UNIQUE_ID, b"abc");
        tlvs.extend(tlv_bytes(tlv::CRC32C, &[0; 4]));
        let mut bytes = build(1, 0x11, &inet4(), &tlvs);
        let at = bytes.len() - 4;
        let crc = crc32c(&[&bytes]);
        bytes[at..].copy_from_slice(&crc.to_be_bytes());
        let (h, _) = header(&bytes);
        assert_eq!(h.unique_id(), Some(&b"abc"[..]));
        bytes[20] ^= 1; // a changed address
        assert_eq!(parse(&bytes), Err(ProxyError::V2Checksum));
        let short = build(1, 0x11, &inet4(), &tlv_bytes(tlv::CRC32C, &[0; 3]));
        assert_eq!(parse(&short), Err(ProxyError::V2Tlv));
    }

    #[test]
    fn the_ssl_tlv_and_its_sub_tlvs() {
        let mut ssl = vec![
            ProxySsl::CLIENT_SSL | ProxySsl::CLIENT_CERT_CONN,
            0,
            0,
            0,
            0,
        ];
        ssl.extend(tlv_bytes(tlv::SSL_VERSION, b"TLSv1.3"));
        ssl.extend(tlv_bytes(tlv::SSL_CN, b"client-7"));
        let (h, _) = header(&build(1, 0x11, &inet4(), &tlv_bytes(tlv::SSL, &ssl)));
        let s = h.ssl().unwrap();
        assert!(s.is_tls() && s.client_cert_verified());
        assert_eq!(s.version(), Some("TLSv1.3"));
        assert_eq!(s.common_name(), Some("client-7"));
        assert_eq!(s.cipher(), None);
        // An unverified certificate.
        ssl[4] = 1;
        let (h, _) = header(&build(1, 0x11, &inet4(), &tlv_bytes(tlv::SSL, &ssl)));
        assert!(!h.ssl().unwrap().client_cert_verified());
        // Too short, and a sub-TLV running past its parent.
        assert_eq!(
            parse(&build(1, 0x11, &inet4(), &tlv_bytes(tlv::SSL, &[1, 0]))),
            Err(ProxyError::V2Tlv)
        );
        let bad = [&[1u8, 0, 0, 0, 0][..], &[tlv::SSL_CN, 0, 9, b'x']].concat();
        assert_eq!(
            parse(&build(1, 0x11, &inet4(), &tlv_bytes(tlv::SSL, &bad))),
            Err(ProxyError::V2Tlv)
        );
    }

    #[test]
    fn a_header_cut_short_asks_for_more() {
        let bytes = build(1, 0x11, &inet4(), &tlv_bytes(tlv::ALPN, b"http/1.1"));
        for cut in 0..bytes.len() {
            match parse(&bytes[..cut]) {
                Ok(Parsed::Incomplete(need)) => {
                    assert!(need > cut && need <= bytes.len(), "{need} at {cut}")
                }
                other => panic!("{other:?} at {cut}"),
            }
        }
    }

    #[test]
    fn malformed_headers_are_refused() {
        let mut v1 = build(1, 0x11, &inet4(), &[]);
        v1[12] = 0x11;
        assert_eq!(parse(&v1), Err(ProxyError::V2Version(1)));
        assert_eq!(
            parse(&build(2, 0x11, &inet4(), &[])),
            Err(ProxyError::V2Command(2))
        );
        // Only the pairs the protocol defines, under PROXY.
        for fam in [0x41, 0x13, 0x10, 0x20, 0x30, 0x01, 0x02, 0x03] {
            assert_eq!(
                parse(&build(1, fam, &inet4(), &[])),
                Err(ProxyError::V2Family(fam))
            );
        }
        assert_eq!(
            parse(&build(1, 0x21, &inet4(), &[])),
            Err(ProxyError::V2AddressTooShort)
        );
        assert_eq!(
            parse(&build(1, 0x11, &inet4(), &[0x01, 0x00])),
            Err(ProxyError::V2Tlv)
        );
        assert_eq!(
            parse(&build(1, 0x11, &inet4(), &[0x01, 0x00, 0x02, b'x'])),
            Err(ProxyError::V2Tlv)
        );
    }
}
