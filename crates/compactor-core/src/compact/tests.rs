//! Tests of which failure a chain reports when every attempt fails.

use compactor_protocol::{CompactionImplementation, CompactorError};
use pretty_assertions::assert_eq;

use super::ChainFailures;

const V2: CompactionImplementation = CompactionImplementation::ResponsesCompactionV2;
const LOCAL: CompactionImplementation = CompactionImplementation::Responses;
const PRUNE: CompactionImplementation = CompactionImplementation::Prune;

fn nothing() -> CompactorError {
    CompactorError::NothingToCompact { implementation: "prune".to_owned() }
}

fn unreachable() -> CompactorError {
    CompactorError::ConnectionFailed("connection refused".to_owned())
}

#[test]
fn the_first_real_failure_is_reported_wherever_it_comes() {
    let mut failures = ChainFailures::default();
    failures.push(PRUNE, nothing(), false);
    failures.push(LOCAL, unreachable(), false);
    failures.push(PRUNE, CompactorError::InternalServerError, false);
    assert_eq!(failures.reported(), Some((LOCAL, unreachable())));
}

#[test]
fn a_passed_v2_refusal_and_a_no_op_are_reported_only_when_nothing_else_failed() {
    let refusal = CompactorError::InvalidRequest("unsupported".to_owned());
    let mut failures = ChainFailures::default();
    failures.push(V2, refusal.clone(), true);
    failures.push(LOCAL, unreachable(), false);
    assert_eq!(failures.reported(), Some((LOCAL, unreachable())));

    let mut failures = ChainFailures::default();
    failures.push(V2, refusal.clone(), true);
    failures.push(PRUNE, nothing(), false);
    assert_eq!(failures.reported(), Some((V2, refusal)));

    let mut failures = ChainFailures::default();
    failures.push(PRUNE, nothing(), false);
    assert_eq!(failures.reported(), Some((PRUNE, nothing())));
    assert_eq!(ChainFailures::default().reported(), None);
}

#[test]
fn a_rollout_that_cannot_be_written_is_always_reported() {
    let write = CompactorError::RolloutWrite {
        path: "rollout.jsonl".to_owned(),
        message: "no space left on device".to_owned(),
    };
    let mut failures = ChainFailures::default();
    failures.push(V2, unreachable(), false);
    failures.push(LOCAL, write.clone(), false);
    assert_eq!(failures.reported(), Some((LOCAL, write)));
}
