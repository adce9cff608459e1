//! End-to-end tests of `ServeDir::list_directories`.

use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use http::{Method, Request, StatusCode};

use super::tests::{call, get, site};
use super::ServeDir;

fn head(uri: &str) -> Request<()> {
    Request::builder()
        .method(Method::HEAD)
        .uri(uri)
        .body(())
        .unwrap()
}

#[spargio_rt::test]
async fn fs_listing_of_a_directory_without_index() {
    let site = site();
    std::fs::write(site.root.join("noindex/b <&>.txt"), "b").unwrap();
    std::fs::write(site.root.join("noindex/a.txt"), "a").unwrap();
    std::fs::write(site.root.join("noindex/.hidden"), "h").unwrap();
    std::fs::create_dir(site.root.join("noindex/sub")).unwrap();
    let mut svc = ServeDir::new(&site.root).list_directories(true);

    let (res, body) = call(&mut svc, get("/noindex/")).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.headers[CONTENT_TYPE], "text/html; charset=utf-8");
    assert_eq!(res.headers[CACHE_CONTROL], "no-cache");
    let page = String::from_utf8(body.to_vec()).unwrap();
    assert!(page.contains("<title>Index of /noindex/</title>"), "{page}");
    let sub = page.find("href=\"./sub/\"").expect("the subdirectory");
    let a = page.find("href=\"./a.txt\"").expect("a file");
    let b = page
        .find("href=\"./b%20%3C%26%3E.txt\">b &lt;&amp;&gt;.txt</a>")
        .expect("an escaped name");
    assert!(
        sub < a && a < b,
        "directories first, then names in order: {page}"
    );
    assert!(page.contains("href=\"../\""), "{page}");
    assert!(
        !page.contains("hidden"),
        "hidden names are left out: {page}"
    );

    // HEAD: the same length, no body.
    let (res, body) = call(&mut svc, head("/noindex/")).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(
        res.headers[CONTENT_LENGTH].to_str().unwrap(),
        page.len().to_string()
    );
    assert!(body.is_empty());

    // Without the slash: redirected to it, so relative links resolve.
    let (res, _) = call(&mut svc, get("/noindex")).await;
    assert_eq!(res.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(res.headers[LOCATION], "./noindex/");

    // An index still wins.
    let (res, body) = call(&mut svc, get("/docs/")).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(body, "<h1>docs</h1>");
}

#[spargio_rt::test]
async fn fs_listing_without_index_files_lists_the_root() {
    let site = site();
    let mut svc = ServeDir::new(&site.root)
        .append_index_html_on_directories(false)
        .list_directories(true);
    let (res, body) = call(&mut svc, get("/")).await;
    assert_eq!(res.status, StatusCode::OK);
    let page = String::from_utf8(body.to_vec()).unwrap();
    for link in [
        "./docs/",
        "./noindex/",
        "./index.html",
        "./hello%20world.txt",
    ] {
        assert!(page.contains(&format!("href=\"{link}\"")), "{link}: {page}");
    }
    assert!(
        !page.contains("href=\"../\""),
        "no parent above the root: {page}"
    );
}

#[spargio_rt::test]
async fn fs_listing_off_leaves_directories_unlisted() {
    let site = site();
    let mut svc = ServeDir::new(&site.root);
    let (res, body) = call(&mut svc, get("/noindex/")).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert!(body.is_empty());
}

#[spargio_rt::test]
async fn fs_listing_never_leaves_the_root() {
    let site = site();
    std::fs::create_dir(site.base.join("outside")).unwrap();
    std::fs::write(site.base.join("outside/secret.txt"), "s").unwrap();
    std::os::unix::fs::symlink("../outside", site.root.join("escape")).unwrap();
    std::os::unix::fs::symlink(site.base.join("outside"), site.root.join("escape_abs")).unwrap();
    let mut svc = ServeDir::new(&site.root).list_directories(true);
    for uri in ["/escape/", "/escape_abs/", "/../", "/%2e%2e/"] {
        let (res, body) = call(&mut svc, get(uri)).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{uri}");
        assert!(!String::from_utf8_lossy(&body).contains("secret"), "{uri}");
    }
}

/// `uri` with one request header.
fn get_with(uri: &str, name: &str, value: &str) -> Request<()> {
    Request::builder()
        .uri(uri)
        .header(name, value)
        .body(())
        .unwrap()
}

#[spargio_rt::test]
async fn fs_listing_answers_tag_conditions_it_cannot_meet() {
    let site = site();
    let mut svc = ServeDir::new(&site.root).list_directories(true);

    // The listing has no entity tag: no tag matches it.
    let (res, body) = call(&mut svc, get_with("/noindex/", "if-match", "\"x\"")).await;
    assert_eq!(res.status, StatusCode::PRECONDITION_FAILED);
    assert!(body.is_empty());
    // It exists, so `*` does.
    let (res, _) = call(&mut svc, get_with("/noindex/", "if-match", "*")).await;
    assert_eq!(res.status, StatusCode::OK);

    let (res, body) = call(&mut svc, get_with("/noindex/", "if-none-match", "*")).await;
    assert_eq!(res.status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
    let (res, _) = call(&mut svc, get_with("/noindex/", "if-none-match", "\"x\"")).await;
    assert_eq!(res.status, StatusCode::OK);

    // No modification date: the date conditions are ignored.
    let date = "Thu, 01 Jan 1970 00:00:00 GMT";
    let (res, _) = call(&mut svc, get_with("/noindex/", "if-unmodified-since", date)).await;
    assert_eq!(res.status, StatusCode::OK);
}
