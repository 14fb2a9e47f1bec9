//! Tests of the ledger's updates: turns and requests, calls waiting for their outputs, failures,
//! bounds, and snapshots that replay to the same ledger.

use compactor_protocol::{
    ContentItem, ContextualMarkers, FileAction, LedgerCommand, LedgerEvicted, LocalShellAction,
    PatchedFile, ResponseItem, ToolEffect, ToolOutput,
};
use pretty_assertions::assert_eq;
use serde_json::json;

use super::*;
use crate::local::summary_text;

#[expect(clippy::needless_pass_by_value, reason = "the tests build their arguments inline")]
pub(crate) fn function_call(
    call_id: &str,
    name: &str,
    arguments: serde_json::Value,
) -> ResponseItem {
    ResponseItem::FunctionCall {
        id: None,
        name: name.to_owned(),
        namespace: None,
        arguments: arguments.to_string(),
        call_id: call_id.to_owned(),
    }
}

pub(crate) fn function_output(call_id: &str, text: &str) -> ResponseItem {
    ResponseItem::FunctionCallOutput {
        call_id: call_id.to_owned(),
        output: ToolOutput::Text(text.to_owned()),
    }
}

fn record_all(ledger: &mut Ledger, items: &[ResponseItem]) {
    let markers = ContextualMarkers::default();
    let rules = LedgerRules { tools: &DefaultTools, markers: &markers };
    for item in items {
        ledger.record(item, &rules);
    }
}

fn ledger_of(items: &[ResponseItem]) -> Ledger {
    let mut ledger = Ledger::default();
    record_all(&mut ledger, items);
    ledger
}

fn read(call_id: &str, path: &str) -> [ResponseItem; 2] {
    [
        function_call(call_id, "read_file", json!({ "path": path })),
        function_output(call_id, &format!("contents of {path}")),
    ]
}

fn shell(call_id: &str, command: &str, exit_code: i64) -> [ResponseItem; 2] {
    [
        function_call(call_id, "shell", json!({ "command": command })),
        function_output(
            call_id,
            &json!({ "output": "...", "metadata": { "exit_code": exit_code } }).to_string(),
        ),
    ]
}

#[test]
fn real_user_messages_open_turns_and_become_requests() {
    let ledger = ledger_of(&[
        ResponseItem::user_text("<environment_context>cwd=/w</environment_context>"),
        ResponseItem::user_text("\n  Fix the parser\nIt panics on empty input."),
        ResponseItem::assistant_text("On it."),
        ResponseItem::developer_text("be brief"),
        ResponseItem::user_text(summary_text("what happened")),
        ResponseItem::Message {
            id: None,
            role: "user".into(),
            content: vec![ContentItem::InputImage {
                image_url: "data:image/png;base64,AA".into(),
                detail: None,
            }],
            phase: None,
            extra: Default::default(),
        },
    ]);
    let state = ledger.snapshot();
    assert_eq!(state.turn, 2);
    let requests: Vec<(&str, u64)> =
        state.requests.iter().map(|request| (request.text.as_str(), request.turn)).collect();
    assert_eq!(requests, [("Fix the parser", 1), ("(no text)", 2)]);
}

#[test]
fn long_requests_and_commands_are_cut_to_one_bounded_line() {
    let long = format!("do {}", "x".repeat(500));
    let ledger = ledger_of(&[
        ResponseItem::user_text(&long),
        function_call(
            "c1",
            "shell",
            json!({ "command": format!("echo {}\nsecond line", "y".repeat(500)) }),
        ),
        function_output("c1", "Exit code: 0"),
    ]);
    let state = ledger.snapshot();
    assert_eq!(state.requests[0].text.chars().count(), MAX_TEXT_CHARS);
    assert!(state.requests[0].text.ends_with("..."));
    assert_eq!(state.commands[0].command.chars().count(), MAX_TEXT_CHARS);
    assert!(!state.commands[0].command.contains('\n'));
}

#[test]
fn calls_wait_for_their_outputs() {
    let mut ledger = ledger_of(&[
        ResponseItem::user_text("look around"),
        function_call("c1", "read_file", json!({ "path": "src/lib.rs" })),
    ]);
    assert!(ledger.snapshot().files.is_empty());
    assert_eq!(ledger.snapshot().pending.len(), 1);
    record_all(&mut ledger, &[function_output("c1", "fn main() {}")]);
    assert!(ledger.snapshot().pending.is_empty());
    let file = &ledger.snapshot().files[0];
    assert_eq!(
        (file.path.as_str(), file.actions.as_slice(), file.last_turn),
        ("src/lib.rs", &[FileAction::Read][..], 1)
    );
}

#[test]
fn commands_keep_their_exit_codes_and_failures() {
    let mut items = vec![ResponseItem::user_text("test it")];
    items.extend(shell("c1", "cargo test", 101));
    items.extend(shell("c2", "cargo build", 0));
    items.extend([
        function_call("c3", "shell", json!({ "command": "make" })),
        function_output("c3", "no metadata here"),
    ]);
    let ledger = ledger_of(&items);
    let commands: Vec<(&str, Option<i64>, bool)> = ledger
        .snapshot()
        .commands
        .iter()
        .map(|command| (command.command.as_str(), command.exit_code, command.failed))
        .collect();
    assert_eq!(
        commands,
        [("cargo test", Some(101), true), ("cargo build", Some(0), false), ("make", None, false)]
    );
}

#[test]
fn failed_calls_record_no_file_and_no_patch() {
    let patch = "*** Begin Patch\n*** Update File: a.rs\n+x\n*** End Patch";
    let ledger = ledger_of(&[
        ResponseItem::user_text("edit"),
        function_call("c1", "read_file", json!({ "path": "missing.rs" })),
        function_output("c1", "error: no such file"),
        ResponseItem::CustomToolCall {
            id: None,
            status: None,
            call_id: "c2".into(),
            name: "apply_patch".into(),
            input: patch.into(),
        },
        ResponseItem::CustomToolCallOutput {
            call_id: "c2".into(),
            name: None,
            output: ToolOutput::Text(r#"{"output":"rejected","metadata":{"exit_code":1}}"#.into()),
        },
    ]);
    assert!(ledger.snapshot().files.is_empty());
    assert!(ledger.snapshot().patches.is_empty());
}

#[test]
fn applied_patches_touch_their_files() {
    let patch = "*** Begin Patch\n*** Add File: new.rs\n+a\n+b\n*** Update File: old.rs\n-x\n+y\n*** End Patch";
    let ledger = ledger_of(&[
        ResponseItem::user_text("edit"),
        function_call("c1", "apply_patch", json!({ "input": patch })),
        function_output("c1", "Success. Updated the following files:\nA new.rs\nM old.rs"),
    ]);
    let state = ledger.snapshot();
    assert_eq!(state.patches.len(), 1);
    assert_eq!(
        state.patches[0].files,
        [
            PatchedFile { path: "new.rs".into(), action: FileAction::Created },
            PatchedFile { path: "old.rs".into(), action: FileAction::Written },
        ]
    );
    assert_eq!((state.patches[0].added_lines, state.patches[0].removed_lines), (3, 1));
    let files: Vec<&str> = state.files.iter().map(|file| file.path.as_str()).collect();
    assert_eq!(files, ["new.rs", "old.rs"]);
}

#[test]
fn local_shell_calls_are_commands() {
    let ledger = ledger_of(&[
        ResponseItem::LocalShellCall {
            id: None,
            call_id: Some("s1".into()),
            status: "completed".into(),
            action: Box::new(LocalShellAction::Exec {
                command: vec!["git".into(), "status".into()],
                timeout_ms: None,
                working_directory: None,
                env: None,
                user: None,
            }),
        },
        function_output("s1", r#"{"output":"clean","metadata":{"exit_code":0}}"#),
    ]);
    assert_eq!(
        ledger.snapshot().commands,
        [LedgerCommand {
            command: "git status".into(),
            exit_code: Some(0),
            failed: false,
            turn: 0,
            seq: 0
        }]
    );
}

#[test]
fn unknown_tools_and_stray_outputs_leave_the_ledger_alone() {
    let ledger = ledger_of(&[
        function_call("c1", "web_search", json!({ "query": "rust" })),
        function_output("c1", "results"),
        function_output("nobody", "Exit code: 1"),
    ]);
    assert_eq!(ledger, Ledger::default());
}

#[test]
fn a_file_is_listed_once_with_every_action_and_its_last_turn() {
    let mut items = vec![ResponseItem::user_text("one")];
    items.extend(read("c1", "a.rs"));
    items.extend(read("c2", "b.rs"));
    items.push(ResponseItem::user_text("two"));
    items.extend([
        function_call("c3", "write_file", json!({ "path": "a.rs", "content": "x" })),
        function_output("c3", "ok"),
    ]);
    let ledger = ledger_of(&items);
    let files: Vec<(&str, Vec<FileAction>, u64)> = ledger
        .snapshot()
        .files
        .iter()
        .map(|file| (file.path.as_str(), file.actions.clone(), file.last_turn))
        .collect();
    // The most recently touched file is last.
    assert_eq!(
        files,
        [
            ("b.rs", vec![FileAction::Read], 1),
            ("a.rs", vec![FileAction::Read, FileAction::Written], 2)
        ]
    );
}

#[test]
fn the_bounds_keep_the_newest_and_count_the_rest() {
    let mut items = Vec::new();
    for n in 0..(Ledger::MAX_FILES + 25) {
        items.extend(read(&format!("r{n}"), &format!("f{n}.rs")));
    }
    for n in 0..(Ledger::MAX_COMMANDS + 5) {
        items.extend(shell(&format!("s{n}"), &format!("echo {n}"), 0));
    }
    for n in 0..(Ledger::MAX_REQUESTS + 2) {
        items.push(ResponseItem::user_text(format!("request {n}")));
    }
    let ledger = ledger_of(&items);
    let state = ledger.snapshot();
    assert_eq!(state.files.len(), Ledger::MAX_FILES);
    assert_eq!(state.files[0].path, "f25.rs");
    assert_eq!(state.commands.len(), Ledger::MAX_COMMANDS);
    assert_eq!(state.commands[0].command, "echo 5");
    assert_eq!(state.requests.len(), Ledger::MAX_REQUESTS);
    assert_eq!(state.evicted, LedgerEvicted { files: 25, commands: 5, patches: 0, requests: 2 });
}

#[test]
fn pending_calls_are_bounded() {
    let items: Vec<ResponseItem> = (0..(Ledger::MAX_PENDING + 3))
        .map(|n| function_call(&format!("c{n}"), "read_file", json!({ "path": "a.rs" })))
        .collect();
    let ledger = ledger_of(&items);
    assert_eq!(ledger.snapshot().pending.len(), Ledger::MAX_PENDING);
    assert_eq!(ledger.snapshot().pending[0].call_id, "c3");
}

#[test]
fn open_items_are_replaced_trimmed_and_bounded() {
    let mut ledger = Ledger::default();
    ledger.set_open_items(&[
        "  rerun the benches ".into(),
        String::new(),
        "update\nthe docs".into(),
    ]);
    assert_eq!(ledger.open_items(), ["rerun the benches", "update the docs"]);
    let many: Vec<String> = (0..80).map(|n| format!("item {n}")).collect();
    ledger.set_open_items(&many);
    assert_eq!(ledger.open_items().len(), Ledger::MAX_OPEN_ITEMS);
    ledger.set_open_items(&[]);
    assert!(ledger.is_empty());
}

/// A session's worth of items: several turns of reads, commands and patches.
fn session_items() -> Vec<ResponseItem> {
    let mut items = Vec::new();
    for turn in 0..6 {
        items.push(ResponseItem::user_text(format!("turn {turn}: keep going")));
        items.extend(read(&format!("r{turn}"), &format!("src/m{}.rs", turn % 4)));
        items.extend(shell(&format!("s{turn}"), "cargo test", i64::from(turn % 2)));
        let patch =
            format!("*** Begin Patch\n*** Update File: src/m{turn}.rs\n-a\n+b\n*** End Patch");
        items.push(function_call(&format!("p{turn}"), "apply_patch", json!({ "input": patch })));
        items.push(function_output(&format!("p{turn}"), "Done"));
    }
    // A call still waiting when the snapshot is taken.
    items.push(function_call("late", "read_file", json!({ "path": "src/late.rs" })));
    items
}

#[test]
fn replaying_after_a_snapshot_gives_the_same_ledger() {
    let items = session_items();
    let whole = {
        let mut all = items.clone();
        all.extend(read("x", "src/after.rs"));
        all.push(function_output("late", "late contents"));
        ledger_of(&all)
    };
    // Snapshot, through its JSON, then replay what came after.
    let before = ledger_of(&items);
    let json = serde_json::to_string(before.snapshot()).unwrap();
    let mut resumed = Ledger::from_snapshot(serde_json::from_str(&json).unwrap());
    let mut after = read("x", "src/after.rs").to_vec();
    after.push(function_output("late", "late contents"));
    record_all(&mut resumed, &after);
    assert_eq!(resumed, whole);
    assert!(resumed.snapshot().files.iter().any(|file| file.path == "src/late.rs"));
}

#[test]
fn a_snapshot_over_the_bounds_is_brought_within_them() {
    let mut snapshot = ledger_of(&session_items()).into_snapshot();
    let command = snapshot.commands[0].clone();
    snapshot.commands = vec![command; Ledger::MAX_COMMANDS + 4];
    let ledger = Ledger::from_snapshot(snapshot);
    assert_eq!(ledger.snapshot().commands.len(), Ledger::MAX_COMMANDS);
    assert_eq!(ledger.snapshot().evicted.commands, 4);
}

#[test]
fn cutting_is_char_safe() {
    assert_eq!(cut_text("é".repeat(300).as_str(), 10), format!("{}...", "é".repeat(7)));
    assert_eq!(cut_text("  a \n b  ", 10), "a b");
    assert_eq!(cut_path("src/\nx.rs"), "src/ x.rs");
    assert_eq!(
        bounded_effect(ToolEffect::File { path: "p".repeat(400), action: FileAction::Read }),
        ToolEffect::File {
            path: format!("{}...", "p".repeat(MAX_PATH_CHARS - 3)),
            action: FileAction::Read
        }
    );
}
