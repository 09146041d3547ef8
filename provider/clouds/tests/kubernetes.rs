//! The Kubernetes driver against a scripted API server: a tiny HTTP/1.1 responder on
//! 127.0.0.1:0 (std threads, no extra dependencies) that records every request, checks what the
//! driver must send, and answers as kube-apiserver does (Deployment JSON with uid and
//! resourceVersion, Status JSON for errors).
#![cfg(feature = "kubernetes")]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use clouds::kubernetes::{
    deployment_name, KubeTarget, KubernetesDriver, LABEL_IDEMPOTENCY_KEY, LABEL_MANAGED_BY,
    LABEL_WORKLOAD_ID,
};
use clouds::{Driver, DriverError, InstanceSpec, TAG_MANAGED_BY, TAG_WORKLOAD_ID};
use serde_json::{json, Value};

const NS: &str = "edge-berlin";
const TOKEN: &str = "s3cr3t";

#[derive(Clone, Debug)]
struct Request {
    method: String,
    path: String,
    query: BTreeMap<String, String>,
    headers: BTreeMap<String, String>,
    body: Value,
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

#[derive(Default)]
struct State {
    deployments: BTreeMap<String, Value>,
    requests: Vec<Request>,
    /// Answers given instead of the normal behaviour, first to last.
    forced: Vec<Reply>,
    next_uid: u64,
    resource_version: u64,
    addr: String,
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, State> {
    state.lock().expect("state lock")
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("hex");
                out.push(u8::from_str_radix(hex, 16).expect("hex"));
                i += 3;
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
    String::from_utf8(out).expect("utf8")
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code,
    })
}

fn reply(status_code: u16, body: Value) -> Reply {
    Reply {
        status: status_code,
        headers: Vec::new(),
        body,
    }
}

fn not_found(name: &str) -> Reply {
    reply(
        404,
        status(
            404,
            "NotFound",
            &format!("deployments.apps \"{name}\" not found"),
        ),
    )
}

/// Merges `patch` into `target` as a JSON merge patch (RFC 7386).
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

fn selector_matches(dep: &Value, selector: &str) -> bool {
    selector.split(',').all(|term| {
        let (k, v) = term.split_once('=').expect("equality selector");
        dep["metadata"]["labels"][k].as_str() == Some(v)
    })
}

/// What kube-apiserver would answer (the subset the driver uses).
fn answer(state: &mut State, req: &Request) -> Reply {
    if !state.forced.is_empty() {
        return state.forced.remove(0);
    }
    let prefix = format!("/apis/apps/v1/namespaces/{NS}/deployments");
    let Some(rest) = req.path.strip_prefix(&prefix) else {
        return reply(404, status(404, "NotFound", "no such path"));
    };
    let name = rest.trim_start_matches('/').to_string();
    match (req.method.as_str(), name.is_empty()) {
        ("GET", true) => {
            let selector = req.query.get("labelSelector").cloned().unwrap_or_default();
            let items: Vec<Value> = state
                .deployments
                .values()
                .filter(|d| selector.is_empty() || selector_matches(d, &selector))
                .cloned()
                .collect();
            reply(
                200,
                json!({
                    "kind": "DeploymentList", "apiVersion": "apps/v1",
                    "metadata": {"resourceVersion": state.resource_version.to_string()},
                    "items": items,
                }),
            )
        }
        ("GET", false) => match state.deployments.get(&name) {
            Some(d) => reply(200, d.clone()),
            None => not_found(&name),
        },
        ("PATCH", false) => {
            let ctype = req.headers.get("content-type").cloned().unwrap_or_default();
            if ctype == "application/apply-patch+yaml" {
                state.resource_version += 1;
                let rv = state.resource_version.to_string();
                if let Some(existing) = state.deployments.get(&name) {
                    // Same applied config: nothing changes, the object comes back as it is.
                    if existing["spec"] == req.body["spec"]
                        && existing["metadata"]["labels"] == req.body["metadata"]["labels"]
                    {
                        return reply(200, existing.clone());
                    }
                    let mut updated = existing.clone();
                    merge(&mut updated, &req.body);
                    updated["metadata"]["resourceVersion"] = json!(rv);
                    state.deployments.insert(name, updated.clone());
                    return reply(200, updated);
                }
                state.next_uid += 1;
                let mut created = req.body.clone();
                created["metadata"]["uid"] = json!(format!("uid-{}", state.next_uid));
                created["metadata"]["resourceVersion"] = json!(rv);
                created["metadata"]["creationTimestamp"] = json!("2026-11-25T18:00:00Z");
                let replicas = created["spec"]["replicas"].clone();
                created["status"] = json!({"replicas": replicas, "readyReplicas": replicas});
                state.deployments.insert(name, created.clone());
                reply(201, created)
            } else if ctype == "application/merge-patch+json" {
                let Some(existing) = state.deployments.get_mut(&name) else {
                    return not_found(&name);
                };
                merge(existing, &req.body);
                state.resource_version += 1;
                existing["metadata"]["resourceVersion"] = json!(state.resource_version.to_string());
                reply(200, existing.clone())
            } else {
                reply(
                    415,
                    status(
                        415,
                        "UnsupportedMediaType",
                        &format!("content-type {ctype}"),
                    ),
                )
            }
        }
        ("DELETE", false) => match state.deployments.remove(&name) {
            Some(mut d) => {
                // Foreground deletion: the object is returned with a deletion timestamp and the
                // foregroundDeletion finalizer; here it is gone right after.
                d["metadata"]["deletionTimestamp"] = json!("2026-11-25T18:05:00Z");
                d["metadata"]["finalizers"] = json!(["foregroundDeletion"]);
                reply(200, d)
            }
            None => not_found(&name),
        },
        _ => reply(405, status(405, "MethodNotAllowed", "method not allowed")),
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
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
    reader.read_exact(&mut body).ok()?;
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
        body: if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).expect("request bodies are JSON")
        },
    })
}

fn serve(stream: TcpStream, state: Shared) {
    let mut writer = stream.try_clone().expect("clone stream");
    let mut reader = BufReader::new(stream);
    while let Some(req) = read_request(&mut reader) {
        let r = {
            let mut s = lock(&state);
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

/// Starts the fake API server; the state records its address.
fn start_server() -> Shared {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let state: Shared = Arc::default();
    lock(&state).addr = addr.to_string();
    let server_state = state.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let state = server_state.clone();
            std::thread::spawn(move || serve(stream, state));
        }
    });
    state
}

/// Starts the fake API server; returns its state and a driver pointed at it.
fn start() -> (Shared, KubernetesDriver) {
    let state = start_server();
    let addr = lock(&state).addr.clone();
    let driver = KubernetesDriver::new(&KubeTarget {
        server_url: format!("http://{addr}"),
        token: Some(TOKEN.into()),
        namespace: NS.into(),
    })
    .expect("driver");
    (state, driver)
}

fn spec(workload: &str, key: &str) -> InstanceSpec {
    InstanceSpec {
        idempotency_key: key.into(),
        workload_id: workload.into(),
        name: "cache".into(),
        provider: "edge".into(),
        region: "berlin".into(),
        zone: None,
        instance_type: None,
        node: Some("edge-node-1".into()),
        image: Some("nginx:1.27".into()),
        tags: BTreeMap::from([("team".to_string(), "cdn".to_string())]),
        metadata: Some(json!({"cpu": 0.5, "memory_gb": 1, "replicas": 2})),
    }
}

fn requests(state: &Shared) -> Vec<Request> {
    lock(state).requests.clone()
}

#[tokio::test]
async fn full_lifecycle_sends_the_right_requests() {
    let (state, driver) = start();
    let made = driver.create(&spec("wl-1", "key-1")).await.expect("create");
    let name = deployment_name("wl-1");
    assert_eq!(name, "hybrid-wl-1");
    assert_eq!(made.instance_id, format!("{NS}/{name}"));
    assert_eq!(made.workload_id, "wl-1");
    assert_eq!(made.idempotency_key, "key-1");
    assert_eq!(made.name, "cache");
    assert_eq!(made.region, "berlin");
    assert_eq!(made.node.as_deref(), Some("edge-node-1"));
    assert_eq!(made.image.as_deref(), Some("nginx:1.27"));
    assert_eq!(made.status, "running");
    assert_eq!(made.private_ip, "");
    assert_eq!(made.tags["team"], "cdn");
    assert_eq!(made.tags[TAG_MANAGED_BY], "terraform-provider-hybrid");
    assert_eq!(made.tags[TAG_WORKLOAD_ID], "wl-1");
    assert_eq!(
        made.metadata,
        Some(json!({"cpu": 0.5, "memory_gb": 1, "replicas": 2}))
    );

    // The apply request.
    let apply = &requests(&state)[0];
    assert_eq!(apply.method, "PATCH");
    assert_eq!(
        apply.path,
        format!("/apis/apps/v1/namespaces/{NS}/deployments/hybrid-wl-1")
    );
    assert_eq!(
        apply.query.get("fieldManager").map(String::as_str),
        Some("terraform-provider-hybrid")
    );
    assert!(!apply.query.contains_key("force"), "apply is not forced");
    assert_eq!(
        apply.headers.get("content-type").map(String::as_str),
        Some("application/apply-patch+yaml")
    );
    assert_eq!(
        apply.headers.get("authorization").map(String::as_str),
        Some("Bearer s3cr3t")
    );
    let body = &apply.body;
    assert_eq!(body["apiVersion"], "apps/v1");
    assert_eq!(body["kind"], "Deployment");
    assert_eq!(body["metadata"]["namespace"], NS);
    let labels = &body["metadata"]["labels"];
    assert_eq!(labels[LABEL_MANAGED_BY], "terraform-provider-hybrid");
    assert_eq!(labels[LABEL_WORKLOAD_ID], "wl-1");
    assert_eq!(labels[LABEL_IDEMPOTENCY_KEY], "key-1");
    assert_eq!(body["spec"]["replicas"], 2);
    assert_eq!(
        body["spec"]["selector"]["matchLabels"][LABEL_WORKLOAD_ID],
        "wl-1"
    );
    let pod = &body["spec"]["template"]["spec"];
    assert_eq!(pod["nodeSelector"]["kubernetes.io/hostname"], "edge-node-1");
    assert_eq!(pod["containers"][0]["image"], "nginx:1.27");
    assert_eq!(pod["containers"][0]["resources"]["requests"]["cpu"], "500m");
    assert_eq!(
        pod["containers"][0]["resources"]["requests"]["memory"],
        "1024Mi"
    );
    assert_eq!(
        body["spec"]["template"]["metadata"]["labels"][LABEL_WORKLOAD_ID],
        "wl-1"
    );

    // read
    let read = driver.read(&made.instance_id).await.expect("read");
    assert_eq!(read.as_ref(), Some(&made));
    let get = requests(&state).last().cloned().expect("request");
    assert_eq!(
        (get.method.as_str(), get.path.as_str()),
        (
            "GET",
            "/apis/apps/v1/namespaces/edge-berlin/deployments/hybrid-wl-1"
        )
    );

    // find_by_workload
    let found = driver.find_by_workload("wl-1").await.expect("find");
    assert_eq!(found.as_ref(), Some(&made));
    let list = requests(&state).last().cloned().expect("request");
    assert_eq!(list.method, "GET");
    assert_eq!(
        list.path,
        format!("/apis/apps/v1/namespaces/{NS}/deployments")
    );
    assert_eq!(
        list.query.get("labelSelector").map(String::as_str),
        Some("hybrid.io/workload-id=wl-1")
    );
    assert_eq!(
        driver.find_by_workload("wl-other").await.expect("find"),
        None
    );

    // list_managed
    let all = driver.list_managed().await.expect("list");
    assert_eq!(all, vec![made.clone()]);
    let list = requests(&state).last().cloned().expect("request");
    assert_eq!(
        list.query.get("labelSelector").map(String::as_str),
        Some("hybrid.io/managed-by=terraform-provider-hybrid")
    );

    // update_tags
    let new_tags = BTreeMap::from([("env".to_string(), "prod".to_string())]);
    let updated = driver
        .update_tags(&made.instance_id, &new_tags, None)
        .await
        .expect("update");
    assert_eq!(updated.tags.get("env").map(String::as_str), Some("prod"));
    assert!(!updated.tags.contains_key("team"));
    assert_eq!(updated.tags[TAG_WORKLOAD_ID], "wl-1");
    assert_eq!(updated.metadata, None);
    let patch = requests(&state).last().cloned().expect("request");
    assert_eq!(patch.method, "PATCH");
    assert_eq!(
        patch.headers.get("content-type").map(String::as_str),
        Some("application/merge-patch+json")
    );
    assert_eq!(
        patch.body["metadata"]["annotations"]["hybrid.io/tags"],
        "{\"env\":\"prod\"}"
    );
    assert!(patch.body["metadata"]["annotations"]["hybrid.io/metadata"].is_null());
    assert_eq!(
        driver.read(&made.instance_id).await.expect("read"),
        Some(updated)
    );

    // delete, then read is None
    driver.delete(&made.instance_id).await.expect("delete");
    let del = requests(&state).last().cloned().expect("request");
    assert_eq!(del.method, "DELETE");
    assert_eq!(
        del.path,
        format!("/apis/apps/v1/namespaces/{NS}/deployments/hybrid-wl-1")
    );
    assert_eq!(del.body["propagationPolicy"], "Foreground");
    assert_eq!(driver.read(&made.instance_id).await.expect("read"), None);
    assert!(driver.list_managed().await.expect("list").is_empty());
}

#[tokio::test]
async fn a_repeated_create_returns_the_same_deployment() {
    let (state, driver) = start();
    let first = driver.create(&spec("wl-2", "k")).await.expect("create");
    let again = driver
        .create(&spec("wl-2", "k"))
        .await
        .expect("create again");
    assert_eq!(first, again);
    let s = lock(&state);
    assert_eq!(s.deployments.len(), 1);
    let dep = &s.deployments["hybrid-wl-2"];
    assert_eq!(dep["metadata"]["uid"], "uid-1");
    assert_eq!(dep["metadata"]["resourceVersion"], "1");
}

#[tokio::test]
async fn deleting_a_missing_deployment_succeeds() {
    let (state, driver) = start();
    driver
        .delete(&format!("{NS}/hybrid-gone"))
        .await
        .expect("404 on delete is success");
    assert_eq!(requests(&state)[0].method, "DELETE");
    assert_eq!(
        driver
            .read(&format!("{NS}/hybrid-gone"))
            .await
            .expect("read"),
        None
    );
}

#[tokio::test]
async fn throttling_is_retryable() {
    let (state, driver) = start();
    lock(&state).forced.push(Reply {
        status: 429,
        headers: vec![("retry-after".into(), "1".into())],
        body: status(
            429,
            "TooManyRequests",
            "too many requests, please try again later",
        ),
    });
    let err = driver.create(&spec("wl-3", "k")).await.expect_err("429");
    assert!(matches!(err, DriverError::Throttled { .. }), "{err:?}");
    assert!(err.is_retryable());
    // The next attempt goes through.
    driver.create(&spec("wl-3", "k")).await.expect("retry");
}

#[tokio::test]
async fn server_errors_are_unavailable_and_retryable() {
    let (state, driver) = start();
    lock(&state)
        .forced
        .push(reply(500, status(500, "InternalError", "etcd is sad")));
    let err = driver
        .read(&format!("{NS}/hybrid-x"))
        .await
        .expect_err("500");
    assert!(matches!(err, DriverError::Unavailable { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert!(err.to_string().contains("etcd is sad"), "{err}");
}

#[tokio::test]
async fn conflicts_and_missing_objects_are_final() {
    let (state, driver) = start();
    lock(&state).forced.push(reply(
        409,
        status(
            409,
            "Conflict",
            "Apply failed with 1 conflict: conflict with \"kubectl\": .spec.replicas",
        ),
    ));
    let err = driver.create(&spec("wl-4", "k")).await.expect_err("409");
    assert!(matches!(err, DriverError::Rejected { .. }), "{err:?}");
    assert!(!err.is_retryable());
    let err = driver
        .update_tags(&format!("{NS}/hybrid-missing"), &BTreeMap::new(), None)
        .await
        .expect_err("404");
    assert!(matches!(err, DriverError::NotFound { .. }), "{err:?}");
    let err = driver.read("no-namespace").await.expect_err("bad id");
    assert!(matches!(err, DriverError::Rejected { .. }), "{err:?}");
}

#[tokio::test]
async fn a_workload_id_that_is_not_a_label_value_is_found_by_its_hash() {
    let (state, driver) = start();
    let mut s = spec("Workload With Spaces", "key/with/slashes");
    s.node = None;
    s.image = None;
    s.metadata = None;
    let made = driver.create(&s).await.expect("create");
    assert_eq!(made.workload_id, "Workload With Spaces");
    assert_eq!(made.idempotency_key, "key/with/slashes");
    assert_eq!(
        made.image.as_deref(),
        Some(clouds::kubernetes::DEFAULT_IMAGE)
    );
    let body = requests(&state)[0].body.clone();
    assert_eq!(body["spec"]["replicas"], 1);
    assert!(body["spec"]["template"]["spec"]["nodeSelector"].is_null());
    assert!(body["spec"]["template"]["spec"]["containers"][0]["resources"].is_null());
    let label = body["metadata"]["labels"][LABEL_WORKLOAD_ID]
        .as_str()
        .expect("label")
        .to_string();
    assert!(label.starts_with("h-"), "{label}");
    let found = driver
        .find_by_workload("Workload With Spaces")
        .await
        .expect("find");
    assert_eq!(found, Some(made));
}

#[tokio::test]
async fn with_backoff_rides_out_throttling_and_server_errors() {
    use clouds::retry::{with_backoff, RetryPolicy, StopSignal};
    use std::time::Duration;
    let (state, driver) = start();
    {
        let mut s = lock(&state);
        s.forced.push(Reply {
            status: 429,
            headers: vec![("retry-after".into(), "1".into())],
            body: status(429, "TooManyRequests", "slow down"),
        });
        s.forced.push(reply(
            503,
            status(503, "ServiceUnavailable", "apiserver restarting"),
        ));
    }
    let policy = RetryPolicy {
        initial_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        multiplier: 2.0,
        timeout: Duration::from_secs(10),
    };
    let wanted = spec("wl-5", "k");
    let made = with_backoff(
        "kubernetes",
        "create",
        &policy,
        &StopSignal::never(),
        |_| driver.create(&wanted),
    )
    .await
    .expect("create after retries");
    assert_eq!(made.workload_id, "wl-5");
    assert_eq!(requests(&state).len(), 3);
    assert_eq!(lock(&state).deployments.len(), 1);
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let driver = KubernetesDriver::new(&KubeTarget {
        server_url: format!("http://127.0.0.1:{port}"),
        token: None,
        namespace: NS.into(),
    })
    .expect("driver");
    let err = driver.list_managed().await.expect_err("refused");
    assert!(matches!(err, DriverError::Unavailable { .. }), "{err:?}");
}

#[tokio::test]
async fn a_kubeconfig_file_is_honoured() {
    let state = start_server();
    let addr = lock(&state).addr.clone();
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1
kind: Config
current-context: other
clusters:
- name: edge
  cluster:
    server: http://{addr}
contexts:
- name: other
  context: {{cluster: edge, user: nobody, namespace: elsewhere}}
- name: berlin
  context: {{cluster: edge, user: ops, namespace: {NS}}}
users:
- name: nobody
  user: {{}}
- name: ops
  user:
    token: {TOKEN}
"
        ),
    )
    .expect("write kubeconfig");
    let driver = KubernetesDriver::from_kubeconfig(&path, Some("berlin"))
        .await
        .expect("driver");
    assert_eq!(driver.namespace(), NS);
    driver.create(&spec("wl-6", "k")).await.expect("create");
    let apply = &requests(&state)[0];
    assert_eq!(
        apply.path,
        format!("/apis/apps/v1/namespaces/{NS}/deployments/hybrid-wl-6")
    );
    assert_eq!(
        apply.headers.get("authorization").map(String::as_str),
        Some("Bearer s3cr3t")
    );
}
