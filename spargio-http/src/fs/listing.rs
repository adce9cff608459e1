//! Directory listings for [`ServeDir::list_directories`](super::ServeDir::list_directories):
//! an HTML page linking a directory's entries.

use std::ffi::CStr;
use std::io;
use std::os::fd::{IntoRawFd, OwnedFd};
use std::path::Path;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use http::request::Parts;
use http::{HeaderValue, Method, Response, StatusCode};
use percent_encoding::{percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::body::FileBody;
use super::conditional::{precondition_without_validators, Precondition};
use super::confine::open_dir_under;
use super::respond;
use super::root::Root;

/// Most entries a listing shows; a larger directory's page ends with how
/// many more it holds (the names are read on the blocking pool, and a
/// page of millions of links helps nobody).
pub(crate) const MAX_LISTED: usize = 10_000;

/// One entry of a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) name: Vec<u8>,
    pub(crate) is_dir: bool,
}

/// What was read of a directory: up to [`MAX_LISTED`] entries, sorted
/// (directories first, then by name), and how many more there were.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    pub(crate) entries: Vec<Entry>,
    pub(crate) not_listed: usize,
}

/// Answers a request for the directory `rel` under `root` with its
/// listing; `shown` is the request's path, for the page's title.
pub(crate) async fn list(
    root: &Root,
    rel: &Path,
    shown: &str,
    parts: &Parts,
) -> Response<FileBody> {
    let dir = match open_dir_under(root, rel).await {
        Ok(dir) => dir,
        Err(e) => return respond::io_error(&e),
    };
    // A listing exists but has no validators: only `If-Match: *` and
    // `If-None-Match` without `*` let it through.
    match precondition_without_validators(&parts.headers) {
        Precondition::Proceed => {}
        Precondition::NotModified => {
            let mut res = Response::new(FileBody::empty());
            *res.status_mut() = StatusCode::NOT_MODIFIED;
            res.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            return res;
        }
        Precondition::Failed => {
            let mut res = Response::new(FileBody::empty());
            *res.status_mut() = StatusCode::PRECONDITION_FAILED;
            res.headers_mut()
                .insert(CONTENT_LENGTH, HeaderValue::from(0u64));
            return res;
        }
    }
    let fd = match dir.into_std() {
        Ok(dir) => OwnedFd::from(dir),
        Err(e) => return respond::io_error(&e),
    };
    let listing = match spargio_rt::spawn_blocking(move || read_listing(fd)).await {
        Ok(Ok(listing)) => listing,
        Ok(Err(e)) => return respond::io_error(&e),
        Err(_) => return respond::io_error(&io::Error::other("the listing was not read")),
    };
    let page = Bytes::from(render(shown, &listing));
    let mut res = Response::new(FileBody::empty());
    let headers = res.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // The listing changes whenever the directory does, and has no
    // validators: a cache must ask again.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(page.len() as u64));
    if parts.method != Method::HEAD {
        *res.body_mut() = FileBody::from_bytes(page);
    }
    res
}

/// Reads the entries of the open directory `fd` (on the blocking pool):
/// all but `.`, `..` and hidden ones (names starting with `.`), at most
/// [`MAX_LISTED`] of them, sorted.
pub(crate) fn read_listing(fd: OwnedFd) -> io::Result<Listing> {
    read_listing_up_to(fd, MAX_LISTED)
}

/// [`read_listing`], showing at most `max` entries: the first `max` in the
/// listing's order (directories first, then by name), whatever order the
/// directory gives them in. At most `2 * max` are held at once.
fn read_listing_up_to(fd: OwnedFd, max: usize) -> io::Result<Listing> {
    // SAFETY: `fd` is an open directory fd we own; `fdopendir` takes it
    // over on success (closed by `closedir` below) and leaves it to us on
    // failure, when it is closed by the `OwnedFd` rebuilt below.
    let raw = fd.into_raw_fd();
    let dir = unsafe { libc::fdopendir(raw) };
    if dir.is_null() {
        let err = io::Error::last_os_error();
        // SAFETY: `fdopendir` failed, so `raw` is still ours alone.
        drop(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) });
        return Err(err);
    }
    let mut listing = Listing::default();
    let read = loop {
        // `readdir` reports an error only through `errno`, which it
        // leaves alone at the end of the directory.
        // SAFETY: writing `errno` of this thread.
        unsafe { *libc::__errno_location() = 0 };
        // SAFETY: `dir` is the open stream from `fdopendir`, used by this
        // thread only and not yet closed.
        let entry = unsafe { libc::readdir(dir) };
        if entry.is_null() {
            let errno = io::Error::last_os_error();
            break match errno.raw_os_error() {
                Some(0) | None => Ok(()),
                Some(_) => Err(errno),
            };
        }
        // SAFETY: a non-null `readdir` result points to an entry valid
        // until the next call on `dir`, with a NUL-terminated `d_name`.
        let (name, kind) = unsafe {
            let entry = &*entry;
            (
                CStr::from_ptr(entry.d_name.as_ptr()).to_bytes(),
                entry.d_type,
            )
        };
        if name.first() == Some(&b'.') {
            continue;
        }
        let is_dir = match kind {
            libc::DT_DIR => true,
            // The filesystem does not say: look (without following a
            // symlink, which is listed as a file and redirected to its
            // directory's slash if it names one under the root).
            // SAFETY: `dir` is open; `dirfd` only reads it.
            libc::DT_UNKNOWN => is_dir_at(unsafe { libc::dirfd(dir) }, name),
            _ => false,
        };
        listing.entries.push(Entry {
            name: name.to_vec(),
            is_dir,
        });
        if listing.entries.len() >= max.saturating_mul(2) {
            listing.keep_first(max);
        }
    };
    // SAFETY: `dir` came from `fdopendir` and is closed once, here.
    unsafe { libc::closedir(dir) };
    read?;
    listing.keep_first(max);
    Ok(listing)
}

impl Listing {
    /// Sorts the entries (directories first, then by name) and keeps the
    /// first `max`, counting the rest as not listed.
    fn keep_first(&mut self, max: usize) {
        self.entries
            .sort_unstable_by(|a, b| b.is_dir.cmp(&a.is_dir).then_with(|| a.name.cmp(&b.name)));
        if self.entries.len() > max {
            self.not_listed += self.entries.len() - max;
            self.entries.truncate(max);
        }
    }
}

/// Whether `name` in the directory `dirfd` is a directory (not following
/// a symlink); false when it cannot be told.
fn is_dir_at(dirfd: libc::c_int, name: &[u8]) -> bool {
    let Ok(name) = std::ffi::CString::new(name) else {
        return false;
    };
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `dirfd` is open, `name` is NUL-terminated, and `st` has room
    // for a `stat`, which the call fills in on success.
    let rc = unsafe {
        libc::fstatat(
            dirfd,
            name.as_ptr(),
            st.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc != 0 {
        return false;
    }
    // SAFETY: `fstatat` succeeded, so `st` is initialised.
    let st = unsafe { st.assume_init() };
    st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

/// Bytes kept as they are in a link to an entry: RFC 3986's unreserved
/// characters. Everything else is percent-encoded, so a name can never be
/// read as a scheme (`a:b`), a query (`?`), a fragment (`#`) or a path
/// separator.
const HREF_KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The HTML page of `listing`, titled with the request path `shown`.
pub(crate) fn render(shown: &str, listing: &Listing) -> String {
    let title = escape_html(shown);
    let mut page = String::with_capacity(256 + listing.entries.len() * 64);
    page.push_str("<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>Index of ");
    page.push_str(&title);
    page.push_str("</title>\n</head>\n<body>\n<h1>Index of ");
    page.push_str(&title);
    page.push_str("</h1>\n<ul>\n");
    if shown != "/" {
        page.push_str("<li><a href=\"../\">../</a></li>\n");
    }
    for entry in &listing.entries {
        let slash = if entry.is_dir { "/" } else { "" };
        let href = percent_encode(&entry.name, HREF_KEEP);
        let text = escape_html(&String::from_utf8_lossy(&entry.name));
        page.push_str(&format!(
            "<li><a href=\"./{href}{slash}\">{text}{slash}</a></li>\n"
        ));
    }
    page.push_str("</ul>\n");
    if listing.not_listed > 0 {
        page.push_str(&format!(
            "<p>{} more entries not listed.</p>\n",
            listing.not_listed
        ));
    }
    page.push_str("</body>\n</html>\n");
    page
}

/// `text` with HTML's special characters as character references.
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page title for a request path: percent-decoded, lossily as UTF-8.
pub(crate) fn shown_path(raw: &str) -> String {
    let decoded: Vec<u8> = percent_encoding::percent_decode(raw.as_bytes()).collect();
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &[u8], is_dir: bool) -> Entry {
        Entry {
            name: name.to_vec(),
            is_dir,
        }
    }

    #[test]
    fn a_cut_listing_shows_the_first_entries_in_its_order_not_the_directory_s() {
        let tmp = tempfile::TempDir::new().unwrap();
        let dir = tmp.path();
        for name in ["m", "c", "x", "a", "q", "b", "k"] {
            std::fs::write(dir.join(name), b"").unwrap();
        }
        std::fs::create_dir(dir.join("zz")).unwrap();
        let fd = OwnedFd::from(std::fs::File::open(dir).unwrap());
        let listing = read_listing_up_to(fd, 3).unwrap();
        let names: Vec<_> = listing.entries.iter().map(|e| e.name.as_slice()).collect();
        assert_eq!(names, [&b"zz"[..], b"a", b"b"]);
        assert_eq!(listing.not_listed, 5);
    }

    #[test]
    fn names_are_escaped_in_text_and_encoded_in_links() {
        let listing = Listing {
            entries: vec![entry(b"<b>&'\"#?:x y", false), entry(b"sub", true)],
            not_listed: 0,
        };
        let page = render("/a&b/", &listing);
        assert!(page.contains("<title>Index of /a&amp;b/</title>"), "{page}");
        assert!(
            page.contains(
                "<a href=\"./%3Cb%3E%26%27%22%23%3F%3Ax%20y\">&lt;b&gt;&amp;&#39;&quot;#?:x y</a>"
            ),
            "{page}"
        );
        assert!(page.contains("<a href=\"./sub/\">sub/</a>"), "{page}");
        assert!(page.contains("<a href=\"../\">"), "{page}");
        assert!(!page.contains("<b>"), "{page}");
    }

    #[test]
    fn the_root_has_no_parent_link_and_a_cut_listing_says_so() {
        let listing = Listing {
            entries: vec![entry(b"a", false)],
            not_listed: 3,
        };
        let page = render("/", &listing);
        assert!(!page.contains("../"), "{page}");
        assert!(page.contains("3 more entries not listed"), "{page}");
    }

    #[test]
    fn non_utf8_names_are_linked_byte_for_byte() {
        let listing = Listing {
            entries: vec![entry(b"caf\xe9", false)],
            not_listed: 0,
        };
        let page = render("/", &listing);
        assert!(page.contains("href=\"./caf%E9\""), "{page}");
        assert!(page.contains("caf\u{fffd}</a>"), "{page}");
    }

    #[test]
    fn reading_lists_dirs_first_sorted_and_skips_hidden_names() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("b.txt"), "").unwrap();
        std::fs::write(tmp.path().join("a.txt"), "").unwrap();
        std::fs::write(tmp.path().join(".hidden"), "").unwrap();
        std::fs::create_dir(tmp.path().join("zdir")).unwrap();
        let fd = OwnedFd::from(std::fs::File::open(tmp.path()).unwrap());
        let listing = read_listing(fd).unwrap();
        assert_eq!(
            listing.entries,
            vec![
                entry(b"zdir", true),
                entry(b"a.txt", false),
                entry(b"b.txt", false)
            ]
        );
        assert_eq!(listing.not_listed, 0);
    }

    #[test]
    fn reading_a_file_as_a_directory_fails() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("f"), "x").unwrap();
        let fd = OwnedFd::from(std::fs::File::open(tmp.path().join("f")).unwrap());
        let err = read_listing(fd).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOTDIR));
    }
}
