//! What a server streams back: the raw event payload, the decoded [`ResponseEvent`], token usage
//! and rate limits (D44).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::items::ResponseItem;
use crate::tokens::{TokenCalibration, TokenCountAccuracy, TokenCounter};

/// One server event as it appears in an SSE `data:` line or a WebSocket text frame.
///
/// Every field but `type` is optional, and unknown fields are ignored, so every peer's dialect
/// reads (D44). Writers (the testkit) fill `sequence_number` and the fields their event
/// type carries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamEventPayload {
    /// The event type, e.g. `response.output_item.done`; the only source of truth for the kind.
    #[serde(rename = "type")]
    pub kind: String,
    /// The event's position in the stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence_number: Option<u64>,
    /// The response object (`created`, `completed`, `failed`, `incomplete`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<Value>,
    /// The output item (`output_item.added` / `.done`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<ResponseItem>,
    /// The item's position in the output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_index: Option<u64>,
    /// The item a delta belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_id: Option<String>,
    /// The call a tool-input delta belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    /// A text delta.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<String>,
    /// The content part a delta belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_index: Option<i64>,
    /// The summary part a reasoning-summary event belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary_index: Option<i64>,
    /// Log probabilities of a text delta (`[]` when not requested).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Value>,
    /// Response headers some servers forward inside events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Value>,
    /// `response.metadata` payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// `codex.rate_limits`: the `primary` and `secondary` windows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limits: Option<Value>,
    /// Wrapped WebSocket `error` frame: the HTTP-like status.
    #[serde(default, alias = "status_code", skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Wrapped WebSocket `error` frame: the error object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
}

/// A decoded stream event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseEvent {
    /// `response.created`.
    Created {
        /// The response id, when the server sent one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        response_id: Option<String>,
    },
    /// `response.output_item.added`.
    OutputItemAdded {
        /// The item as it started.
        item: ResponseItem,
    },
    /// `response.output_item.done`.
    OutputItemDone {
        /// The finished item.
        item: ResponseItem,
    },
    /// The model that actually served the request changed.
    ServerModel {
        /// The model slug.
        model: String,
    },
    /// `response.metadata` verification recommendations.
    ModelVerifications {
        /// The recommendations.
        recommendations: Vec<String>,
    },
    /// The server said whether reasoning tokens are already counted (`x-reasoning-included`).
    ServerReasoningIncluded {
        /// Whether they are.
        included: bool,
    },
    /// `response.completed`.
    Completed {
        /// The response id, used for `previous_response_id` and `response.processed`.
        response_id: String,
        /// Token usage, when the server reported it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token_usage: Option<TokenUsage>,
        /// Whether the model ended its turn.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        end_turn: Option<bool>,
    },
    /// `response.output_text.delta`.
    OutputTextDelta {
        /// The text.
        delta: String,
    },
    /// `response.custom_tool_call_input.delta`.
    ToolCallInputDelta {
        /// The item the delta belongs to.
        item_id: String,
        /// The call the delta belongs to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call_id: Option<String>,
        /// The input text.
        delta: String,
    },
    /// `response.reasoning_summary_text.delta`.
    ReasoningSummaryDelta {
        /// The text.
        delta: String,
        /// The summary part.
        summary_index: i64,
    },
    /// `response.reasoning_text.delta`.
    ReasoningContentDelta {
        /// The text.
        delta: String,
        /// The content part.
        content_index: i64,
    },
    /// `response.reasoning_summary_part.added`.
    ReasoningSummaryPartAdded {
        /// The summary part.
        summary_index: i64,
    },
    /// `response.compaction.compacting`: the server is compacting by itself.
    Compacting {
        /// The compaction item's id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        item_id: Option<String>,
        /// Its position in the output.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output_index: Option<u64>,
    },
    /// Rate-limit headers or a `codex.rate_limits` frame.
    RateLimits {
        /// The snapshot.
        snapshot: RateLimitSnapshot,
    },
    /// `x-models-etag`.
    ModelsEtag {
        /// The etag.
        etag: String,
    },
}

/// Token counts of one response or a running total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    /// Input tokens.
    #[serde(default)]
    pub input_tokens: i64,
    /// Input tokens served from the cache.
    #[serde(default)]
    pub cached_input_tokens: i64,
    /// Output tokens.
    #[serde(default)]
    pub output_tokens: i64,
    /// Output tokens spent on reasoning.
    #[serde(default)]
    pub reasoning_output_tokens: i64,
    /// Total tokens.
    #[serde(default)]
    pub total_tokens: i64,
}

impl TokenUsage {
    /// Usage that only has a total.
    pub fn with_total(total_tokens: i64) -> Self {
        Self { total_tokens, ..Self::default() }
    }

    fn saturating_add(&self, other: &TokenUsage) -> TokenUsage {
        TokenUsage {
            input_tokens: self.input_tokens.saturating_add(other.input_tokens),
            cached_input_tokens: self.cached_input_tokens.saturating_add(other.cached_input_tokens),
            output_tokens: self.output_tokens.saturating_add(other.output_tokens),
            reasoning_output_tokens: self
                .reasoning_output_tokens
                .saturating_add(other.reasoning_output_tokens),
            total_tokens: self.total_tokens.saturating_add(other.total_tokens),
        }
    }
}

/// The `usage` object of a response as the wire carries it (D44).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseUsage {
    /// Input tokens.
    #[serde(default)]
    pub input_tokens: i64,
    /// Input details; `null` or absent counts as zeros.
    #[serde(default)]
    pub input_tokens_details: Option<InputTokensDetails>,
    /// Output tokens.
    #[serde(default)]
    pub output_tokens: i64,
    /// Output details; `null` or absent counts as zeros.
    #[serde(default)]
    pub output_tokens_details: Option<OutputTokensDetails>,
    /// Total tokens.
    #[serde(default)]
    pub total_tokens: i64,
}

/// `usage.input_tokens_details`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputTokensDetails {
    /// Tokens read from the prompt cache.
    #[serde(default)]
    pub cached_tokens: i64,
    /// Tokens written to the prompt cache; some peers omit it.
    #[serde(default)]
    pub cache_write_tokens: i64,
}

/// `usage.output_tokens_details`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputTokensDetails {
    /// Tokens spent on reasoning.
    #[serde(default)]
    pub reasoning_tokens: i64,
}

impl From<ResponseUsage> for TokenUsage {
    fn from(usage: ResponseUsage) -> Self {
        TokenUsage {
            input_tokens: usage.input_tokens,
            cached_input_tokens: usage.input_tokens_details.map_or(0, |d| d.cached_tokens),
            output_tokens: usage.output_tokens,
            reasoning_output_tokens: usage.output_tokens_details.map_or(0, |d| d.reasoning_tokens),
            total_tokens: usage.total_tokens,
        }
    }
}

impl From<TokenUsage> for ResponseUsage {
    fn from(usage: TokenUsage) -> Self {
        ResponseUsage {
            input_tokens: usage.input_tokens,
            input_tokens_details: Some(InputTokensDetails {
                cached_tokens: usage.cached_input_tokens,
                cache_write_tokens: 0,
            }),
            output_tokens: usage.output_tokens,
            output_tokens_details: Some(OutputTokensDetails {
                reasoning_tokens: usage.reasoning_output_tokens,
            }),
            total_tokens: usage.total_tokens,
        }
    }
}

/// The session's token accounting: the running total, the last response, and the window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsageInfo {
    /// Sum over all responses.
    pub total_token_usage: TokenUsage,
    /// The last response's usage, or the estimate after a compaction.
    pub last_token_usage: TokenUsage,
    /// The model's usable context window, when known.
    #[serde(default)]
    pub model_context_window: Option<i64>,
    /// How many more tokens the context may take before the next check compacts it: the
    /// auto-compact limit minus the session's estimate, never below 0 (D126).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_until_compaction: Option<i64>,
    /// The counter behind the session's estimates (D120).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_counter: Option<TokenCounter>,
    /// How far the session's estimates can be trusted (D123).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<TokenCountAccuracy>,
    /// The session's estimate of the input of the request `last_token_usage` answers, made
    /// before it was sent, as the usage gate computes it (D126).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_input_tokens: Option<i64>,
    /// What the reported usage taught the session so far; restored on resume (D123).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<TokenCalibration>,
}

impl TokenUsageInfo {
    /// Adds `last` to the running total and makes it the last usage.
    pub fn append_last_usage(&mut self, last: &TokenUsage) {
        self.total_token_usage = self.total_token_usage.saturating_add(last);
        self.last_token_usage = *last;
    }

    /// Marks the window as full: the total becomes `window` and the last usage whatever was
    /// missing to reach it (never negative).
    pub fn fill_to_context_window(&mut self, context_window: i64) {
        let previous_total = self.total_token_usage.total_tokens;
        let delta = context_window.saturating_sub(previous_total).max(0);
        self.model_context_window = Some(context_window);
        self.total_token_usage = TokenUsage::with_total(context_window);
        self.last_token_usage = TokenUsage::with_total(delta);
    }

    /// A fresh info that is already full.
    pub fn full_context_window(context_window: i64) -> Self {
        let mut info = Self::default();
        info.fill_to_context_window(context_window);
        info
    }
}

/// Rate limits reported by the server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RateLimitSnapshot {
    /// The short window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<RateLimitWindow>,
    /// The long window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secondary: Option<RateLimitWindow>,
}

/// One rate-limit window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RateLimitWindow {
    /// Share of the window used, 0-100.
    pub used_percent: f64,
    /// The window's length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_minutes: Option<i64>,
    /// When it resets, unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resets_at: Option<i64>,
}

#[cfg(test)]
mod tests;
