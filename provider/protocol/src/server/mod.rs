//! Serving a provider to Terraform the way go-plugin expects.
//!
//! [`serve()`] is what the provider binary's `main` calls. [`serve_with`] is the
//! same machinery without the process environment, so tests (and the debug
//! mode) can run it in-process. Submodules: `handshake` (environment and the
//! stdout line), `tls` (AutoMTLS), `conn` (accepting Unix socket or TCP
//! connections, plain or TLS), `unix_socket` (a Unix socket that wakes the
//! runtime only to read), `http2` and `frames` (the gRPC server's own HTTP/2),
//! `routes` (which method serves which path), `services` (go-plugin's helper
//! services), `serve` (wiring it together) and `fuzzing` (the HTTP/2 server under a
//! fuzzer's input).

mod conn;
mod frames;
pub mod fuzzing;
pub mod handshake;
mod http2;
mod routes;
mod serve;
pub mod services;
pub mod tls;
#[cfg(unix)]
mod unix_socket;

pub use handshake::{HandshakeInfo, PluginAddr, PluginEnv};
pub use serve::{
    reattach_json, serve, serve_debug, serve_with, HandshakeCallback, ServeOptions, StopFuture,
    Transport,
};
pub use services::ShutdownSignal;

/// Why serving the provider failed or could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The magic cookie is missing or wrong: a human ran the binary.
    #[error(
        "this program is a Terraform provider plugin: Terraform or OpenTofu starts it \
         (for example during `terraform plan`); it is not meant to be run directly. \
         Install it as a provider and run terraform instead"
    )]
    NotLaunchedByTerraform,
    /// Terraform does not offer protocol 6.
    #[error(
        "Terraform offered plugin protocol versions {offered:?} but this provider speaks only \
         protocol 6 (Terraform >= 1.0 or OpenTofu)"
    )]
    UnsupportedProtocol {
        /// The value of `PLUGIN_PROTOCOL_VERSIONS`.
        offered: String,
    },
    /// An environment variable has an unusable value.
    #[error("environment variable {key} has an invalid value: {value}")]
    BadEnv {
        /// Variable name.
        key: String,
        /// Offending value or explanation.
        value: String,
    },
    /// `PLUGIN_CLIENT_CERT` is not a usable PEM certificate.
    #[error("PLUGIN_CLIENT_CERT is not a PEM certificate: {0}")]
    ClientCert(String),
    /// Generating the server certificate failed.
    #[error("generating the server certificate: {0}")]
    CertGen(#[from] rcgen::Error),
    /// Building the TLS configuration failed.
    #[error("configuring TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// No loopback port could be bound.
    #[error("listening on 127.0.0.1: {0}")]
    Bind(#[source] std::io::Error),
    /// The handshake line could not be delivered.
    #[error("writing the plugin handshake: {0}")]
    Handshake(#[source] std::io::Error),
    /// Installing signal handlers failed.
    #[error("installing signal handlers: {0}")]
    Signal(#[source] std::io::Error),
}
