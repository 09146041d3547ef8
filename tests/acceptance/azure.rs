//! `hybrid_workload` on the real Azure Compute driver, against `armfake` (the ARM contract
//! server this test starts; no ARM emulator exists): plan, apply, an empty re-plan, import by
//! ARM id and by workload id, drift (vmSize and tags changed out of band), a VM deleted out of
//! band (re-create planned), destroy; and convergence through the fault proxy at 20% faults,
//! lost responses after the request was applied included.
//!
//! What exists is checked in the server's state, not through the driver under test.

use std::sync::atomic::Ordering;

use armfake::{ArmFake, FakeConfig};
use serde_json::Value as Json;

use crate::harness::{cloud_workloads_config, combined, Workspace};
use crate::moto::{twenty_percent_faults, Dialect, FaultProxy, FAULT_REQUEST_TIMEOUT};

const REGION: &str = "westeurope";
/// The service principal's secret: no output may ever contain it.
const SECRET: &str = "hybrid-azure-acc-secret-51d2c0ffee";
const SUBNET: &str = "/subscriptions/00000000-0000-0000-0000-0000000000cc/resourceGroups/net-rg/providers/Microsoft.Network/virtualNetworks/vnet/subnets/default";

struct Cloud {
    fake: ArmFake,
    rt: tokio::runtime::Runtime,
}

fn cloud() -> Cloud {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let fake = ArmFake::start_on(
        &rt,
        FakeConfig {
            client_secret: SECRET.into(),
            ..FakeConfig::default()
        },
    )
    .expect("ARM contract server starts");
    Cloud { fake, rt }
}

fn workspace(name: &str, fake: &ArmFake) -> Workspace {
    Workspace::new(name)
        .env("AZURE_TENANT_ID", &fake.config.tenant_id)
        .env("AZURE_CLIENT_ID", &fake.config.client_id)
        .env("AZURE_CLIENT_SECRET", SECRET)
        .env("AZURE_SUBSCRIPTION_ID", &fake.config.subscription_id)
        .env("AZURE_AUTHORITY_HOST", &fake.authority_host())
}

fn config(endpoint: &str, group: &str, count: usize, team: &str, timeouts: bool) -> String {
    cloud_workloads_config(
        &format!("  azure {{\n    resource_group = \"{group}\"\n    endpoint_url   = \"{endpoint}\"\n    subnet_id      = \"{SUBNET}\"\n  }}"),
        "azure",
        REGION,
        count,
        &format!("team = \"{team}\""),
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

/// Live VMs tagged as ours: (ARM id, workload id).
fn tagged_vms(fake: &ArmFake) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = fake
        .vms()
        .into_iter()
        .filter(|vm| vm.provisioning_state != "Deleting")
        .filter(|vm| {
            vm.tags.get("hybrid:managed-by").map(String::as_str)
                == Some("terraform-provider-hybrid")
        })
        .map(|vm| {
            let workload = vm
                .tags
                .get("hybrid:workload-id")
                .cloned()
                .unwrap_or_default();
            (vm.id, workload)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn azure_workload_lifecycle_against_the_arm_contract_server() {
    let cloud = cloud();
    let fake = &cloud.fake;
    let group = fake.config.resource_group.clone();
    let mut ws = workspace("azure-lifecycle", fake);
    ws.config(&config(&fake.url, &group, 1, "payments", false));

    let plan = ws.plan_json();
    let after = &plan["resource_changes"][0]["change"]["after"];
    assert_eq!(after["driver"], "azure", "{after:#}");
    assert_eq!(after["placement"]["provider"], "azure");
    assert_eq!(after["placement"]["region"], REGION);
    let size = after["placement"]["instance_type"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(size.starts_with("Standard_"), "{size}");

    // Apply with full trace logging: the secret must appear nowhere.
    ws.set_env("TF_LOG", "trace");
    let apply_log = ws.apply();
    ws.remove_env("TF_LOG");
    assert!(
        apply_log.contains("terraform-provider-hybrid"),
        "trace log captured"
    );
    assert!(!apply_log.contains(SECRET), "secret in TF_LOG=trace output");

    let web = ws.resource("hybrid_workload.web[0]");
    assert_eq!(web["driver"], "azure");
    assert_eq!(web["status"], "running");
    let instance_id = web["instance_id"].as_str().unwrap_or_default().to_string();
    assert!(
        instance_id.starts_with(&format!("/subscriptions/{}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachines/hybrid-", fake.config.subscription_id)),
        "{instance_id}"
    );
    assert!(
        web["private_ip"]
            .as_str()
            .unwrap_or_default()
            .starts_with("10.0."),
        "{web:#}"
    );
    assert_eq!(web["tags_all"]["team"], "payments");
    assert_eq!(web["tags_all"]["owner"], "acceptance");
    let workload_id = web["id"].as_str().unwrap_or_default().to_string();
    assert_eq!(
        tagged_vms(fake),
        vec![(instance_id.clone(), workload_id.clone())],
        "one tagged VM, the one in state"
    );
    assert_eq!(fake.vms()[0].vm_size, size);
    assert_eq!(fake.vms()[0].location, REGION);
    assert_eq!(fake.nic_ids().len(), 1);
    ws.expect_empty_plan();

    let state_text = std::fs::read_to_string(ws.dir.join("terraform.tfstate")).unwrap_or_default();
    assert!(
        !state_text.is_empty() && !state_text.contains(SECRET),
        "secret in state"
    );
    assert!(!plan.to_string().contains(SECRET));

    // Import by the ARM id and by the workload id.
    for import_id in [instance_id.clone(), workload_id.clone()] {
        ws.state_rm("hybrid_workload.web[0]");
        ws.import("hybrid_workload.web[0]", &import_id);
        let imported = ws.resource("hybrid_workload.web[0]");
        assert_eq!(imported["instance_id"], Json::String(instance_id.clone()));
        assert_eq!(imported["driver"], "azure");
        ws.expect_empty_plan();
    }
    let vm_name = fake.vms()[0].name.clone();

    // Tags changed out of band show as drift, and apply puts them back.
    fake.set_tag(&vm_name, "team", "tampered");
    let drift = ws.expect_changes();
    assert!(drift.contains("tampered"), "{drift}");
    ws.apply();
    assert_eq!(fake.vms()[0].tags["team"], "payments");
    ws.expect_empty_plan();

    // vmSize changed out of band shows in the plan.
    fake.set_vm_size(&vm_name, "Standard_E64s_v5");
    let resized = ws.expect_changes();
    assert!(resized.contains("Standard_E64s_v5"), "{resized}");
    ws.apply();
    assert_eq!(fake.vms().len(), 1);
    assert_eq!(fake.vms()[0].vm_size, size, "the planned size is back");
    ws.expect_empty_plan();

    // Deleted out of band: the next plan re-creates it, no error.
    let current = fake.vms()[0].name.clone();
    assert!(fake.remove_vm(&current));
    let recreate = ws.expect_changes();
    assert!(
        recreate.contains("hybrid_workload.web[0] will be created"),
        "{recreate}"
    );
    ws.apply();
    assert_eq!(tagged_vms(fake).len(), 1);
    ws.expect_empty_plan();

    ws.destroy();
    assert!(fake.vms().is_empty(), "{:?}", fake.vms());
    assert!(fake.nic_ids().is_empty(), "NICs go with their VMs");
    let log = fake.requests();
    assert!(
        log.iter()
            .all(|r| r.contains("oauth2") || r.contains("api-version=")),
        "every ARM call names its api-version"
    );
    drop(cloud.rt);
}

#[test]
fn azure_apply_converges_under_twenty_percent_faults_without_orphans_or_duplicates() {
    const COUNT: usize = 6;
    const MAX_RUNS: usize = 3;
    let cloud = cloud();
    let fake = &cloud.fake;
    let proxy = FaultProxy::start_to(
        &cloud.rt,
        fake.url.clone(),
        Dialect::Ec2,
        twenty_percent_faults(),
        0xA2_0E,
    );
    // Operation and nextLink URLs lead through the proxy too, as ARM's lead to its front door.
    fake.set_public_url(&proxy.url());
    let ws = workspace("azure-faults", fake);
    ws.config(&with_fault_request_timeout(config(
        &proxy.url(),
        &fake.config.resource_group,
        COUNT,
        "batch",
        true,
    )));

    let mut applies = 0;
    loop {
        applies += 1;
        let out = ws.try_run(&["apply", "-input=false", "-auto-approve"]);
        let text = combined(&out);
        assert!(!text.contains(SECRET), "secret in output of a faulty apply");
        if out.status.success() {
            break;
        }
        assert!(
            applies < MAX_RUNS,
            "apply did not converge in {MAX_RUNS} runs:\n{text}"
        );
        eprintln!("apply {applies} failed, running it again:\n{text}");
    }
    let in_state = ws.instance_ids();
    let tagged = tagged_vms(fake);
    let counts = &proxy.counts;
    println!(
        "azure fault run: ARM through the proxy: {}; applies needed: {applies}; tagged VMs: {}; VMs: {}; NICs: {}; in state: {}",
        counts.summary(),
        tagged.len(),
        fake.vms().len(),
        fake.nic_ids().len(),
        in_state.len(),
    );
    assert!(
        counts.lost_responses.load(Ordering::SeqCst) > 0,
        "some responses were lost after the request was applied"
    );
    assert_eq!(in_state.len(), COUNT);
    assert_eq!(tagged.len(), COUNT, "no orphans, no duplicates: {tagged:?}");
    assert_eq!(fake.vms().len(), COUNT, "no untagged VMs either");
    assert_eq!(fake.nic_ids().len(), COUNT, "one NIC per VM");
    let tagged_ids: Vec<String> = tagged.into_iter().map(|(id, _)| id).collect();
    assert_eq!(in_state, tagged_ids);
    expect_empty_plan_through_faults(&ws);

    let mut destroys = 0;
    loop {
        destroys += 1;
        let out = ws.try_run(&["destroy", "-input=false", "-auto-approve"]);
        if out.status.success() {
            break;
        }
        assert!(
            destroys < MAX_RUNS,
            "destroy did not converge:\n{}",
            combined(&out)
        );
    }
    println!(
        "azure fault run: destroys needed: {destroys}; apply and destroy together: {}",
        counts.summary()
    );
    counts.assert_every_kind();
    assert!(fake.vms().is_empty(), "{:?}", fake.vms());
    assert!(fake.nic_ids().is_empty(), "{:?}", fake.nic_ids());
    drop(proxy);
}

/// A re-plan through the fault proxy may itself hit a fault that outlasts its retries: an
/// empty plan (exit 0) within three tries, and never a change (exit 2).
fn expect_empty_plan_through_faults(ws: &Workspace) {
    let mut last = String::new();
    for _ in 0..3 {
        let out = ws.try_run(&["plan", "-input=false", "-detailed-exitcode"]);
        last = combined(&out);
        assert_ne!(out.status.code(), Some(2), "re-plan shows changes:\n{last}");
        if out.status.success() {
            return;
        }
    }
    unreachable!("no empty plan in three tries:\n{last}");
}
