//! The I/O benchmark shapes (see `/work/shared/BENCHMARK_SHAPES.md`),
//! written once over two small traits, [`NetStream`] and [`PosFile`], that
//! each runtime under test implements (`src/io_impls.rs`).
//!
//! Every frame starts with a counter byte; the checksums add the first
//! byte of what came back (and of every file block read), so a peer that
//! skipped or reordered work shows a different checksum.

use futures::future::join_all;
use std::future::Future;

/// Bytes per file block and per read.
pub const BLOCK: usize = 4096;
/// Blocks in the fixture file (16 MiB).
pub const FILE_BLOCKS: u64 = 4096;
/// Reads per `fs_read_rtt_4k` iteration.
pub const FS_RTT_READS: usize = 256;
/// Reads per `fs_read_throughput_4k_qd32` iteration.
pub const FS_QD_READS: usize = 4096;
/// Reads in flight together in `fs_read_throughput_4k_qd32`.
pub const FS_QD: usize = 32;
/// Round trips per `net_echo_rtt_256b` iteration.
pub const ECHO_ROUNDS: usize = 512;
/// Bytes per echo request / reply.
pub const ECHO_BYTES: usize = 256;
/// Bytes per stream frame.
pub const FRAME: usize = 4096;
/// Frames written before reading them back.
pub const WINDOW: usize = 32;
/// Frames per `net_stream_throughput_4k_window32` iteration.
pub const THROUGHPUT_FRAMES: usize = 2048;
/// Streams of the multi-stream rows.
pub const STREAMS: usize = 8;
/// Frames of stream 0 in the imbalanced row.
pub const IMBALANCED_HOT: usize = 2048;
/// Frames of every other stream in the imbalanced row.
pub const IMBALANCED_LIGHT: usize = 128;
/// Steps of the hotspot rotation.
pub const ROTATION_STEPS: usize = 64;
/// Frames the hot stream (`step % 8`) sends in a rotation step.
pub const ROTATION_HOT: usize = 32;
/// Frames every other stream sends in a rotation step.
pub const ROTATION_LIGHT: usize = 2;
/// Frames per stream in the pipeline row.
pub const PIPELINE_FRAMES: usize = 1024;
/// The pipeline's hot stream changes every this many frames.
pub const PIPELINE_ROTATE_EVERY: usize = 64;
/// CPU-stage iterations of a hot pipeline frame.
pub const PIPELINE_HEAVY: usize = 4000;
/// CPU-stage iterations of any other pipeline frame.
pub const PIPELINE_LIGHT: usize = 150;
/// Requests per `fs_net_microservice_4k_read_then_256b_reply_qd1` iteration.
pub const SERVICE_ROUNDS: usize = 1024;

/// A connected byte stream of the runtime under test.
pub trait NetStream: 'static {
    /// Writes all of `buf` (panics on error); gives the buffer back.
    fn send_all(&mut self, buf: Vec<u8>) -> impl Future<Output = Vec<u8>>;
    /// Fills all of `buf` (`buf.len()` bytes; panics on error or EOF).
    fn recv_exact(&mut self, buf: Vec<u8>) -> impl Future<Output = Vec<u8>>;
}

/// A file of the runtime under test, read at explicit offsets.
pub trait PosFile: 'static {
    /// Reads `buf.len()` bytes at `pos` (panics on error or short read).
    fn pread(&self, buf: Vec<u8>, pos: u64) -> impl Future<Output = Vec<u8>>;
}

/// One command to an I/O harness's driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoCmd {
    /// Sequential positional block reads, one buffer.
    FsReadRtt(usize),
    /// Positional block reads in joined batches of `qd`.
    FsReadQd {
        /// Reads in total.
        reads: usize,
        /// Reads per joined batch.
        qd: usize,
    },
    /// Write `ECHO_BYTES`, read them back, this many times (stream 0).
    EchoRtt(usize),
    /// `frames` frames on stream 0, [`WINDOW`] at a time.
    Windowed(usize),
    /// All streams, one task each: stream 0 sends `hot` frames, the
    /// others `light`.
    Imbalanced {
        /// Frames of stream 0.
        hot: usize,
        /// Frames of every other stream.
        light: usize,
    },
    /// All streams, one task each, this many rotation steps.
    Rotation(usize),
    /// All streams, one task each, this many frames with a CPU stage.
    Pipeline(usize),
    /// Read a block through the runtime, then an `ECHO_BYTES` echo.
    Microservice(usize),
    /// Stop the driver.
    Shutdown,
}

impl IoCmd {
    /// A smaller command of the same shape, to warm a harness up.
    pub fn warmup(self) -> IoCmd {
        match self {
            IoCmd::FsReadRtt(n) => IoCmd::FsReadRtt(n / 8),
            IoCmd::FsReadQd { reads, qd } => IoCmd::FsReadQd {
                reads: reads / 8,
                qd,
            },
            IoCmd::EchoRtt(n) => IoCmd::EchoRtt(n / 8),
            IoCmd::Windowed(n) => IoCmd::Windowed(n / 8),
            IoCmd::Imbalanced { hot, light } => IoCmd::Imbalanced {
                hot: hot / 8,
                light: light / 8,
            },
            IoCmd::Rotation(n) => IoCmd::Rotation(n / 8),
            IoCmd::Pipeline(n) => IoCmd::Pipeline(n / 8),
            IoCmd::Microservice(n) => IoCmd::Microservice(n / 8),
            IoCmd::Shutdown => IoCmd::Shutdown,
        }
    }
}

/// What one stream's task does in a multi-stream row.
#[derive(Clone, Copy, Debug)]
pub enum StreamJob {
    /// `frames` frames, [`WINDOW`] at a time.
    Windowed(usize),
    /// Stream `stream` of the hotspot rotation, `steps` steps.
    Rotation {
        /// Index of this stream.
        stream: usize,
        /// Steps.
        steps: usize,
    },
    /// Stream `stream` of the pipeline, `frames` frames.
    Pipeline {
        /// Index of this stream.
        stream: usize,
        /// Frames.
        frames: usize,
    },
}

/// Runs one task per stream, each with its job, and joins them all;
/// gives the streams back in order with each task's checksum. Implemented
/// per runtime with its own (stealable where it has it) spawn.
pub trait StreamSpawner<S> {
    /// Spawns and joins one task per `(stream, job)`.
    fn run_all(&self, jobs: Vec<(S, StreamJob)>) -> impl Future<Output = Vec<(S, u64)>>;
}

/// The byte at `offset` of the fixture file.
pub fn fixture_byte(offset: u64) -> u8 {
    ((offset / BLOCK as u64) as u8).wrapping_mul(31) ^ (offset % 251) as u8
}

/// The checksum of block `block` as read into `buf`.
pub fn block_sum(block: u64, buf: &[u8]) -> u64 {
    block ^ u64::from(buf[0]) ^ (u64::from(buf[BLOCK - 1]) << 8)
}

/// Sequential positional reads of block `i % FILE_BLOCKS`, one buffer.
pub async fn fs_read_rtt<F: PosFile>(file: &F, reads: usize) -> u64 {
    let mut buf = vec![0u8; BLOCK];
    let mut sum = 0u64;
    for i in 0..reads as u64 {
        let block = i % FILE_BLOCKS;
        buf = file.pread(buf, block * BLOCK as u64).await;
        sum = sum.wrapping_add(block_sum(block, &buf));
    }
    sum
}

/// Positional reads in batches of `qd` futures joined together (one task),
/// reusing `qd` buffers.
pub async fn fs_read_qd<F: PosFile>(file: &F, reads: usize, qd: usize) -> u64 {
    let qd = qd.max(1);
    let mut pool: Vec<Vec<u8>> = (0..qd).map(|_| vec![0u8; BLOCK]).collect();
    let mut sum = 0u64;
    let mut next = 0usize;
    while next < reads {
        let batch = (reads - next).min(qd);
        let reads_in_flight = pool.drain(..batch).enumerate().map(|(k, buf)| {
            let block = (next + k) as u64 % FILE_BLOCKS;
            async move { (block, file.pread(buf, block * BLOCK as u64).await) }
        });
        for (block, buf) in join_all(reads_in_flight).await {
            sum = sum.wrapping_add(block_sum(block, &buf));
            pool.push(buf);
        }
        next += batch;
    }
    sum
}

/// `rounds` × (write `ECHO_BYTES`, read them back).
pub async fn echo_rtt<S: NetStream>(stream: &mut S, rounds: usize) -> u64 {
    let mut out = vec![0u8; ECHO_BYTES];
    let mut back = vec![0u8; ECHO_BYTES];
    let mut sum = 0u64;
    for i in 0..rounds {
        out[0] = i as u8;
        out = stream.send_all(out).await;
        back = stream.recv_exact(back).await;
        sum = sum.wrapping_add(u64::from(back[0]));
    }
    sum
}

/// Writes a window of frames, reads them back, and calls `on_frame(frame
/// index, first byte)` for each frame read; `frames` in total.
async fn windowed<S: NetStream>(
    stream: &mut S,
    frames: usize,
    mut on_frame: impl FnMut(usize, u8) -> u64,
) -> u64 {
    let mut out = vec![0u8; FRAME];
    let mut back = vec![0u8; FRAME];
    let mut sum = 0u64;
    let mut next = 0usize;
    while next < frames {
        let batch = (frames - next).min(WINDOW);
        for k in 0..batch {
            out[0] = (next + k) as u8;
            out = stream.send_all(out).await;
        }
        for k in 0..batch {
            back = stream.recv_exact(back).await;
            sum = sum.wrapping_add(on_frame(next + k, back[0]));
        }
        next += batch;
    }
    sum
}

/// `frames` frames of [`FRAME`] bytes, [`WINDOW`] at a time.
pub async fn echo_windowed<S: NetStream>(stream: &mut S, frames: usize) -> u64 {
    windowed(stream, frames, |_, first| u64::from(first)).await
}

/// Frames stream `stream` sends in rotation step `step`.
pub fn rotation_frames(stream: usize, step: usize) -> usize {
    if stream == step % STREAMS {
        ROTATION_HOT
    } else {
        ROTATION_LIGHT
    }
}

/// The pipeline's CPU stage (spargio 0.5.13's `pipeline_cpu_stage`).
pub fn pipeline_cpu_stage(seed: u8, stream: usize, frame: usize, iters: usize) -> u64 {
    let mut x = (u64::from(seed) << 40)
        ^ ((stream as u64) << 17)
        ^ ((frame as u64) << 3)
        ^ 0x9E37_79B9_7F4A_7C15;
    for i in 0..iters {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x = x.wrapping_add((i as u64).wrapping_mul(0x27D4_EB2D));
    }
    std::hint::black_box(x)
}

/// CPU-stage iterations of frame `frame` of stream `stream`.
pub fn pipeline_iters(stream: usize, frame: usize) -> usize {
    if stream == (frame / PIPELINE_ROTATE_EVERY) % STREAMS {
        PIPELINE_HEAVY
    } else {
        PIPELINE_LIGHT
    }
}

/// One stream's task of a multi-stream row.
pub async fn run_job<S: NetStream>(stream: &mut S, job: StreamJob) -> u64 {
    match job {
        StreamJob::Windowed(frames) => echo_windowed(stream, frames).await,
        StreamJob::Rotation { stream: idx, steps } => {
            let mut sum = 0u64;
            for step in 0..steps {
                let frames = rotation_frames(idx, step);
                sum = sum.wrapping_add(echo_windowed(stream, frames).await);
            }
            sum
        }
        StreamJob::Pipeline {
            stream: idx,
            frames,
        } => {
            windowed(stream, frames, |frame, first| {
                pipeline_cpu_stage(first, idx, frame, pipeline_iters(idx, frame))
            })
            .await
        }
    }
}

/// `rounds` × (read block `i % FILE_BLOCKS` through the runtime, then
/// send `ECHO_BYTES` carrying a byte of it and read the reply).
pub async fn microservice<S: NetStream, F: PosFile>(
    stream: &mut S,
    file: &F,
    rounds: usize,
) -> u64 {
    let mut block_buf = vec![0u8; BLOCK];
    let mut out = vec![0u8; ECHO_BYTES];
    let mut back = vec![0u8; ECHO_BYTES];
    let mut sum = 0u64;
    for i in 0..rounds as u64 {
        let block = i % FILE_BLOCKS;
        block_buf = file.pread(block_buf, block * BLOCK as u64).await;
        out[0] = block_buf[0] ^ i as u8;
        out = stream.send_all(out).await;
        back = stream.recv_exact(back).await;
        sum = sum.wrapping_add(block_sum(block, &block_buf) ^ u64::from(back[0]));
    }
    sum
}

/// The per-stream jobs of a multi-stream command (`None` for the others).
pub fn stream_jobs(cmd: IoCmd) -> Option<Vec<StreamJob>> {
    let jobs = match cmd {
        IoCmd::Imbalanced { hot, light } => (0..STREAMS)
            .map(|i| StreamJob::Windowed(if i == 0 { hot } else { light }))
            .collect(),
        IoCmd::Rotation(steps) => (0..STREAMS)
            .map(|stream| StreamJob::Rotation { stream, steps })
            .collect(),
        IoCmd::Pipeline(frames) => (0..STREAMS)
            .map(|stream| StreamJob::Pipeline { stream, frames })
            .collect(),
        _ => return None,
    };
    Some(jobs)
}

/// Runs one runtime's share of a multi-stream command: the jobs of
/// streams `runtime`, `runtime + runtimes`, ... on `streams` (which hold
/// exactly those streams, in that order), one task each through
/// `spawner`. Gives the wrapping sum of their checksums; summed over every
/// runtime it equals what [`serve`] gives for the same command.
pub async fn serve_share<S, X>(
    spawner: &X,
    streams: &mut Vec<S>,
    jobs: Vec<StreamJob>,
    runtime: usize,
    runtimes: usize,
) -> u64
where
    S: NetStream,
    X: StreamSpawner<S>,
{
    let mine = jobs.into_iter().skip(runtime).step_by(runtimes);
    let pairs: Vec<(S, StreamJob)> = std::mem::take(streams).into_iter().zip(mine).collect();
    let mut sum = 0u64;
    for (stream, value) in spawner.run_all(pairs).await {
        sum = sum.wrapping_add(value);
        streams.push(stream);
    }
    sum
}

/// Runs one command on the driver: single-stream rows on stream 0,
/// multi-stream rows one task per stream through `spawner`.
pub async fn serve<S, F, X>(spawner: &X, file: &F, streams: &mut Vec<S>, cmd: IoCmd) -> u64
where
    S: NetStream,
    F: PosFile,
    X: StreamSpawner<S>,
{
    if let Some(jobs) = stream_jobs(cmd) {
        let pairs: Vec<(S, StreamJob)> = std::mem::take(streams).into_iter().zip(jobs).collect();
        let mut sum = 0u64;
        for (stream, value) in spawner.run_all(pairs).await {
            sum = sum.wrapping_add(value);
            streams.push(stream);
        }
        return sum;
    }
    match cmd {
        IoCmd::FsReadRtt(n) => fs_read_rtt(file, n).await,
        IoCmd::FsReadQd { reads, qd } => fs_read_qd(file, reads, qd).await,
        IoCmd::EchoRtt(n) => echo_rtt(&mut streams[0], n).await,
        IoCmd::Windowed(n) => echo_windowed(&mut streams[0], n).await,
        IoCmd::Microservice(n) => microservice(&mut streams[0], file, n).await,
        IoCmd::Imbalanced { .. } | IoCmd::Rotation(_) | IoCmd::Pipeline(_) => {
            unreachable!("multi-stream commands are handled above")
        }
        IoCmd::Shutdown => 0,
    }
}

/// The driver loop: serves commands until [`IoCmd::Shutdown`], replying to
/// each; drops the streams and the file, then replies once more.
pub async fn serve_loop<S, F, X>(
    spawner: X,
    file: F,
    mut streams: Vec<S>,
    cmds: async_channel::Receiver<IoCmd>,
    replies: std::sync::mpsc::Sender<u64>,
) where
    S: NetStream,
    F: PosFile,
    X: StreamSpawner<S>,
{
    while let Ok(cmd) = cmds.recv().await {
        if cmd == IoCmd::Shutdown {
            break;
        }
        let out = serve(&spawner, &file, &mut streams, cmd).await;
        if replies.send(out).is_err() {
            break;
        }
    }
    drop(streams);
    drop(file);
    let _ = replies.send(0);
}
