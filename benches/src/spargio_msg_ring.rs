//! spargio 0.5.13 driven through its own raw `msg_ring` messages
//! (`RemoteShard::send_raw` / `ShardCtx::next_event`), the way its own
//! `ping_pong` bench measured its published figures. Only the ping-pong and
//! one-way commands exist here.

use crate::harness::Bench;
use crate::workloads::Cmd;
use spargio::{Event, Runtime, ShardCtx};
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

const PING: u16 = 1;
const ACK: u16 = 2;
const ONE_WAY: u16 = 3;
const FLUSH: u16 = 4;
const FLUSH_ACK: u16 = 5;
const SHUTDOWN: u16 = 9;

/// Waits for the next ring message with tag `want`, dropping any other.
async fn next_tagged(ctx: &ShardCtx, want: u16) -> u32 {
    loop {
        let Event::RingMsg { tag, val, .. } = ctx.next_event().await;
        if tag == want {
            return val;
        }
    }
}

async fn responder(ctx: ShardCtx) {
    let peer = ctx.remote(0).expect("shard 0");
    let mut acc = 0u32;
    loop {
        let Event::RingMsg { tag, val, .. } = ctx.next_event().await;
        match tag {
            PING => peer
                .send_raw(ACK, val)
                .expect("send ack")
                .await
                .expect("ack delivered"),
            ONE_WAY => acc = acc.wrapping_add(val),
            FLUSH => {
                peer.send_raw(FLUSH_ACK, std::mem::take(&mut acc))
                    .expect("send flush ack")
                    .await
                    .expect("flush ack delivered");
            }
            SHUTDOWN => break,
            _ => {}
        }
    }
}

async fn driver(ctx: ShardCtx, cmds: async_channel::Receiver<Cmd>, replies: std_mpsc::Sender<u64>) {
    let peer = ctx.remote(1).expect("shard 1");
    while let Ok(cmd) = cmds.recv().await {
        let out = match cmd {
            Cmd::PingPong(rounds) => {
                let mut checksum = 0u64;
                for i in 0..rounds as u32 {
                    peer.send_raw(PING, i)
                        .expect("send ping")
                        .await
                        .expect("ping delivered");
                    checksum += u64::from(next_tagged(&ctx, ACK).await);
                }
                checksum
            }
            Cmd::OneWay(rounds) => {
                peer.send_many_raw_nowait((0..rounds as u32).map(|i| (ONE_WAY, i)))
                    .expect("send one-way batch");
                peer.flush().expect("flush").await.expect("flush delivered");
                peer.send_raw(FLUSH, 0)
                    .expect("send flush")
                    .await
                    .expect("flush msg delivered");
                u64::from(next_tagged(&ctx, FLUSH_ACK).await)
            }
            Cmd::Shutdown => break,
            other => panic!("spargio msg_ring harness has no {other:?}"),
        };
        if replies.send(out).is_err() {
            break;
        }
    }
    if let Ok(ticket) = peer.send_raw(SHUTDOWN, 0) {
        let _ = ticket.await;
    }
    let _ = replies.send(0);
}

/// spargio 0.5.13, 2 shards: driver on shard 0, responder on shard 1,
/// talking through raw ring messages.
pub struct MsgRingHarness {
    runtime: Option<Runtime>,
    responder: Option<spargio::JoinHandle<()>>,
    cmds: async_channel::Sender<Cmd>,
    replies: std_mpsc::Receiver<u64>,
}

impl MsgRingHarness {
    /// Builds the runtime with `ring_entries` (its own bench used 4096 for
    /// the one-way row and the default 256 otherwise).
    pub fn new(ring_entries: u32) -> Self {
        let runtime = Runtime::builder()
            .shards(crate::harness::WORKERS)
            .ring_entries(ring_entries)
            .build()
            .expect("build spargio 0.5.13 runtime");
        let handle = runtime.handle();
        let (cmd_tx, cmd_rx) = async_channel::unbounded();
        let (rep_tx, rep_rx) = std_mpsc::channel();
        let responder = handle
            .spawn_local_on(1, responder)
            .expect("spawn responder");
        drop(
            handle
                .spawn_local_on(0, move |ctx| driver(ctx, cmd_rx, rep_tx))
                .expect("spawn driver"),
        );
        Self {
            runtime: Some(runtime),
            responder: Some(responder),
            cmds: cmd_tx,
            replies: rep_rx,
        }
    }
}

impl Bench for MsgRingHarness {
    fn run(&mut self, cmd: Cmd) -> u64 {
        self.cmds.try_send(cmd).expect("driver gone");
        self.replies
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|e| panic!("spargio msg_ring: no reply to {cmd:?}: {e}"))
    }
}

impl Drop for MsgRingHarness {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        self.run(Cmd::Shutdown);
        if let Some(responder) = self.responder.take() {
            let _ = futures::executor::block_on(responder);
        }
        drop(self.runtime.take());
    }
}
