//! Test support only: a local server that keeps the Azure Resource Manager contract the azure
//! driver relies on, because no ARM emulator exists.
//!
//! What it answers, with shapes taken from the public REST API description
//! (Microsoft.Compute stable 2024-07-01 virtualMachines, Microsoft.Network 2024-05-01
//! networkInterfaces, and the Entra v2.0 client-credentials token endpoint):
//! - `POST /{tenant}/oauth2/v2.0/token` (form: client_id, client_secret, grant_type, scope);
//! - virtualMachines `PUT` / `GET` (`$expand=instanceView`) / `PATCH` (tags) / `DELETE` /
//!   `POST .../start` / list in a
//!   resource group (paged with `nextLink`), as long-running operations: 201/200 with
//!   `Azure-AsyncOperation`, delete 202 with `Location` and `Azure-AsyncOperation`, each polled
//!   `InProgress` until the operation's time has passed, then `Succeeded`;
//! - networkInterfaces `PUT` / `GET` / `DELETE` (a NIC referenced by a VM with `deleteOption:
//!   Delete` goes with the VM, as in Azure);
//! - errors as ARM writes them (`{"error":{"code","message"}}`): 401 without the token, 400 for a
//!   wrong api-version or a missing required field, 404, 409 (location change, NIC in use,
//!   write while deleting), and injected faults (e.g. 429 with `Retry-After`).
//!
//! It checks exact paths (case-insensitive, like ARM), api-versions and required body fields, and
//! keeps its state across requests so that separate terraform runs see one consistent cloud.
//! Nothing here is in the provider binary.

// Checks return the ready ARM error answer; this is test support, size does not matter.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value as Json};

pub const COMPUTE_API_VERSION: &str = "2024-07-01";
pub const NETWORK_API_VERSION: &str = "2024-05-01";

/// Who may get a token, and for what.
#[derive(Clone, Debug)]
pub struct FakeConfig {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
    pub subscription_id: String,
    /// The one resource group that exists.
    pub resource_group: String,
    /// How long a long-running operation stays `InProgress`.
    pub operation_time: Duration,
    /// `Retry-After` (seconds) sent with operation headers and polls.
    pub retry_after_secs: u64,
    /// Entries per page of a list.
    pub page_size: usize,
}

impl Default for FakeConfig {
    fn default() -> Self {
        FakeConfig {
            tenant_id: "00000000-0000-0000-0000-0000000000aa".into(),
            client_id: "00000000-0000-0000-0000-0000000000bb".into(),
            client_secret: "fake-client-secret".into(),
            subscription_id: "00000000-0000-0000-0000-0000000000cc".into(),
            resource_group: "hybrid-rg".into(),
            operation_time: Duration::from_millis(300),
            retry_after_secs: 1,
            page_size: 2,
        }
    }
}

/// A fault answered instead of the real response, `times` times, for requests whose method
/// matches and whose path contains `path_contains`.
#[derive(Clone, Debug)]
pub struct Fault {
    pub method: String,
    pub path_contains: String,
    pub status: u16,
    pub code: String,
    pub retry_after_secs: Option<u64>,
    pub times: u32,
}

/// A VM as the fake holds it (what tests inspect).
#[derive(Clone, Debug)]
pub struct FakeVm {
    pub name: String,
    pub id: String,
    pub location: String,
    pub vm_size: String,
    pub tags: BTreeMap<String, String>,
    pub nic_ids: Vec<String>,
    /// `Creating`, `Succeeded`, `Deleting`, ...
    pub provisioning_state: String,
}

struct Vm {
    body: Json,
    /// Until when the current operation runs; `deleting` says which kind.
    busy_until: Instant,
    deleting: bool,
    creating: bool,
    /// The power state once no operation runs: `running`, or what [`ArmFake::set_power`] set
    /// (`stopped`, `deallocated`, or `stopping` / `deallocating`, which settle after the GET
    /// that saw them).
    power: String,
    /// A start runs until `busy_until` (the VM shows `starting`).
    starting: bool,
}

struct Nic {
    body: Json,
}

struct Operation {
    done_at: Instant,
    /// A failed operation's error (status Failed).
    error: Option<Json>,
}

#[derive(Default)]
struct State {
    vms: BTreeMap<String, Vm>,
    nics: BTreeMap<String, Nic>,
    operations: BTreeMap<String, Operation>,
    faults: VecDeque<Fault>,
    log: Vec<String>,
    next_op: u64,
    next_ip: u32,
    token: String,
}

/// The running server; stops when dropped.
pub struct ArmFake {
    pub url: String,
    pub config: FakeConfig,
    state: Arc<Mutex<State>>,
    /// The URL operation and nextLink addresses start with.
    base: Arc<Mutex<String>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ArmFake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A test that failed while holding the lock must not hide the state from the next check.
    match state.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl ArmFake {
    /// Starts on a free 127.0.0.1 port in the current tokio runtime.
    pub async fn start(config: FakeConfig) -> std::io::Result<ArmFake> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(Mutex::new(State {
            token: format!("fake-arm-token-{}", std::process::id()),
            next_ip: 4,
            ..State::default()
        }));
        let base = Arc::new(Mutex::new(url.clone()));
        let shared = Shared {
            config: config.clone(),
            state: state.clone(),
            base: base.clone(),
        };
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let shared = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let shared = shared.clone();
                        async move { Ok::<_, std::convert::Infallible>(shared.handle(req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(ArmFake {
            url,
            config,
            state,
            base,
            task,
        })
    }

    /// Starts on `rt` from synchronous code (the terraform acceptance tests).
    pub fn start_on(rt: &tokio::runtime::Runtime, config: FakeConfig) -> std::io::Result<ArmFake> {
        rt.block_on(ArmFake::start(config))
    }

    /// Operation-status and nextLink URLs start with `url` from now on (a proxy in front of the
    /// server, as ARM's own links name ARM's front door).
    pub fn set_public_url(&self, url: &str) {
        if let Ok(mut base) = self.base.lock() {
            *base = url.trim_end_matches('/').to_string();
        }
    }

    /// What a test passes as `AZURE_AUTHORITY_HOST`.
    pub fn authority_host(&self) -> String {
        self.url.clone()
    }

    /// Every VM that exists (being deleted included).
    pub fn vms(&self) -> Vec<FakeVm> {
        let st = lock(&self.state);
        st.vms
            .values()
            .map(|vm| fake_vm(vm, Instant::now()))
            .collect()
    }

    /// Ids of every NIC that exists.
    pub fn nic_ids(&self) -> Vec<String> {
        lock(&self.state)
            .nics
            .values()
            .filter_map(|n| n.body["id"].as_str().map(str::to_string))
            .collect()
    }

    /// Out of band: the VM is gone (deleted in the portal), its NICs with deleteOption Delete too.
    pub fn remove_vm(&self, name: &str) -> bool {
        let mut st = lock(&self.state);
        let removed = st.vms.remove(&name.to_ascii_lowercase());
        if let Some(vm) = &removed {
            delete_owned_nics(&mut st, &vm.body);
        }
        removed.is_some()
    }

    /// Out of band: resize (as `az vm resize` would).
    pub fn set_vm_size(&self, name: &str, size: &str) {
        if let Some(vm) = lock(&self.state).vms.get_mut(&name.to_ascii_lowercase()) {
            vm.body["properties"]["hardwareProfile"]["vmSize"] = json!(size);
        }
    }

    /// Out of band: the VM's power state, as `az vm stop` (`stopped`, or `stopping` for one
    /// still on its way) or `az vm deallocate` (`deallocated`, `deallocating`) would leave it.
    pub fn set_power(&self, name: &str, power: &str) {
        if let Some(vm) = lock(&self.state).vms.get_mut(&name.to_ascii_lowercase()) {
            vm.power = power.to_string();
            vm.starting = false;
        }
    }

    /// Out of band: set one tag.
    pub fn set_tag(&self, name: &str, key: &str, value: &str) {
        if let Some(vm) = lock(&self.state).vms.get_mut(&name.to_ascii_lowercase()) {
            vm.body["tags"][key] = json!(value);
        }
    }

    /// A NIC made outside the driver (as a user would have); returns its id.
    pub fn add_nic(&self, name: &str, location: &str, subnet_id: &str) -> String {
        let id = format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/networkInterfaces/{name}",
            self.config.subscription_id, self.config.resource_group
        );
        let body = json!({
            "id": id, "name": name, "location": location, "type": "Microsoft.Network/networkInterfaces",
            "properties": {"provisioningState": "Succeeded", "ipConfigurations": [{"name": "ipconfig1", "properties": {"subnet": {"id": subnet_id}, "privateIPAddress": "10.0.9.9"}}]}
        });
        lock(&self.state)
            .nics
            .insert(name.to_ascii_lowercase(), Nic { body });
        id
    }

    /// Answer the next matching requests with a fault.
    pub fn inject(&self, fault: Fault) {
        lock(&self.state).faults.push_back(fault);
    }

    /// `METHOD path?query` of every request so far, in order (the token request's body is not
    /// logged).
    pub fn requests(&self) -> Vec<String> {
        lock(&self.state).log.clone()
    }
}

fn fake_vm(vm: &Vm, now: Instant) -> FakeVm {
    let tags = vm.body["tags"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    FakeVm {
        name: vm.body["name"].as_str().unwrap_or_default().to_string(),
        id: vm.body["id"].as_str().unwrap_or_default().to_string(),
        location: vm.body["location"].as_str().unwrap_or_default().to_string(),
        vm_size: vm.body["properties"]["hardwareProfile"]["vmSize"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        tags,
        nic_ids: nic_refs(&vm.body).into_iter().map(|(id, _)| id).collect(),
        provisioning_state: provisioning_state(vm, now).to_string(),
    }
}

fn provisioning_state(vm: &Vm, now: Instant) -> &'static str {
    if now >= vm.busy_until {
        "Succeeded"
    } else if vm.deleting {
        "Deleting"
    } else if vm.creating {
        "Creating"
    } else {
        "Updating"
    }
}

/// (NIC id, deleteOption) of a VM body's network interfaces.
fn nic_refs(body: &Json) -> Vec<(String, String)> {
    body["properties"]["networkProfile"]["networkInterfaces"]
        .as_array()
        .map(|nics| {
            nics.iter()
                .filter_map(|n| {
                    Some((
                        n["id"].as_str()?.to_string(),
                        n["properties"]["deleteOption"]
                            .as_str()
                            .unwrap_or("Detach")
                            .to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn delete_owned_nics(st: &mut State, body: &Json) {
    for (id, option) in nic_refs(body) {
        if option.eq_ignore_ascii_case("Delete") {
            if let Some(name) = id.rsplit('/').next() {
                st.nics.remove(&name.to_ascii_lowercase());
            }
        }
    }
}

type Answer = Response<Full<Bytes>>;

fn answer(status: u16, body: Option<Json>, headers: &[(&str, String)]) -> Answer {
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("x-ms-request-id", "armfake");
    for (k, v) in headers {
        builder = builder.header(*k, v.as_str());
    }
    let bytes = match body {
        Some(b) => {
            builder = builder.header("content-type", "application/json; charset=utf-8");
            Bytes::from(b.to_string())
        }
        None => Bytes::new(),
    };
    builder
        .body(Full::new(bytes))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

fn arm_error(status: u16, code: &str, message: &str) -> Answer {
    answer(
        status,
        Some(json!({"error": {"code": code, "message": message}})),
        &[],
    )
}

#[derive(Clone)]
struct Shared {
    config: FakeConfig,
    state: Arc<Mutex<State>>,
    base: Arc<Mutex<String>>,
}

/// The parsed request the handlers see.
struct Call {
    method: String,
    /// Path segments, as sent.
    segments: Vec<String>,
    query: BTreeMap<String, String>,
    body: Bytes,
    authorized: bool,
}

impl Shared {
    fn base(&self) -> String {
        match self.base.lock() {
            Ok(b) => b.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    async fn handle(&self, req: Request<hyper::body::Incoming>) -> Answer {
        let (parts, body) = req.into_parts();
        let body = match body.collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return arm_error(400, "InvalidRequestContent", "the body could not be read"),
        };
        let path = parts.uri.path().to_string();
        let query: BTreeMap<String, String> =
            form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let method = parts.method.as_str().to_string();
        let token = lock(&self.state).token.clone();
        let authorized = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == format!("Bearer {token}"));
        {
            let mut st = lock(&self.state);
            let q = parts
                .uri
                .query()
                .map(|q| format!("?{q}"))
                .unwrap_or_default();
            st.log.push(format!("{method} {path}{q}"));
            let found = st.faults.iter().position(|f| {
                f.times > 0
                    && f.method.eq_ignore_ascii_case(&method)
                    && path.contains(&f.path_contains)
            });
            if let Some(i) = found {
                let fault = st.faults[i].clone();
                st.faults[i].times -= 1;
                if st.faults[i].times == 0 {
                    st.faults.remove(i);
                }
                let headers: Vec<(&str, String)> = fault
                    .retry_after_secs
                    .map(|s| vec![("retry-after", s.to_string())])
                    .unwrap_or_default();
                return answer(
                    fault.status,
                    Some(json!({"error": {"code": fault.code, "message": "injected by the test"}})),
                    &headers,
                );
            }
        }
        let call = Call {
            method,
            segments: path
                .split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            query,
            body,
            authorized,
        };
        self.route(call)
    }

    fn route(&self, call: Call) -> Answer {
        let seg: Vec<String> = call
            .segments
            .iter()
            .map(|s| s.to_ascii_lowercase())
            .collect();
        let s: Vec<&str> = seg.iter().map(String::as_str).collect();
        // Entra token endpoint.
        if let [tenant, "oauth2", "v2.0", "token"] = s.as_slice() {
            return self.token(tenant, &call);
        }
        if !call.authorized {
            return answer(
                401,
                Some(
                    json!({"error": {"code": "AuthenticationFailed", "message": "Authentication failed. The 'Authorization' header is missing or invalid."}}),
                ),
                &[],
            );
        }
        let sub = self.config.subscription_id.to_ascii_lowercase();
        let rg = self.config.resource_group.to_ascii_lowercase();
        match s.as_slice() {
            ["subscriptions", sb, "providers", provider, "locations", _, kind, op]
                if *sb == sub && (*kind == "operations" || *kind == "operationresults") =>
            {
                let want = if *provider == "microsoft.network" {
                    NETWORK_API_VERSION
                } else {
                    COMPUTE_API_VERSION
                };
                if let Some(bad) = self.check_api_version(&call, want) {
                    return bad;
                }
                self.operation(op, *kind == "operationresults")
            }
            ["subscriptions", sb, "resourcegroups", g, "providers", "microsoft.compute", "virtualmachines", rest @ ..]
                if *sb == sub =>
            {
                if let Some(bad) = self.check_api_version(&call, COMPUTE_API_VERSION) {
                    return bad;
                }
                if *g != rg {
                    return self.no_group(g);
                }
                match (call.method.as_str(), rest) {
                    ("GET", []) => self.list_vms(&call),
                    ("GET", [name]) => self.get_vm(name, &call),
                    ("PUT", [name]) => self.put_vm(&call.segments[7], name, &call),
                    ("PATCH", [name]) => self.patch_vm(name, &call),
                    ("DELETE", [name]) => self.delete_vm(name),
                    ("POST", [name, "start"]) => self.start_vm(name),
                    _ => arm_error(
                        405,
                        "MethodNotAllowed",
                        "no such operation on virtualMachines",
                    ),
                }
            }
            ["subscriptions", sb, "resourcegroups", g, "providers", "microsoft.network", "networkinterfaces", name]
                if *sb == sub =>
            {
                if let Some(bad) = self.check_api_version(&call, NETWORK_API_VERSION) {
                    return bad;
                }
                if *g != rg {
                    return self.no_group(g);
                }
                match call.method.as_str() {
                    "GET" => self.get_nic(name),
                    "PUT" => self.put_nic(&call.segments[7], name, &call),
                    "DELETE" => self.delete_nic(name),
                    _ => arm_error(
                        405,
                        "MethodNotAllowed",
                        "no such operation on networkInterfaces",
                    ),
                }
            }
            ["subscriptions", sb, ..] if *sb != sub => arm_error(
                404,
                "SubscriptionNotFound",
                &format!(
                    "The subscription '{}' could not be found.",
                    call.segments[1]
                ),
            ),
            _ => arm_error(
                404,
                "InvalidResourceType",
                "The resource type could not be found in the namespace for api version.",
            ),
        }
    }

    fn no_group(&self, g: &str) -> Answer {
        arm_error(
            404,
            "ResourceGroupNotFound",
            &format!("Resource group '{g}' could not be found."),
        )
    }

    fn check_api_version(&self, call: &Call, want: &str) -> Option<Answer> {
        match call.query.get("api-version") {
            Some(v) if v == want => None,
            Some(v) => Some(arm_error(
                400,
                "InvalidApiVersionParameter",
                &format!(
                    "The api-version '{v}' is invalid. The supported version here is '{want}'."
                ),
            )),
            None => Some(arm_error(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )),
        }
    }

    fn token(&self, tenant: &str, call: &Call) -> Answer {
        if call.method != "POST" {
            return answer(405, None, &[]);
        }
        let form: BTreeMap<String, String> = form_urlencoded::parse(&call.body)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let bad = |code: &str, text: &str| {
            answer(
                400,
                Some(json!({"error": code, "error_description": text})),
                &[],
            )
        };
        if tenant != self.config.tenant_id.to_ascii_lowercase() {
            return bad("invalid_request", "AADSTS90002: Tenant not found.");
        }
        if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
            return bad(
                "unsupported_grant_type",
                "AADSTS70003: grant_type must be client_credentials.",
            );
        }
        if !form.get("scope").is_some_and(|s| s.ends_with("/.default")) {
            return bad(
                "invalid_scope",
                "AADSTS1002012: The provided value for scope is not valid.",
            );
        }
        if form.get("client_id") != Some(&self.config.client_id) {
            return bad(
                "unauthorized_client",
                "AADSTS700016: Application not found in the directory.",
            );
        }
        if form.get("client_secret") != Some(&self.config.client_secret) {
            return answer(
                401,
                Some(
                    json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."}),
                ),
                &[],
            );
        }
        let token = lock(&self.state).token.clone();
        answer(
            200,
            Some(
                json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}),
            ),
            &[],
        )
    }

    fn vm_id(&self, name: &str) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Compute/virtualMachines/{name}",
            self.config.subscription_id, self.config.resource_group
        )
    }

    /// Starts an operation and returns the headers that point at it.
    fn start_operation(
        &self,
        st: &mut State,
        provider: &str,
        location: &str,
        error: Option<Json>,
    ) -> Vec<(&'static str, String)> {
        st.next_op += 1;
        let id = format!("op-{:06}", st.next_op);
        st.operations.insert(
            id.clone(),
            Operation {
                done_at: Instant::now() + self.config.operation_time,
                error,
            },
        );
        let api = if provider == "Microsoft.Network" {
            NETWORK_API_VERSION
        } else {
            COMPUTE_API_VERSION
        };
        let prefix = format!(
            "{}/subscriptions/{}/providers/{provider}/locations/{location}",
            self.base(),
            self.config.subscription_id
        );
        vec![
            (
                "azure-asyncoperation",
                format!("{prefix}/operations/{id}?api-version={api}"),
            ),
            (
                "location",
                format!("{prefix}/operationResults/{id}?api-version={api}"),
            ),
            ("retry-after", self.config.retry_after_secs.to_string()),
        ]
    }

    fn operation(&self, id: &str, is_result: bool) -> Answer {
        let mut st = lock(&self.state);
        let now = Instant::now();
        settle(&mut st, now);
        let Some(op) = st.operations.get(id) else {
            return arm_error(
                404,
                "OperationNotFound",
                "The operation could not be found.",
            );
        };
        let retry = [("retry-after", self.config.retry_after_secs.to_string())];
        let running = now < op.done_at;
        if is_result {
            return if running {
                answer(202, None, &retry)
            } else if let Some(err) = &op.error {
                answer(400, Some(json!({"error": err})), &[])
            } else {
                answer(204, None, &[])
            };
        }
        let status = match (running, &op.error) {
            (true, _) => "InProgress",
            (false, None) => "Succeeded",
            (false, Some(_)) => "Failed",
        };
        let mut body = json!({"name": id, "status": status, "startTime": "2026-01-01T00:00:00Z"});
        if let (false, Some(err)) = (running, &op.error) {
            body["error"] = err.clone();
        }
        answer(200, Some(body), if running { &retry } else { &[] })
    }

    fn list_vms(&self, call: &Call) -> Answer {
        let mut st = lock(&self.state);
        let now = Instant::now();
        settle(&mut st, now);
        let skip: usize = call
            .query
            .get("$skiptoken")
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        let all: Vec<Json> = st.vms.values().map(|vm| view(vm, now, false)).collect();
        let page: Vec<Json> = all
            .iter()
            .skip(skip)
            .take(self.config.page_size)
            .cloned()
            .collect();
        let mut body = json!({"value": page});
        if skip + self.config.page_size < all.len() {
            body["nextLink"] = json!(format!(
                "{}/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Compute/virtualMachines?api-version={COMPUTE_API_VERSION}&$skiptoken={}",
                self.base(),
                self.config.subscription_id,
                self.config.resource_group,
                skip + self.config.page_size
            ));
        }
        answer(200, Some(body), &[])
    }

    fn get_vm(&self, name: &str, call: &Call) -> Answer {
        let mut st = lock(&self.state);
        let now = Instant::now();
        settle(&mut st, now);
        let expand = match call.query.get("$expand").map(String::as_str) {
            None => false,
            Some(e) if e.eq_ignore_ascii_case("instanceView") => true,
            Some(e) => {
                return arm_error(
                    400,
                    "InvalidParameter",
                    &format!(
                        "The value '{e}' of $expand is not valid; use instanceView or userData."
                    ),
                )
            }
        };
        match st.vms.get_mut(name) {
            Some(vm) => {
                let body = view(vm, now, expand);
                // A stop in progress settles after the GET that saw it.
                match vm.power.as_str() {
                    "stopping" => vm.power = "stopped".to_string(),
                    "deallocating" => vm.power = "deallocated".to_string(),
                    _ => {}
                }
                answer(200, Some(body), &[])
            }
            None => self.vm_not_found(name),
        }
    }

    /// `POST .../virtualMachines/{name}/start`: 202 with the operation's headers and no body.
    fn start_vm(&self, name: &str) -> Answer {
        self.vm_operation(
            name,
            |vm| {
                matches!(vm.power.as_str(), "stopping" | "deallocating").then(|| {
                    arm_error(
                        409,
                        "OperationNotAllowed",
                        "Operation 'start' is not allowed while the VM is stopping.",
                    )
                })
            },
            |vm, _, headers| {
                vm.power = "running".to_string();
                vm.starting = true;
                answer(202, None, &headers)
            },
        )
    }

    fn vm_not_found(&self, name: &str) -> Answer {
        arm_error(
            404,
            "ResourceNotFound",
            &format!(
                "The Resource 'Microsoft.Compute/virtualMachines/{name}' under resource group '{}' was not found.",
                self.config.resource_group
            ),
        )
    }

    fn put_vm(&self, raw_name: &str, name: &str, call: &Call) -> Answer {
        let body: Json = match serde_json::from_slice(&call.body) {
            Ok(b) => b,
            Err(e) => {
                return arm_error(
                    400,
                    "InvalidRequestContent",
                    &format!("The request content was invalid and could not be deserialized: {e}"),
                )
            }
        };
        if let Err(bad) = check_vm_body(&body, raw_name) {
            return bad;
        }
        let mut st = lock(&self.state);
        let now = Instant::now();
        settle(&mut st, now);
        let location = body["location"].as_str().unwrap_or_default().to_string();
        // Every NIC must exist and may serve only this VM.
        for (nic_id, _) in nic_refs(&body) {
            let nic_name = nic_id
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
            let Some(nic) = st.nics.get(&nic_name) else {
                return arm_error(400, "NotFound", &format!("Resource {nic_id} not found."));
            };
            let owner = nic.body["properties"]["virtualMachine"]["id"].as_str();
            if owner.is_some_and(|o| !o.eq_ignore_ascii_case(&self.vm_id(raw_name))) {
                return arm_error(
                    409,
                    "NicInUse",
                    &format!(
                        "Network Interface {nic_id} is used by existing resource {}.",
                        owner.unwrap_or_default()
                    ),
                );
            }
        }
        let existed = st.vms.get(name);
        if let Some(vm) = existed {
            if vm.deleting {
                return arm_error(
                    409,
                    "OperationNotAllowed",
                    "The VM is being deleted; a write is not allowed until the delete completes.",
                );
            }
            if !vm.body["location"]
                .as_str()
                .unwrap_or_default()
                .eq_ignore_ascii_case(&location)
            {
                return arm_error(
                    409,
                    "PropertyChangeNotAllowed",
                    "Changing property 'location' is not allowed.",
                );
            }
        }
        let created = existed.is_none();
        let (vm_id_text, vm_unique) = match existed {
            Some(vm) => (
                vm.body["id"].as_str().unwrap_or_default().to_string(),
                vm.body["properties"]["vmId"].clone(),
            ),
            None => (
                self.vm_id(raw_name),
                json!(format!("00000000-0000-4000-8000-{:012}", st.next_op + 1)),
            ),
        };
        let mut stored = body.clone();
        stored["id"] = json!(vm_id_text);
        stored["name"] = json!(raw_name);
        stored["type"] = json!("Microsoft.Compute/virtualMachines");
        stored["properties"]["vmId"] = vm_unique;
        if stored["tags"].is_null() {
            stored["tags"] = json!({});
        }
        for (nic_id, _) in nic_refs(&body) {
            let nic_name = nic_id
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
            if let Some(nic) = st.nics.get_mut(&nic_name) {
                nic.body["properties"]["virtualMachine"] = json!({"id": vm_id_text});
            }
        }
        let headers = self.start_operation(&mut st, "Microsoft.Compute", &location, None);
        st.vms.insert(
            name.to_string(),
            Vm {
                body: stored,
                busy_until: now + self.config.operation_time,
                power: "running".to_string(),
                starting: false,
                deleting: false,
                creating: created,
            },
        );
        let view_now = st.vms.get(name).map(|vm| view(vm, now, false));
        let status = if created { 201 } else { 200 };
        // ARM sends Azure-AsyncOperation (not Location) on a PUT.
        let headers: Vec<(&str, String)> = headers
            .into_iter()
            .filter(|(k, _)| *k != "location")
            .collect();
        answer(status, view_now, &headers)
    }

    fn patch_vm(&self, name: &str, call: &Call) -> Answer {
        let patch: Json = match serde_json::from_slice(&call.body) {
            Ok(b) => b,
            Err(e) => {
                return arm_error(
                    400,
                    "InvalidRequestContent",
                    &format!("The request content was invalid and could not be deserialized: {e}"),
                )
            }
        };
        if let Some(tags) = patch.get("tags") {
            if let Err(bad) = check_tags(tags) {
                return bad;
            }
        }
        self.vm_operation(
            name,
            |_| None,
            |vm, now, headers| {
                if let Some(tags) = patch.get("tags") {
                    vm.body["tags"] = tags.clone();
                }
                if let Some(size) = patch.pointer("/properties/hardwareProfile/vmSize") {
                    vm.body["properties"]["hardwareProfile"]["vmSize"] = size.clone();
                }
                let body = view(vm, now, false);
                let headers: Vec<(&str, String)> = headers
                    .into_iter()
                    .filter(|(k, _)| *k != "location")
                    .collect();
                answer(200, Some(body), &headers)
            },
        )
    }

    /// An operation on VM `name`, which must exist and not be being deleted, and which
    /// `refuse` may still turn down: the operation starts, the VM is busy for the operation's
    /// time, and `then` changes the VM and answers with the operation's headers.
    fn vm_operation(
        &self,
        name: &str,
        refuse: impl FnOnce(&Vm) -> Option<Answer>,
        then: impl FnOnce(&mut Vm, Instant, Vec<(&'static str, String)>) -> Answer,
    ) -> Answer {
        let mut st = lock(&self.state);
        let now = Instant::now();
        settle(&mut st, now);
        let Some(vm) = st.vms.get(name) else {
            return self.vm_not_found(name);
        };
        if vm.deleting {
            return arm_error(409, "OperationNotAllowed", "The VM is being deleted.");
        }
        if let Some(refused) = refuse(vm) {
            return refused;
        }
        let location = vm.body["location"].as_str().unwrap_or_default().to_string();
        let headers = self.start_operation(&mut st, "Microsoft.Compute", &location, None);
        let Some(vm) = st.vms.get_mut(name) else {
            return self.vm_not_found(name);
        };
        vm.busy_until = now + self.config.operation_time;
        then(vm, now, headers)
    }

    fn delete_vm(&self, name: &str) -> Answer {
        let mut st = lock(&self.state);
        let now = Instant::now();
        settle(&mut st, now);
        let Some(vm) = st.vms.get(name) else {
            return answer(204, None, &[]);
        };
        let location = vm.body["location"].as_str().unwrap_or_default().to_string();
        let headers = self.start_operation(&mut st, "Microsoft.Compute", &location, None);
        if let Some(vm) = st.vms.get_mut(name) {
            vm.deleting = true;
            vm.busy_until = now + self.config.operation_time;
        }
        answer(202, None, &headers)
    }

    fn get_nic(&self, name: &str) -> Answer {
        let mut st = lock(&self.state);
        settle(&mut st, Instant::now());
        match st.nics.get(name) {
            Some(nic) => answer(200, Some(nic.body.clone()), &[]),
            None => arm_error(404, "ResourceNotFound", &format!("The Resource 'Microsoft.Network/networkInterfaces/{name}' under resource group '{}' was not found.", self.config.resource_group)),
        }
    }

    fn put_nic(&self, raw_name: &str, name: &str, call: &Call) -> Answer {
        let body: Json = match serde_json::from_slice(&call.body) {
            Ok(b) => b,
            Err(e) => {
                return arm_error(
                    400,
                    "InvalidRequestContent",
                    &format!("The request content was invalid and could not be deserialized: {e}"),
                )
            }
        };
        let Some(location) = body["location"].as_str().filter(|l| !l.is_empty()) else {
            return arm_error(
                400,
                "LocationRequired",
                "The location property is required for this definition.",
            );
        };
        let configs = body["properties"]["ipConfigurations"].as_array();
        let subnet_ok = configs.is_some_and(|c| {
            !c.is_empty()
                && c.iter().all(|ip| {
                    ip["name"].as_str().is_some_and(|n| !n.is_empty())
                        && ip["properties"]["subnet"]["id"].as_str().is_some_and(|s| {
                            s.to_ascii_lowercase()
                                .contains("/providers/microsoft.network/virtualnetworks/")
                                && s.to_ascii_lowercase().contains("/subnets/")
                        })
                })
        });
        if !subnet_ok {
            return arm_error(400, "InvalidRequestFormat", "properties.ipConfigurations needs at least one entry with a name and properties.subnet.id of a virtual network subnet.");
        }
        let location = location.to_string();
        let mut st = lock(&self.state);
        let existing_owner = st
            .nics
            .get(name)
            .map(|n| n.body["properties"]["virtualMachine"].clone());
        let ip = match st.nics.get(name) {
            Some(n) => n.body["properties"]["ipConfigurations"][0]["properties"]
                ["privateIPAddress"]
                .clone(),
            None => {
                st.next_ip += 1;
                json!(format!(
                    "10.0.{}.{}",
                    st.next_ip / 250,
                    st.next_ip % 250 + 4
                ))
            }
        };
        let id = format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/networkInterfaces/{raw_name}",
            self.config.subscription_id, self.config.resource_group
        );
        let mut stored = body.clone();
        stored["id"] = json!(id);
        stored["name"] = json!(raw_name);
        stored["type"] = json!("Microsoft.Network/networkInterfaces");
        stored["properties"]["provisioningState"] = json!("Succeeded");
        stored["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"] = ip;
        if let Some(owner) = existing_owner.filter(|o| !o.is_null()) {
            stored["properties"]["virtualMachine"] = owner;
        }
        let created = !st.nics.contains_key(name);
        let headers = self.start_operation(&mut st, "Microsoft.Network", &location, None);
        st.nics.insert(
            name.to_string(),
            Nic {
                body: stored.clone(),
            },
        );
        let headers: Vec<(&str, String)> = headers
            .into_iter()
            .filter(|(k, _)| *k == "azure-asyncoperation")
            .collect();
        answer(if created { 201 } else { 200 }, Some(stored), &headers)
    }

    fn delete_nic(&self, name: &str) -> Answer {
        let mut st = lock(&self.state);
        settle(&mut st, Instant::now());
        let Some(nic) = st.nics.get(name) else {
            return answer(204, None, &[]);
        };
        if let Some(owner) = nic.body["properties"]["virtualMachine"]["id"].as_str() {
            return arm_error(400, "NicInUse", &format!("Network Interface {name} is used by existing resource {owner}. In order to delete the network interface, it must be dissociated from the resource."));
        }
        let location = nic.body["location"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        st.nics.remove(name);
        let headers = self.start_operation(&mut st, "Microsoft.Network", &location, None);
        answer(202, None, &headers)
    }
}

/// Finishes deletes whose time has come (and frees or deletes their NICs).
fn settle(st: &mut State, now: Instant) {
    let done: Vec<String> = st
        .vms
        .iter()
        .filter(|(_, vm)| vm.deleting && now >= vm.busy_until)
        .map(|(k, _)| k.clone())
        .collect();
    for name in done {
        if let Some(vm) = st.vms.remove(&name) {
            delete_owned_nics(st, &vm.body);
            for (id, _) in nic_refs(&vm.body) {
                if let Some(nic) = id
                    .rsplit('/')
                    .next()
                    .and_then(|n| st.nics.get_mut(&n.to_ascii_lowercase()))
                {
                    if let Some(props) = nic.body["properties"].as_object_mut() {
                        props.remove("virtualMachine");
                    }
                }
            }
        }
    }
}

/// The VM as GET answers it.
fn view(vm: &Vm, now: Instant, instance_view: bool) -> Json {
    let mut body = vm.body.clone();
    let state = provisioning_state(vm, now);
    body["properties"]["provisioningState"] = json!(state);
    if let Some(os) = body["properties"]["osProfile"].as_object_mut() {
        os.remove("adminPassword");
    }
    if instance_view {
        let power = match state {
            "Creating" => "PowerState/starting".to_string(),
            "Deleting" => "PowerState/stopping".to_string(),
            _ if vm.starting && now < vm.busy_until => "PowerState/starting".to_string(),
            _ => format!("PowerState/{}", vm.power),
        };
        body["properties"]["instanceView"] = json!({
            "computerName": body["properties"]["osProfile"]["computerName"],
            "statuses": [
                {"code": format!("ProvisioningState/{}", state.to_ascii_lowercase()), "level": "Info", "displayStatus": format!("Provisioning {}", state.to_ascii_lowercase())},
                {"code": power, "level": "Info", "displayStatus": "VM running"}
            ]
        });
    }
    body
}

/// The required parts of a VirtualMachine body (and the limits ARM enforces that we rely on).
fn check_vm_body(body: &Json, name: &str) -> Result<(), Answer> {
    let invalid = |target: &str, message: &str| {
        Err(answer(
            400,
            Some(
                json!({"error": {"code": "InvalidParameter", "message": message, "target": target}}),
            ),
            &[],
        ))
    };
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        return invalid(
            "vmName",
            "The VM name is invalid (1-64 letters, digits, '-', '_', '.').",
        );
    }
    if body["location"].as_str().is_none_or(str::is_empty) {
        return Err(arm_error(
            400,
            "LocationRequired",
            "The location property is required for this definition.",
        ));
    }
    let props = &body["properties"];
    let size = props["hardwareProfile"]["vmSize"]
        .as_str()
        .unwrap_or_default();
    if !size.starts_with("Standard_") && !size.starts_with("Basic_") {
        return invalid("vmSize", &format!("The value '{size}' of parameter 'vmSize' is not allowed. Allowed values are Standard_* and Basic_* sizes."));
    }
    let image = &props["storageProfile"]["imageReference"];
    let by_urn = ["publisher", "offer", "sku", "version"]
        .iter()
        .all(|k| image[*k].as_str().is_some_and(|v| !v.is_empty()));
    if !by_urn && image["id"].as_str().is_none_or(str::is_empty) {
        return invalid(
            "imageReference",
            "Either imageReference.id or publisher, offer, sku and version are required.",
        );
    }
    if props["storageProfile"]["osDisk"]["createOption"].as_str() != Some("FromImage") {
        return invalid(
            "osDisk.createOption",
            "osDisk.createOption must be FromImage for a VM from an image.",
        );
    }
    let os = &props["osProfile"];
    if os["computerName"].as_str().is_none_or(str::is_empty)
        || os["adminUsername"].as_str().is_none_or(str::is_empty)
    {
        return invalid("osProfile", "Required parameter 'osProfile.computerName' and 'osProfile.adminUsername' are missing (null).");
    }
    let nics = nic_refs(body);
    if nics.is_empty() {
        return invalid("networkProfile", "Required parameter 'networkProfile' is missing (null): a VM needs at least one network interface.");
    }
    check_tags(&body["tags"])
}

/// Azure's tag rules: at most 50, names up to 512 characters without `<>%&\?/`, values up to 256.
fn check_tags(tags: &Json) -> Result<(), Answer> {
    let Some(map) = tags.as_object() else {
        return if tags.is_null() {
            Ok(())
        } else {
            Err(arm_error(
                400,
                "InvalidTagFormat",
                "tags must be an object of strings",
            ))
        };
    };
    if map.len() > 50 {
        return Err(arm_error(
            400,
            "InvalidTagCount",
            &format!("{} tags given; a resource may have at most 50.", map.len()),
        ));
    }
    for (k, v) in map {
        if k.is_empty() || k.chars().count() > 512 || k.chars().any(|c| "<>%&\\?/".contains(c)) {
            return Err(arm_error(
                400,
                "InvalidTagNameCharacters",
                &format!("The tag name '{k}' has invalid characters or length."),
            ));
        }
        match v.as_str() {
            Some(text) if text.chars().count() <= 256 => {}
            _ => {
                return Err(arm_error(
                    400,
                    "InvalidTagValueLength",
                    &format!("The value of tag '{k}' is not a string of at most 256 characters."),
                ))
            }
        }
    }
    Ok(())
}
