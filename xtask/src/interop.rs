//! `cargo xtask interop`: Compactor against independent Responses servers on loopback.
//!
//! The peers (`interop/README.md` describes each and its quirks): the LiteLLM proxy, Microsoft's
//! `azure-ai-agentserver-responses`, llmock and aimock, plus an OTLP/HTTP receiver
//! (`interop/otlp/receiver.py`, decoding with the `opentelemetry-proto` package) for the OTLP
//! analytics sink. The task
//!
//! 1. installs them into `target/interop-cache/` (one Python venv per Python peer, pinned by the
//!    constraints in `interop/constraints/`, and an npm folder for aimock), reusing an install
//!    whose marker matches, while cargo builds the interop suite;
//! 2. starts each peer on a free port of 127.0.0.1, in a process group of its own, through
//!    `interop/run_peer.py` (the kernel stops a peer whose xtask died), and waits for its
//!    readiness route;
//! 3. runs the `interop` test target of `compactor-tests` (`tests/interop/`), one test at a time,
//!    with the peers' base URLs in `COMPACTOR_INTEROP_*` variables;
//! 4. stops every peer by its process group, on success and on every failure (explicitly, and by
//!    [`Peer`]'s `Drop` as the backstop), and checks in `/proc` that none of their processes is
//!    left;
//! 5. prints each peer with pass/fail per case and llmock's verdicts, and fails when a case
//!    failed, a peer did not start, or a process was left running.
//!
//! `cargo xtask test` never needs the peers: the interop target is `test = false`, so the normal
//! runs (`cargo nextest run --workspace`, `cargo test --workspace`) skip it, and only this task
//! selects it with `--test interop`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};

use crate::{Ctx, show};

/// The longest the whole interop suite may run before its processes are killed.
const SUITE_DEADLINE: Duration = Duration::from_secs(15 * 60);

/// How long a stopped peer gets to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The Python that creates the venvs and runs `run_peer.py`.
const PYTHON: &str = "python3";

/// The package of the cargo target that holds the interop suite.
const SUITE_PACKAGE: &str = "compactor-tests";

/// The name of that target.
const SUITE_TARGET: &str = "interop";

/// Where the suite's tests write what the report shows besides pass/fail (llmock's verdicts).
const REPORT_DIR_VAR: &str = "COMPACTOR_INTEROP_REPORT_DIR";

/// The variable that gives the suite LiteLLM's key (never printed).
const LITELLM_KEY_VAR: &str = "COMPACTOR_INTEROP_LITELLM_KEY";

/// The variable that gives the suite the `compactor` binary (the OTLP case runs its demo).
const COMPACTOR_BIN_VAR: &str = "COMPACTOR_INTEROP_COMPACTOR_BIN";

/// The file of llmock's verdicts in the report folder.
const LLMOCK_VERDICTS: &str = "llmock-verdicts.txt";

/// What to install, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Install {
    /// A Python venv with one requirement, pinned by a constraints file.
    Pip {
        /// The venv's folder name under `venvs/`.
        venv: &'static str,
        /// The requirement, e.g. `litellm[proxy]==1.108.7`.
        requirement: &'static str,
        /// The constraints file, relative to the workspace root.
        constraints: &'static str,
    },
    /// An npm folder with one exact dependency.
    Npm {
        /// The folder name under the cache.
        folder: &'static str,
        /// The package name.
        package: &'static str,
        /// The exact version.
        version: &'static str,
    },
}

const INSTALLS: [Install; 5] = [
    Install::Pip {
        venv: "litellm",
        requirement: "litellm[proxy]==1.108.7",
        constraints: "interop/constraints/litellm.txt",
    },
    Install::Pip {
        venv: "agentserver",
        requirement: "azure-ai-agentserver-responses==2.3.0",
        constraints: "interop/constraints/agentserver.txt",
    },
    Install::Pip {
        venv: "llmock",
        requirement: "llmock==0.2.2",
        constraints: "interop/constraints/llmock.txt",
    },
    Install::Npm { folder: "aimock", package: "@copilotkit/aimock", version: "1.43.0" },
    Install::Pip {
        venv: "otlp",
        requirement: "opentelemetry-proto==1.45.1",
        constraints: "interop/constraints/otlp.txt",
    },
];

/// The name of the marker file that says an install finished, and of what.
const MARKER: &str = ".compactor-interop-installed";

impl Install {
    fn name(&self) -> &'static str {
        match self {
            Install::Pip { venv, .. } => venv,
            Install::Npm { folder, .. } => folder,
        }
    }

    fn dir(&self, layout: &Layout) -> PathBuf {
        match self {
            Install::Pip { venv, .. } => layout.venv(venv),
            Install::Npm { folder, .. } => layout.cache.join(folder),
        }
    }

    /// What the marker must hold for the install to be reused: the requirement, the whole
    /// constraints file and the interpreter's version, so a change of any of them reinstalls.
    fn marker_text(&self, layout: &Layout) -> Result<String> {
        match self {
            Install::Pip { requirement, constraints, .. } => {
                let path = layout.root.join(constraints);
                let pinned = fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let version = Command::new(PYTHON)
                    .args(["-c", "import sys; print(sys.version)"])
                    .output()
                    .with_context(|| format!("cannot run `{PYTHON}`: the Python peers need it"))?;
                ensure!(version.status.success(), "`{PYTHON}` failed: {}", version.status);
                let version = String::from_utf8_lossy(&version.stdout);
                Ok(format!("python {}\n{requirement}\n{pinned}", version.trim()))
            }
            Install::Npm { package, version, .. } => Ok(format!("{package}@{version}\n")),
        }
    }

    /// Installs unless a finished install of the same thing is there; returns whether it reused.
    fn ensure(&self, layout: &Layout) -> Result<Reuse> {
        let dir = self.dir(layout);
        let marker = dir.join(MARKER);
        let wanted = self.marker_text(layout)?;
        if fs::read_to_string(&marker).is_ok_and(|found| found == wanted) {
            return Ok(Reuse::Reused);
        }
        // A half-finished or outdated install is replaced whole.
        if dir.exists() {
            fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
        }
        let log_path = layout.logs.join(format!("install-{}.log", self.name()));
        let log = Log::create(&log_path)?;
        match self {
            Install::Pip { requirement, constraints, .. } => {
                let mut venv = Command::new(PYTHON);
                venv.args(["-m", "venv"]).arg(&dir);
                log.run(venv)?;
                let mut pip = Command::new(dir.join("bin/pip"));
                pip.args(["install", "--disable-pip-version-check", "--no-input", "--quiet"])
                    .arg("--constraint")
                    .arg(layout.root.join(constraints))
                    .arg(requirement);
                log.run(pip)?;
            }
            Install::Npm { package, version, .. } => {
                fs::create_dir_all(&dir)?;
                let manifest = serde_json::json!({
                    "name": "compactor-interop-aimock",
                    "private": true,
                    "description": "aimock for cargo xtask interop",
                    "dependencies": { *package: *version },
                });
                fs::write(dir.join("package.json"), format!("{manifest:#}\n"))?;
                let mut npm = Command::new("npm");
                npm.current_dir(&dir).args([
                    "install",
                    "--no-audit",
                    "--no-fund",
                    "--no-update-notifier",
                    "--loglevel=error",
                ]);
                log.run(npm)?;
            }
        }
        fs::write(&marker, wanted)?;
        Ok(Reuse::Installed)
    }
}

/// Whether an install was made or found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reuse {
    Installed,
    Reused,
}

/// A log file that commands append to.
struct Log {
    path: PathBuf,
    file: File,
}

impl Log {
    fn create(path: &Path) -> Result<Self> {
        let file =
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Self { path: path.to_path_buf(), file })
    }

    /// Runs `cmd` with its output appended to the log; on failure the error holds the log's tail.
    fn run(&self, mut cmd: Command) -> Result<()> {
        let shown = show(&cmd);
        writeln!(&self.file, "$ {shown}")?;
        let status = cmd
            .stdin(Stdio::null())
            .stdout(self.file.try_clone()?)
            .stderr(self.file.try_clone()?)
            .status()
            .with_context(|| format!("cannot start `{shown}`"))?;
        if !status.success() {
            bail!(
                "`{shown}` failed ({status}); its log {}:\n{}",
                self.path.display(),
                tail(&self.path)
            );
        }
        Ok(())
    }
}

/// The last lines of a log, for error messages.
fn tail(path: &Path) -> String {
    const LINES: usize = 40;
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LINES)..].join("\n")
}

/// The folders of the cache.
#[derive(Debug, Clone)]
struct Layout {
    /// The workspace root.
    root: PathBuf,
    /// `target/interop-cache`.
    cache: PathBuf,
    /// Install and peer logs (kept after the run, for reading).
    logs: PathBuf,
    /// Per-run state (the agentserver's state root, the report), recreated on each run.
    run: PathBuf,
}

impl Layout {
    fn new(root: &Path) -> Self {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| root.join("target"), |dir| root.join(PathBuf::from(dir)));
        let cache = target.join("interop-cache");
        Self { root: root.to_path_buf(), logs: cache.join("logs"), run: cache.join("run"), cache }
    }

    fn venv(&self, name: &str) -> PathBuf {
        self.cache.join("venvs").join(name)
    }

    fn report(&self) -> PathBuf {
        self.run.join("report")
    }
}

/// The peers, in the order they are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum PeerKind {
    Litellm,
    Agentserver,
    Llmock,
    Aimock,
    /// Not a Responses server: the OTLP/HTTP receiver that Compactor's OTLP sink exports to.
    Otlp,
}

const PEERS: [PeerKind; 5] =
    [PeerKind::Litellm, PeerKind::Agentserver, PeerKind::Llmock, PeerKind::Aimock, PeerKind::Otlp];

impl PeerKind {
    /// The name, which is also the suite's module of the peer's tests.
    fn name(self) -> &'static str {
        match self {
            PeerKind::Litellm => "litellm",
            PeerKind::Agentserver => "agentserver",
            PeerKind::Llmock => "llmock",
            PeerKind::Aimock => "aimock",
            PeerKind::Otlp => "otlp",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        PEERS.into_iter().find(|peer| peer.name() == name)
    }

    /// The variable that gives the suite the peer's base URL.
    fn url_var(self) -> &'static str {
        match self {
            PeerKind::Litellm => "COMPACTOR_INTEROP_LITELLM_URL",
            PeerKind::Agentserver => "COMPACTOR_INTEROP_AGENTSERVER_URL",
            PeerKind::Llmock => "COMPACTOR_INTEROP_LLMOCK_URL",
            PeerKind::Aimock => "COMPACTOR_INTEROP_AIMOCK_URL",
            PeerKind::Otlp => "COMPACTOR_INTEROP_OTLP_URL",
        }
    }

    /// The Responses base URL (`/responses` is appended by the client).
    fn base_url(self, port: u16) -> String {
        match self {
            // The agentserver serves `POST /responses` without a version prefix; the OTLP
            // receiver's URL is the OTLP base (`/v1/traces` and `/v1/metrics` are appended).
            PeerKind::Agentserver | PeerKind::Otlp => format!("http://127.0.0.1:{port}"),
            PeerKind::Litellm | PeerKind::Llmock | PeerKind::Aimock => {
                format!("http://127.0.0.1:{port}/v1")
            }
        }
    }

    /// The route that answers 200 once the peer serves.
    fn readiness_path(self) -> &'static str {
        match self {
            PeerKind::Litellm => "/health/liveliness",
            PeerKind::Agentserver => "/readiness",
            PeerKind::Llmock => "/_llmock/scenario",
            PeerKind::Aimock | PeerKind::Otlp => "/health",
        }
    }

    /// How long the peer may take to become ready (LiteLLM imports a lot; two busy cores).
    fn ready_timeout(self) -> Duration {
        match self {
            PeerKind::Litellm => Duration::from_secs(240),
            PeerKind::Agentserver | PeerKind::Llmock => Duration::from_secs(90),
            PeerKind::Aimock | PeerKind::Otlp => Duration::from_secs(60),
        }
    }

    /// The program and arguments that serve the peer on `port`.
    fn command(self, layout: &Layout, port: u16) -> (PathBuf, Vec<String>) {
        let interop = layout.root.join("interop");
        let port = port.to_string();
        let path = |p: PathBuf| p.to_string_lossy().into_owned();
        match self {
            PeerKind::Litellm => (
                layout.venv("litellm").join("bin/litellm"),
                vec![
                    "--config".into(),
                    path(interop.join("litellm/config.yaml")),
                    "--host".into(),
                    "127.0.0.1".into(),
                    "--port".into(),
                    port,
                    "--num_workers".into(),
                    "1".into(),
                ],
            ),
            PeerKind::Agentserver => (
                layout.venv("agentserver").join("bin/python"),
                vec![path(interop.join("agentserver/handler.py")), port],
            ),
            PeerKind::Llmock => (
                layout.venv("llmock").join("bin/llmock"),
                ["serve", "--host", "127.0.0.1", "--port", &port, "--response-style", "hello"]
                    .map(str::to_owned)
                    .to_vec(),
            ),
            PeerKind::Aimock => (
                PathBuf::from("node"),
                vec![
                    path(layout.cache.join("aimock/node_modules/@copilotkit/aimock/dist/cli.js")),
                    "-h".into(),
                    "127.0.0.1".into(),
                    "-p".into(),
                    port,
                    "-f".into(),
                    path(interop.join("aimock")),
                ],
            ),
            PeerKind::Otlp => (
                layout.venv("otlp").join("bin/python"),
                vec![path(interop.join("otlp/receiver.py")), port],
            ),
        }
    }

    /// Environment variables of the peer's process.
    fn env(self, layout: &Layout, port: u16, key: &str) -> Vec<(&'static str, String)> {
        let mut env = vec![("PYTHONDONTWRITEBYTECODE", "1".to_owned())];
        match self {
            PeerKind::Litellm => {
                env.push(("LITELLM_MASTER_KEY", key.to_owned()));
                // The self-loop model's upstream: this proxy's own `/v1`.
                env.push(("LITELLM_SELF_BASE", self.base_url(port)));
                // Offline: never download the model cost map.
                env.push(("LITELLM_LOCAL_MODEL_COST_MAP", "True".to_owned()));
            }
            PeerKind::Agentserver => {
                let state = layout.run.join("agentserver-state");
                env.push(("AGENTSERVER_STATE_ROOT", state.to_string_lossy().into_owned()));
            }
            PeerKind::Llmock | PeerKind::Aimock | PeerKind::Otlp => {}
        }
        env
    }
}

/// A started peer. Dropping it stops its process group.
struct Peer {
    kind: PeerKind,
    port: u16,
    child: Child,
    log: PathBuf,
    stopped: bool,
}

impl Peer {
    fn start(kind: PeerKind, layout: &Layout, port: u16, key: &str) -> Result<Self> {
        let log = layout.logs.join(format!("{}.log", kind.name()));
        let out = File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
        let (program, args) = kind.command(layout, port);
        let mut cmd = Command::new(PYTHON);
        cmd.arg(layout.root.join("interop/run_peer.py"))
            .arg(std::process::id().to_string())
            .arg(&program)
            .args(&args);
        // Shown before the environment is set: it holds LiteLLM's key.
        let shown = show(&cmd);
        cmd.current_dir(&layout.run)
            .envs(kind.env(layout, port, key))
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            // A group of its own, so that stopping the peer stops whatever it started. A Ctrl-C
            // in the terminal then reaches xtask but not the peers: when it ends xtask,
            // run_peer.py's parent-death signal stops them.
            .process_group(0);
        let child = cmd.spawn().with_context(|| format!("cannot start `{shown}`"))?;
        println!(
            "started {} (pid {}) on port {port}; log {}",
            kind.name(),
            child.id(),
            log.display()
        );
        Ok(Self { kind, port, child, log, stopped: false })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the peer's process group: SIGTERM, then SIGKILL after [`STOP_GRACE`]. Idempotent.
    fn stop(&mut self) -> Result<()> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let pgid = self.pid();
        signal_group(pgid, "TERM");
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() && group_members(pgid).is_empty() {
                return Ok(());
            }
            pause(Duration::from_millis(50));
        }
        signal_group(pgid, "KILL");
        self.child.wait()?;
        let deadline = Instant::now() + STOP_GRACE;
        while !group_members(pgid).is_empty() {
            ensure!(
                Instant::now() < deadline,
                "{}: processes {:?} of group {pgid} survived SIGKILL",
                self.kind.name(),
                group_members(pgid)
            );
            pause(Duration::from_millis(50));
        }
        Ok(())
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Err(err) = self.stop() {
            eprintln!("error: stopping {}: {err:#}", self.kind.name());
        }
    }
}

/// Sends `SIGNAL` to every process of the group `pgid`. A group that is already gone is fine.
fn signal_group(pgid: u32, signal: &str) {
    let result = Command::new("kill")
        .args(["-s", signal, "--", &format!("-{pgid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if let Err(err) = result {
        eprintln!("warning: cannot run `kill -s {signal} -- -{pgid}`: {err}");
    }
}

/// The pids of the live processes whose process group is `pgid`, from `/proc/*/stat`.
fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else { return Vec::new() };
    let mut pids = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else { continue };
        if let Some((group, state)) = parse_stat(&stat)
            && group == pgid
            && state != 'Z'
        {
            pids.push(pid);
        }
    }
    pids
}

/// The process group and state of a `/proc/PID/stat` line. The command name is in parentheses
/// and may hold spaces, so the fields are counted after its closing parenthesis.
fn parse_stat(stat: &str) -> Option<(u32, char)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((pgrp, state))
}

#[expect(clippy::disallowed_methods, reason = "xtask is synchronous: no runtime to yield to")]
fn pause(duration: Duration) {
    thread::sleep(duration);
}

/// Free ports on 127.0.0.1, all distinct: every listener is held until all are chosen.
fn free_ports(n: usize) -> Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<std::io::Result<Vec<_>>>()
        .context("cannot bind a free port on 127.0.0.1")?;
    listeners.iter().map(|l| Ok(l.local_addr()?.port())).collect()
}

/// `GET path` on 127.0.0.1:`port`; the status code, or `None` when nothing answered in time.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream.set_write_timeout(Some(Duration::from_secs(5))).ok()?;
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut head = [0u8; 64];
    let mut len = 0;
    while len < head.len() {
        match stream.read(&mut head[len..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => len += n,
        }
    }
    parse_status_line(&String::from_utf8_lossy(&head[..len]))
}

/// The status code of `HTTP/1.1 200 OK...`.
fn parse_status_line(head: &str) -> Option<u16> {
    let mut parts = head.split_whitespace();
    parts.next().filter(|version| version.starts_with("HTTP/"))?;
    parts.next()?.parse().ok()
}

/// Waits until every peer answers its readiness route, failing fast when one exits.
fn wait_ready(peers: &mut [Peer]) -> Result<()> {
    let start = Instant::now();
    let mut waiting: Vec<usize> = (0..peers.len()).collect();
    while !waiting.is_empty() {
        let mut still = Vec::new();
        for index in waiting {
            let peer = &mut peers[index];
            let name = peer.kind.name();
            if let Some(status) = peer.child.try_wait()? {
                bail!(
                    "{name} exited before it was ready ({status}); its log:\n{}",
                    tail(&peer.log)
                );
            }
            if http_status(peer.port, peer.kind.readiness_path()) == Some(200) {
                println!("{name} ready after {:.1} s", start.elapsed().as_secs_f64());
                continue;
            }
            if start.elapsed() > peer.kind.ready_timeout() {
                bail!(
                    "{name} was not ready within {} s; its log:\n{}",
                    peer.kind.ready_timeout().as_secs(),
                    tail(&peer.log)
                );
            }
            still.push(index);
        }
        waiting = still;
        if !waiting.is_empty() {
            pause(Duration::from_millis(250));
        }
    }
    Ok(())
}

/// A key for the LiteLLM proxy, new on every run (LiteLLM refuses well-known keys).
fn new_key() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("sk-interop-{:x}{:x}", nanos, std::process::id())
}

/// One test's outcome, from libtest's `test NAME ... ok` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CaseResult {
    /// The test's path, e.g. `llmock::rate_limit_honours_retry_after`.
    name: String,
    outcome: Outcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Pass,
    Fail,
}

/// Reads a `test NAME ... ok|FAILED` line.
fn parse_test_line(line: &str) -> Option<CaseResult> {
    let rest = line.strip_prefix("test ")?;
    let (name, result) = rest.rsplit_once(" ... ")?;
    let outcome = match result.trim() {
        "ok" => Outcome::Pass,
        "FAILED" => Outcome::Fail,
        _ => return None,
    };
    Some(CaseResult { name: name.trim().to_owned(), outcome })
}

/// The report: cases per peer (by the suite's module), then llmock's verdicts and the totals.
fn render_report(
    cases: &[CaseResult],
    urls: &BTreeMap<PeerKind, String>,
    verdicts: Option<&str>,
) -> String {
    let mut by_peer: BTreeMap<Option<PeerKind>, Vec<&CaseResult>> = BTreeMap::new();
    for case in cases {
        let module = case.name.split("::").next().unwrap_or_default();
        by_peer.entry(PeerKind::from_name(module)).or_default().push(case);
    }
    let mut out = String::new();
    let mut section = |title: String, cases: &[&CaseResult]| {
        let _ = writeln!(out, "{title}");
        if cases.is_empty() {
            let _ = writeln!(out, "  FAIL  (no case ran)");
        }
        for case in cases {
            let mark = match case.outcome {
                Outcome::Pass => "pass",
                Outcome::Fail => "FAIL",
            };
            let short = case.name.split_once("::").map_or(case.name.as_str(), |(_, rest)| rest);
            let _ = writeln!(out, "  {mark}  {short}");
        }
    };
    for peer in PEERS {
        let url = urls.get(&peer).map_or(String::new(), |url| format!(" ({url})"));
        let cases = by_peer.get(&Some(peer)).map_or(&[][..], Vec::as_slice);
        section(format!("{}{url}", peer.name()), cases);
    }
    if let Some(cases) = by_peer.get(&None) {
        section("other".to_owned(), cases);
    }
    out.push_str("\nllmock's verdicts on Compactor's client:\n");
    match verdicts.map(str::trim).filter(|text| !text.is_empty()) {
        Some(text) => {
            for line in text.lines() {
                let _ = if line.is_empty() { writeln!(out) } else { writeln!(out, "  {line}") };
            }
        }
        None => out.push_str("  (none recorded)\n"),
    }
    let passed = cases.iter().filter(|case| case.outcome == Outcome::Pass).count();
    let failed = cases.len() - passed;
    let _ = writeln!(out, "\ninterop: {passed} passed, {failed} failed");
    out
}

/// Runs the suite with the peers' URLs, echoing its output, bounded by [`SUITE_DEADLINE`].
fn run_suite(
    ctx: &Ctx,
    env: &[(String, String)],
    key: &str,
) -> Result<(ExitStatus, Vec<CaseResult>)> {
    let mut cmd = ctx.cargo(&["test", "-p", SUITE_PACKAGE, "--test", SUITE_TARGET, "--locked"]);
    // One test at a time: llmock's scenarios and journal are server-wide state.
    cmd.args(["--", "--test-threads=1", "--color=never"])
        .envs(env.iter().map(|(name, value)| (name.as_str(), value.as_str())))
        .stdout(Stdio::piped())
        // Its own group, so the deadline can stop cargo and the test binary together.
        .process_group(0);
    if ctx.ci {
        cmd.env("INSTA_UPDATE", "no");
    }
    println!("\n==> {}", show(&cmd));
    // Set after the header, which must not show it.
    cmd.env(LITELLM_KEY_VAR, key);
    let mut child = cmd.spawn().context("cannot start the interop suite")?;
    let pgid = child.id();
    let (done, deadline) = mpsc::channel::<()>();
    let watchdog = thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = deadline.recv_timeout(SUITE_DEADLINE) {
            eprintln!(
                "error: the interop suite ran past {} s; killing it",
                SUITE_DEADLINE.as_secs()
            );
            signal_group(pgid, "KILL");
        }
    });
    let mut cases = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line?;
            println!("{line}");
            cases.extend(parse_test_line(&line));
        }
    }
    let status = child.wait()?;
    drop(done);
    let _ = watchdog.join();
    Ok((status, cases))
}

/// `cargo xtask interop`.
pub(crate) fn interop(ctx: &Ctx) -> Result<()> {
    let started = Instant::now();
    let layout = Layout::new(&ctx.root);
    if layout.run.exists() {
        fs::remove_dir_all(&layout.run)
            .with_context(|| format!("cannot remove {}", layout.run.display()))?;
    }
    for dir in [&layout.cache, &layout.logs, &layout.run, &layout.report()] {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    fs::create_dir_all(layout.run.join("agentserver-state"))?;

    // Install the peers (network- and disk-bound) while cargo builds the suite (CPU-bound).
    println!(
        "\n==> install peers into {} (logs in {})",
        layout.cache.display(),
        layout.logs.display()
    );
    let build =
        ctx.cargo(&["test", "-p", SUITE_PACKAGE, "--test", SUITE_TARGET, "--no-run", "--locked"]);
    let (installs, built) = thread::scope(|scope| {
        let handles: Vec<_> = INSTALLS
            .iter()
            .map(|install| {
                let layout = &layout;
                scope.spawn(move || {
                    let begun = Instant::now();
                    let result = install.ensure(layout);
                    (install.name(), result, begun.elapsed())
                })
            })
            .collect();
        // The OTLP case runs the `compactor` binary's demo, built with its default features.
        let built = crate::run(build)
            .and_then(|()| crate::run(ctx.cargo(&["build", "-p", "compactor-cli", "--locked"])));
        let installs: Vec<_> = handles
            .into_iter()
            .map(|handle| {
                handle.join().unwrap_or_else(|_| {
                    ("?", Err(anyhow::anyhow!("installer panicked")), Duration::ZERO)
                })
            })
            .collect();
        (installs, built)
    });
    let mut install_errors = Vec::new();
    for (name, result, took) in installs {
        match result {
            Ok(Reuse::Reused) => println!("{name}: cached install reused"),
            Ok(Reuse::Installed) => println!("{name}: installed in {:.0} s", took.as_secs_f64()),
            Err(err) => install_errors.push(format!("{name}: {err:#}")),
        }
    }
    if !install_errors.is_empty() {
        bail!("installing the peers failed:\n{}", install_errors.join("\n"));
    }
    built?;
    println!("peers installed and suite built after {:.0} s", started.elapsed().as_secs_f64());

    // Start the peers on this (the main) thread: run_peer.py's parent-death signal fires when
    // the thread that started a peer ends.
    println!("\n==> start peers");
    let key = new_key();
    let ports = free_ports(PEERS.len())?;
    let mut peers = Vec::new();
    for (kind, port) in PEERS.into_iter().zip(ports) {
        peers.push(Peer::start(kind, &layout, port, &key)?);
    }
    let outcome = wait_ready(&mut peers).and_then(|()| {
        let mut env: Vec<(String, String)> = peers
            .iter()
            .map(|peer| (peer.kind.url_var().to_owned(), peer.kind.base_url(peer.port)))
            .collect();
        env.push((REPORT_DIR_VAR.to_owned(), layout.report().to_string_lossy().into_owned()));
        let target = layout.cache.parent().unwrap_or(&layout.cache);
        let compactor = target.join("debug").join("compactor");
        env.push((COMPACTOR_BIN_VAR.to_owned(), compactor.to_string_lossy().into_owned()));
        run_suite(ctx, &env, &key)
    });

    // Stop every peer, whatever happened, and check that nothing of theirs is left.
    println!("\n==> stop peers");
    let urls: BTreeMap<PeerKind, String> =
        peers.iter().map(|peer| (peer.kind, peer.kind.base_url(peer.port))).collect();
    let mut stop_errors = Vec::new();
    for peer in &mut peers {
        let (name, pid) = (peer.kind.name(), peer.pid());
        match peer.stop() {
            Ok(()) => println!("{name} (pid {pid}) stopped"),
            Err(err) => stop_errors.push(format!("{name}: {err:#}")),
        }
    }
    let left: Vec<u32> = peers.iter().flat_map(|peer| group_members(peer.pid())).collect();
    if !left.is_empty() {
        stop_errors.push(format!("processes still running after the stop: {left:?}"));
    }
    drop(peers);

    let (status, cases) = match outcome {
        Ok(outcome) => outcome,
        Err(err) if stop_errors.is_empty() => return Err(err),
        Err(err) => bail!("{err:#}\nstopping the peers failed too:\n{}", stop_errors.join("\n")),
    };
    let verdicts = fs::read_to_string(layout.report().join(LLMOCK_VERDICTS)).ok();
    println!("\n==> interop report\n{}", render_report(&cases, &urls, verdicts.as_deref()));
    println!("total time {:.0} s", started.elapsed().as_secs_f64());
    ensure!(stop_errors.is_empty(), "stopping the peers failed:\n{}", stop_errors.join("\n"));
    ensure!(status.success(), "the interop suite failed ({status})");
    ensure!(!cases.is_empty(), "the interop suite ran no test");
    let failed = cases.iter().filter(|case| case.outcome == Outcome::Fail).count();
    ensure!(failed == 0, "{failed} interop case(s) failed");
    for peer in PEERS {
        ensure!(
            cases.iter().any(|case| case.name.starts_with(&format!("{}::", peer.name()))),
            "no interop case ran against {}",
            peer.name()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests;
