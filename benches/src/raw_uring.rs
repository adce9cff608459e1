//! The "limit" rows: no runtime, just two threads each owning an io_uring
//! ring and exchanging `IORING_OP_MSG_RING` data messages. In the blocking
//! variant each thread blocks in `submit_and_wait`; in the spinning variant
//! each thread submits and then busy-polls its completion queue (the floor
//! for a runtime that spins before it parks). The bench thread owns a third
//! ring and reaches thread A the same way, so the command hop is a ring
//! message too (the bench thread always blocks).

use crate::harness::Bench;
use crate::workloads::Cmd;
use io_uring::{opcode, squeue, types, IoUring};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::thread;

// CQE user_data tags.
const CMD_PING_PONG: u64 = 1;
const CMD_ONE_WAY: u64 = 2;
const CMD_SHUTDOWN: u64 = 3;
const PING: u64 = 10;
const ACK: u64 = 11;
const ONE_WAY: u64 = 12;
const FLUSH: u64 = 13;
const FLUSH_ACK: u64 = 14;
const SHUTDOWN: u64 = 15;
const REPLY: u64 = 20;
/// user_data of our own msg_ring SQEs; with `SKIP_SUCCESS` their CQE only
/// shows up when the send failed.
const SEND_FAILED: u64 = u64::MAX;

const SQ_ENTRIES: u32 = 256;
const CQ_ENTRIES: u32 = 4096;

fn new_ring() -> IoUring {
    IoUring::builder()
        .setup_cqsize(CQ_ENTRIES)
        .build(SQ_ENTRIES)
        .expect("io_uring setup")
}

/// Queues one message (`tag`, `val`) for the ring `target`; it is submitted
/// by the next `submit*` on `ring`.
fn queue_msg(ring: &mut IoUring, target: RawFd, tag: u64, val: i32) {
    let entry = opcode::MsgRingData::new(types::Fd(target), val, tag, None)
        .build()
        .flags(squeue::Flags::SKIP_SUCCESS)
        .user_data(SEND_FAILED);
    loop {
        // SAFETY: a MSG_RING data entry carries no pointer into our memory,
        // only the target ring's fd number, so nothing has to outlive it.
        if unsafe { ring.submission().push(&entry) }.is_ok() {
            return;
        }
        submit(ring, 0);
    }
}

fn submit(ring: &IoUring, want: usize) {
    loop {
        match ring.submit_and_wait(want) {
            Ok(_) => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && want > 0 => return,
            Err(e) => panic!("io_uring_enter: {e}"),
        }
    }
}

/// How a ring thread waits for its next message.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Wait {
    /// Block in `io_uring_enter`.
    Block,
    /// Submit, then busy-poll the completion queue.
    Spin,
}

/// The next message on `ring`: submits what is queued and blocks when no
/// completion is ready.
fn next_msg(ring: &mut IoUring) -> (u64, i32) {
    next_msg_with(ring, Wait::Block)
}

fn next_msg_with(ring: &mut IoUring, wait: Wait) -> (u64, i32) {
    if wait == Wait::Spin {
        submit(ring, 0);
    }
    loop {
        if let Some(cqe) = ring.completion().next() {
            assert_ne!(
                cqe.user_data(),
                SEND_FAILED,
                "msg_ring send failed: {}",
                io::Error::from_raw_os_error(-cqe.result())
            );
            return (cqe.user_data(), cqe.result());
        }
        match wait {
            Wait::Block => submit(ring, 1),
            Wait::Spin => std::hint::spin_loop(),
        }
    }
}

fn expect_msg(ring: &mut IoUring, want: u64) -> i32 {
    expect_msg_with(ring, want, Wait::Block)
}

fn expect_msg_with(ring: &mut IoUring, want: u64, wait: Wait) -> i32 {
    let (tag, val) = next_msg_with(ring, wait);
    assert_eq!(tag, want, "unexpected message {tag} (value {val})");
    val
}

/// Thread A: serves the bench thread's commands, pinging thread B.
fn client(mut ring: IoUring, responder: RawFd, bench: RawFd, wait: Wait) {
    loop {
        let (cmd, n) = next_msg(&mut ring);
        let reply = match cmd {
            CMD_PING_PONG => {
                let mut checksum = 0i32;
                for i in 0..n {
                    queue_msg(&mut ring, responder, PING, i);
                    checksum = checksum.wrapping_add(expect_msg_with(&mut ring, ACK, wait));
                }
                checksum
            }
            CMD_ONE_WAY => {
                for i in 0..n {
                    queue_msg(&mut ring, responder, ONE_WAY, i);
                }
                queue_msg(&mut ring, responder, FLUSH, 0);
                expect_msg_with(&mut ring, FLUSH_ACK, wait)
            }
            CMD_SHUTDOWN => {
                queue_msg(&mut ring, responder, SHUTDOWN, 0);
                queue_msg(&mut ring, bench, REPLY, 0);
                submit(&ring, 0);
                return;
            }
            other => panic!("raw client: unexpected message {other}"),
        };
        queue_msg(&mut ring, bench, REPLY, reply);
    }
}

/// Thread B: answers pings, sums one-way values.
fn responder(mut ring: IoUring, client: RawFd, wait: Wait) {
    let mut acc = 0i32;
    loop {
        match next_msg_with(&mut ring, wait) {
            (PING, v) => queue_msg(&mut ring, client, ACK, v),
            (ONE_WAY, v) => acc = acc.wrapping_add(v),
            (FLUSH, _) => queue_msg(&mut ring, client, FLUSH_ACK, std::mem::take(&mut acc)),
            (SHUTDOWN, _) => return,
            (other, _) => panic!("raw responder: unexpected message {other}"),
        }
    }
}

/// The two ring threads plus the bench thread's own ring.
pub struct RawHarness {
    ring: IoUring,
    client_fd: RawFd,
    threads: Vec<thread::JoinHandle<()>>,
}

impl RawHarness {
    /// Creates the three rings and starts threads A and B, which block.
    pub fn new() -> Self {
        Self::with_wait(Wait::Block)
    }

    /// Creates the three rings and starts threads A and B waiting as `wait`
    /// says (thread A still blocks between commands).
    pub fn with_wait(wait: Wait) -> Self {
        let ring = new_ring();
        let (a, b) = (new_ring(), new_ring());
        let (bench_fd, client_fd, responder_fd) = (ring.as_raw_fd(), a.as_raw_fd(), b.as_raw_fd());
        let threads = vec![
            thread::Builder::new()
                .name("bench-raw-a".into())
                .spawn(move || client(a, responder_fd, bench_fd, wait))
                .expect("spawn raw client"),
            thread::Builder::new()
                .name("bench-raw-b".into())
                .spawn(move || responder(b, client_fd, wait))
                .expect("spawn raw responder"),
        ];
        Self {
            ring,
            client_fd,
            threads,
        }
    }

    fn call(&mut self, cmd: u64, n: usize) -> u64 {
        let n = i32::try_from(n).expect("count fits i32");
        queue_msg(&mut self.ring, self.client_fd, cmd, n);
        let v = expect_msg(&mut self.ring, REPLY);
        u64::try_from(v).expect("non-negative reply")
    }
}

impl Default for RawHarness {
    fn default() -> Self {
        Self::new()
    }
}

impl Bench for RawHarness {
    fn run(&mut self, cmd: Cmd) -> u64 {
        match cmd {
            Cmd::PingPong(n) => self.call(CMD_PING_PONG, n),
            Cmd::OneWay(n) => self.call(CMD_ONE_WAY, n),
            Cmd::Shutdown => self.call(CMD_SHUTDOWN, 0),
            other => panic!("raw io_uring harness has no {other:?}"),
        }
    }
}

impl Drop for RawHarness {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        self.run(Cmd::Shutdown);
        for t in self.threads.drain(..) {
            t.join().expect("raw ring thread");
        }
    }
}
