//! Shared harness code for the `runtime` and `io` (criterion) and `cpu`
//! bench targets.
//!
//! Every peer runtime is driven the same way: a long-lived runtime owns a
//! driver task; the bench thread sends one [`Cmd`] over an `async_channel`
//! and blocks on a `std::sync::mpsc` reply. That hop is in every timed
//! iteration, for every peer, so it cancels out of the ratios.
//!
//! The workloads themselves are written once, generic over [`Exec`](exec::Exec), and
//! monomorphised for each runtime.

pub mod cpu;
pub mod echo_peer;
pub mod exec;
pub mod fd_handoff;
pub mod harness;
pub mod http;
pub mod io_compio_cores;
pub mod io_fixture;
pub mod io_harness;
pub mod io_impls;
pub mod io_workloads;
pub mod quantile;
pub mod raw_io;
pub mod raw_uring;
pub mod service_harness;
pub mod service_load;
pub mod service_pacer;
pub mod service_route;
pub mod service_tokio;
pub mod service_workload;
pub mod spargio_msg_ring;
pub mod spin;
pub mod workloads;

pub use harness::{Bench, Peer, Row};
pub use io_harness::{IoPeer, IoRow};
pub use workloads::{Cmd, Workload};
