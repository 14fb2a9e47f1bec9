//! The ledger as one developer message within a token budget (see D152 in docs/decisions.md):
//! the newest entries win, and the older ones that do not fit are counted.

use std::fmt::Write as _;

use compactor_protocol::tokens::{TokenCounter, json_len, serialized_len};
use compactor_protocol::{
    ContentItem, LedgerCommand, LedgerFile, LedgerPatch, LedgerRequest, ResponseItem,
};

use super::Ledger;

/// The first line of every ledger message, by which a compacted history's ledger is recognized.
pub const LEDGER_TAG: &str = "<progress_ledger>";

/// The last line of every ledger message.
const LEDGER_END: &str = "</progress_ledger>";

/// What the message tells the model, after the tag.
const PREAMBLE: &str = "What this session has done so far, recorded by the harness from its \
tool calls. It survives compaction and replaces any earlier ledger. The files listed were \
already read or changed and the commands already run: do not redo them unless something changed \
since.";

/// Whether `item` is a ledger message: a developer message whose first text starts with
/// [`LEDGER_TAG`].
///
/// # Examples
///
/// ```
/// use compactor_engine::{LEDGER_TAG, is_ledger_message};
/// use compactor_protocol::ResponseItem;
///
/// assert!(is_ledger_message(&ResponseItem::developer_text(format!("{LEDGER_TAG}\n..."))));
/// assert!(!is_ledger_message(&ResponseItem::user_text(LEDGER_TAG)));
/// ```
pub fn is_ledger_message(item: &ResponseItem) -> bool {
    let ResponseItem::Message { role, content, .. } = item else { return false };
    role == "developer"
        && content
            .iter()
            .find_map(|part| match part {
                ContentItem::InputText { text } | ContentItem::OutputText { text } => Some(text),
                ContentItem::InputImage { .. } | ContentItem::Unknown(_) => None,
            })
            .is_some_and(|text| text.starts_with(LEDGER_TAG))
}

/// The sections of the message, in the order they are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Section {
    OpenItems,
    Requests,
    Files,
    Commands,
    Patches,
}

impl Section {
    const ALL: [Section; 5] = [
        Section::OpenItems,
        Section::Requests,
        Section::Files,
        Section::Commands,
        Section::Patches,
    ];

    fn header(self) -> &'static str {
        match self {
            Section::OpenItems => "Open items:",
            Section::Requests => "User requests:",
            Section::Files => "Files (what was done, last turn):",
            Section::Commands => "Commands run:",
            Section::Patches => "Patches applied:",
        }
    }

    /// How the footer counts the entries of this section that are not shown.
    fn noun(self, count: u64) -> String {
        let (one, many) = match self {
            Section::OpenItems => ("open item", "open items"),
            Section::Requests => ("user request", "user requests"),
            Section::Files => ("file", "files"),
            Section::Commands => ("command", "commands"),
            Section::Patches => ("patch", "patches"),
        };
        format!("{count} {}", if count == 1 { one } else { many })
    }
}

/// One line of the message, with its section and recency.
struct Line {
    section: Section,
    /// Open items come first, in their order; other entries by their sequence number.
    order: u64,
    text: String,
}

impl Ledger {
    /// The ledger as one developer message (starting with [`LEDGER_TAG`]) whose estimate is at
    /// most `budget_tokens`; `None` when the ledger is empty or not even its frame fits.
    ///
    /// The open items come first; then the newest entries of every kind, across kinds, for as
    /// long as they fit. Each section lists its shown entries oldest first, and a last line counts
    /// what is not shown: entries that did not fit and entries the bounds evicted.
    pub fn render(&self, budget_tokens: u64) -> Option<ResponseItem> {
        self.render_with(budget_tokens, TokenCounter::Bytes4)
    }

    /// [`Ledger::render`] with the message measured by `counter`, the session's (D120): the
    /// lines are chosen by their bytes, then the oldest shown are dropped until `counter` counts
    /// the whole message within `budget_tokens`.
    pub fn render_with(&self, budget_tokens: u64, counter: TokenCounter) -> Option<ResponseItem> {
        if !self.has_progress() {
            return None;
        }
        let lines = self.lines_by_priority();
        let budget_bytes =
            budget_tokens.saturating_mul(compactor_protocol::tokens::BYTES_PER_TOKEN);
        let envelope = serialized_len(&ResponseItem::developer_text(String::new()));
        let frame = envelope
            + escaped_len(LEDGER_TAG)
            + escaped_len(PREAMBLE)
            + escaped_len(LEDGER_END)
            + 2 * NEWLINE_BYTES;
        // Greedy by priority, each line at its exact escaped cost; a section's header counts with
        // its first line.
        let mut shown = 0usize;
        let mut used = frame;
        let mut opened = [false; Section::ALL.len()];
        for line in &lines {
            let mut cost = escaped_len(&line.text) + NEWLINE_BYTES;
            if !opened[line.section as usize] {
                cost += escaped_len(line.section.header()) + NEWLINE_BYTES;
            }
            if used + cost > budget_bytes {
                break;
            }
            used += cost;
            opened[line.section as usize] = true;
            shown += 1;
        }
        // The footer's length depends on what is left out: drop the oldest shown lines until the
        // whole message fits, measured as the estimate measures it.
        loop {
            let item = ResponseItem::developer_text(self.text(&lines[..shown]));
            if counter.item_tokens(&item) <= budget_tokens {
                return Some(item);
            }
            shown = shown.checked_sub(1)?;
        }
    }

    /// Every entry as a line, highest priority first: the open items, then every other entry
    /// newest first.
    fn lines_by_priority(&self) -> Vec<Line> {
        let state = self.snapshot();
        let mut lines: Vec<Line> = Vec::with_capacity(
            state.requests.len() + state.files.len() + state.commands.len() + state.patches.len(),
        );
        lines.extend(state.requests.iter().map(request_line));
        lines.extend(state.files.iter().map(file_line));
        lines.extend(state.commands.iter().map(command_line));
        lines.extend(state.patches.iter().map(patch_line));
        lines.sort_unstable_by_key(|line| std::cmp::Reverse(line.order));
        let open = state.open_items.iter().map(|item| Line {
            section: Section::OpenItems,
            order: u64::MAX,
            text: format!("- {item}"),
        });
        open.chain(lines).collect()
    }

    /// The message text showing the lines `shown`.
    fn text(&self, shown: &[Line]) -> String {
        let evicted = self.snapshot().evicted;
        let mut text = String::new();
        let _ = writeln!(text, "{LEDGER_TAG}\n{PREAMBLE}");
        let mut hidden: Vec<String> = Vec::new();
        for section in Section::ALL {
            let mut lines: Vec<&Line> =
                shown.iter().filter(|line| line.section == section).collect();
            if section != Section::OpenItems {
                lines.sort_unstable_by_key(|line| line.order);
            }
            if !lines.is_empty() {
                let _ = writeln!(text, "{}", section.header());
                for line in &lines {
                    let _ = writeln!(text, "{}", line.text);
                }
            }
            let in_section = self.section_len(section);
            let evicted = match section {
                Section::OpenItems => 0,
                Section::Requests => evicted.requests,
                Section::Files => evicted.files,
                Section::Commands => evicted.commands,
                Section::Patches => evicted.patches,
            };
            let not_shown = (in_section - lines.len()) as u64 + evicted;
            if not_shown > 0 {
                hidden.push(section.noun(not_shown));
            }
        }
        if !hidden.is_empty() {
            let _ = writeln!(text, "Older entries not shown: {}.", hidden.join(", "));
        }
        text.push_str(LEDGER_END);
        text
    }

    fn section_len(&self, section: Section) -> usize {
        let state = self.snapshot();
        match section {
            Section::OpenItems => state.open_items.len(),
            Section::Requests => state.requests.len(),
            Section::Files => state.files.len(),
            Section::Commands => state.commands.len(),
            Section::Patches => state.patches.len(),
        }
    }
}

/// The bytes of an escaped line break in JSON (`\n`).
const NEWLINE_BYTES: u64 = 2;

/// The bytes `text` takes inside a JSON string.
fn escaped_len(text: &str) -> u64 {
    json_len(text).saturating_sub(2)
}

fn request_line(request: &LedgerRequest) -> Line {
    Line {
        section: Section::Requests,
        order: request.seq,
        text: format!("- turn {}: {}", request.turn, request.text),
    }
}

fn file_line(file: &LedgerFile) -> Line {
    let actions: Vec<&str> = file.actions.iter().map(|action| action.name()).collect();
    Line {
        section: Section::Files,
        order: file.seq,
        text: format!("- {}: {} (turn {})", file.path, actions.join(", "), file.last_turn),
    }
}

fn command_line(command: &LedgerCommand) -> Line {
    let outcome = match (command.exit_code, command.failed) {
        (Some(code), true) => format!("exit {code}, failed"),
        (Some(code), false) => format!("exit {code}"),
        (None, true) => "failed".to_owned(),
        (None, false) => "no exit code".to_owned(),
    };
    Line {
        section: Section::Commands,
        order: command.seq,
        text: format!("- turn {}: {} ({outcome})", command.turn, command.command),
    }
}

fn patch_line(patch: &LedgerPatch) -> Line {
    let files: Vec<String> =
        patch.files.iter().map(|file| format!("{} ({})", file.path, file.action.name())).collect();
    Line {
        section: Section::Patches,
        order: patch.seq,
        text: format!(
            "- turn {}: {}; +{} -{} lines",
            patch.turn,
            files.join(", "),
            patch.added_lines,
            patch.removed_lines
        ),
    }
}

#[cfg(test)]
mod tests;
