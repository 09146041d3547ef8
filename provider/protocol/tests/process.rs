//! Runs the `tiny_provider` example as a real process to check what only a
//! process can show: the environment checks of `serve`, the stdout handshake
//! line, SIGINT being ignored and SIGTERM ending the plugin cleanly.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const COOKIE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";

/// `cargo test`/`nextest` build examples next to the test binaries.
fn example_provider() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("examples")
        .join("tiny_provider")
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_with_timeout(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn refuses_to_run_without_terraform() {
    let out = Command::new(example_provider())
        .env_remove("TF_PLUGIN_MAGIC_COOKIE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Terraform provider plugin"), "{stderr}");
    assert!(!stderr.to_lowercase().contains("panic"), "{stderr}");
}

#[test]
fn refuses_protocol_5_only() {
    let out = Command::new(example_provider())
        .env("TF_PLUGIN_MAGIC_COOKIE", COOKIE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "5")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("protocol 6"));
}

#[test]
fn handshake_then_sigint_ignored_then_sigterm_exits_cleanly() {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512).unwrap();
    let client = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let sockets = tempfile::tempdir().unwrap();
    let mut child = Command::new(example_provider())
        .env("TF_PLUGIN_MAGIC_COOKIE", COOKIE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "5,6")
        .env("PLUGIN_CLIENT_CERT", client.pem())
        .env("PLUGIN_UNIX_SOCKET_DIR", sockets.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let fields: Vec<&str> = line.trim_end().split('|').collect();
    assert_eq!(fields.len(), 6, "{line}");
    // As go-plugin's own servers on Unix: a socket under PLUGIN_UNIX_SOCKET_DIR.
    assert_eq!(&fields[..3], &["1", "6", "unix"]);
    assert!(fields[3].starts_with(&sockets.path().display().to_string()));
    assert!(std::path::Path::new(fields[3]).exists());
    assert_eq!(fields[4], "grpc");
    assert!(fields[5].len() > 50 && !fields[5].contains('='));

    signal(&child, "INT");
    assert!(
        wait_with_timeout(&mut child, Duration::from_millis(500)).is_none(),
        "SIGINT must not stop the plugin"
    );
    signal(&child, "TERM");
    let status = wait_with_timeout(&mut child, Duration::from_secs(5));
    if status.is_none() {
        let _ = child.kill();
    }
    assert!(status.expect("exited after SIGTERM").success());
    assert!(
        !std::path::Path::new(fields[3]).exists(),
        "the socket is removed on a clean exit"
    );
}
