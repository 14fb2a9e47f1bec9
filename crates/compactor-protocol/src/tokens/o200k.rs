//! OpenAI's `o200k_base` encoding, through `bpe-openai` (D121).
//!
//! The vocabulary is compiled into the crate, so counting needs no file and no network. It is
//! loaded on first use (about a tenth of a second) and shared by every thread after that.
//! Counting is linear in the text whatever its shape, so a hostile tool output (a megabyte of
//! one character, of whitespace, of base64) costs what ordinary text of its size costs.

/// The number of `o200k_base` tokens of `text`, encoded as ordinary text: a special token's
/// spelling (`<|endoftext|>`) is text like any other.
pub(crate) fn count(text: &str) -> u64 {
    bpe_openai::o200k_base().count(text) as u64
}

#[cfg(test)]
mod tests;
