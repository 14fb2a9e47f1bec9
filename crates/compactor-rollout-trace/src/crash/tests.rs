//! Tests of crash point names and of the `COMPACTOR_CRASH_AT` syntax.

use pretty_assertions::assert_eq;

use super::*;

#[track_caller]
fn check(spec: &str, expected: Option<(CrashPoint, u64)>) {
    assert_eq!(parse_spec(spec), expected, "{spec}");
}

#[test]
fn specs() {
    check("after_memory_swap:2", Some((CrashPoint::AfterMemorySwap, 2)));
    check(" mid_line:17 ", Some((CrashPoint::MidLine, 17)));
    check("after_compacted_sync:1", Some((CrashPoint::AfterCompactedSync, 1)));
    check("after_memory_swap:0", None);
    check("after_memory_swap", None);
    check("after_memory_swap:x", None);
    check("before_anything:1", None);
    check("", None);
}

#[test]
fn names_round_trip() {
    for point in CrashPoint::ALL {
        assert_eq!(CrashPoint::from_name(point.name()), Some(point));
    }
    let mut names: Vec<&str> = CrashPoint::ALL.iter().map(|point| point.name()).collect();
    names.dedup();
    assert_eq!(names.len(), CrashPoint::ALL.len());
}

#[cfg(feature = "crash-points")]
#[test]
fn passes_are_counted_and_unarmed_points_never_abort() {
    // Tests never set the variable, so every point is unarmed here.
    let before = hits(CrashPoint::AfterResponseProcessed);
    hit(CrashPoint::AfterResponseProcessed);
    assert!(!reached(CrashPoint::AfterResponseProcessed));
    assert_eq!(hits(CrashPoint::AfterResponseProcessed), before + 2);
}
