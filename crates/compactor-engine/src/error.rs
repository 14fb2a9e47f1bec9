//! The engine's own failure modes, converted into [`CompactorError`] where they cross crates.

use compactor_protocol::CompactorError;

/// A malformed remote compaction v2 result (D12), or a compacted history that cannot be laid out.
///
/// The messages are the contract: harnesses and tests match on them. Convert with
/// `CompactorError::from`: a missing payload, a wrong item count and pins over the budget are
/// fatal, an early end of the stream is a retryable stream error.
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
    /// The pinned items and the ledger alone exceed the budget of the retained history; nothing
    /// can be installed until the harness unpins something or the budget grows.
    #[error(
        "the pinned items and the ledger take {pinned_tokens} tokens, over the retained budget of {budget_tokens} tokens"
    )]
    PinnedOverBudget {
        /// The estimated tokens of the pins and the ledger.
        pinned_tokens: u64,
        /// The budget they must fit.
        budget_tokens: u64,
    },
}

/// `Result` with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for CompactorError {
    fn from(err: Error) -> Self {
        match err {
            Error::MissingPayload { .. } | Error::UnexpectedItemCount { .. } => {
                CompactorError::Fatal(err.to_string())
            }
            Error::PinnedOverBudget { pinned_tokens, budget_tokens } => {
                CompactorError::PinsOverBudget { pinned_tokens, budget_tokens }
            }
            Error::StreamClosedEarly => CompactorError::stream(err.to_string()),
        }
    }
}
