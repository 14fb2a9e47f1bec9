//! `compactor.toml`: the session settings as a file (D29), read by the CLI and by any
//! harness that wants the same file format.
//!
//! [`CompactorToml`] documents the format.
//!
//! The module is split by concern: `schema` (the file's shape and the validated settings),
//! `validate` (from one to the other), `span` and `error` (where a problem is, and what it says);
//! [`CompactorToml::apply`] layers the settings onto a [`SessionConfig`].

mod error;
mod schema;
mod span;
mod validate;

use std::path::{Path, PathBuf};

use compactor_protocol::CompactionImplementation;
use compactor_rollout_trace::TraceConfig;

pub use self::error::ConfigFileError;
use self::schema::{
    CompactionFileSettings, FeatureSettings, ModelSettings, ProviderSettings, RawFile,
    TokenFileSettings,
};
use self::span::FileContext;
use crate::config::SessionConfig;

/// The file name programs look for when no path is given.
pub const CONFIG_FILE_NAME: &str = "compactor.toml";

/// The analytics sinks a file asks for; the program starts them (they need a runtime).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnalyticsSettings {
    /// Append events to this JSONL file.
    pub jsonl: Option<PathBuf>,
    /// Post batches of events to this URL.
    pub http_url: Option<String>,
    /// The environment variable holding the HTTP sink's bearer token.
    pub http_bearer_env: Option<String>,
    /// Export OpenTelemetry spans and metrics to this OTLP/HTTP base URL (`/v1/traces` and
    /// `/v1/metrics` are appended); needs `compactor-analytics`' `otlp` feature.
    pub otlp_endpoint: Option<String>,
    /// Headers of the OTLP exports: header name -> the environment variable holding its value,
    /// so that a collector's key never sits in the file (D96 in docs/decisions.md).
    pub otlp_headers: Vec<(String, String)>,
}

impl AnalyticsSettings {
    /// Whether any sink is configured.
    pub fn is_empty(&self) -> bool {
        self.jsonl.is_none() && self.http_url.is_none() && self.otlp_endpoint.is_none()
    }
}

/// A parsed and validated `compactor.toml`.
///
/// The file is layered onto a [`SessionConfig`]: [`CompactorToml::apply`] changes exactly the
/// settings the file names and leaves every other field as the caller set it, so a program can
/// start from its own defaults, apply the file, then apply its flags. Every key is optional:
///
/// ```toml
/// [provider]
/// name = "openai"                          # a display name (logs, traces, analytics)
/// base_url = "https://api.openai.com/v1"   # `/responses` is appended
/// kind = "openai"                          # or azure, reference, other [default: from base_url]
/// api_key_env = "OPENAI_API_KEY"           # "" sends no key
/// websocket = true
/// prewarm = false
/// max_retries = 4
/// retry_base_delay = "200ms"
/// retry_max_delay = "60s"
/// stream_idle_timeout = "5m"
/// connect_timeout = "15s"
/// websocket_connect_timeout = "15s"
/// request_timeout = "10m"
/// remote_compaction = true                 # [default: as the kind implies]
/// v2_trigger = "context_compaction"        # or "compaction_trigger"
/// pass_through = ["configuration_update"]
/// extra_headers = { "x-team" = "agents" }
///
/// [features]
/// remote_compaction_v2 = true
/// responses_websocket_response_processed = true
///
/// [compaction]
/// chain = ["responses_compaction_v2", "responses", "prune"]
/// summarization_prompt = "Summarize the conversation so far."
/// max_auto_compactions_per_turn = 3
/// reactive = true
/// local_max_retries = 5
/// v2_max_retries = 2
/// turn_max_retries = 5
/// retained_budget_tokens = 64000            # default: min(64 000, 25% of the context window)
/// max_retained_images = 8
/// prune = { protected_user_turns = 2, target_percent = 50 }
/// pinned_notes = ["Never edit files under vendor/."]   # kept through every compaction
///
/// [model]
/// slug = "gpt-5"
/// context_window = 272000
/// auto_compact_token_limit = 200000
/// effective_context_window_percent = 95
/// tool_output_limit = { mode = "tokens", limit = 10000 }   # or mode = "bytes"
///
/// [trace]
/// root = "traces"                          # relative paths start at the file's folder
///
/// [analytics]
/// jsonl = "analytics.jsonl"
/// http_url = "https://analytics.example/v1/events"
/// http_bearer_env = "ANALYTICS_TOKEN"
/// otlp_endpoint = "http://127.0.0.1:4318"  # OpenTelemetry over OTLP/HTTP
/// otlp_headers = { "x-api-key" = "OTLP_API_KEY" }   # header = the variable holding its value
/// ```
///
/// Unknown keys and bad values are errors that name the key and its line
/// ([`ConfigFileError`]); nothing is silently ignored.
///
/// # Examples
///
/// ```
/// use std::path::Path;
///
/// use compactor_client::ProviderConfig;
/// use compactor_core::{CompactorToml, ModelInfo, SessionConfig};
/// use compactor_protocol::CompactionImplementation;
///
/// let file = r#"
/// [provider]
/// base_url = "http://127.0.0.1:8080/v1"
/// api_key_env = ""
///
/// [compaction]
/// chain = ["responses_compaction_v2", "prune"]
///
/// [model]
/// context_window = 128000
/// "#;
/// let toml = CompactorToml::parse(file, Path::new("compactor.toml"))?;
/// let model = ModelInfo::new("gpt-5", 272_000);
/// let mut config = SessionConfig::new(ProviderConfig::default(), model);
/// toml.apply(&mut config);
/// assert_eq!(config.provider.base_url, "http://127.0.0.1:8080/v1");
/// assert_eq!(config.model.context_window, Some(128_000));
/// assert_eq!(
///     config.compaction.chain,
///     [CompactionImplementation::ResponsesCompactionV2, CompactionImplementation::Prune]
/// );
/// assert!(config.features.remote_compaction_v2);
///
/// let typo = CompactorToml::parse("[model]\nslgu = \"x\"\n", Path::new("compactor.toml"));
/// assert_eq!(
///     typo.unwrap_err().to_string(),
///     "compactor.toml:2: unknown key `model.slgu` (expected one of slug, context_window, \
///      auto_compact_token_limit, effective_context_window_percent, tool_output_limit)"
/// );
/// # Ok::<(), compactor_core::ConfigFileError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompactorToml {
    provider: ProviderSettings,
    features: FeatureSettings,
    compaction: CompactionFileSettings,
    model: ModelSettings,
    tokens: TokenFileSettings,
    trace_root: Option<PathBuf>,
    analytics: AnalyticsSettings,
}

impl CompactorToml {
    /// Reads and parses the file at `path`.
    ///
    /// This reads the file with blocking I/O: call it before starting a runtime, or through
    /// `spawn_blocking`.
    ///
    /// # Errors
    ///
    /// [`ConfigFileError::Read`] when the file cannot be read, and the errors of
    /// [`CompactorToml::parse`].
    pub fn load(path: &Path) -> Result<Self, ConfigFileError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigFileError::Read { path: path.to_path_buf(), source })?;
        Self::parse(&text, path)
    }

    /// Parses `text`, the contents of the file at `path` (used in messages and to resolve
    /// relative paths, which start at its folder).
    ///
    /// # Errors
    ///
    /// [`ConfigFileError::Syntax`] for invalid TOML, [`ConfigFileError::UnknownKey`] for a key
    /// the format does not have, [`ConfigFileError::InvalidValue`] for a value of the wrong type
    /// or out of range.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigFileError> {
        let file = FileContext { text, path };
        let raw: RawFile = toml::from_str(text).map_err(|err| file.serde_error(&err))?;
        file.validate(raw)
    }

    /// The provider's base URL, when the file sets one.
    pub fn base_url(&self) -> Option<&str> {
        self.provider.base_url.as_deref()
    }

    /// The analytics sinks the file asks for.
    pub fn analytics(&self) -> &AnalyticsSettings {
        &self.analytics
    }

    /// The trace root the file sets, resolved against the file's folder.
    pub fn trace_root(&self) -> Option<&Path> {
        self.trace_root.as_deref()
    }

    /// The compaction chain the file sets.
    pub fn chain(&self) -> Option<&[CompactionImplementation]> {
        self.compaction.chain.as_deref()
    }

    /// Sets every setting of `config` that the file names; the others keep their values.
    ///
    /// A chain that lists `responses_compaction_v2` turns the `remote_compaction_v2` feature on
    /// unless the file sets that feature itself.
    pub fn apply(&self, config: &mut SessionConfig) {
        let provider = &self.provider;
        let target = &mut config.provider;
        set(&mut target.name, provider.name.clone());
        set(&mut target.base_url, provider.base_url.clone());
        set(&mut target.key, provider.key.clone());
        set(&mut target.websocket, provider.websocket);
        set(&mut target.prewarm, provider.prewarm);
        set(&mut target.retry.max_retries, provider.max_retries);
        set(&mut target.retry.base_delay, provider.retry_base_delay);
        set(&mut target.retry.max_delay, provider.retry_max_delay);
        set(&mut target.stream_idle_timeout, provider.stream_idle_timeout);
        set(&mut target.connect_timeout, provider.connect_timeout);
        set(&mut target.websocket_connect_timeout, provider.websocket_connect_timeout);
        set(&mut target.request_timeout, provider.request_timeout);
        set(&mut target.pass_through, provider.pass_through.clone());
        set(&mut target.extra_headers, provider.extra_headers.clone());
        set(&mut config.remote_compaction, provider.remote_compaction);
        if let Some(kind) = provider.kind {
            config.provider_kind = Some(kind);
        }

        let compaction = &self.compaction;
        let target = &mut config.compaction;
        set(&mut target.v2_trigger, provider.v2_trigger);
        set(&mut target.chain, compaction.chain.clone());
        if let Some(prompt) = &compaction.summarization_prompt {
            target.summarization_prompt = Some(prompt.clone());
        }
        set(&mut target.max_auto_compactions_per_turn, compaction.max_auto_compactions_per_turn);
        set(&mut target.reactive, compaction.reactive);
        set(&mut target.local_max_retries, compaction.local_max_retries);
        set(&mut target.v2_max_retries, compaction.v2_max_retries);
        set(&mut target.turn_max_retries, compaction.turn_max_retries);
        set(&mut target.prune.protected_user_turns, compaction.protected_user_turns);
        set(&mut target.prune.target_percent, compaction.target_percent);
        set(&mut target.pinned_notes, compaction.pinned_notes.clone());
        if let Some(budget) = compaction.retained_budget_tokens {
            target.retained_budget_tokens = Some(budget);
        }
        set(&mut target.max_retained_images, compaction.max_retained_images);

        let chain_has_v2 = compaction
            .chain
            .as_ref()
            .is_some_and(|chain| chain.contains(&CompactionImplementation::ResponsesCompactionV2));
        let features = &mut config.features;
        match self.features.remote_compaction_v2 {
            Some(on) => features.remote_compaction_v2 = on,
            None if chain_has_v2 => features.remote_compaction_v2 = true,
            None => {}
        }
        set(
            &mut features.responses_websocket_response_processed,
            self.features.responses_websocket_response_processed,
        );

        let model = &self.model;
        let target = &mut config.model;
        set(&mut target.slug, model.slug.clone());
        if let Some(window) = model.context_window {
            target.context_window = Some(window);
        }
        if let Some(limit) = model.auto_compact_token_limit {
            target.auto_compact_token_limit = Some(limit);
        }
        set(&mut target.effective_context_window_percent, model.effective_context_window_percent);
        set(&mut target.tool_output_limit, model.tool_output_limit);

        set(&mut config.tokens.counter, self.tokens.counter);
        set(&mut config.tokens.calibration, self.tokens.calibration);

        if let Some(root) = &self.trace_root {
            config.trace = TraceConfig::with_root(root.clone());
        }
    }
}

fn set<T>(target: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *target = value;
    }
}

#[cfg(test)]
mod tests;
