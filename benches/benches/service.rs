//! Service benches: spargio-service (2 shards; inline, stealable, adaptive,
//! adaptive keyed by payload, serve_local) vs tokio (2 workers, a task per
//! connection calling the service inline), serving the same tower service
//! on the length-delimited protocol to the same load generator: 64
//! connections in a closed loop on a tokio current-thread runtime of their
//! own.
//!
//! One iteration is 64 × 32 requests; criterion's time per iteration is
//! the inverse of throughput (reported as elements/s). Latency
//! percentiles and CPU per request: the `service_latency` target.
//!
//! Only one server under test is alive at a time: each peer's harness is
//! built right before its bench function and dropped right after.

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use spargio_benches::service_harness::{ServicePeer, ServiceRunner};
use spargio_benches::service_workload::{ServiceRow, REQUESTS_PER_ITER};
use std::hint::black_box;
use std::time::Duration;

fn bench_row(c: &mut Criterion, row: ServiceRow) {
    let mut group = c.benchmark_group(row.name());
    // The CPU-heavy rows take 30-130 ms per iteration: flat sampling.
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(REQUESTS_PER_ITER));
    for peer in ServicePeer::ALL {
        let mut runner = ServiceRunner::new(peer, row);
        group.bench_function(peer.name(), |b| b.iter(|| black_box(runner.iter())));
        drop(runner);
    }
    group.finish();
}

fn service_rows(c: &mut Criterion) {
    for row in ServiceRow::ALL {
        bench_row(c, row);
    }
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10)
        .configure_from_args()
}

criterion_group! {
    name = benches;
    config = config();
    targets = service_rows
}
criterion_main!(benches);
