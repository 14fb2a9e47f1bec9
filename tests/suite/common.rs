//! The harness of the core tests: a session wired to a testkit server, its events, rollout,
//! trace and analytics.

use std::path::PathBuf;
use std::time::Duration;

use compactor_analytics::{AnalyticsClient, AnalyticsConfig, CompactionEvent, MemorySink};
use compactor_client::{KeySource, ProviderConfig, RetryPolicy, SecretString, WebsocketMode};
use compactor_core::{Features, ModelInfo, ProviderKind, Session, SessionConfig};
use compactor_protocol::{
    ContentItem, EventMsg, ResponseItem, RolloutItem, RolloutLine, TokenUsageInfo,
};
use compactor_rollout_trace::{TraceConfig, parse_rollout, reconstruct_history_from_rollout};
use compactor_testkit::{ContextWindows, Mode, ReferenceModelConfig, TestServer, TestServerConfig};
use tokio::sync::mpsc;

/// Every test's network wait is bounded by this.
pub(crate) const WAIT: Duration = Duration::from_secs(20);

/// Runs `future` with the test deadline.
pub(crate) async fn bounded<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(WAIT, future).await.expect("the test timed out")
}

/// How a harness session talks to its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    Ws,
    Http,
}

/// Harness options.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) transport: Transport,
    pub(crate) response_processed: bool,
    pub(crate) context_window: i64,
}

impl Default for Options {
    fn default() -> Self {
        Self { transport: Transport::Ws, response_processed: true, context_window: 100_000 }
    }
}

/// A reference-model server with `config` that enforces a `window`-token context window for
/// every model, as a real endpoint enforces its window (D111): the end-to-end tests run
/// against it with the window their sessions are given, so an over-long request fails as it
/// would in production.
pub(crate) async fn enforcing_reference_model(
    config: ReferenceModelConfig,
    window: i64,
) -> TestServer {
    let window = u64::try_from(window).expect("a positive window");
    let model =
        ReferenceModelConfig { context_windows: ContextWindows::every_model(window), ..config };
    TestServer::start(TestServerConfig {
        mode: Mode::ReferenceModel(model),
        ..TestServerConfig::default()
    })
    .await
    .unwrap()
}

/// [`enforcing_reference_model`] with the default model and the window of [`Options::default`].
pub(crate) async fn reference_model() -> TestServer {
    enforcing_reference_model(ReferenceModelConfig::default(), Options::default().context_window)
        .await
}

/// The harness's initial context: a developer message and an environment message.
pub(crate) fn initial_context() -> Vec<ResponseItem> {
    vec![
        ResponseItem::developer_text("<permissions instructions>"),
        ResponseItem::user_text("<environment_context>cwd=/repo</environment_context>"),
    ]
}

pub(crate) struct Harness {
    pub(crate) server: TestServer,
    pub(crate) session: Session,
    events: mpsc::Receiver<EventMsg>,
    pub(crate) seen: Vec<EventMsg>,
    pub(crate) analytics: MemorySink,
    pub(crate) dir: tempfile::TempDir,
}

pub(crate) fn session_config(
    server: &TestServer,
    dir: &std::path::Path,
    options: &Options,
) -> SessionConfig {
    session_config_for(&server.base_url(), dir, options)
}

/// [`session_config`] for a server given by its base URL (a child process's parent's server).
pub(crate) fn session_config_for(
    base_url: &str,
    dir: &std::path::Path,
    options: &Options,
) -> SessionConfig {
    let mut provider = ProviderConfig::new("testkit", base_url);
    provider.key = KeySource::Value(SecretString::new("sk-test-key"));
    provider.websocket = match options.transport {
        Transport::Ws => WebsocketMode::Enabled,
        Transport::Http => WebsocketMode::Disabled,
    };
    provider.retry = RetryPolicy {
        max_retries: 2,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(20),
    };
    provider.stream_idle_timeout = Duration::from_secs(10);
    let mut config =
        SessionConfig::new(provider, ModelInfo::new("gpt-test", options.context_window));
    // The testkit stands for a provider that compacts remotely, as its reference model does:
    // on loopback it would otherwise be of kind `other`, whose default chain is local (D114).
    config.provider_kind = Some(ProviderKind::Reference);
    config.features = Features {
        remote_compaction_v2: true,
        responses_websocket_response_processed: options.response_processed,
    };
    config.base_instructions = "You are a coding agent.".to_owned();
    config.initial_context = initial_context();
    config.rollout_path = Some(dir.join("rollout.jsonl"));
    config.trace = TraceConfig::with_root(dir.join("traces"));
    config
}

impl Harness {
    pub(crate) async fn start(server: TestServer, options: Options) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = session_config(&server, dir.path(), &options);
        Self::with_config(server, config, dir).await
    }

    pub(crate) async fn with_config(
        server: TestServer,
        config: SessionConfig,
        dir: tempfile::TempDir,
    ) -> Self {
        let analytics = MemorySink::default();
        let client =
            AnalyticsClient::start(AnalyticsConfig::default(), vec![Box::new(analytics.clone())])
                .unwrap();
        let (session, events) = Session::builder(config)
            .thread_id("thread-test")
            .analytics(client)
            .build()
            .await
            .unwrap();
        Self { server, session, events, seen: Vec::new(), analytics, dir }
    }

    /// A harness around a session built elsewhere.
    pub(crate) fn from_parts(
        server: TestServer,
        session: Session,
        events: mpsc::Receiver<EventMsg>,
        analytics: MemorySink,
        dir: tempfile::TempDir,
    ) -> Self {
        Self { server, session, events, seen: Vec::new(), analytics, dir }
    }

    /// A harness whose session resumes the rollout at `dir/rollout.jsonl` (written by the test),
    /// with the same analytics wiring as [`Harness::with_config`].
    pub(crate) async fn resume(
        server: TestServer,
        config: SessionConfig,
        dir: tempfile::TempDir,
    ) -> Self {
        let analytics = MemorySink::default();
        let client =
            AnalyticsClient::start(AnalyticsConfig::default(), vec![Box::new(analytics.clone())])
                .unwrap();
        let path = dir.path().join("rollout.jsonl");
        let (session, events) =
            bounded(Session::builder(config).analytics(client).resume(&path)).await.unwrap();
        Self { server, session, events, seen: Vec::new(), analytics, dir }
    }

    /// How many events wait in the channel, not yet drained.
    pub(crate) fn pending_events(&self) -> usize {
        self.events.len()
    }

    pub(crate) fn rollout_path(&self) -> PathBuf {
        self.dir.path().join("rollout.jsonl")
    }

    /// Runs a turn with one text input.
    pub(crate) async fn turn(
        &mut self,
        text: &str,
    ) -> Result<(), compactor_protocol::CompactorError> {
        let result =
            bounded(self.session.run_turn(vec![ContentItem::InputText { text: text.to_owned() }]))
                .await;
        self.drain();
        result.map(drop)
    }

    pub(crate) async fn compact(&mut self) -> Result<(), compactor_protocol::CompactorError> {
        let result = bounded(self.session.compact()).await;
        self.drain();
        result
    }

    /// Moves every event received so far into `seen`, and returns the new ones.
    pub(crate) fn drain(&mut self) -> Vec<EventMsg> {
        let mut new = Vec::new();
        while let Ok(event) = self.events.try_recv() {
            new.push(event);
        }
        self.seen.extend(new.iter().cloned());
        new
    }

    /// The analytics compaction events once `n` have arrived.
    pub(crate) async fn analytics_events(&self, n: usize) -> Vec<CompactionEvent> {
        bounded(self.analytics.wait_for(n)).await;
        self.analytics.compaction_events()
    }

    /// The rollout's lines as written so far.
    pub(crate) async fn rollout_lines(&self) -> Vec<RolloutLine> {
        self.session.flush().await.unwrap();
        let bytes = std::fs::read(self.rollout_path()).unwrap();
        let contents = parse_rollout(&bytes);
        assert!(contents.report.is_clean(), "{:?}", contents.report);
        contents.lines
    }

    /// The history a resume from the rollout would rebuild.
    pub(crate) async fn resumed_history(&self) -> Vec<ResponseItem> {
        let lines = self.rollout_lines().await;
        reconstruct_history_from_rollout(&lines, &compactor_engine::rebuild_legacy_compacted)
            .history
    }

    pub(crate) async fn compacted_lines(&self) -> usize {
        self.rollout_lines()
            .await
            .iter()
            .filter(|line| matches!(line.item, RolloutItem::Compacted(_)))
            .count()
    }

    /// What a failure must leave as it was.
    pub(crate) async fn snapshot(
        &self,
    ) -> (Vec<ResponseItem>, TokenUsageInfo, Vec<ResponseItem>, usize) {
        (
            self.session.history(),
            self.session.token_usage_info(),
            self.resumed_history().await,
            self.compacted_lines().await,
        )
    }
}

/// Events of one type, by name.
pub(crate) fn event_types(events: &[EventMsg]) -> Vec<String> {
    events
        .iter()
        .map(|event| {
            serde_json::to_value(event).unwrap()["type"].as_str().unwrap_or("?").to_owned()
        })
        .collect()
}

/// Content the reference model accepts: sealed with the default key (D14).
pub(crate) fn sealed(kind: &str) -> String {
    compactor_testkit::SealKey::default()
        .seal(&serde_json::json!({"v": 1, "kind": kind, "generation": 1, "summarized_items": 2}))
}

/// Writes a rollout for [`Harness::resume`]: one earlier compaction whose item carries
/// `compaction_content`, a user turn after it, and the token accounting.
pub(crate) async fn write_rollout(path: &std::path::Path, compaction_content: String) {
    use compactor_protocol::{
        CompactedItem, SessionMeta, TokenUsage, TokenUsageInfo, TurnContextItem,
    };
    use compactor_rollout_trace::{RecorderOptions, RolloutRecorder};

    let replacement = vec![
        ResponseItem::user_text("write the parser"),
        ResponseItem::Compaction {
            id: Some("cmp-0".into()),
            encrypted_content: compaction_content,
            created_by: None,
        },
    ];
    let usage = TokenUsage { input_tokens: 1_200, total_tokens: 1_250, ..TokenUsage::default() };
    let lines = [
        RolloutItem::SessionMeta(SessionMeta {
            id: "thread-resumed".into(),
            ..SessionMeta::default()
        }),
        RolloutItem::ResponseItem(ResponseItem::user_text("write the parser")),
        RolloutItem::ResponseItem(ResponseItem::assistant_text("The parser is written.")),
        RolloutItem::Compacted(CompactedItem::new(String::new(), replacement)),
        RolloutItem::TurnContext(TurnContextItem {
            model: "gpt-test".into(),
            ..TurnContextItem::default()
        }),
        RolloutItem::ResponseItem(ResponseItem::user_text("now add tests")),
        RolloutItem::ResponseItem(ResponseItem::assistant_text("The tests are added.")),
        RolloutItem::EventMsg(EventMsg::TokenCount {
            info: Some(TokenUsageInfo {
                total_token_usage: usage,
                last_token_usage: usage,
                model_context_window: Some(95_000),
                ..TokenUsageInfo::default()
            }),
            rate_limits: None,
        }),
    ];
    let recorder = RolloutRecorder::create(path, RecorderOptions::default()).await.unwrap();
    recorder.record(&lines).await.unwrap();
    recorder.shutdown().await.unwrap();
}

/// A saved session in `dir/rollout.jsonl`, its writer shut down: three turns on the reference
/// model of `server`, a manual compaction after each of the first two. Returns its history.
pub(crate) async fn saved_session(server: &TestServer, dir: &std::path::Path) -> Vec<ResponseItem> {
    let config = session_config(server, dir, &Options::default());
    let (session, _events) = Session::builder(config).build().await.unwrap();
    let turn =
        |text: &str| session.run_turn(vec![ContentItem::InputText { text: text.to_owned() }]);
    bounded(turn("write the parser")).await.unwrap();
    bounded(session.compact()).await.unwrap();
    bounded(turn("now add tests")).await.unwrap();
    bounded(session.compact()).await.unwrap();
    bounded(turn("and document it")).await.unwrap();
    let history = session.history();
    bounded(session.shutdown()).await.unwrap();
    history
}
