//! Tests of the command line and of how commands are shown.

use std::process::Command;

use pretty_assertions::assert_eq;

use crate::{BenchMode, Scope, Task, parse, show};

#[track_caller]
fn check(args: &str, expected: Result<Task, &str>) {
    let args: Vec<String> = args.split_whitespace().map(str::to_owned).collect();
    // Errors are compared by their first line: some go on with the help text.
    let actual = parse(&args).map_err(|err| err.to_string().lines().next().map(str::to_owned));
    assert_eq!(actual, expected.map_err(|err| Some(err.to_owned())));
}

fn packages(names: &[&str]) -> Scope {
    Scope::Packages(names.iter().map(|name| (*name).to_owned()).collect())
}

#[test]
fn tasks() {
    check("test", Ok(Task::Test(Scope::Workspace)));
    check("lint", Ok(Task::Lint));
    check("fmt", Ok(Task::Fmt));
    check("fmt-check", Ok(Task::FmtCheck));
    check("doc", Ok(Task::Doc));
    check("tidy", Ok(Task::Tidy));
    check("ci", Ok(Task::Ci));
    check("examples", Ok(Task::Examples));
    check("package", Ok(Task::Package));
    check("package -p compactor-core", Err("`package` does not take `-p`"));
    check("--help", Ok(Task::Help));
    check("", Err("no task given"));
    check("tets", Err("unknown task `tets`"));
}

#[test]
fn packages_and_bench_flags() {
    check("test -p compactor-engine", Ok(Task::Test(packages(&["compactor-engine"]))));
    check("test --package a -p b", Ok(Task::Test(packages(&["a", "b"]))));
    check("test -p", Err("`-p` needs a package name"));
    check("lint -p compactor-engine", Err("`lint` does not take `-p`"));
    check("test --no-run", Err("unexpected argument `--no-run` for `test`"));
    check(
        "bench",
        Ok(Task::Bench {
            scope: Scope::Workspace,
            mode: BenchMode::Run,
            compare: None,
            extra: Vec::new(),
        }),
    );
    check(
        "bench --compare old/bench-summary.json -p compactor-client",
        Ok(Task::Bench {
            scope: packages(&["compactor-client"]),
            mode: BenchMode::Run,
            compare: Some("old/bench-summary.json".into()),
            extra: Vec::new(),
        }),
    );
    check("bench --compare", Err("`--compare` needs a bench-summary.json file"));
    check("test --compare x", Err("unexpected argument `--compare` for `test`"));
    check(
        "bench -p compactor-engine --no-run -- trim --sample-count 3",
        Ok(Task::Bench {
            scope: packages(&["compactor-engine"]),
            mode: BenchMode::NoRun,
            compare: None,
            extra: ["trim", "--sample-count", "3"].map(str::to_owned).to_vec(),
        }),
    );
}

#[test]
fn scope_arguments() {
    assert_eq!(Scope::Workspace.cargo_args(), ["--workspace"]);
    assert_eq!(packages(&["a", "b"]).cargo_args(), ["-p", "a", "-p", "b"]);
}

#[test]
fn commands_are_shown_as_typed() {
    let mut cmd = Command::new("/home/me/.cargo/bin/cargo");
    cmd.args(["bench", "--bench", "*"]).env("RUSTDOCFLAGS", "-D warnings");
    assert_eq!(show(&cmd), "RUSTDOCFLAGS=\"-D warnings\" cargo bench --bench \"*\"");
}
