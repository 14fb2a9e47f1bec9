//! Tests of event mapping: every server event type and every `response.failed` code (D44).

use std::time::Duration;

use compactor_protocol::{ResponseItem, TokenUsage};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;

fn map_json(value: Value) -> Mapped {
    map_event(serde_json::from_value(value).unwrap())
}

#[track_caller]
fn event(value: Value) -> ResponseEvent {
    match map_json(value) {
        Mapped::Event(event) | Mapped::Completed(event) => event,
        other => panic!("not an event: {other:?}"),
    }
}

#[track_caller]
fn ignored(value: &Value) {
    assert!(matches!(map_json(value.clone()), Mapped::Ignored), "{value}");
}

#[test]
fn event_table() {
    let item = json!({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hi"}]});
    assert_eq!(
        event(json!({"type": "response.created", "response": {"id": "resp-1"}})),
        ResponseEvent::Created { response_id: Some("resp-1".into()) }
    );
    assert_eq!(
        event(json!({"type": "response.output_item.added", "item": item})),
        ResponseEvent::OutputItemAdded { item: ResponseItem::assistant_text("hi") }
    );
    assert_eq!(
        event(json!({"type": "response.output_item.done", "item": item})),
        ResponseEvent::OutputItemDone { item: ResponseItem::assistant_text("hi") }
    );
    assert_eq!(
        event(json!({"type": "response.output_text.delta", "delta": "he", "logprobs": []})),
        ResponseEvent::OutputTextDelta { delta: "he".into() }
    );
    assert_eq!(
        event(
            json!({"type": "response.custom_tool_call_input.delta", "item_id": "ct_1", "delta": "*** "})
        ),
        ResponseEvent::ToolCallInputDelta {
            item_id: "ct_1".into(),
            call_id: None,
            delta: "*** ".into()
        }
    );
    assert_eq!(
        event(
            json!({"type": "response.custom_tool_call_input.delta", "call_id": "call_1", "delta": "x"})
        ),
        ResponseEvent::ToolCallInputDelta {
            item_id: "call_1".into(),
            call_id: Some("call_1".into()),
            delta: "x".into()
        }
    );
    assert_eq!(
        event(
            json!({"type": "response.reasoning_summary_text.delta", "delta": "d", "summary_index": 1})
        ),
        ResponseEvent::ReasoningSummaryDelta { delta: "d".into(), summary_index: 1 }
    );
    assert_eq!(
        event(json!({"type": "response.reasoning_text.delta", "delta": "r", "content_index": 2})),
        ResponseEvent::ReasoningContentDelta { delta: "r".into(), content_index: 2 }
    );
    assert_eq!(
        event(json!({"type": "response.reasoning_summary_part.added", "summary_index": 0})),
        ResponseEvent::ReasoningSummaryPartAdded { summary_index: 0 }
    );
    assert_eq!(
        event(
            json!({"type": "response.metadata", "metadata": {"openai_verification_recommendation": ["verify"]}})
        ),
        ResponseEvent::ModelVerifications { recommendations: vec!["verify".into()] }
    );
    assert_eq!(
        event(
            json!({"type": "response.compaction.compacting", "item_id": "cmp_1", "output_index": 0})
        ),
        ResponseEvent::Compacting { item_id: Some("cmp_1".into()), output_index: Some(0) }
    );
    assert_eq!(
        event(json!({"type": "response.completed", "response": {
            "id": "resp-1", "end_turn": false,
            "usage": {"input_tokens": 5, "input_tokens_details": null, "output_tokens": 2, "output_tokens_details": null, "total_tokens": 7}
        }})),
        ResponseEvent::Completed {
            response_id: "resp-1".into(),
            token_usage: Some(TokenUsage {
                input_tokens: 5,
                output_tokens: 2,
                total_tokens: 7,
                ..TokenUsage::default()
            }),
            end_turn: Some(false),
        }
    );
    assert_eq!(
        event(json!({"type": "response.completed", "response": {"id": "resp-2"}})),
        ResponseEvent::Completed {
            response_id: "resp-2".into(),
            token_usage: None,
            end_turn: None
        }
    );
}

#[test]
fn events_missing_required_fields_are_ignored() {
    for value in [
        json!({"type": "response.created"}),
        json!({"type": "response.output_item.done"}),
        json!({"type": "response.output_text.delta"}),
        json!({"type": "response.custom_tool_call_input.delta", "delta": "x"}),
        json!({"type": "response.reasoning_summary_text.delta", "delta": "x"}),
        json!({"type": "response.reasoning_text.delta", "delta": "x"}),
        json!({"type": "response.reasoning_summary_part.added"}),
        json!({"type": "response.metadata", "metadata": {}}),
        json!({"type": "response.in_progress", "response": {"id": "r"}}),
        json!({"type": "response.content_part.added"}),
        json!({"type": "some.future.event", "whatever": [1]}),
    ] {
        ignored(&value);
    }
}

#[test]
fn completed_without_id_is_an_error() {
    for value in [
        json!({"type": "response.completed"}),
        json!({"type": "response.completed", "response": {"usage": {}}}),
    ] {
        match map_json(value) {
            Mapped::Error(CompactorError::Stream { message, .. }) => {
                assert!(message.starts_with("failed to parse ResponseCompleted"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn incomplete_names_its_reason() {
    let reasons = [
        (
            json!({"type": "response.incomplete", "response": {"incomplete_details": {"reason": "max_output_tokens"}}}),
            "max_output_tokens",
        ),
        (json!({"type": "response.incomplete", "response": {}}), "unknown"),
    ];
    for (value, reason) in reasons {
        match map_json(value) {
            Mapped::Error(error) => assert_eq!(
                error,
                CompactorError::stream(format!("Incomplete response returned, reason: {reason}"))
            ),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn failed_code_table() {
    let failed = |code: &str, message: &str| match map_json(
        json!({"type": "response.failed", "response": {"id": "r", "error": {"code": code, "message": message}}}),
    ) {
        Mapped::Failure(error) => error,
        other => panic!("{other:?}"),
    };
    let cases = [
        (
            failed("context_length_exceeded", "Your input exceeds the context window.\nTry less."),
            CompactorError::ContextWindowExceeded,
        ),
        (
            failed("insufficient_quota", "no money"),
            CompactorError::QuotaExceeded("no money".into()),
        ),
        (failed("usage_not_included", "plan"), CompactorError::UsageNotIncluded("plan".into())),
        (failed("cyber_policy", "flagged"), CompactorError::CyberPolicy("flagged".into())),
        (
            failed("cyber_policy", "  "),
            CompactorError::CyberPolicy("the request was flagged by the safety policy".into()),
        ),
        (
            failed("invalid_prompt", "bad prompt"),
            CompactorError::InvalidRequest("bad prompt".into()),
        ),
        (failed("server_is_overloaded", "busy"), CompactorError::ServerOverloaded),
        (failed("slow_down", "busy"), CompactorError::ServerOverloaded),
        (
            failed("rate_limit_exceeded", "Rate limit reached. Please try again in 11.054s."),
            CompactorError::ResponseStreamFailed {
                code: "rate_limit_exceeded".into(),
                message: "Rate limit reached. Please try again in 11.054s.".into(),
                retry_after: Some(Duration::from_millis(11_054)),
            },
        ),
        (
            failed("server_error", "oops"),
            CompactorError::ResponseStreamFailed {
                code: "server_error".into(),
                message: "oops".into(),
                retry_after: None,
            },
        ),
    ];
    for (got, expected) in cases {
        assert_eq!(got, expected);
    }
    assert!(!failed("context_length_exceeded", "x").is_retryable());
    assert!(failed("server_error", "x").is_retryable());
}

#[test]
fn retry_delay_parsing() {
    let cases = [
        ("Please try again in 11.054s.", Some(Duration::from_millis(11_054))),
        ("try again in 250ms", Some(Duration::from_millis(250))),
        ("Try Again In 3 seconds", Some(Duration::from_secs(3))),
        ("Rate limit. Please try again in 1.5 s", Some(Duration::from_millis(1500))),
        ("try again later", None),
        ("try again in soon", None),
        ("", None),
    ];
    for (message, expected) in cases {
        assert_eq!(parse_retry_delay(message), expected, "{message}");
    }
}

#[test]
fn server_model_is_reported_on_change_only() {
    let mut mapper = EventMapper::default();
    let payload = |model: &str| {
        serde_json::from_value::<StreamEventPayload>(json!({"type": "response.created", "response": {"id": "r", "headers": {"openai-model": model}}})).unwrap()
    };
    assert_eq!(
        mapper.server_model(&payload("m1")),
        Some(ResponseEvent::ServerModel { model: "m1".into() })
    );
    assert_eq!(mapper.server_model(&payload("m1")), None);
    assert_eq!(
        mapper.server_model(&payload("m2")),
        Some(ResponseEvent::ServerModel { model: "m2".into() })
    );
}

#[test]
fn done_sentinel_and_garbage_are_skipped() {
    assert!(parse_payload(b"[DONE]").is_none());
    assert!(parse_payload(b"{not json").is_none());
    assert!(parse_payload(b"{\"no_type\":1}").is_none());
}

#[test]
fn rate_limit_headers_become_a_snapshot() {
    let mut headers = http::HeaderMap::new();
    for (name, value) in [
        ("x-codex-primary-used-percent", "12.5"),
        ("x-codex-primary-window-minutes", "300"),
        ("x-codex-primary-reset-at", "1700009000"),
        ("x-codex-secondary-used-percent", " 73 "),
        ("x-codex-secondary-window-minutes", "10080"),
    ] {
        headers.insert(name, value.parse().unwrap());
    }
    let events = EventMapper::default().header_events(&headers);
    assert_eq!(
        events,
        [ResponseEvent::RateLimits {
            snapshot: RateLimitSnapshot {
                primary: Some(RateLimitWindow {
                    used_percent: 12.5,
                    window_minutes: Some(300),
                    resets_at: Some(1_700_009_000),
                }),
                secondary: Some(RateLimitWindow {
                    used_percent: 73.0,
                    window_minutes: Some(10080),
                    resets_at: None,
                }),
            },
        }]
    );

    // A window needs a readable percentage; without any window there is no event.
    let mut partial = http::HeaderMap::new();
    partial.insert("x-codex-primary-used-percent", "lots".parse().unwrap());
    partial.insert("x-codex-primary-window-minutes", "300".parse().unwrap());
    assert_eq!(EventMapper::default().header_events(&partial), []);
    assert_eq!(rate_limits_from_headers(&http::HeaderMap::new()), None);
}

#[test]
fn codex_rate_limits_event_becomes_a_snapshot() {
    let window = |used_percent, window_minutes, resets_at| RateLimitWindow {
        used_percent,
        window_minutes: Some(window_minutes),
        resets_at: Some(resets_at),
    };
    assert_eq!(
        event(json!({"type": "codex.rate_limits", "plan_type": "pro", "rate_limits": {
            "primary": {"used_percent": 40.0, "window_minutes": 300, "reset_at": 1_700_009_000},
            "secondary": {"used_percent": 5, "window_minutes": 10080, "resets_at": 1_700_600_000},
        }, "credits": {"has_credits": true}})),
        ResponseEvent::RateLimits {
            snapshot: RateLimitSnapshot {
                primary: Some(window(40.0, 300, 1_700_009_000)),
                secondary: Some(window(5.0, 10080, 1_700_600_000)),
            },
        }
    );
    ignored(&json!({"type": "codex.rate_limits"}));
    ignored(
        &json!({"type": "codex.rate_limits", "rate_limits": {"primary": {"window_minutes": 300}}}),
    );
}
