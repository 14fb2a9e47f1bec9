//! Settings: the command's defaults, then `compactor.toml`, then flags; the provider they select
//! (the embedded reference model unless a base URL is given); and the analytics sinks.

use std::path::{Path, PathBuf};

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Args, ValueEnum};
use compactor_analytics::{
    AnalyticsClient, AnalyticsConfig, AnalyticsEvent, AnalyticsSink, BearerToken, CompactionEvent,
    HttpBatchSink, HttpSinkConfig, JsonlFileSink, SinkFuture,
};
use compactor_client::{KeySource, WebsocketMode};
use compactor_core::{CONFIG_FILE_NAME, CompactorToml, ModelInfo, ProviderKind, SessionConfig};
use compactor_protocol::CompactionImplementation;
use compactor_protocol::tokens::TokenCounter;
use compactor_rollout_trace::TraceConfig;
use compactor_testkit::{
    ContextWindows, Mode, ReferenceModelConfig, SealKey, TestServer, TestServerConfig,
    ToolCallPolicy,
};
use tokio::sync::mpsc;

use crate::error::{CliError, Exit};

/// The model slug when neither the file, the flags nor the rollout name one.
pub(crate) const DEFAULT_MODEL: &str = "gpt-5";

/// How many compaction events the command's own sink holds before it drops.
const COMPACTION_EVENT_CAPACITY: usize = 1024;

/// The flags of every command that talks to a model.
#[derive(Debug, Clone, Args)]
pub(crate) struct ModelArgs {
    /// Read settings from this compactor.toml [default: ./compactor.toml when it exists].
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Talk to the Responses endpoint at URL (e.g. <https://api.openai.com/v1>) instead of the
    /// embedded reference model.
    #[arg(long, value_name = "URL")]
    pub(crate) base_url: Option<String>,
    /// The environment variable holding the API key of --base-url [default: OPENAI_API_KEY];
    /// "" sends no key.
    #[arg(long, value_name = "NAME")]
    pub(crate) api_key_env: Option<String>,
    /// The model slug sent as `model`.
    #[arg(long, value_name = "SLUG")]
    pub(crate) model: Option<String>,
    /// The model's context window in tokens; auto compaction starts at 90% of it.
    #[arg(long, value_name = "TOKENS", value_parser = clap::value_parser!(i64).range(1_000..))]
    pub(crate) window: Option<i64>,
    /// The transport: WebSocket (falling back to HTTP) or HTTP + SSE [default: ws].
    #[arg(long, value_enum)]
    pub(crate) transport: Option<Transport>,
    /// The compaction implementation; a comma-separated list is a fallback chain
    /// [default: responses_compaction_v2].
    #[arg(long, value_parser = implementation_parser(), value_delimiter = ',', value_name = "IMPL")]
    pub(crate) implementation: Option<Vec<CompactionImplementation>>,
    /// How tokens are counted: o200k (exact, OpenAI's o200k_base encoding) or bytes4 (four
    /// bytes per token, corrected by reported usage) [default: o200k].
    #[arg(long, value_enum, value_name = "COUNTER")]
    pub(crate) token_counter: Option<TokenCounterArg>,
    /// The seal key of the embedded reference model [default: the testkit's fixed key, so a
    /// rollout written by one run compacts in the next].
    #[arg(long, value_name = "KEY")]
    pub(crate) seal_key: Option<String>,
}

/// The token counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum TokenCounterArg {
    /// OpenAI's o200k_base encoding, exact for its text.
    O200k,
    /// Four bytes per token, calibrated with the usage each response reports.
    Bytes4,
}

/// The transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Transport {
    /// WebSocket, with `response.processed` acknowledgements; HTTP when the upgrade fails.
    Ws,
    /// HTTP + SSE.
    Http,
}

/// `--implementation`: the implementations a chain may name, by their long names (short names
/// are aliases), parsed by `CompactionImplementation`'s own `FromStr`.
fn implementation_parser() -> impl TypedValueParser<Value = CompactionImplementation> {
    let values = CompactionImplementation::ALL
        .into_iter()
        .filter(|implementation| implementation.can_be_requested())
        .map(|implementation| {
            let value =
                PossibleValue::new(implementation.name()).help(implementation_help(implementation));
            match implementation.short_name() {
                short if short == implementation.name() => value,
                short => value.alias(short),
            }
        });
    PossibleValuesParser::new(values).try_map(|name| name.parse::<CompactionImplementation>())
}

/// What `--help` says about each implementation.
fn implementation_help(implementation: CompactionImplementation) -> &'static str {
    match implementation {
        CompactionImplementation::ResponsesCompactionV2 => {
            "Remote compaction v2: a `/responses` stream ending with a trigger item"
        }
        CompactionImplementation::ResponsesCompact => {
            "Remote compaction v1: `POST /responses/compact`"
        }
        CompactionImplementation::Responses => {
            "Local summarization through a normal `/responses` stream"
        }
        CompactionImplementation::Prune => {
            "Deterministic pruning of old tool outputs, without a model call"
        }
        CompactionImplementation::ServerManaged => {
            "The server compacts by itself; it cannot be requested"
        }
    }
}

/// A `compactor.toml` that was read, and where from.
#[derive(Debug, Clone)]
pub(crate) struct ConfigFile {
    pub(crate) path: PathBuf,
    pub(crate) toml: CompactorToml,
}

/// Reads the file named by `--config`, or `./compactor.toml` when it exists. Blocking: called
/// before the runtime starts.
pub(crate) fn load_config_file(flag: Option<&Path>) -> Result<Option<ConfigFile>, CliError> {
    let path = match flag {
        Some(path) => path.to_path_buf(),
        None => {
            let default = PathBuf::from(CONFIG_FILE_NAME);
            if !default.is_file() {
                return Ok(None);
            }
            default
        }
    };
    match CompactorToml::load(&path) {
        Ok(toml) => Ok(Some(ConfigFile { path, toml })),
        Err(err) if err.is_not_found() => Err(CliError::msg(
            Exit::MissingFile,
            format_args!("config file {} does not exist", path.display()),
        )),
        Err(err @ compactor_core::ConfigFileError::Read { .. }) => Err(CliError::other(err)),
        Err(err) => Err(CliError::new(Exit::BadConfig, err)),
    }
}

/// Where the model is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// The embedded reference model, started by the command.
    Embedded {
        /// Its seal key, when not the default.
        seal_key: Option<String>,
    },
    /// The URL in the settings.
    Remote,
}

/// The layered settings of one command.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) config: SessionConfig,
    pub(crate) endpoint: Endpoint,
    pub(crate) file: Option<ConfigFile>,
}

/// Layers the command's `defaults`, the config file and the flags.
pub(crate) fn layer(
    args: &ModelArgs,
    file: Option<ConfigFile>,
    defaults: SessionConfig,
) -> Result<Settings, CliError> {
    let mut config = defaults;
    if let Some(file) = &file {
        file.toml.apply(&mut config);
    }
    if let Some(url) = &args.base_url {
        // A malformed URL is a usage error, and the message never shows its userinfo (D62).
        compactor_client::check_base_url(url)
            .map_err(|reason| CliError::msg(Exit::Usage, format_args!("--base-url {reason}")))?;
        config.provider.base_url.clone_from(url);
    }
    if let Some(name) = &args.api_key_env {
        config.provider.key =
            if name.is_empty() { KeySource::None } else { KeySource::Env(name.clone()) };
    }
    if let Some(slug) = &args.model {
        config.model.slug.clone_from(slug);
    }
    if let Some(window) = args.window {
        config.model.context_window = Some(window);
    }
    if let Some(transport) = args.transport {
        config.provider.websocket = match transport {
            Transport::Ws => WebsocketMode::Enabled,
            Transport::Http => WebsocketMode::Disabled,
        };
    }
    if let Some(counter) = args.token_counter {
        config.tokens.counter = match counter {
            TokenCounterArg::O200k => TokenCounter::O200k,
            TokenCounterArg::Bytes4 => TokenCounter::Bytes4,
        };
    }
    if let Some(chain) = &args.implementation {
        let mut core_chain: Vec<CompactionImplementation> = Vec::with_capacity(chain.len());
        for implementation in chain.iter().copied() {
            if !core_chain.contains(&implementation) {
                core_chain.push(implementation);
            }
        }
        config.features.remote_compaction_v2 =
            core_chain.contains(&CompactionImplementation::ResponsesCompactionV2);
        config.compaction.chain = core_chain;
    }
    let remote =
        args.base_url.is_some() || file.as_ref().is_some_and(|file| file.toml.base_url().is_some());
    let endpoint = if remote {
        if let KeySource::Env(name) = &config.provider.key
            && std::env::var(name).map_or(true, |value| value.is_empty())
        {
            return Err(CliError::msg(
                Exit::KeyUnset,
                format_args!(
                    "the API key variable {name} is not set; export it, name another with \
                     --api-key-env, or pass --api-key-env \"\" for an endpoint without a key"
                ),
            ));
        }
        Endpoint::Remote
    } else {
        if args.api_key_env.is_some() {
            eprintln!(
                "warning: --api-key-env is ignored without --base-url: the embedded model needs no key"
            );
        }
        config.provider.key = KeySource::None;
        config.provider.name = "embedded".to_owned();
        config.provider_kind = Some(ProviderKind::Reference);
        Endpoint::Embedded { seal_key: args.seal_key.clone() }
    };
    Ok(Settings { config, endpoint, file })
}

/// The command's defaults: WebSocket with `response.processed`, the `remote_compaction_v2`
/// feature, the compaction chain the provider's kind chooses, exact token counts with o200k
/// (D127), and trace bundles under `COMPACTOR_ROLLOUT_TRACE_ROOT` when it is set.
pub(crate) fn cli_defaults(model: ModelInfo) -> SessionConfig {
    let mut config = SessionConfig::new(compactor_client::ProviderConfig::default(), model);
    config.tokens.counter = TokenCounter::O200k;
    config.trace = TraceConfig::from_env();
    config.provider.websocket = WebsocketMode::Enabled;
    config.features.remote_compaction_v2 = true;
    config.features.responses_websocket_response_processed = true;
    // No chain: the provider's kind chooses it (D114).
    config
}

impl Settings {
    /// Starts the embedded reference model when the settings select it, and points the provider
    /// at it.
    pub(crate) async fn start_provider(
        &mut self,
        tool_calls: ToolCallPolicy,
    ) -> Result<Option<TestServer>, CliError> {
        let Endpoint::Embedded { seal_key } = &self.endpoint else {
            return Ok(None);
        };
        // The embedded model enforces the session's window, as a real endpoint would.
        let context_windows = self
            .config
            .model
            .context_window
            .and_then(|window| u64::try_from(window).ok())
            .map(ContextWindows::every_model)
            .unwrap_or_default();
        let model = ReferenceModelConfig {
            seal_key: seal_key.as_ref().map(SealKey::new).unwrap_or_default(),
            tool_calls,
            reply_padding_bytes: 0,
            context_windows,
        };
        let config = TestServerConfig {
            mode: Mode::ReferenceModel(model),
            port: 0,
            ..TestServerConfig::default()
        };
        let server = TestServer::start(config)
            .await
            .map_err(|err| CliError::other(err).context("cannot start the embedded model"))?;
        self.config.provider.base_url = server.base_url();
        Ok(Some(server))
    }

    /// One line naming the provider and transport.
    pub(crate) fn describe_provider(&self) -> String {
        let config = &self.config;
        let transport = match (
            config.provider.websocket,
            config.features.responses_websocket_response_processed,
        ) {
            (WebsocketMode::Enabled, true) => "websocket, response.processed on",
            (WebsocketMode::Enabled, false) => "websocket",
            (WebsocketMode::Disabled, _) => "http + sse",
        };
        let what = match self.endpoint {
            Endpoint::Embedded { .. } => "embedded reference model",
            Endpoint::Remote => "Responses endpoint",
        };
        format!("{what} at {} ({transport})", config.provider.display_base_url())
    }

    /// The chain as the analytics labels name it, and whether it is the provider's default.
    pub(crate) fn describe_chain(&self) -> String {
        let names: Vec<String> =
            self.config.compaction_chain().iter().map(ToString::to_string).collect();
        let chain = names.join(" -> ");
        if self.config.compaction.chain.is_empty() {
            format!("{chain} (the default for a provider of kind {})", self.config.provider_kind())
        } else {
            chain
        }
    }

    /// Starts analytics: the command's own sink (returned as a receiver of compaction events),
    /// the sinks of the config file, and `extra`.
    pub(crate) async fn start_analytics(
        &self,
        extra: Vec<Box<dyn AnalyticsSink>>,
    ) -> Result<(AnalyticsClient, mpsc::Receiver<CompactionEvent>), CliError> {
        let (tx, rx) = mpsc::channel(COMPACTION_EVENT_CAPACITY);
        let mut sinks: Vec<Box<dyn AnalyticsSink>> = vec![Box::new(ChannelSink { tx })];
        sinks.extend(extra);
        if let Some(file) = &self.file {
            let analytics = file.toml.analytics();
            if let Some(path) = &analytics.jsonl {
                let sink = JsonlFileSink::open(path).await.map_err(CliError::other)?;
                sinks.push(Box::new(sink));
            }
            if let Some(url) = &analytics.http_url {
                let mut sink = HttpSinkConfig::new(url.clone());
                if let Some(name) = &analytics.http_bearer_env {
                    sink.bearer_token = Some(
                        BearerToken::from_env(name)
                            .map_err(|err| CliError::new(Exit::KeyUnset, err))?,
                    );
                }
                let sink =
                    HttpBatchSink::new(sink).map_err(|err| CliError::new(Exit::BadConfig, err))?;
                sinks.push(Box::new(sink));
            }
            if let Some(endpoint) = &analytics.otlp_endpoint {
                sinks.push(otlp_sink(endpoint, &analytics.otlp_headers)?);
            }
        }
        let client =
            AnalyticsClient::start(AnalyticsConfig::default(), sinks).map_err(CliError::other)?;
        Ok((client, rx))
    }
}

/// The OpenTelemetry sink of `[analytics] otlp_endpoint`, its header values read from the
/// variables the file names.
#[cfg(feature = "otlp")]
fn otlp_sink(
    endpoint: &str,
    headers: &[(String, String)],
) -> Result<Box<dyn AnalyticsSink>, CliError> {
    use compactor_analytics::{OtlpHeader, OtlpSink, OtlpSinkConfig};

    let mut config = OtlpSinkConfig::new(endpoint);
    for (name, variable) in headers {
        let header = OtlpHeader::from_env(name.as_str(), variable)
            .map_err(|err| CliError::new(Exit::KeyUnset, err))?;
        config.headers.push(header);
    }
    let sink = OtlpSink::new(config).map_err(|err| CliError::new(Exit::BadConfig, err))?;
    Ok(Box::new(sink))
}

/// Without the `otlp` feature, an OTLP endpoint in the config file is refused.
#[cfg(not(feature = "otlp"))]
fn otlp_sink(
    _endpoint: &str,
    _headers: &[(String, String)],
) -> Result<Box<dyn AnalyticsSink>, CliError> {
    Err(CliError::msg(
        Exit::BadConfig,
        "analytics.otlp_endpoint is set, but this compactor was built without the otlp feature",
    ))
}

/// Hands compaction events to the command, which prints one line per attempt.
struct ChannelSink {
    tx: mpsc::Sender<CompactionEvent>,
}

impl AnalyticsSink for ChannelSink {
    fn name(&self) -> &str {
        "compactor-cli"
    }

    fn send<'a>(&'a mut self, events: &'a [AnalyticsEvent]) -> SinkFuture<'a> {
        for event in events {
            let AnalyticsEvent::Compaction(compaction) = event;
            if self.tx.try_send(compaction.clone()).is_err() {
                tracing::debug!("compaction event not shown: the command is not reading");
            }
        }
        Box::pin(std::future::ready(Ok(())))
    }
}

#[cfg(test)]
mod tests;
