//! OpenAI's `o200k_base` encoding, through `bpe-openai` (D121).
//!
//! The vocabulary is compiled into the crate, so counting needs no file and no network. It is
//! loaded on first use (about a tenth of a second) and shared by every thread after that.
//! Counting is linear in the text whatever its shape, so a hostile tool output (a megabyte of
//! one character, of whitespace, of base64) costs what ordinary text of its size costs.

use std::sync::OnceLock;

use bpe_openai::Tokenizer;
use rustc_hash::FxHashSet;

/// The number of `o200k_base` tokens of `text`, encoded as ordinary text: a special token's
/// spelling (`<|endoftext|>`) is text like any other.
///
/// The text is split into pieces as the encoding's pattern splits it, and a piece that is one
/// token of the vocabulary counts one without running the byte-pair encoder, as OpenAI's own
/// tokenizer does: most pieces of prose, code and logs are whole tokens, and the encoder
/// allocates for every piece it encodes. The other pieces are encoded.
pub(crate) fn count(text: &str) -> u64 {
    let vocabulary = Vocabulary::get();
    let tokenizer = vocabulary.tokenizer;
    let text = tokenizer.normalize(text);
    let mut tokens = 0u64;
    for piece in tokenizer.split(text.as_str()) {
        tokens += if vocabulary.whole_tokens.contains(piece.as_bytes()) {
            1
        } else {
            tokenizer.bpe.count(piece.as_bytes()) as u64
        };
    }
    tokens
}

/// The tokenizer, and the byte strings of its tokens for the whole-token check.
struct Vocabulary {
    tokenizer: &'static Tokenizer,
    whole_tokens: FxHashSet<&'static [u8]>,
}

impl Vocabulary {
    fn get() -> &'static Self {
        static VOCABULARY: OnceLock<Vocabulary> = OnceLock::new();
        VOCABULARY.get_or_init(|| {
            let tokenizer = bpe_openai::o200k_base();
            let bpe = &tokenizer.bpe;
            let ids = 0..u32::try_from(bpe.num_tokens()).unwrap_or(u32::MAX);
            let whole_tokens = ids.map(|id| bpe.token_bytes(id)).collect();
            Self { tokenizer, whole_tokens }
        })
    }
}

#[cfg(test)]
mod tests;
