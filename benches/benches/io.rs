//! I/O benches: spargio-rt (2 shards) vs tokio (2 workers) vs compio (one
//! thread) vs spargio 0.5.13 (2 shards), plus a raw io_uring "limit" for
//! the single-stream rows. Every net row talks to the same in-process echo
//! peer (a tokio current-thread runtime on its own thread).
//!
//! Only one runtime under test is alive at a time: each peer's harness is
//! built right before its bench function and dropped right after.

use criterion::{criterion_group, criterion_main, Criterion};
use spargio_benches::io_harness::IoRunner;
use spargio_benches::IoRow;
use std::hint::black_box;
use std::time::Duration;

fn bench_row(c: &mut Criterion, row: IoRow) {
    let mut group = c.benchmark_group(row.name());
    for &peer in row.peers() {
        let mut runner = IoRunner::new(peer, row);
        group.bench_function(peer.name(), |b| b.iter(|| black_box(runner.iter())));
        drop(runner);
    }
    group.finish();
}

fn io_rows(c: &mut Criterion) {
    for row in IoRow::ALL {
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
    targets = io_rows
}
criterion_main!(benches);
