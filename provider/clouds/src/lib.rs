//! Where placements become running things.
//!
//! One [`Driver`] trait for every target (the embedded `sim` cloud by default; AWS, Azure, GCP and
//! Kubernetes behind cargo features as they land), and the behaviour every driver shares written
//! once: idempotency keys, the tags that mark what we manage, and retries with backoff.
//!
//! The rules every driver keeps:
//! - `create` is idempotent on [`InstanceSpec::idempotency_key`]: calling it twice (a retry after a
//!   lost response, or a new apply after an interrupted one) yields the same instance, never two.
//! - `read` of an instance that no longer exists is `Ok(None)`, not an error: Terraform then plans
//!   a re-create instead of failing.
//! - everything created carries [`TAG_MANAGED_BY`] and [`TAG_WORKLOAD_ID`].

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "azure")]
pub mod azure;
pub mod edge;
pub mod faults;
#[cfg(feature = "gcp")]
pub mod gcp;
#[cfg(feature = "kubernetes")]
pub mod kubernetes;
pub mod meta_tags;
mod metadata;
pub mod retry;
pub mod sim;

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use metadata::{InvalidMetadata, Metadata};

/// Tag key marking a resource as ours; the value is [`MANAGED_BY_VALUE`].
pub const TAG_MANAGED_BY: &str = "hybrid:managed-by";
/// Tag value of [`TAG_MANAGED_BY`].
pub const MANAGED_BY_VALUE: &str = "terraform-provider-hybrid";
/// Tag key holding the `hybrid_workload` id the instance belongs to.
pub const TAG_WORKLOAD_ID: &str = "hybrid:workload-id";
/// Tag holding [`InstanceSpec::idempotency_key`] (EC2 and Azure tags).
pub const TAG_IDEMPOTENCY_KEY: &str = "hybrid:idempotency-key";
/// Tag holding the workload name (EC2 and Azure tags).
pub const TAG_NAME: &str = "hybrid:name";
/// Tag keys the provider writes itself; a user tag may not claim them.
pub const RESERVED_TAG_PREFIX: &str = "hybrid:";

/// The user's tags among `tags`: everything outside our reserved `hybrid:` prefix (a user tag
/// there would be hidden from tags_all and could spoof ours).
pub fn user_tags(tags: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    tags.iter()
        .filter(|(k, _)| !k.starts_with(RESERVED_TAG_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// What apply asks a driver to create: the placement the reviewed plan showed, plus the
/// workload's own details.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceSpec {
    /// Stable across retries of the same create and across an interrupted-then-repeated apply;
    /// a driver uses it as its client token / request id / object name.
    pub idempotency_key: String,
    /// The `hybrid_workload` id (also written to [`TAG_WORKLOAD_ID`]).
    pub workload_id: String,
    pub name: String,
    /// `aws`, `azure`, `gcp`, `edge`, `onprem`.
    pub provider: String,
    pub region: String,
    pub zone: Option<String>,
    pub instance_type: Option<String>,
    pub node: Option<String>,
    pub image: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// Opaque document the resource layer stores beside the instance where the target allows
    /// (the sim cloud does), so that import can rebuild the resource's inputs.
    pub metadata: Option<Metadata>,
}

/// An instance as the target reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    pub instance_id: String,
    pub workload_id: String,
    pub idempotency_key: String,
    pub name: String,
    pub provider: String,
    pub region: String,
    pub zone: Option<String>,
    pub instance_type: Option<String>,
    pub node: Option<String>,
    pub image: Option<String>,
    pub private_ip: String,
    /// `running`, `stopped`, `terminated`, ...
    pub status: String,
    pub tags: BTreeMap<String, String>,
    /// The document stored with the instance, where the target keeps one (see
    /// [`InstanceSpec::metadata`]).
    pub metadata: Option<Metadata>,
}

/// Failures a driver reports. `retryable` ones are retried by [`retry::with_backoff`].
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("{target} {operation} was throttled: {message}")]
    Throttled {
        target: String,
        operation: &'static str,
        message: String,
    },
    #[error("{target} {operation} failed with a server error: {message}")]
    Unavailable {
        target: String,
        operation: &'static str,
        message: String,
    },
    #[error("{target} {operation} was rejected: {message}")]
    Rejected {
        target: String,
        operation: &'static str,
        message: String,
    },
    #[error("{target} {operation}: instance {instance_id} does not exist")]
    NotFound {
        target: String,
        operation: &'static str,
        instance_id: String,
    },
    #[error("{target} {operation} did not finish within {seconds} s")]
    Timeout {
        target: String,
        operation: &'static str,
        seconds: u64,
    },
    #[error("{target} {operation} was cancelled because Terraform asked the provider to stop")]
    Cancelled {
        target: String,
        operation: &'static str,
    },
    #[error("{target} storage error during {operation}: {message}")]
    Storage {
        target: String,
        operation: &'static str,
        message: String,
    },
}

impl DriverError {
    /// Throttling and server errors are worth another try; everything else is final.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            DriverError::Throttled { .. } | DriverError::Unavailable { .. }
        )
    }
}

/// The one interface apply uses for every target.
#[async_trait]
pub trait Driver: Send + Sync {
    /// Short name used in diagnostics and logs: `sim`, `aws`, ...
    fn name(&self) -> &'static str;

    /// Creates the instance, or returns the one already created with the same idempotency key.
    async fn create(&self, spec: &InstanceSpec) -> Result<Instance, DriverError>;

    /// The instance as it is now; `Ok(None)` when it no longer exists.
    async fn read(&self, instance_id: &str) -> Result<Option<Instance>, DriverError>;

    /// [`Driver::read`] for a refresh, which uses only these sections of the instance's
    /// metadata: `observed`, and `state.placement`. A driver that stores the whole state in the
    /// metadata may leave the rest out (a refresh of a thousand workloads spent a tenth of its
    /// CPU parsing states it did not look at); by default this is `read`.
    async fn read_for_refresh(&self, instance_id: &str) -> Result<Option<Instance>, DriverError> {
        self.read(instance_id).await
    }

    /// Looks an instance up by the workload id tag (import by workload id, orphan recovery).
    async fn find_by_workload(&self, workload_id: &str) -> Result<Option<Instance>, DriverError>;

    /// Replaces the user tags (ours are kept) and metadata in place.
    async fn update_tags(
        &self,
        instance_id: &str,
        tags: &BTreeMap<String, String>,
        metadata: Option<&Metadata>,
    ) -> Result<Instance, DriverError>;

    /// Deletes the instance; deleting one that is already gone succeeds.
    async fn delete(&self, instance_id: &str) -> Result<(), DriverError>;

    /// Every live instance this provider manages (for tests, cost reports and cleanup).
    async fn list_managed(&self) -> Result<Vec<Instance>, DriverError>;
}

/// The tags every instance gets: the user's, then ours (ours win, so a user cannot hide an
/// instance from cleanup by overriding them).
pub fn managed_tags(
    user_tags: &BTreeMap<String, String>,
    workload_id: &str,
) -> BTreeMap<String, String> {
    let mut tags = user_tags.clone();
    tags.insert(TAG_MANAGED_BY.to_string(), MANAGED_BY_VALUE.to_string());
    tags.insert(TAG_WORKLOAD_ID.to_string(), workload_id.to_string());
    tags
}

/// The first `bytes` bytes (at most 32) of the SHA-256 of `text`, as lowercase hex: the one
/// digest every deterministic name, id and token here is built from.
pub fn sha256_hex(data: impl AsRef<[u8]>, bytes: usize) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(data.as_ref());
    hex::encode(&digest[..bytes.min(digest.len())])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn managed_tags_cannot_be_overridden_by_user_tags() {
        let mut user = BTreeMap::new();
        user.insert(TAG_MANAGED_BY.to_string(), "someone-else".to_string());
        user.insert("team".to_string(), "payments".to_string());
        let tags = managed_tags(&user, "wl-1");
        assert_eq!(tags[TAG_MANAGED_BY], MANAGED_BY_VALUE);
        assert_eq!(tags[TAG_WORKLOAD_ID], "wl-1");
        assert_eq!(tags["team"], "payments");
    }

    #[test]
    fn only_throttling_and_server_errors_are_retryable() {
        let throttled = DriverError::Throttled {
            target: "sim".into(),
            operation: "create",
            message: "slow down".into(),
        };
        let rejected = DriverError::Rejected {
            target: "sim".into(),
            operation: "create",
            message: "bad type".into(),
        };
        assert!(throttled.is_retryable());
        assert!(!rejected.is_retryable());
    }
}
