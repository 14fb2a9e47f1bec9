//! The parts of `cargo metadata` that xtask uses: members, normal dependencies, targets.
//!
//! [`load`] runs cargo; [`parse`] is pure, so tidy's tests can feed it synthetic JSON.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, ensure};
use serde_json::Value;

/// The workspace as `cargo metadata` describes it.
#[derive(Debug)]
pub(crate) struct Workspace<'a> {
    /// Absolute path of the workspace root, as cargo prints it.
    pub(crate) root: &'a str,
    /// The workspace members, in cargo's order.
    pub(crate) packages: Vec<Package<'a>>,
}

/// One workspace member.
#[derive(Debug)]
pub(crate) struct Package<'a> {
    pub(crate) name: &'a str,
    /// Absolute path of the member's `Cargo.toml`.
    pub(crate) manifest_path: &'a str,
    /// Package names of the normal (not dev, not build) dependencies, optional ones included.
    pub(crate) normal_deps: Vec<&'a str>,
    pub(crate) has_benches: bool,
    pub(crate) has_doctests: bool,
    /// Whether the package has a library target.
    pub(crate) has_lib: bool,
    /// The names of the package's example targets.
    pub(crate) examples: Vec<&'a str>,
}

/// Runs `cargo metadata` for the workspace at `root`.
///
/// `--no-deps` is enough: the declared dependencies of each member are listed either way, and
/// skipping resolution keeps the call fast and offline.
pub(crate) fn load(cargo: &OsStr, root: &Path) -> Result<Value> {
    let output = Command::new(cargo)
        .current_dir(root)
        .args(["metadata", "--format-version", "1", "--no-deps", "--locked"])
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run `cargo metadata`")?;
    ensure!(output.status.success(), "`cargo metadata` failed ({})", output.status);
    serde_json::from_slice(&output.stdout).context("`cargo metadata` printed invalid JSON")
}

/// Picks the workspace members out of `cargo metadata` JSON.
///
/// # Errors
///
/// When a field that cargo always prints is missing or has the wrong type.
pub(crate) fn parse(metadata: &Value) -> Result<Workspace<'_>> {
    let root = str_field(metadata, "workspace_root")?;
    let members = field(metadata, "workspace_members")?
        .as_array()
        .context("`workspace_members` is not an array")?;
    let member_ids: Vec<&str> = members.iter().filter_map(Value::as_str).collect();
    let all = field(metadata, "packages")?.as_array().context("`packages` is not an array")?;
    let mut packages = Vec::new();
    for package in all {
        if !member_ids.contains(&str_field(package, "id")?) {
            continue;
        }
        let name = str_field(package, "name")?;
        let context = || format!("package `{name}`");
        let mut normal_deps = Vec::new();
        for dep in array_field(package, "dependencies").with_context(context)? {
            // Cargo prints `"kind": null` for normal dependencies, "dev" or "build" otherwise.
            if field(dep, "kind").with_context(context)?.is_null() {
                normal_deps.push(str_field(dep, "name").with_context(context)?);
            }
        }
        let mut has_benches = false;
        let mut has_doctests = false;
        let mut has_lib = false;
        let mut examples = Vec::new();
        for target in array_field(package, "targets").with_context(context)? {
            let kinds = array_field(target, "kind").with_context(context)?;
            has_benches |= kinds.iter().any(|kind| kind == "bench");
            has_lib |= kinds.iter().any(|kind| kind == "lib");
            if kinds.iter().any(|kind| kind == "example") {
                examples.push(str_field(target, "name").with_context(context)?);
            }
            has_doctests |= target.get("doctest").and_then(Value::as_bool).unwrap_or(false);
        }
        packages.push(Package {
            name,
            manifest_path: str_field(package, "manifest_path")?,
            normal_deps,
            has_benches,
            has_doctests,
            has_lib,
            examples,
        });
    }
    Ok(Workspace { root, packages })
}

fn field<'a>(value: &'a Value, key: &str) -> Result<&'a Value> {
    value.get(key).with_context(|| format!("`cargo metadata`: missing field `{key}`"))
}

fn str_field<'a>(value: &'a Value, key: &str) -> Result<&'a str> {
    field(value, key)?
        .as_str()
        .with_context(|| format!("`cargo metadata`: `{key}` is not a string"))
}

fn array_field<'a>(value: &'a Value, key: &str) -> Result<&'a Vec<Value>> {
    field(value, key)?
        .as_array()
        .with_context(|| format!("`cargo metadata`: `{key}` is not an array"))
}
