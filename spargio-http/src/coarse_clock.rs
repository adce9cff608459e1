//! The coarse real-time clock: the one Linux stamps file times with, and
//! a cheap one for the `Date` header.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The time since the Unix epoch from `CLOCK_REALTIME_COARSE`.
///
/// It lags the precise clock by at most a scheduler tick (a few
/// milliseconds) and costs a few nanoseconds. It is also the clock the
/// kernel stamps modification times from, so a file's validators judge
/// "has this mtime's second passed" against it: by the precise clock a
/// second can have passed while writes are still stamped within it.
/// Falls back to the precise clock should the coarse one be unavailable.
pub(crate) fn coarse_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the
    // call; clock_gettime writes nothing else.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
    if rc == 0 {
        if let (Ok(secs), Ok(nanos)) = (u64::try_from(ts.tv_sec), u32::try_from(ts.tv_nsec)) {
            if nanos < 1_000_000_000 {
                return Duration::new(secs, nanos);
            }
        }
        return Duration::ZERO;
    }
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_coarse_clock_is_near_the_precise_one_and_never_ahead() {
        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let coarse = coarse_now();
        let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        assert!(coarse <= after, "{coarse:?} ahead of {after:?}");
        assert!(before - coarse.min(before) < Duration::from_secs(1));
    }
}
