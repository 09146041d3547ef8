//! Entry points for fuzzing what the provider decodes from outside: Terraform's DynamicValue
//! bytes (msgpack and JSON), stored state handed to UpgradeResourceState, catalog snapshots,
//! and the HTTP/2 frames its gRPC server reads (`tfprotocol::server::fuzzing`).
//!
//! Each function takes arbitrary bytes and must return normally whatever they hold; a crash is
//! the bug the fuzzer reports. The same bodies run in two places: the coverage-guided libFuzzer
//! targets under `fuzz/` (`make fuzz`, cargo-fuzz on the stable toolchain without a sanitizer)
//! and a deterministic random-input test in CI (`tests` below), so a regression input can be
//! replayed as a plain unit test.

use std::sync::{Arc, OnceLock};

use tfvalue::{Type, Value};

use crate::resources::{self, Resource};

fn all_resources() -> &'static [Arc<dyn Resource>] {
    static ALL: OnceLock<Vec<Arc<dyn Resource>>> = OnceLock::new();
    ALL.get_or_init(resources::all)
}

fn cached_types() -> &'static [Type] {
    static TYPES: OnceLock<Vec<Type>> = OnceLock::new();
    TYPES.get_or_init(types)
}

/// The types the decoders are asked for: every real schema of the provider (provider config,
/// each resource and data source), plus shapes that stress nesting and dynamic values.
pub fn types() -> Vec<Type> {
    let mut out = vec![crate::config::schema().block.value_type()];
    out.extend(
        resources::all()
            .iter()
            .map(|r| r.schema().block.value_type()),
    );
    out.extend(
        crate::data_sources::all()
            .iter()
            .map(|d| d.schema().block.value_type()),
    );
    out.extend([
        Type::Dynamic,
        Type::list(Type::object([
            ("a", Type::Number),
            ("b", Type::set(Type::String)),
            ("c", Type::Dynamic),
        ])),
        Type::map(Type::list(Type::map(Type::Number))),
        Type::Tuple(vec![Type::Bool, Type::Number, Type::String, Type::Dynamic]),
    ]);
    out
}

/// Decodes `data` (first byte picks the type) as msgpack and as JSON; whatever decodes must
/// encode and decode back to the same value.
pub fn dynamic_value(data: &[u8]) {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let types = cached_types();
    let ty = &types[usize::from(pick) % types.len()];
    if let Ok(v) = tfvalue::decode_msgpack(bytes, ty) {
        round_trip_msgpack(&v, ty);
    }
    if let Ok(v) = tfvalue::decode_json(bytes, ty) {
        if let Ok(encoded) = tfvalue::encode_json(&v, ty) {
            let again = tfvalue::decode_json(&encoded, ty);
            assert!(
                again.as_ref() == Ok(&v),
                "JSON round trip changed the value: {v:?} -> {again:?}"
            );
        }
    }
}

fn round_trip_msgpack(v: &Value, ty: &Type) {
    if let Ok(encoded) = tfvalue::encode_msgpack(v, ty) {
        let again = tfvalue::decode_msgpack(&encoded, ty);
        assert!(
            again.as_ref() == Ok(v),
            "msgpack round trip changed the value: {v:?} -> {again:?}"
        );
    }
}

/// Hands `data` to every resource's UpgradeResourceState as stored state of a version picked by
/// the first byte (including versions that do not exist).
pub fn state_upgrade(data: &[u8]) {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let version = i64::from(pick % 4) - 1;
    for resource in all_resources() {
        if let Ok(value) = resource.upgrade(version, bytes) {
            // An upgraded state must be a value of the current schema.
            round_trip_msgpack(&value, &resource.schema().block.value_type());
        }
    }
}

/// Parses `data` as a catalog snapshot; one that validates must be usable by the engine.
pub fn catalog_snapshot(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(snapshot) = catalog::parse_snapshot(text) else {
        return;
    };
    if snapshot.catalog.validate().is_err() {
        return;
    }
    let requirements = placement::Requirements::new(1.0, 1.0);
    for strategy in ["cost_optimized", "latency_optimized", "hybrid"] {
        if let Ok(strategy) = placement::Strategy::parse(strategy, None) {
            let _ = placement::place(
                &snapshot.catalog,
                &[],
                &requirements,
                &strategy,
                &placement::PlaceOptions::default(),
            );
        }
    }
}

/// A small valid snapshot cut from the embedded catalog: four regions, the instance types
/// offered there (up to twelve), their offers.
pub fn small_snapshot() -> String {
    use serde_json::json;
    let cat = catalog::embedded();
    let regions: Vec<_> = cat.regions.iter().take(4).collect();
    let mut kept_types = Vec::new();
    let mut offers = Vec::new();
    for o in cat.offers.iter() {
        if o.region.0 >= 4 {
            continue;
        }
        let t = match kept_types.iter().position(|t| *t == o.instance_type.0) {
            Some(t) => t,
            None if kept_types.len() < 12 => {
                kept_types.push(o.instance_type.0);
                kept_types.len() - 1
            }
            None => continue,
        };
        offers.push(json!([
            o.region.0,
            t,
            o.on_demand_hourly_usd,
            o.spot_hourly_usd
        ]));
    }
    let types: Vec<_> = kept_types
        .iter()
        .filter_map(|t| cat.instance_types.get(*t as usize))
        .collect();
    json!({
        "format": catalog::FORMAT_VERSION,
        "snapshot_date": cat.snapshot_date,
        "sources": cat.sources,
        "latency": cat.latency,
        "regions": regions,
        "instance_types": types,
        "offers": offers,
    })
    .to_string()
}

/// Serves one gRPC connection whose client sends `data` after the preface and its settings;
/// see `tfprotocol::server::fuzzing::connection`.
pub fn http2_connection(data: &[u8]) {
    tfprotocol::server::fuzzing::connection(data);
}

/// Starting inputs for the fuzzers: real encodings of null and unknown for every type (first
/// byte picks the type), a workload state, a small valid catalog snapshot, and whole gRPC
/// calls as HTTP/2 frames.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    for (i, ty) in cached_types().iter().enumerate() {
        for v in [Value::Null, Value::Unknown] {
            if let Ok(bytes) = tfvalue::encode_msgpack(&v, ty) {
                let mut seed = vec![i as u8];
                seed.extend(bytes);
                out.push(("dynamic_value", seed));
            }
        }
    }
    out.push((
        "state_upgrade",
        b"\x02{\"id\":\"wl-1\",\"name\":\"x\",\"cpu\":2,\"memory_gb\":4}".to_vec(),
    ));
    out.push(("catalog_snapshot", small_snapshot().into_bytes()));
    out.extend(
        tfprotocol::server::fuzzing::seeds()
            .into_iter()
            .map(|seed| ("http2_connection", seed)),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator: CI replays the same inputs every run.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }

        fn bytes(&mut self, max: usize) -> Vec<u8> {
            let n = (self.next() as usize) % max;
            (0..n).map(|_| self.next() as u8).collect()
        }
    }

    fn seeds() -> Vec<Vec<u8>> {
        super::seeds()
            .into_iter()
            .filter(|(target, _)| matches!(*target, "dynamic_value" | "state_upgrade"))
            .map(|(_, bytes)| bytes)
            .collect()
    }

    fn mutate(rng: &mut Lcg, seed: &[u8]) -> Vec<u8> {
        let mut out = seed.to_vec();
        for _ in 0..1 + rng.next() % 4 {
            match rng.next() % 4 {
                0 if !out.is_empty() => {
                    let i = (rng.next() as usize) % out.len();
                    out[i] ^= 1 << (rng.next() % 8);
                }
                1 => {
                    let i = (rng.next() as usize) % (out.len() + 1);
                    out.insert(i, rng.next() as u8);
                }
                2 if !out.is_empty() => {
                    let i = (rng.next() as usize) % out.len();
                    out.truncate(i);
                }
                _ => out.extend(rng.bytes(16)),
            }
        }
        out
    }

    #[test]
    fn decoders_and_upgrades_survive_random_and_mutated_input() {
        let mut rng = Lcg(0x00fa_cade);
        let seeds = seeds();
        let mut runs = 0;
        for i in 0..6000 {
            let input = if i % 2 == 0 {
                rng.bytes(200)
            } else {
                mutate(&mut rng, &seeds[i % seeds.len()])
            };
            dynamic_value(&input);
            state_upgrade(&input);
            runs += 2;
        }
        assert_eq!(runs, 12000);
    }

    #[test]
    fn catalog_loading_survives_mutated_snapshots() {
        let seed = small_snapshot();
        let parsed = catalog::parse_snapshot(&seed).expect("seed parses");
        parsed.catalog.validate().expect("seed validates");
        let mut rng = Lcg(0x0c47_a109);
        for _ in 0..1500 {
            catalog_snapshot(&mutate(&mut rng, seed.as_bytes()));
        }
    }
}
