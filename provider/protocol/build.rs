//! Build script: turns our `.proto` files into Rust without `protoc`.
//!
//! `protox` (pure Rust) parses the protos into a `FileDescriptorSet`, and
//! `tonic-prost-build` generates messages, clients and servers from it. Server
//! traits get default stubs, so a provider implements only the RPCs it supports
//! and the rest answer `Unimplemented`.

use std::error::Error;

const PROTOS: &[&str] = &[
    "proto/tfplugin6.proto",
    "proto/go_plugin.proto",
    "proto/health.proto",
];

fn main() -> Result<(), Box<dyn Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    println!("cargo:rerun-if-changed=build.rs");

    let fds = protox::compile(PROTOS, ["proto"])?;
    tonic_prost_build::configure()
        // Values and stored states as `Bytes`: decoding a request then slices its buffer
        // instead of copying each state out of it, and a handler that keeps or sends back a
        // state it was given (as the fallback when a call fails) shares it.
        .bytes(".tfplugin6.DynamicValue")
        .bytes(".tfplugin6.RawState")
        .build_server(true)
        .build_client(true)
        // Clients are for tests, which bring their own channels.
        .build_transport(false)
        .generate_default_stubs(true)
        .compile_fds(fds)?;
    Ok(())
}
