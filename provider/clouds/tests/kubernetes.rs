//! The Kubernetes driver against the fake API server (`kubefake`): every request it sends is
//! recorded and checked here, and the server answers as kube-apiserver does (server-side apply
//! ownership, resourceVersion, Status JSON for errors).
#![cfg(feature = "kubernetes")]

use std::collections::BTreeMap;
use std::net::TcpListener;

use clouds::kubernetes::{
    deployment_name, KubeTarget, KubernetesDriver, LABEL_IDEMPOTENCY_KEY, LABEL_MANAGED_BY,
    LABEL_WORKLOAD_ID,
};
use clouds::{Driver, DriverError, InstanceSpec, Metadata, TAG_MANAGED_BY, TAG_WORKLOAD_ID};
use kubefake::{FakeApiServer, Kind, Reply};
use serde_json::json;

const NS: &str = "edge-berlin";
const TOKEN: &str = "s3cr3t";

/// Starts the fake API server (requiring the bearer token); returns it and a driver pointed at it.
fn start() -> (FakeApiServer, KubernetesDriver) {
    let server = FakeApiServer::with_token(TOKEN);
    let driver = KubernetesDriver::new(&KubeTarget {
        server_url: server.url(),
        token: Some(TOKEN.into()),
        namespace: NS.into(),
    })
    .expect("driver");
    (server, driver)
}

fn status(code: u16, reason: &str, message: &str) -> Reply {
    Reply::failure(code, reason, message)
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
        metadata: Some(Metadata::from_value(
            &json!({"cpu": 0.5, "memory_gb": 1, "replicas": 2}),
        )),
    }
}

/// `s` with its metadata document changed by `change`.
fn edit_metadata(s: &mut InstanceSpec, change: impl FnOnce(&mut serde_json::Value)) {
    let mut doc = s
        .metadata
        .as_ref()
        .and_then(Metadata::parse)
        .expect("metadata");
    change(&mut doc);
    s.metadata = Some(Metadata::from_value(&doc));
}

#[tokio::test]
async fn full_lifecycle_sends_the_right_requests() {
    let (server, driver) = start();
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
    // The stored metadata, plus what the cluster runs (for drift detection).
    assert_eq!(
        made.metadata.as_ref().and_then(Metadata::parse),
        Some(
            json!({"cpu": 0.5, "memory_gb": 1, "replicas": 2, "observed": {
                "replicas": 2, "cpu": 0.5, "memory_gb": 1.0, "image": "nginx:1.27",
            }})
        )
    );

    // The apply request.
    let apply = &server.requests()[0];
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
        pod["containers"][0]["resources"]["limits"],
        pod["containers"][0]["resources"]["requests"]
    );
    // No scaling policy: no autoscaler, and any stale one is removed.
    let hpa_check = &server.requests()[1];
    assert_eq!(hpa_check.method, "DELETE");
    assert_eq!(
        hpa_check.path,
        format!("/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers/hybrid-wl-1")
    );
    assert_eq!(
        body["spec"]["template"]["metadata"]["labels"][LABEL_WORKLOAD_ID],
        "wl-1"
    );

    // read
    let read = driver.read(&made.instance_id).await.expect("read");
    assert_eq!(read.as_ref(), Some(&made));
    let get = server.requests().last().cloned().expect("request");
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
    let list = server.requests().last().cloned().expect("request");
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
    let list = server.requests().last().cloned().expect("request");
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
    // An update applies the whole Deployment again, forced (it restores what the plan showed).
    let patch = server
        .requests()
        .into_iter()
        .rfind(|r| r.method == "PATCH")
        .expect("apply");
    assert_eq!(
        patch.headers.get("content-type").map(String::as_str),
        Some("application/apply-patch+yaml")
    );
    assert_eq!(patch.query.get("force").map(String::as_str), Some("true"));
    assert_eq!(
        patch.body["metadata"]["annotations"]["hybrid.io/tags"],
        "{\"env\":\"prod\"}"
    );
    assert!(patch.body["metadata"]["annotations"]["hybrid.io/metadata"].is_null());
    let stored = server
        .get(Kind::Deployment, NS, "hybrid-wl-1")
        .expect("stored");
    assert!(stored["metadata"]["annotations"]["hybrid.io/metadata"].is_null());
    assert_eq!(
        driver.read(&made.instance_id).await.expect("read"),
        Some(updated)
    );

    // delete, then read is None
    driver.delete(&made.instance_id).await.expect("delete");
    let del = server.requests().last().cloned().expect("request");
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
    let (server, driver) = start();
    let first = driver.create(&spec("wl-2", "k")).await.expect("create");
    let again = driver
        .create(&spec("wl-2", "k"))
        .await
        .expect("create again");
    assert_eq!(first, again);
    assert_eq!(server.objects(Kind::Deployment).len(), 1);
    let dep = server
        .get(Kind::Deployment, NS, "hybrid-wl-2")
        .expect("stored");
    // The second apply changed nothing, so the object kept its version.
    assert_eq!(dep["metadata"]["resourceVersion"], "1");
    assert_eq!(dep["metadata"]["generation"], 1);
}

#[tokio::test]
async fn deleting_a_missing_deployment_succeeds() {
    let (server, driver) = start();
    driver
        .delete(&format!("{NS}/hybrid-gone"))
        .await
        .expect("404 on delete is success");
    assert_eq!(server.requests()[0].method, "DELETE");
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
    let (server, driver) = start();
    let mut throttled = status(
        429,
        "TooManyRequests",
        "too many requests, please try again later",
    );
    throttled.headers = vec![("retry-after".into(), "1".into())];
    server.push_reply(throttled);
    let err = driver.create(&spec("wl-3", "k")).await.expect_err("429");
    assert!(matches!(err, DriverError::Throttled { .. }), "{err:?}");
    assert!(err.is_retryable());
    // The next attempt goes through.
    driver.create(&spec("wl-3", "k")).await.expect("retry");
}

#[tokio::test]
async fn server_errors_are_unavailable_and_retryable() {
    let (server, driver) = start();
    server.push_reply(status(500, "InternalError", "etcd is sad"));
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
    let (server, driver) = start();
    server.push_reply(status(
        409,
        "Conflict",
        "Apply failed with 1 conflict: conflict with \"kubectl\": .spec.replicas",
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
    let (server, driver) = start();
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
    let body = server.requests()[0].body.clone();
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
    let (server, driver) = start();
    server.push_reply(status(429, "TooManyRequests", "slow down"));
    server.push_reply(status(503, "ServiceUnavailable", "apiserver restarting"));
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
    // Two refused applies, the one that worked, and the check for a stale autoscaler.
    let methods: Vec<String> = server.requests().iter().map(|r| r.method.clone()).collect();
    assert_eq!(methods, ["PATCH", "PATCH", "PATCH", "DELETE"]);
    assert_eq!(server.objects(Kind::Deployment).len(), 1);
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
    let server = FakeApiServer::with_token(TOKEN);
    let addr = server.url().trim_start_matches("http://").to_string();
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
    let apply = &server.requests()[0];
    assert_eq!(
        apply.path,
        format!("/apis/apps/v1/namespaces/{NS}/deployments/hybrid-wl-6")
    );
    assert_eq!(
        apply.headers.get("authorization").map(String::as_str),
        Some("Bearer s3cr3t")
    );
}

fn scaled_spec(workload: &str) -> InstanceSpec {
    let mut s = spec(workload, "key");
    s.node = Some("en-0000000000000001".into());
    s.image = None;
    s.metadata = Some(Metadata::from_value(&json!({
        "schema_version": 2,
        "state": {"name": "cache"},
        "kubernetes": {
            "replicas": 2, "cpu": 0.25, "memory_gb": 0.5, "image": "nginx:1.27",
            "nodes": ["berlin-1", "berlin-2"],
            "scaling_policy": {
                "enabled": true, "min_replicas": 2, "max_replicas": 6,
                "cpu_threshold": 0.7, "memory_threshold": 0.8,
                "scale_up_cooldown": 30, "scale_down_cooldown": 300,
            },
        },
    })));
    s
}

#[tokio::test]
async fn a_scaling_policy_becomes_an_autoscaler_that_owns_the_replicas() {
    let (server, driver) = start();
    let made = driver.create(&scaled_spec("wl-7")).await.expect("create");
    let dep = server
        .get(Kind::Deployment, NS, "hybrid-wl-7")
        .expect("deployment");
    let applied = &server.requests()[0].body;
    assert!(
        applied["spec"]["replicas"].is_null(),
        "the autoscaler owns replicas"
    );
    let pod = &dep["spec"]["template"]["spec"];
    assert!(pod["nodeSelector"].is_null());
    let term = &pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        ["nodeSelectorTerms"][0]["matchExpressions"][0];
    assert_eq!(
        term,
        &json!({"key": "kubernetes.io/hostname", "operator": "In", "values": ["berlin-1", "berlin-2"]})
    );
    assert_eq!(pod["containers"][0]["image"], "nginx:1.27");
    assert_eq!(pod["containers"][0]["resources"]["limits"]["cpu"], "250m");
    assert_eq!(
        pod["containers"][0]["resources"]["limits"]["memory"],
        "512Mi"
    );

    let hpa_apply = &server.requests()[1];
    assert_eq!(hpa_apply.method, "PATCH");
    assert_eq!(
        hpa_apply.path,
        format!("/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers/hybrid-wl-7")
    );
    assert_eq!(
        hpa_apply.content_type(),
        Some("application/apply-patch+yaml")
    );
    assert_eq!(
        hpa_apply.query_param("fieldManager"),
        Some("terraform-provider-hybrid")
    );
    let hpa = server
        .get(Kind::HorizontalPodAutoscaler, NS, "hybrid-wl-7")
        .expect("hpa");
    assert_eq!(
        hpa["spec"],
        json!({
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "hybrid-wl-7"},
            "minReplicas": 2, "maxReplicas": 6,
            "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}},
                {"type": "Resource", "resource": {"name": "memory", "target": {"type": "Utilization", "averageUtilization": 80}}},
            ],
            "behavior": {"scaleUp": {"stabilizationWindowSeconds": 30}, "scaleDown": {"stabilizationWindowSeconds": 300}},
        })
    );
    assert_eq!(hpa["metadata"]["labels"][LABEL_WORKLOAD_ID], "wl-7");
    // Autoscaled: the replica count is not reported for drift.
    let observed = &made.metadata.and_then(|m| m.parse()).expect("metadata")["observed"];
    assert!(observed["replicas"].is_null());
    assert_eq!(observed["cpu"], 0.25);
    assert_eq!(observed["memory_gb"], 0.5);

    // Turning the policy off removes the autoscaler and gives the Deployment its count back.
    let mut off = scaled_spec("wl-7");
    edit_metadata(&mut off, |m| {
        m["kubernetes"]["scaling_policy"]["enabled"] = json!(false);
    });
    driver
        .update_tags(&made.instance_id, &off.tags, off.metadata.as_ref())
        .await
        .expect("update");
    assert!(server
        .get(Kind::HorizontalPodAutoscaler, NS, "hybrid-wl-7")
        .is_none());
    let dep = server
        .get(Kind::Deployment, NS, "hybrid-wl-7")
        .expect("deployment");
    assert_eq!(dep["spec"]["replicas"], 2);

    // Delete takes both.
    driver
        .update_tags(
            &made.instance_id,
            &BTreeMap::new(),
            scaled_spec("wl-7").metadata.as_ref(),
        )
        .await
        .expect("update");
    assert!(server
        .get(Kind::HorizontalPodAutoscaler, NS, "hybrid-wl-7")
        .is_some());
    driver.delete(&made.instance_id).await.expect("delete");
    assert!(server.objects(Kind::Deployment).is_empty());
    assert!(server.objects(Kind::HorizontalPodAutoscaler).is_empty());
}

#[tokio::test]
async fn changes_made_outside_terraform_show_on_read_and_an_update_puts_them_back() {
    let (server, driver) = start();
    let mut wanted = scaled_spec("wl-8");
    edit_metadata(&mut wanted, |m| {
        m["kubernetes"]["scaling_policy"] = json!(null)
    });
    let made = driver.create(&wanted).await.expect("create");
    assert!(
        server.edit(Kind::Deployment, NS, "hybrid-wl-8", "kubectl-edit", |d| {
            d["spec"]["replicas"] = json!(5);
            d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:latest");
            d["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] =
                json!("1");
        })
    );
    let read = driver
        .read(&made.instance_id)
        .await
        .expect("read")
        .expect("exists");
    let observed = &read
        .metadata
        .as_ref()
        .and_then(Metadata::parse)
        .expect("metadata")["observed"];
    assert_eq!(observed["replicas"], 5);
    assert_eq!(observed["image"], "nginx:latest");
    assert_eq!(observed["cpu"], 1.0);
    assert_eq!(read.image.as_deref(), Some("nginx:latest"));

    // A plain apply would now conflict with kubectl-edit; the update is forced and wins.
    driver
        .update_tags(&made.instance_id, &wanted.tags, wanted.metadata.as_ref())
        .await
        .expect("update");
    let dep = server
        .get(Kind::Deployment, NS, "hybrid-wl-8")
        .expect("deployment");
    assert_eq!(dep["spec"]["replicas"], 2);
    assert_eq!(
        dep["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );
    assert_eq!(
        dep["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"],
        "250m"
    );
}

#[tokio::test]
async fn a_first_create_does_not_take_over_fields_someone_else_owns() {
    let (server, driver) = start();
    driver.create(&spec("wl-9", "k")).await.expect("create");
    server.edit(Kind::Deployment, NS, "hybrid-wl-9", "kubectl-scale", |d| {
        d["spec"]["replicas"] = json!(9);
    });
    let err = driver
        .create(&spec("wl-9", "k"))
        .await
        .expect_err("conflict");
    assert!(err.to_string().contains("conflict"), "{err}");
}

#[tokio::test]
async fn nodes_get_our_labels_and_give_them_back() {
    let (server, driver) = start();
    server.add_node("berlin-1", &[("topology.kubernetes.io/zone", "a")]);
    let node = clouds::edge::EdgeNode {
        id: "en-0000000000000001".into(),
        cluster_id: "ec-0000000000000001".into(),
        name: "berlin-1".into(),
        node_type: "inference".into(),
        lat: 52.5,
        lng: 13.4,
        cpu_cores: 8.0,
        memory_gb: 32.0,
        storage_gb: 100.0,
        gpu_count: 0,
        gpu_model: None,
        limit_cpu: 8.0,
        limit_memory_gb: 32.0,
        limit_storage_gb: 100.0,
        limit_network_mbps: 1000.0,
        capabilities: vec!["ml_inference".into(), "data_caching".into()],
        connectivity_type: None,
        bandwidth_gbps: None,
        hourly_cost: None,
        labels: BTreeMap::from([
            ("rack".to_string(), "r7".to_string()),
            ("bad key!".to_string(), "x".to_string()),
        ]),
    };
    let (labels, annotations) = clouds::kubernetes::node_metadata(&node);
    driver
        .label_node("berlin-1", &labels, &annotations)
        .await
        .expect("label");
    let apply = server.writes().pop().expect("apply");
    assert_eq!(apply.path, "/api/v1/nodes/berlin-1");
    assert_eq!(apply.content_type(), Some("application/apply-patch+yaml"));
    assert_eq!(apply.query_param("force"), Some("true"));
    assert!(apply.body.get("spec").is_none(), "metadata only");
    let stored = server.get(Kind::Node, "", "berlin-1").expect("node");
    let l = &stored["metadata"]["labels"];
    assert_eq!(l["hybrid.io/node-type"], "inference");
    assert_eq!(l["hybrid.io/capability.ml_inference"], "true");
    assert_eq!(l["hybrid.io/capability.data_caching"], "true");
    assert_eq!(l["hybrid.io/label.rack"], "r7");
    assert_eq!(l["hybrid.io/node-id"], "en-0000000000000001");
    assert_eq!(l["topology.kubernetes.io/zone"], "a");
    let a = &stored["metadata"]["annotations"];
    assert_eq!(a["hybrid.io/location"], "{\"lat\":52.5,\"lng\":13.4}");
    assert_eq!(a["hybrid.io/capabilities"], "ml_inference,data_caching");
    assert!(a["hybrid.io/labels"]
        .as_str()
        .is_some_and(|s| s.contains("bad key!")));
    for key in l.as_object().expect("labels").keys() {
        assert!(
            key.starts_with("hybrid.io/") || key.contains("kubernetes.io/"),
            "{key}"
        );
    }

    driver.unlabel_node("berlin-1").await.expect("unlabel");
    let stored = server.get(Kind::Node, "", "berlin-1").expect("node");
    let keys: Vec<&String> = stored["metadata"]["labels"]
        .as_object()
        .expect("labels")
        .keys()
        .collect();
    assert_eq!(
        keys,
        ["kubernetes.io/hostname", "topology.kubernetes.io/zone"]
    );
    assert!(stored["metadata"]["annotations"]
        .as_object()
        .is_none_or(|a| a.is_empty()));

    // A Node the cluster does not have: labelling is NotFound, unlabelling succeeds.
    let err = driver
        .label_node("nowhere", &labels, &annotations)
        .await
        .expect_err("missing");
    assert!(matches!(err, DriverError::NotFound { .. }), "{err:?}");
    driver.unlabel_node("nowhere").await.expect("nothing to do");
    assert!(server.get(Kind::Node, "", "nowhere").is_none());
}
