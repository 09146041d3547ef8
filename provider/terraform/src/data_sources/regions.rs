//! `hybrid_regions`: catalog regions that satisfy provider, compliance, data residency and GPU
//! filters.
//!
//! Compliance and residency are checked with the engine's own rule
//! (`placement::validate_compliance` over validated requirements), so a region listed here is
//! one the placement engine would accept for the same compliance and residency inputs.

use std::collections::BTreeSet;

use async_trait::async_trait;
use catalog::{Catalog, Region, RegionId};
use placement::{Provider, RawRequirements, Requirements};
use tfvalue::{AttributePath, Type, Value};

use super::common;
use super::{DataSource, ReadResult};
use crate::attrs;
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::resources::ProviderContext;
use crate::schema::{Attr, Block, Schema};

pub const TYPE_NAME: &str = "hybrid_regions";

const INPUTS: &[&str] = &[
    "providers",
    "compliance",
    "data_residency_regions",
    "gpu",
    "gpu_model",
];

pub fn region_type() -> Type {
    Type::object([
        ("code".to_string(), Type::String),
        ("provider".to_string(), Type::String),
        ("display_name".to_string(), Type::String),
        ("country".to_string(), Type::String),
        ("jurisdictions".to_string(), Type::list(Type::String)),
        ("lat".to_string(), Type::Number),
        ("lng".to_string(), Type::Number),
        ("zones".to_string(), Type::Number),
        ("government".to_string(), Type::Bool),
        ("compliance".to_string(), Type::list(Type::String)),
        ("gpu_models".to_string(), Type::list(Type::String)),
    ])
}

pub struct Regions {
    schema: Schema,
}

impl Default for Regions {
    fn default() -> Self {
        Regions::new()
    }
}

impl Regions {
    pub fn new() -> Regions {
        let attributes = vec![
            Attr::optional("providers", Type::list(Type::String), "Only regions of these clouds: aws, azure, gcp. Empty means all three (edge and on-prem sites are not catalog regions)."),
            common::compliance_attr(),
            common::residency_attr(),
            Attr::optional("gpu", Type::Bool, "Only regions with at least one priced instance type that has a GPU."),
            Attr::optional("gpu_model", Type::String, "Only regions offering this GPU model (case-insensitive substring, e.g. \"a100\"); implies gpu."),
            Attr::computed("regions", Type::list(region_type()), "Matching regions sorted by provider and code: code, provider, display_name, country, jurisdictions, lat, lng, zones, government, compliance, and the GPU models priced there."),
            Attr::computed("codes", Type::list(Type::String), "The codes of `regions`, in the same order."),
        ];
        Regions {
            schema: Schema {
                version: 0,
                block: Block {
                    attributes,
                    blocks: Vec::new(),
                    description: "Regions of the embedded catalog filtered by provider, compliance, data residency and GPU availability.",
                },
            },
        }
    }
}

struct Filter {
    clouds: Vec<catalog::Cloud>,
    requirements: Requirements,
    gpu: bool,
    gpu_model: Option<String>,
}

fn filter(config: &Value, catalog: &Catalog) -> Result<Filter, Diagnostics> {
    let mut diags = Diagnostics::new();
    let providers = common::preferred_providers(config, "providers", &mut diags);
    let raw = RawRequirements {
        cpu: Some(1.0),
        memory_gb: Some(1.0),
        compliance: attrs::strings(config, "compliance"),
        data_residency_regions: attrs::strings(config, "data_residency_regions"),
        preferred_providers: providers.clone(),
        ..RawRequirements::default()
    };
    let requirements = match Requirements::validate(&raw, catalog) {
        Ok(r) => Some(r),
        Err(errors) => {
            diags.extend(common::field_errors(
                errors,
                &[("preferred_providers", "providers")],
            ));
            None
        }
    };
    let mut clouds = Vec::new();
    for (i, p) in providers.iter().enumerate() {
        match Provider::parse(p) {
            Some(Provider::Aws) => clouds.push(catalog::Cloud::Aws),
            Some(Provider::Azure) => clouds.push(catalog::Cloud::Azure),
            Some(Provider::Gcp) => clouds.push(catalog::Cloud::Gcp),
            Some(other) => diags.push(Diagnostic::attribute_error(
                AttributePath::root().attr("providers").index(i as i64),
                "Invalid providers",
                format!("providers[{i}]: {other} sites are declared with hybrid_edge_cluster, not catalog regions; choose among aws, azure and gcp."),
            )),
            None => {} // reported by validation above
        }
    }
    let gpu_model = attrs::string(config, "gpu_model").map(|m| m.trim().to_ascii_lowercase());
    if let Some(model) = &gpu_model {
        if model.is_empty() || !catalog.knows_gpu_model(model) {
            diags.push(Diagnostic::attribute_error(
                AttributePath::root().attr("gpu_model"),
                "Invalid gpu_model",
                format!(
                    "{model:?} matches no GPU model in the catalog; known models: {}",
                    catalog.gpu_models().join(", ")
                ),
            ));
        }
    }
    match requirements {
        Some(requirements) if !diags.has_errors() => Ok(Filter {
            clouds,
            requirements,
            gpu: attrs::boolean(config, "gpu").unwrap_or(false) || gpu_model.is_some(),
            gpu_model,
        }),
        _ => Err(diags),
    }
}

/// The distinct GPU models of priced instance types in a region.
fn gpu_models(catalog: &Catalog, id: RegionId) -> Vec<String> {
    let models: BTreeSet<String> = catalog
        .offers_in_region(id)
        .iter()
        .map(|o| catalog.instance_type(o.instance_type))
        .filter(|t| t.gpu_count > 0)
        .map(|t| t.gpu_model.clone().unwrap_or_else(|| "unknown".to_string()))
        .collect();
    models.into_iter().collect()
}

fn matches(f: &Filter, catalog: &Catalog, id: RegionId, region: &Region) -> bool {
    if !f.clouds.is_empty() && !f.clouds.contains(&region.cloud) {
        return false;
    }
    if !placement::validate_compliance(region, &f.requirements).is_empty() {
        return false;
    }
    if f.gpu {
        let has = catalog
            .offers_in_region(id)
            .iter()
            .map(|o| catalog.instance_type(o.instance_type))
            .any(|t| {
                t.gpu_count > 0
                    && f.gpu_model.as_ref().is_none_or(|want| {
                        t.gpu_model
                            .as_ref()
                            .is_some_and(|m| m.to_ascii_lowercase().contains(want.as_str()))
                    })
            });
        if !has {
            return false;
        }
    }
    true
}

pub fn region_value(catalog: &Catalog, id: RegionId, r: &Region) -> Value {
    let compliance: Vec<&str> = r.compliance.iter().map(|c| c.as_str()).collect();
    Value::object([
        ("code", Value::string(r.code.clone())),
        ("provider", Value::string(r.cloud.as_str())),
        ("display_name", Value::string(r.display_name.clone())),
        ("country", Value::string(r.country.clone())),
        ("jurisdictions", common::strings_value(&r.jurisdictions)),
        ("lat", Value::number(r.lat)),
        ("lng", Value::number(r.lng)),
        ("zones", Value::number(r.zones)),
        ("government", Value::Bool(r.government)),
        ("compliance", common::strings_value(&compliance)),
        (
            "gpu_models",
            common::strings_value(&gpu_models(catalog, id)),
        ),
    ])
}

#[async_trait]
impl DataSource for Regions {
    fn type_name(&self) -> &'static str {
        TYPE_NAME
    }

    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn validate(&self, config: &Value) -> Diagnostics {
        if common::any_unknown(config, INPUTS) {
            return Diagnostics::new();
        }
        crate::engine_values::check_with_catalog(|catalog| filter(config, catalog))
    }

    async fn read(&self, ctx: &ProviderContext, config: Value) -> ReadResult {
        let mut state = config;
        let f = match filter(&state, ctx.catalog) {
            Ok(f) => f,
            Err(diagnostics) => return ReadResult { state, diagnostics },
        };
        let catalog = ctx.catalog;
        let found: Vec<(RegionId, &Region)> = catalog
            .region_ids()
            .map(|id| (id, catalog.region(id)))
            .filter(|(id, r)| matches(&f, catalog, *id, r))
            .collect();
        let mut diagnostics = Diagnostics::new();
        if found.is_empty() {
            diagnostics.push(Diagnostic::warning(
                "No region matches",
                "No region of the embedded catalog satisfies every filter; `regions` is empty.",
            ));
        }
        let codes: Vec<&str> = found.iter().map(|(_, r)| r.code.as_str()).collect();
        attrs::set(&mut state, "codes", common::strings_value(&codes));
        attrs::set(
            &mut state,
            "regions",
            Value::list(found.iter().map(|(id, r)| region_value(catalog, *id, r))),
        );
        ReadResult { state, diagnostics }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, Value)]) -> Value {
        Value::object(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())))
    }

    #[test]
    fn gdpr_regions_are_all_in_the_eea() {
        let catalog = catalog::embedded();
        let f = filter(
            &config(&[("compliance", common::strings_value(&["gdpr"]))]),
            catalog,
        )
        .expect("valid filter");
        let found: Vec<&Region> = catalog
            .region_ids()
            .filter(|id| matches(&f, catalog, *id, catalog.region(*id)))
            .map(|id| catalog.region(id))
            .collect();
        assert!(found.len() > 10);
        assert!(found
            .iter()
            .all(|r| r.jurisdictions.iter().any(|j| j == "EEA")));
    }

    #[test]
    fn bad_compliance_names_the_element() {
        let catalog = catalog::embedded();
        let err = filter(
            &config(&[("compliance", common::strings_value(&["gdpr", "sox"]))]),
            catalog,
        )
        .err()
        .expect("invalid");
        assert_eq!(
            err.0[0].path,
            Some(AttributePath::root().attr("compliance").index(1))
        );
    }

    #[test]
    fn edge_is_not_a_catalog_provider() {
        let err = filter(
            &config(&[("providers", common::strings_value(&["aws", "edge"]))]),
            catalog::embedded(),
        )
        .err()
        .expect("invalid");
        assert_eq!(
            err.0[0].path,
            Some(AttributePath::root().attr("providers").index(1))
        );
    }
}
