//! The promises that only show under stress, with the real Terraform CLI:
//!
//! - eight workspaces (separate terraform processes, state files and provider processes) apply
//!   at once against one edge cluster through the shared capacity ledger, on SQLite and on a real
//!   redis-server: no node is ever committed past its limits, every loser gets a diagnostic
//!   naming the holders, and what runs equals what the states hold;
//! - the provider process is killed with SIGKILL at random points of an apply: the next apply
//!   converges, nothing is duplicated or orphaned, and no ledger reservation is leaked; on the
//!   sim cloud, and (feature `aws`) on moto through the fault proxy.
//!
//! Each test prints its figures. The light versions here run in CI; `make stress` runs them
//! with more rounds (`HYBRID_STRESS_CRASH_RUNS`, `HYBRID_STRESS_RACE_ROUNDS`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{assert_no_crash, combined, kill_provider, provider_descendants, Workspace};

const NODE_CPU_LIMIT: u32 = 4;
const RACER_CPU: u32 = 2;
const RACERS: usize = 8;

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

/// A redis-server child process on a free loopback port, stopped on drop.
struct RedisServer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    fn start() -> RedisServer {
        let dir = tempfile::tempdir().expect("tempdir");
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            let mut child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server must be installed (scripts/install-tools.sh installs it)");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return RedisServer {
                        child,
                        port,
                        _dir: dir,
                    };
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("redis-server did not start");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn site_config(cluster: &str) -> String {
    let mut hcl = format!(
        r#"
provider "hybrid" {{}}

resource "hybrid_edge_cluster" "site" {{
  name              = "{cluster}"
  geographic_region = "eu-central"
  location {{
    lat = 52.52
    lng = 13.40
  }}
}}
"#
    );
    for n in ["n1", "n2"] {
        hcl.push_str(&format!(
            r#"
resource "hybrid_edge_node" "{n}" {{
  cluster_id   = hybrid_edge_cluster.site.id
  name         = "{n}"
  node_type    = "compute"
  capabilities = ["real_time_processing"]
  hardware_specs {{
    cpu_cores  = 8
    memory_gb  = 32
    storage_gb = 100
  }}
  resource_limits {{
    cpu       = {NODE_CPU_LIMIT}
    memory_gb = 16
  }}
}}
"#
        ));
    }
    hcl
}

fn racer_config(name: &str, cluster_id: &str) -> String {
    format!(
        r#"
provider "hybrid" {{}}

resource "hybrid_workload" "w" {{
  name                = "{name}"
  cpu                 = {RACER_CPU}
  memory_gb           = 1
  preferred_providers = ["edge"]
  edge_cluster_ids    = ["{cluster_id}"]
}}
"#
    )
}

/// Eight workspaces race for two nodes that fit four of them; returns the printed figure.
fn race(label: &str, ledger_url: Option<&str>, round: usize) -> String {
    let mut site = Workspace::new(&format!("race-{label}-{round}-site"));
    if let Some(url) = ledger_url {
        site.set_env("EDGE_CLUSTER_REDIS_URL", url);
    }
    site.config(&site_config(&format!("race-{label}-{round}")));
    site.apply();
    let cluster_id = site.resource("hybrid_edge_cluster.site")["id"]
        .as_str()
        .expect("cluster id")
        .to_string();
    let state = site.state_db.to_string_lossy().to_string();

    let racers: Vec<Workspace> = (0..RACERS)
        .map(|i| {
            let mut ws = Workspace::new(&format!("race-{label}-{round}-{i}"))
                .env("HYBRID_STATE_PATH", &state);
            if let Some(url) = ledger_url {
                ws.set_env("EDGE_CLUSTER_REDIS_URL", url);
            }
            ws.config(&racer_config(
                &format!("racer-{label}-{round}-{i}"),
                &cluster_id,
            ));
            ws
        })
        .collect();

    let started = Instant::now();
    let outcomes: Vec<(bool, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = racers
            .iter()
            .map(|ws| {
                scope.spawn(move || {
                    let out = ws.try_run(&["apply", "-input=false", "-auto-approve"]);
                    (out.status.success(), combined(&out))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("racer thread"))
            .collect()
    });
    let elapsed = started.elapsed();

    let mut winners = 0;
    for (ok, text) in &outcomes {
        assert_no_crash(text);
        if *ok {
            winners += 1;
        } else {
            let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(
                flat.contains("held by wl-") || flat.contains("capacity is not free any more"),
                "a refused racer must be told who holds the capacity:\n{text}"
            );
        }
    }

    // What the ledger holds: never past a node's limits, and exactly the winners' bookings.
    let location = ledger_url.map(str::to_string).unwrap_or(state.clone());
    let ledger = ledger::open(&location).expect("open ledger");
    let mut holders = BTreeSet::new();
    let mut per_node = BTreeMap::new();
    for node in ledger.nodes().expect("nodes") {
        let usage = ledger.usage(&node).expect("usage");
        assert!(
            usage.reserved.fits_within(&usage.capacity),
            "node {node} over-committed: {usage:?}"
        );
        for h in &usage.holders {
            assert_eq!(
                h.state,
                ledger::ReservationState::Committed,
                "a finished apply leaves no pending lease: {usage:?}"
            );
            holders.insert(h.holder.as_str().to_string());
        }
        per_node.insert(
            node.as_str().to_string(),
            (usage.reserved.cpu_millis, usage.capacity.cpu_millis),
        );
    }
    assert_eq!(holders.len(), winners, "ledger holders vs winners");
    let live = site.sim_instances();
    assert_eq!(live.len(), winners, "instances running vs winners");
    let fit = (2 * NODE_CPU_LIMIT / RACER_CPU) as usize;
    assert!(winners >= 1 && winners <= fit, "{winners} winners");

    // Winners first: Terraform 1.0's destroy runs a normal plan before the destroy plan, and a
    // loser's workload (never created) cannot be planned while the winners hold the capacity.
    let mut order: Vec<usize> = (0..RACERS).collect();
    order.sort_by_key(|i| !outcomes[*i].0);
    for i in order {
        racers[i].destroy();
    }
    site.destroy();
    assert!(site.sim_instances().is_empty());

    let nodes: Vec<String> = per_node
        .values()
        .map(|(r, c)| format!("{}/{} cpu", r / 1000, c / 1000))
        .collect();
    format!(
        "race[{label}] round {round}: {RACERS} workspaces in {:.1} s, {winners} won (at most {fit} fit), {} refused with the holders named, nodes committed {}, over-commits 0",
        elapsed.as_secs_f64(),
        RACERS - winners,
        nodes.join(" and ")
    )
}

#[test]
fn eight_workspaces_racing_through_the_sqlite_ledger_never_over_commit() {
    for round in 0..env_count("HYBRID_STRESS_RACE_ROUNDS", 1) {
        println!("{}", race("sqlite", None, round));
    }
}

#[test]
fn eight_workspaces_racing_through_redis_never_over_commit() {
    let redis = RedisServer::start();
    for round in 0..env_count("HYBRID_STRESS_RACE_ROUNDS", 1) {
        println!("{}", race("redis", Some(&redis.url()), round));
    }
}

/// A small deterministic generator, so a failing run can be replayed from its seed.
struct Lcg(u64);

impl Lcg {
    fn next_below(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound.max(1)
    }
}

/// The instances [`CRASH_CONFIG`] makes in the sim cloud.
const CRASH_WORKLOADS: usize = 7;

const CRASH_CONFIG: &str = r#"
provider "hybrid" {}

resource "hybrid_edge_cluster" "site" {
  name              = "crash-site"
  geographic_region = "eu-central"
  location {
    lat = 48.14
    lng = 11.58
  }
}

resource "hybrid_edge_node" "n1" {
  cluster_id   = hybrid_edge_cluster.site.id
  name         = "n1"
  node_type    = "compute"
  capabilities = ["real_time_processing"]
  hardware_specs {
    cpu_cores  = 8
    memory_gb  = 32
    storage_gb = 100
  }
  resource_limits {
    cpu       = 6
    memory_gb = 16
  }
}

resource "hybrid_workload" "edge" {
  count               = 3
  name                = "crash-edge-${count.index}"
  cpu                 = 2
  memory_gb           = 1
  preferred_providers = ["edge"]
  edge_cluster_ids    = [hybrid_edge_cluster.site.id]
  depends_on          = [hybrid_edge_node.n1]
}

resource "hybrid_workload" "cloud" {
  count     = 4
  name      = "crash-cloud-${count.index}"
  cpu       = 2
  memory_gb = 4
}
"#;

/// Kills the provider at a random point of each apply, then checks that a plain apply
/// converges with no duplicate, no orphan and no leaked reservation.
#[test]
fn killing_the_provider_mid_apply_never_duplicates_orphans_or_leaks() {
    let runs = env_count("HYBRID_STRESS_CRASH_RUNS", 4);
    let ws = Workspace::new("crash")
        // Throttling makes creates take a while (retries with backoff), so kills land inside
        // creates, between a create and its state write, and between resources.
        .env(
            "HYBRID_SIM_FAULTS",
            "create:throttle=0.5,create:lost_response=0.2,delete:throttle=0.4",
        );
    ws.config(CRASH_CONFIG);
    let mut rng = Lcg(0x5eed_0000_0000_0001);
    let (mut killed, mut finished_first, mut killed_mid_way) = (0, 0, 0);
    let mut worst_converge = Duration::ZERO;
    for run in 0..runs {
        // Alternate between building up from nothing and tearing down, so kills land in
        // creates and in deletes.
        let destroying = run % 2 == 1;
        let before = ws.sim_instances().len();
        let mut child = start_round(&ws, destroying);
        // Kill after a random number of the round's creates (or deletes) have reached the sim
        // cloud, plus up to 0.4 s, so that kills land inside the provider's work rather than
        // between its processes: a fixed delay missed the fast provider in two runs of five.
        let steps = usize::try_from(rng.next_below(CRASH_WORKLOADS as u64 + 1)).unwrap_or(0);
        let extra = Duration::from_millis(rng.next_below(400));
        let progress = |ws: &Workspace| {
            let now = ws.sim_instances().len();
            if destroying {
                before.saturating_sub(now)
            } else {
                now.saturating_sub(before)
            }
        };
        let started = Instant::now();
        while child.try_wait().ok().flatten().is_none()
            && progress(&ws) < steps
            && started.elapsed() < Duration::from_secs(60)
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        let waited = Instant::now();
        while child.try_wait().ok().flatten().is_none() && waited.elapsed() < extra {
            std::thread::sleep(Duration::from_millis(10));
        }
        // Kill the provider running now, or the next one Terraform starts within a second.
        let mut did_kill = false;
        let looked = Instant::now();
        while !did_kill
            && child.try_wait().ok().flatten().is_none()
            && looked.elapsed() < Duration::from_secs(1)
        {
            for pid in provider_descendants(child.id()) {
                kill_provider(pid);
                did_kill = true;
            }
            if !did_kill {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        let done_at_kill = progress(&ws);
        let out = child.wait_with_output().expect("terraform finished");
        if did_kill {
            killed += 1;
            if done_at_kill > 0 && done_at_kill < CRASH_WORKLOADS {
                killed_mid_way += 1;
            }
        } else {
            finished_first += 1;
            println!(
                "crash run {run}: no provider process after {steps} {} and {:.2} s (done)",
                if destroying { "deletes" } else { "creates" },
                extra.as_secs_f64()
            );
        }
        let text = combined(&out);
        assert!(
            did_kill || out.status.success(),
            "run {run} failed without a kill:\n{text}"
        );

        // The next plain command converges.
        let converge = Instant::now();
        if destroying {
            // -refresh=false: Terraform 1.0's destroy plans the whole configuration first, and
            // edge workloads the killed destroy already removed cannot be planned again once
            // their node is gone too (README, "Destroy on Terraform 1.0").
            ws.run(&["destroy", "-input=false", "-auto-approve", "-refresh=false"]);
        } else {
            ws.apply();
            ws.expect_empty_plan();
        }
        worst_converge = worst_converge.max(converge.elapsed());
        check_truth(&ws, if destroying { 0 } else { CRASH_WORKLOADS }, run);
    }
    ws.destroy();
    check_truth(&ws, 0, runs);
    println!(
        "crash: {runs} runs, provider killed with SIGKILL in {killed}, {killed_mid_way} of them with some but not all of the round's creates or deletes done (no provider process left to kill in {finished_first}); every next apply converged (slowest {:.1} s); duplicates 0, orphans 0, leaked reservations 0",
        worst_converge.as_secs_f64()
    );
}

/// The crash test on the EC2 driver: moto behind our client-token front, and the fault proxy
/// in front of that for the killed commands (20% throttling makes creates retry with backoff,
/// so kills land inside creates; lost responses leave instances the provider never heard of).
/// After each kill a plain command against the front (no faults) converges, and then the
/// instances tagged as ours in moto are exactly the ones in state: no duplicate, no orphan,
/// and the re-plan is empty.
#[cfg(feature = "aws")]
#[test]
fn killing_the_provider_mid_apply_on_moto_never_duplicates_or_orphans() {
    use crate::aws::{config_with, duplicates_and_orphans, workspace, REGION};
    use crate::moto::{FaultProxy, FaultRates, Moto};
    use std::sync::atomic::Ordering;

    const WORKLOADS: usize = 4;
    let runs = env_count("HYBRID_STRESS_CRASH_RUNS", 3);
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto,
        FaultRates {
            throttle: 0.2,
            server_error: 0.03,
            lost_response: 0.03,
            ..FaultRates::default()
        },
        0xC2A5_4001,
    );
    // A fixed image: the default-image lookup (DescribeImages, slow in moto) would repeat in
    // every provider process the test kills.
    let image = format!(
        "    default_image_id = \"{}\"\n",
        moto.amazon_image_id(REGION)
    );
    let faulty = config_with(&proxy.url(), &image, WORKLOADS, "crash", true);
    let clean = config_with(&moto.url(), &image, WORKLOADS, "crash", true);
    let ws = workspace("crash-moto");
    let mut rng = Lcg(0x5eed_0000_0000_00a5);
    let (mut killed, mut finished_first) = (0, 0);
    let (mut launched_before_kill, mut killed_mid_creates) = (0, 0);
    let mut worst_converge = Duration::ZERO;
    for run in 0..runs {
        let destroying = run % 2 == 1;
        ws.config(&faulty);
        let launches_before = moto.front.counts.launches.load(Ordering::SeqCst);
        let mut child = start_round(&ws, destroying);
        // Applies are killed after a random number of launches, destroys after a random number
        // of EC2 requests (the refresh's reads, then the terminations and their waits), each
        // plus up to 0.4 s, so kills land inside the provider's work rather than before its
        // first call or after its last. An apply drawn to wait for no launch is killed at a
        // random time (plugin start and plan take about a second, then calls retry through the
        // throttling).
        let (after_launches, after_requests) = if destroying {
            (0, 1 + rng.next_below(12))
        } else {
            (rng.next_below(WORKLOADS as u64), 0)
        };
        let waits_for_traffic = after_launches > 0 || after_requests > 0;
        let delay = if waits_for_traffic {
            Duration::from_millis(rng.next_below(400))
        } else {
            Duration::from_millis(300 + rng.next_below(4000))
        };
        let requests_before = proxy.counts.requests.load(Ordering::SeqCst);
        let started = Instant::now();
        let mut clock_from = started;
        while clock_from.elapsed() < delay || waits_for_traffic && clock_from == started {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            let launched = moto.front.counts.launches.load(Ordering::SeqCst) - launches_before;
            let requests = proxy.counts.requests.load(Ordering::SeqCst) - requests_before;
            let waited_enough = started.elapsed() > Duration::from_secs(60);
            let reached = (after_launches > 0 && launched >= after_launches)
                || (after_requests > 0 && requests >= after_requests);
            if waits_for_traffic && clock_from == started && (reached || waited_enough) {
                // (Retries through the throttling can take long: then kill where it is.)
                clock_from = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut did_kill = false;
        if child.try_wait().ok().flatten().is_none() {
            for pid in provider_descendants(child.id()) {
                kill_provider(pid);
                did_kill = true;
            }
        }
        let out = child.wait_with_output().expect("terraform finished");
        let text = combined(&out);
        let launched = moto.front.counts.launches.load(Ordering::SeqCst) - launches_before;
        if did_kill {
            killed += 1;
            launched_before_kill += launched;
            if !destroying && launched > 0 && launched < WORKLOADS as u64 {
                killed_mid_creates += 1;
            }
        } else {
            finished_first += 1;
            println!(
                "moto crash run {run}: no provider process {:.2} s after {after_launches} launches or {after_requests} requests (between plugin starts, or done)",
                delay.as_secs_f64()
            );
            // Terraform reports our SIGKILL as a plugin crash; without one there is none.
            assert_no_crash(&text);
        }
        assert!(
            did_kill || out.status.success(),
            "moto crash run {run} failed without a kill:\n{text}"
        );

        // The next plain command, without faults, converges.
        ws.config(&clean);
        let converge = Instant::now();
        if destroying {
            ws.destroy();
        } else {
            ws.apply();
            ws.expect_empty_plan();
        }
        worst_converge = worst_converge.max(converge.elapsed());
        let in_state = ws.instance_ids();
        let (duplicates, orphans) = duplicates_and_orphans(&moto, &in_state);
        let expected = if destroying { 0 } else { WORKLOADS };
        assert_eq!(
            (in_state.len(), duplicates, orphans),
            (expected, 0, 0),
            "moto crash run {run}: (instances in state, duplicates, orphans); tagged in moto: {:?}",
            moto.managed_instances(REGION)
        );
        assert_eq!(
            moto.managed_instances(REGION).len(),
            expected,
            "run {run}: tagged instances in moto vs state"
        );
    }
    ws.destroy();
    assert_eq!(moto.live_instance_count(REGION), 0, "nothing left in moto");
    println!(
        "moto crash: {runs} runs of {WORKLOADS} EC2 workloads, provider killed with SIGKILL in {killed} (no provider process running at the kill time in {finished_first}); {launched_before_kill} instances launched by killed commands, {killed_mid_creates} applies killed between their first and last launch; every next command converged (slowest {:.1} s); tagged instances in moto = instances in state after each, duplicates 0, orphans 0; killed commands' traffic: {}; {}",
        worst_converge.as_secs_f64(),
        proxy.counts.summary(),
        moto.front.summary(),
    );
}

/// State, sim cloud and ledger agree: `expected` workloads, each exactly once.
/// Starts one crash-test round's `terraform apply` (or `destroy`), output captured.
fn start_round(ws: &Workspace, destroying: bool) -> std::process::Child {
    let verb = if destroying { "destroy" } else { "apply" };
    ws.command(&[verb, "-no-color", "-input=false", "-auto-approve"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start terraform")
}

fn check_truth(ws: &Workspace, expected: usize, run: usize) {
    let live = ws.sim_instances();
    let mut by_workload: BTreeMap<String, usize> = BTreeMap::new();
    for inst in &live {
        *by_workload.entry(inst.workload_id.clone()).or_default() += 1;
    }
    let duplicates: Vec<_> = by_workload.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        duplicates.is_empty(),
        "run {run}: duplicates {duplicates:?}"
    );

    let state_ids: BTreeSet<String> = if expected == 0 {
        BTreeSet::new()
    } else {
        let show = ws.show_json();
        let mut ids = BTreeSet::new();
        if let Some(resources) = show["values"]["root_module"]["resources"].as_array() {
            for r in resources {
                if r["type"] == "hybrid_workload" {
                    if let Some(id) = r["values"]["id"].as_str() {
                        ids.insert(id.to_string());
                    }
                }
            }
        }
        ids
    };
    let live_ids: BTreeSet<String> = by_workload.keys().cloned().collect();
    assert_eq!(state_ids.len(), expected, "run {run}: workloads in state");
    assert_eq!(
        live_ids, state_ids,
        "run {run}: live instances vs state (orphans or lost resources)"
    );

    let ledger = ledger::open(&ws.state_db.to_string_lossy()).expect("open ledger");
    let mut booked = BTreeSet::new();
    for node in ledger.nodes().expect("nodes") {
        for r in ledger.list(Some(&node)).expect("list") {
            assert!(
                booked.insert(r.holder.as_str().to_string()),
                "run {run}: {} holds two reservations on {node}",
                r.holder
            );
            assert_eq!(
                r.state,
                ledger::ReservationState::Committed,
                "run {run}: a pending lease survived a converged apply: {r:?}"
            );
        }
    }
    let edge_ids: BTreeSet<String> = live
        .iter()
        .filter(|i| i.provider == "edge")
        .map(|i| i.workload_id.clone())
        .collect();
    assert_eq!(
        booked, edge_ids,
        "run {run}: reservations vs edge workloads"
    );
}

/// Ctrl-C during an apply whose creates keep being throttled: Terraform asks the provider to
/// stop, the retry loops end at once with a diagnostic (not after the create timeout), nothing is
/// left half-made, and the next apply converges.
#[test]
fn stopping_an_apply_cancels_retrying_creates_and_the_next_apply_converges() {
    let mut ws = Workspace::new("stop-apply").env("HYBRID_SIM_FAULTS", "create:throttle=1");
    ws.config(
        r#"
provider "hybrid" {}

resource "hybrid_workload" "w" {
  count     = 3
  name      = "stop-${count.index}"
  cpu       = 2
  memory_gb = 4
}
"#,
    );
    let child = ws
        .command(&["apply", "-no-color", "-input=false", "-auto-approve"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start terraform apply");
    // Wait until the creates are retrying inside the provider.
    let deadline = Instant::now() + Duration::from_secs(60);
    while provider_descendants(child.id()).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(3));
    // What Ctrl-C does (SIGTERM: a background test process may have SIGINT ignored).
    let stopped_at = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let out = child.wait_with_output().expect("terraform exits");
    let took = stopped_at.elapsed();
    let text = combined(&out);
    assert!(!out.status.success(), "{text}");
    assert_no_crash(&text);
    assert!(
        text.contains("Terraform asked the provider to stop"),
        "the creates must end as cancelled:\n{text}"
    );
    assert!(
        took < Duration::from_secs(30),
        "stopping took {took:?}, not bounded by the retries"
    );
    assert!(ws.sim_instances().is_empty(), "nothing was created");

    ws.remove_env("HYBRID_SIM_FAULTS");
    ws.apply();
    let live = ws.sim_instances();
    assert_eq!(live.len(), 3, "{live:?}");
    ws.expect_empty_plan();
    ws.destroy();
    assert!(ws.sim_instances().is_empty());
    println!(
        "stop: terraform ended {:.1} s after the signal, creates cancelled, next apply converged",
        took.as_secs_f64()
    );
}
