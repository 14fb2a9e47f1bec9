//! Tests of the content kinds: sizes, determinism, and that they differ the way real content
//! differs for a tokenizer.

use compactor_protocol::tokens::TokenCounter;

use super::*;

#[test]
fn texts_are_deterministic_and_at_least_the_size_asked() {
    for kind in ContentKind::ALL {
        for bytes in [0, 1, 500, 20_000] {
            let text = kind_text(kind, 3, bytes);
            assert!(text.len() >= bytes, "{} {bytes}", kind.name());
            assert_eq!(text, kind_text(kind, 3, bytes));
        }
        assert_ne!(kind_text(kind, 1, 5_000), kind_text(kind, 2, 5_000), "{}", kind.name());
    }
    let json: serde_json::Value =
        serde_json::from_str(&kind_text(ContentKind::Json, 9, 10_000)).unwrap();
    assert!(json.as_array().unwrap().len() > 20);
}

#[test]
fn four_bytes_per_token_misses_each_kind_its_own_way() {
    // o200k tokens per Bytes4 token: prose packs more than four bytes in a token, code and JSON
    // fewer, and the scripts of the non-English text fewer still.
    let ratio = |kind| {
        let text = kind_text(kind, 5, 50_000);
        TokenCounter::O200k.text_tokens(&text) as f64
            / TokenCounter::Bytes4.text_tokens(&text) as f64
    };
    let (prose, code, json, other) = (
        ratio(ContentKind::Prose),
        ratio(ContentKind::Code),
        ratio(ContentKind::Json),
        ratio(ContentKind::NonEnglish),
    );
    assert!(prose < 0.95, "prose {prose}");
    assert!(code > 1.05, "code {code}");
    assert!(json > 1.05, "json {json}");
    assert!((other - 1.0).abs() > 0.05, "non-english {other}");
}
