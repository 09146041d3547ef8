//! Checks the server against a real Terraform binary (1.0.3 was used): the
//! go-plugin handshake, AutoMTLS with Terraform's P-521 client certificate,
//! schema decoding, plan-time RPCs and a clean Shutdown, via the
//! `tiny_provider` example.
//!
//! Uses the terraform binary named by `TF_ACC_TERRAFORM_PATH`, else the project's
//! `.tools/bin/terraform` (installed by `scripts/install-tools.sh`); fails when neither exists.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn terraform() -> Option<PathBuf> {
    let path = std::env::var_os("TF_ACC_TERRAFORM_PATH")
        .map(PathBuf::from)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/bin/terraform")
        });
    path.is_file().then_some(path)
}

/// `cargo test`/`nextest` build examples next to the test binaries.
fn example_provider() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let profile_dir = exe.parent()?.parent()?;
    let path = profile_dir
        .join("examples")
        .join(format!("tiny_provider{}", std::env::consts::EXE_SUFFIX));
    path.is_file().then_some(path)
}

fn run(tf: &Path, dir: &Path, cli_config: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(tf)
        .args(args)
        .current_dir(dir)
        .env_remove("TF_LOG")
        .env_remove("TF_CLI_ARGS")
        .env("TF_CLI_CONFIG_FILE", cli_config)
        .env("TF_IN_AUTOMATION", "1")
        .env("CHECKPOINT_DISABLE", "1")
        .output()
        .expect("terraform runs");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn real_terraform_talks_to_the_server() {
    let (Some(tf), Some(provider)) = (terraform(), example_provider()) else {
        panic!(
            "needs the terraform binary (run `make tools` or set TF_ACC_TERRAFORM_PATH) and the tiny_provider example built next to this test"
        );
    };
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    std::fs::copy(&provider, plugins.join("terraform-provider-hybrid")).unwrap();

    let cli_config = tmp.path().join("cli.tfrc");
    std::fs::write(
        &cli_config,
        format!(
            "provider_installation {{\n  dev_overrides {{\n    \
             \"registry.terraform.io/hybrid/hybrid\" = {:?}\n  }}\n  direct {{}}\n}}\n",
            plugins.display().to_string()
        ),
    )
    .unwrap();
    std::fs::write(
        work.join("main.tf"),
        r#"
terraform {
  required_providers {
    hybrid = { source = "hybrid/hybrid" }
  }
}
provider "hybrid" {}
data "hybrid_echo" "x" {
  name = "hello"
}
resource "hybrid_test" "y" {
  name = data.hybrid_echo.x.name
}
output "echo" {
  value = data.hybrid_echo.x.name
}
"#,
    )
    .unwrap();

    let (ok, out) = run(&tf, &work, &cli_config, &["providers", "schema", "-json"]);
    assert!(ok, "{out}");
    assert!(out.contains(r#""hybrid_test":{"version":0"#), "{out}");
    assert!(out.contains(r#""hybrid_echo""#), "{out}");

    let (ok, out) = run(
        &tf,
        &work,
        &cli_config,
        &["plan", "-input=false", "-no-color"],
    );
    assert!(ok, "{out}");
    assert!(out.contains("hybrid_test.y will be created"), "{out}");
    assert!(out.contains(r#"echo = "hello""#), "{out}");
}
