//! Tests of sealing: round trip, tampering, keys, and secrecy of the key.

use pretty_assertions::assert_eq;
use serde_json::json;

use super::*;

#[test]
fn round_trip() {
    let key = SealKey::default();
    let digest = json!({"v": 1, "items": 3, "user_messages": ["hello there"]});
    let sealed = key.seal(&digest);
    assert_eq!(key.open(&sealed), Ok(digest.clone()));
    // A second key with the same bytes opens it too (another server instance).
    assert_eq!(SealKey::new(DEFAULT_SEAL_KEY).open(&sealed), Ok(digest));
}

#[test]
fn any_change_is_detected() {
    let key = SealKey::new("k");
    let sealed = key.seal(&json!({"items": 1}));
    let bytes = BASE64.decode(&sealed).unwrap();
    for at in 0..bytes.len() {
        let mut tampered = bytes.clone();
        tampered[at] ^= 0x01;
        assert_eq!(key.open(&BASE64.encode(&tampered)), Err(SealError::BadTag), "byte {at}");
    }
}

#[test]
fn rejections() {
    let key = SealKey::new("k");
    let sealed = key.seal(&json!({"items": 1}));
    assert_eq!(SealKey::new("other").open(&sealed), Err(SealError::BadTag));
    assert_eq!(key.open("not base64!"), Err(SealError::NotBase64));
    assert_eq!(key.open(&BASE64.encode([0u8; 8])), Err(SealError::TooShort));
    assert_eq!(key.open(""), Err(SealError::TooShort));
    assert_eq!(key.open(&key.seal(&json!([1, 2]))), Err(SealError::NotJson));
}

#[test]
fn debug_hides_the_key() {
    assert_eq!(format!("{:?}", SealKey::new("super-secret")), "SealKey(<redacted>)");
}
