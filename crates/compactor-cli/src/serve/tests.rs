//! Tests of the `serve` flags.

use pretty_assertions::assert_eq;

use super::*;

#[track_caller]
fn check(flags: &[&str], expected: &[(&str, Option<u64>)]) {
    let args: Vec<WindowArg> = flags.iter().map(|flag| flag.parse().unwrap()).collect();
    let windows = context_windows(&args);
    for (model, tokens) in expected {
        assert_eq!(windows.window(model), *tokens, "{flags:?}: {model}");
    }
}

#[test]
fn windows_for_every_model_and_for_one() {
    check(&[], &[("gpt-5", None)]);
    check(&["16000"], &[("gpt-5", Some(16_000)), ("other", Some(16_000))]);
    check(&["gpt-5=272_000"], &[("gpt-5", Some(272_000)), ("other", None)]);
    check(
        &["gpt-5=1000", "8000", "gpt-5=2000", "org/model=3000"],
        &[("gpt-5", Some(2_000)), ("other", Some(8_000)), ("org/model", Some(3_000))],
    );
}

#[test]
fn bad_windows_are_refused() {
    for (flag, error) in [
        ("lots", "\"lots\" is not a number of tokens"),
        ("=100", "the model before `=` is empty"),
        ("0", "a window of 0 tokens refuses everything"),
        ("m=-5", "\"-5\" is not a number of tokens"),
    ] {
        assert_eq!(flag.parse::<WindowArg>().unwrap_err(), error, "{flag}");
    }
}
