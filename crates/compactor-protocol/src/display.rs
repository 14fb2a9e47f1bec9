//! A compact text rendering of histories, one item per line as `NN:type/role:text`,
//! shared by snapshot tests and the CLI.

use std::fmt::Write as _;

use crate::items::{ContentItem, ResponseItem, content_text};

/// Renders `items` one per line, with full texts. Newlines inside a text are written as `\n`, so
/// each item stays on one line; a message with several parts lists them indented below it.
pub fn format_history(items: &[ResponseItem]) -> String {
    format_history_truncated(items, usize::MAX)
}

/// Like [`format_history`], cutting each text after `max_chars` characters and saying how many
/// were left out.
pub fn format_history_truncated(items: &[ResponseItem], max_chars: usize) -> String {
    let mut out = String::new();
    for (index, item) in items.iter().enumerate() {
        write_item(&mut out, index, item, max_chars);
    }
    out
}

fn write_item(out: &mut String, index: usize, item: &ResponseItem, max_chars: usize) {
    let _ = write!(out, "{index:02}:{}", item.item_type());
    match item {
        ResponseItem::Message { role, content, .. } => {
            let _ = write!(out, "/{role}");
            if content.len() > 1 {
                let _ = writeln!(out, "[{}]:", content.len());
                for (part_index, part) in content.iter().enumerate() {
                    let _ = write!(out, "    [{:02}] ", part_index + 1);
                    push_text(out, &part_text(part), max_chars);
                    out.push('\n');
                }
                return;
            }
            out.push(':');
            if let Some(part) = content.first() {
                push_text(out, &part_text(part), max_chars);
            }
        }
        ResponseItem::FunctionCall { name, .. } | ResponseItem::CustomToolCall { name, .. } => {
            let _ = write!(out, "/{name}");
        }
        ResponseItem::FunctionCallOutput { output, .. }
        | ResponseItem::CustomToolCallOutput { output, .. } => {
            out.push(':');
            push_text(out, &output.text(), max_chars);
        }
        ResponseItem::Reasoning { encrypted_content, .. } => {
            let _ = write!(out, ":encrypted={}", encrypted_content.is_some());
        }
        ResponseItem::Compaction { .. } => out.push_str(":encrypted=true"),
        ResponseItem::ContextCompaction { encrypted_content, .. } => match encrypted_content {
            Some(_) => out.push_str(":encrypted=true"),
            None => out.push_str(":trigger"),
        },
        ResponseItem::CompactionTrigger => out.push_str(":trigger"),
        ResponseItem::Unknown(_) => out.push_str(":unknown"),
        ResponseItem::LocalShellCall { .. }
        | ResponseItem::ToolSearchCall { .. }
        | ResponseItem::ToolSearchOutput { .. }
        | ResponseItem::WebSearchCall { .. }
        | ResponseItem::ImageGenerationCall { .. } => {}
    }
    out.push('\n');
}

fn part_text(part: &ContentItem) -> String {
    match part {
        ContentItem::InputImage { .. } => "<image>".to_owned(),
        ContentItem::Unknown(_) => "<unknown>".to_owned(),
        ContentItem::InputText { .. } | ContentItem::OutputText { .. } => {
            content_text(std::slice::from_ref(part)).unwrap_or_default()
        }
    }
}

fn push_text(out: &mut String, text: &str, max_chars: usize) {
    let mut chars = text.chars();
    for (written, ch) in chars.by_ref().enumerate() {
        if written == max_chars {
            let rest = 1 + chars.count();
            let _ = write!(out, "…(+{rest} chars)");
            return;
        }
        match ch {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            _ => out.push(ch),
        }
    }
}
