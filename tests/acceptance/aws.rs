//! `hybrid_workload` on the real EC2 driver, against a moto server this test starts: plan,
//! apply, an empty re-plan, import by instance id and by workload id, drift (tags changed and
//! the instance terminated out of band), destroy; and convergence under injected faults.
//!
//! Instances are checked in moto with plain EC2 queries, not through the driver under test.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value as Json;

use crate::harness::{cloud_workloads_config, combined, Workspace};
use crate::moto::{twenty_percent_faults, FaultProxy, FaultRates, Moto, FAULT_REQUEST_TIMEOUT};

pub(crate) const REGION: &str = "eu-west-1";
/// A value no output may ever contain.
const SECRET: &str = "hybrid-acc-secret-9f3c1e7a5b";

/// `count` batch workloads on aws through the fault proxy at `url`, each call bounded by
/// [`FAULT_REQUEST_TIMEOUT`].
fn fault_config(url: &str, count: usize) -> String {
    config_with(
        url,
        &format!("    request_timeout = \"{FAULT_REQUEST_TIMEOUT}\"\n"),
        count,
        "batch",
        true,
    )
}

pub(crate) fn workspace(name: &str) -> Workspace {
    Workspace::new(name)
        .env("AWS_ACCESS_KEY_ID", "AKIAHYBRIDACCTEST")
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_REGION", REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true")
}

pub(crate) fn config(endpoint: &str, count: usize, team: &str, timeouts: bool) -> String {
    config_with(endpoint, "", count, team, timeouts)
}

/// [`config`] with more attributes in the provider's `aws {}` block.
pub(crate) fn config_with(
    endpoint: &str,
    aws_extra: &str,
    count: usize,
    team: &str,
    timeouts: bool,
) -> String {
    cloud_workloads_config(
        &format!("  aws {{\n    endpoint_url = \"{endpoint}\"\n{aws_extra}  }}"),
        "aws",
        REGION,
        count,
        &format!("team = \"{team}\""),
        timeouts,
    )
}

pub(crate) fn ec2_id(instance_id: &str) -> String {
    instance_id
        .rsplit_once('/')
        .map(|(_, id)| id)
        .unwrap_or(instance_id)
        .to_string()
}

#[test]
fn aws_workload_lifecycle_against_moto() {
    let moto = Moto::start();
    let mut ws = workspace("aws-lifecycle");
    ws.config(&config(&moto.url(), 1, "payments", false));

    // Plan names the driver that will make the instance.
    let plan = ws.plan_json();
    let after = &plan["resource_changes"][0]["change"]["after"];
    assert_eq!(after["driver"], "aws", "{after:#}");
    assert_eq!(after["placement"]["provider"], "aws");
    assert_eq!(after["placement"]["region"], REGION);

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
    assert_eq!(web["driver"], "aws");
    assert_eq!(web["status"], "running");
    let instance_id = web["instance_id"].as_str().unwrap_or_default().to_string();
    assert!(
        instance_id.starts_with(&format!("{REGION}/i-")),
        "{instance_id}"
    );
    assert_eq!(web["tags_all"]["team"], "payments");
    assert_eq!(web["tags_all"]["owner"], "acceptance");
    let workload_id = web["id"].as_str().unwrap_or_default().to_string();
    let in_moto = moto.managed_instances(REGION);
    assert_eq!(
        in_moto,
        vec![(ec2_id(&instance_id), workload_id.clone())],
        "one tagged instance in moto, the one in state"
    );
    ws.expect_empty_plan();

    // The secret is not in state or plan JSON either.
    let state_text = std::fs::read_to_string(ws.dir.join("terraform.tfstate")).unwrap_or_default();
    assert!(!state_text.is_empty() && !state_text.contains(SECRET));
    let plan_text = plan.to_string();
    assert!(!plan_text.contains(SECRET));

    // Import by the bare EC2 id (looked up in AWS_REGION) and by the workload id.
    for import_id in [ec2_id(&instance_id), workload_id.clone()] {
        ws.state_rm("hybrid_workload.web[0]");
        ws.import("hybrid_workload.web[0]", &import_id);
        let imported = ws.resource("hybrid_workload.web[0]");
        assert_eq!(imported["instance_id"], Json::String(instance_id.clone()));
        assert_eq!(imported["driver"], "aws");
        ws.expect_empty_plan();
    }

    // Tags changed out of band show as drift, and apply puts them back.
    moto.ec2(
        REGION,
        &[
            ("Action", "CreateTags"),
            ("ResourceId.1", &ec2_id(&instance_id)),
            ("Tag.1.Key", "team"),
            ("Tag.1.Value", "tampered"),
        ],
    );
    let drift = ws.expect_changes();
    assert!(drift.contains("tampered"), "{drift}");
    ws.apply();
    ws.expect_empty_plan();

    // Terminated out of band: the next plan re-creates it, no error.
    moto.ec2(
        REGION,
        &[
            ("Action", "TerminateInstances"),
            ("InstanceId.1", &ec2_id(&instance_id)),
        ],
    );
    let recreate = ws.expect_changes();
    assert!(
        recreate.contains("hybrid_workload.web[0] will be created"),
        "{recreate}"
    );
    ws.apply();
    let again = ws.resource("hybrid_workload.web[0]");
    assert_ne!(again["instance_id"], Json::String(instance_id.clone()));
    assert_eq!(moto.managed_instances(REGION).len(), 1);
    ws.expect_empty_plan();

    ws.destroy();
    assert!(moto.managed_instances(REGION).is_empty());
    assert_eq!(moto.live_instance_count(REGION), 0);
}

/// The one live instance tagged as ours in moto is the one in state, and it runs.
fn assert_one_instance_matching_state(moto: &Moto, ws: &Workspace, step: &str) -> String {
    let web = ws.resource("hybrid_workload.web[0]");
    let instance_id = web["instance_id"].as_str().unwrap_or_default().to_string();
    assert_eq!(web["status"], "running", "{step}: {web:#}");
    assert_eq!(
        moto.managed_instances(REGION),
        vec![(
            ec2_id(&instance_id),
            web["id"].as_str().unwrap_or_default().to_string()
        )],
        "{step}: one tagged instance in moto, the one in state"
    );
    assert_eq!(
        moto.live_instance_count(REGION),
        1,
        "{step}: no untagged instance"
    );
    ws.expect_empty_plan();
    instance_id
}

/// EC2 remembers a RunInstances ClientToken for at least 24 hours after its instance
/// terminated and answers a repeat with that (terminated) instance: re-creating a workload in
/// that window, after an out-of-band termination or a destroy, must move on to a fresh token.
/// moto ignores tokens; `Moto::url` is our front that keeps EC2's contract.
#[test]
fn aws_recreates_a_workload_whose_client_token_ec2_still_remembers() {
    let moto = Moto::start();
    let ws = workspace("aws-token");
    ws.config(&config(&moto.url(), 1, "payments", false));
    ws.apply();
    let first = assert_one_instance_matching_state(&moto, &ws, "first apply");

    // Terminated out of band: the next apply re-creates it (token generation 0 is spent).
    moto.ec2(
        REGION,
        &[
            ("Action", "TerminateInstances"),
            ("InstanceId.1", &ec2_id(&first)),
        ],
    );
    ws.apply();
    let second = assert_one_instance_matching_state(&moto, &ws, "after out-of-band termination");
    assert_ne!(second, first);

    // Destroy, then apply the same configuration again (generations 0 and 1 are spent).
    ws.destroy();
    assert_eq!(moto.live_instance_count(REGION), 0);
    ws.apply();
    let third = assert_one_instance_matching_state(&moto, &ws, "destroy then apply");
    assert!(third != first && third != second);

    // Destroy, change a tag (the same key, other RunInstances parameters) and apply: the
    // spent tokens now answer IdempotentParameterMismatch, and no live instance holds them.
    ws.destroy();
    ws.config(&config(&moto.url(), 1, "billing", false));
    ws.apply();
    let fourth = assert_one_instance_matching_state(&moto, &ws, "destroy, new tags, apply");
    assert!(![&first, &second, &third].contains(&&fourth));
    assert_eq!(
        ws.resource("hybrid_workload.web[0]")["tags_all"]["team"],
        "billing"
    );

    let counts = &moto.front.counts;
    println!(
        "aws client tokens: 4 creates of one workload (out-of-band termination, destroy + apply, destroy + new tags + apply); {}",
        moto.front.summary()
    );
    assert_eq!(
        counts.launches.load(Ordering::SeqCst),
        4,
        "one launch per create"
    );
    assert!(
        counts.replays.load(Ordering::SeqCst) >= 3,
        "spent tokens were replayed: {}",
        moto.front.summary()
    );
    assert!(
        counts.mismatches.load(Ordering::SeqCst) >= 3,
        "tokens reused with new tags were refused: {}",
        moto.front.summary()
    );
    ws.destroy();
    assert_eq!(moto.live_instance_count(REGION), 0);
}

/// An instance an interrupted apply made (state never recorded it) and that was stopped since
/// is adopted and started by the next apply: a stopped instance never starts by itself, and
/// the create used to wait for it until its timeout.
#[test]
fn aws_adopts_and_starts_an_instance_stopped_before_state_recorded_it() {
    const CREATE_TIMEOUT: Duration = Duration::from_secs(90);
    let moto = Moto::start();
    let ws = workspace("aws-stopped");
    let hcl = config(&moto.url(), 1, "payments", true).replace(
        "create = \"10m\"",
        &format!("create = \"{}s\"", CREATE_TIMEOUT.as_secs()),
    );
    assert!(hcl.contains("create = \"90s\""), "{hcl}");
    ws.config(&hcl);
    ws.apply();
    let first = assert_one_instance_matching_state(&moto, &ws, "first apply");

    // State loses the workload, as when an apply is killed before it saves state, and the
    // instance is stopped.
    ws.state_rm("hybrid_workload.web[0]");
    let stopped = moto.ec2(
        REGION,
        &[
            ("Action", "StopInstances"),
            ("InstanceId.1", &ec2_id(&first)),
        ],
    );
    assert!(
        stopped.contains("<name>stopped</name>") || stopped.contains("<name>stopping</name>"),
        "{stopped}"
    );

    let started = std::time::Instant::now();
    ws.apply();
    let took = started.elapsed();
    let again =
        assert_one_instance_matching_state(&moto, &ws, "after adopting the stopped instance");
    println!(
        "aws stopped adoption: apply took {:.1} s (create timeout {} s); {}",
        took.as_secs_f64(),
        CREATE_TIMEOUT.as_secs(),
        moto.front.summary()
    );
    assert_eq!(
        again, first,
        "the stopped instance was adopted, not made again"
    );
    assert!(took < CREATE_TIMEOUT, "the create waited for its timeout");
    assert_eq!(
        moto.front.counts.launches.load(Ordering::SeqCst),
        1,
        "one RunInstances in all"
    );
    ws.destroy();
    assert_eq!(moto.live_instance_count(REGION), 0);
}

/// Duplicates (workloads with more than one live tagged instance) and orphans (live instances
/// in moto that state does not hold, tagged or not) against the instance ids in state.
pub(crate) fn duplicates_and_orphans(moto: &Moto, in_state: &[String]) -> (usize, usize) {
    let tagged = moto.managed_instances(REGION);
    let mut per_workload = std::collections::BTreeMap::<&str, usize>::new();
    for (_, workload) in &tagged {
        *per_workload.entry(workload.as_str()).or_default() += 1;
    }
    let duplicates = per_workload.values().map(|n| n.saturating_sub(1)).sum();
    let state_ids: std::collections::BTreeSet<String> =
        in_state.iter().map(|i| ec2_id(i)).collect();
    let tagged_orphans = tagged
        .iter()
        .filter(|(id, _)| !state_ids.contains(id))
        .count();
    let untagged = moto
        .live_instance_count(REGION)
        .saturating_sub(tagged.len());
    (duplicates, tagged_orphans + untagged)
}

/// Every RunInstances is carried out but answered after the driver's request timeout: each
/// create times out, is retried, and adopts the instance its first attempt made.
#[test]
fn aws_creates_answered_too_late_are_adopted_not_made_twice() {
    const COUNT: usize = 3;
    // Long enough that an apply which waited for the held answers would show it.
    const HELD_CREATE: Duration = Duration::from_secs(40);
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto,
        FaultRates {
            slow: 1.0,
            slow_hold: HELD_CREATE,
            only_creates: true,
            ..FaultRates::default()
        },
        0x510,
    );
    let ws = workspace("aws-slow");
    ws.config(&fault_config(&proxy.url(), COUNT));
    let started = std::time::Instant::now();
    ws.apply();
    let took = started.elapsed();
    let in_state = ws.instance_ids();
    let (duplicates, orphans) = duplicates_and_orphans(&moto, &in_state);
    let counts = &proxy.counts;
    println!(
        "aws slow creates: apply took {:.1} s with every RunInstances answer held {} s; {}; instances in moto: {}; in state: {}; duplicates {duplicates}, orphans {orphans}",
        took.as_secs_f64(),
        HELD_CREATE.as_secs(),
        counts.summary(),
        moto.live_instance_count(REGION),
        in_state.len(),
    );
    assert_eq!(
        counts.unanswered_creates.load(Ordering::SeqCst),
        COUNT as u64,
        "each create was answered too late once, then adopted (no second RunInstances)"
    );
    assert!(
        took < HELD_CREATE,
        "the creates waited for their answers instead of timing out after {FAULT_REQUEST_TIMEOUT}"
    );
    assert_eq!(in_state.len(), COUNT);
    assert_eq!((duplicates, orphans), (0, 0));
    assert_eq!(moto.live_instance_count(REGION), COUNT);
    ws.expect_empty_plan();
    ws.destroy();
    assert_eq!(moto.live_instance_count(REGION), 0);
}

#[test]
fn aws_apply_converges_under_twenty_percent_faults_without_orphans_or_duplicates() {
    const COUNT: usize = 8;
    const MAX_APPLIES: usize = 3;
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto, twenty_percent_faults(), 0x5EED);
    let ws = workspace("aws-faults");
    ws.config(&fault_config(&proxy.url(), COUNT));

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
            applies < MAX_APPLIES,
            "apply did not converge in {MAX_APPLIES} runs:\n{text}"
        );
        eprintln!("apply {applies} failed, running it again:\n{text}");
    }
    let in_state = ws.instance_ids();
    let in_moto = moto.managed_instances(REGION);
    let live = moto.live_instance_count(REGION);
    let (duplicates, orphans) = duplicates_and_orphans(&moto, &in_state);
    let counts = &proxy.counts;
    println!(
        "aws fault run: {}; applies needed: {applies}; instances in moto: {} tagged, {live} live; instances in state: {}; duplicates {duplicates}, orphans {orphans}; {}",
        counts.summary(),
        in_moto.len(),
        in_state.len(),
        moto.front.summary(),
    );
    counts.assert_every_kind();
    assert_eq!((duplicates, orphans), (0, 0), "{in_moto:?} vs {in_state:?}");
    assert_eq!(in_state.len(), COUNT);
    assert_eq!(
        in_moto.len(),
        COUNT,
        "no orphans, no duplicates: {in_moto:?}"
    );
    assert_eq!(live, COUNT, "no untagged instances either");
    let mut state_ids: Vec<String> = in_state.iter().map(|i| ec2_id(i)).collect();
    let mut moto_ids: Vec<String> = in_moto.iter().map(|(i, _)| i.clone()).collect();
    state_ids.sort();
    moto_ids.sort();
    assert_eq!(state_ids, moto_ids);

    // Destroy through the same faults also converges and leaves nothing behind.
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
        "aws fault run: destroys needed: {destroys}; apply and destroy together: {}",
        counts.summary()
    );
    assert_eq!(moto.live_instance_count(REGION), 0);
}
