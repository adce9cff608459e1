//! The native extension API (`spargio_rt::uring`): the bound on a native
//! multishot op's queue, and the SQE flags it refuses.

use std::collections::HashSet;
use std::future::Future;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use io_uring::{opcode, types};
use spargio_rt::uring::{self, DEFAULT_MULTISHOT_MAX_QUEUED};
use spargio_rt::Runtime;

mod common;

/// Long enough that only a hang reaches it.
const HANG: Duration = Duration::from_secs(20);

fn one_shard() -> Runtime {
    Runtime::builder().shards(1).build().expect("build runtime")
}

/// `fut`, or a panic naming `what` if it hangs.
async fn in_time<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match spargio_rt::time::timeout(HANG, fut).await {
        Ok(v) => v,
        Err(_) => panic!("hung: {what}"),
    }
}

/// The peer address of an accepted socket.
fn peer_of(fd: &OwnedFd) -> SocketAddr {
    let dup = fd.try_clone().expect("dup");
    TcpStream::from(dup).peer_addr().expect("peer address")
}

#[test]
fn native_multishot_accept_stops_at_its_cap_and_loses_nothing() {
    accept_flood(None, 44);
}

#[test]
fn native_multishot_max_queued_sets_the_cap() {
    accept_flood(Some(8), 12);
}

/// A native multishot accept with no consumer while `cap + 1 + extra`
/// clients connect one by one: it queues `cap` of them (default cap when
/// `None`) and stops; re-armed, it hands out the rest, each exactly once.
fn accept_flood(set_cap: Option<usize>, extra: usize) {
    let cap = set_cap.unwrap_or(DEFAULT_MULTISHOT_MAX_QUEUED);
    let rt = one_shard();
    let handle = rt.handle();
    let cancels = move || handle.stats().shards[0].ops_cancelled;
    rt.block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let listen_fd = OwnedFd::from(listener);
        // SAFETY: the SQE names only the listening fd, owned by the op's
        // data until its final CQE, and points at no memory.
        let mut accepts = unsafe {
            uring::submit_multishot(listen_fd, |fd| {
                opcode::AcceptMulti::new(types::Fd(fd.as_raw_fd()))
                    .flags(libc::SOCK_CLOEXEC)
                    .build()
            })
        };
        if let Some(n) = set_cap {
            accepts.max_queued(n);
        }
        let mut clients = Vec::new();
        let mut accepted = Vec::new();
        let cancels_before = cancels();

        // The first connection arms the op.
        clients.push(TcpStream::connect(addr).unwrap());
        let first = in_time("first accept", accepts.next_cqe())
            .await
            .expect("a CQE")
            .expect("no submit error");
        assert!(first.more(), "the op goes on");
        assert!(!accepts.capped(), "nothing has stopped the op");
        // SAFETY: a successful accept CQE carries a new fd only we own.
        accepted.push(unsafe { OwnedFd::from_raw_fd(first.result().unwrap() as i32) });

        // Nobody consumes from here on: one connection at a time until the
        // queue is full...
        for i in 1..=cap {
            clients.push(TcpStream::connect(addr).unwrap());
            common::eventually("the connection is queued", || accepts.queued() == i).await;
        }
        // The shard sends the cap's cancel to its ring as it queues the
        // last CQE.
        common::eventually("the cap's cancel went out", || cancels() > cancels_before).await;
        // More connections, which must stay in the listen backlog.
        for _ in 0..extra {
            clients.push(TcpStream::connect(addr).unwrap());
        }
        // The queue has stopped growing: without a consumer the stream
        // ends after what was queued (a stream that kept accepting would
        // hand out every connection and then hang here).
        let mut before_end = 0;
        while let Some(cqe) = in_time("the capped stream ends", accepts.next_cqe()).await {
            let n = cqe.expect("no submit error").result().expect("accepted");
            // SAFETY: a successful accept CQE carries a new fd only we own.
            accepted.push(unsafe { OwnedFd::from_raw_fd(n as i32) });
            before_end += 1;
        }
        // A connection or two may be accepted before the cap's cancel
        // lands (the docs allow it); the extra ones must not all be.
        assert!(
            (cap..cap + extra).contains(&before_end),
            "only about the capped queue was handed out: {before_end} of cap {cap}"
        );
        assert_eq!(accepts.queued(), 0);
        assert!(accepts.capped(), "the stream ended for its cap");

        // Re-armed, the op takes what waited in the backlog.
        accepts.rearm();
        while accepted.len() < clients.len() {
            let cqe = in_time("a backlog connection", accepts.next_cqe())
                .await
                .expect("the re-armed stream goes on")
                .expect("no submit error");
            let n = cqe.result().expect("accepted");
            // SAFETY: a successful accept CQE carries a new fd only we own.
            accepted.push(unsafe { OwnedFd::from_raw_fd(n as i32) });
        }
        assert_eq!(accepts.queued(), 0, "nothing accepted twice");

        // Every client was accepted exactly once.
        let want: HashSet<SocketAddr> = clients.iter().map(|c| c.local_addr().unwrap()).collect();
        let got: HashSet<SocketAddr> = accepted.iter().map(peer_of).collect();
        assert_eq!(want.len(), cap + 1 + extra);
        assert_eq!(got, want);
        assert_eq!(accepted.len(), want.len());
    });
}

/// A native SQE that would link to whatever the runtime queues next is
/// refused before it reaches the ring, and the op's data comes back.
#[test]
fn native_submit_with_io_link_is_refused() {
    // One op slot: a refused op that kept its slot would stall the next.
    let rt = Runtime::builder()
        .shards(1)
        .max_ops_in_flight(1)
        .build()
        .expect("build runtime");
    let handle = rt.handle();
    let on_shard = handle.spawn(async {
        // SAFETY: a NOP points at no memory and names no fd.
        let op = unsafe {
            uring::submit(7u32, |_| {
                opcode::Nop::new()
                    .build()
                    .flags(io_uring::squeue::Flags::IO_LINK)
            })
        };
        let (res, data) = op.await;
        let err = res.expect_err("an IO_LINK SQE is refused");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("IOSQE_IO_LINK"), "{err}");
        assert_eq!(data, 7);
        // The refused op gave its slot back: a plain NOP gets it.
        // SAFETY: as above.
        let nop = unsafe { uring::submit((), |_| opcode::Nop::new().build()) };
        let (res, ()) = in_time("a NOP after a refused op", nop).await;
        assert_eq!(res.unwrap().res, 0);
    });
    rt.block_on(async move {
        on_shard.await.unwrap();

        // From block_on's own thread (handed to a shard) too.
        // SAFETY: as above.
        let op = unsafe {
            uring::submit((), |_| {
                opcode::Nop::new()
                    .build()
                    .flags(io_uring::squeue::Flags::IO_HARDLINK)
            })
        };
        let err = op.await.0.expect_err("an IO_HARDLINK SQE is refused");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);

        // A multishot one ends its stream with the error.
        // SAFETY: as above.
        let mut polls = unsafe {
            uring::submit_multishot((), |_| {
                opcode::Nop::new()
                    .build()
                    .flags(io_uring::squeue::Flags::SKIP_SUCCESS)
            })
        };
        let err = polls
            .next_cqe()
            .await
            .expect("an item")
            .expect_err("refused");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert!(polls.next_cqe().await.is_none());
    });
}

/// A native zero-copy send resolves once its notification has come, to
/// its result: `F_MORE` cleared (nothing more comes), `F_NOTIF` set.
#[test]
fn a_native_zero_copy_send_resolves_to_its_result_marked_notified() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let sender = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (mut receiver, _) = listener.accept().unwrap();
    let rt = one_shard();
    let cqe = rt.block_on(async move {
        let data = (sender, vec![5u8; 64 * 1024]);
        // SAFETY: the SQE points into `d.1` and names `d.0`'s fd, both
        // owned by the op's data until its final CQE.
        let op = unsafe {
            uring::submit(data, |d| {
                opcode::SendZc::new(types::Fd(d.0.as_raw_fd()), d.1.as_ptr(), d.1.len() as u32)
                    .build()
            })
        };
        let (res, _data) = in_time("a zero-copy send", op).await;
        res.expect("submitted")
    });
    assert_eq!(cqe.result().unwrap(), 64 * 1024);
    assert!(!cqe.more(), "nothing more comes: {cqe:?}");
    assert!(io_uring::cqueue::notif(cqe.flags), "{cqe:?}");
    let mut got = vec![0u8; 64 * 1024];
    std::io::Read::read_exact(&mut receiver, &mut got).unwrap();
    assert!(got.iter().all(|&b| b == 5));
}

/// Op data whose destructor panics, holding the timespec a timeout's SQE
/// points at.
struct PanicsOnDrop(Box<types::Timespec>);

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("op data destructor panicked (on purpose)");
    }
}

#[test]
fn a_native_op_data_destructor_that_panics_does_not_take_the_runtime_down() {
    let rt = one_shard();
    let h = rt.handle();
    rt.block_on(h.spawn(async {
        // SAFETY: the SQE points at the timespec the op's data owns.
        let single = unsafe {
            uring::submit(
                PanicsOnDrop(Box::new(types::Timespec::new().sec(60))),
                |d| opcode::Timeout::new(&*d.0).build(),
            )
        };
        // SAFETY: as above; a multishot timeout fires once a minute.
        let multi = unsafe {
            uring::submit_multishot(
                PanicsOnDrop(Box::new(types::Timespec::new().sec(60))),
                |d| {
                    opcode::Timeout::new(&*d.0)
                        .flags(types::TimeoutFlags::MULTISHOT)
                        .build()
                },
            )
        };
        let mut multi = multi;
        let mut single = std::pin::pin!(single);
        // Both go in flight, and are dropped there: the driver drops their
        // data at their final CQEs (after the cancels), on the event loop.
        {
            let mut next = std::pin::pin!(multi.next_cqe());
            std::future::poll_fn(|cx| {
                assert!(single.as_mut().poll(cx).is_pending());
                assert!(next.as_mut().poll(cx).is_pending());
                std::task::Poll::Ready(())
            })
            .await;
        }
    }))
    .expect("the task ran");
    // The runtime is still up: later ops and tasks run, and no panic
    // reached the event loop.
    for _ in 0..3 {
        let n = rt
            .block_on(h.spawn(async {
                spargio_rt::time::sleep(Duration::from_millis(1)).await;
                spargio_rt::fs::read("Cargo.toml").await.map(|b| b.len())
            }))
            .expect("a task runs after the panic")
            .expect("a file read runs after the panic");
        assert!(n > 0);
    }
    let stats = h.stats();
    assert_eq!(stats.shards.iter().map(|s| s.loop_panics).sum::<u64>(), 0);
}
