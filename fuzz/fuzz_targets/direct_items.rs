//! The direct item reader reads what `serde_json` reads. Any text it takes as an item reads as
//! the same item with `serde_json`; a list it reads, item by item, is the list `serde_json`
//! reads; and any list `serde_json` reads, it reads too (falling back item by item).

#![no_main]

use std::borrow::Cow;

use compactor_protocol::ResponseItem;
use compactor_protocol::items::direct::{read_item, read_items};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Some((item, end)) = read_item(text, 0) {
        let theirs = serde_json::from_str::<ResponseItem>(&text[..end])
            .expect("an item read directly reads with serde_json");
        assert_eq!(item, theirs, "{text}");
    }
    if !text.starts_with('[') {
        return;
    }
    let read = read_items(text, 1, None, 1).map(|(items, end)| {
        let items: Vec<ResponseItem> = items.into_iter().map(Cow::into_owned).collect();
        (items, end)
    });
    if let Some((items, end)) = &read {
        let theirs = serde_json::from_str::<Vec<ResponseItem>>(&text[..=*end])
            .expect("a list read directly reads with serde_json");
        assert_eq!(items, &theirs, "{text}");
    }
    if let Ok(theirs) = serde_json::from_str::<Vec<ResponseItem>>(text) {
        let (items, end) = read.expect("a list serde_json reads is read");
        assert_eq!(items, theirs, "{text}");
        assert!(text[end + 1..].trim_start_matches([' ', '\n', '\t', '\r']).is_empty(), "{text}");
    }
});
