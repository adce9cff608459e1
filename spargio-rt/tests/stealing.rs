//! Idle shards steal stealable work from busy ones, including tasks that
//! already ran; pinned tasks never move.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use spargio_rt::{Runtime, RuntimeHandle, ShardId};

mod common;
use common::wait_for;

fn current() -> usize {
    RuntimeHandle::current().current_shard().unwrap().0
}

/// Spins on shard 0 until `release` is set, or gives up after a long
/// safety limit (so a broken runtime fails the test instead of hanging it).
async fn hog(release: Arc<AtomicBool>, started: Arc<AtomicBool>) -> bool {
    started.store(true, Ordering::SeqCst);
    common::spin_until(&release, Duration::from_secs(20))
}

/// A 2-shard runtime with `policy`.
fn two_shards_with(policy: spargio_rt::StealPolicy) -> Runtime {
    Runtime::builder()
        .shards(2)
        .steal_policy(policy)
        .build()
        .unwrap()
}

#[test]
fn task_queued_behind_a_busy_shard_runs_on_the_other() {
    let rt = Runtime::builder().shards(2).build().unwrap();
    let h = rt.handle();
    let release = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicBool::new(false));
    let hogging = h.spawn_pinned(ShardId(0), hog(release.clone(), started.clone()));
    wait_for(&started);
    // Queued on shard 0, which is stuck: shard 1 must steal it, and it
    // releases the hog, so the hog finishing proves the steal.
    let r2 = release.clone();
    let stolen = h.spawn_stealable_on(ShardId(0), async move {
        r2.store(true, Ordering::SeqCst);
        current()
    });
    assert_eq!(rt.block_on(stolen).unwrap(), 1);
    assert!(
        rt.block_on(hogging).unwrap(),
        "the hog was released by the stolen task"
    );
    let stats = h.stats();
    assert!(stats.shards[1].stolen >= 1, "{stats:?}");
}

/// A stealable task started on shard 0 that waits for a message on the
/// returned sender, then sets the returned flag; it answers the shards of
/// its first poll and of the poll after the message. Returns once the first
/// poll happened.
fn waiting_task_on_shard_0(
    h: &RuntimeHandle,
) -> (
    spargio_rt::JoinHandle<(usize, usize)>,
    async_channel::Sender<()>,
    Arc<AtomicBool>,
) {
    let (tx, rx) = async_channel::bounded::<()>(1);
    let resumed = Arc::new(AtomicBool::new(false));
    let r2 = resumed.clone();
    let first_poll = Arc::new(AtomicBool::new(false));
    let fp = first_poll.clone();
    let task = h.spawn_stealable_on(ShardId(0), async move {
        let first = current();
        fp.store(true, Ordering::SeqCst);
        rx.recv().await.unwrap();
        let second = current();
        r2.store(true, Ordering::SeqCst);
        (first, second)
    });
    wait_for(&first_poll);
    (task, tx, resumed)
}

#[test]
fn task_that_already_ran_is_stolen_when_woken_behind_a_busy_shard() {
    let rt = Runtime::builder().shards(2).build().unwrap();
    let h = rt.handle();
    let (task, tx, release) = waiting_task_on_shard_0(&h);
    let started = Arc::new(AtomicBool::new(false));
    let hogging = h.spawn_pinned(ShardId(0), hog(release, started.clone()));
    wait_for(&started);
    // Wake the task from outside while its last shard (0) is stuck.
    tx.send_blocking(()).unwrap();
    let (first, second) = rt.block_on(task).unwrap();
    assert_eq!(first, 0, "first poll on its preferred shard");
    assert_eq!(second, 1, "resumed by the idle shard after being stolen");
    assert!(rt.block_on(hogging).unwrap());
}

#[test]
fn a_task_woken_into_the_lifo_slot_of_a_long_poll_is_stolen() {
    let rt = Runtime::builder().shards(2).build().unwrap();
    let h = rt.handle();
    let (task, tx, resumed) = waiting_task_on_shard_0(&h);
    let hogging = h.spawn_pinned(ShardId(0), async move {
        // Shard 0's polls are long ones (what a helper is worth waking for).
        for _ in 0..10 {
            let until = Instant::now() + Duration::from_millis(5);
            while Instant::now() < until {
                std::hint::spin_loop();
            }
            spargio_rt::yield_now().await;
        }
        // Woken by this poll, the task goes to shard 0's LIFO slot, to run
        // when the poll ends; the poll then waits for it to run.
        tx.try_send(()).unwrap();
        common::spin_until(&resumed, Duration::from_secs(10))
    });
    let (first, second) = rt.block_on(task).unwrap();
    assert!(
        rt.block_on(hogging).unwrap(),
        "the woken task waited for the poll that woke it to end"
    );
    assert_eq!(first, 0, "first poll on its preferred shard");
    assert_eq!(second, 1, "stolen from the LIFO slot by the idle shard");
}

#[test]
fn pinned_tasks_are_never_stolen() {
    let rt = Runtime::builder().shards(2).build().unwrap();
    let h = rt.handle();
    let release = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicBool::new(false));
    let hogging = h.spawn_pinned(ShardId(0), hog(release.clone(), started.clone()));
    wait_for(&started);
    let pinned = h.spawn_pinned(ShardId(0), async { current() });
    // Give the idle shard every chance to (wrongly) take it.
    std::thread::sleep(Duration::from_millis(20));
    assert!(
        !pinned.is_finished(),
        "pinned task must wait for its own shard"
    );
    release.store(true, Ordering::SeqCst);
    assert_eq!(rt.block_on(pinned).unwrap(), 0);
    assert!(rt.block_on(hogging).unwrap());
}

#[test]
fn stealing_can_be_turned_off() {
    let rt = Runtime::builder()
        .shards(2)
        .stealing(false)
        .build()
        .unwrap();
    let h = rt.handle();
    let release = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicBool::new(false));
    let hogging = h.spawn_pinned(ShardId(0), hog(release.clone(), started.clone()));
    wait_for(&started);
    let t = h.spawn_stealable_on(ShardId(0), async { current() });
    std::thread::sleep(Duration::from_millis(20));
    assert!(!t.is_finished());
    release.store(true, Ordering::SeqCst);
    assert_eq!(rt.block_on(t).unwrap(), 0);
    assert!(rt.block_on(hogging).unwrap());
    assert_eq!(h.stats().total_stolen(), 0);
}

#[test]
fn skewed_fanout_uses_both_shards() {
    // Spawn-time placement hands one task of each burst to shard 1; only
    // stealing moves more. Bursts go on until shard 1 has stolen (at once
    // on an idle machine; later if the machine keeps shard 1 off a CPU).
    let rt = Runtime::builder().shards(2).build().unwrap();
    let h = rt.handle();
    let stolen_by_1 = move || h.stats().shards[1].stolen;
    let h = rt.handle();
    let per_shard = rt
        .block_on(h.spawn_pinned(ShardId(0), async move {
            let h = RuntimeHandle::current();
            let mut per_shard = [0usize; 2];
            for req in 0..2000u64 {
                let branches: Vec<_> = (0..16u64)
                    .map(|b| {
                        h.spawn(async move {
                            let n = if b == req % 16 { 400_000 } else { 20_000 };
                            std::hint::black_box((0..n).fold(1u64, |a, x| a.rotate_left(5) ^ x));
                            current()
                        })
                    })
                    .collect();
                for b in branches {
                    per_shard[b.await.unwrap()] += 1;
                }
                if req >= 7 && stolen_by_1() > 0 {
                    break;
                }
            }
            per_shard
        }))
        .unwrap();
    assert!(per_shard[0] > 0 && per_shard[1] > 0, "{per_shard:?}");
    assert!(
        rt.handle().stats().shards[1].stolen > 0,
        "shard 1 never stole: {per_shard:?}"
    );
}

#[test]
fn stealable_spawn_from_a_busy_shard_goes_to_a_parked_one() {
    // Lone queued tasks are never stolen here (the victim would have to sit
    // in one poll for an hour), so only spawn-time placement can move the
    // task: spawned while its shard has other work queued and the other
    // shard is parked, it must start on the parked shard, while the
    // spawning poll is still running.
    let policy = spargio_rt::StealPolicy {
        min_victim_busy: Duration::from_secs(3600),
        ..spargio_rt::StealPolicy::default()
    };
    let rt = two_shards_with(policy);
    let h = rt.handle();
    let handed_over = rt
        .block_on(h.spawn_pinned(ShardId(0), async {
            let h = RuntimeHandle::current();
            // Shard 1 has nothing to do and parks; a sleep lets it get
            // there. Should it still be awake (a slow machine), the task
            // simply runs here and the next attempt tries again.
            for _ in 0..20 {
                spargio_rt::time::sleep(Duration::from_millis(5)).await;
                // Other work queued on this shard, behind this poll.
                let filler = h.spawn_pinned(ShardId(0), async {});
                let ran_on = Arc::new(std::sync::atomic::AtomicUsize::new(usize::MAX));
                let seen = ran_on.clone();
                let task = h.spawn(async move { seen.store(current(), Ordering::SeqCst) });
                // Stay inside this poll until the task ran somewhere else,
                // or give up for this attempt (it then runs here later).
                let give_up = Instant::now() + Duration::from_secs(1);
                while ran_on.load(Ordering::SeqCst) == usize::MAX && Instant::now() < give_up {
                    std::hint::spin_loop();
                }
                task.await.unwrap();
                filler.await.unwrap();
                if ran_on.load(Ordering::SeqCst) == 1 {
                    return true;
                }
            }
            false
        }))
        .unwrap();
    assert!(handed_over, "no spawn went to the parked shard");
}

#[test]
fn a_burst_spawned_in_one_poll_places_one_task_per_other_shard_by_load() {
    // With stealing off, only spawn-time placement moves tasks. A poll that
    // spawns a burst may hand one of them to each other shard by queue
    // length; the rest stay queued on the spawning shard (thieves would
    // take them a batch per steal), instead of every other spawn paying a
    // remote push.
    let policy = spargio_rt::StealPolicy {
        enabled: false,
        ..spargio_rt::StealPolicy::default()
    };
    let rt = two_shards_with(policy);
    let h = rt.handle();
    let shards_run: Vec<usize> = rt
        .block_on(h.spawn_pinned(ShardId(0), async {
            let h = RuntimeHandle::current();
            let tasks: Vec<_> = (0..64).map(|_| h.spawn(async { current() })).collect();
            let mut ran = Vec::new();
            for t in tasks {
                ran.push(t.await.unwrap());
            }
            ran
        }))
        .unwrap();
    let away = shards_run.iter().filter(|&&s| s == 1).count();
    assert_eq!(away, 1, "tasks placed on shard 1: {shards_run:?}");
}

/// Awaits `task` on `rt`, failing the test if it takes longer than a
/// generous bound instead of hanging it.
fn within<T: Send + 'static>(rt: &Runtime, task: spargio_rt::JoinHandle<T>) -> T {
    rt.block_on(spargio_rt::time::timeout(Duration::from_secs(10), task))
        .expect("the task never finished")
        .unwrap()
}

/// A 2-shard runtime with `policy` whose shard 0 is stuck in a [`hog`]
/// until the returned flag is set.
fn hogged_two_shards(
    policy: spargio_rt::StealPolicy,
) -> (Runtime, Arc<AtomicBool>, spargio_rt::JoinHandle<bool>) {
    let rt = two_shards_with(policy);
    let release = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicBool::new(false));
    let hogging = rt
        .handle()
        .spawn_pinned(ShardId(0), hog(release.clone(), started.clone()));
    wait_for(&started);
    (rt, release, hogging)
}

#[test]
fn a_zero_steal_batch_still_steals() {
    let policy = spargio_rt::StealPolicy {
        batch: 0,
        ..spargio_rt::StealPolicy::default()
    };
    let (rt, release, hogging) = hogged_two_shards(policy);
    let h = rt.handle();
    // Two queued behind the stuck shard: shard 1 takes them, and the
    // second releases the hog.
    let first = h.spawn_stealable_on(ShardId(0), async { current() });
    let r2 = release.clone();
    let second = h.spawn_stealable_on(ShardId(0), async move {
        r2.store(true, Ordering::SeqCst);
        current()
    });
    assert_eq!(within(&rt, second), 1);
    within(&rt, first);
    assert!(within(&rt, hogging), "released by a stolen task");
    assert!(common::drops_in_time(rt), "dropping the runtime hung");
}

#[test]
fn a_victim_busy_threshold_of_duration_max_never_robs_a_lone_task() {
    let policy = spargio_rt::StealPolicy {
        min_victim_busy: Duration::MAX,
        ..spargio_rt::StealPolicy::default()
    };
    let (rt, release, hogging) = hogged_two_shards(policy);
    let h = rt.handle();
    let parks = || h.stats().shards[1].parks;
    let parks_before = parks();
    let lone = h.spawn_stealable_on(ShardId(0), async { current() });
    // Shard 1, told to come and steal, looks at the lone task, declines,
    // and parks until it would qualify: its back-off once overflowed the
    // duration there and took the shard down.
    common::eventually_blocking("shard 1 parks after its look", || parks() > parks_before);
    release.store(true, Ordering::SeqCst);
    assert!(within(&rt, hogging));
    assert_eq!(within(&rt, lone), 0, "never robbed");
    assert!(common::drops_in_time(rt), "dropping the runtime hung");
}

/// Two stealable tasks that wake each other keep their shard's own queue
/// from ever running empty; a task spawned from outside the runtime (it
/// waits in an injector) must still run while they go on.
#[test]
fn injected_tasks_run_while_two_tasks_keep_waking_each_other() {
    outside_spawn_runs_during_a_ping_pong(0);
}

/// The same with tasks woken from another thread all the while, so the
/// shard's own injector is seldom empty: the outside spawn, which waits in
/// the global injector, still runs (it waited for the ping-pong's end when
/// the own injector was always looked at first).
#[test]
fn outside_spawns_run_while_other_threads_keep_waking_tasks() {
    outside_spawn_runs_during_a_ping_pong(256);
}

/// A task that asks another thread to wake it at every poll, until `stop`.
struct WokenFromOutside {
    waker_to: std::sync::mpsc::Sender<std::task::Waker>,
    stop: Arc<AtomicBool>,
}

impl std::future::Future for WokenFromOutside {
    type Output = ();

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.stop.load(Ordering::SeqCst) {
            return std::task::Poll::Ready(());
        }
        let _ = self.waker_to.send(cx.waker().clone());
        std::task::Poll::Pending
    }
}

/// On one shard, two tasks wake each other for ever (the deque never runs
/// empty) beside `woken_from_outside` tasks a thread keeps waking; a task
/// spawned from outside the runtime must run before the ping-pong ends by
/// itself.
fn outside_spawn_runs_during_a_ping_pong(woken_from_outside: usize) {
    use std::sync::atomic::AtomicU64;
    const ROUNDS: u64 = 200_000;
    // One task per take from an injector: the tasks woken from outside
    // move into the deque no faster than they run, so they keep the own
    // injector from running empty.
    let policy = spargio_rt::StealPolicy {
        batch: 1,
        ..Default::default()
    };
    let rt = Runtime::builder()
        .shards(1)
        .steal_policy(policy)
        .build()
        .unwrap();
    let h = rt.handle();
    let stop_feeders = Arc::new(AtomicBool::new(false));
    let (waker_to, wakers) = std::sync::mpsc::channel::<std::task::Waker>();
    let waking = std::thread::spawn(move || {
        for w in wakers {
            w.wake();
        }
    });
    let feeders: Vec<_> = (0..woken_from_outside)
        .map(|_| {
            let feeder = WokenFromOutside {
                waker_to: waker_to.clone(),
                stop: stop_feeders.clone(),
            };
            // On the shard (not the global injector): woken from the
            // thread, they go to its own injector.
            h.spawn_stealable_on(ShardId(0), feeder)
        })
        .collect();
    drop(waker_to);
    let rounds = Arc::new(AtomicU64::new(0));
    // The ping-pong stops by itself `ROUNDS` after the outside spawn.
    let limit = Arc::new(AtomicU64::new(u64::MAX));
    let stop = Arc::new(AtomicBool::new(false));
    let (ping_tx, ping_rx) = async_channel::bounded::<()>(1);
    let (pong_tx, pong_rx) = async_channel::bounded::<()>(1);
    let pinger = {
        let (rounds, stop, limit) = (rounds.clone(), stop.clone(), limit.clone());
        h.spawn(async move {
            while !stop.load(Ordering::SeqCst)
                && rounds.load(Ordering::SeqCst) < limit.load(Ordering::SeqCst)
            {
                ping_tx.send(()).await.unwrap();
                pong_rx.recv().await.unwrap();
                rounds.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let ponger = h.spawn(async move {
        while ping_rx.recv().await.is_ok() {
            if pong_tx.send(()).await.is_err() {
                break;
            }
        }
    });
    // The ping-pong is under way before the outside spawn.
    common::until("100 ping-pong rounds", || {
        rounds.load(Ordering::SeqCst) > 100 || pinger.is_finished()
    });
    let limit_at = rounds.load(Ordering::SeqCst) + ROUNDS;
    limit.store(limit_at, Ordering::SeqCst);
    let seen_at = {
        let (rounds, stop) = (rounds.clone(), stop.clone());
        rt.block_on(h.spawn(async move {
            let seen = rounds.load(Ordering::SeqCst);
            stop.store(true, Ordering::SeqCst);
            seen
        }))
        .unwrap()
    };
    rt.block_on(pinger).unwrap();
    rt.block_on(ponger).unwrap();
    stop_feeders.store(true, Ordering::SeqCst);
    for f in feeders {
        rt.block_on(f).unwrap();
    }
    drop(rt);
    waking.join().unwrap();
    assert!(
        seen_at < limit_at,
        "the injected task ran only once the ping-pong had ended"
    );
}

/// A stealable task handed at spawn time to a parked shard runs there at
/// once, while the spawning poll goes on computing: the doorbell does not
/// wait for that poll to return.
#[test]
fn a_spawn_handed_to_a_parked_shard_runs_while_the_spawning_poll_computes() {
    // No stealing: only the hand-off can move the task.
    let policy = spargio_rt::StealPolicy {
        min_victim_busy: Duration::from_secs(3600),
        ..spargio_rt::StealPolicy::default()
    };
    let rt = two_shards_with(policy);
    let h = rt.handle();
    let ran_during_the_poll = rt
        .block_on(h.spawn_pinned(ShardId(0), async {
            let h = RuntimeHandle::current();
            // Shard 1 has nothing to do: it parks (seen in its stats).
            for _ in 0..5000 {
                if h.stats().shards[1].parks > 0 {
                    break;
                }
                spargio_rt::time::sleep(Duration::from_millis(1)).await;
            }
            // Other work queued here, so the spawn is handed over.
            let filler = h.spawn_pinned(ShardId(0), async {});
            let ran = Arc::new(AtomicBool::new(false));
            let seen = ran.clone();
            let task = h.spawn(async move { seen.store(true, Ordering::SeqCst) });
            let during = common::spin_until(&ran, Duration::from_secs(5));
            task.await.unwrap();
            filler.await.unwrap();
            during
        }))
        .unwrap();
    assert!(
        ran_during_the_poll,
        "the handed-over task waited for the spawning poll to return"
    );
}
