//! Placement routes tasks where it says.

mod common;
use common::allowed_cpus;

use spargio_rt::{Runtime, RuntimeHandle, ShardId, TaskPlacement};

fn shard_of_current() -> usize {
    RuntimeHandle::current()
        .current_shard()
        .expect("tasks run on shards")
        .0
}

fn rt(shards: usize) -> Runtime {
    Runtime::builder().shards(shards).build().expect("runtime")
}

#[test]
fn pinned_tasks_run_on_their_shard_every_poll() {
    let rt = rt(3);
    let h = rt.handle();
    for s in 0..3 {
        let seen = rt
            .block_on(h.spawn_pinned(ShardId(s), async {
                let mut seen = vec![shard_of_current()];
                for _ in 0..20 {
                    spargio_rt::time::sleep(std::time::Duration::from_micros(10)).await;
                    seen.push(shard_of_current());
                }
                seen
            }))
            .unwrap();
        assert!(seen.iter().all(|&x| x == s), "shard {s}: {seen:?}");
    }
}

#[test]
fn round_robin_cycles_through_shards() {
    let rt = rt(3);
    let h = rt.handle();
    let shards: Vec<usize> = (0..9)
        .map(|_| {
            // A spawn placed by load in between does not move the turn.
            rt.block_on(h.spawn(async {})).unwrap();
            rt.block_on(
                h.spawn_with_placement(TaskPlacement::RoundRobin, async { shard_of_current() }),
            )
            .unwrap()
        })
        .collect();
    // Consecutive round-robin spawns visit every shard in turn.
    for w in shards.windows(2) {
        assert_eq!((w[0] + 1) % 3, w[1], "{shards:?}");
    }
}

#[test]
fn sticky_keys_map_to_fixed_shards() {
    let rt = rt(4);
    let h = rt.handle();
    for key in [0u64, 1, 5, 7, 1_000_003] {
        for _ in 0..3 {
            let s =
                rt.block_on(h.spawn_with_placement(TaskPlacement::Sticky(key), async {
                    shard_of_current()
                }))
                .unwrap();
            assert_eq!(s as u64, key % 4);
        }
    }
}

#[test]
fn stealable_preferred_starts_on_the_named_shard() {
    // With stealing off, so that a shard preempted mid-poll by the other
    // tests running beside this one cannot have the task (rightly) stolen.
    let rt = Runtime::builder()
        .shards(2)
        .stealing(false)
        .build()
        .unwrap();
    let h = rt.handle();
    for s in 0..2 {
        let got = rt
            .block_on(
                h.spawn_with_placement(TaskPlacement::StealablePreferred(ShardId(s)), async {
                    shard_of_current()
                }),
            )
            .unwrap();
        assert_eq!(got, s);
        let got = rt
            .block_on(h.spawn_stealable_on(ShardId(s), async { shard_of_current() }))
            .unwrap();
        assert_eq!(got, s);
    }
}

#[test]
fn stealable_spawns_spread_over_idle_shards() {
    let rt = rt(2);
    let h = rt.handle();
    // From inside a task, with the other shard idle, new stealable tasks are
    // placed on the least loaded shard: both shards get some.
    let shards = rt
        .block_on(h.spawn_pinned(ShardId(0), async {
            let h = RuntimeHandle::current();
            let tasks: Vec<_> = (0..32)
                .map(|_| {
                    h.spawn(async {
                        std::hint::black_box(
                            (0..200_000u64).fold(0u64, |a, b| a ^ b.wrapping_mul(31)),
                        );
                        shard_of_current()
                    })
                })
                .collect();
            let mut seen = [0usize; 2];
            for t in tasks {
                seen[t.await.unwrap()] += 1;
            }
            seen
        }))
        .unwrap();
    assert!(shards[0] > 0 && shards[1] > 0, "{shards:?}");
}

#[test]
#[should_panic(expected = "shard 5 does not exist")]
fn pinning_to_a_missing_shard_panics_clearly() {
    let rt = rt(2);
    drop(rt.handle().spawn_pinned(ShardId(5), async {}));
}

#[test]
fn spawn_local_on_builds_a_non_send_future_on_its_shard() {
    let rt = rt(2);
    let h = rt.handle();
    let (shard, value) = rt
        .block_on(h.spawn_local_on(ShardId(1), || {
            let state = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
            async move {
                for i in 0..5 {
                    state.borrow_mut().push(i);
                    spargio_rt::time::sleep(std::time::Duration::from_micros(5)).await;
                }
                let sum: i32 = state.borrow().iter().sum();
                (shard_of_current(), sum)
            }
        }))
        .unwrap();
    assert_eq!((shard, value), (1, 10));
}

#[test]
fn thread_affinity_binds_shards_to_the_listed_cpus() {
    let rt = Runtime::builder()
        .shards(2)
        .thread_affinity(vec![0])
        .build()
        .unwrap();
    let h = rt.handle();
    for s in 0..2 {
        let cpus = rt
            .block_on(h.spawn_pinned(ShardId(s), async { allowed_cpus() }))
            .unwrap();
        assert_eq!(cpus, vec![0], "shard {s}");
    }
    // `false` leaves the threads wherever the process may run.
    let free = Runtime::builder()
        .shards(1)
        .thread_affinity(false)
        .build()
        .unwrap();
    let cpus = free
        .block_on(
            free.handle()
                .spawn_pinned(ShardId(0), async { allowed_cpus() }),
        )
        .unwrap();
    assert_eq!(cpus, allowed_cpus());
}

#[test]
fn binding_to_a_cpu_that_does_not_exist_fails_the_build() {
    // The second shard's CPU is past any real machine's: `build` must say
    // so (the first shard's thread, already spawned, is stopped and joined).
    let err = Runtime::builder()
        .shards(2)
        .thread_affinity(vec![0, 1000])
        .build()
        .unwrap_err();
    let os = std::error::Error::source(&err)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .and_then(std::io::Error::raw_os_error);
    assert_eq!(os, Some(libc::EINVAL), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("shard 1") && message.contains("CPU 1000"),
        "{message}"
    );
    // Nothing is left behind that stops a new runtime from starting.
    let rt = Runtime::builder().shards(2).build().unwrap();
    let h = rt.handle();
    assert_eq!(
        rt.block_on(h.spawn_pinned(ShardId(1), async { 7 }))
            .unwrap(),
        7
    );
}

#[test]
fn an_empty_cpu_list_is_refused() {
    let err = Runtime::builder()
        .shards(1)
        .thread_affinity(Vec::<usize>::new())
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
}

#[test]
fn idle_shards_counts_the_shards_out_of_work() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    let rt = rt(2);
    let h = rt.handle();
    let wait_for = |what: &str, cond: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    wait_for("both shards go idle", &|| h.idle_shards() == 2);
    // Shard 1 busy in one long poll until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let busy = h.spawn_pinned(ShardId(1), async move {
        while !s.load(Ordering::SeqCst) {
            std::hint::spin_loop();
        }
    });
    wait_for("the busy shard is not idle", &|| h.idle_shards() == 1);
    stop.store(true, Ordering::SeqCst);
    rt.block_on(busy).unwrap();
    wait_for("it goes idle again", &|| h.idle_shards() == 2);
}

/// Holds shard 0 inside one poll (of the returned task) until the
/// returned sender sends; returns once it is held.
fn hold_shard_0(h: &RuntimeHandle) -> (spargio_rt::JoinHandle<()>, std::sync::mpsc::Sender<()>) {
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let blocker = h.spawn_pinned(ShardId(0), async move {
        started_tx.send(()).unwrap();
        release_rx.recv().unwrap();
    });
    started_rx.recv().unwrap();
    (blocker, release_tx)
}

#[test]
fn pinned_tasks_queued_behind_a_busy_shard_are_counted() {
    let rt = rt(2);
    let h = rt.handle();
    let (blocker, release_tx) = hold_shard_0(&h);
    let queued: Vec<_> = (0..10)
        .map(|i| h.spawn_pinned(ShardId(0), async move { i }))
        .collect();
    let stats = h.stats();
    assert_eq!(stats.shards[0].pinned_queue_depth, 10);
    assert_eq!(stats.shards[1].pinned_queue_depth, 0);
    release_tx.send(()).unwrap();
    rt.block_on(blocker).unwrap();
    for (i, task) in queued.into_iter().enumerate() {
        assert_eq!(rt.block_on(task).unwrap(), i);
    }
    // Dropping the runtime joins the shards; nothing is queued any more.
    drop(rt);
    assert_eq!(h.stats().shards[0].pinned_queue_depth, 0);
}

#[test]
fn stealable_tasks_spawned_from_outside_are_counted_while_they_wait() {
    let rt = rt(1);
    let h = rt.handle();
    let (blocker, release_tx) = hold_shard_0(&h);
    // From this thread (no shard's): into the runtime-wide queue.
    let queued: Vec<_> = (0..10).map(|i| h.spawn(async move { i })).collect();
    let stats = h.stats();
    assert_eq!(stats.global_queue_depth, 10, "{stats:?}");
    release_tx.send(()).unwrap();
    rt.block_on(blocker).unwrap();
    for (i, task) in queued.into_iter().enumerate() {
        assert_eq!(rt.block_on(task).unwrap(), i);
    }
    assert_eq!(h.stats().global_queue_depth, 0);
}

#[test]
fn per_shard_affinity_stays_within_the_cpus_the_process_may_use() {
    // As in a container pinned to some CPUs: the builder's thread may run
    // on the last CPU only. Shards bound one per CPU must stay on it (CPU
    // 0 onwards would leave the mask, or fail to bind).
    let all = allowed_cpus();
    let last = *all.last().unwrap();
    let cpus = std::thread::spawn(move || {
        // SAFETY: `set` is a zeroed cpu_set_t on the stack; CPU_SET writes
        // inside it (`last` came from CPU_ISSET below CPU_SETSIZE); the
        // kernel only reads it.
        let rc = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(last, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
        };
        assert_eq!(rc, 0, "sched_setaffinity");
        let rt = Runtime::builder()
            .shards(2)
            .thread_affinity(true)
            .build()
            .unwrap();
        let h = rt.handle();
        (0..2)
            .map(|s| {
                rt.block_on(h.spawn_pinned(ShardId(s), async { allowed_cpus() }))
                    .unwrap()
            })
            .collect::<Vec<_>>()
    })
    .join()
    .unwrap();
    assert_eq!(cpus, vec![vec![last], vec![last]]);
}
