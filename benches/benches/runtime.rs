//! Runtime benches: spargio-rt vs tokio (2 workers) vs spargio 0.5.13
//! (2 shards), plus a raw io_uring "limit" for the ping-pong rows.
//!
//! Only one runtime is alive at a time: each peer's harness is built right
//! before its bench function and dropped right after, so a spinning runtime
//! never steals the 2 cores from the next one.

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use spargio_benches::harness::Runner;
use spargio_benches::Row;
use std::hint::black_box;
use std::time::Duration;

fn bench_row(c: &mut Criterion, row: Row) {
    let mut group = c.benchmark_group(row.name());
    if row == Row::TimerStorm {
        // tokio's 1 ms timer makes one iteration ~1.1 s: few flat samples.
        group.sampling_mode(SamplingMode::Flat);
        group.sample_size(10);
    }
    for &peer in row.peers() {
        let mut runner = Runner::new(peer, row);
        group.bench_function(peer.name(), |b| b.iter(|| black_box(runner.iter())));
        drop(runner);
    }
    group.finish();
}

fn runtime_rows(c: &mut Criterion) {
    for row in Row::ALL {
        bench_row(c, row);
    }
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
        .configure_from_args()
}

criterion_group! {
    name = benches;
    config = config();
    targets = runtime_rows
}
criterion_main!(benches);
