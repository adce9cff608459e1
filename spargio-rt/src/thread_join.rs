//! Joining a runtime's threads by a deadline.
//!
//! `std::thread::JoinHandle::join` cannot time out, so shutdown used to wait
//! on a condition variable that each shard thread signalled on its way
//! out, then join: two wake-ups of the joining thread in a row, each a few
//! tens of microseconds on a VM. `pthread_timedjoin_np` waits for the
//! thread's exit itself, with a timeout: one wake-up.

use std::os::unix::thread::JoinHandleExt;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Joins `thread`, waiting until `deadline` at most (`None`: for as long
/// as it takes). Returns whether it was joined; a thread still running at
/// the deadline is detached and finishes on its own.
///
/// The timed wait is on the system's real-time clock (the only one glibc's
/// and musl's timed join take): a clock set back while waiting lengthens
/// the wait by as much, one set forward is noticed and waited out.
pub(crate) fn join_by(thread: JoinHandle<()>, deadline: Option<Instant>) -> bool {
    let Some(deadline) = deadline else {
        // A panic that escaped the thread was reported by the thread.
        let _ = thread.join();
        return true;
    };
    if thread.is_finished() {
        let _ = thread.join();
        return true;
    }
    let raw = thread.into_pthread_t();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(at) = realtime_after(left) else {
            break;
        };
        // SAFETY: `raw` came from `into_pthread_t`, which handed us the
        // only claim on the thread; it has been neither joined nor
        // detached. The result pointer is null (the value is not wanted)
        // and `at` is a valid timespec.
        let rc = unsafe {
            libc::pthread_timedjoin_np(raw as libc::pthread_t, std::ptr::null_mut(), &at)
        };
        if rc == 0 {
            return true;
        }
        if rc != libc::ETIMEDOUT || Instant::now() >= deadline {
            break;
        }
    }
    // SAFETY: as above; after this the thread releases itself when it ends.
    unsafe { libc::pthread_detach(raw as libc::pthread_t) };
    false
}

/// The real-time clock's reading `left` from now, for a timed join.
fn realtime_after(left: Duration) -> Option<libc::timespec> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec for the kernel to fill in.
    if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut now) } != 0 {
        return None;
    }
    let nanos = now.tv_nsec as u64 + u64::from(left.subsec_nanos());
    let secs = (now.tv_sec as u64)
        .saturating_add(left.as_secs())
        .saturating_add(nanos / 1_000_000_000);
    Some(libc::timespec {
        tv_sec: secs.min(i64::MAX as u64) as libc::time_t,
        tv_nsec: (nanos % 1_000_000_000) as libc::c_long,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn a_thread_that_ends_in_time_is_joined() {
        let t = std::thread::spawn(|| std::thread::sleep(Duration::from_millis(20)));
        assert!(join_by(t, Some(Instant::now() + Duration::from_secs(10))));
    }

    #[test]
    fn a_thread_still_running_at_the_deadline_is_left_to_finish() {
        let (tx, rx) = mpsc::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel();
        let t = std::thread::spawn(move || {
            let _ = rx.recv();
            let _ = done_tx.send(());
        });
        assert!(!join_by(
            t,
            Some(Instant::now() + Duration::from_millis(20))
        ));
        // Detached, not killed: it still runs once let go.
        drop(tx);
        done_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the detached thread ran to its end");
    }

    #[test]
    fn without_a_deadline_join_waits_for_the_end() {
        let t = std::thread::spawn(|| std::thread::sleep(Duration::from_millis(20)));
        assert!(join_by(t, None));
    }
}
