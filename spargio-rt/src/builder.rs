//! `RuntimeBuilder`: shard count, ring size, threads and steal policy.

use std::io;
use std::time::Duration;

use crate::runtime::Runtime;

/// Which CPUs shard threads are bound to.
///
/// `true` binds shard `i` to the `i % n`th of the `n` CPUs the building
/// thread may use; `false` leaves placement to the kernel; a list binds
/// shard `i` to `list[i % list.len()]`.
///
/// ```
/// use spargio_rt::ThreadAffinity;
/// assert_eq!(ThreadAffinity::from(false), ThreadAffinity::None);
/// assert_eq!(ThreadAffinity::from(vec![0, 1]), ThreadAffinity::Cpus(vec![0, 1]));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum ThreadAffinity {
    /// No binding (the default).
    #[default]
    None,
    /// Shard `i` runs on the `i % n`th of the `n` CPUs the building
    /// thread may run on (its affinity mask: in a container or under
    /// `taskset`, not necessarily CPUs `0..n`).
    PerShard,
    /// Shard `i` runs on `cpus[i % cpus.len()]`.
    Cpus(Vec<usize>),
}

impl From<bool> for ThreadAffinity {
    fn from(on: bool) -> Self {
        if on {
            ThreadAffinity::PerShard
        } else {
            ThreadAffinity::None
        }
    }
}

impl From<Vec<usize>> for ThreadAffinity {
    fn from(cpus: Vec<usize>) -> Self {
        ThreadAffinity::Cpus(cpus)
    }
}

impl From<&[usize]> for ThreadAffinity {
    fn from(cpus: &[usize]) -> Self {
        ThreadAffinity::Cpus(cpus.to_vec())
    }
}

/// How shards share stealable work.
///
/// ```
/// use spargio_rt::StealPolicy;
/// let p = StealPolicy { batch: 8, ..StealPolicy::default() };
/// assert!(p.enabled);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StealPolicy {
    /// Whether idle shards steal from busy ones (default `true`).
    pub enabled: bool,
    /// At most this many tasks move in one steal (default 32; half the
    /// victim's queue is taken when it holds fewer; at least 1).
    pub batch: usize,
    /// At most this many polls in a row come from the LIFO slot before the
    /// shard goes back to its queue (default 3), so two tasks that keep waking
    /// each other cannot starve the rest.
    pub lifo_cap: usize,
    /// Whether a new stealable task goes to the least loaded shard at spawn
    /// time (default `true`; one poll hands at most one spawn to each other
    /// shard this way, and leaves the rest of a burst to stealing, which
    /// moves a batch per steal), or to an idle shard when the spawning shard
    /// is busy with other queued tasks; when `false` it starts on the
    /// spawning shard.
    pub placement_balancing: bool,
    /// A shard with a single queued stealable task is robbed only once it
    /// has been inside one poll for this long (default 20 µs): a shard about
    /// to finish its poll keeps its task, and its ring. A shard with two or
    /// more queued is robbed at once. `Duration::MAX` never robs a single
    /// task.
    pub min_victim_busy: Duration,
}

impl Default for StealPolicy {
    fn default() -> Self {
        StealPolicy {
            enabled: true,
            batch: 32,
            lifo_cap: 3,
            placement_balancing: true,
            min_victim_busy: Duration::from_micros(20),
        }
    }
}

/// Builds a [`Runtime`].
///
/// ```
/// use spargio_rt::Runtime;
/// let rt = Runtime::builder()
///     .shards(2)
///     .ring_entries(256)
///     .thread_name("api")
///     .build()
///     .expect("io_uring available");
/// assert_eq!(rt.handle().shard_count(), 2);
/// ```
#[derive(Clone, Debug)]
pub struct RuntimeBuilder {
    /// `None`: one shard per available CPU, looked up when the runtime is
    /// built (reading the cgroup quota is not free, and most builders set
    /// a count).
    pub(crate) shards: Option<usize>,
    pub(crate) ring_entries: u32,
    pub(crate) thread_name: String,
    pub(crate) affinity: ThreadAffinity,
    pub(crate) steal: StealPolicy,
    pub(crate) task_budget: usize,
    pub(crate) defer_taskrun: bool,
    pub(crate) park_spin: Duration,
    pub(crate) busy_yield: Duration,
    pub(crate) max_blocking_threads: usize,
    pub(crate) blocking_keep_alive: Duration,
    /// `None`: one background thread per shard.
    pub(crate) background_threads: Option<usize>,
    pub(crate) background_nice: i32,
    pub(crate) max_ops_in_flight: usize,
}

impl Default for RuntimeBuilder {
    fn default() -> Self {
        RuntimeBuilder {
            shards: None,
            ring_entries: 256,
            thread_name: "spargio".to_string(),
            affinity: ThreadAffinity::None,
            steal: StealPolicy::default(),
            task_budget: 64,
            defer_taskrun: true,
            park_spin: Duration::from_micros(50),
            busy_yield: Duration::from_millis(1),
            max_blocking_threads: 512,
            blocking_keep_alive: Duration::from_secs(10),
            background_threads: None,
            background_nice: 5,
            max_ops_in_flight: 65_536,
        }
    }
}

impl RuntimeBuilder {
    /// A builder with the defaults: one shard per available CPU, 256 ring entries.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of shards (threads, each with its own ring). At least 1.
    pub fn shards(mut self, n: usize) -> Self {
        self.shards = Some(n);
        self
    }

    /// Submission-queue entries per ring. The completion queue gets room
    /// for one CQE per op in flight ([`max_ops_in_flight`](Self::max_ops_in_flight)),
    /// up to 4096 (64 KiB), and at least twice this many entries; CQEs past
    /// that wait in the kernel's overflow list (see
    /// [`ShardStats::cq_overflows`](crate::ShardStats::cq_overflows)).
    pub fn ring_entries(mut self, n: u32) -> Self {
        self.ring_entries = n;
        self
    }

    /// Prefix of shard thread names: shard `i` is named `{prefix}-{i}`.
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Self {
        self.thread_name = prefix.into();
        self
    }

    /// Binds shard threads to CPUs: `true`, `false`, or a list of CPU numbers.
    pub fn thread_affinity(mut self, affinity: impl Into<ThreadAffinity>) -> Self {
        self.affinity = affinity.into();
        self
    }

    /// Replaces the whole steal policy. A `batch` of 0 is taken as 1 (a
    /// steal moves at least one task).
    pub fn steal_policy(mut self, policy: StealPolicy) -> Self {
        self.steal = StealPolicy {
            batch: policy.batch.max(1),
            ..policy
        };
        self
    }

    /// Turns stealing between shards on or off (on by default).
    pub fn stealing(mut self, enabled: bool) -> Self {
        self.steal.enabled = enabled;
        self
    }

    /// Most tasks moved by one steal (default 32).
    pub fn steal_batch(mut self, batch: usize) -> Self {
        self.steal.batch = batch.max(1);
        self
    }

    /// Most polls in a row from the LIFO slot (default 3; 0 disables the slot).
    pub fn lifo_cap(mut self, cap: usize) -> Self {
        self.steal.lifo_cap = cap;
        self
    }

    /// Tasks a shard polls before it reaps completions and submits again
    /// (default 64).
    pub fn task_budget(mut self, budget: usize) -> Self {
        self.task_budget = budget.max(1);
        self
    }

    /// Whether rings use `IORING_SETUP_DEFER_TASKRUN` when the kernel has it
    /// (default `true`).
    pub fn defer_taskrun(mut self, on: bool) -> Self {
        self.defer_taskrun = on;
        self
    }

    /// How long a shard that just ran out of work keeps looking for more
    /// before it blocks in the kernel (default 50 µs; zero blocks at once).
    ///
    /// Waking a blocked thread costs tens of microseconds on virtual
    /// machines; a short spin lets back-to-back messages between shards skip
    /// it. A shard idle for longer than this uses no CPU.
    ///
    /// This is the most a spin lasts. Each shard also learns from its own
    /// recent idle gaps whether spinning pays off: it spins only while work
    /// usually comes back sooner than a sleep and wake-up would cost, so a
    /// shard whose gaps are long (light load, or a machine shared with other
    /// busy threads) parks at once instead of burning the CPU they need.
    pub fn park_spin(mut self, spin: Duration) -> Self {
        self.park_spin = spin;
        self
    }

    /// How long a shard runs tasks without a break before it offers its
    /// CPU to other runnable threads once (`sched_yield`; default 1 ms,
    /// zero never yields). With nothing else runnable the yield returns at
    /// once (one system call per busy millisecond); otherwise the thread
    /// waiting for the CPU (a load generator, the blocking pool, another
    /// process) runs now instead of at the end of the shard's scheduler
    /// slice, several milliseconds later. On our 2-core benchmarks with
    /// the load generator on the same cores this raised HTTP throughput at
    /// 16 connections by 5-12% and cut the service bench's p99 from about
    /// 4.2 to 2.4-3.1 ms, and moved no runtime row.
    pub fn busy_yield(mut self, after: Duration) -> Self {
        self.busy_yield = after;
        self
    }

    /// Most threads in the blocking pool (default 512).
    pub fn max_blocking_threads(mut self, n: usize) -> Self {
        self.max_blocking_threads = n.max(1);
        self
    }

    /// How long an idle blocking-pool thread waits for work before it exits
    /// (default 10 s).
    pub fn blocking_keep_alive(mut self, d: Duration) -> Self {
        self.blocking_keep_alive = d;
        self
    }

    /// Most threads in the background pool
    /// ([`RuntimeHandle::spawn_background`](crate::RuntimeHandle::spawn_background));
    /// default: one per shard. Threads start on demand and exit after the
    /// [`blocking_keep_alive`](Self::blocking_keep_alive) time idle.
    pub fn background_threads(mut self, n: usize) -> Self {
        self.background_threads = Some(n.max(1));
        self
    }

    /// How far above the runtime's nice value background-pool threads run:
    /// they take the nice value of the thread that builds the runtime plus
    /// this (default 5, clamped to 0..=19, the sum to at most 19; 0 runs
    /// them at the shards' priority). Relative, so a service started with
    /// `nice -n 10` gets background threads at 15, not a refused raise to
    /// 5. Against a busy thread
    /// at nice 0, a thread at nice 5 gets about a quarter of a shared core
    /// (nice 10: about a tenth): a background computation is slowed, never
    /// starved, while the shards are busy, and takes whole cores when they
    /// are idle. When a shard wakes with I/O to handle, the kernel runs it
    /// before the background thread instead of after the rest of that
    /// thread's time slice. Measured on our 2-core HTTP bench with 1 request
    /// in 16 burning 1 ms on the background pool: at nice 5 the cheap
    /// requests' median latency was a quarter of what it is with the burns
    /// on the shards; nice 10 did no better open loop and let the burns
    /// wait longer (p99) when the machine was saturated.
    pub fn background_nice(mut self, nice: i32) -> Self {
        self.background_nice = nice.clamp(0, 19);
        self
    }

    /// Most I/O ops in flight on one shard (default 65536). An op that
    /// finds its shard's table full waits for a slot: backpressure, not an
    /// error. Ops awaited outside the shards (in
    /// [`Runtime::block_on`](crate::Runtime::block_on), on the background
    /// pool) count against a limit of their own, `n` per shard but shared
    /// by the whole runtime, and wait the same way. Also sizes each ring's completion queue (see
    /// [`ring_entries`](Self::ring_entries)).
    pub fn max_ops_in_flight(mut self, n: usize) -> Self {
        self.max_ops_in_flight = n.max(1);
        self
    }

    /// Starts the shards. Fails with a clear error when io_uring cannot be
    /// set up (missing, disabled by `/proc/sys/kernel/io_uring_disabled`, or
    /// refused for these parameters), and with
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) for settings no runtime
    /// can have: no shards, `ring_entries(0)`, a thread name with a NUL,
    /// an empty `thread_affinity` CPU list. A shard that cannot be bound
    /// to its CPU (one this process may not use, or past the machine's)
    /// fails it with an error naming the shard and the CPU, whose
    /// [`source`](std::error::Error::source) is the kernel's error.
    /// An io_uring setup error's [`source`](std::error::Error::source) is
    /// the kernel's `io::Error`, whose `raw_os_error` says which (`ENOSYS`:
    /// no io_uring; `EPERM`: disabled or refused), for a program that
    /// falls back to another runtime.
    pub fn build(self) -> io::Result<Runtime> {
        let shards = self
            .shards
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let invalid = |what| Err(io::Error::new(io::ErrorKind::InvalidInput, what));
        if shards == 0 {
            return invalid("spargio: a runtime needs at least one shard");
        }
        if self.ring_entries == 0 {
            return invalid("spargio: ring_entries must be at least 1");
        }
        if self.thread_name.contains('\0') {
            return invalid("spargio: thread_name must not contain a NUL byte");
        }
        if self.affinity == ThreadAffinity::Cpus(Vec::new()) {
            return invalid(
                "spargio: thread_affinity was given an empty CPU list (use `false` for no binding)",
            );
        }
        Runtime::start(self, shards)
    }
}
