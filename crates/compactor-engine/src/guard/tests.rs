//! Tests of the loop guard's rule.

use pretty_assertions::assert_eq;

use super::*;

const LIMITS: WindowLimits = WindowLimits {
    auto_compact_limit: 28_800,
    usable_window: Some(30_400),
    context_window: Some(32_000),
};

#[track_caller]
fn check(
    limits: WindowLimits,
    estimate: i64,
    after: Option<i64>,
    expected: Option<CompactionNeed>,
) {
    assert_eq!(limits.compaction_need(estimate, after), expected, "{estimate} after {after:?}");
}

#[test]
fn under_the_limit_nothing_is_needed() {
    check(LIMITS, 0, None, None);
    check(LIMITS, 28_799, None, None);
    check(LIMITS, 28_799, Some(100), None);
}

#[test]
fn the_limit_compacts_when_nothing_was_compacted_or_the_context_grew_enough() {
    check(LIMITS, 28_800, None, Some(CompactionNeed::Limit));
    // Growth is measured in 10% of the whole window: 3 200 tokens.
    check(LIMITS, 30_000, Some(26_800), Some(CompactionNeed::Limit));
    check(LIMITS, 30_000, Some(26_801), None);
    check(LIMITS, 29_000, Some(8_000), Some(CompactionNeed::Limit));
}

#[test]
fn a_request_that_does_not_fit_always_compacts() {
    check(LIMITS, 30_401, Some(30_000), Some(CompactionNeed::Fit));
    check(LIMITS, 1_000_000, None, Some(CompactionNeed::Fit));
    check(LIMITS, 30_400, Some(30_000), None);
}

#[test]
fn unknown_windows_never_fail_to_fit_and_grow_by_the_limit() {
    let limits =
        WindowLimits { auto_compact_limit: 10_000, usable_window: None, context_window: None };
    check(limits, i64::MAX, Some(0), Some(CompactionNeed::Limit));
    check(limits, 11_000, Some(10_000), Some(CompactionNeed::Limit));
    check(limits, 10_999, Some(10_000), None);
    let never =
        WindowLimits { auto_compact_limit: i64::MAX, usable_window: None, context_window: None };
    check(never, i64::MAX - 1, None, None);
    assert!(never.fits(i64::MAX));
}
