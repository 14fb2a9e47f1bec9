//! The soak workload: a long coding session in a small window, for the long-session tests and
//! benches (see D105 in docs/decisions.md).
//!
//! [`SOAK_TURNS`] user turns against the reference model in a [`SOAK_CONTEXT_WINDOW`]-token
//! window. Most turns ask for a tool ([`SOAK_TOOL`]); its outputs range from 100 bytes to 2 MB,
//! so some are many times larger than the window. Some user messages are long pastes of logs or
//! code, and every tenth carries a screenshot.
//!
//! Everything is a pure function of the turn number. The sizes follow a cycle of
//! [`SOAK_CYCLE`] turns, so any run of whole cycles (the first 100 turns, the last 100) holds the
//! same sizes and differs only in text; that makes per-turn figures of different parts of a
//! session comparable. Texts are cut from one corpus generated once, so a turn costs the harness
//! a copy, not a generation.

use compactor_protocol::ContentItem;

use super::Rng;
use crate::model::{ReferenceModelConfig, ToolCallPolicy};

/// How many turns a soak runs.
pub const SOAK_TURNS: usize = 300;

/// The model's context window in a soak, in tokens.
pub const SOAK_CONTEXT_WINDOW: i64 = 32_000;

/// The turns after which the sizes repeat.
pub const SOAK_CYCLE: usize = 50;

/// The function the reference model calls in a soak.
pub const SOAK_TOOL: &str = "read_logs";

/// The words of a user message that make the reference model call [`SOAK_TOOL`].
pub const SOAK_TOOL_TRIGGER: &str = "run read_logs";

/// The smallest and the largest tool output, in bytes.
pub const SOAK_TOOL_OUTPUT_BYTES: (usize, usize) = (100, 2_000_000);

/// The corpus texts are cut from: a little more than the largest tool output.
const CORPUS_BYTES: usize = 2_100_000;

/// The seed of the soak's sizes.
const SEED: u64 = 0x51a7_c0de_0000_0020;

/// One user turn of a soak.
#[derive(Debug, Clone, PartialEq)]
pub struct SoakTurn {
    /// What the user sends: text (a short request or a long paste), and every tenth turn a
    /// screenshot.
    pub input: Vec<ContentItem>,
    /// The size of the output the harness returns when the model calls [`SOAK_TOOL`] in this
    /// turn; `None` for turns that ask for no tool.
    pub tool_output_bytes: Option<usize>,
}

/// The soak workload (see the module docs).
#[derive(Debug, Clone)]
pub struct Soak {
    corpus: String,
}

impl Default for Soak {
    fn default() -> Self {
        let mut rng = Rng(SEED ^ 0xc0_4b05);
        let mut corpus = String::with_capacity(CORPUS_BYTES + 64);
        let mut line = 0u64;
        while corpus.len() < CORPUS_BYTES {
            line += 1;
            corpus.push_str(&format!("{line:07} "));
            corpus.push_str(&rng.words(40, 160));
        }
        Self { corpus }
    }
}

impl Soak {
    /// The turn numbered `turn` (from 0).
    ///
    /// # Examples
    ///
    /// ```
    /// use compactor_testkit::workload::soak::{SOAK_CYCLE, Soak};
    ///
    /// let soak = Soak::default();
    /// let (first, later) = (soak.turn(3), soak.turn(3 + 2 * SOAK_CYCLE));
    /// assert_eq!(first.tool_output_bytes, later.tool_output_bytes);
    /// assert_ne!(first.input, later.input);
    /// ```
    pub fn turn(&self, turn: usize) -> SoakTurn {
        let mut rng = Rng(SEED ^ (turn % SOAK_CYCLE) as u64);
        let asks_for_tool = rng.below(5) != 0;
        let long_paste = rng.below(6) == 0;
        let text_bytes = if long_paste { rng.size(4_000, 28_000) } else { rng.size(40, 600) };
        let (min, max) = SOAK_TOOL_OUTPUT_BYTES;
        let tool_output_bytes = rng.size(min as u64, max as u64);
        let screenshot_bytes = rng.size(8_000, 40_000);

        let request = if asks_for_tool {
            format!("Turn {turn}: {SOAK_TOOL_TRIGGER} and tell me what failed.")
        } else {
            format!("Turn {turn}: summarize where we are.")
        };
        let mut text = request;
        if long_paste {
            text.push_str("\nHere is what I see:\n");
        } else {
            text.push(' ');
        }
        text.push_str(self.cut(turn.wrapping_mul(7_919), text_bytes));
        let mut input = vec![ContentItem::InputText { text }];
        if turn.is_multiple_of(10) {
            input.push(ContentItem::InputImage {
                image_url: screenshot(turn as u64, screenshot_bytes),
                detail: None,
            });
        }
        SoakTurn { input, tool_output_bytes: asks_for_tool.then_some(tool_output_bytes) }
    }

    /// The output of the tool call of turn `turn`: `bytes` bytes (give or take a character) of
    /// log and code text.
    pub fn tool_output(&self, turn: usize, bytes: usize) -> String {
        self.cut(turn.wrapping_mul(104_729), bytes).to_owned()
    }

    /// `bytes` bytes of the corpus from a position derived from `seed`, on character boundaries.
    fn cut(&self, seed: usize, bytes: usize) -> &str {
        let bytes = bytes.min(self.corpus.len());
        let room = self.corpus.len() - bytes;
        let start = self.corpus.floor_char_boundary(seed % room.max(1));
        let end = self.corpus.floor_char_boundary(start + bytes);
        &self.corpus[start..end]
    }
}

/// The reference model's settings for a soak: it calls [`SOAK_TOOL`] whenever the user's message
/// asks for it.
pub fn soak_model_config() -> ReferenceModelConfig {
    ReferenceModelConfig {
        tool_calls: ToolCallPolicy::OnUserText {
            trigger: SOAK_TOOL_TRIGGER.to_owned(),
            name: SOAK_TOOL.to_owned(),
            arguments: r#"{"path":"target/test.log"}"#.to_owned(),
        },
        ..ReferenceModelConfig::default()
    }
}

/// A PNG screenshot of `bytes` bytes of base64, as a `data:` URL.
fn screenshot(seed: u64, bytes: usize) -> String {
    let mut rng = Rng(SEED ^ seed.wrapping_mul(0x9e37_79b9));
    format!("data:image/png;base64,iVBORw0KGgo{}", rng.base64(bytes))
}

#[cfg(test)]
mod tests;
