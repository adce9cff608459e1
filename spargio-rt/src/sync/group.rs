//! `TaskGroup`: spawn tasks under one cancellation token and join them.
//!
//! Every task is wrapped so that (1) it races its future against the group's
//! token and (2) it carries a `Notify` value that, when the task's future is
//! dropped (completed, cancelled, aborted, panicked or dropped by runtime
//! shutdown), pushes the task's id onto the group's completion queue and
//! wakes the joiner. `join_next` pops ids in that order and takes the
//! result from the task's `JoinHandle`, which is ready at once or moments
//! later (the output is stored right after the future is dropped). So
//! joining costs O(1) per task, whatever the number of tasks.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;

use super::CancellationToken;
use crate::handle::RuntimeHandle;
use crate::placement::TaskPlacement;
use crate::task::{JoinError, JoinHandle};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Completion queue shared by the group and its tasks.
#[derive(Default)]
struct Done {
    queue: Mutex<VecDeque<u64>>,
    waker: AtomicWaker,
    running: AtomicUsize,
}

impl Done {
    fn pop(&self) -> Option<u64> {
        lock(&self.queue).pop_front()
    }
}

/// Travels inside a task's future; reports the task finished when dropped.
struct Notify {
    done: Arc<Done>,
    id: u64,
}

impl Notify {
    fn new(done: &Arc<Done>, id: u64) -> Notify {
        done.running.fetch_add(1, Ordering::SeqCst);
        Notify {
            done: done.clone(),
            id,
        }
    }
}

impl Drop for Notify {
    fn drop(&mut self) {
        lock(&self.done.queue).push_back(self.id);
        self.done.running.fetch_sub(1, Ordering::SeqCst);
        self.done.waker.wake();
    }
}

struct Tasks<T> {
    handles: HashMap<u64, JoinHandle<Option<T>>>,
    next_id: u64,
    /// A popped id whose handle was not ready yet; polled first next time so
    /// `join_next` stays cancellation safe.
    front: Option<u64>,
}

/// A set of tasks spawned under one [`CancellationToken`], joined together.
///
/// Every task races its future against the group's token: after
/// [`cancel`](Self::cancel) each task is dropped at its next `.await` and
/// reports [`JoinError::is_cancelled`]. Results come back in spawn order
/// from [`join_all`](Self::join_all) or in completion order from
/// [`join_next`](Self::join_next) (like tokio's `JoinSet`). Joined tasks
/// are forgotten, so a long-lived group that is drained with `join_next`
/// stays small.
///
/// Dropping the group cancels its token, so its tasks stop at their next
/// `.await`; keep the group (or [`join_all`](Self::join_all)) to let them
/// finish.
///
/// ```
/// use std::time::Duration;
/// use spargio_rt::sync::TaskGroup;
///
/// spargio_rt::run(|handle| async move {
///     let mut group = TaskGroup::new(handle);
///     for i in 0..4u64 {
///         group.spawn(async move { i * 10 });
///     }
///     group.spawn(async {
///         spargio_rt::time::sleep(Duration::from_secs(3600)).await;
///         999
///     });
///     // Wait for the quick ones, then stop the straggler.
///     let mut sum = 0;
///     for _ in 0..4 {
///         sum += group.join_next().await.unwrap().unwrap();
///     }
///     assert_eq!(sum, 60);
///     group.cancel();
///     let last = group.join_next().await.unwrap();
///     assert!(last.unwrap_err().is_cancelled());
///     assert!(group.join_next().await.is_none());
/// })
/// .unwrap();
/// ```
pub struct TaskGroup<T = ()> {
    handle: RuntimeHandle,
    token: CancellationToken,
    done: Arc<Done>,
    tasks: Mutex<Tasks<T>>,
}

/// For any output: a group of `!Send` outputs spawns with
/// [`spawn_local`](TaskGroup::spawn_local) only (and is itself `!Send`).
impl<T: 'static> TaskGroup<T> {
    /// An empty group on `handle`'s runtime with a fresh root token.
    pub fn new(handle: RuntimeHandle) -> TaskGroup<T> {
        Self::with_own_token(handle, CancellationToken::new())
    }

    /// An empty group on the current runtime.
    ///
    /// # Panics
    /// Outside a runtime (see [`RuntimeHandle::current`]).
    pub fn current() -> TaskGroup<T> {
        Self::new(RuntimeHandle::current())
    }

    /// An empty group whose token is a [child](CancellationToken::child_token)
    /// of `parent`: cancelling `parent` cancels the group, while
    /// [`TaskGroup::cancel`] leaves `parent` alone.
    ///
    /// ```
    /// use spargio_rt::sync::{CancellationToken, TaskGroup};
    /// spargio_rt::run(|handle| async move {
    ///     let shutdown = CancellationToken::new();
    ///     let mut group = TaskGroup::with_token(handle, &shutdown);
    ///     group.spawn(std::future::pending::<()>());
    ///     shutdown.cancel();
    ///     let results = group.join_all().await;
    ///     assert!(results[0].as_ref().unwrap_err().is_cancelled());
    /// })
    /// .unwrap();
    /// ```
    pub fn with_token(handle: RuntimeHandle, parent: &CancellationToken) -> TaskGroup<T> {
        Self::with_own_token(handle, parent.child_token())
    }

    fn with_own_token(handle: RuntimeHandle, token: CancellationToken) -> TaskGroup<T> {
        TaskGroup {
            handle,
            token,
            done: Arc::default(),
            tasks: Mutex::new(Tasks {
                handles: HashMap::new(),
                next_id: 0,
                front: None,
            }),
        }
    }

    /// Spawns a `!Send` task on the current shard (see
    /// [`RuntimeHandle::spawn_local`]). Its output need not be `Send`
    /// either.
    ///
    /// ```
    /// use std::rc::Rc;
    /// use spargio_rt::sync::TaskGroup;
    ///
    /// spargio_rt::run(|handle| async move {
    ///     let mut group = TaskGroup::new(handle);
    ///     group.spawn_local(async { Rc::new("local") });
    ///     let out: Rc<&str> = group.join_next().await.unwrap().unwrap();
    ///     assert_eq!(*out, "local");
    /// })
    /// .unwrap();
    /// ```
    ///
    /// # Panics
    /// If the calling thread is not a shard of the group's runtime.
    pub fn spawn_local<F>(&self, fut: F)
    where
        F: Future<Output = T> + 'static,
    {
        self.spawn_inner(|task| self.handle.spawn_local(task), fut);
    }

    fn spawn_inner<F, S>(&self, spawn: S, fut: F)
    where
        F: Future<Output = T>,
        S: FnOnce(TaskFuture<F>) -> JoinHandle<Option<T>>,
    {
        // Take an id under the lock, but spawn without it: once shutdown has
        // begun, `spawn` drops the task (the user's future) right here, and
        // that drop may use this group again (spawn into it, say). The
        // handle goes in afterwards; no joiner can pop the id in between, as
        // joining needs `&mut self`. (A spawn that panics, on a bad
        // placement, leaves an id without a handle, which joiners skip.)
        let id = {
            let mut tasks = lock(&self.tasks);
            let id = tasks.next_id;
            tasks.next_id += 1;
            id
        };
        let task = TaskFuture {
            inner: self.token.clone().run_until_cancelled_owned(fut),
            _notify: Notify::new(&self.done, id),
        };
        let handle = spawn(task);
        lock(&self.tasks).handles.insert(id, handle);
    }

    /// The group's token. Tasks may watch it; cancelling it is
    /// [`cancel`](Self::cancel).
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// The runtime the group spawns on.
    pub fn handle(&self) -> &RuntimeHandle {
        &self.handle
    }

    /// Cancels the group's token: every task (also ones spawned later) is
    /// dropped at its next `.await` and reports
    /// [`JoinError::is_cancelled`]. Tokens the group was made from are not
    /// affected.
    pub fn cancel(&self) {
        self.token.cancel();
    }

    /// Aborts every task spawned so far via [`JoinHandle::abort`]; each
    /// reports [`JoinError::is_cancelled`] unless it already finished. Unlike
    /// [`cancel`](Self::cancel), later spawns are unaffected.
    pub fn abort_all(&self) {
        // Abort outside the lock: a wake-up after the task's shard exited
        // drops the task on this thread, and its drop may use the group.
        let wakers: Vec<_> = lock(&self.tasks)
            .handles
            .values()
            .filter_map(JoinHandle::request_abort)
            .collect();
        for waker in wakers {
            waker.wake();
        }
    }

    /// Number of tasks still running (spawned and not yet finished).
    pub fn len(&self) -> usize {
        self.done.running.load(Ordering::SeqCst)
    }

    /// Whether no task is running.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits for the next task to finish and returns its result, or `None`
    /// when no spawned task is left to join. Results come in completion
    /// order.
    ///
    /// Cancellation safe: if the future is dropped, no result is lost.
    pub async fn join_next(&mut self) -> Option<Result<T, JoinError>> {
        std::future::poll_fn(|cx| self.poll_join_next(cx))
            .await
            .map(|(_, r)| r)
    }

    /// Waits for every task spawned so far (and not yet joined) and returns
    /// their results in spawn order.
    ///
    /// Not cancellation safe: if this future is dropped midway, the results
    /// it had gathered are lost (the remaining tasks stay in the group).
    pub async fn join_all(&mut self) -> Vec<Result<T, JoinError>> {
        let mut out = Vec::with_capacity(
            self.tasks
                .get_mut()
                .unwrap_or_else(|e| e.into_inner())
                .handles
                .len(),
        );
        while let Some(r) = std::future::poll_fn(|cx| self.poll_join_next(cx)).await {
            out.push(r);
        }
        out.sort_unstable_by_key(|(id, _)| *id);
        out.into_iter().map(|(_, r)| r).collect()
    }

    /// The result of a task that has already finished, without waiting:
    /// `None` if none has (or no task is left). Results come in completion
    /// order, as from [`join_next`](Self::join_next), and each once: call
    /// it until `None` to reap a long-lived group from synchronous code (a
    /// loop that also does other work, a `poll` function) instead of
    /// awaiting `join_next`.
    ///
    /// A task that finished a moment ago on another thread may not have
    /// handed over its output yet; its result comes from a later call, and
    /// until then it holds back the results of tasks that finished after
    /// it. `None` does not say whether tasks are still running:
    /// [`is_empty`](Self::is_empty) does.
    ///
    /// ```
    /// use spargio_rt::sync::TaskGroup;
    ///
    /// spargio_rt::run(|handle| async move {
    ///     let mut group = TaskGroup::new(handle);
    ///     group.spawn_local(async { 7 });
    ///     // Not run yet: this task has not let the shard go.
    ///     assert!(group.try_join_next().is_none());
    ///     while !group.is_empty() {
    ///         spargio_rt::yield_now().await;
    ///     }
    ///     assert_eq!(group.try_join_next().unwrap().unwrap(), 7);
    ///     assert!(group.try_join_next().is_none());
    /// })
    /// .unwrap();
    /// ```
    pub fn try_join_next(&mut self) -> Option<Result<T, JoinError>> {
        let tasks = self.tasks.get_mut().unwrap_or_else(|e| e.into_inner());
        // Nothing is registered to be woken: a handle not ready yet stays
        // at the front, for the next join.
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match poll_finished(tasks, &self.done, &mut cx) {
            Poll::Ready(Some((_, r))) => Some(r),
            Poll::Ready(None) | Poll::Pending => None,
        }
    }

    fn poll_join_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<(u64, Result<T, JoinError>)>> {
        let tasks = self.tasks.get_mut().unwrap_or_else(|e| e.into_inner());
        loop {
            match poll_finished(tasks, &self.done, cx) {
                Poll::Ready(None) => {}
                finished => return finished,
            }
            if tasks.handles.is_empty() {
                return Poll::Ready(None);
            }
            // Registered before the queue is looked at again, so a task
            // that finishes in between wakes this joiner.
            self.done.waker.register(cx.waker());
            if lock(&self.done.queue).is_empty() {
                return Poll::Pending;
            }
        }
    }
}

/// Spawning `Send` tasks, which may run on any shard: their output must be
/// `Send` too.
impl<T: Send + 'static> TaskGroup<T> {
    /// Spawns a stealable task in the group (see [`RuntimeHandle::spawn`]).
    pub fn spawn<F>(&self, fut: F)
    where
        F: Future<Output = T> + Send + 'static,
    {
        self.spawn_with_placement(TaskPlacement::Stealable, fut);
    }

    /// Spawns a task in the group with an explicit placement.
    ///
    /// ```
    /// use spargio_rt::{RuntimeHandle, ShardId, TaskPlacement};
    /// use spargio_rt::sync::TaskGroup;
    ///
    /// let rt = spargio_rt::Runtime::builder().shards(2);
    /// spargio_rt::run_with(rt, |handle| async move {
    ///     let mut group = TaskGroup::new(handle);
    ///     group.spawn_with_placement(TaskPlacement::Pinned(ShardId(1)), async {
    ///         RuntimeHandle::current().current_shard()
    ///     });
    ///     let results = group.join_all().await;
    ///     assert_eq!(results[0].as_ref().unwrap(), &Some(ShardId(1)));
    /// })
    /// .unwrap();
    /// ```
    ///
    /// # Panics
    /// If the placement names a shard that does not exist.
    pub fn spawn_with_placement<F>(&self, placement: TaskPlacement, fut: F)
    where
        F: Future<Output = T> + Send + 'static,
    {
        self.spawn_inner(
            |task| self.handle.spawn_with_placement(placement, task),
            fut,
        );
    }
}

/// What a group's map of tasks and completion queue keep of their room
/// however few tasks are left.
const KEEP_ROOM: usize = 64;

/// Shrinks the map of tasks and the completion queue once they use a
/// quarter of their room or less (to twice what they hold): after a burst
/// of tasks, a drained group does not hold the burst's room for ever.
/// Halving at a quarter keeps the cost of shrinking to a constant share of
/// the removals.
fn give_back_room<T>(tasks: &mut Tasks<T>, done: &Done) {
    let handles = &mut tasks.handles;
    if handles.capacity() > KEEP_ROOM && handles.len() <= handles.capacity() / 4 {
        handles.shrink_to((handles.len() * 2).max(KEEP_ROOM));
    }
    let mut queue = lock(&done.queue);
    if queue.capacity() > KEEP_ROOM && queue.len() <= queue.capacity() / 4 {
        let keep = (queue.len() * 2).max(KEEP_ROOM);
        queue.shrink_to(keep);
    }
}

/// The result of the next task in the completion queue: `Ready(None)` when
/// the queue is empty, `Pending` (the id kept at the front, `cx` woken
/// when the output is stored) when the task's output is not stored yet.
fn poll_finished<T>(
    tasks: &mut Tasks<T>,
    done: &Done,
    cx: &mut Context<'_>,
) -> Poll<Option<(u64, Result<T, JoinError>)>> {
    while let Some(id) = tasks.front.take().or_else(|| done.pop()) {
        // An id without a handle belongs to a spawn that panicked (bad
        // placement) before its handle was stored: skip it.
        let Some(handle) = tasks.handles.get_mut(&id) else {
            continue;
        };
        return match Pin::new(handle).poll(cx) {
            Poll::Pending => {
                tasks.front = Some(id);
                Poll::Pending
            }
            Poll::Ready(r) => {
                tasks.handles.remove(&id);
                give_back_room(tasks, done);
                let r = match r {
                    Ok(Some(v)) => Ok(v),
                    Ok(None) => Err(JoinError::cancelled()),
                    Err(e) => Err(e),
                };
                Poll::Ready(Some((id, r)))
            }
        };
    }
    Poll::Ready(None)
}

impl<T> Drop for TaskGroup<T> {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

impl<T> fmt::Debug for TaskGroup<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskGroup")
            .field("running", &self.done.running.load(Ordering::SeqCst))
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

pin_project_lite::pin_project! {
    /// A group task: the user's future raced against the group's token, plus
    /// the completion notifier (dropped with the future, whatever happens).
    ///
    /// Field order matters: fields drop in declaration order, so `inner`
    /// (the user's future) is dropped before `_notify` reports the task
    /// finished. The other way round, `len` would stop counting the task,
    /// and the joiner be woken, while the future's destructors had still to
    /// run.
    struct TaskFuture<F> {
        #[pin]
        inner: super::token::RunUntilCancelledOwned<F>,
        _notify: Notify,
    }
}

impl<F: Future> Future for TaskFuture<F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().inner.poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_is_send_sync() {
        fn check<X: Send + Sync>() {}
        check::<TaskGroup<u32>>();
        check::<TaskGroup>();
    }

    #[test]
    fn joined_tasks_leave_nothing_behind() {
        crate::run(|h| async move {
            let mut g = TaskGroup::new(h);
            for round in 0..5u64 {
                for i in 0..200u64 {
                    g.spawn(async move { round + i });
                }
                let mut n = 0;
                while let Some(r) = g.join_next().await {
                    r.unwrap();
                    n += 1;
                }
                assert_eq!(n, 200);
                let tasks = g.tasks.get_mut().unwrap();
                assert!(tasks.handles.is_empty());
                assert!(tasks.front.is_none());
                assert!(lock(&g.done.queue).is_empty());
                assert_eq!(g.len(), 0);
            }
        })
        .unwrap();
    }

    #[test]
    fn a_drained_group_gives_back_the_room_of_a_burst() {
        crate::run_with(crate::Runtime::builder().shards(1), |h| async move {
            let mut g = TaskGroup::new(h);
            for i in 0..100_000u64 {
                g.spawn_local(async move { i });
            }
            let mut n = 0;
            while g.join_next().await.is_some() {
                n += 1;
            }
            assert_eq!(n, 100_000);
            let tasks = g.tasks.get_mut().unwrap();
            assert!(
                tasks.handles.capacity() <= 4 * KEEP_ROOM,
                "{}",
                tasks.handles.capacity()
            );
            let queue = lock(&g.done.queue).capacity();
            assert!(queue <= 4 * KEEP_ROOM, "{queue}");
        })
        .unwrap();
    }

    #[test]
    fn spawn_local_takes_a_non_send_output() {
        crate::run(|h| async move {
            let mut g = TaskGroup::new(h);
            for i in 0..3u32 {
                g.spawn_local(async move { std::rc::Rc::new(i) });
            }
            let outs: Vec<u32> = g
                .join_all()
                .await
                .into_iter()
                .map(|r| *r.unwrap())
                .collect();
            assert_eq!(outs, [0, 1, 2]);
        })
        .unwrap();
    }

    #[test]
    fn try_join_next_takes_only_finished_tasks_and_never_waits() {
        crate::run(|h| async move {
            let mut g = TaskGroup::new(h);
            assert!(g.try_join_next().is_none(), "an empty group");
            g.spawn_local(async { std::rc::Rc::new(1u8) });
            g.spawn_local(std::future::pending());
            // This task has not let the shard go: neither task has run.
            assert!(g.try_join_next().is_none());
            // The quick one finishes (its output is stored before this task
            // runs again, on the same shard); the other never does.
            while g.len() > 1 {
                crate::yield_now().await;
            }
            assert_eq!(*g.try_join_next().unwrap().unwrap(), 1);
            assert!(g.try_join_next().is_none(), "the pending task was joined");
            assert_eq!(g.len(), 1);
            // Taken once: join_next does not hand it out again.
            g.cancel();
            while !g.is_empty() {
                crate::yield_now().await;
            }
            assert!(g.try_join_next().unwrap().unwrap_err().is_cancelled());
            assert!(g.try_join_next().is_none());
            assert!(g.join_next().await.is_none());
            let tasks = g.tasks.get_mut().unwrap();
            assert!(tasks.handles.is_empty());
            assert!(tasks.front.is_none());
        })
        .unwrap();
    }

    #[test]
    fn bad_placement_panics_without_corrupting_the_group() {
        crate::run(|h| async move {
            let mut g: TaskGroup<u8> = TaskGroup::new(h);
            let bad = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                g.spawn_with_placement(TaskPlacement::Pinned(crate::ShardId(99)), async { 1 });
            }));
            assert!(bad.is_err());
            assert_eq!(g.len(), 0);
            g.spawn(async { 2 });
            assert_eq!(g.join_next().await.unwrap().unwrap(), 2);
            assert!(g.join_next().await.is_none());
        })
        .unwrap();
    }
}
