//! The go-plugin handshake: what Terraform puts in our environment, and the
//! single line we answer with on stdout.
//!
//! Terraform starts the provider with a magic cookie, the protocol versions it
//! speaks, an optional port range and (for AutoMTLS) its client certificate.
//! Once listening we print `1|6|NETWORK|ADDR|grpc|CERT` and Terraform connects. NETWORK is
//! `unix` (a socket file in a private directory, as go-plugin's own servers do on Unix:
//! cheaper per call than loopback TCP, and reachable only by this user) or `tcp`.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use base64::Engine as _;
use tokio::net::TcpListener;

use super::ServeError;

/// Name of the environment variable holding the magic cookie.
pub const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
/// The cookie value Terraform sets for provider plugins.
pub const MAGIC_COOKIE_VALUE: &str =
    "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";
/// go-plugin's own (core) protocol version, first field of the handshake.
pub const CORE_PROTOCOL_VERSION: u32 = 1;
/// The Terraform plugin protocol major version we serve.
pub const APP_PROTOCOL_VERSION: u32 = 6;

/// Where the gRPC server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginAddr {
    /// Loopback TCP.
    Tcp(SocketAddr),
    /// A Unix socket file.
    Unix(PathBuf),
}

impl PluginAddr {
    /// go-plugin's network name: `tcp` or `unix`.
    pub fn network(&self) -> &'static str {
        match self {
            PluginAddr::Tcp(_) => "tcp",
            PluginAddr::Unix(_) => "unix",
        }
    }

    /// The TCP address, if this is one.
    pub fn tcp(&self) -> Option<SocketAddr> {
        match self {
            PluginAddr::Tcp(addr) => Some(*addr),
            PluginAddr::Unix(_) => None,
        }
    }
}

impl fmt::Display for PluginAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PluginAddr::Tcp(addr) => write!(f, "{addr}"),
            PluginAddr::Unix(path) => write!(f, "{}", path.display()),
        }
    }
}

/// What the server announces once it listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeInfo {
    /// Where the gRPC server listens.
    pub addr: PluginAddr,
    /// DER of the server's leaf certificate when AutoMTLS is on.
    pub server_cert_der: Option<Vec<u8>>,
}

impl HandshakeInfo {
    /// The handshake line, without a trailing newline:
    /// `1|6|tcp|127.0.0.1:PORT|grpc|CERT` or `1|6|unix|PATH|grpc|CERT`. CERT is the certificate DER in
    /// standard base64 without padding (Go's `RawStdEncoding`), or empty.
    pub fn line(&self) -> String {
        let cert = self
            .server_cert_der
            .as_deref()
            .map(|der| base64::engine::general_purpose::STANDARD_NO_PAD.encode(der))
            .unwrap_or_default();
        format!(
            "{CORE_PROTOCOL_VERSION}|{APP_PROTOCOL_VERSION}|{}|{}|grpc|{cert}",
            self.addr.network(),
            self.addr
        )
    }
}

/// Settings read from the environment Terraform gives a plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginEnv {
    /// PEM of Terraform's client certificate (`PLUGIN_CLIENT_CERT`).
    pub client_cert_pem: Option<String>,
    /// `PLUGIN_MIN_PORT`..=`PLUGIN_MAX_PORT`, when both are set.
    pub port_range: Option<(u16, u16)>,
    /// `PLUGIN_UNIX_SOCKET_DIR`: where go-plugin wants Unix sockets made (default: the
    /// temporary directory).
    pub unix_socket_dir: Option<PathBuf>,
}

impl PluginEnv {
    /// Reads and checks the process environment.
    pub fn from_process_env() -> Result<Self, ServeError> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Same as [`PluginEnv::from_process_env`] with an injectable lookup
    /// (for tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ServeError> {
        if lookup(MAGIC_COOKIE_KEY).as_deref() != Some(MAGIC_COOKIE_VALUE) {
            return Err(ServeError::NotLaunchedByTerraform);
        }
        if let Some(offered) = lookup("PLUGIN_PROTOCOL_VERSIONS") {
            let ours = APP_PROTOCOL_VERSION.to_string();
            if !offered.split(',').any(|v| v.trim() == ours) {
                return Err(ServeError::UnsupportedProtocol { offered });
            }
        }
        let port = |key: &str| -> Result<Option<u16>, ServeError> {
            match lookup(key) {
                None => Ok(None),
                Some(v) if v.trim().is_empty() => Ok(None),
                Some(v) => v
                    .trim()
                    .parse::<u16>()
                    .map(Some)
                    .map_err(|_| ServeError::BadEnv {
                        key: key.to_owned(),
                        value: v,
                    }),
            }
        };
        let port_range = match (port("PLUGIN_MIN_PORT")?, port("PLUGIN_MAX_PORT")?) {
            (Some(min), Some(max)) if min <= max => Some((min, max)),
            (Some(min), Some(max)) => {
                return Err(ServeError::BadEnv {
                    key: "PLUGIN_MIN_PORT".to_owned(),
                    value: format!("{min} > PLUGIN_MAX_PORT {max}"),
                })
            }
            _ => None,
        };
        let client_cert_pem = lookup("PLUGIN_CLIENT_CERT").filter(|pem| !pem.trim().is_empty());
        let unix_socket_dir = lookup("PLUGIN_UNIX_SOCKET_DIR")
            .filter(|dir| !dir.trim().is_empty())
            .map(PathBuf::from);
        Ok(Self {
            client_cert_pem,
            port_range,
            unix_socket_dir,
        })
    }
}

/// Binds 127.0.0.1 on the first free port of `range`, or on any free port.
pub async fn bind_loopback(range: Option<(u16, u16)>) -> Result<TcpListener, ServeError> {
    let Some((min, max)) = range else {
        return TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(ServeError::Bind);
    };
    let mut last_err = None;
    for port in min..=max {
        match TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await {
            Ok(listener) => return Ok(listener),
            Err(e) => last_err = Some(e),
        }
    }
    Err(ServeError::Bind(last_err.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::AddrNotAvailable, "empty port range")
    })))
}

/// A Unix socket in a fresh directory only this user can enter; both are removed when this
/// is dropped (a killed process leaves them behind, as go-plugin's own servers do).
#[cfg(unix)]
#[derive(Debug)]
pub struct UnixSocket {
    pub listener: tokio::net::UnixListener,
    pub path: PathBuf,
    dir: PathBuf,
}

#[cfg(unix)]
impl UnixSocket {
    /// Binds `<base>/hybrid-plugin-<pid>-<n>/plugin.sock`, `base` being `dir` or the
    /// temporary directory.
    pub fn bind(dir: Option<&std::path::Path>) -> Result<UnixSocket, ServeError> {
        use std::os::unix::fs::DirBuilderExt as _;
        let base = dir.map_or_else(std::env::temp_dir, std::path::Path::to_path_buf);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let mut last_err = None;
        for attempt in 0..16u32 {
            let dir = base.join(format!(
                "hybrid-plugin-{}-{:x}",
                std::process::id(),
                nanos.wrapping_add(attempt)
            ));
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => {
                    let path = dir.join("plugin.sock");
                    return match tokio::net::UnixListener::bind(&path) {
                        Ok(listener) => Ok(UnixSocket {
                            listener,
                            path,
                            dir,
                        }),
                        Err(e) => {
                            let _ = std::fs::remove_dir_all(&dir);
                            Err(ServeError::Bind(e))
                        }
                    };
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last_err = Some(e),
                Err(e) => return Err(ServeError::Bind(e)),
            }
        }
        Err(ServeError::Bind(last_err.unwrap_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "no free socket directory",
            )
        })))
    }

    /// The directory to remove when serving ends.
    pub fn cleanup_guard(&self) -> SocketDirGuard {
        SocketDirGuard(self.dir.clone())
    }
}

/// Removes a socket directory when dropped.
#[derive(Debug)]
pub struct SocketDirGuard(PathBuf);

impl Drop for SocketDirGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn missing_cookie_explains_itself() {
        let err = PluginEnv::from_lookup(env(&[])).unwrap_err();
        assert!(matches!(err, ServeError::NotLaunchedByTerraform));
        assert!(err.to_string().contains("Terraform"));
    }

    #[test]
    fn wrong_cookie_is_rejected() {
        let err = PluginEnv::from_lookup(env(&[(MAGIC_COOKIE_KEY, "nope")])).unwrap_err();
        assert!(matches!(err, ServeError::NotLaunchedByTerraform));
    }

    #[test]
    fn protocol_6_must_be_offered() {
        let err = PluginEnv::from_lookup(env(&[
            (MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE),
            ("PLUGIN_PROTOCOL_VERSIONS", "4,5"),
        ]))
        .unwrap_err();
        assert!(matches!(err, ServeError::UnsupportedProtocol { .. }));

        let ok = PluginEnv::from_lookup(env(&[
            (MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE),
            ("PLUGIN_PROTOCOL_VERSIONS", "5,6"),
            ("PLUGIN_MIN_PORT", "10000"),
            ("PLUGIN_MAX_PORT", "10010"),
            ("PLUGIN_CLIENT_CERT", "-----BEGIN CERTIFICATE-----"),
        ]))
        .unwrap();
        assert_eq!(ok.port_range, Some((10000, 10010)));
        assert!(ok.client_cert_pem.is_some());
    }

    #[test]
    fn handshake_line_uses_unpadded_standard_base64() {
        let info = HandshakeInfo {
            addr: PluginAddr::Tcp("127.0.0.1:4321".parse().unwrap()),
            // 4 bytes -> "+/7+/w==" padded; must come out as "+/7+/w".
            server_cert_der: Some(vec![0xfb, 0xfe, 0xfe, 0xff]),
        };
        assert_eq!(info.line(), "1|6|tcp|127.0.0.1:4321|grpc|+/7+/w");
        let plain = HandshakeInfo {
            server_cert_der: None,
            ..info
        };
        assert_eq!(plain.line(), "1|6|tcp|127.0.0.1:4321|grpc|");
    }

    #[tokio::test]
    async fn binds_inside_the_port_range() {
        let probe = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        let listener = bind_loopback(Some((port, port))).await.unwrap();
        assert_eq!(listener.local_addr().unwrap().port(), port);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn unix_socket_lives_in_a_private_directory_removed_afterwards() {
        use std::os::unix::fs::PermissionsExt as _;
        let base = tempfile::tempdir().unwrap();
        let socket = UnixSocket::bind(Some(base.path())).unwrap();
        let dir = socket.path.parent().unwrap().to_path_buf();
        assert!(dir.starts_with(base.path()));
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "only this user may reach the socket");
        let line = HandshakeInfo {
            addr: PluginAddr::Unix(socket.path.clone()),
            server_cert_der: None,
        }
        .line();
        assert_eq!(line, format!("1|6|unix|{}|grpc|", socket.path.display()));
        let guard = socket.cleanup_guard();
        drop(socket);
        assert!(dir.exists());
        drop(guard);
        assert!(!dir.exists(), "the socket directory is removed at the end");
    }

    #[test]
    fn unix_socket_dir_comes_from_go_plugin_env() {
        let env = PluginEnv::from_lookup(env(&[
            (MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE),
            ("PLUGIN_UNIX_SOCKET_DIR", "/run/plugins"),
        ]))
        .unwrap();
        assert_eq!(env.unix_socket_dir, Some(PathBuf::from("/run/plugins")));
    }
}
