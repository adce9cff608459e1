//! The cached Date header.

use std::time::{Duration, SystemTime};

use crate::h1::date::format_secs;
use crate::h1::http_date;

#[test]
fn date_format_is_imf_fixdate() {
    assert_eq!(&format_secs(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
    assert_eq!(&format_secs(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
}

#[test]
fn http_date_is_now() {
    let value = http_date();
    assert_eq!(value.len(), 29);
    let parsed = httpdate::parse_http_date(value.to_str().unwrap()).unwrap();
    let now = SystemTime::now();
    let age = now.duration_since(parsed).unwrap_or(Duration::ZERO);
    assert!(age <= Duration::from_secs(2), "date is {age:?} old");
    assert!(parsed <= now + Duration::from_secs(1));
}

#[test]
fn http_date_is_cached_within_a_second() {
    // Two reads in the same second share the cached value (same bytes, and
    // the same allocation); retry if a second boundary fell between them.
    for _ in 0..5 {
        let a = http_date();
        let b = http_date();
        if a == b {
            assert_eq!(
                a.as_bytes().as_ptr(),
                b.as_bytes().as_ptr(),
                "cached value is shared"
            );
            return;
        }
    }
    panic!("consecutive dates always differed");
}

#[test]
fn http_date_refreshes_when_the_second_changes() {
    let first = http_date();
    std::thread::sleep(Duration::from_millis(1100));
    let second = http_date();
    assert_ne!(first, second);
    let a = httpdate::parse_http_date(first.to_str().unwrap()).unwrap();
    let b = httpdate::parse_http_date(second.to_str().unwrap()).unwrap();
    assert!(b > a);
}
