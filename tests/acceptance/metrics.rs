//! Metrics and logs end to end: the real terraform applies with the provider configured to push
//! to a real `prometheus-pushgateway` on a free port, and the test reads the values back from
//! the gateway; a gateway that is down costs a warning and nothing else; `TF_LOG=trace` shows
//! our RPC spans with the placement decision and never a secret from the configuration.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{combined, Workspace};

/// A `prometheus-pushgateway` on 127.0.0.1 (in memory), stopped when dropped.
struct Pushgateway {
    child: Child,
    port: u16,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A plain HTTP/1.0 GET (status, body); enough for the gateway's own endpoints.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

impl Pushgateway {
    fn start() -> Pushgateway {
        let binary = which("prometheus-pushgateway");
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let mut child = Command::new(&binary)
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start prometheus-pushgateway");
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(status)) = child.try_wait() {
                    last = format!("exited with {status} on port {port}");
                    break;
                }
                if let Some((200, _)) = http_get(port, "/-/ready") {
                    return Pushgateway { child, port };
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("prometheus-pushgateway did not start: {last}");
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The gateway's exposition text (every pushed group, with its grouping labels).
    fn metrics(&self) -> String {
        match http_get(self.port, "/metrics") {
            Some((200, body)) => body,
            other => panic!("GET /metrics from the pushgateway: {other:?}"),
        }
    }
}

impl Drop for Pushgateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn which(binary: &str) -> std::path::PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(binary))
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!("{binary} is not installed: run `make tools` (apt packages prometheus and prometheus-pushgateway)")
        })
}

/// The value of the one sample of `name` carrying every `label="value"` pair, if any.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

const SITE_AND_WORKLOADS: &str = r#"
resource "hybrid_edge_cluster" "berlin" {
  name              = "berlin-metrics"
  geographic_region = "eu-central"
  location {
    lat = 52.52
    lng = 13.40
  }
}

resource "hybrid_edge_node" "n1" {
  cluster_id   = hybrid_edge_cluster.berlin.id
  name         = "n1"
  node_type    = "compute"
  capabilities = ["real_time_processing"]
  hourly_cost  = 0.02
  hardware_specs {
    cpu_cores  = 8
    memory_gb  = 32
    storage_gb = 500
  }
  resource_limits {
    cpu       = 4
    memory_gb = 16
  }
}

resource "hybrid_workload" "ingest" {
  name                = "metrics-ingest"
  cpu                 = 2
  memory_gb           = 4
  preferred_providers = ["edge"]
  edge_cluster_ids    = [hybrid_edge_cluster.berlin.id]
  user_locations      = [{ lat = 52.5, lng = 13.4 }]
  depends_on          = [hybrid_edge_node.n1]
}

resource "hybrid_workload" "api" {
  name                   = "metrics-api"
  cpu                    = 2
  memory_gb              = 8
  compliance             = ["gdpr"]
  data_residency_regions = ["EU"]
  preferred_providers    = ["aws", "azure", "gcp"]
  user_locations         = [{ lat = 52.52, lng = 13.40 }]
}
"#;

#[test]
fn apply_pushes_placements_operations_costs_and_edge_state_to_a_real_pushgateway() {
    let gateway = Pushgateway::start();
    let ws = Workspace::new("metrics-push");
    ws.config(&format!(
        "provider \"hybrid\" {{\n  metrics {{\n    pushgateway_url = \"{}\"\n    job = \"acc\"\n  }}\n}}\n{SITE_AND_WORKLOADS}",
        gateway.url()
    ));
    let out = ws.apply();
    assert!(!out.contains("Pushgateway not reachable"), "{out}");

    let api = ws.resource("hybrid_workload.api");
    let cloud = api["placement"]["provider"]
        .as_str()
        .expect("provider")
        .to_string();
    let region = api["placement"]["region"]
        .as_str()
        .expect("region")
        .to_string();
    let api_cost = api["placement"]["estimated_cost_hourly"]
        .as_f64()
        .expect("cost");
    let ingest = ws.resource("hybrid_workload.ingest");
    let node = ws.resource("hybrid_edge_node.n1");
    let node_id = node["id"].as_str().expect("node id").to_string();
    let cluster_id = node["cluster_id"].as_str().expect("cluster id").to_string();
    assert_eq!(ingest["placement"]["node"], node["id"]);

    let text = gateway.metrics();
    let root_module = ws
        .dir
        .file_name()
        .expect("dir name")
        .to_string_lossy()
        .to_string();
    let group = |phase: &'static str| {
        vec![
            ("job", "acc"),
            ("workspace", "default"),
            ("root_module", root_module.as_str()),
            ("phase", phase),
        ]
    };
    let with = |phase: &'static str, extra: &[(&'static str, &str)]| {
        let mut labels = group(phase);
        labels.extend_from_slice(extra);
        labels
            .into_iter()
            .map(|(k, v)| (k, v.to_string()))
            .collect::<Vec<_>>()
    };
    let get = |name: &str, labels: Vec<(&str, String)>| {
        let pairs: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
        sample(&text, name, &pairs)
    };

    // The apply process: what it provisioned, and the driver calls it made.
    assert_eq!(
        get(
            "workload_placements_total",
            with("apply", &[("target_cloud", &cloud), ("strategy", "hybrid")])
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        get(
            "workload_placements_total",
            with("apply", &[("target_cloud", "edge"), ("strategy", "hybrid")])
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        get(
            "cloud_operations_total",
            with(
                "apply",
                &[
                    ("provider", "sim"),
                    ("operation", "create"),
                    ("status", "success")
                ]
            )
        ),
        Some(2.0),
        "{text}"
    );
    assert!(
        get(
            "cloud_latency_seconds_count",
            with("apply", &[("provider", "sim"), ("operation", "create")])
        ) == Some(2.0),
        "{text}"
    );
    // Edge: the node is ready, one workload books 2 of its 4 cpus.
    assert_eq!(
        get(
            "edge_nodes_active",
            with("apply", &[("cluster", &cluster_id), ("node", &node_id)])
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        get(
            "edge_workloads_active",
            with("apply", &[("cluster", &cluster_id), ("node", &node_id)])
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        get(
            "edge_resource_utilization",
            with("apply", &[("node", &node_id), ("resource", "cpu")])
        ),
        Some(0.5),
        "{text}"
    );
    assert!(
        get(
            "edge_operations_total",
            with("apply", &[("cluster", &cluster_id)])
        )
        .is_some_and(|v| v >= 3.0),
        "cluster, node and booking: {text}"
    );
    // The plan process: the planned cost of every workload it could place.
    let planned_cost = get(
        "cloud_costs_hourly",
        with("plan", &[("provider", &cloud), ("region", &region)]),
    )
    .expect("planned cost of the api workload");
    assert!(
        (planned_cost - api_cost).abs() < 1e-6,
        "{planned_cost} vs {api_cost}"
    );
    // The edge workload names a cluster created in the same run, so its placement is decided
    // by the apply process's re-plan, once the node exists: that is where its latency is seen.
    assert_eq!(
        get("edge_latency_seconds_count", with("apply", &[])),
        Some(1.0),
        "{text}"
    );
    // Every workload was placed: no failure series anywhere.
    assert!(!text.contains("target_cloud=\"none\""), "{text}");

    // A destroy is an apply that removes: its group no longer holds placements or costs.
    ws.destroy();
    let text = gateway.metrics();
    let pairs = with(
        "apply",
        &[
            ("provider", "sim"),
            ("operation", "delete"),
            ("status", "success"),
        ],
    );
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(
        sample(&text, "cloud_operations_total", &pairs),
        Some(2.0),
        "{text}"
    );
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("workload_placements_total{") && l.contains("phase=\"apply\"")),
        "{text}"
    );
}

#[test]
fn a_failed_placement_is_pushed_as_target_cloud_none() {
    let gateway = Pushgateway::start();
    let ws = Workspace::new("metrics-fail").env("HYBRID_PUSHGATEWAY_URL", &gateway.url());
    ws.config(
        "provider \"hybrid\" {}\n\nresource \"hybrid_workload\" \"big\" {\n  name = \"too-big\"\n  cpu = 4096\n  memory_gb = 8\n  strategy = \"cost_optimized\"\n}\n",
    );
    ws.expect_error(
        &["plan", "-input=false"],
        &["No placement satisfies the requirements"],
    );
    let text = gateway.metrics();
    assert_eq!(
        sample(
            &text,
            "workload_placements_total",
            &[
                ("job", "terraform-provider-hybrid"),
                ("phase", "plan"),
                ("target_cloud", "none"),
                ("strategy", "cost_optimized")
            ]
        ),
        Some(1.0),
        "{text}"
    );
}

#[test]
fn apply_succeeds_with_a_warning_when_the_pushgateway_is_down() {
    // A port nobody listens on.
    let port = free_port();
    let ws = Workspace::new("metrics-down");
    ws.config(&format!(
        "provider \"hybrid\" {{\n  metrics {{\n    pushgateway_url = \"http://127.0.0.1:{port}\"\n  }}\n}}\n\nresource \"hybrid_workload\" \"w\" {{\n  name = \"down-gw\"\n  cpu = 1\n  memory_gb = 1\n  preferred_providers = [\"gcp\"]\n}}\n"
    ));
    let started = Instant::now();
    let out = ws.apply();
    assert!(out.contains("Apply complete! Resources: 1 added"), "{out}");
    assert!(out.contains("Warning: Pushgateway not reachable"), "{out}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "apply took {:?}",
        started.elapsed()
    );
    assert_eq!(ws.sim_instances().len(), 1);
}

#[test]
fn trace_logs_show_rpc_spans_with_the_placement_and_no_secret() {
    const PUSH_PASSWORD: &str = "push-pw-7f3a9c";
    const REDIS_PASSWORD: &str = "redis-pw-51be02";
    let gateway = Pushgateway::start();
    let redis = RedisChild::start(REDIS_PASSWORD);
    let ws = Workspace::new("metrics-logs").env("TF_LOG", "trace");
    ws.config(&format!(
        "provider \"hybrid\" {{\n  ledger_url = \"redis://:{REDIS_PASSWORD}@127.0.0.1:{}/0\"\n  metrics {{\n    pushgateway_url = \"http://ops:{PUSH_PASSWORD}@127.0.0.1:{}\"\n  }}\n}}\n\nresource \"hybrid_workload\" \"w\" {{\n  name = \"logged\"\n  cpu = 2\n  memory_gb = 4\n  preferred_providers = [\"aws\"]\n}}\n",
        redis.port,
        gateway.port
    ));
    let out = ws.try_run(&["plan", "-input=false"]);
    let text = combined(&out);
    assert!(out.status.success(), "{text}");
    let span_line = text
        .lines()
        .find(|l| l.contains("PlanResourceChange finished") && l.contains("placement_provider="))
        .unwrap_or_else(|| panic!("no PlanResourceChange span line with the placement:\n{text}"));
    for field in [
        "tf_rpc=PlanResourceChange",
        "tf_resource_type=hybrid_workload",
        "tf_resource_name=logged",
        "placement_provider=aws",
        "placement_region=",
        "placement_instance_type=",
        "placement_score=",
        "placement_cost_hourly=",
        "placement_outcome=decided",
    ] {
        assert!(span_line.contains(field), "{field} missing in: {span_line}");
    }
    assert!(
        text.contains("metrics pushed") || text.contains("metrics will be pushed"),
        "{text}"
    );
    for secret in [PUSH_PASSWORD, REDIS_PASSWORD] {
        assert!(!text.contains(secret), "the log shows a secret ({secret})");
    }
    // The push went through with basic auth and the redacted URL only.
    assert!(gateway.metrics().contains("phase=\"plan\""));
}

/// A password-protected `redis-server` for the ledger, stopped when dropped.
struct RedisChild {
    child: Child,
    port: u16,
    _dir: std::path::PathBuf,
}

impl RedisChild {
    fn start(password: &str) -> RedisChild {
        let binary = which("redis-server");
        let dir = std::env::temp_dir().join(format!("acc-redis-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("redis dir");
        let port = free_port();
        let mut child = Command::new(binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--requirepass",
                password,
            ])
            .arg("--dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return RedisChild {
                    child,
                    port,
                    _dir: dir,
                };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("redis-server did not start on port {port}");
    }
}

impl Drop for RedisChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

#[test]
fn an_edge_node_gone_from_the_store_is_pushed_as_down() {
    let gateway = Pushgateway::start();
    let ws = Workspace::new("metrics-node-down").env("HYBRID_PUSHGATEWAY_URL", &gateway.url());
    ws.config(
        r#"
provider "hybrid" {}

resource "hybrid_edge_cluster" "site" {
  name              = "down-site"
  geographic_region = "eu-central"
  location {
    lat = 52.52
    lng = 13.40
  }
}

resource "hybrid_edge_node" "n1" {
  cluster_id = hybrid_edge_cluster.site.id
  name       = "n1"
  node_type  = "compute"
  hardware_specs {
    cpu_cores  = 4
    memory_gb  = 8
    storage_gb = 100
  }
}
"#,
    );
    ws.apply();
    let node = ws.resource("hybrid_edge_node.n1");
    let node_id = node["id"].as_str().expect("node id").to_string();
    let cluster_id = node["cluster_id"].as_str().expect("cluster").to_string();
    let labels = |phase| {
        [
            ("phase", phase),
            ("cluster", cluster_id.as_str()),
            ("node", node_id.as_str()),
        ]
    };
    let text = gateway.metrics();
    assert_eq!(
        sample(&text, "edge_nodes_active", &labels("apply")),
        Some(1.0),
        "{text}"
    );

    // Someone removes the node's registration outside Terraform: the next plan sees it gone.
    let sim = clouds::sim::SimCloud::open(&ws.state_db, clouds::faults::FaultPlan::none())
        .expect("open sim state");
    sim.delete_edge_node(&node_id).expect("delete node record");
    drop(sim);
    ws.expect_changes();
    let text = gateway.metrics();
    assert_eq!(
        sample(&text, "edge_nodes_active", &labels("plan")),
        Some(0.0),
        "{text}"
    );
}
