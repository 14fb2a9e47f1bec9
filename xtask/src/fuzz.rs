//! `cargo xtask fuzz [--seconds N] [TARGET]...`: runs the cargo-fuzz targets of `fuzz/` on the
//! installed stable toolchain (`--sanitizer none`), each for N seconds (default 60), and reports
//! the executions of each.
//!
//! The fuzz project is a workspace of its own outside the root one, so nothing here touches the
//! normal build. cargo-fuzz is installed with `cargo install cargo-fuzz --locked` when absent
//! (this command only; CI never fuzzes). Each target grows its corpus in `fuzz/corpus/<target>`
//! (ignored by git) from the committed seeds in `fuzz/seeds/<target>`; a crash stops the run
//! and leaves its input in `fuzz/artifacts/<target>`, to be turned into a regression test.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail, ensure};

use crate::{Ctx, show};

/// The targets, in the order they run.
pub(crate) const TARGETS: [&str; 6] = [
    "sse_decoder",
    "websocket_events",
    "response_item_json",
    "response_item_oracle",
    "direct_items",
    "rollout_reader",
];

const DEFAULT_SECONDS: u64 = 60;

/// What `cargo xtask fuzz` was asked to do.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct FuzzArgs {
    pub(crate) seconds: u64,
    pub(crate) targets: Vec<String>,
}

/// Parses the arguments after `fuzz`.
pub(crate) fn parse(args: &[String]) -> Result<FuzzArgs> {
    let mut seconds = DEFAULT_SECONDS;
    let mut targets = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                let value = args.next().context("`--seconds` needs a number")?;
                seconds = value
                    .parse()
                    .with_context(|| format!("`--seconds {value}`: not a whole number"))?;
                ensure!(seconds > 0, "`--seconds` must be at least 1");
            }
            target if TARGETS.contains(&target) => {
                if !targets.iter().any(|known| known == target) {
                    targets.push(target.to_owned());
                }
            }
            other => {
                bail!("unexpected argument `{other}` for `fuzz` (targets: {})", TARGETS.join(", "))
            }
        }
    }
    if targets.is_empty() {
        targets = TARGETS.iter().map(|target| (*target).to_owned()).collect();
    }
    Ok(FuzzArgs { seconds, targets })
}

/// One target's run.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub(crate) target: String,
    pub(crate) executions: u64,
    pub(crate) seconds: u64,
}

/// The executions libFuzzer reports (`stat::number_of_executed_units`, or the `Done N runs`
/// line), from its output.
pub(crate) fn executions(output: &str) -> Option<u64> {
    let stat = output.lines().find_map(|line| {
        line.trim().strip_prefix("stat::number_of_executed_units:")?.trim().parse().ok()
    });
    stat.or_else(|| {
        output.lines().find_map(|line| {
            let rest = line.trim().strip_prefix("Done ")?;
            rest.split_whitespace().next()?.parse().ok()
        })
    })
}

/// Runs the targets.
pub(crate) fn fuzz(ctx: &Ctx, args: &FuzzArgs) -> Result<()> {
    ensure_cargo_fuzz(ctx)?;
    let fuzz_dir = ctx.root.join("fuzz");
    ensure!(fuzz_dir.join("Cargo.toml").is_file(), "{} has no Cargo.toml", fuzz_dir.display());
    let mut outcomes = Vec::new();
    for target in &args.targets {
        outcomes.push(run_target(ctx, &fuzz_dir, target, args.seconds)?);
    }
    println!("\nfuzz: every target ran without a crash");
    println!("{:<22} {:>14} {:>8} {:>12}", "target", "executions", "seconds", "exec/s");
    for outcome in &outcomes {
        println!(
            "{:<22} {:>14} {:>8} {:>12}",
            outcome.target,
            outcome.executions,
            outcome.seconds,
            outcome.executions / outcome.seconds.max(1)
        );
    }
    Ok(())
}

/// Installs cargo-fuzz when `cargo fuzz` is not there.
fn ensure_cargo_fuzz(ctx: &Ctx) -> Result<()> {
    let present = ctx
        .cargo(&["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if present {
        return Ok(());
    }
    println!("\nnote: cargo-fuzz is not installed; installing it (this command only)");
    crate::run(ctx.cargo(&["install", "cargo-fuzz", "--locked"]))
}

fn run_target(ctx: &Ctx, fuzz_dir: &Path, target: &str, seconds: u64) -> Result<Outcome> {
    let corpus = fuzz_dir.join("corpus").join(target);
    std::fs::create_dir_all(&corpus)
        .with_context(|| format!("cannot create {}", corpus.display()))?;
    let seeds = fuzz_dir.join("seeds").join(target);
    let mut cmd = ctx.cargo(&["fuzz", "run", "--sanitizer", "none", "--fuzz-dir"]);
    cmd.arg(fuzz_dir).arg(target).arg(&corpus);
    if seeds.is_dir() {
        cmd.arg(&seeds);
    }
    cmd.arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg("-print_final_stats=1")
        // A slow input is a finding too (an accidental quadratic path).
        .arg("-timeout=10");
    let output = run_captured(cmd)?;
    let executions = executions(&output)
        .with_context(|| format!("{target}: no execution count in libFuzzer's output"))?;
    Ok(Outcome { target: target.to_owned(), executions, seconds })
}

/// Runs `cmd`, printing a header and the tail of its output; fails, with the whole tail that
/// holds the crash report and the artifact path, unless it succeeds.
fn run_captured(mut cmd: Command) -> Result<String> {
    let shown = show(&cmd);
    println!("\n==> {shown}");
    let output = cmd.output().with_context(|| format!("cannot start `{shown}`"))?;
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    let lines: Vec<&str> = text.lines().collect();
    let from = if output.status.success() {
        lines.len().saturating_sub(12)
    } else {
        // From the crash report (a panic's message comes before libFuzzer's summary).
        lines
            .iter()
            .position(|line| line.contains("panicked at") || line.contains("ERROR: libFuzzer"))
            .unwrap_or_else(|| lines.len().saturating_sub(80))
    };
    for line in lines[from..].iter().take(200) {
        println!("{line}");
    }
    ensure!(output.status.success(), "`{shown}` failed ({}): see the output above", output.status);
    Ok(text)
}

#[cfg(test)]
mod tests;
