//! The tfplugin6 Provider service: protobuf in, resources called, protobuf out.
//!
//! This is the only place that knows protobuf. Each RPC decodes its `DynamicValue`s with the
//! schema's type (errors become diagnostics with the attribute path), runs inside a span named
//! after the RPC and resource type, and is guarded so that a crash in a handler returns an error
//! diagnostic instead of killing the plugin (Terraform would abort the whole run).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use tfprotocol::tfplugin6 as pb;
use tfprotocol::tfplugin6::provider_server::Provider;
use tfvalue::{AttributePath, PathStep, Type, Value};
use tokio::sync::RwLock;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::config;
use crate::data_sources::{self, DataSource};
use crate::diagnostics::{Diagnostic, Diagnostics, Severity};
use crate::logging::crash_message;
use crate::observe::{Glimpse, MeteredDriver, PlanInputs, Telemetry};
use crate::resources::{self, ApplyRequest, PlanRequest, ProviderContext, ReplayLookup, Resource};
use crate::schema::{Attr, AttrKind, Block, NestedBlock, Nesting, Schema};
use clouds::retry::StopHandle;

/// The provider as Terraform talks to it.
pub struct HybridProvider {
    resources: BTreeMap<&'static str, Arc<dyn Resource>>,
    data_sources: BTreeMap<&'static str, Arc<dyn DataSource>>,
    provider_schema: Schema,
    /// The value type of each resource's and data source's schema, built once: decoding every
    /// DynamicValue needs it, and building it allocates every attribute name again.
    resource_types: BTreeMap<&'static str, Type>,
    data_source_types: BTreeMap<&'static str, Type>,
    /// The resource types whose values have no `dynamic` positions, where `==` on values is
    /// `==` on their bytes (the test walks the whole type, so it is made once).
    static_resource_types: BTreeSet<&'static str>,
    /// States that refreshes just found unchanged, for the plans that follow them.
    refreshed: RefreshedStates,
    context: RwLock<Option<ProviderContext>>,
    stop: StopHandle,
    telemetry: Arc<Telemetry>,
}

/// The ledger may hold plan notes back for a batch (see `ledger::Ledger::flush_plan_notes`):
/// they are written when the plugin server lets go of the provider, before the process exits,
/// and a failure is logged (the notes are a cache: the apply-time plan then decides afresh).
impl Drop for HybridProvider {
    fn drop(&mut self) {
        if let Some(ctx) = self.context.get_mut() {
            if let Err(err) = ctx.ledger.flush_plan_notes() {
                tracing::warn!(error = %err, ledger = %ctx.ledger.location(), "plan notes not written");
            }
        }
    }
}

impl Default for HybridProvider {
    fn default() -> Self {
        HybridProvider::new()
    }
}

impl HybridProvider {
    pub fn new() -> HybridProvider {
        let (stop, _) = StopHandle::new();
        let resources: BTreeMap<&'static str, Arc<dyn Resource>> = resources::all()
            .into_iter()
            .map(|r| (r.type_name(), r))
            .collect();
        let data_sources: BTreeMap<&'static str, Arc<dyn DataSource>> = data_sources::all()
            .into_iter()
            .map(|d| (d.type_name(), d))
            .collect();
        let resource_types: BTreeMap<&'static str, Type> = resources
            .iter()
            .map(|(name, r)| (*name, r.schema().block.value_type()))
            .collect();
        HybridProvider {
            static_resource_types: resource_types
                .iter()
                .filter(|(_, ty)| !ty.has_dynamic())
                .map(|(name, _)| *name)
                .collect(),
            resource_types,
            data_source_types: data_sources
                .iter()
                .map(|(name, d)| (*name, d.schema().block.value_type()))
                .collect(),
            refreshed: RefreshedStates::default(),
            resources,
            data_sources,
            provider_schema: config::schema(),
            context: RwLock::new(None),
            stop,
            telemetry: Arc::default(),
        }
    }

    /// This process's metrics; `main` pushes them once the plugin server has stopped.
    pub fn telemetry(&self) -> Arc<Telemetry> {
        self.telemetry.clone()
    }

    fn resource(&self, type_name: &str) -> Result<&Arc<dyn Resource>, Diagnostic> {
        self.resources.get(type_name).ok_or_else(|| {
            Diagnostic::error(
                "Unknown resource type",
                format!("This provider has no resource type {type_name:?}."),
            )
        })
    }

    /// The response to a plan: `out` with telemetry recorded (`inputs`, what it reads of the
    /// request), its planned state as the resource encoded it, as Terraform sent it
    /// (`unchanged`: the prior state the proposal kept, when the plan kept it too) or encoded
    /// here.
    fn plan_response(
        &self,
        req: &pb::plan_resource_change::Request,
        ty: &Type,
        inputs: &PlanInputs,
        out: resources::PlanResponse,
        unchanged: Option<Value>,
    ) -> pb::plan_resource_change::Response {
        self.telemetry.after_plan(
            &req.type_name,
            inputs,
            &out.planned_state,
            out.diagnostics.has_errors(),
        );
        let mut resp = pb::plan_resource_change::Response::default();
        let mut diags = out.diagnostics;
        if !diags.has_errors() {
            if let Some(msgpack) = out.planned_msgpack {
                resp.planned_state = Some(pb::DynamicValue {
                    msgpack: msgpack.into(),
                    json: Default::default(),
                });
            } else if unchanged.is_some_and(|prior| prior == out.planned_state) {
                resp.planned_state = req.prior_state.clone();
            } else {
                match encode(&out.planned_state, ty) {
                    Ok(dv) => resp.planned_state = Some(dv),
                    Err(d) => diags.push(d),
                }
            }
        }
        resp.requires_replace = out.requires_replace.iter().map(path_to_pb).collect();
        resp.planned_private = out.planned_private;
        resp.diagnostics = diagnostics_to_pb(diags);
        resp
    }

    /// The value type of a resource's schema (from the table built at start-up).
    fn resource_type(&self, type_name: &str, schema: &Schema) -> Cow<'_, Type> {
        match self.resource_types.get(type_name) {
            Some(ty) => Cow::Borrowed(ty),
            None => Cow::Owned(schema.block.value_type()),
        }
    }

    /// The value type of a data source's schema (from the table built at start-up).
    fn data_source_type(&self, type_name: &str, schema: &Schema) -> Cow<'_, Type> {
        match self.data_source_types.get(type_name) {
            Some(ty) => Cow::Borrowed(ty),
            None => Cow::Owned(schema.block.value_type()),
        }
    }

    fn data_source(&self, type_name: &str) -> Result<&Arc<dyn DataSource>, Diagnostic> {
        self.data_sources.get(type_name).ok_or_else(|| {
            Diagnostic::error(
                "Unknown data source",
                format!("This provider has no data source {type_name:?}."),
            )
        })
    }

    /// Every data source's schema as Terraform sees it.
    pub fn data_source_schemas(&self) -> HashMap<String, pb::Schema> {
        self.data_sources
            .iter()
            .map(|(name, d)| (name.to_string(), schema_to_pb(d.schema())))
            .collect()
    }

    /// The looked-up resource or data source together with the configured provider: what
    /// every RPC after ConfigureProvider needs. The lookup's error wins.
    async fn with_context<T>(
        &self,
        found: Result<T, Diagnostic>,
    ) -> Result<(T, ProviderContext), Diagnostic> {
        let found = found?;
        Ok((found, self.context().await?))
    }

    async fn context(&self) -> Result<ProviderContext, Diagnostic> {
        self.context.read().await.clone().ok_or_else(|| {
            Diagnostic::error(
                "Provider not configured",
                "Terraform called the provider before configuring it.",
            )
        })
    }

    /// Every resource's schema as Terraform sees it (also used for schema drift checks).
    pub fn resource_schemas(&self) -> HashMap<String, pb::Schema> {
        self.resources
            .iter()
            .map(|(name, r)| (name.to_string(), schema_to_pb(r.schema())))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Conversions

pub fn schema_to_pb(schema: &Schema) -> pb::Schema {
    pb::Schema {
        version: schema.version,
        block: Some(block_to_pb(&schema.block)),
    }
}

fn block_to_pb(block: &Block) -> pb::schema::Block {
    pb::schema::Block {
        version: 0,
        attributes: block.attributes.iter().map(attr_to_pb).collect(),
        block_types: block.blocks.iter().map(nested_block_to_pb).collect(),
        description: block.description.to_string(),
        description_kind: pb::StringKind::Markdown as i32,
        deprecated: false,
    }
}

#[allow(deprecated)] // Object.min_items/max_items: deprecated in the protocol, still required fields
fn attr_to_pb(attr: &Attr) -> pb::schema::Attribute {
    // A nested attribute sends nested_type and an empty type: Terraform 1.0.3 crashes if a
    // provider sends both.
    let (ty, nested) = match &attr.kind {
        AttrKind::Typed(ty) => (ty.to_json_bytes(), None),
        AttrKind::Nested(nesting, attrs) => (
            Vec::new(),
            Some(pb::schema::Object {
                attributes: attrs.iter().map(attr_to_pb).collect(),
                nesting: match nesting {
                    Nesting::Single => pb::schema::object::NestingMode::Single,
                    Nesting::List => pb::schema::object::NestingMode::List,
                    Nesting::Set => pb::schema::object::NestingMode::Set,
                    Nesting::Map => pb::schema::object::NestingMode::Map,
                } as i32,
                min_items: 0,
                max_items: 0,
            }),
        ),
    };
    pb::schema::Attribute {
        name: attr.name.to_string(),
        r#type: ty,
        description: attr.description.to_string(),
        required: attr.required,
        optional: attr.optional,
        computed: attr.computed,
        sensitive: attr.sensitive,
        description_kind: pb::StringKind::Markdown as i32,
        deprecated: false,
        nested_type: nested,
        write_only: false,
    }
}

fn nested_block_to_pb(b: &NestedBlock) -> pb::schema::NestedBlock {
    // Terraform (1.3 and later, and OpenTofu) refuses a single block whose MinItems and MaxItems
    // differ ("must match in NestingSingle mode"): both 0 when optional, both 1 when required.
    let (min_items, max_items) = match b.nesting {
        Nesting::Single => {
            let n = i64::from(b.min_items > 0);
            (n, n)
        }
        _ => (b.min_items, b.max_items),
    };
    pb::schema::NestedBlock {
        type_name: b.type_name.to_string(),
        block: Some(block_to_pb(&b.block)),
        nesting: match b.nesting {
            Nesting::Single => pb::schema::nested_block::NestingMode::Single,
            Nesting::List => pb::schema::nested_block::NestingMode::List,
            Nesting::Set => pb::schema::nested_block::NestingMode::Set,
            Nesting::Map => pb::schema::nested_block::NestingMode::Map,
        } as i32,
        min_items,
        max_items,
    }
}

pub fn path_to_pb(path: &AttributePath) -> pb::AttributePath {
    use pb::attribute_path::step::Selector;
    pb::AttributePath {
        steps: path
            .steps
            .iter()
            .map(|s| pb::attribute_path::Step {
                selector: Some(match s {
                    PathStep::Attribute(name) => Selector::AttributeName(name.clone()),
                    PathStep::ElementKeyString(k) => Selector::ElementKeyString(k.clone()),
                    PathStep::ElementKeyInt(i) => Selector::ElementKeyInt(*i),
                }),
            })
            .collect(),
    }
}

pub fn diagnostics_to_pb(diags: Diagnostics) -> Vec<pb::Diagnostic> {
    diags
        .into_iter()
        .map(|d| pb::Diagnostic {
            severity: match d.severity {
                Severity::Error => pb::diagnostic::Severity::Error,
                Severity::Warning => pb::diagnostic::Severity::Warning,
            } as i32,
            summary: d.summary,
            detail: d.detail,
            attribute: d.path.filter(|p| !p.is_empty()).map(|p| path_to_pb(&p)),
        })
        .collect()
}

/// Decodes a DynamicValue (msgpack preferred, JSON accepted); absent means null.
pub fn decode(
    value: Option<&pb::DynamicValue>,
    ty: &Type,
    what: &str,
) -> Result<Value, Diagnostic> {
    let Some(value) = value else {
        return Ok(Value::Null);
    };
    let result = if !value.msgpack.is_empty() {
        tfvalue::decode_msgpack(&value.msgpack, ty)
    } else if !value.json.is_empty() {
        tfvalue::decode_json(&value.json, ty)
    } else {
        return Ok(Value::Null);
    };
    result.map_err(|e| Diagnostic::decode(what, &e))
}

pub fn encode(value: &Value, ty: &Type) -> Result<pb::DynamicValue, Diagnostic> {
    // The buffer starts as large as the largest value encoded so far (up to a cap): states of
    // one resource type are alike in size, and growing from nothing took about ten
    // reallocations and copies per state.
    static LARGEST: AtomicUsize = AtomicUsize::new(256);
    const CAP: usize = 64 * 1024;
    let mut msgpack = Vec::with_capacity(LARGEST.load(Ordering::Relaxed));
    tfvalue::encode_msgpack_into(value, ty, &mut msgpack)
        .map(|()| {
            LARGEST.fetch_max(msgpack.len().min(CAP), Ordering::Relaxed);
            pb::DynamicValue {
                msgpack: msgpack.into(),
                json: Default::default(),
            }
        })
        .map_err(|e| {
            Diagnostic::error(
                "Internal provider error",
                format!("The provider produced a value it cannot encode: {e}"),
            )
        })
}

/// Decodes a configuration with its schema and runs the object's own checks on it.
fn validate_config(
    ty: &Type,
    config: Option<&pb::DynamicValue>,
    validate: impl FnOnce(&Value) -> Diagnostics,
) -> Vec<pb::Diagnostic> {
    match decode(config, ty, "configuration") {
        Ok(config) => diagnostics_to_pb(validate(&config)),
        Err(d) => one(d),
    }
}

/// Runs a handler; a crash inside becomes `on_crash(diagnostic)`.
async fn guarded<T, F>(
    rpc: &'static str,
    type_name: &str,
    fut: F,
    on_crash: impl FnOnce(Diagnostic) -> T,
) -> T
where
    F: Future<Output = T>,
{
    // The placement fields are filled in by `observe` once PlanResourceChange has decided; the
    // protocol does not tell a provider the resource's address, so its `name` stands in.
    let span = tracing::info_span!(
        "rpc",
        tf_rpc = rpc,
        tf_resource_type = type_name,
        tf_resource_name = tracing::field::Empty,
        placement_outcome = tracing::field::Empty,
        placement_provider = tracing::field::Empty,
        placement_region = tracing::field::Empty,
        placement_instance_type = tracing::field::Empty,
        placement_node = tracing::field::Empty,
        placement_score = tracing::field::Empty,
        placement_cost_hourly = tracing::field::Empty,
    );
    let started = std::time::Instant::now();
    match AssertUnwindSafe(fut)
        .catch_unwind()
        .instrument(span.clone())
        .await
    {
        Ok(v) => {
            span.in_scope(|| {
                tracing::debug!(
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "{rpc} finished"
                )
            });
            v
        }
        Err(payload) => {
            let message = crash_message(payload.as_ref());
            tracing::error!(
                tf_rpc = rpc,
                "handler failed with an internal error: {message}"
            );
            on_crash(Diagnostic::internal(rpc, &message))
        }
    }
}

/// States that ReadResource found unchanged, decoded, by the bytes Terraform sent: Terraform
/// plans each resource right after refreshing it, with those very bytes as the prior state,
/// and the plan takes the value from here instead of decoding it again. Terraform works on at
/// most `-parallelism` resources at once, so a few entries suffice; an entry no plan takes
/// (a refresh-only run) is pushed out by later ones.
#[derive(Default)]
struct RefreshedStates(Mutex<VecDeque<(String, pb::DynamicValue, Value)>>);

impl RefreshedStates {
    const CAPACITY: usize = 32;

    fn keep(&self, type_name: &str, sent: &pb::DynamicValue, state: Value) {
        let mut entries = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() == Self::CAPACITY {
            entries.pop_front();
        }
        entries.push_back((type_name.to_owned(), sent.clone(), state));
    }

    /// The state decoded from exactly `sent`'s bytes, removed from the list.
    fn take(&self, type_name: &str, sent: &pb::DynamicValue) -> Option<Value> {
        let mut entries = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let at = entries
            .iter()
            .position(|(t, bytes, _)| t == type_name && bytes == sent)?;
        entries.remove(at).map(|(_, _, state)| state)
    }
}

/// Identifies a provider configuration (its values as Terraform sent them) under this build.
fn config_digest(config: Option<&pb::DynamicValue>) -> String {
    let config = encodings(config);
    digest_of(&[env!("CARGO_PKG_VERSION").as_bytes(), config.0, config.1])
}

/// A `DynamicValue`'s two encodings as sent (either may be empty; both are when it is absent).
fn encodings(v: Option<&pb::DynamicValue>) -> (&[u8], &[u8]) {
    v.map_or((&[][..], &[][..]), |v| (&v.msgpack[..], &v.json[..]))
}

/// SHA-256 (hex, 128 bits) of `parts`, each with its length first, so that no two lists of
/// parts run together into the same bytes.
fn digest_of(parts: &[&[u8]]) -> String {
    let mut bytes = Vec::with_capacity(parts.iter().map(|p| p.len() + 8).sum());
    for part in parts {
        bytes.extend_from_slice(&(part.len() as u64).to_le_bytes());
        bytes.extend_from_slice(part);
    }
    resources::sha256_hex(bytes, 16)
}

/// Whether a `DynamicValue` as sent is absent or null (a destroy's configuration), read
/// without decoding it.
fn sent_null(v: Option<&pb::DynamicValue>) -> bool {
    match v {
        None => true,
        Some(v) if v.json.is_empty() => v.msgpack.is_empty() || v.msgpack[..] == [0xc0],
        Some(v) => v.json.trim_ascii() == b"null",
    }
}

/// Identifies a PlanResourceChange request: the resource type, each value's bytes as sent, the
/// prior private data, provider_meta, and the provider configuration ([`config_digest`]).
fn plan_request_digest(config_digest: &str, req: &pb::plan_resource_change::Request) -> String {
    let (config, prior, proposed, meta) = (
        encodings(req.config.as_ref()),
        encodings(req.prior_state.as_ref()),
        encodings(req.proposed_new_state.as_ref()),
        encodings(req.provider_meta.as_ref()),
    );
    digest_of(&[
        config_digest.as_bytes(),
        req.type_name.as_bytes(),
        config.0,
        config.1,
        prior.0,
        prior.1,
        proposed.0,
        proposed.1,
        &req.prior_private,
        meta.0,
        meta.1,
    ])
}

fn one(d: Diagnostic) -> Vec<pb::Diagnostic> {
    diagnostics_to_pb(d.into())
}

// ---------------------------------------------------------------------------------------------
// The service

#[tonic::async_trait]
impl Provider for HybridProvider {
    async fn get_metadata(
        &self,
        _request: Request<pb::get_metadata::Request>,
    ) -> Result<Response<pb::get_metadata::Response>, Status> {
        Ok(Response::new(pb::get_metadata::Response {
            server_capabilities: Some(server_capabilities()),
            diagnostics: Vec::new(),
            data_sources: self
                .data_sources
                .keys()
                .map(|name| pb::get_metadata::DataSourceMetadata {
                    type_name: name.to_string(),
                })
                .collect(),
            resources: self
                .resources
                .keys()
                .map(|name| pb::get_metadata::ResourceMetadata {
                    type_name: name.to_string(),
                })
                .collect(),
            functions: Vec::new(),
            ephemeral_resources: Vec::new(),
        }))
    }

    async fn get_provider_schema(
        &self,
        _request: Request<pb::get_provider_schema::Request>,
    ) -> Result<Response<pb::get_provider_schema::Response>, Status> {
        Ok(Response::new(pb::get_provider_schema::Response {
            provider: Some(schema_to_pb(&self.provider_schema)),
            resource_schemas: self.resource_schemas(),
            data_source_schemas: self.data_source_schemas(),
            diagnostics: Vec::new(),
            provider_meta: None,
            server_capabilities: Some(server_capabilities()),
            functions: HashMap::new(),
            ephemeral_resource_schemas: HashMap::new(),
        }))
    }

    async fn validate_provider_config(
        &self,
        request: Request<pb::validate_provider_config::Request>,
    ) -> Result<Response<pb::validate_provider_config::Response>, Status> {
        let req = request.into_inner();
        let ty = self.provider_schema.block.value_type();
        let diagnostics = guarded(
            "ValidateProviderConfig",
            "provider",
            async {
                match decode(req.config.as_ref(), &ty, "provider configuration") {
                    Ok(config) => diagnostics_to_pb(config::validate(&config)),
                    Err(d) => one(d),
                }
            },
            one,
        )
        .await;
        Ok(Response::new(pb::validate_provider_config::Response {
            diagnostics,
        }))
    }

    async fn configure_provider(
        &self,
        request: Request<pb::configure_provider::Request>,
    ) -> Result<Response<pb::configure_provider::Response>, Status> {
        let req = request.into_inner();
        let ty = self.provider_schema.block.value_type();
        let diagnostics = guarded("ConfigureProvider", "provider", async {
            let config = match decode(req.config.as_ref(), &ty, "provider configuration") {
                Ok(c) => c,
                Err(d) => return one(d),
            };
            let settings = match config::settings(&config) {
                Ok(s) => s,
                Err(diags) => return diagnostics_to_pb(diags),
            };
            let catalog = match catalog::try_embedded() {
                Ok(c) => c,
                Err(e) => {
                    return one(Diagnostic::error(
                        "Catalog unavailable",
                        format!("The embedded catalog could not be loaded: {e}"),
                    ))
                }
            };
            let faults = match clouds::faults::FaultPlan::parse(&settings.sim_faults) {
                Ok(f) => f,
                Err(e) => {
                    return one(Diagnostic::error(
                        "Invalid sim fault plan",
                        format!("{e} (from sim_faults or {})", config::ENV_SIM_FAULTS),
                    ))
                }
            };
            let sim = match clouds::sim::SimCloud::open(&settings.state_path, faults) {
                Ok(s) => s,
                Err(e) => {
                    return one(Diagnostic::error(
                        "Cannot open the sim cloud state",
                        format!("{e}. Set state_path in the provider block (or {}) to a writable file.", config::ENV_STATE_PATH),
                    )
                    .at(AttributePath::root().attr("state_path")))
                }
            };
            let ledger_location = settings
                .ledger_url
                .clone()
                .unwrap_or_else(|| settings.state_path.display().to_string());
            let ledger: Arc<dyn ledger::Ledger> = match ledger::open(&ledger_location) {
                Ok(l) => Arc::from(l),
                Err(e) => {
                    return one(Diagnostic::error(
                        "Cannot open the capacity ledger",
                        format!("{e}"),
                    )
                    .at(AttributePath::root().attr("ledger_url")))
                }
            };
            tracing::info!(terraform_version = %req.terraform_version, state_path = %settings.state_path.display(), ledger = %ledger.location(), "provider configured");
            let warnings = self.telemetry.configure(settings.metrics.as_ref()).await;
            let sim = Arc::new(sim.with_catalog(catalog));
            let mut clouds = BTreeMap::new();
            if let Some(aws) = aws_driver(settings.aws.as_ref(), &self.stop) {
                clouds.insert("aws", MeteredDriver::wrap(aws, self.telemetry.clone()));
            }
            if let Some(gcp) = gcp_driver(settings.gcp.as_ref(), &self.stop) {
                clouds.insert("gcp", MeteredDriver::wrap(gcp, self.telemetry.clone()));
            }
            let edge_sites = kubernetes_sites(&sim);
            let kubernetes = edge_sites
                .clone()
                .map(|sites| MeteredDriver::wrap(sites.driver(), self.telemetry.clone()));
            if let Some(azure) = azure_driver(settings.azure.as_ref(), &self.stop) {
                clouds.insert("azure", MeteredDriver::wrap(azure, self.telemetry.clone()));
            }
            *self.context.write().await = Some(ProviderContext {
                catalog,
                driver: MeteredDriver::wrap(sim.clone(), self.telemetry.clone()),
                clouds,
                edge_sites,
                kubernetes,
                sim,
                ledger,
                default_tags: settings.default_tags,
                stop: self.stop.signal(),
                placements: Arc::default(),
                config_digest: config_digest(req.config.as_ref()),
            });
            diagnostics_to_pb(warnings)
        }, one)
        .await;
        Ok(Response::new(pb::configure_provider::Response {
            diagnostics,
        }))
    }

    async fn validate_resource_config(
        &self,
        request: Request<pb::validate_resource_config::Request>,
    ) -> Result<Response<pb::validate_resource_config::Response>, Status> {
        let req = request.into_inner();
        let diagnostics = guarded(
            "ValidateResourceConfig",
            &req.type_name,
            async {
                match self.resource(&req.type_name) {
                    Ok(r) => {
                        let ty = self.resource_type(&req.type_name, r.schema());
                        validate_config(&ty, req.config.as_ref(), |c| r.validate(c))
                    }
                    Err(d) => one(d),
                }
            },
            one,
        )
        .await;
        Ok(Response::new(pb::validate_resource_config::Response {
            diagnostics,
        }))
    }

    async fn upgrade_resource_state(
        &self,
        request: Request<pb::upgrade_resource_state::Request>,
    ) -> Result<Response<pb::upgrade_resource_state::Response>, Status> {
        let req = request.into_inner();
        let response = guarded("UpgradeResourceState", &req.type_name, async {
            let mut resp = pb::upgrade_resource_state::Response::default();
            let resource = match self.resource(&req.type_name) {
                Ok(r) => r,
                Err(d) => {
                    resp.diagnostics = one(d);
                    return resp;
                }
            };
            let Some(raw) = req.raw_state.as_ref().filter(|r| !r.json.is_empty()) else {
                resp.diagnostics = one(Diagnostic::error(
                    "Unsupported state format",
                    "This provider reads JSON state only (flatmap state comes from Terraform 0.11 providers).",
                ));
                return resp;
            };
            // State written by the current schema needs no upgrade: it goes back as the JSON
            // Terraform sent, which Terraform decodes with the same schema (a `DynamicValue`
            // may be JSON as well as msgpack). Terraform wrote it from values of this schema,
            // and ctyjson reads exactly what it wrote, so this is the value that decoding and
            // encoding it here would give; transcoding it was a tenth of a re-plan and a sixth
            // of a destroy. An attribute that a later schema drops needs a new version, which
            // then takes the resource's upgrade below (see `schema_versions_guard_state`).
            if req.version == resource.schema().version {
                resp.upgraded_state = Some(pb::DynamicValue {
                    msgpack: Default::default(),
                    json: raw.json.clone(),
                });
                return resp;
            }
            let ty = self.resource_type(&req.type_name, resource.schema());
            match resource.upgrade(req.version, &raw.json) {
                Ok(value) => match encode(&value, &ty) {
                    Ok(dv) => resp.upgraded_state = Some(dv),
                    Err(d) => resp.diagnostics = one(d),
                },
                Err(diags) => resp.diagnostics = diagnostics_to_pb(diags),
            }
            resp
        }, |d| pb::upgrade_resource_state::Response { upgraded_state: None, diagnostics: one(d) })
        .await;
        Ok(Response::new(response))
    }

    async fn read_resource(
        &self,
        request: Request<pb::read_resource::Request>,
    ) -> Result<Response<pb::read_resource::Response>, Status> {
        let req = request.into_inner();
        let fallback_state = req.current_state.clone();
        let response = guarded(
            "ReadResource",
            &req.type_name,
            async {
                let mut resp = pb::read_resource::Response {
                    new_state: req.current_state.clone(),
                    private: req.private.clone(),
                    ..Default::default()
                };
                let (resource, ctx) = match self.with_context(self.resource(&req.type_name)).await {
                    Ok(found) => found,
                    Err(d) => {
                        resp.diagnostics = one(d);
                        return resp;
                    }
                };
                let ty = self.resource_type(&req.type_name, resource.schema());
                let state = match decode(req.current_state.as_ref(), &ty, "current state") {
                    Ok(s) => s,
                    Err(d) => {
                        resp.diagnostics = one(d);
                        return resp;
                    }
                };
                let prior = Glimpse::of(&state);
                // Most refreshes find nothing changed: then the state goes back as Terraform
                // sent it, and a comparison replaces encoding it anew (not for types with
                // dynamic positions, where `==` looks through the wrappers the bytes keep).
                let static_type = self.static_resource_types.contains(req.type_name.as_str());
                let before = state.clone();
                let out = resource.read(&ctx, state, req.private.clone()).await;
                self.telemetry
                    .after_read(&ctx, &req.type_name, &prior, &out.new_state);
                let mut diags = out.diagnostics;
                if !static_type || out.new_state != before {
                    match encode(&out.new_state, &ty) {
                        Ok(dv) => resp.new_state = Some(dv),
                        Err(d) => diags.push(d),
                    }
                } else if let Some(sent) = &req.current_state {
                    self.refreshed.keep(&req.type_name, sent, before);
                }
                resp.private = out.private;
                resp.diagnostics = diagnostics_to_pb(diags);
                resp
            },
            |d| pb::read_resource::Response {
                new_state: fallback_state,
                diagnostics: one(d),
                ..Default::default()
            },
        )
        .await;
        Ok(Response::new(response))
    }

    async fn plan_resource_change(
        &self,
        request: Request<pb::plan_resource_change::Request>,
    ) -> Result<Response<pb::plan_resource_change::Response>, Status> {
        let req = request.into_inner();
        let response = guarded(
            "PlanResourceChange",
            &req.type_name,
            async {
                let mut resp = pb::plan_resource_change::Response::default();
                let (resource, ctx) = match self.with_context(self.resource(&req.type_name)).await {
                    Ok(found) => found,
                    Err(d) => {
                        resp.diagnostics = one(d);
                        return resp;
                    }
                };
                let ty = self.resource_type(&req.type_name, resource.schema());
                // In a plan that changes nothing, Terraform proposes the prior state itself,
                // byte for byte: it is decoded once, and if the plan keeps it, it goes back as
                // it came instead of being encoded anew.
                let unchanged_proposal = self
                    .static_resource_types
                    .contains(req.type_name.as_str())
                    && matches!(
                        (&req.prior_state, &req.proposed_new_state),
                        (Some(a), Some(b)) if a.json.is_empty() && b.json.is_empty() && a.msgpack == b.msgpack
                    );
                // Terraform repeats at apply every plan it showed, with the same request, and
                // requires the same answer: a resource that recorded its answer under the
                // request's digest gives it back (see `PlanRequest::request_digest`), looked up
                // before anything is decoded. A plan that keeps the prior state or destroys (no
                // configuration) is not recorded.
                let request_digest = (resource.replays_plans()
                    && !unchanged_proposal
                    && !sent_null(req.config.as_ref()))
                .then(|| plan_request_digest(&ctx.config_digest, &req));
                let lookup = match (&request_digest, &req.config) {
                    (Some(digest), Some(config)) if config.json.is_empty() => {
                        resource.replayed_plan(&ctx, &config.msgpack, digest)
                    }
                    _ => ReplayLookup::NotLooked,
                };
                let looked_up = match lookup {
                    ReplayLookup::Replayed(mut out) => {
                        out.planned_private = req.prior_private.clone();
                        let inputs = PlanInputs::of(&Value::Null, &out.planned_state);
                        return self.plan_response(&req, &ty, &inputs, out, None);
                    }
                    ReplayLookup::Missed(read) => Some(read),
                    ReplayLookup::NotLooked => None,
                };
                // A destroy of a resource whose destroy plan does not read the prior state:
                // nothing is decoded, and telemetry reads the prior's name and id from its bytes.
                let prior_msgpack = req.prior_state.as_ref().filter(|p| p.json.is_empty());
                if let Some(prior) = prior_msgpack.filter(|_| {
                    sent_null(req.proposed_new_state.as_ref()) && !resource.destroy_plan_reads_prior()
                }) {
                    let inputs = PlanInputs::destroying(
                        tfvalue::msgpack_object_str(&prior.msgpack, "name"),
                        tfvalue::msgpack_object_str(&prior.msgpack, "id"),
                    );
                    let out = resource
                        .plan(
                            &ctx,
                            PlanRequest {
                                prior_state: Value::Null,
                                proposed_new_state: Value::Null,
                                config: Value::Null,
                                prior_private: req.prior_private.clone(),
                                request_digest: None,
                                looked_up: None,
                            },
                        )
                        .await;
                    return self.plan_response(&req, &ty, &inputs, out, None);
                }
                let config = match decode(req.config.as_ref(), &ty, "configuration") {
                    Ok(c) => c,
                    Err(d) => {
                        resp.diagnostics = one(d);
                        return resp;
                    }
                };
                // Terraform plans each resource right after refreshing it, with the state the
                // refresh returned: when that refresh found it unchanged, it was decoded there.
                let prior_state = match req
                    .prior_state
                    .as_ref()
                    .and_then(|sent| self.refreshed.take(&req.type_name, sent))
                {
                    Some(state) => Ok(state),
                    None => decode(req.prior_state.as_ref(), &ty, "prior state"),
                };
                let proposed_new_state = match (&prior_state, unchanged_proposal) {
                    (Ok(prior), true) => Ok(prior.clone()),
                    _ => decode(req.proposed_new_state.as_ref(), &ty, "proposed new state"),
                };
                let (prior_state, proposed_new_state) = match (prior_state, proposed_new_state) {
                    (Ok(a), Ok(b)) => (a, b),
                    (Err(d), _) | (_, Err(d)) => {
                        resp.diagnostics = one(d);
                        return resp;
                    }
                };
                let unchanged = unchanged_proposal.then(|| proposed_new_state.clone());
                let inputs = PlanInputs::of(&prior_state, &proposed_new_state);
                let out = resource
                    .plan(
                        &ctx,
                        PlanRequest {
                            prior_state,
                            proposed_new_state,
                            config,
                            prior_private: req.prior_private.clone(),
                            request_digest,
                            looked_up,
                        },
                    )
                    .await;
                self.plan_response(&req, &ty, &inputs, out, unchanged)
            },
            |d| pb::plan_resource_change::Response {
                diagnostics: one(d),
                ..Default::default()
            },
        )
        .await;
        Ok(Response::new(response))
    }

    async fn apply_resource_change(
        &self,
        request: Request<pb::apply_resource_change::Request>,
    ) -> Result<Response<pb::apply_resource_change::Response>, Status> {
        let req = request.into_inner();
        // If the handler crashes, keep the prior state: it is the last truth we know.
        let fallback_state = req.prior_state.clone();
        let response = guarded(
            "ApplyResourceChange",
            &req.type_name,
            async {
                let mut resp = pb::apply_resource_change::Response {
                    new_state: req.prior_state.clone(),
                    ..Default::default()
                };
                let (resource, ctx) = match self.with_context(self.resource(&req.type_name)).await {
                    Ok(found) => found,
                    Err(d) => {
                        resp.diagnostics = one(d);
                        return resp;
                    }
                };
                let ty = self.resource_type(&req.type_name, resource.schema());
                let decoded = (
                    decode(req.prior_state.as_ref(), &ty, "prior state"),
                    decode(req.planned_state.as_ref(), &ty, "planned state"),
                    if resource.apply_reads_config() {
                        decode(req.config.as_ref(), &ty, "configuration")
                    } else {
                        Ok(Value::Null)
                    },
                );
                let (prior_state, planned_state, config) = match decoded {
                    (Ok(a), Ok(b), Ok(c)) => (a, b, c),
                    (Err(d), _, _) | (_, Err(d), _) | (_, _, Err(d)) => {
                        resp.diagnostics = one(d);
                        return resp;
                    }
                };
                let (prior, planned) = (Glimpse::of(&prior_state), Glimpse::of(&planned_state));
                let out = resource
                    .apply(
                        &ctx,
                        ApplyRequest {
                            prior_state,
                            planned_state,
                            config,
                            planned_private: req.planned_private.clone(),
                        },
                    )
                    .await;
                self.telemetry.after_apply(
                    &ctx,
                    &req.type_name,
                    &prior,
                    &planned,
                    &out.new_state,
                    out.diagnostics.has_errors(),
                );
                let mut diags = out.diagnostics;
                match encode(&out.new_state, &ty) {
                    Ok(dv) => resp.new_state = Some(dv),
                    Err(d) => diags.push(d),
                }
                resp.private = out.private;
                resp.diagnostics = diagnostics_to_pb(diags);
                resp
            },
            |d| pb::apply_resource_change::Response {
                new_state: fallback_state,
                diagnostics: one(d),
                ..Default::default()
            },
        )
        .await;
        Ok(Response::new(response))
    }

    async fn import_resource_state(
        &self,
        request: Request<pb::import_resource_state::Request>,
    ) -> Result<Response<pb::import_resource_state::Response>, Status> {
        let req = request.into_inner();
        let response = guarded(
            "ImportResourceState",
            &req.type_name,
            async {
                let mut resp = pb::import_resource_state::Response::default();
                let (resource, ctx) = match self.with_context(self.resource(&req.type_name)).await {
                    Ok(found) => found,
                    Err(d) => {
                        resp.diagnostics = one(d);
                        return resp;
                    }
                };
                let ty = self.resource_type(&req.type_name, resource.schema());
                let out = resource.import(&ctx, &req.id).await;
                let mut diags = out.diagnostics;
                for state in out.states {
                    match encode(&state, &ty) {
                        Ok(dv) => resp.imported_resources.push(
                            pb::import_resource_state::ImportedResource {
                                type_name: req.type_name.clone(),
                                state: Some(dv),
                                private: Vec::new(),
                                identity: None,
                            },
                        ),
                        Err(d) => diags.push(d),
                    }
                }
                resp.diagnostics = diagnostics_to_pb(diags);
                resp
            },
            |d| pb::import_resource_state::Response {
                diagnostics: one(d),
                ..Default::default()
            },
        )
        .await;
        Ok(Response::new(response))
    }

    async fn validate_data_resource_config(
        &self,
        request: Request<pb::validate_data_resource_config::Request>,
    ) -> Result<Response<pb::validate_data_resource_config::Response>, Status> {
        let req = request.into_inner();
        let diagnostics = guarded(
            "ValidateDataResourceConfig",
            &req.type_name,
            async {
                match self.data_source(&req.type_name) {
                    Ok(d) => {
                        let ty = self.data_source_type(&req.type_name, d.schema());
                        validate_config(&ty, req.config.as_ref(), |c| d.validate(c))
                    }
                    Err(d) => one(d),
                }
            },
            one,
        )
        .await;
        Ok(Response::new(pb::validate_data_resource_config::Response {
            diagnostics,
        }))
    }

    async fn read_data_source(
        &self,
        request: Request<pb::read_data_source::Request>,
    ) -> Result<Response<pb::read_data_source::Response>, Status> {
        let req = request.into_inner();
        let response = guarded(
            "ReadDataSource",
            &req.type_name,
            async {
                let mut resp = pb::read_data_source::Response::default();
                let (source, ctx) = match self.with_context(self.data_source(&req.type_name)).await
                {
                    Ok(found) => found,
                    Err(d) => {
                        resp.diagnostics = one(d);
                        return resp;
                    }
                };
                let ty = self.data_source_type(&req.type_name, source.schema());
                let config = match decode(req.config.as_ref(), &ty, "configuration") {
                    Ok(c) => c,
                    Err(d) => {
                        resp.diagnostics = one(d);
                        return resp;
                    }
                };
                let out = source.read(&ctx, config).await;
                let mut diags = out.diagnostics;
                if !diags.has_errors() {
                    match encode(&out.state, &ty) {
                        Ok(dv) => resp.state = Some(dv),
                        Err(d) => diags.push(d),
                    }
                }
                resp.diagnostics = diagnostics_to_pb(diags);
                resp
            },
            |d| pb::read_data_source::Response {
                diagnostics: one(d),
                ..Default::default()
            },
        )
        .await;
        Ok(Response::new(response))
    }

    async fn stop_provider(
        &self,
        _request: Request<pb::stop_provider::Request>,
    ) -> Result<Response<pb::stop_provider::Response>, Status> {
        tracing::info!("Terraform asked the provider to stop: cancelling in-flight operations");
        self.stop.stop();
        Ok(Response::new(pb::stop_provider::Response {
            error: String::new(),
        }))
    }
}

fn server_capabilities() -> pb::ServerCapabilities {
    pb::ServerCapabilities {
        plan_destroy: false,
        get_provider_schema_optional: false,
        move_resource_state: false,
    }
}

/// The EC2 driver for an `aws {}` block (config validation already refused the block in builds
/// without the feature).
#[cfg(feature = "aws")]
fn aws_driver(
    block: Option<&config::AwsConfig>,
    stop: &StopHandle,
) -> Option<Arc<dyn clouds::Driver>> {
    let block = block?;
    let settings = clouds::aws::AwsSettings {
        endpoint_url: block.endpoint_url.clone(),
        default_image_id: block.default_image_id.clone(),
        subnet_id: block.subnet_id.clone(),
        security_group_ids: block.security_group_ids.clone(),
        default_region: None,
        request_timeout: block.request_timeout,
    };
    Some(Arc::new(clouds::aws::AwsDriver::new(
        settings,
        stop.signal(),
    )))
}

#[cfg(not(feature = "aws"))]
fn aws_driver(
    _block: Option<&config::AwsConfig>,
    _stop: &StopHandle,
) -> Option<Arc<dyn clouds::Driver>> {
    None
}

/// The Compute Engine driver for a `gcp {}` block (config validation already refused the block
/// in builds without the feature).
#[cfg(feature = "gcp")]
fn gcp_driver(
    block: Option<&config::GcpConfig>,
    stop: &StopHandle,
) -> Option<Arc<dyn clouds::Driver>> {
    let block = block?;
    let settings = clouds::gcp::GcpSettings {
        project: block.project.clone(),
        endpoint_url: block.endpoint_url.clone(),
        default_image: block.default_image.clone(),
        network: block.network.clone(),
        subnetwork: block.subnetwork.clone(),
        request_timeout: block.request_timeout,
    };
    Some(Arc::new(clouds::gcp::GcpDriver::new(
        settings,
        stop.signal(),
    )))
}

/// The Azure Compute driver for an `azure {}` block (config validation already refused the
/// block in builds without the feature).
#[cfg(feature = "azure")]
fn azure_driver(
    block: Option<&config::AzureConfig>,
    stop: &StopHandle,
) -> Option<Arc<dyn clouds::Driver>> {
    let block = block?;
    let settings = clouds::azure::AzureSettings {
        subscription_id: block.subscription_id.clone(),
        resource_group: block.resource_group.clone(),
        endpoint_url: block.endpoint_url.clone(),
        subnet_id: block.subnet_id.clone(),
        network_interface_id: block.network_interface_id.clone(),
        default_image: block.default_image.clone(),
        authority_host: None,
        ssh_public_key: block.ssh_public_key.clone(),
        request_timeout: block.request_timeout,
    };
    Some(Arc::new(clouds::azure::AzureDriver::new(
        settings,
        stop.signal(),
    )))
}

#[cfg(not(feature = "gcp"))]
fn gcp_driver(
    _block: Option<&config::GcpConfig>,
    _stop: &StopHandle,
) -> Option<Arc<dyn clouds::Driver>> {
    None
}

#[cfg(not(feature = "azure"))]
fn azure_driver(
    _block: Option<&config::AzureConfig>,
    _stop: &StopHandle,
) -> Option<Arc<dyn clouds::Driver>> {
    None
}

/// Every Kubernetes edge site behind one driver (clusters with a `kubernetes` block; validation
/// refuses the block in builds without the feature).
#[cfg(feature = "kubernetes")]
fn kubernetes_sites(sim: &Arc<clouds::sim::SimCloud>) -> Option<Arc<dyn clouds::edge::EdgeSites>> {
    Some(Arc::new(clouds::kubernetes::KubernetesSites::new(
        sim.clone(),
    )))
}

#[cfg(not(feature = "kubernetes"))]
fn kubernetes_sites(_sim: &Arc<clouds::sim::SimCloud>) -> Option<Arc<dyn clouds::edge::EdgeSites>> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attrs;
    use crate::resources::plan_note::{PlanNote, RecordedPlan};

    /// Terraform's own schema check (configschema InternalValidate), which 1.0 skips and later
    /// versions run when they load the provider: a single block has MinItems == MaxItems, 0 or 1.
    #[test]
    fn single_blocks_send_equal_min_and_max_items() {
        fn check(path: &str, block: &pb::schema::Block) {
            for nb in &block.block_types {
                let here = format!("{path}.{}", nb.type_name);
                if nb.nesting == pb::schema::nested_block::NestingMode::Single as i32 {
                    assert_eq!(nb.min_items, nb.max_items, "{here}");
                    assert!(nb.min_items == 0 || nb.min_items == 1, "{here}");
                }
                if let Some(inner) = &nb.block {
                    check(&here, inner);
                }
            }
        }
        let provider = HybridProvider::new();
        for (name, schema) in provider
            .resource_schemas()
            .into_iter()
            .chain(provider.data_source_schemas())
        {
            check(&name, schema.block.as_ref().expect("block"));
        }
        check(
            "provider",
            &schema_to_pb(&provider.provider_schema)
                .block
                .expect("block"),
        );
    }

    #[test]
    fn nested_attributes_never_send_a_type_as_well() {
        let provider = HybridProvider::new();
        let schemas = provider.resource_schemas();
        let workload = &schemas["hybrid_workload"];
        let block = workload.block.as_ref().expect("block");
        for attr in &block.attributes {
            if attr.nested_type.is_some() {
                assert!(
                    attr.r#type.is_empty(),
                    "{} sends both type and nested_type",
                    attr.name
                );
            } else {
                assert!(!attr.r#type.is_empty(), "{} has no type", attr.name);
            }
        }
    }

    #[test]
    fn every_resource_type_starts_with_the_provider_name() {
        for name in HybridProvider::new().resource_schemas().keys() {
            assert!(name.starts_with("hybrid_"), "{name}");
        }
    }

    async fn upgrade(
        provider: &HybridProvider,
        version: i64,
        json: impl Into<tonic::codegen::Bytes>,
    ) -> pb::upgrade_resource_state::Response {
        provider
            .upgrade_resource_state(Request::new(pb::upgrade_resource_state::Request {
                type_name: "hybrid_workload".into(),
                version,
                raw_state: Some(pb::RawState {
                    json: json.into(),
                    ..Default::default()
                }),
            }))
            .await
            .expect("response")
            .into_inner()
    }

    /// A workload's state as Terraform 1.0.3 stored it after a real apply on sim.
    const WORKLOAD_STATE: &[u8] = include_bytes!("testdata/workload_state_v1.json");

    #[tokio::test]
    async fn current_state_goes_back_as_the_json_terraform_sent() {
        let provider = HybridProvider::new();
        let resource = provider.resource("hybrid_workload").expect("workload");
        let version = resource.schema().version;

        let raw = tonic::codegen::Bytes::from_static(WORKLOAD_STATE);
        let resp = upgrade(&provider, version, raw.clone()).await;
        assert!(resp.diagnostics.is_empty(), "{:?}", resp.diagnostics);
        let state = resp.upgraded_state.expect("state");
        assert!(state.msgpack.is_empty(), "JSON, not a new encoding");
        // The same buffer: nothing was copied or rewritten.
        assert_eq!(state.json.as_ptr(), raw.as_ptr());
        assert_eq!(state.json.len(), raw.len());
        // And it is a value of the current schema, the one the upgrade would return.
        let ty = provider.resource_type("hybrid_workload", resource.schema());
        let decoded = tfvalue::decode_json(&state.json, &ty).expect("a value of the schema");
        assert_eq!(
            decoded,
            resource.upgrade(version, WORKLOAD_STATE).expect("upgrades")
        );
    }

    /// What a schema version promises: state stored under it goes to Terraform unchanged (see
    /// UpgradeResourceState), so within one version a resource's state type may only gain
    /// attributes (ctyjson reads missing ones as null), never lose or retype one. The types
    /// each version shipped are checked in; `UPDATE_STATE_TYPES=1` records the current ones
    /// once this check passes (after a version bump, with its upgrade step).
    #[test]
    fn schema_versions_guard_state() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/testdata/state_types.json");
        let recorded: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&std::fs::read(&path).unwrap_or_default()).unwrap_or_default();
        let provider = HybridProvider::new();
        let mut current = serde_json::Map::new();
        for (name, resource) in &provider.resources {
            let version = resource.schema().version;
            let ty = provider.resource_type(name, resource.schema());
            if let Some(old) = recorded.get(*name) {
                if old["version"] == version {
                    let old_ty = Type::from_json_value(&old["type"]).expect("recorded type");
                    if let Err(at) = still_reads(&old_ty, &ty, name.to_string()) {
                        panic!("{name} schema version {version} changed the type of state already stored under it at {at}; bump the schema version and add an upgrade step");
                    }
                }
            }
            current.insert(
                name.to_string(),
                serde_json::json!({"version": version, "type": ty.to_json_value()}),
            );
        }
        if std::env::var_os("UPDATE_STATE_TYPES").is_some() {
            let text = serde_json::to_string_pretty(&current).expect("json") + "\n";
            std::fs::write(&path, text).expect("write state types");
            return;
        }
        for (name, entry) in &current {
            assert!(
                recorded.get(name).is_some_and(|old| old["version"] == entry["version"]),
                "{name}: no state type recorded for schema version {}; run `UPDATE_STATE_TYPES=1 cargo test -p terraform-provider-hybrid schema_versions_guard_state`",
                entry["version"]
            );
        }
    }

    /// `Ok` when every value of `old` is also a value of `new`; else the path where not.
    fn still_reads(old: &Type, new: &Type, at: String) -> Result<(), String> {
        match (old, new) {
            (Type::List(o), Type::List(n))
            | (Type::Set(o), Type::Set(n))
            | (Type::Map(o), Type::Map(n)) => still_reads(o, n, format!("{at}[*]")),
            (Type::Object(o), Type::Object(n)) => o.attrs.iter().try_for_each(|(k, t)| {
                let path = format!("{at}.{k}");
                match n.attrs.get(k.as_str()) {
                    Some(nt) => still_reads(t, nt, path),
                    None => Err(path),
                }
            }),
            _ if old == new => Ok(()),
            _ => Err(at),
        }
    }

    /// A workload as schema version 0 stored it (flat placement attributes).
    fn version0_state() -> String {
        serde_json::json!({
            "id": "wl-0123456789abcdef", "name": "api", "cpu": 2, "memory_gb": 4,
            "placement_provider": "aws", "placement_region": "eu-west-1",
            "instance_type": "m5.large", "estimated_cost_hourly": 0.107,
            "placement_reason": "cheapest", "instance_id": "sim-1", "status": "running"
        })
        .to_string()
    }

    #[tokio::test]
    async fn older_state_is_upgraded_to_msgpack_and_errors_name_the_attribute() {
        let provider = HybridProvider::new();
        let resource = provider.resource("hybrid_workload").expect("workload");
        let ty = provider.resource_type("hybrid_workload", resource.schema());
        let version = resource.schema().version;
        assert!(version > 0, "the workload has an upgrade path to test");

        // Version 0 state: what the resource's upgrade makes of it, encoded as msgpack.
        let v0 = version0_state();
        let resp = upgrade(&provider, 0, v0.clone()).await;
        assert!(resp.diagnostics.is_empty(), "{:?}", resp.diagnostics);
        let expected = encode(&resource.upgrade(0, v0.as_bytes()).expect("upgrades"), &ty)
            .expect("encodes")
            .msgpack;
        let state = resp.upgraded_state.expect("state");
        assert!(state.json.is_empty());
        assert_eq!(state.msgpack, expected);

        let undeclared = v0.replacen('{', "{\"zz_gone\":1,", 1);
        let resp = upgrade(&provider, 0, undeclared).await;
        assert!(resp.upgraded_state.is_none());
        let detail = &resp.diagnostics.first().expect("a diagnostic").detail;
        assert!(detail.contains("zz_gone"), "{detail}");
    }

    /// A provider configured on a sim store in `dir`, `extra` set in its configuration.
    async fn configured(dir: &std::path::Path, extra: &[(&str, Value)]) -> HybridProvider {
        let provider = HybridProvider::new();
        let Type::Object(provider_type) = provider.provider_schema.block.value_type() else {
            unreachable!("a provider schema is an object")
        };
        let mut provider_config = Value::null_of(&provider_type);
        let state_path = dir.join("sim.db").to_string_lossy().into_owned();
        attrs::set(
            &mut provider_config,
            "state_path",
            Value::string(state_path),
        );
        for (name, value) in extra {
            attrs::set(&mut provider_config, name, value.clone());
        }
        let configured = provider
            .configure_provider(Request::new(pb::configure_provider::Request {
                config: Some(
                    encode(&provider_config, &Type::Object(provider_type)).expect("encodes"),
                ),
                ..Default::default()
            }))
            .await
            .expect("response")
            .into_inner();
        assert!(
            configured.diagnostics.is_empty(),
            "{:?}",
            configured.diagnostics
        );
        provider
    }

    /// The configuration of a small workload named `name`.
    fn workload_config(ty: &Type, name: &str) -> Value {
        let Type::Object(object) = ty else {
            unreachable!("a resource schema is an object")
        };
        let mut config = Value::null_of(object);
        attrs::set(&mut config, "name", Value::string(name));
        attrs::set(&mut config, "cpu", Value::number(1i64));
        attrs::set(&mut config, "memory_gb", Value::number(2i64));
        config
    }

    async fn plan_request(
        provider: &HybridProvider,
        ty: &Type,
        prior: Option<pb::DynamicValue>,
        proposed: Option<pb::DynamicValue>,
        config: &Value,
    ) -> pb::plan_resource_change::Response {
        provider
            .plan_resource_change(Request::new(pb::plan_resource_change::Request {
                type_name: "hybrid_workload".into(),
                prior_state: prior,
                proposed_new_state: proposed,
                config: Some(encode(config, ty).expect("encodes")),
                ..Default::default()
            }))
            .await
            .expect("response")
            .into_inner()
    }

    /// A refresh that finds nothing changed and a plan that keeps the prior state send back
    /// the very bytes Terraform sent (the same buffer, not a new encoding); a plan that
    /// changes something is encoded anew.
    #[tokio::test]
    async fn unchanged_states_go_back_as_terraform_sent_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let provider = configured(dir.path(), &[]).await;
        let resource = provider.resource("hybrid_workload").expect("workload");
        let ty = provider.resource_type("hybrid_workload", resource.schema());
        let mut config = workload_config(&ty, "echo");
        let dv = |v: &Value| Some(encode(v, &ty).expect("encodes"));

        let created = plan_request(&provider, &ty, dv(&Value::Null), dv(&config), &config).await;
        assert!(created.diagnostics.is_empty(), "{:?}", created.diagnostics);
        let applied = provider
            .apply_resource_change(Request::new(pb::apply_resource_change::Request {
                type_name: "hybrid_workload".into(),
                prior_state: dv(&Value::Null),
                planned_state: created.planned_state,
                config: dv(&config),
                ..Default::default()
            }))
            .await
            .expect("response")
            .into_inner();
        assert!(applied.diagnostics.is_empty(), "{:?}", applied.diagnostics);
        let state = applied.new_state.expect("state");

        let read = provider
            .read_resource(Request::new(pb::read_resource::Request {
                type_name: "hybrid_workload".into(),
                current_state: Some(state.clone()),
                ..Default::default()
            }))
            .await
            .expect("response")
            .into_inner();
        assert!(read.diagnostics.is_empty(), "{:?}", read.diagnostics);
        let refreshed = read.new_state.expect("state");
        assert_eq!(
            refreshed.msgpack.as_ptr(),
            state.msgpack.as_ptr(),
            "sent back as given"
        );

        let kept = plan_request(
            &provider,
            &ty,
            Some(state.clone()),
            Some(state.clone()),
            &config,
        )
        .await;
        assert!(kept.diagnostics.is_empty(), "{:?}", kept.diagnostics);
        assert!(
            kept.requires_replace.is_empty(),
            "nothing to replace in a no-op plan"
        );
        let kept = kept.planned_state.expect("planned");
        assert_eq!(
            kept.msgpack.as_ptr(),
            state.msgpack.as_ptr(),
            "sent back as given"
        );

        // A changed input: the plan is the workload's own encoding, not the prior's bytes.
        let prior = decode(Some(&state), &ty, "state").expect("decodes");
        let mut proposed = prior.clone();
        attrs::set(&mut proposed, "cpu", Value::number(2i64));
        attrs::set(&mut config, "cpu", Value::number(2i64));
        let changed =
            plan_request(&provider, &ty, Some(state.clone()), dv(&proposed), &config).await;
        assert!(changed.diagnostics.is_empty(), "{:?}", changed.diagnostics);
        let changed = decode(changed.planned_state.as_ref(), &ty, "planned").expect("decodes");
        assert_eq!(attrs::number(&changed, "cpu"), Some(2.0));
        assert_ne!(changed, prior);
    }

    /// Terraform repeats a plan at apply with the same request: the recorded plan answers it,
    /// byte for byte, without a new decision; another request, or the same one under another
    /// provider configuration, is planned afresh.
    #[tokio::test]
    async fn a_repeated_plan_request_is_answered_with_the_plan_recorded_for_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let provider = configured(dir.path(), &[]).await;
        let resource = provider.resource("hybrid_workload").expect("workload");
        let ty = provider.resource_type("hybrid_workload", resource.schema());
        let config = workload_config(&ty, "replayed");
        let dv = |v: &Value| Some(encode(v, &ty).expect("encodes"));
        let planned = |resp: &pb::plan_resource_change::Response| {
            assert!(resp.diagnostics.is_empty(), "{:?}", resp.diagnostics);
            decode(resp.planned_state.as_ref(), &ty, "planned").expect("decodes")
        };

        let first = plan_request(&provider, &ty, dv(&Value::Null), dv(&config), &config).await;
        let again = plan_request(&provider, &ty, dv(&Value::Null), dv(&config), &config).await;
        assert_eq!(again.planned_state, first.planned_state);
        assert_eq!(again.requires_replace, first.requires_replace);

        // The repeat is the recorded plan, not a new decision: a note altered under the same
        // request is what comes back.
        let key = format!(
            "hybrid_workload/{}",
            attrs::string(&planned(&first), "id").expect("id")
        );
        let ledger = provider
            .context
            .read()
            .await
            .as_ref()
            .expect("configured")
            .ledger
            .clone();
        let body = ledger.plan_note(&key).expect("reads").expect("a note");
        let note = PlanNote::parse(&body).expect("a note");
        let recorded = note.plan.expect("the plan recorded");
        let mut altered = planned(&first);
        attrs::set(
            &mut altered,
            "tags_all",
            attrs::string_map_value(&BTreeMap::from([("from".to_string(), "note".to_string())])),
        );
        let altered_bytes = encode(&altered, &ty).expect("encodes").msgpack;
        // Records `altered_bytes` as the plan of the request with digest `request`.
        let record = |request: &str| {
            let plan = RecordedPlan {
                request,
                planned: &altered_bytes,
                ..recorded
            };
            let body = PlanNote::recording(note.inputs, plan)
                .to_bytes()
                .expect("a note");
            ledger
                .put_plan_note(&key, &body, std::time::Duration::from_secs(60))
                .expect("writes");
        };
        record(recorded.request);
        let replayed = plan_request(&provider, &ty, dv(&Value::Null), dv(&config), &config).await;
        assert!(
            replayed.planned_state.expect("planned").msgpack == altered_bytes,
            "answered from the note"
        );

        // The note is looked up before anything in the request is decoded: a repeat whose
        // proposed state would not even decode is answered from it all the same.
        let undecodable = pb::plan_resource_change::Request {
            type_name: "hybrid_workload".into(),
            prior_state: dv(&Value::Null),
            proposed_new_state: Some(pb::DynamicValue {
                msgpack: vec![0xc1].into(),
                json: Default::default(),
            }),
            config: dv(&config),
            ..Default::default()
        };
        let config_digest = provider
            .context
            .read()
            .await
            .as_ref()
            .expect("configured")
            .config_digest
            .clone();
        record(&plan_request_digest(&config_digest, &undecodable));
        let early = provider
            .plan_resource_change(Request::new(undecodable))
            .await
            .expect("response")
            .into_inner();
        assert!(early.diagnostics.is_empty(), "{:?}", early.diagnostics);
        assert!(early.planned_state.expect("planned").msgpack == altered_bytes);

        // Another request (more cpu) is planned afresh, and records its own plan.
        let mut bigger = config.clone();
        attrs::set(&mut bigger, "cpu", Value::number(2i64));
        let fresh =
            planned(&plan_request(&provider, &ty, dv(&Value::Null), dv(&bigger), &bigger).await);
        assert_eq!(attrs::number(&fresh, "cpu"), Some(2.0));
        assert!(attrs::string_map(&fresh, "tags_all").is_empty());

        // A provider configured otherwise does not take the recorded plan either.
        let other = configured(
            dir.path(),
            &[(
                "default_tags",
                attrs::string_map_value(&BTreeMap::from([("team".to_string(), "a".to_string())])),
            )],
        )
        .await;
        let theirs =
            planned(&plan_request(&other, &ty, dv(&Value::Null), dv(&bigger), &bigger).await);
        assert_eq!(
            attrs::string_map(&theirs, "tags_all"),
            BTreeMap::from([("team".to_string(), "a".to_string())])
        );
    }

    /// A workload's destroy plan decodes nothing: prior bytes that would not even decode
    /// still plan null, without a diagnostic. A resource whose destroy plan reads the prior
    /// state decodes it, and reports such bytes.
    #[tokio::test]
    async fn a_workload_destroy_plan_decodes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let provider = configured(dir.path(), &[]).await;
        let sent = |bytes: &[u8]| {
            Some(pb::DynamicValue {
                msgpack: bytes.to_vec().into(),
                json: Default::default(),
            })
        };
        // {"id": "wl-x", "name": "gone", "zz": 0xc1 (no msgpack value)}
        let prior = [
            0x83, 0xa2, b'i', b'd', 0xa4, b'w', b'l', b'-', b'x', 0xa4, b'n', b'a', b'm', b'e',
            0xa4, b'g', b'o', b'n', b'e', 0xa2, b'z', b'z', 0xc1,
        ];
        let destroy = |type_name: &str| pb::plan_resource_change::Request {
            type_name: type_name.into(),
            prior_state: sent(&prior),
            proposed_new_state: sent(&[0xc0]),
            config: sent(&[0xc0]),
            ..Default::default()
        };
        let plan = |req| async {
            provider
                .plan_resource_change(Request::new(req))
                .await
                .expect("response")
                .into_inner()
        };
        let workload = plan(destroy("hybrid_workload")).await;
        assert!(
            workload.diagnostics.is_empty(),
            "{:?}",
            workload.diagnostics
        );
        assert_eq!(workload.planned_state.expect("planned").msgpack[..], [0xc0]);
        let cluster = plan(destroy("hybrid_edge_cluster")).await;
        assert!(
            !cluster.diagnostics.is_empty(),
            "the prior state is decoded"
        );
    }

    #[test]
    fn a_refreshed_state_is_taken_once_by_equal_bytes_of_its_own_type() {
        let refreshed = RefreshedStates::default();
        let sent = |bytes: &[u8]| pb::DynamicValue {
            msgpack: bytes.to_vec().into(),
            json: Default::default(),
        };
        refreshed.keep(
            "hybrid_workload",
            &sent(b"\x81\xa1a\x01"),
            Value::string("one"),
        );
        assert_eq!(
            refreshed.take("hybrid_edge_node", &sent(b"\x81\xa1a\x01")),
            None
        );
        assert_eq!(
            refreshed.take("hybrid_workload", &sent(b"\x81\xa1a\x02")),
            None
        );
        // Equal bytes in another buffer (each request is its own).
        assert_eq!(
            refreshed.take("hybrid_workload", &sent(b"\x81\xa1a\x01")),
            Some(Value::string("one"))
        );
        assert_eq!(
            refreshed.take("hybrid_workload", &sent(b"\x81\xa1a\x01")),
            None
        );

        // Entries no plan takes are pushed out by later ones.
        for i in 0..=RefreshedStates::CAPACITY {
            refreshed.keep("hybrid_workload", &sent(&[i as u8]), Value::from(i as i64));
        }
        assert_eq!(refreshed.take("hybrid_workload", &sent(&[0])), None);
        assert_eq!(
            refreshed.take("hybrid_workload", &sent(&[1])),
            Some(Value::from(1i64))
        );
    }
}
