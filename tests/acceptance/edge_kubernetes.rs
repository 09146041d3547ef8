//! Kubernetes edge sites end to end: the real terraform binary drives the provider (built with
//! `--features kubernetes`), whose clusters point at the fake API server (`kubefake`) through a
//! kubeconfig this test writes, or a host and `$KUBE_TOKEN`. Covered: Deployment + autoscaler +
//! Node labels with the right fields, an empty re-plan, a change made on the server shown in
//! the plan and put back by apply, destroy removing everything of ours and only ours, and the
//! diagnostics for bad settings and a missing Node.

use kubefake::{FakeApiServer, Kind};
use serde_json::json;

use crate::harness::{collapse, Workspace};

const TOKEN: &str = "edge-t0ken";
const NS: &str = "edge";

fn site(kubernetes: &str, nodes: &[&str], workload: bool) -> String {
    let mut hcl = format!(
        r#"
provider "hybrid" {{}}

resource "hybrid_edge_cluster" "berlin" {{
  name              = "berlin-k8s"
  geographic_region = "eu-central"
  location {{
    lat = 52.52
    lng = 13.40
  }}
  kubernetes {{
{kubernetes}
  }}
}}
"#
    );
    for name in nodes {
        hcl.push_str(&format!(
            r#"
resource "hybrid_edge_node" "{name}" {{
  cluster_id   = hybrid_edge_cluster.berlin.id
  name         = "{name}"
  node_type    = "inference"
  capabilities = ["ml_inference", "data_caching"]
  labels       = {{ rack = "r7" }}
  hardware_specs {{
    cpu_cores = 8
    memory_gb = 16
  }}
  resource_limits {{
    cpu = 4
  }}
}}
"#
        ));
    }
    if workload {
        let deps: Vec<String> = nodes
            .iter()
            .map(|n| format!("hybrid_edge_node.{n}"))
            .collect();
        hcl.push_str(&format!(
            r#"
resource "hybrid_workload" "vision" {{
  name             = "vision"
  cpu              = 0.5
  memory_gb        = 1
  replicas         = 2
  image            = "nginx:1.27"
  edge_cluster_ids = [hybrid_edge_cluster.berlin.id]
  edge {{
    distribution_strategy = "round_robin"
    scaling_policy {{
      min_replicas        = 2
      max_replicas        = 6
      cpu_threshold       = 0.7
      memory_threshold    = 0.8
      scale_up_cooldown   = 30
      scale_down_cooldown = 300
    }}
  }}
  depends_on = [{}]
}}
"#,
            deps.join(", ")
        ));
    }
    hcl
}

fn our_label_keys(server: &FakeApiServer, node: &str) -> Vec<String> {
    server
        .get(Kind::Node, "", node)
        .and_then(|n| n["metadata"]["labels"].as_object().cloned())
        .unwrap_or_default()
        .keys()
        .filter(|k| k.starts_with("hybrid.io/"))
        .cloned()
        .collect()
}

#[test]
fn edge_kubernetes_workload_becomes_a_deployment_with_an_autoscaler_on_labelled_nodes() {
    let server = FakeApiServer::with_token(TOKEN);
    server.add_node("berlin-1", &[("topology.kubernetes.io/zone", "a")]);
    server.add_node("berlin-2", &[]);
    let ws = Workspace::new("edge-kubernetes");
    let kubeconfig = ws.dir.join("kubeconfig");
    std::fs::write(&kubeconfig, server.kubeconfig("berlin", NS, Some(TOKEN)))
        .expect("write kubeconfig");
    let settings = format!(
        "    kubeconfig_path = \"{}\"\n    context         = \"berlin\"\n    namespace       = \"{NS}\"",
        kubeconfig.display()
    );
    ws.config(&site(&settings, &["berlin-1", "berlin-2"], true));
    ws.apply();

    let cluster = ws.resource("hybrid_edge_cluster.berlin");
    assert_eq!(cluster["driver"], "kubernetes", "{cluster:#}");
    let cluster_id = cluster["id"].as_str().expect("id").to_string();
    let vision = ws.resource("hybrid_workload.vision");
    assert_eq!(vision["driver"], "kubernetes", "{vision:#}");
    let workload_id = vision["id"].as_str().expect("id");
    let name = format!("hybrid-{workload_id}");
    assert_eq!(
        vision["instance_id"],
        json!(format!("{cluster_id}:{NS}/{name}"))
    );
    assert!(ws.sim_instances().is_empty(), "nothing went to the sim");

    // Every request carried the kubeconfig's token.
    for r in server.requests() {
        assert_eq!(
            r.headers.get("authorization").map(String::as_str),
            Some(&*format!("Bearer {TOKEN}")),
            "{} {}",
            r.method,
            r.path
        );
    }
    // Writes are server-side applies by our field manager, or deletes.
    for w in server.writes() {
        if w.method == "PATCH" {
            assert_eq!(w.content_type(), Some("application/apply-patch+yaml"));
            assert_eq!(
                w.query_param("fieldManager"),
                Some("terraform-provider-hybrid")
            );
        }
    }

    // The Deployment: requests = limits, pinned to both Nodes, replicas left to the autoscaler.
    let dep = server.get(Kind::Deployment, NS, &name).expect("deployment");
    assert_eq!(
        dep["metadata"]["labels"]["hybrid.io/managed-by"],
        "terraform-provider-hybrid"
    );
    assert_eq!(
        dep["metadata"]["labels"]["hybrid.io/workload-id"],
        json!(workload_id)
    );
    let pod = &dep["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(container["image"], "nginx:1.27");
    assert_eq!(
        container["resources"],
        json!({"requests": {"cpu": "500m", "memory": "1024Mi"}, "limits": {"cpu": "500m", "memory": "1024Mi"}})
    );
    let mut pinned: Vec<String> = pod["affinity"]["nodeAffinity"]
        ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
        ["matchExpressions"][0]["values"]
        .as_array()
        .expect("node affinity")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    pinned.sort();
    assert_eq!(pinned, ["berlin-1", "berlin-2"]);
    let managers = server.managers(Kind::Deployment, NS, &name);
    assert!(
        !managers["terraform-provider-hybrid"].contains("/spec/replicas"),
        "{managers:?}"
    );

    // The autoscaler from scaling_policy.
    let hpa = server
        .get(Kind::HorizontalPodAutoscaler, NS, &name)
        .expect("autoscaler");
    assert_eq!(
        hpa["spec"],
        json!({
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": 2, "maxReplicas": 6,
            "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}},
                {"type": "Resource", "resource": {"name": "memory", "target": {"type": "Utilization", "averageUtilization": 80}}},
            ],
            "behavior": {"scaleUp": {"stabilizationWindowSeconds": 30}, "scaleDown": {"stabilizationWindowSeconds": 300}},
        })
    );

    // The Nodes carry the edge nodes' descriptions, under hybrid.io/ only.
    let node = server.get(Kind::Node, "", "berlin-1").expect("node");
    let labels = &node["metadata"]["labels"];
    assert_eq!(labels["hybrid.io/node-type"], "inference");
    assert_eq!(labels["hybrid.io/capability.ml_inference"], "true");
    assert_eq!(labels["hybrid.io/capability.data_caching"], "true");
    assert_eq!(labels["hybrid.io/label.rack"], "r7");
    assert_eq!(
        labels["hybrid.io/node-id"],
        ws.resource("hybrid_edge_node.berlin-1")["id"]
    );
    assert_eq!(labels["topology.kubernetes.io/zone"], "a");
    assert_eq!(
        node["metadata"]["annotations"]["hybrid.io/location"],
        "{\"lat\":52.52,\"lng\":13.4}"
    );
    assert_eq!(our_label_keys(&server, "berlin-2").len(), 6);

    ws.expect_empty_plan();

    // Someone takes a label off a Node and changes another: the plan warns, naming them, and
    // shows the node going back to ready; apply labels the Node again.
    assert!(
        server.edit(Kind::Node, "", "berlin-1", "kubectl-edit", |n| {
            let labels = n["metadata"]["labels"].as_object_mut().expect("labels");
            labels.remove("hybrid.io/label.rack");
            labels.insert("hybrid.io/node-type".into(), json!("gateway"));
        })
    );
    let plan = ws.expect_changes();
    let flat = collapse(&plan);
    assert!(
        flat.contains("Kubernetes Node changed outside Terraform")
            && flat.contains(
                "label hybrid.io/label.rack, label hybrid.io/node-type missing or changed"
            ),
        "{plan}"
    );
    assert!(plan.contains("\"drifted\" -> \"ready\""), "{plan}");
    assert!(
        plan.contains("0 to add, 1 to change, 0 to destroy"),
        "{plan}"
    );
    ws.apply();
    let labels = &server.get(Kind::Node, "", "berlin-1").expect("node")["metadata"]["labels"];
    assert_eq!(labels["hybrid.io/label.rack"], "r7");
    assert_eq!(labels["hybrid.io/node-type"], "inference");
    assert_eq!(ws.resource("hybrid_edge_node.berlin-1")["status"], "ready");
    ws.expect_empty_plan();

    // A Node that left the cluster: the plan warns, apply fails naming it, and once it joins
    // again apply labels it.
    assert!(server.remove(Kind::Node, "", "berlin-2"));
    let plan = collapse(&ws.expect_changes());
    assert!(
        plan.contains("Kubernetes Node not found")
            && plan.contains("\"node_missing\" -> \"ready\""),
        "{plan}"
    );
    ws.expect_error(
        &["apply", "-auto-approve"],
        &["has no Node named \"berlin-2\""],
    );
    server.add_node("berlin-2", &[]);
    ws.apply();
    assert_eq!(our_label_keys(&server, "berlin-2").len(), 6);
    ws.expect_empty_plan();

    // Someone changes the image on the cluster: the plan shows it, apply puts it back.
    assert!(
        server.edit(Kind::Deployment, NS, &name, "kubectl-edit", |d| {
            d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:latest");
        })
    );
    let plan = ws.expect_changes();
    assert!(
        plan.contains("\"nginx:latest\" -> \"nginx:1.27\""),
        "{plan}"
    );
    ws.apply();
    let dep = server.get(Kind::Deployment, NS, &name).expect("deployment");
    assert_eq!(
        dep["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );
    assert!(server
        .get(Kind::HorizontalPodAutoscaler, NS, &name)
        .is_some());
    ws.expect_empty_plan();

    // Import by the instance id brings the same workload back into state.
    ws.state_rm("hybrid_workload.vision");
    ws.import(
        "hybrid_workload.vision",
        &format!("{cluster_id}:{NS}/{name}"),
    );
    assert_eq!(
        ws.resource("hybrid_workload.vision")["driver"],
        "kubernetes"
    );
    ws.expect_empty_plan();

    // Deleted on the cluster: the next plan re-creates it.
    assert!(server.remove(Kind::Deployment, NS, &name));
    let plan = ws.expect_changes();
    assert!(
        plan.contains("hybrid_workload.vision will be created"),
        "{plan}"
    );
    ws.apply();
    assert!(server.get(Kind::Deployment, NS, &name).is_some());
    ws.expect_empty_plan();

    ws.destroy();
    assert!(server.objects(Kind::Deployment).is_empty());
    assert!(server.objects(Kind::HorizontalPodAutoscaler).is_empty());
    for node in ["berlin-1", "berlin-2"] {
        assert!(our_label_keys(&server, node).is_empty(), "{node}");
        let n = server
            .get(Kind::Node, "", node)
            .expect("Nodes are not ours to delete");
        assert_eq!(n["metadata"]["labels"]["kubernetes.io/hostname"], node);
    }
    assert_eq!(
        server.get(Kind::Node, "", "berlin-1").expect("node")["metadata"]["labels"]
            ["topology.kubernetes.io/zone"],
        "a"
    );
}

#[test]
fn edge_kubernetes_host_with_kube_token_and_a_missing_node_is_a_diagnostic() {
    let server = FakeApiServer::with_token(TOKEN);
    let ws = Workspace::new("edge-kubernetes-host").env("KUBE_TOKEN", TOKEN);
    let settings = format!("    host = \"{}\"", server.url());
    ws.config(&site(&settings, &["ghost"], false));
    ws.expect_error(
        &["apply", "-input=false", "-auto-approve"],
        &["Kubernetes Node not found", "no Node named \"ghost\""],
    );
    // The cluster itself was reachable with $KUBE_TOKEN, and nothing was created for the node.
    assert_eq!(
        ws.resource("hybrid_edge_cluster.berlin")["driver"],
        "kubernetes"
    );
    assert!(server.get(Kind::Node, "", "ghost").is_none());
    let list = server
        .requests()
        .into_iter()
        .find(|r| r.path == "/apis/apps/v1/namespaces/default/deployments")
        .expect("the cluster checked its namespace");
    assert_eq!(
        list.headers.get("authorization").map(String::as_str),
        Some(&*format!("Bearer {TOKEN}"))
    );
    ws.config(&site(&settings, &[], false));
    ws.destroy();
}

#[test]
fn edge_kubernetes_settings_are_validated_with_attribute_paths() {
    let ws = Workspace::new("edge-kubernetes-invalid");
    let cases: &[(&str, &[&str])] = &[
        (
            "    kubeconfig_path = \"/k\"\n    host = \"https://10.0.0.1:6443\"",
            &["Conflicting kubernetes settings", "not both"],
        ),
        ("    namespace = \"edge\"", &["Missing kubernetes settings"]),
        (
            "    host = \"https://10.0.0.1\"\n    context = \"x\"",
            &["Invalid context", "set kubeconfig_path too"],
        ),
        ("    host = \"10.0.0.1:6443\"", &["Invalid host"]),
        (
            "    host = \"https://10.0.0.1\"\n    namespace = \"Edge_1\"",
            &["Invalid namespace", "not a Kubernetes namespace name"],
        ),
    ];
    for (settings, patterns) in cases {
        ws.config(&site(settings, &[], false));
        ws.expect_error(&["plan", "-input=false"], patterns);
    }
    // An unreachable API server fails the cluster's apply, naming the block.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    ws.config(&site(
        &format!("    host = \"http://127.0.0.1:{port}\""),
        &[],
        false,
    ));
    ws.expect_error(
        &["apply", "-input=false", "-auto-approve"],
        &["Cannot reach the cluster's Kubernetes API"],
    );
}
