//! A manual v2 compaction end to end (D48): a 10 000-item history compacted with
//! `Session::compact` against the testkit's binary (D33) in another process on
//! loopback, over WebSocket and over HTTP.
//!
//! - Wall time: at most 4x one serialization of the request plus one plain loopback transfer of
//!   its bytes (a TCP connection to a sink that reads them all and answers one byte), both
//!   measured in the same run. The testkit's server is part of the wall time; its share (its CPU
//!   time during the compaction) is printed beside the ratio.
//! - Client CPU: the CPU time of every thread of the client process during the compaction, at
//!   most 2.5x one `serde_json::to_vec` of the request.
//! - Peak memory: the client process's peak resident memory while compacting, above what it
//!   held before loading the session, at most 4x the history's JSON size.
//!
//! For the reading of the wall-time ratio, the bench also times the least a server does with the
//! request, one typed parse of its bytes (`ResponsesApiRequest`) on one thread (the testkit
//! reads a large request on two, D168), and the testkit's whole round trip on a plain
//! connection; both are printed beside the ratio. That round trip sends the
//! history first, so the compactions find its items' token counts in the server's cache, as a
//! provider finds the prefix of the turn before in its prompt cache (D162).
//!
//! Each compaction runs in a fresh client process: this bench binary started again with
//! [`CHILD_ENV`] set. The child resumes the session from a generated rollout, synced to disk
//! before the child starts
//! (`SessionBuilder::resume`), resets the kernel's peak-memory mark, compacts once, and prints
//! its timings and `/proc/self/status` figures as one JSON line. The server is
//! `target/release/compactor-testkit --port 0`, which `cargo xtask bench` builds first.
//! Each transport runs [`RUNS`] times; the fastest wall time and the largest peak are kept.

#![allow(clippy::print_stdout, reason = "a bench reports on the terminal")]
#![allow(clippy::expect_used, clippy::unwrap_used, reason = "a bench fails loudly")]

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use compactor_client::{KeySource, ProviderConfig, WebsocketMode};
use compactor_core::{Features, ModelInfo, ProviderKind, Session, SessionConfig};
use compactor_engine::{
    PromptOptions, V2PromptOptions, append_v2_trigger, estimate_history, prompt_input,
};
use compactor_protocol::{
    PassThroughList, Prompt, ResponseItem, ResponsesApiRequest, TurnSettings,
};
use compactor_testkit::workload::{self, MeasuredRatio};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Command;

/// Set in a child process: the transport it compacts over (`ws` or `http`).
const CHILD_ENV: &str = "COMPACTOR_BENCH_E2E_CHILD";
const ROLLOUT_ENV: &str = "COMPACTOR_BENCH_E2E_ROLLOUT";
const BASE_URL_ENV: &str = "COMPACTOR_BENCH_E2E_BASE_URL";
const WINDOW_ENV: &str = "COMPACTOR_BENCH_E2E_WINDOW";

/// The history's size.
const ITEMS: usize = 10_000;
/// Compactions per transport.
const RUNS: usize = 5;
/// Baseline repetitions.
const BASELINE_RUNS: usize = 7;

const MODEL: &str = "gpt-bench";
const THREAD_ID: &str = "thread-bench";
const BASE_INSTRUCTIONS: &str = "You are a coding agent working in a repository. Use the tools.";
/// Every wait on another process is bounded by this.
const WAIT: Duration = Duration::from_secs(120);

fn main() -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    match std::env::var(CHILD_ENV) {
        Ok(transport) => runtime.block_on(child(&transport)),
        Err(_) => runtime.block_on(parent()),
    }
}

/// The session configuration both transports share.
fn session_config(base_url: &str, websocket: WebsocketMode, window: i64) -> SessionConfig {
    let mut provider = ProviderConfig::new("testkit", base_url);
    provider.key = KeySource::None;
    provider.websocket = websocket;
    let mut config = SessionConfig::new(provider, ModelInfo::new(MODEL, window));
    // The testkit's reference model compacts remotely; on loopback the provider would otherwise
    // be of kind `other`, whose default chain is local (D114).
    config.provider_kind = Some(ProviderKind::Reference);
    config.features = Features {
        remote_compaction_v2: true,
        responses_websocket_response_processed: websocket == WebsocketMode::Enabled,
    };
    config.base_instructions = BASE_INSTRUCTIONS.to_owned();
    config.initial_context = workload::initial_context();
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

/// CPU time of every thread of process `pid` so far (`/proc/PID/task/*/schedstat`), in ms.
///
/// The kernel brings a running thread's figure up to date only at a scheduler tick (every 4 ms
/// at 250 Hz) or when the thread is switched out: read as it runs, this process's own figure
/// lags by up to a tick, and a compaction of 12-16 ms read that way was off by -2 to +4 ms.
/// Yielding first switches the calling thread out, which makes its figure exact; the other
/// threads of a client and the server's are normally asleep when they are read, and a sleeping
/// thread's figure is exact.
fn cpu_ms(pid: &str) -> f64 {
    if pid == "self" {
        std::thread::yield_now();
    }
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return 0.0 };
    let nanos: u64 = tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    nanos as f64 / 1e6
}

/// Writes the session's rollout and waits until the disk holds it. A session that reached
/// 10 000 items wrote its rollout long ago, and the kernel has written it back; left dirty, the
/// whole file would be flushed by the compaction's own sync of its line (3-5 ms more on the
/// development machine), a cost no real compaction pays.
fn write_synced(path: &Path, bytes: &[u8]) {
    let mut file = std::fs::File::create(path).unwrap();
    std::io::Write::write_all(&mut file, bytes).unwrap();
    file.sync_all().unwrap();
}

/// One compaction in this process; prints its figures as one JSON line.
async fn child(transport: &str) -> ExitCode {
    let rollout = PathBuf::from(std::env::var(ROLLOUT_ENV).expect("rollout path"));
    let base_url = std::env::var(BASE_URL_ENV).expect("base url");
    let window: i64 = std::env::var(WINDOW_ENV).expect("window").parse().expect("a window");
    let websocket = match transport {
        "ws" => WebsocketMode::Enabled,
        _ => WebsocketMode::Disabled,
    };
    let before_loading = status_bytes("VmRSS");
    let (session, mut events) = Session::builder(session_config(&base_url, websocket, window))
        .resume(&rollout)
        .await
        .expect("the rollout resumes");
    let drain = tokio::spawn(async move { while events.recv().await.is_some() {} });
    let resume_peak = status_bytes("VmHWM");
    let loaded = status_bytes("VmRSS");
    // Reset the peak mark to the current size, so the next peak is the compaction's.
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();

    let cpu_before = cpu_ms("self");
    let start = Instant::now();
    let result = session.compact().await;
    let compact_time = start.elapsed();
    let client_cpu = cpu_ms("self") - cpu_before;
    let compact_peak = status_bytes("VmHWM");
    let items_after = session.history().len();
    let generation = session.window_generation();
    session.shutdown().await.expect("the session shuts down");
    drop(session);
    drain.await.ok();
    let line = json!({
        "ok": result.is_ok() && reset && generation == 1,
        "error": result.err().map(|error| error.to_string()),
        "peak_reset": reset,
        "compact_ms": compact_time.as_secs_f64() * 1e3,
        "client_cpu_ms": client_cpu,
        "before_loading": before_loading,
        "loaded": loaded,
        "resume_peak": resume_peak,
        "compact_peak": compact_peak,
        "items_before": ITEMS,
        "items_after": items_after,
    });
    println!("{line}");
    ExitCode::SUCCESS
}

/// The request the HTTP transport sends for the v2 compaction of `history`, without its
/// serialization: the prompt as core builds it, then the request body borrowing it.
fn v2_prompt(history: &[ResponseItem]) -> Prompt<'_> {
    let options =
        PromptOptions { pass_through: PassThroughList::default(), ..PromptOptions::default() };
    let mut prompt = Prompt {
        input: prompt_input(history, &options),
        base_instructions: BASE_INSTRUCTIONS.to_owned(),
        ..Prompt::default()
    };
    append_v2_trigger(&mut prompt.input, &V2PromptOptions::default());
    prompt
}

/// A sink on loopback: reads each connection to its end, then answers one byte.
async fn start_sink() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buffer = vec![0u8; 256 * 1024];
            while socket.read(&mut buffer).await.is_ok_and(|read| read > 0) {}
            socket.write_all(b"k").await.ok();
        }
    });
    (addr, task)
}

/// The fastest of several runs of one serialization of the request, one plain loopback transfer
/// of its bytes, and (for information: the least a server does with them) one typed parse.
struct Baseline {
    serialize: Duration,
    transfer: Duration,
    parse: Duration,
    body: Vec<u8>,
}

async fn baseline(history: &[ResponseItem]) -> Baseline {
    let (sink, sink_task) = start_sink().await;
    let prompt = v2_prompt(history);
    let settings = TurnSettings { model: MODEL.to_owned(), ..TurnSettings::default() };
    let mut request = ResponsesApiRequest::from_prompt(&prompt, &settings);
    request.prompt_cache_key = Some(THREAD_ID.to_owned());
    let mut serialize = Duration::MAX;
    let mut transfer = Duration::MAX;
    let mut parse = Duration::MAX;
    let mut body = Vec::new();
    for _ in 0..BASELINE_RUNS {
        let start = Instant::now();
        let bytes = serde_json::to_vec(std::hint::black_box(&request)).unwrap();
        serialize = serialize.min(start.elapsed());

        let start = Instant::now();
        let mut socket = TcpStream::connect(sink).await.unwrap();
        socket.write_all(&bytes).await.unwrap();
        socket.shutdown().await.unwrap();
        let mut ack = [0u8; 1];
        socket.read_exact(&mut ack).await.unwrap();
        transfer = transfer.min(start.elapsed());

        let start = Instant::now();
        let parsed: ResponsesApiRequest<'static> = serde_json::from_slice(&bytes).unwrap();
        parse = parse.min(start.elapsed());
        drop(parsed);
        body = bytes;
    }
    sink_task.abort();
    Baseline { serialize, transfer, parse, body }
}

/// The server's share: the request bytes POSTed to the testkit on a plain connection and its
/// answer read to the end (parsing, checking and answering the request, the transfer included).
async fn server_round_trip(base_url: &str, body: &[u8]) -> Duration {
    let authority = base_url.trim_start_matches("http://").split('/').next().unwrap_or_default();
    let head = format!(
        "POST /v1/responses HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
         Accept: text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut best = Duration::MAX;
    for _ in 0..RUNS {
        let start = Instant::now();
        let mut socket = TcpStream::connect(authority).await.unwrap();
        socket.write_all(head.as_bytes()).await.unwrap();
        socket.write_all(body).await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(WAIT, socket.read_to_end(&mut answer)).await.unwrap().unwrap();
        best = best.min(start.elapsed());
        assert!(answer.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));
    }
    best
}

/// The testkit's binary beside this bench's binary (`target/release/deps/..`).
fn testkit_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("COMPACTOR_TESTKIT_BIN") {
        return Some(PathBuf::from(path));
    }
    let exe = std::env::current_exe().ok()?;
    let path =
        exe.parent()?.parent()?.join(format!("compactor-testkit{}", std::env::consts::EXE_SUFFIX));
    path.exists().then_some(path)
}

/// Runs one compaction in a child process.
async fn run_child(transport: &str, rollout: &Path, base_url: &str, window: i64) -> Value {
    let output = Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, transport)
        .env(ROLLOUT_ENV, rollout)
        .env(BASE_URL_ENV, base_url)
        .env(WINDOW_ENV, window.to_string())
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
        "the {transport} compaction failed: {} {stdout}",
        output.status
    );
    value
}

async fn parent() -> ExitCode {
    let Some(binary) = testkit_binary() else {
        println!(
            "FAILED: target/release/compactor-testkit is missing; `cargo xtask bench` builds it \
             (or run `cargo build --release -p compactor-testkit`)"
        );
        return ExitCode::FAILURE;
    };
    let history = workload::realistic_history(ITEMS);
    let history_bytes = serde_json::to_vec(&history).unwrap().len();
    let estimate = estimate_history(BASE_INSTRUCTIONS, &history, &PassThroughList::default());
    // Twice the history: nothing is trimmed, the whole history is sent.
    let window = i64::try_from(estimate * 2).unwrap();
    let rollout = workload::rollout_jsonl(THREAD_ID, &history);
    let Baseline { serialize, transfer, parse, body: request } = baseline(&history).await;
    drop(history);
    let baseline = serialize + transfer;
    println!(
        "history: {ITEMS} items, {:.1} MB of JSON; request {:.1} MB; serialize {:.2} ms + \
         loopback transfer {:.2} ms = {:.2} ms",
        history_bytes as f64 / 1e6,
        request.len() as f64 / 1e6,
        serialize.as_secs_f64() * 1e3,
        transfer.as_secs_f64() * 1e3,
        baseline.as_secs_f64() * 1e3,
    );

    let mut server = Command::new(&binary)
        .args(["--port", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let server_pid = server.id().map(|pid| pid.to_string()).unwrap_or_default();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let base_url = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("the testkit prints its URL")
        .unwrap()
        .expect("the testkit prints its URL");
    let base_url = base_url.trim().to_owned();

    let server_time = server_round_trip(&base_url, &request).await;
    println!(
        "server round trip (POST of the request bytes, answer read to the end): {:.2} ms; a typed \
         parse of the request alone: {:.2} ms",
        server_time.as_secs_f64() * 1e3,
        parse.as_secs_f64() * 1e3,
    );
    let dir = tempfile::tempdir().unwrap();
    let mut results: Vec<(&str, Value)> = Vec::new();
    for run in 0..RUNS {
        for transport in ["ws", "http"] {
            let path = dir.path().join(format!("rollout-{transport}-{run}.jsonl"));
            write_synced(&path, &rollout);
            let server_cpu = cpu_ms(&server_pid);
            let mut result = run_child(transport, &path, &base_url, window).await;
            result["server_cpu_ms"] = json!(cpu_ms(&server_pid) - server_cpu);
            println!(
                "  {transport:>4} run {run}: compact {:.2} ms (client CPU {:.1} ms, server CPU \
                 {:.1} ms), peak {:.1} MB above {:.1} MB \
                 (resumed {:.1} MB, resume peak {:.1} MB), {} -> {} items",
                result["compact_ms"].as_f64().unwrap_or_default(),
                result["client_cpu_ms"].as_f64().unwrap_or_default(),
                result["server_cpu_ms"].as_f64().unwrap_or_default(),
                mb(&result, "compact_peak", "before_loading"),
                result["before_loading"].as_f64().unwrap_or_default() / 1e6,
                mb(&result, "loaded", "before_loading"),
                mb(&result, "resume_peak", "before_loading"),
                result["items_before"],
                result["items_after"],
            );
            results.push((transport, result));
        }
    }
    server.start_kill().ok();
    server.wait().await.ok();

    let mut ratios = Vec::new();
    for transport in ["ws", "http"] {
        let runs: Vec<&Value> =
            results.iter().filter(|(t, _)| *t == transport).map(|(_, value)| value).collect();
        let fastest = runs
            .iter()
            .min_by(|a, b| ms(a, "compact_ms").total_cmp(&ms(b, "compact_ms")))
            .expect("every transport ran");
        let wall = fastest["compact_ms"].as_f64().unwrap_or_default();
        let largest = runs
            .iter()
            .max_by(|a, b| {
                mb(a, "compact_peak", "before_loading").total_cmp(&mb(
                    b,
                    "compact_peak",
                    "before_loading",
                ))
            })
            .expect("every transport ran");
        let peak = mb(largest, "compact_peak", "before_loading");
        let resumed = mb(largest, "loaded", "before_loading");
        let baseline_ms = baseline.as_secs_f64() * 1e3;
        let client_cpu = ms(fastest, "client_cpu_ms");
        let server_cpu = ms(fastest, "server_cpu_ms");
        ratios.push(MeasuredRatio::new(
            &format!("e2e_{transport}_wall_vs_serialize_transfer"),
            wall / baseline_ms,
            format!(
                "{wall:.2} ms vs {baseline_ms:.2} ms (serialize {:.2} + transfer {:.2}); the \
                 testkit server's CPU during it {server_cpu:.1} ms ({:.0}% of the wall time, \
                 {:.2}x the baseline), client CPU {client_cpu:.1} ms; the server's round trip \
                 alone {:.2} ms; a typed parse of the request on one thread {:.2} ms ({:.2}x the \
                 baseline), which the testkit reads on two (D168)",
                serialize.as_secs_f64() * 1e3,
                transfer.as_secs_f64() * 1e3,
                100.0 * server_cpu / wall,
                server_cpu / baseline_ms,
                server_time.as_secs_f64() * 1e3,
                parse.as_secs_f64() * 1e3,
                parse.as_secs_f64() / baseline.as_secs_f64(),
            ),
        ));
        let fastest_cpu = runs
            .iter()
            .map(|run| ms(run, "client_cpu_ms"))
            .min_by(f64::total_cmp)
            .unwrap_or(client_cpu);
        let to_vec_ms = serialize.as_secs_f64() * 1e3;
        ratios.push(MeasuredRatio::new(
            &format!("e2e_{transport}_client_cpu_vs_to_vec"),
            fastest_cpu / to_vec_ms,
            format!("{fastest_cpu:.1} ms vs {to_vec_ms:.2} ms (least of {RUNS} runs)"),
        ));
        let history_mb = history_bytes as f64 / 1e6;
        ratios.push(MeasuredRatio::new(
            &format!("e2e_{transport}_peak_memory_vs_history_json"),
            peak / history_mb,
            format!(
                "{peak:.1} MB vs {history_mb:.1} MB; the resumed session held {resumed:.1} MB, the \
                 compaction added {:.1} MB",
                peak - resumed
            ),
        ));
    }
    match workload::report("e2e", &ratios) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            println!("cannot write the bench results: {err}");
            ExitCode::FAILURE
        }
    }
}

/// `value[field]`, a number of milliseconds.
fn ms(value: &Value, field: &str) -> f64 {
    value[field].as_f64().unwrap_or_default()
}

/// `value[field] - value[base]` in MB.
fn mb(value: &Value, field: &str, base: &str) -> f64 {
    let field = value[field].as_f64().unwrap_or_default();
    let base = value[base].as_f64().unwrap_or_default();
    (field - base) / 1e6
}
