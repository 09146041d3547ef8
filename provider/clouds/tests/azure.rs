//! The azure driver against `armfake`, a local server that keeps the ARM virtualMachines /
//! networkInterfaces contract and the Entra token endpoint (no ARM emulator exists). What a
//! request looked like is checked in the server's request log, what exists in its state.

#![cfg(feature = "azure")]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use armfake::{ArmFake, FakeConfig, Fault};
use clouds::azure::{AzureDriver, AzureSettings};
use clouds::retry::{with_backoff, RetryPolicy, StopHandle, StopSignal};
use clouds::{Driver, DriverError, InstanceSpec, Metadata, TAG_MANAGED_BY, TAG_WORKLOAD_ID};

const SUBNET: &str = "/subscriptions/00000000-0000-0000-0000-0000000000cc/resourceGroups/net-rg/providers/Microsoft.Network/virtualNetworks/vnet/subnets/default";

fn set_env(config: &FakeConfig) {
    // Every test uses the same service principal, so parallel tests agree on the environment;
    // what differs per test (the authority's port) is passed in the settings.
    std::env::set_var("AZURE_TENANT_ID", &config.tenant_id);
    std::env::set_var("AZURE_CLIENT_ID", &config.client_id);
    std::env::set_var("AZURE_CLIENT_SECRET", &config.client_secret);
    std::env::set_var("AZURE_SUBSCRIPTION_ID", &config.subscription_id);
}

async fn fake() -> ArmFake {
    let fake = ArmFake::start(FakeConfig::default())
        .await
        .expect("fake ARM server starts");
    set_env(&fake.config);
    fake
}

fn settings(fake: &ArmFake) -> AzureSettings {
    AzureSettings {
        subscription_id: None,
        resource_group: fake.config.resource_group.clone(),
        endpoint_url: Some(fake.url.clone()),
        subnet_id: Some(SUBNET.into()),
        network_interface_id: None,
        default_image: None,
        authority_host: Some(fake.authority_host()),
        ssh_public_key: Some("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHybridTestKeyOnly test".into()),
        request_timeout: None,
    }
}

fn driver(fake: &ArmFake) -> AzureDriver {
    AzureDriver::new(settings(fake), StopSignal::never())
}

fn spec(workload: &str) -> InstanceSpec {
    InstanceSpec {
        idempotency_key: format!("key-{workload}"),
        workload_id: format!("wl-{workload}"),
        name: "api".into(),
        provider: "azure".into(),
        region: "westeurope".into(),
        zone: None,
        instance_type: Some("Standard_B2s".into()),
        node: None,
        image: None,
        tags: BTreeMap::from([("team".to_string(), "payments".to_string())]),
        metadata: Some(Metadata::from_value(
            &serde_json::json!({"state": {"name": "api", "blob": "z".repeat(700)}}),
        )),
    }
}

fn kind(err: &DriverError) -> &'static str {
    match err {
        DriverError::Throttled { .. } => "throttled",
        DriverError::Unavailable { .. } => "unavailable",
        DriverError::Rejected { .. } => "rejected",
        DriverError::NotFound { .. } => "not_found",
        DriverError::Timeout { .. } => "timeout",
        DriverError::Cancelled { .. } => "cancelled",
        DriverError::Storage { .. } => "storage",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_read_update_find_list_delete() {
    let fake = fake().await;
    let d = driver(&fake);
    let s = spec("0011223344556677");

    let made = d.create(&s).await.expect("create");
    assert!(made.instance_id.starts_with("/subscriptions/00000000-0000-0000-0000-0000000000cc/resourceGroups/hybrid-rg/providers/Microsoft.Compute/virtualMachines/hybrid-0011223344556677-"), "{}", made.instance_id);
    assert_eq!(made.status, "running");
    assert_eq!(made.instance_type.as_deref(), Some("Standard_B2s"));
    assert_eq!(made.region, "westeurope");
    assert_eq!(made.image.as_deref(), Some(clouds::azure::DEFAULT_IMAGE));
    assert!(made.private_ip.starts_with("10.0."), "{}", made.private_ip);
    assert_eq!(made.tags["team"], "payments");
    assert_eq!(made.workload_id, s.workload_id);
    assert_eq!(
        made.metadata, s.metadata,
        "description round-trips through tags"
    );

    let vms = fake.vms();
    assert_eq!(vms.len(), 1);
    assert_eq!(vms[0].tags[TAG_MANAGED_BY], "terraform-provider-hybrid");
    assert_eq!(vms[0].tags[TAG_WORKLOAD_ID], s.workload_id);
    assert!(vms[0].tags.values().all(|v| v.chars().count() <= 256));
    assert_eq!(fake.nic_ids().len(), 1, "one NIC made in the subnet");
    let log = fake.requests();
    assert!(
        log.iter().any(|r| r.starts_with("PUT /subscriptions/")
            && r.contains("/networkInterfaces/")
            && r.ends_with("?api-version=2024-05-01")),
        "{log:#?}"
    );
    assert!(
        log.iter().any(|r| r.starts_with("PUT /subscriptions/")
            && r.contains("/virtualMachines/")
            && r.ends_with("?api-version=2024-07-01")),
        "{log:#?}"
    );
    assert!(
        log.iter().any(|r| r.contains("/operations/")),
        "the async operation was polled: {log:#?}"
    );

    // Create again (a retry, or a new apply after a lost answer): the same VM, no second one.
    let again = d.create(&s).await.expect("create again");
    assert_eq!(again.instance_id, made.instance_id);
    assert_eq!(fake.vms().len(), 1);

    let read = d
        .read(&made.instance_id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(read.instance_id, made.instance_id);

    // Tags: replaced, ours and the key kept.
    let new_tags = BTreeMap::from([("team".to_string(), "search".to_string())]);
    let updated = d
        .update_tags(&made.instance_id, &new_tags, s.metadata.as_ref())
        .await
        .expect("update");
    assert_eq!(updated.tags["team"], "search");
    let stored = &fake.vms()[0].tags;
    assert_eq!(stored["team"], "search");
    assert_eq!(stored["hybrid:idempotency-key"], s.idempotency_key);
    assert!(fake.requests().iter().any(|r| r.starts_with("PATCH ")));

    // Out-of-band resize shows in the instance type (drift).
    fake.set_vm_size(&fake.vms()[0].name, "Standard_D4s_v5");
    let drifted = d
        .read(&made.instance_id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(drifted.instance_type.as_deref(), Some("Standard_D4s_v5"));

    let found = d
        .find_by_workload(&s.workload_id)
        .await
        .expect("find")
        .expect("found");
    assert_eq!(found.instance_id, made.instance_id);
    assert!(d.find_by_workload("wl-none").await.expect("find").is_none());
    assert_eq!(d.list_managed().await.expect("list").len(), 1);

    d.delete(&made.instance_id).await.expect("delete");
    assert!(fake.vms().is_empty());
    assert!(fake.nic_ids().is_empty(), "the NIC went with the VM");
    assert!(
        d.read(&made.instance_id).await.expect("read").is_none(),
        "404 is None"
    );
    d.delete(&made.instance_id)
        .await
        .expect("deleting a gone VM succeeds");
    // Ids of other clouds are not ours.
    assert!(d.read("eu-west-1/i-0123").await.expect("read").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adopted_vm_stopped_or_deallocated_since_is_started() {
    for power in ["stopped", "deallocated", "stopping", "deallocating"] {
        let fake = fake().await;
        let d = driver(&fake);
        let sp = spec("0041");
        let first = d.create(&sp).await.expect("create");
        let vm_name = fake.vms()[0].name.clone();
        // Stopped out of band after the first attempt made it (its state was never recorded).
        fake.set_power(&vm_name, power);
        let second = d
            .create(&sp)
            .await
            .unwrap_or_else(|e| panic!("adopting a {power} VM: {e}"));
        assert_eq!(second.instance_id, first.instance_id, "{power}");
        assert_eq!(second.status, "running", "{power}");
        let calls = fake.requests();
        let starts = calls.iter().filter(|r| r.contains("/start")).count();
        let puts = calls
            .iter()
            .filter(|r| {
                r.starts_with("PUT") && r.to_ascii_lowercase().contains("/virtualmachines/")
            })
            .count();
        assert_eq!((starts, puts), (1, 1), "{power}: {calls:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_follows_next_links_and_keeps_only_ours() {
    let fake = fake().await;
    let d = driver(&fake);
    for w in ["aa01", "aa02", "aa03"] {
        d.create(&spec(w)).await.expect("create");
    }
    let listed = d.list_managed().await.expect("list");
    assert_eq!(listed.len(), 3, "three pages of size 2 joined");
    assert!(fake.requests().iter().any(|r| r.contains("skiptoken")));
    let found = d
        .find_by_workload("wl-aa03")
        .await
        .expect("find")
        .expect("found");
    assert_eq!(found.workload_id, "wl-aa03");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_honours_retry_after_and_server_errors_are_retried() {
    let fake = fake().await;
    let d = driver(&fake);
    fake.inject(Fault {
        method: "PUT".into(),
        path_contains: "/virtualMachines/".into(),
        status: 429,
        code: "TooManyRequests".into(),
        retry_after_secs: Some(2),
        times: 1,
    });
    fake.inject(Fault {
        method: "GET".into(),
        path_contains: "/operations/".into(),
        status: 503,
        code: "ServiceUnavailable".into(),
        retry_after_secs: None,
        times: 2,
    });
    let s = spec("bb01");
    let first = d.create(&s).await.expect_err("throttled");
    assert_eq!(kind(&first), "throttled");
    assert!(
        first.to_string().contains("virtualMachines.CreateOrUpdate")
            && first.to_string().contains("TooManyRequests"),
        "{first}"
    );

    fake.inject(Fault {
        method: "PUT".into(),
        path_contains: "/virtualMachines/".into(),
        status: 429,
        code: "TooManyRequests".into(),
        retry_after_secs: Some(2),
        times: 1,
    });
    let started = Instant::now();
    let policy = RetryPolicy {
        initial_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        multiplier: 2.0,
        timeout: Duration::from_secs(60),
    };
    let made = with_backoff("azure", "create", &policy, &StopSignal::never(), |_| {
        d.create(&s)
    })
    .await
    .expect("create converges");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "waited for Retry-After"
    );
    assert_eq!(fake.vms().len(), 1);
    assert_eq!(made.status, "running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejections_name_the_call_and_carry_arm_code() {
    let fake = fake().await;
    let d = driver(&fake);
    fake.inject(Fault {
        method: "PUT".into(),
        path_contains: "/virtualMachines/".into(),
        status: 409,
        code: "OperationNotAllowed".into(),
        retry_after_secs: None,
        times: 1,
    });
    let err = d.create(&spec("cc01")).await.expect_err("409");
    assert_eq!(kind(&err), "rejected");
    assert!(
        err.to_string()
            .contains("ARM virtualMachines.CreateOrUpdate: OperationNotAllowed"),
        "{err}"
    );

    let mut bad = spec("cc02");
    bad.instance_type = Some("t3.micro".into());
    let err = d.create(&bad).await.expect_err("bad size");
    assert_eq!(kind(&err), "rejected");
    assert!(
        err.to_string().contains("InvalidParameter") && err.to_string().contains("vmSize"),
        "{err}"
    );

    let mut no_net = settings(&fake);
    no_net.subnet_id = None;
    let err = AzureDriver::new(no_net, StopSignal::never())
        .create(&spec("cc03"))
        .await
        .expect_err("no network");
    assert!(
        err.to_string().contains("subnet_id") && err.to_string().contains("network_interface_id"),
        "{err}"
    );

    let mut bad_image = spec("cc04");
    bad_image.image = Some("Canonical:ubuntu-24_04-lts:server:latest".into());
    d.create(&bad_image).await.expect("an explicit URN works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_is_rejected_without_the_secret_in_the_error() {
    // A server expecting another secret than the environment's.
    let config = FakeConfig {
        client_secret: "the-server-expects-this".into(),
        ..FakeConfig::default()
    };
    let fake = ArmFake::start(config).await.expect("start");
    set_env(&FakeConfig::default());
    let d = driver(&fake);
    let err = d.read("/subscriptions/00000000-0000-0000-0000-0000000000cc/resourceGroups/hybrid-rg/providers/Microsoft.Compute/virtualMachines/hybrid-x").await.expect_err("unauthorized");
    let text = format!("{err} {err:?}");
    assert_eq!(kind(&err), "rejected");
    assert!(text.contains("AADSTS7000215"), "{text}");
    assert!(
        !text.contains(&FakeConfig::default().client_secret),
        "{text}"
    );
    assert!(!text.contains("the-server-expects-this"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_cancels_a_wait_for_a_long_operation() {
    let config = FakeConfig {
        operation_time: Duration::from_secs(60),
        ..FakeConfig::default()
    };
    let fake = ArmFake::start(config).await.expect("start");
    set_env(&fake.config);
    let (handle, signal) = StopHandle::new();
    let d = AzureDriver::new(settings(&fake), signal);
    let started = Instant::now();
    let create = tokio::spawn(async move { d.create(&spec("dd01")).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    handle.stop();
    let err = create.await.expect("task").expect_err("cancelled");
    assert_eq!(kind(&err), "cancelled");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_given_nic_is_attached_and_survives_the_vm() {
    let fake = fake().await;
    let nic = fake.add_nic("shared-nic", "westeurope", SUBNET);
    let mut s = settings(&fake);
    s.subnet_id = None;
    s.network_interface_id = Some(nic.clone());
    let d = AzureDriver::new(s, StopSignal::never());
    let made = d.create(&spec("ee01")).await.expect("create");
    assert_eq!(fake.vms()[0].nic_ids, vec![nic.clone()]);
    assert!(
        !fake
            .requests()
            .iter()
            .any(|r| r.starts_with("PUT") && r.contains("networkInterfaces")),
        "no NIC made"
    );
    d.delete(&made.instance_id).await.expect("delete");
    assert!(fake.vms().is_empty());
    assert_eq!(fake.nic_ids(), vec![nic], "a NIC we did not make stays");
}
