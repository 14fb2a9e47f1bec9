//! From the file's shape to validated settings: every value is checked (names, ranges, URLs,
//! durations, header names), and a bad one becomes an error naming its key and line.

use std::path::PathBuf;
use std::time::Duration;

use compactor_client::{KeySource, Prewarm, WebsocketMode};
use compactor_engine::{MIN_RETAINED_BUDGET_TOKENS, TruncationPolicy};
use compactor_protocol::tokens::TokenCounter;
use compactor_protocol::{CompactionImplementation, PassThroughList, V2TriggerForm};

use super::error::ConfigFileError;
use super::schema::{
    CompactionFileSettings, FeatureSettings, Int, ModelSettings, ProviderSettings, RawCompaction,
    RawFile, RawModel, RawProvider, RawTruncation, Text, TokenFileSettings,
};
use super::span::{FileContext, dotted};
use super::{AnalyticsSettings, CompactorToml};
use crate::config::{Calibration, ProviderKind, ReactiveCompaction, RemoteCompaction};

impl FileContext<'_> {
    /// The settings `raw` holds once every value is checked, or the first value that is wrong.
    pub(super) fn validate(&self, raw: RawFile) -> Result<CompactorToml, ConfigFileError> {
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
        let tokens = TokenFileSettings {
            counter: raw
                .tokens
                .counter
                .map(|name| {
                    name.get_ref().parse::<TokenCounter>().map_err(|_| {
                        self.invalid(
                            "tokens.counter",
                            name.span(),
                            format!("{:?} (expected one of bytes4, o200k)", name.get_ref()),
                        )
                    })
                })
                .transpose()?,
            calibration: raw
                .tokens
                .calibration
                .map(|on| if on { Calibration::On } else { Calibration::Off }),
        };
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
        Ok(CompactorToml { provider, features, compaction, model, tokens, trace_root, analytics })
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
            base_url: raw.base_url.map(|url| self.base_url(&url)).transpose()?,
            kind: raw
                .kind
                .map(|kind| {
                    kind.get_ref()
                        .parse::<ProviderKind>()
                        .map_err(|message| self.invalid("provider.kind", kind.span(), message))
                })
                .transpose()?,
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
                    let parsed = name.get_ref().parse::<CompactionImplementation>();
                    let Some(implementation) =
                        parsed.as_ref().ok().copied().filter(|i| i.can_be_requested())
                    else {
                        let expected: Vec<&str> = CompactionImplementation::ALL
                            .iter()
                            .filter(|implementation| implementation.can_be_requested())
                            .map(|implementation| implementation.name())
                            .collect();
                        let why = match parsed {
                            Ok(_) => "the server compacts by itself; ",
                            Err(_) => "",
                        };
                        return Err(self.invalid(
                            &key,
                            name.span(),
                            format!(
                                "{:?} ({why}expected one of {})",
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
            pinned_notes: raw
                .pinned_notes
                .map(|notes| {
                    notes
                        .iter()
                        .enumerate()
                        .map(|(index, note)| {
                            self.non_empty(&format!("compaction.pinned_notes[{index}]"), note)
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?,
            retained_budget_tokens: raw
                .retained_budget_tokens
                .map(|n| {
                    let min = i64::try_from(MIN_RETAINED_BUDGET_TOKENS).unwrap_or(i64::MAX);
                    self.int("compaction.retained_budget_tokens", &n, min, i64::MAX)
                })
                .transpose()?,
            max_retained_images: raw
                .max_retained_images
                .map(|n| self.int("compaction.max_retained_images", &n, 0, 1_000_000))
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
            tool_output_limit: raw
                .tool_output_limit
                .map(|limit| self.truncation("model.tool_output_limit", &limit))
                .transpose()?,
        })
    }

    /// A tool-output limit: a mode (`tokens` or `bytes`) and a positive limit.
    fn truncation(
        &self,
        key: &str,
        raw: &RawTruncation,
    ) -> Result<TruncationPolicy, ConfigFileError> {
        let limit = self.int(&format!("{key}.limit"), &raw.limit, 1, i64::MAX)?;
        match raw.mode.get_ref().as_str() {
            "tokens" => Ok(TruncationPolicy::Tokens(limit)),
            "bytes" => Ok(TruncationPolicy::Bytes(limit)),
            other => Err(self.invalid(
                &format!("{key}.mode"),
                raw.mode.span(),
                format!("{other:?} (expected one of tokens, bytes)"),
            )),
        }
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
                // Shown without userinfo, which may hold a password (D62).
                format!(
                    "{:?} (expected an http:// or https:// URL)",
                    compactor_client::url_without_userinfo(url)
                ),
            )),
        }
    }

    /// `provider.base_url`: checked as `--base-url` is, and named without its userinfo (D62).
    fn base_url(&self, value: &Text) -> Result<String, ConfigFileError> {
        let url = value.get_ref();
        match compactor_client::check_base_url(url) {
            Ok(()) => Ok(url.clone()),
            Err(reason) => Err(self.invalid("provider.base_url", value.span(), reason)),
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
}

/// Whether an empty environment variable name means "none".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Empty {
    Allowed,
    Refused,
}

/// `"500ms"`, `"15s"`, `"5m"`, `"1h"`.
pub(super) fn parse_duration(text: &str) -> Option<Duration> {
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
