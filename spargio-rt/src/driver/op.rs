//! The futures of ops: [`Op`] (one CQE) and [`MultiOp`] (a stream of CQEs).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::cell::{Completion, Direction, OpCell, OpData};
use super::multi::{MultiCell, MultiData};
use super::remote::{self, Owner};
use super::Cqe;
use crate::shard::local;

enum State<T: OpData> {
    New(Option<T>),
    /// Built, waiting for a slot in the owner's table.
    Waiting(Arc<OpCell<T>>),
    InFlight(Arc<OpCell<T>>, Owner),
    Finished,
}

/// A single-shot op. Resolves to the CQE (or the error that kept it off
/// the ring) and the op's data back. Submitted on first poll, on the ring
/// of the shard that polls it; dropping it in flight cancels it safely.
pub(crate) struct Op<T: OpData> {
    state: State<T>,
}

impl<T: OpData> Op<T> {
    pub(crate) fn new(data: T) -> Self {
        Op {
            state: State::New(Some(data)),
        }
    }
}

// The future never hands out pinned references to its fields.
impl<T: OpData> Unpin for Op<T> {}

impl<T: OpData> Future for Op<T> {
    type Output = (io::Result<Cqe>, T);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match &mut self.state {
                State::New(data) => {
                    let cell = Arc::new(OpCell::new(data.take().expect("polled after completion")));
                    self.state = State::Waiting(cell);
                }
                State::Waiting(cell) => {
                    // The entry is built once, before its SQE exists: on the
                    // submitting shard after registering the cell, or (from
                    // a thread outside the runtime) by the caller before
                    // the request is queued; either way no CQE can reach
                    // the cell meanwhile.
                    let c: &OpCell<T> = cell;
                    // SAFETY: built once, before the SQE exists (above).
                    let entry = || unsafe { c.entry() };
                    cell.set_quiet(crate::io::is_quiet());
                    // The one reference the driver's table keeps; the
                    // future's own moves from `Waiting` to `InFlight`.
                    match remote::submit(cell.clone(), entry, T::NATIVE, cx.waker()) {
                        Ok(Some(owner)) => {
                            let State::Waiting(cell) =
                                std::mem::replace(&mut self.state, State::Finished)
                            else {
                                unreachable!()
                            };
                            // In flight first: should the inline reap below
                            // unwind, dropping the future cancels the op.
                            self.state = State::InFlight(cell, owner);
                            if T::DIRECTION != Direction::Other {
                                let State::InFlight(cell, _) = &self.state else {
                                    unreachable!()
                                };
                                local::with_current(|l| {
                                    l.submitted(T::DIRECTION, || cell.is_done())
                                });
                            }
                        }
                        Ok(None) => return Poll::Pending,
                        Err(e) => {
                            let State::Waiting(cell) =
                                std::mem::replace(&mut self.state, State::Finished)
                            else {
                                unreachable!()
                            };
                            // SAFETY: a failed submission registered the op
                            // nowhere, and this is its future.
                            let data = unsafe { cell.take_unsubmitted() };
                            return Poll::Ready((Err(e), data));
                        }
                    }
                }
                State::InFlight(cell, _) => {
                    cell.set_quiet(crate::io::is_quiet());
                    let Some(cqe) = cell.poll_done(cx.waker()) else {
                        return Poll::Pending;
                    };
                    let data = cell.take();
                    self.state = State::Finished;
                    if T::DIRECTION != Direction::Other {
                        local::with_current(|l| l.completed(T::DIRECTION));
                    }
                    return Poll::Ready((Ok(cqe), data));
                }
                State::Finished => panic!("spargio: op polled after completion"),
            }
        }
    }
}

impl<T: OpData> Drop for Op<T> {
    fn drop(&mut self) {
        if let State::InFlight(cell, owner) = &self.state {
            if cell.abandon() {
                remote::cancel(owner, cell.clone());
            }
        }
    }
}

/// A multishot op: a stream of CQEs. When the kernel ends it (a CQE
/// without `F_MORE`), [`poll_next`](Self::poll_next) reports `None` once;
/// polling again re-arms it. Dropping it cancels it and releases whatever
/// its queued and later CQEs hand over.
pub(crate) struct MultiOp<T: MultiData> {
    cell: Arc<MultiCell<T>>,
    owner: Option<Owner>,
    armed: bool,
    paused: bool,
}

impl<T: MultiData> MultiOp<T> {
    pub(crate) fn new(data: T) -> Self {
        MultiOp {
            cell: Arc::new(MultiCell::new(data)),
            owner: None,
            armed: false,
            paused: false,
        }
    }

    /// Cancels the armed op but keeps consuming: CQEs the kernel posted
    /// before the cancel landed are still handed out by `poll_next`, which
    /// then reports `Ok(None)` and does not re-arm until [`resume`](Self::resume).
    pub(crate) fn pause(&mut self) {
        if self.paused {
            return;
        }
        self.paused = true;
        if !self.armed {
            // It may wait for a slot in a full op table: a paused op is not
            // polled for it, so it must not hold the queue's place (or a
            // slot set aside for it) until it resumes.
            self.cell.op_tag().stop_waiting();
        }
        if self.armed && !self.cell.ended() {
            if let Some(owner) = &self.owner {
                remote::cancel(owner, self.cell.clone());
            }
        }
    }

    /// CQEs waiting for the consumer.
    pub(crate) fn queued(&self) -> usize {
        self.cell.queued()
    }

    /// Whether the driver cancelled the op for reaching its queue cap
    /// since it was last armed.
    pub(crate) fn capped(&self) -> bool {
        self.cell.capped()
    }

    /// Caps the CQEs waiting for the consumer; see `MultiCell::set_cap`.
    pub(crate) fn set_queue_cap(&self, cap: usize) {
        self.cell.set_cap(cap);
    }

    /// Lets the next `poll_next` arm the op again after [`pause`](Self::pause).
    pub(crate) fn resume(&mut self) {
        self.paused = false;
    }

    /// Whether the next [`poll_next`](Self::poll_next) would submit the
    /// op (it is not armed, and not paused): the one step that needs the
    /// ring of the shard polling it. Taking CQEs already queued does not.
    pub(crate) fn needs_arming(&self) -> bool {
        !self.armed && !self.paused
    }

    pub(crate) fn data(&self) -> &T {
        self.cell.data()
    }

    /// The next CQE; `Ok(None)` when the kernel ended the op (poll again
    /// to re-arm it).
    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<Cqe>>> {
        if !self.armed && self.paused {
            return Poll::Ready(Ok(None));
        }
        if !self.armed {
            self.cell.rearmed();
            let c = self.cell.clone();
            let entry = move || c.data().entry();
            match remote::submit(self.cell.clone(), entry, T::NATIVE, cx.waker())? {
                Some(owner) => {
                    self.owner = Some(owner);
                    self.armed = true;
                }
                None => return Poll::Pending,
            }
        }
        match self.cell.poll_next(cx.waker()) {
            Some(Ok(c)) => Poll::Ready(Ok(Some(c))),
            Some(Err(())) => {
                self.armed = false;
                Poll::Ready(Ok(None))
            }
            None => Poll::Pending,
        }
    }
}

impl<T: MultiData> Drop for MultiOp<T> {
    fn drop(&mut self) {
        let still_armed = self.cell.abandon();
        if let (true, Some(owner)) = (still_armed && self.armed, &self.owner) {
            remote::cancel(owner, self.cell.clone());
        }
    }
}
