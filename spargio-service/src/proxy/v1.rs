//! The human-readable version 1 header: one line,
//! `PROXY TCP4|TCP6 <src> <dst> <sport> <dport>\r\n` or
//! `PROXY UNKNOWN ...\r\n`, at most 107 bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::Bytes;

use super::header::{ProxyAddresses, ProxyCommand, ProxyHeader, ProxyTransport};
use super::parse::{Parsed, ProxyError};

/// What every version 1 header starts with.
pub(crate) const SIGNATURE: &[u8] = b"PROXY ";

/// The longest line the protocol allows, CRLF included.
pub(crate) const MAX_LEN: usize = 107;

/// `None` unless `buf` starts with the version 1 signature.
pub(crate) fn parse(buf: &[u8]) -> Result<Option<Parsed>, ProxyError> {
    if !buf.starts_with(SIGNATURE) {
        return Ok(None);
    }
    let window = &buf[..buf.len().min(MAX_LEN)];
    let Some(cr) = window.iter().position(|&b| b == b'\r' || b == b'\n') else {
        if buf.len() >= MAX_LEN {
            return Err(ProxyError::V1TooLong);
        }
        // Nothing ends the line yet: at least "\r\n" is to come.
        return Ok(Some(Parsed::Incomplete(buf.len() + 2)));
    };
    if window[cr] == b'\n' {
        return Err(ProxyError::V1Malformed("LF without CR"));
    }
    match window.get(cr + 1) {
        Some(b'\n') => {}
        Some(_) => return Err(ProxyError::V1Malformed("CR not followed by LF")),
        None if cr + 1 >= MAX_LEN => return Err(ProxyError::V1TooLong),
        None => return Ok(Some(Parsed::Incomplete(cr + 2))),
    }
    let line = &buf[SIGNATURE.len()..cr];
    let header = parse_line(line)?;
    Ok(Some(Parsed::Header(header, cr + 2)))
}

/// Parses what follows `PROXY ` up to the CR.
fn parse_line(line: &[u8]) -> Result<ProxyHeader, ProxyError> {
    let (proto, rest) = match line.iter().position(|&b| b == b' ') {
        Some(sp) => (&line[..sp], &line[sp + 1..]),
        None => (line, &[][..]),
    };
    let text =
        |b| std::str::from_utf8(b).map_err(|_| ProxyError::V1Malformed("bytes that are not text"));
    let addresses = match proto {
        // Anything may follow UNKNOWN (text or not); it is ignored.
        b"UNKNOWN" => ProxyAddresses::Unknown,
        b"TCP4" => inet(text(rest)?, |s| s.parse::<Ipv4Addr>().ok().map(IpAddr::V4))?,
        b"TCP6" => inet(text(rest)?, |s| s.parse::<Ipv6Addr>().ok().map(IpAddr::V6))?,
        _ => {
            return Err(ProxyError::V1Malformed(
                "protocol not TCP4, TCP6 or UNKNOWN",
            ))
        }
    };
    Ok(ProxyHeader {
        version: 1,
        command: ProxyCommand::Proxy,
        transport: ProxyTransport::Stream,
        addresses,
        tlvs: Bytes::new(),
    })
}

/// `<src> <dst> <sport> <dport>`, single spaces, addresses of one family.
fn inet(rest: &str, ip: impl Fn(&str) -> Option<IpAddr>) -> Result<ProxyAddresses, ProxyError> {
    let mut fields = rest.split(' ');
    let mut next = |what| fields.next().filter(|f| !f.is_empty()).ok_or(what);
    let src = next(ProxyError::V1Malformed("missing source address"))?;
    let dst = next(ProxyError::V1Malformed("missing destination address"))?;
    let sport = next(ProxyError::V1Malformed("missing source port"))?;
    let dport = next(ProxyError::V1Malformed("missing destination port"))?;
    if fields.next().is_some() {
        return Err(ProxyError::V1Malformed("fields after the destination port"));
    }
    let src = ip(src).ok_or(ProxyError::V1Malformed("bad source address"))?;
    let dst = ip(dst).ok_or(ProxyError::V1Malformed("bad destination address"))?;
    let sport = port(sport).ok_or(ProxyError::V1Malformed("bad source port"))?;
    let dport = port(dport).ok_or(ProxyError::V1Malformed("bad destination port"))?;
    Ok(ProxyAddresses::Inet {
        source: SocketAddr::new(src, sport),
        destination: SocketAddr::new(dst, dport),
    })
}

/// A port in plain decimal digits, 0-65535.
fn port(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::super::parse::{parse, Parsed, ProxyError};
    use super::*;

    fn header(buf: &[u8]) -> (ProxyHeader, usize) {
        match parse(buf) {
            Ok(Parsed::Header(h, n)) => (h, n),
            other => panic!("{other:?} for {:?}", String::from_utf8_lossy(buf)),
        }
    }

    fn refused(buf: &[u8]) -> ProxyError {
        match parse(buf) {
            Err(e) => e,
            other => panic!("{other:?} for {:?}", String::from_utf8_lossy(buf)),
        }
    }

    #[test]
    fn tcp4_and_tcp6_lines_give_both_ends() {
        let (h, n) = header(b"PROXY TCP4 192.0.2.7 198.51.100.1 51234 443\r\nGET");
        assert_eq!(n, 45);
        assert_eq!(h.version(), 1);
        assert_eq!(h.command(), ProxyCommand::Proxy);
        assert_eq!(h.source(), Some("192.0.2.7:51234".parse().unwrap()));
        assert_eq!(h.destination(), Some("198.51.100.1:443".parse().unwrap()));
        assert_eq!(h.tlvs().count(), 0);
        let (h, n) = header(b"PROXY TCP6 2001:db8::1 ::1 65535 0\r\n");
        assert_eq!(n, 36);
        assert_eq!(h.source(), Some("[2001:db8::1]:65535".parse().unwrap()));
        assert_eq!(h.destination(), Some("[::1]:0".parse().unwrap()));
    }

    #[test]
    fn unknown_ignores_the_rest_of_its_line() {
        for line in [
            &b"PROXY UNKNOWN\r\n"[..],
            b"PROXY UNKNOWN ffff::1 what ever\r\n",
            b"PROXY UNKNOWN \xff\x00\r\n",
        ] {
            let (h, n) = header(line);
            assert_eq!(n, line.len());
            assert_eq!(h.addresses(), &ProxyAddresses::Unknown);
            assert_eq!(h.source(), None);
        }
    }

    #[test]
    fn the_longest_line_is_accepted_and_one_byte_more_refused() {
        let base = b"PROXY UNKNOWN ".to_vec();
        let mut line = base.clone();
        line.resize(MAX_LEN - 2, b'x');
        line.extend_from_slice(b"\r\n");
        assert_eq!(header(&line).1, MAX_LEN);
        let mut long = base;
        long.resize(MAX_LEN - 1, b'x');
        long.extend_from_slice(b"\r\n");
        assert_eq!(refused(&long), ProxyError::V1TooLong);
        // Without any CR at all, refused once 107 bytes are in.
        assert_eq!(
            refused(&[b"PROXY ".as_slice(), &[b'a'; 101]].concat()),
            ProxyError::V1TooLong
        );
    }

    #[test]
    fn a_line_cut_short_asks_for_more() {
        let line = b"PROXY TCP4 192.0.2.7 198.51.100.1 51234 443\r\n";
        for cut in 0..line.len() {
            match parse(&line[..cut]) {
                Ok(Parsed::Incomplete(need)) => assert!(need > cut && need <= line.len()),
                other => panic!("{other:?} at {cut}"),
            }
        }
    }

    #[test]
    fn malformed_lines_are_refused() {
        let bad: &[&[u8]] = &[
            b"PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n",
            b"PROXY tcp4 1.2.3.4 1.2.3.4 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2 3\r\n",
            b"PROXY TCP4 1.2.3.4  1.2.3.4 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2 \r\n",
            b"PROXY TCP4 1.2.3.4 ::1 1 2\r\n",
            b"PROXY TCP6 ::1 1.2.3.4 1 2\r\n",
            b"PROXY TCP4 1.2.3.256 1.2.3.4 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 +1 2\r\n",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 0x1 2\r\n",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 1 -2\r\n",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\rX",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 1 \xff\r\n",
            b"PROXY \r\n",
        ];
        for line in bad {
            assert!(
                matches!(refused(line), ProxyError::V1Malformed(_)),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn other_traffic_is_not_a_header() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Ok(Parsed::NotProxy));
        assert_eq!(parse(b"PROXX"), Ok(Parsed::NotProxy));
        assert_eq!(parse(b"PROX"), Ok(Parsed::Incomplete(5)));
        assert_eq!(parse(b""), Ok(Parsed::Incomplete(1)));
    }
}
