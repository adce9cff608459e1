//! The benchmark shapes (see `/work/shared/BENCHMARK_SHAPES.md`), written
//! once and run on every runtime through [`Exec`].

use crate::exec::Exec;
use futures::future::{self, Either};
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

/// Round trips per `steady_ping_pong_rtt` iteration.
pub const RTT_ROUNDS: usize = 256;
/// One-way sends per `steady_one_way_send_drain` iteration.
pub const ONE_WAY_ROUNDS: usize = 2048;
/// Round trips per `cold_start_ping_pong` iteration.
pub const COLD_ROUNDS: usize = 64;
/// Tasks per `spawn_join_many` iteration.
pub const SPAWN_MANY: usize = 1024;
/// Depth of the `chained_spawn` chain.
pub const CHAIN_DEPTH: usize = 1024;
/// Rounds of the timer storm.
pub const TIMER_ROUNDS: usize = 1024;
/// Sleeps created and dropped per timer-storm round.
pub const TIMER_BATCH: usize = 8;
/// The sleep that loses the race in the timer storm.
pub const TIMER_SLEEP: Duration = Duration::from_micros(200);
/// The sleep that ends each timer-storm round.
pub const TIMER_TICK: Duration = Duration::from_micros(1);

/// One command the bench thread sends to a harness's driver task.
#[derive(Clone, Copy, Debug)]
pub enum Cmd {
    /// Spawn this many trivial tasks and join them all.
    SpawnJoinMany(usize),
    /// A task spawns a task ... this deep; the last signals done.
    ChainedSpawn(usize),
    /// Round trips between the driver (shard 0) and the responder (shard 1).
    PingPong(usize),
    /// One-way sends to the responder, then a flush answered with the sum.
    OneWay(usize),
    /// Fan-out/fan-in of stealable CPU loops.
    Fanout(Workload),
    /// Timer create/cancel storm.
    TimerStorm {
        /// Rounds.
        rounds: usize,
        /// Sleeps raced and dropped per round.
        batch: usize,
    },
    /// Stop the responder and the driver.
    Shutdown,
}

/// The fan-out/fan-in workload of spargio 0.5.13's `fanout_fanin` bench.
#[derive(Clone, Copy, Debug)]
pub struct Workload {
    /// Requests handled in sequence.
    pub requests: usize,
    /// Stealable branches per request.
    pub fanout: usize,
    /// Iterations of a light branch.
    pub light_iters: u32,
    /// Iterations of the heavy branch (`req % fanout`) when skewed.
    pub heavy_iters: u32,
    /// Whether one branch per request is heavy.
    pub skew: bool,
}

impl Workload {
    /// 64 requests × 16 branches × 2000 iterations.
    pub const fn balanced() -> Self {
        Self {
            requests: 64,
            fanout: 16,
            light_iters: 2_000,
            heavy_iters: 2_000,
            skew: false,
        }
    }

    /// 64 requests × 16 branches × 500 iterations, except branch
    /// `req % 16`, which runs 20000.
    pub const fn skewed() -> Self {
        Self {
            requests: 64,
            fanout: 16,
            light_iters: 500,
            heavy_iters: 20_000,
            skew: true,
        }
    }

    fn branch_iters(self, req: usize, branch: usize) -> u32 {
        if self.skew && branch == req % self.fanout {
            self.heavy_iters
        } else {
            self.light_iters
        }
    }
}

/// The CPU loop of a fan-out branch (an LCG with an xorshift step).
pub fn synthetic_work(seed: u64, iterations: u32) -> u64 {
    let mut x = seed ^ 0x9E37_79B9_7F4A_7C15;
    for i in 0..iterations {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407 ^ u64::from(i));
        x ^= x >> 29;
    }
    x
}

/// A message from the driver to the ping-pong responder.
#[derive(Clone, Copy, Debug)]
pub enum WireMsg {
    /// Answer with the value.
    Ping(u32),
    /// Add the value to the running sum.
    OneWay(u32),
    /// Answer with the running sum and reset it.
    Flush,
    /// Exit.
    Shutdown,
}

/// The driver's end of the driver ↔ responder wire: tokio's unbounded
/// mpsc for every peer. `tokio::sync` needs no tokio runtime, so the
/// spargio peers use the same channel as tokio, and a row compares how
/// each runtime wakes a task across threads, not two channel crates
/// (over `async-channel`, whose `event-listener` wake path is heavier,
/// spargio-rt's ping-pong took about 270 µs instead of about 210).
pub struct Wire {
    tx: tokio::sync::mpsc::UnboundedSender<WireMsg>,
    ack: tokio::sync::mpsc::UnboundedReceiver<u64>,
}

/// The responder's end of a [`Wire`].
pub struct ResponderEnd {
    rx: tokio::sync::mpsc::UnboundedReceiver<WireMsg>,
    ack: tokio::sync::mpsc::UnboundedSender<u64>,
}

impl Wire {
    /// A wire and its responder's end.
    pub fn new() -> (Wire, ResponderEnd) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let (ack_tx, ack) = tokio::sync::mpsc::unbounded_channel();
        (Wire { tx, ack }, ResponderEnd { rx, ack: ack_tx })
    }

    fn send(&self, msg: WireMsg) {
        self.tx.send(msg).expect("responder gone");
    }

    async fn ack(&mut self) -> u64 {
        self.ack.recv().await.expect("responder gone")
    }
}

/// Sums one-way values; answers pings and flushes. `Some(reply)` to send.
fn respond(acc: &mut u64, msg: WireMsg) -> Option<Option<u64>> {
    match msg {
        WireMsg::Ping(v) => Some(Some(u64::from(v))),
        WireMsg::OneWay(v) => {
            *acc = acc.wrapping_add(u64::from(v));
            Some(None)
        }
        WireMsg::Flush => Some(Some(std::mem::take(acc))),
        WireMsg::Shutdown => None,
    }
}

impl ResponderEnd {
    /// The responder task's body.
    pub async fn run(mut self) {
        let mut acc = 0u64;
        while let Some(msg) = self.rx.recv().await {
            match respond(&mut acc, msg) {
                None => break,
                Some(None) => {}
                Some(Some(v)) => {
                    if self.ack.send(v).is_err() {
                        break;
                    }
                }
            }
        }
    }
}

/// The driver task: serves commands until [`Cmd::Shutdown`], replying to
/// each on `replies`. On shutdown it stops the responder and waits for it
/// before its last reply, so the runtime is idle when it is shut down.
pub async fn drive<E: Exec>(
    exec: E,
    cmds: async_channel::Receiver<Cmd>,
    replies: std_mpsc::Sender<u64>,
    mut wire: Wire,
    responder: E::Join<()>,
) {
    while let Ok(cmd) = cmds.recv().await {
        let out = match cmd {
            Cmd::SpawnJoinMany(n) => spawn_join_many(&exec, n).await,
            Cmd::ChainedSpawn(depth) => chained_spawn(&exec, depth).await,
            Cmd::PingPong(rounds) => ping_pong(&mut wire, rounds).await,
            Cmd::OneWay(rounds) => one_way(&mut wire, rounds).await,
            Cmd::Fanout(w) => fanout(&exec, w).await,
            Cmd::TimerStorm { rounds, batch } => timer_storm::<E>(rounds, batch).await,
            Cmd::Shutdown => break,
        };
        if replies.send(out).is_err() {
            break;
        }
    }
    wire.send(WireMsg::Shutdown);
    responder.await.expect("responder task");
    let _ = replies.send(0);
}

/// Spawns `n` trivial tasks and joins them all.
pub async fn spawn_join_many<E: Exec>(exec: &E, n: usize) -> u64 {
    let joins: Vec<_> = (0..n as u64)
        .map(|i| exec.spawn(async move { i }))
        .collect();
    future::join_all(joins)
        .await
        .into_iter()
        .map(|r| r.expect("join trivial task"))
        .fold(0u64, u64::wrapping_add)
}

fn chain_link<E: Exec>(exec: E, left: usize, done: futures::channel::oneshot::Sender<u64>) {
    if left == 0 {
        let _ = done.send(1);
        return;
    }
    let next = exec.clone();
    // Dropping the join handle detaches the task.
    drop(exec.spawn(async move { chain_link(next, left - 1, done) }));
}

/// A task spawns a task ... `depth` deep; the last one signals done.
pub async fn chained_spawn<E: Exec>(exec: &E, depth: usize) -> u64 {
    let (done, rx) = futures::channel::oneshot::channel();
    chain_link(exec.clone(), depth, done);
    rx.await.expect("chain finished") + depth as u64
}

async fn ping_pong(wire: &mut Wire, rounds: usize) -> u64 {
    let mut checksum = 0u64;
    for i in 0..rounds as u32 {
        wire.send(WireMsg::Ping(i));
        checksum = checksum.wrapping_add(wire.ack().await);
    }
    checksum
}

async fn one_way(wire: &mut Wire, rounds: usize) -> u64 {
    for i in 0..rounds as u32 {
        wire.send(WireMsg::OneWay(i));
    }
    wire.send(WireMsg::Flush);
    wire.ack().await
}

/// 64 requests in sequence; each spawns 16 stealable CPU loops and joins them.
pub async fn fanout<E: Exec>(exec: &E, w: Workload) -> u64 {
    let mut checksum = 0u64;
    let mut joins = Vec::with_capacity(w.fanout);
    for req in 0..w.requests {
        for branch in 0..w.fanout {
            let iters = w.branch_iters(req, branch);
            let seed = ((req as u64) << 32) ^ branch as u64;
            joins.push(exec.spawn(async move { synthetic_work(seed, iters) }));
        }
        for join in joins.drain(..) {
            checksum = checksum.wrapping_add(join.await.expect("join branch"));
        }
    }
    checksum
}

/// `rounds` × (`batch` × (create a 200 µs sleep, race it against a ready
/// future, drop it), then a 1 µs sleep).
pub async fn timer_storm<E: Exec>(rounds: usize, batch: usize) -> u64 {
    let mut checksum = 0u64;
    for round in 0..rounds {
        for lane in 0..batch {
            let sleep = std::pin::pin!(E::sleep(TIMER_SLEEP));
            let ready = future::ready(());
            checksum = checksum.wrapping_add(match future::select(sleep, ready).await {
                Either::Left(_) => 1,
                Either::Right(_) => 3,
            });
            checksum = checksum.wrapping_add((lane ^ round) as u64);
        }
        E::sleep(TIMER_TICK).await;
    }
    checksum
}
