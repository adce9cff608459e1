//! The blocking pool: off-shard, bounded, reused.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use spargio_rt::{Runtime, RuntimeHandle};

#[test]
fn blocking_closures_run_off_the_shards() {
    let rt = Runtime::builder().shards(2).build().unwrap();
    let h = rt.handle();
    let on_shard = rt
        .block_on(h.spawn_blocking(|| RuntimeHandle::try_current().and_then(|h| h.current_shard())))
        .unwrap();
    assert_eq!(on_shard, None);
    let name = rt
        .block_on(h.spawn_blocking(|| std::thread::current().name().map(str::to_string)))
        .unwrap()
        .unwrap();
    assert!(name.contains("blocking"), "{name}");
}

#[test]
fn the_pool_is_bounded_and_reuses_threads() {
    let rt = Runtime::builder()
        .shards(1)
        .max_blocking_threads(2)
        .build()
        .unwrap();
    let h = rt.handle();
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let names = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    let jobs: Vec<_> = (0..12)
        .map(|_| {
            let (running, peak, names) = (running.clone(), peak.clone(), names.clone());
            h.spawn_blocking(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                names
                    .lock()
                    .unwrap()
                    .insert(std::thread::current().name().unwrap().to_string());
                std::thread::sleep(Duration::from_millis(2));
                running.fetch_sub(1, Ordering::SeqCst);
            })
        })
        .collect();
    for j in jobs {
        rt.block_on(j).unwrap();
    }
    assert!(peak.load(Ordering::SeqCst) <= 2);
    assert!(names.lock().unwrap().len() <= 2, "threads were reused");
    assert!(h.stats().blocking_threads <= 2);
}

#[test]
fn blocking_panics_are_join_errors() {
    let rt = Runtime::builder().shards(1).build().unwrap();
    let e = rt
        .block_on(rt.handle().spawn_blocking(|| panic!("blocking boom")))
        .unwrap_err();
    assert!(e.is_panic());
    assert_eq!(rt.block_on(rt.handle().spawn_blocking(|| 4)).unwrap(), 4);
}

#[test]
fn two_jobs_pushed_at_once_do_not_wait_for_one_idle_thread() {
    let rt = Runtime::builder().shards(1).build().unwrap();
    let h = rt.handle();
    // One pool thread, then idle (a moment to get back to waiting).
    rt.block_on(h.spawn_blocking(|| ())).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    // A waits for what B sends: with B queued behind A on the one idle
    // thread (both pushes counted that thread), A would never get it.
    let (tx, rx) = std::sync::mpsc::channel::<u32>();
    let a = h.spawn_blocking(move || rx.recv_timeout(Duration::from_secs(10)).ok());
    let b = h.spawn_blocking(move || tx.send(7).is_ok());
    assert_eq!(rt.block_on(a).unwrap(), Some(7), "A got B's value");
    assert!(rt.block_on(b).unwrap());
}

#[test]
fn a_runtime_dropped_inside_a_blocking_closure_does_not_wait_for_that_closure() {
    let rt = Runtime::builder().shards(1).build().unwrap();
    let h = rt.handle();
    let (tx, rx) = std::sync::mpsc::channel();
    drop(h.spawn_blocking(move || {
        drop(rt);
        let _ = tx.send(());
    }));
    assert!(
        rx.recv_timeout(Duration::from_secs(20)).is_ok(),
        "dropping the runtime waited for the thread dropping it"
    );
}

#[test]
fn a_runtime_dropped_inside_its_own_task_cancels_queued_blocking_jobs() {
    let rt = Runtime::builder()
        .shards(1)
        .max_blocking_threads(1)
        .build()
        .unwrap();
    let h = rt.handle();
    // Keep the pool's only thread busy so the next job waits in the queue.
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let busy = h.spawn_blocking(move || {
        started_tx.send(()).unwrap();
        let _ = release_rx.recv_timeout(Duration::from_secs(30));
    });
    started_rx.recv_timeout(Duration::from_secs(20)).unwrap();
    let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let r2 = ran.clone();
    let queued = h.spawn_blocking(move || r2.store(true, Ordering::SeqCst));
    // Drop the runtime from inside one of its own tasks.
    let (dropped_tx, dropped_rx) = std::sync::mpsc::channel();
    let slot = Arc::new(std::sync::Mutex::new(Some(rt)));
    drop(h.spawn(async move {
        let taken = slot.lock().unwrap().take();
        drop(taken);
        dropped_tx.send(()).unwrap();
    }));
    dropped_rx.recv_timeout(Duration::from_secs(20)).unwrap();
    // Free the pool thread: a job still queued would run now.
    release_tx.send(()).unwrap();
    spargio_rt::block_on(busy).unwrap();
    let r = spargio_rt::block_on(queued);
    assert!(
        r.is_err_and(|e| e.is_cancelled()),
        "the queued job ran after the runtime was dropped"
    );
    assert!(!ran.load(Ordering::SeqCst));
}

#[test]
fn blocking_jobs_queued_when_shutdown_begins_never_start() {
    // One pool thread, busy; a second job waits behind it. The runtime is
    // dropped while a shard is still in a long poll (so joining the shards
    // takes a while), and the busy job ends meanwhile: the queued one
    // must not start during the shutdown.
    use std::sync::atomic::AtomicBool;
    use std::sync::mpsc;
    let rt = Runtime::builder()
        .shards(1)
        .max_blocking_threads(1)
        .build()
        .unwrap();
    let h = rt.handle();
    let (started_tx, started_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let busy = h.spawn_blocking(move || {
        started_tx.send(()).unwrap();
        let _ = release_rx.recv();
    });
    started_rx.recv().unwrap();
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let queued = h.spawn_blocking(move || r.store(true, Ordering::SeqCst));
    // The one shard stays inside this poll until told.
    let (polling_tx, polling_rx) = mpsc::channel();
    let (hold_tx, hold_rx) = mpsc::channel::<()>();
    drop(h.spawn(async move {
        polling_tx.send(()).unwrap();
        let _ = hold_rx.recv();
    }));
    polling_rx.recv().unwrap();
    let probe = rt.handle();
    let dropper = std::thread::spawn(move || drop(rt));
    // Once the shutdown has begun, a task spawned is cancelled at once.
    // Before, it waits in the queue of the held shard, so finished means
    // cancelled.
    loop {
        let task = probe.spawn(async {});
        if task.is_finished() {
            let outcome = spargio_rt::block_on(task);
            assert!(outcome.is_err_and(|e| e.is_cancelled()));
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    release_tx.send(()).unwrap();
    spargio_rt::block_on(busy).unwrap();
    hold_tx.send(()).unwrap();
    dropper.join().unwrap();
    let outcome = spargio_rt::block_on(queued);
    assert!(
        outcome.as_ref().is_err_and(|e| e.is_cancelled()),
        "{outcome:?}"
    );
    assert!(
        !ran.load(Ordering::SeqCst),
        "a queued job started during shutdown"
    );
}

#[test]
fn running_blocking_jobs_show_in_the_stats() {
    let rt = Runtime::builder().shards(1).build().unwrap();
    let h = rt.handle();
    let barrier = Arc::new(std::sync::Barrier::new(2));
    let inside = barrier.clone();
    let job = h.spawn_blocking(move || {
        inside.wait();
        inside.wait();
    });
    barrier.wait();
    let stats = h.stats();
    assert_eq!(stats.live_blocking_tasks, 1, "{stats:?}");
    barrier.wait();
    rt.block_on(job).unwrap();
    assert_eq!(h.stats().live_blocking_tasks, 0);
}
