//! `hybrid_edge_cluster`: a named edge site with a location and a default distribution
//! strategy. The cluster is a record in the shared state file, visible to every workspace that
//! uses the same file. With a `kubernetes` block the site is a real cluster: workloads placed
//! on its nodes become Deployments there and its nodes' descriptions become Node labels; the
//! record then also says how to reach the API (never the token: that stays in Terraform's
//! state, marked sensitive, or comes from `$KUBE_TOKEN` or the kubeconfig).

use async_trait::async_trait;
use clouds::edge::{EdgeCluster, KubeSite};
use tfvalue::{AttributePath, Type, Value};

use super::{
    ApplyRequest, ApplyResponse, ImportResponse, PlanRequest, PlanResponse, ProviderContext,
    ReadResponse, Resource,
};
use crate::attrs;
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::schema::{Attr, Block, NestedBlock, Nesting, Schema};

pub const TYPE_NAME: &str = "hybrid_edge_cluster";

/// The distribution strategies placement knows for edge replicas.
pub const DISTRIBUTION_STRATEGIES: &[&str] = &[
    "round_robin",
    "least_loaded",
    "capability_based",
    "latency_aware",
    "geographic",
    "affinity_based",
];

pub struct EdgeClusterResource {
    schema: Schema,
}

impl Default for EdgeClusterResource {
    fn default() -> Self {
        EdgeClusterResource::new()
    }
}

/// The shared `location { lat lng }` block.
pub fn location_block(min_items: i64, description: &'static str) -> NestedBlock {
    NestedBlock {
        type_name: "location",
        nesting: Nesting::Single,
        block: Block {
            attributes: vec![
                Attr::required("lat", Type::Number, "Latitude in degrees (-90..90)."),
                Attr::required("lng", Type::Number, "Longitude in degrees (-180..180)."),
            ],
            blocks: Vec::new(),
            description,
        },
        min_items,
        max_items: 1,
    }
}

/// Reads and checks a `location` block; `None` when absent.
pub fn read_location(config: &Value, diags: &mut Diagnostics) -> Option<(f64, f64)> {
    let loc = attrs::get(config, "location")?;
    let lat = attrs::number(loc, "lat")?;
    let lng = attrs::number(loc, "lng")?;
    if !(lat.is_finite() && (-90.0..=90.0).contains(&lat)) {
        diags.push(Diagnostic::attribute_error(
            AttributePath::root().attr("location").attr("lat"),
            "Invalid location",
            format!("location.lat must be between -90 and 90, got {lat}."),
        ));
    }
    if !(lng.is_finite() && (-180.0..=180.0).contains(&lng)) {
        diags.push(Diagnostic::attribute_error(
            AttributePath::root().attr("location").attr("lng"),
            "Invalid location",
            format!("location.lng must be between -180 and 180, got {lng}."),
        ));
    }
    Some((lat, lng))
}

/// Whether `id` has the form of a `hybrid_edge_cluster` id.
pub fn is_cluster_id(id: &str) -> bool {
    id.strip_prefix("ec-")
        .is_some_and(|hex| hex.len() == 16 && hex.chars().all(|c| c.is_ascii_hexdigit()))
}

/// A diagnostic on `path` when `id` does not have the form of a cluster id.
pub fn check_cluster_id(id: &str, path: AttributePath, attr: &str, diags: &mut Diagnostics) {
    if !is_cluster_id(id) {
        diags.push(Diagnostic::attribute_error(
            path,
            &format!("Invalid {attr}"),
            format!("{id:?} is not an edge cluster id (ec- followed by 16 hex digits); use hybrid_edge_cluster.<name>.id."),
        ));
    }
}

/// `prefix` + 16 hex digits of SHA-256 of the parts: stable ids known at plan time.
pub fn stable_id(prefix: &str, parts: &[&str]) -> String {
    format!("{prefix}{}", super::sha256_hex(parts.join("/"), 8))
}

/// The `kubernetes { ... }` block: how to reach the site's API server.
fn kubernetes_block() -> NestedBlock {
    NestedBlock {
        type_name: "kubernetes",
        nesting: Nesting::Single,
        block: Block {
            attributes: vec![
                Attr::optional("kubeconfig_path", Type::String, "A kubeconfig file (`~/` is your home directory); its context's server, credentials and namespace are used. Set this or host."),
                Attr::optional("context", Type::String, "The kubeconfig context to use (default: the file's current-context). Only with kubeconfig_path."),
                Attr::optional("host", Type::String, "The API server URL (https://..., or http:// for a local proxy), when no kubeconfig is used. The bearer token comes from token, else $KUBE_TOKEN."),
                Attr::optional("token", Type::String, "Bearer token; replaces the kubeconfig's credentials. Prefer $KUBE_TOKEN: a token given here is kept in Terraform's state (marked sensitive) and reaches only provider processes that Terraform sends this cluster's configuration, so a later run that changes only a workload or node of this cluster needs $KUBE_TOKEN.").sensitive(),
                Attr::optional("namespace", Type::String, "Namespace for workloads' Deployments and autoscalers (default: the kubeconfig context's, else \"default\")."),
                Attr::optional("insecure", Type::Bool, "Skip TLS certificate verification of the API server (lab clusters with self-signed certificates only)."),
            ],
            blocks: Vec::new(),
            description: "Make this site a Kubernetes cluster: workloads placed on its nodes become Deployments (with a HorizontalPodAutoscaler from scaling_policy), and each hybrid_edge_node puts hybrid.io/* labels on the Node of the same name. Needs a provider built with the `kubernetes` feature. Without this block the site lives in the embedded sim store.",
        },
        min_items: 0,
        max_items: 1,
    }
}

/// Whether `ns` is a DNS-1123 label, as Kubernetes namespaces must be.
fn valid_namespace(ns: &str) -> bool {
    !ns.is_empty()
        && ns.len() <= 63
        && ns
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !ns.starts_with('-')
        && !ns.ends_with('-')
}

/// Checks the `kubernetes` block (unknown values are skipped).
fn validate_kubernetes(config: &Value, diags: &mut Diagnostics) {
    let Some(block) = attrs::get(config, "kubernetes") else {
        return;
    };
    let path = || AttributePath::root().attr("kubernetes");
    if !cfg!(feature = "kubernetes") {
        diags.push(Diagnostic::attribute_error(
            path(),
            "Kubernetes driver not available",
            "This terraform-provider-hybrid binary was built without the Kubernetes driver (cargo feature `kubernetes`), so this cluster's kubernetes block cannot be honoured. Use a build with --features kubernetes, or remove the block to keep the site in the sim store.",
        ));
        return;
    }
    let known = |name: &str| block.get(name).filter(|v| v.is_known() && !v.is_null());
    let kubeconfig = known("kubeconfig_path");
    let host = known("host");
    let unknown = |name: &str| attrs::is_unknown(block, name);
    if kubeconfig.is_some() && host.is_some() {
        diags.push(Diagnostic::attribute_error(
            path().attr("host"),
            "Conflicting kubernetes settings",
            "Set kubeconfig_path (with an optional context) or host, not both.",
        ));
    } else if kubeconfig.is_none()
        && host.is_none()
        && !unknown("kubeconfig_path")
        && !unknown("host")
    {
        diags.push(Diagnostic::attribute_error(
            path(),
            "Missing kubernetes settings",
            "The kubernetes block needs kubeconfig_path (with an optional context) or host.",
        ));
    }
    if known("context").is_some() && kubeconfig.is_none() && !unknown("kubeconfig_path") {
        diags.push(Diagnostic::attribute_error(
            path().attr("context"),
            "Invalid context",
            "context selects a context of the kubeconfig file: set kubeconfig_path too, or remove context.",
        ));
    }
    for name in ["kubeconfig_path", "context", "token"] {
        if attrs::string(block, name).is_some_and(|v| v.trim().is_empty()) {
            diags.push(Diagnostic::attribute_error(
                path().attr(name),
                &format!("Invalid {name}"),
                format!("{name} must not be empty; leave it out instead."),
            ));
        }
    }
    if let Some(host) = attrs::string(block, "host") {
        let lower = host.to_ascii_lowercase();
        let rest = lower
            .strip_prefix("https://")
            .or_else(|| lower.strip_prefix("http://"));
        if rest.is_none_or(|r| r.is_empty()) {
            diags.push(Diagnostic::attribute_error(
                path().attr("host"),
                "Invalid host",
                format!("{host:?} is not an API server URL; expected https://host[:port] (or http:// for a local proxy)."),
            ));
        }
    }
    if let Some(ns) = attrs::string(block, "namespace") {
        if !valid_namespace(&ns) {
            diags.push(Diagnostic::attribute_error(
                path().attr("namespace"),
                "Invalid namespace",
                format!("{ns:?} is not a Kubernetes namespace name: at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit."),
            ));
        }
    }
}

/// The site settings a cluster's `kubernetes` block stands for (the token's value excluded).
fn kube_site(state: &Value) -> Option<KubeSite> {
    let block = attrs::get(state, "kubernetes")?;
    Some(KubeSite {
        kubeconfig_path: attrs::string(block, "kubeconfig_path"),
        context: attrs::string(block, "context"),
        host: attrs::string(block, "host"),
        namespace: attrs::string(block, "namespace"),
        insecure: attrs::boolean(block, "insecure").unwrap_or(false),
        token_in_config: attrs::string(block, "token").is_some(),
    })
}

/// Hands the cluster's token (or its absence) to the Kubernetes sites of this process.
fn remember_token(ctx: &ProviderContext, id: &str, state: &Value) {
    if let Some(sites) = &ctx.edge_sites {
        let token = attrs::get(state, "kubernetes").and_then(|b| attrs::string(b, "token"));
        sites.remember_token(id, token.as_deref());
    }
}

impl EdgeClusterResource {
    pub fn new() -> Self {
        EdgeClusterResource {
            schema: Schema {
                version: 0,
                block: Block {
                    attributes: vec![
                        Attr::computed("id", Type::String, "Id derived from the name (`ec-` + 16 hex digits), known after the first apply."),
                        Attr::required("name", Type::String, "Name of the edge site; changing it replaces the cluster."),
                        Attr::required("geographic_region", Type::String, "The region this site serves, e.g. \"eu-central\"; edge placements report it as their region."),
                        Attr::optional_computed("distribution_strategy", Type::String, "Default strategy for spreading replicas over this cluster's nodes: round_robin, least_loaded (default), capability_based, latency_aware, geographic or affinity_based."),
                        Attr::optional("labels", Type::map(Type::String), "Key/value labels kept with the site (e.g. site = \"factory\"), for your own inventory; node selection uses the nodes' labels, not these."),
                        Attr::computed("driver", Type::String, "What runs this site's workloads: kubernetes with a kubernetes block, else sim (the embedded store)."),
                    ],
                    blocks: vec![location_block(1, "Where the site is."), kubernetes_block()],
                    description: "An edge site whose nodes (hybrid_edge_node) can host workloads that allow the edge provider.",
                },
            },
        }
    }

    fn record(state: &Value) -> Option<EdgeCluster> {
        let loc = attrs::get(state, "location")?;
        Some(EdgeCluster {
            id: attrs::string(state, "id")?,
            name: attrs::string(state, "name")?,
            geographic_region: attrs::string(state, "geographic_region")?,
            lat: attrs::number(loc, "lat")?,
            lng: attrs::number(loc, "lng")?,
            distribution_strategy: attrs::string(state, "distribution_strategy")
                .unwrap_or_else(|| "least_loaded".into()),
            labels: attrs::string_map(state, "labels"),
            kubernetes: kube_site(state),
        })
    }

    /// The state of a stored cluster; `token` is the token attribute to keep (the store never
    /// has it).
    fn state_of(cluster: &EdgeCluster, token: Value) -> Value {
        let kubernetes = match &cluster.kubernetes {
            None => Value::Null,
            Some(site) => Value::object([
                (
                    "kubeconfig_path",
                    attrs::str_value(site.kubeconfig_path.as_deref()),
                ),
                ("context", attrs::str_value(site.context.as_deref())),
                ("host", attrs::str_value(site.host.as_deref())),
                (
                    "token",
                    if site.token_in_config {
                        token
                    } else {
                        Value::Null
                    },
                ),
                ("namespace", attrs::str_value(site.namespace.as_deref())),
                (
                    "insecure",
                    if site.insecure {
                        Value::Bool(true)
                    } else {
                        Value::Null
                    },
                ),
            ]),
        };
        Value::object([
            ("id", Value::string(cluster.id.clone())),
            ("name", Value::string(cluster.name.clone())),
            (
                "geographic_region",
                Value::string(cluster.geographic_region.clone()),
            ),
            (
                "distribution_strategy",
                Value::string(cluster.distribution_strategy.clone()),
            ),
            (
                "labels",
                if cluster.labels.is_empty() {
                    Value::Null
                } else {
                    attrs::string_map_value(&cluster.labels)
                },
            ),
            (
                "driver",
                Value::string(driver_name(cluster.kubernetes.is_some())),
            ),
            ("kubernetes", kubernetes),
            (
                "location",
                Value::object([
                    ("lat", attrs::num_value(Some(cluster.lat))),
                    ("lng", attrs::num_value(Some(cluster.lng))),
                ]),
            ),
        ])
    }
}

fn driver_name(kubernetes: bool) -> &'static str {
    if kubernetes {
        "kubernetes"
    } else {
        "sim"
    }
}

fn store_error(op: &str, err: &clouds::DriverError) -> Diagnostic {
    Diagnostic::error(format!("Could not {op} the edge cluster"), err.to_string())
}

#[async_trait]
impl Resource for EdgeClusterResource {
    fn type_name(&self) -> &'static str {
        TYPE_NAME
    }

    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn validate(&self, config: &Value) -> Diagnostics {
        let mut diags = Diagnostics::new();
        read_location(config, &mut diags);
        if let Some(strategy) = attrs::string(config, "distribution_strategy") {
            if !DISTRIBUTION_STRATEGIES.contains(&strategy.as_str()) {
                diags.push(Diagnostic::attribute_error(
                    AttributePath::root().attr("distribution_strategy"),
                    "Invalid distribution_strategy",
                    format!(
                        "unknown distribution strategy {strategy:?}; expected one of {}",
                        DISTRIBUTION_STRATEGIES.join(", ")
                    ),
                ));
            }
        }
        let root = AttributePath::root;
        crate::checks::name(config, root().attr("name"), "name", &mut diags);
        crate::checks::non_empty(
            config,
            root().attr("geographic_region"),
            "geographic_region",
            &mut diags,
        );
        crate::checks::map_keys(config, root().attr("labels"), "labels", None, &mut diags);
        validate_kubernetes(config, &mut diags);
        diags
    }

    async fn plan(&self, ctx: &ProviderContext, req: PlanRequest) -> PlanResponse {
        let mut resp = PlanResponse::default();
        if req.proposed_new_state.is_null() {
            return resp;
        }
        let mut planned = req.proposed_new_state;
        if req
            .config
            .get("distribution_strategy")
            .is_none_or(Value::is_null)
        {
            attrs::set(
                &mut planned,
                "distribution_strategy",
                Value::string("least_loaded"),
            );
        }
        let kubernetes = attrs::get(&req.config, "kubernetes").is_some();
        attrs::set(
            &mut planned,
            "driver",
            Value::string(driver_name(kubernetes)),
        );
        if let Some(name) = attrs::string(&planned, "name") {
            remember_token(ctx, &stable_id("ec-", &[TYPE_NAME, &name]), &planned);
        }
        // Known after apply, like any created object's id: a workload that names this cluster
        // then waits for it, and is placed when the cluster and its nodes exist.
        let id = if req.prior_state.is_null() {
            Value::Unknown
        } else {
            req.prior_state.get("id").cloned().unwrap_or(Value::Unknown)
        };
        attrs::set(&mut planned, "id", id);
        if !req.prior_state.is_null() {
            resp.requires_replace
                .push(AttributePath::root().attr("name"));
        }
        resp.planned_private = req.prior_private;
        resp.planned_state = planned;
        resp
    }

    async fn apply(&self, ctx: &ProviderContext, req: ApplyRequest) -> ApplyResponse {
        let mut resp = ApplyResponse {
            private: req.planned_private,
            ..ApplyResponse::default()
        };
        if req.planned_state.is_null() {
            let id = attrs::string(&req.prior_state, "id").unwrap_or_default();
            match ctx.sim.delete_edge_cluster(&id) {
                Ok(()) => resp.new_state = Value::Null,
                Err(err) => {
                    resp.new_state = req.prior_state;
                    resp.diagnostics.push(store_error("delete", &err));
                }
            }
            return resp;
        }
        let mut planned = req.planned_state;
        if let Some(name) = attrs::string(&planned, "name") {
            attrs::set(
                &mut planned,
                "id",
                Value::string(stable_id("ec-", &[TYPE_NAME, &name])),
            );
        }
        let Some(record) = Self::record(&planned) else {
            resp.new_state = req.prior_state;
            resp.diagnostics.push(Diagnostic::error(
                "Edge cluster incomplete",
                "name, geographic_region and location must be known at apply time.",
            ));
            return resp;
        };
        remember_token(ctx, &record.id, &planned);
        if record.kubernetes.is_some() {
            // Fail here, on the cluster, rather than at the first workload.
            let Some(sites) = &ctx.edge_sites else {
                resp.new_state = req.prior_state;
                resp.diagnostics.push(Diagnostic::attribute_error(
                    AttributePath::root().attr("kubernetes"),
                    "Kubernetes driver not available",
                    "This terraform-provider-hybrid binary was built without the Kubernetes driver (cargo feature `kubernetes`).",
                ));
                return resp;
            };
            if let Err(err) = sites.check(&record).await {
                resp.new_state = req.prior_state;
                resp.diagnostics.push(
                    Diagnostic::error(
                        "Cannot reach the cluster's Kubernetes API",
                        format!("{err}. Check the kubernetes block (kubeconfig_path and context, or host, and the token or $KUBE_TOKEN) and that the credentials may list Deployments in the namespace."),
                    )
                    .at(AttributePath::root().attr("kubernetes")),
                );
                return resp;
            }
        }
        match ctx.sim.put_edge_cluster(&record) {
            Ok(()) => resp.new_state = planned,
            Err(err) => {
                resp.new_state = req.prior_state;
                resp.diagnostics.push(store_error("save", &err));
            }
        }
        resp
    }

    async fn read(&self, ctx: &ProviderContext, state: Value, private: Vec<u8>) -> ReadResponse {
        let mut resp = ReadResponse {
            private,
            ..ReadResponse::default()
        };
        let id = attrs::string(&state, "id").unwrap_or_default();
        remember_token(ctx, &id, &state);
        match ctx.sim.edge_cluster(&id) {
            // Unchanged: keep the state's own values (its numbers keep the configuration's
            // exact decimals, which an f64 round trip would not).
            Ok(Some(cluster)) if Self::record(&state).as_ref() == Some(&cluster) => {
                resp.new_state = state;
            }
            Ok(Some(cluster)) => {
                let token = attrs::get(&state, "kubernetes")
                    .and_then(|b| b.get("token").cloned())
                    .unwrap_or(Value::Null);
                resp.new_state = Self::state_of(&cluster, token);
            }
            Ok(None) => resp.new_state = Value::Null,
            Err(err) => {
                resp.new_state = state;
                resp.diagnostics.push(store_error("read", &err));
            }
        }
        resp
    }

    async fn import(&self, ctx: &ProviderContext, id: &str) -> ImportResponse {
        let mut resp = ImportResponse::default();
        match ctx.sim.edge_cluster(id) {
            Ok(Some(cluster)) => resp.states.push(Self::state_of(&cluster, Value::Null)),
            Ok(None) => resp.diagnostics.push(Diagnostic::error(
                "Cannot import non-existent edge cluster",
                format!("No edge cluster with id {id:?} exists in the sim state."),
            )),
            Err(err) => resp.diagnostics.push(store_error("import", &err)),
        }
        resp
    }

    fn upgrade(&self, version: i64, state_json: &[u8]) -> Result<Value, Diagnostics> {
        super::decode_stored_state(TYPE_NAME, &self.schema, version, state_json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_kubernetes(fields: &[(&str, Value)]) -> Value {
        let mut block = Value::object([
            ("kubeconfig_path", Value::Null),
            ("context", Value::Null),
            ("host", Value::Null),
            ("token", Value::Null),
            ("namespace", Value::Null),
            ("insecure", Value::Null),
        ]);
        for (k, v) in fields {
            attrs::set(&mut block, k, v.clone());
        }
        Value::object([("kubernetes", block)])
    }

    fn paths(config: &Value) -> Vec<AttributePath> {
        let mut diags = Diagnostics::new();
        validate_kubernetes(config, &mut diags);
        diags.0.into_iter().filter_map(|d| d.path).collect()
    }

    #[test]
    fn kubernetes_settings_are_checked_on_their_paths_or_refused_without_the_feature() {
        let k = || AttributePath::root().attr("kubernetes");
        let good = with_kubernetes(&[
            ("host", Value::string("https://10.0.0.1:6443")),
            ("namespace", Value::string("edge")),
        ]);
        if !cfg!(feature = "kubernetes") {
            assert_eq!(paths(&good), vec![k()]);
            return;
        }
        assert!(paths(&good).is_empty());
        let cases = [
            (
                with_kubernetes(&[
                    ("host", Value::string("https://h")),
                    ("kubeconfig_path", Value::string("/k")),
                ]),
                k().attr("host"),
            ),
            (with_kubernetes(&[]), k()),
            (
                with_kubernetes(&[
                    ("host", Value::string("https://h")),
                    ("context", Value::string("c")),
                ]),
                k().attr("context"),
            ),
            (
                with_kubernetes(&[("host", Value::string("ftp://h"))]),
                k().attr("host"),
            ),
            (
                with_kubernetes(&[
                    ("host", Value::string("https://h")),
                    ("namespace", Value::string("-bad")),
                ]),
                k().attr("namespace"),
            ),
            (
                with_kubernetes(&[
                    ("host", Value::string("https://h")),
                    ("token", Value::string(" ")),
                ]),
                k().attr("token"),
            ),
        ];
        for (config, path) in cases {
            assert_eq!(paths(&config), vec![path]);
        }
        // Unknown values (e.g. from another resource) are not judged yet.
        assert!(paths(&with_kubernetes(&[("kubeconfig_path", Value::Unknown)])).is_empty());
    }

    #[test]
    fn the_store_record_never_holds_the_token() {
        let state = with_kubernetes(&[
            ("host", Value::string("https://h")),
            ("token", Value::string("s3cr3t")),
        ]);
        let site = kube_site(&state).expect("site");
        assert!(site.token_in_config);
        let json = serde_json::to_string(&site).expect("json");
        assert!(!json.contains("s3cr3t"), "{json}");
    }
}
