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
//!   instance.
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
use aws_sdk_ec2::types::{Filter, InstanceType, Placement, ResourceType, Tag, TagSpecification};
use tokio::sync::Mutex;

use crate::meta_tags;
use crate::retry::{Jitter, RetryPolicy, StopSignal};
use crate::{
    managed_tags, Driver, DriverError, Instance, InstanceSpec, MANAGED_BY_VALUE, TAG_MANAGED_BY,
    TAG_WORKLOAD_ID,
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
}

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
                    .operation_attempt_timeout(Duration::from_secs(60))
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

    async fn sleep_or_stop(
        &self,
        delay: Duration,
        operation: &'static str,
    ) -> Result<(), DriverError> {
        crate::retry::sleep_or_stop(&self.stop, delay, TARGET, operation).await
    }

    /// Live instances in `region` matching every tag in `tags`.
    async fn describe_tagged(
        &self,
        region: &str,
        operation: &'static str,
        tags: &[(&str, &str)],
    ) -> Result<Vec<Instance>, DriverError> {
        let client = self.client(region).await;
        let mut req = client.describe_instances().filters(
            Filter::builder()
                .name("instance-state-name")
                .set_values(Some(LIVE_STATES.iter().map(|s| s.to_string()).collect()))
                .build(),
        );
        for (k, v) in tags {
            req = req.filters(
                Filter::builder()
                    .name(format!("tag:{k}"))
                    .values(*v)
                    .build(),
            );
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
        let started = std::time::Instant::now();
        let mut jitter = Jitter::from_clock();
        let mut n = 0u32;
        loop {
            match self.describe_one(region, ec2_id, operation).await? {
                None if want == "terminated" => return Ok(None),
                None => {
                    // Not visible yet right after RunInstances (eventual consistency): keep polling.
                }
                Some(d) if d.state == want => return Ok(Some(d.instance)),
                Some(Described { state, .. })
                    if want == "running" && (state == "terminated" || state == "shutting-down") =>
                {
                    return Err(DriverError::Rejected {
                        target: TARGET.into(),
                        operation,
                        message: format!("instance {ec2_id} went to {state} instead of running (see its state reason in EC2)"),
                    });
                }
                Some(_) => {}
            }
            if started.elapsed() > self.poll.timeout {
                return Err(DriverError::Timeout {
                    target: TARGET.into(),
                    operation,
                    seconds: self.poll.timeout.as_secs(),
                });
            }
            // Half jitter: the wait should not collapse to zero like a retry's full jitter.
            let delay = self.poll.delay(n, 0.5 + jitter.next_unit() / 2.0);
            self.sleep_or_stop(delay, operation).await?;
            n = n.saturating_add(1);
        }
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
    metadata: Option<&serde_json::Value>,
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

/// A RunInstances ClientToken (at most 64 ASCII characters) from the idempotency key.
pub fn client_token(idempotency_key: &str) -> String {
    let cleaned: String = idempotency_key
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    let token = format!("hybrid-{cleaned}");
    if token.len() <= 64 && cleaned == idempotency_key && !cleaned.is_empty() {
        return token;
    }
    // Anything longer or unusual: a digest keeps it stable and within the limit.
    use sha2::{Digest, Sha256};
    let digest: String = Sha256::digest(idempotency_key.as_bytes())
        .iter()
        .take(24)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("hybrid-{digest}")
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
            self.split_id(&found.instance_id).1
        } else {
            // 2. Make it.
            let image = self.image_for(&region, spec).await?;
            let client = self.client(&region).await;
            let tags = instance_tags(spec);
            let mut req = client
                .run_instances()
                .image_id(image)
                .min_count(1)
                .max_count(1)
                .client_token(client_token(&spec.idempotency_key))
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
            let resp = req
                .send()
                .await
                .map_err(|e| sdk_error("create", "RunInstances", e))?;
            let Some(id) = resp.instances().first().and_then(|i| i.instance_id()) else {
                return Err(DriverError::Unavailable {
                    target: TARGET.into(),
                    operation: "create",
                    message: "EC2 RunInstances: the answer named no instance".into(),
                });
            };
            tracing::info!(region = %region, instance = id, "EC2 instance launched");
            id.to_string()
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
        metadata: Option<&serde_json::Value>,
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
            metadata: Some(serde_json::json!({"state": {"name": "api", "blob": "x".repeat(600)}})),
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
