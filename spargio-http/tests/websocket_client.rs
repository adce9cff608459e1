//! The WebSocket client (`spargio_http::ws::connect`) and client-side
//! upgrades (`upgrade::on` on a `101` from `Client::request`): against
//! spargio's own server (plain and TLS), python's `websockets` server, and
//! raw servers here that answer byte by byte.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Child;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use futures_util::stream::FusedStream;
use futures_util::{AsyncReadExt, AsyncWriteExt};
use http::{Request, StatusCode};
use http_body::Frame;
use http_body_util::BodyExt;
use spargio_http::ws::{self, close_code, CloseFrame, ConnectError, Message, WebSocketConfig};
use spargio_http::{upgrade, Body, Client};

use common::ws_echo::echo_app;
use common::{run, TestServer};

/// A GET to `uri` offering `protocols`.
fn handshake(uri: &str, protocols: &str) -> Request<()> {
    let mut req = Request::get(uri);
    if !protocols.is_empty() {
        req = req.header("sec-websocket-protocol", protocols);
    }
    req.body(()).unwrap()
}

/// The next message, within 20 s.
async fn next(socket: &mut ws::WebSocket) -> Option<Message> {
    spargio_rt::time::timeout(Duration::from_secs(20), socket.recv())
        .await
        .expect("no message within 20 s")
        .map(|m| m.expect("a websocket error"))
}

fn test_pattern(n: usize) -> Bytes {
    Bytes::from(common::pattern(n))
}

#[test]
fn the_client_talks_to_an_axum_route_on_spargio() {
    let (tx, seen) = mpsc::channel();
    let server = TestServer::start(echo_app(tx));
    let uri = format!("ws://{}/ws", server.addr);
    run(move || async move {
        let req = handshake(&uri, "chat, superchat");
        let (mut socket, response) = ws::connect_with(&Client::new(), req, Default::default())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(socket.protocol().unwrap(), "superchat");
        // The server refuses unmasked frames: an echo shows the masking.
        socket.send(Message::text("héllo")).await.unwrap();
        assert_eq!(next(&mut socket).await, Some(Message::text("héllo")));
        let big = test_pattern(1 << 20);
        socket.send(Message::Binary(big.clone())).await.unwrap();
        assert_eq!(next(&mut socket).await, Some(Message::Binary(big)));
        socket
            .send(Message::Ping(Bytes::from_static(b"p")))
            .await
            .unwrap();
        assert_eq!(
            next(&mut socket).await,
            Some(Message::Pong(Bytes::from_static(b"p")))
        );
        socket
            .close_with(Some(CloseFrame::new(close_code::NORMAL, "done")))
            .await
            .unwrap();
        match next(&mut socket).await {
            Some(Message::Close(Some(frame))) => assert_eq!(frame.code, close_code::NORMAL),
            other => panic!("expected the close echoed, got {other:?}"),
        }
        assert_eq!(next(&mut socket).await, None);
    });
    // What the server's handler saw, up to its end.
    let mut saw = Vec::new();
    while saw.last().map(String::as_str) != Some("end") {
        let s = seen
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("the handler did not end; it saw {saw:?}"));
        saw.push(s);
    }
    assert_eq!(saw.first().map(String::as_str), Some("protocol superchat"));
    assert!(saw.iter().any(|s| s.starts_with("Ping")), "{saw:?}");
    assert!(saw.iter().any(|s| s.contains("done")), "{saw:?}");
}

/// A handler as axum 0.8's WebSocket examples write one; only its imports
/// (`spargio_http::ws` for `axum::extract::ws`) differ.
mod written_for_axum {
    use axum::response::IntoResponse;
    use bytes::Bytes;
    use spargio_http::ws::{
        close_code, CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade,
    };

    pub async fn ws_handler(mut ws: WebSocketUpgrade) -> impl IntoResponse {
        if let Some(protocol) = ws.requested_protocols().last().cloned() {
            ws.set_selected_protocol(protocol);
        }
        ws.max_message_size(1 << 20)
            .on_failed_upgrade(|error| println!("upgrade failed: {error}"))
            .on_upgrade(handle_socket)
    }

    async fn handle_socket(mut socket: WebSocket) {
        if socket
            .send(Message::Ping(Bytes::from_static(&[1, 2, 3])))
            .await
            .is_err()
        {
            return;
        }
        while let Some(msg) = socket.recv().await {
            let Ok(msg) = msg else { return };
            match msg {
                Message::Text(t) if t.as_str() == "bye" => break,
                Message::Text(t) => {
                    let answer = format!("you said {t} ({} bytes)", t.len());
                    if socket.send(Message::Text(answer.into())).await.is_err() {
                        return;
                    }
                }
                Message::Binary(d) => {
                    let text = Message::Binary(d.clone()).into_text().unwrap_or_default();
                    if socket.send(Message::text(text)).await.is_err() {
                        return;
                    }
                }
                Message::Close(c) => {
                    if let Some(cf) = c {
                        println!("close with code {} and reason `{}`", cf.code, cf.reason);
                    }
                    return;
                }
                Message::Ping(_) | Message::Pong(_) => {}
            }
        }
        let _ = socket
            .send(Message::Close(Some(CloseFrame {
                code: close_code::NORMAL,
                reason: Utf8Bytes::from_static("Goodbye"),
            })))
            .await;
    }
}

#[test]
fn a_handler_written_for_axum_runs_with_only_its_imports_changed() {
    let app = axum::Router::new().route("/ws", axum::routing::get(written_for_axum::ws_handler));
    let server = TestServer::start(app);
    let uri = format!("ws://{}/ws", server.addr);
    run(move || async move {
        let req = handshake(&uri, "v1, v2");
        let (mut socket, _) = ws::connect_with(&Client::new(), req, Default::default())
            .await
            .unwrap();
        assert_eq!(socket.protocol().unwrap(), "v2");
        assert_eq!(
            next(&mut socket).await,
            Some(Message::Ping(Bytes::from_static(&[1, 2, 3])))
        );
        socket.send(Message::text("héllo")).await.unwrap();
        assert_eq!(
            next(&mut socket).await,
            Some(Message::text("you said héllo (6 bytes)"))
        );
        socket.send(Message::binary(&b"as text"[..])).await.unwrap();
        assert_eq!(next(&mut socket).await, Some(Message::text("as text")));
        socket.send(Message::text("bye")).await.unwrap();
        match next(&mut socket).await {
            Some(Message::Close(Some(frame))) => {
                assert_eq!(frame.code, close_code::NORMAL);
                assert_eq!(frame.reason, "Goodbye");
            }
            other => panic!("expected the handler's close, got {other:?}"),
        }
        assert_eq!(next(&mut socket).await, None);
    });
}

#[test]
fn the_client_talks_over_tls() {
    let (acceptor, connector) = common::localhost_tls();
    let (tx, _seen) = mpsc::channel();
    let server =
        TestServer::start_with(spargio_http::Http::new().tls(acceptor), |b| b, echo_app(tx));
    let uri = format!("wss://localhost:{}/ws", server.addr.port());
    run(move || async move {
        let client = Client::builder().tls(connector).build();
        let (mut socket, _) = ws::connect_with(&client, handshake(&uri, ""), Default::default())
            .await
            .unwrap();
        assert_eq!(socket.protocol(), None);
        let big = test_pattern(300 << 10);
        socket.send(Message::Binary(big.clone())).await.unwrap();
        assert_eq!(next(&mut socket).await, Some(Message::Binary(big)));
        assert!(!socket.is_terminated());
        socket.close().await.unwrap();
        assert!(matches!(next(&mut socket).await, Some(Message::Close(_))));
        assert_eq!(next(&mut socket).await, None);
        assert!(socket.is_terminated(), "a FusedStream once it ended");
    });
}

/// python's `websockets` server (`tests/clients/ws_server.py`), stopped
/// when dropped.
struct PythonServer {
    child: Child,
    port: u16,
}

impl PythonServer {
    fn start() -> PythonServer {
        assert!(
            common::python_imports("websockets.sync.server"),
            "python3's websockets (13 or later) is not installed: run \
             `python3 -m pip install websockets` (.ci/test-tools installs it)"
        );
        let (child, port) = common::python_server("ws_server.py", &[]);
        PythonServer { child, port }
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        // Closing its stdin stops it.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

#[test]
fn the_client_talks_to_python_websockets_server() {
    let server = PythonServer::start();
    let base = format!("ws://127.0.0.1:{}/", server.port);
    run(move || async move {
        let client = Client::new();
        let req = handshake(&base, "chat");
        let (mut socket, _) = ws::connect_with(&client, req, Default::default())
            .await
            .unwrap();
        assert_eq!(socket.protocol().unwrap(), "chat");
        // Sent by the server as soon as the handshake is done.
        assert_eq!(next(&mut socket).await, Some(Message::text("welcome chat")));
        socket.send(Message::text("héllo")).await.unwrap();
        assert_eq!(next(&mut socket).await, Some(Message::text("héllo")));
        let big = test_pattern(100 << 10);
        socket.send(Message::Binary(big.clone())).await.unwrap();
        assert_eq!(next(&mut socket).await, Some(Message::Binary(big)));
        socket.send(Message::text("close please")).await.unwrap();
        match next(&mut socket).await {
            Some(Message::Close(Some(frame))) => {
                assert_eq!(frame.code, 4000);
                assert_eq!(frame.reason, "bye");
            }
            other => panic!("expected the server's close, got {other:?}"),
        }
        assert_eq!(next(&mut socket).await, None);

        // A refusal comes back whole.
        let mut req = handshake(&base, "");
        req.headers_mut()
            .insert("x-refuse", http::HeaderValue::from_static("1"));
        match ws::connect_with(&client, req, WebSocketConfig::default()).await {
            Err(ConnectError::NotSwitched(response)) => {
                assert_eq!(response.status(), StatusCode::FORBIDDEN);
                let body = response.into_body().collect().await.unwrap().to_bytes();
                assert_eq!(&body[..], b"refused\n");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    });
}

/// A server thread that takes one connection, reads the request head and
/// runs `then` with the stream and the head's fields (names lowercased).
fn raw_server<T: Send + 'static>(
    then: impl FnOnce(TcpStream, Vec<(String, String)>) -> T + Send + 'static,
) -> (SocketAddr, JoinHandle<T>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let thread = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut fields = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                fields.push((name.to_ascii_lowercase(), value.trim().to_string()));
            }
        }
        assert!(reader.buffer().is_empty(), "the request had a body");
        then(stream, fields)
    });
    (addr, thread)
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} in {fields:?}"))
}

/// `Sec-WebSocket-Accept` for `key`, computed here.
fn accept_for(key: &str) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(key.as_bytes());
    ctx.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(ctx.finish())
}

/// Whether the peer closed `stream` (end of stream or reset) within 20 s,
/// reading and dropping whatever comes first.
fn peer_closes(mut stream: TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn what_the_server_sends_with_the_switch_reaches_the_socket() {
    let (addr, server) = raw_server(|mut stream, fields| {
        assert_eq!(field(&fields, "sec-websocket-version"), "13");
        assert!(field(&fields, "upgrade").eq_ignore_ascii_case("websocket"));
        let accept = accept_for(field(&fields, "sec-websocket-key"));
        // The head and a first (unmasked) text frame in one write, so the
        // client reads the frame with the head.
        let mut out = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        )
        .into_bytes();
        out.extend_from_slice(&[0x81, 5]);
        out.extend_from_slice(b"early");
        stream.write_all(&out).unwrap();
        // The client's close: masked, code 1000.
        let mut close = [0u8; 8];
        stream.read_exact(&mut close).unwrap();
        assert_eq!(close[..2], [0x88, 0x82], "a masked 2-byte close");
        let code = [close[6] ^ close[2], close[7] ^ close[3]];
        assert_eq!(u16::from_be_bytes(code), 1000);
    });
    run(move || async move {
        let (mut socket, _) = ws::connect(format!("ws://{addr}/")).await.unwrap();
        assert_eq!(next(&mut socket).await, Some(Message::text("early")));
        socket
            .close_with(Some(CloseFrame::new(close_code::NORMAL, "")))
            .await
            .unwrap();
    });
    server.join().unwrap();
}

#[test]
fn a_switch_that_breaks_the_handshake_is_refused_and_its_connection_closed() {
    let (addr, server) = raw_server(|mut stream, _| {
        // The accept value of another key.
        let accept = accept_for("dGhlIHNhbXBsZSBub25jZQ==");
        write!(
            stream,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        )
        .unwrap();
        peer_closes(stream)
    });
    let closed = run(move || async move {
        // Kept until the server has seen the close: dropping the client
        // (and its pool) would close a connection it wrongly kept.
        let client = Client::new();
        let req = handshake(&format!("ws://{addr}/"), "");
        match ws::connect_with(&client, req, WebSocketConfig::default()).await {
            Err(ConnectError::InvalidResponse(why)) => assert!(why.contains("Accept"), "{why}"),
            other => panic!("expected an invalid response, got {:?}", other.map(|_| ())),
        }
        // Waited for with the runtime still up (its end would close
        // whatever it still held).
        joined(server).await
    });
    assert!(closed, "the client kept the connection");
}

/// `thread`'s result, waited for on the blocking pool.
async fn joined<T: Send + 'static>(thread: JoinHandle<T>) -> T {
    spargio_rt::spawn_blocking(move || thread.join().unwrap())
        .await
        .unwrap()
}

/// A `101` to the `echo` protocol.
const SWITCH_TO_ECHO: &[u8] =
    b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n";

/// A raw server that answers [`SWITCH_TO_ECHO`] and then tells whether the
/// client closed the connection.
fn switches_then_waits_for_the_close() -> (SocketAddr, JoinHandle<bool>) {
    raw_server(|mut stream, _| {
        stream.write_all(SWITCH_TO_ECHO).unwrap();
        peer_closes(stream)
    })
}

#[test]
fn a_client_request_can_be_upgraded_to_any_protocol() {
    let (addr, server) = raw_server(|mut stream, fields| {
        assert_eq!(field(&fields, "upgrade"), "echo");
        stream.write_all(SWITCH_TO_ECHO).unwrap();
        // Echo until the client closes.
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).unwrap() {
                0 => return,
                n => stream.write_all(&buf[..n]).unwrap(),
            }
        }
    });
    run(move || async move {
        let req = Request::get(format!("http://{addr}/tunnel"))
            .header("connection", "upgrade")
            .header("upgrade", "echo")
            .body(Body::empty())
            .unwrap();
        let mut response = Client::new().request(req).await.unwrap();
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        let mut io = upgrade::on(&mut response).await.unwrap();
        io.write_all(b"over the switched connection").await.unwrap();
        io.flush().await.unwrap();
        let mut echoed = [0u8; 28];
        io.read_exact(&mut echoed).await.unwrap();
        assert_eq!(&echoed, b"over the switched connection");
        io.close().await.unwrap();
        // A response taken a second time has no upgrade left.
        assert_eq!(
            upgrade::on(&mut response).await.err(),
            Some(upgrade::UpgradeError::AlreadyTaken)
        );
    });
    server.join().unwrap();
}

#[test]
fn a_switch_nobody_takes_closes_its_connection() {
    let (addr, server) = switches_then_waits_for_the_close();
    let closed = run(move || async move {
        let req = Request::get(format!("http://{addr}/"))
            .header("connection", "upgrade")
            .header("upgrade", "echo")
            .body(Body::empty())
            .unwrap();
        let client = Client::new();
        let response = client.request(req).await.unwrap();
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        drop(response);
        joined(server).await
    });
    assert!(closed, "the client kept the connection");
}

/// Frames for a request body, as the test sends them.
type Feed = futures_channel::mpsc::UnboundedSender<Result<Frame<Bytes>, std::io::Error>>;

/// A request asking to switch to the `echo` protocol, with a body of
/// `len` bytes that comes as the returned feed sends it (and never ends
/// while the feed lives).
fn echo_upgrade(
    addr: SocketAddr,
    len: u64,
) -> (
    Feed,
    Request<impl http_body::Body<Data = Bytes, Error = std::io::Error>>,
) {
    let (feed, frames) = futures_channel::mpsc::unbounded();
    let req = Request::post(format!("http://{addr}/"))
        .header("connection", "upgrade")
        .header("upgrade", "echo")
        .header("content-length", len)
        .body(http_body_util::StreamBody::new(frames))
        .unwrap();
    (feed, req)
}

#[test]
fn a_switch_before_the_request_body_ends_waits_for_it() {
    let (addr, server) = raw_server(|mut stream, fields| {
        assert_eq!(field(&fields, "content-length"), "5");
        stream.write_all(SWITCH_TO_ECHO).unwrap();
        // The request's body, then the new protocol.
        let mut body = [0u8; 5];
        stream.read_exact(&mut body).unwrap();
        assert_eq!(&body, b"hello");
        let mut buf = [0u8; 6];
        stream.read_exact(&mut buf).unwrap();
        stream.write_all(&buf).unwrap();
    });
    run(move || async move {
        let (feed, req) = echo_upgrade(addr, 5);
        let mut response = Client::new().request(req).await.unwrap();
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        // The body goes out after the 101 came; the switch waits for it.
        feed.unbounded_send(Ok(Frame::data(Bytes::from_static(b"hello"))))
            .unwrap();
        let mut io = upgrade::on(&mut response).await.unwrap();
        io.write_all(b"echoed").await.unwrap();
        io.flush().await.unwrap();
        let mut echoed = [0u8; 6];
        io.read_exact(&mut echoed).await.unwrap();
        assert_eq!(&echoed, b"echoed");
        drop(feed);
    });
    server.join().unwrap();
}

#[test]
fn a_switch_whose_request_body_never_ends_closes_once_nobody_wants_it() {
    let (addr, server) = switches_then_waits_for_the_close();
    let closed = run(move || async move {
        let client = Client::new();
        // A body of 8 MiB of which nothing ever comes.
        let (feed, req) = echo_upgrade(addr, 8 << 20);
        let response = client.request(req).await.unwrap();
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        drop(response);
        let closed = joined(server).await;
        drop(feed);
        closed
    });
    assert!(closed, "the client kept the connection");
}
