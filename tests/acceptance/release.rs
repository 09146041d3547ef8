//! `make release` packaging: scripts/release.sh turns a binary into the registry layout (zip,
//! SHA256SUMS, manifest) plus a filesystem mirror, and `terraform init` installs the provider
//! from that mirror offline, checking the package against the hash recorded in the lock file.
//!
//! To keep the test cheap it packages the debug binary cargo already built for these tests;
//! `make release` runs the same script on the release build.

use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::harness::{combined, provider_binary, repo_root, terraform_binary, Workspace};

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Terraform's "h1:" package hash: SHA-256 over the sorted `sha256  name` lines of the files a
/// package unpacks to (here one file: the binary under its release name).
fn h1_hash(binary: &[u8], name: &str) -> String {
    let summary = format!("{}  {name}\n", sha256_hex(binary));
    format!("h1:{}", base64(&Sha256::digest(summary.as_bytes())))
}

fn lock_file(hashes: &[String]) -> String {
    let list: String = hashes.iter().map(|h| format!("    \"{h}\",\n")).collect();
    format!(
        "provider \"registry.terraform.io/hybrid/hybrid\" {{\n  version     = \"{VERSION}\"\n  constraints = \"{VERSION}\"\n  hashes = [\n{list}  ]\n}}\n"
    )
}

fn config() -> String {
    format!(
        "terraform {{\n  required_providers {{\n    hybrid = {{\n      source  = \"hybrid/hybrid\"\n      version = \"{VERSION}\"\n    }}\n  }}\n}}\n\nprovider \"hybrid\" {{}}\n\ndata \"hybrid_regions\" \"gdpr\" {{\n  compliance = [\"gdpr\"]\n}}\n\noutput \"gdpr_regions\" {{\n  value = length(data.hybrid_regions.gdpr.codes)\n}}\n"
    )
}

#[test]
fn release_layout_installs_offline_from_a_filesystem_mirror_with_verified_checksums() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let dist = scratch.path().join("dist");
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/release.sh"))
        .arg(provider_binary())
        .arg(VERSION)
        .env("RELEASE_ZIP_LEVEL", "1")
        .arg(&dist)
        .output()
        .expect("run scripts/release.sh");
    assert!(out.status.success(), "{}", combined(&out));

    // The registry layout.
    let zip = format!("terraform-provider-hybrid_{VERSION}_linux_amd64.zip");
    let manifest = format!("terraform-provider-hybrid_{VERSION}_manifest.json");
    let sums = format!("terraform-provider-hybrid_{VERSION}_SHA256SUMS");
    let manifest_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dist.join(&manifest)).expect("manifest"))
            .expect("manifest is JSON");
    assert_eq!(manifest_json["version"], 1);
    assert_eq!(
        manifest_json["metadata"]["protocol_versions"],
        serde_json::json!(["6.0"])
    );
    let sums_text = std::fs::read_to_string(dist.join(&sums)).expect("SHA256SUMS");
    let mut listed = Vec::new();
    for line in sums_text.lines() {
        let (hash, file) = line.split_once("  ").expect("`hash  file` lines");
        let bytes = std::fs::read(dist.join(file)).expect("listed file exists");
        assert_eq!(hash, sha256_hex(&bytes), "SHA256SUMS entry of {file}");
        listed.push(file.to_string());
    }
    listed.sort();
    let mut want = vec![zip.clone(), manifest.clone()];
    want.sort();
    assert_eq!(listed, want);

    // Reproducible: packaging the same binary again gives the same bytes.
    let again = scratch.path().join("again");
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/release.sh"))
        .arg(provider_binary())
        .arg(VERSION)
        .env("RELEASE_ZIP_LEVEL", "1")
        .arg(&again)
        .output()
        .expect("run scripts/release.sh");
    assert!(out.status.success(), "{}", combined(&out));
    assert_eq!(
        std::fs::read_to_string(again.join(&sums)).expect("SHA256SUMS"),
        sums_text
    );

    // The mirror holds the same zip.
    let mirror = dist.join("mirror");
    let mirrored = mirror
        .join("registry.terraform.io/hybrid/hybrid")
        .join(&zip);
    assert_eq!(
        std::fs::read(&mirrored).expect("zip in mirror"),
        std::fs::read(dist.join(&zip)).expect("zip")
    );

    // terraform init from the mirror alone (no registry: `direct` excludes the provider), with
    // a lock file that pins the package hash computed here from the binary: Terraform unpacks
    // the zip, hashes what it finds and refuses anything else.
    let binary = std::fs::read(provider_binary()).expect("binary");
    let h1 = h1_hash(&binary, &format!("terraform-provider-hybrid_v{VERSION}"));
    let zip_sha = sums_text
        .lines()
        .find(|l| l.ends_with(&zip))
        .and_then(|l| l.split_whitespace().next())
        .expect("zip in SHA256SUMS")
        .to_string();
    let ws = Workspace::with_mirror_at("release-mirror", &mirror);
    ws.write("main.tf", &config());
    ws.write(
        ".terraform.lock.hcl",
        &lock_file(&[h1.clone(), format!("zh:{zip_sha}")]),
    );
    let init = ws.init();
    assert!(
        init.contains(&format!("Installing hybrid/hybrid v{VERSION}")),
        "{init}"
    );
    let lock = std::fs::read_to_string(ws.dir.join(".terraform.lock.hcl")).expect("lock file");
    assert!(lock.contains(&h1), "{lock}");
    let installed = ws
        .dir
        .join(".terraform/providers/registry.terraform.io/hybrid/hybrid")
        .join(VERSION)
        .join("linux_amd64")
        .join(format!("terraform-provider-hybrid_v{VERSION}"));
    assert!(is_executable(&installed), "{}", installed.display());
    let applied = ws.apply();
    assert!(applied.contains("gdpr_regions = "), "{applied}");

    // The same mirror with a lock file expecting other bytes: init refuses.
    let tampered = Workspace::with_mirror_at("release-mirror-tampered", &mirror);
    tampered.write("main.tf", &config());
    let wrong = h1_hash(
        b"not the provider",
        &format!("terraform-provider-hybrid_v{VERSION}"),
    );
    tampered.write(".terraform.lock.hcl", &lock_file(&[wrong]));
    tampered.expect_error(
        &["init", "-input=false"],
        &["doesn't match any of the checksums previously recorded"],
    );
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

#[test]
fn base64_matches_the_standard_alphabet_with_padding() {
    assert_eq!(base64(b""), "");
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foo"), "Zm9v");
    assert_eq!(base64(b"foobar"), "Zm9vYmFy");
}

/// `make release-pgo` trains its profile with scripts/pgo-train.sh: every example and a fleet of
/// workloads through plan, apply of the saved plan, a re-plan that must be empty, destroy and an
/// import. The script stops at the first command that fails, so a release build cannot quietly
/// train on half a run; here it runs against this build with a small fleet.
#[test]
fn pgo_training_run_goes_through_every_example_and_the_fleet() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/pgo-train.sh"))
        .arg(terraform_binary())
        .arg(provider_binary())
        .arg(scratch.path().join("train"))
        .env("TRAIN_COUNT", "3")
        .env_remove("TF_CLI_CONFIG_FILE")
        .env_remove("TF_LOG")
        .output()
        .expect("run scripts/pgo-train.sh");
    let text = combined(&out);
    assert!(out.status.success(), "{text}");
    for step in [
        "examples/terraform/quickstart",
        "examples/terraform/multi-cloud-compliance",
        "examples/terraform/edge-site",
        "examples/terraform/edge-fleet",
        "examples/terraform/migration (migrate=true)",
        "a fleet of 3 workloads",
        "pgo-train: done",
    ] {
        assert!(text.contains(step), "no `{step}` in:\n{text}");
    }
}
