//! The tokio peer of the service rows: a length-delimited server on a tokio
//! multi-thread runtime with [`WORKERS`] workers, written the way hyper
//! serves a connection: one task per connection that reads frames, calls
//! the service inline (awaits its response future on the connection's own
//! task) and writes the responses.
//!
//! Framing is spargio-service's sans-IO codec ([`FrameDecoder`],
//! [`encode_response`]), so both servers speak byte-identical frames.

use crate::harness::WORKERS;
use bytes::{Bytes, BytesMut};
use spargio_service::codec::{encode_response, FrameDecoder, Status};
use std::fmt::Display;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower_service::Service;

/// The smallest read a connection makes.
const MIN_READ: usize = 4 * 1024;

/// A running tokio server; dropping it shuts the runtime down.
pub struct TokioServer {
    addr: SocketAddr,
    rt: Option<tokio::runtime::Runtime>,
}

impl TokioServer {
    /// Binds `127.0.0.1:0` and serves `service` (cloned per connection).
    pub fn start<S>(service: S) -> TokioServer
    where
        S: Service<Bytes, Response = Bytes> + Clone + Send + 'static,
        S::Future: Send,
        S::Error: Display + Send,
    {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKERS)
            .thread_name("bench-svc-tokio")
            .enable_all()
            .build()
            .expect("build tokio runtime");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind tokio server");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let addr = listener.local_addr().expect("tokio server address");
        drop(rt.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            loop {
                let (conn, _) = match listener.accept().await {
                    Ok(c) => c,
                    Err(_) => continue,
                };
                conn.set_nodelay(true).expect("tokio nodelay");
                let service = service.clone();
                tokio::spawn(async move {
                    let _ = serve_connection(conn, service).await;
                });
            }
        }));
        TokioServer { addr, rt: Some(rt) }
    }

    /// The address to connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for TokioServer {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

/// Serves one connection until the client closes it: answers every
/// complete request in the read buffer in order, writes the answers in one
/// go, then reads more.
async fn serve_connection<S>(mut stream: tokio::net::TcpStream, mut service: S) -> io::Result<()>
where
    S: Service<Bytes, Response = Bytes>,
    S::Error: Display,
{
    let decoder = FrameDecoder::new();
    let mut input = BytesMut::with_capacity(MIN_READ);
    let mut output = BytesMut::with_capacity(MIN_READ);
    loop {
        while let Some(req) = decoder.decode(&mut input)? {
            let ready = poll_fn(|cx| service.poll_ready(cx)).await;
            let res = match ready {
                Ok(()) => service.call(req).await,
                Err(e) => Err(e),
            };
            match res {
                Ok(resp) => encode_response(Status::Ok, &resp, &mut output),
                Err(e) => {
                    encode_response(Status::ServiceError, e.to_string().as_bytes(), &mut output)
                }
            }
        }
        if !output.is_empty() {
            stream.write_all(&output).await?;
            output.clear();
        }
        let needed = decoder.bytes_needed(&input)?;
        input.reserve(needed.max(MIN_READ));
        if stream.read_buf(&mut input).await? == 0 {
            return Ok(());
        }
    }
}
