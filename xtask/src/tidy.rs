//! `cargo xtask tidy`: checks of the workspace's shape that neither rustc nor clippy make.
//!
//! - Layering (D1): a workspace crate depends, through normal dependencies, only on the
//!   workspace crates its row of [`LAYERS`] allows, and never on the external crates of
//!   [`FORBIDDEN_EXTERNAL`]. A crate missing from the table may depend on no workspace crate.
//! - Every member's `Cargo.toml` has `[lints] workspace = true` and inherits `edition` and
//!   `publish` from the workspace.
//! - Every folder under `crates/` is named in `ARCHITECTURE.md`.
//! - Every `.rs` file under `crates/*/src`, `tests/` and `xtask/src` opens with a `//!` comment.
//! - Every crate's `src/lib.rs` documentation has an `# Examples` section with a code block, so
//!   the first page of its documentation shows a runnable example.
//! - No `*.snap.new` or `*.pending-snap` file is left over from insta.
//! - Serde is derived only where [`SERDE_DERIVES`] allows it (D74 in docs/decisions.md).
//! - No text file outside `.ci/` cites a document outside the repository, an issue number, or a
//!   decision `D<N>` that `docs/decisions.md` does not define ([`citations`]).
//!
//! [`check`] is a pure function of the `cargo metadata` JSON and a file list, so the tests can
//! plant violations in a synthetic workspace; [`collect`] builds the file list from disk.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::metadata;

mod citations;

const PROTOCOL: &str = "compactor-protocol";
const CLIENT: &str = "compactor-client";
const ENGINE: &str = "compactor-engine";
const ANALYTICS: &str = "compactor-analytics";
const ROLLOUT_TRACE: &str = "compactor-rollout-trace";
const CORE: &str = "compactor-core";
const TESTKIT: &str = "compactor-testkit";
const CLI: &str = "compactor-cli";

/// Which workspace crates a crate may depend on.
enum Allowed {
    Only(&'static [&'static str]),
    Any,
}

/// The layer table of D1. A new crate gets a row here before it may depend on another.
const LAYERS: &[(&str, Allowed)] = &[
    // L0.
    (PROTOCOL, Allowed::Only(&[])),
    // L1: protocol only, never each other.
    (CLIENT, Allowed::Only(&[PROTOCOL])),
    (ENGINE, Allowed::Only(&[PROTOCOL])),
    (ANALYTICS, Allowed::Only(&[PROTOCOL])),
    (ROLLOUT_TRACE, Allowed::Only(&[PROTOCOL])),
    // The loopback server is used by core's tests and by the CLI, so it sits beside L1.
    (TESTKIT, Allowed::Only(&[PROTOCOL])),
    // L2.
    (CORE, Allowed::Only(&[PROTOCOL, CLIENT, ENGINE, ANALYTICS, ROLLOUT_TRACE])),
    // The binary.
    (CLI, Allowed::Only(&[PROTOCOL, CLIENT, ENGINE, ANALYTICS, ROLLOUT_TRACE, CORE, TESTKIT])),
    ("compactor-tests", Allowed::Any),
    ("xtask", Allowed::Any),
];

/// External crates that do I/O or need a runtime.
const RUNTIME_AND_IO: &[&str] = &["tokio", "reqwest", "hyper", "axum", "tokio-tungstenite"];

/// External crates a workspace crate must not depend on directly, with the reason.
const FORBIDDEN_EXTERNAL: &[(&str, &[&str], &str)] = &[
    (PROTOCOL, RUNTIME_AND_IO, "protocol holds types only: no tokio, no I/O"),
    (ENGINE, RUNTIME_AND_IO, "the engine is pure and synchronous: no tokio, no I/O"),
];

/// Where `Serialize` and `Deserialize` may be derived, by path prefix: protocol's wire and
/// persisted types, the record types of analytics and rollout-trace, and the schema of core's
/// config file, which is only read (D74). Unit-test files (`tests.rs`) are not checked.
const SERDE_DERIVES: &[(&str, &[&str])] = &[
    ("crates/compactor-protocol/src/", &["Serialize", "Deserialize"]),
    ("crates/compactor-analytics/src/", &["Serialize", "Deserialize"]),
    ("crates/compactor-rollout-trace/src/", &["Serialize", "Deserialize"]),
    ("crates/compactor-core/src/toml_config/schema.rs", &["Deserialize"]),
];

/// A file of the workspace, with its text when tidy reads it.
#[derive(Debug, Clone)]
pub(crate) struct File {
    /// Path relative to the workspace root, with `/` separators.
    pub(crate) path: String,
    /// The contents of a text file (valid UTF-8 without NUL bytes); empty otherwise.
    pub(crate) text: String,
}

/// Folders [`collect`] skips: version control, build output anywhere, the working corpora,
/// artifacts and coverage cargo-fuzz writes, and the demo's output folders (see `.gitignore`).
fn skipped(relative: &str, name: &str) -> bool {
    name == ".git"
        || name == "target"
        || matches!(relative, "fuzz/corpus" | "fuzz/artifacts" | "fuzz/coverage")
        || (!relative.contains('/') && name.starts_with("compactor-demo-"))
}

/// Lists every file under `root`, skipping the folders of [`skipped`].
///
/// # Errors
///
/// When a folder or a file cannot be read.
pub(crate) fn collect(root: &Path) -> Result<Vec<File>> {
    let mut files = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries =
            fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
            let path = entry.path();
            let file_type = entry.file_type()?;
            let name = entry.file_name();
            let Ok(relative) = path.strip_prefix(root) else { continue };
            let relative = relative.to_string_lossy().replace('\\', "/");
            if file_type.is_dir() {
                if !skipped(&relative, &name.to_string_lossy()) {
                    pending.push(path);
                }
                continue;
            }
            let bytes =
                fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let text = match String::from_utf8(bytes) {
                Ok(text) if !text.contains('\0') => text,
                Ok(_) | Err(_) => String::new(),
            };
            files.push(File { path: relative, text });
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// Returns every violation, sorted, one line each; an empty list means the workspace is tidy.
///
/// # Errors
///
/// When `metadata` is not the JSON of `cargo metadata --format-version 1`.
pub(crate) fn check(metadata: &Value, files: &[File]) -> Result<Vec<String>> {
    let workspace = metadata::parse(metadata)?;
    let mut violations = BTreeSet::new();
    let text_of = |path: &str| files.iter().find(|file| file.path == path).map(|f| &f.text);
    let members: Vec<&str> = workspace.packages.iter().map(|package| package.name).collect();

    for package in &workspace.packages {
        let name = package.name;
        let workspace_deps = package.normal_deps.iter().filter(|dep| members.contains(dep));
        match LAYERS.iter().find(|(crate_name, _)| *crate_name == name) {
            Some((_, Allowed::Any)) => {}
            Some((_, Allowed::Only(allowed))) => {
                for dep in workspace_deps.filter(|dep| !allowed.contains(dep)) {
                    let may = if allowed.is_empty() {
                        "it may depend on no workspace crate".to_owned()
                    } else {
                        format!("it may depend only on {}", allowed.join(", "))
                    };
                    violations.insert(format!("layering: {name} depends on {dep}; {may}"));
                }
            }
            None => {
                for dep in workspace_deps {
                    violations.insert(format!(
                        "layering: {name} depends on {dep} but has no row in the layer table \
                         (LAYERS in xtask/src/tidy.rs)"
                    ));
                }
            }
        }
        for (crate_name, forbidden, why) in FORBIDDEN_EXTERNAL {
            if *crate_name != name {
                continue;
            }
            for dep in package.normal_deps.iter().filter(|dep| forbidden.contains(dep)) {
                violations.insert(format!("layering: {name} depends on {dep}; {why}"));
            }
        }

        let manifest = package.manifest_path.replace('\\', "/");
        let manifest = manifest
            .strip_prefix(workspace.root)
            .map_or(manifest.as_str(), |relative| relative.trim_start_matches('/'));
        let Some(text) = text_of(manifest) else {
            violations.insert(format!("{manifest}: manifest of {name} not found"));
            continue;
        };
        let keys = true_keys(text);
        for (key, shown) in [
            ("lints.workspace", "[lints] workspace = true"),
            ("package.edition.workspace", "edition.workspace = true"),
            ("package.publish.workspace", "publish.workspace = true"),
        ] {
            if !keys.contains(key) {
                violations.insert(format!("{manifest}: missing `{shown}`"));
            }
        }
    }

    let crate_dirs: BTreeSet<&str> = files
        .iter()
        .filter_map(|file| {
            let mut parts = file.path.split('/');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("crates"), Some(dir), Some(_)) => Some(dir),
                _ => None,
            }
        })
        .collect();
    match text_of("ARCHITECTURE.md") {
        None => {
            violations.insert("ARCHITECTURE.md: missing".to_owned());
        }
        Some(architecture) => {
            for dir in crate_dirs.iter().filter(|dir| !mentions(architecture, dir)) {
                violations.insert(format!("crates/{dir}: not named in ARCHITECTURE.md"));
            }
        }
    }

    let decisions =
        text_of(citations::DECISIONS).map(|text| citations::decisions(text, &mut violations));
    for file in files {
        let path = file.path.as_str();
        if !path.starts_with(".ci/") {
            citations::check(path, &file.text, decisions.as_ref(), &mut violations);
        }
        if path.ends_with(".snap.new") || path.ends_with(".pending-snap") {
            violations.insert(format!(
                "{path}: leftover insta snapshot; accept or reject it with `cargo insta review`"
            ));
        }
        let parts: Vec<&str> = path.split('/').collect();
        let library_code = matches!(parts.as_slice(), ["crates", _, "src", ..])
            && path.ends_with(".rs")
            && !path.ends_with("/tests.rs");
        if library_code {
            let allowed = SERDE_DERIVES
                .iter()
                .find(|(prefix, _)| path.starts_with(prefix))
                .map_or(&[][..], |(_, derives)| *derives);
            for derive in serde_derives(&file.text).into_iter().filter(|d| !allowed.contains(d)) {
                violations.insert(format!(
                    "{path}: derives {derive}; serde is derived only in compactor-protocol, for the \
                     records of compactor-analytics and compactor-rollout-trace, and (Deserialize \
                     only) in core's src/toml_config/schema.rs (D74 in docs/decisions.md)"
                ));
            }
        }
        let needs_doc = matches!(
            parts.as_slice(),
            ["crates", _, "src", ..] | ["tests", ..] | ["xtask", "src", ..]
        );
        if let ["crates", _, "src", "lib.rs"] = parts.as_slice()
            && !has_doc_example(&file.text)
        {
            violations.insert(format!(
                "{path}: the crate documentation must show an example (a `//! # Examples` \
                 section with a code block)"
            ));
        }
        if needs_doc && path.ends_with(".rs") {
            let first = file.text.lines().map(str::trim).find(|line| !line.is_empty());
            if !first.is_some_and(|line| line.starts_with("//!")) {
                violations.insert(format!(
                    "{path}: the first line must be a `//!` comment saying what the module is for"
                ));
            }
        }
    }

    Ok(violations.into_iter().collect())
}

/// Whether the `//!` documentation of `text` has an `# Examples` heading followed by a code block.
fn has_doc_example(text: &str) -> bool {
    let doc = text.lines().map(str::trim).filter_map(|line| line.strip_prefix("//!"));
    let mut in_examples = false;
    for line in doc {
        let line = line.trim();
        if line.starts_with('#') {
            in_examples = line == "# Examples";
        } else if in_examples && line.starts_with("```") {
            return true;
        }
    }
    false
}

/// The serde traits `text` derives (`Serialize`, `Deserialize`, by any path), in order; derive
/// lists in `//` comments do not count.
fn serde_derives(text: &str) -> Vec<&'static str> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("derive(") {
        let line_start = rest[..at].rfind('\n').map_or(0, |newline| newline + 1);
        let commented = rest[line_start..at].trim_start().starts_with("//");
        let list = &rest[at + "derive(".len()..];
        let end = list.find(')').unwrap_or(list.len());
        if !commented {
            for name in list[..end].split(',') {
                let name = name.trim().rsplit("::").next().unwrap_or_default().trim();
                match name {
                    "Serialize" => found.push("Serialize"),
                    "Deserialize" => found.push("Deserialize"),
                    _ => {}
                }
            }
        }
        rest = &list[end..];
    }
    found
}

/// Whether `text` names `word` on its own, so `compactor-cli` is not found in `compactor-client`.
fn mentions(text: &str, word: &str) -> bool {
    let part_of_name = |c: char| c.is_alphanumeric() || c == '-' || c == '_';
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(part_of_name) && !after.is_some_and(part_of_name)
    })
}

/// The dotted keys whose value is `true` in a `Cargo.toml`, such as `lints.workspace` or
/// `package.edition.workspace`, whichever of the equivalent TOML spellings is used.
///
/// This is not a TOML parser: it understands `[table]` headers, `key = value` lines, one-line
/// inline tables and comments, and skips multi-line strings, which is all a manifest needs here.
fn true_keys(manifest: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let mut table = String::new();
    let mut in_multiline_string = false;
    for line in manifest.lines() {
        let delimiters = line.matches("\"\"\"").count() + line.matches("'''").count();
        if delimiters % 2 == 1 {
            in_multiline_string = !in_multiline_string;
            continue;
        }
        if in_multiline_string {
            continue;
        }
        let line = strip_comment(line).trim();
        if let Some(header) = line.strip_prefix('[') {
            table = dotted(header.trim_start_matches('[').trim_end_matches(']'));
            continue;
        }
        let Some((key, value)) = line.split_once('=') else { continue };
        let key = join(&table, &dotted(key));
        let value = value.trim();
        if let Some(inline) = value.strip_prefix('{').and_then(|v| v.strip_suffix('}')) {
            for pair in inline.split(',') {
                if let Some((inner, value)) = pair.split_once('=')
                    && value.trim() == "true"
                {
                    keys.insert(join(&key, &dotted(inner)));
                }
            }
        } else if value == "true" {
            keys.insert(key);
        }
    }
    keys
}

fn strip_comment(line: &str) -> &str {
    let mut open_quote = None;
    for (at, c) in line.char_indices() {
        match open_quote {
            Some(quote) if c == quote => open_quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => open_quote = Some(c),
            None if c == '#' => return &line[..at],
            None => {}
        }
    }
    line
}

/// `"edition" . workspace` -> `edition.workspace`.
fn dotted(key: &str) -> String {
    key.split('.').map(|part| part.trim().trim_matches(['"', '\''])).collect::<Vec<_>>().join(".")
}

fn join(table: &str, key: &str) -> String {
    if table.is_empty() { key.to_owned() } else { format!("{table}.{key}") }
}

#[cfg(test)]
mod tests;
