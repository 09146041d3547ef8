//! `terraform-provider-hybrid`: the binary Terraform and OpenTofu start as a plugin.
//!
//! Run by Terraform it speaks tfplugin6 over gRPC (see `tfprotocol`); run by a person it says
//! what it is. Everything it does lives in the library crate next to it.

use std::process::ExitCode;

use terraform_provider_hybrid::{docs, grpc::HybridProvider, logging, review};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `review PLAN.json`: the CI plan reviewer, a plain command (no logging, no plugin server).
    if args.first().map(String::as_str) == Some("review") {
        return ExitCode::from(review::cli::main(&args[1..]));
    }
    // `docs [--dir ROOT] [--check]`: writes (or checks) the registry pages; what `make docs` runs.
    if args.first().map(String::as_str) == Some("docs") {
        return ExitCode::from(docs_command(&args[1..]));
    }
    if args.iter().any(|a| a == "--version" || a == "version") {
        println!("terraform-provider-hybrid {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    logging::init();
    // One thread runs every RPC. The provider's work between awaits is short (decoding a
    // value, a SQLite statement, a placement from a cached decision) and everything slow is
    // network IO, which waits without holding the thread. Two worker threads spent their time
    // handing tasks and wake-ups to each other: with one, the provider used 15–25 % less CPU
    // per phase of a 1,000-workload run (docs/architecture.md, sixth round).
    let runtime = match tokio::runtime::Builder::new_current_thread()
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

const DOCS_USAGE: &str = "usage: terraform-provider-hybrid docs [--dir REPOSITORY_ROOT] [--check]";

/// Exit codes: 0 written or up to date, 1 the checked-in pages differ, 2 usage or IO error.
fn docs_command(args: &[String]) -> u8 {
    let mut root = std::path::PathBuf::from(".");
    let mut check_only = false;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--check" => check_only = true,
            "--dir" => match rest.next() {
                Some(dir) => root = dir.into(),
                None => {
                    eprintln!("--dir needs a directory\n{DOCS_USAGE}");
                    return 2;
                }
            },
            "-h" | "--help" => {
                println!("{DOCS_USAGE}");
                return 0;
            }
            other => {
                eprintln!("unknown argument {other:?}\n{DOCS_USAGE}");
                return 2;
            }
        }
    }
    let pages = match docs::generate(&root) {
        Ok(pages) => pages,
        Err(err) => {
            eprintln!("terraform-provider-hybrid docs: {err}");
            return 2;
        }
    };
    if check_only {
        return match docs::check(&root, &pages) {
            Ok(drift) if drift.is_empty() => 0,
            Ok(drift) => {
                for d in &drift {
                    eprintln!("{d}");
                }
                eprintln!("the docs are out of date: run `make docs` and commit the result");
                1
            }
            Err(err) => {
                eprintln!("terraform-provider-hybrid docs: {err}");
                2
            }
        };
    }
    match docs::write(&root, &pages) {
        Ok(()) => {
            println!(
                "wrote {} pages under {}",
                pages.len(),
                root.join("docs").display()
            );
            0
        }
        Err(err) => {
            eprintln!("terraform-provider-hybrid docs: {err}");
            2
        }
    }
}
