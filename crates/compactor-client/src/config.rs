//! Provider configuration: where to send requests, with which key, and how patiently.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use compactor_protocol::{CompactorError, PassThroughList};

/// A secret that never shows in `Debug`, `Display`, logs or errors.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(Arc<str>);

impl SecretString {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(Arc::from(value.into()))
    }

    /// The secret itself; only for building the `Authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

/// Where the API key comes from (D27).
#[derive(Clone, PartialEq, Eq)]
pub enum KeySource {
    /// No key: no `Authorization` header (local servers).
    None,
    /// Read from this environment variable at request time.
    Env(String),
    /// Given in code.
    Value(SecretString),
}

impl Default for KeySource {
    fn default() -> Self {
        KeySource::Env("OPENAI_API_KEY".to_owned())
    }
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::None => f.write_str("KeySource::None"),
            KeySource::Env(name) => write!(f, "KeySource::Env({name:?})"),
            KeySource::Value(_) => f.write_str("KeySource::Value(<redacted>)"),
        }
    }
}

impl KeySource {
    /// The key, when there is one. A missing environment variable is a configuration error whose
    /// text names the variable, never a value.
    pub(crate) fn resolve(&self) -> Result<Option<SecretString>, CompactorError> {
        match self {
            KeySource::None => Ok(None),
            KeySource::Value(secret) => Ok(Some(secret.clone())),
            KeySource::Env(name) => match std::env::var(name) {
                Ok(value) if !value.is_empty() => Ok(Some(SecretString::new(value))),
                Ok(_) | Err(_) => {
                    Err(CompactorError::Config(format!("the API key variable `{name}` is not set")))
                }
            },
        }
    }
}

/// Whether the client may use the WebSocket transport.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WebsocketMode {
    /// HTTP + SSE only.
    #[default]
    Disabled,
    /// WebSocket first, HTTP as the fallback.
    Enabled,
}

/// Whether a new WebSocket session sends a `generate: false` request before its first turn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Prewarm {
    /// No prewarm (D13).
    #[default]
    Off,
    /// Prewarm with an empty `response.create` that does not generate.
    On,
}

/// Retry limits and backoff (D10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries of opening a stream or of a unary call.
    pub max_retries: u32,
    /// The first backoff; doubled for each further retry, with ±10 % jitter.
    pub base_delay: Duration,
    /// The longest a server-requested delay is honoured.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 4,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The delay before retry `attempt` (1-based): `base * 2^(attempt-1)` with ±10 % jitter, or the
    /// server's requested delay when it gave one (capped at `max_delay`).
    pub fn delay(&self, attempt: u32, requested: Option<Duration>) -> Duration {
        if let Some(requested) = requested {
            return requested.min(self.max_delay);
        }
        let exp = attempt.saturating_sub(1).min(16);
        let base = self.base_delay.saturating_mul(1u32 << exp);
        let jitter = 0.9 + fastrand::f64() * 0.2;
        base.mul_f64(jitter).min(self.max_delay)
    }
}

/// Everything the client needs to know about a Responses-compatible provider.
///
/// Its `Debug` output shows the names of the extra headers, never their values: some carry
/// credentials (`api-key`, session tokens).
#[derive(Clone)]
pub struct ProviderConfig {
    /// A display name (logs, traces, analytics).
    pub name: String,
    /// The API base, e.g. `https://api.openai.com/v1`; `/responses` is appended.
    pub base_url: String,
    /// Where the key comes from.
    pub key: KeySource,
    /// Headers sent on every request and WebSocket handshake (D26).
    pub extra_headers: Vec<(String, String)>,
    /// Whether the WebSocket transport is used.
    pub websocket: WebsocketMode,
    /// Whether new WebSocket sessions prewarm.
    pub prewarm: Prewarm,
    /// Retries of opening a stream or a unary call.
    pub retry: RetryPolicy,
    /// How long a stream may stay silent.
    pub stream_idle_timeout: Duration,
    /// How long opening an HTTP connection may take.
    pub connect_timeout: Duration,
    /// How long a WebSocket handshake may take.
    pub websocket_connect_timeout: Duration,
    /// The longest a unary `/responses/compact` call may take.
    pub request_timeout: Duration,
    /// Unknown item types that may be sent to the model (D34).
    pub pass_through: PassThroughList,
}

impl Default for ProviderConfig {
    fn default() -> Self {
        Self {
            name: "openai".to_owned(),
            base_url: "https://api.openai.com/v1".to_owned(),
            key: KeySource::default(),
            extra_headers: Vec::new(),
            websocket: WebsocketMode::default(),
            prewarm: Prewarm::default(),
            retry: RetryPolicy::default(),
            stream_idle_timeout: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(15),
            websocket_connect_timeout: Duration::from_secs(15),
            request_timeout: Duration::from_secs(600),
            pass_through: PassThroughList::default(),
        }
    }
}

impl fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> =
            self.extra_headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("ProviderConfig")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("key", &self.key)
            .field("extra_headers", &header_names)
            .field("websocket", &self.websocket)
            .field("prewarm", &self.prewarm)
            .field("retry", &self.retry)
            .field("stream_idle_timeout", &self.stream_idle_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("websocket_connect_timeout", &self.websocket_connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("pass_through", &self.pass_through)
            .finish()
    }
}

impl ProviderConfig {
    /// A provider at `base_url` with defaults for everything else.
    pub fn new(name: impl Into<String>, base_url: impl Into<String>) -> Self {
        Self { name: name.into(), base_url: base_url.into(), ..Self::default() }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base_url.trim_end_matches('/'))
    }

    /// The WebSocket URL of `/responses`: `http` becomes `ws`, `https` becomes `wss`.
    pub(crate) fn websocket_url(&self) -> String {
        let url = self.url("responses");
        if let Some(rest) = url.strip_prefix("https://") {
            format!("wss://{rest}")
        } else if let Some(rest) = url.strip_prefix("http://") {
            format!("ws://{rest}")
        } else {
            url
        }
    }
}
