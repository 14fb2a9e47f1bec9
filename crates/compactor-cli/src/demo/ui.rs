//! What the demo shows while it runs: a progress bar with the current step on a terminal
//! (stderr, hidden otherwise), and one line per turn and per compaction on stdout.

use std::time::Duration;

use compactor_analytics::CompactionEvent;
use compactor_protocol::{CompactionStatus, CompactionTrigger};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::format;

/// Where a compaction happened, for its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Moment {
    /// During turn N.
    InTurn(u32),
    /// The manual compaction after turn N.
    AfterTurn(u32),
}

/// The demo's display.
pub(crate) struct Ui {
    bar: ProgressBar,
    /// Whether the bar is drawn (stderr is a terminal).
    live: bool,
}

impl Ui {
    pub(crate) fn new(turns: u32) -> Self {
        let bar =
            ProgressBar::with_draw_target(Some(u64::from(turns)), ProgressDrawTarget::stderr());
        let live = !bar.is_hidden();
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner:.green} turn {pos:>2}/{len} [{bar:28.cyan/blue}] {elapsed:>3} {msg}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        if live {
            bar.enable_steady_tick(Duration::from_millis(100));
        }
        Self { bar, live }
    }

    /// Prints `text` on stdout without tearing the bar.
    pub(crate) fn line(&self, text: &str) {
        if self.live {
            self.bar.suspend(|| outln!("{text}"));
        } else {
            outln!("{text}");
        }
    }

    /// What is happening now (shown beside the bar).
    pub(crate) fn status(&self, message: String) {
        self.bar.set_message(message);
    }

    /// A turn finished: its line is printed and the bar moves.
    pub(crate) fn turn_done(&self, line: &str) {
        self.line(line);
        self.bar.inc(1);
    }

    /// Removes the bar.
    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// One line per compaction attempt: number, moment, trigger and phase, implementation, tokens
/// before -> after, duration, and the status when it did not complete.
pub(crate) fn compaction_line(number: usize, moment: Moment, event: &CompactionEvent) -> String {
    let when = match moment {
        Moment::InTurn(turn) => format!("in turn {turn}"),
        Moment::AfterTurn(turn) => format!("after turn {turn}"),
    };
    let trigger = match event.trigger {
        CompactionTrigger::Auto => "auto",
        CompactionTrigger::Manual => "manual",
    };
    let status = match event.status {
        CompactionStatus::Completed => String::new(),
        CompactionStatus::Failed | CompactionStatus::Interrupted | CompactionStatus::Skipped => {
            let error = event.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default();
            format!("  [{}{error}]", event.status)
        }
    };
    let attempt = match event.chain_length {
        0 | 1 => String::new(),
        length => format!(" (attempt {} of a chain of {length})", event.chain_position),
    };
    format!(
        "  compaction {number} {when}: {trigger} {}, {}{attempt}, {} -> {} tokens, {}{status}",
        event.phase,
        event.implementation,
        format::count(event.active_context_tokens_before),
        format::count(event.active_context_tokens_after),
        format::duration(Duration::from_millis(event.duration_ms)),
    )
}

#[cfg(test)]
mod tests;
