//! Sealed compaction state (D14): a JSON digest authenticated with HMAC-SHA256.
//!
//! A sealed string is `base64(digest_json ‖ tag)`, where `tag` is the 32-byte
//! HMAC-SHA256 of a fixed domain label followed by `digest_json`. The digest is readable by anyone
//! (tests inspect it); only a holder of the key can produce one that [`SealKey::open`] accepts, so
//! any change to a sealed string is detected.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const TAG_LEN: usize = 32;
const DOMAIN: &[u8] = b"compactor-testkit/sealed-compaction/v1\0";

/// The key every server uses unless configured otherwise, so state sealed by one server instance
/// opens on another (a rollout written against one run resumes against the next).
pub const DEFAULT_SEAL_KEY: &str = "compactor-testkit default seal key v1";

/// The key that seals and opens compaction state. Its bytes never appear in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct SealKey(Arc<[u8]>);

/// Why a sealed string was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// Not valid standard base64.
    #[error("encrypted content is not valid base64")]
    NotBase64,
    /// Too short to hold a tag.
    #[error("encrypted content is too short")]
    TooShort,
    /// The tag does not match: tampered, or sealed with another key.
    #[error("encrypted content failed authentication")]
    BadTag,
    /// Authentic, but not a JSON object (never produced by [`SealKey::seal`]).
    #[error("encrypted content does not hold a JSON object")]
    NotJson,
}

impl SealKey {
    /// A key from any bytes (any length).
    pub fn new(key: impl AsRef<[u8]>) -> Self {
        Self(Arc::from(key.as_ref()))
    }

    /// Seals a digest (any JSON value; the reference model seals objects).
    pub fn seal(&self, digest: &Value) -> String {
        let mut bytes = digest.to_string().into_bytes();
        let mut mac = self.mac();
        mac.update(&bytes);
        bytes.extend_from_slice(&mac.finalize().into_bytes());
        BASE64.encode(bytes)
    }

    /// Opens a sealed string and returns its digest.
    ///
    /// # Errors
    ///
    /// [`SealError`] when the string is not base64, is too short, fails authentication (changed
    /// in any way, or sealed with another key), or does not hold a JSON object.
    pub fn open(&self, sealed: &str) -> Result<Value, SealError> {
        let bytes = BASE64.decode(sealed).map_err(|_| SealError::NotBase64)?;
        if bytes.len() < TAG_LEN {
            return Err(SealError::TooShort);
        }
        let (digest, tag) = bytes.split_at(bytes.len() - TAG_LEN);
        let mut mac = self.mac();
        mac.update(digest);
        mac.verify_slice(tag).map_err(|_| SealError::BadTag)?;
        match serde_json::from_slice(digest) {
            Ok(value @ Value::Object(_)) => Ok(value),
            Ok(_) | Err(_) => Err(SealError::NotJson),
        }
    }

    fn mac(&self) -> HmacSha256 {
        #[expect(clippy::expect_used, reason = "HMAC accepts keys of any length")]
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(DOMAIN);
        mac
    }
}

impl Default for SealKey {
    fn default() -> Self {
        Self::new(DEFAULT_SEAL_KEY)
    }
}

impl fmt::Debug for SealKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests;
