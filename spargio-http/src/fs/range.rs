//! `Range: bytes=...` parsing and evaluation against a file's size
//! (RFC 9110 §14).

use http::header::{HeaderMap, RANGE};

/// What a request's `Range` header asks for, given the file size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeRequest {
    /// No usable range: serve the whole file with `200`. Covers a missing
    /// header, a malformed one, another unit than `bytes`, more than one
    /// range (multipart responses are not produced), and any range on an
    /// empty file.
    Full,
    /// One satisfiable range, inclusive bounds clamped to the file: `206`.
    Partial {
        /// First byte.
        start: u64,
        /// Last byte (inclusive).
        end: u64,
    },
    /// A well-formed single range that lies past the end of the file:
    /// `416` with `Content-Range: bytes */size`.
    Unsatisfiable,
}

/// One `range-spec` of a `bytes=` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spec {
    /// `first-last` (`last` saturated to `u64::MAX` on overflow).
    Bounded(u64, u64),
    /// `first-`.
    From(u64),
    /// `-n`: the last `n` bytes.
    Suffix(u64),
}

/// Evaluates the request's `Range` header(s) against a file of `size`
/// bytes.
pub(crate) fn evaluate(headers: &HeaderMap, size: u64) -> RangeRequest {
    let mut values = headers.get_all(RANGE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        // None, or several Range fields: ignore.
        return RangeRequest::Full;
    };
    let Ok(value) = value.to_str() else {
        return RangeRequest::Full;
    };
    let Some(specs) = parse(value) else {
        return RangeRequest::Full;
    };
    if specs.len() != 1 || size == 0 {
        return RangeRequest::Full;
    }
    match specs[0] {
        Spec::Bounded(first, _) | Spec::From(first) if first >= size => RangeRequest::Unsatisfiable,
        Spec::Bounded(first, last) => RangeRequest::Partial {
            start: first,
            end: last.min(size - 1),
        },
        Spec::From(first) => RangeRequest::Partial {
            start: first,
            end: size - 1,
        },
        Spec::Suffix(0) => RangeRequest::Unsatisfiable,
        Spec::Suffix(n) => RangeRequest::Partial {
            start: size.saturating_sub(n),
            end: size - 1,
        },
    }
}

/// Parses `bytes=spec, spec, ...`; `None` if malformed. The unit is
/// case-insensitive and empty list elements are allowed (RFC 9110 §5.6.1).
fn parse(value: &str) -> Option<Vec<Spec>> {
    let value = value.trim();
    let (unit, set) = value.split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return None;
    }
    let mut specs = Vec::new();
    for part in set.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (first, last) = part.split_once('-')?;
        let (first, last) = (first.trim(), last.trim());
        let spec = match (first.is_empty(), last.is_empty()) {
            (true, true) => return None,
            (true, false) => Spec::Suffix(number(last)?),
            (false, true) => Spec::From(number(first)?),
            (false, false) => {
                let (first, last) = (number(first)?, number(last)?);
                if last < first {
                    return None;
                }
                Spec::Bounded(first, last)
            }
        };
        specs.push(spec);
    }
    if specs.is_empty() {
        return None;
    }
    Some(specs)
}

/// A run of ASCII digits as a number, saturating at `u64::MAX` (a huge
/// position is still a valid one: past any file's end).
fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.parse().unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn eval(range: &str, size: u64) -> RangeRequest {
        let mut h = HeaderMap::new();
        h.insert(RANGE, HeaderValue::from_str(range).unwrap());
        evaluate(&h, size)
    }

    fn part(start: u64, end: u64) -> RangeRequest {
        RangeRequest::Partial { start, end }
    }

    #[test]
    fn fs_range_forms() {
        assert_eq!(eval("bytes=0-9", 100), part(0, 9));
        assert_eq!(eval("bytes=10-", 100), part(10, 99));
        assert_eq!(eval("bytes=-10", 100), part(90, 99));
        assert_eq!(eval("bytes=-1000", 100), part(0, 99));
        assert_eq!(eval("bytes=50-1000", 100), part(50, 99));
        assert_eq!(eval("bytes=99-99", 100), part(99, 99));
        assert_eq!(eval("BYTES = 1-2 ", 100), part(1, 2));
        assert_eq!(eval("bytes=1-2,", 100), part(1, 2));
        assert_eq!(eval("bytes=0-99999999999999999999999", 100), part(0, 99));
        assert_eq!(eval("bytes=-99999999999999999999999", 100), part(0, 99));
    }

    #[test]
    fn fs_range_unsatisfiable() {
        assert_eq!(eval("bytes=100-", 100), RangeRequest::Unsatisfiable);
        assert_eq!(eval("bytes=100-200", 100), RangeRequest::Unsatisfiable);
        assert_eq!(eval("bytes=-0", 100), RangeRequest::Unsatisfiable);
        assert_eq!(
            eval("bytes=99999999999999999999999-", 100),
            RangeRequest::Unsatisfiable
        );
    }

    #[test]
    fn fs_range_ignored() {
        for v in [
            "bytes=5-1",
            "bytes=a-b",
            "bytes=-",
            "bytes=",
            "bytes=1",
            "bytes=+1-2",
            "items=0-1",
            "bytes 0-1",
            "bytes=0-1,5-6",
        ] {
            assert_eq!(eval(v, 100), RangeRequest::Full, "{v:?}");
        }
        assert_eq!(eval("bytes=0-1", 0), RangeRequest::Full);
        assert_eq!(evaluate(&HeaderMap::new(), 100), RangeRequest::Full);
        let mut h = HeaderMap::new();
        h.append(RANGE, HeaderValue::from_static("bytes=0-1"));
        h.append(RANGE, HeaderValue::from_static("bytes=2-3"));
        assert_eq!(evaluate(&h, 100), RangeRequest::Full);
    }
}
