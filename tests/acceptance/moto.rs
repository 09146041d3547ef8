//! Test support for the aws driver: a moto EC2 server started on a free port for one test,
//! behind a thin front of our own that keeps EC2's RunInstances ClientToken contract (moto
//! ignores the token), a fault-injecting HTTP proxy of our own to put in front of that, and a
//! plain EC2 query client that checks what exists in moto without going through the driver
//! under test. The gcp tests put
//! the same proxy in front of their local Compute Engine server ([`Dialect::Gce`]), the azure
//! tests in front of their ARM server (EC2-shaped injected answers, which an ARM client reads as
//! a throttle or server error by status).
//!
//! None of this is in the provider binary.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::harness::repo_root;

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// A moto server on 127.0.0.1 behind a [`TokenFront`], both stopped when dropped.
pub struct Moto {
    child: Child,
    /// moto's own port (out-of-band calls go here, past the front).
    pub port: u16,
    pub rt: tokio::runtime::Runtime,
    client: HttpClient,
    /// What drivers talk to: moto with EC2's client-token behaviour.
    pub front: TokenFront,
}

impl Moto {
    pub fn start() -> Moto {
        let bin = repo_root().join(".tools/bin/moto_server");
        assert!(
            bin.exists(),
            "aws acceptance tests need moto at {} — run `make tools` (or `bash scripts/install-tools.sh`)",
            bin.display()
        );
        let started = Instant::now();
        let (child, port) = listening_moto(&bin, started);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let client = Client::builder(TokioExecutor::new()).build_http();
        let server_url = format!("http://127.0.0.1:{port}");
        let front = TokenFront::start(&rt, server_url);
        let moto = Moto {
            child,
            port,
            rt,
            client,
            front,
        };
        while moto.try_get("/moto-api/").is_none() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "moto_server did not answer on port {port} within 60 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        moto
    }

    /// The EC2 endpoint for drivers: moto behind the client-token front.
    pub fn url(&self) -> String {
        self.front.url()
    }

    /// moto itself, for calls made out of band (not by the driver under test).
    pub fn server_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn try_get(&self, path: &str) -> Option<String> {
        let uri: hyper::Uri = format!("{}{path}", self.server_url()).parse().ok()?;
        let client = self.client.clone();
        self.rt.block_on(async move {
            let resp = tokio::time::timeout(Duration::from_secs(5), client.get(uri))
                .await
                .ok()?
                .ok()?;
            let body = resp.into_body().collect().await.ok()?.to_bytes();
            Some(String::from_utf8_lossy(&body).to_string())
        })
    }

    /// One EC2 Query API call straight to moto (moto does not check signatures; the region
    /// comes from the credential scope).
    pub fn ec2(&self, region: &str, params: &[(&str, &str)]) -> String {
        let mut body = String::from("Version=2016-11-15");
        for (k, v) in params {
            body.push('&');
            body.push_str(&encode(k));
            body.push('=');
            body.push_str(&encode(v));
        }
        let req = Request::post(self.server_url())
            .header("content-type", "application/x-www-form-urlencoded")
            .header(
                "authorization",
                format!("AWS4-HMAC-SHA256 Credential=testing/20260101/{region}/ec2/aws4_request, SignedHeaders=host, Signature=0"),
            )
            .body(Full::new(Bytes::from(body)))
            .expect("request");
        let client = self.client.clone();
        self.rt.block_on(async move {
            let resp = client.request(req).await.expect("moto answers");
            let body = resp
                .into_body()
                .collect()
                .await
                .expect("moto body")
                .to_bytes();
            String::from_utf8_lossy(&body).to_string()
        })
    }

    /// Live (pending/running/stopping/stopped) instances in `region` carrying our managed-by
    /// tag, as (instance id, workload id tag), read from moto's XML.
    pub fn managed_instances(&self, region: &str) -> Vec<(String, String)> {
        let xml = self.ec2(
            region,
            &[
                ("Action", "DescribeInstances"),
                ("Filter.1.Name", "tag:hybrid:managed-by"),
                ("Filter.1.Value.1", "terraform-provider-hybrid"),
                ("Filter.2.Name", "instance-state-name"),
                ("Filter.2.Value.1", "pending"),
                ("Filter.2.Value.2", "running"),
                ("Filter.2.Value.3", "stopping"),
                ("Filter.2.Value.4", "stopped"),
            ],
        );
        instances_in(&xml)
    }

    /// The id of an Amazon-owned image moto knows in `region` (for `default_image_id`).
    pub fn amazon_image_id(&self, region: &str) -> String {
        let xml = self.ec2(
            region,
            &[("Action", "DescribeImages"), ("Owner.1", "amazon")],
        );
        between(&xml, "<imageId>", "</imageId>")
            .expect("moto knows an Amazon image")
            .to_string()
    }

    /// Every live instance in `region`, tagged or not (orphans without tags would show here).
    pub fn live_instance_count(&self, region: &str) -> usize {
        let xml = self.ec2(
            region,
            &[
                ("Action", "DescribeInstances"),
                ("Filter.1.Name", "instance-state-name"),
                ("Filter.1.Value.1", "pending"),
                ("Filter.1.Value.2", "running"),
                ("Filter.1.Value.3", "stopping"),
                ("Filter.1.Value.4", "stopped"),
            ],
        );
        instances_in(&xml).len()
    }
}

/// A moto_server listening on a port of its own. `free_port` cannot hold the port it found
/// until moto binds it, so when tests start servers side by side another process may take it
/// first; moto then exits, and this starts it again on another port (a run of CI once waited
/// 60 s for a server that was never coming). Bounded by the 60 s from `started`.
fn listening_moto(bin: &std::path::Path, started: Instant) -> (Child, u16) {
    loop {
        let port = free_port();
        let mut child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION", "1")
            .env("MOTO_ENABLE_AMI_VALIDATION", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        loop {
            if matches!(child.try_wait(), Ok(Some(_))) {
                eprintln!(
                    "moto_server exited before listening on port {port}; trying another port"
                );
                break;
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return (child, port);
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                panic!("moto_server did not listen on port {port} within 60 s");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// (instanceId, hybrid:workload-id) of each instance in a DescribeInstances answer, by plain
/// scanning. moto writes an instance's tagSet before its instanceId, so an instance's tags are
/// in the text between the previous instance's id and its own.
fn instances_in(xml: &str) -> Vec<(String, String)> {
    let parts: Vec<&str> = xml.split("<instanceId>").collect();
    let mut out = Vec::new();
    for pair in parts.windows(2) {
        let (before, from_id) = (pair[0], pair[1]);
        let id = from_id.split('<').next().unwrap_or_default().to_string();
        let workload = before
            .rsplit("<key>hybrid:workload-id</key>")
            .next()
            .filter(|_| before.contains("<key>hybrid:workload-id</key>"))
            .and_then(|rest| rest.split("<value>").nth(1))
            .and_then(|rest| rest.split('<').next())
            .unwrap_or_default()
            .to_string();
        out.push((id, workload));
    }
    out
}

/// What the proxy did, for the test's report.
#[derive(Default)]
pub struct FaultCounts {
    pub requests: AtomicU64,
    pub throttled: AtomicU64,
    pub server_errors: AtomicU64,
    pub lost_responses: AtomicU64,
    pub resets: AtomicU64,
    pub slow_responses: AtomicU64,
    /// Creates the upstream carried out whose answer was lost or came too late: each one is
    /// an instance the driver must find again rather than make twice.
    pub unanswered_creates: AtomicU64,
}

impl FaultCounts {
    pub fn injected(&self) -> u64 {
        self.throttled.load(Ordering::SeqCst)
            + self.server_errors.load(Ordering::SeqCst)
            + self.lost_responses.load(Ordering::SeqCst)
            + self.resets.load(Ordering::SeqCst)
            + self.slow_responses.load(Ordering::SeqCst)
    }

    /// One line for a test's figure: requests and each kind of fault.
    pub fn summary(&self) -> String {
        let n = |c: &AtomicU64| c.load(Ordering::SeqCst);
        format!(
            "{} requests, {} faults ({} throttled, {} server errors, {} connection resets, {} responses lost after the request was applied, {} responses held past the client's timeout; {} creates among the lost or held)",
            n(&self.requests),
            self.injected(),
            n(&self.throttled),
            n(&self.server_errors),
            n(&self.resets),
            n(&self.lost_responses),
            n(&self.slow_responses),
            n(&self.unanswered_creates),
        )
    }

    /// Asserts that every kind of fault happened at least once.
    pub fn assert_every_kind(&self) {
        for (kind, count) in [
            ("throttling", &self.throttled),
            ("server error", &self.server_errors),
            ("connection reset", &self.resets),
            ("lost response", &self.lost_responses),
            ("slow response", &self.slow_responses),
        ] {
            assert!(
                count.load(Ordering::SeqCst) > 0,
                "no {kind} was injected: {}",
                self.summary()
            );
        }
    }
}

/// Fault rates in [0, 1] per request; their sum is the share of requests that fail (chosen
/// at random), and each kind's share of the faults is its rate over that sum.
#[derive(Clone, Copy, Debug, Default)]
pub struct FaultRates {
    /// Answered with the upstream's throttling error; the upstream never sees the request.
    pub throttle: f64,
    /// Answered with a server error; the upstream never sees the request.
    pub server_error: f64,
    /// Forwarded, answered by the upstream, then the connection is closed without an answer.
    pub lost_response: f64,
    /// The connection is reset (TCP RST) before the request reaches the upstream.
    pub reset: f64,
    /// Forwarded (so it may be applied) and answered only after `slow_hold`, which a test sets
    /// past the client's per-attempt timeout.
    pub slow: f64,
    pub slow_hold: Duration,
    /// Fault only requests that make an instance (see `is_create`); others pass.
    pub only_creates: bool,
}

impl FaultRates {
    /// The share of requests that fail.
    pub fn total(&self) -> f64 {
        self.throttle + self.server_error + self.reset + self.lost_response + self.slow
    }

    fn weights(&self) -> [f64; 5] {
        [
            self.throttle,
            self.server_error,
            self.reset,
            self.lost_response,
            self.slow,
        ]
    }
}

const KIND_THROTTLE: usize = 0;
const KIND_SERVER_ERROR: usize = 1;
const KIND_RESET: usize = 2;
const KIND_LOST: usize = 3;
const KIND_SLOW: usize = 4;

/// Smooth weighted round robin over the fault kinds: each pick adds every kind's rate to its
/// credit and takes the kind with the most, which then pays the total. Kinds come in
/// proportion to their rates, evenly spread, none starved.
#[derive(Default)]
struct KindPicker {
    credit: [f64; 5],
}

impl KindPicker {
    fn next(&mut self, rates: &FaultRates) -> usize {
        let weights = rates.weights();
        let mut best = 0;
        for (k, w) in weights.iter().enumerate() {
            self.credit[k] += w;
            if self.credit[k] > self.credit[best] {
                best = k;
            }
        }
        self.credit[best] -= rates.total();
        best
    }
}

/// The per-request bound the fault runs give drivers (`request_timeout` in their provider
/// block): short, so that a response held past it costs seconds, not the default minute.
pub const FAULT_REQUEST_TIMEOUT: &str = "3s";
/// How long the proxy holds a slow response: past [`FAULT_REQUEST_TIMEOUT`].
pub const SLOW_HOLD: Duration = Duration::from_secs(5);

/// 20% of requests fail, in the five ways issue #10 names.
pub fn twenty_percent_faults() -> FaultRates {
    FaultRates {
        throttle: 0.05,
        server_error: 0.04,
        reset: 0.04,
        lost_response: 0.04,
        slow: 0.03,
        slow_hold: SLOW_HOLD,
        only_creates: false,
    }
}

/// Which API's error bodies the proxy imitates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Dialect {
    /// EC2 XML: 503 RequestLimitExceeded, 500 InternalError.
    Ec2,
    /// Compute Engine JSON: 403 rateLimitExceeded, 503 backendError.
    Gce,
}

/// An HTTP/1.1 proxy in front of moto (or another upstream) that fails a share of requests:
/// throttling and server errors in the upstream's dialect and connection resets (all before the
/// upstream sees the request), or forwards the request and then closes the connection without
/// answering (the response is lost) or answers too late for the client.
pub struct FaultProxy {
    pub port: u16,
    pub counts: Arc<FaultCounts>,
    task: tokio::task::JoinHandle<()>,
}

/// A second descriptor of an accepted socket, kept so that a reset can set SO_LINGER 0 on it
/// while hyper owns the stream: the close that follows is then a RST, not a FIN.
type ResetHandle = Arc<std::sync::Mutex<Option<std::net::TcpStream>>>;

impl FaultProxy {
    /// The proxy in front of moto's client-token front (what drivers see as EC2).
    pub fn start(moto: &Moto, rates: FaultRates, seed: u64) -> FaultProxy {
        FaultProxy::start_to(&moto.rt, moto.url(), Dialect::Ec2, rates, seed)
    }

    /// The proxy in front of any HTTP/1.1 upstream, running on `rt`.
    pub fn start_to(
        rt: &tokio::runtime::Runtime,
        upstream: String,
        dialect: Dialect,
        rates: FaultRates,
        seed: u64,
    ) -> FaultProxy {
        let counts = Arc::new(FaultCounts::default());
        let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("proxy listens");
        let port = listener.local_addr().expect("proxy address").port();
        let rng = Arc::new(AtomicU64::new(seed));
        let picker = Arc::new(std::sync::Mutex::new(KindPicker::default()));
        let task_counts = counts.clone();
        let task = rt.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let Some((stream, handle)) = with_reset_handle(stream) else {
                    continue;
                };
                let reset: ResetHandle = Arc::new(std::sync::Mutex::new(Some(handle)));
                let resetting = Arc::new(tokio::sync::Notify::new());
                let client = client.clone();
                let upstream = upstream.clone();
                let counts = task_counts.clone();
                let rng = rng.clone();
                let picker = picker.clone();
                tokio::spawn(async move {
                    let conn_resetting = resetting.clone();
                    let service = hyper::service::service_fn(move |req| {
                        proxy_one(
                            req,
                            Fault {
                                client: client.clone(),
                                upstream: upstream.clone(),
                                counts: counts.clone(),
                                rng: rng.clone(),
                                picker: picker.clone(),
                                rates,
                                dialect,
                                reset: reset.clone(),
                                resetting: conn_resetting.clone(),
                            },
                        )
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service);
                    // A reset drops the connection (and with it the socket) mid-request.
                    tokio::select! {
                        _ = conn => {}
                        _ = resetting.notified() => {}
                    }
                });
            }
        });
        FaultProxy { port, counts, task }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The stream back (for hyper) and a duplicate descriptor of its socket (for a reset).
fn with_reset_handle(
    stream: tokio::net::TcpStream,
) -> Option<(tokio::net::TcpStream, std::net::TcpStream)> {
    let std_stream = stream.into_std().ok()?;
    let handle = std_stream.try_clone().ok()?;
    let stream = tokio::net::TcpStream::from_std(std_stream).ok()?;
    Some((stream, handle))
}

fn next_unit(rng: &AtomicU64) -> f64 {
    // splitmix64 over a shared counter: reproducible for a seed, safe across connections.
    let mut z = rng
        .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::SeqCst)
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

fn gce_error(status: u16, reason: &str, message: &str) -> Response<Full<Bytes>> {
    let body = format!(
        "{{\"error\":{{\"code\":{status},\"message\":\"{message}\",\"errors\":[{{\"message\":\"{message}\",\"domain\":\"usageLimits\",\"reason\":\"{reason}\"}}]}}}}"
    );
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=UTF-8")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

fn ec2_error(status: u16, code: &str, message: &str) -> Response<Full<Bytes>> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>"
    );
    Response::builder()
        .status(status)
        .header("content-type", "text/xml")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

#[derive(Debug)]
struct LostResponse;

impl std::fmt::Display for LostResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("response dropped by the fault proxy")
    }
}

impl std::error::Error for LostResponse {}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Everything one proxied request needs.
struct Fault {
    client: HttpClient,
    upstream: String,
    counts: Arc<FaultCounts>,
    rng: Arc<AtomicU64>,
    picker: Arc<std::sync::Mutex<KindPicker>>,
    rates: FaultRates,
    dialect: Dialect,
    reset: ResetHandle,
    resetting: Arc<tokio::sync::Notify>,
}

async fn proxy_one(
    req: Request<hyper::body::Incoming>,
    f: Fault,
) -> Result<Response<Full<Bytes>>, BoxError> {
    let rates = f.rates;
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let create = is_create(&parts, &body);
    f.counts.requests.fetch_add(1, Ordering::SeqCst);
    let draw = if rates.only_creates && !create {
        1.0
    } else {
        next_unit(&f.rng)
    };
    // Whether a request fails is random (seeded); which kind of fault it gets is dealt in
    // proportion to the rates, so that every kind shows up within the first few faults.
    let kind = if draw < rates.total() {
        f.picker.lock().map(|mut p| p.next(&rates)).unwrap_or(0)
    } else {
        usize::MAX
    };
    if kind == KIND_THROTTLE {
        f.counts.throttled.fetch_add(1, Ordering::SeqCst);
        return Ok(match f.dialect {
            Dialect::Ec2 => ec2_error(503, "RequestLimitExceeded", "Request limit exceeded."),
            Dialect::Gce => gce_error(403, "rateLimitExceeded", "Rate Limit Exceeded"),
        });
    }
    if kind == KIND_SERVER_ERROR {
        f.counts.server_errors.fetch_add(1, Ordering::SeqCst);
        return Ok(match f.dialect {
            Dialect::Ec2 => ec2_error(500, "InternalError", "An internal error has occurred."),
            Dialect::Gce => gce_error(503, "backendError", "Backend Error"),
        });
    }
    if kind == KIND_RESET {
        let handle = f.reset.lock().ok().and_then(|mut h| h.take());
        if let Some(handle) = handle {
            if let Ok(socket) = tokio::net::TcpStream::from_std(handle) {
                if socket.set_zero_linger().is_ok() {
                    f.counts.resets.fetch_add(1, Ordering::SeqCst);
                    // Dropping `socket` closes only our duplicate; the connection task then
                    // drops hyper's stream, the last descriptor, and the kernel sends a RST.
                    f.resetting.notify_one();
                    std::future::pending::<()>().await;
                }
            }
        }
        // The socket could not be set up for a reset: serve the request normally.
    }
    let lose = kind == KIND_LOST;
    let slow = kind == KIND_SLOW;
    let (rparts, rbody) = forward_bytes(&f.client, &f.upstream, &parts, body).await?;
    if (lose || slow) && create {
        f.counts.unanswered_creates.fetch_add(1, Ordering::SeqCst);
    }
    if lose {
        // The upstream has done the work; the caller never hears about it.
        f.counts.lost_responses.fetch_add(1, Ordering::SeqCst);
        return Err(Box::new(LostResponse));
    }
    if slow {
        f.counts.slow_responses.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(rates.slow_hold).await;
    }
    Ok(Response::from_parts(rparts, Full::new(rbody)))
}

/// Whether a request makes an instance: EC2 RunInstances, a Compute Engine instances insert,
/// an ARM virtual machine PUT.
fn is_create(parts: &hyper::http::request::Parts, body: &[u8]) -> bool {
    let path = parts.uri.path();
    (parts.method == hyper::Method::POST
        && (path.ends_with("/instances")
            || String::from_utf8_lossy(body).contains("Action=RunInstances")))
        || (parts.method == hyper::Method::PUT && path.contains("/virtualMachines/"))
}

/// Sends `req` to `upstream` and reads the whole answer.
async fn forward(
    client: &HttpClient,
    upstream: &str,
    req: Request<hyper::body::Incoming>,
) -> Result<(hyper::http::response::Parts, Bytes), BoxError> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    forward_bytes(client, upstream, &parts, body).await
}

async fn forward_bytes(
    client: &HttpClient,
    upstream: &str,
    parts: &hyper::http::request::Parts,
    body: Bytes,
) -> Result<(hyper::http::response::Parts, Bytes), BoxError> {
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut forward = Request::builder()
        .method(parts.method.clone())
        .uri(format!("{upstream}{path}"));
    for (k, v) in parts.headers.iter() {
        if k != hyper::header::HOST && k != hyper::header::CONTENT_LENGTH {
            forward = forward.header(k, v);
        }
    }
    let resp = client.request(forward.body(Full::new(body))?).await?;
    let (rparts, rbody) = resp.into_parts();
    Ok((rparts, rbody.collect().await?.to_bytes()))
}

/// What the client-token front did, for the test's report.
#[derive(Default)]
pub struct TokenCounts {
    /// RunInstances with a token not seen before (moto launched).
    pub launches: AtomicU64,
    /// RunInstances with a known token and the same parameters: the first answer replayed.
    pub replays: AtomicU64,
    /// RunInstances with a known token and other parameters: IdempotentParameterMismatch.
    pub mismatches: AtomicU64,
}

/// The first answer to a client token, and what it was asked with.
struct Remembered {
    /// The request's parameters except the token, sorted.
    params: Vec<(String, String)>,
    instance_id: String,
    content_type: Option<hyper::header::HeaderValue>,
    body: Bytes,
}

/// Tokens by (region, ClientToken).
type TokenBook = Arc<tokio::sync::Mutex<HashMap<(String, String), Remembered>>>;

/// A front for moto that keeps EC2's ClientToken contract for RunInstances, which moto
/// ignores: the first request with a token launches; a later one with the same token and
/// parameters gets the first answer again, with the instance's state as it is now (a
/// terminated instance stays terminated); the same token with other parameters gets 400
/// IdempotentParameterMismatch. DescribeInstances' `client-token` filter (also missing in moto)
/// is answered from the same book. Tokens are kept for the life of the front (EC2: at least
/// 24 hours after the instance terminated).
pub struct TokenFront {
    pub port: u16,
    pub counts: Arc<TokenCounts>,
    task: tokio::task::JoinHandle<()>,
}

impl TokenFront {
    pub fn start(rt: &tokio::runtime::Runtime, upstream: String) -> TokenFront {
        let counts = Arc::new(TokenCounts::default());
        let book: TokenBook = Arc::default();
        let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("token front listens");
        let port = listener.local_addr().expect("front address").port();
        let task_counts = counts.clone();
        let task = rt.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (client, upstream, counts, book) = (
                    client.clone(),
                    upstream.clone(),
                    task_counts.clone(),
                    book.clone(),
                );
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        front_one(
                            req,
                            client.clone(),
                            upstream.clone(),
                            counts.clone(),
                            book.clone(),
                        )
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        TokenFront { port, counts, task }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn summary(&self) -> String {
        let n = |c: &AtomicU64| c.load(Ordering::SeqCst);
        format!(
            "client tokens: {} launches, {} replays, {} parameter mismatches",
            n(&self.counts.launches),
            n(&self.counts.replays),
            n(&self.counts.mismatches)
        )
    }
}

impl Drop for TokenFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn front_one(
    req: Request<hyper::body::Incoming>,
    client: HttpClient,
    upstream: String,
    counts: Arc<TokenCounts>,
    book: TokenBook,
) -> Result<Response<Full<Bytes>>, BoxError> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let pairs = form_pairs(&body);
    let region = credential_region(&parts.headers);
    let param = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let action = param("Action").unwrap_or_default();
    if action == "RunInstances" {
        if let Some(token) = param("ClientToken").filter(|t| !t.is_empty()) {
            return run_instances_once(
                &client, &upstream, &counts, &book, &parts, &pairs, region, token,
            )
            .await;
        }
    }
    let body = if action == "DescribeInstances" {
        with_client_token_filters_resolved(&pairs, &region, &book)
            .await
            .map(Bytes::from)
            .unwrap_or(body)
    } else {
        body
    };
    let (rparts, rbody) = forward_bytes(&client, &upstream, &parts, body).await?;
    Ok(Response::from_parts(rparts, Full::new(rbody)))
}

#[allow(clippy::too_many_arguments)]
async fn run_instances_once(
    client: &HttpClient,
    upstream: &str,
    counts: &TokenCounts,
    book: &TokenBook,
    parts: &hyper::http::request::Parts,
    pairs: &[(String, String)],
    region: String,
    token: String,
) -> Result<Response<Full<Bytes>>, BoxError> {
    let mut params: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| k != "ClientToken")
        .cloned()
        .collect();
    params.sort();
    // One RunInstances at a time: two racing requests with one token launch once.
    let mut book = book.lock().await;
    if let Some(first) = book.get(&(region.clone(), token.clone())) {
        if first.params != params {
            counts.mismatches.fetch_add(1, Ordering::SeqCst);
            return Ok(ec2_error(
                400,
                "IdempotentParameterMismatch",
                "The client token you have provided is associated with a resource that was created with different parameters.",
            ));
        }
        counts.replays.fetch_add(1, Ordering::SeqCst);
        let mut body = String::from_utf8_lossy(&first.body).to_string();
        let now = instance_state(client, upstream, parts, &first.instance_id).await?;
        if let (Some(now), Some(start), Some(end)) = (
            now,
            body.find("<instanceState>"),
            body.find("</instanceState>"),
        ) {
            body.replace_range(start..end + "</instanceState>".len(), &now);
        }
        let mut resp = Response::new(Full::new(Bytes::from(body)));
        if let Some(ct) = &first.content_type {
            resp.headers_mut()
                .insert(hyper::header::CONTENT_TYPE, ct.clone());
        }
        return Ok(resp);
    }
    let body = Bytes::from(form_body(pairs));
    let (rparts, rbody) = forward_bytes(client, upstream, parts, body).await?;
    if rparts.status.is_success() {
        let text = String::from_utf8_lossy(&rbody);
        if let Some(id) = between(&text, "<instanceId>", "</instanceId>") {
            counts.launches.fetch_add(1, Ordering::SeqCst);
            book.insert(
                (region, token),
                Remembered {
                    params,
                    instance_id: id.to_string(),
                    content_type: rparts.headers.get(hyper::header::CONTENT_TYPE).cloned(),
                    body: rbody.clone(),
                },
            );
        }
    }
    Ok(Response::from_parts(rparts, Full::new(rbody)))
}

/// The `<instanceState>...</instanceState>` element moto shows for `instance_id` now.
async fn instance_state(
    client: &HttpClient,
    upstream: &str,
    parts: &hyper::http::request::Parts,
    instance_id: &str,
) -> Result<Option<String>, BoxError> {
    let body = form_body(&[
        ("Action".to_string(), "DescribeInstances".to_string()),
        ("Version".to_string(), "2016-11-15".to_string()),
        ("InstanceId.1".to_string(), instance_id.to_string()),
    ]);
    let (_, rbody) = forward_bytes(client, upstream, parts, Bytes::from(body)).await?;
    let text = String::from_utf8_lossy(&rbody);
    Ok(between(&text, "<instanceState>", "</instanceState>")
        .map(|inner| format!("<instanceState>{inner}</instanceState>")))
}

/// The DescribeInstances body with each `client-token` filter turned into an `instance-id`
/// filter on the instance the token launched (or on no instance); `None`: no such filter.
async fn with_client_token_filters_resolved(
    pairs: &[(String, String)],
    region: &str,
    book: &TokenBook,
) -> Option<String> {
    let filters: Vec<String> = pairs
        .iter()
        .filter(|(k, v)| k.starts_with("Filter.") && k.ends_with(".Name") && v == "client-token")
        .map(|(k, _)| k.trim_end_matches(".Name").to_string())
        .collect();
    if filters.is_empty() {
        return None;
    }
    let book = book.lock().await;
    let mut out = Vec::new();
    for (k, v) in pairs {
        let Some(filter) = filters.iter().find(|f| k.starts_with(&format!("{f}."))) else {
            out.push((k.clone(), v.clone()));
            continue;
        };
        if k.ends_with(".Name") {
            out.push((k.clone(), "instance-id".to_string()));
        } else {
            let id = book
                .get(&(region.to_string(), v.clone()))
                .map(|r| r.instance_id.clone())
                .unwrap_or_else(|| "i-00000000000000000".to_string());
            out.push((format!("{filter}.Value.1"), id));
        }
    }
    Some(form_body(&out))
}

/// The region of a SigV4 request's credential scope (`Credential=KEY/DATE/REGION/ec2/...`).
fn credential_region(headers: &hyper::HeaderMap) -> String {
    headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|auth| auth.split("Credential=").nth(1))
        .and_then(|scope| scope.split('/').nth(2))
        .unwrap_or_default()
        .to_string()
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let len = text[start..].find(close)?;
    Some(&text[start..start + len])
}

/// An x-www-form-urlencoded body's pairs, decoded.
fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn form_body(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}
