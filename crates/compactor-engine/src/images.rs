//! The image cap of a compacted history: the newest images stay, older ones become a short text
//! placeholder that names their size (see D103 in docs/decisions.md).

use std::borrow::Cow;

use compactor_protocol::{ContentItem, ResponseItem, ToolOutput};

use crate::normalize::content_parts;

/// How many images a compacted history keeps by default.
pub const DEFAULT_MAX_RETAINED_IMAGES: usize = 8;

/// The first words of every image placeholder.
pub(crate) const IMAGE_PLACEHOLDER_PREFIX: &str = "[image removed from the compacted history:";

/// The text that stands for a removed image: its media type and decoded size for a `data:` URL,
/// or `a linked image` for any other URL (whose size is unknown without fetching it).
/// For example `[image removed from the compacted history: image/png, 24 bytes]`.
pub(crate) fn image_placeholder(image_url: &str) -> String {
    let described = image_url.strip_prefix("data:").and_then(|rest| {
        let (media_type, payload) = rest.split_once(";base64,")?;
        let padding = payload.bytes().rev().take_while(|&byte| byte == b'=').count();
        let decoded = (payload.len() / 4 * 3 + payload.len() % 4 * 3 / 4).saturating_sub(padding);
        Some(format!("{media_type}, {decoded} bytes"))
    });
    match described {
        Some(described) => format!("{IMAGE_PLACEHOLDER_PREFIX} {described}]"),
        None => format!("{IMAGE_PLACEHOLDER_PREFIX} a linked image]"),
    }
}

/// Keeps the newest `max_images` images of `items` (messages and tool outputs alike, the last
/// part of the last item first) and replaces every older one with its [`image_placeholder`].
/// Returns how many images were replaced.
pub(crate) fn cap_images(items: &mut [ResponseItem], max_images: usize) -> usize {
    let mut seen = 0usize;
    items.iter_mut().rev().map(|item| cap_item(item, &mut seen, max_images)).sum()
}

/// [`cap_images`] on items that may be borrowed: only an item that loses an image is copied.
pub(crate) fn cap_borrowed_images(items: &mut [Cow<'_, ResponseItem>], max_images: usize) -> usize {
    let mut seen = 0usize;
    let mut replaced = 0;
    for item in items.iter_mut().rev() {
        let images = content_parts(item)
            .iter()
            .filter(|part| matches!(part, ContentItem::InputImage { .. }))
            .count();
        if images == 0 || seen + images <= max_images {
            seen += images;
        } else {
            replaced += cap_item(item.to_mut(), &mut seen, max_images);
        }
    }
    replaced
}

/// Replaces the images of `item` that come after the newest `max_images`, `seen` of which were
/// in newer items; returns how many it replaced.
fn cap_item(item: &mut ResponseItem, seen: &mut usize, max_images: usize) -> usize {
    let parts = match item {
        ResponseItem::Message { content, .. } => content,
        ResponseItem::FunctionCallOutput { output: ToolOutput::Content(parts), .. }
        | ResponseItem::CustomToolCallOutput { output: ToolOutput::Content(parts), .. } => parts,
        _ => return 0,
    };
    let mut replaced = 0;
    for part in parts.iter_mut().rev() {
        let ContentItem::InputImage { image_url, .. } = part else { continue };
        *seen += 1;
        if *seen > max_images {
            *part = ContentItem::InputText { text: image_placeholder(image_url) };
            replaced += 1;
        }
    }
    replaced
}

/// Replaces every image of `content` with its placeholder.
pub(crate) fn replace_all_images(content: &mut [ContentItem]) {
    for part in content {
        if let ContentItem::InputImage { image_url, .. } = part {
            *part = ContentItem::InputText { text: image_placeholder(image_url) };
        }
    }
}

#[cfg(test)]
mod tests;
