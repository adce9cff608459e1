//! Small futures the spawn paths wrap user code in.

use std::future::Future;

/// Builds a future from a `Send` closure at its first poll, on the thread
/// that polls it.
pub(crate) enum BuildThere<C, Fut> {
    Make(Option<C>),
    Running(Fut),
}

impl<C, Fut> BuildThere<C, Fut> {
    pub(crate) fn new(make: C) -> Self {
        BuildThere::Make(Some(make))
    }
}

impl<C, Fut> Future for BuildThere<C, Fut>
where
    C: FnOnce() -> Fut,
    Fut: Future,
{
    type Output = Fut::Output;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Fut::Output> {
        // SAFETY: `Running(fut)` is structurally pinned: once built in place
        // it is never moved (the enum is only ever overwritten while in the
        // `Make` state, before any future exists). `Make` holds no pinned data.
        let this = unsafe { self.get_unchecked_mut() };
        if let BuildThere::Make(make) = this {
            let make = make
                .take()
                .expect("BuildThere polled after a panic in make");
            *this = BuildThere::Running(make());
        }
        match this {
            // SAFETY: see above.
            BuildThere::Running(fut) => unsafe { std::pin::Pin::new_unchecked(fut) }.poll(cx),
            BuildThere::Make(_) => unreachable!("just built"),
        }
    }
}

/// A closure run once, as a future (blocking-pool jobs).
pub(crate) struct RunOnce<F>(pub(crate) Option<F>);

impl<F> Unpin for RunOnce<F> {}

impl<R, F: FnOnce() -> R> Future for RunOnce<F> {
    type Output = R;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<R> {
        let f = self.0.take().expect("RunOnce polled twice");
        std::task::Poll::Ready(f())
    }
}
