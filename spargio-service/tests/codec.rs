//! The codec's public pieces over real loopback TCP: the `Client` against
//! peers built from the sans-IO core (on spargio-rt, and on blocking std
//! sockets in a plain thread, as a client on another runtime would use it).
//!
//! `LengthDelimited::serve_connection` itself is tested end to end in the
//! crate's unit tests (`src/codec/tests.rs`), where a `Connection` can be
//! built.

use std::io::{self, Read, Write};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use spargio_rt::io::{AsyncRead, AsyncWriteExt};
use spargio_rt::net::{TcpListener, TcpStream};
use spargio_service::codec::{
    encode_request, encode_response, Client, FrameDecoder, LengthDelimited, Reply, Status,
    DEFAULT_MAX_FRAME_LEN, HEADER_LEN,
};

/// Awaits `fut`, failing instead of hanging (a deadlock bound, not a
/// timing check).
async fn bounded<F: std::future::Future>(fut: F) -> F::Output {
    spargio_rt::time::timeout(Duration::from_secs(20), fut)
        .await
        .expect("hung")
}

/// A peer on spargio-rt: reads request frames with the sans-IO decoder and
/// answers each with `answer(request)` (raw bytes to write), until EOF or
/// `answer` returns `None` (then closes).
async fn fake_server(
    listener: TcpListener,
    mut answer: impl FnMut(Bytes) -> Option<BytesMut>,
) -> io::Result<()> {
    let (mut stream, _) = listener.accept().await?;
    let decoder = FrameDecoder::new();
    let mut input = BytesMut::with_capacity(4096);
    loop {
        while let Some(req) = decoder.decode(&mut input).map_err(io::Error::from)? {
            let Some(out) = answer(req) else {
                return Ok(());
            };
            let (res, _) = stream.write_all(out).await;
            res?;
        }
        input.reserve(4096);
        let filled = input.len();
        let (res, buf) = stream
            .read(spargio_rt::io::IoBuf::slice(input, filled..))
            .await;
        input = buf.into_inner();
        if res? == 0 {
            return Ok(());
        }
    }
}

fn response(status: Status, payload: &[u8]) -> BytesMut {
    let mut out = BytesMut::new();
    encode_response(status, payload, &mut out);
    out
}

fn pattern(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect::<Vec<u8>>()
        .into()
}

#[spargio_rt::test(shards = 1)]
async fn client_calls_and_decodes_every_status() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // The first request byte picks the status; the rest is echoed.
    let server = spargio_rt::spawn_local(fake_server(listener, |req| {
        let status = Status::from_u8(req.first().copied().unwrap_or(0)).unwrap();
        Some(response(status, req.get(1..).unwrap_or_default()))
    }));
    let mut client = Client::connect(addr).await.unwrap();
    assert!(client.get_ref().nodelay().unwrap());

    let ok = bounded(client.call(Bytes::from_static(b"\0hello")))
        .await
        .unwrap();
    assert_eq!(ok, Ok(Bytes::from_static(b"hello")));
    let empty = bounded(client.call(Bytes::new())).await.unwrap();
    assert_eq!(empty, Ok(Bytes::new()));
    for byte in 1..=5u8 {
        let status = Status::from_u8(byte).unwrap();
        let mut req = vec![byte];
        req.extend_from_slice(format!("why {byte}").as_bytes());
        let reply: Reply = bounded(client.call(Bytes::from(req))).await.unwrap();
        assert_eq!(reply, Err((status, format!("why {byte}"))));
    }
    drop(client);
    bounded(server).await.unwrap().unwrap();
}

#[spargio_rt::test(shards = 1)]
async fn client_pipelines_requests_and_reads_responses_in_order() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = spargio_rt::spawn_local(fake_server(listener, |req| {
        Some(response(Status::Ok, &req))
    }));
    let mut client = Client::connect(addr).await.unwrap();
    // Small ones share writes; two are large enough to be written from
    // their own memory.
    let reqs: Vec<Bytes> = (0..40u8)
        .map(|i| pattern(if i % 17 == 3 { 40_000 } else { i as usize * 13 }, i))
        .collect();
    for r in &reqs[..20] {
        client.feed(r.clone()).await.unwrap();
    }
    client.flush().await.unwrap();
    for r in &reqs[20..] {
        client.send(r.clone()).await.unwrap();
    }
    for r in &reqs {
        assert_eq!(bounded(client.recv()).await.unwrap(), Ok(r.clone()));
    }
    drop(client);
    bounded(server).await.unwrap().unwrap();
}

#[spargio_rt::test(shards = 1)]
async fn client_reports_malformed_responses_and_early_close() {
    // An unknown status byte: reported, and that frame is consumed.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = spargio_rt::spawn_local(fake_server(listener, |_| {
        Some(BytesMut::from(&[0, 0, 0, 2, 77, b'?'][..]))
    }));
    let mut client = Client::connect(addr).await.unwrap();
    let err = bounded(client.call(Bytes::from_static(b"x")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(
        err.to_string().contains("unknown response status 77"),
        "{err}"
    );
    drop(client);
    bounded(server).await.unwrap().unwrap();

    // A server that closes inside a response frame.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut first = true;
    let server = spargio_rt::spawn_local(fake_server(listener, move |_| {
        std::mem::take(&mut first).then(|| BytesMut::from(&[0, 0, 0, 9, 0, 1, 2][..]))
    }));
    let mut client = Client::connect(addr).await.unwrap();
    client.send(Bytes::from_static(b"x")).await.unwrap();
    client.send(Bytes::from_static(b"y")).await.unwrap();
    let err = bounded(client.recv()).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    bounded(server).await.unwrap().unwrap();
}

/// The sans-IO core over blocking std sockets in a plain thread: no
/// spargio-rt on the server side at all.
fn blocking_echo_server(listener: std::net::TcpListener) -> io::Result<usize> {
    let (mut stream, _) = listener.accept()?;
    let decoder = FrameDecoder::new();
    let mut input = BytesMut::new();
    let mut chunk = [0u8; 1000];
    let mut served = 0;
    loop {
        while let Some(req) = decoder.decode(&mut input).map_err(io::Error::from)? {
            let mut out = BytesMut::new();
            encode_response(Status::Ok, &req, &mut out);
            stream.write_all(&out)?;
            served += 1;
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(served);
        }
        input.extend_from_slice(&chunk[..n]);
    }
}

#[spargio_rt::test(shards = 1)]
async fn the_sans_io_core_serves_from_blocking_std_sockets() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || blocking_echo_server(listener));
    let mut client = Client::connect(addr).await.unwrap();
    for i in 0..10u8 {
        // Frames bigger than the server's 1000-byte reads arrive in pieces.
        let req = pattern(i as usize * 700, i);
        assert_eq!(bounded(client.call(req.clone())).await.unwrap(), Ok(req));
    }
    drop(client);
    assert_eq!(server.join().unwrap().unwrap(), 10);
}

#[spargio_rt::test(shards = 1)]
async fn a_raw_stream_speaks_the_wire_format() {
    // The bytes on the wire, byte for byte, as the module docs describe.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = spargio_rt::spawn_local(fake_server(listener, |req| {
        assert_eq!(&req[..], b"ping");
        Some(response(Status::Ok, b"pong"))
    }));
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut req = BytesMut::new();
    encode_request(b"ping", &mut req);
    assert_eq!(&req[..], b"\0\0\0\x04ping");
    let (res, _) = stream.write_all(req).await;
    res.unwrap();
    let (res, buf) =
        spargio_rt::io::AsyncReadExt::read_exact(&mut stream, vec![0u8; HEADER_LEN + 5]).await;
    res.unwrap();
    assert_eq!(&buf[..], b"\0\0\0\x05\0pong");
    drop(stream);
    bounded(server).await.unwrap().unwrap();
}

#[test]
fn length_delimited_is_a_cloneable_configurable_protocol() {
    fn protocol<P: spargio_service::Protocol<Request = Bytes, Response = Bytes>>(_: &P) {}
    fn shareable<T: Clone + Send + Sync + 'static>(_: &T) {}
    let p = LengthDelimited::default();
    protocol(&p);
    shareable(&p);
    assert_eq!(p.get_max_frame_len(), DEFAULT_MAX_FRAME_LEN);
    let small = p.max_frame_len(100);
    assert_eq!(small.decoder().max_frame_len(), 100);
}
