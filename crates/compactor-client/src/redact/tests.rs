//! Tests of redaction: encodings, case, truncation and the tails of cut secrets.

use pretty_assertions::assert_eq;

use super::*;

const KEY: &str = "sk-Canary-7f3b9c2e41d8";

#[track_caller]
fn check(input: &str, expected: &str) {
    let redactor = Redactor::new([KEY.to_owned()]);
    assert_eq!(redactor.redact(input), expected, "{input}");
}

fn json_escaped(text: &str) -> String {
    text.chars().map(|c| format!("\\u{:04x}", c as u32)).collect()
}

fn percent(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02x}")).collect()
}

#[test]
fn secrets_are_found_in_every_encoding() {
    check(&format!("key {KEY} is wrong"), "key <redacted> is wrong");
    check(&format!("key {} is wrong", json_escaped(KEY)), "key <redacted> is wrong");
    check(&format!("key {} is wrong", percent(KEY)), "key <redacted> is wrong");
    check(&format!("key {} is wrong", KEY.to_uppercase()), "key <redacted> is wrong");
    // Mixed: part escaped, part plain.
    check(&format!("{}{}", json_escaped(&KEY[..5]), &KEY[5..]), "<redacted>");
    // Nested: a percent-encoded JSON escape.
    let nested: String = json_escaped(KEY).replace('\\', "%5C");
    check(&format!("[{nested}]"), "[<redacted>]");
    // Twice.
    check(&format!("{KEY} and {KEY}"), "<redacted> and <redacted>");
}

#[test]
fn other_text_is_left_alone() {
    check(
        "plain text with \\n escapes and 100% of nothing",
        "plain text with \\n escapes and 100% of nothing",
    );
    check("sk-Canary is just a prefix here", "sk-Canary is just a prefix here");
    check("", "");
}

#[test]
fn a_tail_that_starts_a_secret_is_redacted() {
    check("cut at sk-Can", "cut at <redacted>");
    check("cut at sk-Canary-7f", "cut at <redacted>");
    check(&format!("cut at {}", json_escaped("sk-Canary")), "cut at <redacted>");
    // An escape cut in half goes with the tail.
    check(&format!("cut at {}\\u00", json_escaped("sk-Canary")), "cut at <redacted>");
    check(&format!("cut at {}%3", percent("sk-Canary")), "cut at <redacted>");
    // Under six characters, a tail is too common to mean anything.
    check("cut at sk-Ca", "cut at sk-Ca");
}

#[test]
fn truncation_comes_after_redaction() {
    let redactor = Redactor::new([KEY.to_owned()]);
    for at in 0..40 {
        let text = format!("{}{KEY} and more", "x".repeat(at));
        for max in 0..text.len() {
            let out = redactor.redact_truncated(&text, max);
            assert!(out.len() <= max, "{out:?} is longer than {max}");
            for len in MIN_TAIL_CHARS..=KEY.len() {
                assert!(!out.contains(&KEY[..len]), "{out:?} holds a prefix of the key");
            }
        }
    }
}

#[test]
fn errors_are_redacted_in_every_text() {
    let redactor = Redactor::new([KEY.to_owned()]);
    let error = CompactorError::ResponseStreamFailed {
        code: KEY.to_owned(),
        message: format!("bad {}", percent(KEY)),
        retry_after: None,
    };
    assert_eq!(redactor.error(error).to_string(), "response failed (<redacted>): bad <redacted>");
    let long = CompactorError::Stream { message: "y".repeat(10_000), retry_after: None };
    let CompactorError::Stream { message, .. } = redactor.error(long) else { panic!() };
    assert_eq!(message.len(), MAX_SERVER_TEXT);
}

#[test]
fn decoding_handles_odd_input() {
    let redactor = Redactor::new([KEY.to_owned()]);
    for text in [
        "\\",
        "%",
        "\\u",
        "\\ud83d",
        "\\ud83d\\u0041",
        "%ff%fe",
        "é%C3%A9\\u00e9",
        "\\uD83D\\uDE00",
    ] {
        // Never panics, and without a secret the text comes back unchanged.
        assert_eq!(redactor.redact(text), text);
    }
    assert_eq!(percent_decode("a%20b%zz%C3%A9"), "a b%zzé");
}
