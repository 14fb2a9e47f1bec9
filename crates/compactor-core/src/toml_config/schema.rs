//! The schema of `compactor.toml`: the file's shape as it is deserialized (the only serde derives
//! of this crate, see D74 in docs/decisions.md), and the validated settings a
//! [`CompactorToml`](super::CompactorToml) holds.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use compactor_client::{KeySource, Prewarm, WebsocketMode, url_without_userinfo};
use compactor_engine::TruncationPolicy;
use compactor_protocol::tokens::TokenCounter;
use compactor_protocol::{CompactionImplementation, PassThroughList, V2TriggerForm};
use serde::Deserialize;
use toml::Spanned;

use crate::config::{
    Calibration, ProgressLedger, ProviderKind, ReactiveCompaction, RemoteCompaction,
};

// The validated settings: what the file sets, `None` where it is silent.

// Debug by hand: a base URL may carry credentials and a header value may be a key, and a
// program that logs its configuration must log neither (D62).
#[derive(Clone, Default, PartialEq)]
pub(super) struct ProviderSettings {
    pub(super) name: Option<String>,
    pub(super) base_url: Option<String>,
    pub(super) kind: Option<ProviderKind>,
    pub(super) key: Option<KeySource>,
    pub(super) websocket: Option<WebsocketMode>,
    pub(super) prewarm: Option<Prewarm>,
    pub(super) max_retries: Option<u32>,
    pub(super) retry_base_delay: Option<Duration>,
    pub(super) retry_max_delay: Option<Duration>,
    pub(super) stream_idle_timeout: Option<Duration>,
    pub(super) connect_timeout: Option<Duration>,
    pub(super) websocket_connect_timeout: Option<Duration>,
    pub(super) request_timeout: Option<Duration>,
    pub(super) remote_compaction: Option<RemoteCompaction>,
    pub(super) v2_trigger: Option<V2TriggerForm>,
    pub(super) pass_through: Option<PassThroughList>,
    pub(super) extra_headers: Option<Vec<(String, String)>>,
}

impl fmt::Debug for ProviderSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names = self
            .extra_headers
            .as_ref()
            .map(|headers| headers.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>());
        f.debug_struct("ProviderSettings")
            .field("name", &self.name)
            .field("base_url", &self.base_url.as_deref().map(url_without_userinfo))
            .field("kind", &self.kind)
            .field("key", &self.key)
            .field("websocket", &self.websocket)
            .field("prewarm", &self.prewarm)
            .field("max_retries", &self.max_retries)
            .field("retry_base_delay", &self.retry_base_delay)
            .field("retry_max_delay", &self.retry_max_delay)
            .field("stream_idle_timeout", &self.stream_idle_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("websocket_connect_timeout", &self.websocket_connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("remote_compaction", &self.remote_compaction)
            .field("v2_trigger", &self.v2_trigger)
            .field("pass_through", &self.pass_through)
            .field("extra_headers", &header_names)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct FeatureSettings {
    pub(super) remote_compaction_v2: Option<bool>,
    pub(super) responses_websocket_response_processed: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct CompactionFileSettings {
    pub(super) chain: Option<Vec<CompactionImplementation>>,
    pub(super) summarization_prompt: Option<String>,
    pub(super) max_auto_compactions_per_turn: Option<u32>,
    pub(super) reactive: Option<ReactiveCompaction>,
    pub(super) local_max_retries: Option<u32>,
    pub(super) v2_max_retries: Option<u32>,
    pub(super) turn_max_retries: Option<u32>,
    pub(super) protected_user_turns: Option<usize>,
    pub(super) target_percent: Option<u8>,
    pub(super) pinned_notes: Option<Vec<String>>,
    pub(super) retained_budget_tokens: Option<u64>,
    pub(super) max_retained_images: Option<usize>,
    pub(super) ledger: Option<ProgressLedger>,
    pub(super) ledger_budget_tokens: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct TokenFileSettings {
    pub(super) counter: Option<TokenCounter>,
    pub(super) calibration: Option<Calibration>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct ModelSettings {
    pub(super) slug: Option<String>,
    pub(super) context_window: Option<i64>,
    pub(super) auto_compact_token_limit: Option<i64>,
    pub(super) effective_context_window_percent: Option<i64>,
    pub(super) tool_output_limit: Option<TruncationPolicy>,
}

// The file's shape. Leaves whose meaning is checked here (names, durations, ranges) are read as
// spanned strings and integers so that the check can point at their line.

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    #[serde(default)]
    pub(super) provider: RawProvider,
    #[serde(default)]
    pub(super) features: RawFeatures,
    #[serde(default)]
    pub(super) compaction: RawCompaction,
    #[serde(default)]
    pub(super) model: RawModel,
    #[serde(default)]
    pub(super) tokens: RawTokens,
    #[serde(default)]
    pub(super) trace: RawTrace,
    #[serde(default)]
    pub(super) analytics: RawAnalytics,
}

pub(super) type Text = Spanned<String>;
pub(super) type Int = Spanned<i64>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProvider {
    pub(super) name: Option<Text>,
    pub(super) base_url: Option<Text>,
    pub(super) kind: Option<Text>,
    pub(super) api_key_env: Option<Text>,
    pub(super) websocket: Option<bool>,
    pub(super) prewarm: Option<bool>,
    pub(super) max_retries: Option<Int>,
    pub(super) retry_base_delay: Option<Text>,
    pub(super) retry_max_delay: Option<Text>,
    pub(super) stream_idle_timeout: Option<Text>,
    pub(super) connect_timeout: Option<Text>,
    pub(super) websocket_connect_timeout: Option<Text>,
    pub(super) request_timeout: Option<Text>,
    pub(super) remote_compaction: Option<bool>,
    pub(super) v2_trigger: Option<Text>,
    pub(super) pass_through: Option<Vec<Text>>,
    pub(super) extra_headers: Option<BTreeMap<String, Text>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFeatures {
    pub(super) remote_compaction_v2: Option<bool>,
    pub(super) responses_websocket_response_processed: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCompaction {
    pub(super) chain: Option<Vec<Text>>,
    pub(super) summarization_prompt: Option<Text>,
    pub(super) max_auto_compactions_per_turn: Option<Int>,
    pub(super) reactive: Option<bool>,
    pub(super) local_max_retries: Option<Int>,
    pub(super) v2_max_retries: Option<Int>,
    pub(super) turn_max_retries: Option<Int>,
    pub(super) retained_budget_tokens: Option<Int>,
    pub(super) max_retained_images: Option<Int>,
    pub(super) ledger: Option<bool>,
    pub(super) ledger_budget_tokens: Option<Int>,
    #[serde(default)]
    pub(super) prune: RawPrune,
    pub(super) pinned_notes: Option<Vec<Text>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPrune {
    pub(super) protected_user_turns: Option<Int>,
    pub(super) target_percent: Option<Int>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawModel {
    pub(super) slug: Option<Text>,
    pub(super) context_window: Option<Int>,
    pub(super) auto_compact_token_limit: Option<Int>,
    pub(super) effective_context_window_percent: Option<Int>,
    pub(super) tool_output_limit: Option<RawTruncation>,
}

/// `{ mode = "tokens" | "bytes", limit = N }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTruncation {
    pub(super) mode: Text,
    pub(super) limit: Int,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTokens {
    pub(super) counter: Option<Text>,
    pub(super) calibration: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTrace {
    pub(super) root: Option<Text>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAnalytics {
    pub(super) jsonl: Option<Text>,
    pub(super) http_url: Option<Text>,
    pub(super) http_bearer_env: Option<Text>,
    pub(super) otlp_endpoint: Option<Text>,
    pub(super) otlp_headers: Option<BTreeMap<String, Text>>,
}
