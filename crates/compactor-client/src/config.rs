//! Provider configuration: where to send requests, with which key, and how patiently.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use compactor_protocol::{CompactorError, PassThroughList};

use crate::redact::{Redactor, percent_decode};

/// The default cap on one stream line, event or WebSocket message: 64 MiB (D61 in
/// docs/decisions.md). A stream that carries a bigger one ends with
/// [`CompactorError::EventTooLarge`].
pub const DEFAULT_MAX_EVENT_BYTES: usize = 64 << 20;

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

/// Retry limits and backoff (D10). The delays also pace core's retries of streams that fail
/// after they opened (D81).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries of opening a stream or of a unary call.
    pub max_retries: u32,
    /// The first backoff; doubled for each further retry, with ±10 % jitter.
    pub base_delay: Duration,
    /// The longest wait before any retry: a longer server-requested delay (`Retry-After`,
    /// "try again in Ns") or a longer doubled backoff is cut to this.
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
    /// The largest SSE line, SSE event, WebSocket message or `/responses/compact` body the client
    /// reads; past it the stream ends with [`CompactorError::EventTooLarge`] (D61).
    pub max_event_bytes: usize,
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
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
        }
    }
}

impl fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> =
            self.extra_headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("ProviderConfig")
            .field("name", &self.name)
            .field("base_url", &url_without_userinfo(&self.base_url))
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
            .field("max_event_bytes", &self.max_event_bytes)
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

    /// The base URL as Compactor prints it: without its userinfo (D62 in docs/decisions.md).
    pub fn display_base_url(&self) -> String {
        url_without_userinfo(&self.base_url).into_owned()
    }

    /// The WebSocket URL of `/responses`, without userinfo (its credentials go in a header, see
    /// [`ProviderConfig::basic_credentials`]): `http` becomes `ws`, `https` becomes `wss`.
    pub(crate) fn websocket_url(&self) -> String {
        let url = self.url("responses");
        let url = url_without_userinfo(&url);
        if let Some(rest) = url.strip_prefix("https://") {
            format!("wss://{rest}")
        } else if let Some(rest) = url.strip_prefix("http://") {
            format!("ws://{rest}")
        } else {
            url.into_owned()
        }
    }

    /// The value of a `Basic` `Authorization` header built from the base URL's userinfo, as
    /// reqwest sends it over HTTP; `None` without userinfo.
    pub(crate) fn basic_credentials(&self) -> Option<String> {
        let (user, password) = userinfo(&self.base_url)?;
        let plain = format!(
            "{}:{}",
            percent_decode(user),
            password.map(percent_decode).unwrap_or_default()
        );
        Some(base64::engine::general_purpose::STANDARD.encode(plain))
    }

    /// The secrets to redact from server text for requests sent with `key`: the key, the base
    /// URL's password (or its user name when it has no password), raw and decoded, and the
    /// `Basic` credentials they make (D60).
    pub(crate) fn redactor(&self, key: Option<&SecretString>) -> Redactor {
        let mut secrets: Vec<String> = Vec::new();
        if let Some(key) = key {
            secrets.push(key.expose().to_owned());
        }
        if let Some((user, password)) = userinfo(&self.base_url) {
            let credential = password.unwrap_or(user);
            secrets.push(credential.to_owned());
            secrets.push(percent_decode(credential));
        }
        if let Some(basic) = self.basic_credentials() {
            secrets.push(basic);
        }
        Redactor::new(secrets)
    }
}

/// `url` without the userinfo of its authority: `http://user:secret@host/v1` becomes
/// `http://host/v1`. Compactor accepts base URLs with userinfo and prints them this way, in
/// messages, summaries and `Debug` output alike (D62 in docs/decisions.md).
///
/// # Examples
///
/// ```
/// use compactor_client::url_without_userinfo;
///
/// assert_eq!(url_without_userinfo("https://me:pw@example.com/v1"), "https://example.com/v1");
/// assert_eq!(url_without_userinfo("http://127.0.0.1:8080/v1"), "http://127.0.0.1:8080/v1");
/// ```
pub fn url_without_userinfo(url: &str) -> Cow<'_, str> {
    match authority(url) {
        Some((start, end)) => match url[start..end].rfind('@') {
            Some(at) => Cow::Owned(format!("{}{}", &url[..start], &url[start + at + 1..])),
            None => Cow::Borrowed(url),
        },
        None => Cow::Borrowed(url),
    }
}

/// Checks that `url` can be a base URL: an `http://` or `https://` URL with a host, and without
/// a query or fragment (`/responses` is appended to it). The reason it cannot names the URL
/// without its userinfo.
///
/// # Errors
///
/// A sentence saying what is wrong.
///
/// # Examples
///
/// ```
/// use compactor_client::check_base_url;
///
/// assert!(check_base_url("https://api.openai.com/v1").is_ok());
/// assert!(check_base_url("not a url").is_err());
/// assert!(check_base_url("ftp://example.com").is_err());
/// ```
pub fn check_base_url(url: &str) -> Result<(), String> {
    let shown = url_without_userinfo(url);
    let parsed =
        reqwest::Url::parse(url).map_err(|err| format!("{shown:?} is not a URL ({err})"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("{shown:?} is not an http:// or https:// URL"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("{shown:?} has no host"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(format!(
            "{shown:?} has a query or fragment; a base URL is a path that `/responses` is appended to"
        ));
    }
    Ok(())
}

/// The byte range of `url`'s authority (`user:pw@host:port`), when it has one.
fn authority(url: &str) -> Option<(usize, usize)> {
    let start = url.find("://")? + 3;
    let len = url[start..].find(['/', '?', '#']).unwrap_or(url.len() - start);
    Some((start, start + len))
}

/// The raw (percent-encoded) user name and password of `url`'s userinfo.
fn userinfo(url: &str) -> Option<(&str, Option<&str>)> {
    let (start, end) = authority(url)?;
    let info = &url[start..start + url[start..end].rfind('@')?];
    Some(match info.split_once(':') {
        Some((user, password)) => (user, Some(password)),
        None => (info, None),
    })
}

#[cfg(test)]
mod tests;
