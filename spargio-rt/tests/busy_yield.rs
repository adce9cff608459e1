//! A shard that runs tasks without a break offers its CPU to other threads
//! once per `busy_yield`; zero turns that off.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use spargio_rt::{Runtime, RuntimeHandle, ShardId};

/// Returns `Pending` once after waking itself: the task goes back to the
/// queue and the shard's loop turn ends with work done.
struct Requeue(bool);

impl Future for Requeue {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

fn yields_while_busy(after: Duration) -> u64 {
    let rt = Runtime::builder()
        .shards(1)
        .busy_yield(after)
        .build()
        .unwrap();
    let h = rt.handle();
    rt.block_on(h.spawn_pinned(ShardId(0), async {
        // 20 ms of back-to-back polls, never idle.
        let end = Instant::now() + Duration::from_millis(20);
        while Instant::now() < end {
            Requeue(false).await;
        }
        RuntimeHandle::current().stats().shards[0].busy_yields
    }))
    .unwrap()
}

#[test]
fn a_shard_busy_without_a_break_yields_its_cpu_once_per_interval() {
    assert!(yields_while_busy(Duration::from_millis(1)) > 0);
}

#[test]
fn a_zero_busy_yield_never_yields() {
    assert_eq!(yields_while_busy(Duration::ZERO), 0);
}
