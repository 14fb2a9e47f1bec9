//! `compactor.toml`: the session settings as a file (D29), read by the CLI and by any
//! harness that wants the same file format.
//!
//! [`CompactorToml`] documents the format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use compactor_client::{KeySource, Prewarm, WebsocketMode};
use compactor_protocol::{
    CompactionImplementation, CompactorError, PassThroughList, V2TriggerForm,
};
use compactor_rollout_trace::TraceConfig;
use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::config::{ReactiveCompaction, RemoteCompaction, SessionConfig};

/// The file name programs look for when no path is given.
pub const CONFIG_FILE_NAME: &str = "compactor.toml";

/// The compaction implementations a chain may name, with their accepted short aliases.
const CHAIN_NAMES: [(&str, &str, CompactionImplementation); 4] = [
    ("responses_compaction_v2", "v2", CompactionImplementation::ResponsesCompactionV2),
    ("responses_compact", "v1", CompactionImplementation::ResponsesCompact),
    ("responses", "local", CompactionImplementation::Responses),
    ("prune", "prune", CompactionImplementation::Prune),
];

/// Why a `compactor.toml` could not be used. Every message names the file, and every variant but
/// [`ConfigFileError::Read`] the line and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// The file could not be read (see [`ConfigFileError::is_not_found`]).
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The file is not valid TOML.
    #[error("{}:{line}: invalid TOML: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// The parser's message.
        message: String,
    },
    /// A key the format does not have (a typo, or a setting of a newer version).
    #[error("{}:{line}: unknown key `{key}`{}", path.display(), expected_suffix(expected))]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// 1-based line of the key.
        line: usize,
        /// The dotted path of the key, e.g. `provider.base_ur`.
        key: String,
        /// The keys allowed at that place, when known.
        expected: Vec<String>,
    },
    /// A known key with a value of the wrong type or out of range.
    #[error("{}:{line}: invalid value for {key}: {message}", path.display())]
    InvalidValue {
        /// The file.
        path: PathBuf,
        /// 1-based line of the value.
        line: usize,
        /// The dotted path of the key, e.g. `compaction.chain[1]`.
        key: String,
        /// What is wrong and what was expected.
        message: String,
    },
}

fn expected_suffix(expected: &[String]) -> String {
    match expected {
        [] => String::new(),
        [only] => format!(" (expected {only})"),
        _ => format!(" (expected one of {})", expected.join(", ")),
    }
}

impl ConfigFileError {
    /// Whether the file does not exist.
    pub fn is_not_found(&self) -> bool {
        match self {
            ConfigFileError::Read { source, .. } => source.kind() == io::ErrorKind::NotFound,
            ConfigFileError::Syntax { .. }
            | ConfigFileError::UnknownKey { .. }
            | ConfigFileError::InvalidValue { .. } => false,
        }
    }

    /// The dotted key the error is about, when it is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigFileError::UnknownKey { key, .. } | ConfigFileError::InvalidValue { key, .. } => {
                Some(key)
            }
            ConfigFileError::Read { .. } | ConfigFileError::Syntax { .. } => None,
        }
    }
}

impl From<ConfigFileError> for CompactorError {
    fn from(err: ConfigFileError) -> Self {
        match &err {
            ConfigFileError::Read { source, .. } => CompactorError::Io(format!("{err}: {source}")),
            ConfigFileError::Syntax { .. }
            | ConfigFileError::UnknownKey { .. }
            | ConfigFileError::InvalidValue { .. } => CompactorError::Config(err.to_string()),
        }
    }
}

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
/// remote_compaction = true                 # the provider can compact remotely
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
/// prune = { protected_user_turns = 2, target_percent = 50 }
///
/// [model]
/// slug = "gpt-5"
/// context_window = 272000
/// auto_compact_token_limit = 200000
/// effective_context_window_percent = 95
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
///      auto_compact_token_limit, effective_context_window_percent)"
/// );
/// # Ok::<(), compactor_core::ConfigFileError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompactorToml {
    provider: ProviderSettings,
    features: FeatureSettings,
    compaction: CompactionFileSettings,
    model: ModelSettings,
    trace_root: Option<PathBuf>,
    analytics: AnalyticsSettings,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct ProviderSettings {
    name: Option<String>,
    base_url: Option<String>,
    key: Option<KeySource>,
    websocket: Option<WebsocketMode>,
    prewarm: Option<Prewarm>,
    max_retries: Option<u32>,
    retry_base_delay: Option<Duration>,
    retry_max_delay: Option<Duration>,
    stream_idle_timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    websocket_connect_timeout: Option<Duration>,
    request_timeout: Option<Duration>,
    remote_compaction: Option<RemoteCompaction>,
    v2_trigger: Option<V2TriggerForm>,
    pass_through: Option<PassThroughList>,
    extra_headers: Option<Vec<(String, String)>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct FeatureSettings {
    remote_compaction_v2: Option<bool>,
    responses_websocket_response_processed: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct CompactionFileSettings {
    chain: Option<Vec<CompactionImplementation>>,
    summarization_prompt: Option<String>,
    max_auto_compactions_per_turn: Option<u32>,
    reactive: Option<ReactiveCompaction>,
    local_max_retries: Option<u32>,
    v2_max_retries: Option<u32>,
    turn_max_retries: Option<u32>,
    protected_user_turns: Option<usize>,
    target_percent: Option<u8>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ModelSettings {
    slug: Option<String>,
    context_window: Option<i64>,
    auto_compact_token_limit: Option<i64>,
    effective_context_window_percent: Option<i64>,
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

// The file's shape. Leaves whose meaning is checked here (names, durations, ranges) are read as
// spanned strings and integers so that the check can point at their line.

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    provider: RawProvider,
    #[serde(default)]
    features: RawFeatures,
    #[serde(default)]
    compaction: RawCompaction,
    #[serde(default)]
    model: RawModel,
    #[serde(default)]
    trace: RawTrace,
    #[serde(default)]
    analytics: RawAnalytics,
}

type Text = Spanned<String>;
type Int = Spanned<i64>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    name: Option<Text>,
    base_url: Option<Text>,
    api_key_env: Option<Text>,
    websocket: Option<bool>,
    prewarm: Option<bool>,
    max_retries: Option<Int>,
    retry_base_delay: Option<Text>,
    retry_max_delay: Option<Text>,
    stream_idle_timeout: Option<Text>,
    connect_timeout: Option<Text>,
    websocket_connect_timeout: Option<Text>,
    request_timeout: Option<Text>,
    remote_compaction: Option<bool>,
    v2_trigger: Option<Text>,
    pass_through: Option<Vec<Text>>,
    extra_headers: Option<BTreeMap<String, Text>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFeatures {
    remote_compaction_v2: Option<bool>,
    responses_websocket_response_processed: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCompaction {
    chain: Option<Vec<Text>>,
    summarization_prompt: Option<Text>,
    max_auto_compactions_per_turn: Option<Int>,
    reactive: Option<bool>,
    local_max_retries: Option<Int>,
    v2_max_retries: Option<Int>,
    turn_max_retries: Option<Int>,
    #[serde(default)]
    prune: RawPrune,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrune {
    protected_user_turns: Option<Int>,
    target_percent: Option<Int>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    slug: Option<Text>,
    context_window: Option<Int>,
    auto_compact_token_limit: Option<Int>,
    effective_context_window_percent: Option<Int>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrace {
    root: Option<Text>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAnalytics {
    jsonl: Option<Text>,
    http_url: Option<Text>,
    http_bearer_env: Option<Text>,
    otlp_endpoint: Option<Text>,
    otlp_headers: Option<BTreeMap<String, Text>>,
}

/// The file being read: its text (for line numbers and key paths) and its path.
struct FileContext<'a> {
    text: &'a str,
    path: &'a Path,
}

impl FileContext<'_> {
    /// 1-based line of byte `offset`.
    fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        1 + self.text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count()
    }

    fn invalid(
        &self,
        key: &str,
        span: Range<usize>,
        message: impl Into<String>,
    ) -> ConfigFileError {
        ConfigFileError::InvalidValue {
            path: self.path.to_path_buf(),
            line: self.line(span.start),
            key: key.to_owned(),
            message: message.into(),
        }
    }

    /// Turns a deserialization error into one that names the key at its span.
    fn serde_error(&self, err: &toml::de::Error) -> ConfigFileError {
        let path = self.path.to_path_buf();
        let message = err.message().trim().to_owned();
        let Some(span) = err.span() else {
            return ConfigFileError::Syntax { path, line: 1, message };
        };
        let line = self.line(span.start);
        // Deserialization errors come from a document that parsed; a syntax error does not.
        let Ok(document) = DeTable::parse(self.text) else {
            return ConfigFileError::Syntax { path, line, message };
        };
        let key = key_at(document.get_ref(), &span, "").unwrap_or_default();
        if let Some(rest) = message.strip_prefix("unknown field `") {
            // serde lists the fields as "expected `a`", "`a` or `b`", "one of `a`, `b`, `c`".
            let expected = rest
                .split_once("expected ")
                .map(|(_, list)| list.split('`').skip(1).step_by(2).map(str::to_owned).collect())
                .unwrap_or_default();
            return ConfigFileError::UnknownKey { path, line, key, expected };
        }
        if key.is_empty() {
            return ConfigFileError::Syntax { path, line, message };
        }
        ConfigFileError::InvalidValue { path, line, key, message }
    }

    fn validate(&self, raw: RawFile) -> Result<CompactorToml, ConfigFileError> {
        let provider = self.provider(raw.provider)?;
        let features = FeatureSettings {
            remote_compaction_v2: raw.features.remote_compaction_v2,
            responses_websocket_response_processed: raw
                .features
                .responses_websocket_response_processed,
        };
        let compaction = self.compaction(raw.compaction)?;
        if features.remote_compaction_v2 == Some(false)
            && let Some(chain) = &compaction.chain
            && chain.contains(&CompactionImplementation::ResponsesCompactionV2)
        {
            let span = self.find_key_span("features", "remote_compaction_v2");
            return Err(self.invalid(
                "features.remote_compaction_v2",
                span,
                "false, but compaction.chain lists responses_compaction_v2 (enable the feature \
                 or remove it from the chain)",
            ));
        }
        let model = self.model(raw.model)?;
        let trace_root =
            raw.trace.root.map(|root| self.path_value("trace.root", &root)).transpose()?;
        let mut analytics = AnalyticsSettings {
            jsonl: raw
                .analytics
                .jsonl
                .map(|jsonl| self.path_value("analytics.jsonl", &jsonl))
                .transpose()?,
            http_url: raw
                .analytics
                .http_url
                .map(|url| self.url("analytics.http_url", &url))
                .transpose()?,
            http_bearer_env: raw
                .analytics
                .http_bearer_env
                .map(|name| self.env_name("analytics.http_bearer_env", &name, Empty::Refused))
                .transpose()?,
            otlp_endpoint: raw
                .analytics
                .otlp_endpoint
                .map(|url| self.url("analytics.otlp_endpoint", &url))
                .transpose()?,
            otlp_headers: Vec::new(),
        };
        if let Some(headers) = raw.analytics.otlp_headers {
            for (name, variable) in headers {
                let key = dotted("analytics.otlp_headers", &name);
                let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
                if name.is_empty() || !name.chars().all(token) {
                    let message = format!("{name:?} is not a valid header name");
                    return Err(self.invalid(&key, variable.span(), message));
                }
                // A value that is not a variable name may be the secret itself: never echo it.
                let is_variable = |text: &str| {
                    !text.is_empty()
                        && !text.starts_with(|c: char| c.is_ascii_digit())
                        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                };
                if !is_variable(variable.get_ref()) {
                    let message = "expected the name of the environment variable that holds the \
                                   header's value (the value itself never goes in the file)";
                    return Err(self.invalid(&key, variable.span(), message));
                }
                analytics.otlp_headers.push((name, variable.into_inner()));
            }
            if analytics.otlp_endpoint.is_none() {
                let span = self.find_key_span("analytics", "otlp_headers");
                return Err(self.invalid(
                    "analytics.otlp_headers",
                    span,
                    "set without analytics.otlp_endpoint",
                ));
            }
        }
        if analytics.http_bearer_env.is_some() && analytics.http_url.is_none() {
            let span = self.find_key_span("analytics", "http_bearer_env");
            return Err(self.invalid(
                "analytics.http_bearer_env",
                span,
                "set without analytics.http_url",
            ));
        }
        Ok(CompactorToml { provider, features, compaction, model, trace_root, analytics })
    }

    fn provider(&self, raw: RawProvider) -> Result<ProviderSettings, ConfigFileError> {
        let duration = |key: &str, value: Option<Text>| {
            value.map(|value| self.duration(&format!("provider.{key}"), &value)).transpose()
        };
        let key = match raw.api_key_env {
            None => None,
            Some(name) if name.get_ref().is_empty() => Some(KeySource::None),
            Some(name) => Some(KeySource::Env(self.env_name(
                "provider.api_key_env",
                &name,
                Empty::Allowed,
            )?)),
        };
        let pass_through = raw
            .pass_through
            .map(|types| {
                let mut names = Vec::with_capacity(types.len());
                for (index, ty) in types.iter().enumerate() {
                    if ty.get_ref().trim().is_empty() {
                        return Err(self.invalid(
                            &format!("provider.pass_through[{index}]"),
                            ty.span(),
                            "an empty item type",
                        ));
                    }
                    names.push(ty.get_ref().clone());
                }
                Ok(PassThroughList::new(names))
            })
            .transpose()?;
        let extra_headers = raw
            .extra_headers
            .map(|headers| {
                headers
                    .into_iter()
                    .map(|(name, value)| self.header(&name, &value))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        Ok(ProviderSettings {
            name: raw.name.map(|name| self.non_empty("provider.name", &name)).transpose()?,
            base_url: raw.base_url.map(|url| self.url("provider.base_url", &url)).transpose()?,
            key,
            websocket: raw
                .websocket
                .map(|on| if on { WebsocketMode::Enabled } else { WebsocketMode::Disabled }),
            prewarm: raw.prewarm.map(|on| if on { Prewarm::On } else { Prewarm::Off }),
            max_retries: raw
                .max_retries
                .map(|n| self.int("provider.max_retries", &n, 0, 100))
                .transpose()?,
            retry_base_delay: duration("retry_base_delay", raw.retry_base_delay)?,
            retry_max_delay: duration("retry_max_delay", raw.retry_max_delay)?,
            stream_idle_timeout: duration("stream_idle_timeout", raw.stream_idle_timeout)?,
            connect_timeout: duration("connect_timeout", raw.connect_timeout)?,
            websocket_connect_timeout: duration(
                "websocket_connect_timeout",
                raw.websocket_connect_timeout,
            )?,
            request_timeout: duration("request_timeout", raw.request_timeout)?,
            remote_compaction: raw.remote_compaction.map(|on| {
                if on { RemoteCompaction::Supported } else { RemoteCompaction::Unsupported }
            }),
            v2_trigger: raw
                .v2_trigger
                .map(|form| match form.get_ref().as_str() {
                    "context_compaction" => Ok(V2TriggerForm::ContextCompaction),
                    "compaction_trigger" => Ok(V2TriggerForm::CompactionTrigger),
                    other => Err(self.invalid(
                        "provider.v2_trigger",
                        form.span(),
                        format!(
                            "{other:?} (expected one of context_compaction, compaction_trigger)"
                        ),
                    )),
                })
                .transpose()?,
            pass_through,
            extra_headers,
        })
    }

    fn compaction(&self, raw: RawCompaction) -> Result<CompactionFileSettings, ConfigFileError> {
        let retries = |key: &str, value: Option<Int>| {
            value.map(|n| self.int(&format!("compaction.{key}"), &n, 0, 100)).transpose()
        };
        let chain = raw
            .chain
            .map(|names| {
                let mut chain = Vec::with_capacity(names.len());
                for (index, name) in names.iter().enumerate() {
                    let key = format!("compaction.chain[{index}]");
                    let Some(implementation) = implementation_named(name.get_ref()) else {
                        let expected: Vec<&str> = CHAIN_NAMES.iter().map(|(n, _, _)| *n).collect();
                        return Err(self.invalid(
                            &key,
                            name.span(),
                            format!(
                                "{:?} (expected one of {})",
                                name.get_ref(),
                                expected.join(", ")
                            ),
                        ));
                    };
                    if chain.contains(&implementation) {
                        return Err(self.invalid(
                            &key,
                            name.span(),
                            format!("{:?} is listed twice", name.get_ref()),
                        ));
                    }
                    chain.push(implementation);
                }
                Ok(chain)
            })
            .transpose()?;
        Ok(CompactionFileSettings {
            chain,
            summarization_prompt: raw
                .summarization_prompt
                .map(|prompt| self.non_empty("compaction.summarization_prompt", &prompt))
                .transpose()?,
            max_auto_compactions_per_turn: raw
                .max_auto_compactions_per_turn
                .map(|n| self.int("compaction.max_auto_compactions_per_turn", &n, 1, 100))
                .transpose()?,
            reactive: raw
                .reactive
                .map(|on| if on { ReactiveCompaction::On } else { ReactiveCompaction::Off }),
            local_max_retries: retries("local_max_retries", raw.local_max_retries)?,
            v2_max_retries: retries("v2_max_retries", raw.v2_max_retries)?,
            turn_max_retries: retries("turn_max_retries", raw.turn_max_retries)?,
            protected_user_turns: raw
                .prune
                .protected_user_turns
                .map(|n| self.int("compaction.prune.protected_user_turns", &n, 0, 1_000_000))
                .transpose()?,
            target_percent: raw
                .prune
                .target_percent
                .map(|n| self.int("compaction.prune.target_percent", &n, 1, 100))
                .transpose()?,
        })
    }

    fn model(&self, raw: RawModel) -> Result<ModelSettings, ConfigFileError> {
        let tokens = |key: &str, value: Option<Int>| {
            value.map(|n| self.int(&format!("model.{key}"), &n, 1, i64::MAX)).transpose()
        };
        Ok(ModelSettings {
            slug: raw.slug.map(|slug| self.non_empty("model.slug", &slug)).transpose()?,
            context_window: tokens("context_window", raw.context_window)?,
            auto_compact_token_limit: tokens(
                "auto_compact_token_limit",
                raw.auto_compact_token_limit,
            )?,
            effective_context_window_percent: raw
                .effective_context_window_percent
                .map(|n| self.int("model.effective_context_window_percent", &n, 1, 100))
                .transpose()?,
        })
    }

    /// An integer in `min..=max`, converted to the setting's type.
    fn int<T: TryFrom<i64>>(
        &self,
        key: &str,
        value: &Int,
        min: i64,
        max: i64,
    ) -> Result<T, ConfigFileError> {
        let n = *value.get_ref();
        let out_of_range = || {
            let range = if max == i64::MAX {
                format!("at least {min}")
            } else {
                format!("from {min} to {max}")
            };
            self.invalid(key, value.span(), format!("{n} (expected an integer {range})"))
        };
        if n < min || n > max {
            return Err(out_of_range());
        }
        T::try_from(n).map_err(|_| out_of_range())
    }

    fn non_empty(&self, key: &str, value: &Text) -> Result<String, ConfigFileError> {
        if value.get_ref().trim().is_empty() {
            return Err(self.invalid(key, value.span(), "an empty string"));
        }
        Ok(value.get_ref().clone())
    }

    fn url(&self, key: &str, value: &Text) -> Result<String, ConfigFileError> {
        let url = value.get_ref();
        let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
        match rest {
            Some(rest)
                if !rest.is_empty()
                    && !rest.starts_with('/')
                    && !url.contains(char::is_whitespace) =>
            {
                Ok(url.clone())
            }
            _ => Err(self.invalid(
                key,
                value.span(),
                format!("{url:?} (expected an http:// or https:// URL)"),
            )),
        }
    }

    fn env_name(&self, key: &str, value: &Text, empty: Empty) -> Result<String, ConfigFileError> {
        let name = value.get_ref();
        let valid = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if valid {
            return Ok(name.clone());
        }
        let hint = match empty {
            Empty::Allowed => {
                "an environment variable name such as OPENAI_API_KEY, or \"\" for no key"
            }
            Empty::Refused => "an environment variable name such as ANALYTICS_TOKEN",
        };
        Err(self.invalid(key, value.span(), format!("{name:?} (expected {hint})")))
    }

    fn duration(&self, key: &str, value: &Text) -> Result<Duration, ConfigFileError> {
        match parse_duration(value.get_ref()) {
            Some(duration) if !duration.is_zero() => Ok(duration),
            Some(_) | None => Err(self.invalid(
                key,
                value.span(),
                format!(
                    "{:?} (expected a positive duration such as \"500ms\", \"15s\", \"5m\" or \"1h\")",
                    value.get_ref()
                ),
            )),
        }
    }

    fn path_value(&self, key: &str, value: &Text) -> Result<PathBuf, ConfigFileError> {
        let raw = self.non_empty(key, value)?;
        let path = PathBuf::from(raw);
        if path.is_absolute() {
            return Ok(path);
        }
        let base = self.path.parent().filter(|parent| !parent.as_os_str().is_empty());
        Ok(match base {
            Some(base) => base.join(path),
            None => path,
        })
    }

    fn header(&self, name: &str, value: &Text) -> Result<(String, String), ConfigFileError> {
        let key = dotted("provider.extra_headers", name);
        let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if name.is_empty() || !name.chars().all(token) {
            return Err(self.invalid(
                &key,
                value.span(),
                format!("{name:?} is not a valid header name"),
            ));
        }
        if name.eq_ignore_ascii_case("authorization") {
            return Err(self.invalid(
                &key,
                value.span(),
                "the key is set with provider.api_key_env, never in the file",
            ));
        }
        if value.get_ref().chars().any(|c| c.is_control() && c != '\t') {
            return Err(self.invalid(&key, value.span(), "a header value with control characters"));
        }
        Ok((name.to_owned(), value.get_ref().clone()))
    }

    /// The span of `table.key` in the document, for checks that involve two keys.
    fn find_key_span(&self, table: &str, key: &str) -> Range<usize> {
        let Ok(document) = DeTable::parse(self.text) else {
            return 0..0;
        };
        document
            .get_ref()
            .get(table)
            .and_then(|value| value.get_ref().as_table())
            .and_then(|table| table.get_key_value(key))
            .map_or(0..0, |(key, _)| key.span())
    }
}

/// Whether an empty environment variable name means "none".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Empty {
    Allowed,
    Refused,
}

/// The implementation a chain entry names (canonical name or alias).
fn implementation_named(name: &str) -> Option<CompactionImplementation> {
    CHAIN_NAMES
        .iter()
        .find(|(canonical, alias, _)| name == *canonical || name == *alias)
        .map(|(_, _, implementation)| *implementation)
}

/// `"500ms"`, `"15s"`, `"5m"`, `"1h"`.
fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    match unit.trim() {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        "h" => n.checked_mul(3600).map(Duration::from_secs),
        _ => None,
    }
}

/// The dotted path of the key whose key or value covers `span`.
fn key_at(table: &DeTable<'_>, span: &Range<usize>, prefix: &str) -> Option<String> {
    for (key, value) in table {
        let path = dotted(prefix, key.get_ref());
        if covers(&key.span(), span) {
            return Some(path);
        }
        // Dotted keys and headers make tables whose own span may not cover their entries.
        if let Some(found) = value_key_at(value, span, &path) {
            return Some(found);
        }
    }
    None
}

fn value_key_at(value: &Spanned<DeValue<'_>>, span: &Range<usize>, path: &str) -> Option<String> {
    match value.get_ref() {
        DeValue::Table(table) => key_at(table, span, path)
            .or_else(|| covers(&value.span(), span).then(|| path.to_owned())),
        DeValue::Array(array) => {
            for (index, item) in array.iter().enumerate() {
                let mut item_path = String::from(path);
                let _ = write!(item_path, "[{index}]");
                if let Some(found) = value_key_at(item, span, &item_path) {
                    return Some(found);
                }
            }
            covers(&value.span(), span).then(|| path.to_owned())
        }
        DeValue::String(_)
        | DeValue::Integer(_)
        | DeValue::Float(_)
        | DeValue::Boolean(_)
        | DeValue::Datetime(_) => covers(&value.span(), span).then(|| path.to_owned()),
    }
}

/// `prefix.name`, quoting `name` when it is not a bare TOML key.
fn dotted(prefix: &str, name: &str) -> String {
    let bare =
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let name = if bare { name.to_owned() } else { format!("{name:?}") };
    if prefix.is_empty() { name } else { format!("{prefix}.{name}") }
}

fn covers(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end && outer.start < outer.end
}

#[cfg(test)]
mod tests;
