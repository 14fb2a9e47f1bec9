//! Tests of the error taxonomy: retry classification and error events.

use std::time::Duration;

use pretty_assertions::assert_eq;

use super::*;

/// One value of every variant, with whether it is retryable (D43).
fn every_variant() -> Vec<(CompactorError, bool)> {
    vec![
        (CompactorError::Cancelled, false),
        (CompactorError::TurnAborted { reason: "hook".into() }, false),
        (CompactorError::Stream { message: "eof".into(), retry_after: None }, true),
        (CompactorError::ContextWindowExceeded, false),
        (CompactorError::UnexpectedStatus { status: 502, body: "bad gateway".into() }, true),
        (CompactorError::InvalidRequest("bad".into()), false),
        (CompactorError::CyberPolicy("no".into()), false),
        (CompactorError::UsageLimitReached("limit".into()), false),
        (CompactorError::ServerOverloaded, false),
        (CompactorError::QuotaExceeded("quota".into()), false),
        (CompactorError::UsageNotIncluded("plan".into()), false),
        (CompactorError::InternalServerError, true),
        (CompactorError::RetryLimit { status: 429, message: "slow down".into() }, false),
        (CompactorError::Timeout("idle".into()), true),
        (CompactorError::ConnectionFailed("refused".into()), true),
        (
            CompactorError::ResponseStreamFailed {
                code: "rate_limit_exceeded".into(),
                message: "try again".into(),
                retry_after: Some(Duration::from_secs(1)),
            },
            true,
        ),
        (CompactorError::Fatal("broken".into()), false),
        (CompactorError::Io("disk".into()), true),
        (CompactorError::Json("eof".into()), true),
        (
            CompactorError::CompactionMadeNoProgress {
                retained_tokens: 31_000,
                limit: 28_800,
                window: 30_400,
            },
            false,
        ),
        (CompactorError::EventTooLarge { limit: 64 << 20 }, false),
        (CompactorError::CompactionDoesNotFit { tokens: 524_288, usable_window: 15_200 }, false),
        (CompactorError::Rollout("torn".into()), false),
        (
            CompactorError::RolloutWrite {
                path: "/r/rollout.jsonl".into(),
                message: "No space left on device (os error 28)".into(),
            },
            false,
        ),
        (CompactorError::RolloutInUse { path: "/r/rollout.jsonl".into(), pid: Some(42) }, false),
        (CompactorError::Config("bad".into()), false),
        (CompactorError::PinsOverBudget { pinned_tokens: 9_000, budget_tokens: 8_000 }, false),
        (CompactorError::PinNotFound { id: "pin-7".into() }, false),
        (CompactorError::NotPinnable { item_type: "function_call_output".into() }, false),
    ]
}

#[test]
fn retryability_follows_the_reference() {
    for (error, retryable) in every_variant() {
        assert_eq!(error.is_retryable(), retryable, "{error:?}");
    }
}

#[test]
fn messages_are_lowercase_without_trailing_period() {
    let mut rendered = Vec::new();
    for (error, _) in every_variant() {
        let message = error.to_string();
        assert!(!message.ends_with('.'), "{message}");
        assert!(!message.starts_with(char::is_uppercase), "{message}");
        rendered.push(format!("{message} | {}", serde_json::to_string(&error.info()).unwrap()));
    }
    insta::assert_snapshot!(rendered.join("\n"));
}

#[test]
fn error_event_is_prefixed() {
    let error = CompactorError::Fatal(
        "remote compaction v2 returned context_compaction without encrypted_content".into(),
    );
    let event = error.to_error_event("Error running remote compact task");
    assert_eq!(
        event.message,
        "Error running remote compact task: remote compaction v2 returned context_compaction without encrypted_content"
    );
    assert_eq!(event.compactor_error_info, Some(CompactorErrorInfo::Other));
    let bare = CompactorError::ContextWindowExceeded.to_unprefixed_error_event();
    assert_eq!(bare.message, CompactorError::ContextWindowExceeded.to_string());
    assert_eq!(bare.compactor_error_info, Some(CompactorErrorInfo::ContextWindowExceeded));
}

#[test]
fn retry_after_and_interruption() {
    let delayed = CompactorError::Stream {
        message: "429".into(),
        retry_after: Some(Duration::from_millis(1500)),
    };
    assert_eq!(delayed.retry_after(), Some(Duration::from_millis(1500)));
    assert_eq!(CompactorError::InternalServerError.retry_after(), None);
    assert!(CompactorError::Cancelled.is_interruption());
    assert!(CompactorError::TurnAborted { reason: "x".into() }.is_interruption());
    assert!(!CompactorError::InternalServerError.is_interruption());
}

#[test]
fn error_info_json() {
    let infos = [
        CompactorErrorInfo::ContextWindowExceeded,
        CompactorErrorInfo::ResponseStreamDisconnected { http_status_code: Some(502) },
        CompactorErrorInfo::Other,
    ];
    insta::assert_snapshot!(serde_json::to_string(&infos).unwrap());
}
