//! Prints what the embedded catalog holds and how long it takes to load, so a reviewer can
//! check counts, sources and load time without reading JSON:
//! `cargo run --release -p catalog --example catalog_stats`.

use catalog::Cloud;
use std::time::Instant;

fn main() {
    let start = Instant::now();
    let c = match catalog::try_embedded() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let load = start.elapsed();
    println!(
        "snapshot {} ({} bytes embedded)",
        c.snapshot_date,
        catalog::EMBEDDED_JSON.len()
    );
    println!("first load (parse + validate): {load:?}");
    for cloud in Cloud::ALL {
        let offers = c
            .offers
            .iter()
            .filter(|o| c.instance_type(o.instance_type).cloud == cloud)
            .count();
        println!(
            "{cloud}: {} regions, {} instance types, {offers} offers",
            c.regions_of(cloud).count(),
            c.instance_types_of(cloud).count()
        );
    }
    println!(
        "latency: route_factor {} base_ms {} ({})",
        c.latency.route_factor, c.latency.base_ms, c.latency.calibration
    );
    for s in &c.sources {
        println!(
            "source: {} {} {} [{}] {}",
            s.package, s.version, s.path, s.licence, s.date
        );
    }
    for _ in 0..3 {
        let t = Instant::now();
        let snap = catalog::parse_snapshot(catalog::EMBEDDED_JSON);
        println!("re-parse: {:?} (ok: {})", t.elapsed(), snap.is_ok());
    }
}
