//! The Azure Compute driver (cargo feature `azure`): one virtual machine per workload, made by
//! typed calls to the Azure Resource Manager REST API (Microsoft.Compute virtualMachines,
//! api-version 2024-07-01; Microsoft.Network networkInterfaces, 2024-05-01) over hyper and
//! rustls with aws-lc-rs. docs/architecture.md says why there is no Azure SDK crate here.
//!
//! Credentials: a client-credentials token from Entra ID (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`,
//! `AZURE_CLIENT_SECRET`; authority `AZURE_AUTHORITY_HOST`, default
//! `https://login.microsoftonline.com`), cached until shortly before it expires. The secret is
//! only ever written into the token request's body: errors carry ARM's or Entra's error code and
//! message, never a request.
//!
//! Idempotency: the VM's name is derived from the workload id and its idempotency key, and a PUT
//! to that name is create-or-update, so a retry after a lost response, or a later apply after an
//! interrupted one, addresses the same VM. The NIC made for it (when the provider block gives a
//! subnet) has a name derived from the VM's, so it is idempotent the same way.
//!
//! Instance ids are the VM's ARM resource id. The stored workload description is kept in
//! `hybrid:meta-N` tags (Azure tag values hold at most 256 characters, 50 tags per resource).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::{json, Value as Json};
use tokio::sync::Mutex;

use crate::meta_tags::{self, TAG_META_PREFIX};
use crate::retry::{Pacer, RetryPolicy, StopSignal};
use crate::{
    managed_tags, Driver, DriverError, Instance, InstanceSpec, Metadata, MANAGED_BY_VALUE,
    TAG_MANAGED_BY, TAG_WORKLOAD_ID,
};

const TARGET: &str = "azure";
pub const COMPUTE_API_VERSION: &str = "2024-07-01";
pub const NETWORK_API_VERSION: &str = "2024-05-01";
/// The public cloud's ARM endpoint and Entra authority.
pub const DEFAULT_ENDPOINT: &str = "https://management.azure.com";
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";
/// The token scope for ARM (the same for the public cloud's endpoint and a test server).
const ARM_SCOPE: &str = "https://management.azure.com/.default";
/// Image used when neither the workload nor the provider block names one.
pub const DEFAULT_IMAGE: &str = "Canonical:ubuntu-24_04-lts:server:latest";
/// The VM's administrator account (Linux; password login off).
pub const DEFAULT_ADMIN_USERNAME: &str = "hybrid";
/// Our tags for the idempotency key and the workload name.
pub use crate::{TAG_IDEMPOTENCY_KEY, TAG_NAME};
/// Azure's limits: a tag value's characters, and tags per resource.
const TAG_VALUE_MAX: usize = 256;
const TAGS_MAX: usize = 50;
/// Tags the description may use at most (the rest is for users and us).
const META_TAGS_MAX: usize = 24;
/// One HTTP attempt may take this long unless the provider block says otherwise (a whole
/// operation is bounded by the resource's timeout).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest `Retry-After` we honour in one wait.
const RETRY_AFTER_MAX: Duration = Duration::from_secs(60);

/// What the provider's `azure {}` block and the environment configure.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AzureSettings {
    /// Else `AZURE_SUBSCRIPTION_ID`.
    pub subscription_id: Option<String>,
    pub resource_group: String,
    /// ARM endpoint (default [`DEFAULT_ENDPOINT`]).
    pub endpoint_url: Option<String>,
    /// Subnet for a NIC made per VM (`.../virtualNetworks/<vnet>/subnets/<name>`).
    pub subnet_id: Option<String>,
    /// An existing NIC to attach (one VM only: a NIC serves one VM).
    pub network_interface_id: Option<String>,
    /// `publisher:offer:sku:version` or an image resource id (default [`DEFAULT_IMAGE`]).
    pub default_image: Option<String>,
    /// Entra authority (else `AZURE_AUTHORITY_HOST`, else [`DEFAULT_AUTHORITY`]).
    pub authority_host: Option<String>,
    /// OpenSSH public key for [`DEFAULT_ADMIN_USERNAME`] (real Azure requires one for Linux
    /// VMs with password login off).
    pub ssh_public_key: Option<String>,
    /// Bound on one ARM or Entra request (else [`DEFAULT_REQUEST_TIMEOUT`]); a request past it
    /// is `Unavailable`, so retried.
    pub request_timeout: Option<Duration>,
}

/// A string that never prints.
#[derive(Clone)]
struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Clone, Debug)]
struct Credentials {
    tenant_id: String,
    client_id: String,
    client_secret: Secret,
    subscription_id: String,
    authority: String,
}

struct Token {
    value: Secret,
    renew_at: Instant,
}

type HttpsClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

/// The ARM driver; cheap to share.
pub struct AzureDriver {
    settings: AzureSettings,
    endpoint: String,
    client: Option<HttpsClient>,
    token: Mutex<Option<Token>>,
    stop: StopSignal,
    /// Poll pacing when ARM sends no `Retry-After`.
    poll: RetryPolicy,
}

/// One HTTP answer.
struct Answer {
    status: u16,
    async_operation: Option<String>,
    location: Option<String>,
    retry_after: Option<Duration>,
    body: Json,
}

fn rejected(operation: &'static str, message: String) -> DriverError {
    DriverError::Rejected {
        target: TARGET.into(),
        operation,
        message,
    }
}

fn unavailable(operation: &'static str, message: String) -> DriverError {
    DriverError::Unavailable {
        target: TARGET.into(),
        operation,
        message,
    }
}

impl AzureDriver {
    pub fn new(settings: AzureSettings, stop: StopSignal) -> AzureDriver {
        // rustls with aws-lc-rs, the workspace's one crypto provider, as the process default.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let client = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map(|b| {
                let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
                http.enforce_http(false);
                http.set_connect_timeout(Some(Duration::from_secs(10)));
                let connector = b.https_or_http().enable_http1().wrap_connector(http);
                hyper_util::client::legacy::Client::builder(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .build(connector)
            })
            .map_err(|e| tracing::warn!(error = %e, "no TLS root certificates found; the azure driver cannot connect"))
            .ok();
        let endpoint = settings
            .endpoint_url
            .clone()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string())
            .trim_end_matches('/')
            .to_string();
        AzureDriver {
            settings,
            endpoint,
            client,
            token: Mutex::new(None),
            stop,
            poll: RetryPolicy {
                initial_delay: Duration::from_millis(500),
                max_delay: Duration::from_secs(15),
                multiplier: 1.5,
                timeout: Duration::from_secs(30 * 60),
            },
        }
    }

    fn credentials(&self, operation: &'static str) -> Result<Credentials, DriverError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let need = |name: &str| {
            var(name).ok_or_else(|| {
                rejected(
                    operation,
                    format!("{name} is not set: the azure driver takes its service principal from AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET"),
                )
            })
        };
        let subscription_id = self
            .settings
            .subscription_id
            .clone()
            .filter(|s| !s.is_empty())
            .or_else(|| var("AZURE_SUBSCRIPTION_ID"))
            .ok_or_else(|| rejected(operation, "no subscription: set subscription_id in the provider's azure block or AZURE_SUBSCRIPTION_ID".into()))?;
        Ok(Credentials {
            tenant_id: need("AZURE_TENANT_ID")?,
            client_id: need("AZURE_CLIENT_ID")?,
            client_secret: Secret(need("AZURE_CLIENT_SECRET")?),
            subscription_id,
            authority: self
                .settings
                .authority_host
                .clone()
                .filter(|a| !a.is_empty())
                .or_else(|| var("AZURE_AUTHORITY_HOST"))
                .unwrap_or_else(|| DEFAULT_AUTHORITY.to_string())
                .trim_end_matches('/')
                .to_string(),
        })
    }

    async fn sleep_or_stop(
        &self,
        delay: Duration,
        operation: &'static str,
    ) -> Result<(), DriverError> {
        crate::retry::sleep_or_stop(&self.stop, delay, TARGET, operation).await
    }

    /// One HTTP exchange; transport failures are `Unavailable` (retryable), any status is `Ok`.
    async fn exchange(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        body: Option<Bytes>,
        operation: &'static str,
        call: &str,
    ) -> Result<Answer, DriverError> {
        let Some(client) = &self.client else {
            return Err(rejected(
                operation,
                format!("ARM {call}: no TLS root certificates are installed on this machine"),
            ));
        };
        let mut req = hyper::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        let req = req
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|_| rejected(operation, format!("ARM {call}: the request URL is not valid (check endpoint_url and the resource names)")))?;
        let attempt = self
            .settings
            .request_timeout
            .unwrap_or(DEFAULT_REQUEST_TIMEOUT);
        let sent = tokio::time::timeout(attempt, async {
            let resp = client
                .request(req)
                .await
                .map_err(|_| "connection failed or was closed")?;
            let (parts, body) = resp.into_parts();
            let bytes = body
                .collect()
                .await
                .map_err(|_| "the response was cut off")?
                .to_bytes();
            Ok::<_, &'static str>((parts, bytes))
        });
        let mut stop = self.stop.clone();
        let (parts, bytes) = tokio::select! {
            out = sent => match out {
                Ok(Ok(done)) => done,
                Ok(Err(why)) => return Err(unavailable(operation, format!("ARM {call}: no response ({why})"))),
                Err(_) => return Err(unavailable(operation, format!("ARM {call}: no response (timed out)"))),
            },
            _ = stop.stopped() => return Err(DriverError::Cancelled { target: TARGET.into(), operation }),
        };
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Ok(Answer {
            status: parts.status.as_u16(),
            async_operation: header("azure-asyncoperation"),
            location: header("location"),
            retry_after: header("retry-after").as_deref().and_then(parse_retry_after),
            body: serde_json::from_slice(&bytes).unwrap_or(Json::Null),
        })
    }

    /// A bearer token for ARM, from the cache or Entra.
    async fn bearer(
        &self,
        creds: &Credentials,
        operation: &'static str,
    ) -> Result<Secret, DriverError> {
        let mut cached = self.token.lock().await;
        if let Some(t) = cached.as_ref().filter(|t| Instant::now() < t.renew_at) {
            return Ok(t.value.clone());
        }
        if !authority_allowed(&creds.authority) {
            return Err(rejected(operation, format!("AZURE_AUTHORITY_HOST {:?} must be an https:// URL (http:// only for a local test server on 127.0.0.1 or localhost)", creds.authority)));
        }
        let url = format!("{}/{}/oauth2/v2.0/token", creds.authority, creds.tenant_id);
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &creds.client_id)
            .append_pair("client_secret", &creds.client_secret.0)
            .append_pair("grant_type", "client_credentials")
            .append_pair("scope", ARM_SCOPE)
            .finish();
        let answer = self
            .exchange(
                "POST",
                &url,
                &[("content-type", "application/x-www-form-urlencoded".into())],
                Some(Bytes::from(form)),
                operation,
                "token request (Entra ID)",
            )
            .await?;
        if answer.status != 200 {
            let code = answer.body["error"].as_str().unwrap_or("unknown_error");
            // Entra's description starts with its AADSTS code; its first line is enough.
            let description = answer.body["error_description"]
                .as_str()
                .and_then(|d| d.lines().next())
                .unwrap_or("");
            let message = format!(
                "Entra ID token request: {code}: {description} (HTTP {})",
                answer.status
            );
            return Err(if answer.status == 429 {
                DriverError::Throttled {
                    target: TARGET.into(),
                    operation,
                    message,
                }
            } else if answer.status >= 500 {
                unavailable(operation, message)
            } else {
                rejected(operation, message)
            });
        }
        let Some(value) = answer.body["access_token"].as_str() else {
            return Err(unavailable(
                operation,
                "Entra ID token request: the answer held no access_token".into(),
            ));
        };
        let lifetime = answer.body["expires_in"].as_u64().unwrap_or(300);
        let token = Token {
            value: Secret(value.to_string()),
            // Renew five minutes early (or halfway for short-lived tokens).
            renew_at: Instant::now()
                + Duration::from_secs(lifetime.saturating_sub(300).max(lifetime / 2)),
        };
        let value = token.value.clone();
        *cached = Some(token);
        Ok(value)
    }

    /// [`Self::arm`], then [`Self::wait_operation`] for the long-running operation the answer
    /// started (none for a 404 that `allow_404` let through). Returns the first answer.
    async fn arm_and_wait(
        &self,
        method: &str,
        url: &str,
        body: Option<&Json>,
        operation: &'static str,
        call: &str,
        allow_404: bool,
    ) -> Result<Answer, DriverError> {
        let answer = self
            .arm(method, url, body, operation, call, allow_404)
            .await?;
        if answer.status != 404 {
            self.wait_operation(&answer, operation, call).await?;
        }
        Ok(answer)
    }

    /// One ARM call: the answer for 2xx and (when `allow_404`) 404; every other status becomes a
    /// [`DriverError`] naming `call` with ARM's error code and message. A 429 waits out its
    /// `Retry-After` (bounded, cancellable) before it is reported, so the shared backoff that
    /// retries it starts after the time ARM asked for.
    async fn arm(
        &self,
        method: &str,
        url: &str,
        body: Option<&Json>,
        operation: &'static str,
        call: &str,
        allow_404: bool,
    ) -> Result<Answer, DriverError> {
        let creds = self.credentials(operation)?;
        let token = self.bearer(&creds, operation).await?;
        let mut headers = vec![("authorization", format!("Bearer {}", token.0))];
        if body.is_some() {
            headers.push(("content-type", "application/json".into()));
        }
        let answer = self
            .exchange(
                method,
                url,
                &headers,
                body.map(|b| Bytes::from(b.to_string())),
                operation,
                call,
            )
            .await?;
        if answer.status < 300 || (allow_404 && answer.status == 404) {
            return Ok(answer);
        }
        if answer.status == 401 {
            // An expired or revoked token: fetch a new one on the next attempt.
            *self.token.lock().await = None;
        }
        if answer.status == 429 {
            if let Some(wait) = answer.retry_after {
                self.sleep_or_stop(wait.min(RETRY_AFTER_MAX), operation)
                    .await?;
            }
        }
        Err(classify(operation, call, answer.status, &answer.body))
    }

    fn subscription_path(&self, creds: &Credentials) -> String {
        format!("{}/subscriptions/{}", self.endpoint, creds.subscription_id)
    }

    fn vm_url(&self, creds: &Credentials, name: &str) -> String {
        format!(
            "{}/resourceGroups/{}/providers/Microsoft.Compute/virtualMachines/{name}",
            self.subscription_path(creds),
            self.settings.resource_group
        )
    }

    fn nic_url(&self, creds: &Credentials, name: &str) -> String {
        format!(
            "{}/resourceGroups/{}/providers/Microsoft.Network/networkInterfaces/{name}",
            self.subscription_path(creds),
            self.settings.resource_group
        )
    }

    /// The URL of an ARM resource id on our endpoint.
    fn id_url(&self, id: &str) -> String {
        format!("{}{id}", self.endpoint)
    }

    /// Waits for a long-running operation the answer started (Azure-AsyncOperation first, else
    /// Location), honouring `Retry-After`. A failed operation is `Rejected` with ARM's error;
    /// a poll that fails with a retryable error is polled again.
    async fn wait_operation(
        &self,
        started: &Answer,
        operation: &'static str,
        call: &str,
    ) -> Result<(), DriverError> {
        let (url, by_status) = match (&started.async_operation, &started.location) {
            (Some(url), _) => (url.clone(), false),
            (None, Some(url)) if started.status == 202 => (url.clone(), true),
            _ => return Ok(()),
        };
        let mut pacer = Pacer::new(&self.poll, &self.stop, TARGET, operation);
        let mut wait = started.retry_after;
        loop {
            // A Retry-After of 0 would make a busy loop: poll at least every 100 ms.
            pacer
                .pause_for(wait.map(|w| w.clamp(Duration::from_millis(100), RETRY_AFTER_MAX)))
                .await?;
            let poll = match self
                .arm(
                    "GET",
                    &url,
                    None,
                    operation,
                    &format!("{call} (operation status)"),
                    true,
                )
                .await
            {
                Ok(p) => p,
                Err(e) if e.is_retryable() => {
                    tracing::debug!(error = %e, "operation poll failed; polling again");
                    wait = None;
                    continue;
                }
                Err(e) => return Err(e),
            };
            wait = poll.retry_after;
            if by_status {
                match poll.status {
                    202 => continue,
                    _ => return Ok(()),
                }
            }
            match poll.body["status"].as_str().unwrap_or("InProgress") {
                "Succeeded" => return Ok(()),
                "Failed" | "Canceled" => {
                    let status = poll.body["status"].as_str().unwrap_or("Failed").to_string();
                    let code = poll.body["error"]["code"]
                        .as_str()
                        .unwrap_or("OperationFailed");
                    let message = poll.body["error"]["message"]
                        .as_str()
                        .unwrap_or("no message");
                    return Err(rejected(
                        operation,
                        format!("ARM {call}: the operation ended {status}: {code}: {message}"),
                    ));
                }
                _ => {}
            }
        }
    }

    /// Starts an adopted VM that was stopped or deallocated after the attempt that made it,
    /// waiting first for one still stopping or deallocating to settle, and returns the VM as
    /// it then is. A create promises a running VM, and a stopped one never runs by itself.
    /// Starting a running VM does nothing, so a retried create may repeat it.
    async fn start_if_stopped(&self, url: &str, name: &str, vm: Json) -> Result<Json, DriverError> {
        let mut vm = vm;
        let mut pacer = Pacer::new(&self.poll, &self.stop, TARGET, "create");
        let vanished = |while_: &str| {
            unavailable(
                "create",
                format!("ARM virtualMachines.Get: VM {name} vanished while it was {while_}"),
            )
        };
        loop {
            match status_of(&vm).as_str() {
                "stopping" | "deallocating" => {
                    pacer.pause().await?;
                    vm = self
                        .get_vm(url, "create")
                        .await?
                        .ok_or_else(|| vanished("stopping"))?;
                }
                was @ ("stopped" | "deallocated") => {
                    tracing::info!(vm = %name, was = %was, "the adopted VM was stopped since it was made: starting it");
                    self.arm_and_wait(
                        "POST",
                        &format!("{url}/start?api-version={COMPUTE_API_VERSION}"),
                        None,
                        "create",
                        "virtualMachines.Start",
                        false,
                    )
                    .await?;
                    return self
                        .get_vm(url, "create")
                        .await?
                        .ok_or_else(|| vanished("starting"));
                }
                _ => return Ok(vm),
            }
        }
    }

    /// The VM at `url` with its instance view; `None` when it does not exist.
    async fn get_vm(
        &self,
        url: &str,
        operation: &'static str,
    ) -> Result<Option<Json>, DriverError> {
        let answer = self
            .arm(
                "GET",
                &format!("{url}?api-version={COMPUTE_API_VERSION}&$expand=instanceView"),
                None,
                operation,
                "virtualMachines.Get",
                true,
            )
            .await?;
        Ok((answer.status != 404).then_some(answer.body))
    }

    /// The private IP of the VM's first NIC ("" when unknown).
    async fn private_ip(&self, vm: &Json, operation: &'static str) -> Result<String, DriverError> {
        let Some(nic_id) =
            vm["properties"]["networkProfile"]["networkInterfaces"][0]["id"].as_str()
        else {
            return Ok(String::new());
        };
        let answer = self
            .arm(
                "GET",
                &format!("{}?api-version={NETWORK_API_VERSION}", self.id_url(nic_id)),
                None,
                operation,
                "networkInterfaces.Get",
                true,
            )
            .await?;
        Ok(
            answer.body["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    }

    /// Our [`Instance`] for an ARM VM body, with its private IP.
    async fn instance(&self, vm: &Json, operation: &'static str) -> Result<Instance, DriverError> {
        let ip = self.private_ip(vm, operation).await?;
        Ok(to_instance(vm, ip))
    }

    /// Every VM in the resource group (all pages).
    async fn list_vms(&self, operation: &'static str) -> Result<Vec<Json>, DriverError> {
        let creds = self.credentials(operation)?;
        let mut url = Some(format!(
            "{}/resourceGroups/{}/providers/Microsoft.Compute/virtualMachines?api-version={COMPUTE_API_VERSION}",
            self.subscription_path(&creds),
            self.settings.resource_group
        ));
        let mut out = Vec::new();
        let mut pages = 0;
        while let Some(next) = url.take() {
            pages += 1;
            if pages > 1000 {
                return Err(unavailable(
                    operation,
                    "ARM virtualMachines.List: more than 1000 pages (nextLink loops)".into(),
                ));
            }
            let answer = self
                .arm("GET", &next, None, operation, "virtualMachines.List", false)
                .await?;
            if let Some(items) = answer.body["value"].as_array() {
                out.extend(items.iter().cloned());
            }
            url = answer.body["nextLink"]
                .as_str()
                .filter(|l| !l.is_empty())
                .map(str::to_string);
        }
        Ok(out)
    }

    /// The NIC for a new VM: the configured one, or one made in the configured subnet.
    async fn network_interface(
        &self,
        creds: &Credentials,
        vm_name: &str,
        location: &str,
    ) -> Result<(String, bool), DriverError> {
        if let Some(nic) = self
            .settings
            .network_interface_id
            .as_ref()
            .filter(|n| !n.is_empty())
        {
            return Ok((nic.clone(), false));
        }
        let Some(subnet) = self.settings.subnet_id.as_ref().filter(|s| !s.is_empty()) else {
            return Err(rejected("create", "a VM needs a network interface: set subnet_id (a NIC is made per VM) or network_interface_id in the provider's azure block".into()));
        };
        let name = nic_name(vm_name);
        let body = json!({
            "location": location,
            "tags": {TAG_MANAGED_BY: MANAGED_BY_VALUE},
            "properties": {
                "ipConfigurations": [{
                    "name": "primary",
                    "properties": {"subnet": {"id": subnet}, "privateIPAllocationMethod": "Dynamic", "primary": true}
                }]
            }
        });
        let url = self.nic_url(creds, &name);
        let answer = self
            .arm_and_wait(
                "PUT",
                &format!("{url}?api-version={NETWORK_API_VERSION}"),
                Some(&body),
                "create",
                "networkInterfaces.CreateOrUpdate",
                false,
            )
            .await?;
        let id = answer.body["id"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| url.trim_start_matches(&self.endpoint).to_string());
        Ok((id, true))
    }

    /// Deletes the NIC we made for `vm_name` (gone already is fine).
    async fn delete_own_nic(&self, creds: &Credentials, vm_name: &str) -> Result<(), DriverError> {
        if self.settings.network_interface_id.is_some() && self.settings.subnet_id.is_none() {
            return Ok(());
        }
        let url = format!(
            "{}?api-version={NETWORK_API_VERSION}",
            self.nic_url(creds, &nic_name(vm_name))
        );
        self.arm_and_wait(
            "DELETE",
            &url,
            None,
            "delete",
            "networkInterfaces.Delete",
            true,
        )
        .await?;
        Ok(())
    }

    /// The image reference for a spec: its image when it is a URN or image id, else the
    /// provider default, else [`DEFAULT_IMAGE`].
    fn image_reference(&self, spec: &InstanceSpec) -> Result<Json, DriverError> {
        if let Some(reference) = spec.image.as_deref().and_then(image_reference) {
            return Ok(reference);
        }
        let fallback = self
            .settings
            .default_image
            .as_deref()
            .unwrap_or(DEFAULT_IMAGE);
        image_reference(fallback).ok_or_else(|| {
            rejected("create", format!("default_image {fallback:?} is neither publisher:offer:sku:version nor an image resource id"))
        })
    }

    /// The body of the VM's PUT.
    fn vm_body(
        &self,
        spec: &InstanceSpec,
        vm_name: &str,
        nic_id: &str,
        own_nic: bool,
    ) -> Result<Json, DriverError> {
        let Some(size) = spec.instance_type.as_deref().filter(|s| !s.is_empty()) else {
            return Err(rejected(
                "create",
                "the placement names no instance type (vmSize)".into(),
            ));
        };
        let mut linux = json!({"disablePasswordAuthentication": true, "provisionVMAgent": true});
        if let Some(key) = self
            .settings
            .ssh_public_key
            .as_ref()
            .filter(|k| !k.is_empty())
        {
            linux["ssh"] = json!({"publicKeys": [{
                "path": format!("/home/{DEFAULT_ADMIN_USERNAME}/.ssh/authorized_keys"),
                "keyData": key,
            }]});
        }
        let mut body = json!({
            "location": spec.region,
            "tags": instance_tags(spec),
            "properties": {
                "hardwareProfile": {"vmSize": size},
                "storageProfile": {
                    "imageReference": self.image_reference(spec)?,
                    "osDisk": {"createOption": "FromImage", "deleteOption": "Delete", "managedDisk": {"storageAccountType": "Standard_LRS"}}
                },
                "osProfile": {
                    "computerName": vm_name,
                    "adminUsername": DEFAULT_ADMIN_USERNAME,
                    "linuxConfiguration": linux
                },
                "networkProfile": {"networkInterfaces": [{
                    "id": nic_id,
                    "properties": {"primary": true, "deleteOption": if own_nic { "Delete" } else { "Detach" }}
                }]}
            }
        });
        if let Some(zone) = spec.zone.as_deref().and_then(zone_number) {
            body["zones"] = json!([zone]);
        }
        Ok(body)
    }
}

/// `Retry-After` in seconds (ARM sends seconds; an HTTP date is not used by ARM).
fn parse_retry_after(text: &str) -> Option<Duration> {
    text.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// https everywhere; http only to a test server on this machine.
fn authority_allowed(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    lower.starts_with("https://")
        || ["http://127.0.0.1", "http://localhost", "http://[::1]"]
            .iter()
            .any(|p| {
                lower.strip_prefix(p).is_some_and(|rest| {
                    rest.is_empty() || rest.starts_with(':') || rest.starts_with('/')
                })
            })
}

/// `1`, `2`, `3` from a zone written `1` or `<region>-1`; anything else is not an Azure zone.
fn zone_number(zone: &str) -> Option<String> {
    let last = zone.rsplit('-').next()?;
    (last.len() == 1 && last.chars().all(|c| c.is_ascii_digit())).then(|| last.to_string())
}

/// The imageReference for `publisher:offer:sku:version` or an image resource id.
pub fn image_reference(image: &str) -> Option<Json> {
    if image.starts_with("/subscriptions/") {
        return Some(json!({"id": image}));
    }
    let parts: Vec<&str> = image.split(':').collect();
    match parts.as_slice() {
        [publisher, offer, sku, version] if parts.iter().all(|p| !p.trim().is_empty()) => {
            Some(json!({"publisher": publisher, "offer": offer, "sku": sku, "version": version}))
        }
        _ => None,
    }
}

/// The VM's name: `hybrid-` + the workload id's hex + 8 hex of the idempotency key. The same
/// workload at the same place always gets the same name (PUT by name is the idempotency); a
/// replacement at another place gets another name, so old and new can exist together.
pub fn vm_name(spec: &InstanceSpec) -> String {
    let workload: String = spec
        .workload_id
        .trim_start_matches("wl-")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(32)
        .collect::<String>()
        .to_ascii_lowercase();
    let key = crate::sha256_hex(&spec.idempotency_key, 4);
    if workload.is_empty() {
        format!("hybrid-{key}")
    } else {
        format!("hybrid-{workload}-{key}")
    }
}

/// The NIC made for a VM.
pub fn nic_name(vm_name: &str) -> String {
    format!("{vm_name}-nic")
}

/// Tags a VM is created with: the user's (no `hybrid:` keys), ours, the key, the name and the
/// stored description (as many `hybrid:meta-N` tags as fit under Azure's 50).
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

fn desired_tags(
    user: &BTreeMap<String, String>,
    workload_id: &str,
    name: &str,
    metadata: Option<&Metadata>,
) -> BTreeMap<String, String> {
    let user = crate::user_tags(user);
    let mut tags = managed_tags(&user, workload_id);
    tags.insert(TAG_NAME.into(), name.to_string());
    // Room left under Azure's 50 after ours (+1 for the idempotency key) and the user's.
    let room = TAGS_MAX.saturating_sub(tags.len() + 1).min(META_TAGS_MAX);
    if let Some(meta) = metadata {
        tags.extend(meta_tags::encode(meta, room, TAG_VALUE_MAX));
    }
    tags
}

fn tags_of(vm: &Json) -> BTreeMap<String, String> {
    vm["tags"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn provisioning_state(vm: &Json) -> &str {
    vm["properties"]["provisioningState"].as_str().unwrap_or("")
}

/// `running`, `stopped`, `deallocated`, ... from the instance view's PowerState; without an
/// instance view, from the provisioning state.
fn status_of(vm: &Json) -> String {
    let power = vm["properties"]["instanceView"]["statuses"]
        .as_array()
        .and_then(|s| {
            s.iter()
                .filter_map(|st| st["code"].as_str())
                .find_map(|c| c.strip_prefix("PowerState/"))
        });
    match (power, provisioning_state(vm)) {
        (_, "Failed") => "failed".into(),
        (Some(p), _) => p.to_string(),
        (None, "Succeeded") => "running".into(),
        (None, other) => other.to_ascii_lowercase(),
    }
}

fn image_of(vm: &Json) -> Option<String> {
    let r = &vm["properties"]["storageProfile"]["imageReference"];
    if let Some(id) = r["id"].as_str() {
        return Some(id.to_string());
    }
    let part = |k: &str| r[k].as_str().map(str::to_string);
    Some(format!(
        "{}:{}:{}:{}",
        part("publisher")?,
        part("offer")?,
        part("sku")?,
        part("version")?
    ))
}

/// Our [`Instance`] from an ARM VM body.
fn to_instance(vm: &Json, private_ip: String) -> Instance {
    let all = tags_of(vm);
    let metadata = meta_tags::decode(&all);
    let tags = all
        .iter()
        .filter(|(k, _)| !k.starts_with(TAG_META_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Instance {
        instance_id: vm["id"].as_str().unwrap_or_default().to_string(),
        workload_id: all.get(TAG_WORKLOAD_ID).cloned().unwrap_or_default(),
        idempotency_key: all.get(TAG_IDEMPOTENCY_KEY).cloned().unwrap_or_default(),
        name: all
            .get(TAG_NAME)
            .cloned()
            .unwrap_or_else(|| vm["name"].as_str().unwrap_or_default().to_string()),
        provider: TARGET.into(),
        region: vm["location"].as_str().unwrap_or_default().to_string(),
        zone: vm["zones"][0].as_str().map(str::to_string),
        instance_type: vm["properties"]["hardwareProfile"]["vmSize"]
            .as_str()
            .map(str::to_string),
        node: None,
        image: image_of(vm),
        private_ip,
        status: status_of(vm),
        tags,
        metadata,
    }
}

fn is_managed(vm: &Json) -> bool {
    vm["tags"][TAG_MANAGED_BY].as_str() == Some(MANAGED_BY_VALUE)
}

/// A VM being deleted is gone for us (as a terminating EC2 instance is).
fn is_live(vm: &Json) -> bool {
    !provisioning_state(vm).eq_ignore_ascii_case("Deleting")
}

/// Maps an ARM error answer to a [`DriverError`]: 429 throttled, 5xx unavailable (both
/// retried), everything else rejected; the text names the call and carries ARM's code and
/// message.
pub fn classify(operation: &'static str, call: &str, status: u16, body: &Json) -> DriverError {
    let error = if body["error"].is_object() {
        &body["error"]
    } else {
        body
    };
    let code = error["code"].as_str().unwrap_or("UnknownError");
    let message = match error["message"].as_str().filter(|m| !m.is_empty()) {
        Some(m) => format!("ARM {call}: {code}: {m} (HTTP {status})"),
        None => format!("ARM {call}: {code} (HTTP {status})"),
    };
    match status {
        429 => DriverError::Throttled {
            target: TARGET.into(),
            operation,
            message,
        },
        s if s >= 500 => unavailable(operation, message),
        _ => rejected(operation, message),
    }
}

/// The ARM id parts of a VM id we accept: `/subscriptions/../resourceGroups/../providers/
/// Microsoft.Compute/virtualMachines/<name>`; `None` for anything else (another cloud's id).
pub fn parse_vm_id(id: &str) -> Option<(String, String, String)> {
    let parts: Vec<&str> = id.trim_end_matches('/').split('/').collect();
    match parts.as_slice() {
        ["", subs, sub, groups, rg, providers, ns, kind, name]
            if subs.eq_ignore_ascii_case("subscriptions")
                && groups.eq_ignore_ascii_case("resourceGroups")
                && providers.eq_ignore_ascii_case("providers")
                && ns.eq_ignore_ascii_case("Microsoft.Compute")
                && kind.eq_ignore_ascii_case("virtualMachines")
                && [sub, rg, name].iter().all(|p| {
                    !p.is_empty()
                        && p.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_.()".contains(c))
                }) =>
        {
            Some((sub.to_string(), rg.to_string(), name.to_string()))
        }
        _ => None,
    }
}

#[async_trait]
impl Driver for AzureDriver {
    fn name(&self) -> &'static str {
        TARGET
    }

    async fn create(&self, spec: &InstanceSpec) -> Result<Instance, DriverError> {
        let creds = self.credentials("create")?;
        let name = vm_name(spec);
        let url = self.vm_url(&creds, &name);
        // Adopt a VM an earlier attempt finished (a lost response, an interrupted apply).
        if let Some(vm) = self.get_vm(&url, "create").await? {
            let owner = vm["tags"][TAG_WORKLOAD_ID].as_str().unwrap_or_default();
            if owner != spec.workload_id {
                return Err(rejected("create", format!("ARM virtualMachines.CreateOrUpdate: a VM named {name} already exists in resource group {} and does not belong to workload {}", self.settings.resource_group, spec.workload_id)));
            }
            if provisioning_state(&vm) == "Succeeded" {
                tracing::info!(vm = %name, "adopting the VM an earlier attempt created");
                let vm = self.start_if_stopped(&url, &name, vm).await?;
                return self.instance(&vm, "create").await;
            }
            if !is_live(&vm) {
                return Err(unavailable(
                    "create",
                    format!("ARM virtualMachines.CreateOrUpdate: VM {name} is still being deleted"),
                ));
            }
        }
        let (nic_id, own_nic) = self.network_interface(&creds, &name, &spec.region).await?;
        let body = self.vm_body(spec, &name, &nic_id, own_nic)?;
        let answer = self
            .arm(
                "PUT",
                &format!("{url}?api-version={COMPUTE_API_VERSION}"),
                Some(&body),
                "create",
                "virtualMachines.CreateOrUpdate",
                false,
            )
            .await?;
        tracing::info!(vm = %name, location = %spec.region, "Azure VM requested");
        self.wait_operation(&answer, "create", "virtualMachines.CreateOrUpdate")
            .await?;
        match self.get_vm(&url, "create").await? {
            Some(vm) if provisioning_state(&vm) == "Failed" => Err(rejected("create", format!("ARM virtualMachines.CreateOrUpdate: VM {name} ended in provisioningState Failed (see its activity log)"))),
            Some(vm) => self.instance(&vm, "create").await,
            None => Err(unavailable("create", format!("ARM virtualMachines.Get: VM {name} vanished while it was being created"))),
        }
    }

    async fn read(&self, instance_id: &str) -> Result<Option<Instance>, DriverError> {
        let url = if parse_vm_id(instance_id).is_some() {
            self.id_url(instance_id)
        } else if !instance_id.is_empty()
            && instance_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && instance_id.starts_with("hybrid-")
        {
            // A bare VM name (import) in the configured resource group.
            let creds = self.credentials("read")?;
            self.vm_url(&creds, instance_id)
        } else {
            return Ok(None);
        };
        match self.get_vm(&url, "read").await? {
            Some(vm) if is_live(&vm) => Ok(Some(self.instance(&vm, "read").await?)),
            _ => Ok(None),
        }
    }

    async fn find_by_workload(&self, workload_id: &str) -> Result<Option<Instance>, DriverError> {
        let mut found: Vec<Json> = self
            .list_vms("read")
            .await?
            .into_iter()
            .filter(|vm| {
                is_managed(vm)
                    && is_live(vm)
                    && vm["tags"][TAG_WORKLOAD_ID].as_str() == Some(workload_id)
            })
            .collect();
        found.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        let Some(id) = found.first().and_then(|vm| vm["id"].as_str()) else {
            return Ok(None);
        };
        self.read(id).await
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
        if parse_vm_id(instance_id).is_none() {
            return Err(not_found());
        }
        let url = self.id_url(instance_id);
        let Some(vm) = self.get_vm(&url, "update").await?.filter(is_live) else {
            return Err(not_found());
        };
        let current = tags_of(&vm);
        let workload = current.get(TAG_WORKLOAD_ID).cloned().unwrap_or_default();
        let name = current
            .get(TAG_NAME)
            .cloned()
            .unwrap_or_else(|| vm["name"].as_str().unwrap_or_default().to_string());
        let mut desired = desired_tags(tags, &workload, &name, metadata);
        if let Some(key) = current.get(TAG_IDEMPOTENCY_KEY) {
            desired.insert(TAG_IDEMPOTENCY_KEY.into(), key.clone());
        }
        if desired != current {
            // PATCH replaces the whole tag set.
            self.arm_and_wait(
                "PATCH",
                &format!("{url}?api-version={COMPUTE_API_VERSION}"),
                Some(&json!({"tags": desired})),
                "update",
                "virtualMachines.Update",
                false,
            )
            .await?;
        }
        self.read(instance_id).await?.ok_or_else(not_found)
    }

    async fn delete(&self, instance_id: &str) -> Result<(), DriverError> {
        let Some((_, _, name)) = parse_vm_id(instance_id) else {
            // Not an ARM VM id: nothing of ours to delete.
            return Ok(());
        };
        let url = self.id_url(instance_id);
        let answer = self
            .arm_and_wait(
                "DELETE",
                &format!("{url}?api-version={COMPUTE_API_VERSION}"),
                None,
                "delete",
                "virtualMachines.Delete",
                true,
            )
            .await?;
        if answer.status != 404 {
            // The operation said done; make sure ARM agrees before the NIC goes.
            if self
                .get_vm(&url, "delete")
                .await?
                .is_some_and(|vm| !is_live(&vm))
            {
                return Err(unavailable(
                    "delete",
                    format!("ARM virtualMachines.Delete: VM {name} is still being deleted"),
                ));
            }
        }
        let creds = self.credentials("delete")?;
        self.delete_own_nic(&creds, &name).await?;
        tracing::info!(vm = %name, "Azure VM deleted");
        Ok(())
    }

    async fn list_managed(&self) -> Result<Vec<Instance>, DriverError> {
        Ok(self
            .list_vms("list")
            .await?
            .iter()
            .filter(|vm| is_managed(vm) && is_live(vm))
            .map(|vm| to_instance(vm, String::new()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> InstanceSpec {
        InstanceSpec {
            idempotency_key: "0123456789abcdef0123456789abcdef".into(),
            workload_id: "wl-0011223344556677".into(),
            name: "api".into(),
            provider: "azure".into(),
            region: "westeurope".into(),
            zone: None,
            instance_type: Some("Standard_B2s".into()),
            node: None,
            image: None,
            tags: BTreeMap::from([("team".to_string(), "payments".to_string())]),
            metadata: Some(Metadata::from_value(
                &json!({"state": {"name": "api", "blob": "x".repeat(600)}}),
            )),
        }
    }

    #[test]
    fn error_mapping_table() {
        let body = json!({"error": {"code": "SkuNotAvailable", "message": "not here"}});
        let cases: &[(u16, &str)] = &[
            (429, "throttled"),
            (500, "unavailable"),
            (503, "unavailable"),
            (409, "rejected"),
            (400, "rejected"),
            (403, "rejected"),
        ];
        for (status, want) in cases {
            let err = classify("create", "virtualMachines.CreateOrUpdate", *status, &body);
            let got = match err {
                DriverError::Throttled { .. } => "throttled",
                DriverError::Unavailable { .. } => "unavailable",
                DriverError::Rejected { .. } => "rejected",
                _ => "other",
            };
            assert_eq!(got, *want, "{status}");
            let text = err.to_string();
            assert!(
                text.contains("virtualMachines.CreateOrUpdate")
                    && text.contains("SkuNotAvailable")
                    && text.contains("not here"),
                "{text}"
            );
        }
        // A body that is not ARM's (a proxy's page) still names the call and the status.
        let text = classify("read", "virtualMachines.Get", 502, &Json::Null).to_string();
        assert!(
            text.contains("virtualMachines.Get") && text.contains("502"),
            "{text}"
        );
    }

    #[test]
    fn names_are_deterministic_short_and_differ_by_place() {
        let s = spec();
        assert_eq!(vm_name(&s), vm_name(&s));
        assert!(vm_name(&s).starts_with("hybrid-0011223344556677-"));
        assert!(vm_name(&s).len() <= 64);
        let mut other = s.clone();
        other.idempotency_key = "another-place".into();
        assert_ne!(vm_name(&s), vm_name(&other));
        let mut odd = s.clone();
        odd.workload_id = "wl-../../ÄÖ?".into();
        assert!(vm_name(&odd)
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-'));
    }

    #[test]
    fn tags_fit_azure_limits_and_keep_ours() {
        let mut s = spec();
        s.tags.insert(TAG_WORKLOAD_ID.into(), "spoof".into());
        for i in 0..30 {
            s.tags.insert(format!("user-{i}"), "v".into());
        }
        s.metadata = Some(Metadata::from_value(
            &json!({"state": {"blob": "y".repeat(5000)}}),
        ));
        let tags = instance_tags(&s);
        assert!(tags.len() <= TAGS_MAX, "{}", tags.len());
        assert!(tags.values().all(|v| v.chars().count() <= TAG_VALUE_MAX));
        assert_eq!(tags[TAG_WORKLOAD_ID], s.workload_id);
        assert_eq!(tags[TAG_MANAGED_BY], MANAGED_BY_VALUE);
        let plain = instance_tags(&spec());
        assert_eq!(meta_tags::decode(&plain), spec().metadata);
    }

    #[test]
    fn image_references_and_ids() {
        assert_eq!(
            image_reference(DEFAULT_IMAGE),
            Some(
                json!({"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest"})
            )
        );
        assert_eq!(image_reference("ami-123"), None);
        assert_eq!(image_reference("a::c:d"), None);
        assert!(image_reference(
            "/subscriptions/x/resourceGroups/r/providers/Microsoft.Compute/images/i"
        )
        .is_some());
        let id = "/subscriptions/s-1/resourceGroups/rg_1/providers/Microsoft.Compute/virtualMachines/hybrid-1";
        assert_eq!(
            parse_vm_id(id),
            Some(("s-1".into(), "rg_1".into(), "hybrid-1".into()))
        );
        assert_eq!(parse_vm_id("eu-west-1/i-123"), None);
        assert_eq!(
            parse_vm_id(
                "/subscriptions/s/resourceGroups/r/providers/Microsoft.Network/networkInterfaces/n"
            ),
            None
        );
        assert_eq!(
            parse_vm_id(
                "/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/virtualMachines/a?b"
            ),
            None
        );
    }

    #[test]
    fn status_and_authority_rules() {
        let vm = json!({"properties": {"provisioningState": "Succeeded", "instanceView": {"statuses": [{"code": "ProvisioningState/succeeded"}, {"code": "PowerState/deallocated"}]}}});
        assert_eq!(status_of(&vm), "deallocated");
        assert_eq!(
            status_of(&json!({"properties": {"provisioningState": "Succeeded"}})),
            "running"
        );
        assert_eq!(
            status_of(&json!({"properties": {"provisioningState": "Failed"}})),
            "failed"
        );
        assert!(authority_allowed("https://login.microsoftonline.com"));
        assert!(authority_allowed("http://127.0.0.1:4000"));
        assert!(!authority_allowed("http://127.0.0.1.evil.example"));
        assert!(!authority_allowed("http://login.example.com"));
        assert_eq!(zone_number("westeurope-2"), Some("2".into()));
        assert_eq!(zone_number("us-east-1a"), None);
        assert_eq!(format!("{:?}", Secret("s3cret".into())), "<redacted>");
    }
}
