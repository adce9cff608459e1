//! Unix signals as async streams: [`ctrl_c`] and [`signal`].
//!
//! ## How it works
//!
//! Listening for a signal installs a `sigaction` handler for it (once per
//! process). The handler is async-signal-safe: it bumps that signal's
//! delivery counter (an atomic) and writes to a process-wide eventfd.
//! Each waiting [`Signal::recv`] keeps one read of that eventfd in flight
//! on its shard's ring; whichever read completes wakes every listener
//! (from the driver, through a broadcast waker, so a listener that is not
//! being polled cannot swallow a kick), and each compares the counter
//! with what it has already reported. There is no polling loop and no
//! thread that sleeps; an idle listener is a parked ring read. [`Signal`]
//! is also a `futures_core::Stream` of `()`.
//!
//! A handler rather than a `signalfd`, because a `signalfd` only sees a
//! signal that is blocked in *every* thread: a runtime shard, a blocking
//! pool thread or any other thread that did not block it would take the
//! signal the default way (`SIGINT` would kill the process). A handler
//! works whatever the threads' masks are.
//!
//! ## Things to know
//!
//! - **Register before the signal can arrive.** [`signal`] installs the
//!   handler when it is called, and so does [`ctrl_c`] (when called, not
//!   when first polled). Only deliveries after that are seen.
//! - **The handler stays.** Once a signal has been listened for, its
//!   default action is gone for the life of the process, even after every
//!   [`Signal`] is dropped: after [`ctrl_c`], Ctrl-C no longer ends the
//!   program by itself. Children get default dispositions again at
//!   `exec`.
//! - **A handler installed earlier is kept.** If the signal already had
//!   a handler function (another runtime's, such as tokio's beside
//!   spargio, or a C library's), ours calls it after its own work on
//!   every delivery, with the kernel's `siginfo` and context if it was
//!   installed with `SA_SIGINFO`. The default action and "ignore" are
//!   not kept: those are what listening replaces. A handler installed
//!   after ours replaces ours unless it calls the one it replaced (tokio's
//!   does).
//! - **Any thread may run the handler.** It is installed with
//!   `SA_RESTART`, but calls the kernel never restarts after a handler
//!   (`poll`, `epoll_wait`, `nanosleep`, socket calls with a timeout) fail
//!   with `EINTR` on the thread the signal interrupted; code on threads of
//!   your own should retry on it, as it must under any handler. The
//!   runtime's own threads do.
//! - **Every listener sees every delivery**, once per delivery; the kernel
//!   merges deliveries of one signal that arrive while it is still pending.
//! - Signals that cannot be caught or must keep their meaning (`SIGKILL`,
//!   `SIGSTOP`, `SIGSEGV`, `SIGBUS`, `SIGILL`, `SIGFPE`) and the real-time
//!   signals the C library reserves are refused.
//!
//! ```no_run
//! spargio_rt::run(|_| async {
//!     let ctrl_c = spargio_rt::signal::ctrl_c();
//!     // ... start the server ...
//!     ctrl_c.await.unwrap();
//!     println!("shutting down");
//! })
//! .unwrap();
//! ```

mod kind;
mod registry;
mod stream;

use std::future::Future;
use std::io;

pub use kind::SignalKind;
pub use stream::Signal;

/// Starts listening for `kind`: installs its handler (once per process)
/// and returns the stream of its deliveries from now on.
///
/// Fails for signals that cannot be listened for (see the
/// [module docs](self)). Needs no runtime to call; [`Signal::recv`] needs
/// one to wait.
///
/// ```
/// use spargio_rt::signal::{signal, SignalKind};
/// spargio_rt::run(|_| async {
///     let mut usr1 = signal(SignalKind::user_defined1()).unwrap();
///     // SAFETY: raising a signal we now handle.
///     unsafe { libc::raise(libc::SIGUSR1) };
///     assert_eq!(usr1.recv().await, Some(()));
/// })
/// .unwrap();
/// ```
pub fn signal(kind: SignalKind) -> io::Result<Signal> {
    // Counted from before the handler goes in: a signal that arrives
    // while it is being installed is this stream's to report (the default
    // action no longer happens, so it would otherwise be lost).
    let seen = registry::deliveries(kind.as_raw());
    let kick = registry::register(kind.as_raw())?;
    Ok(Signal::new(kind, kick, seen))
}

/// Resolves at the next `SIGINT` (Ctrl-C) after this call.
///
/// The handler is installed when `ctrl_c` is *called*, so a `SIGINT` that
/// arrives before the future is first polled is not lost (and does not
/// kill the process).
pub fn ctrl_c() -> impl Future<Output = io::Result<()>> + Send + 'static {
    let sig = signal(SignalKind::interrupt());
    async move {
        let mut sig = sig?;
        sig.recv().await.ok_or_else(|| {
            io::Error::other(
                "spargio: signals cannot be read here: ctrl_c() was awaited outside a \
                 spargio runtime, or its runtime is shutting down",
            )
        })
    }
}
