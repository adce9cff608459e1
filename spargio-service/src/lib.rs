//! Serve tower `Service`s on spargio-rt.
//!
//! A listener (TCP, or a Unix socket) accepts connections and hands each to a *session shard*
//! (round-robin, one `SO_REUSEPORT` listener per shard, or one pinned
//! shard). The connection's task stays pinned there, so all of its socket
//! I/O goes through that shard's ring. The wire protocol (HTTP in spargio-http, the
//! [`codec`] here, or your own [`Protocol`]) decodes requests and hands them
//! to the tower service through a [`Handler`], which places each response
//! future per [`HandlerPlacement`]: inline on the connection's task,
//! stealable so CPU-heavy handlers spread over idle shards, or adaptive.
//!
//! The crate is protocol-agnostic; [`codec::LengthDelimited`] is a simple
//! request/response framing for RPC-style services and for testing.

#![warn(missing_docs)]

mod accept;
mod adaptive;
mod builder;
pub mod codec;
mod conn;
mod conn_end;
mod connection;
mod error;
mod handler;
mod inline_call;
mod input_waiting;
pub mod layers;
mod lazy_deadline;
mod listener;
mod local;
mod measured;
mod placement;
mod protocol;
pub mod proxy;
mod read_watch;
mod send_watch;
mod server;
mod shutdown;
mod single;
mod spawned;
mod stats;

pub use builder::{AcceptMode, ServerBuilder};
pub use connection::{ConnInfo, Connection};
pub use error::{BoxError, HandlerError};
pub use input_waiting::input_waiting;
pub use listener::Listener;
pub use placement::{AdaptiveConfig, HandlerPlacement};
pub use protocol::{Handler, Protocol, RouteKey};
pub use read_watch::{ReadWatch, ReadWatchWait, Watched};
pub use send_watch::{Pieces, SendWatch, SEND_PIECE};
pub use server::Server;
pub use shutdown::{ShutdownHandle, ShutdownReport};
pub use single::{serve_connection, ServeConnection};
pub use stats::{ServerStats, StatsHandle};
