//! Helpers shared by the integration tests (each test file that needs
//! them declares `mod common;`).

/// The CPUs the calling thread may run on.
#[allow(dead_code)] // not every test file uses every helper
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: `set` is a zeroed cpu_set_t on the stack that the kernel fills
    // (its size is passed); CPU_ISSET only reads inside it, below
    // CPU_SETSIZE.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        assert_eq!(
            libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set),
            0,
            "sched_getaffinity"
        );
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

/// Spins (holding the caller's thread, so a task calling it holds its shard
/// in one long poll) until `release` is set; false if `limit` ran out
/// first, so a broken runtime fails a test instead of hanging it.
#[allow(dead_code)] // not every test file uses every helper
pub fn spin_until(release: &std::sync::atomic::AtomicBool, limit: std::time::Duration) -> bool {
    let give_up = std::time::Instant::now() + limit;
    while !release.load(std::sync::atomic::Ordering::SeqCst) {
        if std::time::Instant::now() > give_up {
            return false;
        }
        std::hint::spin_loop();
    }
    true
}

/// Yields the calling thread until `flag` is set; panics after 20 s (a
/// hang, not a slow machine), so a broken runtime fails the test instead
/// of hanging CI.
#[allow(dead_code)] // not every test file uses every helper
pub fn wait_for(flag: &std::sync::atomic::AtomicBool) {
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !flag.load(std::sync::atomic::Ordering::SeqCst) {
        assert!(
            std::time::Instant::now() < give_up,
            "the flag was never set (20 s)"
        );
        std::thread::yield_now();
    }
}

/// Yields the calling thread until `cond` holds; panics naming `what`
/// after 20 s (a hang, not a slow machine).
#[allow(dead_code)] // not every test file uses every helper
pub fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !cond() {
        assert!(
            std::time::Instant::now() < give_up,
            "waited 20 s for: {what}"
        );
        std::thread::yield_now();
    }
}

/// Drops `rt` on another thread; true if the drop returned within a
/// generous bound (a hang is the failure this guards against).
#[allow(dead_code)] // not every test file uses every helper
pub fn drops_in_time(rt: spargio_rt::Runtime) -> bool {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(rt);
        let _ = tx.send(());
    });
    rx.recv_timeout(std::time::Duration::from_secs(20)).is_ok()
}

/// Open fds of this process that point at `target` (a canonical path).
#[allow(dead_code)] // not every test file uses every helper
pub fn fds_on(target: &std::path::Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|l| l == target)
        .count()
}

/// A path under the system temp dir that no other test in this process
/// uses: `spargio-{prefix}-{name}-{pid}-{n}`. Nothing is created there.
#[allow(dead_code)] // not every test file uses every helper
pub fn unique_temp_path(prefix: &str, name: &str) -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "spargio-{prefix}-{name}-{}-{n}",
        std::process::id()
    ))
}

/// Waits, in a task, until `cond` holds; panics naming `what` if it does
/// not within 20 s (a hang, not a slow machine).
#[allow(dead_code)] // not every test file uses every helper
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let by = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !cond() {
        assert!(std::time::Instant::now() < by, "never happened: {what}");
        spargio_rt::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

/// [`eventually`] for a plain thread: sleeps between looks.
#[allow(dead_code)] // not every test file uses every helper
pub fn eventually_blocking(what: &str, mut cond: impl FnMut() -> bool) {
    let by = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !cond() {
        assert!(std::time::Instant::now() < by, "never happened: {what}");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// A connected TCP pair on the loopback: (client, server).
#[allow(dead_code)] // not every test file uses every helper
pub async fn tcp_pair() -> (spargio_rt::net::TcpStream, spargio_rt::net::TcpStream) {
    let listener = spargio_rt::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap();
    let client = spargio_rt::net::TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (client, server)
}

/// Long enough that only a hang reaches it.
#[allow(dead_code)] // not every test file uses every helper
pub const HANG: std::time::Duration = std::time::Duration::from_secs(20);

/// Time for a shard to reap a completion nobody polls for.
#[allow(dead_code)] // not every test file uses every helper
pub const SETTLE: std::time::Duration = std::time::Duration::from_millis(50);

/// Polls `fut` once (which submits its op, with nothing for it yet) and
/// hands it back unfinished.
#[allow(dead_code)] // not every test file uses every helper
pub async fn submitted<F: std::future::Future + Unpin>(mut fut: F) -> F {
    std::future::poll_fn(|cx| {
        assert!(
            std::pin::Pin::new(&mut fut).poll(cx).is_pending(),
            "nothing has arrived for it yet"
        );
        std::task::Poll::Ready(())
    })
    .await;
    fut
}
