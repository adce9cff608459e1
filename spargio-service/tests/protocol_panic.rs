//! A panic while serving a connection outside any request's handler (in
//! the protocol itself, or in a response body it sends) ends that
//! connection only, is counted in `protocol_panics`, and during a shutdown
//! is reported as `failed`, not as a graceful close.

mod common;

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use common::{run2, until_stats};
use spargio_rt::io::{AsyncReadExt, AsyncWriteExt};
use spargio_rt::net::TcpStream;
use spargio_service::{Connection, Handler, Protocol, Server};
use tower::service_fn;

/// Reads one byte, then panics: at once, or once the server's graceful
/// shutdown has begun when `after_shutdown` is set.
#[derive(Clone)]
struct PanicsAfterOneByte {
    after_shutdown: bool,
}

impl Protocol for PanicsAfterOneByte {
    type Request = Bytes;
    type Response = Bytes;

    fn serve_connection<H>(
        &self,
        stream: spargio_rt::net::SocketStream,
        _handler: H,
        conn: Connection,
    ) -> impl Future<Output = std::io::Result<()>>
    where
        H: Handler<Bytes, Response = Bytes>,
    {
        let after_shutdown = self.after_shutdown;
        async move {
            let mut stream = stream;
            let (res, _) = stream.read_exact(vec![0u8; 1]).await;
            res?;
            if after_shutdown {
                conn.closing().await;
            }
            panic!("a bug in the protocol");
        }
    }
}

/// Connects and sends the one byte the protocol waits for.
async fn poke(addr: std::net::SocketAddr) -> TcpStream {
    let mut c = TcpStream::connect(addr).await.unwrap();
    let (res, _) = c.write_all(b"!".to_vec()).await;
    res.unwrap();
    c
}

/// Reads until the server closes `c`.
async fn until_closed(mut c: TcpStream) {
    let read = spargio_rt::time::timeout(Duration::from_secs(20), c.read_to_end(Vec::new()));
    let (res, _) = read.await.expect("the connection stayed open");
    // A close or a reset: either way the connection is gone.
    drop(res);
}

fn never_called() -> impl tower::Service<
    Bytes,
    Response = Bytes,
    Error = Infallible,
    Future = std::future::Ready<Result<Bytes, Infallible>>,
> + Clone
       + Send
       + 'static {
    service_fn(|req: Bytes| std::future::ready(Ok(req)))
}

#[test]
fn a_protocol_panic_closes_its_connection_only_and_is_counted() {
    run2(|handle| async move {
        let server = Server::builder().bind(&handle, "127.0.0.1:0").unwrap();
        let addr = server.local_addr();
        let stats = server.stats();
        let stop = server.shutdown_handle();
        let protocol = PanicsAfterOneByte {
            after_shutdown: false,
        };
        let serving = handle.spawn_local(server.serve_service(protocol, never_called()));
        // A connection that does not trigger the panic stays served.
        let quiet = TcpStream::connect(addr).await.unwrap();
        for n in 1..=2 {
            until_closed(poke(addr).await).await;
            until_stats(&stats, "the panic counted", |s| s.protocol_panics == n).await;
        }
        until_stats(&stats, "the panicked connections' places freed", |s| {
            s.active == 1
        })
        .await;
        let s = stats.snapshot();
        assert_eq!((s.accepted, s.panics, s.requests), (3, 0, 0), "{s:?}");
        drop(quiet);
        stop.shutdown();
        let report = serving.await.unwrap().unwrap();
        assert_eq!(report.failed, 0, "{report:?}");
    });
}

#[test]
fn a_protocol_panic_during_shutdown_is_reported_failed_not_graceful() {
    let report = run2(|handle| async move {
        let server = Server::builder()
            .shutdown_timeout(Duration::from_secs(20))
            .bind(&handle, "127.0.0.1:0")
            .unwrap();
        let addr = server.local_addr();
        let stats = server.stats();
        let stop = server.shutdown_handle();
        let protocol = PanicsAfterOneByte {
            after_shutdown: true,
        };
        let serving = handle.spawn_local(server.serve_service(protocol, never_called()));
        let c = poke(addr).await;
        until_stats(&stats, "the connection accepted", |s| s.accepted == 1).await;
        stop.shutdown();
        until_closed(c).await;
        let report = spargio_rt::time::timeout(Duration::from_secs(20), serving)
            .await
            .expect("serve must return")
            .unwrap()
            .unwrap();
        assert_eq!(stats.snapshot().protocol_panics, 1);
        report
    });
    assert_eq!(report.open_at_start, 1, "{report:?}");
    assert_eq!(
        (report.failed, report.closed_gracefully, report.cut),
        (1, 0, 0),
        "{report:?}"
    );
}
