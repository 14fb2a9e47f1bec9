//! Project automation for Compactor, run as `cargo xtask <task>` (see [`HELP`]).
//!
//! Every task is a sequence of plain [`Command`]s on the `cargo` that started us (`$CARGO`),
//! run from the workspace root, so xtask needs nothing beyond the Rust toolchain.
//! A task prints a `==>` header before each step and stops at the first step that fails.
//! The architecture checks live in [`mod@tidy`]; [`mod@metadata`] reads `cargo metadata`.

#![allow(clippy::print_stdout, clippy::print_stderr, reason = "CLI")]

mod bench;
mod fuzz;
mod interop;
mod metadata;
mod package;
mod tidy;

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, Result, bail, ensure};

use crate::metadata::Workspace;

const HELP: &str = "\
cargo xtask <task> [options]

tasks:
  test [-p PACKAGE]...   fmt-check, clippy, tidy, the side lock files, doc, then nextest and doc tests
  lint                   cargo clippy --workspace --all-targets --all-features -- -D warnings
  fmt                    cargo fmt --all
  fmt-check              cargo fmt --all -- --check
  doc                    RUSTDOCFLAGS=\"-D warnings\" cargo doc --workspace --no-deps
  tidy                   layering, manifests, module docs, ARCHITECTURE.md, stray snapshots,
                         citations (only docs/decisions.md and files in the repository)
  bench [-p PACKAGE]... [--no-run] [--compare FILE] [-- ARGS]
                         cargo bench over the bench targets (crates/*/benches) and the peer
                         bench (benches/peer-decode), then a table of the D48 ratios
                         (docs/decisions.md) with pass/fail, also in target/bench-summary.json;
                         --compare prints each ratio's change against a saved summary
  examples               runs every example of every crate (cargo run --example); each must
                         exit 0
  package                cargo package for every published-shaped crate (all but xtask and
                         compactor-tests), each built from its packaged form
  ci                     fmt-check, lint, doc, test, examples, package, bench --no-run
  interop                installs and starts the independent Responses servers on loopback
                         (target/interop-cache), runs the interop suite, stops them
  fuzz [--seconds N] [TARGET]...
                         runs the cargo-fuzz targets of fuzz/ for N seconds each (default 60;
                         stable toolchain, --sanitizer none), installing cargo-fuzz if absent
  help                   this text

With the environment variable CI set, tests run with nextest's `ci` profile and INSTA_UPDATE=no.
";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = parse(&args).and_then(|task| run_task(&Ctx::from_env(), &task));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("\nerror: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// What the command line asked for.
#[derive(Debug, PartialEq, Eq)]
enum Task {
    Test(Scope),
    Lint,
    Fmt,
    FmtCheck,
    Doc,
    Tidy,
    Bench { scope: Scope, mode: BenchMode, compare: Option<PathBuf>, extra: Vec<String> },
    Ci,
    Examples,
    Package,
    Interop,
    Fuzz(fuzz::FuzzArgs),
    Help,
}

/// Which packages a step covers.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    Workspace,
    Packages(Vec<String>),
}

impl Scope {
    fn cargo_args(&self) -> Vec<&str> {
        match self {
            Self::Workspace => vec!["--workspace"],
            Self::Packages(names) => names.iter().flat_map(|name| ["-p", name.as_str()]).collect(),
        }
    }

    /// Fails on a package name that is not a workspace member, so a typo is not a silent no-op.
    fn check(&self, workspace: &Workspace<'_>) -> Result<()> {
        match self {
            Self::Workspace => Ok(()),
            Self::Packages(names) => {
                for name in names {
                    ensure!(
                        workspace.packages.iter().any(|package| package.name == name),
                        "unknown package `{name}` (workspace members: {})",
                        workspace.packages.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
                    );
                }
                Ok(())
            }
        }
    }

    fn includes(&self, name: &str) -> bool {
        match self {
            Self::Workspace => true,
            Self::Packages(names) => names.iter().any(|n| n == name),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BenchMode {
    Run,
    NoRun,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Features {
    Default,
    All,
}

fn parse(args: &[String]) -> Result<Task> {
    let Some((task, rest)) = args.split_first() else { bail!("no task given\n\n{HELP}") };
    if task == "fuzz" {
        return fuzz::parse(rest).map(Task::Fuzz);
    }
    let mut packages = Vec::new();
    let mut mode = BenchMode::Run;
    let mut compare = None;
    let mut extra = Vec::new();
    let mut rest = rest.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "-p" | "--package" => {
                let name = rest.next().with_context(|| format!("`{arg}` needs a package name"))?;
                packages.push(name.clone());
            }
            "--no-run" if task == "bench" => mode = BenchMode::NoRun,
            "--compare" if task == "bench" => {
                let file = rest.next().context("`--compare` needs a bench-summary.json file")?;
                compare = Some(PathBuf::from(file));
            }
            "--" if task == "bench" => extra.extend(rest.by_ref().cloned()),
            other => bail!("unexpected argument `{other}` for `{task}`\n\n{HELP}"),
        }
    }
    let has_packages = !packages.is_empty();
    let scope = if has_packages { Scope::Packages(packages) } else { Scope::Workspace };
    let parsed = match task.as_str() {
        "test" => Task::Test(scope),
        "bench" => Task::Bench { scope, mode, compare, extra },
        "lint" => Task::Lint,
        "fmt" => Task::Fmt,
        "fmt-check" => Task::FmtCheck,
        "doc" => Task::Doc,
        "tidy" => Task::Tidy,
        "ci" => Task::Ci,
        "examples" => Task::Examples,
        "package" => Task::Package,
        "interop" => Task::Interop,
        "help" | "-h" | "--help" => Task::Help,
        other => bail!("unknown task `{other}`\n\n{HELP}"),
    };
    let takes_packages = matches!(parsed, Task::Test(_) | Task::Bench { .. });
    ensure!(!has_packages || takes_packages, "`{task}` does not take `-p`");
    Ok(parsed)
}

/// How to run commands: the cargo to use, where, and whether this is CI.
struct Ctx {
    cargo: OsString,
    root: PathBuf,
    ci: bool,
}

impl Ctx {
    fn from_env() -> Self {
        Self {
            cargo: env::var_os("CARGO").unwrap_or_else(|| "cargo".into()),
            root: project_root(),
            ci: env::var_os("CI").is_some_and(|value| !value.is_empty()),
        }
    }

    fn cargo(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.cargo);
        cmd.current_dir(&self.root).args(args);
        cmd
    }

    fn workspace_metadata(&self) -> Result<serde_json::Value> {
        metadata::load(&self.cargo, &self.root)
    }
}

/// Prints a header naming the command, runs it, and fails unless it exits successfully.
fn run(mut cmd: Command) -> Result<()> {
    let shown = show(&cmd);
    println!("\n==> {shown}");
    let status = cmd.status().with_context(|| format!("cannot start `{shown}`"))?;
    ensure!(status.success(), "`{shown}` failed ({status})");
    Ok(())
}

/// The workspace root: xtask lives one level below it.
fn project_root() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    dir.parent().unwrap_or(dir).to_path_buf()
}

/// A command as a user would type it, for headers and error messages.
fn show(cmd: &Command) -> String {
    let mut words = Vec::new();
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            words.push(format!("{}={}", key.to_string_lossy(), quote(&value.to_string_lossy())));
        }
    }
    let program = Path::new(cmd.get_program());
    words.push(program.file_stem().unwrap_or(program.as_os_str()).to_string_lossy().into_owned());
    words.extend(cmd.get_args().map(|arg| quote(&arg.to_string_lossy())));
    words.join(" ")
}

fn quote(word: &str) -> String {
    if word.is_empty() || word.contains([' ', '"', '*']) {
        format!("{word:?}")
    } else {
        word.to_owned()
    }
}

fn run_task(ctx: &Ctx, task: &Task) -> Result<()> {
    match task {
        Task::Help => {
            println!("{HELP}");
            Ok(())
        }
        Task::Test(scope) => test(ctx, scope),
        Task::Lint => clippy(ctx, &Scope::Workspace, Features::All),
        Task::Fmt => run(ctx.cargo(&["fmt", "--all"])),
        Task::FmtCheck => fmt_check(ctx),
        Task::Doc => doc(ctx),
        Task::Tidy => tidy(ctx, &ctx.workspace_metadata()?),
        Task::Bench { scope, mode, compare, extra } => {
            bench::bench(ctx, scope, *mode, compare.as_deref(), extra)
        }
        Task::Examples => package::examples(ctx),
        Task::Package => package::package(ctx),
        Task::Interop => interop::interop(ctx),
        Task::Fuzz(args) => fuzz::fuzz(ctx, args),
        Task::Ci => {
            fmt_check(ctx)?;
            clippy(ctx, &Scope::Workspace, Features::All)?;
            doc(ctx)?;
            test(ctx, &Scope::Workspace)?;
            package::examples(ctx)?;
            package::package(ctx)?;
            bench::bench(ctx, &Scope::Workspace, BenchMode::NoRun, None, &[])?;
            println!("\nxtask ci: all steps passed");
            Ok(())
        }
    }
}

fn fmt_check(ctx: &Ctx) -> Result<()> {
    run(ctx.cargo(&["fmt", "--all", "--", "--check"]))
}

fn clippy(ctx: &Ctx, scope: &Scope, features: Features) -> Result<()> {
    let mut cmd = ctx.cargo(&["clippy"]);
    cmd.args(scope.cargo_args()).arg("--all-targets");
    match features {
        Features::Default => {}
        Features::All => {
            cmd.arg("--all-features");
        }
    }
    cmd.args(["--locked", "--", "-D", "warnings"]);
    run(cmd)
}

fn doc(ctx: &Ctx) -> Result<()> {
    let mut cmd = ctx.cargo(&["doc", "--workspace", "--no-deps", "--locked"]);
    cmd.env("RUSTDOCFLAGS", "-D warnings");
    run(cmd)
}

fn tidy(ctx: &Ctx, metadata: &serde_json::Value) -> Result<()> {
    println!("\n==> tidy");
    let files = tidy::collect(&ctx.root)?;
    let violations = tidy::check(metadata, &files)?;
    if violations.is_empty() {
        println!("tidy: ok ({} files)", files.len());
        return Ok(());
    }
    for violation in &violations {
        eprintln!("tidy: {violation}");
    }
    bail!("tidy found {} violation(s)", violations.len())
}

/// The workspaces of their own (`fuzz/`, the bench-only peer package): their lock files must
/// follow the workspace's crates, which they depend on by path.
const SIDE_MANIFESTS: [&str; 2] = ["fuzz/Cargo.toml", "benches/peer-decode/Cargo.toml"];

/// Fails when a side workspace's lock file would change: its `--locked` build (`cargo xtask fuzz`,
/// `cargo xtask bench`) would otherwise fail long after the change that made it stale.
fn side_locks(ctx: &Ctx) -> Result<()> {
    for manifest in SIDE_MANIFESTS {
        let mut cmd = ctx.cargo(&["metadata", "--locked", "--format-version", "1"]);
        cmd.arg("--manifest-path").arg(ctx.root.join(manifest)).stdout(Stdio::null());
        run(cmd).with_context(|| {
            format!("the lock file beside {manifest} is stale: run `cargo update --workspace --manifest-path {manifest}`")
        })?;
    }
    Ok(())
}

fn test(ctx: &Ctx, scope: &Scope) -> Result<()> {
    let metadata = ctx.workspace_metadata()?;
    let workspace = metadata::parse(&metadata)?;
    scope.check(&workspace)?;

    fmt_check(ctx)?;
    clippy(ctx, scope, Features::Default)?;
    tidy(ctx, &metadata)?;
    side_locks(ctx)?;
    // The API docs are part of every full run: a broken intra-doc link otherwise surfaces only in
    // CI, after the tests passed.
    doc(ctx)?;

    let nextest = ctx
        .cargo(&["nextest", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    let mut cmd = if nextest {
        let mut cmd = ctx.cargo(&["nextest", "run"]);
        cmd.args(scope.cargo_args()).args(["--locked", "--no-fail-fast", "--no-tests=warn"]);
        if ctx.ci {
            cmd.args(["--profile", "ci"]);
        }
        cmd
    } else {
        println!(
            "\nnote: `cargo nextest` is not installed; using `cargo test`, doc tests included"
        );
        let mut cmd = ctx.cargo(&["test"]);
        cmd.args(scope.cargo_args()).args(["--locked", "--no-fail-fast"]);
        cmd
    };
    if ctx.ci {
        cmd.env("INSTA_UPDATE", "no");
    }
    run(cmd)?;

    // nextest skips doc tests, and `cargo test --doc` fails when no selected package has any.
    let doctests = workspace.packages.iter().any(|p| p.has_doctests && scope.includes(p.name));
    if nextest && doctests {
        let mut cmd = ctx.cargo(&["test", "--doc"]);
        cmd.args(scope.cargo_args()).arg("--locked");
        if ctx.ci {
            cmd.env("INSTA_UPDATE", "no");
        }
        run(cmd)?;
    } else if nextest {
        println!("\n==> doc tests: none in scope");
    }
    println!("\nxtask test: all steps passed");
    Ok(())
}

#[cfg(test)]
mod tests;
