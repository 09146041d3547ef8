use placement::edge::testgen::{batch, fleet};
use placement::edge::check_node;
use placement::testutil::latency_model;
use placement::{place_batch, BatchOptions};
use std::io::Write;
#[test]
fn dbg() {
    let nodes = fleet(1000, 7);
    let workloads = batch(500, 20, 11);
    let model = latency_model();
    if std::env::var("DUMP").is_ok() {
        let mut f = std::fs::File::create("/tmp/inst.txt").unwrap();
        writeln!(f, "{} {}", nodes.len(), workloads.len()).unwrap();
        for n in &nodes { writeln!(f, "{} {} {} {}", n.free.cpu, n.free.memory_gb, n.free.storage_gb, n.free.network_mbps).unwrap(); }
        for w in &workloads { let r = &w.request.requests; writeln!(f, "{} {} {} {} {}", w.request.replicas, r.cpu, r.memory_gb, r.storage_gb, r.network_mbps).unwrap(); }
        for (wi, w) in workloads.iter().enumerate() { for (ni, n) in nodes.iter().enumerate() {
            if let Ok(fit) = check_node(n, &w.request, &model) { writeln!(f, "{} {} {} {}", wi, ni, fit.mean_rtt_ms.unwrap(), fit.max_replicas.min(w.request.replicas)).unwrap(); }
        }}
    }
    let t = std::time::Instant::now();
    let r = place_batch(&nodes, &workloads, &model, &BatchOptions::default());
    eprintln!("{:?} placed {} cost {} lb {} gap {} it {}", t.elapsed(), r.placed, r.total_cost, r.lower_bound, r.gap, r.iterations);
}
