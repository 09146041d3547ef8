//! `hybrid_workload` on the real Compute Engine driver, driven by the real terraform binary,
//! against the local GCE server of the driver tests (provider/clouds/tests/support/gce_server.rs,
//! every request checked against the official discovery document): plan, apply, an empty
//! re-plan, import by instance id and by workload id, drift (labels changed, instance deleted
//! out of band), destroy; and convergence under 20% injected faults through the aws tests' fault
//! proxy (GCE dialect: 403 rateLimitExceeded, 503 backendError, lost responses).
//!
//! Instances are checked in the server's own records, not through the driver under test.
//! Never run against real GCP: see docs/architecture.md for what this does not cover.

#[path = "../../provider/clouds/tests/support/gce_server.rs"]
mod gce_server;

use serde_json::Value as Json;

use crate::harness::{cloud_workloads_config, combined, repo_root, Workspace};
use crate::moto::{twenty_percent_faults, Dialect, FaultProxy, FAULT_REQUEST_TIMEOUT};
use gce_server::GceServer;

const PROJECT: &str = "hybrid-acceptance";
const REGION: &str = "europe-west1";

struct Gce {
    server: GceServer,
    key_file: std::path::PathBuf,
    /// A line of the service account's private key: no output may contain it.
    secret: String,
    _dir: tempfile::TempDir,
}

fn gce() -> Gce {
    let dir = tempfile::tempdir().expect("tempdir");
    let key_file = gce_server::fake_service_account(dir.path(), PROJECT);
    let key: Json = serde_json::from_str(&std::fs::read_to_string(&key_file).unwrap_or_default())
        .expect("key JSON");
    let secret = key["private_key"]
        .as_str()
        .and_then(|pem| pem.lines().nth(3))
        .unwrap_or_default()
        .to_string();
    assert!(secret.len() > 40, "a private key line to look for");
    Gce {
        server: GceServer::start(gce_server::load_discovery(&repo_root())),
        key_file,
        secret,
        _dir: dir,
    }
}

fn workspace(name: &str, g: &Gce) -> Workspace {
    Workspace::new(name).env(
        "GOOGLE_APPLICATION_CREDENTIALS",
        &g.key_file.display().to_string(),
    )
}

fn config(endpoint: &str, count: usize, team: &str, timeouts: bool) -> String {
    cloud_workloads_config(
        &format!(
            "  gcp {{\n    project      = \"{PROJECT}\"\n    endpoint_url = \"{endpoint}\"\n  }}"
        ),
        "gcp",
        REGION,
        count,
        &format!("team = \"{team}\", \"Cost Centre\" = \"R&D 42\""),
        timeouts,
    )
}

/// The provider block with `request_timeout` (the fault runs hold some answers past it).
fn with_fault_request_timeout(hcl: String) -> String {
    hcl.replacen(
        "    endpoint_url",
        &format!("    request_timeout = \"{FAULT_REQUEST_TIMEOUT}\"\n    endpoint_url"),
        1,
    )
}

/// Instances the server holds with our managed-by label, sorted by id.
fn managed(server: &GceServer) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = server
        .instances()
        .into_iter()
        .filter(|(_, l)| {
            l.get("hybrid-managed-by").map(String::as_str) == Some("terraform-provider-hybrid")
        })
        .map(|(id, l)| (id, l.get("hybrid-workload-id").cloned().unwrap_or_default()))
        .collect();
    out.sort();
    out
}

fn assert_clean(server: &GceServer) {
    let v = server.violations();
    assert!(v.is_empty(), "requests differ from compute.v1.json: {v:#?}");
}

#[test]
fn gcp_workload_lifecycle_against_a_local_compute_server() {
    let g = gce();
    let mut ws = workspace("gcp-lifecycle", &g);
    ws.config(&config(&g.server.url(), 1, "payments", false));

    let plan = ws.plan_json();
    let after = &plan["resource_changes"][0]["change"]["after"];
    assert_eq!(after["driver"], "gcp", "{after:#}");
    assert_eq!(after["placement"]["provider"], "gcp");
    assert_eq!(after["placement"]["region"], REGION);
    assert!(g.server.requests().is_empty(), "plan never calls the cloud");

    ws.set_env("TF_LOG", "trace");
    let apply_log = ws.apply();
    ws.remove_env("TF_LOG");
    assert!(
        apply_log.contains("terraform-provider-hybrid"),
        "trace log captured"
    );
    assert!(
        !apply_log.contains(&g.secret),
        "key material in TF_LOG=trace output"
    );
    assert!(
        !apply_log.contains("Bearer ey"),
        "a token in TF_LOG=trace output"
    );

    let web = ws.resource("hybrid_workload.web[0]");
    assert_eq!(web["driver"], "gcp");
    assert_eq!(web["status"], "running");
    let instance_id = web["instance_id"].as_str().unwrap_or_default().to_string();
    assert!(
        instance_id.starts_with(&format!("{PROJECT}/{REGION}-b/hybrid-wl-")),
        "{instance_id}"
    );
    assert_eq!(web["tags_all"]["team"], "payments");
    assert_eq!(
        web["tags_all"]["Cost Centre"], "R&D 42",
        "exact values survive label rules"
    );
    assert_eq!(web["tags_all"]["owner"], "acceptance");
    let workload_id = web["id"].as_str().unwrap_or_default().to_string();
    assert_eq!(
        managed(&g.server),
        vec![(instance_id.clone(), workload_id.clone())]
    );
    let raw = g.server.instance(&instance_id).expect("in the server");
    assert_eq!(raw["labels"]["cost_centre"], "r_d_42");
    ws.expect_empty_plan();

    let state_text = std::fs::read_to_string(ws.dir.join("terraform.tfstate")).unwrap_or_default();
    assert!(!state_text.is_empty() && !state_text.contains(&g.secret));
    assert!(!plan.to_string().contains(&g.secret));

    // Import by the instance id and by the workload id.
    for import_id in [instance_id.clone(), workload_id.clone()] {
        ws.state_rm("hybrid_workload.web[0]");
        ws.import("hybrid_workload.web[0]", &import_id);
        let imported = ws.resource("hybrid_workload.web[0]");
        assert_eq!(imported["instance_id"], Json::String(instance_id.clone()));
        assert_eq!(imported["driver"], "gcp");
        ws.expect_empty_plan();
    }

    // A label changed in the console shows as drift, and apply puts it back (setLabels with
    // the new fingerprint).
    g.server.edit(&instance_id, |v| {
        v["labels"]["team"] = Json::String("tampered".into())
    });
    let drift = ws.expect_changes();
    assert!(drift.contains("tampered"), "{drift}");
    ws.apply();
    ws.expect_empty_plan();
    assert_eq!(
        g.server.instance(&instance_id).expect("still there")["labels"]["team"],
        "payments"
    );

    // Deleted out of band: the next plan re-creates it, no error.
    assert!(g.server.remove(&instance_id));
    let recreate = ws.expect_changes();
    assert!(
        recreate.contains("hybrid_workload.web[0] will be created"),
        "{recreate}"
    );
    ws.apply();
    assert_eq!(managed(&g.server).len(), 1);
    ws.expect_empty_plan();

    ws.destroy();
    assert!(g.server.instances().is_empty());
    assert_clean(&g.server);
}

#[test]
fn gcp_apply_converges_under_twenty_percent_faults_without_orphans_or_duplicates() {
    const COUNT: usize = 8;
    const MAX_APPLIES: usize = 3;
    let g = gce();
    g.server.set_delays(2, 1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let proxy = FaultProxy::start_to(
        &rt,
        g.server.url(),
        Dialect::Gce,
        twenty_percent_faults(),
        0x6CE,
    );
    let ws = workspace("gcp-faults", &g);
    ws.config(&with_fault_request_timeout(config(
        &proxy.url(),
        COUNT,
        "batch",
        true,
    )));

    let mut applies = 0;
    loop {
        applies += 1;
        let out = ws.try_run(&["apply", "-input=false", "-auto-approve"]);
        let text = combined(&out);
        assert!(
            !text.contains(&g.secret),
            "key material in the output of a faulty apply"
        );
        if out.status.success() {
            break;
        }
        assert!(
            applies < MAX_APPLIES,
            "apply did not converge in {MAX_APPLIES} runs:\n{text}"
        );
        eprintln!("apply {applies} failed, running it again:\n{text}");
    }
    let in_state = ws.instance_ids();
    let in_server = managed(&g.server);
    let counts = &proxy.counts;
    println!(
        "gcp fault run: GCE {}; applies needed: {applies}; labelled instances: {}; all instances: {}; instances in state: {}",
        counts.summary(),
        in_server.len(),
        g.server.instances().len(),
        in_state.len(),
    );
    assert!(counts.injected() > 0, "the proxy injected faults");
    assert_eq!(in_state.len(), COUNT);
    assert_eq!(
        in_server.len(),
        COUNT,
        "no orphans, no duplicates: {in_server:?}"
    );
    assert_eq!(
        g.server.instances().len(),
        COUNT,
        "no unlabelled instances either"
    );
    let server_ids: Vec<String> = in_server.iter().map(|(i, _)| i.clone()).collect();
    assert_eq!(in_state, server_ids);

    let mut destroys = 0;
    loop {
        destroys += 1;
        let out = ws.try_run(&["destroy", "-input=false", "-auto-approve"]);
        if out.status.success() {
            break;
        }
        assert!(
            destroys < MAX_APPLIES,
            "destroy did not converge:\n{}",
            combined(&out)
        );
    }
    println!(
        "gcp fault run: destroys needed: {destroys}; apply and destroy together: {}",
        counts.summary()
    );
    counts.assert_every_kind();
    assert!(g.server.instances().is_empty());
    assert_clean(&g.server);
}
