//! Validated workload requirements: the only input type the engine trusts.
//!
//! Raw user input (`RawRequirements`, what the Terraform layer decodes from HCL) is turned into
//! `Requirements` by [`Requirements::validate`], which collects *every* problem as a
//! [`FieldError`] naming the attribute path, so one plan shows all mistakes at once. After
//! validation every number is finite and in range, so the engine never has to check again and
//! never panics on user input.

use catalog::{Catalog, Cloud, Compliance};
use std::fmt;

/// One invalid attribute. `field` is the attribute path as the user wrote it:
/// `cpu`, `weights.cost`, `data_residency_regions[1]`, `user_locations[0].lat`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Where a workload may run: the three clouds from the catalog plus caller-supplied nodes.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Provider {
    Aws,
    Azure,
    Gcp,
    Edge,
    Onprem,
}

impl Provider {
    pub const ALL: [Provider; 5] = [
        Provider::Aws,
        Provider::Azure,
        Provider::Gcp,
        Provider::Edge,
        Provider::Onprem,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Aws => "aws",
            Provider::Azure => "azure",
            Provider::Gcp => "gcp",
            Provider::Edge => "edge",
            Provider::Onprem => "onprem",
        }
    }

    /// Case-insensitive; accepts `on-prem` / `on_prem` for `onprem`.
    pub fn parse(text: &str) -> Option<Provider> {
        let norm: String = text
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect();
        match norm.as_str() {
            "aws" => Some(Provider::Aws),
            "azure" => Some(Provider::Azure),
            "gcp" => Some(Provider::Gcp),
            "edge" => Some(Provider::Edge),
            "onprem" => Some(Provider::Onprem),
            _ => None,
        }
    }

    pub fn from_cloud(cloud: Cloud) -> Provider {
        match cloud {
            Cloud::Aws => Provider::Aws,
            Cloud::Azure => Provider::Azure,
            Cloud::Gcp => Provider::Gcp,
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which price the cost dimension and the budget use.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum PricingModel {
    #[default]
    OnDemand,
    /// Spot / preemptible price. Cloud offers without a real spot figure are rejected with
    /// `Rejection::NoPrice` (never priced from on-demand or as $0).
    Spot,
}

/// What the workload is. Informational today (kept for the reason and for later tuning of the
/// performance formula); it does not change scores.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum WorkloadType {
    #[default]
    General,
    Web,
    Api,
    Batch,
    Database,
    Cache,
    Streaming,
    DataAnalytics,
    MlTraining,
    MlInference,
}

impl WorkloadType {
    pub fn parse(text: &str) -> Option<WorkloadType> {
        let norm: String = text
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect();
        match norm.as_str() {
            "general" => Some(WorkloadType::General),
            "web" => Some(WorkloadType::Web),
            "api" => Some(WorkloadType::Api),
            "cache" => Some(WorkloadType::Cache),
            "streaming" => Some(WorkloadType::Streaming),
            "dataanalytics" | "analytics" => Some(WorkloadType::DataAnalytics),
            "batch" => Some(WorkloadType::Batch),
            "database" | "db" => Some(WorkloadType::Database),
            "mltraining" | "training" => Some(WorkloadType::MlTraining),
            "mlinference" | "inference" => Some(WorkloadType::MlInference),
            _ => None,
        }
    }
}

/// A point users connect from, with a relative weight (> 0).
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct UserLocation {
    pub lat: f64,
    pub lng: f64,
    pub weight: f64,
}

/// A user location as decoded, before validation. `weight` defaults to 1.
#[derive(Copy, Clone, Debug, Default, PartialEq)]
pub struct RawUserLocation {
    pub lat: f64,
    pub lng: f64,
    pub weight: Option<f64>,
}

/// Requirements exactly as the user wrote them (strings and possibly-invalid numbers).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RawRequirements {
    pub cpu: Option<f64>,
    pub memory_gb: Option<f64>,
    pub storage_gb: Option<f64>,
    pub gpu_count: Option<i64>,
    pub gpu_model: Option<String>,
    pub max_latency_ms: Option<f64>,
    pub cost_budget_hourly: Option<f64>,
    pub compliance: Vec<String>,
    pub preferred_providers: Vec<String>,
    pub data_residency_regions: Vec<String>,
    pub user_locations: Vec<RawUserLocation>,
    pub workload_type: Option<String>,
    pub replicas: Option<i64>,
    pub spot_allowed: Option<bool>,
    pub pricing_model: Option<String>,
}

/// One entry of `data_residency_regions`, resolved against the catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Residency {
    /// A region code of some provider (stored lower-case), matched case-insensitively.
    Region(String),
    /// A jurisdiction (`EU`, `US-GOV`) or ISO country (`DE`) token (stored upper-case), matched
    /// against `Region::jurisdictions` and `Region::country`.
    Token(String),
}

/// Validated requirements. Construct with [`Requirements::validate`] or [`Requirements::new`]
/// plus the `with_*` builders (the builders assume already-valid values; `validate` is the
/// path for user input).
#[derive(Clone, Debug, PartialEq)]
pub struct Requirements {
    /// vCPUs per replica, > 0.
    pub cpu: f64,
    /// Memory per replica, GB (compared with the catalog's GiB 1:1), > 0.
    pub memory_gb: f64,
    /// Block storage per replica, GB, >= 0.
    pub storage_gb: f64,
    pub gpu_count: u32,
    /// Lower-cased; case-insensitive substring of the type's GPU model.
    pub gpu_model: Option<String>,
    pub max_latency_ms: Option<f64>,
    /// Budget for the whole workload (all replicas, storage included), USD per hour.
    pub cost_budget_hourly: Option<f64>,
    /// De-duplicated, in the order written.
    pub compliance: Vec<Compliance>,
    /// Empty means every provider is acceptable.
    pub preferred_providers: Vec<Provider>,
    /// Empty means no residency constraint.
    pub data_residency: Vec<Residency>,
    pub user_locations: Vec<UserLocation>,
    pub workload_type: WorkloadType,
    /// >= 1.
    pub replicas: u32,
    pub spot_allowed: bool,
    pub pricing_model: PricingModel,
}

impl Requirements {
    /// Minimal valid requirements (panics never; non-finite or non-positive values are clamped
    /// to the smallest valid request so the builder stays total).
    pub fn new(cpu: f64, memory_gb: f64) -> Requirements {
        let pos = |v: f64| if v.is_finite() && v > 0.0 { v } else { 0.001 };
        Requirements {
            cpu: pos(cpu),
            memory_gb: pos(memory_gb),
            storage_gb: 0.0,
            gpu_count: 0,
            gpu_model: None,
            max_latency_ms: None,
            cost_budget_hourly: None,
            compliance: Vec::new(),
            preferred_providers: Vec::new(),
            data_residency: Vec::new(),
            user_locations: Vec::new(),
            workload_type: WorkloadType::General,
            replicas: 1,
            spot_allowed: false,
            pricing_model: PricingModel::OnDemand,
        }
    }

    pub fn with_gpu(mut self, count: u32, model: Option<&str>) -> Self {
        self.gpu_count = count;
        self.gpu_model = model.map(|m| m.to_ascii_lowercase());
        self
    }
    pub fn with_storage_gb(mut self, gb: f64) -> Self {
        self.storage_gb = gb;
        self
    }
    pub fn with_budget(mut self, usd_per_hour: f64) -> Self {
        self.cost_budget_hourly = Some(usd_per_hour);
        self
    }
    pub fn with_max_latency_ms(mut self, ms: f64) -> Self {
        self.max_latency_ms = Some(ms);
        self
    }
    pub fn with_compliance(mut self, c: &[Compliance]) -> Self {
        self.compliance = c.to_vec();
        self
    }
    pub fn with_providers(mut self, p: &[Provider]) -> Self {
        self.preferred_providers = p.to_vec();
        self
    }
    pub fn with_residency(mut self, r: Vec<Residency>) -> Self {
        self.data_residency = r;
        self
    }
    pub fn with_users(mut self, u: &[UserLocation]) -> Self {
        self.user_locations = u.to_vec();
        self
    }
    pub fn with_replicas(mut self, n: u32) -> Self {
        self.replicas = n.max(1);
        self
    }
    pub fn with_spot(mut self) -> Self {
        self.spot_allowed = true;
        self.pricing_model = PricingModel::Spot;
        self
    }

    /// Validates raw input against the catalog (region codes in `data_residency_regions` must
    /// exist in it). Returns every problem found, in attribute order.
    pub fn validate(
        raw: &RawRequirements,
        catalog: &Catalog,
    ) -> Result<Requirements, Vec<FieldError>> {
        let mut errs = Vec::new();
        let positive = |name: &str, v: Option<f64>, errs: &mut Vec<FieldError>| -> f64 {
            match v {
                None => {
                    errs.push(FieldError::new(name, "is required"));
                    0.0
                }
                Some(x) if !x.is_finite() => {
                    errs.push(FieldError::new(
                        name,
                        format!("must be a finite number, got {x}"),
                    ));
                    0.0
                }
                Some(x) if x <= 0.0 => {
                    errs.push(FieldError::new(
                        name,
                        format!("must be greater than 0, got {x}"),
                    ));
                    0.0
                }
                Some(x) => x,
            }
        };
        let optional_positive =
            |name: &str, v: Option<f64>, errs: &mut Vec<FieldError>| -> Option<f64> {
                match v {
                    Some(x) if !x.is_finite() => {
                        errs.push(FieldError::new(
                            name,
                            format!("must be a finite number, got {x}"),
                        ));
                        None
                    }
                    Some(x) if x <= 0.0 => {
                        errs.push(FieldError::new(
                            name,
                            format!("must be greater than 0, got {x}"),
                        ));
                        None
                    }
                    other => other,
                }
            };

        let cpu = positive("cpu", raw.cpu, &mut errs);
        let memory_gb = positive("memory_gb", raw.memory_gb, &mut errs);
        let storage_gb = match raw.storage_gb {
            None => 0.0,
            Some(x) if !x.is_finite() || x < 0.0 => {
                errs.push(FieldError::new(
                    "storage_gb",
                    format!("must be a finite number >= 0, got {x}"),
                ));
                0.0
            }
            Some(x) => x,
        };
        let gpu_count = match raw.gpu_count {
            None => 0,
            Some(n) if !(0..=u32::MAX as i64).contains(&n) => {
                errs.push(FieldError::new(
                    "gpu_count",
                    format!("must be >= 0, got {n}"),
                ));
                0
            }
            Some(n) => n as u32,
        };
        let gpu_model = match raw.gpu_model.as_deref().map(str::trim) {
            None => None,
            Some("") => {
                errs.push(FieldError::new("gpu_model", "must not be empty"));
                None
            }
            Some(m) if !catalog.knows_gpu_model(m) => {
                errs.push(FieldError::new(
                    "gpu_model",
                    format!(
                        "{m:?} matches no GPU model in the catalog; known models: {}",
                        catalog.gpu_models().join(", ")
                    ),
                ));
                None
            }
            Some(m) => Some(m.to_ascii_lowercase()),
        };
        let gpu_count = if gpu_model.is_some() && gpu_count == 0 {
            1
        } else {
            gpu_count
        };
        let max_latency_ms = optional_positive("max_latency_ms", raw.max_latency_ms, &mut errs);
        let cost_budget_hourly =
            optional_positive("cost_budget_hourly", raw.cost_budget_hourly, &mut errs);

        let mut compliance = Vec::new();
        for (i, c) in raw.compliance.iter().enumerate() {
            match Compliance::parse(c) {
                Some(c) if !compliance.contains(&c) => compliance.push(c),
                Some(_) => {}
                None => errs.push(FieldError::new(
                    format!("compliance[{i}]"),
                    format!(
                        "unknown compliance regime {c:?}; expected one of gdpr, fedramp, soc2, iso27001, hipaa, pci_dss"
                    ),
                )),
            }
        }

        let mut preferred_providers = Vec::new();
        for (i, p) in raw.preferred_providers.iter().enumerate() {
            match Provider::parse(p) {
                Some(p) if !preferred_providers.contains(&p) => preferred_providers.push(p),
                Some(_) => {}
                None => errs.push(FieldError::new(
                    format!("preferred_providers[{i}]"),
                    format!(
                        "unknown provider {p:?}; expected one of aws, azure, gcp, edge, onprem"
                    ),
                )),
            }
        }

        let mut data_residency = Vec::new();
        for (i, r) in raw.data_residency_regions.iter().enumerate() {
            match resolve_residency(r, catalog) {
                Some(res) => {
                    if !data_residency.contains(&res) {
                        data_residency.push(res)
                    }
                }
                None => errs.push(FieldError::new(
                    format!("data_residency_regions[{i}]"),
                    format!(
                        "{r:?} is neither a region code in the catalog nor a jurisdiction/country token (e.g. EU, US, DE)"
                    ),
                )),
            }
        }

        let user_locations =
            validate_user_locations(&raw.user_locations, "user_locations", &mut errs);

        let workload_type = match raw.workload_type.as_deref() {
            None => WorkloadType::General,
            Some(w) => WorkloadType::parse(w).unwrap_or_else(|| {
                errs.push(FieldError::new(
                    "workload_type",
                    format!(
                        "unknown workload type {w:?}; expected general, web, api, batch, database, cache, streaming, data_analytics, ml_training or ml_inference"
                    ),
                ));
                WorkloadType::General
            }),
        };

        let replicas = match raw.replicas {
            None => 1,
            Some(n) if !(1..=u32::MAX as i64).contains(&n) => {
                errs.push(FieldError::new(
                    "replicas",
                    format!("must be >= 1, got {n}"),
                ));
                1
            }
            Some(n) => n as u32,
        };

        let pricing_model = match raw.pricing_model.as_deref().map(|s| s.to_ascii_lowercase()) {
            None => PricingModel::OnDemand,
            Some(s) if s == "on_demand" || s == "on-demand" || s == "ondemand" => {
                PricingModel::OnDemand
            }
            Some(s) if s == "spot" => PricingModel::Spot,
            Some(s) => {
                errs.push(FieldError::new(
                    "pricing_model",
                    format!("unknown pricing model {s:?}; expected on_demand or spot"),
                ));
                PricingModel::OnDemand
            }
        };
        let spot_allowed = raw
            .spot_allowed
            .unwrap_or(pricing_model == PricingModel::Spot);
        if pricing_model == PricingModel::Spot && !spot_allowed {
            errs.push(FieldError::new(
                "pricing_model",
                "is spot but spot_allowed is false",
            ));
        }

        if errs.is_empty() {
            Ok(Requirements {
                cpu,
                memory_gb,
                storage_gb,
                gpu_count,
                gpu_model,
                max_latency_ms,
                cost_budget_hourly,
                compliance,
                preferred_providers,
                data_residency,
                user_locations,
                workload_type,
                replicas,
                spot_allowed,
                pricing_model,
            })
        } else {
            Err(errs)
        }
    }
}

/// Well-known jurisdiction tokens accepted even if no region in the catalog carries them yet.
const KNOWN_JURISDICTIONS: &[&str] = &["EU", "EEA", "US", "US-GOV", "UK", "APAC", "EMEA", "LATAM"];

/// Validates user locations (lat in [-90, 90], lng in [-180, 180], weight finite and > 0,
/// default 1), reporting each problem as `{field}[i].lat` etc.; returns the valid ones.
/// Shared by workload requirements and edge requests so both say the same thing.
pub(crate) fn validate_user_locations(
    raw: &[RawUserLocation],
    field: &str,
    errs: &mut Vec<FieldError>,
) -> Vec<UserLocation> {
    let mut user_locations = Vec::new();
    for (i, u) in raw.iter().enumerate() {
        let mut ok = true;
        if !u.lat.is_finite() || !(-90.0..=90.0).contains(&u.lat) {
            errs.push(FieldError::new(
                format!("{field}[{i}].lat"),
                format!("must be within [-90, 90], got {}", u.lat),
            ));
            ok = false;
        }
        if !u.lng.is_finite() || !(-180.0..=180.0).contains(&u.lng) {
            errs.push(FieldError::new(
                format!("{field}[{i}].lng"),
                format!("must be within [-180, 180], got {}", u.lng),
            ));
            ok = false;
        }
        let weight = u.weight.unwrap_or(1.0);
        if !weight.is_finite() || weight <= 0.0 {
            errs.push(FieldError::new(
                format!("{field}[{i}].weight"),
                format!("must be a finite number > 0, got {weight}"),
            ));
            ok = false;
        }
        if ok {
            user_locations.push(UserLocation {
                lat: u.lat,
                lng: u.lng,
                weight,
            });
        }
    }
    user_locations
}

/// Region code first (exact, case-insensitive), then jurisdiction token, then ISO country code.
pub fn resolve_residency(text: &str, catalog: &Catalog) -> Option<Residency> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    if catalog
        .regions
        .iter()
        .any(|r| r.code.eq_ignore_ascii_case(t))
    {
        return Some(Residency::Region(t.to_ascii_lowercase()));
    }
    let upper = t.to_ascii_uppercase();
    let known = KNOWN_JURISDICTIONS.contains(&upper.as_str())
        || catalog.regions.iter().any(|r| {
            r.country.eq_ignore_ascii_case(t)
                || r.jurisdictions.iter().any(|j| j.eq_ignore_ascii_case(t))
        })
        || (upper.len() == 2 && upper.bytes().all(|b| b.is_ascii_uppercase()));
    known.then_some(Residency::Token(upper))
}

/// Does a place with this code / country / jurisdictions satisfy one residency entry?
pub(crate) fn residency_matches(
    res: &Residency,
    code: &str,
    country: &str,
    jurisdictions: &[String],
) -> bool {
    match res {
        Residency::Region(r) => code.eq_ignore_ascii_case(r),
        Residency::Token(t) => {
            country.eq_ignore_ascii_case(t)
                || jurisdictions.iter().any(|j| j.eq_ignore_ascii_case(t))
        }
    }
}
