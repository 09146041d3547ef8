//! The registry pages under docs/ are generated from the provider's schema descriptions and
//! examples/ (`make docs`); the checked-in copy must be exactly what the generator writes today,
//! so a schema or example change always comes with its documentation.

use std::process::Command;

use crate::harness::{combined, provider_binary, repo_root};

#[test]
fn checked_in_docs_match_what_make_docs_writes() {
    let root = repo_root();
    let pages = terraform_provider_hybrid::docs::generate(&root).expect("generate the docs");
    let drift = terraform_provider_hybrid::docs::check(&root, &pages).expect("read docs/");
    assert!(
        drift.is_empty(),
        "docs/ is out of date with the provider schema or examples/:\n  {}\nrun `make docs` and commit the result",
        drift
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n  ")
    );
    // One page per resource and data source, plus the index.
    let expected = 1
        + terraform_provider_hybrid::resources::all().len()
        + terraform_provider_hybrid::data_sources::all().len();
    assert_eq!(pages.len(), expected);
}

#[test]
fn the_docs_subcommand_checks_without_writing() {
    let out = Command::new(provider_binary())
        .args(["docs", "--check", "--dir"])
        .arg(repo_root())
        .output()
        .expect("run the docs subcommand");
    let text = combined(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "`terraform-provider-hybrid docs --check` reports drift (run `make docs`):\n{text}"
    );

    // A directory with stale pages: exit 1 and the instruction to regenerate.
    let scratch = tempfile::tempdir().expect("tempdir");
    let out = Command::new(provider_binary())
        .args(["docs", "--check", "--dir"])
        .arg(scratch.path())
        .output()
        .expect("run the docs subcommand");
    let text = combined(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("docs/index.md is missing"), "{text}");
    assert!(text.contains("run `make docs`"), "{text}");

    let out = Command::new(provider_binary())
        .args(["docs", "--bogus"])
        .output()
        .expect("run the docs subcommand");
    assert_eq!(out.status.code(), Some(2));
    assert!(combined(&out).contains("usage: terraform-provider-hybrid docs"));
}
