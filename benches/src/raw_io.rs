//! The I/O "limit" peer: no runtime, one thread owning one io_uring ring,
//! one blocking `submit_and_wait` per op (a batch of 32 for the qd32 row).
//! It runs the single-stream rows only (fs reads, echo, windowed stream,
//! microservice), against the same fixture file and echo peer as the
//! runtimes. Commands reach the thread over a `std::sync::mpsc` channel.

use crate::echo_peer::EchoPeer;
use crate::io_fixture::Fixture;
use crate::io_harness::IoBench;
use crate::io_workloads::{block_sum, IoCmd, BLOCK, ECHO_BYTES, FILE_BLOCKS, FRAME, WINDOW};
use io_uring::{opcode, squeue, types, IoUring};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

const REPLY_DEADLINE: Duration = Duration::from_secs(120);

/// One thread, one ring, the fixture file and one stream to the echo peer.
pub struct RawIoHarness {
    cmds: std_mpsc::Sender<IoCmd>,
    replies: std_mpsc::Receiver<u64>,
    thread: Option<JoinHandle<()>>,
    _echo: EchoPeer,
    _fixture: Fixture,
}

impl RawIoHarness {
    /// Writes the fixture, starts the echo peer and the ring thread.
    pub fn new() -> Self {
        let fixture = Fixture::new();
        let echo = EchoPeer::start();
        let file = std::fs::File::open(fixture.path()).expect("raw open");
        let stream = std::net::TcpStream::connect(echo.addr()).expect("raw connect");
        stream.set_nodelay(true).expect("raw nodelay");
        let (cmd_tx, cmd_rx) = std_mpsc::channel::<IoCmd>();
        let (rep_tx, rep_rx) = std_mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("bench-io-raw-uring".into())
            .spawn(move || {
                let mut raw = Raw {
                    ring: IoUring::new(64).expect("io_uring setup"),
                    file: file.as_raw_fd(),
                    sock: stream.as_raw_fd(),
                };
                while let Ok(cmd) = cmd_rx.recv() {
                    let out = raw.serve(cmd);
                    if rep_tx.send(out).is_err() || cmd == IoCmd::Shutdown {
                        break;
                    }
                }
                // `file` and `stream` close here, after the ring is idle.
                drop((file, stream));
            })
            .expect("spawn raw io thread");
        Self {
            cmds: cmd_tx,
            replies: rep_rx,
            thread: Some(thread),
            _echo: echo,
            _fixture: fixture,
        }
    }
}

impl Default for RawIoHarness {
    fn default() -> Self {
        Self::new()
    }
}

impl IoBench for RawIoHarness {
    fn run(&mut self, cmd: IoCmd) -> u64 {
        self.cmds.send(cmd).expect("raw io thread gone");
        match self.replies.recv_timeout(REPLY_DEADLINE) {
            Ok(v) => v,
            Err(e) => panic!("raw io: no reply to {cmd:?} within {REPLY_DEADLINE:?} ({e})"),
        }
    }
}

impl Drop for RawIoHarness {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        self.run(IoCmd::Shutdown);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("raw io thread");
        }
    }
}

struct Raw {
    ring: IoUring,
    file: RawFd,
    sock: RawFd,
}

impl Raw {
    fn serve(&mut self, cmd: IoCmd) -> u64 {
        match cmd {
            IoCmd::FsReadRtt(n) => self.fs_read_rtt(n),
            IoCmd::FsReadQd { reads, qd } => self.fs_read_qd(reads, qd),
            IoCmd::EchoRtt(n) => self.echo_rtt(n),
            IoCmd::Windowed(n) => self.windowed(n),
            IoCmd::Microservice(n) => self.microservice(n),
            IoCmd::Shutdown => 0,
            IoCmd::Imbalanced { .. } | IoCmd::Rotation(_) | IoCmd::Pipeline(_) => {
                panic!("raw io: multi-stream rows are not implemented")
            }
        }
    }

    /// Submits what is queued and waits for at least `want` completions.
    fn submit(&mut self, want: usize) {
        loop {
            match self.ring.submit_and_wait(want) {
                Ok(_) => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => panic!("io_uring_enter: {e}"),
            }
        }
    }

    /// Runs one op to completion and returns its result (`-errno` panics).
    ///
    /// # Safety
    /// Every pointer in `entry` must stay valid until this returns (it
    /// does not return before the op completed).
    // SAFETY: an unsafe fn: its callers uphold the `# Safety` section.
    unsafe fn one(&mut self, entry: squeue::Entry) -> usize {
        // SAFETY: the caller keeps the entry's buffers alive until we
        // return, and we return only after its completion.
        unsafe { self.ring.submission().push(&entry) }.expect("submission queue full");
        loop {
            self.submit(1);
            if let Some(cqe) = self.ring.completion().next() {
                let res = cqe.result();
                assert!(
                    res >= 0,
                    "raw io op: {}",
                    io::Error::from_raw_os_error(-res)
                );
                return res as usize;
            }
        }
    }

    fn pread(&mut self, buf: &mut [u8], pos: u64) {
        let mut done = 0;
        while done < buf.len() {
            let rest = &mut buf[done..];
            let entry =
                opcode::Read::new(types::Fd(self.file), rest.as_mut_ptr(), rest.len() as u32)
                    .offset(pos + done as u64)
                    .build();
            // SAFETY: `buf` is borrowed for the whole call, `one` waits for
            // the read's completion.
            let n = unsafe { self.one(entry) };
            assert!(n > 0, "raw io: read past the end of the fixture");
            done += n;
        }
    }

    fn send_all(&mut self, buf: &[u8]) {
        let mut done = 0;
        while done < buf.len() {
            let rest = &buf[done..];
            let entry = opcode::Send::new(types::Fd(self.sock), rest.as_ptr(), rest.len() as u32)
                .flags(libc::MSG_NOSIGNAL)
                .build();
            // SAFETY: `buf` is borrowed for the whole call, `one` waits for
            // the send's completion.
            let n = unsafe { self.one(entry) };
            assert!(n > 0, "raw io: send took nothing");
            done += n;
        }
    }

    fn recv_exact(&mut self, buf: &mut [u8]) {
        let mut done = 0;
        while done < buf.len() {
            let rest = &mut buf[done..];
            let entry =
                opcode::Recv::new(types::Fd(self.sock), rest.as_mut_ptr(), rest.len() as u32)
                    .build();
            // SAFETY: `buf` is borrowed for the whole call, `one` waits for
            // the receive's completion.
            let n = unsafe { self.one(entry) };
            assert!(n > 0, "raw io: echo peer closed the stream");
            done += n;
        }
    }

    fn fs_read_rtt(&mut self, reads: usize) -> u64 {
        let mut buf = vec![0u8; BLOCK];
        let mut sum = 0u64;
        for i in 0..reads as u64 {
            let block = i % FILE_BLOCKS;
            self.pread(&mut buf, block * BLOCK as u64);
            sum = sum.wrapping_add(block_sum(block, &buf));
        }
        sum
    }

    /// Queues a batch of reads, one submit, waits for all of them.
    fn fs_read_qd(&mut self, reads: usize, qd: usize) -> u64 {
        let qd = qd.clamp(1, 64);
        let mut bufs: Vec<Vec<u8>> = (0..qd).map(|_| vec![0u8; BLOCK]).collect();
        let mut sum = 0u64;
        let mut next = 0usize;
        while next < reads {
            let batch = (reads - next).min(qd);
            for (k, buf) in bufs.iter_mut().take(batch).enumerate() {
                let block = (next + k) as u64 % FILE_BLOCKS;
                let entry = opcode::Read::new(types::Fd(self.file), buf.as_mut_ptr(), BLOCK as u32)
                    .offset(block * BLOCK as u64)
                    .build()
                    .user_data(k as u64);
                // SAFETY: `bufs` is neither touched nor dropped until every
                // read of this batch has completed (the loop below).
                unsafe { self.ring.submission().push(&entry) }.expect("submission queue full");
            }
            let mut left = batch;
            while left > 0 {
                self.submit(1);
                for cqe in self.ring.completion() {
                    let res = cqe.result();
                    assert_eq!(res, BLOCK as i32, "raw io: short or failed read");
                    left -= 1;
                }
            }
            for (k, buf) in bufs.iter().take(batch).enumerate() {
                sum = sum.wrapping_add(block_sum((next + k) as u64 % FILE_BLOCKS, buf));
            }
            next += batch;
        }
        sum
    }

    fn echo_rtt(&mut self, rounds: usize) -> u64 {
        let mut out = vec![0u8; ECHO_BYTES];
        let mut back = vec![0u8; ECHO_BYTES];
        let mut sum = 0u64;
        for i in 0..rounds {
            out[0] = i as u8;
            self.send_all(&out);
            self.recv_exact(&mut back);
            sum = sum.wrapping_add(u64::from(back[0]));
        }
        sum
    }

    fn windowed(&mut self, frames: usize) -> u64 {
        let mut out = vec![0u8; FRAME];
        let mut back = vec![0u8; FRAME];
        let mut sum = 0u64;
        let mut next = 0usize;
        while next < frames {
            let batch = (frames - next).min(WINDOW);
            for k in 0..batch {
                out[0] = (next + k) as u8;
                self.send_all(&out);
            }
            for _ in 0..batch {
                self.recv_exact(&mut back);
                sum = sum.wrapping_add(u64::from(back[0]));
            }
            next += batch;
        }
        sum
    }

    fn microservice(&mut self, rounds: usize) -> u64 {
        let mut block_buf = vec![0u8; BLOCK];
        let mut out = vec![0u8; ECHO_BYTES];
        let mut back = vec![0u8; ECHO_BYTES];
        let mut sum = 0u64;
        for i in 0..rounds as u64 {
            let block = i % FILE_BLOCKS;
            self.pread(&mut block_buf, block * BLOCK as u64);
            out[0] = block_buf[0] ^ i as u8;
            self.send_all(&out);
            self.recv_exact(&mut back);
            sum = sum.wrapping_add(block_sum(block, &block_buf) ^ u64::from(back[0]));
        }
        sum
    }
}
