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
}

impl Target {
    /// The target of `uri`: it must be absolute, `http` or `https`, with a
    /// host.
    pub(crate) fn from_uri(uri: &Uri) -> Result<Target, ClientError> {
        let invalid = |reason| ClientError::InvalidUri {
            uri: uri.to_string(),
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
        let port = match uri.port_u16() {
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
        })
    }
}
