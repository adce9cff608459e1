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
