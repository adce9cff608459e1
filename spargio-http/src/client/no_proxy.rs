//! Which servers a proxy is not used for: a `NO_PROXY`-style list of host
//! names, domains, addresses and networks.

use std::net::IpAddr;

use super::proxy::InvalidProxy;

/// Servers a [`Proxy`](super::Proxy) is not used for: requests to them go
/// straight to the server. Made from a comma-separated list in the format
/// of the `NO_PROXY` environment variable, as curl reads it:
///
/// - `example.com` or `.example.com` (or `*.example.com`): that name and
///   every name under it (`api.example.com`), not `notexample.com`;
/// - `192.168.1.7`, `::1` (or `[::1]`): that address;
/// - `10.0.0.0/8`, `fd00::/8`: every address in that network;
/// - any host or address entry may end in `:port` (an IPv6 one in
///   brackets, `[::1]:8080`) to cover that port only;
/// - `*`: every server (wherever it stands in the list).
///
/// Names are compared without regard to case and are not resolved: a host
/// name never matches an address entry. Spaces around entries and empty
/// entries are ignored.
///
/// ```
/// use spargio_http::client::{NoProxy, Proxy};
///
/// let bypass = NoProxy::new("localhost, .internal.example, 10.0.0.0/8")?;
/// let proxy = Proxy::new("http://proxy.example:3128")?.no_proxy(bypass);
/// let client = spargio_http::Client::builder().proxy(proxy).build();
/// # let _ = client;
/// # Ok::<(), spargio_http::client::InvalidProxy>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoProxy {
    entries: Vec<Entry>,
}

/// One entry of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    /// `*`: every server.
    Everything,
    /// A host name and the names under it: lowercase, with no leading or
    /// trailing dot.
    Domain { name: String, port: Option<u16> },
    /// One address.
    Address { addr: IpAddr, port: Option<u16> },
    /// Every address whose first `prefix` bits are `addr`'s.
    Network { addr: IpAddr, prefix: u8 },
}

impl NoProxy {
    /// The servers in `list` (see [`NoProxy`] for the format).
    ///
    /// # Errors
    /// [`InvalidProxy`] naming the entry when one is neither a host name,
    /// an address nor a network (`10.0.0.0/33`, `exa mple.com`, a port
    /// that is not a number).
    pub fn new(list: &str) -> Result<NoProxy, InvalidProxy> {
        let entries = list
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                parse_entry(entry).ok_or_else(|| {
                    InvalidProxy::new(format!(
                        "the no-proxy entry {entry:?} is not a host name, an address or a network"
                    ))
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(NoProxy { entries })
    }

    /// The servers in `list`, skipping the entries [`new`](NoProxy::new)
    /// would refuse (for lists from the environment, which other tools
    /// read that way).
    pub(crate) fn lenient(list: &str) -> NoProxy {
        let entries = list
            .split(',')
            .map(str::trim)
            .filter_map(parse_entry)
            .collect();
        NoProxy { entries }
    }

    /// Whether the list has no entry (it covers no server).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether a request to `host` (lowercase, an IPv6 address without
    /// brackets) on `port` goes around the proxy.
    pub(crate) fn covers(&self, host: &str, port: u16) -> bool {
        let host = host.strip_suffix('.').unwrap_or(host);
        let addr = host.parse::<IpAddr>().ok();
        let port_ok = |want: &Option<u16>| want.is_none_or(|want| want == port);
        self.entries.iter().any(|entry| match (entry, addr) {
            (Entry::Everything, _) => true,
            (Entry::Domain { name, port: want }, None) => {
                port_ok(want) && is_same_or_under(host, name)
            }
            (
                Entry::Address {
                    addr: a,
                    port: want,
                },
                Some(addr),
            ) => port_ok(want) && *a == addr,
            (Entry::Network { addr: net, prefix }, Some(addr)) => in_network(addr, *net, *prefix),
            _ => false,
        })
    }
}

/// `host` is `name` or a name under it (`a.b.name`).
fn is_same_or_under(host: &str, name: &str) -> bool {
    match host.len().checked_sub(name.len()) {
        Some(0) => host.eq_ignore_ascii_case(name),
        Some(extra) => {
            host.as_bytes()[extra - 1] == b'.' && host[extra..].eq_ignore_ascii_case(name)
        }
        None => false,
    }
}

/// Whether the first `prefix` bits of `addr` and `net` agree (addresses
/// of different families never do).
fn in_network(addr: IpAddr, net: IpAddr, prefix: u8) -> bool {
    let (addr, net, width) = match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => (u32::from(a).into(), u32::from(n).into(), 32),
        (IpAddr::V6(a), IpAddr::V6(n)) => (u128::from(a), u128::from(n), 128),
        _ => return false,
    };
    let shift = width - u32::from(prefix);
    // A shift of 128 would overflow: a /0 network holds everything.
    shift >= 128 || (addr >> shift) == (net >> shift)
}

/// One entry, or `None` if it is not valid.
fn parse_entry(entry: &str) -> Option<Entry> {
    if entry == "*" {
        return Some(Entry::Everything);
    }
    if let Some((addr, prefix)) = entry.split_once('/') {
        let addr = parse_address(addr)?;
        let prefix: u8 = digits(prefix)?.try_into().ok()?;
        let width = if addr.is_ipv4() { 32 } else { 128 };
        return (prefix <= width).then_some(Entry::Network { addr, prefix });
    }
    if let Some(addr) = parse_address(entry) {
        return Some(Entry::Address { addr, port: None });
    }
    // `[v6]:port`, `v4:port` or `name:port`.
    let (host, port) = match entry.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') || host.starts_with('[') => (
            host,
            Some(u16::try_from(digits(port)?).ok().filter(|p| *p != 0)?),
        ),
        Some(_) => return None,
        None => (entry, None),
    };
    if let Some(addr) = parse_address(host) {
        return Some(Entry::Address { addr, port });
    }
    let name = host
        .strip_prefix("*.")
        .or_else(|| host.strip_prefix('.'))
        .unwrap_or(host);
    let name = name.strip_suffix('.').unwrap_or(name);
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    valid.then(|| Entry::Domain {
        name: name.to_ascii_lowercase(),
        port,
    })
}

/// An address, IPv6 with or without brackets.
fn parse_address(text: &str) -> Option<IpAddr> {
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    bare.parse().ok()
}

/// A decimal number of plain digits (no sign, no spaces).
fn digits(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covers(list: &str, host: &str, port: u16) -> bool {
        NoProxy::new(list).unwrap().covers(host, port)
    }

    #[test]
    fn domains_cover_themselves_and_the_names_under_them() {
        for list in [
            "example.com",
            ".example.com",
            "*.example.com",
            "EXAMPLE.com.",
        ] {
            assert!(covers(list, "example.com", 80), "{list}");
            assert!(covers(list, "api.example.com", 443), "{list}");
            assert!(covers(list, "a.b.example.com.", 443), "{list}");
            assert!(!covers(list, "notexample.com", 80), "{list}");
            assert!(!covers(list, "example.com.evil", 80), "{list}");
            assert!(!covers(list, "com", 80), "{list}");
        }
        assert!(covers("localhost", "localhost", 8080));
        // A name never matches an address entry, nor an address a name.
        assert!(!covers("127.0.0.1", "localhost", 80));
        assert!(!covers("localhost", "127.0.0.1", 80));
    }

    #[test]
    fn addresses_networks_and_ports() {
        assert!(covers("10.1.2.3", "10.1.2.3", 80));
        assert!(!covers("10.1.2.3", "10.1.2.4", 80));
        assert!(covers("10.0.0.0/8", "10.200.0.1", 80));
        assert!(!covers("10.0.0.0/8", "11.0.0.1", 80));
        assert!(covers("0.0.0.0/0", "8.8.8.8", 80));
        assert!(covers("::/0", "2001:db8::1", 80));
        assert!(!covers("0.0.0.0/0", "::1", 80));
        assert!(covers("fd00::/8", "fd12::1", 80));
        assert!(!covers("fd00::/8", "fe80::1", 80));
        assert!(covers("::1", "::1", 80));
        assert!(covers("[::1]", "::1", 80));
        assert!(covers("[::1]:8080", "::1", 8080));
        assert!(!covers("[::1]:8080", "::1", 8081));
        assert!(covers("127.0.0.1:9000", "127.0.0.1", 9000));
        assert!(!covers("127.0.0.1:9000", "127.0.0.1", 9001));
        assert!(covers("internal:8443", "db.internal", 8443));
        assert!(!covers("internal:8443", "db.internal", 443));
        assert!(covers(" a.test , , *", "anything.else", 1));
        assert!(!covers("", "anything", 1));
        assert!(NoProxy::new(" , ").unwrap().is_empty());
        assert_eq!(
            NoProxy::lenient("a.test, 10.*, , <local>"),
            NoProxy::new("a.test").unwrap()
        );
    }

    #[test]
    fn invalid_entries_are_refused_by_name() {
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/x",
            "example.com/8",
            "exa mple.com",
            "host:http",
            "host:0",
            "host:70000",
            "::1:8080:x",
            ".",
            "*.",
        ] {
            let err = NoProxy::new(&format!("ok.test,{bad}")).unwrap_err();
            assert!(err.to_string().contains(bad.trim()), "{bad}: {err}");
        }
    }
}
