//! [`ServeDir::fallback`] and [`ServeDir::not_found_service`]: which
//! requests reach the other service, and what goes out.

use std::convert::Infallible;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use tower_service::Service;

use super::tests::{call, get, site};
use super::{ServeDir, ServeFile};

#[spargio_rt::test]
async fn fs_fallback_answers_what_would_be_not_found() {
    let site = site();
    let mut app = ServeDir::new(&site.root).fallback(ServeFile::new(site.root.join("index.html")));
    // Files are served as ever.
    let (res, body) = call(&mut app, get("/hello.txt")).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(body, "hello, world\n");
    // Every would-be 404: no such file, a directory with nothing to
    // serve, a refused path (which must not reach the file behind it).
    for uri in [
        "/missing",
        "/app/route/7",
        "/noindex/",
        "/../secret",
        "/%2e%2e/secret",
    ] {
        let (res, body) = call(&mut app, get(uri)).await;
        assert_eq!(res.status, StatusCode::OK, "{uri}");
        assert_eq!(body, "<h1>home</h1>", "{uri}");
    }
    // Answers other than 404 are not the fallback's.
    let post = Request::builder()
        .method(Method::POST)
        .uri("/missing")
        .body(())
        .unwrap();
    let (res, body) = call(&mut app, post).await;
    assert_eq!(res.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(body.is_empty());
    let (res, _) = call(&mut app, get("/docs")).await;
    assert_eq!(res.status, StatusCode::PERMANENT_REDIRECT);
}

#[spargio_rt::test]
async fn fs_not_found_service_answers_404_with_its_body() {
    let site = site();
    let page = tower::service_fn(|_req: Request<()>| async {
        Ok::<_, Infallible>(Response::new(String::from("custom not found")))
    });
    let mut app = ServeDir::new(&site.root).not_found_service(page);
    let (res, body) = call(&mut app, get("/missing.txt")).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_eq!(body, "custom not found");
    let (res, body) = call(&mut app, get("/hello.txt")).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(body, "hello, world\n");
}

#[spargio_rt::test]
async fn fs_other_methods_reach_the_fallback_only_when_asked() {
    let site = site();
    let api = tower::service_fn(|req: Request<()>| async move {
        let mut res = Response::new(format!("api got {} {}", req.method(), req.uri()));
        *res.status_mut() = StatusCode::CREATED;
        Ok::<_, Infallible>(res)
    });
    let post = |uri: &str| {
        Request::builder()
            .method(Method::POST)
            .uri(uri)
            .body(())
            .unwrap()
    };
    let mut app = ServeDir::new(&site.root).fallback(api);
    let (res, _) = call(&mut app, post("/items")).await;
    assert_eq!(res.status, StatusCode::METHOD_NOT_ALLOWED);
    let mut app = app.call_fallback_on_method_not_allowed(true);
    // Even where a file is: the file answers GET and HEAD only.
    for uri in ["/items", "/hello.txt"] {
        let (res, body) = call(&mut app, post(uri)).await;
        assert_eq!(res.status, StatusCode::CREATED, "{uri}");
        assert_eq!(body, format!("api got POST {uri}"));
    }
    let (res, body) = call(&mut app, get("/hello.txt")).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(body, "hello, world\n");
}

#[spargio_rt::test]
async fn fs_a_not_found_page_is_never_conditional_or_partial() {
    let site = site();
    let mut app =
        ServeDir::new(&site.root).not_found_service(ServeFile::new(site.root.join("index.html")));
    let (res, body) = call(&mut app, get("/missing")).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_eq!(body, "<h1>home</h1>");
    for name in ["etag", "last-modified", "accept-ranges", "content-range"] {
        assert!(!res.headers.contains_key(name), "{name} on a 404");
    }
    // The page itself (served as a file) has an ETag a browser would send.
    let (page, _) = call(&mut app, get("/index.html")).await;
    let etag = page.headers["etag"].to_str().unwrap().to_owned();
    let modified = page.headers["last-modified"].to_str().unwrap().to_owned();
    let conditional = [
        ("if-none-match", etag.as_str()),
        ("if-modified-since", modified.as_str()),
        ("range", "bytes=0-3"),
        ("if-match", "\"nothing-like-it\""),
        ("if-unmodified-since", "Thu, 01 Jan 1970 00:00:00 GMT"),
    ];
    for (name, value) in conditional {
        let req = Request::get("/missing")
            .header(name, value)
            .body(())
            .unwrap();
        let (res, body) = call(&mut app, req).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{name}");
        assert_eq!(body, "<h1>home</h1>", "{name}");
        assert!(!res.headers.contains_key("content-range"), "{name}");
    }
    // A fallback that is no not-found page still answers conditionally
    // (a single-page app's index.html is revalidated as usual).
    let mut spa = ServeDir::new(&site.root).fallback(ServeFile::new(site.root.join("index.html")));
    let req = Request::get("/app/route")
        .header("if-none-match", etag.as_str())
        .body(())
        .unwrap();
    let (res, body) = call(&mut spa, req).await;
    assert_eq!(res.status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
}

#[spargio_rt::test]
async fn fs_fallback_gets_the_whole_request() {
    let site = site();
    let echo = tower::service_fn(|req: Request<String>| async move {
        let (parts, body) = req.into_parts();
        let text = format!(
            "{} {} {} {}",
            parts.method,
            parts.uri,
            parts.headers["x-probe"].to_str().unwrap(),
            body
        );
        let mut res = Response::new(text);
        *res.status_mut() = StatusCode::IM_A_TEAPOT;
        Ok::<_, Infallible>(res)
    });
    let mut app = ServeDir::new(&site.root).fallback(echo);
    let req = Request::builder()
        .method(Method::HEAD)
        .uri("/nowhere?q=1")
        .header("x-probe", "yes")
        .body(String::from("the body"))
        .unwrap();
    let res = app.call(req).await.unwrap();
    // The fallback's status goes out as it gave it.
    assert_eq!(res.status(), StatusCode::IM_A_TEAPOT);
    let bytes: Bytes = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(bytes, "HEAD /nowhere?q=1 yes the body");
}

#[spargio_rt::test]
async fn fs_a_fallback_answer_that_turned_on_the_encoding_says_so() {
    let site = site();
    std::fs::write(site.root.join("only.js.gz"), "GZ-only").unwrap();
    let mut app = ServeDir::new(&site.root)
        .precompressed_gzip()
        .fallback(ServeFile::new(site.root.join("index.html")));
    // Without gzip, `/only.js` is the fallback's page; with it, the file.
    let (res, body) = call(&mut app, get("/only.js")).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(body, "<h1>home</h1>");
    assert_eq!(
        res.headers.get_all(http::header::VARY).iter().count(),
        1,
        "one Vary: {:?}",
        res.headers
    );
    assert_eq!(res.headers[http::header::VARY], "accept-encoding");
}
