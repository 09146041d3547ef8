//! The provider schema as Terraform sees it is checked in (schemas/provider.json), so every
//! schema change shows up as a diff in review. Regenerate with `UPDATE_SCHEMAS=1 make testacc`.

use crate::harness::{repo_root, Workspace};

#[test]
fn provider_schema_matches_the_checked_in_copy() {
    let ws = Workspace::new("schema");
    ws.config("provider \"hybrid\" {}\n");
    let out = ws.run(&["providers", "schema", "-json"]);
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with('{'))
        .expect("schema JSON");
    let schema: serde_json::Value = serde_json::from_str(line).expect("valid JSON");
    let pretty = format!(
        "{}\n",
        serde_json::to_string_pretty(&schema).expect("serialise")
    );
    let path = repo_root().join("schemas/provider.json");
    if std::env::var_os("UPDATE_SCHEMAS").is_some() {
        std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        std::fs::write(&path, &pretty).expect("write schema");
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == pretty,
        "schemas/provider.json differs from the provider's schema; run `UPDATE_SCHEMAS=1 make testacc` and review the diff"
    );
}
