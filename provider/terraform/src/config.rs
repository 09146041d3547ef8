//! The `provider "hybrid" {}` block: its schema and what ConfigureProvider makes of it.
//!
//! Everything is optional: with no arguments the provider places onto the catalog and
//! provisions on the embedded sim cloud, with its state in the user's data directory.
//! Credentials are never read from HCL: cloud drivers take them from the standard environment
//! chains when they land.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use tfvalue::{AttributePath, Type, Value};

use crate::attrs;
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::schema::{Attr, Block, NestedBlock, Nesting, Schema};

/// Overrides the default state path (used by tests and the demo to keep runs apart).
pub const ENV_STATE_PATH: &str = "HYBRID_STATE_PATH";
/// A fault plan for the sim cloud (see `clouds::faults`), for exercising error paths.
pub const ENV_SIM_FAULTS: &str = "HYBRID_SIM_FAULTS";
/// Where the capacity ledger lives when the provider block does not say (the product guide's
/// names, first match wins).
pub const ENV_LEDGER_URLS: [&str; 2] = ["EDGE_CLUSTER_REDIS_URL", "HYBRID_CLOUD_REDIS_URL"];

pub fn schema() -> Schema {
    Schema {
        version: 0,
        block: Block {
            attributes: vec![
                Attr::optional(
                    "state_path",
                    Type::String,
                    "Path of the embedded database holding the sim cloud and the capacity ledger. Default: $HYBRID_STATE_PATH, else $XDG_DATA_HOME/terraform-provider-hybrid/state.db (~/.local/share/... when unset).",
                ),
                Attr::optional(
                    "default_tags",
                    Type::map(Type::String),
                    "Tags added to everything this provider creates; a resource's own tags win.",
                ),
                Attr::optional(
                    "ledger_url",
                    Type::String,
                    "Where edge capacity reservations are kept so that separate workspaces never double-book a node: redis://[user:password@]host:port/db (or rediss://) to share across machines. Default: $EDGE_CLUSTER_REDIS_URL, then $HYBRID_CLOUD_REDIS_URL, else the embedded database at state_path.",
                )
                .sensitive(),
                Attr::optional(
                    "sim_faults",
                    Type::String,
                    "Make the sim cloud fail on demand, e.g. \"create:throttle=0.3,delete:error=1\" (kinds: throttle, error, reject, lost_response). Default: $HYBRID_SIM_FAULTS, else none.",
                ),
            ],
            blocks: vec![crate::observe::metrics_block(), aws_block(), gcp_block(), azure_block()],
            description: "Places workloads across AWS, Azure, GCP, on-prem and edge sites; provisions on the embedded sim cloud by default.",
        },
    }
}

/// `aws {}`: its presence turns the EC2 driver on for workloads placed on aws. Credentials are
/// deliberately not attributes: the SDK's standard chain (AWS_* environment, profiles, roles).
fn aws_block() -> NestedBlock {
    NestedBlock {
        type_name: "aws",
        nesting: Nesting::Single,
        block: Block {
            attributes: vec![
                Attr::optional("endpoint_url", Type::String, "EC2 endpoint to use instead of the real one (e.g. a local moto server). Default: $AWS_ENDPOINT_URL, else AWS's endpoint for the placement's region."),
                Attr::optional("default_image_id", Type::String, "AMI for workloads whose image is not an ami-... id. Default: the newest Amazon Linux 2023 image (owner amazon) for the instance type's architecture, x86_64 preferred."),
                Attr::optional("subnet_id", Type::String, "Subnet to launch into. Default: the default VPC's subnet of the placement's zone."),
                Attr::optional("security_group_ids", Type::list(Type::String), "Security groups for the instances. Default: the VPC's default group."),
                Attr::optional("request_timeout", Type::String, "How long one EC2 API request may take before it is abandoned and retried, as a duration like \"30s\" or \"2m\", from 1s to 10m. A request that timed out may still have been carried out: create finds such an instance by its tags and client token instead of making another. The operation as a whole is bounded by the workload's timeouts. Default: 60s."),
            ],
            blocks: Vec::new(),
            description: "Provision workloads placed on aws as real EC2 instances (region from the placement; credentials from the AWS SDK's standard chain, never from HCL). Without this block aws placements run on the sim cloud. Needs a provider built with the `aws` feature.",
        },
        min_items: 0,
        max_items: 0,
    }
}

/// `gcp {}`: its presence turns the Compute Engine driver on for workloads placed on gcp.
/// Credentials are deliberately not attributes: Application Default Credentials.
fn gcp_block() -> NestedBlock {
    NestedBlock {
        type_name: "gcp",
        nesting: Nesting::Single,
        block: Block {
            attributes: vec![
                Attr::optional("project", Type::String, "Project the instances are created in. Default: $GOOGLE_CLOUD_PROJECT."),
                Attr::optional("endpoint_url", Type::String, "Compute Engine endpoint to use instead of the real one (e.g. a local test server), as scheme://host[:port]. Default: https://compute.googleapis.com."),
                Attr::optional("default_image", Type::String, "Boot image for workloads whose image is not a GCE image path (projects/..., global/... or https://...). Default: projects/debian-cloud/global/images/family/debian-12."),
                Attr::optional("network", Type::String, "Network of the instances' interface. Default: global/networks/default."),
                Attr::optional("subnetwork", Type::String, "Subnetwork of the instances' interface, e.g. regions/europe-west1/subnetworks/apps. Default: the network's subnet in the placement's region."),
                Attr::optional("request_timeout", Type::String, "How long one Compute Engine API request may take before it is abandoned and retried, as a duration like \"30s\" or \"2m\", from 1s to 10m. A request that timed out may still have been carried out: create finds such an instance by its name instead of making another. The operation as a whole is bounded by the workload's timeouts. Default: 60s. Operation waits, which Compute Engine holds for up to two minutes, get at least 150s."),
            ],
            blocks: Vec::new(),
            description: "Provision workloads placed on gcp as real Compute Engine instances (zone from the placement, else the region's first zone; credentials from Application Default Credentials, i.e. $GOOGLE_APPLICATION_CREDENTIALS, gcloud's application-default login or the metadata server, never from HCL). Without this block gcp placements run on the sim cloud. Needs a provider built with the `gcp` feature.",
        },
        min_items: 0,
        max_items: 0,
    }
}

/// `azure {}`: its presence turns the Azure Compute driver on for workloads placed on azure.
/// The service principal is deliberately not an attribute: AZURE_TENANT_ID, AZURE_CLIENT_ID and
/// AZURE_CLIENT_SECRET from the environment.
fn azure_block() -> NestedBlock {
    NestedBlock {
        type_name: "azure",
        nesting: Nesting::Single,
        block: Block {
            attributes: vec![
                Attr::optional("subscription_id", Type::String, "Subscription to create VMs in. Default: $AZURE_SUBSCRIPTION_ID."),
                Attr::required("resource_group", Type::String, "Existing resource group that holds the VMs (and the NICs made for them)."),
                Attr::optional("endpoint_url", Type::String, "Azure Resource Manager endpoint to use instead of https://management.azure.com (e.g. a sovereign cloud or a local test server)."),
                Attr::optional("subnet_id", Type::String, "Subnet resource id (.../virtualNetworks/<vnet>/subnets/<name>): a network interface is made per VM with a name derived from the VM's, and deleted with it. One of subnet_id or network_interface_id is required; subnet_id wins when both are set."),
                Attr::optional("network_interface_id", Type::String, "Existing network interface resource id to attach (a NIC serves one VM, so this suits a single workload); it is left in place when the VM is deleted."),
                Attr::optional("default_image", Type::String, "Image for workloads whose image is not publisher:offer:sku:version or an image resource id. Default: Canonical:ubuntu-24_04-lts:server:latest."),
                Attr::optional("ssh_public_key", Type::String, "OpenSSH public key for the VMs' admin user `hybrid` (password login is off; real Azure requires a key for such Linux VMs)."),
                Attr::optional("request_timeout", Type::String, "How long one Azure Resource Manager (or Entra token) request may take before it is abandoned and retried, as a duration like \"30s\" or \"2m\", from 1s to 10m. A request that timed out may still have been carried out: create finds such a VM by its name instead of making another. The operation as a whole is bounded by the workload's timeouts. Default: 60s."),
            ],
            blocks: Vec::new(),
            description: "Provision workloads placed on azure as Azure VMs through Azure Resource Manager (location from the placement, vmSize from its instance type; service principal from AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET, never from HCL; Entra authority from $AZURE_AUTHORITY_HOST). Without this block azure placements run on the sim cloud. Needs a provider built with the `azure` feature.",
        },
        min_items: 0,
        max_items: 0,
    }
}

/// The provider block's `gcp {}` settings, as plain values (the driver type exists only in
/// builds with the `gcp` feature).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GcpConfig {
    pub project: Option<String>,
    pub endpoint_url: Option<String>,
    pub default_image: Option<String>,
    pub network: Option<String>,
    pub subnetwork: Option<String>,
    /// Bound on one Compute Engine request (`request_timeout`); `None`: the driver's default.
    pub request_timeout: Option<Duration>,
}

/// The provider block's `azure {}` settings, as plain values (the driver type exists only in
/// builds with the `azure` feature).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AzureConfig {
    pub subscription_id: Option<String>,
    pub resource_group: String,
    pub endpoint_url: Option<String>,
    pub subnet_id: Option<String>,
    pub network_interface_id: Option<String>,
    pub default_image: Option<String>,
    pub ssh_public_key: Option<String>,
    /// Bound on one ARM request (`request_timeout`); `None`: the driver's default.
    pub request_timeout: Option<Duration>,
}

/// The provider block's `aws {}` settings, as plain values (the driver type exists only in
/// builds with the `aws` feature).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AwsConfig {
    pub endpoint_url: Option<String>,
    pub default_image_id: Option<String>,
    pub subnet_id: Option<String>,
    pub security_group_ids: Vec<String>,
    /// Bound on one EC2 request (`request_timeout`); `None`: the driver's default.
    pub request_timeout: Option<Duration>,
}

/// The shortest and longest `request_timeout` a cloud block accepts.
pub const REQUEST_TIMEOUT_RANGE: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(600));

/// The provider's settings after ConfigureProvider.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub state_path: PathBuf,
    pub default_tags: BTreeMap<String, String>,
    pub sim_faults: String,
    /// A redis:// URL, or `None` for the embedded database at `state_path`.
    pub ledger_url: Option<String>,
    /// Where to push metrics (`metrics` block or `$HYBRID_PUSHGATEWAY_URL`); `None`: no push.
    pub metrics: Option<crate::observe::MetricsSettings>,
    /// `Some` when the provider block has an `aws {}` block.
    pub aws: Option<AwsConfig>,
    /// `Some` when the provider block has a `gcp {}` block.
    pub gcp: Option<GcpConfig>,
    /// `Some` when the provider block has an `azure {}` block.
    pub azure: Option<AzureConfig>,
}

fn default_state_path() -> PathBuf {
    if let Some(p) = std::env::var_os(ENV_STATE_PATH).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let data_home = std::env::var_os("XDG_DATA_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(std::env::temp_dir);
    data_home.join("terraform-provider-hybrid").join("state.db")
}

/// Checks the block (values may be unknown during validation: skip those).
pub fn validate(config: &Value) -> Diagnostics {
    let mut diags = Diagnostics::new();
    if let Some(spec) = attrs::string(config, "sim_faults") {
        if let Err(err) = clouds::faults::FaultPlan::parse(&spec) {
            diags.push(Diagnostic::attribute_error(
                AttributePath::root().attr("sim_faults"),
                "Invalid sim_faults",
                err.to_string(),
            ));
        }
    }
    if let Some(url) = attrs::string(config, "ledger_url") {
        let lower = url.to_ascii_lowercase();
        if !(lower.starts_with("redis://") || lower.starts_with("rediss://")) {
            diags.push(Diagnostic::attribute_error(
                AttributePath::root().attr("ledger_url"),
                "Invalid ledger_url",
                "ledger_url must start with redis:// or rediss://; leave it out to keep the ledger in the embedded database.",
            ));
        }
    }
    if attrs::get(config, "aws").is_some() && !cfg!(feature = "aws") {
        diags.push(Diagnostic::attribute_error(
            AttributePath::root().attr("aws"),
            "AWS driver not available",
            "This terraform-provider-hybrid binary was built without the aws driver (cargo feature `aws`), so the aws block cannot be honoured. Use a build with --features aws, or remove the block to provision aws placements on the sim cloud.",
        ));
    }
    for cloud in ["aws", "gcp", "azure"] {
        if let Some(block) = attrs::get(config, cloud) {
            let path = AttributePath::root().attr(cloud).attr("request_timeout");
            if let Err(diag) = request_timeout(block, path) {
                diags.push(diag);
            }
        }
    }
    if attrs::get(config, "gcp").is_some() && !cfg!(feature = "gcp") {
        diags.push(Diagnostic::attribute_error(
            AttributePath::root().attr("gcp"),
            "GCP driver not available",
            "This terraform-provider-hybrid binary was built without the gcp driver (cargo feature `gcp`), so the gcp block cannot be honoured. Use a build with --features gcp, or remove the block to provision gcp placements on the sim cloud.",
        ));
    }
    if let Some(block) = attrs::get(config, "gcp") {
        if let Some(url) = attrs::string(block, "endpoint_url") {
            let lower = url.to_ascii_lowercase();
            if !(lower.starts_with("http://") || lower.starts_with("https://")) {
                diags.push(Diagnostic::attribute_error(
                    AttributePath::root().attr("gcp").attr("endpoint_url"),
                    "Invalid endpoint_url",
                    "endpoint_url must start with http:// or https://; leave it out to use Compute Engine's own endpoint.",
                ));
            }
        }
    }
    if let Some(azure) = attrs::get(config, "azure") {
        validate_azure(azure, &mut diags);
    }
    if let Some(path) = attrs::string(config, "state_path") {
        if path.trim().is_empty() {
            diags.push(Diagnostic::attribute_error(
                AttributePath::root().attr("state_path"),
                "Invalid state_path",
                "state_path must not be empty; leave it out to use the default.",
            ));
        }
    }
    crate::observe::validate_metrics(config, &mut diags);
    diags
}

/// A cloud block's `request_timeout`: unset, or a duration within [`REQUEST_TIMEOUT_RANGE`].
fn request_timeout(block: &Value, path: AttributePath) -> Result<Option<Duration>, Diagnostic> {
    let Some(text) = attrs::string(block, "request_timeout") else {
        return Ok(None);
    };
    let (min, max) = REQUEST_TIMEOUT_RANGE;
    match crate::resources::workload::parse_duration(&text) {
        Ok(d) if d >= min && d <= max => Ok(Some(d)),
        Ok(_) => Err(Diagnostic::attribute_error(
            path,
            "Invalid request_timeout",
            format!("request_timeout must be from 1s to 10m, got {text:?}."),
        )),
        Err(why) => Err(Diagnostic::attribute_error(
            path,
            "Invalid request_timeout",
            format!("request_timeout {text:?} is not a duration: {why}."),
        )),
    }
}

fn validate_azure(block: &Value, diags: &mut Diagnostics) {
    let path = AttributePath::root().attr("azure");
    if !cfg!(feature = "azure") {
        diags.push(Diagnostic::attribute_error(
            path,
            "Azure driver not available",
            "This terraform-provider-hybrid binary was built without the azure driver (cargo feature `azure`), so the azure block cannot be honoured. Use a build with --features azure, or remove the block to provision azure placements on the sim cloud.",
        ));
        return;
    }
    let known = |name: &str| !attrs::is_unknown(block, name);
    if known("resource_group")
        && attrs::string(block, "resource_group").is_none_or(|g| g.trim().is_empty())
    {
        diags.push(Diagnostic::attribute_error(
            path.clone().attr("resource_group"),
            "Missing resource_group",
            "The azure block needs resource_group: the existing resource group that holds the VMs.",
        ));
    }
    let set = |name: &str| {
        attrs::string(block, name).is_some_and(|v| !v.trim().is_empty())
            || attrs::is_unknown(block, name)
    };
    if !set("subnet_id") && !set("network_interface_id") {
        diags.push(Diagnostic::attribute_error(
            path.clone(),
            "No network for Azure VMs",
            "An Azure VM needs a network interface: set subnet_id (a NIC is made per VM and deleted with it) or network_interface_id (an existing NIC, for a single workload) in the azure block.",
        ));
    }
    for (name, what) in [
        ("subnet_id", "/subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.Network/virtualNetworks/<vnet>/subnets/<name>"),
        ("network_interface_id", "/subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.Network/networkInterfaces/<name>"),
    ] {
        if let Some(id) = attrs::string(block, name).filter(|v| !v.trim().is_empty()) {
            if !id.starts_with("/subscriptions/") || !id.to_ascii_lowercase().contains("/providers/microsoft.network/") {
                diags.push(Diagnostic::attribute_error(
                    path.clone().attr(name),
                    &format!("Invalid {name}"),
                    format!("{name} must be a resource id of the form {what}."),
                ));
            }
        }
    }
    if let Some(url) = attrs::string(block, "endpoint_url") {
        let lower = url.to_ascii_lowercase();
        if !(lower.starts_with("https://") || lower.starts_with("http://")) {
            diags.push(Diagnostic::attribute_error(
                path.attr("endpoint_url"),
                "Invalid endpoint_url",
                "endpoint_url must be an http:// or https:// URL.",
            ));
        }
    }
}

pub fn settings(config: &Value) -> Result<Settings, Diagnostics> {
    let diags = validate(config);
    if diags.has_errors() {
        return Err(diags);
    }
    Ok(Settings {
        state_path: attrs::string(config, "state_path")
            .map(PathBuf::from)
            .unwrap_or_else(default_state_path),
        default_tags: attrs::string_map(config, "default_tags"),
        sim_faults: attrs::string(config, "sim_faults")
            .or_else(|| std::env::var(ENV_SIM_FAULTS).ok())
            .unwrap_or_default(),
        aws: attrs::get(config, "aws").map(|block| AwsConfig {
            endpoint_url: attrs::string(block, "endpoint_url"),
            default_image_id: attrs::string(block, "default_image_id"),
            subnet_id: attrs::string(block, "subnet_id"),
            security_group_ids: attrs::strings(block, "security_group_ids"),
            // Validated above: an invalid value never gets here.
            request_timeout: request_timeout(block, AttributePath::root()).ok().flatten(),
        }),
        gcp: attrs::get(config, "gcp").map(|block| GcpConfig {
            project: attrs::string(block, "project"),
            endpoint_url: attrs::string(block, "endpoint_url"),
            default_image: attrs::string(block, "default_image"),
            network: attrs::string(block, "network"),
            subnetwork: attrs::string(block, "subnetwork"),
            request_timeout: request_timeout(block, AttributePath::root()).ok().flatten(),
        }),
        azure: attrs::get(config, "azure").map(|block| AzureConfig {
            subscription_id: attrs::string(block, "subscription_id"),
            resource_group: attrs::string(block, "resource_group").unwrap_or_default(),
            endpoint_url: attrs::string(block, "endpoint_url"),
            subnet_id: attrs::string(block, "subnet_id"),
            network_interface_id: attrs::string(block, "network_interface_id"),
            default_image: attrs::string(block, "default_image"),
            ssh_public_key: attrs::string(block, "ssh_public_key"),
            request_timeout: request_timeout(block, AttributePath::root()).ok().flatten(),
        }),
        ledger_url: attrs::string(config, "ledger_url").or_else(|| {
            ENV_LEDGER_URLS
                .iter()
                .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        }),
        metrics: crate::observe::metrics_settings(config),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_aws_block() -> Value {
        let aws = Value::object([
            ("endpoint_url", Value::string("http://127.0.0.1:5000")),
            ("default_image_id", Value::Null),
            ("subnet_id", Value::Null),
            ("security_group_ids", Value::Null),
            ("request_timeout", Value::Null),
        ]);
        Value::object([("aws", aws)])
    }

    /// A `cloud {}` block with just `request_timeout` (aws and gcp need nothing else).
    fn with_request_timeout(cloud: &str, text: &str) -> Value {
        Value::object([(
            cloud.to_string(),
            Value::object([("request_timeout", Value::string(text))]),
        )])
    }

    fn configured_request_timeout(config: &Value, cloud: &str) -> Option<Duration> {
        let settings = settings(config).expect("valid");
        match cloud {
            "aws" => settings.aws.and_then(|a| a.request_timeout),
            _ => settings.gcp.and_then(|g| g.request_timeout),
        }
    }

    #[test]
    fn request_timeout_is_a_bounded_duration_checked_on_its_path() {
        for cloud in ["aws", "gcp", "azure"] {
            check_request_timeouts(cloud);
        }
    }

    fn check_request_timeouts(cloud: &str) {
        let path = AttributePath::root().attr(cloud).attr("request_timeout");
        for (text, want) in [
            ("1s", Some(1)),
            ("30s", Some(30)),
            ("2m", Some(120)),
            ("10m", Some(600)),
            ("0.5s", None),
            ("11m", None),
            ("30", None),
            ("soon", None),
            ("", None),
        ] {
            let config = with_request_timeout(cloud, text);
            let diags = validate(&config);
            let refused_on_path = diags
                .0
                .iter()
                .any(|d| d.path == Some(path.clone()) && d.summary.contains("request_timeout"));
            match want {
                Some(secs) => {
                    assert!(!refused_on_path, "{cloud} {text}: {:?}", diags.0);
                    let built = (cloud == "aws" && cfg!(feature = "aws"))
                        || (cloud == "gcp" && cfg!(feature = "gcp"));
                    if built {
                        assert_eq!(
                            configured_request_timeout(&config, cloud),
                            Some(Duration::from_secs(secs)),
                            "{cloud} {text}"
                        );
                    }
                }
                None => assert!(refused_on_path, "{cloud} {text} accepted: {:?}", diags.0),
            }
        }
        if cfg!(feature = "aws") {
            let aws = settings(&with_aws_block())
                .expect("valid")
                .aws
                .expect("aws");
            assert_eq!(aws.request_timeout, None, "unset: the driver's default");
        }
    }

    #[test]
    fn the_aws_block_is_read_into_settings_or_refused_on_its_path() {
        let config = with_aws_block();
        if cfg!(feature = "aws") {
            let settings = settings(&config).expect("valid settings");
            assert_eq!(
                settings.aws.and_then(|a| a.endpoint_url).as_deref(),
                Some("http://127.0.0.1:5000")
            );
        } else {
            let diags = validate(&config);
            assert!(diags.has_errors());
            assert_eq!(diags.0[0].path, Some(AttributePath::root().attr("aws")));
            assert!(diags.0[0].detail.contains("built without the aws driver"));
        }
    }

    fn with_gcp_block(endpoint: &str) -> Value {
        let gcp = Value::object([
            ("project", Value::string("acme-prod")),
            ("endpoint_url", Value::string(endpoint)),
            ("default_image", Value::Null),
            ("network", Value::Null),
            ("subnetwork", Value::Null),
        ]);
        Value::object([("gcp", gcp)])
    }

    #[test]
    fn the_gcp_block_is_read_into_settings_or_refused_on_its_path() {
        let config = with_gcp_block("http://127.0.0.1:8080");
        if cfg!(feature = "gcp") {
            let settings = settings(&config).expect("valid");
            let gcp = settings.gcp.expect("gcp block");
            assert_eq!(gcp.project.as_deref(), Some("acme-prod"));
            assert_eq!(gcp.endpoint_url.as_deref(), Some("http://127.0.0.1:8080"));
            let diags = validate(&with_gcp_block("127.0.0.1:8080"));
            assert_eq!(
                diags.0[0].path,
                Some(AttributePath::root().attr("gcp").attr("endpoint_url"))
            );
        } else {
            let diags = settings(&config).expect_err("refused");
            assert!(diags
                .0
                .iter()
                .any(|d| d.path == Some(AttributePath::root().attr("gcp"))
                    && d.detail.contains("built without the gcp driver")));
        }
        assert_eq!(
            settings(&Value::object([("gcp", Value::Null)]))
                .expect("valid")
                .gcp,
            None
        );
    }

    fn azure_block(group: Option<&str>, subnet: Option<&str>) -> Value {
        let text = |v: Option<&str>| v.map(Value::string).unwrap_or(Value::Null);
        let azure = Value::object([
            ("subscription_id", Value::Null),
            ("resource_group", text(group)),
            ("endpoint_url", Value::string("http://127.0.0.1:4000")),
            ("subnet_id", text(subnet)),
            ("network_interface_id", Value::Null),
            ("default_image", Value::Null),
            ("ssh_public_key", Value::Null),
        ]);
        Value::object([("azure", azure)])
    }

    const SUBNET: &str =
        "/subscriptions/s/resourceGroups/n/providers/Microsoft.Network/virtualNetworks/v/subnets/d";

    #[test]
    fn the_azure_block_is_read_checked_or_refused_on_its_path() {
        let good = azure_block(Some("rg"), Some(SUBNET));
        if cfg!(feature = "azure") {
            let settings = settings(&good).expect("valid settings");
            let azure = settings.azure.expect("azure settings");
            assert_eq!(azure.resource_group, "rg");
            assert_eq!(azure.subnet_id.as_deref(), Some(SUBNET));
            let cases = [
                (azure_block(None, Some(SUBNET)), "resource_group"),
                (azure_block(Some("rg"), None), "network_interface_id"),
                (azure_block(Some("rg"), Some("subnet-1")), "resource id"),
            ];
            for (config, needle) in cases {
                let diags = validate(&config);
                assert!(diags.has_errors(), "{needle}");
                assert!(
                    diags.0.iter().any(|d| d.detail.contains(needle)),
                    "{needle}: {:?}",
                    diags.0
                );
            }
        } else {
            let diags = validate(&good);
            assert!(diags.has_errors());
            assert_eq!(diags.0[0].path, Some(AttributePath::root().attr("azure")));
            assert!(diags.0[0].detail.contains("built without the azure driver"));
        }
    }

    #[test]
    fn no_aws_block_means_no_aws_driver() {
        let settings = settings(&Value::object([("aws", Value::Null)])).expect("valid");
        assert_eq!(settings.aws, None);
    }
}
