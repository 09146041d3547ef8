//! A small local Compute Engine server for the GCP driver's tests (driver tests in
//! provider/clouds/tests/gcp.rs, terraform acceptance tests in tests/acceptance/gcp.rs).
//!
//! No emulator from a package registry covers what the driver needs (PyPI's gcplocal 0.1.0 has
//! no setLabels/setMetadata, no aggregatedList, no list filters, ignores requestId and
//! overwrites an instance inserted twice under one name), so this one implements exactly the
//! driver's calls with GCE's documented semantics: names unique per zone (409 alreadyExists),
//! requestId deduplication (the same operation again), label and metadata fingerprints (412
//! conditionNotMet), operations that stay RUNNING for a few polls, instances that pass through
//! PROVISIONING/STAGING, aggregatedList with `labels.KEY = "VALUE"` filters and paging.
//!
//! Every request is checked against the official discovery document (compute.v1.json from the
//! PyPI package google-api-python-client, installed by scripts/install-tools.sh into
//! .tools/share; never committed): the method must exist for that HTTP verb and path, path
//! parameters must match their patterns, query parameters must be declared, and request
//! bodies may only use properties the schema declares (and none marked readOnly), with the
//! declared JSON types. Differences are collected as violations; the tests assert there are
//! none. Requests must also carry a bearer token (the tests' fake service account signs one).
//!
//! Std threads and serde_json only, so both test crates can include this file as a module.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

/// The discovery document's place once `make tools` has run.
pub fn discovery_path(repo_root: &Path) -> PathBuf {
    repo_root.join(".tools/share/compute.v1.json")
}

/// Loads the discovery document, or fails the test with how to get it.
pub fn load_discovery(repo_root: &Path) -> Value {
    let path = discovery_path(repo_root);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "the GCE discovery document is missing at {} ({e}) — run `make tools` (or `bash scripts/install-tools.sh`)",
            path.display()
        )
    });
    serde_json::from_str(&text).expect("compute.v1.json is JSON")
}

/// Writes a service-account key file with a fresh RSA key (openssl) that Application Default
/// Credentials accept; the client signs its own JWTs with it, so no token endpoint is needed.
pub fn fake_service_account(dir: &Path, project: &str) -> PathBuf {
    let out = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ])
        .output()
        .expect("openssl (installed by `make tools`) makes an RSA key");
    assert!(out.status.success(), "openssl genpkey failed");
    let pem = String::from_utf8(out.stdout).expect("PEM is text");
    let key = json!({
        "type": "service_account",
        "project_id": project,
        "private_key_id": "0000000000000000000000000000000000000001",
        "private_key": pem,
        "client_email": format!("tests@{project}.iam.gserviceaccount.com"),
        "client_id": "100000000000000000001",
        "auth_uri": "http://127.0.0.1:9/auth",
        "token_uri": "http://127.0.0.1:9/token",
        "universe_domain": "googleapis.com",
    });
    let path = dir.join("service-account.json");
    std::fs::write(&path, key.to_string()).expect("write key file");
    path
}

#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub authorization: Option<String>,
    pub body: Value,
    pub status: u16,
}

/// A reply given instead of the normal behaviour (status, GCE error reason).
#[derive(Clone, Debug)]
pub struct Forced {
    pub status: u16,
    pub reason: String,
    pub message: String,
}

#[derive(Default)]
struct State {
    /// (project, zone, name) -> instance JSON.
    instances: BTreeMap<(String, String, String), Value>,
    /// operation name -> (operation JSON, polls left before DONE, zone).
    operations: HashMap<String, (Value, u32)>,
    request_ids: HashMap<String, String>,
    requests: Vec<Recorded>,
    violations: Vec<String>,
    forced: Vec<Forced>,
    next_id: u64,
    addr: String,
    /// Polls (zoneOperations.wait/get) an operation stays RUNNING.
    operation_polls: u32,
    /// GETs an instance stays PROVISIONING/STAGING before RUNNING.
    staging_gets: u32,
    staging: HashMap<(String, String, String), u32>,
    page_size: usize,
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// The server; it stops accepting when dropped (the listener thread ends with the process).
pub struct GceServer {
    pub port: u16,
    state: Shared,
    discovery: Arc<Value>,
}

impl GceServer {
    pub fn start(discovery: Value) -> GceServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("address").port();
        let state: Shared = Arc::new(Mutex::new(State {
            addr: format!("http://127.0.0.1:{port}"),
            operation_polls: 1,
            staging_gets: 1,
            page_size: 3,
            ..State::default()
        }));
        let discovery = Arc::new(discovery);
        let (s, d) = (state.clone(), discovery.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (s, d) = (s.clone(), d.clone());
                std::thread::spawn(move || serve(stream, s, d));
            }
        });
        GceServer {
            port,
            state,
            discovery,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.state).requests.clone()
    }

    /// Differences from the discovery document (and missing bearer tokens) so far.
    pub fn violations(&self) -> Vec<String> {
        lock(&self.state).violations.clone()
    }

    /// Answers the next requests with these errors, first to last.
    pub fn force(&self, replies: Vec<Forced>) {
        lock(&self.state).forced.extend(replies);
    }

    /// How long operations and new instances take (in polls).
    pub fn set_delays(&self, operation_polls: u32, staging_gets: u32) {
        let mut s = lock(&self.state);
        s.operation_polls = operation_polls;
        s.staging_gets = staging_gets;
    }

    /// Every instance as (id `project/zone/name`, labels).
    pub fn instances(&self) -> Vec<(String, BTreeMap<String, String>)> {
        lock(&self.state)
            .instances
            .iter()
            .map(|((p, z, n), v)| {
                let labels = v["labels"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                            .collect()
                    })
                    .unwrap_or_default();
                (format!("{p}/{z}/{n}"), labels)
            })
            .collect()
    }

    /// The instance's JSON as the server holds it.
    pub fn instance(&self, id: &str) -> Option<Value> {
        let mut parts = id.splitn(3, '/');
        let key = (
            parts.next()?.to_string(),
            parts.next()?.to_string(),
            parts.next()?.to_string(),
        );
        lock(&self.state).instances.get(&key).cloned()
    }

    /// Changes an instance outside the driver (drift, deletion) as a console user would.
    pub fn edit(&self, id: &str, f: impl FnOnce(&mut Value)) {
        let mut parts = id.splitn(3, '/');
        let key = (
            parts.next().unwrap_or_default().to_string(),
            parts.next().unwrap_or_default().to_string(),
            parts.next().unwrap_or_default().to_string(),
        );
        let mut s = lock(&self.state);
        if let Some(v) = s.instances.get_mut(&key) {
            f(v);
            let fp = fingerprint(&v["labels"]);
            v["labelFingerprint"] = json!(fp);
        }
    }

    /// Forgets every requestId, as GCE does after about an hour.
    pub fn forget_request_ids(&self) {
        lock(&self.state).request_ids.clear();
    }

    pub fn remove(&self, id: &str) -> bool {
        let mut parts = id.splitn(3, '/');
        let key = (
            parts.next().unwrap_or_default().to_string(),
            parts.next().unwrap_or_default().to_string(),
            parts.next().unwrap_or_default().to_string(),
        );
        lock(&self.state).instances.remove(&key).is_some()
    }

    pub fn discovery(&self) -> &Value {
        &self.discovery
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).to_string()
}

fn fingerprint(v: &Value) -> String {
    // A stable digest of the JSON text, base64 of 8 bytes as GCE's look.
    let text = v.to_string();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    base64(&h.to_be_bytes())
}

/// URL-safe base64: google-cloud-compute-v1 reads `format: byte` fields only in that alphabet.
fn base64(bytes: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn serve(stream: TcpStream, state: Shared, discovery: Arc<Value>) {
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, target) = match (parts.next(), parts.next()) {
            (Some(m), Some(t)) => (m.to_string(), t.to_string()),
            _ => return,
        };
        let mut headers = BTreeMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_string(), q.to_string()),
            None => (target.clone(), String::new()),
        };
        let query: BTreeMap<String, String> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (percent_decode(k), percent_decode(v)),
                None => (percent_decode(p), String::new()),
            })
            .collect();
        let body: Value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).unwrap_or(Value::String("<not JSON>".into()))
        };
        let (status, reply) = handle(&state, &discovery, &method, &path, &query, &headers, &body);
        let text = reply.to_string();
        let resp = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json; charset=UTF-8\r\ncontent-length: {}\r\n\r\n{text}",
            text.len()
        );
        if writer.write_all(resp.as_bytes()).is_err() {
            return;
        }
        let _ = writer.flush();
    }
}

fn error(status: u16, reason: &str, message: &str) -> (u16, Value) {
    (
        status,
        json!({"error": {"code": status, "message": message, "errors": [{"message": message, "domain": "global", "reason": reason}]}}),
    )
}

/// Matches `path` (after /compute/v1/) against a discovery path template; returns the
/// parameters.
fn match_template(template: &str, path: &str) -> Option<BTreeMap<String, String>> {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    if t.len() != p.len() {
        return None;
    }
    let mut params = BTreeMap::new();
    for (a, b) in t.iter().zip(p.iter()) {
        if let Some(name) = a.strip_prefix('{').and_then(|n| n.strip_suffix('}')) {
            params.insert(name.to_string(), percent_decode(b));
        } else if a != b {
            return None;
        }
    }
    Some(params)
}

/// The discovery method for this request: (resource, method id, parameters, method JSON).
fn find_method<'a>(
    discovery: &'a Value,
    verb: &str,
    path: &str,
) -> Option<(String, BTreeMap<String, String>, &'a Value)> {
    let rel = path.strip_prefix("/compute/v1/")?;
    for resource in ["instances", "zoneOperations"] {
        let methods = discovery["resources"][resource]["methods"].as_object()?;
        for (name, m) in methods {
            if m["httpMethod"].as_str() != Some(verb) {
                continue;
            }
            let template = m["flatPath"].as_str().or(m["path"].as_str())?;
            if let Some(params) = match_template(template, rel) {
                return Some((format!("{resource}.{name}"), params, m));
            }
        }
    }
    None
}

fn full_match(pattern: &str, value: &str) -> bool {
    // The patterns used here are GCE name patterns; check the common name rule by hand
    // (no regex crate): lowercase letter first, then [-a-z0-9], not ending with '-', or digits.
    if pattern.contains("[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?") {
        let name_ok = value.len() <= 63
            && value.starts_with(|c: char| c.is_ascii_lowercase())
            && value
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !value.ends_with('-');
        let id_ok =
            !value.is_empty() && value.len() <= 20 && value.chars().all(|c| c.is_ascii_digit());
        return name_ok || id_ok;
    }
    true
}

fn check_value(discovery: &Value, schema: &Value, value: &Value, at: &str, out: &mut Vec<String>) {
    let schema = match schema["$ref"].as_str() {
        Some(r) => &discovery["schemas"][r],
        None => schema,
    };
    if schema["readOnly"].as_bool() == Some(true) {
        out.push(format!("{at}: read-only property sent"));
    }
    match schema["type"].as_str() {
        Some("object") => {
            let Some(obj) = value.as_object() else {
                out.push(format!("{at}: expected an object"));
                return;
            };
            for (k, v) in obj {
                if let Some(p) = schema["properties"].get(k) {
                    check_value(discovery, p, v, &format!("{at}.{k}"), out);
                } else if let Some(ap) = schema.get("additionalProperties") {
                    check_value(discovery, ap, v, &format!("{at}.{k}"), out);
                } else {
                    out.push(format!(
                        "{at}.{k}: not a property of {}",
                        schema["id"].as_str().unwrap_or("the schema")
                    ));
                }
            }
        }
        Some("array") => match value.as_array() {
            Some(items) => {
                for (i, v) in items.iter().enumerate() {
                    check_value(discovery, &schema["items"], v, &format!("{at}[{i}]"), out);
                }
            }
            None => out.push(format!("{at}: expected an array")),
        },
        // 64-bit integers and bytes travel as strings in discovery-based JSON.
        Some("string") => {
            if !value.is_string() {
                out.push(format!("{at}: expected a string"));
            }
            if schema["format"].as_str() == Some("byte") {
                if let Some(s) = value.as_str() {
                    if !s
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+/=-_".contains(c))
                    {
                        out.push(format!("{at}: not base64"));
                    }
                }
            }
            if let (Some(allowed), Some(s)) = (schema["enum"].as_array(), value.as_str()) {
                if !allowed.iter().any(|a| a.as_str() == Some(s)) {
                    out.push(format!("{at}: {s:?} is not one of the enum values"));
                }
            }
        }
        Some("boolean") if !value.is_boolean() => out.push(format!("{at}: expected a boolean")),
        Some("integer") if !value.is_i64() && !value.is_u64() => {
            out.push(format!("{at}: expected an integer"))
        }
        _ => {}
    }
}

/// What the discovery document says about this request.
fn check_request(
    discovery: &Value,
    verb: &str,
    path: &str,
    query: &BTreeMap<String, String>,
    body: &Value,
) -> (Option<String>, Vec<String>) {
    let mut out = Vec::new();
    let Some((id, params, m)) = find_method(discovery, verb, path) else {
        return (
            None,
            vec![format!("{verb} {path}: no such method in compute.v1.json")],
        );
    };
    for (name, value) in &params {
        let spec = &m["parameters"][name];
        if let Some(p) = spec["pattern"].as_str() {
            if !full_match(p, value) {
                out.push(format!(
                    "{id}: path parameter {name}={value:?} does not match {p}"
                ));
            }
        }
    }
    for k in query.keys() {
        // `$alt` and `$apiVersion` are Google's system parameters (the client sends them):
        // `$`-prefixed forms of the document's global parameters, plus the API version.
        let system = k.strip_prefix('$').is_some_and(|name| {
            name == "apiVersion" || discovery["parameters"].get(name).is_some()
        });
        let declared = system
            || m["parameters"][k]["location"].as_str() == Some("query")
            || discovery["parameters"].get(k).is_some();
        if !declared {
            out.push(format!("{id}: query parameter {k} is not declared"));
        }
    }
    for (name, spec) in m["parameters"].as_object().into_iter().flatten() {
        if spec["required"].as_bool() == Some(true)
            && spec["location"].as_str() == Some("query")
            && !query.contains_key(name)
        {
            out.push(format!("{id}: required query parameter {name} missing"));
        }
    }
    match (&m["request"], body) {
        (Value::Null, Value::Null) => {}
        // The client sends `{}` with a body-less POST (zoneOperations.wait).
        (Value::Null, Value::Object(o)) if o.is_empty() => {}
        (Value::Null, _) => out.push(format!("{id}: takes no body")),
        (req, b) => check_value(discovery, req, b, &format!("{id} body"), &mut out),
    }
    (Some(id), out)
}

/// `(labels.k = "v") AND ...` as the driver writes it; `None` for anything else.
fn parse_filter(filter: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    for part in filter.split(" AND ") {
        let inner = part.trim().strip_prefix('(')?.strip_suffix(')')?;
        let (k, v) = inner.split_once(" = ")?;
        let k = k.trim().strip_prefix("labels.")?;
        let v = v.trim().strip_prefix('"')?.strip_suffix('"')?;
        out.push((k.to_string(), v.replace("\\\"", "\"").replace("\\\\", "\\")));
    }
    Some(out)
}

fn new_operation(s: &mut State, project: &str, zone: &str, kind: &str, target: &str) -> Value {
    s.next_id += 1;
    let name = format!("operation-{}-{}", s.next_id, kind.to_ascii_lowercase());
    let polls = s.operation_polls;
    let op = json!({
        "kind": "compute#operation",
        "id": s.next_id.to_string(),
        "name": name,
        "zone": format!("{}/compute/v1/projects/{project}/zones/{zone}", s.addr),
        "operationType": kind,
        "targetLink": format!("{}/compute/v1/projects/{project}/zones/{zone}/instances/{target}", s.addr),
        "status": if polls == 0 { "DONE" } else { "RUNNING" },
        "progress": if polls == 0 { 100 } else { 0 },
        "selfLink": format!("{}/compute/v1/projects/{project}/zones/{zone}/operations/{name}", s.addr),
    });
    s.operations.insert(name, (op.clone(), polls));
    op
}

#[allow(clippy::too_many_arguments)]
fn handle(
    state: &Shared,
    discovery: &Value,
    verb: &str,
    path: &str,
    query: &BTreeMap<String, String>,
    headers: &BTreeMap<String, String>,
    body: &Value,
) -> (u16, Value) {
    let (method, violations) = check_request(discovery, verb, path, query, body);
    let auth = headers.get("authorization").cloned();
    let mut s = lock(state);
    s.violations.extend(violations);
    let bearer_ok = auth
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "))
        .is_some_and(|t| t.split('.').count() == 3);
    if !bearer_ok {
        s.violations
            .push(format!("{verb} {path}: no bearer JWT in Authorization"));
    }
    let forced = if s.forced.is_empty() {
        None
    } else {
        Some(s.forced.remove(0))
    };
    let (status, reply) = match forced {
        Some(f) => error(f.status, &f.reason, &f.message),
        None => dispatch(&mut s, method.as_deref(), path, query, body),
    };
    s.requests.push(Recorded {
        method: verb.to_string(),
        path: path.to_string(),
        query: query.clone(),
        authorization: auth,
        body: body.clone(),
        status,
    });
    (status, reply)
}

fn dispatch(
    s: &mut State,
    method: Option<&str>,
    path: &str,
    query: &BTreeMap<String, String>,
    body: &Value,
) -> (u16, Value) {
    let rel = path
        .strip_prefix("/compute/v1/projects/")
        .unwrap_or_default();
    let parts: Vec<String> = rel.split('/').map(percent_decode).collect();
    let project = parts.first().cloned().unwrap_or_default();
    let zone = parts.get(2).cloned().unwrap_or_default();
    let name = parts.get(4).cloned().unwrap_or_default();
    let key = (project.clone(), zone.clone(), name.clone());
    match method {
        Some("instances.insert") => {
            if let Some(rid) = query.get("requestId") {
                if let Some(op) = s.request_ids.get(rid).and_then(|n| s.operations.get(n)) {
                    return (200, op.0.clone());
                }
            }
            let Some(new_name) = body["name"].as_str().map(str::to_string) else {
                return error(
                    400,
                    "required",
                    "Required field 'resource.name' not specified",
                );
            };
            let key = (project.clone(), zone.clone(), new_name.clone());
            if s.instances.contains_key(&key) {
                return error(
                    409,
                    "alreadyExists",
                    &format!("The resource 'projects/{project}/zones/{zone}/instances/{new_name}' already exists"),
                );
            }
            s.next_id += 1;
            let mut inst = body.clone();
            let labels = inst.get("labels").cloned().unwrap_or(json!({}));
            inst["kind"] = json!("compute#instance");
            inst["id"] = json!(format!("{}", 7_000_000_000u64 + s.next_id));
            inst["status"] = json!(if s.staging_gets == 0 {
                "RUNNING"
            } else {
                "PROVISIONING"
            });
            inst["zone"] = json!(format!(
                "{}/compute/v1/projects/{project}/zones/{zone}",
                s.addr
            ));
            let mt = body["machineType"].as_str().unwrap_or("e2-small");
            inst["machineType"] = json!(format!(
                "{}/compute/v1/projects/{project}/zones/{zone}/machineTypes/{}",
                s.addr,
                mt.rsplit('/').next().unwrap_or(mt)
            ));
            inst["labelFingerprint"] = json!(fingerprint(&labels));
            let mut meta = inst.get("metadata").cloned().unwrap_or(json!({}));
            meta["fingerprint"] = json!(fingerprint(&meta["items"]));
            meta["kind"] = json!("compute#metadata");
            inst["metadata"] = meta;
            if let Some(nics) = inst["networkInterfaces"].as_array_mut() {
                for (i, nic) in nics.iter_mut().enumerate() {
                    nic["networkIP"] = json!(format!(
                        "10.128.{}.{}",
                        (s.next_id / 250) % 250,
                        s.next_id % 250 + 2 + i as u64
                    ));
                    nic["name"] = json!(format!("nic{i}"));
                }
            }
            inst["selfLink"] = json!(format!(
                "{}/compute/v1/projects/{project}/zones/{zone}/instances/{new_name}",
                s.addr
            ));
            let staging = s.staging_gets;
            s.staging.insert(key.clone(), staging);
            s.instances.insert(key, inst);
            let op = new_operation(s, &project, &zone, "insert", &new_name);
            if let (Some(rid), Some(op_name)) = (query.get("requestId"), op["name"].as_str()) {
                s.request_ids.insert(rid.clone(), op_name.to_string());
            }
            (200, op)
        }
        Some("instances.get") => {
            let left = s.staging.get(&key).copied().unwrap_or(0);
            let Some(inst) = s.instances.get_mut(&key) else {
                return error(404, "notFound", &format!("The resource 'projects/{project}/zones/{zone}/instances/{name}' was not found"));
            };
            let settling = match inst["status"].as_str() {
                // A stop or suspend in progress settles after the GET that saw it.
                Some("STOPPING") => Some("TERMINATED"),
                Some("SUSPENDING") => Some("SUSPENDED"),
                _ => None,
            };
            if left > 0 {
                inst["status"] = json!(if left > 1 { "PROVISIONING" } else { "STAGING" });
            } else if !matches!(
                inst["status"].as_str(),
                Some("TERMINATED" | "SUSPENDED" | "STOPPING" | "SUSPENDING")
            ) {
                inst["status"] = json!("RUNNING");
            }
            let out = inst.clone();
            if let Some(settled) = settling {
                inst["status"] = json!(settled);
            }
            if left > 0 {
                s.staging.insert(key, left - 1);
            }
            (200, out)
        }
        Some("instances.delete") => {
            if s.instances.remove(&key).is_none() {
                return error(404, "notFound", &format!("The resource 'projects/{project}/zones/{zone}/instances/{name}' was not found"));
            }
            (200, new_operation(s, &project, &zone, "delete", &name))
        }
        Some(call @ ("instances.start" | "instances.resume")) => {
            let from = if call == "instances.start" {
                "TERMINATED"
            } else {
                "SUSPENDED"
            };
            let Some(inst) = s.instances.get_mut(&key) else {
                return error(404, "notFound", "instance not found");
            };
            match inst["status"].as_str() {
                Some(status) if status == from => inst["status"] = json!("RUNNING"),
                Some("RUNNING") => {}
                Some(other) => {
                    return error(
                        400,
                        "resourceNotReady",
                        &format!("The resource is not ready: the instance is {other}"),
                    )
                }
                None => {}
            }
            let kind = call.trim_start_matches("instances.");
            (200, new_operation(s, &project, &zone, kind, &name))
        }
        Some("instances.setLabels") => {
            let Some(inst) = s.instances.get_mut(&key) else {
                return error(404, "notFound", "instance not found");
            };
            if body["labelFingerprint"] != inst["labelFingerprint"] {
                return error(
                    412,
                    "conditionNotMet",
                    "Labels fingerprint either invalid or resource labels have changed",
                );
            }
            let labels = body.get("labels").cloned().unwrap_or(json!({}));
            inst["labelFingerprint"] = json!(fingerprint(&labels));
            inst["labels"] = labels;
            (200, new_operation(s, &project, &zone, "setLabels", &name))
        }
        Some("instances.setMetadata") => {
            let Some(inst) = s.instances.get_mut(&key) else {
                return error(404, "notFound", "instance not found");
            };
            if body["fingerprint"] != inst["metadata"]["fingerprint"] {
                return error(
                    412,
                    "conditionNotMet",
                    "Supplied fingerprint does not match current metadata fingerprint.",
                );
            }
            let items = body.get("items").cloned().unwrap_or(json!([]));
            inst["metadata"] = json!({"kind": "compute#metadata", "fingerprint": fingerprint(&items), "items": items});
            (200, new_operation(s, &project, &zone, "setMetadata", &name))
        }
        Some("instances.aggregatedList") | Some("instances.list") => {
            let wanted = match query.get("filter").map(|f| parse_filter(f)) {
                Some(None) => return error(400, "invalid", "Invalid value for field 'filter' (this test server understands (labels.K = \"V\") AND ... only)"),
                Some(Some(w)) => w,
                None => Vec::new(),
            };
            let aggregated = method == Some("instances.aggregatedList");
            let matching: Vec<(String, Value)> = s
                .instances
                .iter()
                .filter(|((p, z, _), _)| *p == project && (aggregated || *z == zone))
                .filter(|(_, v)| {
                    wanted
                        .iter()
                        .all(|(k, val)| v["labels"][k].as_str() == Some(val.as_str()))
                })
                .map(|((_, z, _), v)| (z.clone(), v.clone()))
                .collect();
            let start: usize = query
                .get("pageToken")
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            let page: Vec<&(String, Value)> =
                matching.iter().skip(start).take(s.page_size).collect();
            let next =
                (start + page.len() < matching.len()).then(|| (start + page.len()).to_string());
            let mut out = if aggregated {
                let mut items = serde_json::Map::new();
                for (z, v) in &page {
                    let entry = items
                        .entry(format!("zones/{z}"))
                        .or_insert_with(|| json!({"instances": []}));
                    if let Some(list) = entry["instances"].as_array_mut() {
                        list.push(v.clone());
                    }
                }
                json!({"kind": "compute#instanceAggregatedList", "id": format!("projects/{project}/aggregated/instances"), "items": items})
            } else {
                json!({"kind": "compute#instanceList", "items": page.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>()})
            };
            if let Some(n) = next {
                out["nextPageToken"] = json!(n);
            }
            (200, out)
        }
        Some("zoneOperations.wait") | Some("zoneOperations.get") => {
            let op_name = parts.get(4).cloned().unwrap_or_default();
            let Some((op, left)) = s.operations.get_mut(&op_name) else {
                return error(404, "notFound", &format!("The resource 'projects/{project}/zones/{zone}/operations/{op_name}' was not found"));
            };
            if *left > 0 {
                *left -= 1;
            }
            if *left == 0 {
                op["status"] = json!("DONE");
                op["progress"] = json!(100);
            }
            (200, op.clone())
        }
        _ => error(
            400,
            "badRequest",
            &format!("this test server does not implement {path}"),
        ),
    }
}
