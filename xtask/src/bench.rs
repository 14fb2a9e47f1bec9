//! `cargo xtask bench`: runs the bench targets in release, then gathers the ratios they measured
//! (D48) into a table with pass or fail, written as JSON to `target/bench-summary.json`; with
//! `--compare FILE`, it also prints how each ratio changed against a summary saved before.
//!
//! Each bench (`harness = false`) measures its ratios within one run and, when the environment
//! variable [`RESULTS_ENV`] names a folder, writes them there as `<bench>.json`
//! (`compactor_testkit::workload::report`, whose `TARGETS` table holds every target). A missed
//! target, a missing ratio or a failed bench fails the task. The end-to-end bench runs the
//! testkit's server binary in its own process (D33), so that binary is built in release first.
//! The comparison with `async-openai` is the package `benches/peer-decode`, a workspace of its
//! own so that no test or lint build compiles the peer's crates: it is built in release into the
//! same `target/` and run after the bench targets, whenever `compactor-client` is in scope.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};

use crate::{BenchMode, Ctx, Scope, metadata, run, show};

/// The folder the benches write their ratios to (`compactor_testkit::workload::BENCH_RESULTS_ENV`).
const RESULTS_ENV: &str = "COMPACTOR_BENCH_RESULTS";

/// Every ratio of D48: the package whose bench measures it, and its name. The targets are in
/// `TARGETS` of `crates/compactor-testkit/src/workload.rs`; a test checks that the two lists and
/// D48 name the same ratios.
pub(crate) const EXPECTED: &[(&str, &str)] = &[
    ("compactor-engine", "v2_prepare_install_vs_to_vec"),
    ("compactor-engine", "trim_estimate_100k_vs_10k"),
    ("compactor-engine", "o200k_count_10k_vs_to_vec"),
    ("compactor-engine", "cached_estimate_10k_vs_to_vec"),
    ("compactor-client", "sse_decode_vs_serde_value"),
    ("compactor-client", "websocket_decode_vs_serde_value"),
    ("compactor-client", "sse_decode_vs_async_openai"),
    ("compactor-client", "ws_turn_time_vs_to_vec"),
    ("compactor-client", "ws_turn_memory_vs_history_json"),
    ("compactor-testkit", "request_parse_vs_derived"),
    ("compactor-core", "e2e_ws_wall_vs_serialize_transfer"),
    ("compactor-core", "e2e_ws_client_cpu_vs_to_vec"),
    ("compactor-core", "e2e_ws_peak_memory_vs_history_json"),
    ("compactor-core", "e2e_http_wall_vs_serialize_transfer"),
    ("compactor-core", "e2e_http_client_cpu_vs_to_vec"),
    ("compactor-core", "e2e_http_peak_memory_vs_history_json"),
    ("compactor-core", "soak_ws_client_cpu_vs_to_vec_recorded"),
    ("compactor-core", "soak_ws_peak_memory_vs_final_history_json"),
    ("compactor-core", "soak_ws_rollout_bytes_per_turn_last_vs_first_100"),
    ("compactor-core", "soak_http_client_cpu_vs_to_vec_recorded"),
    ("compactor-core", "soak_http_peak_memory_vs_final_history_json"),
    ("compactor-core", "soak_http_rollout_bytes_per_turn_last_vs_first_100"),
];

/// The bench-only package that measures the Rust peer, and the package whose code it measures.
const PEER_MANIFEST: &str = "benches/peer-decode/Cargo.toml";
const PEER_SCOPE: &str = "compactor-client";

/// The package that builds the server the end-to-end bench talks to.
const SERVER_PACKAGE: &str = "compactor-testkit";

/// One measured ratio, as a bench reported it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ratio {
    pub(crate) bench: String,
    pub(crate) name: String,
    pub(crate) value: f64,
    /// `at_most` or `at_least`.
    pub(crate) bound: String,
    pub(crate) target: f64,
    pub(crate) details: String,
}

impl Ratio {
    pub(crate) fn passes(&self) -> bool {
        match self.bound.as_str() {
            "at_most" => self.value <= self.target,
            "at_least" => self.value >= self.target,
            _ => false,
        }
    }

    fn target_text(&self) -> String {
        let sign = if self.bound == "at_least" { ">=" } else { "<=" };
        format!("{sign} {}x", self.target)
    }
}

pub(crate) fn bench(
    ctx: &Ctx,
    scope: &Scope,
    mode: BenchMode,
    compare: Option<&Path>,
    extra: &[String],
) -> Result<()> {
    // Read the saved summary first: a wrong path fails before a long run, not after it.
    let saved = match compare {
        Some(path) => {
            let text = fs::read_to_string(path).with_context(|| {
                format!("cannot read the summary to compare with, {}", path.display())
            })?;
            let json: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", path.display()))?;
            Some((path, json))
        }
        None => None,
    };
    let metadata = ctx.workspace_metadata()?;
    let workspace = metadata::parse(&metadata)?;
    scope.check(&workspace)?;
    // `--bench '*'` selects the bench targets only; without it cargo would also build every
    // library and binary with the release profile and run their (empty) bench harnesses.
    // With no bench target in scope cargo rejects the pattern, so there is nothing to do.
    if !workspace.packages.iter().any(|p| p.has_benches && scope.includes(p.name)) {
        println!("\n==> cargo bench: no bench targets in scope, nothing to do");
        return Ok(());
    }
    let mut cmd = ctx.cargo(&["bench"]);
    cmd.args(scope.cargo_args()).args(["--bench", "*", "--locked"]);
    let target_dir = metadata
        .get("target_directory")
        .and_then(Value::as_str)
        .map_or_else(|| ctx.root.join("target"), PathBuf::from);
    let peer = scope.includes(PEER_SCOPE);
    if mode == BenchMode::NoRun {
        cmd.arg("--no-run");
        if !extra.is_empty() {
            cmd.arg("--").args(extra);
        }
        run(cmd)?;
        if peer {
            run(peer_command(ctx, &target_dir, &["build"]))?;
        }
        return Ok(());
    }
    let expected: Vec<&str> = EXPECTED
        .iter()
        .filter(|(package, _)| scope.includes(package))
        .map(|(_, name)| *name)
        .collect();
    if expected.iter().any(|name| name.starts_with("e2e_")) {
        run(ctx.cargo(&[
            "build",
            "--release",
            "--locked",
            "-p",
            SERVER_PACKAGE,
            "--bin",
            SERVER_PACKAGE,
        ]))?;
    }
    let results = target_dir.join("bench-results");
    if results.exists() {
        fs::remove_dir_all(&results)
            .with_context(|| format!("cannot clear {}", results.display()))?;
    }
    fs::create_dir_all(&results).with_context(|| format!("cannot create {}", results.display()))?;
    // Every bench runs even when one misses its target, so the table is complete.
    cmd.arg("--no-fail-fast").env(RESULTS_ENV, &results);
    if !extra.is_empty() {
        cmd.arg("--").args(extra);
    }
    let shown = show(&cmd);
    println!("\n==> {shown}");
    let mut status = cmd.status().with_context(|| format!("cannot start `{shown}`"))?;
    if peer {
        let mut cmd = peer_command(ctx, &target_dir, &["run"]);
        cmd.env(RESULTS_ENV, &results);
        let shown = show(&cmd);
        println!("\n==> {shown}");
        let peer_status = cmd.status().with_context(|| format!("cannot start `{shown}`"))?;
        if !peer_status.success() {
            status = peer_status;
        }
    }

    let mut ratios = read_results(&results)?;
    // The order of D48; ratios nobody expects go last.
    ratios.sort_by_key(|ratio| {
        EXPECTED.iter().position(|(_, name)| *name == ratio.name).unwrap_or(EXPECTED.len())
    });
    let summary = summary(&ratios, &expected, status.success());
    println!(
        "\n==> bench summary (targets of D48 in docs/decisions.md, ratios measured within one run)"
    );
    print!("{}", table(&ratios, &expected));
    let path = target_dir.join("bench-summary.json");
    fs::write(&path, format!("{summary:#}\n"))
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!("written to {}", path.display());
    if let Some((saved_path, saved)) = &saved {
        println!("\n==> change against {}", saved_path.display());
        print!("{}", comparison(saved, &summary));
    }
    ensure!(status.success(), "a bench failed ({status})");
    if summary["pass"] != json!(true) {
        bail!("a D48 target is missed or was not measured (see the table above)");
    }
    Ok(())
}

/// `cargo build` or `cargo run` of the peer package in release, into the workspace's target
/// folder (its dependencies shared with the benches where they resolve alike).
fn peer_command(ctx: &Ctx, target_dir: &Path, verb: &[&str]) -> std::process::Command {
    let mut cmd = ctx.cargo(verb);
    cmd.args(["--release", "--locked", "--manifest-path"])
        .arg(ctx.root.join(PEER_MANIFEST))
        .arg("--target-dir")
        .arg(target_dir);
    cmd
}

/// How each ratio of `current` changed against `saved` (both `bench-summary.json` documents):
/// one line per ratio with both values, the change in percent, and whether it moved toward its
/// target (`better`), away from it (`worse`) or stayed within 2 % (`same`); ratios that only one
/// side has are listed as such.
pub(crate) fn comparison(saved: &Value, current: &Value) -> String {
    let records = |summary: &Value| -> Vec<(String, f64, String)> {
        summary
            .get("ratios")
            .and_then(Value::as_array)
            .map(|ratios| {
                ratios
                    .iter()
                    .filter_map(|ratio| {
                        Some((
                            ratio.get("name")?.as_str()?.to_owned(),
                            ratio.get("value")?.as_f64()?,
                            ratio.get("bound").and_then(Value::as_str).unwrap_or("").to_owned(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let (old, new) = (records(saved), records(current));
    let mut rows = vec![[
        "ratio".to_owned(),
        "saved".to_owned(),
        "now".to_owned(),
        "change".to_owned(),
        String::new(),
    ]];
    for (name, value, bound) in &new {
        let Some((_, before, _)) = old.iter().find(|(old_name, _, _)| old_name == name) else {
            rows.push([name.clone(), "-".into(), format!("{value:.2}x"), "-".into(), "new".into()]);
            continue;
        };
        let change = if *before == 0.0 { 0.0 } else { (value - before) / before * 100.0 };
        let verdict = if change.abs() < 2.0 {
            "same"
        } else if (bound == "at_least") == (change > 0.0) {
            "better"
        } else {
            "worse"
        };
        rows.push([
            name.clone(),
            format!("{before:.2}x"),
            format!("{value:.2}x"),
            format!("{change:+.1}%"),
            verdict.to_owned(),
        ]);
    }
    for (name, before, _) in &old {
        if !new.iter().any(|(new_name, _, _)| new_name == name) {
            rows.push([
                name.clone(),
                format!("{before:.2}x"),
                "-".into(),
                "-".into(),
                "gone".into(),
            ]);
        }
    }
    columns(&rows, true)
}

/// The ratios of every `<bench>.json` in `dir`, in file name order.
fn read_results(dir: &Path) -> Result<Vec<Ratio>> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    let mut ratios = Vec::new();
    for file in files {
        let text =
            fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
        let json: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", file.display()))?;
        ratios.extend(parse_results(&json).with_context(|| format!("in {}", file.display()))?);
    }
    Ok(ratios)
}

/// The ratios of one bench's results file.
pub(crate) fn parse_results(json: &Value) -> Result<Vec<Ratio>> {
    let bench = json.get("bench").and_then(Value::as_str).context("no `bench` name")?;
    let records = json.get("ratios").and_then(Value::as_array).context("no `ratios` array")?;
    records
        .iter()
        .map(|record| {
            let text = |key: &str| {
                record
                    .get(key)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .with_context(|| format!("a ratio without `{key}`"))
            };
            let number = |key: &str| {
                record
                    .get(key)
                    .and_then(Value::as_f64)
                    .with_context(|| format!("a ratio without `{key}`"))
            };
            Ok(Ratio {
                bench: bench.to_owned(),
                name: text("name")?,
                value: number("value")?,
                bound: text("bound")?,
                target: number("target")?,
                details: text("details").unwrap_or_default(),
            })
        })
        .collect()
}

/// The JSON summary: every ratio with its verdict, the expected ones that are missing, and
/// whether everything passed.
pub(crate) fn summary(ratios: &[Ratio], expected: &[&str], benches_succeeded: bool) -> Value {
    let missing: Vec<&str> = expected
        .iter()
        .copied()
        .filter(|name| !ratios.iter().any(|ratio| ratio.name == *name))
        .collect();
    let pass = benches_succeeded && missing.is_empty() && ratios.iter().all(Ratio::passes);
    let records: Vec<Value> = ratios
        .iter()
        .map(|ratio| {
            json!({
                "bench": ratio.bench,
                "name": ratio.name,
                "value": (ratio.value * 1000.0).round() / 1000.0,
                "bound": ratio.bound,
                "target": ratio.target,
                "pass": ratio.passes(),
                "details": ratio.details,
            })
        })
        .collect();
    json!({
        "pass": pass,
        "benches_succeeded": benches_succeeded,
        "ratios": records,
        "missing": missing,
    })
}

/// The table printed at the end: one row per ratio, then one per missing ratio.
pub(crate) fn table(ratios: &[Ratio], expected: &[&str]) -> String {
    let mut rows = vec![[
        "ratio".to_owned(),
        "measured".to_owned(),
        "target".to_owned(),
        "result".to_owned(),
        "details".to_owned(),
    ]];
    for ratio in ratios {
        rows.push([
            ratio.name.clone(),
            format!("{:.2}x", ratio.value),
            ratio.target_text(),
            if ratio.passes() { "PASS" } else { "FAIL" }.to_owned(),
            ratio.details.clone(),
        ]);
    }
    for name in expected.iter().filter(|name| !ratios.iter().any(|ratio| ratio.name == **name)) {
        rows.push([
            (*name).to_owned(),
            "-".to_owned(),
            "-".to_owned(),
            "MISSING".to_owned(),
            "the bench did not report it".to_owned(),
        ]);
    }
    columns(&rows, false)
}

#[cfg(test)]
mod tests;

/// `rows` as text columns two spaces apart, each as wide as its widest cell: the first column
/// left-aligned, the second right-aligned, the third and fourth right-aligned when `numbers` and
/// left-aligned otherwise; the last column as it is, and no trailing spaces.
fn columns(rows: &[[String; 5]], numbers: bool) -> String {
    let widths: Vec<usize> =
        (0..4).map(|column| rows.iter().map(|row| row[column].len()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in rows {
        let (w0, w1, w2, w3) = (widths[0], widths[1], widths[2], widths[3]);
        let line = if numbers {
            format!(
                "{:<w0$}  {:>w1$}  {:>w2$}  {:>w3$}  {}",
                row[0], row[1], row[2], row[3], row[4]
            )
        } else {
            format!(
                "{:<w0$}  {:>w1$}  {:<w2$}  {:<w3$}  {}",
                row[0], row[1], row[2], row[3], row[4]
            )
        };
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
