//! Table tests of the token estimates (D35).

use pretty_assertions::assert_eq;
use serde_json::json;

use super::*;

#[test]
fn text_is_four_bytes_per_token_rounded_up() {
    for (text, tokens) in
        [("", 0), ("a", 1), ("abcd", 1), ("abcde", 2), ("12345678", 2), ("é", 1), ("日本語", 3)]
    {
        assert_eq!(approx_token_count(text), tokens, "{text:?}");
    }
    assert_eq!(approx_tokens_from_byte_count(9), 3);
    assert_eq!(approx_bytes_for_tokens(3), 12);
}

#[test]
fn encrypted_blobs_count_decoded_size_minus_overhead() {
    for (len, bytes) in [(0, 0), (866, 0), (868, 1), (4000, 2350)] {
        assert_eq!(encrypted_blob_bytes(len), bytes, "len {len}");
    }
    let blob = "A".repeat(4000);
    for item in [
        ResponseItem::Reasoning {
            id: None,
            summary: vec![],
            content: None,
            encrypted_content: Some(blob.clone()),
        },
        ResponseItem::Compaction { id: None, encrypted_content: blob.clone(), created_by: None },
        ResponseItem::ContextCompaction { id: None, encrypted_content: Some(blob.clone()) },
    ] {
        assert_eq!(estimate_item_bytes(&item), 2350, "{item:?}");
        assert_eq!(estimate_item_tokens(&item), 588);
    }
}

#[test]
fn plain_items_count_their_serialization() {
    let item = ResponseItem::user_text("hello world");
    let wire = serde_json::to_string(&item).unwrap();
    assert_eq!(estimate_item_bytes(&item), wire.len() as u64);
    assert_eq!(serialized_len(&item), wire.len() as u64);
    let trigger = ResponseItem::context_compaction_trigger();
    assert_eq!(estimate_item_bytes(&trigger), r#"{"type":"context_compaction"}"#.len() as u64);
}

#[test]
fn unknown_items_count_their_raw_json() {
    let raw = json!({"type": "ghost_snapshot", "ghost_commit": {"id": "g1"}});
    let item: ResponseItem = serde_json::from_value(raw.clone()).unwrap();
    assert_eq!(estimate_item_bytes(&item), raw.to_string().len() as u64);
}

#[test]
fn inline_images_count_a_fixed_estimate() {
    let payload = "B".repeat(100_000);
    let url = format!("data:image/png;base64,{payload}");
    let with_image = ResponseItem::Message {
        id: None,
        role: "user".into(),
        content: vec![ContentItem::InputImage { image_url: url, detail: None }],
        phase: None,
        extra: Default::default(),
    };
    let serialized = serialized_len(&with_image);
    assert_eq!(estimate_item_bytes(&with_image), serialized - 100_000 + IMAGE_ESTIMATE_BYTES);

    // The same in a tool output's content parts.
    let output = ResponseItem::FunctionCallOutput {
        call_id: "c".into(),
        output: ToolOutput::Content(vec![ContentItem::InputImage {
            image_url: format!("data:image/jpeg;base64,{}", "C".repeat(50_000)),
            detail: Some("low".into()),
        }]),
    };
    assert_eq!(
        estimate_item_bytes(&output),
        serialized_len(&output) - 50_000 + IMAGE_ESTIMATE_BYTES
    );

    // A remote URL is just text.
    let remote = ResponseItem::Message {
        id: None,
        role: "user".into(),
        content: vec![ContentItem::InputImage {
            image_url: "https://x/y.png".into(),
            detail: None,
        }],
        phase: None,
        extra: Default::default(),
    };
    assert_eq!(estimate_item_bytes(&remote), serialized_len(&remote));
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn png_header(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    bytes.extend_from_slice(&width.to_be_bytes());
    bytes.extend_from_slice(&height.to_be_bytes());
    bytes.extend_from_slice(&[8, 6, 0, 0, 0]);
    bytes
}

#[test]
fn original_detail_counts_patches() {
    let cases: [(Vec<u8>, u64); 5] = [
        (png_header(64, 64), 4 * 4),
        (png_header(33, 1), 2 * 4),
        (png_header(10_000, 10_000), MAX_IMAGE_PATCHES * 4),
        (b"GIF89a\x40\x00\x20\x00".to_vec(), 2 * 4),
        // Unreadable dimensions fall back to the fixed estimate.
        (b"not an image".to_vec(), IMAGE_ESTIMATE_BYTES),
    ];
    for (bytes, expected) in cases {
        let url = format!("data:image/png;base64,{}", base64(&bytes));
        assert_eq!(image_estimate_bytes(&url, Some("original")), expected);
        assert_eq!(image_estimate_bytes(&url, Some("high")), IMAGE_ESTIMATE_BYTES);
    }
    // A JPEG with an APP0 segment before its SOF0 frame: 100 wide, 50 high.
    let mut jpeg = vec![0xff, 0xd8, 0xff, 0xe0, 0x00, 0x04, 0x00, 0x00];
    jpeg.extend_from_slice(&[0xff, 0xc0, 0x00, 0x11, 0x08, 0x00, 0x32, 0x00, 0x64, 0x03]);
    let url = format!("data:image/jpeg;base64,{}", base64(&jpeg));
    assert_eq!(image_estimate_bytes(&url, Some("original")), 4 * 2 * 4);
}

#[test]
fn history_estimate_adds_instructions() {
    let items = vec![ResponseItem::user_text("abcd"), ResponseItem::assistant_text("efgh")];
    let expected =
        approx_token_count("12345") + items.iter().map(estimate_item_tokens).sum::<u64>();
    assert_eq!(estimate_history_tokens("12345", &items), expected);
    assert_eq!(estimate_history_tokens("", &[]), 0);
}
