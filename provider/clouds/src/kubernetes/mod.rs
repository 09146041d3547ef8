//! The Kubernetes driver for edge sites (cargo feature `kubernetes`).
//!
//! Why it exists: an edge site is usually a small Kubernetes cluster, not a cloud account, so an
//! edge workload becomes a `apps/v1` Deployment there instead of a VM. This driver maps the
//! [`Driver`] contract onto the Kubernetes API with the `kube` client:
//!
//! - **Naming.** One Deployment per workload, named [`deployment_name`]`(workload_id)`
//!   (`hybrid-<workload_id>`, made DNS-1123 safe; a hash suffix is added when the id had to be
//!   changed or shortened, so two ids never collapse onto one name). The instance id is
//!   `<namespace>/<name>`.
//! - **Idempotent create.** `create` is a server-side apply (`PATCH` with
//!   `application/apply-patch+yaml`, fieldManager [`FIELD_MANAGER`]) of the whole Deployment, so
//!   a retried create (lost response, interrupted apply) lands on the same object and returns it.
//!   Apply is not forced: if another field manager (an HPA, a `kubectl scale`) owns a field we
//!   set, the API answers 409 and the create is `Rejected` with the server's message. A create
//!   with a new idempotency key for a workload whose Deployment already exists re-applies (adopts)
//!   that Deployment: the name, not the key, is what makes it unique.
//! - **Labels and annotations.** Label values are restricted (63 characters, `[A-Za-z0-9._-]`),
//!   so the labels [`LABEL_MANAGED_BY`], [`LABEL_WORKLOAD_ID`], [`LABEL_IDEMPOTENCY_KEY`] carry
//!   [`label_value`]s (the value itself when valid, else a hash) for selection, and the exact
//!   values live in annotations. User tags are stored as one JSON annotation
//!   ([`ANNOTATION_TAGS`]) because tag keys such as `hybrid:managed-by` are not valid annotation
//!   keys; the spec's metadata likewise ([`ANNOTATION_METADATA`]).
//! - **Sizing and placement.** Replicas, CPU/memory requests (limits equal to them), the image
//!   and the Node names come from [`KubeWorkload`], read from the [`METADATA_SECTION`] of the
//!   spec's metadata. One Node becomes the nodeSelector `kubernetes.io/hostname=<node>`, several
//!   a required node affinity over their names (the scheduler decides how many pods land on
//!   each). Without an image the container runs [`DEFAULT_IMAGE`] (the pause image: it holds
//!   the placement and does nothing).
//! - **Autoscaling.** An enabled `scaling_policy` becomes an `autoscaling/v2`
//!   HorizontalPodAutoscaler of the same name ([`hpa_manifest`]), applied after the Deployment
//!   and deleted before it; the Deployment then leaves `replicas` to the autoscaler.
//! - **Drift and update.** `read` reports what runs (replicas unless autoscaled, requests,
//!   image) under [`METADATA_OBSERVED`]; `update_tags` applies the whole Deployment and
//!   autoscaler again from the new metadata, forced, so a reviewed plan puts back what was
//!   changed outside Terraform (a first create is never forced).
//! - **Nodes.** [`KubernetesDriver::label_node`] puts [`node_metadata`] (all keys under
//!   `hybrid.io/`) on an existing Node by a metadata-only apply; `unlabel_node` applies nothing,
//!   which gives back every key this field manager set.
//! - **Sites.** [`KubernetesSites`] routes between the edge sites (instance ids
//!   `<cluster_id>:<namespace>/<name>`); see its module.
//! - **Status.** `running` when `readyReplicas >= replicas`, `stopped` at zero replicas,
//!   `terminating` once a deletion timestamp is set, `pending` otherwise. `private_ip` is always
//!   empty: a Deployment has no single address (a Service would), and we do not invent one.
//! - **Errors.** 404 → `NotFound` (`read` → `Ok(None)`, `delete` → success), 409 and other 4xx →
//!   `Rejected`, 429 → `Throttled`, 5xx and transport failures → `Unavailable`; the last two are
//!   retryable through [`crate::retry::with_backoff`]. The server's `Retry-After` is not read
//!   (kube does not expose response headers on errors); the backoff policy decides the delay.
//! - `find_by_workload` and `list_managed` look only in the driver's configured namespace;
//!   `read`, `update_tags` and `delete` use the namespace in the instance id and do not check
//!   that the Deployment carries our labels.
//!
//! **Not run against a real cluster.** Everything here is tested against the fake API server
//! (`provider/kubefake`, from `tests/kubernetes.rs` and the acceptance tests) that checks the
//! requests and answers like the API server. Not yet exercised: a real kube-apiserver's
//! server-side-apply merge (list merge keys, defaulting) and conflict behaviour, an HPA
//! controller actually scaling, TLS
//! (rustls with aws-lc-rs, cluster CA from a kubeconfig), bearer-token auth against a real server,
//! [`KubernetesDriver::from_kubeconfig`] with exec/OIDC credential plugins, foreground deletion
//! that takes time to finish (we report success as soon as the DELETE is accepted), and
//! scheduling with the nodeSelector.

use std::collections::BTreeMap;
use std::path::Path;

use async_trait::async_trait;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Node;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Client, Config};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::edge::{EdgeNode, KubeSite};
use crate::{
    managed_tags, Driver, DriverError, Instance, InstanceSpec, Metadata, MANAGED_BY_VALUE,
};

mod sites;
pub use sites::{KubernetesSites, ENV_KUBE_TOKEN};

const TARGET: &str = "kubernetes";

/// The server-side-apply field manager, and the value of [`LABEL_MANAGED_BY`].
pub const FIELD_MANAGER: &str = MANAGED_BY_VALUE;
/// Label marking a Deployment as ours; its value is [`MANAGED_BY_VALUE`].
pub const LABEL_MANAGED_BY: &str = "hybrid.io/managed-by";
/// Label holding [`label_value`] of the workload id (exact id in the annotation of the same key).
pub const LABEL_WORKLOAD_ID: &str = "hybrid.io/workload-id";
/// Label holding [`label_value`] of the idempotency key (exact key in the annotation).
pub const LABEL_IDEMPOTENCY_KEY: &str = "hybrid.io/idempotency-key";
/// Annotation with the user tags as a JSON object.
pub const ANNOTATION_TAGS: &str = "hybrid.io/tags";
/// Annotation with the spec's metadata as JSON.
pub const ANNOTATION_METADATA: &str = "hybrid.io/metadata";
/// Annotation with the placement fields a Deployment has no place for (name, provider, region,
/// zone, instance type) as JSON, so `read` can rebuild the [`Instance`].
pub const ANNOTATION_PLACEMENT: &str = "hybrid.io/placement";
/// The container image when the spec names none: it only holds the placement.
pub const DEFAULT_IMAGE: &str = "registry.k8s.io/pause:3.10";
/// The one container's name in the pod template.
pub const CONTAINER_NAME: &str = "workload";
/// The well-known Node label holding the Node's name, used to pin pods to chosen Nodes.
pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

/// Where the driver talks to: an API server URL, an optional bearer token, and the namespace
/// Deployments go to. TLS verification is always on (no accept-invalid-certs switch).
#[derive(Clone, PartialEq, Eq)]
pub struct KubeTarget {
    /// e.g. `https://10.0.0.1:6443` (`http://` is accepted, for tests and local proxies).
    pub server_url: String,
    pub token: Option<String>,
    pub namespace: String,
}

impl std::fmt::Debug for KubeTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeTarget")
            .field("server_url", &self.server_url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("namespace", &self.namespace)
            .finish()
    }
}

/// The key of the section of [`InstanceSpec::metadata`] this driver reads (written by the
/// resource layer): `{"replicas", "cpu", "memory_gb", "image", "nodes", "scaling_policy"}`.
/// Without it the same fields are read from the top level of the metadata.
pub const METADATA_SECTION: &str = "kubernetes";
/// The key [`instance_from_deployment`] adds to the instance's metadata with what the cluster
/// actually runs (`replicas`, `cpu`, `memory_gb`, `image`), for drift detection.
pub const METADATA_OBSERVED: &str = "observed";

/// How a workload's Deployment is sized and where it may run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubeWorkload {
    pub replicas: i32,
    /// CPU request (and limit) in millicores.
    pub cpu_millis: Option<u32>,
    /// Memory request (and limit) in MiB.
    pub memory_mb: Option<u32>,
    /// The image, when the spec does not name one.
    pub image: Option<String>,
    /// Kubernetes Node names the pods may run on (empty: the spec's node, else anywhere).
    pub nodes: Vec<String>,
    /// A HorizontalPodAutoscaler owns the replica count when set.
    pub autoscaling: Option<Autoscaling>,
}

impl Default for KubeWorkload {
    fn default() -> Self {
        KubeWorkload {
            replicas: 1,
            cpu_millis: None,
            memory_mb: None,
            image: None,
            nodes: Vec::new(),
            autoscaling: None,
        }
    }
}

/// The autoscaler made from a workload's `scaling_policy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Autoscaling {
    /// At least 1 (an HPA cannot scale to zero without an alpha feature gate).
    pub min_replicas: i32,
    pub max_replicas: i32,
    /// Target average CPU utilisation in percent of the request.
    pub cpu_percent: Option<i32>,
    /// Target average memory utilisation in percent of the request.
    pub memory_percent: Option<i32>,
    /// Stabilisation windows in seconds (0..=3600, the API's range).
    pub scale_up_window_s: Option<i32>,
    pub scale_down_window_s: Option<i32>,
}

fn number(v: &Value, name: &str) -> Option<f64> {
    v.get(name)
        .and_then(Value::as_f64)
        .filter(|x| x.is_finite())
}

impl Autoscaling {
    /// From a `scaling_policy` object (`enabled`, `min_replicas`, `max_replicas`,
    /// `cpu_threshold`, `memory_threshold` in (0, 1], `scale_up_cooldown`,
    /// `scale_down_cooldown` in seconds); `None` when absent or `enabled = false`.
    pub fn from_policy(policy: Option<&Value>, replicas: i32) -> Option<Autoscaling> {
        let policy = policy.filter(|p| p.is_object())?;
        if policy.get("enabled").and_then(Value::as_bool) == Some(false) {
            return None;
        }
        let count = |name: &str| {
            number(policy, name)
                .filter(|v| *v >= 0.0)
                .map(|v| v.min(f64::from(i32::MAX)) as i32)
        };
        let min_replicas = count("min_replicas").unwrap_or(replicas).max(1);
        let max_replicas = count("max_replicas")
            .unwrap_or(replicas.max(min_replicas))
            .max(min_replicas);
        let percent = |name: &str| {
            number(policy, name)
                .filter(|t| *t > 0.0)
                .map(|t| (t * 100.0).round().clamp(1.0, 100.0) as i32)
        };
        let window = |name: &str| {
            number(policy, name)
                .filter(|t| *t >= 0.0)
                .map(|t| t.round().min(3600.0) as i32)
        };
        Some(Autoscaling {
            min_replicas,
            max_replicas,
            cpu_percent: percent("cpu_threshold"),
            memory_percent: percent("memory_threshold"),
            scale_up_window_s: window("scale_up_cooldown"),
            scale_down_window_s: window("scale_down_cooldown"),
        })
    }
}

impl KubeWorkload {
    /// Reads the [`METADATA_SECTION`] of the spec's metadata (else its top level): `replicas`
    /// (integer, default 1), `cpu` (cores), `memory_gb`, `image`, `nodes` (Node names) and
    /// `scaling_policy`; absent, mistyped or non-positive values are ignored.
    pub fn from_metadata(metadata: Option<&Value>) -> KubeWorkload {
        let section = metadata
            .and_then(|m| m.get(METADATA_SECTION))
            .filter(|s| s.is_object())
            .or(metadata);
        let field = |name: &str| section.and_then(|m| number(m, name));
        let positive = |v: f64| (v > 0.0).then_some(v);
        let replicas = field("replicas")
            .filter(|v| *v >= 0.0)
            .map(|v| v.min(f64::from(i32::MAX)) as i32)
            .unwrap_or(1);
        KubeWorkload {
            replicas,
            cpu_millis: field("cpu")
                .and_then(positive)
                .map(|c| (c * 1000.0).round().min(f64::from(u32::MAX)) as u32),
            memory_mb: field("memory_gb")
                .and_then(positive)
                .map(|g| (g * 1024.0).round().min(f64::from(u32::MAX)) as u32),
            image: section
                .and_then(|m| m.get("image"))
                .and_then(Value::as_str)
                .filter(|i| !i.is_empty())
                .map(str::to_string),
            nodes: section
                .and_then(|m| m.get("nodes"))
                .and_then(Value::as_array)
                .map(|ns| {
                    ns.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            autoscaling: Autoscaling::from_policy(
                section.and_then(|m| m.get("scaling_policy")),
                replicas,
            ),
        }
    }
}

/// What the Deployment keeps in [`ANNOTATION_PLACEMENT`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Placement {
    name: String,
    provider: String,
    region: String,
    zone: Option<String>,
    instance_type: Option<String>,
}

fn short_hash(s: &str) -> String {
    crate::sha256_hex(s, 4)
}

/// The Deployment name for a workload: `hybrid-<workload_id>` when that is already a DNS-1123
/// label (lowercase alphanumerics and `-`, at most 63 characters); otherwise the id is
/// lowercased, other characters become `-`, it is shortened, and `-<8 hex of its hash>` is
/// appended so that distinct ids keep distinct names.
pub fn deployment_name(workload_id: &str) -> String {
    let plain = format!("hybrid-{workload_id}");
    let valid = plain.len() <= 63
        && plain
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !plain.ends_with('-');
    if valid {
        return plain;
    }
    let mut cleaned: String = workload_id
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .take(45)
        .collect();
    while cleaned.contains("--") {
        cleaned = cleaned.replace("--", "-");
    }
    let cleaned = cleaned.trim_matches('-');
    if cleaned.is_empty() {
        format!("hybrid-{}", short_hash(workload_id))
    } else {
        format!("hybrid-{cleaned}-{}", short_hash(workload_id))
    }
}

/// A label value standing for `value`: the value itself when it is a valid label value (at most
/// 63 characters of `[A-Za-z0-9._-]`, starting and ending alphanumeric), else `h-` and 32 hex
/// characters of its SHA-256, which is valid and still selectable.
pub fn label_value(value: &str) -> String {
    let valid = !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && value
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && value
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    if valid {
        return value.to_string();
    }
    format!("h-{}", crate::sha256_hex(value, 16))
}

/// The server-side-apply document for `spec` (everything we own in the Deployment).
pub fn deployment_manifest(spec: &InstanceSpec, namespace: &str) -> Value {
    let doc = spec.metadata.as_ref().and_then(Metadata::parse);
    let workload = KubeWorkload::from_metadata(doc.as_ref());
    let workload_label = label_value(&spec.workload_id);
    let placement = Placement {
        name: spec.name.clone(),
        provider: spec.provider.clone(),
        region: spec.region.clone(),
        zone: spec.zone.clone(),
        instance_type: spec.instance_type.clone(),
    };
    let mut annotations = BTreeMap::from([
        (LABEL_WORKLOAD_ID.to_string(), spec.workload_id.clone()),
        (
            LABEL_IDEMPOTENCY_KEY.to_string(),
            spec.idempotency_key.clone(),
        ),
        (ANNOTATION_TAGS.to_string(), json!(spec.tags).to_string()),
        (
            ANNOTATION_PLACEMENT.to_string(),
            json!(placement).to_string(),
        ),
    ]);
    if let Some(metadata) = &spec.metadata {
        annotations.insert(
            ANNOTATION_METADATA.to_string(),
            metadata.as_str().to_string(),
        );
    }
    let mut requests = serde_json::Map::new();
    if let Some(cpu) = workload.cpu_millis {
        requests.insert("cpu".into(), json!(format!("{cpu}m")));
    }
    if let Some(mem) = workload.memory_mb {
        requests.insert("memory".into(), json!(format!("{mem}Mi")));
    }
    let image = spec
        .image
        .clone()
        .or_else(|| workload.image.clone())
        .unwrap_or_else(|| DEFAULT_IMAGE.to_string());
    let mut container = json!({ "name": CONTAINER_NAME, "image": image });
    if !requests.is_empty() {
        // Limits equal to requests: the booked capacity is also the most a replica may use.
        container["resources"] = json!({ "requests": requests, "limits": requests });
    }
    let mut pod_spec = json!({ "containers": [container] });
    let nodes: Vec<String> = if workload.nodes.is_empty() {
        spec.node.iter().cloned().collect()
    } else {
        workload.nodes.clone()
    };
    match nodes.as_slice() {
        [] => {}
        [one] => pod_spec["nodeSelector"] = json!({ HOSTNAME_LABEL: one }),
        many => {
            pod_spec["affinity"] = json!({ "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": { "nodeSelectorTerms": [{
                    "matchExpressions": [{ "key": HOSTNAME_LABEL, "operator": "In", "values": many }],
                }]},
            }});
        }
    }
    let mut dep_spec = json!({
        "selector": { "matchLabels": { LABEL_WORKLOAD_ID: workload_label } },
        "template": {
            "metadata": {
                "labels": {
                    LABEL_MANAGED_BY: MANAGED_BY_VALUE,
                    LABEL_WORKLOAD_ID: workload_label,
                }
            },
            "spec": pod_spec,
        },
    });
    // With an autoscaler the replica count is its to change: applying one would take it back.
    if workload.autoscaling.is_none() {
        dep_spec["replicas"] = json!(workload.replicas);
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": deployment_name(&spec.workload_id),
            "namespace": namespace,
            "labels": {
                LABEL_MANAGED_BY: MANAGED_BY_VALUE,
                LABEL_WORKLOAD_ID: workload_label,
                LABEL_IDEMPOTENCY_KEY: label_value(&spec.idempotency_key),
            },
            "annotations": annotations,
        },
        "spec": dep_spec,
    })
}

/// The server-side-apply document of the HorizontalPodAutoscaler for `spec` (same name as
/// its Deployment), or `None` when the workload has no enabled scaling policy.
pub fn hpa_manifest(spec: &InstanceSpec, namespace: &str) -> Option<Value> {
    let doc = spec.metadata.as_ref().and_then(Metadata::parse);
    let scaling = KubeWorkload::from_metadata(doc.as_ref()).autoscaling?;
    let name = deployment_name(&spec.workload_id);
    let metric = |resource: &str, percent: i32| {
        json!({ "type": "Resource", "resource": {
            "name": resource, "target": { "type": "Utilization", "averageUtilization": percent },
        }})
    };
    let mut hpa_spec = json!({
        "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": name },
        "minReplicas": scaling.min_replicas,
        "maxReplicas": scaling.max_replicas,
    });
    let metrics: Vec<Value> = [
        scaling.cpu_percent.map(|p| metric("cpu", p)),
        scaling.memory_percent.map(|p| metric("memory", p)),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !metrics.is_empty() {
        hpa_spec["metrics"] = json!(metrics);
    }
    let mut behavior = serde_json::Map::new();
    if let Some(w) = scaling.scale_up_window_s {
        behavior.insert("scaleUp".into(), json!({ "stabilizationWindowSeconds": w }));
    }
    if let Some(w) = scaling.scale_down_window_s {
        behavior.insert(
            "scaleDown".into(),
            json!({ "stabilizationWindowSeconds": w }),
        );
    }
    if !behavior.is_empty() {
        hpa_spec["behavior"] = Value::Object(behavior);
    }
    Some(json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                LABEL_MANAGED_BY: MANAGED_BY_VALUE,
                LABEL_WORKLOAD_ID: label_value(&spec.workload_id),
            },
        },
        "spec": hpa_spec,
    }))
}

/// CPU quantity in cores: `500m`, `2`, `1.5`.
pub fn parse_cpu(quantity: &str) -> Option<f64> {
    match quantity.strip_suffix('m') {
        Some(milli) => milli.parse::<f64>().ok().map(|m| m / 1000.0),
        None => quantity.parse::<f64>().ok(),
    }
    .filter(|v| v.is_finite())
}

/// Memory quantity in GiB (the unit of `memory_gb`): `1024Mi`, `2Gi`, `512M`, `1073741824`.
pub fn parse_memory_gb(quantity: &str) -> Option<f64> {
    const UNITS: &[(&str, f64)] = &[
        ("Ki", 1024.0),
        ("Mi", 1024.0 * 1024.0),
        ("Gi", 1024.0 * 1024.0 * 1024.0),
        ("Ti", 1024.0 * 1024.0 * 1024.0 * 1024.0),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
    ];
    let (number, factor) = UNITS
        .iter()
        .find_map(|(suffix, f)| quantity.strip_suffix(suffix).map(|n| (n, *f)))
        .unwrap_or((quantity, 1.0));
    number
        .parse::<f64>()
        .ok()
        .map(|n| n * factor / (1024.0 * 1024.0 * 1024.0))
        .filter(|v| v.is_finite())
}

/// Maps a kube error to the shared error type. `instance_id` names the object for `NotFound`.
fn map_error(operation: &'static str, instance_id: &str, err: kube::Error) -> DriverError {
    match err {
        kube::Error::Api(resp) => {
            let message = format!("{} {}: {}", resp.code, resp.reason, resp.message);
            match resp.code {
                404 => DriverError::NotFound {
                    target: TARGET.into(),
                    operation,
                    instance_id: instance_id.to_string(),
                },
                429 => DriverError::Throttled {
                    target: TARGET.into(),
                    operation,
                    message,
                },
                500..=599 => DriverError::Unavailable {
                    target: TARGET.into(),
                    operation,
                    message,
                },
                409 => DriverError::Rejected {
                    target: TARGET.into(),
                    operation,
                    message: format!("conflict: {message}"),
                },
                _ => DriverError::Rejected {
                    target: TARGET.into(),
                    operation,
                    message,
                },
            }
        }
        // The connection failed or broke: the request may not have arrived; worth a retry.
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => {
            DriverError::Unavailable {
                target: TARGET.into(),
                operation,
                message: err.to_string(),
            }
        }
        other => DriverError::Rejected {
            target: TARGET.into(),
            operation,
            message: other.to_string(),
        },
    }
}

fn rejected(operation: &'static str, message: impl Into<String>) -> DriverError {
    DriverError::Rejected {
        target: TARGET.into(),
        operation,
        message: message.into(),
    }
}

/// Splits `<namespace>/<name>`.
fn split_id<'a>(
    operation: &'static str,
    instance_id: &'a str,
) -> Result<(&'a str, &'a str), DriverError> {
    match instance_id.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((ns, name))
        }
        _ => Err(rejected(
            operation,
            format!("instance id {instance_id:?} is not <namespace>/<name>"),
        )),
    }
}

/// The instance a Deployment stands for.
pub fn instance_from_deployment(dep: &Deployment) -> Instance {
    let meta = &dep.metadata;
    let empty = BTreeMap::new();
    let annotations = meta.annotations.as_ref().unwrap_or(&empty);
    let labels = meta.labels.as_ref().unwrap_or(&empty);
    let exact = |key: &str| {
        annotations
            .get(key)
            .or_else(|| labels.get(key))
            .cloned()
            .unwrap_or_default()
    };
    let workload_id = exact(LABEL_WORKLOAD_ID);
    let user_tags: BTreeMap<String, String> = annotations
        .get(ANNOTATION_TAGS)
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default();
    let placement: Placement = annotations
        .get(ANNOTATION_PLACEMENT)
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or_default();
    let mut metadata: Option<Value> = annotations
        .get(ANNOTATION_METADATA)
        .and_then(|m| serde_json::from_str(m).ok());
    let spec = dep.spec.as_ref();
    let pod = spec.and_then(|s| s.template.spec.as_ref());
    let node = pod
        .and_then(|p| p.node_selector.as_ref())
        .and_then(|s| s.get(HOSTNAME_LABEL))
        .cloned();
    let container = pod.and_then(|p| p.containers.iter().find(|c| c.name == CONTAINER_NAME));
    let image = container.and_then(|c| c.image.clone());
    // What runs, beside what was asked for: the resource layer compares the two (drift). The
    // replica count of an autoscaled Deployment is the autoscaler's, not drift.
    if let Some(Value::Object(doc)) = metadata.as_mut() {
        let autoscaled = KubeWorkload::from_metadata(Some(&Value::Object(doc.clone())))
            .autoscaling
            .is_some();
        let requests = container
            .and_then(|c| c.resources.as_ref())
            .and_then(|r| r.requests.as_ref());
        let request = |name: &str| requests.and_then(|r| r.get(name)).map(|q| q.0.as_str());
        doc.insert(
            METADATA_OBSERVED.to_string(),
            json!({
                "replicas": if autoscaled { None } else { spec.and_then(|s| s.replicas) },
                "cpu": request("cpu").and_then(parse_cpu),
                "memory_gb": request("memory").and_then(parse_memory_gb),
                "image": image,
            }),
        );
    }
    let wanted = spec.and_then(|s| s.replicas).unwrap_or(1);
    let ready = dep
        .status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    let status = if meta.deletion_timestamp.is_some() {
        "terminating"
    } else if wanted == 0 {
        "stopped"
    } else if ready >= wanted {
        "running"
    } else {
        "pending"
    };
    let namespace = meta.namespace.clone().unwrap_or_default();
    let name = meta.name.clone().unwrap_or_default();
    Instance {
        instance_id: format!("{namespace}/{name}"),
        tags: managed_tags(&user_tags, &workload_id),
        workload_id,
        idempotency_key: exact(LABEL_IDEMPOTENCY_KEY),
        name: if placement.name.is_empty() {
            name
        } else {
            placement.name
        },
        provider: placement.provider,
        region: placement.region,
        zone: placement.zone,
        instance_type: placement.instance_type,
        node,
        image,
        // A Deployment has no single address; documented as always empty.
        private_ip: String::new(),
        status: status.to_string(),
        metadata: metadata.map(|doc| Metadata::from_value(&doc)),
    }
}

/// `~/...` is the user's home, as in kubectl.
fn expand_home(path: &str) -> std::path::PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => Path::new(path).to_path_buf(),
    }
}

/// Label marking a Node as described by a `hybrid_edge_node`.
pub const LABEL_NODE_ID: &str = "hybrid.io/node-id";
/// Node label with the node type (gateway, compute, storage, inference).
pub const LABEL_NODE_TYPE: &str = "hybrid.io/node-type";
/// Node label prefix for capabilities: `hybrid.io/capability.<name>=true`.
pub const LABEL_CAPABILITY_PREFIX: &str = "hybrid.io/capability.";
/// Node label prefix for the node's own labels: `hybrid.io/label.<key>=<value>`.
pub const LABEL_USER_PREFIX: &str = "hybrid.io/label.";
/// Node annotation with the location as `{"lat":..,"lng":..}`.
pub const ANNOTATION_LOCATION: &str = "hybrid.io/location";
/// Node annotation with the capabilities, comma-separated.
pub const ANNOTATION_CAPABILITIES: &str = "hybrid.io/capabilities";
/// Node annotation with the node's labels as a JSON object (all of them, also those whose key
/// or value cannot be a Kubernetes label).
pub const ANNOTATION_LABELS: &str = "hybrid.io/labels";

fn valid_label_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric())
}

/// The keys of `expected` that `actual` lacks or holds with another value, each prefixed with
/// `what` ("label " or "annotation "): the drift a node's read reports. Keys `actual` has
/// beyond `expected` are not drift (other managers' labels, and ours once given back).
pub fn metadata_drift(
    what: &str,
    expected: &BTreeMap<String, String>,
    actual: &BTreeMap<String, String>,
) -> Vec<String> {
    expected
        .iter()
        .filter(|(k, v)| actual.get(*k) != Some(*v))
        .map(|(k, _)| format!("{what}{k}"))
        .collect()
}

/// The labels and annotations an edge node's description becomes on its Kubernetes Node.
/// Every key is under `hybrid.io/`; a user label whose key or value is not valid for
/// Kubernetes is kept only in [`ANNOTATION_LABELS`].
pub fn node_metadata(node: &EdgeNode) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mut labels = BTreeMap::from([
        (LABEL_MANAGED_BY.to_string(), MANAGED_BY_VALUE.to_string()),
        (LABEL_NODE_ID.to_string(), label_value(&node.id)),
        (LABEL_NODE_TYPE.to_string(), label_value(&node.node_type)),
    ]);
    for cap in &node.capabilities {
        if valid_label_name(cap) {
            labels.insert(format!("{LABEL_CAPABILITY_PREFIX}{cap}"), "true".into());
        }
    }
    for (k, v) in &node.labels {
        let name = format!("label.{k}");
        if valid_label_name(&name) && (v.is_empty() || label_value(v) == *v) {
            labels.insert(format!("{LABEL_USER_PREFIX}{k}"), v.clone());
        }
    }
    let annotations = BTreeMap::from([
        (
            ANNOTATION_LOCATION.to_string(),
            json!({ "lat": node.lat, "lng": node.lng }).to_string(),
        ),
        (
            ANNOTATION_CAPABILITIES.to_string(),
            node.capabilities.join(","),
        ),
        (
            ANNOTATION_LABELS.to_string(),
            json!(node.labels).to_string(),
        ),
    ]);
    (labels, annotations)
}

/// The driver: a kube client and the namespace new Deployments go to.
#[derive(Clone)]
pub struct KubernetesDriver {
    client: Client,
    namespace: String,
}

impl std::fmt::Debug for KubernetesDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesDriver")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl KubernetesDriver {
    /// Builds the client for `target`. Must be called inside a Tokio runtime (the kube client
    /// spawns its connection-buffer task there).
    pub fn new(target: &KubeTarget) -> Result<KubernetesDriver, DriverError> {
        let uri: http::Uri = target.server_url.parse().map_err(|e| {
            rejected(
                "connect",
                format!("bad server_url {:?}: {e}", target.server_url),
            )
        })?;
        let mut config = Config::new(uri);
        config.default_namespace = target.namespace.clone();
        if let Some(token) = &target.token {
            let mut value = http::HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| rejected("connect", "the token is not a valid header value"))?;
            value.set_sensitive(true);
            config.headers.push((http::header::AUTHORIZATION, value));
        }
        Self::from_config(config)
    }

    /// Builds the client from a kubeconfig file and context (the file's current context when
    /// `None`); the namespace is the context's, else `default`.
    pub async fn from_kubeconfig(
        path: &Path,
        context: Option<&str>,
    ) -> Result<KubernetesDriver, DriverError> {
        let kubeconfig = kube::config::Kubeconfig::read_from(path)
            .map_err(|e| rejected("connect", format!("{}: {e}", path.display())))?;
        let options = kube::config::KubeConfigOptions {
            context: context.map(str::to_string),
            ..Default::default()
        };
        let config = Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|e| rejected("connect", format!("{}: {e}", path.display())))?;
        Self::from_config(config)
    }

    /// Builds the client from a ready `kube::Config`.
    pub fn from_config(config: Config) -> Result<KubernetesDriver, DriverError> {
        // The kube client spawns onto the current runtime and would panic without one.
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(rejected(
                "connect",
                "the Kubernetes driver must be built inside a Tokio runtime",
            ));
        }
        // Pin the process-wide TLS provider: whatever else the build links, the client must not
        // depend on rustls guessing one. An already-installed provider is kept.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let namespace = config.default_namespace.clone();
        let client = Client::try_from(config).map_err(|e| map_error("connect", "", e))?;
        Ok(KubernetesDriver { client, namespace })
    }

    /// Builds the client for an edge site: its kubeconfig (file and context) or its host,
    /// then the site's namespace, `insecure`, and `token` (which replaces the kubeconfig's
    /// credentials when given).
    pub async fn for_site(
        site: &KubeSite,
        token: Option<&str>,
    ) -> Result<KubernetesDriver, DriverError> {
        let mut config = if let Some(path) = &site.kubeconfig_path {
            let path = expand_home(path);
            let kubeconfig = kube::config::Kubeconfig::read_from(&path)
                .map_err(|e| rejected("connect", format!("{}: {e}", path.display())))?;
            let options = kube::config::KubeConfigOptions {
                context: site.context.clone(),
                ..Default::default()
            };
            Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| rejected("connect", format!("{}: {e}", path.display())))?
        } else if let Some(host) = &site.host {
            let uri: http::Uri = host
                .parse()
                .map_err(|e| rejected("connect", format!("bad host {host:?}: {e}")))?;
            Config::new(uri)
        } else {
            return Err(rejected(
                "connect",
                "the site names neither a kubeconfig_path nor a host",
            ));
        };
        if let Some(ns) = &site.namespace {
            config.default_namespace = ns.clone();
        }
        if site.insecure {
            config.accept_invalid_certs = true;
        }
        if let Some(token) = token {
            config.auth_info = Default::default();
            let mut value = http::HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| rejected("connect", "the token is not a valid header value"))?;
            value.set_sensitive(true);
            config.headers.push((http::header::AUTHORIZATION, value));
        }
        Self::from_config(config)
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    fn api(&self, namespace: &str) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), namespace)
    }

    fn hpas(&self, namespace: &str) -> Api<HorizontalPodAutoscaler> {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// Applies the Deployment and its autoscaler (or deletes an autoscaler the workload no
    /// longer has). `force` takes fields back from other managers: used when re-applying what
    /// a reviewed plan showed over changes made outside Terraform; a first create is not
    /// forced, so that it never silently takes over someone else's Deployment.
    async fn apply_workload(
        &self,
        operation: &'static str,
        spec: &InstanceSpec,
        namespace: &str,
        force: bool,
    ) -> Result<Deployment, DriverError> {
        let manifest = deployment_manifest(spec, namespace);
        let name = deployment_name(&spec.workload_id);
        let id = format!("{namespace}/{name}");
        let mut params = PatchParams::apply(FIELD_MANAGER);
        if force {
            params = params.force();
        }
        let dep = self
            .api(namespace)
            .patch(&name, &params, &Patch::Apply(&manifest))
            .await
            .map_err(|e| map_error(operation, &id, e))?;
        match hpa_manifest(spec, namespace) {
            Some(hpa) => {
                self.hpas(namespace)
                    .patch(&name, &params, &Patch::Apply(&hpa))
                    .await
                    .map_err(|e| map_error(operation, &id, e))?;
            }
            None => self.delete_hpa(operation, namespace, &name).await?,
        }
        Ok(dep)
    }

    async fn delete_hpa(
        &self,
        operation: &'static str,
        namespace: &str,
        name: &str,
    ) -> Result<(), DriverError> {
        match self
            .hpas(namespace)
            .delete(name, &DeleteParams::default())
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(resp)) if resp.code == 404 => Ok(()),
            Err(e) => Err(map_error(operation, &format!("{namespace}/{name}"), e)),
        }
    }

    /// Puts `labels` and `annotations` on the Node `name` (server-side apply of metadata only,
    /// forced: the `hybrid.io/` keys are ours). A missing Node is `NotFound`: applying would
    /// create a Node object that no kubelet backs.
    pub async fn label_node(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
        annotations: &BTreeMap<String, String>,
    ) -> Result<(), DriverError> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        nodes
            .get(name)
            .await
            .map_err(|e| map_error("label node", name, e))?;
        let patch = json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": { "name": name, "labels": labels, "annotations": annotations },
        });
        nodes
            .patch(
                name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await
            .map_err(|e| map_error("label node", name, e))?;
        Ok(())
    }

    /// The labels and annotations of the Node `name`, or `None` when there is no such Node.
    pub async fn node_metadata_of(
        &self,
        name: &str,
    ) -> Result<Option<(BTreeMap<String, String>, BTreeMap<String, String>)>, DriverError> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        match nodes.get(name).await {
            Ok(node) => Ok(Some((
                node.metadata.labels.unwrap_or_default(),
                node.metadata.annotations.unwrap_or_default(),
            ))),
            Err(kube::Error::Api(resp)) if resp.code == 404 => Ok(None),
            Err(e) => Err(map_error("read node", name, e)),
        }
    }

    /// Gives back every Node label and annotation this field manager set (an apply that sets
    /// nothing); a missing Node is success.
    pub async fn unlabel_node(&self, name: &str) -> Result<(), DriverError> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        match nodes.get(name).await {
            Ok(_) => {}
            Err(kube::Error::Api(resp)) if resp.code == 404 => return Ok(()),
            Err(e) => return Err(map_error("unlabel node", name, e)),
        }
        let patch = json!({ "apiVersion": "v1", "kind": "Node", "metadata": { "name": name } });
        match nodes
            .patch(
                name,
                &PatchParams::apply(FIELD_MANAGER),
                &Patch::Apply(&patch),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(resp)) if resp.code == 404 => Ok(()),
            Err(e) => Err(map_error("unlabel node", name, e)),
        }
    }

    /// Lists at most one Deployment in the namespace: proves the server answers and the
    /// credentials may read there.
    pub async fn check(&self) -> Result<(), DriverError> {
        self.api(&self.namespace)
            .list(&ListParams::default().limit(1))
            .await
            .map_err(|e| map_error("connect", "", e))?;
        Ok(())
    }

    async fn list(
        &self,
        operation: &'static str,
        selector: &str,
    ) -> Result<Vec<Deployment>, DriverError> {
        let list = self
            .api(&self.namespace)
            .list(&ListParams::default().labels(selector))
            .await
            .map_err(|e| map_error(operation, "", e))?;
        Ok(list.items)
    }
}

#[async_trait]
impl Driver for KubernetesDriver {
    fn name(&self) -> &'static str {
        TARGET
    }

    async fn create(&self, spec: &InstanceSpec) -> Result<Instance, DriverError> {
        let dep = self
            .apply_workload("create", spec, &self.namespace, false)
            .await?;
        let inst = instance_from_deployment(&dep);
        tracing::info!(instance_id = %inst.instance_id, key = %spec.idempotency_key, "deployment applied");
        Ok(inst)
    }

    async fn read(&self, instance_id: &str) -> Result<Option<Instance>, DriverError> {
        let (ns, name) = split_id("read", instance_id)?;
        match self.api(ns).get(name).await {
            Ok(dep) => Ok(Some(instance_from_deployment(&dep))),
            Err(kube::Error::Api(resp)) if resp.code == 404 => Ok(None),
            Err(e) => Err(map_error("read", instance_id, e)),
        }
    }

    async fn find_by_workload(&self, workload_id: &str) -> Result<Option<Instance>, DriverError> {
        let selector = format!("{LABEL_WORKLOAD_ID}={}", label_value(workload_id));
        let found = self.list("read", &selector).await?;
        Ok(found
            .iter()
            .map(instance_from_deployment)
            // The label may be a hash; the annotation holds the exact id.
            .find(|i| i.workload_id == workload_id))
    }

    async fn update_tags(
        &self,
        instance_id: &str,
        tags: &BTreeMap<String, String>,
        metadata: Option<&Metadata>,
    ) -> Result<Instance, DriverError> {
        let (ns, name) = split_id("update", instance_id)?;
        let current = self
            .api(ns)
            .get(name)
            .await
            .map_err(|e| map_error("update", instance_id, e))?;
        let inst = instance_from_deployment(&current);
        // Everything is applied again from the new metadata, forced: this is how a reviewed
        // plan puts back what was changed outside Terraform (image, requests, replicas).
        let sectioned = metadata.is_some_and(|m| m.section(METADATA_SECTION).is_some());
        let spec = InstanceSpec {
            idempotency_key: inst.idempotency_key,
            workload_id: inst.workload_id,
            name: inst.name,
            provider: inst.provider,
            region: inst.region,
            zone: inst.zone,
            instance_type: inst.instance_type,
            node: inst.node,
            image: if sectioned { None } else { inst.image },
            tags: tags.clone(),
            metadata: metadata.cloned(),
        };
        if deployment_name(&spec.workload_id) != name {
            return Err(rejected(
                "update",
                format!("{instance_id} does not carry the workload id it was made for"),
            ));
        }
        let dep = self.apply_workload("update", &spec, ns, true).await?;
        Ok(instance_from_deployment(&dep))
    }

    async fn delete(&self, instance_id: &str) -> Result<(), DriverError> {
        let (ns, name) = split_id("delete", instance_id)?;
        self.delete_hpa("delete", ns, name).await?;
        match self.api(ns).delete(name, &DeleteParams::foreground()).await {
            Ok(_) => {
                tracing::info!(instance_id, "deployment deletion accepted");
                Ok(())
            }
            Err(kube::Error::Api(resp)) if resp.code == 404 => Ok(()),
            Err(e) => Err(map_error("delete", instance_id, e)),
        }
    }

    async fn list_managed(&self) -> Result<Vec<Instance>, DriverError> {
        let selector = format!("{LABEL_MANAGED_BY}={MANAGED_BY_VALUE}");
        let found = self.list("list", &selector).await?;
        Ok(found.iter().map(instance_from_deployment).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dns_labels_and_distinct() {
        assert_eq!(deployment_name("wl-1"), "hybrid-wl-1");
        let a = deployment_name("WL_1");
        let b = deployment_name("wl.1");
        assert_ne!(a, b);
        for n in [
            &a,
            &b,
            &deployment_name(&"x".repeat(200)),
            &deployment_name("%%"),
        ] {
            assert!(n.len() <= 63, "{n}");
            assert!(n
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-'));
            assert!(!n.ends_with('-'), "{n}");
        }
    }

    #[test]
    fn drift_is_what_the_description_has_and_the_node_lacks_or_changed() {
        let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect()
        };
        let expected = map(&[
            ("hybrid.io/node-type", "compute"),
            ("hybrid.io/label.rack", "r7"),
        ]);
        assert!(metadata_drift("label ", &expected, &expected).is_empty());
        let extra = map(&[
            ("hybrid.io/node-type", "compute"),
            ("hybrid.io/label.rack", "r7"),
            ("kubernetes.io/hostname", "n1"),
        ]);
        assert!(metadata_drift("label ", &expected, &extra).is_empty());
        let changed = map(&[("hybrid.io/node-type", "gateway")]);
        assert_eq!(
            metadata_drift("label ", &expected, &changed),
            ["label hybrid.io/label.rack", "label hybrid.io/node-type"]
        );
    }

    #[test]
    fn label_values_pass_through_or_hash() {
        assert_eq!(label_value("wl-1"), "wl-1");
        let hashed = label_value("a key/with spaces");
        assert!(hashed.starts_with("h-") && hashed.len() == 34);
        assert_ne!(label_value(&"k".repeat(64)), "k".repeat(64));
    }

    #[test]
    fn workload_sizing_comes_from_metadata() {
        let w =
            KubeWorkload::from_metadata(Some(&json!({"cpu": 0.5, "memory_gb": 2, "replicas": 3})));
        assert_eq!(
            w,
            KubeWorkload {
                replicas: 3,
                cpu_millis: Some(500),
                memory_mb: Some(2048),
                ..KubeWorkload::default()
            }
        );
        assert_eq!(KubeWorkload::from_metadata(None), KubeWorkload::default());
        let bad = KubeWorkload::from_metadata(Some(&json!({"cpu": "lots", "replicas": -1})));
        assert_eq!(bad, KubeWorkload::default());
    }

    fn deployment(replicas: i32, ready: Option<i32>) -> Deployment {
        let spec = InstanceSpec {
            idempotency_key: "k".into(),
            workload_id: "wl".into(),
            name: "web".into(),
            provider: "edge".into(),
            region: "berlin".into(),
            zone: None,
            instance_type: None,
            node: None,
            image: None,
            tags: BTreeMap::new(),
            metadata: Some(Metadata::from_value(&json!({ "replicas": replicas }))),
        };
        let mut doc = deployment_manifest(&spec, "ns");
        doc["status"] = json!({ "replicas": replicas, "readyReplicas": ready });
        serde_json::from_value(doc).expect("the manifest is a valid Deployment")
    }

    #[test]
    fn status_follows_ready_replicas() {
        assert_eq!(
            instance_from_deployment(&deployment(3, Some(3))).status,
            "running"
        );
        assert_eq!(
            instance_from_deployment(&deployment(3, Some(1))).status,
            "pending"
        );
        assert_eq!(
            instance_from_deployment(&deployment(3, None)).status,
            "pending"
        );
        assert_eq!(
            instance_from_deployment(&deployment(0, None)).status,
            "stopped"
        );
        let mut going = deployment(1, Some(1));
        going.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::chrono::DateTime::UNIX_EPOCH,
            ));
        assert_eq!(instance_from_deployment(&going).status, "terminating");
        let i = instance_from_deployment(&deployment(1, Some(1)));
        assert_eq!(i.instance_id, "ns/hybrid-wl");
        assert_eq!(i.image.as_deref(), Some(DEFAULT_IMAGE));
        assert_eq!(i.private_ip, "");
    }

    #[test]
    fn the_resource_layers_section_wins_and_scaling_is_clamped_to_the_api() {
        let w = KubeWorkload::from_metadata(Some(&json!({
            "replicas": 9,
            "kubernetes": {"replicas": 0, "nodes": ["a", 3, "b"], "image": "",
                "scaling_policy": {"min_replicas": 0, "max_replicas": 0, "cpu_threshold": 1.5,
                    "scale_down_cooldown": 99999}},
        })));
        assert_eq!(w.replicas, 0);
        assert_eq!(w.nodes, ["a", "b"]);
        assert_eq!(w.image, None);
        let a = w.autoscaling.expect("enabled by default");
        assert_eq!((a.min_replicas, a.max_replicas), (1, 1));
        assert_eq!(a.cpu_percent, Some(100));
        assert_eq!(a.scale_down_window_s, Some(3600));
        let off = json!({"kubernetes": {"scaling_policy": {"enabled": false}}});
        assert_eq!(KubeWorkload::from_metadata(Some(&off)).autoscaling, None);
    }

    #[test]
    fn quantities_parse_into_the_workloads_units() {
        assert_eq!(parse_cpu("250m"), Some(0.25));
        assert_eq!(parse_cpu("2"), Some(2.0));
        assert_eq!(parse_cpu("lots"), None);
        assert_eq!(parse_memory_gb("512Mi"), Some(0.5));
        assert_eq!(parse_memory_gb("2Gi"), Some(2.0));
        assert_eq!(parse_memory_gb("1073741824"), Some(1.0));
        assert_eq!(parse_memory_gb("x"), None);
    }

    #[test]
    fn building_outside_a_runtime_is_an_error_not_a_panic() {
        let target = KubeTarget {
            server_url: "http://127.0.0.1:1".into(),
            token: None,
            namespace: "ns".into(),
        };
        assert!(matches!(
            KubernetesDriver::new(&target),
            Err(DriverError::Rejected { .. })
        ));
    }

    #[test]
    fn malformed_instance_ids_are_rejected() {
        assert!(split_id("read", "ns/name").is_ok());
        for bad in ["name", "/name", "ns/", "a/b/c"] {
            assert!(matches!(
                split_id("read", bad),
                Err(DriverError::Rejected { .. })
            ));
        }
    }
}
