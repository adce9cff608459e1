//! Dropping a runtime cancels everything, on the right threads, and leaks
//! nothing.

use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use spargio_rt::time::sleep;
use spargio_rt::{Runtime, RuntimeHandle, ShardId};

mod common;

struct Counted(Arc<AtomicUsize>);
impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn drop_with_thousands_of_pending_tasks_and_timers_leaks_nothing() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let rt = Runtime::builder().shards(2).build().unwrap();
    let h = rt.handle();
    let mut handles = Vec::new();
    let mut expected = 0;
    // Tasks parked on far timers.
    for i in 0..3000u64 {
        let c = Counted(dropped.clone());
        handles.push(h.spawn(async move {
            let _c = c;
            sleep(Duration::from_secs(3600 + i)).await;
        }));
        expected += 1;
    }
    // Pairs of tasks waiting on each other: nothing will ever wake them, so
    // only the runtime's task registry can reach them.
    for i in 0..500usize {
        let (tx_a, rx_a) = async_channel::bounded::<()>(1);
        let (tx_b, rx_b) = async_channel::bounded::<()>(1);
        let (c1, c2) = (Counted(dropped.clone()), Counted(dropped.clone()));
        handles.push(h.spawn_pinned(ShardId(i % 2), async move {
            let _keep = (c1, tx_b);
            let _ = rx_a.recv().await;
        }));
        handles.push(h.spawn(async move {
            let _keep = (c2, tx_a);
            let _ = rx_b.recv().await;
        }));
        expected += 2;
    }
    // !Send tasks with Rc state, which must be dropped on their own shard.
    for s in 0..2 {
        let d = dropped.clone();
        handles.push(h.spawn_local_on(ShardId(s), move || {
            let c = Rc::new(Counted(d));
            async move {
                let _c = c.clone();
                sleep(Duration::from_secs(3600)).await;
            }
        }));
        expected += 1;
    }
    // Let every task reach its await.
    common::until("every task polled once", || {
        h.stats().total_polled() >= expected as u64
    });
    assert_eq!(h.stats().live_tasks, expected);
    drop(rt);
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        expected,
        "every future was dropped"
    );
    for jh in handles {
        let e = spargio_rt::block_on(jh).unwrap_err();
        assert!(e.is_cancelled());
    }
    assert_eq!(h.stats().live_tasks, 0);
}

#[test]
fn spawning_after_shutdown_reports_cancellation() {
    let rt = Runtime::builder().shards(2).build().unwrap();
    let h = rt.handle();
    drop(rt);
    let e = spargio_rt::block_on(h.spawn(async { 1 })).unwrap_err();
    assert!(e.is_cancelled());
    let e = spargio_rt::block_on(h.spawn_pinned(ShardId(1), async { 1 })).unwrap_err();
    assert!(e.is_cancelled());
    let e = spargio_rt::block_on(h.spawn_local_on(ShardId(0), || async { 1 })).unwrap_err();
    assert!(e.is_cancelled());
}

/// Spawns, when dropped, a task on shard `to` whose closure holds a
/// `Counted`: what a connection handed to another shard during shutdown
/// does (the closure holds the socket).
struct HandOffOnDrop {
    handle: RuntimeHandle,
    to: ShardId,
    dropped: Arc<AtomicUsize>,
}

impl Drop for HandOffOnDrop {
    fn drop(&mut self) {
        let held = Counted(self.dropped.clone());
        drop(self.handle.spawn_local_on(self.to, move || {
            let held = held;
            async move { drop(held) }
        }));
    }
}

#[test]
fn a_task_handed_to_a_shard_that_already_exited_releases_what_its_closure_holds() {
    // Each shard, as it exits, drops a task that hands work to the other
    // shard, which may be gone already. The runtime is shutting down, so
    // the task never runs, and its closure (and what it captured) must be
    // dropped, not leaked.
    let dropped = Arc::new(AtomicUsize::new(0));
    let rt = Runtime::builder().shards(2).build().unwrap();
    let h = rt.handle();
    for (on, to) in [(0, 1), (1, 0)] {
        let guard = HandOffOnDrop {
            handle: h.clone(),
            to: ShardId(to),
            dropped: dropped.clone(),
        };
        drop(h.spawn_pinned(ShardId(on), async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        }));
    }
    rt.block_on(sleep(Duration::from_millis(20)));
    drop(rt);
    assert_eq!(dropped.load(Ordering::SeqCst), 2, "a closure was leaked");
}

#[test]
fn shutdown_timeout_returns_even_with_a_stuck_task() {
    let rt = Runtime::builder().shards(2).build().unwrap();
    let h = rt.handle();
    let stuck = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let s2 = stuck.clone();
    let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let st2 = started.clone();
    // Set when the task stops spinning: released, or given up after 30 s
    // (so a shutdown that waited for it still ends, and fails below).
    let exited = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ex2 = exited.clone();
    let _t = h.spawn_pinned(ShardId(1), async move {
        st2.store(true, Ordering::SeqCst);
        let give_up = Instant::now() + Duration::from_secs(30);
        while s2.load(Ordering::SeqCst) && Instant::now() < give_up {
            std::hint::spin_loop();
        }
        ex2.store(true, Ordering::SeqCst);
    });
    common::wait_for(&started);
    rt.shutdown_timeout(Duration::from_millis(50));
    assert!(
        !exited.load(Ordering::SeqCst),
        "shutdown_timeout waited for the stuck task instead of returning at its deadline"
    );
    // We got here although shard 1 is still spinning; release it.
    stuck.store(false, Ordering::SeqCst);
}

#[test]
fn shutdown_timeout_past_the_clock_waits_like_a_drop() {
    // `Duration::MAX` cannot be added to an `Instant`: it means no deadline,
    // so shutdown waits for the task to be dropped, as a drop does.
    let rt = Runtime::builder().shards(2).build().unwrap();
    let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    struct SetOnDrop(Arc<std::sync::atomic::AtomicBool>);
    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let guard = SetOnDrop(dropped.clone());
    let _t = rt.handle().spawn_pinned(ShardId(1), async move {
        let _guard = guard;
        std::future::pending::<()>().await;
    });
    rt.shutdown_timeout(Duration::MAX);
    assert!(dropped.load(Ordering::SeqCst));
}

#[test]
fn runtime_dropped_inside_its_own_task_does_not_deadlock() {
    let rt = Runtime::builder().shards(2).build().unwrap();
    let h = rt.handle();
    let (tx, rx) = std::sync::mpsc::channel();
    let rt = Arc::new(std::sync::Mutex::new(Some(rt)));
    let r2 = rt.clone();
    drop(h.spawn_pinned(ShardId(0), async move {
        let taken = r2.lock().unwrap().take();
        drop(taken);
        tx.send(RuntimeHandle::current().shard_count()).unwrap();
    }));
    assert_eq!(rx.recv_timeout(Duration::from_secs(20)).unwrap(), 2);
}

#[test]
fn shutdown_cancels_tasks_on_shards_that_never_run_out_of_work() {
    // Every shard always has a task to run (each yields and is runnable
    // again at once), so no shard ever has an idle loop turn.
    let rt = Runtime::builder().shards(2).build().unwrap();
    let h = rt.handle();
    let running = Arc::new(AtomicUsize::new(0));
    for shard in 0..2 {
        let running = running.clone();
        drop(h.spawn_pinned(ShardId(shard), async move {
            running.fetch_add(1, Ordering::SeqCst);
            loop {
                spargio_rt::yield_now().await;
            }
        }));
    }
    common::until("both tasks running", || running.load(Ordering::SeqCst) >= 2);
    assert!(common::drops_in_time(rt), "dropping the runtime hung");
}

/// A waker that panics when woken: run by the shard's timer wheel, outside
/// any task poll, its panic escapes the shard's event loop itself.
struct PanicsOnWake;

impl std::task::Wake for PanicsOnWake {
    fn wake(self: Arc<Self>) {
        panic!("a waker panicked (on purpose, in a test)");
    }
}

/// A 20 ms timer (not due before its first poll, even on a preempted
/// thread) registered with a waker that panics: the shard's loop panics
/// when it fires (while the timer is kept).
fn timer_whose_waker_panics() -> std::pin::Pin<Box<spargio_rt::time::Sleep>> {
    let mut trap = Box::pin(sleep(Duration::from_millis(20)));
    let waker = std::task::Waker::from(Arc::new(PanicsOnWake));
    let mut cx = std::task::Context::from_waker(&waker);
    assert!(trap.as_mut().poll(&mut cx).is_pending());
    trap
}

#[test]
fn a_panic_in_the_shard_loop_shuts_the_runtime_down_cleanly() {
    let rt = Runtime::builder().shards(2).build().unwrap();
    let h = rt.handle();
    // A task on the other shard waits on I/O-free work that never ends by
    // itself: the shutdown the panic starts must cancel it.
    let bystander = h.spawn_pinned(ShardId(1), async {
        sleep(Duration::from_secs(3600)).await;
    });
    let armed = h.spawn_pinned(ShardId(0), async {
        let trap = timer_whose_waker_panics();
        // Keep the timer registered (with its panicking waker) while this
        // task waits; the shard fires it from its loop.
        sleep(Duration::from_secs(3600)).await;
        drop(trap);
    });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send((spargio_rt::block_on(bystander), spargio_rt::block_on(armed)));
    });
    let Ok((bystander, armed)) = rx.recv_timeout(Duration::from_secs(20)) else {
        // Dropping a runtime whose shard died would hang this test too.
        std::mem::forget(rt);
        panic!("tasks were not cancelled after the shard loop panicked");
    };
    assert!(bystander.unwrap_err().is_cancelled());
    assert!(armed.unwrap_err().is_cancelled());
    let stats = h.stats();
    assert_eq!(stats.shards[0].loop_panics, 1);
    assert_eq!(stats.shards[1].loop_panics, 0);
    assert!(common::drops_in_time(rt), "dropping the runtime hung");
}

#[test]
fn a_multishot_accept_polled_after_the_shards_exited_fails_instead_of_looping() {
    let rt = Runtime::builder().shards(1).build().unwrap();
    let h = rt.handle();
    let listener =
        spargio_rt::net::TcpListener::bind_with("127.0.0.1:0".parse().unwrap(), 16, false).unwrap();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    // A blocking-pool thread: outside the shards, with the runtime entered.
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let _closure = h.spawn_blocking(move || {
        started_tx.send(()).unwrap();
        go_rx.recv().unwrap();
        let mut incoming = listener.incoming();
        let first = spargio_rt::block_on(incoming.next());
        done_tx.send(first.map(drop)).unwrap();
    });
    started_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the closure started");
    rt.shutdown_background();
    go_tx.send(()).unwrap();
    let first = done_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the accept ended (it re-armed in a loop)");
    let e = first.expect_err("no connection after shutdown");
    assert!(e.to_string().contains("shut down"), "{e}");
}

#[test]
fn run_says_the_runtime_shut_down_when_a_shard_loop_fails_under_its_entry() {
    let err = spargio_rt::run_with(Runtime::builder().shards(1), |_| async {
        let trap = timer_whose_waker_panics();
        sleep(Duration::from_secs(3600)).await;
        drop(trap);
    })
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("shut down before the entry future finished"),
        "{msg}"
    );
}
