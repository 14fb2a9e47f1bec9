//! Tests of the UTC timestamp format and the civil-date conversion.

use std::time::{Duration, UNIX_EPOCH};

use pretty_assertions::assert_eq;
use proptest::prelude::*;

use super::*;

#[track_caller]
fn check(unix_ms: i128, expected: &str) {
    assert_eq!(format_unix_ms(unix_ms), expected, "unix_ms = {unix_ms}");
}

#[test]
fn known_instants() {
    check(0, "1970-01-01T00:00:00.000Z");
    check(1, "1970-01-01T00:00:00.001Z");
    check(86_399_999, "1970-01-01T23:59:59.999Z");
    check(-1, "1969-12-31T23:59:59.999Z");
    check(951_782_400_000, "2000-02-29T00:00:00.000Z");
    check(951_868_800_000, "2000-03-01T00:00:00.000Z");
    check(1_709_164_800_000, "2024-02-29T00:00:00.000Z");
    check(1_778_839_200_123, "2026-05-15T10:00:00.123Z");
    check(4_107_456_000_000, "2100-02-28T00:00:00.000Z");
    check(4_107_542_400_000, "2100-03-01T00:00:00.000Z");
    check(253_402_300_799_999, "9999-12-31T23:59:59.999Z");
    check(-62_135_596_800_000, "0001-01-01T00:00:00.000Z");
}

#[test]
fn system_time_is_truncated_to_milliseconds() {
    let t = UNIX_EPOCH + Duration::from_nanos(1_778_839_200_123_999_999);
    assert_eq!(format_timestamp(t), "2026-05-15T10:00:00.123Z");
    let before = UNIX_EPOCH - Duration::from_nanos(1);
    assert_eq!(format_timestamp(before), "1969-12-31T23:59:59.999Z");
}

fn is_leap(year: i128) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Days since 1970-01-01 by plain counting, independent of the formula under test.
fn naive_days(year: i128, month: i128, day: i128) -> i128 {
    const MONTH_DAYS: [i128; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let mut days = 0;
    if year >= 1970 {
        for y in 1970..year {
            days += if is_leap(y) { 366 } else { 365 };
        }
    } else {
        for y in year..1970 {
            days -= if is_leap(y) { 366 } else { 365 };
        }
    }
    for m in 1..month {
        days += MONTH_DAYS[usize::try_from(m - 1).unwrap()];
        if m == 2 && is_leap(year) {
            days += 1;
        }
    }
    days + day - 1
}

proptest! {
    #[test]
    fn civil_date_matches_plain_counting(days in -800_000i128..800_000) {
        let (year, month, day) = civil_from_days(days);
        prop_assert!((1..=12).contains(&month));
        prop_assert!((1..=31).contains(&day));
        prop_assert_eq!(naive_days(year, month, day), days);
    }

    #[test]
    fn format_has_fixed_shape(unix_ms in 0i128..253_402_300_800_000) {
        let text = format_unix_ms(unix_ms);
        prop_assert_eq!(text.len(), 24);
        prop_assert!(text.ends_with('Z'));
        prop_assert_eq!(&text[4..5], "-");
        prop_assert_eq!(&text[10..11], "T");
        prop_assert_eq!(&text[19..20], ".");
    }
}
