//! A forward HTTP proxy for the client: plain `http` requests go to it in
//! absolute form; `https` requests (and plain WebSocket handshakes) go
//! through a `CONNECT` tunnel it opens, with TLS to the server inside.

use std::fmt;

use bytes::{Buf, BytesMut};
use http::header::{HeaderValue, PROXY_AUTHORIZATION};
use http::uri::Scheme;
use http::{HeaderMap, Method, StatusCode, Uri};
use spargio_rt::io::{AsyncRead, AsyncWriteExt};
use spargio_rt::net::SocketStream;

use super::no_proxy::NoProxy;
use super::target::Target;
use super::ClientError;
use crate::h1::{self, BodyLength, HeadScan, Limits};

/// A forward proxy requests of a [`Client`](crate::Client) go through
/// (see [`ClientBuilder::proxy`](crate::ClientBuilder::proxy)): for every
/// request ([`Proxy::new`]), only `http` ones ([`Proxy::http`]) or only
/// `https` ones ([`Proxy::https`]), except those to the servers of its
/// [`no_proxy`](Proxy::no_proxy) list.
///
/// Made from the proxy's `http://host:port` URI; credentials in it
/// (`http://user:password@host:port`) are sent to the proxy as
/// `Proxy-Authorization: Basic ...`, never to the servers behind it.
/// Proxies reached over TLS (`https://` proxy URIs) and SOCKS proxies are
/// not supported.
///
/// ```
/// use spargio_http::client::{NoProxy, Proxy};
///
/// let proxy = Proxy::new("http://user:secret@proxy.internal:3128")?
///     .no_proxy(NoProxy::new("localhost, 127.0.0.1, .svc.cluster.local")?);
/// let client = spargio_http::Client::builder().proxy(proxy).build();
/// # let _ = client;
/// # Ok::<(), spargio_http::client::InvalidProxy>(())
/// ```
#[derive(Clone)]
pub struct Proxy {
    host: String,
    port: u16,
    authorization: Option<HeaderValue>,
    scope: Scope,
    bypass: NoProxy,
}

/// Which requests a proxy is for, by their scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    All,
    Http,
    Https,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The credentials stay out of logs.
        f.debug_struct("Proxy")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("authorization", &self.authorization.as_ref().map(|_| ".."))
            .field("scope", &self.scope)
            .field("no_proxy", &self.bypass)
            .finish()
    }
}

/// Why a proxy URI was refused by [`Proxy::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidProxy(String);

impl InvalidProxy {
    /// An error that says `message`.
    pub(crate) fn new(message: String) -> InvalidProxy {
        InvalidProxy(message)
    }

    /// A proxy URI refused for `reason`.
    fn uri(reason: impl fmt::Display) -> InvalidProxy {
        InvalidProxy(format!("invalid proxy URI: {reason}"))
    }

    /// This error, said of the environment variable `name`.
    pub(crate) fn in_variable(self, name: &str) -> InvalidProxy {
        InvalidProxy(format!("{name}: {}", self.0))
    }
}

impl fmt::Display for InvalidProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidProxy {}

impl Proxy {
    /// The proxy at `uri`, for every request: `http://host:port` (port 80
    /// if left out), with optional `user:password@` credentials,
    /// percent-decoded (`p%40ss` is the password `p@ss`); a user without a
    /// password has an empty one.
    ///
    /// # Errors
    /// [`InvalidProxy`] saying why `uri` is not such a URI.
    pub fn new<U>(uri: U) -> Result<Proxy, InvalidProxy>
    where
        U: TryInto<Uri>,
        U::Error: fmt::Display,
    {
        Proxy::scoped(uri, Scope::All)
    }

    /// The proxy at `uri` (as [`new`](Proxy::new) takes it), for `http`
    /// requests only.
    ///
    /// # Errors
    /// As [`new`](Proxy::new).
    pub fn http<U>(uri: U) -> Result<Proxy, InvalidProxy>
    where
        U: TryInto<Uri>,
        U::Error: fmt::Display,
    {
        Proxy::scoped(uri, Scope::Http)
    }

    /// The proxy at `uri` (as [`new`](Proxy::new) takes it; the proxy
    /// itself is still spoken to in plain HTTP), for `https` requests
    /// only, which it tunnels.
    ///
    /// # Errors
    /// As [`new`](Proxy::new).
    pub fn https<U>(uri: U) -> Result<Proxy, InvalidProxy>
    where
        U: TryInto<Uri>,
        U::Error: fmt::Display,
    {
        Proxy::scoped(uri, Scope::Https)
    }

    /// This proxy, not used for the servers in `list`: requests to them go
    /// straight to the server (or to the next proxy of the client that
    /// covers them). Replaces any list set before.
    pub fn no_proxy(mut self, list: NoProxy) -> Proxy {
        self.bypass = list;
        self
    }

    /// This proxy, with `value` as the `Proxy-Authorization` it is sent,
    /// in place of credentials in its URI: any scheme (`Bearer`, a
    /// `Negotiate` token...), not only `Basic`. It goes with every plain
    /// `http` request through the proxy (unless the request carries its
    /// own) and with the `CONNECT` that opens a tunnel for `https` (where
    /// a request's own header cannot go: it would reach the server at the
    /// tunnel's end). Marked sensitive and kept out of `Debug` output.
    ///
    /// ```
    /// use http::HeaderValue;
    /// use spargio_http::client::Proxy;
    ///
    /// let token = HeaderValue::from_static("Bearer abc123");
    /// let proxy = Proxy::new("http://proxy.internal:3128")?.authorization(token);
    /// assert!(!format!("{proxy:?}").contains("abc123"));
    /// # Ok::<(), spargio_http::client::InvalidProxy>(())
    /// ```
    pub fn authorization(mut self, mut value: HeaderValue) -> Proxy {
        value.set_sensitive(true);
        self.authorization = Some(value);
        self
    }

    /// Whether a request to `target` goes through this proxy.
    pub(crate) fn is_for(&self, target: &Target) -> bool {
        let scheme_ok = match self.scope {
            Scope::All => true,
            Scope::Http => !target.https,
            Scope::Https => target.https,
        };
        scheme_ok && !self.bypass.covers(&target.host, target.port)
    }

    fn scoped<U>(uri: U, scope: Scope) -> Result<Proxy, InvalidProxy>
    where
        U: TryInto<Uri>,
        U::Error: fmt::Display,
    {
        let uri: Uri = uri
            .try_into()
            .map_err(|e| InvalidProxy::uri(format!("not a URI: {e}")))?;
        match uri.scheme() {
            Some(s) if *s == Scheme::HTTP => {}
            Some(s) if *s == Scheme::HTTPS => {
                return Err(InvalidProxy::uri("https proxies are not supported"))
            }
            Some(s) if s.as_str().starts_with("socks") => {
                return Err(InvalidProxy::uri("SOCKS proxies are not supported"))
            }
            _ => return Err(InvalidProxy::uri("an http://host:port URI is required")),
        }
        let authority = uri
            .authority()
            .ok_or_else(|| InvalidProxy::uri("the URI has no host"))?;
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(InvalidProxy::uri("a proxy URI has no path or query"));
        }
        let (credentials, host_port) = match authority.as_str().rsplit_once('@') {
            Some((creds, rest)) => (Some(creds), rest),
            None => (None, authority.as_str()),
        };
        // The host and port are checked as any request target's are.
        let plain: Uri = format!("http://{host_port}/")
            .parse()
            .map_err(|e| InvalidProxy::uri(format!("bad host: {e}")))?;
        let target = Target::from_uri(&plain).map_err(InvalidProxy::uri)?;
        let authorization = credentials.map(basic_credentials).transpose()?;
        Ok(Proxy {
            host: target.host,
            port: target.port,
            authorization,
            scope,
            bypass: NoProxy::default(),
        })
    }

    /// The proxy's host, as connected to.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Adds `Proxy-Authorization` to `headers` (a request sent to the proxy
    /// itself) unless the caller set one.
    pub(crate) fn authorize(&self, headers: &mut HeaderMap) {
        if let Some(value) = &self.authorization {
            if !headers.contains_key(PROXY_AUTHORIZATION) {
                headers.insert(PROXY_AUTHORIZATION, value.clone());
            }
        }
    }

    /// Asks the proxy, over `socket`, for a tunnel to `target`; returns
    /// once the proxy said yes (a 2xx), after which `socket` carries bytes
    /// to and from `target`. Interim (1xx) answers before it are skipped,
    /// at most `max_interim` of them.
    pub(crate) async fn open_tunnel(
        &self,
        socket: &mut SocketStream,
        target: &Target,
        limits: &Limits,
        max_interim: usize,
    ) -> Result<(), ClientError> {
        let failed = |reason: String| ClientError::Proxy {
            host: target.authority.clone(),
            reason,
        };
        let io_failed = |e: std::io::Error| failed(format!("the tunnel was not opened: {e}"));
        let authority: Uri = target
            .authority
            .parse()
            .map_err(|e| failed(format!("bad tunnel target: {e}")))?;
        let mut headers = HeaderMap::new();
        self.authorize(&mut headers);
        let mut head = BytesMut::new();
        h1::encode_request_head(
            &mut head,
            &Method::CONNECT,
            &authority,
            &headers,
            BodyLength::Empty,
            false,
        )
        .map_err(|e| failed(e.to_string()))?;
        let (res, _) = socket.write_all(head).await;
        res.map_err(io_failed)?;
        // The proxy's answer, read until its head is whole. Nothing may
        // follow a 2xx head before the client speaks: the tunnel is silent
        // until TLS starts.
        let mut got = BytesMut::new();
        let mut interim = 0;
        // A head dripped a byte at a time is not parsed again from its
        // start after every read.
        let mut scan = HeadScan::default();
        loop {
            let parsed = if scan.worth_parsing(&got, limits.max_head_bytes, None) {
                h1::parse_response(&got, &Method::CONNECT, limits)
                    .map_err(|e| failed(e.to_string()))?
            } else {
                None
            };
            if let Some((resp, len)) = parsed {
                if resp.status.is_informational() && resp.status != StatusCode::SWITCHING_PROTOCOLS
                {
                    interim += 1;
                    if interim > max_interim {
                        return Err(failed("too many interim (1xx) answers".into()));
                    }
                    got.advance(len);
                    scan.reset();
                    continue;
                }
                if !resp.status.is_success() {
                    return Err(ClientError::ProxyRefused {
                        host: target.authority.clone(),
                        status: resp.status,
                    });
                }
                if got.len() > len {
                    return Err(failed("the proxy sent bytes after its 2xx head".into()));
                }
                return Ok(());
            }
            if got.len() >= limits.max_head_bytes {
                return Err(failed("the proxy's answer head is too large".into()));
            }
            let buf = Vec::with_capacity(4096);
            let (res, buf) = socket.read(buf).await;
            match res.map_err(io_failed)? {
                0 => return Err(failed("the proxy closed the connection".into())),
                n => got.extend_from_slice(&buf[..n]),
            }
        }
    }
}

/// `Basic <base64 of user:password>` from the URI's userinfo, its
/// percent-encoding decoded (RFC 3986 §3.2.1; RFC 7617 §2).
fn basic_credentials(userinfo: &str) -> Result<HeaderValue, InvalidProxy> {
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let user = percent_decode(user)?;
    if user.is_empty() {
        return Err(InvalidProxy::uri("the credentials have no user name"));
    }
    let mut pair = user;
    pair.push(b':');
    pair.extend_from_slice(&percent_decode(password)?);
    let encoded = crate::ws::keys::base64(&pair);
    let mut value = HeaderValue::try_from(format!("Basic {encoded}"))
        .map_err(|_| InvalidProxy::uri("unusable credentials"))?;
    value.set_sensitive(true);
    Ok(value)
}

/// `text` with each `%XX` replaced by the byte it encodes.
fn percent_decode(text: &str) -> Result<Vec<u8>, InvalidProxy> {
    let bad = || InvalidProxy::uri("a bad percent-encoding in the credentials");
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        if b != b'%' {
            out.push(b);
            continue;
        }
        let hex = |d: Option<u8>| d.and_then(|d| (d as char).to_digit(16)).ok_or_else(bad);
        let (hi, lo) = (hex(bytes.next())?, hex(bytes.next())?);
        out.push((hi * 16 + lo) as u8);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_of(uri: &str) -> String {
        let proxy = Proxy::new(uri).unwrap();
        let mut headers = HeaderMap::new();
        proxy.authorize(&mut headers);
        headers[PROXY_AUTHORIZATION].to_str().unwrap().to_owned()
    }

    #[test]
    fn credentials_are_percent_decoded_and_a_missing_password_is_empty() {
        // base64("u:p/ss@x")
        assert_eq!(header_of("http://u:p%2Fss%40x@h:1"), "Basic dTpwL3NzQHg=");
        // base64("user:")
        assert_eq!(header_of("http://user@h:1"), "Basic dXNlcjo=");
        assert!(Proxy::new("http://@h:1").is_err());
        assert!(Proxy::new("http://u:p%zz@h:1").is_err());
        assert!(Proxy::new("http://u:p%2@h:1").is_err());
    }

    #[test]
    fn the_callers_own_header_wins_and_the_value_is_sensitive() {
        let proxy = Proxy::new("http://u:p@h:1").unwrap();
        let mut headers = HeaderMap::new();
        proxy.authorize(&mut headers);
        assert!(headers[PROXY_AUTHORIZATION].is_sensitive());
        let mut own = HeaderMap::new();
        own.insert(PROXY_AUTHORIZATION, HeaderValue::from_static("Bearer t"));
        proxy.authorize(&mut own);
        assert_eq!(own[PROXY_AUTHORIZATION], "Bearer t");
    }
}
