//! End-to-end tests of the file services, calling them directly.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http::header::{
    ACCEPT_ENCODING, ACCEPT_RANGES, ALLOW, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE,
    CONTENT_TYPE, ETAG, IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, IF_UNMODIFIED_SINCE,
    LAST_MODIFIED, LOCATION, RANGE, VARY,
};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::BodyExt;
use spargio_rt::{RuntimeHandle, ShardId};
use tempfile::TempDir;
use tower_service::Service;

use super::{FileBody, ServeDir, ServeFile};

/// 1 MiB + 17 bytes: more than one chunk, not a multiple of one.
const BIG_LEN: usize = 1024 * 1024 + 17;

fn big_content() -> Vec<u8> {
    (0..BIG_LEN).map(|i| (i * 31 % 251) as u8).collect()
}

/// A temp dir holding `root/` (served) and `secret` (outside the root).
pub(super) struct Site {
    _tmp: TempDir,
    pub(super) base: PathBuf,
    pub(super) root: PathBuf,
}

pub(super) fn site() -> Site {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().to_owned();
    let root = base.join("root");
    std::fs::create_dir_all(root.join("docs/deep")).unwrap();
    std::fs::create_dir_all(root.join("noindex")).unwrap();
    std::fs::write(root.join("big.bin"), big_content()).unwrap();
    std::fs::write(root.join("hello.txt"), "hello, world\n").unwrap();
    std::fs::write(root.join("hello world.txt"), "spaced").unwrap();
    std::fs::write(root.join("index.html"), "<h1>home</h1>").unwrap();
    std::fs::write(root.join("docs/index.html"), "<h1>docs</h1>").unwrap();
    std::fs::write(root.join("docs/deep/page.css"), "body{}").unwrap();
    std::fs::write(root.join("empty.txt"), "").unwrap();
    std::fs::write(base.join("secret"), "top secret").unwrap();
    // Written a while ago, as served files usually are: their validators
    // are strong. (A file modified within the last second has none sent;
    // the tests that want one set the mtime themselves.)
    let past = std::time::SystemTime::now() - Duration::from_secs(3600);
    for file in [
        "big.bin",
        "hello.txt",
        "hello world.txt",
        "index.html",
        "docs/index.html",
        "docs/deep/page.css",
        "empty.txt",
    ] {
        set_mtime(&root.join(file), past);
    }
    Site {
        _tmp: tmp,
        base,
        root,
    }
}

fn request(method: Method, uri: &str, headers: &[(http::HeaderName, &str)]) -> Request<()> {
    let mut req = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        req = req.header(name, *value);
    }
    req.body(()).unwrap()
}

pub(super) fn get(uri: &str) -> Request<()> {
    request(Method::GET, uri, &[])
}

pub(super) async fn call<S>(svc: &mut S, req: Request<()>) -> (http::response::Parts, Bytes)
where
    S: Service<Request<()>, Response = Response<FileBody>, Error = std::convert::Infallible>,
{
    let res = svc.call(req).await.unwrap();
    let (parts, body) = res.into_parts();
    let exact = body.size_hint().exact();
    let bytes = body.collect().await.unwrap().to_bytes();
    assert_eq!(exact, Some(bytes.len() as u64), "size hint is exact");
    (parts, bytes)
}

fn content_length(h: &HeaderMap) -> u64 {
    h[CONTENT_LENGTH].to_str().unwrap().parse().unwrap()
}

#[spargio_rt::test]
async fn fs_get_big_file_whole() {
    let site = site();
    let mut svc = ServeDir::new(&site.root);
    let (res, body) = call(&mut svc, get("/big.bin")).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.headers[CONTENT_TYPE], "application/octet-stream");
    assert_eq!(content_length(&res.headers), BIG_LEN as u64);
    assert_eq!(res.headers[ACCEPT_RANGES], "bytes");
    assert!(res.headers.contains_key(ETAG));
    assert!(res.headers.contains_key(LAST_MODIFIED));
    assert_eq!(body.len(), BIG_LEN);
    assert!(body == big_content());
}

#[spargio_rt::test]
async fn fs_hidden_paths_are_served_unless_turned_off() {
    let site = site();
    std::fs::write(site.root.join(".env"), "KEY=1").unwrap();
    std::fs::create_dir_all(site.root.join("docs/.git")).unwrap();
    std::fs::write(site.root.join("docs/.git/config"), "[core]").unwrap();
    let mut open = ServeDir::new(&site.root);
    let (res, body) = call(&mut open, get("/.env")).await;
    assert_eq!((res.status, &body[..]), (StatusCode::OK, &b"KEY=1"[..]));
    let mut closed = ServeDir::new(&site.root).serve_hidden(false);
    for hidden in ["/.env", "/docs/.git/config", "/docs/%2egit/config"] {
        let (res, body) = call(&mut closed, get(hidden)).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{hidden}");
        assert!(body.is_empty(), "{hidden}");
    }
    // Other files are served as before.
    let (res, body) = call(&mut closed, get("/hello.txt")).await;
    assert_eq!(
        (res.status, &body[..]),
        (StatusCode::OK, &b"hello, world\n"[..])
    );
}

#[spargio_rt::test]
async fn fs_content_type_and_query_ignored() {
    let site = site();
    let mut svc = ServeDir::new(&site.root);
    let (res, body) = call(&mut svc, get("/hello.txt?v=3&x")).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.headers[CONTENT_TYPE], "text/plain; charset=utf-8");
    assert_eq!(body, "hello, world\n");
    let (res, body) = call(&mut svc, get("/docs/deep/page.css")).await;
    assert_eq!(res.headers[CONTENT_TYPE], "text/css; charset=utf-8");
    assert_eq!(body, "body{}");
    let (res, body) = call(&mut svc, get("/hello%20world.txt")).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(body, "spaced");
}

#[spargio_rt::test]
async fn fs_etag_and_last_modified_values() {
    let site = site();
    let meta = std::fs::metadata(site.root.join("hello.txt")).unwrap();
    let mut svc = ServeDir::new(&site.root);
    let (res, _) = call(&mut svc, get("/hello.txt")).await;
    let etag = res.headers[ETAG].to_str().unwrap();
    let nanos = meta
        .modified()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    assert_eq!(etag, format!("\"{:x}-{:x}\"", meta.len(), nanos));
    let lm = res.headers[LAST_MODIFIED].to_str().unwrap();
    assert_eq!(lm, httpdate::fmt_http_date(meta.modified().unwrap()));
}

#[spargio_rt::test]
async fn fs_head_has_headers_no_body() {
    let site = site();
    let mut svc = ServeDir::new(&site.root);
    let (get_res, _) = call(&mut svc, get("/big.bin")).await;
    let (res, body) = call(&mut svc, request(Method::HEAD, "/big.bin", &[])).await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(body.is_empty());
    assert_eq!(content_length(&res.headers), BIG_LEN as u64);
    for name in [CONTENT_TYPE, ETAG, LAST_MODIFIED, ACCEPT_RANGES] {
        assert_eq!(res.headers[&name], get_res.headers[&name], "{name}");
    }
    // Range does not apply to HEAD.
    let (res, body) = call(
        &mut svc,
        request(Method::HEAD, "/big.bin", &[(RANGE, "bytes=0-9")]),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(body.is_empty());
    assert_eq!(content_length(&res.headers), BIG_LEN as u64);
}

#[spargio_rt::test]
async fn fs_ranges() {
    let site = site();
    let content = big_content();
    let size = BIG_LEN as u64;
    let mut svc = ServeDir::new(&site.root);
    let cases: &[(&str, u64, u64)] = &[
        ("bytes=0-9", 0, 9),
        ("bytes=65530-131080", 65530, 131080),
        ("bytes=1048570-", 1048570, size - 1),
        ("bytes=-100", size - 100, size - 1),
        ("bytes=-5000000", 0, size - 1),
        ("bytes=100-99999999", 100, size - 1),
    ];
    for &(range, start, end) in cases {
        let (res, body) = call(
            &mut svc,
            request(Method::GET, "/big.bin", &[(RANGE, range)]),
        )
        .await;
        assert_eq!(res.status, StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            res.headers[CONTENT_RANGE],
            format!("bytes {start}-{end}/{size}").as_str(),
            "{range}"
        );
        assert_eq!(content_length(&res.headers), end - start + 1);
        assert!(body == content[start as usize..=end as usize], "{range}");
        assert_eq!(res.headers[CONTENT_TYPE], "application/octet-stream");
    }
}

/// RFC 9110 §13.2.1: preconditions count only where the answer without
/// them would be a 2xx, so an unsatisfiable range is a 416 even when
/// `If-None-Match` matches (not a 304) or `If-Match` fails (not a 412).
#[spargio_rt::test]
async fn fs_unsatisfiable_range_beats_preconditions() {
    let site = site();
    let mut svc = ServeDir::new(&site.root);
    let (first, _) = call(&mut svc, get("/hello.txt")).await;
    let etag = first.headers[ETAG].to_str().unwrap().to_owned();
    for condition in [(IF_NONE_MATCH, etag.as_str()), (IF_MATCH, "\"other\"")] {
        let (res, body) = call(
            &mut svc,
            request(
                Method::GET,
                "/hello.txt",
                &[(RANGE, "bytes=999-"), condition.clone()],
            ),
        )
        .await;
        assert_eq!(
            res.status,
            StatusCode::RANGE_NOT_SATISFIABLE,
            "{condition:?}"
        );
        assert_eq!(res.headers[CONTENT_RANGE], "bytes */13");
        assert!(body.is_empty());
        // A satisfiable range with the same condition is decided by it.
        let (res, _) = call(
            &mut svc,
            request(
                Method::GET,
                "/hello.txt",
                &[(RANGE, "bytes=0-1"), condition],
            ),
        )
        .await;
        assert!(
            res.status == StatusCode::NOT_MODIFIED || res.status == StatusCode::PRECONDITION_FAILED,
            "{}",
            res.status
        );
    }
}

#[spargio_rt::test]
async fn fs_range_unsatisfiable_and_ignored() {
    let site = site();
    let mut svc = ServeDir::new(&site.root);
    for range in ["bytes=13-", "bytes=20-30", "bytes=-0"] {
        let (res, body) = call(
            &mut svc,
            request(Method::GET, "/hello.txt", &[(RANGE, range)]),
        )
        .await;
        assert_eq!(res.status, StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
        assert_eq!(res.headers[CONTENT_RANGE], "bytes */13");
        assert!(body.is_empty());
    }
    for range in ["bytes=5-1", "bytes=x-", "pages=1-2", "bytes=0-1,4-5"] {
        let (res, body) = call(
            &mut svc,
            request(Method::GET, "/hello.txt", &[(RANGE, range)]),
        )
        .await;
        assert_eq!(res.status, StatusCode::OK, "{range}");
        assert!(!res.headers.contains_key(CONTENT_RANGE));
        assert_eq!(body, "hello, world\n");
    }
    let (res, body) = call(
        &mut svc,
        request(Method::GET, "/empty.txt", &[(RANGE, "bytes=0-")]),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(content_length(&res.headers), 0);
    assert!(body.is_empty());
}

#[spargio_rt::test]
async fn fs_if_none_match_304() {
    let site = site();
    let mut svc = ServeDir::new(&site.root);
    let (first, _) = call(&mut svc, get("/hello.txt")).await;
    let etag = first.headers[ETAG].to_str().unwrap().to_owned();
    let weak = format!("W/{etag}");
    let list = format!("\"nope\", {etag}");
    for inm in [etag.as_str(), weak.as_str(), list.as_str(), "*"] {
        for method in [Method::GET, Method::HEAD] {
            let (res, body) = call(
                &mut svc,
                request(method.clone(), "/hello.txt", &[(IF_NONE_MATCH, inm)]),
            )
            .await;
            assert_eq!(res.status, StatusCode::NOT_MODIFIED, "{inm} {method}");
            assert!(body.is_empty());
            assert_eq!(res.headers[ETAG], first.headers[ETAG]);
            assert_eq!(res.headers[LAST_MODIFIED], first.headers[LAST_MODIFIED]);
        }
    }
    let (res, body) = call(
        &mut svc,
        request(Method::GET, "/hello.txt", &[(IF_NONE_MATCH, "\"other\"")]),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(body, "hello, world\n");
}

#[spargio_rt::test]
async fn fs_if_modified_since_304() {
    let site = site();
    let mut svc = ServeDir::new(&site.root);
    let (first, _) = call(&mut svc, get("/hello.txt")).await;
    let lm = first.headers[LAST_MODIFIED].to_str().unwrap().to_owned();
    let (res, body) = call(
        &mut svc,
        request(Method::GET, "/hello.txt", &[(IF_MODIFIED_SINCE, &lm)]),
    )
    .await;
    assert_eq!(res.status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
    assert_eq!(res.headers[ETAG], first.headers[ETAG]);
    let old = "Mon, 01 Jan 2001 00:00:00 GMT";
    let (res, body) = call(
        &mut svc,
        request(Method::GET, "/hello.txt", &[(IF_MODIFIED_SINCE, old)]),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(body, "hello, world\n");
    // If-None-Match that does not match wins over a matching date.
    let (res, _) = call(
        &mut svc,
        request(
            Method::GET,
            "/hello.txt",
            &[(IF_NONE_MATCH, "\"other\""), (IF_MODIFIED_SINCE, &lm)],
        ),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK);
}

/// A file dated ten years ahead has no `Last-Modified`: a future date
/// would make a client's later `If-Modified-Since` match (304) after the
/// file is replaced, and the date it could be sent as instead (now) is a
/// weak one. `If-Modified-Since` is not compared with it either. (The old
/// code sent now, and answered a client's copy of it with a 304.)
#[spargio_rt::test]
async fn fs_future_mtime_has_no_last_modified() {
    let site = site();
    let path = site.root.join("hello.txt");
    let ahead = std::time::SystemTime::now() + Duration::from_secs(10 * 365 * 86_400);
    set_mtime(&path, ahead);
    let mut svc = ServeDir::new(&site.root);
    let (first, _) = call(&mut svc, get("/hello.txt")).await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(!first.headers.contains_key(LAST_MODIFIED));
    let now = httpdate::fmt_http_date(std::time::SystemTime::now());
    let (res, body) = call(
        &mut svc,
        request(Method::GET, "/hello.txt", &[(IF_MODIFIED_SINCE, &now)]),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(body, "hello, world\n");
}

/// A file modified within the current second could be written again in
/// that second, with the same size, without its date changing: its
/// `Last-Modified` is left out, and a client revalidating by date alone
/// gets the file, not a stale 304. Once the second has passed, the date
/// is sent and compared. (Both weak-date checks failed on the old code.)
#[spargio_rt::test]
async fn fs_last_modified_is_left_out_while_the_date_is_weak() {
    let (site, mut svc) = site_with_hello_this_second();
    let hello = site.root.join("hello.txt");
    let (res, _) = call(&mut svc, get("/hello.txt")).await;
    assert!(!res.headers.contains_key(LAST_MODIFIED));
    // The date a client may hold for this second (as the old code sent).
    let this_second = httpdate::fmt_http_date(std::time::SystemTime::now());
    for method in [Method::GET, Method::HEAD] {
        let (res, _) = call(
            &mut svc,
            request(
                method.clone(),
                "/hello.txt",
                &[(IF_MODIFIED_SINCE, &this_second)],
            ),
        )
        .await;
        assert_eq!(res.status, StatusCode::OK, "{method}");
    }

    let past = std::time::SystemTime::now() - Duration::from_secs(120);
    set_mtime(&hello, past);
    let (res, _) = call(&mut svc, get("/hello.txt")).await;
    let lm = res.headers[LAST_MODIFIED].to_str().unwrap().to_owned();
    assert_eq!(lm, httpdate::fmt_http_date(past));
    let (res, body) = call(
        &mut svc,
        request(Method::GET, "/hello.txt", &[(IF_MODIFIED_SINCE, &lm)]),
    )
    .await;
    assert_eq!(res.status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
}

#[spargio_rt::test]
async fn fs_unix_socket_and_fifo_under_the_root_are_not_found() {
    let site = site();
    let _listener = std::os::unix::net::UnixListener::bind(site.root.join("app.sock")).unwrap();
    let fifo = std::ffi::CString::new(site.root.join("pipe").into_os_string().into_encoded_bytes())
        .unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only reads it.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let mut svc = ServeDir::new(&site.root);
    for path in ["/app.sock", "/pipe"] {
        let (res, body) = call(&mut svc, get(path)).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{path}");
        assert!(body.is_empty());
    }
}

#[spargio_rt::test]
async fn fs_if_range() {
    let site = site();
    let hello = site.root.join("hello.txt");
    // Modified well before this second, so its date is a strong validator.
    let past = std::time::SystemTime::now() - Duration::from_secs(120);
    set_mtime(&hello, past);
    let mut svc = ServeDir::new(&site.root);
    let (first, _) = call(&mut svc, get("/hello.txt")).await;
    let etag = first.headers[ETAG].to_str().unwrap().to_owned();
    let lm = first.headers[LAST_MODIFIED].to_str().unwrap().to_owned();
    let with = |if_range: &str| {
        request(
            Method::GET,
            "/hello.txt",
            &[(RANGE, "bytes=0-4"), (IF_RANGE, if_range)],
        )
    };
    let (res, body) = call(&mut svc, with(&etag)).await;
    assert_eq!(res.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body, "hello");
    let (res, body) = call(&mut svc, with(&lm)).await;
    assert_eq!(res.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body, "hello");
    for stale in [
        "\"stale\"",
        &format!("W/{etag}"),
        "Mon, 01 Jan 2001 00:00:00 GMT",
    ] {
        let (res, body) = call(&mut svc, with(stale)).await;
        assert_eq!(res.status, StatusCode::OK, "{stale}");
        assert_eq!(body, "hello, world\n");
    }

    // A file whose modification second has not passed (here: dated in the
    // future) has a weak date, which is not sent and never lets a range
    // through: it could change again within that second unseen.
    set_mtime(
        &hello,
        std::time::SystemTime::now() + Duration::from_secs(3600),
    );
    let (now, _) = call(&mut svc, get("/hello.txt")).await;
    assert!(!now.headers.contains_key(LAST_MODIFIED));
    let lm = httpdate::fmt_http_date(std::time::SystemTime::now());
    let (res, body) = call(&mut svc, with(&lm)).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(body, "hello, world\n");
}

/// `If-Unmodified-Since` against a weak date (here an mtime in the
/// future, taken as now): a date up to now fails (a write could still come
/// in this second), a date after now passes (nothing is written after it
/// yet).
#[spargio_rt::test]
async fn fs_if_unmodified_since_after_now_passes_with_a_weak_date() {
    let (_site, mut svc) = site_with_hello_this_second();
    let now = std::time::SystemTime::now();
    for (since, status) in [
        (now, StatusCode::PRECONDITION_FAILED),
        (now + Duration::from_secs(3600), StatusCode::OK),
    ] {
        let since = httpdate::fmt_http_date(since);
        let (res, _) = call(
            &mut svc,
            request(Method::GET, "/hello.txt", &[(IF_UNMODIFIED_SINCE, &since)]),
        )
        .await;
        assert_eq!(res.status, status, "{since}");
    }
}

/// A site whose `hello.txt` counts as modified within the current second
/// (its mtime a minute ahead, which stays "not yet a second old" however
/// slowly the requests are served), and a `ServeDir` over it.
fn site_with_hello_this_second() -> (Site, ServeDir) {
    let site = site();
    set_mtime(
        &site.root.join("hello.txt"),
        std::time::SystemTime::now() + Duration::from_secs(60),
    );
    let svc = ServeDir::new(&site.root);
    (site, svc)
}

/// Sets a file's modification time.
pub(super) fn set_mtime(path: &std::path::Path, time: std::time::SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(time)
        .unwrap();
}

#[spargio_rt::test]
async fn fs_index_html_and_redirect() {
    let site = site();
    let mut svc = ServeDir::new(&site.root);
    let (res, body) = call(&mut svc, get("/")).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.headers[CONTENT_TYPE], "text/html; charset=utf-8");
    assert_eq!(body, "<h1>home</h1>");
    let (res, body) = call(&mut svc, get("/docs/")).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(body, "<h1>docs</h1>");
    let (res, body) = call(&mut svc, get("/docs")).await;
    assert_eq!(res.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(res.headers[LOCATION], "./docs/");
    assert!(body.is_empty());
    let (res, _) = call(&mut svc, get("/docs/deep?x=1")).await;
    assert_eq!(res.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(res.headers[LOCATION], "./deep/?x=1");
    // A directory without index.html.
    let (res, _) = call(&mut svc, get("/noindex/")).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    // A file asked for as a directory.
    let (res, _) = call(&mut svc, get("/hello.txt/")).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);

    let mut plain = ServeDir::new(&site.root).append_index_html_on_directories(false);
    for uri in ["/", "/docs/", "/docs"] {
        let (res, _) = call(&mut plain, get(uri)).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{uri}");
    }
    let (res, _) = call(&mut plain, get("/docs/index.html")).await;
    assert_eq!(res.status, StatusCode::OK);
}

#[spargio_rt::test]
async fn fs_method_not_allowed() {
    let site = site();
    let mut svc = ServeDir::new(&site.root);
    for method in [Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS] {
        let (res, body) = call(&mut svc, request(method.clone(), "/hello.txt", &[])).await;
        assert_eq!(res.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(res.headers[ALLOW], "GET, HEAD");
        assert!(body.is_empty());
    }
    let mut file = ServeFile::new(site.root.join("hello.txt"));
    let (res, _) = call(&mut file, request(Method::POST, "/", &[])).await;
    assert_eq!(res.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[spargio_rt::test]
async fn fs_not_found() {
    let site = site();
    let mut svc = ServeDir::new(&site.root);
    for uri in ["/missing.txt", "/docs/missing/x", "/hello.txt/x", "/a%00b"] {
        let (res, body) = call(&mut svc, get(uri)).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(content_length(&res.headers), 0);
        assert!(body.is_empty());
    }
    let mut gone = ServeDir::new(site.base.join("no-such-root"));
    let (res, _) = call(&mut gone, get("/hello.txt")).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
}

#[spargio_rt::test]
async fn fs_traversal_refused() {
    let site = site();
    std::fs::create_dir_all(site.root.join("a")).unwrap();
    let mut svc = ServeDir::new(&site.root);
    for uri in [
        "/../secret",
        "/a/../../secret",
        "/%2e%2e/secret",
        "/%2E%2E/secret",
        "/a/%2f..%2fsecret",
        "/a/..%2f..%2fsecret",
        "/..%5csecret",
        "/a/..%5c..%5csecret",
        "/./hello.txt",
        "/%2e/hello.txt",
    ] {
        let (res, body) = call(&mut svc, get(uri)).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{uri}");
        assert!(body.is_empty(), "{uri}");
    }
}

#[spargio_rt::test]
async fn fs_a_re_pointed_root_symlink_is_followed() {
    // The usual deploy: `current` points at a release directory and is
    // swapped (atomically, by rename) to the next one. Before, the root
    // was resolved once for the service's life and the old release went
    // on being served (or, once deleted, every request was a 404).
    let site = site();
    let (one, two) = (site.base.join("release-1"), site.base.join("release-2"));
    for (dir, text) in [(&one, "one"), (&two, "two")] {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("v.txt"), text).unwrap();
    }
    let current = site.base.join("current");
    std::os::unix::fs::symlink(&one, &current).unwrap();
    let mut svc = ServeDir::new(&current);
    let (res, body) = call(&mut svc, get("/v.txt")).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(body, "one");

    let next = site.base.join("current.next");
    std::os::unix::fs::symlink(&two, &next).unwrap();
    std::fs::rename(&next, &current).unwrap();
    std::fs::remove_dir_all(&one).unwrap();
    // Past the time a resolved root is reused.
    spargio_rt::time::sleep(super::root::ROOT_REFRESH + Duration::from_millis(50)).await;
    let (res, body) = call(&mut svc, get("/v.txt")).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(body, "two");
}

#[spargio_rt::test]
async fn fs_symlinks() {
    let site = site();
    let root = &site.root;
    std::os::unix::fs::symlink(site.base.join("secret"), root.join("out.txt")).unwrap();
    std::os::unix::fs::symlink(&site.base, root.join("outdir")).unwrap();
    std::os::unix::fs::symlink("../secret", root.join("docs/rel-out.txt")).unwrap();
    std::os::unix::fs::symlink(root.join("hello.txt"), root.join("in.txt")).unwrap();
    std::os::unix::fs::symlink("deep", root.join("docs/deep-link")).unwrap();
    std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
    let mut svc = ServeDir::new(root);
    for uri in [
        "/out.txt",
        "/outdir/secret",
        "/outdir/root/hello.txt/../../secret",
        "/docs/rel-out.txt",
        "/loop",
    ] {
        let (res, body) = call(&mut svc, get(uri)).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{uri}");
        assert!(body.is_empty());
    }
    let (res, body) = call(&mut svc, get("/in.txt")).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(body, "hello, world\n");
    let (res, body) = call(&mut svc, get("/docs/deep-link/page.css")).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(body, "body{}");

    // The root itself may be a symlink.
    let link_root = site.base.join("root-link");
    std::os::unix::fs::symlink(root, &link_root).unwrap();
    let mut via_link = ServeDir::new(&link_root);
    let (res, body) = call(&mut via_link, get("/hello.txt")).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(body, "hello, world\n");
    let (res, _) = call(&mut via_link, get("/out.txt")).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
}

#[spargio_rt::test]
async fn fs_serve_file() {
    let site = site();
    let mut svc = ServeFile::new(site.root.join("big.bin"));
    for uri in ["/", "/anything/else", "/../secret"] {
        let (res, body) = call(&mut svc, get(uri)).await;
        assert_eq!(res.status, StatusCode::OK);
        assert!(body == big_content());
    }
    let (res, body) = call(&mut svc, request(Method::GET, "/", &[(RANGE, "bytes=-17")])).await;
    assert_eq!(res.status, StatusCode::PARTIAL_CONTENT);
    assert!(body == big_content()[BIG_LEN - 17..]);
    let (res, body) = call(&mut svc, request(Method::HEAD, "/", &[])).await;
    assert_eq!(content_length(&res.headers), BIG_LEN as u64);
    assert!(body.is_empty());

    let mut html = ServeFile::new(site.root.join("index.html"));
    let (res, _) = call(&mut html, get("/x")).await;
    assert_eq!(res.headers[CONTENT_TYPE], "text/html; charset=utf-8");
    let etag = res.headers[ETAG].to_str().unwrap().to_owned();
    let (res, _) = call(
        &mut html,
        request(Method::GET, "/", &[(IF_NONE_MATCH, &etag)]),
    )
    .await;
    assert_eq!(res.status, StatusCode::NOT_MODIFIED);

    let mut typed = ServeFile::new(site.root.join("hello.txt"))
        .with_content_type(http::HeaderValue::from_static("text/x-custom"));
    let (res, _) = call(&mut typed, get("/")).await;
    assert_eq!(res.headers[CONTENT_TYPE], "text/x-custom");

    let mut missing = ServeFile::new(site.root.join("missing"));
    let (res, _) = call(&mut missing, get("/")).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    let mut dir = ServeFile::new(&site.root);
    let (res, _) = call(&mut dir, get("/")).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
}

#[spargio_rt::test]
async fn fs_precompressed_gzip() {
    let site = site();
    // Not real gzip: the service only picks the file.
    std::fs::write(site.root.join("hello.txt.gz"), "GZ-hello").unwrap();
    std::fs::write(site.root.join("docs/index.html.gz"), "GZ-docs").unwrap();
    let mut svc = ServeDir::new(&site.root).precompressed_gzip();
    let gz = [(ACCEPT_ENCODING, "br, gzip")];
    let (res, body) = call(&mut svc, request(Method::GET, "/hello.txt", &gz)).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.headers[CONTENT_ENCODING], "gzip");
    assert_eq!(res.headers[CONTENT_TYPE], "text/plain; charset=utf-8");
    assert_eq!(res.headers[VARY], "accept-encoding");
    assert_eq!(body, "GZ-hello");
    let (res, body) = call(&mut svc, request(Method::GET, "/docs/", &gz)).await;
    assert_eq!(res.headers[CONTENT_TYPE], "text/html; charset=utf-8");
    assert_eq!(body, "GZ-docs");
    // No .gz sibling: the plain file.
    let (res, body) = call(&mut svc, request(Method::GET, "/index.html", &gz)).await;
    assert!(!res.headers.contains_key(CONTENT_ENCODING));
    assert_eq!(body, "<h1>home</h1>");
    // Client does not accept gzip.
    let (res, body) = call(&mut svc, get("/hello.txt")).await;
    assert!(!res.headers.contains_key(CONTENT_ENCODING));
    assert_eq!(res.headers[VARY], "accept-encoding");
    assert_eq!(body, "hello, world\n");
    // Without the option, never.
    let mut plain = ServeDir::new(&site.root);
    let (res, body) = call(&mut plain, request(Method::GET, "/hello.txt", &gz)).await;
    assert!(!res.headers.contains_key(CONTENT_ENCODING));
    assert!(!res.headers.contains_key(VARY));
    assert_eq!(body, "hello, world\n");

    let mut file = ServeFile::new(site.root.join("hello.txt")).precompressed_gzip();
    let (res, body) = call(&mut file, request(Method::GET, "/", &gz)).await;
    assert_eq!(res.headers[CONTENT_ENCODING], "gzip");
    assert_eq!(body, "GZ-hello");

    // A sibling deployed without its original: served to a client that
    // takes the encoding, a 404 to one that does not (or without the
    // option), as tower-http does.
    std::fs::write(site.root.join("only.js.gz"), "GZ-only").unwrap();
    let (res, body) = call(&mut svc, request(Method::GET, "/only.js", &gz)).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.headers[CONTENT_ENCODING], "gzip");
    assert_eq!(res.headers[CONTENT_TYPE], "text/javascript; charset=utf-8");
    assert_eq!(body, "GZ-only");
    let (res, _) = call(&mut svc, get("/only.js")).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    // The 404 turned on `Accept-Encoding` too: a cache must not give it
    // to a client that takes gzip.
    assert_eq!(res.headers[VARY], "accept-encoding");
    let (res, _) = call(&mut plain, request(Method::GET, "/only.js", &gz)).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    let (res, _) = call(&mut svc, request(Method::GET, "/only.js/", &gz)).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
}

#[spargio_rt::test]
async fn fs_precompressed_siblings_of_one_size_and_mtime_have_different_tags() {
    let site = site();
    // Compressors copy the original's mtime onto what they write.
    let mtime = std::fs::metadata(site.root.join("hello.txt"))
        .unwrap()
        .modified()
        .unwrap();
    for (name, body) in [("hello.txt.gz", "GZ-hello"), ("hello.txt.zst", "ZS-hello")] {
        std::fs::write(site.root.join(name), body).unwrap();
        set_mtime(&site.root.join(name), mtime);
    }
    let mut svc = ServeDir::new(&site.root)
        .precompressed_gzip()
        .precompressed_zstd();
    let mut tags = Vec::new();
    for accept in ["gzip", "zstd", "identity"] {
        let (res, _) = call(
            &mut svc,
            request(Method::GET, "/hello.txt", &[(ACCEPT_ENCODING, accept)]),
        )
        .await;
        tags.push(res.headers[ETAG].to_str().unwrap().to_owned());
    }
    assert!(tags[0].ends_with("-gzip\""), "{tags:?}");
    assert!(tags[1].ends_with("-zstd\""), "{tags:?}");
    assert!(tags[0] != tags[1] && tags[1] != tags[2] && tags[0] != tags[2]);
    // A client holding the gzip one's tag gets the zstd one whole.
    let (res, body) = call(
        &mut svc,
        request(
            Method::GET,
            "/hello.txt",
            &[(ACCEPT_ENCODING, "zstd"), (IF_NONE_MATCH, tags[0].as_str())],
        ),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(body, "ZS-hello");
}

#[spargio_rt::test]
async fn fs_precompressed_codings_are_picked_by_quality_then_preference() {
    let site = site();
    // Not real compressed data: the service only picks the file.
    std::fs::write(site.root.join("hello.txt.br"), "BR-hello").unwrap();
    std::fs::write(site.root.join("hello.txt.zst"), "ZST-hello").unwrap();
    std::fs::write(site.root.join("hello.txt.gz"), "GZ-hello").unwrap();
    std::fs::write(site.root.join("hello.txt.zz"), "ZZ-hello").unwrap();
    std::fs::write(site.root.join("index.html.gz"), "GZ-home").unwrap();
    let mut svc = ServeDir::new(&site.root)
        .precompressed_gzip()
        .precompressed_br()
        .precompressed_zstd()
        .precompressed_deflate();
    for (accept, coding, body) in [
        ("gzip, deflate, br, zstd", "br", "BR-hello"),
        ("gzip, zstd", "zstd", "ZST-hello"),
        ("gzip;q=1, br;q=0.5", "gzip", "GZ-hello"),
        ("deflate", "deflate", "ZZ-hello"),
        ("br;q=0, *", "zstd", "ZST-hello"),
    ] {
        let (res, got) = call(
            &mut svc,
            request(Method::GET, "/hello.txt", &[(ACCEPT_ENCODING, accept)]),
        )
        .await;
        assert_eq!(res.headers[CONTENT_ENCODING], coding, "{accept}");
        assert_eq!(res.headers[CONTENT_TYPE], "text/plain; charset=utf-8");
        assert_eq!(res.headers[VARY], "accept-encoding");
        assert_eq!(got, body, "{accept}");
    }
    // The preferred sibling is missing: the next accepted one, then the file.
    let br_gz = [(ACCEPT_ENCODING, "br, gzip")];
    let (res, got) = call(&mut svc, request(Method::GET, "/index.html", &br_gz)).await;
    assert_eq!(res.headers[CONTENT_ENCODING], "gzip");
    assert_eq!(got, "GZ-home");
    let (res, got) = call(&mut svc, request(Method::GET, "/docs/", &br_gz)).await;
    assert!(!res.headers.contains_key(CONTENT_ENCODING));
    assert_eq!(got, "<h1>docs</h1>");
    // A coding the service does not look for is not served.
    let mut only_gzip = ServeDir::new(&site.root).precompressed_gzip();
    let (res, got) = call(
        &mut only_gzip,
        request(Method::GET, "/hello.txt", &[(ACCEPT_ENCODING, "br")]),
    )
    .await;
    assert!(!res.headers.contains_key(CONTENT_ENCODING));
    assert_eq!(got, "hello, world\n");

    let mut file = ServeFile::new(site.root.join("hello.txt"))
        .precompressed_br()
        .precompressed_gzip();
    let (res, got) = call(&mut file, request(Method::GET, "/", &br_gz)).await;
    assert_eq!(res.headers[CONTENT_ENCODING], "br");
    assert_eq!(got, "BR-hello");
}

#[spargio_rt::test]
async fn fs_body_chunks() {
    let site = site();
    let mut svc = ServeDir::new(&site.root).with_buf_chunk_size(100_000);
    let res = svc.call(get("/big.bin")).await.unwrap();
    let mut body = res.into_body();
    let mut got = Vec::new();
    let mut frames = 0;
    while let Some(frame) = body.frame().await {
        let data = frame.unwrap().into_data().unwrap();
        assert!(data.len() <= 100_000);
        got.extend_from_slice(&data);
        frames += 1;
        assert_eq!(body.size_hint().exact(), Some((BIG_LEN - got.len()) as u64));
    }
    assert!(body.is_end_stream());
    assert!(frames >= BIG_LEN.div_ceil(100_000));
    assert!(got == big_content());
}

#[spargio_rt::test]
async fn fs_body_dropped_with_the_next_chunk_being_read() {
    let site = site();
    let mut svc = ServeDir::new(&site.root).with_buf_chunk_size(64 * 1024);
    for _ in 0..20 {
        let res = svc.call(get("/big.bin")).await.unwrap();
        let mut body = res.into_body();
        // The first chunk is handed out with the second one's read in
        // flight; dropping the body then cancels that read.
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(&first[..], &big_content()[..first.len()]);
        drop(body);
    }
    let res = svc.call(get("/big.bin")).await.unwrap();
    let got = res.into_body().collect().await.unwrap().to_bytes();
    assert!(got == big_content());
}

#[spargio_rt::test]
async fn fs_body_on_other_shards() {
    let site = site();
    let handle = RuntimeHandle::current();
    let svc = ServeDir::new(&site.root);
    // The service's future runs on shard 1 ...
    let mut on1 = svc.clone();
    let res = handle
        .spawn_pinned(ShardId(1), async move { on1.call(get("/big.bin")).await })
        .await
        .unwrap()
        .unwrap();
    // ... and its body is read on shard 0, then another on shard 1.
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    assert!(bytes == big_content());
    let mut svc = svc;
    let res = svc.call(get("/big.bin")).await.unwrap();
    let bytes = handle
        .spawn_pinned(ShardId(1), async move {
            res.into_body().collect().await.map(|c| c.to_bytes())
        })
        .await
        .unwrap()
        .unwrap();
    assert!(bytes == big_content());
}

#[spargio_rt::test]
async fn fs_truncated_file_fails_body() {
    let site = site();
    let mut svc = ServeDir::new(&site.root);
    let res = svc.call(get("/big.bin")).await.unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(site.root.join("big.bin"))
        .unwrap()
        .set_len(1000)
        .unwrap();
    let err = res.into_body().collect().await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
}

#[spargio_rt::test]
async fn fs_permission_denied() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return; // root reads everything
    }
    let site = site();
    let locked = site.root.join("locked.txt");
    std::fs::write(&locked, "x").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    let mut svc = ServeDir::new(&site.root);
    let (res, _) = call(&mut svc, get("/locked.txt")).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
}

#[test]
fn fs_services_are_send_clone() {
    fn check<S>(_: &S)
    where
        S: Service<Request<()>> + Clone + Send + Sync + 'static,
        S::Future: Send + 'static,
    {
    }
    check(&ServeDir::new(Path::new("/")));
    check(&ServeFile::new(Path::new("/x")));
}

#[spargio_rt::test]
async fn fs_deep_paths() {
    let site = site();
    // A deep path (once deeper than a per-component check went), and a
    // symlink out at its end.
    let mut dir = site.root.clone();
    let mut uri = String::new();
    for i in 0..40 {
        dir.push(format!("d{i}"));
        uri.push_str(&format!("/d{i}"));
    }
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("leaf.txt"), "leaf").unwrap();
    std::os::unix::fs::symlink(site.base.join("secret"), dir.join("out")).unwrap();
    let mut svc = ServeDir::new(&site.root);
    let (res, body) = call(&mut svc, get(&format!("{uri}/leaf.txt"))).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(body, "leaf");
    let (res, _) = call(&mut svc, get(&format!("{uri}/out"))).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    let (res, _) = call(&mut svc, get(&format!("{uri}/missing"))).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
}

#[spargio_rt::test]
async fn fs_gzip_twin_is_the_requested_name_and_stays_inside() {
    // The twin is the name asked for with `.gz` appended, as in
    // tower-http. (It used to be the symlink target's twin; the kernel
    // now resolves the path as it opens it, confined to the root, and
    // does not say where a symlink led.)
    let site = site();
    std::fs::write(site.root.join("hello.txt.gz"), "GZ-hello").unwrap();
    std::os::unix::fs::symlink("hello.txt", site.root.join("alias.txt")).unwrap();
    std::os::unix::fs::symlink("hello.txt", site.root.join("twin.txt")).unwrap();
    std::os::unix::fs::symlink("hello.txt.gz", site.root.join("twin.txt.gz")).unwrap();
    // A .gz that escapes the root is not used.
    std::os::unix::fs::symlink(site.base.join("secret"), site.root.join("index.html.gz")).unwrap();
    std::os::unix::fs::symlink("../secret", site.root.join("empty.txt.gz")).unwrap();
    let mut svc = ServeDir::new(&site.root).precompressed_gzip();
    let gz = [(ACCEPT_ENCODING, "gzip")];
    // `alias.txt.gz` does not exist: the plain file (through the alias).
    let (res, body) = call(&mut svc, request(Method::GET, "/alias.txt", &gz)).await;
    assert!(!res.headers.contains_key(CONTENT_ENCODING));
    assert_eq!(body, "hello, world\n");
    let (res, body) = call(&mut svc, request(Method::GET, "/twin.txt", &gz)).await;
    assert_eq!(res.headers[CONTENT_ENCODING], "gzip");
    assert_eq!(body, "GZ-hello");
    let (res, body) = call(&mut svc, request(Method::GET, "/empty.txt", &gz)).await;
    assert!(!res.headers.contains_key(CONTENT_ENCODING));
    assert!(body.is_empty());
    let (res, body) = call(&mut svc, request(Method::GET, "/", &gz)).await;
    assert!(!res.headers.contains_key(CONTENT_ENCODING));
    assert_eq!(body, "<h1>home</h1>");
}

/// A file modified within the current second could change again without
/// its mtime (or size) changing, so it gets no `ETag` (and no
/// `Last-Modified`), and no tag revalidates it: a client holding a tag of
/// the first write would get a `304` for the second's contents. Once
/// that second has passed the tag is sent, strong.
#[spargio_rt::test]
async fn fs_no_etag_while_the_mtime_is_this_second() {
    let (site, mut svc) = site_with_hello_this_second();
    let hello = site.root.join("hello.txt");
    let (res, body) = call(&mut svc, get("/hello.txt")).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(body, "hello, world\n");
    assert!(!res.headers.contains_key(ETAG), "{:?}", res.headers);
    assert!(!res.headers.contains_key(LAST_MODIFIED));
    // The tag the file will have once its second has passed, weak or
    // strong, revalidates nothing yet; `*` (it exists) still does.
    let mtime = std::fs::metadata(&hello).unwrap().modified().unwrap();
    let ns = mtime
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let tag = format!("\"{:x}-{ns:x}\"", "hello, world\n".len());
    let weak = format!("W/{tag}");
    for inm in [tag.as_str(), weak.as_str()] {
        let (res, body) = call(
            &mut svc,
            request(Method::GET, "/hello.txt", &[(IF_NONE_MATCH, inm)]),
        )
        .await;
        assert_eq!(res.status, StatusCode::OK, "{inm}");
        assert_eq!(body, "hello, world\n");
    }
    let (res, _) = call(
        &mut svc,
        request(Method::GET, "/hello.txt", &[(IF_NONE_MATCH, "*")]),
    )
    .await;
    assert_eq!(res.status, StatusCode::NOT_MODIFIED);
    // If-Range with that tag sends the whole file.
    let (res, body) = call(
        &mut svc,
        request(
            Method::GET,
            "/hello.txt",
            &[(RANGE, "bytes=0-4"), (IF_RANGE, &tag)],
        ),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(body, "hello, world\n");

    set_mtime(
        &hello,
        std::time::SystemTime::now() - Duration::from_secs(120),
    );
    let (res, _) = call(&mut svc, get("/hello.txt")).await;
    let etag = res.headers[ETAG].to_str().unwrap();
    assert!(etag.starts_with('"'), "{etag}");
}

#[spargio_rt::test]
async fn fs_a_pinned_mtime_gives_no_validators() {
    // Two versions of one size, both stamped 1 s after the epoch (as the
    // Nix store stamps every file): a tag or date from the first must not
    // answer `304` for the second.
    let site = site();
    let path = site.root.join("app.js");
    let pinned = std::time::UNIX_EPOCH + Duration::from_secs(1);
    std::fs::write(&path, b"v1aaaaaa").unwrap();
    set_mtime(&path, pinned);
    let mut svc = ServeDir::new(&site.root);
    let (res, body) = call(&mut svc, get("/app.js")).await;
    assert_eq!(
        (res.status, body.as_ref()),
        (StatusCode::OK, &b"v1aaaaaa"[..])
    );
    assert_eq!(res.headers.get(ETAG), None);
    assert_eq!(res.headers.get(LAST_MODIFIED), None);
    std::fs::write(&path, b"v2bbbbbb").unwrap();
    set_mtime(&path, pinned);
    let pinned_date = httpdate::fmt_http_date(pinned);
    let asks = [
        (IF_MODIFIED_SINCE, pinned_date.as_str()),
        (IF_NONE_MATCH, "\"8-3b9aca00\""),
    ];
    for ask in asks {
        let (res, body) = call(
            &mut svc,
            request(Method::GET, "/app.js", std::slice::from_ref(&ask)),
        )
        .await;
        assert_eq!(res.status, StatusCode::OK, "{ask:?}");
        assert_eq!(body.as_ref(), b"v2bbbbbb");
    }
}

#[spargio_rt::test]
async fn fs_serve_file_serves_a_sibling_deployed_alone() {
    let site = site();
    std::fs::write(site.root.join("only.js.gz"), "GZ-only").unwrap();
    let mut svc = ServeFile::new(site.root.join("only.js")).precompressed_gzip();
    let gz = [(ACCEPT_ENCODING, "gzip")];
    let (res, body) = call(&mut svc, request(Method::GET, "/", &gz)).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.headers[CONTENT_ENCODING], "gzip");
    assert_eq!(res.headers[VARY], "accept-encoding");
    assert_eq!(body, "GZ-only");
    let (res, _) = call(&mut svc, get("/")).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_eq!(res.headers[VARY], "accept-encoding");
}

/// A directory whose only index is precompressed (`index.html.gz`
/// deployed alone) serves it to a client that takes the encoding, as a
/// request for `index.html` itself does (and tower-http does).
#[spargio_rt::test]
async fn fs_index_sibling_deployed_alone() {
    let site = site();
    std::fs::write(site.root.join("noindex/index.html.gz"), "GZ-index").unwrap();
    let gz = [(ACCEPT_ENCODING, "gzip")];
    for list in [false, true] {
        let mut svc = ServeDir::new(&site.root)
            .precompressed_gzip()
            .list_directories(list);
        let (res, body) = call(&mut svc, request(Method::GET, "/noindex/", &gz)).await;
        assert_eq!(res.status, StatusCode::OK);
        assert_eq!(res.headers[CONTENT_ENCODING], "gzip");
        assert_eq!(res.headers[CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(body, "GZ-index");
        // A client that does not take gzip gets what it got before: a 404,
        // or the listing.
        let (res, _) = call(&mut svc, get("/noindex/")).await;
        let want = if list {
            StatusCode::OK
        } else {
            StatusCode::NOT_FOUND
        };
        assert_eq!(res.status, want);
        assert!(!res.headers.contains_key(CONTENT_ENCODING));
    }
}
