//! Tests of pins: ids, the exact JSON of both kinds, the pin slot items and the `pins` line.

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;
use crate::rollout::{RolloutItem, RolloutLine};

#[track_caller]
fn check_id(text: &str, expected: Option<u64>) {
    assert_eq!(text.parse::<PinId>().ok().map(PinId::number), expected, "{text}");
}

#[test]
fn pin_ids_are_pin_dash_a_positive_number() {
    check_id("pin-1", Some(1));
    check_id("pin-42", Some(42));
    check_id("pin-0", None);
    check_id("pin-", None);
    check_id("pin--1", None);
    check_id("pin-+1", None);
    check_id("pin-1a", None);
    check_id("PIN-1", None);
    check_id("1", None);
    check_id("pin-99999999999999999999999", None);
    assert_eq!(PinId::from_number(7).to_string(), "pin-7");
}

fn item_pin() -> Pin {
    Pin::item(
        PinId::from_number(1),
        ResponseItem::user_text("the API must stay backward compatible"),
    )
}

#[test]
fn pins_have_an_exact_json_form() {
    let pins =
        vec![item_pin(), Pin::note(PinId::from_number(2), "run the linter before committing")];
    let value = serde_json::to_value(&pins).unwrap();
    assert_eq!(
        value,
        json!([
            {"id": "pin-1", "kind": "item", "item": {"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "the API must stay backward compatible"}]}},
            {"id": "pin-2", "kind": "note", "text": "run the linter before committing"}
        ])
    );
    insta::assert_json_snapshot!(value);
    assert_eq!(serde_json::from_value::<Vec<Pin>>(value).unwrap(), pins);
}

#[track_caller]
fn check_unreadable(value: &Value) {
    assert!(serde_json::from_value::<Pin>(value.clone()).is_err(), "{value}");
}

#[test]
fn malformed_pins_are_refused() {
    check_unreadable(&json!({"id": "pin-1", "kind": "note"}));
    check_unreadable(&json!({"id": "pin-1", "kind": "item", "text": "x"}));
    check_unreadable(&json!({"id": "pin-1", "kind": "file", "text": "x"}));
    check_unreadable(&json!({"id": "1", "kind": "note", "text": "x"}));
    check_unreadable(&json!({"kind": "note", "text": "x"}));
}

#[test]
fn the_pin_slot_holds_items_verbatim_and_notes_as_developer_messages() {
    let pins = vec![item_pin(), Pin::note(PinId::from_number(2), "  keep  spacing\n")];
    assert_eq!(
        pin_slot_items(&pins),
        vec![
            ResponseItem::user_text("the API must stay backward compatible"),
            ResponseItem::developer_text("  keep  spacing\n"),
        ]
    );
    assert_eq!(pins[0].kind(), "item");
    assert_eq!(pins[1].kind(), "note");
}

#[test]
fn pins_line_round_trips_and_keeps_unknown_fields() {
    let raw = r#"{"timestamp":"2026-12-01T00:00:00.000Z","type":"pins","payload":{"pins":[{"id":"pin-3","kind":"note","text":"n"}],"changed_by":"cli"}}"#;
    let line = RolloutLine::parse(raw.as_bytes()).unwrap();
    let RolloutItem::Pins(pins) = &line.item else { panic!("not a pins line: {line:?}") };
    assert_eq!(pins.pins, vec![Pin::note(PinId::from_number(3), "n")]);
    assert_eq!(pins.extra.get("changed_by"), Some(&json!("cli")));
    assert_eq!(serde_json::to_string(&line).unwrap(), raw);
}
