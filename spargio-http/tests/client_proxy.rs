//! The client through a forward proxy (`ClientBuilder::proxy`): plain
//! `http` in absolute form with the proxy's credentials, `https` and `ws://`
//! handshakes through a `CONNECT` tunnel (with TLS to the server inside),
//! refusals, proxies for one scheme and `no_proxy` lists; and a `CONNECT`
//! request of the caller's own whose 2xx hands the tunnel over. The proxy
//! is an independent one in python (`tests/clients/proxy.py`).

mod common;

use std::convert::Infallible;
use std::process::Child;

use common::{echo_service, run, TestServer};
use futures_util::{AsyncReadExt, AsyncWriteExt};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use spargio_http::client::{InvalidProxy, NoProxy, Proxy};
use spargio_http::ws::{self, Message};
use spargio_http::{upgrade, Body, Client, ClientError, Http};

/// `tests/clients/proxy.py`, stopped when dropped.
struct PythonProxy {
    child: Child,
    port: u16,
}

impl PythonProxy {
    /// A proxy; with `credentials` (`user:password`) it wants them.
    fn start(credentials: Option<&str>) -> PythonProxy {
        let args: Vec<&str> = credentials.into_iter().collect();
        let (child, port) = common::python_server("proxy.py", &args);
        PythonProxy { child, port }
    }

    fn uri(&self, credentials: Option<&str>) -> String {
        match credentials {
            Some(c) => format!("http://{c}@127.0.0.1:{}", self.port),
            None => format!("http://127.0.0.1:{}", self.port),
        }
    }
}

impl Drop for PythonProxy {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn text(resp: Response<Body>) -> String {
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn http_requests_go_to_the_proxy_whole_with_its_credentials() {
    let proxy = PythonProxy::start(Some("alice:s3cret"));
    let uri = proxy.uri(Some("alice:s3cret"));
    run(move || async move {
        let client = Client::builder().proxy(Proxy::new(uri).unwrap()).build();
        // The host need not resolve: only the proxy is connected to.
        for path in ["/a?q=1", "/b"] {
            let resp = client
                .get(format!("http://backend.invalid:8080{path}"))
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            assert_eq!(
                text(resp).await,
                format!(
                    "GET http://backend.invalid:8080{path} host=backend.invalid:8080 \
                     auth=Basic YWxpY2U6czNjcmV0"
                )
            );
        }
    });
}

/// The method, target and any `Proxy-Authorization` a request came with.
fn what_came() -> impl common::TestService<Body> {
    tower::service_fn(|req: Request<Body>| async move {
        let auth = req.headers().get("proxy-authorization").cloned();
        let text = format!("{} {} proxy-auth={auth:?}", req.method(), req.uri());
        Ok::<_, Infallible>(Response::new(Body::from(text)))
    })
}

#[test]
fn https_goes_through_a_tunnel_with_tls_to_the_server_itself() {
    let (acceptor, connector) = common::localhost_tls();
    let server = TestServer::start_with(Http::new().tls(acceptor), |b| b, what_came());
    let port = server.addr.port();
    let proxy = PythonProxy::start(Some("bob:pw"));
    let uri = proxy.uri(Some("bob:pw"));
    run(move || async move {
        let client = Client::builder()
            .tls(connector)
            .proxy(Proxy::new(uri).unwrap())
            .build();
        let url = format!("https://localhost:{port}/secret");
        let resp = client.get(&url).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        // The server got the request as it would without a proxy: the
        // origin form, and none of the proxy's credentials (not even ones
        // the caller set on the request).
        assert_eq!(text(resp).await, "GET /secret proxy-auth=None");
        let req = Request::post(&url)
            .header("proxy-authorization", "Basic c2VjcmV0")
            .body(Body::from("through"))
            .unwrap();
        let resp = client.request(req).await.unwrap();
        assert_eq!(text(resp).await, "POST /secret proxy-auth=None");
        // And it went through the proxy's tunnel.
        let stats = client.get("http://proxy.stats/").await.unwrap();
        let stats = text(stats).await;
        assert!(
            stats.starts_with("connects=") && stats != "connects=0",
            "{stats}"
        );
        // A tunnel the proxy cannot open is its refusal.
        let err = client.get("https://localhost:1/").await.unwrap_err();
        assert!(
            matches!(err, ClientError::ProxyRefused { status, .. } if status == StatusCode::BAD_GATEWAY),
            "{err:?}"
        );
    });
    drop(server);
}

#[test]
fn a_proxy_authorization_set_on_the_proxy_opens_tunnels_and_goes_with_http() {
    let (acceptor, connector) = common::localhost_tls();
    let server = TestServer::start_with(Http::new().tls(acceptor), |b| b, what_came());
    let port = server.addr.port();
    let proxy = PythonProxy::start(Some("alice:s3cret"));
    let uri = proxy.uri(None);
    run(move || async move {
        // alice:s3cret, given as a header value rather than in the URI.
        let value = http::HeaderValue::from_static("Basic YWxpY2U6czNjcmV0");
        let client = Client::builder()
            .tls(connector)
            .proxy(Proxy::new(uri).unwrap().authorization(value))
            .build();
        let url = format!("https://localhost:{port}/inside");
        let resp = client.get(&url).await.unwrap();
        assert_eq!(text(resp).await, "GET /inside proxy-auth=None");
        let resp = client.get("http://backend.invalid/x").await.unwrap();
        assert_eq!(
            text(resp).await,
            "GET http://backend.invalid/x host=backend.invalid auth=Basic YWxpY2U6czNjcmV0"
        );
    });
    drop(server);
}

#[test]
fn a_proxy_that_refuses_the_tunnel_is_a_typed_error() {
    let proxy = PythonProxy::start(Some("alice:s3cret"));
    let wrong = proxy.uri(Some("alice:nope"));
    let none = proxy.uri(None);
    run(move || async move {
        let client = Client::builder().proxy(Proxy::new(wrong).unwrap()).build();
        let err = client.get("https://localhost:1/").await.unwrap_err();
        match &err {
            ClientError::ProxyRefused { host, status } => {
                assert_eq!(host, "localhost:1");
                assert_eq!(*status, StatusCode::PROXY_AUTHENTICATION_REQUIRED);
            }
            other => panic!("expected ProxyRefused, got {other:?}"),
        }
        assert!(err.is_connect(), "{err}");
        assert!(err.to_string().contains("407"), "{err}");
        // A plain request gets the proxy's answer as its response.
        let client = Client::builder().proxy(Proxy::new(none).unwrap()).build();
        let resp = client.get("http://backend.invalid/").await.unwrap();
        assert_eq!(resp.status(), StatusCode::PROXY_AUTHENTICATION_REQUIRED);
    });
}

#[test]
fn a_proxy_that_is_not_there_is_a_connect_error() {
    // The server itself is up: a client that went around the proxy would
    // reach it.
    let server = TestServer::start(echo_service());
    let addr = server.addr;
    let port = common::closed_port();
    run(move || async move {
        let proxy = Proxy::new(format!("http://127.0.0.1:{port}")).unwrap();
        let client = Client::builder().proxy(proxy).build();
        let err = client.get(format!("http://{addr}/")).await.unwrap_err();
        assert!(matches!(err, ClientError::Connect { .. }), "{err:?}");
        // The error is the request's, and says it was the proxy that could
        // not be reached.
        let shown = err.to_string();
        assert!(shown.contains(&addr.to_string()), "{shown}");
        assert!(
            shown.contains(&format!("the proxy 127.0.0.1:{port}")),
            "{shown}"
        );
    });
}

#[test]
fn a_silent_proxy_times_out_and_a_chatty_one_is_a_proxy_error() {
    let proxy = PythonProxy::start(None);
    let uri = proxy.uri(None);
    run(move || async move {
        let client = Client::builder()
            .proxy(Proxy::new(uri).unwrap())
            .connect_timeout(std::time::Duration::from_millis(300))
            .build();
        // The tunnel is asked for inside the connect timeout.
        let err = client.get("https://silent.test:1/").await.unwrap_err();
        assert!(
            matches!(
                err,
                ClientError::Timeout {
                    connecting: true,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.is_connect() && err.is_timeout(), "{err}");
        // Bytes before the client spoke are no TLS server's: the tunnel is
        // refused as broken instead of handing them to the handshake.
        let err = client.get("https://chatty.test:1/").await.unwrap_err();
        match &err {
            ClientError::Proxy { host, reason } => {
                assert_eq!(host, "chatty.test:1");
                assert!(reason.contains("after its 2xx"), "{reason}");
            }
            other => panic!("expected Proxy, got {other:?}"),
        }
    });
}

#[test]
fn interim_answers_before_the_proxys_2xx_are_skipped() {
    let (tx, _seen) = std::sync::mpsc::channel();
    let server = TestServer::start(common::ws_echo::echo_app(tx));
    let port = server.addr.port();
    let proxy = PythonProxy::start(None);
    let uri = proxy.uri(None);
    run(move || async move {
        let client = Client::builder().proxy(Proxy::new(&*uri).unwrap()).build();
        // The proxy answers this CONNECT with a 100 and a 103 before its 200.
        let req = Request::get(format!("ws://interim.test:{port}/ws"))
            .body(())
            .unwrap();
        let (mut socket, resp) = ws::connect_with(&client, req, Default::default())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
        socket.send(Message::text("after 1xx")).await.unwrap();
        let echo = spargio_rt::time::timeout(std::time::Duration::from_secs(20), socket.recv())
            .await
            .expect("no echo within 20 s");
        assert_eq!(echo.unwrap().unwrap(), Message::text("after 1xx"));
        socket.close().await.unwrap();
    });
    drop(server);
}

/// How many tunnels `proxy` opened so far, asked of it directly.
async fn tunnels_opened(proxy_uri: &str) -> String {
    let client = Client::builder()
        .proxy(Proxy::new(proxy_uri).unwrap())
        .build();
    text(client.get("http://proxy.stats/").await.unwrap()).await
}

#[test]
fn a_ws_handshake_goes_through_a_tunnel_not_in_absolute_form() {
    let (tx, _seen) = std::sync::mpsc::channel();
    let server = TestServer::start(common::ws_echo::echo_app(tx));
    let addr = server.addr;
    let proxy = PythonProxy::start(Some("carol:pw"));
    let uri = proxy.uri(Some("carol:pw"));
    run(move || async move {
        let client = Client::builder().proxy(Proxy::new(&*uri).unwrap()).build();
        // An absolute-form GET would be answered by the proxy itself (200,
        // no upgrade), so an echo proves the tunnel.
        let req = Request::get(format!("ws://{addr}/ws")).body(()).unwrap();
        let (mut socket, resp) = ws::connect_with(&client, req, Default::default())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
        socket.send(Message::text("through")).await.unwrap();
        let echo = spargio_rt::time::timeout(std::time::Duration::from_secs(20), socket.recv())
            .await
            .expect("no echo within 20 s");
        assert_eq!(echo.unwrap().unwrap(), Message::text("through"));
        socket.close().await.unwrap();
        assert_eq!(tunnels_opened(&uri).await, "connects=1");
        // Plain requests to the same server still go in absolute form.
        let resp = client.get(format!("http://{addr}/plain")).await.unwrap();
        let shown = text(resp).await;
        assert!(
            shown.starts_with(&format!("GET http://{addr}/plain ")),
            "{shown}"
        );
        assert_eq!(tunnels_opened(&uri).await, "connects=1");
    });
    drop(server);
}

#[test]
fn no_proxy_lists_and_per_scheme_proxies_send_some_requests_straight() {
    let (acceptor, connector) = common::localhost_tls();
    let tls_server = TestServer::start_with(Http::new().tls(acceptor), |b| b, what_came());
    let tls_port = tls_server.addr.port();
    let server = TestServer::start(what_came());
    let addr = server.addr;
    let proxy = PythonProxy::start(None);
    let uri = proxy.uri(None);
    let closed = common::closed_port();
    run(move || async move {
        let via_proxy = |resp: String| resp.starts_with("GET http://");
        // Around the proxy for the listed address, through it for others.
        let bypass = NoProxy::new("localhost, 127.0.0.1").unwrap();
        let client = Client::builder()
            .proxy(Proxy::new(&*uri).unwrap().no_proxy(bypass))
            .build();
        let direct = text(client.get(format!("http://{addr}/a")).await.unwrap()).await;
        assert_eq!(direct, "GET /a proxy-auth=None");
        // A proxy credential the caller's stack added does not reach a
        // server the proxy is bypassed for.
        let req = Request::get(format!("http://{addr}/a2"))
            .header("proxy-authorization", "Bearer for-the-proxy")
            .body(Body::empty())
            .unwrap();
        let direct = text(client.request(req).await.unwrap()).await;
        assert_eq!(direct, "GET /a2 proxy-auth=None");
        let proxied = text(client.get("http://elsewhere.invalid/b").await.unwrap()).await;
        assert!(via_proxy(proxied.clone()), "{proxied}");

        // A proxy for https only: http goes straight, https is tunnelled.
        let client = Client::builder()
            .tls(connector.clone())
            .proxy(Proxy::https(&*uri).unwrap())
            .build();
        let direct = text(client.get(format!("http://{addr}/c")).await.unwrap()).await;
        assert_eq!(direct, "GET /c proxy-auth=None");
        let tunnelled = client.get(format!("https://localhost:{tls_port}/d"));
        assert_eq!(
            text(tunnelled.await.unwrap()).await,
            "GET /d proxy-auth=None"
        );
        assert_eq!(tunnels_opened(&uri).await, "connects=1");

        // A proxy for http only (one that is not there), then one for
        // everything: https takes the second (the first that is for it),
        // http the first.
        let client = Client::builder()
            .tls(connector.clone())
            .proxy(Proxy::http(format!("http://127.0.0.1:{closed}")).unwrap())
            .proxy(Proxy::new(&*uri).unwrap())
            .build();
        let tunnelled = client.get(format!("https://localhost:{tls_port}/e"));
        assert_eq!(
            text(tunnelled.await.unwrap()).await,
            "GET /e proxy-auth=None"
        );
        assert_eq!(tunnels_opened(&uri).await, "connects=2");
        let err = client.get(format!("http://{addr}/f")).await.unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("the proxy 127.0.0.1:{closed}")),
            "{err}"
        );

        // `*` bypasses every proxy for every server.
        let everything = NoProxy::new("*").unwrap();
        let client = Client::builder()
            .tls(connector)
            .proxy(Proxy::new(&*uri).unwrap().no_proxy(everything))
            .build();
        let direct = client.get(format!("https://localhost:{tls_port}/g"));
        assert_eq!(text(direct.await.unwrap()).await, "GET /g proxy-auth=None");
        assert_eq!(tunnels_opened(&uri).await, "connects=2");
    });
    drop((server, tls_server));
}

#[test]
fn proxy_uris_are_checked_and_credentials_stay_out_of_debug() {
    let proxy = Proxy::new("http://user:secret@proxy.internal:3128").unwrap();
    assert_eq!((proxy.host(), proxy.port()), ("proxy.internal", 3128));
    let shown = format!("{proxy:?}");
    assert!(
        !shown.contains("secret") && !shown.contains("dXNlcjpzZWNyZXQ"),
        "{shown}"
    );
    assert_eq!(Proxy::new("http://proxy.internal").unwrap().port(), 80);
    let v6 = Proxy::https("http://[::1]:3128").unwrap();
    assert_eq!((v6.host(), v6.port()), ("::1", 3128));
    for bad in [
        "https://proxy.internal:3128",
        "socks5://proxy.internal:1080",
        "proxy.internal:3128",
        "http://proxy.internal:3128/path",
        "http://proxy.internal:99999",
        "not a uri",
    ] {
        let err: InvalidProxy = Proxy::new(bad).unwrap_err();
        assert!(
            err.to_string().starts_with("invalid proxy URI"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn a_2xx_to_the_callers_own_connect_hands_the_tunnel_over() {
    // A server that answers CONNECT with 200 and then shouts back what
    // comes through the tunnel.
    let service = tower::service_fn(|mut req: Request<Body>| async move {
        if req.method() != Method::CONNECT {
            let resp = Response::builder().status(405).body(Body::empty()).unwrap();
            return Ok::<_, Infallible>(resp);
        }
        if req.headers().contains_key("x-refuse") {
            let resp = Response::builder().status(403).body(Body::empty()).unwrap();
            return Ok(resp);
        }
        let on = upgrade::on(&mut req);
        spargio_rt::spawn(async move {
            if let Ok(mut io) = on.await {
                let mut buf = [0u8; 64];
                while let Ok(n) = io.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    let shout = buf[..n].to_ascii_uppercase();
                    if io.write_all(&shout).await.is_err() {
                        break;
                    }
                }
            }
        });
        Ok(Response::new(Body::empty()))
    });
    let server = TestServer::start(service);
    let addr = server.addr;
    let proxy = PythonProxy::start(None);
    let proxy_uri = proxy.uri(None);
    run(move || async move {
        let client = Client::new();
        let req = Request::builder()
            .method(Method::CONNECT)
            .uri(format!("http://{addr}"))
            .body(Empty::<bytes::Bytes>::new())
            .unwrap();
        let mut resp = client.request(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let mut tunnel = upgrade::on(&mut resp).await.unwrap();
        tunnel.write_all(b"hello tunnel").await.unwrap();
        let mut got = [0u8; 12];
        tunnel.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"HELLO TUNNEL");

        // A refused CONNECT is an ordinary response, with no tunnel in it.
        let req = Request::builder()
            .method(Method::CONNECT)
            .uri(format!("http://{addr}"))
            .header("x-refuse", "1")
            .body(Empty::<bytes::Bytes>::new())
            .unwrap();
        let mut resp = client.request(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        assert!(upgrade::on(&mut resp).await.is_err());

        // A CONNECT without a port is refused before anything is sent.
        let req = Request::builder()
            .method(Method::CONNECT)
            .uri("http://127.0.0.1")
            .body(Empty::<bytes::Bytes>::new())
            .unwrap();
        let err = client.request(req).await.unwrap_err();
        assert!(matches!(err, ClientError::InvalidRequest { .. }), "{err:?}");

        // Through a proxy, the caller's CONNECT is the proxy's to answer:
        // its tunnel reaches the server, which then sees plain HTTP.
        let proxied = Client::builder()
            .proxy(Proxy::new(proxy_uri).unwrap())
            .build();
        let req = Request::builder()
            .method(Method::CONNECT)
            .uri(format!("http://{addr}"))
            .body(Empty::<bytes::Bytes>::new())
            .unwrap();
        let mut resp = proxied.request(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let mut tunnel = upgrade::on(&mut resp).await.unwrap();
        tunnel
            .write_all(b"GET /x HTTP/1.1\r\nhost: a\r\n\r\n")
            .await
            .unwrap();
        let mut head = [0u8; 12];
        tunnel.read_exact(&mut head).await.unwrap();
        assert_eq!(&head, b"HTTP/1.1 405");
    });
}
