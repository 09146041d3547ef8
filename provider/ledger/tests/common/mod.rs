//! Test fixtures shared by the integration tests: a throw-away SQLite file, a real
//! `redis-server` child process on a free port (killed on drop), and helpers to run this very
//! test binary as a separate worker process.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ledger::{HolderId, Ledger, NodeId, Resources};

/// Env var that turns a test-binary run into a worker process (see `child_command`).
pub const CHILD_ENV: &str = "LEDGER_TEST_CHILD";

/// A `redis-server` on 127.0.0.1 with persistence off, killed when dropped.
pub struct RedisServer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server with extra arguments (e.g. `--requirepass s3cret`).
    pub fn start_with(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut last_err = String::new();
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            let spawned = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(dir.path())
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
            let mut child = match spawned {
                Ok(c) => c,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                    "redis-server is not installed; the Redis ledger tests need a real server: \
                     run `apt-get install -y redis-server`"
                ),
                Err(e) => panic!("cannot start redis-server: {e}"),
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    last_err = format!("redis-server on port {port} exited with {status}");
                    break;
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return RedisServer {
                        child,
                        port,
                        _dir: dir,
                    };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_err = format!("redis-server on port {port} did not accept connections");
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("could not start redis-server: {last_err}");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One backend under test: where it lives and whatever keeps it alive.
pub struct Env {
    pub location: String,
    _redis: Option<RedisServer>,
    _dir: Option<tempfile::TempDir>,
}

impl Env {
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let location = dir.path().join("hybrid.db").display().to_string();
        Env {
            location,
            _redis: None,
            _dir: Some(dir),
        }
    }

    pub fn redis() -> Self {
        let server = RedisServer::start();
        Env {
            location: server.url(),
            _redis: Some(server),
            _dir: None,
        }
    }

    pub fn sqlite_path(&self) -> Option<PathBuf> {
        self._dir.as_ref().map(|d| d.path().join("hybrid.db"))
    }

    pub fn open(&self) -> Box<dyn Ledger> {
        ledger::open(&self.location).expect("open ledger")
    }
}

pub fn node(s: &str) -> NodeId {
    NodeId::new(s).unwrap()
}

pub fn holder(s: &str) -> HolderId {
    HolderId::new(s).unwrap()
}

pub fn cpu(millis: u64) -> Resources {
    Resources {
        cpu_millis: millis,
        ..Resources::ZERO
    }
}

pub fn res(
    cpu_millis: u64,
    memory_mb: u64,
    storage_gb: u64,
    gpu: u32,
    network_mbps: u64,
) -> Resources {
    Resources {
        cpu_millis,
        memory_mb,
        storage_gb,
        gpu,
        network_mbps,
    }
}

/// A command that re-runs this test binary, executing only `test_name`, as a worker process.
pub fn child_command(test_name: &str, mode: &str) -> Command {
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = Command::new(exe);
    cmd.args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, mode)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}
