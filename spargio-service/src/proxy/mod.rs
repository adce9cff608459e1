//! The PROXY protocol (HAProxy's, versions 1 and 2): a header a load
//! balancer writes at the start of each connection it passes on, naming
//! the client it came from. Behind one (HAProxy, an AWS Network Load
//! Balancer, Envoy, nginx's `proxy_protocol`), the socket's peer is the
//! balancer; the header is how the server learns who the client is.
//!
//! Turn it on with
//! [`ServerBuilder::proxy_protocol`](crate::ServerBuilder::proxy_protocol):
//! each connection's header is read on its session shard before the
//! make-service is called, and lands in
//! [`ConnInfo::proxy`](crate::ConnInfo::proxy) (with
//! [`ConnInfo::client_addr`](crate::ConnInfo::client_addr) the address to
//! log). The protocol (HTTP, TLS, your own) starts at the byte after it.
//!
//! ```
//! use bytes::Bytes;
//! use spargio_rt::io::AsyncWriteExt;
//! use spargio_rt::net::TcpStream;
//! use spargio_service::codec::{Client, LengthDelimited};
//! use spargio_service::proxy::ProxyProtocol;
//! use spargio_service::{ConnInfo, Server};
//!
//! spargio_rt::run(|handle| async move {
//!     let server = Server::builder()
//!         .proxy_protocol(ProxyProtocol::required())
//!         .bind(&handle, "127.0.0.1:0")
//!         .unwrap();
//!     let addr = server.local_addr();
//!     let stop = server.shutdown_handle();
//!     // The make-service sees each connection's client as the proxy named it.
//!     let make = tower::service_fn(|info: ConnInfo| async move {
//!         let client = info.client_addr().unwrap().to_string();
//!         Ok::<_, std::convert::Infallible>(tower::service_fn(move |_req: Bytes| {
//!             let client = client.clone();
//!             async move { Ok::<_, std::convert::Infallible>(Bytes::from(client)) }
//!         }))
//!     });
//!     let serving = handle.spawn(server.serve(LengthDelimited::new(), make));
//!
//!     // What a load balancer does: connect, write the header, pass on.
//!     let mut upstream = TcpStream::connect(addr).await.unwrap();
//!     let (res, _) = upstream
//!         .write_all(b"PROXY TCP4 203.0.113.9 192.0.2.1 40000 443\r\n".to_vec())
//!         .await;
//!     res.unwrap();
//!     let mut client = Client::new(upstream);
//!     let reply = client.call(Bytes::new()).await.unwrap().unwrap();
//!     assert_eq!(reply, Bytes::from("203.0.113.9:40000"));
//!     drop(client);
//!     stop.shutdown();
//!     serving.await.unwrap().unwrap();
//! })
//! .unwrap();
//! ```
//!
//! [`parse`] is the sans-IO parser underneath, and [`read_header`] takes a
//! header off a connection you accepted yourself.

mod crc32c;
mod header;
mod parse;
mod read;
mod v1;
mod v2;

pub use header::{tlv, ProxyAddresses, ProxyCommand, ProxyHeader, ProxySsl, ProxyTransport, Tlvs};
pub use parse::{parse, Parsed, ProxyError};
pub use read::{read_header, ProxyProtocol};
