//! The GCP driver against a local Compute Engine server (support/gce_server.rs) whose every
//! request is checked against the official discovery document, through the official client
//! over plain HTTP on 127.0.0.1 with credentials from Application Default Credentials (a
//! service-account key file the test makes; the client signs its own JWT, nothing leaves the
//! machine).
#![cfg(feature = "gcp")]

#[path = "support/gce_server.rs"]
mod gce_server;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clouds::gcp::{
    instance_name, request_id, GcpDriver, GcpSettings, LABEL_KEY, LABEL_MANAGED_BY,
    LABEL_WORKLOAD_ID, META_DESCRIPTION, META_TAGS,
};
use clouds::retry::{with_backoff, RetryPolicy, StopHandle, StopSignal};
use clouds::{
    Driver, DriverError, InstanceSpec, Metadata, MANAGED_BY_VALUE, TAG_MANAGED_BY, TAG_WORKLOAD_ID,
};
use gce_server::{Forced, GceServer};
use serde_json::json;

const PROJECT: &str = "hybrid-tests";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Setup {
    server: GceServer,
    _dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = gce_server::fake_service_account(dir.path(), PROJECT);
    // nextest runs each test in its own process; every test sets the same values.
    std::env::set_var("GOOGLE_APPLICATION_CREDENTIALS", &key);
    std::env::remove_var("GOOGLE_CLOUD_PROJECT");
    let server = GceServer::start(gce_server::load_discovery(&repo_root()));
    Setup { server, _dir: dir }
}

fn driver(server: &GceServer, stop: StopSignal) -> GcpDriver {
    GcpDriver::new(
        GcpSettings {
            project: Some(PROJECT.into()),
            endpoint_url: Some(server.url()),
            ..GcpSettings::default()
        },
        stop,
    )
    .with_poll(RetryPolicy {
        initial_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
        multiplier: 2.0,
        timeout: Duration::from_secs(20),
    })
}

fn spec(workload: &str) -> InstanceSpec {
    InstanceSpec {
        idempotency_key: format!("key-of-{workload}"),
        workload_id: format!("wl-{workload}"),
        name: format!("Checkout API {workload}"),
        provider: "gcp".into(),
        region: "europe-west1".into(),
        zone: None,
        instance_type: Some("e2-standard-2".into()),
        node: None,
        image: Some("nginx:latest".into()),
        tags: BTreeMap::from([
            ("Team".to_string(), "Payments EU".to_string()),
            ("env".to_string(), "prod".to_string()),
        ]),
        metadata: Some(Metadata::from_value(
            &json!({"state": {"name": "checkout", "cpu": 2}}),
        )),
    }
}

fn assert_clean(server: &GceServer) {
    let v = server.violations();
    assert!(v.is_empty(), "requests differ from compute.v1.json: {v:#?}");
}

#[tokio::test]
async fn create_makes_one_labelled_instance_and_reads_it_back_exactly() {
    let s = setup();
    let d = driver(&s.server, StopSignal::never());
    let sp = spec("0011aabb");
    let inst = d.create(&sp).await.expect("create");
    let name = instance_name(&sp);
    assert_eq!(inst.instance_id, format!("{PROJECT}/europe-west1-b/{name}"));
    assert_eq!(inst.status, "running");
    assert_eq!(inst.instance_type.as_deref(), Some("e2-standard-2"));
    assert_eq!(inst.region, "europe-west1");
    assert_eq!(inst.name, sp.name);
    assert_eq!(inst.idempotency_key, sp.idempotency_key);
    assert_eq!(inst.tags["Team"], "Payments EU");
    assert_eq!(inst.tags[TAG_MANAGED_BY], MANAGED_BY_VALUE);
    assert_eq!(inst.tags[TAG_WORKLOAD_ID], "wl-0011aabb");
    assert_eq!(inst.metadata, sp.metadata);
    assert!(!inst.private_ip.is_empty());
    assert_eq!(
        inst.image.as_deref(),
        Some("projects/debian-cloud/global/images/family/debian-12"),
        "a container image is not a GCE image: the documented default boots"
    );

    let inserts: Vec<_> = s
        .server
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/instances"))
        .collect();
    assert_eq!(inserts.len(), 1);
    assert_eq!(
        inserts[0].query.get("requestId"),
        Some(&request_id(&sp.idempotency_key))
    );
    let labels = &inserts[0].body["labels"];
    assert_eq!(labels[LABEL_MANAGED_BY], MANAGED_BY_VALUE);
    assert_eq!(labels[LABEL_WORKLOAD_ID], "wl-0011aabb");
    assert_eq!(labels["team"], "payments_eu");
    assert!(labels[LABEL_KEY].is_string());
    assert!(
        s.server
            .requests()
            .iter()
            .any(|r| r.path.ends_with("/wait")),
        "waited on the zone operation"
    );
    assert_eq!(
        d.read(&inst.instance_id).await.expect("read"),
        Some(inst.clone())
    );
    assert_clean(&s.server);
}

#[tokio::test]
async fn a_repeated_create_adopts_instead_of_inserting_again() {
    let s = setup();
    let d = driver(&s.server, StopSignal::never());
    let sp = spec("0022");
    let first = d.create(&sp).await.expect("create");
    let second = d.create(&sp).await.expect("create again");
    assert_eq!(first.instance_id, second.instance_id);
    assert_eq!(s.server.instances().len(), 1);
    let inserts = |s: &Setup| {
        s.server
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/instances"))
            .count()
    };
    assert_eq!(inserts(&s), 1);
    // A GET that does not see the instance (eventual consistency): the insert repeats the
    // requestId and GCE answers with the first operation.
    s.server.force(vec![Forced {
        status: 404,
        reason: "notFound".into(),
        message: "not yet".into(),
    }]);
    let third = d
        .create(&sp)
        .await
        .expect("create with a repeated requestId");
    assert_eq!(third.instance_id, first.instance_id);
    assert_eq!(inserts(&s), 2);
    assert!(s.server.requests().iter().all(|r| r.status != 409));
    // Once GCE has forgotten the requestId, the name still protects: 409, adopted.
    s.server.forget_request_ids();
    s.server.force(vec![Forced {
        status: 404,
        reason: "notFound".into(),
        message: "not yet".into(),
    }]);
    let fourth = d.create(&sp).await.expect("create after 409");
    assert_eq!(fourth.instance_id, first.instance_id);
    assert!(s.server.requests().iter().any(|r| r.status == 409));
    assert_eq!(s.server.instances().len(), 1);
    assert_clean(&s.server);
}

#[tokio::test]
async fn an_adopted_instance_stopped_or_suspended_since_is_started_or_resumed() {
    for (status, call) in [
        ("TERMINATED", "/start"),
        ("STOPPING", "/start"),
        ("SUSPENDED", "/resume"),
        ("SUSPENDING", "/resume"),
    ] {
        let s = setup();
        let d = driver(&s.server, StopSignal::never());
        let sp = spec("0031");
        let first = d.create(&sp).await.expect("create");
        // Stopped out of band after the first attempt made it (its state was never recorded).
        s.server
            .edit(&first.instance_id, |v| v["status"] = json!(status));
        let second = d
            .create(&sp)
            .await
            .unwrap_or_else(|e| panic!("adopting a {status} instance: {e}"));
        assert_eq!(second.instance_id, first.instance_id, "{status}");
        let held = s.server.instance(&first.instance_id).expect("instance");
        assert_eq!(held["status"], json!("RUNNING"), "{status}");
        let posts: Vec<String> = s
            .server
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.contains("/instances"))
            .map(|r| r.path.clone())
            .collect();
        assert_eq!(
            posts.len(),
            2,
            "{status}: one insert and one wake-up: {posts:?}"
        );
        assert!(posts[1].ends_with(call), "{status}: {posts:?}");
        assert_clean(&s.server);
    }
}

#[tokio::test]
async fn retried_creates_under_faults_make_exactly_one_instance() {
    let s = setup();
    let d = driver(&s.server, StopSignal::never());
    s.server.set_delays(3, 2);
    s.server.force(vec![
        Forced {
            status: 403,
            reason: "rateLimitExceeded".into(),
            message: "Rate Limit Exceeded".into(),
        },
        Forced {
            status: 503,
            reason: "backendError".into(),
            message: "Backend Error".into(),
        },
        Forced {
            status: 429,
            reason: "rateLimitExceeded".into(),
            message: "Too many".into(),
        },
    ]);
    let policy = RetryPolicy {
        initial_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        multiplier: 2.0,
        timeout: Duration::from_secs(20),
    };
    let sp = spec("0033");
    let inst = with_backoff("gcp", "create", &policy, &StopSignal::never(), |_| {
        d.create(&sp)
    })
    .await
    .expect("converges");
    assert_eq!(s.server.instances().len(), 1);
    assert_eq!(s.server.instances()[0].0, inst.instance_id);
    assert_clean(&s.server);
}

#[tokio::test]
async fn errors_say_which_call_failed_and_only_throttling_and_5xx_retry() {
    let s = setup();
    let d = driver(&s.server, StopSignal::never());
    let cases = [
        (403, "rateLimitExceeded", true, "Throttled"),
        (429, "rateLimitExceeded", true, "Throttled"),
        (503, "backendError", true, "Unavailable"),
        (400, "invalid", false, "Rejected"),
        (403, "forbidden", false, "Rejected"),
    ];
    for (status, reason, retryable, kind) in cases {
        // The create's first call is instances.get.
        s.server.force(vec![Forced {
            status,
            reason: reason.into(),
            message: format!("server says {reason}"),
        }]);
        let err = d.create(&spec("0044")).await.expect_err("forced error");
        assert_eq!(err.is_retryable(), retryable, "{status} {reason}: {err}");
        assert!(format!("{err:?}").starts_with(kind), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("instances.get") && text.contains(&format!("server says {reason}")),
            "{text}"
        );
        assert!(!text.to_lowercase().contains("panic"));
    }
    // An insert refused by the server names instances.insert.
    s.server.force(vec![
        Forced {
            status: 404,
            reason: "notFound".into(),
            message: "none".into(),
        },
        Forced {
            status: 400,
            reason: "invalid".into(),
            message: "Invalid value for field 'resource.machineType'".into(),
        },
    ]);
    let err = d.create(&spec("0044")).await.expect_err("rejected insert");
    assert!(matches!(err, DriverError::Rejected { .. }));
    assert!(err.to_string().contains("GCE instances.insert: Invalid value for field 'resource.machineType' (HTTP 400, invalid)"), "{err}");
    // Nothing sent to the server leaks into messages: no token, no key.
    assert!(!err.to_string().contains("Bearer"));
}

#[tokio::test]
async fn read_of_a_vanished_instance_is_none_and_delete_is_idempotent() {
    let s = setup();
    let d = driver(&s.server, StopSignal::never());
    let inst = d.create(&spec("0055")).await.expect("create");
    assert!(s.server.remove(&inst.instance_id));
    assert_eq!(d.read(&inst.instance_id).await.expect("read"), None);
    d.delete(&inst.instance_id)
        .await
        .expect("deleting what is gone succeeds");
    // Re-created with the same key after an out-of-band delete: GCE still remembers the
    // requestId and answers with the old operation; the driver inserts again.
    let back = d.create(&spec("0055")).await.expect("re-create");
    assert_eq!(back.instance_id, inst.instance_id);
    assert_eq!(s.server.instances().len(), 1);
    d.delete(&back.instance_id).await.expect("delete");
    let again = d.create(&spec("0056")).await.expect("create");
    d.delete(&again.instance_id).await.expect("delete");
    assert!(s.server.instances().is_empty());
    assert!(s.server.requests().iter().any(|r| r.method == "DELETE"));
    // Ids of other drivers are not ours: absent, not an error (import tries every driver).
    assert_eq!(d.read("us-east-1/i-0123").await.expect("foreign id"), None);
    assert_clean(&s.server);
}

#[tokio::test]
async fn update_tags_sets_labels_and_metadata_with_fingerprints_and_drift_shows() {
    let s = setup();
    let d = driver(&s.server, StopSignal::never());
    let inst = d.create(&spec("0066")).await.expect("create");
    let tags = BTreeMap::from([
        ("Team".to_string(), "Search".to_string()),
        ("Owner".to_string(), "Ada Lovelace".to_string()),
    ]);
    let meta = Metadata::from_value(&json!({"state": {"name": "checkout", "cpu": 4}}));
    let updated = d
        .update_tags(&inst.instance_id, &tags, Some(&meta))
        .await
        .expect("update");
    assert_eq!(updated.tags["Team"], "Search");
    assert_eq!(updated.tags["Owner"], "Ada Lovelace");
    assert!(!updated.tags.contains_key("env"));
    assert_eq!(updated.tags[TAG_WORKLOAD_ID], "wl-0066");
    assert_eq!(updated.metadata, Some(meta.clone()));
    let raw = s.server.instance(&inst.instance_id).expect("exists");
    assert_eq!(raw["labels"]["owner"], "ada_lovelace");
    assert!(raw["labels"][LABEL_KEY].is_string(), "our key label stays");
    let items = raw["metadata"]["items"].as_array().expect("items");
    assert!(items.iter().any(|i| i["key"] == META_TAGS));
    assert!(items.iter().any(|i| i["key"] == META_DESCRIPTION));
    let calls: Vec<String> = s.server.requests().iter().map(|r| r.path.clone()).collect();
    assert!(calls.iter().any(|p| p.ends_with("/setLabels")));
    assert!(calls.iter().any(|p| p.ends_with("/setMetadata")));

    // Someone edits labels and the machine type in the console: read shows it.
    s.server.edit(&inst.instance_id, |v| {
        v["labels"]["team"] = json!("other");
        v["labels"]["added"] = json!("by-hand");
        v["machineType"] = json!("zones/europe-west1-b/machineTypes/e2-standard-4");
    });
    let seen = d
        .read(&inst.instance_id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(seen.tags["team"], "other");
    assert_eq!(seen.tags["added"], "by-hand");
    assert!(!seen.tags.contains_key("Team"));
    assert_eq!(seen.instance_type.as_deref(), Some("e2-standard-4"));

    // An instance gone between plan and apply is NotFound; a stale fingerprint (412) is
    // retryable, so the next attempt reads the instance again.
    s.server.force(vec![Forced {
        status: 404,
        reason: "notFound".into(),
        message: "gone".into(),
    }]);
    let err = d
        .update_tags(&inst.instance_id, &tags, None)
        .await
        .expect_err("404 on get");
    assert!(matches!(err, DriverError::NotFound { .. }), "{err:?}");
    let err412 = clouds::gcp::classify(
        "update",
        "instances.setLabels",
        Some(412),
        Some("conditionNotMet"),
        None,
    );
    assert!(err412.is_retryable());
    let again = d
        .update_tags(&inst.instance_id, &tags, Some(&meta))
        .await
        .expect("update");
    assert_eq!(again.tags["Team"], "Search");
    assert_clean(&s.server);
}

#[tokio::test]
async fn find_by_workload_and_list_managed_page_through_every_zone() {
    let s = setup();
    let d = driver(&s.server, StopSignal::never());
    let mut ids = Vec::new();
    for (i, zone) in [
        "us-central1-a",
        "us-central1-b",
        "europe-west4-a",
        "asia-east1-a",
        "us-central1-a",
    ]
    .iter()
    .enumerate()
    {
        let mut sp = spec(&format!("{i:04}"));
        sp.zone = Some(zone.to_string());
        sp.region = zone
            .rsplit_once('-')
            .map(|(r, _)| r.to_string())
            .unwrap_or_default();
        ids.push(d.create(&sp).await.expect("create").instance_id);
    }
    let mut listed: Vec<String> = d
        .list_managed()
        .await
        .expect("list")
        .into_iter()
        .map(|i| i.instance_id)
        .collect();
    listed.sort();
    ids.sort();
    assert_eq!(listed, ids, "five instances over two pages of three");
    assert!(s
        .server
        .requests()
        .iter()
        .any(|r| r.query.contains_key("pageToken")));
    let found = d
        .find_by_workload("wl-0003")
        .await
        .expect("find")
        .expect("found");
    assert_eq!(found.workload_id, "wl-0003");
    assert_eq!(found.zone.as_deref(), Some("asia-east1-a"));
    assert_eq!(d.find_by_workload("wl-none").await.expect("find"), None);
    let filters: Vec<String> = s
        .server
        .requests()
        .iter()
        .filter_map(|r| r.query.get("filter").cloned())
        .collect();
    assert!(
        filters.iter().all(|f| f.contains(&format!(
            "labels.{LABEL_MANAGED_BY} = \"{MANAGED_BY_VALUE}\""
        ))),
        "{filters:?}"
    );
    assert_clean(&s.server);
}

#[tokio::test]
async fn stop_provider_cancels_an_operation_wait() {
    let s = setup();
    let (handle, signal) = StopHandle::new();
    let d = driver(&s.server, signal);
    s.server.set_delays(1_000_000, 0);
    let sp = spec("0077");
    let task = tokio::spawn(async move { d.create(&sp).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    handle.stop();
    let out = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("stops promptly")
        .expect("task");
    assert!(matches!(out, Err(DriverError::Cancelled { .. })), "{out:?}");
}

#[tokio::test]
async fn no_project_and_no_credentials_are_clear_errors() {
    let s = setup();
    let d = GcpDriver::new(
        GcpSettings {
            endpoint_url: Some(s.server.url()),
            ..GcpSettings::default()
        },
        StopSignal::never(),
    );
    let err = d.create(&spec("0088")).await.expect_err("no project");
    assert!(err.to_string().contains("GOOGLE_CLOUD_PROJECT"), "{err}");
    std::env::set_var("GOOGLE_CLOUD_PROJECT", PROJECT);
    d.create(&spec("0088"))
        .await
        .expect("project from the environment");

    let dir = tempfile::tempdir().expect("tempdir");
    let broken = dir.path().join("broken.json");
    std::fs::write(
        &broken,
        "{\"type\": \"service_account\", \"private_key\": \"SECRET-MATERIAL\"}",
    )
    .expect("write");
    std::env::set_var("GOOGLE_APPLICATION_CREDENTIALS", &broken);
    let d = driver(&s.server, StopSignal::never());
    let err = d
        .read(&format!("{PROJECT}/us-central1-a/x"))
        .await
        .expect_err("broken credentials");
    assert!(!err.is_retryable());
    assert!(!err.to_string().contains("SECRET-MATERIAL"), "{err}");
    assert!(
        err.to_string().contains("Application Default Credentials"),
        "{err}"
    );
}

#[test]
fn the_process_uses_the_aws_lc_rs_crypto_provider() {
    let _d = GcpDriver::new(GcpSettings::default(), StopSignal::never());
    let provider =
        rustls::crypto::CryptoProvider::get_default().expect("a default provider is installed");
    // aws-lc-rs offers the post-quantum hybrid group X25519MLKEM768; ring does not.
    assert!(
        provider
            .kx_groups
            .iter()
            .any(|g| format!("{:?}", g.name()).contains("MLKEM")),
        "expected aws-lc-rs: {:?}",
        provider
            .kx_groups
            .iter()
            .map(|g| g.name())
            .collect::<Vec<_>>()
    );
}
