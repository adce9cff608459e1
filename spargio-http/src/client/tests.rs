//! Unit tests of the client's parts: URI targets, the pool, the oneshot.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use http::Uri;
use spargio_rt::net::{TcpListener, TcpStream};

use super::connect::{Conn, ConnReader, ConnWriter, Input, Output, Probe};
use super::oneshot;
use super::pool::Pool;
use super::target::Target;
use super::{Client, ClientError};
use crate::transport::Transport;

fn target(uri: &str) -> Result<Target, ClientError> {
    Target::from_uri(&uri.parse::<Uri>().unwrap())
}

#[test]
fn client_target_defaults_ports_and_lowercases_hosts() {
    let t = target("http://Example.COM/a?b").unwrap();
    assert_eq!(
        (t.https, t.host.as_str(), t.port),
        (false, "example.com", 80)
    );
    assert_eq!(t.authority, "example.com:80");
    let t = target("https://example.com").unwrap();
    assert_eq!((t.https, t.port), (true, 443));
    let t = target("HTTPS://user:pw@host:8443/").unwrap();
    assert_eq!((t.https, t.host.as_str(), t.port), (true, "host", 8443));
    let t = target("http://[::1]:8080/").unwrap();
    assert_eq!(t.host, "::1");
    assert_eq!(t.authority, "[::1]:8080");
}

#[test]
fn client_target_refuses_what_cannot_be_reached() {
    for (uri, reason) in [
        (
            "/relative",
            "an absolute http:// or https:// URI is required",
        ),
        (
            "example.com:80",
            "an absolute http:// or https:// URI is required",
        ),
        ("ftp://example.com/", "the scheme must be http or https"),
        ("ws://example.com/", "the scheme must be http or https"),
        ("http://example.com:0/", "port 0 cannot be connected to"),
    ] {
        match target(uri) {
            Err(ClientError::InvalidUri { uri: u, reason: r }) => {
                assert_eq!(r, reason, "{uri}");
                assert_eq!(u, uri.parse::<Uri>().unwrap().to_string());
            }
            other => panic!("{uri}: {other:?}"),
        }
    }
}

#[test]
fn client_target_refuses_a_port_that_is_not_a_port() {
    // `http` parses these, and reads no port from them: they went to 80.
    for uri in [
        "http://example.com:65536/",
        "http://example.com:99999/",
        "http://example.com:8080x/",
        "http://example.com:abc/",
        "http://example.com:+8080/",
        "http://[::1]junk/",
        "https://user@example.com:4430x/",
    ] {
        match target(uri) {
            Err(ClientError::InvalidUri { reason, .. }) => {
                assert_eq!(reason, "the port is not a number from 1 to 65535", "{uri}")
            }
            other => panic!("{uri}: {other:?}"),
        }
    }
}

#[test]
fn client_target_reads_ports_and_their_absence() {
    for (uri, port) in [
        ("http://example.com/", 80),
        ("https://example.com/", 443),
        ("http://example.com:/", 80),
        ("https://example.com:8443/", 8443),
        ("http://example.com:080/", 80),
        ("http://[::1]:65535/", 65535),
        ("http://[::1]/", 80),
        ("http://u:p@example.com:81/", 81),
        ("http://u:p@example.com/", 80),
    ] {
        assert_eq!(target(uri).unwrap().port, port, "{uri}");
    }
}

#[test]
fn client_target_refuses_brackets_around_what_is_no_ipv6_address() {
    for uri in [
        "http://[]/",
        "https://[example.com]/",
        "http://[127.0.0.1]:80/",
    ] {
        match target(uri) {
            Err(ClientError::InvalidUri { reason, .. }) => {
                assert!(
                    reason == "the host in brackets is not an IPv6 address"
                        || reason == "the URI has no host",
                    "{uri}: {reason}"
                )
            }
            other => panic!("{uri}: {other:?}"),
        }
    }
}

#[test]
fn client_invalid_uri_errors_do_not_show_the_password() {
    for uri in [
        "ftp://user:secret@example.com/",
        "http://user:secret@example.com:0/",
    ] {
        let err = target(uri).unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
        assert!(err.to_string().contains("example.com"), "{err}");
    }
}

#[test]
fn client_is_send_sync_and_its_futures_are_send() {
    fn send_sync<T: Send + Sync + 'static>() {}
    fn send_static<T: Send + 'static>(_: &T) {}
    send_sync::<Client>();
    send_sync::<ClientError>();
    let client = Client::new();
    let req = http::Request::new(http_body_util::Full::new(bytes::Bytes::from_static(b"x")));
    let fut = client.request(req);
    send_static(&fut);
    let fut2 = client.get("http://localhost/");
    send_static(&fut2);
}

#[test]
fn client_oneshot_delivers_or_reports_the_sender_gone() {
    let mut cx = Context::from_waker(Waker::noop());
    let (tx, rx) = oneshot::channel::<u8>();
    let mut rx = pin!(rx);
    assert!(rx.as_mut().poll(&mut cx).is_pending());
    tx.send(7);
    assert_eq!(rx.as_mut().poll(&mut cx), Poll::Ready(Some(7)));

    let (tx, rx) = oneshot::channel::<u8>();
    drop(tx);
    assert_eq!(pin!(rx).poll(&mut cx), Poll::Ready(None));
}

/// A plain TCP connection to a fresh listener, as the pool holds it.
async fn tcp_conn(listener: &TcpListener) -> Conn {
    let tcp = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let probe = Probe {
        fd: std::os::fd::AsRawFd::as_raw_fd(&tcp),
    };
    let (r, w) = tcp.split();
    Conn {
        input: Input::new(ConnReader::Tcp(r), 16 * 1024),
        output: Output::new(ConnWriter::Tcp(w)),
        probe,
    }
}

#[test]
fn client_pool_reuses_per_target_caps_and_expires() {
    spargio_rt::run(|_| async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = target("http://a.test/").unwrap();
        let b = target("https://a.test/").unwrap();

        let pool = Arc::new(Pool::new(Duration::from_secs(60), 2));
        assert!(pool.checkout(0, &a).is_none());
        for _ in 0..3 {
            pool.checkin(0, &a, tcp_conn(&listener).await);
        }
        assert_eq!(pool.idle_count(0), 2, "capped per host");
        assert!(
            pool.checkout(0, &b).is_none(),
            "the scheme is part of the key"
        );
        assert!(pool.checkout(0, &a).is_some());
        assert!(pool.checkout(0, &a).is_some());
        assert!(pool.checkout(0, &a).is_none());

        let pool = Arc::new(Pool::new(Duration::from_millis(20), 4));
        pool.checkin(0, &a, tcp_conn(&listener).await);
        pool.checkin(0, &a, tcp_conn(&listener).await);
        spargio_rt::time::sleep(Duration::from_millis(40)).await;
        assert!(pool.checkout(0, &a).is_none(), "expired ones are dropped");
        assert_eq!(pool.idle_count(0), 0);

        let off = Arc::new(Pool::new(Duration::from_secs(60), 0));
        off.checkin(0, &a, tcp_conn(&listener).await);
        assert_eq!(off.idle_count(0), 0, "a zero cap turns reuse off");
    })
    .unwrap();
}

#[test]
fn client_pool_closes_expired_connections_without_being_used_again() {
    spargio_rt::run(|_| async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = target("http://a.test/").unwrap();
        let pool = Arc::new(Pool::new(Duration::from_millis(20), 4));
        pool.checkin(0, &a, tcp_conn(&listener).await);
        pool.checkin(0, &a, tcp_conn(&listener).await);
        assert_eq!(pool.idle_count(0), 2);
        // No checkout or checkin follows: the shard's sweeper closes them.
        for _ in 0..500 {
            if pool.idle_count(0) == 0 {
                break;
            }
            spargio_rt::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(pool.idle_count(0), 0, "expired connections stayed open");
        // The sweeper stopped with the pool empty, and starts again.
        pool.checkin(0, &a, tcp_conn(&listener).await);
        for _ in 0..500 {
            if pool.idle_count(0) == 0 {
                break;
            }
            spargio_rt::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(pool.idle_count(0), 0);
    })
    .unwrap();
}

#[test]
fn client_pool_lets_go_of_connections_the_server_closed_before_they_expire() {
    spargio_rt::run(|_| async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = target("http://a.test/").unwrap();
        let pool = Arc::new(Pool::new(Duration::from_secs(3600), 4));
        let kept = tcp_conn(&listener).await;
        let (kept_server, _) = listener.accept().await.unwrap();
        let closed = tcp_conn(&listener).await;
        let (closed_server, _) = listener.accept().await.unwrap();
        pool.checkin(0, &a, kept);
        pool.checkin(0, &a, closed);
        drop(closed_server);
        // Far from expiry, the sweeper drops the one the server closed.
        for _ in 0..2000 {
            if pool.idle_count(0) == 1 {
                break;
            }
            spargio_rt::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(pool.idle_count(0), 1, "a half-closed connection stayed");
        assert!(pool.checkout(0, &a).is_some(), "the open one is kept");
        drop(kept_server);
    })
    .unwrap();
}

#[test]
fn client_pool_sweeps_again_on_a_new_runtime_after_the_first_shut_down() {
    // A client that outlives a runtime (a static one shared by several):
    // its sweeper was aborted with the first runtime, and the next
    // runtime's checkin must start another.
    let pool = Arc::new(Pool::new(Duration::from_millis(20), 4));
    let a = target("http://a.test/").unwrap();
    let first = pool.clone();
    let a1 = a.clone();
    spargio_rt::run(move |_| async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        first.checkin(0, &a1, tcp_conn(&listener).await);
    })
    .unwrap();
    spargio_rt::run(move |_| async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        pool.checkin(0, &a, tcp_conn(&listener).await);
        for _ in 0..500 {
            if pool.idle_count(0) == 0 {
                break;
            }
            spargio_rt::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(pool.idle_count(0), 0, "no sweeper ran on the new runtime");
    })
    .unwrap();
}

/// A client shared by runtimes: its pool is sized by the first runtime's
/// shards. A later runtime with more shards must not have its shards'
/// connections kept in (and handed out from) another shard's slot.
#[test]
fn client_pool_keeps_no_connection_of_a_shard_it_was_not_sized_for() {
    let pool = Arc::new(Pool::new(Duration::from_secs(60), 4));
    let one = spargio_rt::Runtime::builder().shards(1).build().unwrap();
    let a = target("http://a.test/").unwrap();
    one.block_on({
        let (pool, a) = (pool.clone(), a.clone());
        async move { assert!(pool.checkout(0, &a).is_none()) }
    });
    drop(one);
    let four = spargio_rt::Runtime::builder().shards(4).build().unwrap();
    four.block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        pool.checkin(3, &a, tcp_conn(&listener).await);
        assert!(
            pool.checkout(0, &a).is_none(),
            "shard 3's connection was handed to shard 0"
        );
        assert_eq!(pool.idle_count(3), 0);
        // Shard 0, which the pool was sized for, still pools.
        pool.checkin(0, &a, tcp_conn(&listener).await);
        assert!(pool.checkout(0, &a).is_some());
    });
}
