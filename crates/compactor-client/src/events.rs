//! Maps raw server events to [`ResponseEvent`]s and failures (D44), for both transports.

use std::time::Duration;

use compactor_protocol::{
    CompactorError, RateLimitSnapshot, RateLimitWindow, ResponseEvent, ResponseUsage,
    StreamEventPayload,
};
use serde_json::Value;

/// What one server event means to a stream.
#[derive(Debug)]
pub(crate) enum Mapped {
    /// Forward it.
    Event(ResponseEvent),
    /// Forward it; the response is complete.
    Completed(ResponseEvent),
    /// `response.failed` (or an `error` event): over SSE it is remembered and reported when the
    /// stream ends; over WebSocket it ends the stream at once.
    Failure(CompactorError),
    /// A terminal error (`response.incomplete`, an unreadable `response.completed`).
    Error(CompactorError),
    /// Nothing Compactor uses.
    Ignored,
}

/// Parses one event payload; `None` for bytes that are not an event object (skipped, D44).
pub(crate) fn parse_payload(data: &[u8]) -> Option<StreamEventPayload> {
    if data == b"[DONE]" {
        return None;
    }
    match serde_json::from_slice(data) {
        Ok(payload) => Some(payload),
        Err(err) => {
            tracing::debug!(error = %err, bytes = data.len(), "skipping unparsable stream event");
            None
        }
    }
}

/// Turns payloads into events, remembering the model the server reported.
#[derive(Debug, Default)]
pub(crate) struct EventMapper {
    last_model: Option<String>,
}

impl EventMapper {
    /// A `ServerModel` event when this payload reports a model different from the last one.
    pub(crate) fn server_model(&mut self, payload: &StreamEventPayload) -> Option<ResponseEvent> {
        let headers = payload
            .response
            .as_ref()
            .and_then(|response| response.get("headers"))
            .or(payload.headers.as_ref())?;
        let model = headers
            .get("openai-model")
            .or_else(|| headers.get("x-openai-model"))
            .and_then(Value::as_str)?;
        self.model_changed(model)
    }

    /// The events of a response's HTTP headers (or a WebSocket handshake's):
    /// `openai-model` -> `ServerModel`, `x-models-etag` -> `ModelsEtag`, `x-reasoning-included`
    /// -> `ServerReasoningIncluded`.
    pub(crate) fn header_events(&mut self, headers: &http::HeaderMap) -> Vec<ResponseEvent> {
        let text =
            |name: &str| headers.get(name).and_then(|value| value.to_str().ok()).map(str::trim);
        let mut events = Vec::new();
        if let Some(event) = text("openai-model")
            .or_else(|| text("x-openai-model"))
            .filter(|model| !model.is_empty())
            .and_then(|model| self.model_changed(model))
        {
            events.push(event);
        }
        if let Some(etag) = text("x-models-etag").filter(|etag| !etag.is_empty()) {
            events.push(ResponseEvent::ModelsEtag { etag: etag.to_owned() });
        }
        if text("x-reasoning-included").is_some() {
            events.push(ResponseEvent::ServerReasoningIncluded { included: true });
        }
        if let Some(snapshot) = rate_limits_from_headers(headers) {
            events.push(ResponseEvent::RateLimits { snapshot });
        }
        events
    }

    fn model_changed(&mut self, model: &str) -> Option<ResponseEvent> {
        if self.last_model.as_deref() == Some(model) {
            return None;
        }
        self.last_model = Some(model.to_owned());
        Some(ResponseEvent::ServerModel { model: model.to_owned() })
    }
}

/// The rate limits of a response's headers: for each of the `primary` and
/// `secondary` windows, `x-codex-{window}-used-percent`, `-window-minutes` and `-reset-at` (unix
/// seconds). A window without a readable used percentage is absent; `None` without any window.
pub(crate) fn rate_limits_from_headers(headers: &http::HeaderMap) -> Option<RateLimitSnapshot> {
    let window = |name: &str| {
        let text = |field: &str| {
            headers
                .get(format!("x-codex-{name}-{field}"))
                .and_then(|value| value.to_str().ok())
                .map(str::trim)
        };
        let used_percent = text("used-percent")?.parse::<f64>().ok().filter(|p| p.is_finite())?;
        Some(RateLimitWindow {
            used_percent,
            window_minutes: text("window-minutes").and_then(|minutes| minutes.parse().ok()),
            resets_at: text("reset-at").and_then(|at| at.parse().ok()),
        })
    };
    snapshot(window("primary"), window("secondary"))
}

/// The rate limits of a `codex.rate_limits` event's `rate_limits` object: `primary` and
/// `secondary` windows of `used_percent`, `window_minutes` and `reset_at` (or `resets_at`).
fn rate_limits_from_event(rate_limits: &Value) -> Option<RateLimitSnapshot> {
    let window = |name: &str| {
        let window = rate_limits.get(name)?;
        Some(RateLimitWindow {
            used_percent: window.get("used_percent")?.as_f64()?,
            window_minutes: window.get("window_minutes").and_then(Value::as_i64),
            resets_at: window
                .get("reset_at")
                .or_else(|| window.get("resets_at"))
                .and_then(Value::as_i64),
        })
    };
    snapshot(window("primary"), window("secondary"))
}

fn snapshot(
    primary: Option<RateLimitWindow>,
    secondary: Option<RateLimitWindow>,
) -> Option<RateLimitSnapshot> {
    (primary.is_some() || secondary.is_some()).then_some(RateLimitSnapshot { primary, secondary })
}

/// Maps one payload (D44).
pub(crate) fn map_event(payload: StreamEventPayload) -> Mapped {
    let StreamEventPayload {
        kind,
        response,
        item,
        output_index,
        item_id,
        call_id,
        delta,
        content_index,
        summary_index,
        metadata,
        error,
        rate_limits,
        ..
    } = payload;
    let event = match kind.as_str() {
        "response.created" => match response {
            Some(response) => ResponseEvent::Created {
                response_id: response.get("id").and_then(Value::as_str).map(str::to_owned),
            },
            None => return Mapped::Ignored,
        },
        "response.output_item.added" => match item {
            Some(item) => ResponseEvent::OutputItemAdded { item },
            None => return Mapped::Ignored,
        },
        "response.output_item.done" => match item {
            Some(item) => ResponseEvent::OutputItemDone { item },
            None => return Mapped::Ignored,
        },
        "codex.rate_limits" => match rate_limits.as_ref().and_then(rate_limits_from_event) {
            Some(snapshot) => ResponseEvent::RateLimits { snapshot },
            None => return Mapped::Ignored,
        },
        "response.output_text.delta" => match delta {
            Some(delta) => ResponseEvent::OutputTextDelta { delta },
            None => return Mapped::Ignored,
        },
        "response.custom_tool_call_input.delta" => match (delta, item_id.or(call_id.clone())) {
            (Some(delta), Some(item_id)) => {
                ResponseEvent::ToolCallInputDelta { item_id, call_id, delta }
            }
            _ => return Mapped::Ignored,
        },
        "response.reasoning_summary_text.delta" => match (delta, summary_index) {
            (Some(delta), Some(summary_index)) => {
                ResponseEvent::ReasoningSummaryDelta { delta, summary_index }
            }
            _ => return Mapped::Ignored,
        },
        "response.reasoning_text.delta" => match (delta, content_index) {
            (Some(delta), Some(content_index)) => {
                ResponseEvent::ReasoningContentDelta { delta, content_index }
            }
            _ => return Mapped::Ignored,
        },
        "response.reasoning_summary_part.added" => match summary_index {
            Some(summary_index) => ResponseEvent::ReasoningSummaryPartAdded { summary_index },
            None => return Mapped::Ignored,
        },
        "response.compaction.compacting" => ResponseEvent::Compacting { item_id, output_index },
        "response.metadata" => match verification_recommendations(metadata.as_ref()) {
            Some(recommendations) => ResponseEvent::ModelVerifications { recommendations },
            None => return Mapped::Ignored,
        },
        "response.completed" => return completed(response),
        "response.failed" => {
            let error = response.as_ref().and_then(|response| response.get("error"));
            return Mapped::Failure(failure_from_error_object(error));
        }
        "response.incomplete" => {
            let reason = response
                .as_ref()
                .and_then(|r| r.get("incomplete_details"))
                .and_then(|d| d.get("reason"))
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            return Mapped::Error(CompactorError::stream(format!(
                "Incomplete response returned, reason: {reason}"
            )));
        }
        "error" => return Mapped::Failure(failure_from_error_object(error.as_ref())),
        other => {
            tracing::trace!(event = other, "ignoring stream event");
            return Mapped::Ignored;
        }
    };
    Mapped::Event(event)
}

fn completed(response: Option<Value>) -> Mapped {
    let Some(Value::Object(mut response)) = response else {
        return Mapped::Error(CompactorError::stream(
            "failed to parse ResponseCompleted: missing response object",
        ));
    };
    let Some(Value::String(response_id)) = response.remove("id") else {
        return Mapped::Error(CompactorError::stream(
            "failed to parse ResponseCompleted: missing response.id",
        ));
    };
    let token_usage = match response.remove("usage") {
        None | Some(Value::Null) => None,
        Some(usage) => match serde_json::from_value::<ResponseUsage>(usage) {
            Ok(usage) => Some(usage.into()),
            Err(err) => {
                return Mapped::Error(CompactorError::stream(format!(
                    "failed to parse ResponseCompleted: {err}"
                )));
            }
        },
    };
    let end_turn = response.get("end_turn").and_then(Value::as_bool);
    Mapped::Completed(ResponseEvent::Completed { response_id, token_usage, end_turn })
}

fn verification_recommendations(metadata: Option<&Value>) -> Option<Vec<String>> {
    match metadata?.get("openai_verification_recommendation")? {
        Value::String(one) => Some(vec![one.clone()]),
        Value::Array(many) => {
            Some(many.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        }
        _ => None,
    }
}

/// Maps a Responses error object (`{"code":..,"message":..}`) to an error (D44's
/// `response.failed` table).
pub(crate) fn failure_from_error_object(error: Option<&Value>) -> CompactorError {
    let code = error.and_then(|e| e.get("code")).and_then(Value::as_str).unwrap_or("");
    let message =
        error.and_then(|e| e.get("message")).and_then(Value::as_str).unwrap_or("").to_owned();
    match code {
        "context_length_exceeded" => CompactorError::ContextWindowExceeded,
        "insufficient_quota" => CompactorError::QuotaExceeded(message),
        "usage_not_included" => CompactorError::UsageNotIncluded(message),
        "cyber_policy" => CompactorError::CyberPolicy(if message.trim().is_empty() {
            "the request was flagged by the safety policy".to_owned()
        } else {
            message
        }),
        "invalid_prompt" => CompactorError::InvalidRequest(message),
        "server_is_overloaded" | "slow_down" => CompactorError::ServerOverloaded,
        _ => {
            let retry_after = match code {
                "rate_limit_exceeded" => parse_retry_delay(&message),
                _ => None,
            };
            CompactorError::ResponseStreamFailed {
                code: if code.is_empty() { "unknown".to_owned() } else { code.to_owned() },
                message: if message.is_empty() {
                    "the server reported a failure without details".to_owned()
                } else {
                    message
                },
                retry_after,
            }
        }
    }
}

/// The delay in `... try again in 11.054s` / `in 250ms` / `in 3 seconds` (case-insensitive).
pub(crate) fn parse_retry_delay(message: &str) -> Option<Duration> {
    const NEEDLE: &str = "try again in";
    let lower = message.to_ascii_lowercase();
    let at = lower.find(NEEDLE)? + NEEDLE.len();
    let rest = lower[at..].trim_start();
    let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
    let value: f64 = rest[..number_len].parse().ok()?;
    let unit = rest[number_len..].trim_start();
    let seconds = if unit.starts_with("ms") || unit.starts_with("millisecond") {
        value / 1000.0
    } else if unit.starts_with('s') {
        value
    } else {
        return None;
    };
    Duration::try_from_secs_f64(seconds).ok()
}

#[cfg(test)]
mod tests;
