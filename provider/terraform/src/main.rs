//! `terraform-provider-hybrid`: the binary Terraform and OpenTofu start as a plugin.
//!
//! Run by Terraform it speaks tfplugin6 over gRPC (see `tfprotocol`); run by a person it says
//! what it is. Everything it does lives in the library crate next to it.

use std::process::ExitCode;

use terraform_provider_hybrid::{grpc::HybridProvider, logging, review};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `review PLAN.json`: the CI plan reviewer, a plain command (no logging, no plugin server).
    if args.first().map(String::as_str) == Some("review") {
        return ExitCode::from(review::cli::main(&args[1..]));
    }
    if args.iter().any(|a| a == "--version" || a == "version") {
        println!("terraform-provider-hybrid {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    logging::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("terraform-provider-hybrid: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let provider = HybridProvider::new();
    let telemetry = provider.telemetry();
    let served = runtime.block_on(tfprotocol::serve(provider));
    // One terraform command, one process: its metrics go out now or never.
    runtime.block_on(telemetry.push_at_exit());
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("terraform-provider-hybrid: {err}");
            ExitCode::FAILURE
        }
    }
}
