//! Process CPU time (user + system, all threads) from `getrusage`.

use std::time::Duration;

/// User + system CPU time consumed by this process so far.
pub fn process_cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: getrusage writes a complete `rusage` through the valid pointer
    // we pass; RUSAGE_SELF cannot fail with a valid pointer.
    let usage = unsafe {
        let rc = libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        assert_eq!(rc, 0, "getrusage: {}", std::io::Error::last_os_error());
        usage.assume_init()
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}
