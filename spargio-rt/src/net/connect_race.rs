//! Connecting to a host with several addresses: attempts started a
//! moment apart and raced, the address families taken in turn (the way
//! RFC 8305, "Happy Eyeballs", does it), so an address that never answers
//! costs a short delay instead of the kernel's whole SYN timeout.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};

/// How long an attempt runs alone before the next address is tried beside
/// it (RFC 8305's recommended "Connection Attempt Delay").
pub(crate) const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// `addrs` reordered so that the families alternate, starting with the
/// first address's, each family keeping its own order.
pub(crate) fn interleave_families(addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let Some(first) = addrs.first() else {
        return addrs;
    };
    let first_v6 = first.is_ipv6();
    let (mut same, mut other): (Vec<_>, Vec<_>) =
        addrs.into_iter().partition(|a| a.is_ipv6() == first_v6);
    let mut out = Vec::with_capacity(same.len() + other.len());
    same.reverse();
    other.reverse();
    loop {
        match (same.pop(), other.pop()) {
            (None, None) => return out,
            (a, b) => out.extend(a.into_iter().chain(b)),
        }
    }
}

/// Runs `attempt` on the addresses in turn: the next starts when the
/// previous one failed, or when it has run for `delay` without an
/// answer, while the earlier ones go on. The first success wins and the
/// attempts still running are dropped (cancelled). All failed: the last
/// error.
pub(crate) async fn race<T, F, Fut>(
    addrs: Vec<SocketAddr>,
    delay: Duration,
    mut attempt: F,
) -> io::Result<T>
where
    F: FnMut(SocketAddr) -> Fut,
    Fut: Future<Output = io::Result<T>>,
{
    let mut waiting = interleave_families(addrs).into_iter();
    let mut running = FuturesUnordered::new();
    let mut last = None;
    loop {
        if running.is_empty() {
            match waiting.next() {
                Some(a) => running.push(attempt(a)),
                None => {
                    return Err(last.unwrap_or_else(|| {
                        io::Error::new(io::ErrorKind::InvalidInput, "no address to connect to")
                    }))
                }
            }
        }
        let ended = if waiting.len() > 0 {
            match crate::time::timeout(delay, running.next()).await {
                Ok(ended) => ended,
                // No answer yet: the next address joins the race.
                Err(_) => {
                    running.extend(waiting.next().map(&mut attempt));
                    continue;
                }
            }
        } else {
            running.next().await
        };
        match ended {
            Some(Ok(v)) => return Ok(v),
            Some(Err(e)) => {
                last = Some(e);
                if let Some(a) = waiting.next() {
                    running.push(attempt(a));
                }
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn families_alternate_from_the_first_address() {
        let got = interleave_families(addrs(&[
            "[::1]:1",
            "[::2]:1",
            "[::3]:1",
            "10.0.0.1:1",
            "10.0.0.2:1",
        ]));
        assert_eq!(
            got,
            addrs(&["[::1]:1", "10.0.0.1:1", "[::2]:1", "10.0.0.2:1", "[::3]:1"])
        );
        let got = interleave_families(addrs(&["10.0.0.1:1", "[::1]:1", "10.0.0.2:1"]));
        assert_eq!(got, addrs(&["10.0.0.1:1", "[::1]:1", "10.0.0.2:1"]));
        assert_eq!(interleave_families(Vec::new()), Vec::new());
    }

    #[test]
    fn a_silent_address_does_not_hold_up_the_next() {
        let won = crate::run(|_| async {
            let list = addrs(&["10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1"]);
            race(list, Duration::from_millis(5), |a| async move {
                if a.ip().to_string() == "10.0.0.1" {
                    // Never answers.
                    std::future::pending::<()>().await;
                }
                if a.ip().to_string() == "10.0.0.2" {
                    return Err(io::Error::from(io::ErrorKind::ConnectionRefused));
                }
                Ok(a)
            })
            .await
        })
        .unwrap();
        assert_eq!(won.unwrap(), "10.0.0.3:1".parse().unwrap());
    }

    #[test]
    fn every_address_failing_gives_the_last_error() {
        let err = crate::run(|_| async {
            race(
                addrs(&["10.0.0.1:1", "10.0.0.2:1"]),
                Duration::from_secs(60),
                |a| async move { Err::<(), _>(io::Error::other(a.to_string())) },
            )
            .await
        })
        .unwrap()
        .unwrap_err();
        assert_eq!(err.to_string(), "10.0.0.2:1");
        let none =
            crate::run(|_| async { race(Vec::new(), ATTEMPT_DELAY, |_| async { Ok(()) }).await })
                .unwrap();
        assert_eq!(none.unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }
}
