//! The hand-written `ResponseItem` reader agrees with the general reading on any input: whatever
//! bytes parse as JSON read as the same item by hand and by the general reading (a message in any
//! form, every other item by the deserializer serde derives for the tagged form) applied to the
//! JSON value of those bytes (which differs from the general reading of the bytes themselves only
//! for an object with a duplicate key, where the value keeps the last one). A raw item keeps
//! exactly that JSON value.

#![no_main]

use compactor_protocol::ResponseItem;
use compactor_protocol::items::oracle::ReferenceItem;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else { return };
    let ours: ResponseItem =
        serde_json::from_slice(data).expect("JSON that parses as a value reads as an item");
    let theirs = serde_json::from_value::<ReferenceItem>(value.clone())
        .expect("the general reading takes any JSON value")
        .0;
    assert_eq!(ours, theirs, "{}", String::from_utf8_lossy(data));
    if let ResponseItem::Unknown(raw) = &ours {
        assert_eq!(raw, &value, "a raw item keeps its JSON");
    }
    let again: ResponseItem = serde_json::from_value(value).expect("a value reads as an item");
    assert_eq!(again, ours, "reading from the value agrees with reading from the bytes");
});
