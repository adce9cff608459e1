//! Sockets on the ring: TCP, Unix and UDP behaviour.

use std::future::Future;
use std::io::ErrorKind;
use std::time::Duration;

use spargio_rt::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, IoBuf};
use spargio_rt::net::{SendOptions, TcpListener, TcpStream, UdpSocket, UnixListener, UnixStream};
use spargio_rt::Runtime;

fn run<T: Send + 'static, F: std::future::Future<Output = T> + 'static>(
    f: impl FnOnce() -> F + Send + 'static,
) -> T {
    spargio_rt::run_with(Runtime::builder().shards(2), move |_| f()).unwrap()
}

/// A deterministic pattern, so a byte in the wrong place is caught.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 251) as u8).collect()
}

/// Echoes everything back until EOF, in 64 KiB reads.
async fn echo<S: AsyncRead + AsyncWrite>(mut s: S) {
    let mut buf = Vec::with_capacity(64 * 1024);
    loop {
        buf.clear();
        let (r, b) = s.read(buf).await;
        let n = r.unwrap();
        if n == 0 {
            let _ = s.shutdown().await;
            return;
        }
        let (r, b) = s.write_all(b).await;
        r.unwrap();
        buf = b;
    }
}

/// Sends `data` to an echo peer in 256 KiB chunks, reading each chunk's
/// echo back before the next, so neither socket buffer fills up.
async fn round_trip<S: AsyncRead + AsyncWrite>(mut s: S, data: Vec<u8>) -> Vec<u8> {
    let len = data.len();
    let mut out = Vec::with_capacity(len);
    let chunk = 256 * 1024;
    let mut sent = 0;
    let mut data = data;
    while sent < len {
        let end = (sent + chunk).min(len);
        let (r, d) = s.write_all(data.slice(sent..end)).await;
        r.unwrap();
        data = d.into_inner();
        let want = end - sent;
        let start = out.len();
        let (r, o) = s.read_exact(out.slice(start..start + want)).await;
        r.unwrap();
        out = o.into_inner();
        sent = end;
    }
    out
}

#[test]
fn tcp_echo_of_64_mib_arrives_intact() {
    let ok = run(|| async {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = spargio_rt::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            echo(s).await;
        });
        let c = TcpStream::connect(addr).await.unwrap();
        c.set_nodelay(true).unwrap();
        assert!(c.nodelay().unwrap());
        assert_eq!(c.peer_addr().unwrap(), addr);
        let data = pattern(64 << 20);
        let back = round_trip(c, data.clone()).await;
        server.await.unwrap();
        back == data
    });
    assert!(ok);
}

#[test]
fn unix_echo_of_64_mib_arrives_intact() {
    let ok = run(|| async {
        let dir = std::env::temp_dir().join(format!("spargio-unix-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("echo.sock");
        let _ = std::fs::remove_file(&path);
        let l = UnixListener::bind(&path).unwrap();
        let server = spargio_rt::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            echo(s).await;
        });
        let c = UnixStream::connect(&path).await.unwrap();
        let data = pattern(64 << 20);
        let back = round_trip(c, data.clone()).await;
        server.await.unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        back == data
    });
    assert!(ok);
}

#[test]
fn read_exact_continues_after_partial_reads() {
    let got = run(|| async {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let writer = spargio_rt::spawn(async move {
            // Ten small writes with pauses: the reader sees many short reads.
            for i in 0..10u8 {
                let (r, _) = a.write_all(vec![i; 7]).await;
                r.unwrap();
                spargio_rt::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            a
        });
        let (r, buf) = b.read_exact(vec![0u8; 70]).await;
        r.unwrap();
        let _a = writer.await.unwrap();
        buf
    });
    let want: Vec<u8> = (0..10u8).flat_map(|i| [i; 7]).collect();
    assert_eq!(got, want);
}

/// Sends `bufs` with `write_vectored_all` over a Unix socket pair and
/// reads them back to EOF; returns what arrived and how many buffers came
/// back from the write.
fn vectored_through_a_pair(bufs: Vec<Vec<u8>>) -> (Vec<u8>, usize) {
    run(|| async move {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let reader = spargio_rt::spawn(async move {
            let (r, buf) = b.read_to_end(Vec::new()).await;
            r.unwrap();
            buf
        });
        let (r, back) = a.write_vectored_all(bufs).await;
        r.unwrap();
        a.shutdown().await.unwrap();
        (reader.await.unwrap(), back.len())
    })
}

#[test]
fn write_vectored_all_sends_every_buffer_in_order() {
    let bufs = vec![
        b"ab".to_vec(),
        Vec::new(),
        b"cde".to_vec(),
        pattern(300_000),
    ];
    let (got, back_len) = vectored_through_a_pair(bufs);
    assert_eq!(back_len, 4, "buffers come back");
    let mut want = b"abcde".to_vec();
    want.extend(pattern(300_000));
    assert_eq!(got, want);
}

#[test]
fn write_vectored_all_sends_more_buffers_than_one_call_takes() {
    // The kernel refuses more than 1024 vectors per writev/sendmsg: a
    // longer list goes out in several calls, not as an error.
    const N: usize = 3000;
    let bufs: Vec<Vec<u8>> = (0..N).map(|i| vec![(i % 251) as u8; 1 + i % 5]).collect();
    let want: Vec<u8> = bufs.concat();
    let (got, back_len) = vectored_through_a_pair(bufs);
    assert_eq!(back_len, N, "buffers come back");
    assert_eq!(got, want);
}

#[test]
fn eof_reset_and_refused_are_the_kernels_answers() {
    run(|| async {
        // EOF: the peer shuts down its write side.
        let (mut a, mut b) = UnixStream::pair().unwrap();
        a.shutdown().await.unwrap();
        let (r, _) = b.read(Vec::with_capacity(8)).await;
        assert_eq!(r.unwrap(), 0);

        // read_exact past EOF is UnexpectedEof, with what was read kept.
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let (r, _) = a.write_all(b"abc".to_vec()).await;
        r.unwrap();
        drop(a);
        let (r, buf) = b.read_exact(vec![0u8; 10]).await;
        assert_eq!(r.unwrap_err().kind(), ErrorKind::UnexpectedEof);
        assert_eq!(&buf[..3], b"abc");

        // Reset: the peer closes with SO_LINGER 0.
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let mut c = TcpStream::connect(addr).await.unwrap();
        let (s, _) = l.accept().await.unwrap();
        s.with_socket(|s| s.set_linger(Some(std::time::Duration::ZERO)))
            .unwrap();
        drop(s);
        let (r, _) = c.read(Vec::with_capacity(8)).await;
        assert_eq!(r.unwrap_err().kind(), ErrorKind::ConnectionReset);

        // Refused: nobody listens on a port we just freed.
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap().port()
        };
        let e = TcpStream::connect(("127.0.0.1", port)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    });
}

#[test]
fn incoming_accepts_many_connections_from_one_multishot() {
    let n = run(|| async {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let clients = spargio_rt::spawn(async move {
            let mut v = Vec::new();
            for i in 0..50u8 {
                let mut c = TcpStream::connect(addr).await.unwrap();
                let (r, _) = c.write_all(vec![i]).await;
                r.unwrap();
                v.push(c);
            }
            v
        });
        let mut inc = l.incoming();
        let mut seen = Vec::new();
        for _ in 0..50 {
            let mut s = inc.next().await.unwrap();
            let (r, b) = s.read_exact(vec![0u8; 1]).await;
            r.unwrap();
            seen.push(b[0]);
        }
        drop(clients.await.unwrap());
        seen.sort();
        seen
    });
    assert_eq!(n, (0..50u8).collect::<Vec<_>>());
}

#[test]
fn host_names_resolve_off_the_shards() {
    run(|| async {
        let l = TcpListener::bind("localhost:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        // localhost may resolve to ::1 and 127.0.0.1 in either order; the
        // connect tries each address, and the listener has one of them.
        let c = TcpStream::connect(("localhost", port)).await;
        assert!(c.is_ok(), "{c:?}");
        // The lookups ran on the blocking pool, not on a shard.
        let stats = spargio_rt::RuntimeHandle::current().stats();
        assert!(stats.blocking_threads >= 1, "{stats:?}");
    });
}

#[test]
fn udp_send_to_recv_from_and_connected() {
    run(|| async {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (r, _) = a.send_to(b"one".to_vec(), b.local_addr().unwrap()).await;
        assert_eq!(r.unwrap(), 3);
        let (r, buf) = b.recv_from(Vec::with_capacity(64)).await;
        let (n, from) = r.unwrap();
        assert_eq!((&buf[..n], from), (&b"one"[..], a.local_addr().unwrap()));
        a.connect(b.local_addr().unwrap()).await.unwrap();
        let (r, _) = a.send(b"two".to_vec()).await;
        r.unwrap();
        let (r, buf) = b.recv(Vec::with_capacity(64)).await;
        assert_eq!(&buf[..r.unwrap()], b"two");
    });
}

#[test]
fn connect_races_past_an_address_that_never_answers() {
    // A listener whose accept queue is full drops every further SYN: a
    // connect to it hangs for the kernel's whole SYN timeout (~2 min).
    let silent = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    silent
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    silent.listen(0).unwrap();
    let silent_addr = silent.local_addr().unwrap().as_socket().unwrap();
    let _queued = std::net::TcpStream::connect(silent_addr).unwrap();
    run(move || async move {
        let good = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let good_addr = good.local_addr().unwrap();
        let connected = spargio_rt::time::timeout(
            Duration::from_secs(20),
            TcpStream::connect(&[silent_addr, good_addr][..]),
        )
        .await
        .expect("the connect waited on the silent address")
        .unwrap();
        assert_eq!(connected.peer_addr().unwrap(), good_addr);
        drop(silent);
    });
}

#[test]
fn a_dual_stack_socket_reports_and_sends_ecn_for_ipv4_peers() {
    run(|| async {
        // Receiving: an IPv4 datagram on a socket bound to [::].
        let rx6 = match UdpSocket::bind("[::]:0").await {
            Ok(rx6) if !rx6.with_socket(|s| s.only_v6()).unwrap() => rx6,
            // No IPv6 here, or v6-only sockets by default: nothing to test.
            other => return eprintln!("skipped: no dual-stack socket ({other:?})"),
        };
        rx6.set_recv_ecn(true).unwrap();
        rx6.set_recv_pktinfo(true).unwrap();
        let tx4 = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to: std::net::SocketAddr = format!("127.0.0.1:{}", rx6.local_addr().unwrap().port())
            .parse()
            .unwrap();
        let ect0 = SendOptions {
            ecn: Some(2),
            ..SendOptions::default()
        };
        let (r, _) = tx4.send_msg(b"to v6".to_vec(), Some(to), ect0).await;
        r.unwrap();
        let (r, _) = rx6.recv_msg(Vec::with_capacity(64)).await;
        let meta = r.unwrap();
        assert_eq!(meta.ecn, Some(2), "{meta:?}");
        assert_eq!(meta.dst_ip, Some("127.0.0.1".parse().unwrap()), "{meta:?}");
        assert!(!meta.control_truncated);

        // Sending: from [::] to an IPv4 peer, plain and IPv4-mapped.
        let rx4 = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        rx4.set_recv_ecn(true).unwrap();
        let port = rx4.local_addr().unwrap().port();
        for to in [
            format!("127.0.0.1:{port}"),
            format!("[::ffff:127.0.0.1]:{port}"),
        ] {
            let to: std::net::SocketAddr = to.parse().unwrap();
            let (r, _) = rx6.send_msg(b"to v4".to_vec(), Some(to), ect0).await;
            r.unwrap();
            let (r, _) = rx4.recv_msg(Vec::with_capacity(64)).await;
            assert_eq!(r.unwrap().ecn, Some(2), "sent to {to}");
        }
        // A connected dual-stack socket picks the same way.
        rx6.connect(format!("127.0.0.1:{port}")).await.unwrap();
        let (r, _) = rx6.send_msg(b"connected".to_vec(), None, ect0).await;
        r.unwrap();
        let (r, _) = rx4.recv_msg(Vec::with_capacity(64)).await;
        assert_eq!(r.unwrap().ecn, Some(2), "connected");
    });
}

#[test]
fn udp_gso_segments_and_gro_coalesces_on_loopback() {
    run(|| async {
        let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        rx.set_gro(true).unwrap();
        rx.set_recv_ecn(true).unwrap();
        rx.set_recv_pktinfo(true).unwrap();
        // One send of 4 datagrams (3 x 1000 + 500) with GSO, ECN ECT(0).
        let payload = pattern(3500);
        let opts = SendOptions {
            segment_size: Some(1000),
            ecn: Some(2),
            src_ip: None,
        };
        let (r, _) = tx
            .send_msg(payload.clone(), Some(rx.local_addr().unwrap()), opts)
            .await;
        assert_eq!(r.unwrap(), 3500);
        // Receive until all 4 segments are counted, GRO-merged or not.
        let mut segments = Vec::new();
        let mut bytes = Vec::new();
        while bytes.len() < 3500 {
            let (r, buf) = rx.recv_msg(Vec::with_capacity(65536)).await;
            let meta = r.unwrap();
            assert_eq!(meta.addr, tx.local_addr().unwrap());
            assert_eq!(meta.ecn, Some(2));
            assert_eq!(meta.dst_ip, Some("127.0.0.1".parse().unwrap()));
            for seg in meta.segments() {
                segments.push(seg.len());
            }
            bytes.extend_from_slice(&buf[..meta.len]);
        }
        assert_eq!(segments, vec![1000, 1000, 1000, 500]);
        assert_eq!(bytes, payload);
    });
}

#[test]
fn zero_copy_send_returns_the_buffer_after_the_kernel_is_done() {
    let got = run(|| async {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let mut c = TcpStream::connect(addr).await.unwrap();
        let (mut s, _) = l.accept().await.unwrap();
        let data = pattern(1 << 20);
        let reader = spargio_rt::spawn(async move {
            let (r, b) = s.read_exact(vec![0u8; 1 << 20]).await;
            r.unwrap();
            b
        });
        let mut sent = 0;
        let mut buf = data.clone();
        while sent < buf.len() {
            let (r, b) = c.send_zc(buf.slice(sent..)).await;
            buf = b.into_inner();
            sent += r.unwrap();
        }
        (reader.await.unwrap(), data)
    });
    assert_eq!(got.0, got.1);
}

#[test]
fn ops_work_inside_block_on_off_the_shards() {
    let rt = Runtime::builder().shards(2).build().unwrap();
    let got = rt.block_on(async {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let (r, _) = a.write_all(b"remote".to_vec()).await;
        r.unwrap();
        let (r, buf) = b.read_exact(vec![0u8; 6]).await;
        r.unwrap();
        buf
    });
    assert_eq!(got, b"remote");
}

#[test]
fn io_outside_any_runtime_is_a_clear_error() {
    let (mut a, _b) = UnixStream::pair().unwrap();
    let (r, _) = spargio_rt::block_on(a.write(b"x".to_vec()));
    let e = r.unwrap_err();
    assert!(e.to_string().contains("spargio runtime"), "{e}");
}

#[test]
fn an_accept_armed_right_after_a_cancelled_one_gets_the_connection() {
    // Regression: the cancelled accept's wait-queue entry must be gone
    // before the next accept is armed, or it swallows the wake-up.
    run(|| async {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        for _ in 0..20 {
            {
                // Submit an accept, then drop it at the end of this block.
                let mut fut = std::pin::pin!(l.accept());
                let polled = std::future::poll_fn(|cx| {
                    std::task::Poll::Ready(fut.as_mut().poll(cx).is_ready())
                })
                .await;
                assert!(!polled);
            }
            let c = spargio_rt::spawn(async move { TcpStream::connect(addr).await.unwrap() });
            // A guard, not a timing assertion: without the fix this accept
            // never completes, and the test should fail rather than hang.
            let accepted = spargio_rt::time::timeout(Duration::from_secs(30), l.accept()).await;
            let (_s, peer) = accepted.expect("the accept lost its wake-up").unwrap();
            assert_eq!(peer, c.await.unwrap().local_addr().unwrap());
        }
    });
}

/// Pausing a multishot accept hands out what it accepted, loses nothing,
/// and accepting resumes afterwards.
#[spargio_rt::test]
async fn paused_incoming_keeps_every_connection() {
    use spargio_rt::io::{AsyncReadExt, AsyncWriteExt};
    let listener = spargio_rt::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let mut incoming = listener.incoming();
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(spargio_rt::net::TcpStream::connect(addr).await.unwrap());
    }
    let mut served = vec![incoming.next().await.unwrap()];
    incoming.pause();
    // Connections made while paused wait in the backlog.
    for _ in 0..2 {
        clients.push(spargio_rt::net::TcpStream::connect(addr).await.unwrap());
    }
    while let Some(conn) = incoming.next_paused().await {
        served.push(conn.unwrap());
    }
    // Paused and drained: still `None`, no re-arm.
    assert!(incoming.next_paused().await.is_none());
    while served.len() < clients.len() {
        served.push(incoming.next().await.unwrap());
    }
    // Every client got a live connection: each accepted stream echoes a
    // byte to exactly one client.
    for (i, s) in served.iter_mut().enumerate() {
        let (r, _) = s.write_all(vec![i as u8]).await;
        r.unwrap();
    }
    let mut seen = Vec::new();
    for c in clients.iter_mut() {
        let (r, b) = c.read_exact(vec![0u8; 1]).await;
        r.unwrap();
        seen.push(b[0]);
    }
    seen.sort();
    assert_eq!(seen, (0..6).collect::<Vec<u8>>());
}

/// A socket of `kind` bound to `path`, which fills all 108 bytes of
/// `sun_path` with no terminating NUL (Linux allows it; std cannot bind
/// one).
fn bound_to_full_path(kind: libc::c_int, path: &[u8]) -> socket2::Socket {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket calls on a zeroed `sockaddr_un` that `path`
    // (exactly `sun_path`'s size) fills; the new fd is owned by the
    // returned socket.
    unsafe {
        let fd = libc::socket(libc::AF_UNIX, kind | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "{}", std::io::Error::last_os_error());
        let socket = socket2::Socket::from_raw_fd(fd);
        let mut addr: libc::sockaddr_un = std::mem::zeroed();
        assert_eq!(path.len(), addr.sun_path.len());
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        for (d, s) in addr.sun_path.iter_mut().zip(path) {
            *d = *s as libc::c_char;
        }
        let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
        let r = libc::bind(fd, (&raw const addr).cast::<libc::sockaddr>(), len);
        assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
        socket
    }
}

#[test]
fn a_peer_bound_to_a_path_filling_sun_path_is_accepted_and_heard() {
    use std::os::unix::ffi::OsStrExt;
    let dir = std::env::temp_dir().join(format!("spargio-sunpath-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let prefix = dir.as_os_str().as_bytes().len() + 1;
    let long = |tag: &str| {
        let name = format!("{tag}{}", "x".repeat(108 - prefix - tag.len()));
        dir.join(name)
    };
    let (stream_path, dgram_path) = (long("s"), long("d"));
    let (listen_path, server_path) = (dir.join("listen"), dir.join("dgram"));
    let d2 = dir.clone();
    run(move || async move {
        let l = UnixListener::bind(&listen_path).unwrap();
        let client = bound_to_full_path(libc::SOCK_STREAM, stream_path.as_os_str().as_bytes());
        client
            .connect(&socket2::SockAddr::unix(&listen_path).unwrap())
            .unwrap();
        // Accepting it used to panic in the address conversion.
        let (s, addr) = l.accept().await.unwrap();
        assert_eq!(addr.as_pathname(), Some(stream_path.as_path()));
        assert_eq!(
            s.peer_addr().unwrap().as_pathname(),
            Some(stream_path.as_path())
        );

        let server = spargio_rt::net::UnixDatagram::bind(&server_path).unwrap();
        let sender = bound_to_full_path(libc::SOCK_DGRAM, dgram_path.as_os_str().as_bytes());
        sender
            .send_to(b"hi", &socket2::SockAddr::unix(&server_path).unwrap())
            .unwrap();
        let (res, buf) = server.recv_from(Vec::with_capacity(8)).await;
        let (n, from) = res.unwrap();
        assert_eq!(&buf[..n], b"hi");
        assert!(from.is_unnamed(), "{from:?}");
    });
    let _ = std::fs::remove_dir_all(&d2);
}

#[test]
fn an_ipv6_source_on_an_ipv4_socket_is_refused_not_ignored() {
    run(|| async {
        let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let opts = SendOptions {
            segment_size: None,
            ecn: None,
            src_ip: Some("::1".parse().unwrap()),
        };
        let (r, buf) = tx
            .send_msg(b"x".to_vec(), Some(rx.local_addr().unwrap()), opts)
            .await;
        assert_eq!(r.unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(buf, b"x", "the buffer comes back");
    });
}

/// `SO_RCVBUF` as the kernel reports it for `fd`, read without socket2.
fn raw_rcvbuf(fd: std::os::fd::RawFd) -> i32 {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `v` and `len` are live locals of the sizes passed.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
    v
}

#[test]
fn unix_sockets_take_options_through_with_socket() {
    use spargio_rt::net::UnixDatagram;
    use std::os::fd::AsRawFd;
    let dir = std::env::temp_dir().join(format!("spargio-unixopt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("l");
    let d2 = dir.clone();
    run(move || async move {
        let l = UnixListener::bind(&path).unwrap();
        let (s, _) = UnixStream::pair().unwrap();
        let d = UnixDatagram::unbound().unwrap();
        // Each type: a small and a larger receive buffer, set through the
        // socket2 view, read back through it and through the raw fd.
        let check = |fd: std::os::fd::RawFd,
                     set: &dyn Fn(usize) -> std::io::Result<()>,
                     get: &dyn Fn() -> std::io::Result<usize>| {
            set(4096).unwrap();
            let small = get().unwrap();
            assert_eq!(small as i32, raw_rcvbuf(fd));
            set(64 * 1024).unwrap();
            let large = get().unwrap();
            assert_eq!(large as i32, raw_rcvbuf(fd));
            assert!(small >= 4096 && large >= 64 * 1024 && small < large);
        };
        check(
            l.as_raw_fd(),
            &|n| l.with_socket(|s| s.set_recv_buffer_size(n)),
            &|| l.with_socket(|s| s.recv_buffer_size()),
        );
        check(
            s.as_raw_fd(),
            &|n| s.with_socket(|s| s.set_recv_buffer_size(n)),
            &|| s.with_socket(|s| s.recv_buffer_size()),
        );
        check(
            d.as_raw_fd(),
            &|n| d.with_socket(|s| s.set_recv_buffer_size(n)),
            &|| d.with_socket(|s| s.recv_buffer_size()),
        );
    });
    let _ = std::fs::remove_dir_all(&d2);
}

#[test]
fn unix_std_sockets_wrap_and_work_end_to_end() {
    use spargio_rt::net::UnixDatagram;
    let dir = std::env::temp_dir().join(format!("spargio-unixstd-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (dgram_path, listen_path) = (dir.join("d"), dir.join("l"));
    let d2 = dir.clone();
    run(move || async move {
        // A std datagram socket bound to a path, and an unbound sender.
        let rx =
            UnixDatagram::from_std(std::os::unix::net::UnixDatagram::bind(&dgram_path).unwrap());
        assert_eq!(
            rx.local_addr().unwrap().as_pathname(),
            Some(dgram_path.as_path())
        );
        let tx = UnixDatagram::from_std(std::os::unix::net::UnixDatagram::unbound().unwrap());
        let (r, _) = tx.send_to(b"one".to_vec(), &dgram_path).await;
        assert_eq!(r.unwrap(), 3);
        let (r, buf) = rx.recv_from(Vec::with_capacity(8)).await;
        let (n, from) = r.unwrap();
        assert_eq!((&buf[..n], from.is_unnamed()), (&b"one"[..], true));

        // A connected std pair, both ends wrapped.
        let (a, b) = std::os::unix::net::UnixDatagram::pair().unwrap();
        let (a, b) = (UnixDatagram::from_std(a), UnixDatagram::from_std(b));
        let (r, _) = a.send(b"two".to_vec()).await;
        r.unwrap();
        let (r, buf) = b.recv(Vec::with_capacity(8)).await;
        assert_eq!(&buf[..r.unwrap()], b"two");

        // A std listener.
        let l =
            UnixListener::from_std(std::os::unix::net::UnixListener::bind(&listen_path).unwrap());
        let mut c = UnixStream::connect(&listen_path).await.unwrap();
        let (mut conn, _) = l.accept().await.unwrap();
        let (r, _) = c.write_all(b"three".to_vec()).await;
        r.unwrap();
        let (r, buf) = conn.read_exact(vec![0u8; 5]).await;
        r.unwrap();
        assert_eq!(buf, b"three");
    });
    let _ = std::fs::remove_dir_all(&d2);
}

#[test]
fn unix_paths_with_a_nul_past_the_first_byte_are_invalid_input() {
    use spargio_rt::net::UnixDatagram;
    let dir = std::env::temp_dir().join(format!("spargio-unixnul-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let d2 = dir.clone();
    run(move || async move {
        // The kernel would stop at the NUL and name `dir/sock`: a socket
        // other than the one asked for.
        let bad = dir.join("sock\0tail");
        let kind = |r: std::io::Result<()>| r.unwrap_err().kind();
        assert_eq!(
            kind(UnixListener::bind(&bad).map(drop)),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            kind(UnixDatagram::bind(&bad).map(drop)),
            ErrorKind::InvalidInput
        );
        assert!(!dir.join("sock").exists());
        // Connects and sends name no socket either, even when the
        // truncated path is one.
        let _listening = UnixListener::bind(dir.join("sock")).unwrap();
        let _receiving = UnixDatagram::bind(dir.join("dgram")).unwrap();
        let bad_dgram = dir.join("dgram\0tail");
        assert_eq!(
            kind(UnixStream::connect(&bad).await.map(drop)),
            ErrorKind::InvalidInput
        );
        let d = UnixDatagram::unbound().unwrap();
        assert_eq!(kind(d.connect(&bad_dgram).await), ErrorKind::InvalidInput);
        let (sent, _) = d.send_to(b"x".to_vec(), &bad_dgram).await;
        assert_eq!(kind(sent.map(drop)), ErrorKind::InvalidInput);
        // A first NUL names an abstract socket, which works end to end.
        let name = format!("\0spargio-abstract-{}", std::process::id());
        let l = UnixListener::bind(&name).unwrap();
        let (client, accepted) = futures_util::join!(UnixStream::connect(&name), l.accept());
        client.unwrap();
        accepted.unwrap();
    });
    let _ = std::fs::remove_dir_all(&d2);
}
