//! Socket addresses: resolving them (numeric ones at once, host names on
//! the blocking pool, never on a shard) and converting to and from the
//! kernel's `sockaddr` form.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use socket2::SockAddr;

/// What the connect and bind functions accept: a socket address, an
/// `(ip, port)` pair, or a `"host:port"` string. Numeric forms resolve at
/// once; a host name is looked up on the runtime's blocking pool, so a slow
/// DNS answer never stalls a shard.
///
/// ```
/// use spargio_rt::net::ToSocketAddrs;
/// fn takes(_a: impl ToSocketAddrs) {}
/// takes("127.0.0.1:8080");
/// takes(("::1".parse::<std::net::IpAddr>().unwrap(), 80));
/// ```
pub trait ToSocketAddrs: sealed::Sealed {}

mod sealed {
    /// How an address argument resolves.
    pub enum Resolve {
        Ready(Vec<std::net::SocketAddr>),
        Lookup(String),
    }

    pub trait Sealed {
        fn resolve(self) -> Resolve;
    }
}

use sealed::{Resolve, Sealed};

macro_rules! ready_addrs {
    ($($t:ty => |$v:ident| $e:expr),* $(,)?) => {$(
        impl ToSocketAddrs for $t {}
        impl Sealed for $t {
            fn resolve(self) -> Resolve {
                let $v = self;
                Resolve::Ready($e)
            }
        }
    )*};
}

ready_addrs! {
    SocketAddr => |a| vec![a],
    SocketAddrV4 => |a| vec![SocketAddr::V4(a)],
    SocketAddrV6 => |a| vec![SocketAddr::V6(a)],
    (IpAddr, u16) => |a| vec![SocketAddr::new(a.0, a.1)],
    (Ipv4Addr, u16) => |a| vec![SocketAddr::new(IpAddr::V4(a.0), a.1)],
    (Ipv6Addr, u16) => |a| vec![SocketAddr::new(IpAddr::V6(a.0), a.1)],
    &[SocketAddr] => |a| a.to_vec(),
    Vec<SocketAddr> => |a| a,
}

impl ToSocketAddrs for &str {}
impl Sealed for &str {
    fn resolve(self) -> Resolve {
        match self.parse::<SocketAddr>() {
            Ok(a) => Resolve::Ready(vec![a]),
            Err(_) => Resolve::Lookup(self.to_string()),
        }
    }
}

impl ToSocketAddrs for String {}
impl Sealed for String {
    fn resolve(self) -> Resolve {
        self.as_str().resolve()
    }
}

impl ToSocketAddrs for &String {}
impl Sealed for &String {
    fn resolve(self) -> Resolve {
        self.as_str().resolve()
    }
}

impl ToSocketAddrs for (&str, u16) {}
impl Sealed for (&str, u16) {
    fn resolve(self) -> Resolve {
        match self.0.parse::<IpAddr>() {
            Ok(ip) => Resolve::Ready(vec![SocketAddr::new(ip, self.1)]),
            Err(_) => Resolve::Lookup(format!("{}:{}", self.0, self.1)),
        }
    }
}

/// Resolves `addr` to one or more socket addresses.
pub(crate) async fn resolve(addr: impl ToSocketAddrs) -> io::Result<Vec<SocketAddr>> {
    let addrs = match addr.resolve() {
        Resolve::Ready(v) => v,
        Resolve::Lookup(host) => {
            let handle = crate::RuntimeHandle::try_current().ok_or_else(|| {
                io::Error::other("spargio: resolving a host name needs a runtime")
            })?;
            handle
                .spawn_blocking(move || {
                    std::net::ToSocketAddrs::to_socket_addrs(&host).map(|i| i.collect::<Vec<_>>())
                })
                .await
                .map_err(io::Error::other)??
        }
    };
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "address resolved to nothing",
        ));
    }
    Ok(addrs)
}

/// Storage the kernel writes a peer address into (accept, recvfrom).
pub(crate) struct AddrBuf {
    pub(crate) storage: libc::sockaddr_storage,
    pub(crate) len: libc::socklen_t,
}

impl AddrBuf {
    pub(crate) fn new() -> Self {
        AddrBuf {
            // SAFETY: sockaddr_storage is plain old data; zero is valid.
            storage: unsafe { std::mem::zeroed() },
            len: std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t,
        }
    }

    pub(crate) fn to_sockaddr(&self) -> SockAddr {
        // SAFETY: the kernel wrote a valid address of `len` bytes (or left
        // the zeroed storage with family AF_UNSPEC, which SockAddr accepts).
        unsafe { SockAddr::new(self.storage, self.len) }
    }

    pub(crate) fn to_socket_addr(&self) -> io::Result<SocketAddr> {
        self.to_sockaddr()
            .as_socket()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an IP address"))
    }
}

/// Runs `f` on each resolved address until one succeeds; returns the last
/// error otherwise.
pub(crate) async fn each_addr<T, F, Fut>(addrs: Vec<SocketAddr>, mut f: F) -> io::Result<T>
where
    F: FnMut(SocketAddr) -> Fut,
    Fut: std::future::Future<Output = io::Result<T>>,
{
    let mut last = None;
    for a in addrs {
        match f(a).await {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address")))
}
