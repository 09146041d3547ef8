//! The GCP Compute Engine driver (cargo feature `gcp`): one VM instance per workload, made with
//! `instances.insert` through the official google-cloud-rust client (google-cloud-compute-v1).
//!
//! Credentials come only from Application Default Credentials, the client's standard chain
//! (`GOOGLE_APPLICATION_CREDENTIALS`, gcloud's application-default file, the metadata server);
//! the project from [`GcpSettings::project`] or `GOOGLE_CLOUD_PROJECT`. [`GcpSettings::endpoint_url`]
//! points the client at another Compute endpoint (the tests use a local server). Nothing here
//! formats a credential: errors carry the HTTP status, GCE's reason and message only.
//!
//! Idempotency, in two layers as for EC2:
//! - the instance name is deterministic ([`instance_name`]: the workload id plus a digest of the
//!   idempotency key), and GCE names are unique per zone. `create` first GETs that name and
//!   adopts what an earlier attempt made; an insert answered 409 (alreadyExists) is adopted too.
//! - `instances.insert` carries a `requestId`, a UUID derived from the idempotency key
//!   ([`request_id`]), so that real GCE answers a repeated insert with the first operation.
//!
//! Instance ids are `project/zone/name`. Labels carry what GCE can filter on (ours, and the
//! user's tags squeezed into label rules: lowercase, at most 63 characters); the exact tag
//! values, the idempotency key, the workload name and the stored workload description travel in
//! metadata items (`hybrid-tags`, `hybrid-idempotency-key`, `hybrid-name`, `hybrid-meta`), as the
//! aws driver keeps them in tags.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use google_cloud_compute_v1::client::{Instances, ZoneOperations};
use google_cloud_compute_v1::model;
use tokio::sync::Mutex;

use crate::retry::{Pacer, RetryPolicy, StopSignal};
use crate::{
    user_tags, Driver, DriverError, Instance, InstanceSpec, Metadata, MANAGED_BY_VALUE,
    TAG_MANAGED_BY, TAG_WORKLOAD_ID,
};

const TARGET: &str = "gcp";
/// Label marking an instance as ours (value [`MANAGED_BY_VALUE`]).
pub const LABEL_MANAGED_BY: &str = "hybrid-managed-by";
/// Label holding the workload id.
pub const LABEL_WORKLOAD_ID: &str = "hybrid-workload-id";
/// Label holding a digest of the idempotency key ([`key_digest`]; keys need not be label-safe).
pub const LABEL_KEY: &str = "hybrid-key";
/// Metadata item with the user's tags exactly as given (JSON object).
pub const META_TAGS: &str = "hybrid-tags";
/// Metadata item with the idempotency key.
pub const META_KEY: &str = "hybrid-idempotency-key";
/// Metadata item with the workload name.
pub const META_NAME: &str = "hybrid-name";
/// Metadata item with the stored workload description (JSON).
pub const META_DESCRIPTION: &str = "hybrid-meta";
/// Boot image when neither the workload nor the provider block names one.
pub const DEFAULT_IMAGE: &str = "projects/debian-cloud/global/images/family/debian-12";
/// Machine type when the placement names none (placements on gcp always do).
pub const DEFAULT_MACHINE_TYPE: &str = "e2-small";
/// Regions whose zones do not include `-a` (the fallback zone is `-b` there).
const REGIONS_WITHOUT_ZONE_A: [&str; 1] = ["europe-west1"];
/// GCE's limit on a label key or value, in characters.
const LABEL_MAX: usize = 63;

/// What the provider's `gcp {}` block and the environment configure.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GcpSettings {
    /// Project for every call (else `GOOGLE_CLOUD_PROJECT`).
    pub project: Option<String>,
    /// Compute endpoint override, e.g. `http://127.0.0.1:8080` (else the real one).
    pub endpoint_url: Option<String>,
    /// Boot image for workloads whose image is not a GCE image path (else [`DEFAULT_IMAGE`]).
    pub default_image: Option<String>,
    /// Network of the instance's interface (else `global/networks/default`).
    pub network: Option<String>,
    /// Subnetwork of the instance's interface (else the network's subnet in the region).
    pub subnetwork: Option<String>,
    /// Bound on one Compute Engine request (else [`DEFAULT_REQUEST_TIMEOUT`]); operation waits,
    /// which the server itself holds for up to two minutes, get at least [`OPERATION_WAIT_TIMEOUT`].
    pub request_timeout: Option<Duration>,
}

/// How long one Compute Engine request may take when the provider block does not say.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// The least a zoneOperations.wait call is given (the server answers it within two minutes).
pub const OPERATION_WAIT_TIMEOUT: Duration = Duration::from_secs(150);

struct Clients {
    instances: Instances,
    operations: ZoneOperations,
}

/// The Compute Engine driver; cheap to share, its clients made on first use.
pub struct GcpDriver {
    settings: GcpSettings,
    clients: Mutex<Option<Clients>>,
    stop: StopSignal,
    /// How waits for operations and for `RUNNING` poll.
    poll: RetryPolicy,
}

impl GcpDriver {
    pub fn new(settings: GcpSettings, stop: StopSignal) -> GcpDriver {
        // The client's HTTPS stack is rustls with aws-lc-rs, the workspace's one provider;
        // installing it as the process default keeps every rustls user on it.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        GcpDriver {
            settings,
            clients: Mutex::new(None),
            stop,
            poll: RetryPolicy {
                initial_delay: Duration::from_millis(200),
                max_delay: Duration::from_secs(5),
                multiplier: 1.5,
                timeout: Duration::from_secs(20 * 60),
            },
        }
    }

    /// The same driver with another poll policy (tests shorten the waits).
    pub fn with_poll(mut self, poll: RetryPolicy) -> GcpDriver {
        self.poll = poll;
        self
    }

    fn project(&self, operation: &'static str) -> Result<String, DriverError> {
        self.settings
            .project
            .clone()
            .filter(|p| !p.is_empty())
            .or_else(|| std::env::var("GOOGLE_CLOUD_PROJECT").ok().filter(|p| !p.is_empty()))
            .ok_or_else(|| DriverError::Rejected {
                target: TARGET.into(),
                operation,
                message: "no GCP project: set project in the provider's gcp block or GOOGLE_CLOUD_PROJECT".into(),
            })
    }

    async fn clients(
        &self,
        operation: &'static str,
    ) -> Result<(Instances, ZoneOperations), DriverError> {
        let mut guard = self.clients.lock().await;
        if let Some(c) = guard.as_ref() {
            return Ok((c.instances.clone(), c.operations.clone()));
        }
        // Application Default Credentials, built here so that a missing or broken chain is one
        // clear diagnostic (its text is ours: the builder's error could quote a file's content).
        let credentials = google_cloud_auth::credentials::Builder::default()
            .build()
            .map_err(|_| DriverError::Rejected {
                target: TARGET.into(),
                operation,
                message: "GCE: no usable credentials from Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud's application-default login, or the metadata server)".into(),
            })?;
        let build_err =
            |call: &str, e: google_cloud_gax::client_builder::Error| DriverError::Rejected {
                target: TARGET.into(),
                operation,
                message: format!("GCE {call} client could not be set up: {e}"),
            };
        // Retries are ours (retry::with_backoff at the resource layer, honouring the timeouts
        // block and StopProvider): the client makes one attempt per call.
        let request_timeout = self
            .settings
            .request_timeout
            .unwrap_or(DEFAULT_REQUEST_TIMEOUT);
        let mut ib = Instances::builder()
            .with_credentials(credentials.clone())
            .with_retry_policy(google_cloud_gax::retry_policy::NeverRetry)
            .with_attempt_timeout(request_timeout);
        let mut ob = ZoneOperations::builder()
            .with_credentials(credentials)
            .with_retry_policy(google_cloud_gax::retry_policy::NeverRetry)
            .with_attempt_timeout(request_timeout.max(OPERATION_WAIT_TIMEOUT));
        if let Some(url) = self
            .settings
            .endpoint_url
            .as_ref()
            .filter(|u| !u.is_empty())
        {
            ib = ib.with_endpoint(url.trim_end_matches('/'));
            ob = ob.with_endpoint(url.trim_end_matches('/'));
        }
        let instances = ib.build().await.map_err(|e| build_err("instances", e))?;
        let operations = ob
            .build()
            .await
            .map_err(|e| build_err("zoneOperations", e))?;
        *guard = Some(Clients {
            instances: instances.clone(),
            operations: operations.clone(),
        });
        Ok((instances, operations))
    }

    /// The instance, or `None` on 404.
    async fn get_raw(
        &self,
        project: &str,
        zone: &str,
        name: &str,
        operation: &'static str,
    ) -> Result<Option<model::Instance>, DriverError> {
        let (instances, _) = self.clients(operation).await?;
        match instances
            .get()
            .set_project(project)
            .set_zone(zone)
            .set_instance(name)
            .send()
            .await
        {
            Ok(i) => Ok(Some(i)),
            Err(e) if e.http_status_code() == Some(404) => Ok(None),
            Err(e) => Err(gax_error(operation, "instances.get", &e)),
        }
    }

    /// Waits until a zone operation is DONE; its error (if any) is final: a repeated request
    /// with the same requestId would only return the same failed operation.
    async fn wait_operation(
        &self,
        project: &str,
        zone: &str,
        op: model::Operation,
        call: &str,
        operation: &'static str,
    ) -> Result<(), DriverError> {
        let (_, operations) = self.clients(operation).await?;
        let mut pacer = Pacer::new(&self.poll, &self.stop, TARGET, operation).first_without_wait();
        let mut op = op;
        loop {
            if op.status.as_ref().and_then(|s| s.name()) == Some("DONE") {
                return operation_result(&op, call, operation);
            }
            let Some(op_name) = op.name.clone().filter(|n| !n.is_empty()) else {
                return Err(DriverError::Unavailable {
                    target: TARGET.into(),
                    operation,
                    message: format!("GCE {call}: the answer named no operation"),
                });
            };
            pacer.pause().await?;
            // zoneOperations.wait returns when the operation is done or after a while (long poll).
            let mut stop = self.stop.clone();
            let waited = tokio::select! {
                r = operations.wait().set_project(project).set_zone(zone).set_operation(&op_name).send() => r,
                _ = stop.stopped() => return Err(DriverError::Cancelled { target: TARGET.into(), operation }),
            };
            op = waited.map_err(|e| gax_error(operation, "zoneOperations.wait", &e))?;
        }
    }

    /// Starts (or resumes) an adopted instance that was stopped (or suspended) after the attempt
    /// that made it, waiting first for one still STOPPING or SUSPENDING to settle. A create
    /// promises a running instance, and a stopped one never runs by itself: without this the
    /// wait for RUNNING would fail. `instances.start` and `instances.resume` of an instance
    /// that already runs do nothing, so a retried create may repeat them.
    async fn wake_adopted(
        &self,
        project: &str,
        zone: &str,
        name: &str,
        mut status: String,
    ) -> Result<(), DriverError> {
        let mut pacer = Pacer::new(&self.poll, &self.stop, TARGET, "create");
        while matches!(status.as_str(), "STOPPING" | "SUSPENDING") {
            pacer.pause().await?;
            let Some(raw) = self.get_raw(project, zone, name, "create").await? else {
                return Err(DriverError::Rejected {
                    target: TARGET.into(),
                    operation: "create",
                    message: format!("GCE instances.get: instance {name} was deleted while it was {status}; apply again to create a new one"),
                });
            };
            status = instance_status(&raw);
        }
        let (instances, _) = self.clients("create").await?;
        let (call, sent) = match status.as_str() {
            "TERMINATED" => (
                "instances.start",
                instances
                    .start()
                    .set_project(project)
                    .set_zone(zone)
                    .set_instance(name)
                    .send()
                    .await,
            ),
            "SUSPENDED" => (
                "instances.resume",
                instances
                    .resume()
                    .set_project(project)
                    .set_zone(zone)
                    .set_instance(name)
                    .send()
                    .await,
            ),
            _ => return Ok(()),
        };
        let op = sent.map_err(|e| gax_error("create", call, &e))?;
        tracing::info!(instance = %name, zone = %zone, was = %status, "the adopted instance was stopped since it was made: {call}");
        self.wait_operation(project, zone, op, call, "create").await
    }

    /// Polls until the instance is RUNNING.
    async fn wait_running(
        &self,
        project: &str,
        zone: &str,
        name: &str,
        operation: &'static str,
    ) -> Result<Instance, DriverError> {
        let mut pacer = Pacer::new(&self.poll, &self.stop, TARGET, operation);
        loop {
            if let Some(raw) = self.get_raw(project, zone, name, operation).await? {
                let status = instance_status(&raw);
                if status == "RUNNING" {
                    return Ok(to_instance(project, zone, &raw));
                }
                if matches!(status.as_str(), "TERMINATED" | "STOPPING" | "SUSPENDED") {
                    return Err(DriverError::Rejected {
                        target: TARGET.into(),
                        operation,
                        message: format!("GCE instances.get: instance {name} went to {status} instead of RUNNING"),
                    });
                }
            }
            pacer.pause().await?;
        }
    }

    /// Every instance in the project whose labels match all of `labels` (aggregated over zones).
    async fn list_labelled(
        &self,
        operation: &'static str,
        labels: &[(&str, &str)],
    ) -> Result<Vec<Instance>, DriverError> {
        let project = self.project(operation)?;
        let (instances, _) = self.clients(operation).await?;
        let filter = label_filter(labels);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut req = instances
                .aggregated_list()
                .set_project(&project)
                .set_filter(&filter);
            if let Some(t) = &token {
                req = req.set_page_token(t);
            }
            let page = req
                .send()
                .await
                .map_err(|e| gax_error(operation, "instances.aggregatedList", &e))?;
            let mut scopes: Vec<_> = page.items.iter().collect();
            scopes.sort_by(|a, b| a.0.cmp(b.0));
            for (scope, list) in scopes {
                let zone = scope.strip_prefix("zones/").unwrap_or(scope);
                for raw in &list.instances {
                    let zone = raw.zone.as_deref().map(last_segment).unwrap_or(zone);
                    out.push(to_instance(&project, zone, raw));
                }
            }
            token = page.next_page_token.filter(|t| !t.is_empty());
            if token.is_none() {
                break;
            }
        }
        out.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
        Ok(out)
    }
}

/// `(project, zone, name)` of one of our instance ids; `None` for anything else (another
/// driver's id during import, for example).
pub fn split_id(instance_id: &str) -> Option<(String, String, String)> {
    let mut parts = instance_id.split('/');
    let (p, z, n) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || [p, z, n].iter().any(|s| s.is_empty()) {
        return None;
    }
    Some((p.to_string(), z.to_string(), n.to_string()))
}

/// The zone for a spec: the placement's, else the region's `-a` zone (`-b` where a region has
/// no `-a`, see [`REGIONS_WITHOUT_ZONE_A`]).
pub fn zone_for(spec: &InstanceSpec) -> String {
    if let Some(zone) = spec.zone.as_ref().filter(|z| !z.is_empty()) {
        return zone.clone();
    }
    if REGIONS_WITHOUT_ZONE_A.contains(&spec.region.as_str()) {
        format!("{}-b", spec.region)
    } else {
        format!("{}-a", spec.region)
    }
}

/// 32 hex digits of SHA-256 of the idempotency key (label-safe).
pub fn key_digest(idempotency_key: &str) -> String {
    crate::sha256_hex(idempotency_key, 16)
}

/// The instance name: `hybrid-<workload id>-<8 hex of the key digest>`, lowercase, at most 63
/// characters, starting with a letter. The key part keeps a replacement (same workload, new
/// placement in the same zone) from colliding with the instance it replaces.
pub fn instance_name(spec: &InstanceSpec) -> String {
    let wl: String = spec
        .workload_id
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let wl = wl.trim_matches('-');
    let wl: String = wl.chars().take(LABEL_MAX - "hybrid--".len() - 8).collect();
    let wl = wl.trim_end_matches('-');
    format!("hybrid-{wl}-{}", &key_digest(&spec.idempotency_key)[..8])
}

/// The `requestId` for an insert: a UUID (GCE requires that form) made from SHA-256 of the
/// key, with RFC 9562's version 8 (custom) and variant bits set.
pub fn request_id(idempotency_key: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("hybrid-request:{idempotency_key}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// A label key under GCE's rules: lowercase letters, digits, `_` and `-`, starting with a
/// letter, at most 63 characters.
pub fn label_key(key: &str) -> String {
    let mut k = label_value(key);
    if !k.starts_with(|c: char| c.is_ascii_lowercase()) {
        k = format!("t_{k}");
    }
    k.chars().take(LABEL_MAX).collect()
}

/// A label value under GCE's rules (may be empty).
pub fn label_value(value: &str) -> String {
    value
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(LABEL_MAX)
        .collect()
}

/// The labels an instance carries: the user's (squeezed into label rules; a user label cannot
/// take one of ours) and ours.
pub fn instance_labels(
    tags: &BTreeMap<String, String>,
    workload_id: &str,
    key_digest: &str,
) -> HashMap<String, String> {
    let mut labels: HashMap<String, String> = user_tags(tags)
        .iter()
        .map(|(k, v)| (label_key(k), label_value(v)))
        .filter(|(k, _)| !k.starts_with("hybrid-"))
        .collect();
    labels.insert(LABEL_MANAGED_BY.into(), MANAGED_BY_VALUE.into());
    labels.insert(LABEL_WORKLOAD_ID.into(), label_value(workload_id));
    labels.insert(LABEL_KEY.into(), key_digest.to_string());
    labels
}

/// The metadata items we own, for these tags and description.
fn our_metadata(
    tags: &BTreeMap<String, String>,
    key: &str,
    name: &str,
    description: Option<&Metadata>,
) -> BTreeMap<String, String> {
    let mut items = BTreeMap::new();
    let exact = serde_json::Value::Object(
        user_tags(tags)
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect(),
    );
    items.insert(META_TAGS.to_string(), exact.to_string());
    items.insert(META_KEY.to_string(), key.to_string());
    items.insert(META_NAME.to_string(), name.to_string());
    if let Some(d) = description {
        items.insert(META_DESCRIPTION.to_string(), d.as_str().to_string());
    }
    items
}

fn metadata_items(raw: &model::Instance) -> BTreeMap<String, String> {
    raw.metadata
        .as_ref()
        .map(|m| {
            m.items
                .iter()
                .filter_map(|i| Some((i.key.clone()?, i.value.clone().unwrap_or_default())))
                .collect()
        })
        .unwrap_or_default()
}

fn last_segment(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn instance_status(raw: &model::Instance) -> String {
    raw.status
        .as_ref()
        .and_then(|s| s.name())
        .unwrap_or_default()
        .to_string()
}

/// The user's tags as the instance shows them now: exact values from metadata where the label
/// still says the same, the label itself where someone changed or added one outside Terraform
/// (so drift shows), nothing where the label was removed.
pub fn reconcile_tags(
    exact: &BTreeMap<String, String>,
    labels: &HashMap<String, String>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut explained = std::collections::HashSet::new();
    for (k, v) in exact {
        let lk = label_key(k);
        if labels.get(&lk) == Some(&label_value(v)) {
            out.insert(k.clone(), v.clone());
            explained.insert(lk);
        }
    }
    for (k, v) in labels {
        if !k.starts_with("hybrid-") && !explained.contains(k) {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

/// Our [`Instance`] from GCE's.
fn to_instance(project: &str, zone: &str, raw: &model::Instance) -> Instance {
    let name = raw.name.clone().unwrap_or_default();
    let meta = metadata_items(raw);
    let exact: BTreeMap<String, String> = meta
        .get(META_TAGS)
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default();
    let mut tags = reconcile_tags(&exact, &raw.labels);
    if let Some(v) = raw.labels.get(LABEL_MANAGED_BY) {
        tags.insert(TAG_MANAGED_BY.into(), v.clone());
    }
    if let Some(v) = raw.labels.get(LABEL_WORKLOAD_ID) {
        tags.insert(TAG_WORKLOAD_ID.into(), v.clone());
    }
    let zone = raw
        .zone
        .as_deref()
        .map(last_segment)
        .unwrap_or(zone)
        .to_string();
    let region = zone
        .rsplit_once('-')
        .map(|(r, _)| r.to_string())
        .unwrap_or_else(|| zone.clone());
    let image = raw
        .disks
        .iter()
        .find(|d| d.boot == Some(true))
        .and_then(|d| d.initialize_params.as_ref())
        .and_then(|p| p.source_image.clone());
    Instance {
        instance_id: format!("{project}/{zone}/{name}"),
        workload_id: raw
            .labels
            .get(LABEL_WORKLOAD_ID)
            .cloned()
            .unwrap_or_default(),
        idempotency_key: meta.get(META_KEY).cloned().unwrap_or_default(),
        name: meta.get(META_NAME).cloned().unwrap_or_else(|| name.clone()),
        provider: TARGET.into(),
        region,
        zone: Some(zone),
        instance_type: raw
            .machine_type
            .as_deref()
            .map(|m| last_segment(m).to_string()),
        node: None,
        image,
        private_ip: raw
            .network_interfaces
            .first()
            .and_then(|n| n.network_ip.clone())
            .unwrap_or_default(),
        status: instance_status(raw).to_ascii_lowercase(),
        tags,
        metadata: meta
            .get(META_DESCRIPTION)
            .and_then(|d| Metadata::from_text(d.as_str()).ok()),
    }
}

/// A `filter` for instances.list / aggregatedList: every label must match.
pub fn label_filter(labels: &[(&str, &str)]) -> String {
    labels
        .iter()
        .map(|(k, v)| {
            format!(
                "(labels.{k} = \"{}\")",
                v.replace('\\', "\\\\").replace('"', "\\\"")
            )
        })
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// A finished operation's outcome. Errors of a DONE operation are final (see
/// [`GcpDriver::wait_operation`]) unless GCE says it was rate limiting.
fn operation_result(
    op: &model::Operation,
    call: &str,
    operation: &'static str,
) -> Result<(), DriverError> {
    let Some(error) = op.error.as_ref().filter(|e| !e.errors.is_empty()) else {
        return Ok(());
    };
    let codes: Vec<String> = error.errors.iter().filter_map(|e| e.code.clone()).collect();
    let messages: Vec<String> = error
        .errors
        .iter()
        .filter_map(|e| e.message.clone())
        .collect();
    let text = format!(
        "GCE {call} (operation {}): {}: {}",
        op.name.clone().unwrap_or_default(),
        codes.join(", "),
        messages.join("; ")
    );
    if codes
        .iter()
        .any(|c| c.contains("RATE_EXCEEDED") || c.contains("RATE_LIMIT"))
    {
        return Err(DriverError::Throttled {
            target: TARGET.into(),
            operation,
            message: text,
        });
    }
    Err(DriverError::Rejected {
        target: TARGET.into(),
        operation,
        message: text,
    })
}

/// Maps one failed GCE answer (HTTP status, GCE's `errors[].reason` and message) to a
/// [`DriverError`]: 429 and rate-limit reasons are throttling, 5xx and 412 (a fingerprint that
/// changed under us: the retry reads it again) are retryable, other 4xx are final. `call` names
/// the API method. 404 is handled by the callers (absent, not an error).
pub fn classify(
    operation: &'static str,
    call: &str,
    http_status: Option<u16>,
    reason: Option<&str>,
    message: Option<&str>,
) -> DriverError {
    let status = http_status.unwrap_or(0);
    let text = match (message.filter(|m| !m.is_empty()), reason) {
        (Some(m), Some(r)) => format!("GCE {call}: {m} (HTTP {status}, {r})"),
        (Some(m), None) => format!("GCE {call}: {m} (HTTP {status})"),
        (None, Some(r)) => format!("GCE {call}: {r} (HTTP {status})"),
        (None, None) => format!("GCE {call}: HTTP {status}"),
    };
    let rate_reason = reason.is_some_and(|r| {
        matches!(
            r,
            "rateLimitExceeded" | "userRateLimitExceeded" | "RATE_LIMIT_EXCEEDED"
        ) || r.to_ascii_lowercase().contains("ratelimit")
    });
    if status == 429 || rate_reason {
        return DriverError::Throttled {
            target: TARGET.into(),
            operation,
            message: text,
        };
    }
    if status >= 500 || status == 412 {
        return DriverError::Unavailable {
            target: TARGET.into(),
            operation,
            message: text,
        };
    }
    if status == 404 {
        return DriverError::NotFound {
            target: TARGET.into(),
            operation,
            instance_id: text,
        };
    }
    DriverError::Rejected {
        target: TARGET.into(),
        operation,
        message: text,
    }
}

/// GCE's error reason and message from a response body
/// (`{"error": {"message": ..., "errors": [{"reason": ...}]}}`).
fn error_details(payload: Option<&[u8]>) -> (Option<String>, Option<String>) {
    let Some(body) = payload.and_then(|p| serde_json::from_slice::<serde_json::Value>(p).ok())
    else {
        return (None, None);
    };
    let error = &body["error"];
    let reason = error["errors"][0]["reason"]
        .as_str()
        .or_else(|| error["status"].as_str())
        .map(str::to_string);
    let message = error["message"].as_str().map(str::to_string);
    (reason, message)
}

fn gax_error(
    operation: &'static str,
    call: &str,
    err: &google_cloud_gax::error::Error,
) -> DriverError {
    if let Some(status) = err.http_status_code() {
        let (reason, message) = error_details(err.http_payload().map(|b| b.as_ref()));
        // A parsed service error keeps GCE's errors[].reason as ErrorInfo details.
        let reason = reason.or_else(|| {
            err.status()?.details.iter().find_map(|d| match d {
                google_cloud_gax::error::rpc::StatusDetails::ErrorInfo(info)
                    if !info.reason.is_empty() =>
                {
                    Some(info.reason.clone())
                }
                _ => None,
            })
        });
        let message = message.or_else(|| err.status().map(|s| s.message.clone()));
        return classify(
            operation,
            call,
            Some(status),
            reason.as_deref(),
            message.as_deref(),
        );
    }
    if err.is_authentication() {
        return DriverError::Rejected {
            target: TARGET.into(),
            operation,
            message: format!("GCE {call}: the credentials from Application Default Credentials could not produce a token"),
        };
    }
    if err.is_timeout()
        || err.is_io()
        || err.is_connect()
        || err.is_transport()
        || err.is_deserialization()
    {
        return DriverError::Unavailable {
            target: TARGET.into(),
            operation,
            message: format!(
                "GCE {call}: no usable response ({})",
                if err.is_timeout() {
                    "timed out"
                } else if err.is_deserialization() {
                    // About the response's shape only: it holds no request data.
                    return DriverError::Unavailable {
                        target: TARGET.into(),
                        operation,
                        message: format!(
                            "GCE {call}: the answer could not be read: {}",
                            innermost(err)
                        ),
                    };
                } else {
                    "connection failed or was closed"
                }
            ),
        };
    }
    DriverError::Rejected {
        target: TARGET.into(),
        operation,
        message: format!("GCE {call}: the request could not be made: {err}"),
    }
}

/// The innermost error's text.
fn innermost(err: &dyn std::error::Error) -> String {
    let mut inner: &dyn std::error::Error = err;
    while let Some(next) = inner.source() {
        inner = next;
    }
    inner.to_string()
}

#[async_trait]
impl Driver for GcpDriver {
    fn name(&self) -> &'static str {
        TARGET
    }

    async fn create(&self, spec: &InstanceSpec) -> Result<Instance, DriverError> {
        let project = self.project("create")?;
        let zone = zone_for(spec);
        let name = instance_name(spec);
        let digest = key_digest(&spec.idempotency_key);
        // 1. Adopt what an earlier attempt made (lost response, interrupted apply).
        if let Some(found) = self.get_raw(&project, &zone, &name, "create").await? {
            if found.labels.get(LABEL_KEY) != Some(&digest) {
                return Err(DriverError::Rejected {
                    target: TARGET.into(),
                    operation: "create",
                    message: format!("GCE instances.get: an instance named {name} already exists in {project}/{zone} and was not made by this provider for this workload"),
                });
            }
            tracing::info!(instance = %name, zone = %zone, "adopting the instance an earlier attempt created");
            self.wake_adopted(&project, &zone, &name, instance_status(&found))
                .await?;
            return self.wait_running(&project, &zone, &name, "create").await;
        }
        // 2. Make it.
        let (instances, _) = self.clients("create").await?;
        let image = match spec.image.as_deref() {
            Some(i) if is_image_path(i) => i.to_string(),
            _ => self
                .settings
                .default_image
                .clone()
                .filter(|i| !i.is_empty())
                .unwrap_or_else(|| DEFAULT_IMAGE.to_string()),
        };
        let machine_type = spec
            .instance_type
            .clone()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| DEFAULT_MACHINE_TYPE.to_string());
        let items: Vec<model::metadata::Items> = our_metadata(
            &spec.tags,
            &spec.idempotency_key,
            &spec.name,
            spec.metadata.as_ref(),
        )
        .into_iter()
        .map(|(k, v)| model::metadata::Items::new().set_key(k).set_value(v))
        .collect();
        let mut nic = model::NetworkInterface::new().set_network(
            self.settings
                .network
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "global/networks/default".to_string()),
        );
        if let Some(sub) = self.settings.subnetwork.as_ref().filter(|s| !s.is_empty()) {
            nic = nic.set_subnetwork(sub.clone());
        }
        let body = model::Instance::new()
            .set_name(name.clone())
            .set_description(format!(
                "hybrid_workload {} ({})",
                spec.name, spec.workload_id
            ))
            .set_machine_type(format!("zones/{zone}/machineTypes/{machine_type}"))
            .set_labels(instance_labels(&spec.tags, &spec.workload_id, &digest))
            .set_metadata(model::Metadata::new().set_items(items))
            .set_disks([model::AttachedDisk::new()
                .set_boot(true)
                .set_auto_delete(true)
                .set_initialize_params(
                    model::AttachedDiskInitializeParams::new().set_source_image(image),
                )])
            .set_network_interfaces([nic]);
        // A requestId is remembered by GCE for a while: after the instance it made was deleted
        // out of band, the same id answers with that old, DONE operation and makes nothing. A
        // DONE insert whose instance is absent therefore gets one more insert, with an id
        // derived from the stale operation's name (still deterministic for retries).
        let mut rid = request_id(&spec.idempotency_key);
        for round in 0..2 {
            let sent = instances
                .insert()
                .set_project(&project)
                .set_zone(&zone)
                .set_request_id(rid.clone())
                .set_body(body.clone())
                .send()
                .await;
            match sent {
                Ok(op) => {
                    let op_name = op.name.clone().unwrap_or_default();
                    tracing::info!(instance = %name, zone = %zone, "GCE instance insert accepted");
                    self.wait_operation(&project, &zone, op, "instances.insert", "create")
                        .await?;
                    if self
                        .get_raw(&project, &zone, &name, "create")
                        .await?
                        .is_some()
                    {
                        break;
                    }
                    if round == 0 {
                        tracing::info!(instance = %name, operation = %op_name, "the requestId named an earlier insert whose instance is gone; inserting again");
                        rid = request_id(&format!("{}#{op_name}", spec.idempotency_key));
                        continue;
                    }
                    return Err(DriverError::Unavailable {
                        target: TARGET.into(),
                        operation: "create",
                        message: format!("GCE instances.insert: operation {op_name} finished but instance {name} does not exist"),
                    });
                }
                // Made by an attempt whose answer was lost: adopt it below.
                Err(e) if e.http_status_code() == Some(409) => {
                    tracing::info!(instance = %name, "instance already exists; adopting it");
                    break;
                }
                Err(e) => return Err(gax_error("create", "instances.insert", &e)),
            }
        }
        // 3. Wait until it runs.
        self.wait_running(&project, &zone, &name, "create").await
    }

    async fn read(&self, instance_id: &str) -> Result<Option<Instance>, DriverError> {
        let Some((project, zone, name)) = split_id(instance_id) else {
            return Ok(None);
        };
        Ok(self
            .get_raw(&project, &zone, &name, "read")
            .await?
            .map(|raw| to_instance(&project, &zone, &raw)))
    }

    async fn find_by_workload(&self, workload_id: &str) -> Result<Option<Instance>, DriverError> {
        let wl = label_value(workload_id);
        let found = self
            .list_labelled(
                "read",
                &[
                    (LABEL_MANAGED_BY, MANAGED_BY_VALUE),
                    (LABEL_WORKLOAD_ID, &wl),
                ],
            )
            .await?;
        Ok(found.into_iter().find(|i| i.workload_id == wl))
    }

    async fn update_tags(
        &self,
        instance_id: &str,
        tags: &BTreeMap<String, String>,
        metadata: Option<&Metadata>,
    ) -> Result<Instance, DriverError> {
        let not_found = || DriverError::NotFound {
            target: TARGET.into(),
            operation: "update",
            instance_id: instance_id.to_string(),
        };
        let (project, zone, name) = split_id(instance_id).ok_or_else(not_found)?;
        let raw = self
            .get_raw(&project, &zone, &name, "update")
            .await?
            .ok_or_else(not_found)?;
        let (instances, _) = self.clients("update").await?;
        let workload_id = raw
            .labels
            .get(LABEL_WORKLOAD_ID)
            .cloned()
            .unwrap_or_default();
        let digest = raw.labels.get(LABEL_KEY).cloned().unwrap_or_default();
        let mut labels = instance_labels(tags, &workload_id, &digest);
        if digest.is_empty() {
            labels.remove(LABEL_KEY);
        }
        if labels != raw.labels {
            let op = instances
                .set_labels()
                .set_project(&project)
                .set_zone(&zone)
                .set_instance(&name)
                .set_body(
                    model::InstancesSetLabelsRequest::new()
                        .set_labels(labels)
                        .set_or_clear_label_fingerprint(raw.label_fingerprint.clone()),
                )
                .send()
                .await
                .map_err(|e| gax_error("update", "instances.setLabels", &e))?;
            self.wait_operation(&project, &zone, op, "instances.setLabels", "update")
                .await?;
        }
        // Metadata: ours replaced, anything else (ssh keys, startup scripts) kept.
        let current = metadata_items(&raw);
        let key = current.get(META_KEY).cloned().unwrap_or_default();
        let workload_name = current
            .get(META_NAME)
            .cloned()
            .unwrap_or_else(|| name.clone());
        let mut desired: BTreeMap<String, String> = current
            .iter()
            .filter(|(k, _)| !k.starts_with("hybrid-"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        desired.extend(our_metadata(tags, &key, &workload_name, metadata));
        if desired != current {
            let fingerprint = raw.metadata.as_ref().and_then(|m| m.fingerprint.clone());
            let op =
                instances
                    .set_metadata()
                    .set_project(&project)
                    .set_zone(&zone)
                    .set_instance(&name)
                    .set_body(
                        model::Metadata::new()
                            .set_or_clear_fingerprint(fingerprint)
                            .set_items(desired.into_iter().map(|(k, v)| {
                                model::metadata::Items::new().set_key(k).set_value(v)
                            })),
                    )
                    .send()
                    .await
                    .map_err(|e| gax_error("update", "instances.setMetadata", &e))?;
            self.wait_operation(&project, &zone, op, "instances.setMetadata", "update")
                .await?;
        }
        self.read(instance_id).await?.ok_or_else(not_found)
    }

    async fn delete(&self, instance_id: &str) -> Result<(), DriverError> {
        let Some((project, zone, name)) = split_id(instance_id) else {
            return Ok(());
        };
        let (instances, _) = self.clients("delete").await?;
        match instances
            .delete()
            .set_project(&project)
            .set_zone(&zone)
            .set_instance(&name)
            .send()
            .await
        {
            Ok(op) => {
                self.wait_operation(&project, &zone, op, "instances.delete", "delete")
                    .await?
            }
            Err(e) if e.http_status_code() == Some(404) => return Ok(()),
            Err(e) => return Err(gax_error("delete", "instances.delete", &e)),
        }
        // The operation is done when the instance is gone; confirm (a bounded poll).
        let mut pacer = Pacer::new(&self.poll, &self.stop, TARGET, "delete");
        while self
            .get_raw(&project, &zone, &name, "delete")
            .await?
            .is_some()
        {
            pacer.pause().await?;
        }
        tracing::info!(instance = %instance_id, "GCE instance deleted");
        Ok(())
    }

    async fn list_managed(&self) -> Result<Vec<Instance>, DriverError> {
        self.list_labelled("list", &[(LABEL_MANAGED_BY, MANAGED_BY_VALUE)])
            .await
    }
}

/// A GCE image reference (`projects/...`, `global/...` or a URL), as opposed to, say, a
/// container image name meant for another target.
fn is_image_path(image: &str) -> bool {
    image.starts_with("projects/") || image.starts_with("global/") || image.starts_with("https://")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> InstanceSpec {
        InstanceSpec {
            idempotency_key: "0123456789abcdef0123456789abcdef".into(),
            workload_id: "wl-00112233aabbccdd".into(),
            name: "api".into(),
            provider: "gcp".into(),
            region: "europe-west1".into(),
            zone: None,
            instance_type: Some("e2-standard-2".into()),
            node: None,
            image: None,
            tags: BTreeMap::from([("Team".to_string(), "Payments EU".to_string())]),
            metadata: None,
        }
    }

    #[test]
    fn error_mapping_table() {
        let cases: &[(u16, Option<&str>, &str)] = &[
            (429, None, "throttled"),
            (403, Some("rateLimitExceeded"), "throttled"),
            (403, Some("userRateLimitExceeded"), "throttled"),
            (503, Some("backendError"), "unavailable"),
            (500, None, "unavailable"),
            (412, Some("conditionNotMet"), "unavailable"),
            (400, Some("invalid"), "rejected"),
            (403, Some("forbidden"), "rejected"),
            (409, Some("alreadyExists"), "rejected"),
            (404, Some("notFound"), "notfound"),
        ];
        for (status, reason, want) in cases {
            let err = classify(
                "create",
                "instances.insert",
                Some(*status),
                *reason,
                Some("why"),
            );
            let got = match err {
                DriverError::Throttled { .. } => "throttled",
                DriverError::Unavailable { .. } => "unavailable",
                DriverError::Rejected { .. } => "rejected",
                DriverError::NotFound { .. } => "notfound",
                _ => "other",
            };
            assert_eq!(got, *want, "{status} {reason:?}");
            let text = err.to_string();
            assert!(text.contains("instances.insert"), "{text}");
            assert!(!text.to_ascii_lowercase().contains("panic"));
        }
    }

    #[test]
    fn error_details_read_gce_error_bodies() {
        let body = br#"{"error":{"code":403,"message":"Rate Limit Exceeded","errors":[{"message":"Rate Limit Exceeded","domain":"usageLimits","reason":"rateLimitExceeded"}]}}"#;
        let (reason, message) = error_details(Some(body));
        assert_eq!(reason.as_deref(), Some("rateLimitExceeded"));
        assert_eq!(message.as_deref(), Some("Rate Limit Exceeded"));
        assert_eq!(error_details(Some(b"<html>")), (None, None));
    }

    #[test]
    fn request_ids_are_stable_uuids() {
        let a = request_id("key-1");
        assert_eq!(a, request_id("key-1"));
        assert_ne!(a, request_id("key-2"));
        let parsed = uuid::Uuid::parse_str(&a).expect("a UUID");
        assert_eq!(parsed.get_version_num(), 8);
        assert_eq!(a.len(), 36);
    }

    #[test]
    fn names_are_deterministic_and_follow_gce_rules() {
        let s = spec();
        let name = instance_name(&s);
        assert_eq!(name, instance_name(&s));
        assert!(name.starts_with("hybrid-wl-00112233aabbccdd-"), "{name}");
        let mut other = s.clone();
        other.idempotency_key = "another placement".into();
        assert_ne!(instance_name(&other), name);
        let mut odd = s.clone();
        odd.workload_id = "WL_ÄÖ/".repeat(30);
        for n in [name, instance_name(&odd)] {
            assert!(n.len() <= 63, "{n}");
            assert!(n.starts_with(|c: char| c.is_ascii_lowercase()));
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{n}"
            );
            assert!(!n.ends_with('-'));
        }
    }

    #[test]
    fn zones_default_to_a_zone_of_the_region() {
        let mut s = spec();
        assert_eq!(zone_for(&s), "europe-west1-b");
        s.region = "us-central1".into();
        assert_eq!(zone_for(&s), "us-central1-a");
        s.zone = Some("us-central1-f".into());
        assert_eq!(zone_for(&s), "us-central1-f");
    }

    #[test]
    fn labels_follow_gce_rules_and_ours_cannot_be_spoofed() {
        let mut tags = BTreeMap::from([
            ("Team".to_string(), "Payments EU".to_string()),
            ("9lives".to_string(), "x".repeat(100)),
            ("hybrid:workload-id".to_string(), "spoof".to_string()),
            ("hybrid-managed-by".to_string(), "spoof".to_string()),
        ]);
        tags.insert("cost.center".into(), "ÄB".into());
        let labels = instance_labels(&tags, "wl-1", "abc");
        assert_eq!(labels["team"], "payments_eu");
        assert_eq!(labels["t_9lives"].len(), 63);
        assert_eq!(labels["cost_center"], "_b");
        assert_eq!(labels[LABEL_MANAGED_BY], MANAGED_BY_VALUE);
        assert_eq!(labels[LABEL_WORKLOAD_ID], "wl-1");
        assert_eq!(labels[LABEL_KEY], "abc");
        for (k, v) in &labels {
            assert!(k.len() <= 63 && v.len() <= 63);
            assert!(k.starts_with(|c: char| c.is_ascii_lowercase()));
        }
    }

    #[test]
    fn tags_round_trip_exactly_and_label_drift_shows() {
        let exact = BTreeMap::from([
            ("Team".to_string(), "Payments EU".to_string()),
            ("env".to_string(), "prod".to_string()),
        ]);
        let mut labels = instance_labels(&exact, "wl-1", "abc");
        assert_eq!(reconcile_tags(&exact, &labels), exact);
        labels.insert("env".into(), "staging".into());
        labels.insert("added".into(), "outside".into());
        labels.remove("team");
        let seen = reconcile_tags(&exact, &labels);
        assert_eq!(
            seen,
            BTreeMap::from([
                ("env".to_string(), "staging".to_string()),
                ("added".to_string(), "outside".to_string()),
            ])
        );
    }

    #[test]
    fn ids_split_only_in_our_form() {
        assert_eq!(
            split_id("p/us-central1-a/n"),
            Some(("p".into(), "us-central1-a".into(), "n".into()))
        );
        for other in ["us-east-1/i-123", "i-123", "a/b/c/d", "p//n", ""] {
            assert_eq!(split_id(other), None, "{other}");
        }
    }

    #[test]
    fn filters_quote_values() {
        assert_eq!(
            label_filter(&[("a", "x"), ("b", "y\"z")]),
            "(labels.a = \"x\") AND (labels.b = \"y\\\"z\")"
        );
    }
}
