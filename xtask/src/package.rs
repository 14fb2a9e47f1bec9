//! `cargo xtask examples` and `cargo xtask package`: what a user of one crate sees.
//!
//! - `examples` runs every example target of every member with `cargo run --example`; each
//!   must exit 0 (they use only loopback servers and files inside their crate).
//! - `package` runs `cargo package` for every member but [`UNPACKAGED`], so that each crate
//!   builds from its packaged form (D94 in docs/decisions.md). The members keep `publish = false`,
//!   and cargo leaves unpublishable crates out of the local registry it packages a workspace
//!   against, so every workspace library is patched in for crates.io with `--config`: a
//!   packaged crate then finds its Compactor dependencies at the version its manifest names.

use anyhow::Result;

use crate::metadata::{self, Workspace};
use crate::{Ctx, run};

/// Members that are not meant to be packaged: automation and the cross-crate test suite.
pub(crate) const UNPACKAGED: [&str; 2] = ["xtask", "compactor-tests"];

pub(crate) fn examples(ctx: &Ctx) -> Result<()> {
    let metadata = ctx.workspace_metadata()?;
    let workspace = metadata::parse(&metadata)?;
    let mut ran = 0;
    for package in &workspace.packages {
        for example in &package.examples {
            run(ctx.cargo(&[
                "run",
                "--locked",
                "--quiet",
                "-p",
                package.name,
                "--example",
                example,
            ]))?;
            ran += 1;
        }
    }
    println!("\nxtask examples: {ran} examples ran and exited 0");
    Ok(())
}

pub(crate) fn package(ctx: &Ctx) -> Result<()> {
    let metadata = ctx.workspace_metadata()?;
    let workspace = metadata::parse(&metadata)?;
    // All features, so that feature-gated code (the OTLP sink) is built from the package too.
    let mut cmd = ctx.cargo(&["package", "--workspace", "--all-features", "--allow-dirty"]);
    for excluded in UNPACKAGED {
        cmd.args(["--exclude", excluded]);
    }
    cmd.args(patch_args(&workspace));
    run(cmd)?;
    println!("\nxtask package: every crate built from its packaged form");
    Ok(())
}

/// `--config patch.crates-io.NAME.path="DIR"` for every packaged library of the workspace.
pub(crate) fn patch_args(workspace: &Workspace<'_>) -> Vec<String> {
    workspace
        .packages
        .iter()
        .filter(|package| !UNPACKAGED.contains(&package.name) && package.has_lib)
        .flat_map(|package| {
            let dir =
                package.manifest_path.trim_end_matches("Cargo.toml").trim_end_matches(['/', '\\']);
            ["--config".to_owned(), format!("patch.crates-io.{}.path={dir:?}", package.name)]
        })
        .collect()
}

#[cfg(test)]
mod tests;
