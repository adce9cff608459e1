//! A shard's table of in-flight ops: a slab indexed by the slot in each
//! op's `user_data`, with a generation per slot.

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::Waker;

use super::cell::Completion;
use super::user_data;
use super::Cqe;

struct Slot {
    gen: u32,
    op: Option<Arc<dyn Completion>>,
}

/// In-flight ops of one shard. Only the shard's thread touches it.
pub(crate) struct OpTable {
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: usize,
    limit: usize,
    /// Ops waiting for a free slot (backpressure when the table is full).
    waiting: VecDeque<Waker>,
    /// CQEs whose tag matched no live op (counted, never acted on).
    pub(crate) stale: u64,
}

impl OpTable {
    pub(crate) fn new(limit: usize) -> Self {
        OpTable {
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            limit: limit.max(1),
            waiting: VecDeque::new(),
            stale: 0,
        }
    }

    /// Ops in flight.
    pub(crate) fn live(&self) -> usize {
        self.live
    }

    /// Registers `op`; returns its `user_data`, or `None` when the table is
    /// full (then `waker` is woken when a slot frees up).
    pub(crate) fn insert(&mut self, op: Arc<dyn Completion>, waker: &Waker) -> Option<u64> {
        if self.live >= self.limit {
            self.waiting.push_back(waker.clone());
            return None;
        }
        Some(self.insert_unbounded(op))
    }

    /// Registers `op` even past the limit (remote submissions that already
    /// waited their turn elsewhere).
    pub(crate) fn insert_unbounded(&mut self, op: Arc<dyn Completion>) -> u64 {
        self.live += 1;
        let idx = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot { gen: 0, op: None });
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[idx as usize];
        slot.gen = user_data::next_gen(slot.gen);
        slot.op = Some(op);
        user_data::encode(slot.gen, idx)
    }

    /// Looks up the op a CQE belongs to. Returns the op and whether this
    /// CQE ends it (then the slot is freed: the caller holds the last
    /// driver-side reference). `None` for a stale tag.
    pub(crate) fn lookup(&mut self, ud: u64, cqe: Cqe) -> Option<(Arc<dyn Completion>, bool)> {
        let (gen, idx) = user_data::decode(ud)?;
        let found = self
            .slots
            .get_mut(idx as usize)
            .filter(|s| s.gen == gen && s.op.is_some());
        let Some(slot) = found else {
            self.stale += 1;
            return None;
        };
        let last = !cqe.more();
        let op = if last {
            let op = slot.op.take().expect("checked");
            self.free.push(idx);
            self.live -= 1;
            if let Some(w) = self.waiting.pop_front() {
                w.wake();
            }
            op
        } else {
            slot.op.clone().expect("checked")
        };
        Some((op, last))
    }

    /// Every live op's `user_data` (shutdown cancels them all).
    pub(crate) fn live_tags(&self) -> Vec<u64> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.op.is_some())
            .map(|(i, s)| user_data::encode(s.gen, i as u32))
            .collect()
    }

    /// Forgets every live op without freeing it (their CQEs never came, so
    /// the kernel may still hold their buffers: leak rather than free).
    pub(crate) fn leak_all(&mut self) {
        for s in self.slots.iter_mut() {
            if let Some(op) = s.op.take() {
                std::mem::forget(op);
            }
        }
        self.live = 0;
    }

    /// Wakes everyone waiting for a slot (shutdown).
    pub(crate) fn wake_waiting(&mut self) {
        for w in self.waiting.drain(..) {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Count(AtomicUsize, super::super::cell::OpTag);
    impl Completion for Count {
        fn complete(&self, _: Cqe) -> bool {
            self.0.fetch_add(1, Ordering::Relaxed);
            true
        }
        fn op_tag(&self) -> &super::super::cell::OpTag {
            &self.1
        }
    }

    fn noop_waker() -> Waker {
        futures_util::task::noop_waker()
    }

    #[test]
    fn a_reused_slot_rejects_the_old_tag() {
        let mut t = OpTable::new(4);
        let op: Arc<dyn Completion> = Arc::new(Count(AtomicUsize::new(0), Default::default()));
        let first = t.insert(op.clone(), &noop_waker()).unwrap();
        let done = Cqe { res: 0, flags: 0 };
        assert!(t.lookup(first, done).is_some());
        let second = t.insert(op, &noop_waker()).unwrap();
        assert_ne!(first, second);
        assert!(t.lookup(first, done).is_none(), "stale tag must not match");
        assert_eq!(t.stale, 1);
        assert!(t.lookup(second, done).is_some());
        assert_eq!(t.live(), 0);
    }

    #[test]
    fn a_full_table_gives_backpressure() {
        let mut t = OpTable::new(1);
        let op: Arc<dyn Completion> = Arc::new(Count(AtomicUsize::new(0), Default::default()));
        let a = t.insert(op.clone(), &noop_waker()).unwrap();
        assert!(t.insert(op.clone(), &noop_waker()).is_none());
        t.lookup(a, Cqe { res: 0, flags: 0 });
        assert!(t.insert(op, &noop_waker()).is_some());
    }

    #[test]
    fn multishot_cqes_keep_the_slot_until_the_last() {
        let mut t = OpTable::new(2);
        let op: Arc<dyn Completion> = Arc::new(Count(AtomicUsize::new(0), Default::default()));
        let ud = t.insert(op, &noop_waker()).unwrap();
        let more = Cqe {
            res: 5,
            flags: 1 << 1, // IORING_CQE_F_MORE
        };
        assert!(matches!(t.lookup(ud, more), Some((_, false))));
        assert_eq!(t.live(), 1);
        assert!(matches!(
            t.lookup(ud, Cqe { res: 0, flags: 0 }),
            Some((_, true))
        ));
        assert_eq!(t.live(), 0);
    }
}
