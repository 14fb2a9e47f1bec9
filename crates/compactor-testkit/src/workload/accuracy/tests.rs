//! Tests of reading estimate errors back from `token_count` events.

use compactor_protocol::TokenUsage;
use pretty_assertions::assert_eq;

use super::*;

fn event(estimated: Option<i64>, reported: i64, total: i64) -> EventMsg {
    let info = TokenUsageInfo {
        last_token_usage: TokenUsage { input_tokens: reported, ..TokenUsage::default() },
        total_token_usage: TokenUsage { input_tokens: total, ..TokenUsage::default() },
        estimated_input_tokens: estimated,
        ..TokenUsageInfo::default()
    };
    EventMsg::TokenCount { info: Some(info), rate_limits: None }
}

#[test]
fn repeated_accounting_counts_once_and_events_without_an_estimate_are_skipped() {
    let events = [
        event(None, 500, 500),
        event(Some(1_000), 900, 1_400),
        // The same accounting again, as a session reports its budget while recording items.
        event(Some(1_000), 900, 1_400),
        EventMsg::Warning { message: "unrelated".into() },
        event(Some(1_800), 1_800, 3_200),
    ];
    let requests = request_estimates(&events);
    assert_eq!(
        requests,
        [
            RequestEstimate { estimated: 1_000, reported: 900 },
            RequestEstimate { estimated: 1_800, reported: 1_800 },
        ]
    );
    let summary = ErrorSummary::of(&requests);
    assert_eq!(summary.requests, 2);
    assert!((summary.mean_percent - 5.556).abs() < 0.01, "{summary:?}");
    assert!((summary.max_percent - 11.111).abs() < 0.01, "{summary:?}");
    assert_eq!(ErrorSummary::of(&[]), ErrorSummary::default());
}
