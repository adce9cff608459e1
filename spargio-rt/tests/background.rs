//! The background pool: CPU-heavy futures off the shards, at a lower
//! priority, with the runtime entered.

use std::future::pending;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use spargio_rt::{Runtime, RuntimeHandle};

mod common;

/// The calling thread's nice value.
fn own_nice() -> i32 {
    // SAFETY: `getpriority` only reads; on Linux `who == 0` with
    // `PRIO_PROCESS` names the calling thread.
    unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
}

#[test]
fn background_tasks_run_off_the_shards_with_the_runtime_entered() {
    let rt = Runtime::builder().shards(2).build().unwrap();
    let h = rt.handle();
    let (shard, entered, name) = rt
        .block_on(h.spawn_background(async {
            let entered = RuntimeHandle::try_current();
            (
                entered.as_ref().and_then(|h| h.current_shard()),
                entered.is_some(),
                std::thread::current().name().map(str::to_string),
            )
        }))
        .unwrap();
    assert_eq!(shard, None);
    assert!(entered, "RuntimeHandle::current works in a background task");
    assert!(name.unwrap().contains("background"));
}

#[test]
fn background_threads_run_at_a_lower_priority() {
    let base = own_nice();
    let rt = Runtime::builder().shards(1).build().unwrap();
    let nice = rt.block_on(rt.handle().spawn_background(async { own_nice() }));
    assert_eq!(
        nice.unwrap(),
        (base + 5).min(19),
        "default: 5 above the builder's"
    );

    let rt = Runtime::builder()
        .shards(1)
        .background_nice(0)
        .build()
        .unwrap();
    let nice = rt.block_on(rt.handle().spawn_background(async { own_nice() }));
    assert_eq!(nice.unwrap(), base, "nice 0 leaves the priority alone");
}

/// The background nice value counts from the building thread's: a
/// service started at nice 3 gets background threads at 8 (setting 5 was
/// a raise, refused without privilege, which left them at the shards'
/// priority).
#[test]
fn the_background_nice_value_counts_from_the_builders() {
    let base = own_nice();
    let nice = std::thread::spawn(move || {
        // SAFETY: as in `own_nice`; this changes only this thread's value.
        assert_eq!(
            unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, base + 3) },
            0
        );
        let rt = Runtime::builder().shards(1).build().unwrap();
        rt.block_on(rt.handle().spawn_background(async { own_nice() }))
            .unwrap()
    })
    .join()
    .unwrap();
    assert_eq!(nice, (base + 8).min(19));
}

/// A blocking thread that a background task needs is started by a shard:
/// started by the background thread, it inherited that thread's lower
/// priority and served every shard's blocking jobs at it for its
/// keep-alive time (a thread cannot raise its own priority back).
#[test]
fn blocking_threads_a_background_task_starts_run_at_the_shards_priority() {
    let base = own_nice();
    let rt = Runtime::builder().shards(1).build().unwrap();
    let h = rt.handle();
    let nice = rt
        .block_on(h.spawn_background(async { spargio_rt::spawn_blocking(own_nice).await.unwrap() }))
        .unwrap();
    assert_eq!(nice, base);
    // And the thread serves shard jobs at that priority afterwards.
    assert_eq!(rt.block_on(h.spawn_blocking(own_nice)).unwrap(), base);
}

/// A background task woken during its own poll (a yield) is taken again
/// by the thread that ran it: no second thread is started for it.
#[test]
fn a_background_task_that_yields_keeps_to_one_thread() {
    let rt = Runtime::builder().shards(2).build().unwrap();
    let h = rt.handle();
    rt.block_on(h.spawn_background(async {
        for _ in 0..16 {
            spargio_rt::yield_now().await;
        }
    }))
    .unwrap();
    assert_eq!(h.stats().background_threads, 1);
}

#[test]
fn background_tasks_do_io_use_timers_and_spawn() {
    let dir = std::env::temp_dir().join(format!("spargio-bg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("f");
    let rt = Runtime::builder().shards(2).build().unwrap();
    let h = rt.handle();
    let p = path.clone();
    let (read, child) = rt
        .block_on(h.spawn_background(async move {
            spargio_rt::fs::write(&p, b"from the background".to_vec())
                .await
                .unwrap();
            spargio_rt::time::sleep(Duration::from_millis(2)).await;
            let read = spargio_rt::fs::read(&p).await.unwrap();
            let child = spargio_rt::spawn(async { 7 }).await.unwrap();
            (read, child)
        }))
        .unwrap();
    assert_eq!(read, b"from the background");
    assert_eq!(child, 7);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_background_pool_is_bounded() {
    let rt = Runtime::builder()
        .shards(2)
        .background_threads(1)
        .build()
        .unwrap();
    let h = rt.handle();
    let names = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let names = names.clone();
            h.spawn_background(async move {
                for _ in 0..3 {
                    names
                        .lock()
                        .unwrap()
                        .insert(std::thread::current().name().unwrap().to_string());
                    spargio_rt::yield_now().await;
                }
            })
        })
        .collect();
    for t in tasks {
        rt.block_on(t).unwrap();
    }
    assert_eq!(names.lock().unwrap().len(), 1, "one thread ran all eight");
    assert!(h.stats().background_threads <= 1);
    assert_eq!(h.stats().live_background_tasks, 0);
}

#[test]
fn the_pool_says_when_it_has_no_room() {
    let rt = Runtime::builder()
        .shards(1)
        .background_threads(1)
        .build()
        .unwrap();
    let h = rt.handle();
    assert!(h.background_has_room());
    assert!(h.background_idle());
    // A task that holds the one thread until told to go.
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let (running, is_running) = std::sync::mpsc::channel::<()>();
    let task = h.spawn_background(async move {
        running.send(()).unwrap();
        wait.recv().unwrap();
    });
    is_running.recv().unwrap();
    assert!(!h.background_has_room(), "the only thread is busy");
    assert!(!h.background_idle());
    go.send(()).unwrap();
    rt.block_on(task).unwrap();
    // The count drops right after the run returns, which may be a moment
    // after the join handle saw the output.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !h.background_has_room() {
        assert!(std::time::Instant::now() < deadline, "room comes back");
        std::thread::yield_now();
    }
    // A task that waits (not running, not queued) takes no room.
    let parked = h.spawn_background(pending::<()>());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !h.background_has_room() {
        assert!(
            std::time::Instant::now() < deadline,
            "the pending task parks"
        );
        std::thread::yield_now();
    }
    assert!(h.background_has_room());
    parked.abort();
}

#[test]
fn background_panics_and_aborts_are_join_errors() {
    let rt = Runtime::builder().shards(1).build().unwrap();
    let h = rt.handle();
    let err = rt
        .block_on(h.spawn_background(async { panic!("boom") }))
        .unwrap_err();
    assert!(err.is_panic());
    let task = h.spawn_background(pending::<()>());
    task.abort();
    assert!(rt.block_on(task).unwrap_err().is_cancelled());
    // The pool still works after both.
    assert_eq!(rt.block_on(h.spawn_background(async { 1 })).unwrap(), 1);
}

/// Sets its flag when dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn shutdown_drops_pending_background_tasks() {
    let rt = Runtime::builder().shards(2).build().unwrap();
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = DropFlag(dropped.clone());
    let started = Arc::new(AtomicBool::new(false));
    let s = started.clone();
    let task = rt.handle().spawn_background(async move {
        let _flag = flag;
        s.store(true, Ordering::SeqCst);
        pending::<()>().await;
    });
    common::wait_for(&started);
    rt.shutdown_timeout(Duration::from_secs(5));
    assert!(dropped.load(Ordering::SeqCst), "the future was dropped");
    assert!(task.is_finished());
}

#[test]
fn blocking_closures_see_the_runtime_too() {
    let rt = Runtime::builder().shards(1).build().unwrap();
    let h = rt.handle();
    let seen = rt
        .block_on(
            h.spawn_blocking(|| RuntimeHandle::try_current().is_some_and(|h| h.shard_count() == 1)),
        )
        .unwrap();
    assert!(seen);
}
