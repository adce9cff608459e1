//! Timers for threads that are not shards (a `block_on` caller, a tokio
//! thread using `boundary`, a blocking-pool closure): one lazily started
//! thread with its own heap, sleeping on a condvar until the nearest deadline.

use std::io;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Instant;

use super::entry::TimerEntry;
use super::heap::TimerHeap;

/// The heap of timers set off the shards, and the wake-up of its thread.
pub(crate) struct Fallback {
    heap: Mutex<TimerHeap>,
    changed: Condvar,
}

/// The fallback heap, once its thread runs.
static FALLBACK: OnceLock<&'static Fallback> = OnceLock::new();

/// Starts the fallback timer thread unless it runs already, and gives its
/// heap. `Runtime` building calls it, so the thread takes the building
/// thread's CPU priority rather than that of whichever thread first sets a
/// timer off the shards: a background-pool thread would hand it a lower
/// priority that it keeps for the life of the process.
pub(crate) fn ensure_started() -> io::Result<&'static Fallback> {
    if let Some(fb) = FALLBACK.get() {
        return Ok(fb);
    }
    static STARTING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = STARTING.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(fb) = FALLBACK.get() {
        return Ok(fb);
    }
    let fb: &'static Fallback = Box::leak(Box::new(Fallback {
        heap: Mutex::new(TimerHeap::default()),
        changed: Condvar::new(),
    }));
    std::thread::Builder::new()
        .name("spargio-timer".into())
        .spawn(move || run(fb))?;
    Ok(FALLBACK.get_or_init(|| fb))
}

fn fallback() -> &'static Fallback {
    ensure_started().expect("spargio: could not start the fallback timer thread")
}

fn run(fb: &'static Fallback) {
    let mut heap = fb.heap.lock().unwrap_or_else(|p| p.into_inner());
    let mut due = Vec::new();
    loop {
        heap.take_due(Instant::now(), &mut due);
        if !due.is_empty() {
            // Wakers run without the lock: one may set a timer itself.
            drop(heap);
            fire_each(&mut due);
            heap = fb.heap.lock().unwrap_or_else(|p| p.into_inner());
        }
        heap = match heap.next_deadline() {
            None => fb.changed.wait(heap).unwrap_or_else(|p| p.into_inner()),
            Some(d) => {
                let wait = d.saturating_duration_since(Instant::now());
                fb.changed
                    .wait_timeout(heap, wait)
                    .unwrap_or_else(|p| p.into_inner())
                    .0
            }
        };
    }
}

/// Fires the entries `due` holds, in order, and empties it. A waker that
/// panics is contained to its own entry: the thread goes on, since every
/// later timer off the shards in the process depends on it.
fn fire_each(due: &mut Vec<Arc<TimerEntry>>) {
    for entry in due.drain(..) {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| entry.fire()));
    }
}

/// Registers `entry` with the fallback thread.
pub(crate) fn register(entry: Arc<TimerEntry>) {
    let fb = fallback();
    let mut heap = fb.heap.lock().unwrap_or_else(|p| p.into_inner());
    let earlier = heap.next_deadline().is_none_or(|d| entry.deadline < d);
    heap.insert(entry);
    drop(heap);
    if earlier {
        fb.changed.notify_one();
    }
}
