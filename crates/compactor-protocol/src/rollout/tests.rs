//! Tests of rollout lines: the exact JSON, lossless unknown lines and fields.

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;
use crate::events::EventMsg;

const TS: &str = "2026-05-15T10:00:00.123Z";

#[track_caller]
fn round_trip(raw: &str) -> RolloutLine {
    let line: RolloutLine = serde_json::from_str(raw).unwrap();
    let back = serde_json::to_string(&line).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&back).unwrap(),
        serde_json::from_str::<Value>(raw).unwrap()
    );
    line
}

#[test]
fn compacted_line_with_replacement_history() {
    let line = RolloutLine::new(
        TS,
        RolloutItem::Compacted(CompactedItem::new(
            "",
            vec![
                ResponseItem::user_text("fix the bug"),
                ResponseItem::ContextCompaction { id: None, encrypted_content: Some("ENC".into()) },
            ],
        )),
    );
    let wire = serde_json::to_string(&line).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&wire).unwrap(),
        json!({
            "timestamp": TS, "type": "compacted",
            "payload": {"message": "", "replacement_history": [
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "fix the bug"}]},
                {"type": "context_compaction", "encrypted_content": "ENC"}
            ]}
        })
    );
    insta::assert_snapshot!(wire);
    assert_eq!(round_trip(&wire), line);
}

#[test]
fn legacy_compacted_line_without_replacement() {
    let line =
        round_trip(r#"{"timestamp":"t","type":"compacted","payload":{"message":"summary"}}"#);
    let RolloutItem::Compacted(compacted) = line.item else { panic!("not compacted") };
    assert_eq!(compacted.replacement_history, None);
    assert_eq!(compacted.message, "summary");
}

#[test]
fn event_msg_line() {
    let line = RolloutLine::new(TS, RolloutItem::EventMsg(EventMsg::ContextCompacted {}));
    let wire = serde_json::to_string(&line).unwrap();
    assert_eq!(
        wire,
        r#"{"timestamp":"2026-05-15T10:00:00.123Z","type":"event_msg","payload":{"type":"context_compacted"}}"#
    );
    insta::assert_snapshot!(wire);
    assert_eq!(round_trip(&wire), line);
}

#[test]
fn other_known_lines() {
    let meta = RolloutLine::new(
        TS,
        RolloutItem::SessionMeta(SessionMeta {
            id: "thread-1".into(),
            originator: Some("compactor".into()),
            ..SessionMeta::default()
        }),
    );
    let ctx = RolloutLine::new(
        TS,
        RolloutItem::TurnContext(TurnContextItem {
            turn_id: Some("turn-1".into()),
            model: "gpt-test".into(),
            ..TurnContextItem::default()
        }),
    );
    let item = RolloutLine::new(TS, RolloutItem::ResponseItem(ResponseItem::user_text("hi")));
    let lines: Vec<String> = [meta, ctx, item]
        .iter()
        .map(|line| {
            let wire = serde_json::to_string(line).unwrap();
            assert_eq!(&round_trip(&wire), line);
            wire
        })
        .collect();
    insta::assert_snapshot!(lines.join("\n"));
}

#[test]
fn unknown_line_type_round_trips() {
    for raw in [
        r#"{"timestamp":"t","type":"inference_trace","payload":{"spans":[1,2,{"a":null}]}}"#,
        r#"{"timestamp":"t","type":"marker"}"#,
    ] {
        let line = round_trip(raw);
        assert!(matches!(line.item, RolloutItem::Unknown { .. }), "{raw}");
    }
}

#[test]
fn unknown_fields_are_kept() {
    let line = round_trip(
        r#"{"timestamp":"t","type":"compacted","payload":{"message":"","replacement_history":[],"window_id":"th:3"},"writer":"v9"}"#,
    );
    assert_eq!(line.extra.get("writer"), Some(&json!("v9")));
    let RolloutItem::Compacted(compacted) = &line.item else { panic!("not compacted") };
    assert_eq!(compacted.extra.get("window_id"), Some(&json!("th:3")));
}

#[test]
fn unknown_item_and_event_payloads_round_trip() {
    round_trip(
        r#"{"timestamp":"t","type":"response_item","payload":{"type":"ghost_snapshot","ghost_commit":{"id":"g1"}}}"#,
    );
    round_trip(
        r#"{"timestamp":"t","type":"event_msg","payload":{"type":"plan_update","plan":[]}}"#,
    );
}

#[test]
fn broken_known_lines_are_errors() {
    for raw in [
        r#"{"timestamp":"t","type":"compacted"}"#,
        r#"{"timestamp":"t","type":"compacted","payload":{"replacement_history":"nope"}}"#,
        r#"{"type":"compacted","payload":{}}"#,
        r#"{"timestamp":"t","payload":{}}"#,
        r#"[1,2]"#,
        // A session without an id cannot be resumed as itself: the one field it needs.
        r#"{"timestamp":"t","type":"session_meta","payload":{"cwd":"/x"}}"#,
        r#"{"timestamp":"t","type":"session_meta","payload":{"id":7}}"#,
    ] {
        assert!(serde_json::from_str::<RolloutLine>(raw).is_err(), "{raw}");
    }
}

#[test]
fn parses_from_a_json_value_too() {
    let value =
        json!({"timestamp": "t", "type": "event_msg", "payload": {"type": "context_compacted"}});
    let line: RolloutLine = serde_json::from_value(value).unwrap();
    assert_eq!(line.item, RolloutItem::EventMsg(EventMsg::ContextCompacted {}));
}

/// `RolloutLine::parse` of `raw`, rendered as the damage and the recognized type.
fn damage(raw: &str) -> String {
    match RolloutLine::parse(raw.as_bytes()) {
        Ok(line) => format!("ok {}", line.item.kind()),
        Err(err) => format!("{:?} {}", err.damage, err.kind.as_deref().unwrap_or("-")),
    }
}

#[test]
fn parse_names_the_damage_of_a_line() {
    let cases = [
        (
            r#"{"timestamp":"t","type":"event_msg","payload":{"type":"context_compacted"}}"#,
            "ok event_msg",
        ),
        (r#"{"timestamp":"t","type":"future","payload":[1]}"#, "ok future"),
        (r#"{"timestamp":"t","type":"compacted","payload":{"message":""}}"#, "ok compacted"),
        ("{\"timestamp\":\"t\",\"type\":\"turn_context\",\"payload\":{}}\r", "ok turn_context"),
        // Not JSON: torn and overwritten, flipped bytes, two objects on one line.
        (
            r#"{"timestamp":"t","type":"compacted","payload":{"repl{"timestamp":"u"}"#,
            "NotJson compacted",
        ),
        (
            r#"{"timestamp":"t","type":"response_item","payload":{"type":"message""#,
            "NotJson response_item",
        ),
        (
            r#"{"timestamp":"t","type":"event_msg","payload":{}}{"timestamp":"t"}"#,
            "NotJson event_msg",
        ),
        ("not json", "NotJson -"),
        ("{\"timestamp\":\"\u{0}\",\"type\":\"compacted\"", "NotJson compacted"),
        // JSON, but not a rollout line.
        ("[1,2]", "NotRolloutLine -"),
        (r#"{"type":"compacted","payload":{}}"#, "NotRolloutLine compacted"),
        (r#"{"timestamp":"t","payload":{}}"#, "NotRolloutLine -"),
        (r#"{"timestamp":7,"type":"compacted","payload":{}}"#, "NotRolloutLine compacted"),
        // A known type whose needed fields cannot be read.
        (r#"{"timestamp":"t","type":"compacted"}"#, "UnreadablePayload compacted"),
        (
            r#"{"timestamp":"t","type":"compacted","payload":{"replacement_history":7}}"#,
            "UnreadablePayload compacted",
        ),
        (
            r#"{"timestamp":"t","type":"session_meta","payload":{"cwd":"/"}}"#,
            "UnreadablePayload session_meta",
        ),
        (r#"{"timestamp":"t","type":"response_item"}"#, "UnreadablePayload response_item"),
        // A response item of any shape is kept: an unknown item keeps its raw JSON.
        (r#"{"timestamp":"t","type":"response_item","payload":"text"}"#, "ok response_item"),
        // A type that is no plain name is not recognized.
        (r#"{"timestamp":"t","type":"Comp acted","payload":"#, "NotJson -"),
    ];
    for (raw, expected) in cases {
        assert_eq!(damage(raw), expected, "{raw}");
    }
}

#[test]
fn parse_agrees_with_deserialize() {
    let raw = r#"{"timestamp":"t","type":"compacted","payload":{"message":"m","replacement_history":[]},"x":1}"#;
    let parsed = RolloutLine::parse(raw.as_bytes()).unwrap();
    assert_eq!(parsed, serde_json::from_str::<RolloutLine>(raw).unwrap());
    assert_eq!(serde_json::to_string(&parsed).unwrap(), raw);
}

#[test]
fn compacted_line_with_pins_and_receipt() {
    use crate::pins::{Pin, PinId};
    let raw = r#"{"timestamp":"t","type":"compacted","payload":{"message":"","replacement_history":[{"type":"message","role":"developer","content":[{"type":"input_text","text":"keep"}]}],"pins":[{"id":"pin-1","kind":"note","text":"keep"}],"receipt":{"compaction_id":"c","implementation":"prune","chain_position":1,"chain_length":1,"trigger":"manual","reason":"user_requested","phase":"standalone_turn","status":"completed","request_id":null,"response_id":null,"tokens_before":10,"tokens_after":4,"items":[],"totals":{"kept_verbatim":{"items":0,"tokens":0},"kept_truncated":{"items":0,"tokens":0},"trimmed_before_sending":{"items":0,"tokens":0},"summarized":{"items":0,"tokens":0},"dropped":{"items":0,"tokens":0},"pinned":{"items":0,"tokens":0},"instructions":0,"tools":0,"unattributed":10},"pins":[]}}}"#;
    let line = round_trip(raw);
    let RolloutItem::Compacted(compacted) = line.item else { panic!("not compacted") };
    assert_eq!(compacted.pins, Some(vec![Pin::note(PinId::from_number(1), "keep")]));
    let receipt = compacted.receipt.unwrap();
    assert!(receipt.adds_up());
    assert!(compacted.extra.is_empty());
}

#[test]
fn a_receipt_or_pins_this_version_cannot_read_leave_the_line_readable() {
    let raw = r#"{"timestamp":"t","type":"compacted","payload":{"message":"m","replacement_history":[],"pins":[{"id":"pin-1","kind":"file"}],"receipt":{"totals":7}}}"#;
    let line = RolloutLine::parse(raw.as_bytes()).unwrap();
    let RolloutItem::Compacted(compacted) = line.item else { panic!("not compacted") };
    assert_eq!(compacted.pins, None);
    assert_eq!(compacted.receipt, None);
    assert_eq!(compacted.replacement_history, Some(Vec::new()));
}

#[test]
fn codex_session_meta_is_read_tolerantly_and_kept() {
    // As Codex 0.171 writes it: `base_instructions` is an object, and fields Compactor does not
    // know carry objects and lists.
    let raw = r#"{"timestamp":"t","type":"session_meta","payload":{"session_id":"s1","id":"s1","cwd":"/p","originator":"codex_exec","cli_version":"0.171.0","model_provider":"openai","base_instructions":{"text":"You are a coding agent.","provenance":{"type":"model","model":"gpt-5.4"}},"history_mode":"paginated","context_window":{"window_id":"w1"}}}"#;
    let line = round_trip(raw);
    let RolloutItem::SessionMeta(meta) = &line.item else { panic!("{line:?}") };
    assert_eq!(meta.id, "s1");
    assert_eq!(meta.base_instructions, None);
    assert_eq!(meta.base_instructions_text(), Some("You are a coding agent."));
    assert_eq!(meta.extra["base_instructions"]["provenance"]["model"], "gpt-5.4");
    assert_eq!(meta.cli_version.as_deref(), Some("0.171.0"));

    // Compactor's own form reads as before.
    let own = SessionMeta {
        id: "t1".into(),
        base_instructions: Some("be brief".into()),
        ..SessionMeta::default()
    };
    let back: SessionMeta = serde_json::from_value(serde_json::to_value(&own).unwrap()).unwrap();
    assert_eq!(back, own);
    assert_eq!(back.base_instructions_text(), Some("be brief"));
}

#[test]
fn fields_of_another_type_are_kept_not_read() {
    let raw = r#"{"timestamp":"t","type":"turn_context","payload":{"turn_id":"u1","model":"m","summary":{"mode":"auto"},"effort":null,"realtime_active":false,"final_output_json_schema":null}}"#;
    let line = round_trip(raw);
    let RolloutItem::TurnContext(ctx) = &line.item else { panic!("{line:?}") };
    assert_eq!((ctx.turn_id.as_deref(), ctx.model.as_str()), (Some("u1"), "m"));
    assert_eq!((&ctx.summary, &ctx.effort, ctx.realtime_active), (&None, &None, Some(false)));
    assert_eq!(ctx.extra["summary"], json!({"mode": "auto"}));
    assert_eq!(ctx.extra["effort"], Value::Null);
    assert_eq!(ctx.final_output_json_schema, Some(Value::Null));
    let raw =
        r#"{"timestamp":"t","type":"session_meta","payload":{"id":"a","cwd":null,"timestamp":5}}"#;
    let line = round_trip(raw);
    let RolloutItem::SessionMeta(meta) = &line.item else { panic!("{line:?}") };
    assert_eq!((meta.cwd.as_deref(), meta.timestamp.as_deref()), (None, None));
    assert_eq!(meta.extra.len(), 2);
}
