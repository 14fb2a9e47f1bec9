//! The crash harness's child: a scripted session with compactions, and its oracle.
//!
//! The child runs [`STEPS`] steps on the reference model (a tool call with a large output in
//! every turn, so a small window auto-compacts before and within turns, and two manual
//! compactions). Each time it has something acknowledged (a step finished, a compaction
//! installed) it first flushes the rollout, then appends an entry to the oracle file
//! (`oracle.jsonl`) and syncs it: the history the session holds, how many compactions are
//! installed, and the length and hash of the rollout so far. Whatever a crash leaves behind must
//! agree with the oracle.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use compactor_core::{
    CompactHookInput, CompactHooks, HookFuture, HookOutcome, Session, SessionConfig, ToolCall,
    ToolFuture, ToolHandler,
};
use compactor_protocol::{ContentItem, ResponseItem, ToolOutput};
use compactor_rollout_trace::TraceConfig;
use compactor_rollout_trace::crash::CrashPoint;
use compactor_testkit::{Mode, ReferenceModelConfig, TestServerConfig, ToolCallPolicy};
use serde_json::{Value, json};

use crate::common::{Options, Transport, session_config_for};

/// The steps of the script: a turn, or a manual compaction.
pub(crate) const STEPS: &[Step] = &[
    Step::Turn,
    Step::Turn,
    Step::Turn,
    Step::Compact,
    Step::Turn,
    Step::Turn,
    Step::Turn,
    Step::Compact,
    Step::Turn,
    Step::Turn,
];

/// One step of the script.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Step {
    Turn,
    Compact,
}

/// The window: about three turns of tool output fill it.
const CONTEXT_WINDOW: i64 = 4_000;
/// The bytes of each tool output.
const TOOL_OUTPUT_BYTES: usize = 6_000;
/// What makes the reference model call the tool.
const TRIGGER: &str = "run the tests";

/// The oracle's file name in the run's folder.
pub(crate) const ORACLE: &str = "oracle.jsonl";
/// The rollout's file name in the run's folder.
pub(crate) const ROLLOUT: &str = "rollout.jsonl";

/// The model server the children talk to.
pub(crate) fn server_config() -> TestServerConfig {
    TestServerConfig {
        mode: Mode::ReferenceModel(ReferenceModelConfig {
            tool_calls: ToolCallPolicy::OnUserText {
                trigger: TRIGGER.to_owned(),
                name: "shell".to_owned(),
                arguments: r#"{"command":"cargo test"}"#.to_owned(),
            },
            reply_padding_bytes: 400,
            ..ReferenceModelConfig::default()
        }),
        ..TestServerConfig::default()
    }
}

/// The session of the script (and of the harness's resumes): v2 compaction over WebSocket with
/// `response.processed`, so every crash point is on its path.
pub(crate) fn session_config(base_url: &str, dir: &Path) -> SessionConfig {
    let options = Options {
        transport: Transport::Ws,
        response_processed: true,
        context_window: CONTEXT_WINDOW,
    };
    let mut config = session_config_for(base_url, dir, &options);
    config.trace = TraceConfig::disabled();
    config.tools =
        vec![json!({"type": "function", "name": "shell", "parameters": {"type": "object"}})];
    config
}

/// The user's text of turn `n`.
pub(crate) fn turn_text(n: usize) -> Vec<ContentItem> {
    vec![ContentItem::InputText { text: format!("step {n}: {TRIGGER} and fix what fails") }]
}

/// Answers every call with [`TOOL_OUTPUT_BYTES`] of deterministic output.
struct Tests;

impl ToolHandler for Tests {
    fn call<'a>(&'a self, call: &'a ToolCall) -> ToolFuture<'a> {
        let line = format!("test {} ... ok\n", call.call_id);
        let text = line.repeat(TOOL_OUTPUT_BYTES / line.len() + 1);
        Box::pin(std::future::ready(ToolOutput::Text(text)))
    }
}

/// The oracle file: one JSON entry per line, each synced before the step it records goes on.
#[derive(Clone)]
pub(crate) struct Oracle {
    dir: PathBuf,
}

impl Oracle {
    /// Appends what is acknowledged now: `kind` (`step` or `installed`), the session's history,
    /// the number of compactions installed, and the rollout so far, after flushing it.
    async fn acknowledge(&self, session: &Session, kind: &str, installs: u64) {
        session.flush().await.unwrap();
        let rollout = tokio::fs::read(self.dir.join(ROLLOUT)).await.unwrap();
        let entry = json!({
            "kind": kind,
            "installs": installs,
            "history": session.history(),
            "rollout_len": rollout.len(),
            "rollout_hash": fnv(&rollout),
        });
        self.append(entry).await;
    }

    async fn append(&self, entry: Value) {
        let path = self.dir.join(ORACLE);
        tokio::task::spawn_blocking(move || {
            use std::io::Write as _;
            let mut file =
                std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
            let mut line = serde_json::to_vec(&entry).unwrap();
            line.push(b'\n');
            file.write_all(&line).unwrap();
            file.sync_data().unwrap();
        })
        .await
        .unwrap();
    }
}

/// The oracle's entries: every complete line (a crash may leave a torn last one, which was never
/// acknowledged).
pub(crate) fn read_oracle(dir: &Path) -> Vec<Value> {
    let Ok(bytes) = std::fs::read(dir.join(ORACLE)) else { return Vec::new() };
    bytes
        .split_inclusive(|&b| b == b'\n')
        .filter(|line| line.ends_with(b"\n"))
        .map(|line| serde_json::from_slice(line).unwrap())
        .collect()
}

/// FNV-1a, 64 bits, in hex: enough to tell a changed rollout prefix.
pub(crate) fn fnv(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// Acknowledges each installed compaction from the `PostCompact` hook, which runs after the
/// install and before the turn goes on.
struct OracleHooks {
    oracle: Oracle,
    session: Arc<Mutex<Option<Session>>>,
    installs: Arc<Mutex<u64>>,
}

impl CompactHooks for OracleHooks {
    fn pre_compact<'a>(&'a self, _input: &'a CompactHookInput) -> HookFuture<'a> {
        Box::pin(std::future::ready(HookOutcome::Continue))
    }

    fn post_compact<'a>(&'a self, _input: &'a CompactHookInput) -> HookFuture<'a> {
        Box::pin(async move {
            let session = self.session.lock().unwrap().clone();
            if let Some(session) = session {
                let installs = {
                    let mut installs = self.installs.lock().unwrap();
                    *installs += 1;
                    *installs
                };
                self.oracle.acknowledge(&session, "installed", installs).await;
            }
            HookOutcome::Continue
        })
    }
}

/// Runs the script in `dir` against the server at `base_url`, writing the oracle as it goes and
/// ending it with a `done` entry that counts the passes through each crash point.
pub(crate) async fn run_script(base_url: &str, dir: &Path) {
    let oracle = Oracle { dir: dir.to_path_buf() };
    let slot = Arc::new(Mutex::new(None));
    let installs = Arc::new(Mutex::new(0u64));
    let hooks = OracleHooks {
        oracle: oracle.clone(),
        session: Arc::clone(&slot),
        installs: Arc::clone(&installs),
    };
    let mut config = session_config(base_url, dir);
    config.rollout_path = Some(dir.join(ROLLOUT));
    let (session, mut events) =
        Session::builder(config).tools(Tests).hooks(hooks).build().await.unwrap();
    *slot.lock().unwrap() = Some(session.clone());
    // The harness reads no events; keep the channel from filling.
    let drain = tokio::spawn(async move { while events.recv().await.is_some() {} });
    for (n, step) in STEPS.iter().enumerate() {
        match step {
            Step::Turn => drop(session.run_turn(turn_text(n)).await.unwrap()),
            Step::Compact => session.compact().await.unwrap(),
        }
        let installed = *installs.lock().unwrap();
        oracle.acknowledge(&session, "step", installed).await;
    }
    // The hooks hold the session: let go of it so it can end.
    slot.lock().unwrap().take();
    session.shutdown().await.unwrap();
    drop(session);
    drain.abort();
    let hits: serde_json::Map<String, Value> = CrashPoint::ALL
        .iter()
        .map(|point| {
            (point.name().to_owned(), Value::from(compactor_rollout_trace::crash::hits(*point)))
        })
        .collect();
    oracle.append(json!({"kind": "done", "hits": hits})).await;
}

/// The history an oracle entry records.
pub(crate) fn entry_history(entry: &Value) -> Vec<ResponseItem> {
    serde_json::from_value(entry["history"].clone()).unwrap()
}
