//! How far the demo's token estimates are from the usage the testkit's reference model reports
//! (counted with o200k), per counter (see D125 in docs/decisions.md): the demo runs three times,
//! counting with `Bytes4` plain, `Bytes4` calibrated and `O200k`, and its summary's `estimates`
//! line (mean and largest error over every request) is printed for each.
//!
//! It reports figures, not ratios: the bounds are checked by the tests. The embedded model
//! refuses requests over the window as it counts them (o200k), and `Bytes4`, which undercounts
//! the demo's logs, sends one: the refused compaction request goes again without its oldest
//! items (D160). A plain `Bytes4` run that fails anyway is reported with its error. The bench
//! fails when a demo run prints no estimates or when a calibrated or exact run fails.

#![allow(clippy::print_stdout, reason = "a bench reports on the terminal")]
#![allow(clippy::expect_used, clippy::unwrap_used, reason = "a bench fails loudly")]

use std::process::{Command, ExitCode, Stdio};

/// The counters measured: a label, `[tokens] counter` and `[tokens] calibration`. Only the first
/// may fail.
const RUNS: [(&str, &str, bool); 3] =
    [("bytes4", "bytes4", false), ("bytes4 calibrated", "bytes4", true), ("o200k", "o200k", true)];

fn main() -> ExitCode {
    let dir = tempfile::tempdir().unwrap();
    println!("demo estimate errors against reported o200k usage");
    let mut code = ExitCode::SUCCESS;
    for (run, (label, counter, calibration)) in RUNS.into_iter().enumerate() {
        let config = dir.path().join(format!("compactor-{run}.toml"));
        std::fs::write(
            &config,
            format!("[tokens]\ncounter = \"{counter}\"\ncalibration = {calibration}\n"),
        )
        .unwrap();
        let out = dir.path().join(format!("out-{run}"));
        let output = Command::new(env!("CARGO_BIN_EXE_compactor"))
            .arg("demo")
            .arg("--config")
            .arg(&config)
            .arg("--out")
            .arg(&out)
            .current_dir(dir.path())
            .env_remove("RUST_LOG")
            .env_remove("COMPACTOR_ROLLOUT_TRACE_ROOT")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let Some(line) = stdout.lines().find(|line| line.trim_start().starts_with("estimates"))
        else {
            println!("FAILED: the demo with {label} printed no estimates:\n{stdout}\n{stderr}");
            return ExitCode::FAILURE;
        };
        let figures = line.trim_start().trim_start_matches("estimates").trim();
        if output.status.success() {
            println!("  {label:<18} {figures}");
            continue;
        }
        let error = stderr.lines().rfind(|line| !line.trim().is_empty()).unwrap_or_default();
        println!("  {label:<18} {figures}; the demo failed: {error}");
        if run > 0 {
            code = ExitCode::FAILURE;
        }
    }
    code
}
