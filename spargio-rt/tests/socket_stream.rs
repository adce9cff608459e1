//! `SocketStream` (TCP or Unix as one type), Unix peer credentials, and a
//! paused Unix multishot accept.

use std::io::ErrorKind;

use spargio_rt::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use spargio_rt::net::{SocketStream, StreamAddr, TcpListener, TcpStream, UnixListener, UnixStream};

/// A fresh directory for one test's socket, removed when dropped.
struct SocketDir(std::path::PathBuf);

impl Drop for SocketDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A socket path in a fresh directory of this process (kept while the
/// guard lives).
fn socket_path(name: &str) -> (SocketDir, std::path::PathBuf) {
    let dir =
        std::env::temp_dir().join(format!("spargio-sockstream-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    (SocketDir(dir), path)
}

#[spargio_rt::test]
async fn a_tcp_socket_stream_keeps_its_addresses_and_turns_back_into_tcp() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let client_addr = client.local_addr().unwrap();
    let (server, _) = listener.accept().await.unwrap();
    let server = SocketStream::from(server);
    assert!(server.is_tcp() && !server.is_unix());
    let peer = server.peer_addr().unwrap();
    assert_eq!(peer.as_inet(), Some(client_addr));
    assert!(peer.as_unix().is_none());
    assert_eq!(
        server.local_addr().unwrap().as_inet(),
        Some(listener.local_addr().unwrap())
    );
    assert_eq!(
        server.peer_cred().unwrap_err().kind(),
        ErrorKind::Unsupported
    );
    server.set_nodelay(true).unwrap();
    let server = server.into_unix().unwrap_err();
    let tcp = server.into_tcp().unwrap();
    assert!(
        tcp.nodelay().unwrap(),
        "the option set through SocketStream"
    );
}

#[spargio_rt::test]
async fn a_unix_socket_stream_reads_writes_and_names_its_peer_process() {
    let (_dir, path) = socket_path("s.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let mut client = UnixStream::connect(&path).await.unwrap();
    let (server, _) = listener.accept().await.unwrap();
    let mut server = SocketStream::from(server);
    assert!(server.is_unix() && !server.is_tcp());

    let cred = server.peer_cred().unwrap();
    assert_eq!(cred.pid, std::process::id() as i32);
    // SAFETY: geteuid and getegid cannot fail and touch no memory.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    assert_eq!((cred.uid, cred.gid), (uid, gid));
    assert_eq!(client.peer_cred().unwrap(), cred);

    match server.local_addr().unwrap() {
        StreamAddr::Unix(a) => assert_eq!(a.as_pathname(), Some(path.as_path())),
        other => panic!("a Unix socket's address came back as {other:?}"),
    }
    assert!(server.peer_addr().unwrap().as_unix().unwrap().is_unnamed());
    // No Nagle delay on a Unix socket: nothing to set, and no error.
    server.set_nodelay(true).unwrap();

    let (res, _) = client.write_all(b"ping".to_vec()).await;
    res.unwrap();
    let (res, got) = server.read_exact(vec![0u8; 4]).await;
    res.unwrap();
    assert_eq!(got, b"ping");
    let (res, _) = server.write_all(b"pong".to_vec()).await;
    res.unwrap();
    let (res, got) = client.read_exact(vec![0u8; 4]).await;
    res.unwrap();
    assert_eq!(got, b"pong");

    // Owned halves work and reunite into the same socket.
    let (mut read, mut write) = server.into_split();
    let (res, _) = write.write_all(b"half".to_vec()).await;
    res.unwrap();
    let (res, got) = client.read_exact(vec![0u8; 4]).await;
    res.unwrap();
    assert_eq!(got, b"half");
    let (res, _) = client.write_all(b"back".to_vec()).await;
    res.unwrap();
    let (res, got) = read.read_exact(vec![0u8; 4]).await;
    res.unwrap();
    assert_eq!(got, b"back");
    let mut server = read.reunite(write).unwrap();
    AsyncWrite::shutdown(&mut server).await.unwrap();
    let (res, _) = client.read_exact(vec![0u8; 1]).await;
    assert_eq!(res.unwrap_err().kind(), ErrorKind::UnexpectedEof);

    let unix = server.into_tcp().unwrap_err().into_unix().unwrap();
    assert_eq!(unix.peer_cred().unwrap(), cred);
}

/// Pausing a Unix multishot accept hands out what it had accepted, loses
/// nothing, and accepting resumes afterwards.
#[spargio_rt::test]
async fn a_paused_unix_incoming_keeps_every_connection() {
    let (_dir, path) = socket_path("p.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let mut incoming = listener.incoming();
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(UnixStream::connect(&path).await.unwrap());
    }
    let mut served = vec![incoming.next().await.unwrap()];
    incoming.pause();
    for _ in 0..2 {
        clients.push(UnixStream::connect(&path).await.unwrap());
    }
    while let Some(conn) = incoming.next_paused().await {
        served.push(conn.unwrap());
    }
    assert!(incoming.next_paused().await.is_none());
    incoming.resume();
    while served.len() < clients.len() {
        served.push(incoming.next().await.unwrap());
    }
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
