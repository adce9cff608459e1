//! Long-lived harnesses, one per peer, and the table of bench rows.

use crate::workloads::{self, drive, Cmd, Wire, Workload};
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

/// Worker threads / shards of every runtime peer.
pub const WORKERS: usize = 2;

/// How long the bench thread waits for a reply before declaring the
/// runtime under test hung (a panic with the command, not a silent hang).
const REPLY_DEADLINE: Duration = Duration::from_secs(120);

/// Something the bench thread can send a command to and block on.
pub trait Bench {
    /// Sends `cmd` and blocks until the reply arrives.
    fn run(&mut self, cmd: Cmd) -> u64;
}

type CmdChannel = (async_channel::Sender<Cmd>, async_channel::Receiver<Cmd>);
type ReplyChannel = (std_mpsc::Sender<u64>, std_mpsc::Receiver<u64>);

/// A runtime with a driver task (on shard/worker 0 where the runtime can
/// pin) and a ping-pong responder (on shard 1).
pub struct Harness {
    name: &'static str,
    cmds: async_channel::Sender<Cmd>,
    replies: std_mpsc::Receiver<u64>,
    shutdown: Option<Box<dyn FnOnce() + Send>>,
}

impl Harness {
    fn new(
        name: &'static str,
        cmds: async_channel::Sender<Cmd>,
        replies: std_mpsc::Receiver<u64>,
        shutdown: impl FnOnce() + Send + 'static,
    ) -> Self {
        Self {
            name,
            cmds,
            replies,
            shutdown: Some(Box::new(shutdown)),
        }
    }

    fn channels() -> (CmdChannel, ReplyChannel) {
        (async_channel::unbounded(), std_mpsc::channel())
    }
}

impl Bench for Harness {
    fn run(&mut self, cmd: Cmd) -> u64 {
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

impl Drop for Harness {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        self.run(Cmd::Shutdown);
        if let Some(shutdown) = self.shutdown.take() {
            shutdown();
        }
    }
}

/// spargio-rt: driver pinned on shard 0, responder pinned on shard 1,
/// workload tasks spawned stealable.
pub fn spargio_rt() -> Harness {
    spargio_rt_with_responder_on(spargio_rt::ShardId(1), "spargio-rt")
}

/// spargio-rt with the driver and the responder both pinned on shard 0:
/// the ping-pong rows become a same-thread exchange, the shape tokio's
/// scheduler picks for two spawned tasks that keep waking each other
/// ([`tokio_mt`]).
pub fn spargio_rt_same_shard() -> Harness {
    spargio_rt_with_responder_on(spargio_rt::ShardId(0), "spargio-rt (same shard)")
}

fn spargio_rt_with_responder_on(
    responder_shard: spargio_rt::ShardId,
    name: &'static str,
) -> Harness {
    use spargio_rt::{Runtime, ShardId};
    let rt = Runtime::builder()
        .shards(WORKERS)
        .thread_name("bench-spargio-rt")
        .build()
        .expect("build spargio-rt runtime");
    let handle = rt.handle();
    let ((cmd_tx, cmd_rx), (rep_tx, rep_rx)) = Harness::channels();
    let (wire, responder) = Wire::new();
    let responder = handle.spawn_pinned(responder_shard, responder.run());
    drop(handle.spawn_pinned(
        ShardId(0),
        drive(handle.clone(), cmd_rx, rep_tx, wire, responder),
    ));
    Harness::new(name, cmd_tx, rep_rx, move || {
        rt.shutdown_timeout(Duration::from_secs(5))
    })
}

/// tokio's multi-thread runtime with [`WORKERS`] workers, `enable_all`.
fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .thread_name("bench-tokio")
        .enable_all()
        .build()
        .expect("build tokio runtime")
}

/// tokio multi-thread, 2 workers, `enable_all`; driver and responder are
/// plain `spawn`s (tokio cannot pin), talking over tokio's unbounded mpsc.
pub fn tokio_mt() -> Harness {
    let rt = tokio_runtime();
    let handle = rt.handle().clone();
    let ((cmd_tx, cmd_rx), (rep_tx, rep_rx)) = Harness::channels();
    let (wire, responder) = Wire::new();
    let responder = rt.spawn(responder.run());
    drop(rt.spawn(drive(handle, cmd_rx, rep_tx, wire, responder)));
    Harness::new("tokio", cmd_tx, rep_rx, move || {
        rt.shutdown_timeout(Duration::from_secs(5))
    })
}

/// tokio multi-thread, 2 workers, `enable_all`, the way spargio 0.5.13's
/// own `ping_pong` bench ran tokio: the driver is the future of a
/// `block_on` on a thread of its own (not a worker), the responder a
/// spawned task, so every round trip crosses threads as the shape's
/// "shard 0 ↔ shard 1" says. With both spawned ([`tokio_mt`]) tokio's
/// scheduler runs the pair on one worker, a same-thread exchange.
pub fn tokio_block_on() -> Harness {
    let rt = tokio_runtime();
    let handle = rt.handle().clone();
    let ((cmd_tx, cmd_rx), (rep_tx, rep_rx)) = Harness::channels();
    let (wire, responder) = Wire::new();
    let responder = rt.spawn(responder.run());
    let driver = std::thread::Builder::new()
        .name("bench-tokio-driver".to_owned())
        .spawn(move || {
            rt.block_on(drive(handle, cmd_rx, rep_tx, wire, responder));
            rt.shutdown_timeout(Duration::from_secs(5));
        })
        .expect("spawn the tokio driver thread");
    Harness::new("tokio (block_on driver)", cmd_tx, rep_rx, move || {
        driver.join().expect("tokio driver thread panicked")
    })
}

/// spargio 0.5.13, 2 shards: driver pinned on shard 0, responder pinned on
/// shard 1, the same tokio-mpsc wire as every peer.
pub fn spargio_0_5_13() -> Harness {
    let rt = spargio::Runtime::builder()
        .shards(WORKERS)
        .build()
        .expect("build spargio 0.5.13 runtime");
    let handle = rt.handle();
    let ((cmd_tx, cmd_rx), (rep_tx, rep_rx)) = Harness::channels();
    let (wire, responder) = Wire::new();
    let responder = handle
        .spawn_pinned(1, responder.run())
        .expect("spawn responder");
    drop(
        handle
            .spawn_pinned(0, drive(handle.clone(), cmd_rx, rep_tx, wire, responder))
            .expect("spawn driver"),
    );
    Harness::new("spargio 0.5.13", cmd_tx, rep_rx, move || drop(rt))
}

/// The peers a row can be run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    /// Our runtime.
    SpargioRt,
    /// tokio multi-thread with [`WORKERS`] workers.
    Tokio,
    /// tokio with the driver in `block_on` on its own thread, as spargio
    /// 0.5.13's `ping_pong` bench (ping-pong and cold-start rows only).
    TokioBlockOn,
    /// Our runtime with driver and responder on one shard (ping-pong rows
    /// only): the same-thread exchange tokio's scheduler picks.
    SpargioRtSameShard,
    /// spargio 0.5.13 with [`WORKERS`] shards, same channels as ours.
    Spargio,
    /// spargio 0.5.13 using its own raw `msg_ring` messages, as its own
    /// `ping_pong` bench did (ping-pong rows only).
    SpargioMsgRing,
    /// Two threads, two rings, `IORING_OP_MSG_RING`, no runtime; blocking.
    RawUring,
    /// The same, with both threads busy-polling their rings.
    RawUringSpin,
}

impl Peer {
    /// The criterion function name / table label.
    pub fn name(self) -> &'static str {
        match self {
            Peer::SpargioRt => "spargio_rt",
            Peer::Tokio => "tokio_mt_2",
            Peer::TokioBlockOn => "tokio_mt_2_block_on",
            Peer::SpargioRtSameShard => "spargio_rt_same_shard",
            Peer::Spargio => "spargio_0_5_13",
            Peer::SpargioMsgRing => "spargio_0_5_13_msg_ring",
            Peer::RawUring => "raw_io_uring_limit",
            Peer::RawUringSpin => "raw_io_uring_spin_limit",
        }
    }

    /// Builds this peer's long-lived harness for `row`.
    pub fn harness(self, row: Row) -> Box<dyn Bench> {
        match self {
            Peer::SpargioRt => Box::new(spargio_rt()),
            Peer::Tokio => Box::new(tokio_mt()),
            Peer::TokioBlockOn => Box::new(tokio_block_on()),
            Peer::SpargioRtSameShard => Box::new(spargio_rt_same_shard()),
            Peer::Spargio => Box::new(spargio_0_5_13()),
            Peer::SpargioMsgRing => {
                // As spargio 0.5.13's own bench: 4096 entries for one-way.
                let entries = if row == Row::OneWay { 4096 } else { 256 };
                Box::new(crate::spargio_msg_ring::MsgRingHarness::new(entries))
            }
            Peer::RawUring => Box::new(crate::raw_uring::RawHarness::new()),
            Peer::RawUringSpin => Box::new(crate::raw_uring::RawHarness::with_wait(
                crate::raw_uring::Wait::Spin,
            )),
        }
    }

    /// Whether this peer is a runtime (has idle CPU worth measuring).
    pub fn is_runtime(self) -> bool {
        matches!(
            self,
            Peer::SpargioRt
                | Peer::Tokio
                | Peer::Spargio
                | Peer::TokioBlockOn
                | Peer::SpargioRtSameShard
        )
    }
}

/// The bench rows, in the order they are run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Row {
    /// Spawn 1024 trivial tasks from inside the runtime, join all.
    SpawnJoinMany,
    /// A task spawns a task ... 1024 deep.
    ChainedSpawn,
    /// 256 round trips shard 0 ↔ shard 1.
    PingPong,
    /// 2048 one-way sends, then a flush answered with the sum.
    OneWay,
    /// Build a runtime + harness, 64 round trips, shut down.
    ColdStart,
    /// Fan-out/fan-in, balanced.
    FanoutBalanced,
    /// Fan-out/fan-in, skewed.
    FanoutSkewed,
    /// Timer create/cancel storm.
    TimerStorm,
}

impl Row {
    /// Every row.
    pub const ALL: [Row; 8] = [
        Row::SpawnJoinMany,
        Row::ChainedSpawn,
        Row::PingPong,
        Row::OneWay,
        Row::ColdStart,
        Row::FanoutBalanced,
        Row::FanoutSkewed,
        Row::TimerStorm,
    ];

    /// The criterion group name.
    pub fn name(self) -> &'static str {
        match self {
            Row::SpawnJoinMany => "spawn_join_many",
            Row::ChainedSpawn => "chained_spawn",
            Row::PingPong => "steady_ping_pong_rtt",
            Row::OneWay => "steady_one_way_send_drain",
            Row::ColdStart => "cold_start_ping_pong",
            Row::FanoutBalanced => "fanout_fanin_balanced",
            Row::FanoutSkewed => "fanout_fanin_skewed",
            Row::TimerStorm => "timer_cancel_reschedule_storm",
        }
    }

    /// The peers this row compares, ours first.
    pub fn peers(self) -> &'static [Peer] {
        match self {
            Row::PingPong | Row::OneWay => &[
                Peer::SpargioRt,
                Peer::Tokio,
                Peer::TokioBlockOn,
                Peer::SpargioRtSameShard,
                Peer::Spargio,
                Peer::SpargioMsgRing,
                Peer::RawUring,
                Peer::RawUringSpin,
            ],
            Row::ColdStart => &[
                Peer::SpargioRt,
                Peer::Tokio,
                Peer::TokioBlockOn,
                Peer::Spargio,
                Peer::SpargioMsgRing,
            ],
            _ => &[Peer::SpargioRt, Peer::Tokio, Peer::Spargio],
        }
    }

    /// The command of one timed iteration (for [`Row::ColdStart`], the
    /// command run on the freshly built harness).
    pub fn cmd(self) -> Cmd {
        match self {
            Row::SpawnJoinMany => Cmd::SpawnJoinMany(workloads::SPAWN_MANY),
            Row::ChainedSpawn => Cmd::ChainedSpawn(workloads::CHAIN_DEPTH),
            Row::PingPong => Cmd::PingPong(workloads::RTT_ROUNDS),
            Row::OneWay => Cmd::OneWay(workloads::ONE_WAY_ROUNDS),
            Row::ColdStart => Cmd::PingPong(workloads::COLD_ROUNDS),
            Row::FanoutBalanced => Cmd::Fanout(Workload::balanced()),
            Row::FanoutSkewed => Cmd::Fanout(Workload::skewed()),
            Row::TimerStorm => Cmd::TimerStorm {
                rounds: workloads::TIMER_ROUNDS,
                batch: workloads::TIMER_BATCH,
            },
        }
    }

    /// A small command to warm a fresh harness up with.
    pub fn warmup_cmd(self) -> Cmd {
        match self.cmd() {
            Cmd::SpawnJoinMany(n) => Cmd::SpawnJoinMany(n / 8),
            Cmd::ChainedSpawn(n) => Cmd::ChainedSpawn(n / 8),
            Cmd::PingPong(n) => Cmd::PingPong(n / 8),
            Cmd::OneWay(n) => Cmd::OneWay(n / 8),
            Cmd::Fanout(w) => Cmd::Fanout(Workload { requests: 8, ..w }),
            Cmd::TimerStorm { batch, .. } => Cmd::TimerStorm { rounds: 8, batch },
            Cmd::Shutdown => Cmd::Shutdown,
        }
    }

    /// Whether each iteration builds and drops its own harness.
    pub fn is_cold(self) -> bool {
        self == Row::ColdStart
    }
}

/// A harness for `peer` that runs `row`: a long-lived one is built once;
/// for the cold-start row, [`Runner::iter`] builds and drops one per call.
pub struct Runner {
    peer: Peer,
    row: Row,
    warm: Option<Box<dyn Bench>>,
}

impl Runner {
    /// Builds (and warms up) the harness.
    pub fn new(peer: Peer, row: Row) -> Self {
        let warm = (!row.is_cold()).then(|| {
            let mut h = peer.harness(row);
            h.run(row.warmup_cmd());
            h
        });
        Self { peer, row, warm }
    }

    /// One timed iteration.
    pub fn iter(&mut self) -> u64 {
        match &mut self.warm {
            Some(h) => h.run(self.row.cmd()),
            None => {
                let mut h = self.peer.harness(self.row);
                h.run(self.row.cmd())
            }
        }
    }
}
