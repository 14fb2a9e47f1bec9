//! What a tool call means for the ledger (see D151 in docs/decisions.md): the [`ToolExtractor`]
//! trait a harness implements to describe its own tools, and [`DefaultTools`], which knows the
//! common tool shapes and ignores every other tool.

use compactor_protocol::{FileAction, PatchedFile, ToolEffect, ToolOutput};
use serde_json::{Map, Value};

/// How far into an output its exit code is looked for, in bytes: metadata comes first, and
/// truncation on record keeps the head of an output.
const OUTCOME_HEAD_BYTES: usize = 4096;

/// How many leading lines of an output may hold a textual exit-code header.
const OUTCOME_HEAD_LINES: usize = 8;

/// One tool call as the ledger sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolCallView<'a> {
    /// The tool's name (`local_shell_call` for a `local_shell_call` item).
    pub name: &'a str,
    /// The tool's namespace, for namespaced function tools.
    pub namespace: Option<&'a str>,
    /// What the model passed.
    pub input: ToolInput<'a>,
}

/// The input of a tool call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolInput<'a> {
    /// A function call's arguments: a JSON document as a string.
    Arguments(&'a str),
    /// A custom (freeform) tool call's input.
    Freeform(&'a str),
    /// A `local_shell_call`'s argv.
    Argv(&'a [String]),
}

/// How a tool call ended, read from its output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallOutcome {
    /// The exit code, when the output says.
    pub exit_code: Option<i64>,
    /// Whether the call failed: a non-zero exit code, a time-out, or an output that starts by
    /// saying so.
    pub failed: bool,
}

/// Describes a harness's tools to the ledger.
///
/// A harness with tools of its own implements it, and can hand the calls it does not know to
/// [`DefaultTools`]. The ledger never guesses: a call for which [`ToolExtractor::effects`]
/// returns nothing is ignored.
///
/// # Examples
///
/// ```
/// use compactor_engine::{DefaultTools, ToolCallView, ToolExtractor, ToolInput};
/// use compactor_protocol::{FileAction, ToolEffect};
///
/// /// A harness whose `open` tool takes the file name as its whole input.
/// struct MyTools;
///
/// impl ToolExtractor for MyTools {
///     fn effects(&self, call: &ToolCallView<'_>) -> Vec<ToolEffect> {
///         match (call.name, call.input) {
///             ("open", ToolInput::Freeform(path)) => {
///                 vec![ToolEffect::File { path: path.to_owned(), action: FileAction::Read }]
///             }
///             _ => DefaultTools.effects(call),
///         }
///     }
/// }
///
/// let call = ToolCallView { name: "open", namespace: None, input: ToolInput::Freeform("a.rs") };
/// assert_eq!(
///     MyTools.effects(&call),
///     [ToolEffect::File { path: "a.rs".into(), action: FileAction::Read }]
/// );
/// ```
pub trait ToolExtractor: Send + Sync {
    /// What `call` does: commands run, files touched, patches applied; empty for a tool this
    /// extractor does not describe.
    fn effects(&self, call: &ToolCallView<'_>) -> Vec<ToolEffect>;

    /// How the call of `tool` that `output` answers ended. The default reads an exit code from
    /// the output's metadata when present (see [`DefaultTools`]).
    fn outcome(&self, tool: &str, output: &ToolOutput) -> CallOutcome {
        let _ = tool;
        read_outcome(output)
    }
}

/// The default extractor, for the common tool shapes:
///
/// - shell tools (`shell`, `exec`, `exec_command`, `shell_command`, `local_shell`, `bash`,
///   `container.exec`, and `local_shell_call` items): a command as an argv array or a string
///   (`command`, or `cmd`); `bash -lc SCRIPT` and the like are shown as their script, and an
///   argv or script that runs `apply_patch` is a patch;
/// - `apply_patch`, as a function (`input` or `patch` argument) or a freeform tool: the files
///   its headers name (`*** Add File:`, `*** Update File:`, `*** Delete File:`,
///   `*** Move to:`, or unified-diff `---`/`+++` headers) and the lines it adds and removes;
/// - file tools with a path argument (`path`, `file_path`, `filepath`, `filename`, `file`,
///   `target_file`, or a `paths` array): `read_file`, `view_file`, `open_file`, `read` (read);
///   `write_file`, `write` (written); `create_file` (created); `edit`, `edit_file`,
///   `str_replace`, `multi_edit`, `replace_in_file`, `insert` (written); `delete_file`,
///   `remove_file` (deleted); editor tools with a `command` (`str_replace_based_edit_tool`,
///   `str_replace_editor`, `text_editor`: `view` reads, `create` creates, the others write).
///
/// Any other tool is ignored. An output's exit code comes from its metadata: a JSON output's
/// `metadata.exit_code` (or a top-level `exit_code`), an `"exit_code":` in the head of an output
/// that truncation left unparseable, or an `Exit code: N` line among its first lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DefaultTools;

/// The kinds of tools [`DefaultTools`] knows, by name.
enum Known {
    Shell,
    Patch,
    File(FileAction),
    Editor,
}

fn known(name: &str) -> Option<Known> {
    let known = match name.to_ascii_lowercase().as_str() {
        "shell" | "exec" | "exec_command" | "shell_command" | "local_shell"
        | "local_shell_call" | "bash" | "container.exec" => Known::Shell,
        "apply_patch" => Known::Patch,
        "read_file" | "view_file" | "open_file" | "read" => Known::File(FileAction::Read),
        "write_file" | "write" | "edit" | "edit_file" | "str_replace" | "multi_edit"
        | "multiedit" | "replace_in_file" | "insert" => Known::File(FileAction::Written),
        "create_file" => Known::File(FileAction::Created),
        "delete_file" | "remove_file" => Known::File(FileAction::Deleted),
        "str_replace_based_edit_tool" | "str_replace_editor" | "text_editor" => Known::Editor,
        _ => return None,
    };
    Some(known)
}

impl ToolExtractor for DefaultTools {
    fn effects(&self, call: &ToolCallView<'_>) -> Vec<ToolEffect> {
        let Some(kind) = known(call.name) else { return Vec::new() };
        match (kind, call.input) {
            (Known::Shell, ToolInput::Argv(argv)) => argv_effects(argv),
            (Known::Patch, ToolInput::Freeform(patch)) => patch_effects(patch),
            (_, ToolInput::Freeform(_) | ToolInput::Argv(_)) => Vec::new(),
            (kind, ToolInput::Arguments(arguments)) => {
                let Ok(Value::Object(args)) = serde_json::from_str::<Value>(arguments) else {
                    // A patch tool that was handed the patch itself rather than JSON.
                    return match kind {
                        Known::Patch => patch_effects(arguments),
                        Known::Shell | Known::File(_) | Known::Editor => Vec::new(),
                    };
                };
                match kind {
                    Known::Shell => shell_effects(&args),
                    Known::Patch => ["input", "patch"]
                        .iter()
                        .find_map(|key| args.get(*key).and_then(Value::as_str))
                        .map(patch_effects)
                        .unwrap_or_default(),
                    Known::File(action) => file_effects(&args, action),
                    Known::Editor => editor_effects(&args),
                }
            }
        }
    }
}

/// A shell call's effects from its JSON arguments.
fn shell_effects(args: &Map<String, Value>) -> Vec<ToolEffect> {
    match args.get("command").or_else(|| args.get("cmd")) {
        Some(Value::Array(parts)) => {
            let argv: Vec<String> =
                parts.iter().filter_map(Value::as_str).map(str::to_owned).collect();
            if argv.len() == parts.len() { argv_effects(&argv) } else { Vec::new() }
        }
        Some(Value::String(script)) => script_effects(script),
        _ => Vec::new(),
    }
}

/// The effects of running `argv`.
fn argv_effects(argv: &[String]) -> Vec<ToolEffect> {
    let Some(program) = argv.first() else { return Vec::new() };
    let program = program.rsplit('/').next().unwrap_or(program);
    if matches!(program, "apply_patch" | "applypatch") {
        return argv.get(1).map(|patch| patch_effects(patch)).unwrap_or_default();
    }
    if argv.len() == 3
        && matches!(program, "bash" | "sh" | "zsh")
        && matches!(argv[1].as_str(), "-c" | "-lc" | "-ic")
    {
        return script_effects(&argv[2]);
    }
    let command: Vec<String> = argv.iter().map(|arg| quote(arg)).collect();
    command_effect(&command.join(" "))
}

/// The effects of running a shell script: a patch when it runs `apply_patch` on a patch,
/// otherwise one command.
fn script_effects(script: &str) -> Vec<ToolEffect> {
    let trimmed = script.trim_start();
    if trimmed.starts_with("apply_patch") && trimmed.contains("*** Begin Patch") {
        return patch_effects(trimmed);
    }
    command_effect(script)
}

fn command_effect(command: &str) -> Vec<ToolEffect> {
    if command.trim().is_empty() {
        return Vec::new();
    }
    vec![ToolEffect::Command { command: command.trim().to_owned() }]
}

/// `arg` as a shell would need it written: as it is when it holds only safe characters, single-
/// quoted otherwise.
fn quote(arg: &str) -> String {
    let safe = !arg.is_empty()
        && arg.chars().all(|c| c.is_ascii_alphanumeric() || "_-./=:,+@%".contains(c));
    if safe { arg.to_owned() } else { format!("'{}'", arg.replace('\'', r"'\''")) }
}

/// The path arguments of a file tool.
fn paths(args: &Map<String, Value>) -> Vec<String> {
    const KEYS: [&str; 6] = ["path", "file_path", "filepath", "filename", "file", "target_file"];
    if let Some(path) = KEYS.iter().find_map(|key| args.get(*key).and_then(Value::as_str)) {
        return vec![path.to_owned()];
    }
    match args.get("paths") {
        Some(Value::Array(paths)) => {
            paths.iter().filter_map(Value::as_str).map(str::to_owned).collect()
        }
        _ => Vec::new(),
    }
}

fn file_effects(args: &Map<String, Value>, action: FileAction) -> Vec<ToolEffect> {
    paths(args)
        .into_iter()
        .filter(|path| !path.trim().is_empty())
        .map(|path| ToolEffect::File { path, action })
        .collect()
}

/// An editor tool's effects: its `command` decides the action.
fn editor_effects(args: &Map<String, Value>) -> Vec<ToolEffect> {
    let action = match args.get("command").and_then(Value::as_str) {
        Some("view") => FileAction::Read,
        Some("create") => FileAction::Created,
        Some("str_replace" | "insert" | "undo_edit" | "edit" | "write") => FileAction::Written,
        _ => return Vec::new(),
    };
    file_effects(args, action)
}

/// The part of a patch being read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    /// Outside any file's lines.
    Outside,
    /// Inside a file of the `*** Begin Patch` format: `+` and `-` lines count until the next
    /// `***` header.
    Envelope,
    /// Inside a unified-diff hunk, with the old and new lines it has left.
    Hunk { old: u64, new: u64 },
}

/// A patch's effect: the files its headers name and the lines it adds and removes; nothing when
/// it names no file.
fn patch_effects(patch: &str) -> Vec<ToolEffect> {
    let mut files: Vec<PatchedFile> = Vec::new();
    let mut added_lines = 0u64;
    let mut removed_lines = 0u64;
    let mut section = Section::Outside;
    let mut lines = patch.lines().peekable();
    let push = |files: &mut Vec<PatchedFile>, path: &str, action: FileAction| {
        let path = path.trim();
        if !path.is_empty() {
            files.push(PatchedFile { path: path.to_owned(), action });
        }
    };
    while let Some(line) = lines.next() {
        if let Section::Hunk { old, new } = section {
            // A hunk's lines are counted by its header, so a removed line that reads like a
            // header is still a removed line.
            section = match line.as_bytes().first() {
                Some(b'+') => {
                    added_lines += 1;
                    Section::Hunk { old, new: new.saturating_sub(1) }
                }
                Some(b'-') => {
                    removed_lines += 1;
                    Section::Hunk { old: old.saturating_sub(1), new }
                }
                Some(b'\\') => section,
                _ => Section::Hunk { old: old.saturating_sub(1), new: new.saturating_sub(1) },
            };
            if section == (Section::Hunk { old: 0, new: 0 }) {
                section = Section::Outside;
            }
            continue;
        }
        if let Some(path) = line.strip_prefix("*** Add File: ") {
            push(&mut files, path, FileAction::Created);
            section = Section::Envelope;
        } else if let Some(path) = line.strip_prefix("*** Update File: ") {
            push(&mut files, path, FileAction::Written);
            section = Section::Envelope;
        } else if let Some(path) = line.strip_prefix("*** Delete File: ") {
            push(&mut files, path, FileAction::Deleted);
            section = Section::Outside;
        } else if let Some(path) = line.strip_prefix("*** Move to: ") {
            // The file moves: its old path is gone, its new path written.
            if let Some(last) = files.last_mut() {
                last.action = FileAction::Deleted;
            }
            push(&mut files, path, FileAction::Written);
        } else if line.starts_with("*** ") || line.starts_with("diff --git ") {
            section = Section::Outside;
        } else if section == Section::Outside
            && let Some(old) = line.strip_prefix("--- ")
            && let Some(new) = lines.peek().and_then(|next| next.strip_prefix("+++ "))
        {
            let (old, new) = (diff_path(old), diff_path(new));
            lines.next();
            match (old, new) {
                (Some(old), None) => push(&mut files, old, FileAction::Deleted),
                (None, Some(new)) => push(&mut files, new, FileAction::Created),
                (_, Some(new)) => push(&mut files, new, FileAction::Written),
                (None, None) => {}
            }
        } else if let Some(counts) = line.strip_prefix("@@ -") {
            if let Some((old, new)) = hunk_counts(counts) {
                section = Section::Hunk { old, new };
            }
        } else if section == Section::Envelope {
            if line.starts_with('+') {
                added_lines += 1;
            } else if line.starts_with('-') {
                removed_lines += 1;
            }
        }
    }
    if files.is_empty() {
        return Vec::new();
    }
    vec![ToolEffect::Patch { files, added_lines, removed_lines }]
}

/// The old and new line counts of a hunk header after its `@@ -`: `1,3 +1,4 @@` gives (3, 4);
/// a count left out is 1.
fn hunk_counts(header: &str) -> Option<(u64, u64)> {
    let (old, rest) = header.split_once(" +")?;
    let new = rest.split_whitespace().next()?;
    let count = |range: &str| match range.split_once(',') {
        Some((_, count)) => count.parse().ok(),
        None => range.parse::<u64>().ok().map(|_| 1),
    };
    Some((count(old)?, count(new)?))
}

/// The path of a unified-diff header (`a/src/x.rs`, with an optional tab and timestamp after
/// it); `None` for `/dev/null`.
fn diff_path(header: &str) -> Option<&str> {
    let path = header.split('\t').next().unwrap_or(header).trim();
    if path == "/dev/null" || path.is_empty() {
        return None;
    }
    Some(path.strip_prefix("a/").or_else(|| path.strip_prefix("b/")).unwrap_or(path))
}

/// How a call ended, by its output's metadata (see [`DefaultTools`]).
fn read_outcome(output: &ToolOutput) -> CallOutcome {
    let text = output.text();
    let head = &text[..floor_char_boundary(&text, OUTCOME_HEAD_BYTES)];
    let parsed = match text.trim_start().starts_with('{') {
        true => serde_json::from_str::<Value>(&text).ok(),
        false => None,
    };
    let (exit_code, timed_out) = match parsed {
        Some(Value::Object(object)) => json_outcome(&object),
        _ => (raw_exit_code(head).or_else(|| header_exit_code(head)), false),
    };
    let failed = match exit_code {
        Some(code) => code != 0 || timed_out,
        None => timed_out || says_it_failed(head),
    };
    CallOutcome { exit_code, failed }
}

/// The exit code and time-out flag of a JSON output (`metadata.exit_code`, or `exit_code`).
fn json_outcome(object: &Map<String, Value>) -> (Option<i64>, bool) {
    let metadata = object.get("metadata").and_then(Value::as_object);
    let field = |key: &str| metadata.and_then(|m| m.get(key)).or_else(|| object.get(key));
    let exit_code = field("exit_code").or_else(|| field("exitCode")).and_then(Value::as_i64);
    let timed_out = field("timed_out").and_then(Value::as_bool).unwrap_or(false);
    (exit_code, timed_out)
}

/// An `"exit_code": N` in the head of an output that does not parse (truncation cut its JSON).
fn raw_exit_code(head: &str) -> Option<i64> {
    const KEY: &str = "\"exit_code\"";
    let rest = &head[head.find(KEY)? + KEY.len()..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    leading_integer(rest)
}

/// An exit code from a header line among the first lines: `Exit code: N`, `Exit status: N`,
/// `Process exited with code N`.
fn header_exit_code(head: &str) -> Option<i64> {
    head.lines().take(OUTCOME_HEAD_LINES).find_map(|line| {
        let line = line.trim();
        let lower = line.to_ascii_lowercase();
        ["exit code:", "exit status:", "process exited with code"]
            .iter()
            .find_map(|prefix| lower.strip_prefix(prefix))
            .and_then(|rest| leading_integer(rest.trim_start()))
    })
}

/// Whether an output without an exit code starts by saying the call failed.
fn says_it_failed(head: &str) -> bool {
    let start = head.trim_start().to_ascii_lowercase();
    ["error:", "execution error", "apply_patch verification failed", "failed to apply patch"]
        .iter()
        .any(|prefix| start.starts_with(prefix))
}

fn leading_integer(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let len = digits.bytes().take_while(u8::is_ascii_digit).count();
    if len == 0 {
        return None;
    }
    let sign = if text.starts_with('-') { 1 } else { 0 };
    text[..sign + len].parse().ok()
}

/// The largest char boundary of `text` at or before `index`.
fn floor_char_boundary(text: &str, index: usize) -> usize {
    if index >= text.len() {
        return text.len();
    }
    (0..=index).rev().find(|&at| text.is_char_boundary(at)).unwrap_or(0)
}

#[cfg(test)]
mod tests;
