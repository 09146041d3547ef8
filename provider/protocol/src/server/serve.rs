//! Wiring: listen, announce, serve the Provider plus go-plugin's services,
//! and stop on Shutdown, SIGTERM or an external signal.

use std::future::Future;
use std::io::Write as _;
use std::pin::Pin;
use std::time::Duration;

use std::sync::Arc;

use tokio::sync::mpsc;

use super::conn::{accept_loop, Listener};
use super::handshake::{
    bind_loopback, HandshakeInfo, PluginAddr, PluginEnv, SocketDirGuard, APP_PROTOCOL_VERSION,
};
use super::http2::Limits;
use super::routes::Routes;
use super::services::ShutdownSignal;
use super::{tls, ServeError};
use crate::tfplugin6::provider_server::Provider;

/// After shutdown starts, how long in-flight requests get before we return.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Terraform sends whole schemas and states in one message; allow big ones
/// (Terraform itself allows 256 MiB).
const MAX_MESSAGE_SIZE: usize = 256 << 20;

/// The request bytes one connection may hold for calls still arriving: room for one message
/// of the largest size beside the others in flight, and a bound on the whole connection.
const MAX_BUFFERED: usize = 2 * MAX_MESSAGE_SIZE;

/// Called once with the handshake details when the server is listening.
pub type HandshakeCallback = Box<dyn FnOnce(&HandshakeInfo) -> std::io::Result<()> + Send>;

/// A future that asks the server to stop when it resolves.
pub type StopFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What [`serve_with`] listens on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Transport {
    /// 127.0.0.1 on a free port (of `port_range` if set).
    #[default]
    LoopbackTcp,
    /// A Unix socket in a private directory under `dir` (default: the temporary directory);
    /// loopback TCP if the socket cannot be made (a `dir` too long for a socket path, say).
    UnixSocket { dir: Option<std::path::PathBuf> },
}

/// How [`serve_with`] listens and whom it tells.
#[derive(Default)]
pub struct ServeOptions {
    /// Unix socket or loopback TCP.
    pub transport: Transport,
    /// Terraform's client certificate (PEM). `Some` turns AutoMTLS on: we
    /// serve TLS and accept only this exact certificate.
    pub client_cert_pem: Option<String>,
    /// Inclusive port range on 127.0.0.1; `None` picks any free port.
    pub port_range: Option<(u16, u16)>,
    /// Receives the handshake once listening (e.g. prints the stdout line).
    pub on_handshake: Option<HandshakeCallback>,
    /// Extra stop trigger (SIGTERM in [`serve`], a channel in tests).
    pub stop: Option<StopFuture>,
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("transport", &self.transport)
            .field("client_cert_pem", &self.client_cert_pem.is_some())
            .field("port_range", &self.port_range)
            .field("on_handshake", &self.on_handshake.is_some())
            .field("stop", &self.stop.is_some())
            .finish()
    }
}

/// Serves `provider` as a Terraform plugin: checks the environment Terraform
/// sets, prints the handshake line on stdout, and returns `Ok(())` after
/// Terraform's Shutdown or SIGTERM. SIGINT is ignored (Terraform forwards
/// Ctrl-C to us and then calls StopProvider itself).
///
/// If the binary was not started by Terraform this returns
/// [`ServeError::NotLaunchedByTerraform`], whose message is meant for a human.
pub async fn serve<P: Provider>(provider: P) -> Result<(), ServeError> {
    let env = PluginEnv::from_process_env()?;
    let stop = install_signal_handlers(false)?;
    let transport = if cfg!(unix) {
        Transport::UnixSocket {
            dir: env.unix_socket_dir,
        }
    } else {
        Transport::LoopbackTcp
    };
    serve_with(
        provider,
        ServeOptions {
            transport,
            client_cert_pem: env.client_cert_pem,
            port_range: env.port_range,
            on_handshake: Some(Box::new(|info| print_line(&info.line()))),
            stop: Some(stop),
        },
    )
    .await
}

/// Debug mode: serves without TLS or the magic cookie and prints the
/// `TF_REATTACH_PROVIDERS` value that points Terraform at this process, for a
/// provider started by hand (e.g. under a debugger). Ctrl-C or SIGTERM stops it.
/// `provider_address` is e.g. `registry.terraform.io/hybrid/hybrid`.
pub async fn serve_debug<P: Provider>(
    provider: P,
    provider_address: &str,
) -> Result<(), ServeError> {
    let stop = install_signal_handlers(true)?;
    let address = provider_address.to_owned();
    serve_with(
        provider,
        ServeOptions {
            on_handshake: Some(Box::new(move |info| {
                let json = reattach_json(&address, info);
                print_line(&format!(
                    "Provider started. To attach Terraform, set in your shell:\n\n\
                     \tTF_REATTACH_PROVIDERS='{json}'\n"
                ))
            })),
            stop: Some(stop),
            ..ServeOptions::default()
        },
    )
    .await
}

/// The `TF_REATTACH_PROVIDERS` JSON for a provider listening at `info.addr`.
pub fn reattach_json(provider_address: &str, info: &HandshakeInfo) -> String {
    serde_json::json!({
        provider_address: {
            "Protocol": "grpc",
            "ProtocolVersion": APP_PROTOCOL_VERSION,
            "Pid": std::process::id(),
            "Test": true,
            "Addr": { "Network": info.addr.network(), "String": info.addr.to_string() },
        }
    })
    .to_string()
}

/// Serves `provider` with explicit options (no environment, no signals).
/// Returns `Ok(())` once the Controller's Shutdown or `options.stop` asked
/// for it and in-flight requests finished (or the grace period ran out).
pub async fn serve_with<P: Provider>(provider: P, options: ServeOptions) -> Result<(), ServeError> {
    let (tls_config, server_cert_der) = match &options.client_cert_pem {
        Some(pem) => {
            let client_cert = tls::parse_client_cert(pem)?;
            let identity = tls::generate_server_identity()?;
            let config = tls::server_config(&identity, client_cert)?;
            (Some(config), Some(identity.cert.as_ref().to_vec()))
        }
        None => (None, None),
    };

    let (listener, addr, _socket_dir) = listen(&options.transport, options.port_range).await?;
    let shutdown = ShutdownSignal::new();

    let routes = Arc::new(Routes::new(provider, shutdown.clone()));
    let limits = Limits {
        max_message: MAX_MESSAGE_SIZE,
        max_response: MAX_MESSAGE_SIZE,
        max_buffered: MAX_BUFFERED,
    };
    // Each connection holds a sender; `recv` returns `None` once the acceptor and every
    // connection have ended.
    let (alive, mut connections) = mpsc::channel::<()>(1);
    let acceptor = tokio::spawn(accept_loop(
        listener,
        tls_config,
        routes,
        limits,
        shutdown.clone(),
        alive,
    ));
    let stopper = options.stop.map(|stop| {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            stop.await;
            shutdown.trigger();
        })
    });

    let info = HandshakeInfo {
        addr,
        server_cert_der,
    };
    if let Some(announce) = options.on_handshake {
        if let Err(e) = announce(&info) {
            acceptor.abort();
            if let Some(stopper) = stopper {
                stopper.abort();
            }
            return Err(ServeError::Handshake(e));
        }
    }

    shutdown.wait().await;
    // Connections see the same signal: they refuse new calls, end their streams and close
    // once the calls in flight have answered.
    let drained = async { while connections.recv().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drained).await.is_err() {
        eprintln!("[WARN] tfprotocol: requests still running {SHUTDOWN_GRACE:?} after shutdown; exiting anyway");
    }
    acceptor.abort();
    if let Some(stopper) = stopper {
        stopper.abort();
    }
    Ok(())
}

/// Binds what `transport` asks for; the guard removes a Unix socket's directory when
/// serving ends.
async fn listen(
    transport: &Transport,
    port_range: Option<(u16, u16)>,
) -> Result<(Listener, PluginAddr, Option<SocketDirGuard>), ServeError> {
    #[cfg(unix)]
    if let Transport::UnixSocket { dir } = transport {
        match super::handshake::UnixSocket::bind(dir.as_deref()) {
            Ok(socket) => {
                let guard = socket.cleanup_guard();
                let addr = PluginAddr::Unix(socket.path.clone());
                return Ok((Listener::Unix(socket.listener), addr, Some(guard)));
            }
            Err(e) => {
                eprintln!("[WARN] tfprotocol: no Unix socket ({e}); listening on loopback TCP");
            }
        }
    }
    #[cfg(not(unix))]
    let _ = transport;
    let listener = bind_loopback(port_range).await?;
    let addr = listener.local_addr().map_err(ServeError::Bind)?;
    Ok((Listener::Tcp(listener), PluginAddr::Tcp(addr), None))
}

fn print_line(line: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()
}

/// SIGTERM (and SIGINT when `stop_on_interrupt`) resolve the returned future;
/// otherwise SIGINT is swallowed so Ctrl-C in Terraform does not kill us.
#[cfg(unix)]
fn install_signal_handlers(stop_on_interrupt: bool) -> Result<StopFuture, ServeError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(ServeError::Signal)?;
    // Registering a handler replaces the default "terminate" action.
    let mut int = signal(SignalKind::interrupt()).map_err(ServeError::Signal)?;
    Ok(Box::pin(async move {
        loop {
            tokio::select! {
                _ = term.recv() => return,
                got = int.recv() => {
                    if stop_on_interrupt {
                        return;
                    }
                    if got.is_none() {
                        // No more SIGINTs can arrive; only SIGTERM matters now.
                        term.recv().await;
                        return;
                    }
                }
            }
        }
    }))
}

#[cfg(not(unix))]
fn install_signal_handlers(stop_on_interrupt: bool) -> Result<StopFuture, ServeError> {
    Ok(Box::pin(async move {
        if stop_on_interrupt {
            let _ = tokio::signal::ctrl_c().await;
        } else {
            std::future::pending::<()>().await;
        }
    }))
}
