//! Turning a request path into a relative filesystem path, safely.
//!
//! Only the lexical part lives here: percent-decoding and refusing every
//! segment that could climb out of the root or smuggle a separator.
//! Symlinks are kept under the root by the kernel as the path is opened,
//! see [`super::confine`].

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use percent_encoding::percent_decode;

/// A request path that passed the lexical checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestPath {
    /// The decoded segments joined as a relative path (empty for `/`).
    pub(crate) relative: PathBuf,
    /// Whether the request path ended in `/` (asks for a directory).
    pub(crate) trailing_slash: bool,
    /// The last non-empty segment as it was sent (still percent-encoded),
    /// for a relative redirect `Location`; `None` for `/`.
    pub(crate) last_raw_segment: Option<String>,
}

/// Decodes and checks the path of a request URI (`uri.path()`; the query
/// is not part of it).
///
/// Empty segments (`//`) are skipped. Returns `None`, meaning "refuse",
/// if any segment, after percent-decoding, is `.` or `..`, or contains a
/// `/` (sent as `%2f`), a backslash (`\` or `%5c`) or a NUL byte, or if
/// the path does not start with `/`.
pub(crate) fn decode(path: &str) -> Option<RequestPath> {
    let rest = path.strip_prefix('/')?;
    let mut relative = PathBuf::new();
    let mut last_raw_segment = None;
    for raw in rest.split('/') {
        if raw.is_empty() {
            continue;
        }
        let decoded: Vec<u8> = percent_decode(raw.as_bytes()).collect();
        if !segment_is_safe(&decoded) {
            return None;
        }
        relative.push(OsStr::from_bytes(&decoded));
        last_raw_segment = Some(raw);
    }
    Some(RequestPath {
        relative,
        trailing_slash: path.ends_with('/'),
        last_raw_segment: last_raw_segment.map(str::to_owned),
    })
}

impl RequestPath {
    /// Whether any segment of the path starts with `.` (a dotfile or a
    /// dot-directory).
    pub(crate) fn is_hidden(&self) -> bool {
        self.relative
            .components()
            .any(|c| c.as_os_str().as_bytes().first() == Some(&b'.'))
    }
}

/// Whether one decoded segment may be used as a path component.
fn segment_is_safe(seg: &[u8]) -> bool {
    !seg.is_empty()
        && seg != b"."
        && seg != b".."
        && !seg.iter().any(|&b| b == b'/' || b == b'\\' || b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(path: &str) -> Option<PathBuf> {
        decode(path).map(|p| p.relative)
    }

    #[test]
    fn plain_paths_decode() {
        assert_eq!(rel("/"), Some(PathBuf::new()));
        assert_eq!(rel("/a/b.txt"), Some(PathBuf::from("a/b.txt")));
        assert_eq!(rel("//a///b"), Some(PathBuf::from("a/b")));
        assert_eq!(rel("/hello%20world"), Some(PathBuf::from("hello world")));
        assert_eq!(rel("/..a/b.."), Some(PathBuf::from("..a/b..")));
        assert_eq!(rel("/%zz"), Some(PathBuf::from("%zz")));
    }

    #[test]
    fn trailing_slash_and_last_segment() {
        let p = decode("/a/dir%20x/").unwrap();
        assert!(p.trailing_slash);
        assert_eq!(p.last_raw_segment.as_deref(), Some("dir%20x"));
        let p = decode("/").unwrap();
        assert!(p.trailing_slash);
        assert_eq!(p.last_raw_segment, None);
        assert!(!decode("/a").unwrap().trailing_slash);
    }

    #[test]
    fn traversal_is_refused() {
        for bad in [
            "/..",
            "/../secret",
            "/a/../../secret",
            "/./a",
            "/%2e%2e/secret",
            "/%2E%2E/secret",
            "/.%2e/secret",
            "/%2e/a",
            "/a/%2f..%2fsecret",
            "/a%2Fb",
            "/..%5csecret",
            "/..\\secret",
            "/a%00b",
            "relative",
            "",
        ] {
            assert_eq!(decode(bad), None, "{bad:?} should be refused");
        }
    }
}
