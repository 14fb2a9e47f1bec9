//! The split reading reads every body as `serde_json::from_str` does: the same request, or an
//! error where it fails.

use std::borrow::Cow;

use compactor_protocol::{CompactRequest, Prompt, ResponseItem, ResponsesApiRequest, TurnSettings};
use pretty_assertions::assert_eq;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::{read_split, read_with};
use crate::workload;

fn body_of(items: &[ResponseItem]) -> String {
    let prompt = Prompt {
        input: items.iter().map(Cow::Borrowed).collect(),
        base_instructions: "Be brief, \"exact\"\nand {careful}.".to_owned(),
        ..Prompt::default()
    };
    let settings = TurnSettings { model: "gpt-test".to_owned(), ..TurnSettings::default() };
    serde_json::to_string(&ResponsesApiRequest::from_prompt(&prompt, &settings)).unwrap()
}

/// Reads `text` split in two (from any size), on one thread with its list apart, and whole with
/// `serde_json`, and checks that they agree; returns whether it was read split.
fn agree(text: &str) -> bool {
    let split = read_split::<ResponsesApiRequest<'static>>(text, 0);
    let whole = serde_json::from_str::<ResponsesApiRequest<'static>>(text);
    for split_from in [0, usize::MAX] {
        let read = read_with::<ResponsesApiRequest<'static>>(text, split_from);
        match (&read, &whole) {
            (Ok(read), Ok(whole)) => assert_eq!(
                serde_json::to_value(read).unwrap(),
                serde_json::to_value(whole).unwrap(),
                "{text}"
            ),
            (Err(read), Err(whole)) => assert_eq!(read.to_string(), whole.to_string()),
            _ => panic!("{text}: read {:?}, whole {:?}", read.is_ok(), whole.is_ok()),
        }
    }
    split.is_some()
}

#[test]
fn a_large_history_is_read_in_two_halves_as_it_is_read_whole() {
    let history = workload::realistic_history(2_000);
    let text = body_of(&history);
    assert!(agree(&text), "the body is read split");
    let request: ResponsesApiRequest<'static> = read_with(&text, 0).unwrap();
    assert_eq!(request.input.len(), history.len());
    assert!(request.input.iter().zip(&history).all(|(read, item)| read.as_ref() == item));

    // The WebSocket message carries the same request after its `type`.
    let message = format!(r#"{{"type":"response.create",{}"#, &text[1..]);
    assert!(agree(&message));

    let compact = CompactRequest {
        model: Cow::Borrowed("gpt-test"),
        input: Cow::Owned(history.iter().map(Cow::Borrowed).collect()),
        instructions: Cow::Borrowed("summarize"),
        tools: Cow::Borrowed(&[]),
        parallel_tool_calls: false,
        reasoning: None,
        service_tier: None,
        prompt_cache_key: None,
        text: None,
    };
    let text = serde_json::to_string(&compact).unwrap();
    let split = read_split::<CompactRequest<'static>>(&text, 0).expect("read split");
    let whole = serde_json::from_str::<CompactRequest<'static>>(&text).unwrap();
    assert_eq!(serde_json::to_value(split).unwrap(), serde_json::to_value(whole).unwrap());
}

#[test]
fn a_list_is_split_wherever_its_middle_falls_inside_a_character() {
    // Every character of the messages' text takes two bytes, so the place the guess starts from
    // falls inside one for about half the sizes.
    let mut inside = 0;
    for items in 200..230 {
        let history: Vec<ResponseItem> =
            (0..items).map(|n| ResponseItem::user_text("é".repeat(50 + n % 7))).collect();
        let text = body_of(&history);
        let open = super::input_list_at(&text).unwrap();
        let from = (text.len() - open) / 2;
        inside += usize::from(!text.is_char_boundary(open + from));
        assert!(agree(&text), "{items} items are read split");
    }
    assert!(inside > 5, "{inside}");
}

#[test]
fn a_guess_inside_an_item_reads_the_body_whole() {
    // Every item holds a list whose second object looks like the start of a message item, so
    // the boundary guess falls inside an item.
    let items: Vec<Value> = (0..40)
        .map(|n| {
            json!({"type": "ghost_snapshot", "n": n,
                "parts": [{"a": 1}, {"type": "message", "role": "user", "content": []}]})
        })
        .collect();
    let text = json!({"model": "m", "input": items}).to_string();
    assert!(text.contains(r#"},{"type":"message""#));
    assert!(!agree(&text), "a wrong guess is not read split");
}

#[test]
fn bodies_of_every_shape_read_as_they_read_whole() {
    let history = workload::realistic_history(30);
    let input = serde_json::to_value(&history).unwrap();
    let long = "x\\\"y".repeat(200);
    for body in [
        json!({"model": "m", "input": input}),
        json!({"instructions": long, "tools": [{"type": "function", "name": "f"}], "model": "m",
            "input": input, "store": false}),
        json!({"model": "m", "client_metadata": {"input": [{"type": "message"}]}, "input": input}),
        json!({"model": "m", "input": "one user message"}),
        json!({"model": "m", "input": []}),
        json!({"model": "m", "input": input, "tool_choice": 7}),
        json!({"input": input}),
    ] {
        agree(&body.to_string());
        agree(&serde_json::to_string_pretty(&body).unwrap());
    }
    let text = body_of(&history);
    let duplicate = format!("{},\"input\":[]}}", &text[..text.len() - 1]);
    assert!(!agree(&duplicate));
    let escaped_key = text.replacen("\"input\"", "\"\\u0069nput\"", 1);
    assert!(!agree(&escaped_key));
}

#[test]
fn an_item_nested_near_the_limit_reads_or_fails_as_the_whole_body_does() {
    let history = serde_json::to_string(&workload::realistic_history(4)).unwrap();
    let items = &history[1..history.len() - 1];
    let mut read = 0;
    for levels in 122..=128 {
        let deep = format!("{}{}", "[".repeat(levels), "]".repeat(levels));
        let item = format!(r#"{{"type":"ghost","deep":{deep}}}"#);
        let text = format!(r#"{{"model":"m","input":[{items},{item},{items}]}}"#);
        agree(&text);
        read += usize::from(serde_json::from_str::<Value>(&text).is_ok());
    }
    assert!((1..7).contains(&read), "some read and some do not: {read}");
}

#[test]
fn a_cut_or_changed_body_fails_as_it_fails_whole() {
    let text = body_of(&workload::realistic_history(16));
    let bytes = text.as_bytes();
    for at in (0..text.len()).step_by(7) {
        if text.is_char_boundary(at) {
            agree(&text[..at]);
        }
        for replacement in [b',', b']', b'}', b'"', b' '] {
            let mut changed = bytes.to_vec();
            changed[at] = replacement;
            if let Ok(changed) = String::from_utf8(changed) {
                agree(&changed);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_history_reads_split_as_it_reads_whole(
        items in 2usize..60,
        cut in any::<prop::sample::Index>(),
        piece in prop::sample::select(vec!["", ",", "]", "}", "{", "[", "\"", "\\", ":", "x"]),
    ) {
        let text = body_of(&workload::realistic_history(items));
        agree(&text);
        let mut at = cut.index(text.len());
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        agree(&format!("{}{piece}{}", &text[..at], &text[at..]));
    }
}
