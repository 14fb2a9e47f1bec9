//! Tests of the packaging patches and of example discovery on synthetic `cargo metadata`.

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::patch_args;
use crate::metadata;

fn member(name: &str, kinds: &[&[&str]]) -> Value {
    let targets: Vec<Value> = kinds
        .iter()
        .enumerate()
        .map(|(index, kinds)| json!({"name": format!("{name}-{index}"), "kind": kinds}))
        .collect();
    json!({
        "id": format!("{name} 0.1.0"),
        "name": name,
        "manifest_path": format!("/ws/crates/{name}/Cargo.toml"),
        "dependencies": [],
        "targets": targets,
    })
}

fn workspace() -> Value {
    let packages = vec![
        member("compactor-protocol", &[&["lib"]]),
        member("compactor-core", &[&["lib"], &["example"], &["bench"]]),
        member("compactor-cli", &[&["bin"]]),
        member("compactor-tests", &[&["lib"], &["test"]]),
        member("xtask", &[&["bin"]]),
    ];
    let ids: Vec<Value> = packages.iter().map(|package| package["id"].clone()).collect();
    json!({"workspace_root": "/ws", "workspace_members": ids, "packages": packages})
}

#[test]
fn every_packaged_library_is_patched_in_and_nothing_else() {
    let metadata = workspace();
    let workspace = metadata::parse(&metadata).unwrap();
    assert_eq!(
        patch_args(&workspace),
        [
            "--config",
            "patch.crates-io.compactor-protocol.path=\"/ws/crates/compactor-protocol\"",
            "--config",
            "patch.crates-io.compactor-core.path=\"/ws/crates/compactor-core\"",
        ]
    );
}

#[test]
fn examples_are_found_by_target_kind() {
    let metadata = workspace();
    let workspace = metadata::parse(&metadata).unwrap();
    let examples: Vec<(&str, Vec<&str>)> = workspace
        .packages
        .iter()
        .map(|package| (package.name, package.examples.clone()))
        .filter(|(_, examples)| !examples.is_empty())
        .collect();
    assert_eq!(examples, [("compactor-core", vec!["compactor-core-1"])]);
}
