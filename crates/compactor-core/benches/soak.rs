//! The soak workload end to end (see D105 and D106 in docs/decisions.md): 300 turns in a
//! 32 000-token window against the testkit's reference model on loopback, over WebSocket and
//! over HTTP.
//!
//! - Client CPU: the CPU time of the client process for the whole session, as a ratio to one
//!   `serde_json::to_vec` of everything the session recorded (every line of its rollout).
//! - Peak memory: the client process's peak resident memory during the session, above what it
//!   held before the session started, as a ratio to the JSON of the final history.
//! - Rollout bytes per turn: the bytes the last 100 turns added to the rollout per turn, as a
//!   ratio to the first 100's (the details give both).
//!
//! It also prints how far the session's token estimates were from the usage the reference
//! model reported (counted with o200k), with `Bytes4` calibrated (the library's default, every
//! measured run) and plain (one more HTTP session with calibration off): over every request and
//! near the auto-compact limit, where the usage gate decides (see D125 in docs/decisions.md).
//!
//! Each session runs in a fresh client process: this bench binary started again with
//! [`CHILD_ENV`] set; it prints its figures as one JSON line. The server runs in this process.

#![allow(clippy::print_stdout, reason = "a bench reports on the terminal")]
#![allow(clippy::expect_used, clippy::unwrap_used, reason = "a bench fails loudly")]

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use compactor_client::{KeySource, ProviderConfig, WebsocketMode};
use compactor_core::{
    Calibration, Features, ModelInfo, ProviderKind, Session, SessionConfig, ToolCall, ToolFuture,
    ToolHandler,
};
use compactor_protocol::{EventMsg, RolloutItem, RolloutLine, ToolOutput};
use compactor_testkit::workload::soak::{SOAK_CONTEXT_WINDOW, SOAK_TURNS, Soak, soak_model_config};
use compactor_testkit::workload::{self, ErrorSummary, MeasuredRatio, request_estimates};
use compactor_testkit::{Mode, TestServer, TestServerConfig};
use serde_json::{Value, json};
use tokio::process::Command;

/// Set in a child process: the transport it runs the session over (`ws` or `http`).
const CHILD_ENV: &str = "COMPACTOR_BENCH_SOAK_CHILD";
const ROLLOUT_ENV: &str = "COMPACTOR_BENCH_SOAK_ROLLOUT";
const BASE_URL_ENV: &str = "COMPACTOR_BENCH_SOAK_BASE_URL";
/// Set in a child process whose session does not calibrate its estimates.
const UNCALIBRATED_ENV: &str = "COMPACTOR_BENCH_SOAK_UNCALIBRATED";

/// Sessions per transport; the least CPU and the largest peak are kept.
const RUNS: usize = 2;
/// Serializations of the recorded lines; the fastest is kept.
const BASELINE_RUNS: usize = 7;

const MODEL: &str = "gpt-soak";
const BASE_INSTRUCTIONS: &str = "You are a coding agent working in a repository. Use the tools.";
/// Every wait on the child is bounded by this.
const WAIT: Duration = Duration::from_secs(600);

fn main() -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    match std::env::var(CHILD_ENV) {
        Ok(transport) => runtime.block_on(child(&transport)),
        Err(_) => runtime.block_on(parent()),
    }
}

/// Answers the soak's tool calls with the output of the current turn.
struct SoakTools {
    soak: Arc<Soak>,
    turn: Arc<AtomicUsize>,
}

impl ToolHandler for SoakTools {
    fn call<'a>(&'a self, _call: &'a ToolCall) -> ToolFuture<'a> {
        let turn = self.turn.load(Ordering::Relaxed);
        let bytes = self.soak.turn(turn).tool_output_bytes.unwrap_or(100);
        Box::pin(std::future::ready(ToolOutput::Text(self.soak.tool_output(turn, bytes))))
    }
}

fn session_config(base_url: &str, websocket: WebsocketMode, rollout: &Path) -> SessionConfig {
    let mut provider = ProviderConfig::new("testkit", base_url);
    provider.key = KeySource::None;
    provider.websocket = websocket;
    let mut config = SessionConfig::new(provider, ModelInfo::new(MODEL, SOAK_CONTEXT_WINDOW));
    // The testkit's reference model compacts remotely; on loopback the provider would otherwise
    // be of kind `other`, whose default chain is local (D114).
    config.provider_kind = Some(ProviderKind::Reference);
    config.features = Features {
        remote_compaction_v2: true,
        responses_websocket_response_processed: websocket == WebsocketMode::Enabled,
    };
    config.base_instructions = BASE_INSTRUCTIONS.to_owned();
    config.initial_context = workload::initial_context();
    config.rollout_path = Some(rollout.to_path_buf());
    if std::env::var_os(UNCALIBRATED_ENV).is_some() {
        config.tokens.calibration = Calibration::Off;
    }
    config
}

/// A figure of `/proc/self/status` in bytes (`VmRSS`, `VmHWM`).
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// CPU time of every thread of this process so far (`/proc/self/task/*/schedstat`), in ms.
///
/// The calling thread yields first: the kernel brings a running thread's figure up to date only
/// at a scheduler tick or when the thread is switched out, so read as it runs it lags by up to a
/// tick (4 ms at 250 Hz).
fn cpu_ms() -> f64 {
    std::thread::yield_now();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0.0 };
    let nanos: u64 = tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    nanos as f64 / 1e6
}

/// One soak session in this process; prints its figures as one JSON line.
async fn child(transport: &str) -> ExitCode {
    let rollout = PathBuf::from(std::env::var(ROLLOUT_ENV).expect("rollout path"));
    let base_url = std::env::var(BASE_URL_ENV).expect("base url");
    let websocket = match transport {
        "ws" => WebsocketMode::Enabled,
        _ => WebsocketMode::Disabled,
    };
    let soak = Arc::new(Soak::default());
    let turns: Vec<_> = (0..SOAK_TURNS).map(|turn| soak.turn(turn).input).collect();
    let turn = Arc::new(AtomicUsize::new(0));
    let tools = SoakTools { soak: Arc::clone(&soak), turn: Arc::clone(&turn) };
    let before = status_bytes("VmRSS");
    let (session, mut events) = Session::builder(session_config(&base_url, websocket, &rollout))
        .tools(tools)
        .build()
        .await
        .expect("the session starts");
    let drain = tokio::spawn(async move { while events.recv().await.is_some() {} });
    // Reset the peak mark to the current size, so the next peak is the session's.
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let cpu_before = cpu_ms();
    let start = Instant::now();
    let mut sizes = vec![std::fs::metadata(&rollout).map_or(0, |meta| meta.len())];
    let mut failure = None;
    for (number, input) in turns.into_iter().enumerate() {
        turn.store(number, Ordering::Relaxed);
        if let Err(error) = session.run_turn(input).await {
            failure = Some(format!("turn {number}: {error}"));
            break;
        }
        session.flush().await.expect("the rollout flushes");
        sizes.push(std::fs::metadata(&rollout).map_or(0, |meta| meta.len()));
    }
    let wall = start.elapsed();
    let client_cpu = cpu_ms() - cpu_before;
    let peak = status_bytes("VmHWM");
    let history_json = serde_json::to_vec(&session.history()).map_or(0, |json| json.len());
    session.shutdown().await.expect("the session shuts down");
    drop(session);
    drain.await.ok();
    let per_turn = |from: usize, to: usize| {
        sizes.get(to).zip(sizes.get(from)).map_or(0.0, |(end, start)| (end - start) as f64)
            / (to - from) as f64
    };
    let line = json!({
        "ok": failure.is_none() && reset,
        "error": failure,
        "peak_reset": reset,
        "wall_ms": wall.as_secs_f64() * 1e3,
        "client_cpu_ms": client_cpu,
        "before": before,
        "peak": peak,
        "history_json": history_json,
        "rollout_bytes": sizes.last().copied().unwrap_or_default(),
        "first_100_per_turn": per_turn(0, 100),
        "last_100_per_turn": per_turn(SOAK_TURNS - 100, SOAK_TURNS),
    });
    println!("{line}");
    ExitCode::SUCCESS
}

/// Runs one session in a child process.
async fn run_child(transport: &str, rollout: &Path, base_url: &str, calibrated: bool) -> Value {
    let mut command = Command::new(std::env::current_exe().unwrap());
    if !calibrated {
        command.env(UNCALIBRATED_ENV, "1");
    }
    let output = command
        .env(CHILD_ENV, transport)
        .env(ROLLOUT_ENV, rollout)
        .env(BASE_URL_ENV, base_url)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(WAIT, output).await.expect("the child finishes").unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let value: Value = serde_json::from_str(line).unwrap_or(Value::Null);
    assert!(
        output.status.success() && value["ok"] == json!(true),
        "the {transport} soak failed: {} {stdout}",
        output.status
    );
    value
}

/// Every line of the rollout at `path`.
fn read_rollout(path: &Path) -> Vec<RolloutLine> {
    let bytes = std::fs::read(path).unwrap();
    bytes
        .split(|byte| *byte == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_slice(line).unwrap())
        .collect()
}

/// The session's estimate errors against reported usage, from its rollout's `token_count`
/// lines: over every request but the first, and over those near the auto-compact limit.
fn estimate_errors(path: &Path) -> String {
    let lines = read_rollout(path);
    let events = lines.iter().filter_map(|line| match &line.item {
        RolloutItem::EventMsg(event @ EventMsg::TokenCount { .. }) => Some(event),
        _ => None,
    });
    let requests = request_estimates(events);
    let limit = ModelInfo::new(MODEL, SOAK_CONTEXT_WINDOW).auto_compact_limit();
    let near: Vec<_> =
        requests.iter().copied().filter(|request| request.reported >= limit / 2).collect();
    let all = ErrorSummary::of(requests.get(1..).unwrap_or_default());
    let near = ErrorSummary::of(&near);
    format!(
        "all {} requests mean {:.2}% max {:.2}%; near the limit {} requests mean {:.2}% max {:.2}%",
        all.requests,
        all.mean_percent,
        all.max_percent,
        near.requests,
        near.mean_percent,
        near.max_percent,
    )
}

/// The fastest of several `serde_json::to_vec` of every line of the rollout at `path`.
fn serialize_recorded(path: &Path) -> (Duration, usize) {
    let lines = read_rollout(path);
    let mut best = Duration::MAX;
    let mut size = 0;
    for _ in 0..BASELINE_RUNS {
        let start = Instant::now();
        let json = serde_json::to_vec(std::hint::black_box(&lines)).unwrap();
        best = best.min(start.elapsed());
        size = json.len();
    }
    (best, size)
}

fn number(value: &Value, field: &str) -> f64 {
    value[field].as_f64().unwrap_or_default()
}

async fn parent() -> ExitCode {
    let server = TestServer::start(TestServerConfig {
        mode: Mode::ReferenceModel(soak_model_config()),
        input_token_limit: Some(u64::try_from(SOAK_CONTEXT_WINDOW).unwrap_or(u64::MAX)),
        ..TestServerConfig::default()
    })
    .await
    .unwrap();
    let base_url = server.base_url();
    let dir = tempfile::tempdir().unwrap();
    let mut ratios = Vec::new();
    // The targets (D106) are in `compactor_testkit::workload::TARGETS`.
    for transport in ["ws", "http"] {
        let mut runs = Vec::new();
        for run in 0..RUNS {
            let path = dir.path().join(format!("rollout-{transport}-{run}.jsonl"));
            let mut result = run_child(transport, &path, &base_url, true).await;
            let (serialize, recorded_json) = serialize_recorded(&path);
            result["serialize_ms"] = json!(serialize.as_secs_f64() * 1e3);
            result["recorded_json"] = json!(recorded_json);
            println!(
                "  {transport:>4} run {run}: {SOAK_TURNS} turns in {:.0} ms, client CPU {:.0} ms; \
                 recorded {:.1} MB ({:.1} ms to serialize); peak {:.1} MB above {:.1} MB; final \
                 history {:.1} KB; rollout {:.0} then {:.0} bytes per turn",
                number(&result, "wall_ms"),
                number(&result, "client_cpu_ms"),
                recorded_json as f64 / 1e6,
                serialize.as_secs_f64() * 1e3,
                (number(&result, "peak") - number(&result, "before")) / 1e6,
                number(&result, "before") / 1e6,
                number(&result, "history_json") / 1e3,
                number(&result, "first_100_per_turn"),
                number(&result, "last_100_per_turn"),
            );
            println!("  {transport:>4} run {run}: calibrated bytes4 {}", estimate_errors(&path));
            runs.push(result);
        }
        // Every run records the same session, so the two sides are taken apart: the least CPU
        // and the fastest serialization of any run. The run whose ratio is lowest would favour a
        // run whose serialization happened to be timed slow.
        let least =
            |field: &str| runs.iter().map(|run| number(run, field)).fold(f64::INFINITY, f64::min);
        let cpu = least("client_cpu_ms");
        let serialize = least("serialize_ms");
        ratios.push(MeasuredRatio::new(
            &format!("soak_{transport}_client_cpu_vs_to_vec_recorded"),
            cpu / serialize,
            format!(
                "{cpu:.0} ms vs {serialize:.2} ms for {:.1} MB recorded (least of {RUNS} runs each)",
                least("recorded_json") / 1e6
            ),
        ));
        let largest = runs
            .iter()
            .max_by(|a, b| {
                (number(a, "peak") - number(a, "before"))
                    .total_cmp(&(number(b, "peak") - number(b, "before")))
            })
            .expect("every transport ran");
        let peak = number(largest, "peak") - number(largest, "before");
        let history = number(largest, "history_json");
        ratios.push(MeasuredRatio::new(
            &format!("soak_{transport}_peak_memory_vs_final_history_json"),
            peak / history,
            format!("{:.1} MB vs {:.1} KB", peak / 1e6, history / 1e3),
        ));
        let first = number(largest, "first_100_per_turn");
        let last = number(largest, "last_100_per_turn");
        ratios.push(MeasuredRatio::new(
            &format!("soak_{transport}_rollout_bytes_per_turn_last_vs_first_100"),
            last / first,
            format!(
                "{last:.0} vs {first:.0} bytes per turn; {:.1} MB in all",
                number(largest, "rollout_bytes") / 1e6
            ),
        ));
    }
    // Plain Bytes4 on the same workload, for comparison; not a measured run.
    let path = dir.path().join("rollout-uncalibrated.jsonl");
    run_child("http", &path, &base_url, false).await;
    println!("  http uncalibrated: plain bytes4 {}", estimate_errors(&path));
    let violations = server.violations();
    server.shutdown().await.ok();
    if !violations.is_empty() {
        println!("FAILED: requests over the window: {violations:?}");
        return ExitCode::FAILURE;
    }
    match workload::report("soak", &ratios) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            println!("cannot write the bench results: {err}");
            ExitCode::FAILURE
        }
    }
}
