//! Tests of the default extractor, one group per tool shape, and of reading exit codes.

use compactor_protocol::{FileAction, PatchedFile, ToolEffect, ToolOutput};
use pretty_assertions::assert_eq;

use super::*;

#[track_caller]
fn check(name: &str, input: ToolInput<'_>, expected: &[ToolEffect]) {
    let call = ToolCallView { name, namespace: None, input };
    assert_eq!(DefaultTools.effects(&call), expected, "{name} {input:?}");
}

#[track_caller]
fn check_args(name: &str, arguments: &str, expected: &[ToolEffect]) {
    check(name, ToolInput::Arguments(arguments), expected);
}

fn command(command: &str) -> ToolEffect {
    ToolEffect::Command { command: command.to_owned() }
}

fn file(path: &str, action: FileAction) -> ToolEffect {
    ToolEffect::File { path: path.to_owned(), action }
}

fn patch(files: &[(&str, FileAction)], added_lines: u64, removed_lines: u64) -> ToolEffect {
    ToolEffect::Patch {
        files: files
            .iter()
            .map(|(path, action)| PatchedFile { path: (*path).to_owned(), action: *action })
            .collect(),
        added_lines,
        removed_lines,
    }
}

fn argv(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|part| (*part).to_owned()).collect()
}

#[test]
fn shell_tools_with_a_command_array() {
    check_args(
        "shell",
        r#"{"command":["cargo","test","-p","wal"]}"#,
        &[command("cargo test -p wal")],
    );
    check_args("exec", r#"{"command":["ls","-la","my dir"]}"#, &[command("ls -la 'my dir'")]);
    check_args("shell", r#"{"command":["echo","it's"]}"#, &[command(r"echo 'it'\''s'")]);
    // A shell running a script shows the script.
    check_args(
        "shell",
        r#"{"command":["bash","-lc","cargo test 2>&1 | tail"],"workdir":"/w"}"#,
        &[command("cargo test 2>&1 | tail")],
    );
    check_args("shell", r#"{"command":["/bin/sh","-c","make"]}"#, &[command("make")]);
}

#[test]
fn shell_tools_with_a_command_string() {
    check_args("shell", r#"{"command":"git status"}"#, &[command("git status")]);
    check_args("exec_command", r#"{"cmd":"rg TODO src"}"#, &[command("rg TODO src")]);
    check_args("bash", r#"{"command":"  make test  "}"#, &[command("make test")]);
    check_args("container.exec", r#"{"command":["pytest"]}"#, &[command("pytest")]);
}

#[test]
fn local_shell_call_items() {
    check(
        "local_shell_call",
        ToolInput::Argv(&argv(&["cargo", "build"])),
        &[command("cargo build")],
    );
    check("local_shell_call", ToolInput::Argv(&[]), &[]);
}

#[test]
fn shell_tools_without_a_readable_command_are_ignored() {
    check_args("shell", r#"{"command":""}"#, &[]);
    check_args("shell", r#"{"command":[1,2]}"#, &[]);
    check_args("shell", r#"{"workdir":"/w"}"#, &[]);
    check_args("shell", "not json", &[]);
    check("shell", ToolInput::Freeform("ls"), &[]);
}

const PATCH: &str = "*** Begin Patch
*** Add File: docs/notes.md
+# Notes
+first
*** Update File: src/wal/log.rs
@@ fn flush
-    old();
+    new();
+    more();
*** Delete File: src/legacy.rs
*** Update File: src/a.rs
*** Move to: src/b.rs
@@
-x
+y
*** End Patch";

fn patch_effect() -> ToolEffect {
    patch(
        &[
            ("docs/notes.md", FileAction::Created),
            ("src/wal/log.rs", FileAction::Written),
            ("src/legacy.rs", FileAction::Deleted),
            ("src/a.rs", FileAction::Deleted),
            ("src/b.rs", FileAction::Written),
        ],
        5,
        2,
    )
}

#[test]
fn apply_patch_reads_the_headers_and_counts_lines() {
    check("apply_patch", ToolInput::Freeform(PATCH), &[patch_effect()]);
    let arguments = serde_json::json!({ "input": PATCH }).to_string();
    check_args("apply_patch", &arguments, &[patch_effect()]);
    let arguments = serde_json::json!({ "patch": PATCH }).to_string();
    check_args("apply_patch", &arguments, &[patch_effect()]);
    // Handed the patch itself instead of JSON.
    check_args("apply_patch", PATCH, &[patch_effect()]);
}

#[test]
fn apply_patch_through_a_shell() {
    let arguments = serde_json::json!({ "command": ["apply_patch", PATCH] }).to_string();
    check_args("shell", &arguments, &[patch_effect()]);
    let script = format!("apply_patch <<'EOF'\n{PATCH}\nEOF\n");
    let arguments = serde_json::json!({ "command": ["bash", "-lc", script] }).to_string();
    check_args("shell", &arguments, &[patch_effect()]);
}

#[test]
fn apply_patch_reads_unified_diffs() {
    let diff = "diff --git a/src/x.rs b/src/x.rs
--- a/src/x.rs\t2026-05-01 10:00:00
+++ b/src/x.rs\t2026-05-01 10:01:00
@@ -1,2 +1,2 @@
 keep
--- removed line that looks like a header
+added
--- /dev/null
+++ b/src/new.rs
@@ -0,0 +1 @@
+fn main() {}
--- a/src/old.rs
+++ /dev/null
@@ -1 +0,0 @@
-gone";
    check(
        "apply_patch",
        ToolInput::Freeform(diff),
        &[patch(
            &[
                ("src/x.rs", FileAction::Written),
                ("src/new.rs", FileAction::Created),
                ("src/old.rs", FileAction::Deleted),
            ],
            2,
            2,
        )],
    );
}

#[test]
fn a_patch_that_names_no_file_is_ignored() {
    check("apply_patch", ToolInput::Freeform("*** Begin Patch\n*** End Patch"), &[]);
    check_args("apply_patch", r#"{"input":"hello"}"#, &[]);
    check_args("apply_patch", r#"{"other":"*** Add File: a"}"#, &[]);
}

#[test]
fn file_tools_with_a_path_argument() {
    check_args("read_file", r#"{"path":"src/lib.rs"}"#, &[file("src/lib.rs", FileAction::Read)]);
    check_args(
        "view_file",
        r#"{"file_path":"a.rs","offset":3}"#,
        &[file("a.rs", FileAction::Read)],
    );
    check_args(
        "write_file",
        r#"{"path":"a.rs","content":"x"}"#,
        &[file("a.rs", FileAction::Written)],
    );
    check_args("create_file", r#"{"filename":"n.rs"}"#, &[file("n.rs", FileAction::Created)]);
    check_args(
        "edit",
        r#"{"file_path":"a.rs","old_string":"x","new_string":"y"}"#,
        &[file("a.rs", FileAction::Written)],
    );
    check_args("str_replace", r#"{"target_file":"b.rs"}"#, &[file("b.rs", FileAction::Written)]);
    check_args("delete_file", r#"{"path":"old.rs"}"#, &[file("old.rs", FileAction::Deleted)]);
    check_args(
        "read_file",
        r#"{"paths":["a.rs","b.rs"]}"#,
        &[file("a.rs", FileAction::Read), file("b.rs", FileAction::Read)],
    );
    check_args("Read_File", r#"{"path":"c.rs"}"#, &[file("c.rs", FileAction::Read)]);
}

#[test]
fn file_tools_without_a_path_are_ignored() {
    check_args("read_file", r#"{"offset":1}"#, &[]);
    check_args("read_file", r#"{"path":"  "}"#, &[]);
    check_args("read_file", r#"{"path":7}"#, &[]);
    check_args("read_file", "[]", &[]);
}

#[test]
fn editor_tools_act_by_command() {
    let cases = [
        ("view", Some(FileAction::Read)),
        ("create", Some(FileAction::Created)),
        ("str_replace", Some(FileAction::Written)),
        ("insert", Some(FileAction::Written)),
        ("undo_edit", Some(FileAction::Written)),
        ("explode", None),
    ];
    for (command, action) in cases {
        let arguments = serde_json::json!({ "command": command, "path": "a.rs" }).to_string();
        let expected: Vec<ToolEffect> =
            action.map(|action| file("a.rs", action)).into_iter().collect();
        check_args("str_replace_based_edit_tool", &arguments, &expected);
    }
}

#[test]
fn unknown_tools_are_ignored_not_guessed() {
    check_args("web_fetch", r#"{"path":"https://example.com/a.rs"}"#, &[]);
    check_args("grep", r#"{"command":"rg x","path":"src"}"#, &[]);
    check("my_tool", ToolInput::Freeform("*** Add File: a.rs"), &[]);
    check("list_dir", ToolInput::Argv(&argv(&["ls"])), &[]);
}

#[track_caller]
fn check_outcome(output: &str, exit_code: Option<i64>, failed: bool) {
    let outcome = DefaultTools.outcome("shell", &ToolOutput::Text(output.to_owned()));
    assert_eq!(outcome, CallOutcome { exit_code, failed }, "{output}");
}

#[test]
fn exit_codes_from_json_metadata() {
    check_outcome(
        r#"{"output":"ok","metadata":{"exit_code":0,"duration_seconds":0.5}}"#,
        Some(0),
        false,
    );
    check_outcome(r#"{"output":"boom","metadata":{"exit_code":101}}"#, Some(101), true);
    check_outcome(r#"{"output":"","exit_code":2}"#, Some(2), true);
    check_outcome(r#"{"output":"","exitCode":-1}"#, Some(-1), true);
    check_outcome(
        r#"{"output":"slow","metadata":{"exit_code":0,"timed_out":true}}"#,
        Some(0),
        true,
    );
    check_outcome(r#"{"output":"no metadata"}"#, None, false);
}

#[test]
fn exit_codes_from_a_cut_json_head() {
    let cut = r#"{"output":"line 1\nline 2 [... 40 KB elided ...] end","metadata":{"exit_code":1"#;
    check_outcome(cut, Some(1), true);
    check_outcome(r#"{"metadata": {"exit_code" : 0, "dur"#, Some(0), false);
}

#[test]
fn exit_codes_from_header_lines() {
    check_outcome("Exit code: 0\nWall time: 1.2 seconds\nOutput:\nok", Some(0), false);
    check_outcome("Exit code: 1\nWall time: 0.1 seconds\nOutput:\nerror[E0308]", Some(1), true);
    check_outcome("Process exited with code 127\nbash: nope: command not found", Some(127), true);
    check_outcome("exit status: 3", Some(3), true);
    // Only the head: a line far down the output is just output.
    let late = format!("{}Exit code: 1", "line\n".repeat(20));
    check_outcome(&late, None, false);
}

#[test]
fn outputs_that_say_they_failed() {
    check_outcome("plain output", None, false);
    check_outcome("error: could not read src/x.rs", None, true);
    check_outcome("apply_patch verification failed: no such file", None, true);
    check_outcome("execution error: sandbox denied", None, true);
}

#[test]
fn content_outputs_are_read_by_their_text() {
    let output = ToolOutput::Content(vec![compactor_protocol::ContentItem::InputText {
        text: "Exit code: 4".into(),
    }]);
    assert_eq!(
        DefaultTools.outcome("shell", &output),
        CallOutcome { exit_code: Some(4), failed: true }
    );
}
