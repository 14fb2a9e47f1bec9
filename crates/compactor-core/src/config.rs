//! Session configuration: the model, features, compaction settings and the harness's context.

use std::path::PathBuf;

use compactor_client::ProviderConfig;
use compactor_engine::{
    DEFAULT_MAX_RETAINED_IMAGES, InputModalities, TruncationPolicy, WindowLimits,
    default_retained_budget_tokens,
};
use compactor_protocol::tokens::TokenCounter;
use compactor_protocol::{
    CompactionImplementation, ContextManagement, ContextualMarkers, Reasoning, ResponseItem,
    ToolSpec, V2TriggerForm,
};
use compactor_rollout_trace::TraceConfig;

/// Experimental features, all off by default as in the reference (D8).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Features {
    /// Compact with a `/responses` stream ending in a trigger item (D39).
    pub remote_compaction_v2: bool,
    /// Acknowledge responses with `response.processed` on the WebSocket (D13).
    pub responses_websocket_response_processed: bool,
}

/// What Compactor knows about a model (D6).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    /// The model slug sent as `model`.
    pub slug: String,
    /// The model's context window in tokens, when known.
    pub context_window: Option<i64>,
    /// A configured auto-compact limit, when set; clamped to 90 % of the window.
    pub auto_compact_token_limit: Option<i64>,
    /// The share of the window usable by the conversation (default 95).
    pub effective_context_window_percent: i64,
    /// Whether the model takes images.
    pub input_modalities: InputModalities,
    /// Reasoning settings sent with each request.
    pub reasoning: Option<Reasoning>,
    /// The output verbosity sent with each request as `text.verbosity` (`low`, `medium`,
    /// `high`), when the model takes one.
    pub verbosity: Option<String>,
    /// How much of a tool output is recorded (D100); 10 000 tokens by default.
    pub tool_output_limit: TruncationPolicy,
}

impl ModelInfo {
    /// A model with a known window and default settings.
    pub fn new(slug: impl Into<String>, context_window: i64) -> Self {
        Self {
            slug: slug.into(),
            context_window: Some(context_window),
            auto_compact_token_limit: None,
            effective_context_window_percent: 95,
            input_modalities: InputModalities::default(),
            reasoning: None,
            verbosity: None,
            tool_output_limit: TruncationPolicy::default(),
        }
    }

    /// The usable window: `context_window × percent / 100` (D6).
    pub fn model_context_window(&self) -> Option<i64> {
        self.context_window
            .map(|window| window.saturating_mul(self.effective_context_window_percent) / 100)
    }

    /// `min(configured limit, 90 % of the window)`; `i64::MAX` (never) when neither is known.
    pub fn auto_compact_limit(&self) -> i64 {
        let ninety = self.context_window.map(|window| window.saturating_mul(9) / 10);
        match (self.auto_compact_token_limit, ninety) {
            (Some(limit), Some(ninety)) => limit.min(ninety),
            (Some(limit), None) => limit,
            (None, Some(ninety)) => ninety,
            (None, None) => i64::MAX,
        }
    }

    /// The limits the loop guard works with (D104).
    pub(crate) fn window_limits(&self) -> WindowLimits {
        WindowLimits {
            auto_compact_limit: self.auto_compact_limit(),
            usable_window: self.model_context_window(),
            context_window: self.context_window,
        }
    }
}

/// What kind of endpoint a provider is: it decides whether the provider compacts remotely when
/// [`RemoteCompaction`] does not say, and so the default compaction chain (D114).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    /// OpenAI's API (`api.openai.com` and other `openai.com` hosts).
    OpenAi,
    /// Azure OpenAI or Azure AI Foundry (`*.openai.azure.com`, `*.cognitiveservices.azure.com`,
    /// `*.services.ai.azure.com`, or a provider named `azure`).
    Azure,
    /// The reference model of `compactor-testkit`, as the CLI and tests start it.
    Reference,
    /// Any other Responses-compatible server: a local model server, a proxy to another vendor.
    Other,
}

impl ProviderKind {
    /// The kind a provider named `name` at `base_url` has: OpenAI and Azure hosts are
    /// recognised, everything else (loopback included) is [`ProviderKind::Other`]; the
    /// reference model is never guessed, it is named.
    pub fn detect(name: &str, base_url: &str) -> Self {
        let host = host_of(base_url);
        let ends_with = |suffix: &str| host.ends_with(suffix);
        if host == "openai.com" || ends_with(".openai.com") {
            ProviderKind::OpenAi
        } else if name.eq_ignore_ascii_case("azure")
            || ends_with(".openai.azure.com")
            || ends_with(".cognitiveservices.azure.com")
            || ends_with(".services.ai.azure.com")
        {
            ProviderKind::Azure
        } else {
            ProviderKind::Other
        }
    }

    /// Whether a provider of this kind compacts remotely (v2, v1) unless told otherwise.
    pub fn compacts_remotely(self) -> bool {
        match self {
            ProviderKind::OpenAi | ProviderKind::Azure | ProviderKind::Reference => true,
            ProviderKind::Other => false,
        }
    }

    /// The name `compactor.toml` uses: `openai`, `azure`, `reference` or `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::Azure => "azure",
            ProviderKind::Reference => "reference",
            ProviderKind::Other => "other",
        }
    }
}

impl std::fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ProviderKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "openai" => Ok(ProviderKind::OpenAi),
            "azure" => Ok(ProviderKind::Azure),
            "reference" => Ok(ProviderKind::Reference),
            "other" => Ok(ProviderKind::Other),
            other => Err(format!("{other:?} (expected one of openai, azure, reference, other)")),
        }
    }
}

/// The lowercase host of a URL, without scheme, credentials, port or path.
fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let host = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether the provider can compact on the server (`/responses/compact`, v2 triggers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RemoteCompaction {
    /// As its [`ProviderKind`] implies: OpenAI, Azure and the reference model can, others
    /// cannot.
    #[default]
    ByProviderKind,
    /// It can, whatever its kind; it is never marked as lacking v2 (D114).
    Supported,
    /// It cannot; only local strategies apply unless a chain says otherwise.
    Unsupported,
}

/// How `prune` works, and its defaults (D20).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruneSettings {
    /// Tool outputs of this many latest user turns are never masked.
    pub protected_user_turns: usize,
    /// Prune until the estimate is at most this share (percent) of the auto-compact limit.
    pub target_percent: u8,
}

impl Default for PruneSettings {
    fn default() -> Self {
        Self { protected_user_turns: 2, target_percent: 50 }
    }
}

/// Whether a request that overflows the window triggers one compaction and a retry
/// (D17).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReactiveCompaction {
    /// Compact once and retry the rebuilt request.
    #[default]
    On,
    /// End the turn with `ContextWindowExceeded`.
    Off,
}

/// How compaction behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactionSettings {
    /// The implementations to try, in order, until one succeeds (D18); empty selects by
    /// provider (D114): v2 (v1 without the `remote_compaction_v2` feature) for a provider that
    /// compacts remotely, `local -> prune` for any other.
    pub chain: Vec<CompactionImplementation>,
    /// The summarization prompt of local compaction (default: the engine's).
    pub summarization_prompt: Option<String>,
    /// Retries of the local summarization stream.
    pub local_max_retries: u32,
    /// Pruning.
    pub prune: PruneSettings,
    /// The most auto compactions one turn may run (D104).
    pub max_auto_compactions_per_turn: u32,
    /// Reactive compaction on overflow.
    pub reactive: ReactiveCompaction,
    /// The v2 trigger form (D8).
    pub v2_trigger: V2TriggerForm,
    /// Retries of a v2 compaction stream that fails after opening, per transport (D11, D12).
    pub v2_max_retries: u32,
    /// Retries of a turn's sampling stream that fails after opening (D11).
    pub turn_max_retries: u32,
    /// Notes pinned when a session is built or resumed, unless a note with the same text is
    /// pinned already (D140).
    pub pinned_notes: Vec<String>,
    /// The retained budget of remote compaction in tokens (D101); `None` is min(64 000, 25% of
    /// the model's context window).
    pub retained_budget_tokens: Option<u64>,
    /// How many images a compacted history keeps (D103).
    pub max_retained_images: usize,
}

impl CompactionSettings {
    /// The retained budget for `model`: the configured one, or its default.
    pub fn retained_budget(&self, model: &ModelInfo) -> u64 {
        self.retained_budget_tokens
            .unwrap_or_else(|| default_retained_budget_tokens(model.context_window))
    }
}

impl Default for CompactionSettings {
    fn default() -> Self {
        Self {
            chain: Vec::new(),
            summarization_prompt: None,
            local_max_retries: 5,
            prune: PruneSettings::default(),
            max_auto_compactions_per_turn: 3,
            reactive: ReactiveCompaction::default(),
            v2_trigger: V2TriggerForm::default(),
            v2_max_retries: 2,
            turn_max_retries: 5,
            pinned_notes: Vec::new(),
            retained_budget_tokens: None,
            max_retained_images: DEFAULT_MAX_RETAINED_IMAGES,
        }
    }
}

/// Whether the session corrects its estimates with the usage servers report (D123).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Calibration {
    /// Learn the ratio of reported to estimated input tokens and apply it.
    #[default]
    On,
    /// Use the counter's figures as they are, as the reference does.
    Off,
}

/// How the session counts tokens (D120, D123, D127).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenSettings {
    /// The counter of every estimate. `O200k` needs the crate's `o200k` feature: a session
    /// configured with it in a build without it fails to build.
    pub counter: TokenCounter,
    /// Whether reported usage corrects the estimates.
    pub calibration: Calibration,
}

/// Everything a [`crate::Session`] is built from.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The provider.
    pub provider: ProviderConfig,
    /// The provider's kind; `None` detects it from its name and base URL
    /// ([`ProviderKind::detect`]).
    pub provider_kind: Option<ProviderKind>,
    /// Whether the provider compacts remotely.
    pub remote_compaction: RemoteCompaction,
    /// The model of the session's turns (a turn may override it).
    pub model: ModelInfo,
    /// Features.
    pub features: Features,
    /// Compaction settings.
    pub compaction: CompactionSettings,
    /// How tokens are counted.
    pub tokens: TokenSettings,
    /// The base instructions sent as `instructions`.
    pub base_instructions: String,
    /// The personality, when the harness sets one.
    pub personality: Option<String>,
    /// The tools the model may call.
    pub tools: Vec<ToolSpec>,
    /// Whether the model may call tools in parallel.
    pub parallel_tool_calls: bool,
    /// The service tier.
    pub service_tier: Option<String>,
    /// Server-managed compaction settings sent on every request.
    pub context_management: Option<Vec<ContextManagement>>,
    /// The harness's initial context (developer instructions, environment context), injected at
    /// the first turn and after compactions (D15).
    pub initial_context: Vec<ResponseItem>,
    /// The markers of contextual user messages: they decide what a user turn is, live and when
    /// the session is resumed, rolled back or forked.
    pub contextual_markers: ContextualMarkers,
    /// The working directory recorded in `turn_context` lines.
    pub cwd: Option<String>,
    /// Where the rollout is written; `None` keeps the session in memory only.
    pub rollout_path: Option<PathBuf>,
    /// Compaction trace bundles.
    pub trace: TraceConfig,
}

impl SessionConfig {
    /// A configuration with defaults for everything but the provider and the model.
    pub fn new(provider: ProviderConfig, model: ModelInfo) -> Self {
        Self {
            provider,
            provider_kind: None,
            remote_compaction: RemoteCompaction::default(),
            model,
            features: Features::default(),
            compaction: CompactionSettings::default(),
            tokens: TokenSettings::default(),
            base_instructions: String::new(),
            personality: None,
            tools: Vec::new(),
            parallel_tool_calls: false,
            service_tier: None,
            context_management: None,
            initial_context: Vec::new(),
            contextual_markers: ContextualMarkers::default(),
            cwd: None,
            rollout_path: None,
            trace: TraceConfig::disabled(),
        }
    }

    /// The provider's kind: the configured one, else the one its name and base URL show.
    pub fn provider_kind(&self) -> ProviderKind {
        self.provider_kind
            .unwrap_or_else(|| ProviderKind::detect(&self.provider.name, &self.provider.base_url))
    }

    /// Whether the provider compacts remotely: as configured, else as its kind implies.
    pub fn compacts_remotely(&self) -> bool {
        match self.remote_compaction {
            RemoteCompaction::Supported => true,
            RemoteCompaction::Unsupported => false,
            RemoteCompaction::ByProviderKind => self.provider_kind().compacts_remotely(),
        }
    }

    /// The chain a compaction runs (D114): the configured one, else v2 (v1 without the
    /// `remote_compaction_v2` feature) for a provider that compacts remotely, and
    /// `local -> prune` for any other.
    pub fn compaction_chain(&self) -> Vec<CompactionImplementation> {
        if !self.compaction.chain.is_empty() {
            return self.compaction.chain.clone();
        }
        match (self.compacts_remotely(), self.features.remote_compaction_v2) {
            (true, true) => vec![CompactionImplementation::ResponsesCompactionV2],
            (true, false) => vec![CompactionImplementation::ResponsesCompact],
            (false, _) => {
                vec![CompactionImplementation::Responses, CompactionImplementation::Prune]
            }
        }
    }
}

#[cfg(test)]
mod tests;
