use placement::edge::testgen::{batch, fleet};
use placement::edge::check_node;
use placement::testutil::latency_model;
use std::io::Write;
#[test]
fn dump() {
    let nodes = fleet(1000, 7);
    let mut workloads = batch(500, 20, 11);
    for (i, w) in workloads.iter_mut().enumerate() {
        w.request.requests.memory_gb = w.request.requests.cpu * if i % 2 == 0 { 7.0 } else { 1.0 };
    }
    let model = latency_model();
    let mut f = std::fs::File::create("/tmp/inst.txt").expect("f");
    writeln!(f, "{} {}", nodes.len(), workloads.len()).expect("w");
    for n in &nodes { writeln!(f, "{} {} {} {}", n.free.cpu, n.free.memory_gb, n.free.storage_gb, n.free.network_mbps).expect("w"); }
    for w in &workloads { let r = &w.request.requests; writeln!(f, "{} {} {} {} {}", w.request.replicas, r.cpu, r.memory_gb, r.storage_gb, r.network_mbps).expect("w"); }
    for (wi, w) in workloads.iter().enumerate() { for (ni, n) in nodes.iter().enumerate() {
        if let Ok(fit) = check_node(n, &w.request, &model) { writeln!(f, "{} {} {} {}", wi, ni, fit.mean_rtt_ms.unwrap_or(0.0), fit.max_replicas.min(w.request.replicas)).expect("w"); }
    }}
}
