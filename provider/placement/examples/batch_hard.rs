//! One timed `place_batch` call on the benchmark instances (`cargo run --release -p
//! placement --example batch_hard [easy|hard] [runs]`).
use placement::edge::testgen::{batch, batch_two_binding, fleet};
use placement::testutil::latency_model;
use placement::{place_batch, BatchOptions};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let which = args.get(1).map_or("hard", |s| s.as_str());
    let runs: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3);
    let nodes = fleet(1000, 7);
    let workloads = if which == "easy" {
        batch(500, 20, 11)
    } else {
        batch_two_binding(500, 20, 11)
    };
    let model = latency_model();
    let opts = BatchOptions::default();
    let mut times = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let r = place_batch(&nodes, &workloads, &model, &opts);
        let secs = start.elapsed().as_secs_f64();
        times.push(secs);
        println!(
            "{which}: {secs:.3} s, cost {:.1}, bound {:.1}, gap {:.3}%, unplaced {}, {} iterations",
            r.total_cost,
            r.lower_bound,
            100.0 * r.gap,
            r.unplaced,
            r.iterations
        );
    }
    times.sort_by(f64::total_cmp);
    println!("median {:.3} s", times[times.len() / 2]);
}
