//! The AWS EC2 driver (cargo feature `aws`): one instance per workload, made with RunInstances.
//!
//! Credentials come only from the SDK's standard chain (AWS_* environment, shared config and
//! credentials files, web identity, container and instance metadata); `AWS_ENDPOINT_URL` or
//! [`AwsSettings::endpoint_url`] point it at another EC2 endpoint (the tests use moto). Nothing
//! here formats a credential: errors carry the EC2 error code and message only.
//!
//! Idempotency has two layers, because one is not enough everywhere:
//! - every instance carries [`TAG_IDEMPOTENCY_KEY`]; `create` first looks for a live instance
//!   with that tag and adopts it. This is what makes a retry after a lost response safe on
//!   servers that ignore client tokens (moto) and across separate terraform runs.
//! - RunInstances gets a ClientToken derived from the same key, so that on real EC2 two racing
//!   attempts (before the first one's tags are visible to DescribeInstances) still make one
//!   instance. EC2 remembers a token for at least 24 hours after its instance terminated and
//!   answers a repeat with that instance, so tokens come in generations (`client_token_for`):
//!   `create` walks them from 0 and moves past every token whose instance is terminated or
//!   that was first used with other parameters (`next_token_step`). Each step depends only on
//!   what EC2 shows, so racing attempts and a re-run after a killed apply agree on the token.
//!
//! Instance ids are `region/i-...`: the trait reads by id alone, and EC2 ids are per region.
//! A bare `i-...` (import) is looked up in the default region (`AWS_REGION`).
//!
//! The workload description the resource layer stores for import is kept in tags
//! `hybrid:meta-0`, `hybrid:meta-1`, ... (EC2 tag values hold at most 256 characters).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::operation::run_instances::RunInstancesError;
use aws_sdk_ec2::types::{Filter, InstanceType, Placement, ResourceType, Tag, TagSpecification};
use tokio::sync::Mutex;

use crate::meta_tags;
use crate::retry::{Pacer, RetryPolicy, StopSignal};
use crate::{
    managed_tags, Driver, DriverError, Instance, InstanceSpec, Metadata, MANAGED_BY_VALUE,
    TAG_MANAGED_BY, TAG_WORKLOAD_ID,
};

const TARGET: &str = "aws";
/// Prefix of the tags carrying the stored workload description (see [`crate::meta_tags`]).
pub use crate::meta_tags::TAG_META_PREFIX;
/// Our tags for the idempotency key and the workload name (the latter marks a `Name` tag with
/// the same value as ours).
pub use crate::{TAG_IDEMPOTENCY_KEY, TAG_NAME};
/// EC2's limit on a tag value, in characters.
const TAG_VALUE_MAX: usize = 256;
/// Tags the description may use (EC2 allows 50 per resource; the rest is for users and us).
const META_TAGS_MAX: usize = 24;
/// States in which an instance still exists for us (terminated and shutting-down are gone).
const LIVE_STATES: [&str; 4] = ["pending", "running", "stopping", "stopped"];
/// States of an instance that is gone or going: a client token that names one is spent.
const GONE_STATES: [&str; 2] = ["shutting-down", "terminated"];
/// How many client-token generations `create` walks before giving up (see [`next_token_step`]).
pub const MAX_TOKEN_GENERATIONS: u32 = 32;
/// An instance RunInstances names but DescribeInstances does not know, launched longer ago than
/// this, was terminated and has aged out of DescribeInstances (about an hour after termination);
/// a fresh one can be invisible for seconds (eventual consistency), never for this long.
const AGED_OUT_AFTER: Duration = Duration::from_secs(15 * 60);
/// EC2's answer to a client token reused with other parameters.
const IDEMPOTENT_PARAMETER_MISMATCH: &str = "IdempotentParameterMismatch";
/// Where an unset region falls back to (for bare-id lookups).
const FALLBACK_REGION: &str = "us-east-1";

/// What the provider's `aws {}` block and the environment configure.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AwsSettings {
    /// EC2 endpoint override (else `AWS_ENDPOINT_URL` or the real endpoint).
    pub endpoint_url: Option<String>,
    /// AMI used when a workload names none.
    pub default_image_id: Option<String>,
    pub subnet_id: Option<String>,
    pub security_group_ids: Vec<String>,
    /// Region for ids without one and for lookups by workload id (else `AWS_REGION`,
    /// `AWS_DEFAULT_REGION`, then us-east-1).
    pub default_region: Option<String>,
    /// Bound on one EC2 request (else [`DEFAULT_REQUEST_TIMEOUT`]). A request that times out
    /// is `Unavailable`, so retried; `create` then finds what it may have made.
    pub request_timeout: Option<Duration>,
}

/// How long one EC2 request may take when the provider block does not say.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The EC2 driver; cheap to share, one SDK client per region created on first use.
pub struct AwsDriver {
    settings: AwsSettings,
    clients: Mutex<HashMap<String, aws_sdk_ec2::Client>>,
    /// Resolved default AMIs per (region, architecture).
    images: Mutex<HashMap<(String, String), String>>,
    stop: StopSignal,
    /// How waits for `running`/`terminated` poll.
    poll: RetryPolicy,
}

impl AwsDriver {
    pub fn new(settings: AwsSettings, stop: StopSignal) -> AwsDriver {
        // The SDK's HTTPS client uses rustls with aws-lc-rs, the workspace's one provider;
        // installing it as the process default keeps every other rustls user on it too.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        AwsDriver {
            settings,
            clients: Mutex::new(HashMap::new()),
            images: Mutex::new(HashMap::new()),
            stop,
            poll: RetryPolicy {
                initial_delay: Duration::from_millis(250),
                max_delay: Duration::from_secs(5),
                multiplier: 1.5,
                timeout: Duration::from_secs(20 * 60),
            },
        }
    }

    fn default_region(&self) -> String {
        self.settings
            .default_region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| FALLBACK_REGION.to_string())
    }

    async fn client(&self, region: &str) -> aws_sdk_ec2::Client {
        let mut clients = self.clients.lock().await;
        if let Some(c) = clients.get(region) {
            return c.clone();
        }
        // Retries are ours (retry::with_backoff at the resource layer, honouring the timeouts
        // block and StopProvider), so the SDK makes one attempt per call.
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_string()))
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .operation_attempt_timeout(
                        self.settings
                            .request_timeout
                            .unwrap_or(DEFAULT_REQUEST_TIMEOUT),
                    )
                    .build(),
            );
        if let Some(url) = &self.settings.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let client = aws_sdk_ec2::Client::new(&loader.load().await);
        clients.insert(region.to_string(), client.clone());
        client
    }

    /// `(region, ec2 id)` of one of our instance ids.
    fn split_id(&self, instance_id: &str) -> (String, String) {
        match instance_id.split_once('/') {
            Some((region, id)) => (region.to_string(), id.to_string()),
            None => (self.default_region(), instance_id.to_string()),
        }
    }

    /// Live instances in `region` matching every tag in `tags`.
    async fn describe_tagged(
        &self,
        region: &str,
        operation: &'static str,
        tags: &[(&str, &str)],
    ) -> Result<Vec<Instance>, DriverError> {
        let filters: Vec<(String, &str)> =
            tags.iter().map(|(k, v)| (format!("tag:{k}"), *v)).collect();
        self.describe_live(region, operation, &filters).await
    }

    /// Live instances in `region` matching every `(filter name, value)` in `filters`.
    async fn describe_live(
        &self,
        region: &str,
        operation: &'static str,
        filters: &[(String, &str)],
    ) -> Result<Vec<Instance>, DriverError> {
        let client = self.client(region).await;
        let mut req = client.describe_instances().filters(
            Filter::builder()
                .name("instance-state-name")
                .set_values(Some(LIVE_STATES.iter().map(|s| s.to_string()).collect()))
                .build(),
        );
        for (name, value) in filters {
            req = req.filters(Filter::builder().name(name).values(*value).build());
        }
        let mut out = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let page = req
                .clone()
                .set_next_token(next.clone())
                .send()
                .await
                .map_err(|e| sdk_error(operation, "DescribeInstances", e))?;
            for reservation in page.reservations() {
                for inst in reservation.instances() {
                    if let Some(i) = to_instance(region, inst) {
                        out.push(i);
                    }
                }
            }
            next = page
                .next_token()
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if next.is_none() {
                break;
            }
        }
        Ok(out)
    }

    /// The instance by EC2 id, including terminated ones (for waits); `None` when unknown.
    async fn describe_one(
        &self,
        region: &str,
        ec2_id: &str,
        operation: &'static str,
    ) -> Result<Option<Described>, DriverError> {
        let client = self.client(region).await;
        let resp = match client
            .describe_instances()
            .instance_ids(ec2_id)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) if error_code(&e).is_some_and(is_not_found_code) => return Ok(None),
            Err(e) => return Err(sdk_error(operation, "DescribeInstances", e)),
        };
        let found = resp
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .find(|i| i.instance_id() == Some(ec2_id));
        Ok(found.and_then(|i| {
            Some(Described {
                instance: to_instance(region, i)?,
                state: state_name(i),
                raw_tags: raw_tags(i),
            })
        }))
    }

    /// Polls until the instance reaches `want` (or is gone when `want` is terminated).
    async fn wait_for(
        &self,
        region: &str,
        ec2_id: &str,
        want: &str,
        operation: &'static str,
    ) -> Result<Option<Instance>, DriverError> {
        let mut pacer = Pacer::new(&self.poll, &self.stop, TARGET, operation);
        loop {
            match self.describe_one(region, ec2_id, operation).await? {
                None if want == "terminated" => return Ok(None),
                None => {
                    // Not visible yet right after RunInstances (eventual consistency): keep polling.
                }
                Some(d) if d.state == want => return Ok(Some(d.instance)),
                Some(Described { state, .. })
                    if want != "terminated"
                        && (state == "terminated" || state == "shutting-down") =>
                {
                    return Err(DriverError::Rejected {
                        target: TARGET.into(),
                        operation,
                        message: format!("instance {ec2_id} went to {state} instead of {want} (see its state reason in EC2)"),
                    });
                }
                Some(_) => {}
            }
            pacer.pause().await?;
        }
    }

    /// Starts an adopted instance that is stopped (waiting first for one that is stopping): a
    /// create ends with the instance running, and a stopped instance never starts by itself, so
    /// waiting for it would only end with the create's timeout. An instance an interrupted
    /// apply made and state never recorded may have been stopped since (by hand, or by a
    /// scheduler that stops idle instances); starting it converges, and makes nothing twice.
    async fn start_if_stopped(
        &self,
        region: &str,
        ec2_id: &str,
        state: &str,
    ) -> Result<(), DriverError> {
        match state {
            "stopping" => {
                self.wait_for(region, ec2_id, "stopped", "create").await?;
            }
            "stopped" => {}
            _ => return Ok(()),
        }
        tracing::info!(region = %region, instance = %ec2_id, "starting the adopted instance, which was stopped");
        self.client(region)
            .await
            .start_instances()
            .instance_ids(ec2_id)
            .send()
            .await
            .map_err(|e| sdk_error("create", "StartInstances", e))?;
        Ok(())
    }

    /// The AMI for this spec: an explicit `ami-...` image, else the provider default, else the
    /// newest Amazon Linux 2023 image for the instance type's architecture.
    async fn image_for(&self, region: &str, spec: &InstanceSpec) -> Result<String, DriverError> {
        if let Some(image) = spec.image.as_deref().filter(|i| i.starts_with("ami-")) {
            return Ok(image.to_string());
        }
        if let Some(image) = &self.settings.default_image_id {
            return Ok(image.clone());
        }
        let client = self.client(region).await;
        let arch = match &spec.instance_type {
            Some(t) => {
                let resp = client
                    .describe_instance_types()
                    .instance_types(InstanceType::from(t.as_str()))
                    .send()
                    .await
                    .map_err(|e| sdk_error("create", "DescribeInstanceTypes", e))?;
                let archs: Vec<String> = resp
                    .instance_types()
                    .iter()
                    .filter_map(|t| t.processor_info())
                    .flat_map(|p| p.supported_architectures())
                    .map(|a| a.as_str().to_string())
                    .collect();
                choose_architecture(&archs)
            }
            None => "x86_64".to_string(),
        };
        let key = (region.to_string(), arch.clone());
        if let Some(image) = self.images.lock().await.get(&key) {
            return Ok(image.clone());
        }
        let resp = client
            .describe_images()
            .owners("amazon")
            .filters(
                Filter::builder()
                    .name("name")
                    .values(format!("al2023-ami-2023.*-{arch}"))
                    .build(),
            )
            .filters(
                Filter::builder()
                    .name("architecture")
                    .values(arch.clone())
                    .build(),
            )
            .filters(Filter::builder().name("state").values("available").build())
            .send()
            .await
            .map_err(|e| sdk_error("create", "DescribeImages", e))?;
        let newest = resp
            .images()
            .iter()
            .filter_map(|i| Some((i.creation_date().unwrap_or_default(), i.image_id()?)))
            .max()
            .map(|(_, id)| id.to_string());
        let Some(image) = newest else {
            return Err(DriverError::Rejected {
                target: TARGET.into(),
                operation: "create",
                message: format!("DescribeImages found no Amazon Linux 2023 {arch} image owned by amazon in {region}; set image = \"ami-...\" on the workload or default_image_id in the provider's aws block"),
            });
        };
        self.images.lock().await.insert(key, image.clone());
        Ok(image)
    }

    /// RunInstances for `spec`, walking the client-token generations (see [`next_token_step`]):
    /// returns the EC2 id of the instance this key's current generation names, new or not.
    async fn launch(&self, region: &str, spec: &InstanceSpec) -> Result<String, DriverError> {
        let image = self.image_for(region, spec).await?;
        let mut generation = 0;
        loop {
            let token = client_token_for(&spec.idempotency_key, generation);
            let (answer, named) = match self.run_instance(region, spec, &image, &token).await {
                Ok(Launched { ec2_id, .. }) if ec2_id.is_empty() => {
                    return Err(DriverError::Unavailable {
                        target: TARGET.into(),
                        operation: "create",
                        message: "EC2 RunInstances: the answer named no instance".into(),
                    })
                }
                Ok(Launched {
                    ec2_id,
                    state,
                    launched_ago,
                }) => {
                    let described = if GONE_STATES.contains(&state.as_str()) {
                        None
                    } else {
                        self.describe_one(region, &ec2_id, "create")
                            .await?
                            .map(|d| d.state)
                    };
                    let answer = classify_token_answer(&state, described.as_deref(), launched_ago);
                    (answer, Some(ec2_id))
                }
                Err(e) if error_code(&e) == Some(IDEMPOTENT_PARAMETER_MISMATCH) => {
                    // The token was first used with other parameters (a newer default image,
                    // changed tags): ours only if a live instance still holds it.
                    let holder = self
                        .describe_live(region, "create", &[("client-token".to_string(), &token)])
                        .await?
                        .into_iter()
                        .map(|i| self.split_id(&i.instance_id).1)
                        .min();
                    let answer = TokenAnswer::Mismatch {
                        holder_live: holder.is_some(),
                    };
                    (answer, holder)
                }
                Err(e) => return Err(sdk_error("create", "RunInstances", e)),
            };
            match (next_token_step(generation, answer), named) {
                (TokenStep::Adopt, Some(ec2_id)) => {
                    tracing::info!(region = %region, instance = %ec2_id, token_generation = generation, "EC2 instance launched or found by its client token");
                    return Ok(ec2_id);
                }
                (TokenStep::Adopt, None) => {
                    return Err(DriverError::Unavailable {
                        target: TARGET.into(),
                        operation: "create",
                        message: "EC2 RunInstances: the answer named no instance".into(),
                    })
                }
                (TokenStep::Next(next), named) => {
                    tracing::info!(region = %region, token_generation = generation, instance = ?named, answer = ?answer, "client token already spent; trying the next generation");
                    generation = next;
                }
                (TokenStep::GiveUp, _) => {
                    return Err(DriverError::Rejected {
                        target: TARGET.into(),
                        operation: "create",
                        message: format!(
                            "EC2 RunInstances: the first {MAX_TOKEN_GENERATIONS} client tokens of this workload all belong to instances that were terminated or launched with other parameters (EC2 remembers a token for at least 24 hours after its instance terminated); apply again later, or rename the workload"
                        ),
                    })
                }
            }
        }
    }

    /// One RunInstances call with `token`.
    async fn run_instance(
        &self,
        region: &str,
        spec: &InstanceSpec,
        image: &str,
        token: &str,
    ) -> Result<Launched, SdkError<RunInstancesError, aws_sdk_ec2::config::http::HttpResponse>>
    {
        let client = self.client(region).await;
        let tags = instance_tags(spec);
        let mut req = client
            .run_instances()
            .image_id(image)
            .min_count(1)
            .max_count(1)
            .client_token(token)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Instance)
                    .set_tags(Some(tags.iter().map(|(k, v)| tag(k, v)).collect()))
                    .build(),
            );
        if let Some(t) = &spec.instance_type {
            req = req.instance_type(InstanceType::from(t.as_str()));
        }
        if let Some(zone) = &spec.zone {
            req = req.placement(Placement::builder().availability_zone(zone).build());
        }
        if let Some(subnet) = &self.settings.subnet_id {
            req = req.subnet_id(subnet);
        }
        if !self.settings.security_group_ids.is_empty() {
            req = req.set_security_group_ids(Some(self.settings.security_group_ids.clone()));
        }
        let resp = req.send().await?;
        let first = resp.instances().first();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        Ok(Launched {
            ec2_id: first
                .and_then(|i| i.instance_id())
                .unwrap_or_default()
                .to_string(),
            state: first.map(state_name).unwrap_or_default(),
            launched_ago: first
                .and_then(|i| i.launch_time())
                .and_then(|t| u64::try_from(now - t.secs()).ok())
                .map(Duration::from_secs),
        })
    }

    async fn create_tags(
        &self,
        region: &str,
        ec2_id: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), DriverError> {
        if tags.is_empty() {
            return Ok(());
        }
        let client = self.client(region).await;
        client
            .create_tags()
            .resources(ec2_id)
            .set_tags(Some(tags.iter().map(|(k, v)| tag(k, v)).collect()))
            .send()
            .await
            .map_err(|e| sdk_error("update", "CreateTags", e))?;
        Ok(())
    }
}

/// One instance as DescribeInstances showed it.
struct Described {
    instance: Instance,
    /// EC2's state name, terminated included.
    state: String,
    /// Every tag as EC2 has it (the instance's view hides the description and our Name).
    raw_tags: BTreeMap<String, String>,
}

impl Described {
    fn is_live(&self) -> bool {
        LIVE_STATES.contains(&self.state.as_str())
    }
}

fn raw_tags(i: &aws_sdk_ec2::types::Instance) -> BTreeMap<String, String> {
    i.tags()
        .iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build()
}

fn state_name(i: &aws_sdk_ec2::types::Instance) -> String {
    i.state()
        .and_then(|s| s.name())
        .map(|n| n.as_str().to_string())
        .unwrap_or_default()
}

/// x86_64 when the type supports it (the widest choice of images), else arm64, else the first.
pub fn choose_architecture(supported: &[String]) -> String {
    for preferred in ["x86_64", "arm64"] {
        if supported.iter().any(|a| a == preferred) {
            return preferred.to_string();
        }
    }
    supported
        .first()
        .cloned()
        .unwrap_or_else(|| "x86_64".to_string())
}

/// The tags an instance is created with: the user's (with the provider's defaults already
/// merged in by the resource layer), ours, the idempotency key, a `Name` (unless the user set
/// one) and the stored description.
pub fn instance_tags(spec: &InstanceSpec) -> BTreeMap<String, String> {
    let mut tags = desired_tags(
        &spec.tags,
        &spec.workload_id,
        &spec.name,
        spec.metadata.as_ref(),
    );
    tags.insert(TAG_IDEMPOTENCY_KEY.into(), spec.idempotency_key.clone());
    tags
}

/// Everything but the idempotency key (which update keeps as it is).
fn desired_tags(
    user: &BTreeMap<String, String>,
    workload_id: &str,
    name: &str,
    metadata: Option<&Metadata>,
) -> BTreeMap<String, String> {
    let user = crate::user_tags(user);
    let mut tags = managed_tags(&user, workload_id);
    if !user.contains_key("Name") {
        tags.insert("Name".into(), name.to_string());
        tags.insert(TAG_NAME.into(), name.to_string());
    }
    if let Some(meta) = metadata {
        tags.extend(meta_tags::encode(meta, META_TAGS_MAX, TAG_VALUE_MAX));
    }
    tags
}

/// What [`update_tags`](Driver::update_tags) sends: tags to set (new or changed) and keys to
/// delete (present but no longer wanted; our idempotency key always stays).
pub fn tag_changes(
    current: &BTreeMap<String, String>,
    desired: &BTreeMap<String, String>,
) -> (BTreeMap<String, String>, Vec<String>) {
    let set = desired
        .iter()
        .filter(|(k, v)| current.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let delete = current
        .keys()
        .filter(|k| !desired.contains_key(*k) && k.as_str() != TAG_IDEMPOTENCY_KEY)
        .cloned()
        .collect();
    (set, delete)
}

/// Our [`Instance`] from EC2's; `None` for an instance without an id.
fn to_instance(region: &str, i: &aws_sdk_ec2::types::Instance) -> Option<Instance> {
    let ec2_id = i.instance_id()?;
    let all = raw_tags(i);
    let metadata = meta_tags::decode(&all);
    let mut tags: BTreeMap<String, String> = all
        .iter()
        .filter(|(k, _)| !k.starts_with(TAG_META_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // A Name we added ourselves is not a user tag (it would show as drift in tags_all).
    if tags.contains_key(TAG_NAME) && tags.get("Name") == tags.get(TAG_NAME) {
        tags.remove("Name");
    }
    Some(Instance {
        instance_id: format!("{region}/{ec2_id}"),
        workload_id: all.get(TAG_WORKLOAD_ID).cloned().unwrap_or_default(),
        idempotency_key: all.get(TAG_IDEMPOTENCY_KEY).cloned().unwrap_or_default(),
        name: all
            .get(TAG_NAME)
            .or_else(|| all.get("Name"))
            .cloned()
            .unwrap_or_default(),
        provider: TARGET.into(),
        region: region.to_string(),
        zone: i
            .placement()
            .and_then(|p| p.availability_zone())
            .map(str::to_string),
        instance_type: i.instance_type().map(|t| t.as_str().to_string()),
        node: None,
        image: i.image_id().map(str::to_string),
        private_ip: i.private_ip_address().unwrap_or_default().to_string(),
        status: state_name(i),
        tags,
        metadata,
    })
}

/// EC2's limit on a ClientToken, in ASCII characters.
const CLIENT_TOKEN_MAX: usize = 64;

/// The RunInstances ClientToken of generation 0 (at most 64 ASCII characters) from the
/// idempotency key: the form every release so far has used.
pub fn client_token(idempotency_key: &str) -> String {
    let cleaned: String = idempotency_key
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    let token = format!("hybrid-{cleaned}");
    if token.len() <= CLIENT_TOKEN_MAX && cleaned == idempotency_key && !cleaned.is_empty() {
        return token;
    }
    // Anything longer or unusual: a digest keeps it stable and within the limit.
    digest_token(idempotency_key, CLIENT_TOKEN_MAX)
}

/// `hybrid-` and as much of the key's SHA-256 (hex, at most 48 digits) as fits in `max`.
fn digest_token(idempotency_key: &str, max: usize) -> String {
    let digest = crate::sha256_hex(idempotency_key, 24);
    let room = max.saturating_sub("hybrid-".len()).min(digest.len());
    format!("hybrid-{}", &digest[..room])
}

/// The ClientToken of `generation`: generation 0 is [`client_token`]; later ones add `.gN`
/// (a `.` never occurs in generation 0, so no key's later token equals another key's first).
pub fn client_token_for(idempotency_key: &str, generation: u32) -> String {
    let base = client_token(idempotency_key);
    if generation == 0 {
        return base;
    }
    let suffix = format!(".g{generation}");
    if base.len() + suffix.len() <= CLIENT_TOKEN_MAX {
        return format!("{base}{suffix}");
    }
    let room = CLIENT_TOKEN_MAX - suffix.len();
    format!("{}{suffix}", digest_token(idempotency_key, room))
}

/// What RunInstances with one generation's client token told us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenAnswer {
    /// It named an instance that exists (pending, running, stopping, stopped), or one launched
    /// so recently that DescribeInstances may not show it yet: ours.
    Live,
    /// It named an instance that is terminated or shutting down, or that DescribeInstances has
    /// forgotten long after its launch: EC2 replayed a finished launch, the token is spent.
    Spent,
    /// `IdempotentParameterMismatch`: the token was first used with other parameters;
    /// `holder_live` says whether a live instance carries the token.
    Mismatch { holder_live: bool },
}

/// What `create` does next with the client-token walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenStep {
    /// The instance the token names (or that holds it) is ours.
    Adopt,
    /// Try RunInstances with this generation's token.
    Next(u32),
    /// [`MAX_TOKEN_GENERATIONS`] tokens are spent: stop with a diagnostic.
    GiveUp,
}

/// The client-token walk: generation `g`'s token answered `answer`. EC2 remembers a token (and
/// replays its first answer) for at least 24 hours after the instance terminated, so a
/// workload re-created within that time must move on to a fresh token; every step depends only
/// on what EC2 shows, so racing attempts and a re-run after a killed apply walk to the same
/// token and make one instance.
pub fn next_token_step(generation: u32, answer: TokenAnswer) -> TokenStep {
    match answer {
        TokenAnswer::Live | TokenAnswer::Mismatch { holder_live: true } => TokenStep::Adopt,
        TokenAnswer::Spent | TokenAnswer::Mismatch { holder_live: false } => {
            let next = generation.saturating_add(1);
            if next >= MAX_TOKEN_GENERATIONS {
                TokenStep::GiveUp
            } else {
                TokenStep::Next(next)
            }
        }
    }
}

/// Reads a RunInstances answer: the state it gave, the state DescribeInstances shows now
/// (`None`: unknown to it) and how long ago the instance was launched.
pub fn classify_token_answer(
    answered_state: &str,
    described_state: Option<&str>,
    launched_ago: Option<Duration>,
) -> TokenAnswer {
    let gone = |state: &str| GONE_STATES.contains(&state);
    if gone(answered_state) {
        return TokenAnswer::Spent;
    }
    match described_state {
        Some(state) if gone(state) => TokenAnswer::Spent,
        Some(_) => TokenAnswer::Live,
        None if launched_ago.is_some_and(|ago| ago > AGED_OUT_AFTER) => TokenAnswer::Spent,
        None => TokenAnswer::Live,
    }
}

/// The part of a RunInstances answer the client-token walk reads.
struct Launched {
    ec2_id: String,
    /// The state in the answer (EC2 replays an earlier launch with the instance's state).
    state: String,
    /// Since the instance's launch time, when the answer has one.
    launched_ago: Option<Duration>,
}

fn is_not_found_code(code: &str) -> bool {
    matches!(
        code,
        "InvalidInstanceID.NotFound" | "InvalidInstanceID.Malformed"
    )
}

fn error_code<E: ProvideErrorMetadata>(err: &SdkError<E>) -> Option<&str> {
    match err {
        SdkError::ServiceError(e) => e.err().code(),
        _ => None,
    }
}

/// Maps one EC2 answer to a [`DriverError`]: throttling and server errors are retryable,
/// everything else is final and carries EC2's code and message. `call` names the EC2 action.
pub fn classify(
    operation: &'static str,
    call: &str,
    http_status: Option<u16>,
    code: Option<&str>,
    message: Option<&str>,
) -> DriverError {
    let code_text = code.unwrap_or("UnknownError");
    let text = match message.filter(|m| !m.is_empty()) {
        Some(m) => format!("EC2 {call}: {code_text}: {m}"),
        None => format!(
            "EC2 {call}: {code_text} (HTTP {})",
            http_status.unwrap_or(0)
        ),
    };
    let throttled = matches!(
        code,
        Some(
            "RequestLimitExceeded"
                | "Throttling"
                | "ThrottlingException"
                | "TooManyRequestsException"
                | "RequestThrottled"
                | "SlowDown"
        )
    ) || http_status == Some(429);
    if throttled {
        return DriverError::Throttled {
            target: TARGET.into(),
            operation,
            message: text,
        };
    }
    let unavailable = matches!(
        code,
        Some("InternalError" | "InternalFailure" | "ServiceUnavailable" | "Unavailable")
    ) || http_status.is_some_and(|s| s >= 500);
    if unavailable {
        return DriverError::Unavailable {
            target: TARGET.into(),
            operation,
            message: text,
        };
    }
    DriverError::Rejected {
        target: TARGET.into(),
        operation,
        message: text,
    }
}

fn sdk_error<E, R>(operation: &'static str, call: &str, err: SdkError<E, R>) -> DriverError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + HttpStatus,
{
    match &err {
        SdkError::ServiceError(service) => classify(
            operation,
            call,
            Some(service.raw().status_code()),
            service.err().code(),
            service.err().message(),
        ),
        SdkError::ResponseError(e) => classify(
            operation,
            call,
            Some(e.raw().status_code()),
            None,
            Some("the response could not be read (lost or cut off)"),
        ),
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => DriverError::Unavailable {
            target: TARGET.into(),
            operation,
            message: format!(
                "EC2 {call}: no response ({})",
                if matches!(err, SdkError::TimeoutError(_)) {
                    "timed out"
                } else {
                    "connection failed or was closed"
                }
            ),
        },
        _ => DriverError::Rejected {
            target: TARGET.into(),
            operation,
            message: format!(
                "EC2 {call}: the request could not be built: {}",
                source_text(&err)
            ),
        },
    }
}

/// The innermost error's text (no request, no headers: nothing that could hold a secret).
fn source_text(err: &dyn std::error::Error) -> String {
    let mut inner: &dyn std::error::Error = err;
    while let Some(next) = inner.source() {
        inner = next;
    }
    inner.to_string()
}

/// The HTTP status of a raw response, whatever type the SDK uses for it.
pub trait HttpStatus {
    fn status_code(&self) -> u16;
}

impl HttpStatus for aws_sdk_ec2::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

#[async_trait]
impl Driver for AwsDriver {
    fn name(&self) -> &'static str {
        TARGET
    }

    async fn create(&self, spec: &InstanceSpec) -> Result<Instance, DriverError> {
        let region = spec.region.clone();
        // 1. Adopt what an earlier attempt made (lost response, interrupted apply).
        let existing = self
            .describe_tagged(
                &region,
                "create",
                &[
                    (TAG_MANAGED_BY, MANAGED_BY_VALUE),
                    (TAG_IDEMPOTENCY_KEY, &spec.idempotency_key),
                ],
            )
            .await?;
        let ec2_id = if let Some(found) = existing
            .into_iter()
            .min_by(|a, b| a.instance_id.cmp(&b.instance_id))
        {
            tracing::info!(instance_id = %found.instance_id, "adopting the instance an earlier attempt created");
            let ec2_id = self.split_id(&found.instance_id).1;
            self.start_if_stopped(&region, &ec2_id, &found.status)
                .await?;
            ec2_id
        } else {
            // 2. Make it (or find what an earlier attempt's client token made).
            self.launch(&region, spec).await?
        };
        // 3. Wait until it runs.
        match self.wait_for(&region, &ec2_id, "running", "create").await? {
            Some(inst) => Ok(inst),
            None => Err(DriverError::Unavailable {
                target: TARGET.into(),
                operation: "create",
                message: format!(
                    "EC2 DescribeInstances: instance {ec2_id} vanished while starting"
                ),
            }),
        }
    }

    async fn read(&self, instance_id: &str) -> Result<Option<Instance>, DriverError> {
        let (region, ec2_id) = self.split_id(instance_id);
        Ok(self
            .describe_one(&region, &ec2_id, "read")
            .await?
            .filter(Described::is_live)
            .map(|d| d.instance))
    }

    async fn find_by_workload(&self, workload_id: &str) -> Result<Option<Instance>, DriverError> {
        let mut regions: Vec<String> = self.clients.lock().await.keys().cloned().collect();
        let default = self.default_region();
        if !regions.contains(&default) {
            regions.insert(0, default);
        }
        for region in regions {
            let found = self
                .describe_tagged(
                    &region,
                    "read",
                    &[
                        (TAG_MANAGED_BY, MANAGED_BY_VALUE),
                        (TAG_WORKLOAD_ID, workload_id),
                    ],
                )
                .await?;
            if let Some(inst) = found
                .into_iter()
                .min_by(|a, b| a.instance_id.cmp(&b.instance_id))
            {
                return Ok(Some(inst));
            }
        }
        Ok(None)
    }

    async fn update_tags(
        &self,
        instance_id: &str,
        tags: &BTreeMap<String, String>,
        metadata: Option<&Metadata>,
    ) -> Result<Instance, DriverError> {
        let (region, ec2_id) = self.split_id(instance_id);
        let Some(Described {
            instance: current,
            raw_tags: raw,
            ..
        }) = self
            .describe_one(&region, &ec2_id, "update")
            .await?
            .filter(Described::is_live)
        else {
            return Err(DriverError::NotFound {
                target: TARGET.into(),
                operation: "update",
                instance_id: instance_id.to_string(),
            });
        };
        let name = if current.name.is_empty() {
            ec2_id.clone()
        } else {
            current.name.clone()
        };
        let desired = desired_tags(tags, &current.workload_id, &name, metadata);
        let (set, delete) = tag_changes(&raw, &desired);
        self.create_tags(&region, &ec2_id, &set).await?;
        if !delete.is_empty() {
            let client = self.client(&region).await;
            client
                .delete_tags()
                .resources(&ec2_id)
                .set_tags(Some(
                    delete
                        .iter()
                        .map(|k| Tag::builder().key(k).build())
                        .collect(),
                ))
                .send()
                .await
                .map_err(|e| sdk_error("update", "DeleteTags", e))?;
        }
        self.read(instance_id)
            .await?
            .ok_or_else(|| DriverError::NotFound {
                target: TARGET.into(),
                operation: "update",
                instance_id: instance_id.to_string(),
            })
    }

    async fn delete(&self, instance_id: &str) -> Result<(), DriverError> {
        let (region, ec2_id) = self.split_id(instance_id);
        let client = self.client(&region).await;
        match client
            .terminate_instances()
            .instance_ids(&ec2_id)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) if error_code(&e).is_some_and(is_not_found_code) => return Ok(()),
            Err(e) => return Err(sdk_error("delete", "TerminateInstances", e)),
        }
        self.wait_for(&region, &ec2_id, "terminated", "delete")
            .await?;
        tracing::info!(region = %region, instance = %ec2_id, "EC2 instance terminated");
        Ok(())
    }

    async fn list_managed(&self) -> Result<Vec<Instance>, DriverError> {
        let mut regions: Vec<String> = self.clients.lock().await.keys().cloned().collect();
        let default = self.default_region();
        if !regions.contains(&default) {
            regions.insert(0, default);
        }
        let mut out = Vec::new();
        for region in regions {
            out.extend(
                self.describe_tagged(&region, "list", &[(TAG_MANAGED_BY, MANAGED_BY_VALUE)])
                    .await?,
            );
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> InstanceSpec {
        InstanceSpec {
            idempotency_key: "0123456789abcdef0123456789abcdef".into(),
            workload_id: "wl-1".into(),
            name: "api".into(),
            provider: "aws".into(),
            region: "eu-west-1".into(),
            zone: None,
            instance_type: Some("t3.micro".into()),
            node: None,
            image: None,
            tags: BTreeMap::from([("team".to_string(), "payments".to_string())]),
            metadata: Some(Metadata::from_value(
                &serde_json::json!({"state": {"name": "api", "blob": "x".repeat(600)}}),
            )),
        }
    }

    #[test]
    fn error_mapping_table() {
        let cases: &[(Option<u16>, Option<&str>, &str)] = &[
            (Some(503), Some("RequestLimitExceeded"), "throttled"),
            (Some(400), Some("Throttling"), "throttled"),
            (Some(429), None, "throttled"),
            (Some(500), Some("InternalError"), "unavailable"),
            (Some(503), Some("Unavailable"), "unavailable"),
            (Some(502), None, "unavailable"),
            (Some(400), Some("InvalidParameterValue"), "rejected"),
            (Some(400), Some("InvalidAMIID.NotFound"), "rejected"),
            (Some(403), Some("UnauthorizedOperation"), "rejected"),
        ];
        for (status, code, want) in cases {
            let err = classify("create", "RunInstances", *status, *code, Some("why"));
            let got = match err {
                DriverError::Throttled { .. } => "throttled",
                DriverError::Unavailable { .. } => "unavailable",
                DriverError::Rejected { .. } => "rejected",
                _ => "other",
            };
            assert_eq!(got, *want, "{status:?} {code:?}");
            assert_eq!(err.is_retryable(), *want != "rejected");
            let text = err.to_string();
            assert!(text.contains("EC2 RunInstances"), "{text}");
            if let Some(code) = code {
                assert!(text.contains(code), "{text}");
            }
        }
    }

    #[test]
    fn client_tokens_are_stable_short_and_ascii() {
        let key = "0123456789abcdef0123456789abcdef";
        assert_eq!(client_token(key), client_token(key));
        assert_eq!(client_token(key), format!("hybrid-{key}"));
        assert_ne!(client_token(key), client_token("other"));
        for odd in [
            "x".repeat(200),
            "ключ".to_string(),
            String::new(),
            "a b/c".into(),
        ] {
            let t = client_token(&odd);
            assert!(t.len() <= 64 && t.is_ascii(), "{t}");
        }
        assert_ne!(client_token("a b"), client_token("a_b"));
    }

    #[test]
    fn token_generations_keep_generation_zero_and_stay_distinct_short_and_ascii() {
        let keys = [
            "0123456789abcdef0123456789abcdef".to_string(),
            "k".repeat(57),
            "x".repeat(200),
            "ключ".to_string(),
            String::new(),
        ];
        let mut seen = std::collections::BTreeSet::new();
        for key in &keys {
            assert_eq!(client_token_for(key, 0), client_token(key));
            for g in [0, 1, 2, 9, 10, MAX_TOKEN_GENERATIONS, u32::MAX] {
                let t = client_token_for(key, g);
                assert!(t.len() <= 64 && t.is_ascii(), "{key:?} {g}: {t}");
                assert_eq!(t, client_token_for(key, g), "deterministic");
                assert!(seen.insert(t.clone()), "{key:?} {g}: {t} repeats");
                assert_eq!(t.contains('.'), g > 0, "{t}");
            }
        }
        assert_eq!(
            client_token_for("0123456789abcdef0123456789abcdef", 3),
            "hybrid-0123456789abcdef0123456789abcdef.g3"
        );
    }

    #[test]
    fn the_token_walk_adopts_live_answers_and_moves_past_spent_ones() {
        use TokenAnswer::*;
        let cases: &[(u32, TokenAnswer, TokenStep)] = &[
            (0, Live, TokenStep::Adopt),
            (5, Live, TokenStep::Adopt),
            (0, Spent, TokenStep::Next(1)),
            (7, Spent, TokenStep::Next(8)),
            (0, Mismatch { holder_live: true }, TokenStep::Adopt),
            (0, Mismatch { holder_live: false }, TokenStep::Next(1)),
            (3, Mismatch { holder_live: false }, TokenStep::Next(4)),
            (
                MAX_TOKEN_GENERATIONS - 2,
                Spent,
                TokenStep::Next(MAX_TOKEN_GENERATIONS - 1),
            ),
            (MAX_TOKEN_GENERATIONS - 1, Spent, TokenStep::GiveUp),
            (
                MAX_TOKEN_GENERATIONS - 1,
                Mismatch { holder_live: false },
                TokenStep::GiveUp,
            ),
            (MAX_TOKEN_GENERATIONS - 1, Live, TokenStep::Adopt),
            (u32::MAX, Spent, TokenStep::GiveUp),
        ];
        for (generation, answer, want) in cases {
            assert_eq!(
                next_token_step(*generation, *answer),
                *want,
                "{generation} {answer:?}"
            );
        }
    }

    #[test]
    fn the_token_walk_ends_after_the_cap_whatever_ec2_says() {
        // Every token spent: the walk visits each generation once, then gives up.
        let mut generation = 0;
        let mut tried = vec![];
        loop {
            tried.push(generation);
            match next_token_step(generation, TokenAnswer::Spent) {
                TokenStep::Next(n) => generation = n,
                TokenStep::GiveUp => break,
                TokenStep::Adopt => unreachable!("a spent token is never adopted"),
            }
        }
        assert_eq!(tried, (0..MAX_TOKEN_GENERATIONS).collect::<Vec<_>>());
    }

    #[test]
    fn run_instances_answers_are_read_as_live_or_spent() {
        let minute = Some(Duration::from_secs(60));
        let day = Some(Duration::from_secs(86_400));
        let cases: &[(&str, Option<&str>, Option<Duration>, TokenAnswer)] = &[
            ("pending", Some("pending"), minute, TokenAnswer::Live),
            ("pending", Some("running"), day, TokenAnswer::Live),
            ("running", Some("stopped"), day, TokenAnswer::Live),
            // EC2 replays the first answer with the instance's state now.
            ("terminated", None, day, TokenAnswer::Spent),
            (
                "shutting-down",
                Some("shutting-down"),
                minute,
                TokenAnswer::Spent,
            ),
            // An answer replayed with its old state: DescribeInstances knows better.
            ("pending", Some("terminated"), day, TokenAnswer::Spent),
            ("pending", Some("shutting-down"), minute, TokenAnswer::Spent),
            // Not visible yet (fresh) versus aged out (long gone).
            ("pending", None, minute, TokenAnswer::Live),
            ("pending", None, None, TokenAnswer::Live),
            ("pending", None, day, TokenAnswer::Spent),
        ];
        for (answered, described, ago, want) in cases {
            assert_eq!(
                classify_token_answer(answered, *described, *ago),
                *want,
                "{answered} {described:?} {ago:?}"
            );
        }
    }

    /// An EC2 endpoint that accepts connections and never answers: every attempt must end at
    /// `request_timeout` as a retryable error (the retry then adopts what it may have made).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_past_request_timeout_ends_as_a_retryable_error() {
        std::env::set_var("AWS_ACCESS_KEY_ID", "AKIAHYBRIDUNITTEST");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "unit-test-secret");
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
        let addr = listener.local_addr().expect("address");
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming().flatten() {
                held.push(stream);
            }
        });
        let timeout = Duration::from_millis(700);
        let driver = AwsDriver::new(
            AwsSettings {
                endpoint_url: Some(format!("http://{addr}")),
                request_timeout: Some(timeout),
                ..AwsSettings::default()
            },
            StopSignal::never(),
        );
        let started = std::time::Instant::now();
        let outcome = tokio::time::timeout(
            Duration::from_secs(20),
            driver.read("eu-west-1/i-0123456789abcdef0"),
        )
        .await
        .expect("the request timeout ends the call");
        let took = started.elapsed();
        let err = outcome.expect_err("nothing answered");
        assert!(err.is_retryable(), "{err}");
        assert!(err.to_string().contains("timed out"), "{err}");
        assert!(
            took >= timeout && took < Duration::from_secs(10),
            "took {took:?}"
        );
    }

    #[test]
    fn instance_tags_carry_ours_the_key_a_name_and_the_description() {
        let s = spec();
        let tags = instance_tags(&s);
        assert_eq!(tags[TAG_MANAGED_BY], MANAGED_BY_VALUE);
        assert_eq!(tags[TAG_WORKLOAD_ID], "wl-1");
        assert_eq!(tags[TAG_IDEMPOTENCY_KEY], s.idempotency_key);
        assert_eq!(tags["Name"], "api");
        assert_eq!(tags["team"], "payments");
        assert!(tags.values().all(|v| v.chars().count() <= TAG_VALUE_MAX));
        assert_eq!(meta_tags::decode(&tags), s.metadata);
        assert!(tags.len() < 50, "EC2 allows 50 tags per resource");
    }

    #[test]
    fn user_tags_cannot_spoof_ours_or_the_key() {
        let mut s = spec();
        s.tags.insert(TAG_IDEMPOTENCY_KEY.into(), "stolen".into());
        s.tags.insert(TAG_WORKLOAD_ID.into(), "wl-other".into());
        s.tags.insert("Name".into(), "custom".into());
        let tags = instance_tags(&s);
        assert_eq!(tags[TAG_IDEMPOTENCY_KEY], s.idempotency_key);
        assert_eq!(tags[TAG_WORKLOAD_ID], "wl-1");
        assert_eq!(tags["Name"], "custom");
        assert!(!tags.contains_key(TAG_NAME));
    }

    #[test]
    fn tag_changes_keep_the_key_and_drop_stale_description_parts() {
        let current = BTreeMap::from([
            (TAG_IDEMPOTENCY_KEY.to_string(), "k".to_string()),
            ("team".to_string(), "old".to_string()),
            ("gone".to_string(), "x".to_string()),
            (format!("{TAG_META_PREFIX}3"), "tail".to_string()),
        ]);
        let desired = BTreeMap::from([
            ("team".to_string(), "new".to_string()),
            (TAG_MANAGED_BY.to_string(), MANAGED_BY_VALUE.to_string()),
        ]);
        let (set, delete) = tag_changes(&current, &desired);
        assert_eq!(set.len(), 2);
        assert_eq!(set["team"], "new");
        assert_eq!(
            delete,
            vec!["gone".to_string(), format!("{TAG_META_PREFIX}3")]
        );
    }

    #[test]
    fn chunks_never_split_a_character() {
        let text = "é".repeat(300);
        let parts = meta_tags::chunks(&text, 256);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts.concat(), text);
    }

    #[test]
    fn architecture_prefers_x86_then_arm() {
        let s = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(choose_architecture(&s(&["i386", "x86_64"])), "x86_64");
        assert_eq!(choose_architecture(&s(&["arm64"])), "arm64");
        assert_eq!(choose_architecture(&[]), "x86_64");
    }
}
