//! How to hand an accepted socket from the accepting shard's ring to the
//! shard that will serve it: the two ways issue 4 names, measured on bare
//! rings with no runtime around them.
//!
//! - [`Handoff::QueueAndDoorbell`] (what spargio-service does): the
//!   accepting thread gets a normal fd, pushes it onto a lock-free queue and
//!   rings the target with an `IORING_OP_MSG_RING` data message; the target
//!   pops it. (The service only rings when the target is parked; here every
//!   hand-off rings, the costliest case.)
//! - [`Handoff::SendFd`]: the socket is created straight into the accepting
//!   ring's fixed-file table (as a direct-descriptor accept would),
//!   `IORING_OP_MSG_RING` with `IORING_MSG_SEND_FD` installs it into the
//!   target ring's table, the sender closes its slot, and the target turns
//!   its slot into a normal fd with `IORING_OP_FIXED_FD_INSTALL` (our I/O
//!   layer works on normal fds) and closes the slot.
//!
//! Either way the target ends by closing the normal fd, and each socket is
//! made with `IORING_OP_SOCKET` on the sending ring, so creating it costs
//! the same in both. The sender hands over a window of sockets, then waits
//! for the target's acknowledgement before the next window.

use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_deque::{Injector, Steal};
use io_uring::{cqueue, opcode, squeue, types, IoUring};
use std::collections::VecDeque;

/// Which way sockets travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handoff {
    /// A normal fd on a lock-free queue, plus a `MSG_RING` data doorbell.
    QueueAndDoorbell,
    /// `MSG_RING` `SEND_FD` between fixed-file tables, then
    /// `FIXED_FD_INSTALL` on the target.
    SendFd,
}

impl Handoff {
    /// Both, in the order they are reported.
    pub const ALL: [Handoff; 2] = [Handoff::QueueAndDoorbell, Handoff::SendFd];

    /// The table label.
    pub fn name(self) -> &'static str {
        match self {
            Handoff::QueueAndDoorbell => "fd on a queue + MSG_RING doorbell",
            Handoff::SendFd => "MSG_RING SEND_FD + FIXED_FD_INSTALL",
        }
    }
}

/// What one run measured.
#[derive(Clone, Copy, Debug)]
pub struct HandoffRun {
    /// Sockets handed over.
    pub sockets: u64,
    /// Wall time of the whole run.
    pub wall: Duration,
    /// CPU time (user + sys) of the sending thread.
    pub sender_cpu: Duration,
    /// CPU time (user + sys) of the receiving thread.
    pub receiver_cpu: Duration,
}

/// Sockets per window before the sender waits for an acknowledgement.
const WINDOW: u64 = 32;
/// Fixed-file table size of each ring.
const TABLE: u32 = 1024;

const TAG_HANDOFF: u64 = 1;
const TAG_ACK: u64 = 2;
const TAG_STOP: u64 = 3;
/// user_data of SQEs whose successful CQE is skipped or ignored.
const TAG_QUIET: u64 = 9;
const TAG_SOCKET: u64 = 10;
const TAG_INSTALL: u64 = 11;

fn ring() -> IoUring {
    let ring = IoUring::builder()
        .setup_cqsize(4096)
        .build(256)
        .expect("io_uring setup");
    ring.submitter()
        .register_files_sparse(TABLE)
        .expect("register a sparse fixed-file table");
    ring
}

fn push(ring: &mut IoUring, e: squeue::Entry) {
    loop {
        // SAFETY: none of the entries built here point into memory of ours
        // (fds, slot numbers and user_data only).
        if unsafe { ring.submission().push(&e) }.is_ok() {
            return;
        }
        ring.submit().expect("io_uring_enter");
    }
}

/// Submits and waits for one CQE with `tag`, handling others by `other`.
fn wait_for(ring: &mut IoUring, tag: u64, mut other: impl FnMut(cqueue::Entry)) -> i32 {
    loop {
        ring.submit_and_wait(1).expect("io_uring_enter");
        let cqes: Vec<cqueue::Entry> = ring.completion().collect();
        let mut found = None;
        for c in cqes {
            if c.user_data() == tag && found.is_none() {
                found = Some(c.result());
            } else {
                other(c);
            }
        }
        if let Some(res) = found {
            return res;
        }
    }
}

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the kernel to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn quiet_fail(c: cqueue::Entry) {
    assert!(
        c.result() >= 0,
        "an op failed: user_data {} result {}",
        c.user_data(),
        c.result()
    );
}

/// Hands over `sockets` sockets from one thread to another with `how`.
pub fn run(how: Handoff, sockets: u64) -> HandoffRun {
    let mut a = ring();
    let b = ring();
    let b_fd = b.as_raw_fd();
    let a_fd = a.as_raw_fd();
    let queue: Arc<Injector<RawFd>> = Arc::new(Injector::new());
    let rx_queue = queue.clone();
    let receiver = thread::spawn(move || receive(b, a_fd, how, rx_queue));
    let start = Instant::now();
    let cpu0 = thread_cpu();
    let mut sent = 0u64;
    while sent < sockets {
        let window = WINDOW.min(sockets - sent);
        for _ in 0..window {
            send_one(&mut a, b_fd, how, &queue);
        }
        sent += window;
        // The target acknowledges every full window (a last, partial one
        // is followed by the stop message, which comes after it in order).
        if window == WINDOW {
            wait_for(&mut a, TAG_ACK, quiet_fail);
        }
    }
    let msg = opcode::MsgRingData::new(types::Fd(b_fd), 0, TAG_STOP, None)
        .build()
        .flags(squeue::Flags::SKIP_SUCCESS)
        .user_data(TAG_QUIET);
    push(&mut a, msg);
    a.submit().expect("io_uring_enter");
    let sender_cpu = thread_cpu() - cpu0;
    let receiver_cpu = receiver.join().expect("receiver thread");
    HandoffRun {
        sockets,
        wall: start.elapsed(),
        sender_cpu,
        receiver_cpu,
    }
}

fn send_one(a: &mut IoUring, b_fd: RawFd, how: Handoff, queue: &Injector<RawFd>) {
    match how {
        Handoff::QueueAndDoorbell => {
            let socket =
                opcode::Socket::new(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            push(a, socket.build().user_data(TAG_SOCKET));
            let fd = wait_for(a, TAG_SOCKET, quiet_fail);
            assert!(fd >= 0, "socket: {fd}");
            queue.push(fd);
            let msg = opcode::MsgRingData::new(types::Fd(b_fd), 0, TAG_HANDOFF, None)
                .build()
                .flags(squeue::Flags::SKIP_SUCCESS)
                .user_data(TAG_QUIET);
            push(a, msg);
            a.submit().expect("io_uring_enter");
        }
        Handoff::SendFd => {
            // A direct descriptor has no close-on-exec flag to set (the
            // kernel refuses SOCK_CLOEXEC there).
            let direct = opcode::Socket::new(libc::AF_INET, libc::SOCK_STREAM, 0)
                .file_index(Some(types::DestinationSlot::auto_target()))
                .build()
                .user_data(TAG_SOCKET);
            push(a, direct);
            let slot = wait_for(a, TAG_SOCKET, quiet_fail);
            assert!(slot >= 0, "direct socket: {slot}");
            let send = opcode::MsgRingSendFd::new(
                types::Fd(b_fd),
                types::Fixed(slot as u32),
                types::DestinationSlot::auto_target(),
                TAG_HANDOFF,
            )
            .build()
            .flags(squeue::Flags::IO_LINK | squeue::Flags::SKIP_SUCCESS)
            .user_data(TAG_QUIET);
            // Our slot goes once the target has its own reference.
            let close = opcode::Close::new(types::Fixed(slot as u32))
                .build()
                .flags(squeue::Flags::SKIP_SUCCESS)
                .user_data(TAG_QUIET);
            push(a, send);
            push(a, close);
            a.submit().expect("io_uring_enter");
        }
    }
}

/// The target: takes each socket as a normal fd and closes it; acks every
/// window. Returns its CPU time.
fn receive(mut b: IoUring, a_fd: RawFd, how: Handoff, queue: Arc<Injector<RawFd>>) -> Duration {
    let cpu0 = thread_cpu();
    let mut got = 0u64;
    // CQEs reaped but not handled yet (an install's wait reaps others too).
    let mut pending: VecDeque<cqueue::Entry> = VecDeque::new();
    loop {
        if pending.is_empty() {
            b.submit_and_wait(1).expect("io_uring_enter");
            pending.extend(b.completion());
        }
        while let Some(c) = pending.pop_front() {
            match c.user_data() {
                TAG_STOP => return thread_cpu() - cpu0,
                TAG_HANDOFF => {
                    let fd = match how {
                        Handoff::QueueAndDoorbell => pop(&queue),
                        Handoff::SendFd => {
                            assert!(c.result() >= 0, "SEND_FD: {}", c.result());
                            install(&mut b, c.result() as u32, &mut pending)
                        }
                    };
                    let close = opcode::Close::new(types::Fd(fd))
                        .build()
                        .flags(squeue::Flags::SKIP_SUCCESS)
                        .user_data(TAG_QUIET);
                    push(&mut b, close);
                    got += 1;
                    if got.is_multiple_of(WINDOW) {
                        let ack = opcode::MsgRingData::new(types::Fd(a_fd), 0, TAG_ACK, None)
                            .build()
                            .flags(squeue::Flags::SKIP_SUCCESS)
                            .user_data(TAG_QUIET);
                        push(&mut b, ack);
                        b.submit().expect("io_uring_enter");
                    }
                }
                _ => quiet_fail(c),
            }
        }
    }
}

/// Pops the fd whose doorbell just arrived (it was queued before).
fn pop(queue: &Injector<RawFd>) -> RawFd {
    loop {
        match queue.steal() {
            Steal::Success(fd) => return fd,
            Steal::Retry => continue,
            Steal::Empty => panic!("doorbell without a queued fd"),
        }
    }
}

/// Turns fixed slot `slot` of `b` into a normal fd and frees the slot;
/// other CQEs reaped meanwhile go to `pending`.
fn install(b: &mut IoUring, slot: u32, pending: &mut VecDeque<cqueue::Entry>) -> RawFd {
    push(
        b,
        opcode::FixedFdInstall::new(types::Fixed(slot), 0)
            .build()
            .user_data(TAG_INSTALL),
    );
    let fd = wait_for(b, TAG_INSTALL, |c| pending.push_back(c));
    assert!(fd >= 0, "FIXED_FD_INSTALL: {fd}");
    push(
        b,
        opcode::Close::new(types::Fixed(slot))
            .build()
            .flags(squeue::Flags::SKIP_SUCCESS)
            .user_data(TAG_QUIET),
    );
    fd
}
