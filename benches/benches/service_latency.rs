//! Throughput, latency percentiles and CPU per request for every service
//! row and peer (see the `service` bench), each run for a few seconds.
//!
//! `cargo bench -p spargio-benches --bench service_latency [-- FILTER...]`:
//! FILTERs are substrings of row names; no filter runs every row.
//! `SERVICE_CELL_SECS` sets the time per cell (default 3).
//!
//! `SERVICE_LOAD=open` runs every cell open loop instead: requests arrive
//! as a Poisson process at the row's `paced_rate` (about 60% of what the
//! servers reach closed loop; `SERVICE_RATE` overrides it for every row),
//! and each latency counts from the time its request was due. Closed loop
//! measures how much a saturated server gets through; open loop measures
//! how long requests wait when the server has headroom but the load is
//! bursty or skewed — where handler placement matters.
//!
//! Columns: requests/s (and its ratio to tokio's and to serve_local's:
//! above 1 is faster), latency p50 and p99 over all requests (p99 ratios:
//! below 1 is better), p99 of the cheap requests alone and p50 of the heavy
//! ones, process CPU (user + sys, all threads, load generator included) per
//! request, the server's share of it (process minus the load generator's
//! thread), the share of handlers spawned stealable (spargio-service), the
//! share of those that ran on a shard other than their connection's, and
//! the share of handlers run on the runtime's background pool.

use spargio_benches::cpu::process_cpu_time;
use spargio_benches::quantile::nearest_rank;
use spargio_benches::service_harness::{ServicePeer, ServiceRunner};
use spargio_benches::service_workload::{ServiceRow, REQUESTS_PER_ITER};
use std::time::Duration;

struct Cell {
    peer: ServicePeer,
    iters: u32,
    rps: f64,
    p50: Duration,
    p99: Duration,
    cheap_p99: Option<Duration>,
    heavy_p50: Option<Duration>,
    cpu: Duration,
    server_cpu: Duration,
    stealable: Option<f64>,
    moved: Option<f64>,
    background: Option<f64>,
}

/// The `q` quantile of sorted nanosecond samples.
fn quantile(sorted: &[u32], q: f64) -> Option<Duration> {
    nearest_rank(sorted, q).map(|ns| Duration::from_nanos(u64::from(ns)))
}

fn measure(peer: ServicePeer, row: ServiceRow, time: Duration, rate: Option<f64>) -> Cell {
    let mut runner = ServiceRunner::new(peer, row);
    let before = runner.stats();
    let cpu0 = process_cpu_time();
    let mut run = runner.run_for(time, rate);
    let cpu = process_cpu_time() - cpu0;
    let after = runner.stats();
    drop(runner);

    assert_eq!(
        run.requests,
        (run.cheap.len() + run.heavy.len()) as u64,
        "every request's latency recorded"
    );
    assert_eq!(run.requests, u64::from(run.iterations) * REQUESTS_PER_ITER);
    let counts = before.zip(after).map(|(b, a)| {
        let handled = a.requests - b.requests;
        assert_eq!(handled, run.requests, "server counted every request");
        let stealable = a.handlers_stealable - b.handlers_stealable;
        let moved = a.handler_steals - b.handler_steals;
        let background = a.handlers_background - b.handlers_background;
        (
            stealable as f64 / handled as f64,
            (stealable > 0).then(|| moved as f64 / stealable as f64),
            background as f64 / handled as f64,
        )
    });
    let mut all: Vec<u32> = run.cheap.iter().chain(&run.heavy).copied().collect();
    all.sort_unstable();
    run.cheap.sort_unstable();
    run.heavy.sort_unstable();
    let per_req = |d: Duration| d / u32::try_from(run.requests).unwrap_or(u32::MAX);
    Cell {
        peer,
        iters: run.iterations,
        rps: run.requests as f64 / run.wall.as_secs_f64(),
        p50: quantile(&all, 0.50).unwrap_or_default(),
        p99: quantile(&all, 0.99).unwrap_or_default(),
        cheap_p99: quantile(&run.cheap, 0.99),
        heavy_p50: quantile(&run.heavy, 0.50),
        cpu: per_req(cpu),
        server_cpu: per_req(cpu.saturating_sub(run.client_cpu)),
        stealable: counts.map(|c| c.0),
        moved: counts.and_then(|c| c.1),
        background: counts.map(|c| c.2),
    }
}

fn fmt(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns >= 1_000_000 {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.1} µs", d.as_secs_f64() * 1e6)
    }
}

fn fmt_opt(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".into(), fmt)
}

fn pct(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |x| format!("{:.0}", x * 100.0))
}

fn ratio(x: f64, base: Option<f64>) -> String {
    match base {
        Some(b) if b > 0.0 => format!("{:.2}", x / b),
        _ => "-".into(),
    }
}

fn print_header() {
    println!(
        "{:<21} {:<24} {:>5} {:>9} {:>6} {:>6} {:>9} {:>9} {:>6} {:>6} {:>10} {:>10} {:>9} {:>9} {:>6} {:>6} {:>5}",
        "row",
        "peer",
        "iters",
        "req/s",
        "/tokio",
        "/local",
        "p50",
        "p99",
        "/tokio",
        "/local",
        "cheap p99",
        "heavy p50",
        "cpu/req",
        "srv/req",
        "stl%",
        "moved%",
        "bg%",
    );
}

fn print_row(row: ServiceRow, cells: &[Cell]) {
    let find = |p: ServicePeer| cells.iter().find(|c| c.peer == p);
    let tokio = find(ServicePeer::Tokio);
    let local = find(ServicePeer::ServeLocal);
    for c in cells {
        let p99 = c.p99.as_secs_f64();
        println!(
            "{:<21} {:<24} {:>5} {:>9.0} {:>6} {:>6} {:>9} {:>9} {:>6} {:>6} {:>10} {:>10} {:>9} {:>9} {:>6} {:>6} {:>5}",
            row.name(),
            c.peer.name(),
            c.iters,
            c.rps,
            ratio(c.rps, tokio.map(|t| t.rps)),
            ratio(c.rps, local.map(|l| l.rps)),
            fmt(c.p50),
            fmt(c.p99),
            ratio(p99, tokio.map(|t| t.p99.as_secs_f64())),
            ratio(p99, local.map(|l| l.p99.as_secs_f64())),
            fmt_opt(c.cheap_p99),
            fmt_opt(c.heavy_p50),
            fmt(c.cpu),
            fmt(c.server_cpu),
            pct(c.stealable),
            pct(c.moved),
            pct(c.background),
        );
    }
}

fn main() {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f));
    let secs: f64 = std::env::var("SERVICE_CELL_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3.0);
    let time = Duration::from_secs_f64(secs);
    let open = match std::env::var("SERVICE_LOAD").as_deref() {
        Ok("open") => true,
        Ok("closed") | Err(_) => false,
        Ok(other) => panic!("SERVICE_LOAD={other}: expected `open` or `closed`"),
    };
    let rate_override: Option<f64> = std::env::var("SERVICE_RATE")
        .ok()
        .map(|v| v.parse().expect("SERVICE_RATE: requests per second"));
    let rate_of = |row: ServiceRow| open.then(|| rate_override.unwrap_or(row.paced_rate()));

    let mode = if open {
        "open loop (Poisson arrivals at the row's offered rate; latency from the due time)"
    } else {
        "closed loop"
    };
    println!(
        "64 connections, {mode}, 64 × 32 requests per iteration, {secs} s per cell;\n\
         req/s ratios: peer / baseline (above 1 is faster); p99 ratios: peer / baseline \
         (below 1 is better);\n\
         cpu/req: whole process incl. the load generator; srv/req: without the load \
         generator's thread"
    );
    let mut table = Vec::new();
    for row in ServiceRow::ALL {
        if !wanted(row.name()) {
            continue;
        }
        let rate = rate_of(row);
        eprintln!(
            "{}: server burns {} per iteration{}",
            row.name(),
            fmt(row.burn_per_iter()),
            rate.map_or_else(String::new, |r| format!("; offered {r:.0} req/s"))
        );
        let mut cells = Vec::new();
        for peer in ServicePeer::ALL {
            let cell = measure(peer, row, time, rate);
            eprintln!(
                "  {:<24} {:>9.0} req/s  p50 {:>9}  p99 {:>9}",
                peer.name(),
                cell.rps,
                fmt(cell.p50),
                fmt(cell.p99)
            );
            cells.push(cell);
        }
        table.push((row, cells));
    }
    println!();
    print_header();
    for (row, cells) in &table {
        print_row(*row, cells);
    }
}
