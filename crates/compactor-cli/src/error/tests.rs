//! Tests of the exit codes.

use compactor_protocol::CompactorError;
use pretty_assertions::assert_eq;

use super::*;

#[test]
fn exit_codes_are_distinct_and_documented() {
    let all = [
        Exit::Failure,
        Exit::MissingFile,
        Exit::BadRollout,
        Exit::Unreachable,
        Exit::KeyUnset,
        Exit::BadConfig,
        Exit::RolloutWrite,
        Exit::RolloutInUse,
        Exit::DoesNotFit,
        Exit::PinsOverBudget,
        Exit::Interrupted,
    ];
    let mut codes: Vec<u8> = all.iter().map(|exit| exit.code()).collect();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), all.len());
    for exit in all {
        assert!(EXIT_CODES_HELP.contains(&format!("\n  {}  ", exit.code())), "{exit:?}");
    }
    assert!(!codes.contains(&0) && !codes.contains(&2), "0 is success, 2 is clap's usage error");
    assert_eq!(Exit::RolloutWrite.code(), 8);
    assert_eq!(Exit::RolloutInUse.code(), 9);
    assert_eq!(Exit::Usage.code(), 2, "a usage error clap cannot see exits as clap's do");
    assert_eq!(Exit::DoesNotFit.code(), 10);
    assert_eq!(Exit::PinsOverBudget.code(), 11);
}

#[test]
fn session_errors_classify() {
    let cases = [
        (CompactorError::ConnectionFailed("refused".into()), Exit::Unreachable),
        (CompactorError::Timeout("websocket connect timed out".into()), Exit::Unreachable),
        (CompactorError::Timeout("idle timeout".into()), Exit::Failure),
        (CompactorError::InternalServerError, Exit::Failure),
        (CompactorError::Config("x".into()), Exit::Failure),
        (CompactorError::Cancelled, Exit::Interrupted),
        (CompactorError::Rollout("torn".into()), Exit::Failure),
        (
            CompactorError::RolloutWrite {
                path: "/r/rollout.jsonl".into(),
                message: "No space left on device (os error 28)".into(),
            },
            Exit::RolloutWrite,
        ),
        (
            CompactorError::RolloutWrite {
                path: "/r/rollout.jsonl".into(),
                message: "File too large (os error 27)".into(),
            },
            Exit::RolloutWrite,
        ),
        (
            CompactorError::RolloutInUse { path: "/r/rollout.jsonl".into(), pid: Some(7) },
            Exit::RolloutInUse,
        ),
        (CompactorError::CompactionDoesNotFit { tokens: 1, usable_window: 0 }, Exit::DoesNotFit),
        (CompactorError::EventTooLarge { limit: 1 }, Exit::Failure),
        (
            CompactorError::PinsOverBudget { pinned_tokens: 9, budget_tokens: 8 },
            Exit::PinsOverBudget,
        ),
        (CompactorError::PinNotFound { id: "pin-3".into() }, Exit::Usage),
        (CompactorError::NotPinnable { item_type: "reasoning".into() }, Exit::Usage),
    ];
    for (error, expected) in cases {
        assert_eq!(CliError::from(error.clone()).exit, expected, "{error}");
    }
}
