//! HTTP on connections served one at a time with `ServeConnection`: a
//! user's own accept loop, and one end of a socket pair.

use std::convert::Infallible;
use std::time::Duration;

use bytes::BytesMut;
use http::{Request, Response};
use spargio_http::transport::{Transport, TransportRead, TransportWrite};
use spargio_http::{Body, Client, Http, ServeConnection};
use spargio_rt::net::{TcpListener, UnixStream};

fn hello() -> impl tower::Service<
    Request<Body>,
    Response = Response<Body>,
    Error = Infallible,
    Future: Send + 'static,
> + Clone
       + 'static {
    tower::service_fn(|req: Request<Body>| async move {
        Ok::<_, Infallible>(Response::new(Body::from(format!(
            "hello {}",
            req.uri().path()
        ))))
    })
}

#[test]
fn an_http_server_on_a_users_own_accept_loop() {
    spargio_rt::run_with(spargio_rt::Runtime::builder().shards(2), |_| async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepting = spargio_rt::spawn_local(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let sc = ServeConnection::new(Http::new());
                drop(spargio_rt::spawn_local(async move {
                    sc.serve(stream, hello()).await
                }));
            }
        });
        let client = Client::new();
        for path in ["/a", "/b"] {
            let resp = client.get(format!("http://{addr}{path}")).await.unwrap();
            assert_eq!(resp.status(), 200);
            use http_body_util::BodyExt;
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, format!("hello {path}"));
        }
        accepting.abort();
    })
    .unwrap();
}

#[test]
fn http_on_one_end_of_a_socket_pair_answers_and_ends_with_the_client() {
    let text = spargio_rt::run(|_| async {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let serving = spargio_rt::spawn_local(spargio_http::serve_connection(
            Http::new(),
            ours,
            hello(),
        ));
        let (mut read, mut write) = spargio_rt::net::SocketStream::from(theirs).split();
        let req = "GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let (res, _) = write.write_all(BytesMut::from(req.as_bytes())).await;
        res.unwrap();
        let mut got = BytesMut::new();
        loop {
            let next = spargio_rt::time::timeout(Duration::from_secs(20), read.read_some(got));
            let (res, buf) = next.await.expect("the server never ended the connection");
            got = buf;
            if res.unwrap() == 0 {
                break;
            }
        }
        // The server lingers for our close after its own.
        drop((read, write));
        serving.await.unwrap().unwrap();
        String::from_utf8(got.to_vec()).unwrap()
    })
    .unwrap();
    assert_eq!(text.matches("HTTP/1.1 200 OK\r\n").count(), 2, "{text}");
    assert!(
        text.contains("hello /one") && text.ends_with("hello /two"),
        "{text}"
    );
}

/// A response body that panics when polled.
struct PanickingBody;

impl http_body::Body for PanickingBody {
    type Data = bytes::Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Infallible>>> {
        panic!("the body blew up");
    }
}

#[test]
fn a_response_body_that_panics_is_answered_with_a_500_and_a_close() {
    let text = spargio_rt::run(|_| async {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let service = tower::service_fn(|_req: Request<Body>| async {
            Ok::<_, Infallible>(Response::new(PanickingBody))
        });
        let (mut read, mut write) = spargio_rt::net::SocketStream::from(theirs).split();
        let (res, _) = write
            .write_all(BytesMut::from(&b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..]))
            .await;
        res.unwrap();
        // Awaited right here, as an accept loop might: the panic is caught
        // where the body is polled, a body error like any other, and never
        // unwinds this task.
        spargio_http::serve_connection(Http::new(), ours, service)
            .await
            .expect("the connection ends cleanly");
        // The client gets the 500, then the end of the connection.
        let mut got = BytesMut::with_capacity(1024);
        loop {
            let (res, buf) = read.read_some(got).await;
            got = buf;
            if res.unwrap() == 0 {
                break;
            }
        }
        String::from_utf8(got.to_vec()).unwrap()
    })
    .unwrap();
    assert!(text.starts_with("HTTP/1.1 500"), "{text}");
    assert!(text.contains("connection: close"), "{text}");
}
