//! `ReadWatch`: which bound ends a wait, what is counted, and that a lazily
//! re-armed timer never ends a wait before its own deadline.

use std::future::pending;
use std::sync::Arc;
use std::time::{Duration, Instant};

use spargio_rt::sync::CancellationToken;

use super::{ReadWatch, Watched};
use crate::connection::Connection;
use crate::stats::Counters;

fn connection(idle: Option<Duration>, closing: &CancellationToken) -> (Connection, Arc<Counters>) {
    let counters = Counters::new(1);
    let conn = Connection::for_test(idle, closing, &counters);
    (conn, counters)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[spargio_rt::test]
async fn a_read_that_finishes_first_is_returned() {
    let closing = CancellationToken::new();
    let (conn, counters) = connection(Some(ms(50)), &closing);
    let mut watch = ReadWatch::new(&conn);
    for i in 0..3 {
        let deadline = Instant::now() + ms(50);
        assert_eq!(
            watch.wait(async { i }, Some(deadline), true).await,
            Watched::Done(i)
        );
    }
    assert_eq!(counters.idle_timeouts.get(), 0);
}

#[spargio_rt::test]
async fn the_deadline_ends_a_busy_wait_without_counting_an_idle_timeout() {
    let closing = CancellationToken::new();
    let (conn, counters) = connection(Some(ms(5)), &closing);
    let mut watch = ReadWatch::new(&conn);
    let deadline = Instant::now() + ms(20);
    // Not idle: the idle timeout (5 ms) does not apply, the deadline does.
    let out = watch.wait(pending::<()>(), Some(deadline), false).await;
    assert_eq!(out, Watched::TimedOut);
    assert!(Instant::now() >= deadline, "ended before its deadline");
    assert_eq!(counters.idle_timeouts.get(), 0);
}

#[spargio_rt::test]
async fn the_idle_timeout_ends_an_idle_wait_and_is_counted() {
    let closing = CancellationToken::new();
    let (conn, counters) = connection(Some(ms(5)), &closing);
    let mut watch = ReadWatch::new(&conn);
    let far = Instant::now() + Duration::from_secs(3600);
    let out = watch.wait(pending::<()>(), Some(far), true).await;
    assert_eq!(out, Watched::TimedOut);
    assert_eq!(counters.idle_timeouts.get(), 1);
}

#[spargio_rt::test]
async fn shutdown_ends_idle_waits_only() {
    let closing = CancellationToken::new();
    let (conn, _) = connection(None, &closing);
    let mut watch = ReadWatch::new(&conn);
    let cancel = closing.clone();
    spargio_rt::spawn(async move {
        spargio_rt::time::sleep(ms(5)).await;
        cancel.cancel();
    });
    let far = Instant::now() + Duration::from_secs(3600);
    assert_eq!(
        watch.wait(pending::<()>(), Some(far), true).await,
        Watched::Closing
    );
    // A request in progress is not cut by the shutdown: its deadline ends it.
    let deadline = Instant::now() + ms(10);
    let out = watch.wait(pending::<()>(), Some(deadline), false).await;
    assert_eq!(out, Watched::TimedOut);
    // And the next idle wait sees the shutdown at once.
    assert_eq!(
        watch.wait(pending::<()>(), None, true).await,
        Watched::Closing
    );
}

#[spargio_rt::test]
async fn a_timer_armed_for_an_earlier_deadline_never_ends_a_later_wait_early() {
    let closing = CancellationToken::new();
    let (conn, _) = connection(None, &closing);
    let mut watch = ReadWatch::new(&conn);
    // Arms the timer for 10 ms from now, then finishes at once.
    let first = Instant::now() + ms(10);
    assert_eq!(
        watch.wait(async {}, Some(first), false).await,
        Watched::Done(())
    );
    // The next wait's deadline is later: the armed timer fires first and
    // must be moved out, not taken for this wait's end.
    let second = Instant::now() + ms(40);
    let out = watch.wait(pending::<()>(), Some(second), false).await;
    assert_eq!(out, Watched::TimedOut);
    assert!(
        Instant::now() >= second,
        "ended at the earlier, stale deadline"
    );
    // An earlier deadline than the one armed re-arms the timer for it (the
    // wait ends; with a stale later timer it would hang past the test's
    // limit instead).
    let third_far = Instant::now() + Duration::from_secs(3600);
    assert_eq!(
        watch.wait(async {}, Some(third_far), false).await,
        Watched::Done(())
    );
    let fourth = Instant::now() + ms(10);
    let out = spargio_rt::time::timeout(
        Duration::from_secs(30),
        watch.wait(pending::<()>(), Some(fourth), false),
    )
    .await;
    assert_eq!(out, Ok(Watched::TimedOut));
    assert!(Instant::now() >= fourth);
}
