//! Batch edge placement: 10,000 replicas (500 workloads × 20) onto 1,000 edge nodes in 40
//! metros, users concentrated in popular metros (so nearby capacity is contended).
//! Target: < 1 s per `place_batch` call and a certified optimality gap <= 1 % (against the
//! Lagrangian / LP lower bound). Prints the time, gap, bound, replica and node counts.

use criterion::{criterion_group, criterion_main, Criterion};
use placement::edge::testgen::{batch, fleet};
use placement::testutil::latency_model;
use placement::{place_batch, BatchOptions};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn bench(c: &mut Criterion) {
    let nodes = fleet(1000, 7);
    let workloads = batch(500, 20, 11);
    let model = latency_model();
    let opts = BatchOptions::default();

    let start = Instant::now();
    let r = place_batch(&nodes, &workloads, &model, &opts);
    let secs = start.elapsed().as_secs_f64();
    let cpu_used: f64 = workloads
        .iter()
        .map(|w| w.request.requests.cpu * f64::from(w.request.replicas))
        .sum();
    let cpu_free: f64 = nodes.iter().map(|n| n.free.cpu).sum();
    println!(
        "batch: {} replicas ({} placed, {} unplaced) of {} workloads onto {} nodes \
         (demand {:.0}% of free cpu): {:.3} s, cost {:.1}, lower bound {:.1}, gap {:.3}%, {} iterations",
        r.replicas,
        r.placed,
        r.unplaced,
        workloads.len(),
        r.nodes,
        100.0 * cpu_used / cpu_free,
        secs,
        r.total_cost,
        r.lower_bound,
        100.0 * r.gap,
        r.iterations
    );

    let mut g = c.benchmark_group("batch");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    g.bench_function("10k_replicas_1k_nodes", |b| {
        b.iter(|| place_batch(black_box(&nodes), black_box(&workloads), &model, &opts))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
