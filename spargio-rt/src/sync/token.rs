//! `CancellationToken`, its futures and `DropGuard`.
//!
//! Each token is a node of a tree. A node holds its `cancelled` flag and,
//! under one mutex, the wakers of the futures waiting on it and weak links to
//! its children. A child holds a strong link to its parent plus its key in
//! the parent's child list, and removes itself from that list when its last
//! handle is dropped, so a long-lived parent never accumulates dead children.
//!
//! Lost wake-ups are impossible because the flag is only ever set while the
//! node's mutex is held, and a waiter registers its waker under the same
//! mutex after checking the flag: either it sees the flag, or the canceller
//! sees (and wakes) its waker.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};

use slab::Slab;

/// One node of the cancellation tree, shared by all clones of a token.
struct Node {
    /// Set once, under `state`'s lock; readable without it.
    cancelled: AtomicBool,
    state: Mutex<State>,
    /// The parent and this node's key in the parent's `children`. `None` for
    /// roots and for children created already cancelled.
    parent: Option<(Arc<Node>, usize)>,
}

#[derive(Default)]
struct State {
    waiters: Slab<Waker>,
    children: Slab<Weak<Node>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // No user code runs under these locks (wakers are cloned, woken and
    // dropped outside them), but stay usable after a poisoning anyway.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Node {
    fn new(parent: Option<(Arc<Node>, usize)>, cancelled: bool) -> Node {
        Node {
            cancelled: AtomicBool::new(cancelled),
            state: Mutex::new(State::default()),
            parent,
        }
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    /// Cancels this node and its whole subtree. Iterative, so deep trees
    /// cannot overflow the stack; wakers run with no lock held. A node
    /// found already cancelled is skipped with its subtree: whoever
    /// cancelled it walks that (and may still be at it).
    fn cancel(self: &Arc<Node>) {
        let mut stack = vec![self.clone()];
        let mut wakers = Vec::new();
        while let Some(node) = stack.pop() {
            {
                let mut st = lock(&node.state);
                if node.cancelled.load(Ordering::Acquire) {
                    continue;
                }
                node.cancelled.store(true, Ordering::Release);
                // The lists are taken whole, not drained: a cancelled node's
                // lists never refill, and a drained one would keep its room
                // (a million children's or waiters') for the node's life.
                wakers.extend(std::mem::take(&mut st.waiters).into_iter().map(|(_, w)| w));
                // A child being dropped right now fails to upgrade; it was
                // already cancelled-or-unreachable, and its own drop finds
                // its entry gone.
                let children = std::mem::take(&mut st.children);
                stack.extend(children.into_iter().filter_map(|(_, w)| w.upgrade()));
            }
            for w in wakers.drain(..) {
                w.wake();
            }
            // `node`, maybe the last strong reference to a child, is dropped
            // here with no lock held.
        }
    }

    /// A new child of `self`, or an already-cancelled orphan if `self` is
    /// cancelled.
    fn child(self: &Arc<Node>) -> Arc<Node> {
        let mut st = lock(&self.state);
        if self.cancelled.load(Ordering::Acquire) {
            return Arc::new(Node::new(None, true));
        }
        let entry = st.children.vacant_entry();
        let key = entry.key();
        let child = Arc::new(Node::new(Some((self.clone(), key)), false));
        entry.insert(Arc::downgrade(&child));
        child
    }

    /// Removes the child registered under `key`, if still there (a cancel
    /// may have drained the list already; a cancelled node never takes new
    /// children, so a present key is the child's own, which the pointer
    /// comparison double-checks).
    fn remove_child(&self, key: usize, child: *const Node) {
        let mut st = lock(&self.state);
        if st
            .children
            .get(key)
            .is_some_and(|w| std::ptr::eq(w.as_ptr(), child))
        {
            st.children.remove(key);
            give_back_room(&mut st.children);
        }
    }

    /// Registers (or refreshes) the waiter in `slot`. Returns `false`, having
    /// registered nothing, if the node is already cancelled.
    fn register(&self, slot: &mut Option<usize>, waker: &Waker) -> bool {
        let mut st = lock(&self.state);
        if self.cancelled.load(Ordering::Acquire) {
            *slot = None;
            return false;
        }
        let old = match slot.and_then(|k| st.waiters.get_mut(k)) {
            Some(w) if w.will_wake(waker) => None,
            Some(w) => Some(std::mem::replace(w, waker.clone())),
            None => {
                *slot = Some(st.waiters.insert(waker.clone()));
                None
            }
        };
        drop(st);
        // A replaced waker is dropped unlocked: dropping it may drop a task,
        // and with it a token of this very node.
        drop(old);
        true
    }

    fn unregister(&self, slot: &mut Option<usize>) {
        if let Some(key) = slot.take() {
            let mut st = lock(&self.state);
            // Once cancelled, the list was drained and never refills, so a
            // key only means something before cancellation.
            let old = if self.cancelled.load(Ordering::Acquire) {
                None
            } else {
                let old = st.waiters.try_remove(key);
                give_back_room(&mut st.waiters);
                old
            };
            drop(st);
            drop(old);
        }
    }
}

/// Entries a node's lists keep room for after they empty.
const KEEP_ROOM: usize = 64;

/// Frees an emptied list's room once it grew past [`KEEP_ROOM`]: a root
/// that once had a million children (or waiters) at a time does not keep
/// their memory for its whole life. Keys of live entries must stay put, so
/// only an empty list is replaced.
fn give_back_room<T>(list: &mut Slab<T>) {
    if list.is_empty() && list.capacity() > KEEP_ROOM {
        *list = Slab::new();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // Unlink from the parent, then release the parent; if that was the
        // parent's last handle, unlink and release it here as well instead of
        // recursing, so dropping a long chain cannot overflow the stack.
        let mut link = self.parent.take();
        let mut me: *const Node = self;
        while let Some((parent, key)) = link {
            parent.remove_child(key, me);
            me = Arc::as_ptr(&parent);
            link = match Arc::try_unwrap(parent) {
                // `node` drops at the end of this arm with no parent left.
                Ok(mut node) => node.parent.take(),
                Err(_) => None,
            };
        }
    }
}

/// A cheap, cloneable signal that tells tasks to stop.
///
/// Clones share one state: cancelling any clone cancels them all. Tokens
/// form trees: [`child_token`](Self::child_token) makes a token that is
/// cancelled when its parent is (transitively), while cancelling a child
/// leaves its parent and siblings alone. Cancellation is permanent.
///
/// Waiting is done with [`cancelled`](Self::cancelled) (borrowing) or
/// [`cancelled_owned`](Self::cancelled_owned) (`'static`); any number of
/// futures may wait at once and all of them wake. These futures are
/// cancellation safe and work on any executor.
///
/// ```
/// use spargio_rt::sync::CancellationToken;
///
/// spargio_rt::run(|handle| async move {
///     let root = CancellationToken::new();
///     let child = root.child_token();
///     let worker = handle.spawn(async move {
///         child.cancelled().await;
///         "stopped"
///     });
///     root.cancel();
///     assert_eq!(worker.await.unwrap(), "stopped");
/// })
/// .unwrap();
/// ```
#[derive(Clone)]
pub struct CancellationToken {
    node: Arc<Node>,
}

impl CancellationToken {
    /// A new root token, not cancelled.
    pub fn new() -> CancellationToken {
        CancellationToken {
            node: Arc::new(Node::new(None, false)),
        }
    }

    /// A token that is cancelled when `self` is (or already is, if `self` is
    /// cancelled). Cancelling the child does not cancel `self`.
    ///
    /// A child unlinks itself from its parent when its last clone is
    /// dropped, so making many short-lived children of a long-lived token
    /// does not grow it.
    ///
    /// ```
    /// use spargio_rt::sync::CancellationToken;
    /// let parent = CancellationToken::new();
    /// let child = parent.child_token();
    /// child.cancel();
    /// assert!(!parent.is_cancelled());
    /// let other = parent.child_token();
    /// parent.cancel();
    /// assert!(other.is_cancelled());
    /// ```
    pub fn child_token(&self) -> CancellationToken {
        CancellationToken {
            node: self.node.child(),
        }
    }

    /// Cancels this token and every token below it in the tree, and wakes
    /// everything waiting on them. Idempotent.
    ///
    /// When it returns, this token is cancelled. For the call that
    /// cancels it, every descendant is cancelled (and its waiters woken) by
    /// then too, unless a cancel racing on another thread had already begun
    /// on part of the subtree: the walk leaves a token it finds already
    /// cancelled to whoever cancelled it, who may still be walking below
    /// it. In particular, a `cancel` of a token that is already cancelled
    /// (by an earlier or a racing call, or by an ancestor's) returns at
    /// once, while a racing cancel may not yet have reached every
    /// descendant: each descendant's [`is_cancelled`] and [`cancelled`]
    /// report it once it is reached.
    ///
    /// [`is_cancelled`]: Self::is_cancelled
    /// [`cancelled`]: Self::cancelled
    pub fn cancel(&self) {
        self.node.cancel();
    }

    /// Whether the token has been cancelled (directly or by an ancestor).
    pub fn is_cancelled(&self) -> bool {
        self.node.is_cancelled()
    }

    /// A future that completes once the token is cancelled (at once if it
    /// already is).
    ///
    /// ```
    /// use spargio_rt::sync::CancellationToken;
    /// spargio_rt::run(|_| async {
    ///     let token = CancellationToken::new();
    ///     token.cancel();
    ///     token.cancelled().await;
    /// })
    /// .unwrap();
    /// ```
    pub fn cancelled(&self) -> Cancelled<'_> {
        Cancelled {
            token: self,
            waiter: Waiter::default(),
        }
    }

    /// Like [`cancelled`](Self::cancelled), but owns a clone of the token, so
    /// the future is `'static` and can be moved into a spawned task.
    pub fn cancelled_owned(self) -> CancelledOwned {
        CancelledOwned {
            token: self,
            waiter: Waiter::default(),
        }
    }

    /// A guard that cancels this token when dropped, unless
    /// [disarmed](DropGuard::disarm).
    ///
    /// ```
    /// use spargio_rt::sync::CancellationToken;
    /// let token = CancellationToken::new();
    /// {
    ///     let _guard = token.clone().drop_guard();
    /// }
    /// assert!(token.is_cancelled());
    /// ```
    pub fn drop_guard(self) -> DropGuard {
        DropGuard { token: Some(self) }
    }

    /// Runs `fut` until it completes (`Some(output)`) or the token is
    /// cancelled (`None`, and `fut` is dropped). Cancellation is checked
    /// first, so an already-cancelled token never polls `fut`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use spargio_rt::sync::CancellationToken;
    /// spargio_rt::run(|handle| async move {
    ///     let token = CancellationToken::new();
    ///     assert_eq!(token.run_until_cancelled(async { 5 }).await, Some(5));
    ///     let t2 = token.clone();
    ///     handle.spawn(async move { t2.cancel() });
    ///     let slow = spargio_rt::time::sleep(Duration::from_secs(60));
    ///     assert_eq!(token.run_until_cancelled(slow).await, None);
    /// })
    /// .unwrap();
    /// ```
    pub fn run_until_cancelled<F: Future>(&self, fut: F) -> RunUntilCancelled<'_, F> {
        RunUntilCancelled {
            cancelled: self.cancelled(),
            fut,
        }
    }

    /// [`run_until_cancelled`](Self::run_until_cancelled) with an owned
    /// token, giving a `'static` future when `fut` is one.
    pub fn run_until_cancelled_owned<F: Future>(self, fut: F) -> RunUntilCancelledOwned<F> {
        RunUntilCancelledOwned {
            cancelled: self.cancelled_owned(),
            fut,
        }
    }

    /// Whether both tokens are clones of one another (share one state).
    pub fn ptr_eq(&self, other: &CancellationToken) -> bool {
        Arc::ptr_eq(&self.node, &other.node)
    }
}

impl Default for CancellationToken {
    fn default() -> Self {
        CancellationToken::new()
    }
}

impl fmt::Debug for CancellationToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancellationToken")
            .field("is_cancelled", &self.is_cancelled())
            .finish()
    }
}

/// A cancellation future's place in a node's waiter list, and the waker
/// it holds there.
#[derive(Default)]
struct Waiter {
    slot: Option<usize>,
    /// A clone of the waker registered in `slot`: while the task polls with
    /// a waker that would wake the same task, polling is an atomic load,
    /// not a turn of the node's lock (a lock many tasks on many threads
    /// may share, as a server's shutdown token is).
    waker: Option<Waker>,
}

impl Waiter {
    fn unregister(&mut self, node: &Node) {
        node.unregister(&mut self.slot);
        self.waker = None;
    }
}

fn poll_cancelled(node: &Node, waiter: &mut Waiter, cx: &mut Context<'_>) -> Poll<()> {
    if node.is_cancelled() {
        waiter.unregister(node);
        return Poll::Ready(());
    }
    // Only this future replaces the waker in its slot, and a cancel that
    // comes after the load above wakes that waker, so the same task is
    // woken as if it had registered again.
    if waiter.slot.is_some()
        && waiter
            .waker
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
    {
        return Poll::Pending;
    }
    if node.register(&mut waiter.slot, cx.waker()) {
        waiter.waker = Some(cx.waker().clone());
        Poll::Pending
    } else {
        waiter.waker = None;
        Poll::Ready(())
    }
}

/// Future returned by [`CancellationToken::cancelled`].
///
/// Cancellation safe: dropping it just unregisters its waker.
#[must_use = "futures do nothing unless polled"]
pub struct Cancelled<'a> {
    token: &'a CancellationToken,
    waiter: Waiter,
}

impl Future for Cancelled<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        poll_cancelled(&this.token.node, &mut this.waiter, cx)
    }
}

impl Drop for Cancelled<'_> {
    fn drop(&mut self) {
        self.waiter.unregister(&self.token.node);
    }
}

impl fmt::Debug for Cancelled<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cancelled")
            .field("token", self.token)
            .finish()
    }
}

/// Future returned by [`CancellationToken::cancelled_owned`].
///
/// Cancellation safe: dropping it just unregisters its waker.
#[must_use = "futures do nothing unless polled"]
pub struct CancelledOwned {
    token: CancellationToken,
    waiter: Waiter,
}

impl CancelledOwned {
    /// The token this future waits on.
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }
}

impl Future for CancelledOwned {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        poll_cancelled(&this.token.node, &mut this.waiter, cx)
    }
}

impl Drop for CancelledOwned {
    fn drop(&mut self) {
        self.waiter.unregister(&self.token.node);
    }
}

impl fmt::Debug for CancelledOwned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelledOwned")
            .field("token", &self.token)
            .finish()
    }
}

pin_project_lite::pin_project! {
    /// Future returned by [`CancellationToken::run_until_cancelled`].
    #[must_use = "futures do nothing unless polled"]
    pub struct RunUntilCancelled<'a, F> {
        cancelled: Cancelled<'a>,
        #[pin]
        fut: F,
    }
}

impl<F: Future> Future for RunUntilCancelled<'_, F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if Pin::new(this.cancelled).poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        this.fut.poll(cx).map(Some)
    }
}

impl<F> fmt::Debug for RunUntilCancelled<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunUntilCancelled")
            .field("token", self.cancelled.token)
            .finish_non_exhaustive()
    }
}

pin_project_lite::pin_project! {
    /// Future returned by [`CancellationToken::run_until_cancelled_owned`].
    #[must_use = "futures do nothing unless polled"]
    pub struct RunUntilCancelledOwned<F> {
        cancelled: CancelledOwned,
        #[pin]
        fut: F,
    }
}

impl<F: Future> Future for RunUntilCancelledOwned<F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if Pin::new(this.cancelled).poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        this.fut.poll(cx).map(Some)
    }
}

impl<F> fmt::Debug for RunUntilCancelledOwned<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunUntilCancelledOwned")
            .field("token", &self.cancelled.token)
            .finish_non_exhaustive()
    }
}

/// Cancels its token when dropped; made by [`CancellationToken::drop_guard`].
///
/// ```
/// use spargio_rt::sync::CancellationToken;
/// let token = CancellationToken::new();
/// let guard = token.clone().drop_guard();
/// let kept = guard.disarm();
/// assert!(!token.is_cancelled());
/// assert!(kept.ptr_eq(&token));
/// ```
#[must_use = "dropping the guard cancels the token at once"]
pub struct DropGuard {
    token: Option<CancellationToken>,
}

impl DropGuard {
    /// Gives the token back without cancelling it.
    pub fn disarm(mut self) -> CancellationToken {
        self.token
            .take()
            .expect("DropGuard holds its token until dropped")
    }

    /// The guarded token.
    pub fn token(&self) -> &CancellationToken {
        self.token
            .as_ref()
            .expect("DropGuard holds its token until dropped")
    }
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        if let Some(t) = self.token.take() {
            t.cancel();
        }
    }
}

impl fmt::Debug for DropGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DropGuard")
            .field("token", &self.token)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    struct CountWake(AtomicUsize);
    impl Wake for CountWake {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn children_len(t: &CancellationToken) -> usize {
        lock(&t.node.state).children.len()
    }

    fn waiters_len(t: &CancellationToken) -> usize {
        lock(&t.node.state).waiters.len()
    }

    #[test]
    fn dropped_children_unlink() {
        let root = CancellationToken::new();
        for _ in 0..100 {
            let c = root.child_token();
            let gc = c.child_token();
            drop(c);
            assert_eq!(children_len(&root), 1);
            drop(gc);
            assert_eq!(children_len(&root), 0);
        }
        assert_eq!(Arc::strong_count(&root.node), 1);
    }

    #[test]
    fn a_root_gives_back_the_room_of_children_it_no_longer_has() {
        let root = CancellationToken::new();
        let many: Vec<_> = (0..100_000).map(|_| root.child_token()).collect();
        assert!(lock(&root.node.state).children.capacity() >= 100_000);
        drop(many);
        assert!(lock(&root.node.state).children.capacity() <= KEEP_ROOM);
        // And still takes and cancels children.
        let c = root.child_token();
        root.cancel();
        assert!(c.is_cancelled());
    }

    #[test]
    fn a_cancelled_root_gives_back_the_room_of_its_lists() {
        let root = CancellationToken::new();
        let children: Vec<_> = (0..100_000).map(|_| root.child_token()).collect();
        let mut cx = Context::from_waker(Waker::noop());
        let mut waiting: Vec<_> = (0..100_000).map(|_| Box::pin(root.cancelled())).collect();
        for w in &mut waiting {
            assert!(w.as_mut().poll(&mut cx).is_pending());
        }
        root.cancel();
        assert!(children.iter().all(|c| c.is_cancelled()));
        for w in &mut waiting {
            assert!(w.as_mut().poll(&mut cx).is_ready());
        }
        drop((children, waiting));
        let st = lock(&root.node.state);
        assert!(
            st.children.capacity() <= KEEP_ROOM,
            "{}",
            st.children.capacity()
        );
        assert!(
            st.waiters.capacity() <= KEEP_ROOM,
            "{}",
            st.waiters.capacity()
        );
    }

    #[test]
    fn deep_chain_drops_and_cancels_without_overflow() {
        let root = CancellationToken::new();
        let mut t = root.clone();
        for _ in 0..200_000 {
            t = t.child_token();
        }
        root.cancel();
        assert!(t.is_cancelled());
        let mut t = root.child_token();
        for _ in 0..200_000 {
            t = t.child_token();
        }
        drop(t);
        assert_eq!(children_len(&root), 0);
    }

    #[test]
    fn dropped_waiters_unregister_and_wakes_are_delivered() {
        let t = CancellationToken::new();
        let counter = Arc::new(CountWake(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);
        let mut a = Box::pin(t.cancelled());
        let mut b = Box::pin(t.clone().cancelled_owned());
        assert!(a.as_mut().poll(&mut cx).is_pending());
        assert!(a.as_mut().poll(&mut cx).is_pending());
        assert!(b.as_mut().poll(&mut cx).is_pending());
        assert_eq!(waiters_len(&t), 2);
        drop(a);
        assert_eq!(waiters_len(&t), 1);
        t.cancel();
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
        assert!(b.as_mut().poll(&mut cx).is_ready());
        drop(b);
        assert_eq!(waiters_len(&t), 0);
    }

    #[test]
    fn the_waker_of_the_latest_poll_is_the_one_woken() {
        let t = CancellationToken::new();
        let first = Arc::new(CountWake(AtomicUsize::new(0)));
        let second = Arc::new(CountWake(AtomicUsize::new(0)));
        let (w1, w2) = (Waker::from(first.clone()), Waker::from(second.clone()));
        let mut a = Box::pin(t.cancelled());
        for w in [&w1, &w1, &w2, &w2, &w1, &w2] {
            assert!(a.as_mut().poll(&mut Context::from_waker(w)).is_pending());
        }
        assert_eq!(waiters_len(&t), 1, "one entry however often it is polled");
        t.cancel();
        assert_eq!(first.0.load(Ordering::SeqCst), 0);
        assert_eq!(second.0.load(Ordering::SeqCst), 1);
        assert!(a.as_mut().poll(&mut Context::from_waker(&w1)).is_ready());
    }

    #[test]
    fn cancelled_parent_makes_cancelled_orphans() {
        let root = CancellationToken::new();
        root.cancel();
        let c = root.child_token();
        assert!(c.is_cancelled());
        assert_eq!(children_len(&root), 0);
    }

    #[test]
    fn types_are_send_sync() {
        fn check<T: Send + Sync>() {}
        check::<CancellationToken>();
        check::<Cancelled<'static>>();
        check::<CancelledOwned>();
        check::<DropGuard>();
    }
}
