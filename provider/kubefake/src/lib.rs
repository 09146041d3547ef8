//! A stateful fake Kubernetes API server for tests: the Kubernetes driver's integration tests
//! (`provider/clouds/tests`) and the provider's acceptance tests (the real terraform binary
//! driving the provider, which talks to this server through a kubeconfig) share it.
//!
//! Why it exists: no kube-apiserver, k3s, kind or envtest binary can be obtained on our
//! machines, so the driver is tested at the HTTP level against a server that answers as
//! kube-apiserver does for the requests we send, and that refuses requests the real one would
//! refuse. It is a dev-dependency only and never part of the provider binary.
//!
//! What it models (and nothing more):
//! - `apps/v1` Deployments and `autoscaling/v2` HorizontalPodAutoscalers (namespaced) and `v1`
//!   Nodes (cluster-scoped): GET one, GET a list with an equality `labelSelector`, DELETE, and
//!   PATCH as server-side apply (`application/apply-patch+yaml`) or JSON merge patch.
//! - Server-side apply field ownership at the level of JSON leaves (objects are descended,
//!   arrays and scalars are leaves, empty objects own nothing): an apply sets its leaves, removes leaves its manager set
//!   before and no longer sends (unless another manager also owns them), and answers 409 when a
//!   leaf it sends with a different value is owned by another manager, unless `force=true`.
//!   A merge patch or [`FakeApiServer::edit`] is an update: the changed leaves move to its
//!   manager, as they do on a real server.
//! - `resourceVersion` (one counter for the server, bumped only by real changes; an apply that
//!   carries a stale one gets 409), `uid`, `generation`, defaults (`spec.replicas = 1`), and a
//!   status that is instantly ready.
//! - Bearer-token checks when started with [`FakeApiServer::with_token`] (401 otherwise).
//! - Status JSON errors: 400, 401, 404, 409, 415, 422.
//!
//! Not modelled: list-type merge keys (arrays are atomic), watches, subresources, admission,
//! scheduling, garbage collection of dependents, strategic merge patch, TLS.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{json, Map, Value};

/// The kinds the server knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Deployment,
    HorizontalPodAutoscaler,
    Node,
}

impl Kind {
    pub fn api_version(self) -> &'static str {
        match self {
            Kind::Deployment => "apps/v1",
            Kind::HorizontalPodAutoscaler => "autoscaling/v2",
            Kind::Node => "v1",
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Kind::Deployment => "Deployment",
            Kind::HorizontalPodAutoscaler => "HorizontalPodAutoscaler",
            Kind::Node => "Node",
        }
    }
    fn resource(self) -> &'static str {
        match self {
            Kind::Deployment => "deployments.apps",
            Kind::HorizontalPodAutoscaler => "horizontalpodautoscalers.autoscaling",
            Kind::Node => "nodes",
        }
    }
    fn plural(self) -> &'static str {
        match self {
            Kind::Deployment => "deployments",
            Kind::HorizontalPodAutoscaler => "horizontalpodautoscalers",
            Kind::Node => "nodes",
        }
    }
    fn prefix(self) -> &'static str {
        match self {
            Kind::Deployment => "/apis/apps/v1",
            Kind::HorizontalPodAutoscaler => "/apis/autoscaling/v2",
            Kind::Node => "/api/v1",
        }
    }
}

/// One HTTP request as the server received it.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub method: String,
    /// Percent-decoded path without the query.
    pub path: String,
    pub query: BTreeMap<String, String>,
    /// Lower-case header names.
    pub headers: BTreeMap<String, String>,
    /// The JSON body, `Null` when empty.
    pub body: Value,
}

impl Request {
    pub fn content_type(&self) -> Option<&str> {
        self.headers.get("content-type").map(String::as_str)
    }
    pub fn query_param(&self, key: &str) -> Option<&str> {
        self.query.get(key).map(String::as_str)
    }
}

/// A canned answer given instead of the normal behaviour (faults: 429, 500, ...).
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Reply {
    pub fn new(status: u16, body: Value) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body,
        }
    }
    /// A `Status` failure as the API server writes it.
    pub fn failure(code: u16, reason: &str, message: &str) -> Reply {
        Reply::new(code, status_body(code, reason, message))
    }
}

type Key = (Kind, String, String);

#[derive(Clone, Debug)]
struct Object {
    body: Value,
    /// manager → (leaf pointer → value it set).
    owners: BTreeMap<String, BTreeMap<String, Value>>,
}

#[derive(Default)]
struct State {
    objects: BTreeMap<Key, Object>,
    requests: Vec<Request>,
    forced: Vec<Reply>,
    resource_version: u64,
    next_uid: u64,
    token: Option<String>,
}

/// The running server; stopped when dropped.
pub struct FakeApiServer {
    state: Arc<Mutex<State>>,
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A test thread that failed while holding the lock leaves usable data behind.
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl FakeApiServer {
    /// Starts a server on 127.0.0.1 (a free port) that accepts any or no credentials.
    pub fn start() -> FakeApiServer {
        Self::start_with(None)
    }

    /// Starts a server that answers 401 unless `Authorization: Bearer <token>` is sent.
    pub fn with_token(token: &str) -> FakeApiServer {
        Self::start_with(Some(token.to_string()))
    }

    fn start_with(token: Option<String>) -> FakeApiServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let state = Arc::new(Mutex::new(State {
            token,
            ..State::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (accept_state, accept_stop) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accept_stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let (state, stop) = (accept_state.clone(), accept_stop.clone());
                std::thread::spawn(move || serve(stream, &state, &stop));
            }
        });
        FakeApiServer { state, addr, stop }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig for this server with one context `context` (cluster and user of the same
    /// name), namespace `namespace`, and `token` as the user's bearer token when given.
    pub fn kubeconfig(&self, context: &str, namespace: &str, token: Option<&str>) -> String {
        let user = match token {
            Some(t) => format!("\n    token: {t}"),
            None => " {}".to_string(),
        };
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: {context}\nclusters:\n- name: {context}\n  cluster:\n    server: {url}\ncontexts:\n- name: {context}\n  context:\n    cluster: {context}\n    user: {context}\n    namespace: {namespace}\nusers:\n- name: {context}\n  user:{user}\n",
            url = self.url()
        )
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.state).requests.clone()
    }

    /// The mutating requests (PATCH, PUT, POST, DELETE) so far.
    pub fn writes(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.method != "GET")
            .collect()
    }

    pub fn clear_requests(&self) {
        lock(&self.state).requests.clear();
    }

    /// The next request gets `reply` instead of the normal answer (queued, first in first out).
    pub fn push_reply(&self, reply: Reply) {
        lock(&self.state).forced.push(reply);
    }

    /// The stored object (`namespace` is ignored for Nodes).
    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Option<Value> {
        lock(&self.state)
            .objects
            .get(&key(kind, namespace, name))
            .map(|o| o.body.clone())
    }

    /// Every stored object of `kind`.
    pub fn objects(&self, kind: Kind) -> Vec<Value> {
        lock(&self.state)
            .objects
            .iter()
            .filter(|((k, _, _), _)| *k == kind)
            .map(|(_, o)| o.body.clone())
            .collect()
    }

    /// The leaves each field manager owns (JSON pointers), as `managedFields` would say.
    pub fn managers(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
    ) -> BTreeMap<String, BTreeSet<String>> {
        lock(&self.state)
            .objects
            .get(&key(kind, namespace, name))
            .map(|o| {
                o.owners
                    .iter()
                    .map(|(m, leaves)| (m.clone(), leaves.keys().cloned().collect()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Registers a Node as a kubelet would (labels owned by the manager `kubelet`).
    pub fn add_node(&self, name: &str, labels: &[(&str, &str)]) {
        let mut all: Map<String, Value> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        all.insert("kubernetes.io/hostname".into(), json!(name));
        let body = json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": { "name": name, "labels": all },
            "status": { "conditions": [{ "type": "Ready", "status": "True" }] },
        });
        let mut s = lock(&self.state);
        let owned = leaves(&body);
        s.resource_version += 1;
        s.next_uid += 1;
        let mut body = body;
        stamp_new(&mut body, s.next_uid, s.resource_version);
        s.objects.insert(
            key(Kind::Node, "", name),
            Object {
                body,
                owners: BTreeMap::from([("kubelet".to_string(), owned)]),
            },
        );
    }

    /// Changes an object as another client's update would (e.g. `kubectl edit`): the leaves
    /// `change` alters move to `manager`. Returns false when there is no such object.
    pub fn edit(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        manager: &str,
        change: impl FnOnce(&mut Value),
    ) -> bool {
        let mut s = lock(&self.state);
        let Some(before) = s.objects.get(&key(kind, namespace, name)).cloned() else {
            return false;
        };
        let mut after = before.body.clone();
        change(&mut after);
        let rv = s.resource_version + 1;
        let updated = update(before, after, manager, rv);
        if updated.body != s.objects[&key(kind, namespace, name)].body {
            s.resource_version = rv;
        }
        s.objects.insert(key(kind, namespace, name), updated);
        true
    }

    /// Removes an object as another client would (no request is recorded).
    pub fn remove(&self, kind: Kind, namespace: &str, name: &str) -> bool {
        lock(&self.state)
            .objects
            .remove(&key(kind, namespace, name))
            .is_some()
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn key(kind: Kind, namespace: &str, name: &str) -> Key {
    let ns = if kind == Kind::Node { "" } else { namespace };
    (kind, ns.to_string(), name.to_string())
}

fn status_body(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code,
    })
}

// ---------------------------------------------------------------------------------------------
// JSON leaves and field ownership

fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

fn unescape(segment: &str) -> String {
    segment.replace("~1", "/").replace("~0", "~")
}

/// Identity and bookkeeping fields: never owned, never conflicting.
fn is_identity(pointer: &str) -> bool {
    matches!(
        pointer,
        "/apiVersion"
            | "/kind"
            | "/metadata/name"
            | "/metadata/namespace"
            | "/metadata/resourceVersion"
            | "/metadata/uid"
            | "/metadata/generation"
            | "/metadata/creationTimestamp"
            | "/metadata/managedFields"
    ) || pointer.starts_with("/status")
}

fn collect(value: &Value, prefix: &str, out: &mut BTreeMap<String, Value>) {
    match value {
        // An empty object says nothing about its fields: it owns nothing and changes nothing.
        Value::Object(map) => {
            for (k, v) in map {
                collect(v, &format!("{prefix}/{}", escape(k)), out);
            }
        }
        other => {
            if !prefix.is_empty() && !is_identity(prefix) {
                out.insert(prefix.to_string(), other.clone());
            }
        }
    }
}

/// The object's leaves: objects are descended, arrays and scalars are leaves.
fn leaves(value: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    collect(value, "", &mut out);
    out
}

fn segments(pointer: &str) -> Vec<String> {
    pointer.split('/').skip(1).map(unescape).collect()
}

fn set_at(target: &mut Value, pointer: &str, value: Value) {
    let segs = segments(pointer);
    let mut cur = target;
    for (i, seg) in segs.iter().enumerate() {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let Value::Object(map) = cur else { return };
        if i + 1 == segs.len() {
            map.insert(seg.clone(), value);
            return;
        }
        cur = map.entry(seg.clone()).or_insert(Value::Object(Map::new()));
    }
}

fn remove_at(target: &mut Value, pointer: &str) {
    let segs = segments(pointer);
    let Some((last, parents)) = segs.split_last() else {
        return;
    };
    let mut cur = target;
    for seg in parents {
        match cur.get_mut(seg.as_str()) {
            Some(next) => cur = next,
            None => return,
        }
    }
    if let Value::Object(map) = cur {
        map.remove(last.as_str());
    }
}

/// An update by `manager` from `before` to `after`: changed leaves move to it.
fn update(before: Object, mut after: Value, manager: &str, rv: u64) -> Object {
    let old = leaves(&before.body);
    let new = leaves(&after);
    let mut owners = before.owners;
    let mut changed = false;
    for (pointer, value) in &new {
        if old.get(pointer) != Some(value) {
            changed = true;
            for (m, owned) in owners.iter_mut() {
                if m != manager {
                    owned.remove(pointer);
                }
            }
            owners
                .entry(manager.to_string())
                .or_default()
                .insert(pointer.clone(), value.clone());
        }
    }
    for pointer in old.keys().filter(|p| !new.contains_key(*p)) {
        changed = true;
        for owned in owners.values_mut() {
            owned.remove(pointer);
        }
    }
    owners.retain(|_, owned| !owned.is_empty());
    if changed {
        bump(&mut after, rv);
    }
    Object {
        body: after,
        owners,
    }
}

fn bump(body: &mut Value, rv: u64) {
    body["metadata"]["resourceVersion"] = json!(rv.to_string());
    let generation = body["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
    body["metadata"]["generation"] = json!(generation);
    refresh_status(body);
}

fn stamp_new(body: &mut Value, uid: u64, rv: u64) {
    body["metadata"]["uid"] = json!(format!("00000000-0000-4000-8000-{uid:012}"));
    body["metadata"]["creationTimestamp"] = json!("2026-11-25T18:00:00Z");
    body["metadata"]["resourceVersion"] = json!(rv.to_string());
    body["metadata"]["generation"] = json!(1);
    refresh_status(body);
}

/// Status as if every controller had already done its work.
fn refresh_status(body: &mut Value) {
    match body["kind"].as_str() {
        Some("Deployment") => {
            if body["spec"]["replicas"].is_null() {
                body["spec"]["replicas"] = json!(1);
            }
            let r = body["spec"]["replicas"].clone();
            body["status"] = json!({
                "observedGeneration": body["metadata"]["generation"].clone(),
                "replicas": r, "readyReplicas": r, "updatedReplicas": r, "availableReplicas": r,
            });
        }
        Some("HorizontalPodAutoscaler") => {
            let min = body["spec"]["minReplicas"].as_i64().unwrap_or(1);
            body["status"] = json!({ "currentReplicas": min, "desiredReplicas": min });
        }
        _ => {}
    }
}

fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

// ---------------------------------------------------------------------------------------------
// Routing and answers

struct Target {
    kind: Kind,
    namespace: String,
    name: Option<String>,
}

fn route(path: &str) -> Option<Target> {
    for kind in [Kind::Deployment, Kind::HorizontalPodAutoscaler, Kind::Node] {
        let Some(rest) = path.strip_prefix(kind.prefix()) else {
            continue;
        };
        let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
        let (namespace, tail) = match (kind, parts.as_slice()) {
            (Kind::Node, tail) => (String::new(), tail),
            (_, ["namespaces", ns, tail @ ..]) => (ns.to_string(), tail),
            _ => continue,
        };
        match tail {
            [plural] if *plural == kind.plural() => {
                return Some(Target {
                    kind,
                    namespace,
                    name: None,
                })
            }
            [plural, name] if *plural == kind.plural() => {
                return Some(Target {
                    kind,
                    namespace,
                    name: Some(name.to_string()),
                })
            }
            _ => {}
        }
    }
    None
}

fn not_found(kind: Kind, name: &str) -> Reply {
    Reply::failure(
        404,
        "NotFound",
        &format!("{} \"{name}\" not found", kind.resource()),
    )
}

fn selector_matches(obj: &Value, selector: &str) -> Result<bool, String> {
    for term in selector.split(',').filter(|t| !t.is_empty()) {
        let (k, v) = term
            .split_once('=')
            .ok_or_else(|| format!("unsupported selector term {term:?}"))?;
        if obj["metadata"]["labels"][k].as_str() != Some(v) {
            return Ok(false);
        }
    }
    Ok(true)
}

fn answer(state: &mut State, req: &Request) -> Reply {
    if !state.forced.is_empty() {
        return state.forced.remove(0);
    }
    if let Some(token) = &state.token {
        let wanted = format!("Bearer {token}");
        if req.headers.get("authorization") != Some(&wanted) {
            return Reply::failure(401, "Unauthorized", "Unauthorized");
        }
    }
    let Some(target) = route(&req.path) else {
        return Reply::failure(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
    };
    let kind = target.kind;
    let Some(name) = target.name else {
        if req.method != "GET" {
            return Reply::failure(405, "MethodNotAllowed", "only GET is served on lists");
        }
        let selector = req.query_param("labelSelector").unwrap_or_default();
        let mut items = Vec::new();
        for ((k, ns, _), obj) in &state.objects {
            if *k != kind || (kind != Kind::Node && *ns != target.namespace) {
                continue;
            }
            match selector_matches(&obj.body, selector) {
                Ok(true) => items.push(obj.body.clone()),
                Ok(false) => {}
                Err(msg) => return Reply::failure(400, "BadRequest", &msg),
            }
        }
        return Reply::new(
            200,
            json!({
                "kind": format!("{}List", kind.name()), "apiVersion": kind.api_version(),
                "metadata": { "resourceVersion": state.resource_version.to_string() },
                "items": items,
            }),
        );
    };
    let k = key(kind, &target.namespace, &name);
    match req.method.as_str() {
        "GET" => match state.objects.get(&k) {
            Some(o) => Reply::new(200, o.body.clone()),
            None => not_found(kind, &name),
        },
        "DELETE" => match state.objects.remove(&k) {
            Some(_) => {
                state.resource_version += 1;
                Reply::new(
                    200,
                    json!({
                        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                        "details": { "name": name, "kind": kind.plural() },
                    }),
                )
            }
            None => not_found(kind, &name),
        },
        "PATCH" => match req.content_type() {
            Some("application/apply-patch+yaml") => {
                apply(state, req, kind, &target.namespace, &name)
            }
            Some("application/merge-patch+json") => {
                let Some(before) = state.objects.get(&k).cloned() else {
                    return not_found(kind, &name);
                };
                let mut after = before.body.clone();
                merge(&mut after, &req.body);
                let manager = req.query_param("fieldManager").unwrap_or("unknown");
                let updated = update(before, after, manager, state.resource_version + 1);
                if updated.body != state.objects[&k].body {
                    state.resource_version += 1;
                }
                let body = updated.body.clone();
                state.objects.insert(k, updated);
                Reply::new(200, body)
            }
            other => Reply::failure(
                415,
                "UnsupportedMediaType",
                &format!("the body of the request was in an unknown format: {other:?}"),
            ),
        },
        other => Reply::failure(
            405,
            "MethodNotAllowed",
            &format!("{other} is not supported by this fake"),
        ),
    }
}

/// Server-side apply of `req.body` by its `fieldManager`.
fn apply(state: &mut State, req: &Request, kind: Kind, namespace: &str, name: &str) -> Reply {
    let Some(manager) = req.query_param("fieldManager").filter(|m| !m.is_empty()) else {
        return Reply::failure(
            400,
            "BadRequest",
            "PATCH requests with apply content type must have a fieldManager",
        );
    };
    let force = req.query_param("force") == Some("true");
    let body = &req.body;
    if body["apiVersion"].as_str() != Some(kind.api_version())
        || body["kind"].as_str() != Some(kind.name())
    {
        return Reply::failure(
            400,
            "BadRequest",
            &format!(
                "apiVersion/kind {:?}/{:?} does not match the URL ({}/{})",
                body["apiVersion"],
                body["kind"],
                kind.api_version(),
                kind.name()
            ),
        );
    }
    if body["metadata"]["name"].as_str() != Some(name) {
        return Reply::failure(
            400,
            "BadRequest",
            "the name of the object does not match the name on the URL",
        );
    }
    if kind != Kind::Node {
        if let Some(ns) = body["metadata"]["namespace"].as_str() {
            if ns != namespace {
                return Reply::failure(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match the namespace sent on the request",
                );
            }
        }
    }
    let k = key(kind, namespace, name);
    let existing = state.objects.get(&k).cloned();
    if let (Some(sent), Some(obj)) = (body["metadata"]["resourceVersion"].as_str(), &existing) {
        if obj.body["metadata"]["resourceVersion"].as_str() != Some(sent) {
            return Reply::failure(
                409,
                "Conflict",
                &format!("Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again", kind.resource()),
            );
        }
    }
    let sent = leaves(body);
    let mut owners = existing
        .as_ref()
        .map(|o| o.owners.clone())
        .unwrap_or_default();
    let current = existing
        .as_ref()
        .map(|o| leaves(&o.body))
        .unwrap_or_default();
    let mut conflicts = Vec::new();
    for (pointer, value) in &sent {
        for (other, owned) in &owners {
            if other != manager
                && owned.contains_key(pointer)
                && current.get(pointer) != Some(value)
            {
                conflicts.push((other.clone(), pointer.clone()));
            }
        }
    }
    if !conflicts.is_empty() {
        if !force {
            let list: Vec<String> = conflicts
                .iter()
                .map(|(m, p)| format!("conflict with \"{m}\": {}", p.replace('/', ".")))
                .collect();
            return Reply::failure(
                409,
                "Conflict",
                &format!(
                    "Apply failed with {} conflict(s): {}",
                    conflicts.len(),
                    list.join("; ")
                ),
            );
        }
        for (other, pointer) in &conflicts {
            if let Some(owned) = owners.get_mut(other) {
                owned.remove(pointer);
            }
        }
    }
    let mut object = existing
        .as_ref()
        .map(|o| o.body.clone())
        .unwrap_or_else(|| {
            json!({
                "apiVersion": kind.api_version(), "kind": kind.name(),
                "metadata": if kind == Kind::Node { json!({ "name": name }) } else { json!({ "name": name, "namespace": namespace }) },
            })
        });
    let previously: Vec<String> = owners
        .get(manager)
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    for pointer in previously.iter().filter(|p| !sent.contains_key(*p)) {
        let shared = owners
            .iter()
            .any(|(m, owned)| m != manager && owned.contains_key(pointer));
        if !shared {
            remove_at(&mut object, pointer);
        }
    }
    for (pointer, value) in &sent {
        set_at(&mut object, pointer, value.clone());
    }
    owners.insert(manager.to_string(), sent);
    owners.retain(|_, owned| !owned.is_empty());
    let created = existing.is_none();
    if created {
        state.resource_version += 1;
        state.next_uid += 1;
        stamp_new(&mut object, state.next_uid, state.resource_version);
    } else if existing.as_ref().map(|o| leaves(&o.body)) != Some(leaves(&object)) {
        state.resource_version += 1;
        bump(&mut object, state.resource_version);
    }
    state.objects.insert(
        k,
        Object {
            body: object.clone(),
            owners,
        },
    );
    Reply::new(if created { 201 } else { 200 }, object)
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1

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
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads a line, riding out read timeouts (used to notice shutdown) while idle.
fn read_line(reader: &mut BufReader<TcpStream>, stop: &AtomicBool) -> Option<String> {
    let mut line = Vec::new();
    loop {
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => return None,
            Ok(_) if line.ends_with(b"\n") => {
                return Some(String::from_utf8_lossy(&line).into_owned())
            }
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if stop.load(Ordering::SeqCst) {
                    return None;
                }
            }
            Err(_) => return None,
        }
    }
}

fn read_request(reader: &mut BufReader<TcpStream>, stop: &AtomicBool) -> Option<Request> {
    let line = read_line(reader, stop)?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = BTreeMap::new();
    loop {
        let h = read_line(reader, stop)?;
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
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    let mut filled = 0;
    while filled < len {
        match reader.read(&mut body[filled..]) {
            Ok(0) => return None,
            Ok(n) => filled += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return None,
        }
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let query = query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    Some(Request {
        method,
        path: percent_decode(path),
        query,
        headers,
        // A body that is not JSON is kept as a string; apply then refuses it.
        body: if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
        },
    })
}

fn serve(stream: TcpStream, state: &Mutex<State>, stop: &AtomicBool) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while let Some(req) = read_request(&mut reader, stop) {
        let r = {
            let mut s = lock(state);
            s.requests.push(req.clone());
            answer(&mut s, &req)
        };
        let body = r.body.to_string();
        let mut head = format!(
            "HTTP/1.1 {} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            r.status,
            body.len()
        );
        for (k, v) in &r.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        if writer.write_all(head.as_bytes()).is_err() || writer.write_all(body.as_bytes()).is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, path: &str, query: &[(&str, &str)], ctype: &str, body: Value) -> Request {
        Request {
            method: method.into(),
            path: path.into(),
            query: query
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            headers: BTreeMap::from([("content-type".to_string(), ctype.to_string())]),
            body,
        }
    }

    fn node_apply(manager: &str, labels: Value, force: bool) -> Request {
        let mut q = vec![("fieldManager", manager)];
        if force {
            q.push(("force", "true"));
        }
        req(
            "PATCH",
            "/api/v1/nodes/n1",
            &q,
            "application/apply-patch+yaml",
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "labels": labels}}),
        )
    }

    #[test]
    fn apply_owns_sets_removes_and_conflicts() {
        let server = FakeApiServer::start();
        server.add_node("n1", &[("zone", "a")]);
        let mut s = lock(&server.state);
        let r = answer(
            &mut s,
            &node_apply("us", json!({"hybrid.io/x": "1", "hybrid.io/y": "2"}), false),
        );
        assert_eq!(r.status, 200);
        assert_eq!(r.body["metadata"]["labels"]["zone"], "a");
        // Dropping a key we applied removes it; the kubelet's stay.
        let r = answer(
            &mut s,
            &node_apply("us", json!({"hybrid.io/x": "1"}), false),
        );
        assert!(r.body["metadata"]["labels"]["hybrid.io/y"].is_null());
        assert_eq!(r.body["metadata"]["labels"]["zone"], "a");
        // Another manager's key with a new value conflicts, unless forced.
        let r = answer(&mut s, &node_apply("us", json!({"zone": "b"}), false));
        assert_eq!(r.status, 409, "{}", r.body);
        let r = answer(&mut s, &node_apply("us", json!({"zone": "b"}), true));
        assert_eq!(r.status, 200);
        assert_eq!(r.body["metadata"]["labels"]["zone"], "b");
        // An empty apply gives up everything the manager owned.
        let r = answer(&mut s, &node_apply("us", json!({}), false));
        assert!(r.body["metadata"]["labels"]["hybrid.io/x"].is_null());
        assert!(r.body["metadata"]["labels"]["zone"].is_null());
        assert_eq!(r.body["metadata"]["labels"]["kubernetes.io/hostname"], "n1");
    }

    #[test]
    fn an_edit_takes_ownership_so_a_plain_apply_conflicts() {
        let server = FakeApiServer::start();
        server.add_node("n1", &[]);
        {
            let mut s = lock(&server.state);
            answer(
                &mut s,
                &node_apply("us", json!({"hybrid.io/x": "1"}), false),
            );
        }
        assert!(server.edit(Kind::Node, "", "n1", "kubectl-edit", |n| {
            n["metadata"]["labels"]["hybrid.io/x"] = json!("2");
        }));
        let owners = server.managers(Kind::Node, "", "n1");
        assert!(owners["kubectl-edit"].contains("/metadata/labels/hybrid.io~1x"));
        let mut s = lock(&server.state);
        assert_eq!(
            answer(
                &mut s,
                &node_apply("us", json!({"hybrid.io/x": "1"}), false)
            )
            .status,
            409
        );
        assert_eq!(
            answer(&mut s, &node_apply("us", json!({"hybrid.io/x": "1"}), true)).status,
            200
        );
    }

    #[test]
    fn requests_the_real_server_refuses_are_refused() {
        let server = FakeApiServer::start();
        let mut s = lock(&server.state);
        let mut r = node_apply("us", json!({}), false);
        r.query.clear();
        assert_eq!(answer(&mut s, &r).status, 400);
        let mut r = node_apply("us", json!({}), false);
        r.body["kind"] = json!("Pod");
        assert_eq!(answer(&mut s, &r).status, 400);
        let mut r = node_apply("us", json!({}), false);
        r.headers
            .insert("content-type".into(), "application/json".into());
        assert_eq!(answer(&mut s, &r).status, 415);
        let r = req(
            "GET",
            "/apis/apps/v1/namespaces/ns/deployments/x",
            &[],
            "",
            Value::Null,
        );
        assert_eq!(answer(&mut s, &r).status, 404);
    }

    #[test]
    fn stale_resource_versions_conflict_and_no_op_applies_keep_the_version() {
        let server = FakeApiServer::start();
        let mut s = lock(&server.state);
        let dep = |rv: Option<&str>| {
            let mut body = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "d", "namespace": "ns"}, "spec": {"replicas": 2}});
            if let Some(rv) = rv {
                body["metadata"]["resourceVersion"] = json!(rv);
            }
            req(
                "PATCH",
                "/apis/apps/v1/namespaces/ns/deployments/d",
                &[("fieldManager", "us")],
                "application/apply-patch+yaml",
                body,
            )
        };
        let first = answer(&mut s, &dep(None));
        assert_eq!(first.status, 201);
        assert_eq!(first.body["status"]["readyReplicas"], 2);
        let rv = first.body["metadata"]["resourceVersion"].clone();
        let again = answer(&mut s, &dep(None));
        assert_eq!(again.body["metadata"]["resourceVersion"], rv);
        assert_eq!(answer(&mut s, &dep(Some("999"))).status, 409);
    }
}
