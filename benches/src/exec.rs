//! The one abstraction the workloads need from a runtime: spawn a `Send`
//! task with a join handle, and sleep.

use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

/// A runtime handle the generic workloads can spawn on.
pub trait Exec: Clone + Send + Sync + 'static {
    /// Error a join handle can resolve to.
    type JoinError: Debug;
    /// The runtime's join handle.
    type Join<T: Send + 'static>: Future<Output = Result<T, Self::JoinError>> + Send + 'static;

    /// Spawns a stealable (work-stealing) task.
    fn spawn<F>(&self, f: F) -> Self::Join<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;

    /// The runtime's own sleep.
    fn sleep(d: Duration) -> impl Future<Output = ()> + Send;
}

impl Exec for spargio_rt::RuntimeHandle {
    type JoinError = spargio_rt::JoinError;
    type Join<T: Send + 'static> = spargio_rt::JoinHandle<T>;

    fn spawn<F>(&self, f: F) -> Self::Join<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        spargio_rt::RuntimeHandle::spawn(self, f)
    }

    fn sleep(d: Duration) -> impl Future<Output = ()> + Send {
        spargio_rt::time::sleep(d)
    }
}

impl Exec for tokio::runtime::Handle {
    type JoinError = tokio::task::JoinError;
    type Join<T: Send + 'static> = tokio::task::JoinHandle<T>;

    fn spawn<F>(&self, f: F) -> Self::Join<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        tokio::runtime::Handle::spawn(self, f)
    }

    fn sleep(d: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(d)
    }
}

impl Exec for spargio::RuntimeHandle {
    type JoinError = spargio::JoinError;
    type Join<T: Send + 'static> = spargio::JoinHandle<T>;

    fn spawn<F>(&self, f: F) -> Self::Join<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.spawn_stealable(f)
            .expect("spargio 0.5.13 spawn_stealable")
    }

    fn sleep(d: Duration) -> impl Future<Output = ()> + Send {
        spargio::sleep(d)
    }
}
