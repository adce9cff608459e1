//! What a PROXY protocol header says: who the proxy's client was, and
//! (version 2) what else the proxy knew of the connection.

use std::net::SocketAddr;

use bytes::Bytes;

/// TLV types of version 2 headers that [`ProxyHeader`] has accessors for.
pub mod tlv {
    /// The ALPN protocol the client negotiated with the proxy.
    pub const ALPN: u8 = 0x01;
    /// The host name the client asked for (TLS SNI or similar).
    pub const AUTHORITY: u8 = 0x02;
    /// A CRC-32C of the whole header (checked when the header is parsed).
    pub const CRC32C: u8 = 0x03;
    /// Padding, ignored.
    pub const NOOP: u8 = 0x04;
    /// An opaque connection id the proxy made up.
    pub const UNIQUE_ID: u8 = 0x05;
    /// What the proxy knew of the client's TLS session.
    pub const SSL: u8 = 0x20;
    /// The network namespace the proxy accepted the connection in.
    pub const NETNS: u8 = 0x30;
    /// Sub-TLV of [`SSL`]: the TLS version, as text (`"TLSv1.3"`).
    pub const SSL_VERSION: u8 = 0x21;
    /// Sub-TLV of [`SSL`]: the client certificate's subject common name.
    pub const SSL_CN: u8 = 0x22;
    /// Sub-TLV of [`SSL`]: the cipher suite's name.
    pub const SSL_CIPHER: u8 = 0x23;
    /// Sub-TLV of [`SSL`]: the certificate's signature algorithm.
    pub const SSL_SIG_ALG: u8 = 0x24;
    /// Sub-TLV of [`SSL`]: the certificate's key algorithm.
    pub const SSL_KEY_ALG: u8 = 0x25;
}

/// What the proxy sent this header for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyCommand {
    /// The connection carries a client's traffic: the addresses are the
    /// client's and the address it connected to.
    Proxy,
    /// The proxy's own connection (a health check): the socket's own
    /// addresses are the real ones (version 2 only; version 1's `UNKNOWN`
    /// comes as [`Proxy`](Self::Proxy) with [`ProxyAddresses::Unknown`]).
    Local,
}

/// The transport of the client's connection, as a version 2 header names
/// it (version 1 only speaks of TCP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyTransport {
    /// Not said.
    Unspecified,
    /// A stream (TCP, or a Unix stream socket).
    Stream,
    /// Datagrams (UDP, or a Unix datagram socket).
    Datagram,
}

/// The client's connection as the proxy saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxyAddresses {
    /// Not given (version 1 `UNKNOWN`, a version 2 `LOCAL` command or an
    /// unspecified family): use the socket's own addresses.
    Unknown,
    /// An IPv4 or IPv6 connection: where the client connected from and to.
    Inet {
        /// The client's address.
        source: SocketAddr,
        /// The address the client connected to (the proxy's).
        destination: SocketAddr,
    },
    /// A Unix socket connection: the two paths (up to their first NUL; an
    /// abstract name keeps its leading NUL).
    Unix {
        /// The client's socket path.
        source: Bytes,
        /// The path the client connected to.
        destination: Bytes,
    },
}

/// A parsed PROXY protocol header (version 1 or 2): what a load balancer
/// in front of the server (HAProxy, an AWS Network Load Balancer, Envoy,
/// nginx's `proxy_protocol`) says about the client whose connection it
/// passes on. See [`ServerBuilder::proxy_protocol`](crate::ServerBuilder::proxy_protocol)
/// and [`ConnInfo::client_addr`](crate::ConnInfo::client_addr).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyHeader {
    pub(crate) version: u8,
    pub(crate) command: ProxyCommand,
    pub(crate) transport: ProxyTransport,
    pub(crate) addresses: ProxyAddresses,
    /// The TLV area (version 2), checked to be well formed.
    pub(crate) tlvs: Bytes,
}

impl ProxyHeader {
    /// 1 or 2.
    pub fn version(&self) -> u8 {
        self.version
    }

    /// Whether the header speaks for a client or for the proxy itself.
    pub fn command(&self) -> ProxyCommand {
        self.command
    }

    /// The transport of the client's connection.
    pub fn transport(&self) -> ProxyTransport {
        self.transport
    }

    /// The client's connection as the proxy saw it.
    pub fn addresses(&self) -> &ProxyAddresses {
        &self.addresses
    }

    /// The client's IP address and port, when the header gives one.
    pub fn source(&self) -> Option<SocketAddr> {
        match self.addresses {
            ProxyAddresses::Inet { source, .. } => Some(source),
            _ => None,
        }
    }

    /// The address the client connected to, when the header gives one.
    pub fn destination(&self) -> Option<SocketAddr> {
        match self.addresses {
            ProxyAddresses::Inet { destination, .. } => Some(destination),
            _ => None,
        }
    }

    /// Every TLV of a version 2 header, in order, as (type, value); none
    /// for version 1. See [`tlv`] for the types the protocol defines;
    /// vendors use 0xE0-0xEF (AWS sends its VPC endpoint id as 0xEA).
    pub fn tlvs(&self) -> Tlvs<'_> {
        Tlvs(&self.tlvs)
    }

    /// The value of the first TLV of type `kind`.
    pub fn tlv(&self, kind: u8) -> Option<&[u8]> {
        self.tlvs().find(|(k, _)| *k == kind).map(|(_, v)| v)
    }

    /// The ALPN protocol the client negotiated with the proxy.
    pub fn alpn(&self) -> Option<&[u8]> {
        self.tlv(tlv::ALPN)
    }

    /// The host name the client asked the proxy for (TLS SNI), when it
    /// is UTF-8.
    pub fn authority(&self) -> Option<&str> {
        self.tlv(tlv::AUTHORITY)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The proxy's id for the connection.
    pub fn unique_id(&self) -> Option<&[u8]> {
        self.tlv(tlv::UNIQUE_ID)
    }

    /// What the proxy knew of the client's TLS session, when it sent it.
    pub fn ssl(&self) -> Option<ProxySsl<'_>> {
        let v = self.tlv(tlv::SSL)?;
        // Checked when parsed: at least 5 bytes, sub-TLVs well formed.
        Some(ProxySsl {
            client: v[0],
            verify: u32::from_be_bytes([v[1], v[2], v[3], v[4]]),
            sub: &v[5..],
        })
    }
}

/// The `SSL` TLV of a version 2 header ([`ProxyHeader::ssl`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProxySsl<'a> {
    client: u8,
    verify: u32,
    sub: &'a [u8],
}

impl<'a> ProxySsl<'a> {
    /// Bit 0x01 of the client field: the client connected over TLS.
    pub const CLIENT_SSL: u8 = 0x01;
    /// Bit 0x02: the client sent a certificate on this connection.
    pub const CLIENT_CERT_CONN: u8 = 0x02;
    /// Bit 0x04: the client sent a certificate at least once in its TLS
    /// session (maybe on an earlier, resumed connection).
    pub const CLIENT_CERT_SESS: u8 = 0x04;

    /// The client field's bits (`CLIENT_*`).
    pub fn client(&self) -> u8 {
        self.client
    }

    /// Whether the client connected over TLS.
    pub fn is_tls(&self) -> bool {
        self.client & Self::CLIENT_SSL != 0
    }

    /// Whether the client presented a certificate that the proxy verified
    /// (a certificate was sent, and the verify field is 0).
    pub fn client_cert_verified(&self) -> bool {
        self.client & (Self::CLIENT_CERT_CONN | Self::CLIENT_CERT_SESS) != 0 && self.verify == 0
    }

    /// The raw verify field: 0 when the client's certificate was verified.
    pub fn verify(&self) -> u32 {
        self.verify
    }

    /// The sub-TLVs, as (type, value).
    pub fn sub_tlvs(&self) -> Tlvs<'a> {
        Tlvs(self.sub)
    }

    /// The TLS version, as the proxy named it (`"TLSv1.3"`).
    pub fn version(&self) -> Option<&'a str> {
        self.text(tlv::SSL_VERSION)
    }

    /// The client certificate's subject common name, as the balancer
    /// sent it whether or not it verified the certificate: trust it only
    /// when [`client_cert_verified`](Self::client_cert_verified).
    pub fn common_name(&self) -> Option<&'a str> {
        self.text(tlv::SSL_CN)
    }

    /// The cipher suite.
    pub fn cipher(&self) -> Option<&'a str> {
        self.text(tlv::SSL_CIPHER)
    }

    fn text(&self, kind: u8) -> Option<&'a str> {
        self.sub_tlvs()
            .find(|(k, _)| *k == kind)
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }
}

/// An iterator over TLVs, as (type, value) ([`ProxyHeader::tlvs`]).
#[derive(Clone, Debug)]
pub struct Tlvs<'a>(pub(crate) &'a [u8]);

impl<'a> Iterator for Tlvs<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<(u8, &'a [u8])> {
        // The area was checked when the header was parsed; a short rest
        // (never there) just ends the iteration.
        let [kind, hi, lo, rest @ ..] = self.0 else {
            return None;
        };
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        let value = rest.get(..len)?;
        self.0 = &rest[len..];
        Some((*kind, value))
    }
}
