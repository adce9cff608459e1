//! The WebSocket echo app the WebSocket tests serve.

use std::sync::mpsc;

use axum::routing::get;
use axum::Router;
use spargio_http::ws::{Message, WebSocketUpgrade};

/// What a handler saw, sent to the test thread.
pub type Seen = mpsc::Sender<String>;

/// An axum app whose `/ws` echoes text and binary messages and reports
/// every other message, error and the end to `seen`; `/ws-small` does
/// the same with a 1 KiB message limit.
pub fn echo_app(seen: Seen) -> Router {
    let small = seen.clone();
    Router::new()
        .route(
            "/ws",
            get(move |ws: WebSocketUpgrade| {
                let seen = seen.clone();
                async move {
                    ws.protocols(["superchat", "chat"])
                        .on_upgrade(move |s| echo(s, seen))
                }
            }),
        )
        .route(
            "/ws-small",
            get(move |ws: WebSocketUpgrade| {
                let seen = small.clone();
                async move { ws.max_message_size(1024).on_upgrade(move |s| echo(s, seen)) }
            }),
        )
}

pub async fn echo(mut socket: spargio_http::ws::WebSocket, seen: Seen) {
    if let Some(p) = socket.protocol() {
        let _ = seen.send(format!("protocol {}", p.to_str().unwrap()));
    }
    loop {
        match socket.recv().await {
            Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => {
                if socket.send(m).await.is_err() {
                    let _ = seen.send("send failed".into());
                    return;
                }
            }
            Some(Ok(other)) => {
                let _ = seen.send(format!("{other:?}"));
            }
            Some(Err(e)) => {
                let _ = seen.send(format!("error {e}"));
            }
            None => {
                let _ = seen.send("end".into());
                return;
            }
        }
    }
}
