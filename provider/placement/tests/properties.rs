//! Property tests: the engine against a brute-force oracle on random small catalogs.
//!
//! The oracle shares nothing with the engine but the GPU class table: it enumerates every
//! candidate, checks every constraint independently, scores with the documented formulas
//! written out naively, and takes the maximum.

use catalog::{Catalog, Cloud, Compliance};
use placement::testutil::{itype, region, shuffled, CatalogBuilder};
use placement::*;
use proptest::prelude::*;
use proptest::strategy::Strategy as Gen;

const COUNTRIES: [(&str, &str); 4] = [("US", "US"), ("DE", "EU"), ("IE", "EU"), ("JP", "APAC")];
const GPUS: [&str; 3] = ["NVIDIA T4", "NVIDIA A100", "NVIDIA L4"];

#[derive(Clone, Debug)]
struct RegionSpec {
    cloud: usize,
    country: usize,
    zones: u32,
    compliance: u8,
    lat: f64,
    lng: f64,
    storage: Option<f64>,
}

#[derive(Clone, Debug)]
struct TypeSpec {
    cloud: usize,
    vcpu_pow: u32,
    mem_mult: f64,
    gpus: u32,
    gpu_model: usize,
    gen: Option<u32>,
}

#[derive(Clone, Debug)]
struct EdgeSpec {
    country: usize,
    lat: f64,
    lng: f64,
    cpu: f64,
    mem: f64,
    gpus: u32,
    cost: Option<f64>,
    schedulable: bool,
    compliance: u8,
    onprem: bool,
}

#[derive(Clone, Debug)]
struct ReqSpec {
    cpu: f64,
    mem: f64,
    storage: f64,
    gpu: u32,
    gpu_model: Option<usize>,
    compliance: u8,
    residency: Option<usize>,
    providers: u8,
    budget: Option<f64>,
    users: Vec<(f64, f64, f64)>,
    max_latency: Option<f64>,
    replicas: u32,
    spot: bool,
    strategy: usize,
    weights: [f64; 4],
}

fn compliance_set(mask: u8) -> Vec<Compliance> {
    Compliance::ALL
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, c)| *c)
        .collect()
}

fn region_spec() -> impl Gen<Value = RegionSpec> {
    (
        0..3usize,
        0..4usize,
        0..5u32,
        any::<u8>(),
        -60.0..60.0f64,
        -180.0..180.0f64,
        prop::option::of(0.01..0.2f64),
    )
        .prop_map(
            |(cloud, country, zones, compliance, lat, lng, storage)| RegionSpec {
                cloud,
                country,
                zones,
                compliance,
                lat,
                lng,
                storage,
            },
        )
}

fn type_spec() -> impl Gen<Value = TypeSpec> {
    (
        0..3usize,
        0..5u32,
        prop::sample::select(vec![1.0, 2.0, 4.0, 8.0]),
        prop_oneof![4 => Just(0u32), 1 => 1..3u32],
        0..3usize,
        prop::option::of(1..6u32),
    )
        .prop_map(
            |(cloud, vcpu_pow, mem_mult, gpus, gpu_model, gen)| TypeSpec {
                cloud,
                vcpu_pow,
                mem_mult,
                gpus,
                gpu_model,
                gen,
            },
        )
}

fn edge_spec() -> impl Gen<Value = EdgeSpec> {
    (
        0..4usize,
        -60.0..60.0f64,
        -180.0..180.0f64,
        0.0..32.0f64,
        0.0..64.0f64,
        0..3u32,
        prop::option::of(0.0..2.0f64),
        prop::bool::weighted(0.8),
        any::<u8>(),
        any::<bool>(),
    )
        .prop_map(
            |(country, lat, lng, cpu, mem, gpus, cost, schedulable, compliance, onprem)| EdgeSpec {
                country,
                lat,
                lng,
                cpu,
                mem,
                gpus,
                cost,
                schedulable,
                compliance,
                onprem,
            },
        )
}

fn req_spec() -> impl Gen<Value = ReqSpec> {
    (
        (
            0.5..8.0f64,
            0.5..32.0f64,
            prop_oneof![Just(0.0), 10.0..200.0f64],
            prop_oneof![4 => Just(0u32), 1 => Just(1u32)],
            prop::option::of(0..3usize),
        ),
        (
            prop_oneof![3 => Just(0u8), 1 => 0..64u8],
            prop::option::weighted(0.3, 0..8usize),
            prop_oneof![3 => Just(0u8), 1 => 0..32u8],
        ),
        (
            prop::option::weighted(0.3, 0.05..10.0f64),
            prop::collection::vec((-60.0..60.0f64, -180.0..180.0f64, 0.1..5.0f64), 0..3),
            prop::option::weighted(0.3, 5.0..250.0f64),
        ),
        (
            1..4u32,
            prop::bool::weighted(0.2),
            0..6usize,
            [0.0..1.0f64, 0.0..1.0f64, 0.0..1.0f64, 0.01..1.0f64],
        ),
    )
        .prop_map(
            |(
                (cpu, mem, storage, gpu, gpu_model),
                (compliance, residency, providers),
                (budget, users, max_latency),
                (replicas, spot, strategy, weights),
            )| {
                ReqSpec {
                    cpu,
                    mem,
                    storage,
                    gpu,
                    gpu_model: if gpu > 0 { gpu_model } else { None },
                    compliance,
                    residency,
                    providers,
                    budget,
                    users,
                    max_latency,
                    replicas,
                    spot,
                    strategy,
                    weights,
                }
            },
        )
}

type Offers = Vec<(bool, f64, Option<f64>)>;

fn build(regions: &[RegionSpec], types: &[TypeSpec], offers: &Offers) -> Catalog {
    let mut b = CatalogBuilder::default();
    for (i, r) in regions.iter().enumerate() {
        let cloud = Cloud::ALL[r.cloud];
        let (country, j) = COUNTRIES[r.country];
        let mut reg = region(
            cloud,
            &format!("r{i}"),
            country,
            &[j],
            r.lat,
            r.lng,
            r.zones,
            &compliance_set(r.compliance),
        );
        reg.storage_gb_month_usd = r.storage;
        b = b.region(reg);
    }
    for (i, t) in types.iter().enumerate() {
        let cloud = Cloud::ALL[t.cloud];
        let vcpu = 1u32 << t.vcpu_pow;
        let model = (t.gpus > 0).then(|| GPUS[t.gpu_model]);
        b = b.itype(itype(
            cloud,
            &format!("t{i}"),
            vcpu,
            f64::from(vcpu) * t.mem_mult,
            t.gpus,
            model,
            t.gen,
        ));
    }
    for (ri, r) in regions.iter().enumerate() {
        for (ti, t) in types.iter().enumerate() {
            let (present, price, spot) = offers[(ri * 8 + ti) % offers.len()];
            if present && r.cloud == t.cloud {
                b = b.offer(
                    Cloud::ALL[r.cloud],
                    &format!("r{ri}"),
                    &format!("t{ti}"),
                    price,
                    spot,
                );
            }
        }
    }
    b.build()
}

fn edges(specs: &[EdgeSpec]) -> Vec<EdgeCandidate> {
    specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (country, j) = COUNTRIES[s.country];
            let mut e = EdgeCandidate::new(
                &format!("node{i}"),
                &format!("site{}", i % 2),
                country,
                s.lat,
                s.lng,
                s.cpu,
                s.mem,
            );
            e.provider = if s.onprem {
                Provider::Onprem
            } else {
                Provider::Edge
            };
            e.jurisdictions = vec![j.to_string()];
            e.free_gpu = s.gpus;
            e.gpu_model = (s.gpus > 0).then(|| GPUS[i % 3].to_string());
            e.hourly_cost = s.cost;
            e.schedulable = s.schedulable;
            e.compliance = compliance_set(s.compliance);
            e.free_storage_gb = 500.0;
            e
        })
        .collect()
}

fn requirements(s: &ReqSpec, cat: &Catalog) -> (Requirements, placement::Strategy) {
    let mut r = Requirements::new(s.cpu, s.mem)
        .with_storage_gb(s.storage)
        .with_gpu(s.gpu, s.gpu_model.map(|i| ["t4", "a100", "l4"][i]))
        .with_compliance(&compliance_set(s.compliance & 0b111))
        .with_providers(
            &Provider::ALL
                .iter()
                .enumerate()
                .filter(|(i, _)| s.providers & (1 << i) != 0)
                .map(|(_, p)| *p)
                .collect::<Vec<_>>(),
        )
        .with_users(
            &s.users
                .iter()
                .map(|&(lat, lng, weight)| UserLocation { lat, lng, weight })
                .collect::<Vec<_>>(),
        )
        .with_replicas(s.replicas);
    if let Some(i) = s.residency {
        r = r.with_residency(vec![match i {
            0 => Residency::Token("EU".into()),
            1 => Residency::Token("US".into()),
            2 => Residency::Token("DE".into()),
            3 => Residency::Token("APAC".into()),
            n => Residency::Region(
                cat.regions
                    .get(n - 4)
                    .map(|r| r.code.clone())
                    .unwrap_or_else(|| "r0".into()),
            ),
        }]);
    }
    if let Some(b) = s.budget {
        r = r.with_budget(b);
    }
    if let Some(m) = s.max_latency {
        r = r.with_max_latency_ms(m);
    }
    if s.spot {
        r = r.with_spot();
    }
    let strat = match s.strategy {
        0 => placement::Strategy::CostOptimized,
        1 => placement::Strategy::PerformanceOptimized,
        2 => placement::Strategy::LatencyOptimized,
        3 => placement::Strategy::ResilienceOptimized,
        4 => placement::Strategy::Hybrid,
        _ => {
            let sum: f64 = s.weights.iter().sum();
            let w = s.weights.map(|x| x / sum);
            let last = 1.0 - w[0] - w[1] - w[2];
            placement::Strategy::Custom(Weights::new(w[0], w[1], w[2], last.max(0.0)).unwrap_or(
                Weights {
                    cost: 0.25,
                    performance: 0.25,
                    latency: 0.25,
                    resilience: 0.25,
                },
            ))
        }
    };
    (r, strat)
}

// ---------------------------------------------------------------- the oracle

#[derive(Clone, Debug)]
struct OracleCand {
    key: (String, String, String),
    cost: Option<f64>,
    lat: Option<f64>,
    perf: f64,
    res: f64,
    score: f64,
}

fn haversine(a: (f64, f64), b: (f64, f64)) -> f64 {
    let r = 6371.0088;
    let (la1, la2) = (a.0.to_radians(), b.0.to_radians());
    let h = ((la2 - la1) / 2.0).sin().powi(2)
        + la1.cos() * la2.cos() * ((b.1 - a.1).to_radians() / 2.0).sin().powi(2);
    2.0 * r * h.clamp(0.0, 1.0).sqrt().asin()
}

fn oracle(
    cat: &Catalog,
    edge: &[EdgeCandidate],
    req: &Requirements,
    w: Weights,
) -> Vec<OracleCand> {
    let rtt = |p: (f64, f64)| -> (Option<f64>, Option<f64>) {
        if req.user_locations.is_empty() {
            return (None, None);
        }
        let ms: Vec<(f64, f64)> = req
            .user_locations
            .iter()
            .map(|u| {
                (
                    2.0 * haversine(p, (u.lat, u.lng)) / cat.latency.fibre_km_per_ms
                        * cat.latency.route_factor
                        + cat.latency.base_ms,
                    u.weight,
                )
            })
            .collect();
        let mean =
            ms.iter().map(|(m, w)| m * w).sum::<f64>() / ms.iter().map(|(_, w)| w).sum::<f64>();
        (Some(mean), ms.iter().map(|(m, _)| *m).reduce(f64::max))
    };
    let res_ok = |code: &str, country: &str, jur: &[String]| {
        req.data_residency.is_empty()
            || req.data_residency.iter().any(|r| match r {
                Residency::Region(c) => c.eq_ignore_ascii_case(code),
                Residency::Token(t) => {
                    t.eq_ignore_ascii_case(country) || jur.iter().any(|j| j.eq_ignore_ascii_case(t))
                }
            })
    };
    let prov_ok =
        |p: Provider| req.preferred_providers.is_empty() || req.preferred_providers.contains(&p);
    let model_ok = |m: Option<&str>| {
        req.gpu_model
            .as_ref()
            .is_none_or(|want| m.is_some_and(|m| m.to_lowercase().contains(want.as_str())))
    };
    let lat_ok = |max: Option<f64>| match (req.max_latency_ms, max) {
        (Some(limit), Some(m)) => m <= limit,
        _ => true,
    };
    let budget_ok = |c: Option<f64>| match (req.cost_budget_hourly, c) {
        (Some(b), Some(c)) => c <= b,
        (Some(_), None) => false,
        (None, _) => true,
    };
    let perf = |vcpu: f64, mem: f64, gen: Option<f64>, gpu_model: Option<&str>| {
        let ratio = (vcpu / req.cpu).min(mem / req.memory_gb);
        let h = ratio.log2().clamp(0.0, 1.0);
        let g = gen.unwrap_or(0.5);
        if req.gpu_count > 0 {
            100.0 * (0.2 * h + 0.3 * g + 0.5 * placement::scoring::gpu_class(gpu_model))
        } else {
            100.0 * (0.3 * h + 0.7 * g)
        }
    };
    let reps = f64::from(req.replicas);
    let mut out = Vec::new();
    for o in cat.offers.iter() {
        let r = cat.region(o.region);
        let t = cat.instance_type(o.instance_type);
        let p = Provider::from_cloud(r.cloud);
        let price = if req.pricing_model == PricingModel::Spot {
            o.spot_hourly_usd
        } else {
            Some(o.on_demand_hourly_usd)
        };
        let storage = if req.storage_gb > 0.0 {
            r.storage_gb_month_usd
                .map(|s| req.storage_gb * s / 730.0)
                .unwrap_or(0.0)
        } else {
            0.0
        };
        let cost = price.map(|p| (p + storage) * reps);
        let (mean, max) = rtt((r.lat, r.lng));
        let ok = f64::from(t.vcpu) >= req.cpu
            && t.memory_gib >= req.memory_gb
            && t.gpu_count >= req.gpu_count
            && model_ok(t.gpu_model.as_deref())
            && req.compliance.iter().all(|c| r.compliance.contains(c))
            && res_ok(&r.code, &r.country, &r.jurisdictions)
            && prov_ok(p)
            && price.is_some()
            && budget_ok(cost)
            && lat_ok(max);
        if ok {
            let newest = cat
                .instance_types
                .iter()
                .filter(|x| x.cloud == t.cloud)
                .filter_map(|x| x.generation)
                .max()
                .unwrap_or(0);
            let gen = t
                .generation
                .filter(|_| newest > 0)
                .map(|g| f64::from(g) / f64::from(newest));
            let res = match r.zones {
                0 => 60.0,
                1 => 50.0,
                2 => 75.0,
                _ => 100.0,
            };
            out.push(OracleCand {
                key: (p.as_str().to_string(), r.code.clone(), t.name.clone()),
                cost,
                lat: mean,
                perf: perf(f64::from(t.vcpu), t.memory_gib, gen, t.gpu_model.as_deref()),
                res,
                score: 0.0,
            });
        }
    }
    for e in edge {
        let cost = e.hourly_cost.map(|c| c * reps);
        let (mean, max) = rtt((e.lat, e.lng));
        let ok = e.free_cpu >= req.cpu
            && e.free_memory_gb >= req.memory_gb
            && e.free_gpu >= req.gpu_count
            && model_ok(e.gpu_model.as_deref())
            && req.compliance.iter().all(|c| e.compliance.contains(c))
            && res_ok(&e.region, &e.country, &e.jurisdictions)
            && prov_ok(e.provider)
            && e.schedulable
            && e.free_cpu >= req.cpu * reps
            && e.free_memory_gb >= req.memory_gb * reps
            && e.free_storage_gb >= req.storage_gb * reps
            && f64::from(e.free_gpu) >= f64::from(req.gpu_count) * reps
            && budget_ok(cost)
            && lat_ok(max);
        if ok {
            out.push(OracleCand {
                key: (
                    e.provider.as_str().to_string(),
                    e.region.clone(),
                    e.id.clone(),
                ),
                cost,
                lat: mean,
                perf: perf(e.free_cpu, e.free_memory_gb, None, e.gpu_model.as_deref()),
                res: 25.0,
                score: 0.0,
            });
        }
    }
    let costs: Vec<f64> = out.iter().filter_map(|c| c.cost).collect();
    let lats: Vec<f64> = out.iter().filter_map(|c| c.lat).collect();
    let cmin = costs
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .max(1e-6);
    let (lmin, lmax) = (
        lats.iter().copied().fold(f64::INFINITY, f64::min),
        lats.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
    for c in &mut out {
        let cs = match c.cost {
            None => 0.0,
            Some(v) => (100.0 * cmin / v.max(1e-6)).clamp(0.0, 100.0),
        };
        let ls = match c.lat {
            None => 100.0,
            Some(_) if lmax - lmin <= 1e-12 => 100.0,
            Some(v) => 100.0 * (lmax - v) / (lmax - lmin),
        };
        c.score = w.cost * cs + w.performance * c.perf + w.latency * ls + w.resilience * c.res;
    }
    out
}

fn key_of(p: &Placement) -> (String, String, String) {
    (
        p.provider.clone(),
        p.region.clone(),
        p.instance_type
            .clone()
            .or_else(|| p.node.clone())
            .unwrap_or_default(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn engine_matches_oracle(
        regions in prop::collection::vec(region_spec(), 0..7),
        types in prop::collection::vec(type_spec(), 1..9),
        offers in prop::collection::vec((prop::bool::weighted(0.8), 0.01..3.0f64, prop::option::of(0.005..1.0f64)), 64),
        edge_specs in prop::collection::vec(edge_spec(), 0..4),
        rs in req_spec(),
        seed in any::<u64>(),
    ) {
        let cat = build(&regions, &types, &offers);
        let edge = edges(&edge_specs);
        let (req, strat) = requirements(&rs, &cat);
        let opts = PlaceOptions::default();
        let got = place(&cat, &edge, &req, &strat, &opts);
        let truth = oracle(&cat, &edge, &req, strat.weights());

        // Identical on repeat.
        prop_assert_eq!(&got, &place(&cat, &edge, &req, &strat, &opts));
        // Identical with the catalog's vectors and the edge list shuffled.
        let mut edge_rev = edge.clone();
        edge_rev.reverse();
        prop_assert_eq!(&got, &place(&shuffled(&cat, seed), &edge_rev, &req, &strat, &opts));

        match got {
            Err(e) => {
                prop_assert!(truth.is_empty(), "engine found nothing, oracle found {:?}", truth);
                prop_assert_eq!(e.rejected.total(), e.considered);
                prop_assert_eq!(e.considered, cat.offers.len() + edge.len());
                let _ = e.to_string();
            }
            Ok(d) => {
                prop_assert!(!truth.is_empty());
                prop_assert_eq!(d.feasible, truth.len());
                prop_assert_eq!(d.rejected.total() + d.feasible, d.considered);
                let best = truth.iter().map(|c| c.score).fold(f64::NEG_INFINITY, f64::max);
                prop_assert!((d.placement.score - best).abs() < 1e-9, "engine {} oracle {}", d.placement.score, best);
                // Never a hard-constraint violation: the winner and all alternatives are feasible
                // per the oracle, with the same score.
                for p in std::iter::once(&d.placement).chain(&d.alternatives) {
                    let k = key_of(p);
                    let o = truth.iter().find(|c| c.key == k);
                    prop_assert!(o.is_some(), "{:?} is infeasible per the oracle", k);
                    if let Some(o) = o {
                        prop_assert!((o.score - p.score).abs() < 1e-9, "{:?}: engine {} oracle {}", k, p.score, o.score);
                        prop_assert_eq!(p.cost_known, o.cost.is_some());
                    }
                }
                prop_assert!(d.alternatives.len() <= opts.top_k);
            }
        }
    }

    #[test]
    fn sticky_never_keeps_a_clearly_worse_placement(
        regions in prop::collection::vec(region_spec(), 1..6),
        types in prop::collection::vec(type_spec(), 1..8),
        offers in prop::collection::vec((prop::bool::weighted(0.9), 0.01..3.0f64, prop::option::of(0.005..1.0f64)), 64),
        mut rs in req_spec(),
        pick in any::<prop::sample::Index>(),
        threshold in 0.0..30.0f64,
    ) {
        let cat = build(&regions, &types, &offers);
        // Loosen the hard constraints so most cases have candidates to be sticky about.
        (rs.budget, rs.max_latency, rs.compliance, rs.residency, rs.providers, rs.gpu, rs.spot) =
            (None, None, 0, None, 0, 0, false);
        rs.cpu = rs.cpu.min(1.0);
        rs.mem = rs.mem.min(1.0);
        let (req, strat) = requirements(&rs, &cat);
        let truth = oracle(&cat, &[], &req, strat.weights());
        prop_assume!(!truth.is_empty());
        let cur = &truth[pick.index(truth.len())];
        let key = PlacementKey {
            provider: Provider::parse(&cur.key.0).unwrap_or(Provider::Aws),
            region: cur.key.1.clone(),
            instance_type: Some(cur.key.2.clone()),
            node: None,
        };
        let opts = PlaceOptions { current: Some(key), replace_threshold_percent: threshold, ..Default::default() };
        let d = place(&cat, &[], &req, &strat, &opts).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let best = truth.iter().map(|c| c.score).fold(f64::NEG_INFINITY, f64::max);
        if key_of(&d.placement) == cur.key {
            prop_assert!(best <= cur.score * (1.0 + threshold / 100.0) + 1e-9);
        } else {
            prop_assert!((d.placement.score - best).abs() < 1e-9);
            prop_assert!(best > cur.score * (1.0 + threshold / 100.0) - 1e-9);
        }
    }

    #[test]
    fn validation_never_panics_and_yields_finite_numbers(
        cpu in prop::option::of(prop_oneof![Just(f64::NAN), Just(f64::INFINITY), -10.0..100.0f64]),
        mem in prop::option::of(prop_oneof![Just(f64::NEG_INFINITY), -10.0..100.0f64]),
        budget in prop::option::of(prop_oneof![Just(f64::NAN), -1.0..10.0f64]),
        lat in prop_oneof![Just(f64::NAN), -200.0..200.0f64],
        lng in prop_oneof![Just(f64::INFINITY), -400.0..400.0f64],
        replicas in prop::option::of(-5..10i64),
    ) {
        let cat = placement::testutil::small_catalog();
        let raw = RawRequirements {
            cpu,
            memory_gb: mem,
            cost_budget_hourly: budget,
            user_locations: vec![RawUserLocation { lat, lng, weight: None }],
            replicas,
            ..Default::default()
        };
        if let Ok(r) = Requirements::validate(&raw, &cat) {
            prop_assert!(r.cpu.is_finite() && r.cpu > 0.0);
            prop_assert!(r.memory_gb.is_finite() && r.memory_gb > 0.0);
            prop_assert!(r.cost_budget_hourly.is_none_or(|b| b.is_finite() && b > 0.0));
            prop_assert!(r.user_locations.iter().all(|u| u.lat.abs() <= 90.0 && u.lng.abs() <= 180.0));
            prop_assert!(r.replicas >= 1);
            let _ = place(&cat, &[], &r, &placement::Strategy::Hybrid, &PlaceOptions::default());
        }
    }
}

/// Guards against a vacuous oracle comparison: the generators must produce feasible cases.
#[test]
fn generators_produce_feasible_cases() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let gen = (
        prop::collection::vec(region_spec(), 0..7),
        prop::collection::vec(type_spec(), 1..9),
        prop::collection::vec(
            (
                prop::bool::weighted(0.8),
                0.01..3.0f64,
                prop::option::of(0.005..1.0f64),
            ),
            64,
        ),
        prop::collection::vec(edge_spec(), 0..4),
        req_spec(),
    );
    let (mut ok, mut total) = (0, 0);
    for _ in 0..400 {
        let (regions, types, offers, edge_specs, rs) =
            gen.new_tree(&mut runner).expect("tree").current();
        let cat = build(&regions, &types, &offers);
        let edge = edges(&edge_specs);
        let (req, strat) = requirements(&rs, &cat);
        total += 1;
        if place(&cat, &edge, &req, &strat, &PlaceOptions::default()).is_ok() {
            ok += 1;
        }
    }
    eprintln!("{ok} of {total} random cases feasible");
    assert!(
        ok * 4 >= total,
        "only {ok} of {total} random cases are feasible"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Spreading: group count within [min, max], distinct groups, replicas conserved (divided)
    /// or repeated (duplicated), every group feasible per the oracle, budget respected.
    #[test]
    fn spread_respects_its_rule(
        regions in prop::collection::vec(region_spec(), 1..7),
        types in prop::collection::vec(type_spec(), 1..9),
        offers in prop::collection::vec((prop::bool::weighted(0.9), 0.01..3.0f64, prop::option::of(0.005..1.0f64)), 64),
        mut rs in req_spec(),
        by in 0..3usize,
        min in 1..4u32,
        extra in 0..3u32,
        divided in any::<bool>(),
    ) {
        (rs.compliance, rs.residency, rs.providers, rs.gpu, rs.spot, rs.max_latency) = (0, None, 0, 0, false, None);
        let cat = build(&regions, &types, &offers);
        let (req, strat) = requirements(&rs, &cat);
        let spread_by = [SpreadBy::Provider, SpreadBy::Region, SpreadBy::Zone][by];
        let scheduling = if divided { ReplicaScheduling::Divided } else { ReplicaScheduling::Duplicated };
        let rule = SpreadRule::new(spread_by, min, min + extra, scheduling).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let Ok(d) = place_spread(&cat, &[], &req, &strat, &PlaceOptions::default(), &rule) else {
            return Ok(());
        };
        let n = d.assignments.len() as u32;
        prop_assert!(n >= min && n <= min + extra);
        let total: u32 = d.assignments.iter().map(|a| a.replicas).sum();
        if divided {
            prop_assert_eq!(total, req.replicas);
        } else {
            prop_assert!(d.assignments.iter().all(|a| a.replicas == req.replicas));
        }
        let mut keys: Vec<String> = d
            .assignments
            .iter()
            .map(|a| match spread_by {
                SpreadBy::Provider => a.placement.provider.clone(),
                SpreadBy::Region => format!("{}/{}", a.placement.provider, a.placement.region),
                SpreadBy::Zone => format!("{}/{}/{:?}", a.placement.provider, a.placement.region, a.placement.zone),
            })
            .collect();
        keys.sort();
        keys.dedup();
        prop_assert_eq!(keys.len() as u32, n, "groups are distinct");
        if let Some(b) = req.cost_budget_hourly {
            prop_assert!(d.total_cost_hourly <= b + 1e-9);
        }
        // Each group's candidate satisfies the hard constraints for its share of replicas.
        for a in &d.assignments {
            let share = req.clone().with_replicas(a.replicas).with_budget(f64::MAX);
            let truth = oracle(&cat, &[], &share, strat.weights());
            let k = key_of(&a.placement);
            prop_assert!(truth.iter().any(|c| c.key == k), "{:?} infeasible", k);
        }
    }
}
