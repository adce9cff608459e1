//! The echo server every net row talks to: a tokio current-thread runtime
//! on one thread of its own, a task per connection echoing what it reads.
//!
//! The same peer serves every runtime under test, so its cost is the same
//! in every row. It runs on a runtime (not a blocking thread per
//! connection, as spargio 0.5.13's bench did) so that 8 connections cost
//! one thread, not 8 competing for the 2 cores.

use std::net::SocketAddr;
use std::thread::JoinHandle;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A running echo server; dropping it stops it and joins its thread.
pub struct EchoPeer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

async fn echo(mut conn: tokio::net::TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if conn.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

impl EchoPeer {
    /// Binds `127.0.0.1:0` and starts serving.
    pub fn start() -> EchoPeer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind echo peer");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let addr = listener.local_addr().expect("echo peer address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("bench-echo-peer".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("build echo peer runtime");
                rt.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("echo listener");
                    let accept = async {
                        loop {
                            let (conn, _) = listener.accept().await.expect("echo accept");
                            conn.set_nodelay(true).expect("echo nodelay");
                            tokio::spawn(echo(conn));
                        }
                    };
                    tokio::select! {
                        _ = stopped => {}
                        () = accept => {}
                    }
                });
            })
            .expect("spawn echo peer thread");
        EchoPeer {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The address to connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for EchoPeer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
