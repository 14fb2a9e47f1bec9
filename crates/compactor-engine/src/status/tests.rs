//! Tests of the status mapping (D41).

use compactor_protocol::CompactionStatus;
use pretty_assertions::assert_eq;

use super::*;

#[test]
fn results_map_to_statuses() {
    let cases: Vec<(Result<(), CompactorError>, CompactionStatus)> = vec![
        (Ok(()), CompactionStatus::Completed),
        (Err(CompactorError::Cancelled), CompactionStatus::Interrupted),
        (Err(CompactorError::TurnAborted { reason: "hook".into() }), CompactionStatus::Interrupted),
        (Err(CompactorError::stream("closed")), CompactionStatus::Failed),
        (Err(CompactorError::Fatal("bad".into())), CompactionStatus::Failed),
        (Err(CompactorError::ContextWindowExceeded), CompactionStatus::Failed),
    ];
    for (result, expected) in cases {
        assert_eq!(compaction_status_from_result(&result), expected, "{result:?}");
    }
}
