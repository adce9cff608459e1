//! A TCP echo server on the ring: multishot accept, connections spread
//! round-robin over the shards (each served by a task pinned there, so its
//! socket I/O stays on that shard's ring), Ctrl-C to stop.
//!
//! ```sh
//! cargo run --release -p spargio-rt --example echo            # 127.0.0.1:7878
//! cargo run --release -p spargio-rt --example echo -- 0.0.0.0:9000
//! printf 'hello\n' | nc -q1 127.0.0.1 7878
//! ```
//!
//! A failed accept is reported and the loop goes on; when the process or
//! the system is out of file descriptors or kernel memory (`EMFILE`,
//! `ENFILE`, `ENOBUFS`, `ENOMEM`), it first sleeps 100 ms so that the
//! next tries do not spin (and flood stderr) until some connection closes.

use std::process::ExitCode;
use std::time::Duration;

use spargio_rt::io::{AsyncRead, AsyncWriteExt};
use spargio_rt::net::{TcpListener, TcpStream};
use spargio_rt::{RuntimeHandle, TaskPlacement};

/// How long accepting pauses after running out of file descriptors or
/// kernel memory: retrying at once would fail the same way, in a hot loop.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Whether a failed accept means the process or the system is out of a
/// resource (file descriptors, kernel memory) that only a closing
/// connection gives back. Other errors, such as a connection the peer
/// aborted before it was accepted (`ECONNABORTED`), concern one connection
/// only: the next accept may well succeed.
fn out_of_resources(err: &std::io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Echoes everything `conn` sends until it closes; returns how many bytes
/// that was.
async fn serve(mut conn: TcpStream) -> std::io::Result<u64> {
    let mut echoed = 0u64;
    let mut buf = Vec::with_capacity(16 * 1024);
    loop {
        buf.clear();
        let (r, b) = conn.read(buf).await;
        let n = r?;
        if n == 0 {
            return Ok(echoed);
        }
        let (r, b) = conn.write_all(b).await;
        r?;
        echoed += n as u64;
        buf = b;
    }
}

#[spargio_rt::main]
async fn main(handle: RuntimeHandle) -> ExitCode {
    match run(handle).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Listens on the address given as the first argument and echoes until
/// Ctrl-C.
async fn run(handle: RuntimeHandle) -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7878".to_string());
    let listener = TcpListener::bind(addr.as_str())
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    println!(
        "spargio echo server on {} with {} shards; Ctrl-C to stop",
        listener.local_addr()?,
        handle.shard_count()
    );
    let ctrl_c = std::pin::pin!(spargio_rt::signal::ctrl_c());
    let mut incoming = listener.incoming();
    let accept_loop = async {
        loop {
            match incoming.next().await {
                Ok(conn) => {
                    let peer = conn.peer_addr().ok();
                    // The connection's task is pinned round-robin: its I/O
                    // never leaves that shard's ring.
                    handle.spawn_with_placement(TaskPlacement::RoundRobin, async move {
                        match serve(conn).await {
                            Ok(n) => println!("{peer:?}: echoed {n} bytes"),
                            Err(e) => println!("{peer:?}: {e}"),
                        }
                    });
                }
                Err(e) if out_of_resources(&e) => {
                    eprintln!("accept: {e}; retrying in {ACCEPT_BACKOFF:?}");
                    spargio_rt::time::sleep(ACCEPT_BACKOFF).await;
                }
                Err(e) => eprintln!("accept: {e}"),
            }
        }
    };
    let accept_loop = std::pin::pin!(accept_loop);
    match futures_util::future::select(accept_loop, ctrl_c).await {
        futures_util::future::Either::Right((r, _)) => r?,
        futures_util::future::Either::Left(((), _)) => unreachable!("the accept loop never ends"),
    }
    let stats = handle.stats();
    println!(
        "stopping: {} tasks polled, {} ops submitted, {} io_uring_enter calls",
        stats.total_polled(),
        stats.shards.iter().map(|s| s.ops_submitted).sum::<u64>(),
        stats.shards.iter().map(|s| s.ring_enters).sum::<u64>()
    );
    Ok(())
}
