//! Accept loops: one per listener, pinned to the listener's shard. Each
//! takes a connection, then a `max_connections` permit for it (pausing the
//! multishot accept while none is free), and hands the connection to its
//! session shard.

use std::io;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_lock::Semaphore;
use futures_util::future::{select, Either};
use spargio_rt::net::{SocketStream, TcpListener};
use spargio_rt::ShardId;

use crate::conn::{Accepted, ConnGuard};
use crate::listener::{AnyIncoming, AnyListener};
use crate::shutdown::ServerState;

/// Hands an accepted connection to its session shard (spawns its task).
pub(crate) type Dispatch = Arc<dyn Fn(Accepted) + Send + Sync>;

/// Which shards an accept loop hands connections to.
pub(crate) enum Targets {
    /// Every shard in turn.
    RoundRobin(usize),
    /// Always this one.
    One(ShardId),
}

/// Where one accept loop's connections go, and what it knows about them
/// without asking the kernel.
struct Placement {
    targets: Targets,
    /// Connections handed over so far (the round-robin position).
    turn: usize,
    /// The local address of every connection this listener accepts, when
    /// the listener is bound to one IP (not `0.0.0.0` or `[::]`): saves a
    /// `getsockname` per connection.
    local_addr: Option<SocketAddr>,
}

impl Placement {
    fn new(listener: &AnyListener, targets: Targets) -> Placement {
        let local_addr = match listener {
            AnyListener::Tcp(l) => l
                .local_addr()
                .ok()
                .filter(|a| binds_one_ip(a) && !is_transparent(l, a)),
            // A Unix connection's address is not an IP address.
            AnyListener::Unix(_) => None,
        };
        Placement {
            targets,
            turn: 0,
            local_addr,
        }
    }

    fn next_shard(&mut self) -> ShardId {
        match self.targets {
            Targets::RoundRobin(n) => {
                let s = ShardId(self.turn % n);
                self.turn = self.turn.wrapping_add(1);
                s
            }
            Targets::One(s) => s,
        }
    }
}

/// Whether `listener` (bound to `addr`) may accept connections addressed
/// to other addresses than its own: `IP_TRANSPARENT` / `IPV6_TRANSPARENT`
/// (a TPROXY listener), whose connections keep their original destination
/// as their local address. `true` when it cannot tell.
/// Whether a listener bound to `addr` takes connections to that one IP
/// only: not `0.0.0.0`, `[::]`, or `[::ffff:0.0.0.0]` (which a dual-stack
/// socket takes for every IPv4 address).
fn binds_one_ip(addr: &SocketAddr) -> bool {
    match addr.ip() {
        std::net::IpAddr::V4(v4) => !v4.is_unspecified(),
        std::net::IpAddr::V6(v6) => {
            !v6.is_unspecified() && !v6.to_ipv4_mapped().is_some_and(|v4| v4.is_unspecified())
        }
    }
}

fn is_transparent(listener: &TcpListener, addr: &SocketAddr) -> bool {
    use std::os::fd::AsRawFd;
    let (level, name) = if addr.is_ipv4() {
        (libc::SOL_IP, libc::IP_TRANSPARENT)
    } else {
        (libc::SOL_IPV6, libc::IPV6_TRANSPARENT)
    };
    let mut on: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `on` and `len` are live locals of the sizes passed; the
    // listener's fd is open for the duration of the call.
    let rc = unsafe {
        libc::getsockopt(
            listener.as_raw_fd(),
            level,
            name,
            (&mut on as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    rc != 0 || on != 0
}

/// What all accept loops of a server share.
pub(crate) struct AcceptShared {
    pub(crate) state: Arc<ServerState>,
    pub(crate) permits: Arc<Semaphore>,
    pub(crate) next_id: AtomicU64,
    pub(crate) nodelay: bool,
    pub(crate) dispatch: Dispatch,
}

/// The first back-off after running out of file descriptors; doubles up to
/// [`MAX_BACKOFF`] while accepts keep failing.
const FIRST_BACKOFF: Duration = Duration::from_millis(1);
const MAX_BACKOFF: Duration = Duration::from_millis(500);
/// Consecutive failures of other kinds after which the loop backs off too.
const ERRORS_BEFORE_BACKOFF: u32 = 8;

fn out_of_fds(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Accepts on `listener` until shutdown starts.
pub(crate) async fn accept_loop(
    listener: AnyListener,
    targets: Targets,
    shared: Arc<AcceptShared>,
) {
    let mut incoming = listener.incoming();
    let mut place = Placement::new(&listener, targets);
    let mut backoff = FIRST_BACKOFF;
    let mut failures = 0u32;
    let closing = shared.state.closing.clone();
    let counters = shared.state.counters.clone();
    loop {
        let res = {
            // Shutdown first: while connections keep arriving (a flood)
            // the accept is always ready and `select` below never polls
            // `stop`, so the loop would go on handing over connections
            // after shutdown began and the shutdown deadline (which starts
            // once every accept loop has returned) would never start. A
            // flag load, not a poll of `stop`: that registers with the
            // token's lock on every connection.
            if closing.is_cancelled() {
                return;
            }
            let next = incoming.next();
            let stop = closing.cancelled();
            futures_util::pin_mut!(next, stop);
            match select(next, stop).await {
                // Woken by both: the shutdown wins here too.
                Either::Left(_) if closing.is_cancelled() => return,
                Either::Left((res, _)) => res,
                Either::Right(_) => return,
            }
        };
        match res {
            Ok(stream) => {
                backoff = FIRST_BACKOFF;
                failures = 0;
                // A connection first, then its place: a waiting accept
                // holds no place, so with one listener per shard
                // (`ReusePort`) a connection the kernel gave to one shard
                // never waits for a place another shard's idle accept
                // holds.
                if let Some(permit) = shared.permits.try_acquire_arc() {
                    hand_over(stream, permit, &mut place, &shared);
                    continue;
                }
                // At the limit: stop the multishot accept; this connection,
                // then those it had already taken, are served in order as
                // places free; new ones wait in the listen backlog.
                counters.accept_pauses.add(1);
                incoming.pause();
                if !serve_when_placed(stream, &mut place, &shared).await {
                    return;
                }
                if !drain_paused(&mut incoming, &mut place, &shared).await {
                    return;
                }
            }
            Err(e) => {
                counters.accept_errors.add(1);
                failures += 1;
                if out_of_fds(&e) || failures >= ERRORS_BEFORE_BACKOFF {
                    counters.accept_backoffs.add(1);
                    let nap = spargio_rt::time::sleep(backoff);
                    let stop = closing.cancelled();
                    futures_util::pin_mut!(nap, stop);
                    if let Either::Right(_) = select(nap, stop).await {
                        return;
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

/// Waits for a place for `stream` and hands it over. Returns false (and
/// closes `stream`) when shutdown starts first.
async fn serve_when_placed(
    stream: SocketStream,
    place: &mut Placement,
    shared: &Arc<AcceptShared>,
) -> bool {
    let wait = shared.permits.acquire_arc();
    let stop = shared.state.closing.cancelled();
    futures_util::pin_mut!(wait, stop);
    match select(wait, stop).await {
        // Shutdown first, as in the accept loop.
        Either::Left(_) if shared.state.closing.is_cancelled() => false,
        // Returning drops `wait`: a wake-up it was given and did not need
        // (it found its place free) passes on to the next waiter (see the
        // test `two_places_given_back_together_wake_two_paused_accept_loops`).
        Either::Left((permit, _)) => {
            hand_over(stream, permit, place, shared);
            true
        }
        Either::Right(_) => false,
    }
}

/// Serves the connections a paused multishot accept had already taken,
/// each as a place frees. Returns false when shutdown started meanwhile.
async fn drain_paused(
    incoming: &mut AnyIncoming,
    place: &mut Placement,
    shared: &Arc<AcceptShared>,
) -> bool {
    while let Some(res) = incoming.next_paused().await {
        let Ok(stream) = res else {
            shared.state.counters.accept_errors.add(1);
            continue;
        };
        if !serve_when_placed(stream, place, shared).await {
            return false;
        }
    }
    true
}

fn hand_over(
    stream: SocketStream,
    permit: async_lock::SemaphoreGuardArc,
    place: &mut Placement,
    shared: &Arc<AcceptShared>,
) {
    if shared.nodelay {
        let _ = stream.set_nodelay(true);
    }
    let shard = place.next_shard();
    let guard = ConnGuard::new(shared.state.clone(), shard, permit);
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let accepted = Accepted {
        stream,
        id,
        guard,
        local_addr: place.local_addr,
    };
    // Dispatch clones the user's make-service and protocol; a clone that
    // panics loses this connection (closed, its place given back while
    // unwinding), not the accept loop.
    if catch_unwind(AssertUnwindSafe(|| (shared.dispatch)(accepted))).is_err() {
        shared.state.counters.make_errors.add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(addr: &str) -> Option<(TcpListener, SocketAddr)> {
        let std = std::net::TcpListener::bind(addr).ok()?;
        let bound = std.local_addr().unwrap();
        Some((TcpListener::from_std(std), bound))
    }

    fn set_transparent(l: &TcpListener, addr: &SocketAddr) -> bool {
        use std::os::fd::AsRawFd;
        let (level, name) = if addr.is_ipv4() {
            (libc::SOL_IP, libc::IP_TRANSPARENT)
        } else {
            (libc::SOL_IPV6, libc::IPV6_TRANSPARENT)
        };
        let on: libc::c_int = 1;
        // SAFETY: `on` is a live c_int of the size passed; the fd is open.
        let rc = unsafe {
            libc::setsockopt(
                l.as_raw_fd(),
                level,
                name,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        rc == 0
    }

    /// A waker that counts its wakes.
    struct Flag(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Under `ReusePort` every shard's paused accept loop waits on the one
    /// semaphore. async-lock gives a place back with a `notify(1)`, which
    /// wakes nobody while a waiter is already woken and has not run: two
    /// places given back in one turn (two connections ending at the same
    /// idle-timeout tick) wake one loop. The second is still woken because
    /// the first takes its place without consuming the notification, and
    /// passes it on when its acquire future is dropped, which
    /// [`serve_when_placed`] does as soon as it has handed the connection
    /// over. This test keeps a change there, or a dependency upgrade, from
    /// leaving a place free while a loop sleeps.
    #[test]
    fn two_places_given_back_together_wake_two_paused_accept_loops() {
        use std::future::Future;
        use std::task::{Context, Poll, Waker};
        let permits = Arc::new(Semaphore::new(2));
        let held = [
            permits.try_acquire_arc().unwrap(),
            permits.try_acquire_arc().unwrap(),
        ];
        let flags = [
            Arc::new(Flag(Default::default())),
            Arc::new(Flag(Default::default())),
        ];
        let wakers = flags.clone().map(Waker::from);
        let mut waits = [
            Some(Box::pin(permits.acquire_arc())),
            Some(Box::pin(permits.acquire_arc())),
        ];
        for (wait, waker) in waits.iter_mut().zip(&wakers) {
            let wait = wait.as_mut().unwrap();
            let pending = wait.as_mut().poll(&mut Context::from_waker(waker));
            assert!(pending.is_pending());
        }
        drop(held);
        let first = flags.iter().position(|f| f.0.load(Ordering::SeqCst) > 0);
        let first = first.expect("a place was given back and no waiter was woken");
        let wait = waits[first].as_mut().unwrap();
        let got = wait.as_mut().poll(&mut Context::from_waker(&wakers[first]));
        let Poll::Ready(_place) = got else {
            panic!("the woken waiter found no place");
        };
        // As `serve_when_placed` returns.
        waits[first] = None;
        let other = 1 - first;
        assert!(
            flags[other].0.load(Ordering::SeqCst) > 0,
            "a place is free and the other waiter was never woken"
        );
        let wait = waits[other].as_mut().unwrap();
        let got = wait.as_mut().poll(&mut Context::from_waker(&wakers[other]));
        assert!(got.is_ready());
    }

    #[test]
    fn a_plain_listener_is_not_transparent_and_a_tproxy_one_is() {
        let (v4, a4) = listener("127.0.0.1:0").expect("bind 127.0.0.1");
        assert!(!is_transparent(&v4, &a4));
        // Setting the option takes CAP_NET_ADMIN; without it only the
        // plain case is checked.
        if set_transparent(&v4, &a4) {
            assert!(is_transparent(&v4, &a4));
        }
        if let Some((v6, a6)) = listener("[::1]:0") {
            assert!(!is_transparent(&v6, &a6));
            if set_transparent(&v6, &a6) {
                assert!(is_transparent(&v6, &a6));
            }
        }
    }
}
