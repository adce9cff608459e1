//! The process-wide side of signal handling: the `sigaction` handler, the
//! per-signal delivery counters it bumps, the eventfd it kicks, and the
//! list of listeners to wake when a kick is read.
//!
//! The handler is async-signal-safe: it touches only atomics and calls
//! `write(2)`, saving and restoring `errno` around it. A handler someone
//! else installed before ours (another runtime's, a C library's) is kept
//! and called after ours, so both see every delivery.

use std::ffi::c_void;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::task::Waker;

use crate::io::fd::SharedFd;

/// Signal numbers are 1..=64 on Linux.
const SLOTS: usize = 65;

/// How many times each signal has been delivered since its handler was
/// installed.
static DELIVERIES: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];

/// The handler each signal had before ours went in, as its address (0:
/// none to call: the default action, ignore, or nothing recorded yet).
static PREVIOUS: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];

/// Whether that previous handler takes `(signum, info, context)`
/// (`SA_SIGINFO`) rather than `(signum)`.
static PREVIOUS_SIGINFO: [AtomicBool; SLOTS] = [const { AtomicBool::new(false) }; SLOTS];

/// The eventfd the handler writes to (-1 until it exists).
static KICK_FD: AtomicI32 = AtomicI32::new(-1);

/// Registration state: the eventfd and which handlers are installed.
static STATE: Mutex<Option<State>> = Mutex::new(None);

/// Listeners waiting for any delivery, by listener id.
static WAKERS: Mutex<Vec<(u64, Waker)>> = Mutex::new(Vec::new());

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

struct State {
    kick: SharedFd,
    installed: [bool; SLOTS],
}

/// Whether `signum` may be listened for: a standard signal other than
/// those that cannot be caught or whose default action must not be
/// replaced (faults), or a real-time signal the C library leaves to users.
fn allowed(signum: i32) -> bool {
    const FORBIDDEN: [i32; 6] = [
        libc::SIGKILL,
        libc::SIGSTOP,
        libc::SIGSEGV,
        libc::SIGBUS,
        libc::SIGILL,
        libc::SIGFPE,
    ];
    let standard = (1..32).contains(&signum) && !FORBIDDEN.contains(&signum);
    let realtime = (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&signum);
    (standard || realtime) && (signum as usize) < SLOTS
}

/// Installs the handler for `signum` (once per process) and returns the
/// eventfd to read kicks from.
pub(crate) fn register(signum: i32) -> io::Result<SharedFd> {
    if !allowed(signum) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("spargio: signal {signum} cannot be listened for"),
        ));
    }
    let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
    if state.is_none() {
        // SAFETY: plain syscall; returns a new fd or -1. Blocking (no
        // EFD_NONBLOCK) so that ring reads wait in the kernel; the
        // handler's write cannot block (the counter never nears 2^64).
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel just returned this fd; nobody else owns it.
        let kick = SharedFd::new(unsafe { OwnedFd::from_raw_fd(fd) });
        // Never closed from now on: the `State` lives for the process.
        KICK_FD.store(fd, Ordering::Release);
        *state = Some(State {
            kick,
            installed: [false; SLOTS],
        });
    }
    let st = state.as_mut().expect("state initialised above");
    if !st.installed[signum as usize] {
        install(signum)?;
        st.installed[signum as usize] = true;
    }
    Ok(st.kick.clone())
}

/// The type of our handler (`SA_SIGINFO` flavour).
type InfoHandler = extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut c_void);

/// Our handler's address, as `sigaction` reports it.
fn our_handler() -> libc::sighandler_t {
    handler as InfoHandler as libc::sighandler_t
}

/// Installs our handler for `signum`, recording the one it replaces so
/// that ours calls it after its own work.
fn install(signum: i32) -> io::Result<()> {
    // The current action is read and recorded before ours goes in, so a
    // delivery right after the swap already finds it; what the swap
    // itself reports replacing is recorded again, in case another thread
    // changed the action in between.
    // SAFETY: sigaction is plain old data; all-zero is a valid start.
    let mut before: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new-action pointer only reads the current action
    // into `before`, a valid out-pointer.
    if unsafe { libc::sigaction(signum, std::ptr::null(), &mut before) } < 0 {
        return Err(io::Error::last_os_error());
    }
    remember_previous(signum, &before);
    // SAFETY: sigaction is plain old data; all-zero is a valid start.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = our_handler();
    action.sa_flags = libc::SA_RESTART | libc::SA_ONSTACK | libc::SA_SIGINFO;
    // SAFETY: `sa_mask` is a valid sigset_t to initialise.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    // SAFETY: sigaction is plain old data; all-zero is a valid start.
    let mut replaced: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: `action` is fully initialised; the handler is async-signal-
    // safe; `replaced` is a valid out-pointer.
    if unsafe { libc::sigaction(signum, &action, &mut replaced) } < 0 {
        return Err(io::Error::last_os_error());
    }
    remember_previous(signum, &replaced);
    Ok(())
}

/// Records `old` as the handler to call after ours for `signum`, unless
/// it is a disposition rather than a function (default, ignore) or ours.
fn remember_previous(signum: i32, old: &libc::sigaction) {
    let address = old.sa_sigaction;
    let callable = address != libc::SIG_DFL && address != libc::SIG_IGN && address != our_handler();
    let slot = signum as usize;
    // The flavour is stored first: a handler that loads the new address
    // (both `SeqCst`) also sees the flavour that goes with it.
    PREVIOUS_SIGINFO[slot].store(old.sa_flags & libc::SA_SIGINFO != 0, Ordering::SeqCst);
    PREVIOUS[slot].store(if callable { address } else { 0 }, Ordering::SeqCst);
}

/// The signal handler: count the delivery, kick the eventfd, then call
/// the handler ours replaced, if there was one.
extern "C" fn handler(signum: libc::c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    // SAFETY: `__errno_location` returns this thread's errno slot; the
    // handler saves it and puts it back so the interrupted code never sees
    // the `write`'s errno.
    let errno = unsafe { libc::__errno_location() };
    // SAFETY: as above, the slot is valid for this thread.
    let saved = unsafe { *errno };
    if let Some(count) = DELIVERIES.get(signum as usize) {
        count.fetch_add(1, Ordering::SeqCst);
    }
    let fd = KICK_FD.load(Ordering::Acquire);
    if fd >= 0 {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live local to an eventfd that is
        // never closed; `write` is async-signal-safe.
        unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
    }
    // SAFETY: as above.
    unsafe { *errno = saved };
    call_previous(signum, info, context);
}

/// Calls the handler `signum` had before ours, the way it was installed
/// to be called (it sees the same `errno` as ours did).
fn call_previous(signum: libc::c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    let Some(slot) = usize::try_from(signum).ok().filter(|&s| s < SLOTS) else {
        return;
    };
    let address = PREVIOUS[slot].load(Ordering::SeqCst);
    if address == 0 {
        return;
    }
    if PREVIOUS_SIGINFO[slot].load(Ordering::SeqCst) {
        // SAFETY: `address` came from a `sigaction` whose flags had
        // `SA_SIGINFO`, so it is a three-argument handler, and it is not
        // `SIG_DFL`/`SIG_IGN` (0, 1); it gets the kernel's own `info` and
        // `context` for this delivery.
        let previous: InfoHandler = unsafe { std::mem::transmute::<usize, InfoHandler>(address) };
        previous(signum, info, context);
    } else {
        // SAFETY: `address` came from a `sigaction` without `SA_SIGINFO`
        // and is neither `SIG_DFL` nor `SIG_IGN`: a one-argument handler.
        let previous: extern "C" fn(libc::c_int) =
            unsafe { std::mem::transmute::<usize, extern "C" fn(libc::c_int)>(address) };
        previous(signum);
    }
}

/// How many times `signum` has been delivered.
pub(crate) fn deliveries(signum: i32) -> u64 {
    // Out of range: no handler can be installed for it (`register`
    // refuses it), so nothing was ever delivered.
    usize::try_from(signum)
        .ok()
        .and_then(|i| DELIVERIES.get(i))
        .map_or(0, |d| d.load(Ordering::SeqCst))
}

/// A fresh listener id.
pub(crate) fn listener_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// Records that listener `id` waits, to be woken by `waker`.
///
/// A replaced waker is dropped after the lock is released, as in
/// [`forget`]: dropping a task's last waker can drop the task's future
/// (its runtime is gone), and a `Signal` it owns would `forget` itself,
/// taking the lock again on this thread.
pub(crate) fn listen(id: u64, waker: &Waker) {
    let mut wakers = WAKERS.lock().unwrap_or_else(|e| e.into_inner());
    let _replaced = match wakers.iter_mut().find(|(i, _)| *i == id) {
        Some((_, w)) if w.will_wake(waker) => None,
        Some((_, w)) => Some(std::mem::replace(w, waker.clone())),
        None => {
            wakers.push((id, waker.clone()));
            None
        }
    };
    drop(wakers);
}

/// Removes listener `id` (it was dropped). Its waker is dropped after the
/// lock is released (see [`listen`]).
pub(crate) fn forget(id: u64) {
    let mut wakers = WAKERS.lock().unwrap_or_else(|e| e.into_inner());
    let gone = wakers
        .iter()
        .position(|(i, _)| *i == id)
        .map(|at| wakers.swap_remove(at));
    drop(wakers);
    drop(gone);
}

/// Wakes every waiting listener: a kick was read, some counter moved.
/// Each re-registers when it is polled again.
pub(crate) fn wake_all() {
    let wakers = std::mem::take(&mut *WAKERS.lock().unwrap_or_else(|e| e.into_inner()));
    for (_, w) in wakers {
        w.wake();
    }
}
