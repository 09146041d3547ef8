//! Terraform plugin protocol 6 for terraform-provider-hybrid.
//!
//! This crate owns everything between Terraform and our provider logic: the
//! generated gRPC types for `tfplugin6` and go-plugin's helper services, and
//! [`server`], which performs the go-plugin handshake, AutoMTLS and serving.

/// Generated from `proto/tfplugin6.proto` (package `tfplugin6`).
#[allow(clippy::all, clippy::pedantic, clippy::unwrap_used)]
pub mod tfplugin6 {
    tonic::include_proto!("tfplugin6");
}

/// Generated from `proto/go_plugin.proto` (package `plugin`): the controller,
/// stdio and broker services go-plugin clients expect.
#[allow(clippy::all, clippy::pedantic, clippy::unwrap_used)]
pub mod plugin {
    tonic::include_proto!("plugin");
}

/// Generated from `proto/health.proto` (package `grpc.health.v1`).
#[allow(clippy::all, clippy::pedantic, clippy::unwrap_used)]
pub mod health {
    tonic::include_proto!("grpc.health.v1");
}

pub mod server;

pub use server::{
    serve, serve_with, HandshakeInfo, PluginAddr, ServeError, ServeOptions, Transport,
};
