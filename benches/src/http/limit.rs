//! The "limit" server: how fast `/plaintext` can go on this machine with
//! io_uring and no runtime, framework or HTTP parser.
//!
//! [`WORKERS`] threads, each with its own ring and its own `SO_REUSEPORT`
//! listener (the kernel spreads connections over them). A multishot accept
//! per ring; each connection keeps exactly one operation in flight: a recv,
//! or the send that answers it. A recv's bytes are scanned for `\r\n\r\n`
//! (carrying a partial match over to the next recv), and for every request
//! head that ends in them the fixed bytes of a `/plaintext` response (with
//! a fixed `Date`) are sent, so pipelined requests are answered too. Nothing
//! else is parsed: request bodies, `Connection: close` and methods are
//! ignored, which is why this server only runs the plaintext and pipelined
//! rows. A 0-byte recv or an error closes the connection.
//!
//! It runs until the process is stopped (`SIGINT` / `SIGTERM` end it).

use super::ready;
use crate::harness::WORKERS;
use io_uring::{cqueue, opcode, squeue, types, IoUring};
use std::io;
use std::net::{SocketAddr, SocketAddrV4, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::thread;

/// The response to every request: what the other servers send for
/// `/plaintext`, with a fixed date.
pub const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\n\
content-type: text/plain\r\n\
content-length: 13\r\n\
date: Thu, 01 Jan 2026 00:00:00 GMT\r\n\
\r\n\
Hello, World!";

/// The end of a request head.
const HEAD_END: &[u8; 4] = b"\r\n\r\n";

const SQ_ENTRIES: u32 = 1024;
const CQ_ENTRIES: u32 = 4096;
const RECV_BUF: usize = 16 * 1024;
const BACKLOG: i32 = 1024;

/// user_data of the multishot accept.
const ACCEPT: u64 = u64::MAX;
/// user_data of a connection's op: `slot << 1`, low bit set for a send.
const SEND_BIT: u64 = 1;

/// Counts the request heads that end in `bytes`. `matched` is how much of
/// the head terminator (`\r\n\r\n`) the bytes before ended with (0 to 3), and is updated.
pub fn count_heads(matched: &mut u8, bytes: &[u8]) -> usize {
    let mut m = usize::from(*matched);
    let mut heads = 0;
    for &b in bytes {
        if b == HEAD_END[m] {
            m += 1;
            if m == HEAD_END.len() {
                heads += 1;
                m = 0;
            }
        } else {
            // The only prefix of "\r\n\r\n" a mismatch can leave is "\r".
            m = usize::from(b == b'\r');
        }
    }
    *matched = m as u8;
    heads
}

/// Serves on `addr` (IPv4) until the process is stopped; prints `ready`
/// once every listener is bound.
pub fn run(addr: SocketAddr) -> io::Result<()> {
    let SocketAddr::V4(mut addr) = addr else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the limit server listens on IPv4 only",
        ));
    };
    let mut listeners = Vec::with_capacity(WORKERS);
    for _ in 0..WORKERS {
        let listener = reuseport_listener(addr)?;
        // Port 0: the others share the port the first one got.
        if let SocketAddr::V4(bound) = listener.local_addr()? {
            addr = bound;
        }
        listeners.push(listener);
    }
    ready(SocketAddr::V4(addr));
    let threads: Vec<_> = listeners
        .into_iter()
        .enumerate()
        .map(|(i, listener)| {
            thread::Builder::new()
                .name(format!("http-limit-{i}"))
                .spawn(move || Worker::new(listener)?.run())
        })
        .collect::<io::Result<_>>()?;
    for t in threads {
        t.join()
            .map_err(|_| io::Error::other("limit worker panicked"))??;
    }
    Ok(())
}

/// A listening socket with `SO_REUSEADDR` and `SO_REUSEPORT`.
fn reuseport_listener(addr: SocketAddrV4) -> io::Result<TcpListener> {
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket(2) and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    set_int_opt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    set_int_opt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(addr.ip().octets()),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: `sin` is a valid sockaddr_in and the length passed is its
    // size; bind(2) only reads it during the call.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sin as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: listen(2) on a socket we own; the result is checked.
    if unsafe { libc::listen(fd.as_raw_fd(), BACKLOG) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(TcpListener::from(fd))
}

fn set_int_opt(fd: RawFd, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: `value` is a live i32 and the length passed is its size;
    // setsockopt(2) only reads it during the call.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// One accepted connection.
struct Conn {
    fd: OwnedFd,
    /// The recv buffer; boxed so it stays put when the slot table grows.
    buf: Box<[u8]>,
    /// The responses being sent, and how much of them has gone.
    out: Vec<u8>,
    sent: usize,
    /// How much of `\r\n\r\n` the bytes received so far end with.
    matched: u8,
}

/// One thread's ring, listener and connections.
struct Worker {
    ring: IoUring,
    listener: TcpListener,
    /// Connections by slot; a slot's user_data is `slot << 1 | op`.
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
}

impl Worker {
    fn new(listener: TcpListener) -> io::Result<Worker> {
        let ring = IoUring::builder()
            .setup_cqsize(CQ_ENTRIES)
            .build(SQ_ENTRIES)?;
        Ok(Worker {
            ring,
            listener,
            conns: Vec::new(),
            free: Vec::new(),
        })
    }

    fn run(mut self) -> io::Result<()> {
        self.arm_accept();
        let mut done: Vec<(u64, i32, u32)> = Vec::with_capacity(CQ_ENTRIES as usize);
        loop {
            match self.ring.submit_and_wait(1) {
                Ok(_) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY)) => {}
                Err(e) => return Err(e),
            }
            done.clear();
            done.extend(
                self.ring
                    .completion()
                    .map(|c| (c.user_data(), c.result(), c.flags())),
            );
            for &(user_data, res, flags) in &done {
                self.complete(user_data, res, flags);
            }
        }
    }

    /// Queues `entry`, submitting first if the submission queue is full.
    ///
    /// # Safety
    /// Any memory `entry` points to must stay valid, and not be touched
    /// otherwise, until its completion has been reaped.
    unsafe fn push(&mut self, entry: &squeue::Entry) {
        loop {
            // SAFETY: forwarded from the caller.
            if unsafe { self.ring.submission().push(entry) }.is_ok() {
                return;
            }
            // The queue is full: hand it to the kernel and try again.
            let _ = self.ring.submit();
        }
    }

    fn arm_accept(&mut self) {
        let entry = opcode::AcceptMulti::new(types::Fd(self.listener.as_raw_fd()))
            .flags(libc::SOCK_CLOEXEC)
            .build()
            .user_data(ACCEPT);
        // SAFETY: a multishot accept passes no buffer; the listener it names
        // lives as long as this worker (and so as long as the ring).
        unsafe { self.push(&entry) };
    }

    fn complete(&mut self, user_data: u64, res: i32, flags: u32) {
        if user_data == ACCEPT {
            if res >= 0 {
                self.open(res);
            }
            if !cqueue::more(flags) {
                self.arm_accept();
            }
            return;
        }
        let slot = (user_data >> 1) as usize;
        if user_data & SEND_BIT == 0 {
            self.on_recv(slot, res);
        } else {
            self.on_send(slot, res);
        }
    }

    fn open(&mut self, fd: RawFd) {
        // SAFETY: `fd` was just returned by accept and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let _ = set_int_opt(fd.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_NODELAY, 1);
        let conn = Conn {
            fd,
            buf: vec![0; RECV_BUF].into_boxed_slice(),
            out: Vec::with_capacity(RESPONSE.len()),
            sent: 0,
            matched: 0,
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.conns[slot] = Some(conn);
                slot
            }
            None => {
                self.conns.push(Some(conn));
                self.conns.len() - 1
            }
        };
        self.recv(slot);
    }

    fn close(&mut self, slot: usize) {
        // Dropping the connection closes its socket; it has no op in flight.
        self.conns[slot] = None;
        self.free.push(slot);
    }

    fn conn(&mut self, slot: usize) -> &mut Conn {
        self.conns[slot]
            .as_mut()
            .expect("completion for an open connection")
    }

    fn recv(&mut self, slot: usize) {
        let conn = self.conn(slot);
        let entry = opcode::Recv::new(
            types::Fd(conn.fd.as_raw_fd()),
            conn.buf.as_mut_ptr(),
            conn.buf.len() as u32,
        )
        .build()
        .user_data((slot as u64) << 1);
        // SAFETY: the buffer is the connection's boxed `buf`, which neither
        // moves nor is read, and whose connection is not dropped, until this
        // recv completes: a connection has one op in flight and is closed
        // only from that op's completion.
        unsafe { self.push(&entry) };
    }

    fn send(&mut self, slot: usize) {
        let conn = self.conn(slot);
        let rest = &conn.out[conn.sent..];
        let entry = opcode::Send::new(
            types::Fd(conn.fd.as_raw_fd()),
            rest.as_ptr(),
            rest.len() as u32,
        )
        .flags(libc::MSG_NOSIGNAL)
        .build()
        .user_data((slot as u64) << 1 | SEND_BIT);
        // SAFETY: `out` is neither changed nor dropped until this send
        // completes (one op in flight per connection, closed only from its
        // completion), so its heap buffer stays valid.
        unsafe { self.push(&entry) };
    }

    fn on_recv(&mut self, slot: usize, res: i32) {
        if res <= 0 {
            self.close(slot);
            return;
        }
        let conn = self.conn(slot);
        let heads = count_heads(&mut conn.matched, &conn.buf[..res as usize]);
        if heads == 0 {
            self.recv(slot);
            return;
        }
        conn.out.clear();
        for _ in 0..heads {
            conn.out.extend_from_slice(RESPONSE);
        }
        conn.sent = 0;
        self.send(slot);
    }

    fn on_send(&mut self, slot: usize, res: i32) {
        if res <= 0 {
            self.close(slot);
            return;
        }
        let conn = self.conn(slot);
        conn.sent += res as usize;
        if conn.sent < conn.out.len() {
            self.send(slot);
        } else {
            self.recv(slot);
        }
    }
}
