//! The direct reader reads what `serde_json` reads, or declines: on every variant written by
//! Compactor (which it must take), on every change of them, on strings with every escape, and on
//! lists with items in other forms, cut short, nested deep or ended early.

use pretty_assertions::assert_eq;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::super::read::tests::{changes, check, every_variant};
use super::*;

/// The item `serde_json` reads from `text`, as the direct reader should read it.
fn serde_item(text: &str) -> Option<ResponseItem> {
    serde_json::from_str::<ResponseItem>(text).ok()
}

#[test]
fn every_variant_compactor_writes_is_read_directly() {
    let mut direct = 0;
    for value in every_variant() {
        let item: ResponseItem = serde_json::from_value(value).unwrap();
        let text = serde_json::to_string(&item).unwrap();
        match read_item(&text, 0) {
            Some((read, end)) => {
                assert_eq!(read, item, "{text}");
                assert_eq!(end, text.len(), "{text}");
                direct += 1;
            }
            // Only what the fast path does not model is left to `serde_json`: a raw item, a
            // rare variant, a part or field Compactor keeps as JSON.
            None => assert!(
                !matches!(
                    item,
                    ResponseItem::FunctionCall { .. }
                        | ResponseItem::FunctionCallOutput { .. }
                        | ResponseItem::CustomToolCall { .. }
                        | ResponseItem::CustomToolCallOutput { .. }
                        | ResponseItem::Reasoning { .. }
                        | ResponseItem::Compaction { .. }
                        | ResponseItem::ContextCompaction { .. }
                        | ResponseItem::CompactionTrigger
                ) || text.contains("\"input_file\""),
                "{text} was not read directly"
            ),
        }
    }
    assert!(direct >= 12, "{direct}");
}

#[test]
fn a_realistic_history_is_read_directly_item_by_item() {
    let items = vec![
        ResponseItem::user_text("fix the \"bug\"\nin src/lib.rs \u{1F600} é"),
        ResponseItem::assistant_text("done\t\u{0}"),
        ResponseItem::developer_text(""),
        ResponseItem::context_compaction_trigger(),
    ];
    for item in items {
        let text = serde_json::to_string(&item).unwrap();
        assert_eq!(read_item(&text, 0), Some((item, text.len())), "{text}");
    }
}

#[test]
fn every_change_of_every_variant_reads_as_serde_json_reads_it() {
    for value in every_variant() {
        for changed in changes(&value) {
            check(&changed.to_string());
        }
    }
}

#[test]
fn strings_unescape_as_serde_json_unescapes_them() {
    let taken = [
        r#""""#,
        r#""plain""#,
        r#""\"\\\/\b\f\n\r\t""#,
        r#""\u0000\u001f\u0041\u00e9\u2603\uFFFF""#,
        r#""\ud83d\ude00 and \uD83D\uDE00""#,
        r#""a\nb\nc\n""#,
        "\"caf\u{e9} \u{1F600} \u{7f}\"",
        r#""exactly 8""#,
        r#""seven\"""#,
        r#""0123456789abcdef\"0123456789abcdef""#,
    ];
    for literal in taken {
        let text = format!(r#"{{"type":"function_call_output","call_id":"c","output":{literal}}}"#);
        let expected = serde_item(&text).unwrap();
        assert_eq!(read_item(&text, 0), Some((expected, text.len())), "{text}");
    }
    // Each of these `serde_json` refuses; the direct reader leaves them to it.
    let refused = [
        r#""\x""#,
        r#""\u12""#,
        r#""\u12g4""#,
        r#""\ud83d""#,
        r#""\ud83d\n""#,
        r#""\ud83d\u0041""#,
        r#""\ude00""#,
        "\"tab\tinside\"",
        "\"line\nbreak\"",
        r#""unterminated"#,
        r#""ends in a backslash\"#,
    ];
    for literal in refused {
        let text = format!(r#"{{"type":"function_call_output","call_id":"c","output":{literal}}}"#);
        assert_eq!(read_item(&text, 0), None, "{text}");
        assert!(serde_item(&text).is_none(), "{text}");
    }
}

#[test]
fn other_forms_are_left_to_serde_json() {
    for text in [
        r#"{ "type":"message","role":"user","content":[]}"#,
        r#"{"type": "message","role":"user","content":[]}"#,
        r#"{"role":"user","type":"message","content":[]}"#,
        r#"{"type":"message","content":[],"role":"user"}"#,
        r#"{"type":"message","role":"user","role":"user","content":[]}"#,
        r#"{"type":"message","role":"user","content":[],"status":"done"}"#,
        r#"{"type":"message","id":null,"role":"user","content":[]}"#,
        r#"{"type":"message","role":"user","content":"text"}"#,
        r#"{"type":"message","role":"user","content":[{"text":"a","type":"input_text"}]}"#,
        r#"{"type":"message","role":"user","content":[{"type":"input_text","text":"a","x":1}]}"#,
        r#"{"type":"message","role":"user","content":[{"type":"input_file","file_id":"f"}]}"#,
        r#"{"type":"m\u0065ssage","role":"user","content":[]}"#,
        r#"{"type":"message","r\u006fle":"user","content":[]}"#,
        r#"{"type":"message","role":"user"}"#,
        r#"{"type":"message","role":"user","content":[],"phase":null}"#,
        r#"{"type":"local_shell_call","call_id":"c","status":"s","action":{}}"#,
        r#"{"type":"function_call","name":"f","arguments":{},"call_id":"c"}"#,
        r#"{"type":"function_call_output","call_id":"c","output":7}"#,
        r#"{"type":"reasoning","summary":null}"#,
        r#"{"type":"ghost_snapshot"}"#,
        r#"{"type":"message","role":"user","content":[]"#,
        r#"{"type":"message","role":"user","content":[],}"#,
        r#"{"type":"message","role":"user","content":[,]}"#,
        r#"{"type":"compaction_trigger""#,
        r#"[]"#,
        r#""message""#,
        "",
    ] {
        assert_eq!(read_item(text, 0), None, "{text}");
        check(text);
    }
}

/// The items `serde_json` reads from a whole list.
fn serde_list(text: &str) -> Option<Vec<ResponseItem>> {
    serde_json::from_str(text).ok()
}

fn owned(items: Vec<Cow<'static, ResponseItem>>) -> Vec<ResponseItem> {
    items.into_iter().map(Cow::into_owned).collect()
}

#[test]
fn a_list_reads_each_item_directly_or_with_serde_json() {
    let list = json!([
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "a"}]},
        {"role": "user", "content": "typeless"},
        {"type": "ghost_snapshot", "ghost_commit": {"id": "g"}},
        {"type": "function_call", "name": "f", "arguments": "{}", "call_id": "c"},
        {"type": "function_call_output", "call_id": "c", "output": "ok"},
        7,
        "text",
        {"type": "compaction_trigger"}
    ]);
    for text in [
        list.to_string(),
        serde_json::to_string_pretty(&list).unwrap(),
        "[]".to_owned(),
        " [ ] ".to_owned(),
    ] {
        let open = text.find('[').unwrap();
        let (items, end) = read_items(&text, open + 1, None, 1).unwrap();
        assert_eq!(&text[end..=end], "]");
        assert_eq!(Some(owned(items)), serde_list(&text), "{text}");
    }
}

#[test]
fn a_list_that_does_not_read_is_refused() {
    let item = r#"{"type":"compaction_trigger"}"#;
    for text in [
        format!("[{item},]"),
        format!("[{item},,{item}]"),
        format!("[{item} {item}]"),
        format!("[{item}"),
        format!("[{item},"),
        format!("[{item}}}]"),
        format!("[,{item}]"),
        "[".to_owned(),
        format!("[{item},1 2]"),
        format!("[{item},{{\"type\":\"message\",\"role\":\"user\",\"content\":[}}]"),
    ] {
        assert_eq!(read_items(&text, 1, None, 1), None, "{text}");
        assert_eq!(serde_list(&text), None, "{text}");
    }
}

#[test]
fn a_list_stops_only_where_an_item_starts() {
    let trigger = r#"{"type":"compaction_trigger"}"#;
    let text = &format!(r#"[{trigger},{{"type":"x","a":[{{"type":"y"}}]}},{trigger}]"#);
    let second = text.find(r#"{"type":"x""#).unwrap();
    let inside = text.find(r#"{"type":"y""#).unwrap();
    let third = text.rfind(r#"{"type":"compaction_trigger""#).unwrap();

    let (first, end) = read_items(text, 1, Some(second), 1).unwrap();
    assert_eq!((owned(first), end), (vec![ResponseItem::CompactionTrigger], second));
    let (items, end) = read_items(text, 1, Some(third), 1).unwrap();
    assert_eq!((items.len(), end), (2, third));
    assert_eq!(read_items(text, 1, Some(inside), 1), None, "inside an item");
    assert_eq!(read_items(text, 1, Some(text.len() + 10), 1), None, "past the list's end");

    let (rest, end) = read_items(text, third, None, 1).unwrap();
    assert_eq!((owned(rest), end), (vec![ResponseItem::CompactionTrigger], text.len() - 1));
}

#[test]
fn an_item_too_deep_for_its_place_in_the_text_is_refused() {
    for depth in 1..4 {
        let allowed = NESTING_LIMIT - depth;
        for levels in allowed - 2..=allowed + 1 {
            // An item whose own object is one level, its list the others.
            let inner = format!("{}{}", "[".repeat(levels - 1), "]".repeat(levels - 1));
            let item = format!(r#"{{"type":"ghost","deep":{inner}}}"#);
            let list = format!("[{item}]");
            let read = read_items(&list, 1, None, depth).map(|(items, _)| owned(items));
            // At `depth`, the list sits inside `depth - 1` more levels.
            let whole = format!("{}{list}{}", "[".repeat(depth - 1), "]".repeat(depth - 1));
            let expected =
                serde_json::from_str::<Value>(&whole).ok().map(|_| serde_list(&list).unwrap());
            assert_eq!(read, expected, "depth {depth}, {levels} levels");
            assert_eq!(read.is_some(), levels <= allowed, "depth {depth}, {levels} levels");
        }
    }
}

#[test]
fn the_nesting_count_skips_strings() {
    assert_eq!(nesting(br#""[{""#), 0);
    assert_eq!(nesting(br#"{"a":"\"[[[","b":[[]]}"#), 3);
    assert_eq!(nesting(br#"[{},[{}],"\\",[[["]]]"]]]"#), 4);
}

/// What the property test puts into an item's text.
const PIECES: [&str; 12] =
    ["", "\"", "\\", "\\u", "\\ud800", "\n", "é", ",", "}", "]", "null", " "];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any text the direct reader takes, `serde_json` reads as the same item.
    #[test]
    fn whatever_is_read_directly_reads_the_same_with_serde_json(
        index in 0..40usize,
        cut in 0..400usize,
        piece in prop::sample::select(PIECES.to_vec()),
    ) {
        let items = every_variant();
        let value = items[index % items.len()].clone();
        let item: ResponseItem = serde_json::from_value(value).unwrap();
        let text = serde_json::to_string(&item).unwrap();
        let mut at = cut % (text.len() + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        let changed = format!("{}{piece}{}", &text[..at], &text[at..]);
        if let Some((read, end)) = read_item(&changed, 0) {
            prop_assert_eq!(Some(read), serde_item(&changed[..end]), "{}", changed);
        }
    }
}
