//! The load generator every service peer is driven by: a tokio
//! current-thread runtime on a thread of its own (as `echo_peer.rs`), with
//! [`CONNECTIONS`] connections to the server under test, each in a closed
//! loop: send a request, wait for its response, record the latency,
//! repeat.
//!
//! With [`LoadCmd::rate`] set, the loop is open instead: each connection
//! sends its requests when a [`Pacer`] says they are due (the connections
//! together offer that many requests per second, Poisson arrivals) and a
//! latency counts from the due time.
//!
//! One iteration is [`REQUESTS_PER_CONN`] requests on every connection,
//! in the row's phases (all connections finish a phase before the next
//! starts). Client-side framing is spargio-service's sans-IO codec
//! ([`encode_request`], [`FrameDecoder::decode_response`]); every response
//! is checked to be the echo of its request.

use crate::service_pacer::Pacer;
use crate::service_workload::{ServiceRow, CONNECTIONS, PAYLOAD_LEN, REQUESTS_PER_CONN};
use bytes::BytesMut;
use spargio_service::codec::{encode_request, FrameDecoder, Status};
use std::io;
use std::net::SocketAddr;
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long the caller waits for a run's report before declaring a hang.
const REPLY_DEADLINE: Duration = Duration::from_secs(120);

/// The smallest read a connection makes.
const MIN_READ: usize = 4 * 1024;

/// What to run: whole iterations of `row` until both `min_iters` are done
/// and `min_time` has passed.
#[derive(Clone, Copy, Debug)]
pub struct LoadCmd {
    /// The row whose requests to send.
    pub row: ServiceRow,
    /// At least this many iterations ...
    pub min_iters: u32,
    /// ... and at least this long.
    pub min_time: Duration,
    /// Whether to keep every request's latency.
    pub record: bool,
    /// Open loop at this many requests per second over all connections;
    /// `None`: closed loop (each connection sends its next request when the
    /// previous response is in).
    pub rate: Option<f64>,
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct LoadRun {
    /// Iterations run.
    pub iterations: u32,
    /// Requests answered.
    pub requests: u64,
    /// Wall time of the run, as the load generator saw it.
    pub wall: Duration,
    /// CPU the load generator's thread used during the run.
    pub client_cpu: Duration,
    /// Latencies (ns) of the cheap requests, when recording.
    pub cheap: Vec<u32>,
    /// Latencies (ns) of the heavy requests, when recording.
    pub heavy: Vec<u32>,
}

enum Msg {
    Run(LoadCmd),
    Stop,
}

/// A running load generator, connected; dropping it closes its
/// connections and joins its thread.
pub struct LoadGen {
    cmds: tokio::sync::mpsc::UnboundedSender<Msg>,
    replies: std_mpsc::Receiver<LoadRun>,
    thread: Option<JoinHandle<()>>,
}

impl LoadGen {
    /// Starts the thread and connects [`CONNECTIONS`] connections to
    /// `addr`, one after another (so a round-robin server sees them in
    /// order); returns once all are connected.
    pub fn start(addr: SocketAddr) -> LoadGen {
        let (cmd_tx, mut cmd_rx) = tokio::sync::mpsc::unbounded_channel::<Msg>();
        let (rep_tx, rep_rx) = std_mpsc::channel::<LoadRun>();
        let thread = std::thread::Builder::new()
            .name("bench-svc-load".into())
            .spawn(move || {
                raise_priority();
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("build load generator runtime");
                rt.block_on(async move {
                    let mut conns = Vec::with_capacity(CONNECTIONS);
                    for _ in 0..CONNECTIONS {
                        conns.push(Conn::connect(addr).await.expect("load generator connect"));
                    }
                    if rep_tx.send(LoadRun::default()).is_err() {
                        return;
                    }
                    while let Some(Msg::Run(cmd)) = cmd_rx.recv().await {
                        let run = run(&mut conns, cmd).await.expect("load generator I/O");
                        if rep_tx.send(run).is_err() {
                            return;
                        }
                    }
                });
            })
            .expect("spawn load generator thread");
        let gen = LoadGen {
            cmds: cmd_tx,
            replies: rep_rx,
            thread: Some(thread),
        };
        gen.reply("connect");
        gen
    }

    fn reply(&self, what: &str) -> LoadRun {
        match self.replies.recv_timeout(REPLY_DEADLINE) {
            Ok(run) => run,
            Err(e) => panic!("load generator: no reply to {what} within {REPLY_DEADLINE:?} ({e})"),
        }
    }

    /// Runs `cmd` and blocks until it is done.
    pub fn run(&mut self, cmd: LoadCmd) -> LoadRun {
        if self.cmds.send(Msg::Run(cmd)).is_err() {
            panic!("load generator thread gone");
        }
        self.reply("run")
    }
}

impl Drop for LoadGen {
    fn drop(&mut self) {
        let _ = self.cmds.send(Msg::Stop);
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() && !std::thread::panicking() {
                panic!("load generator thread panicked");
            }
        }
    }
}

/// One client connection and its buffers.
struct Conn {
    stream: TcpStream,
    decoder: FrameDecoder,
    input: BytesMut,
    output: BytesMut,
    cheap: Vec<u32>,
    heavy: Vec<u32>,
}

impl Conn {
    async fn connect(addr: SocketAddr) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            decoder: FrameDecoder::new(),
            input: BytesMut::with_capacity(MIN_READ),
            output: BytesMut::with_capacity(MIN_READ),
            cheap: Vec::new(),
            heavy: Vec::new(),
        })
    }

    /// One request/response round trip; checks the response is the echo.
    async fn call(&mut self, payload: &[u8]) -> io::Result<()> {
        self.output.clear();
        encode_request(payload, &mut self.output);
        self.stream.write_all(&self.output).await?;
        loop {
            if let Some((status, body)) = self.decoder.decode_response(&mut self.input)? {
                if status != Status::Ok || body[..] != *payload {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "bad response: {status}, {} bytes ({:?})",
                            body.len(),
                            String::from_utf8_lossy(&body)
                        ),
                    ));
                }
                return Ok(());
            }
            let needed = self.decoder.bytes_needed(&self.input)?;
            self.input.reserve(needed.max(MIN_READ));
            if self.stream.read_buf(&mut self.input).await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "server closed the connection",
                ));
            }
        }
    }

    /// This connection's requests of one phase, one after another.
    async fn phase(
        &mut self,
        row: ServiceRow,
        conn: usize,
        phase: u32,
        record: bool,
    ) -> io::Result<()> {
        for i in 0..row.per_phase() {
            self.timed_call(row, conn, phase, i, Instant::now(), record)
                .await?;
        }
        Ok(())
    }

    /// `count` requests, each sent when `pacer` says it is due. The phase
    /// of a request follows the clock, not the other connections: phase
    /// `p` covers due times `[p * phase_len, (p + 1) * phase_len)` after
    /// `start`, the time a connection takes on average for its requests of
    /// one phase.
    async fn paced(
        &mut self,
        row: ServiceRow,
        conn: usize,
        mut pacer: Pacer,
        count: u32,
        phase_len: Duration,
        record: bool,
    ) -> io::Result<()> {
        let start = Instant::now();
        for j in 0..count {
            let due = pacer.next().await?;
            let elapsed = due.saturating_duration_since(start);
            let phase = (elapsed.as_nanos() / phase_len.as_nanos().max(1)) as u32 % row.phases();
            self.timed_call(row, conn, phase, j % row.per_phase(), due, record)
                .await?;
        }
        Ok(())
    }

    /// Request `i` of `phase`, its latency counted from `since`.
    async fn timed_call(
        &mut self,
        row: ServiceRow,
        conn: usize,
        phase: u32,
        i: u32,
        since: Instant,
        record: bool,
    ) -> io::Result<()> {
        let mut payload = [0u8; PAYLOAD_LEN];
        row.payload(conn, phase, i, &mut payload);
        self.call(&payload).await?;
        if record {
            let ns = u32::try_from(since.elapsed().as_nanos()).unwrap_or(u32::MAX);
            if row.burn(conn, phase, i).is_some() {
                self.heavy.push(ns);
            } else {
                self.cheap.push(ns);
            }
        }
        Ok(())
    }
}

/// One iteration: every phase of `row` on every connection.
async fn iteration(conns: &mut [Conn], row: ServiceRow, record: bool) -> io::Result<()> {
    for phase in 0..row.phases() {
        let calls = conns
            .iter_mut()
            .enumerate()
            .map(|(c, conn)| conn.phase(row, c, phase, record));
        for res in futures::future::join_all(calls).await {
            res?;
        }
    }
    Ok(())
}

/// Open loop: every connection sends `iterations` × [`REQUESTS_PER_CONN`]
/// requests at its own Poisson pace, together `rate` per second.
async fn open_loop(
    conns: &mut [Conn],
    row: ServiceRow,
    rate: f64,
    iterations: u32,
    record: bool,
) -> io::Result<()> {
    let gap = Duration::from_secs_f64(conns.len() as f64 / rate);
    let phase_len = gap * row.per_phase();
    let mut calls = Vec::with_capacity(conns.len());
    for (c, conn) in conns.iter_mut().enumerate() {
        let pacer = Pacer::new(gap, c as u64 + 1)?;
        let count = iterations * REQUESTS_PER_CONN;
        calls.push(conn.paced(row, c, pacer, count, phase_len, record));
    }
    for res in futures::future::join_all(calls).await {
        res?;
    }
    Ok(())
}

async fn run(conns: &mut [Conn], cmd: LoadCmd) -> io::Result<LoadRun> {
    let (wall0, cpu0) = (Instant::now(), thread_cpu_time());
    let mut iterations = 0;
    if let Some(rate) = cmd.rate {
        // As many whole iterations' worth of requests as `rate` offers in
        // `min_time`.
        let per_iter = (conns.len() as u32 * REQUESTS_PER_CONN) as f64;
        let offered = rate * cmd.min_time.as_secs_f64() / per_iter;
        iterations = (offered.ceil() as u32).max(cmd.min_iters);
        // The run ends with its last request, even if the Poisson gaps
        // added up to a little less than `min_time`: a closed-loop
        // iteration appended here would mix its latencies into the open
        // loop's.
        open_loop(conns, cmd.row, rate, iterations, cmd.record).await?;
    } else {
        while iterations < cmd.min_iters || wall0.elapsed() < cmd.min_time {
            iteration(conns, cmd.row, cmd.record).await?;
            iterations += 1;
        }
    }
    let (wall, client_cpu) = (wall0.elapsed(), thread_cpu_time() - cpu0);
    let mut out = LoadRun {
        iterations,
        requests: u64::from(iterations) * conns.len() as u64 * u64::from(REQUESTS_PER_CONN),
        wall,
        client_cpu,
        ..LoadRun::default()
    };
    for conn in conns.iter_mut() {
        out.cheap.append(&mut conn.cheap);
        out.heavy.append(&mut conn.heavy);
    }
    Ok(out)
}

/// `SERVICE_CLIENT_NICE=N` (negative: higher priority; needs root or
/// CAP_SYS_NICE) sets the calling thread's nice value.
fn raise_priority() {
    let Some(nice) = std::env::var("SERVICE_CLIENT_NICE")
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
    else {
        return;
    };
    // SAFETY: gettid takes no arguments and cannot fail.
    let tid = unsafe { libc::gettid() };
    // SAFETY: setpriority takes plain integers; PRIO_PROCESS with a thread
    // id sets that one thread's nice value on Linux.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice) };
    if rc != 0 {
        eprintln!(
            "SERVICE_CLIENT_NICE={nice}: setpriority failed: {}",
            io::Error::last_os_error()
        );
    }
}

/// CPU time the calling thread has used.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one `timespec` through the valid, live
    // pointer we pass; CLOCK_THREAD_CPUTIME_ID is supported on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime: {}", io::Error::last_os_error());
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
