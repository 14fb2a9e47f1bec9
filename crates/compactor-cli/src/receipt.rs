//! Receipts and pins for people: what `show`, `compact` and `compact --dry-run` print.

use compactor_protocol::display::format_history_truncated;
use compactor_protocol::{
    CompactionReceipt, ItemOutcome, Pin, PinContent, PinPlacement, ReceiptStatus,
};

use crate::format;

/// How much of a pinned item or note one line shows.
const PIN_TEXT_CHARS: usize = 72;

/// The lines of a receipt, each indented by `indent`: what was compacted how, then where the
/// "before" tokens went, then the pins.
pub(crate) fn receipt_lines(receipt: &CompactionReceipt, indent: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let status = match receipt.status {
        ReceiptStatus::Completed => "",
        ReceiptStatus::Failed => " (failed)",
        ReceiptStatus::Preview => " (preview: nothing was sent or written)",
        ReceiptStatus::Other => " (status unknown to this version)",
    };
    lines.push(format!(
        "{indent}{} ({} of {} in the chain), {} {}{status}",
        receipt.implementation,
        receipt.chain_position,
        receipt.chain_length,
        receipt.trigger,
        receipt.reason,
    ));
    if let Some(error) = &receipt.error {
        lines.push(format!("{indent}  error: {error}"));
    }
    let after = receipt
        .tokens_after
        .map_or_else(|| "not known before the model answers".to_owned(), format::count);
    lines.push(format!(
        "{indent}  tokens before {} (estimate), after {after}",
        format::count(receipt.tokens_before)
    ));
    lines.push(format!("{indent}  {:<24}{:>7}{:>12}", "where they went", "items", "tokens"));
    let totals = &receipt.totals;
    for outcome in ItemOutcome::ALL {
        let Some(total) = totals.category(outcome) else { continue };
        if total.items == 0 {
            continue;
        }
        lines.push(format!(
            "{indent}  {:<24}{:>7}{:>12}",
            outcome.name().replace('_', " "),
            total.items,
            format::count(total.tokens)
        ));
    }
    lines.push(format!(
        "{indent}  {:<24}{:>7}{:>12}",
        "instructions",
        "",
        format::count(totals.instructions)
    ));
    lines.push(format!("{indent}  {:<24}{:>7}{:>12}", "tools", "", format::count(totals.tools)));
    lines.push(format!(
        "{indent}  {:<24}{:>7}{:>12}",
        "unattributed",
        "",
        format::count(totals.unattributed)
    ));
    let adds_up = if receipt.adds_up() { "=" } else { "!=" };
    lines.push(format!(
        "{indent}  {:<24}{:>7}{:>12} {adds_up} tokens before",
        "total",
        totals.items(),
        format::count(totals.sum())
    ));
    if !receipt.pins.is_empty() {
        let pins: Vec<String> = receipt
            .pins
            .iter()
            .map(|pin| {
                let placement = match pin.placement {
                    PinPlacement::PinSlot => "pin slot",
                    PinPlacement::SentAsInput => "sent as input",
                    PinPlacement::NotSent => "not sent",
                    PinPlacement::Other => "unknown",
                };
                format!("{} ({placement}, {} tokens)", pin.id, format::count(pin.tokens))
            })
            .collect();
        lines.push(format!("{indent}  pins: {}", pins.join(", ")));
    }
    if let Some(response_id) = &receipt.response_id {
        lines.push(format!("{indent}  response {response_id}"));
    }
    lines
}

/// One line per pin: its id, kind and the start of what it holds.
pub(crate) fn pin_lines(pins: &[Pin], indent: &str) -> Vec<String> {
    pins.iter()
        .map(|pin| {
            let text = match &pin.content {
                PinContent::Note(text) => format!("{text:?}"),
                PinContent::Item(item) => {
                    let rendered =
                        format_history_truncated(std::slice::from_ref(item), PIN_TEXT_CHARS);
                    // Drop the `00:` index the history rendering starts with.
                    rendered
                        .trim_end()
                        .split_once(':')
                        .map_or(rendered.clone(), |(_, rest)| rest.to_owned())
                }
            };
            let text = cut(&text);
            format!("{indent}{}  {:<4}  {text}", pin.id, pin.kind())
        })
        .collect()
}

/// `text` cut to [`PIN_TEXT_CHARS`] characters, on one line.
fn cut(text: &str) -> String {
    let one_line = text.replace('\n', "\\n");
    match one_line.char_indices().nth(PIN_TEXT_CHARS) {
        Some((at, _)) => format!("{}…", &one_line[..at]),
        None => one_line,
    }
}
