//! Test support for the aws driver: a moto EC2 server started on a free port for one test, a
//! fault-injecting HTTP proxy of our own in front of it, and a plain EC2 query client that
//! checks what exists in moto without going through the driver under test. The gcp tests put
//! the same proxy in front of their local Compute Engine server ([`Dialect::Gce`]), the azure
//! tests in front of their ARM server (EC2-shaped injected answers, which an ARM client reads as
//! a throttle or server error by status).
//!
//! None of this is in the provider binary.

#![allow(dead_code)]

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

/// A moto server on 127.0.0.1, stopped when dropped.
pub struct Moto {
    child: Child,
    pub port: u16,
    pub rt: tokio::runtime::Runtime,
    client: HttpClient,
}

impl Moto {
    pub fn start() -> Moto {
        let bin = repo_root().join(".tools/bin/moto_server");
        assert!(
            bin.exists(),
            "aws acceptance tests need moto at {} — run `make tools` (or `bash scripts/install-tools.sh`)",
            bin.display()
        );
        let port = free_port();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION", "1")
            .env("MOTO_ENABLE_AMI_VALIDATION", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let client = Client::builder(TokioExecutor::new()).build_http();
        let moto = Moto {
            child,
            port,
            rt,
            client,
        };
        let started = Instant::now();
        while moto.try_get("/moto-api/").is_none() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "moto_server did not answer on port {port} within 60 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        moto
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn try_get(&self, path: &str) -> Option<String> {
        let uri: hyper::Uri = format!("{}{path}", self.url()).parse().ok()?;
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
        let req = Request::post(self.url())
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
}

impl FaultCounts {
    pub fn injected(&self) -> u64 {
        self.throttled.load(Ordering::SeqCst)
            + self.server_errors.load(Ordering::SeqCst)
            + self.lost_responses.load(Ordering::SeqCst)
    }
}

/// Fault rates in [0, 1] per EC2 request; their sum is the share of requests that fail.
#[derive(Clone, Copy, Debug)]
pub struct FaultRates {
    pub throttle: f64,
    pub server_error: f64,
    pub lost_response: f64,
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
/// throttling and server errors in the upstream's dialect (both before the upstream sees the
/// request), or forwards the request and then closes the connection without answering (the
/// response is lost).
pub struct FaultProxy {
    pub port: u16,
    pub counts: Arc<FaultCounts>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
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
        let task_counts = counts.clone();
        let task = rt.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let client = client.clone();
                let upstream = upstream.clone();
                let counts = task_counts.clone();
                let rng = rng.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        proxy_one(
                            req,
                            client.clone(),
                            upstream.clone(),
                            counts.clone(),
                            rng.clone(),
                            rates,
                            dialect,
                        )
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
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

async fn proxy_one(
    req: Request<hyper::body::Incoming>,
    client: HttpClient,
    upstream: String,
    counts: Arc<FaultCounts>,
    rng: Arc<AtomicU64>,
    rates: FaultRates,
    dialect: Dialect,
) -> Result<Response<Full<Bytes>>, Box<dyn std::error::Error + Send + Sync>> {
    counts.requests.fetch_add(1, Ordering::SeqCst);
    let draw = next_unit(&rng);
    if draw < rates.throttle {
        counts.throttled.fetch_add(1, Ordering::SeqCst);
        return Ok(match dialect {
            Dialect::Ec2 => ec2_error(503, "RequestLimitExceeded", "Request limit exceeded."),
            Dialect::Gce => gce_error(403, "rateLimitExceeded", "Rate Limit Exceeded"),
        });
    }
    if draw < rates.throttle + rates.server_error {
        counts.server_errors.fetch_add(1, Ordering::SeqCst);
        return Ok(match dialect {
            Dialect::Ec2 => ec2_error(500, "InternalError", "An internal error has occurred."),
            Dialect::Gce => gce_error(503, "backendError", "Backend Error"),
        });
    }
    let lose = draw < rates.throttle + rates.server_error + rates.lost_response;
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut forward = Request::builder()
        .method(parts.method.clone())
        .uri(format!("{upstream}{path}"));
    for (k, v) in parts.headers.iter() {
        if k != hyper::header::HOST {
            forward = forward.header(k, v);
        }
    }
    let resp = client.request(forward.body(Full::new(body))?).await?;
    let (rparts, rbody) = resp.into_parts();
    let rbody = rbody.collect().await?.to_bytes();
    if lose {
        // Moto has done the work; the caller never hears about it.
        counts.lost_responses.fetch_add(1, Ordering::SeqCst);
        return Err(Box::new(LostResponse));
    }
    Ok(Response::from_parts(rparts, Full::new(rbody)))
}
