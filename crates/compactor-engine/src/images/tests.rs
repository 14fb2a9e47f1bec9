//! Tests of the image cap and its placeholders.

use compactor_protocol::{ContentItem, ResponseItem, ToolOutput};
use pretty_assertions::assert_eq;

use super::*;
use crate::test_support::user;

fn image(payload_len: usize) -> ContentItem {
    ContentItem::InputImage {
        image_url: format!("data:image/png;base64,{}", "A".repeat(payload_len)),
        detail: None,
    }
}

fn user_with(parts: Vec<ContentItem>) -> ResponseItem {
    ResponseItem::Message {
        id: None,
        role: "user".into(),
        content: parts,
        phase: None,
        extra: Default::default(),
    }
}

/// The images of `items` as `I<payload length>`, and placeholders as `P<decoded size>`.
fn shape(items: &[ResponseItem]) -> Vec<String> {
    let mut out = Vec::new();
    for item in items {
        let parts = match item {
            ResponseItem::Message { content, .. } => content.as_slice(),
            ResponseItem::FunctionCallOutput { output: ToolOutput::Content(parts), .. } => parts,
            _ => &[],
        };
        for part in parts {
            match part {
                ContentItem::InputImage { image_url, .. } => {
                    out.push(format!("I{}", image_url.len() - "data:image/png;base64,".len()));
                }
                ContentItem::InputText { text } if text.starts_with(IMAGE_PLACEHOLDER_PREFIX) => {
                    let size = text.rsplit(", ").next().unwrap_or_default();
                    out.push(format!("P{}", size.trim_end_matches(" bytes]")));
                }
                _ => {}
            }
        }
    }
    out
}

#[track_caller]
fn check(mut items: Vec<ResponseItem>, max_images: usize, expected: &[&str], replaced: usize) {
    // Borrowed, the same images go, and only the items that lose one are copied.
    let mut borrowed: Vec<Cow<'_, ResponseItem>> = items.iter().map(Cow::Borrowed).collect();
    assert_eq!(cap_borrowed_images(&mut borrowed, max_images), replaced);
    let copied: Vec<bool> = borrowed.iter().map(|item| matches!(item, Cow::Owned(_))).collect();
    let borrowed: Vec<ResponseItem> = borrowed.into_iter().map(Cow::into_owned).collect();

    assert_eq!(cap_images(&mut items, max_images), replaced);
    assert_eq!(shape(&items), expected);
    assert_eq!(borrowed, items);
    let placeholders =
        |item: &ResponseItem| shape(std::slice::from_ref(item)).iter().any(|s| s.starts_with('P'));
    assert_eq!(copied, items.iter().map(placeholders).collect::<Vec<_>>());
}

#[test]
fn the_newest_images_stay_and_older_ones_become_placeholders() {
    let items = || {
        vec![
            user_with(vec![image(4), ContentItem::InputText { text: "old".into() }, image(8)]),
            user("no image"),
            ResponseItem::FunctionCallOutput {
                call_id: "c".into(),
                output: ToolOutput::Content(vec![image(12)]),
            },
            user_with(vec![image(16), image(20)]),
        ]
    };
    check(items(), 8, &["I4", "I8", "I12", "I16", "I20"], 0);
    check(items(), 5, &["I4", "I8", "I12", "I16", "I20"], 0);
    check(items(), 3, &["P3", "P6", "I12", "I16", "I20"], 2);
    check(items(), 1, &["P3", "P6", "P9", "P12", "I20"], 4);
    check(items(), 0, &["P3", "P6", "P9", "P12", "P15"], 5);
}

#[test]
fn capping_twice_changes_nothing_more() {
    let mut items: Vec<ResponseItem> = (1..=12).map(|n| user_with(vec![image(n * 4)])).collect();
    assert_eq!(cap_images(&mut items, 8), 4);
    let once = items.clone();
    assert_eq!(cap_images(&mut items, 8), 0);
    assert_eq!(items, once);
}

#[test]
fn placeholders_name_the_media_type_and_the_decoded_size() {
    for (url, expected) in [
        ("data:image/png;base64,AAAA", "image/png, 3 bytes"),
        ("data:image/jpeg;base64,AAA=", "image/jpeg, 2 bytes"),
        ("data:image/webp;base64,AA==", "image/webp, 1 bytes"),
        ("data:image/gif;base64,AAAAAA", "image/gif, 4 bytes"),
        ("data:image/png;base64,", "image/png, 0 bytes"),
        ("https://example.com/cat.png", "a linked image"),
        ("data:image/png,notbase64", "a linked image"),
    ] {
        assert_eq!(image_placeholder(url), format!("{IMAGE_PLACEHOLDER_PREFIX} {expected}]"));
    }
}
