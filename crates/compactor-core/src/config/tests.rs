//! Tests of the model limits (D6).

use pretty_assertions::assert_eq;

use super::*;

#[test]
fn auto_compact_limit() {
    let cases = [
        (Some(400_000), None, 360_000),
        (Some(400_000), Some(100_000), 100_000),
        (Some(100_000), Some(500_000), 90_000),
        (None, Some(50_000), 50_000),
        (None, None, i64::MAX),
    ];
    for (window, limit, expected) in cases {
        let model = ModelInfo {
            context_window: window,
            auto_compact_token_limit: limit,
            ..ModelInfo::new("m", 0)
        };
        assert_eq!(model.auto_compact_limit(), expected, "{window:?} {limit:?}");
    }
}

#[test]
fn usable_window_is_95_percent() {
    assert_eq!(ModelInfo::new("m", 400_000).model_context_window(), Some(380_000));
    let unknown = ModelInfo { context_window: None, ..ModelInfo::new("m", 0) };
    assert_eq!(unknown.model_context_window(), None);
}
