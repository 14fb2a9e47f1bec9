//! Tests of `cargo xtask fuzz`'s argument parsing and its reading of libFuzzer's output.

use super::{FuzzArgs, TARGETS, executions, parse};

fn args(words: &[&str]) -> Vec<String> {
    words.iter().map(|word| (*word).to_owned()).collect()
}

fn all_targets() -> Vec<String> {
    TARGETS.iter().map(|target| (*target).to_owned()).collect()
}

#[test]
fn parses_seconds_and_targets() {
    let check =
        |words: &[&str], expected: FuzzArgs| assert_eq!(parse(&args(words)).unwrap(), expected);
    check(&[], FuzzArgs { seconds: 60, targets: all_targets() });
    check(&["--seconds", "5"], FuzzArgs { seconds: 5, targets: all_targets() });
    check(
        &["rollout_reader", "--seconds", "2", "sse_decoder", "rollout_reader"],
        FuzzArgs { seconds: 2, targets: args(&["rollout_reader", "sse_decoder"]) },
    );
}

#[test]
fn rejects_bad_arguments() {
    for (words, message) in [
        (&["--seconds"][..], "`--seconds` needs a number"),
        (&["--seconds", "soon"], "`--seconds soon`: not a whole number"),
        (&["--seconds", "0"], "`--seconds` must be at least 1"),
        (&["-p", "x"], "unexpected argument `-p` for `fuzz`"),
        (&["nope"], "unexpected argument `nope` for `fuzz`"),
    ] {
        let error = format!("{:#}", parse(&args(words)).unwrap_err());
        assert!(error.starts_with(message), "{words:?}: {error}");
    }
}

#[test]
fn reads_the_execution_count() {
    let stats = "#1048576\tpulse  cov: 812 ft: 2301 corp: 310/9Kb exec/s: 17476 rss: 61Mb\n\
                 Done 1203331 runs in 61 second(s)\n\
                 stat::number_of_executed_units: 1203331\n\
                 stat::average_exec_per_sec:     19726\n";
    assert_eq!(executions(stats), Some(1_203_331));
    assert_eq!(executions("Done 42 runs in 1 second(s)\n"), Some(42));
    assert_eq!(executions("INFO: Seed: 1\n"), None);
}

#[test]
fn the_fuzz_project_lists_the_targets_and_stays_out_of_the_workspace() {
    let root = crate::project_root();
    let manifest = std::fs::read_to_string(root.join("fuzz/Cargo.toml")).unwrap();
    assert!(manifest.lines().any(|line| line == "[workspace]"), "fuzz/ is a workspace of its own");
    assert!(manifest.contains("cargo-fuzz = true"));
    for target in TARGETS {
        assert!(manifest.contains(&format!("name = \"{target}\"")), "{target} in fuzz/Cargo.toml");
        let source = root.join("fuzz/fuzz_targets").join(format!("{target}.rs"));
        assert!(source.is_file(), "{}", source.display());
        assert!(root.join("fuzz/seeds").join(target).is_dir(), "seeds of {target}");
    }
    let bins = manifest.matches("[[bin]]").count();
    assert_eq!(bins, TARGETS.len(), "every target of fuzz/Cargo.toml runs in `cargo xtask fuzz`");
    let root_manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    assert!(!root_manifest.contains("\"fuzz\""), "the root workspace must not list fuzz/");
}
