//! Where a request goes: scheme, host and port from its absolute URI.

use http::uri::Scheme;
use http::Uri;

use super::ClientError;

/// The server a request is for; also the key of its idle connections.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Target {
    /// `https` (TLS) or `http`.
    pub(crate) https: bool,
    /// The host name or IP address, lowercased, without IPv6 brackets:
    /// what is resolved and, for TLS, the server name.
    pub(crate) host: String,
    /// The port, the scheme's default if the URI has none.
    pub(crate) port: u16,
    /// `host:port` as shown in errors (IPv6 in brackets).
    pub(crate) authority: String,
    /// The proxy the request goes through, if any (connections through
    /// a proxy are kept apart from direct ones in the pool).
    pub(crate) via: Option<Via>,
}

/// How a request goes through one of the client's proxies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Via {
    /// Which of the client's proxies (an index into its list).
    pub(crate) proxy: usize,
    /// Through a `CONNECT` tunnel to the server (`https`, and plain
    /// requests that upgrade the connection); otherwise the request goes
    /// to the proxy itself, in absolute form.
    pub(crate) tunnel: bool,
}

impl Target {
    /// The target of `uri`: it must be absolute, `http` or `https`, with a
    /// host.
    pub(crate) fn from_uri(uri: &Uri) -> Result<Target, ClientError> {
        let invalid = |reason| ClientError::InvalidUri {
            uri: shown(uri),
            reason,
        };
        let https = match uri.scheme() {
            None => return Err(invalid("an absolute http:// or https:// URI is required")),
            Some(s) if *s == Scheme::HTTPS => true,
            Some(s) if *s == Scheme::HTTP => false,
            Some(_) => return Err(invalid("the scheme must be http or https")),
        };
        let host = match uri.host() {
            Some(h) if !h.is_empty() => h,
            _ => return Err(invalid("the URI has no host")),
        };
        // `http` takes whatever follows the host's last `:` for the port
        // and, when that is no number, answers as if there were none: a
        // mistyped port would quietly go to 80 (or 443).
        let port = match port_text(uri) {
            "" => None,
            digits => match digits.parse::<u16>() {
                Ok(p) if digits.bytes().all(|b| b.is_ascii_digit()) => Some(p),
                _ => return Err(invalid("the port is not a number from 1 to 65535")),
            },
        };
        let port = match port {
            Some(0) => return Err(invalid("port 0 cannot be connected to")),
            Some(p) => p,
            None if https => 443,
            None => 80,
        };
        let bracketed = host.starts_with('[');
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if bracketed && bare.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(invalid("the host in brackets is not an IPv6 address"));
        }
        let bare = bare.to_ascii_lowercase();
        let authority = if bracketed {
            format!("[{bare}]:{port}")
        } else {
            format!("{bare}:{port}")
        };
        Ok(Target {
            https,
            host: bare,
            port,
            authority,
            via: None,
        })
    }
}

/// What follows the host in `uri`'s authority, after its `:` (empty if
/// there is no port, or only a `:`).
fn port_text(uri: &Uri) -> &str {
    let Some(authority) = uri.authority() else {
        return "";
    };
    let after_userinfo = authority
        .as_str()
        .rsplit_once('@')
        .map_or(authority.as_str(), |(_, rest)| rest);
    let after_host = match after_userinfo.find(']') {
        Some(end) if after_userinfo.starts_with('[') => &after_userinfo[end + 1..],
        _ => after_userinfo
            .find(':')
            .map_or("", |colon| &after_userinfo[colon..]),
    };
    after_host.strip_prefix(':').unwrap_or(after_host)
}

/// `uri` as errors show it: without a password (or any userinfo).
fn shown(uri: &Uri) -> String {
    let text = uri.to_string();
    match uri.authority().map(|a| a.as_str()) {
        Some(authority) => match authority.rsplit_once('@') {
            Some((_, host_port)) => text.replacen(authority, host_port, 1),
            None => text,
        },
        None => text,
    }
}
