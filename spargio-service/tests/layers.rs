//! The runtime-native layers (timeout, rate limit, concurrency limit, load
//! shed) on spargio-rt, and tower's runtime-agnostic layers stacked with
//! them.
//!
//! Timing assertions are one-sided only: a timer "did not fire early" or
//! "did fire".

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures_util::future::poll_fn;
use spargio_rt::sync::CancellationToken;
use spargio_rt::time::{sleep, timeout};
use spargio_service::layers::{
    ConcurrencyLimit, ConcurrencyLimitLayer, Elapsed, LoadShed, LoadShedLayer, Overloaded, Rate,
    RateLimit, RateLimitLayer, Timeout, TimeoutLayer,
};
use spargio_service::BoxError;
use tower::{service_fn, Layer, Service, ServiceBuilder, ServiceExt};

// ---------------------------------------------------------------- helpers

/// Long enough that a test never reaches it unless something hangs.
const HANG: Duration = Duration::from_secs(10);

/// Polls `svc.poll_ready` exactly once, with the current task's waker.
async fn poll_ready_once<S: Service<R>, R>(svc: &mut S) -> Poll<Result<(), S::Error>> {
    poll_fn(|cx| Poll::Ready(svc.poll_ready(cx))).await
}

/// Polls a future once.
async fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    poll_fn(|cx| Poll::Ready(Pin::new(&mut *fut).poll(cx))).await
}

/// Counts how often a future is polled (a spinning wait polls thousands of
/// times; a timer- or event-driven one a handful).
struct CountPolls<F> {
    fut: Pin<Box<F>>,
    polls: usize,
}

impl<F> CountPolls<F> {
    fn new(fut: F) -> Self {
        CountPolls {
            fut: Box::pin(fut),
            polls: 0,
        }
    }
}

impl<F: Future> Future for CountPolls<F> {
    type Output = (F::Output, usize);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.polls += 1;
        let polls = self.polls;
        self.fut.as_mut().poll(cx).map(|out| (out, polls))
    }
}

/// A request whose response waits for `gate` to be cancelled (opened).
type Gated = (u32, CancellationToken);

/// A service whose responses wait on their request's gate.
fn gated_service() -> impl Service<
    Gated,
    Response = u32,
    Error = Infallible,
    Future = impl Future<Output = Result<u32, Infallible>> + Send,
> + Clone {
    service_fn(|(id, gate): Gated| async move {
        gate.cancelled_owned().await;
        Ok::<_, Infallible>(id)
    })
}

/// A service whose readiness the test controls.
#[derive(Clone, Default)]
struct Toggle {
    state: Arc<Mutex<ToggleState>>,
    calls: Arc<AtomicUsize>,
}

#[derive(Default)]
struct ToggleState {
    ready: bool,
    fail: bool,
    waker: Option<Waker>,
}

impl Toggle {
    fn set_ready(&self, ready: bool) {
        let mut s = self.state.lock().unwrap();
        s.ready = ready;
        if ready {
            if let Some(w) = s.waker.take() {
                w.wake();
            }
        }
    }

    fn set_failing(&self) {
        self.state.lock().unwrap().fail = true;
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Service<u32> for Toggle {
    type Response = u32;
    type Error = io::Error;
    type Future = futures_util::future::Ready<Result<u32, io::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        let mut s = self.state.lock().unwrap();
        if s.fail {
            Poll::Ready(Err(io::Error::other("toggle broke")))
        } else if s.ready {
            Poll::Ready(Ok(()))
        } else {
            s.waker = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    fn call(&mut self, req: u32) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        futures_util::future::ready(Ok(req))
    }
}

fn assert_send<T: Send>(_: &T) {}

// ---------------------------------------------------------------- timeout

#[spargio_rt::test]
async fn timeout_fires_when_the_call_runs_too_long() {
    let limit = Duration::from_millis(20);
    let svc = TimeoutLayer::new(limit).layer(service_fn(|_: ()| async {
        sleep(HANG).await;
        Ok::<_, Infallible>("late")
    }));
    let start = Instant::now();
    let err = timeout(HANG, svc.oneshot(()))
        .await
        .expect("the timeout layer must fire")
        .unwrap_err();
    assert!(start.elapsed() >= limit, "fired early");
    assert!(err.is::<Elapsed>(), "{err}");
    assert_eq!(err.to_string(), "request timed out");
}

#[spargio_rt::test]
async fn timeout_does_not_fire_for_calls_that_finish_in_time() {
    let svc = Timeout::new(
        service_fn(|x: u32| async move {
            sleep(Duration::from_millis(2)).await;
            Ok::<_, Infallible>(x + 1)
        }),
        HANG,
    );
    assert_eq!(svc.timeout(), HANG);
    assert_eq!(svc.oneshot(41).await.unwrap(), 42);
}

#[spargio_rt::test]
async fn timeout_passes_inner_errors_through_boxed() {
    let svc = Timeout::new(
        service_fn(|_: ()| async { Err::<(), _>(io::Error::other("inner failure")) }),
        HANG,
    );
    let err = svc.oneshot(()).await.unwrap_err();
    assert!(!err.is::<Elapsed>());
    assert_eq!(
        err.downcast_ref::<io::Error>().unwrap().to_string(),
        "inner failure"
    );
}

#[spargio_rt::test]
async fn timeout_drops_the_inner_future_when_it_fires() {
    struct SetOnDrop(Arc<AtomicBool>);
    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = dropped.clone();
    let svc = Timeout::new(
        service_fn(move |_: ()| {
            let guard = SetOnDrop(flag.clone());
            async move {
                let _guard = guard;
                sleep(HANG).await;
                Ok::<_, Infallible>(())
            }
        }),
        Duration::from_millis(5),
    );
    let err = svc.oneshot(()).await.unwrap_err();
    assert!(err.is::<Elapsed>());
    assert!(dropped.load(Ordering::SeqCst), "inner future still alive");
}

#[spargio_rt::test]
async fn timeout_counts_from_the_call_not_the_first_poll() {
    let limit = Duration::from_millis(10);
    let mut svc = Timeout::new(
        service_fn(|_: ()| async {
            sleep(HANG).await;
            Ok::<_, Infallible>(())
        }),
        limit,
    );
    let before = Instant::now();
    let fut = svc.ready().await.unwrap().call(());
    assert!(fut.deadline() >= before + limit);
    sleep(limit).await;
    // Past the deadline before its first poll: fails on that poll.
    let mut fut = Box::pin(fut);
    match poll_once(&mut fut).await {
        Poll::Ready(Err(e)) => assert!(e.is::<Elapsed>()),
        other => panic!(
            "expected Elapsed on the first poll, got {:?}",
            other.is_ready()
        ),
    }
}

#[spargio_rt::test]
async fn timeout_poll_ready_errors_are_boxed() {
    let toggle = Toggle::default();
    toggle.set_failing();
    let mut svc = Timeout::new(toggle, HANG);
    let err = svc.ready().await.err().expect("poll_ready error");
    assert!(err.is::<io::Error>());
}

// ---------------------------------------------------------------- rate limit

#[spargio_rt::test]
async fn rate_limit_lets_num_through_per_window_then_waits_for_the_next() {
    // What is checked inside a window holds only if the test got there
    // before the window ended: an attempt a loaded machine held up that
    // long proves nothing and is run again, with a longer window.
    for per in [300, 1_000, 3_000, 10_000].map(Duration::from_millis) {
        let echo = service_fn(|x: u32| async move { Ok::<_, Infallible>(x) });
        let mut svc = RateLimitLayer::new(3, per).layer(echo);
        assert_eq!(svc.rate(), Rate::new(3, per));

        let t0 = Instant::now();
        for i in 0..3 {
            assert!(
                poll_ready_once(&mut svc).await.is_ready(),
                "call {i} of the first window must be ready at once"
            );
            assert_eq!(svc.call(i).await.unwrap(), i);
        }
        // The fourth waits: not ready while the window lasts...
        let waits = [
            poll_ready_once(&mut svc).await.is_pending(),
            poll_ready_once(&mut svc).await.is_pending(),
        ];
        if t0.elapsed() >= per {
            continue;
        }
        assert_eq!(waits, [true, true], "ready again within the window");

        // ...and ready once it has passed, woken by a timer, not a spin.
        let (ready, polls) = timeout(HANG, CountPolls::new(svc.ready()))
            .await
            .expect("the rate limit never woke up");
        ready.unwrap();
        let second = Instant::now();
        assert!(second >= t0 + per, "window ended early");
        assert!(polls <= 5, "woke {polls} times waiting for the window");
        assert_eq!(svc.call(3).await.unwrap(), 3);

        // The second window has two more slots, then waits again.
        for i in 4..6 {
            assert!(poll_ready_once(&mut svc).await.is_ready());
            assert_eq!(svc.call(i).await.unwrap(), i);
        }
        let waits_again = poll_ready_once(&mut svc).await.is_pending();
        if second.elapsed() >= per {
            continue;
        }
        assert!(waits_again, "a fourth call in the second window");
        return;
    }
    panic!("every attempt was held up past its window");
}

#[spargio_rt::test]
async fn rate_limit_is_shared_by_clones() {
    let echo = service_fn(|x: u32| async move { Ok::<_, Infallible>(x) });
    let mut a = RateLimit::new(echo, Rate::new(2, HANG));
    let mut b = a.clone();
    let mut c = b.clone();
    assert!(poll_ready_once(&mut a).await.is_ready());
    assert_eq!(a.call(1).await.unwrap(), 1);
    assert!(poll_ready_once(&mut b).await.is_ready());
    assert_eq!(b.call(2).await.unwrap(), 2);
    // The window is used up for every clone.
    assert!(poll_ready_once(&mut c).await.is_pending());
    assert!(poll_ready_once(&mut a).await.is_pending());
}

#[spargio_rt::test]
async fn rate_limit_hands_an_unused_slot_back_when_dropped() {
    let echo = service_fn(|x: u32| async move { Ok::<_, Infallible>(x) });
    let mut a = RateLimit::new(echo, Rate::new(1, HANG));
    let mut b = a.clone();
    assert!(poll_ready_once(&mut a).await.is_ready()); // a holds the slot
    assert!(poll_ready_once(&mut b).await.is_pending());
    drop(a);
    assert!(poll_ready_once(&mut b).await.is_ready());
    assert_eq!(b.call(7).await.unwrap(), 7);
    assert!(poll_ready_once(&mut b).await.is_pending());
}

#[test]
fn rate_limit_wakes_a_waiting_clone_when_a_slot_is_handed_back() {
    // The window lasts an hour: `b` hears of the slot only if `a`'s
    // hand-back wakes it.
    spargio_rt::run(|_| async {
        let echo = service_fn(|x: u32| async move { Ok::<_, Infallible>(x) });
        let mut a = RateLimit::new(echo, Rate::new(1, Duration::from_secs(3600)));
        let mut b = a.clone();
        assert!(poll_ready_once(&mut a).await.is_ready()); // a holds the slot
        let woken = Arc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(woken.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(b.poll_ready(&mut cx).is_pending());
        drop(a);
        assert!(woken.0.load(Ordering::SeqCst), "b was not woken");
        assert!(b.poll_ready(&mut cx).is_ready());
        assert_eq!(b.call(7).await.unwrap(), 7);
    })
    .unwrap();
}

#[test]
fn rate_limit_clones_dropped_while_waiting_keep_no_waker_nor_the_hand_back() {
    // Services shed while the window is used up (a connection that gives
    // up and closes) must not stay listed: their wakers would keep their
    // tasks alive for the rest of the window, and a slot handed back would
    // wake one of them instead of the service still waiting.
    spargio_rt::run(|_| async {
        let echo = service_fn(|x: u32| async move { Ok::<_, Infallible>(x) });
        let mut a = RateLimit::new(echo, Rate::new(1, Duration::from_secs(3600)));
        assert!(poll_ready_once(&mut a).await.is_ready()); // a holds the slot
        let waiting = Arc::new(Flag(AtomicBool::new(false)));
        let waiting_waker = Waker::from(waiting.clone());
        let mut b = a.clone();
        assert!(b
            .poll_ready(&mut Context::from_waker(&waiting_waker))
            .is_pending());
        let gone: Vec<_> = (0..100)
            .map(|_| {
                let flag = Arc::new(Flag(AtomicBool::new(false)));
                let mut shed = a.clone();
                let waker = Waker::from(flag.clone());
                assert!(shed
                    .poll_ready(&mut Context::from_waker(&waker))
                    .is_pending());
                flag
            })
            .collect();
        assert!(
            gone.iter().all(|flag| Arc::strong_count(flag) == 1),
            "a dropped service's waker is still held"
        );
        drop(a);
        assert!(
            waiting.0.load(Ordering::SeqCst),
            "the waiting service missed the slot handed back"
        );
        assert!(b
            .poll_ready(&mut Context::from_waker(&waiting_waker))
            .is_ready());
        assert_eq!(b.call(7).await.unwrap(), 7);
    })
    .unwrap();
}

#[test]
fn rate_limit_hand_back_goes_on_when_the_woken_clone_is_dropped() {
    // `b` is woken for the slot `a` hands back, but goes away (its
    // connection closed) before it takes it: `c`, waiting behind it, must
    // hear of the slot instead of sleeping out the hour-long window.
    spargio_rt::run(|_| async {
        let echo = service_fn(|x: u32| async move { Ok::<_, Infallible>(x) });
        let mut a = RateLimit::new(echo, Rate::new(1, Duration::from_secs(3600)));
        assert!(poll_ready_once(&mut a).await.is_ready());
        let (fb, fc) = (
            Arc::new(Flag(AtomicBool::new(false))),
            Arc::new(Flag(AtomicBool::new(false))),
        );
        let (wb, wc) = (Waker::from(fb.clone()), Waker::from(fc.clone()));
        let (mut b, mut c) = (a.clone(), a.clone());
        assert!(b.poll_ready(&mut Context::from_waker(&wb)).is_pending());
        assert!(c.poll_ready(&mut Context::from_waker(&wc)).is_pending());
        drop(a);
        assert!(fb.0.load(Ordering::SeqCst), "b was not woken");
        assert!(!fc.0.load(Ordering::SeqCst), "one slot woke two waiters");
        drop(b);
        assert!(fc.0.load(Ordering::SeqCst), "c sleeps with a slot free");
        assert!(c.poll_ready(&mut Context::from_waker(&wc)).is_ready());
        assert_eq!(c.call(9).await.unwrap(), 9);
    })
    .unwrap();
}

#[test]
fn rate_limit_a_woken_clone_beaten_to_the_slot_keeps_its_place() {
    spargio_rt::run(|_| async {
        let echo = service_fn(|x: u32| async move { Ok::<_, Infallible>(x) });
        let mut a = RateLimit::new(echo, Rate::new(1, Duration::from_secs(3600)));
        assert!(poll_ready_once(&mut a).await.is_ready());
        let flags: Vec<_> = (0..2)
            .map(|_| Arc::new(Flag(AtomicBool::new(false))))
            .collect();
        let wakers: Vec<_> = flags.iter().map(|f| Waker::from(f.clone())).collect();
        let (mut b, mut c) = (a.clone(), a.clone());
        let mut late = a.clone();
        assert!(b
            .poll_ready(&mut Context::from_waker(&wakers[0]))
            .is_pending());
        assert!(c
            .poll_ready(&mut Context::from_waker(&wakers[1]))
            .is_pending());
        drop(a); // wakes b
                 // A clone that was not waiting takes the slot first.
        assert!(poll_ready_once(&mut late).await.is_ready());
        assert!(b
            .poll_ready(&mut Context::from_waker(&wakers[0]))
            .is_pending());
        flags[0].0.store(false, Ordering::SeqCst);
        // The next slot handed back goes to b again, still ahead of c.
        drop(late);
        let woken: Vec<_> = flags.iter().map(|f| f.0.load(Ordering::SeqCst)).collect();
        assert_eq!(woken, [true, false]);
        assert!(b
            .poll_ready(&mut Context::from_waker(&wakers[0]))
            .is_ready());
        drop(c);
    })
    .unwrap();
}

/// Three clones of `svc`, each polled not ready once with a waker of its
/// own (in order: the first waits longest); with each waker's flag.
fn three_waiting<S: Service<u32> + Clone>(svc: &S) -> (Vec<Arc<Flag>>, Vec<Waker>, Vec<S>) {
    let flags: Vec<_> = (0..3)
        .map(|_| Arc::new(Flag(AtomicBool::new(false))))
        .collect();
    let wakers: Vec<_> = flags.iter().map(|f| Waker::from(f.clone())).collect();
    let mut clones: Vec<_> = (0..3).map(|_| svc.clone()).collect();
    for (svc, waker) in clones.iter_mut().zip(&wakers) {
        assert!(svc.poll_ready(&mut Context::from_waker(waker)).is_pending());
    }
    (flags, wakers, clones)
}

#[test]
fn rate_limit_hand_back_wakes_the_longest_waiting_service_first() {
    spargio_rt::run(|_| async {
        let echo = service_fn(|x: u32| async move { Ok::<_, Infallible>(x) });
        let mut a = RateLimit::new(echo, Rate::new(1, Duration::from_secs(3600)));
        assert!(poll_ready_once(&mut a).await.is_ready());
        let (flags, _wakers, _clones) = three_waiting(&a);
        drop(a);
        let woken: Vec<_> = flags.iter().map(|f| f.0.load(Ordering::SeqCst)).collect();
        assert_eq!(woken, [true, false, false]);
    })
    .unwrap();
}

#[test]
fn concurrency_limit_hands_a_released_permit_to_one_waiter_and_keeps_the_line() {
    spargio_rt::run(|_| async {
        let echo = service_fn(|x: u32| async move { Ok::<_, Infallible>(x) });
        let mut a = ConcurrencyLimit::new(echo, 1);
        assert!(poll_ready_once(&mut a).await.is_ready());
        let held = a.call(1);
        let (flags, wakers, mut clones) = three_waiting(&a);
        let woken = |flags: &[Arc<Flag>]| -> Vec<bool> {
            flags
                .iter()
                .map(|f| f.0.swap(false, Ordering::SeqCst))
                .collect()
        };
        drop(held);
        assert_eq!(woken(&flags), [true, false, false]);
        // The first in line takes the permit: nobody else is woken (there
        // is nothing for them), and the second stays next in line.
        assert!(clones[0]
            .poll_ready(&mut Context::from_waker(&wakers[0]))
            .is_ready());
        assert_eq!(
            woken(&flags),
            [false, false, false],
            "a waiter was woken for nothing"
        );
        drop(clones[0].call(2));
        assert_eq!(
            woken(&flags),
            [false, true, false],
            "the second in line lost its place"
        );
        assert!(clones[1]
            .poll_ready(&mut Context::from_waker(&wakers[1]))
            .is_ready());
    })
    .unwrap();
}

#[test]
#[should_panic(expected = "poll_ready must return Ready")]
fn rate_limit_call_without_poll_ready_panics() {
    let echo = service_fn(|x: u32| async move { Ok::<_, Infallible>(x) });
    let mut svc = RateLimit::new(echo, Rate::new(1, HANG));
    drop(svc.call(1));
}

#[test]
#[should_panic(expected = "num must be at least 1")]
fn rate_of_zero_is_rejected() {
    let _ = Rate::new(0, Duration::from_secs(1));
}

// ---------------------------------------------------------------- concurrency limit

#[test]
#[should_panic(expected = "max must be at least 1")]
fn concurrency_limit_of_zero_is_rejected() {
    let echo = service_fn(|x: u32| async move { Ok::<_, Infallible>(x) });
    let _ = ConcurrencyLimit::new(echo, 0);
}

#[test]
#[should_panic(expected = "max must be at least 1")]
fn concurrency_limit_layer_of_zero_is_rejected() {
    let _ = ConcurrencyLimitLayer::new(0);
}

#[spargio_rt::test]
async fn concurrency_limit_third_call_waits_until_one_completes() {
    let mut a = ConcurrencyLimitLayer::new(2).layer(gated_service());
    let mut b = a.clone();
    let mut c = a.clone();
    assert_eq!(a.max(), 2);
    let (gate_a, gate_b) = (CancellationToken::new(), CancellationToken::new());

    let fa = a.ready().await.unwrap().call((1, gate_a.clone()));
    let fb = b.ready().await.unwrap().call((2, gate_b.clone()));
    assert_eq!(a.available_permits(), 0);
    assert!(poll_ready_once(&mut c).await.is_pending());
    assert!(poll_ready_once(&mut c).await.is_pending());

    // The response futures are Send: run them as stealable tasks.
    assert_send(&fa);
    let ha = spargio_rt::spawn(fa);
    let hb = spargio_rt::spawn(fb);
    let waiting = CountPolls::new(c.ready());
    let opener = async {
        sleep(Duration::from_millis(5)).await;
        gate_a.cancel();
        ha.await.unwrap()
    };
    let (ready, first) = futures_util::join!(timeout(HANG, waiting), opener);
    let (ready, polls) = ready.expect("the third call was never woken");
    ready.unwrap();
    assert_eq!(first.unwrap(), 1);
    assert!(polls <= 5, "woke {polls} times waiting for a permit");
    assert!(poll_ready_once(&mut b).await.is_pending());

    let fc = c.call((3, CancellationToken::new()));
    drop(fc); // dropping an unfinished response releases its permit
    assert!(poll_ready_once(&mut b).await.is_ready());

    gate_b.cancel();
    assert_eq!(hb.await.unwrap().unwrap(), 2);
    // b holds one permit (ready, not called); the other is free.
    assert_eq!(a.available_permits(), 1);
}

#[spargio_rt::test]
async fn concurrency_limit_releases_the_permit_of_a_dropped_response() {
    let mut a = ConcurrencyLimit::new(gated_service(), 1);
    let mut b = a.clone();
    let fa = a.ready().await.unwrap().call((1, CancellationToken::new()));
    assert!(poll_ready_once(&mut b).await.is_pending());
    drop(fa);
    assert!(poll_ready_once(&mut b).await.is_ready());
}

#[spargio_rt::test]
async fn concurrency_limit_releases_the_permit_when_the_response_is_ready() {
    let echo = service_fn(|x: u32| async move { Ok::<_, Infallible>(x) });
    let mut svc = ConcurrencyLimit::new(echo, 1);
    let mut fut = Box::pin(svc.ready().await.unwrap().call(4));
    assert_eq!(svc.available_permits(), 0);
    assert_eq!(poll_once(&mut fut).await, Poll::Ready(Ok(4)));
    // The finished future is still alive, but its permit is back.
    assert_eq!(svc.available_permits(), 1);
    drop(fut);
}

#[spargio_rt::test]
async fn concurrency_limit_clones_share_the_limit_but_not_the_permit() {
    let mut a = ConcurrencyLimit::new(gated_service(), 1);
    assert!(poll_ready_once(&mut a).await.is_ready()); // a holds the permit
    let mut b = a.clone(); // ...which b does not inherit
    assert!(poll_ready_once(&mut b).await.is_pending());
    drop(a); // an unused permit goes back with its service
    assert!(poll_ready_once(&mut b).await.is_ready());
    let gate = CancellationToken::new();
    gate.cancel();
    assert_eq!(b.call((9, gate)).await.unwrap(), 9);
}

#[spargio_rt::test]
async fn concurrency_limit_passes_inner_readiness_through() {
    let toggle = Toggle::default();
    let mut svc = ConcurrencyLimit::new(toggle.clone(), 1);
    assert!(poll_ready_once(&mut svc).await.is_pending()); // inner not ready
    toggle.set_ready(true);
    assert!(poll_ready_once(&mut svc).await.is_ready());
    assert_eq!(svc.call(3).await.unwrap(), 3);
}

#[spargio_rt::test]
async fn concurrency_limit_waiting_on_its_inner_service_holds_no_permit() {
    let toggle = Toggle::default();
    let mut waiting = ConcurrencyLimit::new(toggle.clone(), 1);
    assert!(poll_ready_once(&mut waiting).await.is_pending());
    // The inner service is not ready, so the permit went back: another
    // clone over a ready service can take it.
    assert_eq!(waiting.available_permits(), 1);
    toggle.set_ready(true);
    assert!(poll_ready_once(&mut waiting).await.is_ready());
    assert_eq!(waiting.available_permits(), 0);
    assert_eq!(waiting.call(4).await.unwrap(), 4);
}

#[spargio_rt::test]
async fn rate_limit_waiting_on_its_inner_service_holds_no_slot() {
    let toggle = Toggle::default();
    let rate = Rate::new(1, Duration::from_secs(3600));
    let mut waiting = RateLimit::new(toggle.clone(), rate);
    let mut other = waiting.clone();
    assert!(poll_ready_once(&mut waiting).await.is_pending());
    // The window's one slot went back when the inner service said
    // Pending: the clone gets it.
    toggle.set_ready(true);
    assert!(poll_ready_once(&mut other).await.is_ready());
    assert_eq!(other.call(1).await.unwrap(), 1);
    // And the window is used up for the first one now.
    assert!(poll_ready_once(&mut waiting).await.is_pending());
    assert_eq!(toggle.calls(), 1);
}

#[spargio_rt::test]
async fn rate_limit_slot_from_an_ended_window_is_exchanged() {
    // Long enough that the steps meant for the second window happen in it
    // on a loaded machine too.
    let per = Duration::from_secs(1);
    let calls = Arc::new(Mutex::new(Vec::<u32>::new()));
    let log = calls.clone();
    let svc = service_fn(move |x: u32| {
        log.lock().unwrap().push(x);
        async move { Ok::<_, Infallible>(x) }
    });
    let mut early = RateLimit::new(svc, Rate::new(1, per));
    let mut late = early.clone();
    // `early` takes the first window's slot and then sits on it past the
    // window's end; `late` takes the second window's slot and calls.
    assert!(poll_ready_once(&mut early).await.is_ready());
    sleep(per + Duration::from_millis(10)).await;
    assert!(poll_ready_once(&mut late).await.is_ready());
    late.call(1).await.unwrap();
    // `early`'s old slot is not good for this window: it waits for the
    // next one instead of making a second call in this one.
    assert!(poll_ready_once(&mut early).await.is_pending());
    timeout(HANG, early.ready()).await.unwrap().unwrap();
    early.call(2).await.unwrap();
    assert_eq!(*calls.lock().unwrap(), [1, 2]);
}

#[spargio_rt::test]
async fn load_shed_over_limits_does_not_let_shed_connections_keep_the_permits() {
    // LoadShed → ConcurrencyLimit(1) → RateLimit(1 per second): when the
    // rate window is used up, the shed requests' services must not keep
    // the one permit, or every later request is shed after the window
    // reopens too.
    let echo = service_fn(|x: u32| async move { Ok::<_, Infallible>(x) });
    let base = ServiceBuilder::new()
        .layer(LoadShedLayer::new())
        .layer(ConcurrencyLimitLayer::new(1))
        .layer(RateLimitLayer::new(1, Duration::from_secs(1)))
        .service(echo);
    let mut a = base.clone();
    assert_eq!(a.ready().await.unwrap().call(1).await.unwrap(), 1);
    // Window used up: `b` is shed (and then sits idle, like a keep-alive
    // connection whose client went quiet).
    let mut b = base.clone();
    let err = b.ready().await.unwrap().call(2).await.unwrap_err();
    assert!(err.is::<Overloaded>());
    sleep(Duration::from_millis(1050)).await;
    let mut c = base.clone();
    assert_eq!(c.ready().await.unwrap().call(3).await.unwrap(), 3);
    drop(b);
}

// ---------------------------------------------------------------- load shed

#[spargio_rt::test]
async fn load_shed_rejects_with_overloaded_when_the_inner_service_is_not_ready() {
    let toggle = Toggle::default();
    let mut svc = LoadShedLayer::new().layer(toggle.clone());
    // Always ready itself...
    assert!(matches!(
        poll_ready_once(&mut svc).await,
        Poll::Ready(Ok(()))
    ));
    // ...but the call fails at once without reaching the inner service.
    let fut = svc.call(1);
    assert!(fut.is_overloaded());
    let err = fut.await.unwrap_err();
    assert!(err.is::<Overloaded>(), "{err}");
    assert_eq!(toggle.calls(), 0);
}

#[spargio_rt::test]
async fn load_shed_passes_requests_when_the_inner_service_is_ready() {
    let toggle = Toggle::default();
    toggle.set_ready(true);
    let mut svc = LoadShed::new(toggle.clone());
    let fut = svc.ready().await.unwrap().call(5);
    assert!(!fut.is_overloaded());
    assert_eq!(fut.await.unwrap(), 5);
    assert_eq!(toggle.calls(), 1);

    // Readiness is checked again for every request.
    toggle.set_ready(false);
    let err = svc.ready().await.unwrap().call(6).await.unwrap_err();
    assert!(err.is::<Overloaded>());
    toggle.set_ready(true);
    assert_eq!(svc.ready().await.unwrap().call(7).await.unwrap(), 7);
    assert_eq!(toggle.calls(), 2);
}

#[spargio_rt::test]
async fn load_shed_returns_inner_poll_ready_errors() {
    let toggle = Toggle::default();
    toggle.set_failing();
    let mut svc = LoadShed::new(toggle);
    let err = svc.ready().await.err().expect("poll_ready error");
    assert!(err.is::<io::Error>());
    assert!(!err.is::<Overloaded>());
}

#[spargio_rt::test]
async fn load_shed_over_our_concurrency_limit_sheds_the_excess() {
    let mut svc = ServiceBuilder::new()
        .layer(LoadShedLayer::new())
        .layer(ConcurrencyLimitLayer::new(1))
        .service(gated_service());
    let gate = CancellationToken::new();
    let busy = svc.ready().await.unwrap().call((1, gate.clone()));
    let err = svc
        .ready()
        .await
        .unwrap()
        .call((2, CancellationToken::new()))
        .await
        .unwrap_err();
    assert!(err.is::<Overloaded>());
    gate.cancel();
    assert_eq!(busy.await.unwrap(), 1);
    let open = CancellationToken::new();
    open.cancel();
    assert_eq!(svc.ready().await.unwrap().call((3, open)).await.unwrap(), 3);
}

// ---------------------------------------------------------------- tower interop

#[spargio_rt::test]
async fn tower_layers_stack_with_ours_on_spargio() {
    let svc = ServiceBuilder::new()
        .layer(LoadShedLayer::new())
        .layer(TimeoutLayer::new(Duration::from_secs(2)))
        .layer(tower::filter::FilterLayer::new(|s: String| {
            if s.is_empty() {
                Err::<String, BoxError>("empty request".into())
            } else {
                Ok(s)
            }
        }))
        .map_request(|s: String| s.to_uppercase())
        .map_response(|n: usize| format!("len={n}"))
        .layer(tower::limit::ConcurrencyLimitLayer::new(4))
        .layer(ConcurrencyLimitLayer::new(4))
        .layer(RateLimitLayer::new(100, Duration::from_secs(1)))
        .service_fn(|s: String| async move {
            if s == "SLOW" {
                sleep(HANG).await;
            }
            Ok::<_, Infallible>(s.len())
        });

    let fut = svc.clone().oneshot("hello".to_string());
    assert_send(&fut);
    // Stealable: the whole stack's future runs as a Send task.
    assert_eq!(spargio_rt::spawn(fut).await.unwrap().unwrap(), "len=5");

    let err = svc.clone().oneshot(String::new()).await.unwrap_err();
    assert_eq!(err.to_string(), "empty request");

    let err = svc.clone().oneshot("slow".to_string()).await.unwrap_err();
    assert!(err.is::<Elapsed>(), "{err}");
}

#[spargio_rt::test]
async fn tower_load_shed_and_concurrency_limit_work_on_spargio() {
    let mut svc = ServiceBuilder::new()
        .layer(tower::load_shed::LoadShedLayer::new())
        .layer(tower::limit::ConcurrencyLimitLayer::new(1))
        .layer(TimeoutLayer::new(HANG))
        .service(gated_service());
    let gate = CancellationToken::new();
    let busy = svc.ready().await.unwrap().call((1, gate.clone()));
    let err = svc
        .ready()
        .await
        .unwrap()
        .call((2, CancellationToken::new()))
        .await
        .unwrap_err();
    assert!(err.is::<tower::load_shed::error::Overloaded>(), "{err}");
    // tower's semaphore wakes the waiter on spargio like any other waker.
    let busy = spargio_rt::spawn(busy);
    gate.cancel();
    assert_eq!(busy.await.unwrap().unwrap(), 1);
    let open = CancellationToken::new();
    open.cancel();
    assert_eq!(svc.ready().await.unwrap().call((3, open)).await.unwrap(), 3);
}

#[spargio_rt::test]
async fn tower_buffer_runs_with_its_worker_spawned_on_spargio() {
    let inner = ServiceBuilder::new()
        .layer(TimeoutLayer::new(HANG))
        .layer(ConcurrencyLimitLayer::new(2))
        .layer(RateLimitLayer::new(1000, Duration::from_secs(1)))
        .service_fn(|x: u64| async move {
            sleep(Duration::from_micros(100)).await;
            Ok::<_, Infallible>(x * 2)
        });
    let (buffer, worker) = tower::buffer::Buffer::pair(inner, 16);
    let worker = spargio_rt::spawn(worker);
    let mut tasks = Vec::new();
    for i in 0..16u64 {
        let svc = buffer.clone();
        tasks.push(spargio_rt::spawn(async move { svc.oneshot(i).await }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        assert_eq!(t.await.unwrap().unwrap(), i as u64 * 2);
    }
    drop(buffer);
    worker.await.unwrap(); // the worker ends once every handle is gone
}

// ---------------------------------------------------------------- Send / Clone

#[test]
fn services_and_futures_are_send_and_clone() {
    fn send_sync_clone<T: Send + Sync + Clone>() {}
    fn send<T: Send>() {}
    type Inner = tower::util::BoxCloneSyncService<u32, u32, BoxError>;
    type F = <Inner as Service<u32>>::Future;
    send_sync_clone::<Timeout<Inner>>();
    send_sync_clone::<RateLimit<Inner>>();
    send_sync_clone::<ConcurrencyLimit<Inner>>();
    send_sync_clone::<LoadShed<Inner>>();
    send::<spargio_service::layers::TimeoutFuture<F>>();
    send::<spargio_service::layers::ConcurrencyLimitFuture<F>>();
    send::<spargio_service::layers::LoadShedFuture<F>>();
    send_sync_clone::<TimeoutLayer>();
    send_sync_clone::<RateLimitLayer>();
    send_sync_clone::<ConcurrencyLimitLayer>();
    send_sync_clone::<LoadShedLayer>();
}

#[test]
fn errors_display_and_are_errors() {
    fn error<E: std::error::Error + Send + Sync + 'static>(e: E) -> String {
        e.to_string()
    }
    assert_eq!(error(Elapsed::new()), "request timed out");
    assert_eq!(error(Overloaded::new()), "service overloaded");
    let io: io::Error = Elapsed::new().into();
    assert_eq!(io.kind(), io::ErrorKind::TimedOut);
}

/// A waker that records that it was woken.
struct Flag(AtomicBool);

impl std::task::Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[spargio_rt::test]
async fn concurrency_limit_a_waiter_that_gave_up_does_not_swallow_every_later_wake_up() {
    let mut a = ConcurrencyLimit::new(gated_service(), 2);
    let mut b = a.clone();
    let mut quitter = a.clone();
    let mut waiter = a.clone();
    let fa = a.ready().await.unwrap().call((1, CancellationToken::new()));
    let fb = b.ready().await.unwrap().call((2, CancellationToken::new()));
    // Both wait; `quitter`'s caller then gives up on it (a shed request)
    // but keeps the service, as a connection keeps its clone.
    let quitter_woken = Arc::new(Flag(AtomicBool::new(false)));
    let waiter_woken = Arc::new(Flag(AtomicBool::new(false)));
    let quitter_waker = Waker::from(quitter_woken.clone());
    let waiter_waker = Waker::from(waiter_woken.clone());
    assert!(quitter
        .poll_ready(&mut Context::from_waker(&quitter_waker))
        .is_pending());
    assert!(waiter
        .poll_ready(&mut Context::from_waker(&waiter_waker))
        .is_pending());
    // Two permits come back. Whoever the first wakes, the second must
    // wake the other: the quitter never comes back to take its turn.
    drop(fa);
    drop(fb);
    assert!(
        waiter_woken.0.load(Ordering::SeqCst),
        "the waiting caller was never woken although both permits are free"
    );
    assert!(waiter
        .poll_ready(&mut Context::from_waker(&waiter_waker))
        .is_ready());
    drop(quitter);
}
