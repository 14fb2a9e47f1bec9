//! Tests of the number and duration formats.

use std::time::Duration;

use pretty_assertions::assert_eq;

use super::*;

#[test]
fn counts() {
    let cases: [(i64, &str); 8] = [
        (0, "0"),
        (7, "7"),
        (999, "999"),
        (1000, "1,000"),
        (14_880, "14,880"),
        (1_234_567, "1,234,567"),
        (-1_500, "-1,500"),
        (i64::MAX, "9,223,372,036,854,775,807"),
    ];
    for (n, expected) in cases {
        assert_eq!(count(n), expected);
    }
}

#[test]
fn durations() {
    let cases = [
        (Duration::ZERO, "0 ms"),
        (Duration::from_micros(1500), "1 ms"),
        (Duration::from_millis(999), "999 ms"),
        (Duration::from_millis(1000), "1.0 s"),
        (Duration::from_millis(2449), "2.4 s"),
        (Duration::from_secs(75), "75.0 s"),
    ];
    for (value, expected) in cases {
        assert_eq!(duration(value), expected);
    }
}
