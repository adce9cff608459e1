//! Task lifecycle: !Send tasks, abort, panics, join handles, free functions.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use spargio_rt::time::sleep;
use spargio_rt::{Runtime, RuntimeHandle, ShardId};

fn rt() -> Runtime {
    Runtime::builder().shards(2).build().unwrap()
}

#[test]
fn non_send_tasks_share_rc_state_on_one_shard() {
    let out = spargio_rt::run_with(Runtime::builder().shards(2), |_| async {
        let log = Rc::new(RefCell::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..10 {
            let log = log.clone();
            tasks.push(spargio_rt::spawn_local(async move {
                sleep(Duration::from_micros(10 * (10 - i))).await;
                log.borrow_mut().push(i);
                RuntimeHandle::current().current_shard()
            }));
        }
        let mut shards = Vec::new();
        for t in tasks {
            shards.push(t.await.unwrap());
        }
        let mut got = log.borrow().clone();
        got.sort();
        (got, shards)
    })
    .unwrap();
    assert_eq!(out.0, (0..10).collect::<Vec<_>>());
    assert!(out.1.iter().all(|s| *s == Some(ShardId(0))), "{:?}", out.1);
}

#[test]
fn abort_cancels_a_waiting_task_and_drops_its_future() {
    struct SetOnDrop(Arc<AtomicBool>);
    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let rt = rt();
    let h = rt.handle();
    let dropped = Arc::new(AtomicBool::new(false));
    let guard = SetOnDrop(dropped.clone());
    let t = h.spawn(async move {
        let _g = guard;
        sleep(Duration::from_secs(3600)).await;
        1
    });
    rt.block_on(sleep(Duration::from_millis(2)));
    t.abort();
    let err = rt.block_on(t).unwrap_err();
    assert!(err.is_cancelled() && !err.is_panic(), "{err:?}");
    assert!(dropped.load(Ordering::SeqCst));
}

#[test]
fn abort_before_first_poll_and_after_finish() {
    let rt = rt();
    let h = rt.handle();
    // Finished tasks keep their output.
    let done = h.spawn(async { 5 });
    while !done.is_finished() {
        std::thread::yield_now();
    }
    done.abort();
    assert_eq!(rt.block_on(done).unwrap(), 5);
    // A local task aborted right after spawn never produces output.
    let out = rt
        .block_on(h.spawn_pinned(ShardId(0), async {
            let t = spargio_rt::spawn_local(async { 7 });
            t.abort();
            t.await
        }))
        .unwrap();
    assert!(out.unwrap_err().is_cancelled());
}

#[test]
fn panics_become_join_errors_and_the_shard_keeps_serving() {
    let rt = rt();
    let h = rt.handle();
    for shard in 0..2 {
        let err = rt
            .block_on(h.spawn_pinned(ShardId(shard), async {
                if RuntimeHandle::current().current_shard().is_some() {
                    panic!("boom on purpose");
                }
                0
            }))
            .unwrap_err();
        assert!(err.is_panic());
        assert!(err.to_string().contains("boom on purpose"), "{err}");
        let payload = err.into_panic();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom on purpose"));
        // Same shard, still alive.
        let ok = rt
            .block_on(h.spawn_pinned(ShardId(shard), async {
                RuntimeHandle::current().current_shard()
            }))
            .unwrap();
        assert_eq!(ok, Some(ShardId(shard)));
    }
    assert_eq!(h.stats().shards.iter().map(|s| s.panics).sum::<u64>(), 2);
}

/// Sets its flag, then panics, when dropped.
struct PanicsOnDrop(Arc<AtomicBool>);
impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
        panic!("an output that panics when dropped");
    }
}

#[test]
fn a_detached_task_whose_output_or_panic_panics_when_dropped_leaves_the_shard_serving() {
    let rt = rt();
    let h = rt.handle();
    for payload in [false, true] {
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = dropped.clone();
        // Nobody takes the result: the task drops it where it ends.
        drop(h.spawn_pinned(ShardId(0), async move {
            if payload {
                std::panic::panic_any(PanicsOnDrop(flag));
            }
            PanicsOnDrop(flag)
        }));
        rt.block_on(async {
            let give_up = std::time::Instant::now() + std::time::Duration::from_secs(20);
            while !dropped.load(Ordering::SeqCst) {
                assert!(
                    std::time::Instant::now() < give_up,
                    "the unclaimed result was never dropped"
                );
                spargio_rt::yield_now().await;
            }
        });
        // Same shard, still alive (the process did not abort).
        let ok = rt
            .block_on(h.spawn_pinned(ShardId(0), async {
                RuntimeHandle::current().current_shard()
            }))
            .unwrap();
        assert_eq!(ok, Some(ShardId(0)));
    }
}

#[test]
fn detached_tasks_keep_running() {
    let rt = rt();
    let h = rt.handle();
    let (tx, rx) = async_channel::bounded(1);
    drop(h.spawn(async move {
        sleep(Duration::from_millis(1)).await;
        tx.send(9).await.unwrap();
    }));
    assert_eq!(rt.block_on(rx.recv()).unwrap(), 9);
}

#[test]
fn free_functions_use_the_current_runtime() {
    let v = spargio_rt::run_with(Runtime::builder().shards(2), |_| async {
        let a = spargio_rt::spawn(async { 1 });
        let b = spargio_rt::spawn_local(async { 2 });
        let c = spargio_rt::spawn_blocking(|| 3);
        a.await.unwrap() + b.await.unwrap() + c.await.unwrap()
    })
    .unwrap();
    assert_eq!(v, 6);
}

#[test]
#[should_panic(expected = "no runtime here")]
fn spawn_outside_a_runtime_panics_clearly() {
    drop(spargio_rt::spawn(async {}));
}

#[test]
fn spawn_local_off_shard_panics_clearly() {
    let rt = rt();
    let h = rt.handle();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        drop(h.spawn_local(async {}));
    }));
    let msg = r.unwrap_err();
    let msg = msg
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| msg.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(
        msg.contains("spawn_local must be called on a shard"),
        "{msg}"
    );
}

#[test]
fn block_on_inside_a_shard_is_refused() {
    let rt = rt();
    let h = rt.handle();
    let inner = Runtime::builder().shards(1).build().unwrap();
    let inner = Arc::new(inner);
    let i2 = inner.clone();
    let err = rt
        .block_on(h.spawn_pinned(ShardId(0), async move { i2.block_on(async { 1 }) }))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("block_on called on a shard thread"),
        "{err}"
    );
}

#[test]
fn block_on_on_a_background_pool_thread_is_refused() {
    // The only background thread would wait for a task queued behind
    // itself: refused at once instead of hanging.
    let rt = Runtime::builder()
        .shards(1)
        .background_threads(1)
        .build()
        .unwrap();
    let h = rt.handle();
    let err = rt
        .block_on(spargio_rt::time::timeout(
            Duration::from_secs(10),
            h.spawn_background(async {
                spargio_rt::block_on(spargio_rt::spawn_background(async { 1 }))
            }),
        ))
        .expect("the background thread hung in block_on")
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("block_on called on a background-pool thread"),
        "{err}"
    );
    // A blocking-pool closure may still block on a future.
    let got = rt.block_on(h.spawn_blocking(|| spargio_rt::block_on(async { 2 })));
    assert_eq!(got.unwrap(), 2);
}

#[test]
fn a_queued_job_whose_drop_spawns_is_cancelled_quietly_at_shutdown() {
    /// Spawns a task when dropped (noting whether that panicked), and
    /// lets the running job go.
    struct SpawnOnDrop {
        _release: std::sync::mpsc::Sender<()>,
        panicked: Arc<AtomicBool>,
    }
    impl Drop for SpawnOnDrop {
        fn drop(&mut self) {
            let spawned = std::panic::catch_unwind(|| drop(spargio_rt::spawn(async {})));
            self.panicked.store(spawned.is_err(), Ordering::SeqCst);
        }
    }
    let rt = Runtime::builder()
        .shards(1)
        .max_blocking_threads(1)
        .build()
        .unwrap();
    let h = rt.handle();
    // The one blocking thread waits until the queued job is dropped.
    let (release, wait) = std::sync::mpsc::channel::<()>();
    let (started, running) = std::sync::mpsc::channel();
    let running_job = h.spawn_blocking(move || {
        started.send(()).unwrap();
        let _ = wait.recv();
    });
    running.recv().unwrap();
    let panicked = Arc::new(AtomicBool::new(false));
    let queued = SpawnOnDrop {
        _release: release,
        panicked: panicked.clone(),
    };
    drop(h.spawn_blocking(move || drop(queued)));
    drop(running_job);
    // Shutdown cancels the queued job on this thread: its drop spawns,
    // which must find this (shutting down) runtime, not panic.
    drop(rt);
    assert!(
        !panicked.load(Ordering::SeqCst),
        "a spawn in a destructor run by the shutdown found no runtime"
    );
}

#[test]
fn run_inside_a_shard_is_refused_before_anything_starts() {
    // A `#[spargio_rt::main]` or `run` function called from a task: no
    // runtime is built and its entry never runs.
    let rt = rt();
    let h = rt.handle();
    let started = Arc::new(AtomicBool::new(false));
    let s = started.clone();
    let err = rt
        .block_on(h.spawn_pinned(ShardId(0), async move {
            spargio_rt::run_with(Runtime::builder().shards(1), move |_| async move {
                s.store(true, Ordering::SeqCst);
            })
        }))
        .unwrap_err();
    assert!(
        err.to_string().contains("run called on a shard thread"),
        "{err}"
    );
    assert!(!started.load(Ordering::SeqCst), "the entry ran");
}

#[test]
fn run_resumes_a_panic_of_the_main_future() {
    let r = std::panic::catch_unwind(|| {
        spargio_rt::run_with(Runtime::builder().shards(1), |_| async {
            panic!("main failed");
        })
    });
    let p = r.unwrap_err();
    assert_eq!(p.downcast_ref::<&str>(), Some(&"main failed"));
}

#[test]
fn join_error_formats() {
    let rt = rt();
    let h = rt.handle();
    let t = h.spawn(async {
        sleep(Duration::from_secs(10)).await;
    });
    t.abort();
    let e = rt.block_on(t).unwrap_err();
    assert_eq!(e.to_string(), "task was cancelled");
    assert!(e.try_into_panic().is_err());
    let io: std::io::Error = rt
        .block_on(h.spawn(async { panic!("x") }))
        .unwrap_err()
        .into();
    assert!(io.to_string().contains("panicked"));
}

#[test]
fn yield_now_lets_io_that_completed_meanwhile_run_first() {
    // One shard: the reader and the yielding task share it. The yielding
    // task writes to the reader's socket, then yields until the reader has
    // seen the bytes. A yield that only re-queued the task would run it
    // again and again in the same batch (up to the task budget of 64)
    // before the shard looked at its completions.
    let yields = spargio_rt::run_with(Runtime::builder().shards(1), |_| async {
        use spargio_rt::io::AsyncReadExt;
        let (std_a, std_b) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut b = spargio_rt::net::UnixStream::from_std(std_b);
        let seen = Rc::new(std::cell::Cell::new(false));
        let flag = seen.clone();
        let reader = spargio_rt::spawn_local(async move {
            let (n, _) = b.read_exact(vec![0u8; 4]).await;
            n.unwrap();
            flag.set(true);
        });
        // Let the reader submit its read.
        spargio_rt::yield_now().await;
        std::io::Write::write_all(&mut &std_a, b"ping").unwrap();
        let mut yields = 0;
        while !seen.get() {
            spargio_rt::yield_now().await;
            yields += 1;
            assert!(yields < 64, "the reader never ran between yields");
        }
        reader.await.unwrap();
        yields
    })
    .unwrap();
    assert!(
        yields <= 3,
        "the reader waited {yields} yields for its completion"
    );
}

#[test]
fn yield_now_resumes_off_a_shard_too() {
    let rt = rt();
    rt.block_on(async {
        for _ in 0..3 {
            spargio_rt::yield_now().await;
        }
    });
    let done = rt.handle().spawn_blocking(|| {
        spargio_rt::Runtime::builder()
            .shards(1)
            .build()
            .unwrap()
            .block_on(spargio_rt::yield_now())
    });
    rt.block_on(done).unwrap();
}

#[test]
#[should_panic(expected = "polled after it gave its task's result")]
fn a_join_handle_polled_after_its_result_panics_rather_than_report_a_false_cancel() {
    let rt = Runtime::builder().shards(1).build().unwrap();
    rt.block_on(async {
        let mut task = spargio_rt::spawn(async { 1 });
        assert_eq!((&mut task).await.unwrap(), 1);
        let _ = (&mut task).await;
    });
}
