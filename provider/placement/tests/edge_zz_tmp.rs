use placement::edge::testgen::{batch, fleet};
use placement::testutil::latency_model;
use placement::{place_batch, BatchOptions};
#[test]
fn memory_binding() {
    let nodes = fleet(1000, 7);
    let mut workloads = batch(500, 20, 11);
    for (i, w) in workloads.iter_mut().enumerate() {
        w.request.requests.memory_gb = w.request.requests.cpu * if i % 2 == 0 { 7.0 } else { 1.0 };
    }
    let t = std::time::Instant::now();
    let r = place_batch(&nodes, &workloads, &latency_model(), &BatchOptions::default());
    eprintln!("RESULT {:?} placed {} unplaced {} cost {:.1} lb {:.1} gap {:.4}% it {}", t.elapsed(), r.placed, r.unplaced, r.total_cost, r.lower_bound, 100.0*r.gap, r.iterations);
}
