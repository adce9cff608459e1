//! compio the way its users scale it over cores: one runtime per core, each
//! on its own thread, every stream owned by one runtime for its whole life
//! (thread-per-core, nothing moves).
//!
//! Stream `i` is connected on runtime `i % WORKERS` and its task is spawned
//! there. Runtime 0 runs the driver: it serves the single-stream commands
//! alone (on stream 0, as the one-thread compio peer does) and hands each
//! multi-stream command to every other runtime over a channel, runs its
//! own share, and sums the shares, which gives the same checksum as one
//! runtime running all eight streams.

use crate::harness::WORKERS;
use crate::io_harness::{IoHarness, Setup};
use crate::io_impls::CompioSpawner;
use crate::io_workloads::{serve, serve_share, stream_jobs, IoCmd, STREAMS};
use std::net::SocketAddr;
use std::thread::JoinHandle;

/// What runtime 0 says to each other runtime: a multi-stream command; the
/// reply is that runtime's share of the checksum.
struct OtherRuntime {
    cmds: async_channel::Sender<IoCmd>,
    shares: async_channel::Receiver<u64>,
}

/// Connects the streams runtime `runtime` owns: `runtime`,
/// `runtime + WORKERS`, ... up to [`STREAMS`].
async fn connect_share(addr: SocketAddr, runtime: usize) -> Vec<compio::net::TcpStream> {
    let mut streams = Vec::new();
    for _ in (runtime..STREAMS).step_by(WORKERS) {
        let stream = compio::net::TcpStream::connect(addr)
            .await
            .expect("compio connect");
        stream.set_nodelay(true).expect("compio nodelay");
        streams.push(stream);
    }
    streams
}

/// Runtime `runtime` (not 0): serves its share of every multi-stream
/// command until runtime 0 closes the channel.
fn worker(
    runtime: usize,
    addr: SocketAddr,
    cmds: async_channel::Receiver<IoCmd>,
    shares: async_channel::Sender<u64>,
) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(format!("bench-io-compio-{runtime}"))
        .spawn(move || {
            let rt = compio::runtime::Runtime::new().expect("build compio runtime");
            rt.block_on(async move {
                let mut streams = connect_share(addr, runtime).await;
                while let Ok(cmd) = cmds.recv().await {
                    let jobs = stream_jobs(cmd).expect("only multi-stream commands are handed on");
                    let share =
                        serve_share(&CompioSpawner, &mut streams, jobs, runtime, WORKERS).await;
                    if shares.send(share).await.is_err() {
                        break;
                    }
                }
            });
        })
        .expect("spawn compio thread")
}

/// Runtime 0: the driver. Replies to every command; on shutdown drops its
/// streams and file and closes the others' channels, then replies once
/// more (as `serve_loop` does).
async fn driver(s: Setup, peers: Vec<OtherRuntime>) {
    let file = compio::fs::File::open(&s.path).await.expect("compio open");
    let mut streams = connect_share(s.addr, 0).await;
    while let Ok(cmd) = s.cmds.recv().await {
        if cmd == IoCmd::Shutdown {
            break;
        }
        let out = match stream_jobs(cmd) {
            Some(jobs) => {
                for peer in &peers {
                    peer.cmds.send(cmd).await.expect("compio runtime gone");
                }
                let mut sum = serve_share(&CompioSpawner, &mut streams, jobs, 0, WORKERS).await;
                for peer in &peers {
                    let share = peer.shares.recv().await.expect("compio runtime gone");
                    sum = sum.wrapping_add(share);
                }
                sum
            }
            None => serve(&CompioSpawner, &file, &mut streams, cmd).await,
        };
        if s.replies.send(out).is_err() {
            break;
        }
    }
    drop(streams);
    drop(file);
    drop(peers);
    let _ = s.replies.send(0);
}

/// compio with [`WORKERS`] runtimes, one thread each (see the module docs).
pub fn compio_per_core() -> IoHarness {
    IoHarness::build("compio x2", |s| {
        let mut peers = Vec::new();
        let mut threads = Vec::new();
        for runtime in 1..WORKERS {
            let (cmd_tx, cmd_rx) = async_channel::bounded(1);
            let (share_tx, share_rx) = async_channel::bounded(1);
            threads.push(worker(runtime, s.addr, cmd_rx, share_tx));
            peers.push(OtherRuntime {
                cmds: cmd_tx,
                shares: share_rx,
            });
        }
        threads.push(
            std::thread::Builder::new()
                .name("bench-io-compio-0".into())
                .spawn(move || {
                    let rt = compio::runtime::Runtime::new().expect("build compio runtime");
                    rt.block_on(driver(s, peers));
                })
                .expect("spawn compio thread"),
        );
        Box::new(move || {
            for thread in threads {
                thread.join().expect("compio thread");
            }
        })
    })
}
