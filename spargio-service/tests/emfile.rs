//! Running out of file descriptors on accept: the server backs off (counted,
//! no spinning) and serves again once descriptors free up. The server runs
//! in a child process whose `RLIMIT_NOFILE` is lowered, so the test runner's
//! own descriptors are untouched.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

const CHILD_ENV: &str = "SPARGIO_SERVICE_EMFILE_CHILD";

fn request(stream: &mut TcpStream, payload: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut frame = (payload.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(payload);
    stream.write_all(&frame)?;
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    stream.read_exact(&mut body)?;
    assert_eq!(body.first(), Some(&0), "status ok");
    Ok(body[1..].to_vec())
}

#[test]
fn accept_backs_off_on_emfile_and_recovers() {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "emfile_child_server",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let port: u16 = loop {
        let line = lines.next().expect("child output").unwrap();
        // The test harness may have printed the test's name on this line.
        if let Some((_, p)) = line.split_once("PORT ") {
            break p.trim().parse().unwrap();
        }
    };
    let addr = ("127.0.0.1", port);
    // More connections than the child has descriptors left: the kernel's
    // backlog takes them all, the child accepts some, then hits EMFILE.
    let mut clients = Vec::new();
    for _ in 0..16 {
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        c.write_all(&[0, 0, 0, 1, b'x']).unwrap();
        clients.push(c);
    }
    let mut served = 0;
    for c in clients.iter_mut() {
        let mut head = [0u8; 6];
        if c.read_exact(&mut head).is_ok() {
            served += 1;
        }
    }
    assert!(served < 16, "the lowered limit should leave some unserved");
    // Free the child's descriptors; it must accept again.
    drop(clients);
    let mut fresh = TcpStream::connect(addr).unwrap();
    fresh
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    assert_eq!(request(&mut fresh, b"again").unwrap(), b"again");
    drop(fresh);
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "report").unwrap();
    let report = loop {
        let line = lines.next().expect("child report").unwrap();
        if let Some((_, r)) = line.split_once("REPORT ") {
            break r.to_string();
        }
    };
    let fields: Vec<u64> = report
        .split_whitespace()
        .map(|kv| kv.split('=').nth(1).unwrap().parse().unwrap())
        .collect();
    let (backoffs, errors) = (fields[0], fields[1]);
    assert!(backoffs >= 1, "no EMFILE back-off counted: {report}");
    // Backing off means few failed accepts, not a spin on EMFILE.
    assert!(errors < 1000, "accept spun on EMFILE: {report}");
    assert!(child.wait().unwrap().success());
}

/// The child half: a server whose descriptor limit leaves room for only a
/// few connections. Ignored in a plain run; run by the test above (and
/// does nothing if run by hand with `--ignored`).
#[test]
#[ignore = "the child half of accept_backs_off_on_emfile_and_recovers, which runs it"]
fn emfile_child_server() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    spargio_rt::run_with(
        spargio_rt::Runtime::builder().shards(2),
        |handle| async move {
            use bytes::Bytes;
            use spargio_service::codec::LengthDelimited;
            let server = spargio_service::Server::builder()
                .bind(&handle, "127.0.0.1:0")
                .unwrap();
            let stats = server.stats();
            let stop = server.shutdown_handle();
            let port = server.local_addr().port();
            let service =
                tower::service_fn(
                    |req: Bytes| async move { Ok::<_, std::convert::Infallible>(req) },
                );
            let serving = handle.spawn_local(server.serve_service(LengthDelimited::new(), service));
            // Room for four more descriptors: the limit sits at the fifth free
            // descriptor number (new descriptors take the lowest free numbers).
            let open: std::collections::HashSet<u64> = std::fs::read_dir("/proc/self/fd")
                .unwrap()
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
                .collect();
            let limit_at = (0u64..).filter(|n| !open.contains(n)).nth(4).unwrap();
            let limit = libc::rlimit {
                rlim_cur: limit_at,
                rlim_max: limit_at,
            };
            // SAFETY: setrlimit reads the struct we pass; lowering our own
            // limit is always permitted.
            assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
            println!("PORT {port}");
            std::io::stdout().flush().unwrap();
            handle
                .spawn_blocking(|| {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line).unwrap();
                })
                .await
                .unwrap();
            let s = stats.snapshot();
            println!(
                "REPORT backoffs={} errors={}",
                s.accept_backoffs, s.accept_errors
            );
            std::io::stdout().flush().unwrap();
            stop.shutdown();
            serving.await.unwrap().unwrap();
        },
    )
    .unwrap();
}
