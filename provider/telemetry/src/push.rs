//! The Pushgateway's HTTP API, the little of it we need: PUT one group of metrics.
//!
//! Plain HTTP/1.1 over hyper (already in the dependency tree through tonic), one connection per
//! push, everything under one timeout. Credentials come from the URL's user info and are sent
//! as HTTP basic auth; they never appear in [`PushTarget::redacted`] or in any error.

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

use crate::TelemetryError;

/// Where metrics go: a Pushgateway base URL (a path prefix is kept), without its credentials.
#[derive(Clone)]
pub struct PushTarget {
    base: url::Url,
    authorization: Option<String>,
}

impl std::fmt::Debug for PushTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushTarget")
            .field("url", &self.redacted())
            .field("basic_auth", &self.authorization.is_some())
            .finish()
    }
}

/// The group a push replaces: `job` plus labels such as the workspace. Values may hold any
/// text (they travel base64url-encoded, as the Pushgateway allows).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupingKey {
    job: String,
    labels: Vec<(String, String)>,
}

fn valid_label_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return Err("a label name starts with a letter or _".into()),
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err("a label name holds only letters, digits and _".into());
    }
    if name.starts_with("__") {
        return Err("names starting with __ are reserved".into());
    }
    Ok(())
}

impl GroupingKey {
    pub fn new(job: &str) -> Result<GroupingKey, TelemetryError> {
        if job.trim().is_empty() {
            return Err(TelemetryError::InvalidLabel {
                name: "job".into(),
                reason: "the job name must not be empty".into(),
            });
        }
        Ok(GroupingKey {
            job: job.to_string(),
            labels: Vec::new(),
        })
    }

    /// Adds (or replaces) a grouping label.
    pub fn label(mut self, name: &str, value: &str) -> Result<GroupingKey, TelemetryError> {
        valid_label_name(name).map_err(|reason| TelemetryError::InvalidLabel {
            name: name.into(),
            reason,
        })?;
        if name == "job" {
            return Err(TelemetryError::InvalidLabel {
                name: name.into(),
                reason: "job is set by the job name".into(),
            });
        }
        self.labels.retain(|(n, _)| n != name);
        self.labels.push((name.to_string(), value.to_string()));
        Ok(self)
    }

    pub fn job(&self) -> &str {
        &self.job
    }

    pub fn labels(&self) -> &[(String, String)] {
        &self.labels
    }

    /// `/metrics/job@base64/<job>/<label>@base64/<value>...`
    pub fn path(&self) -> String {
        let encode = |v: &str| {
            let text = base64::engine::general_purpose::URL_SAFE.encode(v.as_bytes());
            // The Pushgateway spells an empty value as a lone `=`.
            if text.is_empty() {
                "=".to_string()
            } else {
                text
            }
        };
        let mut path = format!("/metrics/job@base64/{}", encode(&self.job));
        for (name, value) in &self.labels {
            path.push_str(&format!("/{name}@base64/{}", encode(value)));
        }
        path
    }
}

impl PushTarget {
    /// Parses `http://[user:password@]host[:port][/prefix]`.
    pub fn parse(raw: &str) -> Result<PushTarget, TelemetryError> {
        let mut base = url::Url::parse(raw.trim()).map_err(|e| TelemetryError::InvalidUrl {
            reason: e.to_string(),
        })?;
        if base.scheme() != "http" {
            return Err(TelemetryError::UnsupportedScheme {
                scheme: base.scheme().to_string(),
            });
        }
        if base.host().is_none() {
            return Err(TelemetryError::InvalidUrl {
                reason: "it names no host".into(),
            });
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(TelemetryError::InvalidUrl {
                reason: "it must not have a query or fragment".into(),
            });
        }
        let authorization = if base.username().is_empty() && base.password().is_none() {
            None
        } else {
            let decode =
                |s: &str| percent_decode(s).map_err(|reason| TelemetryError::InvalidUrl { reason });
            let user = decode(base.username())?;
            let password = decode(base.password().unwrap_or_default())?;
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            Some(format!("Basic {token}"))
        };
        // Credentials live only in `authorization` from here on.
        let _ = base.set_username("");
        let _ = base.set_password(None);
        Ok(PushTarget {
            base,
            authorization,
        })
    }

    /// The URL without credentials, for logs and messages.
    pub fn redacted(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_string()
    }

    /// Whether pushes carry basic auth.
    pub fn has_credentials(&self) -> bool {
        self.authorization.is_some()
    }

    fn authority(&self) -> String {
        match (self.base.host_str(), self.base.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_string(),
            (None, _) => String::new(),
        }
    }

    fn port(&self) -> u16 {
        self.base.port_or_known_default().unwrap_or(80)
    }

    async fn connect(&self) -> Result<tokio::net::TcpStream, TelemetryError> {
        let port = self.port();
        let result = match self.base.host() {
            Some(url::Host::Domain(name)) => tokio::net::TcpStream::connect((name, port)).await,
            Some(url::Host::Ipv4(ip)) => tokio::net::TcpStream::connect((ip, port)).await,
            Some(url::Host::Ipv6(ip)) => tokio::net::TcpStream::connect((ip, port)).await,
            None => {
                return Err(TelemetryError::InvalidUrl {
                    reason: "it names no host".into(),
                })
            }
        };
        result.map_err(|e| TelemetryError::Connect {
            target: self.redacted(),
            reason: e.to_string(),
        })
    }

    /// Opens (and closes) a TCP connection: a quick check that pushes have somewhere to go.
    pub async fn check_reachable(&self, timeout: Duration) -> Result<(), TelemetryError> {
        match tokio::time::timeout(timeout, self.connect()).await {
            Ok(result) => result.map(drop),
            Err(_) => Err(TelemetryError::Timeout {
                target: self.redacted(),
                millis: timeout.as_millis(),
            }),
        }
    }

    /// Replaces the group `key` on the gateway with `body` (text exposition format), all within
    /// `timeout`.
    pub async fn push(
        &self,
        key: &GroupingKey,
        body: String,
        timeout: Duration,
    ) -> Result<(), TelemetryError> {
        match tokio::time::timeout(timeout, self.put(key, body)).await {
            Ok(result) => result,
            Err(_) => Err(TelemetryError::Timeout {
                target: self.redacted(),
                millis: timeout.as_millis(),
            }),
        }
    }

    async fn put(&self, key: &GroupingKey, body: String) -> Result<(), TelemetryError> {
        let target = self.redacted();
        let http_err = |reason: String| TelemetryError::Http {
            target: target.clone(),
            reason,
        };
        let stream = self.connect().await?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| http_err(e.to_string()))?;
        // The connection task ends when `sender` is dropped at the end of this function.
        let driver = tokio::spawn(connection);
        let path = format!("{}{}", self.base.path().trim_end_matches('/'), key.path());
        let mut request = http::Request::builder()
            .method(http::Method::PUT)
            .uri(path)
            .header(http::header::HOST, self.authority())
            .header(
                http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            );
        if let Some(auth) = &self.authorization {
            request = request.header(http::header::AUTHORIZATION, auth);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| http_err(e.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| http_err(e.to_string()))?;
        let status = response.status();
        let text = response
            .into_body()
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
            .unwrap_or_default();
        drop(sender);
        driver.abort();
        if status.is_success() {
            Ok(())
        } else {
            Err(TelemetryError::Refused {
                target: self.redacted(),
                status: status.as_u16(),
                body: text.trim().chars().take(300).collect(),
            })
        }
    }
}

/// `%XX` sequences of URL user info back to text.
fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    "a % in the user info is not followed by two hex digits".to_string()
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the user info is not UTF-8".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn credentials_become_basic_auth_and_leave_the_url() {
        let t =
            PushTarget::parse("http://ops:s3cr%40t@gateway.example:9091/prefix/").expect("parse");
        assert_eq!(t.redacted(), "http://gateway.example:9091/prefix");
        assert_eq!(
            t.authorization.as_deref(),
            Some("Basic b3BzOnMzY3JAdA==") // ops:s3cr@t
        );
        assert!(!format!("{t:?}").contains("s3cr"));
    }

    #[test]
    fn only_plain_http_urls_are_accepted() {
        assert!(matches!(
            PushTarget::parse("https://gw:9091"),
            Err(TelemetryError::UnsupportedScheme { .. })
        ));
        let err = PushTarget::parse("not a url with password hunter2").expect_err("invalid");
        assert!(!err.to_string().contains("hunter2"));
        assert!(PushTarget::parse("http://gw:9091/?a=b").is_err());
    }

    #[test]
    fn grouping_values_travel_base64url_encoded() {
        let key = GroupingKey::new("terraform-provider-hybrid")
            .and_then(|k| k.label("workspace", "infra/prod"))
            .and_then(|k| k.label("phase", ""))
            .expect("key");
        assert_eq!(
            key.path(),
            "/metrics/job@base64/dGVycmFmb3JtLXByb3ZpZGVyLWh5YnJpZA==/workspace@base64/aW5mcmEvcHJvZA==/phase@base64/="
        );
        assert!(GroupingKey::new(" ").is_err());
        assert!(GroupingKey::new("j")
            .and_then(|k| k.label("1bad", "v"))
            .is_err());
        assert!(GroupingKey::new("j")
            .and_then(|k| k.label("job", "v"))
            .is_err());
    }

    /// A one-request HTTP server: returns what it received and answers with `status`.
    async fn one_shot_server(status: &'static str) -> (String, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let handle = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut received = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = socket.read(&mut buf).await.expect("read");
                if n == 0 {
                    break;
                }
                received.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&received);
                if let Some(head_end) = text.find("\r\n\r\n") {
                    let length = text[..head_end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length: ")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if received.len() >= head_end + 4 + length {
                        break;
                    }
                }
            }
            let reply =
                format!("HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nno");
            socket.write_all(reply.as_bytes()).await.expect("write");
            String::from_utf8_lossy(&received).into_owned()
        });
        (format!("http://u:pw@{addr}/gw"), handle)
    }

    #[tokio::test]
    async fn a_push_is_one_put_of_the_group_with_basic_auth() {
        let (url, server) = one_shot_server("200 OK").await;
        let target = PushTarget::parse(&url).expect("parse");
        let key = GroupingKey::new("j")
            .and_then(|k| k.label("workspace", "w"))
            .expect("key");
        target
            .push(&key, "up 1\n".into(), Duration::from_secs(5))
            .await
            .expect("push");
        let request = server.await.expect("server");
        assert!(
            request
                .starts_with("PUT /gw/metrics/job@base64/ag==/workspace@base64/dw== HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(
            request
                .to_ascii_lowercase()
                .contains("authorization: basic dtpwdw=="),
            "{request}"
        );
        assert!(request.ends_with("up 1\n"));
    }

    #[tokio::test]
    async fn a_refusal_and_a_missing_gateway_are_errors_not_hangs() {
        let (url, server) = one_shot_server("400 Bad Request").await;
        let target = PushTarget::parse(&url).expect("parse");
        let key = GroupingKey::new("j").expect("key");
        let err = target
            .push(&key, "x\n".into(), Duration::from_secs(5))
            .await
            .expect_err("refused");
        assert!(
            matches!(err, TelemetryError::Refused { status: 400, .. }),
            "{err}"
        );
        assert!(!err.to_string().contains("pw"));
        let _ = server.await;

        // Nothing listens on the port the server had.
        let target = PushTarget::parse(&url).expect("parse");
        let started = std::time::Instant::now();
        let err = target
            .push(&key, "x\n".into(), Duration::from_secs(2))
            .await
            .expect_err("down");
        assert!(started.elapsed() < Duration::from_secs(3));
        assert!(
            matches!(
                err,
                TelemetryError::Connect { .. } | TelemetryError::Timeout { .. }
            ),
            "{err}"
        );
        assert!(target
            .check_reachable(Duration::from_secs(1))
            .await
            .is_err());
    }
}
