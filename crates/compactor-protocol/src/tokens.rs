//! Token counts: the [`TokenCounter`] every estimate goes through (D120), and the byte-based
//! heuristics of [`TokenCounter::Bytes4`] (D35): four bytes per token, rounded up.
//!
//! The engine and the testkit's reference model both count with these functions, so a session
//! counting with [`TokenCounter::O200k`] and the usage a test server reports agree exactly.

mod counter;
mod length;
#[cfg(feature = "o200k")]
mod o200k;

pub use counter::{TokenCalibration, TokenCountAccuracy, TokenCounter, UnknownTokenCounter};
pub use length::json_len;

use crate::items::{ContentItem, ResponseItem, ToolOutput};

/// Bytes per token of the heuristic.
pub const BYTES_PER_TOKEN: u64 = 4;

/// The estimated bytes of an inline image with any detail but `original`.
pub const IMAGE_ESTIMATE_BYTES: u64 = 7_373;

/// Fixed overhead subtracted from the decoded size of an encrypted blob.
pub const ENCRYPTED_OVERHEAD_BYTES: u64 = 650;

/// The most 32×32 patches an `original`-detail image is counted for.
pub const MAX_IMAGE_PATCHES: u64 = 10_000;

/// `ceil(len(text) / 4)`, on UTF-8 bytes.
pub fn approx_token_count(text: &str) -> u64 {
    approx_tokens_from_byte_count(text.len() as u64)
}

/// `ceil(bytes / 4)`.
pub fn approx_tokens_from_byte_count(bytes: u64) -> u64 {
    bytes.div_ceil(BYTES_PER_TOKEN)
}

/// `4 * tokens`.
pub fn approx_bytes_for_tokens(tokens: u64) -> u64 {
    tokens.saturating_mul(BYTES_PER_TOKEN)
}

/// The model-visible size of an encrypted blob of `encoded_len` base64 bytes:
/// `max(0, len * 3 / 4 - 650)`.
pub fn encrypted_blob_bytes(encoded_len: usize) -> u64 {
    ((encoded_len as u64).saturating_mul(3) / 4).saturating_sub(ENCRYPTED_OVERHEAD_BYTES)
}

/// The model-visible bytes of one item (D35).
///
/// Encrypted state (reasoning with `encrypted_content`, `compaction`, `context_compaction` with
/// content) counts as its decoded size minus overhead. Everything else counts as its JSON
/// serialization, with each inline `data:` image's base64 payload replaced by an image estimate.
/// Unknown items count zero: they reach a model only through the pass-through list, and the
/// caller that applies the list accounts for them. The item is serialized at most once and
/// nothing is allocated for it.
pub fn estimate_item_bytes(item: &ResponseItem) -> u64 {
    match encrypted_state(item) {
        Some(blob) => encrypted_blob_bytes(blob.len()),
        None => with_images_estimated(item, serialized_len(item)),
    }
}

/// The encrypted state `item` carries, which both counters count by its length alone.
pub(crate) fn encrypted_state(item: &ResponseItem) -> Option<&str> {
    match item {
        ResponseItem::Reasoning { encrypted_content: Some(blob), .. }
        | ResponseItem::Compaction { encrypted_content: blob, .. }
        | ResponseItem::ContextCompaction { encrypted_content: Some(blob), .. } => Some(blob),
        _ => None,
    }
}

/// `bytes`, the JSON length of `item` (or of its structure), with each inline image's base64
/// payload replaced by [`image_estimate_bytes`]: the one image rule of both counters.
pub(crate) fn with_images_estimated(item: &ResponseItem, bytes: u64) -> u64 {
    let mut bytes = bytes;
    for part in content_parts(item) {
        if let ContentItem::InputImage { image_url, detail } = part
            && let Some(payload_len) = data_url_payload_len(image_url)
        {
            bytes = bytes
                .saturating_sub(payload_len as u64)
                .saturating_add(image_estimate_bytes(image_url, detail.as_deref()));
        }
    }
    bytes
}

/// [`estimate_item_bytes`] in tokens.
pub fn estimate_item_tokens(item: &ResponseItem) -> u64 {
    approx_tokens_from_byte_count(estimate_item_bytes(item))
}

/// `approx_token_count(instructions) + Σ item tokens`, saturating (D35).
pub fn estimate_history_tokens(instructions: &str, items: &[ResponseItem]) -> u64 {
    items.iter().fold(approx_token_count(instructions), |acc, item| {
        acc.saturating_add(estimate_item_tokens(item))
    })
}

/// The length of `item`'s compact JSON serialization, counted without building the string
/// (see [`json_len`]).
pub fn serialized_len(item: &ResponseItem) -> u64 {
    json_len(item)
}

/// The content parts of a message or a tool output (empty for other items).
fn content_parts(item: &ResponseItem) -> &[ContentItem] {
    match item {
        ResponseItem::Message { content, .. } => content,
        ResponseItem::FunctionCallOutput { output: ToolOutput::Content(parts), .. }
        | ResponseItem::CustomToolCallOutput { output: ToolOutput::Content(parts), .. } => parts,
        _ => &[],
    }
}

/// The length of the base64 payload of a `data:image/...;base64,` URL, or `None` for other URLs.
fn data_url_payload_len(url: &str) -> Option<usize> {
    let rest = url.strip_prefix("data:image/")?;
    let comma = rest.find(";base64,")?;
    Some(rest.len() - comma - ";base64,".len())
}

/// The estimated bytes of one inline image: 7 373 unless the detail is `original`, where the
/// image's 32×32 patches are counted (capped) when its dimensions can be read.
pub fn image_estimate_bytes(url: &str, detail: Option<&str>) -> u64 {
    if detail != Some("original") {
        return IMAGE_ESTIMATE_BYTES;
    }
    let Some(payload) = url.find(";base64,").map(|at| &url[at + ";base64,".len()..]) else {
        return IMAGE_ESTIMATE_BYTES;
    };
    match image_dimensions(&decode_base64_prefix(payload, 64 * 1024)) {
        Some((width, height)) => {
            let patches = u64::from(width).div_ceil(32) * u64::from(height).div_ceil(32);
            patches.min(MAX_IMAGE_PATCHES) * BYTES_PER_TOKEN
        }
        None => IMAGE_ESTIMATE_BYTES,
    }
}

/// Decodes at most `max_out` bytes of standard base64, stopping at the first invalid character.
fn decode_base64_prefix(encoded: &str, max_out: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(max_out.min(encoded.len() * 3 / 4 + 3));
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for byte in encoded.bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => break,
        };
        acc = (acc << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            if out.len() >= max_out {
                break;
            }
        }
    }
    out
}

/// Width and height of a PNG, GIF, JPEG or WebP image from its leading bytes.
fn image_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    let be16 =
        |at: usize| Some(u32::from(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?])));
    let le16 =
        |at: usize| Some(u32::from(u16::from_le_bytes([*bytes.get(at)?, *bytes.get(at + 1)?])));
    let be32 = |at: usize| {
        let b = bytes.get(at..at + 4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let le24 = |at: usize| {
        let b = bytes.get(at..at + 3)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], 0]))
    };
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some((be32(16)?, be32(20)?));
    }
    if bytes.starts_with(b"GIF8") {
        return Some((le16(6)?, le16(8)?));
    }
    if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        return match bytes.get(12..16)? {
            b"VP8X" => Some((le24(24)? + 1, le24(27)? + 1)),
            b"VP8L" => {
                let b = bytes.get(21..25)?;
                let bits = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                Some(((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1))
            }
            b"VP8 " => Some((le16(26)? & 0x3fff, le16(28)? & 0x3fff)),
            _ => None,
        };
    }
    if bytes.starts_with(&[0xff, 0xd8]) {
        // Walk the JPEG segments to the first start-of-frame marker.
        let mut at = 2;
        while at + 9 < bytes.len() {
            if bytes.get(at) != Some(&0xff) {
                return None;
            }
            let marker = *bytes.get(at + 1)?;
            let len = be16(at + 2)? as usize;
            let is_sof = matches!(marker, 0xc0..=0xcf) && !matches!(marker, 0xc4 | 0xc8 | 0xcc);
            if is_sof {
                return Some((be16(at + 7)?, be16(at + 5)?));
            }
            at += 2 + len;
        }
    }
    None
}

#[cfg(test)]
mod tests;
