//! Backend-specific behaviour the conformance suite cannot express: SQLite file permissions,
//! `open` location parsing, Redis URL redaction and authentication, and Redis reconnection.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{cpu, holder, node, RedisServer};
use ledger::{Ledger, LedgerError, RedactedUrl, RedisLedger, SqliteLedger};

#[test]
fn sqlite_file_is_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim.db");
    let l = SqliteLedger::open(&path).unwrap();
    l.set_capacity(&node("edge-1"), &cpu(1000)).unwrap();
    l.reserve(&node("edge-1"), &cpu(10), &holder("wl-a"), None)
        .unwrap();
    for p in [path.clone(), dir.path().join("sim.db-wal")] {
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", p.display());
    }
    assert_eq!(l.location(), format!("sqlite://{}", path.display()));
}

#[test]
fn sqlite_shares_file_with_other_tables() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE sim_instances (id TEXT PRIMARY KEY); INSERT INTO sim_instances VALUES ('i-1');")
            .unwrap();
    }
    let l = SqliteLedger::open(&path).unwrap();
    l.set_capacity(&node("edge-1"), &cpu(1000)).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM sim_instances", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap();
    let tables: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for t in &tables {
        assert!(t.starts_with("ledger_") || t == "sim_instances", "{t}");
    }
}

#[test]
fn open_chooses_backend_from_location() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("a.db");
    let l = ledger::open(plain.to_str().unwrap()).unwrap();
    assert!(format!("{l:?}").starts_with("SqliteLedger"));

    let url = format!("sqlite://{}", dir.path().join("b.db").display());
    let l = ledger::open(&url).unwrap();
    assert_eq!(l.location(), url);
    assert!(dir.path().join("b.db").exists());

    let server = RedisServer::start();
    let l = ledger::open(&server.url()).unwrap();
    assert!(format!("{l:?}").starts_with("RedisLedger"));
    assert_eq!(l.location(), server.url());

    let err = ledger::open("postgres://admin:hunter2@db/ledger").unwrap_err();
    assert!(matches!(err, LedgerError::UnsupportedLocation { .. }));
    let msg = err.to_string();
    assert!(!msg.contains("hunter2"), "{msg}");
    assert!(msg.contains("postgres://"), "{msg}");
    assert!(matches!(
        ledger::open("sqlite://"),
        Err(LedgerError::UnsupportedLocation { .. })
    ));
    assert!(matches!(
        ledger::open(""),
        Err(LedgerError::UnsupportedLocation { .. })
    ));
    let missing_dir = dir.path().join("no/such/dir/x.db");
    assert!(matches!(
        ledger::open(missing_dir.to_str().unwrap()),
        Err(LedgerError::Io { .. })
    ));
}

#[test]
fn redacted_url_hides_password() {
    let cases = [
        (
            "redis://:s3cret@10.0.0.5:6379/2",
            "redis://:***@10.0.0.5:6379/2",
        ),
        (
            "redis://ledger:s3cret@host:6379/0",
            "redis://ledger:***@host:6379/0",
        ),
        (
            "rediss://u:p%40ss@host:6380/1",
            "rediss://u:***@host:6380/1",
        ),
        ("redis://host:6379/0", "redis://host:6379/0"),
        ("redis://user@host:6379", "redis://user@host:6379"),
    ];
    for (raw, shown) in cases {
        let u = RedactedUrl::new(raw);
        assert_eq!(u.to_string(), shown);
        assert_eq!(format!("{u:?}"), format!("RedactedUrl({shown})"));
        assert_eq!(u.expose(), raw);
    }
    let garbled = RedactedUrl::new("redis://:pw@[not-a-host");
    assert!(!garbled.to_string().contains("pw"), "{garbled}");
}

#[test]
fn redis_password_from_url_and_never_shown() {
    let server = RedisServer::start_with(&["--requirepass", "s3cret-pw"]);
    let good = format!("redis://:s3cret-pw@127.0.0.1:{}/3", server.port());
    let l = RedisLedger::open(&good).unwrap();
    l.set_capacity(&node("edge-1"), &cpu(1000)).unwrap();
    l.reserve(&node("edge-1"), &cpu(400), &holder("wl-a"), None)
        .unwrap();
    assert_eq!(l.free(&node("edge-1")).unwrap(), cpu(600));
    assert!(!l.location().contains("s3cret-pw"));
    assert!(!format!("{l:?}").contains("s3cret-pw"));
    assert!(l.location().contains(":***@"));

    let bad = format!("redis://:wrong-pw@127.0.0.1:{}/3", server.port());
    let err = RedisLedger::open(&bad).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, LedgerError::Redis { .. }), "{msg}");
    assert!(!msg.contains("wrong-pw"), "{msg}");

    let none = format!("redis://127.0.0.1:{}/3", server.port());
    assert!(RedisLedger::open(&none).is_err());
}

#[test]
fn redis_unreachable_fails_fast() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = std::time::Instant::now();
    let err = ledger::open(&format!("redis://:pw@127.0.0.1:{port}/0")).unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert!(matches!(err, LedgerError::Redis { .. }));
    assert!(!err.to_string().contains(":pw@"), "{err}");
}

#[test]
fn redis_survives_script_flush_and_dropped_connection() {
    let server = RedisServer::start();
    let l = RedisLedger::open(&server.url()).unwrap();
    l.set_capacity(&node("edge-1"), &cpu(1000)).unwrap();
    let client = redis::Client::open(server.url()).unwrap();
    let mut admin = client.get_connection().unwrap();
    // A restarted server has no cached scripts: EVALSHA falls back to EVAL.
    redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query::<()>(&mut admin)
        .unwrap();
    l.reserve(&node("edge-1"), &cpu(100), &holder("wl-a"), None)
        .unwrap();
    // The ledger's connection is killed: the next call reconnects.
    redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .arg("SKIPME")
        .arg("yes")
        .query::<i64>(&mut admin)
        .unwrap();
    assert_eq!(l.free(&node("edge-1")).unwrap(), cpu(900));
    // Keys live under the documented prefix, and pending ones carry a TTL.
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut admin).unwrap();
    assert!(
        keys.iter().all(|k| k.starts_with("hybrid:ledger:")),
        "{keys:?}"
    );
    let id = l.list(None).unwrap()[0].id.clone();
    let ttl: i64 = redis::cmd("PTTL")
        .arg(format!("hybrid:ledger:rsv:{id}"))
        .query(&mut admin)
        .unwrap();
    assert!(ttl > 0, "pending reservation has a TTL");
    l.commit(&id).unwrap();
    let ttl: i64 = redis::cmd("PTTL")
        .arg(format!("hybrid:ledger:rsv:{id}"))
        .query(&mut admin)
        .unwrap();
    assert_eq!(ttl, -1, "committed reservation has no TTL");
}

/// Writes a CA and a server certificate for 127.0.0.1 with the openssl CLI.
fn make_certs(dir: &std::path::Path) {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap_or_else(|e| {
                panic!("openssl CLI is needed for the TLS test: apt-get install -y openssl ({e})")
            });
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "1",
        "-subj",
        "/CN=ledger-test-ca",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "srv.key",
        "-out",
        "srv.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(dir.join("ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "srv.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "srv.crt",
        "-days",
        "1",
        "-extfile",
        "ext",
    ]);
}

#[test]
fn rediss_tls_with_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    let tls_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let path = |f: &str| dir.path().join(f).display().to_string();
    let (cert, key, ca) = (path("srv.crt"), path("srv.key"), path("ca.crt"));
    let _server = RedisServer::start_with(&[
        "--tls-port",
        &tls_port,
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-ca-cert-file",
        &ca,
        "--tls-auth-clients",
        "no",
    ]);
    // rustls-native-certs reads SSL_CERT_FILE; this test runs alone in its process (nextest).
    std::env::set_var("SSL_CERT_FILE", &ca);
    let l = ledger::open(&format!("rediss://127.0.0.1:{tls_port}/0")).unwrap();
    l.set_capacity(&node("edge-tls"), &cpu(1000)).unwrap();
    let r = l
        .reserve(&node("edge-tls"), &cpu(250), &holder("wl-tls"), None)
        .unwrap();
    l.commit(&r.id).unwrap();
    assert_eq!(l.free(&node("edge-tls")).unwrap(), cpu(750));
}
