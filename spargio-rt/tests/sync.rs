//! Behaviour of `spargio_rt::sync`: cancellation token trees and task groups.

use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use spargio_rt::sync::{CancellationToken, TaskGroup};
use spargio_rt::time::sleep;
use spargio_rt::{Runtime, RuntimeHandle, ShardId, TaskPlacement};

mod common;

const LONG: Duration = Duration::from_secs(3600);

fn run2<F, Fut, T>(entry: F) -> T
where
    F: FnOnce(RuntimeHandle) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + 'static,
    T: Send + 'static,
{
    spargio_rt::run_with(Runtime::builder().shards(2), entry).unwrap()
}

/// Polls `fut` once; if it is pending, counts that in `waiting` (it has
/// registered its waker) before awaiting it to the end.
async fn waiting_after_first_poll<F: std::future::Future>(
    fut: F,
    waiting: &AtomicUsize,
) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(fut.as_mut().poll(cx))).await;
    match first {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => {
            waiting.fetch_add(1, Ordering::SeqCst);
            fut.await
        }
    }
}

// ---------------------------------------------------------------------------
// CancellationToken
// ---------------------------------------------------------------------------

#[test]
fn cancelling_parent_cancels_whole_tree() {
    let root = CancellationToken::new();
    let a = root.child_token();
    let b = root.child_token();
    let a1 = a.child_token();
    let a2 = a.clone().child_token();
    let a1x = a1.child_token();
    let b1 = b.child_token();
    let all = [&a, &b, &a1, &a2, &a1x, &b1];
    assert!(all.iter().all(|t| !t.is_cancelled()));
    root.cancel();
    assert!(root.is_cancelled());
    assert!(all.iter().all(|t| t.is_cancelled()));
}

#[test]
fn cancelling_child_leaves_parent_and_siblings() {
    let root = CancellationToken::new();
    let a = root.child_token();
    let b = root.child_token();
    let a1 = a.child_token();
    let b1 = b.child_token();
    a.cancel();
    assert!(a.is_cancelled() && a1.is_cancelled());
    assert!(!root.is_cancelled());
    assert!(!b.is_cancelled() && !b1.is_cancelled());
    // Clones share state.
    let b_clone = b.clone();
    b_clone.cancel();
    assert!(b.is_cancelled() && b1.is_cancelled());
    assert!(!root.is_cancelled());
}

#[test]
fn child_of_cancelled_token_is_cancelled() {
    let root = CancellationToken::new();
    let mid = root.child_token();
    root.cancel();
    let late = mid.child_token();
    assert!(late.is_cancelled());
    assert!(root.child_token().is_cancelled());
}

#[test]
fn cancelled_on_cancelled_token_resolves() {
    run2(|_| async {
        let t = CancellationToken::new();
        t.cancel();
        t.cancelled().await;
        t.clone().cancelled_owned().await;
        t.child_token().cancelled().await;
    });
}

#[test]
fn many_waiters_all_wake() {
    let woken = run2(|h| async move {
        let root = CancellationToken::new();
        let woken = Arc::new(AtomicUsize::new(0));
        let waiting = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..64 {
            // Half wait on the root itself, half on (grand)children of it.
            let t = match i % 3 {
                0 => root.clone(),
                1 => root.child_token(),
                _ => root.child_token().child_token(),
            };
            let (w, waiting) = (woken.clone(), waiting.clone());
            tasks.push(h.spawn(async move {
                // Several waiters per task, borrowed and owned.
                let a = t.cancelled();
                let b = t.clone().cancelled_owned();
                waiting_after_first_poll(a, &waiting).await;
                b.await;
                w.fetch_add(1, Ordering::SeqCst);
            }));
        }
        // A waiter on a plain thread too.
        let t = root.clone();
        let on_thread = waiting.clone();
        let thread = std::thread::spawn(move || {
            spargio_rt::block_on(waiting_after_first_poll(t.cancelled_owned(), &on_thread))
        });
        // Every waiter is registered (pending) when the root is cancelled:
        // the cancel must wake them, not just be seen by a later first poll.
        common::eventually("every waiter waits", || {
            waiting.load(Ordering::SeqCst) == 65
        })
        .await;
        root.cancel();
        for t in tasks {
            t.await.unwrap();
        }
        h.spawn_blocking(move || thread.join().unwrap())
            .await
            .unwrap();
        woken.load(Ordering::SeqCst)
    });
    assert_eq!(woken, 64);
}

#[test]
fn cancel_from_plain_thread_wakes_shard_waiter() {
    run2(|h| async move {
        let t = CancellationToken::new();
        let waiting = Arc::new(AtomicUsize::new(0));
        let waiter = {
            let (t, waiting) = (t.child_token(), waiting.clone());
            h.spawn_pinned(ShardId(1), async move {
                waiting_after_first_poll(t.cancelled(), &waiting).await
            })
        };
        common::eventually("the waiter waits", || waiting.load(Ordering::SeqCst) == 1).await;
        let t2 = t.clone();
        std::thread::spawn(move || t2.cancel());
        waiter.await.unwrap();
        assert!(t.is_cancelled());
    });
}

#[test]
fn drop_guard_cancels_and_disarm_keeps() {
    let t = CancellationToken::new();
    let g = t.clone().drop_guard();
    let back = g.disarm();
    assert!(!t.is_cancelled());
    assert!(back.ptr_eq(&t));
    {
        let _g = t.child_token().drop_guard();
    }
    assert!(!t.is_cancelled());
    {
        let _g = t.clone().drop_guard();
    }
    assert!(t.is_cancelled());
}

#[test]
fn run_until_cancelled_completes_or_stops() {
    run2(|h| async move {
        let t = CancellationToken::new();
        assert_eq!(t.run_until_cancelled(async { 1 }).await, Some(1));
        let t2 = t.clone();
        h.spawn(async move {
            sleep(Duration::from_millis(1)).await;
            t2.cancel();
        });
        assert_eq!(t.run_until_cancelled(sleep(LONG)).await, None);
        // Already cancelled: the future is never polled.
        let polled = Arc::new(AtomicUsize::new(0));
        let p = polled.clone();
        let out = t
            .clone()
            .run_until_cancelled_owned(async move {
                p.fetch_add(1, Ordering::SeqCst);
            })
            .await;
        assert_eq!(out, None);
        assert_eq!(polled.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn dropped_waiter_does_not_break_others() {
    run2(|h| async move {
        let t = CancellationToken::new();
        // Start waiting, give up on a timeout (drops the Cancelled future).
        let r = spargio_rt::time::timeout(Duration::from_millis(1), t.cancelled()).await;
        assert!(r.is_err());
        let t2 = t.clone();
        let waiting = Arc::new(AtomicUsize::new(0));
        let registered = waiting.clone();
        let w =
            h.spawn(
                async move { waiting_after_first_poll(t2.cancelled_owned(), &registered).await },
            );
        common::eventually("the waiter waits", || waiting.load(Ordering::SeqCst) == 1).await;
        t.cancel();
        w.await.unwrap();
    });
}

// ---------------------------------------------------------------------------
// TaskGroup
// ---------------------------------------------------------------------------

#[test]
fn join_all_returns_results_in_spawn_order() {
    let out = run2(|h| async move {
        let mut g = TaskGroup::new(h);
        let mut gates = Vec::new();
        for i in 0..10u32 {
            let (tx, rx) = async_channel::bounded::<()>(1);
            gates.push(tx);
            g.spawn(async move {
                let _ = rx.recv().await;
                i
            });
        }
        // Let them finish in reverse order.
        for tx in gates.into_iter().rev() {
            tx.send(()).await.unwrap();
        }
        g.join_all().await
    });
    let vals: Vec<u32> = out.into_iter().map(Result::unwrap).collect();
    assert_eq!(vals, (0..10).collect::<Vec<_>>());
}

#[test]
fn join_next_yields_in_completion_order() {
    let out = run2(|h| async move {
        let mut g = TaskGroup::new(h);
        let mut gates = Vec::new();
        for i in 0..6u32 {
            let (tx, rx) = async_channel::bounded::<()>(1);
            gates.push(tx);
            g.spawn(async move {
                let _ = rx.recv().await;
                i
            });
        }
        let mut order = Vec::new();
        for i in [3usize, 0, 5, 1, 4, 2] {
            gates[i].send(()).await.unwrap();
            order.push(g.join_next().await.unwrap().unwrap());
        }
        assert!(g.join_next().await.is_none());
        assert!(g.is_empty());
        order
    });
    assert_eq!(out, vec![3, 0, 5, 1, 4, 2]);
}

#[test]
fn join_next_on_empty_group_is_none() {
    run2(|h| async move {
        let mut g: TaskGroup<u8> = TaskGroup::new(h);
        assert!(g.join_next().await.is_none());
        assert!(g.join_all().await.is_empty());
    });
}

#[test]
fn cancel_stops_long_tasks_and_reports_cancelled() {
    let (results, dropped) = run2(|h| async move {
        let mut g = TaskGroup::new(h);
        let dropped = Arc::new(AtomicUsize::new(0));
        g.spawn(async { 7u32 });
        // Make sure the quick one has finished before cancelling.
        let first = g.join_next().await.unwrap().unwrap();
        assert_eq!(first, 7);
        for _ in 0..4 {
            let d = OnDrop(dropped.clone());
            g.spawn(async move {
                let _d = d;
                sleep(LONG).await;
                0
            });
        }
        g.spawn(std::future::pending());
        assert_eq!(g.len(), 5);
        g.cancel();
        assert!(g.token().is_cancelled());
        let results = g.join_all().await;
        assert_eq!(g.len(), 0);
        // Spawned after cancel: never runs.
        g.spawn(async { never_polled() });
        let late = g.join_next().await.unwrap();
        assert!(late.unwrap_err().is_cancelled());
        (results, dropped.load(Ordering::SeqCst))
    });
    assert_eq!(results.len(), 5);
    assert!(results
        .iter()
        .all(|r| r.as_ref().unwrap_err().is_cancelled()));
    assert_eq!(dropped, 4);
}

#[test]
fn group_token_is_child_of_given_token() {
    run2(|h| async move {
        let parent = CancellationToken::new();
        let mut g: TaskGroup = TaskGroup::with_token(h.clone(), &parent);
        g.cancel();
        assert!(!parent.is_cancelled());
        let mut g2: TaskGroup<()> = TaskGroup::with_token(h, &parent);
        g2.spawn(std::future::pending());
        g2.spawn(std::future::pending());
        parent.cancel();
        assert!(g2.token().is_cancelled());
        let r = g2.join_all().await;
        assert!(r.iter().all(|r| r.as_ref().unwrap_err().is_cancelled()));
        assert!(g.join_all().await.is_empty());
    });
}

#[test]
fn placements_are_honored() {
    let shards = run2(|h| async move {
        let mut g = TaskGroup::new(h);
        let here = || RuntimeHandle::current().current_shard();
        g.spawn_with_placement(TaskPlacement::Pinned(ShardId(1)), async move { here() });
        g.spawn_with_placement(TaskPlacement::Pinned(ShardId(0)), async move { here() });
        g.spawn_with_placement(TaskPlacement::Sticky(3), async move { here() });
        g.spawn(async move { here() });
        // spawn_local: !Send future on the current shard (shard 0 under run).
        let rc = Rc::new(());
        g.spawn_local(async move {
            let _rc = rc;
            here()
        });
        g.join_all().await
    });
    let shards: Vec<_> = shards.into_iter().map(Result::unwrap).collect();
    assert_eq!(shards[0], Some(ShardId(1)));
    assert_eq!(shards[1], Some(ShardId(0)));
    assert_eq!(shards[2], Some(ShardId(1))); // 3 % 2
    assert!(shards[3].is_some());
    assert_eq!(shards[4], Some(ShardId(0)));
}

#[test]
fn panics_become_join_errors() {
    let results = run2(|h| async move {
        let mut g = TaskGroup::new(h);
        g.spawn(async { 1u8 });
        g.spawn(async { panic!("boom") });
        g.spawn(async { 3u8 });
        g.join_all().await
    });
    assert_eq!(*results[0].as_ref().unwrap(), 1);
    let err = results[1].as_ref().unwrap_err();
    assert!(err.is_panic());
    assert_eq!(*results[2].as_ref().unwrap(), 3);
}

#[test]
fn abort_all_aborts_running_tasks() {
    run2(|h| async move {
        let mut g = TaskGroup::new(h);
        for _ in 0..5 {
            g.spawn(async {
                sleep(LONG).await;
                1u8
            });
        }
        g.abort_all();
        let r = g.join_all().await;
        assert_eq!(r.len(), 5);
        assert!(r.iter().all(|r| r.as_ref().unwrap_err().is_cancelled()));
        // The token is untouched: later spawns run.
        assert!(!g.token().is_cancelled());
        g.spawn(async { 2 });
        assert_eq!(g.join_next().await.unwrap().unwrap(), 2);
    });
}

#[test]
fn dropping_group_cancels_its_tasks() {
    run2(|h| async move {
        let (tx, rx) = async_channel::bounded::<()>(1);
        let g = TaskGroup::new(h);
        g.spawn(async move {
            let _tx = tx;
            sleep(LONG).await;
        });
        drop(g);
        // The task's future (and its sender) is dropped: recv sees closed.
        assert!(rx.recv().await.is_err());
    });
}

#[test]
fn tasks_can_watch_the_group_token() {
    let out = run2(|h| async move {
        let mut g = TaskGroup::new(h);
        let t = g.token().clone();
        let ticks = Arc::new(AtomicUsize::new(0));
        let tk = ticks.clone();
        g.spawn(async move {
            while !t.is_cancelled() {
                tk.fetch_add(1, Ordering::SeqCst);
                sleep(Duration::from_micros(100)).await;
            }
        });
        while ticks.load(Ordering::SeqCst) < 3 {
            sleep(Duration::from_micros(100)).await;
        }
        g.cancel();
        g.join_all().await.len()
    });
    assert_eq!(out, 1);
}

#[test]
fn many_tasks_drained_with_join_next() {
    let n = run2(|_| async move {
        let mut g = TaskGroup::current();
        let mut total = 0u64;
        let mut joined = 0;
        for round in 0..20u64 {
            for i in 0..50u64 {
                g.spawn(async move { round * i });
            }
            while let Some(r) = g.join_next().await {
                total += r.unwrap();
                joined += 1;
            }
        }
        assert_eq!(total, (0..20u64).sum::<u64>() * (0..50u64).sum::<u64>());
        joined
    });
    assert_eq!(n, 1000);
}

#[test]
fn spawn_after_shutdown_whose_dropped_future_spawns_into_the_same_group() {
    // After shutdown began a spawn drops its task on the caller's thread;
    // here the future's drop spawns into the same group again, which must
    // not wait for the first spawn to let go of the group.
    struct Respawn(Arc<TaskGroup>);
    impl Drop for Respawn {
        fn drop(&mut self) {
            self.0.spawn(async {});
        }
    }
    let rt = Runtime::builder().shards(2).build().unwrap();
    let g = Arc::new(TaskGroup::<()>::new(rt.handle()));
    drop(rt);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let r = Respawn(g.clone());
        g.spawn(async move {
            let _r = r;
        });
        tx.send(g.len()).unwrap();
    });
    let running = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("a spawn whose dropped future spawns into the same group hung");
    assert_eq!(running, 0, "both tasks were dropped at once");
}

#[test]
fn a_task_counts_as_running_until_its_future_is_dropped() {
    // The probe's drop runs as the cancelled task's future is dropped and
    // reads how many tasks the group still counts as running: its own task
    // must be among them (it has not finished dropping yet).
    struct Probe {
        group: Arc<TaskGroup<u8>>,
        tx: async_channel::Sender<usize>,
    }
    impl Drop for Probe {
        fn drop(&mut self) {
            self.tx.try_send(self.group.len()).unwrap();
        }
    }
    let seen = run2(|h| async move {
        let g = Arc::new(TaskGroup::<u8>::new(h));
        let (tx, rx) = async_channel::unbounded();
        let probe = Probe {
            group: g.clone(),
            tx,
        };
        g.spawn(async move {
            let _probe = probe;
            std::future::pending::<u8>().await
        });
        g.cancel();
        rx.recv().await.unwrap()
    });
    assert_eq!(seen, 1);
}

// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------

fn never_polled() -> u32 {
    unreachable!("a task spawned into a cancelled group must not run")
}

struct OnDrop(Arc<AtomicUsize>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}
