//! `spargio_rt::signal`. Every test body runs in a fresh copy of this test
//! binary (re-executed with `--exact <name>`), so a signal that is handled
//! the default way by mistake kills that copy, not the test harness, and
//! tests cannot see each other's signals.

use futures_util::poll;
use spargio_rt::signal::{ctrl_c, signal, SignalKind};
use spargio_rt::Runtime;

const CHILD_ENV: &str = "SPARGIO_SIGNAL_TEST";

/// Runs `body` in a child copy of this binary; passes if it passed there.
fn isolated(name: &str, body: impl FnOnce()) {
    if std::env::var(CHILD_ENV).as_deref() == Ok(name) {
        body();
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--test-threads=1", "--nocapture"])
        .env(CHILD_ENV, name)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child test {name} failed: {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn run<F, Fut, T>(f: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + 'static,
    T: Send + 'static,
{
    spargio_rt::run_with(Runtime::builder().shards(2), move |_| f()).unwrap()
}

fn kill_self(sig: i32) {
    // SAFETY: sends a signal to this process; plain syscall.
    assert_eq!(unsafe { libc::kill(libc::getpid(), sig) }, 0);
}

fn raise(sig: i32) {
    // SAFETY: sends a signal to this thread; the handler has run when
    // `raise` returns.
    assert_eq!(unsafe { libc::raise(sig) }, 0);
}

#[test]
fn ctrl_c_resolves_after_sigint() {
    isolated("ctrl_c_resolves_after_sigint", || {
        run(|| async {
            let c = ctrl_c();
            kill_self(libc::SIGINT);
            c.await.unwrap();
        })
    });
}

#[test]
fn ctrl_c_registered_before_its_first_poll() {
    isolated("ctrl_c_registered_before_its_first_poll", || {
        run(|| async {
            let c = ctrl_c();
            // Delivered (to the handler) before the future is polled.
            raise(libc::SIGINT);
            c.await.unwrap();
        })
    });
}

#[test]
fn sigusr1_delivered_twice_gives_two_recvs() {
    isolated("sigusr1_delivered_twice_gives_two_recvs", || {
        run(|| async {
            let mut s = signal(SignalKind::user_defined1()).unwrap();
            kill_self(libc::SIGUSR1);
            assert_eq!(s.recv().await, Some(()));
            kill_self(libc::SIGUSR1);
            assert_eq!(s.recv().await, Some(()));
        })
    });
}

#[test]
fn deliveries_before_recv_are_each_reported() {
    isolated("deliveries_before_recv_are_each_reported", || {
        run(|| async {
            let mut s = signal(SignalKind::user_defined1()).unwrap();
            raise(libc::SIGUSR1);
            raise(libc::SIGUSR1);
            assert_eq!(s.recv().await, Some(()));
            assert_eq!(s.recv().await, Some(()));
            // Nothing more was delivered.
            assert!(poll!(Box::pin(s.recv())).is_pending());
        })
    });
}

#[test]
fn every_listener_sees_every_delivery() {
    isolated("every_listener_sees_every_delivery", || {
        run(|| async {
            let mut a = signal(SignalKind::user_defined2()).unwrap();
            let mut b = signal(SignalKind::user_defined2()).unwrap();
            let waiter = spargio_rt::spawn(async move {
                a.recv().await.unwrap();
                a.recv().await.unwrap();
            });
            for _ in 0..2 {
                kill_self(libc::SIGUSR2);
                assert_eq!(b.recv().await, Some(()));
            }
            waiter.await.unwrap();
        })
    });
}

#[test]
fn a_listener_made_later_misses_earlier_deliveries() {
    isolated("a_listener_made_later_misses_earlier_deliveries", || {
        run(|| async {
            let _first = signal(SignalKind::hangup()).unwrap();
            raise(libc::SIGHUP);
            let mut late = signal(SignalKind::hangup()).unwrap();
            assert!(poll!(Box::pin(late.recv())).is_pending());
            raise(libc::SIGHUP);
            assert_eq!(late.recv().await, Some(()));
        })
    });
}

#[test]
fn a_dropped_recv_loses_nothing() {
    isolated("a_dropped_recv_loses_nothing", || {
        run(|| async {
            let mut s = signal(SignalKind::terminate()).unwrap();
            let mut other = signal(SignalKind::terminate()).unwrap();
            let other_waits = spargio_rt::spawn(async move { other.recv().await });
            {
                // A recv whose eventfd read is in flight, then dropped.
                let mut r = Box::pin(s.recv());
                assert!(poll!(&mut r).is_pending());
            }
            kill_self(libc::SIGTERM);
            assert_eq!(s.recv().await, Some(()));
            assert_eq!(other_waits.await.unwrap(), Some(()));
        })
    });
}

#[test]
fn a_delivery_of_one_signal_does_not_complete_another() {
    isolated("a_delivery_of_one_signal_does_not_complete_another", || {
        run(|| async {
            let mut usr1 = signal(SignalKind::user_defined1()).unwrap();
            let mut usr2 = signal(SignalKind::user_defined2()).unwrap();
            let mut usr2_probe = signal(SignalKind::user_defined2()).unwrap();
            let usr2_waits = spargio_rt::spawn(async move { usr2.recv().await });
            kill_self(libc::SIGUSR1);
            assert_eq!(usr1.recv().await, Some(()));
            // Looked at now, with USR1 delivered: no USR2 is there (this
            // poll reads the delivery counts; the waiting task may be woken
            // by the kick any time, so it is checked at its end only).
            let probed = poll!(futures_util::future::poll_fn(|cx| usr2_probe.poll_recv(cx)));
            assert!(probed.is_pending(), "USR1 counted as a USR2");
            assert!(!usr2_waits.is_finished());
            kill_self(libc::SIGUSR2);
            assert_eq!(usr2_waits.await.unwrap(), Some(()));
        })
    });
}

#[test]
fn sigchld_arrives_when_a_child_exits() {
    isolated("sigchld_arrives_when_a_child_exits", || {
        run(|| async {
            let mut s = signal(SignalKind::child()).unwrap();
            let status = spargio_rt::process::Command::new("true")
                .status()
                .await
                .unwrap();
            assert!(status.success());
            assert_eq!(s.recv().await, Some(()));
        })
    });
}

#[test]
fn a_listener_polled_once_and_left_holds_nobody_up() {
    isolated("a_listener_polled_once_and_left_holds_nobody_up", || {
        run(|| async {
            let mut idle = signal(SignalKind::user_defined1()).unwrap();
            let mut other = signal(SignalKind::user_defined2()).unwrap();
            // `idle` keeps an eventfd read in flight and is never polled
            // again; it may take the kick for SIGUSR2.
            let first = poll!(futures_util::future::poll_fn(|cx| idle.poll_recv(cx)));
            assert!(first.is_pending());
            let waiter = spargio_rt::spawn(async move { other.recv().await });
            kill_self(libc::SIGUSR2);
            assert_eq!(waiter.await.unwrap(), Some(()));
            idle.stop();
        })
    });
}

#[test]
fn signal_is_a_stream() {
    use futures_util::StreamExt;
    isolated("signal_is_a_stream", || {
        run(|| async {
            let mut s = signal(SignalKind::from_raw(libc::SIGRTMIN() + 1)).unwrap();
            raise(libc::SIGRTMIN() + 1);
            raise(libc::SIGRTMIN() + 1);
            assert_eq!(s.next().await, Some(()));
            assert_eq!(s.next().await, Some(()));
        })
    });
}

#[test]
fn uncatchable_and_invalid_signals_are_refused() {
    for sig in [
        libc::SIGKILL,
        libc::SIGSTOP,
        libc::SIGSEGV,
        0,
        -1,
        32,
        65,
        1000,
    ] {
        let err = signal(SignalKind::from_raw(sig)).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "signal {sig}");
    }
}

#[test]
fn signal_and_ctrl_c_futures_are_send() {
    fn send<T: Send + 'static>(_: &T) {}
    isolated("signal_and_ctrl_c_futures_are_send", || {
        let c = ctrl_c();
        send(&c);
        let s = signal(SignalKind::user_defined1()).unwrap();
        send(&s);
    });
}

static EARLIER_PLAIN_CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static EARLIER_INFO_CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

extern "C" fn earlier_plain(sig: libc::c_int) {
    if sig == libc::SIGUSR1 {
        EARLIER_PLAIN_CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

extern "C" fn earlier_info(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    if sig == libc::SIGUSR2 && !info.is_null() && unsafe { (*info).si_signo } == libc::SIGUSR2 {
        EARLIER_INFO_CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Installs `handler` for `sig` the way a library other than spargio
/// would, before spargio listens for it.
fn install_earlier(sig: i32, handler: libc::sighandler_t, siginfo: bool) {
    // SAFETY: sigaction is plain old data; all-zero is a valid start.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = handler;
    action.sa_flags = if siginfo { libc::SA_SIGINFO } else { 0 };
    // SAFETY: `action` is initialised; the handlers only touch atomics.
    assert_eq!(
        unsafe { libc::sigaction(sig, &action, std::ptr::null_mut()) },
        0
    );
}

#[test]
fn a_handler_installed_earlier_still_runs() {
    use std::sync::atomic::Ordering::SeqCst;
    isolated("a_handler_installed_earlier_still_runs", || {
        install_earlier(
            libc::SIGUSR1,
            earlier_plain as extern "C" fn(libc::c_int) as libc::sighandler_t,
            false,
        );
        install_earlier(
            libc::SIGUSR2,
            earlier_info as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void)
                as libc::sighandler_t,
            true,
        );
        run(|| async {
            let mut usr1 = signal(SignalKind::user_defined1()).unwrap();
            let mut usr2 = signal(SignalKind::user_defined2()).unwrap();
            raise(libc::SIGUSR1);
            assert_eq!(usr1.recv().await, Some(()));
            raise(libc::SIGUSR2);
            raise(libc::SIGUSR2);
            assert_eq!(usr2.recv().await, Some(()));
            assert_eq!(usr2.recv().await, Some(()));
        });
        assert_eq!(EARLIER_PLAIN_CALLS.load(SeqCst), 1);
        assert_eq!(EARLIER_INFO_CALLS.load(SeqCst), 2);
    });
}

#[test]
fn ctrl_c_awaited_off_the_runtime_says_so() {
    isolated("ctrl_c_awaited_off_the_runtime_says_so", || {
        let mut c = Box::pin(ctrl_c());
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let err = match std::future::Future::poll(c.as_mut(), &mut cx) {
            std::task::Poll::Ready(r) => r.unwrap_err(),
            std::task::Poll::Pending => panic!("pending off the runtime"),
        };
        let msg = err.to_string();
        assert!(msg.contains("outside a spargio runtime"), "{msg}");
    });
}
