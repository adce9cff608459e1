//! Validators (`ETag`, `Last-Modified`) and the conditional request
//! headers that use them (RFC 9110 §8.8 and §13).
//!
//! The `ETag` is `"<size>-<mtime>"`, each in lowercase hex, the mtime in
//! nanoseconds since the Unix epoch (`0` when the filesystem gives none),
//! as nginx's is: no inode, so replicas deployed with the same mtimes
//! (rsync -a, tar, image layers) give the same tags. Writing a file, in
//! place or by renaming a new one over it, gives it a new mtime unless a
//! tool copies an old one over, which deploy tools do for the same
//! contents; so two different contents practically never share a tag,
//! and the tag is strong, usable with `If-Range` and `If-Match`. Except while the mtime is less than a second old (or in the
//! future, or missing): the kernel stamps mtimes from a clock that ticks
//! coarsely, so a second write within the same tick, of the same size,
//! would leave the tag unchanged. No tag is sent then (not even a weak
//! one: a client holding it would get a stale `304` for the second
//! write's contents, now and once the tag turns strong), and no tag in
//! `If-None-Match`, `If-Match` or `If-Range` matches it (`*` still does).
//!
//! An mtime before 1980 is not taken as one: it is a time pinned by a
//! build or packaging tool (the Nix store stamps every file with 1 s after
//! the epoch; some tools zero it), shared by every version of the file, so
//! two contents of one size would share the tag (a stale `304`, or an
//! `If-Range` resume that splices two versions). Such a file gets no
//! validators, as one whose filesystem gives no mtime.
//!
//! The `Last-Modified` date, in whole seconds, is weak in that window
//! too: a second write within the same second leaves it unchanged. It is
//! left out then, and neither `If-Modified-Since` nor a date in
//! `If-Range` is compared with it: a client that revalidates by date
//! alone gets the file again, never a stale `304`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{
    HeaderMap, HeaderName, HeaderValue, IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE,
    IF_UNMODIFIED_SINCE,
};
use spargio_rt::fs::Metadata;

/// 1 Jan 1980 00:00:00 UTC: an mtime before it is a pinned one, not a
/// time the file was written (see the module docs).
const FIRST_REAL_MTIME_SECS: u64 = 315_532_800;

/// The last second `httpdate` can format (31 Dec 9999 23:59:59 UTC).
const MAX_HTTP_DATE_SECS: u64 = 253_402_300_799;

/// A file's validators.
#[derive(Debug, Clone)]
pub(crate) struct Validators {
    /// The quoted entity tag, `"<size>-<mtime in ns>"` in hex (e.g.
    /// `"400-17f..."`), with `-<coding>` after for a precompressed file
    /// (`"400-17f...-gzip"`), without `W/`.
    etag: String,
    /// Whether the tag is weak: the mtime is too recent (or unknown) for
    /// the tag to be sure to change with the content. A weak tag is
    /// neither sent nor matched.
    etag_is_weak: bool,
    /// Modification time in whole seconds since the epoch, if the
    /// filesystem reports one that an HTTP date can carry.
    modified_secs: Option<u64>,
    /// Whether `modified_secs` is a strong validator (RFC 9110 §8.8.2.2):
    /// the second it names has passed, so the file cannot change again
    /// within it unseen. A file written this second (or dated in the
    /// future) has only a weak date.
    date_is_strong: bool,
    /// The judging clock's second when the validators were made: an
    /// `If-Unmodified-Since` date after it passes even with a weak date.
    now_secs: u64,
}

/// What the preconditions decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Precondition {
    /// Go on and serve.
    Proceed,
    /// `304 Not Modified`.
    NotModified,
    /// `412 Precondition Failed`.
    Failed,
}

impl Validators {
    /// The validators of a file with these metadata (from an `fstat` just
    /// done).
    ///
    /// The clock ([`Validators::clock`]) is read here, just after the
    /// `fstat`: the one-second window that makes a recent mtime weak is
    /// far wider than that delay.
    ///
    /// `coding` is the content coding of a precompressed file served in
    /// the original's place: it goes into the tag, since the `.gz` and
    /// `.zst` siblings of one file (compressors copy the original's mtime)
    /// of equal size are different representations, whose strong tags
    /// must differ (RFC 9110, 8.8.3).
    pub(crate) fn new(meta: &Metadata, coding: Option<&str>) -> Self {
        let now = Self::clock();
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .filter(|d| d.as_secs() >= FIRST_REAL_MTIME_SECS);
        let mtime_nanos = mtime.map_or(0, |d| d.as_nanos());
        // Size and mtime, as nginx does, and no inode: replicas behind a
        // load balancer deployed with the same mtimes (rsync -a, tar,
        // container layers) give the same tags, so a revalidation or a
        // resumed download that lands on another node still matches; and
        // inode numbers stay private.
        let etag = match coding {
            None => format!("\"{:x}-{:x}\"", meta.len(), mtime_nanos),
            Some(coding) => format!("\"{:x}-{:x}-{coding}\"", meta.len(), mtime_nanos),
        };
        // A modification time in the future (clock skew, an unpacked
        // archive) makes a weak date (`date_is_strong` below), so it is
        // never sent as `Last-Modified` nor used to answer
        // `If-Modified-Since`. It is taken as now (as RFC 9110, 8.8.2.1
        // has a future date replaced) only where a weak date is still
        // used, `If-Unmodified-Since`: a client's date at or after now
        // passes, instead of failing until the clock catches up.
        let now_secs = now.as_secs();
        let mtime_secs = mtime.map(|d| d.as_secs());
        let modified_secs = mtime_secs
            .map(|s| s.min(now_secs))
            .filter(|&s| s <= MAX_HTTP_DATE_SECS);
        Validators {
            etag,
            etag_is_weak: mtime.is_none_or(|m| m + Duration::from_secs(1) > now),
            modified_secs,
            date_is_strong: mtime_secs.is_some_and(|m| m < now_secs),
            now_secs,
        }
    }

    /// The time a file's mtime is judged against: the coarse real-time
    /// clock, which the kernel stamps mtimes from. The precise clock runs
    /// up to a tick ahead of it: just after a second begins by the precise
    /// clock, a write can still be stamped within the second before, so a
    /// date of that second judged strong by the precise clock could be
    /// shared by two contents, and a client revalidating by date alone get
    /// a stale `304`.
    fn clock() -> Duration {
        crate::coarse_clock::coarse_now()
    }

    /// The `ETag` header value, if the tag is strong (see the module docs:
    /// a weak one is not sent).
    pub(crate) fn etag_header(&self) -> Option<HeaderValue> {
        if self.etag_is_weak {
            return None;
        }
        // Hex digits, dashes, quotes and a coding's token only: always a
        // valid value.
        Some(
            HeaderValue::from_str(&self.etag)
                .expect("an ETag of hex digits is a valid header value"),
        )
    }

    /// The `Last-Modified` header value, if there is a usable mtime and
    /// its date is strong (its second has passed).
    pub(crate) fn last_modified_header(&self) -> Option<HeaderValue> {
        let secs = self.strong_date()?;
        let time = UNIX_EPOCH + std::time::Duration::from_secs(secs);
        HeaderValue::from_str(&httpdate::fmt_http_date(time)).ok()
    }

    /// Evaluates `If-Match`, `If-Unmodified-Since`, `If-None-Match` and
    /// `If-Modified-Since` in the order of RFC 9110 §13.2.2, for a GET or
    /// HEAD request.
    pub(crate) fn precondition(&self, headers: &HeaderMap) -> Precondition {
        if let Some(list) = tag_list(headers, &IF_MATCH) {
            if !self.matches(&list, true) {
                return Precondition::Failed;
            }
        } else if let Some(since) = date(headers, &IF_UNMODIFIED_SINCE) {
            // A weak date (modified this second) cannot show that no write
            // came after `since` within that second: the cautious answer,
            // unless `since` is a later second than now, after which
            // nothing has been written yet.
            if self
                .modified_secs
                .is_some_and(|m| m > since || (!self.date_is_strong && since <= self.now_secs))
            {
                return Precondition::Failed;
            }
        }
        if let Some(list) = tag_list(headers, &IF_NONE_MATCH) {
            if self.matches(&list, false) {
                return Precondition::NotModified;
            }
        } else if let Some(since) = date(headers, &IF_MODIFIED_SINCE) {
            // A weak date cannot tell a later write in the same second.
            if self.strong_date().is_some_and(|m| m <= since) {
                return Precondition::NotModified;
            }
        }
        Precondition::Proceed
    }

    /// The modification date, if it is a strong validator.
    fn strong_date(&self) -> Option<u64> {
        self.modified_secs.filter(|_| self.date_is_strong)
    }

    /// Whether a `Range` may be honoured given `If-Range` (RFC 9110
    /// §13.1.5): true without the header; with an entity tag, only if it
    /// is strongly equal to ours (both strong, same tag); with a date, only if it is exactly our
    /// `Last-Modified` and that date is strong (the file was not modified
    /// within the current second). Anything unparsable means "send
    /// everything".
    pub(crate) fn if_range_allows(&self, headers: &HeaderMap) -> bool {
        let mut values = headers.get_all(IF_RANGE).iter();
        let value = match (values.next(), values.next()) {
            (None, _) => return true,
            (Some(v), None) => v,
            (Some(_), Some(_)) => return false,
        };
        let Ok(value) = value.to_str() else {
            return false;
        };
        let value = value.trim();
        if value.starts_with('"') || value.starts_with("W/") {
            return !self.etag_is_weak
                && matches!(parse_tags(value), Some(TagList::Tags(tags))
                    if tags.len() == 1 && !tags[0].weak && tags[0].opaque == self.opaque());
        }
        match (parse_date(value), self.strong_date()) {
            (Some(d), Some(m)) => d == m,
            _ => false,
        }
    }

    /// The tag without its quotes.
    fn opaque(&self) -> &str {
        &self.etag[1..self.etag.len() - 1]
    }

    /// Whether `list` matches our tag: strong comparison (both strong and
    /// equal) or weak comparison (opaque parts equal). A weak tag of ours
    /// matches no listed tag at all: it was never sent, and the contents
    /// may have changed under it (a client's tag equal to it names an
    /// earlier write within the same tick).
    fn matches(&self, list: &TagList<'_>, strong: bool) -> bool {
        match list {
            TagList::Any => true,
            TagList::Tags(_) if self.etag_is_weak => false,
            TagList::Tags(tags) => tags
                .iter()
                .any(|t| t.opaque == self.opaque() && !(strong && t.weak)),
        }
    }
}

/// Evaluates the preconditions of a GET or HEAD request for a
/// representation that exists but has neither an entity tag nor a
/// modification date (a directory listing): `If-Match` holds only as `*`,
/// `If-None-Match: *` answers 304, and the date conditions are ignored
/// (RFC 9110 §13.1.1-§13.1.4).
pub(crate) fn precondition_without_validators(headers: &HeaderMap) -> Precondition {
    if tag_list(headers, &IF_MATCH).is_some_and(|list| list != TagList::Any) {
        return Precondition::Failed;
    }
    if tag_list(headers, &IF_NONE_MATCH) == Some(TagList::Any) {
        return Precondition::NotModified;
    }
    Precondition::Proceed
}

/// A parsed `If-Match` / `If-None-Match` value.
#[derive(Debug, PartialEq, Eq)]
enum TagList<'a> {
    /// `*`.
    Any,
    /// Entity tags.
    Tags(Vec<Tag<'a>>),
}

/// One entity tag.
#[derive(Debug, PartialEq, Eq)]
struct Tag<'a> {
    weak: bool,
    /// Between the quotes.
    opaque: &'a str,
}

/// All fields of `name` joined as one list. `None` if absent; a
/// malformed field yields an empty list (matches nothing).
fn tag_list<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Option<TagList<'h>> {
    let mut tags = Vec::new();
    let mut any_field = false;
    for value in headers.get_all(name) {
        any_field = true;
        match value.to_str().ok().and_then(parse_tags) {
            Some(TagList::Any) => return Some(TagList::Any),
            Some(TagList::Tags(t)) => tags.extend(t),
            None => {}
        }
    }
    any_field.then_some(TagList::Tags(tags))
}

/// Parses `*` or `#entity-tag`. Tags may contain commas (inside their
/// quotes), so this walks the value instead of splitting it.
fn parse_tags(value: &str) -> Option<TagList<'_>> {
    let value = value.trim();
    if value == "*" {
        return Some(TagList::Any);
    }
    let mut tags = Vec::new();
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            break;
        }
        let (weak, after) = match rest.strip_prefix("W/") {
            Some(after) => (true, after),
            None => (false, rest),
        };
        let after = after.strip_prefix('"')?;
        let end = after.find('"')?;
        let opaque = &after[..end];
        if !opaque
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b))
        {
            return None;
        }
        tags.push(Tag { weak, opaque });
        rest = &after[end + 1..];
        let trimmed = rest.trim_start_matches([' ', '\t']);
        if !(trimmed.is_empty() || trimmed.starts_with(',')) {
            return None;
        }
    }
    Some(TagList::Tags(tags))
}

/// The single `name` field as whole seconds since the epoch; `None` if
/// absent, repeated, or not a valid HTTP date (the header is then ignored).
fn date(headers: &HeaderMap, name: &HeaderName) -> Option<u64> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (Some(v), None) => parse_date(v.to_str().ok()?.trim()),
        _ => None,
    }
}

fn parse_date(s: &str) -> Option<u64> {
    let time = httpdate::parse_http_date(s).ok()?;
    time.duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validators(modified_secs: Option<u64>) -> Validators {
        Validators {
            etag: "\"abc-10-ff\"".to_owned(),
            etag_is_weak: false,
            modified_secs,
            date_is_strong: true,
            now_secs: 2000,
        }
    }

    fn headers(pairs: &[(HeaderName, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(name.clone(), HeaderValue::from_static(value));
        }
        h
    }

    const DATE_1000: &str = "Thu, 01 Jan 1970 00:16:40 GMT";
    const DATE_999: &str = "Thu, 01 Jan 1970 00:16:39 GMT";
    const DATE_1001: &str = "Thu, 01 Jan 1970 00:16:41 GMT";

    #[test]
    fn fs_mtimes_are_judged_by_a_clock_never_ahead_of_the_one_that_stamps_them() {
        // The precise clock is ahead of the coarse one by up to a tick
        // nearly always; the coarse clock read after is never behind a
        // coarse reading before it.
        for _ in 0..100 {
            let judged = Validators::clock();
            let stamping = crate::coarse_clock::coarse_now();
            assert!(judged <= stamping, "{judged:?} ahead of {stamping:?}");
        }
    }

    #[test]
    fn fs_parse_tags() {
        assert_eq!(parse_tags("*"), Some(TagList::Any));
        assert_eq!(
            parse_tags(r#""a", W/"b,c" ,"d""#),
            Some(TagList::Tags(vec![
                Tag {
                    weak: false,
                    opaque: "a"
                },
                Tag {
                    weak: true,
                    opaque: "b,c"
                },
                Tag {
                    weak: false,
                    opaque: "d"
                },
            ]))
        );
        assert_eq!(parse_tags("abc"), None);
        assert_eq!(parse_tags(r#""a"x"#), None);
        assert_eq!(parse_tags(r#""a"#), None);
    }

    #[test]
    fn fs_if_none_match() {
        let v = validators(Some(1000));
        let nm = |s| v.precondition(&headers(&[(IF_NONE_MATCH, s)]));
        assert_eq!(nm(r#""abc-10-ff""#), Precondition::NotModified);
        assert_eq!(nm(r#"W/"abc-10-ff""#), Precondition::NotModified);
        assert_eq!(nm(r#""x", "abc-10-ff""#), Precondition::NotModified);
        assert_eq!(nm("*"), Precondition::NotModified);
        assert_eq!(nm(r#""x""#), Precondition::Proceed);
        assert_eq!(nm("garbage"), Precondition::Proceed);
        // If-None-Match wins over If-Modified-Since.
        let h = headers(&[(IF_NONE_MATCH, r#""x""#), (IF_MODIFIED_SINCE, DATE_1000)]);
        assert_eq!(v.precondition(&h), Precondition::Proceed);
    }

    #[test]
    fn fs_if_modified_since() {
        let v = validators(Some(1000));
        let ims = |s| v.precondition(&headers(&[(IF_MODIFIED_SINCE, s)]));
        assert_eq!(ims(DATE_1000), Precondition::NotModified);
        assert_eq!(ims(DATE_999), Precondition::Proceed);
        assert_eq!(ims("yesterday"), Precondition::Proceed);
        let none = validators(None);
        let h = headers(&[(IF_MODIFIED_SINCE, DATE_1000)]);
        assert_eq!(none.precondition(&h), Precondition::Proceed);
    }

    #[test]
    fn fs_a_weak_date_is_not_sent_nor_compared() {
        // Modified within the current second: a later write in that
        // second would keep the date.
        let recent = Validators {
            date_is_strong: false,
            ..validators(Some(1000))
        };
        assert_eq!(recent.last_modified_header(), None);
        let ims = |s| recent.precondition(&headers(&[(IF_MODIFIED_SINCE, s)]));
        assert_eq!(ims(DATE_1000), Precondition::Proceed);
        assert_eq!(ims("Fri, 01 Jan 2100 00:00:00 GMT"), Precondition::Proceed);
        assert_eq!(
            validators(Some(1000)).last_modified_header().unwrap(),
            DATE_1000
        );
    }

    #[test]
    fn fs_if_match_and_unmodified_since() {
        let v = validators(Some(1000));
        let pre = |n: HeaderName, s| v.precondition(&headers(&[(n, s)]));
        assert_eq!(pre(IF_MATCH, r#""abc-10-ff""#), Precondition::Proceed);
        assert_eq!(pre(IF_MATCH, "*"), Precondition::Proceed);
        assert_eq!(pre(IF_MATCH, r#"W/"abc-10-ff""#), Precondition::Failed);
        assert_eq!(pre(IF_MATCH, r#""x""#), Precondition::Failed);
        assert_eq!(pre(IF_UNMODIFIED_SINCE, DATE_1000), Precondition::Proceed);
        assert_eq!(pre(IF_UNMODIFIED_SINCE, DATE_999), Precondition::Failed);
        // Modified within the current second: a later write in that second
        // would keep the date, so even a date not before it fails.
        let recent = Validators {
            date_is_strong: false,
            ..validators(Some(1000))
        };
        assert_eq!(
            recent.precondition(&headers(&[(IF_UNMODIFIED_SINCE, DATE_1000)])),
            Precondition::Failed
        );
        // ... up to now (the clock's second when the file was looked at);
        // a date after now passes, as nothing was written after it yet.
        let now = Validators {
            now_secs: 1000,
            ..recent
        };
        assert_eq!(
            now.precondition(&headers(&[(IF_UNMODIFIED_SINCE, DATE_1000)])),
            Precondition::Failed
        );
        assert_eq!(
            now.precondition(&headers(&[(IF_UNMODIFIED_SINCE, DATE_1001)])),
            Precondition::Proceed
        );
        // No date at all: the condition cannot be evaluated and is ignored.
        assert_eq!(
            validators(None).precondition(&headers(&[(IF_UNMODIFIED_SINCE, DATE_1000)])),
            Precondition::Proceed
        );
    }

    #[test]
    fn fs_if_range() {
        let v = validators(Some(1000));
        let ir = |s| v.if_range_allows(&headers(&[(IF_RANGE, s)]));
        assert!(v.if_range_allows(&HeaderMap::new()));
        assert!(ir(r#""abc-10-ff""#));
        assert!(!ir(r#"W/"abc-10-ff""#));
        assert!(!ir(r#""other""#));
        assert!(ir(DATE_1000));
        assert!(!ir(DATE_999));
        assert!(!ir("nonsense"));
        assert!(!validators(None).if_range_allows(&headers(&[(IF_RANGE, DATE_1000)])));
        // Modified within the current second: the date is weak, and a weak
        // validator never lets a range through.
        let recent = Validators {
            date_is_strong: false,
            ..validators(Some(1000))
        };
        assert!(!recent.if_range_allows(&headers(&[(IF_RANGE, DATE_1000)])));
        assert!(recent.if_range_allows(&headers(&[(IF_RANGE, r#""abc-10-ff""#)])));
    }

    #[test]
    fn fs_weak_etag() {
        let v = Validators {
            etag_is_weak: true,
            ..validators(Some(1000))
        };
        assert_eq!(v.etag_header(), None);
        assert_eq!(
            validators(Some(1000)).etag_header().unwrap(),
            "\"abc-10-ff\""
        );
        let pre = |n: HeaderName, s| v.precondition(&headers(&[(n, s)]));
        // Not even weak comparison matches a weak tag: the contents may
        // have changed under it. `*` still answers 304.
        assert_eq!(
            pre(IF_NONE_MATCH, r#"W/"abc-10-ff""#),
            Precondition::Proceed
        );
        assert_eq!(pre(IF_NONE_MATCH, r#""abc-10-ff""#), Precondition::Proceed);
        assert_eq!(pre(IF_NONE_MATCH, "*"), Precondition::NotModified);
        // Strong comparison never matches a weak tag: If-Match fails
        // (unless `*`), If-Range sends everything.
        assert_eq!(pre(IF_MATCH, r#""abc-10-ff""#), Precondition::Failed);
        assert_eq!(pre(IF_MATCH, r#"W/"abc-10-ff""#), Precondition::Failed);
        assert_eq!(pre(IF_MATCH, "*"), Precondition::Proceed);
        assert!(!v.if_range_allows(&headers(&[(IF_RANGE, r#""abc-10-ff""#)])));
    }
}
