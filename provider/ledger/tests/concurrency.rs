//! Concurrency and crash tests against both backends: many threads and many separate processes
//! (this test binary re-run as workers) hammer one node and must never overbook it, and a holder
//! killed with SIGKILL must not leak its pending reservation past the lease.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::{child_command, cpu, holder, node, now_ms, Env, CHILD_ENV};
use ledger::{Ledger, LedgerError, ReservationState, Resources};

const REQUEST_MILLIS: u64 = 300;
/// floor(3200 / 300) = 10 reservations fit.
const CAPACITY_MILLIS: u64 = 3200;
const EXPECTED: usize = (CAPACITY_MILLIS / REQUEST_MILLIS) as usize;

/// One worker's attempts: reserve with fresh holders, commit what succeeded.
/// Returns the number of successes.
fn hammer(l: &dyn Ledger, tag: &str, attempts: usize) -> usize {
    let n = node("edge-hot");
    let mut ok = 0;
    for i in 0..attempts {
        let h = holder(&format!("wl-{tag}-{i}"));
        match l.reserve(&n, &cpu(REQUEST_MILLIS), &h, None) {
            Ok(r) => {
                l.commit(&r.id).unwrap();
                ok += 1;
            }
            Err(LedgerError::InsufficientCapacity(_)) => {}
            Err(e) => panic!("worker {tag}: unexpected error {e}"),
        }
    }
    ok
}

fn check_final(l: &dyn Ledger, successes: usize) {
    let n = node("edge-hot");
    let listed = l.list(Some(&n)).unwrap();
    let total = Resources::sum(listed.iter().map(|r| &r.amounts));
    assert!(
        total.cpu_millis <= CAPACITY_MILLIS,
        "overbooked: {} of {CAPACITY_MILLIS}",
        total.cpu_millis
    );
    assert_eq!(successes, EXPECTED, "successes");
    assert_eq!(listed.len(), EXPECTED, "reservations listed");
    assert!(listed
        .iter()
        .all(|r| r.state == ReservationState::Committed));
    assert_eq!(
        l.free(&n).unwrap().cpu_millis,
        CAPACITY_MILLIS - EXPECTED as u64 * REQUEST_MILLIS
    );
}

fn setup(env: &Env) -> Box<dyn Ledger> {
    let l = env.open();
    l.set_capacity(&node("edge-hot"), &cpu(CAPACITY_MILLIS))
        .unwrap();
    l
}

fn threads(env: &Env) {
    let l = setup(env);
    const THREADS: usize = 8;
    let barrier = Arc::new(Barrier::new(THREADS));
    let shared: Arc<dyn Ledger> = Arc::from(env.open());
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let barrier = barrier.clone();
            let shared = shared.clone();
            let location = env.location.clone();
            std::thread::spawn(move || {
                // Half the threads share one handle, half open their own connection.
                let own = (t % 2 == 0).then(|| ledger::open(&location).unwrap());
                barrier.wait();
                match &own {
                    Some(l) => hammer(l.as_ref(), &format!("t{t}"), 3),
                    None => hammer(shared.as_ref(), &format!("t{t}"), 3),
                }
            })
        })
        .collect();
    let successes: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    check_final(l.as_ref(), successes);
}

fn processes(env: &Env) {
    let l = setup(env);
    const PROCS: usize = 6;
    let start_at = now_ms() + 1500;
    let children: Vec<_> = (0..PROCS)
        .map(|p| {
            child_command("child_worker", "hammer")
                .env("LEDGER_LOCATION", &env.location)
                .env("LEDGER_TAG", format!("p{p}"))
                .env("LEDGER_START_AT_MS", start_at.to_string())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut successes = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "worker failed: {}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let line = stdout
            .lines()
            .find_map(|l| l.split_once("LEDGER_SUCCESSES ").map(|(_, rest)| rest))
            .unwrap_or_else(|| panic!("worker printed no result:\n{stdout}"));
        successes += line.trim().parse::<usize>().unwrap();
    }
    check_final(l.as_ref(), successes);
}

fn killed_holder(env: &Env) {
    let l = env.open();
    let n = node("edge-crash");
    l.set_capacity(&n, &cpu(1000)).unwrap();
    let lease = Duration::from_millis(3000);
    let mut child = child_command("child_worker", "hold")
        .env("LEDGER_LOCATION", &env.location)
        .env("LEDGER_LEASE_MS", lease.as_millis().to_string())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut id = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some((_, rest)) = line.split_once("LEDGER_RESERVED ") {
            id = Some(rest.trim().to_string());
            break;
        }
    }
    let reserved_at = Instant::now();
    let id = id.expect("child did not reserve");
    // SIGKILL: no destructor, no release.
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success());

    let listed = l.list(Some(&n)).unwrap();
    assert!(
        reserved_at.elapsed() < lease - Duration::from_millis(1000),
        "machine too slow to observe the lease before it expires"
    );
    assert_eq!(listed.len(), 1, "the dead holder's lease still counts");
    assert_eq!(listed[0].id.as_str(), id);
    assert_eq!(listed[0].state, ReservationState::Pending);
    assert_eq!(l.free(&n).unwrap(), Resources::ZERO);
    assert!(matches!(
        l.reserve(&n, &cpu(1000), &holder("wl-next"), None),
        Err(LedgerError::InsufficientCapacity(_))
    ));
    std::thread::sleep(lease.saturating_sub(reserved_at.elapsed()) + Duration::from_millis(300));
    assert_eq!(l.free(&n).unwrap(), cpu(1000), "lease must expire");
    assert!(l.list(Some(&n)).unwrap().is_empty());
    let next = l.reserve(&n, &cpu(1000), &holder("wl-next"), None).unwrap();
    l.commit(&next.id).unwrap();
}

/// Writes a line straight to the stdout handle: `println!` would be captured by the test
/// harness even with `--nocapture` on recent toolchains.
fn emit(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(format!("\n{line}\n").as_bytes()).unwrap();
    out.flush().unwrap();
}

fn first_open(location: &str) {
    // Many processes racing to create the file, switch it to WAL and create the schema.
    let start_at: u64 = std::env::var("LEDGER_START_AT_MS")
        .unwrap()
        .parse()
        .unwrap();
    std::thread::sleep(Duration::from_millis(start_at.saturating_sub(now_ms())));
    let l = ledger::open(location).unwrap();
    let tag = std::env::var("LEDGER_TAG").unwrap();
    let n = node(&format!("edge-{tag}"));
    l.set_capacity(&n, &cpu(1000)).unwrap();
    l.reserve(&n, &cpu(1000), &holder(&format!("wl-{tag}")), None)
        .unwrap();
    emit("LEDGER_OPENED");
}

/// Worker entry point: does nothing unless started by `child_command` with `LEDGER_TEST_CHILD`.
#[test]
fn child_worker() {
    let Ok(mode) = std::env::var(CHILD_ENV) else {
        return;
    };
    let location = std::env::var("LEDGER_LOCATION").unwrap();
    if mode == "first_open" {
        return first_open(&location);
    }
    let l = ledger::open(&location).unwrap();
    match mode.as_str() {
        "hammer" => {
            let tag = std::env::var("LEDGER_TAG").unwrap();
            let start_at: u64 = std::env::var("LEDGER_START_AT_MS")
                .unwrap()
                .parse()
                .unwrap();
            let wait = start_at.saturating_sub(now_ms());
            std::thread::sleep(Duration::from_millis(wait));
            let ok = hammer(l.as_ref(), &tag, 4);
            emit(&format!("LEDGER_SUCCESSES {ok}"));
        }
        "hold" => {
            let lease: u64 = std::env::var("LEDGER_LEASE_MS").unwrap().parse().unwrap();
            let r = l
                .reserve(
                    &node("edge-crash"),
                    &cpu(1000),
                    &holder("wl-doomed"),
                    Some(Duration::from_millis(lease)),
                )
                .unwrap();
            emit(&format!("LEDGER_RESERVED {}", r.id));
            // Wait to be killed (bounded, so a broken parent cannot leave it behind for long).
            std::thread::sleep(Duration::from_secs(60));
        }
        other => panic!("unknown child mode {other}"),
    }
}

#[test]
fn sqlite_fresh_file_opened_by_many_processes() {
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().join("fresh.db").display().to_string();
    const PROCS: usize = 6;
    let start_at = now_ms() + 1500;
    let children: Vec<_> = (0..PROCS)
        .map(|p| {
            child_command("child_worker", "first_open")
                .env("LEDGER_LOCATION", &location)
                .env("LEDGER_TAG", format!("p{p}"))
                .env("LEDGER_START_AT_MS", start_at.to_string())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("LEDGER_OPENED"),
            "worker failed: {}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let l = ledger::open(&location).unwrap();
    assert_eq!(l.nodes().unwrap().len(), PROCS);
    assert_eq!(l.list(None).unwrap().len(), PROCS);
}

#[test]
fn sqlite_threads() {
    threads(&Env::sqlite());
}

#[test]
fn redis_threads() {
    threads(&Env::redis());
}

#[test]
fn sqlite_processes() {
    processes(&Env::sqlite());
}

#[test]
fn redis_processes() {
    processes(&Env::redis());
}

#[test]
fn sqlite_killed_holder() {
    killed_holder(&Env::sqlite());
}

#[test]
fn redis_killed_holder() {
    killed_holder(&Env::redis());
}
