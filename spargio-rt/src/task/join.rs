//! `JoinHandle` and `JoinError`.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

use super::guard::Outcome;
use super::TaskMeta;

type Inner<T> = async_task::FallibleTask<Outcome<T>, TaskMeta>;

/// An owned permission to await a spawned task's output.
///
/// Awaiting gives `Ok(output)`, or a [`JoinError`] when the task was
/// aborted, cancelled by runtime shutdown, or panicked. Dropping the handle
/// detaches the task: it keeps running.
///
/// # Panics
/// Polled again after it gave its result (as tokio's does; in a `select!`
/// loop, stop polling a branch once it is done). It used to answer
/// `Cancelled` then, a false outcome for a task that finished.
///
/// ```
/// spargio_rt::run(|handle| async move {
///     let task = handle.spawn(async { 6 * 7 });
///     assert_eq!(task.await.unwrap(), 42);
/// })
/// .unwrap();
/// ```
pub struct JoinHandle<T> {
    task: Option<Inner<T>>,
    /// The task's metadata, for [`abort`](Self::abort); valid while `task`
    /// is `Some` (see [`MetaRef`]).
    meta: MetaRef,
    /// The task's waker, for [`abort`](Self::abort).
    waker: Waker,
}

/// The metadata of a task whose async-task `Task` handle is alive.
///
/// `FallibleTask`, which the handle keeps, has no `metadata()` of its own,
/// so the address is taken from the `Task` it is made from (and wraps):
/// the metadata lives in the task's allocation, which does not move and
/// is not freed while that `Task` exists.
pub(crate) struct MetaRef(NonNull<TaskMeta>);

impl MetaRef {
    /// A reference to `meta`, for a holder that `meta`'s task allocation
    /// outlives (see the callers' `SAFETY` notes when it is read).
    pub(crate) fn new(meta: &TaskMeta) -> MetaRef {
        MetaRef(NonNull::from(meta))
    }

    /// The metadata.
    ///
    /// # Safety
    /// The task allocation the metadata lives in must still exist.
    pub(crate) unsafe fn get(&self) -> &TaskMeta {
        // SAFETY: the caller promises the allocation is alive; the
        // metadata never moves within it.
        unsafe { self.0.as_ref() }
    }
}

// SAFETY: a `MetaRef` only hands out `&TaskMeta`, and `TaskMeta` is `Sync`
// (atomics and plain data), so sharing or sending the pointer across
// threads is no more than sharing the reference.
unsafe impl Send for MetaRef {}
// SAFETY: as above.
unsafe impl Sync for MetaRef {}

impl<T> JoinHandle<T> {
    pub(crate) fn new(task: async_task::Task<Outcome<T>, TaskMeta>, waker: Waker) -> Self {
        let meta = MetaRef::new(task.metadata());
        JoinHandle {
            task: Some(task.fallible()),
            meta,
            waker,
        }
    }

    /// Asks the task to stop. It is dropped at its next scheduling point (on
    /// its own shard) and the handle then yields [`JoinError::is_cancelled`].
    /// A task that already finished keeps its output.
    pub fn abort(&self) {
        if let Some(waker) = self.request_abort() {
            waker.wake();
        }
    }

    /// Marks the task aborted and returns the wake-up that makes it notice
    /// (none once the handle gave the task's result): [`abort`](Self::abort)
    /// in two steps, for a caller that must wake outside a lock (the
    /// wake-up can drop the task on the calling thread).
    pub(crate) fn request_abort(&self) -> Option<Waker> {
        // Still holding the task: its metadata is alive.
        self.task.as_ref()?;
        // SAFETY: `task` is `Some`, so the `Task` the pointer was taken
        // from is alive (inside the `FallibleTask`), and with it the
        // allocation that holds the metadata (see `MetaRef`).
        let meta = unsafe { self.meta.get() };
        meta.abort();
        Some(self.waker.clone())
    }

    /// Whether the task has finished (completed, panicked or been cancelled).
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(|t| t.is_finished())
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(task) = self.task.as_mut() else {
            panic!("spargio: a JoinHandle was polled after it gave its task's result");
        };
        match Pin::new(task).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(out) => {
                self.task = None;
                Poll::Ready(out.map_or_else(|| Err(JoinError::cancelled()), Outcome::take))
            }
        }
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.detach();
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// Why a task produced no output.
pub struct JoinError {
    repr: Repr,
}

enum Repr {
    Cancelled,
    /// The panic payload; in a `Mutex` so `JoinError` is `Sync`.
    Panic(Mutex<Box<dyn Any + Send + 'static>>),
}

impl JoinError {
    pub(crate) fn cancelled() -> Self {
        JoinError {
            repr: Repr::Cancelled,
        }
    }

    pub(crate) fn panic(payload: Box<dyn Any + Send + 'static>) -> Self {
        JoinError {
            repr: Repr::Panic(Mutex::new(payload)),
        }
    }

    /// The task was aborted or dropped by runtime shutdown.
    pub fn is_cancelled(&self) -> bool {
        matches!(self.repr, Repr::Cancelled)
    }

    /// The task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panic(_))
    }

    /// The panic payload. Panics if the task was cancelled instead; see
    /// [`try_into_panic`](Self::try_into_panic).
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.try_into_panic()
            .expect("JoinError::into_panic on a cancelled task")
    }

    /// The panic payload, or the error back if the task was cancelled.
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self.repr {
            Repr::Panic(p) => Ok(p.into_inner().unwrap_or_else(|e| e.into_inner())),
            Repr::Cancelled => Err(self),
        }
    }

    fn panic_message(&self) -> Option<String> {
        let Repr::Panic(p) = &self.repr else {
            return None;
        };
        let p = p.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = p.downcast_ref::<&'static str>() {
            Some((*s).to_string())
        } else {
            p.downcast_ref::<String>().cloned()
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.repr, self.panic_message()) {
            (Repr::Cancelled, _) => f.write_str("task was cancelled"),
            (Repr::Panic(_), Some(m)) => write!(f, "task panicked: {m}"),
            (Repr::Panic(_), None) => f.write_str("task panicked"),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Cancelled => f.write_str("JoinError::Cancelled"),
            Repr::Panic(_) => write!(f, "JoinError::Panic({:?})", self.panic_message()),
        }
    }
}

impl std::error::Error for JoinError {}

impl From<JoinError> for std::io::Error {
    fn from(e: JoinError) -> Self {
        std::io::Error::other(e)
    }
}
