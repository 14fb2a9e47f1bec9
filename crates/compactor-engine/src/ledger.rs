//! The progress ledger (see D150 in docs/decisions.md): a bounded, deterministic record of what a
//! session has read, run and changed, extracted from its tool traffic as items are recorded, and
//! rendered into every compacted history so that the model does not redo finished work.

mod extract;
mod render;

use compactor_protocol::{
    ContextualMarkers, FileAction, LedgerCommand, LedgerFile, LedgerPatch, LedgerPendingCall,
    LedgerRequest, LedgerSnapshot, LocalShellAction, ResponseItem, RolloutItem, ToolEffect,
    ToolOutput, is_user_turn_boundary,
};

use crate::local::is_summary_message;

pub use extract::{CallOutcome, DefaultTools, ToolCallView, ToolExtractor, ToolInput};
pub use render::{LEDGER_TAG, is_ledger_message};

/// The longest text an entry keeps, in characters: a request's first line, a command, an open
/// item. Longer text is cut and ends with `...`.
const MAX_TEXT_CHARS: usize = 200;

/// The longest path an entry keeps, in characters.
const MAX_PATH_CHARS: usize = 300;

/// What the ledger needs besides the items: how to read the harness's tools, and which user
/// messages are the user speaking.
#[derive(Clone, Copy)]
pub struct LedgerRules<'a> {
    /// Describes tool calls and reads their outputs ([`DefaultTools`] for the common tools).
    pub tools: &'a dyn ToolExtractor,
    /// The markers of contextual user messages, which are not requests.
    pub markers: &'a ContextualMarkers,
}

impl std::fmt::Debug for LedgerRules<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerRules").field("markers", &self.markers).finish_non_exhaustive()
    }
}

/// The progress ledger of a session (D150).
///
/// It is updated with every item the session records ([`Ledger::record`]), in order, and with
/// the open items the harness declares ([`Ledger::set_open_items`]). It keeps:
///
/// - files read, written, created and deleted, each once, with every action and the user turn
///   it was last touched in: the newest [`Ledger::MAX_FILES`];
/// - commands with their exit code and whether they failed: the newest
///   [`Ledger::MAX_COMMANDS`];
/// - patches applied, with their files and line counts: the newest [`Ledger::MAX_PATCHES`];
/// - the first line of each real user message: the newest [`Ledger::MAX_REQUESTS`];
/// - the open items, at most [`Ledger::MAX_OPEN_ITEMS`].
///
/// A tool call's effects wait for its output (at most [`Ledger::MAX_PENDING`] calls wait); a
/// failed call records its command but no file or patch. What the bounds evict is counted.
/// A user turn starts at each real user message (a user-turn boundary that is not a
/// compaction summary), so replaying the same items from the same snapshot gives the same ledger.
///
/// The ledger is pure data: [`Ledger::snapshot`] and [`Ledger::from_snapshot`] convert it to
/// and from its persisted form, and [`Ledger::render`] writes the developer message a compacted
/// history carries.
///
/// # Examples
///
/// ```
/// use compactor_engine::{DefaultTools, Ledger, LedgerRules};
/// use compactor_protocol::{ContextualMarkers, ResponseItem, ToolOutput};
///
/// let markers = ContextualMarkers::default();
/// let rules = LedgerRules { tools: &DefaultTools, markers: &markers };
/// let mut ledger = Ledger::default();
/// for item in [
///     ResponseItem::user_text("fix the parser"),
///     ResponseItem::FunctionCall {
///         id: None,
///         name: "read_file".into(),
///         namespace: None,
///         arguments: r#"{"path":"src/parser.rs"}"#.into(),
///         call_id: "c1".into(),
///     },
///     ResponseItem::FunctionCallOutput {
///         call_id: "c1".into(),
///         output: ToolOutput::Text("fn parse() {}".into()),
///     },
/// ] {
///     ledger.record(&item, &rules);
/// }
/// let files = &ledger.snapshot().files;
/// assert_eq!(files[0].path, "src/parser.rs");
/// assert_eq!(files[0].last_turn, 1);
/// let message = ledger.render(2_000).unwrap();
/// assert!(message.message_text().unwrap().contains("src/parser.rs: read (turn 1)"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    state: LedgerSnapshot,
}

impl Ledger {
    /// The most files kept.
    pub const MAX_FILES: usize = 200;
    /// The most commands kept.
    pub const MAX_COMMANDS: usize = 100;
    /// The most patches kept.
    pub const MAX_PATCHES: usize = 50;
    /// The most user requests kept.
    pub const MAX_REQUESTS: usize = 50;
    /// The most open items kept.
    pub const MAX_OPEN_ITEMS: usize = 50;
    /// The most calls waiting for their output.
    pub const MAX_PENDING: usize = 64;

    /// The ledger `snapshot` describes, held within the bounds (the oldest entries past them go,
    /// counted as evicted).
    pub fn from_snapshot(snapshot: LedgerSnapshot) -> Self {
        let mut ledger = Self { state: snapshot };
        ledger.enforce_bounds();
        ledger
    }

    /// The ledger that the surviving lines of a rollout describe, `items` in file order (D153):
    /// the newest `compacted` line's ledger snapshot, then every item recorded after it, and the
    /// open items of the `open_items` lines after it. Without a snapshot, everything is replayed
    /// from the start.
    ///
    /// A live session updated with the same items from the same snapshot has the same ledger,
    /// so resume, rollback and fork, which all replay the surviving lines, restore it exactly.
    pub fn from_rollout<'l>(
        items: impl IntoIterator<Item = &'l RolloutItem>,
        rules: &LedgerRules<'_>,
    ) -> Self {
        let items: Vec<&RolloutItem> = items.into_iter().collect();
        let base = items.iter().rposition(
            |item| matches!(item, RolloutItem::Compacted(compacted) if compacted.ledger.is_some()),
        );
        let (mut ledger, replay_from) = match base.map(|index| (index, items[index])) {
            Some((index, RolloutItem::Compacted(compacted))) => {
                let snapshot = compacted.ledger.as_deref().cloned().unwrap_or_default();
                (Self::from_snapshot(snapshot), index + 1)
            }
            _ => (Self::default(), 0),
        };
        for item in &items[replay_from..] {
            match item {
                RolloutItem::ResponseItem(item) => ledger.record(item, rules),
                RolloutItem::OpenItems(open) => ledger.set_open_items(&open.open_items),
                RolloutItem::SessionMeta(_)
                | RolloutItem::Compacted(_)
                | RolloutItem::TurnContext(_)
                | RolloutItem::EventMsg(_)
                | RolloutItem::Pins(_)
                | RolloutItem::Unknown { .. } => {}
            }
        }
        ledger
    }

    /// The ledger's state, as a `compacted` rollout line persists it.
    pub fn snapshot(&self) -> &LedgerSnapshot {
        &self.state
    }

    /// The ledger's state, by value.
    pub fn into_snapshot(self) -> LedgerSnapshot {
        self.state
    }

    /// Whether the ledger holds nothing worth rendering: no entry, no open item, nothing
    /// evicted.
    pub fn is_empty(&self) -> bool {
        let state = &self.state;
        state.files.is_empty()
            && state.commands.is_empty()
            && state.patches.is_empty()
            && state.requests.is_empty()
            && state.open_items.is_empty()
            && state.evicted == compactor_protocol::LedgerEvicted::default()
    }

    /// Whether the ledger holds progress: a file, command or patch (kept or evicted), or an open
    /// item. User requests alone are no progress, and render nothing (D155): a compacted history
    /// keeps the newest user messages already.
    pub fn has_progress(&self) -> bool {
        let state = &self.state;
        let evicted = &state.evicted;
        !(state.files.is_empty()
            && state.commands.is_empty()
            && state.patches.is_empty()
            && state.open_items.is_empty()
            && evicted.files == 0
            && evicted.commands == 0
            && evicted.patches == 0)
    }

    /// The harness's open items.
    pub fn open_items(&self) -> &[String] {
        &self.state.open_items
    }

    /// Replaces the open items with `items` (empty ones dropped, each cut to a bounded length,
    /// at most [`Ledger::MAX_OPEN_ITEMS`]: the first ones).
    pub fn set_open_items(&mut self, items: &[String]) {
        self.state.open_items = items
            .iter()
            .map(|item| cut_text(item, MAX_TEXT_CHARS))
            .filter(|item| !item.is_empty())
            .take(Self::MAX_OPEN_ITEMS)
            .collect();
    }

    /// Updates the ledger with one recorded item.
    ///
    /// - A real user message starts a user turn and adds its first line as a request.
    /// - A tool call the extractor describes waits for its output; unknown tools are ignored.
    /// - A tool output completes its call: the extractor reads how it ended, a command is
    ///   recorded with its exit code, and a call that did not fail records its files and patch.
    /// - Everything else leaves the ledger as it is.
    pub fn record(&mut self, item: &ResponseItem, rules: &LedgerRules<'_>) {
        match item {
            ResponseItem::Message { .. } => {
                if is_user_turn_boundary(item, rules.markers) && !is_summary_message(item) {
                    self.state.turn += 1;
                    let text = item.message_text().unwrap_or_default();
                    let first_line = text.lines().map(str::trim).find(|line| !line.is_empty());
                    let text = cut_text(first_line.unwrap_or("(no text)"), MAX_TEXT_CHARS);
                    let entry = LedgerRequest { text, turn: self.state.turn, seq: self.next_seq() };
                    push_bounded(
                        &mut self.state.requests,
                        entry,
                        Self::MAX_REQUESTS,
                        &mut self.state.evicted.requests,
                    );
                }
            }
            ResponseItem::FunctionCall { name, namespace, arguments, call_id, .. } => {
                let view = ToolCallView {
                    name,
                    namespace: namespace.as_deref(),
                    input: ToolInput::Arguments(arguments),
                };
                self.wait_for_output(call_id, &view, rules.tools);
            }
            ResponseItem::CustomToolCall { name, input, call_id, .. } => {
                let view =
                    ToolCallView { name, namespace: None, input: ToolInput::Freeform(input) };
                self.wait_for_output(call_id, &view, rules.tools);
            }
            ResponseItem::LocalShellCall { call_id: Some(call_id), action, .. } => {
                let LocalShellAction::Exec { command, .. } = action.as_ref();
                let view = ToolCallView {
                    name: "local_shell_call",
                    namespace: None,
                    input: ToolInput::Argv(command),
                };
                self.wait_for_output(call_id, &view, rules.tools);
            }
            ResponseItem::FunctionCallOutput { call_id, output }
            | ResponseItem::CustomToolCallOutput { call_id, output, .. } => {
                self.complete(call_id, output, rules.tools);
            }
            ResponseItem::LocalShellCall { call_id: None, .. }
            | ResponseItem::Reasoning { .. }
            | ResponseItem::ToolSearchCall { .. }
            | ResponseItem::ToolSearchOutput { .. }
            | ResponseItem::WebSearchCall { .. }
            | ResponseItem::ImageGenerationCall { .. }
            | ResponseItem::Compaction { .. }
            | ResponseItem::ContextCompaction { .. }
            | ResponseItem::CompactionTrigger
            | ResponseItem::Unknown(_) => {}
        }
    }

    /// Keeps the effects of a call the extractor describes until its output arrives.
    fn wait_for_output(
        &mut self,
        call_id: &str,
        call: &ToolCallView<'_>,
        tools: &dyn ToolExtractor,
    ) {
        let effects = tools.effects(call);
        if effects.is_empty() {
            return;
        }
        let pending = &mut self.state.pending;
        pending.retain(|waiting| waiting.call_id != call_id);
        pending.push(LedgerPendingCall {
            call_id: call_id.to_owned(),
            tool: call.name.to_owned(),
            effects: effects.into_iter().map(bounded_effect).collect(),
        });
        if pending.len() > Self::MAX_PENDING {
            pending.remove(0);
        }
    }

    /// Records the effects of the call `call_id` answers, as its `output` says it ended.
    fn complete(&mut self, call_id: &str, output: &ToolOutput, tools: &dyn ToolExtractor) {
        let Some(position) = self.state.pending.iter().position(|call| call.call_id == call_id)
        else {
            return;
        };
        let call = self.state.pending.remove(position);
        let outcome = tools.outcome(&call.tool, output);
        for effect in call.effects {
            match effect {
                ToolEffect::Command { command } => {
                    let entry = LedgerCommand {
                        command,
                        exit_code: outcome.exit_code,
                        failed: outcome.failed,
                        turn: self.state.turn,
                        seq: self.next_seq(),
                    };
                    push_bounded(
                        &mut self.state.commands,
                        entry,
                        Self::MAX_COMMANDS,
                        &mut self.state.evicted.commands,
                    );
                }
                ToolEffect::File { path, action } => {
                    if !outcome.failed {
                        self.touch(path, action);
                    }
                }
                ToolEffect::Patch { files, added_lines, removed_lines } => {
                    if outcome.failed {
                        continue;
                    }
                    for file in &files {
                        self.touch(file.path.clone(), file.action);
                    }
                    let entry = LedgerPatch {
                        files,
                        added_lines,
                        removed_lines,
                        turn: self.state.turn,
                        seq: self.next_seq(),
                    };
                    push_bounded(
                        &mut self.state.patches,
                        entry,
                        Self::MAX_PATCHES,
                        &mut self.state.evicted.patches,
                    );
                }
            }
        }
    }

    /// Records `action` on the file at `path`, which becomes the most recently touched.
    fn touch(&mut self, path: String, action: FileAction) {
        let seq = self.next_seq();
        let turn = self.state.turn;
        let files = &mut self.state.files;
        let mut file = match files.iter().position(|file| file.path == path) {
            Some(position) => files.remove(position),
            None => LedgerFile { path, actions: Vec::new(), last_turn: turn, seq },
        };
        if let Err(at) = file.actions.binary_search(&action) {
            file.actions.insert(at, action);
        }
        file.last_turn = turn;
        file.seq = seq;
        push_bounded(files, file, Self::MAX_FILES, &mut self.state.evicted.files);
    }

    fn next_seq(&mut self) -> u64 {
        let seq = self.state.next_seq;
        self.state.next_seq += 1;
        seq
    }

    fn enforce_bounds(&mut self) {
        let state = &mut self.state;
        let evicted = &mut state.evicted;
        evict_oldest(&mut state.files, Self::MAX_FILES, &mut evicted.files);
        evict_oldest(&mut state.commands, Self::MAX_COMMANDS, &mut evicted.commands);
        evict_oldest(&mut state.patches, Self::MAX_PATCHES, &mut evicted.patches);
        evict_oldest(&mut state.requests, Self::MAX_REQUESTS, &mut evicted.requests);
        state.open_items.truncate(Self::MAX_OPEN_ITEMS);
        let extra_pending = state.pending.len().saturating_sub(Self::MAX_PENDING);
        state.pending.drain(..extra_pending);
    }
}

/// Appends `entry`, evicting (and counting) the oldest entries past `max`.
fn push_bounded<T>(entries: &mut Vec<T>, entry: T, max: usize, evicted: &mut u64) {
    entries.push(entry);
    evict_oldest(entries, max, evicted);
}

fn evict_oldest<T>(entries: &mut Vec<T>, max: usize, evicted: &mut u64) {
    let extra = entries.len().saturating_sub(max);
    if extra > 0 {
        entries.drain(..extra);
        *evicted = evicted.saturating_add(extra as u64);
    }
}

/// `effect` with its texts cut to the ledger's bounds.
fn bounded_effect(effect: ToolEffect) -> ToolEffect {
    match effect {
        ToolEffect::Command { command } => {
            ToolEffect::Command { command: cut_text(&command, MAX_TEXT_CHARS) }
        }
        ToolEffect::File { path, action } => ToolEffect::File { path: cut_path(&path), action },
        ToolEffect::Patch { mut files, added_lines, removed_lines } => {
            for file in &mut files {
                file.path = cut_path(&file.path);
            }
            ToolEffect::Patch { files, added_lines, removed_lines }
        }
    }
}

/// `text` on one line (runs of whitespace, line breaks included, become one space), trimmed,
/// and cut to `max_chars` characters ending with `...` when it was longer.
fn cut_text(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars * 4));
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
        if out.len() > max_chars * 4 {
            break;
        }
    }
    cap_chars(out, max_chars)
}

/// A path as the ledger keeps it: control characters become spaces, then at most
/// [`MAX_PATH_CHARS`] characters.
fn cut_path(path: &str) -> String {
    let clean: String = path.trim().chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    cap_chars(clean, MAX_PATH_CHARS)
}

/// `text` cut to `max_chars` characters, ending with `...` when it was longer.
fn cap_chars(mut text: String, max_chars: usize) -> String {
    if let Some((cut, _)) = text.char_indices().nth(max_chars) {
        let keep = max_chars.saturating_sub(3);
        let keep_at = text.char_indices().nth(keep).map_or(cut, |(index, _)| index);
        text.truncate(keep_at);
        text.push_str("...");
    }
    text
}

#[cfg(test)]
mod tests;
