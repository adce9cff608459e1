//! Cancellation safety: dropping in-flight ops frees nothing the kernel may
//! still use, leaks no fd, and leaves the sockets working.
//!
//! The tests here count the process's open fds, which tests running in
//! parallel threads would disturb, so each holds `SERIAL` while it runs.

use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use spargio_rt::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use spargio_rt::net::{TcpListener, TcpStream, UnixStream};
use spargio_rt::{Runtime, RuntimeHandle};

mod common;

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Polls `fut` exactly once (which submits its op) and drops it.
async fn poll_once_and_drop<F: Future>(fut: F) -> bool {
    let mut fut = pin!(fut);
    std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx).is_ready())).await
}

async fn drop_many_in_flight_ops() {
    const N: usize = 100_000;
    // Reads that never get data.
    let (mut a, mut b) = UnixStream::pair().unwrap();
    for _ in 0..N / 4 {
        assert!(!poll_once_and_drop(a.read(Vec::with_capacity(64))).await);
    }
    // Accepts that never get a connection.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    for _ in 0..N / 4 {
        assert!(!poll_once_and_drop(l.accept()).await);
    }
    // Multishot accepts dropped while armed.
    for _ in 0..N / 4 {
        let mut inc = l.incoming();
        assert!(!poll_once_and_drop(inc.next()).await);
    }
    // Timeouts around reads: the read is cancelled when the timer wins.
    for _ in 0..N / 4 {
        let r = spargio_rt::time::timeout(Duration::from_micros(1), a.read(Vec::with_capacity(8)))
            .await;
        assert!(r.is_err(), "nothing was written, so the timer wins");
    }
    // Everything still works afterwards.
    let (r, _) = b.write_all(b"still alive".to_vec()).await;
    r.unwrap();
    let (r, buf) = a.read_exact(vec![0u8; 11]).await;
    r.unwrap();
    assert_eq!(buf, b"still alive");
    let addr = l.local_addr().unwrap();
    let c = spargio_rt::spawn(async move { TcpStream::connect(addr).await.unwrap() });
    let (_s, _) = l.accept().await.unwrap();
    c.await.unwrap();
}

/// The accept completes in the kernel before the future that asked for it
/// is dropped: the connection goes to the next accept, and no fd leaks.
async fn accept_that_wins_over_its_cancel_leaks_no_fd() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    for _ in 0..200 {
        let mut c = TcpStream::connect(addr).await.unwrap();
        // A connection is waiting, so the accept SQE completes at once in
        // the kernel; the future is dropped before its CQE is reaped.
        assert!(!poll_once_and_drop(l.accept()).await);
        // Either the accept completed and kept the connection for the next
        // accept, or the cancel won and the connection is still queued:
        // either way a fresh accept takes it (dropping it closes it).
        let accepted = spargio_rt::time::timeout(Duration::from_secs(20), l.accept())
            .await
            .expect("the connection the dropped accept took was lost");
        drop(accepted.unwrap());
        let n = c.read(Vec::with_capacity(8)).await.0.unwrap();
        assert_eq!(n, 0, "the server side was closed");
    }
}

#[test]
fn dropped_in_flight_ops_leak_no_fds_and_leave_sockets_working() {
    let _serial = serial();
    let rt = Runtime::builder().shards(2).build().unwrap();
    // Warm up everything that opens fds once per process (blocking pool,
    // timer thread) before the baseline.
    rt.block_on(async { spargio_rt::time::sleep(Duration::from_micros(10)).await });
    let before = open_fds();
    let h = rt.handle();
    rt.block_on(h.spawn(drop_many_in_flight_ops())).unwrap();
    rt.block_on(h.spawn(accept_that_wins_over_its_cancel_leaks_no_fd()))
        .unwrap();
    // Give the shards a moment to reap the last cancels (no timing
    // assertion: we wait for the count to settle, with a generous bound).
    let mut after = open_fds();
    let by = std::time::Instant::now() + Duration::from_secs(20);
    while after > before && std::time::Instant::now() < by {
        std::thread::sleep(Duration::from_millis(10));
        after = open_fds();
    }
    assert_eq!(after, before, "fds leaked by cancelled ops");
    // Every op that reached a ring was reaped (cancelled or completed);
    // ops that found the table full waited and were dropped unsubmitted.
    let settled = |h: &RuntimeHandle| {
        let s = h.stats();
        let sub: u64 = s.shards.iter().map(|s| s.ops_submitted).sum();
        let done: u64 = s.shards.iter().map(|s| s.ops_completed).sum();
        (sub, done)
    };
    let mut counts = settled(&h);
    let by = std::time::Instant::now() + Duration::from_secs(20);
    while counts.0 != counts.1 && std::time::Instant::now() < by {
        // Nudge the shards so they reap what the kernel posted.
        rt.block_on(async { spargio_rt::time::sleep(Duration::from_millis(1)).await });
        counts = settled(&h);
    }
    assert_eq!(counts.0, counts.1, "every submitted op was reaped");
    let stats = h.stats();
    let cancelled: u64 = stats.shards.iter().map(|s| s.ops_cancelled).sum();
    assert!(cancelled > 10_000, "cancels were submitted: {cancelled}");
    let stale: u64 = stats.shards.iter().map(|s| s.stale_cqes).sum();
    assert_eq!(stale, 0);
}

#[test]
fn runtime_drop_with_ops_in_flight_reaps_them_first() {
    let _serial = serial();
    let before = open_fds();
    {
        let rt = Runtime::builder().shards(2).build().unwrap();
        let h = rt.handle();
        let submitted = || -> u64 { h.stats().shards.iter().map(|s| s.ops_submitted).sum() };
        let submitted_before = submitted();
        for _ in 0..64 {
            h.spawn(async {
                let (mut a, _b) = UnixStream::pair().unwrap();
                // Never completes: the runtime must cancel it at shutdown.
                let _ = a.read(Vec::with_capacity(16)).await;
            });
        }
        // Every read is in flight when the runtime is dropped.
        common::eventually_blocking("the reads are submitted", || {
            submitted() >= submitted_before + 64
        });
    }
    assert!(
        open_fds() <= before + 1,
        "sockets of cancelled ops were closed"
    );
}

#[test]
fn a_tiny_ring_overflows_its_cq_and_recovers() {
    let _serial = serial();
    let rt = Runtime::builder()
        .shards(1)
        .ring_entries(4)
        .build()
        .unwrap();
    let h = rt.handle();
    let total = rt.block_on(h.spawn(async {
        // 8192 NOPs submitted at once through the native API: more
        // completions than the CQ holds (at most 4096 entries).
        let ops: Vec<_> = (0..8192u32)
            .map(|_| {
                // SAFETY: a NOP points at nothing.
                unsafe { spargio_rt::uring::submit((), |_| io_uring::opcode::Nop::new().build()) }
            })
            .collect();
        let done = futures_util::future::join_all(ops).await;
        done.into_iter()
            .filter(|(r, ())| r.as_ref().unwrap().res == 0)
            .count()
    }));
    assert_eq!(total.unwrap(), 8192);
    let s = h.stats();
    assert!(
        s.shards[0].cq_overflows > 0,
        "the CQ overflowed: {:?}",
        s.shards[0]
    );
}
