//! Tests of the ledger's records: their exact JSON, round trips, and tolerant reading.

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;
use crate::items::ResponseItem;
use crate::rollout::{CompactedItem, RolloutItem, RolloutLine};

fn snapshot() -> LedgerSnapshot {
    LedgerSnapshot {
        turn: 3,
        next_seq: 7,
        files: vec![LedgerFile {
            path: "src/wal/log.rs".into(),
            actions: vec![FileAction::Read, FileAction::Written],
            last_turn: 3,
            seq: 5,
        }],
        commands: vec![LedgerCommand {
            command: "cargo test -p wal".into(),
            exit_code: Some(101),
            failed: true,
            turn: 2,
            seq: 3,
        }],
        patches: vec![LedgerPatch {
            files: vec![PatchedFile { path: "src/wal/log.rs".into(), action: FileAction::Written }],
            added_lines: 4,
            removed_lines: 1,
            turn: 3,
            seq: 4,
        }],
        requests: vec![LedgerRequest { text: "fix the WAL".into(), turn: 1, seq: 0 }],
        open_items: vec!["rerun the benches".into()],
        pending: vec![LedgerPendingCall {
            call_id: "call_9".into(),
            tool: "shell".into(),
            effects: vec![ToolEffect::Command { command: "cargo bench".into() }],
        }],
        evicted: LedgerEvicted { files: 0, commands: 2, patches: 0, requests: 0 },
        extra: Map::new(),
    }
}

#[test]
fn snapshot_json_is_stable_and_round_trips() {
    let snapshot = snapshot();
    let json = serde_json::to_string_pretty(&snapshot).unwrap();
    insta::assert_snapshot!(json);
    assert_eq!(serde_json::from_str::<LedgerSnapshot>(&json).unwrap(), snapshot);
}

#[test]
fn an_empty_snapshot_is_small_and_reads_from_an_empty_object() {
    assert_eq!(
        serde_json::to_value(LedgerSnapshot::default()).unwrap(),
        json!({"turn": 0, "next_seq": 0})
    );
    assert_eq!(serde_json::from_str::<LedgerSnapshot>("{}").unwrap(), LedgerSnapshot::default());
}

#[test]
fn unknown_fields_survive_a_round_trip() {
    let raw = json!({"turn": 1, "next_seq": 2, "decisions": ["keep the WAL format"]});
    let snapshot: LedgerSnapshot = serde_json::from_value(raw.clone()).unwrap();
    assert_eq!(snapshot.extra["decisions"], json!(["keep the WAL format"]));
    assert_eq!(serde_json::to_value(&snapshot).unwrap(), raw);
}

#[test]
fn tool_effects_are_tagged_by_kind() {
    let effects = vec![
        ToolEffect::Command { command: "ls".into() },
        ToolEffect::File { path: "a.rs".into(), action: FileAction::Deleted },
        ToolEffect::Patch {
            files: vec![PatchedFile { path: "b.rs".into(), action: FileAction::Created }],
            added_lines: 3,
            removed_lines: 0,
        },
    ];
    assert_eq!(
        serde_json::to_value(&effects).unwrap(),
        json!([
            {"kind": "command", "command": "ls"},
            {"kind": "file", "path": "a.rs", "action": "deleted"},
            {"kind": "patch", "files": [{"path": "b.rs", "action": "created"}], "added_lines": 3, "removed_lines": 0}
        ])
    );
}

#[test]
fn a_compacted_line_carries_the_snapshot() {
    let mut compacted = CompactedItem::new("", vec![ResponseItem::user_text("fix the WAL")]);
    compacted.ledger = Some(Box::new(snapshot()));
    let line = RolloutLine::new("2026-05-15T10:00:00.123Z", RolloutItem::Compacted(compacted));
    let wire = serde_json::to_string(&line).unwrap();
    let back: RolloutLine = serde_json::from_str(&wire).unwrap();
    assert_eq!(back, line);
    let value: Value = serde_json::from_str(&wire).unwrap();
    assert_eq!(value["payload"]["ledger"]["turn"], json!(3));
}

#[test]
fn a_compacted_line_without_a_ledger_has_no_field() {
    let compacted = CompactedItem::new("", Vec::new());
    assert_eq!(
        serde_json::to_value(&compacted).unwrap(),
        json!({"message": "", "replacement_history": []})
    );
}

#[test]
fn an_unreadable_ledger_is_left_out_and_the_line_still_reads() {
    let raw = r#"{"timestamp":"t","type":"compacted","payload":{"message":"","replacement_history":[],"ledger":{"files":7}}}"#;
    let line = RolloutLine::parse(raw.as_bytes()).unwrap();
    let RolloutItem::Compacted(compacted) = line.item else { panic!("not compacted") };
    assert_eq!(compacted.ledger, None);
    assert_eq!(compacted.replacement_history, Some(Vec::new()));
}

#[test]
fn open_items_line_round_trips() {
    let line = RolloutLine::new(
        "2026-05-15T10:00:00.123Z",
        RolloutItem::OpenItems(OpenItemsItem::new(vec!["rerun the benches".into()])),
    );
    let wire = serde_json::to_string(&line).unwrap();
    assert_eq!(
        wire,
        r#"{"timestamp":"2026-05-15T10:00:00.123Z","type":"open_items","payload":{"open_items":["rerun the benches"]}}"#
    );
    assert_eq!(RolloutLine::parse(wire.as_bytes()).unwrap(), line);
}
