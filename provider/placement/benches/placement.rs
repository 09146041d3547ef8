//! Placement latency and throughput benchmarks.
//!
//! `one_placement_large_catalog`: one `place` call over a synthetic catalog of realistic size
//! (120 regions × 1,250 types, 50k offers). Target: median < 1 ms.
//! `one_placement_embedded_catalog`: the same over `catalog::try_embedded()` when it loads
//! (prints its candidate count).
//! `throughput_5000_candidates`: repeated placements over 5,000 candidates (50 regions × 100
//! types), printing placements/s against the Kubernetes scheduler's 680–810 pods/s at 5,000
//! nodes. Target: >= 10,000/s on one core.

use criterion::{criterion_group, criterion_main, Criterion};
use placement::testutil::synthetic_catalog;
use placement::{place, PlaceOptions, Requirements, Strategy, UserLocation};
use std::hint::black_box;
use std::time::Instant;

fn requirements() -> Requirements {
    Requirements::new(4.0, 16.0)
        .with_storage_gb(100.0)
        .with_users(&[
            UserLocation {
                lat: 50.1,
                lng: 8.7,
                weight: 2.0,
            },
            UserLocation {
                lat: 40.7,
                lng: -74.0,
                weight: 1.0,
            },
            UserLocation {
                lat: 35.7,
                lng: 139.7,
                weight: 1.0,
            },
        ])
}

/// This thread's on-CPU time in ns (Linux schedstat), so figures stay meaningful on a loaded
/// machine; `None` elsewhere.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Runs `f` `n` times; returns (wall seconds, on-CPU seconds) per call.
fn per_call(n: u32, mut f: impl FnMut()) -> (f64, Option<f64>) {
    let cpu0 = thread_cpu_ns();
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    let wall = start.elapsed().as_secs_f64() / f64::from(n);
    let cpu = thread_cpu_ns()
        .zip(cpu0)
        .map(|(b, a)| (b - a) as f64 / 1e9 / f64::from(n));
    (wall, cpu)
}

fn bench(c: &mut Criterion) {
    let large = synthetic_catalog(120, 1250, 1.0, 42);
    let req = requirements();
    let opts = PlaceOptions::default();
    let d = place(&large, &[], &req, &Strategy::Hybrid, &opts).expect("feasible");
    println!(
        "large catalog: {} regions, {} types, {} candidates, {} feasible; winner: {}",
        large.regions.len(),
        large.instance_types.len(),
        d.considered,
        d.feasible,
        d.placement.reason
    );
    c.bench_function("one_placement_large_catalog", |b| {
        b.iter(|| {
            place(
                black_box(&large),
                &[],
                black_box(&req),
                &Strategy::Hybrid,
                &opts,
            )
        })
    });

    match catalog::try_embedded() {
        Ok(real) => {
            let d = place(real, &[], &req, &Strategy::Hybrid, &opts);
            println!(
                "embedded catalog: {} regions, {} types, {} candidates; {}",
                real.regions.len(),
                real.instance_types.len(),
                real.offers.len(),
                match &d {
                    Ok(d) => d.placement.reason.clone(),
                    Err(e) => e.to_string(),
                }
            );
            c.bench_function("one_placement_embedded_catalog", |b| {
                b.iter(|| {
                    place(
                        black_box(real),
                        &[],
                        black_box(&req),
                        &Strategy::Hybrid,
                        &opts,
                    )
                })
            });
        }
        Err(e) => println!("embedded catalog unavailable ({e}); synthetic catalogs only"),
    }

    let mid = synthetic_catalog(50, 300, 1.0, 7);
    println!("throughput catalog: {} candidates", mid.offers.len());
    c.bench_function("throughput_5000_candidates", |b| {
        b.iter(|| {
            place(
                black_box(&mid),
                &[],
                black_box(&req),
                &Strategy::CostOptimized,
                &opts,
            )
        })
    });
    let (wall, cpu) = per_call(500, || {
        black_box(
            place(
                black_box(&large),
                &[],
                black_box(&req),
                &Strategy::Hybrid,
                &opts,
            )
            .is_ok(),
        );
    });
    println!(
        "one placement over {} candidates: {:.3} ms wall, {} on-CPU (target < 1 ms)",
        large.offers.len(),
        wall * 1e3,
        cpu.map(|c| format!("{:.3} ms", c * 1e3))
            .unwrap_or_else(|| "n/a".into())
    );
    let (wall, cpu) = per_call(5_000, || {
        black_box(
            place(
                black_box(&mid),
                &[],
                black_box(&req),
                &Strategy::CostOptimized,
                &opts,
            )
            .is_ok(),
        );
    });
    let per_s = 1.0 / cpu.unwrap_or(wall);
    println!(
        "throughput over {} candidates: {per_s:.0} placements/s on one core (on-CPU; wall {:.0}/s) \
         (target 10,000/s); {:.1}x the Kubernetes scheduler's 810 pods/s at 5,000 nodes",
        mid.offers.len(),
        1.0 / wall,
        per_s / 810.0
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
