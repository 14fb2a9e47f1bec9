//! Table tests of [`TokenCounter`], [`TokenCountAccuracy`] and [`TokenCalibration`].

use pretty_assertions::assert_eq;
use serde_json::json;

use super::*;
use crate::items::{ContentItem, ToolOutput};
use crate::tokens::{IMAGE_ESTIMATE_BYTES, estimate_history_tokens};

fn items() -> Vec<ResponseItem> {
    vec![
        ResponseItem::user_text("Когда окно контекста почти заполнено, история сжимается."),
        ResponseItem::assistant_text("fn main() {\n    println!(\"{}\", 1 + 2);\n}\n"),
        ResponseItem::FunctionCall {
            id: Some("fc_1".into()),
            name: "shell".into(),
            namespace: None,
            arguments: r#"{"command":["bash","-lc","cargo test -p x"],"timeout_ms":120000}"#.into(),
            call_id: "call_1".into(),
        },
        ResponseItem::FunctionCallOutput {
            call_id: "call_1".into(),
            output: ToolOutput::Text("test result: ok. 42 passed; 0 failed\n".repeat(3)),
        },
    ]
}

#[test]
fn bytes4_is_the_reference_heuristic() {
    let items = items();
    for item in &items {
        assert_eq!(TokenCounter::Bytes4.item_tokens(item), estimate_item_tokens(item));
        assert_eq!(
            TokenCounter::Bytes4.json_tokens(item),
            approx_tokens_from_byte_count(crate::tokens::json_len(item))
        );
    }
    assert_eq!(
        TokenCounter::Bytes4.history_tokens("be brief", &items),
        estimate_history_tokens("be brief", &items)
    );
    assert_eq!(TokenCounter::Bytes4.text_tokens("abcde"), 2);
}

#[cfg(feature = "o200k")]
/// The O200k rule, computed independently from the item's JSON value: every string value's
/// contents by the tokenizer, the rest of the JSON at four bytes per token.
fn o200k_by_value(item: &ResponseItem) -> u64 {
    use serde_json::Value;

    fn strings(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::String(text) => out.push(text.clone()),
            Value::Array(values) => values.iter().for_each(|value| strings(value, out)),
            Value::Object(map) => map.values().for_each(|value| strings(value, out)),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
    let value = serde_json::to_value(item).unwrap();
    let mut texts = Vec::new();
    strings(&value, &mut texts);
    let json = serde_json::to_string(&value).unwrap().len() as u64;
    let escaped: u64 =
        texts.iter().map(|text| serde_json::to_string(text).unwrap().len() as u64).sum();
    let structure = json - escaped + 2 * texts.len() as u64;
    let text: u64 = texts.iter().map(|text| TokenCounter::O200k.text_tokens(text)).sum();
    text + structure.div_ceil(4)
}

#[cfg(feature = "o200k")]
#[test]
fn o200k_counts_text_with_the_tokenizer_and_structure_as_bytes() {
    for item in items() {
        assert_eq!(TokenCounter::O200k.item_tokens(&item), o200k_by_value(&item), "{item:?}");
        assert_eq!(TokenCounter::O200k.json_tokens(&item), o200k_by_value(&item));
    }
    let russian = &items()[0];
    assert!(TokenCounter::O200k.item_tokens(russian) < TokenCounter::Bytes4.item_tokens(russian));
    assert!(TokenCounter::O200k.is_available());
    assert!(TokenCounter::O200k.is_exact());
    assert_eq!(
        TokenCounter::O200k.history_tokens("be brief", &items()),
        TokenCounter::O200k.text_tokens("be brief")
            + items().iter().map(|item| TokenCounter::O200k.item_tokens(item)).sum::<u64>()
    );
}

#[cfg(not(feature = "o200k"))]
#[test]
fn o200k_without_the_feature_counts_as_bytes4() {
    assert!(!TokenCounter::O200k.is_available());
    assert_eq!(TokenCounter::O200k.effective(), TokenCounter::Bytes4);
    for item in items() {
        assert_eq!(TokenCounter::O200k.item_tokens(&item), estimate_item_tokens(&item));
    }
}

#[test]
fn encrypted_payloads_count_alike_with_both_counters() {
    let blob = "A".repeat(4000);
    let unknown: ResponseItem =
        serde_json::from_value(json!({"type": "ghost_snapshot", "ghost_commit": {"id": "g1"}}))
            .unwrap();
    for (item, tokens) in [
        (
            ResponseItem::Reasoning {
                id: None,
                summary: vec![],
                content: None,
                encrypted_content: Some(blob.clone()),
            },
            588,
        ),
        (
            ResponseItem::Compaction {
                id: None,
                encrypted_content: blob.clone(),
                created_by: None,
            },
            588,
        ),
        (ResponseItem::ContextCompaction { id: None, encrypted_content: Some(blob) }, 588),
    ] {
        for counter in TokenCounter::ALL {
            assert_eq!(counter.item_tokens(&item), tokens, "{counter} {item:?}");
        }
    }
    // An unknown item counts its raw JSON (D67).
    let json = serde_json::to_string(&unknown).unwrap().len() as u64;
    assert_eq!(TokenCounter::Bytes4.item_tokens(&unknown), json.div_ceil(4));
    assert!(TokenCounter::O200k.item_tokens(&unknown) > 0);
}

#[test]
fn inline_images_count_the_image_estimate_with_both_counters() {
    let message = |payload: &str| ResponseItem::Message {
        id: None,
        role: "user".into(),
        content: vec![
            ContentItem::InputText { text: "look".into() },
            ContentItem::InputImage {
                image_url: format!("data:image/png;base64,{payload}"),
                detail: None,
            },
        ],
        phase: None,
        extra: Default::default(),
    };
    let large = message(&"B".repeat(100_000));
    let small = message("AAAA");
    let text_only = ResponseItem::user_text("look");
    for counter in TokenCounter::ALL {
        // The payload's size does not count, give or take the rounding of one division...
        let (large, small) = (counter.item_tokens(&large), counter.item_tokens(&small));
        assert!(large.abs_diff(small) <= 1, "{counter}: {large} vs {small}");
        // ...the image estimate does.
        let text = counter.item_tokens(&text_only);
        assert!(large >= text + IMAGE_ESTIMATE_BYTES / 4, "{counter}: {large} vs {text}");
        assert!(large <= text + IMAGE_ESTIMATE_BYTES / 4 + 20, "{counter}: {large} vs {text}");
    }
}

#[test]
fn names_parse_display_and_serialize_alike() {
    for counter in TokenCounter::ALL {
        assert_eq!(counter.name().parse::<TokenCounter>(), Ok(counter));
        assert_eq!(counter.to_string(), counter.name());
        assert_eq!(serde_json::to_value(counter).unwrap(), json!(counter.name()));
    }
    assert_eq!(" O200K ".parse::<TokenCounter>(), Ok(TokenCounter::O200k));
    assert_eq!(
        "cl100k".parse::<TokenCounter>().unwrap_err().to_string(),
        "unknown token counter `cl100k` (expected bytes4 or o200k)"
    );
    assert_eq!(TokenCounter::default(), TokenCounter::Bytes4);
    for (accuracy, name) in [
        (TokenCountAccuracy::Exact, "exact"),
        (TokenCountAccuracy::Estimated, "estimated"),
        (TokenCountAccuracy::Calibrated, "calibrated"),
    ] {
        assert_eq!(serde_json::to_value(accuracy).unwrap(), json!(name));
    }
}

#[test]
fn calibration_smooths_bounds_and_applies_the_ratio() {
    let first = TokenCalibration::observe(None, 1_200, 1_000).unwrap();
    assert_eq!(
        first,
        TokenCalibration { reported_input_tokens: 1_200, estimated_input_tokens: 1_000 }
    );
    assert_eq!(first.ratio(), 1.2);
    assert_eq!(first.apply(500), 600);
    // A second observation adds to three quarters of the past: (900 + 3000) / (750 + 2000).
    let second = TokenCalibration::observe(Some(first), 3_000, 2_000).unwrap();
    assert_eq!(
        second,
        TokenCalibration { reported_input_tokens: 3_900, estimated_input_tokens: 2_750 }
    );
    assert!((second.ratio() - 3_900.0 / 2_750.0).abs() < 1e-12);
    // Larger observations weigh more: a small one barely moves the ratio.
    let small = TokenCalibration::observe(Some(second), 10, 20).unwrap();
    assert!((small.ratio() - second.ratio()).abs() < 0.01, "{small:?}");
    // An observation with nothing to compare teaches nothing.
    assert_eq!(TokenCalibration::observe(Some(second), 0, 2_000), Some(second));
    assert_eq!(TokenCalibration::observe(None, 10, 0), None);
    // The ratio applied stays within 0.5..=2.
    let wild = TokenCalibration { reported_input_tokens: 9_000, estimated_input_tokens: 1_000 };
    assert_eq!(wild.ratio(), TokenCalibration::MAX_RATIO);
    let tiny = TokenCalibration { reported_input_tokens: 100, estimated_input_tokens: 1_000 };
    assert_eq!(tiny.ratio(), TokenCalibration::MIN_RATIO);
    assert_eq!(tiny.apply(1_001), 501);
    // Huge figures saturate instead of overflowing.
    let huge =
        TokenCalibration { reported_input_tokens: i64::MAX, estimated_input_tokens: i64::MAX };
    assert_eq!(
        TokenCalibration::observe(Some(huge), i64::MAX, 1).unwrap().reported_input_tokens,
        i64::MAX
    );
    assert_eq!(
        serde_json::to_value(second).unwrap(),
        json!({"reported_input_tokens": 3_900, "estimated_input_tokens": 2_750})
    );
}

#[test]
fn tokens_and_json_length_measured_together_are_each_alone() {
    let blob = "A".repeat(4000);
    let mut items = items();
    items.extend([
        ResponseItem::Reasoning {
            id: Some("rs_1".into()),
            summary: vec![],
            content: None,
            encrypted_content: Some(blob.clone()),
        },
        ResponseItem::Reasoning {
            id: None,
            summary: vec![],
            content: None,
            encrypted_content: None,
        },
        ResponseItem::Compaction { id: None, encrypted_content: blob.clone(), created_by: None },
        ResponseItem::ContextCompaction { id: None, encrypted_content: Some(blob) },
        ResponseItem::ContextCompaction { id: None, encrypted_content: None },
        ResponseItem::Message {
            id: None,
            role: "user".into(),
            content: vec![ContentItem::InputImage {
                image_url: format!("data:image/png;base64,{}", "B".repeat(10_000)),
                detail: None,
            }],
            phase: None,
            extra: Default::default(),
        },
        serde_json::from_value(json!({"type": "ghost_snapshot", "ghost_commit": {"id": "g1"}}))
            .unwrap(),
    ]);
    for counter in TokenCounter::ALL {
        for item in &items {
            let json = serde_json::to_vec(item).unwrap().len() as u64;
            assert_eq!(
                counter.item_tokens_and_json_len(item),
                (counter.item_tokens(item), json),
                "{counter} {item:?}"
            );
        }
    }
}
