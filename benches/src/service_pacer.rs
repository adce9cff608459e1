//! Open-loop pacing for the service load generator: when each request of a
//! connection is due.
//!
//! A paced connection sends at times drawn from a Poisson process (so the
//! 64 connections together are one Poisson process at the row's offered
//! rate) instead of right after the previous response. Latency is then
//! counted from the time a request was *due*, not from when it went out,
//! so a server that falls behind is charged for the requests it made wait
//! (no coordinated omission).
//!
//! tokio's own timer rounds to whole milliseconds, far coarser than the
//! gaps between requests, so each pacer waits on a `timerfd` of its own
//! (`CLOCK_MONOTONIC`, nanosecond resolution, armed for the time left until
//! the request is due) through tokio's `AsyncFd`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};
use tokio::io::unix::AsyncFd;

/// When one connection's requests are due.
pub struct Pacer {
    timer: AsyncFd<OwnedFd>,
    mean_gap: f64,
    rng: u64,
    due: Instant,
}

impl Pacer {
    /// A pacer whose requests come `mean_gap` apart on average
    /// (exponentially distributed gaps), starting now; `seed` makes each
    /// connection's sequence different and every run the same.
    pub fn new(mean_gap: Duration, seed: u64) -> io::Result<Pacer> {
        // SAFETY: timerfd_create takes no pointers; a non-negative return is
        // a new descriptor that we own from here on.
        let fd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just created above and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: the `OwnedFd` moves into the `AsyncFd`, which keeps it
        // open (and the same descriptor) until the `AsyncFd` is dropped.
        let timer = unsafe { AsyncFd::register(fd)? };
        Ok(Pacer {
            timer,
            mean_gap: mean_gap.as_secs_f64(),
            rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            due: Instant::now(),
        })
    }

    /// Waits until the next request is due and returns when it was due.
    /// A request already late (the previous response took longer than the
    /// gap) is due at once, and its latency still counts from its due time.
    pub async fn next(&mut self) -> io::Result<Instant> {
        let gap = self.exp_gap();
        self.due += Duration::from_secs_f64(gap);
        let now = Instant::now();
        if self.due > now {
            self.sleep(self.due - now).await?;
        }
        Ok(self.due)
    }

    /// An exponentially distributed gap with the pacer's mean, in seconds.
    fn exp_gap(&mut self) -> f64 {
        // xorshift64*; the top 53 bits as a uniform in (0, 1].
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let bits = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
        let uniform = (bits as f64 + 1.0) / (1u64 << 53) as f64;
        -uniform.ln() * self.mean_gap
    }

    /// Sleeps for `d` on the timerfd (a relative one-shot timer).
    async fn sleep(&mut self, d: Duration) -> io::Result<()> {
        // A zero it_value disarms the timer: wait at least 1 ns.
        let d = d.max(Duration::from_nanos(1));
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: d.as_secs() as libc::time_t,
                tv_nsec: libc::c_long::from(d.subsec_nanos() as i32),
            },
        };
        let fd = self.timer.get_ref().as_raw_fd();
        // SAFETY: `fd` is our live timerfd; `spec` is a valid itimerspec
        // that outlives the call; a null old-value pointer is allowed.
        let rc = unsafe { libc::timerfd_settime(fd, 0, &spec, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        loop {
            let mut guard = self.timer.readable().await?;
            let mut expirations = 0u64;
            // SAFETY: reads 8 bytes into a live, aligned u64 owned by this
            // frame from our timerfd.
            let n = unsafe {
                libc::read(
                    fd,
                    (&mut expirations as *mut u64).cast::<libc::c_void>(),
                    std::mem::size_of::<u64>(),
                )
            };
            if n == 8 {
                return Ok(());
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::WouldBlock {
                return Err(err);
            }
            guard.clear_ready();
        }
    }
}
