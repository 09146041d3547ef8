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
//! - **Sizing.** Replicas and resource requests come from [`KubeWorkload`], read from the spec's
//!   metadata JSON fields `replicas`, `cpu` (cores) and `memory_gb`. A given `spec.node` becomes
//!   the nodeSelector `kubernetes.io/hostname=<node>`. Without `spec.image` the container runs
//!   [`DEFAULT_IMAGE`] (the pause image: it holds the placement and does nothing).
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
//! **Not run against a real cluster.** Everything here is tested against a scripted HTTP server
//! in `tests/kubernetes.rs` that checks the requests and answers like the API server. Not yet
//! exercised: a real kube-apiserver's server-side-apply merge and conflict behaviour, TLS
//! (rustls with ring, cluster CA from a kubeconfig), bearer-token auth against a real server,
//! [`KubernetesDriver::from_kubeconfig`] with exec/OIDC credential plugins, foreground deletion
//! that takes time to finish (we report success as soon as the DELETE is accepted), and
//! scheduling with the nodeSelector.

use std::collections::BTreeMap;
use std::path::Path;

use async_trait::async_trait;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Client, Config};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::{managed_tags, Driver, DriverError, Instance, InstanceSpec, MANAGED_BY_VALUE};

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

/// The sizing of a workload's Deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KubeWorkload {
    pub replicas: i32,
    /// CPU request in millicores.
    pub cpu_millis: Option<u32>,
    /// Memory request in MiB.
    pub memory_mb: Option<u32>,
}

impl Default for KubeWorkload {
    fn default() -> Self {
        KubeWorkload {
            replicas: 1,
            cpu_millis: None,
            memory_mb: None,
        }
    }
}

impl KubeWorkload {
    /// Reads `replicas` (integer, default 1), `cpu` (cores, number) and `memory_gb` (number) from
    /// the spec's metadata; absent, non-numeric or non-positive values are ignored.
    pub fn from_metadata(metadata: Option<&Value>) -> KubeWorkload {
        let field = |name: &str| metadata.and_then(|m| m.get(name)).and_then(Value::as_f64);
        let positive = |v: f64| (v.is_finite() && v > 0.0).then_some(v);
        KubeWorkload {
            replicas: field("replicas")
                .filter(|v| v.is_finite() && *v >= 0.0)
                .map(|v| v.min(f64::from(i32::MAX)) as i32)
                .unwrap_or(1),
            cpu_millis: field("cpu")
                .and_then(positive)
                .map(|c| (c * 1000.0).round().min(f64::from(u32::MAX)) as u32),
            memory_mb: field("memory_gb")
                .and_then(positive)
                .map(|g| (g * 1024.0).round().min(f64::from(u32::MAX)) as u32),
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
    Sha256::digest(s.as_bytes())
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect()
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
    let hex: String = Sha256::digest(value.as_bytes())
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("h-{hex}")
}

/// The server-side-apply document for `spec` (everything we own in the Deployment).
pub fn deployment_manifest(spec: &InstanceSpec, namespace: &str) -> Value {
    let workload = KubeWorkload::from_metadata(spec.metadata.as_ref());
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
        annotations.insert(ANNOTATION_METADATA.to_string(), metadata.to_string());
    }
    let mut requests = serde_json::Map::new();
    if let Some(cpu) = workload.cpu_millis {
        requests.insert("cpu".into(), json!(format!("{cpu}m")));
    }
    if let Some(mem) = workload.memory_mb {
        requests.insert("memory".into(), json!(format!("{mem}Mi")));
    }
    let mut container = json!({
        "name": CONTAINER_NAME,
        "image": spec.image.as_deref().unwrap_or(DEFAULT_IMAGE),
    });
    if !requests.is_empty() {
        container["resources"] = json!({ "requests": requests });
    }
    let mut pod_spec = json!({ "containers": [container] });
    if let Some(node) = &spec.node {
        pod_spec["nodeSelector"] = json!({ "kubernetes.io/hostname": node });
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
        "spec": {
            "replicas": workload.replicas,
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
        },
    })
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
    let metadata = annotations
        .get(ANNOTATION_METADATA)
        .and_then(|m| serde_json::from_str(m).ok());
    let spec = dep.spec.as_ref();
    let pod = spec.and_then(|s| s.template.spec.as_ref());
    let node = pod
        .and_then(|p| p.node_selector.as_ref())
        .and_then(|s| s.get("kubernetes.io/hostname"))
        .cloned();
    let image = pod
        .and_then(|p| p.containers.iter().find(|c| c.name == CONTAINER_NAME))
        .and_then(|c| c.image.clone());
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
        metadata,
    }
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

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    fn api(&self, namespace: &str) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), namespace)
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
        let manifest = deployment_manifest(spec, &self.namespace);
        let name = deployment_name(&spec.workload_id);
        let id = format!("{}/{name}", self.namespace);
        let dep = self
            .api(&self.namespace)
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER),
                &Patch::Apply(&manifest),
            )
            .await
            .map_err(|e| map_error("create", &id, e))?;
        tracing::info!(instance_id = %id, key = %spec.idempotency_key, "deployment applied");
        Ok(instance_from_deployment(&dep))
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
        metadata: Option<&Value>,
    ) -> Result<Instance, DriverError> {
        let (ns, name) = split_id("update", instance_id)?;
        // A JSON merge patch: `null` removes the metadata annotation.
        let patch = json!({
            "metadata": {
                "annotations": {
                    ANNOTATION_TAGS: json!(tags).to_string(),
                    ANNOTATION_METADATA: metadata.map(Value::to_string),
                }
            }
        });
        let dep = self
            .api(ns)
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| map_error("update", instance_id, e))?;
        Ok(instance_from_deployment(&dep))
    }

    async fn delete(&self, instance_id: &str) -> Result<(), DriverError> {
        let (ns, name) = split_id("delete", instance_id)?;
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
                memory_mb: Some(2048)
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
            metadata: Some(json!({ "replicas": replicas })),
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
