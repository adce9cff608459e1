//! WebSockets end to end: an axum route with `spargio_http::ws`'s
//! extractor, driven by a blocking client that frames by hand (its own
//! masking and parsing, independent of the crate's codec).

mod common;

use std::io::Read;
use std::sync::mpsc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use common::ws_echo::echo_app;
use common::{RawClient, TestServer};
use spargio_http::ws::{close_code, CloseFrame, Message, WebSocketUpgrade};

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// The handshake request for `path`, with extra header lines.
fn handshake(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n{extra}\r\n"
    )
}

/// Connects and completes the handshake for `path`.
fn open(server: &TestServer, path: &str, extra: &str) -> (RawClient, common::RawResponse) {
    let mut c = server.connect();
    let resp = c.roundtrip(handshake(path, extra).as_bytes());
    assert_eq!(resp.status, 101, "{resp:?}");
    assert_eq!(resp.header("sec-websocket-accept"), Some(ACCEPT));
    assert!(resp
        .header("upgrade")
        .unwrap()
        .eq_ignore_ascii_case("websocket"));
    (c, resp)
}

/// A masked client frame.
fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0x5A, 0x01, 0xC3, 0x7E];
    let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

/// Reads one server frame: (fin, opcode, payload). Server frames must be
/// unmasked.
fn read_frame(c: &mut RawClient) -> (bool, u8, Vec<u8>) {
    let mut head = [0u8; 2];
    c.reader.read_exact(&mut head).expect("frame header");
    assert_eq!(head[1] & 0x80, 0, "a server frame was masked");
    let len = match head[1] & 0x7F {
        126 => {
            let mut b = [0u8; 2];
            c.reader.read_exact(&mut b).unwrap();
            u64::from(u16::from_be_bytes(b))
        }
        127 => {
            let mut b = [0u8; 8];
            c.reader.read_exact(&mut b).unwrap();
            u64::from_be_bytes(b)
        }
        n => u64::from(n),
    };
    let mut payload = vec![0u8; len as usize];
    c.reader.read_exact(&mut payload).unwrap();
    (head[0] & 0x80 != 0, head[0] & 0x0F, payload)
}

/// Reads a close frame and returns its code.
fn read_close(c: &mut RawClient) -> u16 {
    let (fin, opcode, payload) = read_frame(c);
    assert!(fin);
    assert_eq!(
        opcode, 0x8,
        "expected a close, got opcode {opcode}: {payload:?}"
    );
    u16::from_be_bytes([payload[0], payload[1]])
}

fn next(seen: &mpsc::Receiver<String>) -> String {
    seen.recv_timeout(Duration::from_secs(20))
        .expect("the handler reported nothing within 20 s")
}

#[test]
fn an_axum_route_echoes_text_and_fragmented_binary_and_answers_ping_and_close() {
    let (tx, seen) = mpsc::channel();
    let server = TestServer::start(echo_app(tx));
    let (mut c, resp) = open(&server, "/ws", "");
    assert_eq!(resp.header("sec-websocket-protocol"), None);

    c.send(&frame(true, 0x1, "héllo".as_bytes()));
    assert_eq!(read_frame(&mut c), (true, 0x1, "héllo".as_bytes().to_vec()));

    // 70 000 bytes in three fragments, a ping between two of them.
    let data: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    c.send(&frame(false, 0x2, &data[..1000]));
    c.send(&frame(true, 0x9, b"are you there"));
    c.send(&frame(false, 0x0, &data[1000..60_000]));
    c.send(&frame(true, 0x0, &data[60_000..]));
    assert_eq!(read_frame(&mut c), (true, 0xA, b"are you there".to_vec()));
    assert_eq!(read_frame(&mut c), (true, 0x2, data));
    assert_eq!(next(&seen), "Ping(b\"are you there\")");

    let mut close = 1000u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"bye");
    c.send(&frame(true, 0x8, &close));
    assert_eq!(read_close(&mut c), 1000, "the close's code is echoed");
    assert!(c.is_closed(), "the server shuts its side after the closes");
    assert!(next(&seen).starts_with("Close(Some(CloseFrame { code: 1000, reason: \"bye\""));
    assert_eq!(next(&seen), "end");
}

#[test]
fn the_first_server_protocol_the_client_offered_is_chosen() {
    let (tx, seen) = mpsc::channel();
    let server = TestServer::start(echo_app(tx));
    let (_c, resp) = open(
        &server,
        "/ws",
        "Sec-WebSocket-Protocol: chat, superchat\r\n",
    );
    assert_eq!(resp.header("sec-websocket-protocol"), Some("superchat"));
    assert_eq!(next(&seen), "protocol superchat");
}

#[test]
fn refused_handshakes_get_their_status_and_the_connection_serves_on() {
    let (tx, _seen) = mpsc::channel();
    let server = TestServer::start(echo_app(tx));
    let mut c = server.connect();
    // A plain GET: 426 naming the protocol to upgrade to.
    let resp = c.roundtrip(b"GET /ws HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(resp.status, 426);
    assert_eq!(resp.header("upgrade"), Some("websocket"));
    // A sender of Upgrade names it in Connection too (RFC 9110 §7.8).
    assert_eq!(resp.header("connection"), Some("upgrade"));
    // A version this server does not speak: 426 naming the one it does.
    let old = handshake("/ws", "").replace("Version: 13", "Version: 8");
    let resp = c.roundtrip(old.as_bytes());
    assert_eq!(resp.status, 426);
    assert_eq!(resp.header("sec-websocket-version"), Some("13"));
    assert_eq!(resp.header("upgrade"), Some("websocket"));
    // A key that is not 16 bytes of base64: 400.
    let bad_key = handshake("/ws", "").replace(KEY, "c2hvcnQ=");
    let resp = c.roundtrip(bad_key.as_bytes());
    assert_eq!(resp.status, 400);
    // The connection still works, for a WebSocket too.
    let resp = c.roundtrip(handshake("/ws", "").as_bytes());
    assert_eq!(resp.status, 101);
    c.send(&frame(true, 0x1, b"still here"));
    assert_eq!(read_frame(&mut c), (true, 0x1, b"still here".to_vec()));
}

#[test]
fn broken_rules_close_with_their_codes_and_the_handler_hears_why() {
    let (tx, seen) = mpsc::channel();
    let server = TestServer::start(echo_app(tx));
    let cases: [(&str, Vec<u8>, u16, &str); 4] = [
        ("/ws", b"\x81\x02hi".to_vec(), 1002, "masking"),
        ("/ws", frame(true, 0x1, &[0xC3, 0x28]), 1007, "UTF-8"),
        (
            "/ws-small",
            frame(true, 0x2, &[0u8; 2000]),
            1009,
            "too large",
        ),
        ("/ws", frame(true, 0x0, b"orphan"), 1002, "continuation"),
    ];
    for (path, bytes, code, why) in cases {
        let (mut c, _) = open(&server, path, "");
        c.send(&bytes);
        assert_eq!(read_close(&mut c), code, "{why}");
        assert!(c.is_closed(), "{why}: the server shuts its side");
        // The server lingers (reading) until the client ends its side.
        c.stream.shutdown(std::net::Shutdown::Write).unwrap();
        let error = next(&seen);
        assert!(
            error.starts_with("error websocket protocol error"),
            "{why}: {error}"
        );
        assert!(error.contains(why), "{why}: {error}");
        assert_eq!(next(&seen), "end");
    }
}

#[test]
fn a_server_that_closes_first_hears_the_client_answer() {
    let (tx, seen) = mpsc::channel::<String>();
    let app = Router::new().route(
        "/bye",
        get(move |ws: WebSocketUpgrade| {
            let seen = tx.clone();
            async move {
                ws.on_upgrade(move |mut socket| async move {
                    socket.send(Message::text("last words")).await.unwrap();
                    let frame = CloseFrame::new(close_code::AWAY, "shutting down");
                    socket.close_with(Some(frame)).await.unwrap();
                    let refused = socket.send(Message::text("after close")).await;
                    let _ = seen.send(format!("send after close: {}", refused.is_err()));
                    while let Some(m) = socket.recv().await {
                        let _ = seen.send(format!("{m:?}"));
                    }
                    let _ = seen.send("end".into());
                })
            }
        }),
    );
    let server = TestServer::start(app);
    let (mut c, _) = open(&server, "/bye", "");
    assert_eq!(read_frame(&mut c), (true, 0x1, b"last words".to_vec()));
    assert_eq!(read_close(&mut c), 1001);
    assert_eq!(next(&seen), "send after close: true");
    // The client answers; the server then ends the connection.
    c.send(&frame(true, 0x8, &1001u16.to_be_bytes()));
    assert!(next(&seen).starts_with("Ok(Close(Some(CloseFrame { code: 1001"));
    assert_eq!(next(&seen), "end");
    assert!(c.is_closed());
}

#[test]
fn a_switch_a_middleware_undoes_is_reported_to_on_failed_upgrade() {
    let (tx, seen) = mpsc::channel::<String>();
    let app = Router::new()
        .route(
            "/ws",
            get(move |ws: WebSocketUpgrade| {
                let (failed, upgraded) = (tx.clone(), tx.clone());
                async move {
                    ws.on_failed_upgrade(move |e| {
                        let _ = failed.send(format!("failed: {e}"));
                    })
                    .on_upgrade(move |_| async move {
                        let _ = upgraded.send("upgraded".into());
                    })
                }
            }),
        )
        // A layer that answers for the handler: no 101 goes out.
        .layer(tower::util::MapResponseLayer::new(
            |_: axum::response::Response| {
                axum::response::Response::new(axum::body::Body::from("not today"))
            },
        ));
    let server = TestServer::start(app);
    let mut c = server.connect();
    let resp = c.roundtrip(handshake("/ws", "").as_bytes());
    assert_eq!(resp.status, 200, "{resp:?}");
    let failed = next(&seen);
    assert!(
        failed.starts_with("failed: the connection was not switched"),
        "{failed}"
    );
    // The connection serves on as HTTP.
    let again = c.roundtrip(b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(again.status, 200);
}

#[test]
fn a_client_that_vanishes_without_a_close_is_an_error_to_the_handler() {
    let (tx, seen) = mpsc::channel();
    let server = TestServer::start(echo_app(tx));
    let (mut c, _) = open(&server, "/ws", "");
    // Half a frame, then the connection ends.
    c.send(&frame(true, 0x1, b"cut short")[..5]);
    c.stream.shutdown(std::net::Shutdown::Write).unwrap();
    let error = next(&seen);
    assert!(error.contains("without a close frame"), "{error}");
    assert_eq!(next(&seen), "end");
    assert!(c.is_closed(), "the server ends its side too");
}

#[test]
fn the_python_websockets_client_talks_to_an_axum_route() {
    require_python_websockets();
    let (tx, _seen) = mpsc::channel();
    let server = TestServer::start(echo_app(tx));
    common::python("ws_client.py", server.addr);
}

#[test]
fn the_python_websockets_client_talks_over_tls() {
    require_python_websockets();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("cert.pem");
    std::fs::write(&ca, cert.cert.pem()).unwrap();
    let acceptor = spargio_http::tls::TlsAcceptor::from_pem(
        cert.cert.pem().as_bytes(),
        cert.key_pair.serialize_pem().as_bytes(),
    )
    .unwrap();
    let (tx, _seen) = mpsc::channel();
    let server =
        TestServer::start_with(spargio_http::Http::new().tls(acceptor), |b| b, echo_app(tx));
    common::python_with("ws_client.py", server.addr, &[ca.as_os_str()]);
}

/// Fails unless python3 has the `websockets` client the scripts use.
fn require_python_websockets() {
    assert!(
        common::python_imports("websockets.sync.client"),
        "python3's websockets (13 or later) is not installed: run \
         `python3 -m pip install websockets` (.ci/test-tools installs it)"
    );
}
