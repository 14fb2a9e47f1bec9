//! Helpers of the interop suite: the servers' URLs, clients, bounded waits, what a streamed turn
//! delivered, a tapping TCP forwarder, and core sessions with their rollouts.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use compactor_client::{
    ClientNotice, ClientObserver, KeySource, ModelClient, ProviderConfig, RetryPolicy,
    WebsocketMode,
};
use compactor_core::{
    ModelInfo, ProviderKind, Session, SessionConfig, ToolCall, ToolFuture, ToolHandler,
};
use compactor_protocol::{
    CompactionImplementation, CompactorError, ContentItem, EventMsg, Prompt, ResponseEvent,
    ResponseItem, RolloutItem, TokenUsage, ToolOutput, TurnSettings, owned_items,
};
use compactor_rollout_trace::{parse_rollout, reconstruct_history_from_rollout};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// The bound of every wait on a server. Generous: two cores also run the other servers, and
/// LiteLLM answers a tool round in several hops.
pub(crate) const WAIT: Duration = Duration::from_secs(60);

/// The base URL of a server, from the variable `cargo xtask interop` sets.
pub(crate) fn peer_url(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: this suite runs under `cargo xtask interop`, which installs and \
             starts the independent servers and passes their URLs"
        )
    })
}

/// Awaits `future`, failing the test after [`WAIT`] with `what`.
pub(crate) async fn bounded<F: Future>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(WAIT, future).await {
        Ok(output) => output,
        Err(_) => panic!("{what}: no answer within {} s", WAIT.as_secs()),
    }
}

/// A provider at `base_url` with patient but bounded retries and timeouts.
pub(crate) fn provider(
    name: &str,
    base_url: &str,
    key: KeySource,
    websocket: WebsocketMode,
) -> ProviderConfig {
    ProviderConfig {
        key,
        websocket,
        retry: RetryPolicy {
            max_retries: 2,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
        },
        stream_idle_timeout: Duration::from_secs(30),
        connect_timeout: Duration::from_secs(5),
        websocket_connect_timeout: Duration::from_secs(10),
        request_timeout: Duration::from_secs(30),
        ..ProviderConfig::new(name, base_url)
    }
}

/// Every notice a client gave, in order.
#[derive(Clone, Default)]
pub(crate) struct Notices(Arc<Mutex<Vec<ClientNotice>>>);

impl Notices {
    pub(crate) fn observer(&self) -> ClientObserver {
        let notices = Arc::clone(&self.0);
        ClientObserver::new(move |notice| notices.lock().unwrap().push(notice.clone()))
    }

    pub(crate) fn all(&self) -> Vec<ClientNotice> {
        self.0.lock().unwrap().clone()
    }

    /// Fails when the client fell back from WebSocket to HTTP: a WebSocket test must stay on it.
    pub(crate) fn assert_no_fallback(&self) {
        let fallbacks: Vec<ClientNotice> = self
            .all()
            .into_iter()
            .filter(|notice| matches!(notice, ClientNotice::FallbackToHttp { .. }))
            .collect();
        assert!(fallbacks.is_empty(), "the client fell back to HTTP: {fallbacks:?}");
    }
}

/// A client of `config` for the thread `interop-thread`, reporting to `notices`.
pub(crate) fn client(config: ProviderConfig, notices: &Notices) -> ModelClient {
    ModelClient::builder(config, "interop-thread").observer(notices.observer()).build().unwrap()
}

/// The one tool every tool test offers.
pub(crate) fn shell_tool() -> Value {
    json!({
        "type": "function",
        "name": "shell",
        "description": "Runs a shell command and returns its output.",
        "strict": false,
        "parameters": {
            "type": "object",
            "properties": {"cmd": {"type": "string", "description": "The command."}},
            "required": ["cmd"],
            "additionalProperties": false,
        },
    })
}

/// A prompt with `input` and `tools`.
pub(crate) fn prompt(input: Vec<ResponseItem>, tools: Vec<Value>) -> Prompt<'static> {
    Prompt { input: owned_items(input), tools, ..Prompt::default() }
}

/// The settings of a request to `model`.
pub(crate) fn settings(model: &str) -> TurnSettings {
    TurnSettings { model: model.to_owned(), ..TurnSettings::default() }
}

/// An item from its wire JSON.
pub(crate) fn item(json: Value) -> ResponseItem {
    serde_json::from_value(json).unwrap()
}

/// What one streamed response delivered: its events, then its error if it ended with one.
#[derive(Debug)]
pub(crate) struct Turn {
    pub(crate) events: Vec<ResponseEvent>,
    pub(crate) error: Option<CompactorError>,
}

impl Turn {
    /// The text deltas, concatenated.
    pub(crate) fn deltas(&self) -> String {
        self.events
            .iter()
            .filter_map(|event| match event {
                ResponseEvent::OutputTextDelta { delta } => Some(delta.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The items of the `OutputItemDone` events.
    pub(crate) fn output_items(&self) -> Vec<ResponseItem> {
        self.events
            .iter()
            .filter_map(|event| match event {
                ResponseEvent::OutputItemDone { item } => Some(item.clone()),
                _ => None,
            })
            .collect()
    }

    /// The text of the finished assistant messages.
    pub(crate) fn message_text(&self) -> String {
        self.output_items()
            .iter()
            .filter(|item| item.role() == Some("assistant"))
            .filter_map(ResponseItem::message_text)
            .collect()
    }

    /// The finished function calls: name and parsed arguments.
    pub(crate) fn function_calls(&self) -> Vec<(String, Value)> {
        self.output_items()
            .into_iter()
            .filter_map(|item| match item {
                ResponseItem::FunctionCall { name, arguments, call_id, .. } => {
                    assert!(!call_id.is_empty(), "a function call without call_id");
                    let arguments = serde_json::from_str(&arguments).unwrap_or_else(|err| {
                        panic!("function call arguments {arguments:?} are not JSON: {err}")
                    });
                    Some((name, arguments))
                }
                _ => None,
            })
            .collect()
    }

    /// The id of `response.created`, when the server sent one.
    pub(crate) fn created_id(&self) -> Option<&str> {
        self.events.iter().find_map(|event| match event {
            ResponseEvent::Created { response_id } => response_id.as_deref(),
            _ => None,
        })
    }

    /// The completed response's id and usage; fails when the stream did not complete.
    pub(crate) fn completed(&self) -> (&str, Option<TokenUsage>) {
        assert_eq!(self.error, None, "the stream ended with an error after {:?}", self.events);
        match self.events.last() {
            Some(ResponseEvent::Completed { response_id, token_usage, .. }) => {
                (response_id.as_str(), *token_usage)
            }
            other => panic!("the stream did not end with Completed but with {other:?}"),
        }
    }
}

/// The checks every completed stream passes: a `Completed` last with a non-empty id equal to the
/// created id (when the server sent one), and usage with input and output tokens that add up.
fn assert_completed(turn: &Turn) -> String {
    let (id, token_usage) = turn.completed();
    assert!(!id.is_empty(), "empty completed id");
    if let Some(created) = turn.created_id() {
        assert_eq!(created, id, "response.created and response.completed name other responses");
    }
    let usage = token_usage.unwrap_or_else(|| panic!("no usage in {:?}", turn.events));
    assert!(usage.input_tokens > 0 && usage.output_tokens > 0, "{usage:?}");
    assert_eq!(usage.total_tokens, usage.input_tokens + usage.output_tokens, "{usage:?}");
    id.to_owned()
}

/// A text turn: the deltas add up to the finished message, whose text is `expected`; no tool
/// call; completed with usage. Returns the response id.
pub(crate) fn assert_text_turn(turn: &Turn, expected: &str) -> String {
    let id = assert_completed(turn);
    assert_eq!(turn.message_text(), expected, "events: {:?}", turn.events);
    assert_eq!(turn.deltas(), expected, "the deltas do not add up to the message");
    assert_eq!(turn.function_calls(), Vec::new());
    id
}

/// A tool turn: exactly the function call `name(arguments)`, completed with usage.
pub(crate) fn assert_tool_turn(turn: &Turn, name: &str, arguments: &Value) {
    assert_completed(turn);
    assert_eq!(turn.function_calls(), vec![(name.to_owned(), arguments.clone())]);
    assert_eq!(turn.message_text(), "");
}

/// Opens a stream on a new session of `client` and reads it to its end. The session is dropped
/// afterwards, giving its WebSocket back to the client for the next turn.
pub(crate) async fn stream_turn(
    client: &ModelClient,
    prompt: &Prompt<'_>,
    settings: &TurnSettings,
) -> Result<Turn, CompactorError> {
    let mut session = client.new_session();
    let mut stream = bounded("opening the stream", session.stream(prompt, settings)).await?;
    let mut events = Vec::new();
    let mut error = None;
    while let Some(next) = bounded("reading the stream", stream.next()).await {
        assert!(error.is_none(), "an item followed the stream's error: {next:?}");
        match next {
            Ok(event) => events.push(event),
            Err(err) => error = Some(err),
        }
    }
    Ok(Turn { events, error })
}

/// A TCP forwarder on 127.0.0.1 in front of a server: it counts the connections clients open
/// and keeps every byte the server sent back, so a test can prove that two turns shared one
/// WebSocket and can read the body of an error the client only summarized. Dropping it stops
/// its tasks.
pub(crate) struct Tap {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    received: Arc<Mutex<Vec<u8>>>,
    tasks: JoinSet<()>,
}

impl Tap {
    /// A tap in front of the server of `base_url` (`http://127.0.0.1:PORT[/path]`).
    pub(crate) async fn start(base_url: &str) -> Self {
        let authority = base_url
            .strip_prefix("http://")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("not an http:// URL: {base_url}"));
        let target: SocketAddr = authority.parse().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let received = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = JoinSet::new();
        let (count, log) = (Arc::clone(&connections), Arc::clone(&received));
        tasks.spawn(async move {
            // The forwarding tasks live in this task's set: aborting it drops (aborts) them.
            let mut forwards = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                forwards.spawn(forward(client, target, Arc::clone(&log)));
            }
        });
        Self { addr, connections, received, tasks }
    }

    /// `base_url` with the tap's address in place of the server's.
    pub(crate) fn url(&self, base_url: &str) -> String {
        let rest = base_url.strip_prefix("http://").unwrap();
        let path = rest.find('/').map_or("", |at| &rest[at..]);
        format!("http://{}{path}", self.addr)
    }

    /// How many connections clients opened through the tap.
    pub(crate) fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// The JSON bodies of every `400` answer the server sent, in order.
    pub(crate) fn bad_request_bodies(&self) -> Vec<Value> {
        let received = self.received.lock().unwrap().clone();
        let mut bodies = Vec::new();
        let mut from = 0;
        while let Some(at) = find(&received[from..], b"HTTP/1.1 400") {
            let head_start = from + at;
            let Some(head_len) = find(&received[head_start..], b"\r\n\r\n") else { break };
            let body_start = head_start + head_len + 4;
            let mut values =
                serde_json::Deserializer::from_slice(&received[body_start..]).into_iter::<Value>();
            if let Some(Ok(body)) = values.next() {
                bodies.push(body);
            }
            from = body_start;
        }
        bodies
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

async fn forward(client: TcpStream, target: SocketAddr, log: Arc<Mutex<Vec<u8>>>) {
    let Ok(server) = TcpStream::connect(target).await else { return };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = async {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
        let _ = server_write.shutdown().await;
    };
    let downstream = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    log.lock().unwrap().extend_from_slice(&buf[..n]);
                    if client_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = client_write.shutdown().await;
    };
    tokio::join!(upstream, downstream);
}

/// The `details` of a schema-validation `400`, as `JSON path: message` lines (the agentserver
/// names the offending field of the request body this way).
pub(crate) fn validation_paths(body: &Value) -> Vec<String> {
    let error = &body["error"];
    let details = error["details"].as_array().cloned().unwrap_or_default();
    if details.is_empty() {
        return vec![format!("{}: {}", error["param"], error["message"])];
    }
    let mut lines: Vec<String> = details
        .iter()
        .map(|detail| {
            format!(
                "{}: {}",
                detail["param"].as_str().unwrap_or("?"),
                detail["message"].as_str().unwrap_or("?")
            )
        })
        .collect();
    lines.dedup();
    lines
}

/// Answers every `shell` call with a fixed listing, and records the calls.
#[derive(Clone, Default)]
pub(crate) struct ShellTool {
    pub(crate) calls: Arc<Mutex<Vec<ToolCall>>>,
}

/// What [`ShellTool`] answers: a listing of a few kilobytes, so that masking it in a prune
/// compaction saves tokens.
pub(crate) fn shell_output() -> String {
    (0..120)
        .map(|n| format!("crates/compactor-interop/src/module_{n:03}.rs"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl ToolHandler for ShellTool {
    fn call<'a>(&'a self, call: &'a ToolCall) -> ToolFuture<'a> {
        self.calls.lock().unwrap().push(call.clone());
        Box::pin(std::future::ready(ToolOutput::Text(shell_output())))
    }
}

/// A session config for `provider` and `model`, with the shell tool, a developer message as the
/// initial context, and its rollout in `dir`.
pub(crate) fn session_config(provider: ProviderConfig, model: &str, dir: &Path) -> SessionConfig {
    let mut config = SessionConfig::new(provider, ModelInfo::new(model, 200_000));
    config.base_instructions = "You are a coding agent under an interop test.".to_owned();
    config.tools = vec![shell_tool()];
    config.initial_context =
        vec![ResponseItem::developer_text("Answer briefly; use the shell tool when asked.")];
    config.rollout_path = Some(dir.join("rollout.jsonl"));
    config
}

/// A core session and its events.
pub(crate) struct Harness {
    pub(crate) session: Session,
    events: mpsc::Receiver<EventMsg>,
    pub(crate) seen: Vec<EventMsg>,
    pub(crate) tools: ShellTool,
    pub(crate) dir: tempfile::TempDir,
}

impl Harness {
    /// A session of `edit(session_config(...))` with rollouts in a new temporary folder.
    pub(crate) async fn start(
        provider: ProviderConfig,
        model: &str,
        edit: impl FnOnce(&mut SessionConfig),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = session_config(provider, model, dir.path());
        edit(&mut config);
        let tools = ShellTool::default();
        let (session, events) = Session::builder(config)
            .thread_id("interop-session")
            .tools(tools.clone())
            .build()
            .await
            .unwrap();
        Self { session, events, seen: Vec::new(), tools, dir }
    }

    /// Runs a turn with one text input; fails the test with the turn's error and events.
    pub(crate) async fn turn(&mut self, text: &str) -> Option<String> {
        let input = vec![ContentItem::InputText { text: text.to_owned() }];
        let result = bounded("a core turn", self.session.run_turn(input)).await;
        self.drain();
        match result {
            Ok(outcome) => outcome.last_agent_message,
            Err(err) => panic!("turn {text:?} failed: {err}\nevents: {:#?}", self.seen),
        }
    }

    /// Runs a turn that may fail, returning its error.
    pub(crate) async fn try_turn(&mut self, text: &str) -> Result<Option<String>, CompactorError> {
        let input = vec![ContentItem::InputText { text: text.to_owned() }];
        let result = bounded("a core turn", self.session.run_turn(input)).await;
        self.drain();
        result.map(|outcome| outcome.last_agent_message)
    }

    /// Moves every event received so far into `seen`.
    pub(crate) fn drain(&mut self) {
        while let Ok(event) = self.events.try_recv() {
            self.seen.push(event);
        }
    }

    /// The `stream_error` messages seen (`Reconnecting... n/max`).
    pub(crate) fn stream_errors(&self) -> Vec<String> {
        self.seen
            .iter()
            .filter_map(|event| {
                let json = serde_json::to_value(event).unwrap();
                (json["type"] == "stream_error")
                    .then(|| json["message"].as_str().unwrap_or("").to_owned())
            })
            .collect()
    }

    /// The rollout's path.
    pub(crate) fn rollout_path(&self) -> std::path::PathBuf {
        self.dir.path().join("rollout.jsonl")
    }

    /// The history a resume from the rollout rebuilds, and the number of `compacted` lines.
    pub(crate) async fn resumed(&self) -> (Vec<ResponseItem>, usize) {
        self.session.flush().await.unwrap();
        let bytes = std::fs::read(self.rollout_path()).unwrap();
        let contents = parse_rollout(&bytes);
        assert!(contents.report.is_clean(), "{:?}", contents.report);
        let compacted = contents
            .lines
            .iter()
            .filter(|line| matches!(line.item, RolloutItem::Compacted(_)))
            .count();
        let history = reconstruct_history_from_rollout(
            &contents.lines,
            &compactor_engine::rebuild_legacy_compacted,
        )
        .history;
        (history, compacted)
    }

    /// A new session resumed from the rollout (on the same config), after the live one is shut
    /// down: its history is what it rebuilt.
    pub(crate) async fn resume(&self) -> Session {
        // The live session holds the rollout's writer lock until it shuts down; a second writer
        // on the same file is refused, as it would be for another process.
        bounded("shutting the live session down", self.session.shutdown()).await.unwrap();
        let config = self.session.config().clone();
        let (session, _events) =
            bounded("resuming", Session::builder(config).resume(&self.rollout_path()))
                .await
                .unwrap();
        session
    }
}

/// `text` of the user messages in `history`, in order.
pub(crate) fn user_texts(history: &[ResponseItem]) -> Vec<String> {
    history
        .iter()
        .filter(|item| item.role() == Some("user"))
        .filter_map(ResponseItem::message_text)
        .collect()
}

/// A session against a peer with no chain configured: the peer, on loopback, is a provider of
/// kind `other`, whose default chain is `local -> prune` (D114), so a compaction summarizes
/// locally through the peer's own `/responses` and installs the summary.
pub(crate) async fn compacts_locally_without_a_chain(provider: ProviderConfig, model: &str) {
    let mut h = Harness::start(provider, model, |config| config.tools = Vec::new()).await;
    let config = h.session.config();
    assert_eq!(config.compaction.chain, []);
    assert_eq!(config.provider_kind(), ProviderKind::Other);
    assert_eq!(
        config.compaction_chain(),
        [CompactionImplementation::Responses, CompactionImplementation::Prune]
    );
    // No "compact" in it: the agentserver answers such a message with a compaction item.
    h.turn("hello from the interop suite").await;
    if let Err(err) = bounded("a compaction", h.session.compact()).await {
        panic!("the compaction failed: {err}\nevents: {:#?}", h.seen);
    }
    h.drain();
    let history = h.session.history();
    let summary = history
        .iter()
        .filter_map(ResponseItem::message_text)
        .find(|text| text.starts_with(compactor_engine::SUMMARY_PREFIX));
    assert!(summary.is_some(), "no local summary in {history:#?}");
    let kept = user_texts(&history);
    assert!(kept.contains(&"hello from the interop suite".to_owned()), "{history:#?}");
    let (rebuilt, compacted) = h.resumed().await;
    assert_eq!((rebuilt, compacted), (history, 1));
    bounded("shutdown", h.session.shutdown()).await.unwrap();
}
