//! How far the demo's token estimates are from the usage the testkit's reference model reports
//! (counted with o200k), per counter (see D125 in docs/decisions.md): the demo runs three times,
//! counting with `Bytes4` plain, `Bytes4` calibrated and `O200k`, and its summary's `estimates`
//! line (mean and largest error over every request) is printed for each.
//!
//! It reports figures, not ratios: the bounds are checked by the tests. It fails only when a
//! demo run fails.

#![allow(clippy::print_stdout, reason = "a bench reports on the terminal")]
#![allow(clippy::expect_used, clippy::unwrap_used, reason = "a bench fails loudly")]

use std::process::{Command, ExitCode, Stdio};

/// The counters measured: a label, `[tokens] counter` and `[tokens] calibration`.
const RUNS: [(&str, &str, bool); 3] =
    [("bytes4", "bytes4", false), ("bytes4 calibrated", "bytes4", true), ("o200k", "o200k", true)];

fn main() -> ExitCode {
    let dir = tempfile::tempdir().unwrap();
    println!("demo estimate errors against reported o200k usage");
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
        if !output.status.success() {
            println!(
                "FAILED: the demo with {label} exited {}:\n{stdout}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
            return ExitCode::FAILURE;
        }
        let Some(line) = stdout.lines().find(|line| line.trim_start().starts_with("estimates"))
        else {
            println!("FAILED: the demo with {label} printed no estimates:\n{stdout}");
            return ExitCode::FAILURE;
        };
        let figures = line.trim_start().trim_start_matches("estimates").trim();
        println!("  {label:<18} {figures}");
    }
    ExitCode::SUCCESS
}
