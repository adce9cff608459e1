//! Long-lived I/O harnesses, one per peer, and the table of I/O rows.
//!
//! Each harness owns its fixture file and its echo peer (`echo_peer.rs`),
//! then builds the runtime under test, whose driver task opens the file
//! and connects [`STREAMS`] streams once. The bench thread sends an
//! [`IoCmd`] over an `async_channel` and blocks on a `std::sync::mpsc`
//! reply, as in the runtime rows.

use crate::echo_peer::EchoPeer;
use crate::harness::WORKERS;
use crate::io_fixture::Fixture;
use crate::io_impls::{CompioSpawner, TokioFile};
use crate::io_workloads::{self as w, serve_loop, IoCmd, STREAMS};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Duration;

/// How long the bench thread waits for a reply before declaring a hang.
const REPLY_DEADLINE: Duration = Duration::from_secs(120);

/// Something the bench thread can send an I/O command to and block on.
pub trait IoBench {
    /// Sends `cmd` and blocks until the reply arrives.
    fn run(&mut self, cmd: IoCmd) -> u64;
}

/// A runtime under test with its driver, plus what it talks to.
pub struct IoHarness {
    name: &'static str,
    cmds: async_channel::Sender<IoCmd>,
    replies: std_mpsc::Receiver<u64>,
    shutdown: Option<Box<dyn FnOnce() + Send>>,
    // Dropped after the runtime (fields drop in order, after `drop`).
    _echo: EchoPeer,
    _fixture: Fixture,
}

/// What a runtime's driver needs: where the file is and whom to connect to.
pub(crate) struct Setup {
    pub(crate) path: PathBuf,
    pub(crate) addr: SocketAddr,
    pub(crate) cmds: async_channel::Receiver<IoCmd>,
    pub(crate) replies: std_mpsc::Sender<u64>,
}

impl IoHarness {
    /// Starts the fixture and echo peer, then the runtime under test with
    /// `start`, which gives back how to stop it.
    pub(crate) fn build(
        name: &'static str,
        start: impl FnOnce(Setup) -> Box<dyn FnOnce() + Send>,
    ) -> IoHarness {
        let fixture = Fixture::new();
        let echo = EchoPeer::start();
        let (cmd_tx, cmd_rx) = async_channel::unbounded();
        let (rep_tx, rep_rx) = std_mpsc::channel();
        let shutdown = start(Setup {
            path: fixture.path().to_path_buf(),
            addr: echo.addr(),
            cmds: cmd_rx,
            replies: rep_tx,
        });
        IoHarness {
            name,
            cmds: cmd_tx,
            replies: rep_rx,
            shutdown: Some(shutdown),
            _echo: echo,
            _fixture: fixture,
        }
    }
}

impl IoBench for IoHarness {
    fn run(&mut self, cmd: IoCmd) -> u64 {
        self.cmds.try_send(cmd).expect("driver task gone");
        match self.replies.recv_timeout(REPLY_DEADLINE) {
            Ok(v) => v,
            Err(e) => panic!(
                "{}: no reply to {cmd:?} within {REPLY_DEADLINE:?} ({e})",
                self.name
            ),
        }
    }
}

impl Drop for IoHarness {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        self.run(IoCmd::Shutdown);
        if let Some(shutdown) = self.shutdown.take() {
            shutdown();
        }
    }
}

/// spargio-rt, 2 shards: driver pinned on shard 0, one stealable task per
/// stream in the multi-stream rows.
pub fn spargio_rt() -> IoHarness {
    IoHarness::build("spargio-rt", |s| {
        // `SPARGIO_BENCH_PARK_SPIN_US` overrides the shards' pre-park spin
        // (default 50 µs) to see what spinning costs the echo peer's core.
        let spin: u64 = std::env::var("SPARGIO_BENCH_PARK_SPIN_US")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(50);
        // `SPARGIO_BENCH_BUSY_YIELD_US` overrides how long a shard runs
        // tasks without a break before it yields the CPU.
        let busy_yield = std::env::var("SPARGIO_BENCH_BUSY_YIELD_US")
            .ok()
            .and_then(|v| v.parse().ok())
            .map(Duration::from_micros);
        let mut builder = spargio_rt::Runtime::builder();
        if let Some(after) = busy_yield {
            builder = builder.busy_yield(after);
        }
        let rt = builder
            .shards(WORKERS)
            .park_spin(Duration::from_micros(spin))
            .thread_name("bench-io-spargio-rt")
            .build()
            .expect("build spargio-rt runtime");
        let handle = rt.handle();
        let spawner = handle.clone();
        drop(handle.spawn_pinned(spargio_rt::ShardId(0), async move {
            let file = spargio_rt::fs::File::open(&s.path)
                .await
                .expect("spargio-rt open");
            let mut streams = Vec::with_capacity(STREAMS);
            for _ in 0..STREAMS {
                let stream = spargio_rt::net::TcpStream::connect(s.addr)
                    .await
                    .expect("spargio-rt connect");
                stream.set_nodelay(true).expect("spargio-rt nodelay");
                streams.push(stream);
            }
            serve_loop(spawner, file, streams, s.cmds, s.replies).await;
        }));
        Box::new(move || {
            // `SPARGIO_BENCH_STATS=1` prints the shards' counters (whole
            // harness life, warm-up included) for profiling.
            if std::env::var_os("SPARGIO_BENCH_STATS").is_some() {
                eprintln!("{:#?}", rt.handle().stats());
            }
            rt.shutdown_timeout(Duration::from_secs(5))
        })
    })
}

/// tokio multi-thread, 2 workers: driver and stream tasks are `spawn`s;
/// file reads are `spawn_blocking` + `pread`.
pub fn tokio_mt() -> IoHarness {
    IoHarness::build("tokio", |s| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKERS)
            .thread_name("bench-io-tokio")
            .enable_all()
            .build()
            .expect("build tokio runtime");
        let spawner = rt.handle().clone();
        drop(rt.spawn(async move {
            let file = TokioFile(Arc::new(std::fs::File::open(&s.path).expect("tokio open")));
            let mut streams = Vec::with_capacity(STREAMS);
            for _ in 0..STREAMS {
                let stream = tokio::net::TcpStream::connect(s.addr)
                    .await
                    .expect("tokio connect");
                stream.set_nodelay(true).expect("tokio nodelay");
                streams.push(stream);
            }
            serve_loop(spawner, file, streams, s.cmds, s.replies).await;
        }));
        Box::new(move || rt.shutdown_timeout(Duration::from_secs(5)))
    })
}

/// compio, one thread (its model): the driver runs in `block_on`, stream
/// tasks are `compio::runtime::spawn`s on the same thread.
pub fn compio() -> IoHarness {
    IoHarness::build("compio", |s| {
        let thread = std::thread::Builder::new()
            .name("bench-io-compio".into())
            .spawn(move || {
                let rt = compio::runtime::Runtime::new().expect("build compio runtime");
                rt.block_on(async move {
                    let file = compio::fs::File::open(&s.path).await.expect("compio open");
                    let mut streams = Vec::with_capacity(STREAMS);
                    for _ in 0..STREAMS {
                        let stream = compio::net::TcpStream::connect(s.addr)
                            .await
                            .expect("compio connect");
                        stream.set_nodelay(true).expect("compio nodelay");
                        streams.push(stream);
                    }
                    serve_loop(CompioSpawner, file, streams, s.cmds, s.replies).await;
                });
            })
            .expect("spawn compio thread");
        Box::new(move || thread.join().expect("compio thread"))
    })
}

/// spargio 0.5.13, 2 shards, io_uring backend: driver pinned on shard 0
/// (its streams' sessions are therefore on shard 0, its default
/// `ContextPreferred` policy), stream tasks `spawn_stealable`.
pub fn spargio_0_5_13() -> IoHarness {
    IoHarness::build("spargio 0.5.13", |s| {
        let rt = spargio::Runtime::builder()
            .backend(spargio::BackendKind::IoUring)
            .shards(WORKERS)
            .build()
            .expect("build spargio 0.5.13 runtime");
        let handle = rt.handle();
        let spawner = handle.clone();
        drop(
            handle
                .spawn_pinned(0, async move {
                    let file = spargio::fs::File::open(spawner.clone(), &s.path)
                        .await
                        .expect("spargio 0.5.13 open");
                    let mut streams = Vec::with_capacity(STREAMS);
                    for _ in 0..STREAMS {
                        let stream = spargio::net::TcpStream::connect(spawner.clone(), s.addr)
                            .await
                            .expect("spargio 0.5.13 connect");
                        streams.push(stream);
                    }
                    serve_loop(spawner, file, streams, s.cmds, s.replies).await;
                })
                .expect("spawn driver"),
        );
        Box::new(move || drop(rt))
    })
}

/// The peers an I/O row can be run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoPeer {
    /// Our runtime, 2 shards.
    SpargioRt,
    /// tokio multi-thread, 2 workers.
    Tokio,
    /// compio, one thread.
    Compio,
    /// compio, one runtime per core (8-stream rows only).
    CompioPerCore,
    /// spargio 0.5.13, 2 shards, its uring-native net and fs.
    Spargio,
    /// No runtime: one thread, one ring, one op at a time (`raw_io.rs`).
    RawUring,
}

impl IoPeer {
    /// The criterion function name / table label.
    pub fn name(self) -> &'static str {
        match self {
            IoPeer::SpargioRt => "spargio_rt",
            IoPeer::Tokio => "tokio_mt_2",
            IoPeer::Compio => "compio",
            IoPeer::CompioPerCore => "compio_x2",
            IoPeer::Spargio => "spargio_0_5_13",
            IoPeer::RawUring => "raw_io_uring_limit",
        }
    }

    /// Builds this peer's long-lived harness.
    pub fn harness(self) -> Box<dyn IoBench> {
        match self {
            IoPeer::SpargioRt => Box::new(spargio_rt()),
            IoPeer::Tokio => Box::new(tokio_mt()),
            IoPeer::Compio => Box::new(compio()),
            IoPeer::CompioPerCore => Box::new(crate::io_compio_cores::compio_per_core()),
            IoPeer::Spargio => Box::new(spargio_0_5_13()),
            IoPeer::RawUring => Box::new(crate::raw_io::RawIoHarness::new()),
        }
    }
}

/// The I/O rows, in the order they are run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoRow {
    /// 256 sequential 4 KiB positional reads, one buffer.
    FsReadRtt,
    /// 4096 positional 4 KiB reads in joined batches of 32.
    FsReadQd32,
    /// 512 × 256 B echo round trips on one stream.
    EchoRtt,
    /// 2048 × 4 KiB frames on one stream, windows of 32.
    StreamThroughput,
    /// 8 streams, stream 0 hot (2048 frames), the others 128.
    Imbalanced,
    /// 8 streams, 64 steps, the hot stream rotates.
    HotspotRotation,
    /// 8 streams × 1024 frames with a rotating CPU stage.
    Pipeline,
    /// 1024 × (4 KiB file read, 256 B request/reply).
    Microservice,
}

impl IoRow {
    /// Every row.
    pub const ALL: [IoRow; 8] = [
        IoRow::FsReadRtt,
        IoRow::FsReadQd32,
        IoRow::EchoRtt,
        IoRow::StreamThroughput,
        IoRow::Imbalanced,
        IoRow::HotspotRotation,
        IoRow::Pipeline,
        IoRow::Microservice,
    ];

    /// The criterion group name.
    pub fn name(self) -> &'static str {
        match self {
            IoRow::FsReadRtt => "fs_read_rtt_4k",
            IoRow::FsReadQd32 => "fs_read_throughput_4k_qd32",
            IoRow::EchoRtt => "net_echo_rtt_256b",
            IoRow::StreamThroughput => "net_stream_throughput_4k_window32",
            IoRow::Imbalanced => "net_stream_imbalanced_4k_hot1_light7",
            IoRow::HotspotRotation => "net_stream_hotspot_rotation_4k",
            IoRow::Pipeline => "net_pipeline_hotspot_rotation_4k_window32",
            IoRow::Microservice => "fs_net_microservice_4k_read_then_256b_reply_qd1",
        }
    }

    /// The peers this row compares, ours first. The raw limit has the
    /// single-stream rows only (one ring, one op at a time); compio with
    /// one runtime per core has the 8-stream rows only (one stream is one
    /// thread's work, so on the others it is the one-thread compio).
    pub fn peers(self) -> &'static [IoPeer] {
        const SINGLE: &[IoPeer] = &[
            IoPeer::SpargioRt,
            IoPeer::Tokio,
            IoPeer::Compio,
            IoPeer::Spargio,
            IoPeer::RawUring,
        ];
        const MULTI: &[IoPeer] = &[
            IoPeer::SpargioRt,
            IoPeer::Tokio,
            IoPeer::Compio,
            IoPeer::CompioPerCore,
            IoPeer::Spargio,
        ];
        match self {
            IoRow::Imbalanced | IoRow::HotspotRotation | IoRow::Pipeline => MULTI,
            _ => SINGLE,
        }
    }

    /// The command of one timed iteration.
    pub fn cmd(self) -> IoCmd {
        match self {
            IoRow::FsReadRtt => IoCmd::FsReadRtt(w::FS_RTT_READS),
            IoRow::FsReadQd32 => IoCmd::FsReadQd {
                reads: w::FS_QD_READS,
                qd: w::FS_QD,
            },
            IoRow::EchoRtt => IoCmd::EchoRtt(w::ECHO_ROUNDS),
            IoRow::StreamThroughput => IoCmd::Windowed(w::THROUGHPUT_FRAMES),
            IoRow::Imbalanced => IoCmd::Imbalanced {
                hot: w::IMBALANCED_HOT,
                light: w::IMBALANCED_LIGHT,
            },
            IoRow::HotspotRotation => IoCmd::Rotation(w::ROTATION_STEPS),
            IoRow::Pipeline => IoCmd::Pipeline(w::PIPELINE_FRAMES),
            IoRow::Microservice => IoCmd::Microservice(w::SERVICE_ROUNDS),
        }
    }
}

/// A warmed-up long-lived harness for `peer` running `row`.
pub struct IoRunner {
    row: IoRow,
    harness: Box<dyn IoBench>,
}

impl IoRunner {
    /// Builds and warms up the harness.
    pub fn new(peer: IoPeer, row: IoRow) -> Self {
        let mut harness = peer.harness();
        harness.run(row.cmd().warmup());
        Self { row, harness }
    }

    /// One timed iteration.
    pub fn iter(&mut self) -> u64 {
        self.harness.run(self.row.cmd())
    }
}
