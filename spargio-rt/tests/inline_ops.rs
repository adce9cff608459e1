//! Ops submitted inline: a task whose op moves data the same way as its
//! previous one (a burst of writes, a run of reads) submits it at once from
//! inside its poll and goes on without a loop turn when the kernel
//! completes it right away. The data stays in order, reads that have to
//! wait still complete, and such a task still lets others run.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use spargio_rt::io::{AsyncReadExt, AsyncWriteExt};
use spargio_rt::net::UnixStream;
use spargio_rt::{Runtime, RuntimeHandle, ShardId};

/// Long enough that only a hang reaches it.
const HANG: Duration = Duration::from_secs(20);

/// (inline ops, of which completed inline) over every shard.
fn inline_counts(handle: &RuntimeHandle) -> (u64, u64) {
    let s = handle.stats();
    let ops = s.shards.iter().map(|s| s.ops_inline).sum();
    let done = s.shards.iter().map(|s| s.ops_inline_done).sum();
    (ops, done)
}

fn one_shard() -> Runtime {
    Runtime::builder().shards(1).build().expect("build runtime")
}

#[test]
fn a_burst_of_writes_completes_inline_and_in_order() {
    let rt = one_shard();
    let handle = rt.handle();
    let (mut a, b) = UnixStream::pair().unwrap();
    let writes = 32usize;
    let task = handle.spawn_pinned(ShardId(0), async move {
        for i in 0..writes {
            let piece = format!("{i:03}|").into_bytes();
            let (res, _) = a.write_all(piece).await;
            res.unwrap();
        }
        a
    });
    let a = rt.block_on(task).expect("writer task");
    // The socket had room for all of it: every write after the first
    // followed one in the same direction and completed in its enter.
    let (ops, done) = inline_counts(&handle);
    assert_eq!(ops, writes as u64 - 1);
    assert_eq!(done, ops);
    // So the task went on within its poll: one poll that submitted the
    // first write, one that took its completion and made the other 31.
    let polls = handle.stats().shards[0].tasks_polled;
    assert!(polls <= 3, "the writer was polled {polls} times");
    drop(a);
    let reader = handle.spawn_pinned(ShardId(0), async move {
        let mut b = b;
        let mut all = Vec::new();
        let (res, got) = b.read_to_end(Vec::new()).await;
        res.unwrap();
        all.extend_from_slice(&got);
        all
    });
    let got = rt.block_on(reader).expect("reader task");
    let want: Vec<u8> = (0..writes)
        .flat_map(|i| format!("{i:03}|").into_bytes())
        .collect();
    assert_eq!(got, want);
}

#[test]
fn reads_in_a_row_that_must_wait_still_complete() {
    let rt = one_shard();
    let handle = rt.handle();
    let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    let mut a = UnixStream::from_std(a);
    let (asked_tx, asked_rx) = std::sync::mpsc::channel::<usize>();
    let rounds = 8usize;
    let task = handle.spawn_pinned(ShardId(0), async move {
        let mut got = Vec::new();
        for i in 0..rounds {
            // Ask for this round's byte only once the read's first poll
            // has returned pending: an inline read has been through its
            // enter by then and found nothing, so it has to wait.
            let asked = asked_tx.clone();
            let read = a.read_exact(Vec::with_capacity(1));
            let (res, buf) = after_first_pending(read, move || asked.send(i).unwrap()).await;
            res.unwrap();
            got.extend_from_slice(&buf);
        }
        got
    });
    let writer = std::thread::spawn(move || {
        while let Ok(i) = asked_rx.recv_timeout(HANG) {
            std::io::Write::write_all(&mut b, &[b'a' + i as u8]).unwrap();
            if i + 1 == rounds {
                break;
            }
        }
    });
    let got = rt.block_on(task).expect("reader task");
    writer.join().unwrap();
    let want: Vec<u8> = (0..rounds).map(|i| b'a' + i as u8).collect();
    assert_eq!(got, want);
    // Reads were submitted inline, and found no byte there: none
    // completed in its enter.
    let (ops, done) = inline_counts(&handle);
    assert!(ops > 0, "no read went inline");
    assert_eq!(done, 0, "an inline read completed before its byte was sent");
}

/// Polls `fut` to its end, calling `on_pending` once, right after the
/// first poll that returned pending (so whatever that poll submitted has
/// been submitted).
async fn after_first_pending<F: Future>(fut: F, on_pending: impl FnOnce()) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut on_pending = Some(on_pending);
    std::future::poll_fn(|cx| {
        let poll = fut.as_mut().poll(cx);
        if poll.is_pending() {
            if let Some(f) = on_pending.take() {
                f();
            }
        }
        poll
    })
    .await
}

#[test]
fn a_task_whose_writes_all_complete_inline_still_lets_others_run() {
    let rt = one_shard();
    let handle = rt.handle();
    let stop = Arc::new(AtomicBool::new(false));
    let stop_writer = stop.clone();
    let (streaming_tx, streaming_rx) = std::sync::mpsc::channel();
    let writer = handle.spawn_pinned(ShardId(0), async move {
        // Writes to /dev/null always complete in their enter, and the task
        // awaits nothing else: only the per-poll cap on inline ops sends it
        // back to the queue.
        let null = spargio_rt::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .await
            .expect("open /dev/null");
        let mut writes = 0u64;
        while !stop_writer.load(Ordering::Relaxed) {
            let (res, _) = null.write_all_at(vec![7u8; 64], 0).await;
            res.unwrap();
            writes += 1;
            if writes == 2 {
                // In its streak now: the other task is spawned only now.
                streaming_tx.send(()).unwrap();
            }
        }
        writes
    });
    streaming_rx.recv_timeout(HANG).expect("the writer started");
    let stop_other = stop.clone();
    let other = handle.spawn_pinned(ShardId(0), async move {
        stop_other.store(true, Ordering::Relaxed);
    });
    let ran = rt.block_on(spargio_rt::time::timeout(HANG, other));
    // Stop the writer either way, so that a failure does not hang.
    stop.store(true, Ordering::Relaxed);
    ran.expect("the other task ran while the writer kept writing")
        .unwrap();
    let writes = rt.block_on(writer).expect("writer task");
    assert!(writes > 2);
    let (ops, _) = inline_counts(&handle);
    assert!(ops > 0);
}

#[test]
fn writes_in_flight_together_keep_the_batch() {
    let rt = one_shard();
    let handle = rt.handle();
    let pairs: Vec<_> = (0..8).map(|_| UnixStream::pair().unwrap()).collect();
    let task = handle.spawn_pinned(ShardId(0), async move {
        let (mut ours, theirs): (Vec<_>, Vec<_>) = pairs.into_iter().unzip();
        // One write to each of 8 sockets, all submitted in one poll before
        // any completes: a fan-out, not a run, so one enter takes them all.
        // Twice: the second batch follows the first one's 8 completions,
        // which do not make its first write the next of a run either.
        for _ in 0..2 {
            let writes = ours.iter_mut().map(|s| s.write_all(b"x".to_vec()));
            for (res, _) in futures_util::future::join_all(writes).await {
                res.unwrap();
            }
        }
        theirs
    });
    let theirs = rt.block_on(task).expect("fan-out task");
    assert_eq!(theirs.len(), 8);
    assert_eq!(inline_counts(&handle), (0, 0));
}

/// A waker that panics when woken.
struct PanickingWaker;

impl std::task::Wake for PanickingWaker {
    fn wake(self: Arc<Self>) {
        panic!("a waker panicked");
    }
}

#[test]
fn a_panic_in_an_inline_reap_is_the_loops_not_the_polled_tasks() {
    let rt = one_shard();
    let handle = rt.handle();
    let path = std::env::temp_dir().join(format!("spargio-inline-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = spargio_rt::net::UnixListener::bind(&path).unwrap();
    // A connection waits in the backlog: an accept completes as soon as
    // the kernel takes its SQE.
    let _client = std::os::unix::net::UnixStream::connect(&path).unwrap();
    let (mut a, _b) = UnixStream::pair().unwrap();
    let task = handle.spawn_pinned(ShardId(0), async move {
        let (res, _) = a.write_all(b"1".to_vec()).await;
        res.unwrap();
        // Queue an accept whose completion wakes a waker that panics.
        let mut accept = Box::pin(listener.accept());
        {
            let waker = std::task::Waker::from(Arc::new(PanickingWaker));
            let mut cx = std::task::Context::from_waker(&waker);
            assert!(accept.as_mut().poll(&mut cx).is_pending());
        }
        // The second write of a run enters inline; that enter takes the
        // accept too, and the reap after it wakes the panicking waker.
        let (res, _) = a.write_all(b"2".to_vec()).await;
        res.unwrap();
        drop(accept);
        "finished"
    });
    let out = rt.block_on(task);
    let _ = std::fs::remove_file(&path);
    assert_eq!(out.expect("the polled task finished"), "finished");
    // The task's result can reach block_on before the shard has resumed
    // the held panic and counted it; dropping the runtime joins the shard.
    drop(rt);
    let stats = handle.stats();
    assert_eq!(stats.shards[0].loop_panics, 1);
    assert_eq!(stats.shards[0].panics, 0);
}
