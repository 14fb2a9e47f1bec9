//! The engine's own failure modes, converted into [`CompactorError`] where they cross crates.

use compactor_protocol::CompactorError;

/// A malformed remote compaction v2 result (D12).
///
/// The messages are the contract: harnesses and tests match on them. Convert with
/// `CompactorError::from`: a missing payload and a wrong item count are fatal, an early end of the
/// stream is a retryable stream error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The compaction output item carried no (or an empty) `encrypted_content`.
    #[error("remote compaction v2 returned {item_type} without encrypted_content")]
    MissingPayload {
        /// The output item's wire type: `context_compaction` or `compaction`.
        item_type: &'static str,
    },
    /// The stream completed with a number of compaction output items other than one.
    #[error(
        "remote compaction v2 expected exactly one {item_type} output item, got {count} from {output_items} output items"
    )]
    UnexpectedItemCount {
        /// The expected output item's wire type.
        item_type: &'static str,
        /// How many compaction items with content the stream carried.
        count: usize,
        /// How many output items the stream carried in all.
        output_items: usize,
    },
    /// The stream ended before `response.completed`.
    #[error("remote compaction v2 stream closed before response.completed")]
    StreamClosedEarly,
}

/// `Result` with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for CompactorError {
    fn from(err: Error) -> Self {
        match err {
            Error::MissingPayload { .. } | Error::UnexpectedItemCount { .. } => {
                CompactorError::Fatal(err.to_string())
            }
            Error::StreamClosedEarly => CompactorError::stream(err.to_string()),
        }
    }
}
