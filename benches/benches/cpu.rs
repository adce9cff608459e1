//! Wall time and process CPU time (user + sys, all threads) per iteration
//! for every row and peer of the `runtime` and `io` benches, and idle CPU
//! per runtime.
//!
//! `cargo bench -p spargio-benches --bench cpu [-- FILTER...]`: FILTERs are
//! substrings of row names, `io` (every I/O row) or `idle`; no filter runs
//! everything.
//!
//! For profiling: `SPARGIO_BENCH_PEERS=spargio_rt,tokio_mt_2` keeps only
//! the named peers (the ratio columns then need `spargio_rt` among them),
//! and `SPARGIO_BENCH_CELL_SECS=5` makes every cell run that long.

use spargio_benches::cpu::process_cpu_time;
use spargio_benches::harness::Runner;
use spargio_benches::io_harness::IoRunner;
use spargio_benches::{Cmd, IoPeer, IoRow, Peer, Row};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Each cell runs for at least this long (and at least `MIN_ITERS` times),
/// unless `SPARGIO_BENCH_CELL_SECS` says otherwise.
const CELL_TIME: Duration = Duration::from_secs(1);
const MIN_ITERS: u32 = 3;
const IDLE_TIME: Duration = Duration::from_secs(1);

struct Cell {
    /// The last iteration's checksum, compared across peers.
    value: u64,
    iters: u32,
    wall: Duration,
    cpu: Duration,
}

/// Runs `iter` (one timed iteration of a built, warmed harness) for the
/// cell time.
fn measure(mut iter: impl FnMut() -> u64) -> Cell {
    let cell_time = std::env::var("SPARGIO_BENCH_CELL_SECS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(CELL_TIME, Duration::from_secs_f64);
    let (wall0, cpu0) = (Instant::now(), process_cpu_time());
    let (mut iters, mut value) = (0u32, 0u64);
    while iters < MIN_ITERS || wall0.elapsed() < cell_time {
        value = black_box(iter());
        iters += 1;
    }
    let (wall, cpu) = (wall0.elapsed(), process_cpu_time() - cpu0);
    Cell {
        value,
        iters,
        wall: wall / iters,
        cpu: cpu / iters,
    }
}

fn fmt(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns >= 1_000_000_000 {
        format!("{:.3} s", d.as_secs_f64())
    } else if ns >= 1_000_000 {
        format!("{:.3} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.1} µs", d.as_secs_f64() * 1e6)
    }
}

fn ratio(peer: Duration, ours: Duration) -> String {
    if ours.is_zero() {
        "-".into()
    } else {
        format!("{:.2}", peer.as_secs_f64() / ours.as_secs_f64())
    }
}

/// Prints one cell with its ratios against `ours` (set when `is_ours`).
fn report(row: &str, peer: &str, cell: Cell, is_ours: bool, ours: &mut Option<Cell>) {
    let (wall_x, cpu_x, check) = match ours.as_ref() {
        Some(o) => (
            ratio(cell.wall, o.wall),
            ratio(cell.cpu, o.cpu),
            if o.value == cell.value {
                "same"
            } else {
                "DIFFERS"
            },
        ),
        None => ("1.00".into(), "1.00".into(), "-"),
    };
    println!(
        "{:<47} {:<25} {:>6} {:>11} {:>11} {:>6.2} {:>7} {:>7}  {check}",
        row,
        peer,
        cell.iters,
        fmt(cell.wall),
        fmt(cell.cpu),
        cell.cpu.as_secs_f64() / cell.wall.as_secs_f64(),
        wall_x,
        cpu_x,
    );
    if is_ours {
        *ours = Some(cell);
    }
}

fn main() {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f));
    let peers: Option<Vec<String>> = std::env::var("SPARGIO_BENCH_PEERS")
        .ok()
        .map(|v| v.split(',').map(|p| p.trim().to_string()).collect());
    let peer_wanted = |name: &str| peers.as_ref().is_none_or(|p| p.iter().any(|q| q == name));

    println!(
        "wall and CPU (user+sys, whole process) per iteration; ratios are peer / spargio_rt;\n\
         checksum: whether the last iteration's result equals spargio_rt's"
    );
    println!(
        "{:<47} {:<25} {:>6} {:>11} {:>11} {:>6} {:>7} {:>7}  checksum",
        "row", "peer", "iters", "wall/iter", "cpu/iter", "cores", "wall x", "cpu x"
    );
    for row in Row::ALL {
        if !wanted(row.name()) {
            continue;
        }
        let mut ours: Option<Cell> = None;
        for &peer in row.peers() {
            if !peer_wanted(peer.name()) {
                continue;
            }
            let mut runner = Runner::new(peer, row);
            let cell = measure(|| runner.iter());
            drop(runner);
            report(
                row.name(),
                peer.name(),
                cell,
                peer == Peer::SpargioRt,
                &mut ours,
            );
        }
    }
    for row in IoRow::ALL {
        if !(wanted(row.name()) || filters.iter().any(|f| f == "io")) {
            continue;
        }
        let mut ours: Option<Cell> = None;
        for &peer in row.peers() {
            if !peer_wanted(peer.name()) {
                continue;
            }
            let mut runner = IoRunner::new(peer, row);
            let cell = measure(|| runner.iter());
            drop(runner);
            let is_ours = peer == IoPeer::SpargioRt;
            report(row.name(), peer.name(), cell, is_ours, &mut ours);
        }
    }

    if wanted("idle") {
        println!();
        println!("idle CPU: harness built and warmed, then left alone for {IDLE_TIME:?}");
        println!("{:<25} {:>14} {:>6}", "runtime", "cpu in window", "cores");
        for peer in [Peer::SpargioRt, Peer::Tokio, Peer::Spargio] {
            debug_assert!(peer.is_runtime());
            let mut harness = peer.harness(Row::PingPong);
            harness.run(Cmd::PingPong(16));
            let (wall0, cpu0) = (Instant::now(), process_cpu_time());
            std::thread::sleep(IDLE_TIME);
            let (wall, cpu) = (wall0.elapsed(), process_cpu_time() - cpu0);
            drop(harness);
            println!(
                "{:<25} {:>14} {:>6.2}",
                peer.name(),
                fmt(cpu),
                cpu.as_secs_f64() / wall.as_secs_f64()
            );
        }
    }
}
