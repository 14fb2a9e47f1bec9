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
    ];
    for (error, expected) in cases {
        assert_eq!(CliError::from(error.clone()).exit, expected, "{error}");
    }
}
