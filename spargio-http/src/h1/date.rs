//! The `Date` header value, formatted at most once per second per thread.

use std::cell::RefCell;
use std::time::{Duration, UNIX_EPOCH};

use bytes::BytesMut;
use http::HeaderValue;

/// Length of an IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub(super) const DATE_LEN: usize = 29;

/// One formatted second.
struct CachedDate {
    secs: u64,
    bytes: [u8; DATE_LEN],
    value: HeaderValue,
}

impl CachedDate {
    fn at(secs: u64) -> CachedDate {
        let text = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs));
        let mut bytes = [b' '; DATE_LEN];
        let n = text.len().min(DATE_LEN);
        bytes[..n].copy_from_slice(&text.as_bytes()[..n]);
        CachedDate {
            secs,
            bytes,
            value: HeaderValue::from_bytes(&bytes).unwrap_or(HeaderValue::from_static("")),
        }
    }
}

thread_local! {
    static DATE: RefCell<CachedDate> = RefCell::new(CachedDate::at(now_secs()));
}

/// Whole seconds since the epoch, from the coarse real-time clock: it
/// lags the precise one by at most a scheduler tick (a few milliseconds),
/// far inside the second a `Date` may be old, and costs a few nanoseconds
/// instead of a full clock read on every response.
fn now_secs() -> u64 {
    crate::coarse_clock::coarse_now().as_secs()
}

/// Runs `f` on this thread's cached date, refreshed if the second changed.
#[inline]
fn with_date<R>(f: impl FnOnce(&CachedDate) -> R) -> R {
    let secs = now_secs();
    DATE.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.secs != secs {
            *cached = CachedDate::at(secs);
        }
        f(&cached)
    })
}

/// The current time as a `Date` header value (IMF-fixdate, RFC 9110
/// §5.6.7), e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
///
/// Formatted once per second per thread and cached, so it is at most one
/// second old; a call costs a clock read and a reference-count increment.
pub fn http_date() -> HeaderValue {
    with_date(|d| d.value.clone())
}

/// Appends the current date (29 bytes) to `dst`.
#[inline]
pub(super) fn put_date(dst: &mut BytesMut) {
    with_date(|d| dst.extend_from_slice(&d.bytes));
}

/// The date formatted for `secs` since the epoch (for tests).
#[cfg(test)]
pub(super) fn format_secs(secs: u64) -> [u8; DATE_LEN] {
    CachedDate::at(secs).bytes
}
